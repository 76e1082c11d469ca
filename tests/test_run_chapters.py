"""The chapter runner (scripts/run_chapters.py): parameters checked before execution, the failing cell printed."""

import importlib.util
import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
_spec = importlib.util.spec_from_file_location("run_chapters", ROOT / "scripts" / "run_chapters.py")
rc = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(rc)

CHAPTER = '''# ---
# jupyter:
#   jupytext:
#     formats: py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # A test chapter

# %% tags=["parameters"]
profile = "quick"
seed = 0
n_points = {"quick": 10, "paper": 100}
tau = 0.5
label = "a"
device = None

# %%
before = "the cell before the failing one"

# %%
raise RuntimeError("boom: the failing cell")

# %%
after = 1
'''


@pytest.fixture
def book(tmp_path, monkeypatch):
    """A book of one chapter ``99_test`` in a temporary root."""
    (tmp_path / "notebooks").mkdir()
    (tmp_path / "book").mkdir()
    (tmp_path / "notebooks" / "99_test.py").write_text(CHAPTER)
    (tmp_path / "book" / "_toc.yml").write_text("chapters:\n  - file: _executed/99_test\n")
    monkeypatch.setattr(rc, "ROOT", tmp_path)
    # main() exports these for the kernels it starts; restored after the test, so that a notebook that nbval runs
    # later in the same pytest worker does not read the records of this temporary book
    for var in ("MMDFLOW_RECORDS", "OMP_NUM_THREADS"):
        monkeypatch.setenv(var, os.environ.get(var, ""))
        if not os.environ.get(var):
            monkeypatch.delenv(var)
    return tmp_path


def test_the_parameters_cell_is_parsed(book):
    params = rc.chapter_parameters(book / "notebooks" / "99_test.py")
    assert params == {"profile": "quick", "seed": 0, "n_points": {"quick": 10, "paper": 100}, "tau": 0.5,
                      "label": "a", "device": None}


def test_every_chapter_of_the_book_passes_its_own_checks():
    for name in rc.toc_chapters(ROOT / "book" / "_toc.yml"):
        assert rc.check_parameters(name, ROOT / "notebooks" / f"{name}.py", {"profile": "paper"}) == []


@pytest.mark.parametrize("name,value,message", [
    ("r", "3", "unknown parameter 'r' (value 3); the chapter's parameters are: profile='quick', seed=0, "
               "n_points={'quick': 10, 'paper': 100}, tau=0.5, label='a', device=None"),
    ("n_points", "-5", "parameter n_points (override -5) must be an integer >= 1, got -5"),
    ("n_points", "2.5", "parameter n_points=2.5 must be of type int like its default"),
    ("seed", "-1", "parameter seed (override -1) must be an integer >= 0, got -1"),
    ("tau", "0", "parameter tau (override 0) must be a finite number > 0, got 0"),
    ("tau", "abc", "parameter tau='abc' must be of type float or int"),
    ("label", "3", "parameter label=3 must be of type str"),
])
def test_bad_parameters_fail_before_execution(book, capsys, name, value, message):
    assert rc.main(["--chapters", "99_test", "-p", name, value]) == 2
    err = capsys.readouterr().err
    assert "nothing was run" in err and message in err
    assert not (book / "build" / "executed" / "quick" / "99_test.ipynb").exists()


def test_a_failure_prints_the_failing_cell(book, capsys):
    pytest.importorskip("papermill")
    assert rc.main(["--chapters", "99_test", "--force"]) == 1
    err = capsys.readouterr().err
    source = err.split("---- failing cell source ----\n")[1].split("\n---- traceback ----")[0]
    assert source == 'raise RuntimeError("boom: the failing cell")'
    assert "FAILED in cell 3 of 99_test.py" in err and "RuntimeError: boom: the failing cell" in err
