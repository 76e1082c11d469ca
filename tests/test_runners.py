"""Every registered scheme, in every dtype and on every device present, through the one step loop.

The schemes are those of the registry (:mod:`mmdflow.schemes`), each run through its one interface; each must keep the
start's dtype and device in its trajectory, record its snapshots at the stated times, call the callback with
``(step, t, state)`` after every step and report non-finite particles with the step that produced them.
"""

import pytest
import torch

from mmdflow import energies, wfr
from mmdflow.data import mixtures
from mmdflow.kernels import Gaussian, Riesz
from mmdflow.schemes import get_scheme, scheme_names
from mmdflow.trajectory import ParticleState, Trajectory

DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
DTYPES = [torch.float32, torch.float64]

#: the config fields of a small run, by family (four steps of 0.1, a snapshot every second step).
FAMILY_SETTINGS = {
    "particle": dict(tau=0.1, n_steps=4, snapshot_every=2),
    "neural": dict(tau=0.1, n_steps=4, iterations=3, width=8, batch_size=8, snapshot_every=2),
    "weighted": dict(tau=0.1, n_steps=4, snapshot_every=2),
}
#: what a scheme needs beyond its family's fields.
EXTRA = {"neural_forward": dict(batch1=8), "mmd_noise": dict(noise=wfr.NoiseSchedule(beta0=0.1))}


def _energy(family, x0):
    """Each family on its kind of functional: the interaction energy for the neural schemes (they start at a Dirac
    in the paper), a discrepancy for the others (weighted schemes: a Gaussian kernel, as in Gladin et al.)."""
    if family == "neural":
        return energies.InteractionEnergy(Riesz(1.0))
    if family == "weighted":
        target = mixtures.gaussian_2d().sample(16, torch.Generator().manual_seed(1), dtype=x0.dtype,
                                               device=x0.device)
        return energies.DiscrepancyEnergy(Gaussian(1.0), target)
    return energies.DiscrepancyEnergy(Riesz(1.0), torch.zeros(5, 2, dtype=x0.dtype, device=x0.device))


def run_scheme(name, x0, callback):
    """The registered scheme ``name`` through its one interface ``run(energy, x0, config, *, generator, ...)``."""
    scheme = get_scheme(name)
    fields = dict(FAMILY_SETTINGS[scheme.family], **EXTRA.get(name, {}))
    if scheme.family == "neural":
        fields["dtype"] = "float64" if x0.dtype == torch.float64 else "float32"
    gen = torch.Generator(device=x0.device if scheme.family == "neural" else "cpu").manual_seed(2)
    return scheme.run(_energy(scheme.family, x0), x0, scheme.config(**fields), generator=gen, progress=False,
                      callback=callback)


RUNNERS = scheme_names()


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
@pytest.mark.parametrize("runner", list(RUNNERS))
def test_runner_keeps_dtype_device_and_reports_every_step(runner, dtype, device):
    x0 = (0.3 * torch.randn(12, 2, generator=torch.Generator().manual_seed(0), dtype=torch.float64)).to(dtype=dtype,
                                                                                                     device=device)
    seen = []

    def callback(step, t, state):
        assert isinstance(state, ParticleState) and state.x.shape == (12, 2)
        seen.append((step, round(t, 9)))

    traj = run_scheme(runner, x0, callback)
    assert isinstance(traj, Trajectory)
    assert traj.positions.dtype == dtype and traj.positions.device.type == device
    assert traj.positions.shape == (3, 12, 2)
    assert [s for s, _ in seen] == [1, 2, 3, 4]
    step_size = 0.1                                           # every runner has physical times t_k = k tau
    torch.testing.assert_close(traj.times, torch.tensor([0.0, 2, 4], dtype=torch.float64) * step_size)
    assert [t for _, t in seen] == pytest.approx([step_size * k for k in (1, 2, 3, 4)])
    assert torch.equal(traj.positions[0].cpu(), x0.cpu())
    assert [m["step"] for m in traj.info["step_metrics"]] == [1, 2, 3, 4]
    if get_scheme(runner).family == "weighted":
        assert traj.weights.dtype == dtype and traj.weights.shape == (3, 12)
        torch.testing.assert_close(traj.weights.sum(1), torch.ones(3, dtype=dtype, device=device))


@pytest.mark.parametrize("runner", list(RUNNERS))
def test_runner_names_the_step_that_went_non_finite(runner):
    x0 = 0.3 * torch.randn(12, 2, generator=torch.Generator().manual_seed(0), dtype=torch.float64)

    def poison(step, t, state):          # the callback runs after the finiteness check: poison the next step's input
        if step == 2:
            state.x[0, 0] = float("nan")

    with pytest.raises((FloatingPointError, ValueError), match="step 3|non-finite|nan"):
        run_scheme(runner, x0, poison)
