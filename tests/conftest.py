"""Fixtures and session hooks. Tests never write into the checkout.

support (imported first) points every writer at a temporary sandbox; a session-finish check fails the
run if the checkout gained or changed any file.
"""

from __future__ import annotations

import shutil
import subprocess

import pytest

from support import REPO, SANDBOX, TINY, stop_workers  # first: it points every writer at the sandbox


@pytest.fixture
def store(tmp_path):
    from explorer.store.cache import Store

    return Store(tmp_path / "cache")


@pytest.fixture
def tiny_spec():
    from explorer.spec import VariantSpec

    return VariantSpec(**TINY)


def pytest_terminal_summary(terminalreporter, config):
    """Say loudly when the suite wrote into the checkout, or the real-browser test did not run."""
    added = getattr(config, "_checkout_added", [])
    if added:
        terminalreporter.write_sep("!", "FAILED: the test suite wrote into the checkout", red=True)
        terminalreporter.write_line("\n".join(added))
    skipped = [r for r in terminalreporter.stats.get("skipped", []) if "BROWSER TEST SKIPPED" in str(r.longrepr)]
    if skipped:
        terminalreporter.write_sep("!", "BROWSER TEST SKIPPED: no headless Chromium/Playwright on this machine", red=True)


def _checkout_state() -> set[str]:
    """Every modified, untracked or ignored path of the checkout, but Python's bytecode and the venv."""
    out = subprocess.run(["git", "status", "--porcelain", "--ignored", "--untracked-files=all"], cwd=REPO,
                         capture_output=True, text=True).stdout
    return {line for line in out.splitlines()
            if "__pycache__" not in line and " .venv/" not in line}


def pytest_sessionstart(session):
    session.config._checkout_before = _checkout_state()


def pytest_sessionfinish(session, exitstatus):
    stop_workers(SANDBOX / "user_data")
    session.config._checkout_added = sorted(_checkout_state() - session.config._checkout_before)
    if session.config._checkout_added:
        session.exitstatus = 1
    shutil.rmtree(SANDBOX, ignore_errors=True)


@pytest.fixture
def user_data(tmp_path, monkeypatch):
    """A user-data folder of the test's own (queue, gate, stages); its workers are stopped afterwards."""
    folder = tmp_path / "user_data"
    monkeypatch.setenv("EXPLORER_DATA_DIR", str(folder))
    yield folder
    stop_workers(folder)
