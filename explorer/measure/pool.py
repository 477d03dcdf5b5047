"""A pool of timing processes, reused across models: each block of one model runs in a different process.

A block timed in its own process samples how the interpreter's memory happens to be laid out, which moves a
p50 by 1-3 % from one process to the next; starting a fresh Python for every block cost about 0.35 s each
(six per model), most of a new host's wait. The pool keeps `size` processes with LiteRT loaded: a model's
blocks go to distinct ones (the layout still varies between them), pinned to the core the request names,
and each builds a fresh interpreter per block. A process that dies is replaced and its block run again once.

Each process is a measuring agent (explorer.measure.agent --serve). Here they run on this machine; a
measurement target's pool starts them through its transport (explorer.measure.targets), the agent's
source sent ahead of the requests: the same protocol, the same blocks, on the target's CPU.
"""

from __future__ import annotations

import atexit
import hashlib
import json
import os
import struct
import subprocess
import sys
import tempfile
import threading
from dataclasses import dataclass, field
from functools import cached_property

import numpy as np

from explorer.measure.agent import GREETING

SIZE = 6  # as many as a measurement has blocks
LOCAL = (sys.executable, "-m", "explorer.measure.agent", "--serve")
MAX_SAMPLES = 50_000_000  # a block's sample count beyond this is not the agent speaking


class AgentError(RuntimeError):
    """A timing process could not answer: what it said on stderr, or why it could not be reached."""


@dataclass(frozen=True)
class Payload:
    """A model and the image it is timed on, sent once to each process that times it."""

    model: bytes
    image: np.ndarray = field(compare=False)

    @cached_property
    def image_bytes(self) -> bytes:
        return np.ascontiguousarray(self.image).tobytes()

    @cached_property
    def sha(self) -> str:
        return hashlib.sha256(self.model + self.image_bytes).hexdigest()


class TimingPool:
    """`size` agent processes started with `command` (default: this Python, here); `preamble` is written to
    each one first (a target's bootstrap reads the agent's source from it)."""

    def __init__(self, size: int = SIZE, command: tuple[str, ...] = LOCAL, preamble: bytes = b"",
                 timeout_s: float = 120.0):
        self.size, self.command, self.preamble, self.timeout_s = size, tuple(command), preamble, timeout_s
        self._procs: list[subprocess.Popen | None] = [None] * size
        self._held: list[str | None] = [None] * size  # the payload each process holds
        self._lock = threading.Lock()

    def _start(self, j: int) -> None:
        err = tempfile.TemporaryFile()  # a file, not a pipe: LiteRT logs a line per interpreter, never read
        try:
            p = subprocess.Popen(self.command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=err,
                                 env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})
        except OSError as exc:
            raise AgentError(f"could not start {self.command[0]!r}: {exc.strerror or exc}") from exc
        p.explorer_stderr = err  # type: ignore[attr-defined]
        self._procs[j], self._held[j] = p, None
        if self.preamble:
            try:
                p.stdin.write(self.preamble)
            except BrokenPipeError:
                pass  # it ended at once (e.g. a refused connection): its first answer says why

    def _proc(self, i: int) -> subprocess.Popen:
        """Process i, (re)started if needed; on first use every process starts at once (their imports overlap)."""
        for j in range(self.size) if all(p is None for p in self._procs) else (i,):
            p = self._procs[j]
            if p is None or p.poll() is not None:
                self._start(j)
        return self._procs[i]

    def _ask(self, i: int, request: dict, body: bytes = b"") -> subprocess.Popen:
        """Send a request to process i (after checking its greeting, on its first request)."""
        p = self._proc(i)
        if not getattr(p, "explorer_greeted", False):
            first = p.stdout.readline()
            if first != GREETING:
                raise ValueError(f"not the agent's greeting on stdout: {first[:80]!r}")
            p.explorer_greeted = True  # type: ignore[attr-defined]
        p.stdin.write(json.dumps(request).encode() + b"\n" + body)
        p.stdin.flush()
        return p

    def _watch(self, j: int) -> threading.Timer:
        """Kill process j if it has not answered within timeout_s (a hung transport ends as an error)."""
        p = self._procs[j]
        timer = threading.Timer(self.timeout_s, lambda: p is not None and p.poll() is None and p.kill())
        timer.daemon = True
        timer.start()
        return timer

    def block(self, i: int, payload: Payload, params: dict) -> np.ndarray:
        """The samples (µs) of one block, timed by pool process i % size (params: see explorer.measure.agent)."""
        j = i % self.size
        with self._lock:
            for attempt in (1, 2):
                try:
                    send = self._held[j] != payload.sha or self._procs[j] is None or self._procs[j].poll() is not None
                    request = {**params, "op": "block", "sha": payload.sha, "image_shape": list(payload.image.shape),
                               "image_dtype": str(payload.image.dtype),
                               "model_bytes": len(payload.model) if send else 0,
                               "image_bytes": len(payload.image_bytes) if send else 0}
                    self._proc(j)
                    watch = self._watch(j)
                    try:
                        p = self._ask(j, request, payload.model + payload.image_bytes if send else b"")
                        self._held[j] = payload.sha
                        (n,) = struct.unpack("<q", _read(p.stdout, 8))
                        if n > MAX_SAMPLES:
                            raise ValueError(f"not the agent's answer on stdout (a count of {n})")
                        answer = p.stdout.readline() if n < 0 else _read(p.stdout, 8 * n)
                    finally:
                        watch.cancel()
                    if n < 0:
                        self._held[j] = None
                        why = json.loads(answer or b'{"error": "no reason given"}')["error"]
                        if "payload not held" in why and attempt == 1:
                            continue
                        raise AgentError(f"the agent could not time this model: {why}")
                    return np.frombuffer(answer, dtype=np.int64).astype(np.float64) / 1e3
                except (OSError, EOFError, struct.error, ValueError) as exc:
                    why = self._died(j)
                    if attempt == 2:
                        raise AgentError(f"the timing process failed ({exc})" + (f"; it said: {why}" if why else "")) from exc
        raise AssertionError("unreachable")

    def profile(self, models: list[bytes], image: np.ndarray, params: dict) -> list[list[float]]:
        """Medians of the models timed round-robin in one process (explorer.measure.agent.prefix_medians)."""
        raw = np.ascontiguousarray(image).tobytes()
        answer = self._answer({**params, "op": "profile", "model_sizes": [len(m) for m in models],
                               "image_bytes": len(raw), "image_shape": list(image.shape),
                               "image_dtype": str(image.dtype)}, b"".join(models) + raw, "the profile failed")
        if "error" in answer:
            raise AgentError(f"the agent could not profile this model: {answer['error']}")
        return answer["medians"]

    def resident_increase(self, payload: Payload, threads: int = 1) -> int:
        """What an interpreter of the model adds to process 0's resident memory (explorer.measure.agent.
        resident_increase): meaningful in a process that has run nothing yet, so ask a pool of its own."""
        answer = self._answer({"op": "memory", "model_bytes": len(payload.model), "image_bytes": len(payload.image_bytes),
                               "image_shape": list(payload.image.shape), "image_dtype": str(payload.image.dtype),
                               "threads": threads}, payload.model + payload.image_bytes, "no resident memory")
        if "error" in answer:
            raise AgentError(answer["error"])
        return int(answer["rss_increase_bytes"])

    def facts(self) -> dict:
        """The machine the agents run on, as explorer.measure.agent.facts describes it."""
        return self._answer({"op": "facts"}, b"", "no facts")

    def _answer(self, request: dict, body: bytes, failed: str) -> dict:
        """Process 0's one-line JSON answer to a request (an error's answer: its reason, after the -1)."""
        with self._lock:
            watch = None
            try:
                self._proc(0)
                watch = self._watch(0)
                line = self._ask(0, request, body).stdout.readline()
                return json.loads(line[8:] if line.startswith(struct.pack("<q", -1)) else line)
            except (OSError, ValueError) as exc:
                why = self._died(0)
                raise AgentError(f"{failed} ({exc})" + (f"; it said: {why}" if why else "")) from exc
            finally:
                if watch is not None:
                    watch.cancel()

    def _died(self, j: int) -> str:
        """Stop process j and return the end of what it wrote on stderr (why it ended, if it says)."""
        p, self._procs[j], self._held[j] = self._procs[j], None, None
        if p is None:
            return ""
        p.kill()
        p.wait()
        err = p.explorer_stderr  # type: ignore[attr-defined]
        err.seek(0)
        lines = [ln for ln in err.read().decode(errors="replace").splitlines()
                 if ln.strip() and "XNNPACK delegate" not in ln]
        err.close()
        return " / ".join(lines[-3:])

    def close(self) -> None:
        for j, p in enumerate(self._procs):
            if p is not None:
                if p.poll() is None:
                    p.kill()
                p.wait()
                p.explorer_stderr.close()  # type: ignore[attr-defined]
        self._procs, self._held = [None] * self.size, [None] * self.size


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
