"""Which accuracy differences are real: paired tests between variants, a front that does not rank noise, and
the variants tied with a budget's pick. Pure (numpy, pandas, SciPy through explorer.uncertainty).

Two variants scored on the same test images are compared image by image (McNemar's exact test on their
stored predictions); otherwise, or for seed groups, by whether their 95 % intervals overlap.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Mapping, Sequence

import numpy as np
import pandas as pd

from explorer.uncertainty import Paired, intervals_differ, mcnemar
from explorer.present.results import METRICS, front, interval

FRONT, TIED, DOMINATED = "front", "tied", "dominated"


@dataclass(frozen=True)
class Evidence:
    """What paired tests need: each dataset's test labels, each variant's test predictions (by key)."""

    truth: Mapping[str, np.ndarray] = field(default_factory=dict)
    predictions: Mapping[str, np.ndarray] = field(default_factory=dict)

    @classmethod
    def read(cls, store, dataset: str, keys: Sequence[str]) -> Evidence:
        """The dataset's test labels and the stored predictions of these variants (an explorer.store.cache
        Store); a variant without readable predictions is left out (it is compared by its interval)."""
        from explorer.data import datasets
        from explorer.store.cache import CacheError

        found = {}
        for key in keys:
            try:
                preds = store.read_predictions(key)
            except (CacheError, OSError):
                preds = None
            if preds is not None:
                found[key] = preds
        try:
            truth = {dataset: datasets.test_labels(dataset)} if found else {}
        except (datasets.DatasetError, OSError):  # the data is not on this machine: intervals only
            truth = {}
        return cls(truth, found)

    def paired(self, a: Mapping, b: Mapping) -> Paired | None:
        """B against A image by image, when both are single builds scored on the same test split."""
        if a["dataset"] != b["dataset"] or int(a.get("seeds", 1) or 1) > 1 or int(b.get("seeds", 1) or 1) > 1:
            return None
        truth, pa, pb = self.truth.get(a["dataset"]), self.predictions.get(a["key"]), self.predictions.get(b["key"])
        if truth is None or pa is None or pb is None or not len(truth) == len(pa) == len(pb):
            return None
        return mcnemar(truth, pa, pb)


def significantly_better(a: Mapping, b: Mapping, evidence: Evidence, y: str = "accuracy") -> bool:
    """Whether b is significantly more accurate than a: McNemar where both have predictions (accuracy),
    else non-overlapping 95 % intervals."""
    paired = evidence.paired(a, b) if y == "accuracy" else None
    if paired is not None:
        return paired.significant and paired.diff > 0
    ia, ib = interval(a, y), interval(b, y)
    return intervals_differ(ia, ib) and ib.value > ia.value


def front_status(df: pd.DataFrame, x: str, y: str, evidence: Evidence) -> np.ndarray:
    """Per row: FRONT (nothing is as fast and more accurate), TIED (something is, but not significantly: it
    may belong to the front) or DOMINATED (a front variant at least as fast is significantly more accurate).

    Only front variants are tried as dominators: each dominated variant has one at least as fast and as
    accurate, so this stays linear in the front's size at thousands of variants."""
    mask = front(df, x, y)
    status = np.where(mask, FRONT, TIED).astype(object)
    records = df.to_dict("records")
    sign = 1 if METRICS[x].lower_is_better else -1
    cost = df[x].to_numpy(float) * sign
    leaders = np.flatnonzero(mask)
    for i in np.flatnonzero(~mask):
        if not np.isfinite(cost[i]):
            continue
        faster = leaders[cost[leaders] <= cost[i]]
        if any(significantly_better(records[i], records[j], evidence, y) for j in faster):
            status[i] = DOMINATED
    return status


def tied_with(df: pd.DataFrame, winner: str, candidates: pd.Series, evidence: Evidence, y: str = "accuracy") -> list[str]:
    """Keys of the candidate rows (a boolean mask, e.g. under the budget) not significantly less accurate
    than the winner: the variants a budget's answer must not pretend to beat."""
    rows = df.set_index("key", drop=False)
    best = rows.loc[winner].to_dict()
    return [r["key"] for r in df[candidates].to_dict("records")
            if r["key"] != winner and not significantly_better(r, best, evidence, y)]


def delta_text(paired: Paired | None, delta_pts: float) -> str:
    """A difference in accuracy for people: with McNemar's verdict when the images could be paired."""
    if paired is None:
        return f"{delta_pts:+.1f} pts (not paired: compare the intervals)"
    return paired.text()
