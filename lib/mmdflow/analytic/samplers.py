r"""Samplers of the closed-form measures: :math:`\eta^*` (:func:`sample_prox`: radius
:math:`R_*\sqrt{B}`, :math:`B\sim\mathrm{Beta}(\frac d2, 2-\frac{d+r}2)`, times a uniform direction, or the
sphere of radius :math:`R_*`), its dilations :math:`\gamma(t)` and :math:`\mu_n` (:func:`sample_flow`,
:func:`sample_jko`), the Gamma/Beta draws they use (through an explicit ``torch.Generator``), and a Monte
Carlo check of the Frostman condition (:func:`frostman_potential`).
"""

from __future__ import annotations

import math
from numbers import Integral

import torch

from .._checks import check_positive, check_riesz_exponent
from .prox import check_time, check_dimension, flow_scale, prox_radius, _check_count
from .curves import jko_scale

__all__ = ["sample_prox", "sample_flow", "sample_jko", "sample_gamma", "sample_beta", "frostman_potential"]


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
