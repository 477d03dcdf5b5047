"""The Pareto page's computed view, made once per (results version, view) and shared by every session.

A view's work (grouping seeds, the front with its paired tests, the budget's answer, the plotly figure
with its per-trace validation) depends only on the results and the view's settings, so a second visitor,
a reload or a rerun that changes nothing costs the server a dictionary lookup, not the work. Results
read without the index (version None) are computed afresh every time.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import streamlit as st

from explorer.present import figures, pareto, results, significance
from pages.ui.loading import Results


@dataclass(frozen=True)
class Table:
    """The variants a view shows: filtered, seed replicates grouped, those without the axis's figure left out."""

    df: pd.DataFrame
    unplaced: int  # variants never measured on any host (no point yet)


@dataclass(frozen=True)
class Screen:
    """Everything the page draws from a table, an axis pair and a budget (never mutated once made)."""

    status: np.ndarray  # per row: significance.FRONT / TIED / DOMINATED
    answer: pareto.BudgetAnswer
    figure: object  # plotly.graph_objects.Figure
    acc_format: str  # accuracy printed at the precision its widest interval supports


def _table(res: Results, dataset: str, depths: tuple, quants: tuple, x: str) -> Table:
    df = res.table
    df = df[(df["dataset"] == dataset) & df["depth"].isin(depths) & df["quant"].isin(quants)].reset_index(drop=True)
    df = results.group_seeds(df)  # replicates of one variant (other seeds) are one point
    unplaced = int(df[x].isna().sum())
    return Table(df.dropna(subset=[x]).reset_index(drop=True), unplaced)


def _screen(res: Results, table: Table, dataset: str, x: str, y: str, log_x: bool, budget: float,
            host_label: str, fit: pareto.Fit) -> Screen:
    df, evidence = table.df, res.evidence(dataset)
    status = significance.front_status(df, x, y, evidence)
    answer = pareto.budget_answer(df, x, results.METRICS[x].unit, budget, y,
                                  tied=lambda w, fits: significance.tied_with(df, w, fits, evidence, y), fit=fit)
    fig = figures.pareto(df, status == significance.FRONT, x, y, log_x=log_x, highlight=answer.winner,
                         host_label=host_label, tied=status == significance.TIED,
                         fits=fit.mask(df) if fit.active else None, fit_name=fit.board or "the limits")
    decimals = min(results.interval(r, q).decimals for r in df.to_dict("records") for q in results.Y_AXES)
    return Screen(status, answer, fig, f"%.{decimals}f")


@st.cache_resource(show_spinner=False, max_entries=64)
def _cached_table(version: int, host_id: str, threads: int, dataset: str, depths: tuple, quants: tuple, x: str,
                  _res: Results) -> Table:
    return _table(_res, dataset, depths, quants, x)


@st.cache_resource(show_spinner=False, max_entries=64)
def _cached_screen(version: int, host_id: str, threads: int, dataset: str, depths: tuple, quants: tuple, x: str,
                   y: str, log_x: bool, budget: float, host_label: str, fit: pareto.Fit, _res: Results,
                   _table: Table) -> Screen:
    return _screen(_res, _table, dataset, x, y, log_x, budget, host_label, fit)


def table(res: Results, host_id: str, dataset: str, depths: list, quants: list, x: str) -> Table:
    key = (host_id, res.threads, dataset, tuple(depths), tuple(quants), x)
    return _table(res, *key[2:]) if res.version is None else _cached_table(res.version, *key, _res=res)


def screen(res: Results, host_id: str, t: Table, dataset: str, depths: list, quants: list, x: str, y: str,
           log_x: bool, budget: float, host_label: str, fit: pareto.Fit | None = None) -> Screen:
    fit = fit or pareto.Fit()
    if res.version is None:
        return _screen(res, t, dataset, x, y, log_x, budget, host_label, fit)
    return _cached_screen(res.version, host_id, res.threads, dataset, tuple(depths), tuple(quants), x, y, log_x,
                          float(budget), host_label, fit, _res=res, _table=t)


@st.cache_resource(show_spinner=False)
def placeholder():
    """The empty chart the page shows while it reads the results (made once)."""
    return figures.placeholder()
