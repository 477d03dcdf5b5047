"""The shipped cache (cached_models/): complete, intact, small, accurate as recorded, and never retrained."""

import numpy as np
import pytest

from explorer.data import datasets
from explorer.run import grid, pipeline
from explorer.measure import measure
from explorer.store.cache import Store
from explorer.run.pipeline import TFLITE
from explorer.spec import VariantSpec

SHIPPED = Store()  # cached_models/ of this checkout
PRESET = grid.preset("default")
META_FIELDS = {"spec", "label", "stages", "dataset", "metrics", "layers", "build", "files", "key"}
METRIC_FIELDS = {"accuracy", "per_class_accuracy", "confusion", "keras_accuracy", "size_bytes", "gzip_bytes",
                 "params", "nonzero_params", "layer_sparsity", "macs"}


def test_every_entry_of_the_default_grid_is_shipped_intact():
    metas, problems = SHIPPED.variants()
    assert problems == []
    keys = {m["key"] for m in metas}
    missing = [s.label() for s in PRESET if s.key() not in keys]
    assert missing == [], f"rebuild with 'python -m explorer sweep --preset default': {missing}"
    for meta in metas:
        assert META_FIELDS <= set(meta), meta["label"]
        assert METRIC_FIELDS <= set(meta["metrics"]), meta["label"]
        assert meta["files"][TFLITE]["bytes"] == meta["metrics"]["size_bytes"]


def test_the_shipped_cache_is_small_enough_to_clone():
    total = sum(p.stat().st_size for p in SHIPPED.root.rglob("*") if p.is_file())  # variants, evidence, bases
    assert total < 40 * 2**20  # seed replicates cost their evidence only (no model): the clone stays under 40 MiB


def test_every_shipped_architecture_ships_its_trained_base():
    bases = {s.replace(channels=0.0, sparsity=0.0, clusters=0).base_key() for s in PRESET}
    assert SHIPPED.shipped_stages is not None
    missing = [k for k in bases if not (SHIPPED.shipped_stages / "base" / k / "meta.json").is_file()]
    assert missing == []
    assert not (SHIPPED.root / "stages" / "tuned").exists()  # fine-tuned stages are not worth their size


@pytest.mark.slow
def test_a_what_if_on_a_shipped_architecture_fine_tunes_only():
    """A fresh clone (the test sandbox: a copy of the shipped cache, no user stages) asks for a sparsity the
    grid lacks: the shipped base is reused, only the fine-tune trains."""
    spec = VariantSpec(sparsity=0.3, quant="dynamic", tune_epochs=1)  # one fine-tune epoch: the suite stays short
    assert not SHIPPED.has("variants", spec.key()) and not (SHIPPED.stages_root / "base").exists()
    record, report = pipeline.ensure(spec, SHIPPED, measure_missing=False)
    assert report.reused == ["base"] and report.built == ["tuned", "variant"]
    assert "train" not in report.seconds and record.accuracy > 0.85


def test_loading_the_shipped_grid_trains_nothing():
    for spec in PRESET:
        record, report = pipeline.ensure(spec, SHIPPED, measure_missing=False)
        assert report.built == [] and report.reused == ["variant"], spec.label()
        assert record.label == spec.label() and record.spec == spec


@pytest.mark.parametrize("quant", ["fp32", "int8"])
def test_recorded_accuracy_is_reproduced_on_the_test_split(quant):
    spec = next(s for s in PRESET if s.quant == quant and s.depth == 2 and not s.sparsity and s.conv == "standard"
                and not s.clusters)
    meta = SHIPPED.verify("variants", spec.key())
    data = datasets.load(spec.dataset)
    model = SHIPPED.file_path("variants", spec.key(), TFLITE).read_bytes()
    preds = measure.predict(model, data.x_test)
    assert abs(float(np.mean(preds == data.y_test)) - meta["metrics"]["accuracy"]) <= 0.005


def test_the_shipped_cache_carries_predictions_and_three_seed_points_for_the_front_and_the_baselines():
    from explorer import record
    from explorer.present import results

    found, problems = record.load_all(SHIPPED, "any-host")
    assert problems == []
    assert all(SHIPPED.read_predictions(v.key) is not None for v in found)  # paired tests work from a fresh clone
    assert all(v.intervals for v in found)  # stored at build: a rebuilt results index does no bootstrap
    grouped = results.group_seeds(results.table(found))
    three = set(grouped.loc[grouped["seeds"] == 3, "label"])
    missing = [s.label() for s in grid.preset("seeded") if f"{s.label()} ×3 seeds" not in three]
    assert missing == [], "python -m explorer --cache cached_models sweep --preset seeded --seeds 3 --seeds-as-evidence"
    further = [v for v in found if v.spec.seed > 0]
    assert further and not any(v.has_model for v in further)  # kept as evidence: their point's latency is seed 0's
