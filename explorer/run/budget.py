"""What a search spends its time on: which trials fit the time left, which are not worth training, which are not
worth finishing. Pure: no TensorFlow, no Optuna; explorer.run.search asks it before and during each trial.

- **Build time** is predicted from builds already timed on this host: training seconds per unit of work (MACs
  per image x training images x epochs), the upper quartile of past builds' rates (batch norm or same padding
  cost more per MAC than plain layers), times a margin; a build that only converts costs what past conversions
  cost. A trial starts only if its prediction fits in the time left.
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
    """A build timed on this host: its training work (0: it only converted) and its seconds."""

    work: float
    seconds: float


def _upper_quartile(values: Sequence[float]) -> float:
    return statistics.quantiles(values, n=4, method="inclusive")[2] if len(values) > 1 else values[0]


def work(macs: int, train_images: int, epochs: int) -> float:
    """A build's training work: multiply-accumulates per image x images x epochs (0 when nothing is trained)."""
    return float(macs) * train_images * epochs


@dataclass
class BuildTimes:
    """Predicted build seconds from the builds timed so far on this host."""

    timed: list[Timed] = field(default_factory=list)

    def add(self, work_done: float, seconds: float) -> None:
        self.timed.append(Timed(work_done, seconds))

    def predict(self, work_to_do: float) -> float | None:
        """Seconds a build of this work is expected to take, with the margin; None before any comparable
        build was timed (a trained one for training work, a conversion for none)."""
        convert = [t.seconds for t in self.timed if t.work == 0]
        rates = [t.seconds / t.work for t in self.timed if t.work > 0]
        if work_to_do == 0:
            return statistics.median(convert) * MARGIN + MARGIN_S if convert else None
        if not rates:
            return None
        return _upper_quartile(rates) * work_to_do * MARGIN + MARGIN_S


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
