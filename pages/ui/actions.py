"""Every action of the app that changes what is stored or starts work, each checked against the session's
role (pages/ui/roles.py) and the quotas (pages/ui/quotas.py) before it runs.

The pages draw the action widgets only for sessions that may act, and they act only through these
functions, so a refused action says why on the page and leaves everything stored as it was.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
from pathlib import Path

import streamlit as st

from explorer.data import datasets, uploads
from explorer.models import architecture, imports
from explorer.run import study_process
from explorer.run.executors import JobRequest
from explorer.settings import settings
from explorer.spec import VariantSpec
from explorer.store import paths
from pages.ui import jobs, measuring, roles
from pages.ui.loading import Results, store
from pages.ui.quotas import Quotas, build_bytes, builds_refusal, disk_refusal, search_minutes_refusal, used_bytes


def _used() -> int:
    s = store()
    folders = {s.root.resolve(), s.stages_root.resolve(), paths.state_dir().resolve()}
    return used_bytes(*(f for f in folders if not any(o != f and o in f.parents for o in folders)))


def _refuse(message: str | None) -> bool:
    if message:
        st.error(message)
    return message is not None


def ray_address() -> str | None:
    """The Ray cluster builds and search trials go to: the server's own configuration, never a visitor's text."""
    return settings().ray_address


def build(specs: list[VariantSpec]) -> list:
    """Queue builds for this session; [] when refused (the reason is on the page)."""
    if not specs or not roles.allowed("Building"):
        return []
    q, me, quotas = jobs.executor().queue, jobs.requester(), Quotas.from_env()
    mine = sum(1 for j in q.jobs(("queued", "running"), kind="build") if j.waited_by(me))
    if _refuse(builds_refusal(mine, len(specs), quotas)):
        return []
    needed = 0
    for spec in specs:
        info = datasets.info_for(spec)
        needed += build_bytes(_params(spec, info))
    if _refuse(disk_refusal(needed, _used(), quotas, "This build" if len(specs) == 1 else f"These {len(specs)} builds")):
        return []
    ex = jobs.executor()
    return [ex.submit(JobRequest.build(spec, ex.store), me) for spec in specs]


APPLICATION_PARAMS = 5_000_000  # a keras.applications network's size is known once built: bound it by the large ones


def _params(spec: VariantSpec, info: datasets.DatasetInfo) -> int:
    """The parameters a build stores (its disk estimate), without TensorFlow in this server."""
    if not spec.model:
        return architecture.total_params(architecture.check(spec, info.input_shape, info.num_classes))
    if spec.source.imported:
        return imports.find(spec.model).params or 0
    return APPLICATION_PARAMS


def import_upload(name: str, data: bytes) -> uploads.ImportReport | None:
    """Import an uploaded zip as a dataset; None when refused (the reason is on the page)."""
    if not roles.allowed("Importing a dataset"):
        return None
    quotas, used = Quotas.from_env(), _used()
    left = max(0, quotas.disk_bytes - used)
    if _refuse(disk_refusal(len(data), used, quotas, "This upload")):
        return None
    try:
        return uploads.import_zip(name, data, uploads.Limits(max_disk_bytes=left))
    except uploads.UploadError as exc:
        st.error(f"Upload refused: {exc}")
        return None


def delete_dataset(name: str) -> int | None:
    """Delete an uploaded dataset and its variants; None when refused."""
    if not roles.allowed("Deleting a dataset"):
        return None
    try:
        return uploads.delete(name, store())
    except uploads.UploadError as exc:
        st.error(str(exc))
        return None


def import_model(name: str, filename: str, data: bytes, scale: str) -> str | None:
    """Import an uploaded model file in a process of its own (checking a .keras loads TensorFlow, which this web
    server never does); its report, or None when refused (the reason is on the page)."""
    if not roles.allowed("Importing a model"):
        return None
    if _refuse(disk_refusal(len(data), _used(), Quotas.from_env(), "This model")):
        return None
    suffix = Path(filename).suffix if Path(filename).suffix in (".keras", ".tflite", ".h5", ".zip") else ".bin"
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / f"upload{suffix}"
        path.write_bytes(data)
        done = subprocess.run([sys.executable, "-m", "explorer", "import-model", name, str(path), "--scale", scale],
                              capture_output=True, text=True, timeout=600)
    if done.returncode != 0:
        st.error("Model refused: " + (done.stderr.strip().splitlines() or ["the import failed"])[-1].removeprefix("error: "))
        return None
    return done.stdout.strip()


def delete_model(name: str) -> int | None:
    """Delete an imported model and its variants; None when refused."""
    if not roles.allowed("Deleting a model"):
        return None
    try:
        return imports.delete(name, store())
    except imports.ModelImportError as exc:
        st.error(str(exc))
        return None


def start_search(name: str, args: list[str], minutes: float, on_ray: bool) -> bool:
    """Start a search study; False when refused (the reason is on the page)."""
    if not roles.allowed("Searching"):
        return False
    if _refuse(search_minutes_refusal(minutes, roles.access().owner, Quotas.from_env())):
        return False
    address = ray_address()
    try:
        study_process.start(name, args + (["--ray", address] if on_ray and address else []))
    except ValueError as exc:
        st.error(str(exc))
        return False
    return True


def measure_on_target(res: Results, target: str, keys: list[str] | None = None) -> int:
    """Queue variants (default: those the target has not measured, by its host's records) in the worker's
    measure lane, to be timed on the target; 0 when refused."""
    if not roles.allowed("Measuring on a target"):
        return 0
    return measuring.request_measurements(res, res.unmeasured_here if keys is None else keys, target=target)


def remeasure(res: Results, keys: list[str]) -> int:
    """Time variants again on this host, measured or not; 0 when refused."""
    if not roles.allowed("Re-measuring"):
        return 0
    return measuring.request_measurements(res, keys, force=True)
