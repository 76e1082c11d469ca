#!/usr/bin/env python
"""Check a built site: every chapter page exists and shows at least one figure; no CDN script is loaded; headings,
figure captions and table headers have no plain-text math (``D_K^2``, ``gamma(t)``, ``tau =`` ... outside ``$...$``).

Usage: python scripts/check_site.py SITE_HTML_DIR
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "scripts"))
from run_chapters import toc_chapters  # noqa: E402


def downloads_problems(site: Path, chapters: list[str]) -> list[str]:
    """The source archive and the wheel are in the site and linked from the landing page and every chapter."""
    files = sorted(p.relative_to(site).as_posix() for p in site.glob("_downloads/*/mmdflow-*")
                   if p.name.endswith((".tar.gz", ".whl")))
    if len(files) != 2:
        return [f"expected the source archive and the wheel in _downloads/, found {files}"]
    problems = [f"intro.html (the landing page) does not link {f}" for f in files
                if f'href="{f}"' not in (site / "intro.html").read_text(errors="replace")]
    for name in chapters:
        page = site / "_executed" / f"{name}.html"
        if page.exists():
            html = page.read_text(errors="replace")
            problems += [f"{name}: does not link {f}" for f in files if f'href="../{f}"' not in html]
    return problems


def reference_problems(site: Path) -> list[str]:
    """The library reference: one page per layer with entries, and an index of the names."""
    sys.path.insert(0, str(ROOT / "scripts"))
    from stage_site import API_PAGES

    problems = []
    for page in API_PAGES:
        f = site / "api" / f"{page}.html"
        if not f.exists() or 'class="sig sig-object py"' not in f.read_text(errors="replace"):
            problems.append(f"reference page api/{page}.html missing or without entries")
    index = site / "genindex.html"
    entries = len(re.findall(r"<li><a href=", index.read_text(errors="replace"))) if index.exists() else 0
    if entries < 100:
        problems.append(f"genindex.html lists {entries} names")
    return problems


#: plain-text math that must be typeset ($...$); the same pattern as tests/test_site.py.
PLAIN_MATH = re.compile(r"D_K\^?2|\bgamma\(t\)|\bdelta_0|\bMMD\(mu|\bR\^\d|\^\(-|\$|"
                        r"\b(?:tau|beta|sigma|lambda|eta|alpha|gamma|mu|nu|pi)\s*(?:=|\()")
LABELS = re.compile(r"<(h[1-4]|th|figcaption|caption)\b[^>]*>(.*?)</\1>", re.S)


def plain_math_labels(html: str) -> list[str]:
    """Headings, table headers and captions of a page (math spans removed) that contain plain-text math."""
    out = []
    for tag, body in LABELS.findall(html):
        body = re.sub(r'<span class="math[^"]*">.*?</span>', "", body, flags=re.S)
        body = re.sub(r"\\\(.*?\\\)", "", body, flags=re.S)       # inline math left for MathJax
        text = re.sub(r"<[^>]+>", "", body)
        bad = [m.group(0) for m in PLAIN_MATH.finditer(text)]
        if bad:
            out.append(f"<{tag}> {' '.join(text.split())[:100]!r}: {bad}")
    return out


#: ``$...$`` left as text: a Markdown snippet parsed without dollarmath (``{glue:md}`name``` without ``:myst``).
RAW_DOLLAR = re.compile(r"\$[^$\s][^$]{0,200}?\$")


def raw_dollar_math(html: str) -> list[str]:
    """Text of a page outside code, math and scripts that still shows ``$...$`` (math that was not typeset)."""
    for pattern in (r"<script.*?</script>", r"<style.*?</style>", r'<div class="highlight.*?</div>', r"<pre.*?</pre>",
                    r"<code.*?</code>", r'<span class="math[^"]*">.*?</span>', r'<div class="math[^"]*">.*?</div>'):
        html = re.sub(pattern, "", html, flags=re.S)
    text = " ".join(re.sub(r"<[^>]+>", " ", html).split())
    return [m.group(0)[:60] for m in RAW_DOLLAR.finditer(text)]


def main(site: Path) -> int:
    problems = []
    chapters = toc_chapters(ROOT / "book" / "_toc.yml")
    for name in chapters:
        page = site / "_executed" / f"{name}.html"
        if not page.exists():
            problems.append(f"{name}: page {page} missing")
            continue
        html = page.read_text(errors="replace")
        imgs = re.findall(r'<img[^>]*src="\.\./_images/([^"]+\.png)"', html)
        missing = [i for i in imgs if not (site / "_images" / i).exists()]
        if not imgs:
            problems.append(f"{name}: no figure on the page (was MPLBACKEND=Agg exported?)")
        if missing:
            problems.append(f"{name}: image files missing: {missing}")
        problems += [f"{name}: plain-text math in {x}" for x in plain_math_labels(html)]
        raw = raw_dollar_math(html)
        if raw:
            problems.append(f"{name}: {len(raw)} untypeset $...$ in the text, e.g. {raw[0]!r} (a {{glue:md}} role "
                            "without :myst?)")
        print(f"{name}: {len(imgs)} figure(s)")
    for page in site.rglob("*.html"):
        for src in re.findall(r'<script[^>]*src="(https?://[^"]+)"', page.read_text(errors="replace")):
            problems.append(f"{page.relative_to(site)}: loads a remote script {src} (the site must work offline)")
    problems += downloads_problems(site, chapters) + reference_problems(site)
    if not (site / "mathjax" / "tex-mml-chtml.js").exists():
        problems.append("offline MathJax copy missing (mathjax/tex-mml-chtml.js)")
    for p in problems:
        print("PROBLEM:", p, file=sys.stderr)
    if not problems:
        print(f"site OK: {len(chapters)} chapter(s), open {site / 'index.html'}")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT / "_build" / "html"))
