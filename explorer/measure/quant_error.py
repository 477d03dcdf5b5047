"""Where a full-integer model's accuracy goes: each op's int8 error, and what keeping its layer in float recovers.

    >>> layers = quant_error.from_dump(csv_text, owners, order)      # TensorFlow's QuantizationDebugger's dump
    >>> for name in quant_error.candidates(layers): ...               # each layer alone in float, then evaluated
    >>> quant_error.sentence(record)

The local figure is TensorFlow's QuantizationDebugger layer statistics (its guide's: the RMSE of an op's int8
output against the float one, in quantization steps, on the same images). It is cheap and it does not always
find the culprit: on a MobileNetV3Small, keeping in float the layers it ranks worst recovered 1-5 % of the drop.
So where int8 loses accuracy on the validation subset, each candidate layer is also kept alone in float and the
model evaluated again (as NNCF's accuracy control ranks layers): that gain, in points, is the layer's measured
share of the drop. Pure: the conversions and evaluations are the caller's.
"""

from __future__ import annotations

import csv
import dataclasses
import io
import math
from typing import Mapping

from explorer.record import REAL_DROP_POINTS, LayerError, QuantError

IMAGES = 1000  # validation images measured (a fixed subset: the first)
DEBUG_IMAGES = 64  # images the debugger compares float and int8 outputs on
MAX_TRIED = 40  # layers kept in float one at a time, the worst errors first (a network of ~100 layers: ~2 minutes)


def from_dump(text: str, owners: Mapping[str, str], order: Mapping[str, int]) -> tuple[LayerError, ...]:
    """The debugger's CSV dump (op_name, tensor_name, mean_squared_error, scale, ...) as one record per op, in the
    model's op order. owners: an op's output tensor name -> its Keras layer; order: the same name -> its op index in
    the converted model."""
    out = []
    for row in csv.DictReader(io.StringIO(text)):
        name, scale = row["tensor_name"], float(row["scale"] or "nan")
        mse = float(row["mean_squared_error"] or "nan")
        rmse = math.sqrt(mse) / scale if scale > 0 and mse >= 0 else float("nan")
        out.append(LayerError(order.get(name), row["op_name"], owners.get(name, ""), rmse))
    return tuple(sorted(out, key=lambda e: (e.index is None, e.index or 0)))


def worth_blaming(q: QuantError) -> bool:
    """Whether int8 loses enough on the subset for keeping layers in float to be worth measuring: a real drop
    (QuantError.real_drop: at least half a point, McNemar's p under ALPHA), not two images of noise."""
    return q.real_drop


def candidates(layers: tuple[LayerError, ...], first: str | None = None) -> list[str]:
    """The layers to keep in float one at a time: each named layer once, the largest error first, at most
    MAX_TRIED; first (the output layer) before them whatever its error: its int8 output adds no error of its own
    but quantizes the logits, and at 256 levels close classes tie (1.5 of the 1.6 points a MobileNetV3Small lost)."""
    seen: dict[str, float] = {}
    for e in layers:
        if e.layer and not math.isnan(e.rmse):
            seen[e.layer] = max(seen.get(e.layer, 0.0), e.rmse)
    ranked = sorted(seen, key=lambda name: -seen[name])
    return ([first] if first in seen else []) + [n for n in ranked if n != first][:MAX_TRIED - (first in seen)]


def with_gains(q: QuantError, gains: Mapping[str, float]) -> QuantError:
    """The record with each tried layer's measured gain (points) on its ops."""
    return dataclasses.replace(q, layers=tuple(dataclasses.replace(e, gain=gains.get(e.layer)) for e in q.layers))


def worst(q: QuantError) -> LayerError | None:
    """The op whose layer recovers most in float when gains were measured, else the largest error."""
    tried = [e for e in q.layers if e.gain is not None]
    if tried:
        return max(tried, key=lambda e: e.gain)
    errors = [e for e in q.layers if not math.isnan(e.rmse)]
    return max(errors, key=lambda e: e.rmse) if errors else None


def sentence(q: QuantError) -> str:
    """For people: how much int8 loses here, and which layer most."""
    w = worst(q)
    lost = (f"int8 {'loses' if q.drop_points >= 0 else 'scores'} {abs(q.drop_points):.1f} points "
            f"{'against' if q.drop_points >= 0 else 'above'} float on {q.images:,} validation images")
    if w is None:
        return lost + "."
    name = w.layer or f"op {w.index} ({w.op})"
    if w.gain is not None and w.gain <= 0:  # the largest error is then worth naming instead
        w = max((e for e in q.layers if not math.isnan(e.rmse)), key=lambda e: e.rmse)
    error = f"{w.layer or name}'s int8 output is {w.rmse:.2f} quantization steps from float (RMSE)"
    if w.gain is not None and w.gain <= 0:
        return f"{lost}. No layer kept alone in float recovers any of it on these images. The largest error: {error}."
    if w.gain is not None:
        median = sorted(e.rmse for e in q.layers if not math.isnan(e.rmse))[len(q.layers) // 2]
        return (f"{lost}. Keeping {name} alone in float recovers {w.gain:.1f} of them: the most of any layer "
                f"({error}; the median op's is {median:.2f}).")
    if q.drop_points < REAL_DROP_POINTS:
        return f"{lost}: nothing to recover, so no layer was kept in float to find out. The largest error: {error}."
    if w.gain is None:  # a drop within the noise of these images
        return (f"{lost}, within what these images can tell apart, so no layer was kept in float to find out. The "
                f"largest error: {error}.")
    return f"{lost}. The largest error: {error}."
