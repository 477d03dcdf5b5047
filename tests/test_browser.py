"""A real browser: the app served on 127.0.0.1, headless Chromium opens the Pareto page."""

import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request

import pytest

from conftest import REPO, SANDBOX, stop_workers
from explorer.cache import Store
from explorer.figures import FOREIGN
from explorer.spec import QUANT_MODES

pytestmark = [pytest.mark.browser, pytest.mark.slow]
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
ARTIFACTS = SANDBOX / "artifacts"  # never the checkout; set EXPLORER_SCREENSHOT to keep a copy


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def server():
    if CHROMIUM is None:
        pytest.skip("BROWSER TEST SKIPPED: no Chromium found (install Debian's 'chromium' package)")
    pytest.importorskip("playwright.sync_api", reason="BROWSER TEST SKIPPED: playwright is not installed")
    port = _free_port()
    proc = subprocess.Popen([sys.executable, str(REPO / "scripts" / "serve.py"),  # as `make run` serves it
                             "--server.port", str(port), "--server.address", "127.0.0.1"],
                            cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.time() + 60
        while time.time() < deadline:
            try:
                if urllib.request.urlopen(f"{url}/_stcore/health", timeout=2).read() == b"ok":
                    break
            except OSError:
                time.sleep(0.3)
        else:
            pytest.fail("the Streamlit server did not answer its health check within 60 s")
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=20)
        stop_workers(SANDBOX / "user_data")


def test_pareto_page_renders_one_marker_per_cached_variant(server):
    from playwright.sync_api import sync_playwright

    metas, _ = Store().variants()  # the tests' copy of the shipped cache (conftest)
    expected = sum(m["dataset"]["name"] == "fashion-mnist" for m in metas)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=[
            "--no-sandbox", "--disable-gpu", "--disable-background-networking"])
        page = browser.new_page(viewport={"width": 1500, "height": 1100})
        page.goto(server)  # the first load after start can render skeletons only: load twice
        page.wait_for_timeout(1000)
        page.goto(server)
        page.wait_for_selector(".js-plotly-plot .scatterlayer", timeout=180_000)  # a new host measures first
        page.wait_for_timeout(1500)
        counts = page.evaluate(
            """(modes) => document.querySelector('.js-plotly-plot')._fullData  // decoded arrays
                 .filter(t => modes.includes(t.name)).map(t => t._length)""",
            [*QUANT_MODES, *(m + FOREIGN for m in QUANT_MODES)])  # measured here, or still another host's
        drawn = page.locator(".js-plotly-plot .scatterlayer .trace .points path").count()
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "pareto.png"), full_page=True)
        if os.environ.get("EXPLORER_SCREENSHOT"):
            shutil.copy(ARTIFACTS / "pareto.png", os.environ["EXPLORER_SCREENSHOT"])
        browser.close()
    assert sum(counts) == expected
    assert drawn >= expected  # every variant drawn as an SVG point (plus the budget highlight)
