"""Models as users write them (tests/zoo.py), saved by Keras 3 and by tf-keras: each imports as one flat graph
whose outputs are the writer's own, and the levers take the shapes tfmot alone refuses (a backbone inside a
model, Rescaling, augmentation layers, arithmetic on tensors)."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from support import REPO
from explorer.models import imports
from explorer.run import cli
from explorer.store.cache import Store

pytestmark = pytest.mark.slow
FIT = ["--epochs", "2", "--min-steps", "0", "--tune-epochs", "1", "--batch-size", "32", "--augment", "off",
       "--patience", "0"]


@pytest.fixture(scope="module")
def zoo(tmp_path_factory):
    """The tiny zoo, written by each Keras in a process of its own (Keras 3 is what `import keras` gives without
    TF_USE_LEGACY_KERAS)."""
    out = tmp_path_factory.mktemp("zoo")
    for dialect, legacy in (("k3", None), ("tfk", "1")):
        env = {k: v for k, v in os.environ.items() if k != "TF_USE_LEGACY_KERAS"} | (
            {"TF_USE_LEGACY_KERAS": legacy} if legacy else {})
        subprocess.run([sys.executable, str(REPO / "tests" / "zoo.py"), str(out / dialect), "--tiny"], env=env,
                       check=True, capture_output=True, timeout=300)
    return out


def batch(meta: dict) -> np.ndarray:
    return np.random.default_rng(0).uniform(0, meta["x_high"], (4, meta["side"], meta["side"], meta["channels"])
                                            ).astype("float32")


def test_every_shape_from_either_keras_imports_with_the_writers_outputs(zoo, user_data):
    from explorer.models.tf_runtime import keras

    files = sorted(zoo.glob("*/*.keras"))
    assert len(files) == 16
    for path in files:
        meta = json.loads(path.with_suffix(".json").read_text())
        name = f"{path.stem.replace('_', '-')}-{path.parent.name}"
        made = imports.import_path(name, path)
        model = keras.models.load_model(made.path, safe_mode=True, compile=False)  # what every build starts from
        got = model(batch(meta), training=False).numpy()
        assert np.abs(got - np.array(meta["y"])).max() < 1e-5, name
        assert not any(type(layer).__name__ in ("Functional", "Sequential", "TFOpLambda", "RandomFlip")
                       for layer in model.layers), name
        said = " ".join(made.notes)
        if path.stem in ("augmented", "transfer"):  # a leading Rescaling(1/255) or (1/127.5, -1): 0-255 images
            assert made.scale == "0-255" and "rescales them" in said, (name, said)
        if path.stem == "augmented":
            assert [a["class_name"] for a in made.augmentation] == ["RandomFlip", "RandomRotation", "RandomZoom"]
        if path.stem in ("transfer", "nested_twice"):
            assert "inlined" in said and any("/" in layer.name for layer in model.layers), (name, said)
        if path.parent.name == "k3":
            assert "translated from Keras 3" in said


def test_the_transfer_learning_shape_takes_pruning_clustering_and_qat(zoo, tmp_path, user_data, capsys):
    """Keras 3's Sequential with Rescaling and a backbone model inside, which tfmot refuses whole. One variant
    chains every lever: pruned to 50 %, clustered to 16 values, quantization-aware trained, full int8. (tfmot
    prunes convolutions and dense layers, not depthwise kernels. The op layers' rewrites are built-in layers the
    same levers take: their translation is checked above and in test_graph.py.)"""
    from explorer import record

    shape = "transfer-k3"
    stem, dialect = shape.rsplit("-", 1)
    assert cli.main(["import-model", shape, str(zoo / dialect / f"{stem.replace('-', '_')}.keras")]) == 0
    cache = str(tmp_path / "cache")
    code = cli.main(["--cache", cache, "sweep", "--model", shape, "--dataset", "digits", *FIT, "--quant", "qat-int8",
                     "--sparsity", "0.5", "--clusters", "16"])
    out, err = capsys.readouterr()
    assert code == 0, err[-600:]
    assert "Traceback" not in err
    (v,) = record.load_all(Store(cache), "x")[0]
    assert (v.spec.quant, v.spec.sparsity, v.spec.clusters) == ("qat-int8", 0.5, 16)
    assert v.real_sparsity > 0.3 and 0 <= v.accuracy <= 1 and v.size_bytes > 0
    kernels = [name for name in v.layer_sparsity if ("conv" in name or "dense" in name) and "depthwise" not in name]
    assert kernels and all(v.layer_sparsity[k] > 0.3 for k in kernels), v.layer_sparsity


def test_a_lever_that_fails_is_one_sentence_naming_the_lever_and_the_layer():
    from explorer.models import lever_errors
    from explorer.models.tf_runtime import tf

    with pytest.raises(lever_errors.LeverError) as caught:
        with lever_errors.failing_as("quantization-aware training", "file:mine@0123456789ab"):
            raise ValueError("Layer rescaling:<class 'Rescaling'> is not supported. You can quantize this layer by "
                             "passing a `tfmot.quantization.keras.QuantizeConfig` instance")
    said = str(caught.value)
    assert said.startswith("quantization-aware training failed on file:mine@0123456789ab at layer 'rescaling'")
    assert "post-training int8" in said and "QuantizeConfig" not in said
    with pytest.raises(lever_errors.LeverError, match="clustering failed .*InvalidArgumentError"):
        with lever_errors.failing_as("clustering", ""):
            raise tf.errors.InvalidArgumentError(None, None, "Expected num_to_sample <= points.rows(). 16 vs 8.")
    with pytest.raises(KeyboardInterrupt):  # a stop passes through
        with lever_errors.failing_as("pruning", ""):
            raise KeyboardInterrupt


def test_an_imported_models_augmentation_augments_the_training_batches_only(zoo, user_data):
    from explorer.models import train
    from explorer.spec import VariantSpec

    made = imports.import_path("aug", zoo / "k3" / "augmented.keras")
    aug = train.augmenter(VariantSpec(augment=False), False, made.augmentation)
    assert [type(layer).__name__ for layer in aug.layers] == ["RandomFlip", "RandomRotation", "RandomZoom"]
    x = np.random.default_rng(0).uniform(0, 255, (16, 32, 32, 3)).astype("float32")
    assert np.abs(aug(x, training=True).numpy() - x).mean() > 1  # it augments in training
    assert np.array_equal(aug(x, training=False).numpy(), x)  # and not at inference


def test_a_keras_applications_architecture_takes_its_width_and_input_size_on_explore(tmp_path, user_data,
                                                                                      monkeypatch):
    """A link sets both knobs. The page's latency preview is queued and no worker is started (it would time a
    MobileNetV2 here; the browser tests check previews)."""
    from streamlit.testing.v1 import AppTest
    from explorer.run.queue import Queue
    from pages.ui import jobs

    class NoWorker(jobs.LocalExecutor):
        def ensure_worker(self) -> bool:  # the preview stays queued: nothing starts a worker to time it
            return False

    monkeypatch.setattr(jobs, "executor", lambda: NoWorker(jobs.store(), Queue(), max_epochs=jobs.max_epochs()))
    monkeypatch.setenv("EXPLORER_CACHE_DIR", str(tmp_path / "cache"))
    at = AppTest.from_file(str(REPO / "pages" / "explore.py"), default_timeout=120)
    at.query_params.update(dataset="digits", model="keras:MobileNetV2:alpha=0.5", image_size="64")
    at.run()
    assert not at.exception, [e.message for e in at.exception]
    network = at.sidebar.selectbox(key="k_network").value
    alpha = at.sidebar.select_slider(key=f"k_alpha_{network}")
    assert network == "keras:MobileNetV2" and alpha.value == 0.5  # the architecture, at the link's width
    size = at.sidebar.select_slider(key="k_image_size")
    assert size.value == 64 and not size.disabled and at.sidebar.radio(key="k_depth").disabled
    assert "digits-64px-rgb-MobileNetV2-alpha0.5-" in " ".join(m.value for m in at.markdown)
    assert Queue().live_workers() == []  # the preview was asked for, and no worker started


def test_the_data_page_says_what_each_import_did(zoo, user_data, tmp_path, monkeypatch):
    from streamlit.testing.v1 import AppTest

    imports.import_path("transfer", zoo / "k3" / "transfer.keras")
    monkeypatch.setenv("EXPLORER_CACHE_DIR", str(tmp_path / "cache"))
    at = AppTest.from_file(str(REPO / "pages" / "data.py"), default_timeout=60)
    at.run()
    assert not at.exception, [e.message for e in at.exception]
    said = " ".join(c.value for c in at.caption)
    assert "**transfer** — what the import did: translated from Keras 3" in said
    assert "tiny\\_backbone" in said and "takes 0-255 images" in said
