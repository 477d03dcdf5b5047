"""A new host measured in about a minute (issue #22): every shipped variant timed on a machine that has
none of its own figures, as the app's worker does it in the background, twice.

    $ .venv/bin/python -m benchmarks new_host_measure_all

The sandbox is the shipped cache without this host's latency records; `python -m explorer measure` times
the variants the host lacks (the same pipeline.measure_latency the worker runs, one after another, the
timing pool reused across models), then `measure --all` times them all again: seconds and the share
marked noisy, for each run, and how far the two runs' p50s agree. Target: <= 60 s for the first run.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time

import numpy as np

from benchmarks.report import Row, row
from benchmarks.worker import Sandbox


def _records(box: Sandbox) -> dict[str, dict]:
    from explorer.measure import host

    return {p.parent.parent.name: json.loads(p.read_text())
            for p in box.cache.glob(f"variants/*/latency/{host.current().id}.json")}


def run() -> list[Row]:
    box = Sandbox(forget_this_host=True)
    try:
        runs = []
        for argv in (["measure"], ["measure", "--all"]):
            start = time.perf_counter()
            subprocess.run([sys.executable, "-m", "explorer", *argv], env=box.env, check=True, capture_output=True)
            seconds = time.perf_counter() - start
            recs = _records(box)
            runs.append({"seconds": round(seconds, 1), "variants": len(recs),
                         "noisy_share": round(float(np.mean([r["noisy"] for r in recs.values()])), 3),
                         "outlying_blocks": int(sum(r.get("outlying_blocks", 0) for r in recs.values())),
                         "p50": {k: r["p50_us"] for k, r in recs.items()}})
        first, second = runs
        ratio = [second["p50"][k] / first["p50"][k] for k in first["p50"] if k in second["p50"]]
        detail = {"runs": [{k: v for k, v in r.items() if k != "p50"} for r in runs],
                  "p50_second_over_first": {"median": round(float(np.median(ratio)), 4),
                                            "max_abs_change": round(float(np.max(np.abs(np.log(ratio)))), 4)}}
        return [row("new_host_measure_all", first["seconds"], "s", "<=", 60, detail=detail,
                    note=f"{first['variants']} variants; noisy {first['noisy_share']:.0%} (second run "
                         f"{second['noisy_share']:.0%}, {second['seconds']} s); p50s of the two runs agree within "
                         f"{np.exp(detail['p50_second_over_first']['max_abs_change']) - 1:.1%}")]
    finally:
        box.close()
