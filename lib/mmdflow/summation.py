r"""Kernel sums: the one operation every flow in the book spends its time in.

For points ``x`` ``[N, d]``, sources ``y`` ``[M, d]`` with weights ``v`` ``[M]``,

.. math::
    s_i = \sum_j v_j K(x_i, y_j), \qquad
    g_i = \nabla_{x_i} s_i = \sum_j v_j\, 2\phi'(\|x_i-y_j\|^2)\,(x_i - y_j).

:func:`kernel_sum` returns ``s`` (differentiable in ``x``, ``y`` and ``v``) and
:func:`kernel_sum_grad` returns ``g`` directly, without autograd. Backends:

* ``"dense"``: the reference. Builds the ``[N, M]`` kernel matrix from exact
  differences (``O(N M d)`` memory) and differentiates it with autograd.
* ``"blocked"``: exact and memory-bounded. Works on row blocks of at most
  ``block_elems`` kernel entries; distances from explicit differences when
  ``d <= 8`` and from a GEMM (``|x|^2 + |y|^2 - 2 x y^T``) otherwise. Its
  backward pass is written out, so no ``[N, M]`` matrix is ever stored.
* ``"auto"``: ``dense`` for small problems, ``blocked`` otherwise.

Further backends (sliced, KeOps) register themselves in :data:`BACKENDS`.
"""

from __future__ import annotations

from typing import Callable

import torch

from ._checks import check_points, check_same_space, check_weights
from .kernels import RadialKernel, squared_distances

__all__ = ["kernel_sum", "kernel_sum_grad", "BACKENDS", "DENSE_LIMIT", "BLOCK_ELEMS"]

#: ``auto`` uses the dense backend while ``N * M * d`` stays below this.
DENSE_LIMIT = 2**22
#: kernel entries per block in the blocked backend (times ``d`` when ``d <= 8``).
BLOCK_ELEMS = 2**22
_EXPLICIT_DIFF_MAX_D = 8


def _block_sqdist(xb: torch.Tensor, y: torch.Tensor, y_sq: torch.Tensor | None) -> torch.Tensor:
    if y_sq is None:
        return squared_distances(xb, y)
    norms = (xb * xb).sum(1, keepdim=True) + y_sq[None, :]
    s = norms - 2.0 * (xb @ y.T)
    # The GEMM form has an absolute rounding error of about eps * (|x|^2 + |y|^2). Below that level a pair cannot
    # be told apart from a coinciding pair; set it to exactly 0, so that singular kernels (Riesz r <= 1, Laplace)
    # see no spurious self-interaction (e.g. s_ii ~ 1e-15 would give |x_i - x_i|^0.5 ~ 1e-4).
    tol = 8 * torch.finfo(s.dtype).eps
    return torch.where(s > tol * norms, s, torch.zeros_like(s))


def _rows_per_block(n: int, m: int, d: int, block_elems: int) -> int:
    per_row = m * (d if d <= _EXPLICIT_DIFF_MAX_D else 1)
    return max(1, min(n, block_elems // max(per_row, 1)))


def _blocked_pass(x, y, v, kernel: RadialKernel, *, want_value: bool, want_grad: bool, block_elems: int,
                  go: torch.Tensor | None = None, want_y: bool = False, want_v: bool = False):
    """One pass over row blocks. Returns (s, gx, gy, gv), each possibly None.

    With ``go`` given (the incoming gradient of ``s``), ``gx``, ``gy``, ``gv``
    are the vector-Jacobian products of ``s`` with respect to ``x``, ``y``, ``v``.
    """
    n, d = x.shape
    m = y.shape[0]
    y_sq = None if d <= _EXPLICIT_DIFF_MAX_D else (y * y).sum(1)
    rows = _rows_per_block(n, m, d, block_elems)
    s = x.new_empty(n) if want_value else None
    gx = x.new_empty(n, d) if want_grad else None
    gy = torch.zeros_like(y) if want_y else None
    gv = torch.zeros_like(v) if want_v else None
    for start in range(0, n, rows):
        xb = x[start:start + rows]
        sq = _block_sqdist(xb, y, y_sq)                       # (B, M)
        if want_value:
            s[start:start + rows] = kernel.profile(sq) @ v
        if want_v:
            gv += go[start:start + rows] @ kernel.profile(sq)
        if want_grad or want_y:
            c = 2.0 * kernel.dprofile(sq) * v[None, :]         # (B, M)
            if go is not None:
                c = c * go[start:start + rows, None]
            if want_grad:
                gx[start:start + rows] = c.sum(1, keepdim=True) * xb - c @ y
            if want_y:
                gy += c.sum(0)[:, None] * y - c.T @ xb
    return s, gx, gy, gv


class _BlockedKernelSum(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, y, v, kernel, block_elems):
        s, _, _, _ = _blocked_pass(x, y, v, kernel, want_value=True, want_grad=False, block_elems=block_elems)
        ctx.save_for_backward(x, y, v)
        ctx.kernel, ctx.block_elems = kernel, block_elems
        return s

    @staticmethod
    def backward(ctx, go):
        x, y, v = ctx.saved_tensors
        need_x, need_y, need_v = ctx.needs_input_grad[:3]
        _, gx, gy, gv = _blocked_pass(x, y, v, ctx.kernel, want_value=False, want_grad=need_x,
                                      block_elems=ctx.block_elems, go=go, want_y=need_y, want_v=need_v)
        return gx, gy, gv, None, None


def _dense_sum(x, y, v, kernel, **_):
    return kernel.profile(squared_distances(x, y)) @ v


def _dense_grad(x, y, v, kernel, **_):
    return (kernel.grad(x, y) * v[None, :, None]).sum(1)


def _blocked_sum(x, y, v, kernel, *, block_elems=BLOCK_ELEMS, **_):
    return _BlockedKernelSum.apply(x, y, v, kernel, block_elems)


def _blocked_grad(x, y, v, kernel, *, block_elems=BLOCK_ELEMS, **_):
    with torch.no_grad():
        return _blocked_pass(x, y, v, kernel, want_value=False, want_grad=True, block_elems=block_elems)[1]


#: name -> (value function, gradient function); both take ``(x, y, v, kernel, **options)``.
BACKENDS: dict[str, tuple[Callable, Callable]] = {
    "dense": (_dense_sum, _dense_grad),
    "blocked": (_blocked_sum, _blocked_grad),
}


def _choose(backend: str, x: torch.Tensor, y: torch.Tensor, kernel: RadialKernel) -> str:
    if backend == "auto":
        return "dense" if x.shape[0] * y.shape[0] * x.shape[1] <= DENSE_LIMIT else "blocked"
    if backend not in BACKENDS:
        raise ValueError(f"unknown backend {backend!r}; available: {sorted(BACKENDS) + ['auto']}")
    return backend


def _prepare(x, y, v, kernel):
    check_points(x, "x")
    check_points(y, "y")
    check_same_space(x, y)
    if not isinstance(kernel, RadialKernel):
        raise TypeError(f"kernel must be an mmdflow.kernels kernel, got {type(kernel).__name__}")
    return check_weights(v, y, "v")


def kernel_sum(x: torch.Tensor, y: torch.Tensor, kernel: RadialKernel, v: torch.Tensor | None = None, *,
               backend: str = "auto", **options) -> torch.Tensor:
    r"""Weighted kernel sums :math:`s_i = \sum_j v_j K(x_i, y_j)`.

    Args:
        x: evaluation points ``[N, d]``.
        y: source points ``[M, d]``.
        kernel: a kernel from :mod:`mmdflow.kernels`.
        v: probability weights ``[M]`` of ``y``; ``None`` means uniform ``1/M``.
        backend: ``"auto"``, ``"dense"``, ``"blocked"`` or a registered backend.
        **options: backend options (``block_elems`` for ``blocked``, ...).

    Returns:
        ``[N]`` tensor, differentiable with respect to ``x``, ``y`` and ``v``.
    """
    v = _prepare(x, y, v, kernel)
    return BACKENDS[_choose(backend, x, y, kernel)][0](x, y, v, kernel, **options)


def kernel_sum_grad(x: torch.Tensor, y: torch.Tensor, kernel: RadialKernel, v: torch.Tensor | None = None, *,
                    backend: str = "auto", **options) -> torch.Tensor:
    r"""Gradients :math:`g_i = \sum_j v_j \nabla_1 K(x_i, y_j)`, shape ``[N, d]`` (no autograd graph).

    Coinciding pairs ``x_i = y_j`` contribute zero (Altekrüger et al. 2023, Sec. 5).
    """
    v = _prepare(x, y, v, kernel)
    with torch.no_grad():
        return BACKENDS[_choose(backend, x, y, kernel)][1](x.detach(), y.detach(), v.detach(), kernel, **options)
