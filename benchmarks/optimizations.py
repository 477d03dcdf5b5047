"""What the optimizations buy on this CPU, measured side by side in one run on the shipped depth-2 variants.

    $ .venv/bin/python -m benchmarks.optimizations

Held against the published tfmot/LiteRT claims: int8 about 4x smaller and 1.5-4x faster on CPU,
pruning + int8 about 10x smaller gzipped. Also tries 1 vs 2 interpreter threads and XNNPACK on/off.
"""

from __future__ import annotations

import numpy as np

from benchmarks.report import Row, print_table, row
from explorer.store import cache
from explorer.measure import host, measure
from explorer import record
from explorer.store.cache import Store
from explorer.spec import QUANT_MODES, VariantSpec

IMAGE = np.random.default_rng(0).random((28, 28, 1), dtype=np.float32)


def _p50(model: bytes, **kwargs) -> float:
    return float(np.median(measure.latency_samples(model, IMAGE, min_seconds=0.7, **kwargs)))


def run() -> list[Row]:
    store = Store()
    base = VariantSpec()
    specs = [base.replace(quant=q) for q in QUANT_MODES] + \
            [base.replace(sparsity=s, quant=q) for s in (0.5, 0.8) for q in ("fp32", "int8")]
    if not all(store.has("variants", s.key()) for s in specs):
        return [row("optimizations", float("nan"), "", note="shipped depth-2 variants missing: run "
                    "'python -m explorer sweep --preset default'")]
    models = {s: store.file_path("variants", s.key(), cache.TFLITE).read_bytes() for s in specs}
    metas = {s: record.load(store, s.key(), host.current().id) for s in specs}
    p50 = {s: _p50(m) for s, m in models.items()}
    ref = specs[0]
    rows = []
    for s in specs:
        m = metas[s]
        speed = p50[ref] / p50[s]
        rows.append(row(f"{s.label()}: p50", p50[s], "µs", note=(
            f"speed {speed:.2f}× · size {metas[ref].size_bytes / m.size_bytes:.2f}× smaller · "
            f"gzip {metas[ref].gzip_bytes / m.gzip_bytes:.2f}× smaller · "
            f"accuracy {(m.accuracy - metas[ref].accuracy) * 100:+.2f} pts")))
    int8 = base.replace(quant="int8")
    pruned_int8 = base.replace(sparsity=0.8, quant="int8")
    rows += [
        row("int8 size reduction (claim ≈ 4×)", metas[ref].size_bytes / metas[int8].size_bytes, "×", ">=", 3.5),
        row("int8 speed-up on this CPU (claim 1.5–4×)", p50[ref] / p50[int8], "×", ">=", 1.5),
        row("pruning 80% speed-up, fp32 (dense kernels)", p50[ref] / p50[base.replace(sparsity=0.8)], "×",
            note="no speed-up expected: TFLite multiplies the zeros"),
        row("pruning 80% + int8, gzipped size reduction (claim ≈ 10×)",
            metas[ref].gzip_bytes / metas[pruned_int8].gzip_bytes, "×", ">=", 8),
    ]
    for s in (ref, int8):
        two = _p50(models[s], threads=2)
        no_xnn = _p50(models[s], xnnpack=False)
        rows += [row(f"{s.quant}: 2 threads vs 1", p50[s] / two, "×", note=f"p50 {two:.1f} µs with 2 threads"),
                 row(f"{s.quant}: XNNPACK vs builtin kernels", no_xnn / p50[s], "×",
                     note=f"p50 {no_xnn:.1f} µs without XNNPACK")]
    return rows


if __name__ == "__main__":
    print_table("Optimizations on this CPU (depth 2)", run())
