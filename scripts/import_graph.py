#!/usr/bin/env python
"""The import graph of the ``mmdflow`` package, its layers, and the rules it must keep.

Every ``import`` inside ``lib/mmdflow`` that names another ``mmdflow`` module (module level or inside a
function) is an edge. Each module belongs to a layer (:data:`LAYERS`, lowest first); the rules
(:func:`violations`) are: no cycle; no module imports one of a higher layer; no summation backend imports the
dispatcher; the schemes (the modules the registry ``schemes.py`` imports: ``flows``, ``neural``, ``wfr``) never
import each other, the registry, ``metrics`` or ``experiments``;
plots never import a scheme (they take arrays or result objects).

    python scripts/import_graph.py                 # print the layers and any violation (exit 1 if there is one)
    python scripts/import_graph.py --png graph.png # also draw the graph, one row per layer
"""

from __future__ import annotations

import argparse
import ast
import sys
from pathlib import Path

PKG = Path(__file__).resolve().parents[1] / "lib" / "mmdflow"

#: layers from the bottom: a module may import modules of its own layer or below (prefix match, longest wins).
LAYERS = [
    ("base", ["_checks", "_jit", "runtime", "fingerprints", "trajectory"]),
    ("kernels", ["kernels", "distances"]),
    ("sums: engines and directions", ["summation.sort1d", "summation.directions", "summation.fused"]),
    ("sums: backends", ["summation.dense", "summation.coinciding", "summation.blocked", "summation.sliced",
                         "summation.keops"]),
    ("sums: dispatcher", ["summation.dispatch", "summation"]),
    ("energies, data, closed forms", ["energies", "energy_functions", "functionals", "simplex", "analytic",
                                      "analytic1d", "grid1d", "closed_forms", "data"]),
    ("schemes", None),                     # the modules the scheme registry imports (SCHEMES, below)
    ("scheme registry", ["schemes"]),
    ("metrics", ["metrics"]),
    ("experiments", ["experiments"]),
    ("plots", ["plots"]),
    ("package", [""]),
]


def registered_scheme_modules() -> tuple[str, ...]:
    """The scheme modules: those ``schemes.py`` (the registry) imports with ``from . import ...``, read from its
    source, so that registering a scheme is what puts its module under the sibling rule."""
    tree = ast.parse((PKG / "schemes.py").read_text())
    mods = [a.name for node in tree.body if isinstance(node, ast.ImportFrom) and node.level == 1 and not node.module
            for a in node.names]
    if not mods:
        raise RuntimeError(f"{PKG / 'schemes.py'} imports no scheme module")
    return tuple(mods)


SCHEMES = registered_scheme_modules()
LAYERS = [(name, list(SCHEMES) if mods is None else mods) for name, mods in LAYERS]
BACKENDS = ("summation.dense", "summation.coinciding", "summation.blocked", "summation.sliced", "summation.keops",
            "summation.sort1d", "summation.fused", "summation.directions")


def module_name(path: Path) -> str:
    rel = path.relative_to(PKG).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def layer_of(module: str) -> int:
    best, best_len = None, -1
    for i, (_, prefixes) in enumerate(LAYERS):
        for p in prefixes:
            if (module == p or module.startswith(p + ".") or p == "") and len(p) > best_len:
                best, best_len = i, len(p)
    return best


def _resolve(module: str, is_pkg: bool, node) -> list[str]:
    """Target modules of an import node, as names relative to ``mmdflow``."""
    out = []
    if isinstance(node, ast.Import):
        for alias in node.names:
            if alias.name == "mmdflow" or alias.name.startswith("mmdflow."):
                out.append(alias.name[len("mmdflow."):] if "." in alias.name else "")
        return out
    if node.level == 0:
        if node.module and (node.module == "mmdflow" or node.module.startswith("mmdflow.")):
            base = node.module[len("mmdflow."):] if "." in node.module else ""
        else:
            return out
    else:
        parts = module.split(".") if module else []
        if not is_pkg:
            parts = parts[:-1]
        up = node.level - 1
        parts = parts[: len(parts) - up] if up else parts
        base = ".".join(parts + ([node.module] if node.module else []))
    for alias in node.names:       # "from . import x" imports the module x when it exists
        cand = f"{base}.{alias.name}" if base else alias.name
        out.append(cand if _exists(cand) else base)
    return out


def _exists(module: str) -> bool:
    p = PKG.joinpath(*module.split("."))
    return p.with_suffix(".py").exists() or (p / "__init__.py").exists()


def import_graph() -> dict[str, set[str]]:
    """``{module: {imported modules}}`` over the package (names relative to ``mmdflow``; ``""`` is the package)."""
    graph = {}
    for path in sorted(PKG.rglob("*.py")):
        mod = module_name(path)
        targets = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                targets.update(t for t in _resolve(mod, path.name == "__init__.py", node) if t != mod)
        graph[mod] = targets
    return graph


def _cycles(graph) -> list[list[str]]:
    """Elementary cycles found by depth-first search (one per back edge); a package's ``__init__`` importing
    its own submodules is not a cycle."""
    found, state, stack = [], {}, []

    def visit(u):
        state[u] = 1
        stack.append(u)
        for v in sorted(graph.get(u, ())):
            if u.startswith(v + ".") or v == "":      # a submodule importing its package: the package's own file
                continue
            if state.get(v) == 1:
                found.append(stack[stack.index(v):] + [v])
            elif v not in state:
                visit(v)
        stack.pop()
        state[u] = 2

    for u in sorted(graph):
        if u not in state:
            visit(u)
    return found


def violations(graph=None) -> list[str]:
    """Every broken rule, as a line of text (empty when the layering holds)."""
    graph = import_graph() if graph is None else graph
    out = [f"cycle: {' -> '.join(c)}" for c in _cycles(graph)]
    for u, targets in sorted(graph.items()):
        for v in sorted(targets):
            if layer_of(v) > layer_of(u) and not v.startswith(u + "."):
                out.append(f"upward import: {u} ({LAYERS[layer_of(u)][0]}) imports {v} ({LAYERS[layer_of(v)][0]})")
            if u in BACKENDS and v in ("summation", "summation.dispatch"):
                out.append(f"backend imports the dispatcher: {u} -> {v}")
            top_u, top_v = u.split(".")[0], v.split(".")[0]
            if top_u in SCHEMES and (top_v in SCHEMES or top_v in ("metrics", "experiments")) and top_v != top_u:
                out.append(f"scheme imports {top_v}: {u} -> {v}")
            if top_u == "plots" and top_v in SCHEMES:
                out.append(f"plots import {top_v}: {u} -> {v}")
    return out


def draw(graph, path: Path) -> None:
    """One row per layer (bottom = lowest), an arrow per import; saved as PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows: dict[int, list[str]] = {}
    for mod in sorted(graph):
        rows.setdefault(layer_of(mod), []).append(mod or "mmdflow")
    pos = {}
    for k, mods in rows.items():
        for i, m in enumerate(mods):
            pos[m] = ((i + 1) / (len(mods) + 1), k)
    fig, ax = plt.subplots(figsize=(16, 11))
    for u, targets in graph.items():
        for v in targets:
            a, b = pos[u or "mmdflow"], pos[v or "mmdflow"]
            ax.annotate("", xy=b, xytext=a, arrowprops=dict(arrowstyle="->", color="0.6", lw=0.6, alpha=0.6,
                                                            shrinkA=8, shrinkB=8))
    for m, (x, y) in pos.items():
        ax.text(x, y, m, ha="center", va="center", fontsize=8,
                bbox=dict(boxstyle="round", fc="white", ec="C0", lw=0.8))
    ax.set_yticks(range(len(LAYERS)), [name for name, _ in LAYERS])
    ax.set_xticks([])
    ax.set_ylim(-0.6, len(LAYERS) - 0.4)
    ax.set_title("mmdflow import graph: an arrow is an import; every arrow points down or sideways")
    fig.tight_layout()
    fig.savefig(path, dpi=90)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--png", type=Path, help="draw the graph into this PNG file")
    args = p.parse_args(argv)
    graph = import_graph()
    for k, (name, _) in enumerate(LAYERS):
        mods = sorted(m or "mmdflow" for m in graph if layer_of(m) == k)
        print(f"{k:2d} {name:<30} {', '.join(mods)}")
    bad = violations(graph)
    print("\n".join(bad) if bad else "layering holds: no cycle, no upward import, no rule broken")
    if args.png:
        draw(graph, args.png)
        print(f"graph drawn in {args.png}")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
