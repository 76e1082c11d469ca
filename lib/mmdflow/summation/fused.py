r"""Fused exact kernel sums in low dimension: value and gradient in one pass over the pairs, no ``[N, M]`` block.

For ``x`` ``[N, d]`` (``d <= 8``), ``y`` ``[M, d]`` and real weights ``v`` ``[M]`` one compiled loop (numba,
parallel over the rows ``i``, the columns ``j`` innermost and vectorised) computes

.. math::
    s_i = \sum_j v_j\,\phi(\|x_i - y_j\|^2), \qquad
    g_i = \sum_j v_j\,2\phi'(\|x_i-y_j\|^2)\,(x_i - y_j),

with explicit differences (exact for clouds at any offset), each pair's terms in the inputs' precision and the
row sums accumulated in float64. The gradient is accumulated as :math:`\sum_j c_{ij}(x_i - y_j)`, not as
:math:`(\sum_j c_{ij})x_i - \sum_j c_{ij}y_j`, whose two terms cancel in float32. Coinciding pairs exert no
force (:math:`c_{ij} = 0` where the kernel is singular at 0). Kernels (``kind``, parameter ``p``):

* Riesz :math:`\phi = -s^{r/2}`, :math:`2\phi' = -r s^{r/2}/s`: ``r = 1`` (square root), ``r = 1/2`` and
  ``r = 3/2`` (square roots only) and any other ``r`` (``pow``);
* Gaussian :math:`e^{-s/(2\sigma^2)}`, inverse multiquadric :math:`(1 + s/\sigma^2)^{-1/2}`,
  Laplace :math:`e^{-\sqrt s/\sigma}`.

This is the engine of the ``blocked`` backend on the CPU for ``d <= 8`` (:mod:`.blocked`); its results are tested
against the dense reference.
"""

from __future__ import annotations

import numpy as np
import torch

from .._jit import numba as _numba, threaded
from ..kernels import RadialKernel

__all__ = ["MAX_D", "FORMULAS", "supported", "kernel_code", "fused_sum_and_grad"]

#: the largest dimension the fused loops serve (above, the GEMM form is faster).
MAX_D = 8

#: the formulas of the compiled loop, by the name a kernel's ``compiled_form()`` gives (see
#: :class:`mmdflow.kernels.RadialKernel`); the loop is compiled and cached once per formula.
FORMULAS = {"riesz": 0, "riesz_1": 1, "riesz_half": 2, "riesz_3half": 3, "gaussian": 4, "imq": 5, "laplace": 6}


def kernel_code(kernel: RadialKernel) -> tuple[int, float] | None:
    """``(kind, parameter)`` of the kernel's compiled form, or ``None`` (the kernel has none: generic paths).

    Args:
        kernel: a kernel from :mod:`mmdflow.kernels`.

    Returns:
        ``(kind, parameter)``: the code in :data:`FORMULAS` and the float parameter, or ``None``.

    Raises:
        ValueError: the kernel's ``compiled_form()`` names a formula that is not in :data:`FORMULAS`.
    """
    form = kernel.fast_form("compiled_form")
    if form is None:
        return None
    name, p = form()
    if name not in FORMULAS:
        raise ValueError(f"{type(kernel).__name__}.compiled_form() names {name!r}, which is not a compiled formula; "
                         f"known: {sorted(FORMULAS)}")
    return FORMULAS[name], float(p)


def supported(x: torch.Tensor, y: torch.Tensor, v: torch.Tensor | None, kernel: RadialKernel) -> bool:
    """The fused loop applies: numba present, CPU, float32/float64 throughout, ``d <= MAX_D``, a kernel with a
    compiled form (``v = None``: weights of the points' dtype).

    Args:
        x: evaluation points ``[N, d]``.
        y: source points ``[M, d]``.
        v: weights ``[M]`` or ``None``.
        kernel: a kernel from :mod:`mmdflow.kernels`.

    Returns:
        ``True`` when :func:`fused_sum_and_grad` may be called.
    """
    return (_numba is not None and x.device.type == "cpu" and y.device.type == "cpu"
            and x.dtype in (torch.float32, torch.float64) and y.dtype == x.dtype and (v is None or v.dtype == x.dtype)
            and x.shape[1] <= MAX_D and kernel_code(kernel) is not None)


if _numba is not None:

    @_numba.njit(inline="always", fastmath={"reassoc", "contract"}, error_model="numpy", cache=True)
    def _entry(kind, s, p, zero, one, half):  # pragma: no cover - compiled
        """``(phi, c)`` of one pair at squared distance ``s``: ``c = 2 phi'(s)`` (0 at ``s = 0`` if singular)."""
        pos = s > zero
        safe = s if pos else one
        if kind == 1:                       # Riesz r = 1
            q = np.sqrt(s)
            return -q, (-one / np.sqrt(safe) if pos else zero)
        if kind == 2:                       # Riesz r = 1/2: s^(1/4)
            q = np.sqrt(np.sqrt(s))
            return -q, (-half * q / safe if pos else zero)
        if kind == 3:                       # Riesz r = 3/2: s^(3/4)
            q = np.sqrt(s) * np.sqrt(np.sqrt(s))
            return -q, (-(one + half) * q / safe if pos else zero)
        if kind == 0:                       # Riesz, any r in (0, 2)
            q = safe ** (half * p) if pos else zero
            return -q, (-p * q / safe if pos else zero)
        if kind == 4:                       # Gaussian, p = 1 / (2 sigma^2)
            e = np.exp(-p * s)
            return e, -(p + p) * e
        if kind == 5:                       # inverse multiquadric, p = 1 / sigma^2
            b = one / np.sqrt(one + p * s)
            return b, -p * b * b * b
        e = np.exp(-p * np.sqrt(s))         # Laplace, p = 1 / sigma
        return e, (-p * e / np.sqrt(safe) if pos else zero)


def _make_pass(kind: int):
    """The compiled pass of one kernel kind (a closure constant, so that the per-pair branches fold away and
    the column loop vectorises; each kind is cached on disk separately)."""

    @threaded(cache=True, fastmath={"reassoc", "contract"}, error_model="numpy")
    def _fused_pass(x, yt, v, consts, want_value, want_grad, s_out, g_out):  # pragma: no cover - compiled
        """Row sums ``s_out[i]`` (float64) and gradients ``g_out[i, :]`` (float64) over all columns ``j``.

        ``x`` ``[N, d]``, ``yt`` ``[d, M]`` (contiguous rows), ``v`` ``[M]``, ``consts = [p, 0, 1, 1/2]`` in the
        inputs' dtype (so that the per-pair arithmetic stays in that precision).
        """
        n, d = x.shape
        m = yt.shape[1]
        p, zero, one, half = consts[0], consts[1], consts[2], consts[3]
        for i in _numba.prange(n):
            acc_s = 0.0
            if d == 2:
                x0, x1 = x[i, 0], x[i, 1]
                a0 = 0.0
                a1 = 0.0
                for j in range(m):
                    d0 = x0 - yt[0, j]
                    d1 = x1 - yt[1, j]
                    phi, c = _entry(kind, d0 * d0 + d1 * d1, p, zero, one, half)
                    vj = v[j]
                    acc_s += vj * phi
                    cv = vj * c
                    a0 += cv * d0
                    a1 += cv * d1
                if want_grad:
                    g_out[i, 0] = a0
                    g_out[i, 1] = a1
            elif d == 3:
                x0, x1, x2 = x[i, 0], x[i, 1], x[i, 2]
                a0 = 0.0
                a1 = 0.0
                a2 = 0.0
                for j in range(m):
                    d0 = x0 - yt[0, j]
                    d1 = x1 - yt[1, j]
                    d2 = x2 - yt[2, j]
                    phi, c = _entry(kind, d0 * d0 + d1 * d1 + d2 * d2, p, zero, one, half)
                    vj = v[j]
                    acc_s += vj * phi
                    cv = vj * c
                    a0 += cv * d0
                    a1 += cv * d1
                    a2 += cv * d2
                if want_grad:
                    g_out[i, 0] = a0
                    g_out[i, 1] = a1
                    g_out[i, 2] = a2
            else:
                acc = np.zeros(d)
                diff = np.empty(d, dtype=x.dtype)
                for j in range(m):
                    s = zero
                    for k in range(d):
                        diff[k] = x[i, k] - yt[k, j]
                        s += diff[k] * diff[k]
                    phi, c = _entry(kind, s, p, zero, one, half)
                    vj = v[j]
                    acc_s += vj * phi
                    cv = vj * c
                    for k in range(d):
                        acc[k] += cv * diff[k]
                if want_grad:
                    for k in range(d):
                        g_out[i, k] = acc[k]
            if want_value:
                s_out[i] = acc_s

    return _fused_pass


#: the compiled passes made so far, by kernel kind.
_PASSES: dict = {}


def fused_sum_and_grad(x: torch.Tensor, y: torch.Tensor, v: torch.Tensor, kernel: RadialKernel, *,
                       want_value: bool = True, want_grad: bool = True
                       ) -> tuple[torch.Tensor | None, torch.Tensor | None]:
    """``(s [N], g [N, d])`` in the inputs' dtype (each ``None`` unless wanted); see the module docstring.

    Needs :func:`supported`; tensors must not require grad (callers detach).

    Args:
        x: evaluation points ``[N, d]`` (CPU, float32 or float64).
        y: source points ``[M, d]``.
        v: weights ``[M]``.
        kernel: a kernel with a compiled form.
        want_value: compute ``s``.
        want_grad: compute ``g``.

    Returns:
        ``(s, g)``: :math:`s_i = \\sum_j v_j K(x_i, y_j)` ``[N]`` and :math:`g_i = \\sum_j v_j\\nabla_1 K(x_i, y_j)`
        ``[N, d]``, each ``None`` unless wanted.
    """
    kind, p = kernel_code(kernel)
    xn = x.detach().contiguous().numpy()
    ytn = y.detach().T.contiguous().numpy()
    vn = v.detach().contiguous().numpy()
    dt = xn.dtype
    consts = np.array([p, 0.0, 1.0, 0.5], dtype=dt)
    n, d = xn.shape
    s64 = np.zeros(n if want_value else 0)
    g64 = np.zeros((n, d) if want_grad else (0, d))
    if kind not in _PASSES:
        _PASSES[kind] = _make_pass(kind)
    _PASSES[kind](xn, ytn, vn, consts, want_value, want_grad, s64, g64)
    s = torch.from_numpy(s64).to(x.dtype) if want_value else None
    g = torch.from_numpy(g64).to(x.dtype) if want_grad else None
    return s, g
