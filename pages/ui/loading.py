"""The results a page shows: read from the results index once per version of it, not on every rerun."""

from __future__ import annotations

import sqlite3
import time
from dataclasses import dataclass

import pandas as pd
import streamlit as st

from explorer import record
from explorer.measure import host
from explorer.present import results
from explorer.record import Problem, VariantRecord
from explorer.present.significance import Evidence
from explorer.store.cache import Store
from explorer.store.index import ResultsIndex


@dataclass(frozen=True)
class Results:
    table: pd.DataFrame  # one row per variant, with this host's latency, else another host's
    problems: list[Problem]
    threads: int = 1  # the latencies' interpreter threads
    version: int | None = None  # the results index's version these were read at (None: read without it)
    host_id: str = ""  # whose latencies "measured here" means: this machine's, or a measurement target's

    @property
    def unmeasured_here(self) -> list[str]:
        """Variants with no latency from this host yet (they show another host's, or none); evidence (seed
        replicates without a model) is never measured: its seed point's latency is its first seed's."""
        t = self.table
        return list(t.loc[~t["measured_here"].astype(bool) & t["has_model"].fillna(True).astype(bool), "key"])

    @property
    def provisional_here(self) -> list[str]:
        """Variants this host has timed by the quick first pass only (the full protocol refines them)."""
        return list(self.table.loc[results.provisional_here(self.table), "key"])

    @property
    def labels(self) -> dict[str, str]:
        return dict(zip(self.table["key"], self.table["label"]))

    def variant(self, key: str) -> VariantRecord:
        """The whole record of one variant (read on demand: a view needs only the table)."""
        return _variant(str(store().root), key, self.version, self.host_id or host.current().id, self.threads)

    def evidence(self, dataset: str) -> Evidence:
        """A dataset's test labels and its variants' stored test predictions, for paired tests (read once
        per version of the results)."""
        keys = tuple(self.table.loc[self.table["dataset"] == dataset, "key"])
        return _evidence(str(store().root), self.version, dataset, keys)


def store() -> Store:
    return Store()


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
        return Results(results.table(found, host_id), problems, threads, version, host_id)
    found, problems = ResultsIndex(Store(root)).rows(host_id, threads)
    return Results(results.table_of([results.row_of(v, lat, host_id) for v, lat in found]), problems, threads,
                   version, host_id)


@st.cache_data(show_spinner=False, max_entries=8)
def _load(root: str, version: int, host_id: str, threads: int) -> Results:
    """The table from the results index, once per version of it — not on every rerun."""
    return _results(root, host_id, threads, version)


@st.cache_resource(show_spinner=False, max_entries=256)
def _variant(root: str, key: str, version: int | None, host_id: str, threads: int) -> VariantRecord:
    return record.load(Store(root), key, host_id, threads)


@st.cache_data(show_spinner=False, max_entries=8)
def _evidence(root: str, version: int | None, dataset: str, keys: tuple[str, ...]) -> Evidence:
    return Evidence.read(Store(root), dataset, keys)


def load_results(threads: int = 1, host_id: str | None = None) -> Results:
    """Every variant, with latencies at `threads` interpreter threads (1: the default view), as measured on
    this host (or on the host of a measurement target: host_id), else another host's."""
    root, here, version = str(store().root), host_id or host.current().id, results_version()
    st.session_state["results_checked_at"] = time.monotonic()
    return _load(root, version, here, threads) if version is not None else _results(root, here, threads, None)


def show_problems(res: Results) -> None:
    if res.problems:
        with st.expander(f":material/warning: {len(res.problems)} damaged cache entr{'y' if len(res.problems) == 1 else 'ies'} skipped"):
            for p in res.problems:
                st.write(f"`{p.key}`: {p.reason}. Build it again from the Explore page to replace it.")


