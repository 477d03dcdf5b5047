"""Per-layer precision chosen by measurement: which layers a full-int8 model should keep in float on a host.

The int8 and fp32 siblings' op profiles, measured on the host being targeted, say what each layer costs
in either precision. A layer whose int8 op is slower than its float op by more than what keeping it float
adds (a quantize or dequantize at its borders, QUANTIZE_COST) is kept float. On the Intel Xeon of the
shared records that is the first convolution (one input channel: 30.1 µs in int8, 4.3 µs in fp32); on the
AMD EPYC that built the shipped cache, nothing. The profiles only predict: the quantize/dequantize pair an
island adds can cost more than it saves, so the candidate is built and timed against both siblings, and the
faster sibling is kept where it wins (faster_sibling): "auto" is never slower than either, by measurement.
Pure: no TensorFlow, no LiteRT.
"""

from __future__ import annotations

from typing import Mapping, Sequence

from explorer.record import Layer, OpTime

# Op names of the layers that carry weights, by the layer plan's kinds (explorer.models.architecture).
OPS_OF_KIND = {"conv": ("CONV_2D",), "separable": ("DEPTHWISE_CONV_2D", "CONV_2D"), "dense": ("FULLY_CONNECTED",),
               "logits": ("FULLY_CONNECTED",), "depthwise": ("DEPTHWISE_CONV_2D",)}  # depthwise: an imported network's
FLOAT_ALL_KINDS = ("conv", "separable", "depthwise", "pool", "flatten", "dense", "logits")  # every layer that becomes an op
QUANTIZE_COST = 0.1  # share of the layer's float time a float island costs in quantize/dequantize ops, at least …
QUANTIZE_MIN_US = 1.0  # … this many µs: keeping the logits float (int8 0.9 µs, float ~0) measured slower on the EPYC


def layer_ops(layers: Sequence[Layer], ops: Sequence[OpTime]) -> dict[str, list[OpTime]]:
    """The ops of each weighted layer, in order: the k-th CONV_2D op is the k-th convolution's, and so on
    (a separable layer owns a depthwise and a pointwise op)."""
    pending: dict[str, list[OpTime]] = {}
    for op in ops:
        pending.setdefault(op.name, []).append(op)
    out: dict[str, list[OpTime]] = {}
    for layer in layers:
        names = OPS_OF_KIND.get(layer.kind, ())
        mine = [pending[n].pop(0) for n in names if pending.get(n)]
        if mine:
            out[layer.name] = mine
    return out


def float_layers(layers: Sequence[Layer], int8_ops: Sequence[OpTime], fp32_ops: Sequence[OpTime]) -> list[str]:
    """The layers slower in int8 than in float on the host whose profiles these are, by more than keeping
    them float costs; in the network's order (empty: full int8 is the faster choice everywhere).

    When the fp32 sibling is faster than the int8 one would be even with those layers in float (the int8
    kernels are slow on this CPU through and through), every layer is kept float: that is the fp32 sibling
    itself, which auto then gives (explorer.run.auto_precision)."""
    q, f = layer_ops(layers, int8_ops), layer_ops(layers, fp32_ops)
    keep, saved = [], 0.0
    for layer in layers:
        if layer.name in q and layer.name in f:
            int8_us, float_us = sum(o.us for o in q[layer.name]), sum(o.us for o in f[layer.name])
            cost = max(QUANTIZE_COST * float_us, QUANTIZE_MIN_US)
            if int8_us - float_us > cost:
                keep.append(layer.name)
                saved += int8_us - float_us - cost
    if sum(o.us for o in fp32_ops) < sum(o.us for o in int8_ops) - saved:
        return [layer.name for layer in layers if layer.kind in FLOAT_ALL_KINDS]
    return _islands(layers, keep)


def _islands(layers: Sequence[Layer], keep: list[str]) -> list[str]:
    """The kept layers, with the pooling and flattening between two of them when nothing else lies between:
    one float island instead of two, each of which would quantize and dequantize a feature map."""
    order = [lp for lp in layers if lp.kind in FLOAT_ALL_KINDS]
    out: list[str] = []
    between: list[str] = []
    for lp in order:
        if lp.name in keep:
            out += between if out and out[-1] != "|" else []
            out.append(lp.name)
            between = []
        elif lp.kind in ("pool", "flatten"):
            between.append(lp.name)
        else:
            between = []
            if out and out[-1] != "|":
                out.append("|")  # an int8 layer ends the island
    return [n for n in out if n != "|"]


def faster_sibling(candidate_us: float, siblings_us: Mapping[str, float]) -> str | None:
    """The sibling (by name) to keep instead of a timed candidate: the fastest one, where it beats the candidate's
    p50; None where the candidate is at least as fast as every sibling."""
    name = min(siblings_us, key=siblings_us.__getitem__)
    return name if siblings_us[name] < candidate_us else None
