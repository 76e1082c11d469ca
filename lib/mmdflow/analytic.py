r"""Closed forms for the interaction energy flow started at a Dirac measure.

For the Riesz kernel :math:`K(x, y) = -\|x-y\|^r`, :math:`r\in(0,2)`, the
interaction energy :math:`\mathcal E_K(\mu) = -\frac12\iint\|x-y\|^r\,d\mu\,d\mu`
started at :math:`\delta_0` is the one Wasserstein gradient flow of the book
with a known answer (Altekrüger, Hertrich, Steidl 2023, Sec. 4 and 6.1). Every
quantity is a dilation of one measure,

.. math::
    \eta^* = \mathrm{prox}_{\mathcal E_K}(\delta_0)
    = \operatorname*{argmin}_\eta\ \tfrac12\int\|x\|^2\,d\eta
      - \tfrac12\iint\|x-y\|^r\,d\eta\,d\eta ,

characterised by the Frostman condition
:math:`\frac12\|x\|^2 - \int\|x-y\|^r\,d\eta^*(y) \ge C` with equality on the
support. With :math:`R_*` its support radius:

* **ball case** :math:`d + r < 4`: :math:`\eta^*` has the density
  :math:`A_{d,r}(R_*^2-\|x\|^2)^{1-\frac{d+r}{2}}` on the ball of radius
  :math:`R_*`, with :math:`R_*^{2-r} = r\,\Gamma(2-\frac r2)\Gamma(\frac{d+r}2)/\Gamma(\frac d2+1)`;
  :math:`\|X\|^2/R_*^2 \sim \mathrm{Beta}(\frac d2, 2-\frac{d+r}2)`.
* **sphere case** :math:`d + r \ge 4`: :math:`\eta^*` is uniform on the sphere
  of radius :math:`R_*` with :math:`R_*^{2-r} = \frac r2 M_r(d)`, where
  :math:`M_r(d) = \int_{S^{d-1}}\|e-\omega\|^r\,d\sigma(\omega)`.

Because :math:`\mathcal E_K((c\,\mathrm{Id})_\#\eta) = c^r\mathcal E_K(\eta)`,
the JKO iterates are :math:`\mu_n = (c_n\mathrm{Id})_\#\eta^*` with
:math:`c_n - c_{n-1} = \tau c_n^{r-1}`, :math:`c_0 = 0`, and the limit curve
(the Wasserstein gradient flow) is
:math:`\gamma(t) = (((2-r)t)^{1/(2-r)}\mathrm{Id})_\#\eta^*`.

These formulas are verified in ``tests/test_analytic.py`` (Frostman condition by
Monte Carlo, normalisation by quadrature, moments of the samplers).
"""

from __future__ import annotations

import math
from numbers import Integral, Real

import numpy as np
import torch

from ._checks import check_int, check_positive, check_riesz_exponent

__all__ = [
    "check_dimension",
    "check_time",
    "is_sphere_case",
    "prox_radius",
    "prox_density",
    "prox_radial_density",
    "regularized_beta",
    "radial_cdf",
    "flow_scale",
    "support_radius",
    "flow_density",
    "prox_radial_cdf",
    "flow_radial_cdf",
    "jko_scale",
    "forward_scale",
    "euler_scale",
    "sphere_mean_distance",
    "radial_moment",
    "mean_radius",
    "second_moment",
    "sample_prox",
    "sample_flow",
    "sample_jko",
    "sample_gamma",
    "sample_beta",
    "frostman_potential",
]


# ----------------------------------------------------------------------------- validation

def check_dimension(d) -> int:
    """The dimension ``d`` must be an integer ``>= 1``.

    Args:
        d: the dimension.

    Returns:
        ``d`` as an int.

    Raises:
        TypeError: ``d`` is not an integer (or is a bool).
        ValueError: ``d < 1``.
    """
    if isinstance(d, bool) or not isinstance(d, Integral):
        raise TypeError(f"the dimension d must be an integer >= 1, got d={d!r}")
    if d < 1:
        raise ValueError(f"the dimension d must be an integer >= 1, got d={d!r}")
    return int(d)


def check_time(t, name: str = "t"):
    """A finite time ``t >= 0`` (a real number or an array of them).

    Args:
        t: a real number, or an array or tensor of them.
        name: the name used in the error messages.

    Returns:
        A float for a real number, else a float64 NumPy array of the same shape.

    Raises:
        TypeError: ``t`` is a bool.
        ValueError: a time is negative or not finite.
    """
    if isinstance(t, bool):
        raise TypeError(f"{name} must be a real number >= 0, got {name}={t!r}")
    if isinstance(t, Real):
        t = float(t)
        if not math.isfinite(t) or t < 0:
            raise ValueError(f"{name} must be a finite real number >= 0, got {name}={t!r}")
        return t
    arr = np.asarray(t.detach().cpu() if isinstance(t, torch.Tensor) else t, dtype=np.float64)
    bad = ~np.isfinite(arr) | (arr < 0)
    if bad.any():
        raise ValueError(f"{name} must be finite and >= 0, got {name}={arr[bad].flat[0]!r}")
    return arr


def _check_count(n, name: str = "n") -> int:
    if isinstance(n, bool) or not isinstance(n, Integral):
        raise TypeError(f"{name} must be an integer >= 1, got {name}={n!r}")
    if n < 1:
        raise ValueError(f"{name} must be an integer >= 1, got {name}={n!r}")
    return int(n)


# ----------------------------------------------------------------------------- the prox eta*

def is_sphere_case(d: int, r: float) -> bool:
    r"""True when :math:`\eta^*` is the uniform measure on a sphere, i.e. :math:`d + r \ge 4`.

    Args:
        d: the dimension.
        r: the Riesz exponent in :math:`(0, 2)`.

    Returns:
        ``True`` in the sphere case, ``False`` in the ball case.
    """
    return check_dimension(d) + check_riesz_exponent(r) >= 4.0


def sphere_mean_distance(d: int, r: float) -> float:
    r""":math:`M_r(d) = \int_{S^{d-1}}\|e-\omega\|^r\,d\sigma(\omega)` for the uniform probability
    :math:`\sigma` on the unit sphere and a unit vector :math:`e`:

    .. math::
        M_r(d) = \frac{2^{r+d-2}\,\Gamma(\frac d2)\,\Gamma(\frac{d-1+r}2)}{\sqrt\pi\,\Gamma(d-1+\frac r2)}

    (from :math:`\|e-\omega\|^2 = 2 - 2\omega_1` and the density
    :math:`\propto(1-s^2)^{(d-3)/2}` of :math:`\omega_1`). Valid for ``d >= 2``;
    for ``d = 1`` (the two points :math:`\pm1`) it is :math:`2^{r-1}`.

    Args:
        d: the dimension.
        r: the Riesz exponent in :math:`(0, 2)`.

    Returns:
        :math:`M_r(d)` as a float.
    """
    d, r = check_dimension(d), check_riesz_exponent(r)
    if d == 1:
        return 2.0 ** (r - 1)
    log_m = ((r + d - 2) * math.log(2.0) + math.lgamma(d / 2) + math.lgamma((d - 1 + r) / 2)
             - 0.5 * math.log(math.pi) - math.lgamma(d - 1 + r / 2))
    return math.exp(log_m)


def prox_radius(d: int, r: float) -> float:
    r"""Support radius :math:`R_*` of :math:`\eta^* = \mathrm{prox}_{\mathcal E_K}(\delta_0)` (Sec. 4).

    Ball case (:math:`d + r < 4`):
    :math:`R_*^{2-r} = \dfrac{r\,\Gamma(2-\frac r2)\,\Gamma(\frac{d+r}2)}{\Gamma(\frac d2+1)}`;
    sphere case (:math:`d + r \ge 4`): :math:`R_*^{2-r} = \frac r2 M_r(d)`
    (:func:`sphere_mean_distance`). Known values: :math:`\pi/4` at ``d=2, r=1``,
    ``1`` at ``d=1, r=1``, ``2/3`` at ``d=3, r=1``.

    Args:
        d: the dimension.
        r: the Riesz exponent in :math:`(0, 2)`.

    Returns:
        :math:`R_*` as a float.

    Raises:
        ValueError: ``d < 1`` or ``r`` outside :math:`(0, 2)`.
    """
    d, r = check_dimension(d), check_riesz_exponent(r)
    if d + r < 4:
        log_p = (math.log(r) + math.lgamma(2 - r / 2) + math.lgamma((d + r) / 2) - math.lgamma(d / 2 + 1))
    else:
        log_p = math.log(r / 2) + math.log(sphere_mean_distance(d, r))
    return math.exp(log_p / (2 - r))


def _density_exponent(d: int, r: float) -> float:
    return 1.0 - (d + r) / 2.0


def _log_density_constant(d: int, r: float) -> float:
    r""":math:`\log A_{d,r}` with :math:`A_{d,r} = \Gamma(\frac d2+1)/(\pi^{d/2} r\Gamma(\frac{d+r}2)\Gamma(2-\frac{d+r}2))`."""
    return (math.lgamma(d / 2 + 1) - (d / 2) * math.log(math.pi) - math.log(r)
            - math.lgamma((d + r) / 2) - math.lgamma(2 - (d + r) / 2))


def _apply_radial(radius, fn):
    """Evaluate ``fn(numpy array)`` on a float, array or tensor and return the same kind."""
    if isinstance(radius, torch.Tensor):
        out = fn(radius.detach().cpu().double().numpy())
        return torch.as_tensor(out).to(radius.device, radius.dtype if radius.is_floating_point() else torch.float64)
    if isinstance(radius, Real) and not isinstance(radius, bool):
        return float(fn(np.asarray(float(radius))))
    return fn(np.asarray(radius, dtype=np.float64))


def prox_density(radius, d: int, r: float):
    r"""Density of :math:`\eta^*` (ball case) as a function of :math:`\|x\|`:

    .. math::
        \eta^*(x) = A_{d,r}\,(R_*^2 - \|x\|^2)^{1-\frac{d+r}2}\,\mathbf 1_{\|x\|<R_*}.

    Args:
        radius: :math:`\|x\|`, a float, NumPy array or tensor (any shape).
        d: the dimension.
        r: the Riesz exponent in :math:`(0, 2)`.

    Returns:
        the density (Lebesgue density in :math:`\mathbb R^d`), same kind and shape as ``radius``.

    Raises:
        ValueError: in the sphere case :math:`d + r \ge 4`, where :math:`\eta^*` has no density.
    """
    d, r = check_dimension(d), check_riesz_exponent(r)
    if d + r >= 4:
        raise ValueError(f"eta* has no density for d + r >= 4 (uniform on a sphere); got d={d}, r={r}")
    big_r, alpha, log_a = prox_radius(d, r), _density_exponent(d, r), _log_density_constant(d, r)

    def fn(rho):
        rho = np.abs(rho)
        inside = rho < big_r
        gap = np.where(inside, big_r**2 - rho**2, 1.0)
        return np.where(inside, np.exp(log_a + alpha * np.log(gap)), 0.0)

    return _apply_radial(radius, fn)


def _sphere_area(d: int) -> float:
    """Surface area :math:`2\\pi^{d/2}/\\Gamma(d/2)` of the unit sphere in :math:`\\mathbb R^d`."""
    return math.exp(math.log(2.0) + (d / 2) * math.log(math.pi) - math.lgamma(d / 2))


def prox_radial_density(radius, d: int, r: float):
    r"""Density of :math:`\|X\|` for :math:`X\sim\eta^*` (ball case):
    :math:`|S^{d-1}|\,\rho^{d-1}\,\eta^*(\rho)`. Integrates to one on :math:`[0, R_*]`.

    Args:
        radius: :math:`\rho`: a float, array or tensor.
        d: the dimension.
        r: the Riesz exponent in :math:`(0, 2)` with :math:`d + r < 4`.

    Returns:
        The density, of the kind and shape of ``radius``.
    """
    d = check_dimension(d)
    area = _sphere_area(d)
    dens = lambda rho: prox_density(rho, d, r)  # noqa: E731
    return _apply_radial(radius, lambda rho: area * np.abs(rho) ** (d - 1) * dens(rho))


def radial_cdf(radius, d: int, r: float, t: float | None = None):
    r"""CDF :math:`P(\|X\| \le \rho)` of the radius of :math:`X\sim\eta^*` (:func:`prox_radial_cdf`), or of
    :math:`X\sim\gamma(t)` when ``t`` is given (:func:`flow_radial_cdf`; :math:`\gamma(0) = \delta_0`: a step at 0).
    ``radius``: a float, array or tensor (returns the same kind).

    Args:
        radius: :math:`\rho`: a float, array or tensor.
        d: the dimension.
        r: the Riesz exponent in :math:`(0, 2)`.
        t: a time :math:`t \ge 0`, or ``None`` (the measure :math:`\eta^*` itself).

    Returns:
        :math:`P(\|X\|\le\rho)`, of the kind and shape of ``radius``.
    """
    if t is None:
        return prox_radial_cdf(radius, d, r)
    if float(check_time(t)) == 0.0:
        return _apply_radial(radius, lambda rho: (np.asarray(rho) >= 0).astype(np.float64))
    return flow_radial_cdf(radius, float(t), d, r)


def radial_moment(k: float, d: int, r: float) -> float:
    r""":math:`\int\|x\|^k\,d\eta^*` for ``k > -d``.

    Sphere case: :math:`R_*^k`. Ball case, with :math:`\|X\|^2/R_*^2\sim\mathrm{Beta}(a, b)`,
    :math:`a = \frac d2`, :math:`b = 2-\frac{d+r}2`:
    :math:`R_*^k\,\frac{\Gamma(a+\frac k2)\Gamma(a+b)}{\Gamma(a)\Gamma(a+b+\frac k2)}`.
    Multiply by :math:`s(t)^k` (:func:`flow_scale`) for :math:`\gamma(t)`.

    Args:
        k: the order, a real number ``> -d``.
        d: the dimension.
        r: the Riesz exponent in :math:`(0, 2)`.

    Returns:
        The moment as a float.

    Raises:
        ValueError: ``k <= -d`` or ``k`` is not a real number.
    """
    d, r = check_dimension(d), check_riesz_exponent(r)
    if isinstance(k, bool) or not isinstance(k, Real) or not k > -d:
        raise ValueError(f"the moment order k must be a real number > -d = {-d}, got k={k!r}")
    big_r = prox_radius(d, r)
    if d + r >= 4:
        return big_r**k
    a, b = d / 2, 2 - (d + r) / 2
    return big_r**k * math.exp(math.lgamma(a + k / 2) + math.lgamma(a + b) - math.lgamma(a) - math.lgamma(a + b + k / 2))


def mean_radius(t, d: int, r: float):
    r"""Mean radius :math:`\int\|x\|\,d\gamma(t) = s(t)\int\|x\|\,d\eta^*` of the limit curve (float or array in ``t``).

    Args:
        t: a time :math:`t \ge 0`, or an array of them.
        d: the dimension.
        r: the Riesz exponent in :math:`(0, 2)`.

    Returns:
        A float, or a NumPy array of the shape of ``t``.
    """
    return flow_scale(t, r) * radial_moment(1, d, r)


def second_moment(d: int, r: float) -> float:
    r""":math:`\int\|x\|^2\,d\eta^*` (= :func:`radial_moment` with ``k = 2``); note
    :math:`\mathcal E_K(\eta^*) = -\frac1r\int\|x\|^2\,d\eta^*`.

    Args:
        d: the dimension.
        r: the Riesz exponent in :math:`(0, 2)`.

    Returns:
        The moment as a float.
    """
    return radial_moment(2, d, r)


def regularized_beta(x, a: float, b: float) -> np.ndarray:
    r"""The regularised incomplete beta function :math:`I_x(a, b) = \frac{1}{B(a,b)}\int_0^x u^{a-1}(1-u)^{b-1}du`.

    The CDF of :math:`\mathrm{Beta}(a, b)`, for ``x`` in [0, 1] (an array; values outside are clipped), by the
    continued fraction of :math:`I_x` (modified Lentz iteration) where :math:`x < (a+1)/(a+b+2)` and by
    :math:`I_x(a, b) = 1 - I_{1-x}(b, a)` elsewhere; accurate to about 1e-14.

    Args:
        x: points in :math:`[0, 1]` (array-like).
        a: the first shape parameter, ``> 0``.
        b: the second shape parameter, ``> 0``.

    Returns:
        :math:`I_x(a, b)`, a float64 NumPy array of the shape of ``x``.

    Raises:
        ValueError: ``a`` or ``b`` is not positive.
    """
    a, b = check_positive(a, "a"), check_positive(b, "b")
    x = np.clip(np.asarray(x, dtype=np.float64), 0.0, 1.0)
    flip = x > (a + 1.0) / (a + b + 2.0)
    xs = np.where(flip, 1.0 - x, x)
    pa, pb = np.where(flip, b, a), np.where(flip, a, b)
    with np.errstate(divide="ignore"):
        log_front = (pa * np.log(xs) + pb * np.log1p(-xs) - np.log(pa)
                     + math.lgamma(a + b) - np.vectorize(math.lgamma)(pa) - np.vectorize(math.lgamma)(pb))
    tiny = 1e-300
    c = np.ones_like(xs)
    dd = 1.0 - (pa + pb) * xs / (pa + 1.0)
    dd = 1.0 / np.where(np.abs(dd) < tiny, tiny, dd)
    h = dd.copy()
    for m in range(1, 400):
        for num in (m * (pb - m) * xs / ((pa + 2 * m - 1) * (pa + 2 * m)),
                    -(pa + m) * (pa + pb + m) * xs / ((pa + 2 * m) * (pa + 2 * m + 1))):
            dd = 1.0 + num * dd
            dd = 1.0 / np.where(np.abs(dd) < tiny, tiny, dd)
            c = 1.0 + num / c
            c = np.where(np.abs(c) < tiny, tiny, c)
            h = h * dd * c
        if np.all(np.abs(dd * c - 1.0) < 1e-15):
            break
    part = np.where(xs > 0, np.exp(log_front) * h, 0.0)
    return np.where(flip, 1.0 - part, part)


def prox_radial_cdf(radius, d: int, r: float):
    r"""CDF of :math:`\|X\|` for :math:`X\sim\eta^*`: :math:`I_{(\rho/R_*)^2}(\frac d2, 2-\frac{d+r}2)` in the ball
    case (:func:`regularized_beta`), the step :math:`\mathbf 1_{\rho\ge R_*}` in the sphere case. Same kind and
    shape as ``radius`` (float, array or tensor).

    Args:
        radius: :math:`\rho`: a float, array or tensor.
        d: the dimension.
        r: the Riesz exponent in :math:`(0, 2)`.

    Returns:
        :math:`P(\|X\|\le\rho)`, of the kind and shape of ``radius``.
    """
    d, r = check_dimension(d), check_riesz_exponent(r)
    big_r = prox_radius(d, r)
    if d + r >= 4:
        return _apply_radial(radius, lambda rho: (np.abs(rho) >= big_r).astype(np.float64))
    return _apply_radial(radius, lambda rho: regularized_beta((rho / big_r) ** 2, d / 2, 2 - (d + r) / 2))


def flow_radial_cdf(radius, t: float, d: int, r: float):
    r"""CDF of :math:`\|X\|` for :math:`X\sim\gamma(t)`: :func:`prox_radial_cdf` at :math:`\rho/s(t)`.

    Args:
        radius: :math:`\rho`: a float, array or tensor.
        t: the time :math:`t > 0` (a scalar).
        d: the dimension.
        r: the Riesz exponent in :math:`(0, 2)`.

    Returns:
        :math:`P(\|X\|\le\rho)`, of the kind and shape of ``radius``.

    Raises:
        ValueError: ``t`` is not a scalar time ``> 0``.
    """
    t = check_time(t)
    if not isinstance(t, float) or t == 0:
        raise ValueError(f"flow_radial_cdf takes a scalar time t > 0 (gamma(0) is delta_0), got t={t!r}")
    s = flow_scale(t, r)
    return prox_radial_cdf(radius / s if isinstance(radius, (torch.Tensor, Real)) else np.asarray(radius) / s, d, r)


# ----------------------------------------------------------------------------- the curves

def flow_scale(t, r: float):
    r"""Dilation factor of the limit curve: :math:`\gamma(t) = (s(t)\,\mathrm{Id})_\#\eta^*` with
    :math:`s(t) = ((2-r)t)^{1/(2-r)}`, the solution of :math:`s' = s^{r-1}`, :math:`s(0) = 0`.

    Args:
        t: a time :math:`t \ge 0`, or an array of them.
        r: the Riesz exponent in :math:`(0, 2)`.

    Returns:
        :math:`s(t)`: a float, or a NumPy array of the shape of ``t``.

    Raises:
        ValueError: a time is negative or ``r`` is outside :math:`(0, 2)`.
    """
    r = check_riesz_exponent(r)
    t = check_time(t)
    return ((2 - r) * t) ** (1 / (2 - r))


def support_radius(t, d: int, r: float):
    r"""Support radius of the limit curve :math:`\gamma(t)`: :math:`R(t) = ((2-r)t)^{1/(2-r)}R_*` (Sec. 4).

    ``t`` may be a float (returns a float) or an array (returns a NumPy array).
    Example: ``d=2, r=1`` gives :math:`R(t) = \pi t/4`.

    Args:
        t: a time :math:`t \ge 0`, or an array of them.
        d: the dimension.
        r: the Riesz exponent in :math:`(0, 2)`.

    Returns:
        :math:`R(t)`: a float, or a NumPy array of the shape of ``t``.
    """
    return flow_scale(t, r) * prox_radius(d, r)


def flow_density(radius, t: float, d: int, r: float):
    r"""Density of :math:`\gamma(t)` (ball case) at :math:`\|x\|`: :math:`s^{-d}\,\eta^*(\|x\|/s)` with
    :math:`s = ((2-r)t)^{1/(2-r)}`, i.e. :math:`\frac{A_{d,r}}{(2-r)t}(R(t)^2-\|x\|^2)^{1-\frac{d+r}2}`.

    Args:
        radius: :math:`\|x\|`: a float, array or tensor.
        t: the time :math:`t > 0` (a scalar).
        d: the dimension.
        r: the Riesz exponent in :math:`(0, 2)`.

    Returns:
        The density, of the kind and shape of ``radius``.

    Raises:
        TypeError: ``t`` is not a scalar.
        ValueError: ``t = 0`` (:math:`\gamma(0) = \delta_0` has no density) or ``t`` is negative.
    """
    t = check_time(t)
    if not isinstance(t, float):
        raise TypeError("flow_density takes a scalar time t")
    if t == 0:
        raise ValueError("gamma(0) is the Dirac measure delta_0 and has no density; got t=0")
    s = flow_scale(t, r)
    if isinstance(radius, torch.Tensor):
        return prox_density(radius / s, d, r) / s**d
    if isinstance(radius, Real):
        return prox_density(float(radius) / s, d, r) / s**d
    return prox_density(np.asarray(radius, dtype=np.float64) / s, d, r) / s**d


def _jko_next(prev: float, tau: float, r: float) -> float:
    r"""The root :math:`c > c_{n-1}` of :math:`c - c_{n-1} = \tau c^{r-1}` (the global JKO minimiser).

    :math:`g(c) = (c - a)/\tau - c^{r-1}` is negative at :math:`c = a > 0` and has exactly one
    root in :math:`(a, \infty)` (for :math:`r \le 1` it is increasing; for :math:`1 < r < 2` it first
    decreases then increases). Safeguarded Newton iteration on a bracket.
    """
    if prev == 0.0:
        return tau ** (1.0 / (2.0 - r))
    if r == 1.0:
        return prev + tau
    g = lambda c: (c - prev) / tau - c ** (r - 1)  # noqa: E731
    dg = lambda c: 1.0 / tau - (r - 1) * c ** (r - 2)  # noqa: E731
    lo, hi = prev, prev + tau * prev ** (r - 1)   # explicit-Euler guess
    while g(hi) <= 0:                               # grow the bracket (only needed for r > 1)
        lo, hi = hi, prev + 2 * (hi - prev)
    c = hi
    for _ in range(200):
        step_ok = False
        slope = dg(c)
        if slope > 0:
            cn = c - g(c) / slope
            step_ok = lo < cn < hi
        if not step_ok:
            cn = 0.5 * (lo + hi)
        if g(cn) > 0:
            hi = cn
        else:
            lo = cn
        if abs(cn - c) <= 4e-16 * max(cn, 1e-300) or hi - lo <= 4e-16 * hi:
            return cn
        c = cn
    return 0.5 * (lo + hi)


def jko_scale(n, tau: float, r: float):
    r"""Dilation :math:`c_n` of the JKO iterates :math:`\mu_n = (c_n\mathrm{Id})_\#\eta^*` (Sec. 4).

    Recursion :math:`c_0 = 0`, :math:`c_n - c_{n-1} = \tau\,c_n^{r-1}` (first-order condition of
    the JKO step restricted to dilations of :math:`\eta^*`); :math:`c_1 = \tau^{1/(2-r)}` and
    :math:`c_n = n\tau` exactly for ``r = 1``. Each step solves for the unique root
    :math:`c_n > c_{n-1}` (global minimiser of :math:`(c-c_{n-1})^2/(2\tau) - c^r/r`).

    Args:
        n: number of steps, an int or an array of ints ``>= 0``.
        tau: step size ``> 0``.
        r: the Riesz exponent in :math:`(0, 2)`.

    Returns:
        a float for an int ``n``, else a NumPy float64 array of ``n``'s shape.
    """
    tau = check_positive(tau, "tau")
    r = check_riesz_exponent(r)
    scalar = isinstance(n, Integral) and not isinstance(n, bool)
    arr = np.asarray(n.detach().cpu() if isinstance(n, torch.Tensor) else n)
    if isinstance(n, bool) or not (np.issubdtype(arr.dtype, np.integer)):
        raise TypeError(f"n must be an integer or an array of integers, got n={n!r}")
    if (arr < 0).any():
        raise ValueError(f"n must be >= 0, got n={int(arr[arr < 0].flat[0])}")
    if r == 1.0:
        out = arr.astype(np.float64) * tau
        return float(out) if scalar else out
    top = int(arr.max()) if arr.size else 0
    cs = np.zeros(top + 1)
    for k in range(1, top + 1):
        cs[k] = _jko_next(cs[k - 1], tau, r)
    out = cs[arr]
    return float(out) if scalar else out


def forward_scale(n, tau: float, r: float = 1.0):
    r"""Dilation of the forward (steepest descent) scheme iterates from :math:`\delta_0`: :math:`n\tau`.

    For ``r = 1`` the steepest-descent plan at :math:`\delta_0` is :math:`\delta_0\times\eta^*`, so
    :math:`\mu_n = ((n\tau)\mathrm{Id})_\#\eta^* = \gamma(n\tau)`. For ``r != 1`` the direction
    derivative at the Dirac is ``0`` (``r > 1``) or :math:`-\infty` (``r < 1``) and the scheme is
    undefined; a ``ValueError`` is raised.

    Args:
        n: the number of steps (an integer or an array of them).
        tau: the step size :math:`\tau > 0`.
        r: the Riesz exponent; only ``r = 1`` has the closed form.

    Returns:
        :math:`n\tau` (as :func:`jko_scale` with ``r = 1``).

    Raises:
        ValueError: ``r != 1`` or ``tau`` is not positive.
    """
    tau = check_positive(tau, "tau")
    r = check_riesz_exponent(r)
    if r != 1.0:
        raise ValueError(f"the forward scheme from delta_0 has a closed form only for r=1, got r={r}")
    return jko_scale(n, tau, 1.0)


def euler_scale(n: int, tau: float, r: float, c0: float) -> float:
    r"""Explicit Euler iterate of the dilation ODE :math:`c' = c^{r-1}` from :math:`c_0 > 0`:
    :math:`c_{k+1} = c_k + \tau\,c_k^{r-1}`, after ``n`` steps.

    A particle flow started at a small dilation :math:`(c_0\mathrm{Id})_\#\eta^*` of :math:`\eta^*` stays a
    dilation of it (its velocity field is :math:`c^{r-2}x` on the support), so its explicit Euler steps of size
    :math:`\tau` follow this recursion, while the exact flow has :math:`c(t)^{2-r} = c_0^{2-r} + (2-r)t`. For
    ``r > 1`` the velocity :math:`c^{r-1}` vanishes as :math:`c \to 0`: each step uses the small velocity at its
    start, and the iterates lose a few steps before they catch up with the growth (the start-up error of
    the explicit scheme, of order :math:`\tau\log(1/\tau)`); for ``r = 1`` :math:`c_n = c_0 + n\tau` exactly.

    Args:
        n: the number of steps (an integer >= 0).
        tau: the step size :math:`\tau > 0`.
        r: the Riesz exponent in :math:`(0, 2)`.
        c0: the start :math:`c_0 > 0`.

    Returns:
        :math:`c_n` as a float.

    Raises:
        ValueError: a parameter is out of range.
    """
    tau = check_positive(tau, "tau")
    r = check_riesz_exponent(r)
    c = check_positive(c0, "c0")
    n = check_int(n, "n", 0)
    for _ in range(n):
        c = c + tau * c ** (r - 1)
    return c


# ----------------------------------------------------------------------------- samplers

def sample_gamma(shape: float, n: int, *, generator: torch.Generator | None = None) -> torch.Tensor:
    r"""``n`` draws of :math:`\mathrm{Gamma}(\text{shape}, 1)` as a float64 CPU tensor.

    Marsaglia–Tsang (2000) squeeze-rejection on ``torch.randn``/``torch.rand`` with ``generator``
    (so the generator controls everything); shapes ``< 1`` via
    :math:`G_a = G_{a+1}\,U^{1/a}`.

    Args:
        shape: the shape parameter, ``> 0``.
        n: the number of draws, ``>= 1``.
        generator: the source of randomness.

    Returns:
        ``[n]`` float64 CPU tensor.

    Raises:
        ValueError: ``shape`` is not positive or ``n < 1``.
    """
    a = check_positive(shape, "shape")
    n = _check_count(n)
    boost = a < 1
    dd = (a + 1 if boost else a) - 1 / 3
    c = 1 / math.sqrt(9 * dd)
    out = torch.empty(n, dtype=torch.float64)
    filled = 0
    while filled < n:
        m = int(1.1 * (n - filled)) + 16
        z = torch.randn(m, generator=generator, dtype=torch.float64)
        u = torch.rand(m, generator=generator, dtype=torch.float64)
        v = (1 + c * z) ** 3
        ok = v > 0
        vs = torch.where(ok, v, torch.ones_like(v))
        ok &= torch.log(u) < 0.5 * z**2 + dd - dd * vs + dd * torch.log(vs)
        acc = (dd * vs)[ok][: n - filled]
        out[filled:filled + acc.numel()] = acc
        filled += acc.numel()
    if boost:
        u = torch.rand(n, generator=generator, dtype=torch.float64)
        out = out * torch.exp(torch.log(u) / a)
    return out


def sample_beta(a: float, b: float, n: int, *, generator: torch.Generator | None = None) -> torch.Tensor:
    r"""``n`` draws of :math:`\mathrm{Beta}(a, b)` as :math:`G_a/(G_a+G_b)` (float64, CPU).

    Args:
        a: the first shape parameter, ``> 0``.
        b: the second shape parameter, ``> 0``.
        n: the number of draws, ``>= 1``.
        generator: the source of randomness.

    Returns:
        ``[n]`` float64 CPU tensor.
    """
    ga = sample_gamma(a, n, generator=generator)
    gb = sample_gamma(b, n, generator=generator)
    total = ga + gb
    return torch.where(total > 0, ga / torch.where(total > 0, total, torch.ones_like(total)), torch.ones_like(ga))


def _directions(n: int, d: int, generator) -> torch.Tensor:
    z = torch.randn(n, d, generator=generator, dtype=torch.float64)
    norm = z.norm(dim=1, keepdim=True)
    while bool((norm == 0).any()):  # probability zero, but keep it exact
        bad = (norm[:, 0] == 0).nonzero()[:, 0]
        z[bad] = torch.randn(len(bad), d, generator=generator, dtype=torch.float64)
        norm = z.norm(dim=1, keepdim=True)
    return z / norm


def sample_prox(n: int, d: int, r: float, generator: torch.Generator | None = None, *,
                dtype: torch.dtype = torch.float64, device=None) -> torch.Tensor:
    r"""Exact i.i.d. sample of :math:`\eta^*`, shape ``(n, d)``.

    Ball case: :math:`X = R_*\sqrt{B}\,U` with :math:`B\sim\mathrm{Beta}(\frac d2, 2-\frac{d+r}2)`
    and :math:`U` uniform on the unit sphere; sphere case: :math:`X = R_* U`.
    Drawn in float64 on the CPU with ``generator``, then moved to ``dtype``/``device``.

    Args:
        n: the number of points, ``>= 1``.
        d: the dimension.
        r: the Riesz exponent in :math:`(0, 2)`.
        generator: the source of randomness.
        dtype: the dtype of the result.
        device: the device of the result.

    Returns:
        ``[n, d]`` tensor of ``dtype`` on ``device``.

    Raises:
        ValueError: ``n < 1``, ``d < 1`` or ``r`` outside :math:`(0, 2)`.
    """
    n, d, r = _check_count(n), check_dimension(d), check_riesz_exponent(r)
    big_r = prox_radius(d, r)
    u = _directions(n, d, generator)
    if d + r >= 4:
        x = big_r * u
    else:
        b = sample_beta(d / 2, 2 - (d + r) / 2, n, generator=generator)
        x = big_r * b.sqrt()[:, None] * u
    return x.to(device=device, dtype=dtype)


def sample_flow(n: int, t: float, d: int, r: float, generator: torch.Generator | None = None, *,
                dtype: torch.dtype = torch.float64, device=None) -> torch.Tensor:
    r"""Exact sample of the limit curve :math:`\gamma(t) = (((2-r)t)^{1/(2-r)}\mathrm{Id})_\#\eta^*`, ``(n, d)``.

    Args:
        n: the number of points, ``>= 1``.
        t: the time :math:`t \ge 0` (a scalar).
        d: the dimension.
        r: the Riesz exponent in :math:`(0, 2)`.
        generator: the source of randomness.
        dtype: the dtype of the result.
        device: the device of the result.

    Returns:
        ``[n, d]`` tensor of ``dtype`` on ``device``.

    Raises:
        TypeError: ``t`` is not a scalar.
    """
    t = check_time(t)
    if not isinstance(t, float):
        raise TypeError(f"sample_flow takes a scalar time t, got {t!r}")
    return flow_scale(t, r) * sample_prox(n, d, r, generator, dtype=dtype, device=device)


def sample_jko(n: int, n_steps: int, tau: float, d: int, r: float, generator: torch.Generator | None = None, *,
               dtype: torch.dtype = torch.float64, device=None) -> torch.Tensor:
    r"""Exact sample of the ``n_steps``-th JKO iterate :math:`(c_{n}\mathrm{Id})_\#\eta^*` (:func:`jko_scale`).

    Args:
        n: the number of points, ``>= 1``.
        n_steps: the JKO step index, ``>= 0``.
        tau: the step size :math:`\tau > 0`.
        d: the dimension.
        r: the Riesz exponent in :math:`(0, 2)`.
        generator: the source of randomness.
        dtype: the dtype of the result.
        device: the device of the result.

    Returns:
        ``[n, d]`` tensor of ``dtype`` on ``device``.

    Raises:
        ValueError: ``n_steps`` is not an integer ``>= 0``.
    """
    if isinstance(n_steps, bool) or not isinstance(n_steps, Integral) or n_steps < 0:
        raise ValueError(f"n_steps must be an integer >= 0, got n_steps={n_steps!r}")
    return jko_scale(int(n_steps), tau, r) * sample_prox(n, d, r, generator, dtype=dtype, device=device)


def frostman_potential(x: torch.Tensor, d: int, r: float, *, n_samples: int = 100_000,
                       generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    r"""Monte Carlo estimate of the Frostman potential of :math:`\eta^*` at the points ``x``:

    .. math::
        U(x) = \tfrac12\|x\|^2 - \int\|x-y\|^r\,d\eta^*(y),

    which equals a constant :math:`C` on :math:`\mathrm{supp}\,\eta^*` and is :math:`\ge C`
    elsewhere (the Euler-Lagrange condition of the prox problem, Sec. 4).

    Args:
        x: evaluation points ``[P, d]`` (float64 recommended).
        d: the dimension (``x.shape[1]``).
        r: the Riesz exponent in :math:`(0, 2)`.
        n_samples: size of the exact sample of :math:`\eta^*` used for the integral.
        generator: the source of the sample.

    Returns:
        ``(U, stderr)``, both ``[P]``: the estimate and its Monte Carlo standard error.
    """
    d, r = check_dimension(d), check_riesz_exponent(r)
    if x.dim() != 2 or x.shape[1] != d:
        raise ValueError(f"x must have shape (P, {d}), got {tuple(x.shape)}")
    y = sample_prox(_check_count(n_samples, "n_samples"), d, r, generator).to(x)
    dist = ((x[:, None, :] - y[None, :, :]) ** 2).sum(-1).sqrt() ** r     # [P, n]
    return 0.5 * (x**2).sum(1) - dist.mean(1), dist.std(1) / math.sqrt(y.shape[0])
