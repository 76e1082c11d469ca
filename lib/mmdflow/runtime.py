"""Run-time choices: the device and the notebook profiles (the only place that looks at the hardware)."""

from __future__ import annotations

import datetime
import json
import os
import platform
import subprocess
from pathlib import Path

import torch

__all__ = ["default_device", "for_profile", "provenance", "record_results", "load_records", "records_dir", "PROFILES",
           "RECORDS_ENV", "RESULTS_ENV", "find_upward", "stored_results_path"]

#: the execution profiles every chapter understands: ``quick`` (the tests: about a minute per chapter on 2 CPU
#: cores), ``book`` (what the website shows: the largest faithful settings a 2-core CPU affords) and ``paper``
#: (the authors' settings; a GPU for the neural schemes).
PROFILES = ("quick", "book", "paper")


def default_device() -> torch.device:
    """``cuda`` when a GPU is visible, else ``cpu``. Call it once, in a notebook's parameters cell."""
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def for_profile(profile: str, *values):
    """Resolve notebook parameters that may depend on the profile.

    Each value is either a plain value (a reader's override, used as is) or a
    dict ``{"quick": ..., "book": ..., "paper": ...}`` from which the profile's entry is
    taken. A dict with no profile name among its keys is a plain value; a dict
    with some profile names must be a profile table: a missing entry for
    ``profile`` or a key that is not a profile raises ``ValueError``. Returns a
    single value for one argument, else a tuple.

    >>> for_profile("paper", {"quick": 200, "book": 500, "paper": 2000}, 0.05)
    (2000, 0.05)
    """
    if profile not in PROFILES:
        raise ValueError(f"profile must be one of {PROFILES}, got {profile!r}")
    out = []
    for k, v in enumerate(values):
        if isinstance(v, dict) and set(v) & set(PROFILES):
            other = sorted(map(str, set(v) - set(PROFILES)))
            if other:
                raise ValueError(f"value {k} of for_profile mixes profile names with other keys {other}: a profile "
                                 f"table has only keys among {PROFILES}, got {v!r}")
            if profile not in v:
                raise ValueError(f"value {k} of for_profile has no entry for the profile {profile!r}: got the table "
                                 f"{v!r}; add a {profile!r} entry or pass a plain value")
            v = v[profile]
        out.append(v)
    return out[0] if len(out) == 1 else tuple(out)


def provenance(**extra) -> dict:
    """Where and when a stored result was computed: ``commit`` (git ``HEAD`` of the working tree, with ``+dirty``
    when it has uncommitted changes to tracked files; ``None`` outside a git checkout), ``date`` (UTC, ISO 8601),
    ``machine`` (CPU model, core count, memory and GPU name when present), ``torch`` version and torch ``threads``,
    plus the keyword arguments (e.g. ``wall_time``)."""
    def git(*args):
        try:
            return subprocess.run(["git", *args], capture_output=True, text=True, check=True, timeout=10,
                                  cwd=os.path.dirname(os.path.abspath(__file__))).stdout.strip()
        except (OSError, subprocess.SubprocessError):
            return None

    commit = git("rev-parse", "--short=12", "HEAD")
    if commit and git("status", "--porcelain", "--untracked-files=no"):
        commit += "+dirty"
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next((ln.split(":", 1)[1].strip() for ln in f if ln.startswith("model name")), cpu)
    except OSError:
        pass
    try:
        mem = f", {os.sysconf('SC_PAGE_SIZE') * os.sysconf('SC_PHYS_PAGES') / 2**30:.0f} GiB"
    except (ValueError, OSError, AttributeError):
        mem = ""
    machine = f"{cpu}, {os.cpu_count()} cores{mem}"
    if torch.cuda.is_available():
        machine += f", GPU {torch.cuda.get_device_name(0)}"
    return {"commit": commit, "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
            "machine": machine, "torch": torch.__version__, "threads": torch.get_num_threads(), **extra}


#: environment variable naming the folder of the chapters' result records (set by ``scripts/run_chapters.py``).
RECORDS_ENV = "MMDFLOW_RECORDS"
#: environment variable naming a folder of stored benchmark results (default: ``benchmarks/results`` of the checkout).
RESULTS_ENV = "MMDFLOW_RESULTS"


def find_upward(relative: str) -> Path | None:
    """``<folder>/<relative>`` for the first folder, from the working directory upward, where that path exists (a
    chapter runs in ``notebooks/`` or in the folder of its executed copy, both inside the checkout), else ``None``."""
    here = Path.cwd().resolve()
    return next((p / relative for p in (here, *here.parents) if (p / relative).exists()), None)


def stored_results_path(name: str, *, producer: str) -> Path:
    """The stored results file ``benchmarks/results/<name>``: under ``$MMDFLOW_RESULTS`` when set, else in the first
    ``benchmarks/results`` folder found from the working directory upward (:func:`find_upward`). A missing file
    raises ``FileNotFoundError`` naming the script that makes it (``producer``)."""
    env = os.environ.get(RESULTS_ENV)
    path = Path(env) / name if env else (find_upward(f"benchmarks/results/{name}")
                                         or Path("benchmarks") / "results" / name)
    if not path.exists():
        raise FileNotFoundError(f"stored results {name!r} not found (looked in ${RESULTS_ENV} and in "
                                f"benchmarks/results from {Path.cwd()} upward); run {producer}")
    return path


def records_dir(profile: str) -> Path:
    """The folder of the chapters' result records: ``$MMDFLOW_RECORDS`` when set, else ``build/records/<profile>``
    of the checkout (the first folder upward from the working directory with a ``book/_toc.yml``)."""
    env = os.environ.get(RECORDS_ENV)
    if env:
        return Path(env)
    toc = find_upward("book/_toc.yml")
    root = toc.parent.parent if toc is not None else Path.cwd().resolve()
    return root / "build" / "records" / profile


def record_results(chapter: str, values: dict, *, profile: str) -> None:
    """Store a chapter's key results (JSON-ready ``values``) with their profile and :func:`provenance`, in
    ``<records_dir>/<chapter>.json``, for the reproduction scorecard, which reads them with :func:`load_records`."""
    if profile not in PROFILES:
        raise ValueError(f"profile must be one of {PROFILES}, got {profile!r}")
    folder = records_dir(profile)
    folder.mkdir(parents=True, exist_ok=True)
    data = {"chapter": chapter, "profile": profile, "provenance": provenance(), "values": values}
    tmp = folder / f".{chapter}.json.tmp"
    tmp.write_text(json.dumps(data, indent=1, default=float))
    tmp.replace(folder / f"{chapter}.json")


def load_records(profile: str) -> dict:
    """``{chapter: record}`` of the records written by :func:`record_results` for ``profile`` (empty when none)."""
    folder = records_dir(profile)
    if not folder.exists():
        return {}
    return {p.stem: json.loads(p.read_text()) for p in sorted(folder.glob("*.json"))}
