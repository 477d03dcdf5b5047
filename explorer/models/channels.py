"""Structured (channel) pruning: keep each conv's and the dense layer's strongest filters, drop the rest.

Unlike magnitude pruning, which zeroes single weights that TFLite's dense kernels still multiply, this
removes whole filters: the narrower model does less work on any CPU. Filters are ranked by the L1 norm
of their weights (Li et al., "Pruning Filters for Efficient ConvNets", ICLR 2017); the narrower model's
layer plan is architecture.plan(spec) with spec.channels, and its weights are the kept slices of the
trained model's, before a fine-tune recovers the accuracy. The slicing is pure numpy, tested on its own.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from explorer.models.architecture import kept

Weights = list[np.ndarray]


@dataclass(frozen=True)
class SourceLayer:
    """One layer of the trained (full-width) model: its plan kind, its weights and its input's shape."""

    kind: str
    weights: Weights
    input_shape: tuple[int, ...] = ()


def strongest(kernel: np.ndarray, keep: int) -> np.ndarray:
    """Indices (ascending) of the `keep` output filters of kernel (last axis) with the largest L1 norm."""
    norms = np.abs(kernel).reshape(-1, kernel.shape[-1]).sum(axis=0)
    return np.sort(np.argsort(-norms, kind="stable")[:keep])


def slice_weights(layers: list[SourceLayer], fraction: float) -> list[Weights]:
    """The narrower model's weights, layer by layer: kept filters of every conv and kept units of the hidden
    dense layer, and each next layer's input sliced to match. Logits keep every class."""
    out: list[Weights] = []
    prev: np.ndarray | None = None  # kept channels of the previous layer's output (None: all)

    def rows(w: np.ndarray, axis: int) -> np.ndarray:
        return w if prev is None else np.take(w, prev, axis=axis)

    for layer in layers:
        w = layer.weights
        if layer.kind == "conv":  # kernel (kh, kw, in, out)[, bias]
            keep = strongest(w[0], kept(w[0].shape[-1], fraction))
            out.append([rows(w[0], 2)[..., keep], *(b[keep] for b in w[1:])])
            prev = keep
        elif layer.kind == "separable":  # depthwise (kh, kw, in, 1), pointwise (1, 1, in, out)[, bias]
            keep = strongest(w[1], kept(w[1].shape[-1], fraction))
            out.append([rows(w[0], 2), rows(w[1], 2)[..., keep], *(b[keep] for b in w[2:])])
            prev = keep
        elif layer.kind == "batchnorm":  # gamma, beta, moving mean, moving variance: per channel
            out.append([rows(v, 0) for v in w])
        elif layer.kind == "flatten":  # (h, w, c) flattened row-major: channel k of position p is p * c + k
            if prev is not None:
                h, wd, c = layer.input_shape
                prev = (np.arange(h * wd)[:, None] * c + prev[None, :]).ravel()
            out.append([])
        elif layer.kind == "dense":  # kernel (in, units), bias
            keep = strongest(w[0], kept(w[0].shape[-1], fraction))
            out.append([rows(w[0], 0)[:, keep], w[1][keep]])
            prev = keep
        elif layer.kind == "logits":
            out.append([rows(w[0], 0), w[1]])
            prev = None
        else:  # pooling, ReLU, global average pooling, dropout, softmax: no weights, channels pass through
            out.append(list(w))
    return out


def narrow(model, narrow_model, plan_kinds: list[str], fraction: float) -> None:
    """Copy a trained Keras model's kept slices into the narrower model built from the pruned spec."""
    layers = [SourceLayer(kind, layer.get_weights(), tuple(layer.input_shape[1:]))
              for kind, layer in zip(plan_kinds, model.layers)]
    for target, weights in zip(narrow_model.layers, slice_weights(layers, fraction)):
        target.set_weights(weights)
