"""The test suite as a newcomer runs it (issue #44): a fresh clone, its setup, then the README's test command.

    $ .venv/bin/python -m benchmarks suite_time

The committed HEAD is cloned into a temporary folder; `make setup-dev` builds its own virtualenv there (setup
included: what a fresh machine pays once; the system packages are already installed here), then the suite runs
as `make test` runs it, with a JUnit report read for the number of tests and the slowest. suite_time is the tests'
wall time (target <= 600 s on 2 cores); the host is named.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import time
import xml.etree.ElementTree as ET
from pathlib import Path

from benchmarks.report import Row, row
from explorer.measure import host
from explorer.store.paths import REPO_ROOT

TEST_COMMAND = ["-m", "pytest", "-n", "auto", "--dist", "loadgroup"]  # the Makefile's test target


def _timed(argv: list[str], cwd: Path, **kwargs) -> float:
    start = time.perf_counter()
    subprocess.run(argv, cwd=cwd, check=False, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, **kwargs)
    return time.perf_counter() - start


def _cases(report: Path) -> list[tuple[str, float, str]]:
    """(test id, seconds, outcome) of every test case in a JUnit report."""
    out = []
    for case in ET.parse(report).getroot().iter("testcase"):
        outcome = next((child.tag for child in case if child.tag in ("failure", "error", "skipped")), "passed")
        out.append((f"{case.get('classname')}::{case.get('name')}", float(case.get("time", 0)), outcome))
    return out


def run() -> list[Row]:
    folder = Path(tempfile.mkdtemp(prefix="explorer-suite-"))
    try:
        clone = folder / "clone"
        subprocess.run(["git", "clone", "-q", str(REPO_ROOT), str(clone)], check=True)
        env = {k: v for k, v in os.environ.items() if not k.startswith("EXPLORER_")}
        setup_s = _timed(["make", "setup-dev"], clone, env=env)
        report = folder / "junit.xml"
        tests_s = _timed([str(clone / ".venv" / "bin" / "python"), *TEST_COMMAND, f"--junitxml={report}"], clone, env=env)
        cases = _cases(report)
        slowest = sorted(cases, key=lambda c: -c[1])[:10]
        outcomes = {o: sum(c[2] == o for c in cases) for o in ("passed", "failure", "error", "skipped")}
        here = host.current()
        detail = {"host": here.label, "cores": here.cores, "tests": len(cases), "outcomes": outcomes,
                  "tests_s": round(tests_s, 1), "setup_s": round(setup_s, 1),
                  "with_setup_s": round(tests_s + setup_s, 1),
                  "slowest": [{"test": t, "seconds": round(s, 1)} for t, s, _ in slowest]}
        return [row("suite_time", tests_s, "s", "<=", 600, detail=detail,
                    note=f"{len(cases)} tests ({outcomes['passed']} passed, {outcomes['failure'] + outcomes['error']} "
                         f"failed, {outcomes['skipped']} skipped) on {here.label}, {here.cores} cores; "
                         f"{tests_s + setup_s:.0f} s with a fresh clone's setup ({setup_s:.0f} s)")]
    finally:
        shutil.rmtree(folder, ignore_errors=True)
