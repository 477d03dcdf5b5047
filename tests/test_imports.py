"""Your own model: imported .keras and .tflite files, keras.applications by name, on real (tiny) data.

Bad files get one clear message and store nothing; good ones become sources whose variants are built, measured
and listed like the built-in family's (and the session-end check holds their memory plans against TFLite Micro).
"""

import io
import json
import pickle
import zipfile

import numpy as np
import pytest

from support import REPO
from explorer.models import imports, sources
from explorer.run import cli, search
from explorer.spec import SpecError, VariantSpec
from explorer.store.cache import Store

pytestmark = pytest.mark.slow
FIT = ["--epochs", "15", "--min-steps", "0", "--tune-epochs", "1", "--learning-rate", "0.01", "--batch-size", "32",
       "--augment", "off", "--patience", "0"]


@pytest.fixture(scope="module")
def keras():
    from explorer.models.tf_runtime import keras

    return keras


def residual(keras, classes: int = 10):
    """A small residual Functional network for 8x8 grey images, ending at its logits."""
    kl = keras.layers
    inp = keras.Input((8, 8, 1), name="image")
    x = kl.Conv2D(16, 3, padding="same", activation="relu", name="stem")(inp)
    y = kl.Conv2D(16, 3, padding="same", name="branch")(x)
    x = kl.ReLU(name="merge_relu")(kl.Add(name="merge")([x, y]))
    x = kl.Flatten(name="flatten")(kl.MaxPooling2D(name="pool")(x))
    return keras.Model(inp, kl.Dense(classes, name="logits")(x))


def saved(keras, model, path):
    model.save(path)
    return path


def stored() -> list:
    return sorted(p.name for p in imports.models_dir().iterdir() if not p.name.startswith(".")) \
        if imports.models_dir().is_dir() else []


def test_an_imported_keras_network_gets_every_lever_and_lists_beside_the_family(keras, tmp_path, user_data, capsys):
    cache = str(tmp_path / "cache")
    path = saved(keras, residual(keras), tmp_path / "res.keras")
    assert cli.main(["import-model", "res", str(path)]) == 0
    assert "Imported res (keras): 8x8x1 images in the range 0-1, 10 classes" in capsys.readouterr().out
    assert cli.main(["--cache", cache, "sweep", "--model", "res", "--dataset", "digits", *FIT,
                     "--quant", "fp32", "dynamic", "int8", "--sparsity", "0", "0.5"]) == 0
    out = capsys.readouterr().out
    assert "digits-res-fp32-e15" in out and "digits-res-s0.5-int8-e15" in out and "res (imported)" in out
    store = Store(cache)
    from explorer import record

    found = {(v.spec.quant, v.spec.sparsity): v for v in record.load_all(store, "x")[0]}
    assert len(found) == 6
    fp32, int8, pruned = found[("fp32", 0.0)], found[("int8", 0.0)], found[("int8", 0.5)]
    assert fp32.accuracy > 0.8, fp32.accuracy  # it learned (chance: 0.1)
    assert abs(int8.accuracy - fp32.accuracy) < 0.05 and int8.size_bytes < fp32.size_bytes / 2
    assert pruned.real_sparsity > 0.4 and pruned.layer_sparsity["branch"] == pytest.approx(0.5, abs=0.02)
    assert {lp.name for lp in fp32.layers} >= {"stem", "branch", "merge", "logits"} and fp32.macs > 0
    assert int8.memory.head_bytes < fp32.memory.head_bytes  # int8 activations
    assert cli.main(["--cache", cache, "list"]) == 0 and capsys.readouterr().out.count("res (imported)") == 6
    assert cli.main(["--cache", cache, "search", "--model", "res", "--dataset", "digits", *FIT, "--quant", "fp32",
                     "int8", "--trials", "2", "--study", "own"]) == 0  # its stages are cached: conversions only
    out, trials = capsys.readouterr().out, search.load("own").trials
    assert sorted(t.key for t in trials) == sorted((fp32.key, int8.key))
    assert not any(t.trained for t in trials) and len(record.load_all(store, "x")[0]) == 6
    assert all(t.label in out for t in search.front(trials))  # the front, whichever mode is the faster here
    assert cli.main(["--cache", cache, "models", "--delete", "res"]) == 0
    assert "Deleted res and its 6 cached variants" in capsys.readouterr().out
    assert stored() == [] and record.load_all(store, "x")[0] == []


def test_an_imported_tflite_is_measured_and_evaluated_as_it_is(user_data, tmp_path, capsys):
    """A shipped int8 model brought back as a file: its accuracy on the same test images is the one recorded."""
    from explorer import record

    shipped = Store(REPO / "cached_models")
    v = next(r for r in record.load_all(shipped, "x")[0] if r.label == "fashion-mnist-d2w32-fc128-int8")
    path = tmp_path / "mine.tflite"
    path.write_bytes(shipped.file_path("variants", v.key, "model.tflite").read_bytes())
    assert cli.main(["import-model", "mine", str(path)]) == 0
    cache = str(tmp_path / "cache")
    assert cli.main(["--cache", cache, "sweep", "--model", "mine", "--dataset", "fashion-mnist"]) == 0
    mine = record.load_all(Store(cache), "x")[0][0]
    assert mine.accuracy == v.accuracy and mine.confusion == v.confusion  # the same model, evaluated here
    assert mine.memory.peak_ram_bytes == v.memory.peak_ram_bytes and mine.latency.p50_us > 0
    capsys.readouterr()
    assert cli.main(["--cache", cache, "sweep", "--model", "mine", "--dataset", "fashion-mnist", "--quant", "int8"]) == 2
    assert "a .tflite is measured and evaluated as it is" in capsys.readouterr().err


def test_a_keras_applications_architecture_is_named_with_its_arguments_and_fitted_to_the_data(keras):
    spec = sources.on_source(VariantSpec(dataset="digits"), sources.resolve("keras:MobileNetV2:alpha=0.35"))
    assert spec.model == "keras:MobileNetV2:alpha=0.35" and (spec.image_size, spec.colour) == (32, "rgb")
    assert spec.label().startswith("digits-32px-rgb-MobileNetV2-alpha0.35-fp32")
    assert spec.key() != VariantSpec(dataset="digits").key()
    source = sources.for_spec(spec)
    source.check(spec, (32, 32, 3), 10)
    layers = source.layers(spec, (32, 32, 3), 10)
    assert layers[-1].output_shape == (10,) and sum(lp.params for lp in layers) > 100_000
    with pytest.raises(SpecError, match="needs images of at least 32x32"):
        source.check(spec, (8, 8, 3), 10)
    with pytest.raises(SpecError, match="not one of the architectures offered"):
        sources.resolve("keras:NotANet")
    with pytest.raises(SpecError, match="belongs to the built-in family"):
        spec.replace(depth=3)


def _zip(members: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return buf.getvalue()


def bad_files(keras, tmp_path):
    """(file name, bytes, what the message must say) for each kind of bad input the issue names."""
    kl = keras.layers
    res = saved(keras, residual(keras), tmp_path / "ok.keras").read_bytes()
    with zipfile.ZipFile(io.BytesIO(res)) as zf:
        config = json.loads(zf.read("config.json"))
    lam = keras.Sequential([kl.InputLayer((8, 8, 1)), kl.Lambda(lambda x: x * 2, name="double"), kl.Flatten(),
                            kl.Dense(10, activation="softmax")])

    class Custom(kl.Layer):
        def call(self, x):
            return x

    custom = keras.Sequential([kl.InputLayer((8, 8, 1)), Custom(name="mine"), kl.Flatten(), kl.Dense(10)])

    class Sub(keras.Model):
        def __init__(self):
            super().__init__()
            self.d = kl.Dense(10)

        def call(self, x):
            return self.d(x)

    sub = Sub()
    sub(np.zeros((1, 64), np.float32))
    vector = keras.Sequential([kl.InputLayer((64,)), kl.Dense(10, activation="softmax")])
    a, b = keras.Input((8, 8, 1)), keras.Input((8, 8, 1))
    two = keras.Model([a, b], kl.Dense(10)(kl.Flatten()(kl.Add()([a, b]))))
    keras_bytes = {}
    for name, m in (("lambda", lam), ("custom", custom), ("sub", sub), ("vector", vector), ("two", two)):
        path = tmp_path / f"{name}.keras"
        try:
            m.save(path)
        except Exception:  # noqa: BLE001 - a model Keras cannot even save as .keras: write its config by hand
            path.write_bytes(_zip({"config.json": json.dumps({"class_name": type(m).__name__, "config": {}}).encode(),
                                   "metadata.json": b"{}"}))
        keras_bytes[name] = path.read_bytes()
    return [
        ("model.h5", b"\x89HDF\r\n\x1a\n" + b"\0" * 64, "HDF5 (.h5)"),
        ("model.pkl", pickle.dumps({"weights": [1, 2]}), "pickle"),
        ("saved_model.zip", _zip({"saved_model.pb": b"\x08\x01", "variables/x": b""}), "zipped SavedModel"),
        ("evil.keras", _zip({"config.json": json.dumps(config).encode(), "../../evil": b"x"}), "unsafe path"),
        ("lambda.keras", keras_bytes["lambda"], "layer 'double' is a Lambda layer"),
        ("custom.keras", keras_bytes["custom"], "layer 'mine' is a custom class"),
        ("sub.keras", keras_bytes["sub"], "subclassed Keras model"),
        ("vector.keras", keras_bytes["vector"], "it needs one image of a fixed size"),
        ("two.keras", keras_bytes["two"], "it needs a single image input"),
        ("broken.tflite", b"\0\0\0\0TFL3" + b"\x01" * 100, "LiteRT cannot load this .tflite"),
        ("notes.txt", b"hello", "neither a .keras model"),
    ]


def test_every_bad_file_gets_its_message_and_nothing_is_stored(keras, tmp_path, user_data):
    for filename, data, message in bad_files(keras, tmp_path):
        with pytest.raises(imports.ModelImportError) as raised:
            imports.import_bytes("x", data, filename)
        assert message in str(raised.value), (filename, str(raised.value))
        assert stored() == [], filename
    res = saved(keras, residual(keras), tmp_path / "ok.keras").read_bytes()
    with pytest.raises(imports.ModelImportError, match="at most 0 MiB"):
        imports.import_bytes("x", res, "ok.keras", limits=imports.Limits(max_bytes=1000))
    with pytest.raises(imports.ModelImportError, match="unpacks to"):
        imports.import_bytes("x", res, "ok.keras", limits=imports.Limits(max_uncompressed_bytes=1000))  # a zip bomb
    with pytest.raises(imports.ModelImportError, match="is a folder"):
        imports.import_path("x", tmp_path)
    with pytest.raises(imports.ModelImportError, match="model name"):
        imports.import_bytes("../x", res, "ok.keras")
    assert stored() == []


def test_a_class_count_that_does_not_match_the_dataset_is_refused_before_anything_is_built(keras, tmp_path,
                                                                                           user_data, capsys):
    assert cli.main(["import-model", "three", str(saved(keras, residual(keras, 3), tmp_path / "three.keras"))]) == 0
    cache = tmp_path / "cache"
    assert cli.main(["--cache", str(cache), "sweep", "--model", "three", "--dataset", "digits", *FIT]) == 2
    assert "has 3 outputs but dataset digits has 10 classes" in capsys.readouterr().err
    assert not list(cache.rglob("meta.json"))
    assert cli.main(["--cache", str(cache), "sweep", "--model", "nobody", "--dataset", "digits"]) == 2
    assert "must be an imported model's name (three)" in capsys.readouterr().err


def test_the_app_lists_an_imported_model_and_explore_keeps_the_family_knobs_visible_but_off(keras, tmp_path,
                                                                                             user_data, monkeypatch):
    from streamlit.testing.v1 import AppTest

    imports.import_path("res", saved(keras, residual(keras), tmp_path / "res.keras"))
    monkeypatch.setenv("EXPLORER_CACHE_DIR", str(tmp_path / "cache"))
    at = AppTest.from_file(str(REPO / "app.py"), default_timeout=120)
    at.run()
    at.switch_page(str(REPO / "pages" / "data.py")).run()
    assert not at.exception
    listed = [d.value for d in at.dataframe if "spec model" in d.value.columns]
    assert listed and listed[0]["name"].tolist() == ["res"] and listed[0]["input"].tolist() == ["8×8×1"]
    at.switch_page(str(REPO / "pages" / "explore.py")).run()
    at.sidebar.selectbox(key="k_dataset").set_value("digits").run()
    at.sidebar.selectbox(key="k_network").set_value("res").run()
    assert not at.exception, [e.message for e in at.exception]
    depth, head = at.sidebar.radio(key="k_depth"), at.sidebar.radio(key="k_head")
    assert depth.disabled and "the built-in family's" in depth.help and head.disabled
    assert not at.sidebar.slider(key="k_sparsity").disabled and not at.sidebar.selectbox(key="k_quant").disabled
    text = " ".join(m.value for m in at.markdown)
    assert "**digits-res-" in text and "imported .keras network on 8×8×1 images" in text
    assert at.query_params["model"] in (["file:" + imports.available()[0].source[5:]], imports.available()[0].source)


def test_an_imported_float_model_near_chance_is_warned_about_its_input_range():
    spec = VariantSpec(dataset="digits", model="file:res@0123456789ab")
    warning = sources.chance_warning(spec, 0.11, 10)
    assert warning and "near chance (0.100) for 10 classes" in warning and "--scale" in warning
    assert sources.chance_warning(spec, 0.5, 10) is None  # learned
    assert sources.chance_warning(spec.replace(quant="int8"), 0.11, 10) is None  # a float model's warning
    assert sources.chance_warning(VariantSpec(dataset="digits"), 0.11, 10) is None  # the family has no import scale


def test_the_input_range_is_a_field_of_the_source_and_part_of_its_identity(keras, tmp_path, user_data):
    path = saved(keras, residual(keras), tmp_path / "res.keras")
    a, b = imports.import_path("res-01", path), imports.import_path("res-255", path, scale="0-255")
    assert a.sha != b.sha  # the same file, another range: another source, other keys
    spec = sources.on_source(VariantSpec(dataset="digits"), b.source)
    data = sources.for_spec(spec).data(spec)
    plain = sources.for_spec(spec.replace(model="")).data(spec.replace(model=""))
    assert np.allclose(data.x_test, plain.x_test * 255) and data.x_test.max() > 1
