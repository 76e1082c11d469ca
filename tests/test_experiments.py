"""The experiment runners of the target chapters: settings validation, segment joining, the three schemes."""

import pytest
import torch

from mmdflow import analytic, energies, experiments, kernels, neural, schemes
from mmdflow.experiments import interaction
from mmdflow.trajectory import Trajectory

SETTINGS = dict(n=40, t_end=0.4, width=16, hidden_layers=2, lr=1e-3, pf_tau=0.1, snap_dt=0.2,
                neural={"neural_backward": dict(tau=0.2, iterations_start=5, iterations=3, batch_size=20),
                        "neural_forward": dict(tau=0.2, iterations_start=5, iterations=3, batch_size=20, batch1=40)})


def straight_line_run(tau, n_steps, x):
    """A fake scheme: every step adds tau to every coordinate; energy = the time."""
    times = torch.arange(n_steps + 1, dtype=torch.float64) * tau
    positions = torch.stack([x + t for t in times])
    return Trajectory(times, positions, times.clone(), wall_time=1.0)


def test_run_in_segments_shifts_times_and_continues_from_the_last_positions():
    x0 = torch.zeros(3, 2, dtype=torch.float64)
    traj = experiments.run_in_segments(lambda k, tau, n, x: straight_line_run(tau, n, x), x0,
                                       [(0.5, 1.0), (1.0, 3.0)], scheme="fake")
    torch.testing.assert_close(traj.times, torch.tensor([0.0, 0.5, 1.0, 2.0, 3.0], dtype=torch.float64))
    torch.testing.assert_close(traj.positions[-1], torch.full((3, 2), 3.0, dtype=torch.float64))
    assert traj.wall_time == 2.0 and traj.info == {"scheme": "fake", "segments": 2}


def test_run_in_segments_rejects_empty_segments():
    with pytest.raises(ValueError, match="segment 1 ends at t=1.0"):
        experiments.run_in_segments(lambda k, tau, n, x: straight_line_run(tau, n, x), torch.zeros(1, 1),
                                    [(0.5, 1.0), (0.5, 1.0)])


def test_settings_are_validated():
    experiments.SchemeSettings(**SETTINGS)
    with pytest.raises(ValueError, match="width must be an integer >= 1, got width=0"):
        experiments.SchemeSettings(**{**SETTINGS, "width": 0})
    with pytest.raises(ValueError, match=r"neural\['neural_backward'\] has unknown fields \['its'\]"):
        experiments.SchemeSettings(**{**SETTINGS, "neural": {"neural_backward": dict(tau=0.1, its=5, batch_size=2)}})
    with pytest.raises(TypeError, match=r"neural\['neural_backward'\] must be a NeuralSchedule"):
        experiments.SchemeSettings(**{**SETTINGS, "neural": {"neural_backward": (0.1, 5)}})
    with pytest.raises(ValueError, match="batch_size must be an integer >= 1"):
        experiments.SchemeSettings(**{**SETTINGS, "neural": {"neural_backward": dict(tau=0.1, iterations=5,
                                                                                       batch_size=0)}})
    with pytest.raises(ValueError, match="'particle_flow' is of the family 'particle', not 'neural'"):
        experiments.SchemeSettings(**{**SETTINGS, "neural": {"particle_flow": dict(tau=0.1, iterations=5,
                                                                                     batch_size=2)}})
    with pytest.raises(ValueError, match="unknown scheme 'neural backward'"):     # a label is not a name
        experiments.SchemeSettings(**{**SETTINGS, "neural": {"neural backward": dict(tau=0.1, iterations=5,
                                                                                       batch_size=2)}})
    with pytest.raises(ValueError, match="pf_tau must be a finite positive number"):
        experiments.SchemeSettings(**{**SETTINGS, "pf_tau": -0.1})


def test_run_schemes_runs_all_three_to_the_final_time_and_decreases_the_discrepancy():
    g = torch.Generator().manual_seed(0)
    target = torch.randn(40, 2, generator=g) * 0.3 + 1.0
    energy = energies.DiscrepancyEnergy(kernels.Riesz(1.0), target)
    x0 = torch.zeros(40, 2)
    x0_pf = x0.double() + 1e-9 * torch.rand(40, 2, generator=g, dtype=torch.float64)
    runs = experiments.run_schemes(energy, x0, x0_pf, experiments.SchemeSettings(**SETTINGS),
                                   energy_particles=energies.DiscrepancyEnergy(kernels.Riesz(1.0), target.double()))
    assert list(runs) == schemes.scheme_names("neural", "particle") == ["neural_backward", "neural_forward",
                                                                         "particle_flow"]
    for scheme, traj in runs.items():
        assert float(traj.times[-1]) == pytest.approx(0.4), scheme
        assert traj.positions.shape[1:] == (40, 2)
        assert float(traj.energies[-1]) < float(traj.energies[0]), scheme
    assert "particle flow" in experiments.format_runs(runs, "test")            # the label, shown
    with pytest.raises(ValueError, match="unknown scheme"):
        experiments.run_schemes(energy, x0, x0_pf, experiments.SchemeSettings(**SETTINGS), schemes=("euler",))


def test_neural_config_builds_each_scheme_from_its_schedule_with_the_configs_names():
    """The batches of a schedule land in the config fields of the same names; batch1 only where the config has it."""
    sched = experiments.NeuralSchedule(tau=0.5, iterations=7, iterations_start=9, batch_size=11)
    common = dict(n_particles=13, tau=0.5, n_steps=4, width=8, hidden_layers=1, lr=1e-2)
    nb = experiments.targets.neural_config("neural_backward", sched, **common)
    nf = experiments.targets.neural_config("neural_forward", sched, **common)
    assert isinstance(nb, neural.NeuralBackwardConfig) and isinstance(nf, neural.NeuralForwardConfig)
    assert (nb.batch_size, nb.iterations, nb.iterations_start) == (11, 7, 9)
    assert (nf.batch_size, nf.batch1) == (11, 13)                               # batch1 None: all particles
    given = experiments.NeuralSchedule(tau=0.5, iterations=7, batch_size=11, batch1=5)
    assert experiments.targets.neural_config("neural_forward", given, **common).batch1 == 5
    with pytest.raises(ValueError, match="gives batch1=5, but its config has no batch1"):
        experiments.targets.neural_config("neural_backward", given, **common)
    with pytest.raises(ValueError, match="family 'particle', not 'neural'"):
        experiments.targets.neural_config("particle_flow", sched, **common)


def test_settings_name_the_neural_scheme_without_a_schedule():
    s = experiments.SchemeSettings(**{**SETTINGS, "neural": {"neural_forward": SETTINGS["neural"]["neural_forward"]}})
    with pytest.raises(ValueError, match="no schedule for the neural scheme 'neural_backward'"):
        experiments.run_schemes(None, torch.zeros(4, 2), torch.zeros(4, 2), s)


def test_interaction_profiles_are_one_table():
    paper = experiments.interaction_settings("paper")
    cfg = paper.neural_config("neural_backward")
    assert (cfg.tau, cfg.n_steps, cfg.width, cfg.hidden_layers, cfg.lr, cfg.iterations,
            cfg.batch_size) == (0.05, 24, 64, 2, 1e-3, 5000, 100)
    assert paper.neural_config("neural_forward").batch1 == 2000
    assert experiments.interaction_settings("paper", iterations=7).neural_config("neural_backward").iterations == 7
    with pytest.raises(ValueError, match="unknown settings"):
        experiments.interaction_settings("quick", its=3)


def test_interaction_case_refuses_the_forward_scheme_off_r1():
    with pytest.raises(ValueError, match="forward scheme"):
        experiments.run_interaction_case("neural_forward", 2, 1.5, experiments.interaction_settings("quick"))


def test_interaction_result_survives_json():
    settings = experiments.interaction_settings("quick", n_particles=30, n_steps=2, iterations=2)
    res = experiments.run_interaction_case("neural_backward", 2, 1.0, settings, times=(0.2, 0.4), n_repeats=1)
    back = experiments.InteractionResult.from_json(res.to_json())
    assert back.errors == res.errors and back.jko_errors == res.jko_errors and back.radius == res.radius
    assert back.ratio(0.4) == res.errors[0.4].d2 / res.errors[0.4].noise


def test_the_interaction_particle_flow_runs_at_pf_tau_with_snapshots_at_the_benchmark_steps():
    """At the neural schemes' step the r = 1.5 particle flow lags far behind gamma(t) (explicit-Euler start-up
    error); at pf_tau it follows it (mean radius against the closed form)."""
    def ratio(pf_tau):
        settings = interaction.interaction_settings("quick", n_particles=100, pf_tau=pf_tau)
        res = interaction.run_interaction_case("particle_flow", 2, 1.5, settings, n_repeats=1)
        tr = res.trajectory
        assert res.tau == pf_tau
        assert torch.allclose(tr.times, torch.arange(7, dtype=torch.float64) * settings.tau, atol=1e-12)
        return float(tr.at(1.2).norm(dim=1).mean()) / analytic.mean_radius(1.2, 2, 1.5)

    assert ratio(0.2) < 0.6
    assert abs(ratio(0.002) - 1) < 0.03
    assert interaction.PROFILES["paper"].pf_tau < interaction.PROFILES["paper"].tau
