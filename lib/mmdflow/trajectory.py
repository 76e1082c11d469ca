"""The result type shared by every scheme, and the one time-stepping loop that produces it.

Every scheme (the particle flow, both neural schemes, the weighted-particle flows) provides a *step*:
a callable ``step(k, state) -> (state, metrics)`` that advances a :class:`ParticleState` by one time
step. :func:`run_steps` drives it: it records snapshots, writes and resumes checkpoints, shows the
progress bar, checks that the particles stay finite, times the steps and calls the callback
``callback(step, t, state)`` after every step. A step that carries state of its own (a network and
its optimiser, a random generator, cached matrices) exposes ``state_dict()`` / ``load_state_dict()``,
which the loop stores in its checkpoints.

A checkpoint carries a *key*: a fingerprint of everything that determines the run (scheme, config, the
energy's :meth:`fingerprint`, a digest of the start, the generator's initial state, dtype, device kind; see
:func:`digest`). Resuming with another key, or from a file that is not a readable checkpoint, raises
:class:`CheckpointError` naming the differing fields, the folder and what to do. Every checkpoint also carries a
checksum of its contents (a digest of the positions, weights, snapshots and the step's state), checked on load: a
file changed on disk (a flipped byte in the tensor data) is refused. The folder is checked for writing before the
first step, held under an exclusive lock during the run (a second writer is refused), and each checkpoint is written
to a uniquely named temporary file and renamed over the previous one.

After every step the loop checks every field of the state (positions, weights, a ``loss`` metric) and raises an
error naming the step, the time, the scheme and the parameter most likely responsible (the scheme's ``blame``).

The fingerprints of the keys (:func:`digest`, :func:`energy_fingerprint`) are in :mod:`mmdflow.fingerprints`.
"""

from __future__ import annotations

import contextlib
import math
import os
import tempfile
import warnings
from numbers import Real
from pathlib import Path
from typing import Callable, Collection, NamedTuple, Sequence

import torch

from .fingerprints import digest, energy_fingerprint
from .runtime import timed

__all__ = ["Trajectory", "ParticleState", "Checkpoint", "CheckpointError", "run_steps", "digest",
           "energy_fingerprint", "CHECKPOINT_NAME", "CHECKPOINT_FORMAT", "LOCK_NAME"]

#: file name of the checkpoint written into a checkpoint folder.
CHECKPOINT_NAME = "checkpoint.pt"
#: format tag stored in every checkpoint (files without it are refused as foreign). Format 3 adds ``checksum``, a
#: :func:`digest` of everything else in the file, checked on load (a flipped byte in the tensor data is refused).
CHECKPOINT_FORMAT = "mmdflow-checkpoint-3"
#: the previous format (no checksum): still resumed, with a warning that its data cannot be verified.
_LEGACY_FORMAT = "mmdflow-checkpoint-2"
_SAVED_FIELDS = ("format", "key", "step", "x", "w", "step_state", "snap_t", "snap_x", "snap_w", "snap_e", "metrics",
                 "wall_time")
#: name of the lock file that keeps a second process from writing the same checkpoint folder.
LOCK_NAME = "checkpoint.lock"


class CheckpointError(ValueError):
    """A checkpoint that belongs to another run, a file that is not a readable (or intact) checkpoint, or a
    checkpoint folder that cannot be written or is being written by another process."""


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

    def index_of(self, t: float, *, tol: float = 1e-6) -> int:
        """Index of the snapshot at time ``t``: the nearest one, which must lie within ``tol * max(1, |t|)``.

        Raises ``ValueError`` otherwise (the message lists the recorded times); ``tol=float("inf")`` accepts
        the nearest snapshot whatever its time.

        Args:
            t: the time (a finite real number).
            tol: the relative tolerance, ``>= 0``.

        Returns:
            The snapshot index.

        Raises:
            TypeError: ``t`` is not a finite real number.
            ValueError: ``tol`` is negative, or no snapshot lies within the tolerance (the message lists the recorded
                times); ``tol=float("inf")`` accepts the nearest snapshot whatever its time.
        """
        if isinstance(t, bool) or not isinstance(t, Real) or not math.isfinite(t):
            raise TypeError(f"t must be a finite real number, got t={t!r}")
        t = float(t)
        if isinstance(tol, bool) or not isinstance(tol, Real) or not tol >= 0:
            raise ValueError(f"tol must be a number >= 0, got tol={tol!r}")
        gap = (self.times - t).abs()
        i = int(torch.argmin(gap))
        if float(gap[i]) > tol * max(1.0, abs(t)):
            shown = ", ".join(f"{v:.6g}" for v in self.times[:12].tolist()) + (", ..." if len(self.times) > 12 else "")
            raise ValueError(f"no snapshot at t={t!r}: the nearest is t={float(self.times[i])!r} (recorded times "
                             f"{shown}; tolerance {tol:g} x max(1, |t|)); ask for a recorded time, or pass a larger tol")
        return i

    def at(self, t: float, *, tol: float = 1e-6) -> torch.Tensor:
        """Positions ``[N, d]`` of the snapshot at time ``t`` (:meth:`index_of`: none within ``tol`` raises).

        Args:
            t: the time.
            tol: the relative tolerance.

        Returns:
            ``[N, d]`` tensor.

        Raises:
            ValueError: no snapshot lies within the tolerance.
        """
        return self.positions[self.index_of(t, tol=tol)]

    def weights_at(self, t: float, *, tol: float = 1e-6) -> torch.Tensor | None:
        """Weights ``[N]`` of the snapshot at time ``t`` (``None`` for uniform weights); ``tol`` as in :meth:`at`.

        Args:
            t: the time.
            tol: the relative tolerance.

        Returns:
            ``[N]`` tensor, or ``None``.

        Raises:
            ValueError: no snapshot lies within the tolerance.
        """
        i = self.index_of(t, tol=tol)
        return None if self.weights is None else self.weights[i]


class ParticleState(NamedTuple):
    """What a step advances: positions ``x`` ``[N, d]`` and weights ``w`` ``[N]`` (``None``: uniform)."""

    x: torch.Tensor
    w: torch.Tensor | None = None


class Checkpoint(NamedTuple):
    """Where and how often :func:`run_steps` checkpoints, and what a resumed run must match.

    Attributes:
        folder: the checkpoint folder (created when missing); the file is ``folder / CHECKPOINT_NAME``.
        key: what determines the run (scheme, config, energy fingerprint, digests of the start and of the
            generator's initial state, dtype, device kind): a dict of plain values, nested dicts and tensors.
            A checkpoint written with another key is refused (:class:`CheckpointError`) with the differing
            entries named.
        every: write after every this many steps (and after the last).
    """

    folder: Path
    key: dict
    every: int = 1

    @property
    def path(self) -> Path:
        return Path(self.folder) / CHECKPOINT_NAME


def _flatten(key: dict, prefix: str = "") -> dict:
    """Nested dicts as ``{"energy.target": ...}``."""
    out = {}
    for k, v in key.items():
        name = f"{prefix}{k}"
        if isinstance(v, dict) and v:
            out.update(_flatten(v, name + "."))
        else:
            out[name] = v
    return out


def _same(a, b) -> bool:
    if isinstance(a, torch.Tensor) or isinstance(b, torch.Tensor):
        return (isinstance(a, torch.Tensor) and isinstance(b, torch.Tensor) and a.shape == b.shape
                and a.dtype == b.dtype and torch.equal(a.cpu(), b.cpu()))
    return a == b


def _describe(value) -> str:
    if isinstance(value, torch.Tensor):
        return f"tensor of shape {tuple(value.shape)} ({value.dtype})"
    return repr(value)


_FIELD_NAMES = {"x0": "x0 (the initial particles, digest)", "generator": "generator (its initial state, digest)"}


def _check_key(path: Path, saved: dict, wanted: dict) -> None:
    """Raise :class:`CheckpointError` naming every field in which the checkpoint's key differs from the run's."""
    old, new = _flatten(saved), _flatten(wanted)
    diff = [k for k in sorted(set(old) | set(new)) if not _same(old.get(k, "(missing)"), new.get(k, "(missing)"))]
    if not diff:
        return
    details = "; ".join(f"{_FIELD_NAMES.get(k, k)}: checkpoint {_describe(old.get(k, '(missing)'))}, requested "
                        f"{_describe(new.get(k, '(missing)'))}" for k in diff)
    raise CheckpointError(f"the checkpoint folder {str(path.parent)!r} holds another run ({len(diff)} field(s) differ: "
                          f"{details}); use another checkpoint folder for this run, or delete {str(path)!r} to "
                          "start it afresh")


def _load_checkpoint(path: Path, device) -> dict:
    """The saved dict of ``path``, or :class:`CheckpointError` saying what is wrong with the file and what to do."""
    what_to_do = (f"delete {str(path)!r} (the run then starts afresh) or pass another checkpoint folder")
    try:
        saved = torch.load(path, map_location=device, weights_only=True)
    except Exception as exc:   # truncated, empty or foreign: torch raises many kinds (EOFError, RuntimeError, ...)
        size = path.stat().st_size if path.exists() else 0
        raise CheckpointError(f"the checkpoint file {str(path)!r} ({size} bytes) cannot be read "
                              f"({type(exc).__name__}: {exc}); it is truncated, empty or not an mmdflow checkpoint: "
                              f"{what_to_do}") from exc
    fmt = saved.get("format") if isinstance(saved, dict) else None
    if fmt not in (CHECKPOINT_FORMAT, _LEGACY_FORMAT):
        found = saved.get("format", "no format tag") if isinstance(saved, dict) else type(saved).__name__
        raise CheckpointError(f"the file {str(path)!r} is not an mmdflow checkpoint of format {CHECKPOINT_FORMAT!r} "
                              f"(found {found!r}): {what_to_do}")
    missing = [k for k in _SAVED_FIELDS + (("checksum",) if fmt == CHECKPOINT_FORMAT else ()) if k not in saved]
    if missing:
        raise CheckpointError(f"the checkpoint file {str(path)!r} lacks the entries {missing}: {what_to_do}")
    if fmt == _LEGACY_FORMAT:
        warnings.warn(f"the checkpoint file {str(path)!r} has the format {_LEGACY_FORMAT!r}, written before "
                      "checkpoints carried a checksum: its data cannot be verified; resuming it (delete it to start "
                      "the run afresh)", stacklevel=3)
        return saved
    try:
        actual = _checksum(saved)
    except TypeError as exc:
        raise CheckpointError(f"the checkpoint file {str(path)!r} holds an entry that cannot be checked ({exc}): "
                              f"{what_to_do}") from exc
    if actual != saved["checksum"]:
        raise CheckpointError(f"the checkpoint file {str(path)!r} is corrupted: the checksum of its contents "
                              f"({actual}) differs from the one stored when it was written ({saved['checksum']!r}); "
                              f"its data (positions, weights, snapshots or the scheme's state) changed on disk: "
                              f"{what_to_do}")
    return saved


def _checksum(saved: dict) -> str:
    """:func:`digest` of every entry of a checkpoint but ``checksum`` (tensors by their bytes, device-independent)."""
    return digest({k: v for k, v in saved.items() if k != "checksum"})


def _describe_os_error(exc: BaseException) -> str:
    if isinstance(exc, OSError) and exc.strerror:
        return f"{exc.strerror} [errno {exc.errno}]"
    return f"{type(exc).__name__}: {exc}"


def _prepare_folder(folder: Path) -> None:
    """Create the checkpoint folder and check that a file can be written in it, before any step is computed."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(prefix=".write-test-", dir=folder)
        try:
            os.write(fd, b"mmdflow")
        finally:
            os.close(fd)
            os.unlink(probe)
    except OSError as exc:
        raise CheckpointError(f"the checkpoint folder {str(folder)!r} cannot be written "
                              f"({_describe_os_error(exc)}); nothing was computed: make it writable, free space, or "
                              f"pass another checkpoint folder (or none)") from exc


class _FolderLock:
    """An exclusive ``flock`` on ``folder / LOCK_NAME`` for the duration of a run: a second process (or a second run
    in this one) that writes the same checkpoint folder is refused instead of overwriting the first one's file."""

    def __init__(self, folder: Path):
        self.path, self.fd = folder / LOCK_NAME, None

    def __enter__(self):
        try:
            import fcntl
        except ImportError:      # pragma: no cover - not on POSIX: no lock
            return self
        try:
            self.fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as exc:
            raise CheckpointError(f"cannot create the lock file {str(self.path)!r} of the checkpoint folder "
                                  f"({_describe_os_error(exc)})") from exc
        try:
            fcntl.flock(self.fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            holder = os.pread(self.fd, 64, 0).decode(errors="replace").strip() or "unknown"
            os.close(self.fd)
            self.fd = None
            raise CheckpointError(f"the checkpoint folder {str(self.path.parent)!r} is being written by another run "
                                  f"(process {holder} holds {str(self.path)!r}); wait for it to finish, or give this "
                                  "run another checkpoint folder") from exc
        os.ftruncate(self.fd, 0)
        os.pwrite(self.fd, str(os.getpid()).encode(), 0)
        return self

    def __exit__(self, *exc):
        if self.fd is not None:
            import fcntl
            fcntl.flock(self.fd, fcntl.LOCK_UN)
            os.close(self.fd)
            self.fd = None
        return False


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _save_atomic(obj: dict, path: Path, step: int) -> None:
    """Write ``obj`` (with its checksum) to a uniquely named temporary file beside ``path``, then rename it over
    ``path``: an interrupted or failed write leaves the previous checkpoint intact and no temporary file."""
    obj = dict(obj, checksum=_checksum(obj))
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.fchmod(fd, 0o666 & ~_umask())      # mkstemp makes 0600 files: the usual permissions, as torch.save gives
        with os.fdopen(fd, "wb") as f:
            torch.save(obj, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException as exc:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        if isinstance(exc, (OSError, RuntimeError)):
            kept = (f"the checkpoint of an earlier step stays in {str(path)!r}" if path.exists()
                    else "no checkpoint was kept")
            raise CheckpointError(f"writing the checkpoint after step {step} into the folder {str(path.parent)!r} "
                                  f"failed ({_describe_os_error(exc)}); {kept}; free space or make the folder "
                                  "writable, then rerun to resume") from exc
        raise


#: what :func:`run_steps` names as most likely responsible for a non-finite state field when the scheme names nothing.
_DEFAULT_BLAME = {"x": "the step size (the positions moved too far in one step)",
                  "w": "the weight step's step size or learning rate"}
_FIELD_WORDS = {"x": "positions x", "w": "weights w"}


def _check_state(name: str, k: int, t: float, before: ParticleState, state, metrics, blame: dict) -> None:
    """After step ``k + 1``: a :class:`ParticleState` of the start's shapes, every field finite, and a finite
    ``loss`` metric; otherwise an error naming the step, the scheme, the field and the parameter most likely
    responsible (``blame``)."""
    where = f"{name}, step {k + 1} (t = {t:.4g})"
    if not isinstance(state, ParticleState):
        raise TypeError(f"{where}: the step must return (ParticleState, metrics), got a {type(state).__name__}")
    if (state.w is None) != (before.w is None):
        raise ValueError(f"{where}: the step {'dropped' if state.w is None else 'added'} the weights w")
    for field in ("x", "w"):
        new, old = getattr(state, field), getattr(before, field)
        if new is None:
            continue
        if not isinstance(new, torch.Tensor) or new.shape != old.shape:
            raise ValueError(f"{where}: the step returned {_FIELD_WORDS[field]} of shape "
                             f"{tuple(getattr(new, 'shape', ()))}, expected {tuple(old.shape)} (the start's shape)")
        finite = torch.isfinite(new)
        if not bool(finite.all()):
            bad = (~finite).nonzero()[0].tolist()
            n_bad = int((~finite).sum())
            raise FloatingPointError(
                f"{where} produced non-finite {_FIELD_WORDS[field]}: {n_bad} of {new.numel()} entries "
                f"(the first {new[tuple(bad)].item()} at index {tuple(bad)}); most likely responsible: "
                f"{blame.get(field, _DEFAULT_BLAME[field])}: try a smaller value; last metrics {metrics}")
    loss = (metrics or {}).get("loss")
    if isinstance(loss, Real) and not math.isfinite(loss):
        raise FloatingPointError(f"{where} produced a non-finite loss {loss} with finite positions and weights; most "
                                 f"likely responsible: {blame.get('loss', blame.get('x', _DEFAULT_BLAME['x']))}")


@contextlib.contextmanager
def _in_step(name: str, k: int, t: float, blame: dict, weighted: bool, what: str):
    """Errors raised in step ``k + 1`` (or while measuring its result): one that reports a non-finite or
    overflowing value becomes a ``FloatingPointError`` naming the step and the parameter most likely responsible;
    any other gets a note naming the step and the scheme."""
    try:
        yield
    except (ValueError, FloatingPointError, RuntimeError) as exc:
        text = str(exc)
        if "non-finite" in text or "overflow" in text:
            field = "w" if weighted and (text[:2] in ("w ", "v ") or "weight" in text) else "x"
            raise FloatingPointError(
                f"{name}, step {k + 1} (t = {t:.4g}): a non-finite or overflowing value arose in {what} "
                f"({type(exc).__name__}: {exc}); most likely responsible: {blame.get(field, _DEFAULT_BLAME[field])}: "
                "try a smaller value") from exc
        exc.add_note(f"(raised in step {k + 1}, t = {t:.4g}, of {name})")
        raise


def run_steps(step: Callable[[int, ParticleState], tuple[ParticleState, dict]], state: ParticleState, *,
              times: Sequence[float] | torch.Tensor, snapshot_every: int | None = 1,
              snapshot_steps: Collection[int] = (),
              measure: Callable[[ParticleState], float] | None = None, checkpoint: Checkpoint | None = None,
              progress: bool = True, callback: Callable[[int, float, ParticleState], None] | None = None,
              name: str = "scheme", info: dict | None = None, blame: dict | None = None) -> Trajectory:
    r"""Advance ``state`` by ``len(times) - 1`` steps of ``step`` and record a :class:`Trajectory`.

    After every step the new state must keep the start's shapes and be finite (positions, weights and a ``loss``
    metric); otherwise a ``FloatingPointError`` (``ValueError`` for a shape) names the step, the time, the scheme,
    the field and the parameter most likely responsible (``blame``). An error raised inside a step that reports a
    non-finite value becomes such a ``FloatingPointError`` (the original chained); any other gets a note naming
    the step and the scheme. With a checkpoint, the folder is checked for writing before the first step, held
    under an exclusive lock (a second writer is refused) and every checkpoint carries a checksum.

    Args:
        step: ``step(k, state) -> (new_state, metrics)`` for the step from ``times[k]`` to ``times[k + 1]``
            (``metrics``: a dict of floats, or ``None``). If it has ``state_dict``/``load_state_dict``
            methods, their state is checkpointed with the particles.
        state: the start (its ``x`` and ``w`` are copied into the first snapshot).
        times: ``[n_steps + 1]`` times, from the start time to the final one.
        snapshot_every: record a snapshot every this many steps and after the last (``None``: first and last only).
        snapshot_steps: also record a snapshot after each of these steps (counted from 1).
        measure: ``measure(state) -> float`` recorded at each snapshot (the energy); ``None``: ``nan``.
        checkpoint: a :class:`Checkpoint`, or ``None``. A checkpoint with the same key resumes the run.
        progress: show a ``tqdm`` progress bar over the steps.
        callback: called as ``callback(step, t, state)`` after every step (after its checkpoint).
        name: the scheme's name (progress bar, error messages, ``info["scheme"]``).
        info: extra metadata for the trajectory.
        blame: ``{"x": ..., "w": ..., "loss": ...}``: the parameter (with its value) most likely responsible when
            that field becomes non-finite, e.g. ``{"x": "tau=0.5 (the position step)"}``.

    Returns:
        the :class:`Trajectory`; ``info["step_metrics"]`` holds one dict per step (with ``step``).
    """
    times = [float(t) for t in (times.tolist() if isinstance(times, torch.Tensor) else times)]
    n_steps = len(times) - 1
    if n_steps < 0:
        raise ValueError("times must hold at least the start time")
    blame = dict(blame or {})
    if checkpoint is None:
        return _run(step, state, times, n_steps, snapshot_every, snapshot_steps, measure, None, progress, callback,
                    name, info, blame)
    folder = Path(checkpoint.folder)
    _prepare_folder(folder)
    with _FolderLock(folder):
        for stale in folder.glob(f".{CHECKPOINT_NAME}.*.tmp"):   # left by a killed writer (we hold the lock)
            stale.unlink(missing_ok=True)
        return _run(step, state, times, n_steps, snapshot_every, snapshot_steps, measure, checkpoint, progress,
                    callback, name, info, blame)


def _run(step, state, times, n_steps, snapshot_every, snapshot_steps, measure, checkpoint, progress, callback, name,
         info, blame) -> Trajectory:
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
        if path.exists():
            saved = _load_checkpoint(path, state.x.device)
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
    try:
        for k in range(start, n_steps):
            before = state
            with _in_step(name, k, times[k + 1], blame, weighted, "the step"):
                (state, metrics), seconds = timed(lambda: step(k, before), device=before.x.device)
            wall += seconds
            _check_state(name, k, times[k + 1], before, state, metrics, blame)
            metrics = dict(metrics or {}, step=k + 1)
            step_metrics.append(metrics)
            last = k + 1 == n_steps
            if last or (snapshot_every is not None and (k + 1) % snapshot_every == 0) or k + 1 in snapshot_steps:
                snap_t.append(times[k + 1])
                snap_x.append(state.x.clone())
                if weighted:
                    snap_w.append(state.w.clone())
                with _in_step(name, k, times[k + 1], blame, weighted, "the energy of the step's result"):
                    snap_e.append(value(state))
            if checkpoint is not None and ((k + 1) % checkpoint.every == 0 or last):
                _save_atomic({"format": CHECKPOINT_FORMAT, "key": checkpoint.key, "step": k + 1, "x": state.x.cpu(),
                              "w": state.w.cpu() if weighted else None,
                              "step_state": step.state_dict() if hasattr(step, "state_dict") else {},
                              "snap_t": snap_t, "snap_x": [p.cpu() for p in snap_x],
                              "snap_w": [p.cpu() for p in snap_w] if weighted else None, "snap_e": snap_e,
                              "metrics": step_metrics, "wall_time": wall}, checkpoint.path, k + 1)
            if bar is not None:
                bar.update(1)
                if "loss" in metrics:
                    bar.set_postfix(loss=f"{metrics['loss']:.4g}")
            if callback is not None:
                callback(k + 1, times[k + 1], state)
    finally:
        if bar is not None:
            bar.close()
    return Trajectory(times=torch.tensor(snap_t, dtype=torch.float64), positions=torch.stack(snap_x),
                      energies=torch.tensor(snap_e, dtype=torch.float64),
                      weights=torch.stack(snap_w) if weighted else None, wall_time=wall,
                      info={"scheme": name, **(info or {}), "step_metrics": step_metrics})
