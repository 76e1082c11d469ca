r"""Sweeps of independent runs on Dask: a local cluster by default, an existing cluster when one is named.

A *sweep* is a list of run specifications, each one independent run: a case of the Sec. 6.1 interaction benchmark
(:class:`InteractionRun`), one (scheme, :math:`N`, seed) of the 100-d IFT study (:class:`IFTRun`), one (scheme, seed)
of a multi-seed comparison (:class:`SeedRun`). :func:`run_sweep` submits each run as one task to a
``dask.distributed`` client:

* ``scheduler=None`` reads the environment variable :data:`SCHEDULER_ENV` (``MMDFLOW_SCHEDULER``); unset or empty
  means ``"local"``: an embedded ``LocalCluster`` with one single-threaded worker process per core, or, when the
  client sees GPUs, one worker per GPU (:func:`local_cluster`);
* an address such as ``"tcp://host:8786"`` sends the sweep to a running cluster (``dask scheduler`` /
  ``dask worker``, or dask-jobqueue on SLURM); ``"serial"`` runs the tasks one after the other in this process.

Nothing lost, nothing twice:

* every run has a *run key* (:attr:`RunSpec.key`): a readable name plus :func:`mmdflow.trajectory.digest` of the
  specification (the same fingerprints the checkpoints use). The task checkpoints into
  ``<checkpoint_root>/<run key>/`` (a folder every worker can read: local disk for a local cluster, a shared
  filesystem for a real one); the schemes write a checkpoint after every step there, and the finished task writes
  its result there before returning it;
* a task whose worker dies is rescheduled by Dask on another worker (up to the scheduler's
  ``distributed.scheduler.allowed-failures``) and resumes from the last checkpoint in its folder; its record counts
  the attempts (``provenance["attempts"]``) and the step it resumed from (``provenance["resumed_from_step"]``);
* the client alone writes the results store (a JSON list of records, the format of ``benchmarks/results/*.json``),
  after every finished run, by atomic replace; each record carries its provenance (commit, date, machine, threads
  and device of the worker, plus the run key, worker address and scheduler); a run's checkpoint folder is removed
  once its record is stored;
* rerunning a sweep skips the runs the store already holds (and the runs whose task finished but whose record was
  never stored: their result is read back from the checkpoint folder).

GPUs: a worker per GPU, each started with its own ``CUDA_VISIBLE_DEVICES`` and the Dask resource ``GPU=1``. When
any worker of the cluster advertises a ``GPU`` resource, every task asks for one, so tasks run only on GPU workers,
one at a time per GPU; a task uses ``cuda`` (the worker's one visible device) when torch sees it, else the CPU.

The run specifications are in :mod:`mmdflow.experiments.runspecs` (their names are exported here too).
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import tempfile
import time
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping, Sequence
from urllib.parse import urlparse

import torch

from .._checks import check_int
from ..runtime import find_upward, load_json, provenance
from ..trajectory import CHECKPOINT_NAME
from . import ift as _ift
from . import interaction as _interaction
from .runspecs import IFTRun, InteractionRun, RunSpec, SeedRun
from ..wfr import WFRConfig
from .seeds import SeedRuns

__all__ = ["SCHEDULER_ENV", "SWEEP_DIR_ENV", "RESULT_NAME", "RunSpec", "InteractionRun", "IFTRun", "SeedRun",
           "SweepError", "WORKER_CONFIG", "resolve_scheduler", "local_cluster", "connect", "sweep_dir", "store_path", "read_store",
           "write_store", "execute_run", "run_sweep", "interaction_runs", "run_interaction_sweep", "ift_runs",
           "run_ift_sweep", "seed_runs", "run_seed_sweep", "science"]

#: environment variable naming the Dask scheduler of every sweep (``tcp://host:8786``, ``local`` or ``serial``);
#: ``make book SCHEDULER=...`` sets it for the chapters.
SCHEDULER_ENV = "MMDFLOW_SCHEDULER"
#: environment variable naming the folder of the sweeps' checkpoints and stores (default: ``build/sweeps`` of the
#: checkout); with a cluster of several machines it must be a folder every worker can read and write.
SWEEP_DIR_ENV = "MMDFLOW_SWEEP_DIR"
#: the finished task's result, in its run folder.
RESULT_NAME = "result.pt"
_ATTEMPTS = "attempts.log"
_LOOPBACK = {"127.0.0.1", "localhost", "::1", ""}
#: record fields that differ between two executions of the same run (timing and provenance): :func:`science` drops them.
VOLATILE = ("provenance", "wall_time", "elapsed", "wall")


class SweepError(RuntimeError):
    """Some runs of a sweep failed (the others are stored); the message names each failed run and its error."""


# ----------------------------------------------------------------------------------------------
# where: scheduler, cluster, folders, store
# ----------------------------------------------------------------------------------------------
def resolve_scheduler(scheduler: str | None = None) -> str:
    """``scheduler``, else ``$MMDFLOW_SCHEDULER``, else ``"local"``; an empty string counts as unset.

    Returns ``"local"``, ``"serial"`` or a scheduler address (``tcp://host:port``, ``tls://...``, ``inproc://...``).
    """
    value = scheduler if scheduler else os.environ.get(SCHEDULER_ENV, "")
    value = value.strip() or "local"
    if value in ("local", "serial") or "://" in value:
        return value
    raise ValueError(f"scheduler must be 'local', 'serial' or an address such as 'tcp://host:8786' (from the argument "
                     f"or ${SCHEDULER_ENV}), got {value!r}")


def _cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        return os.cpu_count() or 1


#: Dask settings of the worker processes this module starts. Without ``MALLOC_TRIM_THRESHOLD_``, which Dask's
#: nanny sets by default: a fixed trim threshold turns off glibc's adaptive mmap threshold, and the runs' tensors of
#: a few MB are then mapped and unmapped at every step (the quick Sec. 6.1 sweep ran 22% slower per run). Without the
#: statistical profiler, which samples every worker thread every 10 ms.
WORKER_CONFIG = {
    "distributed.nanny.pre-spawn-environ": {"OMP_NUM_THREADS": 1, "MKL_NUM_THREADS": 1, "OPENBLAS_NUM_THREADS": 1},
    "distributed.worker.profile.enabled": False,
}


def local_cluster(n_workers: int | None = None, *, gpus: int | None = None):
    """An embedded Dask cluster on this machine, loopback only (its HTTP endpoint on a free port).

    Args:
        n_workers: worker processes (CPU workers), default one per core; each has one thread.
        gpus: GPUs to use, default ``torch.cuda.device_count()``; when > 0 there is one worker per GPU instead,
            started with ``CUDA_VISIBLE_DEVICES=<i>`` and the Dask resource ``GPU=1``.

    Returns:
        a ``distributed`` cluster object (close it, or use it as a context manager).
    """
    import dask

    with dask.config.set(WORKER_CONFIG):     # read when the nannies start their workers
        return _local_cluster(n_workers, gpus)


def _local_cluster(n_workers, gpus):
    from distributed import LocalCluster, Nanny, Scheduler, SpecCluster

    gpus = torch.cuda.device_count() if gpus is None else check_int(gpus, "gpus", 0)
    if gpus > 0:
        workers = {f"gpu-{i}": {"cls": Nanny, "options": {"nthreads": 1, "host": "127.0.0.1",
                                                           "env": {"CUDA_VISIBLE_DEVICES": str(i)},
                                                           "resources": {"GPU": 1}}} for i in range(gpus)}
        return SpecCluster(workers=workers, scheduler={"cls": Scheduler, "options": {
            "host": "127.0.0.1", "dashboard_address": ":0"}}, name="mmdflow-gpu")
    n = _cores() if n_workers is None else check_int(n_workers, "n_workers", 1)
    return LocalCluster(n_workers=n, threads_per_worker=1, processes=True, host="127.0.0.1",
                        dashboard_address=":0")


@contextlib.contextmanager
def connect(scheduler: str | None = None, *, n_workers: int | None = None, gpus: int | None = None):
    """A ``distributed.Client`` for :func:`resolve_scheduler`'s choice (``"serial"`` yields ``None``); a local cluster
    it starts is closed on exit."""
    where = resolve_scheduler(scheduler)
    if where == "serial":
        yield None
        return
    from distributed import Client

    if where == "local":
        import dask

        # kept for the cluster's life: a nanny that restarts a lost worker reads the settings again
        with dask.config.set(WORKER_CONFIG), local_cluster(n_workers, gpus=gpus) as cluster, \
                Client(cluster) as client:
            yield client
    else:
        with Client(where, timeout="30s") as client:
            yield client


def sweep_dir() -> Path:
    """The folder of the sweeps' checkpoints and chapter stores: ``$MMDFLOW_SWEEP_DIR``, else ``build/sweeps`` of the
    checkout (the first folder upward from the working directory with a ``book/_toc.yml``), else
    ``<tmp>/mmdflow-sweeps``."""
    env = os.environ.get(SWEEP_DIR_ENV)
    if env:
        return Path(env)
    toc = find_upward("book/_toc.yml")
    if toc is not None:
        return toc.parent.parent / "build" / "sweeps"
    return Path(tempfile.gettempdir()) / "mmdflow-sweeps"


def store_path(name: str) -> Path:
    """``sweep_dir() / name``: where a chapter's recomputation keeps its results store (resumable)."""
    return sweep_dir() / name


def read_store(path: str | os.PathLike | None) -> list[dict]:
    """The records of a results store (a JSON list), empty when the file does not exist."""
    if path is None or not Path(path).exists():
        return []
    data = load_json(path)        # a truncated or malformed store is refused naming the file and the position
    if not isinstance(data, list):
        raise ValueError(f"results store {path} must hold a JSON list of records, got {type(data).__name__}")
    return data


def write_store(path: str | os.PathLike, records: list[dict]) -> None:
    """Write ``records`` to ``path`` by atomic replace (a temporary file in the same folder, flushed, then renamed)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w") as f:
            f.write(json.dumps(records, indent=1))
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


# ----------------------------------------------------------------------------------------------
# the task
# ----------------------------------------------------------------------------------------------
def _save(obj, path: Path) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    torch.save(obj, tmp)
    os.replace(tmp, path)


def _load(path: Path):
    # our own file, written by _save in the sweep's folder
    return torch.load(path, map_location="cpu", weights_only=False)


def _last_checkpoint_step(folder: Path) -> int:
    """The step of the most advanced checkpoint under ``folder`` (0 when there is none)."""
    steps = [0]
    for p in folder.rglob(CHECKPOINT_NAME):
        with contextlib.suppress(Exception):
            steps.append(int(torch.load(p, map_location="cpu", weights_only=False)["step"]))
    return max(steps)


def _worker_address() -> str:
    try:
        from distributed import get_worker

        return get_worker().address
    except (ImportError, ValueError):
        return "serial"


def execute_run(spec: RunSpec, checkpoint_root: str, device: str | None = None, threads: int = 1):
    """The Dask task of one run (also the serial path): run ``spec`` in ``<checkpoint_root>/<spec.key>/``.

    A finished result already in that folder is returned as it is; otherwise the run starts (or resumes from the
    checkpoints the schemes left there), on ``device`` (``None``: ``cuda`` when this worker sees a GPU, else the CPU)
    with ``threads`` torch threads, and its result is written to the folder before it is returned. A record (dict
    result) gets ``provenance`` entries ``run_key``, ``worker``, ``attempts``, ``resumed_from_step`` and
    ``cuda_visible_devices``.
    """
    folder = Path(checkpoint_root) / spec.key
    folder.mkdir(parents=True, exist_ok=True)
    done = folder / RESULT_NAME
    if done.exists():
        return _load(done)
    worker = _worker_address()
    with open(folder / _ATTEMPTS, "a") as f:
        f.write(f"{worker} {socket.gethostname()} pid {os.getpid()} {time.time():.3f}\n")
    attempts = len((folder / _ATTEMPTS).read_text().splitlines())
    resumed = _last_checkpoint_step(folder)
    dev = torch.device(device) if device else torch.device("cuda" if torch.cuda.is_available() else "cpu")
    previous = torch.get_num_threads()
    torch.set_num_threads(check_int(threads, "threads", 1))
    try:
        result = spec.execute(folder, dev)
    finally:
        torch.set_num_threads(previous)
    if isinstance(result, dict):
        result.setdefault("provenance", {}).update(
            run_key=spec.key, worker=worker, attempts=attempts, resumed_from_step=resumed,
            cuda_visible_devices=os.environ.get("CUDA_VISIBLE_DEVICES"))
    _save(result, done)
    return result


# ----------------------------------------------------------------------------------------------
# the client
# ----------------------------------------------------------------------------------------------
def _remove_run(root: Path, spec: RunSpec) -> None:
    import shutil

    shutil.rmtree(root / spec.key, ignore_errors=True)


def _is_loopback(address: str) -> bool:
    return (urlparse(address).hostname or "") in _LOOPBACK or address.startswith("inproc://")


def run_sweep(specs: Sequence[RunSpec], *, store: str | os.PathLike | None = None,
              checkpoint_root: str | os.PathLike | None = None, scheduler: str | None = None, client=None,
              n_workers: int | None = None, gpus: int | None = None, device: str | None = None, threads: int = 1,
              progress: bool = True, log: Callable[[str], None] | None = None,
              keep_checkpoints: bool = False) -> list:
    """Run every specification of ``specs`` as one Dask task and return their results in the order of ``specs``.

    Args:
        specs: run specifications (:class:`InteractionRun`, :class:`IFTRun`, :class:`SeedRun`), all distinct.
        store: the results store (JSON list of records) this client keeps, or ``None`` (results in memory only).
            Runs it already holds are not run again; every finished run is added to it (replacing a record of the
            same identity) by atomic replace.
        checkpoint_root: the folder of the run folders (default ``sweep_dir() / "checkpoints"``); with a scheduler
            on another machine it must be given, and every worker must reach it.
        scheduler: ``"local"``, ``"serial"`` or an address; ``None``: ``$MMDFLOW_SCHEDULER``, else ``"local"``.
        client: a ``distributed.Client`` to use instead (``scheduler`` is then ignored).
        n_workers, gpus: the local cluster's size (:func:`local_cluster`).
        device: the device every task uses (``None``: each worker's GPU when it has one, else its CPU).
        threads: torch threads per task.
        progress: a ``tqdm`` bar over the tasks; log: ``print``-like, called with one line per finished run.
        keep_checkpoints: keep the run folders after the results are stored (default: removed).

    Returns:
        one result per spec: the stored records (dicts) for storable specs, the specs' results otherwise.

    Raises:
        SweepError: when some runs failed (after storing every run that finished), or when a worker ran another
            commit of the code than this client.
    """
    from tqdm.auto import tqdm

    specs = list(specs)
    if not specs:
        return []
    for s in specs:
        if not isinstance(s, RunSpec):
            raise TypeError(f"specs must be run specifications (InteractionRun, IFTRun, SeedRun), got {s!r}")
    keys = [s.key for s in specs]
    if len(set(keys)) != len(keys):
        dup = sorted({k for k in keys if keys.count(k) > 1})
        raise ValueError(f"a sweep runs each run once; these run keys appear more than once: {dup}")
    kinds = {type(s) for s in specs}
    if store is not None and (len(kinds) != 1 or not specs[0].storable):
        raise ValueError(f"a results store holds records of one storable kind (InteractionRun or IFTRun); got "
                         f"{sorted(k.__name__ for k in kinds)}")
    where = "client" if client is not None else resolve_scheduler(scheduler)
    explicit_root = checkpoint_root is not None
    root = Path(checkpoint_root) if explicit_root else sweep_dir() / "checkpoints"
    if "://" in where and not _is_loopback(where) and not explicit_root and not os.environ.get(SWEEP_DIR_ENV):
        raise ValueError(f"the scheduler {where} is on another machine: give checkpoint_root (or ${SWEEP_DIR_ENV}), "
                         "a folder every worker can read and write")
    root = root.resolve()
    root.mkdir(parents=True, exist_ok=True)
    say = log or (lambda s: None)

    records = read_store(store)
    if store is not None:
        specs[0].check_store(records, store)
    identity_of = specs[0].identity_of if store is not None else None
    index = {identity_of(r): i for i, r in enumerate(records)} if store is not None else {}
    results: dict[str, Any] = {}
    todo = []
    for s in specs:
        if store is not None and s.identity in index:
            results[s.key] = records[index[s.identity]]
        elif (root / s.key / RESULT_NAME).exists():          # finished earlier, never stored
            results[s.key] = _load(root / s.key / RESULT_NAME)
        else:
            todo.append(s)
    recovered = [s for s in specs if s.key in results and (store is None or s.identity not in index)]
    say(f"sweep of {len(specs)} runs: {len(specs) - len(todo) - len(recovered)} stored, {len(recovered)} recovered "
        f"from checkpoints, {len(todo)} to run ({where})")
    my_commit = provenance().get("commit")

    def finish(s: RunSpec, result, fresh: bool = True) -> None:
        if isinstance(result, dict):
            prov = result.setdefault("provenance", {})
            prov.setdefault("scheduler", where)
            theirs = prov.get("commit")
            if fresh and my_commit and theirs and theirs != my_commit:
                raise SweepError(f"run {s.name} ran on {prov.get('worker')} at commit {theirs}, this client is at "
                                 f"{my_commit}: start the workers from the same code")
        results[s.key] = result
        if store is not None:
            ident = s.identity
            if ident in index:
                records[index[ident]] = result
            else:
                index[ident] = len(records)
                records.append(result)
            write_store(store, records)
            if not keep_checkpoints:
                _remove_run(root, s)

    for s in recovered:                  # computed by an earlier sweep (maybe at another commit, as its record says)
        finish(s, results[s.key], fresh=False)
    failures = []
    bar = tqdm(total=len(todo), desc="sweep", unit="run", disable=not progress or not todo)

    def collect(s: RunSpec, get: Callable[[], Any]) -> None:
        """Finish ``s`` with the result ``get()`` returns, or note its failure (a :class:`SweepError` stops)."""
        try:
            finish(s, get())
            say(s.describe(results[s.key]))
        except SweepError:
            raise
        except Exception as e:  # noqa: BLE001 - reported below, with the run's name
            failures.append((s, e))
        bar.update()

    try:
        if where == "serial":
            for s in todo:
                collect(s, lambda s=s: execute_run(s, str(root), device, threads))
        elif todo:
            with contextlib.ExitStack() as stack:
                if client is None:
                    client = stack.enter_context(connect(where, n_workers=n_workers, gpus=gpus))
                from distributed import as_completed

                info = client.scheduler_info(n_workers=-1) if _accepts_n_workers(client) else client.scheduler_info()
                gpu_workers = any(w.get("resources", {}).get("GPU") for w in info.get("workers", {}).values())
                resources = {"GPU": 1} if gpu_workers else None
                by_key = {}
                # the costliest runs first (submission order and priority): a long run started last would leave
                # the other workers idle at the end of the sweep
                ranked = sorted(todo, key=lambda spec: -spec.cost)
                for rank, s in enumerate(ranked):
                    fut = client.submit(execute_run, s, str(root), device, threads, key=f"mmdflow-{s.key}",
                                        pure=False, resources=resources, priority=len(ranked) - rank)
                    by_key[fut.key] = (s, fut)
                for fut in as_completed([f for _, f in by_key.values()]):
                    collect(by_key[fut.key][0], fut.result)
                    fut.release()
    finally:
        bar.close()
    if failures:
        lines = "\n".join(f"  {s.name} ({s.key}): {type(e).__name__}: {e}" for s, e in failures)
        raise SweepError(f"{len(failures)} of {len(specs)} runs failed (the others are "
                         f"{'stored in ' + str(store) if store is not None else 'in their run folders'}):\n{lines}")
    if store is None and not keep_checkpoints:
        for s in specs:
            _remove_run(root, s)
    return [results[s.key] for s in specs]


def _accepts_n_workers(client) -> bool:
    import inspect

    return "n_workers" in inspect.signature(client.scheduler_info).parameters


def science(record: dict) -> dict:
    """A record without the fields that differ between executions (:data:`VOLATILE`: timing and provenance)."""
    return {k: v for k, v in record.items() if k not in VOLATILE}


# ----------------------------------------------------------------------------------------------
# the three sweeps
# ----------------------------------------------------------------------------------------------
def interaction_runs(profile: str, *, cases: Iterable[tuple[int, float]] | None = None,
                     schemes: Sequence[str] | None = None, pf_taus: Sequence[float] | None = None,
                     seed: int = 0, n_repeats: int | None = None, **overrides) -> list[InteractionRun]:
    """The runs of the Sec. 6.1 table: every ``(d, r)`` of ``cases`` (default ``{2, 3, 10} x {0.5, 1, 1.5}``) and
    scheme of ``schemes`` (registry names, default
    :func:`~mmdflow.experiments.interaction.benchmark_schemes`; a scheme not defined from a Dirac at ``r``, such as
    the neural forward scheme at ``r != 1``, is left out; a particle scheme once per step of ``pf_taus``, default
    the profile's ``pf_tau``), settings :func:`~mmdflow.experiments.interaction.interaction_settings` of ``profile`` with
    ``overrides``; ``n_repeats`` default 3 in ``quick``, else 10."""
    cases = [(d, r) for d in (2, 3, 10) for r in (0.5, 1.0, 1.5)] if cases is None else list(cases)
    n_repeats = (3 if profile == "quick" else 10) if n_repeats is None else n_repeats
    settings = _interaction.interaction_settings(profile, **overrides)
    schemes = _interaction.benchmark_schemes() if schemes is None else list(schemes)
    for scheme in schemes:
        _interaction.check_case(scheme, 1.0)         # a registered scheme of the benchmark (before any run)
    out = []
    for d, r in cases:
        for scheme in schemes:
            if not _interaction.defined_from_dirac(scheme, r):
                continue
            for pf_tau in (pf_taus or [settings.pf_tau]) if _interaction.is_particle(scheme) else [None]:
                case = settings if pf_tau is None else _interaction.interaction_settings(
                    profile, **{**overrides, "pf_tau": pf_tau})
                out.append(InteractionRun(scheme=scheme, d=d, r=float(r), settings=case, seed=seed,
                                          n_repeats=n_repeats))
    return out


def run_interaction_sweep(runs: Sequence[InteractionRun], **kwargs) -> list:
    """:func:`run_sweep` of interaction runs, as :class:`~mmdflow.experiments.interaction.InteractionResult` objects."""
    return _interaction.results_from_json(run_sweep(runs, **kwargs))


def ift_runs(sizes: Mapping[int, Sequence[int]], n_steps: int, labels_by_size: Mapping[int, Sequence[str]], *,
             dtype: torch.dtype = torch.float32) -> list[IFTRun]:
    """Every ``(label, N, seed)`` of ``labels_by_size[N] x sizes[N]`` (``sizes``: ``{N: seeds}``), in that order."""
    return [IFTRun(label=label, n=n, seed=seed, n_steps=n_steps, dtype=dtype)
            for n, seeds in sizes.items() for seed in seeds for label in labels_by_size[n]]


def run_ift_sweep(sizes: Mapping[int, Sequence[int]], n_steps: int, labels_by_size: Mapping[int, Sequence[str]], *,
                  out: str | os.PathLike, dtype: torch.dtype = torch.float32, **kwargs) -> list:
    """:func:`run_sweep` of :func:`ift_runs` with the store ``out``; the runs as
    :class:`~mmdflow.experiments.ift.HDRun` objects, in the order of :func:`ift_runs`."""
    return _ift.results_from_json(run_sweep(ift_runs(sizes, n_steps, labels_by_size, dtype=dtype), store=out,
                                            **kwargs))


def seed_runs(runs: Mapping[str, WFRConfig], target, seeds: Sequence[int], n_particles: int, *,
              kernel, n_test: int = 1000, center: Sequence[float] = (5.0, 5.0), scale: float = 1.0,
              dtype: torch.dtype = torch.float64, sigma_alt: float | None = None) -> list[SeedRun]:
    """One :class:`SeedRun` per ``(label, seed)`` of :func:`~mmdflow.experiments.run_seeds`' arguments (the first seed
    keeps its trajectory)."""
    if len(seeds) == 0:
        raise ValueError("seeds must not be empty")
    return [SeedRun(label=label, config=cfg, kernel=kernel, target=target, seed=s,
                    n_particles=n_particles, n_test=n_test, center=tuple(center), scale=scale, dtype=dtype, sigma_alt=sigma_alt,
                    keep_trajectory=(k == 0))
            for label, cfg in runs.items() for k, s in enumerate(seeds)]


def run_seed_sweep(runs: Mapping[str, WFRConfig], target, seeds: Sequence[int], n_particles: int, *,
                   kernel, n_test: int = 1000, center: Sequence[float] = (5.0, 5.0), scale: float = 1.0,
                   dtype: torch.dtype = torch.float64, sigma_alt: float | None = None,
                   **kwargs) -> dict[str, SeedRuns]:
    """:func:`~mmdflow.experiments.run_seeds` as a sweep (one task per scheme and seed): the same ``{label: SeedRuns}``
    (seeds stacked in the order given). ``kwargs`` go to :func:`run_sweep` (no store)."""
    specs = seed_runs(runs, target, seeds, n_particles, kernel=kernel, n_test=n_test, center=center, scale=scale, dtype=dtype,
                      sigma_alt=sigma_alt)
    done = dict(zip((s.key for s in specs), run_sweep(specs, **kwargs)))
    out = {}
    for label in runs:
        parts = [done[s.key] for s in specs if s.label == label]
        cat = lambda name: (None if getattr(parts[0], name) is None  # noqa: E731
                            else torch.cat([getattr(p, name) for p in parts]))
        out[label] = SeedRuns(steps=parts[0].steps, loss=cat("loss"), wall=cat("wall"), first=parts[0].first,
                              ess=cat("ess"), zero_fraction=cat("zero_fraction"),
                              energy_distance=cat("energy_distance"), mmd2_alt=cat("mmd2_alt"),
                              sigma_alt=parts[0].sigma_alt, held_out=parts[0].held_out)
    return out
