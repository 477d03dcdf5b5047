"""Details: one variant — architecture, sparsity per layer, confusion matrix, latency, provenance, downloads."""

import json

import pandas as pd
import streamlit as st

from explorer.present import figures, links, memory, results
from explorer.measure import host, quant_error
from explorer.models import sources
from explorer.store.cache import TFLITE
from pages.ui import actions, captions, knobs, loading, measuring, roles, sharing, target_view

st.title("Variant details")
target = target_view.target_picker()  # whose latency to show: this machine's, or a measurement target's
res = loading.load_results(host_id=target.host.id if target else None)
loading.show_problems(res)
if res.table.empty:
    st.info("No variants in the cache yet.")
    st.stop()

params = sharing.incoming_link("details")
if params:  # a link: ?key=<variant key>, with the variant's fields so that a missing one can be built
    problems = links.unknown(params, ("key", *links.SPEC_FIELDS), [])
    linked, bad = links.parse_keys(params, "key", 1)
    spec, bad_spec = links.parse_spec(params)
    sharing.show_link_problems(problems + bad)
    if linked and linked[0] not in res.labels:
        st.warning(f"Variant `{linked[0]}` is not in the cache of this app"
                   + (f": **{spec.label()}** has not been built here (or was built with other library versions)."
                      if spec else "."))
        sharing.show_link_problems(bad_spec)
        if spec is not None and st.button("Build it on Explore", type="primary"):
            knobs.set_knobs(spec)
            st.switch_page("pages/explore.py")
        if st.button("Show the variants in the cache instead"):
            st.session_state["details_written"] = params
            st.rerun()
        st.stop()
    if linked:
        st.session_state["detail_key"] = linked[0]

keys = list(res.table["key"])
wanted = st.session_state.get("detail_key", results.first_measured(res.table))
key = st.selectbox("Variant", keys, index=keys.index(wanted) if wanted in keys else 0,
                   format_func=res.labels.get, key="detail_select")
st.session_state["detail_key"] = key
v = res.variant(key)
lat = v.latency
sharing.write_link("details", {"key": key, **links.spec_params(v.spec)},
                  "A link to this variant (it carries the variant's settings, so a colleague whose cache lacks it "
                  "can build it):")

sure = results.intervals_of(v)
captions.import_lines(v)
if (warning := sources.chance_warning(v.spec, v.accuracy, len(v.class_names))):
    st.warning(warning)
c = st.columns(4)
c[0].metric("Test accuracy", sure["accuracy"].text(),
            help=f"95 % Wilson interval over the {v.test_images:,} test images: another draw of test images could "
                 "give any accuracy in it")
c[1].metric("Balanced accuracy", sure["balanced_accuracy"].text(),
            help="Mean recall over classes; 95 % bootstrap interval over the test images")
c[2].metric("Macro F1", sure["macro_f1"].text(), help="95 % bootstrap interval over the test images")
c[3].metric("Latency p50", f"{lat.p50_us:.1f} µs" if lat else "not measured",
            help=captions.latency_text(lat, 2, res.host_id))
group = results.replicate_groups(res.table)
replicates = res.table[group == group[res.table["key"] == key].iloc[0]].sort_values("seed")
if len(replicates) > 1:
    pooled = results.interval(results.group_seeds(replicates).iloc[0])
    st.caption(f"**{len(replicates)} seed replicates** of this variant: {pooled.text()} — the mean, and the range a "
               "new seed's accuracy falls in (their spread and the test split's sampling combined). Each: "
               + "; ".join(f"seed {r['seed']}: {results.interval(r).text()}" for r in replicates.to_dict("records")))
c = st.columns(4)
c[0].metric("Size (flash)", f"{v.size_kb:,.0f} KB")
c[1].metric("Gzipped", f"{v.gzip_kb:,.0f} KB")
c[2].metric("Non-zero params", f"{v.nonzero_params:,}")
c[3].metric("Weight sparsity", f"{v.real_sparsity:.1%}")

left, right = st.columns(2)
with left:
    st.subheader("Architecture")
    layers = pd.DataFrame([{"name": lp.name, "kind": lp.kind, "output": "×".join(map(str, lp.output_shape)),
                            "params": lp.params, "macs": lp.macs,
                            "kernel sparsity": f"{v.layer_sparsity[lp.name]:.1%}" if lp.name in v.layer_sparsity else ""}
                           for lp in v.layers])
    st.dataframe(layers, hide_index=True, width="stretch")
    st.caption(f"{v.params:,} parameters, {v.macs:,} multiply-accumulates per image; Keras accuracy before "
               f"conversion {v.keras_accuracy:.{sure['accuracy'].decimals}f} (TFLite: "
               f"{v.accuracy:.{sure['accuracy'].decimals}f}).")
with right:
    st.subheader("Confusion matrix (test split)")
    st.plotly_chart(figures.confusion([list(r) for r in v.confusion], list(v.class_names)), key="confusion_chart")

here = v.measured_here(res.host_id)
st.subheader(("Latency on this host" if target is None else f"Latency on target {target.name}") if here or not lat
             else f"Latency measured on another host: {lat.host_label}")
if lat:
    if not here:
        st.warning(f"This host ({host.current().label}) has not measured this variant yet; the figures below "
                   "come from another machine. The worker measures it in the background.")
    elif lat.noisy:
        st.warning(f"Noisy measurement: the p50s of its {len(lat.block_p50s_us)} blocks, each timed in a fresh "
                   f"process, disagreed by {lat.block_spread:.1%} (more than 3 %) after {lat.attempts} attempts. "
                   f"Either the machine was busy (other processes used {lat.other_cpu_share:.0%} of it), or this "
                   "model's speed depends on how its memory happens to be laid out; the interval shows how much.")
    if lat.samples_us:
        st.plotly_chart(figures.latency_histogram([v.label], [list(lat.samples_us)]), key="detail_latency")
    shown = lambda value, text: "not reported" if value != value else text  # noqa: E731 (NaN: the tool lacks it)
    st.write(f"p50 {captions.latency_text(lat, 2, res.host_id)} · p90 {shown(lat.p90_us, f'{lat.p90_us:.1f} µs')} · "
             f"p99 {shown(lat.p99_us, f'{lat.p99_us:.1f} µs')} · mean {lat.mean_us:.1f} µs over {lat.runs:,} runs · "
             f"{shown(lat.throughput_ips, f'{lat.throughput_ips:,.0f} images/s at batch {lat.throughput_batch}')}"
             + (f" · measured on target **{lat.target}**" + (f" by {lat.tool['name']}" if lat.tool else "")
                if lat.target else "")
             + (f" · its interpreter added {lat.rss_increase_bytes / 1e6:,.2f} MB to a fresh process's resident memory "
                "(LiteRT's own first-use pages included)" if lat.rss_increase_bytes is not None
                else f" · resident memory not measured: {lat.rss_note}" if lat.rss_note else ""))
    with st.expander("How it was measured"):
        st.json(lat.provenance())
elif not v.has_model:
    st.info("A seed replicate kept without its model (as the shipped cache keeps further seeds): its accuracy and "
            "test predictions count in its seed point, whose latency is measured on the first seed's model. "
            "Build it from Explore to get its model.")
else:
    st.info("Not measured on any host yet.")
if target is not None:
    if v.has_model and not here and roles.access().can_act and st.button(f"Measure on target {target.name}"):
        st.toast(f"Queued {actions.measure_on_target(res, target.name, [key])} on {target.name}")
elif v.has_model and (lat is None or not here):
    measuring.request_measurements(res, [key])
elif roles.access().can_act and st.button("Re-measure on this host", help="Time it again in the worker, while nothing trains"):
    if actions.remeasure(res, [key]):
        st.toast("Queued: the figures update when the worker has measured it")

st.subheader("Does each speed lever pay off here?")
captions.why_lines(v, res)
if lat and lat.ops:
    st.subheader("Where the time goes")
    st.plotly_chart(figures.op_times([{"index": o.index, "name": o.name, "output_shape": o.output_shape,
                                       "delegated": o.delegated, "us": o.us} for o in lat.ops]), key="op_times")
    fallback = [o.name for o in lat.ops if not o.delegated]
    st.caption(f"Each op's time is the p50 of the model cut after that op minus the model cut before it (the same "
               f".tflite, {lat.threads} thread, timed round-robin in one process during the measurement). Their sum, "
               f"{lat.ops_sum_us:.2f} µs, is {lat.ops_sum_us / lat.p50_us:.0%} of the recorded p50 ({lat.p50_us:.2f} µs). "
               + (f"Not run by XNNPACK: {', '.join(fallback)}." if fallback else "XNNPACK runs every op.")
               + " Batch normalization is folded into the convolution and dropout vanishes on conversion; a conv's "
               "ReLU is fused into it.")
if v.quant_error is not None:
    st.subheader("Where the accuracy goes")
    st.write(quant_error.sentence(v.quant_error))
    st.plotly_chart(figures.quant_error(v.quant_error), key="quant_error")
    st.caption("Each op's int8 output against the float model's on the same validation images (TensorFlow's "
               "QuantizationDebugger), in the ops' order above. Where int8 lost half a point or more there, and "
               "significantly (McNemar), each layer was also kept alone in float and the model evaluated again: the "
               "colour is what that recovered.")
st.subheader("Memory: will it fit?")
if v.memory is None:
    st.info("Its memory is not planned yet: `python -m explorer memory` plans it from its model (no training)."
            if v.has_model else "A seed replicate kept without its model: its seed point's first seed has the plan.")
else:
    plan = v.memory
    c = st.columns(3)
    c[0].metric("Peak RAM", f"{plan.peak_ram_kb:,.1f} KB", help="TensorFlow Lite Micro's tensor arena, planned from the "
                ".tflite as its own planner places the buffers: activations (the head) plus its persistent data (the "
                "tail, sized as on a 64-bit host; a 32-bit microcontroller's is smaller)")
    c[1].metric("Flash", f"{plan.flash_kb:,.1f} KB", help="The .tflite's bytes, stored in flash on a microcontroller")
    fits, not_fits = memory.fitting_boards(plan)
    c[2].metric("Fits", f"{len(fits)} of {len(fits) + len(not_fits)} boards")
    if plan.micro_blockers:
        st.warning(f"TensorFlow Lite Micro cannot run this model: it has no kernels for its "
                   f"{' and '.join(plan.micro_blockers)}. The plan shows what its arena would hold; int8 and fp32 "
                   "variants run there.")
    st.caption(memory.peak_text(plan) + (" Fits " + ", ".join(b.name for b in fits) + "." if fits else "")
               + (" Too big for " + ", ".join(b.name for b in not_fits) + "." if fits and not_fits else ""))
    st.plotly_chart(figures.memory_profile(plan), key="memory_profile")
    captions.memory_lines(v, res)

if v.history:
    st.subheader("Training: does it generalize?")
    st.plotly_chart(figures.training_curves({k: dict(h) for k, h in v.history.items()}), key="training_curves")
    base = v.history.get("base", {})
    if base.get("accuracy") and base.get("val_accuracy"):
        gap = base["accuracy"][-1] - base["val_accuracy"][-1]
        st.caption(f"Base training ran {len(base['accuracy'])} epochs; at the last one, training accuracy is "
                   f"{base['accuracy'][-1]:.4f} and validation {base['val_accuracy'][-1]:.4f} ({gap * 100:+.2f} pts): "
                   + ("the model fits its training images noticeably better than unseen ones (overfitting)."
                      if gap > 0.02 else "no sign of overfitting.")
                   + " With early stopping, the weights kept are those of the best validation epoch.")
with st.expander("How it was built"):
    st.json(v.build_info())

s = loading.store()
d1, d2 = st.columns(2)
if v.has_model:
    d1.download_button("Download .tflite", s.file_path("variants", key, TFLITE).read_bytes(),
                       f"{v.label}.tflite", "application/octet-stream")
d2.download_button("Download metadata (JSON)",
                   lambda: json.dumps({**v.to_meta(), "key": key, "latency": lat.to_dict() if lat else None}, indent=1),
                   f"{v.label}.json", "application/json")
