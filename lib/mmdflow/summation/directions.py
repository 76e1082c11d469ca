r"""Directions for slicing, kept apart from the sums that use them.

The slicing identity (Hertrich, Wald, Altekrüger, Hagemann, ICLR 2024): for :math:`r \in (0, 2)` and
:math:`\xi` uniform on the sphere :math:`S^{d-1}`,

.. math::
    \|z\|^r = c_{d,r}\,\mathbb E_\xi\,|\langle \xi, z\rangle|^r, \qquad
    c_{d,r} = \frac{\sqrt\pi\,\Gamma(\tfrac{d+r}{2})}{\Gamma(\tfrac d2)\,\Gamma(\tfrac{r+1}{2})}.

Rules (:data:`DIRECTION_RULES`): ``"iid"`` (relative gradient error about :math:`\sqrt{\pi d/(2P)}`),
``"orthogonal"`` (blocks of ``d`` orthonormal directions, each a Haar rotation; Hertrich, Jahn,
Quellmalz, ICLR 2025), ``"equispaced"`` (``d = 2``: angles :math:`\pi (p + u)/P`, one random offset)
and ``"auto"`` (``"equispaced"`` in ``d = 2``, else ``"orthogonal"``). Every rule is unbiased.

:func:`span_basis` gives the affine span of few points in many dimensions, where slicing is cheaper
and more accurate (``k`` directions' worth of constant :math:`c_{k,1}` instead of :math:`c_{d,1}`).
"""

from __future__ import annotations

import math

import torch

from .._checks import check_int, check_riesz_exponent

__all__ = ["DIRECTION_RULES", "SUBSPACE_CHOICES", "slicing_constant", "default_n_directions", "sample_directions",
           "directions_for", "span_basis"]

#: the direction rules understood by :func:`sample_directions`.
DIRECTION_RULES = ("auto", "iid", "orthogonal", "equispaced")
#: the values of the ``subspace`` argument of :func:`span_basis`.
SUBSPACE_CHOICES = ("auto", True, False)


def slicing_constant(d: int, r: float = 1.0) -> float:
    r"""The slicing constant :math:`c_{d,r} = \sqrt\pi\,\Gamma(\frac{d+r}2) / (\Gamma(\frac d2)\Gamma(\frac{r+1}2))`.

    Satisfies :math:`\|z\|^r = c_{d,r}\,\mathbb E_{\xi\sim U(S^{d-1})}|\langle\xi,z\rangle|^r`
    (Hertrich et al., ICLR 2024). Evaluated with ``lgamma``, so it is accurate for large ``d``:
    ``c_{1,r} = 1``, ``c_{2,1} = pi/2``, ``c_{3,1} = 2``, ``c_{d,1} ~ sqrt(pi d / 2)``.

    Args:
        d: the dimension (an integer >= 1).
        r: the Riesz exponent in :math:`(0, 2)`.

    Returns:
        :math:`c_{d,r}` as a float.

    Raises:
        ValueError: ``d < 1`` or ``r`` outside :math:`(0, 2)`.
    """
    d = check_int(d, "d", 1)
    r = check_riesz_exponent(r)
    return math.exp(0.5 * math.log(math.pi) + math.lgamma((d + r) / 2) - math.lgamma(d / 2)
                    - math.lgamma((r + 1) / 2))


def default_n_directions(d: int) -> int:
    """Default number of directions: 1 in ``d = 1`` (exact), 100 in ``d = 2`` (equispaced), 1000 otherwise.

    Args:
        d: the dimension.

    Returns:
        The number of directions ``P``.
    """
    return 1 if d == 1 else (100 if d == 2 else 1000)


def _haar_frames(d: int, n: int, generator, dtype, device) -> torch.Tensor:
    """``n`` rows of orthonormal blocks: each block of ``d`` rows is a Haar-random rotation of ``R^d``.

    QR of Gaussian matrices with the sign of ``diag(R)`` fixed (Mezzadri 2007), so that each block is
    exactly Haar distributed. A last partial block of ``k < d`` rows is the ``Q`` factor of a ``[d, k]``
    Gaussian (the first ``k`` columns of a Haar rotation have this law), which costs ``O(d k^2)``
    instead of ``O(d^3)``.
    """
    n_full, rest = divmod(n, d)
    work = torch.float64 if dtype == torch.float64 else torch.float32   # float32 QR: half the cost
    blocks = []
    threads = torch.get_num_threads()
    try:
        # LAPACK's QR is made of many small steps; on a few shared CPU cores its thread synchronisation
        # costs more than it gains (measured 5x slower with 2 threads than with 1 at d=784).
        if torch.device(device).type == "cpu":
            torch.set_num_threads(1)
        for cols, count in ((d, n_full), (rest, 1 if rest else 0)):
            if count == 0:
                continue
            # Gaussian entries drawn in float32 (torch's float64 sampler is ~5x slower on the CPU); the QR
            # in ``work`` precision keeps the rows orthonormal to that precision
            g = torch.randn(count, d, cols, generator=generator, dtype=torch.float32, device=device).to(work)
            q, r = torch.linalg.qr(g)                               # reduced: q [count, d, cols]
            sign = torch.sign(torch.diagonal(r, dim1=-2, dim2=-1))
            sign[sign == 0] = 1.0
            q = q * sign[:, None, :]                                # columns of q, signs fixed
            blocks.append(q.transpose(1, 2).reshape(count * cols, d))
    finally:
        torch.set_num_threads(threads)
    return torch.cat(blocks).to(dtype)


def sample_directions(d: int, n_directions: int, rule: str = "auto", *, generator: torch.Generator | None = None,
                      dtype: torch.dtype = torch.float32, device=None) -> torch.Tensor:
    """Unit directions ``[P, d]`` for slicing.

    Args:
        d: the dimension.
        n_directions: ``P`` (a positive integer).
        rule: ``"iid"``, ``"orthogonal"``, ``"equispaced"`` (``d = 2`` only) or ``"auto"``
            (``"equispaced"`` in ``d = 2``, else ``"orthogonal"``).
        generator: the source of randomness (sampled on the generator's device).
        dtype, device: of the returned tensor.

    Returns:
        ``[P, d]`` tensor of unit vectors, each marginally uniform on :math:`S^{d-1}`.
    """
    d = check_int(d, "d", 1)
    n_directions = check_int(n_directions, "n_directions", 1)
    if rule not in DIRECTION_RULES:
        raise ValueError(f"unknown direction rule {rule!r}; choose one of {DIRECTION_RULES}")
    if rule == "auto":
        rule = "equispaced" if d == 2 else "orthogonal"
    gdev = generator.device if generator is not None else torch.device("cpu")
    if rule == "iid":
        xi = torch.randn(n_directions, d, generator=generator, dtype=torch.float64, device=gdev)
        xi = xi / xi.norm(dim=1, keepdim=True)
    elif rule == "orthogonal":
        xi = _haar_frames(d, n_directions, generator, dtype, gdev)
    else:
        if d != 2:
            raise ValueError(f"equispaced directions exist only in d=2, got d={d}; use 'orthogonal' or 'iid'")
        u = torch.rand((), generator=generator, dtype=torch.float64, device=gdev)
        theta = math.pi * (torch.arange(n_directions, dtype=torch.float64, device=gdev) + u) / n_directions
        xi = torch.stack([theta.cos(), theta.sin()], 1)
    return xi.to(dtype=dtype, device=device if device is not None else gdev)


def directions_for(x: torch.Tensor, n_directions, directions, generator, d_full: int | None = None) -> torch.Tensor:
    """Directions ``[P, k]`` for points ``x`` ``[N, k]``; ``d_full``: the ambient dimension before a span reduction.

    Args:
        x: points ``[N, k]``.
        n_directions: ``P`` or ``None`` (:func:`default_n_directions` of the ambient dimension).
        directions: a rule of :data:`DIRECTION_RULES` or a ``[P, k]`` tensor of unit vectors.
        generator: randomness for a random rule.
        d_full: the ambient dimension, or ``None`` (``k``).

    Returns:
        ``[P, k]`` unit vectors, dtype and device of ``x``.

    Raises:
        ValueError: a given tensor is not ``[P, k]``, does not match ``n_directions``, or holds non-unit vectors.
        TypeError: ``directions`` is neither a rule name nor a tensor.
    """
    d = x.shape[1]
    if isinstance(directions, torch.Tensor):
        if directions.dim() != 2 or directions.shape[1] != d or directions.shape[0] < 1:
            raise ValueError(f"directions must be a [P, {d}] tensor, got shape {tuple(directions.shape)}")
        if n_directions is not None and n_directions != directions.shape[0]:
            raise ValueError(f"n_directions={n_directions} does not match the {directions.shape[0]} given directions")
        norms = directions.detach().double().norm(dim=1)
        if not bool(((norms - 1).abs() < 1e-4).all()):
            raise ValueError(f"directions must be unit vectors; got norms between {norms.min():.4g} and {norms.max():.4g}")
        return directions.detach().to(x)
    if not isinstance(directions, str):
        raise TypeError(f"directions must be a rule name {DIRECTION_RULES} or a [P, d] tensor, got {directions!r}")
    # after a span reduction: the ambient dimension's default, except that one direction is exact on a line
    n = default_n_directions(1 if d == 1 else (d_full or d)) if n_directions is None else n_directions
    return sample_directions(d, n, directions, generator=generator, dtype=x.dtype, device=x.device)



def span_basis(x: torch.Tensor, y: torch.Tensor | None = None, *, subspace="auto", directions="auto"):
    r"""Centre ``m`` and orthonormal basis ``Q`` ``[d, k]`` of the affine span of the points, or ``None``.

    The points are the rows of ``x`` (and of ``y`` when it is given and is not ``x``), ``n`` in all.
    ``Q`` holds the left singular vectors of the centred points ``[d, n]`` (float64 SVD) whose singular
    values exceed ``max(d, n) * eps * s_max`` (the rank rule of ``numpy.linalg.matrix_rank``),
    so every difference :math:`x_i - y_j` lies in the span of ``Q`` up to float64 rounding and
    :math:`|(x_i - m) Q - (y_j - m) Q| = |x_i - y_j|`; ``k`` is the rank, at most ``n - 1``.

    Returns ``None`` (slice in the ambient space) when ``subspace`` is ``False``, when ``directions``
    is a tensor or ``"equispaced"``, or, for ``"auto"``, when ``n >= d`` (the SVD would cost
    :math:`O(n d^2)` and rarely reduce anything).

    Args:
        x: ``[N, d]``.
        y: ``[M, d]`` or ``None``.
        subspace: ``"auto"``, ``True`` (always compute the span) or ``False``.
        directions: the directions argument of the sliced functions.

    Returns:
        ``(m, Q)``: ``m`` ``[d]`` and ``Q`` ``[d, k]`` in the points' dtype, or ``None``.
    """
    if subspace not in SUBSPACE_CHOICES or not isinstance(subspace, (str, bool)):
        raise ValueError(f"subspace must be 'auto', True or False, got {subspace!r}")
    if subspace is False:
        return None
    if isinstance(directions, torch.Tensor) or directions == "equispaced":
        if subspace is True:
            raise ValueError("subspace=True needs directions given by the rule 'auto', 'iid' or 'orthogonal' "
                             f"(drawn in the span); got {directions if isinstance(directions, str) else 'a tensor'}")
        return None
    pts = x if (y is None or y is x) else torch.cat([x, y])
    n, d = pts.shape
    if subspace == "auto" and n >= d:
        return None
    p64 = pts.detach().to(torch.float64)
    m = p64.mean(0)
    u, sv, _ = torch.linalg.svd((p64 - m).T, full_matrices=False)          # u [d, min(d, n)]
    tol = float(sv[0]) * max(n, d) * torch.finfo(torch.float64).eps
    k = max(1, int((sv > tol).sum()))                                        # all points equal: one axis
    return m.to(pts.dtype), u[:, :k].to(pts.dtype).contiguous()


