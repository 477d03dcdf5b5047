"""Faults injected for real: processes killed with SIGKILL mid-build, concurrent builders, overlapping sweeps."""

import fcntl
import json
import os
import signal
import subprocess
import sys
import time
from importlib import metadata

import pytest

from conftest import FAST_LATENCY, REPO, TINY
from explorer import pipeline
from explorer.cache import Store
from explorer.spec import VariantSpec

pytestmark = pytest.mark.slow

CHILD = """
import json, sys, time
sys.path.insert(0, {repo!r})
from explorer import pipeline
from explorer.cache import Store
from explorer.spec import VariantSpec
store = Store({root!r})
for fields in {specs!r}:
    spec = VariantSpec(**fields)
    def progress(p):
        print("PROGRESS", p.stage, flush=True)
    record, report = pipeline.ensure(spec, store, progress, latency_kwargs={latency!r})
    print("REPORT", json.dumps({{"key": spec.key(), "built": report.built}}), flush=True)
"""


def spawn(root, specs: list[VariantSpec]) -> subprocess.Popen:
    code = CHILD.format(repo=str(REPO), root=str(root), specs=[s.to_dict() for s in specs], latency=FAST_LATENCY)
    return subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                            text=True, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})


def reports(proc: subprocess.Popen) -> list[dict]:
    out, _ = proc.communicate(timeout=300)
    assert proc.returncode == 0, out[-2000:]
    return [json.loads(line.split(" ", 1)[1]) for line in out.splitlines() if line.startswith("REPORT")]


def lock_is_free(store: Store, kind: str, key: str) -> bool:
    with open(store.root / ".locks" / f"{kind}-{key}.lock", "a") as f:
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False
        fcntl.flock(f, fcntl.LOCK_UN)
        return True


def test_sigkill_during_training_leaves_no_entry_and_no_held_lock(store):
    spec = VariantSpec(**{**TINY, "epochs": 60})
    proc = spawn(store.root, [spec])
    for line in proc.stdout:  # wait until it is really training
        if line.startswith("PROGRESS train"):
            break
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert not store.has("variants", spec.key()) and not store.has("base", spec.base_key())
    assert store.variants() == ([], [])
    assert lock_is_free(store, "variants", spec.key())  # the kernel dropped the dead process's lock
    record, report = pipeline.ensure(spec.replace(epochs=60), store, latency_kwargs=FAST_LATENCY)
    assert "variant" in report.built and record["metrics"]["accuracy"] > 0.8


def test_sigkill_mid_write_leaves_debris_that_is_cleaned_not_an_entry(store):
    code = f"""
import os, sys, time
sys.path.insert(0, {str(REPO)!r})
from explorer.cache import Store
def fill(d):
    (d / "model.tflite").write_bytes(b"half a model")
    print("WRITING", flush=True)
    time.sleep(60)
Store({str(store.root)!r}).write("variants", "abc123", {{"label": "x"}}, fill)
"""
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "WRITING"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    debris = list((store.root / ".tmp").iterdir())
    assert len(debris) == 1 and (debris[0] / "model.tflite").exists()
    assert not store.has("variants", "abc123") and store.variants() == ([], [])
    assert store.clean_stale() == debris  # the writer is dead: its folder goes
    assert list((store.root / ".tmp").iterdir()) == []


def test_two_processes_asking_for_one_variant_build_it_once(store):
    spec = VariantSpec(**{**TINY, "quant": "int8"})
    procs = [spawn(store.root, [spec]) for _ in range(2)]
    built = [r["built"] for p in procs for r in reports(p)]
    assert sorted("variant" in b for b in built) == [False, True]
    assert sum(b.count("base") for b in built) == 1
    assert [m["key"] for m in store.variants()[0]] == [spec.key()]


def test_overlapping_sweeps_end_with_every_entry_exactly_once(store):
    a = [VariantSpec(**TINY, quant=q) for q in ("fp32", "int8")]
    b = [VariantSpec(**TINY, quant=q) for q in ("int8", "dynamic")]
    procs = [spawn(store.root, a), spawn(store.root, b)]
    all_reports = [r for p in procs for r in reports(p)]
    assert sum(r["built"].count("base") for r in all_reports) == 1  # trained once across both sweeps
    assert sum(r["built"].count("variant") for r in all_reports) == 3
    keys = [m["key"] for m in store.variants()[0]]
    assert sorted(keys) == sorted({s.key() for s in a + b})
    assert list((store.root / ".tmp").iterdir()) == []


def test_a_corrupt_entry_is_rebuilt_on_request(store):
    spec = VariantSpec(**{**TINY, "epochs": 3})
    pipeline.ensure(spec, store, latency_kwargs=FAST_LATENCY)
    model = store.file_path("variants", spec.key(), "model.tflite")
    model.write_bytes(model.read_bytes()[:100])
    assert store.variants()[1][0].key == spec.key()
    record, report = pipeline.ensure(spec, store, latency_kwargs=FAST_LATENCY)
    assert report.built[:1] == ["variant"] and report.reused == ["base"]  # reconverted, not retrained
    assert store.variants()[1] == [] and record["metrics"]["accuracy"] > 0.5


def test_entries_of_other_library_versions_are_kept_apart(store):
    spec = VariantSpec(**{**TINY, "epochs": 3})
    ours = spec.key()
    theirs = spec.key({"tensorflow": "2.20.0", "tf-keras": "2.20.0", "tensorflow-model-optimization": "0.8.0"})
    assert ours != theirs
    record, _ = pipeline.ensure(spec, store, latency_kwargs=FAST_LATENCY)
    assert record["build"]["versions"]["tensorflow"] == metadata.version("tensorflow")  # shown on Details


def test_cancelling_a_build_from_the_app_leaves_no_entry(store):
    from explorer.jobs import Cancelled, Jobs

    spec = VariantSpec(**{**TINY, "epochs": 30, "seed": 3})
    job = Jobs(store).submit(spec)
    deadline = time.time() + 60
    while job.progress.stage != "train" and time.time() < deadline:
        time.sleep(0.05)
    job.cancel()
    assert job.finished.wait(60)
    assert isinstance(job.error, Cancelled)
    assert not store.has("variants", spec.key()) and not store.has("base", spec.base_key())
    assert not list(store.root.rglob("*.tflite")) and not list(store.root.rglob("*.h5"))


def test_builds_in_one_process_run_one_at_a_time_and_both_finish(store):
    from explorer.jobs import Jobs

    jobs = Jobs(store)
    first = jobs.submit(VariantSpec(**{**TINY, "epochs": 8, "seed": 11}))
    second = jobs.submit(VariantSpec(**{**TINY, "epochs": 8, "seed": 12}))
    assert jobs.submit(first.spec) is first  # a second session asking joins the running job
    deadline = time.time() + 30
    while second.progress.stage != "queued" and time.time() < deadline:
        time.sleep(0.02)
    assert second.progress.stage == "queued" and not first.done
    assert first.finished.wait(120) and second.finished.wait(120)
    assert first.error is None and second.error is None
    assert {first.result["key"], second.result["key"]} == {m["key"] for m in store.variants()[0]}


def test_a_variant_removed_after_its_build_is_rebuilt_on_request(store):
    from explorer.jobs import Jobs

    jobs = Jobs(store)
    spec = VariantSpec(**{**TINY, "epochs": 3, "seed": 21})
    first = jobs.submit(spec)
    assert first.finished.wait(120) and first.error is None
    store.remove("variants", spec.key())  # e.g. found damaged and dropped
    again = jobs.submit(spec)
    assert again is not first
    assert again.finished.wait(120) and again.error is None
    assert again.report.built[:1] == ["variant"] and store.has("variants", spec.key())
