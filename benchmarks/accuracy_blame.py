"""Where the accuracy goes, and precision under an accuracy bound (issue #46): full int8 against "auto:0.5".

    $ .venv/bin/python -m benchmarks accuracy_blame

For each network (keras.applications architectures with hard-swish, swish and squeeze-excitation, which lose
the most in int8, on Fashion-MNIST at 32 px: 10,000 test images), in a copy of the shipped cache: the fp32 and
full-int8 variants are built (the int8 build measures each layer's error and, where the drop is real, what each
layer alone in float recovers), then precision "auto:0.5" is built as a user asks it, and everything is timed
here side by side. Per network: the int8 drop on the test split with McNemar's p, the share of it the bound
recovers (target >= 80 %), the share of int8's speed-up it keeps (target >= 50 %, where int8 has one), the layers
kept in float, how long choosing them took (target < 5 minutes), and Spearman's rank correlation of the cheap
signal (each layer's int8 error) with the expensive one (its measured gain). A network whose int8 loses nothing
significant is also built: nothing is kept in float, and it says so.
"""

from __future__ import annotations

import os
import time

import numpy as np

from benchmarks.report import Row, row
from benchmarks.worker import Sandbox

LOSSY = ("keras:MobileNetV3Small", "keras:EfficientNetB0", "keras:MobileNetV3Small:alpha=0.75")
NETWORKS = os.environ.get("ACCURACY_BLAME_NETWORKS")  # a comma-separated subset of LOSSY (a shorter run)
STEADY = dict(depth=2)  # the built-in family's default: int8 loses nothing significant on it
COMMON = dict(dataset="fashion-mnist", epochs=3)
MAX_DROP = 0.5


def _spearman(q) -> float | None:
    from scipy import stats

    best: dict[str, tuple[float, float]] = {}
    for e in q.layers:
        if e.gain is not None and not np.isnan(e.rmse):
            best[e.layer] = (max(best.get(e.layer, (0.0, 0.0))[0], e.rmse), e.gain)
    if len(best) < 3:
        return None
    rmse, gain = zip(*best.values())
    return float(stats.spearmanr(rmse, gain).statistic)


def _one(spec, store, y) -> dict:
    from explorer.run import accuracy_bound, auto_precision, pipeline
    from explorer.uncertainty import mcnemar

    t0 = time.perf_counter()
    fp32, _ = pipeline.ensure(spec.replace(quant="fp32"), store)
    int8, _ = pipeline.ensure(spec, store)
    for v in (fp32, int8):  # side by side, now
        pipeline.measure_latency(store, v)
    fp32, _ = pipeline.ensure(spec.replace(quant="fp32"), store)
    int8, _ = pipeline.ensure(spec, store)
    bounded, _ = pipeline.ensure(spec.replace(precision=f"auto:{MAX_DROP:g}"), store)
    auto = auto_precision.auto_precision(spec.replace(precision=f"auto:{MAX_DROP:g}"), store)
    bound = accuracy_bound.stored(store, int8.key, MAX_DROP)
    preds = {name: store.read_predictions(v.key) for name, v in (("fp32", fp32), ("int8", int8), ("auto", bounded))}
    drop = (fp32.accuracy - int8.accuracy) * 100
    left = (fp32.accuracy - bounded.accuracy) * 100
    speedup = fp32.latency.p50_us - int8.latency.p50_us
    return {
        "network": spec.label().replace("-int8", ""), "layers_quantized": len({e.layer for e in int8.quant_error.layers}),
        "fp32_accuracy": fp32.accuracy, "int8_accuracy": int8.accuracy, "auto_accuracy": bounded.accuracy,
        "int8_drop_points": round(drop, 2), "int8_mcnemar_p": mcnemar(y, preds["fp32"], preds["int8"]).p,
        "auto_drop_points": round(left, 2), "auto_vs_fp32_mcnemar_p": mcnemar(y, preds["fp32"], preds["auto"]).p,
        "recovered_share": round((drop - left) / drop, 3) if drop > 0 else None,
        "p50_us": {"fp32": fp32.latency.p50_us, "int8": int8.latency.p50_us, "auto": bounded.latency.p50_us},
        "speedup_kept": round((fp32.latency.p50_us - bounded.latency.p50_us) / speedup, 3) if speedup > 0 else None,
        "auto_variant": bounded.spec.precision if bounded.spec.quant != "fp32" else "fp32 sibling",
        "float_for_accuracy": list(bound.layers) if bound else [], "float_for_speed": list(auto.speed),
        "choosing_s": bound.seconds if bound else None, "conversions_tried": len(bound.tried) if bound else 0,
        "per_layer_error_s": round(int8.build_seconds.get("quant_error", 0.0), 1),
        "validation": {"images": int8.quant_error.images, "float": int8.quant_error.float_accuracy,
                       "int8": int8.quant_error.int8_accuracy},
        "spearman_error_vs_gain": _spearman(int8.quant_error), "said": auto.text(),
        "wall_s": round(time.perf_counter() - t0, 1)}


def run() -> list[Row]:
    from explorer.data import datasets
    from explorer.spec import VariantSpec
    from explorer.store.cache import Store

    box = Sandbox()
    store = Store(box.cache, box.data / "stages")
    y = datasets.load("fashion-mnist").y_test
    try:
        lossy = [_one(VariantSpec(quant="int8", model=m, image_size=32, colour="rgb", **COMMON), store, y)
                 for m in (NETWORKS.split(",") if NETWORKS else LOSSY)]
        steady = _one(VariantSpec(quant="int8", **STEADY, **COMMON), store, y)
    finally:
        box.close()
    real = [t for t in lossy if t["int8_drop_points"] >= 1 and t["int8_mcnemar_p"] < 0.05]
    recovered = min((t["recovered_share"] for t in real), default=float("nan"))
    kept = [t["speedup_kept"] for t in real if t["speedup_kept"] is not None]
    choosing = max((t["choosing_s"] or 0.0 for t in real), default=float("nan"))
    detail = {"networks": lossy, "steady": steady, "max_drop": MAX_DROP}
    summary = "; ".join(f"{t['network']}: int8 -{t['int8_drop_points']} pts (p={t['int8_mcnemar_p']:.2g}), auto "
                        f"-{t['auto_drop_points']} with {len(t['float_for_accuracy'])} layers float" for t in lossy)
    return [row("accuracy_blame", recovered * 100, "%", ">=", 80, detail=detail,
                note=f"smallest share of the int8 drop recovered by auto:{MAX_DROP:g} on the {len(real)} networks "
                     f"(of {len(lossy)}) whose int8 loses >= 1 point with p < 0.05 on 10,000 test images; {summary}"),
            row("accuracy_blame_speedup_kept", min(kept, default=float("nan")) * 100, "%", ">=", 50,
                note=f"smallest share of int8's speed-up over fp32 that auto:{MAX_DROP:g} keeps, on the networks "
                     f"where int8 has one ({len(kept)} of {len(real)})"),
            row("accuracy_blame_choosing", choosing, "s", "<=", 300,
                note="longest time choosing the layers for the bound (conversions and evaluations; the per-layer "
                     "gains are measured at the int8 build: per_layer_error_s in the detail)"),
            row("accuracy_blame_steady", len(steady["float_for_accuracy"]), "layers", "<=", 0,
                note=f"{steady['network']}: int8 -{steady['int8_drop_points']} pts (p={steady['int8_mcnemar_p']:.2g}); "
                     f"{steady['said']}")]
