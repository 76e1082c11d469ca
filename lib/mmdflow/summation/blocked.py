r"""The ``blocked`` backend: exact kernel sums in memory-bounded blocks.

For points ``x`` ``[N, d]``, sources ``y`` ``[M, d]`` with weights ``v`` ``[M]`` this computes
:math:`s_i = \sum_j v_j K(x_i, y_j)` and :math:`g_i = \sum_j v_j\,2\phi'(\|x_i-y_j\|^2)(x_i-y_j)`
on row blocks of at most ``block_elems`` kernel entries. Distances come from explicit differences
when ``d <= 8`` and from a GEMM (``|x|^2 + |y|^2 - 2 x y^T``) otherwise. The backward pass is
written out (:class:`_BlockedKernelSum`), so no ``[N, M]`` matrix is ever stored. For the Riesz
kernel on the CPU with ``d > 8`` (and numba installed) the elementwise work of a block (distances,
zero rule, ``phi``, ``phi'``, row sums) is one fused pass between the two GEMMs, and when ``y is x``
only the blocks on and above the diagonal are formed (the kernel matrix is symmetric).
"""

from __future__ import annotations

import numpy as np
import torch

from . import fused as _small_d
from .._jit import numba as _numba, threaded
from ..kernels import (EXPLICIT_DIFF_MAX_D as _EXPLICIT_DIFF_MAX_D, RadialKernel, centred, pairwise_squared_distances,
                       riesz_exponent)

__all__ = ["BLOCK_ELEMS", "FUSED_MIN_PAIRS", "blocked_sum", "blocked_grad", "blocked_sum_and_grad",
           "blocked_self_double_sum"]

#: kernel entries per block in the blocked backend.
BLOCK_ELEMS = 2**22
#: the fused GEMM pass recomputes a pair's squared distance from explicit differences below
#: ``_CLOSE eps (|x_i|^2 + |y_j|^2)`` (the level of :func:`mmdflow.kernels.pairwise_squared_distances`).
_CLOSE = 2.0 ** 10


def _block_sqdist(xb: torch.Tensor, y: torch.Tensor, y_sq: torch.Tensor | None,
                  xb_sq: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Squared distances ``[B, M]`` of a row block and the mask of entries set to 0 (``y_sq is None``: exact)."""
    return pairwise_squared_distances(xb, y, x_sq=xb_sq, y_sq=y_sq, exact=y_sq is None)


if _numba is not None:  # optional: a fused elementwise pass for the Riesz kernel (CPU)

    @_numba.njit(inline="always", cache=True, fastmath={"reassoc", "contract"})
    def _riesz_entry(xi, yj, g, loose, r, e, xr, yr):  # pragma: no cover
        """``(phi, t)`` of one pair from ``|x_i|^2``, ``|y_j|^2`` and ``g = <x_i, y_j>``: ``s = xi + yj - 2 g``, recomputed
        from the explicit differences of the rows ``xr``, ``yr`` when it is below the rounding level
        ``loose (xi + yj)`` of the GEMM form (the rule of :func:`mmdflow.kernels.pairwise_squared_distances`: close
        pairs keep their digits, coinciding points get exactly 0); ``phi = -s^(r/2)``, ``t = s^(r/2 - 1)`` (0 at
        ``s = 0``); ``e = r/2 - 1``."""
        s = (xi + yj) - 2.0 * g
        if s <= loose * xi + loose * yj:
            s = 0.0
            for k in range(xr.shape[0]):
                dk = np.float64(xr[k]) - np.float64(yr[k])
                s += dk * dk
        if r == 1.0:
            q = np.sqrt(s)
            return -q, (1.0 / q if s > 0.0 else 0.0)
        t = s ** e if s > 0.0 else 0.0
        return -s * t, t

    @threaded(cache=True, fastmath={"reassoc", "contract"})
    def _riesz_block_fused(gm, xb, yb, xsq, ysq, v, tol, r, want_value, store, phi_out, s_out,
                           row_out):  # pragma: no cover
        """One pass over ``gm = x_b y^T`` ``[B, M]`` for the Riesz kernel (float64 arithmetic).

        Per entry: ``s = |x_i|^2 + |y_j|^2 - 2 gm_ij``, recomputed from the explicit differences of the rows
        ``xb[i]``, ``yb[j]`` when ``s <= tol (|x_i|^2 + |y_j|^2)`` (the rule of :func:`_block_sqdist`); ``phi = -s^(r/2)``; ``w = 2 phi'(s) = -r s^(r/2-1)`` (0 at
        ``s = 0``). Writes the row sums ``s_out[i] = sum_j v_j phi`` (if ``want_value``) and
        ``row_out[i] = sum_j v_j w``, and over ``gm``: ``v_j w`` (``store`` 1), ``w`` (``store`` 2, the
        off-diagonal blocks of ``y is x``, whose column sums the caller takes) or nothing (``store`` 0);
        ``phi`` goes to ``phi_out`` when it is not empty.
        """
        b, m = gm.shape
        e = 0.5 * r - 1.0
        keep_phi = phi_out.shape[0] > 0
        for i in _numba.prange(b):
            xi = np.float64(xsq[i])
            acc_s = 0.0
            acc_c = 0.0
            for j in range(m):
                phi, t = _riesz_entry(xi, np.float64(ysq[j]), np.float64(gm[i, j]), tol, r, e, xb[i], yb[j])
                w = -r * t
                vj = np.float64(v[j])
                acc_s += vj * phi
                acc_c += vj * w
                if store == 1:
                    gm[i, j] = vj * w
                elif store == 2:
                    gm[i, j] = w
                if keep_phi:
                    phi_out[i, j] = phi
            if want_value:
                s_out[i] = acc_s
            row_out[i] = acc_c


def _no_phi(gm: torch.Tensor) -> np.ndarray:
    """An empty ``phi_out`` for :func:`_riesz_block_fused` (same dtype and layout as a kept one)."""
    return np.empty((0, 0), dtype=gm.numpy().dtype)


def _blocked_pass_symmetric(x, v, kernel, *, want_value: bool, want_grad: bool, block_elems: int):
    """Value and gradient of ``s_i = sum_j v_j K(x_i, x_j)`` using the symmetry of the kernel matrix.

    Square blocks ``(a, b)`` with ``a <= b`` only: an off-diagonal block gives the rows of ``a`` and,
    through its transpose, the rows of ``b``, so one distance GEMM serves both (3 GEMMs per pair of
    blocks instead of 4). Same formulas as :func:`_blocked_pass` (Riesz, fused numba pass).
    """
    n, d = x.shape
    bs = max(1, min(n, int(block_elems ** 0.5)))
    x_sq = (x * x).sum(1)
    tol = _CLOSE * torch.finfo(x.dtype).eps
    r = riesz_exponent(kernel)
    s = torch.zeros(n, dtype=torch.float64) if want_value else None
    row = torch.zeros(n, dtype=torch.float64)
    gx = torch.zeros(n, d, dtype=x.dtype) if want_grad else None
    vx = v[:, None] * x                                         # (N, d): v_j x_j, for the weighted GEMMs
    starts = list(range(0, n, bs))
    for a in starts:
        xa, va, sa = x[a:a + bs], v[a:a + bs], slice(a, a + bs)
        for b in starts:
            if b < a:
                continue
            xb_, vb, sb = x[b:b + bs], v[b:b + bs], slice(b, b + bs)
            gm = xa @ xb_.T                                     # (Ba, Bb)
            ba = gm.shape[0]
            s_row = np.zeros(ba)
            r_row = np.zeros(ba)
            if a == b:
                _riesz_block_fused(gm.numpy(), xa.numpy(), xb_.numpy(), x_sq[sa].numpy(), x_sq[sb].numpy(),
                                   vb.contiguous().numpy(), tol, r, want_value, 1 if want_grad else 0, _no_phi(gm), s_row, r_row)
                if want_grad:
                    gx[sa] -= gm @ xb_                          # gm holds c_ij = v_j w_ij
            else:
                phi = torch.empty_like(gm) if want_value else None   # for the column sums of the value
                _riesz_block_fused(gm.numpy(), xa.numpy(), xb_.numpy(), x_sq[sa].numpy(), x_sq[sb].numpy(),
                                   vb.contiguous().numpy(), tol, r, want_value, 2, phi.numpy() if want_value else _no_phi(gm), s_row, r_row)
                if want_value:
                    s[sb] += (va @ phi).to(torch.float64)
                row[sb] += (va @ gm).to(torch.float64)
                if want_grad:
                    gx[sa] -= gm @ vx[sb]
                    gx[sb] -= gm.T @ vx[sa]
            if want_value:
                s[sa] += torch.from_numpy(s_row)
            row[sa] += torch.from_numpy(r_row)
    if want_grad:
        gx += row.to(x.dtype)[:, None] * x
    return (s.to(x.dtype) if want_value else None), gx


#: the fused numba pass is used from this many pairs on; below, its parallel start-up costs more than it saves.
FUSED_MIN_PAIRS = 2**16


def _fused_ok(x, y, v, kernel) -> bool:
    """The fused numba pass applies: Riesz kernel, CPU float32/float64 tensors, GEMM distances, numba present,
    and a problem large enough to pay for the parallel start-up."""
    return (_numba is not None and riesz_exponent(kernel) is not None and x.device.type == "cpu"
            and x.dtype in (torch.float32, torch.float64) and y.dtype == x.dtype and v.dtype == x.dtype
            and x.shape[1] > _EXPLICIT_DIFF_MAX_D and x.shape[0] * y.shape[0] >= FUSED_MIN_PAIRS)


def _rows_per_block(n: int, m: int, d: int, block_elems: int) -> int:
    per_row = m
    return max(1, min(n, block_elems // max(per_row, 1)))


def _profiles(kernel: RadialKernel, sq: torch.Tensor, want_phi: bool, want_dphi: bool,
              zero: torch.Tensor | None = None):
    """``phi(sq)`` and a fresh ``phi'(sq)`` block; the Riesz kernel in fewer passes over the block.

    Riesz: with ``t = s^(r/2 - 1)`` (set to 0 at ``s = 0``), ``phi = -s t`` and ``phi' = -(r/2) t``,
    the same values as :meth:`Riesz.profile` / :meth:`Riesz.dprofile` (zero force at coinciding points).
    For ``r = 1``, ``t = 1/sqrt(s)`` and ``phi = -sqrt(s)`` (``rsqrt``/``sqrt`` instead of a general power).
    ``zero``: the mask of the entries known to be 0 (from :func:`_block_sqdist`), or ``None``.
    """
    r = riesz_exponent(kernel)
    if r is not None:
        if zero is None:
            zero = sq <= 0
        if r == 1.0:
            phi = torch.sqrt(sq).neg_() if want_phi else None
            if not want_dphi:
                return phi, None
            t = torch.rsqrt(sq).masked_fill_(zero, 0.0)                    # 1/sqrt(s), 0 at s = 0
            return phi, t.mul_(-0.5)
        t = sq.clamp_min(torch.finfo(sq.dtype).tiny).pow_(r / 2 - 1)   # finite for r in (0, 2)
        t.masked_fill_(zero, 0.0)
        phi = -(sq * t) if want_phi else None
        return phi, (t.mul_(-r / 2) if want_dphi else None)
    return (kernel.profile(sq) if want_phi else None), (kernel.dprofile(sq) if want_dphi else None)


def _use_small_d(x, y, v, kernel, fused) -> bool:
    """The compiled low-dimensional loop of :mod:`.fused` applies (``fused=None``: whenever it can)."""
    if fused is False:
        return False
    ok = _small_d.supported(x, y, v, kernel)
    if fused is True and not ok:
        raise ValueError(f"fused=True needs numba, CPU float tensors, d <= {_small_d.MAX_D} and a kernel with a compiled form; "
                         f"got d={x.shape[1]}, {x.dtype} on {x.device}, {kernel!r}")
    return ok


def _blocked_pass(x, y, v, kernel: RadialKernel, *, want_value: bool, want_grad: bool, block_elems: int,
                  go: torch.Tensor | None = None, want_y: bool = False, want_v: bool = False, fused=None):
    """One pass over row blocks. Returns (s, gx, gy, gv), each possibly None.

    With ``go`` given (the incoming gradient of ``s``), ``gx``, ``gy``, ``gv``
    are the vector-Jacobian products of ``s`` with respect to ``x``, ``y``, ``v``.
    In ``d <= 8`` on the CPU the pairs go through the compiled loop of :mod:`.fused` (no blocks at all).
    """
    if _use_small_d(x, y, v, kernel, fused):
        return _small_d_pass(x, y, v, kernel, want_value=want_value, want_grad=want_grad, go=go, want_y=want_y,
                             want_v=want_v)
    n, d = x.shape
    m = y.shape[0]
    if d > _EXPLICIT_DIFF_MAX_D:          # GEMM distances: centre the clouds (translation invariant sums)
        x, y = centred(x, y)
    y_sq = None if d <= _EXPLICIT_DIFF_MAX_D else (y * y).sum(1)
    x_sq = None if y_sq is None else (y_sq if x is y else (x * x).sum(1))
    rows = _rows_per_block(n, m, d, block_elems)
    s = x.new_empty(n) if want_value else None
    gx = x.new_empty(n, d) if want_grad else None
    gy = torch.zeros_like(y) if want_y else None
    gv = torch.zeros_like(v) if want_v else None
    fused = fused is not False and go is None and not want_y and not want_v and _fused_ok(x, y, v, kernel)
    if fused and x is y:
        s, gx = _blocked_pass_symmetric(x, v, kernel, want_value=want_value, want_grad=want_grad,
                                        block_elems=block_elems)
        return s, gx, None, None
    if fused:
        s64 = np.zeros(rows, np.float64)
        row64 = np.zeros(rows, np.float64)
        tol = _CLOSE * torch.finfo(x.dtype).eps
        y_np, v_np = y_sq.detach().numpy(), v.detach().contiguous().numpy()
        y_rows = y.detach().contiguous().numpy()
    for start in range(0, n, rows):
        xb = x[start:start + rows]
        if fused:
            # one GEMM, one fused elementwise pass (distances, zero rule, phi and phi'), one GEMM for the gradient
            b = xb.shape[0]
            gm = xb @ y.T                                         # (B, M), overwritten with c_ij
            _riesz_block_fused(gm.numpy(), xb.detach().contiguous().numpy(), y_rows,
                               x_sq[start:start + b].contiguous().numpy(), y_np, v_np, tol,
                               riesz_exponent(kernel), want_value, 1 if want_grad else 0, _no_phi(gm), s64[:b], row64[:b])
            if want_value:
                s[start:start + b] = torch.from_numpy(s64[:b])
            if want_grad:
                gx[start:start + b] = torch.from_numpy(row64[:b]).to(x.dtype)[:, None] * xb - gm @ y
            continue
        sq, zero = _block_sqdist(xb, y, y_sq, None if x_sq is None else x_sq[start:start + rows])   # (B, M)
        phi, dphi = _profiles(kernel, sq, want_value or want_v, want_grad or want_y, zero)
        del sq, zero
        if want_value:
            s[start:start + rows] = phi @ v
        if want_v:
            gv += go[start:start + rows] @ phi
        if want_grad or want_y:
            c = dphi.mul_(2.0 * v[None, :])                   # (B, M)
            if go is not None:
                c = c * go[start:start + rows, None]
            if want_grad:
                gx[start:start + rows] = c.sum(1, keepdim=True) * xb - c @ y
            if want_y:
                gy += c.sum(0)[:, None] * y - c.T @ xb
    return s, gx, gy, gv


def _small_d_pass(x, y, v, kernel, *, want_value, want_grad, go, want_y, want_v):
    """:func:`_blocked_pass` through the compiled loop: ``go`` (the incoming gradient) turns the pass into the
    vector-Jacobian products ``gx = go * g(x; y, v)``, ``gy = v * g(y; x, go)`` and ``gv = s(y; x, go)``."""
    x, y, v = x.detach(), y.detach(), v.detach()
    if go is None:
        s, g = _small_d.fused_sum_and_grad(x, y, v, kernel, want_value=want_value, want_grad=want_grad)
        return s, g, None, None
    gx = gy = gv = None
    if want_grad:
        gx = go[:, None] * _small_d.fused_sum_and_grad(x, y, v, kernel, want_value=False)[1]
    if want_y or want_v:
        sy, g_y = _small_d.fused_sum_and_grad(y, x, go.detach().contiguous(), kernel, want_value=want_v,
                                              want_grad=want_y)
        gv = sy
        gy = None if g_y is None else v[:, None] * g_y
    return None, gx, gy, gv


class _BlockedKernelSum(torch.autograd.Function):
    """``s = K v`` with the backward pass written out. When ``x`` needs a gradient and the pass is fused (the
    compiled low-d loop, or the Riesz GEMM pass in high d), the forward pass computes the gradient rows
    ``g_i = sum_j v_j grad_1 K(x_i, y_j)`` with the value and keeps them, so that ``ds/dx`` costs no second pass."""

    @staticmethod
    def forward(ctx, x, y, v, kernel, block_elems, fused):
        keep_g = ctx.needs_input_grad[0] and (_use_small_d(x, y, v, kernel, fused)
                                              or (fused is not False and _fused_ok(x, y, v, kernel)))
        s, g, _, _ = _blocked_pass(x, y, v, kernel, want_value=True, want_grad=keep_g, block_elems=block_elems,
                                   fused=fused)
        ctx.save_for_backward(x, y, v, g if keep_g else None)
        ctx.kernel, ctx.block_elems, ctx.fused = kernel, block_elems, fused
        return s

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, go):
        x, y, v, g = ctx.saved_tensors
        need_x, need_y, need_v = ctx.needs_input_grad[:3]
        gx = go[:, None] * g if (need_x and g is not None) else None
        if (need_x and g is None) or need_y or need_v:
            _, gx2, gy, gv = _blocked_pass(x, y, v, ctx.kernel, want_value=False, want_grad=need_x and g is None,
                                           block_elems=ctx.block_elems, go=go, want_y=need_y, want_v=need_v,
                                           fused=ctx.fused)
            gx = gx if gx2 is None else gx2
        else:
            gy = gv = None
        return gx, gy, gv, None, None, None


def blocked_sum(x, y, v, kernel, *, block_elems=BLOCK_ELEMS, fused=None, **_):
    """``s`` ``[N]``, differentiable in ``x``, ``y``, ``v``; ``fused``: ``None`` (the compiled paths where they
    apply), ``False`` (torch blocks only) or ``True`` (the compiled low-d loop, else an error).

    Args:
        x: evaluation points ``[N, d]``.
        y: source points ``[M, d]``.
        v: weights ``[M]``.
        kernel: a kernel from :mod:`mmdflow.kernels`.
        block_elems: the most pairs held in one block.
        fused: see above.
        **_: other backend options (ignored).

    Returns:
        :math:`s_i = \\sum_j v_j K(x_i, y_j)`, ``[N]``.
    """
    return _BlockedKernelSum.apply(x, y, v, kernel, block_elems, fused)


def blocked_grad(x, y, v, kernel, *, block_elems=BLOCK_ELEMS, fused=None, **_):
    r"""Gradients :math:`g_i = \sum_j v_j\nabla_1 K(x_i, y_j)` in blocks of at most ``block_elems`` pairs (no autograd).

    Args:
        x: evaluation points ``[N, d]``.
        y: source points ``[M, d]``.
        v: weights ``[M]``.
        kernel: a kernel from :mod:`mmdflow.kernels`.
        block_elems: the most pairs held in one block.
        fused: ``None`` (the compiled paths where they apply), ``False`` (torch blocks only) or ``True`` (the
            compiled low-d loop, else an error).
        **_: other backend options (ignored).

    Returns:
        ``[N, d]`` tensor (detached), dtype and device of ``x``.
    """
    with torch.no_grad():
        return _blocked_pass(x, y, v, kernel, want_value=False, want_grad=True, block_elems=block_elems,
                             fused=fused)[1]


def blocked_sum_and_grad(x, y, v, kernel, *, block_elems=BLOCK_ELEMS, fused=None, **_):
    """Value ``[N]`` and gradient ``[N, d]`` in one pass over the blocks (each distance block formed once).

    Args:
        x: evaluation points ``[N, d]``.
        y: source points ``[M, d]``.
        v: weights ``[M]``.
        kernel: a kernel from :mod:`mmdflow.kernels`.
        block_elems: the most pairs held in one block.
        fused: as in :func:`blocked_sum`.
        **_: other backend options (ignored).

    Returns:
        ``(s, g)``: :math:`s_i = \\sum_j v_j K(x_i, y_j)` ``[N]`` and :math:`g_i = \\sum_j v_j\\nabla_1 K(x_i, y_j)`
        ``[N, d]``, detached.
    """
    with torch.no_grad():
        s, g, _, _ = _blocked_pass(x, y, v, kernel, want_value=True, want_grad=True, block_elems=block_elems,
                                   fused=fused)
    return s, g


class _SelfDoubleSum(torch.autograd.Function):
    r""":math:`E = \sum_{ij} w_i w_j K(x_i, x_j) = w^\top s`, with :math:`\partial E/\partial x_k = 2 w_k g_k`
    and :math:`\partial E/\partial w = 2 s` (the kernel matrix is symmetric): the gradient rows ``g`` come from
    the forward pass, so the backward pass costs nothing."""

    @staticmethod
    def forward(ctx, x, w, kernel, block_elems, fused):
        need_g = ctx.needs_input_grad[0]
        s, g, _, _ = _blocked_pass(x, x, w, kernel, want_value=True, want_grad=need_g, block_elems=block_elems,
                                   fused=fused)
        ctx.save_for_backward(w, s, g if need_g else None)
        return w @ s

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, go):
        w, s, g = ctx.saved_tensors
        gx = (2.0 * go) * w[:, None] * g if ctx.needs_input_grad[0] else None
        gw = (2.0 * go) * s if ctx.needs_input_grad[1] else None
        return gx, gw, None, None, None


def blocked_self_double_sum(x, w, kernel, *, block_elems=BLOCK_ELEMS, fused=None, **_):
    """``sum_ij w_i w_j K(x_i, x_j)`` (0-d), differentiable in ``x`` and ``w`` at the cost of one pass.

    Args:
        x: points ``[N, d]``.
        w: weights ``[N]``.
        kernel: a kernel from :mod:`mmdflow.kernels`.
        block_elems: the most pairs held in one block.
        fused: as in :func:`blocked_sum`.
        **_: other backend options (ignored).

    Returns:
        0-d tensor :math:`w^\\top K w`, differentiable in ``x`` and ``w``.
    """
    return _SelfDoubleSum.apply(x, w, kernel, block_elems, fused)
