"""The timing pool: a model's blocks run in distinct, reused processes; a process that dies is replaced."""

import numpy as np

from explorer.measure import measure
from explorer.measure.pool import TimingPool
from support import REPO


def test_blocks_run_in_distinct_reused_processes_and_a_dead_one_is_replaced(tmp_path):
    model = next((REPO / "cached_models" / "variants").glob("*/model.tflite")).read_bytes()
    (tmp_path / "model.tflite").write_bytes(model)
    np.save(tmp_path / "image.npy", np.zeros((28, 28, 1), np.float32))
    request = {"folder": str(tmp_path), "core": None, "threads": 1, "warmup": 2, "runs": 20, "seconds": 0.0,
               "max_seconds": 1.0, "xnnpack": True}
    pool = TimingPool(size=3)
    try:
        blocks = [pool.block(i, request) for i in range(3)]
        pids = [p.pid for p in pool._procs]
        assert len(set(pids)) == 3 and all(len(b) >= 20 and (b > 0).all() for b in blocks)
        pool.block(0, request)
        assert pool._procs[0].pid == pids[0]  # reused, not started again
        pool._procs[1].kill()
        pool._procs[1].wait()
        assert len(pool.block(1, request)) >= 20 and pool._procs[1].pid != pids[1]  # replaced, block run again
        bad = {**request, "folder": str(tmp_path / "nowhere")}
        try:
            pool.block(2, bad)
            raise AssertionError("a model that cannot be timed must raise")
        except RuntimeError as exc:
            assert "could not time" in str(exc)
        assert len(pool.block(2, request)) >= 20  # and the process keeps serving
    finally:
        pool.close()
    run = measure.blocked_samples(model, np.zeros((28, 28, 1), np.float32), blocks=3, min_runs=60, min_seconds=0.01,
                                  max_attempts=1)
    assert len(run.block_p50s_us) == 3 and len(run.outlying) == 3
