"""Per-layer precision: chosen from a host's measured op profiles, converted with layers kept in float."""

import json
from pathlib import Path

import numpy as np
import pytest

from explorer.measure.precision import float_layers, layer_ops
from explorer.record import Latency, VariantRecord
from explorer.spec import SpecError, VariantSpec
from explorer.store.cache import Store
from support import FAST_LATENCY, REPO, TINY, intel_only_cache

INTEL = REPO / "tests" / "data" / "hosts" / "intel-xeon-avx512-amx-2core"


def _shipped(label: str) -> VariantRecord:
    for meta in (REPO / "cached_models" / "variants").glob("*/meta.json"):
        m = json.loads(meta.read_text())
        if m["label"] == label:
            return VariantRecord.from_meta(m)
    raise KeyError(label)


def _intel(v: VariantRecord) -> Latency:
    return Latency.from_dict(json.loads((INTEL / "latency" / f"{v.key}.json").read_text()))


def test_on_the_intel_hosts_profiles_auto_keeps_the_first_convolution_in_float():
    for arch in ("d1w32-fc128", "d2w32-fc128", "d3w32-fc128", "d2w32-fc128-ch0.5", "d2w32-fc128-sep"):
        int8, fp32 = _shipped(f"fashion-mnist-{arch}-int8"), _shipped(f"fashion-mnist-{arch}-fp32")
        assert float_layers(int8.layers, _intel(int8).ops, _intel(fp32).ops) == ["conv1"], arch
    int8 = _shipped("fashion-mnist-d2w32-fc128-int8")
    ops = layer_ops(int8.layers, _intel(int8).ops)
    assert [o.name for o in ops["conv1"]] == ["CONV_2D"] and ops["conv1"][0].us == pytest.approx(30.1, abs=0.5)
    assert float_layers(int8.layers, _intel(int8).ops, _intel(int8).ops) == []  # equal costs: full int8


def test_auto_resolves_per_host_and_the_key_says_which_layers(tmp_path):
    cache, intel_id = intel_only_cache(tmp_path / "cache")
    from explorer.run.auto_precision import resolve_precision

    store = Store(cache)
    auto = VariantSpec(quant="int8", precision="auto")
    resolved = resolve_precision(auto, store, intel_id)
    assert resolved.precision == "conv1" and resolved.key() != VariantSpec(quant="int8").key()
    assert "float-conv1" in resolved.label()
    with pytest.raises(SpecError, match="auto needs the int8 sibling"):
        resolve_precision(auto, store, "a-host-that-measured-nothing")
    with pytest.raises(SpecError, match="full-integer modes only"):
        VariantSpec(quant="dynamic", precision="conv1")
    assert VariantSpec(quant="int8").to_dict().get("precision") is None  # full: every shipped key unchanged


@pytest.mark.slow
def test_a_layer_kept_in_float_converts_float_and_keeps_the_accuracy(store):
    from ai_edge_litert.interpreter import Interpreter

    from explorer.run import pipeline
    from explorer.store.cache import TFLITE

    full, _ = pipeline.ensure(VariantSpec(**TINY, quant="int8"), store, latency_kwargs=FAST_LATENCY)
    mixed, _ = pipeline.ensure(VariantSpec(**TINY, quant="int8", precision="conv1"), store, latency_kwargs=FAST_LATENCY)
    interp = Interpreter(model_content=store.file_path("variants", mixed.key, TFLITE).read_bytes())
    dtypes = {d["index"]: d["dtype"] for d in interp.get_tensor_details()}
    first, *rest = interp._get_ops_details()
    assert first["op_name"] == "CONV_2D" and dtypes[first["outputs"][0]] == np.float32  # kept float
    assert any(op["op_name"] == "QUANTIZE" for op in rest)  # then int8
    assert abs(mixed.accuracy - full.accuracy) < 0.03
    with pytest.raises(SpecError, match="no layer conv3 here"):
        pipeline.ensure(VariantSpec(**TINY, quant="int8", precision="conv3"), store)


def test_where_int8_is_slow_through_and_through_auto_keeps_every_layer_float():
    from explorer.record import Layer, OpTime

    layers = [Layer("conv1", "separable", (1, 26, 26, 32), 0, 0), Layer("pool1", "pool", (1, 13, 13, 32), 0, 0),
              Layer("flatten", "flatten", (1, 5408), 0, 0), Layer("logits", "logits", (1, 10), 0, 0)]
    op = lambda i, name, us: OpTime(i, name, (1,), True, us)  # noqa: E731
    int8 = [op(0, "DEPTHWISE_CONV_2D", 9.0), op(1, "CONV_2D", 6.0), op(2, "MAX_POOL_2D", 3.0), op(3, "RESHAPE", 0.1),
            op(4, "FULLY_CONNECTED", 20.0)]
    fp32 = [op(0, "DEPTHWISE_CONV_2D", 3.0), op(1, "CONV_2D", 7.0), op(2, "MAX_POOL_2D", 2.0), op(3, "RESHAPE", 0.1),
            op(4, "FULLY_CONNECTED", 9.0)]
    assert float_layers(layers, int8, fp32) == ["conv1", "pool1", "flatten", "logits"]  # fp32 beats any mix
    fp32_slow_dense = fp32[:4] + [op(4, "FULLY_CONNECTED", 30.0)]
    assert float_layers(layers, int8, fp32_slow_dense) == ["conv1"]  # only the layer slower in int8


def test_float_layers_merge_into_one_island_only_across_pooling():
    from explorer.measure.precision import _islands
    from explorer.models import architecture

    plan = architecture.plan(VariantSpec(depth=3), (28, 28, 1), 10)
    assert _islands(plan, ["conv1", "conv2"]) == ["conv1", "pool1", "conv2"]  # one island, no int8 pool between
    assert _islands(plan, ["conv1", "dense"]) == ["conv1", "dense"]  # int8 convolutions lie between: two islands
    assert _islands(plan, ["conv3", "dense"]) == ["conv3", "pool3", "flatten", "dense"]


def test_a_timed_candidate_slower_than_a_sibling_gives_way_to_the_faster_sibling():
    from explorer.measure.precision import faster_sibling
    from explorer.run.auto_precision import AutoPrecision

    assert faster_sibling(105.6, {"int8": 120.0, "fp32": 84.6}) == "fp32"  # the depth-3 case on the AMD EPYC
    assert faster_sibling(80.0, {"int8": 120.0, "fp32": 84.6}) is None
    assert faster_sibling(84.6, {"int8": 120.0, "fp32": 84.6}) is None  # a tie keeps the candidate
    int8 = VariantSpec(depth=3, quant="int8")
    lost = AutoPrecision(int8.replace(precision="conv1"), int8.replace(quant="fp32"),
                         {"candidate": 105.6, "int8": 120.0, "fp32": 84.6}, "fp32")
    assert "measured 105.6 µs against the fp32 sibling's 84.6 µs: auto gives the fp32 sibling" in lost.text()
    untimed = AutoPrecision(int8.replace(precision="conv1"), int8.replace(precision="conv1"), {"int8": 1, "fp32": 2})
    assert not untimed.timed and "timed against both siblings when built" in untimed.text()


@pytest.mark.slow
def test_auto_is_never_slower_than_either_sibling_by_measurement(store):
    from explorer.run import auto_precision, pipeline

    spec = VariantSpec(**TINY, quant="int8")
    int8, _ = pipeline.ensure(spec, store, latency_kwargs=FAST_LATENCY)
    fp32, _ = pipeline.ensure(spec.replace(quant="fp32"), store, latency_kwargs=FAST_LATENCY)
    got, _ = pipeline.ensure(spec.replace(precision="auto"), store, latency_kwargs=FAST_LATENCY)
    auto = auto_precision.auto_precision(spec.replace(precision="auto"), store)
    assert auto.timed and got.key == auto.chosen.key()  # the candidate was built and timed here
    assert store.read_latency(auto.candidate.key(), got.latency.host_id) is not None
    assert got.latency.p50_us <= min(int8.latency.p50_us, fp32.latency.p50_us, auto.p50_us["candidate"])
    assert auto.fallback in (None, "int8", "fp32") and f"{got.latency.p50_us:.1f} µs" in auto.text()


@pytest.mark.slow
def test_where_the_profiles_keep_every_layer_float_auto_gives_the_fp32_sibling(store):
    from explorer.measure import host
    from explorer.run import auto_precision, pipeline

    spec = VariantSpec(**TINY, quant="int8")
    pipeline.ensure(spec, store, latency_kwargs=FAST_LATENCY)
    fp32, _ = pipeline.ensure(spec.replace(quant="fp32"), store, latency_kwargs=FAST_LATENCY)
    here = host.current().id
    slow = store.read_latency(spec.key(), here)  # int8 kernels slow through and through on this "host"
    slow["ops"] = [{**op, "us": op["us"] * 20 + 50} for op in slow["ops"]]
    store.write_latency(spec.key(), here, slow)
    got, _ = pipeline.ensure(spec.replace(precision="auto"), store, latency_kwargs=FAST_LATENCY)
    assert got.key == fp32.key
    assert "the fp32 sibling" in auto_precision.auto_precision(spec.replace(precision="auto"), store).text()
    every = "+".join(lp.name for lp in got.layers if lp.kind in ("conv", "pool", "flatten", "dense", "logits"))
    with pytest.raises(ValueError, match="every layer in float is the fp32 variant"):
        pipeline.ensure(spec.replace(precision=every), store, latency_kwargs=FAST_LATENCY)


@pytest.mark.slow
def test_the_logits_can_be_kept_in_float_though_their_op_writes_the_models_output(store):
    from ai_edge_litert.interpreter import Interpreter

    from explorer.run import pipeline
    from explorer.store.cache import TFLITE

    mixed, _ = pipeline.ensure(VariantSpec(**TINY, quant="int8", precision="logits"), store, latency_kwargs=FAST_LATENCY)
    interp = Interpreter(model_content=store.file_path("variants", mixed.key, TFLITE).read_bytes())
    dtypes = {d["index"]: d["dtype"] for d in interp.get_tensor_details()}
    *_, logits = [op for op in interp._get_ops_details() if op["op_name"] == "FULLY_CONNECTED"]
    assert dtypes[logits["inputs"][1]] == np.float32  # float weights: kept float
    assert mixed.accuracy > 0.8
