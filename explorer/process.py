"""Process and machine facts, through psutil: the one module that asks the system about processes.

Liveness, start time, CPU time and resident memory, on Linux and macOS alike (psutil reads /proc on Linux and
the kernel's own calls elsewhere). A pid alone is not a process: pids wrap and are reused, so the queue and
the search name a process by its pid *and* its start time. The measuring agent (measure/agent.py) is the one
exception: it runs alone on targets with numpy and LiteRT only, and reads its CPU flags and resident memory
from the files Linux gives (a target without them reports why).
"""

from __future__ import annotations

import psutil


def started(pid: int) -> int | None:
    """When the process started, in hundredths of a second since the epoch (None when it is gone): with the pid
    it names one process even after the pid is reused. Derived from the boot time and the process's start in
    ticks, so it does not move when the wall clock is stepped or the machine sleeps."""
    try:
        return round(psutil.Process(pid).create_time() * 100)
    except (psutil.NoSuchProcess, psutil.AccessDenied, ValueError):
        return None


def alive(pid: int) -> bool:
    """Whether the process runs: a zombie (killed but not yet reaped by its parent) does not."""
    try:
        return psutil.Process(pid).status() not in (psutil.STATUS_ZOMBIE, psutil.STATUS_DEAD)
    except psutil.NoSuchProcess:
        return False
    except psutil.AccessDenied:  # another user's process: it exists
        return True
    except ValueError:  # a negative pid
        return False


def cpu_seconds(pid: int | None = None) -> float:
    """User plus system CPU time of a process (this one by default), in seconds."""
    times = psutil.Process(pid).cpu_times()
    return times.user + times.system


def resident_bytes(pid: int | None = None) -> int:
    """A process's resident memory (this one by default)."""
    return psutil.Process(pid).memory_info().rss


def machine_busy_seconds() -> float:
    """CPU seconds the whole machine has spent busy since boot, over all cores: every state but idle and I/O
    wait (guest time is counted within user time already, so it is not added)."""
    t = psutil.cpu_times()
    return sum(getattr(t, name, 0.0) for name in ("user", "nice", "system", "irq", "softirq", "steal"))
