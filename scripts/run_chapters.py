#!/usr/bin/env python
"""Execute the book's chapters with papermill.

Jupytext source ``notebooks/NAME.py`` -> papermill (profile + overrides) -> ``OUT/NAME.ipynb``.
The chapters are the ``_executed/NAME`` entries of ``book/_toc.yml``, in order. A chapter whose source,
library code, profile and overrides are unchanged since its last successful run is skipped (``--force``
re-runs it). A failing chapter stops the run and prints the failing cell and its traceback.

Examples::

    python scripts/run_chapters.py --profile quick --out build/executed/quick
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


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--profile", default="quick", choices=["quick", "paper"])
    ap.add_argument("--out", type=Path, default=None, help="output folder (default build/executed/PROFILE)")
    ap.add_argument("--chapters", nargs="*", help="chapter names (default: every chapter of book/_toc.yml)")
    ap.add_argument("-p", "--parameter", nargs=2, action="append", default=[], metavar=("NAME", "VALUE"),
                    help="override a notebook parameter (repeatable)")
    ap.add_argument("--force", action="store_true", help="re-run chapters even when up to date")
    args = ap.parse_args(argv)

    import jupytext
    import nbformat
    import papermill as pm

    out = (args.out or ROOT / "build" / "executed" / args.profile).resolve()
    out.mkdir(parents=True, exist_ok=True)
    work = ROOT / "build" / "sources"
    work.mkdir(parents=True, exist_ok=True)
    all_chapters = toc_chapters(ROOT / "book" / "_toc.yml")
    chapters = args.chapters or all_chapters
    unknown = [c for c in chapters if c not in all_chapters]
    if unknown:
        print(f"unknown chapter(s) {unknown}; the book lists {all_chapters}", file=sys.stderr)
        return 2
    params = {"profile": args.profile, **{k: parse_value(v) for k, v in args.parameter}}
    timings = {}
    for name in chapters:
        src = ROOT / "notebooks" / f"{name}.py"
        if not src.exists():
            print(f"{name}: missing source {src}", file=sys.stderr)
            return 2
        target = out / f"{name}.ipynb"
        fp = fingerprint(src, args.profile, params)
        if target.exists() and not args.force:
            meta = nbformat.read(target, as_version=4).metadata.get("mmdflow", {})
            if meta.get("fingerprint") == fp:
                print(f"{name}: up to date ({meta.get('seconds', float('nan')):.1f} s when run)", flush=True)
                timings[name] = meta.get("seconds")
                continue
        nb_src = work / f"{name}.ipynb"
        jupytext.write(jupytext.read(src), nb_src)
        print(f"{name}: running (profile {args.profile}) ...", flush=True)
        t0 = time.perf_counter()
        try:
            pm.execute_notebook(str(nb_src), str(target), parameters=params, kernel_name="python3",
                                cwd=str(ROOT / "notebooks"), progress_bar=False, log_output=False)
        except pm.PapermillExecutionError as err:
            print(f"\n{name}: FAILED in cell {err.cell_index} (execution count {err.exec_count}): "
                  f"{err.ename}: {err.evalue}", file=sys.stderr)
            nb = nbformat.read(target, as_version=4)
            print("---- failing cell source ----\n" + nb.cells[err.cell_index].source, file=sys.stderr)
            tb = re.sub(r"\x1b\[[0-9;]*m", "", "\n".join(err.traceback))  # strip ANSI colours
            print("---- traceback ----\n" + tb, file=sys.stderr)
            print(f"(partially executed notebook: {target})", file=sys.stderr)
            return 1
        seconds = time.perf_counter() - t0
        nb = nbformat.read(target, as_version=4)
        nb.metadata["mmdflow"] = {"fingerprint": fp, "seconds": round(seconds, 1), "profile": args.profile,
                                  "parameters": params}
        nbformat.write(nb, target)
        timings[name] = round(seconds, 1)
        print(f"{name}: done in {seconds:.1f} s", flush=True)
    (out / "timings.json").write_text(json.dumps(timings, indent=1))
    total = sum(t for t in timings.values() if t)
    print(f"executed chapters in {out} (chapter run times: {timings}, total {total:.1f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
