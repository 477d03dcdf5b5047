"""The layer plan of a variant: shapes, parameters and multiply-accumulates, computed without TensorFlow.

The model builder turns this plan into Keras layers, so the plan is the single description of the
architecture; the app uses it to show parameters and MACs of a variant before anything is trained.
Blocks follow the reference CNN: 3x3 'valid' convolution + ReLU, then 2x2 max-pooling; filters
double per block; then Flatten -> Dense(ReLU) -> Dense(softmax).
"""

from __future__ import annotations

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


def _block_output(size: int) -> int:
    """Spatial size after one block: valid 3x3 conv, then 2x2 max-pool (floor)."""
    return (size - KERNEL + 1) // POOL


def max_depth(height: int, width: int) -> int:
    """The deepest stack of blocks that keeps the feature map at least 1x1 (0 if none fits)."""
    depth, h, w = 0, height, width
    while min(h, w) >= KERNEL + 1 and depth < 4:
        h, w, depth = _block_output(h), _block_output(w), depth + 1
    return depth


def plan(spec: VariantSpec, input_shape: tuple[int, int, int], num_classes: int) -> list[LayerPlan]:
    """The layers of the variant's network for images of input_shape (H, W, C)."""
    h, w, c = input_shape
    allowed = max_depth(h, w)
    if spec.depth > allowed:
        raise SpecError(
            "depth",
            f"{spec.depth} blocks shrink a {h}x{w} image below 1x1; at most {allowed} for this dataset",
            spec.depth,
        )
    layers: list[LayerPlan] = []
    for i in range(spec.depth):
        filters = spec.width * 2**i
        oh, ow = h - KERNEL + 1, w - KERNEL + 1
        if spec.conv == "separable":
            params = KERNEL * KERNEL * c + c * filters + filters
            macs = oh * ow * (KERNEL * KERNEL * c + c * filters)
        else:
            params = KERNEL * KERNEL * c * filters + filters
            macs = oh * ow * KERNEL * KERNEL * c * filters
        layers.append(LayerPlan(f"conv{i + 1}", "separable" if spec.conv == "separable" else "conv",
                                (oh, ow, filters), params, macs))
        h, w, c = oh // POOL, ow // POOL, filters
        layers.append(LayerPlan(f"pool{i + 1}", "pool", (h, w, c), 0, 0))
    flat = h * w * c
    layers.append(LayerPlan("flatten", "flatten", (flat,), 0, 0))
    layers.append(LayerPlan("dense", "dense", (spec.dense,), flat * spec.dense + spec.dense, flat * spec.dense))
    layers.append(LayerPlan("logits", "dense", (num_classes,),
                            spec.dense * num_classes + num_classes, spec.dense * num_classes))
    return layers


def total_params(layers: list[LayerPlan]) -> int:
    return sum(layer.params for layer in layers)


def total_macs(layers: list[LayerPlan]) -> int:
    return sum(layer.macs for layer in layers)
