"""Uploads of own datasets: every kind of bad zip gets a clear message and writes nothing."""

import io
import zipfile

import numpy as np
import pytest
from PIL import Image

from explorer.data import datasets, uploads


@pytest.fixture(autouse=True)
def data_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("EXPLORER_DATA_DIR", str(tmp_path / "data"))
    return tmp_path / "data"


def png(size=(12, 10), mode="L", value=128) -> bytes:
    buf = io.BytesIO()
    Image.new(mode, size, value if mode == "L" else (value, 0, 0)).save(buf, "PNG")
    return buf.getvalue()


def make_zip(files: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in files.items():
            zf.writestr(name, data)
    return buf.getvalue()


def good_files(prefix="") -> dict[str, bytes]:
    return {f"{prefix}{cls}/{i}.png": png(value=40 * i) for cls in ("cats", "dogs") for i in range(6)}


def no_dataset_written(data_dir) -> bool:
    folder = data_dir / "datasets"
    return not folder.exists() or not any(folder.iterdir())


def test_a_good_zip_becomes_a_dataset_that_loads(data_dir):
    files = good_files("pets/")  # one top folder is accepted too
    files["pets/cats/colour.png"] = png(size=(40, 20), mode="RGB")  # mixed size and channels
    files["pets/dogs/notes.txt"] = b"not an image"
    report = uploads.import_zip("pets", make_zip(files))
    assert report.class_counts == {"cats": 7, "dogs": 6}
    assert report.skipped == ["dogs/notes.txt"]
    assert report.info.input_shape == (10, 12, 3)  # the most common size (12x10), RGB as one image is
    assert "pets" in datasets.available()
    d = datasets.load("pets")
    assert len(d.x_train) + len(d.x_val) + len(d.x_test) == 13
    assert set(d.y_test) == {0, 1} and d.x_train.shape[1:] == (10, 12, 3)


@pytest.mark.parametrize("data,message", [
    (b"this is not a zip", "not a zip file"),
    (make_zip({}), "the zip is empty"),
    (make_zip({f"cats/{i}.png": png() for i in range(6)}), "only one class ('cats')"),
    (make_zip({"cats/a.png": png(), "dogs/b.png": png()}), "fewer than 5 images: cats (1), dogs (1)"),
    (make_zip({**good_files(), "../evil.png": png()}), "unsafe path in the zip: '../evil.png'"),
    (make_zip({**good_files(), "/etc/evil.png": png()}), "unsafe path"),
    (make_zip({**good_files(), "loose.png": png()}), "'loose.png' is not inside a class folder"),
    (make_zip({"cats/a.txt": b"x", "dogs/b.txt": b"y"}), "no readable images found"),
])
def test_bad_uploads_get_a_clear_message_and_write_nothing(data_dir, data, message):
    with pytest.raises(uploads.UploadError, match=message.replace("(", r"\(").replace(")", r"\)")):
        uploads.import_zip("bad", data)
    assert no_dataset_written(data_dir)
    assert "bad" not in datasets.available()


def test_zip_bombs_and_oversized_uploads_are_refused_before_decompressing(data_dir):
    bomb = make_zip({**good_files(), "cats/zeros.png": b"\0" * (5 * 2**20)})  # compresses ~1000:1
    assert len(bomb) < 100_000
    limits = uploads.Limits(max_uncompressed_bytes=2**20)
    with pytest.raises(uploads.UploadError, match="unpacks to 5 MiB; at most 1 MiB"):
        uploads.import_zip("bomb", bomb, limits)
    with pytest.raises(uploads.UploadError, match="holds 12 files; at most 5"):
        uploads.import_zip("many", make_zip(good_files()), uploads.Limits(max_files=5))
    with pytest.raises(uploads.UploadError, match="the upload is"):
        uploads.import_zip("big", make_zip(good_files()), uploads.Limits(max_zip_bytes=100))
    with pytest.raises(uploads.UploadError, match="larger than allowed"):
        uploads.import_zip("huge", make_zip(good_files()), uploads.Limits(max_image_pixels=50))
    assert no_dataset_written(data_dir)


def test_an_existing_dataset_is_never_overwritten(data_dir):
    uploads.import_zip("pets", make_zip(good_files()))
    before = (datasets.user_dataset_dir("pets") / "data.npz").read_bytes()
    for name in ("pets", "fashion-mnist"):
        with pytest.raises(uploads.UploadError, match="exists already"):
            uploads.import_zip(name, make_zip(good_files()))
    with pytest.raises(uploads.UploadError, match="dataset name"):
        uploads.import_zip("../pets", make_zip(good_files()))
    assert (datasets.user_dataset_dir("pets") / "data.npz").read_bytes() == before
    assert np.load(datasets.user_dataset_dir("pets") / "data.npz")["x"].shape == (12, 10, 12, 1)


def test_sixteen_bit_greys_keep_their_level_and_classes_are_listed_by_name(data_dir):
    def png16(value: int) -> bytes:
        buf = io.BytesIO()
        Image.fromarray(np.full((10, 10), value, dtype=np.uint16)).save(buf, "PNG")  # mode I;16
        return buf.getvalue()

    files = {f"{cls}/{i}.png": png16(30000) for cls in ("zebra", "ant") for i in range(6)}
    report = uploads.import_zip("sixteen", make_zip(files))
    assert list(report.class_counts) == ["ant", "zebra"]
    x = np.load(data_dir / "datasets" / "sixteen" / "data.npz")["x"]
    assert abs(int(x.max()) - round(30000 * 255 / 65535)) <= 1  # 117, not saturated to 255


def test_a_blank_name_is_refused_with_a_message(data_dir):
    with pytest.raises(uploads.UploadError, match="give the dataset a name"):
        uploads.import_zip("   ", make_zip(good_files()))
    assert no_dataset_written(data_dir)


def test_deleting_a_dataset_removes_its_variants_and_never_a_builtin(data_dir, tmp_path):
    from explorer.store.cache import Store

    uploads.import_zip("pets", make_zip(good_files()))
    shipped = Store()  # the tests' copy of the shipped cache: a real meta to copy
    meta = shipped.read_meta("variants", shipped.variant_keys()[0])
    store = Store(tmp_path / "cache")
    for key, ds in (("a" * 16, "pets"), ("b" * 16, "digits")):
        fake = {**meta, "spec": {**meta["spec"], "dataset": ds}, "dataset": {**meta["dataset"], "name": ds}}
        store.write("variants", key, fake, lambda d: (d / "model.tflite").write_bytes(b"x"))
    assert uploads.delete("pets", store) == 1
    assert "pets" not in datasets.available() and not (data_dir / "datasets" / "pets").exists()
    assert [m["key"] for m in store.variants()[0]] == ["b" * 16]
    with pytest.raises(uploads.UploadError, match="built in"):
        uploads.delete("digits", store)
    with pytest.raises(uploads.UploadError, match="no uploaded dataset"):
        uploads.delete("pets", store)


def test_the_stored_size_is_the_most_common_one_bounded_by_side_and_total_bytes():
    sizes = [(640, 480)] * 3 + [(100, 100)]
    assert uploads.stored_size(sizes, 3, uploads.Limits()) == (224, 168)  # longest side 224, aspect kept
    assert uploads.stored_size([(28, 28)] * 5, 1, uploads.Limits()) == (28, 28)  # small images stay as they are
    tight = uploads.Limits(max_stored_bytes=30_000)
    w, h = uploads.stored_size(sizes, 3, tight)
    assert (w, h) == (57, 43) and 4 * 3 * w * h <= 30_000  # four RGB images within the byte budget, 4:3 kept


def test_a_variant_picks_its_own_input_size_and_grey_from_a_colour_upload(data_dir):
    from explorer.spec import VariantSpec

    files = {f"{cls}/{i}.png": png(size=(40, 30), mode="RGB", value=30 * i + (100 if cls == "red" else 0))
             for cls in ("red", "dark") for i in range(6)}
    uploads.import_zip("photos", make_zip(files))
    assert datasets.info("photos").input_shape == (30, 40, 3)
    spec = VariantSpec(dataset="photos", image_size=16, colour="grey")
    assert datasets.info_for(spec).input_shape == (16, 16, 1)
    d = datasets.load_for(spec)
    assert d.x_train.shape[1:] == (16, 16, 1) and 0 <= d.x_train.min() <= d.x_train.max() <= 1
    full = datasets.load("photos")
    luma = 0.299 * full.x_test[..., 0] + 0.587 * full.x_test[..., 1] + 0.114 * full.x_test[..., 2]
    assert abs(float(d.x_test.mean()) - float(luma.mean())) < 0.01  # grey keeps the brightness
    assert datasets.load_for(VariantSpec(dataset="photos")) is full  # the dataset's own: no copy


@pytest.mark.slow
def test_a_resized_grey_variant_of_a_colour_upload_builds_at_its_own_input(data_dir, tmp_path):
    from support import FAST_LATENCY, TINY
    from explorer.models import architecture
    from explorer.run import pipeline
    from explorer.spec import VariantSpec
    from explorer.store.cache import Store

    files = {f"{cls}/{i}.png": png(size=(40, 30), mode="RGB", value=20 * i + (120 if cls == "red" else 0))
             for cls in ("red", "dark") for i in range(8)}
    uploads.import_zip("photos", make_zip(files))
    spec = VariantSpec(**{**TINY, "dataset": "photos", "image_size": 24, "colour": "grey", "epochs": 2})
    v, _ = pipeline.ensure(spec, Store(tmp_path / "cache"), latency_kwargs=FAST_LATENCY)
    assert v.input_shape == (24, 24, 1)
    assert v.macs == architecture.total_macs(architecture.plan(spec, (24, 24, 1), 2))
    assert v.latency.p50_us > 0 and v.spec == spec
