"""Shared fixtures. Tests never write into the checkout.

Before anything is imported, every location the engine writes to is pointed at a temporary folder:
the cache (a copy of the shipped cached_models/), the user data (uploads, stages, job queue, worker
log, CPU gate). A session-finish check fails the run if the checkout gained or changed any file.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

SANDBOX = Path(tempfile.mkdtemp(prefix="explorer-tests-"))
shutil.copytree(REPO / "cached_models", SANDBOX / "cached_models", ignore=shutil.ignore_patterns(".tmp", ".locks"))
os.environ["EXPLORER_CACHE_DIR"] = str(SANDBOX / "cached_models")
os.environ["EXPLORER_DATA_DIR"] = str(SANDBOX / "user_data")
os.environ.pop("EXPLORER_STAGES_DIR", None)
os.environ["EXPLORER_WORKER_IDLE_EXIT"] = "30"  # workers the tests start do not outlive them for long

# A tiny variant on scikit-learn's digits: trains in a few seconds, learns for real.
TINY = dict(dataset="digits", depth=1, width=8, dense=32, epochs=12, tune_epochs=2, learning_rate=0.01,
            batch_size=32)
FAST_LATENCY = dict(min_runs=50, min_seconds=0.05, warmup=5, blocks=3, max_attempts=1)


@pytest.fixture
def store(tmp_path):
    from explorer.cache import Store

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


def stop_workers(data_dir: Path) -> None:
    """Stop the worker processes a test's app or executor started (they run in sessions of their own)."""
    from explorer.queue import Queue

    db = data_dir / "jobs.sqlite3"
    if db.exists():
        for pid in Queue(db).live_workers():
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass


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
