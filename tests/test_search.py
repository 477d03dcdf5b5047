"""Auto-explore: a tiny multi-objective search on digits, every trial a real cached variant."""

import json
import sys
import time

import pytest

from support import FAST_LATENCY, PLAIN_FLAGS, TINY
from explorer.measure import host
from explorer.run import search, search_space, study_process
from explorer.spec import SpecError, VariantSpec
from explorer.store.cache import Store

pytestmark = pytest.mark.slow

SPACE = search_space.Space({"width": [4, 8, 16], "dense": [16, 32], "quant": ["fp32", "dynamic", "int8"]},
                     base=VariantSpec(**{**TINY, "epochs": 3, "width": 4}))  # the base is the fast end: one start


@pytest.fixture()
def counted(tmp_path, monkeypatch):
    """A fresh store and study database, and local builds that count what they build and train."""
    monkeypatch.setenv("EXPLORER_DATA_DIR", str(tmp_path / "data"))
    store = Store(tmp_path / "cache")
    calls = {"built": 0, "trained": 0}

    class Counted(search.LocalBuilds):
        def build(self, spec, watch=None):
            variant, report = super().build(spec, watch)
            calls["built"] += 1
            calls["trained"] += report.trained
            return variant, report

    return store, Counted(store, latency_kwargs=FAST_LATENCY), calls


def test_a_tiny_search_keeps_its_budget_stores_every_trial_and_respects_a_constraint(counted):
    store, build, calls = counted
    limit = search.Constraints(max_size_kb=8.0)
    out = search.run(SPACE, search.SearchConfig(study_name="tiny", constraints=limit, trials=6, economize=False), store=store, builds=build)
    assert len(out) == 6 == calls["built"] == len({t.key for t in out})  # six distinct variants
    assert all(store.has("variants", t.key) for t in out)
    assert {t.feasible for t in out} == {True, False}  # some fit in 8 KB, some do not
    assert all(t.feasible == (t.size_kb <= 8.0) for t in out)
    best = search.front(out)
    assert best and all(t.feasible for t in best)
    feasible = [t for t in out if t.feasible]
    for t in best:  # nothing feasible is at least as fast and more accurate, or faster and as accurate
        assert not any(o.p50_us <= t.p50_us and o.val_accuracy > t.val_accuracy or
                       o.p50_us < t.p50_us and o.val_accuracy >= t.val_accuracy for o in feasible)
    assert max(feasible, key=lambda t: t.val_accuracy).val_accuracy == max(t.val_accuracy for t in best)
    assert all(0 < t.val_accuracy <= 1 and t.p50_us > 0 for t in out)
    assert all(t.val_interval.lo <= t.val_accuracy <= t.val_interval.hi and t.test_interval.n == 1 for t in out)  # intervals


def test_a_study_resumes_by_name_without_rebuilding_and_stops_on_request(counted):
    store, build, calls = counted
    first = search.run(SPACE, search.SearchConfig(study_name="again", trials=3), store=store, builds=build)
    trained_first = calls["trained"]
    asked = []
    resumed = search.run(SPACE, search.SearchConfig(study_name="again", trials=10), store=store, builds=build,
                         on_trial=asked.append, should_stop=lambda: len(asked) >= 2)
    assert len(resumed) == 5 and [t.number for t in resumed[:3]] == [t.number for t in first]
    repeats = [t for t in asked if t.key in {f.key for f in first}]
    assert all(not t.trained for t in repeats)  # a variant a finished trial built is read from the cache
    assert calls["trained"] <= trained_first + 2


def test_a_trained_trials_siblings_share_its_base_and_come_cheapest_first():
    space = search_space.Space({"width": [4, 8], "quant": ["fp32", "int8", "qat-int8", "dynamic"], "epochs": [3]},
                         base=VariantSpec(**TINY))
    tried = {space.spec({"width": 4, "quant": q}).key() for q in ("fp32", "dynamic")}
    assert space.spec({"width": 4, "quant": "int8"}).epochs == 3  # the fixed fields apply
    assert space.siblings({"width": 4, "quant": "fp32"}, tried) == [{"width": 4, "quant": q} for q in ("int8", "qat-int8")]
    assert space.siblings({"width": 4, "quant": "qat-int8"}, tried) == [{"width": 4, "quant": "int8"}]
    assert space.siblings({"width": 8, "quant": "int8"}, set()) == [  # conversions, then QAT's fine-tune
        {"width": 8, "quant": q} for q in ("fp32", "dynamic", "qat-int8")]
    pruning = search_space.Space({"channels": [0.0, 0.25, 0.5], "quant": ["fp32", "int8"], "epochs": [3, 5]},
                           base=VariantSpec(**TINY))
    assert pruning.siblings({"channels": 0.5, "quant": "int8", "epochs": 3}, set()) == [  # other epochs: another base
        {"channels": 0.0, "quant": "fp32", "epochs": 3}, {"channels": 0.0, "quant": "int8", "epochs": 3},  # the base,
        {"channels": 0.5, "quant": "fp32", "epochs": 3},  # and the pruned stage, converted; then another pruning
        {"channels": 0.25, "quant": "fp32", "epochs": 3}, {"channels": 0.25, "quant": "int8", "epochs": 3}]


def test_a_new_study_starts_from_the_base_variant_the_fast_end_and_the_lever_recipe():
    space = search_space.Space({"depth": [1, 2], "width": [32, 16], "batchnorm": [False, True],
                          "padding": ["valid", "same"], "dropout": [0.0, 0.3], "epochs": [5, 20]})
    base = {"batchnorm": False, "padding": "valid", "dropout": 0.0, "epochs": 5}
    assert space.starts() == [
        {"depth": 2, "width": 32, **base},  # the base first: it times the others' predictions
        {"depth": 1, "width": 16, **base, "epochs": 20},  # the base network at the least depth and width, longest
        {"depth": 2, "width": 32, "batchnorm": True, "padding": "same", "dropout": 0.3, "epochs": 20}]
    assert search_space.Space({"depth": [1, 3], "epochs": [5, 20]}).starts() == [{"depth": 1, "epochs": 20}]  # no depth 2
    assert search_space.Space({"depth": [2, 3], "epochs": [5, 10]}).starts() == [{"depth": 2, "epochs": 5}]  # one: the base
    assert search_space.Space({"width": [16, 32], "epochs": [20, 5, 10]}).starts()[1] == {"width": 16, "epochs": 20}


def test_a_guided_study_starts_from_the_base_and_converts_it_next_an_unguided_one_leaves_all_to_the_sampler(counted):
    import optuna

    store, build, calls = counted
    guided = search.run(SPACE, search.SearchConfig(study_name="guided", trials=3), store=store, builds=build)
    assert [t.key for t in guided] == [SPACE.base.replace(quant=q).key() for q in ("fp32", "dynamic", "int8")]
    assert calls["trained"] == 1  # the base trained once; its two siblings were conversions
    search.run(SPACE, search.SearchConfig(study_name="unguided", trials=3, guided=False), store=store, builds=build)
    trials = optuna.load_study(study_name="unguided", storage=search.storage_url()).trials
    assert len(trials) == 3 and not any("fixed_params" in t.system_attrs for t in trials)  # nothing enqueued


def test_a_resumed_study_tries_its_trained_trials_untried_siblings_first(counted):
    store, build, calls = counted
    search.run(SPACE, search.SearchConfig(study_name="resumed", trials=1), store=store, builds=build)
    again = search.run(SPACE, search.SearchConfig(study_name="resumed", trials=1), store=store, builds=build)
    assert [t.key for t in again] == [SPACE.base.replace(quant=q).key() for q in ("fp32", "dynamic")]
    assert calls["trained"] == 1


def test_tpe_samples_at_random_until_it_has_trials_of_its_own_the_guided_ones_do_not_count():
    import optuna

    knobs = {name: optuna.distributions.CategoricalDistribution(list(range(8))) for name in ("a", "b", "c")}

    def picks(sampler, guided: int, n: int) -> list[dict]:
        study = optuna.create_study(directions=["maximize", "minimize"], sampler=sampler)
        for i in range(guided):  # queued by the search: all alike, as starts and conversions are
            study.enqueue_trial({"a": 0, "b": 0, "c": i % 2}, user_attrs={search.GUIDED: "start"})
            study.tell(study.ask(knobs), [0.9, 10.0 + i])
        out = []
        for _ in range(n):
            trial = study.ask(knobs)
            out.append(trial.params)
            study.tell(trial, [sum(trial.params.values()) / 21, 5.0 + trial.params["a"]])
        return out

    alone = picks(optuna.samplers.RandomSampler(seed=3), 0, search.STARTUP + 4)
    tpe = picks(search.make_sampler("tpe", 3), 6, search.STARTUP + 4)
    assert tpe[:search.STARTUP] == alone[:search.STARTUP]  # its own start-up, however many trials were queued
    assert tpe[search.STARTUP:] != alone[search.STARTUP:]  # then TPE models the space


def test_a_bad_space_is_refused_before_anything_runs():
    with pytest.raises(SpecError, match="depth"):
        search_space.Space({"depth": [1, 9]})
    with pytest.raises(SpecError, match="needs at least one value"):
        search_space.Space({"width": []})


def test_a_study_with_seeds_scores_each_trial_on_its_seeds_mean_and_converts_them_without_training(counted):
    store, build, calls = counted
    out = search.run(SPACE, search.SearchConfig(study_name="seeded", trials=2, seeds=2), store=store, builds=build)
    assert len(out) == 2 and calls["built"] == 4 and calls["trained"] == 2  # the base's two seeds; then conversions
    for t in out:
        spec = VariantSpec.from_dict(store.verify("variants", t.key)["spec"])
        assert spec.seed == 0 and store.has("variants", spec.replace(seed=1).key())  # the other seed is cached too
        assert t.seeds == 2 and len(t.test_seeds) == 2
        assert t.val_accuracy == pytest.approx(sum(t.val_seeds) / 2)
        assert t.test_accuracy == pytest.approx(sum(t.test_seeds) / 2)
        assert t.val_interval.n == 2 and t.val_interval.lo <= min(t.val_seeds) <= max(t.val_seeds) <= t.val_interval.hi


@pytest.mark.parametrize("fields, message", [
    ({"study_name": "s", "trials": 1, "seeds": 0}, "1 to 10 seeds"),
    ({"study_name": "s"}, "a trial count, a time budget"),
    ({"study_name": "s", "budget_s": 0}, "more than 0 seconds"),
    ({"study_name": "s", "trials": 0}, "at least 1"),
    ({"study_name": "s", "trials": 1, "sampler": "grid"}, "choose one of tpe, random"),
    ({"study_name": "../etc", "trials": 1}, "study name"),
])
def test_a_search_config_refuses_what_cannot_run(fields, message):
    with pytest.raises(ValueError, match=message):
        search.SearchConfig(**fields)


def test_the_cli_searches_resumes_by_name_and_prints_the_front(tmp_path, monkeypatch, capsys):
    from explorer.run import cli

    monkeypatch.setenv("EXPLORER_DATA_DIR", str(tmp_path / "data"))
    argv = ["--cache", str(tmp_path / "cache"), "search", "--dataset", "digits", "--depth", "1", "--width", "4", "8",
            "--quant", "fp32", "int8", "--epochs", "3", "--min-steps", "0", "--learning-rate", "0.01",
            "--batch-size", "32", *PLAIN_FLAGS, "--trials", "2", "--study", "cli"]
    assert cli.main(argv) == 0
    assert cli.main(argv) == 0  # the same name: two more trials on top of the first two
    out = capsys.readouterr()
    assert "val_accuracy" in out.out and "4 trials in all" in out.err
    with pytest.raises(SystemExit):  # argparse refuses a budget it cannot read, before anything runs
        cli.main(argv[:-4] + ["--budget", "soon"])
    assert "must be a duration such as 90s, 10m or 1h" in capsys.readouterr().err


@pytest.mark.slow
def test_the_search_page_starts_a_study_shows_it_live_and_its_trials_reach_the_cache(tmp_path, monkeypatch):
    import optuna
    from streamlit.testing.v1 import AppTest

    from support import REPO, wait_until

    monkeypatch.setenv("EXPLORER_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("EXPLORER_CACHE_DIR", str(tmp_path / "cache"))
    from explorer.measure import targets

    targets.add(targets.Target("here", "command:sh -c", python=sys.executable))  # a target's agent, on this machine
    at = AppTest.from_file(str(REPO / "app.py"), default_timeout=60)
    at.run()
    at.switch_page(str(REPO / "pages" / "search.py")).run()
    assert not at.exception
    at.text_input(key="s_name").set_value("page")
    at.selectbox(key="s_dataset").set_value("digits")
    at.multiselect(key="s_depth").set_value([1])
    at.multiselect(key="s_width").set_value([8])
    at.multiselect(key="s_channels").set_value([0.0])
    at.multiselect(key="s_quant").set_value(["fp32", "int8"])
    at.multiselect(key="s_epochs").set_value([2])
    at.multiselect(key="s_levers").set_value(["dropout"])  # tried off and on
    at.number_input(key="s_trials").set_value(2)
    at.number_input(key="s_seeds").set_value(2)  # each trial: two seeds, scored on their mean
    at.selectbox(key="s_target").set_value("here")  # the latency objective timed by the target's agent
    at.button[0].click().run()  # the form's Start
    assert not at.exception and not at.error
    wait_until(lambda: at.run() and "stopped, 2 trials" in " ".join(s.value for s in at.subheader),
               "the study's two trials, then its end", timeout=240, every=1)
    assert not at.exception and not at.error
    assert any("Trials are built in this process" in c.value for c in at.caption)
    frame = at.dataframe[0].value
    assert len(frame) == 2 and set(frame["variant"].str.startswith("digits-d1w8"))== {True}
    assert frame["val accuracy"].str.endswith("(2 seeds)").all()
    store = Store(tmp_path / "cache")
    assert all(store.has("variants", t.key) for t in search.load("page").trials)  # on the Pareto page too
    assert {json.loads(store.latency_path(t.key, host.current().id).read_text())["target"]
            for t in search.load("page").trials} == {"here"}
    searched = optuna.load_study(study_name="page", storage=search.storage_url()).trials[0].params
    assert set(searched) == {"quant", "dropout"}  # two values each; depth, width, channels and epochs fixed


def test_a_small_space_stops_when_every_variant_has_been_tried(counted):
    store, build, calls = counted
    space = search_space.Space({"quant": ["fp32", "int8"]}, base=VariantSpec(**{**TINY, "epochs": 2}))
    assert space.size == 2
    out = search.run(space, search.SearchConfig(study_name="small", trials=50, economize=False), store=store, builds=build)
    assert len(out) == 2 == len({t.key for t in out}) == calls["built"]  # each variant once, then it stops


def test_the_front_keeps_only_feasible_non_dominated_trials():
    def trial(n, acc, p50, feasible=True):
        return search.TrialResult(n, f"k{n}", f"v{n}", acc, acc, p50, 1.0, feasible, False)

    trials = [trial(0, 0.90, 10), trial(1, 0.92, 20), trial(2, 0.85, 15), trial(3, 0.95, 5, feasible=False),
              trial(4, 0.91, 30)]
    assert [t.number for t in search.front(trials)] == [0, 1]


def test_a_study_says_its_time_left_and_the_error_its_last_run_ended_with(tmp_path, monkeypatch):
    monkeypatch.setenv("EXPLORER_DATA_DIR", str(tmp_path / "data"))
    view = search.StudyView([], {"started_at": 1000.0, "budget_s": 600.0, "trials": None,
                                 "builds": "this process", "parallelism": 1})
    assert view.seconds_left(now=1100.0) == 500.0 and view.seconds_left(now=2000.0) == 0.0
    assert search.StudyView([]).seconds_left() is None
    assert study_process.last_error("x") is None  # no log yet
    log = tmp_path / "data" / "searches" / "x.log"
    study_process.check_name("x") and study_process.request_stop("x")  # creates the folder
    log.write_text("study 'x': 3 trials in all\nerror: --ray 127.0.0.1:9: could not join the Ray cluster\n")
    assert study_process.last_error("x") == "--ray 127.0.0.1:9: could not join the Ray cluster"
    with log.open("a") as f:
        f.write("study 'x': 5 trials in all (0 infeasible), this run 60 s\n")  # a later run ended well
    assert study_process.last_error("x") is None


def test_a_study_runs_while_its_process_does_not_a_reused_pid(user_data):
    import os

    from explorer.process import started

    pid_file = study_process._folder() / "mine.pid"
    pid_file.parent.mkdir(parents=True, exist_ok=True)
    me = os.getpid()
    pid_file.write_text(f"{me} {started(me)}")
    assert study_process.running("mine")
    pid_file.write_text(f"{me} {started(me) + 1}")  # the same pid, another process's start time
    assert not study_process.running("mine")
    pid_file.write_text(str(me))  # an older pid file: the pid alone
    assert study_process.running("mine")


def test_a_budget_is_kept_a_trial_that_would_overrun_stops_at_an_epoch_end_and_is_no_variant(counted, monkeypatch):
    store, build, calls = counted
    monkeypatch.setenv("EXPLORER_CACHE_DIR", str(store.root))  # the page below reads this cache
    space = search_space.Space({"width": list(range(4, 52, 4))}, base=VariantSpec(**{**TINY, "epochs": 100, "min_steps": 0}))
    heard = []
    t0 = time.monotonic()
    out = search.run(space, search.SearchConfig(study_name="short", budget_s=6.0), store=store, builds=build,
                     on_stopped=heard.append)
    wall = time.monotonic() - t0
    assert out == [] and calls["built"] == 0  # 100 epochs do not fit in 6 s: nothing finished
    assert heard and heard[0].kind == "pruned" and "past the deadline" in heard[0].why
    epoch = int(heard[0].why.split("after epoch ")[1].split()[0])
    assert epoch < 100 and wall < 6.0 + 30  # stopped at an epoch's end, long before its 100 epochs (the bound on
    # the wall time, 1.1x the budget, is the benchmark search_budget's: a test's machine may be busy)
    assert not list(store.root.glob("variants/*"))  # a stopped trial is never a variant
    skipped = sum(t.kind == "skipped" for t in heard)  # then each proposal is too long for the seconds left:
    assert 1 <= skipped <= search.MAX_UNFIT_IN_A_ROW  # the search ends rather than list the whole space as skipped
    view = search.load("short")
    assert [(t.kind, t.why) for t in view.stopped] == [(t.kind, t.why) for t in heard]
    assert 0 < view.run["wall_s"] <= wall  # recorded for the page and the log

    from streamlit.testing.v1 import AppTest

    from support import REPO

    at = AppTest.from_file(str(REPO / "app.py"), default_timeout=60)
    at.run()
    at.switch_page(str(REPO / "pages" / "search.py")).run()
    assert not at.exception
    label = f"{skipped} trial{'s' * (skipped != 1)} skipped, {len(heard) - skipped} stopped early — and why"
    assert any(e.label.endswith(label) for e in at.expander), [e.label for e in at.expander]
    assert heard[0].why in at.dataframe[0].value["why"].tolist()  # the page says why


def test_a_start_fitted_to_the_time_left_runs_before_the_siblings_of_a_trained_trial(counted, monkeypatch):
    from explorer.run.keeper import Keeper, Plan

    class Rushed(Keeper):  # 20 epochs never fit; fewer always do
        def plan(self, spec):
            if spec.epochs == 20:
                return Plan(0.0, 20, 999.0, None, "its build would take about 999 s; 60 s are left", too_long=True)
            return super().plan(spec)

        def fits(self, spec):
            return spec.epochs < 20

    store, build, _ = counted
    monkeypatch.setattr(search, "Keeper", Rushed)
    space = search_space.Space({"batchnorm": [False, True], "epochs": [12, 20], "quant": ["fp32", "int8"]},
                         base=VariantSpec(**TINY))
    assert space.starts()[1] == {"batchnorm": True, "epochs": 20, "quant": "fp32"}  # the lever recipe
    done = search.run(space, search.SearchConfig(study_name="fitted", trials=4), store=store, builds=build)
    order = [t.key for t in sorted(done, key=lambda t: t.number)]
    assert order == [space.spec(p).key() for p in (
        {"batchnorm": False, "epochs": 12, "quant": "fp32"},  # the base
        {"batchnorm": True, "epochs": 12, "quant": "fp32"},  # the lever recipe with the epochs that fit, before
        {"batchnorm": False, "epochs": 12, "quant": "int8"},  # the base's sibling
        {"batchnorm": True, "epochs": 12, "quant": "int8"})]


def test_a_search_started_from_the_command_line_shows_as_running_until_it_ends(tmp_path, monkeypatch):
    from explorer.run import cli

    monkeypatch.setenv("EXPLORER_DATA_DIR", str(tmp_path / "data"))
    seen = []
    monkeypatch.setattr(search, "run", lambda space, config, **kw: seen.append(study_process.running(config.study_name)) or [])
    argv = ["--cache", str(tmp_path / "cache"), "search", "--dataset", "digits", "--trials", "1", "--study", "cli-run"]
    assert cli.main(argv) == 0
    assert seen == [True] and not study_process.running("cli-run")  # the page saw it running; it ended: its pid file is gone
    with study_process.announced("Not a page's name"):  # a name the page cannot show is not announced
        assert not list((tmp_path / "data").rglob("*.pid"))


def test_a_sibling_of_a_base_on_the_front_goes_before_one_of_a_dominated_base():
    space = search_space.Space({"width": [4, 8], "quant": ["fp32", "int8"]}, base=VariantSpec(**TINY))
    queued = [{"width": 8, "quant": "int8"}, {"width": 4, "quant": "int8"}]  # cheapest first
    on_front = {space.spec({"width": 4, "quant": "fp32"}).base_key()}  # width 4 holds the front, width 8 not
    assert space.next_sibling(queued, on_front) == 1
    assert space.next_sibling(queued, set()) == 0  # none on the front: the cheapest
    assert space.next_sibling(queued, on_front | {space.spec(queued[0]).base_key()}) == 0


def test_a_trial_too_long_for_the_time_left_is_tried_with_the_most_epochs_that_fit():
    space = search_space.Space({"epochs": [5, 10, 20], "width": [16, 32]}, base=VariantSpec(dataset="digits"))
    params = {"epochs": 20, "width": 16}
    assert space.shorter(params, set(), lambda s: s.epochs <= 10) == {"epochs": 10, "width": 16}
    tried = {space.spec({"epochs": 10, "width": 16}).key()}
    assert space.shorter(params, tried, lambda s: s.epochs <= 10) == {"epochs": 5, "width": 16}  # 10 is tried
    assert space.shorter(params, set(), lambda s: False) is None
    assert search_space.Space({"width": [16, 32]}).shorter({"width": 16}, set(), lambda s: True) is None  # no epochs axis


def test_a_trial_whose_lever_fails_is_a_failed_trial_with_its_sentence_and_the_search_goes_on(counted, caplog):
    from explorer.models.lever_errors import LeverError

    store, build, calls = counted

    class Refusing(type(build)):
        def build(self, spec, watch=None):
            if spec.quant == "int8":
                raise LeverError("conversion failed on the built-in network at layer 'conv1': no int8 kernel. "
                                 "Try another quantization mode")
            return super().build(spec, watch)

    refusing = Refusing(store, latency_kwargs=FAST_LATENCY)
    space = search_space.Space({"quant": ["fp32", "int8"]}, base=SPACE.base)
    out = search.run(space, search.SearchConfig(study_name="refused", trials=2, economize=False), store=store,
                     builds=refusing)
    assert ["-fp32-" in t.label for t in out] == [True]  # the fp32 trial landed; the int8 one failed, and said why
    import optuna

    study = optuna.load_study(study_name="refused", storage=search.storage_url())
    failed = [t for t in study.trials if t.state.name == "FAIL"]
    assert len(failed) == 1 and "at layer 'conv1'" in failed[0].user_attrs["failed"]
    assert "at layer 'conv1'" in caplog.text
