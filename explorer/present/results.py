"""The results table: one row per measured variant, built from cache metadata (pure pandas).

Latency columns come from each record's latency: this host's, or (until this host has measured it)
another host's, flagged by measured_here = False so it is never passed off as this one's.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np
import pandas as pd

from explorer.present.pareto import pareto_mask
from explorer.record import VariantRecord
from explorer.spec import VariantSpec

SPEC_COLUMNS = [f.name for f in dataclasses.fields(VariantSpec)]  # every field, in the spec's order
LATENCY_COLUMNS = ["p50_us", "p90_us", "p99_us", "mean_us", "throughput_ips", "threads"]
COLUMNS = (["key", "label", *SPEC_COLUMNS, "accuracy", "balanced_accuracy", "macro_f1", *LATENCY_COLUMNS, "p50_lo_us", "p50_hi_us", "noisy",
            "measured_here", "size_kb", "gzip_kb", "params", "nonzero_params", "sparsity_real", "macs",
            "latency_host", "tensorflow", "built_at"])


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
    "nonzero_params": Metric("Non-zero parameters", "", True),
    "macs": Metric("Multiply-accumulates per image", "", True),
    "accuracy": Metric("Test accuracy", "", False),
    "balanced_accuracy": Metric("Balanced accuracy (mean class recall)", "", False),
    "macro_f1": Metric("Macro F1", "", False),
    "throughput_ips": Metric("Throughput", "images/s", False),
}


Y_AXES = ("accuracy", "balanced_accuracy", "macro_f1")


def row(variant: VariantRecord, host_id: str | None = None) -> dict:
    out = {"key": variant.key, "label": variant.label, **dataclasses.asdict(variant.spec)}
    out.update(
        accuracy=variant.accuracy, balanced_accuracy=variant.balanced_accuracy, macro_f1=variant.macro_f1,
        size_kb=variant.size_kb, gzip_kb=variant.gzip_kb, params=variant.params,
        nonzero_params=variant.nonzero_params, sparsity_real=variant.real_sparsity, macs=variant.macs,
        tensorflow=variant.versions.get("tensorflow"), built_at=variant.built_at,
    )
    lat = variant.latency
    out.update({c: getattr(lat, c) if lat else float("nan") for c in LATENCY_COLUMNS})
    lo, hi = (lat.p50_ci_us if lat and lat.p50_ci_us else (float("nan"), float("nan")))
    out.update(p50_lo_us=lo, p50_hi_us=hi, noisy=bool(lat and lat.noisy))
    out["latency_host"] = lat.host_label if lat else None
    out["measured_here"] = lat is not None and (host_id is None or lat.on(host_id))
    return out


def table(variants: list[VariantRecord], host_id: str | None = None) -> pd.DataFrame:
    """Rows sorted by dataset, then accuracy (best first); a latency counts as measured here when its
    host is host_id."""
    df = pd.DataFrame([row(v, host_id) for v in variants], columns=COLUMNS)
    return df.sort_values(["dataset", "accuracy"], ascending=[True, False], ignore_index=True)


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
        "p50_us": rows["p50_us"], "speedup": ref["p50_us"] / rows["p50_us"], "p99_us": rows["p99_us"],
        "size_kb": rows["size_kb"], "size_ratio": rows["size_kb"] / ref["size_kb"], "gzip_kb": rows["gzip_kb"],
        "nonzero_params": rows["nonzero_params"], "macs": rows["macs"], "measured_here": rows["measured_here"],
    }).set_index(rows["label"])
