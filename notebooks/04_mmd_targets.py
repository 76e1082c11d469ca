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
# - **Reproduces:** the flows toward images of {cite:t}`altekrueger2023neural`: two point masses flowing into the
#   drawing "Max und Moritz" (their Fig. 1, Sec. 6.2) and the three examples of their App. F, each with the neural
#   backward (NB), neural forward (NF) and particle (PF) scheme, next to the images the authors' code produced.
# - **Built with:** the {glue:md}`profile:myst` profile ({glue:md}`settings:myst`).
# - **Run time:** {glue:md}`runtime:myst` on the machine that built this page.
# - **Faithfulness:** the targets are the paper's own pictures, turned into densities as the authors' code does
#   (differences below). Deviations from the paper in this build: {glue:md}`deviations:myst`
#   {glue:md}`deviations_stored:myst`
#   The `paper` profile uses the paper's settings where it states them (a GPU job).
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
# Four experiments: two point masses flowing into the drawing "Max und Moritz" by Wilhelm Busch (the paper's
# Figure 1), a smiley (Appendix F, Example 1), a target made of two Diracs (Appendix F, Example 2), and a
# functional that is not a discrepancy at all (Appendix F, Example 3). The drawing is run here live with fewer
# particles and, once, with the paper's 6000 particles by `benchmarks/run_paper_images.py`, whose stored result this
# page shows. The `quick` profile shrinks every experiment (300 particles, far fewer network iterations) so that the
# chapter runs in a minute or two on a laptop CPU.

# %% tags=["parameters", "hide-input"]
profile = "quick"          # "quick": minutes on 2 CPU cores | "book": the website (CPU) | "paper": the paper's settings (GPU)
seed = 0
device = None              # None: GPU when present
image = None               # path to your own picture (PNG/JPEG, dark ink on light paper) instead of Max und Moritz
checkpoint_dir = {"quick": None, "book": "../build/checkpoints/book/04_paper_images", "paper": "../build/checkpoints/04_paper_images"}  # neural runs resume from here
n_held_out = 2000          # size of the fresh sample of each picture's density that scores the final particles
floor_repeats = 30         # i.i.d. samples of N points whose median D_K^2 to the held-out sample is the floor
animation_frames = 16      # frames per animation (kept small: the animations are embedded in the page)
backend = "blocked"        # exact kernel sums of mmdflow.summation ("blocked" beats "dense" already at a few hundred points)
torch_threads = {"quick": 1, "book": 1, "paper": None}  # CPU threads (mmdflow.runtime.cpu_threads); None: torch's choice
stored = True              # show the stored runs of benchmarks/run_paper_images.py (Max und Moritz at 6000 particles)

# Each experiment: n particles (= n target samples), end time, network (width x hidden layers, Adam lr), the
# particle flow's step (pf_tau: it is explicit and takes its own step), snap_dt: time between stored snapshots, and
# per neural scheme (registry names) its time step tau, the Adam iterations of the first step (t < 1) and of later
# steps, the training batch (batch_size) and, for the forward scheme, the batch of its step (batch1).
# Experiment 1: two point masses -> "Max und Moritz" (paper Fig. 1 / Sec. 6.2)
drawing = {
    "quick": dict(n=300, t_end=100.0, width=128, hidden_layers=3, lr=3e-3, pf_tau=0.2, snap_dt=2.0,
                  neural={"neural_backward": dict(tau=2.0, iterations_start=150, iterations=15, batch_size=300),
                          "neural_forward": dict(tau=1.0, iterations_start=150, iterations=8, batch_size=150, batch1=300)}),
    "book":  dict(n=2000, t_end=100.0, width=128, hidden_layers=3, lr=3e-3, pf_tau=0.2, snap_dt=2.0,
                  neural={"neural_backward": dict(tau=1.0, iterations_start=400, iterations=40, batch_size=1000),
                          "neural_forward": dict(tau=1.0, iterations_start=400, iterations=40, batch_size=1000, batch1=2000)}),
    "paper": dict(n=6000, t_end=100.0, width=128, hidden_layers=5, lr=1e-3, pf_tau=0.1, snap_dt=2.0,
                  neural={"neural_backward": dict(tau=0.5, iterations_start=20000, iterations=10000, batch_size=6000),
                          "neural_forward": dict(tau=0.5, iterations_start=5000, iterations=1000, batch_size=6000, batch1=2000)}),
}
# Experiment 2: smiley (App. F, Ex. 1)
smiley = {
    "quick": dict(n=300, t_end=50.0, width=128, hidden_layers=3, lr=3e-3, pf_tau=0.2, snap_dt=1.0,
                  neural={"neural_backward": dict(tau=1.0, iterations_start=150, iterations=12, batch_size=300),
                          "neural_forward": dict(tau=1.0, iterations_start=150, iterations=8, batch_size=150, batch1=300)}),
    "book":  dict(n=2000, t_end=50.0, width=128, hidden_layers=3, lr=3e-3, pf_tau=0.2, snap_dt=1.0,
                  neural={"neural_backward": dict(tau=0.5, iterations_start=200, iterations=50, batch_size=1000),
                          "neural_forward": dict(tau=1.0, iterations_start=200, iterations=50, batch_size=1000, batch1=2000)}),
    "paper": dict(n=2000, t_end=50.0, width=128, hidden_layers=5, lr=1e-3, pf_tau=0.1, snap_dt=1.0,
                  neural={"neural_backward": dict(tau=0.1, iterations_start=4000, iterations=2000, batch_size=2000),
                          "neural_forward": dict(tau=0.1, iterations_start=4000, iterations=2000, batch_size=2000, batch1=2000)}),
}
# Experiment 3: two Diracs -> two Diracs (App. F, Ex. 2)
two_diracs = {
    "quick": dict(n=300, t_end=4.0, width=128, hidden_layers=3, lr=3e-3, pf_tau=0.05, snap_dt=0.25,
                  neural={"neural_backward": dict(tau=0.25, iterations_start=100, iterations=25, batch_size=300),
                          "neural_forward": dict(tau=0.25, iterations_start=60, iterations=15, batch_size=150, batch1=300)}),
    "book":  dict(n=2000, t_end=4.0, width=128, hidden_layers=3, lr=3e-3, pf_tau=0.05, snap_dt=0.25,
                  neural={"neural_backward": dict(tau=0.25, iterations_start=300, iterations=100, batch_size=1000),
                          "neural_forward": dict(tau=0.25, iterations_start=300, iterations=100, batch_size=1000, batch1=2000)}),
    "paper": dict(n=2000, t_end=40.0, width=128, hidden_layers=5, lr=1e-3, pf_tau=0.05, snap_dt=0.2,
                  neural={"neural_backward": dict(tau=0.1, iterations_start=4000, iterations=2000, batch_size=2000),
                          "neural_forward": dict(tau=0.1, iterations_start=4000, iterations=2000, batch_size=2000, batch1=2000)}),
}
# Experiment 4: the implosion/explosion functional (App. F, Ex. 3; no settings in the paper: those of Ex. 1)
implosion = {
    "quick": dict(n=300, t_end=3.0, width=128, hidden_layers=3, lr=3e-3, pf_tau=0.02, snap_dt=0.1,
                  neural={"neural_backward": dict(tau=0.1, iterations_start=40, iterations=10, batch_size=300),
                          "neural_forward": dict(tau=0.1, iterations_start=40, iterations=10, batch_size=150, batch1=300)}),
    "book":  dict(n=2000, t_end=3.0, width=128, hidden_layers=3, lr=3e-3, pf_tau=0.02, snap_dt=0.1,
                  neural={"neural_backward": dict(tau=0.1, iterations_start=200, iterations=200, batch_size=1000),
                          "neural_forward": dict(tau=0.1, iterations_start=100, iterations=40, batch_size=1000, batch1=2000)}),
    "paper": dict(n=2000, t_end=3.0, width=128, hidden_layers=5, lr=1e-3, pf_tau=0.01, snap_dt=0.1,
                  neural={"neural_backward": dict(tau=0.05, iterations_start=4000, iterations=2000, batch_size=2000),
                          "neural_forward": dict(tau=0.05, iterations_start=4000, iterations=2000, batch_size=2000, batch1=2000)}),
}
# the paper's settings, for the deviations stated in the box (Sec. 6.2, App. F; authors' code)
paper_settings = {"drawing": drawing["paper"], "smiley": smiley["paper"], "two Diracs": two_diracs["paper"],
                  "App. F Ex. 3": implosion["paper"]}

# %% tags=["hide-input"]
import re
import time
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import torch
from IPython.display import display

import mmdflow
from mmdflow import data, experiments, schemes
from mmdflow.experiments.targets import PAPER_IMAGE_TARGETS, image_target_sampler
from mmdflow.functionals import ImplosionExplosion
from mmdflow.plots import targets as tplots
from mmdflow.plots import snapshot_grid, use_style
from mmdflow.plots.tables import Table, fmt_sig, glue_markdown

# %% tags=["hide-input"]
t_start = time.perf_counter()
drawing, smiley, two_diracs, implosion, checkpoint_dir, torch_threads = mmdflow.for_profile(
    profile, drawing, smiley, two_diracs, implosion, checkpoint_dir, torch_threads)
settings = {name: experiments.SchemeSettings(**s) for name, s in
            (("drawing", drawing), ("smiley", smiley), ("two Diracs", two_diracs), ("App. F Ex. 3", implosion))}
device = torch.device(device) if device else mmdflow.default_device()
mmdflow.runtime.cpu_threads(torch_threads, device)
use_style()
results = {}               # experiment -> {scheme: Trajectory}
scores = {}                # experiment -> held-out scores of the final particles
print(f"profile={profile}, device={device}, torch threads={torch.get_num_threads()}")


def labelled(runs):
    """The runs keyed by their schemes' labels (the row titles of snapshot_grid)."""
    return {schemes.label(k): tr for k, tr in runs.items()}


def plain(key, name=schemes.label):
    """A run's key as shown: its scheme's label and the stored variant ("neural_backward, tau 0.5" -> "neural
    backward, tau 0.5")."""
    scheme, comma, variant = key.partition(",")
    return name(scheme) + comma + variant


def disp(key):
    """A run's key with its step as math ("neural_backward, tau 0.5" -> "neural backward, $\\tau = 0.5$")."""
    return re.sub(r"tau ([0-9.]+)", r"$\\tau = \1$", plain(key))


def short(key):
    """A run's key for a narrow column ("neural_backward, tau 0.5" -> "NB, $\\tau = 0.5$")."""
    return re.sub(r"tau ([0-9.]+)", r"$\\tau = \1$", plain(key, schemes.short_label))


def _deviations(settings, paper):
    """One sentence per experiment: where this build's settings differ from the paper's."""
    out = []
    for name, s in settings.items():
        p = experiments.SchemeSettings(**paper[name])
        diffs = []
        if s.n != p.n:
            diffs.append(f"{s.n} particles (paper {p.n})")
        if s.t_end != p.t_end:
            diffs.append(f"end time {s.t_end:g} (paper {p.t_end:g})")
        for scheme, a in s.neural.items():
            label, b = schemes.short_label(scheme), p.schedule(scheme)
            if a.tau != b.tau:
                diffs.append(f"{label} $\\tau = {a.tau:g}$ (paper {b.tau:g})")
            if (a.iterations_start, a.iterations) != (b.iterations_start, b.iterations):
                diffs.append(f"{label} {a.iterations_start}/{a.iterations} Adam iterations in the first/later steps "
                             f"(paper {b.iterations_start}/{b.iterations})")
        if any(a.batch_size != p.schedule(k).batch_size for k, a in s.neural.items()):
            diffs.append("batches of " + " and ".join(f"{a.batch_size} ({schemes.short_label(k)})"
                                                      for k, a in s.neural.items())
                         + f" particles (paper {', '.join(str(p.schedule(k).batch_size) for k in s.neural)})")
        if s.hidden_layers != p.hidden_layers:
            diffs.append(f"{s.hidden_layers} hidden layers (paper {p.hidden_layers})")
        if s.lr != p.lr:
            diffs.append(f"Adam learning rate {s.lr:g} (paper {p.lr:g})")
        if s.pf_tau != p.pf_tau:
            diffs.append(f"particle-flow step {s.pf_tau:g} (paper {p.pf_tau:g})")
        label = {"drawing": "Max und Moritz (live)", "App. F Ex. 3": "Example 3"}.get(name, name)
        out.append(f"*{label}*: " + ("as in the paper" if not diffs else ", ".join(diffs)) + ".")
    return " ".join(out)


# %% tags=["remove-cell"]
glue_markdown(profile=f"`{profile}`",
              settings=f"{settings['drawing'].n} particles for Max und Moritz live"
                       f"{' and 6000 in the stored run' if stored else ''}, {settings['smiley'].n} for the smiley, "
                       f"{settings['two Diracs'].n} for the two Diracs, {settings['App. F Ex. 3'].n} for Example 3",
              deviations=_deviations(settings, paper_settings))

# %% [markdown]
# ## Pictures as target measures
#
# The paper's two pictures ship with the library (`mmdflow.data.paper_image`, from the authors' MIT-licensed
# repository; the drawing is Wilhelm Busch's, 1865, in the public domain). A picture with dark ink on light paper
# becomes a probability density as in the authors' code: the scan is resampled to 100 pixels (area averaging),
# the ink is blurred by a Gaussian (0.1 pixel for Max und Moritz, i.e. not at all, 2 pixels for the smiley), and
# three faint, heavily blurred copies of the ink (10, 20 and 50 pixels, each at 1% of the ink's mass) form a halo
# around the drawing, so that no region is empty. A pixel is drawn with probability proportional to the density
# and the point is placed uniformly inside it (`mmdflow.data.image_to_samples`). Two differences from the authors'
# code: they squeeze every picture into 100 x 100 pixels, while here the aspect ratio is kept (Max und Moritz is
# 100 x 65 pixels on $[-\tfrac12,\tfrac12]\times[-0.325, 0.325]$, the drawing as Busch drew it), and the blurs here are
# zero-padded at the border where theirs reflect. Pass `-p image path/to/picture.png` to use your own picture in
# place of Max und Moritz.

# %% mystnb={"figure": {"caption": "The paper's pictures (top, resampled to 100 pixels) and 2000 samples of the densities made from them (bottom): the target measures of this chapter.", "name": "fig-targets-pictures"}}
targets = {"drawing": PAPER_IMAGE_TARGETS["max_und_moritz"], "smiley": PAPER_IMAGE_TARGETS["smiley"]}
samplers = {"drawing": image_target_sampler(targets["drawing"], image),
            "smiley": image_target_sampler(targets["smiley"])}
pictures = {"Max und Moritz" if image is None else Path(image).name:
            data.paper_image("max_und_moritz") if image is None else data.resize_grey(image, 100),
            "smiley": data.paper_image("smiley")}
fig, axes = plt.subplots(2, 2, figsize=(7.0, 6.0), squeeze=False)
for k, ((label, pic), key) in enumerate(zip(pictures.items(), ("drawing", "smiley"))):
    tplots.plot_image_target(pic, samplers[key](2000, torch.Generator().manual_seed(seed)), axes=axes[:, k],
                             title=label)
fig.tight_layout()
plt.show()

# %% [markdown]
# ## Two point masses flowing into Max und Moritz (Figure 1)
#
# Half of the particles start at $(-\tfrac12, 0)$, the other half at $(\tfrac12, 0)$, and the target is the
# drawing. Both neural schemes start from the exact Diracs: the network splits each Dirac into a cloud in the very
# first step. The particle flow starts from Diracs perturbed by $10^{-9}$ and uses its own step (it is explicit
# and cheap). This is the live run of this build; the run with the paper's 6000 particles follows below.


# %%
def cell_distance(x, y, lim, cell=0.04):
    """Total variation distance between the histograms of two point clouds on a grid of cell x cell squares over
    the box lim (0: the same share of points in every square, 1: no square shared). Unlike the discrepancy it
    weighs a missing eye or stroke as much as a misplaced cloud."""
    x0, x1, y0, y1 = lim
    nx, ny = int(np.ceil((x1 - x0) / cell)), int(np.ceil((y1 - y0) / cell))

    def hist(p):
        p = p.detach().double().cpu()
        i = ((p[:, 0] - x0) / cell).floor().clamp(0, nx - 1).long()
        j = ((p[:, 1] - y0) / cell).floor().clamp(0, ny - 1).long()
        return torch.bincount(i * ny + j, minlength=nx * ny).double() / len(p)

    return 0.5 * float((hist(x) - hist(y)).abs().sum())


cells = {}                 # experiment -> ({scheme: cell distance to the held-out sample}, the same for an i.i.d. sample)


def image_experiment(name, s, seed_offset):
    """Target samples, the three runs and the held-out scores of one image experiment."""
    sample = samplers[name]
    y = sample(s.n, torch.Generator().manual_seed(seed + seed_offset)).to(device)
    runs = experiments.run_target(name, y, targets[name].centers, s, backend=backend, seed=seed,
                                  checkpoint_dir=checkpoint_dir, device=device)
    held = sample(n_held_out, torch.Generator().manual_seed(seed + 100 + seed_offset))
    sc = experiments.target_scores(runs, y, held, sample, repeats=floor_repeats, seed=seed + 200 + 100 * seed_offset)
    lim = targets[name].lim
    cells[name] = ({k: cell_distance(tr.positions[-1], held, lim) for k, tr in runs.items()},
                   cell_distance(sample(s.n, torch.Generator().manual_seed(seed + 300 + seed_offset)), held, lim))
    return y, runs, sc


y_draw, runs, scores["drawing"] = image_experiment("drawing", settings["drawing"], 1)
results["drawing"] = runs
lim_draw = targets["drawing"].lim
tplots.runs_table({"drawing": runs})

# %% mystnb={"figure": {"caption": "Two point masses flowing into Max und Moritz, live run of this build: neural backward (top), neural forward (middle) and particle flow (bottom) at t = 0, 4, 16, 100 (grey: target samples).", "name": "fig-targets-drawing"}}
fig = snapshot_grid(labelled(runs), [0, 4, 16, 100], target=y_draw, lim=lim_draw, s=1.0,
                    suptitle="Two Diracs flowing to Max und Moritz")
plt.show()


# %%
#: the names of the authors' result images of each scheme (data.PAPER_OUTPUTS: "<experiment>_<name>")
authors_names = {"neural_backward": "backward_scheme", "neural_forward": "forward_scheme",
                 "particle_flow": "particle_flow"}


def authors(exp, scheme):
    """The authors' result image of a scheme in an experiment, or None where their repository has none."""
    name = f"{exp}_{authors_names.get(scheme)}"
    return data.paper_output_image(name) if name in data.PAPER_OUTPUTS else None


def comparison_rows(runs, exp, authors_setting):
    """Per scheme: this build's final particles beside the authors' image of the same scheme."""
    return [[(f"this build: {schemes.label(scheme)}, $N = {tr.positions.shape[1]}$, $t = {float(tr.times[-1]):g}$",
              tr.positions[-1]),
             (f"authors' code: {schemes.label(scheme)}, {authors_setting}", authors(exp, scheme))]
            for scheme, tr in runs.items()]


# %% mystnb={"figure": {"caption": "Max und Moritz: each scheme's final state in this build (left) beside the image of the authors' code at t = 100 (right; 6000 particles, $\\tau = 0.5$, 128 x 5 network).", "name": "fig-targets-drawing-final"}}
fig = tplots.final_states(comparison_rows(runs, "maxmoritz", "$N = 6000$, $t = 100$"), lim=lim_draw)
plt.show()

# %% [markdown]
# Above: the final state of each scheme in this live run (left) beside the image the authors' code produced with
# the paper's settings (right; 6000 particles, $\tau = 0.5$, 10000 Adam iterations per step for NB and 1000 for NF;
# from their repository, MIT licence, shipped in `mmdflow/data/paper_images`; their repository has no particle-flow
# image for this experiment). {glue:md}`drawing_live_text:myst`

# %% mystnb={"figure": {"caption": "$\\mathcal D_K^2$ between the particles and the target drawing against time, for the three schemes (live run).", "name": "fig-targets-drawing-mmd"}}
tplots.plot_energy_curves(runs, title="Max und Moritz (live): discrepancy to the target", xscale="symlog")
plt.show()

# %%
anim = tplots.animate_particles(runs, frames=animation_frames, target=y_draw, lim=lim_draw)
display(tplots.animation_html(anim, caption="Animation: the three schemes flowing from two point masses into "
                                            "Max und Moritz (grey: target samples)."))


# %% tags=["hide-input"]
def describe_cells(name):
    """The cell-histogram distances of an experiment as a sentence."""
    by_scheme, iid = cells[name]
    return ("On a grid of 0.04 x 0.04 squares, the share of the particles that would have to move to other squares "
            "to match a fresh sample of the picture is " + ", ".join(f"{v:.0%} ({schemes.label(k)})"
                                                                      for k, v in by_scheme.items())
            + f", against {iid:.0%} for an i.i.d. sample of the same size: this counts missing strokes, eyes or "
            "mouths that the discrepancy barely sees.")


def describe_scores(sc, n):
    """What the final particles show, from the numbers: ratio to the particle flow and to the two-sample floor."""
    parts = []
    for scheme in sc.train:
        if scheme == "particle_flow":
            continue
        parts.append(f"{schemes.label(scheme)}: $\\mathcal D_K^2$ {fmt_sig(sc.train[scheme])}, "
                     f"{sc.train[scheme] / sc.train['particle_flow']:.1f} times the particle flow's, "
                     f"held-out score {sc.held_out[scheme] / sc.floor:.1f} times the floor of i.i.d. samples")
    pf = sc.held_out["particle_flow"] / sc.floor
    return (f"In this run ({n} particles) " + "; ".join(parts) + f"; the particle flow ends at "
            f"{fmt_sig(sc.train['particle_flow'])}, held-out {pf:.1f} times the floor. A held-out ratio near 1 is "
            "a cloud as good as an i.i.d. sample of the picture's density; the neural schemes are "
            + ("all within a factor 2 of it." if max(sc.held_out[k] / sc.floor for k in sc.train) < 2 else
               "not all within a factor 2 of it."))


glue_markdown(drawing_live_text=describe_scores(scores["drawing"], settings["drawing"].n) + " " + describe_cells("drawing"))

# %% [markdown]
# ### With the paper's 6000 particles (stored run)
#
# The same experiment with the paper's 6000 particles, 6000 target samples and end time $t = 100$ does not fit the
# build of this website on a CPU; it was run once by `benchmarks/run_paper_images.py --runs` and its stored result
# (settings, curves, scores, particles; with the commit, date, machine and wall time) is shown here.

# %% tags=["hide-input"]
stored_runs, stored_parts = {}, {}
if stored:
    try:
        path = mmdflow.runtime.stored_results_path("paper_images.json", producer="benchmarks/run_paper_images.py --runs")
        stored_runs = experiments.targets.load_paper_images(path)["runs"].get("max_und_moritz", {})
        stored_parts = experiments.targets.load_paper_particles(
            path.with_name("paper_images_particles.pt")).get("max_und_moritz", {})
    except FileNotFoundError as exc:
        print(f"no stored runs: {exc}")
    for v in ("nb", "nf"):                              # variants of the neural schemes (--nb-variant, --nf-variant)
        variant = Path(str(path)).with_name(f"paper_images_{v}.json") if stored_runs else None
        if variant is not None and variant.exists():
            stored_runs.update(experiments.targets.load_paper_images(variant)["runs"].get("max_und_moritz", {}))
            stored_parts.update(experiments.targets.load_paper_particles(
                variant.with_name(f"paper_images_{v}_particles.pt")).get("max_und_moritz", {}))
glue_markdown(deviations_stored="*Max und Moritz (stored run, 6000 particles)*: " + ("; ".join(
    f"{schemes.label(k.split(',')[0])} at $\\tau = {e['tau']:g}$" + ("" if e["iterations"] is None else
                    f" with {e['iterations_start']}/{e['iterations']} Adam iterations in the first/later steps, "
                    f"batches of {e['batch']}, network {e['network']}")
    for k, e in stored_runs.items() if e["iterations"] is not None) or "none stored") + " (paper: $\\tau = 0.5$, "
    "20000/10000 (NB) and 5000/1000 (NF) iterations, batches of 6000, 5 hidden layers, learning rate 0.001); "
    + ("particle-flow step {:g} (paper 0.1).".format(stored_runs["particle_flow"]["tau"]) if "particle_flow" in stored_runs
       else ""))
stored_rows = [[disp(scheme), e["tau"], "-" if e["iterations"] is None else f"{e['iterations_start']}/{e['iterations']}",
                f"{e['t_end']:g}", f"{e['final_dk2']:.2e}",
                f"{e['final_dk2'] / stored_runs['particle_flow']['final_dk2']:.1f}" if "particle_flow" in stored_runs else "-",
                f"{e['held_out'] / e['floor']:.2f}", f"{e['wall_time'] / 60:.0f} min"]
               for scheme, e in stored_runs.items()]
stored_from = sorted({f"{e['provenance']['commit']} of {e['provenance']['date'][:10]}" for e in stored_runs.values()})
Table(["scheme", "$\\tau$", "Adam iterations (first/later)", "end time", "final $\\mathcal D_K^2$", "/ particle flow",
       "held-out / floor", "wall time"], stored_rows,
      caption=f"Max und Moritz with the paper's {', '.join(sorted({str(e['n']) for e in stored_runs.values()}))} "
              f"particles (stored runs of commit {', '.join(stored_from)}, one CPU thread)")

# %% mystnb={"figure": {"caption": "Max und Moritz with the paper's 6000 particles (stored run of `benchmarks/run_paper_images.py`): the final state of each scheme (left) beside the authors' image at t = 100 (right; their settings: 6000 particles, $\\tau = 0.5$, 128 x 5 network).", "name": "fig-targets-drawing-6000"}}
if stored_parts:
    rows = []
    for key, snaps in stored_parts.items():
        scheme = key.split(",")[0]
        t_last = max(snaps, key=float)
        e = stored_runs[key]
        rows.append([(f"stored: {schemes.label(scheme)}, $\\tau = {e['tau']:g}$, $t = {t_last}$", snaps[t_last].float()),
                     (f"authors' code: {schemes.label(scheme)}, $t = 100$", authors("maxmoritz", scheme))])
    fig = tplots.final_states(rows, lim=lim_draw)
    plt.show()

# %% mystnb={"figure": {"caption": "The stored 6000-particle runs over time (columns): neural backward (NB), neural forward (NF), particle flow (PF) and the two variants of the table above (rows).", "name": "fig-targets-drawing-6000-evolution"}}
if stored_parts:
    times_show = ["0", "4", "16", "100"]
    fig, axes = plt.subplots(len(stored_parts), len(times_show), figsize=(6.3, 1.45 * len(stored_parts)),
                             squeeze=False)
    for r, (scheme, snaps) in enumerate(stored_parts.items()):
        for c, t in enumerate(times_show):
            key = min(snaps, key=lambda k: abs(float(k) - float(t)))
            ax = axes[r, c]
            ax.scatter(*snaps[key].float().T, s=0.3, color="C0", linewidths=0)
            ax.set_xlim(*lim_draw[:2])
            ax.set_ylim(*lim_draw[2:])
            ax.set_aspect("equal")
            ax.set_xticks([])
            ax.set_yticks([])
            if r == 0:
                ax.set_title(f"$t = {key}$", fontsize=9)
            if c == 0:
                ax.set_ylabel(short(scheme).replace(", ", "\n"), fontsize=8.5)
    fig.tight_layout()
    plt.show()

# %% mystnb={"figure": {"caption": "$\\mathcal D_K^2(\\mu_t, \\nu)$ of the stored 6000-particle runs against time.", "name": "fig-targets-drawing-6000-energy"}}
if stored_runs:
    fig, ax = plt.subplots(figsize=(6.3, 2.8))
    for k, (scheme, e) in enumerate(stored_runs.items()):
        ax.plot(e["times"], e["energies"], color=f"C{k}", label=plain(scheme))
    ax.set_xscale("symlog")
    ax.set_yscale("log")
    ax.set_xlabel("time $t$")
    ax.set_ylabel(r"$\mathcal{D}_K^2(\mu_t, \nu)$")
    ax.legend()
    plt.show()

# %% tags=["hide-input"]
if stored_runs:
    parts = []
    for scheme, e in stored_runs.items():
        parts.append(f"{disp(scheme)} ends at $\\mathcal D_K^2$ = {fmt_sig(e['final_dk2'])} with a held-out score "
                     f"{e['held_out'] / e['floor']:.1f} times the floor ({e['wall_time'] / 60:.0f} min)")
    def ms_per_iteration(e):
        its = e["iterations_start"] + (round(e["t_end"] / e["tau"]) - 1) * e["iterations"]
        return e["wall_time"] / its * 1e3

    held_stored = samplers["drawing"](n_held_out, torch.Generator().manual_seed(seed + 400))
    iid_stored = cell_distance(samplers["drawing"](6000, torch.Generator().manual_seed(seed + 401)), held_stored, lim_draw)
    cell_text = ", ".join(f"{cell_distance(stored_parts[k][max(stored_parts[k], key=float)].float(), held_stored, lim_draw):.0%}"
                          f" ({disp(k)})" for k in stored_parts)
    cost = "; ".join(f"{disp(k)}: {ms_per_iteration(e):.0f} ms per Adam iteration on batches of {e['batch']}, step included"
                     for k, e in stored_runs.items() if e["iterations"])
    glue_markdown(drawing_stored_text="In the stored run with the paper's 6000 particles, " + "; ".join(parts) + ". "
                  f"Measured in those runs ({cost}; the load of the shared machine differed between them), the paper's 2 to 4 million Adam iterations per neural scheme "
                  "would take days on one CPU thread. The share of particles in the wrong 0.04 x 0.04 squares "
                  f"(as for the live run) is {cell_text}, against {iid_stored:.0%} for an i.i.d. sample of 6000.")
else:
    glue_markdown(drawing_stored_text="No stored run was found in this checkout: run "
                                      "`benchmarks/run_paper_images.py --runs` to add it.")

# %% [markdown]
# {glue:md}`drawing_stored_text:myst` The neural schemes here take far fewer Adam iterations per step than the paper's
# (see the table) and a coarser step; `benchmarks/bench_neural.py` times one iteration with batches of all 6000
# particles as well. The batches of 1000 particles keep each iteration cheap; all 6000 particles are moved by the
# trained network in every step. The particle flow draws the faces; the neural schemes, with about 1% of the paper's
# Adam iterations, do not: the backward scheme ends in folded strokes, the forward scheme (also with 100
# iterations per step) in a diffuse cloud; the share of particles in the wrong squares says the same. The authors' images show what 10000 (NB) and 1000 (NF) iterations per step give; this
# build could not afford them, so it cannot tell how much of the gap the training alone closes.

# %% [markdown]
# ## A smiley (Appendix F, Example 1)
#
# The particles start in two Diracs at $(\pm1, 0)$, outside the picture, and flow into the smiley of the paper
# (its strokes blurred by two pixels, as in the authors' code). The narrow gaps between the eyes and the face have
# to be crossed by mass coming from both sides.

# %%
y_smile, runs, scores["smiley"] = image_experiment("smiley", settings["smiley"], 2)
results["smiley"] = runs
lim_smile = targets["smiley"].lim
tplots.runs_table({"smiley": runs})

# %% mystnb={"figure": {"caption": "The smiley target: the three schemes at t = 0, 2, 10, 50 (grey: target samples).", "name": "fig-targets-smiley"}}
fig = snapshot_grid(labelled(runs), [0, 2, 10, 50], target=y_smile, lim=lim_smile, s=1.0,
                    suptitle="Two Diracs flowing to the smiley")
plt.show()

# %% mystnb={"figure": {"caption": "The smiley at t = 50: each scheme's final state in this build (left) beside the image of the authors' code (right; 2000 particles, $\\tau = 0.1$, 4000/2000 Adam iterations per step, 128 x 5 network).", "name": "fig-targets-smiley-final"}}
fig = tplots.final_states(comparison_rows(runs, "smiley", "$N = 2000$, $t = 50$"), lim=lim_smile)
plt.show()

# %% tags=["hide-input"]
glue_markdown(smiley_text=describe_scores(scores["smiley"], settings["smiley"].n) + " " + describe_cells("smiley"))

# %% [markdown]
# {glue:md}`smiley_text:myst`

# %% mystnb={"figure": {"caption": "$\\mathcal D_K^2$ to the smiley target against time, for the three schemes.", "name": "fig-targets-smiley-mmd"}}
tplots.plot_energy_curves(runs, title="Smiley: discrepancy to the target", xscale="symlog")
plt.show()

# %%
anim = tplots.animate_particles(runs, frames=animation_frames, target=y_smile, lim=lim_smile)
display(tplots.animation_html(anim, caption="Animation: the three schemes flowing into the smiley "
                                            "(grey: target samples)."))

# %% [markdown]
# ### How the settings were chosen
#
# The neural schemes' time step $\tau$ and Adam iterations per step were chosen from a stored sweep on the smiley
# with its paper count of 2000 particles (`benchmarks/run_paper_images.py --sweep`, batches of 1000, to a shorter
# end time): the final $\mathcal D_K^2$ against the iterations per step at one $\tau$, and against $\tau$ at one
# iteration count, with the particle flow's value as the reference.

# %% mystnb={"figure": {"caption": "Stored sweep on the smiley (2000 particles, to the end time in the axis label): final $\\mathcal D_K^2$ of the neural schemes against Adam iterations per step (left) and against the time step $\\tau$ (right); dashed: the particle flow.", "name": "fig-targets-sweep"}}
def sweep_compare(sweep):
    """For each neural scheme: does doubling the iterations or halving tau lower the final value more?"""
    out = []
    for sch in schemes.scheme_names("neural"):
        e = {(x["tau"], x["iterations"]): x["final_dk2"] for x in sweep if x["scheme"] == sch}
        if {(1.0, 50), (1.0, 100), (0.5, 50)} <= set(e):
            more, finer = e[1.0, 100], e[0.5, 50]
            out.append(f"For the {schemes.label(sch)} scheme, twice the iterations at $\\tau = 1$ give {fmt_sig(more)} and half the "
                       f"step at 50 iterations gives {fmt_sig(finer)} (from {fmt_sig(e[1.0, 50])}).")
    return " ".join(out)


sweep = []
if stored:
    try:
        sweep = experiments.targets.load_paper_images(mmdflow.runtime.stored_results_path(
            "paper_images_sweep.json", producer="benchmarks/run_paper_images.py --sweep"))["sweep"]
    except FileNotFoundError as exc:
        print(f"no stored sweep: {exc}")
if sweep:
    pf_ref = next((e["final_dk2"] for e in sweep if e["scheme"] == "particle_flow"), None)
    ax = tplots.plot_sweep(sweep, reference=pf_ref, ylabel=f"$\\mathcal{{D}}_K^2$ at t = {sweep[0]['t_end']:g}")
    plt.tight_layout()
    plt.show()
    best = {sch: min((e for e in sweep if e["scheme"] == sch), key=lambda e: e["final_dk2"])
            for sch in schemes.scheme_names("neural") if any(e["scheme"] == sch for e in sweep)}
    glue_markdown(sweep_text="In the sweep, the lowest final values were reached by " + "; ".join(
        f"{schemes.label(sch)} at $\\tau = {e['tau']:g}$ with {e['iterations']} iterations per step ({fmt_sig(e['final_dk2'])}"
        + (f", {e['final_dk2'] / pf_ref:.1f} times the particle flow's" if pf_ref else "") + ")"
        for sch, e in best.items()) + ". " + sweep_compare(sweep))
else:
    glue_markdown(sweep_text="")

# %% [markdown]
# {glue:md}`sweep_text:myst` The `book` settings in the parameters cell follow the sweep within the build budget.

# %% [markdown]
# ## Two Diracs flowing to two Diracs (Appendix F, Example 2)
#
# Start $\mu_0 = \tfrac12(\delta_{(-1,1)} + \delta_{(1,-1)})$, target $\nu = \tfrac12(\delta_{(1,1)} + \delta_{(-1,-1)})$.
# The target is singular too; by symmetry no mass should cross the diagonal $x_1 = x_2$ on which the target
# points lie, and the authors' images at $t = 4$ show, for all schemes, a disc cut by an empty slit along that
# diagonal.

# %%
s = settings["two Diracs"]
y_two = torch.tensor([[1.0, 1.0], [-1.0, -1.0]], device=device)
centers = [[-1.0, 1.0], [1.0, -1.0]]
runs = results["two Diracs"] = experiments.run_target("two Diracs", y_two, centers, s, backend=backend,
                                                      seed=seed, checkpoint_dir=checkpoint_dir, device=device)
tplots.runs_table({"two Diracs": runs})

# %% mystnb={"figure": {"caption": "Two Diracs flowing to two other Diracs (red crosses): the three schemes at t = 0, 1, 2, 4.", "name": "fig-targets-two-diracs"}}
fig = snapshot_grid(labelled(runs), [0, 1, 2, 4], lim=2.2, s=1.0, suptitle="Two Diracs to two Diracs")
for ax in fig.axes:
    ax.plot(y_two[:, 0].cpu(), y_two[:, 1].cpu(), "rx", ms=6)
plt.show()

# %% mystnb={"figure": {"caption": "Two Diracs to two Diracs at t = 4: each scheme's final state in this build (left) beside the image of the authors' code (right; 2000 particles, $\\tau = 0.1$).", "name": "fig-targets-two-diracs-final"}}
fig = tplots.final_states(comparison_rows(runs, "dirac", "$N = 2000$, $t = 4$"), lim=(-2.2, 2.2, -2.2, 2.2))
plt.show()


# %% tags=["hide-input"]
def slit_stats(x0, x):
    """Share of the particles that changed side of the diagonal x1 = x2, share within 0.05 of it, and the radius
    holding 99% of the particles."""
    side0, side = torch.sign(x0[:, 1] - x0[:, 0]), torch.sign(x[:, 1] - x[:, 0])
    near = ((x[:, 1] - x[:, 0]).abs() / 2 ** 0.5 < 0.05).double().mean()
    return float((side0 * side < 0).double().mean()), float(near), float(torch.quantile(x.double().norm(dim=1), 0.99))


two_stats = {k: slit_stats(tr.positions[0], tr.positions[-1]) for k, tr in runs.items()}
glue_markdown(two_text="In this run at $t = 4$: " + "; ".join(
    f"{schemes.label(k)}: {c:.1%} of the particles crossed the diagonal, {nr:.1%} lie within 0.05 of it, 99% within radius {r:.2f}"
    for k, (c, nr, r) in two_stats.items()) + ". A disc with no slit would hold about "
    f"{0.1 * 2 / (np.pi * 1.7):.1%} of its mass within 0.05 of a diameter of radius 1.7.")

# %% [markdown]
# {glue:md}`two_text:myst` The flow is stopped at $t = 4$, where the paper shows it, long before it converges (the
# paper's runs go on to $t = 40$).

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
# blob centred at $(-1, 0)$ (the paper gives no start and no settings for this example; the network and
# particle count are those of Example 1).

# %%
s = settings["App. F Ex. 3"]
g0 = torch.Generator().manual_seed(seed + 3)
blob = torch.randn(s.n, 2, generator=g0, dtype=torch.float64) * 0.3 + torch.tensor([-1.0, 0.0], dtype=torch.float64)
runs = results["App. F Ex. 3"] = experiments.run_schemes(ImplosionExplosion(), blob.float().to(device), blob.to(device),
                                                         s, seed=seed, checkpoint_dir=checkpoint_dir,
                                                         name="App. F Ex. 3")
tplots.runs_table({"App. F Ex. 3": runs}, value="$\\mathcal F$")

# %% mystnb={"figure": {"caption": "The implosion/explosion functional: mass left of the dashed line collapses onto the axis $x_2 = 0$, mass right of it spreads out in $x_2$; everything drifts right.", "name": "fig-targets-implosion"}}
lim_ex3 = (-2.0, 3.2, -1.7, 1.7)
fig = snapshot_grid(labelled(runs), [0, 1.0, 2.0, 3.0], lim=lim_ex3, s=1.0,
                    suptitle="Implosion ($x_1 < 0$) and explosion ($x_1 > 0$)")
for ax in fig.axes:
    ax.axvline(0.0, color="0.5", ls="--", lw=0.8)
plt.show()

# %% mystnb={"figure": {"caption": "The value $\\mathcal F(\\mu_t)$ of the functional of App. F, Example 3, along the three schemes (it is unbounded below: everything drifts right).", "name": "fig-targets-implosion-value"}}
ax = tplots.plot_energy_curves(runs, ylabel=r"$\mathcal{F}(\mu_t)$", logy=False,
                               title="Implosion/explosion functional along the flows")
plt.show()

# %%
display(tplots.animation_html(tplots.animate_particles(runs, frames=animation_frames, lim=lim_ex3),
                              caption="Animation: the implosion/explosion functional along the three schemes."))


# %% tags=["hide-input"]
def clump_share(p, cell=0.02):
    """Share of the particles in the fullest cell of a cell x cell grid (1/N for spread particles)."""
    _, counts = torch.unique(torch.floor(p.double() / cell).to(torch.int64), dim=0, return_counts=True)
    return float(counts.max()) / p.shape[0]


def fan_correlation(p):
    """Correlation of x_1 and |x_2| right of the axis: near 1 for the V-shaped fan (older mass, further right,
    spread further), near 0 for a cloud without that order."""
    p = p.double()
    right = p[p[:, 0] >= 0]
    return float(torch.corrcoef(torch.stack([right[:, 0], right[:, 1].abs()]))[0, 1]) if len(right) > 2 else float("nan")


live_clumps = {k: clump_share(tr.positions[-1]) for k, tr in runs.items()}
live_fans = {k: fan_correlation(tr.positions[-1]) for k, tr in runs.items()}


def fan_gap_text():
    """A sentence on each neural scheme whose fan is clearly weaker than the particle flow's (the scorecard's
    threshold: 0.1 below it), with its training; empty when there is none."""
    weak = [k for k in live_fans if k != "particle_flow" and live_fans[k] < live_fans["particle_flow"] - 0.1]
    its = {k: sched.iterations for k, sched in settings["App. F Ex. 3"].neural.items()}
    return "".join(f" The {schemes.label(k)} scheme's fan is weaker than the particle flow's ({live_fans[k]:.2f} against "
                   f"{live_fans['particle_flow']:.2f}, at {its[k]} Adam iterations per step): its particles do not "
                   f"order by entry time as clearly; this build does not test whether more training closes the gap "
                   f"(the scorecard's row of this example judges the fan as well as the decrease of $\\mathcal F$)."
                   for k in weak)
ex3 = {}
if stored:
    try:
        ex3_path = mmdflow.runtime.stored_results_path("paper_images_ex3.json", producer="benchmarks/run_paper_images.py --ex3")
        ex3 = experiments.targets.load_paper_images(ex3_path).get("ex3", {})
        ex3_parts = experiments.targets.load_paper_particles(ex3_path.with_name("paper_images_ex3.pt"))["ex3"]
    except FileNotFoundError as exc:
        print(f"no stored Example 3 study: {exc}")
for k in ex3:
    ex3[k]["fan"] = fan_correlation(ex3_parts[k])
Table(["run", "particles", "end time", "final $\\mathcal F$", "fullest 0.02-cell", "spread of $x_2$ right of the axis",
       "fan: corr($x_1$, $|x_2|$)", "wall time"],
      [[disp(k), e["n"], f"{e['t_end']:g}", f"{e['final_value']:.3f}", f"{e['clump_share']:.1%}",
        "-" if e["right_y_std"] is None else f"{e['right_y_std']:.2f}", f"{e['fan']:.2f}", f"{e['wall_time']:.0f} s"]
       for k, e in ex3.items()],
      caption="Example 3: the neural backward scheme with more Adam iterations and a smaller step (stored, "
              "benchmarks/run_paper_images.py --ex3)")

# %% mystnb={"figure": {"caption": "Example 3 at t = 3 (stored study): the neural backward scheme at the chapter's setting, with five times more Adam iterations per step, and with half the step, beside the neural forward scheme and the particle flow.", "name": "fig-targets-implosion-study"}}
if ex3:
    keys = list(ex3)
    rows = [[(disp(k), ex3_parts[k].float()) for k in keys[i:i + 2]] for i in range(0, len(keys), 2)]
    fig = tplots.final_states(rows, lim=lim_ex3, s=1.5)
    for ax in fig.axes:
        if ax.has_data():
            ax.axvline(0.0, color="0.5", ls="--", lw=0.8)
    plt.show()

# %% tags=["hide-input"]
if ex3 and {e["scheme"] for e in ex3.values()} == set(schemes.scheme_names("neural", "particle")) and \
        sum(e["scheme"] == "neural_backward" for e in ex3.values()) > 1:
    base = next(e for k, e in ex3.items() if e["scheme"] == "neural_backward")
    more = max((e for e in ex3.values() if e["scheme"] == "neural_backward"), key=lambda e: e["iterations"] * 0.1 / e["tau"])
    pf = next(e for e in ex3.values() if e["scheme"] == "particle_flow")
    nf = next(e for e in ex3.values() if e["scheme"] == "neural_forward")
    fixed = more["clump_share"] < base["clump_share"] and more["fan"] >= pf["fan"] - 0.05
    ex3_text = (
        f"In the stored study ({base['n']} particles), the neural backward scheme at $\\tau = {base['tau']:g}$ with "
        f"{base['iterations']} Adam iterations per step puts {base['clump_share']:.1%} of its particles into one "
        f"0.02 x 0.02 cell, and the correlation of $x_1$ and $|x_2|$ right of the axis (the V-shaped fan: mass that "
        f"entered earlier is further right and further spread) is {base['fan']:.2f}; with {more['iterations']} "
        f"iterations per step these are {more['clump_share']:.1%} and {more['fan']:.2f}, against "
        f"{nf['clump_share']:.1%} and {nf['fan']:.2f} for the neural forward scheme and {pf['clump_share']:.1%} and "
        f"{pf['fan']:.2f} for the particle flow; the final values of $\\mathcal F$ are {base['final_value']:.3f}, "
        f"{more['final_value']:.3f}, {nf['final_value']:.3f} and {pf['final_value']:.3f}. ")
    ex3_text += ("With more training the backward scheme makes the V-shaped fan (its correlation reaches the "
                 "particle flow's): the hooks and clumps at the lower iteration count are under-training of the "
                 "network in each JKO step, not a defect of the scheme (the `book` profile therefore gives it more "
                 "iterations here). Its arms stay thinner than the particle flow's, as the figure shows; the exact "
                 "backward step puts every particle with $|x_2| < \\tau$ in the left half-plane exactly on the axis "
                 "(the proximal map of $|x_2|$ is soft thresholding), while the explicit particle flow leaves them "
                 "scattered within one step of it." if fixed else
                 "More training does not bring the backward scheme to the particle flow's fan. Its proximal map of "
                 "$|x_2|$ is soft thresholding, which puts every particle with $|x_2| < \\tau$ exactly on the axis "
                 "in one step, so the left half-plane ends as a line of coinciding particles, which the network "
                 "splits only as far as its training resolves.")
    glue_markdown(ex3_text=ex3_text, ex3_live=f"In this build's run the fullest cell holds "
                  + ", ".join(f"{v:.1%} ({schemes.label(k)})" for k, v in live_clumps.items()) + " of the particles, "
                  "and the fan correlation defined below is "
                  + ", ".join(f"{v:.2f} ({schemes.label(k)})" for k, v in live_fans.items()) + "."
                  + fan_gap_text())
else:
    glue_markdown(ex3_text="(The stored study is incomplete in this checkout: run "
                           "`benchmarks/run_paper_images.py --ex3`.)",
                  ex3_live=f"In this build's run the fullest 0.02 x 0.02 cell holds "
                  + ", ".join(f"{v:.1%} ({schemes.label(k)})" for k, v in live_clumps.items()) + " of the particles, "
                  "and the correlation of $x_1$ and $|x_2|$ right of the axis is "
                  + ", ".join(f"{v:.2f} ({schemes.label(k)})" for k, v in live_fans.items()) + ".")

# %% [markdown]
# {glue:md}`ex3_live:myst` {glue:md}`ex3_text:myst`

# %% [markdown]
# ## Summary
#
# Per experiment and scheme: the particles, the step $\tau$, the Adam iterations per step (first step / later
# steps), the end time, the final $\mathcal D_K^2$ to the target (or $\mathcal F$ for Example 3) and its ratio to
# the particle flow's, the held-out score over the two-sample floor, the wall time (network training included,
# plotting excluded) and whether the run is live (this build) or stored. With $N = M$ particles and target samples,
# the particle flow can end far below anything a *sampler* of the picture's density reaches: it moves each particle
# next to a target sample, i.e. it copies the training set. The held-out score therefore scores the final
# particles against a fresh sample of the same density (`n_held_out` points) and divides by the two-sample floor,
# the median $\mathcal D_K^2$ between $N$ i.i.d. samples of the density and that held-out sample, over
# `floor_repeats` samples (`mmdflow.experiments.target_scores`; the median, because a few samples with several
# points in the faint halo score far above the rest). A ratio near 1 is a scheme that samples the density as well
# as i.i.d. draws do.


# %% tags=["hide-input"]
def summary_rows():
    """One row per experiment and scheme, live and stored, as dicts (the table and the record)."""
    rows = []
    for exp, runs_ in results.items():
        s_ = settings[exp]
        pf_final = float(runs_["particle_flow"].energies[-1])
        for scheme, tr in runs_.items():
            sched = s_.neural.get(scheme)
            sc = scores.get(exp)
            final = float(tr.energies[-1])
            rows.append({"experiment": exp, "scheme": scheme, "particles": tr.positions.shape[1],
                         "tau": s_.pf_tau if sched is None else sched.tau,
                         "iterations_per_step": None if sched is None else [sched.iterations_start, sched.iterations],
                         "t_end": float(tr.times[-1]), "final": final,
                         "ratio_to_pf": final / pf_final if exp != "App. F Ex. 3" else None,
                         "held_out": None if sc is None else sc.held_out[scheme],
                         "floor": None if sc is None else sc.floor,
                         "held_out_over_floor": None if sc is None else sc.held_out[scheme] / sc.floor,
                         "wall_time": tr.wall_time, "source": "live"})
    for scheme, e in stored_runs.items():
        rows.append({"experiment": "drawing, 6000 (stored)", "scheme": scheme, "particles": e["n"], "tau": e["tau"],
                     "iterations_per_step": None if e["iterations"] is None else [e["iterations_start"], e["iterations"]],
                     "t_end": e["t_end"], "final": e["final_dk2"],
                     "ratio_to_pf": e["final_dk2"] / stored_runs["particle_flow"]["final_dk2"]
                     if "particle_flow" in stored_runs else None,
                     "held_out": e["held_out"], "floor": e["floor"], "held_out_over_floor": e["held_out"] / e["floor"],
                     "wall_time": e["wall_time"], "source": "stored", "commit": e["provenance"]["commit"]})
    return rows


summary = summary_rows()


Table(["experiment", "scheme", "$N$", "$\\tau$", "its", "end $t$", "final value", "/ PF", "held-out / floor",
       "time (s)"],
      [[r["experiment"], short(r["scheme"]), r["particles"], f"{r['tau']:g}",
        "-" if r["iterations_per_step"] is None else "{}/{}".format(*r["iterations_per_step"]), f"{r['t_end']:g}",
        f"{r['final']:.2e}" if r["experiment"] != "App. F Ex. 3" else f"{r['final']:.3f}",
        "-" if r["ratio_to_pf"] is None else f"{r['ratio_to_pf']:.1f}",
        "-" if r["held_out_over_floor"] is None else f"{r['held_out_over_floor']:.2f}",
        f"{r['wall_time']:.0f}"] for r in summary],
      caption=f"All runs of this page (live: profile {profile}, device {device}; rows marked *stored* are the stored "
              f"runs; NB, NF, PF: neural backward, neural forward, particle flow; its: Adam iterations in the "
              f"first/later steps; time: wall time; final value: $\\mathcal D_K^2$, or $\\mathcal F$ for Example 3)")

# %%
tplots.held_out_table(scores, caption=f"final particles against the training target and a held-out sample "
                                      f"(profile {profile}, live runs)")

# %% tags=["hide-input"]
wall_time = time.perf_counter() - t_start
glue_markdown(runtime=f"{wall_time / 60:.1f} minutes ({wall_time:.0f} s) in the `{profile}` profile")
print(f"chapter wall time: {wall_time:.1f} s")

# %% tags=["remove-cell"]
record = {name: {"n": settings[name].n, "nb_iterations": settings[name].schedule("neural_backward").iterations,
                 "nf_iterations": settings[name].schedule("neural_forward").iterations,
                 "ratio_to_pf": {k: v / scores[name].train["particle_flow"] for k, v in scores[name].train.items()},
                 "held_out_over_floor": {k: v / scores[name].floor for k, v in scores[name].held_out.items()}}
          for name in ("drawing", "smiley")}
record["two_diracs"] = {"n": settings["two Diracs"].n,     # the ratios of the table above
                        "ratio_to_pf": {r["scheme"]: r["ratio_to_pf"] for r in summary
                                        if r["experiment"] == "two Diracs"}}
decrease = {k: float(tr.energies[0] - tr.energies[-1]) for k, tr in results["App. F Ex. 3"].items()}
record["implosion_explosion"] = {"n": settings["App. F Ex. 3"].n,
                                 "nb_iterations": settings["App. F Ex. 3"].schedule("neural_backward").iterations,
                                 "energy_decrease_ratio_to_pf": {k: v / decrease["particle_flow"]
                                                                 for k, v in decrease.items()},
                                 "fan_correlation": live_fans, "clump_share": live_clumps}
record["cell_distance"] = {name: {"schemes": v[0], "iid_sample": v[1]} for name, v in cells.items()}
record["runs"] = summary               # per experiment and scheme: particles, tau, iterations, end time, final value,
record["wall_time"] = wall_time        # ratio to PF, held-out score and floor, wall time, live or stored
mmdflow.runtime.record_results("04_mmd_targets", record, profile=profile)

# %% tags=["hide-input"]
# NBVAL_CHECK_OUTPUT
Table(["experiment", "scheme", "particles", "$\\mathcal D_K^2$ (or $\\mathcal F$) decreased", "reduced more than 2x"],
      [[exp, schemes.label(scheme), tr.positions.shape[1], "yes" if float(tr.energies[-1]) < float(tr.energies[0]) else "no",
        "-" if exp == "App. F Ex. 3" else ("yes" if float(tr.energies[-1]) < float(tr.energies[0]) / 2 else "no")]
       for exp, runs_ in results.items() for scheme, tr in runs_.items()],
      caption="Checks of this run")
