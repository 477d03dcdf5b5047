"""Results that scale with search (issue #14): server time per Pareto view at 56 and at 10,000 variants.

The entries are synthetic, as a long search would leave them: the shipped variants' records copied under
new keys with jittered accuracy and p50 (and learning rate, so that each is a variant of its own), each with a small model file and this host's latency record
(2,000 samples, like a real one). A view is one run of the Pareto page script in Streamlit's AppTest
(what every visit and every click costs the server: the results index's freshness check, the table,
the front, the chart), timed in CPU seconds of the process, median of VIEWS reruns. Also timed: a new
session's first view, with AppTest's own cost beside it (a trivial page: a server pays that once, at
start); a view after one new entry (the index re-reads that entry only); building the index from
scratch; and the old way of reading the results (every meta.json checksummed and every latency JSON
parsed, redone whenever anything changed — during a search, after every trial).
No target here: what a view costs the server, from a real browser, is benchmarks/server_views.py.

    $ .venv/bin/python -m benchmarks results_scale
"""

from __future__ import annotations

import hashlib
import json
import shutil
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np

from benchmarks.report import Row, row
from benchmarks.worker import environment
from explorer.measure import host
from explorer.store.paths import REPO_ROOT

SIZES = (56, 10_000)
VIEWS = 5


def fill(root: Path, n: int, rng: np.random.Generator, start: int = 0, source: Path = REPO_ROOT / "cached_models") -> None:
    """n synthetic entries under root/variants, made from the ones in source that this host measured (see the
    module docstring)."""
    here = host.current().id
    shipped = sorted((source / "variants").glob(f"*/latency/{here}.json"))
    bases = [(json.loads((p.parent.parent / "meta.json").read_text()), json.loads(p.read_text())) for p in shipped]
    for i in range(start, start + n):
        meta, lat = bases[i % len(bases)]
        key = f"{i:016x}"
        folder = root / "variants" / key
        (folder / "latency").mkdir(parents=True)
        model = rng.bytes(1024)
        (folder / "model.tflite").write_bytes(model)
        m = {**meta["metrics"], "accuracy": float(np.clip(meta["metrics"]["accuracy"] + rng.normal(0, 0.01), 0, 1))}
        # a distinct variant each (a search's trials differ in their hyperparameters), not seed replicates of 59
        spec = {**meta["spec"], "learning_rate": meta["spec"]["learning_rate"] * (1 + 1e-6 * (i + 1))}
        files = {"model.tflite": {"sha256": hashlib.sha256(model).hexdigest(), "bytes": len(model)}}
        (folder / "meta.json").write_text(json.dumps({**meta, "key": key, "spec": spec, "metrics": m, "files": files}))
        scale = float(rng.uniform(0.8, 1.25))
        figures = {k: lat[k] * scale for k in ("p50_us", "p90_us", "p99_us", "mean_us", "min_us")}
        (folder / "latency" / f"{here}.json").write_text(json.dumps({**lat, **figures}))


def _cpu(run) -> tuple[float, float]:
    cpu, wall = time.process_time(), time.perf_counter()
    run()
    return time.process_time() - cpu, time.perf_counter() - wall


def _views(n: int) -> tuple[list[tuple[float, float]], float, float, object]:
    """VIEWS reruns of the Pareto page in one session, after its first view: (CPU, wall) each; and the
    CPU seconds of a first view in a new session, and of a trivial page's (AppTest's own cost, which a
    server pays once at start, not per session); and the session, for one more view."""
    from streamlit.testing.v1 import AppTest

    def checked(at):
        if at.exception:
            raise RuntimeError(f"the Pareto page failed: {at.exception[0].message}")
        return at

    trivial = AppTest.from_string("import streamlit as st\nst.write('x')")
    harness, _ = _cpu(trivial.run)
    at = AppTest.from_file(str(REPO_ROOT / "app.py"), default_timeout=300)
    first, _ = _cpu(lambda: checked(at.run()))
    return [_cpu(lambda: checked(at.run())) for _ in range(VIEWS)], first, harness, at


def _old_read(root: Path) -> float:
    """CPU seconds of reading the results the way the pages did before the index."""
    from explorer import record
    from explorer.present import results
    from explorer.store.cache import Store

    cpu = time.process_time()
    found, _ = record.load_all(Store(root), host.current().id)
    results.table(found, host.current().id)
    return time.process_time() - cpu


def _measure(n: int, folder: Path, rng: np.random.Generator) -> Row:
    """The figures at n variants, in a cache and user-data folder of their own (the environment points there)."""
    import streamlit as st

    from explorer.store.cache import Store
    from explorer.store.index import ResultsIndex

    fill(folder / "cache", n, rng)
    st.cache_data.clear()
    st.cache_resource.clear()
    build, _ = _cpu(lambda: ResultsIndex(Store(folder / "cache")).refresh())
    _views(n)  # the index is built, the imports are warm
    views, first, harness, at = _views(n)
    fill(folder / "cache", 1, rng, start=n)  # a search trial lands: the session's next view
    after_new, _ = _cpu(at.run)
    old = _old_read(folder / "cache")
    cpu = statistics.median(c for c, _ in views)
    wall = statistics.median(w for _, w in views)
    return row(f"pareto_view_cpu_s_at_{n}", cpu, "s",
               note=f"median of {VIEWS} views (wall {wall:.3f} s); a new session's first view "
                    f"{first:.3f} s, of which AppTest's own {harness:.3f} s; after one new entry: "
                    f"{after_new:.3f} s; building the index from scratch {build:.2f} s; the old way "
                    f"of reading the results, redone on every change: {old:.2f} s",
               detail={"variants": n, "cpu_s": round(cpu, 4), "wall_s": round(wall, 4),
                       "new_session_cpu_s": round(first, 4), "apptest_harness_cpu_s": round(harness, 4),
                       "after_new_entry_cpu_s": round(after_new, 4), "index_build_cpu_s": round(build, 3),
                       "old_read_cpu_s": round(old, 3)})


def run() -> list[Row]:
    rows, rng = [], np.random.default_rng(0)
    for n in SIZES:
        folder = Path(tempfile.mkdtemp(prefix=f"explorer-scale-{n}-"))
        try:
            with environment(EXPLORER_CACHE_DIR=str(folder / "cache"), EXPLORER_DATA_DIR=str(folder / "user_data")):
                rows.append(_measure(n, folder, rng))
        finally:
            shutil.rmtree(folder, ignore_errors=True)
    rows.append(row("results_scale", rows[-1].value, "s",
                    note=f"the Pareto page's script alone, in AppTest, at {SIZES[-1]:,} variants; at {SIZES[0]}: "
                         f"{rows[0].value:.3f} s. Not what a view costs the server (static files, the session, "
                         "the websocket, polling): that is server_per_view, measured from a real browser",
                    detail={str(r.detail["variants"]): r.detail for r in rows}))
    return rows
