r"""Coinciding points: the one-sided term of the directional derivatives of a kernel singular at 0.

For a kernel with slope :math:`c` at 0 (:math:`K(0, t w) = K(0, 0) + c\,t\|w\| + o(t)`, e.g. Riesz
:math:`-\|x\|^r`: :math:`c = -1` for :math:`r = 1`, :math:`-\infty` for :math:`r < 1`), every pair of coinciding
points :math:`x^a_i = x^b_j` adds :math:`c\,w^a_iw^b_j\|u^a_i - u^b_j\|` to the directional derivative
(Altekrüger, Hertrich, Steidl 2023, Sec. 4). :func:`coincidence_term` sums it over listed index pairs;
:func:`coinciding_groups` groups equal rows by hashing (a :class:`CoincidingGroups`, without forming the
``[N, M]`` pairs), and :func:`grouped_coincidence_term` / :func:`grouped_coincidence_and_grads` form the term (and
its gradients in the velocities) from the groups. :mod:`mmdflow.summation.dense` exports every name too.
"""

from __future__ import annotations

import math

import torch

from ..kernels import EXPLICIT_DIFF_MAX_D

__all__ = ["coincidence_term", "coinciding_pairs", "coinciding_groups", "CoincidingGroups", "grouped_coincidence_term",
           "grouped_coincidence_and_grads"]


def _pick(w, idx, like):
    """Entries ``idx`` of a ``[N, 1]`` weight column, or the scalar itself (uniform weights), as ``like``'s dtype."""
    return w[idx, 0] if isinstance(w, torch.Tensor) else torch.full(idx.shape, w, dtype=like.dtype, device=like.device)


def coincidence_term(ua, ub, ia, ib, wa, wb, slope: float) -> torch.Tensor:
    r""":math:`c\sum_{(i,j)} w^a_i w^b_j \|u^a_i - u^b_j\|` over the coinciding pairs ``(ia, ib)`` (0-d, differentiable).

    ``wa``, ``wb``: ``[N, 1]``, ``[M, 1]`` weight columns or scalars (uniform weights). ``ub = None``: the ``b``
    points do not move. For :math:`c = -\infty` (Riesz ``r < 1``) any coinciding
    pair with a non-zero relative velocity gives :math:`-\infty`.

    Args:
        ua: velocities ``[N, d]`` of the ``a`` points.
        ub: velocities ``[M, d]`` of the ``b`` points, or ``None``.
        ia: indices ``[P]`` into ``a`` of the coinciding pairs.
        ib: indices ``[P]`` into ``b``.
        wa: weights ``[N, 1]`` or a scalar.
        wb: weights ``[M, 1]`` or a scalar.
        slope: the kernel's slope :math:`c` at 0 (:func:`mmdflow.kernels.zero_slope`).

    Returns:
        0-d tensor, differentiable in the velocities.
    """
    w = ua[ia] if ub is None else ua[ia] - ub[ib]
    if slope == 0.0 or ia.numel() == 0:
        return w.sum() * 0.0
    coef = _pick(wa, ia, ua) * _pick(wb, ib, ua)
    norm2 = (w * w).sum(1)
    moving = norm2 > 0
    if math.isinf(slope):
        return torch.where(moving & (coef > 0), torch.full_like(coef, slope), torch.zeros_like(coef)).sum() + 0.0 * w.sum()
    safe = torch.where(moving, norm2, torch.ones_like(norm2)).sqrt()
    return slope * (coef * torch.where(moving, safe, torch.zeros_like(safe))).sum()




_HASH_MULTIPLIERS: dict = {}


def _row_hash(x: torch.Tensor) -> torch.Tensor:
    """A 64-bit key per row of ``x`` from the bit patterns of its entries (``-0.0`` counted as ``0.0``): equal rows get
    equal keys; unequal rows get equal keys only by a rare collision, which the caller removes by comparing rows."""
    x = x.contiguous() + 0.0                           # -0.0 + 0.0 = +0.0: one key for equal values
    bits = x.view(torch.int32 if x.element_size() == 4 else torch.int64) if x.element_size() in (4, 8) else \
        x.double().view(torch.int64)
    bits = bits.to(torch.int64)
    d = x.shape[1]
    mult = _HASH_MULTIPLIERS.get((d, x.device))
    if mult is None:   # fixed odd multipliers (a deterministic generator): the keys do not depend on global state
        g = torch.Generator().manual_seed(0x5EED + d)
        mult = (torch.randint(1, 2**62, (d,), generator=g, dtype=torch.int64) * 2 + 1).to(x.device)
        _HASH_MULTIPLIERS[d, x.device] = mult
    return (bits * mult).sum(1)                        # wraps modulo 2^64


class CoincidingGroups:
    r"""The coinciding pairs :math:`x^a_i = x^b_j` of two clouds, grouped by the point they share.

    Pairs of small groups are listed (``ia``, ``ib``: index tensors of equal length); a group with at least
    ``block_pairs`` pairs (e.g. a Dirac of a thousand particles in both clouds: a million pairs) is kept as a block,
    the indices ``(A, B)`` of its rows in ``xa`` and ``xb``, whose pairs are all of ``A x B``; sums over a block are
    then formed from ``[|A|, |B|]`` matrices, without gathering its pairs. Made by :func:`coinciding_groups`.
    """

    __slots__ = ("ia", "ib", "blocks")

    def __init__(self, ia: torch.Tensor, ib: torch.Tensor, blocks: tuple):
        self.ia, self.ib, self.blocks = ia, ib, tuple(blocks)

    def empty(self) -> bool:
        """Whether there is no coinciding pair at all.

        Returns:
            ``True`` when no pair is listed and there is no block.
        """
        return self.ia.numel() == 0 and not self.blocks

    def num_pairs(self) -> int:
        """The number of coinciding pairs, the blocks' pairs included.

        Returns:
            ``len(ia) + sum(|A| * |B|)`` over the blocks, an ``int``.
        """
        return self.ia.numel() + sum(a.numel() * b.numel() for a, b in self.blocks)

    def pairs(self) -> tuple[torch.Tensor, torch.Tensor]:
        """All pairs as two index tensors (the blocks expanded).

        Returns:
            ``(ia, ib)``: int64 index tensors ``[P]`` into ``xa`` and ``xb``, ``P =`` :meth:`num_pairs`; the listed
            pairs first, then the pairs of each block (row by row of ``A x B``). Memory ``O(P)``: for large blocks
            prefer the grouped sums.
        """
        ia, ib = [self.ia], [self.ib]
        for a, b in self.blocks:
            ia.append(a.repeat_interleave(b.numel()))
            ib.append(b.repeat(a.numel()))
        return torch.cat(ia), torch.cat(ib)


def _group_labels(x: torch.Tensor) -> tuple[torch.Tensor, int]:
    """Labels ``[N]`` in ``0..G-1``, equal exactly for equal rows of ``x`` (``-0.0`` equal to ``0.0``), and ``G``.

    Rows are sorted by a 64-bit key of their bit patterns (:func:`_row_hash`) and cut where the key changes; each row
    is then compared with the first row of its group, so a hash collision (two unequal rows with one key) is detected
    and resolved by an exact lexicographic grouping of the bit patterns (``torch.unique`` over rows: slower, rare).
    """
    n = x.shape[0]
    if n == 0:
        return torch.zeros(0, dtype=torch.int64, device=x.device), 0
    keys = _row_hash(x)
    sorted_keys, order = torch.sort(keys)
    new = torch.ones(n, dtype=torch.bool, device=x.device)
    new[1:] = sorted_keys[1:] != sorted_keys[:-1]
    gid = new.cumsum(0) - 1
    labels = torch.empty_like(gid).scatter_(0, order, gid)
    first = order[new]                                      # the first row (in key order) of each group
    if not bool((x == x[first[labels]]).all()):             # a hash collision: group by the bit patterns themselves
        bits = x.contiguous() + 0.0
        bits = bits.view(torch.int32 if bits.element_size() == 4 else torch.int64) \
            if bits.element_size() in (4, 8) else bits.double().view(torch.int64)
        _, labels = torch.unique(bits, dim=0, return_inverse=True)
        return labels, int(labels.max()) + 1
    return labels, int(gid[-1]) + 1


def coinciding_groups(xa: torch.Tensor, xb: torch.Tensor, *, block_pairs: int = 4096) -> CoincidingGroups:
    """The pairs ``(i, j)`` with ``xa[i] == xb[j]`` (exact row equality) as a :class:`CoincidingGroups`, without an
    ``[N, M]`` matrix and without listing the pairs of large groups.

    Equal rows of both clouds get one label (:func:`_group_labels`: one sort of ``N + M`` keys, exact); a label
    shared by ``na`` rows of ``xa`` and ``nb`` rows of ``xb`` gives ``na * nb`` pairs, listed when fewer than
    ``block_pairs``, else kept as a block. Cost ``O((N + M) log(N + M))`` plus the listed pairs.

    Args:
        xa: points ``[N, d]``.
        xb: points ``[M, d]`` (same ``d`` and dtype as ``xa``; no input checks).
        block_pairs: a group with at least this many pairs is kept as a block instead of being listed.

    Returns:
        A :class:`CoincidingGroups` with the listed pairs (``ia``, ``ib``: int64 ``[P]``) and the blocks.
    """
    na = xa.shape[0]
    labels, g = _group_labels(torch.cat([xa, xb]))
    la, lb = labels[:na], labels[na:]
    ca = torch.bincount(la, minlength=g)
    cb = torch.bincount(lb, minlength=g)
    prod = ca * cb
    oa = torch.argsort(la, stable=True)
    ob = torch.argsort(lb, stable=True)
    sa, sb = ca.cumsum(0) - ca, cb.cumsum(0) - cb
    large = (prod >= block_pairs).nonzero().flatten().tolist()
    blocks = tuple((oa[int(sa[k]):int(sa[k] + ca[k])], ob[int(sb[k]):int(sb[k] + cb[k])]) for k in large)
    small = (prod > 0) & (prod < block_pairs)
    rows = small[la].nonzero().flatten()                    # rows of xa in small shared groups
    lab = la[rows]
    counts = cb[lab]
    total = int(counts.sum())
    ia = torch.repeat_interleave(rows, counts)
    offset = torch.arange(total, device=xa.device) - torch.repeat_interleave(counts.cumsum(0) - counts, counts)
    ib = ob[torch.repeat_interleave(sb[lab], counts) + offset]
    return CoincidingGroups(ia, ib, blocks)


def coinciding_pairs(xa: torch.Tensor, xb: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Index pairs ``(i, j)`` with ``xa[i] == xb[j]`` (exact row equality), without an ``[N, M]`` matrix: the pairs of
    :func:`coinciding_groups`, every group listed.

    Args:
        xa: points ``[N, d]``.
        xb: points ``[M, d]`` (same ``d`` and dtype as ``xa``).

    Returns:
        ``(ia, ib)``: int64 index tensors ``[P]``, one entry per coinciding pair.
    """
    return coinciding_groups(xa, xb, block_pairs=2 ** 62).pairs()


def _block_pieces(ua_rows: torch.Tensor, ub_rows: torch.Tensor | None, width: int):
    """Relative velocities of a block in row chunks: yields ``(start, rel [c, |B|, d])`` with
    ``rel = ua_i - ub_j`` (``ub_rows = None``: ``ua_i``), at most about ``2^22`` entries per chunk (exact
    differences, any ``d``)."""
    nb, d = width, ua_rows.shape[1]
    step = max(1, 2 ** 22 // max(1, nb * d))
    for s0 in range(0, ua_rows.shape[0], step):
        u = ua_rows[s0:s0 + step]
        yield s0, (u[:, None, :] - ub_rows[None, :, :]) if ub_rows is not None else u[:, None, :]


def _norm_term(norm2: torch.Tensor, coef: torch.Tensor, slope: float) -> torch.Tensor:
    r""":math:`c\sum coef\cdot\sqrt{norm2}`, differentiable (zero gradient where ``norm2 = 0``); ``c = -inf``:
    ``-inf`` as soon as an entry moves with positive weight."""
    moving = norm2 > 0
    if math.isinf(slope):
        return torch.where(moving & (coef > 0), torch.full_like(norm2, slope), torch.zeros_like(norm2)).sum()
    safe = torch.where(moving, norm2, torch.ones_like(norm2)).sqrt()
    return slope * (coef * torch.where(moving, safe, torch.zeros_like(safe))).sum()


def _weights_of(w, idx: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """Weights ``[len(idx)]`` from a ``[N, 1]`` column or a scalar (uniform weights)."""
    return w[idx, 0] if isinstance(w, torch.Tensor) else like.new_full((idx.numel(),), w)


def grouped_coincidence_term(ua, ub, groups: CoincidingGroups, wa, wb, slope: float) -> torch.Tensor:
    r""":func:`coincidence_term` over a :class:`CoincidingGroups` (0-d, differentiable): the listed pairs, plus per
    block :math:`c\sum_{i\in A, j\in B} w^a_i w^b_j \|u^a_i - u^b_j\|` from ``[|A|, |B|]`` matrices (``ub = None``:
    :math:`c\sum_{i\in A} w^a_i\|u^a_i\|\sum_{j\in B} w^b_j`). ``wa``, ``wb``: ``[N, 1]``, ``[M, 1]`` weight columns
    or scalars.

    Args:
        ua: velocities ``[N, d]`` of the ``a`` points.
        ub: velocities ``[M, d]`` of the ``b`` points, or ``None`` (fixed points).
        groups: the coinciding pairs, from :func:`coinciding_groups`.
        wa: weights ``[N, 1]`` or a scalar (uniform).
        wb: weights ``[M, 1]`` or a scalar (uniform).
        slope: the kernel's slope :math:`c` at 0 (:func:`mmdflow.kernels.zero_slope`).

    Returns:
        0-d tensor, differentiable in the velocities (:math:`-\infty` for :math:`c = -\infty` and a moving pair of
        positive weight).
    """
    value = coincidence_term(ua, ub, groups.ia, groups.ib, wa, wb, slope)
    if slope == 0.0:
        return value
    for a, b in groups.blocks:
        w_a, w_b = _weights_of(wa, a, ua), _weights_of(wb, b, ua)
        if ub is None:
            value = value + _norm_term(ua[a].square().sum(1), w_a * w_b.sum(), slope) + 0.0 * ua.sum()
            continue
        for s0, rel in _block_pieces(ua[a], ub[b], b.numel()):
            norm2 = rel.square().sum(-1)
            value = value + _norm_term(norm2, w_a[s0:s0 + norm2.shape[0], None] * w_b[None, :], slope)
    return value


def grouped_coincidence_and_grads(ua, ub, groups: CoincidingGroups, wa: torch.Tensor, wb: torch.Tensor,
                                  slope: float):
    r"""Value and gradients in ``ua`` ``[Na, d]``, ``ub`` ``[Nb, d]`` (``None``: fixed points) of
    :math:`c\sum_{x^a_i = x^b_j} w^a_i w^b_j\|u^a_i - u^b_j\|` over a :class:`CoincidingGroups`, without autograd
    (weights ``wa`` ``[Na]``, ``wb`` ``[Nb]``): :math:`\nabla_{u^a_i} = c\sum_j w^a_i w^b_j\,e_{ij}`,
    :math:`\nabla_{u^b_j} = -c\sum_i w^a_i w^b_j\,e_{ij}`, :math:`e_{ij}` the unit vector of
    :math:`u^a_i - u^b_j` (0 where it vanishes). For :math:`c = -\infty` the value is :math:`-\infty` as soon as one
    pair of positive weight moves (gradients 0).

    Args:
        ua: velocities ``[Na, d]`` of the ``a`` points.
        ub: velocities ``[Nb, d]`` of the ``b`` points, or ``None`` (fixed points).
        groups: the coinciding pairs, from :func:`coinciding_groups`.
        wa: weights ``[Na]``.
        wb: weights ``[Nb]``.
        slope: the kernel's slope :math:`c` at 0 (:func:`mmdflow.kernels.zero_slope`).

    Returns:
        ``(value, gua, gub)``: the 0-d value, the gradient ``[Na, d]`` in ``ua`` and the gradient ``[Nb, d]`` in
        ``ub`` (``None`` when ``ub`` is ``None``), dtype and device of ``ua``.
    """
    tiny = torch.finfo(ua.dtype).tiny
    gua = torch.zeros_like(ua)
    gub = None if ub is None else torch.zeros_like(ub)
    value = ua.new_zeros(())
    moves = False
    ia, ib = groups.ia, groups.ib
    if ia.numel():
        rel = ua[ia] if ub is None else ua[ia] - ub[ib]
        norm = rel.square().sum(1).sqrt()
        coef = wa[ia] * wb[ib]
        moves = moves or bool((coef * norm > 0).any()) if math.isinf(slope) else moves
        if not math.isinf(slope):
            unit = (rel / (norm + tiny)[:, None]) * (coef * slope)[:, None]
            gua.index_add_(0, ia, unit)
            if gub is not None:
                gub.index_add_(0, ib, unit.neg())
            value = value + slope * (coef * norm).sum()
    for a, b in groups.blocks:
        wa_a, wb_b = wa[a], wb[b]
        if ub is None:                                  # fixed points: sum_j w_j ||u_i|| for every i of the block
            norm = ua[a].square().sum(1).sqrt()
            coef = wa_a * wb_b.sum()
            if math.isinf(slope):
                moves = moves or bool((coef * norm > 0).any())
                continue
            gua.index_add_(0, a, (ua[a] / (norm + tiny)[:, None]) * (coef * slope)[:, None])
            value = value + slope * (coef * norm).sum()
            continue
        if ua.shape[1] <= EXPLICIT_DIFF_MAX_D:         # [|A|, |B|] matrices, one coordinate at a time
            uat, ubt = ua[a].T, ub[b].T
            diffs = [uat[k][:, None] - ubt[k][None, :] for k in range(ua.shape[1])]
            sq = diffs[0] * diffs[0]
            for dk in diffs[1:]:
                sq = sq.addcmul_(dk, dk)
            norm = sq.sqrt_()
            if math.isinf(slope):
                moves = moves or bool(((wa_a[:, None] * wb_b[None, :]) * norm > 0).any())
                continue
            value = value + slope * (wa_a @ (norm @ wb_b))
            inv = norm.reciprocal().masked_fill_(norm == 0, 0.0)                # 0 where the pair stays together
            for k, dk in enumerate(diffs):
                t = dk.mul_(inv)                                                  # unit vectors' k-th coordinate
                gua[a, k] += slope * wa_a * (t @ wb_b)
                gub[b, k] -= slope * wb_b * (wa_a @ t)
            continue
        for s0, rel in _block_pieces(ua[a], ub[b], b.numel()):               # large d: exact differences in chunks
            rows = a[s0:s0 + rel.shape[0]]
            norm = rel.square().sum(-1).sqrt()
            coef = wa[rows][:, None] * wb_b[None, :]
            if math.isinf(slope):
                moves = moves or bool((coef * norm > 0).any())
                continue
            unit = (rel / (norm + tiny)[..., None]) * (coef * slope)[..., None]   # unit vectors first: no inf * 0
            gua.index_add_(0, rows, unit.sum(1))
            gub.index_add_(0, b, unit.sum(0).neg())
            value = value + slope * (coef * norm).sum()
    if math.isinf(slope):
        return value + (slope if moves else 0.0), torch.zeros_like(ua), None if ub is None else torch.zeros_like(ub)
    return value, gua, gub
