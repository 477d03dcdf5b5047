"""Build a variant through its cached stages: train base -> prune/cluster -> (QAT) -> convert -> measure.

    >>> variant, report = ensure(VariantSpec(depth=2, sparsity=0.5, quant="int8"))

Each stage is looked up in the cache before it is built, under a per-key lock, so a sweep over
quantization modes trains once and two processes asking for one variant build it once. Intermediate
stages keep only weights (the model is rebuilt from the spec, never deserialized from a file).
"""

from __future__ import annotations

import dataclasses
import os
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Callable

import numpy as np

from explorer.models import architecture, lever_errors, sources
from explorer.run import accuracy_bound, auto_precision, blame
from explorer.data import datasets
from explorer.measure import gate, host, measure, memory, pool, profile, resident, targets
from explorer.store.cache import PREDICTIONS, TFLITE, WEIGHTS, CacheError, Store
from explorer import uncertainty
from explorer.record import Latency, Layer, VariantRecord
from explorer.spec import SpecError, VariantSpec, library_versions

LATENCY_IMAGES = 64
# Evaluation runs in batches of at most 256 images, fewer where one activation of a batch would pass this:
# a 128x128 colour model evaluated 256 (TFLite) and 512 (Keras) at a time peaked at 2.5 GB of memory.
EVAL_BATCH_BYTES = 64 * 2**20


@dataclass(frozen=True)
class Progress:
    stage: str  # prepare | train | channels | prune | cluster | qat | convert | evaluate | measure | done
    fraction: float  # of the whole build, 0..1
    message: str
    epoch: int | None = None  # at a training epoch's end: the epoch (1-based) of this stage …
    epochs: int | None = None  # … of how many …
    val_accuracy: float | None = None  # … its validation accuracy …
    epoch_seconds: float | None = None  # … and how long it took


ProgressFn = Callable[[Progress], None]


@dataclass
class BuildReport:
    """What one ensure() call did: which stages it built and which it found in the cache."""

    built: list[str] = field(default_factory=list)
    reused: list[str] = field(default_factory=list)
    seconds: dict[str, float] = field(default_factory=dict)
    where: str = ""  # the Ray node that built it (explorer.run.cluster); empty: this process

    @property
    def trained(self) -> bool:
        return any(s in self.built for s in ("base", "tuned", "qat"))


class _Reporter:
    """Maps each stage's own 0..1 progress onto the whole build, by the stage's expected share of the time."""

    def __init__(self, shares: dict[str, float], on_progress: ProgressFn | None):
        self.on_progress = on_progress
        total = sum(shares.values()) or 1.0
        self.offsets, acc = {}, 0.0
        for name, w in shares.items():
            self.offsets[name] = (acc / total, w / total)
            acc += w

    def stage(self, name: str) -> Callable[..., None]:
        start, share = self.offsets.get(name, (1.0, 0.0))

        def report(fraction: float, message: str, **epoch_end) -> None:
            if self.on_progress:
                self.on_progress(Progress(name, min(1.0, start + share * fraction), message, **epoch_end))

        return report


def _stages(spec: VariantSpec) -> list[tuple[str, str, VariantSpec]]:
    """The training stages a variant is converted from, in build order: (kind, key, the stage's spec)."""
    chain = [("base", spec.base_key(), spec.replace(channels=0.0, sparsity=0.0, clusters=0, schedule="constant"))]
    if spec.is_tuned:
        chain.append(("tuned", spec.tuned_key(), spec))
    return chain


def stage_keys(spec: VariantSpec) -> list[tuple[str, str]]:
    """The (kind, key) of each training stage the variant is converted from."""
    return [(kind, key) for kind, key, _ in _stages(spec)]


def _stages_to_train(spec: VariantSpec, store: Store, reuse: bool) -> list[str]:
    """The kinds of stage a build will train: every stage after the last one already cached."""
    chain = _stages(spec)
    for i in range(len(chain) - 1, -1, -1):
        kind, key, _ = chain[i]
        if reuse and store.has(kind, key):
            return [k for k, _, _ in chain[i + 1:]]
    return [k for k, _, _ in chain]


def _stage_shares(spec: VariantSpec, store: Store, reuse: bool) -> dict[str, float]:
    """Expected relative cost of each step still to do (training dominates), for the progress bar."""
    shares: dict[str, float] = {}
    if not store.has("variants", spec.key()):
        shares["prepare"] = 0.3  # importing TensorFlow and decoding the data: seconds
        to_train = _stages_to_train(spec, store, reuse)
        if "base" in to_train:
            shares["train"] = spec.epochs
        for stage in spec.fine_tunes():  # the tuned stage's only when it is not cached; QAT whenever it is asked
            if stage == "qat" or "tuned" in to_train:
                shares[stage] = (1.5 if stage == "qat" else 1.0) * spec.tune_epochs
        shares.update(convert=0.5, evaluate=0.2)
    shares["measure"] = 0.5
    return shares


def _load_weights(store: Store, kind: str, key: str, spec: VariantSpec, info: datasets.DatasetInfo):
    from explorer.models import model as model_lib

    meta = store.verify(kind, key)
    m = sources.for_spec(spec).build(spec, info.input_shape, info.num_classes)
    model_lib.load_weights(m, store.file_path(kind, key, WEIGHTS))
    return m, meta


def _save_weights(store: Store, kind: str, key: str, m, meta: dict) -> None:
    from explorer.models import model as model_lib

    store.write(kind, key, meta, lambda d: model_lib.save_weights(m, d / WEIGHTS))


def _stage_model(spec: VariantSpec, store: Store, reporter: _Reporter, report: BuildReport, reuse: bool):
    """The trained (and pruned/clustered) Keras model a variant is converted from, and the training
    histories of its stages (base, then each fine-tune)."""
    from explorer.models import channels, cluster, model as model_lib, prune, train

    info = datasets.info_for(spec)
    source = sources.for_spec(spec)
    chain = _stages(spec)
    kind, key, _ = chain[-1]
    with store.lock(kind, key):
        if reuse and store.has(kind, key):
            try:
                m, meta = _load_weights(store, kind, key, spec, info)
                report.reused.append(kind)
                return m, meta.get("history", {})
            except (CacheError, OSError, ValueError):
                store.remove(kind, key)  # damaged: rebuild below
        if spec.is_tuned:
            base_spec = chain[0][2]
            m, history = _stage_model(base_spec, store, reporter, report, reuse)
        else:
            data = source.data(spec)
            m = source.build(spec, info.input_shape, info.num_classes)
            t0 = time.perf_counter()
            with lever_errors.failing_as("training", spec.model):
                history = {"base": train.train_base(m, data, spec, reporter.stage("train"))}
            report.seconds["train"] = time.perf_counter() - t0
            report.built.append("base")
            if reuse:
                _save_weights(store, "base", key, m, {"kind": "base", "spec": spec.base_fields(),
                                                      "history": history})
            return m, history
        data = source.data(spec)
        history = dict(history)
        if spec.channels:
            t0 = time.perf_counter()
            narrow = model_lib.build(spec.replace(sparsity=0.0, clusters=0), info.input_shape, info.num_classes)
            kinds = [lp.kind for lp in architecture.plan(base_spec, info.input_shape, info.num_classes)]
            channels.narrow(m, narrow, kinds, spec.channels)
            m = narrow
            history["channels"] = train.fine_tune(m, data, spec, reporter.stage("channels"),
                                                  f"Fine-tuning after removing {spec.channels:.0%} of the channels",
                                                  lr_scale=0.3)
            report.seconds["channels"] = time.perf_counter() - t0
        if spec.sparsity:
            t0 = time.perf_counter()
            with lever_errors.failing_as("pruning", spec.model):
                m = prune.prune(m, data, spec, reporter.stage("prune"))
            report.seconds["prune"] = time.perf_counter() - t0
        if spec.clusters:
            t0 = time.perf_counter()
            with lever_errors.failing_as("clustering", spec.model):
                m = cluster.cluster(m, data, spec, reporter.stage("cluster"))
            report.seconds["cluster"] = time.perf_counter() - t0
        report.built.append("tuned")
        if reuse:
            _save_weights(store, "tuned", key, m, {"kind": "tuned", "spec": spec.tuned_fields(), "history": history})
        return m, history


def weight_counts(m) -> tuple[int, int, dict[str, float]]:
    """Total and non-zero parameters, and the sparsity of each layer's kernel."""
    total = nonzero = 0
    per_layer = {}
    for layer in m.layers:
        for w in layer.get_weights():
            total += w.size
            nonzero += int(np.count_nonzero(w))
        kernels = [w for w in layer.weights if "kernel" in w.name]
        if kernels:
            k = np.concatenate([v.numpy().ravel() for v in kernels])
            per_layer[layer.name] = float(1 - np.count_nonzero(k) / k.size)
    return total, nonzero, per_layer


def _quantization_aware(m, spec: VariantSpec, data: datasets.Dataset, reporter: _Reporter, report: BuildReport):
    """The model a variant is converted from: the stage model, or for qat-int8 that model after QAT."""
    from explorer.models import quantize

    if spec.quant != "qat-int8":
        return m
    t0 = time.perf_counter()
    with lever_errors.failing_as("quantization-aware training", spec.model):
        m = quantize.qat(m, data, spec, reporter.stage("qat"))
    report.seconds["qat"] = time.perf_counter() - t0
    report.built.append("qat")
    return m


def choose_bound(int8: VariantSpec, max_drop: float, store: Store, on_progress: ProgressFn | None) -> None:
    """Choose the layers the full-int8 variant int8 keeps in float to lose at most max_drop points, from the model
    it is converted from, and keep them in its record (explorer.run.accuracy_bound)."""
    reporter = _Reporter({"qat": 1.0, "bound": 1.0}, on_progress)
    reporter.stage("bound")(0.0, f"Choosing the layers to keep in float for at most {max_drop:g} points lost")
    info, source = datasets.info_for(int8), sources.for_spec(int8)
    m, _ = _stage_model(int8, store, reporter, BuildReport(), reuse=True)
    allowed = {lp.name for lp in source.layers(int8, info.input_shape, info.num_classes, built=m)}
    data = source.data(int8)
    m = _quantization_aware(m, int8, data, reporter, BuildReport())
    errors = VariantRecord.from_meta(store.verify("variants", int8.key())).quant_error
    if errors is None:  # built before per-layer error was measured: measured now, and kept
        tflite = store.file_path("variants", int8.key(), TFLITE).read_bytes()
        errors = blame.quant_error_of(m, int8, data, tflite, info.num_classes)
        if errors is None:
            raise SpecError("precision", f"auto:{max_drop:g} needs the int8 sibling's per-layer error, which could "
                                         "not be measured on this network (the log says why)", int8.precision)
        store.amend_meta("variants", int8.key(),
                         lambda meta: {**meta, "metrics": {**meta["metrics"], "quant_error": errors.to_dict()}})
    bound = accuracy_bound.choose(m, int8, data, errors, allowed, max_drop, info.num_classes)
    accuracy_bound.keep(store, int8.key(), bound)


def _build_variant(spec: VariantSpec, store: Store, reporter: _Reporter, report: BuildReport,
                   reuse: bool) -> tuple[VariantRecord, bytes, bytes]:
    """The variant's record, its .tflite bytes and its test predictions (one byte per image), built from the
    (cached) stage model, or, for a source that is a converted model already, that model as it is."""
    from explorer.models import quantize

    info = datasets.info_for(spec)
    source = sources.for_spec(spec)
    data = source.data(spec)
    if source.converted:
        m, history = None, {}
        layers = source.layers(spec, info.input_shape, info.num_classes)
        tflite = source.tflite()
        total = nonzero = sum(lp.params for lp in layers)
        per_layer = {}
    else:
        m, history = _stage_model(spec, store, reporter, report, reuse)
        layers = source.layers(spec, info.input_shape, info.num_classes, built=m)
        total, nonzero, per_layer = weight_counts(m)
        m = _quantization_aware(m, spec, data, reporter, report)
        reporter.stage("convert")(0.0, f"Converting to TFLite ({spec.quant})")
        t0 = time.perf_counter()
        with gate.machine().shared(), lever_errors.failing_as("conversion", spec.model):  # CPU: never while timing
            tflite = quantize.to_tflite(m, spec.quant, data.x_train, keep_float=float_layers_of(spec))
        report.seconds["convert"] = time.perf_counter() - t0
    reporter.stage("evaluate")(0.0, f"Evaluating the TFLite model on {len(data.x_test):,} test images")
    batch = int(np.clip(EVAL_BATCH_BYTES // max(architecture.largest_activation_bytes(layers), 1), 8, 256))
    t0 = time.perf_counter()
    with gate.machine().shared():
        ev = measure.evaluate(tflite, data.x_test, data.y_test, info.num_classes, batch)
        keras_acc = ev.accuracy if m is None else float(
            (m.predict(data.x_test, batch_size=2 * batch, verbose=0).argmax(1) == data.y_test).mean())
    report.seconds["evaluate"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    if spec.quant in ("int8", "qat-int8") and m is not None:
        reporter.stage("evaluate")(1.0, "Measuring each layer's int8 error against float on validation images")
    errors = blame.quant_error_of(m, spec, data, tflite, info.num_classes, () if m is None else float_layers_of(spec))
    if errors is not None:
        report.seconds["quant_error"] = time.perf_counter() - t0
    built = VariantRecord(
        key=spec.key(), spec=spec, dataset=info.name, input_shape=tuple(info.input_shape),
        class_names=tuple(info.class_names), test_images=int(len(data.x_test)), accuracy=ev.accuracy,
        keras_accuracy=keras_acc, per_class_accuracy=tuple(ev.per_class), confusion=tuple(map(tuple, ev.confusion)),
        size_bytes=len(tflite), gzip_bytes=measure.gzipped_size(tflite), params=total, nonzero_params=nonzero,
        macs=architecture.total_macs(layers), layer_sparsity=per_layer,
        layers=tuple(Layer(lp.name, lp.kind, tuple(lp.output_shape), lp.params, lp.macs) for lp in layers),
        stages={"base": spec.base_key(), "tuned": spec.tuned_key()}, build_seconds=dict(report.seconds),
        versions=library_versions(), built_on=host.current().to_dict(),
        built_at=datetime.now(timezone.utc).isoformat(timespec="seconds"), history=history,
        fallback_ops=tuple(profile.fallbacks(tflite)), intervals=uncertainty.interval_columns(ev.confusion),
        memory=memory.plan(tflite), quant_error=errors)
    return built, tflite, ev.predictions.tobytes()


def time_isolated(model: bytes, images: np.ndarray, threads: int = 1, quick: bool = False,
                  **latency_kwargs) -> Latency:
    """The latency of a .tflite model on this host, timed in isolation, with how quiet the machine was.

    The machine's CPU gate is held throughout, so no training step of any build on this machine runs
    meanwhile (builds pause at their next batch); the thread is pinned to one core where the OS allows.
    The per-op profile (explorer.measure.profile) and the resident memory are taken in the same quiet window.
    quick: the first pass of a new host (measure.QUICK, no throughput, profile or resident memory), provisional.
    """
    if quick:
        latency_kwargs = {**latency_kwargs, **measure.QUICK, "with_throughput": False}
    with gate.machine().exclusive(), host.pinned_to_one_core() as core:
        before, load = host.cpu_snapshot(), os.getloadavg()[0]
        timed = measure.latency(model, images, threads=threads, **latency_kwargs)
        by_op = None if quick else profile.profile(model, images[0], threads, model_us=timed["p50_us"])
        after = host.cpu_snapshot()
        rss, rss_note = ((None, "not measured in the quick first pass") if quick else
                         resident.increase(lambda: pool.TimingPool(1), model, images[0], threads))
    return Latency.from_measurement(timed, host.measurement_context(threads), pinned_core=core, loadavg_1m=load,
                                    other_cpu_share=host.other_cpu_share(before, after, host.current().cores),
                                    ops=[dataclasses.asdict(o) for o in by_op.ops] if by_op else [],
                                    ops_total_us=by_op.total_us if by_op else None,
                                    rss_increase_bytes=rss, rss_note=rss_note, provisional=quick)


def latency_images(input_shape: tuple[int, ...]) -> np.ndarray:
    """Pixel values do not change the work a CNN does; fixed noise keeps (re-)measuring data-free."""
    return np.random.default_rng(0).random((LATENCY_IMAGES, *input_shape), dtype=np.float32)


def float_layers_of(spec: VariantSpec) -> tuple[str, ...]:
    """The layers a resolved spec keeps in float (resolve_precision turns "auto" into them first)."""
    if spec.is_auto:
        raise ValueError("precision auto must be resolved on the target host first (resolve_precision)")
    return () if spec.precision == "full" else tuple(spec.precision.split("+"))


def measure_latency(store: Store, variant: VariantRecord, threads: int = 1,
                    on_progress: Callable[[float, str], None] | None = None, target: targets.Target | None = None,
                    quick: bool = False, **latency_kwargs) -> Latency:
    """Time a cached variant on this host, in isolation (or on a measurement target, through its agent), and
    record it in the entry's latency/ folder under the host it was measured on. quick: a provisional first
    pass (this host only; see time_isolated)."""
    remote = target is not None and not target.is_local
    if on_progress:
        on_progress(0.0, f"Measuring batch-1 latency of {variant.label} on "
                         + (f"target {target.name}" if remote else host.current().label))
    model = store.file_path("variants", variant.key, TFLITE).read_bytes()
    images = latency_images(variant.input_shape)
    lat = (targets.measure_latency(target, model, images, threads, **latency_kwargs) if remote
           else time_isolated(model, images, threads, quick=quick, **latency_kwargs))
    store.write_latency(variant.key, lat.host_id, lat.to_dict(), threads)
    if on_progress:
        on_progress(1.0, f"p50 {lat.p50_us:.1f} µs" + (" (noisy)" if lat.noisy else ""))
    return lat


def ensure(spec: VariantSpec, store: Store | None = None, on_progress: ProgressFn | None = None, *,
           threads: int = 1, reuse: bool = True, measure_missing: bool = True,
           latency_kwargs: dict | None = None) -> tuple[VariantRecord, BuildReport]:
    """The variant's record (with this host's latency), building whatever the cache lacks.

    reuse=False builds every stage afresh and keeps only the final variant (for benchmarks).
    The spec is checked against its dataset before anything is written.
    """
    store = store or Store()
    info = datasets.info_for(spec)
    source = sources.for_spec(spec)
    source.check(spec, info.input_shape, info.num_classes)  # raises SpecError if it cannot fit
    report = BuildReport()
    if spec.is_auto:
        auto = auto_precision.auto_precision(spec, store)
        if auto.bound_pending:  # the layers for accuracy: chosen once, from the model, kept in the int8 record
            choose_bound(spec.replace(precision="full"), spec.max_drop, store, on_progress)
            auto = auto_precision.auto_precision(spec, store)
        if not auto.timed:  # build and time the candidate here first: the profiles only predict
            for option in (auto.candidate, auto.alternative):
                if option is not None:
                    _, report = ensure(option, store, on_progress, reuse=reuse, latency_kwargs=latency_kwargs)
            auto = auto_precision.auto_precision(spec, store)
        if on_progress:
            on_progress(Progress("prepare", 0.0, f"Precision {spec.precision}: {auto.text()}"))
        spec = auto.chosen
    named = ({lp.name for lp in source.layers(spec, info.input_shape, info.num_classes)}
             if spec.precision != "full" else set())
    unknown = sorted(set(float_layers_of(spec)) - named)
    if unknown:
        raise SpecError("precision", f"no layer {', '.join(unknown)} here; the layers are "
                                     f"{', '.join(sorted(named))}", spec.precision)
    key = spec.key()
    reporter = _Reporter(_stage_shares(spec, store, reuse), on_progress)
    with store.lock("variants", key):
        meta = None
        if store.has("variants", key):
            try:
                meta = store.verify("variants", key)
                report.reused.append("variant")
            except CacheError:
                store.remove("variants", key)  # damaged: rebuild it
        if meta is None:
            store.clean_stale()
            reporter.stage("prepare")(0.0, f"Loading TensorFlow and the {spec.dataset} data")
            built, tflite, predictions = _build_variant(spec, store, reporter, report, reuse)
            store.write("variants", key, built.to_meta(),
                        lambda d: ((d / TFLITE).write_bytes(tflite), (d / PREDICTIONS).write_bytes(predictions)))
            meta = store.verify("variants", key)
            report.built.append("variant")
    here = store.read_latency(key, host.current().id, threads)
    variant = VariantRecord.from_meta(meta, here)
    if here is None and measure_missing:
        t0 = time.perf_counter()
        variant = variant.with_latency(measure_latency(store, variant, threads, reporter.stage("measure"),
                                                       **(latency_kwargs or {})))
        report.seconds["measure"] = time.perf_counter() - t0
        report.built.append("latency")
    if on_progress:
        on_progress(Progress("done", 1.0, "Ready"))
    return variant, report
