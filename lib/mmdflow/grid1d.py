r"""Flows of densities on a 1-D grid: the inclusive-KL flows and their kernel approximations (finite volumes).

A density :math:`\mu` on :math:`[L_0, L_1]` is stored as cell averages :math:`\mu_i` on ``n`` equal cells of width
:math:`\Delta x`. :func:`grid_flow` solves

.. math::
    \partial_t\mu = -\alpha\,\partial_x J(\mu) + \beta\,R(\mu)

with a flux :math:`J` on the cell faces (zero at both ends unless ``boundary_flux`` is given, so the transport
part conserves :math:`\sum_i\mu_i\Delta x` exactly) and a reaction :math:`R`:

* ``transport="kl"``: the Wasserstein flow of the inclusive :math:`\mathrm{KL}(\nu|\mu) = \int\nu\log\frac\nu\mu
  - \nu + \mu`, whose first variation is :math:`1 - \nu/\mu`: velocity :math:`\partial_x(\nu/\mu)`, flux
  :math:`J = \mu\,\partial_x(\nu/\mu) = -\nu\,\partial_x\log(\mu/\nu)`, with :math:`\nu` averaged on the face;
  :math:`\mu = \nu` is a discrete steady state. A nonlinear (logarithmic) diffusion with diffusivity
  :math:`\nu/\mu`.
* ``transport="l2"``: the Wasserstein flow of :math:`\tfrac12\lVert\mu-\nu\rVert^2_{L^2}`,
  :math:`J = -\mu\,\partial_x(\mu-\nu)` (a porous-medium equation with drift): the limit of the MMD flow as the
  bandwidth of a normalised kernel goes to zero (derived in the chapter).
* ``transport="kernel"``: the MMD flow itself, :math:`J = -\mu\,\partial_x\,\mathcal K_\sigma(\mu-\nu)`, with the
  normalised Gaussian :math:`\mathcal K_\sigma\rho(x) = \int(2\pi\sigma^2)^{-1/2}e^{-|x-y|^2/(2\sigma^2)}\rho(y)dy`
  (midpoint rule on the grid); the mean-field limit of the particle MMD flow at bandwidth :math:`\sigma`.
* ``reaction="kl"``: :math:`R = \nu-\mu`, the Fisher-Rao flow of :math:`\mathrm{KL}(\nu|\mu)` (and the MMD-geometry
  flow of any MMD); ``"l2_fr"``: :math:`R = -\mu\,(f - \int f\,d\mu)` with :math:`f = \mu-\nu`, the spherical
  Fisher-Rao flow of :math:`\tfrac12\lVert\mu-\nu\rVert^2_{L^2}`; ``"kernel_fr"``: the same with
  :math:`f = \mathcal K_\sigma(\mu-\nu)`; ``"none"``.

Time stepping: the three-stage strong-stability-preserving Runge-Kutta method with a step chosen before every step
as ``cfl`` times the explicit stability bound :math:`\min(\Delta x^2/(2D_{\max}), \Delta x/|v|_{\max}, 1/\beta)`
(:math:`D = \nu/\mu` for ``"kl"``, :math:`\mu` for ``"l2"``), landing exactly on the output times. Space is
second order (central faces), time third order; the tests check the order by refinement, mass conservation, the
closed-form Fisher-Rao flow :math:`\mu_t = \nu + e^{-\beta t}(\mu_0-\nu)` and an exact solution of the
logarithmic diffusion (a Cauchy law of growing width).

Arrays are float64 torch tensors at the interface; the loop runs in numpy (thousands of steps on a few hundred
cells, where torch's per-call overhead would dominate).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np
import torch

from ._checks import check_int, check_positive

__all__ = ["Grid", "TRANSPORTS", "REACTIONS", "grid_flow", "kl_divergence", "grid_quantile", "kde",
           "fisher_rao_closed_form"]

#: the transport parts :func:`grid_flow` understands.
TRANSPORTS = ("kl", "l2", "kernel", "none")
#: the reaction parts :func:`grid_flow` understands.
REACTIONS = ("kl", "l2_fr", "kernel_fr", "none")


@dataclass(frozen=True, kw_only=True)
class Grid:
    """``n`` equal cells on ``[lo, hi]``."""

    lo: float
    hi: float
    n: int

    def __post_init__(self):
        check_int(self.n, "n", 3)
        if not (math.isfinite(self.lo) and math.isfinite(self.hi) and self.lo < self.hi):
            raise ValueError(f"need finite lo < hi, got lo={self.lo}, hi={self.hi}")

    @property
    def dx(self) -> float:
        return (self.hi - self.lo) / self.n

    @property
    def edges(self) -> torch.Tensor:
        """``[n + 1]`` cell faces."""
        return torch.linspace(self.lo, self.hi, self.n + 1, dtype=torch.float64)

    @property
    def centers(self) -> torch.Tensor:
        """``[n]`` cell midpoints."""
        e = self.edges
        return 0.5 * (e[1:] + e[:-1])

    def cell_average(self, cdf: Callable[[torch.Tensor], torch.Tensor], *, normalise: bool = True) -> torch.Tensor:
        r"""Cell averages :math:`(F(x_{i+1/2}) - F(x_{i-1/2}))/\Delta x` of a law with CDF ``cdf`` (exact mass per
        cell); ``normalise`` rescales to total mass 1 on the grid (the mass outside ``[lo, hi]`` is dropped).

        Args:
            cdf: the CDF :math:`F`, ``[n + 1]`` edges to ``[n + 1]`` values.
            normalise: rescale to mass 1 on the grid.

        Returns:
            ``[n]`` float64 densities at the cells.
        """
        c = cdf(self.edges)
        m = (c[1:] - c[:-1]).clamp_min(0.0)
        if normalise:
            m = m / m.sum()
        return m / self.dx


def _kernel_matrix(x: np.ndarray, sigma: float, dx: float) -> np.ndarray:
    d = x[:, None] - x[None, :]
    return np.exp(-0.5 * (d / sigma) ** 2) / (math.sqrt(2.0 * math.pi) * sigma) * dx


def grid_flow(mu0: torch.Tensor, nu: torch.Tensor, grid: Grid, times: Sequence[float], *, alpha: float = 1.0,
              beta: float = 0.0, transport: str = "kl", reaction: str = "none", sigma: float | None = None,
              cfl: float = 0.4, max_dt: float = 1e-2, boundary_flux: Callable[[float], tuple[float, float]] | None = None,
              max_steps: int = 5_000_000) -> torch.Tensor:
    r"""Solve :math:`\partial_t\mu = -\alpha\,\partial_x J(\mu) + \beta R(\mu)` on ``grid`` (module docstring).

    Args:
        mu0: ``[n]`` initial cell averages (positive for ``transport="kl"``).
        nu: ``[n]`` target cell averages (positive for ``transport="kl"``).
        grid: the :class:`Grid`.
        times: non-decreasing output times ``>= 0``.
        alpha: weight of the transport part.
        beta: weight of the reaction part.
        transport: one of :data:`TRANSPORTS`.
        reaction: one of :data:`REACTIONS`.
        sigma: bandwidth of the normalised Gaussian kernel (``"kernel"``, ``"kernel_fr"``).
        cfl: fraction of the explicit stability bound used as the step.
        max_dt: the largest step (accuracy of the reaction and of slow phases: the time error is of order
            ``max_dt**3``).
        boundary_flux: ``t -> (J_left, J_right)``, the flux through the two ends (``None``: zero, mass conserved).
        max_steps: cap on the number of steps.

    Returns:
        ``[len(times), n]`` float64 cell averages.
    """
    if transport not in TRANSPORTS:
        raise ValueError(f"transport must be one of {TRANSPORTS}, got {transport!r}")
    if reaction not in REACTIONS:
        raise ValueError(f"reaction must be one of {REACTIONS}, got {reaction!r}")
    if not isinstance(grid, Grid):
        raise TypeError(f"grid must be a Grid, got {type(grid).__name__}")
    alpha = float(alpha)
    beta = float(beta)
    if alpha < 0 or beta < 0 or not (math.isfinite(alpha) and math.isfinite(beta)):
        raise ValueError(f"alpha and beta must be finite and >= 0, got alpha={alpha}, beta={beta}")
    check_positive(cfl, "cfl")
    check_positive(max_dt, "max_dt")
    mu = torch.as_tensor(mu0, dtype=torch.float64).numpy().copy()
    nv = torch.as_tensor(nu, dtype=torch.float64).numpy().copy()
    if mu.shape != (grid.n,) or nv.shape != (grid.n,):
        raise ValueError(f"mu0 and nu must have shape ({grid.n},), got {mu.shape} and {nv.shape}")
    if transport == "kl" and alpha > 0 and (mu.min() <= 0 or nv.min() <= 0):
        raise ValueError("transport='kl' needs positive mu0 and nu on every cell (log(mu/nu) on the faces)")
    kmat = None
    if transport == "kernel" or reaction == "kernel_fr":
        sigma = check_positive(sigma, "sigma")
        kmat = _kernel_matrix(grid.centers.numpy(), sigma, grid.dx)
    times = [float(t) for t in times]
    if any(t < 0 or not math.isfinite(t) for t in times) or any(b < a for a, b in zip(times, times[1:])):
        raise ValueError(f"times must be finite, >= 0 and non-decreasing, got {times}")
    dx = grid.dx
    nu_face = 0.5 * (nv[1:] + nv[:-1])
    log_nu = np.log(nv) if transport == "kl" else None

    def rhs(m: np.ndarray, t: float):
        """Right-hand side and the stability bound of a step at ``m``."""
        out = np.zeros_like(m)
        bound = math.inf
        if alpha > 0 and transport != "none":
            face = np.zeros(m.size + 1)
            if transport == "kl":
                g = np.log(np.maximum(m, 1e-300)) - log_nu
                face[1:-1] = -nu_face * (g[1:] - g[:-1]) / dx
                diff = float(np.max(nu_face / np.minimum(m[1:], m[:-1])))
                bound = dx * dx / (2.0 * alpha * diff)
            else:
                f = m - nv if transport == "l2" else kmat @ (m - nv)
                mf = 0.5 * (m[1:] + m[:-1])
                v = -(f[1:] - f[:-1]) / dx
                face[1:-1] = mf * v
                if transport == "l2":
                    bound = dx * dx / (2.0 * alpha * max(float(mf.max()), 1e-300))
                else:
                    bound = dx / (alpha * max(float(np.abs(v).max()), 1e-300))
            if boundary_flux is not None:
                face[0], face[-1] = boundary_flux(t)
            out -= alpha * (face[1:] - face[:-1]) / dx
        if beta > 0 and reaction != "none":
            if reaction == "kl":
                out += beta * (nv - m)
            else:
                f = m - nv if reaction == "l2_fr" else kmat @ (m - nv)
                out -= beta * m * (f - float((f * m).sum() * dx) / max(float(m.sum() * dx), 1e-300))
                bound = min(bound, 1.0 / (beta * max(float(np.abs(f).max()), 1e-300)))
            bound = min(bound, 1.0 / beta)
        return out, bound

    res = np.empty((len(times), grid.n))
    t, steps = 0.0, 0
    for k, t_out in enumerate(times):
        while t < t_out:
            steps += 1
            if steps > max_steps:
                raise RuntimeError(f"grid_flow: more than max_steps={max_steps} steps")
            k1, bound = rhs(mu, t)
            dt = min(cfl * bound, max_dt, t_out - t)
            last = dt >= t_out - t
            u1 = mu + dt * k1
            u2 = 0.75 * mu + 0.25 * (u1 + dt * rhs(u1, t + dt)[0])
            mu = mu / 3.0 + 2.0 / 3.0 * (u2 + dt * rhs(u2, t + 0.5 * dt)[0])
            t = t_out if last else t + dt
            if not np.all(np.isfinite(mu)):
                raise FloatingPointError(f"grid_flow: non-finite density at t={t:.4g} (lower cfl={cfl})")
        res[k] = mu
    return torch.from_numpy(res)


def fisher_rao_closed_form(mu0: torch.Tensor, nu: torch.Tensor, t: float, beta: float = 1.0) -> torch.Tensor:
    r"""The Fisher-Rao flow of :math:`\mathrm{KL}(\nu|\mu)`: :math:`\mu_t = \nu + e^{-\beta t}(\mu_0 - \nu)`.

    Args:
        mu0: the start density ``[n]`` (or ``[..., n]``).
        nu: the target density, same shape.
        t: the time :math:`t \ge 0`.
        beta: the rate :math:`\beta`.

    Returns:
        :math:`\mu_t`, the shape of ``mu0``.
    """
    return nu + math.exp(-beta * t) * (mu0 - nu)


def kl_divergence(nu: torch.Tensor, mu: torch.Tensor, dx: float) -> torch.Tensor:
    r"""Inclusive :math:`\mathrm{KL}(\nu|\mu) = \sum_i\Delta x\,(\nu_i\log(\nu_i/\mu_i) - \nu_i + \mu_i)` on a grid
    (``[..., n]`` densities; ``0 log 0 = 0``; ``inf`` where :math:`\nu_i > 0 = \mu_i`).

    Args:
        nu: densities ``[..., n]``.
        mu: densities ``[..., n]``.
        dx: the cell width :math:`\Delta x`.

    Returns:
        ``[...]`` float64 tensor.
    """
    nu = torch.as_tensor(nu, dtype=torch.float64)
    mu = torch.as_tensor(mu, dtype=torch.float64)
    ratio = torch.where(nu > 0, nu * (torch.log(nu.clamp_min(1e-300)) - torch.log(mu)), torch.zeros_like(nu))
    return (dx * (ratio - nu + mu)).sum(-1)


def grid_quantile(mu: torch.Tensor, grid: Grid, levels: torch.Tensor) -> torch.Tensor:
    r"""Quantile function of the piecewise-constant density ``mu`` (normalised to mass 1) at ``levels``: the CDF
    is piecewise linear, inverted exactly.

    Args:
        mu: densities ``[n]`` on the cells of ``grid``.
        grid: the grid.
        levels: levels in :math:`[0, 1]`, any shape.

    Returns:
        float64 tensor of the shape of ``levels``.
    """
    mu = torch.as_tensor(mu, dtype=torch.float64).clamp_min(0.0)
    mass = mu * grid.dx
    cdf = torch.cat([mass.new_zeros(1), torch.cumsum(mass, 0)])
    cdf = cdf / cdf[-1]
    s = torch.as_tensor(levels, dtype=torch.float64)
    i = torch.searchsorted(cdf, s).clamp(1, grid.n) - 1
    width = cdf[i + 1] - cdf[i]
    frac = torch.where(width > 0, (s - cdf[i]) / torch.where(width > 0, width, torch.ones_like(width)),
                       torch.zeros_like(s))
    return grid.edges[i] + grid.dx * frac.clamp(0.0, 1.0)


def kde(x: torch.Tensor, grid: Grid, bandwidth: float, w: torch.Tensor | None = None) -> torch.Tensor:
    r"""Gaussian kernel density estimate :math:`\sum_i w_i(2\pi h^2)^{-1/2}e^{-|z-x_i|^2/(2h^2)}` at the cell
    centres, ``[n]`` float64 (``x``: ``[N]`` or ``[N, 1]``; ``w``: weights, ``None`` = uniform).

    Args:
        x: points ``[N]`` or ``[N, 1]``.
        grid: the grid whose cell centres are evaluated.
        bandwidth: :math:`h > 0`.
        w: weights ``[N]``; ``None``: uniform.

    Returns:
        ``[n]`` float64 tensor.

    Raises:
        ValueError: ``bandwidth`` is not positive.
    """
    h = check_positive(bandwidth, "bandwidth")
    x = torch.as_tensor(x, dtype=torch.float64).reshape(-1)
    w = torch.full_like(x, 1.0 / x.numel()) if w is None else torch.as_tensor(w, dtype=torch.float64).reshape(-1)
    z = grid.centers
    return (torch.exp(-0.5 * ((z[:, None] - x[None, :]) / h) ** 2) * w).sum(1) / (math.sqrt(2 * math.pi) * h)
