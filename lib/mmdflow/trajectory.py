"""The result type shared by every scheme, and the one time-stepping loop that produces it.

Every scheme (the particle flow, both neural schemes, the weighted-particle flows) provides a *step*:
a callable ``step(k, state) -> (state, metrics)`` that advances a :class:`ParticleState` by one time
step. :func:`run_steps` drives it: it records snapshots, writes and resumes checkpoints, shows the
progress bar, checks that the particles stay finite, times the steps and calls the callback
``callback(step, t, state)`` after every step. A step that carries state of its own (a network and
its optimiser, a random generator, cached matrices) exposes ``state_dict()`` / ``load_state_dict()``,
which the loop stores in its checkpoints.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Callable, NamedTuple, Sequence

import torch

__all__ = ["Trajectory", "ParticleState", "Checkpoint", "run_steps", "CHECKPOINT_NAME"]

#: file name of the checkpoint written into a checkpoint folder.
CHECKPOINT_NAME = "checkpoint.pt"


class Trajectory(NamedTuple):
    """Snapshots of a particle scheme.

    Attributes:
        times: ``[S]`` times of the snapshots (``t = n * tau`` for a scheme with step ``tau``).
        positions: ``[S, N, d]`` particle positions at those times.
        energies: ``[S]`` value of the functional at those times (``nan`` where not computed).
        weights: ``[S, N]`` particle weights (weighted schemes such as IFT), or ``None`` (uniform).
        wall_time: seconds spent in the scheme's steps (snapshot bookkeeping excluded).
        info: metadata (scheme name, config, device, ``step_metrics``: one dict per step, ...).
    """

    times: torch.Tensor
    positions: torch.Tensor
    energies: torch.Tensor
    weights: torch.Tensor | None = None
    wall_time: float = float("nan")
    info: dict | None = None

    def at(self, t: float) -> torch.Tensor:
        """Positions ``[N, d]`` of the snapshot whose time is closest to ``t``."""
        i = int(torch.argmin((self.times - t).abs()))
        return self.positions[i]

    def weights_at(self, t: float) -> torch.Tensor | None:
        """Weights ``[N]`` of the snapshot closest to ``t`` (``None`` for uniform weights)."""
        if self.weights is None:
            return None
        return self.weights[int(torch.argmin((self.times - t).abs()))]


class ParticleState(NamedTuple):
    """What a step advances: positions ``x`` ``[N, d]`` and weights ``w`` ``[N]`` (``None``: uniform)."""

    x: torch.Tensor
    w: torch.Tensor | None = None


class Checkpoint(NamedTuple):
    """Where and how often :func:`run_steps` checkpoints, and what a resumed run must match.

    Attributes:
        folder: the checkpoint folder (created when missing); the file is ``folder / CHECKPOINT_NAME``.
        key: what determines the run (scheme, config, start, ...): a dict of tensors and plain values.
            A checkpoint written with another key is refused with the differing entries named.
        every: write after every this many steps (and after the last).
    """

    folder: Path
    key: dict
    every: int = 1

    @property
    def path(self) -> Path:
        return Path(self.folder) / CHECKPOINT_NAME


def _same(a, b) -> bool:
    if isinstance(a, torch.Tensor) or isinstance(b, torch.Tensor):
        return (isinstance(a, torch.Tensor) and isinstance(b, torch.Tensor) and a.shape == b.shape
                and a.dtype == b.dtype and torch.equal(a.cpu(), b.cpu()))
    return a == b


def _describe(value) -> str:
    if isinstance(value, torch.Tensor):
        return f"tensor of shape {tuple(value.shape)} ({value.dtype})"
    return repr(value)


def _check_key(path: Path, saved: dict, wanted: dict) -> None:
    diff = [k for k in sorted(set(saved) | set(wanted)) if not _same(saved.get(k), wanted.get(k))]
    if not diff:
        return
    if "scheme" in diff:
        raise ValueError(f"checkpoint {path} is for the {saved.get('scheme')} scheme, not {wanted.get('scheme')}")
    if "config" in diff:
        old, new = saved.get("config") or {}, wanted.get("config") or {}
        cdiff = {k: (old.get(k), v) for k, v in new.items() if old.get(k) != v}
        raise ValueError(f"checkpoint {path} was written with another config (checkpoint value, requested value): "
                         f"{cdiff}")
    if "x0" in diff:
        raise ValueError(f"checkpoint {path} was written for other initial particles")
    details = "; ".join(f"{k}: checkpoint {_describe(saved.get(k))}, requested {_describe(wanted.get(k))}"
                        for k in diff)
    raise ValueError(f"checkpoint {path} was written for another run ({details}); use another folder or delete it")


def _save_atomic(obj, path: Path) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    torch.save(obj, tmp)
    os.replace(tmp, path)


def run_steps(step: Callable[[int, ParticleState], tuple[ParticleState, dict]], state: ParticleState, *,
              times: Sequence[float] | torch.Tensor, snapshot_every: int | None = 1,
              measure: Callable[[ParticleState], float] | None = None, checkpoint: Checkpoint | None = None,
              progress: bool = True, callback: Callable[[int, float, ParticleState], None] | None = None,
              name: str = "scheme", info: dict | None = None) -> Trajectory:
    r"""Advance ``state`` by ``len(times) - 1`` steps of ``step`` and record a :class:`Trajectory`.

    Args:
        step: ``step(k, state) -> (new_state, metrics)`` for the step from ``times[k]`` to ``times[k + 1]``
            (``metrics``: a dict of floats, or ``None``). If it has ``state_dict``/``load_state_dict``
            methods, their state is checkpointed with the particles.
        state: the start (its ``x`` and ``w`` are copied into the first snapshot).
        times: ``[n_steps + 1]`` times, from the start time to the final one.
        snapshot_every: record a snapshot every this many steps and after the last (``None``: first and last only).
        measure: ``measure(state) -> float`` recorded at each snapshot (the energy); ``None``: ``nan``.
        checkpoint: a :class:`Checkpoint`, or ``None``. A checkpoint with the same key resumes the run.
        progress: show a ``tqdm`` progress bar over the steps.
        callback: called as ``callback(step, t, state)`` after every step (after its checkpoint).
        name: the scheme's name (progress bar, error messages, ``info["scheme"]``).
        info: extra metadata for the trajectory.

    Returns:
        the :class:`Trajectory`; ``info["step_metrics"]`` holds one dict per step (with ``step``).
    """
    times = [float(t) for t in (times.tolist() if isinstance(times, torch.Tensor) else times)]
    n_steps = len(times) - 1
    if n_steps < 0:
        raise ValueError("times must hold at least the start time")
    weighted = state.w is not None

    def value(s):
        if measure is None:
            return float("nan")
        with torch.no_grad():
            return float(measure(s))

    snap_t, snap_x = [times[0]], [state.x.clone()]
    snap_w = [state.w.clone()] if weighted else None
    snap_e = [value(state)]
    step_metrics: list[dict] = []
    start, wall = 0, 0.0
    if checkpoint is not None:
        path = checkpoint.path
        Path(checkpoint.folder).mkdir(parents=True, exist_ok=True)
        if path.exists():
            saved = torch.load(path, map_location=state.x.device, weights_only=True)
            _check_key(path, saved["key"], checkpoint.key)
            if hasattr(step, "load_state_dict"):
                step.load_state_dict(saved["step_state"])
            x = saved["x"].to(state.x)
            state = ParticleState(x, saved["w"].to(state.w) if weighted else None)
            start = int(saved["step"])
            snap_t = list(saved["snap_t"])
            snap_x = [p.to(state.x) for p in saved["snap_x"]]
            snap_w = [p.to(state.w) for p in saved["snap_w"]] if weighted else None
            snap_e = list(saved["snap_e"])
            step_metrics = list(saved["metrics"])
            wall = float(saved["wall_time"])

    bar = None
    if progress:
        from tqdm.auto import tqdm
        bar = tqdm(total=n_steps, initial=start, desc=name, leave=False)
    cuda = state.x.device.type == "cuda"
    for k in range(start, n_steps):
        t0 = time.perf_counter()
        state, metrics = step(k, state)
        if cuda:
            torch.cuda.synchronize(state.x.device)
        wall += time.perf_counter() - t0
        if not bool(torch.isfinite(state.x).all()):
            raise FloatingPointError(f"{name} produced non-finite particles at step {k + 1} (t = {times[k + 1]:.4g})"
                                     f"; last metrics {metrics}; try a smaller step")
        metrics = dict(metrics or {}, step=k + 1)
        step_metrics.append(metrics)
        last = k + 1 == n_steps
        if last or (snapshot_every is not None and (k + 1) % snapshot_every == 0):
            snap_t.append(times[k + 1])
            snap_x.append(state.x.clone())
            if weighted:
                snap_w.append(state.w.clone())
            snap_e.append(value(state))
        if checkpoint is not None and ((k + 1) % checkpoint.every == 0 or last):
            _save_atomic({"key": checkpoint.key, "step": k + 1, "x": state.x.cpu(),
                          "w": state.w.cpu() if weighted else None,
                          "step_state": step.state_dict() if hasattr(step, "state_dict") else {},
                          "snap_t": snap_t, "snap_x": [p.cpu() for p in snap_x],
                          "snap_w": [p.cpu() for p in snap_w] if weighted else None, "snap_e": snap_e,
                          "metrics": step_metrics, "wall_time": wall}, checkpoint.path)
        if bar is not None:
            bar.update(1)
            if "loss" in metrics:
                bar.set_postfix(loss=f"{metrics['loss']:.4g}")
        if callback is not None:
            callback(k + 1, times[k + 1], state)
    if bar is not None:
        bar.close()
    return Trajectory(times=torch.tensor(snap_t, dtype=torch.float64), positions=torch.stack(snap_x),
                      energies=torch.tensor(snap_e, dtype=torch.float64),
                      weights=torch.stack(snap_w) if weighted else None, wall_time=wall,
                      info={"scheme": name, **(info or {}), "step_metrics": step_metrics})
