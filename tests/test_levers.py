"""Training levers change the built model as stated (real Keras on real data, small)."""

import numpy as np
import pytest

from support import TINY
from explorer.models import architecture
from explorer.data import datasets
from explorer.spec import VariantSpec

pytestmark = pytest.mark.slow


def _quiet(*_, **__):
    pass


@pytest.mark.parametrize("lever,layer_type", [
    (dict(head="gap"), "GlobalAveragePooling2D"), (dict(batchnorm=True), "BatchNormalization"),
    (dict(dropout=0.3), "Dropout"), (dict(head="flatten"), "Flatten"),
])
def test_each_lever_puts_its_layer_in_the_model_and_counts_match_the_plan(lever, layer_type):
    from explorer.models import model as model_lib

    spec = VariantSpec(depth=3, dense=512, **lever)
    m = model_lib.build(spec, (28, 28, 1), 10)
    assert layer_type in {type(layer).__name__ for layer in m.layers}
    plan = architecture.plan(spec, (28, 28, 1), 10)
    assert m.count_params() == architecture.total_params(plan)
    assert [layer.name for layer in m.layers] == [lp.name for lp in plan]


def test_class_weights_come_from_the_training_split_only():
    from explorer.models import train

    data = datasets.load("fashion-mnist-imbalanced")
    w = train.class_weights(data.y_train, 10)
    counts = np.bincount(data.y_train, minlength=10)
    assert w[6] > 10 * w[1]  # Shirt was cut to 5 %
    assert np.isclose(sum(w[c] * counts[c] for c in range(10)), len(data.y_train))  # weighted total = n


def test_the_imbalanced_view_cuts_only_its_training_classes():
    full, view = datasets.load("fashion-mnist"), datasets.load("fashion-mnist-imbalanced")
    assert np.array_equal(view.x_test, full.x_test) and np.array_equal(view.y_test, full.y_test)
    assert np.array_equal(view.y_val, full.y_val)
    before, after = np.bincount(full.y_train), np.bincount(view.y_train)
    for c in range(10):
        expected = round(before[c] * datasets.RARE_SHARE) if c in datasets.RARE_CLASSES else before[c]
        assert after[c] == expected, c
    assert datasets.imbalance_ratio(after) > 15 > datasets.imbalance_ratio(before)


def test_augmentation_changes_training_batches_and_never_touches_validation_or_test():
    from explorer.models import train

    data = datasets.load("digits")
    spec = VariantSpec(**{**TINY, "augment": True})
    fed = train.training_data(data, spec, epochs=1)
    x_batch, y_batch = next(iter(fed["x"]))
    assert x_batch.shape[0] == spec.batch_size and not np.allclose(x_batch.numpy(), data.x_train[:32])

    from explorer.models import model as model_lib
    m = model_lib.build(spec, data.info.input_shape, 10)
    before = (data.x_val.copy(), data.x_test.copy())
    history = train.fit(m, data, spec, epochs=1, learning_rate=0.01, on_progress=_quiet, label="t")
    assert np.array_equal(before[0], data.x_val) and np.array_equal(before[1], data.x_test)
    # validation accuracy logged by fit equals a plain evaluation of the untouched validation split
    assert np.isclose(m.evaluate(data.x_val, data.y_val, verbose=0)[1], history["val_accuracy"][-1], atol=1e-6)


def test_the_plain_feed_trains_exactly_as_fit_on_the_arrays_would_with_autotuning_off():
    """Cached models trained on arrays stay reproducible: the same weights, batch for batch (and a feed in
    another order would not give them)."""
    from explorer.models import model as model_lib, train
    from explorer.models.tf_runtime import keras

    data = datasets.load("digits")
    spec = VariantSpec(**TINY)
    fed = train.training_data(data, spec, epochs=2)
    assert fed["x"].options().autotune.enabled is False and fed["steps_per_epoch"] == -(-len(data.y_train) // 32)

    def weights(**feed):
        m = model_lib.build(spec, data.info.input_shape, 10)
        keras.utils.set_random_seed(spec.seed)
        m.compile(optimizer=keras.optimizers.Adam(1e-3), loss="sparse_categorical_crossentropy")
        m.fit(**feed, epochs=2, verbose=0)
        return m.get_weights()

    arrays = weights(x=data.x_train, y=data.y_train, batch_size=spec.batch_size, shuffle=True)
    assert all(np.array_equal(a, b) for a, b in zip(arrays, weights(**train.training_data(data, spec, epochs=2))))
    unshuffled = weights(x=data.x_train, y=data.y_train, batch_size=spec.batch_size, shuffle=False)
    assert not all(np.array_equal(a, b) for a, b in zip(arrays, unshuffled))


def test_early_stopping_keeps_the_best_epoch_and_small_data_trains_longer():
    from explorer.models import model as model_lib, train

    data = datasets.load("digits")
    assert VariantSpec(**{**TINY, "min_steps": 1000}).base_epochs(len(data.y_train)) == 30  # 34 steps/epoch
    assert VariantSpec(**TINY).base_epochs(len(data.y_train)) == TINY["epochs"]
    spec = VariantSpec(**{**TINY, "learning_rate": 0.05, "epochs": 15, "patience": 2})
    m = model_lib.build(spec, data.info.input_shape, 10)
    history = train.train_base(m, data, spec, _quiet)
    best = max(history["val_accuracy"])
    assert np.isclose(m.evaluate(data.x_val, data.y_val, verbose=0)[1], best, atol=1e-6)
