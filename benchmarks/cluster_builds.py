"""Builds on a Ray cluster against the same builds here, one after another (key `cluster_builds`).

    $ .venv/bin/python -m benchmarks cluster_builds

Eight variants of an uploaded colour dataset (photo patches, 32x32, 8 classes; depth 1-2, width 16-32, fp32 and
int8: four bases, each converted twice), from empty stores: built here one after another through the pipeline,
then through a local Ray cluster on this machine (`sweep --ray local`'s path: the upload travels through the
object store, the head writes every result and measures every latency). Figures: the same keys and test
accuracies; the wall-time ratio, with this machine's cores; each build's overhead of going through Ray (sending
stages and data, scheduling, installing, exporting, writing back); and, on paper from those figures, builds per
hour against the number of nodes, with where the head becomes the limit (it writes and times every build).
"""

from __future__ import annotations

import statistics
import time
from pathlib import Path

from benchmarks.report import Row, row
from benchmarks.worker import in_fresh_user_data

NODES = (1, 2, 4, 8, 16, 32, 64)


def _specs():
    from explorer.spec import VariantSpec

    base = VariantSpec(dataset="bench-photos", epochs=8, patience=0, min_steps=0, tune_epochs=1, batch_size=32)
    return [base.replace(depth=d, width=w, quant=q) for d in (1, 2) for w in (16, 32) for q in ("fp32", "int8")]


def run() -> list[Row]:
    return in_fresh_user_data("cluster-builds-", _run)


def _run(tmp: Path) -> list[Row]:
    import ray

    from benchmarks.small_sets import photo_patches
    from explorer.data import uploads
    from explorer.measure import host
    from explorer.run import cluster, pipeline
    from explorer.store.cache import Store

    uploads.import_zip("bench-photos", photo_patches(800, 32, seed=5))
    specs = _specs()
    here = Store(tmp / "here")
    t0 = time.perf_counter()
    local = {s.key(): pipeline.ensure(s, here)[0] for s in specs}
    local_s = time.perf_counter() - t0

    store = Store(tmp / "ray")
    t0 = time.perf_counter()
    builds = cluster.RayBuilds(store, "local")
    connect_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    landed = {spec.key(): (built, report) for spec, built, report in cluster.build_all(specs, builds)}
    ray_s = time.perf_counter() - t0
    ray.shutdown()

    same_keys = set(landed) == set(local)
    same_accuracy = all(landed[k][0].accuracy == local[k].accuracy for k in local)
    seconds = [report.seconds for _, report in landed.values() if report.where]
    overhead = [s["round_trip"] - s["node_build"] + s["send"] + s["write"] for s in seconds]
    node_total = statistics.mean(s["node_total"] for s in seconds)
    head = statistics.mean(s["write"] + s.get("measure", 0.0) for s in seconds)
    cores = host.current().cores
    per_hour = {n: min(n * cores * 3600 / node_total, 3600 / head) for n in NODES}  # nodes like this machine
    limit = node_total / (head * cores)
    detail = {
        "cores": cores, "variants": [v.label for v in local.values()],
        "local_serial_s": local_s, "ray_s": ray_s, "connect_s": connect_s,
        "per_build": [{"label": landed[k][0].label, "node": landed[k][1].where, **landed[k][1].seconds} for k in landed],
        "builds_per_hour": {str(n): round(v, 1) for n, v in per_hour.items()},
        "head_limit_nodes": limit, "node_total_mean_s": node_total, "head_per_build_s": head,
    }
    return [
        row("cluster_builds", ray_s / local_s, "x",
            note=f"8 variants through a local Ray cluster ({ray_s:.0f} s) against the same 8 built here one after "
                 f"another ({local_s:.0f} s), on {cores} cores; joining the cluster took {connect_s:.1f} s more. "
                 f"Same keys: {same_keys}; same test accuracies: {same_accuracy}", detail=detail),
        row("same keys and test accuracies", float(same_keys and same_accuracy), "", ">=", 1.0),
        row("overhead of going through Ray, median per build", statistics.median(overhead), "s",
            note="sending stages and the upload, scheduling, installing and exporting on the node, writing back here: "
                 f"round trip minus the build ({', '.join(f'{o:.1f}' for o in overhead)} s)"),
        row("head's time per build (write + measure latency)", head, "s"),
        row("builds per hour, 1 node like this one", per_hour[1], "builds/h",
            note=f"a build takes a {cores}-core node {node_total:.1f} s on average (this sweep's mix)"),
        row("nodes at which the head becomes the limit", limit, "nodes",
            note="beyond this, builds wait on the head, which writes every result and times every latency: "
                 + ", ".join(f"{n} nodes {v:,.0f}/h" for n, v in per_hour.items())),
    ]
