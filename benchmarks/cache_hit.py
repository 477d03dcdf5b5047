"""Cache hit: loading a cached variant's record and model for display (target <= 0.5 s).

    $ .venv/bin/python -m benchmarks.cache_hit
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import time

from benchmarks.report import Row, print_table, row
from explorer.store import cache
from explorer.run import grid, pipeline
from explorer.measure import measure
from explorer.store.cache import Store

CODE = """
import time; t0 = time.perf_counter()
from explorer.run import pipeline
from explorer.measure import measure
from explorer.store.cache import Store
from explorer.spec import VariantSpec
from explorer.store.cache import TFLITE
spec = VariantSpec.from_dict({spec!r}); store = Store()
record, _ = pipeline.ensure(spec, store, measure_missing=False)
measure.interpreter(store.file_path("variants", spec.key(), TFLITE).read_bytes())
print(time.perf_counter() - t0, "tensorflow" in __import__("sys").modules)
"""


def run() -> list[Row]:
    store = Store()
    spec = next(s for s in grid.preset("default") if store.has("variants", s.key()))
    warm = []
    for _ in range(20):
        t0 = time.perf_counter()
        pipeline.ensure(spec, store, measure_missing=False)
        measure.interpreter(store.file_path("variants", spec.key(), cache.TFLITE).read_bytes())
        warm.append(time.perf_counter() - t0)
    out = subprocess.run([sys.executable, "-c", CODE.format(spec=spec.to_dict())], capture_output=True, text=True,
                         check=True).stdout.split()
    cold, tf_loaded = float(out[0]), out[1] == "True"
    return [
        row("cache hit, warm process (record + checksum + interpreter)", statistics.median(warm) * 1e3, "ms",
            "<=", 500),
        row("cache hit, fresh process incl. imports", cold * 1e3, "ms", "<=", 500,
            "TensorFlow imported: " + ("yes" if tf_loaded else "no")),
    ]


if __name__ == "__main__":
    print_table("Cache hit", run())
