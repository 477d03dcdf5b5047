"""Auto-explore: a tiny multi-objective search on digits, every trial a real cached variant."""

import pytest

from support import FAST_LATENCY, TINY
from explorer.run import pipeline, search
from explorer.spec import SpecError, VariantSpec
from explorer.store.cache import Store

pytestmark = pytest.mark.slow

SPACE = search.Space({"width": [4, 8, 16], "dense": [16, 32], "quant": ["fp32", "dynamic", "int8"]},
                     base=VariantSpec(**{**TINY, "epochs": 3}))


@pytest.fixture()
def counted(tmp_path, monkeypatch):
    """A fresh store and study database, and a builder that counts what it trains."""
    monkeypatch.setenv("EXPLORER_DATA_DIR", str(tmp_path / "data"))
    store = Store(tmp_path / "cache")
    calls = {"built": 0, "trained": 0}

    def build(spec):
        variant, report = pipeline.ensure(spec, store, latency_kwargs=FAST_LATENCY)
        calls["built"] += 1
        calls["trained"] += report.trained
        return variant, report

    return store, build, calls


def test_a_tiny_search_keeps_its_budget_stores_every_trial_and_respects_a_constraint(counted):
    store, build, calls = counted
    limit = search.Constraints(max_size_kb=8.0)
    out = search.run(SPACE, study_name="tiny", constraints=limit, trials=6, store=store, build=build)
    assert len(out) == 6 == calls["built"]
    assert all(store.has("variants", t.key) for t in out)
    assert {t.feasible for t in out} == {True, False}  # some fit in 8 KB, some do not
    assert all(t.feasible == (t.size_kb <= 8.0) for t in out)
    best = search.front(out)
    assert best and all(t.feasible for t in best)
    assert all(0 < t.val_accuracy <= 1 and t.p50_us > 0 for t in out)


def test_a_study_resumes_by_name_without_rebuilding_and_stops_on_request(counted):
    store, build, calls = counted
    first = search.run(SPACE, study_name="again", trials=3, store=store, build=build)
    trained_first = calls["trained"]
    asked = []
    resumed = search.run(SPACE, study_name="again", trials=10, store=store, build=build,
                         on_trial=asked.append, should_stop=lambda: len(asked) >= 2)
    assert len(resumed) == 5 and [t.number for t in resumed[:3]] == [t.number for t in first]
    repeats = [t for t in asked if t.key in {f.key for f in first}]
    assert all(not t.trained for t in repeats)  # a variant a finished trial built is read from the cache
    assert calls["trained"] <= trained_first + 2


def test_a_bad_space_is_refused_before_anything_runs():
    with pytest.raises(SpecError, match="depth"):
        search.Space({"depth": [1, 9]})
    with pytest.raises(SpecError, match="needs at least one value"):
        search.Space({"width": []})


def test_the_cli_searches_resumes_by_name_and_prints_the_front(tmp_path, monkeypatch, capsys):
    from explorer.run import cli

    monkeypatch.setenv("EXPLORER_DATA_DIR", str(tmp_path / "data"))
    argv = ["--cache", str(tmp_path / "cache"), "search", "--dataset", "digits", "--depth", "1", "--width", "4", "8",
            "--quant", "fp32", "int8", "--epochs", "3", "--min-steps", "0", "--learning-rate", "0.01",
            "--batch-size", "32", "--trials", "2", "--study", "cli"]
    assert cli.main(argv) == 0
    assert cli.main(argv) == 0  # the same name: two more trials on top of the first two
    out = capsys.readouterr()
    assert "val_accuracy" in out.out and "4 trials in all" in out.err
    with pytest.raises(SystemExit):  # argparse refuses a budget it cannot read, before anything runs
        cli.main(argv[:-4] + ["--budget", "soon"])
    assert "must be a duration such as 90s, 10m or 1h" in capsys.readouterr().err
