"""Chapter tables and figure styling that the pages rely on: the split Sec. 6.1 tables, short numbers, expected
noise floors, one colour per summation backend."""

import pytest
import torch

from mmdflow import metrics
from mmdflow.experiments import interaction
from mmdflow.metrics import ExactComparison
from mmdflow.plots import fast as fplots
from mmdflow.plots import neural as nplots


def _res(scheme, d, r, ratio, *, tau=0.05, jko=None):
    errs = {t: ExactComparison(ratio * 1e-4, 1e-4, 0.0, 0.0) for t in (0.4, 1.2)}
    jerrs = {} if jko is None else {t: ExactComparison(jko * 1e-4, 1e-4, 0.0, 0.0) for t in (0.4, 1.2)}
    return interaction.InteractionResult(scheme=scheme, d=d, r=r, iterations=None if scheme == "particle_flow" else 5000,
                                         n_particles=100, tau=tau, seed=0, n_repeats=3, wall_time=1.0, errors=errs,
                                         jko_errors=jerrs)


def test_short_sci_keeps_numbers_short_and_exact_to_two_digits():
    assert nplots.short_sci(4.81e-4) == "4.8e-4" and nplots.short_sci(1.6e-2) == "1.6e-2"
    assert nplots.short_sci(2.5) == "2.5e0" and float(nplots.short_sci(0.000123)) == pytest.approx(1.2e-4)


def test_scheme_table_shows_the_particle_step_that_was_run():
    res = [_res("neural_backward", 2, 1.5, 20.0, jko=2.0), _res("neural_backward", 2, 1.0, 1.0, jko=1.0),
           _res("particle_flow", 2, 1.5, 50.0, tau=0.05), _res("particle_flow", 2, 1.5, 0.9, tau=0.001)]
    coarse = nplots.scheme_table(res, "particle_flow", particle_step=0.05)
    fine = nplots.scheme_table(res, "particle_flow")
    assert "dt = 0.05" in coarse.caption and "50.0" in str(coarse)
    assert "dt = 0.001" in fine.caption and "0.9" in str(fine) and "50.0" not in str(fine)
    nb = nplots.scheme_table(res, "neural_backward")
    rows = {r[1]: r for r in nb.rows}
    assert rows["1.5"][-1] == "2.0" and rows["1"][-1] == "="         # JKO column: r = 1 is gamma(t) itself
    assert all(len(h) < 40 for h in nb.header)
    with pytest.raises(ValueError, match="dt = 0.01"):
        nplots.scheme_table(res, "particle_flow", particle_step=0.01)


def test_expected_floors_are_the_mean_of_the_statistic_between_exact_samples():
    res = [_res("particle_flow", 2, 1.0, 1.0, tau=0.001)]
    floors = nplots.expected_floors(res, n_pairs=4000, seed=3)
    ref = metrics.flow_noise_floor(100, 1.2, 2, 1.0, n_pairs=4000, generator=torch.Generator().manual_seed(3))
    assert floors[100, 2, 1.0, 1.2] == pytest.approx(ref, rel=1e-12)
    assert set(floors) == {(100, 2, 1.0, 0.4), (100, 2, 1.0, 1.2)}


def test_one_colour_per_backend_across_panels():
    c = fplots.backend_colour
    assert c("sliced iid P=1000") == c("sliced iid P=100") == c("iid")
    assert c("sliced orthogonal P=100") == c("orthogonal") != c("iid")
    assert c("blocked (exact)") == c("blocked") != c("dense")
    assert c("something else") == "0.4"


def test_markdown_tables_keep_negative_exponents_on_one_line():
    from mmdflow.plots.tables import Table

    md = Table(["$t = 1e-3$", "b"], [["4.8e-4", 1.2e-5], ["x-y", "e-3"]])._repr_markdown_()
    assert "4.8e\u22124" in md and "1.2e\u221205" in md          # minus sign: no line break inside the number
    assert "$t = 1e-3$" in md and "x-y" in md and "| e-3 |" in md  # math, words and non-numbers untouched
