r"""Closed forms used as test oracles and as reference curves in the book.

* :func:`riesz_interaction_uniform_interval` -- :math:`\mathcal E_K` of the uniform law on :math:`[-1, 1]`,
* :func:`energy_distance_gaussians_1d` -- energy distance between two 1D Gaussian laws,
* :func:`gaussian_kernel_mmd2_shift` -- textbook MMD² with a Gaussian kernel between
  :math:`N(0, s^2 I)` and :math:`N(m, s^2 I)`.
"""

from __future__ import annotations

import math

import torch

from ._checks import check_positive, check_riesz_exponent

__all__ = [
    "riesz_interaction_uniform_interval",
    "energy_distance_gaussians_1d",
    "expected_abs_normal",
    "gaussian_kernel_mmd2_shift",
    "conditional_min_eigenvalue",
]


def riesz_interaction_uniform_interval(r: float) -> float:
    r"""Interaction energy :math:`-\frac12\,\mathbb E|X - X'|^r` of :math:`X, X' \sim U[-1, 1]` i.i.d.

    :math:`\mathbb E|X-X'|^r = 2^r \cdot \frac{2}{(r+1)(r+2)}` (the value for :math:`U[0,1]` is :math:`2/((r+1)(r+2))`).

    Args:
        r: the Riesz exponent in :math:`(0, 2)`.

    Returns:
        The energy as a float.

    Raises:
        ValueError: ``r`` outside :math:`(0, 2)`.
    """
    r = check_riesz_exponent(r)
    return -0.5 * 2.0**r * 2.0 / ((r + 1) * (r + 2))


def expected_abs_normal(mean: float, std: float) -> float:
    r""":math:`\mathbb E|Z|` for :math:`Z \sim N(m, s^2)`: :math:`s\sqrt{2/\pi}\,e^{-m^2/(2s^2)} + m\,(1 - 2\Phi(-m/s))`.

    Args:
        mean: :math:`m`.
        std: :math:`s > 0`.

    Returns:
        :math:`\mathbb E|Z|` as a float.

    Raises:
        ValueError: ``std`` is not positive.
    """
    std = check_positive(std, "std")
    phi = 0.5 * math.erfc(mean / std / math.sqrt(2))  # Phi(-m/s)
    return std * math.sqrt(2 / math.pi) * math.exp(-mean**2 / (2 * std**2)) + mean * (1 - 2 * phi)


def energy_distance_gaussians_1d(m1: float, s1: float, m2: float, s2: float) -> float:
    r"""Energy distance :math:`2\mathbb E|X-Y| - \mathbb E|X-X'| - \mathbb E|Y-Y'|` for :math:`X\sim N(m_1,s_1^2)`, :math:`Y\sim N(m_2,s_2^2)`.

    Args:
        m1: mean of :math:`X`.
        s1: standard deviation of :math:`X`, ``> 0``.
        m2: mean of :math:`Y`.
        s2: standard deviation of :math:`Y`, ``> 0``.

    Returns:
        The energy distance as a float.
    """
    cross = expected_abs_normal(m1 - m2, math.sqrt(s1**2 + s2**2))
    return 2 * cross - expected_abs_normal(0.0, math.sqrt(2) * s1) - expected_abs_normal(0.0, math.sqrt(2) * s2)


def gaussian_kernel_mmd2_shift(shift: float, d: int, sigma: float, scale: float = 1.0) -> float:
    r"""Textbook MMD² for the Gaussian kernel of bandwidth ``sigma`` between :math:`N(0, s^2 I_d)` and :math:`N(m, s^2 I_d)`, :math:`|m| =` ``shift``.

    With :math:`\rho = \sigma^2/(\sigma^2 + 2 s^2)`: :math:`\mathrm{MMD}^2 = 2\rho^{d/2}\,(1 - e^{-|m|^2/(2(\sigma^2+2s^2))})`.

    Args:
        shift: :math:`|m|`.
        d: the dimension.
        sigma: the kernel bandwidth :math:`\sigma > 0`.
        scale: the standard deviation :math:`s > 0` of both Gaussians.

    Returns:
        :math:`\mathrm{MMD}^2` as a float.

    Raises:
        ValueError: ``sigma`` or ``scale`` is not positive.
    """
    sigma = check_positive(sigma, "sigma")
    scale = check_positive(scale, "scale")
    rho = sigma**2 / (sigma**2 + 2 * scale**2)
    return 2 * rho ** (d / 2) * (1 - math.exp(-shift**2 / (2 * (sigma**2 + 2 * scale**2))))


def conditional_min_eigenvalue(kmat: torch.Tensor) -> torch.Tensor:
    r"""Smallest eigenvalue of a symmetric kernel matrix on the sum-zero subspace :math:`\{a: \sum_i a_i = 0\}`.

    Non-negative (up to rounding) iff the matrix is conditionally positive semi-definite.
    Uses an orthonormal basis :math:`Q \in \mathbb R^{n\times(n-1)}` of the subspace and the eigenvalues of
    :math:`Q^\top K Q`.

    Args:
        kmat: a square matrix ``[n, n]``, ``n >= 2`` (symmetrised first).

    Returns:
        0-d tensor, dtype and device of ``kmat``.

    Raises:
        ValueError: ``kmat`` is not square of size at least 2.
    """
    n = kmat.shape[0]
    if kmat.dim() != 2 or kmat.shape[1] != n or n < 2:
        raise ValueError(f"need a square matrix of size >= 2, got shape {tuple(kmat.shape)}")
    ones = torch.ones(n, 1, dtype=kmat.dtype, device=kmat.device)
    q, _ = torch.linalg.qr(torch.cat([ones, torch.eye(n, dtype=kmat.dtype, device=kmat.device)[:, : n - 1]], 1))
    basis = q[:, 1:]                                  # (n, n-1), orthogonal to the ones vector
    sym = 0.5 * (kmat + kmat.T)
    return torch.linalg.eigvalsh(basis.T @ sym @ basis)[0]
