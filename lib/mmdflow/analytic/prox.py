r"""The prox :math:`\eta^* = \mathrm{prox}_{\mathcal E_K}(\delta_0)` of the Riesz interaction energy, its
radial law, and the dilation :math:`s(t)` of the limit curve :math:`\gamma(t) = (s(t)\,\mathrm{Id})_\#\eta^*`.

Input checks (:func:`check_dimension`, :func:`check_time`); the ball/sphere dichotomy
(:func:`is_sphere_case`: ball for :math:`d + r < 4`); the support radius :math:`R_*` (:func:`prox_radius`); the
density :math:`A_{d,r}(R_*^2-\|x\|^2)^{1-\frac{d+r}{2}}` (:func:`prox_density`), its radial density and
distribution function (:math:`\|X\|^2/R_*^2 \sim \mathrm{Beta}(\frac d2, 2-\frac{d+r}2)`,
:func:`regularized_beta`), and its radial moments. The formulas are derived in :mod:`mmdflow.analytic`.
"""

from __future__ import annotations

import math
from numbers import Integral, Real

import numpy as np
import torch

from .._checks import check_positive, check_riesz_exponent

__all__ = ["check_dimension", "check_time", "is_sphere_case", "prox_radius", "prox_density", "prox_radial_density",
           "regularized_beta", "radial_cdf", "flow_scale", "prox_radial_cdf", "flow_radial_cdf",
           "sphere_mean_distance", "radial_moment", "mean_radius", "second_moment"]


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



# ----------------------------------------------------------------------------- the dilation of the limit curve

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
