#!/usr/bin/env python
"""Execute the book's chapters with papermill.

Jupytext source ``notebooks/NAME.py`` -> papermill (profile + overrides) -> ``OUT/NAME.ipynb``.
The chapters are the ``_executed/NAME`` entries of ``book/_toc.yml``, in order. A chapter whose source,
library code, profile and overrides are unchanged since its last successful run is skipped (``--force``
re-runs it). A failing chapter stops the run and prints the failing cell and its traceback.

Overrides (``-p NAME VALUE``) are checked before anything runs: NAME must be assigned in the chapter's
``parameters`` cell (the error lists the chapter's parameters), VALUE must have the type of the default
(an integer for an integer parameter, ...) and obey :data:`PARAMETER_RULES` (e.g. sizes >= 1). The profile is
chosen with ``--profile`` only (``-p profile ...`` is refused: it would file one profile's run under another).

Overrides stay: a chapter executed with overrides (``make chapter NB=... PARAMS="-p seed 3"``) keeps them in a
later run without overrides and without ``--force`` (``make book``), which says so; it is re-executed with the
same overrides when its source or the library changed. ``--force`` without overrides (``make chapter NB=...``)
returns it to the defaults.

A chapter is executed into a temporary file beside its output and moved into place only when it succeeds: a
failing or interrupted run keeps the last good output and leaves the partial notebook as ``NAME.failed.ipynb``.
The chapters' result records go to ``build/records/PROFILE`` for the default output folder, and to
``OUT/records`` with ``--out OUT`` (a scratch run never changes the book's scorecard).

Examples::

    python scripts/run_chapters.py --profile quick --jobs 2
    python scripts/run_chapters.py --profile paper --out build/executed/paper --chapters 02_dirac_flows -p n_particles 5000
"""

from __future__ import annotations

import argparse
import ast
import hashlib
import json
import logging
import math
import os
import re
import shutil
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
#: the profiles (mmdflow.runtime.PROFILES, repeated here so that the script runs without the library installed)
PROFILES = ("quick", "book", "paper")


def toc_chapters(toc: Path) -> list[str]:
    return re.findall(r"file:\s*_executed/([\w\-]+)", toc.read_text())


def parse_value(text: str):
    """papermill-style value parsing: int, float, bool, None, else the string."""
    for cast in (int, float):
        try:
            return cast(text)
        except ValueError:
            pass
    return {"True": True, "False": False, "None": None}.get(text, text)


def _is_int(v) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_positive_number(v) -> bool:
    return (_is_int(v) or isinstance(v, float)) and math.isfinite(v) and v > 0


#: checks of parameter values by name (full match), applied to defaults and overrides, to each entry of a
#: profile table {"quick": ..., "book": ..., "paper": ...} and of a list: (name pattern, test, what the value must be).
PARAMETER_RULES = (
    (r"seed", lambda v: _is_int(v) and v >= 0, "an integer >= 0"),
    (r"n_\w+|\w+_(particles|repeats|steps|frames|samples|iterations|max)|iterations",
     lambda v: _is_int(v) and v >= 1, "an integer >= 1"),
    (r"tau|\w+_tau|t_final|sigma|eta|kl_lr|noise0", _is_positive_number, "a finite number > 0"),
    (r"profile", lambda v: v in PROFILES, "one of " + ", ".join(map(repr, PROFILES))),
)


def chapter_parameters(src: Path) -> dict:
    """``{name: default}`` of the assignments in the ``parameters``-tagged cell of a Jupytext chapter (a default
    that is not a literal, e.g. a comprehension, is given as ``...``)."""
    import jupytext

    cells = [c for c in jupytext.read(src).cells if "parameters" in c.metadata.get("tags", [])]
    if len(cells) != 1:
        raise ValueError(f"{src}: expected one cell tagged 'parameters', found {len(cells)}")
    params = {}
    for node in ast.parse(cells[0].source).body:
        targets = node.targets if isinstance(node, ast.Assign) else [node.target] if isinstance(node, ast.AnnAssign) else []
        for target in targets:
            if isinstance(target, ast.Name):
                try:
                    params[target.id] = ast.literal_eval(node.value)
                except (ValueError, SyntaxError):
                    params[target.id] = ...
    return params


def _entries(value) -> list:
    """The values a rule checks: the entries of a profile table and of a list, else the value itself."""
    if isinstance(value, dict) and value and set(value) <= set(PROFILES):
        return [e for v in value.values() for e in _entries(v)]
    if isinstance(value, (list, tuple)):
        return [e for v in value for e in _entries(v)]
    return [value]


def _kinds(default) -> set:
    """The types an override of ``default`` may have (empty: any)."""
    values = list(default.values()) if isinstance(default, dict) and set(default) <= set(PROFILES) else [default]
    kinds = set()
    for v in values:
        if v is None or v is ...:
            return set()
        kinds |= {float, int} if isinstance(v, float) else {type(v)}
    return kinds


def check_parameters(name: str, src: Path, overrides: dict) -> list[str]:
    """Problems with the overrides of a chapter (and with its defaults), as lines of text; empty when all is well."""
    params = chapter_parameters(src)
    problems, mistyped = [], set()
    listing = ", ".join(f"{k}={'...' if v is ... else repr(v)}" for k, v in params.items())
    for key, value in overrides.items():
        if key not in params:
            problems.append(f"{name}: unknown parameter {key!r} (value {value!r}); the chapter's parameters are: "
                            f"{listing}")
            continue
        kinds = _kinds(params[key])
        if kinds and type(value) not in kinds and value is not None:
            mistyped.add(key)
            problems.append(f"{name}: parameter {key}={value!r} must be of type "
                            f"{' or '.join(sorted(k.__name__ for k in kinds))} like its default {params[key]!r}")
    for key, value in {**params, **overrides}.items():
        if key in mistyped or key not in params:
            continue
        for pattern, test, requirement in PARAMETER_RULES:
            if re.fullmatch(pattern, key):
                bad = [e for e in _entries(value) if e is not None and e is not ... and not test(e)]
                if bad:
                    origin = "override" if key in overrides else "default"
                    problems.append(f"{name}: parameter {key} ({origin} {value!r}) must be {requirement}, got {bad[0]!r}")
    return problems


def source_cell(src: Path, source: str) -> int | None:
    """Index (from 0) of the cell of the chapter source whose code is ``source``, or ``None``."""
    import jupytext

    for i, cell in enumerate(jupytext.read(src).cells):
        if cell.source.strip() == source.strip():
            return i
    return None


#: the environment variable where a chapter's records are written first (``mmdflow.runtime.STAGING_ENV``)
STAGING_ENV = "MMDFLOW_RECORDS_STAGING"

#: a chapter whose source contains this line runs after all others (it reads their records: the scorecard)
RUN_LAST = "# mmdflow: run-last"


def default_out(profile: str) -> Path:
    """The output folder of a profile's executed chapters (the one the site is built from)."""
    return ROOT / "build" / "executed" / profile


def records_folder(profile: str, out: Path | None = None) -> Path:
    """Where the chapters write their result records (``mmdflow.runtime.record_results``): ``build/records/PROFILE``
    for the default output folder, ``OUT/records`` for another one (records go with the output)."""
    if out is None or Path(out).resolve() == default_out(profile).resolve():
        return ROOT / "build" / "records" / profile
    return Path(out).resolve() / "records"


def fingerprint(src: Path, profile: str, params: dict, records: Path | None = None) -> str:
    """Hash of what a chapter's output depends on: its source, the library, the stored benchmark results, the
    profile and the overrides, and for a run-last chapter the other chapters' records."""
    h = hashlib.sha256()
    h.update(src.read_bytes())
    for f in sorted((ROOT / "lib" / "mmdflow").rglob("*.py")) + sorted((ROOT / "benchmarks" / "results").glob("*.json")):
        h.update(f.read_bytes())
    if RUN_LAST in src.read_text():
        for f in sorted((records or records_folder(profile)).glob("*.json")):
            h.update(f.name.encode())
            try:
                h.update(json.dumps(json.loads(f.read_text()).get("values"), sort_keys=True).encode())
            except (ValueError, AttributeError):   # malformed: the chapter's own load names the file
                h.update(f.read_bytes())
    h.update(json.dumps([profile, params], sort_keys=True, default=str).encode())
    return h.hexdigest()[:16]


class _UnparsedParameterLines(logging.Filter):
    """Drops papermill's "Unable to parse line ..." warnings: its parameter inspector cannot read a default that
    spans lines or carries a comment, which only affects papermill's own listing of the parameters, never the run
    (:func:`check_parameters` reads them itself)."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not record.getMessage().startswith("Unable to parse line")


def kernel_config():
    """papermill/nbclient configuration of the chapters' kernels: IPC sockets in a private temporary folder instead of
    TCP ports on localhost (no "running over TCP without encryption" notice per chapter, and no port taken by a
    concurrent kernel: "Address already in use"); the kernel application logs only critical errors."""
    from traitlets.config import Config

    translators = logging.getLogger("papermill.translators")
    if not any(isinstance(f, _UnparsedParameterLines) for f in translators.filters):
        translators.addFilter(_UnparsedParameterLines())
    folder = tempfile.mkdtemp(prefix="mmdflow-kernel-")
    # the kernel's own log shows errors only: jupyter_client interrupts a kernel before shutting it down, which
    # ipykernel sometimes reports as "KeyboardInterrupt caught in kernel" (warnings of a chapter's code go to its
    # notebook, not to this log)
    return Config({"KernelManager": {"transport": "ipc", "ip": os.path.join(folder, "kernel")},
                   "NotebookClient": {"extra_arguments": ["--IPKernelApp.log_level=CRITICAL"]}})


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _overrides(params: dict) -> dict:
    """The overrides of a parameter set (everything but the profile)."""
    return {k: v for k, v in params.items() if k != "profile"}


def _show(params: dict) -> str:
    return " ".join(f"-p {k} {v}" for k, v in _overrides(params).items())


def kept_overrides(name: str, target: Path, profile: str) -> dict:
    """The parameters of the existing output ``target`` when it was executed with overrides in this profile, else
    ``{}``: a run without overrides keeps them (``make chapter ... PARAMS=...`` then ``make book``)."""
    import nbformat

    if not target.exists():
        return {}
    try:
        meta = nbformat.read(target, as_version=4).metadata.get("mmdflow", {})
    except Exception:        # an unreadable output is re-executed with the defaults
        return {}
    params = meta.get("parameters") or {}
    if meta.get("profile") != profile or not isinstance(params, dict) or not _overrides(params):
        return {}
    return dict(params)


def run_one(name: str, out: Path, profile: str, params: dict, force: bool,
            records: Path | None = None) -> tuple[int, float | None, str]:
    """Execute one chapter. Returns (status, seconds, message); status 0 = ok/up to date, 1 = failed, 2 = missing.

    Without overrides and without ``force``, overrides of the existing output are kept (:func:`kept_overrides`).
    The chapter is executed into a temporary file in ``out`` and moved to ``out/NAME.ipynb`` only on success; on
    failure or interruption the partial notebook is kept as ``out/NAME.failed.ipynb`` and the last good output
    stays."""
    import jupytext
    import nbformat
    import papermill as pm

    src = ROOT / "notebooks" / f"{name}.py"
    if not src.exists():
        return 2, None, f"{name}: missing source {src}"
    target = out / f"{name}.ipynb"
    failed = out / f"{name}.failed.ipynb"
    note = ""
    if not force and not _overrides(params):
        kept = kept_overrides(name, target, profile)
        if kept:
            problems = check_parameters(name, src, kept)
            if problems:
                return 1, None, (f"{name}: its output was executed with the overrides {_show(kept)}, which no longer "
                                 f"fit the chapter ({'; '.join(problems)}); run `make chapter NB={name}` (defaults) "
                                 f"or `make chapter NB={name} PARAMS=\"...\"` (new overrides)")
            params = kept
            note = (f" [keeps the overrides {_show(kept)} of its last run; `make chapter NB={name}` without PARAMS "
                    f"returns it to the defaults]")
    fp = fingerprint(src, profile, params, records)
    if target.exists() and not force:
        try:
            meta = nbformat.read(target, as_version=4).metadata.get("mmdflow", {})
        except Exception as exc:        # truncated or not a notebook: re-executed (it is replaced only on success)
            print(f"{name}: the existing output {target} cannot be read ({type(exc).__name__}: {exc}); "
                  "re-executing it", file=sys.stderr, flush=True)
            meta = {}
        if meta.get("fingerprint") == fp:
            return 0, meta.get("seconds"), (f"{name}: up to date ({meta.get('seconds', float('nan')):.1f} s when "
                                            f"run){note}")
    work = ROOT / "build" / "sources"
    work.mkdir(parents=True, exist_ok=True)
    fd, nb_src = tempfile.mkstemp(prefix=f"{name}.", suffix=".ipynb", dir=work)   # unique: parallel runners
    os.close(fd)
    jupytext.write(jupytext.read(src), nb_src)
    fd, tmp = tempfile.mkstemp(prefix=f".{name}.", suffix=".running.ipynb", dir=out)
    os.fchmod(fd, 0o666 & ~_umask())          # mkstemp makes 0600 files: the usual permissions for the site
    os.close(fd)
    records = records or records_folder(profile, out)
    records.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{name}.", suffix=".staging", dir=records))
    os.environ[STAGING_ENV] = str(staging)       # the chapter's records join the others only if it succeeds
    print(f"{name}: running (profile {profile}{', overrides ' + _show(params) if _overrides(params) else ''}) ..."
          f"{note}", flush=True)
    t0 = time.perf_counter()

    def keep_failed() -> str:
        """Move the partial notebook beside the output; say what is where."""
        if Path(tmp).exists() and Path(tmp).stat().st_size > 0:
            os.replace(tmp, failed)
            where = f"partially executed notebook: {failed}"
        else:
            Path(tmp).unlink(missing_ok=True)
            where = "no partial notebook was written"
        kept = f"; the last good output {target} is kept" if target.exists() else ""
        dropped = sorted(p.name for p in staging.glob("*.json"))
        dropped = f"; its records {dropped} were not stored" if dropped else ""
        return f"({where}{kept}{dropped})"

    try:
        pm.execute_notebook(nb_src, tmp, parameters=params, kernel_name="python3",
                            cwd=str(ROOT / "notebooks"), progress_bar=False, log_output=False,
                            config=kernel_config())
    except pm.PapermillExecutionError as err:
        # err.source is the failing cell's code; its index err.cell_index counts papermill's injected-parameters
        # cell, and the notebook written on failure also starts with papermill's error banner: neither index is
        # that of the chapter source
        tb = re.sub(r"\x1b\[[0-9;]*m", "", "\n".join(err.traceback))  # strip ANSI colours
        k = source_cell(src, err.source)
        where = f"cell {k} of {src.name} (counting from 0)" if k is not None else "the injected parameters cell"
        return 1, None, (f"\n{name}: FAILED in {where} (execution count {err.exec_count}): "
                         f"{err.ename}: {err.evalue}\n---- failing cell source ----\n{err.source}"
                         f"\n---- traceback ----\n{tb}\n{keep_failed()}")
    except Exception as exc:      # the kernel died, could not start, ...
        return 1, None, f"\n{name}: FAILED ({type(exc).__name__}: {exc}) {keep_failed()}"
    except BaseException:         # Ctrl-C: keep the partial notebook and the last good output, then stop
        print(f"{name}: interrupted {keep_failed()}", file=sys.stderr, flush=True)
        raise
    finally:
        Path(nb_src).unlink(missing_ok=True)
        os.environ.pop(STAGING_ENV, None)
        if not Path(tmp).exists():           # failed or interrupted (keep_failed moved it): drop its records
            shutil.rmtree(staging, ignore_errors=True)
    seconds = time.perf_counter() - t0
    nb = nbformat.read(tmp, as_version=4)
    for cell in nb.cells:   # papermill's cell of overrides: the page's box states the profile instead
        if "injected-parameters" in cell.metadata.get("tags", []):
            cell.metadata["tags"].append("remove-cell")
    nb.metadata["mmdflow"] = {"fingerprint": fp, "seconds": round(seconds, 1), "profile": profile,
                              "parameters": params}
    nbformat.write(nb, tmp)
    os.replace(tmp, target)
    for rec in staging.glob("*.json"):       # the chapter succeeded: its records join the others
        os.replace(rec, records / rec.name)
    shutil.rmtree(staging, ignore_errors=True)
    failed.unlink(missing_ok=True)          # an earlier failure's notebook is stale now
    return 0, round(seconds, 1), f"{name}: done in {seconds:.1f} s{note}"


def _jobs(text: str) -> int:
    """``--jobs``: an integer >= 1."""
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be an integer >= 1 (chapters executed at the same time), got {text!r}")
    return value


#: the environment variables :func:`main` sets for the kernels it starts (restored when it returns)
KERNEL_ENV = ("MMDFLOW_RECORDS", STAGING_ENV, "OMP_NUM_THREADS")


def main(argv=None) -> int:
    """Run the chapters (command line: ``argv``); the caller's environment is left as it was (a pytest worker that
    calls this and later runs a notebook must not hand that notebook this run's records folder)."""
    saved = {var: os.environ.get(var) for var in KERNEL_ENV}
    try:
        return _main(argv)
    finally:
        for var, value in saved.items():
            if value is None:
                os.environ.pop(var, None)
            else:
                os.environ[var] = value


def _main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--profile", default="quick", choices=list(PROFILES))
    ap.add_argument("--out", type=Path, default=None, help="output folder (default build/executed/PROFILE)")
    ap.add_argument("--chapters", nargs="*", help="chapter names (default: every chapter of book/_toc.yml)")
    ap.add_argument("-p", "--parameter", nargs=2, action="append", default=[], metavar=("NAME", "VALUE"),
                    help="override a notebook parameter (repeatable)")
    ap.add_argument("--force", action="store_true", help="re-run chapters even when up to date")
    ap.add_argument("--jobs", type=_jobs, default=1,
                    help="chapters executed at the same time (each kernel then gets OMP_NUM_THREADS=1)")
    args = ap.parse_args(argv)
    if any(k == "profile" for k, _ in args.parameter):
        value = next(v for k, v in args.parameter if k == "profile")
        print(f"-p profile {value} is refused: the profile is chosen with --profile (the output folder, the "
              f"records and the run's settings follow it; -p profile would run one profile and file it under "
              f"--profile {args.profile}); use --profile {value}, or PROFILE={value} with make", file=sys.stderr)
        return 2

    out = (args.out or default_out(args.profile)).resolve()
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        print(f"cannot use the output folder {out}: {exc.strerror or exc}", file=sys.stderr)
        return 2
    all_chapters = toc_chapters(ROOT / "book" / "_toc.yml")
    chapters = args.chapters or all_chapters
    unknown = [c for c in chapters if c not in all_chapters]
    if unknown:
        print(f"unknown chapter(s) {unknown}; the book lists {all_chapters}", file=sys.stderr)
        return 2
    params = {"profile": args.profile, **{k: parse_value(v) for k, v in args.parameter}}
    problems = [line for name in chapters if (ROOT / "notebooks" / f"{name}.py").exists()
                for line in check_parameters(name, ROOT / "notebooks" / f"{name}.py", params)]
    if problems:
        print("bad parameters, nothing was run:\n  " + "\n  ".join(problems), file=sys.stderr)
        return 2
    timings, failures = {}, []
    t_all = time.perf_counter()
    records = records_folder(args.profile, out)
    os.environ["MMDFLOW_RECORDS"] = str(records)   # inherited by the kernels: records go with the output
    previous = {}
    if (out / "timings.json").exists():       # only for the time estimates: an unreadable file is reported, not fatal
        try:
            previous = json.loads((out / "timings.json").read_text())
            if not isinstance(previous, dict):
                raise ValueError(f"expected an object, got {type(previous).__name__}")
        except ValueError as exc:
            print(f"ignoring {out / 'timings.json'} (previous run times, for the estimates): {exc}", file=sys.stderr)
            previous = {}
    last = [c for c in chapters if RUN_LAST in (ROOT / "notebooks" / f"{c}.py").read_text()]
    waves = [[c for c in chapters if c not in last], last]
    done: list[str] = []

    def report(name, status, seconds, message):
        """Book a finished chapter and print a progress line: its result, elapsed wall time and an estimate of what
        is left (from the previous run's timings where known, else the mean of the chapters done so far)."""
        if status:
            failures.append(name)
        else:
            timings[name] = seconds
        done.append(name)
        elapsed = time.perf_counter() - t_all
        known = [t for c, t in timings.items() if t]
        mean = sum(known) / len(known) if known else 60.0
        left = [c for c in chapters if c not in done]
        rest = sum(previous.get(c) or mean for c in left) / max(1, min(args.jobs, len(left) or 1))
        print(f"[{len(done)}/{len(chapters)}] {message} | elapsed {elapsed / 60:.1f} min"
              + (f", about {rest / 60:.0f} min left" if left else ""), file=sys.stderr if status else sys.stdout,
              flush=True)

    for wave in waves:
        if not wave or failures:
            continue
        if args.jobs > 1 and len(wave) > 1:
            os.environ["OMP_NUM_THREADS"] = "1"          # inherited by the kernels: no oversubscription
            with ProcessPoolExecutor(max_workers=args.jobs) as pool:
                futures = {pool.submit(run_one, name, out, args.profile, params, args.force, records): name
                           for name in wave}
                for fut in as_completed(futures):
                    report(futures[fut], *fut.result())
        else:
            for name in wave:
                report(name, *run_one(name, out, args.profile, params, args.force, records))
                if failures:
                    break
    if failures:
        print(f"chapter(s) failed: {failures}", file=sys.stderr)
        return 1
    fd, tmp = tempfile.mkstemp(prefix=".timings.", suffix=".json", dir=out)
    os.fchmod(fd, 0o666 & ~_umask())
    with os.fdopen(fd, "w") as f:
        f.write(json.dumps({**previous, **timings}, indent=1))
    os.replace(tmp, out / "timings.json")
    total = sum(t for t in timings.values() if t)
    print(f"executed chapters in {out} (records in {records}): run times {timings} (sum {total:.1f} s, "
          f"wall {time.perf_counter() - t_all:.1f} s with {args.jobs} job(s))")
    return 0


if __name__ == "__main__":
    sys.exit(main())
