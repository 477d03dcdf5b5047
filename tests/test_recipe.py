"""The default recipe of a dataset: chosen from its size and input alone, applied by the CLI's grids and searches."""

import io
import zipfile

import numpy as np
import pytest
from PIL import Image

from explorer.data import datasets, uploads
from explorer.models import recipe
from explorer.models import architecture
from explorer.run import grid
from explorer.spec import VariantSpec


@pytest.fixture
def data_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("EXPLORER_DATA_DIR", str(tmp_path / "data"))
    datasets.split_sizes.cache_clear()
    yield tmp_path / "data"
    datasets.split_sizes.cache_clear()


def upload(name: str, per_class: int, side: int = 12, mode: str = "L") -> None:
    rng = np.random.default_rng(0)
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for cls in ("a", "b"):
            for i in range(per_class):
                png = io.BytesIO()
                shape = (side, side) if mode == "L" else (side, side, 3)
                Image.fromarray(rng.integers(0, 256, shape, dtype=np.uint8), mode).save(png, "PNG")
                zf.writestr(f"{cls}/{i}.png", png.getvalue())
    uploads.import_zip(name, buf.getvalue())


def test_fashion_mnist_keeps_the_shipped_defaults():
    chosen = recipe.for_dataset("fashion-mnist")
    assert chosen.applied == () and chosen.spec() == VariantSpec()
    assert chosen.train_images == 55_000


def test_a_small_training_split_turns_on_the_levers_that_generalize_and_says_why():
    small = recipe.choose("mine", 2_100, 450, (28, 28, 1), 10)
    flatten = recipe.SMALL_DATA_LEVERS["flatten"]
    assert small.fields() == {**flatten, "patience": recipe.SMALL_DATA_PATIENCE}
    assert all("2,100 training images" in d.why for d in small.applied if d.field in flatten)
    assert "450 images" in next(d.why for d in small.applied if d.field == "patience")
    spec = small.spec()
    assert spec.dataset == "mine" and spec.min_steps == VariantSpec().min_steps  # a 28x28 input keeps min_steps
    architecture.check(spec, (28, 28, 1), 10)


def test_the_threshold_is_inclusive_and_every_field_set_is_one_the_recipe_governs():
    at = recipe.choose("x", recipe.SMALL_TRAIN_IMAGES, 100, (28, 28, 1), 10)
    over = recipe.choose("x", recipe.SMALL_TRAIN_IMAGES + 1, 100, (28, 28, 1), 10)
    assert at.fields()["augment"] is True and over.applied == ()
    for shape in ((8, 8, 1), (64, 64, 3), (224, 224, 3)):
        assert set(recipe.choose("x", 500, 100, shape, 3).fields()) <= set(recipe.GOVERNED)


@pytest.mark.parametrize("side", [64, 128, 224])
def test_a_large_input_gets_a_global_pooling_head_and_a_training_length_bounded_by_compute(side):
    chosen = recipe.choose("photos", 840, 180, (side, side, 3), 8)
    spec = chosen.spec()
    assert spec.head == "gap" and spec.min_steps == 0
    layers = architecture.check(spec, (side, side, 3), 8)
    flatten = architecture.plan(spec.replace(head="flatten"), (side, side, 3), 8)
    assert architecture.total_params(layers) * 20 < architecture.total_params(flatten)
    macs = architecture.total_macs(layers)
    assert spec.epochs >= VariantSpec().epochs
    assert spec.epochs == VariantSpec().epochs or spec.epochs * 840 * macs <= recipe.TRAIN_BUDGET_MACS
    assert any(f"{side}x{side} input" in d.why for d in chosen.applied)
    first = layers[0].output_shape  # a batch's first activation stays within the bound, or the batch is the smallest
    assert spec.batch_size * 4 * first[0] * first[1] * first[2] <= recipe.BATCH_ACTIVATION_BYTES \
        or spec.batch_size == recipe.BATCH_SIZES[-1]
    assert (spec.batch_size < VariantSpec().batch_size) == (side > 64) and (spec.batch_size < 32) == (side > 128)


def test_a_small_set_of_large_images_gets_the_global_pooling_heads_levers_and_says_which_it_left_off():
    """The head is decided on the flatten levers (same padding); the levers are then the global-pooling head's."""
    chosen = recipe.choose("photos", 840, 180, (64, 64, 3), 4)
    spec = chosen.spec()
    assert spec.head == "gap" and spec.batchnorm and spec.padding == "same"
    assert (spec.dropout, spec.augment) == (VariantSpec().dropout, VariantSpec().augment)  # measured not to help
    assert {d.field for d in chosen.applied} >= set(recipe.SMALL_DATA_LEVERS["gap"]) | {"head", "patience"}
    assert "dropout and shifts do not" in next(d.why for d in chosen.applied if d.field == "batchnorm")
    large = recipe.choose("photos", 84_000, 18_000, (64, 64, 3), 4)  # a large split: no levers, the head alone
    assert large.spec().head == "gap" and not large.spec().batchnorm and large.spec().padding == "valid"


def test_the_reasons_say_which_defaults_a_spec_still_holds():
    chosen = recipe.choose("mine", 700, 150, (28, 28, 1), 10)
    changed = chosen.spec().replace(dropout=0.0)
    held = {d.field: kept for _, group in chosen.reasons(changed) for d, kept in group}
    assert held["dropout"] is False and held["augment"] is True and len(held) == len(chosen.applied)


def test_split_sizes_match_the_loaded_splits(data_dir):
    for name in ("digits", "fashion-mnist", "fashion-mnist-imbalanced"):
        d = datasets.load(name)
        assert datasets.split_sizes(name) == (len(d.y_train), len(d.y_val), len(d.y_test))
    upload("tiny", per_class=20)
    d = datasets.load("tiny")
    assert datasets.split_sizes("tiny") == (len(d.y_train), len(d.y_val), len(d.y_test)) == (28, 6, 6)
    datasets.load.cache_clear()


def test_an_upload_gets_its_defaults_and_the_cli_grid_applies_them_under_named_axes(data_dir):
    upload("photos", per_class=6, side=96, mode="RGB")
    chosen = recipe.for_dataset("photos")
    assert chosen.train_images == 8 and chosen.fields()["head"] == "gap"
    specs = grid.expand_on_defaults({"dataset": ["photos", "digits"], "dropout": [0.0]})
    photos, digits = specs
    assert photos.head == "gap" and photos.batchnorm and photos.padding == "same"
    assert digits.augment and digits.padding == "same" and digits.head == "flatten"
    assert digits.dropout == 0.0 != recipe.for_dataset("digits").spec().dropout  # the axis wins over the default
    assert grid.expand_on_defaults({"depth": [1]}) == [VariantSpec(depth=1)]  # Fashion-MNIST: unchanged


def test_a_deleted_upload_forgets_its_split_sizes_so_a_new_one_of_that_name_gets_its_own(data_dir, tmp_path):
    from explorer.store.cache import Store

    upload("again", per_class=20)
    assert recipe.for_dataset("again").train_images == 28
    uploads.delete("again", Store(tmp_path / "cache"))
    upload("again", per_class=40)
    assert recipe.for_dataset("again").train_images == 56
