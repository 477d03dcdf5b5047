"""Which machine a latency was measured on: latency is a property of the host, not of the model."""

from __future__ import annotations

import hashlib
import os
import platform
import socket
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from functools import lru_cache
from importlib import metadata


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


@lru_cache(maxsize=1)
def current() -> Host:
    return Host(_cpu_model(), os.cpu_count() or 1, platform.machine(), platform.system())


def measurement_context(threads: int) -> dict:
    """How a measurement was taken: host, threads, runtime versions, time."""
    versions = {}
    for pkg in ("ai-edge-litert", "tensorflow", "tf-keras", "tensorflow-model-optimization", "numpy"):
        try:
            versions[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            versions[pkg] = "missing"
    return {"host": current().to_dict(), "hostname": socket.gethostname(), "threads": threads,
            "versions": versions, "python": platform.python_version(),
            "measured_at": datetime.now(timezone.utc).isoformat(timespec="seconds")}
