r"""One-dimensional targets :math:`\nu` for the exact quantile flow: :class:`Uniform`, :class:`Gaussian`,
:class:`Atom` and finite :class:`Mixture` of them, each with its CDF from the left :math:`F_\nu(q^-)` and the
right :math:`F_\nu(q)`, the quantile functions :math:`Q_\nu(s)` and :math:`Q_\nu^+(s)` and the density of the
continuous part, in float64 torch. :func:`as_mixture` turns any of them into a :class:`Mixture`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from .._checks import check_positive

__all__ = ["Uniform", "Gaussian", "Atom", "Mixture", "as_mixture"]

_F64 = torch.float64


def _t(x) -> torch.Tensor:
    return torch.as_tensor(x, dtype=_F64)


def _finite(value, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ValueError(f"{name} must be a finite number, got {name}={value!r}")
    return float(value)


# ------------------------------------------------------------------------------------------------
# one-dimensional targets
# ------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Uniform:
    """The uniform law on ``[a, b]``, ``a < b``."""

    a: float
    b: float

    def __post_init__(self):
        a, b = _finite(self.a, "a"), _finite(self.b, "b")
        if not a < b:
            raise ValueError(f"Uniform needs a < b, got a={a}, b={b}")

    def cdf(self, x):
        r"""The CDF :math:`F(x) = \min(1, \max(0, (x-a)/(b-a)))` (continuous: also ``cdf_left``).

        Args:
            x: points, any shape (number, array or tensor).

        Returns:
            float64 tensor of the shape of ``x``.
        """
        return ((_t(x) - self.a) / (self.b - self.a)).clamp(0.0, 1.0)

    cdf_left = cdf

    def density(self, x):
        r"""The density :math:`\mathbf 1_{[a,b]}(x)/(b-a)`.

        Args:
            x: points, any shape.

        Returns:
            float64 tensor of the shape of ``x``.
        """
        x = _t(x)
        return ((x >= self.a) & (x <= self.b)).to(_F64) / (self.b - self.a)

    def quantile(self, s):
        """The quantile function :math:`Q(s) = a + (b-a)s`.

        Args:
            s: levels in :math:`[0, 1]`, any shape.

        Returns:
            float64 tensor of the shape of ``s``.
        """
        return self.a + (self.b - self.a) * _t(s)

    def support(self) -> tuple[float, float]:
        """The support :math:`[a, b]`.

        Returns:
            ``(a, b)``.
        """
        return self.a, self.b


@dataclass(frozen=True)
class Gaussian:
    """The normal law with ``mean`` and standard deviation ``std > 0``."""

    mean: float
    std: float

    def __post_init__(self):
        _finite(self.mean, "mean")
        check_positive(self.std, "std")

    def cdf(self, x):
        r"""The CDF :math:`F(x) = \frac12\operatorname{erfc}(-(x-m)/(s\sqrt2))` (continuous: also ``cdf_left``).

        Args:
            x: points, any shape (number, array or tensor).

        Returns:
            float64 tensor of the shape of ``x``.
        """
        return 0.5 * torch.special.erfc(-(_t(x) - self.mean) / (self.std * math.sqrt(2.0)))

    cdf_left = cdf

    def density(self, x):
        r"""The density :math:`e^{-(x-m)^2/(2s^2)}/(s\sqrt{2\pi})`.

        Args:
            x: points, any shape.

        Returns:
            float64 tensor of the shape of ``x``.
        """
        z = (_t(x) - self.mean) / self.std
        return torch.exp(-0.5 * z * z) / (self.std * math.sqrt(2.0 * math.pi))

    def quantile(self, s):
        r"""The quantile function :math:`Q(s) = m + s_{\rm std}\sqrt2\operatorname{erfinv}(2s-1)`.

        Args:
            s: levels in :math:`(0, 1)`, any shape.

        Returns:
            float64 tensor of the shape of ``s``.
        """
        return self.mean + self.std * math.sqrt(2.0) * torch.special.erfinv(2.0 * _t(s) - 1.0)

    def support(self) -> tuple[float, float]:
        r"""An interval holding all but a negligible mass: the mean :math:`\pm 40` standard deviations.

        Returns:
            ``(lo, hi)``.
        """
        return self.mean - 40.0 * self.std, self.mean + 40.0 * self.std


@dataclass(frozen=True)
class Atom:
    """The Dirac measure at ``x``: right-continuous CDF ``1[q >= x]``, left limit ``1[q > x]``."""

    x: float

    def __post_init__(self):
        _finite(self.x, "x")

    def cdf(self, q):
        r"""The right-continuous CDF :math:`\mathbf 1_{q\ge x}` of :math:`\delta_x`.

        Args:
            q: points, any shape.

        Returns:
            float64 tensor of the shape of ``q``.
        """
        return (_t(q) >= self.x).to(_F64)

    def cdf_left(self, q):
        r"""The left limit :math:`\mathbf 1_{q > x}` of the CDF.

        Args:
            q: points, any shape.

        Returns:
            float64 tensor of the shape of ``q``.
        """
        return (_t(q) > self.x).to(_F64)

    def density(self, q):
        """The density of the continuous part: zero.

        Args:
            q: points, any shape.

        Returns:
            zeros of the shape of ``q``.
        """
        return torch.zeros_like(_t(q))

    def quantile(self, s):
        """The quantile function: the constant ``x``.

        Args:
            s: levels, any shape.

        Returns:
            float64 tensor of the shape of ``s``, filled with ``x``.
        """
        return torch.full_like(_t(s), self.x)

    def support(self) -> tuple[float, float]:
        r"""The support :math:`\{x\}`.

        Returns:
            ``(x, x)``.
        """
        return self.x, self.x


_COMPONENTS = (Uniform, Gaussian, Atom)


@dataclass(frozen=True)
class Mixture:
    r"""A finite mixture :math:`\nu = \sum_k p_k\nu_k` of :class:`Uniform`, :class:`Gaussian` and :class:`Atom`.

    ``quantile`` is the left-continuous inverse :math:`\inf\{x: F(x)\ge s\}` and ``quantile_right`` the
    right-continuous one :math:`\inf\{x: F(x) > s\}`, both by bisection to rounding (120 halvings in float64).
    """

    components: tuple
    weights: tuple

    def __post_init__(self):
        comps, w = tuple(self.components), tuple(float(v) for v in self.weights)
        if not comps or len(comps) != len(w):
            raise ValueError(f"need as many weights as components (at least one), got {len(comps)} and {len(w)}")
        for c in comps:
            if not isinstance(c, _COMPONENTS):
                raise TypeError(f"components must be Uniform, Gaussian or Atom, got {type(c).__name__}")
        if any(not math.isfinite(v) or v <= 0 for v in w) or abs(sum(w) - 1.0) > 1e-12:
            raise ValueError(f"weights must be positive and sum to 1, got {w}")
        object.__setattr__(self, "components", comps)
        object.__setattr__(self, "weights", w)

    def cdf(self, x):
        r"""The CDF :math:`F(x) = \sum_k p_k F_k(x)`.

        Args:
            x: points, any shape.

        Returns:
            float64 tensor of the shape of ``x``.
        """
        return sum(p * c.cdf(x) for p, c in zip(self.weights, self.components))

    def cdf_left(self, x):
        r"""The left limit :math:`F(x^-) = \sum_k p_k F_k(x^-)` of the CDF.

        Args:
            x: points, any shape.

        Returns:
            float64 tensor of the shape of ``x``.
        """
        return sum(p * c.cdf_left(x) for p, c in zip(self.weights, self.components))

    def density(self, x):
        """Density of the continuous part (atoms contribute nothing).

        Args:
            x: points, any shape.

        Returns:
            float64 tensor of the shape of ``x``.
        """
        return sum(p * c.density(x) for p, c in zip(self.weights, self.components))

    @property
    def atoms(self) -> list[tuple[float, float]]:
        """``[(location, mass)]`` of the atoms."""
        return [(c.x, p) for p, c in zip(self.weights, self.components) if isinstance(c, Atom)]

    @property
    def breakpoints(self) -> list[float]:
        """Where :math:`F_\nu` has a kink or a jump: the ends of the uniform components and the atoms."""
        pts = set()
        for c in self.components:
            pts.update((c.a, c.b) if isinstance(c, Uniform) else (c.x,) if isinstance(c, Atom) else ())
        return sorted(pts)

    def support(self) -> tuple[float, float]:
        """The smallest interval holding every component's support.

        Returns:
            ``(lo, hi)``.
        """
        lo = min(c.support()[0] for c in self.components)
        hi = max(c.support()[1] for c in self.components)
        return lo, hi

    def _bisect(self, s, strict: bool):
        s = _t(s)
        lo0, hi0 = self.support()
        lo = torch.full_like(s, lo0 - 1.0)
        hi = torch.full_like(s, hi0 + 1.0)
        for _ in range(120):
            mid = 0.5 * (lo + hi)
            f = self.cdf(mid)
            go_left = (f > s) if strict else (f >= s)
            hi = torch.where(go_left, mid, hi)
            lo = torch.where(go_left, lo, mid)
        return hi

    def quantile(self, s):
        r"""The left-continuous quantile :math:`Q(s) = \inf\{x: F(x)\ge s\}`.

        Args:
            s: levels in :math:`[0, 1]`, any shape.

        Returns:
            float64 tensor of the shape of ``s``.
        """
        if len(self.components) == 1 and not isinstance(self.components[0], Atom):
            return self.components[0].quantile(s)
        return self._bisect(s, strict=False)

    def quantile_right(self, s):
        r"""The right-continuous quantile :math:`\inf\{x: F(x) > s\}`.

        Args:
            s: levels in :math:`[0, 1]`, any shape.

        Returns:
            float64 tensor of the shape of ``s``.
        """
        return self._bisect(s, strict=True)

    def sample_levels(self, m: int) -> torch.Tensor:
        r"""The ``m`` points :math:`Q_\nu((j-\frac12)/m)`, ``[m, 1]`` float64: the best ``m``-point approximation
        of :math:`\nu` in :math:`W_2` among uniform ones (deterministic).

        Args:
            m: the number of points.

        Returns:
            ``[m, 1]`` float64 tensor.
        """
        s = (torch.arange(m, dtype=_F64) + 0.5) / m
        return self.quantile(s)[:, None]

    def sample(self, m: int, *, generator: torch.Generator | None = None) -> torch.Tensor:
        """``m`` i.i.d. samples ``[m, 1]`` (inverse-CDF sampling).

        Args:
            m: the number of samples.
            generator: the source of randomness.

        Returns:
            ``[m, 1]`` float64 tensor.
        """
        u = torch.rand(m, generator=generator, dtype=_F64)
        return self.quantile(u)[:, None]


def as_mixture(target) -> Mixture:
    """A component or a :class:`Mixture` as a :class:`Mixture`.

    Args:
        target: a :class:`Uniform`, :class:`Gaussian`, :class:`Atom` or :class:`Mixture`.

    Returns:
        The mixture (itself, or one component of weight 1).

    Raises:
        TypeError: ``target`` is of another type.
    """
    if isinstance(target, Mixture):
        return target
    if isinstance(target, _COMPONENTS):
        return Mixture((target,), (1.0,))
    raise TypeError(f"target must be Uniform, Gaussian, Atom or Mixture, got {type(target).__name__}")
