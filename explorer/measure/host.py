"""Which machine a latency was measured on: latency is a property of the host, not of the model."""

from __future__ import annotations

import hashlib
import os
import platform
import socket
import time
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from functools import lru_cache
from typing import Iterator

from explorer.spec import package_versions


@dataclass(frozen=True)
class Host:
    cpu: str
    cores: int
    machine: str
    system: str

    @property
    def id(self) -> str:
        """Hosts with the same CPU model, core count and OS give comparable latencies."""
        raw = f"{self.cpu}|{self.cores}|{self.machine}|{self.system}"
        return hashlib.sha256(raw.encode()).hexdigest()[:12]

    @property
    def label(self) -> str:
        return f"{self.cpu} ({self.cores} cores)"

    def to_dict(self) -> dict:
        return {**asdict(self), "id": self.id, "label": self.label}


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return " ".join(line.split(":", 1)[1].split())
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown CPU"


def parse_cpu_flags(cpuinfo: str) -> frozenset[str]:
    """The feature flags of /proc/cpuinfo's text, as the kernel spells them ('flags' on x86, 'Features' on
    ARM: avx512_vnni, avx512_fp16, amx_int8, asimddp, asimdhp); empty if it lists none."""
    for line in cpuinfo.splitlines():
        if line.split(":", 1)[0].strip() in ("flags", "Features"):
            return frozenset(line.split(":", 1)[1].split())
    return frozenset()


@lru_cache(maxsize=1)
def cpu_flags() -> frozenset[str]:
    """This CPU's feature flags (parse_cpu_flags); empty if unknown."""
    try:
        with open("/proc/cpuinfo") as f:
            return parse_cpu_flags(f.read())
    except OSError:
        return frozenset()


@lru_cache(maxsize=1)
def current() -> Host:
    return Host(_cpu_model(), os.cpu_count() or 1, platform.machine(), platform.system())


def measurement_context(threads: int) -> dict:
    """How a measurement was taken: host, threads, runtime versions, time."""
    versions = package_versions(("ai-edge-litert", "tensorflow", "tf-keras", "tensorflow-model-optimization", "numpy"))
    return {"host": current().to_dict(), "hostname": socket.gethostname(), "threads": threads,
            "versions": versions, "python": platform.python_version(),
            "measured_at": datetime.now(timezone.utc).isoformat(timespec="seconds")}


@dataclass(frozen=True)
class CpuSnapshot:
    """Machine-wide busy CPU time, this process's CPU time and the wall clock, in seconds."""

    busy_s: float
    own_s: float
    wall_s: float


def cpu_snapshot() -> CpuSnapshot:
    tick = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
    try:
        with open("/proc/stat") as f:
            fields = [int(v) for v in f.readline().split()[1:]]
        busy = (sum(fields[:8]) - fields[3] - fields[4]) / tick  # all but idle and iowait
    except (OSError, ValueError, IndexError):
        busy = float("nan")
    t = os.times()
    return CpuSnapshot(busy, t.user + t.system, time.monotonic())


def other_cpu_share(before: CpuSnapshot, after: CpuSnapshot, cores: int) -> float:
    """Share of the machine's CPU (0 = idle, 1 = every core busy) used by other processes between two snapshots."""
    wall = after.wall_s - before.wall_s
    if wall <= 0 or cores < 1:
        return float("nan")
    others = (after.busy_s - before.busy_s) - (after.own_s - before.own_s)
    return min(max(others / (wall * cores), 0.0), 1.0)


@contextmanager
def pinned_to_one_core() -> Iterator[int | None]:
    """Pin the calling thread to one core (the last it may use) and restore its set afterwards.

    Yields the core, or None where the OS does not allow it (then nothing is changed).
    """
    if not hasattr(os, "sched_getaffinity"):
        yield None
        return
    allowed = os.sched_getaffinity(0)
    core = max(allowed)
    try:
        os.sched_setaffinity(0, {core})
    except OSError:
        yield None
        return
    try:
        yield core
    finally:
        os.sched_setaffinity(0, allowed)
