"""Run-time choices: the device and the notebook profiles (the only place that looks at the hardware)."""

from __future__ import annotations

import datetime
import json
import math
import os
import platform
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Callable, TypeVar

import torch

__all__ = ["default_device", "cpu_threads", "timed", "for_profile", "provenance", "record_results", "load_records", "records_dir", "PROFILES",
           "RECORDS_ENV", "STAGING_ENV", "RESULTS_ENV", "find_upward", "stored_results_path", "StoredDataError", "load_json",
           "validate", "load_stored_results", "check_stored", "SCHEMAS", "CHECKS", "Optional", "NUMBER",
           "NUMBER_OR_NAN", "INT", "ANY"]

#: the execution profiles every chapter understands: ``quick`` (the tests: about a minute per chapter on 2 CPU
#: cores), ``book`` (what the website shows: the largest faithful settings a 2-core CPU affords) and ``paper``
#: (the authors' settings; a GPU for the neural schemes).
PROFILES = ("quick", "book", "paper")


def default_device() -> torch.device:
    """``cuda`` when a GPU is visible, else ``cpu``. Call it once, in a notebook's parameters cell.

    Returns:
        A ``torch.device``.
    """
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def cpu_threads(threads: int | None, device=None) -> int:
    """Set torch's intra-op CPU threads for a chapter's runs (once, after choosing the device); chapters 3-6 pass 1
    (thousands of tiny operations: one thread is fastest on a shared CPU). ``None`` or a non-CPU device: no change.

    Args:
        threads: the thread count (``>= 1``), or ``None`` to keep torch's choice.
        device: the chapter's device (a ``torch.device`` or string); ``None``: the CPU.

    Returns:
        The number of threads torch uses now (``ValueError`` for ``threads`` not ``None`` or an integer ``>= 1``).
    """
    if threads is not None and (isinstance(threads, bool) or not isinstance(threads, int) or threads < 1):
        raise ValueError(f"threads must be None or an integer >= 1, got {threads!r}")
    if threads is not None and (device is None or torch.device(device).type == "cpu"):
        torch.set_num_threads(threads)
    return torch.get_num_threads()


_T = TypeVar("_T")


def timed(fn: Callable[[], _T], *, device=None) -> tuple[_T, float]:
    """Call ``fn()`` and return ``(its result, wall seconds)``: the one timer of the library.

    The clock (``time.perf_counter``) stops after the work queued on ``device`` has finished: on a GPU
    (``device`` of type ``cuda``) the call is followed by ``torch.cuda.synchronize(device)``, else the
    asynchronous kernels would escape the measurement. ``device=None`` or a CPU device: no synchronisation.

    Args:
        fn: the work, a callable without arguments.
        device: the device whose queued work is waited for before the clock stops (a ``torch.device`` or a
            string such as ``"cuda:0"``); ``None``: no synchronisation.

    Returns:
        ``(fn(), seconds)``: the callable's result and the elapsed wall-clock time as a float.
    """
    t0 = time.perf_counter()
    out = fn()
    if device is not None and torch.device(device).type == "cuda":
        torch.cuda.synchronize(device)
    return out, time.perf_counter() - t0


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

    Args:
        profile: ``"quick"``, ``"book"`` or ``"paper"``.
        *values: plain values or profile tables.

    Returns:
        The resolved value (one argument), else a tuple of them.

    Raises:
        ValueError: ``profile`` is unknown, or a profile table mixes in other keys or lacks ``profile``.
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
    plus the keyword arguments (e.g. ``wall_time``).

    Args:
        **extra: further JSON-ready fields (e.g. ``wall_time``).

    Returns:
        A JSON-ready dict.
    """
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
#: environment variable naming a folder where :func:`record_results` writes instead (set by the chapter runner for
#: each chapter: its records join the others only when the chapter succeeds).
STAGING_ENV = "MMDFLOW_RECORDS_STAGING"
#: environment variable naming a folder of stored benchmark results (default: ``benchmarks/results`` of the checkout).
RESULTS_ENV = "MMDFLOW_RESULTS"


def find_upward(relative: str) -> Path | None:
    """``<folder>/<relative>`` for the first folder, from the working directory upward, where that path exists (a
    chapter runs in ``notebooks/`` or in the folder of its executed copy, both inside the checkout), else ``None``.

    Args:
        relative: a relative path.

    Returns:
        The path, or ``None``.
    """
    here = Path.cwd().resolve()
    return next((p / relative for p in (here, *here.parents) if (p / relative).exists()), None)


def stored_results_path(name: str, *, producer: str) -> Path:
    """The stored results file ``benchmarks/results/<name>``: under ``$MMDFLOW_RESULTS`` when set, else in the first
    ``benchmarks/results`` folder found from the working directory upward (:func:`find_upward`). A missing file
    raises ``FileNotFoundError`` naming the script that makes it (``producer``).

    Args:
        name: the file name under ``benchmarks/results``.
        producer: the script that writes it, for the message.

    Returns:
        The path of the existing file.

    Raises:
        FileNotFoundError: the file is missing.
    """
    env = os.environ.get(RESULTS_ENV)
    path = Path(env) / name if env else (find_upward(f"benchmarks/results/{name}")
                                         or Path("benchmarks") / "results" / name)
    if not path.exists():
        raise FileNotFoundError(f"stored results {name!r} not found (looked in ${RESULTS_ENV} and in "
                                f"benchmarks/results from {Path.cwd()} upward); run {producer}")
    return path


# ------------------------------------------------------------------------------------------ validated JSON files

class StoredDataError(ValueError):
    """A stored results file or a chapter record that is unreadable or does not match its schema (the message names
    the file and the field)."""


class _Kind:
    """A leaf of a schema: a name for messages and a test."""

    def __init__(self, name: str, test):
        self.name, self.test = name, test

    def __repr__(self):
        return self.name


def _is_number(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


#: a finite number (int or float, not a bool): NaN and infinities are refused.
NUMBER = _Kind("a finite number", lambda v: _is_number(v) and math.isfinite(v))
#: a number that may be NaN (e.g. a standard deviation over a single repeat), never infinite.
NUMBER_OR_NAN = _Kind("a number or NaN", lambda v: _is_number(v) and not math.isinf(v))
#: an integer (not a bool).
INT = _Kind("an integer", lambda v: isinstance(v, int) and not isinstance(v, bool))
#: anything JSON holds whose numbers are finite.
ANY = _Kind("any JSON value with finite numbers", lambda v: True)


class Optional:
    """A dict entry that may be absent (present, it must match ``schema``)."""

    def __init__(self, schema):
        self.schema = schema


def _type_name(v) -> str:
    if v is None:
        return "null"
    if _is_number(v) and not math.isfinite(v):
        return repr(v)
    return {bool: "a boolean", int: "an integer", float: "a number", str: "a string", list: "a list",
            dict: "an object"}.get(type(v), type(v).__name__)


def validate(data, schema, where: str = "") -> None:
    """Check ``data`` (parsed JSON) against ``schema``; raise :class:`StoredDataError` naming the field otherwise.

    A schema is: :data:`NUMBER`, :data:`NUMBER_OR_NAN`, :data:`INT`, :data:`ANY`, ``str``, ``bool``, ``dict`` (any
    object), ``None`` (null); a tuple of schemas (any of them); a list ``[item]`` (a list of items); a dict
    ``{field: schema}`` (an object with exactly these fields, :class:`Optional` ones may be absent); a dict
    ``{"*": schema}`` (an object with any keys, each value matching). Numbers must be finite unless the schema is
    :data:`NUMBER_OR_NAN`, also inside :data:`ANY` and ``dict``.

    Args:
        data: parsed JSON.
        schema: the schema.
        where: the field's path, for the messages (empty: the top level).

    Raises:
        StoredDataError: ``data`` does not match ``schema``.
    """
    field = where or "(top level)"
    if isinstance(schema, tuple):
        errors = []
        for option in schema:
            try:
                validate(data, option, where)
                return
            except StoredDataError as err:
                errors.append(err)
        if len(errors) == 1 or all(e.args[0].startswith(f"field {field}: expected") for e in errors):
            wanted = " or ".join(_schema_name(o) for o in schema)
            raise StoredDataError(f"field {field}: expected {wanted}, got {_type_name(data)}")
        raise errors[-1]
    if isinstance(schema, Optional):
        return validate(data, schema.schema, where)
    if isinstance(schema, _Kind):
        if schema is ANY:
            return _all_finite(data, where)
        if not schema.test(data):
            raise StoredDataError(f"field {field}: expected {schema.name}, got {_type_name(data)}"
                                  + (f" ({data!r})" if _is_number(data) and math.isfinite(data) else ""))
        return
    if schema is None:
        if data is not None:
            raise StoredDataError(f"field {field}: expected null, got {_type_name(data)}")
        return
    if schema in (str, bool):
        if type(data) is not schema:
            raise StoredDataError(f"field {field}: expected {_schema_name(schema)}, got {_type_name(data)}")
        return
    if schema is dict:
        if not isinstance(data, dict):
            raise StoredDataError(f"field {field}: expected an object, got {_type_name(data)}")
        return _all_finite(data, where)
    if isinstance(schema, list):
        if not isinstance(data, list):
            raise StoredDataError(f"field {field}: expected a list, got {_type_name(data)}")
        for i, item in enumerate(data):
            validate(item, schema[0], f"{where}[{i}]")
        return
    if isinstance(schema, dict):
        if not isinstance(data, dict):
            raise StoredDataError(f"field {field}: expected an object, got {_type_name(data)}")
        if set(schema) == {"*"}:
            for k, v in data.items():
                validate(v, schema["*"], f"{where}.{k}" if where else k)
            return
        missing = [k for k, v in schema.items() if k not in data and not isinstance(v, Optional)]
        if missing:
            raise StoredDataError(f"field {where + '.' if where else ''}{missing[0]} is missing"
                                  + (f" (also missing: {', '.join(missing[1:])})" if missing[1:] else ""))
        unknown = sorted(set(data) - set(schema))
        if unknown:
            raise StoredDataError(f"field {where + '.' if where else ''}{unknown[0]} is not expected here "
                                  f"(expected fields: {', '.join(schema)})")
        for k, sub in schema.items():
            if k in data:
                validate(data[k], sub, f"{where}.{k}" if where else k)
        return
    raise TypeError(f"not a schema: {schema!r}")  # pragma: no cover


def _schema_name(schema) -> str:
    if isinstance(schema, _Kind):
        return schema.name
    return {None: "null", str: "a string", bool: "a boolean", dict: "an object"}.get(schema, "a list" if isinstance(
        schema, list) else "an object")


def _all_finite(data, where: str) -> None:
    """No NaN or infinity anywhere in ``data``."""
    if _is_number(data):
        if not math.isfinite(data):
            raise StoredDataError(f"field {where or '(top level)'}: expected a finite number, got {data!r}")
    elif isinstance(data, dict):
        for k, v in data.items():
            _all_finite(v, f"{where}.{k}" if where else str(k))
    elif isinstance(data, list):
        for i, v in enumerate(data):
            _all_finite(v, f"{where}[{i}]")


def load_json(path, schema=ANY):
    """Parse the JSON file ``path`` and :func:`validate` it against ``schema``.

    Raises :class:`StoredDataError` naming the file and what is wrong: unreadable, empty, truncated or malformed
    JSON (with the line and column), or the first field that does not match the schema (missing, unexpected, of
    another type, NaN or infinite where a finite number is expected).

    Args:
        path: the JSON file.
        schema: the schema (see :func:`validate`); :data:`ANY` by default.

    Returns:
        The parsed data.

    Raises:
        StoredDataError: the file cannot be read, is empty or malformed, or does not match ``schema``.
    """
    path = Path(path)
    try:
        text = path.read_text()
    except (OSError, UnicodeDecodeError) as exc:
        raise StoredDataError(f"cannot read {str(path)!r}: {exc}") from exc
    if not text.strip():
        raise StoredDataError(f"{str(path)!r} is empty: rerun what writes it")
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise StoredDataError(f"{str(path)!r} is not valid JSON ({exc.msg} at line {exc.lineno}, column {exc.colno}; "
                              f"{len(text)} characters): it is truncated or malformed; rerun what writes it, or "
                              "restore it from git") from exc
    try:
        validate(data, schema)
    except StoredDataError as err:
        raise StoredDataError(f"{str(path)!r}: {err}") from None
    return data


_COMPARISON = {"d2": NUMBER, "noise": NUMBER, "d2_std": NUMBER_OR_NAN, "noise_std": NUMBER_OR_NAN}

#: the schemas of the stored results in ``benchmarks/results`` (by kind) and of a chapter record.
SCHEMAS = {
    # mmdflow.experiments.interaction.InteractionResult.to_json, a list of them
    "interaction": [{
        "scheme": str, "d": INT, "r": NUMBER, "iterations": (INT, None), "n_particles": INT, "tau": NUMBER,
        "seed": INT, "n_repeats": INT, "wall_time": NUMBER, "elapsed": (NUMBER, None), "provenance": dict,
        "errors": {"*": _COMPARISON}, "jko_errors": {"*": _COMPARISON}, "radius": {"*": [NUMBER]},
        "shell": {"*": [NUMBER]}}],
    # mmdflow.experiments.ift.HDRun.to_json, a list of them
    "ift_100d": [{
        "label": str, "n": INT, "seed": INT, "n_steps": INT, "steps": [NUMBER], "loss": [NUMBER], "ess": [NUMBER],
        "zero_fraction": [NUMBER], "energy_distance": NUMBER, "mmd2_alt": NUMBER, "wall": NUMBER,
        "provenance": dict}],
    # record_results
    "record": {"chapter": str, "profile": str, "provenance": dict, "values": {"*": ANY}},
}


def _same_lengths(*names):
    """A check of each run of a list: the lists ``names`` have one length (one entry per recorded step)."""
    def check(data):
        for i, run in enumerate(data):
            lengths = {k: len(run[k]) for k in names}
            if len(set(lengths.values())) > 1:
                raise StoredDataError(f"field [{i}]: the lists {', '.join(names)} must have one length (one entry per "
                                      f"recorded step), got {lengths}")
    return check


def _pairs(*names):
    """A check of each run of a list: every entry of the ``{time: [a, b]}`` objects ``names`` is a pair, and the
    times are numbers."""
    def check(data):
        for i, run in enumerate(data):
            for k in names:
                for t, v in run[k].items():
                    try:
                        float(t)
                    except ValueError:
                        raise StoredDataError(f"field [{i}].{k}: the key {t!r} is not a time") from None
                    if isinstance(v, list) and len(v) != 2:
                        raise StoredDataError(f"field [{i}].{k}.{t}: expected a pair [value, reference], got "
                                              f"{len(v)} numbers")
    return check


#: checks beyond the schema (consistency between fields), by kind.
CHECKS = {"ift_100d": _same_lengths("steps", "loss", "ess", "zero_fraction"),
          "interaction": _pairs("radius", "shell", "errors", "jko_errors")}


def load_stored_results(name: str, *, producer: str, kind: str):
    """The parsed, validated stored results ``benchmarks/results/<name>`` (:func:`stored_results_path`,
    :func:`load_json` with ``SCHEMAS[kind]``, then the consistency checks ``CHECKS[kind]``); a file without any
    run is refused too (:class:`StoredDataError`, naming the file).

    Args:
        name: the file name under ``benchmarks/results``.
        producer: the script that writes it, for the message of a missing file.
        kind: a key of :data:`SCHEMAS` (and of :data:`CHECKS`).

    Returns:
        The parsed, validated data.

    Raises:
        FileNotFoundError: the file is missing.
        StoredDataError: the file is invalid or holds no runs.
    """
    path = stored_results_path(name, producer=producer)
    return check_stored(path, load_json(path, SCHEMAS[kind]), kind)


def check_stored(path, data, kind: str):
    """``data`` (from ``path``) after the consistency checks of ``kind``: :class:`StoredDataError` naming the file.

    Args:
        path: the file the data came from, for the message.
        data: the parsed JSON.
        kind: a key of :data:`CHECKS` (other kinds get only the empty-list check).

    Returns:
        ``data`` itself.

    Raises:
        StoredDataError: the data is an empty list or fails the checks of ``kind``.
    """
    try:
        if isinstance(data, list) and not data:
            raise StoredDataError("holds no runs (an empty list)")
        if kind in CHECKS:
            CHECKS[kind](data)
    except StoredDataError as err:
        raise StoredDataError(f"{str(path)!r}: {err}") from None
    return data


def records_dir(profile: str) -> Path:
    """The folder of the chapters' result records: ``$MMDFLOW_RECORDS`` when set, else ``build/records/<profile>``
    of the checkout (the first folder upward from the working directory with a ``book/_toc.yml``).

    Args:
        profile: ``"quick"``, ``"book"`` or ``"paper"``.

    Returns:
        The folder (it may not exist yet).
    """
    env = os.environ.get(RECORDS_ENV)
    if env:
        return Path(env)
    toc = find_upward("book/_toc.yml")
    root = toc.parent.parent if toc is not None else Path.cwd().resolve()
    return root / "build" / "records" / profile


def record_results(chapter: str, values: dict, *, profile: str) -> None:
    """Store a chapter's key results (JSON-ready ``values``) with their profile and :func:`provenance`, in
    ``<records_dir>/<chapter>.json``, for the reproduction scorecard, which reads them with :func:`load_records`
    (under ``$MMDFLOW_RECORDS_STAGING`` when set: the chapter runner moves them into place when the chapter succeeds).

    Every number in ``values`` must be finite: a NaN or an infinity raises ``ValueError`` naming the field (a NaN
    would be skipped by ``max()`` and similar reductions and could turn into a verdict).

    Args:
        chapter: the chapter's name (the file name).
        values: the JSON-ready results.
        profile: ``"quick"``, ``"book"`` or ``"paper"``.

    Raises:
        ValueError: an unknown ``profile``, or ``values`` that are not JSON-ready or hold a non-finite number.
    """
    if profile not in PROFILES:
        raise ValueError(f"profile must be one of {PROFILES}, got {profile!r}")
    try:
        data = {"chapter": chapter, "profile": profile, "provenance": provenance(), "values": _plain(values, "values")}
        validate(data, SCHEMAS["record"])
    except StoredDataError as err:
        raise ValueError(f"the record of {chapter!r} cannot be stored: {err}") from None
    folder = Path(os.environ[STAGING_ENV]) if os.environ.get(STAGING_ENV) else records_dir(profile)
    if folder.exists() and not folder.is_dir():
        raise NotADirectoryError(f"the records folder {str(folder)!r} is a file: remove it, or point ${RECORDS_ENV} "
                                 "at a folder")
    folder.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{chapter}.json.", suffix=".tmp", dir=folder)   # unique: parallel writers
    try:
        mask = os.umask(0)
        os.umask(mask)
        os.fchmod(fd, 0o666 & ~mask)           # mkstemp makes 0600 files: the usual permissions
        with os.fdopen(fd, "w") as f:
            f.write(json.dumps(data, indent=1))
        os.replace(tmp, folder / f"{chapter}.json")
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _plain(value, where: str):
    """``value`` as plain JSON data: dicts (string keys), lists, strings, booleans, ``None`` and numbers; NumPy and
    torch scalars become numbers; anything else raises :class:`StoredDataError` naming the field."""
    if value is None or isinstance(value, (str, bool, int, float)):
        return value
    if isinstance(value, dict):
        return {str(k): _plain(v, f"{where}.{k}") for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v, f"{where}[{i}]") for i, v in enumerate(value)]
    size = getattr(value, "numel", None) or getattr(value, "size", None)
    size = size() if callable(size) else size
    if hasattr(value, "item") and size == 1:          # NumPy and torch scalars, one-element arrays
        return _plain(value.item(), where)
    shape = tuple(getattr(value, "shape", ()))
    raise StoredDataError(f"field {where}: expected a JSON value (number, string, boolean, null, list or object), "
                          f"got a {type(value).__name__}" + (f" of shape {shape}: convert it with .tolist()"
                                                             if shape else ""))


def load_records(profile: str) -> dict:
    """``{chapter: record}`` of the records written by :func:`record_results` for ``profile`` (empty when none).

    Each file is validated (:func:`load_json`, ``SCHEMAS["record"]``): an unreadable, truncated or malformed file, a
    missing or unexpected field, a non-finite number, a record of another profile or of another chapter than its
    file name raises :class:`StoredDataError` naming the file and the field.

    Args:
        profile: ``"quick"``, ``"book"`` or ``"paper"``.

    Returns:
        ``{chapter: record}``, each record a dict with ``chapter``, ``profile``, ``provenance`` and ``values``.

    Raises:
        StoredDataError: a record file is invalid.
        NotADirectoryError: the records folder is a file.
    """
    folder = records_dir(profile)
    if not folder.exists():
        return {}
    if not folder.is_dir():
        raise NotADirectoryError(f"the records folder {str(folder)!r} is a file, not a folder of records: remove "
                                 f"it, or point ${RECORDS_ENV} at a folder")
    out = {}
    for p in sorted(folder.glob("*.json")):
        rec = load_json(p, SCHEMAS["record"])
        if rec["chapter"] != p.stem:
            raise StoredDataError(f"{str(p)!r}: field chapter is {rec['chapter']!r}, not the file's name {p.stem!r}")
        if rec["profile"] != profile:
            raise StoredDataError(f"{str(p)!r}: field profile is {rec['profile']!r}, but the folder holds the "
                                  f"records of the profile {profile!r}")
        out[p.stem] = rec
    return out
