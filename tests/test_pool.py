"""The timing pool: a model's blocks run in distinct, reused agent processes; a process that dies is replaced.
Throughput's batch is bounded by the memory of its activations."""

import numpy as np
import pytest

from explorer.measure import measure
from explorer.measure.pool import AgentError, Payload, TimingPool
from support import REPO

PARAMS = {"core": None, "threads": 1, "warmup": 2, "runs": 20, "seconds": 0.0, "max_seconds": 1.0, "xnnpack": True}


def test_blocks_run_in_distinct_reused_processes_and_a_dead_one_is_replaced():
    model = next((REPO / "cached_models" / "variants").glob("*/model.tflite")).read_bytes()
    payload = Payload(model, np.zeros((28, 28, 1), np.float32))
    pool = TimingPool(size=3)
    try:
        blocks = [pool.block(i, payload, PARAMS) for i in range(3)]
        pids = [p.pid for p in pool._procs]
        assert len(set(pids)) == 3 and all(len(b) >= 20 and (b > 0).all() for b in blocks)
        pool.block(0, payload, PARAMS)
        assert pool._procs[0].pid == pids[0]  # reused, not started again
        pool._procs[1].kill()
        pool._procs[1].wait()
        assert len(pool.block(1, payload, PARAMS)) >= 20 and pool._procs[1].pid != pids[1]  # replaced, run again
        with pytest.raises(AgentError, match="could not time this model"):
            pool.block(2, Payload(b"not a model", payload.image), PARAMS)
        assert len(pool.block(2, payload, PARAMS)) >= 20  # and the process keeps serving
        assert pool.facts()["host"]["cores"] >= 1
    finally:
        pool.close()
    run = measure.blocked_samples(model, np.zeros((28, 28, 1), np.float32), blocks=3, min_runs=60, min_seconds=0.01,
                                  max_attempts=1)
    assert len(run.block_p50s_us) == 3 and len(run.outlying) == 3


def test_throughput_batch_is_bounded_by_the_batch_s_largest_activation(monkeypatch):
    from explorer.record import VariantRecord
    from explorer.store.cache import Store

    store = Store()  # the shipped cache, read only
    meta = next(m for m in store.variants()[0] if m["spec"]["quant"] == "fp32")
    record = VariantRecord.from_meta(meta)
    model = store.file_path("variants", record.key, "model.tflite").read_bytes()
    largest = max(int(np.prod(layer.output_shape)) for layer in record.layers) * 4  # float32 activations
    assert measure.throughput_batch(model) == measure.THROUGHPUT_BATCH  # a 28x28 model: the full batch
    monkeypatch.setattr(measure, "THROUGHPUT_BATCH_BYTES", 10 * largest + 1)
    assert measure.throughput_batch(model) == 10
    monkeypatch.setattr(measure, "THROUGHPUT_BATCH_BYTES", 10 * largest - 1)
    assert measure.throughput_batch(model) == 9
    assert measure.throughput(model, np.zeros((1, *record.input_shape), np.float32), 9, seconds=0.01) > 0
