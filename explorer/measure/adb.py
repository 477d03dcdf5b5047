"""Android targets (adb://SERIAL): LiteRT's own benchmark_model binary on the device, its output parsed.

The user installs the binary once (README: Measure on your phone); the app pushes each model to
/data/local/tmp, runs the binary BLOCKS times (each run a fresh process, as the local harness's blocks are),
and keeps what the tool reports: per run its count, average, standard deviation, min, max, and on newer
builds p5, median and p95, with the init and first-inference times. The record marks what the tool does not
give (`lacks`: p90, p99, the samples, the per-op profile), and takes the p50 from the runs' medians (from
their averages, marked, where the binary prints no median). Every call to adb is an argv, never a local
shell; the device's shell gets one quoted command line.
"""

from __future__ import annotations

import hashlib
import re
import shlex
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from explorer.measure import agent, stats

SERIAL = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$")
DEVICE_DIR = "/data/local/tmp"
BLOCKS = 3
_NUM = r"([0-9][0-9.e+]*)"
COUNT = re.compile(rf"count={_NUM}(?: first={_NUM})? curr={_NUM}(?: min={_NUM} max={_NUM} avg={_NUM} std={_NUM})?"
                   rf"(?: p5={_NUM} median={_NUM} p95={_NUM})?")
TIMINGS = re.compile(rf"Inference timings in us: Init: {_NUM}, First inference: {_NUM}, Warmup \(avg\): {_NUM}, "
                     rf"Inference \(avg\): {_NUM}")
LACKS = ("p90_us", "p99_us", "samples_us", "ops", "throughput_ips")


class AdbError(RuntimeError):
    """adb or the device's benchmark_model failed; the message says which and what it printed."""


@dataclass(frozen=True)
class Run:
    """One benchmark_model run's timed phase (µs), as it printed it."""

    count: int
    avg_us: float
    std_us: float
    min_us: float
    max_us: float
    median_us: float | None  # None: an older binary that prints no percentiles
    p5_us: float | None
    p95_us: float | None
    init_us: float | None
    first_us: float | None


def parse(output: str) -> Run:
    """The timed phase of benchmark_model's output: its last 'count=' line with statistics (the first one is
    the warm-up phase) and the 'Inference timings' summary."""
    found = [m for m in COUNT.finditer(output) if m.group(6) is not None]
    if not found:
        tail = " / ".join(line.strip() for line in output.strip().splitlines()[-3:])
        raise AdbError(f"benchmark_model printed no timings ({tail or 'nothing'})")
    m = found[-1]
    num = lambda i: float(m.group(i)) if m.group(i) is not None else None  # noqa: E731
    t = list(TIMINGS.finditer(output))
    return Run(int(float(m.group(1))), num(6), num(7), num(4), num(5), num(9), num(8), num(10),
               float(t[-1].group(1)) if t else None, float(t[-1].group(2)) if t else None)


def adb_path() -> str:
    from explorer.settings import settings

    return settings().adb


def _adb(serial: str, *args: str, timeout: float = 300) -> str:
    if not SERIAL.match(serial):
        raise AdbError(f"{serial!r} is not a device serial")
    try:
        done = subprocess.run([adb_path(), "-s", serial, *args], capture_output=True, text=True, timeout=timeout)
    except FileNotFoundError as exc:
        raise AdbError("adb is not installed here (apt install adb), or EXPLORER_ADB names no program") from exc
    except subprocess.TimeoutExpired as exc:
        raise AdbError(f"adb {args[0]} did not finish within {timeout:.0f} s") from exc
    if done.returncode != 0:
        said = " / ".join((done.stderr or done.stdout).strip().splitlines()[-3:])
        raise AdbError(f"adb {args[0]} failed: {said or f'exit status {done.returncode}'}")
    return done.stdout


def shell(serial: str, *words: str, timeout: float = 300) -> str:
    """Run one command on the device; its words quoted for the device's shell."""
    return _adb(serial, "shell", shlex.join(words), timeout=timeout)


def facts(serial: str, binary: str) -> dict:
    """The device as the agent would describe a machine (explorer.measure.agent.facts), from its cpuinfo,
    core count and properties; checks that the benchmark binary is there."""
    info = shell(serial, "cat", "/proc/cpuinfo")
    model = shell(serial, "getprop", "ro.product.model").strip()
    soc = shell(serial, "getprop", "ro.soc.model").strip()
    cores = int(shell(serial, "nproc").strip() or 1)
    machine = shell(serial, "uname", "-m").strip()
    release = shell(serial, "getprop", "ro.build.version.release").strip()
    try:
        shell(serial, "ls", binary)
    except AdbError as exc:
        raise AdbError(f"no benchmark_model at {binary} on {serial} (see the README to install it): {exc}") from exc
    cpu = " ".join(p for p in (soc or agent.cpu_model(info), f"({model})" if model else "") if p)
    return {"host": {"cpu": cpu, "cores": cores, "machine": machine, "system": "Android",
                     "generation": agent.parse_generation(info),
                     "features": sorted(agent.parse_cpu_flags(info) & agent.KERNEL_FLAGS)},
            "hostname": serial, "python": "", "versions": {"android": release, "benchmark_model": binary}}


def latency(serial: str, binary: str, model: bytes, threads: int = 1, blocks: int = BLOCKS, runs: int = 300,
            warmup: int = 30) -> dict:
    """The latency record's figures of a model timed on the device: `blocks` runs of benchmark_model."""
    remote = f"{DEVICE_DIR}/explorer-{hashlib.sha256(model).hexdigest()[:16]}.tflite"
    with tempfile.TemporaryDirectory(prefix="explorer-adb-") as tmp:
        local = Path(tmp) / "model.tflite"
        local.write_bytes(model)
        _adb(serial, "push", str(local), remote)
    try:
        done = [parse(shell(serial, binary, f"--graph={remote}", f"--num_threads={threads}",
                            f"--warmup_runs={warmup}", f"--num_runs={runs}", "--use_xnnpack=true"))
                for _ in range(blocks)]
    finally:
        shell(serial, "rm", "-f", remote)
    medians = all(r.median_us is not None for r in done)
    p50s = [r.median_us if medians else r.avg_us for r in done]
    p50 = float(np.median(p50s))
    counts = np.array([r.count for r in done], dtype=float)
    return {"p50_us": p50, "p90_us": None, "p99_us": None,
            "mean_us": float(np.average([r.avg_us for r in done], weights=counts)),
            "min_us": float(min(r.min_us for r in done)), "runs": int(counts.sum()), "threads": threads,
            "p50_ci_us": list(stats.blocks_interval(p50s, p50)), "block_p50s_us": [round(v, 3) for v in p50s],
            "block_spread": stats.block_spread(p50s), "attempts": 1, "noisy": stats.block_spread(p50s) > 0.03,
            "throughput_ips": None, "samples_us": [],
            "tool": {"name": "benchmark_model", "p50_from": "median" if medians else "average (no median printed)",
                     "runs": [r.__dict__ for r in done]},
            "lacks": list(LACKS)}
