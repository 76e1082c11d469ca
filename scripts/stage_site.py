#!/usr/bin/env python
"""Prepare the staged source of the website (the Makefile's ``site-<profile>`` rule calls this after copying
``book/``, the executed chapters and MathJax into ``STAGE``):

* **downloads**: ``STAGE/downloads/`` gets an archive of the exact source the site is built from (``git archive``
  of ``HEAD``, or of the working tree's tracked files when they differ from it, with the stored results in
  ``benchmarks/results``) and a wheel of ``mmdflow`` built from that archive; ``SOURCE.json`` in the archive names
  the version and the commit;
* **the landing page's generated parts** (``STAGE/_generated/*.md``, included by ``book/intro.md``): the results
  summary from the scorecard records of the profile, the downloads with the commands that rerun a chapter from them,
  and how to cite the book and the papers (entries of ``book/references.bib``);
* **every chapter**: a line in its box that links the downloads, and a table of its parameters (name, meaning,
  value in each profile and in this build) after its ``parameters`` cell, parsed from the Jupytext source;
* **the library reference**: one page per layer (``STAGE/api/<layer>.md``, see :data:`API_PAGES`).

Usage: python scripts/stage_site.py PROFILE STAGE
"""

from __future__ import annotations

import ast
import hashlib
import io
import json
import os
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
import tokenize
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "scripts"))
from run_chapters import PROFILES, toc_chapters  # noqa: E402

#: the library reference: page -> (title, introduction, modules). A package's page lists the names it exports and
#: links each to the module that defines it; every other module is documented in full (autodoc).
API_PAGES = {
    "base": ("Base: profiles, records and the step loop",
             "Profiles, devices, provenance and result records (`runtime`), and the one step loop with its snapshots "
             "and checkpoints (`trajectory`). Every layer may use them.",
             ["mmdflow", "mmdflow.runtime", "mmdflow.trajectory", "mmdflow.fingerprints"]),
    "kernels": ("Kernels", r"Radial kernels $K(x,y) = \phi(\lVert x-y\rVert)$ and the one pairwise-distance routine.",
                ["mmdflow.kernels", "mmdflow.distances"]),
    "summation": ("Kernel sums", r"Kernel sums $\sum_j w_j K(x_i, y_j)$ and their gradients: the dispatcher above "
                  "the dense, blocked, sliced, fused and KeOps backends.",
                  ["mmdflow.summation", "mmdflow.summation.dispatch", "mmdflow.summation.dense",
                   "mmdflow.summation.coinciding", "mmdflow.summation.blocked", "mmdflow.summation.sliced",
                   "mmdflow.summation.fused", "mmdflow.summation.keops", "mmdflow.summation.directions",
                   "mmdflow.summation.sort1d"]),
    "energies": ("Energies, functionals and closed forms",
                 r"The energies $\mathcal E_K$, $\mathcal V_{K,\nu}$ and $\mathcal D_K^2$ with their Wasserstein "
                 "gradients, the functionals of Appendix F, the simplex problems of the weight steps, and the closed "
                 "forms the schemes are measured against.",
                 ["mmdflow.energies", "mmdflow.energy_functions", "mmdflow.functionals", "mmdflow.simplex",
                  "mmdflow.analytic", "mmdflow.analytic.prox", "mmdflow.analytic.curves", "mmdflow.analytic.samplers",
                  "mmdflow.analytic1d", "mmdflow.analytic1d.targets", "mmdflow.analytic1d.flow",
                  "mmdflow.analytic1d.wasserstein", "mmdflow.grid1d", "mmdflow.closed_forms"]),
    "schemes": ("Schemes", "The time discretisations, each a step for `mmdflow.trajectory.run_steps`: particle "
                "flows, the neural backward and forward schemes, and weighted particles (interaction-force "
                "transport, Wasserstein–Fisher–Rao and MMD flows).",
                ["mmdflow.schemes", "mmdflow.flows", "mmdflow.neural", "mmdflow.neural.networks",
                 "mmdflow.neural.training", "mmdflow.wfr", "mmdflow.wfr.particles", "mmdflow.wfr.weights"]),
    "metrics": ("Metrics", "Comparisons of a run with closed forms and references.", ["mmdflow.metrics"]),
    "experiments": ("Experiments", "The chapters' runs, the only layer that combines schemes, metrics and data, "
                    "and the scorecard that judges the papers' claims from the chapters' records.",
                    ["mmdflow.experiments", "mmdflow.experiments.interaction", "mmdflow.experiments.targets",
                     "mmdflow.experiments.mnist", "mmdflow.experiments.seeds", "mmdflow.experiments.fast",
                     "mmdflow.experiments.ift", "mmdflow.experiments.line", "mmdflow.experiments.sweep",
                     "mmdflow.experiments.runspecs", "mmdflow.experiments.scorecard",
                     "mmdflow.experiments.verdicts"]),
    "plots": ("Plots and tables", "The chapters' figures and tables; they take arrays or result objects.",
              ["mmdflow.plots", "mmdflow.plots.common", "mmdflow.plots.tables", "mmdflow.plots.kernels",
               "mmdflow.plots.dirac", "mmdflow.plots.neural", "mmdflow.plots.targets", "mmdflow.plots.mnist",
               "mmdflow.plots.wfr", "mmdflow.plots.fast", "mmdflow.plots.line", "mmdflow.plots.scorecard"]),
    "data": ("Data", "Targets and samples: drawn pictures and images, Gaussian mixtures and MNIST.",
             ["mmdflow.data", "mmdflow.data.images", "mmdflow.data.mixtures", "mmdflow.data.mnist"]),
}

#: papers whose experiments the book reproduces (keys of book/references.bib), cited on the landing page
REPRODUCED_PAPERS = ("altekrueger2023neural", "gladin2024ift", "zhu2024kernelfr", "zhu2024inclusivekl",
                     "hertrich2024sliced")


# ---------------------------------------------------------------------------------------------- version, downloads
def library_version() -> str:
    """``mmdflow.__version__`` read from ``lib/mmdflow/__init__.py`` (the one place it is written)."""
    tree = ast.parse((ROOT / "lib" / "mmdflow" / "__init__.py").read_text())
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(getattr(t, "id", None) == "__version__" for t in node.targets):
            return ast.literal_eval(node.value)
    raise RuntimeError("lib/mmdflow/__init__.py assigns no __version__")


def _git(*args: str, **kw) -> str:
    return subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True, check=True, **kw).stdout.strip()


def in_checkout() -> bool:
    """Whether ROOT is the top of a git checkout (not, e.g., an unpacked archive, even inside another checkout)."""
    try:
        return Path(_git("rev-parse", "--show-toplevel")).resolve() == ROOT.resolve()
    except (OSError, subprocess.CalledProcessError):
        return False


def source_state() -> dict:
    """``{"commit", "dirty"}`` of the checkout (``dirty``: tracked files differ from the commit); outside a git
    checkout (a site built from an unpacked archive) those of the ``SOURCE.json`` the archive carries."""
    if in_checkout():
        return {"commit": _git("rev-parse", "--short=12", "HEAD"),
                "dirty": bool(_git("status", "--porcelain", "--untracked-files=no"))}
    shipped = ROOT / "SOURCE.json"
    if not shipped.exists():
        raise RuntimeError(f"{ROOT} is neither a git checkout nor an unpacked source archive (no SOURCE.json): "
                           "the site's downloads cannot name the source they are made of")
    data = json.loads(shipped.read_text())
    return {"commit": data["commit"], "dirty": data.get("dirty", False)}


#: paths left out of an archive made without git (build outputs, the environment)
_NOT_SOURCE = {".git", ".venv", "build", "_build", "__pycache__", ".ipynb_checkpoints", ".pytest_cache"}


def _export_tree(dest: Path) -> None:
    """The source tree into ``dest``: in a git checkout ``git archive`` of the working tree's tracked files
    (``git stash create`` makes a commit of them when they differ from ``HEAD``, without touching the checkout);
    in an unpacked archive a copy without build outputs."""
    if in_checkout():
        tree = _git("stash", "create") or "HEAD"
        data = subprocess.run(["git", "archive", "--format=tar", tree], cwd=ROOT, capture_output=True,
                              check=True).stdout
        with tarfile.open(fileobj=io.BytesIO(data)) as tar:
            tar.extractall(dest, filter="data")
    else:
        shutil.copytree(ROOT, dest, symlinks=True,
                        ignore=lambda d, names: [n for n in names if n in _NOT_SOURCE or n.endswith(".egg-info")])


def make_downloads(folder: Path) -> dict:
    """Write the source archive and the wheel into ``folder``; returns their names, sizes, version and commit."""
    version, state = library_version(), source_state()
    stem = f"mmdflow-{version}-{state['commit'][:7]}{'-dirty' if state['dirty'] else ''}"
    with tempfile.TemporaryDirectory() as tmp:
        src = Path(tmp) / stem
        _export_tree(src)
        folder.mkdir(parents=True, exist_ok=True)   # after the export: an output folder inside ROOT is not source
        stored = sorted(p.name for p in (src / "benchmarks" / "results").glob("*.json"))
        (src / "SOURCE.json").write_text(json.dumps(
            {"version": version, **state, "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
             "stored_results": stored}, indent=1) + "\n")
        archive = folder / f"{stem}.tar.gz"
        with tarfile.open(archive, "w:gz") as tar:
            tar.add(src, arcname=stem, filter=_normalise)
        # the wheel is built from the archived source, not from the checkout (no build files land in lib/)
        proc = subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation",
                               "--no-index", "-w", str(folder), str(src / "lib")],
                              capture_output=True, text=True, env={**os.environ, "PIP_NO_INPUT": "1"})
        if proc.returncode:
            raise RuntimeError(f"building the mmdflow wheel failed:\n{proc.stdout}\n{proc.stderr}")
    wheel = next(folder.glob(f"mmdflow-{version}-*.whl"))
    return {"version": version, **state, "stem": stem, "archive": archive.name, "wheel": wheel.name,
            "archive_size": archive.stat().st_size, "wheel_size": wheel.stat().st_size, "stored_results": stored}


def _normalise(info: tarfile.TarInfo) -> tarfile.TarInfo:
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    return info


def _size(n: int) -> str:
    return f"{n / 1e6:.1f} MB" if n >= 1e6 else f"{n / 1e3:.0f} kB"


def downloads_markdown(info: dict, chapters: list[str]) -> str:
    """The landing page's section on the downloads and the commands that rerun a chapter from them."""
    commit = info["commit"] + (" with uncommitted changes" if info["dirty"] else "")
    example = chapters[0] if chapters else "01_kernels_mmd"
    stored = ", ".join(f"`{s}`" for s in info["stored_results"]) or "none"
    return f"""\
This site was built from `mmdflow` version **{info['version']}**, commit `{commit}`. Both downloads are made from
exactly that source when the site is built:

- {{download}}`source archive ({_size(info['archive_size'])}) </downloads/{info['archive']}>`: the library, the
  chapters' Jupytext sources, the prose pages, the tests, the benchmarks and the stored results the pages render
  ({stored}); `SOURCE.json` inside names the version and the commit;
- {{download}}`wheel of the mmdflow library ({_size(info['wheel_size'])}) </downloads/{info['wheel']}>`, for
  `pip install` (it needs `torch`, `numpy`, `matplotlib` and `tqdm`; `numba` makes some sums faster).

Rerun a chapter from the source archive (Python 3.11; the first command creates `.venv` with the pinned versions of
`environment.yml`):

```bash
tar xzf {info['archive']} && cd {info['stem']}
make chapter NB={example} PROFILE=quick      # -> build/executed/quick/{example}.ipynb
make book                                    # every chapter and this website, in _build/html
```

or by hand, with the library installed from the archive (or from the wheel) and any chapter's `.py`:

```bash
python -m venv .venv && . .venv/bin/activate
pip install -e lib jupytext papermill ipykernel     # or: pip install {info['wheel']} jupytext papermill ipykernel
cd notebooks && jupytext --to ipynb -o - {example}.py | papermill - out.ipynb -k python3 -p profile quick
```

Chapters that show stored results (the table of Sec. 6.1 in chapter 3, the 100-dimensional runs of chapter 6) find
them in `benchmarks/results` of the archive, or in the folder named by `MMDFLOW_RESULTS`; chapters 5 and 7 read
MNIST from the folder in `MMDFLOW_DATA` (downloaded there when missing and the network is reachable).
"""


def box_line(info: dict, name: str) -> str:
    """The line added to a chapter's box: the downloads and the command that reruns this chapter."""
    return (f"- **Rerun from the source:** the {{download}}`source archive </downloads/{info['archive']}>` or the "
            f"{{download}}`mmdflow wheel </downloads/{info['wheel']}>` (version {info['version']}, commit "
            f"`{info['commit']}`); in the unpacked archive `make chapter NB={name} PROFILE=quick` reruns this chapter "
            f"(see {{ref}}`rerun-from-downloads`).")


# ---------------------------------------------------------------------------------------------- chapter parameters
def parameter_rows(src: Path) -> list[dict]:
    """The assignments of the ``parameters`` cell of a Jupytext chapter: ``name``, ``meaning`` (the comment on the
    assignment's lines, else the comment lines just above it) and ``values`` (``{profile: source text}`` for a
    profile table, else ``{None: source text}``)."""
    import jupytext

    cells = [c for c in jupytext.read(src).cells if "parameters" in c.metadata.get("tags", [])]
    if len(cells) != 1:
        raise ValueError(f"{src}: expected one cell tagged 'parameters', found {len(cells)}")
    code = cells[0].source
    comments: dict[int, str] = {}
    for tok in tokenize.generate_tokens(io.StringIO(code).readline):
        if tok.type == tokenize.COMMENT:
            comments[tok.start[0]] = tok.string.lstrip("#").strip()
    lines = code.splitlines()
    rows = []
    for node in ast.parse(code).body:
        if not (isinstance(node, (ast.Assign, ast.AnnAssign))):
            continue
        target = node.targets[0] if isinstance(node, ast.Assign) else node.target
        if not isinstance(target, ast.Name):
            continue
        own = [comments[i] for i in range(node.lineno, node.end_lineno + 1) if i in comments]
        i = node.lineno - 1   # else the comment line just above (a comment block's last line)
        above = [comments[i]] if not own and i >= 1 and i in comments and lines[i - 1].lstrip().startswith("#") else []
        meaning = " ".join(c for c in own or above if not c.startswith("mmdflow:"))
        value = node.value
        if (isinstance(value, ast.Dict) and value.keys
                and all(isinstance(k, ast.Constant) and k.value in PROFILES for k in value.keys)):
            values = {k.value: ast.get_source_segment(code, v) for k, v in zip(value.keys, value.values)}
        else:
            values = {None: ast.get_source_segment(code, value)}
        rows.append({"name": target.id, "meaning": meaning, "values": values})
    return rows


def _cell(text: str) -> str:
    """Markdown table cell text: one line, pipes escaped."""
    return re.sub(r"\s+", " ", text).replace("|", "\\|").strip()


def _code(text: str | None) -> str:
    if text is None:
        return "–"
    text = re.sub(r"\s+", " ", text).strip()
    return "`" + text.replace("|", "\\|").replace("`", "'") + "`"


def _flatten(source: str) -> dict | None:
    """``{"key.sub": source}`` of a ``dict(...)`` call or a dict literal with string keys (nested ones flattened),
    else ``None``."""
    def walk(node, prefix):
        if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "dict" and not node.args:
            items = [(k.arg, v) for k in node.keywords for v in [k.value]]
        elif isinstance(node, ast.Dict) and all(isinstance(k, ast.Constant) and isinstance(k.value, str)
                                                 for k in node.keys):
            items = [(k.value, v) for k, v in zip(node.keys, node.values)]
        else:
            return {prefix: ast.unparse(node)} if prefix else None
        out = {}
        for key, value in items:
            if key is None:
                return None
            out.update(walk(value, f"{prefix}.{key}" if prefix else key) or {})
        return out

    try:
        return walk(ast.parse(source, mode="eval").body, "")
    except SyntaxError:
        return None


def _difference(value: str, here: str) -> str:
    """A profile's value as shown next to this page's: in full when short, else (for dicts) only the entries
    that differ from this page's value."""
    if len(value) <= 60:
        return _code(value)
    a, b = _flatten(value), _flatten(here)
    if a is None or b is None or set(a) != set(b):
        return _code(value)
    changed = [f"{k}={v}" for k, v in a.items() if v != b[k]]
    return "as on this page except " + ", ".join(_code(c) for c in changed)


def parameter_table(src: Path, profile: str, overrides: dict) -> str:
    """Markdown: the chapter's parameters with their value on this page (its profile, or an override), the value in
    the other profiles where it differs, and their meaning (the comment in the parameters cell)."""
    rows = [r for r in parameter_rows(src) if r["name"] != "profile"]
    body = []
    for r in rows:
        v = r["values"]
        here = v[None] if None in v else v.get(profile)
        shown = (_code(repr(overrides[r["name"]])) + " (override)" if r["name"] in overrides else _code(here))
        if None in v:
            others = "same in every profile"
        else:
            diffs = [f"`{p}`: " + ("–" if v.get(p) is None else _difference(v[p], here or ""))
                     for p in PROFILES if p != profile and v.get(p) != here]
            others = "<br>".join(diffs) or "same in every profile"
        body.append(f"| `{r['name']}` | {shown} | {others} | {_cell(r['meaning']) or '–'} |")
    head = f"| parameter | on this page (`{profile}`) | other profiles | meaning |\n|---|---|---|---|"
    return (f"**Parameters.** This page was built with the `{profile}` profile; "
            f"`make chapter NB={src.stem} PARAMS=\"-p name value\"` reruns it with another value (see "
            f"{{ref}}`rerun-from-downloads`).\n\n::::{{container}} mmdflow-params\n{head}\n" + "\n".join(body)
            + "\n::::\n")


def library_target(dotted: str) -> tuple[str, str] | None:
    """``(role, documented name)`` of a name ``mmdflow.x.y`` of the library (where it is defined), else ``None``."""
    import importlib
    import inspect

    parts = dotted.split(".")
    for cut in range(len(parts), 0, -1):
        try:
            obj = importlib.import_module(".".join(parts[:cut]))
        except ImportError:
            continue
        for attr in parts[cut:]:
            obj = getattr(obj, attr, None)
            if obj is None:
                return None
        if inspect.ismodule(obj):
            return "py:mod", obj.__name__
        if hasattr(obj, "__module__") and hasattr(obj, "__qualname__"):
            return "py:obj", f"{obj.__module__}.{obj.__qualname__}"
        return "py:data", dotted
    return None


_LIBRARY_CODE = re.compile(r"(?<![`{])`(mmdflow(?:\.\w+)+)((?:\([^`]*\))?)`(?!`)")


def link_library_names(markdown: str, seen: set) -> str:
    """The first mention on a page of each library name written as code, ``mmdflow.x.y`` or ``mmdflow.x.y(...)``,
    becomes a link to its reference entry (code blocks are left alone)."""
    parts = re.split(r"(^```.*?^```)", markdown, flags=re.S | re.M)

    def link(m):
        found = library_target(m.group(1))
        if found is None or found[1] in seen:
            return m.group(0)
        seen.add(found[1])
        return f"{{{found[0]}}}`{m.group(1)}{m.group(2)} <{found[1]}>`"

    return "".join(p if p.startswith("```") else _LIBRARY_CODE.sub(link, p) for p in parts)


def stage_chapter(nb_path: Path, info: dict) -> None:
    """Add the downloads line to the chapter's box and the parameter table after its parameters cell."""
    import nbformat

    nb = nbformat.read(nb_path, as_version=4)
    name = nb_path.stem
    meta = nb.metadata.get("mmdflow", {})
    profile = meta.get("profile") or "quick"
    overrides = {k: v for k, v in (meta.get("parameters") or {}).items() if k != "profile"}
    first = next(c for c in nb.cells if c.cell_type == "markdown")
    lines = first.source.splitlines()
    line = box_line(info, name)
    opens = [i for i, s in enumerate(lines) if s.startswith(":::{admonition}")]
    if opens:
        close = next(i for i in range(opens[0] + 1, len(lines)) if lines[i].strip().startswith(":::"))
        lines.insert(close, line)
    else:   # a chapter without a box: the line goes into one of its own after the title
        lines[1:1] = ["", ":::{note}", line, ":::"]
    first.source = "\n".join(lines)
    seen: set = set()
    for cell in nb.cells:
        if cell.cell_type == "markdown":
            cell.source = link_library_names(cell.source, seen)
    k = next((i for i, c in enumerate(nb.cells) if "parameters" in c.metadata.get("tags", [])), None)
    if k is not None:
        table = parameter_table(ROOT / "notebooks" / f"{name}.py", profile, overrides)
        nb.cells.insert(k + 1, nbformat.v4.new_markdown_cell(table))
    nbformat.write(nb, nb_path)


# ---------------------------------------------------------------------------------------------- landing page
_VERDICT_ORDER = ("reproduced", "partly", "not reproduced", "not run")


def _row_fields(row) -> dict:
    """A scorecard row (:func:`mmdflow.experiments.scorecard.scorecard_rows`) as named fields."""
    keys = ("paper", "item", "claim", "paper_setting", "chapter", "book_setting", "measured", "verdict", "why")
    if isinstance(row, dict):
        return row
    if hasattr(row, "_asdict"):
        return row._asdict()
    if isinstance(row, (list, tuple)) and len(row) == len(keys):
        return dict(zip(keys, row))
    raise ValueError(f"unexpected scorecard row {row!r}: expected the {len(keys)} fields {keys}")


def summary_markdown(profile: str, chapters: list[str]) -> str:
    """The landing page's results summary: verdict counts per paper and the findings, from the scorecard records
    of ``profile`` (the chapters' records in ``build/records/<profile>``, the stored results)."""
    os.environ.setdefault("MMDFLOW_RECORDS", str(ROOT / "build" / "records" / profile))
    os.environ.setdefault("MMDFLOW_RESULTS", str(ROOT / "benchmarks" / "results"))
    from mmdflow import runtime
    from mmdflow.experiments import scorecard

    rows = [_row_fields(r) for r in scorecard.scorecard_rows(runtime.load_records(profile))]
    verdicts = sorted({r["verdict"] for r in rows},
                      key=lambda v: (_VERDICT_ORDER.index(v) if v in _VERDICT_ORDER else len(_VERDICT_ORDER), v))
    papers = list(dict.fromkeys(r["paper"] for r in rows))
    card = "_executed/" + next((c for c in chapters if "scorecard" in c), "08_scorecard")

    def link(chapter: str) -> str:
        number = re.match(r"0*(\d+)_", chapter)
        text = f"chapter {number.group(1)}" if number else chapter
        return f"{{doc}}`{text} </_executed/{chapter}>`" if chapter in chapters else text

    stored = any("stored" in str(r.get("book_setting", "")) for r in rows)
    out = [f"The {{doc}}`scorecard </{card}>` judges {len(rows)} figures, tables and claims of the papers from "
           f"the runs of this build (`{profile}` profile)"
           + (" and from runs at the papers' settings stored with the source:" if stored else ":"), "",
           "| paper | " + " | ".join(verdicts) + " |", "|---|" + "---|" * len(verdicts)]
    for p in papers:
        out.append(f"| {p} | " + " | ".join(str(sum(r['paper'] == p and r['verdict'] == v for r in rows))
                                             for v in verdicts) + " |")
    out.append("| **all** | " + " | ".join(f"**{sum(r['verdict'] == v for r in rows)}**" for v in verdicts) + " |")
    out += ["", "The claims by verdict, each with the chapter that shows the run and explains the verdict:", ""]
    for v in verdicts:
        out.append(f"- **{v}** ({sum(r['verdict'] == v for r in rows)}):")
        out += [f"  - {r['paper']}, {_cell(r['item'])} ({link(r['chapter'])}): {_cell(r['claim'])}"
                for r in rows if r["verdict"] == v]
    return "\n".join(out) + "\n"


def _bib_entries(keys) -> str:
    text = (ROOT / "book" / "references.bib").read_text()
    entries = []
    for key in keys:
        m = re.search(r"^@\w+\{" + re.escape(key) + r",.*?^\}", text, flags=re.S | re.M)
        if m is None:
            raise KeyError(f"book/references.bib has no entry {key!r}")
        entries.append(m.group(0))
    return "\n\n".join(entries)


def cite_markdown(info: dict) -> str:
    """How to cite: the book (this version and commit) and the papers it reproduces (from references.bib)."""
    year = datetime.now(timezone.utc).year
    book = (f"@software{{mmdflow,\n  author  = {{{{The mmdflow developers}}}},\n"
            f"  title   = {{mmdflow: {{W}}asserstein gradient flows of {{MMD}} functionals, an executable companion}},\n"
            f"  version = {{{info['version']}}},\n  note    = {{commit {info['commit']}}},\n  year    = {{{year}}}\n}}")
    cites = ", ".join(f"{{cite:t}}`{k}`" for k in REPRODUCED_PAPERS)
    return f"""\
If you use the book or the library, cite the book (version {info['version']}; `CITATION.cff` in the source archive
holds the same) and the papers whose experiments you use: {cites}.

```bibtex
{book}
```

The papers, as in the book's bibliography:

```bibtex
{_bib_entries(REPRODUCED_PAPERS)}
```

The code, the chapters and the pages are released under the MIT licence (`LICENSE` in the source archive); third-party
files keep their own notices, shipped next to them.
"""


# ---------------------------------------------------------------------------------------------- library reference
def api_page(title: str, intro: str, modules: list[str]) -> str:
    """A reference page: for a package, its exported names linked to their definitions; for a module, autodoc."""
    import importlib
    import inspect

    out = [f"# {title}", "", intro, "", "Modules: " + ", ".join(f"{{py:mod}}`{m}`" for m in modules) + ".", ""]
    for name in modules:
        mod = importlib.import_module(name)
        out += [f"## `{name}`", ""]
        if hasattr(mod, "__path__") or name == "mmdflow":
            # names the package defines itself (not re-exported from a submodule) are documented here in full
            own = [a for a in getattr(mod, "__all__", []) if getattr(getattr(mod, a), "__module__", None) == name
                   and (inspect.isclass(getattr(mod, a)) or inspect.isfunction(getattr(mod, a)))]
            members = [f"   :members: {', '.join(own)}", "   :show-inheritance:"] if own else ["   :no-members:"]
            own_data = [a for a in getattr(mod, "__all__", []) if _is_data(getattr(mod, a))
                        and _definition_chain(name, a)[-1] == name]
            out += ["```{eval-rst}", f".. automodule:: {name}", *members]
            for a in own_data:   # constants the package assigns itself
                out += ["", f".. autodata:: {name}.{a}"] + ([] if _simple(getattr(mod, a)) else ["   :no-value:"])
            out += ["```", "", f"Names exported by `{name}` (each links to its definition):", ""]
            out += _export_table(mod, getattr(mod, "__all__", []))
        else:
            data = [a for a in getattr(mod, "__all__", []) if _is_data(getattr(mod, a)) and defining_module(name, a) == name]
            # names the module re-exports from another module with a page are documented there, and linked here
            elsewhere = [a for a in getattr(mod, "__all__", []) if _documented_elsewhere(mod, a)]
            exclude = data + elsewhere
            out += ["```{eval-rst}", f".. automodule:: {name}", "   :members:", "   :undoc-members:",
                    "   :show-inheritance:"] + ([f"   :exclude-members: {', '.join(exclude)}"] if exclude else [])
            for a in data:   # constants: autodoc leaves undocumented module data out, so each is listed
                out += ["", f".. autodata:: {name}.{a}"] + ([] if _simple(getattr(mod, a)) else ["   :no-value:"])
            out += ["```", ""]
            if elsewhere:
                out += [f"Names `{name}` exports from other modules (each links to its definition):", ""]
                out += _export_table(mod, elsewhere)
    return "\n".join(out)


def _export_table(mod, attrs: list[str]) -> list[str]:
    """Markdown lines of a table of the names ``attrs`` of ``mod``, each linked to its definition with the first
    sentence of its docstring (a constant's ``#:`` comment)."""
    import inspect

    out = ["| name | what it is |", "|---|---|"]
    for attr in attrs:
        obj = getattr(mod, attr)
        if inspect.ismodule(obj):
            target, role = obj.__name__, "py:mod"
        elif hasattr(obj, "__module__") and hasattr(obj, "__qualname__"):
            target, role = f"{obj.__module__}.{obj.__qualname__}", "py:obj"
        else:   # a constant: documented in the module that defines it
            target, role = f"{defining_module(mod.__name__, attr) or mod.__name__}.{attr}", "py:data"
        doc = ((inspect.getdoc(obj) or "") if (inspect.ismodule(obj) or callable(obj))
               else _data_doc(target.rpartition(".")[0], attr))
        out.append(f"| {{{role}}}`{attr} <{target}>` | {_first_sentence(doc) or '–'} |")
    return out + [""]


def _documented_elsewhere(mod, attr: str) -> bool:
    """Whether the name ``attr`` of the module ``mod`` is defined in another module that a page documents (a class
    or function re-exported from it, or a constant assigned there), so that ``mod``'s page links to it instead of
    documenting it a second time."""
    import inspect

    documented = {m for _, _, modules in API_PAGES.values() for m in modules}
    obj = getattr(mod, attr)
    if inspect.isclass(obj) or inspect.isfunction(obj):
        return obj.__module__ != mod.__name__ and obj.__module__ in documented
    return _is_data(obj) and defining_module(mod.__name__, attr) != mod.__name__


def _simple(value) -> bool:
    """Whether a constant's value is short enough to show beside its name."""
    return isinstance(value, (int, float, str, bool, type(None))) or (
        isinstance(value, tuple) and len(repr(value)) < 80)


def _data_doc(modname: str, name: str) -> str:
    """The ``#:`` comment (or docstring) of the module constant ``modname.name``, empty when it has none."""
    from sphinx.pycode import ModuleAnalyzer

    lines = ModuleAnalyzer.for_module(modname).find_attr_docs().get(("", name), [])
    return "\n".join(lines).strip()


def _is_data(obj) -> bool:
    import inspect

    return not (inspect.ismodule(obj) or inspect.isclass(obj) or callable(obj))


def _definition_chain(modname: str, name: str) -> list[str]:
    """The modules ``name`` passes through, from ``modname`` to the one that assigns it at its top level, following
    ``from .x import name`` (a constant re-exported by a package or a module)."""
    import importlib
    import inspect

    mod = importlib.import_module(modname)
    try:
        tree = ast.parse(inspect.getsource(mod))
    except (OSError, TypeError):
        return [modname]
    for node in tree.body:
        targets = (node.targets if isinstance(node, ast.Assign) else [node.target]
                   if isinstance(node, (ast.AnnAssign, ast.AugAssign)) else [])
        for t in targets:
            if any(isinstance(e, ast.Name) and e.id == name for e in (t.elts if isinstance(t, ast.Tuple) else [t])):
                return [modname]
    package = modname if hasattr(mod, "__path__") else modname.rpartition(".")[0]
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and any((a.asname or a.name) == name for a in node.names):
            base = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
            source = (f"{base}.{node.module}" if node.module else base) if node.level else node.module
            return [modname] + _definition_chain(source, name)
    return [modname]


def defining_module(modname: str, name: str) -> str:
    """The module on a reference page that documents the constant ``name`` of ``modname``: the one that assigns it,
    or, when that one has no page (a private module), the last module with a page that re-exports it."""
    documented = {m for _, _, modules in API_PAGES.values() for m in modules}
    chain = _definition_chain(modname, name)
    return next((m for m in reversed(chain) if m in documented and not _is_package(m)), modname)


def _is_package(modname: str) -> bool:
    import importlib

    return hasattr(importlib.import_module(modname), "__path__")


def _first_sentence(doc: str) -> str:
    """The first sentence of a docstring, its reST roles and literals written as MyST (for a Markdown table)."""
    para = doc.split("\n\n")[0]
    para = re.split(r"(?<!e\.g)(?<!i\.e)(?<!cf)\.(\s|$)", para)[0]
    para = re.sub(r":(\w+):`", r"{\1}`", para)           # :math:`x` -> {math}`x`
    return _cell(re.sub(r"``([^`]+)``", r"`\1`", para))   # ``x`` -> `x`


def _submodules(pkg) -> list[str]:
    import pkgutil

    return [f"{pkg.__name__}.{m.name}" for m in pkgutil.iter_modules(pkg.__path__)] if hasattr(pkg, "__path__") else []


def undocumented_modules() -> list[str]:
    """Public modules of ``mmdflow`` (every package walked) that no page of :data:`API_PAGES` lists."""
    import importlib
    import pkgutil

    listed = {m for _, _, modules in API_PAGES.values() for m in modules}
    pkg = importlib.import_module("mmdflow")
    found = [m.name for m in pkgutil.walk_packages(pkg.__path__, "mmdflow.")]
    return sorted(m for m in found if not any(part.startswith("_") for part in m.split(".")) and m not in listed)


def write_api_pages(stage: Path) -> list[str]:
    missing = undocumented_modules()
    if missing:
        raise SystemExit(f"the library reference lists no page for {missing}: add each to a layer of API_PAGES "
                         "in scripts/stage_site.py")
    (stage / "api").mkdir(exist_ok=True)
    for page, (title, intro, modules) in API_PAGES.items():
        (stage / "api" / f"{page}.md").write_text(api_page(title, intro, modules))
    return list(API_PAGES)


# ---------------------------------------------------------------------------------------------- main
def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 2 or argv[0] not in PROFILES:
        print(__doc__, file=sys.stderr)
        return 2
    profile, stage = argv[0], Path(argv[1])
    chapters = toc_chapters(ROOT / "book" / "_toc.yml")
    info = make_downloads(stage / "downloads")
    print(f"downloads: {info['archive']} ({_size(info['archive_size'])}), {info['wheel']} "
          f"({_size(info['wheel_size'])})")
    gen = stage / "_generated"
    gen.mkdir(exist_ok=True)
    (gen / "downloads.md").write_text(downloads_markdown(info, chapters))
    (gen / "cite.md").write_text(cite_markdown(info))
    (gen / "summary.md").write_text(summary_markdown(profile, chapters))
    (gen / "version.md").write_text(
        f"*Version {info['version']}, commit `{info['commit']}`{' with uncommitted changes' if info['dirty'] else ''}: "
        f"the {{ref}}`source and the library <rerun-from-downloads>` as downloads, {{ref}}`how to cite <how-to-cite>`, "
        f"the {{ref}}`results <what-this-book-found>`.*\n")
    for name in chapters:
        nb = stage / "_executed" / f"{name}.ipynb"
        if nb.exists():
            stage_chapter(nb, info)
    pages = write_api_pages(stage)
    print(f"staged {len(chapters)} chapter(s) and {len(pages)} reference page(s) in {stage}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
