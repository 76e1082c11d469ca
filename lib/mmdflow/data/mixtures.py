r"""Gaussian-mixture targets and initial particles of the weighted-particle experiments (chapter 6).

A mixture :math:`\pi = \sum_c p_c N(m_c, \Sigma_c)` (:class:`GaussianMixture`) is sampled with an explicit
``torch.Generator``: component labels by ``torch.multinomial``, then :math:`m_c + L_c z` with
:math:`\Sigma_c = L_cL_c^\top` and :math:`z\sim N(0, I_d)`, returned as ``[n, d]``. The targets of the IFT
experiments (Gladin, Dvurechensky, Mielke, Zhu, NeurIPS 2024, experiments section and official code):
:func:`gaussian_2d`, :func:`mixture_2d`, the 100-dimensional mixture of the authors' code
(:func:`mixture_100d`), and the initial particles :math:`N(\mathrm{center}, \mathrm{scale}^2 I)`
(:func:`initial_particles`). Only torch; nothing here imports a scheme.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence

import torch

from .._checks import check_int, check_positive

__all__ = ["GaussianMixture", "gaussian_2d", "mixture_2d", "mixture_100d", "initial_particles"]


@dataclass(frozen=True, eq=False)
class GaussianMixture:
    r"""A Gaussian mixture :math:`\sum_c p_c N(m_c, \Sigma_c)` that can be sampled with a generator.

    Attributes:
        means: ``[C, d]``; covs: ``[C, d, d]`` (symmetric positive definite); weights: ``[C]`` on the simplex.
    Calling the object as ``mixture(n, generator)`` returns ``[n, d]`` samples (float64 on CPU unless
    :meth:`sample` is given ``dtype``/``device``); it is therefore a ``sampler`` of training batches for
    :func:`mmdflow.wfr.wfr_flow`.
    """

    means: torch.Tensor
    covs: torch.Tensor
    weights: torch.Tensor
    _chol: torch.Tensor = field(init=False, repr=False)

    def __post_init__(self):
        means, covs, weights = (torch.as_tensor(a, dtype=torch.float64) for a in (self.means, self.covs, self.weights))
        if means.dim() != 2:
            raise ValueError(f"means must have shape (C, d), got {tuple(means.shape)}")
        c, d = means.shape
        if covs.shape != (c, d, d):
            raise ValueError(f"covs must have shape ({c}, {d}, {d}), got {tuple(covs.shape)}")
        if weights.shape != (c,) or bool((weights < 0).any()) or abs(float(weights.sum()) - 1) > 1e-6:
            raise ValueError(f"weights must be {c} non-negative numbers summing to one, got {weights.tolist()}")
        try:
            chol = torch.linalg.cholesky(covs)
        except RuntimeError as err:  # not positive definite
            raise ValueError(f"covs must be symmetric positive definite: {err}") from None
        object.__setattr__(self, "means", means)
        object.__setattr__(self, "covs", covs)
        object.__setattr__(self, "weights", weights / weights.sum())
        object.__setattr__(self, "_chol", chol)

    @property
    def dim(self) -> int:
        return self.means.shape[1]

    def sample(self, n: int, generator: torch.Generator | None = None, *, dtype=torch.float64,
               device=None) -> torch.Tensor:
        """``n`` samples ``[n, d]``: component labels by ``torch.multinomial``, then ``m_c + L_c z``.

        Args:
            n: the number of samples, ``>= 1``.
            generator: the source of randomness.
            dtype: the dtype of the result.
            device: the device of the result.

        Returns:
            ``[n, d]`` tensor of ``dtype`` on ``device``.
        """
        check_int(n, "n", 1)
        labels = torch.multinomial(self.weights, n, replacement=True, generator=generator)
        z = torch.randn(n, self.dim, generator=generator, dtype=torch.float64)
        x = self.means[labels].clone()
        for c in range(self.means.shape[0]):
            sel = labels == c
            if bool(sel.any()):
                x[sel] += z[sel] @ self._chol[c].T
        return x.to(dtype=dtype, device=device)

    def __call__(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        return self.sample(n, generator)


def gaussian_2d() -> GaussianMixture:
    r"""The 2D Gaussian target :math:`N(0, [[1, .5], [.5, 1]])` of the IFT experiments.

    Returns:
        A one-component :class:`GaussianMixture`.
    """
    f64 = torch.float64
    return GaussianMixture(means=torch.zeros(1, 2, dtype=f64), covs=torch.tensor([[[1.0, 0.5], [0.5, 1.0]]], dtype=f64),
                           weights=torch.ones(1, dtype=f64))


def mixture_2d() -> GaussianMixture:
    r"""The 3-component 2D mixture: weights 1/3, means (0,0), (3,-1), (1,4), covariances
    [[1,.5],[.5,2]], I, [[3,.5],[.5,1]].

    Returns:
        A three-component :class:`GaussianMixture` in the plane.
    """
    f64 = torch.float64
    means = torch.tensor([[0.0, 0.0], [3.0, -1.0], [1.0, 4.0]], dtype=f64)
    covs = torch.tensor([[[1.0, 0.5], [0.5, 2.0]], [[1.0, 0.0], [0.0, 1.0]], [[3.0, 0.5], [0.5, 1.0]]], dtype=f64)
    return GaussianMixture(means=means, covs=covs, weights=torch.full((3,), 1.0 / 3, dtype=f64))


def mixture_100d(d: int = 100, *, n_components: int = 3, radius: float = 20.0, rank: int = 10,
                 seed: int = 0) -> GaussianMixture:
    r"""The high-dimensional 3-Gaussian mixture of the official IFT code (equal weights).

    Component ``c`` uses a ``torch.Generator`` seeded with ``seed + c``: mean :math:`20\,g/|g|`,
    :math:`g\sim N(0, I_d)`; covariance :math:`D + PP^\top`, :math:`D = \mathrm{diag}(U[0.5, 5])`,
    :math:`P\in\mathbb R^{d\times 10}` with :math:`U[0, 1]` entries (elongated along the all-ones direction).
    The construction follows the code's description; the random streams differ from its numpy ones.

    Args:
        d: the dimension.
        n_components: the number of components.
        radius: the norm of the means.
        rank: the number of columns of :math:`P`.
        seed: the first component's seed.

    Returns:
        A :class:`GaussianMixture` in dimension ``d``.
    """
    check_int(d, "d", 1)
    check_int(n_components, "n_components", 1)
    check_int(rank, "rank", 1)
    radius = check_positive(radius, "radius")
    means, covs = [], []
    for c in range(n_components):
        g = torch.Generator().manual_seed(seed + c)
        m = torch.randn(d, generator=g, dtype=torch.float64)
        means.append(radius * m / m.norm())
        diag = 0.5 + 4.5 * torch.rand(d, generator=g, dtype=torch.float64)
        P = torch.rand(d, rank, generator=g, dtype=torch.float64)
        covs.append(torch.diag(diag) + P @ P.T)
    return GaussianMixture(means=torch.stack(means), covs=torch.stack(covs),
                           weights=torch.full((n_components,), 1.0 / n_components, dtype=torch.float64))


def initial_particles(n: int, generator: torch.Generator | None = None, *, center: Sequence[float] = (5.0, 5.0),
                      scale: float = 1.0, dtype=torch.float64, device=None) -> torch.Tensor:
    r"""Initial particles :math:`N(\mathrm{center}, \mathrm{scale}^2 I)`, ``[n, len(center)]`` (default N((5,5), I)).

    Args:
        n: the number of particles, ``>= 1``.
        generator: the source of randomness.
        center: the mean.
        scale: the standard deviation, ``> 0``.
        dtype: the dtype of the result.
        device: the device of the result.

    Returns:
        ``[n, len(center)]`` tensor of ``dtype`` on ``device``.

    Raises:
        ValueError: ``n``, ``scale`` or ``center`` is invalid.
    """
    check_int(n, "n", 1)
    scale = check_positive(scale, "scale")
    c = torch.as_tensor(center, dtype=torch.float64)
    if c.dim() != 1:
        raise ValueError(f"center must be a 1D sequence, got shape {tuple(c.shape)}")
    x = c + scale * torch.randn(n, c.shape[0], generator=generator, dtype=torch.float64)
    return x.to(dtype=dtype, device=device)
