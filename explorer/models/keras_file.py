"""A .keras archive, written by Keras 3 or by tf-keras, as one flat tf-keras model every lever takes.

    >>> model, ready = keras_file.load(data)     # data: the archive's bytes, checked by explorer.models.imports

The archive's config is read as data and rewritten (explorer.models.graph_ir, graph_rewrite); tf-keras builds
the result from the built-in layer classes only; each layer's weights are then read from model.weights.h5 by
the path the writing Keras gave them and set by shape, every one accounted for. Neither Keras' loader nor any
code from the file runs, so Keras 3's `safe_mode` question does not arise: nothing but built-in layers exists.
"""

from __future__ import annotations

import functools
import inspect
import io
import json
import zipfile

import numpy as np

from explorer.models import graph_ir, graph_rewrite
from explorer.models.graph_ir import GraphError

# What every tf-keras layer takes besides its own arguments (tf_keras.layers.Layer's allowed keywords).
BASE_KWARGS = frozenset({"name", "trainable", "dtype", "dynamic", "input_dim", "input_shape", "batch_input_shape",
                         "batch_size", "weights", "activity_regularizer", "autocast", "implementation"})
REFUSED = ("Lambda", "TFOpLambda", "SlicingOpLambda")


def is_keras3(metadata: dict, config: dict) -> bool:
    """Keras 3 writes its version in metadata.json (tf-keras writes 2.x), and `module: keras.src...` in configs."""
    version = str(metadata.get("keras_version", "")) if isinstance(metadata, dict) else ""
    return version.startswith("3.") or (not version and '"keras.src.' in json.dumps(config))


@functools.lru_cache(maxsize=None)
def accepts(cls: str) -> frozenset[str] | None:
    """The keyword arguments tf-keras' layer `cls` takes; None when tf-keras has no such built-in layer."""
    from explorer.models.tf_runtime import keras

    layer = getattr(keras.layers, cls, None)
    if not isinstance(layer, type) or not issubclass(layer, keras.layers.Layer) or cls in REFUSED:
        return None
    names = set(BASE_KWARGS)
    for klass in layer.__mro__:
        if "__init__" in vars(klass):
            names |= set(inspect.signature(vars(klass)["__init__"]).parameters) - {"self", "kwargs", "args"}
    return frozenset(names)


def read(data: bytes) -> tuple[dict, bool, bytes]:
    """config.json, whether Keras 3 wrote it, and model.weights.h5's bytes."""
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        names = set(zf.namelist())
        config = json.loads(zf.read("config.json"))
        metadata = json.loads(zf.read("metadata.json")) if "metadata.json" in names else {}
        if "model.weights.h5" not in names:
            raise GraphError("the .keras archive has no model.weights.h5: save the model again with model.save()")
        return config, is_keras3(metadata, config), zf.read("model.weights.h5")


def _build(graph: graph_ir.Graph):
    from explorer.models.tf_runtime import keras

    for node in graph.nodes:
        if accepts(node.cls) is None:
            raise GraphError(f"layer {node.name!r} is a {node.cls}, which is not a built-in tf-keras layer")
    try:
        return keras.Model.from_config(graph_ir.emit(graph)["config"])
    except (TypeError, ValueError, KeyError, IndexError, AttributeError) as exc:
        raise GraphError(f"tf-keras cannot build the model's graph: {type(exc).__name__}: {str(exc)[:300]}") from exc


def _weights(model, graph: graph_ir.Graph, h5_bytes: bytes) -> None:
    """Set each layer's weights from the file, by its path there, checking count and shapes."""
    import h5py

    with h5py.File(io.BytesIO(h5_bytes), "r") as h5:
        for node in graph.nodes:
            layer = model.get_layer(node.name)
            want = layer.weights
            group = h5.get(f"{node.weights}/vars") if node.weights else None
            found = [np.asarray(group[str(i)]) for i in range(len(group))] if group is not None else []
            if not want and not found:
                continue
            shapes = [tuple(w.shape) for w in want], [a.shape for a in found]
            if shapes[0] != shapes[1]:
                raise GraphError(f"layer {node.name!r}: the file holds weights of shapes {shapes[1]}, the layer needs "
                                 f"{shapes[0]}")
            if not all(np.isfinite(a).all() for a in found if a.dtype.kind == "f"):
                raise GraphError(f"layer {node.name!r}: its weights in the file are not all finite (NaN or infinity)")
            layer.set_weights(found)


def load(data: bytes) -> tuple[object, graph_rewrite.Ready]:
    """The archive as a flat tf-keras model with its weights, and what was set aside and done to get it."""
    try:
        config, keras3, h5_bytes = read(data)
    except (KeyError, ValueError, zipfile.BadZipFile) as exc:
        raise GraphError(f"the .keras archive cannot be read: {exc}") from exc
    ready = graph_rewrite.for_levers(graph_ir.parse(config, keras3), accepts)
    model = _build(ready.graph)
    try:
        _weights(model, ready.graph, h5_bytes)
    except (OSError, KeyError, ValueError, TypeError) as exc:
        if isinstance(exc, GraphError):
            raise
        raise GraphError(f"the weights in the .keras archive cannot be read: {type(exc).__name__}: {exc}") from exc
    return model, ready
