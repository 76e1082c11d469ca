"""The built website in a real browser (headless Chromium): title, rendered math, figures; screenshots kept.

The site is located by ``MMDFLOW_SITE`` (set by ``make test``), else ``_build/html``. Without a built site the
tests are skipped, unless ``MMDFLOW_REQUIRE_SITE=1`` (as in ``make test``), where a missing site or browser fails.
Screenshots are kept in ``build/screenshots/`` as build artefacts.
"""

import os
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SITE = Path(os.environ.get("MMDFLOW_SITE", ROOT / "_build" / "html"))
if not SITE.is_absolute():
    SITE = ROOT / SITE
REQUIRE = os.environ.get("MMDFLOW_REQUIRE_SITE") == "1"
SHOTS = ROOT / "build" / "screenshots"

pytestmark = pytest.mark.site


def _need(condition: bool, reason: str):
    if not condition:
        if REQUIRE:
            pytest.fail(reason)
        pytest.skip(reason)


def chromium(*args: str, timeout: int = 120) -> str:
    exe = shutil.which("chromium") or shutil.which("chromium-browser")
    _need(exe is not None, "chromium is not installed (make test installs the Debian package)")
    with tempfile.TemporaryDirectory() as profile:
        cmd = [exe, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--disable-background-networking",
               "--disable-component-update", "--disable-sync", "--no-first-run", f"--user-data-dir={profile}",
               "--window-size=1280,1800", "--hide-scrollbars", "--virtual-time-budget=15000", *args]
        res = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    assert res.returncode == 0, f"chromium failed ({res.returncode}): {res.stderr[-2000:]}"
    return res.stdout


def rendered_dom(page: Path) -> str:
    return chromium("--dump-dom", page.as_uri())


def screenshot(page: Path, name: str) -> Path:
    SHOTS.mkdir(parents=True, exist_ok=True)
    out = SHOTS / name
    chromium(f"--screenshot={out}", page.as_uri())
    assert out.exists() and out.stat().st_size > 10_000, f"screenshot {out} missing or empty"
    return out


def chapter_pages():
    _need((SITE / "index.html").exists(), f"no built site at {SITE} (run make book or make test)")
    pages = sorted((SITE / "_executed").glob("*.html"))
    _need(bool(pages), f"no chapter pages under {SITE / '_executed'}")
    return pages


def test_index_page_renders_with_title_and_math():
    chapter_pages()
    dom = rendered_dom(SITE / "index.html")
    assert re.search(r"<title>[^<]*mmdflow[^<]*</title>", dom), "the index page has no mmdflow title"
    assert "mjx-container" in dom, "math on the index page was not rendered by MathJax"
    screenshot(SITE / "index.html", "index.png")


def test_first_chapter_shows_rendered_math_and_figures():
    page = chapter_pages()[0]
    dom = rendered_dom(page)
    assert re.search(r"<h1[^>]*>\s*Kernels, MMD and Riesz energies", dom), "chapter title missing"
    n_math = dom.count("<mjx-container")
    assert n_math >= 10, f"only {n_math} rendered formulas on {page.name}"
    raw = re.findall(r'<span class="math[^"]*">\s*\\\(', dom)
    assert not raw, f"{len(raw)} formulas left as raw TeX on {page.name}"
    images = re.findall(r'<img[^>]*src="(\.\./_images/[^"]+\.png)"', dom)
    assert images, f"no figure on {page.name}"
    for src in images:
        assert (page.parent / src).resolve().exists(), f"figure {src} referenced but missing"
    screenshot(page, f"{page.stem}.png")


def test_every_chapter_page_has_a_figure_and_no_raw_tex():
    for page in chapter_pages():
        dom = rendered_dom(page)
        assert "<img" in dom and "_images/" in dom, f"no figure on {page.name}"
        assert not re.findall(r'<span class="math[^"]*">\s*\\\(', dom), f"raw TeX on {page.name}"
