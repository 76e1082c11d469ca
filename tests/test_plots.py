"""The book's presentation helpers: tables, figure widths and fonts, animations, the median timings of chapter 7."""

import re

import matplotlib

matplotlib.use("Agg", force=False)

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

from mmdflow import analytic, flows, runtime  # noqa: E402
from mmdflow.experiments import fast  # noqa: E402
from mmdflow.experiments.interaction import InteractionResult, results_from_json  # noqa: E402
from mmdflow.plots import common, dirac, neural, targets  # noqa: E402
from mmdflow.plots.tables import Table, fmt_sig, glue_markdown, mean_std  # noqa: E402


@pytest.fixture(autouse=True)
def _style_and_close():
    common.use_style()
    yield
    plt.close("all")


def test_table_markdown_and_text():
    t = Table(["scheme", "final $\\mathcal D_K^2$", "n"], [["a|b", 1.23456e-4, 3], ["c", None, 10]],
              formats=[None, ".2e", None], caption="cap", note="note")
    md = t._repr_markdown_()
    assert md.splitlines()[0] == "**cap**"
    assert "| scheme | final $\\mathcal D_K^2$ | n |" in md
    assert "|:---|---:|---:|" in md                     # text left, numbers right
    assert "| a\\|b | 1.23e\u221204 | 3 |" in md      # pipes in cells escaped; the exponent's minus: no line break
    text = str(t).splitlines()
    assert text[0] == "cap" and text[-1] == "note" and len({len(line) for line in text[1:3]}) == 1


def test_table_checks_its_shape():
    with pytest.raises(ValueError, match="row 1 has 1 cells"):
        Table(["a", "b"], [[1, 2], [3]])
    with pytest.raises(ValueError, match="align"):
        Table(["a"], [[1]], align=["x"])


def test_number_formats():
    assert fmt_sig(0.0123) == "0.012" and fmt_sig(1.5e-5) == "1.5e-05" and fmt_sig(float("nan")) == "n/a"
    assert mean_std(0.04812, 0.0049) == "0.048 ± 0.005"


def test_glue_markdown_is_a_no_op_outside_a_kernel():
    glue_markdown(profile="`quick`")      # no IPython kernel here: nothing to glue, no error


def test_panels_fit_the_column_and_fonts_are_readable():
    fig, axes = common.panels(1, 2, height=3.0, width=12.0)
    assert fig.get_size_inches()[0] == pytest.approx(common.COLUMN_WIDTH)
    axes[0].plot([0, 1], [0, 1], label="a")
    common.legend_outside(axes[0], "below")
    fig.canvas.draw()
    sizes = [t.get_fontsize() for t in fig.findobj(matplotlib.text.Text) if t.get_text()]
    assert min(sizes) >= 8.5
    with pytest.raises(ValueError, match="where"):
        common.legend_outside(axes[1], "left")


def test_snapshot_grid_fits_the_column(gen):
    traj = flows.particle_flow(_interaction(), flows.perturbed_dirac(30, 2, generator=gen),
                               flows.ParticleFlowConfig(tau=0.1, n_steps=6, snapshot_every=1), progress=False)
    fig = common.snapshot_grid({"a": traj, "b": traj}, [0.0, 0.1, 0.2, 0.3, 0.4, 0.5], panel=2.4)
    assert fig.get_size_inches()[0] <= common.COLUMN_WIDTH


def _interaction():
    from mmdflow import energies, kernels

    return energies.InteractionEnergy(kernels.Riesz(1.0))


def test_radial_cdf_plots(gen):
    x = analytic.sample_flow(400, 1.2, 2, 1.0, gen)
    ax = neural.plot_radial_profile(x, 1.2, 1.0)
    steps, exact = ax.get_lines()[:2]
    assert steps.get_ydata()[-1] == pytest.approx(1.0) and exact.get_ydata().max() == pytest.approx(1.0)
    dirac.plot_radius_cdfs({0.5: analytic.sample_prox(300, 3, 0.5, gen), 1.0: analytic.sample_prox(300, 3, 1.0, gen)}, 3)


def test_benchmark_table_from_results():
    err = {"d2": 2e-4, "noise": 1e-4, "d2_std": 0.0, "noise_std": 0.0}
    res = results_from_json([{"scheme": "neural_backward", "d": 2, "r": 1.0, "iterations": 10, "n_particles": 5,
                              "tau": 0.1, "seed": 0, "wall_time": 1.0, "errors": {"0.4": err}, "radius": {},
                              "jko_errors": {"0.4": err}, "elapsed": 1.0, "n_repeats": 2}])
    assert isinstance(res[0], InteractionResult)
    md = neural.benchmark_table(res)._repr_markdown_()
    assert "| neural backward | 2 | 1 | 10 | 2.00e\u221204 | 2.0 |" in md and "| vs JKO |" in md


def test_animation_is_wide_with_a_clock_and_a_caption(gen):
    traj = flows.particle_flow(_interaction(), flows.perturbed_dirac(20, 2, generator=gen),
                               flows.ParticleFlowConfig(tau=0.1, n_steps=3, snapshot_every=1), progress=False)
    anim = targets.animate_particles({"particle_flow": traj, "neural_backward": traj}, frames=3, lim=1.0)
    fig = anim._fig
    assert fig.get_size_inches()[0] * fig.dpi >= 800
    anim._func(2)
    assert re.fullmatch(r"t = 0\.3", fig._suptitle.get_text())
    html = targets.animation_html(anim, caption="A <caption>").data
    assert '<figure class="mmdflow-animation">' in html and "<figcaption><p>A &lt;caption&gt;</p></figcaption>" in html


def test_time_backends_takes_the_median_of_repeats(monkeypatch):
    ticks = iter([0.0, 1.0, 1.0, 1.5, 1.5, 11.5])     # three runs of 1.0, 0.5 and 10 s: median 1.0
    monkeypatch.setattr(runtime.time, "perf_counter", lambda: next(ticks))   # the clock of runtime.timed
    monkeypatch.setattr(fast, "one_evaluation", lambda *a, **k: None)
    out = fast.time_backends(2, [100], [("dense", "dense", 1000)], repeats=3)
    assert out == {"dense": ([100], [1.0])}
    with pytest.raises(ValueError, match="repeats"):
        fast.time_backends(2, [100], [("dense", "dense", 1000)], repeats=0)


def test_ecdf_steps_to_one():
    ax = common.plot_ecdf(np.array([3.0, 1.0, 2.0]))
    line = ax.get_lines()[0]
    assert list(line.get_ydata()) == [0.0, 1 / 3, 2 / 3, 1.0] and list(line.get_xdata()) == [1.0, 1.0, 2.0, 3.0]
