"""Shared fixtures. Tests run against a temporary cache, never the shipped cached_models/."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

# A tiny variant on scikit-learn's digits: trains in a few seconds, learns for real.
TINY = dict(dataset="digits", depth=1, width=8, dense=32, epochs=12, tune_epochs=2, learning_rate=0.01,
            batch_size=32)
FAST_LATENCY = dict(min_runs=50, min_seconds=0.05, warmup=5)


@pytest.fixture
def store(tmp_path):
    from explorer.cache import Store

    return Store(tmp_path / "cache")


@pytest.fixture
def tiny_spec():
    from explorer.spec import VariantSpec

    return VariantSpec(**TINY)


def pytest_terminal_summary(terminalreporter):
    """Say loudly when the real-browser test did not run."""
    skipped = [r for r in terminalreporter.stats.get("skipped", []) if "BROWSER TEST SKIPPED" in str(r.longrepr)]
    if skipped:
        terminalreporter.write_sep("!", "BROWSER TEST SKIPPED: no headless Chromium/Playwright on this machine", red=True)
