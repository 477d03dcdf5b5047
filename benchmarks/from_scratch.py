"""One variant from scratch on the default dataset: train + prune + convert + measure (target <= 60 s).

    $ .venv/bin/python -m benchmarks.from_scratch
"""

from __future__ import annotations

import tempfile
import time

from benchmarks.report import Row, print_table, row
from explorer import datasets, pipeline
from explorer.cache import Store
from explorer.spec import VariantSpec

SPEC = VariantSpec(sparsity=0.5, quant="int8")  # the default depth-2 architecture, pruned and quantized


def run() -> list[Row]:
    datasets.load(SPEC.dataset)  # decode the data outside the timing, as a running app has it
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        _, report = pipeline.ensure(SPEC, Store(tmp))
        total = time.perf_counter() - t0
    stages = ", ".join(f"{k} {v:.1f} s" for k, v in report.seconds.items())
    return [row(f"{SPEC.label()} from scratch", total, "s", "<=", 60, stages)]


if __name__ == "__main__":
    print_table("One variant from scratch", run())
