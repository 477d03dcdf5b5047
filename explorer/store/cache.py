"""The cache store: one folder per entry, written atomically, checked on read, locked while built.

Layout under the cache root (cached_models/ by default: the shipped cache holds final variants only):
    variants/<key>/model.tflite, meta.json, latency/<host id>.json   final variants
    evidence/<key>/meta.json, predictions.u8   seed replicates kept without their model (the shipped cache's
                 further seeds: their accuracy and predictions count, their latency is their first seed's)
    .tmp/   entries being written
and under the stages root (user_data/stages/ by default; <root>/stages for a cache folder named
explicitly, so tests and `--cache DIR` stay self-contained):
    base/<key>/, tuned/<key>/    trained Keras weights, reused by later builds
    .locks/   one lock file per key being built (kept: removing a lock file others may hold is unsafe)
The shipped cache may hold stages too (cached_models/stages/base/: the shipped architectures' trained
bases, so a fresh clone's what-ifs fine-tune only); they are read when the user's stages lack a key,
and never written or removed.

An entry is filled in .tmp/ and renamed into place in one step, so a crash never leaves half an entry
behind. Locks are filelock's file locks (flock underneath): the kernel drops them when their process dies,
so a killed build never blocks the next one. No TensorFlow here: results-only pages read the cache through this module.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import time
import uuid
from contextlib import contextmanager
from pathlib import Path
from typing import Callable, Iterator, Mapping

import numpy as np
from filelock import FileLock

from explorer import process
from explorer.record import Problem
from explorer.store import paths

KINDS = ("base", "tuned", "variants", "evidence")
RESULT_KINDS = ("variants", "evidence")  # under the cache root; the others are stages
META = "meta.json"
TFLITE = "model.tflite"  # a variant's converted model
WEIGHTS = "weights.npz"  # a stage's Keras weights (explorer.models.model reads and writes them)
PREDICTIONS = "predictions.u8"  # a variant's predicted class per test image, one byte each (paired tests)
LATENCY_DIR = "latency"  # per-host measurements: rewritten in place, so outside the checksums
STALE_TMP_SECONDS = 6 * 3600  # a temp folder of a live process older than this is abandoned too


class CacheError(RuntimeError):
    """An entry is missing, damaged or could not be written; the message says which and why."""


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_json_atomic(path: Path, data: dict) -> None:
    """Write JSON next to path, fsync, then rename over it: readers see the old or the new file."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp")
    try:
        with open(tmp, "w") as f:
            json.dump(data, f, indent=1, sort_keys=True)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


@contextmanager
def atomic_folder(final: Path, tmp_root: Path, tag: str,
                  complete: Callable[[Path], bool] = lambda p: True) -> Iterator[Path]:
    """Fill a temporary folder, then fsync its files and rename it into place as `final` in one step.

    The temp folder sits in tmp_root (on final's file system, so the rename is atomic) and carries the
    writer's pid, so clean_stale_folders() can remove a dead writer's. If a complete `final` appeared
    meanwhile (another writer won), the new copy is discarded; an incomplete one is debris and replaced.
    """
    tmp_root.mkdir(parents=True, exist_ok=True)
    tmp = tmp_root / f"{tag}-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    tmp.mkdir()
    try:
        yield tmp
        for path in tmp.rglob("*"):
            if path.is_file():
                with open(path, "rb") as f:
                    os.fsync(f.fileno())
        final.parent.mkdir(parents=True, exist_ok=True)
        if final.exists():
            if complete(final):
                return
            shutil.rmtree(final)
        os.rename(tmp, final)
        _fsync_dir(final.parent)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def clean_stale_folders(tmp_root: Path) -> list[Path]:
    """Remove temp folders of dead writers (or abandoned for hours) from tmp_root; returns what went."""
    removed = []
    now = time.time()
    for d in tmp_root.iterdir() if tmp_root.is_dir() else ():
        parts = d.name.rsplit("-", 2)
        pid = int(parts[1]) if len(parts) == 3 and parts[1].isdigit() else None
        if pid is None or not process.alive(pid) or now - d.stat().st_mtime > STALE_TMP_SECONDS:
            shutil.rmtree(d, ignore_errors=True)
            removed.append(d)
    return removed


def latency_name(host_id: str, threads: int = 1) -> str:
    """A latency record's name: <host id> at 1 thread (the default view), <host id>-t<n> at n threads."""
    return host_id if threads == 1 else f"{host_id}-t{threads}"


def pick_latency(records: Mapping[str, Mapping], host_id: str, threads: int = 1) -> Mapping | None:
    """Of an entry's latency records (by name), this host's at `threads`; else the newest measured on another
    host at 1 thread, or at several threads when several are asked for (its host says which, its threads
    how many)."""
    here = records.get(latency_name(host_id, threads))
    if here is not None:
        return here
    same_kind = [r for name, r in records.items() if ("-t" in name) == (threads > 1)]
    return max(same_kind, key=lambda r: r.get("measured_at", ""), default=None)


class Store:
    def __init__(self, root: Path | str | None = None, stages_root: Path | str | None = None):
        self.root = Path(root) if root is not None else paths.cache_dir()
        if stages_root is not None:
            self.stages_root = Path(stages_root)
        else:
            self.stages_root = self.root / "stages" if root is not None else paths.stages_dir()
        shipped = self.root / "stages"
        self.shipped_stages = shipped if shipped.resolve() != self.stages_root.resolve() else None

    # -- paths ---------------------------------------------------------------------------------
    def _base(self, kind: str) -> Path:
        return self.root if kind in RESULT_KINDS else self.stages_root

    def entry_dir(self, kind: str, key: str) -> Path:
        if kind not in KINDS:
            raise ValueError(f"kind must be one of {KINDS}")
        if not key.isalnum():
            raise CacheError(f"invalid cache key {key!r}")
        return self._base(kind) / kind / key

    def found_dir(self, kind: str, key: str) -> Path:
        """Where an entry is read from: the writable folder, else (stages only) the shipped one if it has it."""
        own = self.entry_dir(kind, key)
        if kind not in RESULT_KINDS and self.shipped_stages is not None and not (own / META).is_file():
            shipped = self.shipped_stages / kind / key
            if (shipped / META).is_file():
                return shipped
        return own

    def has(self, kind: str, key: str) -> bool:
        """An entry exists once its folder holds meta.json (renamed in whole, never partial)."""
        return (self.found_dir(kind, key) / META).is_file()

    # -- writing -------------------------------------------------------------------------------
    def write(self, kind: str, key: str, meta: dict, fill: Callable[[Path], None]) -> Path:
        """Create an entry atomically: fill(tmp_dir) writes the files, then checksums and meta are added.

        If the entry appeared meanwhile (another process won), the new copy is discarded.
        """
        final = self.entry_dir(kind, key)
        with atomic_folder(final, self._base(kind) / ".tmp", f"{kind}-{key}", lambda p: (p / META).is_file()) as tmp:
            fill(tmp)
            files = {
                str(p.relative_to(tmp)): {"sha256": sha256_file(p), "bytes": p.stat().st_size}
                for p in sorted(tmp.rglob("*"))
                if p.is_file() and p.relative_to(tmp).parts[0] != LATENCY_DIR
            }
            (tmp / META).write_text(json.dumps({**meta, "key": key, "files": files}, indent=1, sort_keys=True))
        return final

    def export(self, kind: str, key: str) -> tuple[dict, dict[str, bytes]]:
        """A verified entry as data (meta, file name -> bytes; latencies aside), to send to another store."""
        meta = self.verify(kind, key)
        folder = self.found_dir(kind, key)
        return meta, {name: (folder / name).read_bytes() for name in meta["files"]}

    def put(self, kind: str, key: str, meta: dict, files: dict[str, bytes]) -> Path:
        """Write an exported entry, atomically, once its files match the checksums it was exported with."""
        listed = meta.get("files", {})
        if set(files) != set(listed):
            raise CacheError(f"{kind} entry {key}: the files sent are not the files its meta lists")
        for name, data in files.items():
            if len(data) != listed[name].get("bytes") or hashlib.sha256(data).hexdigest() != listed[name].get("sha256"):
                raise CacheError(f"{kind} entry {key}: {name} does not match its checksum (damaged on the way)")
        fresh = {k: v for k, v in meta.items() if k not in ("key", "files")}
        return self.write(kind, key, fresh, lambda d: [(d / name).write_bytes(data) for name, data in files.items()])

    def remove(self, kind: str, key: str) -> None:
        """Drop an entry (e.g. a damaged one before rebuilding): rename away first, then delete."""
        final = self.entry_dir(kind, key)
        if final.exists():
            trash = self._base(kind) / ".tmp" / f"trash-{key}-{uuid.uuid4().hex[:8]}"
            trash.parent.mkdir(parents=True, exist_ok=True)
            os.rename(final, trash)
            shutil.rmtree(trash, ignore_errors=True)

    def clean_stale(self) -> list[Path]:
        """Remove temp folders left by dead processes (or abandoned for hours); returns what went."""
        return [*clean_stale_folders(self.root / ".tmp"), *clean_stale_folders(self.stages_root / ".tmp")]

    def lock_path(self, kind: str, key: str) -> Path:
        """Lock files live beside the stages (user data), never in the shipped cache folder."""
        return self.stages_root / ".locks" / f"{kind}-{key}.lock"

    @contextmanager
    def lock(self, kind: str, key: str) -> Iterator[None]:
        """Exclusive lock on building one entry, across processes and threads."""
        path = self.lock_path(kind, key)
        path.parent.mkdir(parents=True, exist_ok=True)
        with FileLock(path, mode=0o644, preserve_lock_file=True):  # a new object per call: threads exclude too
            yield

    # -- reading -------------------------------------------------------------------------------
    def read_meta(self, kind: str, key: str) -> dict:
        path = self.found_dir(kind, key) / META
        try:
            meta = json.loads(path.read_text())
        except FileNotFoundError as exc:
            raise CacheError(f"{kind} entry {key} does not exist") from exc
        except (ValueError, UnicodeDecodeError) as exc:
            raise CacheError(f"{kind} entry {key}: meta.json is not valid JSON ({exc})") from exc
        if not isinstance(meta, dict) or not isinstance(meta.get("files"), dict):
            raise CacheError(f"{kind} entry {key}: meta.json lacks its file list")
        return meta

    def verify(self, kind: str, key: str, meta: dict | None = None) -> dict:
        """Meta of an entry whose files all match their recorded size and checksum, else CacheError."""
        meta = meta if meta is not None else self.read_meta(kind, key)
        folder = self.found_dir(kind, key)
        for name, rec in meta["files"].items():
            path = folder / name
            if not path.is_file():
                raise CacheError(f"{kind} entry {key}: {name} is missing")
            if path.stat().st_size != rec.get("bytes") or sha256_file(path) != rec.get("sha256"):
                raise CacheError(f"{kind} entry {key}: {name} does not match its checksum (damaged file)")
        return meta

    def add_file(self, kind: str, key: str, name: str, data: bytes) -> None:
        """Add a file to an existing entry (e.g. a variant's predictions, computed later from its model):
        the file lands by a rename, then meta.json lists its checksum (rewritten by a rename too), so a
        reader sees the entry without it or with it whole."""
        with self.lock(kind, key):
            meta = self.verify(kind, key)
            folder = self.entry_dir(kind, key)
            tmp = folder / f".{name}.{uuid.uuid4().hex[:8]}.tmp"
            tmp.write_bytes(data)
            os.replace(tmp, folder / name)
            files = {**meta["files"], name: {"sha256": hashlib.sha256(data).hexdigest(), "bytes": len(data)}}
            write_json_atomic(folder / META, {**meta, "files": files})

    def amend_meta(self, kind: str, key: str, change: Callable[[dict], dict]) -> None:
        """Rewrite an entry's meta.json (by a rename) with a figure derived later from its files, e.g. a
        variant's memory plan from its model; the files and their checksums stay as they are."""
        with self.lock(kind, key):
            meta = self.verify(kind, key)
            new = change(meta)
            if new.get("files") != meta["files"]:
                raise ValueError("amend_meta changes figures, never the entry's file list")
            write_json_atomic(self.entry_dir(kind, key) / META, new)

    def keep_as_evidence(self, key: str) -> None:
        """Turn a variant into evidence: its meta.json and test predictions stay (under evidence/), its model
        and latencies go. For the shipped cache's further seeds, which would otherwise cost a model each:
        their accuracy counts in a seed point, whose latency is measured on its first seed's model."""
        meta = self.verify("variants", key)
        if PREDICTIONS not in meta["files"]:
            raise CacheError(f"variants entry {key}: no test predictions to keep as evidence")
        data = self.file_path("variants", key, PREDICTIONS).read_bytes()
        self.write("evidence", key, {k: v for k, v in meta.items() if k not in ("key", "files")},
                   lambda d: (d / PREDICTIONS).write_bytes(data))
        self.remove("variants", key)

    def kind_of(self, key: str) -> str:
        """Where a result lives: 'variants' (a model), else 'evidence' (CacheError if neither has it)."""
        for kind in RESULT_KINDS:
            if self.has(kind, key):
                return kind
        raise CacheError(f"variants entry {key} does not exist")

    def read_predictions(self, key: str) -> np.ndarray | None:
        """A variant's (or evidence's) stored test predictions (uint8), or None if it has none (built before
        they were kept)."""
        kind = self.kind_of(key)
        meta = self.read_meta(kind, key)
        rec = meta["files"].get(PREDICTIONS)
        if rec is None:
            return None
        data = self.file_path(kind, key, PREDICTIONS).read_bytes()
        if len(data) != rec.get("bytes") or hashlib.sha256(data).hexdigest() != rec.get("sha256"):
            raise CacheError(f"variants entry {key}: {PREDICTIONS} does not match its checksum (damaged file)")
        return np.frombuffer(data, dtype=np.uint8)

    def file_path(self, kind: str, key: str, name: str) -> Path:
        return self.found_dir(kind, key) / name

    def variant_keys(self, kind: str = "variants") -> list[str]:
        folder = self.root / kind
        return sorted(p.name for p in folder.iterdir() if p.is_dir() and p.name.isalnum()) if folder.is_dir() else []

    def variants(self, kind: str = "variants") -> tuple[list[dict], list[Problem]]:
        """Every intact variant's (or kind='evidence': evidence's) meta, and the damaged ones with the reason
        (skipped, not raised)."""
        good, bad = [], []
        for key in self.variant_keys(kind):
            try:
                good.append(self.verify(kind, key))
            except CacheError as exc:
                bad.append(Problem(key, str(exc)))
        return good, bad

    # -- per-host latency ----------------------------------------------------------------------
    def latency_path(self, key: str, host_id: str, threads: int = 1) -> Path:
        return self.entry_dir("variants", key) / LATENCY_DIR / f"{latency_name(host_id, threads)}.json"

    def read_latency(self, key: str, host_id: str, threads: int = 1) -> dict | None:
        try:
            return json.loads(self.latency_path(key, host_id, threads).read_text())
        except (FileNotFoundError, ValueError):
            return None

    def latencies(self, key: str) -> dict[str, dict]:
        """Every readable latency record of an entry, by name (latency_name)."""
        folder = self.entry_dir("variants", key) / LATENCY_DIR
        found = {}
        for path in (folder.glob("*.json") if folder.is_dir() else ()):
            try:
                found[path.stem] = json.loads(path.read_text())
            except ValueError:
                continue
        return found

    def latency_or_foreign(self, key: str, host_id: str, threads: int = 1) -> dict | None:
        """This host's latency record at `threads`, else another host's (pick_latency)."""
        here = self.read_latency(key, host_id, threads)
        return here if here is not None else pick_latency(self.latencies(key), host_id, threads)

    def write_latency(self, key: str, host_id: str, record: dict, threads: int = 1) -> None:
        if not self.has("variants", key):
            raise CacheError(f"variant {key} does not exist")
        path = self.latency_path(key, host_id, threads)
        path.parent.mkdir(exist_ok=True)
        write_json_atomic(path, record)
