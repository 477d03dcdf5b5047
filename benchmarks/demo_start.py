"""Demo start: server start -> health check -> chart rendered in headless Chromium (target <= 3 s after health).

    $ .venv/bin/python -m benchmarks.demo_start

Also times importing what the results pages import, and checks that it does not import TensorFlow.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import time

from benchmarks.report import Row, print_table, row
from explorer.store.paths import REPO_ROOT

IMPORTS = """
import sys, time; t0 = time.perf_counter()
import pages.ui.loading, pages.ui.jobs, explorer.present.figures, explorer.present.pareto, explorer.present.results, explorer.run.pipeline, explorer.data.uploads
t = time.perf_counter() - t0
heavy = [m for m in ("tensorflow", "tf_keras", "tensorflow_model_optimization") if m in sys.modules]
print(t, ",".join(heavy) or "none", len(sys.modules))
"""


def _time_to(page, url: str, selector: str) -> float:
    t0 = time.perf_counter()
    page.goto(url)
    page.wait_for_selector(selector, timeout=60_000)
    return time.perf_counter() - t0


def run() -> list[Row]:
    out = subprocess.run([sys.executable, "-c", IMPORTS], capture_output=True, text=True, check=True,
                         cwd=REPO_ROOT).stdout.split()
    rows = [row("import of results-page modules", float(out[0]) * 1e3, "ms",
                note=f"TensorFlow-family modules imported: {out[1]}; {out[2]} modules in all")]
    chromium = shutil.which("chromium")
    if chromium is None:
        return rows + [row("demo start", float("nan"), "s", note="SKIPPED: no chromium")]
    from playwright.sync_api import sync_playwright

    from benchmarks.worker import Sandbox, Server

    box = Sandbox()  # a copy of the shipped cache: the app's worker writes nothing into the checkout
    t_start = time.perf_counter()
    server = Server(box)
    url = server.url
    try:
        server.started()
        health = time.perf_counter() - t_start
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=chromium,
                                        args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"])
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            chart = ".js-plotly-plot .scatterlayer .points path"
            first = _time_to(page, url, chart)
            again = _time_to(page, url, chart)
            explore = _time_to(page, f"{url}/explore", "button:has-text('Load'), button:has-text('Train and measure')")
            browser.close()
    finally:
        server.stop()
        box.close()
    return rows + [
        row("server start to health check", health, "s"),
        row("Pareto chart, first load after health check", first, "s", "<=", 3),
        row("Pareto chart, next load", again, "s", "<=", 3),
        row("Explore page ready (button shown)", explore, "s", "<=", 3),
    ]


if __name__ == "__main__":
    print_table("Demo start", run())
