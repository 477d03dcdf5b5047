"""The variant record, typed: what a built variant is, and how it measured on a host.

This module is the one reader and writer of the two stored forms: a variant's meta.json (the pipeline
writes VariantRecord.to_meta(); the store adds the key and checksums) and its latency/<host id>.json
(Latency.to_dict()). Pages, CLI, report and benchmarks read attributes, never string keys. FORMAT is
stored in meta.json; entries written before it existed are format 1, which has the same fields
(format 3 added the training histories, empty when read from older entries).
No TensorFlow, no Streamlit.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping, Protocol

from explorer.spec import VariantSpec, source_label
from explorer.uncertainty import ALPHA

REAL_DROP_POINTS = 0.5  # full int8 against float on the validation subset: less is not worth a layer in float

FORMAT = 3  # 3: training histories; 2: typed record


@dataclass(frozen=True)
class LatencyStats:
    """Batch-1 latency summary in microseconds, from per-run samples."""

    p50_us: float
    p90_us: float
    p99_us: float
    mean_us: float
    min_us: float
    runs: int

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


@dataclass(frozen=True)
class Layer:
    name: str
    kind: str
    output_shape: tuple[int, ...]
    params: int
    macs: int


@dataclass(frozen=True)
class OpTime:
    """One op of the converted model and its share of one inference (explorer.measure.profile)."""

    index: int
    name: str  # the TFLite builtin, e.g. CONV_2D
    output_shape: tuple[int, ...]
    delegated: bool  # run by XNNPACK, else by LiteRT's built-in kernel
    us: float  # difference of consecutive truncated prefixes: noise can make a tiny op slightly negative

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> OpTime:
        return cls(d["index"], d["name"], tuple(d["output_shape"]), bool(d["delegated"]), float(d["us"]))


@dataclass(frozen=True)
class MemoryStep:
    """The tensor arena while one op runs (explorer.measure.memory): what is alive, and its largest tensor."""

    op: str  # the TFLite builtin, e.g. CONV_2D
    live_bytes: int  # the buffers alive at this op, added up
    arena_bytes: int  # the arena's extent they reach (>= live_bytes when the plan leaves gaps)
    largest: str  # the largest tensor alive here, its shape, type and bytes
    largest_shape: tuple[int, ...]
    largest_dtype: str
    largest_bytes: int

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> MemoryStep:
        return cls(d["op"], d["live_bytes"], d["arena_bytes"], d["largest"], tuple(d["largest_shape"]),
                   d["largest_dtype"], d["largest_bytes"])


@dataclass(frozen=True)
class MemoryPlan:
    """Will it fit: the RAM a model needs while it runs (TFLite Micro's tensor arena: head of activations,
    tail of persistent data) and the flash it is stored in, planned from the .tflite alone."""

    head_bytes: int
    tail_bytes: int
    flash_bytes: int
    steps: tuple[MemoryStep, ...] = ()  # the arena op by op
    micro_blockers: tuple[str, ...] = ()  # why TFLite Micro cannot run it (no kernels), empty if none known

    @property
    def peak_ram_bytes(self) -> int:
        return self.head_bytes + self.tail_bytes

    @property
    def peak_ram_kb(self) -> float:
        return self.peak_ram_bytes / 1000

    @property
    def flash_kb(self) -> float:
        return self.flash_bytes / 1000

    @property
    def peak_step(self) -> tuple[int, MemoryStep] | None:
        """The op at which the most is alive (the first of ties), and its index."""
        if not self.steps:
            return None
        i = max(range(len(self.steps)), key=lambda k: (self.steps[k].live_bytes, -k))
        return i, self.steps[i]

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> MemoryPlan:
        return cls(d["head_bytes"], d["tail_bytes"], d["flash_bytes"],
                   tuple(MemoryStep.from_dict(s) for s in d.get("steps", ())), tuple(d.get("micro_blockers", ())))

    def to_dict(self) -> dict:
        d = dataclasses.asdict(self)
        d["steps"] = [{**dataclasses.asdict(s), "largest_shape": list(s.largest_shape)} for s in self.steps]
        d["micro_blockers"] = list(self.micro_blockers)
        return d


@dataclass(frozen=True)
class LayerError:
    """One op of a full-integer model: how far its int8 output is from the float model's on the same validation
    images (explorer.measure.quant_error), and what keeping its layer in float recovers."""

    index: int | None  # its op in the .tflite: the op profile's and the memory plan's order (None: not found there)
    op: str  # the TFLite builtin, e.g. CONV_2D
    layer: str  # the Keras layer it computes ("" when none is named in it)
    rmse: float  # RMSE of the int8 output against the float output, in its quantization steps (its scale)
    gain: float | None = None  # validation accuracy points recovered with this layer alone in float; None: not tried

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> LayerError:
        return cls(d["index"], d["op"], d["layer"], float(d["rmse"]), d.get("gain"))


@dataclass(frozen=True)
class QuantError:
    """Where a full-integer model's accuracy goes: per op, measured once at build on a validation subset."""

    images: int  # validation images it was measured on
    float_accuracy: float  # the float model's accuracy on them
    int8_accuracy: float  # this model's
    layers: tuple[LayerError, ...]
    p: float | None = None  # McNemar's exact test of the two on the same images (None: older record)

    @property
    def drop_points(self) -> float:
        return (self.float_accuracy - self.int8_accuracy) * 100

    @property
    def real_drop(self) -> bool:
        """Whether full int8 loses at least REAL_DROP_POINTS here, and significantly (McNemar's p under ALPHA):
        a drop worth finding the layers of, and worth marking on the Pareto chart."""
        return self.drop_points >= REAL_DROP_POINTS and self.p is not None and self.p < ALPHA

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> QuantError:
        return cls(d["images"], d["float_accuracy"], d["int8_accuracy"], tuple(LayerError.from_dict(x)
                                                                                 for x in d["layers"]), d.get("p"))

    def to_dict(self) -> dict:
        return {**dataclasses.asdict(self), "layers": [dataclasses.asdict(x) for x in self.layers]}


@dataclass(frozen=True)
class PrecisionBound:
    """The fewest layers a full-integer model keeps in float to lose at most max_drop points of validation
    accuracy against float (explorer.measure.precision_bound), found once per bound and kept in the full-int8
    variant's record: accuracy does not depend on the host, so every host reuses it."""

    max_drop: float  # points
    images: int  # validation images (quant_error's subset)
    float_accuracy: float
    int8_accuracy: float  # full int8
    layers: tuple[str, ...]  # kept in float for accuracy, in the order they were ranked
    accuracy: float  # with those layers in float
    tried: tuple[tuple[int, float], ...]  # (layers kept in float, accuracy) of each conversion tried, in order
    met: bool  # False: even every ranked layer in float loses more (the fp32 sibling is then the answer)
    seconds: float  # choosing them: conversions and evaluations

    @property
    def drop_points(self) -> float:
        return (self.float_accuracy - self.accuracy) * 100

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> PrecisionBound:
        return cls(float(d["max_drop"]), d["images"], d["float_accuracy"], d["int8_accuracy"], tuple(d["layers"]),
                   d["accuracy"], tuple((int(n), float(a)) for n, a in d["tried"]), bool(d["met"]), d["seconds"])

    def to_dict(self) -> dict:
        return {**dataclasses.asdict(self), "layers": list(self.layers), "tried": [list(t) for t in self.tried]}


def _number(value: Any) -> float:
    """A stored figure, NaN where the measurement lacks it (stored as null)."""
    return float("nan") if value is None else value


@dataclass(frozen=True)
class Latency(LatencyStats):
    """Batch-1 latency of one model on one host: the percentiles (LatencyStats), the p50's interval, and
    how and where it was taken."""

    host: Mapping[str, Any]  # id, label, cpu, cores, machine, system (explorer.measure.host.Host.to_dict)
    threads: int
    throughput_ips: float
    measured_at: str = ""
    throughput_batch: int = 64  # the batch throughput_ips was taken at (smaller for large inputs)
    p50_ci_us: tuple[float, float] | None = None  # 95 %; None for records older than the interval
    block_p50s_us: tuple[float, ...] = ()
    block_spread: float | None = None
    outlying_blocks: int = 0  # blocks set aside as bursts from other processes (not in the percentiles or interval)
    attempts: int | None = None
    noisy: bool = False
    pinned_core: int | None = None
    loadavg_1m: float | None = None
    other_cpu_share: float | None = None
    hostname: str = ""
    python: str = ""
    versions: Mapping[str, str] = field(default_factory=dict)
    target: str = ""  # the measurement target it was taken through ("": this machine's worker)
    lacks: tuple[str, ...] = ()  # figures the target's tool does not report (NaN or empty here)
    tool: Mapping[str, Any] = field(default_factory=dict)  # what a target's own tool printed (adb: benchmark_model)
    ops: tuple[OpTime, ...] = ()  # where the time goes, op by op, measured with it (empty before format 3)
    ops_total_us: float | None = None  # the whole model's p50 in the op-timing run
    rss_increase_bytes: int | None = None  # what its interpreter added to a fresh process's resident memory there
    rss_note: str = ""  # why that could not be measured (when it is None)
    samples_us: tuple[float, ...] = ()
    provisional: bool = False  # a quick first pass (explorer.measure.measure.QUICK), until the full protocol's

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Latency:
        ci = d.get("p50_ci_us")
        return cls(
            host=dict(d["host"]), p50_us=d["p50_us"], p90_us=_number(d["p90_us"]),
            p99_us=_number(d["p99_us"]), mean_us=d["mean_us"], min_us=d["min_us"], runs=d["runs"], threads=d.get("threads", 1),
            throughput_ips=_number(d.get("throughput_ips")), throughput_batch=int(d.get("throughput_batch", 64)),
            measured_at=d.get("measured_at", ""),
            p50_ci_us=tuple(ci) if ci else None, block_p50s_us=tuple(d.get("block_p50s_us", ())),
            block_spread=d.get("block_spread"), outlying_blocks=int(d.get("outlying_blocks", 0)), attempts=d.get("attempts"), noisy=bool(d.get("noisy", False)),
            pinned_core=d.get("pinned_core"), loadavg_1m=d.get("loadavg_1m"), other_cpu_share=d.get("other_cpu_share"),
            hostname=d.get("hostname", ""), python=d.get("python", ""), versions=dict(d.get("versions", {})),
            target=d.get("target", ""), lacks=tuple(d.get("lacks", ())), tool=dict(d.get("tool", {})),
            ops=tuple(OpTime.from_dict(o) for o in d.get("ops", ())), ops_total_us=d.get("ops_total_us"),
            rss_increase_bytes=d.get("rss_increase_bytes"), rss_note=d.get("rss_note", ""),
            samples_us=tuple(d.get("samples_us", ())), provisional=bool(d.get("provisional", False)))

    @classmethod
    def from_measurement(cls, timed: Mapping[str, Any], context: Mapping[str, Any], **quiet: Any) -> Latency:
        """From the harness's figures (measure.latency), the host context and how quiet the machine was."""
        return cls.from_dict({**timed, **context, **quiet})

    def to_dict(self) -> dict:
        """The stored form (latency/<host id>.json)."""
        d = dataclasses.asdict(self)
        d["host"], d["versions"] = dict(self.host), dict(self.versions)
        d["p50_ci_us"] = list(self.p50_ci_us) if self.p50_ci_us else None
        d["block_p50s_us"], d["samples_us"] = list(self.block_p50s_us), list(self.samples_us)
        d["ops"] = [{**dataclasses.asdict(o), "output_shape": list(o.output_shape)} for o in self.ops]
        d["lacks"], d["tool"] = list(self.lacks), dict(self.tool)
        for name in ("p90_us", "p99_us", "throughput_ips"):  # lacking: null, not NaN (JSON has none)
            if d[name] != d[name]:
                d[name] = None
        return d

    @property
    def host_id(self) -> str:
        return self.host["id"]

    @property
    def host_label(self) -> str:
        return self.host["label"]

    def on(self, host_id: str) -> bool:
        return self.host_id == host_id

    def provenance(self) -> dict:
        """How and where it was measured, for people (no samples)."""
        d = self.to_dict()
        d.pop("samples_us")
        d.pop("ops")
        return d

    @property
    def ops_sum_us(self) -> float:
        return sum(o.us for o in self.ops)

    def summary(self) -> dict:
        """The figures a results table shows (no samples, no ops): what the results index keeps."""
        lo, hi = self.p50_ci_us or (float("nan"), float("nan"))
        return {"p50_us": self.p50_us, "p90_us": self.p90_us, "p99_us": self.p99_us, "mean_us": self.mean_us,
                "throughput_ips": self.throughput_ips, "threads": self.threads, "p50_lo_us": lo, "p50_hi_us": hi,
                "noisy": self.noisy, "provisional": self.provisional, "latency_host": self.host_label,
                "latency_host_id": self.host_id,
                "rss_increase_kb": self.rss_increase_bytes / 1000 if self.rss_increase_bytes is not None else None,
                "measured_at": self.measured_at}


@dataclass(frozen=True)
class VariantRecord:
    """A built variant: its spec, data, accuracy, size, layers and provenance; and, when known, a latency."""

    key: str
    spec: VariantSpec
    dataset: str
    input_shape: tuple[int, ...]
    class_names: tuple[str, ...]
    test_images: int
    accuracy: float
    keras_accuracy: float
    per_class_accuracy: tuple[float | None, ...]
    confusion: tuple[tuple[int, ...], ...]
    size_bytes: int
    gzip_bytes: int
    params: int
    nonzero_params: int
    macs: int
    layer_sparsity: Mapping[str, float]
    layers: tuple[Layer, ...]
    stages: Mapping[str, str]
    build_seconds: Mapping[str, float]
    versions: Mapping[str, str]
    built_on: Mapping[str, Any]
    built_at: str
    history: Mapping[str, Mapping[str, list[float]]] = field(default_factory=dict)  # stage -> Keras history
    fallback_ops: tuple[str, ...] | None = None  # ops XNNPACK did not take at build time (None: not recorded)
    intervals: Mapping[str, float] | None = None  # 95 % interval columns, computed once at build (None: older entry)
    memory: MemoryPlan | None = None  # peak RAM and flash (None: built before they were planned; `explorer memory`)
    quant_error: QuantError | None = None  # per-layer int8 error of a full-integer model (None: float, or older)
    latency: Latency | None = None
    has_model: bool = True  # False: a seed replicate kept as evidence (its accuracy and predictions, no model)

    # -- derived -------------------------------------------------------------------------------
    @property
    def label(self) -> str:
        return self.spec.label()

    @property
    def size_kb(self) -> float:
        return self.size_bytes / 1000

    @property
    def gzip_kb(self) -> float:
        return self.gzip_bytes / 1000

    @property
    def peak_ram_kb(self) -> float:
        return self.memory.peak_ram_kb if self.memory else float("nan")

    @property
    def flash_kb(self) -> float:
        """The flash a microcontroller stores the model in: the .tflite file's bytes."""
        return self.size_kb

    @property
    def real_sparsity(self) -> float:
        """Fraction of all weights that are zero after pruning is stripped."""
        return 1 - self.nonzero_params / self.params if self.params else 0.0

    @property
    def recalls(self) -> list[float]:
        """Per-class recall from the confusion matrix (rows: true class), classes with test images only."""
        return [row[i] / sum(row) for i, row in enumerate(self.confusion) if sum(row)]

    @property
    def balanced_accuracy(self) -> float:
        """Mean per-class recall: accuracy as if every class were equally common."""
        recalls = self.recalls
        return sum(recalls) / len(recalls) if recalls else float("nan")

    @property
    def macro_f1(self) -> float:
        """Unweighted mean of the per-class F1 scores (a class never predicted nor present scores 0)."""
        n = len(self.confusion)
        scores = []
        for i in range(n):
            tp = self.confusion[i][i]
            actual, predicted = sum(self.confusion[i]), sum(self.confusion[r][i] for r in range(n))
            if actual:
                scores.append(2 * tp / (actual + predicted))
        return sum(scores) / len(scores) if scores else float("nan")

    @property
    def weakest_class(self) -> tuple[str, float]:
        """The class with the lowest recall, and that recall."""
        pairs = [(name, row[i] / sum(row)) for i, (name, row) in enumerate(zip(self.class_names, self.confusion))
                 if sum(row)]
        return min(pairs, key=lambda p: p[1])

    def measured_here(self, host_id: str) -> bool:
        return self.latency is not None and self.latency.on(host_id)

    def with_latency(self, latency: Latency | None) -> VariantRecord:
        return dataclasses.replace(self, latency=latency)

    def summary(self) -> dict:
        """The figures a results table shows of the variant itself, flat (latency aside; see Latency.summary)."""
        return {"key": self.key, "label": self.label, **dataclasses.asdict(self.spec),
                "source": source_label(self.spec.model), "accuracy": self.accuracy,
                "balanced_accuracy": self.balanced_accuracy, "macro_f1": self.macro_f1, "test_images": self.test_images,
                "size_kb": self.size_kb, "peak_ram_kb": self.peak_ram_kb, "flash_kb": self.flash_kb,
                "micro_blockers": ", ".join(self.memory.micro_blockers) if self.memory else None,
                "gzip_kb": self.gzip_kb, "params": self.params, "nonzero_params": self.nonzero_params,
                "sparsity_real": self.real_sparsity, "macs": self.macs, "tensorflow": self.versions.get("tensorflow"),
                "built_at": self.built_at, "has_model": self.has_model,
                "int8_lost_points": self.quant_error.drop_points if self.quant_error and self.quant_error.real_drop
                else None}

    def build_info(self) -> dict:
        """How it was built, for people."""
        return {"spec": self.spec.to_dict(), "seconds": dict(self.build_seconds), "versions": dict(self.versions),
                "host": dict(self.built_on), "built_at": self.built_at}

    # -- stored form ---------------------------------------------------------------------------
    @classmethod
    def from_meta(cls, meta: Mapping[str, Any], latency: Mapping[str, Any] | None = None,
                  has_model: bool = True) -> VariantRecord:
        m, ds, build = meta["metrics"], meta["dataset"], meta["build"]
        return cls(
            key=meta["key"], spec=VariantSpec.from_dict(meta["spec"]), dataset=ds["name"],
            input_shape=tuple(ds["input_shape"]), class_names=tuple(ds["class_names"]), test_images=ds["test_images"],
            accuracy=m["accuracy"], keras_accuracy=m["keras_accuracy"],
            per_class_accuracy=tuple(m["per_class_accuracy"]), confusion=tuple(tuple(r) for r in m["confusion"]),
            size_bytes=m["size_bytes"], gzip_bytes=m["gzip_bytes"], params=m["params"],
            nonzero_params=m["nonzero_params"], macs=m["macs"], layer_sparsity=dict(m["layer_sparsity"]),
            layers=tuple(Layer(lp["name"], lp["kind"], tuple(lp["output_shape"]), lp["params"], lp["macs"])
                         for lp in meta["layers"]),
            stages=dict(meta.get("stages", {})), build_seconds=dict(build.get("seconds", {})),
            versions=dict(build.get("versions", {})), built_on=dict(build.get("host", {})),
            built_at=build.get("built_at", ""), history=dict(meta.get("history", {})),
            fallback_ops=tuple(m["fallback_ops"]) if m.get("fallback_ops") is not None else None,
            intervals=dict(m["intervals"]) if m.get("intervals") else None,
            memory=MemoryPlan.from_dict(m["memory"]) if m.get("memory") else None,
            quant_error=QuantError.from_dict(m["quant_error"]) if m.get("quant_error") else None,
            latency=Latency.from_dict(latency) if latency else None, has_model=has_model)

    def to_meta(self) -> dict:
        """The stored form (meta.json, less the key and file checksums, which the store adds)."""
        return {
            "kind": "variant", "format": FORMAT, "spec": self.spec.to_dict(), "label": self.label,
            "stages": dict(self.stages),
            "dataset": {"name": self.dataset, "input_shape": list(self.input_shape),
                        "class_names": list(self.class_names), "test_images": self.test_images},
            "metrics": {
                "accuracy": self.accuracy, "per_class_accuracy": list(self.per_class_accuracy),
                "confusion": [list(r) for r in self.confusion], "keras_accuracy": self.keras_accuracy,
                "size_bytes": self.size_bytes, "gzip_bytes": self.gzip_bytes, "params": self.params,
                "nonzero_params": self.nonzero_params, "layer_sparsity": dict(self.layer_sparsity), "macs": self.macs,
                "fallback_ops": list(self.fallback_ops) if self.fallback_ops is not None else None,
                **({"intervals": dict(self.intervals)} if self.intervals else {}),
                **({"memory": self.memory.to_dict()} if self.memory else {}),
                **({"quant_error": self.quant_error.to_dict()} if self.quant_error else {}),
            },
            "layers": [{"name": lp.name, "kind": lp.kind, "output_shape": list(lp.output_shape), "params": lp.params,
                        "macs": lp.macs} for lp in self.layers],
            "build": {k: v for k, v in self.build_info().items() if k != "spec"},
            "history": {stage: dict(h) for stage, h in self.history.items()},
        }


@dataclass(frozen=True)
class Problem:
    """A damaged entry found while listing; the listing skips it and carries on."""

    key: str
    reason: str


class VariantStore(Protocol):
    """What reading records needs of a cache (explorer.store.cache.Store): record sits below the store."""

    def variants(self, kind: str = "variants") -> tuple[list[dict], list[Problem]]: ...
    def read_latency(self, key: str, host_id: str, threads: int = 1) -> dict | None: ...
    def latency_or_foreign(self, key: str, host_id: str, threads: int = 1) -> dict | None: ...
    def kind_of(self, key: str) -> str: ...
    def verify(self, kind: str, key: str, meta: dict | None = None) -> dict: ...


def keys_where(store: VariantStore, keep: Callable[[VariantSpec], bool]) -> list[str]:
    """The keys of the variants and evidence whose spec keep accepts (latencies unread): what deleting a dataset
    or an imported model takes with it."""
    metas = [*store.variants()[0], *store.variants("evidence")[0]]
    return list(dict.fromkeys(m["key"] for m in metas if "spec" in m and keep(VariantSpec.from_dict(m["spec"]))))


def load_all(store: VariantStore, host_id: str, foreign: bool = True,
             threads: int = 1) -> tuple[list[VariantRecord], list[Problem]]:
    """Every intact variant with this host's latency at `threads` (else, with foreign=True, another host's),
    and the damaged entries."""
    metas, problems = store.variants()
    evidence, damaged = store.variants("evidence")
    have = {m["key"] for m in metas}
    read = store.latency_or_foreign if foreign else store.read_latency
    found = []
    for meta in [*metas, *(m for m in evidence if m["key"] not in have)]:  # a variant supersedes its evidence
        try:
            found.append(VariantRecord.from_meta(meta, read(meta["key"], host_id, threads)) if meta["key"] in have
                         else VariantRecord.from_meta(meta, has_model=False))
        except (KeyError, TypeError, ValueError) as exc:  # intact files, but not a variant record
            problems.append(Problem(meta["key"], f"meta.json is not a variant record ({type(exc).__name__}: {exc})"))
    return found, problems + damaged


def load(store: VariantStore, key: str, host_id: str, threads: int = 1) -> VariantRecord:
    """One verified variant with this host's latency, else another host's; or a seed replicate kept as
    evidence (no model, no latency). CacheError if missing or damaged."""
    if store.kind_of(key) == "evidence":
        return VariantRecord.from_meta(store.verify("evidence", key), has_model=False)
    return VariantRecord.from_meta(store.verify("variants", key), store.latency_or_foreign(key, host_id, threads))
