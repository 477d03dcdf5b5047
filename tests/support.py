"""What the tests share (imported as a module; conftest only holds fixtures and hooks).

Importing it first points every location the engine writes to at a temporary sandbox: the cache (a
copy of the shipped cached_models/) and the user data (uploads, stages, job queue, worker log, CPU
gate). The package itself is importable because `make setup-dev` installs it in editable mode.
"""

from __future__ import annotations

import os
import shutil
import signal
import tempfile
import time
from pathlib import Path
from typing import Callable, TypeVar

REPO = Path(__file__).resolve().parent.parent
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

SANDBOX = Path(tempfile.mkdtemp(prefix="explorer-tests-"))
shutil.copytree(REPO / "cached_models", SANDBOX / "cached_models", ignore=shutil.ignore_patterns(".tmp", ".locks"))
os.environ["EXPLORER_CACHE_DIR"] = str(SANDBOX / "cached_models")
os.environ["EXPLORER_DATA_DIR"] = str(SANDBOX / "user_data")
os.environ.pop("EXPLORER_STAGES_DIR", None)
os.environ["EXPLORER_WORKER_IDLE_EXIT"] = "30"  # workers the tests start do not outlive them for long

# A tiny variant on scikit-learn's digits: trains in a few seconds, learns for real.
TINY = dict(dataset="digits", depth=1, width=8, dense=32, epochs=12, min_steps=0, tune_epochs=2, learning_rate=0.01,
            batch_size=32)
# The plain recipe's levers as CLI flags: the CLI starts a dataset's variants from its defaults (digits is small,
# so those turn augmentation, batch norm, dropout, same padding and patience 20 on); these keep TINY's.
PLAIN_FLAGS = ["--augment", "off", "--batchnorm", "off", "--dropout", "0", "--padding", "valid", "--patience", "10"]
FAST_LATENCY = dict(min_runs=50, min_seconds=0.05, warmup=5, blocks=3, max_attempts=1)

T = TypeVar("T")


def wait_until(probe: Callable[[], T], what: str, timeout: float = 120.0, every: float = 0.1) -> T:
    """Poll probe() until it returns something truthy (another process is doing the work); fail saying what
    was awaited and what probe() last returned."""
    deadline = time.monotonic() + timeout
    while True:
        value = probe()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"waited {timeout:.0f} s for {what}; last seen: {value!r}")
        time.sleep(every)


def worker_log_tail(lines: int = 40) -> str:
    """The end of the worker's log in this test's user data, for a failure message: a job that failed
    because its worker stopped says why only there."""
    from explorer.store import paths

    log = paths.worker_log()
    text = log.read_text(errors="replace") if log.exists() else "(no worker log)"
    return "\n--- worker.log ---\n" + "\n".join(text.splitlines()[-lines:])


def stop_workers(data_dir: Path) -> None:
    """Stop the worker processes a test's app or executor started (they run in sessions of their own)."""
    from explorer.run.queue import Queue

    db = data_dir / "jobs.sqlite3"
    if db.exists():
        for pid in Queue(db).live_workers():
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass


INTEL_RECORDS = REPO / "tests" / "data" / "hosts" / "intel-xeon-avx512-amx-2core" / "latency"


def intel_only_cache(dest: Path) -> tuple[Path, str]:
    """A copy of the shipped cache as a new machine sees it: every latency measured on another host (the Intel
    Xeon's real records), none on this one; variants shipped after that host measured are left out.
    Returns the folder and that host's id."""
    import json

    shutil.copytree(REPO / "cached_models", dest, ignore=shutil.ignore_patterns("latency"))
    other = ""
    for rec in INTEL_RECORDS.glob("*.json"):
        other = json.loads(rec.read_text())["host"]["id"]
        if not (dest / "variants" / rec.stem).is_dir():  # kept as evidence since (a further seed: no model)
            continue
        (dest / "variants" / rec.stem / "latency").mkdir(exist_ok=True)
        shutil.copy(rec, dest / "variants" / rec.stem / "latency" / f"{other}.json")
    for entry in (dest / "variants").iterdir():
        if not (INTEL_RECORDS / f"{entry.name}.json").exists():
            shutil.rmtree(entry)
    return dest, other



def digits_upload(name: str, classes: int = 4, per_class: int = 60) -> None:
    """An uploaded dataset of real images: scikit-learn's handwritten digits as PNGs in class folders, imported as
    a user would (into the user-data folder of EXPLORER_DATA_DIR)."""
    import io
    import zipfile

    import numpy as np
    from PIL import Image
    from sklearn.datasets import load_digits

    from explorer.data import uploads

    bunch = load_digits()
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for c in range(classes):
            for i, image in enumerate(bunch.images[bunch.target == c][:per_class]):
                png = io.BytesIO()
                Image.fromarray(np.round(image * 255 / 16).astype(np.uint8)).save(png, format="PNG")
                zf.writestr(f"digit{c}/{i}.png", png.getvalue())
    uploads.import_zip(name, buf.getvalue())
