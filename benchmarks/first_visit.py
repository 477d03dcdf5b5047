"""A first visit on a new host (issue #44): the Pareto chart, then every shipped variant measured here.

- demo_first_open: on a host with no measurements, seconds from the server's health check to the Pareto chart
  drawn in headless Chromium. Target <= 2 s.
- demo_first_open_all_measured: the page left open, seconds from the health check until every shipped variant
  has this host's figure (the worker's quick first pass, asked for by the page). Target <= 30 s. Its note gives
  the time until the full protocol has replaced them all.

    $ .venv/bin/python -m benchmarks first_visit

Everything runs on a temporary copy of the shipped cache without this host's latencies and an empty user-data
folder.
"""

from __future__ import annotations

import time
from pathlib import Path

from benchmarks.report import Row, row
from benchmarks.worker import BROWSER_ARGS, CHROMIUM, Sandbox, Server
from explorer.measure import host


def _here_records(cache: Path) -> list[dict]:
    import json

    out = []
    for path in cache.glob(f"variants/*/latency/{host.current().id}.json"):
        try:
            out.append(json.loads(path.read_text()))
        except (OSError, ValueError):  # being renamed into place
            continue
    return out


def first_open(timeout_s: float = 300.0) -> tuple[float, float, float, float]:
    """On a host with no measurements, a browser opens the app and stays: seconds to the server's health check,
    then from the health check to the chart drawn, to every shipped variant with this host's figure (the worker's
    quick first pass) and to every figure the full protocol's (all from the health check)."""
    from playwright.sync_api import sync_playwright
    from explorer.store.cache import Store

    box = Sandbox(forget_this_host=True)
    try:
        variants = sum(1 for m in Store(box.cache).variants()[0]
                       if Store(box.cache).file_path("variants", m["key"], "model.tflite").exists())
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=BROWSER_ARGS)
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            server = Server(box)
            try:
                health = server.started()
                t0 = time.perf_counter()
                page.goto(server.url)
                page.wait_for_selector(".js-plotly-plot .scatterlayer .points path", timeout=120_000)
                drawn = time.perf_counter() - t0
                filled = refined = float("nan")
                while time.perf_counter() - t0 < timeout_s:
                    records = _here_records(box.cache)
                    if filled != filled and len(records) >= variants:
                        filled = time.perf_counter() - t0
                    if len(records) >= variants and not any(r.get("provisional") for r in records):
                        refined = time.perf_counter() - t0
                        break
                    time.sleep(0.2)
            finally:
                browser.close()
                server.stop()
        return health, drawn, filled, refined
    finally:
        box.close()


def run() -> list[Row]:
    if CHROMIUM is None:
        return [row("first visit benchmarks", float("nan"), "", note="SKIPPED: no chromium")]
    health, drawn, filled, refined = first_open()
    return [row("demo_first_open", drawn, "s", "<=", 2,
                note=f"no latency of this host in the cache; health check after {health:.1f} s"),
            row("demo_first_open_all_measured", filled, "s", "<=", 30,
                note=f"the page left open: every shipped variant has this host's figure (quick first pass) "
                     f"{filled:.0f} s after the health check; all by the full protocol after {refined:.0f} s")]
