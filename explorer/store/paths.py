"""Where the project keeps its files; each location can be moved with an environment variable."""

from __future__ import annotations

from pathlib import Path

from explorer.settings import settings

REPO_ROOT = Path(__file__).resolve().parents[2]  # explorer/store/paths.py


def cache_dir() -> Path:
    """The model cache (shipped with the repo as cached_models/)."""
    return settings().cache_dir


def state_dir() -> Path:
    """Local state that never ships: uploads, stages, the job queue, the worker's log and locks."""
    return settings().data_dir


def user_datasets_dir() -> Path:
    """Validated uploads, one folder per dataset."""
    return state_dir() / "datasets"


def stages_dir() -> Path:
    """Intermediate training stages (Keras weights): local, reused across builds, never shipped."""
    return settings().stages_dir


def queue_db() -> Path:
    """The durable job queue (SQLite) shared by the app, the worker and the CLI."""
    return state_dir() / "jobs.sqlite3"


def worker_log() -> Path:
    """What the worker process prints: its jobs, their tracebacks, and a crash's stack."""
    return state_dir() / "worker.log"
