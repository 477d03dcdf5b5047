"""The search's budget rules: predicted build time, trials the front dominates, hopeless trials, the deadline."""

import pytest

from explorer.run import budget
from explorer.run.keeper import Keeper, Plan, TrialStopped, _architecture
from explorer.run.pipeline import Progress
from explorer.spec import VariantSpec
from explorer.store.cache import Store

FRONT = [budget.Point("fast", 0.86, 10.0), budget.Point("good", 0.90, 30.0), budget.Point("best", 0.92, 80.0)]


def test_build_time_is_predicted_from_the_builds_timed_here_with_a_margin():
    times = budget.BuildTimes()
    assert times.predict(1e9, 10) is None and times.predict(0, 0) is None  # nothing timed yet: no prediction
    # epochs of 2 s fixed + 1e-9 s per unit of work (the last one 10 % slower: batch norm), then 1.5 s to convert
    times.add(budget.Timed(10, 10 * 1e9, 10 * 3.0, 1.5))
    times.add(budget.Timed(5, 5 * 3e9, 5 * 5.0, 1.5))
    times.add(budget.Timed(10, 10 * 8e9, 10 * 11.0, 1.5))
    times.add(budget.Timed(10, 10 * 8e9, 10 * 11.0 * 1.1, 1.5))
    times.add(budget.Timed(0, 0.0, 0.0, 1.5))  # a conversion
    predicted = times.predict(20 * 16e9, 20)  # twice the work of any epoch timed
    epochs_s = (predicted - budget.MARGIN_S) / budget.MARGIN - 1.5
    assert 20 * (2.0 + 16.0) < epochs_s < 20 * (2.0 + 16.0) * 1.3  # above the line: it covers the slower layers
    assert times.predict(0, 0) == pytest.approx(1.5 * budget.MARGIN + budget.MARGIN_S)
    assert budget.work(5_000, 1_000, 12) == 6e7


def test_a_small_networks_fixed_epoch_cost_does_not_make_a_large_one_look_slow():
    """Seen as a user: a 120 s search timed 8 width-16 builds, then predicted width-32 trials at 88 to 256 s
    (seconds in proportion to MACs) and stopped after 57 s. Epochs of 6 s fixed + 1e-9 s per unit."""
    times = budget.BuildTimes()
    for unit in (1e9, 2e9, 3e9):
        times.add(budget.Timed(5, 5 * unit, 5 * (6.0 + unit * 1e-9), 2.0))
    large = 12e9  # four times the largest epoch timed: 18 s an epoch; in proportion to the slower rates, 70 s
    assert times.predict(5 * large, 5) == pytest.approx((5 * 18.0 + 2.0) * budget.MARGIN + budget.MARGIN_S)
    few = budget.BuildTimes([budget.Timed(5, 5 * 2e9, 5 * 8.0, 2.0), budget.Timed(5, 5 * 2.5e9, 5 * 8.5, 2.0)])
    # too little spread for a line: in proportion, at the upper quartile of the rates (4 and 3.4 s per 1e9)
    assert few.epoch_seconds(5e9) == pytest.approx((3.4 + 0.75 * 0.6) * 5)


def test_a_trial_is_dominated_only_when_a_front_point_at_most_as_slow_beats_its_architectures_best():
    assert budget.best_at(FRONT, 35.0).label == "good" and budget.best_at(FRONT, 5.0) is None
    why = budget.dominated(35.0, best_known=0.88, spread=0.008, front=FRONT)
    assert "good at 30.0 µs" in why and "0.9000" in why and "0.8800" in why
    assert budget.dominated(35.0, best_known=0.895, spread=0.008, front=FRONT) is None  # within the seeds' spread
    assert budget.dominated(35.0, best_known=None, spread=0.008, front=FRONT) is None  # never tried: it may
    assert budget.dominated(5.0, best_known=0.5, spread=0.008, front=FRONT) is None  # faster than the whole front


def test_a_trial_is_hopeless_when_no_earlier_trial_gained_enough_after_this_epoch():
    curves = [[0.70, 0.80, 0.84, 0.85], [0.75, 0.82, 0.86, 0.86, 0.87]]
    assert budget.most_gained_after(curves, 1) == pytest.approx(0.15)
    assert budget.most_gained_after(curves, 4) is None  # one curve went past epoch 4: not enough to say
    why = budget.hopeless(2, 0.70, 35.0, curves, 0.008, FRONT)  # 0.70 + 0.05 + 0.008 < 0.90
    assert why.startswith("at epoch 2") and "good's 0.9000" in why
    assert budget.hopeless(2, 0.85, 35.0, curves, 0.008, FRONT) is None  # 0.85 + 0.05 reaches 0.90
    assert budget.hopeless(2, 0.10, 5.0, curves, 0.008, FRONT) is None  # nothing on the front is that fast
    assert budget.hopeless(1, 0.10, 35.0, curves[:1], 0.008, FRONT) is None  # one curve: not enough to say


def test_a_trials_end_is_projected_from_its_slowest_epoch_so_far():
    assert budget.projected_end(100.0, [], 5, 3.0) == 103.0
    assert budget.projected_end(100.0, [4.0, 9.0, 6.0], 5, 3.0) == 100.0 + 9.0 * 5 + 3.0


def test_the_keeper_stops_a_trial_at_an_epoch_end_when_hopeless_or_out_of_time(tmp_path, monkeypatch):
    monkeypatch.setenv("EXPLORER_DATA_DIR", str(tmp_path / "data"))
    now = [0.0]
    keeper = Keeper(Store(tmp_path / "cache"), deadline=100.0, clock=lambda: now[0])
    keeper.curves = [(10, [0.70, 0.80, 0.84]), (10, [0.75, 0.82, 0.86])]
    keeper.front = FRONT
    spec = VariantSpec(dataset="digits", depth=1, width=8)
    check = keeper.watch(spec, Plan(work=1e9, epochs=10, predicted_s=20.0, p50_us=35.0))
    check(Progress("train", 0.1, "batch"))  # mid-epoch: nothing to judge
    check(Progress("train", 0.2, "epoch 1", 1, 10, 0.80, 2.0))  # 0.80 + 0.11 + spread reaches 0.90
    with pytest.raises(TrialStopped, match="pruned at epoch 2") as stop:
        check(Progress("train", 0.3, "epoch 2", 2, 10, 0.70, 2.0))
    assert stop.value.epoch == 2 and stop.value.val_accuracy == 0.70
    shorter = Keeper(Store(tmp_path / "cache"), deadline=100.0, clock=lambda: now[0])
    shorter.curves, shorter.front = [(5, curve) for _, curve in keeper.curves], FRONT
    check = shorter.watch(spec, Plan(work=1e9, epochs=10, predicted_s=20.0, p50_us=35.0))
    check(Progress("train", 0.3, "epoch 2", 2, 10, 0.70, 2.0))  # what 5-epoch trials gained says little of 10 epochs

    patient = Keeper(Store(tmp_path / "cache"), deadline=100.0, economize=False, clock=lambda: now[0])
    patient.curves, patient.front = keeper.curves, FRONT
    check = patient.watch(spec, Plan(work=1e9, epochs=10, predicted_s=20.0, p50_us=35.0, units=(1e8, 4e7)))
    check(Progress("train", 0.3, "epoch 2", 2, 10, 0.10, 2.0))  # not economizing: hopeless trials go on
    now[0] = 97.5
    with pytest.raises(TrialStopped, match="with 8 epochs left it would end about 26 s past the deadline"):
        check(Progress("train", 0.4, "epoch 3", 3, 10, 0.10, 3.0))  # its 2nd epoch seen: 97.5 + 8 x 3 s + 4 s
    assert patient.times.timed[-1] == budget.Timed(2, 1e8 * 2, 5.0)  # its two epochs teach the next prediction


def test_a_trial_whose_build_would_not_fit_in_the_time_left_is_not_started(tmp_path, monkeypatch):
    monkeypatch.setenv("EXPLORER_DATA_DIR", str(tmp_path / "data"))
    now = [0.0]
    keeper = Keeper(Store(tmp_path / "cache"), deadline=30.0, clock=lambda: now[0], preview=lambda spec: 20.0)
    keeper.times.add(budget.Timed(10, 1e10, 10.0, 0.0))  # 1e-9 s per unit of work
    spec = VariantSpec(dataset="digits", depth=1, width=8, epochs=10)
    plan = keeper.plan(spec)
    assert plan.skip is None and plan.work > 0 and plan.predicted_s < 30
    assert plan.p50_us is None  # no trial has trained yet: no rule could judge it, so no preview is spent
    now[0] = 30.0 - plan.predicted_s + 1
    assert "would take about" in keeper.plan(spec).skip


def test_a_finished_trials_latency_stands_for_a_trial_that_differs_only_in_training(tmp_path, monkeypatch):
    from types import SimpleNamespace

    monkeypatch.setenv("EXPLORER_DATA_DIR", str(tmp_path / "data"))
    previewed = []
    keeper = Keeper(Store(tmp_path / "cache"), deadline=1e9, preview=lambda spec: previewed.append(spec) or 40.0)
    keeper.curves = [(10, [0.5, 0.7]), (10, [0.6, 0.75])]  # two trained: the hopeless rule can judge, with a latency
    first = VariantSpec(dataset="digits", depth=1, width=8, epochs=10, min_steps=0)
    plan = keeper.plan(first)
    assert plan.p50_us == 40.0 and previewed == [first]
    built = SimpleNamespace(spec=first, macs=1000, history={"base": {"val_accuracy": [0.5, 0.8]}})
    keeper.built(built, {"train": 2.5, "convert": 0.5, "measure": 9.0})
    keeper.landed(first, plan, built, 0.80, 12.5, [budget.Point("mine", 0.80, 12.5)])
    assert keeper.plan(first.replace(learning_rate=0.01, seed=3)).p50_us == 12.5  # measured, not previewed
    assert keeper.plan(first.replace(width=16)).p50_us == 40.0 and len(previewed) == 2  # another architecture
    assert keeper.curves[-1] == (10, [0.5, 0.8])
    train_images = keeper._train_images(first)  # its two epochs (patience ended it), the rest but measuring
    assert keeper.times.timed[-1] == budget.Timed(2, 1000.0 * train_images * 2, 2.5, 0.5)


def test_a_trial_that_only_fine_tunes_a_cached_base_is_not_previewed_for_the_hopeless_rule(tmp_path, monkeypatch):
    monkeypatch.setenv("EXPLORER_DATA_DIR", str(tmp_path / "data"))
    store = Store(tmp_path / "cache")
    pruned = VariantSpec(dataset="digits", depth=1, width=8, epochs=10, min_steps=0, channels=0.5)
    store.write("base", pruned.base_key(), {"kind": "base"}, lambda folder: (folder / "weights.h5").write_bytes(b"w"))
    keeper = Keeper(store, deadline=1e9, preview=lambda spec: pytest.fail("previewed"))
    keeper.curves = [(10, [0.5, 0.7]), (10, [0.6, 0.75])]  # the hopeless rule judges base training: none here
    plan = keeper.plan(pruned)
    assert plan.epochs == pruned.tune_epochs and plan.p50_us is None and plan.skip is None


def test_a_trial_is_previewed_for_the_dominated_rule_only_where_a_front_point_is_above_what_it_can_reach(
        tmp_path, monkeypatch):
    monkeypatch.setenv("EXPLORER_DATA_DIR", str(tmp_path / "data"))
    store = Store(tmp_path / "cache")
    pruned = VariantSpec(dataset="digits", depth=1, width=8, epochs=10, min_steps=0, channels=0.5)
    store.write("base", pruned.base_key(), {"kind": "base"}, lambda folder: (folder / "weights.h5").write_bytes(b"w"))
    previewed = []
    keeper = Keeper(store, deadline=1e9, preview=lambda spec: previewed.append(spec) or 20.0)
    keeper.front = FRONT
    keeper.best[_architecture(pruned)] = [(10, 0.915)]  # + the seed spread reaches the front's top, 0.92
    assert keeper.spread(pruned) > 0.005
    plan = keeper.plan(pruned)
    assert plan.p50_us is None and plan.skip is None and previewed == []  # nothing on the front can dominate it
    keeper.best[_architecture(pruned)] = [(10, 0.85)]  # below the top: previewed (20 µs) ...
    plan = keeper.plan(pruned)
    assert previewed == [pruned] and plan.p50_us == 20.0 and plan.skip is None  # ... only "fast" (0.86) is as fast
    keeper.best[_architecture(pruned)] = [(10, 0.80)]
    assert "the front holds fast" in keeper.plan(pruned).skip


def test_a_channel_pruned_build_trains_its_base_at_full_width_and_fine_tunes_the_narrowed_network(tmp_path, monkeypatch):
    from types import SimpleNamespace

    monkeypatch.setenv("EXPLORER_DATA_DIR", str(tmp_path / "data"))
    now = [0.0]
    keeper = Keeper(Store(tmp_path / "cache"), deadline=1e9, clock=lambda: now[0])
    pruned = VariantSpec(dataset="digits", depth=1, width=16, epochs=4, min_steps=0, channels=0.5)
    images = keeper._train_images(pruned)
    full, narrow = keeper._macs(pruned.replace(channels=0.0)), keeper._macs(pruned)
    assert full > 1.5 * narrow  # half the channels of its conv layer
    plan = keeper.plan(pruned)
    assert plan.epochs == 4 + pruned.tune_epochs
    assert plan.work == (4 * full + pruned.tune_epochs * narrow) * images  # was all epochs at the narrowed MACs
    built = SimpleNamespace(spec=pruned, macs=narrow, history={"base": {"val_accuracy": [0.5, 0.6, 0.7]}})
    keeper.built(built, {"train": 6.0, "channels": 2.0, "convert": 1.0})  # patience ended the base after 3
    assert keeper.times.timed[-1] == budget.Timed(3 + pruned.tune_epochs, (3 * full + pruned.tune_epochs * narrow)
                                                  * images, 8.0, 1.0)
    check = keeper.watch(pruned, plan)  # stopped in its fine-tune: each epoch at the work of its stage
    check(Progress("train", 0.2, "epoch 1", 1, 4, 0.80, 2.0))
    now[0] = 1e9
    with pytest.raises(TrialStopped):
        check(Progress("channels", 0.9, "epoch 1", 1, 2, 0.80, 1.0))
    assert keeper.times.timed[-1] == budget.Timed(2, (full + narrow) * images, 3.0)
