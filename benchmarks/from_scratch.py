"""One variant from scratch on the default dataset: train + prune + convert + measure (target <= 60 s).

    $ .venv/bin/python -m benchmarks.from_scratch
"""

from __future__ import annotations

import tempfile
import time

from benchmarks.report import Row, print_table, row
from explorer.data import datasets
from explorer.run import pipeline
from explorer.store.cache import Store
from explorer.spec import VariantSpec

PRUNED = VariantSpec(sparsity=0.5, quant="int8")  # the default depth-2 architecture, pruned and quantized
SPECS = [VariantSpec(), PRUNED, PRUNED.replace(tune_epochs=1)]  # plain default; 2 (default) vs 1 fine-tune epochs


def run() -> list[Row]:
    datasets.load(PRUNED.dataset)  # decode the data outside the timing, as a running app has it
    rows = []
    for spec in SPECS:
        with tempfile.TemporaryDirectory() as tmp:
            t0 = time.perf_counter()
            variant, report = pipeline.ensure(spec, Store(tmp))
            total = time.perf_counter() - t0
        stages = ", ".join(f"{k} {v:.1f} s" for k, v in report.seconds.items())
        rows.append(row(f"{spec.label()}, {spec.tune_epochs} fine-tune epoch(s)" if spec.is_tuned else spec.label(),
                        total, "s", "<=", 60, f"{stages}; accuracy {variant.accuracy:.4f}"))
    return rows


if __name__ == "__main__":
    print_table("One variant from scratch", run())
