"""Models as users write them: the zoo of tests/zoo.py at full size, saved by Keras 3 and by tf-keras, imported,
and built with every lever; then 500 broken files.

    $ .venv/bin/python -m benchmarks real_models

Per network: whether it imports (or the message), the translated network's largest output difference from the
writer's own (on a fixed random batch), and for the shapes and the three smallest keras.applications: fp32,
dynamic, int8, qat-int8, pruning 0.5 and clustering 16 built (or the message naming the layer), each recorded
accuracy against an independent LiteRT evaluation. Data small enough for 2 cores: a 1,000-image Fashion-MNIST
subset (28 px grey) and 1,000 photo patches made here (32 px colour), one epoch each. Then an untrained
keras.applications.MobileNetV2 imported and trained briefly against the same architecture named keras:, three
seeds. Then the fuzz run: 500 archives mutated from the tiny zoo (fields removed or of the wrong type, shapes
that do not chain, unknown classes and modules, NaN weights, truncated archives), each a model or a message.
"""

from __future__ import annotations

import io
import json
import math
import os
import random
import signal
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import numpy as np

from benchmarks.own_model import independent_accuracy
from benchmarks.report import Row, row
from benchmarks.worker import in_fresh_user_data

ROOT = Path(__file__).resolve().parent.parent
LEVERS = {"fp32": {}, "dynamic": {"quant": "dynamic"}, "int8": {"quant": "int8"}, "qat-int8": {"quant": "qat-int8"},
          "prune 0.5": {"sparsity": 0.5}, "cluster 16": {"clusters": 16}}
SMALL_APPS = ("mobilenetv2", "mobilenetv3small", "efficientnetb0")
MESSAGES = ("ModelImportError", "LeverError", "SpecError", "GraphError")
SEEDS = (0, 1, 2)


def write_zoo(out: Path, tiny: bool) -> None:
    for dialect, legacy in (("k3", None), ("tfk", "1")):
        env = {k: v for k, v in os.environ.items() if k != "TF_USE_LEGACY_KERAS"} | (
            {"TF_USE_LEGACY_KERAS": legacy} if legacy else {})
        subprocess.run([sys.executable, str(ROOT / "tests" / "zoo.py"), str(out / dialect), "--colour-classes=8",
                        *(["--tiny"] if tiny else [])], env=env, check=True, capture_output=True, timeout=1800)


def _imported(path: Path) -> dict:
    """Import one network; its translation's largest difference from the writer's outputs."""
    from explorer.models import imports
    from explorer.models.tf_runtime import keras

    meta = json.loads(path.with_suffix(".json").read_text())
    name = f"{path.stem.replace('_', '-')}-{path.parent.name}"
    t0 = time.perf_counter()
    try:
        made = imports.import_path(name, path)
    except imports.ModelImportError as exc:
        return {"name": name, "imported": False, "message": str(exc)}
    seconds = time.perf_counter() - t0
    model = keras.models.load_model(made.path, safe_mode=True, compile=False)
    x = np.random.default_rng(0).uniform(0, meta["x_high"], (4, meta["side"], meta["side"], meta["channels"]))
    diff = float(np.abs(model(x.astype("float32"), training=False).numpy() - np.array(meta["y"])).max())
    return {"name": name, "imported": True, "import_s": seconds, "max_abs_diff": diff, "source": made.source,
            "channels": meta["channels"], "notes": list(made.notes), "layers": len(model.layers)}


def _levers(net: dict, store) -> dict:
    """Each lever built from one trained base (a stage of the cache), its accuracy against LiteRT's own."""
    from explorer.models import sources
    from explorer.run import pipeline
    from explorer.spec import VariantSpec
    from explorer.store.cache import TFLITE

    dataset = "zoo-photos" if net["channels"] == 3 else "zoo-fashion"
    base = sources.on_source(VariantSpec(dataset=dataset, epochs=1, min_steps=0, patience=0, tune_epochs=1,
                                         batch_size=32, augment=False), net["source"])
    out = {}
    for lever, change in LEVERS.items():
        t0 = time.perf_counter()
        try:
            v, _ = pipeline.ensure(base.replace(**change), store, measure_missing=False)
        except Exception as exc:  # noqa: BLE001 - what a user would see, classified below
            out[lever] = {"built": False, "message": str(exc)[:300], "kind": type(exc).__name__}
            continue
        data = sources.for_spec(v.spec).data(v.spec)
        tflite = store.file_path("variants", v.key, TFLITE).read_bytes()
        out[lever] = {"built": True, "accuracy": v.accuracy, "seconds": time.perf_counter() - t0,
                      "independent_accuracy": independent_accuracy(tflite, data.x_test, data.y_test)}
    return out


def _brief_training(tmp: Path, store) -> dict:
    """An untrained keras.applications.MobileNetV2 imported and trained as the same architecture named keras:."""
    from explorer.models import imports, sources
    from explorer.run import pipeline
    from explorer.spec import VariantSpec

    made = imports.import_path("untrained-mnv2", tmp / "zoo" / "tfk" / "untrained_mobilenetv2.keras")
    acc = {"imported": [], "keras:": []}
    for seed in SEEDS:
        for kind, model in (("imported", made.source), ("keras:", "keras:MobileNetV2:alpha=0.35")):
            spec = sources.on_source(VariantSpec(dataset="zoo-photos", epochs=8, min_steps=0, patience=0, seed=seed,
                                                 batch_size=32, augment=False), model)
            acc[kind].append(pipeline.ensure(spec, store, measure_missing=False)[0].accuracy)
    return {k: {"seeds": v, "mean": float(np.mean(v))} for k, v in acc.items()}


def _mutations(archive: bytes, rng: random.Random) -> bytes:
    """One broken copy of an archive: a config field removed or retyped, a layer renamed to an unknown class or
    module, an input shape that does not chain, NaN weights, or the archive truncated."""
    kind = rng.choice(["drop", "retype", "class", "module", "shape", "nan", "truncate", "wires", "junk"])
    if kind == "truncate":
        return archive[: rng.randrange(1, len(archive))]
    with zipfile.ZipFile(io.BytesIO(archive)) as zf:
        files = {n: zf.read(n) for n in zf.namelist()}
    config = json.loads(files["config.json"])
    layers = config["config"]["layers"]
    layer = rng.choice(layers)
    cfg = layer.setdefault("config", {})
    if kind == "drop" and cfg:
        cfg.pop(rng.choice(sorted(cfg)))
    elif kind == "retype" and cfg:
        cfg[rng.choice(sorted(cfg))] = rng.choice([None, "x", -3, [1, "a"], {"k": 1}, 1e30])
    elif kind == "class":
        layer["class_name"] = rng.choice(["NoSuchLayer", "Lambda", "TFOpLambda", "Functional", "EinsumDense", ""])
    elif kind == "module":
        layer["module"] = rng.choice(["os", "my_pkg.layers", "keras.src.ops.numpy", "builtins"])
    elif kind == "shape":
        first = layers[0].setdefault("config", {})
        first["batch_shape" if "batch_shape" in first else "batch_input_shape"] = rng.choice(
            [[None, 5, 3, 2], [None, 0, 8, 1], [None, 8], "x", [None, -1, -1, 3]])
    elif kind == "wires":
        layer["inbound_nodes"] = rng.choice([[], [[["ghost", 0, 0, {}]]], "x", [{"args": [1.0]}], None])
    elif kind == "junk":
        files["config.json"] = rng.choice([b"{", b"[]", b"null", json.dumps({"class_name": "Functional"}).encode()])
    if kind != "junk":
        files["config.json"] = json.dumps(config).encode()
    if kind == "nan":
        files["model.weights.h5"] = _nan_weights(files["model.weights.h5"])
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for n, data in files.items():
            zf.writestr(n, data)
    return buf.getvalue()


def _nan_weights(h5: bytes) -> bytes:
    import h5py

    buf = io.BytesIO(h5)
    with h5py.File(buf, "r+") as f:
        sets = []
        f.visititems(lambda n, o: sets.append(o) if isinstance(o, h5py.Dataset) and o.dtype.kind == "f" and o.size else None)
        if sets:
            sets[0][...] = np.nan
    return buf.getvalue()


def _timeout(signum, frame):
    raise TimeoutError("hung")


def _fuzz(tmp: Path, count: int = 500) -> dict:
    """Each mutated archive ends in a model or a clear message (ModelImportError), never another exception or a
    hang; nothing is stored from a refused one."""
    from explorer.models import imports

    rng = random.Random(0)
    sources = [p.read_bytes() for p in sorted((tmp / "tiny").glob("*/*.keras"))]
    said, imported, tracebacks, hung = {}, 0, [], 0
    signal.signal(signal.SIGALRM, _timeout)
    for i in range(count):
        data = _mutations(rng.choice(sources), rng)
        signal.alarm(60)
        try:
            imports.import_bytes(f"fuzz-{i}", data, "fuzz.keras")
            imported += 1
        except imports.ModelImportError as exc:
            key = str(exc).split(":")[0][:60]
            said[key] = said.get(key, 0) + 1
        except TimeoutError:
            hung += 1
        except Exception as exc:  # noqa: BLE001 - a traceback a user would have seen
            tracebacks.append(f"{type(exc).__name__}: {str(exc)[:160]}")
        finally:
            signal.alarm(0)
    stored = sum(1 for p in imports.models_dir().iterdir() if p.name.startswith("fuzz-"))
    return {"files": count, "imported": imported, "refused_with_message": sum(said.values()), "tracebacks": tracebacks,
            "hung": hung, "stored": stored, "messages": dict(sorted(said.items(), key=lambda kv: -kv[1])[:20])}


def run() -> list[Row]:
    return in_fresh_user_data("real-models-", _run)


def _datasets() -> None:
    from benchmarks.small_sets import fashion_subset, photo_patches
    from explorer.data import uploads

    uploads.import_zip("zoo-fashion", fashion_subset(1000))
    uploads.import_zip("zoo-photos", photo_patches(1000, 32, seed=5))


def _run(tmp: Path) -> list[Row]:
    from explorer.store.cache import Store

    t0 = time.perf_counter()
    write_zoo(tmp / "zoo", tiny=False)
    write_zoo(tmp / "tiny", tiny=True)
    _datasets()
    store = Store(tmp / "cache")
    nets = [_imported(p) for p in sorted((tmp / "zoo").glob("*/*.keras"))]
    for net in nets:  # the levers on every shape, and on the three smallest applications as Keras 3 saved them
        stem, dialect = net["name"].rsplit("-", 1)
        app = stem in ("resnet50", "densenet121", "nasnetmobile") or (stem in SMALL_APPS and dialect == "tfk")
        if net["imported"] and not app and not stem.startswith("untrained"):
            net["levers"] = _levers(net, store)
    brief = _brief_training(tmp, store)
    fuzz = _fuzz(tmp)
    return _rows(nets, brief, fuzz, time.perf_counter() - t0)


def _rows(nets: list[dict], brief: dict, fuzz: dict, seconds: float) -> list[Row]:
    built = [n for n in nets if "levers" in n]
    per_lever = {lever: sum(n["levers"][lever]["built"] for n in built) / len(built) for lever in LEVERS}
    failures = [f"{n['name']} {lever}: {r['message']}" for n in built for lever, r in n["levers"].items()
                if not r["built"]]
    raw = [f for n in built for lever, r in n["levers"].items() if not r["built"] and r["kind"] not in MESSAGES
           for f in [f"{n['name']} {lever}: {r['kind']}"]]
    equal = [r["accuracy"] == r["independent_accuracy"] for n in built for r in n["levers"].values() if r["built"]]
    diffs = {n["name"]: n["max_abs_diff"] for n in nets if n["imported"]}
    gap = (brief["keras:"]["mean"] - brief["imported"]["mean"]) * 100
    spread = math.sqrt(sum(np.var(b["seeds"], ddof=1) / len(b["seeds"]) for b in brief.values())) * 100
    detail = {"networks": nets, "brief_training": brief, "fuzz": fuzz, "seconds": seconds}
    rows = [
        row("networks imported", sum(n["imported"] for n in nets), "", ">=", 20,
            f"of {len(nets)}; refused: " + "; ".join(n["message"][:120] for n in nets if not n["imported"])),
        row("largest output difference after translation and flattening", max(diffs.values()), "", "<=", 1e-5,
            "; ".join(f"{k} {v:.1e}" for k, v in sorted(diffs.items(), key=lambda kv: -kv[1])[:5])),
        row("least share of the set a lever builds on", min(per_lever.values()), "", ">=", 0.9,
            f"{len(built)} networks; " + "; ".join(f"{k} {v:.0%}" for k, v in per_lever.items())
            + ("; failed: " + " | ".join(failures[:6]) if failures else "")),
        row("lever failures shown as a library's error", len(raw), "", "<=", 0, "; ".join(raw[:6])),
        row("recorded accuracy equal to LiteRT's own evaluation", sum(equal) / max(len(equal), 1), "", ">=", 1.0,
            f"{sum(equal)} of {len(equal)} variants"),
        row("brief training: imported against keras:, absolute difference (points, mean of 3 seeds)", abs(gap), "points",
            "<=", 2.0, f"imported untrained MobileNetV2 {brief['imported']['mean']:.3f} "
            f"({', '.join(f'{a:.3f}' for a in brief['imported']['seeds'])}), keras:MobileNetV2:alpha=0.35 "
            f"{brief['keras:']['mean']:.3f} ({', '.join(f'{a:.3f}' for a in brief['keras:']['seeds'])}); 8 epochs on "
            f"1,000 photo patches at 32 px; the difference is {abs(gap) / spread:.1f} standard errors of the seeds' "
            "spread (Welch)"),
        row("fuzz: files ending in a traceback or a hang", len(fuzz["tracebacks"]) + fuzz["hung"], "", "<=", 0,
            f"{fuzz['files']} mutated archives: {fuzz['imported']} imported, {fuzz['refused_with_message']} refused "
            f"with a message; {'; '.join(fuzz['tracebacks'][:4])}"),
        row("fuzz: refused files that left something stored", max(0, fuzz["stored"] - fuzz["imported"]), "", "<=", 0),
    ]
    rows.append(row("real_models", float(all(r.met is not False for r in rows)), "", ">=", 1.0,
                    "every target of the real-models set met", detail=detail))
    return rows
