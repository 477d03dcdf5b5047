"""Latency preview: a variant's real batch-1 latency on this host in seconds, before it is trained.

Latency does not depend on what the weights learned: the same architecture, converted in the same mode,
runs the same kernels on the same shapes. So a preview builds the architecture with freshly initialized
weights, converts it (int8 modes calibrated on a few real images of the dataset), and times it with the
same isolated harness as trained variants (CPU gate, pinned core, blocks in fresh processes).
Magnitude sparsity and clustering leave dense kernels' latency unchanged on this CPU, so they are not
part of a preview's key; which fields are, is stated by preview_fields(). Nothing is trained and no
variant entry is written: a preview is one JSON file under the user-data folder, per host.
"""

from __future__ import annotations

import dataclasses
import json
import time
from dataclasses import dataclass
from pathlib import Path

from explorer.data import datasets
from explorer.measure import gate, host, measure, targets
from explorer.measure.targets import Target
from explorer.store import paths
from explorer.run import pipeline
from explorer.store.cache import write_json_atomic
from explorer.record import Latency
from explorer.spec import VariantSpec, stable_key

def preview_fields(spec: VariantSpec, threads: int = 1, target: Target | None = None) -> dict:
    """What determines a variant's latency: architecture, quantization, threads, host (this one, or a
    measurement target's; and versions, in the key)."""
    return {"dataset": spec.dataset, "depth": spec.depth, "width": spec.width, "conv": spec.conv,
            "dense": spec.dense, "quant": spec.quant, "threads": threads, "image_size": spec.image_size,
            "colour": spec.colour, "padding": spec.padding, "head": spec.head, "channels": spec.channels,
            "model": spec.model,
            "host": target.host.id if target else host.current().id,
            "litert": measure.litert_version(), **({"precision": spec.precision} if spec.precision != "full" else {})}


def preview_key(spec: VariantSpec, threads: int = 1, target: Target | None = None) -> str:
    return stable_key(preview_fields(spec, threads, target))


def _path(key: str) -> Path:
    return paths.state_dir() / "previews" / f"{key}.json"


@dataclass(frozen=True)
class Preview:
    """A previewed latency: the untrained model's Latency, what it was keyed by, its size, how long it took."""

    latency: Latency
    fields: dict
    size_bytes: int
    seconds: dict

    @classmethod
    def from_dict(cls, d: dict) -> Preview:
        return cls(Latency.from_dict(d), dict(d["fields"]), d["size_bytes"], dict(d["seconds"]))

    def to_dict(self) -> dict:
        """The stored form: the latency record (without samples) and the preview's own fields."""
        lat = self.latency.to_dict()
        lat.pop("samples_us")
        return {**lat, "kind": "preview", "fields": self.fields, "size_bytes": self.size_bytes,
                "seconds": self.seconds}


def read(spec: VariantSpec, threads: int = 1, target: Target | None = None) -> Preview | None:
    """The cached preview of this spec's latency on this host (or on the target), or None."""
    try:
        return Preview.from_dict(json.loads(_path(preview_key(spec, threads, target)).read_text()))
    except (FileNotFoundError, ValueError, KeyError):
        return None


def untrained_tflite(spec: VariantSpec) -> bytes:
    """The spec's network with initialized (or imported) weights, converted in its quantization mode (no
    training); an imported .tflite as it is."""
    from explorer.models import quantize, sources
    from explorer.models.tf_runtime import tfmot

    info = datasets.info_for(spec)
    source = sources.for_spec(spec)
    if source.converted:
        return source.tflite()
    m = source.build(spec, info.input_shape, info.num_classes)
    if spec.quant == "qat-int8":  # the fake-quantized graph QAT converts from, without its fine-tune
        qk = tfmot.quantization.keras
        m = qk.quantize_apply(qk.quantize_annotate_model(m))
    calibration = source.data(spec).x_train[:quantize.CALIBRATION_IMAGES]
    return quantize.to_tflite(m, spec.quant, calibration, keep_float=pipeline.float_layers_of(spec))


def run(spec: VariantSpec, threads: int = 1, on_progress=None, target: Target | None = None,
        **latency_kwargs) -> Preview:
    """Build, convert and time the untrained architecture (here, or on a measurement target); store and
    return the preview record."""
    report = on_progress or (lambda fraction, message: None)
    t0 = time.perf_counter()
    report(0.0, f"Converting the untrained {spec.label()} ({spec.quant})")
    with gate.machine().shared():
        tflite = untrained_tflite(spec)
    convert_s = time.perf_counter() - t0
    report(0.5, f"Timing it on {'target ' + target.name if target else 'this host'}")
    images = pipeline.latency_images(datasets.info_for(spec).input_shape)
    timed = (targets.measure_latency(target, tflite, images, threads, **latency_kwargs) if target
             else pipeline.time_isolated(tflite, images, threads, **latency_kwargs))
    lat = dataclasses.replace(timed, samples_us=())
    made = Preview(lat, preview_fields(spec, threads, target), len(tflite),
                   {"convert": round(convert_s, 2), "total": round(time.perf_counter() - t0, 2)})
    path = _path(preview_key(spec, threads, target))
    path.parent.mkdir(parents=True, exist_ok=True)
    write_json_atomic(path, made.to_dict())
    report(1.0, f"p50 {lat.p50_us:.1f} µs (untrained)")
    return made


def ensure(spec: VariantSpec, threads: int = 1, target: Target | None = None,
           **latency_kwargs) -> tuple[Preview, bool]:
    """(preview, whether it was measured now): the cached one when there is one."""
    target = None if target is None or target.is_local else target
    cached = read(spec, threads, target)
    if cached is not None:
        return cached, False
    return run(spec, threads, target=target, **latency_kwargs), True
