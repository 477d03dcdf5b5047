"""Measurement targets: addresses checked before use, never through a shell; the agent measured through the
transport's code path in a fresh virtual environment holding only ai-edge-litert and numpy; bad targets fail
with their reason and store nothing."""

import base64
import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from explorer import record
from explorer.measure import host, targets
from explorer.measure.targets import Target, TargetError
from explorer.spec import VariantSpec
from explorer.store.cache import Store
from support import FAST_LATENCY, REPO


@pytest.mark.parametrize("name", ["a;rm -rf ~", "$(reboot)", "a b", "A", "x" * 41, "-n", ""])
def test_a_target_name_with_shell_characters_is_refused(name):
    with pytest.raises(TargetError, match="target name"):
        Target(name, "ssh://pi@raspberrypi")


def test_an_ssh_address_becomes_an_argv_for_the_system_ssh_and_bad_ones_are_refused():
    assert Target("pi", "ssh://pi@raspberrypi.local:2222").prefix() == (
        "ssh", "-T", "-o", "BatchMode=yes", "-o", "ConnectTimeout=10", "-p", "2222", "--", "pi@raspberrypi.local")
    assert Target("box", "ssh://box").prefix()[-1] == "box"  # user and port from ~/.ssh/config
    for bad in ("ssh://-oProxyCommand=sh@x", "ssh://pi@host;reboot", "ssh://pi@host:99999", "ssh://pi@ho st",
                "http://x", "command:"):
        with pytest.raises(TargetError):
            Target("t", bad)
    with pytest.raises(TargetError, match="python"):
        Target("t", "ssh://pi@x", python="python3; reboot")
    remote = Target("d", "command:docker exec -i phone sh -c").pool(size=1)
    assert remote.command[:5] == ("docker", "exec", "-i", "phone", "sh")  # words, not a shell line
    assert remote.command[-1].startswith("python3 -c 'import sys;") and remote.command[-1].endswith(" --serve")


def test_targets_are_kept_in_user_data_with_their_facts_added_listed_and_removed(tmp_path, monkeypatch):
    monkeypatch.setenv("EXPLORER_DATA_DIR", str(tmp_path))
    assert list(targets.load()) == ["local"] and targets.get("local").host == host.current()
    facts = {"host": {"cpu": "Cortex-A76", "cores": 4, "machine": "aarch64", "system": "Linux",
                      "generation": "0x41/0xd0b", "features": ["asimd", "asimddp"]}, "hostname": "pi",
             "python": "3.11.2", "versions": {"ai-edge-litert": "2.3.0", "numpy": "2.4.6"}}
    monkeypatch.setattr(targets, "check", lambda t: facts)  # a device this machine cannot reach
    added = targets.add(Target("pi", "ssh://pi@raspberrypi"))
    assert added.host.label == "Cortex-A76 (0x41/0xd0b, 4 cores)" and added.host.id != host.current().id
    with pytest.raises(TargetError, match="already"):
        targets.add(Target("pi", "ssh://other"))
    assert targets.get("pi").host == added.host and list(targets.load()) == ["local", "pi"]
    with pytest.raises(TargetError, match="not been reached"):
        Target("new", "ssh://x").host
    monkeypatch.setattr(targets, "check", lambda t: (_ for _ in ()).throw(TargetError("refused")))
    with pytest.raises(TargetError, match="refused"):
        targets.add(Target("gone", "ssh://gone"))  # not reachable: not kept
    assert "gone" not in targets.load()
    targets.remove("pi")
    with pytest.raises(TargetError):
        targets.remove("local")
    assert list(targets.load()) == ["local"]


@pytest.fixture(scope="module")
def agent_env(tmp_path_factory):
    """A fresh virtual environment with only the agent's packages (and theirs): no TensorFlow, no checkout."""
    from importlib import metadata

    venv = tmp_path_factory.mktemp("agent-venv")
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    pins = [f"ai-edge-litert=={metadata.version('ai-edge-litert')}", f"numpy=={metadata.version('numpy')}"]
    wheels = REPO / ".venv" / "wheels"  # downloaded by make setup-dev: no registry needed from here on
    assert (wheels / ".complete").exists(), "run make setup-dev: it keeps the agent's wheels in .venv/wheels"
    subprocess.run([str(venv / "bin" / "pip"), "install", "-q", "--disable-pip-version-check", "--no-index",
                    "--find-links", str(wheels), *pins], check=True)
    python = venv / "bin" / "python"
    for absent in ("tensorflow", "streamlit", "explorer"):
        assert subprocess.run([str(python), "-c", f"import {absent}"], cwd="/", capture_output=True).returncode != 0
    return python


@pytest.mark.slow
def test_the_agent_measures_through_the_transport_in_a_bare_environment_and_files_the_record_under_its_host(
        agent_env, tmp_path):
    from explorer.run import pipeline

    root = tmp_path / "cache"
    shutil.copytree(REPO / "cached_models", root, ignore=shutil.ignore_patterns("stages"))
    store = Store(root)
    found, _ = record.load_all(store, "x")
    variant = next(v for v in found if v.has_model and v.spec.quant == "int8")
    target = Target("venv", "command:sh -c", python=str(agent_env))  # ssh's code path, the prefix a local shell
    facts = targets.check(target)
    assert host.from_facts(facts).id == host.current().id  # the same machine, described the same way
    lat = pipeline.measure_latency(store, variant, target=target, **FAST_LATENCY)
    stored = json.loads(store.latency_path(variant.key, lat.host_id).read_text())
    assert stored["target"] == "venv" and stored["p50_us"] == lat.p50_us > 0
    assert stored["versions"] == facts["versions"] and stored["pinned_core"] is None
    assert lat.p50_ci_us[0] <= lat.p50_us <= lat.p50_ci_us[1] and len(lat.block_p50s_us) == FAST_LATENCY["blocks"]
    assert len(lat.ops) == len(stored["ops"]) >= 3 and lat.ops_total_us > 0  # the per-op profile, timed there too


def _script(path: Path, body: str) -> str:
    path.write_text("#!/bin/sh\n" + body)
    path.chmod(0o755)
    return str(path)


@pytest.mark.slow
def test_bad_targets_fail_with_their_reason_and_store_nothing(agent_env, tmp_path):
    from explorer.run import pipeline

    root = tmp_path / "cache"
    shutil.copytree(REPO / "cached_models", root, ignore=shutil.ignore_patterns("stages"))
    store = Store(root)
    variant = next(v for v in record.load_all(store, "x")[0] if v.has_model)
    before = sorted(p.name for p in (root / "variants" / variant.key / "latency").iterdir())
    crashing = _script(tmp_path / "crash", f'head -c 10 >/dev/null; echo "explorer-agent 1"; sleep 0.2; '
                                           f'echo "Segmentation fault" >&2; exit 139\n')
    cases = {
        "the connection was refused": Target("gone", "ssh://nobody@127.0.0.1:1"),
        "not the agent's greeting": Target("banner", "command:sh -c",
                                           python=_script(tmp_path / "banner", "echo 'Welcome to my box'; cat >/dev/null\n")),
        "Segmentation fault": Target("crash", "command:sh -c", python=crashing),
        "ai-edge-litert is not installed": Target("bare", "command:sh -c", python=shutil.which("python3") or "python3"),
    }
    for reason, target in cases.items():
        if reason.startswith("ai-edge-litert") and subprocess.run(
                [target.python, "-c", "import ai_edge_litert"], capture_output=True).returncode == 0:
            continue  # this machine's system Python has it: nothing to show
        with pytest.raises(TargetError, match=reason):
            pipeline.measure_latency(store, variant, target=target, **FAST_LATENCY)
    assert sorted(p.name for p in (root / "variants" / variant.key / "latency").iterdir()) == before  # nothing kept


@pytest.mark.slow
def test_the_pareto_page_shows_a_targets_own_latencies_and_offers_to_measure_the_rest(tmp_path, monkeypatch):
    import streamlit as st
    from streamlit.testing.v1 import AppTest

    root = tmp_path / "cache"
    shutil.copytree(REPO / "cached_models", root, ignore=shutil.ignore_patterns("stages"))
    store = Store(root)
    facts = {"host": {"cpu": "Cortex-A76", "cores": 4, "machine": "aarch64", "system": "Linux",
                      "generation": "0x41/0xd0b", "features": ["asimd", "asimddp"]}, "hostname": "pi",
             "python": "3.11.2", "versions": {"ai-edge-litert": "2.3.0", "numpy": "2.4.6"}}
    pi = host.from_facts(facts)
    measured = [v for v in record.load_all(store, "x")[0] if v.has_model and v.dataset == "fashion-mnist"][:5]
    for v in measured:  # as if its agent had timed five of them
        store.write_latency(v.key, pi.id, {**v.latency.to_dict(), "host": pi.to_dict(), "target": "pi",
                                           "p50_us": v.latency.p50_us * 3})
    monkeypatch.setenv("EXPLORER_CACHE_DIR", str(root))
    monkeypatch.setenv("EXPLORER_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setattr(targets, "check", lambda t: facts)
    targets.add(Target("pi", "ssh://pi@raspberrypi"))
    st.cache_data.clear()
    st.cache_resource.clear()
    at = AppTest.from_file(str(REPO / "app.py"), default_timeout=60)
    at.run()
    at.switch_page(str(REPO / "pages" / "pareto.py")).run()
    assert not at.exception
    assert at.sidebar.selectbox(key="target").options == ["this machine", "pi"]
    at.sidebar.selectbox(key="target").set_value("pi").run()
    assert not at.exception
    caption = " ".join(c.value for c in at.caption)
    assert "**Cortex-A76 (0x41/0xd0b, 4 cores)**" in caption and "target **pi**" in caption
    chart = json.loads(at.get("plotly_chart")[0].proto.spec)
    count = lambda t: len(t["x"]) if isinstance(t["x"], list) else len(base64.b64decode(t["x"]["bdata"])) // np.dtype(  # noqa: E731
        t["x"]["dtype"]).itemsize
    filled = sum(count(t) for t in chart["data"] if t.get("name") in ("fp32", "dynamic", "float16", "int8", "qat-int8"))
    hollow = sum(count(t) for t in chart["data"] if "(other host)" in str(t.get("name")))
    assert 1 <= filled <= len(measured) and hollow > 10  # its own figures filled; the others another host's
    button = next(b for b in at.sidebar.button if b.label.startswith("Measure on target pi"))
    assert not button.disabled  # the rest: queued in the worker, through the agent
    at.switch_page(str(REPO / "pages" / "details.py"))
    at.session_state["detail_key"] = measured[0].key
    at.run()
    assert not at.exception and at.sidebar.selectbox(key="target").value == "pi"
    assert any(h.value == "Latency on target pi" for h in at.subheader)
    p50 = at.metric[3]
    assert p50.value == f"{measured[0].latency.p50_us * 3:.1f} µs" and "another host" not in p50.proto.help  # its own


ADB = REPO / "tests" / "data" / "adb"


def test_benchmark_model_output_is_parsed_from_both_formats():
    from explorer.measure import adb

    new = adb.parse((ADB / "benchmark_model-2.16.txt").read_text())  # percentiles printed
    assert (new.count, new.avg_us, new.median_us, new.p5_us, new.p95_us) == (8466, 117.12, 113.0, 110.0, 136.0)
    assert (new.min_us, new.max_us, new.std_us, new.init_us, new.first_us) == (108.0, 495.0, 17.0, 4117.0, 412.0)
    old = adb.parse((ADB / "benchmark_model-2.4.txt").read_text())  # no percentiles: the timed phase's average
    assert (old.count, old.avg_us, old.median_us, old.init_us) == (8101, 123.35, None, 5031.0)
    with pytest.raises(adb.AdbError, match="printed no timings"):
        adb.parse("ERROR: Could not open '/data/local/tmp/x.tflite'.\nFailed to initialize the interpreter")


@pytest.fixture
def fake_adb(tmp_path, monkeypatch):
    device = tmp_path / "device"
    device.mkdir()
    monkeypatch.setenv("EXPLORER_ADB", str(ADB / "fake_adb.py"))
    monkeypatch.setenv("FAKE_ADB_DIR", str(device))
    monkeypatch.setenv("FAKE_ADB_SERIAL", "R58M123ABC")
    monkeypatch.setenv("FAKE_ADB_OUTPUT", str(ADB / "benchmark_model-2.16.txt"))
    shipped = Store(REPO / "cached_models")
    key = shipped.variant_keys()[0]
    root = tmp_path / "cache"
    shutil.copytree(shipped.entry_dir("variants", key), root / "variants" / key)  # one model is enough
    store = Store(root)
    return store, record.load(store, key, "x"), device


@pytest.mark.slow  # a stand-in adb: a Python process per adb call
def test_an_android_target_is_timed_by_benchmark_model_and_its_record_says_what_it_lacks(fake_adb, monkeypatch):
    from explorer.run import pipeline

    store, variant, device = fake_adb
    phone = Target("phone", "adb://R58M123ABC")
    facts = targets.check(phone)
    assert facts["host"]["system"] == "Android" and facts["host"]["features"] == ["asimd", "asimddp", "asimdhp", "fphp"]
    lat = pipeline.measure_latency(store, variant, target=phone)
    assert lat.host_id == host.from_facts(facts).id != host.current().id
    stored = json.loads(store.latency_path(variant.key, lat.host_id).read_text())
    assert stored["p50_us"] == 113.0 and stored["runs"] == 3 * 8466 and stored["p90_us"] is None
    assert stored["tool"]["p50_from"] == "median" and set(stored["lacks"]) >= {"p90_us", "p99_us", "ops"}
    assert stored["p50_ci_us"][0] <= 113.0 <= stored["p50_ci_us"][1]
    assert list(device.iterdir()) == []  # the pushed model is removed from the device
    monkeypatch.setenv("FAKE_ADB_OUTPUT", str(ADB / "benchmark_model-2.4.txt"))
    assert pipeline.measure_latency(store, variant, target=phone).p50_us == 123.35  # the average, marked
    assert record.load(store, variant.key, lat.host_id).latency.tool["p50_from"].startswith("average")


@pytest.mark.slow  # a stand-in adb: a Python process per adb call
def test_a_bad_android_target_fails_with_its_reason_and_stores_nothing(fake_adb, monkeypatch):
    from explorer.run import pipeline

    store, variant, device = fake_adb
    before = sorted(p.name for p in (store.root / "variants" / variant.key / "latency").iterdir())
    for env, value, reason in (("FAKE_ADB_SERIAL", "OTHER", "device 'R58M123ABC' not found"),
                               ("FAKE_ADB_NO_BINARY", "1", "no benchmark_model at"),
                               ("FAKE_ADB_OUTPUT", "crash", "Segmentation fault"),
                               ("FAKE_ADB_OUTPUT", str(ADB / "fake_adb.py"), "printed no timings")):
        with monkeypatch.context() as m:
            m.setenv(env, value)
            with pytest.raises(TargetError, match=reason):
                pipeline.measure_latency(store, variant, target=Target("phone", "adb://R58M123ABC"))
    assert sorted(p.name for p in (store.root / "variants" / variant.key / "latency").iterdir()) == before
    with pytest.raises(TargetError, match="adb://SERIAL"):
        Target("phone", "adb://R58;reboot")


@pytest.mark.slow
def test_a_ray_target_times_on_the_node_with_its_resource_and_says_when_none_offers_it(tmp_path):
    ray = pytest.importorskip("ray")
    from ray.cluster_utils import Cluster

    from explorer.run import pipeline

    root = tmp_path / "cache"
    shutil.copytree(REPO / "cached_models", root, ignore=shutil.ignore_patterns("stages"))
    store = Store(root)
    variant = next(v for v in record.load_all(store, "x")[0] if v.has_model)
    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 1, "include_dashboard": False})
    try:
        node = cluster.add_node(num_cpus=1, resources={"phone": 1})  # a second node, the one to measure on
        phone = Target("phone", f"ray:{cluster.address}#phone")
        facts = targets.check(phone)
        assert host.from_facts(facts).id == host.current().id  # both local nodes are this machine
        lat = pipeline.measure_latency(store, variant, target=phone, **FAST_LATENCY)
        stored = json.loads(store.latency_path(variant.key, lat.host_id).read_text())
        assert stored["target"] == "phone" and stored["p50_us"] > 0 and len(stored["block_p50s_us"]) == 3
        assert stored["ops"] and stored["ops_total_us"] > 0
        assert facts["ray_node"] == node.node_id  # on the node with the resource, not the head
        with pytest.raises(TargetError, match="offers the resource 'watch'"):
            targets.check(Target("watch", f"ray:{cluster.address}#watch"))
    finally:
        ray.shutdown()
        cluster.shutdown()


@pytest.mark.slow
def test_the_cli_measures_on_a_target_and_prints_the_front_in_its_latencies(agent_env, tmp_path, monkeypatch, capsys):
    from explorer.run import cli

    monkeypatch.setenv("EXPLORER_DATA_DIR", str(tmp_path / "data"))
    root = tmp_path / "cache"
    shutil.copytree(REPO / "cached_models", root, ignore=shutil.ignore_patterns("stages"))
    variant = next(v for v in record.load_all(Store(root), "x")[0] if v.has_model)
    assert cli.main(["targets", "add", "venv", "command:sh -c", "--python", str(agent_env)]) == 0
    assert cli.main(["targets", "add", "bad;name", "ssh://x"]) == 2  # refused before anything runs
    capsys.readouterr()
    assert cli.main(["--cache", str(root), "measure", "--target", "venv", "--key", variant.key]) == 0
    rec = json.loads(Store(root).latency_path(variant.key, host.current().id).read_text())
    assert rec["target"] == "venv"  # timed by the target's agent, filed under its host
    assert cli.main(["--cache", str(root), "pareto", "--target", "venv"]) == 0
    assert "Non-dominated" in capsys.readouterr().out


@pytest.mark.slow
def test_a_preview_band_is_timed_on_the_target_through_the_worker(agent_env, tmp_path, monkeypatch):
    from explorer.run import preview
    from explorer.run.executors import JobRequest, LocalExecutor
    from support import TINY, stop_workers, wait_until, worker_log_tail

    monkeypatch.setenv("EXPLORER_DATA_DIR", str(tmp_path / "data"))
    targets.add(Target("venv", "command:sh -c", python=str(agent_env)))
    target = targets.get("venv")
    spec = VariantSpec(**TINY)
    executor = LocalExecutor(Store(tmp_path / "cache"))
    try:
        job = executor.submit(JobRequest.preview(spec, target), "alice")
        assert job.label.endswith(" on venv")
        done = wait_until(lambda: (lambda j: j if not j.live else None)(executor.progress(job.id)), "the preview", 180)
        assert done.state == "done", done.message + worker_log_tail()
    finally:
        stop_workers(tmp_path / "data")
    made = preview.read(spec, target=target)
    assert made.latency.target == "venv" and made.fields["host"] == target.host.id and made.latency.p50_us > 0
