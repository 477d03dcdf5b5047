"""Precision "auto:D": the layers a full-integer variant keeps in float to lose at most D points, chosen once from
its own model and kept in the full-int8 sibling's record (explorer.measure.precision_bound has the rule).

    >>> bound = accuracy_bound.stored(store, int8_key, 0.5)                      # None until chosen
    >>> bound = accuracy_bound.choose(model, int8_spec, data, quant_error, allowed, 0.5, classes)
    >>> accuracy_bound.keep(store, int8_key, bound)

Accuracy does not depend on the host: the layers chosen for accuracy are the same everywhere, and each host adds
the layers its own op profiles find slower in int8 (explorer.run.auto_precision).
"""

from __future__ import annotations

from typing import Collection

from explorer.data.datasets import Dataset
from explorer.measure import gate, precision_bound
from explorer.record import PrecisionBound, QuantError
from explorer.run import blame
from explorer.spec import VariantSpec
from explorer.store.cache import Store

BOUNDS = "precision_bounds"  # the full-int8 variant's meta.json field: {"0.5": PrecisionBound, ...}


def _name(max_drop: float) -> str:
    return f"{max_drop:g}"


def stored(store: Store, int8_key: str, max_drop: float) -> PrecisionBound | None:
    """The bound chosen for this full-int8 variant, None until one is."""
    found = store.read_meta("variants", int8_key).get(BOUNDS, {}).get(_name(max_drop))
    return PrecisionBound.from_dict(found) if found else None


def keep(store: Store, int8_key: str, bound: PrecisionBound) -> None:
    """Add the bound to the full-int8 variant's record (its files stay as they are)."""
    store.amend_meta("variants", int8_key, lambda m: {**m, BOUNDS: {**m.get(BOUNDS, {}),
                                                                    _name(bound.max_drop): bound.to_dict()}})


def choose(model, spec: VariantSpec, data: Dataset, q: QuantError, allowed: Collection[str], max_drop: float,
           classes: int) -> PrecisionBound:
    """The fewest layers, ranked by q (the full-int8 variant's per-layer error and gains), that bring the model
    converted in spec's mode within max_drop points of float on q's validation images."""
    from explorer.models import quantize

    x, y = data.x_val[:q.images], data.y_val[:q.images]
    calibration = data.x_train[:quantize.CALIBRATION_IMAGES]

    with gate.machine().shared():
        mixer = quantize.FloatMixer(model, spec.quant, calibration)

    def accuracy_with(layers: tuple[str, ...]) -> float | None:
        try:
            with gate.machine().shared():
                mixed = mixer.convert(layers)
        except ValueError:  # every op in float (that is the fp32 model), or a layer with no op of its own
            return None
        return blame.accuracy_of(mixed, x, y, classes)

    return precision_bound.search(precision_bound.ranked(q, allowed), accuracy_with, q, max_drop)
