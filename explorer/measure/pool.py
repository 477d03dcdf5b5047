"""A pool of timing processes, reused across models: each block of one model runs in a different process.

A block timed in its own process samples how the interpreter's memory happens to be laid out, which moves a
p50 by 1-3 % from one process to the next; starting a fresh Python for every block cost about 0.35 s each
(six per model), most of a new host's wait. The pool keeps `size` processes with LiteRT loaded: a model's
blocks go to distinct ones (the layout still varies between them), pinned to the core the caller names, and
each builds a fresh interpreter per block. A process that dies is replaced and its block run again once.

    $ python -m explorer.measure.pool     # one pool process: JSON requests on stdin, int64 nanoseconds out
"""

from __future__ import annotations

import atexit
import json
import os
import struct
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np

SIZE = 6  # as many as a measurement has blocks


class TimingPool:
    def __init__(self, size: int = SIZE):
        self.size = size
        self._procs: list[subprocess.Popen | None] = [None] * size
        self._lock = threading.Lock()

    def _proc(self, i: int) -> subprocess.Popen:
        """Process i, (re)started if needed; on first use every process starts at once (their imports overlap)."""
        for j in range(self.size) if all(p is None for p in self._procs) else (i,):
            p = self._procs[j]
            if p is None or p.poll() is not None:
                self._procs[j] = subprocess.Popen([sys.executable, "-m", "explorer.measure.pool"], stdin=subprocess.PIPE,
                                                  stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                                                  env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})
        return self._procs[i]

    def block(self, i: int, request: dict) -> np.ndarray:
        """The samples (µs) of one block, timed by pool process i % size (see _serve for the request)."""
        with self._lock:
            for attempt in (1, 2):
                p = self._proc(i % self.size)
                try:
                    p.stdin.write((json.dumps(request) + "\n").encode())
                    p.stdin.flush()
                    (n,) = struct.unpack("<q", _read(p.stdout, 8))
                    if n < 0:
                        raise RuntimeError("the timing process could not time this model")
                    return np.frombuffer(_read(p.stdout, 8 * n), dtype=np.int64).astype(np.float64) / 1e3
                except (OSError, EOFError, struct.error):
                    p.kill()
                    self._procs[i % self.size] = None
                    if attempt == 2:
                        raise
        raise AssertionError("unreachable")

    def close(self) -> None:
        for p in self._procs:
            if p is not None and p.poll() is None:
                p.kill()
                p.wait()
        self._procs = [None] * self.size


def _read(stream, n: int) -> bytes:
    data = stream.read(n)
    if len(data) != n:
        raise EOFError("the timing process ended")
    return data


_shared: TimingPool | None = None


def shared() -> TimingPool:
    """This process's pool (started on first use, stopped at exit)."""
    global _shared
    if _shared is None:
        _shared = TimingPool()
        atexit.register(_shared.close)
    return _shared


def _serve() -> None:
    """Answer requests {folder, core, threads, warmup, runs, seconds, max_seconds, xnnpack} until stdin closes:
    pin to `core` (when given), time one block of folder/model.tflite on folder/image.npy."""
    from explorer.measure import measure

    out = sys.stdout.buffer
    for line in sys.stdin:
        r = json.loads(line)
        try:
            if r.get("core") is not None and hasattr(os, "sched_setaffinity"):
                os.sched_setaffinity(0, {r["core"]})
            folder = Path(r["folder"])
            invoke = measure.ready((folder / "model.tflite").read_bytes(), np.load(folder / "image.npy"),
                                   r["threads"], r["xnnpack"], r["warmup"])
            samples = np.asarray(measure.timed_runs(invoke, r["runs"], r["seconds"], r["max_seconds"]), dtype=np.int64)
        except Exception:  # noqa: BLE001 - a model LiteRT refuses: say so, keep serving
            out.write(struct.pack("<q", -1))
            out.flush()
            continue
        out.write(struct.pack("<q", samples.size) + samples.tobytes())
        out.flush()


if __name__ == "__main__":
    _serve()
