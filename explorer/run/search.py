"""Auto-explore: a multi-objective Optuna study that fills the Pareto front within a budget.

Every trial is an ordinary cached variant built through the pipeline, so a trial whose stages are cached
costs seconds and a study resumed later reuses everything. The objectives are the converted model's
accuracy on the **validation** split (maximized; the test split stays for display, so the front is not
tuned on it) and its p50 latency on this host (minimized). Constraints on accuracy, p50 and size are
Optuna constraints: infeasible trials are kept and shown apart, never on the front. Studies live in
user_data/search.sqlite3 and resume by name. The sampler is multi-objective TPE, seeded: NSGA-II's first
generation (50 trials) is random, longer than most budgets here (benchmarks/search_hypervolume.py); a
random sampler is there as the baseline. The app starts a study as its own process (start), watches it
through the database (load); explorer.run.study_process starts and stops it, and explorer.run.search_space is the
space it explores.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import time
from dataclasses import dataclass
from concurrent.futures import FIRST_COMPLETED, Future, wait
from typing import Any, Callable, Mapping, NamedTuple, Protocol, Sequence

import numpy as np

from explorer.uncertainty import Interval, accuracy_interval, replicate_interval
from explorer.present.pareto import pareto_mask
from explorer.record import Latency, MemoryPlan, VariantRecord
from explorer.spec import VariantSpec
from explorer.store import paths
from explorer.store.cache import TFLITE, Store
from explorer.run import budget
from explorer.run.search_space import Space
from explorer.run.study_process import check_name, stop_requested
from explorer.run.keeper import Keeper, Plan, TrialStopped
from explorer.models.lever_errors import LeverError

log = logging.getLogger(__name__)


UNRUNNABLE = 1e9  # a RAM constraint's value for a model TensorFlow Lite Micro cannot run (or not planned)


@dataclass(frozen=True)
class Constraints:
    min_accuracy: float | None = None  # validation accuracy
    max_p50_us: float | None = None
    max_size_kb: float | None = None
    max_ram_kb: float | None = None  # planned peak RAM (TFLite Micro's arena): a model it cannot run never fits
    max_flash_kb: float | None = None

    def values(self, accuracy: float, p50_us: float, size_kb: float, memory: MemoryPlan | None = None
               ) -> dict[str, float]:
        """Optuna's form: one number per constraint set, <= 0 when it holds."""
        out = {}
        if self.min_accuracy is not None:
            out["accuracy"] = self.min_accuracy - accuracy
        if self.max_p50_us is not None:
            out["p50_us"] = p50_us - self.max_p50_us
        if self.max_size_kb is not None:
            out["size_kb"] = size_kb - self.max_size_kb
        if self.max_ram_kb is not None:
            fits = memory is not None and not memory.micro_blockers
            out["peak_ram_kb"] = memory.peak_ram_kb - self.max_ram_kb if fits else UNRUNNABLE
        if self.max_flash_kb is not None:
            out["flash_kb"] = size_kb - self.max_flash_kb  # the model's bytes are its flash
        return out


@dataclass(frozen=True)
class TrialResult:
    number: int
    key: str
    label: str
    val_accuracy: float
    test_accuracy: float
    p50_us: float
    size_kb: float
    feasible: bool
    trained: bool  # this trial trained a stage (else everything came from the cache)
    val_images: int | None = None  # the splits' sizes (None: a trial stored before they were kept)
    test_images: int | None = None
    val_seeds: tuple[float, ...] = ()  # each seed's accuracy when the trial was built with several (means above)
    test_seeds: tuple[float, ...] = ()
    peak_ram_kb: float = float("nan")  # planned (NaN: a trial stored before memory was planned)

    @property
    def seeds(self) -> int:
        return max(len(self.val_seeds), 1)

    @staticmethod
    def _interval(mean: float, per_seed: tuple[float, ...], images: int | None) -> Interval | None:
        if not images:
            return None
        binomial = accuracy_interval(round(mean * images), images)
        return replicate_interval(per_seed, binomial.half_width) if len(per_seed) > 1 else binomial

    @property
    def val_interval(self) -> Interval | None:
        """Validation accuracy with its 95 % interval (seeds' spread included): selection on a small split is
        optimistic."""
        return self._interval(self.val_accuracy, self.val_seeds, self.val_images)

    @property
    def test_interval(self) -> Interval | None:
        return self._interval(self.test_accuracy, self.test_seeds, self.test_images)


SAMPLERS = ("tpe", "random")
STARTUP = 6  # the sampler's own random trials before TPE models the space (Optuna's default is 10; a
# 10-minute search on Fashion-MNIST here finishes about 6 of its own, besides the guided ones)
GUIDED = "guided"  # the user attribute that marks a trial the search queued (a start, a trained trial's sibling)


def _own(study) -> int:
    """Finished trials the sampler picked itself (the queued, guided ones are not a random sample)."""
    import optuna

    done = study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))
    return sum(GUIDED not in t.user_attrs for t in done)


def make_sampler(name: str, seed: int):
    """TPE (the default) or random sampling, seeded. TPE models the space only after STARTUP trials of its
    own: the guided trials all share the base variant's values (its depth, width, no pruning), so a model
    built on them alone keeps proposing their neighbourhood."""
    import optuna

    class OwnStartupTPE(optuna.samplers.BaseSampler):
        def __init__(self):
            self.tpe = optuna.samplers.TPESampler(seed=seed, multivariate=True, n_startup_trials=0)
            self.random = optuna.samplers.RandomSampler(seed=seed)

        def _sampler(self, study):
            return self.random if _own(study) < STARTUP else self.tpe

        def infer_relative_search_space(self, study, trial):
            return self._sampler(study).infer_relative_search_space(study, trial)

        def sample_relative(self, study, trial, search_space):
            return self._sampler(study).sample_relative(study, trial, search_space)

        def sample_independent(self, study, trial, param_name, param_distribution):
            return self._sampler(study).sample_independent(study, trial, param_name, param_distribution)

        def before_trial(self, study, trial):
            self.tpe.before_trial(study, trial)

        def after_trial(self, study, trial, state, values):
            self.tpe.after_trial(study, trial, state, values)

        def reseed_rng(self):
            self.tpe.reseed_rng()
            self.random.reseed_rng()

    if name == "tpe":  # multivariate: the levers interact (a pruned int8 model is not two separate choices)
        return OwnStartupTPE()
    if name == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    raise ValueError(f"sampler {name!r}: choose one of {', '.join(SAMPLERS)}")


def storage_url() -> str:
    """The studies' SQLite database in the user-data folder (created on first use)."""
    paths.state_dir().mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{paths.state_dir() / 'search.sqlite3'}"


def validation_accuracy(store: Store, variant: VariantRecord) -> tuple[float, int]:
    """The converted model's accuracy on the validation split (what the search optimizes), and its size."""
    from explorer.models import sources
    from explorer.measure import measure

    data = sources.for_spec(variant.spec).data(variant.spec)
    model = store.file_path("variants", variant.key, TFLITE).read_bytes()
    return measure.evaluate(model, data.x_val, data.y_val, data.info.num_classes).accuracy, len(data.y_val)


def _result(trial) -> TrialResult:
    a = trial.user_attrs
    return TrialResult(trial.number, a["key"], a["label"], trial.values[0], a["test_accuracy"], trial.values[1],
                       a["size_kb"], all(c <= 0 for c in trial.constraints.values()), a["trained"],
                       a.get("val_images"), a.get("test_images"), tuple(a.get("val_seeds", ())),
                       tuple(a.get("test_seeds", ())), a.get("peak_ram_kb", float("nan")))


def results(study) -> list[TrialResult]:
    import optuna

    return [_result(t) for t in study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))]


def stopped_trials(study) -> list[Stopped]:
    """The trials the budget keeper skipped or stopped, with why (a proposal repeating a tried variant is not one)."""
    import optuna

    return [Stopped(t.number, t.user_attrs["label"], t.user_attrs["stopped"], t.user_attrs["why"])
            for t in study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.PRUNED,))
            if "stopped" in t.user_attrs]


def front(trials: list[TrialResult]) -> list[TrialResult]:
    """The feasible trials no other feasible trial beats on both validation accuracy and p50 (one per variant)."""
    unique = list({t.key: t for t in trials if t.feasible}.values())
    if not unique:
        return []
    mask = pareto_mask(np.array([t.p50_us for t in unique]), np.array([t.val_accuracy for t in unique]))
    return sorted((t for t, m in zip(unique, mask) if m), key=lambda t: t.p50_us)


class Builds(Protocol):
    """Where trials are built: submit() starts one and returns a future of its result; land() turns a
    finished result into the cached variant with this host's latency (always in this process, which owns
    the cache and the CPU the latency belongs to). parallelism: how many trials may be in flight."""

    parallelism: int
    where: str  # for people: "this process", "Ray cluster local (2 CPUs)"

    def submit(self, spec: VariantSpec, watch: Callable | None = None) -> Future:
        """watch: the build's progress callback, where it runs in this process (it may stop the build)."""

    def land(self, spec: VariantSpec, result: Any) -> tuple[VariantRecord, Any]: ...

    def cancel(self, future: Future) -> None: ...


class LocalBuilds:
    """Trials built one at a time in this process, through the pipeline (the default); submit() returns when the
    build is done, so there is nothing to cancel."""

    parallelism = 1
    where = "this process"

    def __init__(self, store: Store, **ensure_kwargs: Any):
        self.store, self.ensure_kwargs = store, ensure_kwargs

    def build(self, spec: VariantSpec, watch: Callable | None = None) -> tuple[VariantRecord, Any]:
        from explorer.run import pipeline

        return pipeline.ensure(spec, self.store, watch, **self.ensure_kwargs)

    def submit(self, spec: VariantSpec, watch: Callable | None = None) -> Future:
        done: Future = Future()
        try:
            done.set_result(self.build(spec, watch))
        except Exception as exc:
            done.set_exception(exc)
        return done

    def land(self, spec: VariantSpec, result: tuple[VariantRecord, Any]) -> tuple[VariantRecord, Any]:
        return result

    def cancel(self, future: Future) -> None:
        future.cancel()


@dataclass(frozen=True)
class SearchConfig:
    """What a study runs: its name, when it stops (trials, a budget, or both), what its trials must meet, and how
    it picks and scores them. Guided (the default), a new study starts from the known recipes (Space.starts) and
    a trained trial's siblings go next (Space.siblings: what its base makes cheap); unguided, the sampler alone picks (a baseline).
    With seeds > 1 every trial is built with that many seeds (its seed, +1, …; each an ordinary cached variant)
    and scored on their means: a study that compares small differences ranks less noise. Economizing (the
    default), trials the front dominates are not trained and hopeless ones stop early; the deadline is kept
    either way."""

    study_name: str
    trials: int | None = None
    budget_s: float | None = None
    constraints: Constraints = Constraints()
    sampler: str = "tpe"
    sampler_seed: int = 0
    guided: bool = True
    seeds: int = 1
    economize: bool = True  # skip trials the front dominates, stop hopeless ones (explorer.run.budget)

    def __post_init__(self) -> None:
        check_name(self.study_name)
        if self.trials is None and self.budget_s is None:
            raise ValueError("give a trial count, a time budget, or both")
        if self.trials is not None and self.trials < 1:
            raise ValueError(f"trials: at least 1, not {self.trials}")
        if self.budget_s is not None and not self.budget_s > 0:
            raise ValueError(f"budget: more than 0 seconds, not {self.budget_s}")
        if not 1 <= self.seeds <= 10:
            raise ValueError(f"seeds: build each trial with 1 to 10 seeds, not {self.seeds}")
        if self.sampler not in SAMPLERS:
            raise ValueError(f"sampler {self.sampler!r}: choose one of {', '.join(SAMPLERS)}")


class Stopped(NamedTuple):
    """A trial the budget keeper skipped before training or stopped during it (pruned in the study)."""

    number: int
    label: str
    kind: str  # "skipped" | "pruned"
    why: str


MAX_SKIPS_IN_A_ROW = 30  # proposals skipped one after another: nothing left is worth its time
MAX_UNFIT_IN_A_ROW = 5  # proposals in a row that fit the time left with none of their epochs: the end is near


class Replicate(NamedTuple):
    """One seed of a trial, landed: its cached variant, the build's report, and its validation accuracy."""

    variant: VariantRecord
    report: Any
    val_accuracy: float
    val_images: int


def run(space: Space, config: SearchConfig, *, store: Store | None = None, builds: Builds | None = None,
        target=None, on_trial: Callable[[TrialResult], None] | None = None,
        on_stopped: Callable[[Stopped], None] | None = None,
        should_stop: Callable[[], bool] | None = None) -> list[TrialResult]:
    """Run (or resume) the study until its trials, its budget, should_stop(), or every variant of the space has
    been tried; returns every finished trial of the study. A trial starts only if its predicted build time fits
    in the time left, and stops at an epoch's end when it would end past the deadline (explorer.run.keeper); a
    trial skipped or stopped stays in the study as pruned, saying why (on_stopped hears of it). A
    variant the study has tried is not tried again: when the sampler proposes one, an untried variant is queued
    in its place (samplers repeat themselves on a small space). With builds that run several trials at once (a
    Ray cluster), that many are in flight, each landing as it ends. With a measurement target
    (explorer.measure.targets), the latency objective is measured there."""
    import optuna

    store = store or Store()
    remote = target is not None and not target.is_local
    builds = builds or LocalBuilds(store, measure_missing=not remote)  # a target's latency is taken there
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(study_name=config.study_name, storage=storage_url(),
                                sampler=make_sampler(config.sampler, config.sampler_seed),
                                directions=["maximize", "minimize"], load_if_exists=True)
    began = time.monotonic()
    deadline = began + config.budget_s if config.budget_s is not None else math.inf
    run_attrs = {"started_at": time.time(), "budget_s": config.budget_s, "trials": config.trials,
                 "builds": builds.where, "parallelism": builds.parallelism}
    study.set_user_attr("run", run_attrs)
    keeper = Keeper(store, deadline, config.economize)
    plans: dict[int, Plan] = {}
    skips_in_a_row = unfit_in_a_row = 0
    started = 0
    if config.guided and not study.trials:
        for params in space.starts():
            study.enqueue_trial(params, user_attrs={GUIDED: "start"})
    tried = {t.key for t in results(study)}  # finished, and (below) in flight
    later: list[tuple[int, dict[str, Any]]] = []  # trained trials' siblings, cheapest first: (fine-tunes, params)

    def queue_siblings(params: Mapping[str, Any]) -> None:
        """Queued after what the study has queued (its starts, a trial fitted to the time left), before the sampler."""
        if config.guided:
            later.extend((space.fine_tunes(p, params), p) for p in space.siblings(params, tried)
                         if p not in (q for _, q in later))
            later.sort(key=lambda cost_params: cost_params[0])

    def next_sibling() -> None:
        later[:] = [(cost, p) for cost, p in later if space.spec(p).key() not in tried]
        if later and not study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.WAITING,)):
            trials = study.get_trials(deepcopy=False)
            ahead = {space.spec(trials[t.number].params).base_key() for t in front(results(study))}
            pick = space.next_sibling([p for _, p in later], ahead)
            study.enqueue_trial(later.pop(pick)[1], user_attrs={GUIDED: "sibling"})

    for earlier in study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,)):
        if earlier.user_attrs.get("trained"):  # a resumed study picks up its trained trials' untried siblings
            queue_siblings(earlier.params)
    rng = np.random.default_rng(config.sampler_seed)
    pending: dict[Future, tuple[Any, VariantSpec]] = {}  # one build (a trial's seed) in flight each
    landed: dict[int, list[Replicate]] = {}  # trial number -> its seeds so far

    def may_start() -> bool:  # asked in-process, by the app (a flag file), or nothing new is left to try
        stop = bool(should_stop and should_stop()) or stop_requested(config.study_name) or len(tried) >= space.size
        return (not stop and (config.trials is None or started < config.trials) and time.monotonic() < deadline
                and skips_in_a_row < MAX_SKIPS_IN_A_ROW and unfit_in_a_row < MAX_UNFIT_IN_A_ROW)

    def stopped(trial, spec: VariantSpec, kind: str, why: str, epoch: int | None = None,
                partial: float | None = None) -> None:
        """A trial skipped before training or stopped during it: pruned in the study, with why."""
        attrs = {"key": spec.key(), "label": spec.label(), "stopped": kind, "why": why}
        attrs |= {"epoch": epoch, "partial_val_accuracy": partial} if epoch is not None else {}
        for name, value in attrs.items():
            trial.set_user_attr(name, value)
        study.tell(trial, state=optuna.trial.TrialState.PRUNED)
        if on_stopped:
            on_stopped(Stopped(trial.number, spec.label(), kind, why))

    try:
        while True:
            while len(pending) < builds.parallelism and may_start():
                next_sibling()
                trial = study.ask()
                spec = space.suggest(trial)
                if spec.key() in tried:  # the sampler proposed a variant this study has: try an untried one instead
                    study.tell(trial, state=optuna.trial.TrialState.PRUNED)
                    fresh = space.untried(tried, rng)
                    if fresh is not None:
                        study.enqueue_trial(fresh)
                    continue
                tried.add(spec.key())
                plan = keeper.plan(spec)
                if plan.skip:
                    skips_in_a_row += 1
                    shorter = space.shorter(trial.params, tried, keeper.fits) if plan.too_long else None
                    unfit_in_a_row = unfit_in_a_row + 1 if plan.too_long and shorter is None else 0
                    if shorter is not None:  # the same trial with as many epochs as fit in the time left
                        study.enqueue_trial(shorter, user_attrs={GUIDED: "fitted to the time left"})
                    stopped(trial, spec, "skipped", plan.skip + (f"; it is tried with {shorter['epochs']} epochs "
                                                                 "instead" if shorter else ""))
                    continue
                skips_in_a_row, unfit_in_a_row, plans[trial.number] = 0, 0, plan
                started += 1
                landed[trial.number] = []
                for i in range(config.seeds):
                    replicate = spec.replace(seed=spec.seed + i)
                    pending[builds.submit(replicate, keeper.watch(replicate, plan))] = (trial, replicate)
            if not pending:
                break
            finished, _ = wait(pending, timeout=_until(deadline), return_when=FIRST_COMPLETED)
            if not finished:  # the deadline, with builds running elsewhere: they stop now
                for future, (trial, spec) in list(pending.items()):
                    builds.cancel(future)
                    pending.pop(future)
                    if landed.pop(trial.number, None) is not None:
                        stopped(trial, spec, "pruned", "stopped at the deadline")
                continue
            for future in finished:
                trial, spec = pending.pop(future)
                if trial.number not in landed:  # another seed of this trial failed: it is told already
                    continue
                try:
                    variant, report = builds.land(spec, future.result())
                    landed[trial.number].append(Replicate(variant, report, *validation_accuracy(store, variant)))
                except TrialStopped as stop:
                    del landed[trial.number]
                    stopped(trial, spec, "pruned", stop.why, stop.epoch, stop.val_accuracy)
                    continue
                except LeverError as exc:  # a lever this network cannot take: the trial fails, the search goes on
                    del landed[trial.number]
                    _lever_failed(study, trial, spec, exc)
                    continue
                except Exception:
                    del landed[trial.number]
                    study.tell(trial, state=optuna.trial.TrialState.FAIL)
                    raise
                if len(landed[trial.number]) < config.seeds:
                    continue
                replicates = sorted(landed.pop(trial.number), key=lambda r: r.variant.spec.seed)
                variant = replicates[0].variant  # the trial's own seed names it
                accuracy = float(np.mean([r.val_accuracy for r in replicates]))
                test_accuracy = float(np.mean([r.variant.accuracy for r in replicates]))
                p50 = float(np.mean([_latency(store, r.variant, target if remote else None).p50_us for r in replicates]))
                trained = any(getattr(r.report, "trained", False) for r in replicates)
                attrs = {"key": variant.key, "label": variant.label, "test_accuracy": test_accuracy,
                         "size_kb": variant.size_kb, "peak_ram_kb": variant.peak_ram_kb, "trained": trained,
                         "val_images": replicates[0].val_images, "test_images": variant.test_images}
                if config.seeds > 1:
                    attrs |= {"val_seeds": [r.val_accuracy for r in replicates],
                              "test_seeds": [r.variant.accuracy for r in replicates]}
                for name, value in attrs.items():
                    trial.set_user_attr(name, value)
                for name, value in config.constraints.values(accuracy, p50, variant.size_kb, variant.memory).items():
                    trial.set_constraint(name, value)
                study.tell(trial, [accuracy, p50])
                for r in replicates:
                    keeper.built(r.variant, r.report.seconds)
                keeper.landed(spec, plans.pop(trial.number), variant, accuracy, p50,
                              [budget.Point(t.label, t.val_accuracy, t.p50_us) for t in front(results(study))])
                if trained:
                    queue_siblings(trial.params)
                if on_trial:
                    on_trial(_result(study.trials[trial.number]))
    finally:  # a failure or an interrupt: trials still in flight end as failed, never as running forever
        for future, (trial, _) in pending.items():
            builds.cancel(future)
            study.tell(trial, state=optuna.trial.TrialState.FAIL)
        study.set_user_attr("run", {**run_attrs, "wall_s": time.monotonic() - began})
    return results(study)


def _lever_failed(study, trial, spec: VariantSpec, exc: LeverError) -> None:
    """A trial whose lever the network cannot take: failed, its sentence kept on the trial and said in the log."""
    import optuna

    trial.set_user_attr("failed", str(exc))
    study.tell(trial, state=optuna.trial.TrialState.FAIL)
    log.warning("trial %d (%s): %s", trial.number, spec.label(), exc)


def _until(deadline: float) -> float | None:
    """Seconds to wait for a build before the deadline (None: no deadline)."""
    return None if deadline == math.inf else max(0.0, deadline - time.monotonic())


def _latency(store: Store, variant: VariantRecord, target) -> Latency:
    """The variant's latency here, or on the target (measured there unless it has its record)."""
    if target is None:
        return variant.latency
    from explorer.run import pipeline

    found = store.read_latency(variant.key, target.host.id)
    return Latency.from_dict(found) if found else pipeline.measure_latency(store, variant, target=target)


@dataclass(frozen=True)
class StudyView:
    """A stored study as the app shows it: its finished trials and its latest run (None before one)."""

    trials: list[TrialResult]
    run: Mapping[str, Any] | None = None  # started_at (epoch s), budget_s, trials, builds, parallelism; wall_s
    stopped: list[Stopped] = dataclasses.field(default_factory=list)  # skipped or pruned by the budget keeper

    def seconds_left(self, now: float | None = None) -> float | None:
        """Of the latest run's budget (None: no budget); a trial started in time still finishes after it."""
        if not self.run or self.run.get("budget_s") is None:
            return None
        return max(0.0, self.run["started_at"] + self.run["budget_s"] - (time.time() if now is None else now))


def load(study_name: str) -> StudyView:
    """A stored study's finished trials and latest run (no trials if there is no such study yet)."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    try:
        study = optuna.load_study(study_name=study_name, storage=storage_url())
    except KeyError:  # no such study (yet)
        return StudyView([])
    return StudyView(results(study), study.user_attrs.get("run"), stopped_trials(study))


def studies() -> list[str]:
    import optuna

    return sorted(s.study_name for s in optuna.get_all_study_summaries(storage_url()))
