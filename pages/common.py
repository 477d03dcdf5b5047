"""Streamlit glue shared by the pages: cached reads of the results, host measurement, formatting.

No TensorFlow here: the results pages import only this, the cache and the results table.
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd
import streamlit as st

from explorer import host, results
from explorer.cache import Problem, Store


@dataclass(frozen=True)
class Results:
    table: pd.DataFrame
    metas: dict[str, dict]  # key -> variant metadata
    latencies: dict[str, dict | None]  # key -> this host's latency record
    problems: list[Problem]


def store() -> Store:
    return Store()


@st.cache_data(show_spinner=False, max_entries=8)
def _load(root: str, signature: tuple, host_id: str) -> Results:
    """Read every variant once per change of the cache (signature) — not on every rerun."""
    s = Store(root)
    metas, problems = s.variants()
    lat = {m["key"]: s.read_latency(m["key"], host_id) for m in metas}
    return Results(results.table(metas, lat), {m["key"]: m for m in metas}, lat, problems)


def load_results() -> Results:
    s = store()
    return _load(str(s.root), s.signature(), host.current().id)


def show_problems(res: Results) -> None:
    if res.problems:
        with st.expander(f":material/warning: {len(res.problems)} damaged cache entr{'y' if len(res.problems) == 1 else 'ies'} skipped"):
            for p in res.problems:
                st.write(f"`{p.key}`: {p.reason}. Build it again from the Explore page to replace it.")


def measure_missing(res: Results) -> bool:
    """Time, on this host, every variant that has no latency from it yet; True if anything was measured.

    Latency belongs to a machine: figures shipped from another host are never shown as this one's.
    """
    from explorer import pipeline  # LiteRT only, no TensorFlow

    missing = [k for k, v in res.latencies.items() if v is None]
    if not missing:
        return False
    st.info(f"{len(missing)} of {len(res.latencies)} variants have no latency measured on this host "
            f"({host.current().label}). Measuring them now — this takes about a second each, no training.")
    bar = st.progress(0.0)
    s = store()
    try:
        for i, key in enumerate(missing):
            bar.progress(i / len(missing), text=f"Measuring {res.metas[key]['label']} ({i + 1}/{len(missing)})")
            pipeline.measure_latency(s, key, res.metas[key])
    except OSError as exc:  # e.g. a full or read-only disk: say so, show what we have
        st.error(f"Could not save the measurements ({exc.strerror or exc}); showing the variants measured so far.")
        return False
    bar.progress(1.0, text="Done")
    return True


def host_caption() -> str:
    h = host.current()
    return f"Latencies: batch 1, 1 thread, LiteRT (XNNPACK) on **{h.label}** (host id `{h.id}`)."


def ratio(a: float, b: float) -> str:
    return f"{a / b:.2f}×" if b else "—"
