"""The measurement harness: accuracy and latency of a TFLite model, run by the LiteRT interpreter.

Accuracy comes from the converted model itself, not the Keras model it came from. Latency is
batch-1: the interpreter is built and its input set once, outside the timed loop; untimed warm-up
runs come first, then every invoke() is timed alone with perf_counter_ns and all samples are kept,
for at least min_runs runs and min_seconds (whichever is longer, capped by max_seconds).
No TensorFlow import: re-measuring shipped models starts in well under a second.
"""

from __future__ import annotations

import gzip
import os
import time
from dataclasses import dataclass

import numpy as np

from explorer.measure import pool, stats
from explorer.measure.agent import interpreter, ready, timed_runs, to_input  # noqa: F401 (the harness's core)
from explorer.spec import package_versions


@dataclass(frozen=True)
class Evaluation:
    accuracy: float
    per_class: list[float]
    confusion: list[list[int]]
    predictions: np.ndarray  # the predicted class of each test image, in order (uint8: one byte each)


def litert_version() -> str:
    return package_versions(("ai-edge-litert",))["ai-edge-litert"]


def predict(model: bytes, images: np.ndarray, batch: int = 256, threads: int = 1) -> np.ndarray:
    """Predicted class of each image (argmax is unaffected by output quantization)."""
    interp = interpreter(model, threads, batch)
    inp, out = interp.get_input_details()[0]["index"], interp.get_output_details()[0]["index"]
    preds = np.empty(len(images), dtype=np.int64)
    for start in range(0, len(images), batch):
        chunk = images[start:start + batch]
        n = len(chunk)
        if n < batch:  # pad the last chunk to the allocated batch size
            chunk = np.concatenate([chunk, np.zeros((batch - n, *chunk.shape[1:]), chunk.dtype)])
        interp.set_tensor(inp, to_input(interp, chunk))
        interp.invoke()
        preds[start:start + n] = interp.get_tensor(out)[:n].argmax(axis=1)
    return preds


def evaluate(model: bytes, images: np.ndarray, labels: np.ndarray, num_classes: int, batch: int = 256) -> Evaluation:
    if num_classes > 256:
        raise ValueError("predictions are stored one byte per image: at most 256 classes")
    preds = predict(model, images, batch)
    cm = stats.confusion_matrix(labels, preds, num_classes)
    return Evaluation(float((preds == labels).mean()),
                      [None if np.isnan(v) else float(v) for v in stats.per_class_accuracy(cm)],
                      cm.tolist(), preds.astype(np.uint8))


def latency_samples(model: bytes, image: np.ndarray, *, threads: int = 1, warmup: int = 30,
                    min_runs: int = 200, min_seconds: float = 0.3, max_seconds: float = 10.0,
                    xnnpack: bool = True) -> np.ndarray:
    """Per-run batch-1 latencies in microseconds, in one block."""
    invoke = ready(model, image, threads, xnnpack, warmup)
    return np.asarray(timed_runs(invoke, min_runs, min_seconds, max_seconds), dtype=np.float64) / 1e3


@dataclass(frozen=True)
class BlockedSamples:
    """The samples of the accepted attempt, with its blocks' medians and how far they disagree."""

    samples_us: np.ndarray  # of the blocks kept: every block but the outlying ones
    block_p50s_us: list[float]  # every block's, outlying ones included
    outlying: list[bool]  # per block: set aside as a burst from another process (stats.outlying_blocks)
    spread: float
    attempts: int
    noisy: bool


def blocked_samples(model: bytes, image: np.ndarray, *, threads: int = 1, warmup: int = 30, blocks: int = 6,
                    min_runs: int = 300, min_seconds: float = 0.36, max_seconds: float = 10.0,
                    tolerance: float = 0.03, max_attempts: int = 3, xnnpack: bool = True,
                    timing: pool.TimingPool | None = None, core: int | str | None = None) -> BlockedSamples:
    """Time in `blocks` blocks, each in a different process of the timing pool (explorer.measure.pool; a
    target's pool runs on the target); accept when the blocks' p50s agree within `tolerance`, once outlying
    blocks are set aside. The processes are pinned to `core` (default: the one core the caller is pinned
    to, if it is; a target's agent is told "last").

    A block whose p50 lies far from the others' (stats.outlying_blocks: a burst from another process,
    typically 2x slower) does not decide the attempt; when max_attempts attempts all disagree, every block
    of every attempt is kept (a steadier p50 from more processes) and the result is marked noisy.
    """
    per_runs, per_seconds = -(-min_runs // blocks), min_seconds / blocks
    if timing is None:
        timing = pool.shared()
        if hasattr(os, "sched_getaffinity") and len(os.sched_getaffinity(0)) == 1:
            core = next(iter(os.sched_getaffinity(0)))
    kept: list[np.ndarray] = []
    payload = pool.Payload(model, image)
    params = {"core": core, "threads": threads, "warmup": warmup, "runs": per_runs, "seconds": per_seconds,
              "max_seconds": max_seconds / blocks, "xnnpack": xnnpack}
    for attempt in range(1, max_attempts + 1):
        parts = [timing.block(i, payload, params) for i in range(blocks)]
        kept.extend(parts)
        p50s = [float(np.median(p)) for p in parts]
        clean = [v for v, out in zip(p50s, stats.outlying_blocks(p50s)) if not out]
        spread = stats.block_spread(clean)
        if spread <= tolerance:
            kept = parts
            break
    p50s = [float(np.median(p)) for p in kept]
    out = stats.outlying_blocks(p50s)
    return BlockedSamples(np.concatenate([p for p, o in zip(kept, out) if not o]), p50s, out, spread, attempt,
                          spread > tolerance)


THROUGHPUT_BATCH = 64
THROUGHPUT_BATCH_BYTES = 64 * 2**20  # a 224x224 model's batch of 64 held ~500 MB of activations


def throughput_batch(model: bytes) -> int:
    """The batch throughput is taken at: THROUGHPUT_BATCH images, fewer where the model's largest activation over
    that batch would pass THROUGHPUT_BATCH_BYTES (64 at 28x28 and 64x64, 10 at 224x224)."""
    per_image = max((int(np.prod(t["shape"])) * np.dtype(t["dtype"]).itemsize
                     for t in interpreter(model, 1, 1).get_tensor_details()
                     if len(t["shape_signature"]) and t["shape_signature"][0] == -1), default=1)
    return int(np.clip(THROUGHPUT_BATCH_BYTES // per_image, 1, THROUGHPUT_BATCH))


def throughput(model: bytes, images: np.ndarray, batch: int, *, threads: int = 1, seconds: float = 0.1) -> float:
    """Images per second at a fixed batch size, after one warm-up batch."""
    interp = interpreter(model, threads, batch)
    chunk = images[:batch]
    if len(chunk) < batch:
        chunk = np.resize(chunk, (batch, *images.shape[1:]))
    interp.set_tensor(interp.get_input_details()[0]["index"], to_input(interp, chunk))
    interp.invoke()
    runs, start = 0, time.perf_counter()
    while (elapsed := time.perf_counter() - start) < seconds or runs < 3:
        interp.invoke()
        runs += 1
    return runs * batch / elapsed


def gzipped_size(data: bytes) -> int:
    return len(gzip.compress(data, compresslevel=9, mtime=0))


# A quick first pass (a new host's first visit): half the blocks, a sixth of the runs, one attempt, no throughput.
# Its p50 and interval are real, from fewer samples (a wider interval); the record says it is provisional until
# the full protocol (the defaults of blocked_samples) replaces it.
QUICK = dict(blocks=3, min_runs=60, min_seconds=0.06, warmup=10, max_attempts=1)

KEPT_SAMPLES = 1000  # stored for the histogram (the percentiles use every sample): keeps the shipped cache small


def _thinned(samples: np.ndarray, n: int) -> np.ndarray:
    """At most n samples, evenly spaced over all blocks (so every block is represented)."""
    return samples if len(samples) <= n else samples[np.linspace(0, len(samples) - 1, n).astype(int)]


def _throughput(model: bytes, images: np.ndarray, threads: int, local: bool) -> dict:
    if not local:
        return {"throughput_ips": None}
    batch = throughput_batch(model)
    return {"throughput_ips": throughput(model, images, batch, threads=threads), "throughput_batch": batch}


def latency(model: bytes, images: np.ndarray, threads: int = 1, with_throughput: bool = True, **kwargs) -> dict:
    """The full latency record of one model on this host (or, with timing=a target's pool, on the target;
    throughput is then not measured): percentiles, p50 interval, blocks, throughput."""
    run = blocked_samples(model, images[0], threads=threads, **kwargs)
    summary = stats.summarize_latency(run.samples_us)
    clean = [v for v, o in zip(run.block_p50s_us, run.outlying) if not o]
    return {**summary.to_dict(), "threads": threads,
            "p50_ci_us": list(stats.blocks_interval(clean, summary.p50_us)),
            "block_p50s_us": [round(v, 3) for v in run.block_p50s_us], "block_spread": run.spread,
            "outlying_blocks": int(sum(run.outlying)),
            "attempts": run.attempts, "noisy": run.noisy,
            **_throughput(model, images, threads, local=with_throughput and kwargs.get("timing") is None),
            "samples_us": np.round(_thinned(run.samples_us, KEPT_SAMPLES), 2).tolist()}
