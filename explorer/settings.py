"""Every EXPLORER_* setting, declared once: its variable, type, default, bounds and one line of help.

    >>> settings().max_epochs
    $ python -m explorer settings            # each setting, its value here, and where it came from

Read from the environment each time it is asked for (tests, benchmarks and a server's worker point them per
process), each value parsed and checked: a bad one raises SettingsError naming the variable. check() runs at
the start of the server, the CLI and the worker, so a bad value fails there rather than halfway through a
build. docs/settings.md is generated from SETTINGS (scripts/settings_doc.py). No other module reads an
EXPLORER_* variable.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

REPO_ROOT = Path(__file__).resolve().parent.parent


class SettingsError(ValueError):
    """A setting's value cannot be used; the message names the variable and what it takes."""


@dataclass(frozen=True)
class Setting:
    env: str
    kind: str  # path | int | float | text | flag
    default: Any  # None: unset (the help says what that means)
    help: str
    lo: float | None = None  # numbers: the smallest value allowed
    hi: float | None = None


SETTINGS: dict[str, Setting] = {s.env.removeprefix("EXPLORER_").lower(): s for s in (
    Setting("EXPLORER_CACHE_DIR", "path", None, "the model cache (default: cached_models/ in the checkout)"),
    Setting("EXPLORER_DATA_DIR", "path", None, "user data: uploads, imported models, stages, the job queue, logs "
                                               "(default: user_data/ in the checkout)"),
    Setting("EXPLORER_STAGES_DIR", "path", None, "intermediate training stages (default: stages/ in the user data)"),
    Setting("EXPLORER_FASHION_MNIST_DIR", "path", Path("/usr/share/datasets/fashion-mnist"),
            "a folder with Fashion-MNIST's four IDX .gz files (Debian's dataset-fashion-mnist puts them here)"),
    Setting("EXPLORER_MAX_EPOCHS", "int", 30, "the most epochs a build started from the app, or a dataset's default "
                                              "recipe, trains", 1, 100),
    Setting("EXPLORER_MAX_QUEUED_BUILDS", "int", 3, "builds one app session may have queued or running", 0, 1000),
    Setting("EXPLORER_DISK_BUDGET_GB", "float", 5.0, "disk for the app's data (uploads, models, stages, variants), GB",
            0.001, 1e6),
    Setting("EXPLORER_MEMBER_SEARCH_MINUTES", "float", 10.0, "the longest search a visitor who is not the owner may "
                                                             "start, minutes", 0.1, 10_000),
    Setting("EXPLORER_OWNER_TOKEN", "text", None, "the owner link's token on a shared server (unset: a random one is "
                                                  "made at start and printed); set but empty is refused"),
    Setting("EXPLORER_OPEN", "flag", False, "1: an open room, every visitor may act within the quotas (serve.py --open)"),
    Setting("EXPLORER_RAY_ADDRESS", "text", None, "a Ray cluster the app's builds and searches go to: host:6379 or "
                                                  "ray://host:10001 (unset: they run on this machine)"),
    Setting("EXPLORER_RAY_FALLBACK_LOCAL", "flag", False, "1: build on this machine when the Ray cluster cannot be "
                                                          "reached (0: those builds fail, saying so)"),
    Setting("EXPLORER_WORKER_IDLE_EXIT", "float", 600.0, "seconds a worker the app started waits idle before it "
                                                         "exits", 1, 1e7),
    Setting("EXPLORER_ADB", "text", "adb", "the adb command for Android targets"),
    Setting("EXPLORER_SEARCH_BUDGET", "float", 600.0, "benchmarks: each search's budget in search_hypervolume, seconds",
            1, 1e6),
    Setting("EXPLORER_BENCH_SEEDS", "int", 10, "benchmarks: further seeds accuracy_truth trains", 1, 100),
    Setting("EXPLORER_BENCH_STORE", "path", None, "benchmarks: a store accuracy_truth keeps its seeds in (unset: a "
                                                  "temporary one)"),
    Setting("EXPLORER_BENCH_TRAIN", "flag", True, "benchmarks: 0 makes accuracy_truth use only seeds already stored"),
    Setting("EXPLORER_SMALL_DATA_WORK", "path", None, "benchmarks: small_data_defaults' work folder (unset: in the "
                                                      "temporary folder)"),
)}

_PARSE: dict[str, Callable[[str], Any]] = {"path": Path, "int": int, "float": float, "text": str}


def _parse(s: Setting, raw: str) -> Any:
    if s.kind == "flag":
        value = {"1": True, "true": True, "on": True, "0": False, "false": False, "off": False}.get(raw.lower())
        if value is None:
            raise SettingsError(f"{s.env} must be 1 or 0 (got {raw!r})")
        return value
    if raw == "":
        raise SettingsError(f"{s.env} is set but empty: give it a value, or unset it" + (
            f" (default {s.default})" if s.default is not None else ""))
    try:
        value = _PARSE[s.kind](raw)
    except ValueError:
        raise SettingsError(f"{s.env} must be {'a whole number' if s.kind == 'int' else 'a number'} "
                            f"(got {raw!r})") from None
    if s.kind in ("int", "float") and not ((s.lo is None or value >= s.lo) and (s.hi is None or value <= s.hi)):
        raise SettingsError(f"{s.env} must be from {s.lo:g} to {s.hi:g} (got {raw!r})")
    return value


@dataclass(frozen=True)
class Settings:
    cache_dir: Path
    data_dir: Path
    stages_dir: Path
    fashion_mnist_dir: Path
    max_epochs: int
    max_queued_builds: int
    disk_budget_gb: float
    member_search_minutes: float
    owner_token: str | None
    open: bool
    ray_address: str | None
    ray_fallback_local: bool
    worker_idle_exit: float
    adb: str
    search_budget: float
    bench_seeds: int
    bench_store: Path | None
    bench_train: bool
    small_data_work: Path | None


def settings(environ: dict[str, str] | None = None) -> Settings:
    """The settings as the environment gives them now (SettingsError on a bad value)."""
    env = os.environ if environ is None else environ
    values = {name: _parse(s, env[s.env]) if s.env in env else s.default for name, s in SETTINGS.items()}
    values["cache_dir"] = values["cache_dir"] or REPO_ROOT / "cached_models"
    values["data_dir"] = values["data_dir"] or REPO_ROOT / "user_data"
    values["stages_dir"] = values["stages_dir"] or values["data_dir"] / "stages"
    return Settings(**values)


def check() -> Settings:
    """The settings, checked at a process's start: a bad value stops it there, naming the variable."""
    return settings()


def describe() -> list[dict[str, str]]:
    """Each setting, its value here and whether it was set: for `python -m explorer settings`."""
    now = settings()
    return [{"variable": s.env, "value": str(getattr(now, name)), "set": "yes" if s.env in os.environ else "default",
             "help": s.help} for name, s in SETTINGS.items()]

