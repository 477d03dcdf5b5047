"""Sentences under the figures: where latencies were measured, with their intervals, and why a lever pays off."""

from __future__ import annotations

import streamlit as st

from explorer.measure import host
from explorer.record import Latency, VariantRecord
from explorer.spec import VariantSpec
from pages.ui.loading import Results


def host_caption(threads: int = 1, h: host.Host | None = None, target: str | None = None) -> str:
    h = h or host.current()
    return (f"Latencies: batch 1, {threads} thread{'s' if threads > 1 else ''}, LiteRT (XNNPACK) on **{h.label}** "
            f"(host id `{h.id}`" + (f", target **{target}**" if target else "") + ").")


def why_lines(v: VariantRecord, res: Results) -> None:
    """One sentence per speed lever: measured against its sibling on this host, then explained
    (explorer.present.why); a lever whose sibling is not measured here says so."""
    from explorer.present import why

    here = host.current().id
    rows = res.table.set_index("label")

    def sibling_latency(spec: VariantSpec) -> Latency | None:
        label = spec.label()
        if label not in rows.index or not rows.at[label, "measured_here"]:
            return None
        return res.variant(rows.at[label, "key"]).latency

    for reason in why.for_variant(v, sibling_latency, v.latency.threads if v.latency and v.latency.on(here) else 1):
        icon = {True: ":material/check_circle:", False: ":material/block:", None: ":material/help:"}[reason.works]
        st.caption(f"{icon} **{reason.lever}** — {reason.sentence}")


def memory_lines(v: VariantRecord, res: Results) -> None:
    """One sentence per lever: its peak RAM and flash against its sibling's (explorer.present.memory)."""
    from explorer.present import memory, why

    rows = res.table.set_index("label")

    def plan(spec: VariantSpec):
        label = spec.label()
        return res.variant(rows.at[label, "key"]).memory if label in rows.index else None

    sibling_plans = {lever: plan(s) for lever, s in why.siblings(v.spec).items()}
    for reason in memory.reasons(v.spec, v.memory, sibling_plans):
        icon = {True: ":material/check_circle:", False: ":material/block:", None: ":material/help:"}[reason.works]
        st.caption(f"{icon} **{reason.lever}** — {reason.sentence}")


def latency_text(lat: Latency | None, digits: int = 1, here: str | None = None) -> str:
    """p50 with its 95 % interval, and where it was measured when that is not this host (or the host
    `here`: a measurement target's)."""
    if lat is None:
        return "not measured"
    text = f"{lat.p50_us:.{digits}f} µs"
    if lat.p50_ci_us:
        lo, hi = lat.p50_ci_us
        text += f" (95 % CI {lo:.{digits}f}–{hi:.{digits}f})"
    if lat.noisy:
        text += " — noisy"
    if lat.provisional:
        text += " — provisional (a quick first pass; the full protocol follows)"
    if not lat.on(here or host.current().id):
        text += f" — measured on another host ({lat.host_label})"
    return text




def _import_said(made) -> str:
    """What the import did to a model, as markdown (layer names carry underscores, not emphasis)."""
    said = "; ".join(made.notes).replace("_", "\\_").replace("*", "\\*")
    return said + ("" if said.endswith("…") else ".")


def import_notes(made) -> None:
    """Under the Data page's list: what the import did to each model (translated, inlined, set aside)."""
    if made.notes:
        st.caption(f"**{made.name}** — what the import did: {_import_said(made)}")


def import_lines(v: VariantRecord) -> None:
    """For a variant of an imported model: what the import did to its network."""
    if not v.spec.source.imported:
        return
    from explorer.models import imports
    from explorer.spec import SpecError

    try:
        made = imports.find(v.spec.model)
    except SpecError:
        return  # deleted or replaced since: the variant still shows what it measured
    if made.notes:
        st.caption(f":material/input: Built from the imported **{made.name}**. What the import did: {_import_said(made)}")
