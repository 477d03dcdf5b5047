"""The results table: one row per measured variant, built from cache metadata (pure pandas).

Latency columns come from the record given for each variant: this host's, or (until this host has
measured it) another host's, flagged by measured_here = False so it is never passed off as this one's.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import pandas as pd

from explorer.spec import VariantSpec

SPEC_COLUMNS = [f.name for f in dataclasses.fields(VariantSpec)]  # every field, in the spec's order
LATENCY_COLUMNS = ["p50_us", "p90_us", "p99_us", "mean_us", "throughput_ips", "threads"]
COLUMNS = (["key", "label", *SPEC_COLUMNS, "accuracy", *LATENCY_COLUMNS, "p50_lo_us", "p50_hi_us", "noisy",
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


# Metrics a user can put on the Pareto chart's axes.
METRICS = {
    "p50_us": Metric("Latency p50, batch 1", "µs", True),
    "p99_us": Metric("Latency p99, batch 1", "µs", True),
    "gzip_kb": Metric("Gzipped size", "KB", True),
    "size_kb": Metric("Size on disk", "KB", True),
    "nonzero_params": Metric("Non-zero parameters", "", True),
    "macs": Metric("Multiply-accumulates per image", "", True),
    "accuracy": Metric("Test accuracy", "", False),
    "throughput_ips": Metric("Throughput", "images/s", False),
}


def with_current_label(meta: dict) -> dict:
    """The meta with its label made from its spec by today's rule (stored labels may predate it)."""
    return {**meta, "label": VariantSpec.from_dict(meta["spec"]).label()}


def row(meta: dict, latency: dict | None, host_id: str | None = None) -> dict:
    m = meta["metrics"]
    out = {"key": meta["key"], "label": VariantSpec.from_dict(meta["spec"]).label()}
    out.update({c: meta["spec"].get(c) for c in SPEC_COLUMNS})
    out.update(
        accuracy=m["accuracy"], size_kb=m["size_bytes"] / 1000, gzip_kb=m["gzip_bytes"] / 1000,
        params=m["params"], nonzero_params=m["nonzero_params"],
        sparsity_real=1 - m["nonzero_params"] / m["params"], macs=m["macs"],
        tensorflow=meta["build"]["versions"].get("tensorflow"), built_at=meta["build"]["built_at"],
    )
    out.update({c: (latency or {}).get(c, float("nan")) for c in LATENCY_COLUMNS})
    lo, hi = (latency or {}).get("p50_ci_us") or (float("nan"), float("nan"))
    out.update(p50_lo_us=lo, p50_hi_us=hi, noisy=bool((latency or {}).get("noisy", False)))
    out["latency_host"] = latency["host"]["label"] if latency else None
    out["measured_here"] = bool(latency) and (host_id is None or latency["host"]["id"] == host_id)
    return out


def table(metas: list[dict], latencies: dict[str, dict | None], host_id: str | None = None) -> pd.DataFrame:
    """Rows sorted by dataset, then accuracy (best first); latencies maps key -> a latency record,
    which counts as measured here when its host is host_id."""
    df = pd.DataFrame([row(m, latencies.get(m["key"]), host_id) for m in metas], columns=COLUMNS)
    return df.sort_values(["dataset", "accuracy"], ascending=[True, False], ignore_index=True)
