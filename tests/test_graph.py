"""A model's graph as data: both Kerases' configs read into one flat graph, op layers rewritten, augmentation set
aside. Pure: no TensorFlow (the end-to-end checks against Keras itself are in test_own_models.py)."""

import numpy as np
import pytest

from explorer.models import graph_ir, graph_rewrite, op_layers
from explorer.models.graph_ir import GraphError, Ref


def tensor(layer: str, index: int = 0) -> dict:
    return {"class_name": "__keras_tensor__", "config": {"shape": [None, 8], "keras_history": [layer, 0, index]}}


def k3(cls: str, name: str, *args, module: str = "keras.layers", kwargs=None, **config) -> dict:
    """A layer entry as Keras 3 writes it in config.json."""
    policy = {"module": "keras", "class_name": "DTypePolicy", "config": {"name": "float32"}, "registered_name": None}
    return {"module": module, "class_name": cls, "registered_name": None, "name": name,
            "config": {"name": name, "dtype": policy, **config},
            "inbound_nodes": [{"args": list(args), "kwargs": kwargs or {}}] if args else []}


def k3_model(cls: str, name: str, layers: list, inputs=None, outputs=None, *args) -> dict:
    cfg = {"name": name, "layers": layers}
    if cls == "Functional":
        cfg |= {"input_layers": inputs, "output_layers": outputs}
    return {"module": "keras.src.models.functional", "class_name": cls, "name": name, "config": cfg,
            "inbound_nodes": [{"args": list(args), "kwargs": {}}] if args else []}


ACCEPTS = {"InputLayer": {"batch_input_shape", "dtype", "sparse", "ragged", "name"},
           "Conv2D": {"filters", "kernel_size", "activation", "padding", "data_format", "kernel_initializer", "name",
                      "dtype"},
           "Dense": {"units", "activation", "name", "dtype", "kernel_initializer"},
           "BatchNormalization": {"momentum", "name", "dtype"}, "Rescaling": {"scale", "offset", "name", "dtype"},
           "RandomFlip": {"mode", "seed", "name", "dtype"}, "Flatten": {"name", "dtype"}}


def accepts(cls):
    found = ACCEPTS.get(cls)
    return None if found is None else frozenset(found)


def transfer_learning() -> dict:
    """Keras 3's transfer-learning shape: Sequential[Input, RandomFlip, Rescaling, backbone(Functional), Dense],
    the backbone computing relu6(conv(x) * 2 - 1) with ops and holding a batch norm."""
    backbone = k3_model("Functional", "backbone", [
        k3("InputLayer", "inner_in", batch_shape=[None, 8, 8, 3]),
        k3("Conv2D", "conv2d_7", tensor("inner_in"), filters=4, kernel_size=[3, 3], data_format="channels_last",
           kernel_initializer={"module": "keras.initializers", "class_name": "GlorotUniform",
                               "config": {"seed": None, "input_axes": None}, "registered_name": None}),
        k3("Multiply", "multiply", tensor("conv2d_7"), 2.0, module="keras.src.ops.numpy"),
        k3("Subtract", "subtract", tensor("multiply"), 1.0, module="keras.src.ops.numpy"),
        k3("BatchNormalization", "bn", tensor("subtract"), momentum=0.999),
        k3("Relu6", "relu6", tensor("bn"), module="keras.src.ops.nn"),
        k3("Conv2D", "conv2d_8", tensor("relu6"), filters=4, kernel_size=[1, 1], activation="hard_silu"),
    ], [["inner_in", 0, 0]], [["conv2d_8", 0, 0]], tensor("rescaling"))
    return k3_model("Sequential", "sequential", [
        k3("InputLayer", "image", batch_shape=[None, 8, 8, 3], optional=False),
        k3("RandomFlip", "random_flip", mode="horizontal", seed=None, data_format="channels_last"),
        k3("Rescaling", "rescaling", scale=1 / 255, offset=0.0),
        backbone,
        k3("Flatten", "flatten"),
        k3("Dense", "dense", units=10, activation="softmax"),
    ])


def test_a_keras3_sequential_holding_a_functional_backbone_reads_as_one_flat_graph_with_its_weight_paths():
    g = graph_ir.parse(transfer_learning(), keras3=True)
    names = [n.name for n in g.nodes]
    assert names == ["image", "random_flip", "rescaling", "backbone/conv2d_7", "backbone/multiply", "backbone/subtract",
                     "backbone/bn", "backbone/relu6", "backbone/conv2d_8", "flatten", "dense"]
    assert g.nested == ("backbone",) and g.outputs == (Ref("dense"),)
    assert g.node("backbone/conv2d_7").inputs == (Ref("rescaling"),)  # the backbone's input is what fed it
    assert g.node("flatten").inputs == (Ref("backbone/conv2d_8"),)  # the backbone's output is its last layer's
    assert g.node("backbone/multiply").inputs == (Ref("backbone/conv2d_7"), 2.0)
    # weights live where Keras saved them: by class and order, not by the layer's name
    assert g.node("backbone/conv2d_7").weights == "layers/functional/layers/conv2d"
    assert g.node("backbone/conv2d_8").weights == "layers/functional/layers/conv2d_1"
    assert g.node("dense").weights == "layers/dense" and g.node("backbone/multiply").weights is None


def test_the_levers_graph_rewrites_ops_and_activations_sets_augmentation_aside_and_says_so():
    ready = graph_rewrite.for_levers(graph_ir.parse(transfer_learning(), keras3=True), accepts)
    g = ready.graph
    by = {n.name: n for n in g.nodes}
    assert "random_flip" not in by and by["rescaling"].inputs == (Ref("image"),)
    assert ready.augmentation == ({"class_name": "RandomFlip",
                                   "config": {"name": "random_flip", "mode": "horizontal", "seed": None,
                                              "dtype": "float32"}},)
    assert (by["backbone/multiply"].cls, by["backbone/multiply"].config) == ("Rescaling", {"scale": 2.0, "offset": 0.0})
    assert by["backbone/subtract"].config == {"scale": 1.0, "offset": -1.0}
    assert (by["backbone/relu6"].cls, by["backbone/relu6"].config) == ("ReLU", {"max_value": 6.0})
    assert by["backbone/conv2d_8_linear"].config["activation"] == "linear"  # hard_silu split off the convolution
    assert by["backbone/conv2d_8"].cls == "Multiply"
    assert by["backbone/bn"].config["momentum"] == graph_rewrite.BN_MOMENTUM
    assert by["image"].config["batch_input_shape"] == [None, 8, 8, 3] and "optional" not in by["image"].config
    assert by["backbone/conv2d_7"].config["kernel_initializer"] == {"class_name": "GlorotUniform", "config": {}}
    assert by["backbone/conv2d_7"].config["dtype"] == "float32"
    assert ready.scale == "0-255"
    assert by["dense"].config["activation"] == "linear" and g.outputs == (Ref("dense_softmax"),)  # ends at the logits
    assert (by["dense_softmax"].cls, by["dense_softmax"].config["activation"], by["dense_softmax"].inputs) == (
        "Activation", "softmax", (Ref("dense"),)) and any("dense's softmax" in n for n in ready.notes)
    said = " ".join(ready.notes)
    assert "Keras 3" in said and "random_flip" in said and "backbone" in said and "0.999 set to 0.9" in said
    emitted = graph_ir.emit(g)["config"]
    assert emitted["output_layers"] == [["dense_softmax", 0, 0]] and not any(l["class_name"] == "op" for l in emitted["layers"])


def _run(nodes, x):
    """A tiny numpy interpreter of the layers op_layers emits, to check they compute the op."""
    values = {"x": x}
    for n in nodes:
        a = [values[r.layer] for r in n.inputs]
        if n.cls == "Rescaling":
            values[n.name] = a[0] * n.config["scale"] + n.config["offset"]
        elif n.cls == "ReLU":
            values[n.name] = np.clip(a[0], 0, n.config.get("max_value", np.inf))
        elif n.cls == "Multiply":
            values[n.name] = a[0] * a[1]
        else:
            raise AssertionError(n.cls)
    return values[nodes[-1].name]


@pytest.mark.parametrize("fn, expected", [
    ("hard_silu", lambda x: x * np.clip(x + 3, 0, 6) / 6),
    ("hard_sigmoid", lambda x: np.clip(x + 3, 0, 6) / 6),  # Keras 3's, not tf-keras' 0.2 x + 0.5
    ("relu6", lambda x: np.clip(x, 0, 6)),
])
def test_activations_tf_keras_lacks_become_layers_that_compute_them(fn, expected):
    x = np.linspace(-8, 8, 161)
    nodes = op_layers.activation("act", fn, Ref("x"), keras3=True)
    assert nodes[-1].name == "act" and np.allclose(_run(nodes, x), expected(x))


@pytest.mark.parametrize("args, op, expected", [
    ((Ref("x"), 2.0), "multiply", lambda x: 2 * x), ((Ref("x"), 1.0), "subtract", lambda x: x - 1),
    ((1.0, Ref("x")), "subtract", lambda x: 1 - x), ((Ref("x"), 4.0), "true_divide", lambda x: x / 4),
    ((3.0, Ref("x")), "add", lambda x: x + 3),
])
def test_arithmetic_with_a_constant_becomes_a_rescaling(args, op, expected):
    x = np.linspace(-3, 3, 13)
    nodes = op_layers.rewrite(graph_ir.Node("op1", "op", {"op": op, "call": {}}, args), keras3=True)
    assert np.allclose(_run(nodes, x), expected(x))


def test_tf_keras_op_layers_read_their_constants_and_tensors_from_keyword_arguments():
    legacy = {"class_name": "Functional", "config": {"name": "m", "layers": [
        {"class_name": "InputLayer", "name": "in", "config": {"name": "in", "batch_input_shape": [None, 4]},
         "inbound_nodes": []},
        {"class_name": "TFOpLambda", "name": "tf.math.multiply", "config": {"name": "tf.math.multiply",
                                                                            "function": "math.multiply"},
         "inbound_nodes": [["in", 0, 0, {"y": 0.5, "name": None}]]},
        {"class_name": "TFOpLambda", "name": "tf.math.multiply_1", "config": {"function": "math.multiply"},
         "inbound_nodes": [["in", 0, 0, {"y": ["tf.math.multiply", 0, 0], "name": None}]]},
        {"class_name": "TFOpLambda", "name": "tf.math.reduce_mean", "config": {"function": "math.reduce_mean"},
         "inbound_nodes": [["tf.math.multiply_1", 0, 0, {"axis": [1, 2]}]]},
    ], "input_layers": [["in", 0, 0]], "output_layers": [["tf.math.reduce_mean", 0, 0]]}}
    g = graph_rewrite.for_levers(graph_ir.parse(legacy, keras3=False), accepts).graph
    by = {n.name: n for n in g.nodes}
    assert by["tf.math.multiply"].config == {"scale": 0.5, "offset": 0.0}
    assert (by["tf.math.multiply_1"].cls, by["tf.math.multiply_1"].inputs) == (
        "Multiply", (Ref("in"), Ref("tf.math.multiply")))
    assert by["tf.math.reduce_mean"].cls == "GlobalAveragePooling2D"


@pytest.mark.parametrize("change, said", [
    (lambda c: c["config"]["layers"][1].update(class_name="RandomCrop"), "'random_flip' (RandomCrop) changes the image size"),
    (lambda c: c["config"]["layers"][5]["config"].update(lora_rank=4), "'dense' (Dense) sets lora_rank=4"),
    (lambda c: c["config"]["layers"][5].update(class_name="EinsumDense"), "EinsumDense, a Keras 3 layer with no tf-keras"),
    (lambda c: c["config"]["layers"][3]["config"]["layers"][2].update(class_name="Cumsum"), "'backbone/multiply' computes cumsum"),
    (lambda c: c["config"]["layers"][3]["config"]["layers"][6]["config"].update(activation="gelu"), "activation 'gelu'"),
    (lambda c: c["config"]["layers"][3]["config"]["layers"][1].update(inbound_nodes=[{"args": [tensor("inner_in")]}] * 2),
     "'backbone/conv2d_7' is called 2 times"),
    (lambda c: c["config"]["layers"][4].pop("name") and c["config"]["layers"][4]["config"].pop("name"), "has no name"),
    (lambda c: c["config"]["layers"][3]["config"].update(input_layers="x"), "not named as layers"),
])
def test_what_cannot_be_translated_is_refused_by_name(change, said):
    config = transfer_learning()
    change(config)
    with pytest.raises(GraphError, match=said.replace("(", r"\(").replace(")", r"\)")):
        graph_rewrite.for_levers(graph_ir.parse(config, keras3=True), accepts)
