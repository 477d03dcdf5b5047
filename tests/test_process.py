"""Process facts through psutil: liveness and identity by start time, CPU time, resident memory."""

import os
import subprocess
import sys
import time

from explorer import process


def test_a_process_is_named_by_its_pid_and_start_time():
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        assert process.alive(child.pid)
        first = process.started(child.pid)
        assert first is not None and process.started(child.pid) == first  # stable while it runs
        assert first != process.started(os.getpid())  # another process, another start
        assert abs(first / 100 - time.time()) < 60  # hundredths of a second since the epoch
    finally:
        child.kill()
        child.wait()
    assert not process.alive(child.pid) and process.started(child.pid) is None


def test_a_zombie_is_not_alive():
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    deadline = time.time() + 10
    while time.time() < deadline and process.alive(child.pid):  # exited, not reaped yet: a zombie
        time.sleep(0.05)
    try:
        assert not process.alive(child.pid)
    finally:
        child.wait()


def test_cpu_time_and_memory_grow_with_work():
    own, busy = process.cpu_seconds(), process.machine_busy_seconds()
    rss = process.resident_bytes()
    block = bytearray(64 * 2**20)
    block[::4096] = b"x" * len(block[::4096])  # touch every page
    deadline = time.process_time() + 0.3
    while time.process_time() < deadline:
        pass
    assert process.cpu_seconds() - own >= 0.25
    assert process.machine_busy_seconds() - busy >= 0.25  # the machine counts this process's work too
    assert process.resident_bytes() - rss >= 60 * 2**20
    del block


def test_bad_pids_are_not_alive():
    assert not process.alive(-1) and process.started(-1) is None
    assert not process.alive(2**22 + 12345)  # above Linux's pid_max
