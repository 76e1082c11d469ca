r"""Radial kernels :math:`K(x, y) = \phi(\|x - y\|^2)`.

Every kernel is a small frozen object holding its parameter. Calling it on
``x`` of shape ``[N, d]`` and ``y`` of shape ``[M, d]`` returns the kernel
matrix ``[N, M]``. The library works with the profile as a function of the
*squared* distance ``s = |x - y|^2``:

* :meth:`RadialKernel.profile` returns :math:`\phi(s)`,
* :meth:`RadialKernel.dprofile` returns :math:`\phi'(s)`, so that
  :math:`\nabla_x K(x, y) = 2\,\phi'(\|x-y\|^2)\,(x - y)`.

Kernels that are not differentiable at coinciding points (Riesz with
``r <= 1``, Laplace) use the convention of Altekrüger et al. (2023): a pair of
coinciding points exerts no force, i.e. ``dprofile(0) = 0``. The profile is
written so that autograd through it never produces NaN at ``s = 0``.

Riesz kernel (Altekrüger, Hertrich, Steidl 2023, Sec. 2):
:math:`K(x, y) = -\|x - y\|^r` with :math:`r \in (0, 2)`; it is conditionally
positive definite, so the discrepancy :math:`\mathcal D_K` is a metric.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from ._checks import (check_finite, check_pairs_memory, check_points, check_positive, check_riesz_exponent,
                      check_same_space)

__all__ = [
    "RadialKernel",
    "Riesz",
    "Gaussian",
    "InverseMultiquadric",
    "Laplace",
    "squared_distances",
    "pairwise_squared_distances",
    "centred",
    "EXPLICIT_DIFF_MAX_D",
]

#: up to this dimension, squared distances come from explicit differences; above, from a GEMM.
EXPLICIT_DIFF_MAX_D = 8


def squared_distances(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Exact squared distances ``|x_i - y_j|^2`` from explicit differences.

    Args:
        x: ``[N, d]``.
        y: ``[M, d]``.

    Returns:
        ``[N, M]`` tensor. Uses ``O(N M d)`` memory; the blocked backend in
        :mod:`mmdflow.summation` avoids that for large inputs.
    """
    return ((x[:, None, :] - y[None, :, :]) ** 2).sum(-1)


def pairwise_squared_distances(x: torch.Tensor, y: torch.Tensor, *, x_sq: torch.Tensor | None = None,
                               y_sq: torch.Tensor | None = None, exact: bool | None = None
                               ) -> tuple[torch.Tensor, torch.Tensor | None]:
    r"""Squared distances ``[N, M]`` without an ``[N, M, d]`` temporary, and the mask of entries set to 0.

    The one distance routine of the fast paths (blocked sums, Gram matrices):

    * ``exact`` (default for ``d <= EXPLICIT_DIFF_MAX_D``): explicit differences, one coordinate at a time;
      the mask is ``None``.
    * GEMM (default above): :math:`s = |x|^2 + |y|^2 - 2\langle x, y\rangle` (one ``addmm``). Its absolute
      rounding error is about :math:`\varepsilon(|x|^2 + |y|^2)`; entries below ``2^10 eps (|x_i|^2 + |y_j|^2)``
      are recomputed from explicit differences, so that close pairs keep their digits and coinciding points
      get exactly 0 (the returned mask), whatever the clouds' offset. Centre the clouds first (:func:`centred`)
      so that few entries need it.

    Args:
        x: ``[N, d]``.
        y: ``[M, d]``.
        x_sq, y_sq: precomputed ``|x_i|^2`` ``[N]``, ``|y_j|^2`` ``[M]`` (GEMM form).
        exact: force explicit differences (``True``) or the GEMM (``False``); ``None`` chooses by ``d``.
    """
    if exact is None:
        exact = x.shape[1] <= EXPLICIT_DIFF_MAX_D
    if exact:
        yt = y.T.contiguous()
        diff = x[:, :1] - yt[0]
        sq = diff * diff
        for k in range(1, x.shape[1]):
            torch.sub(x[:, k:k + 1], yt[k], out=diff)
            sq.addcmul_(diff, diff)
        return sq, None
    if y_sq is None:
        y_sq = (y * y).sum(1)
    if x_sq is None:
        x_sq = y_sq if x is y else (x * x).sum(1)
    # one GEMM writing onto the broadcast |y|^2, one in-place add (no [N, M] norm matrices)
    s = torch.addmm(y_sq[None, :], x, y.T, alpha=-2.0).add_(x_sq[:, None])
    # the GEMM form has an absolute rounding error of about eps (|x|^2 + |y|^2): entries below 2^10 times that
    # level are recomputed from explicit differences (exact, whatever the offset of the clouds)
    eps = torch.finfo(s.dtype).eps
    norms = torch.add(x_sq[:, None], y_sq[None, :])
    loose = s <= (2.0 ** 10 * eps) * norms
    idx = loose.nonzero()
    if idx.numel():
        diff = x[idx[:, 0]] - y[idx[:, 1]]
        s[idx[:, 0], idx[:, 1]] = (diff * diff).sum(1)
    zero = s <= 0
    return s.clamp_min_(0.0), zero


def centred(x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``x - c`` and ``y - c`` for the mean ``c`` of all their points (``y is x`` is kept): differences are unchanged,
    and the GEMM form of the squared distances loses no digits to a common offset of the clouds."""
    pts = x if y is x else torch.cat([x, y])
    c = pts.detach().double().mean(0).to(x.dtype)
    xc = x - c
    return xc, (xc if y is x else y - c)


def _check_pair(x, y, per_coordinate: int, what: str) -> None:
    """Two finite point clouds of one space whose ``N x M x (per_coordinate d + 3)`` temporaries fit the memory
    budget (:func:`mmdflow._checks.memory_budget`)."""
    check_points(x, "x", finite=False)
    check_points(y, "y", finite=False)
    check_same_space(x, y)
    check_finite((x, "x"), (y, "y"))
    check_pairs_memory(x, y, per_coordinate * x.shape[1] + 3, what, instead="mmdflow.summation.kernel_sum / kernel_sum_grad with "
                       "backend='blocked' (memory-bounded sums), or mmdflow.summation.kernel_matrix (no [N, M, d] "
                       "tensor)")


def _safe_pow(s: torch.Tensor, p: float) -> torch.Tensor:
    """``s ** p`` for ``s >= 0`` with value 0 and gradient 0 where ``s == 0``."""
    pos = s > 0
    return torch.where(pos, torch.where(pos, s, torch.ones_like(s)) ** p, torch.zeros_like(s))


class RadialKernel:
    """Base class: subclasses implement :meth:`profile` and :meth:`dprofile`."""

    #: True for kernels whose profile is singular (not differentiable) at 0.
    singular_at_zero: bool = False

    def profile(self, s: torch.Tensor) -> torch.Tensor:  # pragma: no cover - abstract
        r"""The profile :math:`\phi(s)` at squared distances ``s``."""
        raise NotImplementedError

    def dprofile(self, s: torch.Tensor) -> torch.Tensor:  # pragma: no cover - abstract
        r"""The derivative :math:`\phi'(s)`, with ``0`` at ``s = 0`` for singular kernels."""
        raise NotImplementedError

    def __call__(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """Kernel matrix ``[N, M]`` with entries ``K(x_i, y_j)`` (from an ``[N, M, d]`` tensor of differences)."""
        _check_pair(x, y, 2, "the kernel matrix's [N, M, d] differences")
        return self.profile(squared_distances(x, y))

    def grad(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        r"""Gradients :math:`\nabla_x K(x_i, y_j) = 2\phi'(|x_i-y_j|^2)(x_i-y_j)`, shape ``[N, M, d]``."""
        _check_pair(x, y, 3, "the kernel gradients' [N, M, d] tensors")
        diff = x[:, None, :] - y[None, :, :]
        return 2.0 * self.dprofile((diff**2).sum(-1))[..., None] * diff

    def value_at_zero(self) -> float:
        """``K(x, x)``: the kernel on the diagonal."""
        return float(self.profile(torch.zeros((), dtype=torch.float64)))


@dataclass(frozen=True)
class Riesz(RadialKernel):
    r"""Riesz kernel :math:`K(x, y) = -\|x - y\|^r`, :math:`r \in (0, 2)`.

    ``r = 1`` is the distance kernel (energy distance). Conditionally positive
    definite: :math:`\sum_{ij} a_i a_j K(x_i, x_j) \ge 0` whenever :math:`\sum a_i = 0`.
    """

    r: float = 1.0

    def __post_init__(self):
        object.__setattr__(self, "r", check_riesz_exponent(self.r))

    @property
    def singular_at_zero(self) -> bool:  # type: ignore[override]
        return self.r <= 1.0

    def profile(self, s):
        return -_safe_pow(s, self.r / 2)

    def dprofile(self, s):
        return -(self.r / 2) * _safe_pow(s, self.r / 2 - 1)


@dataclass(frozen=True)
class Gaussian(RadialKernel):
    r"""Gaussian kernel :math:`K(x, y) = \exp(-\|x - y\|^2 / (2\sigma^2))`."""

    sigma: float = 1.0

    def __post_init__(self):
        object.__setattr__(self, "sigma", check_positive(self.sigma, "sigma"))

    def profile(self, s):
        return torch.exp(-s / (2 * self.sigma**2))

    def dprofile(self, s):
        return -torch.exp(-s / (2 * self.sigma**2)) / (2 * self.sigma**2)


@dataclass(frozen=True)
class InverseMultiquadric(RadialKernel):
    r"""Inverse multiquadric :math:`K(x, y) = (1 + \|x - y\|^2/\sigma^2)^{-1/2}`."""

    sigma: float = 1.0

    def __post_init__(self):
        object.__setattr__(self, "sigma", check_positive(self.sigma, "sigma"))

    def profile(self, s):
        return (1 + s / self.sigma**2) ** -0.5

    def dprofile(self, s):
        return -0.5 / self.sigma**2 * (1 + s / self.sigma**2) ** -1.5


@dataclass(frozen=True)
class Laplace(RadialKernel):
    r"""Laplace kernel :math:`K(x, y) = \exp(-\|x - y\|/\sigma)` (not differentiable at 0)."""

    sigma: float = 1.0
    singular_at_zero = True

    def __post_init__(self):
        object.__setattr__(self, "sigma", check_positive(self.sigma, "sigma"))

    def profile(self, s):
        return torch.exp(-_safe_pow(s, 0.5) / self.sigma)

    def dprofile(self, s):
        # d/ds exp(-sqrt(s)/sigma) = -exp(-sqrt(s)/sigma) / (2 sigma sqrt(s)); 0 at s = 0 by convention.
        return -torch.exp(-_safe_pow(s, 0.5) / self.sigma) * _safe_pow(s, -0.5) / (2 * self.sigma)
