"""Faults injected for real: processes killed with SIGKILL mid-build, concurrent builders, overlapping sweeps."""

import fcntl
import json
import os
import signal
import subprocess
import sys
from importlib import metadata

import pytest

from support import FAST_LATENCY, REPO, TINY, wait_until
from explorer.run import pipeline
from explorer.store.cache import Store
from explorer.spec import VariantSpec

pytestmark = pytest.mark.slow

CHILD = """
import json, sys, time
from explorer.run import pipeline
from explorer.store.cache import Store
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
    code = CHILD.format(root=str(root), specs=[s.to_dict() for s in specs], latency=FAST_LATENCY)
    return subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                            text=True, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})


def reports(proc: subprocess.Popen) -> list[dict]:
    out, _ = proc.communicate(timeout=300)
    assert proc.returncode == 0, out[-2000:]
    return [json.loads(line.split(" ", 1)[1]) for line in out.splitlines() if line.startswith("REPORT")]


def lock_is_free(store: Store, kind: str, key: str) -> bool:
    with open(store.lock_path(kind, key), "a") as f:
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
    assert "variant" in report.built and record.accuracy > 0.8


def test_sigkill_mid_write_leaves_debris_that_is_cleaned_not_an_entry(store):
    code = f"""
import os, sys, time
from explorer.store.cache import Store
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
    assert store.variants()[1] == [] and record.accuracy > 0.5


def test_entries_of_other_library_versions_are_kept_apart(store):
    """An entry built by other library versions is never loaded as ours: a build under today's versions
    makes its own entry (and stages) beside it, and both stay."""
    spec = VariantSpec(**{**TINY, "epochs": 3})
    old = {"tensorflow": "2.20.0", "tf-keras": "2.20.0", "tensorflow-model-optimization": "0.8.0"}
    theirs = spec.key(old)
    store.write("variants", theirs, {"kind": "variant", "spec": spec.to_dict(), "build": {"versions": old}},
                lambda d: (d / "model.tflite").write_bytes(b"built by TensorFlow 2.20"))
    record, report = pipeline.ensure(spec, store, latency_kwargs=FAST_LATENCY)
    assert report.trained and "variant" in report.built  # not taken from the other versions' entry
    assert record.key == spec.key() != theirs
    assert record.versions["tensorflow"] == metadata.version("tensorflow")  # shown on Details
    assert sorted(m["key"] for m in store.variants()[0]) == sorted([theirs, spec.key()])


APP_SESSION = """
import sys, time
from streamlit.testing.v1 import AppTest
at = AppTest.from_file({app!r}, default_timeout=60)
for name, value in {knobs!r}.items():
    at.session_state["k_" + name] = value
at.run()
at.switch_page({page!r}).run()
next(b for b in at.button if b.label == "Train and measure").click().run()
print("CLICKED", flush=True)
time.sleep(600)
"""


def app_session(spec: VariantSpec):
    """An AppTest with the Explore knobs set to spec (as a browser session would)."""
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_file(str(REPO / "app.py"), default_timeout=60)
    for name, value in spec.to_dict().items():
        at.session_state[f"k_{name}"] = value
    at.run()
    at.switch_page(str(REPO / "pages" / "explore.py")).run()
    assert not at.exception, [e.message for e in at.exception]
    return at


@pytest.fixture
def app_env(store, user_data, monkeypatch):
    import streamlit as st

    monkeypatch.setenv("EXPLORER_CACHE_DIR", str(store.root))
    monkeypatch.setenv("EXPLORER_STAGES_DIR", str(store.stages_root))
    monkeypatch.setenv("EXPLORER_MAX_EPOCHS", "100")
    st.cache_resource.clear()  # the executor is per server process: this "server" uses this test's folders
    st.cache_data.clear()
    yield store
    st.cache_resource.clear()


def test_server_restart_during_a_build_shows_it_running_then_failed_when_the_worker_dies(app_env, user_data):
    from explorer.run.queue import Queue

    store = app_env
    # Fashion-MNIST: 100 epochs take minutes, so the build is surely still running when the worker is killed.
    spec = VariantSpec(**{**TINY, "dataset": "fashion-mnist", "epochs": 100, "seed": 41})
    code = APP_SESSION.format(app=str(REPO / "app.py"), knobs=spec.to_dict(),
                              page=str(REPO / "pages" / "explore.py"))
    server = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                              text=True, env=os.environ.copy())
    assert server.stdout.readline().strip() == "CLICKED"
    queue = Queue()
    job = wait_until(lambda: next((j for j in queue.jobs(("running",)) if j.stage == "train"), None),
                     "the build to train in the worker", 90)
    os.kill(server.pid, signal.SIGKILL)  # the web server dies; the worker (its own session) goes on
    server.wait()

    at = app_session(spec)  # the restarted server, a new browser session
    status = at.get("status")
    assert status and "Building" in status[0].proto.label  # shown running, not lost
    assert queue.get(job.id).state == "running"

    os.kill(job.worker_pid, signal.SIGKILL)  # now the worker dies too
    wait_until(lambda: job.worker_pid not in queue.live_workers(), "the worker to be gone")
    at.run()
    assert any("stopped during 'train'" in e.value for e in at.error), [e.value for e in at.error]
    assert queue.get(job.id).state == "failed"
    assert not store.has("variants", spec.key()) and not (store.root / "variants" / spec.key()).exists()
    assert not store.has("base", spec.base_key())
    assert store.variants() == ([], [])


def test_two_sessions_build_one_variant_one_cancels_the_other_gets_it(app_env):
    store = app_env
    spec = VariantSpec(**{**TINY, "dataset": "fashion-mnist", "epochs": 2, "seed": 42})  # seconds: time to cancel
    alice, bob = app_session(spec), app_session(spec)
    next(b for b in alice.button if b.label == "Train and measure").click().run()
    bob.run()  # bob opens the same variant: he sees the running build (and the button is disabled)
    assert bob.get("status")
    next(b for b in bob.button if b.label == "Train and measure")  # present, disabled while it builds
    from explorer.run.queue import Queue

    job = Queue().latest("build", spec.key())
    Queue().submit("build", spec.key(), spec.label(), job.payload, bob.session_state["requester"])  # bob asks too
    alice.run()
    next(b for b in alice.button if b.label == "Cancel").click().run()
    assert not alice.exception
    wait_until(lambda: not Queue().get(job.id).live, "the build to finish", 120)
    assert Queue().get(job.id).state == "done" and store.has("variants", spec.key())  # bob waited: it went on
    bob.run()
    assert not bob.error
    assert any(m.label == "Test accuracy" for m in bob.metric)  # bob sees his variant
    alice.run()
    assert not alice.error  # nobody is shown a failure
