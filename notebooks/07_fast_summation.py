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
# # Fast kernel summation
#
# :::{admonition} About this chapter
# :class: note
# - **Reproduces:** the sliced evaluation of Riesz kernel sums by sorting of {cite:t}`hertrich2024sliced` (their
#   slicing identity, the sorting algorithm for $r = 1$ and the $\sqrt{d/P}$ error of $P$ random directions), and
#   measures error, time and the wall time a particle flow needs to reach a given exact MMD.
# - **Built with:** the {glue:md}`profile:myst` profile ({glue:md}`settings:myst`).
# - **Run time:** {glue:md}`runtime:myst` on the machine that built this page.
# - **Faithfulness:** the error and time studies are measurements on this machine, not a copy of the papers'
#   tables; timings are medians of repeated runs. The `book` profile (this website) goes up to
#   $N \approx 3\cdot10^4$ in $d = 2$ and flows of 2000 particles toward 2000 MNIST digits; the `paper` profile up
#   to $N = 10^5$ and flows of $10^4$ particles toward $10^4$ digits.
# - **Download:** {download}`notebook (.ipynb) <07_fast_summation.ipynb>`,
#   {download}`Jupytext source (.py) <07_fast_summation.py>`.
# :::
#
# Every flow in this book spends its time in one operation: for particles $x_1,\dots,x_N$ and targets
# $y_1,\dots,y_M$ in $\mathbb R^d$, the kernel sums and their gradients
#
# $$
# s_i = \sum_{j} v_j K(x_i, y_j), \qquad g_i = \sum_j v_j \nabla_1 K(x_i, y_j).
# $$
#
# Evaluated pair by pair this costs $O(NMd)$ time. The library offers four ways to do it, all behind
# `mmdflow.summation.kernel_sum(x, y, kernel, v, backend=...)` and `kernel_sum_grad`:
#
# * `dense`: builds the $N\times M$ kernel matrix; the reference, for small problems.
# * `blocked`: exact, in row blocks of bounded size; in high dimension the distances come from a matrix product
#   $\lVert x\rVert^2+\lVert y\rVert^2-2\langle x,y\rangle$, so the work runs at BLAS speed.
# * `sliced`: for the Riesz kernel $K(x,y)=-\lVert x-y\rVert$ only, an unbiased *estimate* in
#   $O(P(N+M)(\log(N+M)+d))$ time (this chapter).
# * `keops`: exact symbolic reductions with `pykeops` (pinned in `environment.yml`; it compiles each formula with
#   the system C++ compiler on first use, so this chapter's timings leave it out).
#
# `backend="auto"` picks only among the exact backends; the sliced estimate has to be asked for by name.
#
# ## Slicing
#
# Let $\xi$ be uniform on the unit sphere $S^{d-1}$. For $r\in(0,2)$ and every $z\in\mathbb R^d$,
# $\mathbb E|\langle\xi,z\rangle|^r = \lVert z\rVert^r\,\mathbb E|\xi_1|^r$ by rotation invariance, hence
#
# $$
# \lVert z\rVert^r = c_{d,r}\,\mathbb E_\xi\,|\langle \xi, z\rangle|^r, \qquad
# c_{d,r} = \frac{1}{\mathbb E|\xi_1|^r} = \frac{\sqrt\pi\;\Gamma\!\big(\tfrac{d+r}{2}\big)}{\Gamma\!\big(\tfrac d2\big)\,\Gamma\!\big(\tfrac{r+1}{2}\big)} .
# $$
#
# So a Riesz kernel sum in $\mathbb R^d$ is $c_{d,r}$ times an average of one-dimensional Riesz sums of the
# projections $\langle\xi,x_i\rangle$, $\langle\xi,y_j\rangle$ {cite:p}`hertrich2024sliced`. Slicing extends to other
# radial kernels, with fast Fourier summation for the one-dimensional sums {cite:p}`hertrich2024fastsum`; this
# chapter uses only the Riesz case.
# With $P$ directions $\xi_1,\dots,\xi_P$ and $r=1$,
#
# $$
# g_i \approx \frac{c_{d,1}}{P}\sum_{p=1}^P \Big(\sum_j v_j\,\operatorname{sign}\langle\xi_p, y_j - x_i\rangle\Big)\,\xi_p .
# $$
#
# For large $d$, $c_{d,1}\approx\sqrt{\pi d/2}$ ($c_{784,1}\approx 35$): one projection sees only a small part of
# a distance, and the estimate needs many directions.
#
# ## The sorting trick for $r=1$
#
# In one dimension the derivative of $\sum_j v_j|s-t_j|$ is $\sum_j v_j\operatorname{sign}(s-t_j) = 2L(s)+E(s)-V$, where
# $L(s)$ is the weight of the $t_j$ strictly below $s$, $E(s)$ the weight of those equal to $s$ and $V$ the total.
# After **one sort** of all projected points, one walk in increasing order reads off $L$, $E$ and the value
# $\sum_j v_j|s-t_j|$ from running sums, and writes each result back to the point's original position. A slice
# costs $O((N+M)\log(N+M))$ instead of $O(NM)$. On a CPU the library sorts with its own radix kernel (numba),
# which is several times faster than `torch.sort`; on a GPU it uses `torch` operations.
#
# The directions can be chosen in three ways:
#
# * `iid`: independent uniform directions. Each one gives an unbiased estimate, so the error falls like $P^{-1/2}$,
#   with relative size about $\sqrt{(c_{d,1}^2-1)/P}\approx\sqrt{\pi d/(2P)}$.
# * `orthogonal`: blocks of $d$ orthonormal directions, each block a uniformly random rotation. The cost is the same
#   and the error smaller, because a block cannot miss a coordinate direction.
# * `equispaced` (only in $d=2$): angles $\pi(p+u)/P$ with one random offset $u$. This is a quadrature rule on the
#   circle, and its error falls much faster than $P^{-1/2}$.
#
# **Few points in high dimension.** When there are fewer points than dimensions, $n=N+M<d$, every difference
# $x_i-y_j$ lies in the span $V$ of the centred points, of dimension $k\le n-1$. Distances do not change in an
# orthonormal basis of $V$, so the library slices there (`subspace="auto"`, basis from
# `mmdflow.summation.directions.span_basis`): the constant becomes $c_{k,1}$ instead of $c_{d,1}$, the relative error of $P$ iid
# directions $\sqrt{\pi k/(2P)}$ instead of $\sqrt{\pi d/(2P)}$, and each projection costs $k$ instead of $d$
# multiplications. This is what the MNIST chapter uses for its 25 particles and 100 digits ($k=124$, $d=784$).
# The studies below slice in all of $\mathbb R^d$: their point sets have $n\ge d$, and the timing study, whose
# smallest sizes in $d=784$ have $n<d$, passes `subspace=False` so that its curves show the plain method.
#
# The flows below compute the interaction and the potential term of $\mathcal D_K^2$ with the *same* directions
# (`mmdflow.energies.SlicedDiscrepancyEnergy`). Near the target the two forces almost cancel, and shared directions
# let their slicing errors cancel as well.

# %% tags=["parameters", "hide-input"]
profile = "quick"            # "quick": about a minute on 2 CPU cores | "book": the website (larger) | "paper": larger sizes (many minutes)
seed = 0
device = None                # None: GPU when present
data_dir = None              # MNIST: None -> $MMDFLOW_DATA
n_error = {"quick": 2000, "book": 10_000, "paper": 10_000}       # N = M for the error-vs-P study in d=2
directions_2d = {"quick": [10, 32, 100, 316, 1000], "book": [10, 32, 100, 316, 1000, 3162], "paper": [10, 32, 100, 316, 1000, 3162]}
n_error_784 = {"quick": 500, "book": 2000, "paper": 5000}      # N = M for the error-vs-P study in d=784
directions_784 = {"quick": [100, 316, 1000], "book": [100, 316, 1000, 3162], "paper": [100, 316, 1000, 3162, 10_000]}
sizes_2d = {"quick": [500, 1000, 2000], "book": [1000, 3162, 10_000, 31_623], "paper": [1000, 3162, 10_000, 31_623, 100_000]}
sizes_784 = {"quick": [250, 500, 1000], "book": [1000, 3162, 10_000], "paper": [1000, 3162, 10_000, 31_623]}
dense_max = {"quick": 1000, "book": 2000, "paper": 2000}       # largest N for dense in d=2 (it stores N x M x d)
blocked_max = {"quick": 2000, "book": 10_000, "paper": 10_000}
n_flow = {"quick": 400, "book": 2000, "paper": 10_000}         # particles = target digits in the flow
flow_steps = {"quick": 12, "book": 60, "paper": 60}
flow_tau = 2.0
timing_repeats = 5           # each timing is the median of this many runs

# %% tags=["hide-input"]
import math
import time

import matplotlib.pyplot as plt
import numpy as np
import torch

import mmdflow
from mmdflow import data, energies
from mmdflow.experiments import fast
from mmdflow.kernels import Riesz
from mmdflow.plots import fast as fplots
from mmdflow.plots import use_style
from mmdflow.plots.tables import Table, glue_markdown
from mmdflow.summation import directions

# %% tags=["hide-input"]
t_start = time.perf_counter()
(n_error, directions_2d, directions_784, n_error_784, sizes_2d, sizes_784, dense_max, blocked_max, n_flow,
 flow_steps) = mmdflow.for_profile(profile, n_error, directions_2d, directions_784, n_error_784, sizes_2d,
                                   sizes_784, dense_max, blocked_max, n_flow, flow_steps)
device = torch.device(device) if device else mmdflow.default_device()
K = Riesz(1.0)
use_style()
print(f"profile={profile}, device={device}, torch threads={torch.get_num_threads()}")

# %% tags=["remove-cell"]
glue_markdown(profile=f"`{profile}`", settings=f"sizes up to N = {max(sizes_2d)} in d = 2 and {max(sizes_784)} in "
              f"d = 784, flows of {n_flow} particles over {flow_steps} steps, timings: medians of {timing_repeats} runs")

# %% [markdown]
# ## The slicing constant
#
# $c_{d,1}$ from the formula (evaluated with `lgamma`, so that large $d$ does not overflow) against a Monte Carlo
# estimate of $1/\mathbb E|\xi_1|$ with $10^5$ random directions, and against the asymptote $\sqrt{\pi d/2}$.

# %%
gen = torch.Generator().manual_seed(seed)
for d in (2, 3, 10, 784):
    xi = directions.sample_directions(d, 100_000, "iid", generator=gen, dtype=torch.float64)
    print(f"d={d:4d}: c_d = {directions.slicing_constant(d):8.4f}   Monte Carlo {1 / xi[:, 0].abs().mean():8.4f}   "
          f"sqrt(pi d/2) = {math.sqrt(math.pi * d / 2):8.4f}")

# %% [markdown]
# ## Error against the number of directions
#
# The relative error $\lVert g-g_{\rm exact}\rVert/\lVert g_{\rm exact}\rVert$ of the Wasserstein gradient of
# $\mathcal D_K^2(\cdot,\nu)$ at all particles, averaged (root mean square) over three draws of the directions.
# In $d=2$: $x\sim\mathcal N(0,I)$ against a two-Gaussian mixture. In $d=784$: the flow's start,
# $x\sim U[0,1]^{784}$, against MNIST test digits.

# %%
n_images = min(10_000, n_error_784 + n_flow)     # the test split has 10,000 digits; the two studies may share some
mnist = data.load_mnist(data_dir, n=n_images)
digits = mnist.images.reshape(len(mnist.images), -1).float()


gen = torch.Generator().manual_seed(seed)
x2, y2 = torch.randn(n_error, 2, generator=gen), fast.two_gaussians(n_error, gen)
err_2d = fast.sliced_gradient_errors(x2, y2, ["iid", "orthogonal", "equispaced"], directions_2d, seed=seed)
x784 = torch.rand(n_error_784, 784, generator=gen)
err_784 = fast.sliced_gradient_errors(x784, digits[:n_error_784], ["iid", "orthogonal"], directions_784,
                                      repeats=2, seed=seed)
slopes = {f"d={d} {rule}": np.polyfit(np.log(ps), np.log(e), 1)[0]
          for d, res in ((2, err_2d), (784, err_784)) for rule, (ps, e) in res.items()}
for name, s in slopes.items():
    print(f"{name:<18} log-log slope {s:5.2f}")
glue_markdown(slope_iid=f"{slopes['d=784 iid']:.2f}", slope_orth=f"{slopes['d=784 orthogonal']:.2f}",
              orth_gain="grows" if slopes["d=784 orthogonal"] < slopes["d=784 iid"] - 0.05 else "stays about the same")

# %% mystnb={"figure": {"caption": "Relative error of the sliced gradient against the number of directions $P$, for independent (iid), orthogonal and (in $d=2$) equispaced directions; the dotted line has slope $-1/2$.", "name": "fig-fast-error-vs-p"}}
fig, axes = plt.subplots(1, 2, figsize=(7.0, 4.0), layout="constrained")
fplots.plot_error_vs_directions(err_2d, axes[0], title=f"$d = 2$, $N = M = {n_error}$")
fplots.plot_error_vs_directions(err_784, axes[1], title=f"$d = 784$ (MNIST), $N = M = {n_error_784}$")
plt.show()

# %% [markdown]
# Independent directions follow the $P^{-1/2}$ law at the level $\sqrt{\pi d/(2P)}$. In $d=784$ that is about 1 at
# $P=1000$: a single evaluation is mostly noise. Orthogonal blocks cost the same and mostly give a lower error,
# but they do not follow the same law: in $d = 784$ their fitted log-log slope on this page is
# {glue:md}`slope_orth:myst`, against {glue:md}`slope_iid:myst` for independent directions, so over this range of $P$ (it
# starts below $P = d$, where a block is incomplete) their advantage {glue:md}`orth_gain:myst` with $P$. In the plane,
# equispaced directions fall roughly like $P^{-1}$ or faster and reach $10^{-4}$ with a few hundred directions.
#
# ## Time against size
#
# Wall time of one evaluation of $\mathcal D_K^2$ (without its constant target term) and its gradient, $N=M$,
# float32, on this machine's CPU threads: the median of `timing_repeats` runs after a warm-up, so that a pause of a
# shared machine does not show up as a point. The slopes matter more than the absolute numbers. Exact backends:
# $O(N^2)$. Sliced: $O(N\log N)$.

# %%
big = 10**9
times_2d = fast.time_backends(2, sizes_2d, [("dense", "dense", dense_max), ("blocked", "blocked", blocked_max),
                                            ("sliced equispaced P=100", ("equispaced", 100), big),
                                            ("sliced iid P=1000", ("iid", 1000), big)], seed=seed, device=device,
                              repeats=timing_repeats)
times_784 = fast.time_backends(784, sizes_784, [("dense", "dense", 250),      # N x M x 784 floats: 1 GB at N=250
                                                ("blocked", "blocked", blocked_max),
                                                ("sliced orthogonal P=1000", ("orthogonal", 1000), big),
                                                ("sliced iid P=100", ("iid", 100), big)],
                               digits=digits, seed=seed, device=device, repeats=timing_repeats)

# %% mystnb={"figure": {"caption": "Median wall time of one value-and-gradient evaluation against $N = M$, per backend (log-log), over repeated runs; dotted lines: slopes 1 and 2. One colour per backend in both panels.", "name": "fig-fast-time-vs-n"}}
fig, axes = plt.subplots(1, 2, figsize=(7.0, 4.2), layout="constrained")
fplots.plot_time_vs_size(times_2d, axes[0], title="$d = 2$")
fplots.plot_time_vs_size(times_784, axes[1], title="$d = 784$")
plt.show()

# %% [markdown]
# ## The figure of merit: wall time to a given exact MMD
#
# For a flow, the error of a single gradient matters less than how fast the *exact* discrepancy falls per
# second of computing: the explicit Euler scheme $x\leftarrow x-\tau\nabla\frac{\delta F}{\delta\mu}(x)$ averages
# the slicing noise over its steps, because every step draws new directions. Here $N$ particles start at
# $x\sim U[0,1]^{784}$ and flow toward $N$ MNIST test digits with step $\tau$ (`mmdflow.flows.particle_flow`).
# The exact $\mathrm{MMD}^2$ (blocked) of the snapshots is plotted against the wall time spent in the steps. The figure
# of merit is the wall time a backend needs to bring the exact $\mathrm{MMD}^2$ down to a level $L$, twice the final
# value of the exact flow: a flow that stalls above $L$ never reaches it, however fast its steps are. (A "decrease
# per second" would reward a cheap flow that stalls high.)

# %%
gen = torch.Generator().manual_seed(seed + 1)
target = digits[n_images - n_flow:].to(device)
x0 = torch.rand(n_flow, 784, generator=gen).to(device)
exact = energies.DiscrepancyEnergy(K, target, backend="blocked")
flow_energies = {
    "blocked (exact)": exact,
    "sliced orthogonal P=100": energies.SlicedDiscrepancyEnergy(K, target, n_directions=100, directions="orthogonal",
                                                              generator=torch.Generator().manual_seed(seed)),
    "sliced orthogonal P=1000": energies.SlicedDiscrepancyEnergy(K, target, n_directions=1000,
                                                               directions="orthogonal",
                                                               generator=torch.Generator().manual_seed(seed)),
    "sliced iid P=1000": energies.SlicedDiscrepancyEnergy(K, target, n_directions=1000, directions="iid",
                                                        generator=torch.Generator().manual_seed(seed)),
}

# %%
merit, totals = {}, {}
for label, energy in flow_energies.items():
    wall, mmd, total = fast.flow_merit(energy, exact, x0, tau=flow_tau, n_steps=flow_steps)
    merit[label], totals[label] = (wall, mmd), total
level = 2 * float(merit["blocked (exact)"][1][-1])


def time_to_level(wall, mmd):
    hit = [float(w) for w, m in zip(wall, mmd) if float(m) <= level]
    return f"{hit[0]:.2f}" if hit else "not reached"


Table(["backend", "exact MMD² at the start", "at the end", "steps' wall time [s]", f"time to MMD² ≤ {level:.2g} [s]"],
      [[lb, f"{float(m[0]):.3f}", f"{float(m[-1]):.4f}", f"{totals[lb]:.2f}", time_to_level(w, m)]
       for lb, (w, m) in merit.items()], align=["l", "r", "r", "r", "r"])

# %% mystnb={"figure": {"caption": "Exact $\\mathrm{MMD}_K^2$ between the particles and the MNIST target against the wall time spent in the flow's steps, per backend; dotted: the level $L$, twice the exact flow's final value.", "name": "fig-fast-merit"}}
ax = fplots.plot_merit(merit, title=f"particle flow toward {n_flow} MNIST digits, $\\tau = {flow_tau:g}$")
ax.axhline(level, color="k", lw=0.8, ls=":")
plt.show()

# %% [markdown]
# All backends follow the same flow in expectation; the sliced ones take noisier steps. With fresh directions at
# every step the noise averages out over the steps: with $P=1000$ the sliced flows track the exact one closely,
# although a single one of their gradients has a relative error of order one. The noise sets a floor, though:
# near the target the gradient gets small while the absolute slicing error does not, and with $P=100$ the flow
# stalls far from the target.
#
# Which backend is faster per second depends on $N$. An exact step costs $O(N^2 d)$ and a sliced step
# $O(NPd)$, so at the few hundred particles of the `quick` profile the exact sums are as cheap as the sliced ones,
# or cheaper. The sliced steps pay off from $N$ of a few thousand on. The `paper` profile runs $N=10^4$, and
# `benchmarks/bench_summation.py` measures single evaluations at $N=10^5$. There one exact evaluation in $d=784$
# takes about a quarter of an hour on two cores (extrapolated), and a sliced one with $P=1000$ takes seconds.

# %% tags=["hide-input"]
wall_time = time.perf_counter() - t_start
glue_markdown(runtime=f"{wall_time / 60:.1f} minutes ({wall_time:.0f} s) in the `{profile}` profile")
print(f"chapter run time: {wall_time:.1f} s on {device}")

# %% tags=["remove-cell"]
mmdflow.runtime.record_results("07_fast_summation", {
    "iid_slope_d2": slopes["d=2 iid"], "iid_slope_d784": slopes["d=784 iid"],
    "err_equispaced_d2_P100": float(err_2d["equispaced"][1][directions_2d.index(100)]),
    "err_iid_d2_P100": float(err_2d["iid"][1][directions_2d.index(100)]),
    "n_error": n_error}, profile=profile)

# %% tags=["hide-input"]
# NBVAL_CHECK_OUTPUT
i100, i1000 = directions_2d.index(100), directions_784.index(1000)
Table(["quantity", "this run", "reference"], [
    ["slicing constant $c_2$", f"{directions.slicing_constant(2):.6f}", f"$\\pi/2$ = {math.pi / 2:.6f}"],
    ["slicing constant $c_3$, $c_{784}$", f"{directions.slicing_constant(3):.4f}, {directions.slicing_constant(784):.2f}",
     f"$\\sqrt{{\\pi d/2}}$ for large $d$: {math.sqrt(math.pi * 784 / 2):.2f}"],
    ["log-log slope of the iid error, $d = 2$ / $d = 784$", f"{slopes['d=2 iid']:.1f} / {slopes['d=784 iid']:.1f}", "−0.5"],
    ["$d = 2$, $P = 100$: equispaced / iid error", f"{'< 1e-3' if err_2d['equispaced'][1][i100] < 1e-3 else '≥ 1e-3'} / {err_2d['iid'][1][i100]:.1g}", ""],
    ["$d = 784$, $P = 1000$: iid / orthogonal error", f"{err_784['iid'][1][i1000]:.1f} / {err_784['orthogonal'][1][i1000]:.1f}", ""]]
    + [[f"exact MMD² after the flow, {k}", f"{v[1][-1]:.2g}", ""] for k, v in merit.items()],
    caption=f"Key numbers ({profile} profile)")
