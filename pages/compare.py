"""Compare: 2–4 variants side by side — metrics with ratios, per-class accuracy, latency distributions."""

import pandas as pd
import streamlit as st

from explorer.measure import quant_error
from explorer.present import figures, links, results, significance
from pages.ui import captions, loading, sharing

st.title("Compare variants")
res = loading.load_results()
loading.show_problems(res)
if len(res.table) < 2:
    st.info("Compare needs at least two variants in the cache.")
    st.stop()

labels = {label: k for k, label in res.labels.items()}
default = [res.labels[k] for k in results.compare_defaults(res.table, st.session_state.get("dataset"))]  # a what-if
params = sharing.incoming_link("compare")
if params:  # a link: ?keys=<key>,<key>,…
    linked, problems = links.parse_keys(params, "keys", links.MAX_KEYS)
    missing = [k for k in linked if k not in res.labels]
    if missing:
        problems.append(f"not in the cache of this app: {', '.join(missing)}")
    sharing.show_link_problems(links.unknown(params, ("keys",), []) + problems)
    found = [res.labels[k] for k in linked if k in res.labels]
    if found:
        st.session_state["compare_pick"] = found
if [p for p in st.session_state.get("compare_pick", []) if p in labels] != st.session_state.get("compare_pick"):
    st.session_state["compare_pick"] = default  # first visit, or a pick that left the cache
picked = st.multiselect("Variants (the first is the reference for ratios)", sorted(labels), max_selections=4,
                        key="compare_pick")
if len(picked) < 2:
    st.info("Pick at least two variants.")
    st.stop()

sharing.write_link("compare", {"keys": ",".join(labels[p] for p in picked)},
                  "A link to this comparison (the first variant is the reference):")
rows = results.compare(res.table, [labels[p] for p in picked])
by_key = res.table.set_index("key", drop=False)
first = by_key.loc[labels[picked[0]]].to_dict()
paired = [res.evidence(first["dataset"]).paired(first, by_key.loc[labels[p]].to_dict()) for p in picked]


def or_dash(fmt: str):
    """A figure as text; a missing one (a seed replicate kept without its model has no latency) as a dash."""
    return lambda x: "—" if pd.isna(x) else fmt.format(x)


table = pd.DataFrame({
    "accuracy (95 % interval)": results.texts(rows, "accuracy"),
    "Δ accuracy vs first": ["—" if i == 0 else "— (another dataset's test images)"
                            if by_key.loc[labels[p], "dataset"] != first["dataset"] else significance.delta_text(t, d)
                            for i, (p, t, d) in enumerate(zip(picked, paired, rows["delta_pts"]))],
    "balanced accuracy": results.texts(rows, "balanced_accuracy"),
    "macro F1": results.texts(rows, "macro_f1"),
    "p50 µs": rows["p50_us"].map(or_dash("{:.1f}")),
    "speed-up vs first": rows["speedup"].map(or_dash("{:.2f}×")),
    "p99 µs": rows["p99_us"].map(or_dash("{:.1f}")),
    "size KB": rows["size_kb"].map("{:,.1f}".format),
    "size vs first": rows["size_ratio"].map("{:.2f}×".format),
    "gzipped KB": rows["gzip_kb"].map("{:,.1f}".format),
    "peak RAM KB": rows["peak_ram_kb"].map(or_dash("{:,.1f}")),
    "RAM vs first": rows["ram_ratio"].map(or_dash("{:.2f}×")),
    "flash KB": rows["flash_kb"].map("{:,.1f}".format),
    "non-zero params": rows["nonzero_params"].map("{:,}".format),
    "MACs": rows["macs"].map("{:,}".format),
})
st.dataframe(table.T, width="stretch")
st.caption("Δ accuracy: the difference from the first variant, with its 95 % interval and McNemar's exact test on "
           "the test images one gets right and the other wrong (p < 0.05: significant; otherwise the two tie). "
           "Variants on other test splits, or without stored predictions, are compared by their intervals only.")
elsewhere = [p for p in picked if not rows.loc[p, "measured_here"] and pd.notna(rows.loc[p, "p50_us"])]
modelless = [p for p in picked if not by_key.loc[labels[p], "has_model"]]
unmeasured = [p for p in picked if pd.isna(rows.loc[p, "p50_us"]) and p not in modelless]
st.caption(captions.host_caption()
           + (" Measured on another host (the worker is measuring this one): " + ", ".join(elsewhere) + "."
              if elsewhere else "")
           + (" No latency, being a seed replicate kept for its accuracy without its model (the same variant's "
              "other seed has one): " + ", ".join(modelless) + "." if modelless else "")
           + (" Not measured yet: " + ", ".join(unmeasured) + "." if unmeasured else ""))

shown = [res.variant(labels[p]) for p in picked]
classes = list(shown[0].class_names)
if all(list(v.class_names) == classes for v in shown):
    st.subheader("Per-class accuracy")
    st.plotly_chart(figures.per_class(picked, classes, [list(v.per_class_accuracy) for v in shown]),
                    key="per_class_chart")
    worst = min(range(len(classes)), key=lambda i: shown[0].per_class_accuracy[i] or 0)
    st.caption(f"Hardest class for {picked[0]}: **{classes[worst]}** "
               f"({shown[0].per_class_accuracy[worst]:.3f}).")
else:
    st.info("These variants use different datasets, so their per-class accuracies are not comparable.")

st.subheader("Latency distribution (batch 1)")
samples = [list(v.latency.samples_us) if v.latency else [] for v in shown]
st.plotly_chart(figures.latency_histogram(picked, samples), key="latency_chart")

blamed = [(p, v.quant_error) for p, v in zip(picked, shown) if v.quant_error is not None]
if blamed:
    st.subheader("Where the accuracy goes (full-integer variants)")
    st.plotly_chart(figures.quant_errors_side_by_side(blamed), key="quant_error_chart")
    for label, q in blamed:
        st.caption(f"**{label}**: {quant_error.sentence(q)}")
