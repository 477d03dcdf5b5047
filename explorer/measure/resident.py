"""Memory measured, beside the memory planned: what a model's interpreter adds to a fresh process's resident
memory (RSS), read by the measuring agent on this machine or on a target (a Raspberry Pi shows what it uses).

LiteRT's arena, XNNPACK's packed weights and its workspace all count, so the figure is larger than TensorFlow
Lite Micro's planned arena (explorer.measure.memory), which holds activations only. Where it cannot be read
(no /proc/self/statm, an adb target's benchmark tool, Ray agents), the reason is kept instead of a number.
"""

from __future__ import annotations

from typing import Callable

import numpy as np

from explorer.measure import pool


def increase(fresh_pool: Callable[[], object], model: bytes, image: np.ndarray, threads: int = 1
             ) -> tuple[int | None, str]:
    """(bytes, "") measured by the agent of a pool made for it (a process that has run nothing else), or
    (None, why it could not be)."""
    timing = None
    try:
        timing = fresh_pool()
        if not hasattr(timing, "resident_increase"):
            return None, "its agents (Ray actors) do not report resident memory"
        return timing.resident_increase(pool.Payload(model, image), threads), ""
    except pool.AgentError as exc:
        return None, str(exc)
    finally:
        if hasattr(timing, "close"):
            timing.close()
