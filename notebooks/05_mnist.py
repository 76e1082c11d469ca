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
# - **Built with:** the {glue:md}`profile` profile ({glue:md}`settings`).
# - **Run time:** {glue:md}`runtime` on the machine that built this page.
# - **Faithfulness:** the target is the first 100 images of the MNIST *test* split (the paper: the training
#   split). The `book` profile (this website) uses large steps, a network of width 512 with 2 hidden layers (the
#   paper: 2048 with 3), 100 Adam iterations per step (the paper: 2000) and end times of 600-3000 (the paper:
#   48000); the `quick` profile of the tests gives the networks 8-15 iterations per step and stops before the
#   digits form; the `paper` profile uses the paper's step schedule and networks (a GPU job).
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
#   The `paper` profile uses the paper's step schedule ($\tau = 0.5$ until $t=5$, then 1, 2, 3 and 6 up to
#   $T = 48000$) and networks (width 2048, three hidden layers); each constant-$\tau$ segment is one run whose
#   checkpoints let an interrupted build resume. The `quick` profile uses large steps, a smaller network
#   (width 512, two hidden layers), a few Adam iterations per step and a much shorter horizon ($t = 600$ for
#   NB, $t = 200$ for the explicit NF, $t = 3000$ for the cheap PF), so it stops long before the digits are sharp.

# %% tags=["parameters", "hide-input"]
profile = "quick"          # "quick": about a minute on 2 CPU cores | "book": the website (CPU) | "paper": the paper's settings (GPU)
seed = 0
device = None              # None: GPU when present
data_dir = None            # None: $MMDFLOW_DATA (files in <dir>/mnist/ or <dir>)
n_target = 100             # first images of the test split
n_particles = 25
checkpoint_dir = {"quick": None, "book": "../build/checkpoints/book/05_mnist", "paper": "../build/checkpoints/05_mnist"}
animation_frames = 10
torch_threads = {"quick": 1, "book": 1, "paper": None}  # the quick runs are small: extra CPU threads only add overhead
# (tau, end time) of each constant-step segment; the paper uses one schedule for all schemes
paper_schedule = [(0.5, 5.0), (1.0, 25.0), (2.0, 50.0), (3.0, 6000.0), (6.0, 48000.0)]
nb_segments = {"quick": [(20.0, 600.0)], "book": [(20.0, 600.0)], "paper": paper_schedule}
nf_segments = {"quick": [(2.0, 20.0), (10.0, 200.0)], "book": [(2.0, 20.0), (10.0, 600.0)], "paper": paper_schedule}   # explicit: needs smaller steps
pf_segments = {"quick": [(1.0, 51.0), (3.0, 3000.0)], "book": [(1.0, 51.0), (3.0, 3000.0)], "paper": paper_schedule}
network = {"quick": dict(width=512, hidden_layers=2, lr=1e-3), "book": dict(width=512, hidden_layers=2, lr=1e-3),
           "paper": dict(width=2048, hidden_layers=3, lr=1e-3)}
# Adam iterations on the first step of a segment and on the later steps
nb_iterations = {"quick": dict(iterations_start=150, iterations=15), "book": dict(iterations_start=300, iterations=100),
                 "paper": dict(iterations_start=5000, iterations=2000)}
nf_iterations = {"quick": dict(iterations_start=60, iterations=8), "book": dict(iterations_start=200, iterations=100),
                 "paper": dict(iterations_start=5000, iterations=2000)}
snapshot_times = {"quick": [0, 20, 200, 3000], "book": [0, 20, 200, 600, 3000], "paper": [0, 2, 150, 6000, 48000]}   # columns of the particle grid
pf_backend = "blocked"     # "blocked": exact sums (cheapest at 125 points); "sliced": sorting-based estimate (chapter 7)

# %% tags=["hide-input"]
import time
from pathlib import Path

import matplotlib.pyplot as plt
import torch
from IPython.display import display

import mmdflow
from mmdflow import data, experiments, flows, metrics
from mmdflow.energies import DiscrepancyEnergy, SlicedDiscrepancyEnergy
from mmdflow.kernels import Riesz
from mmdflow.plots import targets as tplots
from mmdflow.plots import use_style
from mmdflow.plots.tables import Table, glue_markdown
from mmdflow.summation.directions import span_basis

# %% tags=["hide-input"]
t_start = time.perf_counter()
(nb_segments, nf_segments, pf_segments, network, nb_iterations, nf_iterations, snapshot_times, checkpoint_dir,
 torch_threads) = mmdflow.for_profile(profile, nb_segments, nf_segments, pf_segments, network, nb_iterations,
                                      nf_iterations, snapshot_times, checkpoint_dir, torch_threads)
if torch_threads:
    torch.set_num_threads(torch_threads)
device = torch.device(device) if device else mmdflow.default_device()
use_style()
print(f"profile={profile}, device={device}, particle-flow backend={pf_backend}")

# %% tags=["remove-cell"]
glue_markdown(profile=f"`{profile}`", settings=f"neural backward until t = {nb_segments[-1][1]:g}, network width "
              f"{network['width']}, {nb_iterations['iterations']} Adam iterations per step")

# %% [markdown]
# ## The target digits

# %% mystnb={"figure": {"caption": "The target: the first 100 images of the MNIST test split.", "name": "fig-mnist-target"}}
mnist = data.load_mnist(data_dir, n=n_target)
y = mnist.flat().to(device)
ax = tplots.image_mosaic(y, ncols=20, title=f"target: first {n_target} MNIST test images "
                                            f"(labels {torch.bincount(mnist.labels, minlength=10).tolist()})")
ax.figure.set_size_inches(7.0, 2.1)
ax.set_xlabel("images in file order, 20 per row")
plt.show()

# %% [markdown]
# ## Running the three schemes
#
# **Particle-flow backend.** With 25 particles and 100 digits an exact step is the cheapest: one GEMM-based
# pass over 125 points (`backend="blocked"`), about a millisecond, against tens of milliseconds for a sliced
# step with 1000 directions. Pass `-p pf_backend sliced` for the sliced backend of chapter 7
# (`mmdflow.energies.SlicedDiscrepancyEnergy`, after {cite:t}`hertrich2024sliced`): every step draws 1000
# fresh random directions, each kernel sum becomes a sort along each direction, and the directions are drawn in the affine span of the points, of
# dimension $k \le 124$ (`mmdflow.summation.directions.span_basis`), so that the error scales with
# $\sqrt{k}$ instead of $\sqrt{d}$ (measured below). Sliced steps pay off from a few thousand points on
# (chapter 7). The chapter records the *exact* $\mathcal D_K^2$ of the snapshots either way.
#
# Each scheme runs through the constant-step segments of the profile. A neural run keeps one network and
# one optimiser for all steps of a segment (warm start); a new segment starts a new network, which gets
# more iterations on its first step.

# %%
energy = DiscrepancyEnergy(Riesz(1.0), y, backend="blocked")   # exact; faster than "dense" in d = 784
y64 = y.double()                                                # the particle flow runs in float64
x_grey = torch.full((n_particles, y.shape[1]), 0.5, device=device)
e64 = (SlicedDiscrepancyEnergy(Riesz(1.0), y64, generator=torch.Generator().manual_seed(seed))
       if pf_backend == "sliced" else DiscrepancyEnergy(Riesz(1.0), y64, backend=pf_backend))
x0_pf = flows.perturbed_dirac(n_particles, y.shape[1], centers=x_grey[:1].double(),
                              generator=torch.Generator().manual_seed(seed))

# %%
neural_options = dict(**network, batch_size=n_particles, seed=seed, checkpoint_dir=checkpoint_dir)
runs = {"neural backward": experiments.run_neural_segments("neural backward", energy, x_grey, nb_segments,
                                                           schedule=nb_iterations, **neural_options),
        "neural forward": experiments.run_neural_segments("neural forward", energy, x_grey, nf_segments,
                                                          schedule=nf_iterations, **neural_options),
        "particle flow": experiments.run_particle_segments(e64, x0_pf, pf_segments)}
runs = experiments.rescore(runs, energy)    # exact D_K^2 (a sliced particle flow records only estimates)
for scheme, tr in runs.items():
    print(f"{scheme:<15}: t = {float(tr.times[-1]):.0f}, D_K^2 {float(tr.energies[0]):.3f} -> "
          f"{float(tr.energies[-1]):.4f}, {tr.wall_time:.1f} s")

# %% [markdown]
# **How good is one sliced gradient?** At two states of the particle flow, early and last, the relative
# error $\|g - g_{\text{exact}}\| / \|g_{\text{exact}}\|$ of the sliced gradient (root mean square over five
# draws of 1000 directions), with the directions drawn in the span of the points and in all of
# $\mathbb R^{784}$, and the time of one gradient ($k$: dimension of the span). Near the end the particles
# are close to a stationary state: the exact gradient is small there (the forces balance) while the slicing
# noise is not, so the relative error exceeds 1. A sliced flow still settles, because each step draws new
# directions and the noise averages out over the steps; its final $\mathcal D_K^2$ (`-p pf_backend sliced`) is
# close to that of the exact flow above.

# %%
pf = runs["particle flow"]
exact64 = DiscrepancyEnergy(Riesz(1.0), y64, backend="blocked")
estimators = {"in the span": SlicedDiscrepancyEnergy(Riesz(1.0), y64, generator=torch.Generator().manual_seed(1)),
              "in R^784": SlicedDiscrepancyEnergy(Riesz(1.0), y64, subspace=False,
                                                  generator=torch.Generator().manual_seed(1)),
              "exact": exact64}
rows = []
for i in (pf.index_of(20, tol=float("inf")), len(pf.times) - 1):
    x_i = pf.positions[i].double()
    errs = [metrics.gradient_error(est, exact64, x_i, draws=5) for est in estimators.values()]
    rows.append([f"{float(pf.times[i]):.0f}", span_basis(x_i, y64)[1].shape[1]]
                + [f"{e.relative_error:.2f}, {1e3 * e.seconds:.1f} ms" for e in errs])
Table(["t", "k"] + list(estimators), rows, caption="relative error of one gradient, time per gradient")

# %% [markdown]
# ## The particles along the flow
#
# Each panel shows the 25 particles (pixel values clipped to $[0, 1]$ for display) at one time. All
# particles start as the same grey image; the neural schemes split the Dirac in their first step, the
# particle flow lets its tiny perturbation grow into noise. The particles then turn into blurry averages
# and finally approach individual digits.

# %% mystnb={"figure": {"caption": "The 25 particles of each scheme (rows) at increasing times (columns), starting from the constant grey image.", "name": "fig-mnist-grid"}}
fig = tplots.mosaic_grid(runs, snapshot_times, panel=2.0, suptitle="25 particles flowing toward 100 MNIST digits")
plt.show()

# %% mystnb={"figure": {"caption": "$\\mathcal D_K^2$ between the 25 particles and the 100 target digits against time (time axis linear up to $t = 1$, logarithmic beyond), for the three schemes; all start from the same grey image at $t = 0$.", "name": "fig-mnist-mmd"}}
ax = tplots.plot_energy_curves(runs, title="MNIST: discrepancy to the target", xscale="symlog")
plt.show()

# %%
display(tplots.animation_html(tplots.animate_mosaics(runs, frames=animation_frames), frame_format="jpeg",
                              caption="Animation: the 25 particles of each scheme flowing toward the digits."))

# %% [markdown]
# ## Summary
#
# For each scheme: the final time, the final $\mathcal D_K^2$ to the 100 target digits and the time spent
# in the scheme (training included), for the profile this page was built with. As a yardstick, the
# discrepancy between the first 25 target digits themselves and the 100 targets is printed too: 25 particles
# that simply copy 25 of the digits would score about this. (The optimum over 25 free particles lies lower:
# the particles may sit between digits.)

# %%
ref = float(energy.value(y[:n_particles]))
print(f"reference: D_K^2(first 25 targets, 100 targets) = {ref:.4f}")
tplots.runs_table({"MNIST": runs}, caption=f"profile {profile}, device {device}")

# %% tags=["hide-input"]
wall_time = time.perf_counter() - t_start
glue_markdown(runtime=f"{wall_time / 60:.1f} minutes ({wall_time:.0f} s) in the `{profile}` profile")
print(f"chapter wall time: {wall_time:.1f} s")

# %% tags=["remove-cell"]
mmdflow.runtime.record_results("05_mnist", {
    "final": {k: float(tr.energies[-1]) for k, tr in runs.items()}, "copy_reference": ref,
    "n_particles": n_particles, "width": network["width"], "t_nb": float(runs["neural backward"].times[-1]),
    "t_nf": float(runs["neural forward"].times[-1]), "t_pf": float(runs["particle flow"].times[-1])},
    profile=profile)

# %% tags=["hide-input"]
# NBVAL_CHECK_OUTPUT
print(f"target: {tuple(y.shape)}, labels {torch.bincount(mnist.labels, minlength=10).tolist()}")
for scheme, tr in runs.items():
    e0, e1 = float(tr.energies[0]), float(tr.energies[-1])
    print(f"{scheme}: {tuple(tr.positions.shape[1:])}, t = {float(tr.times[-1]):g}, D_K^2 {e0:.3g} -> {e1:.1e}, "
          f"reduced more than 10x: {e1 < e0 / 10}")
