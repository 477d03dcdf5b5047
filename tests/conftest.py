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
    for line in getattr(config, "_memory_disagreements", []):
        terminalreporter.write_sep("!", "FAILED: a memory plan disagrees with TensorFlow Lite Micro", red=True)
        terminalreporter.write_line(line)
    checked = getattr(config, "_memory_checked", 0)
    if checked:
        terminalreporter.write_line(f"memory plans held against TensorFlow Lite Micro: {checked} models the tests built")
    skipped = [r for r in terminalreporter.stats.get("skipped", []) if "BROWSER TEST SKIPPED" in str(r.longrepr)]
    if skipped:
        terminalreporter.write_sep("!", "BROWSER TEST SKIPPED: no headless Chromium/Playwright on this machine", red=True)


def _checkout_state() -> set[str]:
    """Every modified, untracked or ignored path of the checkout, but Python's bytecode and the venv."""
    out = subprocess.run(["git", "status", "--porcelain", "--ignored", "--untracked-files=all"], cwd=REPO,
                         capture_output=True, text=True).stdout
    return {line for line in out.splitlines()
            if "__pycache__" not in line and " .venv/" not in line}


def _worker(config) -> bool:
    """Whether this process is a pytest-xdist worker (the controller, or a plain run, checks the checkout)."""
    return hasattr(config, "workerinput")


# Files whose tests start a Ray cluster run on one worker, one after another: two clusters on two cores starve.
ONE_WORKER = {"test_cluster.py": "ray", "test_cluster_builds.py": "ray", "test_targets.py": "ray"}


# The longest files first (about a minute or more of a worker's time each, longest first): workers take files in
# this order, so no long one is left for the end while the other worker idles.
LONGEST_FIRST = ("test_cluster_builds.py", "test_cluster.py", "test_targets.py", "test_search.py", "test_own_models.py", "test_app.py",
                 "test_reliability.py", "test_worker.py", "test_browser.py", "test_pipeline.py", "test_server.py",
                 "test_cli.py", "test_roles.py", "test_imports.py", "test_shipped_cache.py")


@pytest.hookimpl(tryfirst=True)  # before pytest-xdist reads the groups
def pytest_collection_modifyitems(config, items):
    """Each test file runs whole on one worker (its module fixtures are built once), the Ray ones together; the
    longest files start first."""
    rank = {name: i for i, name in enumerate(LONGEST_FIRST)}
    items.sort(key=lambda item: rank.get(item.path.name, len(rank)))  # stable: a file's tests keep their order
    for item in items:
        name = item.path.name
        item.add_marker(pytest.mark.xdist_group(ONE_WORKER.get(name, name)))


def pytest_sessionstart(session):
    if not _worker(session.config):
        session.config._checkout_before = _checkout_state()


def _check_memory_plans(folders) -> tuple[int, list[str]]:
    """Every model the tests built, planned (explorer.measure.memory) and held against TensorFlow Lite Micro's
    allocator: the head exactly, the total within 1 %. Returns how many were checked and the disagreements."""
    import hashlib

    from explorer.measure import memory

    seen, bad = set(), []
    shipped = {hashlib.sha1(p.read_bytes()).hexdigest() for p in (REPO / "cached_models").rglob("model.tflite")}
    for folder in folders:
        for path in folder.rglob("model.tflite"):
            model = path.read_bytes()
            digest = hashlib.sha1(model).hexdigest()
            if digest in seen or digest in shipped:  # the shipped ones: tests/test_memory.py
                continue
            seen.add(digest)
            try:
                plan = memory.plan(model)
            except ValueError:  # a test's deliberately damaged file: not a model
                continue
            ref = memory.micro_reference(model)
            if ref is None:
                if not plan.micro_blockers:
                    bad.append(f"{path}: TFLite Micro cannot load it, the plan names no reason")
            elif plan.head_bytes != ref["head"] or abs(plan.peak_ram_bytes - ref["total"]) > 0.01 * ref["total"]:
                bad.append(f"{path}: planned head {plan.head_bytes} / total {plan.peak_ram_bytes} B, "
                           f"TFLite Micro {ref['head']} / {ref['total']} B")
    return len(seen), bad


@pytest.hookimpl(optionalhook=True)  # pytest-xdist's hook: a run without it does not know the name
def pytest_testnodedown(node, error):
    """The controller of a parallel run gathers each worker's memory check (pytest-xdist's workeroutput)."""
    found = getattr(node, "workeroutput", {}).get("memory_check")
    if found:
        checks = node.config.__dict__.setdefault("_worker_memory_checks", [])
        checks.append(found)


def pytest_sessionfinish(session, exitstatus):
    config = session.config
    stop_workers(SANDBOX / "user_data")
    factory = getattr(config, "_tmp_path_factory", None)
    if _worker(config) or not config.getoption("numprocesses", None):  # where tests ran: check what they built
        folders = [SANDBOX, *([factory.getbasetemp()] if factory is not None else [])]
        config._memory_checked, config._memory_disagreements = _check_memory_plans(folders)
        if _worker(config):
            config.workeroutput["memory_check"] = [config._memory_checked, config._memory_disagreements]
    else:
        checks = getattr(config, "_worker_memory_checks", [])
        config._memory_checked = sum(n for n, _ in checks)
        config._memory_disagreements = [line for _, bad in checks for line in bad]
    if config._memory_disagreements:
        session.exitstatus = 1
    if not _worker(config):
        config._checkout_added = sorted(_checkout_state() - config._checkout_before)
        if config._checkout_added:
            session.exitstatus = 1
    shutil.rmtree(SANDBOX, ignore_errors=True)


@pytest.fixture
def user_data(tmp_path, monkeypatch):
    """A user-data folder of the test's own (queue, gate, stages); its workers are stopped afterwards."""
    folder = tmp_path / "user_data"
    monkeypatch.setenv("EXPLORER_DATA_DIR", str(folder))
    yield folder
    stop_workers(folder)
