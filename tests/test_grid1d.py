"""The finite-volume grid solver (mmdflow.grid1d) against exact solutions: the Cauchy solution of the logarithmic
diffusion (the Wasserstein flow of the inclusive KL with a constant target), the closed-form Fisher-Rao flow, mass
conservation, the steady state, and the sigma -> 0 limit of the kernel flow."""

import math

import pytest
import torch

from mmdflow import analytic1d as a1
from mmdflow import grid1d

F64 = torch.float64
C = 1.0 / (2.0 * math.pi)


def _cauchy_error(n):
    g = grid1d.Grid(lo=-3.0, hi=3.0, n=n)
    cdf = lambda t: (lambda e: torch.atan(e / t) / math.pi)            # noqa: E731
    flux = lambda t: (2 * C * -3.0 / (9 + (t + 1) ** 2), 2 * C * 3.0 / (9 + (t + 1) ** 2))   # noqa: E731
    out = grid1d.grid_flow(g.cell_average(cdf(1.0), normalise=False), torch.full((n,), C, dtype=F64), g, [1.0],
                           transport="kl", boundary_flux=flux)
    return float((out[0] - g.cell_average(cdf(2.0), normalise=False)).abs().max())


def test_wasserstein_kl_flow_matches_the_cauchy_solution_at_second_order():
    e1, e2 = _cauchy_error(40), _cauchy_error(80)
    assert e2 < 1e-4
    assert 3.5 < e1 / e2 < 4.5


def _setting(n=120):
    g = grid1d.Grid(lo=-5.0, hi=5.0, n=n)
    nu = g.cell_average(a1.Mixture((a1.Gaussian(-1, 0.4), a1.Gaussian(1.2, 0.5)), (0.4, 0.6)).cdf)
    mu0 = g.cell_average(a1.Gaussian(0.0, 1.5).cdf)
    return g, nu, mu0


def test_fisher_rao_flow_matches_closed_form():
    g, nu, mu0 = _setting()
    out = grid1d.grid_flow(mu0, nu, g, [0.5, 2.0], alpha=0.0, beta=1.0, transport="none", reaction="kl")
    for k, t in enumerate([0.5, 2.0]):
        assert float((out[k] - grid1d.fisher_rao_closed_form(mu0, nu, t)).abs().max()) < 1e-7


@pytest.mark.parametrize("transport,reaction", [("kl", "none"), ("l2", "none"), ("kernel", "none"), ("kl", "kl"),
                                                ("l2", "l2_fr"), ("kernel", "kernel_fr")])
def test_mass_is_conserved(transport, reaction):
    g, nu, mu0 = _setting(80)
    out = grid1d.grid_flow(mu0, nu, g, [0.5], alpha=1.0, beta=1.0, transport=transport, reaction=reaction, sigma=0.3)
    assert abs(float(out[0].sum() * g.dx) - 1.0) < 1e-12
    assert float(out.min()) > 0


def test_target_is_a_steady_state_and_kl_decreases():
    g, nu, mu0 = _setting(80)
    assert float((grid1d.grid_flow(nu, nu, g, [1.0], transport="kl")[0] - nu).abs().max()) < 1e-13
    out = grid1d.grid_flow(mu0, nu, g, [0.25, 0.5, 1.0], transport="kl")
    kl = grid1d.kl_divergence(nu, out, g.dx)
    assert bool((kl.diff() < 0).all()) and float(grid1d.kl_divergence(nu, mu0, g.dx)) > float(kl[0])


def test_kernel_flow_tends_to_the_l2_flow_at_second_order_in_sigma():
    """The sigma -> 0 limit derived in chapter 06b: div(mu grad K_sigma(mu - nu)) -> div(mu grad(mu - nu))."""
    g, nu, mu0 = _setting(200)
    limit = grid1d.grid_flow(mu0, nu, g, [1.0], transport="l2")[0]
    s = (torch.arange(2000, dtype=F64) + 0.5) / 2000
    err = []
    for sigma in (0.4, 0.2):
        k = grid1d.grid_flow(mu0, nu, g, [1.0], transport="kernel", sigma=sigma)[0]
        err.append(float(((grid1d.grid_quantile(k, g, s) - grid1d.grid_quantile(limit, g, s)) ** 2).mean().sqrt()))
    assert err[0] / err[1] > 3.0


def test_grid_quantile_inverts_a_piecewise_linear_cdf():
    g = grid1d.Grid(lo=0.0, hi=1.0, n=10)
    mu = torch.ones(10, dtype=F64)
    s = torch.tensor([0.05, 0.5, 0.93], dtype=F64)
    assert float((grid1d.grid_quantile(mu, g, s) - s).abs().max()) < 1e-14


def test_kde_integrates_to_one_and_bad_names_raise():
    g = grid1d.Grid(lo=-6.0, hi=6.0, n=600)
    dens = grid1d.kde(torch.randn(50, 1, generator=torch.Generator().manual_seed(0), dtype=F64), g, 0.3)
    assert abs(float(dens.sum() * g.dx) - 1.0) < 1e-6
    with pytest.raises(ValueError, match="transport"):
        grid1d.grid_flow(dens, dens, g, [1.0], transport="bogus")
    with pytest.raises(ValueError, match="positive"):
        grid1d.grid_flow(torch.zeros(600, dtype=F64), dens, g, [1.0], transport="kl")
