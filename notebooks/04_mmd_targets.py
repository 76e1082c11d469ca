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
# # MMD flows toward images
#
# :::{admonition} About this chapter
# :class: note
# - **Reproduces:** the flows toward images of {cite:t}`altekrueger2023neural`: two point masses flowing into a
#   drawing (the analogue of their Fig. 1, Sec. 6.2) and the three examples of their App. F, each with the neural
#   backward, neural forward and particle scheme.
# - **Built with:** the {glue:md}`profile` profile ({glue:md}`settings`).
# - **Run time:** {glue:md}`runtime` on the machine that built this page.
# - **Faithfulness:** the drawing is a house drawn in code instead of the paper's picture. The `book` profile (this
#   website) keeps the paper's end times and network width but uses 300 particles and a few hundred Adam iterations
#   per step, against the paper's 2000-6000 particles and 1000-20000 iterations; the `quick` profile (the tests)
#   gives the networks ten times fewer iterations still and shows only the shapes of the flows; the `paper`
#   profile uses the paper's settings where it states them (a GPU job).
# - **Download:** {download}`notebook (.ipynb) <04_mmd_targets.ipynb>`,
#   {download}`Jupytext source (.py) <04_mmd_targets.py>`.
# :::
#
# The previous chapters let the interaction energy $\mathcal E_K$ blow a Dirac measure apart. Here a
# **target** $\nu$ is added: the particles follow the Wasserstein gradient flow of
#
# $$
# \mathcal F_\nu(\mu) = \mathcal D_K^2(\mu,\nu) = \mathcal E_K(\mu) + \mathcal V_{K,\nu}(\mu) + \mathcal E_K(\nu),
# \qquad K(x,y) = -\lVert x-y\rVert ,
# $$
#
# whose unique minimiser is $\mu=\nu$. The targets are pictures turned into point clouds, as in Section 6
# and Appendix F of {cite:t}`altekrueger2023neural`. We run the three schemes of the book on each
# experiment:
#
# * **neural backward** (NB): a JKO step per time step, the transport plan modelled by a generative network;
# * **neural forward** (NF): a steepest-descent step per time step, the velocity plan modelled by a network;
# * **particle flow** (PF): explicit Euler steps of the $N$-particle ODE, started from slightly perturbed
#   Diracs (a Dirac of coinciding particles feels no force).
#
# Four experiments: two point masses flowing into a line drawing (the analogue of the paper's Figure 1, whose
# "Max und Moritz" drawing we replace by a house drawn in code), a smiley (Appendix F, Example 1), a target
# made of two Diracs (Appendix F, Example 2), and a functional that is not a discrepancy at all
# (Appendix F, Example 3). The `quick` profile shrinks every experiment (fewer particles, larger time steps,
# far fewer network iterations) so that the chapter runs in a minute or two on a laptop CPU; the `paper`
# profile uses the paper's settings and needs a GPU.

# %% tags=["parameters", "hide-input"]
profile = "quick"          # "quick": minutes on 2 CPU cores | "book": the website (CPU) | "paper": the paper's settings (GPU)
seed = 0
device = None              # None: GPU when present
image = None               # path to your own picture (PNG/JPEG, dark ink on light paper); None: a house drawn in code
checkpoint_dir = {"quick": None, "book": "../build/checkpoints/book/04_mmd_targets", "paper": "../build/checkpoints/04_mmd_targets"}  # neural runs resume from here
n_held_out = 2000          # size of the fresh sample of each picture's density that scores the final particles
floor_repeats = 30         # i.i.d. samples of N points whose mean D_K^2 to the held-out sample is the floor
animation_frames = 16      # frames per animation (kept small: the animations are embedded in the page)
backend = "blocked"        # exact kernel sums of mmdflow.summation ("blocked" beats "dense" already at a few hundred points)
torch_threads = {"quick": 1, "book": 1, "paper": None}  # the quick runs are small: extra CPU threads only add overhead

# Each experiment: n particles (= n target samples), end time, network (width x hidden layers, Adam lr), batch
# size, and per neural scheme its time step tau, the Adam iterations of the first steps (t < 1) and of later
# steps; the particle flow (pf_tau) is explicit and takes smaller steps; snap_dt: time between stored snapshots.
# Experiment 1: two point masses -> a drawing (paper Fig. 1 / Sec. 6.2)
drawing = {
    "quick": dict(n=300, smoothing=1.0, t_end=100.0, width=128, hidden_layers=3, lr=3e-3,
                  batch=300, batch1=300, nf_batch=150, pf_tau=0.2, snap_dt=2.0,
                  backward=dict(tau=2.0, iterations_start=150, iterations=15),
                  forward=dict(tau=1.0, iterations_start=150, iterations=8)),
    "book":  dict(n=300, smoothing=1.0, t_end=100.0, width=128, hidden_layers=3, lr=3e-3,
                  batch=300, batch1=300, nf_batch=150, pf_tau=0.2, snap_dt=2.0,
                  backward=dict(tau=2.0, iterations_start=300, iterations=300),
                  forward=dict(tau=0.5, iterations_start=150, iterations=100)),
    "paper": dict(n=6000, smoothing=1.0, t_end=100.0, width=128, hidden_layers=5, lr=1e-3,
                  batch=6000, batch1=2000, nf_batch=6000, pf_tau=0.1, snap_dt=2.0,
                  backward=dict(tau=0.5, iterations_start=20000, iterations=10000),
                  forward=dict(tau=0.5, iterations_start=5000, iterations=1000)),
}
# Experiment 2: smiley (App. F, Ex. 1)
smiley = {
    "quick": dict(n=300, smoothing=2.0, t_end=50.0, width=128, hidden_layers=3, lr=3e-3,
                  batch=300, batch1=300, nf_batch=150, pf_tau=0.2, snap_dt=1.0,
                  backward=dict(tau=1.0, iterations_start=150, iterations=12),
                  forward=dict(tau=1.0, iterations_start=150, iterations=8)),
    "book":  dict(n=300, smoothing=2.0, t_end=50.0, width=128, hidden_layers=3, lr=3e-3,
                  batch=300, batch1=300, nf_batch=150, pf_tau=0.2, snap_dt=1.0,
                  backward=dict(tau=1.0, iterations_start=150, iterations=150),
                  forward=dict(tau=0.5, iterations_start=150, iterations=100)),
    "paper": dict(n=2000, smoothing=2.0, t_end=50.0, width=128, hidden_layers=5, lr=1e-3,
                  batch=2000, batch1=2000, nf_batch=2000, pf_tau=0.1, snap_dt=1.0,
                  backward=dict(tau=0.1, iterations_start=4000, iterations=2000),
                  forward=dict(tau=0.1, iterations_start=4000, iterations=2000)),
}
# Experiment 3: two Diracs -> two Diracs (App. F, Ex. 2)
two_diracs = {
    "quick": dict(n=300, t_end=4.0, width=128, hidden_layers=3, lr=3e-3,
                  batch=300, batch1=300, nf_batch=150, pf_tau=0.05, snap_dt=0.25,
                  backward=dict(tau=0.25, iterations_start=100, iterations=25),
                  forward=dict(tau=0.25, iterations_start=60, iterations=15)),
    "book":  dict(n=300, t_end=4.0, width=128, hidden_layers=3, lr=3e-3,
                  batch=300, batch1=300, nf_batch=150, pf_tau=0.05, snap_dt=0.25,
                  backward=dict(tau=0.25, iterations_start=300, iterations=100),
                  forward=dict(tau=0.25, iterations_start=300, iterations=100)),
    "paper": dict(n=2000, t_end=40.0, width=128, hidden_layers=5, lr=1e-3,
                  batch=2000, batch1=2000, nf_batch=2000, pf_tau=0.05, snap_dt=0.2,
                  backward=dict(tau=0.1, iterations_start=4000, iterations=2000),
                  forward=dict(tau=0.1, iterations_start=4000, iterations=2000)),
}
# Experiment 4: the implosion/explosion functional (App. F, Ex. 3; no settings in the paper: those of Ex. 1)
implosion = {
    "quick": dict(n=300, t_end=3.0, width=128, hidden_layers=3, lr=3e-3,
                  batch=300, batch1=300, nf_batch=150, pf_tau=0.02, snap_dt=0.1,
                  backward=dict(tau=0.1, iterations_start=40, iterations=10),
                  forward=dict(tau=0.1, iterations_start=40, iterations=10)),
    "book":  dict(n=300, t_end=3.0, width=128, hidden_layers=3, lr=3e-3,
                  batch=300, batch1=300, nf_batch=150, pf_tau=0.02, snap_dt=0.1,
                  backward=dict(tau=0.1, iterations_start=100, iterations=40),
                  forward=dict(tau=0.1, iterations_start=100, iterations=40)),
    "paper": dict(n=2000, t_end=3.0, width=128, hidden_layers=5, lr=1e-3,
                  batch=2000, batch1=2000, nf_batch=2000, pf_tau=0.01, snap_dt=0.1,
                  backward=dict(tau=0.05, iterations_start=4000, iterations=2000),
                  forward=dict(tau=0.05, iterations_start=4000, iterations=2000)),
}

# %% tags=["hide-input"]
import time
from pathlib import Path

import matplotlib.pyplot as plt
import torch
from IPython.display import display

import mmdflow
from mmdflow import data, experiments
from mmdflow.functionals import ImplosionExplosion
from mmdflow.plots import targets as tplots
from mmdflow.plots import snapshot_grid, use_style
from mmdflow.plots.tables import glue_markdown

# %% tags=["hide-input"]
t_start = time.perf_counter()
drawing, smiley, two_diracs, implosion, checkpoint_dir, torch_threads = mmdflow.for_profile(
    profile, drawing, smiley, two_diracs, implosion, checkpoint_dir, torch_threads)
drawing, smiley, two_diracs, implosion = (experiments.SchemeSettings(**s)
                                        for s in (drawing, smiley, two_diracs, implosion))
if torch_threads:
    torch.set_num_threads(torch_threads)
device = torch.device(device) if device else mmdflow.default_device()
use_style()
results = {}               # experiment -> {scheme: Trajectory}
scores = {}                # experiment -> held-out scores of the final particles
print(f"profile={profile}, device={device}, torch threads={torch.get_num_threads()}")

# %% tags=["remove-cell"]
glue_markdown(profile=f"`{profile}`", settings=f"{drawing.n} particles for the drawing, {smiley.n} for the smiley, "
              f"neural backward step {drawing.backward.tau:g} with {drawing.backward.iterations} Adam iterations "
              f"per step on the drawing")


# %% [markdown]
# ## Pictures as target measures
#
# A picture with dark ink on light paper becomes a probability density on the unit box
# $[-\tfrac12,\tfrac12]^2$: the ink is blurred by a Gaussian of a pixel or two (so that the target has no
# perfectly thin lines), a faint uniform background of 1% of the mass is added, and the target $\nu$ is an
# empirical measure of $M$ samples of that density (`mmdflow.data.image_to_samples`). The book draws its
# pictures in code; pass `-p image path/to/picture.png` to use your own.

# %% mystnb={"figure": {"caption": "The pictures drawn in code (top) and samples of the densities made from them (bottom): the target measures of this chapter.", "name": "fig-targets-pictures"}}
gen = torch.Generator().manual_seed(seed)
picture = data.house_image(100) if image is None else image
pictures = {"drawing" if image is None else Path(image).name: picture, "smiley": data.smiley_image(100)}
fig, axes = plt.subplots(2, len(pictures), figsize=(3.0 * len(pictures), 6.0), squeeze=False)
for k, (label, pic) in enumerate(pictures.items()):
    tplots.plot_image_target(data.grey_levels(pic), data.image_to_samples(pic, 2000, smoothing=1.0, generator=gen),
                             axes=axes[:, k], title=label)
fig.tight_layout()
plt.show()

# %% [markdown]
# ## Two point masses flowing into a drawing
#
# The analogue of the paper's Figure 1: half of the particles start at $(-\tfrac12, 0)$, the other half at
# $(\tfrac12, 0)$, and the target is the drawing. Both neural schemes start from the exact Diracs: the
# network splits each Dirac into a cloud in the very first step. The particle flow starts from Diracs
# perturbed by $10^{-9}$ and uses its own, smaller step (it is explicit and cheap).

# %%
s = drawing
y_draw = data.image_to_samples(picture, s.n, smoothing=s.smoothing,
                               generator=torch.Generator().manual_seed(seed + 1)).to(device)
centers = [[-0.5, 0.0], [0.5, 0.0]]
runs = results["drawing"] = experiments.run_target("drawing", y_draw, centers, s, backend=backend,
                                                   seed=seed, checkpoint_dir=checkpoint_dir, device=device)
scores["drawing"] = experiments.target_scores(
    runs, y_draw, data.image_to_samples(picture, n_held_out, smoothing=s.smoothing,
                                        generator=torch.Generator().manual_seed(seed + 100)),
    lambda n, g: data.image_to_samples(picture, n, smoothing=s.smoothing, generator=g), repeats=floor_repeats,
    seed=seed + 200)
tplots.runs_table({"drawing": runs})

# %% mystnb={"figure": {"caption": "Two point masses flowing into the drawing: neural backward (top), neural forward (middle) and particle flow (bottom) at t = 0, 4, 16, 100 (grey: target samples).", "name": "fig-targets-drawing"}}
fig = snapshot_grid(runs, [0, 4, 16, 100], target=y_draw, lim=(-0.62, 0.62, -0.55, 0.55), s=1.5,
                    suptitle="Two Diracs flowing to the drawing")
plt.show()

# %% mystnb={"figure": {"caption": "$\\mathcal D_K^2$ between the particles and the target drawing against time, for the three schemes.", "name": "fig-targets-drawing-mmd"}}
tplots.plot_energy_curves(runs, title="Two Diracs to the drawing: discrepancy to the target", xscale="symlog")
plt.show()

# %%
anim = tplots.animate_particles(runs, frames=animation_frames, target=y_draw, lim=(-0.62, 0.62, -0.55, 0.55))
display(tplots.animation_html(anim, caption="Animation: the three schemes flowing from two point masses into the "
                                            "drawing (grey: target samples)."))

# %% [markdown]
# ## A smiley (Appendix F, Example 1)
#
# The particles start in two Diracs at $(\pm1, 0)$, outside the picture, and flow into a smiley whose
# strokes are blurred by two pixels. The narrow gaps between the eyes and the face have to be crossed by
# mass coming from both sides.

# %%
s = smiley
y_smile = data.image_to_samples(data.smiley_image(100), s.n, smoothing=s.smoothing,
                                generator=torch.Generator().manual_seed(seed + 2)).to(device)
centers = [[-1.0, 0.0], [1.0, 0.0]]
runs = results["smiley"] = experiments.run_target("smiley", y_smile, centers, s, backend=backend,
                                                  seed=seed, checkpoint_dir=checkpoint_dir, device=device)
scores["smiley"] = experiments.target_scores(
    runs, y_smile, data.image_to_samples(data.smiley_image(100), n_held_out, smoothing=s.smoothing,
                                         generator=torch.Generator().manual_seed(seed + 101)),
    lambda n, g: data.image_to_samples(data.smiley_image(100), n, smoothing=s.smoothing, generator=g),
    repeats=floor_repeats, seed=seed + 300)
tplots.runs_table({"smiley": runs})

# %% mystnb={"figure": {"caption": "The smiley target: the three schemes at increasing times up to t = 50 (grey: target samples).", "name": "fig-targets-smiley"}}
fig = snapshot_grid(runs, [0, 2, 10, 50], target=y_smile, lim=(-1.1, 1.1, -0.6, 0.6), s=1.5,
                    suptitle="Two Diracs flowing to the smiley")
plt.show()

# %% mystnb={"figure": {"caption": "$\\mathcal D_K^2$ to the smiley target against time, for the three schemes.", "name": "fig-targets-smiley-mmd"}}
tplots.plot_energy_curves(runs, title="Smiley: discrepancy to the target", xscale="symlog")
plt.show()

# %%
anim = tplots.animate_particles(runs, frames=animation_frames, target=y_smile, lim=(-1.1, 1.1, -0.6, 0.6))
display(tplots.animation_html(anim, caption="Animation: the three schemes flowing into the smiley "
                                            "(grey: target samples)."))

# %% [markdown]
# ## Two Diracs flowing to two Diracs (Appendix F, Example 2)
#
# Start $\mu_0 = \tfrac12(\delta_{(-1,1)} + \delta_{(1,-1)})$, target $\nu = \tfrac12(\delta_{(1,1)} + \delta_{(-1,-1)})$.
# The target is singular too; by symmetry no mass should cross the diagonal $x_1 = x_2$ through its middle.
# At $t = 4$ the paper shows, for all schemes, a disc cut by an empty slit along that diagonal.

# %%
s = two_diracs
y_two = torch.tensor([[1.0, 1.0], [-1.0, -1.0]], device=device)
centers = [[-1.0, 1.0], [1.0, -1.0]]
runs = results["two Diracs"] = experiments.run_target("two Diracs", y_two, centers, s, backend=backend,
                                                      seed=seed, checkpoint_dir=checkpoint_dir, device=device)
tplots.runs_table({"two Diracs": runs})

# %% mystnb={"figure": {"caption": "Two Diracs flowing to two other Diracs (red crosses): the three schemes at t = 0, 1, 2, 4.", "name": "fig-targets-two-diracs"}}
fig = snapshot_grid(runs, [0, 1, 2, 4], lim=2.2, s=1.5, suptitle="Two Diracs to two Diracs")
for ax in fig.axes:
    ax.plot(y_two[:, 0].cpu(), y_two[:, 1].cpu(), "rx", ms=6)
plt.show()

# %% mystnb={"figure": {"caption": "$\\mathcal D_K^2$ to the two-Dirac target against time, for the three schemes.", "name": "fig-targets-two-diracs-mmd"}}
ax = tplots.plot_energy_curves(runs, title="Two Diracs: discrepancy to the target")
plt.show()

# %%
display(tplots.animation_html(tplots.animate_particles(runs, frames=animation_frames, lim=2.2),
                              caption="Animation: two point masses flowing to two other point masses."))

# %% [markdown]
# ## Implosion and explosion (Appendix F, Example 3)
#
# The neural schemes never need the functional in closed form along the flow, only a two-batch estimate
# of it (backward scheme) or of its directional derivative (forward scheme). Appendix F shows this with
#
# $$
# \begin{aligned}
# \mathcal F(\mu) = {}& \int \mathbf 1_{(-\infty,0)}(x)\,|y| - x\,\mathrm d\mu(x,y) \\
#  & - \frac12\iint \mathbf 1_{[0,\infty)}(x_1)\mathbf 1_{[0,\infty)}(x_2)\,|y_1-y_2|\,
#  \mathrm d\mu(x_1,y_1)\,\mathrm d\mu(x_2,y_2)
# \end{aligned}
# $$
#
# (`mmdflow.functionals.ImplosionExplosion`). Everything drifts to the right at unit speed ($-x$). In the left
# half-plane the mass collapses onto the axis $y = 0$ (implosion, $|y|$); in the right half-plane a
# one-dimensional Riesz interaction pushes it apart in $y$ (explosion). The functional is unbounded below,
# so there is no target and no discrepancy: the curves show $\mathcal F(\mu_t)$. We start from a Gaussian
# blob centred at $(-1, 0)$ (the paper gives no start for this example).

# %%
s = implosion
g0 = torch.Generator().manual_seed(seed + 3)
blob = torch.randn(s.n, 2, generator=g0, dtype=torch.float64) * 0.3 + torch.tensor([-1.0, 0.0], dtype=torch.float64)
runs = results["App. F Ex. 3"] = experiments.run_schemes(ImplosionExplosion(), blob.float().to(device), blob.to(device),
                                                         s, seed=seed, checkpoint_dir=checkpoint_dir,
                                                         name="App. F Ex. 3")
tplots.runs_table({"App. F Ex. 3": runs}, value="$\\mathcal F$")

# %% mystnb={"figure": {"caption": "The implosion/explosion functional: mass left of the dashed line collapses onto the axis $x_2 = 0$, mass right of it spreads out in $x_2$; everything drifts right.", "name": "fig-targets-implosion"}}
fig = snapshot_grid(runs, [0, 1.0, 2.0, 3.0], lim=(-2.0, 3.2, -1.7, 1.7), s=1.5,
                    suptitle="Implosion (x < 0) and explosion (x > 0)")
for ax in fig.axes:
    ax.axvline(0.0, color="0.5", ls="--", lw=0.8)
plt.show()

# %% mystnb={"figure": {"caption": "The value $\\mathcal F(\\mu_t)$ of the functional of App. F, Example 3, along the three schemes (it is unbounded below: everything drifts right).", "name": "fig-targets-implosion-value"}}
ax = tplots.plot_energy_curves(runs, ylabel=r"$\mathcal{F}(\mu_t)$", logy=False,
                               title="Implosion/explosion functional along the flows")
plt.show()

# %%
display(tplots.animation_html(tplots.animate_particles(runs, frames=animation_frames, lim=(-2.0, 3.2, -1.7, 1.7)),
                              caption="Animation: the implosion/explosion functional along the three schemes."))

# %% [markdown]
# ## Summary
#
# Final value of the functional ($\mathcal D_K^2$ to the target, or $\mathcal F$ for Example 3) and the time
# spent in each scheme (network training included, plotting excluded), for the profile this page was built
# with; the initial $\mathcal D_K^2$ is shown for comparison. With $N = M$ particles and target samples, the
# particle flow can end far below anything a *sampler* of the picture's density reaches: it moves each particle
# next to a target sample, i.e. it copies the training set. The second table therefore also scores the final
# particles against a fresh sample of the same density (`n_held_out` points) and divides by the two-sample floor,
# the median $\mathcal D_K^2$ between $N$ i.i.d. samples of the density and that held-out sample, over
# `floor_repeats` samples (`mmdflow.experiments.target_scores`; the median, because a few samples with several
# points in the faint background score far above the rest). A ratio near 1 is a scheme that samples the density as well as
# i.i.d. draws do. In the `quick` profile the neural schemes get too few Adam iterations per step to draw the
# pictures; the `book` profile gives them enough for the house and the smiley. For the two-Dirac target the
# flow is stopped at $t = 4$, long before it converges.

# %%
tplots.runs_table(results, values={"App. F Ex. 3": "$\\mathcal F$"}, caption=f"profile {profile}, device {device}")

# %%
tplots.held_out_table(scores, caption=f"final particles against the training target and a held-out sample "
                                      f"(profile {profile})")

# %% tags=["hide-input"]
wall_time = time.perf_counter() - t_start
glue_markdown(runtime=f"{wall_time / 60:.1f} minutes ({wall_time:.0f} s) in the `{profile}` profile")
print(f"chapter wall time: {wall_time:.1f} s")

# %% tags=["remove-cell"]
mmdflow.runtime.record_results("04_mmd_targets", {
    name: {"n": sc_settings.n, "nb_iterations": sc_settings.backward.iterations,
           "nf_iterations": sc_settings.forward.iterations,
           "ratio_to_pf": {k: v / scores[name].train["particle flow"] for k, v in scores[name].train.items()},
           "held_out_over_floor": {k: v / scores[name].floor for k, v in scores[name].held_out.items()}}
    for name, sc_settings in (("drawing", drawing), ("smiley", smiley))}, profile=profile)

# %% tags=["hide-input"]
# NBVAL_CHECK_OUTPUT
for exp, runs in results.items():
    for scheme, tr in runs.items():
        e0, e1 = float(tr.energies[0]), float(tr.energies[-1])
        verdict = (f"D_K^2 reduced more than 2x: {e1 < e0 / 2}, more than 20x: {e1 < e0 / 20}"
                   if exp != "App. F Ex. 3" else f"F decreased: {e1 < e0}")
        value = "D_K^2" if exp != "App. F Ex. 3" else "F"
        print(f"{exp} / {scheme}: {tr.positions.shape[1]} particles, t = {float(tr.times[-1]):g}, "
              f"{value} {e0:.2g} -> {e1:.1e}, {verdict}")
