"""The CPU gate: a latency measurement never overlaps a training step, in any process on this machine.

Training takes the gate *shared* around every batch (and around conversion and evaluation); a
measurement takes it *exclusive*, so builds pause at their next batch boundary while a model is timed
and resume afterwards. A turnstile in front of the gate keeps a busy trainer from starving a waiting
measurement: the measurer holds the turnstile while it waits, and a trainer passes the turnstile
before each step. Both are flock locks on files in the user-data folder, so the kernel releases them
when a process dies.

Why not a library's reader/writer lock: fasteners' InterProcessReaderWriterLock takes POSIX record locks
(lockf), which belong to a process, not to a descriptor, so the worker's two lanes would not exclude each
other, and it polls without giving a waiting writer priority; filelock's ReadWriteLock opens an SQLite
transaction around every hold, thousands a build. Neither keeps a measurement from starving.
"""

from __future__ import annotations

import fcntl
import os
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from explorer.store import paths


class CpuGate:
    def __init__(self, folder: Path | str | None = None):
        self.folder = Path(folder) if folder is not None else paths.state_dir()

    def _open(self, name: str) -> int:
        self.folder.mkdir(parents=True, exist_ok=True)
        return os.open(self.folder / name, os.O_RDWR | os.O_CREAT, 0o644)

    @contextmanager
    def exclusive(self) -> Iterator[None]:
        """Hold the machine for a measurement: waits for the running step, holds back the next."""
        turnstile, gate = self._open("cpu.turnstile"), self._open("cpu.gate")
        try:
            fcntl.flock(turnstile, fcntl.LOCK_EX)
            fcntl.flock(gate, fcntl.LOCK_EX)
            yield
        finally:
            os.close(gate)  # closing drops the locks
            os.close(turnstile)

    @contextmanager
    def shared(self) -> Iterator[None]:
        """One unit of CPU work (a conversion, an evaluation): waits while a measurement runs."""
        stepper = self.stepper()
        try:
            stepper.begin()
            yield
        finally:
            stepper.close()

    def stepper(self) -> Stepper:
        return Stepper(self._open("cpu.turnstile"), self._open("cpu.gate"))


class Stepper:
    """Shared holds of the gate, one per training step, on file descriptors opened once."""

    def __init__(self, turnstile: int, gate: int):
        self.turnstile, self.gate = turnstile, gate
        self.held = False

    def begin(self) -> None:
        fcntl.flock(self.turnstile, fcntl.LOCK_SH)  # blocks while a measurement waits or runs
        fcntl.flock(self.turnstile, fcntl.LOCK_UN)
        fcntl.flock(self.gate, fcntl.LOCK_SH)
        self.held = True

    def end(self) -> None:
        if self.held:
            fcntl.flock(self.gate, fcntl.LOCK_UN)
            self.held = False

    def close(self) -> None:
        self.end()
        os.close(self.gate)
        os.close(self.turnstile)


def machine() -> CpuGate:
    """The gate every process on this machine shares (it lives in the user-data folder)."""
    return CpuGate()
