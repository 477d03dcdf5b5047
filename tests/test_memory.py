"""Peak RAM and flash planned from a .tflite alone, held against TensorFlow Lite Micro's own allocator."""

from __future__ import annotations

import pytest

from support import REPO

from explorer.measure import memory
from explorer.record import MemoryPlan

SHIPPED_MODELS = sorted((REPO / "cached_models" / "variants").glob("*/model.tflite"))


def test_buffers_alive_at_different_times_share_the_arena():
    assert memory.place([96, 64], [0, 2], [1, 3]) == [0, 0]


def test_buffers_alive_together_are_stacked_largest_first():
    assert memory.place([32, 96, 64], [0, 0, 0], [1, 1, 1]) == [160, 0, 96]


def test_a_buffer_goes_into_the_first_gap_among_those_alive_with_it():
    # b (0..3) first, at 0; a (0..1) above it; c (2..3) is not alive with a, so it takes a's place;
    # e (2..2) is alive with b and c, so it goes above c
    assert memory.place([64, 64, 32, 16], [0, 0, 2, 2], [1, 3, 3, 2]) == [64, 0, 64, 96]


def test_equal_sizes_are_placed_in_reverse_tensor_order_as_tflite_micro_does():
    assert memory.place([16, 16], [0, 0], [1, 1]) == [16, 0]


@pytest.mark.parametrize("path", SHIPPED_MODELS, ids=lambda p: p.parent.name)
def test_the_plan_agrees_with_tflite_micro_on_every_shipped_variant(path):
    model = path.read_bytes()
    plan = memory.plan(model)
    ref = memory.micro_reference(model)
    if ref is None:  # TFLite Micro has no kernels for it: the plan must say why
        assert plan.micro_blockers, "TFLite Micro refused a model the plan calls runnable"
        return
    assert not plan.micro_blockers
    assert plan.head_bytes == ref["head"]
    assert plan.tail_bytes == ref["tail"]  # estimated from the graph's counts, to TFLite Micro's 16-byte step
    assert plan.flash_bytes == len(model)


SMALL = ("conv", "dense", "max", "gap", "add", "conv+add", "dw+gap+dense+softmax", "rescale+conv+gap+dense")


def _small_network(keras, kinds: str):
    """A network of one or a few ops, on an 8x8 grey image (the smallest arenas: a few bytes off is 1 %)."""
    kl = keras.layers
    x = inp = keras.Input((8, 8, 1))
    for kind in kinds.split("+"):
        x = {"conv": lambda t: kl.Conv2D(4, 3, activation="relu")(t), "dw": lambda t: kl.DepthwiseConv2D(3)(t),
             "dense": lambda t: kl.Dense(10)(kl.Flatten()(t) if len(t.shape) > 2 else t),
             "max": lambda t: kl.MaxPooling2D()(t), "gap": lambda t: kl.GlobalAveragePooling2D()(t),
             "add": lambda t: kl.Add()([t, t]), "softmax": lambda t: kl.Softmax()(t),
             "rescale": lambda t: kl.Rescaling(2.0, -1.0)(t)}[kind](x)  # MUL and ADD by constants (an import's)
    return keras.Model(inp, x)


@pytest.mark.slow
@pytest.mark.parametrize("kinds", SMALL)
def test_the_plan_is_tflite_micros_own_on_networks_of_one_or_a_few_ops(kinds, tmp_path):
    """Float, int8 with float input and output, and int8 through: head and tail both to the byte."""
    import numpy as np

    from explorer.models.tf_runtime import keras, tf

    model = _small_network(keras, kinds)
    for mode in ("fp32", "int8", "int8 in and out"):
        convert = tf.lite.TFLiteConverter.from_keras_model(model)
        if mode != "fp32":
            convert.optimizations = [tf.lite.Optimize.DEFAULT]
            convert.representative_dataset = lambda: ([np.random.default_rng(i).random((1, 8, 8, 1), np.float32)]
                                                      for i in range(8))
            convert.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        if mode == "int8 in and out":
            convert.inference_input_type = convert.inference_output_type = tf.int8
        tflite = convert.convert()
        (tmp_path / f"{mode}.tflite").write_bytes(tflite)  # the session-end check holds these too
        plan, ref = memory.plan(tflite), memory.micro_reference(tflite)
        assert (plan.head_bytes, plan.tail_bytes) == (ref["head"], ref["tail"]), (mode, plan.tail_bytes, ref)


def test_the_peak_is_named_with_the_tensor_that_makes_it():
    model = next(p for p in SHIPPED_MODELS if p.parent.name == "10e6f4053f13d3e4").read_bytes()  # d2 int8
    plan = memory.plan(model)
    i, step = plan.peak_step
    assert step.largest == "conv1/Relu" and step.largest_shape == (1, 26, 26, 32) and step.largest_dtype == "int8"
    assert step.live_bytes == plan.head_bytes == 27_040  # conv1's output and pool1's, alive together
    assert plan.steps[i - 1].op == "CONV_2D" and step.op == "MAX_POOL_2D"


def test_a_plan_round_trips_through_its_stored_form():
    plan = memory.plan(SHIPPED_MODELS[0].read_bytes())
    assert MemoryPlan.from_dict(plan.to_dict()) == plan




def test_a_search_constraint_on_ram_holds_the_planned_arena_and_refuses_what_tflite_micro_cannot_run():
    from explorer.run.search import UNRUNNABLE, Constraints

    int8 = memory.plan(next(p for p in SHIPPED_MODELS if p.parent.name == "10e6f4053f13d3e4").read_bytes())
    limits = Constraints(max_ram_kb=32.0, max_flash_kb=200.0)
    values = limits.values(0.9, 100.0, int8.flash_kb, int8)
    assert values["peak_ram_kb"] == pytest.approx(int8.peak_ram_kb - 32.0) and values["peak_ram_kb"] <= 0  # 31.1 KB
    assert values["flash_kb"] == pytest.approx(int8.flash_kb - 200.0) and values["flash_kb"] > 0  # 235.8 KB
    hybrid = MemoryPlan(1000, 1000, 5000, micro_blockers=("dynamic-range (hybrid) ops",))
    assert limits.values(0.9, 100.0, 5.0, hybrid)["peak_ram_kb"] == UNRUNNABLE
    assert limits.values(0.9, 100.0, 5.0, None)["peak_ram_kb"] == UNRUNNABLE  # not planned: never called a fit
    assert Constraints().values(0.9, 100.0, 5.0, hybrid) == {}


def _shipped(label: str):
    from explorer import record
    from explorer.store.cache import Store

    store = Store(REPO / "cached_models")
    key = next(m["key"] for m in store.variants()[0] if m["label"] == label)
    return record.load(store, key, "any-host")


def test_a_levers_memory_line_sets_the_plan_beside_its_siblings_and_names_the_peak():
    from explorer.present import memory as words

    v, fp32, half = (_shipped(f"fashion-mnist-d2w32-fc128-{s}") for s in ("int8", "fp32", "ch0.5-int8"))
    [line] = words.reasons(v.spec, v.memory, {"int8": fp32.memory})
    assert line.works is True and "peak 31.1 KB against 111.2 KB (0.28×; activations 27.0 KB against 108.2 KB, 0.25×)" \
        in line.sentence and "one byte a value where float32 takes four" in line.sentence
    chan = {r.lever: r for r in words.reasons(half.spec, half.memory, {"channels": v.memory})}["channels"]
    # half the channels: about half the arena
    assert chan.works is True and half.memory.head_bytes / v.memory.head_bytes == pytest.approx(0.5, abs=0.01)
    assert "Peak RAM 31.1 KB: 27.0 KB of activations alive at the max-pooling (op 2 of 7), the largest conv1/Relu, " \
           "1×26×26×32 int8 = 21.6 KB" in words.peak_text(v.memory)
    fits, _ = words.fitting_boards(v.memory)
    assert [b.name for b in fits] == ["STM32F746", "nRF52840", "RP2040", "ESP32-S3", "STM32H743"]
    dynamic = _shipped("fashion-mnist-d2w32-fc128-dynamic")
    assert words.fitting_boards(dynamic.memory)[0] == []  # TFLite Micro cannot run it: it fits nothing
    [missing] = words.reasons(v.spec, v.memory, {"int8": None})
    assert missing.works is None and "not built" in missing.sentence


def test_the_agent_reports_what_an_interpreter_adds_to_a_fresh_process_and_says_why_when_it_cannot(monkeypatch):
    import numpy as np

    from explorer.measure import agent, pool, resident

    model = SHIPPED_MODELS[0].read_bytes()
    image = np.zeros((28, 28, 1), np.float32)
    added, why = resident.increase(lambda: pool.TimingPool(1), model, image)
    assert why == "" and added > memory.plan(model).head_bytes  # LiteRT's arena and XNNPACK's packed weights
    monkeypatch.setattr(agent, "resident_bytes", lambda: None)  # a system without /proc/self/statm
    assert "cannot be read" in agent.resident_increase(model, image)["error"]

    class Refusing:  # an agent that answers with an error
        def resident_increase(self, payload, threads):
            raise pool.AgentError("this system has no /proc/self/statm: its resident memory cannot be read")

        def close(self):
            pass

    assert resident.increase(Refusing, model, image) == (None, "this system has no /proc/self/statm: its resident "
                                                               "memory cannot be read")
    assert resident.increase(object, model, image)[0] is None  # Ray agents: no such request


def test_a_file_that_is_not_a_model_is_refused_with_a_reason():
    with pytest.raises(ValueError, match="not a .tflite model"):
        memory.plan(b"damaged!!!")


def test_a_plan_stored_by_an_older_planner_is_replanned_and_a_current_one_is_left_alone(tmp_path):
    import shutil

    from explorer.run import backfill
    from explorer.store.cache import Store

    key = "10e6f4053f13d3e4"
    shutil.copytree(REPO / "cached_models" / "variants" / key, tmp_path / "variants" / key)
    store = Store(tmp_path)
    assert not backfill.add_memory(store, key)  # the shipped plans are the planner's own
    store.amend_meta("variants", key, lambda m: {**m, "metrics": {**m["metrics"], "memory": {
        **m["metrics"]["memory"], "tail_bytes": m["metrics"]["memory"]["tail_bytes"] + 2}}})
    assert backfill.add_memory(store, key)
    stored = MemoryPlan.from_dict(store.verify("variants", key)["metrics"]["memory"])
    assert stored == memory.plan(store.file_path("variants", key, "model.tflite").read_bytes())
    assert not backfill.add_memory(store, key)
