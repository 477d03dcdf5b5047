"""Builds on a Ray cluster: sweeps (`sweep --ray`), the app's builds (the worker, with EXPLORER_RAY_ADDRESS) and
search trials (`search --ray`), all through RayBuilds.

This process (the head) keeps the cache. Each build (train, prune, convert, evaluate) runs as a Ray task in a
throw-away store of its own, seeded with the training stages the head already has, so a what-if on a cached
base still only fine-tunes. An uploaded dataset or an imported model travels with it through Ray's object
store, put once (explorer.store.shipping). The task returns the variant's files and metadata, and the stages it
trained, as data; the head writes them into its cache (checksums checked, atomically) and measures the
latency itself, because latency belongs to the machine the user targets. On one machine the tasks share the
head's CPU gate, so no training step runs while it times a model.

Faults: a build whose worker or node is lost is tried once more, on another node where there is one, then
fails naming both nodes; nothing it half-wrote reaches the cache. A node whose TensorFlow, tf-keras, tfmot or
project code differs from the head's is refused at connect, naming both versions (a model built there would
not be the model its key names). Cancelling a build cancels its Ray task.

    local      a Ray cluster on this machine, started for the run (one build per core)
    auto       the cluster `ray start --head` runs on this machine (Ray's own meaning of auto)
    ADDRESS    a running cluster: host:6379, or ray://host:10001 through Ray Client

Every node needs this project installed (`make setup`: the same Python packages and code).
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
import socket
import tempfile
import threading
import time
import uuid
from concurrent.futures import FIRST_COMPLETED, Future, wait
from pathlib import Path
from typing import Any, Collection, Iterable, Iterator

from explorer.measure.ray_agents import reachable
from explorer.record import VariantRecord
from explorer.spec import VariantSpec, library_versions
from explorer.store import paths
from explorer.store import shipping
from explorer.store.cache import Store

CPUS_PER_BUILD = 1
LOCAL_OBJECT_STORE = 256 * 2**20  # the model files, weights and uploads in flight
BOARD = "explorer-builds-board"
PROGRESS_EVERY_S = 0.5


class ClusterError(RuntimeError):
    """The cluster cannot build: unreachable, a node of another version, or a build lost twice."""


def project_version() -> str:
    """A digest of this project's code (explorer/): a node running other code would build other models."""
    h = hashlib.sha256()
    root = paths.REPO_ROOT / "explorer"
    for path in sorted(root.rglob("*.py")):
        h.update(path.relative_to(root).as_posix().encode() + b"\0" + path.read_bytes())
    return h.hexdigest()[:12]


def versions() -> dict[str, str]:
    return {**library_versions(), "project": project_version()}


def node_name() -> str:
    """This Ray node, for people: host name, address and the start of its node id."""
    import ray

    return (f"{socket.gethostname()} {ray.util.get_node_ip_address()} "
            f"(node {ray.get_runtime_context().get_node_id()[:8]})")


def _facts() -> dict:
    return {"node": node_name(), "versions": versions()}


class Board:
    """Where each build on the cluster runs and how far it is, by ticket (a Ray actor on the cluster)."""

    def __init__(self):
        self.notes: dict[str, dict] = {}

    def note(self, ticket: str, **fields) -> None:
        self.notes[ticket] = fields

    def read(self, ticket: str) -> dict | None:
        return self.notes.get(ticket)

    def drop(self, ticket: str) -> None:
        self.notes.pop(ticket, None)


def build_remote(spec: dict, stages: dict[tuple[str, str], tuple[dict, dict[str, bytes]]], board, ticket: str,
                 *folders: shipping.PackedFolder) -> dict:
    """On a Ray worker: install the user's files that travelled (an upload, an imported model), build one variant
    in a temporary store (latency left to the head), and return it and the stages it trained, as exported
    entries."""
    import ray

    from explorer.data import datasets
    from explorer.run import pipeline

    started = time.perf_counter()
    node, node_id, last = node_name(), ray.get_runtime_context().get_node_id(), [0.0]

    def note(stage: str, fraction: float, message: str) -> None:
        board.note.remote(ticket, node=node, node_id=node_id, pid=os.getpid(), stage=stage, fraction=fraction,
                          message=message)

    note("prepare", 0.0, "Starting")
    if any([shipping.install(packed) for packed in folders]):
        datasets.forget()  # this process may have read an older copy

    def progress(p) -> None:
        if time.monotonic() - last[0] >= PROGRESS_EVERY_S:
            last[0] = time.monotonic()
            note(p.stage, p.fraction, p.message)

    variant_spec = VariantSpec.from_dict(spec)
    with tempfile.TemporaryDirectory(prefix="explorer-ray-") as tmp:
        store = Store(Path(tmp) / "cache", Path(tmp) / "stages")
        for (kind, key), (meta, files) in stages.items():
            store.put(kind, key, meta, files)
        t0 = time.perf_counter()
        variant, report = pipeline.ensure(variant_spec, store, progress, measure_missing=False)
        report.seconds["node_build"] = time.perf_counter() - t0
        trained = [(kind, k) for kind, k in pipeline.stage_keys(variant_spec) if kind in report.built]
        out = {"key": variant.key, "variant": store.export("variants", variant.key), "node": node,
               "stages": {s: store.export(*s) for s in trained}}
        report.seconds["node_total"] = time.perf_counter() - started  # with installing, seeding and exporting
        return {**out, "report": dataclasses.asdict(report)}


def connect(address: str) -> dict:
    """Join (or, for 'local', start) the cluster and check its nodes run what the head runs; returns its
    resources (e.g. {'CPU': 2.0, ...}). ClusterError when it cannot be reached or a node differs."""
    import ray

    if not ray.is_initialized():
        try:
            if address not in ("local", "auto"):
                reachable(address)
            quiet = dict(include_dashboard=False, log_to_driver=False, logging_level="ERROR")
            if address == "local":  # its tasks share this machine's user data, so its CPU gate (see the module doc)
                env = {"EXPLORER_DATA_DIR": str(paths.state_dir().resolve()), "TF_CPP_MIN_LOG_LEVEL": "3"}
                ray.init(address="local", num_cpus=os.cpu_count(), object_store_memory=LOCAL_OBJECT_STORE,
                         runtime_env={"env_vars": env}, **quiet)
            else:
                ray.init(address=address, **quiet)
        except (ConnectionError, RuntimeError, ValueError) as exc:
            raise ClusterError(f"the Ray cluster at {address} cannot be reached ({exc})") from exc
    check_versions()
    return ray.cluster_resources()


def check_versions(timeout_s: float = 120.0) -> None:
    """ClusterError naming the node and both versions where a node's libraries or code differ from the head's."""
    import ray
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    facts = ray.remote(num_cpus=0, max_retries=0)(_facts)
    nodes = [n["NodeID"] for n in ray.nodes() if n["Alive"] and n["Resources"].get("CPU", 0) > 0]
    here = versions()
    for found in ray.get([facts.options(scheduling_strategy=NodeAffinitySchedulingStrategy(n, soft=False)).remote()
                          for n in nodes], timeout=timeout_s):
        differ = [f"{name} {found['versions'].get(name, 'missing')} there, {v} here" for name, v in here.items()
                  if found["versions"].get(name) != v]
        if differ:
            raise ClusterError(f"node {found['node']} runs other versions than this head: {'; '.join(differ)}. "
                               "Install the same on every node (make setup from the same commit).")


def board():
    """The cluster's one Board actor (made on first use)."""
    import ray

    return ray.remote(num_cpus=0)(Board).options(name=BOARD, get_if_exists=True).remote()


def _lost() -> tuple[type[Exception], ...]:
    """Ray's errors for a build lost with its worker or node (not one that failed by itself)."""
    from ray import exceptions as e

    return (e.WorkerCrashedError, e.NodeDiedError, e.LocalRayletDiedError, e.ObjectLostError, e.OwnerDiedError,
            e.RaySystemError)


class RayBuilds:
    """Builds on a Ray cluster, as many in flight as the cluster has CPUs per build (search.Builds and more)."""

    def __init__(self, store: Store, address: str = "local", cpus_per_build: int = CPUS_PER_BUILD,
                 **ensure_kwargs: Any):
        import ray

        self.store, self.address, self.ensure_kwargs = store, address, ensure_kwargs
        self.resources = connect(address)
        self.parallelism = max(1, int(self.resources.get("CPU", 1) // cpus_per_build))
        self.where = f"Ray cluster {address} ({self.resources.get('CPU', 0):g} CPUs, {self.parallelism} builds at a time)"
        self._task = ray.remote(num_cpus=cpus_per_build, max_retries=0)(build_remote)  # retried here, elsewhere
        self._board = board()
        self._folders: dict[str, tuple[str, Any]] = {}  # user-data folder -> (digest, object ref)
        self._attempts: dict[Future, tuple[str, Any]] = {}  # a build's future -> its ticket and current task
        self._sent: dict[Future, tuple[float, float]] = {}  # a build's future -> seconds to send it, when sent

    def _travelling(self, spec: VariantSpec) -> list:
        """The user's files the build needs (its upload, its imported model) in the object store: each put once
        (and again after it changed), then shared by every build that uses it."""
        import ray
        from explorer.data import datasets
        from explorer.models import sources

        refs = []
        for folder in (datasets.folder(spec.dataset), sources.for_spec(spec).folder()):
            if folder is not None:
                packed = shipping.pack(folder)
                held = self._folders.get(packed.where)
                if held is None or held[0] != packed.digest:
                    held = self._folders[packed.where] = (packed.digest, ray.put(packed))
                refs.append(held[1])
        return refs

    def submit(self, spec: VariantSpec, watch=None) -> Future:
        """Start a build on the cluster; its future holds the exported result (None when cached already). A watch
        (a progress callback that may stop the build) cannot follow it there: the deadline cancels it instead."""
        from explorer.run import auto_precision, pipeline

        if spec.is_auto:  # the head's profiles choose; the head times it when it lands
            auto = auto_precision.auto_precision(spec, self.store)
            if auto.bound_pending:  # chosen here once, from the int8 sibling's model: a few conversions
                pipeline.choose_bound(spec.replace(precision="full"), spec.max_drop, self.store, None)
                auto = auto_precision.auto_precision(spec, self.store)
            spec = auto.candidate
        outcome: Future = Future()
        if self.store.has("variants", spec.key()):  # nothing to build: land() reads it from the cache
            outcome.set_result(None)
            return outcome
        t0 = time.perf_counter()
        stages = {(kind, key): self.store.export(kind, key) for kind, key in pipeline.stage_keys(spec)
                  if self.store.has(kind, key)}
        args = (spec.to_dict(), stages, self._travelling(spec))
        self._sent[outcome] = (time.perf_counter() - t0, time.perf_counter())  # seconds to send; when sent
        self._attempt(outcome, uuid.uuid4().hex, args, [])
        return outcome

    def _attempt(self, outcome: Future, ticket: str, args: tuple, lost_on: list[dict]) -> None:
        import ray
        from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

        options = {}
        others = [n["NodeID"] for n in ray.nodes() if n["Alive"] and n["Resources"].get("CPU", 0) > 0
                  and n["NodeID"] not in {lost.get("node_id") for lost in lost_on}]
        if lost_on and others:  # once more, on another node
            options["scheduling_strategy"] = NodeAffinitySchedulingStrategy(others[0], soft=True)
        spec, stages, folders = args
        ref = self._task.options(**options).remote(spec, stages, self._board, ticket, *folders)
        self._attempts[outcome] = (ticket, ref)

        def landed(task: Future) -> None:  # on Ray's thread, which must not wait on Ray: settle on another
            threading.Thread(target=settle, args=(task,), daemon=True).start()

        def settle(task: Future) -> None:
            try:
                result = task.result()
                send_s, sent = self._sent.get(outcome, (0.0, time.perf_counter()))
                result["report"]["seconds"] |= {"send": send_s, "round_trip": time.perf_counter() - sent}
                finish(result=result)
            except _lost() as exc:
                where = self.progress(outcome) or {"node": "a node that never reported"}
                if not lost_on and not outcome.cancelled():
                    self._attempt(outcome, ticket, args, [where])
                    return
                first = lost_on[0]["node"] if lost_on else where["node"]
                finish(error=ClusterError(f"the build was lost twice: on {first}, then on {where['node']} "
                                          f"({type(exc).__name__}); nothing of it was kept"))
            except Exception as exc:  # the build itself failed (or was cancelled): as it would here
                finish(error=exc)

        def finish(result: dict | None = None, error: Exception | None = None) -> None:
            self._attempts.pop(outcome, None)
            self._sent.pop(outcome, None)
            self._board.drop.remote(ticket)
            if outcome.cancelled():
                return
            if error is not None:
                outcome.set_exception(error)
            else:
                outcome.set_result(result)

        ref.future().add_done_callback(landed)

    def progress(self, outcome: Future) -> dict | None:
        """Where a build runs and how far it is: node, pid, stage, fraction, message (None before it started)."""
        import ray

        if outcome not in self._attempts:
            return None
        try:
            return ray.get(self._board.read.remote(self._attempts[outcome][0]), timeout=10)
        except Exception:  # the board is out of reach for a moment: no news
            return None

    def cancel(self, outcome: Future) -> None:
        """Stop a build: its Ray task is cancelled (its worker killed), and nothing of it is kept."""
        import ray

        if outcome.cancel() and outcome in self._attempts:
            ray.cancel(self._attempts[outcome][1], force=True)

    def land(self, spec: VariantSpec, result: dict | None, measure: bool = True) -> tuple[VariantRecord, Any]:
        """Write what a task built into the cache (unless another build won), then measure it here."""
        from explorer.run import pipeline

        t0 = time.perf_counter()
        if result is not None:
            for (kind, key), (meta, files) in result["stages"].items():
                with self.store.lock(kind, key):
                    if not self.store.has(kind, key):
                        self.store.put(kind, key, meta, files)
            with self.store.lock("variants", result["key"]):
                if not self.store.has("variants", result["key"]):
                    self.store.put("variants", result["key"], *result["variant"])
        write_s = time.perf_counter() - t0
        variant, here = pipeline.ensure(spec, self.store, **{"measure_missing": measure, **self.ensure_kwargs})
        if result is not None:  # what the cluster built, and what this host added (its latency)
            remote = result["report"]
            here = pipeline.BuildReport(built=[*remote["built"], *here.built], reused=remote["reused"],
                                        seconds={**remote["seconds"], **here.seconds, "write": write_s},
                                        where=result["node"])
        return variant, here


def build_all(specs: Iterable[VariantSpec], builds: RayBuilds, unmeasured: Collection[str] = ()
              ) -> Iterator[tuple[VariantSpec, VariantRecord, Any]]:
    """Build every spec on the cluster, as many at once as it takes, yielding each as it lands (its latency
    measured here, but for the keys in unmeasured). A spec whose base another build in flight is training waits
    for it, so the base is trained once and shipped to the rest."""
    waiting, pending = list(specs), {}
    try:
        while waiting or pending:
            training = {s.base_key() for s in pending.values()}
            for spec in list(waiting):
                if len(pending) >= builds.parallelism:
                    break
                if spec.base_key() in training and not builds.store.has("base", spec.base_key()):
                    continue
                waiting.remove(spec)
                pending[builds.submit(spec)] = spec
                training.add(spec.base_key())
            done, _ = wait(pending, return_when=FIRST_COMPLETED)
            for future in done:
                spec = pending.pop(future)
                yield (spec, *builds.land(spec, future.result(), spec.key() not in unmeasured))
    finally:
        for future in pending:
            builds.cancel(future)
