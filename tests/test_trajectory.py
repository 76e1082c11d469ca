"""Checkpoints that know what they hold, and snapshots looked up by time (mmdflow.trajectory and its users)."""

import pytest
import torch

from mmdflow import energies, flows, neural, trajectory
from mmdflow.experiments import interaction, targets
from mmdflow.kernels import Riesz
from mmdflow.trajectory import CHECKPOINT_NAME, CheckpointError, Trajectory
from test_neural import _Stop, _stop_after

CFG = flows.ParticleFlowConfig(tau=0.1, n_steps=3)


def _x0(n=12, d=2, seed=0, dtype=torch.float64):
    return (0.3 * torch.randn(n, d, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)).to(dtype)


def _target(seed=1, n=9):
    return torch.randn(n, 2, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)


# ------------------------------------------------------------------------------------------------ particle flows

@pytest.mark.parametrize("other,field", [
    (lambda: energies.InteractionEnergy(Riesz(1.5)), "energy.kernel: checkpoint 'Riesz(r=1.0)', requested 'Riesz(r=1.5)'"),
    (lambda: energies.InteractionEnergy(Riesz(1.0), backend="blocked"), "energy.backend"),
    (lambda: energies.DiscrepancyEnergy(Riesz(1.0), _target()), "energy.type"),
])
def test_particle_flow_refuses_a_checkpoint_of_another_energy(tmp_path, other, field):
    flows.particle_flow(energies.InteractionEnergy(Riesz(1.0)), _x0(), CFG, progress=False, checkpoint_dir=tmp_path)
    with pytest.raises(CheckpointError) as info:
        flows.particle_flow(other(), _x0(), CFG, progress=False, checkpoint_dir=tmp_path)
    assert field in str(info.value) and str(tmp_path) in str(info.value)


def test_particle_flow_refuses_another_target_and_target_weights(tmp_path):
    e = energies.DiscrepancyEnergy(Riesz(1.0), _target())
    flows.particle_flow(e, _x0(), CFG, progress=False, checkpoint_dir=tmp_path)
    with pytest.raises(CheckpointError, match=r"energy\.target: checkpoint '[0-9a-f]{32}'"):
        flows.particle_flow(energies.DiscrepancyEnergy(Riesz(1.0), _target(seed=2)), _x0(), CFG, progress=False,
                            checkpoint_dir=tmp_path)
    v = torch.linspace(1, 2, 9, dtype=torch.float64)
    with pytest.raises(CheckpointError, match=r"energy\.target_weights"):
        flows.particle_flow(energies.DiscrepancyEnergy(Riesz(1.0), _target(), v / v.sum()), _x0(), CFG,
                            progress=False, checkpoint_dir=tmp_path)
    # the same run resumes (here: is complete) and returns the same particles
    again = flows.particle_flow(energies.DiscrepancyEnergy(Riesz(1.0), _target()), _x0(), CFG, progress=False,
                                checkpoint_dir=tmp_path)
    fresh = flows.particle_flow(e, _x0(), CFG, progress=False)
    assert torch.equal(again.positions, fresh.positions)


def test_particle_flow_refuses_another_start_dtype_and_config(tmp_path):
    e = energies.InteractionEnergy(Riesz(1.0))
    flows.particle_flow(e, _x0(), CFG, progress=False, checkpoint_dir=tmp_path)
    with pytest.raises(CheckpointError, match=r"x0 \(the initial particles, digest\)"):
        flows.particle_flow(e, _x0(seed=5), CFG, progress=False, checkpoint_dir=tmp_path)
    with pytest.raises(CheckpointError, match="dtype: checkpoint 'torch.float64', requested 'torch.float32'"):
        flows.particle_flow(e, _x0(dtype=torch.float32), CFG, progress=False, checkpoint_dir=tmp_path)
    with pytest.raises(CheckpointError, match="config.n_steps: checkpoint 3, requested 4"):
        flows.particle_flow(e, _x0(), flows.ParticleFlowConfig(tau=0.1, n_steps=4), progress=False,
                            checkpoint_dir=tmp_path)


def test_a_sliced_particle_flow_resumes_bitwise(tmp_path):
    """The sliced energy's generator advances at every step: the checkpoint stores and restores it."""
    def energy():
        return energies.SlicedDiscrepancyEnergy(Riesz(1.0), _target(), n_directions=16,
                                                generator=torch.Generator().manual_seed(4))

    cfg = flows.ParticleFlowConfig(tau=0.05, n_steps=6)
    full = flows.particle_flow(energy(), _x0(), cfg, progress=False)
    with pytest.raises(_Stop):
        flows.particle_flow(energy(), _x0(), cfg, progress=False, checkpoint_dir=tmp_path, callback=_stop_after(3))
    resumed = flows.particle_flow(energy(), _x0(), cfg, progress=False, checkpoint_dir=tmp_path)
    assert torch.equal(resumed.positions, full.positions)
    # another seed of the directions is another run
    other = energies.SlicedDiscrepancyEnergy(Riesz(1.0), _target(), n_directions=16,
                                             generator=torch.Generator().manual_seed(5))
    with pytest.raises(CheckpointError, match="energy.options"):
        flows.particle_flow(other, _x0(), cfg, progress=False, checkpoint_dir=tmp_path)


# ------------------------------------------------------------------------------------------------ neural schemes

def test_neural_flow_refuses_another_energy_generator_and_target(tmp_path):
    cfg = neural.NeuralBackwardConfig(tau=0.1, n_steps=1, iterations=2, width=4, batch_size=4)
    target = _target().float()

    def run(energy, seed):
        return neural.neural_backward_flow(energy, torch.zeros(8, 2), cfg, generator=torch.Generator().manual_seed(seed),
                                           checkpoint_dir=tmp_path, progress=False)

    run(energies.DiscrepancyEnergy(Riesz(1.0), target), 0)
    with pytest.raises(CheckpointError, match=r"generator \(its initial state, digest\)"):
        run(energies.DiscrepancyEnergy(Riesz(1.0), target), 1)
    with pytest.raises(CheckpointError, match="energy.kernel"):
        run(energies.DiscrepancyEnergy(Riesz(1.5), target), 0)
    with pytest.raises(CheckpointError, match="energy.target:"):
        run(energies.DiscrepancyEnergy(Riesz(1.0), _target(seed=3).float()), 0)
    run(energies.DiscrepancyEnergy(Riesz(1.0), target), 0)     # the same run is accepted


def test_target_chapters_cannot_mix_runs_in_one_folder(tmp_path):
    """Chapters 4 and 5 reuse fixed folders whose start does not depend on the target: the target decides."""
    settings = targets.SchemeSettings(n=8, t_end=0.2, width=4, hidden_layers=1, lr=1e-3, pf_tau=0.1, snap_dt=0.1,
                                      neural={"neural_backward": {"tau": 0.1, "iterations": 1, "batch_size": 4},
                                              "neural_forward": {"tau": 0.1, "iterations": 1, "batch_size": 4,
                                                                 "batch1": 4}})
    centers = [[-0.5, 0.0], [0.5, 0.0]]
    targets.run_target("exp", _target().float(), centers, settings, checkpoint_dir=tmp_path)
    with pytest.raises(CheckpointError, match="energy.target") as info:
        targets.run_target("exp", _target(seed=7).float(), centers, settings, checkpoint_dir=tmp_path)
    assert str(tmp_path / "exp") in str(info.value)


def test_interaction_particle_cache_does_not_return_another_dimension(tmp_path):
    settings = interaction.interaction_settings("quick", n_particles=20, pf_tau=0.1)
    interaction.run_interaction_case("particle_flow", 2, 1.0, settings, n_repeats=1, checkpoint_dir=tmp_path)
    with pytest.raises(CheckpointError, match="x0"):
        interaction.run_interaction_case("particle_flow", 3, 1.0, settings, n_repeats=1, checkpoint_dir=tmp_path)
    with pytest.raises(CheckpointError, match="energy.kernel"):
        interaction.run_interaction_case("particle_flow", 2, 1.5, settings, n_repeats=1, checkpoint_dir=tmp_path)


# ------------------------------------------------------------------------------------------------ unreadable files

@pytest.mark.parametrize("content", [b"", b"PK\x03\x04 not really a zip", b"\x80\x02}q\x00."])
def test_unreadable_checkpoint_files_name_the_file_and_what_to_do(tmp_path, content):
    (tmp_path / CHECKPOINT_NAME).write_bytes(content)
    with pytest.raises(CheckpointError) as info:
        flows.particle_flow(energies.InteractionEnergy(Riesz(1.0)), _x0(), CFG, progress=False,
                            checkpoint_dir=tmp_path)
    msg = str(info.value)
    assert str(tmp_path / CHECKPOINT_NAME) in msg and "delete" in msg and "another checkpoint folder" in msg


def test_a_checkpoint_cut_short_mid_write_is_refused(tmp_path):
    e = energies.InteractionEnergy(Riesz(1.0))
    flows.particle_flow(e, _x0(), CFG, progress=False, checkpoint_dir=tmp_path)
    path = tmp_path / CHECKPOINT_NAME
    data = path.read_bytes()
    for cut in (len(data) // 3, len(data) - 10):
        path.write_bytes(data[:cut])
        with pytest.raises(CheckpointError, match="cannot be read"):
            flows.particle_flow(e, _x0(), CFG, progress=False, checkpoint_dir=tmp_path)


def test_a_foreign_torch_file_is_refused(tmp_path):
    torch.save({"key": {}, "step": 1}, tmp_path / CHECKPOINT_NAME)
    with pytest.raises(CheckpointError, match="not an mmdflow checkpoint"):
        flows.particle_flow(energies.InteractionEnergy(Riesz(1.0)), _x0(), CFG, progress=False,
                            checkpoint_dir=tmp_path)


# ------------------------------------------------------------------------------------------------ digests

def test_digest_tells_runs_apart_and_ignores_the_device_of_a_tensor():
    x = _x0()
    assert trajectory.digest(x) == trajectory.digest(x.clone())
    assert trajectory.digest(x) != trajectory.digest(x.float())            # dtype counts
    assert trajectory.digest(x) != trajectory.digest(x.reshape(6, 4))      # shape counts
    g1, g2 = torch.Generator().manual_seed(1), torch.Generator().manual_seed(1)
    assert trajectory.digest(g1) == trajectory.digest(g2)
    torch.rand(1, generator=g2)
    assert trajectory.digest(g1) != trajectory.digest(g2)                  # the state counts
    assert trajectory.digest({"a": 1, "b": [1.0, None]}) == trajectory.digest({"b": [1.0, None], "a": 1})


# ------------------------------------------------------------------------------------------------ times

def test_at_and_weights_at_need_a_recorded_time():
    traj = Trajectory(times=torch.tensor([0.0, 0.1, 0.30000000000000004], dtype=torch.float64),
                      positions=torch.arange(3.0)[:, None, None].expand(3, 2, 1),
                      energies=torch.zeros(3, dtype=torch.float64), weights=torch.full((3, 2), 0.5))
    assert float(traj.at(0.3)[0, 0]) == 2.0                  # float rounding of a recorded time is fine
    with pytest.raises(ValueError, match=r"no snapshot at t=0.2: the nearest is t=0.1"):
        traj.at(0.2)
    assert float(traj.at(0.2, tol=float("inf"))[0, 0]) == 1.0   # explicitly asked for the nearest
    with pytest.raises(ValueError, match="recorded times 0, 0.1, 0.3"):
        traj.weights_at(1.0)
    assert traj.index_of(0.1) == 1


def test_particle_flow_snapshots_at_multiples_of_snapshot_dt_with_a_slow_start():
    cfg = flows.ParticleFlowConfig.until(0.4, tau=0.01, snapshot_dt=0.1, slow_start=True)
    tr = flows.particle_flow(energies.InteractionEnergy(Riesz(0.5)), flows.perturbed_dirac(10, 2), cfg,
                             record_energy=False, progress=False)
    assert torch.allclose(tr.times, torch.tensor([0.0, 0.1, 0.2, 0.3, 0.4], dtype=torch.float64), atol=1e-12)
