"""Stage reuse: a grid from an empty cache with reuse, against the same grid with every variant trained alone.

    $ .venv/bin/python -m benchmarks.stage_reuse

The grid is depth 2 x sparsity {0, 0.5} x {fp32, dynamic, int8} with 2 epochs (so the benchmark stays
within minutes); the ratio grows with epochs, since reuse saves training and keeps conversions.
"""

from __future__ import annotations

import tempfile
import time

from benchmarks.report import Row, print_table, row
from explorer.data import datasets
from explorer.run import grid, pipeline
from explorer.store.cache import Store
from explorer.spec import VariantSpec

GRID = grid.expand({"sparsity": [0.0, 0.5], "quant": ["fp32", "dynamic", "int8"]},
                   VariantSpec(epochs=2, tune_epochs=1))


def _build(reuse: bool) -> tuple[float, int]:
    with tempfile.TemporaryDirectory() as tmp:
        store = Store(tmp)
        t0 = time.perf_counter()
        trainings = 0
        for spec in GRID:
            _, report = pipeline.ensure(spec, store, reuse=reuse, latency_kwargs={"min_seconds": 0.1})
            trainings += report.built.count("base")
        return time.perf_counter() - t0, trainings


def run() -> list[Row]:
    datasets.load("fashion-mnist")
    with_reuse, n_reuse = _build(True)
    without, n_alone = _build(False)
    return [
        row(f"grid of {len(GRID)} with stage reuse", with_reuse, "s", note=f"{n_reuse} training run(s)"),
        row(f"grid of {len(GRID)}, every variant alone", without, "s", note=f"{n_alone} training runs"),
        row("speed-up from stage reuse", without / with_reuse, "×", ">=", 3),
    ]


if __name__ == "__main__":
    print_table("Stage reuse", run())
