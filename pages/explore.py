"""Explore: pick a variant's knobs; load it from the cache at once, or build it with live progress."""

from __future__ import annotations

import streamlit as st

from explorer.models import architecture, sources
from explorer.data import datasets
from explorer.present import figures, links, results, significance
from explorer.measure import host
from explorer.run import auto_precision, preview
from explorer import record
from explorer.store.cache import CacheError
from explorer.run.executors import JobRequest
from explorer.record import VariantRecord
from explorer.spec import BOUNDS, CLASS_WEIGHTS, COLOURS, CONV_KINDS, HEADS, PADDINGS, QUANT_MODES, SCHEDULES, SpecError, VariantSpec
from pages.ui import actions, captions, defaults_card, jobs, knobs, loading, roles, sharing, target_view

MAX_EPOCHS = jobs.max_epochs()
DEFAULT = VariantSpec()


def knobs_ui() -> dict:
    """Sidebar widgets for every spec field; returns the raw values.

    Defaults go into the session state rather than the widgets, so that a link can set any knob first.
    """
    pos = knobs.KNOB_POSITIONS
    state = st.session_state
    names = datasets.available()
    if state.get("k_dataset") not in names:
        state["k_dataset"] = DEFAULT.dataset if DEFAULT.dataset in names else names[0]
        defaults_card.apply(state["k_dataset"])
    for name in ("image_size", "colour", "width", "conv", "padding", "dense", "head", "channels", "sparsity", "schedule", "clusters", "quant", "precision", "epochs",
                 "tune_epochs", "batchnorm", "dropout", "augment", "class_weight", "patience", "min_steps",
                 "learning_rate", "batch_size", "seed"):
        state.setdefault(f"k_{name}", getattr(DEFAULT, name))
    choices = knobs.networks()
    if state.get("k_network") not in choices:
        state["k_network"] = knobs.BUILT_IN
    with st.sidebar:
        st.header("Variant")
        dataset = st.selectbox("dataset", names, key="k_dataset", on_change=lambda: defaults_card.apply(state["k_dataset"]),
                               help="Picking a dataset sets the training knobs to its defaults (see the card)")
        network = st.selectbox("network", choices, key="k_network",
                               help="The built-in conv-pool family with its knobs below, a model you imported on the "
                                    "Data page (python -m explorer import-model), or a keras.applications "
                                    "architecture trained from scratch on the dataset")
        h, w, c = datasets.info(dataset).input_shape
        v = {"dataset": dataset, "model": sources.resolve(network) if network != knobs.BUILT_IN else ""}
        v["model"] = knobs.width_knob(network, v["model"])
        own, app = bool(v["model"]), VariantSpec(model=v["model"]).source.application
        converted = own and sources.for_spec(VariantSpec(model=v["model"])).converted
        why = f" — disabled: {sources.FAMILY_ONLY}" if own else ""
        as_is = " — disabled: a .tflite is measured and evaluated as it is" if converted else ""
        v["image_size"] = st.select_slider(
            "input size (pixels a side)", pos["image_size"], key="k_image_size", disabled=own and not app,
            format_func=lambda n: f"own ({h}×{w})" if n == 0 else f"{n}×{n}",
            help="Images are resized when the model is built: the layer plan, MACs and latency follow"
                 + (" — set by the network: its input size" if own and not app else
                    f" (at least {sources.MIN_SIDE} for a keras.applications architecture)" if app else ""))
        v["colour"] = st.radio("colour", COLOURS, horizontal=True, key="k_colour", disabled=c == 1 or own,
                               help="grey: colour images become one channel (a third of the first conv's work); rgb: "
                                    "grey ones repeated in three" + (" — set by the network: its input channels"
                                                                     if own else ""))
        if v["image_size"]:
            h = w = v["image_size"]
        lo, hi = BOUNDS["depth"]
        padding = state.get("k_padding", DEFAULT.padding)
        depths = list(range(lo, min(architecture.max_depth(h, w, padding), hi) + 1)) or [lo]
        if state.get("k_depth") not in depths:
            state["k_depth"] = min(DEFAULT.depth, depths[-1])
        v["depth"] = st.radio("depth (conv blocks)", depths, horizontal=True, key="k_depth", disabled=own, help=why or None)
        v["width"] = st.select_slider("width (filters of block 1)", pos["width"], key="k_width", disabled=own,
                                      help=why or None)
        v["conv"] = st.radio("convolution", CONV_KINDS, horizontal=True, key="k_conv", disabled=own, help=why or None)
        v["padding"] = st.radio("padding", PADDINGS, horizontal=True, key="k_padding", disabled=own,
                                help="same: each conv keeps the image's border, so later blocks see larger maps "
                                     "(more accuracy, more MACs) and deeper stacks fit" + why)
        v["dense"] = st.select_slider("dense units", pos["dense"], key="k_dense", disabled=own, help=why or None)
        v["head"] = st.radio("head", HEADS, horizontal=True, key="k_head", disabled=own,
                             help="flatten + dense (the reference), or global average pooling + dense: one value "
                                  "per channel reaches the dense layer, so it has far fewer parameters" + why)
        st.header("Optimizations")
        v["channels"] = st.slider("channel pruning (share of filters removed)", *BOUNDS["channels"], step=0.25,
                                  key="k_channels", disabled=own, help="Removes each conv's and the dense layer's "
                                  "weakest filters (L1 norm), then fine-tunes: less work on any CPU" + why)
        v["sparsity"] = st.slider("magnitude pruning sparsity", *BOUNDS["sparsity"], step=0.05, key="k_sparsity",
                                  disabled=converted,
                                  help="Zeroes single weights: a smaller gzipped file, the same work on this CPU" + as_is)
        v["schedule"] = st.radio("pruning schedule", SCHEDULES, horizontal=True, key="k_schedule",
                                 disabled=v["sparsity"] == 0 or converted)
        v["clusters"] = st.select_slider("weight clusters (0 = off)", pos["clusters"], key="k_clusters",
                                         disabled=converted, help=as_is or None)
        v["quant"] = st.selectbox("quantization", QUANT_MODES, key="k_quant", disabled=converted, help=as_is or None)
        int8 = v["quant"] in ("int8", "qat-int8")
        layers = knobs.precision_choices(state["k_precision"], own, state.get("k_depth", BOUNDS["depth"][1]))
        if state["k_precision"] not in layers or not int8:
            state["k_precision"] = "full"
        v["precision"] = st.selectbox(
            "int8 precision per layer", layers, key="k_precision", disabled=not int8, format_func=knobs.precision_name,
            help="Full int8 quantizes every layer. Some layers run slower in int8 than in float on some CPUs (a first "
                 "convolution with one input channel, on AVX-512 Xeons): 'auto' keeps in float the layers that the "
                 "int8 and fp32 siblings' op profiles, measured on this host, show slower in int8. 'At most D points "
                 "below fp32' also keeps in float the fewest layers that bring int8 within D points of validation "
                 "accuracy (chosen from the int8 sibling's per-layer error)")
        st.header("Training")
        v["epochs"] = st.slider("epochs", BOUNDS["epochs"][0], min(MAX_EPOCHS, BOUNDS["epochs"][1]), key="k_epochs")
        v["tune_epochs"] = st.slider("fine-tune epochs (pruning, clustering, QAT)", BOUNDS["tune_epochs"][0],
                                     min(knobs.TUNE_EPOCHS_MAX, BOUNDS["tune_epochs"][1]), key="k_tune_epochs")
        v["batchnorm"] = st.toggle("batch normalization", key="k_batchnorm", disabled=own, help=why or None)
        v["dropout"] = st.slider("dropout", *BOUNDS["dropout"], step=0.1, key="k_dropout", disabled=own,
                                 help=why or None)
        flips = " and horizontal flips" if datasets.info(dataset).flips else ""
        v["augment"] = st.toggle("data augmentation", key="k_augment",
                                 help=f"Random shifts of up to 8 % of a side{flips}, applied to the training images only")
        v["class_weight"] = st.radio("class weights", CLASS_WEIGHTS, horizontal=True, key="k_class_weight",
                                     help="balanced: each class counts as much in the loss, however rare")
        with st.expander("Advanced"):
            v["patience"] = st.slider("early stopping patience (epochs, 0 = off)", *BOUNDS["patience"],
                                      key="k_patience")
            v["min_steps"] = st.select_slider("train small datasets for at least (batches)", pos["min_steps"],
                                              key="k_min_steps")
            v["learning_rate"] = st.select_slider("learning rate (Adam)", pos["learning_rate"], key="k_learning_rate")
            v["batch_size"] = st.select_slider("batch size", pos["batch_size"], key="k_batch_size")
            v["seed"] = st.number_input("seed", *BOUNDS["seed"], key="k_seed")
    if own:  # the family's knobs say why they are off; the spec takes their defaults and the network's input
        v.update({f: getattr(DEFAULT, f) for f in sources.FAMILY_FIELDS})
        if converted:
            v.update(sparsity=0.0, clusters=0, quant="fp32", precision="full")
    return v


REPEAT_SEEDS = 3  # "Repeat with 3 seeds": as NAS-Bench-101/201 train every architecture
SMALL_SPLIT_HALF_WIDTH = 0.01  # ±1 point: beyond it, a test split is said to be too small to rank close variants


def delta_card(v: VariantRecord, base: VariantRecord | None) -> None:
    """The measured figures, with ratios against the fp32 unpruned model of the same architecture."""
    lat, bl = v.latency, base.latency if base else None
    st.subheader(v.label)
    if (warning := sources.chance_warning(v.spec, v.accuracy, len(v.class_names))):
        st.warning(warning)
    c = st.columns(4)
    sure = results.intervals_of(v)
    paired = None
    if base is not None:
        paired = significance.Evidence.read(loading.store(), v.dataset, [base.key, v.key]).paired(
            {"key": base.key, "dataset": base.dataset}, {"key": v.key, "dataset": v.dataset})
    delta = None if base is None else (f"{(v.accuracy - base.accuracy) * 100:+.1f} pts"
                                       + ("" if paired is None else " (significant)" if paired.significant else " (a tie)"))
    c[0].metric("Test accuracy", sure["accuracy"].text(), delta,
                help=f"95 % Wilson interval over the {v.test_images:,} test images. Against the baseline: "
                     + (significance.delta_text(paired, (v.accuracy - base.accuracy) * 100) if base else "none built"))
    if lat:
        c[1].metric("Latency p50", f"{lat.p50_us:.1f} µs", f"{bl.p50_us / lat.p50_us:.2f}× speed-up" if bl else None,
                    delta_color="off", help=captions.latency_text(lat, 2))
        c[2].metric("p90 / p99", f"{lat.p90_us:.1f} / {lat.p99_us:.1f} µs")
        c[3].metric(f"Throughput (batch {lat.throughput_batch})", f"{lat.throughput_ips:,.0f} img/s")
    c = st.columns(4)
    c[0].metric("Size", f"{v.size_kb:,.1f} KB", f"{base.size_bytes / v.size_bytes:.2f}× smaller" if base else None,
                delta_color="off")
    c[1].metric("Gzipped", f"{v.gzip_kb:,.1f} KB", f"{base.gzip_bytes / v.gzip_bytes:.2f}× smaller" if base else None,
                delta_color="off")
    c[2].metric("Non-zero parameters", f"{v.nonzero_params:,}", f"of {v.params:,}", delta_color="off")
    c[3].metric("MACs per image", f"{v.macs:,}")
    if base is None and (v.spec.quant != "fp32" or v.spec.is_tuned):
        st.caption("Build the fp32, unpruned variant of this architecture to see speed-up and size ratios.")
    c = st.columns(4)
    c[0].metric("Balanced accuracy", sure["balanced_accuracy"].text(), help="Mean recall over classes (95 % bootstrap interval)")
    c[1].metric("Macro F1", sure["macro_f1"].text(), help="95 % bootstrap interval over the test images")
    weakest, recall = v.weakest_class
    c[2].metric(f"Weakest class: {weakest}", f"{recall:.3f}", help="The recall of the class recognized worst")
    if v.memory is not None:
        c[3].metric("Peak RAM", f"{v.peak_ram_kb:,.1f} KB",
                    f"{base.peak_ram_kb / v.peak_ram_kb:.2f}× less" if base is not None and base.memory else None,
                    delta_color="off", help="TensorFlow Lite Micro's tensor arena, planned from the .tflite (Details "
                    "shows it op by op); flash = the size above"
                    + (f". TFLite Micro cannot run it ({', '.join(v.memory.micro_blockers)})"
                       if v.memory.micro_blockers else ""))
    if sure["accuracy"].half_width > SMALL_SPLIT_HALF_WIDTH:
        st.warning(f"Small test split: {v.test_images:,} images give this accuracy a 95 % interval of "
                   f"±{sure['accuracy'].half_width * 100:.1f} points, so variants closer than that cannot be told "
                   "apart here (a larger upload narrows it).")
    st.caption(captions.host_caption() + " p50: " + captions.latency_text(lat, 2) + ".")
    captions.why_lines(v, loading.load_results())


def load_record(spec: VariantSpec) -> VariantRecord | None:
    """A cached variant, with this host's latency, else another host's while the worker measures here."""
    s = loading.store()
    key = spec.key()
    if not s.has("variants", key):
        return None
    v = record.load(s, key, host.current().id)
    if not v.measured_here(host.current().id):
        jobs.executor().submit(JobRequest.measure(key, v.label, s), jobs.requester())
    return v


@st.fragment(run_every=1.0)
def preview_progress(job_id: int) -> None:
    """Waits for the worker's latency preview; the page reruns with the band once it is stored."""
    job = jobs.executor().progress(job_id)
    if job is None or not job.live:
        st.rerun()
    st.caption(f":material/timer: Measuring the untrained architecture ({job.label}): {job.message} (a few seconds)")


def where_it_lands(spec: VariantSpec, cached: bool) -> None:
    """The Pareto chart of the spec's dataset, with this variant: its point if built, else its previewed
    latency as a band (accuracy is unknown until it is trained)."""
    target = target_view.target_picker()  # the chart and the band in a measurement target's latencies
    here = target.host if target else host.current()
    res = loading.load_results(host_id=here.id)
    df = results.group_seeds(res.table[res.table["dataset"] == spec.dataset]).dropna(subset=["p50_us"]).reset_index(drop=True)
    band = None
    if not cached:
        made = preview.read(spec, target=target)
        if made is None:
            job = jobs.executor().submit(JobRequest.preview(spec, target), jobs.requester())
            preview_progress(job.id)
        else:
            lo, hi = made.latency.p50_ci_us
            band = {"p50": made.latency.p50_us, "lo": lo, "hi": hi, "label": spec.label()}
    if df.empty and band is None:
        return
    front = results.front(df, "p50_us")
    fig = figures.pareto(df, front, "p50_us", highlight=spec.key() if cached else None,
                         host_label=here.label, preview=band, height=420)
    st.plotly_chart(fig, key="explore_chart", width="stretch")
    if band is not None:
        st.caption(f"Band: **{spec.label()}** untrained, converted to {spec.quant} and timed on "
                   f"{'target ' + target.name if target else 'this host'}: p50 "
                   f"{band['p50']:.1f} µs (95 % interval {band['lo']:.1f}–{band['hi']:.1f}). Latency does not depend "
                   "on what the weights learned, so training will land it on this band; where on it (accuracy) "
                   "is what training tells.")


@st.fragment(run_every=1.0)
def build_progress(job_id: int) -> None:
    """Polls the queue (the worker writes progress there); the whole page reruns when the job ends."""
    job = jobs.executor().progress(job_id)
    if job is None or not job.live:
        st.rerun()
    with st.status(f"Building {job.label} — {job.stage}", expanded=True):
        st.progress(job.fraction, text=job.message)
        mine = job.waited_by(jobs.requester())
        others = len(job.requesters) - mine
        where = (f"Trains on the Ray cluster at {cluster}; the worker process (pid {job.worker_pid or '…'}) writes "
                 "and times the result here." if (cluster := actions.ray_address()) else
                 f"Runs in the worker process (pid {job.worker_pid or '…'}), not in this web server.")
        st.caption(where
                   + (f" {others} other session{'s' if others > 1 else ''} also wait{'' if others > 1 else 's'} for it:"
                      " cancelling withdraws only your request." if others else ""))
        if mine and st.button("Cancel", key="cancel"):
            jobs.executor().cancel(job.id, jobs.requester())
            st.session_state["cancelled"] = job.id
            st.rerun()


st.title("Explore a variant")
params = sharing.incoming_link("explore")
if params:  # a link: the variant's fields that differ from the defaults
    linked, problems = links.parse_spec(params)
    problems = links.unknown(params, links.SPEC_FIELDS, []) + problems
    st.session_state["explore_link_problems"] = problems + (knobs.set_knobs(linked) if linked else [])
sharing.show_link_problems(st.session_state.get("explore_link_problems", []))
values = knobs_ui()
try:
    model = values.pop("model")
    asked = VariantSpec(**values)
    if model:  # the network's input size and colour (no TensorFlow here: its layers are known once built)
        asked = sources.on_source(asked, model)
    info = datasets.info_for(asked)
    source = sources.for_spec(asked)
    source.check(asked, info.input_shape, info.num_classes)
    layers = None if model else architecture.check(asked, info.input_shape, info.num_classes)
    auto = auto_precision.auto_precision(asked, loading.store()) if asked.is_auto else None
    spec = asked if auto is None or auto.bound_pending else auto.chosen  # "auto" becomes this host's choice once
    # it can be made (a bound's layers are chosen in the build: until then the build is of the asked spec)
except (SpecError, datasets.DatasetError) as exc:
    st.error(f"Cannot build this variant — {exc}")
    st.stop()

key = spec.key()
cached = loading.store().has("variants", key)
if cached:
    try:
        loading.store().verify("variants", key)
    except CacheError as exc:  # the worker's build replaces a damaged entry (stages are reused)
        st.warning(f"The cached copy is damaged ({exc}); building it again replaces it.")
        cached = False
sharing.write_link("explore", links.spec_params(asked), "A link to these knobs:")
if auto:
    st.caption(f":material/memory: Per-layer precision **{asked.precision}** on this host: {auto.text()}")
st.write(f"**{spec.label()}** — "
         + (f"{architecture.total_params(layers):,} parameters, {architecture.total_macs(layers):,} multiply-accumulates "
            f"per image. " if layers is not None else f"{source.kind} network on {info.input_shape[0]}×"
            f"{info.input_shape[1]}×{info.input_shape[2]} images (its parameters and MACs are counted when it is built). ")
         + (":material/check_circle: In the cache: loads instantly." if cached
            else ":material/construction: Not built yet" + (
                (f": it will be trained on the Ray cluster at {actions.ray_address()}." if actions.ray_address()
                 else ": it will be trained on this machine.") if roles.access().can_act else ".")))
defaults_card.card(asked)

ex = jobs.executor()
ex.ensure_worker()  # TensorFlow loads in the worker while the knobs are being picked
job = ex.queue.latest("build", key)
if job is not None and job.live:
    ex.progress(job.id)  # reaps a job whose worker died
    job = ex.queue.get(job.id)
live = job is not None and job.live
can_build = roles.access().can_act
if cached:
    st.session_state["shown"] = key  # loading is instant: its result shows at once
elif not can_build:
    st.caption(":material/visibility: Building needs the owner's link on this shared server; its latency preview "
               "is below.")
elif st.button("Train and measure", type="primary", disabled=live):
    try:
        queued = actions.build([spec])
    except ValueError as exc:
        st.error(str(exc))
        st.stop()
    if queued:
        job, live = queued[0], True

if live:
    build_progress(job.id)
elif job is not None and job.state == "failed" and not cached:
    st.error(job.message)
elif job is not None and job.state == "cancelled" and st.session_state.get("cancelled") == job.id:
    st.info("Cancelled. Nothing was saved for this variant.")  # only to the session that cancelled
elif job is not None and job.state == "done" and cached and st.session_state.get("built") != job.id:
    st.session_state["built"] = job.id  # show a build's result once it lands, without another click
    st.session_state["shown"] = key

if st.session_state.get("shown") == key:
    try:
        shown = load_record(spec)
    except Exception as exc:  # a damaged entry or a full disk: a message, not a traceback
        st.error(f"Could not load {spec.label()}: {exc}")
        st.stop()
    if shown is not None:
        base_spec = spec.replace(channels=0.0, sparsity=0.0, clusters=0, quant="fp32")
        if base_spec.key() == key:
            delta_card(shown, None)
            st.caption("This is the baseline (fp32, no pruning or clustering) of its architecture.")
        else:
            delta_card(shown, load_record(base_spec))
        left, right = st.columns(2)
        if left.button("Open in Details"):
            st.session_state["detail_key"] = key
            st.switch_page("pages/details.py")
        others = [spec.replace(seed=spec.seed + i) for i in range(1, REPEAT_SEEDS)]
        missing = [o for o in others if not any(loading.store().has(k, o.key()) for k in ("variants", "evidence"))]
        if can_build and right.button(f"Repeat with {REPEAT_SEEDS} seeds", disabled=not missing,
                                      help="Train the same variant with other seeds: the charts then show it as one "
                                           "point, the mean with the range a new seed falls in, instead of one draw"
                                           + ("" if missing else f" (all {REPEAT_SEEDS} are built)")):
            try:
                queued = actions.build(missing)
            except ValueError as exc:
                st.error(str(exc))
            else:
                if queued:
                    st.toast(f"Queued {len(missing)} more seed{'s' if len(missing) > 1 else ''}: the Pareto page "
                             "groups them with this one as they land")

st.subheader("Where it lands")
where_it_lands(spec, cached)
