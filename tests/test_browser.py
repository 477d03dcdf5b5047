"""A real browser: the app served on 127.0.0.1, headless Chromium opens the Pareto page."""

import json
import os
import shutil
import subprocess
import sys

import pytest

from support import REPO, SANDBOX, stop_workers
from explorer.store.cache import Store
from explorer.present.figures import FOREIGN
from explorer.spec import QUANT_MODES

pytestmark = [pytest.mark.browser, pytest.mark.slow]
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
ARTIFACTS = SANDBOX / "artifacts"  # never the checkout; set EXPLORER_SCREENSHOT to keep a copy


@pytest.fixture(scope="module")
def server():
    """The app as `make run` serves it (scripts/serve.py), on the sandbox's cache and user data."""
    if CHROMIUM is None:
        pytest.skip("BROWSER TEST SKIPPED: no Chromium found (install Debian's 'chromium' package)")
    pytest.importorskip("playwright.sync_api", reason="BROWSER TEST SKIPPED: playwright is not installed")
    from benchmarks.server_views import Server
    from explorer.store import paths

    served = Server(paths.cache_dir(), paths.state_dir())
    try:
        yield served.url
    finally:
        served.stop()
        stop_workers(SANDBOX / "user_data")


def test_explore_shows_a_latency_preview_band_when_a_knob_moves(server):
    """Runs first: it also opens a page by its own address on a fresh server (the navigation must be app.py's).

    Depth 1 with separable convolutions is not in the shipped cache: the chart shows its measured latency
    as a band (accuracy unknown), measured by the worker from the untrained architecture."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeout, sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=[
            "--no-sandbox", "--disable-gpu", "--disable-background-networking"])
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        page.goto(f"{server}/explore")  # a page's own address, first visit after the server started
        page.wait_for_selector("button:has-text('Open in Details'), button:has-text('Train and measure')",
                               timeout=60_000)
        nav = [t.split()[-1] for t in page.locator('[data-testid="stSidebarNav"] a').all_inner_texts()]
        # each click waits for the rerun it caused: a click that lands while the page is still being drawn can
        # be superseded by that run's redraw of the radio
        for group, option, label in (("depth (conv blocks)", "1", "-d1w32-fc128-fp32"),
                                     ("convolution", "separable", "-d1w32-fc128-sep-fp32")):
            for _ in range(3):
                page.get_by_role("radiogroup", name=group).get_by_text(option, exact=True).click()
                try:
                    page.wait_for_selector(f"text=fashion-mnist{label}", timeout=15_000)
                    break
                except PlaywrightTimeout:  # the click was superseded: click again
                    continue
        page.wait_for_selector("text=Not built yet", timeout=30_000)
        page.wait_for_function("""() => [...document.querySelectorAll('.js-plotly-plot')].some(
            p => (p.layout.annotations || []).some(a => a.text.includes('latency measured, not trained')))""",
                               timeout=180_000)
        band = page.evaluate("""() => { const p = [...document.querySelectorAll('.js-plotly-plot')].find(
            p => (p.layout.shapes || []).length);
            return [p.layout.shapes.map(s => s.type), p.layout.annotations.map(a => a.text)]; }""")
        page.screenshot(path=str(ARTIFACTS / "explore-preview.png"), full_page=True)
        browser.close()
    assert nav == ["Pareto", "Explore", "Compare", "Details", "Data", "Search"]  # app.py's navigation, not the folder's
    assert "rect" in band[0] and any("fashion-mnist-d1w32-fc128-sep-fp32" in t for t in band[1])


def test_a_plain_streamlit_run_opens_a_shared_details_link_through_app_py(tmp_path):
    """`streamlit run app.py`, not `make run`: the first visit after the start is a page's own address. Streamlit
    would run that page alone with the folder's navigation (app, compare, …); it runs through app.py instead."""
    if CHROMIUM is None:
        pytest.skip("BROWSER TEST SKIPPED: no Chromium found (install Debian's 'chromium' package)")
    from playwright.sync_api import sync_playwright
    from benchmarks.server_views import Server

    served = Server(SANDBOX / "cached_models", tmp_path / "user_data", plain=True)
    try:
        with sync_playwright() as p:
            browser = _browser(p)
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.goto(f"{served.url}/details")
            page.wait_for_selector("text=Variant details", timeout=60_000)
            page.wait_for_selector('[data-testid="stSidebarNav"] a', timeout=30_000)
            nav = [t.split()[-1] for t in page.locator('[data-testid="stSidebarNav"] a').all_inner_texts()]
            browser.close()
    finally:
        served.stop()
        stop_workers(tmp_path / "user_data")
    assert nav == ["Pareto", "Explore", "Compare", "Details", "Data", "Search"]


def test_pareto_page_renders_one_marker_per_cached_variant(server):
    from playwright.sync_api import sync_playwright

    metas, _ = Store().variants()  # the tests' copy of the shipped cache (conftest)
    expected = _points(metas, QUANT_MODES)
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


def _points(metas: list[dict], quants) -> int:
    """Fashion-MNIST variants in these modes, one point each, seed replicates grouped into one."""
    return len({json.dumps({k: v for k, v in m["spec"].items() if k != "seed"}, sort_keys=True)
                for m in metas if m["dataset"]["name"] == "fashion-mnist" and m["spec"]["quant"] in quants})


def _browser(p):
    return p.chromium.launch(executable_path=CHROMIUM, args=[
        "--no-sandbox", "--disable-gpu", "--disable-background-networking"])


def test_a_pareto_link_opens_the_same_view_in_a_fresh_browser_and_a_details_link_says_when_missing(server):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = _browser(p)
        page = browser.new_context(viewport={"width": 1400, "height": 1000}).new_page()  # nothing shared
        page.goto(f"{server}/?dataset=fashion-mnist&x=gzip_kb&quant=int8&budget=200")
        page.wait_for_selector(".js-plotly-plot .scatterlayer .points path", timeout=60_000)
        page.wait_for_timeout(1000)
        # the worker measures the shipped variants on this new host meanwhile: each landing redraws the chart
        names, title = page.wait_for_function("""() => { const p = document.querySelector('.js-plotly-plot');
            if (!p || !p._fullData || !p._fullLayout) return null;
            const names = p._fullData.filter(t => t.mode === 'markers' && t._length > 0).map(t => t.name);
            return names.length ? [names, p._fullLayout.xaxis.title.text] : null; }""", timeout=60_000).json_value()
        budget = page.get_by_label("Budget: best accuracy under … KB").input_value()
        address = page.url
        page.goto(f"{server}/details?key=0123456789abcdef")
        page.wait_for_selector("text=is not in the cache", timeout=60_000)
        browser.close()
    assert "Gzipped size" in title
    assert {n.replace(FOREIGN, "") for n in names if n not in ("best under budget", "tied with the front")} == {"int8"}
    assert float(budget) == 200
    assert "x=gzip_kb" in address and "quant=int8" in address  # the address keeps the view


def test_the_report_opens_offline_with_one_marker_per_variant(tmp_path):
    from playwright.sync_api import sync_playwright

    if CHROMIUM is None:
        pytest.skip("BROWSER TEST SKIPPED: no Chromium found (install Debian's 'chromium' package)")
    out = tmp_path / "report.html"
    done = subprocess.run([sys.executable, "-m", "explorer", "report", str(out), "--quant", "int8", "dynamic"],
                          cwd=REPO, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    metas, _ = Store().variants()
    expected = _points(metas, ("int8", "dynamic"))
    with sync_playwright() as p:
        browser = _browser(p)
        context = browser.new_context(offline=True)  # no network at all: everything must be in the file
        requests = []
        context.on("request", lambda r: requests.append(r.url))
        page = context.new_page()
        page.goto(out.as_uri())
        page.wait_for_selector(".js-plotly-plot .scatterlayer .points path", timeout=30_000)
        counts = page.evaluate("""(modes) => document.querySelector('.js-plotly-plot')._fullData
                 .filter(t => modes.includes(t.name)).map(t => t._length)""",
                               [*QUANT_MODES, *(m + FOREIGN for m in QUANT_MODES)])
        text = page.inner_text("body")
        browser.close()
    assert sum(counts) == expected
    assert "The front" in text and "How and where each latency was measured" in text
    assert all(u.startswith("file:") for u in requests)
    assert out.stat().st_size < 8e6
