"""Particle flows: Euler steps against closed-form velocities, and the flow from a perturbed Dirac
against the analytic solution of mmdflow.analytic."""

import math

import pytest
import torch

from mmdflow import analytic, energies, flows, kernels


class Quadratic:
    """F(mu) = 1/2 int |x|^2 dmu: Wasserstein gradient x, so x_k = (1 - dt)^k x_0 under explicit Euler."""

    def value(self, x, w=None):
        return 0.5 * (x**2).sum(1).mean()

    def gradient(self, x, w=None):
        return x


# ----------------------------------------------------------------------------- config

def test_config_slow_start_schedule():
    cfg = flows.ParticleFlowConfig(tau=0.05, n_steps=10, slow_start=True)
    sizes = cfg.step_sizes()
    assert sizes[:7] == [1e-8, 1e-7, 1e-6, 1e-5, 1e-4, 1e-3, 1e-2]
    assert sizes[7] == pytest.approx(0.05 - 0.01111111, abs=1e-15)
    assert sizes[8:] == [0.05, 0.05]
    assert cfg.times()[8].item() == pytest.approx(0.05, abs=1e-15)
    assert flows.ParticleFlowConfig(tau=0.05, n_steps=3).step_sizes() == [0.05] * 3


def test_config_until_lands_on_the_final_time():
    for slow in (False, True):
        cfg = flows.ParticleFlowConfig.until(0.6, tau=0.05, slow_start=slow)
        assert cfg.times()[-1].item() == pytest.approx(0.6, abs=1e-12)
    assert flows.ParticleFlowConfig.until(0.6, tau=0.05).n_steps == 12
    assert flows.ParticleFlowConfig.until(0.6, tau=0.05, slow_start=True).n_steps == 19   # 7 + 1 + 11


def test_config_is_frozen():
    cfg = flows.ParticleFlowConfig(tau=0.1, n_steps=2)
    with pytest.raises(Exception):
        cfg.tau = 0.2


@pytest.mark.parametrize("kwargs,match", [
    (dict(tau=0.0, n_steps=3), "tau"),
    (dict(tau=-1.0, n_steps=3), "tau"),
    (dict(tau=0.1, n_steps=0), "n_steps=0"),
    (dict(tau=0.1, n_steps=2.5), "n_steps=2.5"),
    (dict(tau=0.1, n_steps=3, snapshot_every=0), "snapshot_every=0"),
    (dict(tau=0.1, n_steps=3, slow_start="yes"), "slow_start='yes'"),
])
def test_config_errors(kwargs, match):
    with pytest.raises((ValueError, TypeError), match=match):
        flows.ParticleFlowConfig(**kwargs)


def test_until_rejects_a_time_off_the_grid():
    with pytest.raises(ValueError, match="t_final=0.33"):
        flows.ParticleFlowConfig.until(0.33, tau=0.05)


# ----------------------------------------------------------------------------- perturbed Dirac

def test_perturbed_dirac_layout(gen):
    centers = torch.tensor([[-1.0, 0.0], [1.0, 0.0], [0.0, 2.0]], dtype=torch.float64)
    x = flows.perturbed_dirac(10, 2, centers=centers, scale=1e-3, generator=gen)
    assert x.shape == (10, 2) and x.dtype == torch.float64
    blocks = [x[:4], x[4:7], x[7:]]                         # 10 = 4 + 3 + 3
    for block, c in zip(blocks, centers):
        assert (block - c).abs().max().item() <= 0.5e-3
        assert (block - c).abs().max().item() > 0
    y = flows.perturbed_dirac(5, 3, generator=gen, dtype=torch.float32)
    assert y.dtype == torch.float32 and y.abs().max().item() <= 0.5e-9


def test_perturbed_dirac_generator():
    a = flows.perturbed_dirac(6, 2, generator=torch.Generator().manual_seed(1))
    b = flows.perturbed_dirac(6, 2, generator=torch.Generator().manual_seed(1))
    assert torch.equal(a, b)


@pytest.mark.parametrize("kwargs,match", [
    (dict(n=0, d=2), "n=0"),
    (dict(n=5, d=0), "d=0"),
    (dict(n=5, d=2, scale=-1.0), "scale=-1.0"),
    (dict(n=2, d=2, centers=torch.zeros(3, 2, dtype=torch.float64)), "n=2 < 3"),
    (dict(n=5, d=2, centers=torch.zeros(3, 3, dtype=torch.float64)), r"\(k, 2\)"),
])
def test_perturbed_dirac_errors(kwargs, match):
    with pytest.raises((ValueError, TypeError), match=match):
        flows.perturbed_dirac(**kwargs)


# ----------------------------------------------------------------------------- Euler steps

def test_euler_on_a_quadratic_is_geometric():
    x0 = torch.tensor([[1.0, -2.0], [0.5, 3.0]], dtype=torch.float64)
    cfg = flows.ParticleFlowConfig(tau=0.1, n_steps=7, snapshot_every=3)
    traj = flows.particle_flow(Quadratic(), x0, cfg)
    torch.testing.assert_close(traj.times, torch.tensor([0.0, 0.3, 0.6, 0.7], dtype=torch.float64))
    for t, pos in zip(traj.times, traj.positions):
        k = round(t.item() / 0.1)
        torch.testing.assert_close(pos, 0.9**k * x0)
    torch.testing.assert_close(traj.energies, torch.tensor([Quadratic().value(p) for p in traj.positions],
                                                           dtype=torch.float64))
    assert traj.info["scheme"] == "particle_flow" and traj.info["config"]["n_steps"] == 7
    assert traj.wall_time >= 0 and traj.weights is None


def test_two_particles_repel_at_unit_speed():
    r"""r = 1, particles at +-a e1: each moves away from the other with speed (1/2) * 1 (the 1/N weight)."""
    a, dt, k = 0.3, 0.01, 5
    x0 = torch.tensor([[a, 0.0], [-a, 0.0]], dtype=torch.float64)
    traj = flows.particle_flow(energies.InteractionEnergy(kernels.Riesz(1.0)), x0,
                               flows.ParticleFlowConfig(tau=dt, n_steps=k))
    expected = torch.tensor([[a + k * dt / 2, 0.0], [-a - k * dt / 2, 0.0]], dtype=torch.float64)
    torch.testing.assert_close(traj.positions[-1], expected)


def test_discrepancy_flow_moves_towards_the_target():
    r"""One particle, one target point, r = 1: the velocity is the unit vector towards the target."""
    target = torch.tensor([[1.0, 1.0]], dtype=torch.float64)
    x0 = torch.tensor([[-2.0, -3.0]], dtype=torch.float64)
    energy = energies.DiscrepancyEnergy(kernels.Riesz(1.0), target)
    traj = flows.particle_flow(energy, x0, flows.ParticleFlowConfig(tau=0.5, n_steps=4))
    direction = (target - x0) / (target - x0).norm()
    torch.testing.assert_close(traj.positions[-1], x0 + 2.0 * direction)
    # D_K^2 of two Diracs is their distance (K = -|x-y|, (1/2)(2|x-y|)); it decreases by 2 here
    assert traj.energies[0].item() == pytest.approx(5.0) and traj.energies[-1].item() == pytest.approx(3.0)


def test_keeps_dtype_and_callback_sees_every_step(gen):
    x0 = flows.perturbed_dirac(20, 2, generator=gen, dtype=torch.float32, scale=1e-3)
    seen = []
    traj = flows.particle_flow(energies.InteractionEnergy(kernels.Riesz(1.0)), x0,
                               flows.ParticleFlowConfig(tau=0.05, n_steps=4, snapshot_every=2),
                               callback=lambda k, t, x: seen.append((k, round(t, 10))))
    assert traj.positions.dtype == torch.float32 and traj.positions.shape == (3, 20, 2)
    assert seen == [(1, 0.05), (2, 0.1), (3, 0.15), (4, 0.2)]


def test_divergence_is_reported():
    class Exploding(Quadratic):
        def gradient(self, x, w=None):
            return x / 0.0

    with pytest.raises(FloatingPointError, match="step 1"):
        flows.particle_flow(Exploding(), torch.ones(3, 2, dtype=torch.float64),
                            flows.ParticleFlowConfig(tau=0.1, n_steps=2))


def test_bad_arguments():
    x0 = torch.zeros(3, 2, dtype=torch.float64)
    with pytest.raises(TypeError, match="ParticleFlowConfig"):
        flows.particle_flow(Quadratic(), x0, {"tau": 0.1})
    with pytest.raises(TypeError, match="gradient"):
        flows.particle_flow(object(), x0, flows.ParticleFlowConfig(tau=0.1, n_steps=1))


# ----------------------------------------------------------------------------- from a Dirac

def test_unperturbed_dirac_does_not_move():
    x0 = torch.zeros(50, 2, dtype=torch.float64)
    traj = flows.particle_flow(energies.InteractionEnergy(kernels.Riesz(1.0)), x0,
                               flows.ParticleFlowConfig(tau=0.1, n_steps=3))
    assert bool((traj.positions[-1] == 0).all())


def test_flow_from_perturbed_dirac_fills_the_analytic_disc(gen):
    """d=2, r=1, 300 particles, tau=0.05 up to t=0.6: inside R(t) = pi t / 4 up to a 10% rim smear
    (explicit Euler from a square-shaped 1e-9 cloud), filling it, with the mean radius of gamma(t)."""
    t, n = 0.6, 300
    x0 = flows.perturbed_dirac(n, 2, generator=gen)
    traj = flows.particle_flow(energies.InteractionEnergy(kernels.Riesz(1.0)), x0,
                               flows.ParticleFlowConfig.until(t, tau=0.05, snapshot_every=4))
    rho = traj.positions[-1].norm(dim=1)
    big = analytic.support_radius(t, 2, 1.0)
    assert big == pytest.approx(math.pi * t / 4)
    assert rho.max().item() < 1.1 * big
    assert rho.max().item() > 0.9 * big
    # mean radius of gamma(t): R(t) E sqrt(B), B ~ Beta(1, 1/2): int_0^1 sqrt(b) (1-b)^(-1/2) db / 2 = pi/4
    assert rho.mean().item() == pytest.approx(math.pi / 4 * big, rel=0.03)
    # the interaction energy decreases along the flow (it is a gradient flow)
    assert bool((traj.energies[1:] < traj.energies[:-1]).all())
    # every snapshot stays within the analytic radius of its own time (plus the margin)
    for s, pos in zip(traj.times[1:], traj.positions[1:]):
        assert pos.norm(dim=1).max().item() < 1.1 * analytic.support_radius(float(s), 2, 1.0)


def test_slow_start_is_needed_for_small_r(gen):
    """r = 0.5: a first step of 0.05 from the 1e-9 cloud throws particles ~10^3 away; the slow start does not."""
    x0 = flows.perturbed_dirac(100, 2, generator=gen)
    energy = energies.InteractionEnergy(kernels.Riesz(0.5))
    fast = flows.particle_flow(energy, x0, flows.ParticleFlowConfig(tau=0.05, n_steps=1))
    slow = flows.particle_flow(energy, x0, flows.ParticleFlowConfig.until(0.3, tau=0.05, slow_start=True))
    assert fast.positions[-1].norm(dim=1).max().item() > 100
    big = analytic.support_radius(0.3, 2, 0.5)
    assert 0.9 * big < slow.positions[-1].norm(dim=1).max().item() < 1.1 * big


def test_record_energy_off_gives_nan():
    traj = flows.particle_flow(Quadratic(), torch.ones(2, 2, dtype=torch.float64),
                               flows.ParticleFlowConfig(tau=0.1, n_steps=2), record_energy=False)
    assert bool(torch.isnan(traj.energies).all()) and traj.positions.shape == (3, 2, 2)


def test_chapter_plots_render(gen):
    """Smoke test of mmdflow.plots.dirac: every helper draws (mathtext included) without error."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    from mmdflow import metrics, plots
    from mmdflow.plots import dirac as dplots

    fig, axes = plt.subplots(2, 4, figsize=(16, 6))
    dplots.plot_prox_densities(2, [0.5, 1.0], axes[0, 0], ymax=3)
    dplots.plot_radius_cdfs({0.5: analytic.sample_prox(500, 3, 0.5, gen),
                             1.0: analytic.sample_prox(500, 3, 1.0, gen)}, 3, axes[0, 1])
    q = torch.linspace(0, 1.5, 4, dtype=torch.float64)
    dplots.plot_frostman_profiles({"d = 2": (q, q**2, 0.01 * torch.ones(4))}, axes[0, 2])
    dplots.plot_support_radius(0.4, 2, 1.5, [0.2, 0.1], axes[0, 3])
    dplots.plot_jko_errors({0.5: ([0.2, 0.1], [0.1, 0.06])}, axes[1, 0])
    traj = flows.particle_flow(energies.InteractionEnergy(kernels.Riesz(1.0)), flows.perturbed_dirac(50, 2, generator=gen),
                               flows.ParticleFlowConfig(tau=0.1, n_steps=4, snapshot_every=2))
    plots.support_circle(1.0, jko_tau=0.1)(axes[1, 1], 0.4)
    plots.snapshot_grid({"a": traj, "b": traj}, [0.0, 0.4], overlay=plots.support_circle(1.0))
    err = metrics.flow_errors(traj, 1.0, n_repeats=1, generator=gen)
    dplots.plot_flow_errors({"r = 1": (err.times, err.d2, err.noise)}, axes[1, 2])
    dplots.plot_mean_radius({(2, 1.0): (err.times, err.radius_ratio)}, axes[1, 3])
    fig.canvas.draw()
    plt.close(fig)
