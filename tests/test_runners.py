"""Every public runner, in every dtype and on every device present, through the one step loop.

The runners are the particle flow, both neural schemes and the weighted-particle runner; each must keep the
start's dtype and device in its trajectory, record its snapshots at the stated times, call the callback with
``(step, t, state)`` after every step and report non-finite particles with the step that produced them.
"""

import pytest
import torch

from mmdflow import energies, flows, neural, wfr
from mmdflow.data import mixtures
from mmdflow.kernels import Gaussian, Riesz
from mmdflow.trajectory import ParticleState, Trajectory

DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
DTYPES = [torch.float32, torch.float64]


def _particle(x0, callback):
    energy = energies.DiscrepancyEnergy(Riesz(1.0), torch.zeros(5, 2, dtype=x0.dtype, device=x0.device))
    return flows.particle_flow(energy, x0, flows.ParticleFlowConfig(tau=0.1, n_steps=4, snapshot_every=2),
                               progress=False, callback=callback)


def _neural(kind):
    def run(x0, callback):
        energy = energies.InteractionEnergy(Riesz(1.0))
        cls = neural.NeuralBackwardConfig if kind == "backward" else neural.NeuralForwardConfig
        cfg = cls(tau=0.1, n_steps=4, iterations=3, width=8, batch_size=8, snapshot_every=2,
                  dtype="float64" if x0.dtype == torch.float64 else "float32",
                  **({"batch1": 8} if kind == "forward" else {}))
        flow = neural.neural_backward_flow if kind == "backward" else neural.neural_forward_flow
        return flow(energy, x0, cfg, generator=torch.Generator(device=x0.device).manual_seed(0), progress=False,
                    callback=callback)
    return run


def _weighted(x0, callback):
    target = mixtures.gaussian_2d().sample(16, torch.Generator().manual_seed(1), dtype=x0.dtype, device=x0.device)
    cfg = wfr.WFRConfig(method="ift", n_steps=4, tau=0.1, snapshot_every=2)
    energy = energies.DiscrepancyEnergy(Gaussian(1.0), target)
    return wfr.wfr_flow(energy, x0, cfg, generator=torch.Generator().manual_seed(2), progress=False,
                        callback=callback)


RUNNERS = {"particle_flow": _particle, "neural_backward_flow": _neural("backward"),
           "neural_forward_flow": _neural("forward"), "wfr_flow": _weighted}


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

    traj = RUNNERS[runner](x0, callback)
    assert isinstance(traj, Trajectory)
    assert traj.positions.dtype == dtype and traj.positions.device.type == device
    assert traj.positions.shape == (3, 12, 2)
    assert [s for s, _ in seen] == [1, 2, 3, 4]
    step_size = 0.1                                           # every runner has physical times t_k = k tau
    torch.testing.assert_close(traj.times, torch.tensor([0.0, 2, 4], dtype=torch.float64) * step_size)
    assert [t for _, t in seen] == pytest.approx([step_size * k for k in (1, 2, 3, 4)])
    assert torch.equal(traj.positions[0].cpu(), x0.cpu())
    assert [m["step"] for m in traj.info["step_metrics"]] == [1, 2, 3, 4]
    if runner == "wfr_flow":
        assert traj.weights.dtype == dtype and traj.weights.shape == (3, 12)
        torch.testing.assert_close(traj.weights.sum(1), torch.ones(3, dtype=dtype, device=device))


@pytest.mark.parametrize("runner", list(RUNNERS))
def test_runner_names_the_step_that_went_non_finite(runner):
    x0 = 0.3 * torch.randn(12, 2, generator=torch.Generator().manual_seed(0), dtype=torch.float64)

    def poison(step, t, state):          # the callback runs after the finiteness check: poison the next step's input
        if step == 2:
            state.x[0, 0] = float("nan")

    with pytest.raises((FloatingPointError, ValueError), match="step 3|non-finite|nan"):
        RUNNERS[runner](x0, poison)
