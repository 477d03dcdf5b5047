"""The layer plan of a variant: shapes, parameters and multiply-accumulates, computed without TensorFlow.

The model builder turns this plan into Keras layers, so the plan is the single description of the
architecture; the app uses it to show parameters and MACs of a variant before anything is trained.
Blocks follow the reference CNN: 3x3 convolution ('valid', or 'same' to keep the borders) + ReLU (with batch normalization between them
when asked), then 2x2 max-pooling; filters double per block; then the head: Flatten (or global average
pooling) -> [Dropout] -> Dense(ReLU) -> [Dropout] -> Dense logits -> Softmax. Softmax is its own layer so
that a full-integer model can be converted without it (the predicted class is the logits' argmax).
Channel pruning (spec.channels) narrows every conv and the dense layer to the filters it keeps.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from explorer.spec import SpecError, VariantSpec

KERNEL = 3
POOL = 2


@dataclass(frozen=True)
class LayerPlan:
    name: str
    kind: str  # conv | separable | pool | flatten | dense
    output_shape: tuple[int, ...]
    params: int
    macs: int


def _conv_output(size: int, padding: str) -> int:
    """Spatial size after a 3x3 conv: 'valid' loses the border, 'same' pads it with zeros."""
    return size if padding == "same" else size - KERNEL + 1


def _block_output(size: int, padding: str) -> int:
    """Spatial size after one block: 3x3 conv, then 2x2 max-pool (floor)."""
    return _conv_output(size, padding) // POOL


def kept(n: int, fraction: float) -> int:
    """Filters (or units) left when channel pruning removes `fraction` of n: at least one."""
    return max(1, n - int(round(n * fraction)))


def max_depth(height: int, width: int, padding: str = "valid") -> int:
    """The deepest stack of blocks (at most 4) that keeps the feature map at least 1x1 (0 if none fits)."""
    depth, h, w = 0, height, width
    while min(_block_output(h, padding), _block_output(w, padding)) >= 1 and depth < 4:
        h, w, depth = _block_output(h, padding), _block_output(w, padding), depth + 1
    return depth


def plan(spec: VariantSpec, input_shape: tuple[int, int, int], num_classes: int) -> list[LayerPlan]:
    """The layers of the variant's network for images of input_shape (H, W, C)."""
    h, w, c = input_shape
    allowed = max_depth(h, w, spec.padding)
    if spec.depth > allowed:
        raise SpecError(
            "depth",
            f"{spec.depth} blocks shrink a {h}x{w} image below 1x1; at most {allowed} for this dataset",
            spec.depth,
        )
    layers: list[LayerPlan] = []
    bias = 0 if spec.batchnorm else 1  # batch normalization's beta replaces the conv's bias
    for i in range(spec.depth):
        filters = kept(spec.width * 2**i, spec.channels)
        oh, ow = _conv_output(h, spec.padding), _conv_output(w, spec.padding)
        if spec.conv == "separable":
            params = KERNEL * KERNEL * c + c * filters + bias * filters
            macs = oh * ow * (KERNEL * KERNEL * c + c * filters)
        else:
            params = KERNEL * KERNEL * c * filters + bias * filters
            macs = oh * ow * KERNEL * KERNEL * c * filters
        layers.append(LayerPlan(f"conv{i + 1}", "separable" if spec.conv == "separable" else "conv",
                                (oh, ow, filters), params, macs))
        if spec.batchnorm:  # gamma, beta, moving mean and variance; folded into the conv by the converter
            layers.append(LayerPlan(f"bn{i + 1}", "batchnorm", (oh, ow, filters), 4 * filters, 0))
            layers.append(LayerPlan(f"relu{i + 1}", "relu", (oh, ow, filters), 0, 0))
        h, w, c = oh // POOL, ow // POOL, filters
        layers.append(LayerPlan(f"pool{i + 1}", "pool", (h, w, c), 0, 0))
    if spec.head == "gap":
        layers.append(LayerPlan("gap", "gap", (c,), 0, h * w * c))
        flat = c
    else:
        flat = h * w * c
        layers.append(LayerPlan("flatten", "flatten", (flat,), 0, 0))
    units = kept(spec.dense, spec.channels)
    if spec.dropout:
        layers.append(LayerPlan("dropout1", "dropout", (flat,), 0, 0))
    layers.append(LayerPlan("dense", "dense", (units,), flat * units + units, flat * units))
    if spec.dropout:
        layers.append(LayerPlan("dropout2", "dropout", (units,), 0, 0))
    layers.append(LayerPlan("logits", "logits", (num_classes,), units * num_classes + num_classes,
                            units * num_classes))
    layers.append(LayerPlan("softmax", "softmax", (num_classes,), 0, 0))
    return layers


def kernel_sizes(layers: list[LayerPlan], channels_in: int) -> list[int]:
    """Weights in each kernel the network has (a separable conv has two): what clustering shares out."""
    sizes, c = [], channels_in
    for layer in layers:
        out = layer.output_shape[-1]
        if layer.kind == "conv":
            sizes.append(KERNEL * KERNEL * c * out)
        elif layer.kind == "separable":
            sizes += [KERNEL * KERNEL * c, c * out]
        elif layer.kind in ("dense", "logits"):
            sizes.append(layer.params - out)
        c = out
    return sizes


def check(spec: VariantSpec, input_shape: tuple[int, int, int], num_classes: int) -> list[LayerPlan]:
    """The plan, after checking the spec fits the data: depth (see plan) and clusters, which cannot
    outnumber the weights of the smallest kernel."""
    layers = plan(spec, input_shape, num_classes)
    smallest = min(kernel_sizes(layers, input_shape[-1]))
    if spec.clusters > smallest:
        raise SpecError("clusters", f"at most {smallest} here: the smallest kernel of this network has "
                        f"{smallest} weights", spec.clusters)
    return layers


def largest_activation_bytes(layers: list[LayerPlan]) -> int:
    """Bytes of the largest float32 activation one image makes: what a batch multiplies in memory."""
    return max(4 * math.prod(layer.output_shape) for layer in layers)


def total_params(layers: list[LayerPlan]) -> int:
    return sum(layer.params for layer in layers)


def total_macs(layers: list[LayerPlan]) -> int:
    return sum(layer.macs for layer in layers)
