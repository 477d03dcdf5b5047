"""A study run from the app: a detached `python -m explorer search` process, named by a pid file, stopped by a flag
file, its log read for the error it ended with (explorer.run.search runs the study itself).

    >>> study_process.start("mine", ["--budget", "10m"]); study_process.running("mine")
    >>> study_process.request_stop("mine")
"""

from __future__ import annotations

import contextlib
import os
import re
import subprocess
import sys
from pathlib import Path

from explorer import process
from explorer.store import paths

STUDY_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")


def _folder() -> Path:
    folder = paths.state_dir() / "searches"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def check_name(study_name: str) -> str:
    if not STUDY_NAME.match(study_name):
        raise ValueError(f"study name {study_name!r}: use lower-case letters, digits, '-' or '_' (64 at most)")
    return study_name


def stop_requested(study_name: str) -> bool:
    return (_folder() / f"{study_name}.stop").exists()


def request_stop(study_name: str) -> None:
    """Ask a running study to stop after its current trial (every finished trial stays, and it resumes)."""
    (_folder() / f"{check_name(study_name)}.stop").touch()


def running(study_name: str) -> bool:
    """Whether the search process of this study is alive: its pid file names it by pid and start time (as the job
    queue names a worker), so a pid reused by another process after a reboot or a wrap is not taken for it; a
    zombie is not alive. A pid file of an older version holds the pid alone."""
    try:
        pid, *started = (int(x) for x in (_folder() / f"{study_name}.pid").read_text().split())
    except (FileNotFoundError, ValueError):
        return False
    return process.alive(pid) and (not started or process.started(pid) in (None, started[0]))


def _write_pid(study_name: str, pid: int) -> Path:
    """The study's pid file, naming the process by pid and start time; written whole (renamed over)."""
    path = _folder() / f"{study_name}.pid"
    tmp = path.with_suffix(f".pid.{os.getpid()}")
    tmp.write_text(f"{pid} {process.started(pid) or ''}".strip())
    os.replace(tmp, path)
    return path


@contextlib.contextmanager
def announced(study_name: str):
    """While this process runs a study, its pid file names it (gone when it ends): the Search page shows it
    running, with its time left and Stop, whether the page or the command line started it. A name the page
    cannot show (STUDY_NAME) is not announced."""
    if not STUDY_NAME.match(study_name):
        yield
        return
    path = _write_pid(study_name, os.getpid())
    try:
        yield
    finally:
        path.unlink(missing_ok=True)


def start(study_name: str, cli_args: list[str]) -> int:
    """Start `python -m explorer search … --study NAME` detached (it outlives the page); returns its pid."""
    check_name(study_name)
    if running(study_name):
        raise ValueError(f"study {study_name!r} is running already")
    (_folder() / f"{study_name}.stop").unlink(missing_ok=True)
    with open(_folder() / f"{study_name}.log", "ab") as log:
        proc = subprocess.Popen([sys.executable, "-m", "explorer", "search", *cli_args, "--study", study_name],
                                cwd=paths.REPO_ROOT, stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                                env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}, start_new_session=True)
    _write_pid(study_name, proc.pid)
    return proc.pid


def last_error(study_name: str) -> str | None:
    """The error a study's process ended with (the CLI's last 'error: …' line of its log), if any."""
    try:
        lines = (_folder() / f"{study_name}.log").read_text(errors="replace").splitlines()
    except FileNotFoundError:
        return None
    started = max((i for i, line in enumerate(lines) if line.startswith("study ")), default=-1)  # a run's last line
    errors = [line[len("error: "):] for line in lines[started + 1:] if line.startswith("error: ")]
    return errors[-1] if errors else None
