"""The scheme registry and the one runner interface; also the recipe "add a scheme" of CONTRIBUTING.md.

A Heun (explicit trapezoidal) particle flow is defined in this file, registered, and run through the interface with
checkpoints, against the same steps written out with the dense reference gradients.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

import pytest
import torch

from mmdflow import energies, wfr
from mmdflow.data import mixtures
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


def test_wfr_flow_takes_the_energy_and_matches_its_steps_written_out():
    energy, x0, target = _problem(Gaussian(0.8))
    k, n = Gaussian(0.8), x0.shape[0]
    for method in ("mmd", "ift", "wfr"):
        kw = dict(n_steps=3, tau=0.1, snapshot_every=1)
        new = wfr.wfr_flow(energy, x0, wfr.WFRConfig(method=method, **kw), generator=torch.Generator().manual_seed(0),
                           progress=False)
        x, w = x0, torch.full((n,), 1.0 / n, dtype=x0.dtype)
        for step in range(1, 4):                        # position step, then the weight step at the new positions
            x = wfr.position_step(x, target, k, 0.1, w)
            if method == "ift":
                w, _ = wfr.mmd_prox_weights(x, w, target, k, 1.0)
            elif method == "wfr":
                w = wfr.kl_weight_step(x, w, target, k, 1.0)
            torch.testing.assert_close(new.positions[step], x, rtol=0, atol=1e-12)
            torch.testing.assert_close(new.weights[step], w, rtol=0, atol=1e-12)
        # info["loss"] is the textbook MMD^2 against the energy's target, energies the energy D_K^2 = MMD^2 / 2
        torch.testing.assert_close(new.info["loss"][-1], energies.mmd2(x, target, k, w, backend="dense").double())
        torch.testing.assert_close(new.energies, 0.5 * new.info["loss"])
        assert new.times.tolist() == pytest.approx([0.0, 0.1, 0.2, 0.3]) and new.info["h"] == 0.1
    with pytest.raises(TypeError, match="sigma"):                  # the kernel is the energy's, not the config's
        wfr.WFRConfig(method="ift", sigma=0.8, n_steps=1, tau=0.1)
    with pytest.raises(ValueError, match="method"):
        wfr.wfr_flow(energy, x0, wfr.WFRConfig(n_steps=1, tau=0.1))


def test_wfr_flow_with_a_sampler_steps_on_fresh_batches_and_scores_on_the_energy_target():
    """sampler= draws the training batch of every iteration from the generator; the energy's target (a held-out
    sample) only scores the run: the same steps written out with the same draws."""
    energy, x0, held_out = _problem(Gaussian(0.8))
    k, n = Gaussian(0.8), x0.shape[0]
    sample = mixtures.gaussian_2d()
    cfg = wfr.WFRConfig(method="ift", n_steps=3, tau=0.1, snapshot_every=1, batch_size=15)
    run = wfr.wfr_flow(energy, x0, cfg, sampler=sample, generator=torch.Generator().manual_seed(4), progress=False)
    g = torch.Generator().manual_seed(4)
    x, w = x0, torch.full((n,), 1.0 / n, dtype=x0.dtype)
    for step in range(1, 4):
        y = sample(15, g).to(x0)
        x = wfr.position_step(x, y, k, 0.1, w)
        w, _ = wfr.mmd_prox_weights(x, w, y, k, 1.0)
        torch.testing.assert_close(run.positions[step], x, rtol=0, atol=1e-12)
        torch.testing.assert_close(run.weights[step], w, rtol=0, atol=1e-12)
    torch.testing.assert_close(run.info["loss"][-1], energies.mmd2(x, held_out, k, w, backend="dense").double())
    with pytest.raises(TypeError, match="sampler must be a callable"):
        wfr.wfr_flow(energy, x0, cfg, sampler=held_out)
    with pytest.raises(ValueError, match=r"sampler\(15, generator\) must return a tensor of shape \(15, 2\)"):
        wfr.wfr_flow(energy, x0, cfg, sampler=lambda m, gen: torch.zeros(m, 3, dtype=x0.dtype), progress=False)


def test_wfr_flow_scores_a_weighted_target_with_its_weights():
    """Non-uniform target weights: info["loss"] is MMD^2 against the weighted target (before: the weights were
    ignored by the loss, which averaged the target points uniformly), and twice the energy."""
    _, x0, target = _problem(Gaussian(0.8))
    v = torch.softmax(torch.randn(target.shape[0], generator=torch.Generator().manual_seed(5), dtype=target.dtype), 0)
    energy = DiscrepancyEnergy(Gaussian(0.8), target, v)
    run = wfr.wfr_flow(energy, x0, wfr.WFRConfig(method="ift", n_steps=2, tau=0.1, snapshot_every=1), progress=False)
    ref = energies.mmd2(run.positions[-1], target, Gaussian(0.8), run.weights[-1], v, backend="dense")
    torch.testing.assert_close(run.info["loss"][-1], ref.double())
    torch.testing.assert_close(run.energies, 0.5 * run.info["loss"])


def test_wfr_methods_are_the_weighted_family_of_the_registry():
    assert wfr.METHODS == tuple(scheme_names("weighted"))


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


def test_require_and_check_names_refuse_other_families_and_unknown_names():
    from mmdflow.schemes import check_names, require
    assert require("ift", "weighted").name == "ift" and require("ift").family == "weighted"
    with pytest.raises(ValueError, match=r"run: scheme 'ift' is of the family 'weighted', not one of \('neural', "
                                         r"'particle'\)"):
        require("ift", "neural", "particle", where="run")
    with pytest.raises(ValueError, match="unknown scheme family"):
        require("ift", "implicit")
    assert check_names(("mmd", "wfr"), "f.json", "weighted") == ["mmd", "wfr"]
    with pytest.raises(ValueError, match=r"f\.json: unknown scheme name\(s\) \['backward', 'mmd'\]"):
        check_names(["backward", "mmd", "particle_flow"], "f.json", "neural", "particle")
    # the config fields an experiment may pass: a dataclass's fields, what a partial leaves open
    assert {"tau", "n_steps", "batch1"} <= get_scheme("neural_forward").config_fields
    assert "batch1" not in get_scheme("neural_backward").config_fields
    assert {"tau", "eta", "method"} <= get_scheme("ift").config_fields
