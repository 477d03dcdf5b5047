"""The typed record and its stored forms (no TensorFlow, no Streamlit): round trips on the shipped cache."""

import json

from explorer import record
from explorer.store.cache import Store
from explorer.record import FORMAT, Latency, VariantRecord


def test_every_shipped_meta_round_trips_through_the_record():
    store = Store()  # the tests' copy of the shipped cache (conftest)
    metas, problems = store.variants()
    assert metas and not problems
    for meta in metas:
        v = VariantRecord.from_meta(meta)
        again = v.to_meta()
        assert again["format"] == FORMAT and again["label"] == v.spec.label()
        for section in ("spec", "dataset", "metrics", "layers", "stages", "build"):
            assert again[section] == meta[section], (v.label, section)
        assert v.size_kb == meta["metrics"]["size_bytes"] / 1000
        assert v.real_sparsity == 1 - meta["metrics"]["nonzero_params"] / meta["metrics"]["params"]


def test_latency_round_trips_and_knows_its_host():
    from support import REPO

    store = Store(REPO / "cached_models")  # the shipped records (the session's cache gains tests' own)
    key = store.variant_keys()[0]
    path = next((store.entry_dir("variants", key) / "latency").glob("*.json"))
    stored = json.loads(path.read_text())
    lat = Latency.from_dict(stored)
    written = lat.to_dict()
    assert {k: written[k] for k in stored} == stored  # every stored field kept as it was
    assert Latency.from_dict(lat.to_dict()) == lat
    quick = Latency.from_dict({**stored, "provisional": True, "throughput_ips": None, "ops": []})
    assert quick.provisional and Latency.from_dict(quick.to_dict()).to_dict() == quick.to_dict()
    assert lat.on(stored["host"]["id"]) and not lat.on("another")
    assert lat.host_label == stored["host"]["label"] and "samples_us" not in lat.provenance()


def test_load_all_takes_this_hosts_latency_else_another_hosts(tmp_path):
    import shutil

    from support import REPO

    root = tmp_path / "cache"
    shutil.copytree(REPO / "cached_models", root)
    store = Store(root)
    key = store.variant_keys()[0]
    shipped = next((store.entry_dir("variants", key) / "latency").glob("*.json"))
    host_id = json.loads(shipped.read_text())["host"]["id"]
    here = {v.key: v for v in record.load_all(store, host_id)[0]}
    assert here[key].measured_here(host_id)
    elsewhere = {v.key: v for v in record.load_all(store, "a-new-host")[0]}
    assert elsewhere[key].latency is not None and not elsewhere[key].measured_here("a-new-host")
    assert {v.key: v for v in record.load_all(store, "a-new-host", foreign=False)[0]}[key].latency is None


def test_an_intact_entry_that_is_not_a_variant_record_is_reported_not_raised(tmp_path):
    store = Store(tmp_path / "cache")
    store.write("variants", "c" * 16, {"spec": {"dataset": "digits"}}, lambda d: (d / "model.tflite").write_bytes(b"x"))
    found, problems = record.load_all(store, "host")
    assert found == [] and problems[0].key == "c" * 16 and "not a variant record" in problems[0].reason
