"""The accuracy side: training levers on the reference CNN and the default model, and class weighting on the
imbalanced view of Fashion-MNIST. Test accuracy of the converted TFLite models.

    $ .venv/bin/python -m benchmarks accuracy_levers

The variants are the shipped grid's (explorer.run.grid), built in a copy of the shipped cache, so after a
cache rebuild this reads them; on a cache without them it trains them (about 10 minutes on 2 cores).
Target: the reference CNN with the levers >= 0.92.
"""

from __future__ import annotations

from benchmarks.report import Row, row
from benchmarks.worker import Sandbox
from explorer.run import grid, pipeline
from explorer.store.cache import Store


def run() -> list[Row]:
    box = Sandbox()
    store = Store(box.cache, box.data / "stages")
    pairs = {name: [pipeline.ensure(spec, store)[0] for spec in specs] for name, specs in grid.LEVER_PAIRS.items()}
    unweighted, weighted = (pipeline.ensure(spec, store)[0] for spec in grid.IMBALANCED_PAIR)
    detail, rows = {}, []
    for name, (plain, levers) in pairs.items():
        detail[name] = {"today": {"label": plain.label, "accuracy": plain.accuracy},
                        "levers": {"label": levers.label, "accuracy": levers.accuracy}}
        rows.append(row(f"{name}: test accuracy, today's recipe → levers", levers.accuracy, "",
                        note=f"{plain.accuracy:.4f} ({plain.label}) → {levers.accuracy:.4f} ({levers.label})"))
    for v, tag in ((unweighted, "without"), (weighted, "with")):
        weakest, recall = v.weakest_class
        detail[f"imbalanced {tag} class weighting"] = {
            "label": v.label, "accuracy": v.accuracy, "balanced_accuracy": v.balanced_accuracy,
            "macro_f1": v.macro_f1, "weakest_class": weakest, "weakest_recall": recall}
        rows.append(row(f"imbalanced view, {tag} class weighting: balanced accuracy", v.balanced_accuracy, "",
                        note=f"weakest class {weakest}: recall {recall:.3f}; accuracy {v.accuracy:.4f}; "
                             f"macro F1 {v.macro_f1:.4f}"))
    reference = pairs["reference CNN"][1]
    rows.insert(0, row("accuracy_levers", reference.accuracy, "", ">=", 0.92, detail=detail,
                       note=f"reference CNN with the levers: {reference.label}"))
    return rows
