r"""Neural backward (JKO) and neural forward schemes of Altekrüger, Hertrich, Steidl (ICML 2023).

Both schemes move an empirical measure :math:`\mu_n = \frac1M\sum_i\delta_{x_i}` along the
Wasserstein gradient flow of a functional :math:`F` (e.g. the interaction energy
:math:`\mathcal E_K`, or :math:`\mathcal D_K^2(\cdot,\nu)`), without ever needing a transport
*map*: a network models the disintegration of a transport (or velocity) *plan*, so a single
particle may be split into a whole distribution. That is what lets the schemes leave a Dirac
measure, where particle flows are stuck (paper, Secs. 3-4).

**Neural backward scheme** (paper, Sec. 3; JKO step with plans). The Markov kernel
:math:`\pi_x = T_\theta(x,\cdot)_\#P_Z`, :math:`P_Z = \mathcal N(0, I_{d_z})`, is trained by minimising

.. math::
    \tau\Big[\frac{1}{2\tau}\,\mathbb E_{x\sim\mu_n,\,z\sim P_Z}\|x - T_\theta(x, z)\|^2
    + F\big(T_{\theta\#}(\mu_n\times P_Z)\big)\Big],

estimated from two independent batches (:func:`backward_loss`); then every particle is pushed
once with a fresh latent, :math:`x_i \leftarrow T_\theta(x_i, z_i)`.

**Neural forward scheme** (paper, Sec. 4; steepest descent with velocity plans). A network
:math:`v_\theta(x, z)` models a velocity plan; it minimises the normalised directional
derivative :math:`\hat D_{v}F / (\|v\| + \varepsilon)` (:func:`forward_loss`), and the explicit
step is :math:`x_i \leftarrow x_i + \tau\,\max(-\hat D, 0)\,v_\theta(x_i, z_i)/\|v\|^2`
(:func:`forward_step`).

Both schemes keep one network and one Adam optimiser across all time steps (warm start),
run on the device of the particles (float32 by default), draw every batch and latent from an
explicit ``torch.Generator``, and can checkpoint after each time step and resume from the last
checkpoint (``checkpoint_dir``). The functional follows :class:`mmdflow.energies.Energy`, checked once at the
start (:func:`mmdflow.energies.check_energy`): the backward scheme needs ``energy.batch_estimate(x1, x2)``, the
forward scheme ``energy.batch_directional_derivative(x1, u1, x2, u2)``, and a target must have the dimension of
the particles. The networks and the explicit engine's pieces are in :mod:`mmdflow.neural.networks`, the losses
and the training loop in :mod:`mmdflow.neural.training`.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable

import torch

from .._checks import check_points, check_positive, check_int
from ..energies import check_energy
from .networks import GenerativeMLP, make_network, make_optimizer
from .networks import _Adam, _ExplicitMLP  # noqa: F401  (the explicit engine's pieces, used by tests/test_gpu.py)
from .training import (ENGINES, backward_loss, explicit_engine_supported, forward_loss, train_backward,
                       train_forward)
from .training import (_explicit_backward_terms, _explicit_forward_terms,  # noqa: F401  (tests/test_gpu.py)
                       _latent, _two_batches)
from ..trajectory import CHECKPOINT_NAME, Checkpoint, ParticleState, Trajectory, digest, energy_fingerprint, run_steps

__all__ = [
    "NeuralBackwardConfig",
    "NeuralForwardConfig",
    "GenerativeMLP",
    "make_network",
    "make_optimizer",
    "backward_loss",
    "forward_loss",
    "train_backward",
    "train_forward",
    "backward_step",
    "forward_step",
    "neural_backward_flow",
    "neural_forward_flow",
    "run_backward",
    "run_forward",
    "explicit_engine_supported",
    "ENGINES",
    "CHECKPOINT_NAME",
]

_DTYPES = {"float32": torch.float32, "float64": torch.float64}


@dataclass(frozen=True, kw_only=True)
class _NeuralConfig:
    tau: float = 0.05
    n_steps: int = 24
    width: int = 64
    hidden_layers: int = 2
    latent_dim: int | None = None
    lr: float = 1e-3
    iterations: int = 5000
    iterations_start: int | None = None
    start_time: float = 1.0
    batch_size: int = 100
    snapshot_every: int = 4
    checkpoint_every: int = 1
    dtype: str = "float32"
    engine: str = "auto"

    def __post_init__(self):
        check_positive(self.tau, "tau")
        check_positive(self.lr, "lr")
        if isinstance(self.start_time, bool) or not isinstance(self.start_time, (int, float)) \
                or not math.isfinite(self.start_time) or self.start_time < 0:
            raise ValueError(f"start_time must be a finite number >= 0, got {self.start_time!r}")
        check_int(self.n_steps, "n_steps", 1)
        check_int(self.width, "width", 1)
        check_int(self.hidden_layers, "hidden_layers", 1)
        check_int(self.iterations, "iterations", 1)   # 0: an untrained network would move the particles
        check_int(self.batch_size, "batch_size", 1)
        check_int(self.snapshot_every, "snapshot_every", 1)
        check_int(self.checkpoint_every, "checkpoint_every", 1)
        if self.latent_dim is not None:
            check_int(self.latent_dim, "latent_dim", 1)
        if self.iterations_start is not None:
            check_int(self.iterations_start, "iterations_start", 1)
        if self.dtype not in _DTYPES:
            raise ValueError(f"dtype must be one of {sorted(_DTYPES)}, got {self.dtype!r}")
        if self.engine not in ENGINES:
            raise ValueError(f"engine must be one of {ENGINES}, got {self.engine!r}")

    @property
    def torch_dtype(self) -> torch.dtype:
        return _DTYPES[self.dtype]

    @property
    def final_time(self) -> float:
        return self.n_steps * self.tau

    def iterations_at(self, t: float) -> int:
        """Adam iterations for the step that starts at time ``t`` (``iterations_start`` while ``t < start_time``)."""
        if self.iterations_start is not None and t < self.start_time - 1e-12:
            return self.iterations_start
        return self.iterations


@dataclass(frozen=True, kw_only=True)
class NeuralBackwardConfig(_NeuralConfig):
    r"""Settings of the neural backward (JKO) scheme (paper Sec. 3 and Sec. 6.1).

    Attributes:
        tau: time step :math:`\tau`; n_steps: number of steps (final time ``n_steps * tau``).
        width, hidden_layers: the MLP ``Linear(d + d_z, width), ReLU, (hidden_layers - 1) x
            [Linear(width, width), ReLU], Linear(width, d)``.
        latent_dim: :math:`d_z` (``None``: the particle dimension ``d``).
        lr: Adam learning rate.
        iterations: Adam iterations per time step; iterations_start: iterations while
            ``t < start_time`` (``None``: same as ``iterations``).
        batch_size: ``B``, the size of each of the two independent batches.
        snapshot_every: keep the positions every this many steps (and the last step).
        checkpoint_every: with a ``checkpoint_dir``, write a checkpoint every this many steps (and the last).
        dtype: ``"float32"`` (paper) or ``"float64"``: the dtype of the network and the particles.
        engine: how the loss is differentiated (:data:`ENGINES`): ``"explicit"`` (written-out gradients of the
            loss and of the MLP, Adam called on its state directly: no autograd graph, no host synchronisation
            in the loop), ``"autograd"`` (the reference) or ``"auto"`` (explicit where supported: a
            :class:`GenerativeMLP`, Adam, and an energy with ``batch_estimate_and_grad`` /
            ``batch_directional_derivative_and_grad``). Both give the same iterates up to rounding.
    """


@dataclass(frozen=True, kw_only=True)
class NeuralForwardConfig(_NeuralConfig):
    r"""Settings of the neural forward scheme (paper Sec. 4 and Sec. 6.1).

    The attributes of :class:`NeuralBackwardConfig`, plus

    Attributes:
        batch1: size of the two fresh batches on which the step's descent rate
            :math:`\max(-\hat D, 0)/\|v\|^2` is estimated (capped at the number of particles).
        eps: :math:`\varepsilon` in the training loss :math:`\hat D/(\|v\| + \varepsilon)`.
    """

    batch1: int = 2000
    eps: float = 1e-2

    def __post_init__(self):
        super().__post_init__()
        check_int(self.batch1, "batch1", 1)
        check_positive(self.eps, "eps")


@torch.no_grad()
def _push_all(fn, net, x, generator, chunk=65536):
    out = torch.empty_like(x)
    for s in range(0, x.shape[0], chunk):
        xb = x[s:s + chunk]
        out[s:s + chunk] = fn(xb, net(xb, _latent(xb.shape[0], net, x, generator)))
    return out


def backward_step(net, optimizer, energy, x: torch.Tensor, tau: float, *, iterations: int, batch_size: int,
                  generator: torch.Generator | None = None, engine: str = "auto") -> tuple[torch.Tensor, dict]:
    r"""One neural JKO step: train :math:`T_\theta` (warm start), then :math:`x_i\leftarrow T_\theta(x_i, z_i)`.

    Args:
        net: the network :math:`T_\theta` (trained in place, warm start).
        optimizer: its optimiser (Adam).
        energy: the functional; needs ``batch_estimate(x1, x2)``.
        x: particles ``[M, d]`` of :math:`\mu_n`.
        tau: the step size :math:`\tau`.
        iterations: the training iterations of this step.
        batch_size: the training batch size.
        generator: the source of batches and latents.
        engine: ``"explicit"``, ``"autograd"`` or ``"auto"`` (see :func:`train_backward`).

    Returns:
        the particles ``[M, d]`` of :math:`\mu_{n+1}` and the training metrics.
    """
    metrics = train_backward(net, optimizer, energy, x, tau, iterations=iterations, batch_size=batch_size,
                             generator=generator, engine=engine)
    return _push_all(lambda xb, out: out, net, x, generator), metrics


def forward_step(net, optimizer, energy, x: torch.Tensor, tau: float, *, iterations: int, batch_size: int,
                 batch1: int, eps: float = 1e-2, generator: torch.Generator | None = None, engine: str = "auto"
                 ) -> tuple[torch.Tensor, dict]:
    r"""One neural forward (steepest-descent) step (paper Sec. 4).

    Train :math:`v_\theta` on :func:`forward_loss`, estimate on two fresh batches of size
    ``batch1`` the directional derivative :math:`\hat D` and :math:`\|\hat v\|^2`, and move every
    particle with a fresh latent:

    .. math::
        x_i \leftarrow x_i + \tau\,\frac{\max(-\hat D, 0)}{\|\hat v\|^2}\,v_\theta(x_i, z_i)
        = x_i + \tau\,\big(-D_{\hat v/\|\hat v\|}F\big)_+\,\frac{v_\theta(x_i, z_i)}{\|\hat v\|}.

    If the learned direction is not a descent direction (:math:`\hat D \ge 0`), nothing moves.

    Returns:
        the new particles ``[M, d]`` and the metrics (training metrics plus ``rate`` = :math:`\max(-\hat D,0)/\|\hat v\|^2`).

    Args:
        net: the velocity network :math:`v_\theta`.
        optimizer: its optimiser (Adam).
        energy: the functional; needs ``batch_directional_derivative(x1, u1, x2, u2)``.
        x: particles ``[M, d]``.
        tau: the step size :math:`\tau`.
        iterations: the training iterations of this step.
        batch_size: the training batch size.
        batch1: the size of the two batches estimating :math:`\hat D` and :math:`\|\hat v\|^2`.
        eps: the regulariser of :func:`forward_loss`.
        generator: the source of batches and latents.
        engine: ``"explicit"``, ``"autograd"`` or ``"auto"`` (see :func:`train_backward`).

    Returns:
        ``(x_new, metrics)``: the new particles ``[M, d]`` and the metrics (training metrics plus ``step_derivative``,
        ``step_norm2`` and ``rate`` = :math:`\max(-\hat D,0)/\|\hat v\|^2`).
    """
    metrics = train_forward(net, optimizer, energy, x, iterations=iterations, batch_size=batch_size, eps=eps,
                            generator=generator, engine=engine)
    with torch.no_grad():
        x1, x2 = _two_batches(x, batch1, generator)
        u1 = net(x1, _latent(x1.shape[0], net, x, generator))
        u2 = net(x2, _latent(x2.shape[0], net, x, generator))
        d_hat = energy.batch_directional_derivative(x1, u1, x2, u2)
        norm2 = torch.cat([u1.pow(2).sum(1), u2.pow(2).sum(1)]).mean()
        rate = (-d_hat).clamp_min(0) / norm2.clamp_min(torch.finfo(x.dtype).tiny)
    metrics = dict(metrics, step_derivative=float(d_hat), step_norm2=float(norm2), rate=float(rate))
    return _push_all(lambda xb, u: xb + tau * rate * u, net, x, generator), metrics


# ----------------------------------------------------------------------------------------------
# whole flows, with checkpoints
# ----------------------------------------------------------------------------------------------

def _energy_value(energy, state):
    """``energy.value`` at the particles (``nan`` for an energy without ``value``); its errors propagate."""
    value = getattr(energy, "value", None)
    return float("nan") if value is None else float(value(state.x))


class _NeuralStep:
    """One time step of a neural scheme for :func:`mmdflow.trajectory.run_steps`: train the network (warm
    start), then move every particle; the network, its optimiser and the generator are its checkpointed state."""

    def __init__(self, move, energy, config, net, optimizer, generator):
        self.move, self.energy, self.config = move, energy, config
        self.net, self.optimizer, self.generator = net, optimizer, generator

    def __call__(self, k: int, state: ParticleState):
        its = self.config.iterations_at(k * self.config.tau)
        x, metrics = self.move(self.net, self.optimizer, self.energy, state.x, its, self.generator)
        return ParticleState(x), dict(metrics, iterations=its)

    def state_dict(self) -> dict:
        return {"net": self.net.state_dict(), "optimizer": self.optimizer.state_dict(),
                "generator": self.generator.get_state()}

    def load_state_dict(self, state: dict) -> None:
        self.net.load_state_dict(state["net"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.generator.set_state(state["generator"].cpu())


def _run_flow(scheme: str, energy, x0: torch.Tensor, config, move, *, generator, checkpoint_dir, progress,
              callback) -> Trajectory:
    check_points(x0, "x0")
    check_energy(energy, x0, ("batch_estimate",) if scheme == "backward" else ("batch_directional_derivative",),
                 f"neural {scheme}")
    x = x0.detach().to(config.torch_dtype)
    device = x.device
    if generator is None:
        if checkpoint_dir is not None:
            raise ValueError(f"checkpoint_dir={str(checkpoint_dir)!r} needs an explicit, seeded generator: a run with "
                             "generator=None draws a fresh seed and could never be resumed")
        generator = torch.Generator(device=device)
        generator.seed()
    elif not isinstance(generator, torch.Generator):
        raise TypeError(f"generator must be a torch.Generator or None, got {type(generator).__name__}")
    elif generator.device.type != device.type:
        raise ValueError(f"generator is on {generator.device} but the particles are on {device}; "
                         f"create it with torch.Generator(device={str(device)!r})")
    cfg = asdict(config)
    ckpt = None if checkpoint_dir is None else Checkpoint(    # the key before the network draws from the generator
        Path(checkpoint_dir), {"scheme": scheme, "config": cfg, "energy": energy_fingerprint(energy), "x0": digest(x),
                               "generator": digest(generator), "dtype": str(x.dtype), "device": device.type},
        config.checkpoint_every)
    net = make_network(x.shape[1], config, device=device, generator=generator)
    step = _NeuralStep(move, energy, config, net, make_optimizer(net, config), generator)
    times = [n * config.tau for n in range(config.n_steps + 1)]
    traj = run_steps(step, ParticleState(x), times=times, snapshot_every=config.snapshot_every,
                     measure=lambda s: _energy_value(energy, s), checkpoint=ckpt, progress=progress,
                     callback=callback, name=f"neural {scheme}",
                     blame={"x": f"tau={config.tau:g} or lr={config.lr:g} (the network's training)"},
                     info={"config": cfg, "device": str(device), "network": net})
    return traj._replace(positions=traj.positions.to(x0.dtype))


def neural_backward_flow(energy, x0: torch.Tensor, config: NeuralBackwardConfig, *,
                         generator: torch.Generator | None = None, checkpoint_dir=None, progress: bool = True,
                         callback: Callable[[int, float, ParticleState], None] | None = None) -> Trajectory:
    r"""The neural backward (JKO) scheme (Altekrüger et al. 2023, Sec. 3) for ``config.n_steps`` steps.

    Args:
        energy: the functional; needs ``batch_estimate(x1, x2)`` (and ``value(x)`` for the recorded energies).
        x0: initial particles ``[M, d]`` (e.g. ``torch.zeros(M, d)`` for :math:`\delta_0`; exact Diracs are fine).
            The scheme computes in ``config.dtype`` on the device of ``x0`` (network and all sampling);
            the returned positions have the dtype of ``x0``.
        config: a :class:`NeuralBackwardConfig`.
        generator: ``torch.Generator`` on the device of ``x0`` for the initial weights, batches and latents.
        checkpoint_dir: directory for a checkpoint after every ``config.checkpoint_every`` steps (needs a
            seeded ``generator``). If it holds a checkpoint of the same run (scheme, config,
            ``energy.fingerprint()``, ``x0``, the generator's initial state, dtype, device kind), the run resumes
            from it; a checkpoint of another run is refused (:class:`mmdflow.trajectory.CheckpointError`).
        progress: show a ``tqdm`` progress bar over the time steps.
        callback: called as ``callback(step, t, state)`` after each step (and after its checkpoint).

    Returns:
        a :class:`~mmdflow.trajectory.Trajectory` with snapshots every ``config.snapshot_every`` steps
        (``times`` in float64, ``positions`` ``[S, M, d]``); ``info["step_metrics"]`` holds the training
        metrics of each step and ``info["network"]`` the trained network.
    """
    if not isinstance(config, NeuralBackwardConfig):
        raise TypeError(f"config must be a NeuralBackwardConfig, got {type(config).__name__}")

    def move(net, opt, en, x, its, gen):
        return backward_step(net, opt, en, x, config.tau, iterations=its, batch_size=config.batch_size,
                             generator=gen, engine=config.engine)

    return _run_flow("backward", energy, x0, config, move, generator=generator, checkpoint_dir=checkpoint_dir,
                     progress=progress, callback=callback)


def neural_forward_flow(energy, x0: torch.Tensor, config: NeuralForwardConfig, *,
                        generator: torch.Generator | None = None, checkpoint_dir=None, progress: bool = True,
                        callback: Callable[[int, float, ParticleState], None] | None = None) -> Trajectory:
    r"""The neural forward scheme (Altekrüger et al. 2023, Sec. 4) for ``config.n_steps`` steps.

    Same arguments and result as :func:`neural_backward_flow`; ``energy`` needs
    ``batch_directional_derivative(x1, u1, x2, u2)``. From an exact Dirac the directional derivative
    of the Riesz interaction energy is finite only for ``r = 1`` (paper Sec. 6.1): for ``r > 1`` it
    vanishes and nothing moves, for ``r < 1`` it is :math:`-\infty`.

    Args:
        energy: the functional; needs ``batch_directional_derivative(x1, u1, x2, u2)`` (and ``value(x)``).
        x0: initial particles ``[M, d]``.
        config: a :class:`NeuralForwardConfig`.
        generator: ``torch.Generator`` on the device of ``x0``.
        checkpoint_dir: as in :func:`neural_backward_flow`.
        progress: show a ``tqdm`` progress bar.
        callback: called as ``callback(step, t, state)`` after each step.

    Returns:
        A :class:`~mmdflow.trajectory.Trajectory` (as in :func:`neural_backward_flow`).

    Raises:
        TypeError: ``config`` is not a :class:`NeuralForwardConfig`.
    """
    if not isinstance(config, NeuralForwardConfig):
        raise TypeError(f"config must be a NeuralForwardConfig, got {type(config).__name__}")

    def move(net, opt, en, x, its, gen):
        return forward_step(net, opt, en, x, config.tau, iterations=its, batch_size=config.batch_size,
                            batch1=config.batch1, eps=config.eps, generator=gen, engine=config.engine)

    return _run_flow("forward", energy, x0, config, move, generator=generator, checkpoint_dir=checkpoint_dir,
                     progress=progress, callback=callback)


#: the scheme interface ``run(energy, x0, config, *, generator, checkpoint_dir, progress, callback)`` of each scheme.
run_backward, run_forward = neural_backward_flow, neural_forward_flow
