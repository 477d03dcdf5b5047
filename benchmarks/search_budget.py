"""Search that keeps its budget and reaches the grid's front within it (key `search_budget`).

    $ .venv/bin/python -m benchmarks search_budget        # about 95 minutes

On search_hypervolume's 7,776-variant Fashion-MNIST space, from an empty cache, as `search --budget` runs it:
searches of 5 and 10 minutes with sampler seeds 0, 1 and 2 (a search's outcome varies with its seed), in two
arms: economizing (the default: trials the front dominates are skipped, hopeless ones stop early) and not (every
proposed trial trains; the deadline is kept in both). Figures, per run and as the median of the seeds: the wall
time against the budget (target <= 1.1x), the hypervolume of the front of (this host's p50, test accuracy)
against the shipped default grid's on this host (target >= 1.0x at 5 minutes; the grid's variants are timed here
first), when the front first reached the grid's (seconds into the search, from each finished trial's end),
trials finished, skipped and stopped. Reference point as search_hypervolume's.
"""

from __future__ import annotations

import json
import shutil
import statistics
import tempfile
import time
from pathlib import Path

from benchmarks.report import Row, row
from benchmarks.search_hypervolume import REFERENCE, SPACE, _warm_up
from benchmarks.worker import environment

SEEDS = {300.0: (0, 1, 2), 600.0: (0, 1, 2)}  # budget (s) -> the sampler seeds it is searched with
BUDGETS = tuple(SEEDS)
ARMS = {"economize": True, "plain": False}
PROGRESS = Path(tempfile.gettempdir()) / "search_budget_runs.jsonl"  # each run as it ends (a long benchmark)


def _grid_here(folder: Path) -> list[tuple[float, float]]:
    """The shipped grid's Fashion-MNIST variants, (p50 on this host, test accuracy), timed here where needed."""
    from explorer import record
    from explorer.measure import host
    from explorer.run import pipeline
    from explorer.store.cache import Store
    from explorer.store.paths import REPO_ROOT

    shutil.copytree(REPO_ROOT / "cached_models", folder / "grid", ignore=shutil.ignore_patterns("stages"))
    store = Store(folder / "grid", folder / "grid-stages")
    found, _ = record.load_all(store, host.current().id)
    out = []
    for v in found:
        if v.dataset != "fashion-mnist" or not v.has_model:
            continue
        lat = v.latency if v.latency is not None and v.latency.on(host.current().id) else \
            pipeline.measure_latency(store, v)
        out.append((lat.p50_us, v.accuracy))
    return out


def _search(budget_s: float, seed: int, economize: bool) -> dict:
    import optuna

    from explorer.present.pareto import hypervolume
    from explorer.run import search, search_space
    from explorer.spec import VariantSpec
    from explorer.store.cache import Store

    name = f"budget-{budget_s:.0f}-{seed}-{'eco' if economize else 'plain'}"
    folder = Path(tempfile.mkdtemp(prefix=f"explorer-{name}-"))
    try:
        store = Store(folder / "cache", folder / "user_data" / "stages")
        space = search_space.Space(SPACE, VariantSpec(dataset="fashion-mnist"))
        with environment(EXPLORER_DATA_DIR=str(folder / "user_data")):
            t0 = time.perf_counter()
            done = search.run(space, search.SearchConfig(name, budget_s=budget_s, sampler_seed=seed,
                                                         economize=economize), store=store)
            wall = time.perf_counter() - t0
            study = optuna.load_study(study_name=name, storage=search.storage_url())
            stopped = search.stopped_trials(study)
        start = study.user_attrs["run"]["started_at"]
        ended = {t.number: t.datetime_complete.timestamp() - start for t in study.get_trials(deepcopy=False)
                 if t.datetime_complete}
        by_end = sorted(done, key=lambda t: ended[t.number])
        progress = [(round(ended[t.number], 1), hypervolume([d.p50_us for d in by_end[:i + 1]],
                                                             [d.test_accuracy for d in by_end[:i + 1]], REFERENCE))
                    for i, t in enumerate(by_end)]
        return {"budget_s": budget_s, "seed": seed, "economize": economize, "wall_s": wall,
                "hypervolume": hypervolume([t.p50_us for t in done], [t.test_accuracy for t in done], REFERENCE),
                "finished": len(done), "trained": sum(t.trained for t in done), "hypervolume_by_second": progress,
                "skipped": sum(t.kind == "skipped" for t in stopped), "stopped": sum(t.kind == "pruned" for t in stopped),
                "why": [f"#{t.number} {t.kind}: {t.why}" for t in stopped],
                "front": [{"label": t.label, "p50_us": round(t.p50_us, 2), "test_accuracy": round(t.test_accuracy, 4)}
                          for t in search.front(done)]}
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def run() -> list[Row]:
    from explorer.present.pareto import hypervolume

    _warm_up()
    with tempfile.TemporaryDirectory(prefix="search-budget-grid-") as tmp:
        grid = _grid_here(Path(tmp))
    grid_hv = hypervolume([p for p, _ in grid], [a for _, a in grid], REFERENCE)
    runs = []
    PROGRESS.unlink(missing_ok=True)
    for budget_s, seeds in SEEDS.items():
        for seed in seeds:
            for economize in ARMS.values():
                runs.append(_search(budget_s, seed, economize))
                with PROGRESS.open("a") as f:
                    f.write(json.dumps(runs[-1]) + "\n")

    def reached(r: dict) -> float | None:
        """Seconds into the search at which its front first reached the grid's hypervolume (None: not in time)."""
        return next((s for s, hv in r["hypervolume_by_second"] if hv >= grid_hv), None)

    def median(budget_s: float, arm: str, field: str) -> float:
        return statistics.median(r[field] for r in runs if r["budget_s"] == budget_s and r["economize"] == ARMS[arm])

    rows = []
    detail = {"seeds": {f"{b:.0f}": list(s) for b, s in SEEDS.items()}, "grid_hypervolume": grid_hv, "grid_variants": len(grid),
              "reference_point": {"p50_us": REFERENCE[0], "accuracy": REFERENCE[1]}, "runs": runs}
    for budget_s in BUDGETS:
        minutes, first = f"{budget_s / 60:.0f} min", budget_s == BUDGETS[0]
        per_seed = [r for r in runs if r["budget_s"] == budget_s and r["economize"]]
        over = median(budget_s, "economize", "wall_s") / budget_s
        hv_ratio = median(budget_s, "economize", "hypervolume") / grid_hv
        seen = "; ".join(f"seed {r['seed']}: {r['wall_s']:.0f} s, hypervolume {r['hypervolume']:.3f}, {r['finished']} "
                         f"finished, {r['skipped']} skipped, {r['stopped']} stopped" for r in per_seed)
        rows += [
            row("search_budget" if first else f"search_budget_{budget_s:.0f}s", over, "× budget", "<=", 1.1,
                note=f"{minutes}, median of seeds ({seen})", detail=detail if first else None),
            row(f"hypervolume against the grid's, {minutes}", hv_ratio, "×", *((">=", 1.0) if first else ()),
                note=f"median {median(budget_s, 'economize', 'hypervolume'):.3f} against the shipped grid's "
                     f"{grid_hv:.3f} ({len(grid)} variants, timed here)"),
            row(f"trials finished, economizing against not, {minutes}",
                median(budget_s, "economize", "finished") / median(budget_s, "plain", "finished"), "×", ">", 1.0,
                note=f"medians {median(budget_s, 'economize', 'finished'):.0f} and {median(budget_s, 'plain', 'finished'):.0f}"),
            row(f"hypervolume, economizing against not, {minutes}",
                median(budget_s, "economize", "hypervolume") / median(budget_s, "plain", "hypervolume"), "×", ">=", 1.0,
                note=f"medians {median(budget_s, 'economize', 'hypervolume'):.3f} and "
                     f"{median(budget_s, 'plain', 'hypervolume'):.3f}; the plain search's wall time "
                     f"{median(budget_s, 'plain', 'wall_s'):.0f} s"),
        ]
    longest = [r for r in runs if r["budget_s"] == BUDGETS[-1] and r["economize"]]
    times = [reached(r) for r in longest]
    reach = "; ".join(f"seed {r['seed']}: {f'{t:.0f} s' if t is not None else 'not within the budget'}"
                      for r, t in zip(longest, times))
    rows.append(row("seconds to the grid's hypervolume",
                    statistics.median(t if t is not None else BUDGETS[-1] for t in times), "s",
                    note=f"when the front of a {BUDGETS[-1] / 60:.0f}-minute search first reached the grid's {grid_hv:.3f}, "
                         f"median of seeds, one that never did counted as its budget ({reach})"))
    return rows
