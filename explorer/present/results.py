"""The results table: one row per measured variant, built from cache metadata (pure pandas).

Latency columns come from each record's latency: this host's, or (until this host has measured it)
another host's, flagged by measured_here = False so it is never passed off as this one's.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Mapping

import numpy as np
import pandas as pd

from explorer.uncertainty import INTERVAL_COLUMNS, Interval, record_interval_columns, replicate_interval
from explorer.present.pareto import pareto_mask
from explorer.record import VariantRecord
from explorer.spec import VariantSpec

SPEC_COLUMNS = [f.name for f in dataclasses.fields(VariantSpec)]  # every field, in the spec's order
LATENCY_COLUMNS = ["p50_us", "p90_us", "p99_us", "mean_us", "throughput_ips", "threads"]
COLUMNS = (["key", "label", *SPEC_COLUMNS, "source", "accuracy", "balanced_accuracy", "macro_f1", *INTERVAL_COLUMNS, "test_images",
            *LATENCY_COLUMNS, "p50_lo_us", "p50_hi_us", "noisy", "provisional", "measured_here", "size_kb", "gzip_kb",
            "peak_ram_kb", "flash_kb", "micro_blockers", "params", "nonzero_params", "sparsity_real", "macs",
            "latency_host", "tensorflow", "built_at", "has_model", "int8_lost_points"])


@dataclass(frozen=True)
class Metric:
    name: str
    unit: str
    lower_is_better: bool

    @property
    def title(self) -> str:
        return f"{self.name} ({self.unit})" if self.unit else self.name


# Metrics a user can put on the Pareto chart's axes (x: lower is better; y: the quality ones).
METRICS = {
    "p50_us": Metric("Latency p50, batch 1", "µs", True),
    "p99_us": Metric("Latency p99, batch 1", "µs", True),
    "gzip_kb": Metric("Gzipped size", "KB", True),
    "size_kb": Metric("Size on disk", "KB", True),
    "peak_ram_kb": Metric("Peak RAM (TFLite Micro arena)", "KB", True),
    "flash_kb": Metric("Flash", "KB", True),
    "nonzero_params": Metric("Non-zero parameters", "", True),
    "macs": Metric("Multiply-accumulates per image", "", True),
    "accuracy": Metric("Test accuracy", "", False),
    "balanced_accuracy": Metric("Balanced accuracy (mean class recall)", "", False),
    "macro_f1": Metric("Macro F1", "", False),
    "throughput_ips": Metric("Throughput", "images/s", False),
}


Y_AXES = ("accuracy", "balanced_accuracy", "macro_f1")


NO_LATENCY = {c: float("nan") for c in (*LATENCY_COLUMNS, "p50_lo_us", "p50_hi_us")} | {
    "noisy": False, "provisional": False, "latency_host": None, "latency_host_id": None}


def row_of(variant: Mapping[str, Any], latency: Mapping[str, Any] | None, host_id: str | None = None) -> dict:
    """One row from the summaries (VariantRecord.summary, Latency.summary, as the results index keeps them)."""
    out = {**variant, **(latency or NO_LATENCY)}
    out["measured_here"] = latency is not None and (host_id is None or latency["latency_host_id"] == host_id)
    return out


def provisional_here(df: pd.DataFrame) -> pd.Series:
    """Per row: its latency is this host's quick first pass (provisional), not yet the full protocol's."""
    return df["measured_here"].astype(bool) & df["provisional"].fillna(False).astype(bool)


def row(variant: VariantRecord, host_id: str | None = None) -> dict:
    """A full record's row (the pages' fallback when the results index cannot be read: the same figures)."""
    lat = variant.latency
    return row_of({**variant.summary(), **record_interval_columns(variant)}, lat.summary() if lat else None, host_id)


def table_of(rows: list[dict]) -> pd.DataFrame:
    """Rows sorted by dataset, then accuracy (best first)."""
    df = pd.DataFrame(rows, columns=COLUMNS)  # (ties in accuracy by key: the same order whatever read them)
    return df.sort_values(["dataset", "accuracy", "key"], ascending=[True, False, True], ignore_index=True)


def first_measured(df: pd.DataFrame) -> str | None:
    """The key a page opens on: the first row with a latency (a seed kept without its model has none, and the
    most accurate row is often one), or the first row when none has."""
    measured = df.loc[df["p50_us"].notna(), "key"]
    return measured.iloc[0] if len(measured) else (df["key"].iloc[0] if len(df) else None)


def compare_defaults(df: pd.DataFrame, dataset: str | None = None) -> list[str]:
    """The keys Compare opens on, from one dataset (the one the Pareto page shows, else the one with the most
    variants): its most accurate variant with a latency against its fastest (a what-if at a glance); its first
    two rows when there is no such pair."""
    if df.empty:
        return []
    if dataset not in set(df["dataset"]):
        dataset = df["dataset"].value_counts().sort_index().idxmax()
    part = df[df["dataset"] == dataset]
    best = first_measured(part)
    same = part[part["p50_us"].notna()]
    fastest = same.loc[same["p50_us"].idxmin(), "key"] if len(same) else best
    return [best, fastest] if fastest != best else [best, *[k for k in part["key"] if k != best][:1]]


def table(variants: list[VariantRecord], host_id: str | None = None) -> pd.DataFrame:
    """The table of full records; a latency counts as measured here when its host is host_id."""
    return table_of([row(v, host_id) for v in variants])


def front(df: pd.DataFrame, x: str, y: str = "accuracy") -> np.ndarray:
    """The non-dominated rows of a results table on two metrics, each in its own direction (METRICS)."""
    xs = df[x].to_numpy(float) * (1 if METRICS[x].lower_is_better else -1)
    ys = df[y].to_numpy(float) * (-1 if METRICS[y].lower_is_better else 1)
    return pareto_mask(xs, ys)


def compare(df: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
    """Side by side, one row per variant (by label, in the order of keys): figures and ratios to the first."""
    rows = df.set_index("key").loc[keys]
    ref = rows.iloc[0]
    return pd.DataFrame({
        "accuracy": rows["accuracy"], "delta_pts": (rows["accuracy"] - ref["accuracy"]) * 100,
        "balanced_accuracy": rows["balanced_accuracy"], "macro_f1": rows["macro_f1"],
        **{c: rows[c] for c in INTERVAL_COLUMNS},
        "p50_us": rows["p50_us"], "speedup": ref["p50_us"] / rows["p50_us"], "p99_us": rows["p99_us"],
        "size_kb": rows["size_kb"], "size_ratio": rows["size_kb"] / ref["size_kb"], "gzip_kb": rows["gzip_kb"],
        "peak_ram_kb": rows["peak_ram_kb"], "ram_ratio": rows["peak_ram_kb"] / ref["peak_ram_kb"],
        "flash_kb": rows["flash_kb"],
        "nonzero_params": rows["nonzero_params"], "macs": rows["macs"], "measured_here": rows["measured_here"],
    }).set_index(rows["label"])


def interval(r: Mapping[str, Any], metric: str = "accuracy") -> Interval:
    """A table row's accuracy (or balanced accuracy, macro F1) with its 95 % interval."""
    return Interval(float(r[metric]), float(r[f"{metric}_lo"]), float(r[f"{metric}_hi"]), int(r.get("seeds", 1) or 1))


def intervals_of(v: VariantRecord) -> dict[str, Interval]:
    """A whole record's accuracy, balanced accuracy and macro F1 with their 95 % intervals (Y_AXES)."""
    cols = record_interval_columns(v)
    return {m: Interval(getattr(v, m), cols[f"{m}_lo"], cols[f"{m}_hi"]) for m in Y_AXES}


def texts(df: pd.DataFrame, metric: str = "accuracy") -> list[str]:
    """Each row's metric with its interval, at the precision the interval supports ('0.896 ± 0.006')."""
    return [interval(r, metric).text() for r in df.to_dict("records")]


REPLICATE_FIELDS = [c for c in SPEC_COLUMNS if c != "seed"]  # what makes two builds replicates of one variant


def replicate_groups(df: pd.DataFrame) -> pd.Series:
    """A label per row naming its replicate group: rows that differ only in their seed share it."""
    return df[REPLICATE_FIELDS].astype(str).agg("|".join, axis=1)


def group_seeds(df: pd.DataFrame) -> pd.DataFrame:
    """One row per variant whatever its number of seeds: replicates become one row with the mean of each
    accuracy and the interval a new seed's accuracy falls in (seed spread and test sampling combined,
    explorer.uncertainty.replicate_interval), the mean p50 and the widest of their latency intervals;
    `seeds` says how many, `replicates` lists their keys (the first one's key and fields stand for the group)."""
    if df.empty:
        return df.assign(seeds=pd.Series(dtype=int), replicates=pd.Series(dtype=str))
    group = replicate_groups(df)
    sizes = group.map(group.value_counts())
    out = [df[sizes == 1].assign(seeds=1, replicates=df.loc[sizes == 1, "key"])]
    merged = []
    for _, g in df[sizes > 1].groupby(group[sizes > 1], sort=False):
        g = g.sort_values("seed")
        row = g.iloc[0].to_dict()
        for m in Y_AXES:
            test_half = float(((g[f"{m}_hi"] - g[f"{m}_lo"]) / 2).mean())
            iv = replicate_interval(g[m].to_numpy(float), test_half)
            row.update({m: iv.value, f"{m}_lo": iv.lo, f"{m}_hi": iv.hi})
        timed = g.dropna(subset=["p50_us"])
        if len(timed):
            row.update(p50_us=float(timed["p50_us"].mean()), p50_lo_us=float(timed["p50_lo_us"].min()),
                       p50_hi_us=float(timed["p50_hi_us"].max()), noisy=bool(timed["noisy"].any()),
                       measured_here=bool(timed["measured_here"].all()))
        row.update(peak_ram_kb=float(g["peak_ram_kb"].max()))  # one graph: the seed with a model has the plan
        row.update(seeds=len(g), replicates=",".join(g["key"]), label=f"{row['label']} ×{len(g)} seeds")
        merged.append(row)
    if merged:
        out.append(pd.DataFrame(merged))
    return pd.concat(out, ignore_index=True).sort_values(["dataset", "accuracy", "key"], ascending=[True, False, True],
                                                        ignore_index=True)
