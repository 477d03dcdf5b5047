import gzip
import struct

import numpy as np
import pytest

from explorer.data import datasets


def test_fashion_mnist_loads_from_local_idx_files():
    data = datasets.load("fashion-mnist")
    assert data.x_train.shape == (55_000, 28, 28, 1) and data.x_val.shape == (5_000, 28, 28, 1)
    assert data.x_test.shape == (10_000, 28, 28, 1)
    assert data.x_train.dtype == np.float32 and 0 <= data.x_train.min() and data.x_train.max() <= 1
    assert np.bincount(data.y_test).tolist() == [1000] * 10  # the standard balanced test set
    assert np.bincount(data.y_val).tolist() == [500] * 10  # stratified validation split


@pytest.mark.parametrize("name", ["digits", "fashion-mnist-imbalanced"])
def test_raw_images_are_the_same_splits_as_bytes(name):
    """What the Data page reads: the same images in the same splits, 0-255 in a quarter of the memory."""
    raw, scaled = datasets.read(name, raw=True), datasets.read(name)
    for split in ("train", "val", "test"):
        x, f = getattr(raw, f"x_{split}"), getattr(scaled, f"x_{split}")
        assert x.dtype == np.uint8 and x.shape == f.shape and x.nbytes * 4 == f.nbytes
        assert np.array_equal(getattr(raw, f"y_{split}"), getattr(scaled, f"y_{split}"))
        assert np.abs(x / 255.0 - f).max() <= 0.5 / 255 + 1e-6  # within rounding
    assert raw.x_train.max() == 255  # the full range, not the float one


def test_missing_fashion_mnist_says_how_to_install(monkeypatch, tmp_path):
    monkeypatch.setenv("EXPLORER_FASHION_MNIST_DIR", str(tmp_path))
    with pytest.raises(datasets.DatasetError, match="apt-get install dataset-fashion-mnist.*EXPLORER_FASHION_MNIST_DIR"):
        datasets.read("fashion-mnist")


def test_truncated_idx_is_reported(tmp_path):
    path = tmp_path / "bad.gz"
    with gzip.open(path, "wb") as f:
        f.write(b"\x00\x00\x08\x03" + struct.pack(">3I", 10, 28, 28) + b"\x00" * 100)
    with pytest.raises(datasets.DatasetError, match="truncated"):
        datasets.read_idx(path)


def test_digits_splits_are_disjoint_stratified_and_fixed():
    a = datasets.load("digits")
    assert len(a.x_train) + len(a.x_val) + len(a.x_test) == 1797
    assert a.info.input_shape == (8, 8, 1)
    for split in (a.y_train, a.y_val, a.y_test):
        assert set(np.unique(split)) == set(range(10))
    idx = datasets.stratified_split(np.repeat(np.arange(3), 10), (0.6, 0.2, 0.2), seed=1)
    assert sorted(np.concatenate(idx).tolist()) == list(range(30))
    again = datasets.stratified_split(np.repeat(np.arange(3), 10), (0.6, 0.2, 0.2), seed=1)
    assert all((x == y).all() for x, y in zip(idx, again))


def test_unknown_dataset_lists_the_available_ones():
    with pytest.raises(datasets.DatasetError, match="available: fashion-mnist, fashion-mnist-imbalanced, digits"):
        datasets.info("cifar-10")
