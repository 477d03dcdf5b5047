"""Search vs random search vs the default grid, at equal wall time (issue #14), on Fashion-MNIST:

- search: the app's search (multi-objective TPE, seeded, guided: it starts from the known recipes and
  tries a trained trial's siblings next) over SPACE for BUDGET_S, from an empty cache;
- random: random search, the textbook baseline: Optuna's random sampler alone, same space, budget and
  empty start;
- random, guided: the random sampler with the search's guidance (an ablation: what the sampler adds);
- grid: the shipped default grid's Fashion-MNIST variants, at the build time their records state.

Each figure is the hypervolume of its front of (p50 latency on this host, test accuracy) of the variants
finished within the budget (a trial running at the deadline is counted apart), up to the reference point
REFERENCE: the area of (µs × accuracy) that some variant beats on both. The searches
optimize validation accuracy; the test accuracy scored here is never seen by them. Targets: the search
>= the grid (which needed more time) and > random search at the same budget.

    $ .venv/bin/python -m benchmarks search_hypervolume          # 3 × 10 minutes
    $ EXPLORER_SEARCH_BUDGET=120 .venv/bin/python -m benchmarks search_hypervolume   # a quick look
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

from explorer.settings import settings
from benchmarks.report import Row, row
from benchmarks.worker import environment

BUDGET_S = settings().search_budget
REFERENCE = (100.0, 0.80)  # (p50 µs, test accuracy): slower or less accurate variants add nothing
SPACE = {  # every knob that trades speed for accuracy on Fashion-MNIST, and the training's: 7,776 variants
    "depth": [1, 2, 3], "width": [16, 32], "dense": [64, 128, 512], "padding": ["valid", "same"],
    "batchnorm": [False, True], "dropout": [0.0, 0.3], "epochs": [5, 10, 20], "patience": [5, 10],
    "channels": [0.0, 0.25, 0.5], "quant": ["fp32", "dynamic", "int8"],
}


def _grid() -> tuple[list[tuple[float, float]], float, int]:
    """The shipped default grid's (p50, test accuracy) on this host, its recorded build seconds, its size."""
    from explorer import record
    from explorer.measure import host
    from explorer.store.cache import Store

    found, _ = record.load_all(Store(), host.current().id, foreign=False)
    grid = [v for v in found if v.dataset == "fashion-mnist" and v.latency is not None]
    seconds = sum(s for v in grid for stage, s in v.build_seconds.items() if stage != "measure")
    return [(v.latency.p50_us, v.accuracy) for v in grid], seconds, len(grid)


def _search(sampler: str, guided: bool) -> tuple[list[tuple[float, float]], list[tuple[float, float]], float, list]:
    """One search from an empty cache and user-data folder: (p50, test accuracy) of the trials finished
    within the budget, and of every trial (a trial started before the deadline runs to its end), the
    seconds it all took, and the trials."""
    import optuna

    from explorer.run import search, search_space
    from explorer.spec import VariantSpec
    from explorer.store.cache import Store

    name = f"hv-{sampler}{'-guided' if guided else ''}"
    folder = Path(tempfile.mkdtemp(prefix=f"explorer-search-{name}-"))
    store = Store(folder / "cache", folder / "user_data" / "stages")
    space = search_space.Space(SPACE, VariantSpec(dataset="fashion-mnist"))
    with environment(EXPLORER_DATA_DIR=str(folder / "user_data")):  # the study's database, the CPU gate
        t0 = time.perf_counter()
        done = search.run(space, search.SearchConfig(name, budget_s=BUDGET_S, sampler=sampler, guided=guided), store=store)
        seconds = time.perf_counter() - t0
        study = optuna.load_study(study_name=name, storage=search.storage_url())
    start = study.user_attrs["run"]["started_at"]
    in_time = {t.number for t in study.get_trials(deepcopy=False)
               if t.datetime_complete and t.datetime_complete.timestamp() - start <= BUDGET_S}
    return ([(t.p50_us, t.test_accuracy) for t in done if t.number in in_time],
            [(t.p50_us, t.test_accuracy) for t in done], seconds, done)


def _ratio(a: float, b: float) -> float:
    return a / b if b else float("nan")  # nothing finished in time (a budget too short to say)


def _warm_up() -> None:
    """TensorFlow's import and the data's first read happen before any clock starts."""
    from explorer.models import tf_runtime  # noqa: F401
    from explorer.data import datasets
    from explorer.spec import VariantSpec

    datasets.load_for(VariantSpec(dataset="fashion-mnist"))


RUNS = {"search": ("tpe", True), "random": ("random", False), "random_guided": ("random", True)}


def run() -> list[Row]:
    from explorer.present.pareto import hypervolume
    from explorer.run.search import front

    def hv(points):
        return hypervolume([p for p, _ in points], [a for _, a in points], REFERENCE)

    def front_of(trials):
        return [{"label": t.label, "p50_us": round(t.p50_us, 2), "test_accuracy": round(t.test_accuracy, 4),
                 "val_accuracy": round(t.val_accuracy, 4)} for t in front(trials)]

    _warm_up()
    grid, grid_s, grid_n = _grid()
    runs = {name: _search(*how) for name, how in RUNS.items()}  # name: (in time, all, seconds, trials)
    values = {name: hv(r[0]) for name, r in runs.items()} | {"grid": hv(grid)}
    to_the_end = {name: hv(r[1]) for name, r in runs.items()}
    detail = {"budget_s": BUDGET_S, "reference_point": {"p50_us": REFERENCE[0], "accuracy": REFERENCE[1]},
              "hypervolume": {k: round(v, 4) for k, v in values.items()},
              "hypervolume_with_the_trial_running_at_the_deadline": {k: round(v, 4) for k, v in to_the_end.items()},
              "seconds": {name: round(r[2], 1) for name, r in runs.items()} | {"grid": round(grid_s, 1)},
              "variants": {name: len(r[3]) for name, r in runs.items()} | {"grid": grid_n},
              "variants_within_the_budget": {name: len(r[0]) for name, r in runs.items()},
              "front": {name: front_of(r[3]) for name, r in runs.items()}, "space": SPACE,
              "runs": {name: {"sampler": s, "guided": g} for name, (s, g) in RUNS.items()}}
    where = f"reference point ({REFERENCE[0]:g} µs, {REFERENCE[1]:g}); units µs × accuracy"
    seen = "; ".join(f"{name} {values[name]:.3f} ({len(r[0])} variants; {to_the_end[name]:.3f} at {r[2]:.0f} s "
                     f"with the trial running at the deadline)" for name, r in runs.items())
    return [
        row("search_hypervolume", values["search"], "", note=f"within the {BUDGET_S:.0f} s budget, from an empty "
            f"cache: {seen}; default grid {values['grid']:.3f} ({grid_n} variants, {grid_s:.0f} s of recorded "
            f"builds); {where}", detail=detail),
        row("search_over_grid_hypervolume", _ratio(values["search"], values["grid"]), "×", ">=", 1.0,
            note=f"search within {BUDGET_S:.0f} s vs the default grid after its {grid_s:.0f} s"),
        row("search_over_random_hypervolume", _ratio(values["search"], values["random"]), "×", ">", 1.0,
            note="random search (the random sampler alone): same space, same budget, same empty start"),
        row("search_over_guided_random_hypervolume", _ratio(values["search"], values["random_guided"]), "×",
            note="the random sampler with the search's guidance (starts, siblings next): what TPE adds"),
    ]
