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
# # Kernels, MMD and Riesz energies
#
# :::{admonition} About this chapter
# :class: note
# - **Reproduces:** the normalisation of the discrepancy $\mathcal D_K^2$ and the Riesz kernels of
#   {cite:t}`altekrueger2023neural`, the energy distance of {cite:t}`szekely2013energy` and the MMD of
#   {cite:t}`gretton2012kernel`, each checked against a closed form.
# - **Built with:** the {glue:md}`profile:myst` profile ({glue:md}`settings:myst`).
# - **Run time:** {glue:md}`runtime:myst` on the machine that built this page.
# - **Faithfulness:** every check is exact up to Monte Carlo error; the `book` and `paper` profiles take larger
#   samples and more repetitions than the `quick` profile of the tests.
# - **Download:** {download}`notebook (.ipynb) <01_kernels_mmd.ipynb>`,
#   {download}`Jupytext source (.py) <01_kernels_mmd.py>`.
# :::
#
# Every flow in this book decreases a functional built from a kernel $K$. This chapter fixes the
# kernels, the energies and their normalisation, and checks them numerically against closed forms.
#
# **Kernels.** All kernels here are radial, $K(x,y) = \phi(\lVert x-y\rVert)$:
#
# | kernel | $K(x,y)$ | `mmdflow.kernels` |
# |---|---|---|
# | Riesz, $r\in(0,2)$ | $-\lVert x-y\rVert^r$ | `Riesz(r)` |
# | Gaussian | $\exp(-\lVert x-y\rVert^2/(2\sigma^2))$ | `Gaussian(sigma)` |
# | inverse multiquadric | $(1+\lVert x-y\rVert^2/\sigma^2)^{-1/2}$ | `InverseMultiquadric(sigma)` |
# | Laplace | $\exp(-\lVert x-y\rVert/\sigma)$ | `Laplace(sigma)` |
#
# The Gaussian, inverse multiquadric and Laplace kernels are positive definite. The Riesz kernel is only
# *conditionally* positive definite: $\sum_{i,j} a_i a_j K(x_i,x_j) \ge 0$ whenever $\sum_i a_i = 0$. For
# $r \in (0, 2)$ it is even *strictly* conditionally positive definite (equality only for $a = 0$ when the points
# are distinct), and strictness is what makes the discrepancy below a metric between probability measures. The
# endpoint $r = 2$ shows that conditional positive definiteness alone is not enough: $-\lVert x-y\rVert^2$ is
# conditionally positive definite, but its discrepancy $\mathcal D_K^2(\mu,\nu) = \lVert m_\mu - m_\nu\rVert^2$
# only compares the means $m_\mu, m_\nu$ and vanishes between different measures with equal means.

# %% tags=["parameters", "hide-input"]
profile = "quick"          # "quick": seconds on 2 CPU cores | "book": the website (larger) | "paper": larger samples, more repeats
seed = 0
n_samples = {"quick": 400, "book": 2000, "paper": 2000}     # points per sample in the MMD experiments
n_repeats = {"quick": 4, "book": 20, "paper": 20}         # independent repetitions per shift
n_eig = {"quick": 150, "book": 400, "paper": 400}          # points for the eigenvalue check
device = None              # None: GPU when present

# %% tags=["hide-input"]
import time

import matplotlib.pyplot as plt
import torch

import mmdflow
from mmdflow import closed_forms, energies, kernels
from mmdflow.plots import kernels as kplots
from mmdflow.plots import plot_curves, use_style
from mmdflow.plots.tables import Table, glue_markdown

t_start = time.perf_counter()
n_samples, n_repeats, n_eig = mmdflow.for_profile(profile, n_samples, n_repeats, n_eig)
device = torch.device(device) if device else mmdflow.default_device()
gen = torch.Generator().manual_seed(seed)
use_style()
print(f"profile={profile}, device={device}, n_samples={n_samples}, n_repeats={n_repeats}")

# %% tags=["remove-cell"]
glue_markdown(profile=f"`{profile}`", settings=f"{n_samples} points per sample, {n_repeats} repetitions per "
              f"shift, {n_eig} points for the eigenvalues")

# %% [markdown]
# ## A gallery of kernels
#
# The Riesz kernels are unbounded and non-smooth at $0$ for $r \le 1$; they do not depend on a length scale, which
# is why {cite:t}`altekrueger2023neural` favour them: the flow has no bandwidth to tune.

# %% mystnb={"figure": {"caption": "Kernel profiles $K(x, y)$ against the distance $\\|x-y\\|$. The Riesz kernels ($r = 0.5, 1, 1.5$) are the negated powers $-\\|x-y\\|^r$ of the distance, the others are bounded, positive definite and have a bandwidth $\\sigma = 1$.", "name": "fig-kernel-gallery"}}
gallery = {
    "Riesz r=0.5": kernels.Riesz(0.5), "Riesz r=1": kernels.Riesz(1.0), "Riesz r=1.5": kernels.Riesz(1.5),
    "Gaussian σ=1": kernels.Gaussian(1.0), "inverse multiquadric σ=1": kernels.InverseMultiquadric(1.0),
    "Laplace σ=1": kernels.Laplace(1.0),
}
ax = kplots.plot_kernel_gallery(gallery)
ax.set_title("Radial kernel profiles")
plt.show()

# %% [markdown]
# ## Energies and the discrepancy
#
# For probability measures $\mu$ and $\nu$ we use the normalisation of {cite:t}`altekrueger2023neural`:
#
# $$
# \mathcal E_K(\mu) = \frac12\iint K(x,y)\,d\mu(x)\,d\mu(y), \qquad
# \mathcal V_{K,\nu}(\mu) = -\iint K(x,y)\,d\nu(y)\,d\mu(x),
# $$
#
# $$
# \begin{aligned}
# \mathcal D_K^2(\mu,\nu) &= \mathcal E_K(\mu) + \mathcal V_{K,\nu}(\mu) + \mathcal E_K(\nu) \\
# &= \frac12 \iint K\, d(\mu-\nu)\, d(\mu-\nu) = \frac12\,\mathrm{MMD}_K^2(\mu,\nu),
# \end{aligned}
# $$
#
# where $\mathrm{MMD}_K$ is the maximum mean discrepancy of {cite:t}`gretton2012kernel`. For the Riesz kernel with
# $r=1$, $2\mathcal D_K^2$ is the *energy distance* $2\mathbb E\lVert X-Y\rVert - \mathbb E\lVert X-X'\rVert -
# \mathbb E\lVert Y-Y'\rVert$ {cite:p}`szekely2013energy`. We check this on two samples, computing the energy
# distance directly from pairwise distances:

# %%
x = torch.randn(n_samples, 2, generator=gen, dtype=torch.float64).to(device)
y = (torch.randn(n_samples, 2, generator=gen, dtype=torch.float64) + torch.tensor([1.0, 0.0], dtype=torch.float64)).to(device)
d2 = energies.discrepancy(x, y, kernels.Riesz(1.0))
ed = energies.energy_distance(x, y)
print(f"D_K^2 (Riesz r=1)     = {d2.item():.10f}")
print(f"energy distance / 2   = {ed.item() / 2:.10f}")
print(f"relative difference   = {abs(d2.item() - ed.item() / 2) / ed.item():.1e}")

# %% [markdown]
# ## MMD detects a shift
#
# Two samples from the same law have a discrepancy close to zero (the V-statistic is biased upwards by
# $O(1/n)$); shifting one of them makes it grow. For 1D Gaussians the energy distance has a closed form
# ($\mathbb E|Z| = s\sqrt{2/\pi}\,e^{-m^2/2s^2} + m(1-2\Phi(-m/s))$ for $Z\sim N(m,s^2)$), and for the Gaussian kernel
# the MMD between $N(0, I_d)$ and $N(m, I_d)$ is $2\rho^{d/2}(1-e^{-\lVert m\rVert^2/(2(\sigma^2+2))})$ with
# $\rho = \sigma^2/(\sigma^2+2)$. The dots are sample means over independent repetitions, the lines the closed forms.

# %%
shifts = torch.linspace(0.0, 3.0, 13)
riesz_1d, gauss_2d = [], []
for s in shifts.tolist():
    r_vals, g_vals = [], []
    for _ in range(n_repeats):
        a = torch.randn(n_samples, 1, generator=gen, dtype=torch.float64).to(device)
        b = (torch.randn(n_samples, 1, generator=gen, dtype=torch.float64) + s).to(device)
        r_vals.append(energies.discrepancy(a, b, kernels.Riesz(1.0)).item())
        a2 = torch.randn(n_samples, 2, generator=gen, dtype=torch.float64).to(device)
        b2 = (torch.randn(n_samples, 2, generator=gen, dtype=torch.float64) + torch.tensor([s, 0.0], dtype=torch.float64)).to(device)
        g_vals.append(energies.mmd2(a2, b2, kernels.Gaussian(1.0)).item())
    riesz_1d.append(sum(r_vals) / n_repeats)
    gauss_2d.append(sum(g_vals) / n_repeats)
exact_riesz = [closed_forms.energy_distance_gaussians_1d(0, 1, s, 1) / 2 for s in shifts.tolist()]
exact_gauss = [closed_forms.gaussian_kernel_mmd2_shift(s, 2, 1.0) for s in shifts.tolist()]

# %% mystnb={"figure": {"caption": "Discrepancy between $N(0,1)$ and $N(m,1)$ with the Riesz kernel $r=1$ (left) and textbook MMD² between $N(0,I_2)$ and $N(m e_1,I_2)$ with a Gaussian kernel $\\sigma=1$ (right), against the shift $m$: sample means (dots) and closed forms (lines).", "name": "fig-mmd-shift"}}
fig, axes = plt.subplots(1, 2, figsize=(7.0, 3.2))
plot_curves({"closed form": (shifts, exact_riesz)}, axes[0], xlabel="shift $m$", ylabel=r"$\mathcal{D}_K^2$",
            title="Riesz $r=1$, $d=1$")
axes[0].plot(shifts, riesz_1d, "o", color="C1", label=f"samples ($N = {n_samples}$)")
axes[0].legend()
plot_curves({"closed form": (shifts, exact_gauss)}, axes[1], xlabel="shift $m$", ylabel=r"MMD$^2$",
            title=r"Gaussian kernel $\sigma=1$, $d=2$")
axes[1].plot(shifts, gauss_2d, "o", color="C1", label=f"samples ($N = {n_samples}$)")
axes[1].legend()
fig.tight_layout()
plt.show()

# %% [markdown]
# ## Conditional positive definiteness of the Riesz kernel
#
# The matrix $K_{ij} = -\lVert x_i - x_j\rVert^r$ has a large negative eigenvalue (its trace is $0$ and all other
# entries are negative), so it is *not* positive definite. Restricted to vectors with $\sum_i a_i = 0$ it is: the
# smallest eigenvalue of $Q^\top K Q$, with $Q$ an orthonormal basis of the sum-zero subspace, is non-negative for
# every $r \in (0, 2]$, and becomes negative for $r > 2$ (where $-\lVert x-y\rVert^r$ is no longer conditionally
# positive definite). The figure computes it for random points in $\mathbb R^3$.

# %%
pts = torch.randn(n_eig, 3, generator=gen, dtype=torch.float64)
dist = torch.cdist(pts, pts)
exponents = torch.linspace(0.25, 3.0, 23)
min_eigs = [closed_forms.conditional_min_eigenvalue(-dist**p).item() for p in exponents.tolist()]
full_min = torch.linalg.eigvalsh(kernels.Riesz(1.0)(pts, pts))[0].item()
print(f"smallest eigenvalue of the full Riesz r=1 matrix: {full_min:.2f} (not positive definite)")

# %% mystnb={"figure": {"caption": "Smallest eigenvalue of the Riesz kernel matrix $-\\|x_i-x_j\\|^r$ on the sum-zero subspace, against $r$, for random points in $\\mathbb{R}^3$. It is non-negative for $r \\in (0, 2]$ (conditionally positive definite) and negative beyond $r = 2$.", "name": "fig-riesz-cpd"}}
fig, ax = plt.subplots(figsize=(6.4, 3.4))
ax.plot(exponents, min_eigs, "o-", ms=3)
ax.axhline(0, color="0.3", lw=0.8)
ax.axvspan(0, 2, color="C2", alpha=0.08, label="$r \\in (0,2)$: Riesz kernels of this book")
ax.set_yscale("symlog", linthresh=1e-2)
ax.set_xlabel("exponent $r$")
ax.set_ylabel("smallest eigenvalue on $\\{\\sum_i a_i = 0\\}$")
ax.set_title(f"Conditional positive definiteness ({n_eig} points in $\\mathbb{{R}}^3$)")
ax.legend()
plt.show()

# %% [markdown]
# ## First variation and Wasserstein gradient
#
# A Wasserstein gradient flow moves each particle with the velocity $-\nabla\frac{\delta F}{\delta\mu}(x)$. For
# $F = \mathcal D_K^2(\cdot,\nu)$,
#
# $$
# \begin{aligned}
# \frac{\delta F}{\delta\mu}(z) &= \int K(z,x)\,d\mu(x) - \int K(z,y)\,d\nu(y), \\
# \nabla\frac{\delta F}{\delta\mu}(x_i) &= \sum_j w_j \nabla_1 K(x_i,x_j) - \sum_l v_l \nabla_1 K(x_i,y_l).
# \end{aligned}
# $$
#
# For the Riesz kernel $\nabla_1 K(x,y) = -r\lVert x-y\rVert^{r-2}(x-y)$: particles repel each other and are
# attracted by the target. `energies.discrepancy_gradient` computes these velocities in closed form; the gradient of
# $\mathcal D_K^2$ with respect to the particle positions (autograd) is the same vector scaled by the weights
# $w_i$. The check below compares the two, and the exact memory-bounded `blocked` backend with the `dense` reference.

# %%
xp = torch.randn(60, 2, generator=gen, dtype=torch.float64).to(device) * 0.5 - 1.0
target = torch.cat([torch.randn(100, 2, generator=gen, dtype=torch.float64) * 0.3 + torch.tensor([1.0, 1.0], dtype=torch.float64),
                    torch.randn(100, 2, generator=gen, dtype=torch.float64) * 0.3 + torch.tensor([1.5, -0.5], dtype=torch.float64)]).to(device)
riesz = kernels.Riesz(1.0)
grad = energies.discrepancy_gradient(xp, target, riesz)
xa = xp.clone().requires_grad_(True)
(auto,) = torch.autograd.grad(energies.discrepancy(xa, target, riesz), xa)
grad_blocked = energies.discrepancy_gradient(xp, target, riesz, backend="blocked")
err_autograd = ((auto * xp.shape[0] - grad).norm() / grad.norm()).item()
err_blocked = ((grad_blocked - grad).norm() / grad.norm()).item()
print(f"relative difference, closed form vs autograd: {err_autograd:.1e}")
print(f"relative difference, blocked vs dense:        {err_blocked:.1e}")

# %% mystnb={"figure": {"caption": "Velocities $-\\nabla\\frac{\\delta F}{\\delta\\mu}(x_i)$ of $F = \\mathcal D_K^2(\\cdot,\\nu)$ with the Riesz kernel $r=1$: particles (blue) are pulled towards the two target clusters (grey) and pushed apart from each other.", "name": "fig-velocity-field"}}
kplots.plot_velocity_field(xp, -grad, target, title="Wasserstein velocity of $\\mathcal{D}_K^2(\\cdot,\\nu)$, Riesz $r=1$")
plt.show()

# %% tags=["hide-input"]
wall_time = time.perf_counter() - t_start
glue_markdown(runtime=f"{wall_time / 60:.1f} minutes ({wall_time:.0f} s) in the `{profile}` profile")
print(f"chapter run time: {wall_time:.1f} s on {device}")

# %% tags=["remove-cell"]
mmdflow.runtime.record_results("01_kernels_mmd", {
    "energy_distance_rel_error": abs(d2.item() - ed.item() / 2) / ed.item(),
    "riesz_1d_shift3": [riesz_1d[-1], exact_riesz[-1]], "gauss_2d_shift3": [gauss_2d[-1], exact_gauss[-1]],
    "min_eig_cpd": min(e for e, p in zip(min_eigs, exponents.tolist()) if p <= 2), "min_eig_r3": min_eigs[-1],
    "n_samples": n_samples}, profile=profile)

# %% tags=["hide-input"]
# NBVAL_CHECK_OUTPUT
cpd = min(e for e, p in zip(min_eigs, exponents.tolist()) if p <= 2)


def below(err, tol=1e-10):
    """Round-off-level differences as a bound (their last digits vary between machines)."""
    return f"< {tol:.0e}" if err < tol else f"{err:.1e}"


Table(["quantity", "this run", "reference"], [
    ["$\\mathcal D_K^2$ against half the energy distance, relative difference",
     below(abs(d2.item() - ed.item() / 2) / ed.item()), "0"],
    ["Riesz $r = 1$, $d = 1$: $\\mathcal D_K^2$ at shift 0 and 3", f"{riesz_1d[0]:.3f}, {riesz_1d[-1]:.3f}",
     f"closed form at 3: {exact_riesz[-1]:.3f}"],
    ["Gaussian, $d = 2$: $\\mathrm{MMD}^2$ at shift 3", f"{gauss_2d[-1]:.3f}", f"closed form: {exact_gauss[-1]:.3f}"],
    ["smallest eigenvalue on sum-zero vectors, $r \\le 2$", "≥ −1e-8" if cpd >= -1e-8 else f"{cpd:.1e}", "≥ 0"],
    ["smallest eigenvalue on sum-zero vectors, $r = 3$", "negative" if min_eigs[-1] < 0 else "non-negative", "negative"],
    ["gradient: closed form against autograd / blocked against dense", f"{below(err_autograd)} / {below(err_blocked)}", "0"]],
    caption=f"Key numbers ({profile} profile)")
