"""Quotas that keep a shared machine usable: builds per session, a disk budget, a visitor's search budget.

Each limit is checked before anything is queued or written, and a refusal says what is left; nothing
already stored is touched. The limits come from the server's environment (EXPLORER_MAX_QUEUED_BUILDS,
EXPLORER_DISK_BUDGET_GB, EXPLORER_MEMBER_SEARCH_MINUTES).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from explorer.settings import settings

GIB, MIB = 2**30, 2**20


@dataclass(frozen=True)
class Quotas:
    queued_builds: int = 3  # builds one session may have queued or running
    disk_bytes: int = 5 * GIB  # everything the app stores: uploads, stages, built variants, the queue
    member_search_minutes: float = 10.0  # a search's budget when not started by the owner

    @classmethod
    def from_env(cls) -> Quotas:
        """The server's quotas (explorer.settings: EXPLORER_MAX_QUEUED_BUILDS, _DISK_BUDGET_GB, _MEMBER_SEARCH_MINUTES)."""
        s = settings()
        return cls(s.max_queued_builds, int(s.disk_budget_gb * GIB), s.member_search_minutes)


def used_bytes(*folders: Path) -> int:
    """Bytes of the files under the folders (symlinks not followed; a file vanishing meanwhile is skipped)."""
    total = 0
    for folder in folders:
        for dirpath, _, files in os.walk(folder):
            for f in files:
                try:
                    total += os.lstat(os.path.join(dirpath, f)).st_size
                except OSError:
                    pass
    return total


def build_bytes(params: int) -> int:
    """What a build stores, at most: four copies of its float weights (the model file and the training stages)
    and a megabyte of records."""
    return 4 * 4 * params + MIB


def size_text(n: float) -> str:
    return f"{n / GIB:.2f} GiB" if n >= GIB else f"{n / MIB:.0f} MiB"


def builds_refusal(live_mine: int, adding: int, quotas: Quotas) -> str | None:
    if live_mine + adding <= quotas.queued_builds:
        return None
    return (f"You already have {live_mine} build{'s' if live_mine != 1 else ''} queued or running; a session may have "
            f"at most {quotas.queued_builds} at once. Wait for one to finish, or cancel one.")


def disk_refusal(needed: int, used: int, quotas: Quotas, what: str) -> str | None:
    left = max(0, quotas.disk_bytes - used)
    if needed <= left:
        return None
    return (f"{what} would take about {size_text(needed)}, and the disk budget for this app's data "
            f"({size_text(quotas.disk_bytes)}) has {size_text(left)} left. Delete an uploaded dataset on the Data "
            "page, or ask the owner to raise EXPLORER_DISK_BUDGET_GB.")


def search_minutes_refusal(minutes: float, owner: bool, quotas: Quotas) -> str | None:
    if owner or minutes <= quotas.member_search_minutes:
        return None
    return (f"A search started by a visitor runs for at most {quotas.member_search_minutes:g} minutes "
            f"(asked: {minutes:g}). Lower the budget, or ask the owner to start it.")
