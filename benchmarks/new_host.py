"""A new host measured within 30 s (issues #22, #44): every shipped variant timed on a machine that has none of
its own figures, as the app's worker does it in the background: a quick first pass, then the full protocol.

    $ .venv/bin/python -m benchmarks new_host_measure_all

The sandbox is the shipped cache without this host's latency records. `python -m explorer measure --quick` times
every variant the host lacks by the quick first pass (explorer.measure.measure.QUICK: 3 short blocks, no op
profile; marked provisional): its wall time is new_host_measure_all (target <= 30 s), the time until every point
has this host's figure. Then `measure` replaces each provisional figure by the full protocol's (the same
pipeline.measure_latency the worker runs): its time, and how far the first pass's p50s were from the full ones
(the median ratio, the largest change, and the share of full p50s inside the first pass's 95 % interval).
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


def _run(box: Sandbox, argv: list[str]) -> dict:
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "explorer", *argv], env=box.env, check=True, capture_output=True)
    seconds = time.perf_counter() - start
    recs = _records(box)
    return {"seconds": round(seconds, 1), "variants": len(recs),
            "provisional": sum(bool(r.get("provisional")) for r in recs.values()),
            "noisy_share": round(float(np.mean([r["noisy"] for r in recs.values()])), 3),
            "outlying_blocks": int(sum(r.get("outlying_blocks", 0) for r in recs.values())),
            "p50": {k: (r["p50_us"], *r["p50_ci_us"]) for k, r in recs.items()}}


def run() -> list[Row]:
    box = Sandbox(forget_this_host=True)
    try:
        quick, full = _run(box, ["measure", "--quick"]), _run(box, ["measure"])
        keys = [k for k in quick["p50"] if k in full["p50"]]
        ratio = np.array([full["p50"][k][0] / quick["p50"][k][0] for k in keys])
        inside = np.mean([quick["p50"][k][1] <= full["p50"][k][0] <= quick["p50"][k][2] for k in keys])
        detail = {"runs": {name: {k: v for k, v in r.items() if k != "p50"} for name, r in
                           (("quick first pass", quick), ("full protocol", full))},
                  "full_over_quick_p50": {"median": round(float(np.median(ratio)), 4),
                                          "max_abs_change": round(float(np.max(np.abs(np.log(ratio)))), 4),
                                          "full_inside_quick_interval": round(float(inside), 3)}}
        return [row("new_host_measure_all", quick["seconds"], "s", "<=", 30, detail=detail,
                    note=f"{quick['variants']} variants by the quick first pass, all provisional; the full protocol "
                         f"then took {full['seconds']} s ({full['provisional']} left provisional); full p50 over quick: "
                         f"median {np.median(ratio):.3f}, at most {np.exp(np.max(np.abs(np.log(ratio)))) - 1:.1%} "
                         f"apart, {inside:.0%} inside the quick pass's interval")]
    finally:
        box.close()
