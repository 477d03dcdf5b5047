"""The results index: every variant's table figures, and its latency records' summaries, in one SQLite file
(seed replicates kept as evidence too: their figures, no model, no latency).

A view of the results (Pareto, the CLI's list) then reads one table instead of every entry's meta.json
(checksummed) and latency JSONs (2,000 samples each): a search leaves thousands of variants.

The index is derived data and never trusted blindly. Each read first brings it up to date: it lists
the entries and compares each one's fingerprint (size and mtime of its model and meta.json, mtime of its
latency folder) with the stored one; only entries that changed are read again, verified and re-summarized, and entries
that went are dropped. Whoever wrote an entry (the worker, a sweep, a copied folder) needs no hook. A
missing, unreadable or older-schema index is rebuilt from the entries. It lives in the user-data
folder, one file per cache root, never in the cache it describes.
"""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
from contextlib import closing
from pathlib import Path

from explorer.uncertainty import record_interval_columns
from explorer.record import Latency, Problem, VariantRecord
from explorer.store import paths
from explorer.store.cache import LATENCY_DIR, META, TFLITE, CacheError, Store, latency_name, pick_latency

SCHEMA = 6  # 6: provisional latencies; 5: the network's source; 4: memory (peak RAM, flash); 3: evidence entries
# (has_model); 2: accuracy intervals in the summaries
TABLES = """
CREATE TABLE IF NOT EXISTS entries (key TEXT PRIMARY KEY, fingerprint TEXT NOT NULL, summary TEXT, problem TEXT);
CREATE TABLE IF NOT EXISTS latencies (key TEXT NOT NULL, name TEXT NOT NULL, summary TEXT NOT NULL,
                                      PRIMARY KEY (key, name));
CREATE TABLE IF NOT EXISTS info (name TEXT PRIMARY KEY, value INTEGER NOT NULL);
"""


def _fingerprint(entry: str) -> str:
    """Size and mtime of an entry's model and meta.json, and the mtime of its latency folder (a record is
    written by a rename into it, which changes that): it changes whenever any of them is written."""
    parts = []
    for path in (f"{entry}/{TFLITE}", f"{entry}/{META}", f"{entry}/{LATENCY_DIR}"):
        try:
            st = os.stat(path)
            parts.append(f"{st.st_size}:{st.st_mtime_ns}")
        except FileNotFoundError:
            parts.append("-")
    return "|".join(parts)


class ResultsIndex:
    def __init__(self, store: Store, path: Path | None = None):
        self.store = store
        root = str(store.root.resolve())
        self.path = path or paths.state_dir() / "index" / f"results-{hashlib.sha1(root.encode()).hexdigest()[:12]}.sqlite3"

    def _connect(self, rebuilt: bool = False) -> sqlite3.Connection:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        db = sqlite3.connect(self.path, timeout=30)
        try:
            db.execute("PRAGMA journal_mode=WAL")
            (version,) = db.execute("PRAGMA user_version").fetchone()
            if version != SCHEMA:  # a new file, or one written by another version: start over
                db.executescript("DROP TABLE IF EXISTS entries; DROP TABLE IF EXISTS latencies; "
                                 "DROP TABLE IF EXISTS info;")
            db.executescript(TABLES)
            db.execute(f"PRAGMA user_version = {SCHEMA}")
        except sqlite3.DatabaseError as exc:
            db.close()
            if isinstance(exc, sqlite3.OperationalError) or rebuilt:  # e.g. a full disk: say so, delete nothing
                raise
            for suffix in ("", "-wal", "-shm"):  # not a database at all (damaged): rebuild from the entries
                self.path.with_name(self.path.name + suffix).unlink(missing_ok=True)
            return self._connect(rebuilt=True)
        return db

    def refresh(self) -> int:
        """Bring the index up to date with the entries; returns its version (changes when anything did)."""
        now: dict[str, str] = {}
        for kind in ("evidence", "variants"):  # a variant supersedes evidence of the same key
            try:
                with os.scandir(self.store.root / kind) as it:
                    now |= {e.name: f"{kind}|{_fingerprint(e.path)}" for e in it if e.is_dir() and e.name.isalnum()}
            except FileNotFoundError:
                pass
        with closing(self._connect()) as db:
            known = dict(db.execute("SELECT key, fingerprint FROM entries"))
            changed = [k for k, fp in now.items() if known.get(k) != fp]
            gone = [k for k in known if k not in now]
            if changed or gone:
                with db:  # one transaction: readers see the old index or the new one
                    db.execute("BEGIN IMMEDIATE")
                    for key in gone:
                        db.execute("DELETE FROM entries WHERE key = ?", (key,))
                        db.execute("DELETE FROM latencies WHERE key = ?", (key,))
                    for key in changed:
                        self._index(db, key, now[key])
                    db.execute("INSERT INTO info VALUES ('version', 1) "
                               "ON CONFLICT(name) DO UPDATE SET value = value + 1")
            row = db.execute("SELECT value FROM info WHERE name = 'version'").fetchone()
        return row[0] if row else 0

    def _index(self, db: sqlite3.Connection, key: str, fingerprint: str) -> None:
        summary = problem = None
        kind = fingerprint.split("|", 1)[0]
        try:
            v = VariantRecord.from_meta(self.store.verify(kind, key), has_model=kind == "variants")
            summary = json.dumps({**v.summary(), **record_interval_columns(v)})
        except CacheError as exc:
            problem = str(exc)
        except (KeyError, TypeError, ValueError) as exc:  # intact files, but not a variant record
            problem = f"{META} is not a variant record ({type(exc).__name__}: {exc})"
        db.execute("INSERT OR REPLACE INTO entries VALUES (?, ?, ?, ?)", (key, fingerprint, summary, problem))
        db.execute("DELETE FROM latencies WHERE key = ?", (key,))
        for name, record in self.store.latencies(key).items():
            try:
                db.execute("INSERT INTO latencies VALUES (?, ?, ?)",
                           (key, name, json.dumps(Latency.from_dict(record).summary())))
            except (KeyError, TypeError, ValueError):
                continue  # not a latency record: as if it were absent

    def rows(self, host_id: str, threads: int = 1, foreign: bool = True) -> tuple[list[tuple[dict, dict | None]], list[Problem]]:
        """Every intact variant's summary with the latency summary a view shows (this host's at `threads`,
        else with foreign=True another host's; None if neither), and the damaged entries."""
        self.refresh()
        with closing(self._connect()) as db:
            entries = db.execute("SELECT key, summary, problem FROM entries ORDER BY key").fetchall()
            latencies: dict[str, dict[str, dict]] = {}
            for key, name, summary in db.execute("SELECT key, name, summary FROM latencies"):
                latencies.setdefault(key, {})[name] = json.loads(summary)
        found, problems = [], []
        for key, summary, problem in entries:
            if problem is not None:
                problems.append(Problem(key, problem))
                continue
            records = latencies.get(key, {})
            chosen = pick_latency(records, host_id, threads) if foreign else records.get(latency_name(host_id, threads))
            found.append((json.loads(summary), chosen))
        return found, problems
