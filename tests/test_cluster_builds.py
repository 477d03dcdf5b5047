"""Every build on a Ray cluster: a local cluster of two nodes (each with a user-data folder of its own, as
separate machines have), built through the same code a real cluster runs."""

import os
import signal
import time
from pathlib import Path
from typing import NamedTuple

import pytest

from support import FAST_LATENCY, TINY, digits_upload, stop_workers, wait_until
from explorer.spec import VariantSpec
from explorer.store.cache import Store

pytestmark = pytest.mark.slow


class Nodes(NamedTuple):
    address: str
    folder: Path  # node-a/ and node-b/: each node's user-data folder


@pytest.fixture(scope="module")
def cluster_of_two(tmp_path_factory):
    """A head that schedules only (no CPUs) and two nodes of one CPU each, started once for this file: its nodes'
    worker processes, TensorFlow imported, serve every test (a test that kills one gets a new one)."""
    ray = pytest.importorskip("ray")
    from ray.cluster_utils import Cluster

    folder = tmp_path_factory.mktemp("nodes")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("TF_CPP_MIN_LOG_LEVEL", "3")
        head = Cluster(initialize_head=True, head_node_args={"num_cpus": 0, "include_dashboard": False})
        for node in ("node-a", "node-b"):  # a node's processes inherit the environment it was started in
            mp.setenv("EXPLORER_DATA_DIR", str(folder / node))
            head.add_node(num_cpus=1)
    yield Nodes(head.address, folder)
    ray.shutdown()
    head.shutdown()


@pytest.fixture
def two_nodes(cluster_of_two, tmp_path, monkeypatch):
    """The cluster, with this test's own user-data folder on the head; yields the nodes."""
    monkeypatch.setenv("EXPLORER_DATA_DIR", str(tmp_path / "head"))
    return cluster_of_two


def test_a_sweep_on_an_upload_builds_on_the_nodes_with_the_keys_and_accuracies_of_a_local_one(
        tmp_path, two_nodes, capsys):
    from explorer.run import cli

    digits_upload("mine")
    axes = ["sweep", "--dataset", "mine", "--depth", "1", "--width", "4", "8", "--quant", "fp32", "int8",
            "--epochs", "3", "--augment", "off", "--patience", "0"]
    assert cli.main(["--cache", str(tmp_path / "here"), *axes]) == 0
    assert cli.main(["--cache", str(tmp_path / "ray"), *axes, "--ray", two_nodes.address]) == 0

    here, there = (Store(tmp_path / n) for n in ("here", "ray"))
    keys = {p.name for p in (tmp_path / "here" / "variants").iterdir()}
    assert len(keys) == 4 and keys == {p.name for p in (tmp_path / "ray" / "variants").iterdir()}
    for key in keys:
        assert there.verify("variants", key)["metrics"]["accuracy"] == here.verify("variants", key)["metrics"]["accuracy"]
    for node in ("node-a", "node-b"):  # the upload travelled to the nodes that built on it
        assert (two_nodes.folder / node / "datasets" / "mine" / "data.npz").read_bytes() == \
               (tmp_path / "head" / "datasets" / "mine" / "data.npz").read_bytes()
    assert "built on" in capsys.readouterr().err


def test_a_node_of_other_versions_is_refused_naming_both(two_nodes, monkeypatch, tmp_path):
    from explorer.run import cluster

    real = cluster.versions()
    monkeypatch.setattr(cluster, "versions", lambda: {**real, "tensorflow": "9.9.9"})  # the head's, now other
    with pytest.raises(cluster.ClusterError, match=rf"tensorflow {real['tensorflow']} there, 9.9.9 here"):
        cluster.RayBuilds(Store(tmp_path / "cache"), two_nodes.address)


def test_a_build_lost_with_its_worker_is_tried_once_on_the_other_node_then_fails_naming_both(two_nodes, tmp_path):
    from explorer.run import cluster

    store = Store(tmp_path / "cache")
    builds = cluster.RayBuilds(store, two_nodes.address, latency_kwargs=FAST_LATENCY)
    future = builds.submit(VariantSpec(**{**TINY, "epochs": 100}))
    nodes = []
    for _ in range(2):
        note = wait_until(lambda: (n := builds.progress(future)) and n["stage"] == "train"
                          and n["node"] not in nodes and n, "a build training on a node")
        nodes.append(note["node"])
        os.kill(note["pid"], signal.SIGKILL)
    with pytest.raises(cluster.ClusterError, match="lost twice") as lost:
        future.result(timeout=60)
    assert nodes[0] != nodes[1] and nodes[0] in str(lost.value) and nodes[1] in str(lost.value)
    assert not list((tmp_path / "cache").glob("variants/*"))  # nothing half-written


def test_the_apps_worker_sends_two_sessions_builds_to_the_cluster_at_once_and_cancels_one(
        two_nodes, tmp_path, monkeypatch):
    from explorer.run.executors import JobRequest, LocalExecutor

    monkeypatch.setenv("EXPLORER_RAY_ADDRESS", two_nodes.address)
    store = Store(tmp_path / "cache")
    executor = LocalExecutor(store)
    first = executor.submit(JobRequest.build(VariantSpec(**TINY), store), "session-1")
    slow = executor.submit(JobRequest.build(VariantSpec(**{**TINY, "width": 4, "epochs": 100}), store), "session-2")
    try:
        both = wait_until(lambda: (jobs := [executor.progress(j.id) for j in (first, slow)])
                          and all(j.message.startswith("On ") for j in jobs) and jobs, "both builds on nodes")
        assert len({j.message.split(":")[0] for j in both}) == 2  # at once, one on each node
        executor.cancel(slow.id, "session-2")
        done = wait_until(lambda: (j := executor.progress(first.id)).state in ("done", "failed") and j, "first done")
        assert done.state == "done" and " on " in done.message, done.message
        gone = wait_until(lambda: (j := executor.progress(slow.id)).state == "cancelled" and j, "cancelled")
        assert "Ray task was cancelled" in gone.message
        assert executor.result(first.id).latency is not None  # written and timed by the head
        assert not store.has("variants", VariantSpec(**{**TINY, "width": 4, "epochs": 100}).key())
    finally:
        stop_workers(tmp_path / "head")


def test_an_unreachable_cluster_is_an_error_unless_the_user_says_build_here(tmp_path, monkeypatch, capsys):
    from explorer.run import cli

    import ray

    ray.shutdown()  # this process joined the file's cluster: unconnected, as a new command line is
    monkeypatch.setenv("EXPLORER_DATA_DIR", str(tmp_path / "data"))
    axes = ["--cache", str(tmp_path / "cache"), "sweep", "--dataset", "digits", "--depth", "1", "--width", "4",
            "--epochs", "2", "--ray", "127.0.0.1:9"]
    assert cli.main(axes) != 0
    assert "cannot be reached" in capsys.readouterr().err and not (tmp_path / "cache" / "variants").exists()
    assert cli.main([*axes, "--or-local"]) == 0
    assert "building on this machine (--or-local)" in capsys.readouterr().err
    assert len(list((tmp_path / "cache" / "variants").iterdir())) == 1


def test_an_imported_model_travels_to_the_node_that_builds_it(two_nodes, tmp_path):
    from explorer.models import imports
    from explorer.models.tf_runtime import keras
    from explorer.run import cluster

    inputs = keras.Input((8, 8, 1))
    x = keras.layers.Conv2D(4, 3, activation="relu")(inputs)
    outputs = keras.layers.Dense(10, activation="softmax")(keras.layers.Flatten()(x))
    keras.Model(inputs, outputs).save(tmp_path / "tiny.keras")
    made = imports.import_path("tiny", tmp_path / "tiny.keras")
    spec = VariantSpec(dataset="digits", model=made.source, epochs=3, quant="int8", augment=False, patience=0)
    store = Store(tmp_path / "cache")
    builds = cluster.RayBuilds(store, two_nodes.address, latency_kwargs=FAST_LATENCY)
    (_, built, report), = cluster.build_all([spec], builds)
    assert report.where and built.accuracy > 0.3 and built.latency is not None
    node = next(n for n in ("node-a", "node-b") if (two_nodes.folder / n / "models" / "tiny").is_dir())
    assert (two_nodes.folder / node / "models" / "tiny" / "model.keras").read_bytes() == made.path.read_bytes()
