"""Latency preview (issue #12), side by side in one run:

- latency_preview: seconds from asking the worker (TensorFlow already loaded) for an uncached preview
  to its p50 being stored; target <= 5 s per spec.
- previewed / trained p50 for every shipped variant, both measured on this host in this run
  (target: median within 3 %, every one within 10 %, or explained).

    $ .venv/bin/python -m benchmarks preview
"""

from __future__ import annotations

import time

import numpy as np

from benchmarks.report import Row, print_table, row
from benchmarks.worker import Sandbox, environment
from explorer.measure import host
from explorer.run import pipeline, preview
from explorer import record
from explorer.spec import VariantSpec

ASKED = [VariantSpec(depth=3, quant="int8"), VariantSpec(depth=1, conv="separable", quant="fp32"),
         VariantSpec(depth=2, width=16, dense=64, quant="dynamic")]


def request_to_p50(box: Sandbox) -> list[float]:
    """Through the app's path: queue, worker (warmed by one preview first), stored record."""
    from explorer.store.cache import Store
    from explorer.run.executors import JobRequest, LocalExecutor
    from explorer.run.queue import Queue

    ex = LocalExecutor(Store(box.cache, box.data / "stages"), Queue(box.data / "jobs.sqlite3"))
    seconds = []
    for i, spec in enumerate([VariantSpec(depth=1, quant="fp32", width=8), *ASKED]):
        t0 = time.perf_counter()
        job = ex.submit(JobRequest.preview(spec), "bench")
        while ex.queue.get(job.id).live:
            time.sleep(0.05)
        assert ex.queue.get(job.id).state == "done", ex.queue.get(job.id).message
        if i:  # the first one starts the worker and loads TensorFlow
            seconds.append(time.perf_counter() - t0)
    return seconds


def run() -> list[Row]:
    box = Sandbox()
    try:
        with environment(EXPLORER_CACHE_DIR=str(box.cache), EXPLORER_DATA_DIR=str(box.data)):
            asked = request_to_p50(box)
            from explorer.store.cache import Store

            store = Store(box.cache)
            variants, _ = record.load_all(store, host.current().id)
            ratios, rows_by_label = [], {}
            for variant in sorted(variants, key=lambda v: v.label):
                trained = pipeline.measure_latency(store, variant)
                pre = preview.ensure(variant.spec)[0].latency
                r = pre.p50_us / trained.p50_us
                ratios.append(r)
                (lo, hi), (plo, phi) = trained.p50_ci_us, pre.p50_ci_us
                rows_by_label[variant.label] = (r, trained, pre, plo <= trained.p50_us <= phi or lo <= pre.p50_us <= hi)
    finally:
        box.close()
    arr = np.asarray(ratios)
    off = [(label, v) for label, v in rows_by_label.items() if not v[3]]
    rows = [
        row("latency_preview", max(asked), "s", "<=", 5,
            note="request to stored p50, worker warm; " + ", ".join(f"{s:.1f}" for s in asked) + " s"),
        row("previewed / trained p50, median", float(np.median(arr)), "×", note=f"{len(arr)} shipped variants on "
            f"{host.current().label}; within 3 %: {bool(abs(np.median(arr) - 1) <= 0.03)}"),
        row("previewed / trained p50, worst", float(arr[np.argmax(abs(arr - 1))]), "×",
            note=f"within 10 %: {int((abs(arr - 1) <= 0.10).sum())} of {len(arr)}"),
        row("previews outside the trained model's interval (and vice versa)", len(off), "variants",
            note="; ".join(f"{label}: {v[0]:.3f}" for label, v in off[:12])),
    ]
    return rows


if __name__ == "__main__":
    print_table("Latency preview", run())
