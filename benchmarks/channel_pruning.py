"""Channel pruning vs unpruned, depths 2 and 3 on Fashion-MNIST, fp32 and dynamic: speed, accuracy, size.

    $ .venv/bin/python -m benchmarks channel_pruning

Every variant is built by the pipeline in a copy of the shipped cache (its trained stages are reused
when present, so after a cache rebuild this only measures) and timed by the app's isolated
measurement. Target at 50 %: >= 1.8x faster than the unpruned model of the same mode, <= 1 point lost.
"""

from __future__ import annotations

from benchmarks.report import Row, row
from benchmarks.worker import Sandbox
from explorer.run import pipeline
from explorer.store.cache import Store
from explorer.spec import VariantSpec

FRACTIONS = (0.25, 0.5)


def run() -> list[Row]:
    box = Sandbox()
    store = Store(box.cache, box.data / "stages")
    table, rows = [], []
    for depth in (2, 3):
        for quant in ("fp32", "dynamic"):
            ref, _ = pipeline.ensure(VariantSpec(depth=depth, quant=quant), store)
            for fraction in FRACTIONS:
                v, _ = pipeline.ensure(VariantSpec(depth=depth, quant=quant, channels=fraction), store)
                entry = {"depth": depth, "quant": quant, "channels": fraction,
                         "speedup": round(ref.latency.p50_us / v.latency.p50_us, 3),
                         "p50_us": round(v.latency.p50_us, 2), "unpruned_p50_us": round(ref.latency.p50_us, 2),
                         "accuracy_change_pts": round((v.accuracy - ref.accuracy) * 100, 2),
                         "size_ratio": round(v.size_bytes / ref.size_bytes, 3), "macs_ratio": round(v.macs / ref.macs, 3)}
                table.append(entry)
                rows.append(row(f"depth {depth} {quant}, {fraction:.0%} of channels removed: speed-up",
                                entry["speedup"], "×",
                                note=f"p50 {entry['unpruned_p50_us']} → {entry['p50_us']} µs; accuracy "
                                     f"{entry['accuracy_change_pts']:+.2f} pts; size × {entry['size_ratio']}; "
                                     f"MACs × {entry['macs_ratio']}"))
    half = [e for e in table if e["channels"] == 0.5]
    worst_speed = min(e["speedup"] for e in half)
    worst_loss = min(e["accuracy_change_pts"] for e in half)
    rows.insert(0, row("channel_pruning", worst_speed, "×", ">=", 1.8, detail={"variants": table},
                       note="slowest speed-up at 50 % over depths 2-3 × fp32/dynamic"))
    rows.insert(1, row("channel pruning 50 %: largest accuracy loss", worst_loss, "pts", ">=", -1.0))
    return rows
