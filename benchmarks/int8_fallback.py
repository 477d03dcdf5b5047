"""Full-int8 models with and without their softmax, depths 1-3: does dropping the op XNNPACK cannot run pay?

    $ .venv/bin/python -m benchmarks int8_fallback

XNNPACK has no int8 softmax, so a full-integer model ending in softmax runs that last op on LiteRT's
built-in kernels (the official benchmark tool reports it "not fully accelerated"). The predicted class
is the argmax of the logits either way. Each depth's two conversions come from the same (untrained:
weights do not change the work) Keras model and are timed alternately in one process, 5 rounds.
"""

from __future__ import annotations

import numpy as np

from benchmarks.report import Row, row
from explorer.data import datasets
from explorer.measure import measure, profile
from explorer.spec import VariantSpec

ROUNDS = 5


def run() -> list[Row]:
    from explorer.models import model as model_lib, quantize

    data = datasets.load("fashion-mnist")
    image = data.x_test[0]
    table, rows = [], []
    for depth in (1, 2, 3):
        spec = VariantSpec(depth=depth, quant="int8")
        m = model_lib.build(spec, data.info.input_shape, data.info.num_classes)
        models = {with_softmax: quantize.to_tflite(m, "int8", data.x_train[:256], softmax=with_softmax)
                  for with_softmax in (True, False)}
        p50 = {k: [] for k in models}
        for _ in range(ROUNDS):
            for k, model in models.items():
                p50[k].append(float(np.median(measure.latency_samples(model, image, min_seconds=0.5))))
        before, after = np.median(p50[True]), np.median(p50[False])
        entry = {"depth": depth, "p50_with_softmax_us": round(before, 3), "p50_without_us": round(after, 3),
                 "speedup": round(before / after, 4),
                 "fallback_with_softmax": profile.fallbacks(models[True]),
                 "fallback_without": profile.fallbacks(models[False]),
                 "fully_delegated_now": not profile.fallbacks(models[False])}
        table.append(entry)
        rows.append(row(f"depth {depth} int8: p50 with softmax / without", before / after, "×",
                        note=f"{before:.2f} → {after:.2f} µs; falls back: {entry['fallback_with_softmax'] or 'none'}"
                             f" → {entry['fallback_without'] or 'none'}"))
    worst = min(e["speedup"] for e in table)
    rows.insert(0, row("int8_fallback", worst, "×", ">=", 1.0, detail={"depths": table},
                       note="smallest speed-up over depths 1-3 from dropping the int8 softmax; "
                            "every model fully delegated after: "
                            f"{all(e['fully_delegated_now'] for e in table)}"))
    return rows
