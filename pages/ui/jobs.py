"""The worker's executor, this session's name in its queue, and what it is doing (the sidebar)."""

from __future__ import annotations

import uuid

import streamlit as st

from explorer.settings import settings
from explorer.run.executors import LocalExecutor
from explorer.run.queue import Queue, QueueError
from pages.ui.loading import store


def max_epochs() -> int:
    """The resource bound on training started from the app (EXPLORER_MAX_EPOCHS, default 30)."""
    return settings().max_epochs


@st.cache_resource
def executor() -> LocalExecutor:
    """Builds and measurements run in the worker process, never in the web server."""
    return LocalExecutor(store(), Queue(), max_epochs=max_epochs())


def requester() -> str:
    """This browser session's name in the job queue: Cancel withdraws only its own requests."""
    if "requester" not in st.session_state:
        st.session_state["requester"] = f"session:{uuid.uuid4().hex[:12]}"
    return st.session_state["requester"]


def jobs_sidebar() -> None:
    """What the worker is doing, on every page (a cheap read of the queue)."""
    try:
        q = executor().queue
        q.reap()
        live = q.jobs(("queued", "running"))
    except QueueError as exc:
        st.sidebar.warning(f"Worker status unavailable: {exc}")
        return
    if not live:
        return
    with st.sidebar.expander(f":material/engineering: Worker: {len(live)} job{'s' if len(live) > 1 else ''}"):
        for j in live[:8]:
            st.caption(f"{j.kind} **{j.label}** — {j.state}, {j.fraction:.0%}: {j.message}")
        if len(live) > 8:
            st.caption(f"… and {len(live) - 8} more (`python -m explorer jobs`)")
