"""Streamlit glue shared by the pages: cached reads of the results, the worker's executor, formatting.

No TensorFlow here: the results pages import only this, the cache and the results table.
"""

from __future__ import annotations

import dataclasses
import os
import sqlite3
import time
import uuid
from dataclasses import dataclass

import pandas as pd
import streamlit as st

from explorer.measure import host
from explorer.present import links, results
from explorer import record
from explorer.store.cache import Problem, Store
from explorer.store.index import ResultsIndex
from explorer.run.executors import JobRequest, LocalExecutor
from explorer.run.queue import Queue, QueueError
from explorer.record import Latency, VariantRecord
from explorer.spec import BOUNDS, CLUSTERS_RANGE, IMAGE_SIZE_RANGE, VariantSpec


def max_epochs() -> int:
    """The resource bound on training started from the app (EXPLORER_MAX_EPOCHS, default 30)."""
    return int(os.environ.get("EXPLORER_MAX_EPOCHS", "30"))


@dataclass(frozen=True)
class Results:
    table: pd.DataFrame  # one row per variant, with this host's latency, else another host's
    problems: list[Problem]
    threads: int = 1  # the latencies' interpreter threads
    version: int | None = None  # the results index's version these were read at (None: read without it)

    @property
    def unmeasured_here(self) -> list[str]:
        """Variants with no latency from this host yet (they show another host's, or none)."""
        return list(self.table.loc[~self.table["measured_here"].astype(bool), "key"])

    @property
    def labels(self) -> dict[str, str]:
        return dict(zip(self.table["key"], self.table["label"]))

    def variant(self, key: str) -> VariantRecord:
        """The whole record of one variant (read on demand: a view needs only the table)."""
        return _variant(str(store().root), key, self.version, host.current().id, self.threads)


def store() -> Store:
    return Store()


@st.cache_resource
def executor() -> LocalExecutor:
    """Builds and measurements run in the worker process, never in the web server."""
    return LocalExecutor(store(), Queue(), max_epochs=max_epochs())


def requester() -> str:
    """This browser session's name in the job queue: Cancel withdraws only its own requests."""
    if "requester" not in st.session_state:
        st.session_state["requester"] = f"session:{uuid.uuid4().hex[:12]}"
    return st.session_state["requester"]


def results_version() -> int | None:
    """The results index's version, brought up to date with the cache (changes when any entry does);
    None when the index cannot be used (e.g. a full disk): the pages then read the entries themselves."""
    try:
        return ResultsIndex(store()).refresh()
    except (sqlite3.Error, OSError):
        return None


def _results(root: str, host_id: str, threads: int, version: int | None) -> Results:
    if version is None:
        found, problems = record.load_all(Store(root), host_id, threads=threads)
        return Results(results.table(found, host_id), problems, threads, version)
    found, problems = ResultsIndex(Store(root)).rows(host_id, threads)
    return Results(results.table_of([results.row_of(v, lat, host_id) for v, lat in found]), problems, threads,
                   version)


@st.cache_data(show_spinner=False, max_entries=8)
def _load(root: str, version: int, host_id: str, threads: int) -> Results:
    """The table from the results index, once per version of it — not on every rerun."""
    return _results(root, host_id, threads, version)


@st.cache_resource(show_spinner=False, max_entries=256)
def _variant(root: str, key: str, version: int | None, host_id: str, threads: int) -> VariantRecord:
    return record.load(Store(root), key, host_id, threads)


def load_results(threads: int = 1) -> Results:
    """Every variant, with latencies at `threads` interpreter threads (1: the default view)."""
    root, here, version = str(store().root), host.current().id, results_version()
    st.session_state["results_checked_at"] = time.monotonic()
    return _load(root, version, here, threads) if version is not None else _results(root, here, threads, None)


def show_problems(res: Results) -> None:
    if res.problems:
        with st.expander(f":material/warning: {len(res.problems)} damaged cache entr{'y' if len(res.problems) == 1 else 'ies'} skipped"):
            for p in res.problems:
                st.write(f"`{p.key}`: {p.reason}. Build it again from the Explore page to replace it.")


def request_measurements(res: Results, keys: list[str] | None = None, force: bool = False,
                         background: bool = False) -> int:
    """Ask the worker to time variants on this host (default: those not measured here yet); returns how many.

    Latency belongs to a machine: until this host has measured a variant, the pages show the figure
    measured elsewhere, labelled with its host.
    """
    keys = res.unmeasured_here if keys is None else keys
    labels = res.labels
    try:
        ex = executor()
        requests = [JobRequest.measure(k, labels[k], ex.store, force, res.threads) for k in keys]
        ex.submit_many(requests, requester(), background=background)
    except (OSError, QueueError) as exc:  # e.g. a full or read-only disk: say so, show what we have
        st.error(f"Could not queue the measurements ({getattr(exc, 'strerror', None) or exc}); "
                 "showing the figures we have.")
        return 0
    return len(requests)


@st.fragment(run_every=1.5)
def measuring_status(res: Results) -> None:
    """On a host that has not measured everything: once the page is drawn, ask the worker to time the
    rest in the background (starting it sooner would compete with the browser's first paint on a small
    machine); then say how far it is, and redraw the page as results land."""
    opened = st.session_state.setdefault("opened_at", time.monotonic())
    flag = f"measure_requested:{res.threads}"
    if res.unmeasured_here and not st.session_state.get(flag):
        if time.monotonic() - opened < 1.0:
            st.caption(f":material/timer: {len(res.unmeasured_here)} variants have no latency from this host yet: "
                       "they are drawn hollow, with another host's figures, and will be measured in the background.")
            return
        st.session_state[flag] = request_measurements(res, background=True) > 0
    try:
        pending = executor().queue.count_live("measure")
    except QueueError:
        return
    fresh = time.monotonic() - st.session_state.get("results_checked_at", 0.0) < 1.0  # this run read them
    if not fresh and results_version() != res.version:
        st.rerun()
    if pending:
        st.caption(f":material/timer: Measuring on this host in the background: {pending} to go. "
                   "Points move to this host's figures as they land.")


def host_caption(threads: int = 1) -> str:
    h = host.current()
    return (f"Latencies: batch 1, {threads} thread{'s' if threads > 1 else ''}, LiteRT (XNNPACK) on **{h.label}** "
            f"(host id `{h.id}`).")


def why_lines(v: VariantRecord) -> None:
    """One sentence per speed lever: can it work on this host (computed by explorer.present.why)?"""
    from explorer.present import why

    for reason in why.for_variant(v, v.latency.threads if v.latency else 1):
        icon = ":material/check_circle:" if reason.works else ":material/block:"
        st.caption(f"{icon} **{reason.lever}** — {reason.sentence}")


def latency_text(lat: Latency | None, digits: int = 1) -> str:
    """p50 with its 95 % interval, and where it was measured when that is not this host."""
    if lat is None:
        return "not measured"
    text = f"{lat.p50_us:.{digits}f} µs"
    if lat.p50_ci_us:
        lo, hi = lat.p50_ci_us
        text += f" (95 % CI {lo:.{digits}f}–{hi:.{digits}f})"
    if lat.noisy:
        text += " — noisy"
    if not lat.on(host.current().id):
        text += f" — measured on another host ({lat.host_label})"
    return text


def _within(name: str, positions: list) -> list:
    """The positions inside the field's declared range (0 is 'off' for clusters, 'own size' for image_size)."""
    lo, hi = {"clusters": CLUSTERS_RANGE, "image_size": IMAGE_SIZE_RANGE}.get(name) or BOUNDS[name]
    return [p for p in positions if lo <= p <= hi or (name in ("clusters", "image_size") and p == 0)]


# The positions of the Explore knobs that are not free sliders (kept within the spec's declared bounds).
KNOB_POSITIONS = {name: _within(name, positions) for name, positions in {
    "width": [8, 16, 32, 64], "dense": [32, 64, 128, 256, 512], "clusters": [0, 8, 16, 32, 64],
    "learning_rate": [1e-4, 3e-4, 1e-3, 3e-3, 1e-2], "batch_size": [32, 64, 128, 256],
    "min_steps": [0, 500, 1500, 3000, 6000], "image_size": [0, 16, 28, 32, 64, 96, 128, 160, 224]}.items()}
TUNE_EPOCHS_MAX = 10


def set_knobs(spec: VariantSpec) -> list[str]:
    """Set the Explore knobs to a spec (before they are drawn); returns what could not be set, and why."""
    problems = []
    limits = {"epochs": max_epochs(), "tune_epochs": TUNE_EPOCHS_MAX}
    for name, value in dataclasses.asdict(spec).items():  # every field, neutral ones too
        positions = KNOB_POSITIONS.get(name)
        if positions is not None and value not in positions:
            problems.append(f"{name} {value:g} is not one of the knob's positions ({', '.join(f'{p:g}' for p in positions)})")
        elif name in limits and value > limits[name]:
            problems.append(f"{name} {value} is over this app's limit of {limits[name]}")
        else:
            st.session_state[f"k_{name}"] = value
    return problems


def incoming_link(page: str) -> dict[str, str]:
    """The query parameters when they are a link being opened (or edited), {} when they are what this
    page itself wrote last (then the widgets, not the address, hold the view)."""
    params = st.query_params.to_dict()
    return params if params and params != st.session_state.get(f"{page}_written") else {}


def write_link(page: str, params: dict[str, str], note: str) -> None:
    """Put the view in the address bar, and offer it as a link to copy."""
    st.query_params.from_dict(params)
    st.session_state[f"{page}_written"] = params
    with st.sidebar.popover("Share this view", icon=":material/link:"):
        st.caption(note)
        st.code(links.url(st.context.url, params), language=None)


def show_link_problems(problems: list[str]) -> None:
    for problem in problems:
        st.warning(f"Link: {problem}.")


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
