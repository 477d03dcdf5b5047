"""The Pareto front of two metrics, one minimized and one maximized (e.g. latency vs accuracy).

Pure numpy, after optuna's 2-D approach: sort by the minimized metric, then a running maximum of the
maximized metric marks the points nothing beats on both.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np

from explorer.uncertainty import Interval


def pareto_mask(minimize: Sequence[float], maximize: Sequence[float]) -> np.ndarray:
    """True where no other point is at least as good on both metrics and strictly better on one.

    NaN values (e.g. a latency not yet measured on this host) are never on the front. Exact
    duplicates of a front point are all kept on the front.
    """
    x = np.asarray(minimize, dtype=np.float64)
    y = np.asarray(maximize, dtype=np.float64)
    if x.shape != y.shape or x.ndim != 1:
        raise ValueError("minimize and maximize must be 1-D sequences of the same length")
    mask = np.zeros(x.shape, dtype=bool)
    valid = np.flatnonzero(np.isfinite(x) & np.isfinite(y))
    if valid.size == 0:
        return mask
    # Deduplicate, sort by x ascending (ties: best y first), and keep each point whose y beats
    # the running maximum of every point before it.
    points, inverse = np.unique(np.column_stack((x[valid], y[valid])), axis=0, return_inverse=True)
    order = np.lexsort((-points[:, 1], points[:, 0]))
    ys = points[order, 1]
    best_before = np.concatenate(([-np.inf], np.maximum.accumulate(ys)[:-1]))
    on_front = np.zeros(len(points), dtype=bool)
    on_front[order] = ys > best_before
    mask[valid] = on_front[inverse.ravel()]
    return mask


def hypervolume(minimize: Sequence[float], maximize: Sequence[float], reference: tuple[float, float]) -> float:
    """The area the points dominate up to the reference point (worst x, worst y): one number for a whole front.

    Points not better than the reference on both metrics add nothing; NaNs are ignored.
    """
    x = np.asarray(minimize, dtype=np.float64)
    y = np.asarray(maximize, dtype=np.float64)
    ref_x, ref_y = reference
    keep = pareto_mask(x, y) & (x < ref_x) & (y > ref_y)
    area, top = 0.0, ref_y
    for xi, yi in sorted(zip(x[keep], y[keep])):  # by x ascending: each point adds its rise above the last
        if yi > top:
            area += (ref_x - xi) * (yi - top)
            top = yi
    return area


def best_under_budget(cost: Sequence[float], score: Sequence[float], budget: float) -> int | None:
    """Index of the highest-scoring point with cost <= budget (cheapest on ties), or None."""
    c = np.asarray(cost, dtype=np.float64)
    s = np.asarray(score, dtype=np.float64)
    ok = np.flatnonzero(np.isfinite(c) & np.isfinite(s) & (c <= budget))
    if ok.size == 0:
        return None
    return int(ok[np.lexsort((c[ok], -s[ok]))[0]])


def default_budget(costs: Sequence[float]) -> float:
    """The budget a view opens with: a round figure (1, 2 or 5 times a power of ten) at or above the median cost
    of the variants on screen, so that at least half of them fit and the figure reads as chosen, not computed.
    NaN when nothing has a cost."""
    c = np.asarray(costs, dtype=np.float64)
    c = c[np.isfinite(c) & (c > 0)]
    if not c.size:
        return float("nan")
    median = float(np.median(c))
    power = 10.0 ** np.floor(np.log10(median))
    return float(next(round(m * power, 12) for m in (1, 2, 5, 10) if m * power >= median * (1 - 1e-12)))


@dataclass(frozen=True)
class Fit:
    """A device's memory budget (KB, as the table's peak_ram_kb and flash_kb): the variants that fit it are those
    whose planned peak RAM and flash are within it and that TensorFlow Lite Micro can run."""

    ram_kb: float | None = None
    flash_kb: float | None = None
    board: str = ""  # the preset it came from ("" for limits typed in)

    @property
    def active(self) -> bool:
        return self.ram_kb is not None or self.flash_kb is not None

    def mask(self, df) -> np.ndarray:
        ok = np.ones(len(df), dtype=bool)
        if not self.active:
            return ok
        if self.ram_kb is not None:
            ok &= df["peak_ram_kb"].to_numpy(float) <= self.ram_kb  # NaN (not planned) never fits
        if self.flash_kb is not None:
            ok &= df["flash_kb"].to_numpy(float) <= self.flash_kb
        return ok & df["micro_blockers"].fillna("").eq("").to_numpy()

    def limits(self) -> str:
        """'64 KB of RAM and 256 KB of flash'."""
        return " and ".join(f"{v:,.0f} KB of {what}" for v, what in ((self.ram_kb, "RAM"), (self.flash_kb, "flash"))
                            if v is not None)

    def phrase(self) -> str:
        """'that fits 64 KB of RAM and 256 KB of flash' (with the board's name when it came from one)."""
        return f"that fits {self.limits()}" + (f" ({self.board})" if self.board else "")


@dataclass(frozen=True)
class BudgetAnswer:
    """The best accuracy under a budget, in one sentence (markdown), and the winner's key (None: nothing fits)."""

    text: str
    winner: str | None


def budget_answer(df, x: str, unit: str, budget: float, y: str = "accuracy",
                  tied: Callable[[str, np.ndarray], list[str]] | None = None, fit: Fit | None = None) -> BudgetAnswer:
    """Answer "the best y (an accuracy) under `budget` of metric x" over a results table (rows: key, label, x, y,
    and y's interval as <y>_lo, <y>_hi when known). tied(winner key, fitting mask) gives the fitting variants
    not significantly less accurate than the winner (explorer.present.significance.tied_with): the answer
    names them instead of pretending one is best. A fit (a device's RAM and flash) leaves out what does not fit it."""
    fit = fit or Fit()
    fitting = fit.mask(df)
    within = f", {fit.phrase()}," if fit.active else ""
    if not fitting.any():
        smallest = df.loc[df["peak_ram_kb"].idxmin()] if df["peak_ram_kb"].notna().any() else None
        return BudgetAnswer(f"No variant shown {fit.phrase()}" + (
            f"; the smallest arena is {smallest['peak_ram_kb']:,.1f} KB ({smallest['label']}, "
            f"{smallest['flash_kb']:,.1f} KB of flash)." if smallest is not None else "."), None)
    cost = np.where(fitting, df[x].to_numpy(float), np.nan)
    i = best_under_budget(cost, df[y].to_numpy(float), budget)
    if i is None:
        return BudgetAnswer(f"Nothing {fit.phrase()} is under {budget:g} {unit}; the cheapest that does needs "
                            f"{np.nanmin(cost):.1f} {unit}." if fit.active else
                            f"Nothing fits under {budget:g} {unit}; the cheapest variant needs "
                            f"{df[x].min():.1f} {unit}.", None)
    name = "accuracy" if y == "accuracy" else y.replace("_", " ")
    w = df.iloc[i]

    def shown(r) -> str:
        if f"{y}_lo" in r and np.isfinite(r[f"{y}_lo"]):
            return Interval(float(r[y]), float(r[f"{y}_lo"]), float(r[f"{y}_hi"]), int(r.get("seeds", 1) or 1)).text()
        return f"{r[y]:.4f}"

    pool = df[fitting]
    cheapest = pool.loc[pool[x].idxmin()]
    best = pool.loc[pool[y].idxmax()]
    fits = (df[x].to_numpy(float) <= budget) & fitting
    ties = tied(str(w["key"]), fits) if tied else []
    text = f"Under {budget:,.1f} {unit}{within} the most accurate is **{w['label']}**: {name} {shown(w)} at {w[x]:,.1f} {unit}"
    if ties:
        rows = df.set_index("key", drop=False).loc[ties].sort_values(x)
        text += (f"; **statistically tied with it**: {', '.join(rows['label'].head(4))}"
                 + (f" and {len(rows) - 4} more" if len(rows) > 4 else "")
                 + f" (no significant difference on these test images; the cheapest, {rows.iloc[0]['label']}, "
                 f"needs {rows.iloc[0][x]:,.1f} {unit})")
    if cheapest["key"] != w["key"]:
        text += (f"; {w[x] / cheapest[x]:.2f}× the cost of the cheapest ({cheapest['label']}) for "
                 f"{(w[y] - cheapest[y]) * 100:+.1f} points" + (", a tie" if cheapest["key"] in ties else ""))
    if best["key"] == w["key"]:
        text += ", and the most accurate shown" + (" that fits." if fit.active else ".")
    else:
        text += (f"; the most accurate{' that fits' if fit.active else ''} ({best['label']}) is {(best[y] - w[y]) * 100:.1f} "
                 f"points better at {best[x] / w[x]:.2f}× the cost.")
    return BudgetAnswer(text, str(w["key"]))
