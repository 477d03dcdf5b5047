"""Your own model end to end, from a fresh store: two imported .keras networks through every quantization mode.

    $ .venv/bin/python -m benchmarks own_model

- keras.applications.MobileNetV2(alpha=0.35, weights=None) at 96x96 on a colour upload (photo patches, 8 classes);
- a small residual Functional network (two conv blocks with a skip each) on Fashion-MNIST.

Each is saved as .keras and imported (timed), then built as fp32, dynamic, int8 and qat-int8 variants. Per
variant: p50 with its interval, accuracy with its interval, size, whether XNNPACK runs every op, the recorded
accuracy against an independent LiteRT evaluation of the same .tflite (equal), and for fp32 and int8 the build
time against the same network trained, converted and evaluated by plain Keras code (at most 1.2x).
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from benchmarks.report import Row, row
from benchmarks.worker import in_fresh_user_data

EPOCHS = {"photos": 8, "fashion": 2}
MODES = ("fp32", "dynamic", "int8", "qat-int8")


def _mobilenet(keras):
    """Untrained, its batch norm's momentum 0.9 as one training from scratch on a small set would set it (the
    application's 0.999 keeps initial statistics for thousands of steps: near-chance accuracy after 100)."""
    m = keras.applications.MobileNetV2(weights=None, alpha=0.35, input_shape=(96, 96, 3), classes=8)
    for layer in m.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            layer.momentum = 0.9
    return m


def _residual(keras):
    kl = keras.layers
    x = inp = keras.Input((28, 28, 1), name="image")
    for i, filters in enumerate((16, 32)):
        x = kl.Conv2D(filters, 3, padding="same", activation="relu", name=f"conv{i}")(x)
        y = kl.Conv2D(filters, 3, padding="same", name=f"branch{i}")(x)
        x = kl.MaxPooling2D(name=f"pool{i}")(kl.ReLU(name=f"relu{i}")(kl.Add(name=f"add{i}")([x, y])))
    x = kl.Dense(64, activation="relu", name="dense")(kl.Flatten(name="flatten")(x))
    return keras.Model(inp, kl.Dense(10, activation="softmax", name="predictions")(x), name="residual")


def independent_accuracy(tflite: bytes, x: np.ndarray, y: np.ndarray) -> float:
    """The model's test accuracy by LiteRT alone, one image at a time (nothing of explorer.measure)."""
    from ai_edge_litert.interpreter import Interpreter

    interp = Interpreter(model_content=tflite)
    interp.allocate_tensors()
    inp, out = interp.get_input_details()[0], interp.get_output_details()[0]
    right = 0
    for img, label in zip(x, y):
        if inp["dtype"] == np.float32:
            value = img[None].astype(np.float32)
        else:
            scale, zero = inp["quantization"]
            value = np.clip(np.round(img[None] / scale + zero), -128, 127).astype(inp["dtype"])
        interp.set_tensor(inp["index"], value)
        interp.invoke()
        right += int(interp.get_tensor(out["index"])[0].argmax() == label)
    return right / len(y)


def plain_keras_seconds(path: Path, data, epochs: int, mode: str, batch_size: int) -> float:
    """What a user's own code takes for the same work: load, train (Adam, the same epochs and batch), convert,
    evaluate the .tflite on the test split."""
    from explorer.models.tf_runtime import keras, tf

    t0 = time.perf_counter()
    m = keras.models.load_model(path, safe_mode=True, compile=False)
    m.compile(optimizer=keras.optimizers.Adam(1e-3), loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    m.fit(data.x_train, data.y_train, batch_size=batch_size, epochs=epochs, validation_data=(data.x_val, data.y_val),
          verbose=0)
    converter = tf.lite.TFLiteConverter.from_keras_model(m)
    if mode == "int8":
        sample = data.x_train[:256].astype(np.float32)
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.representative_dataset = lambda: ([img[None]] for img in sample)
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        converter.inference_input_type = converter.inference_output_type = tf.int8
    tflite = converter.convert()
    from explorer.measure import measure

    measure.evaluate(tflite, data.x_test, data.y_test, data.info.num_classes)
    return time.perf_counter() - t0


def run() -> list[Row]:
    return in_fresh_user_data("own-model-", _run)


def _run(tmp: Path) -> list[Row]:
    from benchmarks.small_sets import photo_patches
    from explorer.data import uploads
    from explorer.models import imports, sources
    from explorer.models.tf_runtime import keras
    from explorer.run import pipeline
    from explorer.spec import VariantSpec
    from explorer.store.cache import TFLITE, Store

    uploads.import_zip("own-photos", photo_patches(600, 96, seed=3))
    store = Store(tmp / "cache")
    rows, detail = [], {}
    for name, make, dataset in (("mobilenet", _mobilenet, "own-photos"), ("residual", _residual, "fashion-mnist")):
        path = tmp / f"{name}.keras"
        make(keras).save(path)
        t0 = time.perf_counter()
        made = imports.import_path(name, path)
        import_s = time.perf_counter() - t0
        epochs = EPOCHS["photos" if dataset == "own-photos" else "fashion"]
        base = sources.on_source(VariantSpec(dataset=dataset, epochs=epochs, min_steps=0, patience=0, tune_epochs=1,
                                             batch_size=32), made.source)
        built = {}
        for mode in MODES:
            v, report = pipeline.ensure(base.replace(quant=mode), store)
            data = sources.for_spec(v.spec).data(v.spec)
            tflite = store.file_path("variants", v.key, TFLITE).read_bytes()
            built[mode] = (v, report, independent_accuracy(tflite, data.x_test, data.y_test))
        fp32, int8 = built["fp32"][0], built["int8"][0]
        per = {}
        for mode, (v, report, independent) in built.items():
            lo, hi = v.latency.p50_ci_us
            per[mode] = {"label": v.label, "p50_us": v.latency.p50_us, "p50_ci_us": [lo, hi],
                         "accuracy": v.accuracy, "accuracy_ci": [v.intervals["accuracy_lo"], v.intervals["accuracy_hi"]]
                         if v.intervals else None, "independent_accuracy": independent,
                         "size_kb": v.size_kb, "peak_ram_kb": v.peak_ram_kb, "xnnpack_all": not v.fallback_ops,
                         "fallback_ops": list(v.fallback_ops or ()), "build_s": sum(report.seconds.values())}
        equal = all(p["accuracy"] == p["independent_accuracy"] for p in per.values())
        data = sources.for_spec(fp32.spec).data(fp32.spec)
        ratios = {}
        for mode in ("fp32", "int8"):  # from scratch, as the plain code does (no cached stage)
            _, report = pipeline.ensure(base.replace(quant=mode), Store(tmp / f"fresh-{name}-{mode}"), reuse=False,
                                        measure_missing=False)
            ours = sum(s for k, s in report.seconds.items() if k != "measure")
            plain = plain_keras_seconds(made.path, data, epochs, mode, base.batch_size)
            ratios[mode] = {"ours_s": ours, "plain_keras_s": plain, "ratio": ours / plain}
        detail[name] = {"import_s": import_s, "variants": per, "build_vs_plain_keras": ratios}
        speed = fp32.latency.p50_us / int8.latency.p50_us
        rows += [
            row(f"{name}: import", import_s, "s", note=f"{made.kind}, {made.params:,} parameters, checked and loaded "
                                                       "in safe mode"),
            row(f"{name}: int8 / fp32 speed-up", speed, "x",
                note="; ".join(f"{m} {p['p50_us']:.1f} µs ({p['p50_ci_us'][0]:.1f}–{p['p50_ci_us'][1]:.1f}), accuracy "
                               f"{p['accuracy']:.3f}, {p['size_kb']:.0f} KB" for m, p in per.items())),
            row(f"{name}: modes with every op in XNNPACK", sum(p["xnnpack_all"] for p in per.values()), "",
                note="ops LiteRT's built-in kernels run: " + "; ".join(
                    f"{m}: {', '.join(sorted(set(p['fallback_ops']))) or 'none'}" for m, p in per.items())),
            row(f"{name}: recorded accuracy equals LiteRT's own evaluation", float(equal), "", ">=", 1.0),
            row(f"{name}: build time against plain Keras (slowest of fp32, int8)",
                max(r["ratio"] for r in ratios.values()), "x", "<=", 1.2,
                "; ".join(f"{m} {r['ours_s']:.1f} s against {r['plain_keras_s']:.1f} s" for m, r in ratios.items())),
        ]
    rows.append(row("own_model", float(all(r.met is not False for r in rows)), "", ">=", 1.0,
                    "every target of both imported models met", detail=detail))
    return rows
