"""The chapter-6 plots and tables of mmdflow.plots.wfr on small synthetic results: labelled axes, right rows."""

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

from mmdflow.experiments import ift  # noqa: E402
from mmdflow.experiments.seeds import SeedRuns  # noqa: E402
from mmdflow.plots import wfr as wplots  # noqa: E402

F64 = torch.float64


def _runs():
    steps = torch.tensor([0.0, 5.0, 10.0], dtype=F64)
    mk = lambda f, e: SeedRuns(steps=steps, loss=torch.tensor([[1.0, 0.5, f], [1.0, 0.4, f]], dtype=F64),  # noqa: E731
                               wall=torch.ones(2, dtype=F64), first=None,
                               ess=torch.tensor([[10.0, e, e], [10.0, e, e]], dtype=F64),
                               zero_fraction=torch.tensor([[0.0, 0.5, 0.5]] * 2, dtype=F64),
                               energy_distance=torch.tensor([e, e], dtype=F64) / 10,
                               mmd2_alt=torch.tensor([0.1, 0.2], dtype=F64), sigma_alt=2.0)
    return {"a": mk(0.1, 2.0), "b": mk(0.2, 1.0)}


def test_weight_degeneracy_and_scores_table():
    fig = wplots.plot_weight_degeneracy(_runs(), title="t", n_particles=10)
    a0, a1 = fig.axes[:2]
    assert "effective sample size" in a0.get_ylabel() and "zero-weight" in a1.get_ylabel()
    assert a0.get_xlabel() == a1.get_xlabel() == "iteration"
    plt.close(fig)
    tab = wplots.scores_table({"T": _runs()})
    assert len(tab.rows) == 2 and "2" in tab.header[4]
    # a: lower training loss (rank 1) but larger energy distance (rank 2)
    assert tab.rows[0][-1] == "1 / 2" and tab.rows[1][-1] == "2 / 1"
    with pytest.raises(ValueError, match="weight statistics"):
        wplots.plot_weight_degeneracy({"c": _runs()["a"]._replace(ess=None)})


def test_final_vs_size_size_table_and_decay_plots():
    finals = {ift.MMD_FLOW: {100: [1.0, 1.2], 200: [0.8]}, ift.IFT_PURE: {100: [0.5, 0.7], 200: [0.4]}}
    ax = wplots.plot_final_vs_size(finals)
    assert ax.get_xlabel() == "particles $N$" and ax.get_xscale() == "log"
    plt.close(ax.figure)
    tab = wplots.size_table(finals, ift.MMD_FLOW)
    assert tab.rows[1][1].endswith("×0.55") and tab.rows[1][2].endswith("×0.50")
    decay = ift.decay_study([("prox", 1.0, 0.0), ("prox", 1.0, 0.1)], h=0.1, n_steps=5)
    fig = wplots.plot_decay(decay)
    assert all(a.get_yscale() == "log" for a in fig.axes[:2])
    plt.close(fig)
    assert [r[-2] for r in wplots.decay_table(decay).rows][0] == "yes"
