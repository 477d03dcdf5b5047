"""Search trials built as Ray tasks on a local cluster give the entries a local search gives."""

import pytest

from support import FAST_LATENCY, TINY
from explorer import record
from explorer.measure import host
from explorer.run import search, search_space
from explorer.spec import VariantSpec
from explorer.store.cache import Store

pytestmark = pytest.mark.slow


@pytest.fixture
def ray_cluster():
    ray = pytest.importorskip("ray")
    yield
    ray.shutdown()


def test_a_tiny_search_through_a_local_ray_cluster_gives_the_same_entries(tmp_path, monkeypatch, ray_cluster):
    from explorer.run import cluster

    monkeypatch.setenv("EXPLORER_DATA_DIR", str(tmp_path / "data"))  # before the cluster starts: it inherits it
    space = search_space.Space({"width": [4, 8], "quant": ["fp32", "int8"]}, base=VariantSpec(**{**TINY, "epochs": 3}))
    here = Store(tmp_path / "local")
    local = search.run(space, search.SearchConfig(study_name="local", trials=4), store=here,
                       builds=search.LocalBuilds(here, latency_kwargs=FAST_LATENCY))

    store = Store(tmp_path / "ray")
    builds = cluster.RayBuilds(store, "local", latency_kwargs=FAST_LATENCY)
    assert builds.parallelism == host.current().cores  # one trial per core
    remote = search.run(space, search.SearchConfig(study_name="ray", trials=4), store=store, builds=builds)

    assert len(remote) == 4 and {t.key for t in remote} == {t.key for t in local}
    assert {t.key: (t.test_accuracy, t.val_accuracy) for t in remote} == \
           {t.key: (t.test_accuracy, t.val_accuracy) for t in local}
    here_id = host.current().id
    for t in remote:
        v = record.load(store, t.key, here_id)  # landed intact: checksums verified
        assert v.latency is not None and v.latency.on(here_id)  # timed on this host, the head
        assert [p.stem for p in (store.entry_dir("variants", t.key) / "latency").glob("*.json")] == [here_id]
    for width in (4, 8):  # the bases the tasks trained are in the head's cache, for later what-ifs
        assert store.has("base", space.base.replace(width=width).base_key())


def test_a_cluster_that_cannot_be_reached_is_a_clear_error(tmp_path, monkeypatch, capsys, ray_cluster):
    from explorer.run import cli

    monkeypatch.setenv("EXPLORER_DATA_DIR", str(tmp_path / "data"))
    argv = ["--cache", str(tmp_path / "cache"), "search", "--dataset", "digits", "--trials", "1",
            "--ray", "127.0.0.1:9"]
    assert cli.main(argv) != 0
    assert "cannot be reached" in capsys.readouterr().err
