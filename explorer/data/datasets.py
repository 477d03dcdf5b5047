"""Datasets: Fashion-MNIST from local IDX files, scikit-learn's digits, and the user's own uploads.

Nothing is downloaded at run time. Every dataset comes as train/val/test splits of float32 images in
[0, 1] shaped (N, H, W, C); the validation split is carved from training data and the test split is
only used for the reported accuracy. Splits use a fixed seed of their own, so every variant of a
dataset sees the same images whatever its training seed.
"""

from __future__ import annotations

import dataclasses
import functools
import gzip
import json
import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from explorer.spec import VariantSpec
from explorer.settings import SETTINGS, settings
from explorer.store import paths

FASHION_MNIST_FILES = {
    "train_x": "train-images-idx3-ubyte.gz",
    "train_y": "train-labels-idx1-ubyte.gz",
    "test_x": "t10k-images-idx3-ubyte.gz",
    "test_y": "t10k-labels-idx1-ubyte.gz",
}
FASHION_MNIST_CLASSES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                         "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot")
SPLIT_SEED = 1234  # fixed: the split must not move with a variant's training seed


class DatasetError(RuntimeError):
    """A dataset is missing or malformed; the message says what to do."""


@dataclass(frozen=True)
class DatasetInfo:
    """What a variant needs to know about a dataset without loading it."""

    name: str
    input_shape: tuple[int, int, int]
    class_names: tuple[str, ...]
    source: str  # where it comes from, for the Data page
    flips: bool = False  # whether a horizontal flip keeps an image's label (clothing: yes; digits: no)

    @property
    def num_classes(self) -> int:
        return len(self.class_names)


@dataclass(frozen=True)
class Dataset:
    info: DatasetInfo
    x_train: np.ndarray
    y_train: np.ndarray
    x_val: np.ndarray
    y_val: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    augmentation: tuple[dict, ...] = ()  # tf-keras layer configs that augment training batches (an imported model's)


# -- splitting ---------------------------------------------------------------------------------
def stratified_split(y: np.ndarray, fractions: tuple[float, ...], seed: int) -> list[np.ndarray]:
    """Index arrays, one per fraction, each holding that share of every class (the last takes the rest)."""
    rng = np.random.default_rng(seed)
    parts: list[list[np.ndarray]] = [[] for _ in fractions]
    for cls in np.unique(y):
        idx = rng.permutation(np.flatnonzero(y == cls))
        bounds = np.round(np.cumsum(fractions)[:-1] * len(idx)).astype(int)
        for part, chunk in zip(parts, np.split(idx, bounds)):
            part.append(chunk)
    return [np.sort(np.concatenate(p)) for p in parts]


def _with_val(info: DatasetInfo, x_train, y_train, x_test, y_test, val_fraction: float) -> Dataset:
    train_idx, val_idx = stratified_split(y_train, (1 - val_fraction, val_fraction), SPLIT_SEED)
    return Dataset(info, x_train[train_idx], y_train[train_idx], x_train[val_idx], y_train[val_idx], x_test, y_test)


def _as_images(x: np.ndarray, scale: float, raw: bool = False) -> np.ndarray:
    """Images with a channel axis: float32 in [0, 1] to train on, or raw, bytes 0-255 to look at (a quarter of
    the memory: the web server's Data page)."""
    if raw:
        x = x if x.dtype == np.uint8 and scale == 255.0 else np.round(x * (255.0 / scale)).astype(np.uint8)
    else:
        x = x.astype(np.float32) / scale
    return x[..., None] if x.ndim == 3 else x


# -- Fashion-MNIST -----------------------------------------------------------------------------
def fashion_mnist_dir() -> Path:
    return settings().fashion_mnist_dir


def read_idx(path: Path) -> np.ndarray:
    """Read a gzipped IDX file (the MNIST format): magic, dims, then unsigned bytes."""
    with gzip.open(path, "rb") as f:
        data = f.read()
    if len(data) < 4 or data[:2] != b"\x00\x00" or data[2] != 0x08:
        raise DatasetError(f"{path} is not an IDX file of unsigned bytes")
    ndim = data[3]
    dims = struct.unpack(f">{ndim}I", data[4:4 + 4 * ndim])
    body = np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim)
    if body.size != int(np.prod(dims)):
        raise DatasetError(f"{path} is truncated: expected {int(np.prod(dims))} values, found {body.size}")
    return body.reshape(dims)


def _load_fashion_mnist(raw: bool) -> Dataset:
    folder = fashion_mnist_dir()
    missing = [n for n in FASHION_MNIST_FILES.values() if not (folder / n).is_file()]
    if missing:
        raise DatasetError(
            f"Fashion-MNIST not found in {folder} (missing {', '.join(missing)}). Install it with "
            f"'sudo apt-get install dataset-fashion-mnist' (Debian/Ubuntu), or put the four IDX .gz files "
            f"in a folder and set {SETTINGS['fashion_mnist_dir'].env} to it."
        )
    arrays = {k: read_idx(folder / n) for k, n in FASHION_MNIST_FILES.items()}
    return _with_val(
        BUILTIN["fashion-mnist"],
        _as_images(arrays["train_x"], 255.0, raw), arrays["train_y"].astype(np.int64),
        _as_images(arrays["test_x"], 255.0, raw), arrays["test_y"].astype(np.int64),
        val_fraction=1 / 12,  # 5,000 of 60,000
    )


# -- an imbalanced view of Fashion-MNIST -------------------------------------------------------
# The classes most often confused with others, kept at 5 % of their training images: enough to see
# imbalance hurt them (and class weighting help); validation and test splits are untouched.
RARE_CLASSES = (0, 2, 6)  # T-shirt/top, Pullover, Shirt
RARE_SHARE = 0.05


def downsample(y: np.ndarray, classes: tuple[int, ...], share: float, seed: int) -> np.ndarray:
    """Sorted indices of y keeping `share` of each class in `classes` (the first ones of a fixed
    permutation, at least one) and every image of the others."""
    rng = np.random.default_rng(seed)
    keep = [np.flatnonzero(~np.isin(y, classes))]
    for cls in classes:
        idx = rng.permutation(np.flatnonzero(y == cls))
        keep.append(idx[:max(1, int(round(share * len(idx))))])
    return np.sort(np.concatenate(keep))


def _load_fashion_mnist_imbalanced(raw: bool) -> Dataset:
    full = read("fashion-mnist", raw=True) if raw else load("fashion-mnist")
    idx = downsample(full.y_train, RARE_CLASSES, RARE_SHARE, SPLIT_SEED)
    return Dataset(BUILTIN["fashion-mnist-imbalanced"], full.x_train[idx], full.y_train[idx],
                   full.x_val, full.y_val, full.x_test, full.y_test)


def imbalance_ratio(counts: np.ndarray) -> float:
    """Images of the largest class per image of the smallest, from per-class counts (1.0: balanced)."""
    counts = np.asarray(counts)
    counts = counts[counts > 0]
    return float(counts.max() / counts.min()) if len(counts) else float("nan")


# -- scikit-learn digits -----------------------------------------------------------------------
def _load_digits(raw: bool) -> Dataset:
    from sklearn.datasets import load_digits

    bunch = load_digits()
    x = _as_images(bunch.images, 16.0, raw)
    y = bunch.target.astype(np.int64)
    train, val, test = stratified_split(y, (0.6, 0.2, 0.2), SPLIT_SEED)
    return Dataset(BUILTIN["digits"], x[train], y[train], x[val], y[val], x[test], y[test])


BUILTIN: dict[str, DatasetInfo] = {
    "fashion-mnist": DatasetInfo("fashion-mnist", (28, 28, 1), FASHION_MNIST_CLASSES,
                                 "Fashion-MNIST (Zalando, MIT): 60,000 train / 10,000 test, 28x28 grey", flips=True),
    "fashion-mnist-imbalanced": DatasetInfo(
        "fashion-mnist-imbalanced", (28, 28, 1), FASHION_MNIST_CLASSES,
        "Fashion-MNIST with T-shirt/top, Pullover and Shirt cut to 5 % of their training images "
        "(validation and test splits unchanged): class imbalance to see and remedy", flips=True),
    "digits": DatasetInfo("digits", (8, 8, 1), tuple(str(i) for i in range(10)),
                          "scikit-learn digits: 1,797 images, 8x8 grey (tiny, for quick tries)"),
}
_BUILTIN_LOADERS = {"fashion-mnist": _load_fashion_mnist, "fashion-mnist-imbalanced": _load_fashion_mnist_imbalanced,
                    "digits": _load_digits}


# -- uploaded datasets -------------------------------------------------------------------------
USER_SPLIT = (0.7, 0.15, 0.15)  # train, validation, test
def user_dataset_dir(name: str) -> Path:
    return paths.user_datasets_dir() / name


def _user_info(name: str) -> DatasetInfo | None:
    meta = user_dataset_dir(name) / "info.json"
    if not meta.is_file():
        return None
    try:
        d = json.loads(meta.read_text())
        return DatasetInfo(name, tuple(d["input_shape"]), tuple(d["class_names"]), d["source"])
    except (ValueError, KeyError, TypeError) as exc:
        raise DatasetError(f"dataset {name!r} has a damaged info.json: {exc}") from exc


def _load_user(info: DatasetInfo, raw: bool) -> Dataset:
    with np.load(user_dataset_dir(info.name) / "data.npz", allow_pickle=False) as npz:
        x = _as_images(npz["x"], 255.0, raw)
        y = npz["y"].astype(np.int64)
    train, val, test = stratified_split(y, USER_SPLIT, SPLIT_SEED)
    return Dataset(info, x[train], y[train], x[val], y[val], x[test], y[test])


# -- public ------------------------------------------------------------------------------------
def available() -> list[str]:
    """Names of every dataset a variant can use: built-ins first, then uploads."""
    root = paths.user_datasets_dir()
    uploads = sorted(p.name for p in root.iterdir() if (p / "info.json").is_file()) if root.is_dir() else []
    return list(BUILTIN) + [u for u in uploads if u not in BUILTIN]


def info(name: str) -> DatasetInfo:
    if name in BUILTIN:
        return BUILTIN[name]
    found = _user_info(name)
    if found is None:
        raise DatasetError(f"unknown dataset {name!r}; available: {', '.join(available())}")
    return found


def _shape_for(info_: DatasetInfo, spec: VariantSpec) -> tuple[int, int, int]:
    h, w, c = info_.input_shape
    if spec.image_size:
        h = w = spec.image_size
    return h, w, {"grey": 1, "rgb": 3}.get(spec.colour, c)


def info_for(spec: VariantSpec) -> DatasetInfo:
    """The spec's dataset as its model sees it: input shape after the spec's image size and colour."""
    found = info(spec.dataset)
    return dataclasses.replace(found, input_shape=_shape_for(found, spec))


def convert(x: np.ndarray, shape: tuple[int, int, int]) -> np.ndarray:
    """Images in [0, 1] turned grey (ITU-R 601 luma) or grey ones repeated into three channels (a colour model's
    input), and/or resized (bilinear, through 8 bits)."""
    h, w, c = shape
    if c == 1 and x.shape[-1] == 3:
        x = (x @ np.array([0.299, 0.587, 0.114], dtype=np.float32))[..., None]
    if c == 3 and x.shape[-1] == 1:
        return np.repeat(convert(x, (h, w, 1)), 3, axis=-1)
    if x.shape[1:3] == (h, w):
        return x.astype(np.float32)
    from PIL import Image

    grey = x.shape[-1] == 1
    out = np.empty((len(x), h, w, x.shape[-1]), dtype=np.float32)
    for i, img in enumerate(np.clip(np.round(x * 255), 0, 255).astype(np.uint8)):
        resized = Image.fromarray(img[..., 0] if grey else img, "L" if grey else "RGB").resize(
            (w, h), Image.Resampling.BILINEAR)
        out[i] = np.asarray(resized, dtype=np.float32).reshape(h, w, -1) / 255.0
    return out


@functools.lru_cache(maxsize=4)
def _load_as(name: str, shape: tuple[int, int, int]) -> Dataset:
    d = load(name)
    if tuple(d.info.input_shape) == shape:
        return d
    return Dataset(dataclasses.replace(d.info, input_shape=shape), convert(d.x_train, shape), d.y_train,
                   convert(d.x_val, shape), d.y_val, convert(d.x_test, shape), d.y_test)


def load_for(spec: VariantSpec) -> Dataset:
    """The spec's dataset at the spec's image size and colour (converted once per process)."""
    return _load_as(spec.dataset, info_for(spec).input_shape)


def read(name: str, raw: bool = False) -> Dataset:
    """A dataset's splits, decoded afresh and not kept. raw: images as bytes 0-255, for a look (the web server's
    Data page must not hold whole datasets in float32: Fashion-MNIST is about 220 MB so, 55 MB raw)."""
    meta = info(name)
    return _BUILTIN_LOADERS[name](raw) if name in BUILTIN else _load_user(meta, raw)


@functools.lru_cache(maxsize=4)
def load(name: str) -> Dataset:
    """Load a dataset's splits (cached in-process: Fashion-MNIST takes about a second to decode)."""
    return read(name)


# Split sizes (train, validation, test) of the built-ins, so the defaults are chosen without decoding them.
_BUILTIN_SPLITS = {"fashion-mnist": (55_000, 5_000, 10_000), "fashion-mnist-imbalanced": (39_325, 5_000, 10_000),
                   "digits": (1_078, 360, 359)}


@functools.lru_cache(maxsize=8)
def split_sizes(name: str) -> tuple[int, int, int]:
    """How many images the training, validation and test splits hold (an upload's labels are read, not its images)."""
    if name in BUILTIN:
        return _BUILTIN_SPLITS[name]
    train, val, test = (len(part) for part in _user_split(name)[1])
    return train, val, test


@functools.lru_cache(maxsize=8)
def test_labels(name: str) -> np.ndarray:
    """The test split's labels alone, in order (what a paired comparison of two variants needs), read
    without decoding the images where the format allows: the web server calls it."""
    if name in ("fashion-mnist", "fashion-mnist-imbalanced"):  # the imbalanced view keeps the test split
        return read_idx(fashion_mnist_dir() / FASHION_MNIST_FILES["test_y"]).astype(np.int64)
    if name in BUILTIN:
        return load(name).y_test
    y, (_, _, test) = _user_split(name)
    return y[test]


def folder(name: str) -> Path | None:
    """The user-data folder an upload lives in (None for a built-in dataset, which every machine has)."""
    return None if name in BUILTIN else user_dataset_dir(info(name).name)


def forget() -> None:
    """Drop what this process holds of any dataset (after a dataset's files were replaced)."""
    for cached in (load, _load_as, split_sizes, test_labels):
        cached.cache_clear()


def _user_split(name: str) -> tuple[np.ndarray, list[np.ndarray]]:
    """An upload's labels (read without its images) and its train/validation/test indices."""
    with np.load(user_dataset_dir(info(name).name) / "data.npz", allow_pickle=False) as npz:
        y = npz["y"].astype(np.int64)
    return y, stratified_split(y, USER_SPLIT, SPLIT_SEED)
