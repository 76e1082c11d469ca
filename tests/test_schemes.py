"""The scheme registry and the one runner interface; also the recipe "add a scheme" of CONTRIBUTING.md.

A Heun (explicit trapezoidal) particle flow is defined in this file, registered, and run through the interface with
checkpoints, against the same steps written out with the dense reference gradients.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

import pytest
import torch

from mmdflow import wfr
from mmdflow._checks import check_int, check_positive
from mmdflow.energies import DiscrepancyEnergy, check_energy
from mmdflow.kernels import Gaussian, InverseMultiquadric, Riesz
from mmdflow.schemes import (SCHEMES, Scheme, get_scheme, label, register_scheme, scheme_names, short_label,
                             unregister_scheme)
from mmdflow.trajectory import Checkpoint, ParticleState, digest, energy_fingerprint, run_steps


# ------------------------------------------------------------------------------------------------
# the recipe: a new scheme in one file and one registration
# ------------------------------------------------------------------------------------------------
@dataclass(frozen=True, kw_only=True)
class HeunConfig:
    """Time step ``tau`` and number of steps of the Heun particle flow."""

    tau: float
    n_steps: int

    def __post_init__(self):
        object.__setattr__(self, "tau", check_positive(self.tau, "tau"))
        check_int(self.n_steps, "n_steps", 1)


class _HeunStep:
    r""":math:`x \leftarrow x - \frac\tau2\big(g(x) + g(x - \tau g(x))\big)`, :math:`g` the Wasserstein gradient."""

    def __init__(self, energy, tau):
        self.energy, self.tau = energy, tau

    def __call__(self, k, state):
        with torch.no_grad():
            g1 = self.energy.gradient(state.x)
            g2 = self.energy.gradient(state.x - self.tau * g1)
            return ParticleState(state.x - 0.5 * self.tau * (g1 + g2)), None


def run_heun(energy, x0, config, *, generator=None, checkpoint_dir=None, progress=True, callback=None):
    """The runner: the one interface of :mod:`mmdflow.schemes`."""
    check_energy(energy, x0, ("gradient", "value"), "Heun")
    ckpt = None if checkpoint_dir is None else Checkpoint(
        Path(checkpoint_dir), {"scheme": "heun", "config": asdict(config), "energy": energy_fingerprint(energy),
                               "x0": digest(x0), "dtype": str(x0.dtype), "device": x0.device.type})
    return run_steps(_HeunStep(energy, config.tau), ParticleState(x0.detach().clone()),
                     times=[k * config.tau for k in range(config.n_steps + 1)], snapshot_every=1,
                     measure=lambda s: energy.value(s.x), checkpoint=ckpt, progress=progress, callback=callback,
                     name="heun")


@pytest.fixture
def heun():
    scheme = register_scheme(Scheme("heun", "Heun particle flow", "Heun", "particle", HeunConfig, run_heun))
    yield scheme
    unregister_scheme("heun")


def _problem(kernel=Riesz(1.0), d=2, n=30, m=40, seed=0):
    g = torch.Generator().manual_seed(seed)
    target = torch.randn(m, d, generator=g, dtype=torch.float64)
    x0 = 0.3 * torch.randn(n, d, generator=g, dtype=torch.float64) + 1.0
    return DiscrepancyEnergy(kernel, target), x0, target


def _reference_gradient(x, target, kernel):
    n, m = x.shape[0], target.shape[0]
    return (kernel.grad(x, x).sum(1) / n) - (kernel.grad(x, target).sum(1) / m)


def test_add_a_scheme_and_run_it_through_the_interface(heun, tmp_path):
    energy, x0, target = _problem()
    scheme = get_scheme("heun")
    config = scheme.config(tau=0.2, n_steps=4)
    traj = scheme.run(energy, x0, config, progress=False)
    x = x0.clone()
    kernel = energy.kernel
    for _ in range(4):                      # the same steps, written out with the dense reference gradients
        g1 = _reference_gradient(x, target, kernel)
        g2 = _reference_gradient(x - 0.2 * g1, target, kernel)
        x = x - 0.1 * (g1 + g2)
    torch.testing.assert_close(traj.positions[-1], x)
    torch.testing.assert_close(traj.times, torch.tensor([0.0, 0.2, 0.4, 0.6, 0.8], dtype=torch.float64))
    assert traj.energies[-1] < traj.energies[0]
    # checkpoints: a run interrupted after two steps resumes to the same end
    def stop(step, t, state):
        if step == 2:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        scheme.run(energy, x0, config, checkpoint_dir=tmp_path, progress=False, callback=stop)
    resumed = scheme.run(energy, x0, config, checkpoint_dir=tmp_path, progress=False)
    torch.testing.assert_close(resumed.positions, traj.positions, rtol=0, atol=0)
    with pytest.raises(ValueError, match="already registered"):
        register_scheme(Scheme("heun", "x", "x", "particle", HeunConfig, run_heun))
    assert "heun" in scheme_names("particle") and "heun" not in scheme_names("neural")
    assert (label("heun"), short_label("heun")) == ("Heun particle flow", "Heun")


#: small settings of every registered scheme (its config factory's keyword arguments).
SETTINGS = {
    "particle_flow": dict(tau=0.1, n_steps=3, snapshot_every=1),
    "neural_backward": dict(tau=0.1, n_steps=2, iterations=3, batch_size=10, width=8, snapshot_every=1),
    "neural_forward": dict(tau=0.1, n_steps=2, iterations=3, batch_size=10, width=8, snapshot_every=1),
    "mmd": dict(tau=0.1, n_steps=3, snapshot_every=1),
    "mmd_noise": dict(tau=0.1, n_steps=3, snapshot_every=1, noise=wfr.NoiseSchedule(beta0=0.1)),
    "ift": dict(tau=0.1, n_steps=3, snapshot_every=1, eta=0.5),
    "wfr": dict(tau=0.1, n_steps=3, snapshot_every=1),
}


@pytest.mark.parametrize("name", list(SETTINGS))
def test_every_registered_scheme_has_the_one_interface(name):
    assert set(SCHEMES) >= set(SETTINGS)
    scheme = get_scheme(name)
    energy, x0, _ = _problem(Gaussian(1.0) if name in ("mmd", "mmd_noise", "ift", "wfr") else Riesz(1.0))
    config = scheme.config(**SETTINGS[name])
    traj = scheme.run(energy, x0, config, generator=torch.Generator().manual_seed(1), checkpoint_dir=None,
                      progress=False, callback=None)
    n_steps, tau = SETTINGS[name]["n_steps"], SETTINGS[name]["tau"]
    torch.testing.assert_close(traj.times, tau * torch.arange(n_steps + 1, dtype=torch.float64))   # physical times
    w = None if traj.weights is None else traj.weights[-1]
    last = energy.value(traj.positions[-1].to(x0), None if w is None else w.to(x0))
    torch.testing.assert_close(traj.energies[-1].to(torch.float64), last.to(torch.float64), rtol=1e-5, atol=1e-7)


def test_wfr_flow_takes_the_energy_and_matches_run_wfr():
    energy, x0, target = _problem(Gaussian(0.8))
    for method in ("mmd", "ift", "wfr"):
        kw = dict(n_steps=3, tau=0.1, snapshot_every=1)
        ref = wfr.run_wfr(method, x0, target, wfr.WFRConfig(sigma=0.8, **kw), test_target=target,
                          generator=torch.Generator().manual_seed(0), progress=False)
        new = wfr.wfr_flow(energy, x0, wfr.WFRConfig(method=method, **kw), generator=torch.Generator().manual_seed(0),
                           progress=False)
        torch.testing.assert_close(new.positions, ref.positions, rtol=0, atol=0)
        torch.testing.assert_close(new.weights, ref.weights, rtol=0, atol=0)
        # run_wfr records the textbook MMD^2 against the held-out sample, wfr_flow the energy D_K^2 = MMD^2 / 2
        torch.testing.assert_close(new.energies, 0.5 * ref.energies)
    with pytest.raises(ValueError, match="sigma"):
        wfr.wfr_flow(energy, x0, wfr.WFRConfig(method="ift", sigma=0.8, n_steps=1, tau=0.1))
    with pytest.raises(ValueError, match="method"):
        wfr.wfr_flow(energy, x0, wfr.WFRConfig(n_steps=1, tau=0.1))


def test_wfr_flow_any_kernel_checkpoints_and_resumes(tmp_path):
    energy, x0, _ = _problem(InverseMultiquadric(0.7))
    config = wfr.WFRConfig(method="ift", n_steps=4, tau=0.1, snapshot_every=1, batch_size=20)
    full = wfr.wfr_flow(energy, x0, config, generator=torch.Generator().manual_seed(2), progress=False)

    def stop(step, t, state):
        if step == 2:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        wfr.wfr_flow(energy, x0, config, generator=torch.Generator().manual_seed(2), checkpoint_dir=tmp_path,
                     progress=False, callback=stop)
    resumed = wfr.wfr_flow(energy, x0, config, generator=torch.Generator().manual_seed(2), checkpoint_dir=tmp_path,
                           progress=False)
    torch.testing.assert_close(resumed.positions, full.positions, rtol=0, atol=0)
    torch.testing.assert_close(resumed.info["loss"], full.info["loss"], rtol=0, atol=0)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=["f32", "f64"])
@pytest.mark.parametrize("name", list(SETTINGS))
def test_every_registered_scheme_keeps_dtype_calls_back_and_names_a_non_finite_step(name, dtype):
    """The checks of tests/test_runners.py, through the registry: no adapter per runner, one step size."""
    scheme = get_scheme(name)
    energy, x0, _ = _problem(Gaussian(1.0) if name in ("mmd", "mmd_noise", "ift", "wfr") else Riesz(1.0))
    x0 = x0.to(dtype)
    energy = DiscrepancyEnergy(energy.kernel, energy.target.to(dtype))
    settings = dict(SETTINGS[name], n_steps=4, snapshot_every=2)
    if name.startswith("neural"):
        settings["dtype"] = "float64" if dtype == torch.float64 else "float32"
    config = scheme.config(**settings)
    seen = []
    traj = scheme.run(energy, x0, config, generator=torch.Generator().manual_seed(0), progress=False,
                      callback=lambda step, t, state: seen.append((step, round(t, 9))))
    tau = settings["tau"]
    assert traj.positions.dtype == dtype and traj.positions.shape == (3,) + tuple(x0.shape)
    assert seen == [(k, pytest.approx(k * tau)) for k in (1, 2, 3, 4)]
    torch.testing.assert_close(traj.times, torch.tensor([0.0, 2, 4], dtype=torch.float64) * tau)
    assert [m["step"] for m in traj.info["step_metrics"]] == [1, 2, 3, 4]

    def poison(step, t, state):
        if step == 2:
            state.x[0, 0] = float("nan")

    with pytest.raises((FloatingPointError, ValueError), match="step 3|non-finite|nan"):
        scheme.run(energy, x0, config, generator=torch.Generator().manual_seed(0), progress=False, callback=poison)


def test_a_scheme_record_is_validated():
    with pytest.raises(ValueError, match="family must be one of .* got 'implicit'"):
        Scheme("x", "x", "x", "implicit", HeunConfig, run_heun)
    with pytest.raises(ValueError, match="unknown scheme family \\['implicit'\\]"):
        scheme_names("implicit")
    with pytest.raises(ValueError, match="unknown scheme 'nope'"):
        unregister_scheme("nope")
    assert scheme_names("neural", "particle") == ["neural_backward", "neural_forward", "particle_flow"]
