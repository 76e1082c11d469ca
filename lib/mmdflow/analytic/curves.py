r"""The curves built from :math:`\eta^*`: the limit curve :math:`\gamma(t)` (support radius, density) and the
scale factors :math:`c_n` of the JKO iterates :math:`\mu_n = (c_n\mathrm{Id})_\#\eta^*`
(:math:`c_n - c_{n-1} = \tau c_n^{r-1}`, :func:`jko_scale`), of the explicit forward scheme
(:func:`forward_scale`) and of the explicit Euler scheme from a dilation of :math:`\eta^*` (:func:`euler_scale`).
See :mod:`mmdflow.analytic` for the derivation.
"""

from __future__ import annotations

from numbers import Integral, Real

import numpy as np
import torch

from .._checks import check_int, check_positive, check_riesz_exponent
from .prox import check_time, flow_scale, prox_radius, prox_density

__all__ = ["support_radius", "flow_density", "jko_scale", "forward_scale", "euler_scale"]


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
