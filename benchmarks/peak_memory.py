"""Will it fit: the planned peak RAM held against TensorFlow Lite Micro's own allocator on every shipped variant,
the time the plan takes, and, for three models, the resident memory the agent measures beside the plan.

    $ .venv/bin/python -m benchmarks peak_memory
"""

from __future__ import annotations

import statistics
import time

import numpy as np

from benchmarks.report import Row, row
from explorer import record
from explorer.measure import memory, pool, resident
from explorer.store.cache import TFLITE, Store
from explorer.store.paths import REPO_ROOT

RSS_MODELS = ("fashion-mnist-d2w32-fc128-int8", "fashion-mnist-d2w32-fc128-fp32", "fashion-mnist-d3w32-fc128-sep-int8")


def run() -> list[Row]:
    store = Store(REPO_ROOT / "cached_models")
    variants = [record.load(store, m["key"], "any") for m in store.variants()[0]]
    compared, refused, seconds = [], [], []
    for v in variants:
        model = store.file_path("variants", v.key, TFLITE).read_bytes()
        t0 = time.perf_counter()
        plan = memory.plan(model)
        seconds.append(time.perf_counter() - t0)
        ref = memory.micro_reference(model)
        if ref is None:
            refused.append((v.label, plan.micro_blockers))
            continue
        compared.append({"label": v.label, "head": plan.head_bytes, "micro_head": ref["head"],
                         "total": plan.peak_ram_bytes, "micro_total": ref["total"],
                         "tail": plan.tail_bytes, "micro_tail": ref["tail"]})
    head_err = max(abs(c["head"] - c["micro_head"]) / c["micro_head"] for c in compared)
    total_err = max(abs(c["total"] - c["micro_total"]) / c["micro_total"] for c in compared)
    named = all(blockers for _, blockers in refused)
    rss = []
    image = np.random.default_rng(0).random((28, 28, 1), dtype=np.float32)
    by_label = {v.label: v for v in variants}
    for label in RSS_MODELS:
        v = by_label[label]
        model = store.file_path("variants", v.key, TFLITE).read_bytes()
        added, why = resident.increase(lambda: pool.TimingPool(1), model, image)
        rss.append({"label": label, "planned_arena_bytes": v.memory.peak_ram_bytes, "rss_increase_bytes": added,
                    "why_not": why})
    return [
        row("peak_memory", total_err * 100, "%", "<=", 5.0,
            f"largest relative difference of the planned total (head + tail) from TensorFlow Lite Micro's recording "
            f"allocator over the {len(compared)} shipped variants it runs; heads differ by at most {head_err:.2%}; "
            f"{len(refused)} it cannot run (dynamic range, float16) " + ("each name why" if named else "NOT ALL NAMED"),
            detail={"compared": compared, "refused": [{"label": lb, "why": list(b)} for lb, b in refused]}),
        row("peak_memory_head_difference", head_err * 100, "%", "<=", 0.0, "the head is planned as its planner plans it"),
        row("peak_memory_plan_ms", max(seconds) * 1000, "ms", "<=", 20.0,
            f"slowest plan of the {len(variants)} shipped models (median {statistics.median(seconds) * 1000:.1f} ms): "
            "peak RAM, flash and the arena op by op, from the .tflite"),
        row("peak_memory_rss", statistics.median(r["rss_increase_bytes"] or 0 for r in rss) / 1e6, "MB",
            note="median resident memory a fresh agent process gains from one interpreter, per model: "
                 + "; ".join(f"{r['label'].removeprefix('fashion-mnist-')}: {(r['rss_increase_bytes'] or 0) / 1e6:.2f} MB"
                             f" against a {r['planned_arena_bytes'] / 1000:.1f} KB planned arena" for r in rss)
                 + " (LiteRT's first-use pages, its arena and XNNPACK's packed weights: not a microcontroller's figure)",
            detail={"models": rss}),
    ]
