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


# CPU features that change which kernels XNNPACK runs (x86 and ARM, as /proc/cpuinfo spells them): two CPUs
# sold under one model name ("AMD EPYC") with different sets of these time the same model 2-10x apart.
KERNEL_FLAGS = frozenset({"avx", "avx2", "fma", "f16c", "avx512f", "avx512bw", "avx512vl", "avx512_vnni", "avx_vnni",
                          "avx512_bf16", "avx512_fp16", "amx_int8", "amx_bf16", "asimd", "asimddp", "asimdhp", "fphp",
                          "i8mm", "sve", "sve2"})


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


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return " ".join(line.split(":", 1)[1].split())
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown CPU"


def parse_generation(cpuinfo: str) -> str:
    """x86 'cpu family/model/stepping' (e.g. 25/1/1, an EPYC Milan) or ARM 'CPU implementer/part'."""
    fields: dict[str, str] = {}
    for line in cpuinfo.splitlines():
        if ":" in line:
            name, value = (part.strip() for part in line.split(":", 1))
            fields.setdefault(name, value)
    x86 = [fields.get(k) for k in ("cpu family", "model", "stepping")]
    if all(x86):
        return "/".join(x86)
    arm = [fields.get(k) for k in ("CPU implementer", "CPU part")]
    return "/".join(arm) if all(arm) else ""


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
    try:
        with open("/proc/cpuinfo") as f:
            generation = parse_generation(f.read())
    except OSError:
        generation = ""
    return Host(_cpu_model(), os.cpu_count() or 1, platform.machine(), platform.system(), generation,
                tuple(sorted(cpu_flags() & KERNEL_FLAGS)))


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
