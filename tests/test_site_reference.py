"""The built website as a reader's entry point: the library reference (an entry for every public name, the index
lists them, the notation page links into it), the downloads (linked from the landing page and from every chapter's
box, naming the version and commit they were made from), the parameter tables, the results summary (it agrees with
the scorecard page) and how to cite.

The site is located like in ``test_site.py`` (``MMDFLOW_SITE``, else ``_build/html``); without one the tests are
skipped unless ``MMDFLOW_REQUIRE_SITE=1`` (``make test``).
"""

import html as html_lib
import importlib
import inspect
import json
import os
import re
import sys
import tarfile
from pathlib import Path

import pytest

import mmdflow

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "scripts"))
import stage_site  # noqa: E402
from run_chapters import chapter_parameters, toc_chapters  # noqa: E402

SITE = Path(os.environ.get("MMDFLOW_SITE", ROOT / "_build" / "html"))
if not SITE.is_absolute():
    SITE = ROOT / SITE
REQUIRE = os.environ.get("MMDFLOW_REQUIRE_SITE") == "1"
CHAPTERS = toc_chapters(ROOT / "book" / "_toc.yml")

pytestmark = pytest.mark.site


@pytest.fixture(scope="module")
def site() -> Path:
    if not (SITE / "index.html").exists():
        if REQUIRE:
            pytest.fail(f"no built site at {SITE}")
        pytest.skip(f"no built site at {SITE} (make book)")
    return SITE


def text(page: Path) -> str:
    return page.read_text(errors="replace")


def plain(page: Path) -> str:
    """The page's text without tags (code blocks are split into highlighted spans)."""
    return html_lib.unescape(re.sub(r"<[^>]+>", "", text(page)))


def inventory(site: Path) -> dict:
    from sphinx.util.inventory import InventoryFile

    with open(site / "objects.inv", "rb") as f:
        inv = InventoryFile.load(f, "", lambda base, uri: uri)
    return {name: (domain, entry[2]) for domain, entries in inv.items() for name, entry in entries.items()}


def public_names():
    """``(module, name, object)`` for every name in ``__all__`` of mmdflow and of every module on a reference page."""
    for page, (_, _, modules) in stage_site.API_PAGES.items():
        for modname in modules:
            mod = importlib.import_module(modname)
            for name in getattr(mod, "__all__", []):
                yield modname, name, getattr(mod, name)


def home(modname: str, name: str, obj) -> str:
    """The documented (canonical) name of a public object: where it is defined."""
    if inspect.ismodule(obj):
        return obj.__name__
    if hasattr(obj, "__module__") and hasattr(obj, "__qualname__") and (inspect.isclass(obj) or callable(obj)):
        return f"{obj.__module__}.{obj.__qualname__}"
    return f"{stage_site.defining_module(modname, name)}.{name}"   # a constant: where it is assigned


def test_every_public_name_has_a_reference_entry(site):
    inv = inventory(site)
    names = list(public_names())
    assert len(names) > 100
    missing = [f"{m}.{n} (documented as {home(m, n, o)})" for m, n, o in names if home(m, n, o) not in inv]
    assert not missing, f"{len(missing)} public names without an entry: {missing[:20]}"
    for m, n, o in names:   # the entry is on the layer page of its module
        domain, uri = inv[home(m, n, o)]
        assert uri.startswith("api/"), (m, n, uri)
    for m in mmdflow.__all__:   # the top-level names, in particular
        assert home("mmdflow", m, getattr(mmdflow, m)) in inv


def test_genindex_lists_the_public_names(site):
    page = text(site / "genindex.html")
    entries = set(re.findall(r"<li><a href=\"[^\"]*\">(?:<code[^>]*>)?([^<(]+)", page))
    entries = {html_lib.unescape(e).strip() for e in entries}
    assert len(entries) > 200, len(entries)
    functions = {n for m, n, o in public_names() if inspect.isfunction(o) or inspect.isclass(o)}
    assert functions and not [f for f in functions if f not in entries], sorted(functions - entries)[:20]


def test_notation_page_links_into_the_reference(site):
    page = text(site / "notation.html")
    links = re.findall(r'href="(api/[^"#]+\.html)#([^"]+)"', page)
    assert len(links) >= 20, len(links)
    inv_targets = {uri for _, uri in inventory(site).values()}
    for page_uri, anchor in links:
        assert (site / page_uri).exists() and f"{page_uri}#{anchor}" in inv_targets, (page_uri, anchor)


def _downloads(site: Path) -> dict:
    found = {p.name: p for p in (site / "_downloads").glob("*/mmdflow-*") if p.suffix in (".gz", ".whl")}
    return {"archive": next(p for n, p in found.items() if n.endswith(".tar.gz")),
            "wheel": next(p for n, p in found.items() if n.endswith(".whl"))}


def test_downloads_are_linked_from_the_landing_page_and_every_chapter(site):
    files = _downloads(site)
    assert files["wheel"].name.startswith(f"mmdflow-{mmdflow.__version__}-")
    with tarfile.open(files["archive"]) as tar:
        stem = tar.getnames()[0].split("/")[0]
        shipped = json.loads(tar.extractfile(f"{stem}/SOURCE.json").read())
        assert f"{stem}/LICENSE" in tar.getnames() and f"{stem}/CITATION.cff" in tar.getnames()
    index = text(site / "intro.html")   # the landing page (index.html redirects to it)
    assert shipped["version"] == mmdflow.__version__ and shipped["commit"] in index
    for name in ("archive", "wheel"):
        rel = files[name].relative_to(site).as_posix()
        assert f'href="{rel}"' in index, name
        for chapter in CHAPTERS:
            assert f'href="../{rel}"' in text(site / "_executed" / f"{chapter}.html"), (chapter, name)
    assert f"make chapter NB={CHAPTERS[0]} PROFILE=quick" in plain(site / "intro.html")   # the rerun commands


def test_every_chapter_shows_its_parameters(site):
    for chapter in CHAPTERS:
        page = text(site / "_executed" / f"{chapter}.html")
        block = re.search(r'<div class="mmdflow-params[^"]*">(.*?)</table>', page, flags=re.S)
        assert block, f"{chapter}: no parameter table"
        shown = re.findall(r"<tr[^>]*>\s*<td[^>]*><p><code[^>]*><span class=\"pre\">(\w+)</span>", block.group(1))
        expected = [p for p in chapter_parameters(ROOT / "notebooks" / f"{chapter}.py") if p != "profile"]
        assert shown == expected, chapter


def test_landing_summary_agrees_with_the_scorecard_page(site):
    """The landing page's counts (from the scorecard records) against the verdicts printed on the scorecard page."""
    index = text(site / "intro.html")   # the landing page (index.html redirects to it)
    card = next(c for c in CHAPTERS if "scorecard" in c)
    table = re.search(r'id="what-this-book-found".*?<table.*?</table>', index, flags=re.S)
    assert table, "no results summary on the landing page"
    header = [html_lib.unescape(h) for h in re.findall(r"<th[^>]*><p>(.*?)</p></th>", table.group(0))][1:]
    total = re.search(r"<td[^>]*><p><strong>all</strong></p></td>(.*?)</tr>", table.group(0), flags=re.S)
    counts = [int(c) for c in re.findall(r"<strong>(\d+)</strong>", total.group(1))]
    assert header and len(header) == len(counts)
    scorecard = text(site / "_executed" / f"{card}.html")
    for verdict, count in zip(header, counts):
        # the scorecard page's table prints each claim's verdict in bold, alone in its cell
        shown = len(re.findall(rf"<strong>{re.escape(verdict)}</strong></p></td>", html_lib.unescape(scorecard)))
        assert shown == count, (verdict, shown, count)
    assert f'href="_executed/{card}.html"' in index


def test_how_to_cite(site):
    assert 'id="how-to-cite"' in text(site / "intro.html")
    index = plain(site / "intro.html")
    assert "@software{mmdflow" in index and f"version = {{{mmdflow.__version__}}}" in index
    bib = (ROOT / "book" / "references.bib").read_text()
    for key in stage_site.REPRODUCED_PAPERS:
        eprint = re.search(r"@\w+\{" + key + r",.*?eprint\s*=\s*\{([^}]+)\}", bib, flags=re.S).group(1)
        assert f"{key}," in index and eprint in index, key
