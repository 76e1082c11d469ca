# ---
# jupyter:
#   jupytext:
#     formats: py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # MMD flows on MNIST
#
# :::{admonition} About this chapter
# :class: note
# - **Reproduces:** the MNIST experiment of {cite:t}`altekrueger2023neural` (Sec. 6.2 there): 25 particles that
#   start as one grey image flow toward 100 handwritten digits, with the neural backward, neural forward and
#   particle scheme.
# - **Built with:** the {glue:md}`profile:myst` profile ({glue:md}`settings:myst`).
# - **Run time:** {glue:md}`runtime:myst` on the machine that built this page.
# - **Deviations from the paper's settings in this build:** {glue:md}`deviations:myst`
# - **Judged by:** the distance $\mathcal D_K^2$ to the 100 target digits, its ratio to the particle flow's, and an
#   independent digit classifier (the *judge*, below), which the paper does not use: the paper shows the digits.
# - **Download:** {download}`notebook (.ipynb) <05_mnist.ipynb>`,
#   {download}`Jupytext source (.py) <05_mnist.py>`.
# :::
#
# The schemes of the book do not care about the dimension. Here the particles are images of
# $28\times28$ pixels, points of $\mathbb R^{784}$, and the target $\nu$ is the empirical measure of
# 100 handwritten digits. The flow is the Wasserstein gradient flow of
# $\mathcal D_K^2(\cdot,\nu)$ with the Riesz kernel $K(x,y) = -\lVert x-y\rVert$ (Section 6.2 of
# {cite:t}`altekrueger2023neural`): 25 particles start as one and the same uniformly grey image and
# flow toward the digits.
#
# * **Target.** The paper uses the first 100 images of the MNIST *training* split; this book ships only the
#   10,000-image *test* split, so we use **the first 100 test images** (file order, no shuffling). Pixels are
#   in $[0, 1]$. The data are read by `mmdflow.data.load_mnist` from the canonical files (md5-checked) in
#   `$MMDFLOW_DATA/mnist/`; the chapter stops with an error if they are missing.
# * **Start.** $\mu_0 = \delta_{x_0}$ with $x_0$ the constant image $0.5$: the neural schemes start at the
#   exact Dirac; the particle flow at the Dirac perturbed by $10^{-9}$.
# * **Schemes.** Neural backward (NB), neural forward (NF) and the particle flow (PF) of the previous chapters.
#   Each scheme runs through constant-step segments; in this build: {glue:md}`schemes:myst`.
#   A neural run keeps one network and one optimiser for all steps of a segment (warm start); a new segment
#   starts a new network, which gets more Adam iterations on its first step. The `paper` profile uses the
#   paper's step schedule ($\tau = 0.5$ until $t=5$, then 1, 2, 3 and 6 up to $t = 48000$) and networks (width
#   2048, three hidden layers, 5000 Adam iterations on the first step and 2000 on the others; a GPU job); the
#   `quick` profile of the tests stops long before the digits form.

# %% tags=["parameters", "hide-input"]
profile = "quick"          # "quick": about a minute on 2 CPU cores | "book": the website (CPU) | "paper": the paper's settings (GPU)
seed = 0
device = None              # None: GPU when present
data_dir = None            # None: $MMDFLOW_DATA (files in <dir>/mnist/ or <dir>)
n_target = 100             # first images of the test split
n_particles = 25
checkpoint_dir = {"quick": None, "book": "../build/checkpoints/book/05_mnist", "paper": "../build/checkpoints/05_mnist"}
animation_frames = 10
torch_threads = {"quick": 1, "book": 1, "paper": None}  # CPU threads (mmdflow.runtime.cpu_threads); None: torch's choice
# (tau, end time) of each constant-step segment; the paper uses one schedule for all schemes
paper_schedule = [(0.5, 5.0), (1.0, 25.0), (2.0, 50.0), (3.0, 6000.0), (6.0, 48000.0)]
nb_segments = {"quick": [(20.0, 600.0)], "book": [(10.0, 3000.0)], "paper": paper_schedule}
nf_segments = {"quick": [(2.0, 20.0), (10.0, 200.0)], "book": [(2.0, 20.0), (10.0, 3000.0)], "paper": paper_schedule}   # explicit: needs smaller steps
pf_segments = {"quick": [(1.0, 51.0), (3.0, 3000.0)], "book": [(1.0, 51.0), (3.0, 3000.0)], "paper": paper_schedule}
# the networks of the backward (nb_) and forward (nf_) scheme
nb_network = {"quick": dict(width=512, hidden_layers=2, lr=1e-3), "book": dict(width=1024, hidden_layers=2, lr=1e-3),
              "paper": dict(width=2048, hidden_layers=3, lr=1e-3)}
nf_network = {"quick": dict(width=512, hidden_layers=2, lr=1e-3), "book": dict(width=512, hidden_layers=2, lr=1e-3),
              "paper": dict(width=2048, hidden_layers=3, lr=1e-3)}
# Adam iterations on the first step of a segment and on the later steps
nb_iterations = {"quick": dict(iterations_start=150, iterations=15), "book": dict(iterations_start=300, iterations=100),
                 "paper": dict(iterations_start=5000, iterations=2000)}
nf_iterations = {"quick": dict(iterations_start=60, iterations=8), "book": dict(iterations_start=200, iterations=100),
                 "paper": dict(iterations_start=5000, iterations=2000)}
evolution_times = [0, 1, 2, 5, 20, 60, 150, 600, 1200, 3000, 6000, 48000]   # wanted columns (nearest snapshots)
evolution_particles = 5    # particles (rows) per scheme in the evolution figure
judge = {"quick": dict(epochs=1), "book": dict(epochs=3), "paper": dict(epochs=3)}   # digit judge (DigitJudgeConfig)
pf_backend = "blocked"     # "blocked": exact sums (cheapest at 125 points); "sliced": sorting-based estimate (chapter 7)

# %% tags=["hide-input"]
import os
import time

import matplotlib.pyplot as plt
import torch
from IPython.display import display

import mmdflow
from mmdflow import data, experiments, flows, metrics, schemes
from mmdflow.energies import DiscrepancyEnergy, SlicedDiscrepancyEnergy
from mmdflow.experiments import mnist as digits
from mmdflow.kernels import Riesz
from mmdflow.plots import mnist as mplots
from mmdflow.plots import targets as tplots
from mmdflow.plots import use_style
from mmdflow.plots.tables import Table, glue_markdown
from mmdflow.summation.directions import span_basis

# %% tags=["hide-input"]
t_start = time.perf_counter()
(nb_segments, nf_segments, pf_segments, nb_network, nf_network, nb_iterations, nf_iterations, checkpoint_dir,
 torch_threads, judge) = mmdflow.for_profile(profile, nb_segments, nf_segments, pf_segments, nb_network, nf_network,
                                             nb_iterations, nf_iterations, checkpoint_dir, torch_threads, judge)
device = torch.device(device) if device else mmdflow.default_device()
mmdflow.runtime.cpu_threads(torch_threads, device)
use_style()
build_dir = mmdflow.runtime.find_upward("book/_toc.yml").parents[1] / "build"
print(f"profile={profile}, device={device}, particle-flow backend={pf_backend}")


# %% tags=["remove-cell"]
def steps_text(segments):
    """'tau = 2 up to t = 20, then 10 up to t = 3000'"""
    parts = [f"{tau:g} up to $t = {t:g}$" for tau, t in segments]
    return r"$\tau$ = " + ", then ".join(parts)


iters = {"neural_backward": nb_iterations, "neural_forward": nf_iterations}
networks = {"neural_backward": nb_network, "neural_forward": nf_network}


def network_text(net):
    """'width 1024 with 2 hidden layers'"""
    return f"width {net['width']} with {net['hidden_layers']} hidden layers"


schedule = {"neural_backward": nb_segments, "neural_forward": nf_segments, "particle_flow": pf_segments}
schemes_md = "; ".join(
    f"{schemes.label(name)}: {steps_text(schedule[name])}"
    + (f", {iters[name]['iterations']} Adam iterations per step ({iters[name]['iterations_start']} on a segment's "
       f"first step)" if name in iters else f" (float64, {pf_backend} sums)") for name in schedule)
schemes_md += "; networks of " + " and ".join(
    f"{network_text(networks[name])} ({schemes.short_label(name)}), Adam step {networks[name]['lr']:g}"
    for name in networks)
glue_markdown(
    profile=f"`{profile}`",
    settings=(f"end times $t$ = {nb_segments[-1][1]:g} (NB), {nf_segments[-1][1]:g} (NF) and {pf_segments[-1][1]:g} "
              f"(PF), network width {nb_network['width']} (NB) and {nf_network['width']} (NF), "
              f"{nb_iterations['iterations']} (NB) and "
              f"{nf_iterations['iterations']} (NF) Adam iterations per step"),
    schemes=schemes_md,
    deviations=(
        f"the target is the first {n_target} *test* digits (the paper: the first 100 *training* digits); "
        + ("the paper's networks and step schedule" if all(net["width"] == 2048 and net["hidden_layers"] == 3
                                                           for net in networks.values())
           and nb_segments == paper_schedule else
           f"networks of {network_text(nb_network)} (NB) and {network_text(nf_network)} (NF) (the paper: 2048 "
           f"with 3), {nb_iterations['iterations']} (NB) and {nf_iterations['iterations']} (NF) Adam iterations per "
           f"step (the paper: 2000, and 5000 on the first step), steps of {steps_text(nb_segments)} (NB), "
           f"{steps_text(nf_segments)} (NF) and {steps_text(pf_segments)} (PF) instead of the paper's schedule "
           f"$\\tau$ = 0.5, 1, 2, 3, 6 up to $t = 48000$ for all three")
        + "; float32 networks and a float64 particle flow on a CPU (the paper: a GPU)."))

# %% [markdown]
# ## The target digits

# %% mystnb={"figure": {"caption": "The target $\\nu$: the first 100 images of the MNIST test split, in file order (10 per row), each digit drawn at twice its native $28\\times28$ pixels.", "name": "fig-mnist-target"}}
mnist_all = data.load_mnist(data_dir)
y = mnist_all.flat()[:n_target].to(device)
fig = mplots.mosaic_figure([[(mplots.canvas(y, ncols=10), f"the {n_target} target digits")]], scale=2.0)
plt.show()

# %% [markdown]
# ## An independent digit judge
#
# $\mathcal D_K^2$ compares two measures; it does not say whether each of the 25 particles *looks like a digit*.
# To measure that, the chapter trains a small convolutional classifier (two $5\times5$ convolutions, one hidden
# layer; `mmdflow.experiments.mnist.train_digit_judge`) on MNIST test images that are **not** among the 100
# targets, and keeps a further part of the test split aside to measure its accuracy. Applied to a set of
# particles (pixels clipped to $[0, 1]$, as in the pictures) it reports the **mean top-class probability** (how
# sure it is, on average, that a particle is *some* digit) and the **share of particles above 0.9**. Both are
# stand-ins for a reader's eye, not ground truth: a sharp but odd-looking digit can score low, a blurry one
# that resembles a "1" can score high.

# %%
judge_cfg = digits.DigitJudgeConfig(exclude=n_target, **judge)
judge_net = digits.train_digit_judge(mnist_all.images, mnist_all.labels, judge_cfg, cache_dir=build_dir / "cache")
on_targets = judge_net.score(y)
held_out = judge_net.score(mnist_all.images[judge_cfg.n_train_end:])
grey = judge_net.score(y.new_full((1, y.shape[1]), 0.5))
Table(["images", "count", "accuracy", "mean top-class probability", "share above 0.9"],
      [["held-out test digits", judge_net.n_held_out, f"{judge_net.accuracy:.3f}", f"{held_out.mean_confidence:.3f}",
        f"{held_out.share_above:.2f}"],
       ["the target digits", n_target, "(never seen)", f"{on_targets.mean_confidence:.3f}",
        f"{on_targets.share_above:.2f}"],
       ["the grey start image", 1, "-", f"{grey.mean_confidence:.3f}", f"{grey.share_above:.0f}"]],
      caption=f"the digit judge: trained on test images {n_target + 1}-{judge_cfg.n_train_end} "
              f"({judge_net.n_train} images, {judge_cfg.epochs} epochs), accuracy measured on the "
              f"{judge_net.n_held_out} test images from {judge_cfg.n_train_end + 1} on")

# %% [markdown]
# ## Running the three schemes
#
# **Particle-flow backend.** With 25 particles and 100 digits an exact step is the cheapest: one GEMM-based
# pass over 125 points (`backend="blocked"`), about a millisecond, against tens of milliseconds for a sliced
# step with 1000 directions. Pass `-p pf_backend sliced` for the sliced backend of chapter 7
# (`mmdflow.energies.SlicedDiscrepancyEnergy`, after {cite:t}`hertrich2024sliced`): every step draws 1000
# fresh random directions, each kernel sum becomes a sort along each direction, and the directions are drawn in
# the affine span of the points, of dimension $k \le 124$ (`mmdflow.summation.directions.span_basis`), so that
# the error scales with $\sqrt{k}$ instead of $\sqrt{d}$ (measured below). Sliced steps pay off from a few
# thousand points on (chapter 7). The chapter records the *exact* $\mathcal D_K^2$ of the snapshots either way.
#
# The `book` profile's long neural runs save a checkpoint after every step (`build/checkpoints/book/05_mnist`),
# so an interrupted build resumes where it stopped; the times below add up the time spent in every resumed part.

# %%
energy = DiscrepancyEnergy(Riesz(1.0), y, backend="blocked")   # exact; faster than "dense" in d = 784
y64 = y.double()                                                # the particle flow runs in float64
x_grey = torch.full((n_particles, y.shape[1]), 0.5, device=device)
e64 = (SlicedDiscrepancyEnergy(Riesz(1.0), y64, generator=torch.Generator().manual_seed(seed))
       if pf_backend == "sliced" else DiscrepancyEnergy(Riesz(1.0), y64, backend=pf_backend))
x0_pf = flows.perturbed_dirac(n_particles, y.shape[1], centers=x_grey[:1].double(),
                              generator=torch.Generator().manual_seed(seed))

# %%
t_runs = time.perf_counter()
runs = {name: experiments.run_neural_segments(name, energy, x_grey, schedule[name], **networks[name], seed=seed,
                                              checkpoint_dir=checkpoint_dir,
                                              schedule=dict(iters[name], batch_size=n_particles))   # all particles
        for name in ("neural_backward", "neural_forward")}
runs["particle_flow"] = experiments.run_particle_segments(e64, x0_pf, pf_segments)
t_runs = time.perf_counter() - t_runs       # this execution's time in the runs (less when resumed)
runs = experiments.rescore(runs, energy)    # exact values (a sliced particle flow records only estimates)
judged = {scheme: digits.judge_trajectory(judge_net, tr) for scheme, tr in runs.items()}
final = {scheme: float(tr.energies[-1]) for scheme, tr in runs.items()}
ratio = {scheme: final[scheme] / final["particle_flow"] for scheme in runs}
particles_file = mmdflow.runtime.records_dir(profile) / "05_mnist_particles.pt"
digits.save_final_particles(runs, particles_file)
Table(["scheme", "snapshots", "end $t$", r"final $\mathcal D_K^2$", "time in the scheme"],
      [[schemes.label(s), len(tr.times), f"{float(tr.times[-1]):g}", f"{final[s]:.4f}", f"{tr.wall_time:.0f} s"]
       for s, tr in runs.items()], caption="the three runs")

# %% [markdown]
# **How good is one sliced gradient?** At two states of the particle flow, early and last, the relative
# error $\|g - g_{\text{exact}}\| / \|g_{\text{exact}}\|$ of the sliced gradient (root mean square over five
# draws of 1000 directions), with the directions drawn in the span of the points and in all of
# $\mathbb R^{784}$, and the time of one gradient ($k$: dimension of the span; every estimator is called once
# before the timing, so that one-off set-up costs such as compilation are not counted). Near the end the
# particles are close to a stationary state: the exact gradient is small there (the forces balance) while the
# slicing noise is not, so the relative error exceeds 1. A sliced flow still settles, because each step draws
# new directions and the noise averages out over the steps; its final $\mathcal D_K^2$ (`-p pf_backend sliced`)
# is close to that of the exact flow above.

# %%
pf = runs["particle_flow"]
exact64 = DiscrepancyEnergy(Riesz(1.0), y64, backend="blocked")
estimators = {"in the span": SlicedDiscrepancyEnergy(Riesz(1.0), y64, generator=torch.Generator().manual_seed(1)),
              r"in $\mathbb R^{784}$": SlicedDiscrepancyEnergy(Riesz(1.0), y64, subspace=False,
                                                             generator=torch.Generator().manual_seed(1)),
              "exact": exact64}
for est in estimators.values():             # warm-up: the first call pays one-off costs (compilation, buffers)
    est.gradient(pf.positions[-1].double())
rows = []
for i in (pf.index_of(20, tol=float("inf")), len(pf.times) - 1):
    x_i = pf.positions[i].double()
    errs = [metrics.gradient_error(est, exact64, x_i, draws=5) for est in estimators.values()]
    rows.append([f"{float(pf.times[i]):.0f}", span_basis(x_i, y64)[1].shape[1]]
                + [f"{e.relative_error:.2f}, {1e3 * e.seconds:.1f} ms" for e in errs])
Table(["$t$", "$k$"] + list(estimators), rows, caption="relative error of one gradient, time per gradient")

# %% [markdown]
# ## The particles along the flow
#
# Each scheme's first {glue:md}`n_rows:myst` particles (rows) at increasing times (columns), in the layout of the
# authors' own pictures, each digit at twice its native size (pixel values clipped to $[0, 1]$). All particles
# start as the same grey image; the neural schemes split the Dirac in their first step, the particle flow lets
# its tiny perturbation grow into noise. The particles then turn into blurry averages and later into individual
# digits. {glue:md}`evolution_text:myst`

# %% mystnb={"figure": {"caption": "This run: the first particles of each scheme (rows) at increasing times (columns; the time of each column above it), from the grey start image to the end of the run.", "name": "fig-mnist-evolution"}}
cols = {s: mplots.snapshot_columns(tr.times, [t for t in evolution_times if t <= float(tr.times[-1])])[-10:]
        for s, tr in runs.items()}
rows_fig = []
for s, tr in runs.items():
    canvas = mplots.evolution_canvas(tr, cols[s], range(evolution_particles))
    times_txt = ", ".join(f"{float(tr.times[c]):g}" for c in cols[s])
    rows_fig.append([(canvas, f"{schemes.label(s)}: $t$ = {times_txt}")])
fig = mplots.mosaic_figure(rows_fig, scale=2.0)
plt.show()

# %% mystnb={"figure": {"caption": "The authors' own result images for comparison (first 5 of the 10 particles they show, all 10 columns; the last column is $t = 48000$), made by the official code of the paper at its settings (networks of width 2048 with three hidden layers, 2000-5000 Adam iterations per step, the step schedule $\\tau$ = 0.5 to 6, target: the first 100 MNIST training digits). Source: repository FabianAltekrueger/NeuralWassersteinGradientFlows, commit 5d09b2f, files discrepancy/MNIST/*.png, MIT licence, copyright 2023 Fabian Altekrueger (licence text shipped in mmdflow/data/paper_images/outputs/).", "name": "fig-mnist-paper-evolution"}}
paper_imgs = {s: data.mnist.paper_mnist_image(s) for s in runs}
paper_judged = {s: judge_net.score(torch.from_numpy(mplots.paper_final(img)).float()) for s, img in paper_imgs.items()}
fig = mplots.mosaic_figure([[(mplots.paper_rows(img, evolution_particles), f"authors' code: {schemes.label(s)}")]
                            for s, img in paper_imgs.items()], scale=2.0)
plt.show()

# %% [markdown]
# ## The final particles
#
# All 25 particles of each scheme at the end of this run (left), next to the 10 particles of the authors' image
# at $t = 48000$ (right), each digit at twice its native size. {glue:md}`final_text:myst`

# %% mystnb={"figure": {"caption": "Left: the 25 particles of each scheme at the end of this run, with the judge's mean top-class probability and final $\\mathcal D_K^2$ in the title. Right: the last column ($t = 48000$) of the authors' image of the same scheme, made by the official code at the paper's settings (source and licence as in the previous figure), with the judge's mean top-class probability of these 10 digits.", "name": "fig-mnist-final"}}
fig = mplots.mosaic_figure(
    [[(mplots.canvas(tr.positions[-1], ncols=5),
       f"this run, $t = {float(tr.times[-1]):g}$\njudge {float(judged[s].mean_confidence[-1]):.2f}, "
       + r"$\mathcal{D}_K^2$" + f" = {final[s]:.3f}"),
      (mplots.canvas(mplots.paper_final(paper_imgs[s]), ncols=5),
       f"authors' code, $t = 48000$\njudge {paper_judged[s].mean_confidence:.2f} (10 particles)")]
     for s, tr in runs.items()],
    row_labels=[schemes.label(s) for s in runs], scale=2.0, title_height=0.5)
plt.show()

# %% [markdown]
# ## Distance and judge along the flow
#
# {glue:md}`curves_text:myst`

# %% mystnb={"figure": {"caption": "$\\mathcal D_K^2$ between the 25 particles and the 100 target digits against time (time axis linear up to $t = 1$, logarithmic beyond), for the three schemes of this run; all start from the same grey image at $t = 0$.", "name": "fig-mnist-mmd"}}
ax = tplots.plot_energy_curves(runs, title="MNIST: discrepancy to the target", xscale="symlog")
plt.show()

# %% mystnb={"figure": {"caption": "The digit judge along this run: mean top-class probability of the 25 particles (left, dashed: the 100 target digits) and the share of particles the judge classifies with probability above 0.9 (right), against time.", "name": "fig-mnist-judge"}}
axes = mplots.plot_judge_curves(judged, reference=on_targets.mean_confidence)
plt.show()

# %%
display(tplots.animation_html(tplots.animate_mosaics(runs, frames=animation_frames), frame_format="jpeg",
                              caption="Animation: the 25 particles of each scheme flowing toward the digits."))

# %% [markdown]
# ## Summary
#
# For each scheme: its steps, Adam iterations per step, end time, the final $\mathcal D_K^2$ to the 100 target
# digits and its ratio to the particle flow's, the judge's scores of the final particles and the time spent in
# the scheme (training included, summed over resumed parts). As a yardstick, 25 particles that simply copy the
# first 25 target digits score {glue:md}`copy_ref:myst` (the optimum over 25 free particles lies lower: the
# particles may sit between digits).

# %%
ref = float(energy.value(y[:n_particles]))
summary_rows = []
for s, tr in runs.items():
    summary_rows.append(dict(scheme=s, steps=steps_text(schedule[s]),
                             iterations=iters[s]["iterations"] if s in iters else None, t=float(tr.times[-1]),
                             final=final[s], ratio=ratio[s], confidence=float(judged[s].mean_confidence[-1]),
                             share=float(judged[s].share_above[-1]), seconds=tr.wall_time))
mplots.judge_table(summary_rows, caption=f"profile {profile}, device {device}; the judge's held-out accuracy "
                                         f"{judge_net.accuracy:.3f}; times on a machine shared with other jobs "
                                         f"(load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores now)")

# %% tags=["remove-cell"]
pfj = judged["particle_flow"]
neural = [s for s in runs if s != "particle_flow"]
conf = {s: float(judged[s].mean_confidence[-1]) for s in runs}
share = {s: float(judged[s].share_above[-1]) for s in runs}
glue_markdown(
    n_rows=str(evolution_particles), copy_ref=f"$\\mathcal D_K^2 = {ref:.4f}$",
    evolution_text=(f"At the end of this run the judge's mean top-class probability is {conf['particle_flow']:.2f} "
                    f"for the particle flow's particles, "
                    + " and ".join(f"{conf[s]:.2f} for the {schemes.label(s)} scheme's" for s in neural)
                    + f" (the 100 target digits: {on_targets.mean_confidence:.2f})."),
    final_text=("In this run the final $\\mathcal D_K^2$ is "
                + " and ".join(f"{ratio[s]:.2f} times the particle flow's for the {schemes.label(s)} scheme"
                               for s in neural)
                + ", and the judge's mean top-class probability differs from the particle flow's by "
                + " and ".join(f"{conf[s] - conf['particle_flow']:+.2f} ({schemes.label(s)})" for s in neural)
                + "; it classifies "
                + ", ".join(f"{share[s] * n_particles:.0f} of the {n_particles} particles of the {schemes.label(s)} scheme"
                            for s in neural)
                + f" and {share['particle_flow'] * n_particles:.0f} of the particle flow's with probability above "
                f"0.9. The authors' particles at $t = 48000$ (right) score "
                + ", ".join(f"{paper_judged[s].mean_confidence:.2f}" for s in runs)
                + f" with the same judge ({', '.join(schemes.label(s) for s in runs)})."),
    curves_text=("In this run the three schemes lower $\\mathcal D_K^2$ from the grey start by factors of "
                 + ", ".join(f"{float(tr.energies[0]) / final[s]:.0f} ({schemes.label(s)})" for s, tr in runs.items())
                 + "; the judge's "
                 f"mean confidence rises from {float(pfj.mean_confidence[0]):.2f} for the grey start image to "
                 + ", ".join(f"{conf[s]:.2f} ({schemes.label(s)})" for s in runs) + " at the end."))

# %% tags=["hide-input"]
wall_time = time.perf_counter() - t_start
scheme_time = sum(tr.wall_time for tr in runs.values())
resumed = (f"; the runs resumed from checkpoints of earlier executions and spent {scheme_time:.0f} s in their steps "
           f"in all" if scheme_time > t_runs + 1.0 else "")
load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
glue_markdown(runtime=f"{wall_time / 60:.1f} minutes ({wall_time:.0f} s) in the `{profile}` profile{resumed} "
                      f"(load average {load:.1f} on {os.cpu_count()} cores at the end)")
print(f"chapter wall time: {wall_time:.1f} s")

# %% tags=["remove-cell"]
mmdflow.runtime.record_results("05_mnist", {
    "final": final, "copy_reference": ref,
    "n_particles": n_particles, "width_nb": nb_network["width"], "width_nf": nf_network["width"],
    "t_nb": float(runs["neural_backward"].times[-1]),
    "t_nf": float(runs["neural_forward"].times[-1]), "t_pf": float(runs["particle_flow"].times[-1]),
    "judge": {s: {"mean_confidence": conf[s], "share_above_0.9": share[s]} for s in runs},
    "judge_accuracy": judge_net.accuracy, "ratio_to_pf": ratio,
    "wall_time": {s: tr.wall_time for s, tr in runs.items()}}, profile=profile)

# %% [markdown]
# ## Key numbers
#
# The rounded results of this run (the chapter's tests check that a re-run reproduces them).

# %% tags=["hide-input"]
# NBVAL_CHECK_OUTPUT
Table(["scheme", "end $t$", r"final $\mathcal D_K^2$", "ratio to PF", "judge: mean conf.", "judge: above 0.9"],
      [[schemes.label(s), f"{float(tr.times[-1]):g}", f"{final[s]:.2g}", f"{ratio[s]:.2f}", f"{conf[s]:.2f}",
        f"{round(share[s] * n_particles)} of {n_particles}"] for s, tr in runs.items()],
      caption=f"{n_particles} particles, {n_target} target digits in {y.shape[1]} dimensions")
