"""int16 activations (issue #46): what int16x8 does to accuracy, latency here and TensorFlow Lite Micro's arena,
beside fp32 and full int8.

    $ .venv/bin/python -m benchmarks int16x8

For the shipped family at depth 1-3 (Fashion-MNIST, 10,000 test images), in a copy of the shipped cache: the
int16x8 variant is converted from the shipped base, and the three are timed here side by side. Per depth: the
accuracy of each with McNemar's p of int16x8 against fp32 and against int8, p50 here, and the arena TFLite Micro
needs (planned, and held against its allocator). The headline: the largest accuracy gap between int16x8 and fp32,
in points (int16 activations should keep float's accuracy where int8 loses some).
"""

from __future__ import annotations

from benchmarks.report import Row, row
from benchmarks.worker import Sandbox

MODES = ("fp32", "int8", "int16x8")


def run() -> list[Row]:
    from explorer.data import datasets
    from explorer.measure import memory
    from explorer.run import pipeline
    from explorer.spec import VariantSpec
    from explorer.store.cache import TFLITE, Store
    from explorer.uncertainty import mcnemar

    box = Sandbox()
    store = Store(box.cache, box.data / "stages")
    y = datasets.load("fashion-mnist").y_test
    table = []
    try:
        for depth in (1, 2, 3):
            got = {q: pipeline.ensure(VariantSpec(depth=depth, quant=q), store)[0] for q in MODES}
            for v in got.values():  # side by side, now
                pipeline.measure_latency(store, v)
            got = {q: pipeline.ensure(VariantSpec(depth=depth, quant=q), store)[0] for q in MODES}
            preds = {q: store.read_predictions(v.key) for q, v in got.items()}
            micro = memory.micro_reference(store.file_path("variants", got["int16x8"].key, TFLITE).read_bytes())
            table.append({
                "depth": depth, **{f"{q}_accuracy": v.accuracy for q, v in got.items()},
                "int16x8_vs_fp32_p": mcnemar(y, preds["fp32"], preds["int16x8"]).p,
                "int16x8_vs_int8_p": mcnemar(y, preds["int8"], preds["int16x8"]).p,
                **{f"{q}_p50_us": round(v.latency.p50_us, 1) for q, v in got.items()},
                **{f"{q}_arena_kb": round(v.memory.peak_ram_bytes / 1000, 1) for q, v in got.items()},
                "int16x8_tflite_micro_kb": round(micro["total"] / 1000, 1) if micro else None,
                "int16x8_fallback_ops": list(got["int16x8"].fallback_ops or ())})
    finally:
        box.close()
    gap = max(abs(t["int16x8_accuracy"] - t["fp32_accuracy"]) * 100 for t in table)
    return [row("accuracy_blame_int16x8", gap, "points", detail={"depths": table},
                note="largest |int16x8 - fp32| accuracy on 10,000 test images; " + "; ".join(
                    f"depth {t['depth']}: accuracy fp32 {t['fp32_accuracy']:.4f} / int8 {t['int8_accuracy']:.4f} / "
                    f"int16x8 {t['int16x8_accuracy']:.4f}, p50 {t['fp32_p50_us']} / {t['int8_p50_us']} / "
                    f"{t['int16x8_p50_us']} µs, arena {t['fp32_arena_kb']} / {t['int8_arena_kb']} / "
                    f"{t['int16x8_arena_kb']} KB (TFLite Micro {t['int16x8_tflite_micro_kb']} KB)" for t in table))]
