"""The served app as a team sees it: scripts/serve.py in its own process, spoken to as a browser does.

Its memory stays flat over 500 full reruns with Streamlit's post-run garbage collection off (the
setting that halves a view's CPU), and on a server listening beyond this machine a fresh browser is a
viewer until it opens the owner link that the server printed at start.
"""

from __future__ import annotations

import shutil
import time

import pytest

from benchmarks.server_views import CHART_DRAWN, Server, rerun_over_websocket, shipped_as_measured_here
from support import stop_workers

pytestmark = pytest.mark.slow
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
TOKEN = "served-owner-token-0123456789abcdefghijklmnopq"


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    """The shipped cache, copied, with this host's latency records (nothing is measured meanwhile)."""
    root = tmp_path_factory.mktemp("served") / "cache"
    shipped_as_measured_here(root)
    return root


def test_the_servers_memory_stays_flat_over_500_reruns_without_the_post_run_gc(cache, tmp_path):
    server = Server(cache, tmp_path / "user_data")
    try:
        rss = rerun_over_websocket(server, 500)
    finally:
        server.stop()
    settled = max(rss[40:60])  # after the caches of the first runs have filled
    assert max(rss[60:]) <= settled + 15, (rss[0], settled, max(rss[60:]), rss[-1])


@pytest.mark.browser
def test_a_fresh_browser_is_a_viewer_until_it_opens_the_owner_link(cache, tmp_path):
    if CHROMIUM is None:
        pytest.skip("BROWSER TEST SKIPPED: no Chromium found (install Debian's 'chromium' package)")
    from playwright.sync_api import sync_playwright

    log = tmp_path / "server.log"
    server = Server(cache, tmp_path / "user_data", address="0.0.0.0", env={"EXPLORER_OWNER_TOKEN": TOKEN}, log=log)
    try:
        assert f"?token={TOKEN}" in log.read_text()  # the owner link, printed at start
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu"])
            viewer = browser.new_context().new_page()
            viewer.goto(f"{server.url}/data")
            viewer.wait_for_selector("text=Uploading needs the owner", timeout=60_000)  # the page's end
            assert viewer.locator("button:has-text('Import')").count() == 0
            assert viewer.locator("text=Viewer").count() == 1
            viewer.goto(f"{server.url}/?token=not-the-token")
            viewer.wait_for_function(CHART_DRAWN, timeout=60_000)
            assert viewer.locator("text=That owner token is not this server's").count() == 1
            assert viewer.locator("button:has-text('Re-measure all on this host')").count() == 0

            owner = browser.new_context().new_page()
            owner.goto(f"{server.url}/?token={TOKEN}")
            owner.wait_for_selector("button:has-text('Re-measure all on this host')", timeout=60_000)
            deadline = time.time() + 10
            while "token=" in owner.url and time.time() < deadline:
                time.sleep(0.2)
            assert "token=" not in owner.url  # taken out of the address bar
            owner.locator('[data-testid="stSidebarNav"] a:has-text("Data")').click()  # a page switch
            owner.wait_for_selector("button:has-text('Import')", timeout=60_000)
            assert owner.locator("text=Viewer").count() == 0
            browser.close()
    finally:
        server.stop()
        stop_workers(tmp_path / "user_data")


def test_an_owner_token_set_but_empty_is_refused_at_start_with_the_variables_name(tmp_path):
    import os
    import subprocess
    import sys

    from support import REPO

    done = subprocess.run([sys.executable, str(REPO / "scripts" / "serve.py"), "--server.address", "0.0.0.0"],
                          env={**os.environ, "EXPLORER_OWNER_TOKEN": "", "EXPLORER_DATA_DIR": str(tmp_path)},
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 1 and "EXPLORER_OWNER_TOKEN is set but empty" in done.stderr
