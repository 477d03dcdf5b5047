"""Precision under an accuracy bound ("auto:D"): the layers ranked by their measured gains then their error, the
shortest prefix that meets the bound found by bisection, the result kept in the int8 sibling's record, and the
variant auto gives (never slower than the fp32 sibling)."""

import math

import pytest

from explorer.measure import precision_bound
from explorer.record import LayerError, PrecisionBound, QuantError
from explorer.spec import SpecError, VariantSpec


def _record(gains: dict[str, float | None], rmse: dict[str, float], float_acc=0.90, int8_acc=0.86) -> QuantError:
    return QuantError(1000, float_acc, int8_acc, tuple(LayerError(i, "CONV_2D", name, rmse[name], gains.get(name))
                                                       for i, name in enumerate(rmse)))


def test_layers_rank_by_measured_gain_then_by_error_and_only_allowed_ones():
    q = _record({"a": 0.2, "b": 1.5, "c": -0.1, "d": None}, {"a": 1.0, "b": 0.5, "c": 9.0, "d": 3.0, "e": 2.0})
    assert precision_bound.ranked(q, {"a", "b", "c", "d", "e"}) == ["b", "a", "c", "d", "e"]
    assert precision_bound.ranked(q, {"a", "d"}) == ["a", "d"]


def _accuracy_adding(q: QuantError, worth: dict[str, float], calls: list):
    def accuracy_with(layers):
        calls.append(layers)
        return q.int8_accuracy + sum(worth.get(n, 0.0) for n in layers) / 100
    return accuracy_with


def test_the_shortest_prefix_within_the_bound_is_found_in_a_logarithmic_number_of_conversions():
    names = [f"l{i}" for i in range(40)]
    q = _record({}, {n: 40.0 - i for i, n in enumerate(names)}, float_acc=0.90, int8_acc=0.86)  # 4 points lost
    worth = {n: 0.3 for n in names}  # each layer in float recovers 0.3 points: 12 layers bring it within 0.5
    calls: list = []
    bound = precision_bound.search(names, _accuracy_adding(q, worth, calls), q, max_drop=0.5)
    assert bound.met and bound.layers == tuple(names[:12]) and bound.drop_points == pytest.approx(0.4)
    assert len(calls) == len(bound.tried) <= 1 + 2 * math.ceil(math.log2(12))
    assert calls[0] == (names[0],)  # the layer measured to help most first: often enough alone
    again = PrecisionBound.from_dict(bound.to_dict())
    assert again == bound


def test_within_the_bound_already_nothing_is_converted_and_an_unreachable_bound_gives_no_mix():
    q = _record({}, {"a": 1.0, "b": 2.0}, float_acc=0.90, int8_acc=0.898)
    calls: list = []
    assert precision_bound.search(["b", "a"], _accuracy_adding(q, {}, calls), q, 0.5).layers == () and calls == []
    q = _record({}, {"a": 1.0, "b": 2.0}, float_acc=0.90, int8_acc=0.80)
    bound = precision_bound.search(["b", "a"], _accuracy_adding(q, {"a": 1.0}, calls), q, 0.5)
    assert not bound.met and bound.tried == ((1, pytest.approx(0.80)), (2, pytest.approx(0.81)))
    cannot = precision_bound.search(["b", "a"], lambda layers: None, q, 0.5)  # every op in float: no mix exists
    assert not cannot.met and cannot.tried == ()


def test_auto_takes_a_bound_in_points_and_a_network_s_own_layer_names():
    spec = VariantSpec(quant="int8", precision="auto:0.5")
    assert spec.is_auto and spec.max_drop == 0.5 and VariantSpec(quant="int8", precision="auto").max_drop is None
    for bad in ("auto:", "auto:-1", "auto:0.555", "auto:x"):
        with pytest.raises(SpecError, match="auto:D"):
            VariantSpec(quant="int8", precision=bad)
    named = VariantSpec(quant="int8", model="keras:MobileNetV3Small", precision="Conv+expanded_conv/depthwise")
    assert named.label().endswith("float-Conv+expanded_conv/depthwise")
    many = named.replace(precision="+".join(f"block_{i}" for i in range(12)))
    assert "float-12-layers-" in many.label() and many.label() != named.replace(
        precision="+".join(f"block_{i}" for i in range(1, 13))).label()


def test_the_cli_turns_auto_into_auto_with_the_bound():
    from explorer.run import cli

    args = cli.parser().parse_args(["sweep", "--quant", "int8", "--precision", "auto", "full", "--max-drop", "0.5"])
    assert cli._axes(args)["precision"] == ["auto:0.5", "full"]
    args = cli.parser().parse_args(["sweep", "--quant", "int8", "--max-drop", "1"])
    assert cli._axes(args)["precision"] == ["auto:1"]
    with pytest.raises(SystemExit):
        cli.parser().parse_args(["sweep", "--max-drop", "0.123"])


@pytest.mark.slow
def test_a_bound_is_chosen_once_kept_in_the_int8_record_and_an_unreachable_one_gives_the_fp32_sibling(store):
    """Both directions on the tiny network: its real drop is within 50 points (no layer in float); a float accuracy
    injected into the int8 record that no mix can reach (every layer in float is the fp32 model) gives fp32."""
    from support import FAST_LATENCY, TINY
    from explorer.run import accuracy_bound, auto_precision, pipeline

    spec = VariantSpec(**TINY, quant="int8")
    int8, _ = pipeline.ensure(spec, store, latency_kwargs=FAST_LATENCY)
    fp32, _ = pipeline.ensure(spec.replace(quant="fp32"), store, latency_kwargs=FAST_LATENCY)
    easy, _ = pipeline.ensure(spec.replace(precision="auto:50"), store, latency_kwargs=FAST_LATENCY)
    kept = accuracy_bound.stored(store, int8.key, 50.0)
    assert kept is not None and kept.met and kept.layers == () and kept.tried == ()
    assert easy.latency.p50_us <= fp32.latency.p50_us or easy.key == fp32.key  # never slower than fp32

    q = int8.quant_error
    store.amend_meta("variants", int8.key, lambda m: {**m, "metrics": {**m["metrics"], "quant_error": {
        **q.to_dict(), "float_accuracy": 1.0, "int8_accuracy": min(q.int8_accuracy, 0.9)}}})
    hard, _ = pipeline.ensure(spec.replace(precision="auto:0"), store, latency_kwargs=FAST_LATENCY)
    bound = accuracy_bound.stored(store, int8.key, 0.0)
    assert hard.key == fp32.key and bound is not None and not bound.met
    assert "no mix of int8 and float layers came within 0 points" in auto_precision.auto_precision(
        spec.replace(precision="auto:0"), store).text()


def test_an_architecture_names_its_layers_alike_in_every_build_of_one_process():
    """keras.applications number the layers they do not name (tf.__operators__.add_3) per process: a layer the
    int8 build found worth keeping in float must have the same name when the bound converts the model again."""
    from explorer.models import sources

    spec = VariantSpec(model="keras:MobileNetV3Small", colour="rgb", image_size=32)
    app = sources.for_spec(spec)
    first, second = ([layer.name for layer in app.build(spec, (32, 32, 3), 10).layers] for _ in range(2))
    assert first == second and any(name.startswith("tf.__operators__.add") for name in first)


def test_full_integer_models_end_at_the_logits_whatever_their_softmax_is_named():
    """An int8 softmax ties close classes at 256 levels (on a MobileNetV3Small it cost 1.5 of the 1.6 points int8
    lost): a keras: architecture gets its softmax as a layer of its own, and an imported network's Activation or
    Softmax layer is cut whatever its name."""
    import numpy as np

    from explorer.models import quantize, sources
    from explorer.models.tf_runtime import keras
    from explorer.measure import profile

    spec = VariantSpec(model="keras:MobileNet:alpha=0.25", colour="rgb", image_size=32)
    app = sources.for_spec(spec).build(spec, (32, 32, 3), 10)
    assert app.layers[-1].name == "softmax" and quantize.ends_in_softmax(app)
    assert quantize.output_layer(app) == "conv_preds"  # its 1x1 logits convolution, back over a reshape
    inputs = keras.Input((8, 8, 1))
    logits = keras.layers.Dense(10)(keras.layers.Flatten()(inputs))
    for last in (keras.layers.Activation("softmax", name="probs"), keras.layers.Softmax(name="p")):
        model = keras.Model(inputs, last(logits))
        assert quantize.ends_in_softmax(model) and quantize.output_layer(model) == model.layers[-2].name
        x = np.random.default_rng(0).random((32, 8, 8, 1), dtype=np.float32)
        ops = [o.name for o in profile.ops(quantize.to_tflite(model, "int8", x))]
        assert "SOFTMAX" not in ops and "SOFTMAX" in [o.name for o in profile.ops(quantize.to_tflite(model, "fp32", x))]


def test_where_the_layers_for_speed_measure_slower_together_the_accuracy_layers_alone_are_kept(tmp_path):
    """The Intel host's profiles keep conv1 in float for speed; a bound keeps logits for accuracy. Both candidates
    are timed (latencies injected both ways): the faster is kept, and the sentence says why."""
    from support import intel_only_cache
    from explorer.run import accuracy_bound, auto_precision
    from explorer.store.cache import Store

    cache, intel = intel_only_cache(tmp_path / "cache")
    store = Store(cache)
    spec = VariantSpec(quant="int8", precision="auto:0.5")
    int8 = spec.replace(precision="full")
    accuracy_bound.keep(store, int8.key(), PrecisionBound(0.5, 1000, 0.90, 0.88, ("logits",), 0.899, ((1, 0.899),),
                                                          True, 0.4))
    auto = auto_precision.auto_precision(spec, store, intel)
    assert auto.candidate.precision == "conv1+logits" and auto.alternative.precision == "logits" and not auto.timed
    meta, files = store.export("variants", int8.key())
    base = store.read_latency(int8.key(), intel)
    for together, alone in ((20.0, 30.0), (30.0, 20.0)):
        for option, us in ((auto.candidate, together), (auto.alternative, alone)):
            if not store.has("variants", option.key()):
                store.put("variants", option.key(), {**meta, "key": option.key()}, files)
            store.write_latency(option.key(), intel, {**base, "p50_us": us})
        got = auto_precision.auto_precision(spec, store, intel)
        assert got.timed and got.chosen.precision == ("conv1+logits" if together < alone else "logits")
        assert ("auto keeps those alone" in got.text()) == (alone < together)
