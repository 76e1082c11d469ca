"""The bibliography: every entry of book/references.bib has a link (arXiv id, DOI or URL) and is cited in the book;
every citation in the pages and chapters has an entry. (The browser test checks the built references page.)"""

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BIB = ROOT / "book" / "references.bib"


def bib_entries() -> dict[str, str]:
    text = BIB.read_text()
    starts = [(m.start(), m.group(1)) for m in re.finditer(r"@\w+\{([^,\s]+),", text)]
    return {key: text[a:b] for (a, key), (b, _) in zip(starts, starts[1:] + [(len(text), "")])}


def cited_keys() -> dict[str, set[str]]:
    """``{key: files citing it}`` over book/*.md and notebooks/*.py (``{cite}``, ``{cite:t}``, ``{cite:p}``)."""
    out: dict[str, set[str]] = {}
    for f in sorted([*(ROOT / "book").glob("*.md"), *(ROOT / "notebooks").glob("*.py")]):
        for keys in re.findall(r"\{cite(?::[a-z]+)?\}`([^`]+)`", f.read_text()):
            for key in keys.split(","):
                out.setdefault(key.strip(), set()).add(f.name)
    return out


def test_every_entry_has_a_link():
    entries = bib_entries()
    assert len(entries) >= 5
    missing = [k for k, body in entries.items() if not re.search(r"^\s*(eprint|doi|url)\s*=", body, re.M)]
    assert not missing, f"entries without eprint/doi/url: {missing}"


def test_entries_and_citations_match():
    entries, cited = set(bib_entries()), cited_keys()
    assert not set(cited) - entries, f"cited but not in references.bib: {sorted(set(cited) - entries)}"
    assert not entries - set(cited), f"in references.bib but never cited: {sorted(entries - set(cited))}"


def test_every_chapter_cites_a_source():
    cited_in = set().union(*cited_keys().values())
    chapters = {f.name for f in (ROOT / "notebooks").glob("[0-9][0-9]_*.py")}
    assert not chapters - cited_in, f"chapters without a citation: {sorted(chapters - cited_in)}"
