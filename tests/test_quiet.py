"""The chapter runner prints progress and results, not library notices: papermill's "Unable to parse line" for
multi-line or commented parameters, ipykernel's "running over TCP without encryption"; a warning raised by the
chapter's own code still reaches the executed notebook."""

import logging
import sys
import textwrap
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "scripts"))
import run_chapters  # noqa: E402


def test_filter_drops_only_papermills_parse_notice():
    f = run_chapters._UnparsedParameterLines()
    make = lambda msg: logging.LogRecord("papermill.translators", logging.WARNING, __file__, 1, msg, None, None)  # noqa: E731
    assert not f.filter(make("Unable to parse line 3 'n = {\"quick\": 1,'."))
    assert f.filter(make("Black encountered an error, skipping formatting"))


def test_kernel_config_uses_private_ipc_sockets():
    a, b = run_chapters.kernel_config(), run_chapters.kernel_config()
    assert a.KernelManager.transport == "ipc"
    assert Path(a.KernelManager.ip).parent.is_dir() and a.KernelManager.ip != b.KernelManager.ip
    assert "--IPKernelApp.log_level=CRITICAL" in a.NotebookClient.extra_arguments


@pytest.mark.slow
def test_a_notebook_runs_without_library_notices(tmp_path, capfd, caplog):
    import papermill as pm

    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    params = nbformat.v4.new_code_cell(textwrap.dedent('''\
        n = {"quick": 1, "book": 2,
             "paper": 3}          # a parameter over two lines, with a comment
        '''))
    params.metadata["tags"] = ["parameters"]
    nb.cells = [params, nbformat.v4.new_code_cell("import warnings\nwarnings.warn('a warning of the chapter')\n"
                                                 "print('n =', n)")]
    nbformat.write(nb, tmp_path / "in.ipynb")
    caplog.set_level(logging.INFO)
    pm.execute_notebook(str(tmp_path / "in.ipynb"), str(tmp_path / "out.ipynb"), parameters={"n": 5},
                        kernel_name="python3", progress_bar=False, log_output=False,
                        config=run_chapters.kernel_config())
    printed = capfd.readouterr()
    everything = printed.out + printed.err + caplog.text
    assert "Unable to parse line" not in everything and "TCP" not in everything, everything
    out = nbformat.read(tmp_path / "out.ipynb", as_version=4)
    texts = "".join(o.get("text", "") for c in out.cells if c.cell_type == "code" for o in c.get("outputs", []))
    assert "n = 5" in texts and "a warning of the chapter" in texts   # the chapter's own warning stays visible
