"""Channel pruning: the slicing (pure numpy) and the narrower model it gives (real Keras, real data)."""

import numpy as np
import pytest

from support import FAST_LATENCY, TINY
from explorer.models import architecture, channels
from explorer.models.channels import SourceLayer
from explorer.spec import VariantSpec


def _rng_layers(rng):
    """conv 1->4 on 6x6, pool, flatten (2x2x4), dense 16 -> 6 units, logits 3."""
    return [
        SourceLayer("conv", [rng.normal(size=(3, 3, 1, 4)), rng.normal(size=4)]),
        SourceLayer("pool", []),
        SourceLayer("flatten", [], (2, 2, 4)),
        SourceLayer("dense", [rng.normal(size=(16, 6)), rng.normal(size=6)]),
        SourceLayer("logits", [rng.normal(size=(6, 3)), rng.normal(size=3)]),
    ]


def test_the_strongest_filters_by_l1_norm_are_kept_and_every_next_input_follows():
    rng = np.random.default_rng(0)
    layers = _rng_layers(rng)
    layers[0].weights[0][..., [1, 3]] *= 0.01  # filters 1 and 3 are the weakest
    out = channels.slice_weights(layers, 0.5)
    conv_k, conv_b = out[0]
    assert conv_k.shape == (3, 3, 1, 2) and np.array_equal(conv_k, layers[0].weights[0][..., [0, 2]])
    assert np.array_equal(conv_b, layers[0].weights[1][[0, 2]])
    # flatten of (2, 2, 4): channels 0 and 2 of each of the 4 positions
    rows = [p * 4 + c for p in range(4) for c in (0, 2)]
    dense_k = out[3][0]
    keep_units = channels.strongest(layers[3].weights[0], 3)
    assert dense_k.shape == (8, 3)
    assert np.array_equal(dense_k, layers[3].weights[0][rows][:, keep_units])
    assert np.array_equal(out[4][0], layers[4].weights[0][keep_units]) and np.array_equal(out[4][1], layers[4].weights[1])


def test_nothing_removed_is_the_identity():
    rng = np.random.default_rng(1)
    layers = _rng_layers(rng)
    for got, layer in zip(channels.slice_weights(layers, 0.0), layers):
        assert all(np.array_equal(a, b) for a, b in zip(got, layer.weights))


def test_the_narrower_plan_has_the_kept_widths_and_fewer_macs():
    full = architecture.plan(VariantSpec(depth=3), (28, 28, 1), 10)
    half = architecture.plan(VariantSpec(depth=3, channels=0.5), (28, 28, 1), 10)
    widths = {lp.name: lp.output_shape[-1] for lp in half}
    assert (widths["conv1"], widths["conv2"], widths["conv3"], widths["dense"], widths["logits"]) == (16, 32, 64, 64, 10)
    assert architecture.total_macs(half) < architecture.total_macs(full) / 3


@pytest.mark.slow
def test_kept_weights_are_the_trained_slices_and_dead_filters_change_nothing(tmp_path):
    """Zero the weakest filters of a trained model (and their biases): their channels are then exactly zero
    after ReLU, so the narrower model must predict exactly what the wide one does."""
    from explorer.data import datasets
    from explorer.models import model as model_lib, train

    spec = VariantSpec(**{**TINY, "width": 8, "dense": 32})
    data = datasets.load("digits")
    wide = model_lib.build(spec, data.info.input_shape, data.info.num_classes)
    train.fit(wide, data, spec, epochs=3, learning_rate=0.01, on_progress=lambda *a, **k: None, label="t")
    conv = wide.get_layer("conv1")
    k, b = conv.get_weights()
    weak = np.argsort(np.abs(k).reshape(-1, k.shape[-1]).sum(0))[:4]
    k[..., weak], b[weak] = 0.0, 0.0
    conv.set_weights([k, b])
    dense = wide.get_layer("dense")
    dk, db = dense.get_weights()
    weak_units = np.argsort(np.abs(dk).sum(0))[:16]
    dk[:, weak_units], db[weak_units] = 0.0, 0.0
    dense.set_weights([dk, db])

    narrow_spec = spec.replace(channels=0.5)
    narrow = model_lib.build(narrow_spec, data.info.input_shape, data.info.num_classes)
    kinds = [lp.kind for lp in architecture.plan(spec, data.info.input_shape, data.info.num_classes)]
    channels.narrow(wide, narrow, kinds, 0.5)
    planned = architecture.plan(narrow_spec, data.info.input_shape, data.info.num_classes)
    assert [tuple(layer.output_shape[1:]) for layer in narrow.layers] == [lp.output_shape for lp in planned]
    assert narrow.count_params() == architecture.total_params(planned)
    keep = np.sort(np.setdiff1d(np.arange(8), weak))
    assert np.array_equal(narrow.get_layer("conv1").get_weights()[0], k[..., keep])
    np.testing.assert_allclose(narrow.predict(data.x_test, verbose=0), wide.predict(data.x_test, verbose=0),
                               rtol=1e-5, atol=1e-6)


@pytest.mark.slow
def test_a_channel_pruned_variant_is_narrower_and_scored_from_its_tflite_model(tmp_path):
    from explorer.measure import measure
    from explorer.run import pipeline
    from explorer.store.cache import TFLITE, Store

    store = Store(tmp_path)
    spec = VariantSpec(**TINY, channels=0.5, quant="int8")
    v, report = pipeline.ensure(spec, store, latency_kwargs=FAST_LATENCY)
    full, _ = pipeline.ensure(spec.replace(channels=0.0), store, latency_kwargs=FAST_LATENCY)
    assert "base" in report.reused or "base" in report.built
    assert v.macs == architecture.total_macs(architecture.plan(spec, (8, 8, 1), 10)) < full.macs
    assert v.size_bytes < full.size_bytes and v.params < full.params
    from explorer.data import datasets
    data = datasets.load("digits")
    tflite = store.file_path("variants", v.key, TFLITE).read_bytes()
    assert v.accuracy == measure.evaluate(tflite, data.x_test, data.y_test, 10).accuracy > 0.8
    assert v.history["channels"]["accuracy"]  # the fine-tune after pruning is recorded
