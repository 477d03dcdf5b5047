"""An uploaded dataset as bytes that travel to another machine (a Ray node), and installed there.

An upload lives in one user-data folder. A build on a cluster node needs it in that node's folder, so the
head packs its files once (Ray's object store then shares them with every build that uses them) and each
build installs them before it loads the data: written atomically, and skipped where the node already holds
the same files (a node on the head's machine shares its folder). The digest covers the files, so a dataset
deleted and uploaded again under the same name replaces the node's copy. Built-in datasets never travel:
every node has them.
"""

from __future__ import annotations

import hashlib
import shutil
from dataclasses import dataclass
from typing import Mapping

from explorer.data import datasets
from explorer.store import paths
from explorer.store.cache import atomic_folder

FILES = ("info.json", "data.npz")


@dataclass(frozen=True)
class PackedDataset:
    name: str
    digest: str
    files: Mapping[str, bytes]


def _digest(files: Mapping[str, bytes]) -> str:
    h = hashlib.sha256()
    for name in FILES:
        h.update(name.encode() + b"\0" + hashlib.sha256(files[name]).digest())
    return h.hexdigest()[:16]


def pack(name: str) -> PackedDataset | None:
    """An upload's files (None for a built-in dataset)."""
    if name in datasets.BUILTIN:
        return None
    folder = datasets.user_dataset_dir(datasets.info(name).name)  # DatasetError for an unknown name
    files = {f: (folder / f).read_bytes() for f in FILES}
    return PackedDataset(name, _digest(files), files)


def _held(name: str) -> str | None:
    """The digest of the copy this machine holds, or None."""
    folder = datasets.user_dataset_dir(name)
    try:
        return _digest({f: (folder / f).read_bytes() for f in FILES})
    except OSError:
        return None


def install(packed: PackedDataset) -> bool:
    """Put the dataset into this machine's user data unless the same files are there; returns whether it wrote."""
    if _held(packed.name) == packed.digest:
        return False
    root = paths.user_datasets_dir()
    final = root / packed.name
    with atomic_folder(final, root / ".tmp", packed.name, lambda p: _held(packed.name) == packed.digest) as tmp:
        for f, data in packed.files.items():
            (tmp / f).write_bytes(data)
        if final.exists() and _held(packed.name) != packed.digest:  # another upload under this name: replaced
            shutil.rmtree(final)
    datasets.forget()  # this process may have read the other copy
    return True
