"""The build worker: a process of its own that trains, converts, evaluates and times what the queue asks for.

    $ python -m explorer worker            # the app starts one on demand; this runs one in the foreground

Training never runs in the web server (Streamlit's file watcher and its per-rerun clear_session would
slow it several times, and a busy server makes timings wrong). One worker serves a queue: a file lock
keeps a second one from starting. It has two lanes — builds, and latency measurements — so a
measurement asked for during a build is served in seconds: it takes the machine's CPU gate, which
pauses the build at its next batch until the timing is done. Cancelling is checked at every progress
report: a job nobody waits for any more stops, and its cache entry is never written (entries are atomic).
"""

from __future__ import annotations

import faulthandler
import os
import signal
import threading
import time
import traceback
from pathlib import Path

from filelock import FileLock, Timeout

from explorer.measure import gate, host, targets
from explorer.store import paths
from explorer.run import pipeline
from explorer import record
from explorer.store.cache import Store
from explorer.run.queue import Job, Queue
from explorer.spec import VariantSpec

POLL_S = 0.2
HEARTBEAT_S = 2.0
PROGRESS_EVERY_S = 0.25


class Cancelled(Exception):
    """Nobody waits for the job any more."""


def lock_path() -> Path:
    return paths.state_dir() / "worker.lock"


def store_of(job: Job) -> Store:
    return Store(job.payload["cache_root"], job.payload["stages_root"])


class _Reporter:
    """Writes a build's progress to the queue (throttled) and stops it when nobody waits any more."""

    def __init__(self, queue: Queue, job: Job):
        self.queue, self.job = queue, job
        self.stage, self.last = None, 0.0

    def __call__(self, p: pipeline.Progress) -> None:
        now = time.monotonic()
        if p.stage == self.stage and now - self.last < PROGRESS_EVERY_S:
            return
        if not self.queue.wanted(self.job.id):
            raise Cancelled()
        self.stage, self.last = p.stage, now
        self.queue.progress(self.job.id, p.stage, p.fraction, p.message)


def run_build(queue: Queue, job: Job) -> None:
    start = time.monotonic()
    try:
        spec = VariantSpec.from_dict(job.payload["spec"])
        variant, report = pipeline.ensure(spec, store_of(job), _Reporter(queue, job))
        how = "built" if report.built else "found in the cache"
        queue.finish(job.id, "done", f"{how.capitalize()} in {time.monotonic() - start:.1f} s: accuracy "
                     f"{variant.accuracy:.4f}, p50 {variant.latency.p50_us:.1f} µs")
    except Cancelled:
        queue.finish(job.id, "cancelled", "Cancelled: nobody was waiting for it any more; nothing was saved")
    except Exception as exc:  # reported on the page and in `explorer jobs`
        traceback.print_exc()
        queue.finish(job.id, "failed", f"Building {job.label} failed: {exc}", error=repr(exc))


def run_measure(queue: Queue, job: Job) -> None:
    try:
        store = store_of(job)
        threads = int(job.payload.get("threads", 1))
        target = targets.get(job.payload["target"]) if "target" in job.payload else None
        where = target.host if target is not None else host.current()
        quick = bool(job.payload.get("quick")) and target is None
        found = store.read_latency(job.key, where.id, threads)
        if not job.payload.get("force") and found is not None and (quick or not found.get("provisional")):
            queue.finish(job.id, "done", f"Already measured on {target.name if target else 'this host'}")
            return
        if not queue.wanted(job.id):
            raise Cancelled()
        lat = pipeline.measure_latency(store, record.load(store, job.key, where.id), threads,
                                       on_progress=lambda f, msg: queue.progress(job.id, "measure", f, msg),
                                       target=target, quick=quick)
        lo, hi = lat.p50_ci_us
        queue.finish(job.id, "done", f"p50 {lat.p50_us:.1f} µs (95 % interval {lo:.1f}–{hi:.1f})"
                     + (" — noisy" if lat.noisy else ""))
    except Cancelled:
        queue.finish(job.id, "cancelled", "Cancelled: nobody was waiting for it any more")
    except Exception as exc:
        traceback.print_exc()
        queue.finish(job.id, "failed", f"Measuring {job.label} failed: {exc}", error=repr(exc))


def run_preview(queue: Queue, job: Job) -> None:
    from explorer.run import preview

    try:
        spec = VariantSpec.from_dict(job.payload["spec"])
        made, fresh = preview.ensure(spec, target=targets.get(job.payload["target"]) if "target" in job.payload else None)
        queue.finish(job.id, "done", f"p50 {made.latency.p50_us:.1f} µs untrained ({'measured' if fresh else 'cached'})")
    except Exception as exc:
        traceback.print_exc()
        queue.finish(job.id, "failed", f"Previewing {job.label} failed: {exc}", error=repr(exc))


RUNNERS = {"build": run_build, "measure": run_measure, "preview": run_preview}


class ClusterLane:
    """Builds sent to the Ray cluster the server names (EXPLORER_RAY_ADDRESS): the worker runs as many build
    lanes as the cluster takes builds at once, each waiting on its task, then writing and timing its result
    here (the head). Where the cluster cannot be reached, builds fail saying so, or with
    EXPLORER_RAY_FALLBACK_LOCAL=1 are built here."""

    def __init__(self, address: str):
        from explorer.run import cluster

        self.address = address
        self._builds: dict[tuple[str, str], cluster.RayBuilds] = {}
        self._lock = threading.Lock()
        self.parallelism = self.builds(Store()).parallelism  # joins the cluster now: ClusterError when it cannot

    def builds(self, store: Store):
        """The cluster's builds into this store (one per cache, as jobs name theirs)."""
        from explorer.run import cluster

        where = (str(store.root.resolve()), str(store.stages_root.resolve()))
        with self._lock:
            if where not in self._builds:
                self._builds[where] = cluster.RayBuilds(store, self.address)
            return self._builds[where]

    def run(self, queue: Queue, job: Job) -> None:
        start = time.monotonic()
        try:
            spec, store = VariantSpec.from_dict(job.payload["spec"]), store_of(job)
            builds = self.builds(store)
            queue.progress(job.id, "prepare", 0.0, f"Sent to the Ray cluster at {self.address}")
            future = builds.submit(spec)
            while True:
                try:
                    result = future.result(timeout=PROGRESS_EVERY_S * 4)
                    break
                except TimeoutError:
                    if not queue.wanted(job.id):
                        builds.cancel(future)
                        raise Cancelled() from None
                    note = builds.progress(future)
                    if note:
                        queue.progress(job.id, note["stage"], note["fraction"], f"On {note['node']}: {note['message']}")
            queue.progress(job.id, "measure", 0.97, "Writing the result into the cache and timing it here")
            variant, report = builds.land(spec, result)
            where = f" on {report.where}" if report.where else " (found in the cache)"
            queue.finish(job.id, "done", f"Built{where} in {time.monotonic() - start:.1f} s: accuracy "
                         f"{variant.accuracy:.4f}, p50 {variant.latency.p50_us:.1f} µs here")
        except Cancelled:
            queue.finish(job.id, "cancelled", "Cancelled: nobody was waiting for it any more; its Ray task was "
                                              "cancelled and nothing was saved")
        except Exception as exc:
            traceback.print_exc()
            queue.finish(job.id, "failed", f"Building {job.label} on the Ray cluster failed: {exc}", error=repr(exc))


def _refuse(reason: str):
    def run(queue: Queue, job: Job) -> None:
        queue.finish(job.id, "failed", f"Not built: {reason}")
    return run


class Worker:
    def __init__(self, queue: Queue | None = None, idle_exit_s: float | None = None):
        self.queue = queue or Queue()
        self.idle_exit_s = idle_exit_s
        self.pid = os.getpid()
        self.stop = threading.Event()
        self.busy = {"build": 0, "measure": 0}  # jobs running in each kind of lane
        self.last_active = time.monotonic()

    def _lane(self, lane: str, kinds: tuple[str, ...], runner=None) -> None:
        while not self.stop.is_set():
            # Background measurements wait while a build runs; asked-for ones pause it (the CPU gate).
            job = self.queue.claim(kinds, self.pid, min_priority=1 if lane == "measure" and self.busy["build"] else 0)
            if job is None:
                self.stop.wait(POLL_S)
                continue
            self.busy[lane] += 1
            print(f"{time.strftime('%H:%M:%S')} worker {self.pid}: {job.kind} job {job.id} ({job.label}) started",
                  flush=True)
            try:
                (runner or RUNNERS[job.kind])(self.queue, job)
            finally:
                self.busy[lane] -= 1
                self.last_active = time.monotonic()
                print(f"{time.strftime('%H:%M:%S')} worker {self.pid}: job {job.id} ended: "
                      f"{self.queue.get(job.id).state}", flush=True)

    def _warm_up(self) -> None:
        """Import TensorFlow before the first build asks — once the measurements asked for first are
        done (a new host's first page view queues them), and under the gate: it is seconds of CPU."""
        while self.queue.count_live("measure") and not self.queue.count_live("build") and not self.stop.is_set():
            self.stop.wait(POLL_S)
        with gate.machine().shared():
            from explorer.models import tf_runtime  # noqa: F401

    def serve(self) -> int:
        """Run until stopped (or idle for idle_exit_s); returns 0, or 1 when another worker serves the queue."""
        lock = _lock()
        try:  # running() probes the lock for an instant: do not mistake it for a worker
            lock.acquire(timeout=2, poll_interval=0.1)
        except Timeout:
            return 1
        try:
            self.queue.register_worker(self.pid)
            for job in self.queue.reap():
                print(f"worker: marked job {job.id} failed: {job.message}", flush=True)
            lanes = [*self._build_lanes(),
                     threading.Thread(target=self._lane, args=("measure", ("measure", "preview")),
                                      name="measure-lane", daemon=True)]
            for t in lanes:
                t.start()
            print(f"worker {self.pid}: serving {self.queue.path}", flush=True)
            while not self.stop.wait(HEARTBEAT_S):
                self.queue.heartbeat(self.pid)
                idle = not any(self.busy.values()) and time.monotonic() - self.last_active
                if self.idle_exit_s is not None and idle and idle > self.idle_exit_s:
                    self.stop.set()
            for t in lanes:
                t.join(timeout=60)
            return 0
        finally:
            self.queue.unregister_worker(self.pid)
            lock.release()

    def _build_lanes(self) -> list[threading.Thread]:
        """One lane building here; or, with EXPLORER_RAY_ADDRESS, as many as the cluster takes builds at once."""
        from explorer.settings import settings

        now = settings()
        if now.ray_address is None:
            return [threading.Thread(target=self._warm_then_build, name="build-lane", daemon=True)]
        from explorer.run import cluster

        try:
            lane = ClusterLane(now.ray_address)
        except cluster.ClusterError as exc:
            if now.ray_fallback_local:
                print(f"worker {self.pid}: {exc}; building on this machine (EXPLORER_RAY_FALLBACK_LOCAL=1)", flush=True)
                return [threading.Thread(target=self._warm_then_build, name="build-lane", daemon=True)]
            print(f"worker {self.pid}: {exc}; builds fail until it can be (or set EXPLORER_RAY_FALLBACK_LOCAL=1)",
                  flush=True)
            refuse = _refuse(f"{exc} (the server builds only there: set EXPLORER_RAY_FALLBACK_LOCAL=1 to build on "
                             "this machine instead)")
            return [threading.Thread(target=self._lane, args=("build", ("build",), refuse), daemon=True)]
        print(f"worker {self.pid}: builds go to the Ray cluster at {now.ray_address}, {lane.parallelism} at a time",
              flush=True)
        return [threading.Thread(target=self._lane, args=("build", ("build",), lane.run), name=f"ray-lane-{i}",
                                 daemon=True) for i in range(lane.parallelism)]

    def _warm_then_build(self) -> None:
        if self.queue.count_live("build") == 0:  # a queued build imports TensorFlow itself, at once
            self._warm_up()
        self._lane("build", ("build",))


def _lock() -> FileLock:
    return FileLock(lock_path(), mode=0o644, preserve_lock_file=True)


def running() -> bool:
    """Whether a worker holds the lock of this user-data folder's queue."""
    lock = _lock()
    try:
        lock.acquire(timeout=0)
    except Timeout:
        return True
    lock.release()
    return False


def main(idle_exit_s: float | None) -> int:
    faulthandler.enable()  # a crash in TensorFlow or LiteRT leaves its stack in worker.log, not just a dead pid
    worker = Worker(idle_exit_s=idle_exit_s)
    signal.signal(signal.SIGTERM, lambda *_: worker.stop.set())
    code = worker.serve()
    if code == 1:
        print("worker: another worker already serves this queue", flush=True)
    return code
