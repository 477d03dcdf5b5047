"""The durable job queue: builds and latency measurements waiting for, or running in, the worker.

One SQLite file in the user-data folder (WAL mode: the app's pages read while the worker writes).
A job is one variant to build or to measure; the people waiting for it are its *requests*. Asking
for a variant that is already queued or running joins that job. Withdrawing a request cancels the
job only when nobody is waiting any more, so one session's Cancel never stops another's build.
A running job whose worker died is marked failed with the stage it was in (reap), never lost.

No TensorFlow and no Streamlit: the pages, the CLI and the worker all use this module.
"""

from __future__ import annotations

import json
import sqlite3
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

from explorer.store import paths
from explorer import process

KINDS = ("build", "measure", "preview")
LIVE = ("queued", "running")
STATES = (*LIVE, "done", "failed", "cancelled")
HEARTBEAT_TIMEOUT_S = 30.0  # a worker registered without its start time, silent this long, is taken for dead

_SCHEMA = """
CREATE TABLE IF NOT EXISTS jobs (
    id INTEGER PRIMARY KEY,
    kind TEXT NOT NULL CHECK (kind IN ('build', 'measure', 'preview')),
    key TEXT NOT NULL,
    label TEXT NOT NULL,
    payload TEXT NOT NULL,
    priority INTEGER NOT NULL DEFAULT 1,
    state TEXT NOT NULL DEFAULT 'queued',
    stage TEXT NOT NULL DEFAULT 'queued',
    fraction REAL NOT NULL DEFAULT 0,
    message TEXT NOT NULL DEFAULT 'Queued',
    error TEXT,
    worker_pid INTEGER,
    created REAL NOT NULL,
    started REAL,
    finished REAL,
    updated REAL NOT NULL
);
CREATE UNIQUE INDEX IF NOT EXISTS one_live_job ON jobs (kind, key, payload) WHERE state IN ('queued', 'running');
CREATE TABLE IF NOT EXISTS requests (
    job_id INTEGER NOT NULL REFERENCES jobs (id),
    requester TEXT NOT NULL,
    active INTEGER NOT NULL DEFAULT 1,
    created REAL NOT NULL,
    PRIMARY KEY (job_id, requester)
);
CREATE TABLE IF NOT EXISTS workers (
    pid INTEGER PRIMARY KEY,
    started REAL NOT NULL,
    heartbeat REAL NOT NULL,
    proc_start INTEGER  -- the process's start, hundredths of a second since the epoch (explorer.process.started)
);
"""


class QueueError(RuntimeError):
    """The queue's database cannot be read or written (e.g. a full disk); the message says which file."""


@dataclass(frozen=True)
class Job:
    """One row of the queue, as the pages and the CLI see it."""

    id: int
    kind: str
    key: str
    label: str
    payload: dict
    state: str
    stage: str
    fraction: float
    message: str
    error: str | None
    worker_pid: int | None
    created: float
    started: float | None
    finished: float | None
    requesters: tuple[str, ...]  # those still waiting for it

    @property
    def live(self) -> bool:
        return self.state in LIVE

    def waited_by(self, requester: str) -> bool:
        return requester in self.requesters


class Queue:
    def __init__(self, path: Path | str | None = None):
        self.path = Path(path) if path is not None else paths.queue_db()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self._db() as db:
            db.executescript(_SCHEMA)
            if "proc_start" not in {r[1] for r in db.execute("PRAGMA table_info(workers)")}:  # a queue from before
                try:
                    db.execute("ALTER TABLE workers ADD COLUMN proc_start INTEGER")
                except sqlite3.OperationalError:  # another process added it a moment ago
                    pass

    @contextmanager
    def _db(self, write: bool = False) -> Iterator[sqlite3.Connection]:
        """A short-lived connection (safe across threads and processes); write=True takes the write lock first."""
        try:
            db = sqlite3.connect(self.path, timeout=30, isolation_level=None)
        except sqlite3.Error as exc:
            raise QueueError(f"the job queue {self.path} cannot be used: {exc}") from exc
        try:
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=NORMAL")
            db.row_factory = sqlite3.Row
            if write:
                db.execute("BEGIN IMMEDIATE")
                try:
                    yield db
                except BaseException:
                    db.execute("ROLLBACK")
                    raise
                db.execute("COMMIT")
            else:
                yield db
        except sqlite3.Error as exc:
            raise QueueError(f"the job queue {self.path} cannot be used: {exc}") from exc
        finally:
            db.close()

    # -- reading -------------------------------------------------------------------------------
    def _job(self, db: sqlite3.Connection, row: sqlite3.Row) -> Job:
        who = tuple(r[0] for r in db.execute(
            "SELECT requester FROM requests WHERE job_id = ? AND active = 1 ORDER BY created", (row["id"],)))
        return Job(row["id"], row["kind"], row["key"], row["label"], json.loads(row["payload"]), row["state"],
                   row["stage"], row["fraction"], row["message"], row["error"], row["worker_pid"], row["created"],
                   row["started"], row["finished"], who)

    def get(self, job_id: int) -> Job | None:
        with self._db() as db:
            row = db.execute("SELECT * FROM jobs WHERE id = ?", (job_id,)).fetchone()
            return self._job(db, row) if row else None

    def latest(self, kind: str, key: str) -> Job | None:
        """The newest job for a variant (live or finished)."""
        with self._db() as db:
            row = db.execute("SELECT * FROM jobs WHERE kind = ? AND key = ? ORDER BY id DESC LIMIT 1",
                             (kind, key)).fetchone()
            return self._job(db, row) if row else None

    def jobs(self, states: tuple[str, ...] = STATES, kind: str | None = None, limit: int = 200) -> list[Job]:
        """Jobs in the given states, oldest first (live ones) — for the CLI's and the pages' lists."""
        marks = ",".join("?" * len(states))
        sql = f"SELECT * FROM jobs WHERE state IN ({marks})" + (" AND kind = ?" if kind else "")
        args = (*states, kind) if kind else states
        with self._db() as db:
            rows = db.execute(sql + " ORDER BY id DESC LIMIT ?", (*args, limit)).fetchall()
            return [self._job(db, r) for r in reversed(rows)]

    def count_live(self, kind: str, priority: int | None = None) -> int:
        sql = "SELECT COUNT(*) FROM jobs WHERE kind = ? AND state IN ('queued', 'running')"
        with self._db() as db:
            if priority is None:
                return db.execute(sql, (kind,)).fetchone()[0]
            return db.execute(sql + " AND priority = ?", (kind, priority)).fetchone()[0]

    # -- requesting ----------------------------------------------------------------------------
    @staticmethod
    def _join_or_add(db: sqlite3.Connection, kind: str, key: str, label: str, payload: dict, requester: str,
                     priority: int, now: float) -> tuple[int, bool]:
        """(job id, whether it is new): the live job for this variant and payload, joined, or a new one."""
        text = json.dumps(payload, sort_keys=True)
        row = db.execute("SELECT id FROM jobs WHERE kind = ? AND key = ? AND payload = ? AND state IN "
                         "('queued', 'running')", (kind, key, text)).fetchone()
        job_id = row[0] if row else db.execute(
            "INSERT INTO jobs (kind, key, label, payload, priority, created, updated) VALUES (?, ?, ?, ?, ?, ?, ?)",
            (kind, key, label, text, priority, now, now)).lastrowid
        db.execute("UPDATE jobs SET priority = MAX(priority, ?) WHERE id = ?", (priority, job_id))
        db.execute("INSERT INTO requests (job_id, requester, active, created) VALUES (?, ?, 1, ?) "
                   "ON CONFLICT (job_id, requester) DO UPDATE SET active = 1", (job_id, requester, now))
        return job_id, row is None

    def submit(self, kind: str, key: str, label: str, payload: dict, requester: str, priority: int = 1) -> Job:
        """Queue a job, or join the live one for the same variant and payload; returns it.

        priority 0 is background work (a new host's first measurements), which waits while a build runs;
        1 is what somebody asked for and is waiting on. Joining raises a job's priority, never lowers it.
        """
        if kind not in KINDS:
            raise ValueError(f"job kind must be one of {KINDS}")
        with self._db(write=True) as db:
            job_id, _ = self._join_or_add(db, kind, key, label, payload, requester, priority, time.time())
        return self.get(job_id)

    def submit_many(self, kind: str, items: list[tuple[str, str, dict]], requester: str, priority: int = 1) -> int:
        """Queue many (key, label, payload) jobs in one transaction; returns how many were new."""
        if kind not in KINDS:
            raise ValueError(f"job kind must be one of {KINDS}")
        now = time.time()
        with self._db(write=True) as db:
            return sum(self._join_or_add(db, kind, key, label, payload, requester, priority, now)[1]
                       for key, label, payload in items)

    def withdraw(self, job_id: int, requester: str) -> Job | None:
        """Withdraw one request. A queued job nobody waits for is cancelled at once; a running one
        is stopped by its worker at the next progress report (see wanted)."""
        now = time.time()
        with self._db(write=True) as db:
            db.execute("UPDATE requests SET active = 0 WHERE job_id = ? AND requester = ?", (job_id, requester))
            waiting = db.execute("SELECT COUNT(*) FROM requests WHERE job_id = ? AND active = 1",
                                 (job_id,)).fetchone()[0]
            if not waiting:
                db.execute("UPDATE jobs SET state = 'cancelled', message = 'Cancelled: nobody is waiting for it', "
                           "finished = ?, updated = ? WHERE id = ? AND state = 'queued'", (now, now, job_id))
        return self.get(job_id)

    def wanted(self, job_id: int) -> bool:
        """Whether anybody still waits for this job."""
        with self._db() as db:
            return db.execute("SELECT COUNT(*) FROM requests WHERE job_id = ? AND active = 1",
                              (job_id,)).fetchone()[0] > 0

    # -- working -------------------------------------------------------------------------------
    def claim(self, kinds: tuple[str, ...], pid: int, min_priority: int = 0) -> Job | None:
        """Take the most urgent, then oldest, queued job of these kinds for the worker pid (None if there is none)."""
        now = time.time()
        marks = ",".join("?" * len(kinds))
        with self._db(write=True) as db:
            row = db.execute(f"SELECT id FROM jobs WHERE kind IN ({marks}) AND state = 'queued' AND priority >= ? "
                             "ORDER BY priority DESC, id LIMIT 1", (*kinds, min_priority)).fetchone()
            if row is None:
                return None
            db.execute("UPDATE jobs SET state = 'running', stage = 'starting', message = 'Starting', "
                       "worker_pid = ?, started = ?, updated = ? WHERE id = ?", (pid, now, now, row[0]))
        return self.get(row[0])

    def progress(self, job_id: int, stage: str, fraction: float, message: str) -> None:
        with self._db(write=True) as db:
            db.execute("UPDATE jobs SET stage = ?, fraction = ?, message = ?, updated = ? WHERE id = ? "
                       "AND state = 'running'", (stage, float(fraction), message, time.time(), job_id))

    def finish(self, job_id: int, state: str, message: str, error: str | None = None) -> None:
        if state not in ("done", "failed", "cancelled"):
            raise ValueError(f"a job finishes as done, failed or cancelled, not {state!r}")
        now = time.time()
        with self._db(write=True) as db:
            db.execute("UPDATE jobs SET state = ?, message = ?, error = ?, fraction = CASE WHEN ? = 'done' "
                       "THEN 1 ELSE fraction END, finished = ?, updated = ? WHERE id = ?",
                       (state, message, error, state, now, now, job_id))

    # -- workers -------------------------------------------------------------------------------
    def register_worker(self, pid: int) -> None:
        now = time.time()
        with self._db(write=True) as db:
            db.execute("INSERT OR REPLACE INTO workers (pid, started, heartbeat, proc_start) VALUES (?, ?, ?, ?)",
                       (pid, now, now, process.started(pid)))

    def heartbeat(self, pid: int) -> None:
        """Say the worker is alive; registers it again if its row went (a reaper judged it silent)."""
        with self._db(write=True) as db:
            if db.execute("UPDATE workers SET heartbeat = ? WHERE pid = ?", (time.time(), pid)).rowcount:
                return
        self.register_worker(pid)

    def unregister_worker(self, pid: int) -> None:
        with self._db(write=True) as db:
            db.execute("DELETE FROM workers WHERE pid = ?", (pid,))

    @staticmethod
    def _alive(row: sqlite3.Row, now: float) -> bool:
        """The registered process still runs: the same pid *and* start time (a reused pid is another
        process), however long since its heartbeat — a wall clock stepped forward, or a laptop that slept,
        does not kill a build. Without a start time, a recent heartbeat and a live pid."""
        if row["proc_start"] is not None:
            return process.alive(row["pid"]) and process.started(row["pid"]) == row["proc_start"]
        return row["heartbeat"] >= now - HEARTBEAT_TIMEOUT_S and process.alive(row["pid"])

    def _live(self, db: sqlite3.Connection) -> list[int]:
        now = time.time()
        return [r["pid"] for r in db.execute("SELECT * FROM workers").fetchall() if self._alive(r, now)]

    def live_workers(self) -> list[int]:
        """Pids of the registered workers that still run."""
        with self._db() as db:
            return self._live(db)

    def reap(self) -> list[Job]:
        """Mark running jobs of dead workers failed, saying where they stopped; returns them.

        Nothing half-written survives a dead worker: cache entries are renamed into place whole.
        """
        now = time.time()
        reaped = []
        with self._db(write=True) as db:
            # Who is alive is read under the write lock: read before it, a worker could register and claim a
            # job in between, and that job would be failed as its worker's (CI saw it, 'starting' at 0 %).
            alive = set(self._live(db))
            for row in db.execute("SELECT * FROM jobs WHERE state = 'running'").fetchall():
                if row["worker_pid"] in alive:
                    continue
                msg = (f"The worker (pid {row['worker_pid']}) stopped during '{row['stage']}' "
                       f"({row['fraction']:.0%}); nothing half-built was kept. Start it again to retry "
                       f"(why it stopped may be in {paths.worker_log()}).")
                db.execute("UPDATE jobs SET state = 'failed', message = ?, error = ?, finished = ?, updated = ? "
                           "WHERE id = ?", (msg, msg, now, now, row["id"]))
                reaped.append(row["id"])
            db.executemany("DELETE FROM workers WHERE pid = ?",
                           [(r["pid"],) for r in db.execute("SELECT pid FROM workers") if r["pid"] not in alive])
        return [self.get(i) for i in reaped]
