"""Search vs random search vs the default grid, at equal wall time (issue #14), on Fashion-MNIST:

- search: the app's search (multi-objective TPE, seeded) over SPACE for BUDGET_S, from an empty cache;
- random: the same space, budget and empty start, with Optuna's random sampler;
- grid: the shipped default grid's Fashion-MNIST variants, at the build time their records state.

Each figure is the hypervolume of its front of (p50 latency on this host, test accuracy) of the variants
finished within the budget (a trial running at the deadline is counted apart), up to the reference point
REFERENCE: the area of (µs × accuracy) that some variant beats on both. The searches
optimize validation accuracy; the test accuracy scored here is never seen by them. Targets: the search
>= the grid (which needed more time) and > random at the same budget.

    $ .venv/bin/python -m benchmarks search_hypervolume          # 2 × 10 minutes
    $ EXPLORER_SEARCH_BUDGET=120 .venv/bin/python -m benchmarks search_hypervolume   # a quick look
"""

from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path

from benchmarks.report import Row, row
from benchmarks.worker import environment

BUDGET_S = float(os.environ.get("EXPLORER_SEARCH_BUDGET", 600))
REFERENCE = (100.0, 0.80)  # (p50 µs, test accuracy): slower or less accurate variants add nothing
SPACE = {  # every knob that trades speed for accuracy on Fashion-MNIST: 3,888 variants
    "depth": [1, 2, 3], "width": [16, 32], "dense": [64, 128, 512], "padding": ["valid", "same"],
    "batchnorm": [False, True], "dropout": [0.0, 0.3], "epochs": [5, 10, 20], "channels": [0.0, 0.25, 0.5],
    "quant": ["fp32", "dynamic", "int8"],
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


def _search(sampler: str) -> tuple[list[tuple[float, float]], list[tuple[float, float]], float, list]:
    """One search from an empty cache and user-data folder: (p50, test accuracy) of the trials finished
    within the budget, and of every trial (a trial started before the deadline runs to its end), the
    seconds it all took, and the trials."""
    import optuna

    from explorer.run import search
    from explorer.spec import VariantSpec
    from explorer.store.cache import Store

    folder = Path(tempfile.mkdtemp(prefix=f"explorer-search-{sampler}-"))
    store = Store(folder / "cache", folder / "user_data" / "stages")
    space = search.Space(SPACE, VariantSpec(dataset="fashion-mnist"))
    with environment(EXPLORER_DATA_DIR=str(folder / "user_data")):  # the study's database, the CPU gate
        t0 = time.perf_counter()
        done = search.run(space, study_name=f"hv-{sampler}", budget_s=BUDGET_S, sampler=sampler, store=store)
        seconds = time.perf_counter() - t0
        study = optuna.load_study(study_name=f"hv-{sampler}", storage=search.storage_url())
    start = study.user_attrs["run"]["started_at"]
    in_time = {t.number for t in study.get_trials(deepcopy=False)
               if t.datetime_complete and t.datetime_complete.timestamp() - start <= BUDGET_S}
    return ([(t.p50_us, t.test_accuracy) for t in done if t.number in in_time],
            [(t.p50_us, t.test_accuracy) for t in done], seconds, done)


def _ratio(a: float, b: float) -> float:
    return a / b if b else float("nan")  # nothing finished in time (a budget too short to say)


def _warm_up() -> None:
    """TensorFlow's import and the data's first read happen before any clock starts."""
    from explorer.build import tf_runtime  # noqa: F401
    from explorer.data import datasets
    from explorer.spec import VariantSpec

    datasets.load_for(VariantSpec(dataset="fashion-mnist"))


def run() -> list[Row]:
    from explorer.present.pareto import hypervolume

    def hv(points):
        return hypervolume([p for p, _ in points], [a for _, a in points], REFERENCE)

    _warm_up()
    grid, grid_s, grid_n = _grid()
    (tpe, tpe_all, tpe_s, tpe_trials), (rnd, rnd_all, rnd_s, rnd_trials) = _search("tpe"), _search("random")
    values = {"search": hv(tpe), "random": hv(rnd), "grid": hv(grid)}
    to_the_end = {"search": hv(tpe_all), "random": hv(rnd_all)}

    def front_of(trials):
        from explorer.run.search import front
        return [{"label": t.label, "p50_us": round(t.p50_us, 2), "test_accuracy": round(t.test_accuracy, 4),
                 "val_accuracy": round(t.val_accuracy, 4)} for t in front(trials)]

    detail = {"budget_s": BUDGET_S, "reference_point": {"p50_us": REFERENCE[0], "accuracy": REFERENCE[1]},
              "hypervolume": {k: round(v, 4) for k, v in values.items()},
              "hypervolume_with_the_trial_running_at_the_deadline": {k: round(v, 4) for k, v in to_the_end.items()},
              "seconds": {"search": round(tpe_s, 1), "random": round(rnd_s, 1), "grid": round(grid_s, 1)},
              "variants": {"search": len(tpe_trials), "random": len(rnd_trials), "grid": grid_n},
              "variants_within_the_budget": {"search": len(tpe), "random": len(rnd)},
              "front": {"search": front_of(tpe_trials), "random": front_of(rnd_trials)}, "space": SPACE}
    where = f"reference point ({REFERENCE[0]:g} µs, {REFERENCE[1]:g}); units µs × accuracy"
    return [
        row("search_hypervolume", values["search"], "", note=f"TPE search, {len(tpe)} variants finished within "
            f"the {BUDGET_S:.0f} s budget, from an empty cache; random {values['random']:.3f} ({len(rnd)} variants); "
            f"default grid {values['grid']:.3f} ({grid_n} variants, {grid_s:.0f} s of recorded builds); with the "
            f"trial each was running at the deadline (it finishes): search {to_the_end['search']:.3f} at "
            f"{tpe_s:.0f} s, random {to_the_end['random']:.3f} at {rnd_s:.0f} s; {where}", detail=detail),
        row("search_over_grid_hypervolume", _ratio(values["search"], values["grid"]), "×", ">=", 1.0,
            note=f"search within {BUDGET_S:.0f} s vs the default grid after its {grid_s:.0f} s"),
        row("search_over_random_hypervolume", _ratio(values["search"], values["random"]), "×", ">=", 1.0,
            note="same space, same budget, same empty start; target: above random"),
    ]
