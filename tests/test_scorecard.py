"""The reproduction scorecard, the chapters' result records, held-out scores and the animation/mosaic timing."""

import json

import pytest
import torch

from mmdflow import energies, runtime
from mmdflow.experiments import TargetScores, target_scores, interaction, scorecard
from mmdflow.kernels import Riesz
from mmdflow.metrics import ExactComparison
from mmdflow.plots import targets as tplots
from mmdflow.trajectory import Trajectory


def _traj(times, x):
    times = torch.tensor(times, dtype=torch.float64)
    return Trajectory(times, x.expand(len(times), *x.shape).clone(), torch.zeros(len(times)))


def test_records_round_trip_with_profile_and_provenance(tmp_path, monkeypatch):
    monkeypatch.setenv(runtime.RECORDS_ENV, str(tmp_path))
    runtime.record_results("04_mmd_targets", {"a": 1.5}, profile="book")
    rec = runtime.load_records("book")["04_mmd_targets"]
    assert rec["values"] == {"a": 1.5} and rec["profile"] == "book" and "commit" in rec["provenance"]
    with pytest.raises(ValueError, match="'fast'"):
        runtime.record_results("x", {}, profile="fast")


def _result(scheme, d, r, ratio, *, tau=0.05, its=5000, jko=None):
    errs = {t: ExactComparison(ratio * 1e-4, 1e-4, 0.0, 0.0) for t in (0.4, 0.8, 1.2)}
    jerrs = {} if jko is None else {t: ExactComparison(jko * 1e-4, 1e-4, 0.0, 0.0) for t in (0.4, 0.8, 1.2)}
    return interaction.InteractionResult(scheme=scheme, d=d, r=r, iterations=None if scheme == "particle" else its,
                                         n_particles=2000, tau=tau, seed=0, n_repeats=10, wall_time=1.0, errors=errs,
                                         jko_errors=jerrs)


def test_scorecard_verdicts_follow_their_rules():
    stored = {"interaction_paper": [_result("backward", 2, 1.0, 1.2), _result("backward", 3, 1.0, 8.0),
                                    _result("forward", 2, 1.0, 0.9), _result("forward", 3, 1.0, 2.0),
                                    _result("backward", 2, 1.5, 20.0, jko=2.0),
                                    _result("particle", 2, 1.5, 5.0, tau=0.002),
                                    _result("particle", 2, 1.5, 0.9, tau=0.001)]}
    records = {"04_mmd_targets": {"profile": "book", "values": {
        "drawing": {"n": 300, "nb_iterations": 300, "nf_iterations": 200,
                    "ratio_to_pf": {"neural backward": 6.0, "neural forward": 25.0, "particle flow": 1.0},
                    "held_out_over_floor": {"neural backward": 1.1, "neural forward": 1.2, "particle flow": 1.0}},
        "smiley": {"n": 300, "nb_iterations": 150, "nf_iterations": 200,
                   "ratio_to_pf": {"neural backward": 12.0, "neural forward": 25.0, "particle flow": 1.0},
                   "held_out_over_floor": {"neural backward": 1.1, "neural forward": 1.2, "particle flow": 1.0}}}}}
    rows = {(r[1], r[2]): r for r in scorecard.scorecard_rows(records, stored=stored)}
    verdict = {k: r[7] for k, r in rows.items()}
    assert verdict["Sec. 6.1, table", "neural backward scheme follows gamma(t) for r = 1 (d = 2, 3)"] == "partly"
    assert verdict["Sec. 6.1, table", "neural forward scheme follows gamma(t) for r = 1 (d = 2, 3)"] == "reproduced"
    nine = [v for k, v in verdict.items() if "all nine" in k[1]][0]
    assert nine == "partly"                                         # its own target: 2 floors; r = 1, d = 3: 8
    assert verdict["Sec. 6.1, r = 1.5", "the neural backward scheme is closer to gamma(t) than the particle flow"] \
        == "not reproduced"                                         # the finest particle step counts: 0.9 floors
    assert verdict["Fig. 1", "two Diracs flow into a drawing with all three schemes"] == "reproduced"
    assert verdict["App. F, Ex. 1", "two Diracs flow into a smiley with all three schemes"] == "partly"
    assert verdict["Sec. 6.2", "25 particles from one grey image flow to MNIST digits with all three schemes"] \
        == "not run"


def test_target_scores_against_an_independent_computation():
    gen = torch.Generator().manual_seed(0)
    target = torch.rand(60, 2, generator=gen, dtype=torch.float64)
    held = torch.rand(200, 2, generator=gen, dtype=torch.float64)
    runs = {"copy": _traj([0.0, 1.0], target), "other": _traj([0.0, 1.0], 0.5 * target)}

    def sample(n, g):
        return torch.rand(n, 2, generator=g, dtype=torch.float64)

    sc = target_scores(runs, target, held, sample, repeats=5, seed=5)
    assert isinstance(sc, TargetScores) and sc.n_held_out == 200
    assert abs(sc.train["copy"]) < 1e-12                             # copying the training target scores 0
    def dense(a, b):   # D_K^2 from the [N, M] kernel matrices of the textbook formula
        k = Riesz(1.0)
        return float(0.5 * k(a, a).mean() - k(a, b).mean() + 0.5 * k(b, b).mean())
    assert sc.held_out["other"] == pytest.approx(dense(0.5 * target, held), rel=1e-10)
    floors = sorted(dense(sample(60, torch.Generator().manual_seed(5 + k)), held) for k in range(5))
    assert sc.floor == pytest.approx(floors[2], rel=1e-10)              # the median of five
    assert sc.floor_low == pytest.approx(floors[1], rel=1e-10) and sc.floor_high == pytest.approx(floors[3], rel=1e-10)


def test_animation_frames_and_mosaic_columns_follow_the_times():
    a = _traj([0.0, 1.0, 2.0, 3.0], torch.zeros(4, 784))
    b = _traj([0.0, 10.0, 100.0, 3000.0], torch.ones(4, 784))
    times = tplots.frame_times({"a": a, "b": b}, 5, spacing="log")
    assert times[0] == 0 and times[-1] == pytest.approx(3000.0) and times[1] == pytest.approx(1.0)
    assert tplots._frame_index(b, 150.0) == 2 and tplots._frame_index(a, 150.0) == 3
    assert "a ended at t = 3" in tplots._clock(["a", "b"], {"a": a, "b": b}, 150.0, [3, 2])
    fig = tplots.mosaic_grid({"a": a, "b": b}, [0, 3, 3000])
    texts = [t.get_text() for ax in fig.axes for t in ax.texts]
    assert sum("no snapshot" in t for t in texts) == 2               # a has no t = 3000, b no t = 3
    with pytest.raises(ValueError, match="'cubic'"):
        tplots.frame_times({"a": a}, 3, spacing="cubic")


def test_reading_notes_and_particle_step_table_come_from_the_results():
    res = [_result("backward", 2, 1.0, 1.2), _result("particle", 2, 1.5, 5.0, tau=0.002),
           _result("particle", 2, 1.5, 0.9, tau=0.001)]
    notes = interaction.reading_notes(res)
    assert any("1 of 1 cases" in n and "1.2 floors" in n for n in notes)
    assert any("step dt = 0.001" in n and "0.9 floors" in n for n in notes)
    from mmdflow.plots import neural as nplots
    table = str(nplots.particle_step_table(res))
    assert "5.00" in table and "0.90" in table
    assert "dt = 0.002" not in str(nplots.benchmark_table(res))      # the finest step only
    assert json.dumps(interaction.provenance_summary(res))


def test_verdict_bars_count_each_papers_claims():
    from mmdflow.plots.scorecard import plot_verdicts
    rows = [["A"] + [""] * 6 + ["reproduced"], ["A"] + [""] * 6 + ["partly"], ["B"] + [""] * 6 + ["reproduced"]]
    ax = plot_verdicts(rows)
    widths = sorted((round(p.get_width()), p.get_y()) for p in ax.patches)
    assert [w for w, _ in widths if w] == [1, 1, 1]      # A: one reproduced, one partly; B: one reproduced
    with pytest.raises(ValueError, match="'maybe'"):
        plot_verdicts([["A"] + [""] * 6 + ["maybe"]])
