"""Arithmetic on tensors, rewritten as the built-in layers that compute it, so that every lever takes it.

`x * 2.0 - 1.0`, `tf.nn.relu6(x)` or `keras.ops.hard_silu(x)` in a model are stored as op layers (tf-keras'
TFOpLambda, Keras 3's operations). tfmot cannot prune, cluster or quantize them (tensorflow/model-optimization
#1051) and a stripped copy cannot call them again; the built-in layer that computes the same function can
(`x * 2.0 - 1.0` is Rescaling(2) then Rescaling(1, -1), relu6 is ReLU(6.0)). Activations that tf-keras names
differently or lacks (Keras 3's hard_silu, and its hard_sigmoid, which is relu6(x + 3) / 6 where tf-keras'
is 0.2 x + 0.5) are rewritten the same way. An op with no such layer is refused by name. Pure: no TensorFlow.
"""

from __future__ import annotations

from explorer.models.graph_ir import GraphError, Node, Ref

# Activation names whose meaning is the same in both Kerases (tf-keras' own names; Keras 3's silu is swish).
SAME = ("linear", "relu", "sigmoid", "softmax", "tanh", "swish", "elu", "selu", "softplus", "softsign",
        "exponential", "mish")
RENAMED = {"silu": "swish"}
ACTIVATIONS = (*SAME, *RENAMED, "relu6", "hard_sigmoid", "hard_silu", "hard_swish")


def _layer(name: str, cls: str, inputs: tuple, **config) -> Node:
    return Node(name, cls, config, inputs)


def _hard_sigmoid(name: str, x: Ref) -> Node:
    """relu6(x + 3) / 6 = min(max(x / 6 + 1/2, 0), 1), Keras 3's hard_sigmoid and MobileNetV3's."""
    return _layer(f"{name}_scale", "Rescaling", (x,), scale=1 / 6, offset=0.5)


def activation(name: str, fn: str, x: Ref, keras3: bool) -> list[Node]:
    """The layers computing activation `fn` of tensor x, the last named `name`."""
    fn = RENAMED.get(fn, fn)
    if fn in SAME or (fn == "hard_sigmoid" and not keras3):
        return [_layer(name, "Activation", (x,), activation=fn)]
    if fn == "relu6":
        return [_layer(name, "ReLU", (x,), max_value=6.0)]
    if fn == "hard_sigmoid":
        pre = _hard_sigmoid(name, x)
        return [pre, _layer(name, "ReLU", (Ref(pre.name),), max_value=1.0)]
    if fn in ("hard_silu", "hard_swish"):
        pre = _hard_sigmoid(name, x)
        gate = _layer(f"{name}_gate", "ReLU", (Ref(pre.name),), max_value=1.0)
        return [pre, gate, _layer(name, "Multiply", (x, Ref(gate.name)))]
    raise GraphError(f"layer {name!r} uses the activation {fn!r}, which tf-keras cannot compute the same way; use "
                     f"one of {', '.join(ACTIVATIONS)}")


def _scalar(name: str, op: str, x: Ref, c: float, const_first: bool) -> Node:
    scale, offset = {"add": (1.0, c), "multiply": (c, 0.0),
                     "subtract": (-1.0, c) if const_first else (1.0, -c)}.get(op, (None, None))
    if op == "divide" and not const_first and c != 0:
        scale, offset = 1.0 / c, 0.0
    if scale is None:
        raise GraphError(f"layer {name!r} computes {c:g} {op} a tensor; only a tensor {op} a constant has a built-in "
                         "layer: write it with keras.layers")
    return _layer(name, "Rescaling", (x,), scale=scale, offset=offset)


OPS = {"add": "add", "__operators__.add": "add", "subtract": "subtract", "sub": "subtract", "multiply": "multiply",
       "mul": "multiply", "divide": "divide", "true_divide": "divide", "truediv": "divide", "concat": "concatenate",
       "concatenate": "concatenate", "reduce_mean": "mean", "mean": "mean", "clip_by_value": "clip", "clip": "clip"}
MERGES = {"add": "Add", "subtract": "Subtract", "multiply": "Multiply"}


def _arguments(node: Node) -> tuple[list[Ref], list[float], bool]:
    """The op's tensors, its constants (positional, then y= / clip values as tf-keras names them), and whether a
    constant comes first (2.0 - x)."""
    call = node.config.get("call") or {}
    tensors = [a for a in node.inputs if isinstance(a, Ref)]
    consts = [a for a in node.inputs if not isinstance(a, Ref)]
    consts += [float(call[k]) for k in ("y", "clip_value_min", "clip_value_max")
               if isinstance(call.get(k), (int, float)) and not isinstance(call.get(k), bool)]
    first = bool(node.inputs) and not isinstance(node.inputs[0], Ref)
    return tensors, consts, first


def rewrite(node: Node, keras3: bool) -> list[Node]:
    """The built-in layers computing an op node, the last keeping its name (what later layers read)."""
    fn = str(node.config.get("op", ""))
    op = OPS.get(fn, fn)
    tensors, consts, first = _arguments(node)
    call = node.config.get("call") or {}
    if not tensors:
        raise GraphError(f"layer {node.name!r} ({fn}) takes no tensor")
    if op in MERGES and len(tensors) == 2 and not consts:
        return [_layer(node.name, MERGES[op], tuple(tensors))]
    if op in ("add", "subtract", "multiply", "divide") and len(tensors) == 1 and len(consts) == 1:
        return [_scalar(node.name, op, tensors[0], consts[0], first)]
    if op == "concatenate":
        return [_layer(node.name, "Concatenate", tuple(tensors), axis=int(call.get("axis", -1)))]
    if op == "mean" and sorted(int(a) for a in (call.get("axis") or [])) == [1, 2]:
        return [_layer(node.name, "GlobalAveragePooling2D", (tensors[0],), keepdims=bool(call.get("keepdims")))]
    if op == "clip" and len(consts) == 2 and min(consts) == 0:
        return [_layer(node.name, "ReLU", (tensors[0],), max_value=max(consts))]
    shape = call.get("shape") or call.get("newshape")
    if op == "reshape" and isinstance(shape, list) and shape and shape[0] in (-1, None):
        return [_layer(node.name, "Reshape", (tensors[0],), target_shape=[int(d) for d in shape[1:]])]
    if len(tensors) == 1 and not consts and fn in ACTIVATIONS:
        return activation(node.name, fn, tensors[0], keras3)
    raise GraphError(f"layer {node.name!r} computes {fn} on tensors, which has no built-in Keras layer the levers "
                     "take: write it with keras.layers (Rescaling, Add, Multiply, ReLU, Activation, Reshape, "
                     "Concatenate, GlobalAveragePooling2D)")
