"""The results index (no TensorFlow): the same table as reading every entry, kept up to date by fingerprints,
re-reading only what changed, and rebuilt when its file is missing or damaged."""

import json
import shutil

import pandas as pd
import pytest

from explorer import record
from explorer.present import results
from explorer.store.cache import Store
from explorer.store.index import ResultsIndex
from support import REPO


@pytest.fixture
def shipped(tmp_path):
    """A copy of the shipped cache, and the host its latencies were measured on."""
    root = tmp_path / "cache"
    shutil.copytree(REPO / "cached_models", root, ignore=shutil.ignore_patterns("stages", ".tmp", ".locks"))
    store = Store(root)
    some = next((root / "variants").glob("*/latency/*.json"))
    return store, json.loads(some.read_text())["host"]["id"]


def _indexed(index: ResultsIndex, host_id: str, foreign: bool = True) -> pd.DataFrame:
    found, problems = index.rows(host_id, foreign=foreign)
    assert problems == []
    return results.table_of([results.row_of(v, lat, host_id) for v, lat in found])


@pytest.mark.parametrize("host_id", ["shipped", "a-new-host"])
def test_the_index_gives_the_table_reading_every_entry_gives(shipped, tmp_path, host_id):
    store, shipped_host = shipped
    host_id = shipped_host if host_id == "shipped" else host_id
    index = ResultsIndex(store, tmp_path / "index.sqlite3")
    for foreign in (True, False):
        direct = results.table(record.load_all(store, host_id, foreign=foreign)[0], host_id)
        pd.testing.assert_frame_equal(_indexed(index, host_id, foreign), direct)
    assert len(direct) == len(store.variant_keys()) + len(store.variant_keys("evidence")) > 50


def test_changes_are_picked_up_and_only_changed_entries_are_read_again(shipped, tmp_path, monkeypatch):
    store, host_id = shipped
    index = ResultsIndex(store, tmp_path / "index.sqlite3")
    first = index.refresh()
    assert index.refresh() == first  # nothing changed: same version
    reads = []
    verify = Store.verify
    monkeypatch.setattr(Store, "verify", lambda self, kind, key, meta=None: reads.append(key) or verify(self, kind, key, meta))

    key, other = store.variant_keys()[:2]
    lat = store.read_latency(key, host_id)
    store.write_latency(key, "another-host", {**lat, "p50_us": 1.0, "host": {**lat["host"], "id": "another-host"}})
    assert index.refresh() != first and reads == [key]
    shown = _indexed(index, "another-host", foreign=False).set_index("key")
    assert shown.loc[key, "p50_us"] == 1.0 and pd.isna(shown.loc[other, "p50_us"])

    reads.clear()
    store.remove("variants", other)
    (store.entry_dir("variants", key) / "model.tflite").write_bytes(b"damaged")
    index.refresh()
    found, problems = index.rows(host_id)
    assert reads == [key] and other not in {v["key"] for v, _ in found}
    assert [p.key for p in problems] == [key] and "checksum" in problems[0].reason


def test_a_missing_or_damaged_index_file_is_rebuilt_from_the_entries(shipped, tmp_path):
    store, host_id = shipped
    path = tmp_path / "index.sqlite3"
    expected = _indexed(ResultsIndex(store, path), host_id)
    path.write_bytes(b"not a database" * 100)
    pd.testing.assert_frame_equal(_indexed(ResultsIndex(store, path), host_id), expected)
    path.unlink()
    pd.testing.assert_frame_equal(_indexed(ResultsIndex(store, path), host_id), expected)


def test_an_empty_cache_has_an_empty_index(tmp_path):
    index = ResultsIndex(Store(tmp_path / "nothing"), tmp_path / "index.sqlite3")
    assert index.rows("host") == ([], [])


def test_a_seed_replicate_kept_as_evidence_counts_in_its_seed_point_without_a_model_or_a_measurement(shipped, tmp_path,
                                                                                                    capsys):
    """The shipped cache keeps further seeds as evidence: accuracy and predictions, no model, no latency."""
    from explorer.run import cli
    from explorer.store.cache import CacheError
    from pages.ui.loading import Results

    store, host_id = shipped
    table = results.table(record.load_all(store, host_id)[0], host_id)
    seeds = table[table["label"].str.startswith("fashion-mnist-d2w32-fc128-fp32")].sort_values("seed")
    assert list(seeds["seed"]) == [0, 1, 2]
    first, lean = seeds["key"].iloc[0], seeds["key"].iloc[-1]
    if store.has("variants", lean):  # the shipped cache may hold it as a full variant: make it evidence here
        predictions = store.read_predictions(lean)
        store.keep_as_evidence(lean)
        assert (store.read_predictions(lean) == predictions).all()
    assert not store.has("variants", lean) and store.has("evidence", lean)
    assert sorted(p.name for p in (store.root / "evidence" / lean).iterdir()) == ["meta.json", "predictions.u8"]

    index = ResultsIndex(store, tmp_path / "index.sqlite3")
    for shown in (_indexed(index, "a-new-host"), results.table(record.load_all(store, "a-new-host")[0], "a-new-host")):
        row = shown.set_index("key").loc[lean]
        assert not row["has_model"] and pd.isna(row["p50_us"]) and row["accuracy_lo"] < row["accuracy"]
        point = results.group_seeds(shown).set_index("key").loc[first]
        assert point["seeds"] == 3 and lean in point["replicates"]
        assert point["p50_us"] == pytest.approx(shown.set_index("key").loc[seeds["key"].iloc[:2], "p50_us"].mean())
        assert lean not in Results(shown, []).unmeasured_here  # never queued for timing: it has no model
        assert first in Results(shown, []).unmeasured_here
    assert record.load(store, lean, host_id).has_model is False
    assert cli.main(["--cache", str(store.root), "measure", "--key", lean]) != 0
    assert "kept without its model" in capsys.readouterr().err
    with pytest.raises(CacheError, match="no test predictions"):
        bare = store.variant_keys()[0]
        store.write("variants", "0" * 16, {k: v for k, v in store.read_meta("variants", bare).items()
                                            if k not in ("key", "files")}, lambda d: (d / "model.tflite").write_bytes(b"x"))
        store.keep_as_evidence("0" * 16)
