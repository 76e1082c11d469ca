r"""Exact kernel sums with KeOps symbolic reductions (optional; needs ``pykeops``).

KeOps (Charlier, Feydy, Glaunès, Durif, Gadat, JMLR 2021) compiles a
reduction :math:`s_i = \sum_j v_j \phi(|x_i - y_j|^2)` into a kernel that
never stores the ``[N, M]`` matrix: memory ``O(N + M)``, exact up to float
rounding. It is the fastest exact option on GPUs and in low dimension on
CPUs; in high dimension on CPUs the GEMM-based ``blocked`` backend is faster.

This module is imported only when the ``keops`` backend is used (or chosen
by ``auto`` because ``pykeops`` is installed), so the package does not depend
on KeOps. Gradients are written out with the same conventions as
:mod:`mmdflow.kernels`: a coinciding pair exerts no force. KeOps' ``rsqrt``
returns 0 at 0, which gives :math:`\phi'(0) = 0` for the singular kernels. The formulas are the kernels' own
``keops_formula`` methods.

Shapes: ``x`` ``[N, d]``, ``y`` ``[M, d]``, ``v`` ``[M]``; results ``[N]`` and ``[N, d]``.
"""

from __future__ import annotations

import torch

from ..kernels import RadialKernel

__all__ = ["keops_kernel_sum", "keops_kernel_sum_grad"]

try:
    from pykeops.torch import LazyTensor
except ImportError as err:  # pragma: no cover - depends on the installation
    raise ImportError("the 'keops' backend needs pykeops (pip install pykeops); "
                      "use backend='blocked' for exact sums without it") from err


def _formulas(kernel: RadialKernel, sq):
    """Symbolic profile phi(s) and derivative phi'(s) at the symbolic squared distances ``sq``: the kernel's own
    ``keops_formula`` (:meth:`mmdflow.kernels.RadialKernel.fast_form`); the dispatcher refuses kernels without one."""
    formula = kernel.fast_form("keops_formula")
    if formula is None:
        raise ValueError(f"the keops backend has no formula for {kernel!r} (its class defines no keops_formula); "
                         "use backend='dense' or 'blocked', which evaluate every kernel")
    return formula(sq)


def _pairs(a, b):
    ai = LazyTensor(a.contiguous()[:, None, :])
    bj = LazyTensor(b.contiguous()[None, :, :])
    return ai, bj, ((ai - bj) ** 2).sum(-1)


def _weighted(w):
    return LazyTensor(w.contiguous()[None, :, None])


def _grad_sum(a, b, c, kernel):
    """``sum_j c_j 2 phi'(|a_i - b_j|^2) (a_i - b_j)``, shape ``[len(a), d]``."""
    ai, bj, sq = _pairs(a, b)
    _, dphi = _formulas(kernel, sq)
    return (2 * dphi * _weighted(c) * (ai - bj)).sum(dim=1)


def _value_sum(a, b, c, kernel):
    _, _, sq = _pairs(a, b)
    phi, _ = _formulas(kernel, sq)
    return (phi * _weighted(c)).sum(dim=1).reshape(-1)


class _KeOpsKernelSum(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, y, v, kernel):
        ctx.save_for_backward(x, y, v)
        ctx.kernel = kernel
        return _value_sum(x, y, v, kernel)

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, go):
        x, y, v = ctx.saved_tensors
        need_x, need_y, need_v = ctx.needs_input_grad[:3]
        gx = gy = gv = None
        if need_x:
            gx = go[:, None] * _grad_sum(x, y, v, ctx.kernel)
        if need_y:
            gy = v[:, None] * _grad_sum(y, x, go, ctx.kernel)     # the kernel is symmetric in its arguments
        if need_v:
            gv = _value_sum(y, x, go, ctx.kernel)
        return gx, gy, gv, None


def keops_kernel_sum(x: torch.Tensor, y: torch.Tensor, kernel: RadialKernel, v: torch.Tensor, **_) -> torch.Tensor:
    r""":math:`s_i = \sum_j v_j K(x_i, y_j)` ``[N]``, differentiable in ``x``, ``y``, ``v``.

    Args:
        x: evaluation points ``[N, d]``.
        y: source points ``[M, d]``.
        kernel: a kernel with a ``keops_formula``.
        v: weights ``[M]``.
        **_: other backend options (ignored).

    Returns:
        ``[N]`` tensor, dtype and device of ``x``.
    """
    return _KeOpsKernelSum.apply(x, y, v, kernel)


def keops_kernel_sum_grad(x: torch.Tensor, y: torch.Tensor, kernel: RadialKernel, v: torch.Tensor,
                          **_) -> torch.Tensor:
    r""":math:`g_i = \sum_j v_j \nabla_1 K(x_i, y_j)` ``[N, d]``.

    Args:
        x: evaluation points ``[N, d]``.
        y: source points ``[M, d]``.
        kernel: a kernel with a ``keops_formula``.
        v: weights ``[M]``.
        **_: other backend options (ignored).

    Returns:
        ``[N, d]`` tensor (detached), dtype and device of ``x``.
    """
    with torch.no_grad():
        return _grad_sum(x, y, v, kernel)
