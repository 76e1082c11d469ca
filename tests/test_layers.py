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
    assert {"flows", "neural", "metrics", "analytic"} <= graph["experiments.interaction"]


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
