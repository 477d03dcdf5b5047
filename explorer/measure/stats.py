"""Pure statistics over measurements: latency percentiles and their interval, per-class accuracy, confusion
matrices (scikit-learn's). Accuracy's uncertainty is explorer.uncertainty's."""

from __future__ import annotations

import numpy as np

from explorer.uncertainty import t_quantile
from explorer.record import LatencyStats


def summarize_latency(samples_us: np.ndarray | list[float]) -> LatencyStats:
    """Percentiles by linear interpolation over the kept samples (no outlier trimming: p99 is the tail)."""
    arr = np.asarray(samples_us, dtype=np.float64)
    if arr.size == 0 or not np.all(np.isfinite(arr)) or np.any(arr < 0):
        raise ValueError("latency samples must be a non-empty list of non-negative numbers")
    p50, p90, p99 = np.percentile(arr, [50, 90, 99])
    return LatencyStats(float(p50), float(p90), float(p99), float(arr.mean()), float(arr.min()), int(arr.size))


def confusion_matrix(y_true: np.ndarray, y_pred: np.ndarray, num_classes: int) -> np.ndarray:
    """Rows are true classes, columns predicted classes (scikit-learn's, every class listed)."""
    from sklearn.metrics import confusion_matrix as sk_confusion

    return sk_confusion(np.asarray(y_true, dtype=np.int64), np.asarray(y_pred, dtype=np.int64),
                        labels=np.arange(num_classes)).astype(np.int64)


def per_class_accuracy(cm: np.ndarray) -> np.ndarray:
    """Recall of each class; NaN for a class absent from the test split."""
    support = cm.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(support > 0, np.diag(cm) / np.maximum(support, 1), np.nan)


# Relative standard deviation of a p50 between measurement runs of one model minutes apart, beyond what
# one run's blocks show (drift: a VM's neighbours, clock speed). Measured on the development host (AMD EPYC,
# 2 cores, a VM): 0.4-1.5 % over three sets of 3 runs of 3 shipped models; `make bench` re-measures it.
RUN_TO_RUN = 0.015


def blocks_interval(block_p50s: list[float], p50: float, run_to_run: float = RUN_TO_RUN) -> tuple[float, float]:
    """95 % confidence interval of p50: Student's t over independent blocks' medians, combined in
    quadrature with the run-to-run term, and widened to hold p50 itself.

    Each block runs in its own process, so the interval carries the process-to-process variation that
    the order statistics of one process's samples cannot see (they gave intervals of ±0.01 µs that
    missed a re-measurement by 2-3 %); the run-to-run term covers drift between runs minutes apart,
    which no single run can see.
    """
    arr = np.asarray(block_p50s, dtype=np.float64)
    if arr.size < 2:
        raise ValueError("need at least two blocks")
    t = t_quantile(arr.size - 1)
    mid = float(arr.mean())
    half = float(np.hypot(t * arr.std(ddof=1) / np.sqrt(arr.size), 1.96 * run_to_run * mid))
    return min(mid - half, p50), max(mid + half, p50)


BURST = 0.05  # a block at least this much slower than the blocks' median (and beyond their scatter) is a burst


def outlying_blocks(block_p50s: list[float]) -> list[bool]:
    """Per block, whether its p50 is a burst: slower than the blocks' median by more than BURST and by more
    than 4 scaled median absolute deviations. Another process waking on the measuring core makes a whole
    block about 2x slower while every other block agrees; Student's t over all blocks would then widen
    the interval around a median that every clean block agreed on. Only slow blocks can be bursts, and
    fewer than half of them can be (the median is a clean block's)."""
    arr = np.asarray(block_p50s, dtype=np.float64)
    if arr.size < 3:
        return [False] * int(arr.size)
    mid = float(np.median(arr))
    mad = 1.4826 * float(np.median(np.abs(arr - mid)))
    return [bool(v - mid > max(BURST * mid, 4 * mad)) for v in arr]


def block_spread(block_p50s: list[float]) -> float:
    """How far the blocks' medians disagree, relative to their median: (max - min) / median."""
    arr = np.asarray(block_p50s, dtype=np.float64)
    if arr.size == 0:
        raise ValueError("no blocks")
    mid = float(np.median(arr))
    return float((arr.max() - arr.min()) / mid) if mid > 0 else 0.0
