"""End to end on real data (scikit-learn digits): train, prune, quantize, convert, measure, cache."""

import re

import numpy as np
import pytest

from support import FAST_LATENCY, TINY
from explorer.models.lever_errors import LeverError
from explorer.run import backfill, pipeline
from explorer.store.cache import TFLITE, Store, sha256_file
from explorer.spec import SpecError, VariantSpec

pytestmark = pytest.mark.slow

GRID = [VariantSpec(**TINY, sparsity=s, quant=q) for s in (0.0, 0.5) for q in ("fp32", "int8", "qat-int8")] + [
    VariantSpec(**TINY, quant="int16x8")]


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """The grid built once from an empty cache: (store, [(record, report), ...])."""
    store = Store(tmp_path_factory.mktemp("cache"))
    events = []
    out = [pipeline.ensure(s, store, events.append, latency_kwargs=FAST_LATENCY) for s in GRID]
    return store, out, events


def test_stages_are_reused_across_the_grid(built):
    _, out, _ = built
    reports = [rep for _, rep in out]
    assert sum(r.built.count("base") for r in reports) == 1  # one training for seven variants
    assert sum(r.built.count("tuned") for r in reports) == 1  # one pruning for three
    assert sum(r.built.count("variant") for r in reports) == len(GRID)


def test_second_run_of_the_grid_trains_nothing(built):
    store, _, _ = built
    for spec in GRID:
        record, report = pipeline.ensure(spec, store, latency_kwargs=FAST_LATENCY)
        assert report.built == [] and report.reused == ["variant"]
        assert record.latency is not None


def test_tflite_accuracy_is_real_and_matches_keras(built):
    _, out, _ = built
    for v, _ in out:
        assert v.accuracy > 0.8, v.label  # it learned (chance is 0.1)
        assert abs(v.accuracy - v.keras_accuracy) <= 0.03, v.label
        cm = np.array(v.confusion)
        assert cm.sum() == v.test_images
        assert np.trace(cm) / cm.sum() == pytest.approx(v.accuracy)
        assert len(v.per_class_accuracy) == 10


def test_real_sparsity_after_pruning_is_within_two_points(built):
    _, out, _ = built
    for v, _ in out:
        for layer in ("conv1", "dense", "logits"):
            assert abs(v.layer_sparsity[layer] - v.spec.sparsity) <= 0.02, (v.label, layer)
        if v.spec.sparsity:
            assert v.nonzero_params < 0.55 * v.params and v.real_sparsity > 0.45
            # Tiny models: file structure dominates, so only "smaller" is promised here.
            assert v.gzip_bytes < next(r.gzip_bytes for r, _ in out
                                       if r.spec.quant == v.spec.quant and not r.spec.sparsity)


def test_latency_percentiles_are_ordered_and_recorded_with_the_host(built):
    _, out, _ = built
    for v, _ in out:
        lat = v.latency
        assert 0 < lat.min_us <= lat.p50_us <= lat.p90_us <= lat.p99_us
        assert lat.runs >= FAST_LATENCY["min_runs"] and lat.threads == 1
        assert lat.throughput_ips > 0
        assert lat.host["cores"] >= 1 and "ai-edge-litert" in lat.versions


def test_all_core_latency_is_measured_and_kept_beside_the_one_thread_figure(built):
    from explorer import record
    from explorer.measure import host

    store, out, _ = built
    v = out[0][0]
    one = store.read_latency(v.key, host.current().id)
    lat = pipeline.measure_latency(store, v, threads=2, **FAST_LATENCY)
    assert lat.threads == 2 and len(lat.ops) > 0
    assert store.read_latency(v.key, host.current().id) == one  # the 1-thread view is untouched
    assert record.load(store, v.key, host.current().id, threads=2).latency.threads == 2
    full_int8 = next(r for r, _ in out if r.spec.quant == "int8")
    assert full_int8.fallback_ops == ()  # no softmax left for the built-in kernels


def test_progress_reaches_the_end_and_names_the_stages(built):
    _, _, events = built
    assert {e.stage for e in events} >= {"train", "prune", "qat", "convert", "evaluate", "measure", "done"}
    assert all(0.0 <= e.fraction <= 1.0 for e in events)
    assert any("epoch" in e.message and "loss" in e.message for e in events)
    assert any(re.search(r"epoch \d+/\d+ done in \d+\.\d s", e.message) for e in events)  # each epoch's time
    assert any("loss" in e.message and "(last epoch" in e.message for e in events)  # kept on the batch lines


def test_int8_is_about_four_times_smaller_and_pruning_shrinks_the_gzip(store):
    big = dict(TINY, width=32, dense=512, epochs=3, tune_epochs=1)  # ~150k weights: size is weights
    metrics = {(s, q): pipeline.ensure(VariantSpec(**big, sparsity=s, quant=q), store, measure_missing=False)[0]
               for s in (0.0, 0.8) for q in ("fp32", "float16", "int8")}
    size = {k: m.size_bytes for k, m in metrics.items()}
    assert 3.5 <= size[0.0, "fp32"] / size[0.0, "int8"] <= 4.2
    assert 1.8 <= size[0.0, "fp32"] / size[0.0, "float16"] <= 2.1
    assert size[0.8, "fp32"] == pytest.approx(size[0.0, "fp32"], rel=0.01)  # zeros still stored
    gz = {k: m.gzip_bytes for k, m in metrics.items()}
    assert gz[0.0, "fp32"] / gz[0.8, "fp32"] >= 3  # ...but they compress
    assert gz[0.0, "fp32"] / gz[0.8, "int8"] >= 8  # pruning + int8: tfmot's "about 10x" claim


def test_invalid_depth_for_the_dataset_writes_nothing(store):
    with pytest.raises(SpecError, match="depth: 2 blocks shrink a 8x8 image"):
        pipeline.ensure(VariantSpec(**{**TINY, "depth": 2}), store)
    assert not store.root.exists() or not any(store.root.rglob("meta.json"))


def test_a_failed_conversion_leaves_no_entry(store, monkeypatch):
    from explorer.models import quantize

    def crash(*args, **kwargs):
        raise RuntimeError("converter crashed")

    monkeypatch.setattr(quantize, "to_tflite", crash)
    spec = VariantSpec(**{**TINY, "epochs": 1})
    with pytest.raises(LeverError, match="conversion failed on the built-in network: converter crashed"):
        pipeline.ensure(spec, store)  # one sentence naming the lever, not the library's error
    assert not store.has("variants", spec.key())
    assert store.variants() == ([], [])
    assert store.has("base", spec.base_key())  # the finished training stage is kept for the retry


def test_same_spec_gives_the_same_model_bit_for_bit(tmp_path):
    """The cache key promises 'this spec -> these weights': rebuilding from scratch must agree."""
    spec = VariantSpec(**{**TINY, "epochs": 3, "seed": 5})
    other = spec.replace(seed=6)
    sums = []
    for name, s in (("a", spec), ("b", spec), ("c", other)):
        store = Store(tmp_path / name)
        pipeline.ensure(s, store, measure_missing=False)
        sums.append(sha256_file(store.file_path("variants", s.key(), TFLITE)))
    assert sums[0] == sums[1]
    assert sums[0] != sums[2]  # and the seed does matter


def test_a_freshly_pruned_model_converts_to_int8_without_its_softmax(tmp_path):
    """Pruned in this process (not loaded from the cache): strip_pruning's clone still converts."""
    spec = VariantSpec(**TINY, sparsity=0.5, quant="int8")
    v, report = pipeline.ensure(spec, Store(tmp_path), measure_missing=False)
    assert "tuned" in report.built and v.fallback_ops == () and v.accuracy > 0.8


def test_qat_after_fresh_pruning_converts_without_its_softmax(tmp_path):
    spec = VariantSpec(**TINY, sparsity=0.5, quant="qat-int8")
    v, report = pipeline.ensure(spec, Store(tmp_path), measure_missing=False)
    assert "qat" in report.built and v.fallback_ops == () and v.accuracy > 0.8


def test_every_build_records_its_memory_and_int8_quarters_the_activations(built):
    store, out, _ = built
    by = {(v.spec.sparsity, v.spec.quant): v for v, _ in out}
    for v in by.values():
        assert v.memory is not None and v.memory.flash_bytes == v.size_bytes
        assert v.latency.rss_increase_bytes > 0 and v.latency.rss_note == ""  # measured by a fresh agent
        assert backfill.add_memory(store, v.key) is False  # planned at build: nothing to add
    fp32, int8 = by[(0.0, "fp32")].memory, by[(0.0, "int8")].memory
    # the input stays float, so "a quarter" holds for the activations after it, within the 16-byte alignment
    assert fp32.head_bytes / 4 <= int8.head_bytes < fp32.head_bytes / 2
    assert by[(0.5, "int8")].memory.head_bytes == int8.head_bytes  # zeros in weights change no activation
    int16 = by[(0.0, "int16x8")].memory  # two bytes a value, and TFLite Micro plans it (the session-end check)
    assert int8.head_bytes < int16.head_bytes < fp32.head_bytes and int16.micro_blockers == ()
