"""Latency preview: the untrained architecture converted and timed, never trained, cached by what sets latency."""

import pytest

from support import FAST_LATENCY, TINY, wait_until, worker_log_tail
from explorer.run import preview
from explorer.models import train
from explorer.run.executors import JobRequest, LocalExecutor
from explorer.spec import VariantSpec

pytestmark = pytest.mark.slow


def test_a_preview_never_trains_never_writes_a_variant_and_is_reused(store, user_data, monkeypatch):
    fits = []
    monkeypatch.setattr(train, "fit", lambda *a, **k: fits.append(1))  # counted: must stay empty
    spec = VariantSpec(**{**TINY, "quant": "int8"})
    record, fresh = preview.ensure(spec, **FAST_LATENCY)
    assert fresh and fits == []
    lat = record.latency
    assert lat.p50_us > 0 and lat.p50_ci_us[0] <= lat.p50_us <= lat.p50_ci_us[1]
    assert record.fields["quant"] == "int8" and lat.host_id
    assert store.variants() == ([], []) and not (store.root / "variants").exists()
    # Pruning, clustering, epochs and seed do not change dense-kernel latency: the same preview.
    same, fresh = preview.ensure(spec.replace(sparsity=0.5, clusters=8, epochs=30, seed=9), **FAST_LATENCY)
    assert not fresh and same == record
    other, fresh = preview.ensure(spec.replace(quant="fp32"), **FAST_LATENCY)
    assert fresh and other.fields["quant"] == "fp32"
    qat, fresh = preview.ensure(spec.replace(quant="qat-int8"), **FAST_LATENCY)
    assert fresh and fits == []  # QAT's graph, without its fine-tune


def test_the_worker_runs_previews_from_the_queue(store, user_data):
    ex = LocalExecutor(store)
    spec = VariantSpec(**{**TINY, "dense": 16, "quant": "dynamic"})
    job = ex.submit(JobRequest.preview(spec), "alice")
    assert job.kind == "preview" and job.key == preview.preview_key(spec)
    wait_until(lambda: not ex.progress(job.id).live, "the preview job to end")
    assert ex.progress(job.id).state == "done", ex.progress(job.id).message + worker_log_tail()
    assert preview.read(spec).fields["dense"] == 16
    assert store.variants() == ([], [])
