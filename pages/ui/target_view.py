"""Which machine's latencies a page shows: this one, or a measurement target's (explorer.measure.targets)."""

from __future__ import annotations

import streamlit as st


def target_picker():
    """The measurement target whose latencies the page shows (explorer.measure.targets), picked in the
    sidebar when any besides this machine has been added and reached; None for this machine."""
    from explorer.measure import targets

    try:
        known = {n: t for n, t in targets.load().items() if n != targets.LOCAL and t.facts}
    except targets.TargetError as exc:
        st.sidebar.error(str(exc))
        return None
    if not known:
        return None
    options = ["this machine", *known]
    chosen = st.session_state.get("target_chosen")
    st.session_state["target"] = chosen if chosen in options else options[0]  # a widget's state ends with its page

    def keep() -> None:
        st.session_state["target_chosen"] = st.session_state["target"]

    name = st.sidebar.selectbox("latency measured on", options, key="target", on_change=keep,
                                help="A measurement target added with 'python -m explorer targets add': its own "
                                     "records, measured by its agent on its CPU")
    return known.get(name)
