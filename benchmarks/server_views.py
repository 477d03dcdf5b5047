"""What a browser's visit costs the server (issue #23): the served app's own CPU time over real page views.

The app is served as `make run` serves it (scripts/serve.py, its own process) on a copy of the shipped
cache, and on 10,000 synthetic variants (benchmarks.results_scale's), each with this host's latency
records so that nothing is queued for measuring meanwhile. Headless Chromium opens the Pareto page:
a *first* view is a new browser context (nothing cached in the browser), a *repeat* view reloads the
page in the same context. A view's cost is the server process's CPU seconds (user + system, through
psutil; 10 ms ticks on Linux) from the request until the chart is drawn and the server has been idle
for a second; it is taken over VIEWS views of each kind. Also measured: the other pages, 10 sessions
opening the page at once (`concurrent_views`: the server's CPU, and the wall time until every chart is
drawn, which the browser on the same 2 cores slows), an open tab's idle cost per minute (polling), and
the server's memory over 500 reruns of one session (websocket messages as a browser sends them).

    $ .venv/bin/python -m benchmarks server_per_view
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import numpy as np

from benchmarks.report import Row, row
from explorer import process
from explorer.measure import host
from explorer.store.paths import REPO_ROOT

VIEWS = 10
CHART_DRAWN = """() => [...document.querySelectorAll('.js-plotly-plot')].some(p => (p.data || []).some(
    t => (t.x || []).length > 0))"""
PAGES = {"explore": "button:has-text('Load'), button:has-text('Train and measure')",
         "compare": "[data-testid='stMain'] h1", "details": "[data-testid='stMain'] h1",
         "data": "[data-testid='stMain'] h1", "search": "[data-testid='stMain'] h1"}


def shipped_as_measured_here(target: Path) -> None:
    """The shipped cache copied to target, each variant's first latency record also filed under this host."""
    shutil.copytree(REPO_ROOT / "cached_models", target)
    here = host.current().id
    for folder in (target / "variants").iterdir():
        records = sorted((folder / "latency").glob("*.json")) if (folder / "latency").is_dir() else []
        by_threads: dict[str, Path] = {}
        for r in records:
            by_threads.setdefault(r.stem.split("-", 1)[1] if "-" in r.stem else "", r)
        for suffix, r in by_threads.items():
            mine = folder / "latency" / (here + (f"-{suffix}" if suffix else "") + ".json")
            if not mine.exists():
                mine.write_text(json.dumps({**json.loads(r.read_text()), "host": host.current().to_dict()}))


def rss_mb(pid: int) -> float:
    return process.resident_bytes(pid) / 2**20


class Server:
    """scripts/serve.py (plain: `streamlit run app.py`) on a free port, with the cache and user data given; its
    pid for its CPU time."""

    def __init__(self, cache: Path, data: Path, *extra: str, address: str = "127.0.0.1", env: dict | None = None,
                 log: Path | None = None, plain: bool = False):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        env = {**os.environ, "EXPLORER_CACHE_DIR": str(cache), "EXPLORER_DATA_DIR": str(data), **(env or {})}
        out = open(log, "wb") if log else subprocess.DEVNULL  # noqa: SIM115 -- the server's lifetime
        command = ["-m", "streamlit", "run", "app.py"] if plain else [str(REPO_ROOT / "scripts" / "serve.py")]
        self.proc = subprocess.Popen([sys.executable, *command, "--server.port", str(self.port),
                                      "--server.address", address, *extra],
                                     cwd=REPO_ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)
        self.url = f"http://127.0.0.1:{self.port}"
        deadline = time.time() + 90
        while time.time() < deadline:
            try:
                if urllib.request.urlopen(f"{self.url}/_stcore/health", timeout=2).read() == b"ok":
                    return
            except OSError:
                time.sleep(0.3)
        raise RuntimeError("the server did not start")

    def cpu(self) -> float:
        return process.cpu_seconds(self.proc.pid)

    def settle(self, quiet: float = 1.0, limit: float = 20.0) -> None:
        """Wait until the server has used no CPU for `quiet` seconds (its script runs are over)."""
        last, since, end = self.cpu(), time.monotonic(), time.monotonic() + limit
        while time.monotonic() < end:
            time.sleep(0.2)
            now = self.cpu()
            if now != last:
                last, since = now, time.monotonic()
            elif time.monotonic() - since >= quiet:
                return

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(timeout=30)


def rerun_over_websocket(server: Server, reruns: int, query: str = "") -> list[float]:
    """One session, as a browser's websocket speaks to the server: `reruns` full runs of the page, one after
    the other (each waits for the server's "script finished"); returns the server's RSS (MB) after each."""
    from streamlit.proto.BackMsg_pb2 import BackMsg
    from streamlit.proto.ForwardMsg_pb2 import ForwardMsg
    from websockets.sync.client import connect

    done = {ForwardMsg.FINISHED_SUCCESSFULLY, ForwardMsg.FINISHED_WITH_COMPILE_ERROR}
    rss = []
    with connect(f"ws://127.0.0.1:{server.port}/_stcore/stream", max_size=None) as ws:
        for _ in range(reruns):
            msg = BackMsg()
            msg.rerun_script.query_string = query
            ws.send(msg.SerializeToString())
            while True:
                forward = ForwardMsg()
                forward.ParseFromString(ws.recv(timeout=120))
                if forward.WhichOneof("type") == "script_finished" and forward.script_finished in done:
                    break
            rss.append(rss_mb(server.proc.pid))
    return rss


def _view(server: Server, page, path: str = "", ready: str | None = None, reload: bool = False) -> float:
    """The server's CPU seconds for one view: from the request until the page is drawn and the server idle."""
    server.settle()
    before = server.cpu()
    if reload:
        page.reload()
    else:
        page.goto(f"{server.url}/{path}")
    if ready:
        page.wait_for_selector(ready, timeout=120_000)
    else:
        page.wait_for_function(CHART_DRAWN, timeout=120_000)
    server.settle()
    return server.cpu() - before


def measure(cache: Path, data: Path, pages: bool) -> dict:
    from playwright.sync_api import sync_playwright

    server = Server(cache, data)
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=chromium, args=["--no-sandbox", "--disable-gpu"])
            warm = browser.new_context()  # the server's first visit imports the pages' modules: not a view
            _view(server, warm.new_page())
            warm.close()
            first, repeat = [], []
            for _ in range(VIEWS):
                ctx = browser.new_context()
                page = ctx.new_page()
                first.append(_view(server, page))
                repeat.append(_view(server, page, reload=True))
                ctx.close()
            out = {"first_cpu_s": first, "repeat_cpu_s": repeat, "rss_mb": round(rss_mb(server.proc.pid), 1)}
            if pages:
                before = server.cpu()
                rss = rerun_over_websocket(server, 500)
                out["reruns_500"] = {"cpu_s_per_rerun": round((server.cpu() - before) / 500, 4),
                                     "rss_mb_after_50": round(rss[49], 1), "rss_mb_after_500": round(rss[-1], 1)}
                ctx = browser.new_context()
                page = ctx.new_page()
                _view(server, page)
                out["pages_cpu_s"] = {name: statistics.median(_view(server, page, name, ready) for _ in range(3))
                                      for name, ready in PAGES.items()}
                page.goto(server.url)
                page.wait_for_function(CHART_DRAWN, timeout=120_000)
                server.settle()
                before = server.cpu()
                time.sleep(30)
                out["idle_tab_cpu_s_per_min"] = round((server.cpu() - before) * 2, 3)
                ctx.close()
                contexts = [browser.new_context() for _ in range(10)]
                tabs = [c.new_page() for c in contexts]
                server.settle()
                before, t0 = server.cpu(), time.perf_counter()
                for tab in tabs:
                    tab.goto(server.url, wait_until="commit")
                for tab in tabs:
                    tab.wait_for_function(CHART_DRAWN, timeout=300_000)
                wall = time.perf_counter() - t0
                server.settle()
                out["concurrent_10"] = {"cpu_s": round(server.cpu() - before, 2), "wall_s": round(wall, 1)}
                for c in contexts:
                    c.close()
            browser.close()
        return out
    finally:
        server.stop()


def run() -> list[Row]:
    from benchmarks.results_scale import fill
    from benchmarks.worker import environment
    from explorer.store.cache import Store
    from explorer.store.index import ResultsIndex

    rows, results = [], {}
    for n in ("shipped", 10_000):
        folder = Path(tempfile.mkdtemp(prefix="explorer-views-"))
        try:
            shipped_as_measured_here(folder / "shipped")
            if n == "shipped":
                cache = folder / "shipped"
            else:
                cache = folder / "cache"
                fill(cache, n, np.random.default_rng(0), source=folder / "shipped")
                started = time.process_time()  # the index a long search leaves, built before the server starts
                with environment(EXPLORER_CACHE_DIR=str(cache), EXPLORER_DATA_DIR=str(folder / "user_data")):
                    ResultsIndex(Store(cache)).refresh()
                index_build_s = time.process_time() - started
            results[str(n)] = measure(cache, folder / "user_data", pages=n == "shipped")
        finally:
            shutil.rmtree(folder, ignore_errors=True)
    ship, big = results["shipped"], results["10000"]
    big["index_build_cpu_s"] = round(index_build_s, 1)
    per_view = statistics.median(ship["first_cpu_s"] + ship["repeat_cpu_s"])
    per_view_big = statistics.median(big["first_cpu_s"] + big["repeat_cpu_s"])
    worst_page = max(ship["pages_cpu_s"].values())
    rows.append(row("server_per_view", per_view, "s", "<=", 0.15,
                    note=f"server CPU per Pareto view from a real browser, median of {VIEWS} first and {VIEWS} repeat "
                         f"views (first {statistics.median(ship['first_cpu_s']):.3f} s, repeat "
                         f"{statistics.median(ship['repeat_cpu_s']):.3f} s); at 10,000 variants {per_view_big:.3f} s "
                         f"(their index built beforehand, from scratch: {big['index_build_cpu_s']} CPU-s); "
                         f"slowest other page {worst_page:.3f} s; an open tab costs "
                         f"{ship['idle_tab_cpu_s_per_min']:.2f} CPU-s a minute; 500 reruns: "
                         f"{ship['reruns_500']['cpu_s_per_rerun']:.3f} s each, RSS {ship['reruns_500']['rss_mb_after_50']} "
                         f"-> {ship['reruns_500']['rss_mb_after_500']} MB",
                    detail=results))
    rows.append(row("server_per_view_at_10000", per_view_big, "s", "<=", 1.0))
    rows.append(row("server_slowest_page", worst_page, "s", "<=", 0.3, note=json.dumps(ship["pages_cpu_s"])))
    rows.append(row("concurrent_views", ship["concurrent_10"]["cpu_s"], "s",
                    note=f"server CPU for 10 sessions opening the Pareto page at once; every chart drawn after "
                         f"{ship['concurrent_10']['wall_s']} s wall (headless Chromium shares the 2 cores)",
                    detail=ship["concurrent_10"]))
    return rows
