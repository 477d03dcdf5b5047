"""Inference speed against what a user would do instead: plain Keras on one image vs our best TFLite variant.

    $ .venv/bin/python -m benchmarks.keras_vs_tflite

The reference CNN (Conv 32->64->128, Dense 512): Keras `model.predict` on one image, a direct
`model(x, training=False)` call, and the fastest shipped TFLite conversion of the same architecture,
all timed in this one process, batch 1. Target: TFLite >= 20x faster than the direct call.
"""

from __future__ import annotations

import statistics
import time

import numpy as np

from benchmarks.report import Row, print_table, row
from explorer.store import cache
from explorer.data import datasets
from explorer.run import grid
from explorer.measure import measure
from explorer.store.cache import Store


def _median_seconds(fn, runs: int, warmup: int = 5) -> float:
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def run() -> list[Row]:
    from explorer.models import model as model_lib

    store = Store()
    specs = [s for s in grid.preset("reference") if store.has("variants", s.key())]
    if not specs:
        return [row("keras vs tflite", float("nan"), "", note="reference variants not in the cache: "
                    "run 'python -m explorer sweep --preset reference'")]
    info = datasets.info(specs[0].dataset)
    base = store.read_meta("base", specs[0].base_key()) if store.has("base", specs[0].base_key()) else None
    keras_model = model_lib.build(specs[0], info.input_shape, info.num_classes)
    if base:  # trained weights where the local cache has them (speed does not depend on them)
        model_lib.load_weights(keras_model, store.file_path("base", specs[0].base_key(), cache.WEIGHTS))
    x = datasets.load(specs[0].dataset).x_test[:1]
    predict_s = _median_seconds(lambda: keras_model.predict(x, verbose=0), 50)
    call_s = _median_seconds(lambda: keras_model(x, training=False), 300)
    tflite = {}
    for spec in specs:
        model = store.file_path("variants", spec.key(), cache.TFLITE).read_bytes()
        tflite[spec.quant] = float(np.median(measure.latency_samples(model, x[0], min_seconds=1.0))) / 1e6
    best_mode = min(tflite, key=tflite.get)
    best = tflite[best_mode]
    return [
        row("Keras model.predict, 1 image", predict_s * 1e6, "µs"),
        row("Keras model(x, training=False), 1 image", call_s * 1e6, "µs"),
        *[row(f"TFLite {mode}, batch 1, 1 thread", s * 1e6, "µs") for mode, s in tflite.items()],
        row(f"best TFLite ({best_mode}) vs model.predict", predict_s / best, "×"),
        row(f"best TFLite ({best_mode}) vs direct call", call_s / best, "×", ">=", 20),
    ]


if __name__ == "__main__":
    print_table("Keras vs TFLite (reference CNN)", run())
