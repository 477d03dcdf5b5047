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

from explorer import process
from explorer.measure import agent
from explorer.measure.agent import KERNEL_FLAGS, parse_cpu_flags, parse_generation  # noqa: F401 (re-exported)
from explorer.spec import package_versions


@dataclass(frozen=True)
class Host:
    cpu: str
    cores: int
    machine: str
    system: str
    generation: str = ""  # x86 "family/model/stepping", ARM "implementer/part"; "" where unknown
    features: tuple[str, ...] = ()  # the KERNEL_FLAGS this CPU has, sorted

    @property
    def id(self) -> str:
        """Hosts with the same CPU (model name, generation, kernel-relevant features), core count and OS give
        comparable latencies; one model name alone does not tell two generations apart."""
        raw = f"{self.cpu}|{self.cores}|{self.machine}|{self.system}|{self.generation}|{','.join(self.features)}"
        return hashlib.sha256(raw.encode()).hexdigest()[:12]

    @property
    def label(self) -> str:
        return f"{self.cpu} ({f'{self.generation}, ' if self.generation else ''}{self.cores} cores)"

    def to_dict(self) -> dict:
        return {**asdict(self), "features": list(self.features), "id": self.id, "label": self.label}


@lru_cache(maxsize=1)
def cpu_flags() -> frozenset[str]:
    """This CPU's feature flags (parse_cpu_flags); empty if unknown."""
    return parse_cpu_flags(agent._cpuinfo())


def from_facts(facts: dict) -> Host:
    """The host a measuring agent described (explorer.measure.agent.facts), here or on a target."""
    h = facts["host"]
    return Host(h["cpu"], int(h["cores"]), h["machine"], h["system"], h["generation"], tuple(sorted(h["features"])))


@lru_cache(maxsize=1)
def current() -> Host:
    """This machine, described as its measuring agent describes it (so a target that is this machine has
    this machine's id)."""
    return from_facts(agent.facts())


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
    return CpuSnapshot(process.machine_busy_seconds(), process.cpu_seconds(), time.monotonic())


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
