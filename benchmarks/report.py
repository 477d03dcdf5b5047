"""Rows of benchmark figures: each a measured value held against its target, printed and saved as JSON."""

from __future__ import annotations

import json
import sys
from dataclasses import asdict, dataclass
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"


@dataclass
class Row:
    figure: str
    value: float
    unit: str
    target: str = ""  # e.g. "<= 3 s"; empty for context figures
    met: bool | None = None  # None: no target
    note: str = ""
    detail: dict | None = None  # structured figures behind the value (a table the issue asks for)


def check(value: float, op: str, bound: float) -> bool:
    return {"<=": value <= bound, ">=": value >= bound, ">": value > bound}[op]


def row(figure: str, value: float, unit: str, op: str | None = None, bound: float | None = None,
        note: str = "", detail: dict | None = None) -> Row:
    value = float(value)  # numpy scalars are not JSON
    if op is None:
        return Row(figure, value, unit, note=note, detail=detail)
    return Row(figure, value, unit, f"{op} {bound:g} {unit}".strip(), bool(check(value, op, bound)), note, detail)


def print_table(title: str, rows: list[Row], stream=sys.stdout) -> None:
    print(f"\n## {title}\n", file=stream)
    print("| figure | value | target | met | note |", file=stream)
    print("|---|---|---|---|---|", file=stream)
    for r in rows:
        met = "" if r.met is None else ("yes" if r.met else "**no**")
        print(f"| {r.figure} | {r.value:,.4g} {r.unit} | {r.target} | {met} | {r.note} |", file=stream)


def save(sections: dict[str, list[Row]], context: dict, name: str = "latest.json") -> Path:
    """Merge these sections into the results file (a partial run replaces only its own sections).

    Figures named by a key (an identifier such as app_build_vs_cli) are also stored at the top level
    under that key, where an issue's "Done when" looks for them.
    """
    RESULTS.mkdir(exist_ok=True)
    path = RESULTS / name
    try:
        data = json.loads(path.read_text())
    except (FileNotFoundError, ValueError):
        data = {}
    data.setdefault("sections", {}).update({k: [asdict(r) for r in v] for k, v in sections.items()})
    data.setdefault("contexts", {}).update({k: context for k in sections})
    data["context"] = context
    for rows in sections.values():
        data.update({r.figure: asdict(r) for r in rows if r.figure.isidentifier()})
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(data, indent=1))
    tmp.replace(path)
    return path
