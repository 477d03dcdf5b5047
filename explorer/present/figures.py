"""Plotly figures. Each takes data already computed (the results table, a front mask) and only draws."""

from __future__ import annotations

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from explorer.uncertainty import Interval
from explorer.present.results import METRICS

QUANT_COLORS = {"fp32": "#636efa", "dynamic": "#00cc96", "float16": "#ab63fa", "int8": "#ef553b",
                "qat-int8": "#ffa15a", "int16x8": "#19d3f3"}
DEPTH_SYMBOLS = {1: "circle", 2: "square", 3: "diamond", 4: "triangle-up"}
HOVER = ("<b>%{customdata[1]}</b><br>%{customdata[2]} (95 % interval)<br>p50 %{customdata[3]:.1f} µs "
         "(95 % CI %{customdata[9]:.1f}–%{customdata[10]:.1f}), p99 %{customdata[4]:.1f} µs<br>"
         "size %{customdata[5]:.1f} KB, gzipped %{customdata[6]:.1f} KB<br>"
         "peak RAM %{customdata[13]:.1f} KB (TFLite Micro arena)%{customdata[14]}<br>"
         "non-zero params %{customdata[7]:,}<br>MACs %{customdata[8]:,}<br>latency measured on %{customdata[11]}"
         "%{customdata[12]}<extra></extra>")
HOVER_COLUMNS = ["key", "label", "y_text", "p50_us", "p99_us", "size_kb", "gzip_kb", "nonzero_params", "macs",
                 "p50_lo_us", "p50_hi_us", "latency_host", "noisy_note", "peak_ram_kb", "fit_note"]
FOREIGN = " (other host)"  # trace-name suffix of points whose latency was measured on another machine


def _marker_size(size_kb: pd.Series) -> np.ndarray:
    """Marker diameter grows with the square root of file size, 8 to 22 px."""
    s = np.sqrt(size_kb.to_numpy(float))
    span = s.max() - s.min() if len(s) else 0
    return 8 + 14 * (s - s.min()) / span if span > 0 else np.full(len(s), 12.0)


def _latency_notes(df: pd.DataFrame) -> np.ndarray:
    """Each point's hover note on its latency: noisy, or provisional (a new host's quick first pass)."""
    provisional = df["provisional"].fillna(False).astype(bool) if "provisional" in df else False
    return (np.where(df["noisy"], " — <b>noisy</b> (re-measure)", "")
            + np.where(provisional, " — <b>provisional</b>: a quick first pass, the full protocol follows", ""))


def pareto(df: pd.DataFrame, front: np.ndarray, x: str, y: str = "accuracy", *, log_x: bool = False,
           highlight: str | None = None, host_label: str | None = None, preview: dict | None = None,
           tied: np.ndarray | None = None, fits: np.ndarray | None = None, fit_name: str = "",
           height: int = 520) -> go.Figure:
    """Every variant as a point (colour = quantization, symbol = depth, a star for a network of the user's, size = file
    size) and the front as a step line.

    Points whose latency comes from another host are hollow, in traces of their own; on the p50 axis
    each point carries its 95 % interval as an error bar, and noisy measurements get an orange rim. Every
    accuracy carries its 95 % interval as a vertical error bar (the table's <y>_lo and <y>_hi); a provisional
    latency (a quick first pass) says so on hover; the
    variants statistically tied with the front (tied) get a dark ring. Given a device's budget (fits: per row),
    the variants that do not fit it are faded.
    """
    fig = go.Figure()
    sizes = pd.Series(_marker_size(df["size_kb"]), index=df.index)
    fade = np.zeros(len(df), dtype=bool) if fits is None else ~np.asarray(fits, dtype=bool)
    df = df.assign(noisy_note=_latency_notes(df),
                   fit_note=np.where(fade, f" — <b>does not fit {fit_name}</b>", "") if fit_name else "",
                   fade=fade,
                   y_text=[f"{METRICS[y].name.lower()} {Interval(v, lo, hi, int(n)).text()}" if f"{y}_lo" in df
                           else f"{v:.4g}" for v, lo, hi, n in zip(df[y], df.get(f"{y}_lo", df[y]),
                                                                 df.get(f"{y}_hi", df[y]), df.get("seeds", 1 + 0 * df[y]))])
    has_ci = f"{y}_lo" in df
    here = df["measured_here"].astype(bool)
    named = set()
    # One trace per look (quantization, host, depth, noisy): every marker property is then one value, not
    # one per point, which keeps a chart of thousands of variants quick to build (results_scale).
    source = df["source"].fillna("built-in") if "source" in df else pd.Series("built-in", index=df.index)
    for (quant, is_here, depth, noisy, faded, src), group in df.groupby(
            [df["quant"], here, df["depth"], df["noisy"].astype(bool), df["fade"], source], sort=False):
        error = None
        if x == "p50_us":
            error = dict(type="data", symmetric=False, array=(group["p50_hi_us"] - group["p50_us"]).clip(lower=0),
                         arrayminus=(group["p50_us"] - group["p50_lo_us"]).clip(lower=0), thickness=1, width=3)
        color = QUANT_COLORS.get(quant, "#888")
        own = src != "built-in"  # a network of the user's: its own legend entry and a star
        name = (f"{quant} · {src}" if own else quant) + ("" if is_here else FOREIGN)
        fig.add_trace(go.Scatter(
            x=group[x], y=group[y], mode="markers", name=name, legendgroup=name, showlegend=name not in named,
            opacity=0.2 if faded else 1.0,
            marker=dict(color=color, size=sizes[group.index],
                        symbol=("star" if own else DEPTH_SYMBOLS.get(depth, "circle")) + ("" if is_here else "-open"),
                        line=dict(width=2.5 if noisy else 1,
                                  color="#ff7f0e" if noisy else ("white" if is_here else color))),
            error_x=error, customdata=group[HOVER_COLUMNS].to_numpy(), hovertemplate=HOVER,
            error_y=dict(type="data", symmetric=False, array=(group[f"{y}_hi"] - group[y]).clip(lower=0),
                         arrayminus=(group[y] - group[f"{y}_lo"]).clip(lower=0), thickness=1, width=3,
                         color="rgba(60,60,60,0.45)") if has_ci else None,
        ))
        named.add(name)
    if fade.any():  # a legend entry for the faded points
        fig.add_trace(go.Scatter(x=[None], y=[None], mode="markers", name=f"does not fit {fit_name}".strip(),
                                 marker=dict(color="#888", size=10), opacity=0.2, hoverinfo="skip"))
    on_front = df[front].sort_values(x)
    if len(on_front):
        fig.add_trace(go.Scatter(x=on_front[x], y=on_front[y], mode="lines", name="Pareto front",
                                 line=dict(shape="hv", color="#444", dash="dot"), hoverinfo="skip"))
    if tied is not None and tied.any():
        _ring_tied(fig, df[tied], sizes, x, y)
    _mark_int8_losses(fig, df, x, y)
    if highlight is not None and highlight in set(df["key"]):
        row = df[df["key"] == highlight].iloc[0]
        fig.add_trace(go.Scatter(x=[row[x]], y=[row[y]], mode="markers", name="best under budget",
                                 marker=dict(size=26, color="rgba(0,0,0,0)", line=dict(width=3, color="#2ca02c")),
                                 hoverinfo="skip"))
    if preview is not None and x == "p50_us":
        _preview_band(fig, df, x, preview)
    timed = x.endswith("_us")
    # the axis names this host only for the points it measured: before its first measurement, none
    x_title = METRICS[x].title + (f" — measured on {host_label}" if host_label and timed and here.any() else "") + (
        (" (hollow: another host)" if here.any() else " — measured on another host (hollow)")
        if timed and not here.all() else "")
    fig.update_layout(xaxis_title=x_title, yaxis_title=METRICS[y].title, legend_title="quantization",
                      margin=dict(l=10, r=10, t=40, b=10), height=height, clickmode="event+select")
    if log_x:
        fig.update_xaxes(type="log")
    return fig


def _ring_tied(fig: go.Figure, maybe: pd.DataFrame, sizes: pd.Series, x: str, y: str) -> None:
    """A dark ring around the variants not on the front but not significantly less accurate than the front
    variants at least as fast: they may belong to it (explorer.present.significance.front_status)."""
    fig.add_trace(go.Scatter(x=maybe[x], y=maybe[y], mode="markers", name="tied with the front",
                             marker=dict(size=sizes[maybe.index] + 10, color="#444", line=dict(width=1.5),
                                         symbol="circle-open"),  # an open symbol is drawn in its colour
                             hoverinfo="skip"))


def _preview_band(fig: go.Figure, df: pd.DataFrame, x: str, preview: dict) -> None:
    """An untrained variant's measured latency (preview: p50, lo, hi, label) as a band across the chart."""
    # Accuracy is unknown until it is trained: a vertical band at the measured latency, not a point.
    fig.add_vrect(x0=preview["lo"], x1=preview["hi"], fillcolor="rgba(255,127,14,0.22)", line_width=0,
                  layer="below")
    fig.add_vline(x=preview["p50"], line=dict(color="#ff7f0e", dash="dash", width=2),
                  annotation=dict(text=f"{preview['label']}: latency measured, not trained "
                                       f"(p50 {preview['p50']:.1f} µs)", font=dict(color="#c45a00")),
                  # the label runs toward the middle of the data: centred on a band near an edge, it
                  # stretched the axis past it (to -20 µs)
                  annotation_position="top right" if df.empty or preview["p50"] <= df[x].median()
                  else "top left")
    if df.empty:  # nothing else on the chart: plotly's autorange ignores shapes and drew empty axes
        margin = max(preview["hi"] - preview["lo"], 0.1 * preview["p50"])
        fig.update_xaxes(range=[preview["lo"] - margin, preview["hi"] + 4 * margin])
        fig.update_yaxes(range=[0, 1])


def _mark_int8_losses(fig: go.Figure, df: pd.DataFrame, x: str, y: str) -> None:
    """A red cross over each int8 point that loses a real amount of accuracy against its float model (at least
    half a point on the validation subset, McNemar's p < 0.05: QuantError.real_drop)."""
    lost = df[df["int8_lost_points"].notna()] if "int8_lost_points" in df else df.iloc[:0]
    if len(lost):
        fig.add_trace(go.Scatter(
            x=lost[x], y=lost[y], mode="markers", name="int8 loses accuracy",
            marker=dict(size=16, symbol="x-thin-open", color="#d62728", line=dict(width=2.5, color="#d62728")),
            customdata=lost[["label", "int8_lost_points"]].to_numpy(),
            hovertemplate="<b>%{customdata[0]}</b><br>int8 loses %{customdata[1]:.1f} points against its float "
                          "model on the validation images (McNemar p < 0.05): Details says which layer<extra></extra>"))


def placeholder(height: int = 520) -> go.Figure:
    """An empty chart of the Pareto chart's size, shown while the real one is computed."""
    fig = go.Figure()
    fig.update_layout(height=height, margin=dict(l=10, r=10, t=30, b=10), xaxis_visible=False, yaxis_visible=False)
    return fig


def per_class(labels: list[str], class_names: list[str], accuracies: list[list[float]]) -> go.Figure:
    """Grouped bars of per-class accuracy, one group per class, one bar per variant."""
    fig = go.Figure([go.Bar(name=label, x=class_names, y=acc) for label, acc in zip(labels, accuracies)])
    fig.update_layout(barmode="group", yaxis_title="accuracy", yaxis_range=[0, 1], height=380,
                      margin=dict(l=10, r=10, t=30, b=10))
    return fig


def latency_histogram(labels: list[str], samples_us: list[list[float]]) -> go.Figure:
    """Overlaid batch-1 latency distributions, clipped at the 99.5th percentile so tails don't hide the body."""
    fig = go.Figure()
    for label, samples in zip(labels, samples_us):
        arr = np.asarray(samples, dtype=float)
        if arr.size:
            fig.add_trace(go.Histogram(x=arr[arr <= np.percentile(arr, 99.5)], name=label, opacity=0.6, nbinsx=60))
    fig.update_layout(barmode="overlay", xaxis_title="latency (µs)", yaxis_title="runs", height=340,
                      margin=dict(l=10, r=10, t=30, b=10))
    return fig


def confusion(cm: list[list[int]], class_names: list[str]) -> go.Figure:
    fig = go.Figure(go.Heatmap(z=cm, x=class_names, y=class_names, colorscale="Blues", text=cm,
                               texttemplate="%{text}", hovertemplate="true %{y}<br>predicted %{x}<br>%{z}<extra></extra>"))
    fig.update_layout(xaxis_title="predicted", yaxis_title="true", yaxis_autorange="reversed", height=480,
                      margin=dict(l=10, r=10, t=30, b=10))
    return fig


def op_times(ops: list[dict]) -> go.Figure:
    """Horizontal bars, one per op in execution order (top first), coloured by who runs it."""
    labels = [f"{o['index']}: {o['name']} → {'×'.join(map(str, o['output_shape'][1:]))}" for o in ops]
    colours = ["#1f77b4" if o["delegated"] else "#d62728" for o in ops]
    fig = go.Figure(go.Bar(x=[o["us"] for o in ops], y=labels, orientation="h", marker_color=colours,
                           hovertemplate="%{y}<br>%{x:.2f} µs<extra></extra>"))
    fig.update_layout(xaxis_title="µs of one inference (blue: XNNPACK, red: built-in kernel)",
                      yaxis_autorange="reversed", height=60 + 28 * len(ops), margin=dict(l=10, r=10, t=10, b=10))
    return fig


def quant_error(q) -> go.Figure:
    """Each op's int8 error (an explorer.record.QuantError), in the op profile's order: bars of RMSE in quantization
    steps, coloured by the points keeping its layer in float recovered where that was measured."""
    ops = list(q.layers)
    labels = [f"{e.index if e.index is not None else '?'}: {e.op} {e.layer}".rstrip() for e in ops]
    gains = [e.gain for e in ops]
    measured = any(g is not None for g in gains)
    fig = go.Figure(go.Bar(
        x=[e.rmse for e in ops], y=labels, orientation="h",
        marker=dict(color=[max(g or 0.0, 0.0) for g in gains], colorscale="Reds", cmin=0,
                    cmax=max([0.5, *(g for g in gains if g is not None)]),
                    colorbar=dict(title="points<br>recovered") if measured else None, showscale=measured),
        customdata=[["not tried" if g is None else f"{g:+.1f} points in float"] for g in gains],
        hovertemplate="%{y}<br>RMSE %{x:.3f} steps; %{customdata[0]}<extra></extra>"))
    fig.update_layout(xaxis_title="int8 output's RMSE against float, in quantization steps", yaxis_autorange="reversed",
                      height=60 + 28 * len(ops), margin=dict(l=10, r=10, t=10, b=10))
    return fig


def quant_errors_side_by_side(named: list[tuple[str, object]]) -> go.Figure:
    """Several variants' per-op int8 error (explorer.record.QuantError), one bar group per layer they share a
    name for, in the first variant's op order."""
    order = list(dict.fromkeys(e.layer or f"{e.index}: {e.op}" for _, q in named for e in q.layers))
    fig = go.Figure()
    for label, q in named:
        by = {}
        for e in q.layers:
            name = e.layer or f"{e.index}: {e.op}"
            by[name] = max(by.get(name, 0.0), e.rmse)
        fig.add_trace(go.Bar(x=[by.get(n) for n in order], y=order, orientation="h", name=label,
                             hovertemplate="%{y}: RMSE %{x:.3f} steps<extra>" + label + "</extra>"))
    fig.update_layout(barmode="group", xaxis_title="int8 output's RMSE against float, in quantization steps",
                      yaxis_autorange="reversed", height=80 + 22 * len(order) * len(named),
                      margin=dict(l=10, r=10, t=10, b=10), legend=dict(orientation="h"))
    return fig


def memory_profile(plan) -> go.Figure:
    """The tensor arena op by op (an explorer.record.MemoryPlan): bars = activations alive while the op runs,
    the line = how far into the arena they reach; the peak is marked."""
    steps = plan.steps
    labels = [f"{i + 1}: {s.op}" for i, s in enumerate(steps)]
    found = plan.peak_step
    colours = ["#d62728" if found and i == found[0] else "#1f77b4" for i in range(len(steps))]
    fig = go.Figure(go.Bar(x=labels, y=[s.live_bytes / 1000 for s in steps], marker_color=colours, name="alive",
                           customdata=[[s.largest, "×".join(map(str, s.largest_shape)), s.largest_dtype,
                                        s.largest_bytes / 1000] for s in steps],
                           hovertemplate="%{x}<br>%{y:.1f} KB alive; largest %{customdata[0]}, "
                                         "%{customdata[1]} %{customdata[2]} = %{customdata[3]:.1f} KB<extra></extra>"))
    fig.add_trace(go.Scatter(x=labels, y=[s.arena_bytes / 1000 for s in steps], mode="lines+markers",
                             name="arena reached", line=dict(color="#444", dash="dot"), hoverinfo="skip"))
    fig.update_layout(yaxis_title=f"KB of activations (the arena's head: {plan.head_bytes / 1000:,.1f} KB)",
                      height=340, margin=dict(l=10, r=10, t=30, b=10), legend=dict(orientation="h"))
    return fig


def training_curves(history: dict[str, dict[str, list[float]]]) -> go.Figure:
    """Training and validation accuracy per epoch, stage after stage (base, then fine-tunes)."""
    fig = go.Figure()
    offset = 0
    for stage, h in history.items():
        epochs = list(range(offset + 1, offset + len(h.get("accuracy", [])) + 1))
        for metric, dash in (("accuracy", "solid"), ("val_accuracy", "dot")):
            if h.get(metric):
                fig.add_trace(go.Scatter(x=epochs, y=h[metric], mode="lines+markers", line_dash=dash,
                                         name=f"{stage}: {'validation' if metric.startswith('val') else 'training'}"))
        offset += len(epochs)
    fig.update_layout(xaxis_title="epoch", yaxis_title="accuracy", height=340, margin=dict(l=10, r=10, t=30, b=10))
    return fig


def search_trials(trials: list, front: list) -> go.Figure:
    """A study's trials: validation accuracy against p50, infeasible ones grey, the front as a step line."""
    fig = go.Figure()
    for feasible, name, colour in ((True, "feasible", "#1f77b4"), (False, "infeasible", "#b0b0b0")):
        shown = [t for t in trials if t.feasible == feasible]
        if shown:
            fig.add_trace(go.Scatter(x=[t.p50_us for t in shown], y=[t.val_accuracy for t in shown], mode="markers",
                                     name=name, marker=dict(color=colour, size=9), text=[t.label for t in shown],
                                     hovertemplate="%{text}<br>%{x:.1f} µs, validation %{y:.4f}<extra></extra>"))
    if front:
        fig.add_trace(go.Scatter(x=[t.p50_us for t in front], y=[t.val_accuracy for t in front], mode="lines",
                                 line=dict(shape="hv", dash="dot", color="black"), name="front"))
    fig.update_layout(xaxis_title="Latency p50, batch 1 (µs), this host", yaxis_title="Validation accuracy",
                      height=420, margin=dict(l=10, r=10, t=30, b=10))
    return fig
