"""Rewrite a results file of the Sec. 6.1 interaction benchmark from the old scheme names to the registry's names.

Until December 2026 the benchmark named its schemes ``"backward"``, ``"forward"`` and ``"particle"``; they are now
named by their names in the scheme registry (``mmdflow.schemes``): ``"neural_backward"``, ``"neural_forward"`` and
``"particle_flow"``. The library refuses a file with an old name (naming the file and this script) and never
translates silently; this script rewrites such a file once, in place:

    python scripts/migrate_scheme_names.py benchmarks/results/interaction_paper.json [more files ...]

Only the top-level ``"scheme"`` entry of each record changes, as text (every other byte of the file, numbers and
provenance included, stays as it is); the script checks that the parsed records are equal apart from those names,
and refuses a file with a scheme name it knows neither as old nor as new. A file already migrated is left alone.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

#: the old names and the registry's names.
RENAME = {"backward": "neural_backward", "forward": "neural_forward", "particle": "particle_flow"}
_LINE = re.compile(r'^(\s*"scheme": ")([a-z_]+)(",?)$', re.MULTILINE)


def migrate(path: Path) -> int:
    """Rewrite ``path``; returns the number of records renamed."""
    text = path.read_text()
    before = json.loads(text)
    if not isinstance(before, list) or not all(isinstance(rec, dict) and "scheme" in rec for rec in before):
        raise SystemExit(f"{path}: expected a JSON list of records with a 'scheme' each")
    unknown = sorted({rec["scheme"] for rec in before} - set(RENAME) - set(RENAME.values()))
    if unknown:
        raise SystemExit(f"{path}: unknown scheme names {unknown} (known: {RENAME})")
    renamed = 0

    def sub(m):
        nonlocal renamed
        if m.group(2) not in RENAME:
            return m.group(0)
        renamed += 1
        return m.group(1) + RENAME[m.group(2)] + m.group(3)

    new = _LINE.sub(sub, text)
    after = json.loads(new)
    expected = [{**rec, "scheme": RENAME.get(rec["scheme"], rec["scheme"])} for rec in before]
    if after != expected or renamed != sum(rec["scheme"] in RENAME for rec in before):
        raise SystemExit(f"{path}: the rewrite would change more than the scheme names; file left as it was")
    if renamed:
        path.write_text(new)
    return renamed


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("files", type=Path, nargs="+", help="results files (JSON lists of benchmark records)")
    for path in p.parse_args(argv).files:
        n = migrate(path)
        print(f"{path}: {n} record(s) renamed" if n else f"{path}: already uses the registry's names")
    return 0


if __name__ == "__main__":
    sys.exit(main())
