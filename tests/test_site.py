"""The built website in a real browser (headless Chromium): title, rendered math, figures, layout at 1300 px, figure
captions, citations; screenshots kept.

The site is located by ``MMDFLOW_SITE`` (set by ``make test``), else ``_build/html``. Without a built site the
tests are skipped, unless ``MMDFLOW_REQUIRE_SITE=1`` (as in ``make test``), where a missing site or browser fails.
Screenshots are kept in ``build/screenshots/`` as build artefacts.
"""

import functools
import html as html_lib
import json
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


# ---- layout, figures and citations, measured in the browser ------------------------------------------------------

PROBE_JS = r"""
async function mmdflowProbe() {
  if (window.MathJax && MathJax.startup && MathJax.startup.promise) {
    try { await MathJax.startup.promise; } catch (e) {}
  }
  document.querySelectorAll('details').forEach(d => { d.open = true; });   // collapsed cells count too
  await new Promise(r => setTimeout(r, 300));
  const art = document.querySelector('article.bd-article') || document.querySelector('main') || document.body;
  const right = art.getBoundingClientRect().right;
  const name = el => el.tagName.toLowerCase() + (el.id ? '#' + el.id : '') +
                     (typeof el.className === 'string' && el.className ? '.' + el.className.trim().split(/\s+/).join('.') : '');
  const text = el => (el.textContent || '').trim().replace(/\s+/g, ' ').slice(0, 80);
  const out = {width: window.innerWidth, page_overflow: document.documentElement.scrollWidth - window.innerWidth,
               scrollers: [], overflowing: [], figures: [], citations: [], labels: [], clipped: []};
  const mathless = el => { const c = el.cloneNode(true);
    c.querySelectorAll('mjx-container, .caption-number, a.headerlink, script').forEach(e => e.remove());
    return c.textContent.trim().replace(/\s+/g, ' '); };
  // text that must be typeset: headings, table headers and captions, figure captions
  for (const el of art.querySelectorAll('h1, h2, h3, h4, th, caption, figcaption, div.cell_output p > strong'))
    out.labels.push([el.tagName.toLowerCase(), mathless(el).slice(0, 200)]);
  // tables and display equations that stick out of the column and are not inside a box that scrolls them
  const inScroller = el => { for (let a = el; a && a !== art; a = a.parentElement) {
      const ox = getComputedStyle(a).overflowX;
      if ((ox === 'auto' || ox === 'scroll') && a.getBoundingClientRect().right <= right + 1) return true; }
    return false; };
  for (const el of art.querySelectorAll('table, mjx-container[display="true"]')) {
    const r = el.getBoundingClientRect();
    if (r.width > 0 && r.right > right + 1 && !inScroller(el)) out.clipped.push([name(el), Math.round(r.right - right), text(el)]);
  }
  for (const el of art.querySelectorAll('*')) {
    if (el.clientWidth === 0) continue;
    const ox = getComputedStyle(el).overflowX;
    if ((ox === 'auto' || ox === 'scroll') && el.scrollWidth > el.clientWidth + 1)
      out.scrollers.push([name(el), el.clientWidth, el.scrollWidth, text(el)]);
  }
  for (const el of art.querySelectorAll('img, table, pre, svg, mjx-container, iframe, video')) {
    const r = el.getBoundingClientRect();
    if (r.width > 0 && r.right > right + 1) out.overflowing.push([name(el), Math.round(r.right - right), text(el)]);
  }
  for (const img of art.querySelectorAll('img')) {
    if (img.closest('.animation') && !img.id.startsWith('_anim_img')) continue;   // animation buttons
    const fig = img.closest('figure');
    const cap = fig ? fig.querySelector('figcaption') : null;
    let caption = '';
    if (cap) {
      const c = cap.cloneNode(true);
      c.querySelectorAll('mjx-container, .caption-number, a.headerlink').forEach(e => e.remove());
      caption = c.textContent.trim().replace(/\s+/g, ' ');
    }
    out.figures.push({src: (img.getAttribute('src') || '').slice(0, 60), natural: img.naturalWidth,
                      shown: Math.round(img.getBoundingClientRect().width), caption: caption,
                      animation: !!img.closest('.animation')});
  }
  for (const a of art.querySelectorAll('a[href*="references.html#"]')) out.citations.push([a.getAttribute('href'), text(a)]);
  const pre = document.createElement('pre');
  pre.id = 'mmdflow-probe';
  pre.textContent = JSON.stringify(out);
  document.body.appendChild(pre);
}
window.addEventListener('load', () => setTimeout(mmdflowProbe, 500));
"""


@functools.lru_cache(maxsize=None)
def probe(page: Path, width: int = 1300) -> dict:
    """Measurements of ``page`` in a ``width`` px wide window (see ``PROBE_JS``): horizontal scrolling, boxes wider
    than the text column, figures with their captions (math removed), citation links. Collapsed cells are opened."""
    html = page.read_text(errors="replace")
    base = f'<base href="{page.parent.as_uri()}/">'
    html = re.sub(r"<head>", "<head>" + base, html, count=1) + f"<script>{PROBE_JS}</script>"
    with tempfile.TemporaryDirectory() as tmp:
        copy = Path(tmp) / page.name
        copy.write_text(html)
        dom = chromium(f"--window-size={width},1800", "--virtual-time-budget=30000", "--dump-dom", copy.as_uri())
    m = re.search(r'<pre id="mmdflow-probe">(.*?)</pre>', dom, re.S)
    assert m, f"the layout probe did not run on {page.name}"
    return json.loads(html_lib.unescape(m.group(1)))


def test_no_chapter_page_scrolls_horizontally_at_1300px():
    problems = []
    for page in chapter_pages():
        p = probe(page)
        if p["page_overflow"] > 0:
            problems.append(f"{page.name}: the page is {p['page_overflow']} px wider than the window")
        problems += [f"{page.name}: {el} scrolls sideways ({cw} < {sw} px): {txt!r}" for el, cw, sw, txt in p["scrollers"]]
        problems += [f"{page.name}: {el} sticks {dx} px out of the column: {txt!r}" for el, dx, txt in p["overflowing"]]
        screenshot(page, f"{page.stem}-1300.png")
    assert not problems, "\n".join(problems)


#: plain-text math that must be typeset as math ($...$) in captions, headings and table headers.
PLAIN_MATH = re.compile(r"D_K\^?2|\bgamma\(t\)|\bdelta_0|\bMMD\(mu|\bR\^\d|\^\(-|\$|"
                        r"\b(?:tau|beta|sigma|lambda|eta|alpha|gamma|mu|nu|pi)\s*(?:=|\()")


def plain_math(text: str) -> list[str]:
    """The plain-text math fragments of ``text`` (math rendered by MathJax is removed before)."""
    return [m.group(0) for m in PLAIN_MATH.finditer(text)]


def test_plain_math_pattern_finds_untypeset_math_only():
    assert plain_math("D_K^2 to gamma(t), tau = 0.05, $N = 2000$, MMD(mu_t, nu)") == [
        "D_K^2", "gamma(t)", "tau =", "$", "$", "MMD(mu"]
    assert plain_math("distance to the exact flow at the paper's step (ratio over the floor)") == []


def test_no_plain_text_math_in_headings_captions_and_table_headers():
    problems = []
    for page in [SITE / "intro.html", SITE / "notation.html", *chapter_pages()]:
        if not page.exists():
            continue
        for tag, text in probe(page)["labels"]:
            bad = plain_math(text)
            if bad:
                problems.append(f"{page.name}: <{tag}> {text[:100]!r} has plain-text math {bad}")
    assert not problems, "\n".join(problems)


def test_tables_and_equations_fit_or_scroll_at_400px():
    problems = []
    for page in [SITE / "intro.html", SITE / "notation.html", *chapter_pages()]:
        if not page.exists():
            continue
        p = probe(page, 400)
        if p["page_overflow"] > 0:
            problems.append(f"{page.name}: at 400 px the page is {p['page_overflow']} px wider than the window")
        problems += [f"{page.name}: at 400 px {el} is cut off by {dx} px: {txt!r}" for el, dx, txt in p["clipped"]]
    assert not problems, "\n".join(problems)


def test_every_figure_has_a_caption_without_raw_tex_at_a_readable_size():
    problems = []
    for page in chapter_pages():
        for fig in probe(page)["figures"]:
            where = f"{page.name}: {'animation' if fig['animation'] else 'figure'} {fig['src']}"
            if not fig["caption"]:
                problems.append(f"{where} has no caption")
            elif re.search(r"\\[a-zA-Z]+|[$^{}]|_\{", fig["caption"]):     # a file name may hold "_"
                problems.append(f"{where}: raw TeX in the caption {fig['caption']!r}")
            if fig["animation"]:       # drawn 826 px wide with 11-13 pt fonts, shown at the column width
                if fig["natural"] < 800:
                    problems.append(f"{where} is only {fig['natural']} px wide")
            # fonts are chosen at >= 8 pt for the natural size: a figure shown smaller than that is unreadable
            elif fig["natural"] and fig["shown"] < 0.97 * fig["natural"]:
                problems.append(f"{where} is shown at {fig['shown']} of its {fig['natural']} px (too wide)")
    assert not problems, "\n".join(problems)


def test_citations_resolve_to_entries_of_the_references_page():
    refs = SITE / "references.html"
    _need(refs.exists(), f"no references page at {refs}")
    entries = dict(re.findall(r'<div class="citation" id="([^"]+)" role="doc-biblioentry">(.*?)</div>',
                              refs.read_text(errors="replace"), re.S))
    assert entries, "the references page lists no entry"
    unlinked = [i for i, body in entries.items() if not re.search(r'<a class="reference external" href="https://', body)]
    assert not unlinked, f"references without an arXiv/DOI link: {unlinked}"
    cited = set()
    for page in [SITE / "intro.html", *chapter_pages()]:
        links = probe(page)["citations"]
        if page.parent.name == "_executed":
            assert links, f"{page.name} cites nothing"
        for href, label in links:
            anchor = href.split("#", 1)[1]
            assert anchor in entries, f"{page.name}: citation {label!r} points to #{anchor}, not an entry"
            cited.add(anchor)
    assert cited == set(entries), f"entries never cited on a page: {sorted(set(entries) - cited)}"


def test_every_chapter_offers_its_notebook_and_source_for_download():
    for page in chapter_pages():
        html = page.read_text(errors="replace")
        for suffix in (".ipynb", ".py"):
            links = re.findall(rf'href="(\.\./_downloads/[^"]+/{re.escape(page.stem)}{re.escape(suffix)})"', html)
            assert links, f"{page.name} offers no {suffix} download"
            assert (page.parent / links[0]).resolve().exists(), f"{page.name}: download {links[0]} missing"


def test_static_check_flags_plain_math_in_labels_but_not_typeset_math():
    import sys
    sys.path.insert(0, str(ROOT / "scripts"))
    import check_site

    html = ('<th>ratio, <span class="math notranslate nohighlight">\\(t = 0.4\\)</span></th>'
            '<figcaption><p>D_K^2 to gamma(t), tau = 0.05</p></figcaption><h2>The case \\(d = 2\\)</h2>')
    bad = check_site.plain_math_labels(html)
    assert len(bad) == 1 and "figcaption" in bad[0] and "'tau ='" in bad[0]


def test_static_check_flags_dollar_math_left_as_text_but_not_code_or_typeset_math():
    import sys
    sys.path.insert(0, str(ROOT / "scripts"))
    import check_site

    html = ('<p>Built with: end times <span class="pasted-inline">$t$ = 3000</span>, '
            '<span class="math notranslate nohighlight">\\(\\tau = 1\\)</span></p>'
            '<div class="highlight"><pre>f"$t = {t}$"</pre></div><p>costs 5 $ and 7 $ per hour</p>')
    assert check_site.raw_dollar_math(html) == ["$t$"]
