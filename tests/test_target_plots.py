"""The large final-state panels and the settings sweep plot of chapter 4."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402

from mmdflow import data  # noqa: E402
from mmdflow.plots import targets as tplots  # noqa: E402


def test_final_states_are_half_the_text_width_with_the_box_aspect():
    x = torch.rand(500, 2, generator=torch.Generator().manual_seed(0)) - 0.5
    lim = (-0.62, 0.62, -0.48, 0.48)
    rows = [[("ours", x), ("authors", data.paper_output_image("maxmoritz_backward_scheme"))],
            [("ours", x), ("authors", None)]]
    fig = tplots.final_states(rows, lim=lim)
    fig.canvas.draw()
    w_in = fig.get_figwidth()
    axes = fig.axes
    assert len(axes) == 4
    ours = axes[0].get_window_extent()
    # a particle panel spans at least 45% of the figure (= text) width, with the aspect ratio of the box
    assert ours.width / (w_in * fig.dpi) > 0.45
    assert abs(ours.height / ours.width - 0.96 / 1.24) < 0.03
    assert axes[0].get_xlim() == (-0.62, 0.62) and len(axes[0].collections[0].get_offsets()) == 500
    assert axes[1].images and not axes[3].images            # the authors' image; "no image" where there is none
    plt.close(fig)


def test_sweep_plot_draws_one_line_per_scheme_and_the_reference():
    entries = [{"scheme": s, "tau": tau, "iterations": it, "final_dk2": v}
               for s, base in (("neural_backward", 1e-3), ("neural_forward", 2e-3))
               for tau, it, v in ((1.0, 20, base), (1.0, 50, base / 2), (0.5, 50, base / 3), (2.0, 50, base * 2))]
    ax = tplots.plot_sweep(entries, reference=1e-4)
    lines = [ln for ln in ax[0].get_lines() if ln.get_label() in ("neural backward", "neural forward")]
    assert len(lines) == 2
    nb = next(ln for ln in lines if ln.get_label() == "neural backward")
    assert np.allclose(nb.get_xdata(), [20, 50]) and np.allclose(nb.get_ydata(), [1e-3, 5e-4])
    tau_line = next(ln for ln in ax[1].get_lines() if ln.get_label() == "neural backward")
    assert np.allclose(tau_line.get_xdata(), [0.5, 1.0, 2.0])
    assert any(ln.get_label() == "particle flow" for ln in ax[0].get_lines())
    plt.close("all")
