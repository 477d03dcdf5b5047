"""How sure an accuracy is: 95 % intervals, seed replicates and paired comparisons (pure: SciPy and numpy).

A test accuracy is one draw: of the test images (a binomial interval, Wilson's) and of the training seed
(the spread of replicates). Balanced accuracy and macro F1 get a seeded bootstrap over the test images.
Two variants scored on the same test images are compared image by image with McNemar's exact test
(Dietterich 1998): only the images one gets right and the other wrong count.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

import numpy as np
from scipy import stats

LEVEL = 0.95
ALPHA = 1 - LEVEL
BOOTSTRAP_RESAMPLES = 2000
BOOTSTRAP_SEED = 0  # the same entry always gets the same interval


ASYMMETRIC = 0.6  # an interval whose shorter side is under this share of its longer one is printed as a range


@dataclass(frozen=True)
class Interval:
    """A figure with its 95 % interval; n is how many seed replicates it stands for (1: one build)."""

    value: float
    lo: float
    hi: float
    n: int = 1

    @property
    def half_width(self) -> float:
        return (self.hi - self.lo) / 2

    @property
    def decimals(self) -> int:
        """Decimals the interval supports: the half-width's first significant digit, 1 to 4 (±0.022 -> 2)."""
        half = self.half_width
        return 4 if not half > 0 else min(max(-math.floor(math.log10(half)), 1), 4)

    def text(self, points: bool = False) -> str:
        """'0.896 ± 0.006' (or in points: '89.6 ± 0.6 pts'), at the precision the interval supports; a range
        where one side is under ASYMMETRIC of the other (bounded at 1.0, say): '0.97 [0.92, 1.00]'."""
        if not math.isfinite(self.value):
            return "n/a"
        scale, d, unit = (100, max(self.decimals - 2, 0), " pts") if points else (1, self.decimals, "")
        below, above = (self.value - self.lo) * scale, (self.hi - self.value) * scale
        seeds = f" ({self.n} seeds)" if self.n > 1 else ""
        if min(below, above) < ASYMMETRIC * max(below, above):
            return f"{self.value * scale:.{d}f} [{self.lo * scale:.{d}f}, {self.hi * scale:.{d}f}]{unit}{seeds}"
        return f"{self.value * scale:.{d}f} ± {max(below, above):.{d}f}{unit}{seeds}"


def accuracy_interval(correct: int, n: int) -> Interval:
    """Wilson's 95 % interval of a proportion (SciPy's binomtest): right for small splits and near 1."""
    if n <= 0:
        return Interval(float("nan"), float("nan"), float("nan"))
    ci = stats.binomtest(int(correct), int(n)).proportion_ci(confidence_level=LEVEL, method="wilson")
    return Interval(correct / n, float(ci.low), float(ci.high))


def _balanced(cms: np.ndarray) -> np.ndarray:
    support = cms.sum(axis=-1)
    recall = np.diagonal(cms, axis1=-2, axis2=-1) / np.maximum(support, 1)
    present = support > 0
    return (recall * present).sum(axis=-1) / np.maximum(present.sum(axis=-1), 1)


def _macro_f1(cms: np.ndarray) -> np.ndarray:
    actual, predicted = cms.sum(axis=-1), cms.sum(axis=-2)
    tp = np.diagonal(cms, axis1=-2, axis2=-1)
    f1 = 2 * tp / np.maximum(actual + predicted, 1)
    present = actual > 0
    return (f1 * present).sum(axis=-1) / np.maximum(present.sum(axis=-1), 1)


def class_metric_intervals(confusion: Sequence[Sequence[int]]) -> dict[str, Interval]:
    """Balanced accuracy and macro F1 with seeded percentile-bootstrap intervals over the test images.

    Resampling n test images with replacement is a multinomial draw over the confusion matrix's cells,
    so the bootstrap runs on the stored matrix alone (old entries get intervals without retraining)."""
    cm = np.asarray(confusion, dtype=np.int64)
    n = int(cm.sum())
    if n == 0:
        nan = Interval(float("nan"), float("nan"), float("nan"))
        return {"balanced_accuracy": nan, "macro_f1": nan}
    rng = np.random.default_rng(BOOTSTRAP_SEED)
    draws = rng.multinomial(n, cm.ravel() / n, size=BOOTSTRAP_RESAMPLES).reshape(-1, *cm.shape)
    out = {}
    for name, metric in (("balanced_accuracy", _balanced), ("macro_f1", _macro_f1)):
        lo, hi = np.percentile(metric(draws), [100 * ALPHA / 2, 100 * (1 - ALPHA / 2)])
        out[name] = Interval(float(metric(cm)), float(lo), float(hi))
    return out


def replicate_interval(values: Sequence[float], test_half_width: float) -> Interval:
    """The mean of seed replicates, with the range a new seed's accuracy on these test images falls in
    (Student's t prediction interval over the seeds, SciPy's t.ppf), combined in quadrature with the test
    split's own sampling half-width (which seeds share, so averaging them does not shrink it)."""
    arr = np.asarray(values, dtype=np.float64)
    mean = float(arr.mean())
    if arr.size < 2:
        return Interval(mean, mean - test_half_width, mean + test_half_width, int(arr.size))
    seed_half = float(stats.t.ppf(1 - ALPHA / 2, arr.size - 1) * arr.std(ddof=1) * math.sqrt(1 + 1 / arr.size))
    half = math.hypot(seed_half, test_half_width)
    return Interval(mean, max(mean - half, 0.0), min(mean + half, 1.0), int(arr.size))  # an accuracy: within [0, 1]


def t_quantile(dof: int) -> float:
    """The two-sided 95 % quantile of Student's t (SciPy)."""
    return float(stats.t.ppf(1 - ALPHA / 2, dof))


@dataclass(frozen=True)
class Paired:
    """B against A on the same test images: the accuracy difference (B - A) with its 95 % interval, and
    McNemar's exact p-value over the discordant images (only_a: A right, B wrong; only_b: the reverse)."""

    diff: float
    lo: float
    hi: float
    p: float
    only_a: int
    only_b: int
    n: int

    @property
    def significant(self) -> bool:
        return self.p < ALPHA

    def text(self) -> str:
        d = Interval(self.diff, self.lo, self.hi)
        verdict = "significant" if self.significant else "not significant: a tie"
        return f"{d.text(points=True)}, McNemar p = {self.p:.2g} ({verdict})"


def mcnemar(truth: np.ndarray, pred_a: np.ndarray, pred_b: np.ndarray) -> Paired:
    """McNemar's exact test (SciPy's binomtest on the discordant pairs) and the paired difference's Wald
    interval, with standard error sqrt(b + c - (b - c)^2 / n) / n."""
    truth, pred_a, pred_b = (np.asarray(a) for a in (truth, pred_a, pred_b))
    if not truth.shape == pred_a.shape == pred_b.shape:
        raise ValueError("both variants must be scored on the same test images")
    right_a, right_b = pred_a == truth, pred_b == truth
    b, c, n = int((right_a & ~right_b).sum()), int((~right_a & right_b).sum()), int(truth.size)
    p = float(stats.binomtest(b, b + c, 0.5).pvalue) if b + c else 1.0
    diff = (c - b) / n
    se = math.sqrt(max(b + c - (c - b) ** 2 / n, 0.0)) / n
    z = float(stats.norm.ppf(1 - ALPHA / 2))
    return Paired(diff, diff - z * se, diff + z * se, p, b, c, n)


INTERVAL_COLUMNS = ("accuracy_lo", "accuracy_hi", "balanced_accuracy_lo", "balanced_accuracy_hi", "macro_f1_lo",
                    "macro_f1_hi")


def interval_columns(confusion: Sequence[Sequence[int]]) -> dict[str, float]:
    """The 95 % intervals of a variant's accuracy, balanced accuracy and macro F1, from its stored confusion
    matrix alone, as the flat columns a results table keeps (INTERVAL_COLUMNS)."""
    cm = np.asarray(confusion, dtype=np.int64)
    acc = accuracy_interval(int(np.trace(cm)), int(cm.sum()))
    cls = class_metric_intervals(cm)
    return {"accuracy_lo": acc.lo, "accuracy_hi": acc.hi,
            "balanced_accuracy_lo": cls["balanced_accuracy"].lo, "balanced_accuracy_hi": cls["balanced_accuracy"].hi,
            "macro_f1_lo": cls["macro_f1"].lo, "macro_f1_hi": cls["macro_f1"].hi}


def record_interval_columns(record) -> dict[str, float]:
    """A variant record's interval columns: those it stored at build (the bootstrap costs ~14 ms, so a
    rebuilt results index of thousands of entries does not redo it), else computed from its confusion matrix
    (entries built before intervals were stored get them without retraining)."""
    stored = record.intervals or {}
    return {c: float(stored[c]) for c in INTERVAL_COLUMNS} if all(c in stored for c in INTERVAL_COLUMNS) \
        else interval_columns(record.confusion)


def intervals_differ(a: Interval, b: Interval) -> bool:
    """Whether two intervals do not overlap (the test when no image-by-image predictions exist)."""
    return a.hi < b.lo or b.hi < a.lo
