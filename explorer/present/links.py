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
from typing import Any, Callable, Mapping

from explorer.measure.boards import BOARDS
from explorer.present.results import METRICS, Y_AXES
from explorer.spec import BOUNDS, FAMILY_FIELDS, QUANT_MODES, SpecError, VariantSpec

MAX_VALUE = 200  # characters in one value
MAX_KEYS = 4  # variants in a Compare link
KEY = re.compile(r"^[0-9a-f]{16}$")
DATASET = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")
X_AXES = tuple(m for m, metric in METRICS.items() if metric.lower_is_better)
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


def _one_of(choices) -> Callable[[str], str]:
    def parse(v: str) -> str:
        if v not in choices:
            raise ValueError(v)
        return v
    return parse


def _listed(choices, convert: Callable = str, ordered: bool = False) -> Callable[[str], tuple]:
    """A comma-separated list of choices, each once (sorted, or in the link's order)."""
    def parse(v: str) -> tuple:
        parts = v.split(",")
        if not all(p in choices for p in parts):
            raise ValueError(v)
        once = [convert(p) for p in dict.fromkeys(parts)]
        return tuple(sorted(once) if ordered else once)
    return parse


def _number(positive: bool) -> Callable[[str], float]:
    """A finite number, at least 0 (or above 0), and not absurdly large."""
    def parse(v: str) -> float:
        x = float(v)
        if not (math.isfinite(x) and (x > 0 if positive else x >= 0) and x <= (1e9 if positive else 1e12)):
            raise ValueError(v)
        return x
    return parse


def _flag(v: str) -> bool:
    if v not in ("0", "1"):
        raise ValueError(v)
    return v == "1"


def _dataset(v: str) -> str:
    if not DATASET.match(v):
        raise ValueError(v)
    return v


_DEPTHS = tuple(str(d) for d in range(BOUNDS["depth"][0], BOUNDS["depth"][1] + 1))
# A Pareto link's parameters: the view field each sets, how it is read, and what it must be (said when it is not).
PARETO_RULES: dict[str, tuple[str, Callable[[str], Any], str]] = {
    "dataset": ("dataset", _dataset, "a dataset name (lower-case letters, digits, '-', '_')"),
    "x": ("x", _one_of(X_AXES), f"one of {', '.join(X_AXES)}"),
    "y": ("y", _one_of(Y_AXES), f"one of {', '.join(Y_AXES)}"),
    "log": ("log_x", _flag, "0 or 1"),
    "depth": ("depths", _listed(_DEPTHS, int, ordered=True),
              f"list depths {_DEPTHS[0]} to {_DEPTHS[-1]}, separated by commas"),
    "quant": ("quants", _listed(QUANT_MODES), f"list modes among {', '.join(QUANT_MODES)}"),
    "budget": ("budget", _number(positive=False), "a non-negative number"),
    "board": ("board", _one_of(BOARDS), f"one of {', '.join(BOARDS)}"),
    "ram": ("ram_kb", _number(positive=True), "a positive number of KB"),
    "flash": ("flash_kb", _number(positive=True), "a positive number of KB"),
}

PARETO_PARAMS = tuple(PARETO_RULES)


def parse_pareto(params: Mapping[str, Any]) -> tuple[ParetoView, list[str]]:
    problems: list[str] = []
    unknown(params, PARETO_PARAMS, problems)
    view: dict[str, Any] = {}
    for name, (field, parse, what) in PARETO_RULES.items():
        if (v := _value(params, name, problems)) is not None:
            try:
                view[field] = parse(v)
            except ValueError:
                problems.append(f"'{name}' must be {what}: ignored")
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
