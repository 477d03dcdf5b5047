"""Backfills: give a variant built by an older version what a build now records, from its own model (no
training): its test predictions, its memory plan.
"""

from __future__ import annotations

from explorer.measure import gate, measure, memory
from explorer.models import sources
from explorer.record import MemoryPlan, VariantRecord
from explorer.store.cache import PREDICTIONS, TFLITE, CacheError, Store


def add_predictions(store: Store, key: str) -> bool:
    """Give a variant built before predictions were kept its test predictions, from its own model (no
    training; the accuracy they give must be the stored one). Returns whether it had none."""
    if store.read_predictions(key) is not None:
        return False
    v = VariantRecord.from_meta(store.verify("variants", key))
    data = sources.for_spec(v.spec).data(v.spec)
    with gate.machine().shared():
        ev = measure.evaluate(store.file_path("variants", key, TFLITE).read_bytes(), data.x_test, data.y_test,
                              len(v.class_names))
    if ev.confusion != [list(r) for r in v.confusion]:
        raise CacheError(f"variants entry {key}: its model no longer gives its stored confusion matrix")
    store.add_file("variants", key, PREDICTIONS, ev.predictions.tobytes())
    return True


def add_memory(store: Store, key: str) -> bool:
    """Give a variant its peak RAM and flash as the planner plans them now, from its own model (no training): one
    built before memory was planned, or planned by an older planner. Returns whether its plan changed."""
    meta = store.verify("variants", key)
    plan = memory.plan(store.file_path("variants", key, TFLITE).read_bytes())
    stored = meta["metrics"].get("memory")
    if stored and MemoryPlan.from_dict(stored) == plan:
        return False
    store.amend_meta("variants", key, lambda m: {**m, "metrics": {**m["metrics"], "memory": plan.to_dict()}})
    return True
