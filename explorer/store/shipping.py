"""A user's files as bytes that travel to another machine (a Ray node), and installed there.

An upload, or an imported model, lives in one user-data folder. A build on a cluster node needs it in that
node's folder, so the head packs the folder once (Ray's object store then shares it with every build that uses
it) and each build installs it before it starts: written atomically, at the same place under the node's user
data, and skipped where the node already holds the same files (a node on the head's machine shares its folder).
The digest covers the files, so a dataset deleted and uploaded again under the same name replaces the node's
copy. What every machine has (the built-in datasets, keras.applications) never travels.
"""

from __future__ import annotations

import hashlib
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping

from explorer.store import paths
from explorer.store.cache import atomic_folder


@dataclass(frozen=True)
class PackedFolder:
    where: str  # the folder's path under the user data, e.g. "datasets/mine"
    digest: str
    files: Mapping[str, bytes]


def _digest(files: Mapping[str, bytes]) -> str:
    h = hashlib.sha256()
    for name in sorted(files):
        h.update(name.encode() + b"\0" + hashlib.sha256(files[name]).digest())
    return h.hexdigest()[:16]


def _files(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir()) if p.is_file()}


def pack(folder: Path) -> PackedFolder:
    """A folder of the user data (its files, not subfolders), to travel."""
    files = _files(folder)
    return PackedFolder(folder.resolve().relative_to(paths.state_dir().resolve()).as_posix(), _digest(files), files)


def _held(final: Path) -> str | None:
    """The digest of the copy this machine holds, or None."""
    try:
        return _digest(_files(final))
    except OSError:
        return None


def install(packed: PackedFolder) -> bool:
    """Put the folder at its place in this machine's user data unless the same files are there; returns whether
    it wrote (then whoever read the old copy should forget it)."""
    final = paths.state_dir() / packed.where
    if _held(final) == packed.digest:
        return False
    with atomic_folder(final, final.parent / ".tmp", final.name, lambda p: _held(p) == packed.digest) as tmp:
        for name, data in packed.files.items():
            (tmp / name).write_bytes(data)
        if final.exists() and _held(final) != packed.digest:  # another upload under this name: replaced
            shutil.rmtree(final)
    return True
