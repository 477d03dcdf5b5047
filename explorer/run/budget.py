"""What a search spends its time on: which trials fit the time left, which are not worth training, which are not
worth finishing. Pure: no TensorFlow, no Optuna; explorer.run.search asks it before and during each trial.

- **Build time** is predicted from builds already timed on this host: an epoch costs a fixed share (steps,
  callbacks, validation) plus one proportional to its work (MACs per image x training images), a line fitted to
  past epochs and raised to cover the upper quartile of them (batch norm or same padding cost more per MAC than
  plain layers); then loading, converting and evaluating cost what they cost past builds; all times a margin.
  A line through the origin made a small network's fixed share look like work, and a larger one's build several
  times too long. A trial starts only if its prediction fits in the time left.
- **Dominated**: the preview gives a trial's latency before it is trained. Where the front already holds a
  variant at most as slow, more accurate than the trial's architecture has ever been (its best validation
  accuracy so far, plus the spread of seeds), training it cannot put it on the front: it is skipped.
- **Hopeless**: after each epoch, a trial's validation accuracy plus the most any earlier trial gained after
  that epoch, plus the seed spread, must still reach the front's accuracy at its latency; otherwise it is
  stopped there (and kept in the study as pruned, never as a variant).
- **The deadline**: after each epoch, a trial's end is projected from its epochs so far (the slowest, times the
  epochs left, plus converting); one that would end past the deadline stops at this epoch's boundary, rather
  than spend the time left on a variant that cannot be finished.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass, field
from typing import Sequence

MARGIN = 1.25  # predicted seconds are padded by this share …
MARGIN_S = 2.0  # … and this many seconds (loading, conversion jitter)


@dataclass(frozen=True)
class Timed:
    """A build timed on this host: the epochs it trained, their work and seconds, and the seconds of the rest
    (loading, converting, evaluating; None: it stopped before)."""

    epochs: int
    work: float
    train_s: float
    rest_s: float | None = None


def _upper_quartile(values: Sequence[float]) -> float:
    return statistics.quantiles(values, n=4, method="inclusive")[2] if len(values) > 1 else values[0]


def work(macs: int, train_images: int, epochs: int) -> float:
    """A build's training work: multiply-accumulates per image x images x epochs (0 when nothing is trained)."""
    return float(macs) * train_images * epochs


def _line(xs: Sequence[float], ys: Sequence[float]) -> tuple[float, float]:
    """(fixed, per unit) of seconds per epoch: least squares where the epochs' work spans at least 2x and the
    line rises from a fixed share of at least 0; else through the origin (too little spread to tell them apart)."""
    if min(xs) > 0 and max(xs) >= 2 * min(xs):
        slope, intercept = statistics.linear_regression(xs, ys)
        if slope > 0 and intercept >= 0:
            return intercept, slope
    return 0.0, statistics.linear_regression(xs, ys, proportional=True).slope if len(xs) > 1 else ys[0] / xs[0]


@dataclass
class BuildTimes:
    """Predicted build seconds from the builds timed so far on this host."""

    timed: list[Timed] = field(default_factory=list)

    def add(self, timed: Timed) -> None:
        self.timed.append(timed)

    def epoch_seconds(self, unit: float) -> float | None:
        """Seconds of an epoch of this work, from the epochs timed so far (None before any)."""
        points = [(t.work / t.epochs, t.train_s / t.epochs) for t in self.timed if t.epochs and t.work > 0]
        if not points:
            return None
        fixed, per_unit = _line(*zip(*points))
        above = _upper_quartile([y / (fixed + per_unit * x) for x, y in points])
        return (fixed + per_unit * unit) * above

    def predict(self, work_to_do: float, epochs: int) -> float | None:
        """Seconds a build of these epochs and their work is expected to take, with the margin; None before a
        comparable build was timed (an epoch for training, a finished build for the rest)."""
        rest = [t.rest_s for t in self.timed if t.rest_s is not None]
        if not epochs:
            return statistics.median(rest) * MARGIN + MARGIN_S if rest else None
        per_epoch = self.epoch_seconds(work_to_do / epochs)
        if per_epoch is None:
            return None
        return (per_epoch * epochs + (statistics.median(rest) if rest else 0.0)) * MARGIN + MARGIN_S


@dataclass(frozen=True)
class Point:
    """A finished trial as the rules see it: validation accuracy and p50 on this host."""

    label: str
    val_accuracy: float
    p50_us: float


def best_at(front: Sequence[Point], p50_us: float) -> Point | None:
    """The most accurate front point at most as slow as p50_us (what a variant that fast must beat)."""
    faster = [p for p in front if p.p50_us <= p50_us]
    return max(faster, key=lambda p: p.val_accuracy) if faster else None


def dominated(p50_us: float, best_known: float | None, spread: float, front: Sequence[Point]) -> str | None:
    """Why training a trial of this latency cannot reach the front (None: it may): its architecture's best
    validation accuracy so far plus the seed spread is below a front point that is at most as slow."""
    if best_known is None:  # an architecture not tried yet: nothing says it cannot
        return None
    rival = best_at(front, p50_us)
    if rival is None or rival.val_accuracy <= best_known + spread:
        return None
    return (f"the front holds {rival.label} at {rival.p50_us:.1f} µs (not slower than its {p50_us:.1f} µs) with "
            f"validation accuracy {rival.val_accuracy:.4f}, above the {best_known:.4f} its architecture reached at best "
            f"(+{spread:.4f} for seeds)")


def most_gained_after(curves: Sequence[Sequence[float]], epoch: int) -> float | None:
    """The most validation accuracy any earlier trial gained after this epoch (1-based) to its best; None before
    two trials trained past it."""
    gains = [max(c) - c[epoch - 1] for c in curves if len(c) > epoch]
    return max(gains) if len(gains) >= 2 else None


def hopeless(epoch: int, val_accuracy: float, p50_us: float, curves: Sequence[Sequence[float]], spread: float,
             front: Sequence[Point]) -> str | None:
    """Why a trial at this epoch cannot reach the front any more (None: it may)."""
    gain = most_gained_after(curves, epoch)
    rival = best_at(front, p50_us)
    if gain is None or rival is None or val_accuracy + gain + spread >= rival.val_accuracy:
        return None
    return (f"at epoch {epoch} its validation accuracy is {val_accuracy:.4f}; with the most any earlier trial gained "
            f"after epoch {epoch} (+{gain:.4f}) and the seed spread (+{spread:.4f}) it stays below {rival.label}'s "
            f"{rival.val_accuracy:.4f} at {rival.p50_us:.1f} µs")


def projected_end(now: float, epoch_seconds: Sequence[float], epochs_left: int, finish_s: float) -> float:
    """When a running trial would end: its epochs left, each as long as its slowest so far, then finishing
    (converting, evaluating, timing)."""
    return now + max(epoch_seconds, default=0.0) * epochs_left + finish_s
