"""Will it fit? A .tflite model's peak RAM and flash, planned from the file alone (no interpreter, no TensorFlow).

    >>> plan(Path("model.tflite").read_bytes()).peak_ram_bytes

Peak RAM is the tensor arena TensorFlow Lite Micro would need: its head (the activations, placed by its
GreedyMemoryPlanner) plus its tail (persistent structures). The head is planned here exactly as TFLite Micro
plans it: each non-constant tensor lives from the op that creates it (inputs and outputs: from the start) to
the last op that reads it (outputs: to the end), sized to 16 bytes; buffers are placed largest first (ties
in reverse tensor order, the planner's stable sort), each at the first gap among the buffers alive at the
same time; the scratch buffers a kernel asks for (MEAN's) are planned after the tensors, alive during their op.
The tail is estimated from the graph's counts (tensors, ops, output channels), as TFLite Micro sizes it on a
64-bit host; tests and the `peak_memory` benchmark hold both against TFLite Micro's own
recording allocator. Flash is the model's bytes (weights and graph, stored in place on a microcontroller).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from ai_edge_litert import schema_py_generated as schema

from explorer.record import MemoryPlan, MemoryStep

ALIGN = 16  # TFLite Micro aligns every arena buffer to 16 bytes (MicroArenaBufferAlignment)
TYPE_BYTES = {schema.TensorType.FLOAT32: 4, schema.TensorType.FLOAT16: 2, schema.TensorType.INT32: 4,
              schema.TensorType.UINT8: 1, schema.TensorType.INT64: 8, schema.TensorType.BOOL: 1,
              schema.TensorType.INT16: 2, schema.TensorType.INT8: 1, schema.TensorType.FLOAT64: 8,
              schema.TensorType.UINT64: 8, schema.TensorType.UINT32: 4, schema.TensorType.UINT16: 2}
TYPE_NAMES = {v: k.lower() for k, v in vars(schema.TensorType).items() if not k.startswith("_")}
OP_NAMES = {v: k for k, v in vars(schema.BuiltinOperator).items() if not k.startswith("_")}

# The tail, as TFLite Micro's recording allocator itemizes it on a 64-bit host (bytes): every tensor's
# TfLiteEvalTensor, every op's node and registration, a TfLiteTensor (and its quantization) for each model
# input and output, each kernel's per-output-channel multipliers and shifts (int32 each: convolutions always, a
# dense layer when its weights are quantized per channel), each kernel's own data and parsed options (per op
# kind), and a fixed part (the allocator, the planner, the subgraph); the sum rounded up to 16 bytes, as TFLite
# Micro's tail always is. The per-kind and fixed parts are the middle of the values that reproduce TFLite Micro's
# tail exactly (a linear program) on 271 distinct models: the shipped variants, the models the test suite builds,
# and 114 small ones of one to six ops (each kind alone and in pairs, float, int8, int8 in and out; every model
# within 1.1 bytes of its 16-byte step). A 32-bit microcontroller's tail is smaller (4-byte pointers).
TAIL_PER_TENSOR = 24
TAIL_PER_OP = 64
TAIL_PER_IO_TENSOR = 64
TAIL_PER_QUANTIZED_IO = 32
TAIL_FIXED = 516.3
KERNEL_DATA = {"CONV_2D": 109.5, "DEPTHWISE_CONV_2D": 109, "MAX_POOL_2D": 71.4, "AVERAGE_POOL_2D": 69,
               "FULLY_CONNECTED": 113.2, "SOFTMAX": 88, "RESHAPE": 33.2, "QUANTIZE": 33.2, "DEQUANTIZE": 33.2,
               "ADD": 72, "MEAN": 66.5, "MUL": 49}  # MUL: a Rescaling's (by a constant); x * x came 16 B under
KERNEL_DATA_OTHER = 100  # an op kind not fitted yet: about a typical kernel's
# int16 activations: TFLite Micro's softmax keeps two lookup tables of 513 int16 values in the arena (its
# softmax_common.cc: exp and 1 / (1 + x), each a persistent buffer)
KERNEL_DATA_INT16 = {"SOFTMAX": 2 * 1040}


@dataclass(frozen=True)
class Buffer:
    tensor: int
    name: str
    shape: tuple[int, ...]
    dtype: str
    bytes: int  # aligned to ALIGN
    first: int  # first allocation scope it lives in (0: before the first op; op i is scope i + 1)
    last: int


def short_name(tensor_name: str) -> str:
    """A tensor's name for people: the converter joins the names of the ops it fused with ';' and prefixes
    the model's name ('model/conv1/Relu;model/conv1/BiasAdd;…' -> 'conv1/Relu')."""
    first = tensor_name.split(";")[0]
    parts = first.split("/")
    return "/".join(parts[1:]) if len(parts) > 1 else first


def _aligned(n: int) -> int:
    return -(-n // ALIGN) * ALIGN


def _graph(model: bytes):
    if len(model) < 8 or model[4:8] != b"TFL3":
        raise ValueError("not a .tflite model (no TFL3 identifier)")
    m = schema.Model.GetRootAs(model, 0)
    if m.SubgraphsLength() != 1:
        raise ValueError(f"memory planning handles one subgraph; this model has {m.SubgraphsLength()}")
    return m, m.Subgraphs(0)


def _op_name(m, op) -> str:
    code = m.OperatorCodes(op.OpcodeIndex())
    return OP_NAMES.get(max(code.BuiltinCode(), code.DeprecatedBuiltinCode()), "CUSTOM")


def buffers(model: bytes) -> tuple[list[Buffer], list[str]]:
    """The arena's buffers in TFLite Micro's order (tensor index), with their lifetimes; and the ops' names."""
    m, g = _graph(model)
    n_ops = g.OperatorsLength()
    first = [-1] * g.TensorsLength()
    last = [-1] * g.TensorsLength()
    for t in [*g.InputsAsNumpy(), *g.OutputsAsNumpy()]:
        first[t] = last[t] = 0
    names = []
    for i in range(n_ops):
        op, scope = g.Operators(i), i + 1
        names.append(_op_name(m, op))
        outputs = op.OutputsAsNumpy() if op.OutputsLength() else ()
        for t in outputs:
            first[t] = last[t] = scope
        for t in (op.InputsAsNumpy() if op.InputsLength() else ()):
            if t >= 0:
                last[t] = scope
        for t in outputs:
            last[t] = scope
    for t in g.OutputsAsNumpy():
        last[t] = n_ops
    found = []
    for t in range(g.TensorsLength()):
        tensor = g.Tensors(t)
        data = m.Buffers(tensor.Buffer()) if tensor.Buffer() < m.BuffersLength() else None
        constant = data is not None and (data.DataLength() > 0 or data.Offset() > 1)
        shape = tuple(max(int(d), 1) for d in tensor.ShapeAsNumpy()) if tensor.ShapeLength() else ()
        size = math.prod(shape) * TYPE_BYTES.get(tensor.Type(), 4)
        if constant or tensor.IsVariable() or size == 0:
            continue
        found.append(Buffer(t, short_name(tensor.Name().decode()), shape, TYPE_NAMES.get(tensor.Type(), "?"), _aligned(size),
                            first[t], last[t]))
    return found + _scratch(m, g), names


def _scratch(m, g) -> list[Buffer]:
    """The scratch buffers kernels request in the arena, planned after the tensors and alive during their op only.
    Of the kernels here, TFLite Micro's MEAN asks for them (reduce_common.cc): an int32 accumulator per output
    element when its input is quantized, then an int per input dimension and one per reduced axis."""
    found = []
    for i in range(g.OperatorsLength()):
        op = g.Operators(i)
        if _op_name(m, op) != "MEAN" or op.InputsLength() < 2:
            continue
        source, axis, out = (g.Tensors(op.Inputs(0)), g.Tensors(op.Inputs(1)), g.Tensors(op.Outputs(0)))
        sizes = [4 * math.prod(int(d) for d in out.ShapeAsNumpy())] if source.Type() in (
            schema.TensorType.INT8, schema.TensorType.INT16) else []
        sizes += [4 * source.ShapeLength(), 4 * math.prod(int(d) for d in axis.ShapeAsNumpy())]
        found += [Buffer(-1, "MEAN scratch", (n // 4,), "int32", _aligned(n), i + 1, i + 1) for n in sizes]
    return found


def place(sizes: list[int], firsts: list[int], lasts: list[int]) -> list[int]:
    """Offsets for buffers given in the planner's order, as TFLite Micro's GreedyMemoryPlanner places them."""
    n = len(sizes)
    order = sorted(reversed(range(n)), key=lambda i: -sizes[i])  # stable: ties stay in reverse order
    offsets = [0] * n
    placed: list[int] = []  # buffer ids, by offset
    for i in order:
        candidate = 0
        for j in placed:  # in offset order: the first gap among simultaneously alive buffers
            if firsts[j] > lasts[i] or firsts[i] > lasts[j]:
                continue
            if offsets[j] - candidate >= sizes[i]:
                break
            candidate = max(candidate, offsets[j] + sizes[j])
        offsets[i] = candidate
        at = next((k for k, j in enumerate(placed) if offsets[j] > candidate), len(placed))
        placed.insert(at, i)
    return offsets


def _kernel_channels(m, g) -> int:
    """Bytes of the kernels' per-output-channel multipliers and shifts (two int32 arrays each, 16-byte aligned):
    convolutions always, a dense layer when its weights are quantized per channel."""
    total = 0
    for i in range(g.OperatorsLength()):
        op = g.Operators(i)
        name = _op_name(m, op)
        channels = 0
        if name in ("CONV_2D", "DEPTHWISE_CONV_2D") and op.OutputsLength():
            out = g.Tensors(op.Outputs(0))
            channels = int(out.ShapeAsNumpy()[-1]) if out.ShapeLength() else 0
        elif name == "FULLY_CONNECTED" and op.InputsLength() > 1:
            q = g.Tensors(op.Inputs(1)).Quantization()
            channels = q.ScaleLength() if q is not None and q.ScaleLength() > 1 else 0
        total += 2 * _aligned(4 * channels)
    return total


def tail_bytes(model: bytes) -> int:
    """The arena's persistent tail, estimated from the graph (see the module's docstring)."""
    m, g = _graph(model)
    io = [*g.InputsAsNumpy(), *g.OutputsAsNumpy()]
    quantized = sum(1 for t in io if g.Tensors(t).Type() in (schema.TensorType.INT8, schema.TensorType.UINT8,
                                                            schema.TensorType.INT16))
    kernels = sum(_kernel_data(m, g, g.Operators(i)) for i in range(g.OperatorsLength()))
    return _aligned(math.ceil(TAIL_FIXED + TAIL_PER_TENSOR * g.TensorsLength() + TAIL_PER_OP * g.OperatorsLength()
                              + TAIL_PER_IO_TENSOR * len(io) + TAIL_PER_QUANTIZED_IO * quantized + kernels
                              + _kernel_channels(m, g)))


def _kernel_data(m, g, op) -> float:
    """The bytes TFLite Micro keeps for an op's kernel in the arena's tail (fitted per op kind)."""
    name = _op_name(m, op)
    int16 = op.InputsLength() and op.Inputs(0) >= 0 and g.Tensors(op.Inputs(0)).Type() == schema.TensorType.INT16
    return KERNEL_DATA.get(name, KERNEL_DATA_OTHER) + (KERNEL_DATA_INT16.get(name, 0) if int16 else 0)


def micro_blockers(model: bytes) -> tuple[str, ...]:
    """Why TFLite Micro cannot run the model (empty: nothing known): it has no kernels for float16 weights
    or for dynamic-range (hybrid) ops, whose float activations meet int8 weights."""
    m, g = _graph(model)
    found = []
    if any(g.Tensors(t).Type() == schema.TensorType.FLOAT16 for t in range(g.TensorsLength())):
        found.append("float16 weights")
    for i in range(g.OperatorsLength()):
        op = g.Operators(i)
        types = {g.Tensors(t).Type() for t in op.InputsAsNumpy() if t >= 0} if op.InputsLength() else set()
        if schema.TensorType.FLOAT32 in types and schema.TensorType.INT8 in types:
            found.append("dynamic-range (hybrid) ops")
            break
    return tuple(found)


def plan(model: bytes) -> MemoryPlan:
    """Peak RAM (arena head + tail), flash, and the arena over the ops, of a .tflite model."""
    found, names = buffers(model)
    offsets = place([b.bytes for b in found], [b.first for b in found], [b.last for b in found])
    ends = np.array([o + b.bytes for o, b in zip(offsets, found)], dtype=np.int64)
    head = int(ends.max()) if found else 0
    steps = []
    for scope in range(1, len(names) + 1):
        alive = [k for k, b in enumerate(found) if b.first <= scope <= b.last]
        biggest = max(alive, key=lambda k: found[k].bytes) if alive else None
        b = found[biggest] if biggest is not None else None
        steps.append(MemoryStep(op=names[scope - 1], live_bytes=int(sum(found[k].bytes for k in alive)),
                                arena_bytes=int(ends[alive].max()) if alive else 0,
                                largest=b.name if b else "", largest_shape=b.shape if b else (),
                                largest_dtype=b.dtype if b else "", largest_bytes=b.bytes if b else 0))
    return MemoryPlan(head_bytes=head, tail_bytes=tail_bytes(model), flash_bytes=len(model), steps=tuple(steps),
                      micro_blockers=micro_blockers(model))


def micro_reference(model: bytes) -> dict[str, int] | None:
    """TensorFlow Lite Micro's own figures for the model's arena (its recording allocator: total, head and tail
    bytes), the reference this plan is held against in the tests and the peak_memory benchmark; None where TFLite
    Micro cannot load the model. Needs the dev dependency tflite-micro; its report goes to file descriptor 2,
    which is captured meanwhile."""
    import os
    import re
    import tempfile

    from tflite_micro.python.tflite_micro import runtime

    with tempfile.TemporaryFile(mode="w+") as out:
        saved = os.dup(2)
        os.dup2(out.fileno(), 2)
        try:
            interp = runtime.Interpreter.from_bytes(model, arena_size=64 * 2**20)
            d = interp.get_input_details(0)
            interp.set_input(np.zeros(d["shape"], dtype=d["dtype"]), 0)
            interp.invoke()
            interp.print_allocations()
        except RuntimeError:
            return None
        finally:
            os.dup2(saved, 2)
            os.close(saved)
        out.seek(0)
        text = out.read()
    return {name: int(re.search(rf"allocation {name} (\d+) bytes", text)[1]) for name in ("total", "head", "tail")}
