"""Search trials built on a Ray cluster, when one machine is not enough (`search --ray local|auto|ADDRESS`).

This process (the head) keeps the study and the cache. Each trial's build (train, prune, convert,
evaluate) runs as a Ray task in a throw-away store of its own, seeded with the training stages the head
already has, so a what-if on a cached base still only fine-tunes. The task returns the variant's files
and metadata, and the stages it trained, as data; the head writes them into its cache (checksums
checked) and then measures the latency itself, because latency belongs to the machine the user targets.
On one machine the tasks share the head's CPU gate, so no training step runs while it times a model.

    local      a Ray cluster on this machine, started for the search (one trial per core)
    auto       the cluster `ray start --head` runs on this machine (Ray's own meaning of auto)
    ADDRESS    a running cluster: host:6379, or ray://host:10001 through Ray Client

Every node needs this project installed (`make setup`: the same Python packages) and, for a dataset other
than the built-in ones, the dataset: uploads live in the head's user-data folder only.
"""

from __future__ import annotations

import dataclasses
import os
import socket
import tempfile
from concurrent.futures import Future
from pathlib import Path
from typing import Any

from explorer.measure.ray_agents import reachable
from explorer.record import VariantRecord
from explorer.spec import VariantSpec
from explorer.store import paths
from explorer.store.cache import Store

CPUS_PER_TRIAL = 1
LOCAL_OBJECT_STORE = 256 * 2**20  # the model files and weights in flight, not datasets


def build_remote(spec: dict, stages: dict[tuple[str, str], tuple[dict, dict[str, bytes]]]) -> dict:
    """On a Ray worker: build one variant in a temporary store (latency left to the head), and return it
    and the stages it trained, as exported entries."""
    from explorer.run import pipeline

    variant_spec = VariantSpec.from_dict(spec)
    with tempfile.TemporaryDirectory(prefix="explorer-ray-") as tmp:
        store = Store(Path(tmp) / "cache", Path(tmp) / "stages")
        for (kind, key), (meta, files) in stages.items():
            store.put(kind, key, meta, files)
        _, report = pipeline.ensure(variant_spec, store, measure_missing=False)
        key = variant_spec.key()
        trained = [(kind, k) for kind, k in pipeline.stage_keys(variant_spec) if kind in report.built]
        return {"variant": store.export("variants", key), "stages": {s: store.export(*s) for s in trained},
                "report": dataclasses.asdict(report)}


def connect(address: str) -> dict:
    """Join (or, for 'local', start) the cluster; returns its resources (e.g. {'CPU': 2.0, ...})."""
    import ray

    if address not in ("local", "auto"):
        reachable(address)
    if not ray.is_initialized():
        quiet = dict(include_dashboard=False, log_to_driver=False, logging_level="ERROR")
        if address == "local":  # its tasks share this machine's user data, so its CPU gate (see the module doc)
            env = {"EXPLORER_DATA_DIR": str(paths.state_dir().resolve()), "TF_CPP_MIN_LOG_LEVEL": "3"}
            ray.init(num_cpus=os.cpu_count(), object_store_memory=LOCAL_OBJECT_STORE,
                     runtime_env={"env_vars": env}, **quiet)
        else:
            ray.init(address=address, **quiet)
    return ray.cluster_resources()


class RayBuilds:
    """search.Builds on a Ray cluster: as many trials in flight as the cluster has CPUs per trial."""

    def __init__(self, store: Store, address: str = "local", cpus_per_trial: int = CPUS_PER_TRIAL,
                 **ensure_kwargs: Any):
        import ray

        self.store, self.ensure_kwargs = store, ensure_kwargs
        self.resources = connect(address)
        self.parallelism = max(1, int(self.resources.get("CPU", 1) // cpus_per_trial))
        self.where = f"Ray cluster {address} ({self.resources.get('CPU', 0):g} CPUs, {self.parallelism} trials at a time)"
        self._task = ray.remote(num_cpus=cpus_per_trial, max_retries=0)(build_remote)

    def submit(self, spec: VariantSpec) -> Future:
        if self.store.has("variants", spec.key()):  # nothing to build: land() reads it from the cache
            cached: Future = Future()
            cached.set_result(None)
            return cached
        from explorer.run import pipeline

        stages = {(kind, key): self.store.export(kind, key) for kind, key in pipeline.stage_keys(spec)
                  if self.store.has(kind, key)}
        return self._task.remote(spec.to_dict(), stages).future()

    def land(self, spec: VariantSpec, result: dict | None) -> tuple[VariantRecord, Any]:
        """Write what a task built into the cache (unless another build won), then measure it here."""
        from explorer.run import pipeline

        if result is not None:
            for (kind, key), (meta, files) in result["stages"].items():
                with self.store.lock(kind, key):
                    if not self.store.has(kind, key):
                        self.store.put(kind, key, meta, files)
            with self.store.lock("variants", spec.key()):
                if not self.store.has("variants", spec.key()):
                    self.store.put("variants", spec.key(), *result["variant"])
        variant, here = pipeline.ensure(spec, self.store, **self.ensure_kwargs)
        if result is not None:  # what the cluster built, and what this host added (its latency)
            remote = result["report"]
            here = pipeline.BuildReport(built=[*remote["built"], *here.built], reused=remote["reused"],
                                        seconds={**remote["seconds"], **here.seconds})
        return variant, here
