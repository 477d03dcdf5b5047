"""Where builds and measurements run, behind one small interface: submit / progress / cancel / result.

The app and the CLI ask an Executor; the LocalExecutor (the default) queues the job in SQLite and
makes sure a local worker process serves the queue. A cluster executor (Ray) can take its place
without the pages knowing.
"""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass, field
from typing import Protocol

from explorer.settings import settings
from explorer.measure import host
from explorer.store import paths
from explorer import record
from explorer.run import worker
from explorer.store.cache import Store
from explorer.run.queue import Job, Queue
from explorer.record import VariantRecord
from explorer.spec import VariantSpec


@dataclass(frozen=True)
class JobRequest:
    """What to run: a variant to build, or a cached variant to time on this host."""

    kind: str
    key: str
    label: str
    payload: dict = field(hash=False)

    @classmethod
    def build(cls, spec: VariantSpec, store: Store) -> JobRequest:
        return cls("build", spec.key(), spec.label(), {"spec": spec.to_dict(), **_where(store)})

    @classmethod
    def measure(cls, key: str, label: str, store: Store, force: bool = False, threads: int = 1,
                target: str | None = None, quick: bool = False) -> JobRequest:
        """Time a cached variant here, or on a measurement target (explorer.measure.targets) by name. quick: a
        provisional first pass where it has no figure here (explorer.run.pipeline.time_isolated); without it, a
        provisional figure is measured again by the full protocol."""
        payload = ({**_where(store), "force": force} | ({"threads": threads} if threads > 1 else {})
                   | ({"target": target} if target and target != "local" else {}) | ({"quick": True} if quick else {}))
        suffix = ((f" ({threads} threads)" if threads > 1 else "") + (f" on {target}" if "target" in payload else "")
                  + (" (quick first pass)" if quick else ""))
        return cls("measure", key, label + suffix, payload)

    @classmethod
    def preview(cls, spec: VariantSpec, target=None) -> JobRequest:
        """The latency of spec's untrained architecture on this host, or on a measurement target
        (explorer.run.preview)."""
        from explorer.run import preview  # no TensorFlow until a preview is run

        remote = target is not None and not target.is_local
        return cls("preview", preview.preview_key(spec, target=target if remote else None),
                   spec.label() + (f" on {target.name}" if remote else ""),
                   {"spec": spec.to_dict(), **({"target": target.name} if remote else {})})


def _where(store: Store) -> dict:
    return {"cache_root": str(store.root.resolve()), "stages_root": str(store.stages_root.resolve())}


class Executor(Protocol):
    def submit(self, request: JobRequest, requester: str) -> Job: ...

    def progress(self, job_id: int) -> Job | None: ...

    def cancel(self, job_id: int, requester: str) -> Job | None: ...

    def result(self, job_id: int) -> VariantRecord | None: ...


class LocalExecutor:
    """Jobs in the SQLite queue, run by one worker process on this machine (started on demand)."""

    def __init__(self, store: Store | None = None, queue: Queue | None = None, *, max_epochs: int | None = None,
                 idle_exit_s: float | None = None):
        self.store = store or Store()
        self.queue = queue or Queue()
        self.max_epochs = max_epochs  # a bound on what visitors of the app may train
        # A worker the app started exits after this long with nothing to do; the next request starts another.
        self.idle_exit_s = idle_exit_s if idle_exit_s is not None else settings().worker_idle_exit

    def submit(self, request: JobRequest, requester: str) -> Job:
        if request.kind == "build" and self.max_epochs is not None:
            epochs = request.payload["spec"]["epochs"]
            if epochs > self.max_epochs:
                raise ValueError(f"epochs: at most {self.max_epochs} for builds started from the app (got {epochs}); "
                                 f"use 'python -m explorer sweep' for longer runs")
        job = self.queue.submit(request.kind, request.key, request.label, request.payload, requester)
        self.ensure_worker()
        return job

    def submit_many(self, requests: list[JobRequest], requester: str, background: bool = False) -> int:
        """Queue many jobs of one kind at once (e.g. measure every shipped model); returns how many are new.

        Background jobs wait while a build runs instead of pausing it."""
        kinds = {r.kind for r in requests}
        if len(kinds) > 1:
            raise ValueError("submit_many takes jobs of one kind")
        new = self.queue.submit_many(kinds.pop(), [(r.key, r.label, r.payload) for r in requests], requester,
                                     priority=0 if background else 1) if requests else 0
        if requests:
            self.ensure_worker()
        return new

    def progress(self, job_id: int) -> Job | None:
        self.queue.reap()  # a worker that died mid-job shows as failed, never as running forever
        return self.queue.get(job_id)

    def cancel(self, job_id: int, requester: str) -> Job | None:
        """Withdraw this requester's interest; the job stops only when nobody else waits for it."""
        return self.queue.withdraw(job_id, requester)

    def result(self, job_id: int) -> VariantRecord | None:
        """The built variant (with this host's latency) once its build job is done, else None."""
        job = self.queue.get(job_id)
        if job is None or job.state != "done" or job.kind != "build":
            return None
        return record.load(worker.store_of(job), job.key, host.current().id)

    def ensure_worker(self) -> bool:
        """Start a worker process unless one serves the queue; True if one was started.

        The worker runs in its own session, so it outlives a restart of the web server.
        """
        if worker.running():
            return False
        log = open(paths.worker_log(), "ab")
        subprocess.Popen([sys.executable, "-m", "explorer", "worker", "--idle-exit", str(self.idle_exit_s)],
                         cwd=paths.REPO_ROOT, stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                         env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}, start_new_session=True)
        log.close()
        return True
