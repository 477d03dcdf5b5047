"""Whether each speed lever of a variant can work on this host, in one sentence each: computed from the
variant, the CPU's features and which ops XNNPACK took, never looked up by technique name.

The rules are XNNPACK's (the CPU backend LiteRT uses): its sparse inference runs only fp32 1x1
convolutions with at least 2/3 zeros and is switched off on x86 CPUs with AVX; float16 models are
computed in float32 unless the CPU has native fp16 arithmetic; an op XNNPACK does not take runs on
LiteRT's slower built-in kernels. reasons() is pure (no TensorFlow, no LiteRT); for_variant() feeds it this host's facts.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

from explorer.spec import VariantSpec

SPARSE_MIN_ZEROS = 2 / 3
FP16_FLAGS = frozenset({"avx512fp16", "asimdhp", "fphp"})  # x86 AVX512-FP16; ARMv8.2 half-precision


@dataclass(frozen=True)
class Reason:
    lever: str
    works: bool  # whether it can make this variant faster on this host
    sentence: str


def _sparsity(spec: VariantSpec, flags: frozenset[str], machine: str, kinds: Sequence[str]) -> Reason:
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
        return Reason("pruning", True, f"{spec.sparsity:.0%} zeros can take XNNPACK's sparse path for the 1×1 "
                                       "convolutions here; the other layers still multiply every zero.")
    return Reason("pruning", False, f"{spec.sparsity:.0%} zeros cannot speed this up here: XNNPACK's sparse path "
                                    f"needs {'; '.join(blockers)}. Zeros only shrink the gzipped file.")


def reasons(spec: VariantSpec, *, flags: frozenset[str], machine: str, cores: int, threads: int,
            fallback_ops: Sequence[str] | None, layer_kinds: Sequence[str], macs: int,
            unpruned_macs: int | None = None) -> list[Reason]:
    """One Reason per speed lever the variant uses (quantization mode always, then each optimization)."""
    out = []
    falls = list(fallback_ops or [])
    ops_note = (f"{', '.join(sorted(set(falls)))} run{'s' if len(set(falls)) == 1 else ''} on LiteRT's built-in "
                "kernels instead of XNNPACK") if falls else "every op runs in XNNPACK"
    if spec.quant in ("int8", "qat-int8"):
        vnni = "with" if flags & {"avx512_vnni", "avx_vnni", "asimddp"} else "without"
        out.append(Reason("int8", not falls, f"Full int8 ({vnni} int8 dot-product instructions on this CPU): "
                                             f"{ops_note}" + ("." if not falls else ", which costs time.")))
    elif spec.quant == "dynamic":
        out.append(Reason("dynamic", not falls, f"Dynamic range: int8 weights, activations quantized on the fly; "
                                                f"{ops_note}."))
    elif spec.quant == "float16":
        native = bool(flags & FP16_FLAGS)
        out.append(Reason("float16", native, "float16 weights are computed in native fp16 here." if native else
                          "float16 weights are widened to float32 before computing: this CPU has no native fp16 "
                          "arithmetic, so only the file shrinks (2×)."))
    else:
        out.append(Reason("fp32", True, f"fp32 baseline: {ops_note}."))
    if spec.channels:
        ratio = f" ({unpruned_macs / macs:.2f}× fewer than unpruned)" if unpruned_macs else ""
        out.append(Reason("channels", True, f"Removing {spec.channels:.0%} of the channels leaves {macs:,} "
                                            f"multiply-accumulates per image{ratio}: less work on any CPU."))
    if spec.sparsity:
        out.append(_sparsity(spec, flags, machine, layer_kinds))
    if spec.clusters:
        out.append(Reason("clustering", False, f"{spec.clusters} shared values per kernel: TFLite still stores and "
                                               "multiplies every weight, so only the gzipped file shrinks."))
    if cores <= 1:
        out.append(Reason("threads", False, "One core: more threads cannot help."))
    else:
        out.append(Reason("threads", threads > 1, f"Measured on {threads} of {cores} cores at batch 1"
                          + (": the other cores are idle." if threads == 1 else ".")))
    return out


def for_variant(v, threads: int = 1) -> list[Reason]:
    """The reasons for a built variant (an explorer.record.VariantRecord) on this host."""
    from explorer.build import architecture
    from explorer.measure import host

    info = host.current()
    unpruned = None
    if v.spec.channels:
        unpruned = architecture.total_macs(architecture.plan(v.spec.replace(channels=0.0), tuple(v.input_shape),
                                                             len(v.class_names)))
    return reasons(v.spec, flags=host.cpu_flags(), machine=info.machine, cores=info.cores, threads=threads,
                   fallback_ops=v.fallback_ops, layer_kinds=[lp.kind for lp in v.layers], macs=v.macs,
                   unpruned_macs=unpruned)
