"""Latency on the device you deploy to (issue #25): the agent through a transport against the local harness.

On one machine, a `command:sh -c` target (ssh's code path, the transport a local shell) runs the agent in
a fresh virtual environment holding only ai-edge-litert and numpy. For three shipped models (depth 1
int8, the default depth-2 fp32, the depth-3 lever recipe int8), timed side by side and alternating, three
times each: the agent's p50 over the local harness's, and whether their 95 % intervals overlap. Then the
agent environment's size, the agent's seconds per model, and the whole shipped cache measured through the
transport. Target: every ratio within 0.95-1.05.

    $ .venv/bin/python -m benchmarks remote_target
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
import time
from importlib import metadata
from pathlib import Path

import numpy as np

from benchmarks.report import Row, row
from benchmarks.worker import Sandbox

MODELS = ("fashion-mnist-d1w32-fc128-int8", "fashion-mnist-d2w32-fc128-fp32",
          "fashion-mnist-d3w32-fc512-same-bn-do0.3-int8-e30-pat5")
ROUNDS = 3


def _venv(folder: Path) -> Path:
    subprocess.run([sys.executable, "-m", "venv", str(folder)], check=True)
    pins = [f"ai-edge-litert=={metadata.version('ai-edge-litert')}", f"numpy=={metadata.version('numpy')}"]
    subprocess.run([str(folder / "bin" / "pip"), "install", "-q", "--disable-pip-version-check", *pins], check=True)
    return folder / "bin" / "python"


def _megabytes(folder: Path) -> float:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file()) / 2**20


def run() -> list[Row]:
    from explorer import record
    from explorer.measure import targets
    from explorer.run import pipeline
    from explorer.store.cache import Store

    box = Sandbox()
    try:
        with tempfile.TemporaryDirectory(prefix="explorer-agent-env-") as tmp:
            python = _venv(Path(tmp) / "venv")
            target = targets.Target("bench", "command:sh -c", python=str(python))
            store = Store(box.cache)
            found = {v.label: v for v in record.load_all(store, "x")[0] if v.has_model}
            images = {label: pipeline.latency_images(found[label].input_shape) for label in MODELS}
            ratios, detail, agent_seconds = [], {}, []
            for label in MODELS:
                model = store.file_path("variants", found[label].key, "model.tflite").read_bytes()
                local, remote = [], []
                for _ in range(ROUNDS):  # alternating: a drift of the machine reaches both alike
                    local.append(pipeline.time_isolated(model, images[label]))
                    start = time.perf_counter()
                    remote.append(targets.measure_latency(target, model, images[label]))
                    agent_seconds.append(time.perf_counter() - start)
                lp50, rp50 = float(np.median([x.p50_us for x in local])), float(np.median([x.p50_us for x in remote]))
                overlap = all(r.p50_ci_us[0] <= l.p50_ci_us[1] and l.p50_ci_us[0] <= r.p50_ci_us[1]
                              for l, r in zip(local, remote))
                ratios.append(rp50 / lp50)
                detail[label] = {"local_p50_us": round(lp50, 2), "agent_p50_us": round(rp50, 2),
                                 "ratio": round(rp50 / lp50, 3), "intervals_overlap": overlap,
                                 "local_ci_us": [list(map(lambda v: round(v, 2), x.p50_ci_us)) for x in local],
                                 "agent_ci_us": [list(map(lambda v: round(v, 2), x.p50_ci_us)) for x in remote]}
            everything = [v for v in found.values()]
            start = time.perf_counter()
            for v in everything:
                pipeline.measure_latency(store, v, target=target)
            whole = time.perf_counter() - start
            size = _megabytes(Path(tmp) / "venv")
        rows = [row("remote_target", min(ratios), "ratio", ">=", 0.95, detail={"models": detail},
                    note="lowest agent/local p50 over " + ", ".join(f"{k}: {v['ratio']}" for k, v in detail.items())),
                row("remote_target: highest agent/local p50", max(ratios), "ratio", "<=", 1.05),
                row("remote_target: agent environment (ai-edge-litert, numpy and their dependencies)", size, "MiB"),
                row("remote_target: seconds per model through the transport", float(np.median(agent_seconds)), "s",
                    note="its six blocks and its per-op profile; the model sent once per process, the target's "
                         "agents kept across models (started with the first)"),
                row("remote_target: the shipped cache measured through the transport", whole, "s",
                    note=f"{len(everything)} models, one after another")]
        return rows
    finally:
        box.close()
