"""Command line: sweep a grid of variants, list results, print the Pareto front, re-measure latency.

    $ python -m explorer sweep --depth 1 2 3 --sparsity 0 0.5 0.8 --quant fp32 dynamic int8
    $ python -m explorer sweep --depth 2 3 --channels 0 0.25 0.5 --quant fp32 dynamic   # channel pruning
    $ python -m explorer sweep --depth 3 --dense 512 --head gap --batchnorm on --augment on --dropout 0.3
    $ python -m explorer sweep --preset default
    $ python -m explorer list
    $ python -m explorer pareto --x p50_us --y accuracy
    $ python -m explorer measure          # time shipped models on this host (no training)
    $ python -m explorer add-dataset pets ~/pets/   # a folder (or zip) of class folders
    $ python -m explorer preview --depth 3 --quant int8   # latency before training, in seconds
    $ python -m explorer report view.html --x gzip_kb --quant int8 --budget 200   # share without the app
    $ python -m explorer search --budget 10m --depth 1 2 3 --channels 0 0.5 --quant dynamic int8 qat-int8
    $ python -m explorer search --budget 1h --study big --ray ray://head:10001 …   # trials built on a cluster
    $ python -m explorer jobs             # builds and measurements queued or running in the worker
    $ python -m explorer worker           # serve the job queue in the foreground (the app starts one itself)
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import sys
import time
from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd
from tqdm import tqdm

from explorer import settings
from explorer.run import grid, search, search_space, study_process
from explorer.measure import host
from explorer.measure.boards import BOARDS
from explorer.present import pareto, results, significance
from explorer import record
from explorer.store.cache import Store
from explorer.store.index import ResultsIndex
from explorer.models import recipe
from explorer.spec import CLASS_WEIGHTS, CONV_KINDS, HEADS, PADDINGS, QUANT_MODES, SCHEDULES, SpecError, VariantSpec


def _on_off(text: str) -> bool:
    """An on/off field on the command line: 1/0, on/off, true/false."""
    value = {"1": True, "on": True, "true": True, "0": False, "off": False, "false": False}.get(text.lower())
    if value is None:
        raise argparse.ArgumentTypeError(f"must be on or off (got {text!r})")
    return value


CHOICES = {"conv": CONV_KINDS, "schedule": SCHEDULES, "quant": QUANT_MODES, "head": HEADS, "padding": PADDINGS,
           "class_weight": CLASS_WEIGHTS}
AXES = {  # CLI flag -> (spec field, type, choices): one per spec field, derived from the spec
    f.name.replace("_", "-"): (f.name, _on_off if f.type in (bool, "bool") else type(f.default), CHOICES.get(f.name))
    for f in dataclasses.fields(VariantSpec)
}
log = logging.getLogger("explorer")
SHOWN = ["label", "source", "accuracy", "p50_us", "p99_us", "throughput_ips", "peak_ram_kb", "flash_kb", "gzip_kb",
         "sparsity_real", "macs"]  # flash_kb: the .tflite's size


class Bar:
    """Progress over a list of variants (tqdm on stderr): whole units per variant, its stage as postfix; no
    bar when stderr is not a terminal (a piped or logged sweep), tqdm's disable=None."""

    def __init__(self, total: int):
        self.bar = tqdm(total=total, unit="variant", file=sys.stderr, dynamic_ncols=True, disable=None,
                        bar_format="{l_bar}{bar}| {n:.1f}/{total} [{elapsed}<{remaining}] {postfix}")

    def show(self, index: int, fraction: float, message: str) -> None:
        self.bar.n = index + fraction
        self.bar.set_postfix_str(message[:80], refresh=True)

    def close(self) -> None:
        self.bar.close()


def _store(args) -> Store:
    """The cache to use; a --cache folder that does not exist is an error, except for a sweep or search (which fill it)."""
    if args.cache and args.command not in ("sweep", "search") and not Path(args.cache).is_dir():
        raise ValueError(f"--cache: no cache folder at {args.cache}")
    return Store(args.cache) if args.cache else Store()


def _threads(text: str) -> int:
    """--threads: a whole number from 1 to 64, checked before anything is built."""
    try:
        value = int(text)
    except ValueError:
        value = 0
    if not 1 <= value <= 64:
        raise argparse.ArgumentTypeError(f"must be a whole number from 1 to 64 (got {text!r})")
    return value


def _table(store: Store, foreign: bool = True, here: str | None = None) -> pd.DataFrame:
    """The results from the results index: with this host's latencies (or those of the host `here`, a
    target's), else (foreign=True, as the pages do) another host's, which _print labels; foreign=False
    leaves NaN where that host has not measured yet."""
    here = here or host.current().id
    found, problems = ResultsIndex(store).rows(here, foreign=foreign)
    for p in problems:
        log.warning("skipped damaged entry %s: %s", p.key, p.reason)
    return results.table_of([results.row_of(v, lat, here) for v, lat in found])


FORMATS = ("table", "csv", "json")


def _print(df: pd.DataFrame, empty: str = "No variants in the cache yet: run 'python -m explorer sweep'.",
           by_dataset: bool = False, fmt: str = "table") -> None:
    """The table, with a column saying where each latency was measured when any is not from this host; or, for
    scripts, every column of every row as CSV or JSON (records: both intervals, the latency's host, the seed group:
    seeds and replicates' keys; a missing figure is empty or null)."""
    if fmt == "json":  # (pandas' own JSON escapes every '/'; its records, re-dumped, read as written)
        print(json.dumps(json.loads(df.to_json(orient="records")), ensure_ascii=False))
        return
    if fmt == "csv":
        print(df.to_csv(index=False), end="")
        return
    if df.empty:
        print(empty)
        return
    here = df["measured_here"].astype(bool)
    shown = df[SHOWN].copy()
    shown["accuracy"] = results.texts(df)  # with its 95 % interval, at the precision that supports
    if "front" in df:
        shown.insert(1, "front", df["front"])
    if by_dataset and df["dataset"].nunique() > 1:  # each dataset has its own front: say whose each row is
        shown.insert(1, "dataset", df["dataset"])
    shown["peak_ram_kb"] = [f"{v:.4g}" if v == v else "—" for v in df["peak_ram_kb"]]  # a seed kept without its model
    if not here.all():
        shown["latency_from"] = np.where(here, "this host", df["latency_host"].fillna("not measured"))
    with pd.option_context("display.max_rows", None, "display.width", 250, "display.float_format", "{:.4g}".format):
        print(shown.to_string(index=False))
    threads = df["threads"].dropna()
    print(f"\nThis host: {host.current().label}, {int(threads.max()) if len(threads) else 1} thread(s). "
          + (f"{int((~here).sum())} of {len(df)} latencies were measured on another host (latency_from); "
             "'python -m explorer measure' times them here." if not here.all() else "Every latency was measured here.")
          + (f" {n} of them are provisional (a quick first pass): 'python -m explorer measure' replaces them with the "
             "full protocol's." if (n := int(results.provisional_here(df).sum())) else ""))


def cmd_sweep(args) -> int:
    from explorer.models import sources

    if args.preset:
        specs = grid.preset(args.preset)
    else:
        specs = grid.expand_on_defaults(_axes(args))
    # replicates: seed, seed+1, …; with --seeds-as-evidence the further ones keep no model (and need no latency)
    specs = [(s.replace(seed=s.seed + i), args.seeds_as_evidence and i > 0) for s in specs for i in range(args.seeds)]
    store = _store(args)
    kept = {s.key() for s, lean in specs if lean and store.has("evidence", s.key())}
    todo = [(s, lean) for s, lean in specs if s.key() not in kept]
    bar = Bar(len(todo))
    start = time.perf_counter()
    trained, keys = 0, set(kept)
    for spec, lean, built, report in _builds(args, store, todo, bar):
        if lean:
            store.keep_as_evidence(built.key)
        if (warning := sources.chance_warning(built.spec, built.accuracy, len(built.class_names))):
            log.warning("warning: %s", warning)
        trained += report.trained
        keys.add(built.key)  # precision "auto" resolves to this host's choice: its key is the built one
    bar.close()
    log.info("%d variants in %.0f s (%d needed training, the rest came from the cache)",
             len(specs), time.perf_counter() - start, trained)
    df = _table(store)
    _print(results.group_seeds(df[df["key"].isin(keys)]))
    return 0


def _builds(args, store, todo, bar):
    """Each (spec, lean) of a sweep built: here one after another, or on the Ray cluster as they land."""
    from explorer.run import pipeline

    builds = _ray_builds(args, store)
    if builds is not None:
        from explorer.run import cluster

        lean = {s.key() for s, is_lean in todo if is_lean}
        for i, (spec, built, report) in enumerate(cluster.build_all([s for s, _ in todo], builds, unmeasured=lean)):
            where = f"built on {report.where}" if report.where else "in the cache"
            bar.show(i, 1.0, f"{built.label}: {where}")
            log.info("%s: %s, accuracy %.4f", built.label, where, built.accuracy)
            yield spec, spec.key() in lean, built, report
        return
    for i, (spec, is_lean) in enumerate(todo):
        _wait_for_worker(spec.key(), lambda f, msg, i=i: bar.show(i, f, msg))
        built, report = pipeline.ensure(spec, store, lambda p, i=i: bar.show(i, p.fraction, p.message),
                                        threads=args.threads, reuse=not args.no_reuse, measure_missing=not is_lean)
        yield spec, is_lean, built, report


def _wait_for_worker(key: str, show) -> None:
    """If the app's worker is building this variant right now, say so and wait for it (no double work)."""
    from explorer.run.queue import Queue

    queue = Queue()
    said = False
    while True:
        running = [j for j in queue.jobs(("running",), kind="build") if j.key == key]
        if not running:
            return
        job = running[0]
        if job.worker_pid not in queue.live_workers():
            queue.reap()  # its worker died: mark it failed and build it here
            return
        if not said:
            log.info("waiting: the app's worker (pid %s) is building %s; this sweep goes on when it is done",
                     job.worker_pid, job.label)
            said = True
        show(job.fraction, f"waiting for the app's worker: {job.message}")
        time.sleep(1.0)


def _ray_options(parser, what: str) -> None:
    parser.add_argument("--ray", metavar="local|auto|ADDRESS",
                        help=f"build the {what} as Ray tasks: 'local' starts a cluster on this machine, 'auto' joins the "
                             "one 'ray start --head' runs here, ADDRESS a running cluster (host:6379 or "
                             "ray://host:10001); latency is still measured on this machine")
    parser.add_argument("--or-local", action="store_true",
                        help="with --ray: build here when the cluster cannot be reached (otherwise that is an error)")


def _ray_builds(args, store):
    """RayBuilds for --ray, or None (no --ray; or the cluster is out of reach and --or-local says build here)."""
    if not args.ray:
        return None
    from explorer.run import cluster

    try:
        builds = cluster.RayBuilds(store, args.ray, threads=getattr(args, "threads", 1))
    except cluster.ClusterError as exc:
        if not args.or_local:
            raise ValueError(f"--ray {args.ray}: {exc} (add --or-local to build on this machine instead)") from exc
        log.warning("--ray %s: %s; building on this machine (--or-local)", args.ray, exc)
        return None
    log.info("Ray cluster %s: %g CPUs, %d builds at a time; latency is measured here, on %s",
             args.ray, builds.resources.get("CPU", 0), builds.parallelism, host.current().label)
    return builds


def _seeds_option(parser, help_text: str) -> None:
    parser.add_argument("--seeds", type=int, default=1, choices=range(1, 11), metavar="N", help=help_text)


def _duration(text: str) -> float:
    """--budget: seconds, or a number with s, m or h (90s, 10m, 1.5h)."""
    units = {"s": 1, "m": 60, "h": 3600}
    try:
        value = float(text[:-1]) * units[text[-1]] if text and text[-1] in units else float(text)
    except ValueError:
        value = -1
    if not 0 < value <= 7 * 86400:
        raise argparse.ArgumentTypeError(f"must be a duration such as 90s, 10m or 1h (got {text!r})")
    return value


def cmd_search(args) -> int:
    axes = _axes(args)
    chosen = set(axes.get("dataset", [VariantSpec().dataset]))  # one dataset: the fields not searched are its defaults
    base = recipe.for_dataset(chosen.pop()).spec() if len(chosen) == 1 else VariantSpec()
    models = axes.pop("model", [""])
    if len(models) > 1:
        raise ValueError("--model: a search explores one network's levers; give one (search each network in turn)")
    if models[0]:  # another source's network: the family's knobs back at their defaults, its input size and colour
        from explorer.models import sources

        base = sources.on_source(base, models[0])
    space = search_space.Space(axes, base)
    limits = search.Constraints(args.min_accuracy, args.max_p50, args.max_size, *_device_limits(args))
    bar = tqdm(total=args.trials, unit="trial", file=sys.stderr, dynamic_ncols=True, disable=None)

    def shown(t: search.TrialResult) -> None:
        bar.update(1)
        bar.set_postfix_str(f"#{t.number} {t.label[:40]}: val {t.val_accuracy:.4f}, {t.p50_us:.1f} µs"
                            + ("" if t.feasible else " (infeasible)"))

    store = _store(args)
    builds = _ray_builds(args, store)
    start = time.perf_counter()
    target = None
    if args.target:
        from explorer.measure import targets

        target = targets.refresh(args.target)
        log.info("Latency is measured on target %s: %s", target.name, target.host.label)
    config = search.SearchConfig(args.study, args.trials, args.budget, limits, args.sampler, args.sampler_seed,
                                 seeds=args.seeds, economize=not args.no_economize)

    def stopped(t: search.Stopped) -> None:
        log.info("trial #%d %s %s: %s", t.number, t.label, t.kind, t.why)

    with study_process.announced(config.study_name):
        done = search.run(space, config, store=store, builds=builds, target=target, on_trial=shown,
                          on_stopped=stopped)
    bar.close()
    best = search.front(done)
    wall = time.perf_counter() - start
    log.info("study %r: %d trials in all (%d infeasible), this run %.0f s%s; the front (validation accuracy vs p50):",
             args.study, len(done), sum(not t.feasible for t in done), wall,
             f" of a {args.budget:.0f} s budget ({wall / args.budget:.2f}×)" if args.budget else "")
    print(pd.DataFrame([{"variant": t.label, "val_accuracy": t.val_interval.text() if t.val_interval else t.val_accuracy,
                         "test_accuracy": t.test_interval.text() if t.test_interval else t.test_accuracy,
                         "p50_us": t.p50_us, "size_kb": t.size_kb, "trial": t.number} for t in best]).to_string(index=False)
          if best else "No feasible trial yet.")
    return 0


def cmd_preview(args) -> int:
    """The latency of each spec's untrained architecture on this host, measured now (or cached)."""
    from explorer.run import preview

    specs = grid.expand_on_defaults(_axes(args))
    rows = []
    for spec in specs:
        made, fresh = preview.ensure(spec, threads=args.threads)
        lo, hi = made.latency.p50_ci_us
        rows.append({"variant": spec.label(), "p50_us": made.latency.p50_us, "ci_low": lo, "ci_high": hi,
                     "noisy": made.latency.noisy, "size_kb": made.size_bytes / 1000,
                     "source": f"measured in {made.seconds['total']:.1f} s" if fresh else "cached"})
    with pd.option_context("display.width", 200, "display.float_format", "{:.2f}".format):
        print(pd.DataFrame(rows).to_string(index=False))
    print(f"\nLatency of the untrained architecture (same kernels and shapes as when trained), batch 1, "
          f"{args.threads} thread(s), on {host.current().label}; nothing was trained.")
    return 0


def _spec_options(p) -> None:
    """A flag per spec field (each takes one value or several: a grid's axis), and --max-drop."""
    for flag, (_, typ, choices) in AXES.items():
        p.add_argument(f"--{flag}", nargs="+", type=typ, choices=choices, metavar=flag.upper())
    p.add_argument("--max-drop", type=_points, metavar="POINTS",
                   help="with --precision auto: also keep in float the fewest layers that bring full int8 within "
                        "this many points of the fp32 sibling's validation accuracy (precision auto:POINTS)")


def _points(text: str) -> float:
    """--max-drop: points of accuracy, from 0 to 99.99 with at most two decimals (as precision auto:D takes)."""
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not (0 <= value < 100 and round(value, 2) == value):
        raise argparse.ArgumentTypeError(f"points of accuracy from 0 to 99.99, at most two decimals (got {text!r})")
    return value


def _axes(args) -> dict:
    from explorer.models import sources

    axes = {field: getattr(args, flag.replace("-", "_")) for flag, (field, _, _) in AXES.items()
            if getattr(args, flag.replace("-", "_")) is not None}
    if getattr(args, "max_drop", None) is not None:  # auto becomes auto:D ("auto" is implied when not asked)
        axes["precision"] = [f"auto:{args.max_drop:g}" if p == "auto" else p for p in axes.get("precision", ["auto"])]
    if "model" in axes:  # an imported model's name, keras:Name[:arg=value] or builtin, as a spec keeps it
        axes["model"] = [sources.resolve(m) for m in axes["model"]]
    return axes


def _device_options(p, what: str) -> None:
    p.add_argument("--max-ram", type=_positive_kb, metavar="KB",
                   help=what + "planned peak RAM (TensorFlow Lite Micro's arena) at most this many KB")
    p.add_argument("--max-flash", type=_positive_kb, metavar="KB", help=what + "flash (the model's bytes) at most this many KB")
    p.add_argument("--board", choices=list(BOARDS), help=what + "the board's SRAM and flash (" + "; ".join(
        b.describe() for b in BOARDS.values()) + ")")


def _positive_kb(text: str) -> float:
    value = float(text)
    if not (value > 0 and np.isfinite(value)):
        raise argparse.ArgumentTypeError(f"a positive number of KB, not {text}")
    return value


def _device_limits(args) -> tuple[float | None, float | None]:
    """RAM and flash limits (KB) from --board, overridden by --max-ram and --max-flash."""
    board = BOARDS.get(args.board) if args.board else None
    return (args.max_ram or (board.ram_kb if board else None), args.max_flash or (board.flash_kb if board else None))


def cmd_list(args) -> int:
    _print(results.group_seeds(_table(_store(args))), fmt=args.format)
    return 0


def _target_host(args) -> str | None:
    """The host id of --target (its last check's), or None for this machine."""
    from explorer.measure import targets

    return targets.get(args.target).host.id if getattr(args, "target", None) else None


def cmd_pareto(args) -> int:
    every = results.group_seeds(_table(_store(args), here=_target_host(args)))
    x = args.x
    df = every.dropna(subset=[x])
    if df.empty and not every.empty and x.endswith("_us"):  # cached, but timed on no host yet
        where = f"target {args.target}" if args.target else "this host"
        x = "peak_ram_kb" if every["peak_ram_kb"].notna().any() else "size_kb"
        print(f"None of the {len(every)} cached variants has a latency measured yet: 'python -m explorer measure"
              + (f" --target {args.target}" if args.target else "") + f"' times them on {where}. Meanwhile, the "
              f"front on {results.METRICS[x].title.lower()}, which needs no latency:\n")
        df = every.dropna(subset=[x])
    if args.dataset:
        df = df[df["dataset"] == args.dataset]
    fit = pareto.Fit(*_device_limits(args), args.board or "")
    if fit.active and args.format == "table":
        print(f"Only the {int(fit.mask(df).sum())} of {len(df)} variants that fit {fit.limits()}" + (f" ({fit.board})" if fit.board else "") + ".")
    if fit.active:
        df = df[fit.mask(df)]
    if df.empty:
        _print(df, fmt=args.format)
        return 0
    store = _store(args)
    shown = []
    for dataset, part in df.groupby("dataset"):
        part = part.reset_index(drop=True)
        evidence = significance.Evidence.read(store, dataset, list(part["key"]))
        status = significance.front_status(part, x, args.y, evidence)
        shown.append(part.assign(front=status)[status != significance.DOMINATED])
    front = pd.concat(shown).sort_values(["dataset", x])
    if args.format != "table":
        _print(front, fmt=args.format)
        return 0
    per = ", ".join(f"{d}: {n} of {int((df['dataset'] == d).sum())}"
                    for d, n in front["dataset"].value_counts().sort_index().items())
    print(f"Non-dominated variants ({results.METRICS[x].title} vs {results.METRICS[args.y].title}), one front per "
          f"dataset ({per}); front = on it, tied = not significantly less accurate than the front variants at least "
          "as fast:")
    _print(front, f"None of the {len(df)} variants has a {x} yet: run 'python -m explorer measure'.", by_dataset=True)
    return 0


def cmd_measure(args) -> int:
    from explorer.measure import targets
    from explorer.run import pipeline

    if args.quick and args.target:
        raise ValueError("--quick is this machine's first pass; a target is timed by the full protocol")
    store = _store(args)
    target = targets.refresh(args.target) if args.target else None
    where = target.host if target is not None else host.current()
    found, problems = record.load_all(store, where.id, foreign=False, threads=args.threads)
    for p in problems:
        log.warning("skipped damaged entry %s: %s", p.key, p.reason)
    evidence = {v.key for v in found if not v.has_model}
    found = [v for v in found if v.has_model]
    if args.key:
        unknown = sorted(set(args.key) - {v.key for v in found})
        if unknown:
            raise ValueError(f"{unknown[0]} is a seed replicate kept without its model (its seed point's latency is "
                             "its first seed's): nothing to time" if unknown[0] in evidence else
                             f"no intact cached variant with key {unknown[0]} (see 'python -m explorer list')")
        todo = [v for v in found if v.key in args.key]
    else:
        todo = [v for v in found if v.latency is None or (not args.quick and (args.all or v.latency.provisional))]
    bar = Bar(len(todo))
    for i, variant in enumerate(todo):
        pipeline.measure_latency(store, variant, args.threads, lambda f, msg, i=i: bar.show(i, f, msg), target=target,
                                 quick=args.quick)
    bar.close()
    log.info("Measured %d variants on %s%s.", len(todo), where.label, " (quick first pass: provisional)" * args.quick)
    return 0


def cmd_targets(args) -> int:
    """Add, list, remove or check the places latency is measured (explorer.measure.targets)."""
    from explorer.measure import targets

    if args.action == "add":
        if not args.address:
            raise ValueError("targets add NAME ADDRESS: give the address (ssh://user@host, command:…)")
        added = targets.add(targets.Target(args.name, args.address, args.python, binary=args.binary))
        log.info("Added target %s: %s, host id %s.", added.name, added.host.label, added.host.id)
    elif args.action == "remove":
        targets.remove(args.name)
    elif args.action == "check":
        target = targets.refresh(args.name)
        where, facts = target.host, target.facts
        print(f"{target.name}: {where.label}, {where.machine} {where.system}, host id {where.id}"
              + (f"; Python {facts['python']}, ai-edge-litert {facts['versions']['ai-edge-litert']}" if facts else ""))
    else:
        found = pd.DataFrame([{"target": t.name, "address": t.address, "python": t.python,
                               "host": t.host.label if t.is_local or t.facts else "not reached",
                               "host_id": t.host.id if t.is_local or t.facts else None}
                              for t in targets.load().values()])
        if args.format != "table":
            _print(found, fmt=args.format)
        else:
            print(found.drop(columns="host_id").to_string(index=False))
    return 0


def _add_to_every_variant(args, add, done: str) -> int:
    """Run add(store, key) (True: it added something) over every intact variant, and say how many it changed."""
    store = _store(args)
    metas, problems = store.variants()
    for p in problems:
        log.warning("skipped damaged entry %s: %s", p.key, p.reason)
    added = sum(add(store, m["key"]) for m in metas)
    log.info("%s of %d variants (%d had it already).", done, added, len(metas) - added)
    return 0


def cmd_predict(args) -> int:
    """Keep the test predictions of variants built before they were stored (for paired comparisons)."""
    from explorer.run import backfill

    return _add_to_every_variant(args, backfill.add_predictions, "Stored the test predictions")


def cmd_memory(args) -> int:
    """Plan the peak RAM and flash of variants built before they were planned, or planned by an older planner (from
    their models, no training)."""
    from explorer.run import backfill

    return _add_to_every_variant(args, backfill.add_memory, "Planned the memory")


def cmd_report(args) -> int:
    """Write a self-contained HTML report of a Pareto view (the same view as the Pareto page)."""
    from explorer.present import report

    store = _store(args)
    df = _table(store, foreign=True)
    datasets_ = sorted(df["dataset"].unique())
    dataset = args.dataset or ("fashion-mnist" if "fashion-mnist" in datasets_ else (datasets_ or [None])[0])
    df = df[df["dataset"] == dataset]
    if args.depth:
        df = df[df["depth"].isin(args.depth)]
    if args.quant:
        df = df[df["quant"].isin(args.quant)]
    df = results.group_seeds(df).dropna(subset=[args.x]).reset_index(drop=True)
    if df.empty:
        raise ValueError(f"no measured variants of dataset {dataset!r} match these filters")
    front = results.front(df, args.x)
    budget = args.budget if args.budget is not None else float(df[args.x].median())
    fit = pareto.Fit(*_device_limits(args), args.board or "")
    answer = pareto.budget_answer(df, args.x, results.METRICS[args.x].unit, budget, fit=fit)
    out = Path(args.out)
    text = report.render(df, front, args.x, answer, lambda key: record.load(store, key, host.current().id),
                         log_x=args.log, fit=fit)
    tmp = out.with_name(f".{out.name}.tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(out)
    print(f"Wrote {out} ({out.stat().st_size / 1e6:.1f} MB): {len(df)} variants of {dataset}, "
          f"{int(front.sum())} on the front; {answer.text.replace('**', '')}")
    return 0


def cmd_jobs(args) -> int:
    from explorer.run.queue import LIVE, STATES, Queue

    queue = Queue()
    for job in queue.reap():
        log.warning("job %d (%s) had lost its worker: %s", job.id, job.label, job.message)
    jobs = queue.jobs(STATES if args.all else LIVE, limit=args.limit)
    workers = queue.live_workers()
    if args.format != "table":  # for scripts: every field of every job (the payload holds the spec), and the worker
        _print(pd.DataFrame([{**dataclasses.asdict(j), "live": j.live, "worker_alive": j.worker_pid in workers}
                             for j in jobs]), fmt=args.format)
        return 0
    print(f"worker: {'pid ' + ', '.join(map(str, workers)) if workers else 'not running (the app starts one on demand)'}")
    if not jobs:
        print("No jobs queued or running." if not args.all else "No jobs yet.")
        return 0
    now = time.time()
    for j in jobs:
        age = now - (j.started or j.created)
        who = f"{len(j.requesters)} waiting" if j.live else ""
        print(f"{j.id:>5}  {j.kind:<7} {j.state:<9} {j.fraction:4.0%}  {age:6.0f} s  {j.label:<40} {who:<10} {j.message}")
    return 0


def cmd_worker(args) -> int:
    from explorer.run import worker

    return worker.main(args.idle_exit)


def cmd_import_model(args) -> int:
    """Import a .keras or .tflite model as a source of variants (validated; nothing from it is executed)."""
    from explorer.models import imports

    made = imports.import_path(args.name, Path(args.path), args.scale)
    h, w, c = made.input_shape
    print(f"Imported {made.name} ({made.kind}): {h}x{w}x{c} images in the range {made.scale}, {made.classes} "
          f"classes{', ' + format(made.params, ',') + ' parameters' if made.params else ''}; its variants: "
          f"sweep --model {made.name} --dataset D --quant ... (spec model {made.source})")
    for note in made.notes:
        print(f"  {note}")
    return 0


def cmd_models(args) -> int:
    """List imported models, or delete one with the variants built from it."""
    from explorer.models import imports

    if args.delete:
        n = imports.delete(args.delete, _store(args))
        print(f"Deleted {args.delete} and its {n} cached variants.")
        return 0
    found = imports.available()
    if not found:
        print("No imported models: python -m explorer import-model NAME FILE")
    for m in found:
        h, w, c = m.input_shape
        print(f"{m.name:<24} {m.kind:<7} {h}x{w}x{c}  {m.classes:>4} classes  scale {m.scale:<6} {m.source}")
    return 0


def cmd_add_dataset(args) -> int:
    from explorer.data import uploads

    report = uploads.import_path(args.name, Path(args.path))
    print(f"Added {report.info.name}: {report.info.source}; classes: "
          + ", ".join(f"{c} ({n})" for c, n in report.class_counts.items()))
    if report.skipped:
        log.warning("Skipped %d unreadable files: %s", len(report.skipped), ", ".join(report.skipped[:10]))
    return 0


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m explorer", description=__doc__.split("\n")[0])
    p.add_argument("--cache", help="cache folder (default: cached_models/ or $EXPLORER_CACHE_DIR)")
    sub = p.add_subparsers(dest="command", required=True)
    sweep = sub.add_parser("sweep", help="train/load every variant of a grid and print the results")
    sweep.add_argument("--preset", choices=sorted(grid.PRESETS), help="a named grid instead of the axes")
    _spec_options(sweep)
    sweep.add_argument("--threads", type=_threads, default=1, help="interpreter threads for latency")
    sweep.add_argument("--no-reuse", action="store_true", help="train every variant alone (benchmarks)")
    _ray_options(sweep, "variants")
    _seeds_option(sweep, "build each variant with N seeds (its seed, +1, …): shown as one point, the mean with the "
                         "range a new seed falls in")
    sweep.add_argument("--seeds-as-evidence", action="store_true",
                       help="keep only the first seed's model: the further seeds keep their accuracy and test "
                            "predictions, and the point's latency is the first seed's (how the shipped cache holds seeds)")
    prev = sub.add_parser("preview", help="latency of untrained architectures on this host, in seconds each")
    _spec_options(prev)
    prev.add_argument("--threads", type=_threads, default=1)
    srch = sub.add_parser("search", help="search for the front (Optuna, multi-objective TPE) within a budget; resumable by name")
    _spec_options(srch)
    srch.add_argument("--budget", type=_duration, help="wall-clock budget: 90s, 10m, 1h")
    srch.add_argument("--trials", type=int, help="at most this many trials in this run")
    srch.add_argument("--study", default="search", help="the study's name: the same name resumes it")
    srch.add_argument("--min-accuracy", type=float, help="constraint: validation accuracy at least this")
    srch.add_argument("--max-p50", type=float, help="constraint: p50 latency at most this many µs")
    srch.add_argument("--max-size", type=float, help="constraint: .tflite size at most this many KB")
    _device_options(srch, "constraint: ")
    _ray_options(srch, "trials")
    srch.add_argument("--sampler", default="tpe", choices=search.SAMPLERS, help="tpe (default) or random (a baseline)")
    srch.add_argument("--no-economize", action="store_true",
                      help="train every trial the sampler proposes: no skipping of trials the front dominates, no early "
                           "stop of hopeless ones (the deadline is kept either way)")
    srch.add_argument("--sampler-seed", type=int, default=0, help="the sampler's seed (--seed is the models')")
    srch.add_argument("--target", help="measure the latency objective on this target (see 'targets')")
    _seeds_option(srch, "build each trial with N seeds and score their mean (N times the training; for small "
                        "differences, or a small validation split)")
    lst = sub.add_parser("list", help="print every cached variant")
    lst.add_argument("--format", default="table", choices=FORMATS, help="a table for people; csv or json for scripts")
    par = sub.add_parser("pareto", help="print the non-dominated variants")
    par.add_argument("--format", default="table", choices=FORMATS, help="a table for people; csv or json for scripts")
    par.add_argument("--x", default="p50_us", choices=sorted(results.METRICS))
    par.add_argument("--y", default="accuracy", choices=sorted(results.METRICS))
    par.add_argument("--dataset")
    par.add_argument("--target", help="the latencies measured on this target (see 'targets')")
    _device_options(par, "only the variants that fit: ")
    meas = sub.add_parser("measure", help="measure latency on this host where it is missing")
    meas.add_argument("--all", action="store_true", help="re-measure every variant")
    meas.add_argument("--key", nargs="+", help="re-measure these variants only")
    meas.add_argument("--threads", type=_threads, default=1)
    meas.add_argument("--quick", action="store_true", help="a quick first pass of those with no figure here, marked "
                      "provisional (without it, provisional figures get the full protocol)")
    meas.add_argument("--target", help="measure on this target (see 'targets'; default: this machine)")
    tgt = sub.add_parser("targets", help="the places latency is measured: add, list, remove, check")
    tgt.add_argument("action", choices=["add", "list", "remove", "check"])
    tgt.add_argument("--format", default="table", choices=FORMATS, help="list: a table for people; csv or json")
    tgt.add_argument("name", nargs="?", default="local")
    tgt.add_argument("address", nargs="?", help="ssh://[user@]host[:port], adb://SERIAL, or command:<words> (a "
                                                "command that runs a shell command string there, as ssh does)")
    tgt.add_argument("--python", default="python3", help="the target's Python, with ai-edge-litert and numpy")
    tgt.add_argument("--binary", default="/data/local/tmp/benchmark_model",
                     help="adb targets: where LiteRT's benchmark_model is on the device")
    sub.add_parser("predict", help="store the test predictions of variants built before they were kept (no training)")
    sub.add_parser("memory", help="plan the peak RAM and flash where missing or planned by an older planner")
    rep = sub.add_parser("report", help="write a self-contained HTML report of the Pareto view")
    rep.add_argument("out", help="the .html file to write")
    rep.add_argument("--dataset")
    rep.add_argument("--x", default="p50_us", choices=[m for m, v in results.METRICS.items() if v.lower_is_better])
    rep.add_argument("--depth", nargs="+", type=int)
    rep.add_argument("--quant", nargs="+", choices=QUANT_MODES)
    rep.add_argument("--budget", type=float, help="best accuracy under this much of x (default: the median)")
    rep.add_argument("--log", action="store_true", help="log scale on x")
    _device_options(rep, "the budget answer's device, and fade what does not fit: ")
    jobs = sub.add_parser("jobs", help="list builds and measurements queued or running in the worker")
    jobs.add_argument("--all", action="store_true", help="finished jobs too")
    jobs.add_argument("--limit", type=int, default=50)
    jobs.add_argument("--format", default="table", choices=FORMATS, help="a table for people; csv or json for scripts")
    work = sub.add_parser("worker", help="serve the job queue (the app starts one on demand)")
    work.add_argument("--idle-exit", type=float, default=None, metavar="SECONDS",
                      help="exit after this long with nothing to do (default: run until stopped)")
    imp = sub.add_parser("import-model", help="import your own .keras or .tflite model as a source of variants")
    imp.add_argument("name", help="the name its variants carry (lower-case letters, digits, '-', '_')")
    imp.add_argument("path", help="a .keras file (Functional or Sequential, built-in layers) or a .tflite")
    imp.add_argument("--scale", default="auto", choices=["auto", "0-1", "-1-1", "0-255"],
                     help="the input range the model expects (default: what its first layer implies, else 0-1)")
    mods = sub.add_parser("models", help="list imported models (--delete NAME removes one and its variants)")
    mods.add_argument("--delete", metavar="NAME")
    add = sub.add_parser("add-dataset", help="import a folder (or zip) of class folders as a dataset")
    add.add_argument("name")
    add.add_argument("path")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    # Diagnostics go to stderr through logging; results (tables) to stdout.
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stderr, force=True)
    args = parser().parse_args(argv)
    try:
        settings.check()  # a bad EXPLORER_* value stops here, naming the variable
        commands = {"sweep": cmd_sweep, "list": cmd_list, "pareto": cmd_pareto, "measure": cmd_measure,
                    "add-dataset": cmd_add_dataset, "jobs": cmd_jobs, "worker": cmd_worker, "preview": cmd_preview, "report": cmd_report, "predict": cmd_predict, "memory": cmd_memory,
                    "import-model": cmd_import_model, "models": cmd_models,
                    "search": cmd_search, "targets": cmd_targets}
        return commands[args.command](args)
    except (SpecError, ValueError, RuntimeError) as exc:  # includes DatasetError, CacheError
        print(f"error: {exc}", file=sys.stderr)
        return 2
