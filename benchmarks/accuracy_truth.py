"""Accuracy you can trust (issue #21): how often the app's intervals hold a further seed's accuracy.

For each spec (d1 int8, the default d2 fp32, the shipped lever recipe) with SEEDS seeds built on
Fashion-MNIST: the seeds' SD, the test split's 95 % half-width, and the coverage of
- the interval the app shows for a 3-seed point (explorer.present.results.group_seeds): over every 3 of the
  seeds, the share of the other seeds' accuracies inside it (target >= 0.9);
- the single-seed binomial interval: over every ordered pair of seeds, the share of one's accuracy inside
  the other's Wilson interval (reported: what the binomial interval alone misses, seed variance).
Then how many adjacent pairs of the shipped front differ significantly (McNemar on their stored
predictions), and what 3 seeds cost the shipped front (its builds' recorded seconds, stage reuse applied).

    $ .venv/bin/python -m benchmarks accuracy_truth
    $ EXPLORER_BENCH_STORE=/path/to/cache .venv/bin/python -m benchmarks accuracy_truth   # reuse built seeds

Seeds the store lacks are trained (about 2, 4 and 25 minutes each here); EXPLORER_BENCH_SEEDS caps how many.
"""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np

from explorer.settings import settings
from benchmarks.report import Row, row
from benchmarks.worker import Sandbox

SEEDS = settings().bench_seeds
LEVER = dict(padding="same", batchnorm=True, dropout=0.3, epochs=20, patience=5)


def _specs():
    from explorer.spec import VariantSpec

    return {"d1 int8": VariantSpec(depth=1, quant="int8"), "d2 fp32 (default)": VariantSpec(),
            "lever recipe (d2 int8)": VariantSpec(quant="int8", **LEVER)}


def coverage(accuracies: list[float], n_test: int) -> dict:
    """The coverage figures of one spec's seeds (pure: the tests call it too)."""
    from explorer.uncertainty import accuracy_interval, replicate_interval

    accs = np.asarray(accuracies, dtype=float)
    inside = total = 0
    for triple in itertools.combinations(range(len(accs)), 3):
        half = accuracy_interval(round(accs[list(triple)].mean() * n_test), n_test).half_width
        iv = replicate_interval(accs[list(triple)], half)
        others = [accs[i] for i in range(len(accs)) if i not in triple]
        inside += sum(iv.lo <= a <= iv.hi for a in others)
        total += len(others)
    single = [accuracy_interval(round(a * n_test), n_test) for a in accs]
    pairs = [(i, j) for i in range(len(accs)) for j in range(len(accs)) if i != j]
    in_single = sum(single[i].lo <= accs[j] <= single[i].hi for i, j in pairs)
    return {"seeds": len(accs), "accuracies": [round(float(a), 4) for a in accs],
            "seed_sd_pts": round(float(accs.std(ddof=1)) * 100, 3),
            "test_half_width_pts": round(single[0].half_width * 100, 3),
            "three_seed_coverage": round(inside / total, 3) if total else None,
            "single_seed_binomial_coverage": round(in_single / len(pairs), 3) if pairs else None}


def _front(store):
    """The shipped front (seed points grouped) on the host whose records the shipped cache carries, and the
    evidence for paired tests."""
    from explorer import record
    from explorer.present import results, significance

    found, _ = record.load_all(store, "any-host")  # every shipped record is the same host's
    df = results.group_seeds(results.table([v for v in found if v.dataset == "fashion-mnist"]))
    df = df.dropna(subset=["p50_us"]).reset_index(drop=True)
    front = df[results.front(df, "p50_us")].sort_values("p50_us").to_dict("records")
    return found, front, significance.Evidence.read(store, "fashion-mnist", [r["key"] for r in front])


def _front_pairs(store) -> tuple[int, int, list[dict]]:
    """Adjacent pairs of the shipped front and how many differ significantly: McNemar's exact test between
    single builds, non-overlapping intervals where a seed point is involved (the app's own rule)."""
    from explorer.present import results, significance

    _, front, evidence = _front(store)
    pairs = []
    for a, b in zip(front, front[1:]):
        p = evidence.paired(a, b)
        differ = significance.significantly_better(a, b, evidence) or significance.significantly_better(b, a, evidence)
        pairs.append({"faster": a["label"], "slower": b["label"], "diff_pts": round((b["accuracy"] - a["accuracy"]) * 100, 2),
                      "test": "McNemar" if p is not None else "intervals", "p": None if p is None else round(p.p, 4),
                      "faster_interval": results.interval(a).text(), "slower_interval": results.interval(b).text(),
                      "significant": bool(differ)})
    return sum(p["significant"] for p in pairs), len(pairs), pairs


def _seed_cost(store) -> dict:
    """What 3 seeds cost the shipped front: per further seed, the recorded build seconds of the front points'
    replicates and of the stages they use (a base trained for a sibling, e.g. the fp32 of an int8 point,
    counts once). Seed 0 was built on the host that built the grid, seeds 1 and 2 on a later one, so one
    seed's cost is the mean of the further seeds', on one host."""
    found, front, _ = _front(store)
    by_key = {v.key: v for v in found}
    stage_cost: dict[tuple[str, str], float] = {}  # (stage, key) -> seconds of the build that trained it
    for v in found:
        for stage, steps in (("base", ("train",)), ("tuned", ("prune", "channels", "cluster", "qat"))):
            spent = sum(v.build_seconds.get(k, 0.0) for k in steps)
            if spent and v.stages.get(stage):
                stage_cost.setdefault((stage, v.stages[stage]), spent)
    per_seed = []
    for s in (1, 2):
        reps = [by_key[k] for r in front for k in r["replicates"].split(",") if by_key[k].spec.seed == s]
        stages = {(st, v.stages[st]) for v in reps for st in ("base", "tuned") if v.stages.get(st)}
        own = sum(v.build_seconds.get(k, 0.0) for v in reps for k in ("convert", "evaluate"))
        per_seed.append(own + sum(stage_cost.get(x, 0.0) for x in stages))
    one = float(np.mean(per_seed)) if per_seed else float("nan")
    return {"front_points": len(front), "three_seed_points": sum(r["seeds"] >= 3 for r in front),
            "one_seed_s": round(one, 1), "three_seeds_s": round(3 * one, 1),
            "further_seeds_s": [round(x, 1) for x in per_seed]}


def run() -> list[Row]:
    from explorer.run import pipeline
    from explorer.store.cache import Store

    box = None
    if settings().bench_store:
        root = settings().bench_store
        store = Store(root, root.parent / "user_data" / "stages")
    else:
        box = Sandbox()
        store = Store(box.cache, box.data / "stages")
    rows, table = [], {}
    try:
        for name, spec in _specs().items():
            accs, n_test, seconds = [], 0, []
            for seed in range(SEEDS):
                s = spec.replace(seed=seed)
                if not store.has("variants", s.key()) and not settings().bench_train:
                    continue
                v, _ = pipeline.ensure(s, store, measure_missing=False)
                accs.append(v.accuracy)
                n_test = v.test_images
                seconds.append(sum(t for k, t in v.build_seconds.items() if k != "measure"))
            if len(accs) < 4:
                rows.append(row(f"{name}: only {len(accs)} seeds built", len(accs), "seeds",
                                note="too few for the 3-seed coverage (EXPLORER_BENCH_TRAIN=1 trains them)"))
                continue
            table[name] = {**coverage(accs, n_test), "build_seconds_mean": round(float(np.mean(seconds)), 1)}
        covered = [t["three_seed_coverage"] for t in table.values()]
        rows.insert(0, row("accuracy_truth", min(covered) if covered else float("nan"), "share", ">=", 0.9,
                           detail={"specs": table},
                           note="lowest over the specs: share of further seeds' accuracies inside the app's 3-seed "
                                "interval; " + "; ".join(f"{k}: {t['three_seed_coverage']} ({t['seeds']} seeds, SD "
                                                         f"{t['seed_sd_pts']} pts, single-seed binomial "
                                                         f"{t['single_seed_binomial_coverage']})" for k, t in table.items())))
        shipped = Store(Path(__file__).resolve().parent.parent / "cached_models")
        significant, pairs, detail = _front_pairs(shipped)
        rows.append(row("shipped front: adjacent pairs significantly different", significant, f"of {pairs}",
                        detail={"pairs": detail}, note="the app's rule: McNemar's exact test between single builds, "
                                                       "non-overlapping 95 % intervals where a seed point is involved"))
        cost = _seed_cost(shipped)
        rows.append(row("shipped front built with 3 seeds instead of 1", cost["three_seeds_s"], "s",
                        detail=cost, note=f"{cost['front_points']} front points ({cost['three_seed_points']} with 3 "
                                          f"seeds): one seed {cost['one_seed_s']} s of builds (stage reuse "
                                          "applied; measured here while another build ran), three seeds three "
                                          "times that: a seed shares no training with another"))
        return rows
    finally:
        if box is not None:
            box.close()
