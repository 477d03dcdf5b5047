"""The passes that turn a user's graph into one every lever takes, each saying what it did.

    >>> ready = graph_rewrite.for_levers(graph_ir.parse(config, keras3=True), accepts)
    >>> ready.graph, ready.augmentation, ready.scale, ready.notes

1. Keras 3's dialect to tf-keras' (dtype policies, `batch_shape`, serialized objects; keys tf-keras lacks are
   dropped only where their value is what tf-keras does anyway, else the layer is refused by name);
2. arithmetic op layers and activations tf-keras lacks to built-in layers (explorer.models.op_layers);
3. augmentation layers set aside: they act in training only, so they are left out of what is quantized and
   converted, and handed to training, which applies them to the training batches (explorer.models.train);
4. batch-norm momentum at most 0.9, so that brief training settles the moving statistics (keras.applications
   keeps 0.999, which needs thousands of steps: 23 epochs on a 96 px upload scored at chance);
5. the input range a leading Rescaling implies (1/255 or 1/127.5 - 1: the model takes 0-255).
Pure: `accepts(class name)` (the keyword arguments a tf-keras layer takes) is injected by the caller.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Callable

from explorer.models import op_layers
from explorer.models.graph_ir import Graph, GraphError, Node, Ref

AUGMENTATION = ("RandomFlip", "RandomRotation", "RandomZoom", "RandomTranslation", "RandomContrast",
                "RandomBrightness")  # the tf-keras ones, which training can apply
KERAS3_ONLY_AUGMENTATION = ("RandomGrayscale", "RandomHue", "RandomSaturation", "RandomColorJitter", "RandomErasing",
                            "RandomSharpness", "RandomShear", "RandomPerspective", "RandomPosterization",
                            "RandomInvert", "Solarization", "AugMix", "RandAugment", "CutMix", "MixUp",
                            "RandomGaussianBlur", "RandomElasticTransform", "Equalization", "AutoContrast")
RESIZING = ("RandomCrop", "RandomHeight", "RandomWidth")  # change the image's size between training and inference
# Keys Keras 3 writes that tf-keras' layer does not take, dropped when their value is what tf-keras does anyway.
HARMLESS = {"data_format": ("channels_last",), "optional": (False,), "quantization_config": (None,),
            "lora_rank": (None,), "lora_alpha": (None,), "synchronized": (False,), "input_axes": (None,),
            "output_axes": (None,), "gradient_checkpointing": (False,)}
BN_MOMENTUM = 0.9
Accepts = Callable[[str], "frozenset[str] | None"]  # a tf-keras layer's keyword arguments; None: no such layer


@dataclass(frozen=True)
class Ready:
    graph: Graph
    augmentation: tuple[dict, ...]  # tf-keras layer configs ({"class_name", "config"}) applied in training
    scale: str | None  # the input range a leading Rescaling implies ("0-255"), None when it implies none
    notes: tuple[str, ...]


def _rewire(nodes: list[Node], outputs: tuple[Ref, ...], mapping: dict[Ref, Ref]) -> tuple[list[Node], tuple]:
    def fix(r):
        while isinstance(r, Ref) and r in mapping:
            r = mapping[r]
        return r
    return ([dataclasses.replace(n, inputs=tuple(fix(a) for a in n.inputs)) for n in nodes],
            tuple(fix(r) for r in outputs))


def _serialized(key: str, value):
    """A Keras 3 serialized object (module, class_name, config, registered_name) as tf-keras reads it. An
    initializer only matters for a fresh build: the weights come from the file, so its class is enough."""
    if key == "dtype":
        return (value.get("config") or {}).get("name", "float32")
    if key.endswith("_initializer"):
        return {"class_name": value.get("class_name"), "config": {}}
    return {"class_name": value.get("class_name"), "config": value.get("config") or {}}


def _dialect(node: Node, accepts: Accepts) -> Node:
    """A Keras 3 layer's config as tf-keras' layer of the same class takes it."""
    cfg = {k: _serialized(k, v) if isinstance(v, dict) and "class_name" in v else v for k, v in node.config.items()}
    if node.cls == "InputLayer":
        cfg["batch_input_shape"] = cfg.pop("batch_shape", cfg.get("batch_input_shape"))
    takes = accepts(node.cls)
    if takes is None:
        raise GraphError(f"layer {node.name!r} is a {node.cls}, a Keras 3 layer with no tf-keras counterpart: rebuild "
                         "the model with layers both Kerases have (keras.layers in TensorFlow 2.15)")
    for key in [k for k in cfg if k not in takes and k != "name"]:
        if cfg[key] in HARMLESS.get(key, ()) or (node.cls in AUGMENTATION and key == "value_range"):
            del cfg[key]
        else:
            raise GraphError(f"layer {node.name!r} ({node.cls}) sets {key}={cfg[key]!r}, which tf-keras' {node.cls} "
                             "does not take: save the model without it")
    return dataclasses.replace(node, config=cfg)


def _activations(node: Node, keras3: bool) -> list[Node]:
    """A layer whose activation tf-keras lacks or computes otherwise, as the layer (linear) then its activation."""
    fn = node.config.get("activation")
    if not isinstance(fn, str) or fn in op_layers.SAME or (fn == "hard_sigmoid" and not keras3):
        return [node]
    if fn in op_layers.RENAMED:
        return [dataclasses.replace(node, config={**node.config, "activation": op_layers.RENAMED[fn]})]
    inner = dataclasses.replace(node, name=f"{node.name}_linear", config={**node.config, "activation": "linear"})
    return [inner, *op_layers.activation(node.name, fn, Ref(inner.name), keras3)]


def _builtin(graph: Graph, accepts: Accepts) -> tuple[list[Node], list[str]]:
    nodes, rewritten = [], []
    for node in graph.nodes:
        if node.cls == "op":
            rewritten.append(f"{node.name} ({node.config.get('op')})")
            nodes.extend(op_layers.rewrite(node, graph.keras3))
            continue
        if node.cls in RESIZING:
            raise GraphError(f"layer {node.name!r} ({node.cls}) changes the image size between training and inference: "
                             "crop or resize the images before the model, and remove it")
        if graph.keras3 and node.cls not in KERAS3_ONLY_AUGMENTATION:  # those are set aside below
            node = _dialect(node, accepts)
        nodes.extend(_activations(node, graph.keras3))
    notes = [f"{len(rewritten)} arithmetic op layer(s) rewritten as built-in layers: {', '.join(rewritten[:4])}"
             + (" …" if len(rewritten) > 4 else "")] if rewritten else []
    return nodes, notes


def _augmentation(nodes: list[Node], outputs: tuple) -> tuple[list[Node], tuple, tuple[dict, ...], list[str]]:
    """Set augmentation layers aside: each one's consumers read its input instead."""
    kept, aside, mapping, notes = [], [], {}, []
    for node in nodes:
        if node.cls in AUGMENTATION or node.cls in KERAS3_ONLY_AUGMENTATION:
            mapping[Ref(node.name)] = node.inputs[0]
            if node.cls in AUGMENTATION:
                aside.append({"class_name": node.cls, "config": {**node.config, "name": node.name}})
            else:
                notes.append(f"{node.name} ({node.cls}) left out: tf-keras has no such layer, so it does not augment "
                             "while the levers fine-tune")
            continue
        kept.append(node)
    kept, outputs = _rewire(kept, outputs, mapping)
    if aside:
        notes.insert(0, f"augmentation set aside from what is converted, applied while training: "
                        f"{', '.join(a['config']['name'] for a in aside)}")
    return kept, outputs, tuple(aside), notes


def _momentum(nodes: list[Node]) -> tuple[list[Node], list[str]]:
    slow = [n for n in nodes if n.cls == "BatchNormalization" and float(n.config.get("momentum", 0.99)) > BN_MOMENTUM]
    if not slow:
        return nodes, []
    was = sorted({float(n.config["momentum"]) for n in slow})
    nodes = [dataclasses.replace(n, config={**n.config, "momentum": BN_MOMENTUM}) if n in slow else n for n in nodes]
    return nodes, [f"batch-norm momentum {', '.join(f'{m:g}' for m in was)} set to {BN_MOMENTUM} on {len(slow)} "
                   "layer(s), so that brief training settles their statistics"]


def _softmax_head(nodes: list[Node], outputs: tuple) -> tuple[list[Node], tuple, list[str]]:
    """A head that ends in a layer's softmax activation (Dense(n, activation="softmax"), as the Keras guides write
    it) as the layer (linear) then a softmax layer of its own: full-integer conversions then end at the logits (an
    int8 softmax ties close classes), and float ones compute the same."""
    if len(outputs) != 1:
        return nodes, outputs, []
    last = next(n for n in nodes if n.name == outputs[0].layer)
    if last.cls in ("Activation", "Softmax") or last.config.get("activation") != "softmax":
        return nodes, outputs, []
    linear = dataclasses.replace(last, config={**last.config, "activation": "linear"})
    head = Node(f"{last.name}_softmax", "Activation", {"name": f"{last.name}_softmax", "activation": "softmax",
                                                        "trainable": True, "dtype": "float32"}, (outputs[0],))
    return ([linear if n is last else n for n in nodes] + [head], (Ref(head.name),),
            [f"{last.name}'s softmax made a layer of its own, so int8 conversions end at the logits"])


def implied_scale(graph: Graph) -> str | None:
    """"0-255" when the first layer after the input rescales 0-255 images to 0-1 or -1-1, else None."""
    first = [n for n in graph.nodes if n.inputs and n.inputs[0] in graph.inputs]
    if len(first) != 1 or first[0].cls != "Rescaling":
        return None
    scale, offset = float(first[0].config.get("scale", 1)), float(first[0].config.get("offset", 0))
    if abs(scale * 255 - 1) < 1e-3 and offset == 0 or abs(scale * 127.5 - 1) < 1e-3 and offset == -1:
        return "0-255"
    return None


def for_levers(graph: Graph, accepts: Accepts) -> Ready:
    """The graph every lever takes, with what was set aside and what was done, in words."""
    nodes, notes = _builtin(graph, accepts)
    if graph.keras3:
        notes.insert(0, "translated from Keras 3 to tf-keras, layer by layer")
    if graph.nested:
        notes.append(f"model(s) inside the model inlined into one graph: {', '.join(graph.nested)}")
    nodes, outputs, aside, more = _augmentation(nodes, graph.outputs)
    nodes, momentum = _momentum(nodes)
    nodes, outputs, head = _softmax_head(nodes, outputs)
    flat = dataclasses.replace(graph, nodes=tuple(nodes), outputs=outputs)
    return Ready(flat, aside, implied_scale(flat), tuple(notes + more + momentum + head))
