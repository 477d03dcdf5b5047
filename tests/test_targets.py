"""Measurement targets: addresses checked before use, never through a shell; the agent measured through the
transport's code path in a fresh virtual environment holding only ai-edge-litert and numpy; bad targets fail
with their reason and store nothing."""

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from explorer import record
from explorer.measure import host, targets
from explorer.measure.targets import Target, TargetError
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


def test_targets_are_kept_in_user_data_added_listed_and_removed(tmp_path, monkeypatch):
    monkeypatch.setenv("EXPLORER_DATA_DIR", str(tmp_path))
    assert list(targets.load()) == ["local"]
    targets.add(Target("pi", "ssh://pi@raspberrypi"))
    with pytest.raises(TargetError, match="already"):
        targets.add(Target("pi", "ssh://other"))
    assert targets.get("pi").address == "ssh://pi@raspberrypi" and list(targets.load()) == ["local", "pi"]
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
    subprocess.run([str(venv / "bin" / "pip"), "install", "-q", "--disable-pip-version-check", *pins], check=True)
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
