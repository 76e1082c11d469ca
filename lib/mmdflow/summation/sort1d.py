r"""One-dimensional signed sums by sorting: the inner step of the sliced backend.

For every slice ``p`` (a row of the projection arrays) and every query point
:math:`a_i` this computes, with source points :math:`b_k` and real weights
:math:`c_k` (which may be negative),

.. math::
    g_{p,i} = \sum_k c_k\,\operatorname{sign}(a_i - b_k), \qquad
    h_i = \sum_p \sum_k c_k\,|a_i - b_k|,

with :math:`\operatorname{sign}(0) = 0`, so that coinciding points exert no
force (the convention of :mod:`mmdflow.kernels`). After one sort of all points
of the slice, a single walk in increasing order gives, for each run of equal
values, the weight :math:`L` strictly below it and the weight :math:`E` inside
it; then :math:`g = 2L + E - C` and
:math:`h = a\,g - (2 L_b + E a - C_b)` where :math:`C = \sum_k c_k`,
:math:`L_b = \sum_{b_k < a} c_k b_k` and :math:`C_b = \sum_k c_k b_k`
(Hertrich et al., ICLR 2024, Sec. 3, the sorting algorithm for the energy
kernel). The results are scattered back to the unsorted positions during the
walk, so no second sort to invert the permutation is needed.

Layout: the queries are a ``[P, N]`` array ``zq`` with weights ``cq`` ``[N]``
(zero when the queries are not sources themselves); the other sources are a
``[P, M]`` array ``zs`` with weights ``cs`` ``[M]`` (``M = 0`` allowed). Index
``k < N`` of the combined row refers to ``zq``, ``k >= N`` to ``zs``.

Two engines with identical results (up to float rounding):

* :func:`sign_sums_numba`: a numba kernel for float32 (the production
  precision: the slicing error dominates float rounding), parallel over
  slices. It sorts with an LSD radix sort (three 11-bit passes over the
  order-preserving integer image of the float, the point's index packed in
  the low 32 bits of a ``uint64``) and walks the sorted keys once, decoding
  the values from the keys, so no gather of the values is needed. The key
  build (with the three histograms and the weighted sums) is one fused pass,
  and the hot loops are free of data-dependent branches (the float-to-key map
  uses the sign as a mask; query/source weights are table look-ups), which
  matters because the query/source pattern of the sorted order is random. Compiled on first use with
  ``cache=True`` (about 10-20 s once on 2 cores, then read from the on-disk cache).
  float64 rows (the particle flows that start at a perturbed Dirac need them)
  go through a simpler kernel: a stable ``argsort`` per row and the same walk.
* :func:`sign_sums_torch`: the portable fallback (stable argsort, cumulative
  sums, scatter), used on GPUs and when numba is missing.

Accumulations are in float64 in both engines.
"""

from __future__ import annotations

import numpy as np
import torch

__all__ = ["HAVE_NUMBA", "resolve_engine", "sign_sums", "sign_sums_numba", "sign_sums_torch"]

from .._jit import HAVE_NUMBA, numba, threaded

if HAVE_NUMBA:  # numba is optional: the torch engine covers every case.
    from numba import njit, prange

    @njit(cache=True, inline="always")
    def _sortable(u):
        """Order-preserving map of float32 bits to uint32, branch-free on the sign (-0.0 mapped like +0.0)."""
        u = np.uint32(u & np.uint32(0x7FFFFFFF)) if u == np.uint32(0x80000000) else u
        mask = np.uint32(np.int32(u) >> np.int32(31)) | np.uint32(0x80000000)
        return np.uint32(u ^ mask)

    @njit(cache=True, inline="always")
    def _h_of_run(val, below_h, below_zh, run_h, ch_tot, czh_tot):
        """``h = sum_k c_k |val - b_k|`` at a run of equal values ``val`` from the running sums (module formula)."""
        return val * (2.0 * below_h + run_h - ch_tot) - (2.0 * below_zh + run_h * val - czh_tot)

    @njit(cache=True, inline="always")
    def _unsortable(u):
        """Inverse of :func:`_sortable` (used on sorted keys, where the sign branch is predictable)."""
        return (u & np.uint32(0x7FFFFFFF)) if (u & np.uint32(0x80000000)) else ~u

    @njit(cache=True)
    def _sign_sums_row(zq, zs, p, cw, uniform, wq, wsrc, alpha, a, b, hist, fbuf, ubuf, g_out, g_row, h_row, h_mode):
        """One slice: fused key build (keys, three histograms, weighted sums), LSD radix passes, one walk.

        ``g`` of every point is written to ``g_row`` (``[N + M]``, unconditional writes: no
        branch on query/source in the hot loop), then copied to ``g_out[p]``; ``h`` goes to
        ``h_row`` (``h_mode`` 1, ``[N + M]``, overwritten for the queries) or is returned as the weighted sum (``h_mode`` 2).
        """
        n = zq.shape[1]
        m = zs.shape[1]
        total = n + m
        hist[:, :] = 0
        qb = zq[p].view(np.uint32)
        sb = zs[p].view(np.uint32)
        # fused key build + histograms + totals
        czh_q = 0.0
        czh_s = 0.0
        for k in range(n):
            u = _sortable(qb[k])
            a[k] = (np.uint64(u) << np.uint64(32)) | np.uint64(k)
            hist[0, u & np.uint32(0x7FF)] += 1
            hist[1, (u >> np.uint32(11)) & np.uint32(0x7FF)] += 1
            hist[2, u >> np.uint32(22)] += 1
            if h_mode != 0:
                czh_q += np.float64(zq[p, k]) * (wq if uniform else cw[k])
        for j in range(m):
            u = _sortable(sb[j])
            a[n + j] = (np.uint64(u) << np.uint64(32)) | np.uint64(n + j)
            hist[0, u & np.uint32(0x7FF)] += 1
            hist[1, (u >> np.uint32(11)) & np.uint32(0x7FF)] += 1
            hist[2, u >> np.uint32(22)] += 1
            if h_mode != 0:
                czh_s += np.float64(zs[p, j]) * (wsrc if uniform else cw[n + j])
        src = a
        dst = b
        for ps in range(3):
            shift = np.uint64(32 + 11 * ps)
            if hist[ps, np.intp((src[0] >> shift) & np.uint64(0x7FF))] == total:
                continue
            acc = 0
            for j in range(2048):
                c = hist[ps, j]
                hist[ps, j] = acc
                acc += c
            off = hist[ps]
            for k in range(total):
                key = src[k]
                dgt = np.intp((key >> shift) & np.uint64(0x7FF))
                dst[off[dgt]] = key
                off[dgt] += 1
            src, dst = dst, src
        keys = src
        # totals
        if uniform:
            c_tot = wq * n + wsrc * m
            ch_tot = alpha * wq * n + wsrc * m
        else:
            c_tot = 0.0
            ch_tot = 0.0
            for k in range(n):
                c_tot += cw[k]
            ch_tot = alpha * c_tot
            for j in range(m):
                c_tot += cw[n + j]
                ch_tot += cw[n + j]
        czh_tot = alpha * czh_q + czh_s
        # weights by kind (query, other source): indexed by 0/1 in the walk, which keeps it free of
        # data-dependent branches (about 2x faster than conditional expressions, which compile to jumps)
        wtab = np.empty(2)
        wtab[0] = wq
        wtab[1] = wsrc
        whtab = np.empty(2)
        whtab[0] = wq * alpha
        whtab[1] = wsrc
        wqtab = np.empty(2)
        wqtab[0] = wq
        wqtab[1] = 0.0
        alphatab = np.empty(2)
        alphatab[0] = alpha
        alphatab[1] = 1.0
        below = 0.0
        below_h = 0.0
        below_zh = 0.0
        hsum = 0.0
        e = 0
        while e < total:
            key = keys[e]
            top = key >> np.uint64(32)
            if e + 1 < total and (keys[e + 1] >> np.uint64(32)) == top:
                # a run of equal values (rare): general path
                run = 0.0
                run_h = 0.0
                f = e
                while f < total and (keys[f] >> np.uint64(32)) == top:
                    kf = np.intp(keys[f] & np.uint64(0xFFFFFFFF))
                    w = (wq if kf < n else wsrc) if uniform else cw[kf]
                    run += w
                    run_h += w * alpha if kf < n else w
                    f += 1
                sg = 2.0 * below + run - c_tot
                if h_mode != 0:
                    ubuf[0] = _unsortable(np.uint32(top))
                    val = np.float64(fbuf[0])
                    hv = _h_of_run(val, below_h, below_zh, run_h, ch_tot, czh_tot)
                else:
                    val = 0.0
                    hv = 0.0
                for j in range(e, f):
                    kj = np.intp(keys[j] & np.uint64(0xFFFFFFFF))
                    g_row[kj] = sg
                    if kj < n:
                        if h_mode == 1:
                            h_row[kj] = hv
                        elif h_mode == 2:
                            hsum += (wq if uniform else cw[kj]) * hv
                below += run
                below_h += run_h
                below_zh += run_h * val
                e = f
            else:
                k = np.intp(key & np.uint64(0xFFFFFFFF))
                sidx = np.intp(k >= n)          # 0: query, 1: other source; table look-ups, not branches
                if uniform:
                    w = wtab[sidx]
                    wh = whtab[sidx]
                    wself = wqtab[sidx]
                else:
                    w = cw[k]
                    wh = w * alphatab[sidx]
                    wself = w * (1.0 - sidx)
                g_row[k] = 2.0 * below + w - c_tot
                if h_mode != 0:
                    ubuf[0] = _unsortable(np.uint32(top))
                    val = np.float64(fbuf[0])
                    hv = _h_of_run(val, below_h, below_zh, wh, ch_tot, czh_tot)
                    if h_mode == 1:
                        h_row[k] = hv
                    else:
                        hsum += wself * hv
                    below_h += wh
                    below_zh += wh * val
                below += w
                e += 1
        for k in range(n):
            g_out[p, k] = g_row[k]
        return hsum

    @threaded(cache=True)
    def _sign_sums_f32(zq, cw, zs, g_out, h_acc, h_mode, nt, uniform, wq, wsrc, alpha):
        n_slices = zq.shape[0]
        total = zq.shape[1] + zs.shape[1]
        for t in prange(nt):
            a = np.empty(total, np.uint64)
            b = np.empty(total, np.uint64)
            hist = np.zeros((3, 2048), np.int64)
            ubuf = np.empty(1, np.uint32)
            fbuf = ubuf.view(np.float32)
            h_row = np.zeros(total if h_mode == 1 else 1, np.float64)
            g_row = np.empty(total, np.float32)
            hs = 0.0
            for p in range(t, n_slices, nt):
                hs += _sign_sums_row(zq, zs, p, cw, uniform, wq, wsrc, alpha, a, b, hist, fbuf, ubuf, g_out,
                                     g_row, h_row, h_mode)
                if h_mode == 1:  # sequential accumulation (the walk only writes h_row, no random read-modify-write)
                    for k in range(zq.shape[1]):
                        h_acc[t, k] += h_row[k]
            if h_mode == 2:
                h_acc[t, 0] += hs

    @njit(cache=True)
    def _sign_sums_row_sorted(vals, cw, n, alpha, h_mode, g_row, h_row):
        """One slice of any float dtype: a stable argsort of ``vals`` (``[N + M]``: queries first), one walk.

        ``cw`` ``[N + M]`` are the weights (queries' own first). Writes ``g`` of the queries to
        ``g_row`` and, with ``h_mode`` 1, their ``h`` to ``h_row``; returns the weighted sum of ``h``
        over the queries for ``h_mode`` 2. Runs of equal values share ``L`` and ``E`` (see the module).
        """
        total = vals.shape[0]
        order = np.argsort(vals, kind="mergesort")
        c_tot = 0.0
        ch_tot = 0.0
        czh_tot = 0.0
        for k in range(total):
            wh = cw[k] * alpha if k < n else cw[k]
            c_tot += cw[k]
            ch_tot += wh
            czh_tot += wh * vals[k]
        below = 0.0
        below_h = 0.0
        below_zh = 0.0
        hsum = 0.0
        e = 0
        while e < total:
            val = np.float64(vals[order[e]])
            run = 0.0
            run_h = 0.0
            f = e
            while f < total and vals[order[f]] == vals[order[e]]:
                k = order[f]
                run += cw[k]
                run_h += cw[k] * alpha if k < n else cw[k]
                f += 1
            sg = 2.0 * below + run - c_tot
            hv = _h_of_run(val, below_h, below_zh, run_h, ch_tot, czh_tot)
            for j in range(e, f):
                k = order[j]
                if k < n:
                    g_row[k] = sg
                    if h_mode == 1:
                        h_row[k] = hv
                    elif h_mode == 2:
                        hsum += cw[k] * hv
            below += run
            below_h += run_h
            below_zh += run_h * val
            e = f
        return hsum

    @threaded(cache=True)
    def _sign_sums_sorted(zq, cw, zs, g_out, h_acc, h_mode, nt, alpha):
        n_slices, n = zq.shape
        total = n + zs.shape[1]
        for t in prange(nt):
            vals = np.empty(total, zq.dtype)
            h_row = np.zeros(n if h_mode == 1 else 1, np.float64)
            hs = 0.0
            for p in range(t, n_slices, nt):
                vals[:n] = zq[p]
                vals[n:] = zs[p]
                hs += _sign_sums_row_sorted(vals, cw, n, alpha, h_mode, g_out[p], h_row)
                if h_mode == 1:
                    for k in range(n):
                        h_acc[t, k] += h_row[k]
            if h_mode == 2:
                h_acc[t, 0] += hs


def _h_mode(want_h) -> int:
    if want_h in (True, False):
        return int(want_h)
    if want_h == "weighted":
        return 2
    raise ValueError(f"want_h must be True, False or 'weighted', got {want_h!r}")


def _constant(c: torch.Tensor) -> float | None:
    """The common value of a weight vector, or ``None`` when the weights differ."""
    if c.numel() == 0:
        return 0.0
    first = float(c[0])
    return first if bool((c == first).all()) else None


def _as_np(t: torch.Tensor) -> np.ndarray:
    return t.detach().contiguous().numpy()


def sign_sums_numba(zq: torch.Tensor, cq: torch.Tensor, zs: torch.Tensor | None = None,
                    cs: torch.Tensor | None = None, *, want_h: bool = True, alpha: float = 1.0,
                    out: torch.Tensor | None = None):
    """Numba engine (float32 or float64 CPU tensors). Returns ``(g [P, N], h [N] or None)`` in the input dtype.

    float32 rows go through the radix-sort kernel; float64 rows (which cannot pack value and index
    into one 64-bit key) through a per-row stable ``argsort`` and the same walk, much faster than the
    torch engine for the many short rows of small problems.

    Args:
        zq: query projections ``[P, N]`` (float32 or float64, CPU).
        cq: weights ``[N]`` of the queries as sources (zeros when they are not sources).
        zs, cs: the other sources' projections ``[P, M]`` and weights ``[M]`` (or ``None``).
        want_h: ``True``: also return the summed absolute values ``h`` ``[N]``; ``"weighted"``: return
            only the float64 scalar sum_i cq_i h_i instead (no per-point array); ``False``: ``None``.
        alpha: factor on the queries' own weights ``cq`` in ``h`` (not in ``g``); the
            discrepancy uses ``1/2`` for its interaction term.
        out: optional contiguous float32 ``[P, N]`` tensor that receives ``g`` (re-used buffers
            save the page faults of a fresh allocation, about 0.5 ms per MB here).

    Returns:
        ``(g, h)``: the signed weight sums ``g`` ``[P, N]`` in the input dtype, and ``h`` (``[N]``, a float64 scalar
        for ``want_h="weighted"``, or ``None``).

    Raises:
        RuntimeError: numba is not installed.
        ValueError: the tensors are not on the CPU, or a slice holds ``2**32`` points or more.
        TypeError: the projections are not float32 or float64.
    """
    if not HAVE_NUMBA:
        raise RuntimeError("the numba engine needs numba; install it or use engine='torch'")
    if zq.device.type != "cpu":
        raise ValueError(f"the numba engine runs on CPU tensors only, got device {zq.device}")
    n_slices, n = zq.shape
    if zs is None:
        zs = zq.new_empty(n_slices, 0)
        cs = zq.new_empty(0, dtype=torch.float64)
    if n + zs.shape[1] >= 2**32:
        raise ValueError(f"a slice holds {n + zs.shape[1]} points; the numba engine supports fewer than 2**32")
    if zq.dtype not in (torch.float32, torch.float64):
        raise TypeError(f"the numba engine sorts float32 or float64 projections, got {zq.dtype}; use engine='torch'")
    h_mode = _h_mode(want_h)
    if out is None:
        g = torch.empty(n_slices, n, dtype=zq.dtype)
    elif out.shape != zq.shape or out.dtype != zq.dtype or not out.is_contiguous() or out.device != zq.device:
        raise ValueError(f"out must be a contiguous {zq.dtype} tensor of shape {tuple(zq.shape)} on {zq.device}, "
                         f"got {out.dtype} {tuple(out.shape)} on {out.device}")
    else:
        g = out
    nt = max(1, min(torch.get_num_threads(), numba.config.NUMBA_NUM_THREADS, n_slices))   # threads of the kernel
    h_acc = torch.zeros(nt, n if h_mode == 1 else 1, dtype=torch.float64)
    cw = torch.cat([cq.to(torch.float64), cs.to(torch.float64)])
    args = (_as_np(zq), _as_np(cw), _as_np(zs.to(zq.dtype)), g.numpy(), h_acc.numpy(), h_mode)
    if zq.dtype == torch.float64:
        _sign_sums_sorted(*args, nt, alpha)
    else:
        wq, wsrc = _constant(cq), _constant(cs)
        uniform = wq is not None and wsrc is not None
        _sign_sums_f32(*args, nt, uniform, wq or 0.0, wsrc or 0.0, alpha)
    if h_mode == 0:
        return g, None
    h = h_acc.sum(0)
    return g, (h.to(zq.dtype) if h_mode == 1 else h[0])


def sign_sums_torch(zq: torch.Tensor, cq: torch.Tensor, zs: torch.Tensor | None = None,
                    cs: torch.Tensor | None = None, *, want_h: bool = True, alpha: float = 1.0):
    """Torch engine (any device): stable argsort, float64 cumulative sums, scatter back.

    Same arguments and results as :func:`sign_sums_numba`.

    Args:
        zq: query projections ``[P, N]``.
        cq: weights ``[N]`` of the queries as sources.
        zs: the other sources' projections ``[P, M]``, or ``None``.
        cs: their weights ``[M]``, or ``None``.
        want_h: as in :func:`sign_sums_numba`.
        alpha: as in :func:`sign_sums_numba`.

    Returns:
        ``(g [P, N], h)`` as in :func:`sign_sums_numba`.
    """
    _h_mode(want_h)
    n_slices, n = zq.shape
    z = zq if zs is None else torch.cat([zq, zs.to(zq.dtype)], 1)                     # [P, K]
    c = cq.to(torch.float64) if zs is None else torch.cat([cq, cs]).to(torch.float64)  # [K]
    c = c.to(z.device)
    total = z.shape[1]
    order = torch.argsort(z, dim=1, stable=True)
    zsrt = z.gather(1, order)
    csrt = c[order]                                                                  # [P, K]
    new_run = torch.ones_like(zsrt, dtype=torch.bool)
    new_run[:, 1:] = zsrt[:, 1:] != zsrt[:, :-1]
    pos = torch.arange(total, device=z.device).expand(n_slices, total)
    start = torch.where(new_run, pos, torch.zeros_like(pos)).cummax(1).values       # first index of the run
    run_id = new_run.cumsum(1) - 1
    below = (csrt.cumsum(1) - csrt).gather(1, start)
    run = torch.zeros_like(csrt).scatter_add_(1, run_id, csrt).gather(1, run_id)
    sg = 2.0 * below + run - c.sum()
    g = torch.empty_like(sg).scatter_(1, order, sg)[:, :n]
    h = None
    if want_h:
        if alpha != 1.0:
            csrt = torch.where(order < n, alpha * csrt, csrt)
            below = (csrt.cumsum(1) - csrt).gather(1, start)
            run = torch.zeros_like(csrt).scatter_add_(1, run_id, csrt).gather(1, run_id)
            sg = 2.0 * below + run - csrt.sum(1, keepdim=True)
        z64 = zsrt.to(torch.float64)
        cz = csrt * z64
        below_z = (cz.cumsum(1) - cz).gather(1, start)
        hv = z64 * sg - (2.0 * below_z + run * z64 - cz.sum(1, keepdim=True))
        h = torch.empty_like(hv).scatter_(1, order, hv)[:, :n].sum(0)
        h = (cq.to(h) * h).sum() if want_h == "weighted" else h.to(zq.dtype)
    return g.to(zq.dtype), h


def resolve_engine(engine: str, z: torch.Tensor) -> str:
    """The engine ``"auto"`` stands for with projections like ``z``: numba for float32/64 on CPU when installed.

    Args:
        engine: ``"auto"``, ``"numba"`` or ``"torch"``.
        z: projections ``[P, N]``.

    Returns:
        ``"numba"`` or ``"torch"`` for ``"auto"``, else ``engine`` itself.
    """
    if engine == "auto":
        return "numba" if (HAVE_NUMBA and z.device.type == "cpu"
                           and z.dtype in (torch.float32, torch.float64)) else "torch"
    return engine


def sign_sums(zq, cq, zs=None, cs=None, *, want_h: bool = True, alpha: float = 1.0, engine: str = "auto",
              out: torch.Tensor | None = None):
    """Dispatch: ``engine`` is ``"numba"``, ``"torch"`` or ``"auto"`` (numba on CPU when installed).

    ``out`` (numba engine only; ignored by the torch engine) receives ``g``.

    Args:
        zq: query projections ``[P, N]``.
        cq: weights ``[N]`` of the queries as sources.
        zs: the other sources' projections ``[P, M]``, or ``None``.
        cs: their weights ``[M]``, or ``None``.
        want_h: as in :func:`sign_sums_numba`.
        alpha: as in :func:`sign_sums_numba`.
        engine: ``"numba"``, ``"torch"`` or ``"auto"``.
        out: as in :func:`sign_sums_numba`.

    Returns:
        ``(g [P, N], h)`` as in :func:`sign_sums_numba`.

    Raises:
        ValueError: unknown ``engine``.
    """
    engine = resolve_engine(engine, zq)
    if engine == "numba":
        return sign_sums_numba(zq, cq, zs, cs, want_h=want_h, alpha=alpha, out=out)
    if engine == "torch":
        return sign_sums_torch(zq, cq, zs, cs, want_h=want_h, alpha=alpha)
    raise ValueError(f"unknown 1D engine {engine!r}; choose 'auto', 'numba' or 'torch'")
