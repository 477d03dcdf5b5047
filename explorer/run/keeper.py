"""The search's keeper of its budget: the rules of explorer.run.budget, fed with what this search knows.

Before a trial: its training work (what the cache lacks of it), the build time that predicts on this host, and,
for a trial that trains, its latency: a finished trial's that differs only in training, else the preview's (the
untrained model timed here).
During it: each epoch's validation accuracy, checked against the front and the deadline. After it: its build
time, its training curve, its accuracy. Known from the start: every variant of the cache built on this host
(its build seconds and base training curve) and the study's finished trials.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Callable

from explorer.uncertainty import accuracy_interval
from explorer.run import budget
from explorer.data.datasets import DatasetError
from explorer.spec import FAMILY_FIELDS, TUNE_STAGES, SpecError, VariantSpec
from explorer.store.cache import Store

ARCHITECTURE = (*FAMILY_FIELDS, "dataset", "image_size", "colour", "model")


class TrialStopped(Exception):
    """A trial stopped at an epoch's end; nothing of its variant is kept."""

    def __init__(self, why: str, epoch: int | None = None, val_accuracy: float | None = None):
        super().__init__(why)
        self.why, self.epoch, self.val_accuracy = why, epoch, val_accuracy


@dataclass(frozen=True)
class Plan:
    """What the keeper knows of a trial before it starts."""

    work: float  # training work left (0: it only converts)
    epochs: int  # epochs left to train
    predicted_s: float | None  # its build time on this host, with the margin (None: nothing comparable timed yet)
    p50_us: float | None  # its latency from the preview (None: not previewed: it trains nothing)
    skip: str | None = None  # why it is not started
    too_long: bool = False  # skipped because its build would not fit in the time left
    units: tuple[float, float] = (0.0, 0.0)  # work of an epoch of base training, of a fine-tune (0: not known)


def build_seconds(seconds: dict) -> float:
    """A build's seconds, but the latency measurement (not part of building)."""
    return sum(s for stage, s in seconds.items() if stage != "measure")


def _architecture(spec: VariantSpec) -> tuple:
    return tuple(getattr(spec, name) for name in ARCHITECTURE)


def _speed(spec: VariantSpec) -> tuple:
    """What a variant's latency depends on: its architecture and how it is converted, not how it was trained."""
    return (*_architecture(spec), spec.quant, spec.precision, spec.sparsity, spec.clusters)


class Keeper:
    """One search run's budget rules. economize=False keeps the deadline only (no skipping, no pruning)."""

    def __init__(self, store: Store, deadline: float, economize: bool = True,
                 preview: Callable[[VariantSpec], float] | None = None, clock: Callable[[], float] = time.monotonic):
        from explorer import record
        from explorer.measure import host

        self.store, self.deadline, self.economize, self.clock = store, deadline, economize, clock
        self.preview = preview or _preview
        self.times = budget.BuildTimes()
        self.curves: list[tuple[int, list[float]]] = []  # (base epochs planned, validation accuracy per epoch)
        self.best: dict[tuple, list[tuple[int, float]]] = {}  # architecture -> (epochs, validation accuracy)
        self.front: list[budget.Point] = []
        self.p50: dict[tuple, float] = {}  # _speed -> p50 measured here: a trial's latency without a preview
        found, _ = record.load_all(store, host.current().id, foreign=False)
        for v in found:
            try:
                if v.built_on.get("id") == host.current().id and v.build_seconds:
                    self.built(v, v.build_seconds)
                if "train" in v.build_seconds and v.history.get("base", {}).get("val_accuracy"):
                    self._add_curve(v.spec, v.history["base"]["val_accuracy"])
            except (DatasetError, SpecError):  # its dataset or model is gone: its time says nothing here
                continue

    @staticmethod
    def _train_images(spec: VariantSpec) -> int:
        from explorer.data import datasets

        return datasets.split_sizes(spec.dataset)[0]

    @staticmethod
    def _macs(spec: VariantSpec) -> int | None:
        """The network's MACs per image, from the family's plan (None for another source: not predicted)."""
        if spec.model:
            return None
        from explorer.data import datasets
        from explorer.models import architecture

        info = datasets.info_for(spec)
        return architecture.total_macs(architecture.plan(spec, info.input_shape, info.num_classes))

    def _add_curve(self, spec: VariantSpec, val_accuracy: list[float]) -> None:
        self.curves.append((spec.base_epochs(self._train_images(spec)), list(val_accuracy)))

    def _curves(self, epochs: int) -> list[list[float]]:
        """The training curves of trials planned for at least this many base epochs: what a shorter one gained
        after an epoch says little of a longer one (batch norm and dropout learn slower at first)."""
        return [curve for planned, curve in self.curves if planned >= epochs]

    def _epochs_left(self, spec: VariantSpec) -> tuple[int, int]:
        """Epochs left of base training and of fine-tunes."""
        base = 0 if self.store.has("base", spec.base_key()) else spec.base_epochs(self._train_images(spec))
        tuned_cached = self.store.has("tuned", spec.tuned_key()) if spec.is_tuned else False
        left = [stage for stage in spec.fine_tunes() if stage == "qat" or not tuned_cached]
        return base, spec.tune_epochs * len(left)

    def built(self, variant, seconds: dict) -> None:
        """Time a build of this variant on this host: the epochs its stages trained (its base's as its history
        says: patience may have ended it early), their work and seconds, and the rest but measuring."""
        base_epochs = len(variant.history.get("base", {}).get("val_accuracy", [])) if "train" in seconds else 0
        tune_epochs = variant.spec.tune_epochs * sum(stage in seconds for stage in TUNE_STAGES)
        train_s = sum(seconds.get(stage, 0.0) for stage in ("train", *TUNE_STAGES))
        base_unit, tune_unit = self._units(variant.spec, variant.macs)
        self.times.add(budget.Timed(base_epochs + tune_epochs, base_epochs * base_unit + tune_epochs * tune_unit,
                                    train_s, build_seconds(seconds) - train_s))

    def spread(self, spec: VariantSpec) -> float:
        """The seed spread allowed for: the 95 % half-width of an accuracy near 0.9 on the validation split."""
        from explorer.data import datasets

        n = datasets.split_sizes(spec.dataset)[1]
        return accuracy_interval(round(0.9 * n), n).half_width

    def _units(self, spec: VariantSpec, macs: int | None) -> tuple[float, float]:
        """Work of an epoch of base training and of a fine-tune: a channel-pruned variant's base trains the full
        width, its fine-tunes the narrowed network (macs: the variant's MACs per image; None: not known, 0)."""
        if macs is None:
            return 0.0, 0.0
        images = self._train_images(spec)
        base_macs = self._macs(spec.replace(channels=0.0)) if spec.channels else macs
        return budget.work(base_macs or macs, images, 1), budget.work(macs, images, 1)

    def _cost(self, spec: VariantSpec) -> tuple[int, float, float | None, tuple[float, float]]:
        """Epochs left to train, their work, the predicted build seconds (None: not predicted) and the work of an
        epoch of base training and of a fine-tune."""
        base_epochs, tune_epochs = self._epochs_left(spec)
        epochs, macs = base_epochs + tune_epochs, self._macs(spec)
        units = self._units(spec, macs)
        work = base_epochs * units[0] + tune_epochs * units[1]
        return epochs, work, self.times.predict(work, epochs) if (macs is not None or not epochs) else None, units

    def fits(self, spec: VariantSpec) -> bool:
        """Whether the trial's predicted build fits in the time left (an unpredicted one may start)."""
        predicted = self._cost(spec)[2]
        return predicted is None or predicted <= self.deadline - self.clock()

    def plan(self, spec: VariantSpec) -> Plan:
        """Whether to start a trial, and what is known of it."""
        epochs, work, predicted, units = self._cost(spec)
        left = self.deadline - self.clock()
        if predicted is not None and predicted > left:
            return Plan(work, epochs, predicted, None, f"its build would take about {predicted:.0f} s; "
                                                       f"{max(left, 0):.0f} s are left", too_long=True, units=units)
        known = [acc for e, acc in self.best.get(_architecture(spec), []) if e >= spec.epochs]
        top = max((p.val_accuracy for p in self.front), default=None)  # reaching it, no front point dominates it
        beatable = bool(known) and top is not None and max(known) + self.spread(spec) < top  # the dominated rule
        curves = (len(self._curves(spec.base_epochs(self._train_images(spec)))) >= 2  # the hopeless rule
                  and not self.store.has("base", spec.base_key()))
        if not epochs or not self.economize or not (beatable or curves):  # judges base training only
            return Plan(work, epochs, predicted, None, units=units)  # no rule could judge it: no preview spent on it
        p50 = self.p50.get(_speed(spec)) or self.preview(spec)
        why = budget.dominated(p50, max(known) if known else None, self.spread(spec), self.front)
        return Plan(work, epochs, predicted, p50, why, units=units)

    def watch(self, spec: VariantSpec, plan: Plan) -> Callable:
        """The trial's progress callback: at an epoch's end, stops it when it would end past the deadline (its
        epochs left at its slowest epoch's pace, then finishing), or (economizing) when it can no longer reach
        the front."""
        seconds: list[float] = []
        done = 0.0  # the work of the epochs timed in seconds
        spread = self.spread(spec)
        finish = self.times.predict(0, 0) or budget.MARGIN_S * 2

        def stop(why: str, p) -> TrialStopped:
            if done:  # what its epochs took teaches the next prediction
                self.times.add(budget.Timed(len(seconds), done, sum(seconds)))
            return TrialStopped(why, p.epoch, p.val_accuracy)

        def check(p) -> None:
            nonlocal done
            if p.epoch is None:
                return
            seconds.append(p.epoch_seconds or 0.0)
            done += plan.units[0] if p.stage == "train" else plan.units[1]
            left = max(plan.epochs - len(seconds), (p.epochs or p.epoch) - p.epoch)
            end = budget.projected_end(self.clock(), seconds, left, finish)
            if end > self.deadline:
                raise stop(f"stopped after epoch {p.epoch} of {p.stage}: with {left} epochs left it would end about "
                           f"{end - self.deadline:.0f} s past the deadline", p)
            if self.economize and p.stage == "train" and plan.p50_us is not None:
                why = budget.hopeless(p.epoch, p.val_accuracy, plan.p50_us, self._curves(p.epochs or p.epoch), spread,
                                      self.front)
                if why:
                    raise stop(f"pruned {why}", p)

        return check

    def landed(self, spec: VariantSpec, plan: Plan, variant, val_accuracy: float, p50_us: float,
               front: list[budget.Point]) -> None:
        """What a finished trial teaches (its seeds' build times are told by built()): its training curve, its
        architecture's accuracy, its latency, the front."""
        if plan.work and variant.history.get("base", {}).get("val_accuracy"):
            self._add_curve(spec, variant.history["base"]["val_accuracy"])
        self.best.setdefault(_architecture(spec), []).append((spec.epochs, val_accuracy))
        self.p50[_speed(spec)] = p50_us
        self.front = front


def _preview(spec: VariantSpec) -> float:
    from explorer.run import preview

    return preview.ensure(spec)[0].latency.p50_us
