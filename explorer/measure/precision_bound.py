"""Precision under an accuracy bound: the fewest layers a full-integer model keeps in float to lose at most D
points of validation accuracy against the float model.

    >>> order = precision_bound.ranked(quant_error_record, allowed_layers)
    >>> bound = precision_bound.search(order, accuracy_with, quant_error_record, max_drop=0.5)

The layers are ranked by what keeping each alone in float was measured to recover (quant_error's gains, where the
drop was real enough to measure them), then by their int8 error. The bound keeps the shortest prefix of that
ranking that meets it, found by doubling the prefix until it does, then bisecting: a prefix's accuracy grows with
its length near enough, so a prefix of k layers costs about 2 log2(k) conversions and evaluations, not k (NNCF's
accuracy control reverts layers one at a time instead); the layers measured to help come first, so k is often 1. Pure: the conversions and evaluations are the caller's (accuracy_with).
"""

from __future__ import annotations

import math
import time
from typing import Callable, Collection

from explorer.record import PrecisionBound, QuantError


def within(float_accuracy: float, accuracy: float, max_drop: float) -> bool:
    """Whether accuracy loses at most max_drop points against float (a rounding hair of slack)."""
    return (float_accuracy - accuracy) * 100 <= max_drop + 1e-9


def ranked(q: QuantError, allowed: Collection[str]) -> list[str]:
    """The layers to keep in float, best first: those measured to recover accuracy alone in float, by that gain,
    then the rest by their largest op error. Only allowed layers (ones a conversion can keep in float)."""
    rmse: dict[str, float] = {}
    gain: dict[str, float] = {}
    for e in q.layers:
        if e.layer in allowed and not math.isnan(e.rmse):
            rmse[e.layer] = max(rmse.get(e.layer, 0.0), e.rmse)
            if e.gain is not None:
                gain[e.layer] = e.gain
    helped = sorted((n for n in gain if gain[n] > 0), key=lambda n: -gain[n])
    return helped + sorted((n for n in rmse if n not in helped), key=lambda n: -rmse[n])


def search(order: list[str], accuracy_with: Callable[[tuple[str, ...]], float | None], q: QuantError,
           max_drop: float) -> PrecisionBound:
    """The shortest prefix of order that keeps the model within max_drop points of q's float accuracy.
    accuracy_with(layers) converts with those layers in float and evaluates on q's images (None: that set cannot
    be converted, e.g. every op in float). Not met when no prefix does: the fp32 model is then the answer."""
    start = time.perf_counter()
    tried: list[tuple[int, float]] = []

    def bound(layers: tuple[str, ...], accuracy: float, met: bool) -> PrecisionBound:
        return PrecisionBound(max_drop, q.images, q.float_accuracy, q.int8_accuracy, layers, accuracy, tuple(tried),
                              met, round(time.perf_counter() - start, 2))

    def meets(k: int) -> float | None:
        accuracy = accuracy_with(tuple(order[:k]))
        if accuracy is None:
            return None
        tried.append((k, accuracy))
        return accuracy if within(q.float_accuracy, accuracy, max_drop) else None

    if within(q.float_accuracy, q.int8_accuracy, max_drop):
        return bound((), q.int8_accuracy, True)
    lo, hi, best = 0, None, None  # the prefix of lo layers misses the bound (full int8 does); hi meets it
    k = 1
    while k <= len(order):  # doubling: the layers measured to help come first, so a short prefix often meets it
        accuracy = meets(k)
        if accuracy is not None:
            hi, best = k, accuracy
            break
        lo = k
        k = min(2 * k, len(order)) if k < len(order) else len(order) + 1
    if hi is None:
        return bound(tuple(order), tried[-1][1] if tried else q.int8_accuracy, False)
    while hi - lo > 1:
        mid = (lo + hi) // 2
        accuracy = meets(mid)
        if accuracy is None:
            lo = mid
        else:
            hi, best = mid, accuracy
    return bound(tuple(order[:hi]), best, True)
