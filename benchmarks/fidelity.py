"""Harness fidelity: harness vs a bare invoke() loop, repeatability, and the distance from the MAC floor.

    $ .venv/bin/python -m benchmarks.fidelity

The floor is a model's multiply-accumulates at this core's measured peak float32 rate (a single-thread
matrix multiply in a separate process with OPENBLAS_NUM_THREADS=1).
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import time

import numpy as np

from benchmarks.report import Row, print_table, row
from explorer.store import cache
from explorer.measure import host, measure
from explorer import record
from explorer.store.cache import Store
from explorer.spec import VariantSpec

PEAK = """
import time, numpy as np
a = np.random.rand(1024, 1024).astype(np.float32); b = np.random.rand(1024, 1024).astype(np.float32)
a @ b; best = 0
for _ in range(10):
    t = time.perf_counter(); a @ b; best = max(best, 1024**3 / (time.perf_counter() - t))
print(best)
"""


def _bare_mean_us(model: bytes, image: np.ndarray, runs: int = 5000) -> float:
    interp = measure.interpreter(model)
    interp.set_tensor(interp.get_input_details()[0]["index"], measure.to_input(interp, image[None]))
    for _ in range(100):
        interp.invoke()
    t0 = time.perf_counter()
    for _ in range(runs):
        interp.invoke()
    return (time.perf_counter() - t0) / runs * 1e6


def run() -> list[Row]:
    store = Store()
    spec = VariantSpec()
    if not store.has("variants", spec.key()):
        return [row("fidelity", float("nan"), "", note="default variant missing from the cache")]
    model = store.file_path("variants", spec.key(), cache.TFLITE).read_bytes()
    image = np.random.default_rng(0).random((28, 28, 1), dtype=np.float32)
    samples = measure.latency_samples(model, image, min_runs=5000, min_seconds=0.5)
    bare = _bare_mean_us(model, image)
    p50s = [float(np.median(measure.latency_samples(model, image, min_seconds=0.7))) for _ in range(3)]
    spread = (max(p50s) - min(p50s)) / statistics.median(p50s) * 100
    peak_macs = float(subprocess.run([sys.executable, "-c", PEAK], capture_output=True, text=True, check=True,
                                     env={**os.environ, "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1"}
                                     ).stdout) / 1e6  # MACs per µs
    rows = [
        row("harness mean vs bare invoke() loop mean", (samples.mean() / bare - 1) * 100, "%", "<=", 5,
            f"harness {samples.mean():.1f} µs, bare {bare:.1f} µs"),
        row("spread of three p50 measurements", spread, "%", "<=", 5, ", ".join(f"{p:.1f}" for p in p50s) + " µs"),
        row("this core's peak fp32 rate (1-thread matmul)", peak_macs / 1e3, "GMAC/s"),
    ]
    for s in (spec, spec.replace(quant="int8"), spec.replace(depth=3), spec.replace(depth=1)):
        if store.has("variants", s.key()):
            macs = record.load(store, s.key(), host.current().id).macs
            p50 = float(np.median(measure.latency_samples(
                store.file_path("variants", s.key(), cache.TFLITE).read_bytes(), image, min_seconds=0.5)))
            floor = macs / peak_macs
            rows.append(row(f"{s.label()}: p50 / MAC floor", p50 / floor, "×",
                            note=f"p50 {p50:.1f} µs, floor {floor:.1f} µs ({macs:,} MACs)"))
    return rows


if __name__ == "__main__":
    print_table("Harness fidelity", run())
