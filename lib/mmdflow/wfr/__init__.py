r"""Kernelised Wasserstein-Fisher-Rao flows of the MMD: the IFT particle method and its baselines.

The energy is :math:`F(\mu) = \tfrac12\mathrm{MMD}^2(\mu, \pi)` for the kernel :math:`k` of a
:class:`mmdflow.energies.DiscrepancyEnergy` (textbook MMD, so :math:`F` equals :func:`mmdflow.energies.discrepancy`;
the chapters use Gaussian kernels). Its first variation is
the unnormalised witness

.. math::
    f_\mu(z) = \frac{\delta F}{\delta\mu}(z) = \int k(z, x)\,d\mu(x) - \int k(z, y)\,d\pi(y).

**Interaction-force transport** (IFT; Gladin, Dvurechensky, Mielke, Zhu, NeurIPS 2024) is the
gradient flow of :math:`F` in the inf-convolution of the Wasserstein and the MMD (kernelised
Fisher-Rao) geometries, i.e. the sum of the two Onsager operators:

.. math::
    \partial_t\mu = \alpha\,\mathrm{div}\big(\mu\nabla f_\mu\big) - \beta\,(\mu - \pi).

Along it :math:`\frac{d}{dt}F = -\alpha\int|\nabla f_\mu|^2 d\mu - \beta\,\mathrm{MMD}^2(\mu,\pi)
\le -2\beta F`, hence :math:`\mathrm{MMD}(\mu_t,\pi) \le e^{-\beta t}\mathrm{MMD}(\mu_0,\pi)`.

A particle measure :math:`\mu = \sum_i w_i\delta_{x_i}` (weights on the simplex) is advanced by the
JKO splitting of the two parts, with time step :math:`h`:

1. **Wasserstein (position) step**, explicit: :math:`x_i \leftarrow x_i - \tau\nabla f_\mu(x_i)`,
   :math:`\tau = \alpha h` (:func:`position_step`, ``scaling="pure"``). The authors' code instead
   takes a Euclidean gradient step on :math:`\mathrm{MMD}^2(w, X)` with learning rate ``lr``,
   i.e. :math:`x_i \leftarrow x_i - 2\,\mathrm{lr}\,w_i\nabla f_\mu(x_i)`; written as
   :math:`x_i \leftarrow x_i - \tau N w_i\nabla f_\mu(x_i)` (``scaling="weighted"``) this is the
   same step with :math:`\tau_\mathrm{eff} = 2\,\mathrm{lr}/N` (:func:`authors_lr_to_tau`): it
   coincides with the pure step for uniform weights, freezes zero-weight particles and moves heavy
   ones faster.
2. **MMD (weight) step**, implicit: the proximal problem over the simplex
   :math:`\min_{w\in\Delta} \tfrac12 w^\top K w - b^\top w + \tfrac1{2\eta}(w-w^\mathrm{old})^\top K(w-w^\mathrm{old})`,
   :math:`K_{ij} = k(x_i,x_j)`, :math:`b_i = \int k(x_i,y)d\pi(y)`, :math:`\eta = \beta h`
   (:func:`mmd_prox_weights`, solved to a certified tolerance by :func:`mmdflow.simplex.solve_simplex_qp`).
   Alternatives: the authors' single projected-gradient step (:func:`mmd_pgd_weights`) and the
   multiplicative Fisher-Rao / KL step "WFR GD" (:func:`kl_weight_step`).

Baselines: the MMD particle flow of Arbel et al. (NeurIPS 2019) (uniform weights, position step
only) and its noise-injection variant (the gradient evaluated at :math:`x_i + \beta_n u_i`,
:math:`u_i\sim N(0, I)`, with the witness built from the un-noised particles; or, ``variant="authors"`` of
:class:`NoiseSchedule`, the official IFT code's update, whose witness is that of the noisy particles).

The runner :func:`wfr_flow` (the scheme interface of :mod:`mmdflow.schemes`) takes the energy; a target given only
by a sampler ``sampler(n, generator)`` gives a fresh training batch per iteration while the energy's target, a fixed
held-out sample, scores the run (``info["loss"]``, the squared MMD, every ``loss_every`` iterations).

Kernel math goes through :mod:`mmdflow.summation`: Gram matrices :math:`K_{ij} = k(x_i, x_j)` ``[N, N]`` by
:func:`~mmdflow.summation.kernel_matrix` (``wfr_flow`` forms the particles' one once per position step and
reuses it in the weight step and the loss), witness gradients by :func:`~mmdflow.summation.kernel_sum_grad`.
The simplex projection and QP solvers are in :mod:`mmdflow.simplex`; targets and initial particles in
:mod:`mmdflow.data.mixtures`; multi-seed studies in :mod:`mmdflow.experiments.seeds`.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable

import torch

from ..energies import check_energy
from .._checks import check_int, check_memory, check_points, check_positive, check_weights
from ..kernels import RadialKernel
from ..simplex import QPInfo
from ..summation import Backend, kernel_matrix, kernel_sum
from ..trajectory import Checkpoint, ParticleState, Trajectory, digest, energy_fingerprint, run_steps
from .weights import inclusive_kl_prox, kl_weight_step, mmd_pgd_weights, mmd_prox_weights
from .particles import (NOISE_VARIANTS, WITNESS_BACKEND, WeightedParticles, authors_lr_to_tau, position_step,
                        wasserstein_velocity, witness, witness_gradient)

__all__ = [
    "WeightedParticles",
    "WITNESS_BACKEND",
    "witness",
    "witness_gradient",
    "wasserstein_velocity",
    "authors_lr_to_tau",
    "position_step",
    "mmd_prox_weights",
    "mmd_pgd_weights",
    "kl_weight_step",
    "inclusive_kl_prox",
    "ift_step",
    "NoiseSchedule",
    "NOISE_VARIANTS",
    "WFRConfig",
    "METHODS",
    "wfr_flow",
    "by_iteration",
    "run",
]

#: the particle schemes of :func:`wfr_flow` (``WFRConfig.method``); the registry names of the family ``"weighted"``
#: of :mod:`mmdflow.schemes`, in its order (``tests/test_schemes.py`` checks that they agree).
METHODS = ("mmd", "mmd_noise", "ift", "wfr")
#: :func:`wfr_flow` keeps Gram matrices (``[N, N]`` of the particles, ``[N, M]`` against the energy's target) up
#: to this many entries; above, the MMD flows compute the held-out loss with memory-bounded ``blocked`` kernel
#: sums, and IFT/WFR (whose weight step needs the ``[N, N]`` matrix) are refused above the memory budget.
GRAM_ENTRIES = 2**24

def ift_step(x: torch.Tensor, w: torch.Tensor, y: torch.Tensor, kernel: RadialKernel, tau: float, eta: float,
             v: torch.Tensor | None = None, *, scaling: str = "pure", tol: float = 1e-10,
             max_iter: int = 5000, backend: str | Backend = WITNESS_BACKEND) -> tuple[WeightedParticles, QPInfo]:
    r"""One JKO-splitting step of IFT: the Wasserstein position step (old weights; ``backend`` of its witness), then
    the exact MMD proximal weight step at the new positions (same target samples). :math:`\tau = \alpha h`,
    :math:`\eta = \beta h`.

    Args:
        x: positions ``[N, d]``.
        w: weights ``[N]`` on the simplex.
        y: target samples ``[M, d]``.
        kernel: the kernel :math:`k` (from :mod:`mmdflow.kernels`).
        tau: Wasserstein step :math:`\tau \ge 0` (:func:`position_step`).
        eta: MMD proximal step :math:`\eta > 0` (:func:`mmd_prox_weights`).
        v: target weights ``[M]``; ``None``: uniform.
        scaling: ``"pure"`` or ``"weighted"`` position step (:func:`position_step`).
        tol: duality-gap tolerance of the weight step's QP solver.
        max_iter: iteration cap of the QP solver.
        backend: the summation backend of the witness gradient (default :data:`WITNESS_BACKEND`).

    Returns:
        ``(particles, info)``: the new :class:`WeightedParticles` (positions ``[N, d]``, weights ``[N]``, dtype and
        device of ``x``) and the QP solver's certificate :class:`~mmdflow.simplex.QPInfo`.

    Raises:
        ValueError: invalid points or weights, a negative or non-finite ``tau``, a non-positive ``eta`` or an
            unknown ``scaling`` (from :func:`position_step` and :func:`mmd_prox_weights`).
    """
    x_new = position_step(x, y, kernel, tau, w, v, scaling=scaling, backend=backend)
    w_new, info = mmd_prox_weights(x_new, w, y, kernel, eta, v, tol=tol, max_iter=max_iter)
    return WeightedParticles(x_new, w_new), info


# ----------------------------------------------------------------------------------------------
# configuration and runner
# ----------------------------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class NoiseSchedule:
    r"""Noise levels :math:`\beta_n` of the noise-injection MMD flow (Arbel et al. 2019, Sec. 4).

    :math:`\beta_n = \beta_0\,2^{-\lfloor n/\mathrm{halve\_every}\rfloor}` (constant when ``halve_every``
    is ``None``), and :math:`\beta_n = 0` from step ``off_after`` on (never when ``None``). Arbel et al.
    halve the level periodically; the IFT code uses :math:`\beta = 2` switched off after 4000 of 9001 steps.

    ``variant`` selects the update (:data:`NOISE_VARIANTS`, see :func:`position_step`):

    * ``"arbel"`` (Arbel et al. 2019, Eq. 17): the witness of the un-noised particles,
      :math:`x_i \leftarrow x_i - \tau\nabla f_{\mu}(x_i + \beta_n u_i)`;
    * ``"authors"`` (the official IFT code): the noisy particles are both the evaluation points and the
      measure of the witness, :math:`x_i \leftarrow x_i - \tau\nabla f_{\tilde\mu}(\tilde x_i)`,
      :math:`\tilde x_i = x_i + \beta_n u_i`, :math:`\tilde\mu = \sum_j w_j\delta_{\tilde x_j}` (the gradient
      with respect to :math:`X` of :math:`\mathrm{MMD}^2(w, X + \beta_n U)`).
    """

    beta0: float
    halve_every: int | None = None
    off_after: int | None = None
    variant: str = "arbel"

    def __post_init__(self):
        object.__setattr__(self, "beta0", check_positive(self.beta0, "beta0"))
        if self.variant not in NOISE_VARIANTS:
            raise ValueError(f"variant must be one of {NOISE_VARIANTS}, got {self.variant!r}")
        if self.halve_every is not None:
            check_int(self.halve_every, "halve_every", 1)
        if self.off_after is not None:
            check_int(self.off_after, "off_after", 0)

    def level(self, n: int) -> float:
        """Noise level at step ``n`` (0-based).

        Args:
            n: the step index.

        Returns:
            :math:`\\beta_n` (``beta0`` when ``halve_every`` is ``None``), or 0 from step ``off_after`` on.
        """
        if self.off_after is not None and n >= self.off_after:
            return 0.0
        if self.halve_every is None:
            return self.beta0
        return self.beta0 * 0.5 ** (n // self.halve_every)


@dataclass(frozen=True, kw_only=True)
class WFRConfig:
    r"""Hyper-parameters of :func:`wfr_flow` (the kernel is the energy's).

    Attributes:
        n_steps: number of iterations (one iteration = position step + weight step for IFT/WFR).
        method: the scheme, one of :data:`METHODS`; ``None`` leaves the config incomplete, and :func:`wfr_flow`,
            :func:`mmdflow.experiments.run_seeds` and :class:`mmdflow.experiments.sweep.SeedRun` refuse it.
        tau: Wasserstein step :math:`\tau = \alpha h \ge 0` (0 switches transport off).
        position_step: ``"pure"`` (velocity :math:`-\nabla f_\mu`) or ``"weighted"`` (authors' :math:`N w_i`
            scaling, see :func:`position_step`).
        witness_backend: summation backend of the witness gradient of the position step (a name or a
            :class:`mmdflow.summation.Backend`). Its default is the constant :data:`WITNESS_BACKEND`, bound when
            the class is defined: reassigning the module attribute later changes nothing; pass this field.
        weight_step: for ``method="ift"``: ``"prox"`` (exact MMD-JKO step, :func:`mmd_prox_weights`) or
            ``"pgd"`` (authors' single projected-gradient step, :func:`mmd_pgd_weights`).
        eta: MMD proximal step :math:`\eta = \beta h` (``weight_step="prox"``).
        pgd_lr: learning rate of the projected-gradient step on :math:`\mathrm{MMD}^2` (authors: 1e-3 at N = 1e4).
        kl_lr: learning rate of the multiplicative KL step of ``method="wfr"`` (authors: 1).
        kl_normalise: ``"project"`` (authors) or ``"renormalise"``.
        noise: :class:`NoiseSchedule`, required by ``method="mmd_noise"`` and ignored otherwise.
        batch_size: target samples per iteration (a fresh batch from :func:`wfr_flow`'s ``sampler``, else a random
            subset of the energy's target); ``None``: as many as particles (sampler) or the whole target.
        loss_every: evaluate the loss against the energy's target every this many steps (and at the end).
        snapshot_every: store positions/weights every this many steps (``None``: first and last only).
        qp_tol, qp_max_iter: duality-gap tolerance and iteration cap of the proximal weight step.
    """

    n_steps: int
    tau: float
    method: str | None = None
    position_step: str = "pure"
    witness_backend: str | Backend = WITNESS_BACKEND
    weight_step: str = "prox"
    eta: float = 1.0
    pgd_lr: float = 1e-3
    kl_lr: float = 1.0
    kl_normalise: str = "project"
    noise: NoiseSchedule | None = None
    batch_size: int | None = None
    loss_every: int = 1
    snapshot_every: int | None = None
    qp_tol: float = 1e-10
    qp_max_iter: int = 5000

    def __post_init__(self):
        check_int(self.n_steps, "n_steps", 0)
        if self.method is not None and self.method not in METHODS:
            raise ValueError(f"method must be one of {METHODS} or None, got {self.method!r}")
        tau = self.tau
        if isinstance(tau, bool) or not isinstance(tau, (int, float)) or not math.isfinite(tau) or tau < 0:
            raise ValueError(f"tau must be a finite non-negative number, got {tau!r}")
        object.__setattr__(self, "tau", float(tau))
        if self.position_step not in ("pure", "weighted"):
            raise ValueError(f"position_step must be 'pure' or 'weighted', got {self.position_step!r}")
        if isinstance(self.witness_backend, str):
            Backend(self.witness_backend)                 # a clear error naming an unknown backend
        elif not isinstance(self.witness_backend, Backend):
            raise TypeError(f"witness_backend must be a backend name or a Backend, got {self.witness_backend!r}")
        if self.weight_step not in ("prox", "pgd"):
            raise ValueError(f"weight_step must be 'prox' or 'pgd', got {self.weight_step!r}")
        for name in ("eta", "pgd_lr", "kl_lr", "qp_tol"):
            object.__setattr__(self, name, check_positive(getattr(self, name), name))
        if self.kl_normalise not in ("project", "renormalise"):
            raise ValueError(f"kl_normalise must be 'project' or 'renormalise', got {self.kl_normalise!r}")
        if self.noise is not None and not isinstance(self.noise, NoiseSchedule):
            raise TypeError(f"noise must be a NoiseSchedule or None, got {type(self.noise).__name__}")
        if self.batch_size is not None:
            check_int(self.batch_size, "batch_size", 1)
        check_int(self.loss_every, "loss_every", 1)
        if self.snapshot_every is not None:
            check_int(self.snapshot_every, "snapshot_every", 1)
        check_int(self.qp_max_iter, "qp_max_iter", 1)


def _target_batch(target, n: int, batch_size: int | None, generator, like: torch.Tensor) -> torch.Tensor:
    """The training batch of one iteration: ``batch_size`` (default ``n``) points of a sampler, a random subset of a
    tensor target, or the whole tensor."""
    if callable(target):
        m = batch_size or n
        y = target(m, generator)
        if not isinstance(y, torch.Tensor) or y.shape != (m, like.shape[1]):
            raise ValueError(f"sampler({m}, generator) must return a tensor of shape ({m}, {like.shape[1]}), "
                             f"got {getattr(y, 'shape', type(y).__name__)}")
        return y.to(like)
    if batch_size is None or batch_size >= target.shape[0]:
        return target
    idx = torch.randperm(target.shape[0], generator=generator)[:batch_size].to(target.device)
    return target[idx]


def _blame(method: str, config: "WFRConfig") -> dict:
    """The parameter most likely responsible for a non-finite position (``x``) or weight (``w``) after a step."""
    weight_blame = {"wfr": f"kl_lr={config.kl_lr:g} (the KL weight step)",
                    "ift": f"pgd_lr={config.pgd_lr:g} (the projected-gradient weight step)"
                    if config.weight_step == "pgd" else f"eta={config.eta:g} (the proximal weight step)"}
    return {"x": f"tau={config.tau:g} (the position step)", "w": weight_blame.get(method, "-")}


def _held_out_constant(yt, kernel, v=None) -> float:
    r""":math:`\sum_{lm} v_l v_m k(y_l, y_m)` of the held-out sample (uniform :math:`v_l = 1/M` when ``v`` is ``None``;
    computed once, in row blocks)."""
    if yt.shape[0] ** 2 <= GRAM_ENTRIES:
        rows = max(1, 2**22 // yt.shape[0])
        if v is None:
            kyy = sum(float(kernel_matrix(yt[i:i + rows], yt, kernel).sum()) for i in range(0, yt.shape[0], rows))
            return kyy / yt.shape[0] ** 2
        return sum(float(v[i:i + rows] @ (kernel_matrix(yt[i:i + rows], yt, kernel) @ v))
                   for i in range(0, yt.shape[0], rows))
    if v is None:
        return float(kernel_sum(yt, yt, kernel, backend="blocked").mean())
    return float(v @ kernel_sum(yt, yt, kernel, v, backend="blocked"))


def _result_info(traj: Trajectory, step) -> Trajectory:
    method, config = step.method, step.config
    info = dict(traj.info)
    info["loss_steps"] = torch.tensor(step.loss_steps, dtype=torch.float64)
    info["loss"] = torch.tensor(step.losses, dtype=torch.float64)
    if step.gaps:
        info["qp_gap_max"] = max(step.gaps)
        info["qp_iter_mean"] = sum(step.iters) / len(step.iters)
        # steps (from 1) whose proximal weight QP stopped at qp_max_iter above qp_tol: reported, and warned about
        info["qp_unconverged_steps"] = [i + 1 for i, ok in enumerate(step.converged) if not ok]
        if info["qp_unconverged_steps"]:
            bad = info["qp_unconverged_steps"]
            warnings.warn(f"{method}: the proximal weight step's QP did not reach qp_tol={config.qp_tol:g} within "
                          f"qp_max_iter={config.qp_max_iter} iterations in {len(bad)} of {len(step.gaps)} steps "
                          f"(first at step {bad[0]}; largest duality gap {max(step.gaps):.3g}): its weights are not "
                          "the exact proximal step; raise qp_max_iter (see info['qp_unconverged_steps'])",
                          RuntimeWarning, stacklevel=2)
    return traj._replace(info=info)


def wfr_flow(energy, x0: torch.Tensor, config: WFRConfig, *, generator: torch.Generator | None = None,
             checkpoint_dir=None, progress: bool = True, callback=None, w0: torch.Tensor | None = None,
             sampler: Callable[[int, torch.Generator | None], torch.Tensor] | None = None) -> Trajectory:
    r"""A weighted-particle scheme (``config.method``, one of :data:`METHODS`) for a discrepancy energy, any kernel.

    Methods (:data:`METHODS`, the registry names of the family ``"weighted"`` of :mod:`mmdflow.schemes`):

    * ``"mmd"``: the MMD particle flow of Arbel et al. (2019), uniform weights, position steps only;
    * ``"mmd_noise"``: the same with noise injection, :math:`\xi_i = \beta_n u_i` (``config.noise``, whose
      ``variant`` picks Arbel et al.'s update or the official IFT code's, see :class:`NoiseSchedule`);
    * ``"ift"``: the IFT JKO splitting (Gladin et al. 2024, Algorithm 1): position step, then the MMD weight
      step (``config.weight_step``: exact proximal QP or the authors' projected-gradient step);
    * ``"wfr"``: position step, then the multiplicative KL weight step ("WFR GD").

    The scheme interface of :mod:`mmdflow.schemes`: ``energy`` is a :class:`mmdflow.energies.DiscrepancyEnergy`
    :math:`F = \mathcal D_K^2(\cdot, \nu)` (its ``kernel``, ``target`` ``[M, d]`` and ``target_weights``). Every
    iteration takes the position step (:func:`position_step` with the witness of :math:`K`) and then the weight step
    on one training batch of the target:

    * without ``sampler``: the energy's target itself (``config.batch_size``: a random subset of it per iteration,
      uniform target weights only);
    * with ``sampler`` (``sampler(n, generator) -> [n, d]``, e.g. a :class:`mmdflow.data.mixtures.GaussianMixture`):
      a fresh sample of ``config.batch_size`` points (default ``N``) per iteration, and the energy's target is a
      fixed held-out sample that only scores the run (drawn by the caller before the run, with the same generator
      if one run should be reproducible from one seed).

    Times are physical, :math:`t_k = k h` with :math:`h = \tau` (:math:`\alpha = 1`), or :math:`h = \eta` when
    ``tau = 0``: iteration ``k`` is the snapshot at time ``k * info["h"]`` (:func:`by_iteration` relabels the
    snapshots by iteration). ``energies`` are ``energy.value(x, w)`` at the snapshots; ``info["loss"]`` is the
    V-statistic :math:`\mathrm{MMD}^2` of the weighted particles against the energy's target (``2 F`` in the library's
    normalisation, :math:`\mathcal D_K^2 = \tfrac12\mathrm{MMD}^2`) at the iterations ``info["loss_steps"]`` (every
    ``config.loss_every`` iterations and at the end), computed from the Gram matrices the steps form.

    Args:
        energy: the discrepancy (its target: the training target, or the held-out sample with ``sampler``).
        x0: start positions ``[N, d]``.
        config: a :class:`WFRConfig` with ``method`` set.
        generator: source of the minibatches and noise (needed, seeded, with ``checkpoint_dir``).
        checkpoint_dir: checkpoint after every iteration; a checkpoint of the same run resumes it.
        progress: as in :func:`mmdflow.trajectory.run_steps`.
        callback: as in :func:`mmdflow.trajectory.run_steps` (``callback(step, t, state)``, ``state.x``, ``state.w``).
        w0: start weights ``[N]``; ``None``: uniform.
        sampler: ``sampler(n, generator) -> [n, d]``, the training batches (see above); ``None``: the energy's target.

    Returns:
        A :class:`~mmdflow.trajectory.Trajectory` with positions ``[S, N, d]`` and weights ``[S, N]`` (uniform for the
        MMD flows), and ``info`` holding ``"method"``, ``"config"``, ``"n_particles"``, ``"energy"``, ``"h"``,
        ``"loss"`` ``[L]``, ``"loss_steps"`` ``[L]`` and, for the proximal weight step, ``"qp_gap_max"``,
        ``"qp_iter_mean"`` and ``"qp_unconverged_steps"`` (the steps whose QP stopped at ``qp_max_iter`` above
        ``qp_tol``, with a ``RuntimeWarning`` when there are any).

    Raises:
        TypeError: ``config`` is not a :class:`WFRConfig`, the energy lacks a discrepancy's attributes, or ``sampler``
            is not callable.
        ValueError: ``config.method`` is not set, a method's requirement is not met (noise schedule, uniform weights,
            uniform target weights for minibatches, seeded generator with ``checkpoint_dir``).
        MemoryBudgetError: the ``[N, N]`` and ``[N, M]`` matrices of the IFT/WFR weight step exceed the memory budget.
    """
    if not isinstance(config, WFRConfig):
        raise TypeError(f"config must be a WFRConfig, got {type(config).__name__}")
    if config.method is None:
        raise ValueError(f"wfr_flow needs config.method, one of {METHODS}")
    method = config.method
    check_points(x0, "x0")
    check_energy(energy, x0, ("value",), f"weighted-particle {method}")
    for attr in ("kernel", "target", "target_weights"):
        if not hasattr(energy, attr):
            raise TypeError(f"the weighted-particle schemes need an energy with .{attr} (a DiscrepancyEnergy), "
                            f"got {type(energy).__name__}")
    if sampler is not None and not callable(sampler):
        raise TypeError(f"sampler must be a callable sampler(n, generator) -> [n, d] or None, "
                        f"got {type(sampler).__name__}")
    if method == "mmd_noise" and config.noise is None:
        raise ValueError("method 'mmd_noise' needs config.noise (a NoiseSchedule)")
    if method in ("mmd", "mmd_noise") and w0 is not None:
        raise ValueError("the MMD flows use uniform weights; do not pass w0")
    yt, tw = energy.target.detach().to(x0), energy.target_weights.to(x0)
    uniform = bool((tw == tw[0]).all())
    if sampler is None and config.batch_size is not None and not uniform:
        raise ValueError("minibatches (config.batch_size) need uniform target weights")
    if generator is None and checkpoint_dir is not None:
        raise ValueError(f"checkpoint_dir={str(checkpoint_dir)!r} needs an explicit, seeded generator")
    n = x0.shape[0]
    if method in ("ift", "wfr"):
        m = config.batch_size or (n if sampler is not None else yt.shape[0])
        check_memory(3.0 * n * (n + m) * x0.element_size(), f"the {method} weight step's [N, N] Gram matrix and "
                     f"[N, M] target matrix (N = {n}, M = {m}, {x0.dtype})", device=x0.device,
                     instead="method='mmd' or 'mmd_noise' (memory-bounded kernel sums) or fewer particles")
    w = check_weights(w0, x0, "w0").clone()
    x = x0.detach().clone()
    kernel = energy.kernel
    v = None if uniform else tw
    step = _WFRStep(method, config, yt if sampler is None else sampler, yt, _held_out_constant(yt, kernel, v),
                    generator, x, kernel=kernel, target_weights=v)
    h = config.tau if config.tau > 0 else config.eta
    ckpt = None if checkpoint_dir is None else Checkpoint(
        Path(checkpoint_dir), {"scheme": f"wfr_flow:{method}", "config": asdict(config),
                               "energy": energy_fingerprint(energy), "x0": digest(x0), "w0": digest(w),
                               "sampler": None if sampler is None else digest(sampler),
                               "generator": digest(generator), "dtype": str(x0.dtype), "device": x0.device.type})
    traj = run_steps(step, ParticleState(x, w), times=[k * h for k in range(config.n_steps + 1)],
                     snapshot_every=config.snapshot_every, measure=lambda st: energy.value(st.x, st.w),
                     checkpoint=ckpt, progress=progress, callback=callback, name=method,
                     info={"method": method, "config": config, "n_particles": n, "energy": repr(energy), "h": h},
                     blame=_blame(method, config))
    return _result_info(traj, step)


def by_iteration(traj: Trajectory) -> Trajectory:
    r"""The trajectory of :func:`wfr_flow` with its snapshots' times replaced by their iteration counts,
    :math:`k = t_k / h` (``h = traj.info["h"]``), for plots and look-ups over iterations.

    Args:
        traj: a trajectory of :func:`wfr_flow`.

    Returns:
        The same :class:`~mmdflow.trajectory.Trajectory` with ``times`` ``[S]`` the iteration counts (float64).

    Raises:
        ValueError: ``traj`` has no ``info["h"]`` (it is not a trajectory of :func:`wfr_flow`).
    """
    h = (traj.info or {}).get("h")
    if h is None:
        raise ValueError("by_iteration needs a trajectory of wfr_flow (info['h'], the time step)")
    return traj._replace(times=torch.round(traj.times.double() / h))


class _WFRStep:
    """One iteration of :func:`wfr_flow` for :func:`mmdflow.trajectory.run_steps`: position step, then weight step,
    on one training batch; keeps the Gram matrix of the current particles and the losses against the energy's target
    ``yt`` (weights ``target_weights``, ``None`` = uniform, also those of every training batch)."""

    def __init__(self, method, config, target, yt, kyy, generator, x, *, kernel, target_weights=None):
        self.method, self.config, self.target, self.yt, self.kyy, self.generator = (
            method, config, target, yt, kyy, generator)
        self.kernel = kernel
        self.target_weights = target_weights     # None: uniform weights on every target batch
        # Gram matrices for the weight step and the loss, or (MMD flows, many particles) memory-bounded sums
        self.dense = method in ("ift", "wfr") or x.shape[0] * max(x.shape[0], yt.shape[0]) <= GRAM_ENTRIES
        self.K, self.K_of = (kernel_matrix(x, x, self.kernel) if self.dense else None), x   # cached Gram matrix
        self.losses, self.loss_steps, self.gaps, self.iters, self.converged = [], [], [], [], []
        self._last = (None, None)

    def gram(self, x):
        if x is not self.K_of:
            self.K, self.K_of = kernel_matrix(x, x, self.kernel), x
        return self.K

    def loss(self, state: ParticleState) -> float:
        """V-statistic MMD^2 of the weighted particles against the energy's target (cached per state)."""
        x, w = state
        if self._last[0] is not None and self._last[0][0] is x and self._last[0][1] is w:
            return self._last[1]
        v = self.target_weights
        if self.dense:
            kxy = kernel_matrix(x, self.yt, self.kernel)
            val = float(w @ (self.gram(x) @ w)) - 2.0 * float(w @ (kxy.mean(1) if v is None else kxy @ v))
        else:
            val = (float(w @ kernel_sum(x, x, self.kernel, w, backend="blocked"))
                   - 2.0 * float(w @ kernel_sum(x, self.yt, self.kernel, v, backend="blocked")))
        val += self.kyy
        self._last = ((x, w), val)
        return val

    def __call__(self, k: int, state: ParticleState):
        cfg, kernel, (x, w) = self.config, self.kernel, state
        if k == 0:
            self._record(0, state)
        y = _target_batch(self.target, x.shape[0], cfg.batch_size, self.generator, x)
        v = (torch.full((y.shape[0],), 1.0 / y.shape[0], dtype=x.dtype, device=x.device)
             if self.target_weights is None else self.target_weights.to(x))
        if cfg.tau > 0:                                   # Wasserstein (position) step
            noise, variant = None, "arbel"
            if self.method == "mmd_noise":
                beta = cfg.noise.level(k)
                if beta > 0:
                    noise = beta * torch.randn(x.shape, generator=self.generator, dtype=x.dtype).to(x.device)
                    variant = cfg.noise.variant
            scaling = cfg.position_step if self.method in ("ift", "wfr") else "pure"
            x = position_step(x, y, kernel, cfg.tau, w, v, scaling=scaling, noise=noise, noise_variant=variant,
                              backend=cfg.witness_backend)
        if self.method in ("ift", "wfr"):                 # weight step at the new positions, same target batch
            K, b = self.gram(x), kernel_matrix(x, y, kernel) @ v
            if self.method == "wfr":
                w = kl_weight_step(x, w, y, kernel, cfg.kl_lr, normalise=cfg.kl_normalise, gram=K, b=b)
            elif cfg.weight_step == "pgd":
                w = mmd_pgd_weights(x, w, y, kernel, cfg.pgd_lr, gram=K, b=b)
            else:
                w, info = mmd_prox_weights(x, w, y, kernel, cfg.eta, tol=cfg.qp_tol, max_iter=cfg.qp_max_iter,
                                           gram=K, b=b)
                self.gaps.append(info.gap)
                self.iters.append(info.n_iter)
                self.converged.append(info.converged)
        state = ParticleState(x, w)
        done = k + 1
        if done % cfg.loss_every == 0 or done == cfg.n_steps:
            return state, {"loss": self._record(done, state)}
        return state, None

    def state_dict(self) -> dict:
        """The generator and the records so far, for checkpoints (the Gram matrix is recomputed on resume)."""
        return {"generator": None if self.generator is None else self.generator.get_state(),
                "records": [self.losses, self.loss_steps, self.gaps, self.iters, self.converged]}

    def load_state_dict(self, state: dict) -> None:
        if state["generator"] is not None:
            self.generator.set_state(state["generator"].cpu())
        self.losses, self.loss_steps, self.gaps, self.iters, self.converged = (list(r) for r in state["records"])

    def _record(self, k, state):
        val = self.loss(state)
        self.loss_steps.append(k)
        self.losses.append(val)
        return val


#: the scheme interface ``run(energy, x0, config, *, generator, checkpoint_dir, progress, callback)``.
run = wfr_flow
