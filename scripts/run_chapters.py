#!/usr/bin/env python
"""Execute the book's chapters with papermill.

Jupytext source ``notebooks/NAME.py`` -> papermill (profile + overrides) -> ``OUT/NAME.ipynb``.
The chapters are the ``_executed/NAME`` entries of ``book/_toc.yml``, in order. A chapter whose source,
library code, profile and overrides are unchanged since its last successful run is skipped (``--force``
re-runs it). A failing chapter stops the run and prints the failing cell and its traceback.

Examples::

    python scripts/run_chapters.py --profile quick --jobs 2
    python scripts/run_chapters.py --profile paper --out build/executed/paper --chapters 02_dirac_flows -p n_particles 5000
"""

from __future__ import annotations

import argparse
import hashlib
import json
import re
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


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


def fingerprint(src: Path, profile: str, params: dict) -> str:
    h = hashlib.sha256()
    h.update(src.read_bytes())
    for f in sorted((ROOT / "lib" / "mmdflow").rglob("*.py")):
        h.update(f.read_bytes())
    h.update(json.dumps([profile, params], sort_keys=True, default=str).encode())
    return h.hexdigest()[:16]


def run_one(name: str, out: Path, profile: str, params: dict, force: bool) -> tuple[int, float | None, str]:
    """Execute one chapter. Returns (status, seconds, message); status 0 = ok/up to date, 1 = failed, 2 = missing."""
    import jupytext
    import nbformat
    import papermill as pm

    src = ROOT / "notebooks" / f"{name}.py"
    if not src.exists():
        return 2, None, f"{name}: missing source {src}"
    target = out / f"{name}.ipynb"
    fp = fingerprint(src, profile, params)
    if target.exists() and not force:
        meta = nbformat.read(target, as_version=4).metadata.get("mmdflow", {})
        if meta.get("fingerprint") == fp:
            return 0, meta.get("seconds"), f"{name}: up to date ({meta.get('seconds', float('nan')):.1f} s when run)"
    work = ROOT / "build" / "sources"
    work.mkdir(parents=True, exist_ok=True)
    nb_src = work / f"{name}.ipynb"
    jupytext.write(jupytext.read(src), nb_src)
    print(f"{name}: running (profile {profile}) ...", flush=True)
    t0 = time.perf_counter()
    try:
        pm.execute_notebook(str(nb_src), str(target), parameters=params, kernel_name="python3",
                            cwd=str(ROOT / "notebooks"), progress_bar=False, log_output=False)
    except pm.PapermillExecutionError as err:
        nb = nbformat.read(target, as_version=4)
        tb = re.sub(r"\x1b\[[0-9;]*m", "", "\n".join(err.traceback))  # strip ANSI colours
        return 1, None, (f"\n{name}: FAILED in cell {err.cell_index} (execution count {err.exec_count}): "
                         f"{err.ename}: {err.evalue}\n---- failing cell source ----\n{nb.cells[err.cell_index].source}"
                         f"\n---- traceback ----\n{tb}\n(partially executed notebook: {target})")
    seconds = time.perf_counter() - t0
    nb = nbformat.read(target, as_version=4)
    for cell in nb.cells:   # papermill's cell of overrides: the page's box states the profile instead
        if "injected-parameters" in cell.metadata.get("tags", []):
            cell.metadata["tags"].append("remove-cell")
    nb.metadata["mmdflow"] = {"fingerprint": fp, "seconds": round(seconds, 1), "profile": profile,
                              "parameters": params}
    nbformat.write(nb, target)
    return 0, round(seconds, 1), f"{name}: done in {seconds:.1f} s"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--profile", default="quick", choices=["quick", "paper"])
    ap.add_argument("--out", type=Path, default=None, help="output folder (default build/executed/PROFILE)")
    ap.add_argument("--chapters", nargs="*", help="chapter names (default: every chapter of book/_toc.yml)")
    ap.add_argument("-p", "--parameter", nargs=2, action="append", default=[], metavar=("NAME", "VALUE"),
                    help="override a notebook parameter (repeatable)")
    ap.add_argument("--force", action="store_true", help="re-run chapters even when up to date")
    ap.add_argument("--jobs", type=int, default=1,
                    help="chapters executed at the same time (each kernel then gets OMP_NUM_THREADS=1)")
    args = ap.parse_args(argv)

    out = (args.out or ROOT / "build" / "executed" / args.profile).resolve()
    out.mkdir(parents=True, exist_ok=True)
    all_chapters = toc_chapters(ROOT / "book" / "_toc.yml")
    chapters = args.chapters or all_chapters
    unknown = [c for c in chapters if c not in all_chapters]
    if unknown:
        print(f"unknown chapter(s) {unknown}; the book lists {all_chapters}", file=sys.stderr)
        return 2
    params = {"profile": args.profile, **{k: parse_value(v) for k, v in args.parameter}}
    timings, failures = {}, []
    t_all = time.perf_counter()
    if args.jobs > 1 and len(chapters) > 1:
        import os
        from concurrent.futures import ProcessPoolExecutor

        os.environ["OMP_NUM_THREADS"] = "1"          # inherited by the kernels: no oversubscription
        with ProcessPoolExecutor(max_workers=args.jobs) as pool:
            futures = {name: pool.submit(run_one, name, out, args.profile, params, args.force) for name in chapters}
            results = {name: fut.result() for name, fut in futures.items()}
    else:
        results = {}
        for name in chapters:
            results[name] = run_one(name, out, args.profile, params, args.force)
            print(results[name][2], file=sys.stderr if results[name][0] else sys.stdout, flush=True)
            if results[name][0]:
                break
    for name, (status, seconds, message) in results.items():
        if args.jobs > 1 and len(chapters) > 1:
            print(message, file=sys.stderr if status else sys.stdout, flush=True)
        if status:
            failures.append(name)
        else:
            timings[name] = seconds
    if failures:
        print(f"chapter(s) failed: {failures}", file=sys.stderr)
        return 1
    (out / "timings.json").write_text(json.dumps(timings, indent=1))
    total = sum(t for t in timings.values() if t)
    print(f"executed chapters in {out}: run times {timings} (sum {total:.1f} s, "
          f"wall {time.perf_counter() - t_all:.1f} s with {args.jobs} job(s))")
    return 0


if __name__ == "__main__":
    sys.exit(main())
