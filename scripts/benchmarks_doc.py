"""docs/benchmarks.md, generated from benchmarks/results/latest.json so that it cannot drift from the figures.

    $ .venv/bin/python scripts/benchmarks_doc.py           # rewrite docs/benchmarks.md
    $ .venv/bin/python scripts/benchmarks_doc.py --check   # exit 1 if it is out of date (the tests do this)

Each section is one table, stamped with the host that measured it and when (a section's context in the
results file), in the order of its number.
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RESULTS, DOC = ROOT / "benchmarks" / "results" / "latest.json", ROOT / "docs" / "benchmarks.md"
HEAD = """# Benchmarks

Every figure below comes from `make bench` (or `python -m benchmarks NAME`). Each section names the host that
measured it and when; hosts differ a lot (see [measurement](measurement.md)). Speed targets are ratios measured
side by side in one run. This page is generated from `benchmarks/results/latest.json` by
`scripts/benchmarks_doc.py`; a test fails when the two disagree.
"""


def _number(title: str) -> int:
    found = re.match(r"(\d+)\.", title)
    return int(found[1]) if found else 10_000


def _value(row: dict) -> str:
    value, unit = row["value"], row["unit"]
    text = f"{value:,.0f}" if abs(value) >= 1000 else f"{value:,.4g}"
    return f"{text} {unit}".strip()


def _cell(text: str) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def render(results: dict) -> str:
    out = [HEAD]
    for title in sorted(results["sections"], key=_number):
        ctx = results["contexts"].get(title, results.get("context", {}))
        host = ctx.get("host", {}).get("label", "an unrecorded host")
        when = (ctx.get("finished_at") or ctx.get("measured_at") or "")[:10]
        out.append(f"\n## {title}\n\nMeasured on **{host}**" + (f", {when}" if when else "") + ".\n")
        out.append("| figure | value | target | met | note |\n|---|---|---|---|---|")
        for row in results["sections"][title]:
            met = "" if row["met"] is None else ("yes" if row["met"] else "**no**")
            out.append(f"| {_cell(row['figure'])} | {_value(row)} | {_cell(row['target'])} | {met} | {_cell(row['note'])} |")
    return re.sub(r"\n{3,}", "\n\n", "\n".join(out)) + "\n"


def main(argv: list[str]) -> int:
    text = render(json.loads(RESULTS.read_text()))
    if argv == ["--check"]:
        if not DOC.exists() or DOC.read_text() != text:
            print(f"{DOC.relative_to(ROOT)} is out of date: run scripts/benchmarks_doc.py", file=sys.stderr)
            return 1
        return 0
    DOC.write_text(text)
    print(f"wrote {DOC.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
