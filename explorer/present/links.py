"""Deep links: a page's view as URL query parameters, read as untrusted input (pure: no Streamlit).

A link is anything anybody may paste. Every value is checked against what it can be (a known axis or
mode, a 16-hex-digit key, a number in range, at most MAX_VALUE characters); anything else is dropped
with a message saying why, and no value is ever used to build a path.
"""

from __future__ import annotations

import dataclasses
import math
import re
from dataclasses import dataclass
from typing import Any, Mapping

from explorer.measure.boards import BOARDS
from explorer.present.results import METRICS, Y_AXES
from explorer.spec import FAMILY_FIELDS, QUANT_MODES, SpecError, VariantSpec

MAX_VALUE = 200  # characters in one value
MAX_KEYS = 4  # variants in a Compare link
KEY = re.compile(r"^[0-9a-f]{16}$")
DATASET = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")
X_AXES = tuple(m for m, metric in METRICS.items() if metric.lower_is_better)
PARETO_PARAMS = ("dataset", "x", "y", "log", "depth", "quant", "budget", "board", "ram", "flash")
SPEC_FIELDS = tuple(f.name for f in dataclasses.fields(VariantSpec))


@dataclass(frozen=True)
class ParetoView:
    """What a Pareto link sets; None leaves the page's default."""

    dataset: str | None = None
    x: str | None = None
    log_x: bool | None = None
    depths: tuple[int, ...] | None = None
    quants: tuple[str, ...] | None = None
    budget: float | None = None
    y: str | None = None
    board: str | None = None  # a preset of explorer.measure.boards
    ram_kb: float | None = None  # a device's RAM and flash limits (KB), set by the board or typed in
    flash_kb: float | None = None


def _value(params: Mapping[str, Any], name: str, problems: list[str]) -> str | None:
    raw = params.get(name)
    if isinstance(raw, (list, tuple)):
        raw = raw[-1] if raw else None
    if raw is None:
        return None
    raw = str(raw)
    if len(raw) > MAX_VALUE:
        problems.append(f"'{name}' in the link is {len(raw):,} characters long (at most {MAX_VALUE}): ignored")
        return None
    return raw


def unknown(params: Mapping[str, Any], known: tuple[str, ...], problems: list[str]) -> list[str]:
    """Adds a message for each parameter that is not one of known; returns problems."""
    for name in params:
        if name not in known:
            shown = name if len(name) <= 40 else name[:40] + "…"
            problems.append(f"'{shown}' is not a setting of this page: ignored")
    return problems


def parse_pareto(params: Mapping[str, Any]) -> tuple[ParetoView, list[str]]:
    problems: list[str] = []
    unknown(params, PARETO_PARAMS, problems)
    view: dict[str, Any] = {}
    if (v := _value(params, "dataset", problems)) is not None:
        if DATASET.match(v):
            view["dataset"] = v
        else:
            problems.append("'dataset' must be a dataset name (lower-case letters, digits, '-', '_'): ignored")
    if (v := _value(params, "x", problems)) is not None:
        if v in X_AXES:
            view["x"] = v
        else:
            problems.append(f"'x' must be one of {', '.join(X_AXES)}: ignored")
    if (v := _value(params, "y", problems)) is not None:
        if v in Y_AXES:
            view["y"] = v
        else:
            problems.append(f"'y' must be one of {', '.join(Y_AXES)}: ignored")
    if (v := _value(params, "log", problems)) is not None:
        if v in ("0", "1"):
            view["log_x"] = v == "1"
        else:
            problems.append("'log' must be 0 or 1: ignored")
    if (v := _value(params, "depth", problems)) is not None:
        parts = v.split(",")
        if all(p in ("1", "2", "3", "4") for p in parts):
            view["depths"] = tuple(sorted({int(p) for p in parts}))
        else:
            problems.append("'depth' must list depths 1 to 4, separated by commas: ignored")
    if (v := _value(params, "quant", problems)) is not None:
        parts = v.split(",")
        if all(p in QUANT_MODES for p in parts):
            view["quants"] = tuple(dict.fromkeys(parts))
        else:
            problems.append(f"'quant' must list modes among {', '.join(QUANT_MODES)}: ignored")
    if (v := _value(params, "budget", problems)) is not None:
        try:
            budget = float(v)
        except ValueError:
            budget = float("nan")
        if math.isfinite(budget) and 0 <= budget <= 1e12:
            view["budget"] = budget
        else:
            problems.append("'budget' must be a non-negative number: ignored")
    if (v := _value(params, "board", problems)) is not None:
        if v in BOARDS:
            view["board"] = v
        else:
            problems.append(f"'board' must be one of {', '.join(BOARDS)}: ignored")
    for name, field in (("ram", "ram_kb"), ("flash", "flash_kb")):
        if (v := _value(params, name, problems)) is not None:
            try:
                kb = float(v)
            except ValueError:
                kb = float("nan")
            if math.isfinite(kb) and 0 < kb <= 1e9:
                view[field] = kb
            else:
                problems.append(f"'{name}' must be a positive number of KB: ignored")
    return ParetoView(**view), problems


def pareto_params(view: ParetoView) -> dict[str, str]:
    """The query parameters of a Pareto view (only what is set)."""
    out = {}
    if view.dataset is not None:
        out["dataset"] = view.dataset
    if view.x is not None:
        out["x"] = view.x
    if view.y is not None:
        out["y"] = view.y
    if view.log_x is not None:
        out["log"] = "1" if view.log_x else "0"
    if view.depths is not None:
        out["depth"] = ",".join(map(str, view.depths))
    if view.quants is not None:
        out["quant"] = ",".join(view.quants)
    if view.budget is not None:
        out["budget"] = f"{view.budget:g}"
    if view.board is not None:
        out["board"] = view.board
    if view.ram_kb is not None:
        out["ram"] = f"{view.ram_kb:.10g}"
    if view.flash_kb is not None:
        out["flash"] = f"{view.flash_kb:.10g}"
    return out


def parse_keys(params: Mapping[str, Any], name: str, limit: int) -> tuple[tuple[str, ...], list[str]]:
    """Variant keys from a comma-separated parameter (well-formed ones only, at most limit)."""
    problems: list[str] = []
    v = _value(params, name, problems)
    if v is None:
        return (), problems
    keys, bad = [], 0
    for part in v.split(","):
        if KEY.match(part):
            if part not in keys:
                keys.append(part)
        else:
            bad += 1
    if bad:
        problems.append(f"{bad} value{'s' if bad > 1 else ''} of '{name}' {'are' if bad > 1 else 'is'} not a variant key "
                        "(16 hexadecimal digits): ignored")
    if len(keys) > limit:
        problems.append(f"'{name}' names {len(keys)} variants; the first {limit} are shown")
    return tuple(keys[:limit]), problems


KINDS = {int: "a whole number", float: "a number", str: "a name"}  # a field's type, in words


def link_defaults(dataset: str | None, model: str = "") -> VariantSpec:
    """What a link's missing fields are: the dataset's default recipe (explorer.models.recipe), as the CLI fills them,
    with the family's knobs at their defaults for another network; the global defaults for an unknown dataset."""
    from explorer.data import datasets
    from explorer.models import recipe

    try:
        base = recipe.for_dataset(dataset).spec() if dataset else VariantSpec()
    except (datasets.DatasetError, SpecError, ValueError):
        base = VariantSpec()
    return base.replace(**{f: getattr(VariantSpec(), f) for f in FAMILY_FIELDS}) if model else base


def parse_spec(params: Mapping[str, Any]) -> tuple[VariantSpec | None, list[str]]:
    """A variant spec from its fields in a link (missing fields take the dataset's defaults), or None."""
    problems: list[str] = []
    defaults = VariantSpec()
    fields: dict[str, Any] = {}
    for name in SPEC_FIELDS:
        v = _value(params, name, problems)
        if v is None:
            continue
        kind = type(getattr(defaults, name))
        if kind is bool:
            if v in ("0", "1"):
                fields[name] = v == "1"
            else:
                problems.append(f"'{name}' must be 0 or 1: ignored")
            continue
        try:
            fields[name] = kind(v) if kind is not int else int(v, 10)
        except ValueError:
            problems.append(f"'{name}' must be {KINDS.get(kind, kind.__name__)}: ignored")
    if not fields:
        return None, problems
    try:
        return link_defaults(fields.get("dataset"), fields.get("model", "")).replace(**fields), problems
    except SpecError as exc:
        return None, [*problems, f"the variant in the link is not valid — {exc}"]


def spec_params(spec: VariantSpec) -> dict[str, str]:
    """A spec's fields that differ from its dataset's defaults, as query parameters (dataset always): the link
    opens exactly this variant, as parse_spec fills the rest from the same defaults."""
    defaults = link_defaults(spec.dataset, spec.model)
    out = {"dataset": spec.dataset}
    for name in SPEC_FIELDS:
        value = getattr(spec, name)
        if value != getattr(defaults, name):
            out[name] = ("1" if value else "0") if isinstance(value, bool) else (
                f"{value:g}" if isinstance(value, float) else str(value))
    return out


def url(base: str | None, params: Mapping[str, str]) -> str:
    """The shareable address of a view (base: the page's address without a query)."""
    from urllib.parse import urlencode

    query = urlencode(params)
    return f"{base or ''}{'?' + query if query else ''}"
