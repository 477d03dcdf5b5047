"""Pure statistics over measurements: latency percentiles, per-class accuracy, confusion matrices."""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np


@dataclass(frozen=True)
class LatencyStats:
    """Batch-1 latency summary in microseconds, from per-run samples."""

    p50_us: float
    p90_us: float
    p99_us: float
    mean_us: float
    min_us: float
    runs: int

    def to_dict(self) -> dict:
        return asdict(self)


def summarize_latency(samples_us: np.ndarray | list[float]) -> LatencyStats:
    """Percentiles by linear interpolation over the kept samples (no outlier trimming: p99 is the tail)."""
    arr = np.asarray(samples_us, dtype=np.float64)
    if arr.size == 0 or not np.all(np.isfinite(arr)) or np.any(arr < 0):
        raise ValueError("latency samples must be a non-empty list of non-negative numbers")
    p50, p90, p99 = np.percentile(arr, [50, 90, 99])
    return LatencyStats(float(p50), float(p90), float(p99), float(arr.mean()), float(arr.min()), int(arr.size))


def confusion_matrix(y_true: np.ndarray, y_pred: np.ndarray, num_classes: int) -> np.ndarray:
    """Rows are true classes, columns predicted classes."""
    cm = np.zeros((num_classes, num_classes), dtype=np.int64)
    np.add.at(cm, (np.asarray(y_true, dtype=np.int64), np.asarray(y_pred, dtype=np.int64)), 1)
    return cm


def per_class_accuracy(cm: np.ndarray) -> np.ndarray:
    """Recall of each class; NaN for a class absent from the test split."""
    support = cm.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(support > 0, np.diag(cm) / np.maximum(support, 1), np.nan)


def median_interval(samples_us: np.ndarray | list[float], z: float = 1.959964) -> tuple[float, float]:
    """95 % confidence interval of the median from order statistics (distribution-free).

    The rank of the sample median is binomial(n, 1/2); its normal approximation gives the ranks
    n/2 ± z·√n/2, good for the hundreds of samples a measurement keeps.
    """
    arr = np.sort(np.asarray(samples_us, dtype=np.float64))
    n = arr.size
    if n == 0:
        raise ValueError("no samples")
    half = z * np.sqrt(n) / 2
    lo = max(int(np.floor(n / 2 - half)), 0)
    hi = min(int(np.ceil(n / 2 + half)), n - 1)
    return float(arr[lo]), float(arr[hi])


def block_spread(block_p50s: list[float]) -> float:
    """How far the blocks' medians disagree, relative to their median: (max - min) / median."""
    arr = np.asarray(block_p50s, dtype=np.float64)
    if arr.size == 0:
        raise ValueError("no blocks")
    mid = float(np.median(arr))
    return float((arr.max() - arr.min()) / mid) if mid > 0 else 0.0
