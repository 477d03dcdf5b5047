"""Background builds for the app: one thread per variant being built, shared by every session asking.

The page script never blocks on training: it starts (or joins) a job and polls its latest progress.
Two sessions asking for the same variant get the same job; two server processes are kept apart by
the cache's file lock. Cancelling raises inside the build's progress callback, so the build unwinds
before anything is written (cache entries are atomic).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

from explorer import pipeline
from explorer.cache import Store
from explorer.spec import VariantSpec


class Cancelled(Exception):
    """The user cancelled the build."""


@dataclass
class Job:
    spec: VariantSpec
    progress: pipeline.Progress = field(default_factory=lambda: pipeline.Progress("queued", 0.0, "Queued"))
    result: dict | None = None
    report: pipeline.BuildReport | None = None
    error: BaseException | None = None
    cancel_requested: threading.Event = field(default_factory=threading.Event)
    finished: threading.Event = field(default_factory=threading.Event)

    @property
    def done(self) -> bool:
        return self.finished.is_set()

    def cancel(self) -> None:
        self.cancel_requested.set()

    def _on_progress(self, p: pipeline.Progress) -> None:
        if self.cancel_requested.is_set():
            raise Cancelled("cancelled by the user; nothing was saved for this variant")
        self.progress = p


class Jobs:
    """The set of running and recently finished builds in this process."""

    def __init__(self, store: Store | None = None, max_epochs: int = 30):
        self.store = store or Store()
        self.max_epochs = max_epochs  # resource bound: the app refuses bigger training jobs
        self._jobs: dict[str, Job] = {}
        self._lock = threading.Lock()
        # One build at a time per process: Keras keeps global state (seeds, layer names), and two
        # trainings on a 2-core machine would each take twice as long anyway.
        self._build_slot = threading.Lock()

    def submit(self, spec: VariantSpec) -> Job:
        """Start building spec, or join the job already building it.

        A finished job is never reused: its entry may have been removed or damaged since, and a new
        ensure() costs nothing when the cache still has the variant.
        """
        if spec.epochs > self.max_epochs:
            raise ValueError(f"epochs: at most {self.max_epochs} for builds started from the app (got {spec.epochs}); "
                             f"use 'python -m explorer sweep' for longer runs")
        key = spec.key()
        with self._lock:
            job = self._jobs.get(key)
            if job is not None and not job.done:
                return job  # running: share it
            job = self._jobs[key] = Job(spec)
        threading.Thread(target=self._run, args=(job,), name=f"build-{key}", daemon=True).start()
        return job

    def get(self, key: str) -> Job | None:
        with self._lock:
            return self._jobs.get(key)

    def _run(self, job: Job) -> None:
        try:
            if not self._build_slot.acquire(blocking=False):
                job.progress = pipeline.Progress("queued", 0.0, "Queued: waiting for another build to finish")
                self._build_slot.acquire()
            try:
                job._on_progress(pipeline.Progress("starting", 0.0, "Starting"))  # honours an early cancel
                job.result, job.report = pipeline.ensure(job.spec, self.store, job._on_progress)
            finally:
                self._build_slot.release()
        except BaseException as exc:  # reported on the page, never raised into a thread's void
            job.error = exc
        finally:
            job.finished.set()
