"""A self-contained HTML report of a Pareto view: opens anywhere, offline, without the app.

One file: the interactive chart (plotly.js embedded, no network), the budget answer, the front as a
table, per-class accuracy of the front's variants, and how and where every latency was measured.
"""

from __future__ import annotations

import html
import re
from datetime import datetime, timezone
from typing import Callable

import numpy as np
import pandas as pd

from explorer.present import figures
from explorer.measure import host
from explorer.present.pareto import BudgetAnswer
from explorer.record import VariantRecord
from explorer.present.results import METRICS, texts

_STYLE = """
body { font-family: system-ui, sans-serif; margin: 2rem auto; max-width: 1200px; color: #222; }
table { border-collapse: collapse; margin: 0.5rem 0 1.5rem; font-size: 0.9rem; }
th, td { border-bottom: 1px solid #ddd; padding: 0.25rem 0.6rem; text-align: right; }
th:first-child, td:first-child { text-align: left; }
.answer { background: #eef8f0; border-left: 4px solid #2ca02c; padding: 0.6rem 1rem; }
.meta { color: #666; font-size: 0.9rem; }
"""


def _md(text: str) -> str:
    """The one bit of markdown the budget answer uses (**bold**), escaped."""
    return re.sub(r"\*\*(.+?)\*\*", r"<b>\1</b>", html.escape(text))


def _table(frame: pd.DataFrame) -> str:
    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in frame.columns)
    rows = "".join("<tr>" + "".join(f"<td>{html.escape(str(v))}</td>" for v in row) + "</tr>"
                   for row in frame.itertuples(index=False))
    return f"<table><thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table>"


def _ci(lo: float, hi: float) -> str:
    return "" if np.isnan(lo) else f"{lo:.1f}–{hi:.1f}"


def render(df: pd.DataFrame, front: np.ndarray, x: str, answer: BudgetAnswer, variant: Callable[[str], VariantRecord],
           *, log_x: bool = False, y: str = "accuracy", fit=None) -> str:
    """The report of the variants in df (already filtered), with their front mask and budget answer;
    variant(key) gives a whole record (per-class accuracy, how each latency was measured); a fit (a device's
    memory budget, explorer.present.pareto.Fit) fades what does not fit it, as the page does."""
    here = host.current()
    fitting = fit.mask(df) if fit is not None and fit.active else None
    fig = figures.pareto(df, front, x, y, log_x=log_x, highlight=answer.winner, host_label=here.label,
                         fits=fitting, fit_name=(fit.board or "the limits") if fitting is not None else "")
    chart = fig.to_html(full_html=False, include_plotlyjs=True, config={"displaylogo": False})
    on_front = df[front].sort_values(x)
    front_table = pd.DataFrame({
        "variant": on_front["label"], "accuracy (95 % interval)": texts(on_front, "accuracy"),
        "balanced accuracy": texts(on_front, "balanced_accuracy"), "macro F1": texts(on_front, "macro_f1"),
        "p50 µs": on_front["p50_us"].map("{:.1f}".format),
        "p50 95 % interval": [_ci(lo, hi) for lo, hi in zip(on_front["p50_lo_us"], on_front["p50_hi_us"])],
        METRICS[x].title: on_front[x].map("{:,.1f}".format) if x != "p50_us" else on_front[x].map("{:.1f}".format),
        "size KB": on_front["size_kb"].map("{:,.1f}".format), "gzipped KB": on_front["gzip_kb"].map("{:,.1f}".format),
        "peak RAM KB": on_front["peak_ram_kb"].map("{:,.1f}".format), "flash KB": on_front["flash_kb"].map("{:,.1f}".format),
        "non-zero params": on_front["nonzero_params"].map("{:,}".format),
        "latency measured on": on_front["latency_host"].fillna("—"),
    })
    per_class = ""
    if len(on_front):
        shown = [variant(k) for k in on_front["key"]]
        per_class = _table(pd.DataFrame({"class": shown[0].class_names, **{
            v.label: [("—" if a is None else f"{a:.3f}") for a in v.per_class_accuracy] for v in shown}}))
    provenance = []
    for key in df["key"]:
        v = variant(key)
        lat = v.latency
        if lat:
            provenance.append({
                "variant": v.label, "host": lat.host_label, "threads": lat.threads, "runs": lat.runs,
                "p50 µs": f"{lat.p50_us:.2f}", "95 % interval": _ci(*(lat.p50_ci_us or (np.nan, np.nan))),
                "noisy": "yes" if lat.noisy else "", "measured": lat.measured_at,
                "LiteRT": lat.versions.get("ai-edge-litert", "")})
    dataset = html.escape(str(df["dataset"].iloc[0])) if len(df) else ""
    now = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>CNN speed–accuracy report — {dataset}</title>
<style>{_STYLE}</style></head><body>
<h1>CNN speed–accuracy report — {dataset}</h1>
<p class="meta">{len(df)} variants, {int(front.sum())} on the front; generated {now} on {html.escape(here.label)}.
Latency: batch 1, LiteRT with XNNPACK, 1 thread, in blocks each timed in a fresh process; intervals are 95 % for p50.
Accuracy: the converted TFLite model on the test split.</p>
<p class="answer">{_md(answer.text)}</p>
{chart}
<h2>The front</h2>{_table(front_table)}
<h2>Per-class accuracy of the front's variants</h2>{per_class}
<h2>How and where each latency was measured</h2>{_table(pd.DataFrame(provenance)) if provenance else "<p>None measured.</p>"}
<p class="meta">Made by the CNN speed–accuracy explorer (<code>python -m explorer report</code>).</p>
</body></html>
"""
