r"""Particle flows: explicit Euler steps of the particle ODE of a functional.

For an empirical measure :math:`\mu = \frac1N\sum_i\delta_{x_i}` and a functional
:math:`F` with Wasserstein gradient :math:`\nabla\frac{\delta F}{\delta\mu}`, the
particle flow (Altekrüger et al. 2023, Sec. 5) is

.. math::
    \dot x_i = -\nabla\frac{\delta F}{\delta\mu}(x_i), \qquad
    x_i \leftarrow x_i - \Delta t\,\nabla\frac{\delta F}{\delta\mu}(x_i)

(explicit Euler). For :math:`F = \mathcal E_K` with the Riesz kernel the
velocity is :math:`\frac1N\sum_j r\|x_i-x_j\|^{r-2}(x_i-x_j)`: pure repulsion.
Coinciding particles exert no force on each other, so a Dirac measure made of
``N`` equal particles never moves, although the Wasserstein flow of
:math:`\mathcal E_K` leaves it at once (it "explodes" into :math:`\gamma(t)`,
:mod:`mmdflow.analytic`). The particle ODE is the gradient flow of ``F`` restricted
to ``N``-point measures; starting it at a tiny perturbation of the Dirac
(:func:`perturbed_dirac`) lets it follow the true flow.

For ``r < 1`` the forces grow like :math:`\|x_i-x_j\|^{r-1}` at short range and a
first step of size ``tau`` from a ``1e-9`` cloud throws particles far away; the
*slow start* of the paper's code uses ``dt = 1e-8, 1e-7, ..., 1e-2`` first.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable

import torch

from .energies import check_energy
from ._checks import check_float_dtype, check_int, check_points, check_positive
from .trajectory import Checkpoint, ParticleState, Trajectory, digest, energy_fingerprint, run_steps

__all__ = ["ParticleFlowConfig", "perturbed_dirac", "particle_flow", "run"]


@dataclass(frozen=True, kw_only=True)
class ParticleFlowConfig:
    r"""Settings of :func:`particle_flow`.

    Attributes:
        tau: step size :math:`\Delta t > 0`.
        n_steps: total number of Euler steps (slow-start steps included, as in the paper's code:
            with ``slow_start`` the final time is smaller than ``n_steps * tau``; see :meth:`times`).
        snapshot_every: record a snapshot every this many steps (plus ``t = 0`` and the end).
        snapshot_dt: instead, record a snapshot after every step that ends at a multiple of ``snapshot_dt``
            (to ``1e-9`` relative; ``None``: use ``snapshot_every``), e.g. the time grid of another scheme.
        slow_start: for ``r < 1`` starts from a Dirac: step sizes ``1e-8, 1e-7, ...`` (powers of ten
            while their running sum stays below ``tau``), then one step that reaches ``t = tau``,
            then ``tau``. With ``tau = 0.05``: ``1e-8, ..., 1e-2``, ``0.0388...``, ``0.05, ...``.
    """

    tau: float
    n_steps: int
    snapshot_every: int = 1
    slow_start: bool = False
    snapshot_dt: float | None = None

    def __post_init__(self):
        object.__setattr__(self, "tau", check_positive(self.tau, "tau"))
        object.__setattr__(self, "n_steps", check_int(self.n_steps, "n_steps", 1))
        object.__setattr__(self, "snapshot_every", check_int(self.snapshot_every, "snapshot_every", 1))
        if self.snapshot_dt is not None:
            object.__setattr__(self, "snapshot_dt", check_positive(self.snapshot_dt, "snapshot_dt"))
        if not isinstance(self.slow_start, bool):
            raise TypeError(f"slow_start must be a bool, got slow_start={self.slow_start!r}")

    @classmethod
    def until(cls, t_final: float, *, tau: float, snapshot_every: int = 1, slow_start: bool = False,
              snapshot_dt: float | None = None) -> "ParticleFlowConfig":
        """The config whose last step lands on ``t_final`` (a positive multiple of ``tau``).

        Args:
            t_final: the final time, a positive multiple of ``tau``.
            tau: the step size :math:`\\tau > 0`.
            snapshot_every: record a snapshot every this many steps.
            slow_start: start with the steps of a slow start (powers of ten up to ``tau``).
            snapshot_dt: record snapshots at multiples of this time instead, or ``None``.

        Returns:
            The :class:`ParticleFlowConfig`.

        Raises:
            ValueError: ``t_final`` is not a positive multiple of ``tau``, or a value is not positive.
        """
        tau = check_positive(tau, "tau")
        t_final = check_positive(t_final, "t_final")
        k = round(t_final / tau)
        if k < 1 or abs(k * tau - t_final) > 1e-9 * max(1.0, t_final):
            raise ValueError(f"t_final must be a positive multiple of tau={tau}, got t_final={t_final}")
        # slow start: the powers of ten, one step reaching t = tau, then k - 1 steps of tau
        n_steps = len(_slow_steps(tau)) + k if slow_start else k
        return cls(tau=tau, n_steps=n_steps, snapshot_every=snapshot_every, slow_start=slow_start,
                   snapshot_dt=snapshot_dt)

    def step_sizes(self) -> list[float]:
        """The ``n_steps`` step sizes (slow start first, when enabled).

        Returns:
            ``n_steps`` floats.
        """
        head = _slow_steps(self.tau) if self.slow_start else []
        if self.slow_start:
            head = head + [self.tau - sum(head)]
        sizes = head[: self.n_steps]
        return sizes + [self.tau] * (self.n_steps - len(sizes))

    def times(self) -> torch.Tensor:
        """Times after each step, ``[n_steps + 1]`` float64, starting at ``0``.

        Returns:
            ``[n_steps + 1]`` float64 tensor.
        """
        t = torch.zeros(self.n_steps + 1, dtype=torch.float64)
        t[1:] = torch.tensor(self.step_sizes(), dtype=torch.float64).cumsum(0)
        return t

    def snapshot_steps(self) -> list[int]:
        """The steps (from 1) after which :func:`particle_flow` records a snapshot (besides the first and last).

        Returns:
            Step indices, increasing.
        """
        if self.snapshot_dt is None:
            return list(range(self.snapshot_every, self.n_steps + 1, self.snapshot_every))
        q = self.times()[1:] / self.snapshot_dt
        on_grid = ((q - q.round()).abs() <= 1e-9 * q.clamp_min(1.0)) & (q.round() >= 1)
        return (on_grid.nonzero()[:, 0] + 1).tolist()


def _slow_steps(tau: float) -> list[float]:
    out, total = [], 0.0
    for k in range(-8, 0):
        dt = 10.0**k
        if total + dt >= tau:
            break
        out.append(dt)
        total += dt
    return out


def perturbed_dirac(n: int, d: int, *, centers: torch.Tensor | None = None, scale: float = 1e-9,
                    dtype: torch.dtype = torch.float64, device=None,
                    generator: torch.Generator | None = None) -> torch.Tensor:
    r"""``n`` particles at (a few) Dirac locations, each moved by ``scale * (U[0,1]^d - 1/2)``.

    The start of the particle flows of Altekrüger et al. (2023, Sec. 5/6): a Dirac of coinciding
    particles feels no force, so each is perturbed by a tiny uniform offset.

    Args:
        n: number of particles.
        d: dimension.
        centers: ``[k, d]`` Dirac locations (default: the origin). The particles are split in
            ``k`` consecutive blocks whose sizes differ by at most one.
        scale: perturbation size (``>= 0``).
        dtype: the dtype of the result.
        device: the device of the result (default: the centers' device, else the CPU).
        generator: drives the uniform perturbation (drawn in float64 on the CPU).

    Returns:
        ``[n, d]`` tensor of ``dtype`` on ``device`` (the centers' device if not given).
    """
    n = check_int(n, "n", 1)
    d = check_int(d, "d", 1)
    check_float_dtype(dtype)
    if isinstance(scale, bool) or not isinstance(scale, (int, float)) or not (scale >= 0) or scale == float("inf"):
        raise ValueError(f"scale must be a finite number >= 0, got scale={scale!r}")
    if centers is None:
        centers = torch.zeros(1, d, dtype=torch.float64)
    check_points(centers, "centers")
    if centers.shape[1] != d:
        raise ValueError(f"centers must have shape (k, {d}), got {tuple(centers.shape)}")
    k = centers.shape[0]
    if k > n:
        raise ValueError(f"need at least one particle per center: n={n} < {k} centers")
    device = centers.device if device is None else torch.device(device)
    counts = torch.full((k,), n // k, dtype=torch.long)
    counts[: n % k] += 1
    base = centers.detach().to(device=device, dtype=dtype).repeat_interleave(counts.to(device), dim=0)
    noise = torch.rand(n, d, generator=generator, dtype=torch.float64) - 0.5
    return base + (scale * noise).to(device=device, dtype=dtype)


class _EulerStep:
    """``x <- x - dt_k grad F(x)``: one explicit Euler step of the particle ODE (for :func:`run_steps`)."""

    def __init__(self, energy, step_sizes):
        self.energy, self.step_sizes = energy, step_sizes

    def __call__(self, k: int, state: ParticleState):
        with torch.no_grad():
            g = self.energy.gradient(state.x)
            if not isinstance(g, torch.Tensor) or g.shape != state.x.shape:   # x - tau * g would broadcast silently
                got = (f"shape {tuple(g.shape)}" if isinstance(g, torch.Tensor) else f"a {type(g).__name__}"
                       + (f" of shape {tuple(g.shape)}" if hasattr(g, "shape") else ""))
                raise ValueError(f"{type(self.energy).__name__}.gradient(x) must return a tensor of the shape of x "
                                 f"{tuple(state.x.shape)}, got {got}")
            return ParticleState(state.x - self.step_sizes[k] * g), None

    def state_dict(self) -> dict:
        """The energy's own state (e.g. the generator of a sliced energy), checkpointed with the particles."""
        return self.energy.state_dict() if callable(getattr(self.energy, "state_dict", None)) else {}

    def load_state_dict(self, state: dict) -> None:
        if callable(getattr(self.energy, "load_state_dict", None)):
            self.energy.load_state_dict(state)


def particle_flow(energy, x0: torch.Tensor, config: ParticleFlowConfig, *, progress: bool = True,
                  callback: Callable[[int, float, ParticleState], None] | None = None,
                  record_energy: bool = True, checkpoint_dir=None, generator: torch.Generator | None = None
                  ) -> Trajectory:
    r"""Explicit Euler particle flow :math:`x \leftarrow x - \Delta t\,\nabla\frac{\delta F}{\delta\mu}(x)`.

    Args:
        energy: any object with ``.gradient(x) -> [N, d]`` (the Wasserstein gradient at the particles)
            and ``.value(x) -> 0-d`` (e.g. :class:`mmdflow.energies.InteractionEnergy`,
            :class:`mmdflow.energies.DiscrepancyEnergy`).
        x0: start ``[N, d]``; its dtype and device are kept (use float64, as the paper does).
        config: :class:`ParticleFlowConfig`.
        progress: show a ``tqdm`` progress bar.
        callback: called as ``callback(step, t, state)`` after every step (``state.x``: the positions).
        record_energy: evaluate ``energy.value`` at the snapshots (``nan`` when ``False``, which saves
            one kernel sum per snapshot).
        checkpoint_dir: folder for a checkpoint after every step (``None``: none); a checkpoint of the same
            run (config, ``energy.fingerprint()``, start, dtype, device kind) resumes it, one of another run is
            refused (:class:`mmdflow.trajectory.CheckpointError`).
        generator: accepted for the scheme interface (:mod:`mmdflow.schemes`); the Euler steps draw nothing (an
            energy that samples, e.g. :class:`mmdflow.energies.SlicedDiscrepancyEnergy`, holds its own).

    Returns:
        :class:`mmdflow.trajectory.Trajectory` with snapshots at ``t = 0``, after the steps of
        ``config.snapshot_steps()`` (every ``snapshot_every`` steps, or at the multiples of ``snapshot_dt``)
        and after the last step; ``energies`` from ``energy.value``;
        ``wall_time`` counts the Euler steps only; ``info`` holds ``scheme="particle_flow"``, the
        config as a dict and the energy's repr.
    """
    check_points(x0, "x0")
    if generator is not None and not isinstance(generator, torch.Generator):
        raise TypeError(f"generator must be a torch.Generator or None, got {type(generator).__name__}")
    if not isinstance(config, ParticleFlowConfig):
        raise TypeError(f"config must be a ParticleFlowConfig, got {type(config).__name__}")
    check_energy(energy, x0, ("gradient", "value") if record_energy else ("gradient",), "particle flow")
    cfg = asdict(config)
    ckpt = None if checkpoint_dir is None else Checkpoint(
        Path(checkpoint_dir), {"scheme": "particle_flow", "config": cfg, "energy": energy_fingerprint(energy),
                               "x0": digest(x0), "dtype": str(x0.dtype), "device": x0.device.type})
    return run_steps(_EulerStep(energy, config.step_sizes()), ParticleState(x0.detach().clone()),
                     times=config.times(), snapshot_every=None, snapshot_steps=set(config.snapshot_steps()),
                     measure=(lambda s: energy.value(s.x)) if record_energy else None, checkpoint=ckpt,
                     progress=progress, callback=callback, name="particle_flow",
                     blame={"x": f"tau={config.tau:g} (the Euler step; slow_start={config.slow_start})"},
                     info={"config": cfg, "energy": repr(energy), "n_particles": x0.shape[0],
                           "dtype": str(x0.dtype), "device": str(x0.device)})


#: the scheme interface ``run(energy, x0, config, *, generator, checkpoint_dir, progress, callback)``.
run = particle_flow
