"""The chapter runner (scripts/run_chapters.py): parameters checked before execution, the failing cell printed."""

import importlib.util
import json
import os
import subprocess
import sys
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
    for var in ("MMDFLOW_RECORDS", "MMDFLOW_RECORDS_STAGING", "OMP_NUM_THREADS"):
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


# ---------------------------------------------------------------------------------------- lost work, scratch runs

GOOD_CHAPTER = '''# ---
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

# %% tags=["parameters"]
profile = "quick"
seed = {"quick": 0, "book": 1, "paper": 2}
fail = False
record = False

# %%
seed = seed[profile] if isinstance(seed, dict) else seed
if record:            # imports torch: seconds, so only where a test needs the record
    import mmdflow.runtime
    mmdflow.runtime.record_results("98_good", {"seed": seed}, profile=profile)
print("seed is", seed)
if fail:
    raise RuntimeError("asked to fail")
'''


@pytest.fixture
def good_book(tmp_path, monkeypatch):
    """A book of one chapter ``98_good`` that prints its seed, records it with ``-p record True`` and fails with
    ``-p fail True``."""
    pytest.importorskip("papermill")
    (tmp_path / "notebooks").mkdir()
    (tmp_path / "book").mkdir()
    (tmp_path / "notebooks" / "98_good.py").write_text(GOOD_CHAPTER)
    (tmp_path / "book" / "_toc.yml").write_text("chapters:\n  - file: _executed/98_good\n")
    monkeypatch.setattr(rc, "ROOT", tmp_path)
    monkeypatch.delenv("MMDFLOW_RECORDS", raising=False)
    return tmp_path


def test_main_leaves_the_callers_environment_as_it_was(good_book, monkeypatch):
    # before: main() left MMDFLOW_RECORDS pointing at this temporary book, and the scorecard notebook that nbval ran
    # next in the same pytest worker scored the records of this book (one chapter) instead of the book's
    monkeypatch.setenv("OMP_NUM_THREADS", "3")
    assert rc.main(["--chapters", "98_good", "--jobs", "1"]) == 0
    assert "MMDFLOW_RECORDS" not in os.environ and os.environ["OMP_NUM_THREADS"] == "3"


def _seed_printed(path: Path) -> str:
    import nbformat

    return "".join(o.get("text", "") + o.get("ename", "") + ": " + o.get("evalue", "")
                   for c in nbformat.read(path, as_version=4).cells if c.cell_type == "code"
                   for o in c.get("outputs", []))


def test_a_failing_run_keeps_the_last_good_output_and_the_failed_one_beside_it(good_book, capsys):
    # before: papermill wrote straight to the output: the failed run replaced the good notebook
    out = good_book / "build" / "executed" / "quick"
    assert rc.main(["--chapters", "98_good", "-p", "seed", "5"]) == 0
    good = (out / "98_good.ipynb").read_bytes()
    # the failing run records its result before it fails: the record is dropped with the run
    assert rc.main(["--chapters", "98_good", "-p", "fail", "True", "-p", "record", "True"]) == 1
    err = capsys.readouterr().err
    assert (out / "98_good.ipynb").read_bytes() == good
    assert "RuntimeError: asked to fail" in _seed_printed(out / "98_good.failed.ipynb")
    assert f"partially executed notebook: {out / '98_good.failed.ipynb'}" in err and "is kept" in err
    assert "its records ['98_good.json'] were not stored" in err
    records = good_book / "build" / "records" / "quick"
    assert list(records.iterdir()) == []                                     # nor a staging folder left
    assert not [p for p in out.iterdir() if p.name.startswith(".")]          # no temporary file left
    assert rc.main(["--chapters", "98_good", "--force"]) == 0                  # a success removes the stale failure
    assert not (out / "98_good.failed.ipynb").exists()


def test_an_interrupted_run_keeps_the_last_good_output(good_book, monkeypatch, capsys):
    import papermill

    out = good_book / "build" / "executed" / "quick"
    assert rc.main(["--chapters", "98_good"]) == 0
    good = (out / "98_good.ipynb").read_bytes()

    def interrupted(src, dst, **kw):
        Path(dst).write_text('{"cells": [], "partial": true}')
        raise KeyboardInterrupt

    monkeypatch.setattr(papermill, "execute_notebook", interrupted)
    with pytest.raises(KeyboardInterrupt):
        rc.main(["--chapters", "98_good", "--force"])
    assert (out / "98_good.ipynb").read_bytes() == good
    assert '"partial": true' in (out / "98_good.failed.ipynb").read_text()
    assert "98_good: interrupted (partially executed notebook" in capsys.readouterr().err


def test_a_scratch_run_writes_its_records_with_its_output(good_book):
    # before: --out DIR still wrote build/records/<profile>/, which the next make book's scorecard read
    scratch = good_book / "scratch"
    assert rc.main(["--chapters", "98_good", "--out", str(scratch), "-p", "seed", "7", "-p", "record", "True"]) == 0
    assert json.loads((scratch / "records" / "98_good.json").read_text())["values"] == {"seed": 7}
    assert not (good_book / "build" / "records").exists()
    assert rc.main(["--chapters", "98_good", "-p", "record", "True"]) == 0      # the default output: build/records
    assert json.loads((good_book / "build" / "records" / "quick" / "98_good.json").read_text())["values"] == {"seed": 0}


def test_profile_as_a_parameter_and_bad_job_counts_are_refused(book, capsys):
    # before: -p profile book ran the book profile and filed it under quick; --jobs -3 ran one chapter at a time
    assert rc.main(["--profile", "quick", "-p", "profile", "book"]) == 2
    assert "-p profile book is refused" in capsys.readouterr().err
    for jobs in ("-3", "0", "two"):
        with pytest.raises(SystemExit):
            rc.main(["--jobs", jobs])
        assert f"--jobs: must be an integer >= 1 (chapters executed at the same time), got '{jobs}'" in \
            capsys.readouterr().err
    assert not (book / "build" / "executed" / "quick" / "99_test.ipynb").exists()


def test_overrides_stay_until_the_chapter_is_rerun_without_them(good_book, capsys):
    out = good_book / "build" / "executed" / "quick"
    assert rc.main(["--chapters", "98_good", "--force", "-p", "seed", "3"]) == 0   # make chapter ... PARAMS=...
    assert rc.main([]) == 0                                                       # make book
    assert "keeps the overrides -p seed 3" in capsys.readouterr().out
    assert "seed is 3" in _seed_printed(out / "98_good.ipynb")
    # a library change re-executes it with the kept overrides
    (good_book / "lib" / "mmdflow").mkdir(parents=True)
    (good_book / "lib" / "mmdflow" / "new.py").write_text("x = 1\n")
    assert rc.main([]) == 0
    assert "running (profile quick, overrides -p seed 3)" in capsys.readouterr().out
    assert "seed is 3" in _seed_printed(out / "98_good.ipynb")
    assert rc.main(["--chapters", "98_good", "--force"]) == 0                    # make chapter NB=... (defaults)
    assert rc.main([]) == 0
    assert "seed is 0" in _seed_printed(out / "98_good.ipynb")
    assert "keeps the overrides" not in capsys.readouterr().out


def test_the_readme_override_sequence_keeps_the_override(good_book, tmp_path):
    """The README's two commands, through the Makefile, in a copy of the project with one chapter (the site build
    replaced by an echo): the override of ``make chapter`` survives ``make book``."""
    import shutil

    if shutil.which("make") is None:
        pytest.skip("make is not installed")
    (good_book / "scripts").mkdir()
    shutil.copy(ROOT / "scripts" / "run_chapters.py", good_book / "scripts")
    shutil.copy(ROOT / "Makefile", good_book)
    (good_book / "build" / "mathjax").mkdir(parents=True)
    (good_book / "build" / "mathjax" / "tex-mml-chtml.js").write_text("")
    venv = Path(sys.executable).parent.parent
    common = [f"VENV={venv}", "PY=" + sys.executable, "-o", str(venv / ".installed"),
              "build_site=@echo site from build/executed/$(1)"]
    env = dict(os.environ, PYTHONPATH=str(ROOT / "lib"))
    env.pop("MAKEFLAGS", None)
    # the README: make chapter NB=02_dirac_flows PARAMS="-p seed 3 ..."; make book
    first = subprocess.run(["make", "chapter", "NB=98_good", "PARAMS=-p seed 3", *common], cwd=good_book, env=env,
                           capture_output=True, text=True)
    assert first.returncode == 0, first.stdout + first.stderr
    second = subprocess.run(["make", "book", *common], cwd=good_book, env=env, capture_output=True, text=True)
    assert second.returncode == 0, second.stdout + second.stderr
    assert "keeps the overrides -p seed 3" in second.stdout
    assert "seed is 3" in _seed_printed(good_book / "build" / "executed" / "book" / "98_good.ipynb")
