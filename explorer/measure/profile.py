"""Where one inference's time goes, op by op, and which ops XNNPACK runs.

Per-op time is measured by truncation: the .tflite model cut after its k-th op (the same flatbuffer,
same weights and quantization, its output moved to that op's output) is timed for every k, and an
op's time is the difference between consecutive prefixes. The prefixes are timed round-robin in one
process so that drift hits all of them alike; the whole model is the last prefix, so the op times add
up to its time by construction (the Details page also sets their sum beside the recorded latency,
which is measured separately). Delegation is read off the interpreter: XNNPACK replaces the ops it
takes by DELEGATE nodes, and every op it did not take runs on LiteRT's built-in kernels.
No TensorFlow: the flatbuffer is edited with LiteRT's own schema.
"""

from __future__ import annotations

from dataclasses import dataclass

import flatbuffers
import numpy as np
from ai_edge_litert import schema_py_generated as schema

from explorer.measure import agent, measure
from explorer.record import OpTime


@dataclass(frozen=True)
class Op:
    index: int
    name: str  # the TFLite builtin, e.g. CONV_2D
    output_shape: tuple[int, ...]
    delegated: bool  # run by XNNPACK (else by a built-in kernel)


@dataclass(frozen=True)
class Profile:
    ops: tuple[OpTime, ...]
    total_us: float  # p50 of the whole model in the same run (the last prefix)


def ops(model: bytes) -> list[Op]:
    """The ops on the image's path, in execution order, each marked as taken by XNNPACK or not.

    Ops that only prepare constants (a float16 model's weight DEQUANTIZE) are left out: they do not
    depend on the image. Our networks are chains, so a DELEGATE node covers the path's ops after the
    producer of its activation input, up to the producer of its output."""
    interp = measure.interpreter(model)
    details = interp._get_ops_details()  # noqa: SLF001 -- LiteRT's only view of the graph's nodes
    live = {int(d["index"]) for d in interp.get_input_details()}
    path = []
    for d in details:
        if d["op_name"] != "DELEGATE" and any(int(t) in live for t in d["inputs"]):
            path.append(d)
            live.update(int(t) for t in d["outputs"])
    producer = {int(t): d["index"] for d in path for t in d["outputs"]}
    delegated: set[int] = set()
    for node in (d for d in details if d["op_name"] == "DELEGATE"):
        starts = [producer[int(t)] for t in node["inputs"] if int(t) in producer]
        ends = [producer[int(t)] for t in node["outputs"] if int(t) in producer]
        if ends:
            first = max(starts) + 1 if starts else 0
            delegated.update(range(first, max(ends) + 1))
    shapes = {d["index"]: tuple(int(x) for x in d["shape"]) for d in interp.get_tensor_details()}
    return [Op(d["index"], d["op_name"], shapes.get(int(d["outputs"][0]), ()), d["index"] in delegated)
            for d in path]


def fallbacks(model: bytes) -> list[str]:
    """Names of the ops XNNPACK does not run (empty: fully delegated)."""
    return [op.name for op in ops(model) if not op.delegated]


def truncated(model: bytes, n_ops: int) -> bytes:
    """The model cut after its first n_ops ops (in execution order): same tensors and weights, output at the
    n-th op's output."""
    return prefixes(model, [n_ops])[0]


def prefixes(model: bytes, cuts: list[int]) -> list[bytes]:
    """The model cut after each of `cuts` ops; the flatbuffer is unpacked once for all of them (unpacking
    takes most of a cut's time)."""
    m = schema.ModelT.InitFromPackedBuf(bytearray(model), 0)
    graph = m.subgraphs[0]
    operators, out = graph.operators, []
    m.signatureDefs = []  # they name the original output
    for n_ops in cuts:
        graph.operators = operators[:n_ops]
        graph.outputs = list(graph.operators[-1].outputs)
        builder = flatbuffers.Builder(len(model) + 1024)
        builder.Finish(m.Pack(builder), file_identifier=b"TFL3")
        out.append(bytes(builder.Output()))
    return out


PROFILE_SECONDS = 3.0  # about what a profile may take when the model's latency is known
MIN_RUNS = 10


def runs_within(model_us: float, prefixes: int, rounds: int, runs: int, seconds: float = PROFILE_SECONDS) -> int:
    """Invokes per prefix and round so the profile takes about `seconds` (every prefix costing at most the whole
    model), between MIN_RUNS and `runs`: 100 at 28x28, 10 for a 7 ms 224x224 model, whose 100 took 24 s."""
    return int(np.clip(seconds * 1e6 // (max(model_us, 1e-3) * prefixes * rounds), MIN_RUNS, max(runs, MIN_RUNS)))


def profile(model: bytes, image: np.ndarray, threads: int = 1, rounds: int = 5, runs: int = 100,
            warmup: int = 20, timing=None, model_us: float | None = None) -> Profile:
    """Time every prefix of the model round-robin (rounds x runs invokes each) and difference them: here, or
    in a target's agent (timing: its pool). Given the model's latency (model_us), runs shrink to fit
    PROFILE_SECONDS."""
    graph = ops(model)
    cuts = prefixes(model, [op.index + 1 for op in graph])
    if model_us is not None:
        runs = runs_within(model_us, len(cuts), rounds, runs)
        warmup = min(warmup, runs)
    params = {"threads": threads, "rounds": rounds, "runs": runs, "warmup": warmup, "core": "last"}
    medians = np.asarray(agent.prefix_medians(cuts, image, threads, rounds, runs, warmup) if timing is None
                         else timing.profile(cuts, image, params))
    prefix = np.median(medians, axis=0)
    steps = np.diff(np.concatenate([[0.0], prefix]))
    return Profile(tuple(OpTime(op.index, op.name, op.output_shape, op.delegated, round(float(us), 3))
                         for op, us in zip(graph, steps)), float(prefix[-1]))
