"""The measuring agent: times .tflite models on the machine it runs on, with only numpy and ai-edge-litert.

One file serves two places. On this machine, every process of the timing pool (explorer.measure.pool) is
`python -m explorer.measure.agent --serve`. On a measurement target (explorer.measure.targets) the app
sends this file's source through the target's transport and runs it there with BOOTSTRAP, so a device
needs no TensorFlow, no Streamlit and no checkout of this project. Nothing here imports the rest of it.

The protocol, on stdin and stdout: the agent says GREETING, then answers one request at a time: a JSON
line, then for a block the payload's
bytes (model, then image) unless the agent holds that payload already (the request's sha256 says which).
    {"op": "facts"}   -> one JSON line: the machine (as explorer.measure.host describes one) and versions
    {"op": "block", "sha", "model_bytes", "image_bytes", "image_shape", "image_dtype", "core", "threads",
     "warmup", "runs", "seconds", "max_seconds", "xnnpack"}
                      -> int64 n, then n int64 nanoseconds; n = -1: a JSON line {"error": why}
    {"op": "profile", "model_sizes", "image_bytes", "image_shape", "image_dtype", "core", "threads", "rounds",
     "runs", "warmup"}, then the models and the image
                      -> a JSON line {"medians": rounds x models µs} (after an error: int64 -1 and its line)
    {"op": "memory", "model_bytes", "image_bytes", "image_shape", "image_dtype", "threads"}, then the model and image
                      -> a JSON line {"rss_increase_bytes": n} or {"error": why}: what an interpreter of the model,
                         allocated and run once, adds to this process's resident memory (ask a fresh process)
"""

from __future__ import annotations

import json
import os
import platform
import socket
import struct
import sys
import time

import numpy as np

# Run on a target as: python3 -c BOOTSTRAP <bytes of this file> --serve, this file's source first on stdin.
BOOTSTRAP = ("import sys;n=int(sys.argv[1]);sys.argv=['explorer-agent',*sys.argv[2:]];"
             "exec(compile(sys.stdin.buffer.read(n),'explorer-agent','exec'),{'__name__':'__main__'})")

GREETING = b"explorer-agent 1\n"  # the agent's first line: its protocol's version

# CPU features that change which kernels XNNPACK runs (x86 and ARM, as /proc/cpuinfo spells them): two CPUs
# sold under one model name ("AMD EPYC") with different sets of these time the same model 2-10x apart.
KERNEL_FLAGS = frozenset({"avx", "avx2", "fma", "f16c", "avx512f", "avx512bw", "avx512vl", "avx512_vnni", "avx_vnni",
                          "avx512_bf16", "avx512_fp16", "amx_int8", "amx_bf16", "asimd", "asimddp", "asimdhp", "fphp",
                          "i8mm", "sve", "sve2"})


# -- the machine -----------------------------------------------------------------------------------
def _cpuinfo() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            return f.read()
    except OSError:
        return ""


def cpu_model(cpuinfo: str) -> str:
    """The CPU's model name ('model name' on x86, 'Model' or 'Hardware' on ARM boards)."""
    for key in ("model name", "Model", "Hardware"):
        for line in cpuinfo.splitlines():
            if line.split(":", 1)[0].strip() == key and ":" in line:
                return " ".join(line.split(":", 1)[1].split())
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


def _version(package: str) -> str:
    from importlib import metadata

    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return "unknown"


def facts() -> dict:
    """What a latency measured here belongs to: the host's fields (explorer.measure.host.Host) and versions."""
    info = _cpuinfo()
    return {"host": {"cpu": cpu_model(info), "cores": os.cpu_count() or 1, "machine": platform.machine(),
                     "system": platform.system(), "generation": parse_generation(info),
                     "features": sorted(parse_cpu_flags(info) & KERNEL_FLAGS)},
            "hostname": socket.gethostname(), "python": platform.python_version(),
            "versions": {"ai-edge-litert": _version("ai-edge-litert"), "numpy": _version("numpy")},
            "pinning": hasattr(os, "sched_setaffinity")}


# -- timing ----------------------------------------------------------------------------------------
def interpreter(model: bytes, threads: int = 1, batch: int = 1, xnnpack: bool = True) -> "Interpreter":
    """An allocated interpreter whose input takes `batch` images (XNNPACK delegate on by default)."""
    from ai_edge_litert.interpreter import Interpreter, OpResolverType  # here: describing the host needs no LiteRT

    resolver = OpResolverType.AUTO if xnnpack else OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES
    interp = Interpreter(model_content=model, num_threads=threads, experimental_op_resolver_type=resolver)
    if batch != 1:
        shape = list(interp.get_input_details()[0]["shape"])
        interp.resize_tensor_input(interp.get_input_details()[0]["index"], [batch, *shape[1:]])
    interp.allocate_tensors()
    return interp


def to_input(interp: "Interpreter", images: np.ndarray) -> np.ndarray:
    """Images in [0, 1] as the model's input type (quantized for full-integer models)."""
    detail = interp.get_input_details()[0]
    if detail["dtype"] == np.float32:
        return images.astype(np.float32)
    scale, zero = detail["quantization"]
    info = np.iinfo(detail["dtype"])
    return np.clip(np.round(images / scale + zero), info.min, info.max).astype(detail["dtype"])


def timed_runs(invoke, min_runs: int, min_seconds: float, max_seconds: float) -> list[int]:
    """Nanoseconds of each invoke(), for at least min_runs runs and min_seconds (at most max_seconds)."""
    samples: list[int] = []
    clock = time.perf_counter_ns
    start = clock()
    min_ns, max_ns = min_seconds * 1e9, max_seconds * 1e9
    while True:
        t0 = clock()
        invoke()
        t1 = clock()
        samples.append(t1 - t0)
        elapsed = t1 - start
        if (len(samples) >= min_runs and elapsed >= min_ns) or elapsed >= max_ns:
            return samples


def ready(model: bytes, image: np.ndarray, threads: int, xnnpack: bool, warmup: int):
    """The invoke of an interpreter with its input set and `warmup` untimed runs done."""
    interp = interpreter(model, threads, xnnpack=xnnpack)
    interp.set_tensor(interp.get_input_details()[0]["index"], to_input(interp, image[None]))
    for _ in range(warmup):
        interp.invoke()
    return interp.invoke


def prefix_medians(models: list[bytes], image: np.ndarray, threads: int = 1, rounds: int = 5, runs: int = 100,
                   warmup: int = 20) -> list[list[float]]:
    """Per round, each model's median µs over `runs` invokes, the models timed round-robin in this process so
    that drift hits all alike (explorer.measure.profile differences a model's prefixes' medians)."""
    invokes = [ready(m, image, threads, True, warmup) for m in models]
    medians = np.empty((rounds, len(invokes)))
    samples = np.empty(runs)
    for r in range(rounds):
        for k, invoke in enumerate(invokes):
            for i in range(runs):
                t0 = time.perf_counter_ns()
                invoke()
                samples[i] = time.perf_counter_ns() - t0
            medians[r, k] = np.median(samples) / 1000
    return medians.tolist()


def resident_bytes() -> int | None:
    """This process's resident memory (Linux's /proc/self/statm), None where the system has no such file."""
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return None


def resident_increase(model: bytes, image: np.ndarray, threads: int = 1) -> dict:
    """What an interpreter of the model (XNNPACK on, tensors allocated, run once) adds to resident memory. LiteRT
    is imported before the first reading: the library's own pages are not the model's."""
    from ai_edge_litert.interpreter import Interpreter  # noqa: F401

    before = resident_bytes()
    if before is None:
        return {"error": "this system has no /proc/self/statm: its resident memory cannot be read"}
    invoke = ready(model, image, threads, True, 1)
    after = resident_bytes()
    del invoke
    return {"rss_increase_bytes": after - before}


def pin(core) -> None:
    """Pin this process to `core`: a number, "last" (the last core it may use), or None (leave it)."""
    if core is None or not hasattr(os, "sched_setaffinity"):
        return
    os.sched_setaffinity(0, {max(os.sched_getaffinity(0)) if core == "last" else int(core)})


# -- serving ---------------------------------------------------------------------------------------
def _read(stream, n: int) -> bytes:
    data = stream.read(n)
    if len(data) != n:
        raise EOFError("the input ended")
    return data


def serve(inp=None, out=None) -> None:
    """Answer requests (see the module's docstring) until the input ends. A request that fails is answered
    with its reason and serving goes on; only the last payload is held (a measurement sends one)."""
    inp, out = inp or sys.stdin.buffer, out or sys.stdout.buffer
    out.write(GREETING)  # what a login banner or a wrong program would not say
    out.flush()
    held: dict[str, tuple[bytes, np.ndarray]] = {}
    while line := inp.readline():
        try:
            r = json.loads(line)
            if r.get("op") == "facts":
                out.write(json.dumps(facts()).encode() + b"\n")
                out.flush()
                continue
            if r.get("op") == "profile":  # the models (a model's prefixes) and the image follow
                models = [_read(inp, n) for n in r["model_sizes"]]
                image = np.frombuffer(_read(inp, r["image_bytes"]), dtype=r["image_dtype"]).reshape(r["image_shape"])
                pin(r.get("core"))
                medians = prefix_medians(models, image, r["threads"], r["rounds"], r["runs"], r["warmup"])
                out.write(json.dumps({"medians": medians}).encode() + b"\n")
                out.flush()
                continue
            if r.get("op") == "memory":
                model, raw = _read(inp, r["model_bytes"]), _read(inp, r["image_bytes"])
                image = np.frombuffer(raw, dtype=r["image_dtype"]).reshape(r["image_shape"])
                out.write(json.dumps(resident_increase(model, image, r["threads"])).encode() + b"\n")
                out.flush()
                continue
            if r.get("op") != "block":
                raise ValueError(f"unknown request {r.get('op')!r}")
            if r["model_bytes"]:  # the payload follows
                model, raw = _read(inp, r["model_bytes"]), _read(inp, r["image_bytes"])
                held = {r["sha"]: (model, np.frombuffer(raw, dtype=r["image_dtype"]).reshape(r["image_shape"]))}
            if r["sha"] not in held:
                raise LookupError("payload not held: send it again")
            model, image = held[r["sha"]]
            pin(r.get("core"))
            invoke = ready(model, image, r["threads"], r["xnnpack"], r["warmup"])
            samples = np.asarray(timed_runs(invoke, r["runs"], r["seconds"], r["max_seconds"]), dtype=np.int64)
        except EOFError:
            return
        except Exception as exc:  # noqa: BLE001 - e.g. a model LiteRT refuses: say why, keep serving
            out.write(struct.pack("<q", -1) + json.dumps({"error": f"{type(exc).__name__}: {exc}"}).encode() + b"\n")
            out.flush()
            continue
        out.write(struct.pack("<q", samples.size) + samples.tobytes())
        out.flush()


def main(argv: list[str]) -> int:
    if argv == ["--facts"]:
        print(json.dumps(facts()))
        return 0
    if argv == ["--serve"]:
        serve()
        return 0
    print("usage: python -m explorer.measure.agent --serve | --facts", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
