"""The package's import graph keeps its layers (scripts/import_graph.py): no cycle, no upward import."""

import importlib.util
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def ig():
    spec = importlib.util.spec_from_file_location("import_graph", ROOT / "scripts" / "import_graph.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_the_package_keeps_its_layers(ig):
    assert ig.violations() == []


def test_the_graph_sees_relative_local_and_absolute_imports(ig):
    graph = ig.import_graph()
    assert {"kernels", "summation", "summation.sliced"} <= graph["energies"]
    assert "summation.sort1d" in graph["summation.sliced"]          # from . import sort1d as _sort1d
    assert {"summation.dense", "summation.blocked", "summation.sliced"} <= graph["summation.dispatch"]
    assert "trajectory" in graph["neural"] and "neural.networks" in graph["neural"]     # from .networks import
    assert "metrics" not in graph["neural"]
    assert {"flows", "schemes", "metrics", "analytic"} <= graph["experiments.interaction"]
    assert "neural" not in graph["experiments.interaction"]       # the neural schemes only through the registry


def test_the_rules_catch_cycles_upward_imports_and_sibling_schemes(ig):
    bad = ig.violations({"kernels": {"energies"}, "energies": {"kernels"}, "flows": {"neural", "metrics"},
                         "neural": set(), "metrics": set(), "summation.dense": {"summation.dispatch"},
                         "summation.dispatch": set(), "plots.common": {"wfr"}, "wfr": set()})
    text = "\n".join(bad)
    assert "cycle: energies -> kernels -> energies" in text or "cycle: kernels -> energies -> kernels" in text
    assert "upward import: kernels (kernels) imports energies" in text
    assert "scheme imports neural: flows -> neural" in text and "scheme imports metrics: flows -> metrics" in text
    assert "backend imports the dispatcher: summation.dense -> summation.dispatch" in text
    assert "plots import wfr: plots.common -> wfr" in text


def test_the_scheme_modules_are_the_registered_ones(ig):
    """Registering a scheme (``mmdflow/schemes.py``) is what puts its module under the sibling rule."""
    assert set(ig.SCHEMES) == {"flows", "neural", "wfr"}
    bad = ig.violations({"flows": {"schemes"}, "schemes": {"flows"}})
    assert any("upward import: flows" in line for line in bad)


#: the most lines a library file may have; a longer module is split by topic into modules or a package that
#: re-exports the names it had (CONTRIBUTING.md, "Layout").
MAX_LINES = 600


def long_files(root: Path, limit: int = MAX_LINES) -> dict[str, int]:
    """``{path relative to root: line count}`` of the ``.py`` files under ``root`` longer than ``limit`` lines."""
    counts = {str(p.relative_to(root)): len(p.read_text().splitlines()) for p in sorted(root.rglob("*.py"))}
    return {path: n for path, n in counts.items() if n > limit}


def test_no_library_file_exceeds_the_line_limit():
    assert long_files(ROOT / "lib") == {}, f"split these modules by topic (at most {MAX_LINES} lines a file)"


def test_the_line_limit_sees_a_long_file_in_a_subpackage(tmp_path):
    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg" / "long.py").write_text("x = 1\n" * (MAX_LINES + 1))
    (tmp_path / "pkg" / "short.py").write_text("x = 1\n" * MAX_LINES)
    (tmp_path / "notes.txt").write_text("x\n" * (MAX_LINES + 1))
    assert long_files(tmp_path) == {"pkg/long.py": MAX_LINES + 1}


def test_chapters_leave_thread_counts_to_the_one_helper():
    """Chapters set torch's CPU threads only through ``mmdflow.runtime.cpu_threads`` (one definition, one reason)."""
    direct = {p.name for p in sorted((ROOT / "notebooks").glob("*.py")) if "set_num_threads" in p.read_text()}
    assert direct == set(), f"call mmdflow.runtime.cpu_threads instead of torch.set_num_threads in {sorted(direct)}"
