"""Pareto: every measured variant, latency (or size) against accuracy, with the non-dominated front."""

import streamlit as st

from explorer import figures, host, pareto, results
from pages import common

st.title("Speed–accuracy Pareto front")
# The chart's slot comes first, holding an empty chart of its size: the browser starts loading plotly.js
# (the slowest part of a first visit) while the results are read, and nothing jumps when it is filled.
chart_slot = st.empty()
chart_slot.plotly_chart(figures.placeholder(), key="pareto_placeholder")
res = common.load_results()
common.measuring_status(res, common.store().signature())
common.show_problems(res)
df = res.table
if df.empty:
    chart_slot.empty()
    st.info("No variants yet. Build one on the **Explore** page, or run `python -m explorer sweep --preset default`.")
    st.stop()

with st.sidebar:
    st.header("Chart")
    x_options = [m for m, metric in results.METRICS.items() if metric.lower_is_better]
    x = st.selectbox("x axis (lower is better)", x_options, format_func=lambda m: results.METRICS[m].title, key="x")
    log_x = st.toggle("log scale", value=x in ("nonzero_params", "macs"), key="log_x")
    st.header("Filters")
    dataset = st.selectbox("dataset", sorted(df["dataset"].unique()), key="dataset")
    df = df[df["dataset"] == dataset]
    depths = st.multiselect("depth", sorted(df["depth"].unique()), default=sorted(df["depth"].unique()), key="depths")
    quants = st.multiselect("quantization", list(df["quant"].unique()), default=list(df["quant"].unique()), key="quants")
    df = df[df["depth"].isin(depths) & df["quant"].isin(quants)].reset_index(drop=True)
    st.header("Measurements")
    if st.button("Re-measure all on this host", help="Time every variant again in the worker, one at a time, "
                 "while nothing trains"):
        n = common.request_measurements(res, list(res.metas), force=True)
        st.toast(f"Queued {n} measurements")

unplaced = int(df[x].isna().sum())  # no latency from any host yet: the worker is measuring them
df = df.dropna(subset=[x]).reset_index(drop=True)
if unplaced:
    st.caption(f"{unplaced} variant{'s are' if unplaced > 1 else ' is'} not on the chart yet: never measured on any host.")
if df.empty:
    chart_slot.empty()
    st.warning("No variant matches these filters.")
    st.stop()

front = pareto.pareto_mask(df[x].to_numpy(float), df["accuracy"].to_numpy(float))

unit = results.METRICS[x].unit
budget_col, text_col = st.columns([1, 3])
with budget_col:
    budget = st.number_input(f"Budget: best accuracy under … {unit}", min_value=0.0,
                             value=float(df[x].median()), format="%.1f", key="budget")
winner = pareto.best_under_budget(df[x].to_numpy(float), df["accuracy"].to_numpy(float), budget)
with text_col:
    if winner is None:
        st.warning(f"Nothing fits under {budget:g} {unit}; the cheapest variant needs {df[x].min():.1f} {unit}.")
    else:
        w = df.iloc[winner]
        cheapest = df.loc[df[x].idxmin()]
        best = df.loc[df["accuracy"].idxmax()]
        text = f"**{w['label']}**: accuracy {w['accuracy']:.4f} at {w[x]:,.1f} {unit}."
        if cheapest["key"] != w["key"]:
            text += (f" It costs {w[x] / cheapest[x]:.2f}× the cheapest ({cheapest['label']}) for "
                     f"{(w['accuracy'] - cheapest['accuracy']) * 100:+.2f} accuracy points.")
        if best["key"] == w["key"]:
            text += " It is also the most accurate variant shown."
        else:
            text += (f" The most accurate ({best['label']}) is {(best['accuracy'] - w['accuracy']) * 100:.2f} "
                     f"points better at {best[x] / w[x]:.2f}× the cost.")
        st.success(text)

fig = figures.pareto(df, front, x, log_x=log_x, highlight=None if winner is None else df.iloc[winner]["key"],
                     host_label=host.current().label)
foreign, noisy = int((~df["measured_here"]).sum()), int(df["noisy"].sum())
event = chart_slot.plotly_chart(fig, on_select="rerun", selection_mode="points", key="pareto_chart", width="stretch")
st.caption(common.host_caption() + f" {int(front.sum())} of {len(df)} variants are on the front. "
           "Symbol = depth (● 1, ■ 2, ◆ 3, ▲ 4); marker size = file size; error bars = 95 % interval of p50. "
           "Click a point to open it in Details. Pruning shrinks the gzipped file but not dense-kernel latency."
           + (f" **{foreign} hollow points show latency measured on another host** until this host has measured "
              "them." if foreign and x.endswith("_us") else "")
           + (f" {noisy} measurement{'s were' if noisy > 1 else ' was'} noisy (orange rim: its blocks, each in a fresh "
              "process, disagreed by more than 3 %; see Details)." if noisy else ""))

points = (event or {}).get("selection", {}).get("points", []) if event else []
if points and points[0].get("customdata"):
    st.session_state["detail_key"] = points[0]["customdata"][0]
    st.switch_page("pages/details.py")

with st.expander(f"All {len(df)} variants: table and CSV", expanded=False):
    shown = df.assign(on_front=front)[["label", "on_front", "accuracy", "p50_us", "p50_lo_us", "p50_hi_us", "p90_us",
                                       "p99_us", "noisy", "measured_here", "throughput_ips", "size_kb", "gzip_kb",
                                       "nonzero_params", "sparsity_real", "macs", "key"]]
    st.dataframe(shown, hide_index=True, width="stretch",
                 column_config={"accuracy": st.column_config.NumberColumn(format="%.4f"),
                                **{c: st.column_config.NumberColumn(c.replace("_us", " µs"), format="%.1f")
                                   for c in ("p50_us", "p90_us", "p99_us")},
                                "p50_lo_us": st.column_config.NumberColumn("p50 CI low", format="%.1f"),
                                "p50_hi_us": st.column_config.NumberColumn("p50 CI high", format="%.1f"),
                                "measured_here": st.column_config.CheckboxColumn("measured on this host"),
                                "throughput_ips": st.column_config.NumberColumn("images/s", format="%d"),
                                "size_kb": st.column_config.NumberColumn("size KB", format="%.1f"),
                                "gzip_kb": st.column_config.NumberColumn("gzipped KB", format="%.1f"),
                                "sparsity_real": st.column_config.NumberColumn("real sparsity", format="%.2f")})
    st.download_button("Download CSV", df.to_csv(index=False).encode(), f"variants-{dataset}.csv", "text/csv")
