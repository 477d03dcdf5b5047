"""Per-layer precision chosen by this host's profiles (issue #22): 'auto' against full int8 and fp32.

    $ .venv/bin/python -m benchmarks mixed_precision

For each shipped architecture that needs no fine-tune (depth 1-3 standard, depth 2-3 separable), in a copy
of the shipped cache: the int8 and fp32 siblings are re-measured, then precision 'auto' is resolved from
their op profiles on this host, built (a conversion of the shipped base) and measured beside them.
Target: auto is never slower than the faster of full int8 and fp32 by more than its 95 % interval.
"""

from __future__ import annotations

from benchmarks.report import Row, row
from benchmarks.worker import Sandbox


def run() -> list[Row]:
    from explorer.run import pipeline
    from explorer.spec import VariantSpec
    from explorer.store.cache import Store

    box = Sandbox()
    store = Store(box.cache, box.data / "stages")
    table, worst = [], float("inf")
    try:
        for arch in (dict(depth=1), dict(depth=2), dict(depth=3), dict(depth=2, conv="separable"),
                     dict(depth=3, conv="separable")):
            sib = {q: pipeline.ensure(VariantSpec(quant=q, **arch), store)[0] for q in ("int8", "fp32")}
            for v in sib.values():  # side by side, now
                pipeline.measure_latency(store, v)
            sib = {q: pipeline.ensure(VariantSpec(quant=q, **arch), store)[0] for q in ("int8", "fp32")}
            auto, _ = pipeline.ensure(VariantSpec(quant="int8", precision="auto", **arch), store)
            best = min(sib.values(), key=lambda v: v.latency.p50_us)
            margin = best.latency.p50_ci_us[1] - auto.latency.p50_ci_us[0]  # >= 0: not slower beyond the intervals
            worst = min(worst, margin)
            table.append({"architecture": auto.spec.label().split("-int8")[0], "auto_keeps_float": auto.spec.precision,
                          "auto_p50_us": round(auto.latency.p50_us, 2), "int8_p50_us": round(sib["int8"].latency.p50_us, 2),
                          "fp32_p50_us": round(sib["fp32"].latency.p50_us, 2),
                          "auto_accuracy": auto.accuracy, "int8_accuracy": sib["int8"].accuracy})
        return [row("mixed_precision", worst, "µs", ">=", 0.0, detail={"architectures": table},
                    note="smallest (fastest sibling's p50 upper bound - auto's p50 lower bound): >= 0 means auto is "
                         "never slower beyond the intervals; " + "; ".join(
                             f"{t['architecture']}: auto={t['auto_keeps_float']} {t['auto_p50_us']} µs vs int8 "
                             f"{t['int8_p50_us']}, fp32 {t['fp32_p50_us']}" for t in table))]
    finally:
        box.close()
