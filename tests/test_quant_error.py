"""Where a full-integer model's accuracy goes: the debugger's per-op error read into records, the layers tried in
float, the sentence; and end to end, measured at build and stored with the variant."""

import math

import pytest

from explorer.measure import quant_error
from explorer.record import LayerError, QuantError

DUMP = """op_name,tensor_idx,num_elements,stddev,mean_error,max_abs_error,mean_squared_error,scale,zero_point,tensor_name
CONV_2D,7,512,0.1,0.0,0.2,0.0004,0.02,-128,sequential/conv1/Relu;sequential/conv1/BiasAdd
MAX_POOL_2D,8,128,0.0,0.0,0.0,0.0,0.02,-128,sequential/pool1/MaxPool
FULLY_CONNECTED,9,10,0.3,0.1,0.5,0.09,0.1,5,StatefulPartitionedCall:0
"""
OWNERS = {"sequential/conv1/Relu;sequential/conv1/BiasAdd": "conv1", "sequential/pool1/MaxPool": "pool1",
          "StatefulPartitionedCall:0": "logits"}
ORDER = {"sequential/conv1/Relu;sequential/conv1/BiasAdd": 0, "sequential/pool1/MaxPool": 1,
         "StatefulPartitionedCall:0": 2}


def test_the_dump_becomes_one_record_per_op_in_op_order_with_rmse_in_quantization_steps():
    layers = quant_error.from_dump(DUMP, OWNERS, ORDER)
    assert [(e.index, e.op, e.layer) for e in layers] == [(0, "CONV_2D", "conv1"), (1, "MAX_POOL_2D", "pool1"),
                                                          (2, "FULLY_CONNECTED", "logits")]
    assert layers[0].rmse == pytest.approx(1.0) and layers[2].rmse == pytest.approx(3.0)  # sqrt(mse) / scale
    assert quant_error.candidates(layers) == ["logits", "conv1", "pool1"]  # the largest error first
    assert quant_error.candidates(layers, first="pool1") == ["pool1", "logits", "conv1"]  # the output layer first


def test_the_sentence_names_the_layer_that_recovers_most_else_the_largest_error():
    layers = quant_error.from_dump(DUMP, OWNERS, ORDER)
    none_lost = QuantError(1000, 0.90, 0.899, layers)
    assert not quant_error.worth_blaming(QuantError(1000, 0.90, 0.899, layers, p=0.01))  # real, but a tenth
    assert quant_error.worth_blaming(QuantError(1000, 0.90, 0.89, layers, p=0.01))
    assert not quant_error.worth_blaming(QuantError(1000, 0.90, 0.89, layers, p=0.3))  # a point, within the noise
    assert not QuantError(1000, 0.90, 0.89, layers).real_drop  # an older record, with no test: not marked
    said = quant_error.sentence(none_lost)
    assert said.startswith("int8 loses 0.1 points against float on 1,000 validation images: nothing to recover")
    assert "logits's int8 output is 3.00 quantization steps" in said
    lost = quant_error.with_gains(QuantError(1000, 0.90, 0.87, layers, p=0.001), {"conv1": 2.4, "logits": 0.3})
    assert [e.gain for e in lost.layers] == [2.4, None, 0.3]
    said = quant_error.sentence(lost)
    assert "int8 loses 3.0 points" in said and "Keeping conv1 alone in float recovers 2.4 of them" in said
    assert QuantError.from_dict(lost.to_dict()) == lost  # stored and read back whole
    above = QuantError(360, 0.433, 0.436, layers)
    assert quant_error.sentence(above).startswith("int8 scores 0.3 points above float")


def test_an_op_no_layer_names_is_still_listed_and_nan_errors_are_not_candidates():
    dump = DUMP + "QUANTIZE,3,64,0,0,0,,0.0,0,serving_default_input:0\n"
    layers = quant_error.from_dump(dump, OWNERS, ORDER)
    odd = [e for e in layers if e.op == "QUANTIZE"]
    assert len(odd) == 1 and odd[0].index is None and odd[0].layer == "" and math.isnan(odd[0].rmse)
    assert "" not in quant_error.candidates(layers) and layers[-1] is odd[0]  # unplaced ops last
    assert quant_error.worst(QuantError(10, 1.0, 1.0, (LayerError(None, "X", "", float("nan")),))) is None


@pytest.mark.slow
def test_a_full_int8_variant_records_each_layers_error_and_the_points_float_recovers(tmp_path, monkeypatch, user_data):
    """The rule that decides whether to look is injected (always), so the layers are tried in float here even where
    int8 loses nothing on this host."""
    from support import TINY
    from explorer import record
    from explorer.run import pipeline
    from explorer.spec import VariantSpec
    from explorer.store.cache import Store

    monkeypatch.setattr(quant_error, "worth_blaming", lambda *args: True)
    store = Store(tmp_path / "cache")
    spec = VariantSpec(**{**TINY, "quant": "int8"})
    built, _ = pipeline.ensure(spec, store, measure_missing=False)
    q = built.quant_error
    assert q is not None and q.images == min(quant_error.IMAGES, 360) and 0 <= q.int8_accuracy <= 1
    weighted = [e for e in q.layers if e.op in ("CONV_2D", "FULLY_CONNECTED", "DEPTHWISE_CONV_2D")]
    assert weighted and all(e.layer and e.rmse > 0 and e.gain is not None for e in weighted)
    assert [e.index for e in q.layers] == sorted(e.index for e in q.layers)  # the op profile's order
    best = max(e.gain for e in weighted)  # whatever this host's int8 loses, the sentence says what float recovered
    said = quant_error.sentence(q)
    assert (f"Keeping {quant_error.worst(q).layer} alone in float recovers {best:.1f}" in said if best > 0 else
            "No layer kept alone in float recovers any of it" in said), said
    (again,) = [v for v in record.load_all(store, "x")[0] if v.key == built.key]
    assert again.quant_error == q
    fp32, _ = pipeline.ensure(spec.replace(quant="fp32"), store, measure_missing=False)
    assert fp32.quant_error is None


def test_when_no_layer_recovers_anything_in_float_the_sentence_says_so_and_names_the_largest_error():
    layers = quant_error.from_dump(DUMP, OWNERS, ORDER)
    q = quant_error.with_gains(QuantError(1000, 0.90, 0.88, layers), {"conv1": 0.0, "logits": -0.2})
    said = quant_error.sentence(q)
    assert "No layer kept alone in float recovers any of it" in said and "logits's int8 output is 3.00" in said


def test_the_figures_draw_each_op_in_order_and_two_variants_side_by_side():
    from explorer.present import figures

    layers = quant_error.from_dump(DUMP, OWNERS, ORDER)
    q = quant_error.with_gains(QuantError(1000, 0.90, 0.87, layers), {"conv1": 2.4})
    (bars,) = figures.quant_error(q).data
    assert list(bars.y) == ["0: CONV_2D conv1", "1: MAX_POOL_2D pool1", "2: FULLY_CONNECTED logits"]
    assert list(bars.marker.color) == [2.4, 0.0, 0.0] and bars.customdata[0][0] == "+2.4 points in float"
    other = QuantError(1000, 0.90, 0.90, tuple(e for e in layers if e.layer != "pool1"))
    fig = figures.quant_errors_side_by_side([("a-int8", q), ("b-int8", other)])
    assert [t.name for t in fig.data] == ["a-int8", "b-int8"] and list(fig.data[0].y) == ["conv1", "pool1", "logits"]
    assert fig.data[1].x[1] is None and fig.data[1].x[2] == pytest.approx(3.0)  # b has no pool1 op


def test_an_int8_point_with_a_real_drop_is_marked_on_the_pareto_chart_and_one_within_the_noise_is_not():
    import dataclasses

    import numpy as np

    from explorer import record
    from explorer.present import figures, results
    from explorer.store.cache import Store
    from support import REPO

    found, _ = record.load_all(Store(REPO / "cached_models"), "any-host")
    int8 = [v for v in found if v.spec.quant == "int8"][:2]
    lost = dataclasses.replace(int8[0], quant_error=QuantError(1000, 0.90, 0.88, (), p=0.001))
    noise = dataclasses.replace(int8[1], quant_error=QuantError(1000, 0.90, 0.89, (), p=0.2))
    df = results.group_seeds(results.table([lost, noise, *[v for v in found if v.key not in (lost.key, noise.key)]]))
    fig = figures.pareto(df, np.zeros(len(df), bool), "size_kb")
    (marks,) = [t for t in fig.data if t.name == "int8 loses accuracy"]
    assert len(marks.customdata) == 1 and marks.customdata[0][0].startswith(lost.label) and marks.customdata[0][1] == pytest.approx(2.0)
