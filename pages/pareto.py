"""Pareto: every measured variant, latency (or size) against accuracy, with the non-dominated front."""

import streamlit as st

from explorer.present import links, pareto, report, results, significance
from explorer.measure import host
from explorer.measure.boards import BOARDS
from explorer.uncertainty import INTERVAL_COLUMNS
from pages.ui import actions, captions, loading, measuring, pareto_screen, roles, sharing, target_view


st.title("Speed–accuracy Pareto front")
answer_slot = st.empty()  # the budget's answer, in one sentence above the chart (a projector shows both)
if "pareto_answer" in st.session_state:  # the last answer stays while a rerun (results landing) computes the next
    shown_before, won_before = st.session_state["pareto_answer"]
    (answer_slot.success if won_before else answer_slot.warning)(shown_before)
# The chart's slot comes first, holding an empty chart of its size: the browser starts loading plotly.js
# (the slowest part of a first visit) while the results are read, and nothing jumps when it is filled.
chart_slot = st.empty()
if "pareto_drawn" not in st.session_state:  # later runs keep the last chart until the new one replaces it
    chart_slot.plotly_chart(pareto_screen.placeholder(), key="pareto_placeholder")
target = target_view.target_picker()  # where the latencies on the chart were measured (None: this machine)
here = target.host if target else host.current()
cores = host.current().cores if target is None else 1  # a target is timed at 1 thread
threads = st.session_state.get("threads", 1) if cores > 1 else 1
res = loading.load_results(threads, here.id)
measuring.measuring_status(res, auto=target is None)  # this host measures its own in the background
loading.show_problems(res)
df = res.table
if df.empty:
    chart_slot.empty()
    answer_slot.empty()
    st.info("No variants yet. Build one on the **Explore** page, or run `python -m explorer sweep --preset default`.")
    st.stop()

NO_BOARD, CUSTOM = "none", "my limits"  # the device picker's two choices besides the boards
DEMO_DATASET = "fashion-mnist"  # the shipped demo's, the default whenever it has variants
params = sharing.incoming_link("pareto")
link, link_problems = links.parse_pareto(params)
if params:
    # A link opened (or edited by hand): its settings become the widgets' state, once.
    datasets_ = sorted(df["dataset"].unique())
    if link.dataset is not None and link.dataset not in datasets_:
        link_problems.append(f"no variants of dataset '{link.dataset}' in the cache: showing another")
    if link.dataset in datasets_:
        st.session_state["dataset"] = link.dataset
    if link.x is not None:
        st.session_state["x"] = link.x
    if link.y is not None:
        st.session_state["y"] = link.y
    if link.log_x is not None:
        st.session_state[f"log_x:{st.session_state.get('x', 'p50_us')}"] = link.log_x
    shown_ds = st.session_state.get("dataset", DEMO_DATASET)
    sub = df[df["dataset"] == shown_ds]
    for name, values, column in (("depths", link.depths, "depth"), ("quants", link.quants, "quant")):
        if values is not None:
            have = [v for v in values if v in set(sub[column])]
            if len(have) < len(values):
                link_problems.append(f"{column} {', '.join(str(v) for v in values if v not in have)}: no such "
                                     f"variants of {shown_ds}: ignored")
            st.session_state[f"{name}:{shown_ds}"] = have
    if link.budget is not None:
        st.session_state[f"budget:{shown_ds}:{st.session_state.get('x', 'p50_us')}"] = link.budget
    if link.board is not None:
        st.session_state["board"] = link.board
    elif link.ram_kb is not None or link.flash_kb is not None:
        st.session_state["board"] = CUSTOM
        st.session_state["ram_limit"], st.session_state["flash_limit"] = link.ram_kb or 0.0, link.flash_kb or 0.0
    st.session_state["pareto_link_problems"] = link_problems
sharing.show_link_problems(st.session_state.get("pareto_link_problems", []))

with st.sidebar:
    st.header("Chart")
    # Defaults go into the session state, not the widgets, so that a link may set any of them first.
    x = st.selectbox("x axis (lower is better)", links.X_AXES, format_func=lambda m: results.METRICS[m].title, key="x")
    st.session_state.setdefault(f"log_x:{x}", x in ("nonzero_params", "macs", "peak_ram_kb"))
    log_x = st.toggle("log scale", key=f"log_x:{x}")
    if cores > 1:
        st.radio("latency measured with", [1, cores], key="threads", horizontal=True,
                 format_func=lambda n: "1 thread" if n == 1 else f"all {n} cores",
                 help="Interpreter threads at batch 1. All-core figures are measured on this host when first "
                      "shown (in the background); until then a point shows another host's, or none.")
    y = st.selectbox("y axis (higher is better)", results.Y_AXES, format_func=lambda m: results.METRICS[m].title,
                     key="y", help="Balanced accuracy and macro F1 weigh every class alike: they show what class "
                     "imbalance costs the rare classes")
    st.header("Filters")
    names = sorted(df["dataset"].unique())
    if st.session_state.get("dataset") not in names:
        st.session_state["dataset"] = DEMO_DATASET if DEMO_DATASET in names else names[0]
    dataset = st.selectbox("dataset", names, key="dataset")
    df = df[df["dataset"] == dataset]
    all_depths, all_quants = sorted(df["depth"].unique()), list(df["quant"].unique())
    # Filters belong to a dataset: keyed by it, so switching datasets never keeps stale choices.
    st.session_state.setdefault(f"depths:{dataset}", all_depths)
    st.session_state.setdefault(f"quants:{dataset}", all_quants)
    depths = st.multiselect("depth", all_depths, key=f"depths:{dataset}")
    quants = st.multiselect("quantization", all_quants, key=f"quants:{dataset}")

shown = pareto_screen.table(res, here.id, dataset, [int(d) for d in depths], list(quants), x)
df, unplaced = shown.df, shown.unplaced  # unplaced: no latency from any host yet (the worker is measuring them)
if unplaced:
    st.caption(f"{unplaced} variant{'s are' if unplaced > 1 else ' is'} not on the chart yet: never measured on any host.")
if df.empty:
    chart_slot.empty()
    answer_slot.empty()
    st.warning("No variant matches these filters.")
    st.stop()

unit = results.METRICS[x].unit
with st.sidebar:  # a budget belongs to a dataset and an axis (µs are not KB)
    st.header("Budget")
    budget_key = f"budget:{dataset}:{x}" + (f":t{threads}" if threads > 1 else "")  # µs at 2 threads are not µs at 1
    # The default: a round figure at or above the median of the data on screen. While points are hollow or
    # provisional (this host or the target is measuring them), it stays as first shown, so figures landing one by
    # one do not move the answer; once all are measured, it follows them. A budget the user typed, or a link
    # brought, stays.
    auto_key = f"{budget_key}:default"
    final = df["measured_here"].astype(bool) & ~results.provisional_here(df)
    measuring = x.endswith("_us") and not final.all()
    default = st.session_state[auto_key] if measuring and auto_key in st.session_state else pareto.default_budget(df[x])
    if budget_key not in st.session_state or st.session_state[budget_key] == st.session_state.get(auto_key):
        st.session_state[budget_key] = default
    st.session_state[auto_key] = default
    quality = "accuracy" if y == "accuracy" else results.METRICS[y].name.lower()
    budget = st.number_input(f"Budget: best {quality} under … {unit}", min_value=0.0, format="%.1f",
                             key=budget_key)
    st.caption(f"Default {default:g} {unit}: a round figure at or above the median of the variants shown"
               + ("; it stays while this host's figures land." if measuring else "."))
    st.header("Device: will it fit?")
    board = st.selectbox("board", [NO_BOARD, *BOARDS, CUSTOM], key="board",
                         help="Fades the variants whose peak RAM (TensorFlow Lite Micro's tensor arena, planned from "
                              "the .tflite) or flash exceeds the board's, or that TFLite Micro cannot run; the budget "
                              "answer then names the most accurate that fits. Your firmware's own RAM comes on top.")
    fit = pareto.Fit()
    if board in BOARDS:
        b = BOARDS[board]
        st.caption(f"{b.describe()}. Source: {b.source}.")
        fit = pareto.Fit(b.ram_kb, b.flash_kb, b.name)
    elif board == CUSTOM:
        ram = st.number_input("RAM limit (KB)", min_value=0.0, value=64.0, step=16.0, key="ram_limit")
        flash = st.number_input("flash limit (KB)", min_value=0.0, value=256.0, step=64.0, key="flash_limit")
        fit = pareto.Fit(ram or None, flash or None)
    if roles.access().can_act:
        st.header("Measurements")
        if target is not None:
            missing = len(res.unmeasured_here)
            if st.button(f"Measure on target {target.name}", disabled=not missing,
                         help=f"Queue the {missing} variants {target.name} has not timed in the worker: each model is "
                              "sent to its agent and timed there, blocks in fresh processes, as here"):
                st.toast(f"Queued {actions.measure_on_target(res, target.name)} measurements on {target.name}")
        elif st.button("Re-measure all on this host", help="Time every variant again in the worker, one at a time, "
                       "while nothing trains"):
            n = actions.remeasure(res, list(res.table["key"]))
            st.toast(f"Queued {n} measurements")
screen = pareto_screen.screen(res, here.id, shown, dataset, [int(d) for d in depths], list(quants), x, y, log_x,
                             budget, here.label, fit)
status, answer = screen.status, screen.answer
front, tied = status == significance.FRONT, status == significance.TIED
(answer_slot.success if answer.winner else answer_slot.warning)(answer.text)
st.session_state["pareto_answer"] = (answer.text, answer.winner is not None)

view = links.ParetoView(dataset, x, log_x, None if depths == all_depths else tuple(int(d) for d in depths),
                        None if quants == all_quants else tuple(quants), budget, None if y == "accuracy" else y,
                        board if board in BOARDS else None, fit.ram_kb if board == CUSTOM else None,
                        fit.flash_kb if board == CUSTOM else None)
sharing.write_link("pareto", links.pareto_params(view),
                  "Anyone with the app opens this exact view (axis, filters, budget):")
with st.sidebar:
    st.download_button("Download a report (HTML, works offline)",  # rendered only when clicked
                       lambda: report.render(df, front, x, answer, res.variant, log_x=log_x, y=y, fit=fit),
                       f"pareto-{dataset}.html", "text/html", key="report_download")

foreign, noisy = int((~df["measured_here"]).sum()), int(df["noisy"].sum())
provisional = int(results.provisional_here(df).sum())
st.session_state["pareto_drawn"] = True
event = chart_slot.plotly_chart(screen.figure, on_select="rerun", selection_mode="points", key="pareto_chart", width="stretch")
st.caption(captions.host_caption(threads, here, target.name if target else None)
           + f" {int(front.sum())} of {len(df)} variants are on the front"
           + (f", and {int(tied.sum())} more are statistically tied with it (ringed: no front variant at least as fast "
              "is significantly more accurate, by McNemar's test on the same test images or non-overlapping "
              "intervals)" if tied.any() else "") + ". "
           "Symbol = depth (● 1, ■ 2, ◆ 3, ▲ 4; ★ a network of your own); marker size = file size; error bars = 95 % intervals (p50 across "
           "measurement blocks; accuracy over the test images). "
           "Click a point to open it in Details. Pruning shrinks the gzipped file but not dense-kernel latency."
           + (f" **{int(fit.mask(df).sum())} of {len(df)} fit {fit.board or 'your limits'}** ({fit.limits()}); "
              "the others are faded." if fit.active else "")
           + (f" **{foreign} hollow points show latency measured on another host** until "
              + (f"target {target.name} has" if target else "this host has") + " measured them."
              if foreign and x.endswith("_us") else "")
           + (f" {provisional} latenc{'ies are' if provisional > 1 else 'y is'} provisional (a quick first pass of 3 "
              "short blocks, with its wider interval) until the full protocol replaces "
              f"{'them' if provisional > 1 else 'it'} in the background." if provisional else "")
           + (f" {noisy} measurement{'s were' if noisy > 1 else ' was'} noisy (orange rim: its blocks, each in a fresh "
              "process, disagreed by more than 3 %; see Details)." if noisy else ""))

points = (event or {}).get("selection", {}).get("points", []) if event else []
if points and points[0].get("customdata"):
    st.session_state["detail_key"] = points[0]["customdata"][0]
    st.switch_page("pages/details.py")

# The table is drawn when asked: its data and the browser's table component cost every view otherwise.
if st.toggle(f"Show all {len(df)} variants as a table (and CSV)", key="pareto_table"):
    acc_format = screen.acc_format  # accuracy at the precision its interval supports (the widest interval decides)
    shown = df.assign(front=status)[["label", "front", "accuracy", "accuracy_lo", "accuracy_hi", "balanced_accuracy",
                                       "balanced_accuracy_lo", "balanced_accuracy_hi", "macro_f1", "macro_f1_lo",
                                       "macro_f1_hi", "seeds", "test_images", "p50_us", "p50_lo_us", "p50_hi_us", "p90_us",
                                       "p99_us", "noisy", "measured_here", "throughput_ips", "size_kb", "gzip_kb",
                                       "peak_ram_kb", "flash_kb", "micro_blockers",
                                       "nonzero_params", "sparsity_real", "macs", "key"]]
    st.dataframe(shown, hide_index=True, width="stretch",
                 column_config={"label": st.column_config.TextColumn("variant", width="large"),
                                **{c: st.column_config.NumberColumn(c.replace("_lo", " 95 % low").replace("_hi", " 95 % high"),
                                                                    format=acc_format)
                                   for c in ("accuracy", "balanced_accuracy", "macro_f1", *INTERVAL_COLUMNS)},
                                **{c: st.column_config.NumberColumn(c.replace("_us", " µs"), format="%.1f")
                                   for c in ("p50_us", "p90_us", "p99_us")},
                                "p50_lo_us": st.column_config.NumberColumn("p50 CI low", format="%.1f"),
                                "p50_hi_us": st.column_config.NumberColumn("p50 CI high", format="%.1f"),
                                "measured_here": st.column_config.CheckboxColumn("measured on this host"),
                                "throughput_ips": st.column_config.NumberColumn("images/s", format="%d"),
                                "size_kb": st.column_config.NumberColumn("size KB", format="%.1f"),
                                "gzip_kb": st.column_config.NumberColumn("gzipped KB", format="%.1f"),
                                "peak_ram_kb": st.column_config.NumberColumn(
                                    "peak RAM KB", format="%.1f", help="TensorFlow Lite Micro's tensor arena"),
                                "flash_kb": st.column_config.NumberColumn("flash KB", format="%.1f"),
                                "micro_blockers": st.column_config.TextColumn("TFLite Micro cannot run it: why"),
                                "sparsity_real": st.column_config.NumberColumn("real sparsity", format="%.2f")})
    st.download_button("Download CSV", df.to_csv(index=False).encode(), f"variants-{dataset}.csv", "text/csv")
