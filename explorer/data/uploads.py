"""Import a user's dataset from a zip of class folders, validated at the edge.

The zip is read in memory and never extracted, so no name inside it can write anywhere. Sizes are
bounded before anything is decompressed (file count, declared and actual uncompressed bytes, pixels
per image), images are decoded with Pillow and kept at their own resolution and colour: every image is
brought to the most common size among them (bounded), in colour if any image is. A variant's input size
and grey/colour are spec fields, applied when its model is built. The dataset is written to its own new
folder atomically; an existing dataset is never touched.
"""

from __future__ import annotations

import io
import json
import os
import shutil
import uuid
import zipfile
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

import numpy as np
from PIL import Image, UnidentifiedImageError

from explorer.data import datasets
from explorer.store import paths
from explorer import record
from explorer.store.cache import atomic_folder, clean_stale_folders
from explorer.spec import VariantSpec


@dataclass(frozen=True)
class Limits:
    max_zip_bytes: int = 100 * 2**20  # the upload itself
    max_files: int = 20_000
    max_uncompressed_bytes: int = 400 * 2**20  # all members together (zip-bomb guard)
    max_image_pixels: int = 4096 * 4096
    min_images_per_class: int = 5  # so every split of a 70/15/15 stratified split gets one
    max_side: int = 224  # images are kept at their most common size, scaled down to at most this a side
    max_stored_bytes: int = 256 * 2**20  # and smaller still if the decoded dataset would exceed this
    max_disk_bytes: int | None = None  # what the server's disk budget has left for the stored dataset


class UploadError(ValueError):
    """The upload cannot become a dataset; the message says why and what to change."""


@dataclass(frozen=True)
class ImportReport:
    info: datasets.DatasetInfo
    class_counts: dict[str, int]
    skipped: list[str] = field(default_factory=list)  # members that were not readable images


def _check_name(name: str) -> None:
    try:
        VariantSpec(dataset=name)
    except ValueError as exc:
        raise UploadError(f"dataset name {name!r}: use lower-case letters, digits, '-' or '_'") from exc
    if name in datasets.BUILTIN or datasets.user_dataset_dir(name).exists():
        raise UploadError(f"a dataset named {name!r} exists already; choose another name")


def unsafe_member(member: str) -> bool:
    """A zip member's name that would reach outside a folder if it were extracted: absolute, with '..', or on a
    drive (C:). The one rule of every zip a user gives (dataset uploads, .keras archives)."""
    path = PurePosixPath(member.replace("\\", "/"))
    return path.is_absolute() or ".." in path.parts or bool(path.parts and ":" in path.parts[0])


def _safe_parts(member: str) -> tuple[str, ...]:
    if unsafe_member(member):
        raise UploadError(f"unsafe path in the zip: {member!r} (absolute or '..' names are refused)")
    return PurePosixPath(member.replace("\\", "/")).parts


def _members(zf: zipfile.ZipFile, limits: Limits) -> list[tuple[str, tuple[str, ...], zipfile.ZipInfo]]:
    """(class name, path parts, info) of every file, after the safety and size checks."""
    files = [i for i in zf.infolist() if not i.is_dir()]
    files = [i for i in files if not any(p.startswith(".") or p == "__MACOSX" for p in _safe_parts(i.filename))]
    if not files:
        raise UploadError("the zip is empty: it needs one folder per class with images inside")
    if len(files) > limits.max_files:
        raise UploadError(f"the zip holds {len(files):,} files; at most {limits.max_files:,} are accepted")
    declared = sum(i.file_size for i in files)
    if declared > limits.max_uncompressed_bytes:
        raise UploadError(f"the zip unpacks to {declared / 2**20:,.0f} MiB; at most "
                          f"{limits.max_uncompressed_bytes / 2**20:,.0f} MiB are accepted")
    parts = [_safe_parts(i.filename) for i in files]
    # Accept "class/img.png" and "root/class/img.png" (a zip of one top folder).
    if all(len(p) >= 3 for p in parts) and len({p[0] for p in parts}) == 1:
        parts = [p[1:] for p in parts]
    if any(len(p) < 2 for p in parts):
        loose = next("/".join(p) for p in parts if len(p) < 2)
        raise UploadError(f"{loose!r} is not inside a class folder: put each class's images in a folder named after it")
    return [(p[0], p, i) for p, i in zip(parts, files)]


def _decode(data: bytes, limits: Limits) -> Image.Image:
    with Image.open(io.BytesIO(data)) as img:
        if img.width * img.height > limits.max_image_pixels:
            raise UploadError(f"an image of {img.width}x{img.height} pixels is larger than allowed")
        img.load()
        return _eight_bit(img.copy())


def _eight_bit(img: Image.Image) -> Image.Image:
    """16-bit (and 32-bit integer) grey images scaled to 8 bits; Pillow's convert("L") would clip them
    (30000 of 65535 became 255, white)."""
    if img.mode.startswith("I;16") or img.mode == "I":
        arr = np.asarray(img, dtype=np.float64)
        full = 65535.0 if img.mode.startswith("I;16") or arr.max() <= 65535 else float(arr.max())
        return Image.fromarray(np.clip(np.round(arr * 255.0 / full), 0, 255).astype(np.uint8), "L")
    return img


def import_zip(name: str, data: bytes, limits: Limits = Limits()) -> ImportReport:
    """Validate a zip of class folders and store it as dataset `name`; raises UploadError on bad input."""
    name = name.strip()
    if not name:
        raise UploadError("give the dataset a name (lower-case letters, digits, '-' or '_')")
    _check_name(name)
    if len(data) > limits.max_zip_bytes:
        raise UploadError(f"the upload is {len(data) / 2**20:,.1f} MiB; at most {limits.max_zip_bytes / 2**20:,.0f} MiB")
    try:
        zf = zipfile.ZipFile(io.BytesIO(data))
    except zipfile.BadZipFile as exc:
        raise UploadError("this is not a zip file: upload a .zip of class folders") from exc
    images, labels, skipped = [], [], []
    budget = limits.max_uncompressed_bytes
    with zf:
        for cls, parts, info in _members(zf, limits):
            with zf.open(info) as f:
                raw = f.read(budget + 1)  # actual bytes, in case the declared sizes lie
            budget -= len(raw)
            if budget < 0:
                raise UploadError("the zip unpacks to more than its declared size allows (refused as a zip bomb)")
            try:
                images.append(_decode(raw, limits))
                labels.append(cls)
            except UploadError:
                raise  # a limit was hit: refuse the upload, don't skip the file
            except (UnidentifiedImageError, OSError, Image.DecompressionBombError, SyntaxError, ValueError):
                skipped.append("/".join(parts))
    counts = Counter(labels)
    if not counts:
        raise UploadError(f"no readable images found ({len(skipped)} files could not be read as images)")
    if len(counts) < 2:
        raise UploadError(f"only one class ({next(iter(counts))!r}) found: a classifier needs at least two class folders")
    small = {c: n for c, n in counts.items() if n < limits.min_images_per_class}
    if small:
        raise UploadError(f"classes with fewer than {limits.min_images_per_class} images: "
                          + ", ".join(f"{c} ({n})" for c, n in sorted(small.items())))
    return _store(name, images, labels, sorted(counts), skipped, limits)


def import_path(name: str, path: Path, limits: Limits = Limits()) -> ImportReport:
    """Import a zip file or a folder of class folders (zipped in memory, then checked like an upload)."""
    if path.is_file():
        return import_zip(name, path.read_bytes(), limits)
    if not path.is_dir():
        raise UploadError(f"{path} is neither a zip file nor a folder")
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_STORED) as zf:
        for file in sorted(p for p in path.rglob("*") if p.is_file() and not p.is_symlink()):
            if buf.tell() > limits.max_zip_bytes:
                break  # import_zip refuses it with the size message
            zf.write(file, file.relative_to(path).as_posix())
    return import_zip(name, buf.getvalue(), limits)


def stored_size(sizes: list[tuple[int, int]], channels: int, limits: Limits) -> tuple[int, int]:
    """The (width, height) every image is stored at: the most common one, scaled down (keeping its aspect)
    to at most max_side a side and to max_stored_bytes for all images together."""
    w, h = Counter(sizes).most_common(1)[0][0]
    scale = min(1.0, limits.max_side / max(w, h),
                (limits.max_stored_bytes / (len(sizes) * channels * w * h)) ** 0.5)
    return max(1, int(w * scale)), max(1, int(h * scale))


def _store(name, images, labels, class_names, skipped, limits) -> ImportReport:
    """Resize to one size and layout, then write data.npz and info.json into a new folder atomically."""
    colour = any(img.mode not in ("1", "L", "LA", "I", "I;16", "F") for img in images)
    mode, channels = ("RGB", 3) if colour else ("L", 1)
    size = stored_size([img.size for img in images], channels, limits)  # (width, height)
    x = np.stack([np.asarray(img.convert(mode).resize(size, Image.Resampling.BILINEAR), dtype=np.uint8)
                  .reshape(size[1], size[0], channels) for img in images])
    y = np.array([class_names.index(c) for c in labels], dtype=np.int64)
    if limits.max_disk_bytes is not None and x.nbytes + y.nbytes > limits.max_disk_bytes:
        raise UploadError(f"stored, it would take up to {(x.nbytes + y.nbytes) / 2**20:,.1f} MiB, and the disk budget "
                          f"for this app's data has {limits.max_disk_bytes / 2**20:,.1f} MiB left")
    info = datasets.DatasetInfo(name, (size[1], size[0], channels), tuple(class_names),
                                f"uploaded zip: {len(x):,} images, {len(class_names)} classes, "
                                f"kept at {size[0]}x{size[1]}{' RGB' if colour else ' grey'}")
    root = paths.user_datasets_dir()
    clean_stale_folders(root / ".tmp")  # a killed import's leftovers
    with atomic_folder(root / name, root / ".tmp", name, lambda p: (p / "info.json").is_file()) as tmp:
        np.savez_compressed(tmp / "data.npz", x=x, y=y)
        (tmp / "info.json").write_text(json.dumps({"input_shape": list(info.input_shape),
                                                   "class_names": list(class_names), "source": info.source}))
    return ImportReport(info, dict(sorted(Counter(labels).items())), skipped)


def delete(name: str, store) -> int:
    """Remove an uploaded dataset and every cached variant built on it; returns how many variants went.

    Built-in datasets cannot be deleted. The folder is renamed away first, so a reader never sees half of it.
    """
    if name in datasets.BUILTIN:
        raise UploadError(f"{name!r} is built in and cannot be deleted")
    folder = datasets.user_dataset_dir(name)
    if not folder.is_dir():
        raise UploadError(f"there is no uploaded dataset named {name!r}")
    gone = record.keys_where(store, lambda spec: spec.dataset == name)
    for key in gone:
        store.remove(store.kind_of(key), key)
    trash = folder.with_name(f".{name}-{uuid.uuid4().hex[:8]}.deleted")
    os.rename(folder, trash)
    shutil.rmtree(trash, ignore_errors=True)
    datasets.forget()  # a new upload may take the name
    return len(gone)
