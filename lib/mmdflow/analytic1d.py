r"""The exact Wasserstein gradient flow of :math:`\mathcal D_K^2(\cdot,\nu)` on the line (Riesz kernel, r = 1).

On :math:`\mathbb R` a probability measure :math:`\mu` is described by its quantile function
:math:`Q_\mu(s) = \inf\{x : F_\mu(x)\ge s\}`, :math:`s\in(0,1)`, and
:math:`W_2(\mu,\mu')^2 = \int_0^1 |Q_\mu(s)-Q_{\mu'}(s)|^2\,ds`: the Wasserstein space is isometric to the closed
convex cone of non-decreasing functions in :math:`L^2(0,1)`. With :math:`K(x,y) = -|x-y|` the book's
:math:`\mathcal D_K^2 = \mathcal E_K(\mu)+\mathcal V_{K,\nu}(\mu)+\mathcal E_K(\nu)` becomes (for non-decreasing
:math:`Q`, using :math:`\iint|Q(s)-Q(s')|\,ds\,ds' = 2\int_0^1(2s-1)Q(s)\,ds`)

.. math::
    \mathcal D_K^2(\mu,\nu) = \int_0^1 g_s(Q(s))\,ds + \mathcal E_K(\nu),\qquad
    g_s(q) = (1-2s)\,q + \int|q-y|\,d\nu(y),

a *separable* convex functional of :math:`Q` (Hertrich, Beinert, Gräf, Steidl 2023). Its :math:`L^2`
gradient flow is the Wasserstein gradient flow, level by level:

.. math::
    \partial_t Q(t,s) \in -\partial g_s(Q) = 2\big(s - [F_\nu(Q^-), F_\nu(Q)]\big),

i.e. :math:`\partial_t Q = 2(s - F_\nu(Q))` where :math:`F_\nu` is continuous. The constant 2 is that of the
book's normalisation (:math:`\mathcal D_K^2 = \tfrac12\mathrm{MMD}^2`). For :math:`s_1 < s_2` the right-hand
sides are ordered, so the pointwise solution stays non-decreasing in :math:`s` and the cone constraint never
acts: each level is an independent scalar ODE (a differential inclusion at atoms of :math:`\nu`).

* A level moves monotonically toward its equilibrium set
  :math:`\{q: F_\nu(q^-)\le s\le F_\nu(q)\}` = :math:`[Q_\nu(s), Q_\nu^+(s)]` and never crosses it.
* At an atom :math:`a` of :math:`\nu` every level with :math:`F_\nu(a^-) < s < F_\nu(a)` arrives at :math:`a`
  with speed at least :math:`2\min(s-F_\nu(a^-), F_\nu(a)-s) > 0`, i.e. in finite time, and stays: levels merge
  and :math:`\mu_t` gets an atom. :func:`quantile_flow` integrates the one-sided velocity (extended as a
  constant beyond the equilibrium) and clips at the equilibrium, which is exact because the trajectory never
  sees the other side.
* A Dirac start :math:`\delta_{x_0}` is :math:`Q(0,\cdot)\equiv x_0`; the levels separate at once.

The ODEs are solved by :func:`solve_levels`, an embedded Dormand-Prince 5(4) method in float64 with one
adaptive step size *per level* (vectorised), so a kink of one level's right-hand side (a density jump of
:math:`\nu` crossed) shortens only that level's steps.

Closed form (uniform :math:`\nu` on :math:`[a,b]`, :math:`x_0\in[a,b]`):
:math:`Q(t,s) = Q_\nu(s) + (x_0-Q_\nu(s))\,e^{-2t/(b-a)}` (:func:`uniform_flow_from_dirac`, which also covers
:math:`x_0` outside :math:`[a,b]`: first a linear phase :math:`x_0+2st` until the level enters the support).

Targets (:class:`Uniform`, :class:`Gaussian`, :class:`Atom` and :class:`Mixture` of them) give the CDF from the
left and the right, the quantile functions and the density of the continuous part. Everything is float64 torch.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, Sequence

import torch

from ._checks import check_positive

__all__ = ["Uniform", "Gaussian", "Atom", "Mixture", "as_mixture", "quantile_flow", "solve_levels",
           "uniform_flow_from_dirac", "w2_quantiles", "w2_discrete", "w2_discrete_to_quantile", "gauss_legendre",
           "cell_nodes", "DRIFT"]

#: the constant in :math:`\partial_t Q = c\,(s - F_\nu(Q))` for the book's :math:`\mathcal D_K^2` (r = 1).
DRIFT = 2.0

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


# ------------------------------------------------------------------------------------------------
# per-level adaptive Dormand-Prince 5(4)
# ------------------------------------------------------------------------------------------------

_C = (0.0, 1 / 5, 3 / 10, 4 / 5, 8 / 9, 1.0, 1.0)
_A = ((),
      (1 / 5,),
      (3 / 40, 9 / 40),
      (44 / 45, -56 / 15, 32 / 9),
      (19372 / 6561, -25360 / 2187, 64448 / 6561, -212 / 729),
      (9017 / 3168, -355 / 33, 46732 / 5247, 49 / 176, -5103 / 18656),
      (35 / 384, 0.0, 500 / 1113, 125 / 192, -2187 / 6784, 11 / 84))
_B5 = (35 / 384, 0.0, 500 / 1113, 125 / 192, -2187 / 6784, 11 / 84, 0.0)
_B4 = (5179 / 57600, 0.0, 7571 / 16695, 393 / 640, -92097 / 339200, 187 / 2100, 1 / 40)


def solve_levels(f: Callable[[torch.Tensor], torch.Tensor], y0: torch.Tensor, times: Sequence[float], *,
                 rtol: float = 1e-12, atol: float = 1e-13, breakpoints: Sequence[float] = (),
                 max_iter: int = 200_000) -> torch.Tensor:
    r"""Solve the independent autonomous scalar ODEs :math:`\dot y_i = f(y)_i` at ``times``.

    Embedded Dormand-Prince 5(4) with a step size per component: a step of component ``i`` is accepted when
    :math:`|y^{(5)}_i-y^{(4)}_i| \le \mathrm{atol}+\mathrm{rtol}\max(|y_i|, |y^{(5)}_i|)`; the steps land exactly
    on every output time. ``f`` must act componentwise (component ``i`` of ``f(y)`` depends on ``y_i`` only).
    ``breakpoints`` are values of :math:`y` where ``f`` has a kink (a jump of its derivative): a step that would
    carry a component across one by more than ``1e-9`` is rejected and retried with the step that just reaches it
    (secant aim), so no step straddles a kink and the order is kept.

    Args:
        f: ``[n] -> [n]`` right-hand side (float64).
        y0: ``[n]`` initial values at ``t = 0``.
        times: non-decreasing output times ``>= 0``.
        rtol: relative tolerance.
        atol: absolute tolerance.
        breakpoints: kinks of ``f`` in :math:`y`.
        max_iter: cap on the (vectorised) step count.

    Returns:
        ``[len(times), n]`` float64.
    """
    y = _t(y0).clone()
    if y.ndim != 1:
        raise ValueError(f"y0 must have shape [n], got {tuple(y.shape)}")
    times = [float(t) for t in times]
    if any(t < 0 or not math.isfinite(t) for t in times) or any(b < a for a, b in zip(times, times[1:])):
        raise ValueError(f"times must be finite, >= 0 and non-decreasing, got {times}")
    out = torch.empty(len(times), y.shape[0], dtype=_F64)
    t = torch.zeros_like(y)
    h = torch.full_like(y, 1e-3)
    it = 0
    for k, t_out in enumerate(times):
        while True:
            active = t < t_out
            if not bool(active.any()):
                break
            it += 1
            if it > max_iter:
                raise RuntimeError(f"solve_levels: more than max_iter={max_iter} steps (rtol={rtol}, atol={atol})")
            remaining = t_out - t
            hh = torch.where(active, torch.minimum(h, remaining), torch.zeros_like(h))
            ks = []
            for i in range(7):
                yi = y.clone()
                for a, kk in zip(_A[i], ks):
                    if a != 0.0:
                        yi = yi + hh * a * kk
                ks.append(f(yi))
            y5 = y + hh * sum(b * kk for b, kk in zip(_B5, ks) if b != 0.0)
            y4 = y + hh * sum(b * kk for b, kk in zip(_B4, ks) if b != 0.0)
            scale = atol + rtol * torch.maximum(y.abs(), y5.abs())
            err = ((y5 - y4).abs() / scale)
            ok = active & (err <= 1.0)
            aim = torch.full_like(hh, math.inf)
            for bp in breakpoints:
                over = ((y - bp) * (y5 - bp) < 0) & ((y5 - bp).abs() > 1e-9)
                frac = (bp - y) / torch.where(over, y5 - y, torch.ones_like(y))
                aim = torch.where(over, torch.minimum(aim, frac * (1.0 + 1e-10) + 1e-16), aim)
            cross = torch.isfinite(aim) & active
            ok = ok & ~cross
            land = ok & (hh >= remaining)
            y = torch.where(ok, y5, y)
            t = torch.where(land, torch.full_like(t, t_out), torch.where(ok, t + hh, t))
            fac = (0.9 * err.clamp_min(1e-10) ** -0.2).clamp(0.2, 5.0)
            grown = torch.where(land, torch.maximum(h, hh), hh * fac)     # a step cut short by t_out keeps h
            h = torch.where(ok, grown, torch.where(active, hh * fac.clamp(max=0.5), h))
            h = torch.where(cross, hh * aim, h).clamp_min(1e-14)
        out[k] = y
    return out


# ------------------------------------------------------------------------------------------------
# the quantile flow
# ------------------------------------------------------------------------------------------------

def quantile_flow(target, q0, levels, times: Sequence[float], *, rtol: float = 1e-12, atol: float = 1e-13,
                  drift: float = DRIFT) -> torch.Tensor:
    r"""The exact Wasserstein gradient flow of :math:`\mathcal D_K^2(\cdot,\nu)` (r = 1) at quantile levels.

    Solves :math:`\partial_t Q(t,s) = c\,(s - F_\nu(Q))`, :math:`Q(0,s) = Q_{\mu_0}(s)`, for every level (module
    docstring), with the set-valued right-hand side at atoms resolved exactly: a level below its equilibrium
    interval :math:`[Q_\nu(s), Q_\nu^+(s)]` moves up with :math:`c(s - F_\nu(q))` and is clipped at
    :math:`Q_\nu(s)`; one above moves down and is clipped at :math:`Q_\nu^+(s)`; one inside stays.

    Args:
        target: a :class:`Uniform`, :class:`Gaussian`, :class:`Atom` or :class:`Mixture`.
        q0: ``[n]`` initial quantiles :math:`Q_{\mu_0}(s_i)` (a number: the Dirac :math:`\delta_{q_0}`).
        levels: ``[n]`` levels :math:`s_i\in(0,1)`.
        times: output times (non-decreasing, ``>= 0``).
        rtol, atol: tolerances of :func:`solve_levels` (the defaults give errors of about ``1e-11``).
        drift: the constant :math:`c` (:data:`DRIFT` = 2 for the book's :math:`\mathcal D_K^2`).

    Returns:
        ``[len(times), n]`` float64: :math:`Q(t_k, s_i)`.
    """
    nu = as_mixture(target)
    s = _t(levels).reshape(-1)
    if s.numel() == 0 or bool(((s <= 0) | (s >= 1)).any()):
        raise ValueError("levels must lie in the open interval (0, 1)")
    q0 = _t(q0)
    q0 = q0.expand_as(s).clone() if q0.ndim == 0 else q0.reshape(-1).clone()
    if q0.shape != s.shape:
        raise ValueError(f"q0 must be a number or have the levels' shape {tuple(s.shape)}, got {tuple(q0.shape)}")
    e_lo, e_hi = nu.quantile(s), nu.quantile_right(s)
    up, down = q0 < e_lo, q0 > e_hi
    f_lo = nu.cdf_left(e_lo)     # velocity beyond the equilibrium (a constant >= 0 for up-movers)
    f_hi = nu.cdf(e_hi)

    def rhs(q):
        g_up = torch.where(q < e_lo, nu.cdf(q), f_lo)
        g_down = torch.where(q > e_hi, nu.cdf(q), f_hi)
        g = torch.where(up, g_up, torch.where(down, g_down, s))
        return drift * (s - g)

    y = solve_levels(rhs, q0, times, rtol=rtol, atol=atol, breakpoints=nu.breakpoints)
    y = torch.where(up, torch.minimum(y, e_lo), y)
    return torch.where(down, torch.maximum(y, e_hi), y)


def uniform_flow_from_dirac(x0: float, levels, t: float, a: float = 0.0, b: float = 1.0) -> torch.Tensor:
    r"""Closed form of :func:`quantile_flow` for the uniform target on ``[a, b]`` from :math:`\delta_{x_0}`.

    With :math:`L = b - a` and :math:`q_s = a + Ls`: inside the support :math:`\dot Q = 2(s - (Q-a)/L)`, so
    :math:`Q = q_s + (Q_{\rm in} - q_s)e^{-2(t-t_{\rm in})/L}` from the entry time :math:`t_{\rm in}`. For
    :math:`x_0 < a` the level first moves with speed :math:`2s` and enters at :math:`t_{\rm in} = (a-x_0)/(2s)`;
    for :math:`x_0 > b` with speed :math:`-2(1-s)`, entering at :math:`(x_0-b)/(2(1-s))`.

    Returns:
        ``[n]`` float64.

    Args:
        x0: the start point :math:`x_0`.
        levels: levels :math:`s` in :math:`(0, 1)`, ``[n]``.
        t: the time :math:`t \ge 0`.
        a: the left end of the support.
        b: the right end of the support.

    Returns:
        :math:`Q(t, s)`, ``[n]`` float64.
    """
    s = _t(levels)
    L, q = b - a, a + (b - a) * s
    if a <= x0 <= b:
        return q + (x0 - q) * math.exp(-2.0 * t / L)
    if x0 < a:
        t_in = (a - x0) / (2.0 * s)
        before = x0 + 2.0 * s * t
        entry = a
    else:
        t_in = (x0 - b) / (2.0 * (1.0 - s))
        before = x0 - 2.0 * (1.0 - s) * t
        entry = b
    after = q + (entry - q) * torch.exp(-2.0 * (t - t_in).clamp_min(0.0) / L)
    return torch.where(t <= t_in, before, after)


# ------------------------------------------------------------------------------------------------
# W2 on the line through quantile functions
# ------------------------------------------------------------------------------------------------

def gauss_legendre(n: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Nodes and weights of the ``n``-point Gauss-Legendre rule on ``[0, 1]`` (float64, Golub-Welsch).

    Args:
        n: the number of nodes.

    Returns:
        ``(nodes [n], weights [n])``, float64; the weights sum to 1.
    """
    k = torch.arange(1, n, dtype=_F64)
    beta = k / torch.sqrt(4.0 * k * k - 1.0)
    jac = torch.diag(beta, 1) + torch.diag(beta, -1)
    nodes, vecs = torch.linalg.eigh(jac)
    weights = 2.0 * vecs[0] ** 2
    return (nodes + 1.0) / 2.0, weights / 2.0


def w2_quantiles(q1: torch.Tensor, q2: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    r""":math:`\big(\sum_k \omega_k|Q_1(s_k)-Q_2(s_k)|^2\big)^{1/2}`: :math:`W_2` by a quadrature rule on (0, 1).

    Args:
        q1: quantiles ``[..., n]`` at the nodes.
        q2: quantiles ``[..., n]`` at the nodes.
        weights: ``[n]`` quadrature weights (sum 1).

    Returns:
        ``[...]`` tensor: :math:`W_2` per leading index.
    """
    return torch.sqrt(((q1 - q2) ** 2 * weights).sum(-1))


def _discrete_quantile(x: torch.Tensor, w: torch.Tensor | None):
    x = _t(x).reshape(-1)
    w = torch.full_like(x, 1.0 / x.numel()) if w is None else _t(w).reshape(-1)
    if w.shape != x.shape or bool((w < 0).any()) or abs(float(w.sum()) - 1.0) > 1e-9:
        raise ValueError("weights must be non-negative, sum to 1 and match the points")
    order = torch.argsort(x)
    x, w = x[order], w[order]
    return x, torch.cumsum(w, 0).clamp(max=1.0)


def w2_discrete(x: torch.Tensor, y: torch.Tensor, wx: torch.Tensor | None = None,
                wy: torch.Tensor | None = None) -> torch.Tensor:
    r"""Exact :math:`W_2` between two weighted point sets on the line.

    Both quantile functions are step functions; on the common refinement of their jump levels
    :math:`0 = u_0 < u_1 < \dots < u_L = 1` they are constant, so
    :math:`W_2^2 = \sum_l (u_l-u_{l-1})\,|Q_x - Q_y|^2` exactly (the monotone coupling is optimal in 1-D).

    Args:
        x: ``[N]`` or ``[N, 1]``.
        y: ``[M]`` or ``[M, 1]``.
        wx: weights ``[N]`` of ``x`` (``None``: uniform).
        wy: weights ``[M]`` of ``y`` (``None``: uniform).

    Returns:
        0-d float64.
    """
    xs, cx = _discrete_quantile(x, wx)
    ys, cy = _discrete_quantile(y, wy)
    u = torch.unique(torch.cat([cx, cy, _t([0.0, 1.0])]))
    mid = 0.5 * (u[1:] + u[:-1])
    ix = torch.searchsorted(cx, mid).clamp(max=xs.numel() - 1)
    iy = torch.searchsorted(cy, mid).clamp(max=ys.numel() - 1)
    return torch.sqrt(((xs[ix] - ys[iy]) ** 2 * (u[1:] - u[:-1])).sum())


def cell_nodes(x: torch.Tensor, w: torch.Tensor | None = None, *, order: int = 8):
    r"""Quadrature on the cells of a discrete quantile function: for the sorted points with cumulative weights
    :math:`0=c_0<c_1<\dots`, ``order`` Gauss-Legendre nodes in each :math:`(c_{i-1}, c_i)`.

    Returns:
        ``(levels [N*order], weights [N*order], values [N*order])``: the nodes, their weights (sum 1) and the
        discrete quantile function :math:`x_{(i)}` at each node.

    Args:
        x: points ``[N]`` or ``[N, 1]``.
        w: weights ``[N]``; ``None``: uniform.
        order: nodes per cell.

    Returns:
        ``(levels [N*order], weights [N*order], values [N*order])``: the nodes, their weights (sum 1) and the
        discrete quantile function :math:`x_{(i)}` at each node.
    """
    xs, c = _discrete_quantile(x, w)
    lo = torch.cat([c.new_zeros(1), c[:-1]])
    g, gw = gauss_legendre(order)
    width = (c - lo)[:, None]
    levels = lo[:, None] + width * g[None, :]
    keep = width[:, 0] > 0
    return (levels[keep].reshape(-1), (width * gw[None, :])[keep].reshape(-1),
            xs[:, None].expand(-1, order)[keep].reshape(-1))


def w2_discrete_to_quantile(x: torch.Tensor, quantile: Callable[[torch.Tensor], torch.Tensor],
                            w: torch.Tensor | None = None, *, order: int = 8) -> torch.Tensor:
    r""":math:`W_2` between a weighted point set and a measure given by its quantile function.

    :math:`W_2^2 = \sum_i\int_{c_{i-1}}^{c_i}|x_{(i)} - Q(s)|^2\,ds`, each cell integrated by ``order``-point
    Gauss-Legendre (exact to rounding where :math:`Q` is a polynomial of degree < ``order`` on the cell).

    Args:
        x: points ``[N]`` or ``[N, 1]``.
        quantile: the quantile function :math:`Q`, levels ``[n]`` to quantiles ``[n]``.
        w: weights ``[N]``; ``None``: uniform.
        order: Gauss-Legendre nodes per cell.

    Returns:
        :math:`W_2`, a 0-d float64 tensor.
    """
    levels, weights, values = cell_nodes(x, w, order=order)
    return torch.sqrt(((values - quantile(levels)) ** 2 * weights).sum())
