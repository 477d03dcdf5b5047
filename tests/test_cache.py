"""The store without TensorFlow: atomic entries, checksums, damaged entries, stale temp folders."""

import json
import os
import subprocess
import sys

import pytest

from explorer.store.cache import CacheError, Store


def _fill(payload: bytes):
    return lambda d: (d / "model.tflite").write_bytes(payload)


def test_write_is_atomic_when_filling_fails(store):
    def boom(d):
        (d / "model.tflite").write_bytes(b"half")
        raise RuntimeError("killed mid-write")

    with pytest.raises(RuntimeError):
        store.write("variants", "abc123", {"label": "x"}, boom)
    assert not store.has("variants", "abc123")
    assert not store.entry_dir("variants", "abc123").exists()
    assert list((store.root / ".tmp").iterdir()) == []


def test_checksums_catch_truncation_and_listing_skips_damaged_entries(store):
    store.write("variants", "good1", {"label": "g"}, _fill(b"x" * 1000))
    store.write("variants", "trunc1", {"label": "t"}, _fill(b"y" * 1000))
    store.write("variants", "json1", {"label": "j"}, _fill(b"z" * 10))
    store.write("variants", "flip1", {"label": "f"}, _fill(b"w" * 10))
    (store.entry_dir("variants", "trunc1") / "model.tflite").write_bytes(b"y" * 10)
    (store.entry_dir("variants", "json1") / "meta.json").write_text("{not json")
    (store.entry_dir("variants", "flip1") / "model.tflite").write_bytes(b"W" * 10)
    good, bad = store.variants()
    assert [m["key"] for m in good] == ["good1"]
    reasons = {p.key: p.reason for p in bad}
    assert "does not match its checksum" in reasons["trunc1"]
    assert "not valid JSON" in reasons["json1"]
    assert "does not match its checksum" in reasons["flip1"]
    with pytest.raises(CacheError):
        store.verify("variants", "trunc1")


def test_latency_files_are_per_host_and_outside_the_checksums(store):
    store.write("variants", "k1", {"label": "k"}, _fill(b"m"))
    store.write_latency("k1", "hostA", {"p50_us": 10.0})
    store.write_latency("k1", "hostA", {"p50_us": 11.0})
    assert store.read_latency("k1", "hostA") == {"p50_us": 11.0}
    assert store.read_latency("k1", "hostB") is None
    store.verify("variants", "k1")  # re-measuring did not break the entry
    with pytest.raises(CacheError):
        store.write_latency("missing", "hostA", {})


def test_stale_temp_folders_of_dead_processes_are_removed(store):
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True).stdout.strip()
    (store.root / ".tmp").mkdir(parents=True)
    stale = store.root / ".tmp" / f"variants-k-{dead}-abcd"
    live = store.root / ".tmp" / f"variants-k-{os.getpid()}-abcd"
    stale.mkdir()
    live.mkdir()
    assert store.clean_stale() == [stale]
    assert live.exists()


def test_a_folder_without_meta_is_never_an_entry(store):
    folder = store.entry_dir("variants", "debris")
    folder.mkdir(parents=True)
    (folder / "model.tflite").write_bytes(b"partial")
    assert not store.has("variants", "debris")
    store.write("variants", "debris", {"label": "d"}, _fill(b"full"))
    assert json.loads((folder / "meta.json").read_text())["label"] == "d"
    assert (folder / "model.tflite").read_bytes() == b"full"


def test_keys_cannot_escape_the_cache(store):
    with pytest.raises(CacheError):
        store.entry_dir("variants", "../../etc")


def test_training_stages_never_land_in_the_shipped_cache(tmp_path, monkeypatch):
    from explorer.store import paths

    monkeypatch.setenv("EXPLORER_CACHE_DIR", str(tmp_path / "shipped"))
    monkeypatch.setenv("EXPLORER_STAGES_DIR", str(tmp_path / "local"))
    default = Store()
    assert default.entry_dir("variants", "k1").is_relative_to(paths.cache_dir())
    assert default.entry_dir("base", "k1").is_relative_to(tmp_path / "local")
    assert not default.entry_dir("tuned", "k1").is_relative_to(paths.cache_dir())
    explicit = Store(tmp_path / "mine")  # a cache folder named explicitly is self-contained
    assert explicit.entry_dir("base", "k1").is_relative_to(tmp_path / "mine")


def test_latency_at_several_threads_is_kept_apart_from_the_one_thread_view(store):
    store.write("variants", "k1", {"label": "k"}, _fill(b"m"))
    store.write_latency("k1", "hostA", {"p50_us": 10.0, "threads": 1, "measured_at": "1"})
    store.write_latency("k1", "hostB", {"p50_us": 6.0, "threads": 2, "measured_at": "2"}, threads=2)
    assert store.read_latency("k1", "hostB") is None and store.read_latency("k1", "hostB", 2)["p50_us"] == 6.0
    # another host's figure stands in only for the same kind of measurement
    assert store.latency_or_foreign("k1", "hostC")["threads"] == 1
    assert store.latency_or_foreign("k1", "hostC", 2)["threads"] == 2
    store.write("variants", "k2", {"label": "k"}, _fill(b"n"))
    store.write_latency("k2", "hostA", {"p50_us": 10.0, "threads": 1, "measured_at": "1"})
    assert store.latency_or_foreign("k2", "hostC", 2) is None


def test_shipped_stages_are_read_but_never_written_or_removed(tmp_path, monkeypatch):
    shipped = tmp_path / "shipped"
    monkeypatch.setenv("EXPLORER_CACHE_DIR", str(shipped))
    monkeypatch.setenv("EXPLORER_STAGES_DIR", str(tmp_path / "local"))
    Store(shipped).write("base", "b1", {"kind": "base"}, _fill(b"w"))  # the rebuild's own stages
    user = Store()
    assert user.has("base", "b1") and user.file_path("base", "b1", "model.tflite").read_bytes() == b"w"
    user.verify("base", "b1")
    user.remove("base", "b1")  # a user's store never deletes a shipped stage
    assert (shipped / "stages" / "base" / "b1" / "meta.json").is_file()
    user.write("base", "b1", {"kind": "base"}, _fill(b"mine"))  # a rebuilt stage goes to the user's folder
    assert user.found_dir("base", "b1").is_relative_to(tmp_path / "local")
    assert user.file_path("base", "b1", "model.tflite").read_bytes() == b"mine"


def test_the_default_folders_are_the_checkouts():
    from explorer.store import paths

    assert (paths.REPO_ROOT / "app.py").is_file() and (paths.REPO_ROOT / "cached_models").is_dir()
