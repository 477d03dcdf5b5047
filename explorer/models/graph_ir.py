"""A Keras model's graph as data: one flat list of layers, read from a .keras config of either Keras.

    >>> graph = graph_ir.parse(json.loads(zf.read("config.json")))
    >>> config = graph_ir.emit(graph_rewrite.for_levers(graph).graph)    # a tf-keras Functional config

Keras 3 (the `keras` package) and tf-keras write the same graph in two dialects (how a node names its inputs,
dtype policies, `batch_shape`), and either may hold a model inside a model (a backbone in a Sequential). The
levers need one flat tf-keras graph. Parsing reads both dialects into one record, inlining every nested model
(its layers named `backbone/layer`, its input wired to what fed it), and notes for each layer where its
weights are in the file's `model.weights.h5` (both Kerases name that path by class and order, not by the
layer's name). Nothing here imports TensorFlow: it is arithmetic on dictionaries, and nothing is executed.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

MODELS = ("Functional", "Sequential", "Model")


class GraphError(ValueError):
    """The config is not a graph the explorer can read; the message names the layer and what to change."""


@dataclass(frozen=True)
class Ref:
    """A tensor: the `index`th output of the layer named `layer`."""

    layer: str
    index: int = 0


@dataclass(frozen=True)
class Node:
    """One layer called once. cls is a tf-keras layer class, or "op" for arithmetic on tensors (config["op"] names
    it) still to be rewritten; inputs are tensors (Ref) and, for an op, constants in call order."""

    name: str
    cls: str
    config: dict = field(hash=False)
    inputs: tuple = ()
    weights: str | None = None  # the path of its variables in model.weights.h5 ("layers/functional/layers/conv2d")


@dataclass(frozen=True)
class Graph:
    name: str
    nodes: tuple[Node, ...]
    inputs: tuple[Ref, ...]
    outputs: tuple[Ref, ...]
    keras3: bool = False
    nested: tuple[str, ...] = ()  # the models inlined, by their names
    notes: tuple[str, ...] = ()

    def node(self, name: str) -> Node:
        return next(n for n in self.nodes if n.name == name)


def snake(name: str) -> str:
    """The class-derived name both Kerases give a layer's weights in model.weights.h5."""
    name = re.sub(r"\W+", "", name)
    name = re.sub("(.)([A-Z][a-z]+)", r"\1_\2", name)
    return re.sub("([a-z])([A-Z])", r"\1_\2", name).lower()


def _is_op(entry: dict) -> bool:
    """A Keras 3 operation (keras.ops arithmetic), which is not a Layer and holds no weights; tf-keras's TFOpLambda."""
    return str(entry.get("module") or "").startswith("keras.src.ops") or entry.get("class_name") in (
        "TFOpLambda", "SlicingOpLambda")


class _Reader:
    """Reads one model's config into nodes, inlining nested models; `alias` maps a nested model's outputs to the
    tensors of its inlined last layers."""

    def __init__(self):
        self.nodes: list[Node] = []
        self.alias: dict[tuple[str, int], Ref] = {}
        self.nested: list[str] = []

    def ref(self, prefix: str, layer: str, index: int) -> Ref:
        key = (prefix + layer, index)
        return self.alias.get(key, Ref(*key))

    def model(self, entry: dict, prefix: str, path: str, feed: tuple | None) -> tuple[tuple[Ref, ...], tuple[Ref, ...]]:
        """Read a Functional or Sequential entry; feed: the tensors its inputs take (None: the graph's own input)."""
        cfg = entry.get("config")
        if not isinstance(cfg, dict) or not isinstance(cfg.get("layers"), list):
            raise GraphError(f"model {prefix or entry.get('class_name')!r} has no list of layers in its config")
        if entry.get("class_name") == "Sequential":
            return self._sequential(cfg, prefix, path, feed)
        return self._functional(cfg, prefix, path, feed)

    def _sequential(self, cfg: dict, prefix: str, path: str, feed) -> tuple:
        layers, used = list(cfg["layers"]), {}
        if not layers:
            raise GraphError(f"the Sequential model {cfg.get('name')!r} has no layers")
        first = layers[0]
        if first.get("class_name") != "InputLayer":
            shape = _config(first).get("batch_input_shape") or _config(first).get("batch_shape") or cfg.get(
                "build_input_shape")
            layers.insert(0, {"class_name": "InputLayer", "config": {"name": "input", "batch_shape": shape}})
        entries = []
        for i, layer in enumerate(layers):
            if i:
                prev = _name(layers[i - 1])
                layer = {**layer, "inbound_nodes": [[[prev, 0, 0, {}]]]}
            entries.append(layer)
        return self._functional({"layers": entries, "input_layers": [[_name(layers[0]), 0, 0]],
                                 "output_layers": [[_name(layers[-1]), 0, 0]]}, prefix, path, feed, used)

    def _functional(self, cfg: dict, prefix: str, path: str, feed, used: dict | None = None) -> tuple:
        used = {} if used is None else used
        inputs = [Ref(prefix + r[0], r[2]) for r in _refs(cfg.get("input_layers"))]
        if feed is not None and len(feed) != len(inputs):
            raise GraphError(f"model {prefix[:-1]!r} takes {len(inputs)} inputs and is given {len(feed)}")
        for entry in cfg["layers"]:
            self._layer(entry, prefix, path, used, inputs, feed)
        outputs = tuple(self.ref(prefix, r[0], r[2]) for r in _refs(cfg.get("output_layers")))
        return tuple(inputs if feed is None else feed), outputs

    def _layer(self, entry: dict, prefix: str, path: str, used: dict, inputs: list, feed) -> None:
        if not isinstance(entry, dict) or not isinstance(entry.get("class_name"), str):
            raise GraphError(f"a layer entry in {prefix[:-1] or 'the model'} is not a layer: {str(entry)[:60]}")
        name, cls = _name(entry), entry["class_name"]
        weights = None if _is_op(entry) else f"{path}/layers/{_unique(snake(cls), used)}".lstrip("/")
        if cls == "InputLayer":
            if feed is not None:  # a nested model's input: its tensor is what fed the model
                self.alias[(prefix + name, 0)] = feed[[r.layer for r in inputs].index(prefix + name)]
                return
            self.nodes.append(Node(prefix + name, cls, _config(entry), (), None))
            return
        calls = _calls(entry)
        if len(calls) != 1:
            raise GraphError(f"layer {prefix + name!r} is called {len(calls)} times; the explorer takes layers "
                             "called once (a shared layer: give each use a layer of its own)")
        args = tuple(self.ref(prefix, a.layer, a.index) if isinstance(a, Ref) else a for a in calls[0][0])
        if cls in MODELS:
            self.nested.append(prefix + name)
            _, outs = self.model(entry, prefix + name + "/", weights, tuple(a for a in args if isinstance(a, Ref)))
            for i, out in enumerate(outs):
                self.alias[(prefix + name, i)] = out
            return
        if _is_op(entry):
            self.nodes.append(Node(prefix + name, "op", {"op": _op_name(entry), "call": calls[0][1]}, args))
            return
        self.nodes.append(Node(prefix + name, cls, _config(entry), tuple(a for a in args if isinstance(a, Ref)), weights))


def _op_name(entry: dict) -> str:
    """An op by one name whichever Keras wrote it: Keras 3's class (Multiply, Relu6) or a TFOpLambda's function
    (math.multiply, nn.relu6, __operators__.add), as snake case without its module."""
    if entry.get("class_name") in ("TFOpLambda", "SlicingOpLambda"):
        function = str(_config(entry).get("function", ""))
        return "getitem" if entry["class_name"] == "SlicingOpLambda" else function.split(".")[-1]
    return snake(entry["class_name"])


def _unique(name: str, used: dict) -> str:
    if name in used:
        used[name] += 1
        return f"{name}_{used[name]}"
    used[name] = 0
    return name


def _config(entry: dict) -> dict:
    cfg = entry.get("config")
    return cfg if isinstance(cfg, dict) else {}


def _name(entry: dict) -> str:
    name = entry.get("name") or _config(entry).get("name") if isinstance(entry, dict) else None
    if not isinstance(name, str) or not name:
        raise GraphError(f"a layer has no name in the config ({str(entry)[:60]})")
    return name


def _refs(value) -> list:
    """input_layers / output_layers: [name, node, tensor] or a list of them."""
    if isinstance(value, list) and len(value) == 3 and isinstance(value[0], str):
        return [value]
    if not isinstance(value, list) or not value or not all(isinstance(v, list) and len(v) == 3 for v in value):
        raise GraphError(f"the model's inputs or outputs are not named as layers: {str(value)[:60]}")
    return value


def _calls(entry: dict) -> list[tuple[list, dict]]:
    """Each call of a layer: its positional arguments in order (tensors as Ref, constants as they are) and its
    keyword arguments that are not tensors (an op's axis, a TFOpLambda's y=2.0)."""
    nodes = entry.get("inbound_nodes")
    if not isinstance(nodes, list):
        raise GraphError(f"layer {_name(entry)!r} has no inbound nodes in the config")
    return [_keras3_call(n) if isinstance(n, dict) else _legacy_call(n) for n in nodes]


def _tensor(value) -> Ref | None:
    if isinstance(value, dict) and value.get("class_name") == "__keras_tensor__":
        hist = value.get("config", {}).get("keras_history")
        if not (isinstance(hist, list) and len(hist) == 3 and isinstance(hist[0], str)):
            raise GraphError(f"a tensor in the config has no history: {str(value)[:60]}")
        return Ref(hist[0], int(hist[2]))
    return None


def _keras3_call(node: dict) -> tuple[list, dict]:
    """Keras 3: {"args": [...], "kwargs": {...}} where a tensor is {"class_name": "__keras_tensor__", ...}."""
    args: list = []

    def walk(value):
        ref = _tensor(value)
        if ref is not None:
            args.append(ref)
        elif isinstance(value, (list, tuple)):
            for v in value:
                walk(v)
        elif isinstance(value, (int, float)) and not isinstance(value, bool):
            args.append(float(value))
    walk(node.get("args", []))
    kwargs = {}
    for key, value in (node.get("kwargs") or {}).items():
        if isinstance(value, (list, dict)) and "__keras_tensor__" in str(value):
            walk(value)
        elif key not in ("training", "mask"):
            kwargs[key] = value
    return args, kwargs


def _legacy_call(node) -> tuple[list, dict]:
    """tf-keras: [name, node, tensor, kwargs] or a list of them; a TFOpLambda's constants are in kwargs (y=2.0)."""
    entries = [node] if node and isinstance(node[0], str) else node
    args: list = []
    kwargs: dict = {}
    for e in entries:
        if not (isinstance(e, list) and len(e) >= 3 and isinstance(e[0], str)):
            raise GraphError(f"an inbound node in the config is malformed: {str(e)[:60]}")
        args.append(Ref(e[0], int(e[2])))
        for key, value in (e[3] if len(e) > 3 and isinstance(e[3], dict) else {}).items():
            if isinstance(value, list) and len(value) == 3 and isinstance(value[0], str):
                args.append(Ref(value[0], int(value[2])))  # a tensor passed by keyword (x * y: y=[layer, 0, 0])
            elif key not in ("name", "training", "mask"):
                kwargs[key] = value
    return args, kwargs


def parse(config: dict, keras3: bool) -> Graph:
    """The flat graph of a Functional or Sequential config (a .keras file's config.json)."""
    if not isinstance(config, dict) or config.get("class_name") not in MODELS:
        raise GraphError("the config is not a Functional or Sequential model")
    reader = _Reader()
    try:
        inputs, outputs = reader.model(config, "", "", None)
    except (KeyError, IndexError, TypeError, ValueError) as exc:
        if isinstance(exc, GraphError):
            raise
        raise GraphError(f"the config does not describe a graph Keras could build ({type(exc).__name__}: {exc})") from exc
    name = _config(config).get("name") or "model"
    return Graph(str(name), tuple(reader.nodes), inputs, outputs, keras3, tuple(reader.nested))


def emit(graph: Graph) -> dict:
    """The graph as a tf-keras Functional config (every node a tf-keras layer called once)."""
    layers = []
    for n in graph.nodes:
        if n.cls == "op":
            raise GraphError(f"layer {n.name!r} ({n.config.get('op')}) was not rewritten to a layer")
        inbound = [] if n.cls == "InputLayer" else [[[r.layer, 0, r.index, {}] for r in n.inputs]]
        layers.append({"class_name": n.cls, "config": {**n.config, "name": n.name}, "name": n.name,
                       "inbound_nodes": inbound})
    return {"class_name": "Functional", "config": {
        "name": graph.name, "layers": layers,
        "input_layers": [[r.layer, 0, r.index] for r in graph.inputs],
        "output_layers": [[r.layer, 0, r.index] for r in graph.outputs]}}
