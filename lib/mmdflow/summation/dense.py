r"""The ``dense`` backend: the reference for every other backend.

It forms the full ``[N, M]`` kernel matrix from exact differences (``O(N M d)`` memory) and lets
autograd differentiate it:

.. math::
    s_i = \sum_j v_j K(x_i, y_j) = (\mathbf K v)_i, \qquad
    g_i = \sum_j v_j \nabla_1 K(x_i, y_j) = \sum_j v_j\,2\phi'(\|x_i-y_j\|^2)(x_i - y_j).

For the Riesz kernel :math:`K(x, y) = -\|x-y\|^r` the distances come from ``torch.cdist`` with explicit
differences (no GEMM), which keeps the autograd graph to a few nodes: the two-batch estimates of the
neural schemes (small ``N``, ``M``, many Adam iterations) spend their time here. Both forms are tested
against :func:`reference_sum`, the plain ``profile(squared_distances)`` formula.

:func:`kernel_matrix` is the Gram matrix :math:`K_{ij} = K(x_i, y_j)` built with the fast distance routine
:func:`mmdflow.kernels.pairwise_squared_distances` (explicit differences for ``d <= 8``, a GEMM above).
The term of coinciding points in the directional derivatives is in :mod:`mmdflow.summation.coinciding` (its names
are exported here too).
"""

from __future__ import annotations

import math

import torch

from .._checks import check_clouds, check_pairs_memory
from ..kernels import (EXPLICIT_DIFF_MAX_D, RadialKernel, centred, pairwise_squared_distances, squared_distances,
                       riesz_exponent, zero_slope)

from .coinciding import (CoincidingGroups, coincidence_term, coinciding_groups, coinciding_pairs,
                         grouped_coincidence_and_grads, grouped_coincidence_term)
from .coinciding import _row_hash  # noqa: F401  (benchmarks/bench_neural.py)

__all__ = ["dense_sum", "dense_grad", "reference_sum", "kernel_matrix", "riesz_distance_power", "zero_slope",
           "coincidence_term", "dense_directional_derivative", "reference_directional_derivative", "coinciding_pairs",
           "coinciding_groups", "CoincidingGroups", "grouped_coincidence_term", "grouped_coincidence_and_grads",
           "dense_pair_sum_and_grads"]


def riesz_distance_power(x: torch.Tensor, y: torch.Tensor, r: float) -> torch.Tensor:
    r"""``[N, M]`` matrix :math:`\|x_i - y_j\|^r` from explicit differences, with zero gradient where ``x_i = y_j``.

    ``torch.cdist`` without the GEMM form; for ``r != 1`` the power is taken only of positive distances
    (coinciding points give exactly 0 with gradient 0, the convention of :mod:`mmdflow.kernels`; a clamp before
    the power would give :math:`\text{tiny}^r`, e.g. 0.42 in float32 for ``r = 0.01``).

    Args:
        x: points ``[N, d]``.
        y: points ``[M, d]``.
        r: the exponent :math:`r > 0`.

    Returns:
        ``[N, M]`` tensor, dtype and device of ``x``.
    """
    check_pairs_memory(x, y, 3, "the dense backend's [N, M] distance matrices")
    dist = torch.cdist(x, y, compute_mode="donot_use_mm_for_euclid_dist")
    if r == 1.0:
        return dist
    pos = dist > 0
    return torch.where(pos, torch.where(pos, dist, torch.ones_like(dist)) ** r, torch.zeros_like(dist))


def reference_sum(x, y, v, kernel: RadialKernel) -> torch.Tensor:
    r"""The textbook formula :math:`s = \phi(\|x_i - y_j\|^2)\,v`, ``[N]`` (``[N, M, d]`` differences).

    Args:
        x: evaluation points ``[N, d]``.
        y: source points ``[M, d]``.
        v: weights ``[M]``.
        kernel: a kernel from :mod:`mmdflow.kernels`.

    Returns:
        ``[N]`` tensor, differentiable in ``x``, ``y`` and ``v``.
    """
    check_pairs_memory(x, y, 2 * x.shape[1] + 3, "the dense backend's [N, M, d] differences")
    return kernel.profile(squared_distances(x, y)) @ v


def dense_sum(x, y, v, kernel: RadialKernel, **_) -> torch.Tensor:
    """``s`` ``[N]``, differentiable in ``x``, ``y`` and ``v`` (Riesz: ``torch.cdist``; else :func:`reference_sum`).

    Args:
        x: evaluation points ``[N, d]``.
        y: source points ``[M, d]``.
        v: weights ``[M]``.
        kernel: a kernel from :mod:`mmdflow.kernels`.
        **_: backend options (ignored).

    Returns:
        :math:`s_i = \\sum_j v_j K(x_i, y_j)`, ``[N]``.
    """
    r = riesz_exponent(kernel)
    if r is not None:
        return -(riesz_distance_power(x, y, r) @ v)
    return reference_sum(x, y, v, kernel)


def dense_grad(x, y, v, kernel: RadialKernel, **_) -> torch.Tensor:
    """``g`` ``[N, d]`` from the ``[N, M, d]`` tensor of :meth:`RadialKernel.grad`.

    Args:
        x: evaluation points ``[N, d]``.
        y: source points ``[M, d]``.
        v: weights ``[M]``.
        kernel: a kernel from :mod:`mmdflow.kernels`.
        **_: backend options (ignored).

    Returns:
        :math:`g_i = \\sum_j v_j\\nabla_1 K(x_i, y_j)`, ``[N, d]``.

    Raises:
        MemoryError: the ``[N, M, d]`` temporaries exceed the memory budget.
    """
    check_pairs_memory(x, y, 4 * x.shape[1] + 3, "the dense backend's [N, M, d] gradient terms")
    return (kernel.grad(x, y) * v[None, :, None]).sum(1)


def kernel_matrix(x: torch.Tensor, y: torch.Tensor, kernel: RadialKernel) -> torch.Tensor:
    r"""The Gram matrix :math:`K_{ij} = K(x_i, y_j)`, ``[N, M]``, without an ``[N, M, d]`` temporary.

    Distances by :func:`mmdflow.kernels.pairwise_squared_distances` (explicit differences for ``d <= 8``,
    a GEMM with the coinciding-pairs rule above); agrees with ``kernel(x, y)`` (the dense reference).

    Args:
        x: points ``[N, d]``.
        y: points ``[M, d]``.
        kernel: a kernel from :mod:`mmdflow.kernels`.

    Returns:
        ``[N, M]`` tensor, dtype and device of ``x``.

    Raises:
        TypeError: ``kernel`` is not a :class:`~mmdflow.kernels.RadialKernel`.
        ValueError: the points are not finite ``[*, d]`` tensors of one space.
        MemoryError: the matrix exceeds the memory budget.
    """
    check_clouds(x, y)
    if not isinstance(kernel, RadialKernel):
        raise TypeError(f"kernel must be an mmdflow.kernels kernel, got {type(kernel).__name__}")
    check_pairs_memory(x, y, 4, "the [N, M] Gram matrix", instead="mmdflow.summation.kernel_sum with backend='blocked' "
                       "(memory-bounded sums, no matrix)")
    if x.shape[1] > EXPLICIT_DIFF_MAX_D:
        x, y = centred(x, y)
    sq, _ = pairwise_squared_distances(x, y)
    return kernel.profile(sq)


def _row(v):
    """A ``[M, 1]`` weight column as the ``[1, M]`` row that scales the columns of a matrix (a scalar stays)."""
    return v.T if isinstance(v, torch.Tensor) else v


def dense_directional_derivative(xa, ua, xb, ub, kernel: RadialKernel, wa, wb) -> torch.Tensor:
    r"""Matrix form of :math:`\sum_{ij} w^a_i w^b_j \frac{d}{dt}|_{0^+} K(x^a_i + t u^a_i, x^b_j + t u^b_j)` (0-d).

    ``wa``, ``wb``: weight columns ``[N, 1]``, ``[M, 1]`` or scalars ``1/N``, ``1/M`` (uniform).

    With :math:`c_{ij} = 2\phi'(\|x^a_i - x^b_j\|^2)` (0 at coinciding points), the smooth part is linear in
    the velocities: :math:`\sum_i w^a_i\langle A_i, u^a_i\rangle + \sum_j w^b_j\langle B_j, u^b_j\rangle`, with
    :math:`A_i = \sum_j w^b_j c_{ij}(x^a_i - x^b_j)` and :math:`B_j = \sum_i w^a_i c_{ij}(x^b_j - x^a_i)`, both
    formed without autograd from one ``[N, M]`` matrix; coinciding pairs add :func:`coincidence_term`.

    Args:
        xa: points ``[N, d]``.
        ua: their velocities ``[N, d]``.
        xb: points ``[M, d]``.
        ub: their velocities ``[M, d]``, or ``None`` (fixed points).
        kernel: a kernel from :mod:`mmdflow.kernels`.
        wa: weights ``[N, 1]`` or ``1/N``.
        wb: weights ``[M, 1]`` or ``1/M``.

    Returns:
        0-d tensor, differentiable in ``ua`` and ``ub``.

    Raises:
        MemoryError: the ``[N, M]`` matrices exceed the memory budget.
    """
    check_pairs_memory(xa, xb, 5, "the dense directional derivative's [N, M] matrices")
    with torch.no_grad():
        sq = torch.cdist(xa, xb, compute_mode="donot_use_mm_for_euclid_dist").square_()
        c = 2.0 * kernel.dprofile(sq)
        a, _ = weighted_differences(c * _row(wb), xa, xb, want_b=False)
        if ub is not None:
            _, b = weighted_differences(c * wa, xa, xb)
        slope = zero_slope(kernel)
        pairs = (sq == 0).nonzero().T if slope != 0.0 else None
    value = (wa * a * ua).sum()
    if ub is not None:
        value = value + (wb * b * ub).sum()
    if pairs is not None:
        value = value + coincidence_term(ua, ub, pairs[0], pairs[1], wa, wb, slope)
    return value


def reference_directional_derivative(xa, ua, xb, ub, kernel: RadialKernel, wa, wb) -> torch.Tensor:
    r"""The same sum from the ``[N, M, d]`` differences :math:`z_{ij}` and relative velocities :math:`w_{ij}`:
    :math:`2\phi'(\|z\|^2)\langle z, w\rangle` where :math:`z \ne 0`, :math:`c\|w\|` where :math:`z = 0`.

    Args:
        xa: points ``[N, d]``.
        ua: their velocities ``[N, d]``.
        xb: points ``[M, d]``.
        ub: their velocities ``[M, d]``, or ``None`` (fixed points).
        kernel: a kernel from :mod:`mmdflow.kernels`.
        wa: weights ``[N, 1]`` or ``1/N``.
        wb: weights ``[M, 1]`` or ``1/M``.

    Returns:
        0-d tensor, differentiable in ``ua`` and ``ub`` (the dense reference of :func:`dense_directional_derivative`).
    """
    z = xa[:, None, :] - xb[None, :, :]
    w = ua[:, None, :] - (ub[None, :, :] if ub is not None else 0.0)
    sq = (z * z).sum(-1)
    g = 2.0 * kernel.dprofile(sq) * (z * w).sum(-1)
    coinc = (sq == 0).nonzero().T
    extra = coincidence_term(ua, ub, coinc[0], coinc[1], wa, wb, zero_slope(kernel))
    return (g * wa * _row(wb)).sum() + extra



def _profile_and_slope(kernel: RadialKernel, sq: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    r""":math:`\phi(s)` and :math:`2\phi'(s)` (0 at ``s = 0``) at squared distances ``sq``; for Riesz kernels without
    comparisons or ``where`` (these are slow on small CPU tensors): :math:`2\phi'(s) = -r\,s^{r/2}/(s + \text{tiny})`,
    which is 0 at ``s = 0`` and :math:`-r s^{r/2-1}` to rounding for ``s`` above the smallest normal number."""
    r = riesz_exponent(kernel)
    if r is not None:
        p = sq.sqrt() if r == 1.0 else sq.pow(r / 2)
        return -p, p.div(sq + torch.finfo(sq.dtype).tiny).mul_(-r)
    return kernel.profile(sq), 2.0 * kernel.dprofile(sq)


def dense_pair_sum_and_grads(a: torch.Tensor, b: torch.Tensor, kernel: RadialKernel, wa: torch.Tensor,
                             wb: torch.Tensor, *, want_b: bool = True, want_mask: bool = False):
    r"""Value and both gradients of :math:`S = \sum_{ij} w^a_i w^b_j K(a_i, b_j)` from one ``[Na, Nb]`` matrix.

    :math:`\nabla_{a_i}S = w^a_i\sum_j w^b_j c_{ij}(a_i - b_j)` and :math:`\nabla_{b_j}S = w^b_j\sum_i w^a_i
    c_{ij}(b_j - a_i)` with :math:`c_{ij} = 2\phi'(\|a_i - b_j\|^2)` (0 at coinciding points) and
    :math:`C_{ij} = w^a_i w^b_j c_{ij}`. For ``d <= EXPLICIT_DIFF_MAX_D`` from explicit differences, one
    coordinate at a time (``[Na, Nb]`` matrices, exact whatever the offset and spread of the clouds); above, as
    ``rowsum(C) a - C b`` on the centred clouds with GEMM distances
    (:func:`mmdflow.kernels.pairwise_squared_distances`). No input checks and no autograd: the internal path
    of :func:`mmdflow.summation.pair_sum_and_grads`.

    Args:
        a: points ``[Na, d]``.
        b: points ``[Nb, d]``.
        kernel: a kernel from :mod:`mmdflow.kernels`.
        wa: weights ``[Na]`` or a Python float (uniform).
        wb: weights ``[Nb]`` or a Python float (uniform).
        want_b: also form ``gb`` (else ``None``).
        want_mask: also return the coinciding pairs (else ``None``).

    Returns:
        ``(S, ga, gb, mask)``: the 0-d value, ``[Na, d]``, ``[Nb, d]`` or ``None``, and the ``[Na, Nb]`` bool mask of
        coinciding pairs or ``None``.
    """
    sq, diffs, a, b = _pair_geometry(a, b)
    phi, c = _profile_and_slope(kernel, sq)
    if isinstance(wa, float) and isinstance(wb, float):      # uniform weights: scalars, no [Na, Nb] products
        value = phi.sum() * (wa * wb)
        cm = c.mul_(wa * wb)
    else:
        wa, wb = _weight_vector(wa, a), _weight_vector(wb, b)
        value = wa @ (phi @ wb)
        cm = c.mul_(wa[:, None]).mul_(wb[None, :])
    ga, gb = weighted_differences(cm, a, b, diffs, want_b=want_b)
    return value, ga, gb, (sq == 0 if want_mask else None)


def _weight_vector(w, x):
    """Weights ``[N]``: a tensor as is, a scalar (uniform weights) as a constant vector."""
    return w if isinstance(w, torch.Tensor) else x.new_full((x.shape[0],), w)


def _pair_geometry(a, b):
    """Squared distances ``[Na, Nb]`` and, for ``d <= EXPLICIT_DIFF_MAX_D``, the coordinate differences (a list of
    ``d`` matrices ``a_ik - b_jk``); above, ``None`` and the centred clouds for the GEMM form."""
    d = a.shape[1]
    if d <= EXPLICIT_DIFF_MAX_D:
        bt = b.T.contiguous()
        diffs = [a[:, k:k + 1] - bt[k] for k in range(d)]
        sq = diffs[0] * diffs[0]
        for dk in diffs[1:]:
            sq = sq.addcmul_(dk, dk)
        return sq, diffs, a, b
    a, b = centred(a, b)
    sq, _ = pairwise_squared_distances(a, b, exact=False)
    return sq, None, a, b


def weighted_differences(cm: torch.Tensor, a: torch.Tensor, b: torch.Tensor | None, diffs=None, *,
                         want_b: bool = True):
    r""":math:`\big(\sum_j C_{ij}(a_i - b_j)\big)_i` ``[Na, d]`` and :math:`\big(\sum_i C_{ij}(b_j - a_i)\big)_j`
    ``[Nb, d]`` for a matrix ``cm`` ``[Na, Nb]``: from the coordinate differences ``diffs`` when given (exact),
    else as ``rowsum(C) a - C b`` (``b = None``: the points ``b`` are all 0, e.g. fixed points of a velocity)."""
    if diffs is not None:
        terms = [cm * dk for dk in diffs]
        ga = torch.stack([t.sum(1) for t in terms], 1)
        gb = torch.stack([t.sum(0) for t in terms], 1).neg_() if want_b else None
        return ga, gb
    ga = cm.sum(1, keepdim=True) * a
    if b is not None:
        ga = ga - cm @ b
    gb = None
    if want_b:
        gb = -(cm.T @ a) if b is None else cm.sum(0)[:, None] * b - cm.T @ a
    return ga, gb


def _coincidence_and_grads(ua, ub, coinciding, wa, wb, slope: float):
    r""":math:`c\sum_{x^a_i = x^b_j} w^a_i w^b_j\|u^a_i - u^b_j\|` and its gradients in ``ua``, ``ub`` (``ub = None``:
    fixed points, velocity 0); ``coinciding``: a bool mask ``[Na, Nb]`` or index pairs ``(ia, ib)``. For
    :math:`c = -\infty` the value is :math:`-\infty` as soon as one coinciding pair moves (gradients 0)."""
    if isinstance(coinciding, CoincidingGroups):     # equal rows grouped (:func:`.coinciding.coinciding_groups`)
        return grouped_coincidence_and_grads(ua, ub, coinciding, wa, wb, slope)
    if isinstance(coinciding, tuple):
        ia, ib = coinciding
        rel = ua[ia] if ub is None else ua[ia] - ub[ib]
        norm = rel.square().sum(1).sqrt()
        coef = wa[ia] * wb[ib]
        if math.isinf(slope):
            return (coef * norm > 0).any().to(ua.dtype) * slope, torch.zeros_like(ua), \
                None if ub is None else torch.zeros_like(ub)
        unit = rel * (coef * slope / (norm + torch.finfo(norm.dtype).tiny))[:, None]
        gua = torch.zeros_like(ua).index_add_(0, ia, unit)
        gub = None if ub is None else torch.zeros_like(ub).index_add_(0, ib, unit.neg())
        return slope * (coef * norm).sum(), gua, gub
    cm = coinciding.to(ua.dtype).mul_(wa[:, None]).mul_(wb[None, :])
    if ub is None:                                   # fixed points: the relative velocity is u^a_i itself
        sq = ua.square().sum(1)
        norm = sq.sqrt()
        rows = cm.sum(1)
        if math.isinf(slope):
            return (rows * norm > 0).any().to(ua.dtype) * slope, torch.zeros_like(ua), None
        q = norm.div(sq + torch.finfo(sq.dtype).tiny).mul_(rows).mul_(slope)
        return slope * (rows * norm).sum(), q[:, None] * ua, None
    sq, diffs, pa, pb = _pair_geometry(ua, ub)
    norm = sq.sqrt()
    if math.isinf(slope):
        return (cm * norm > 0).any().to(ua.dtype) * slope, torch.zeros_like(ua), torch.zeros_like(ub)
    q = norm.div(sq + torch.finfo(sq.dtype).tiny).mul_(cm).mul_(slope)
    gua, gub = weighted_differences(q, pa, pb, diffs)
    return slope * (cm * norm).sum(), gua, gub
