"""Whether each speed lever of a variant pays off on this host, one sentence each: measured first, explained second.

A lever's verdict comes from the measurements on the host being looked at: the variant's p50 beside its
*sibling*'s (the same variant without that lever: the fp32 one for a quantization mode, the unpruned one for
pruning), compared by their 95 % intervals, and the two op profiles name the op that makes the difference.
Rules from CPU flags and XNNPACK (its sparse path runs only fp32 1x1 convolutions with at least 2/3 zeros
and is off on x86 with AVX; LiteRT computes float16 weights in float32; an op XNNPACK does not take runs on
slower built-in kernels) are only the explanation: they never decide a verdict, so they cannot contradict
the measurement beside them. With nothing measured, the line says so instead of predicting.
reasons() is pure (no TensorFlow, no LiteRT); for_variant() feeds it this host's facts.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Mapping, Sequence

from explorer.record import Latency, OpTime
from explorer.spec import VariantSpec

SPARSE_MIN_ZEROS = 2 / 3
# As the kernel spells them in /proc/cpuinfo: x86 AVX512-FP16; ARMv8.2 half-precision (asimdhp, fphp).
FP16_FLAGS = frozenset({"avx512_fp16", "asimdhp", "fphp"})
DOT_FLAGS = frozenset({"avx512_vnni", "avx_vnni", "amx_int8", "asimddp"})  # int8 dot products
OP_NAMES = {"CONV_2D": "convolution", "DEPTHWISE_CONV_2D": "depthwise convolution", "FULLY_CONNECTED": "dense layer",
            "MAX_POOL_2D": "max-pooling", "QUANTIZE": "quantize", "DEQUANTIZE": "dequantize", "SOFTMAX": "softmax"}
ORDINALS = ("first", "second", "third", "fourth", "fifth", "sixth", "seventh", "eighth")


@dataclass(frozen=True)
class Reason:
    lever: str
    works: bool | None  # faster than its sibling on this host; False slower or no faster; None: not measured
    sentence: str


def siblings(spec: VariantSpec) -> dict[str, VariantSpec]:
    """Per lever the variant uses, the same variant without it: what its measured effect is relative to."""
    out = {}
    if spec.quant != "fp32":
        out[spec.quant] = spec.replace(quant="fp32", precision="full")
    if spec.precision != "full":
        out["precision"] = spec.replace(precision="full")
    if spec.channels:
        out["channels"] = spec.replace(channels=0.0)
    if spec.sparsity:
        out["pruning"] = spec.replace(sparsity=0.0, schedule=VariantSpec().schedule)
    if spec.clusters:
        out["clustering"] = spec.replace(clusters=0)
    return out


def _op_label(name: str, ordinal: int) -> str:
    word = OP_NAMES.get(name, name)
    return f"the {ORDINALS[ordinal] if ordinal < len(ORDINALS) else f'#{ordinal + 1}'} {word}"


def _by_ordinal(ops: Sequence[OpTime]) -> dict[tuple[str, int], OpTime]:
    """Ops keyed by (name, how many of that name came before): the k-th convolution of two variants pairs up
    even when pruning changed its shape or quantization added quantize ops."""
    seen: dict[str, int] = {}
    out = {}
    for op in ops:
        out[(op.name, seen.get(op.name, 0))] = op
        seen[op.name] = seen.get(op.name, 0) + 1
    return out


def op_difference(this: Sequence[OpTime], sibling: Sequence[OpTime], slower: bool) -> str:
    """The op whose time changed most in the verdict's direction, in words ('' without both profiles)."""
    a, b = _by_ordinal(this), _by_ordinal(sibling)
    pairs = [(k, a[k].us, b[k].us) for k in a if k in b]
    if not pairs:
        return ""
    sign = 1 if slower else -1
    (name, ordinal), us, sib_us = max(pairs, key=lambda p: sign * (p[1] - p[2]))
    if sign * (us - sib_us) <= 0:
        return ""
    text = f"{_op_label(name, ordinal)} takes {us:.1f} µs here against {sib_us:.1f} µs in the sibling"
    added = [op for k, op in a.items() if k not in b and k[0] in ("QUANTIZE", "DEQUANTIZE")]
    if added:
        text += f"; its {len(added)} quantize/dequantize op{'s' if len(added) > 1 else ''} add {sum(o.us for o in added):.1f} µs"
    return text + "."


def verdict(this: Latency, sibling: Latency) -> tuple[bool | None, str]:
    """Faster (True), slower (False) or no measurable difference (None, overlapping 95 % intervals)."""
    lo, hi = this.p50_ci_us or (this.p50_us, this.p50_us)
    slo, shi = sibling.p50_ci_us or (sibling.p50_us, sibling.p50_us)
    speed = sibling.p50_us / this.p50_us
    figures = f"{this.p50_us:.1f} µs against {sibling.p50_us:.1f} µs, {speed:.2f}× the sibling's speed"
    if hi < slo:
        return True, f"faster here: {figures}"
    if lo > shi:
        return False, f"slower here: {figures}"
    return None, f"no faster here: {figures}, within the measurements' 95 % intervals"


def _explanation(lever: str, spec: VariantSpec, flags: frozenset[str], machine: str, kinds: Sequence[str],
                 fallbacks: list[str], macs: int, unpruned_macs: int | None) -> str:
    """What is known of the lever on this CPU without timing it: facts only, never a verdict."""
    ops_note = (f"{', '.join(sorted(set(fallbacks)))} run{'s' if len(set(fallbacks)) == 1 else ''} on LiteRT's "
                "built-in kernels instead of XNNPACK, which costs time" if fallbacks else "every op runs in XNNPACK")
    if lever in ("int8", "qat-int8"):
        dot = sorted(flags & DOT_FLAGS)
        return (f"Full int8: {ops_note}; this CPU " + (f"has int8 dot-product instructions ({', '.join(dot)})"
                if dot else "has no int8 dot-product instructions") + ".")
    if lever == "int16x8":
        return (f"int16 activations, int8 weights: {ops_note}; XNNPACK has no int16 kernels, so LiteRT computes "
                "it with its reference kernels.")
    if lever == "dynamic":
        return f"Dynamic range: int8 weights, activations quantized on the fly; {ops_note}."
    if lever == "float16":
        native = sorted(flags & FP16_FLAGS)
        return ("float16 weights: LiteRT widens them to float32 before computing, so the file halves; "
                + (f"this CPU's native fp16 ({', '.join(native)}) is not used by default." if native
                   else "this CPU has no native fp16 arithmetic either."))
    if lever == "channels":
        ratio = f" ({unpruned_macs / macs:.2f}× fewer than unpruned)" if unpruned_macs else ""
        return f"Removing {spec.channels:.0%} of the channels leaves {macs:,} multiply-accumulates per image{ratio}."
    if lever == "pruning":
        blockers = []
        if spec.quant != "fp32":
            blockers.append(f"fp32 models (this one is {spec.quant})")
        if "separable" not in kinds:
            blockers.append("1×1 convolutions (this network has only 3×3 ones)")
        if spec.sparsity < SPARSE_MIN_ZEROS:
            blockers.append(f"at least {SPARSE_MIN_ZEROS:.0%} zeros (this has {spec.sparsity:.0%})")
        if machine in ("x86_64", "AMD64", "i686") and "avx" in flags:
            blockers.append("a CPU without AVX (it is switched off on x86 with AVX, as here)")
        if not blockers:
            return f"{spec.sparsity:.0%} zeros can take XNNPACK's sparse path for the 1×1 convolutions here."
        return (f"{spec.sparsity:.0%} zeros: XNNPACK's sparse path needs {'; '.join(blockers)}, so dense kernels "
                "multiply every zero and only the gzipped file shrinks.")
    if lever == "precision":
        return "Per-layer precision: the float layers skip int8 kernels that are slow on some CPUs, at the cost of a quantize op."
    if lever == "clustering":
        return f"{spec.clusters} shared values per kernel: TFLite still stores and multiplies every weight."
    return ""


def reasons(spec: VariantSpec, *, flags: frozenset[str], machine: str, cores: int, threads: int,
            fallback_ops: Sequence[str] | None, layer_kinds: Sequence[str], macs: int,
            unpruned_macs: int | None = None, latency: Latency | None = None,
            sibling_latency: Mapping[str, Latency | None] | None = None) -> list[Reason]:
    """One Reason per speed lever the variant uses (quantization mode always, then each optimization).

    latency is the variant's on the host being explained and sibling_latency each lever's sibling's there
    (siblings()); a lever with either missing is reported as not measured.
    """
    falls = list(fallback_ops or [])
    out = []
    sibs = siblings(spec)
    if spec.quant == "fp32":
        out.append(Reason("fp32", None, "fp32 baseline: " + ("every op runs in XNNPACK." if not falls else
                                                             f"{', '.join(sorted(set(falls)))} run on LiteRT's built-in kernels.")))
    for lever, sibling in sibs.items():
        why = _explanation(lever, spec, flags, machine, layer_kinds, falls, macs, unpruned_macs)
        theirs = (sibling_latency or {}).get(lever)
        name = {"channels": "channel pruning", "pruning": "pruning", "clustering": "clustering",
                "precision": f"keeping {spec.precision.replace('+', ', ')} in float"}.get(lever, lever)
        what = sibling.label().removeprefix(f"{spec.dataset}-")
        if latency is None or theirs is None:
            out.append(Reason(lever, None, f"Not measured against its sibling without {name} ({what}) on this "
                                           f"host yet. {why}"))
            continue
        works, said = verdict(latency, theirs)
        ops = op_difference(latency.ops, theirs.ops, slower=works is not True)
        out.append(Reason(lever, works, f"{name[0].upper()}{name[1:]} is {said} ({what}). "
                                        + (f"{ops[0].upper()}{ops[1:]} " if ops else "") + why))
    if cores <= 1:
        out.append(Reason("threads", False, "One core: more threads cannot help."))
    else:
        out.append(Reason("threads", threads > 1, f"Measured on {threads} of {cores} cores at batch 1"
                          + (": the other cores are idle." if threads == 1 else ".")))
    return out


def for_variant(v, sibling_latency: Callable[[VariantSpec], Latency | None], threads: int = 1) -> list[Reason]:
    """The reasons for a built variant (an explorer.record.VariantRecord) on this host; sibling_latency(spec)
    gives a sibling's latency measured on this host (None when it is not built or not measured here)."""
    from explorer.models import architecture
    from explorer.measure import host

    info = host.current()
    unpruned = None
    if v.spec.channels:
        unpruned = architecture.total_macs(architecture.plan(v.spec.replace(channels=0.0), tuple(v.input_shape),
                                                             len(v.class_names)))
    mine = v.latency if v.measured_here(info.id) else None
    return reasons(v.spec, flags=host.cpu_flags(), machine=info.machine, cores=info.cores, threads=threads,
                   fallback_ops=v.fallback_ops, layer_kinds=[lp.kind for lp in v.layers], macs=v.macs,
                   unpruned_macs=unpruned, latency=mine,
                   sibling_latency={lever: sibling_latency(s) for lever, s in siblings(v.spec).items()})
