"""Latency belongs to a machine: ask the worker to time variants on this host, and say how far it is."""

from __future__ import annotations

import time

import streamlit as st

from explorer.run.executors import JobRequest
from explorer.run.queue import QueueError
from pages.ui.jobs import executor, requester
from pages.ui.loading import Results, results_version


def request_measurements(res: Results, keys: list[str] | None = None, force: bool = False,
                         background: bool = False, target: str | None = None, quick: bool = False) -> int:
    """Ask the worker to time variants on this host (default: those not measured here yet); returns how many.

    Latency belongs to a machine: until this host has measured a variant, the pages show the figure
    measured elsewhere, labelled with its host. quick: a provisional first pass (the full protocol later).
    """
    keys = res.unmeasured_here if keys is None else keys
    labels = res.labels
    try:
        ex = executor()
        requests = [JobRequest.measure(k, labels[k], ex.store, force, res.threads, target, quick) for k in keys]
        ex.submit_many(requests, requester(), background=background)
    except (OSError, QueueError) as exc:  # e.g. a full or read-only disk: say so, show what we have
        st.error(f"Could not queue the measurements ({getattr(exc, 'strerror', None) or exc}); "
                 "showing the figures we have.")
        return 0
    return len(requests)


BUSY_POLL_S, QUIET_POLL_S = 1.5, 10.0
REDRAW_WHILE_MEASURING_S = 5.0  # a new host lands a result every ~0.8 s; a redraw per landing cost ~0.35 CPU-s


def measuring_status(res: Results, auto: bool = True) -> None:
    """On a host that has not measured everything: once the page is drawn, ask the worker to time the
    rest in the background (starting it sooner would compete with the browser's first paint on a small
    machine), by a quick first pass, then by the full protocol; then say how far it is, and redraw the page
    as results land (a build of another session included). It polls every 1.5 s while there is something to measure, else every 10 s; each poll is
    two cheap reads (the results' version, the queue's count) and draws nothing new unless they changed.
    While the worker is still measuring, the page is redrawn at most every 5 s (results landing at once
    are drawn together); the last ones are drawn as soon as they land."""
    try:
        busy = (auto and bool(res.unmeasured_here or res.provisional_here)
                or executor().queue.count_live("measure") > 0)
    except QueueError:
        busy = False
    st.fragment(_status, run_every=BUSY_POLL_S if busy else QUIET_POLL_S)(res, auto)


def _status(res: Results, auto: bool) -> None:
    opened = st.session_state.setdefault("opened_at", time.monotonic())
    flag, refine = f"measure_requested:{res.threads}", f"refine_requested:{res.threads}"
    if auto and res.unmeasured_here and not st.session_state.get(flag):
        if time.monotonic() - opened < 1.0:
            st.caption(f":material/timer: {len(res.unmeasured_here)} variants have no latency from this host yet: "
                       "they are drawn hollow, with another host's figures, and will be measured in the background.")
            return
        # a quick first pass fills every point within seconds; the full protocol then refines them
        st.session_state[flag] = request_measurements(res, background=True, quick=True) > 0
    elif auto and res.provisional_here and not res.unmeasured_here and not st.session_state.get(refine):
        st.session_state[refine] = request_measurements(res, res.provisional_here, background=True) > 0
    try:
        pending = executor().queue.count_live("measure")
    except QueueError:
        return
    since = time.monotonic() - st.session_state.get("results_checked_at", 0.0)  # this page's last read
    if since >= 1.0 and (not pending or since >= REDRAW_WHILE_MEASURING_S) and results_version() != res.version:
        st.rerun()
    if pending:
        where = "this host" if auto else "the target"
        first = len(res.provisional_here)
        st.caption(f":material/timer: Measuring on {where} in the background: {pending} to go. "
                   + (f"{first} figures here are provisional (a quick first pass of 3 short blocks); the full "
                      "protocol replaces them." if first else f"Points move to {where}'s figures as they land."))


