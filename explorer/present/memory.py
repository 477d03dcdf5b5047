"""A variant's memory in words (pure): where its RAM peaks, which boards it fits, and what each lever did to it.

The figures come from the memory plan of each model (explorer.measure.memory): a lever's effect is this
variant's plan beside its sibling's (the same variant without the lever, explorer.present.why.siblings), and
the explanation only says what the lever changes (bytes per activation, channels), never a figure it predicts.
"""

from __future__ import annotations

from typing import Mapping

from explorer.measure.boards import BOARDS, Board
from explorer.present.why import OP_NAMES, Reason, siblings
from explorer.record import MemoryPlan
from explorer.spec import VariantSpec

NAMES = {"channels": "channel pruning", "pruning": "pruning", "clustering": "clustering", "precision": "per-layer precision"}
WHAT_IT_CHANGES = {
    "int8": "int8 activations take one byte a value where float32 takes four",
    "qat-int8": "int8 activations take one byte a value where float32 takes four",
    "int16x8": "int16 activations take two bytes a value where float32 takes four",
    "dynamic": "dynamic range quantizes the weights only: activations stay float32",
    "float16": "float16 weights are widened to float32 when the model loads, into the arena",
    "channels": "fewer channels make narrower activations and fewer weights",
    "pruning": "zeros in the weights change no activation; the file keeps every zero (only gzip shrinks it)",
    "clustering": "shared weight values change no activation; the file keeps every weight",
    "precision": "the layers kept in float take four bytes a value, plus their quantize ops' buffers",
}


def kb(n_bytes: float) -> str:
    return f"{n_bytes / 1000:,.1f} KB"


def peak_text(plan: MemoryPlan) -> str:
    """'Peak RAM 31.1 KB: 27.0 KB of activations at the max-pooling (op 2), where conv1/Relu, 1×26×26×32 int8 =
    21.6 KB, is still alive, plus 4.1 KB of TFLite Micro's own data.'"""
    found = plan.peak_step
    text = f"Peak RAM {kb(plan.peak_ram_bytes)}"
    if found is None:
        return text + "."
    i, step = found
    shape = "×".join(map(str, step.largest_shape))
    return (f"{text}: {kb(step.live_bytes)} of activations alive at the {OP_NAMES.get(step.op, step.op)} (op {i + 1} "
            f"of {len(plan.steps)}), the largest {step.largest}, {shape} {step.largest_dtype} = {kb(step.largest_bytes)}"
            f"; plus {kb(plan.tail_bytes)} of TensorFlow Lite Micro's own data (its tail).")


def fitting_boards(plan: MemoryPlan) -> tuple[list[Board], list[Board]]:
    """The boards whose SRAM and flash the model fits, and those it does not (none when TFLite Micro cannot run it)."""
    fits = [b for b in BOARDS.values() if b.fits(plan)]
    return fits, [b for b in BOARDS.values() if b not in fits]


def reasons(spec: VariantSpec, plan: MemoryPlan | None, sibling_plans: Mapping[str, MemoryPlan | None]) -> list[Reason]:
    """One sentence per lever the variant uses: its peak RAM and flash against its sibling's (sibling_plans by
    lever, explorer.present.why.siblings), then what the lever changes. works: smaller RAM (True), larger
    (False), the same (None); a lever with a plan missing says so."""
    out = []
    for lever, sibling in siblings(spec).items():
        name = NAMES.get(lever, lever)
        what = sibling.label().removeprefix(f"{spec.dataset}-")
        theirs = sibling_plans.get(lever)
        changes = WHAT_IT_CHANGES.get(lever, "")
        if plan is None or theirs is None:
            out.append(Reason(lever, None, f"Its sibling without {name} ({what}) is not built (or not planned) here: "
                                           f"nothing to set its memory beside. {changes[0].upper()}{changes[1:]}."))
            continue
        ram, flash = plan.peak_ram_bytes / theirs.peak_ram_bytes, plan.flash_bytes / theirs.flash_bytes
        acts = plan.head_bytes / theirs.head_bytes if theirs.head_bytes else float("nan")
        works = None if plan.peak_ram_bytes == theirs.peak_ram_bytes else plan.peak_ram_bytes < theirs.peak_ram_bytes
        said = {True: "needs less RAM", False: "needs more RAM", None: "needs the same RAM"}[works]
        out.append(Reason(lever, works,
                          f"{name[0].upper()}{name[1:]} {said}: peak {kb(plan.peak_ram_bytes)} against "
                          f"{kb(theirs.peak_ram_bytes)} ({ram:.2f}×; activations {kb(plan.head_bytes)} against "
                          f"{kb(theirs.head_bytes)}, {acts:.2f}×), flash {kb(plan.flash_bytes)} against "
                          f"{kb(theirs.flash_bytes)} ({flash:.2f}×) ({what}). {changes[0].upper()}{changes[1:]}."))
    return out
