r"""The exact Wasserstein gradient flow of :math:`\mathcal D_K^2(\cdot,\nu)` on the line, level by level:
:math:`\partial_t Q(t,s) = c\,(s - F_\nu(Q))` with :math:`c` = :data:`DRIFT` (:func:`quantile_flow`), solved by
a per-level adaptive Dormand-Prince 5(4) method (:func:`solve_levels`), and the closed form for a uniform target
from a Dirac start (:func:`uniform_flow_from_dirac`). The derivation is in :mod:`mmdflow.analytic1d`.
"""

from __future__ import annotations

import math
from typing import Callable, Sequence

import torch

from .targets import _F64, _t, as_mixture

__all__ = ["quantile_flow", "solve_levels", "uniform_flow_from_dirac", "DRIFT"]

#: the constant in :math:`\partial_t Q = c\,(s - F_\nu(Q))` for the book's :math:`\mathcal D_K^2` (r = 1).
DRIFT = 2.0


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
