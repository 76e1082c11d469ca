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
    return interaction.InteractionResult(scheme=scheme, d=d, r=r, iterations=None if scheme == "particle_flow" else its,
                                         n_particles=2000, tau=tau, seed=0, n_repeats=10, wall_time=1.0, errors=errs,
                                         jko_errors=jerrs)


def _pf_pair(d, r, coarse, fine):
    return [_result("particle_flow", d, r, coarse, tau=0.05), _result("particle_flow", d, r, fine, tau=0.001)]


def _verdicts(records, stored):
    return {(r.item, r.claim): r for r in scorecard.scorecard_rows(records, stored=stored)}


def _row(rows, item, word):
    hits = [r for (i, c), r in rows.items() if i == item and word in c]
    assert len(hits) == 1, (item, word, list(rows))
    return hits[0]


def test_scorecard_verdicts_follow_their_rules():
    stored = {"interaction_paper": [_result("neural_backward", 2, 1.0, 1.2), _result("neural_backward", 3, 1.0, 8.0),
                                    _result("neural_forward", 2, 1.0, 0.9), _result("neural_forward", 3, 1.0, 2.0),
                                    _result("neural_backward", 2, 1.5, 20.0, jko=2.0),
                                    *_pf_pair(2, 1.5, 50.0, 0.9)]}
    records = {"04_mmd_targets": {"profile": "book", "values": {
        "drawing": {"n": 300, "nb_iterations": 300, "nf_iterations": 200,
                    "ratio_to_pf": {"neural_backward": 6.0, "neural_forward": 25.0, "particle_flow": 1.0},
                    "held_out_over_floor": {"neural_backward": 1.1, "neural_forward": 1.2, "particle_flow": 1.0}},
        "smiley": {"n": 300, "nb_iterations": 150, "nf_iterations": 200,
                   "ratio_to_pf": {"neural_backward": 12.0, "neural_forward": 25.0, "particle_flow": 1.0},
                   "held_out_over_floor": {"neural_backward": 1.1, "neural_forward": 1.2, "particle_flow": 1.0}}}}}
    rows = _verdicts(records, stored)
    assert _row(rows, "Sec. 6.1, table", "neural backward scheme follows").verdict == "partly"   # d = 3: 8 floors
    assert _row(rows, "Sec. 6.1, table", "neural forward scheme follows").verdict == "reproduced"
    # the paper's particle step makes the neural scheme closer; the converged step does not: both are shown
    r15 = _row(rows, "Sec. 6.1, $r = 1.5$", "closer")
    assert r15.verdict == scorecard.EXPLAINED
    assert "dt = 0.05" in r15.book_setting and "dt = 0.001" in r15.converged and "start-up" in r15.why
    assert "50.0 floors" in r15.measured and "0.9 floors" in r15.converged
    assert _row(rows, "Fig. 1", "drawing").verdict == "reproduced"
    assert _row(rows, "App. F, Ex. 1", "smiley").verdict == "partly"
    ex2 = _row(rows, "App. F, Ex. 2", "two other Diracs")
    assert ex2.verdict == scorecard.NOT_TESTED and "two_diracs" in ex2.why        # an older record: not judged
    mnist = _row(rows, "Sec. 6.2", "MNIST")
    assert mnist.verdict == scorecard.NOT_TESTED and "no record of 05_mnist" in mnist.why


def test_particle_flow_row_is_judged_at_the_paper_step_first():
    stored = {"interaction_paper": _pf_pair(2, 1.0, 1.1, 1.0) + _pf_pair(2, 1.5, 50.0, 0.9)}
    row = _row(_verdicts({}, stored), "Sec. 6.1, table", "particle flow")
    assert row.verdict == "not reproduced"                          # 50 floors at dt = 0.05
    assert "criterion met" in row.converged                  # 0.9 at dt = 0.001, shown next to it
    stored = {"interaction_paper": _pf_pair(2, 1.0, 1.1, 1.0)}       # no r = 1.5: both settings agree
    assert _row(_verdicts({}, stored), "Sec. 6.1, table", "particle flow").verdict == "reproduced"
    stored = {"interaction_paper": [_result("particle_flow", 2, 1.0, 1.0, tau=0.001)]}   # no run at the paper's step
    row = _row(_verdicts({}, stored), "Sec. 6.1, table", "particle flow")
    assert row.verdict == scorecard.NOT_TESTED and "0.05" in row.why


def test_more_iterations_say_whether_the_d10_failure_is_under_training():
    paper = [_result("neural_backward", 10, 1.5, 40.0, jko=16.0)]
    rows = _verdicts({}, {"interaction_paper": paper})
    row = _row(rows, "Sec. 6.1, $d = 10$", "JKO")
    assert row.verdict == "not reproduced" and row.converged == "-"
    trained = [_result("neural_backward", 10, 1.5, 30.0, its=15000, jko=2.0)]
    row = _row(_verdicts({}, {"interaction_paper": paper, "interaction_training": trained}), "Sec. 6.1, $d = 10$",
               "JKO")
    assert row.verdict == "not reproduced"                           # the paper's setting decides
    assert "15000" in row.converged and "under-training accounts for it" in row.why
    trained = [_result("neural_backward", 10, 1.5, 30.0, its=15000, jko=15.0)]
    row = _row(_verdicts({}, {"interaction_paper": paper, "interaction_training": trained}), "Sec. 6.1, $d = 10$",
               "JKO")
    assert "not under-training" in row.why


def _mnist_record(nb_ratio, nf_ratio, nb_conf, nf_conf, pf_conf=0.9):
    judge = {s: {"mean_confidence": c, "share_above_0.9": 0.5}
             for s, c in (("neural_backward", nb_conf), ("neural_forward", nf_conf), ("particle_flow", pf_conf))}
    return {"05_mnist": {"profile": "book", "values": {
        "n_particles": 25, "judge": judge, "judge_accuracy": 0.98,
        "ratio_to_pf": {"neural_backward": nb_ratio, "neural_forward": nf_ratio, "particle_flow": 1.0}}}}


def test_mnist_rule_needs_the_digit_judge_and_the_ratio_to_the_particle_flow():
    item = "Sec. 6.2"
    assert _row(_verdicts(_mnist_record(1.1, 1.0, 0.88, 0.9), {}), item, "MNIST").verdict == "reproduced"
    assert _row(_verdicts(_mnist_record(1.1, 3.0, 0.88, 0.2), {}), item, "MNIST").verdict == "partly"
    assert _row(_verdicts(_mnist_record(2.0, 3.0, 0.3, 0.2), {}), item, "MNIST").verdict == "not reproduced"
    old = {"05_mnist": {"profile": "book", "values": {"final": {}, "copy_reference": 1.0}}}   # the old record
    row = _row(_verdicts(old, {}), item, "MNIST")
    assert row.verdict == scorecard.NOT_TESTED and "'judge'" in row.why


def _targets_record(two_diracs=None, ex3=None):
    values = {}
    if two_diracs is not None:
        values["two_diracs"] = {"n": 2000, "ratio_to_pf": dict(zip(("neural_backward", "neural_forward",
                                                                      "particle_flow"), (*two_diracs, 1.0)))}
    if ex3 is not None:
        (dnb, dnf), (fnb, fnf, fpf) = ex3
        values["implosion_explosion"] = {
            "n": 2000, "energy_decrease_ratio_to_pf": {"neural_backward": dnb, "neural_forward": dnf,
                                                       "particle_flow": 1.0},
            "fan_correlation": {"neural_backward": fnb, "neural_forward": fnf, "particle_flow": fpf}}
    return {"04_mmd_targets": {"profile": "book", "values": values}}


def test_two_dirac_and_example_3_rules_read_the_chapter_record():
    ex2, ex3 = "App. F, Ex. 2", "App. F, Ex. 3"
    assert _row(_verdicts(_targets_record(two_diracs=(1.0, 1.1)), {}), ex2, "").verdict == "reproduced"
    assert _row(_verdicts(_targets_record(two_diracs=(20.0, 50.0)), {}), ex2, "").verdict == "partly"
    assert _row(_verdicts(_targets_record(two_diracs=(200.0, 50.0)), {}), ex2, "").verdict == "not reproduced"
    # Example 3: the decrease of F and the V-shaped fan both count; clumps with a good decrease are only partly
    assert _row(_verdicts(_targets_record(ex3=((0.99, 0.98), (0.93, 0.9, 0.89))), {}), ex3, "").verdict \
        == "reproduced"
    row = _row(_verdicts(_targets_record(ex3=((0.99, 0.98), (0.2, 0.9, 0.89))), {}), ex3, "")
    assert row.verdict == "partly" and "fan correlation" in row.measured
    assert _row(_verdicts(_targets_record(ex3=((0.5, 0.98), (0.2, 0.9, 0.89))), {}), ex3, "").verdict \
        == "not reproduced"
    row = _row(_verdicts(_targets_record(two_diracs=(1.0, 1.0)), {}), ex3, "")
    assert row.verdict == scorecard.NOT_TESTED and "implosion_explosion" in row.why


def test_target_rows_show_labels_and_refuse_records_with_other_scheme_names():
    """Records name schemes by their registry names; the rows show the labels; an older record (keyed by the
    labels) is not judged, and the message says why."""
    ex2, ex3 = "App. F, Ex. 2", "App. F, Ex. 3"
    row = _row(_verdicts(_targets_record(ex3=((0.99, 0.98), (0.93, 0.9, 0.89))), {}), ex3, "")
    assert "neural backward 0.99, neural forward 0.98, particle flow 1.00" in row.measured
    old = {"04_mmd_targets": {"profile": "book", "values": {"two_diracs": {"n": 2000, "ratio_to_pf": {
        "neural backward": 1.0, "neural forward": 1.0, "particle flow": 1.0}}}}}
    row = _row(_verdicts(old, {}), ex2, "")
    assert row.verdict == scorecard.NOT_TESTED and "unknown scheme names ['neural backward'" in row.why
    mnist = _mnist_record(1.1, 1.0, 0.88, 0.9)
    assert "backward: $\\mathcal D_K^2$ 1.10×" in _row(_verdicts(mnist, {}), "Sec. 6.2", "MNIST").measured
    judge = mnist["05_mnist"]["values"]["judge"]
    mnist["05_mnist"]["values"]["judge"] = {k.replace("_", " "): v for k, v in judge.items()}
    row = _row(_verdicts(mnist, {}), "Sec. 6.2", "MNIST")
    assert row.verdict == scorecard.NOT_TESTED and "05_mnist/judge" in row.why


def test_every_verdict_of_the_rule_is_reachable_and_known_to_the_figure():
    """Synthetic judgements that must give each verdict of the rule, and the rule's text on the page."""
    from mmdflow.plots.scorecard import VERDICT_COLOURS
    F = scorecard.Finding
    ok, part, bad = F("a", "m", "reproduced"), F("a", "m", "partly"), F("a", "m", "not reproduced")
    J = scorecard.Judgement
    assert scorecard.combine(J(ok))[0] == "reproduced"
    assert scorecard.combine(J(ok, ok))[0] == "reproduced"
    assert scorecard.combine(J(ok, bad, "a coarse step"))[0] == scorecard.EXPLAINED
    assert scorecard.combine(J(ok, bad, "a coarse step"))[1] == "a coarse step"
    assert scorecard.combine(J(part, ok))[0] == "partly"
    assert scorecard.combine(J(bad))[0] == "not reproduced"
    claim = scorecard.Claim("P", "i", "c", "s", "x", "crit", lambda rec, st: J(ok))
    assert scorecard.evaluate(claim, {}, {})[1] == "reproduced"
    missing = scorecard.Claim("P", "i", "c", "s", "x", "crit", lambda rec, st: rec["x"])
    assert scorecard.evaluate(missing, {}, {})[1:] == (scorecard.NOT_TESTED, "no record of x in this build")
    assert set(scorecard.VERDICTS) == set(VERDICT_COLOURS)
    assert "paper's own setting" in scorecard.RULE


def test_ift_rows_read_the_chapter_judgements_and_reject_the_old_layout():
    new = {"06_ift": {"profile": "quick", "values": {
        "decay": {"at_paper": ["h = 0.1", "rates", "reproduced"], "converged": None, "explanation": ""},
        "comparison_2d": {"at_paper": ["weighted step, tau = 5", "unstable", "not reproduced"],
                          "converged": ["weighted step, tau = 0.5", "below", "reproduced"], "explanation": "e"}}}}
    rows = _verdicts(new, {})
    assert _row(rows, "decay theorem", "MMD").verdict == "reproduced"
    cmp2 = _row(rows, "2-D comparison", "IFT")
    assert cmp2.verdict == "not reproduced" and "tau = 0.5" in cmp2.converged
    assert _row(rows, "100-d mixture", "IFT").verdict == scorecard.NOT_TESTED
    old = {"06_ift": {"profile": "quick", "values": {"decay": {"book_setting": "x", "measured": "y",
                                                                "verdict": "partly", "why": "z"}}}}
    assert _row(_verdicts(old, {}), "decay theorem", "MMD").verdict == scorecard.NOT_TESTED


def test_scorecard_text_has_no_plain_text_math():
    """Titles, claims and criteria of the scorecard are Markdown: math goes in $...$."""
    import re
    plain = re.compile(r"D_K\^2|gamma\(t\)|delta_0|MMD\(mu|R\^784|P\^\(-1/2\)|\bpi\b")
    for c in scorecard.CLAIMS:
        for text in (c.claim, c.criterion, c.paper_setting, c.item):
            outside = re.sub(r"\$[^$]*\$", "", text)
            assert not plain.search(outside), text


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
    runs = {"neural_backward": a, "particle_flow": b}                  # registry names, shown by their labels
    times = tplots.frame_times(runs, 5, spacing="log")
    assert times[0] == 0 and times[-1] == pytest.approx(3000.0) and times[1] == pytest.approx(1.0)
    assert tplots._frame_index(b, 150.0) == 2 and tplots._frame_index(a, 150.0) == 3
    assert "neural backward ended at t = 3" in tplots._clock(list(runs), runs, 150.0, [3, 2])
    fig = tplots.mosaic_grid(runs, [0, 3, 3000])
    texts = [t.get_text() for ax in fig.axes for t in ax.texts]
    assert sum("no snapshot" in t for t in texts) == 2               # a has no t = 3000, b no t = 3
    with pytest.raises(ValueError, match="'cubic'"):
        tplots.frame_times({"a": a}, 3, spacing="cubic")


def test_reading_notes_and_particle_step_table_come_from_the_results():
    res = [_result("neural_backward", 2, 1.0, 1.2), _result("particle_flow", 2, 1.5, 5.0, tau=0.002),
           _result("particle_flow", 2, 1.5, 0.9, tau=0.001)]
    notes = interaction.reading_notes(res)
    assert any("1 of 1 cases" in n and "1.2 floors" in n for n in notes)
    assert any("step $dt = 0.001$" in n and "0.9 floors" in n for n in notes)
    assert any("coarser step $dt = 0.002$" in n and "5.0 floors" in n for n in notes)
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
