"""What the website offers for download, and what a reader does with it: the source archive of the exact commit
(unpacked, installed as the landing page says, one chapter rerun in the ``quick`` profile), the wheel of ``mmdflow``
(installed into a fresh virtual environment and imported); the version written in one place; the parameter tables
of the chapters parsed from their Jupytext sources.

The fresh environments get no network: they see the packages of the running interpreter (torch, papermill, ...)
through a path file, and ``mmdflow`` only from the download under test.
"""

import ast
import json
import os
import re
import subprocess
import sys
import sysconfig
import tarfile
import textwrap
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "scripts"))
import stage_site  # noqa: E402

import mmdflow  # noqa: E402

#: the cheapest chapter in the quick profile (about half a minute on one core)
CHEAP_CHAPTER = "01_kernels_mmd"


@pytest.fixture(scope="module")
def downloads(tmp_path_factory):
    folder = tmp_path_factory.mktemp("downloads")
    return folder, stage_site.make_downloads(folder)


def fresh_venv(path: Path) -> Path:
    """A new virtual environment (no pip, no network) that sees this interpreter's packages but not ``mmdflow``'s
    checkout: its own site-packages come first, then the running environment's through a ``.pth`` line (plain path
    lines do not run that environment's editable-install hooks)."""
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(path)], check=True)
    python = path / "bin" / "python"
    site = Path(subprocess.run([python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                               capture_output=True, text=True, check=True).stdout.strip())
    (site / "_shared_env.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    return python


def clean_env(venv_python: Path) -> dict:
    # nothing of the checkout's environment: no PYTHONPATH to its lib/, no variables of an enclosing make (make test)
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV", "PIP_REQUIRE_VIRTUALENV",
                                                            "MAKEFLAGS", "MFLAGS", "MAKELEVEL", "MMDFLOW_RECORDS")}
    env["PATH"] = f"{venv_python.parent}{os.pathsep}{env.get('PATH', '')}"
    env["PIP_NO_INDEX"] = "1"          # nothing is downloaded
    env["PIP_DISABLE_PIP_VERSION_CHECK"] = "1"
    return env


def pip_install(venv_python: Path, *args: str, cwd: Path | None = None):
    """pip of the running environment, installing into the fresh one (``--python``)."""
    res = subprocess.run([sys.executable, "-m", "pip", "--python", str(venv_python), "install", "-q", "--no-deps",
                          "--no-index", *args], capture_output=True, text=True, cwd=cwd, env=clean_env(venv_python))
    assert res.returncode == 0, f"pip install {args} failed:\n{res.stdout}\n{res.stderr}"


def where_mmdflow(venv_python: Path, cwd: Path) -> dict:
    res = subprocess.run([venv_python, "-c", "import json, mmdflow, torch; from mmdflow import energies, kernels;"
                          "x = torch.tensor([[0.0, 0.0]]); y = torch.tensor([[3.0, 4.0]]);"
                          "d = energies.discrepancy(x, y, kernels.Riesz(1.0));"
                          "print(json.dumps({'file': mmdflow.__file__, 'version': mmdflow.__version__,"
                          "'d': float(d)}))"],
                         capture_output=True, text=True, cwd=cwd, env=clean_env(venv_python))
    assert res.returncode == 0, res.stderr
    return json.loads(res.stdout.strip().splitlines()[-1])


# ------------------------------------------------------------------------------------------------ version, licence
def test_version_is_written_once():
    project = tomllib.loads((ROOT / "lib" / "pyproject.toml").read_text())["project"]
    assert "version" not in project and "version" in project.get("dynamic", [])
    assert tomllib.loads((ROOT / "lib" / "pyproject.toml").read_text())["tool"]["setuptools"]["dynamic"][
        "version"] == {"attr": "mmdflow.__version__"}
    assert re.fullmatch(r"\d+\.\d+\.\d+", mmdflow.__version__)
    cff = (ROOT / "CITATION.cff").read_text()
    assert re.search(r"^version:\s*(\S+)", cff, re.M).group(1) == mmdflow.__version__
    assert "MIT License" in (ROOT / "LICENSE").read_text() and re.search(r"^license:\s*MIT", cff, re.M)


# ------------------------------------------------------------------------------------------------ the wheel
@pytest.mark.slow
def test_wheel_installs_into_a_fresh_venv_and_imports(downloads, tmp_path):
    folder, info = downloads
    wheel = folder / info["wheel"]
    assert wheel.name.startswith(f"mmdflow-{mmdflow.__version__}-") and info["wheel_size"] > 20_000
    python = fresh_venv(tmp_path / "venv")
    pip_install(python, str(wheel))
    got = where_mmdflow(python, tmp_path)
    assert Path(got["file"]).resolve().is_relative_to((tmp_path / "venv").resolve()), got   # not the checkout
    assert got["version"] == mmdflow.__version__
    # D_K^2 of two Diracs with the Riesz kernel r = 1: E(delta_x) = E(delta_y) = 0, V = |x - y| = 5
    assert got["d"] == pytest.approx(5.0)


# ------------------------------------------------------------------------------------------------ the source archive
@pytest.mark.slow
def test_source_archive_reruns_a_chapter(downloads, tmp_path):
    """Unpack the archive, install it as the landing page says (a venv, ``pip install -e lib``), and run
    ``make chapter NB=<cheapest> PROFILE=quick`` in it: the executed notebook and the chapter's record appear inside
    the unpacked folder, written by the archive's own runner and library."""
    folder, info = downloads
    archive = folder / info["archive"]
    with tarfile.open(archive) as tar:
        names = tar.getnames()
        tar.extractall(tmp_path, filter="data")
    src = tmp_path / info["stem"]
    assert f"{info['stem']}/lib/mmdflow/__init__.py" in names
    assert f"{info['stem']}/notebooks/{CHEAP_CHAPTER}.py" in names
    shipped = json.loads((src / "SOURCE.json").read_text())
    assert shipped["version"] == mmdflow.__version__ and shipped["commit"] == info["commit"]
    stored = sorted(p.name for p in (ROOT / "benchmarks" / "results").glob("*.json"))
    assert stored and shipped["stored_results"] == stored
    for name in stored:   # the stored results the pages render, byte for byte
        assert (src / "benchmarks" / "results" / name).read_bytes() == (ROOT / "benchmarks" / "results" / name).read_bytes()
    assert not any(n.split("/")[1] in ("build", "_build", ".venv") for n in names if n.count("/") >= 1)

    venv = src / ".venv"
    python = fresh_venv(venv)
    pip_install(python, "--no-build-isolation", "-e", "lib", cwd=src)
    assert Path(where_mmdflow(python, src)["file"]).resolve().is_relative_to(src.resolve())
    (venv / ".installed").touch()   # the Makefile's venv step: the packages come from this environment instead
    env = clean_env(python)
    env["OMP_NUM_THREADS"] = "1"
    res = subprocess.run(["make", "chapter", f"NB={CHEAP_CHAPTER}", "PROFILE=quick"], cwd=src, env=env,
                         capture_output=True, text=True, timeout=900)
    assert res.returncode == 0, f"make chapter failed in the unpacked archive:\n{res.stdout[-3000:]}\n{res.stderr[-3000:]}"
    executed = src / "build" / "executed" / "quick" / f"{CHEAP_CHAPTER}.ipynb"
    nb = json.loads(executed.read_text())
    errors = [o for c in nb["cells"] for o in c.get("outputs", []) if o.get("output_type") == "error"]
    assert not errors and nb["metadata"]["mmdflow"]["profile"] == "quick"
    record = json.loads((src / "build" / "records" / "quick" / f"{CHEAP_CHAPTER}.json").read_text())
    assert record["profile"] == "quick"

    # the unpacked archive (no git) makes the same downloads for its own site, naming the same commit
    res = subprocess.run([python, "-c", "import json, sys; sys.path.insert(0, 'scripts'); import stage_site;"
                          "from pathlib import Path; print(json.dumps(stage_site.make_downloads(Path('again'))))"],
                         cwd=src, env=env, capture_output=True, text=True)
    assert res.returncode == 0, res.stderr
    again = json.loads(res.stdout.strip().splitlines()[-1])
    assert again["commit"] == info["commit"] and again["stem"] == info["stem"]
    with tarfile.open(src / "again" / again["archive"]) as tar:
        names_again = tar.getnames()
    assert f"{info['stem']}/notebooks/{CHEAP_CHAPTER}.py" in names_again
    assert not any(n.split("/")[1] in ("build", ".venv", "again") for n in names_again if n.count("/") >= 1)


# ------------------------------------------------------------------------------------------------ parameter tables
def write_chapter(path: Path, parameters: str) -> Path:
    path.write_text(textwrap.dedent('''\
        # %% [markdown]
        # # A chapter

        # %% tags=["parameters", "hide-input"]
        ''') + textwrap.dedent(parameters) + "\n# %%\nprint(1)\n")
    return path


def test_parameter_rows_read_names_meanings_and_profile_values(tmp_path):
    src = write_chapter(tmp_path / "09_demo.py", '''\
        profile = "quick"          # the profile
        seed = 0
        n = {"quick": 10, "book": 100, "paper": 1_000}   # particles
        # time step of the flow
        tau = 0.5
        cases = {"quick": [(2, 1.0)], "book": [(2, 1.0)],
                 "paper": [(d, r) for d in (2, 3) for r in (0.5, 1.0)]}   # (d, r)
        label = "a | b"            # text with a pipe
        ''')
    rows = {r["name"]: r for r in stage_site.parameter_rows(src)}
    assert list(rows) == ["profile", "seed", "n", "tau", "cases", "label"]
    assert rows["n"]["values"] == {"quick": "10", "book": "100", "paper": "1_000"}
    assert rows["n"]["meaning"] == "particles" and rows["seed"]["meaning"] == ""
    assert rows["tau"]["values"] == {None: "0.5"} and rows["tau"]["meaning"] == "time step of the flow"
    assert rows["cases"]["values"]["paper"] == "[(d, r) for d in (2, 3) for r in (0.5, 1.0)]"
    assert rows["cases"]["meaning"] == "(d, r)"

    table = stage_site.parameter_table(src, "book", {"seed": 3})
    lines = {line.split("|")[1].strip(): line for line in table.splitlines() if line.startswith("| `")}
    assert "`profile`" not in lines                       # stated in the sentence above the table instead
    cells = lambda name: [c.strip() for c in re.split(r"(?<!\\)\|", lines[f"`{name}`"])[1:-1]]  # noqa: E731
    assert cells("n") == ["`n`", "`100`", "`quick`: `10`<br>`paper`: `1_000`", "particles"]
    assert cells("seed")[1:3] == ["`3` (override)", "same in every profile"]
    assert cells("tau")[1:] == ["`0.5`", "same in every profile", "time step of the flow"]
    assert cells("cases")[2] == "`paper`: `[(d, r) for d in (2, 3) for r in (0.5, 1.0)]`"
    assert cells("label")[1] == '`"a \\| b"`' and cells("label")[3] == "text with a pipe"


def test_long_profile_values_show_only_what_differs():
    here = "dict(n=300, lr=3e-3, backward=dict(tau=2.0, iterations=15), forward=dict(tau=1.0, iterations=8), pad=1)"
    other = "dict(n=300, lr=3e-3, backward=dict(tau=2.0, iterations=300), forward=dict(tau=0.5, iterations=8), pad=1)"
    assert stage_site._difference(other, here) == ("as on this page except `backward.iterations=300`, "
                                                  "`forward.tau=0.5`")
    assert stage_site._difference("[1, 2]", "[1]") == "`[1, 2]`"   # short: in full


def test_every_chapter_has_a_readable_parameters_cell():
    for name in stage_site.toc_chapters(ROOT / "book" / "_toc.yml"):
        rows = stage_site.parameter_rows(ROOT / "notebooks" / f"{name}.py")
        assert rows and rows[0]["name"] == "profile", name
        for r in rows:   # each value parses as Python source
            for v in r["values"].values():
                ast.parse(v, mode="eval")


def test_library_sources_have_no_raw_control_characters():
    """A control character in a docstring (a ``\\b`` or ``\\v`` written in a non-raw string) breaks its rendering."""
    bad = [f"{p.relative_to(ROOT)}:{i}" for p in sorted((ROOT / "lib" / "mmdflow").rglob("*.py"))
           for i, line in enumerate(p.read_text().splitlines(), 1) if re.search(r"[\x00-\x08\x0b\x0c\x0e-\x1f]", line)]
    assert not bad, bad
