import numpy as np
import pytest

from explorer.present import results
from explorer.present.pareto import best_under_budget, hypervolume, pareto_mask


def test_front_on_hand_made_points():
    # latency (min), accuracy (max)
    lat = [10, 20, 30, 15, 40, 20]
    acc = [0.80, 0.90, 0.95, 0.79, 0.94, 0.85]
    # 15/0.79 is beaten by 10/0.80; 40/0.94 by 30/0.95; 20/0.85 by 20/0.90.
    assert pareto_mask(lat, acc).tolist() == [True, True, True, False, False, False]


def test_duplicates_of_front_points_stay_and_nan_never_joins():
    mask = pareto_mask([1, 1, 2, np.nan], [0.5, 0.5, 0.6, 0.99])
    assert mask.tolist() == [True, True, True, False]


def test_equal_cost_keeps_only_the_best():
    assert pareto_mask([5, 5], [0.7, 0.8]).tolist() == [False, True]


def test_empty_and_mismatched_inputs():
    assert pareto_mask([], []).tolist() == []
    with pytest.raises(ValueError):
        pareto_mask([1, 2], [1])


def test_front_agrees_with_brute_force():
    rng = np.random.default_rng(7)
    x, y = rng.integers(0, 20, 300).astype(float), rng.integers(0, 20, 300).astype(float)
    brute = [not any((x[j] <= x[i] and y[j] >= y[i]) and (x[j] < x[i] or y[j] > y[i]) for j in range(300))
             for i in range(300)]
    assert pareto_mask(x, y).tolist() == brute


def test_hypervolume_by_hand_and_against_counting_cells():
    # reference (10, 0): 2/3 adds 8x3; 5/4 adds 5x1 more; 8/1 is dominated; 12/9 lies past the reference.
    assert hypervolume([2, 5, 8, 12], [3, 4, 1, 9], (10, 0)) == 8 * 3 + 5 * 1
    assert hypervolume([], [], (10, 0)) == 0 and hypervolume([np.nan], [5], (10, 0)) == 0
    rng = np.random.default_rng(3)
    x, y = rng.integers(0, 30, 40), rng.integers(0, 30, 40)
    cells = sum(any(xi <= cx and yi >= cy + 1 for xi, yi in zip(x, y)) for cx in range(25) for cy in range(5, 30))
    assert hypervolume(x, y, (25, 5)) == cells  # unit cells [cx, cx+1] x [cy, cy+1] some point dominates


def test_best_under_budget():
    lat = [10, 20, 30]
    acc = [0.8, 0.9, 0.95]
    assert best_under_budget(lat, acc, 25) == 1
    assert best_under_budget(lat, acc, 5) is None
    assert best_under_budget([10, 12], [0.9, 0.9], 50) == 0  # cheapest on ties


def test_the_budget_answer_is_one_sentence_naming_the_winner_the_cheapest_and_the_best():
    import pandas as pd

    from explorer.present.pareto import budget_answer

    df = pd.DataFrame({"key": ["a", "b", "c"], "label": ["fast", "mid", "best"],
                       "accuracy": [0.80, 0.88, 0.90], "p50_us": [10.0, 20.0, 40.0]})
    answer = budget_answer(df, "p50_us", "µs", 25.0)
    assert answer.winner == "b"
    assert answer.text == ("Under 25.0 µs the most accurate is **mid**: accuracy 0.8800 at 20.0 µs; 2.00× the cost "
                           "of the cheapest (fast) for +8.0 points; the most accurate (best) is 2.0 points better at "
                           "2.00× the cost.")
    assert answer.text.count(". ") == 0  # one sentence
    assert budget_answer(df, "p50_us", "µs", 100).text.endswith("and the most accurate shown.")
    nothing = budget_answer(df, "p50_us", "µs", 5.0)
    assert nothing.winner is None and "the cheapest variant needs 10.0 µs" in nothing.text


def test_a_device_budget_answers_the_most_accurate_that_fits_its_ram_and_flash():
    import pandas as pd

    from explorer.measure.boards import BOARDS
    from explorer.present.pareto import Fit, budget_answer

    df = pd.DataFrame({"key": ["a", "b", "c", "d"], "label": ["fast", "mid", "best", "hybrid"],
                       "accuracy": [0.80, 0.88, 0.90, 0.95], "p50_us": [10.0, 20.0, 15.0, 5.0],
                       "peak_ram_kb": [30.0, 60.0, 110.0, 20.0], "flash_kb": [200.0, 250.0, 900.0, 100.0],
                       "micro_blockers": ["", "", "", "dynamic-range (hybrid) ops"]})
    fit = Fit(ram_kb=64, flash_kb=256)
    assert fit.mask(df).tolist() == [True, True, False, False]  # c: too much RAM; d: TFLite Micro cannot run it
    answer = budget_answer(df, "p50_us", "µs", 20.0, fit=fit)
    assert answer.winner == "b"
    assert answer.text.startswith("Under 20.0 µs, that fits 64 KB of RAM and 256 KB of flash, the most accurate is "
                                  "**mid**")
    assert answer.text.endswith("and the most accurate shown that fits.")
    assert budget_answer(df, "p50_us", "µs", 12.0, fit=fit).winner == "a"
    none = budget_answer(df, "p50_us", "µs", 50.0, fit=Fit(ram_kb=10))
    assert none.winner is None and "the smallest arena is 20.0 KB (hybrid" in none.text
    board = BOARDS["nRF52840"]
    assert Fit(board.ram_kb, board.flash_kb, board.name).mask(df).tolist() == [True, True, True, False]


def test_the_front_of_a_table_takes_each_metrics_direction():
    import pandas as pd

    from explorer.present.results import front

    df = pd.DataFrame({"p50_us": [10.0, 20.0, 30.0, 15.0], "accuracy": [0.80, 0.90, 0.85, 0.70],
                       "throughput_ips": [100.0, 50.0, 200.0, 10.0]})
    assert front(df, "p50_us").tolist() == [True, True, False, False]  # lower latency, higher accuracy
    assert front(df, "p50_us", "throughput_ips").tolist() == [True, False, True, False]  # both "higher is better" aware


def test_a_comparison_gives_ratios_to_the_first_variant():
    import pandas as pd

    from explorer.present.results import compare

    df = pd.DataFrame({"key": ["a", "b"], "label": ["fast", "big"], "accuracy": [0.85, 0.90],
                       "balanced_accuracy": [0.8, 0.9], "macro_f1": [0.79, 0.88], "p50_us": [10.0, 40.0], "p99_us": [12.0, 50.0], "size_kb": [100.0, 400.0],
                       "gzip_kb": [80.0, 300.0], "nonzero_params": [1000, 4000], "macs": [10, 40],
                       "peak_ram_kb": [31.1, 111.2], "flash_kb": [100.0, 400.0], "measured_here": [True, False]})
    for m, half in (("accuracy", 0.01), ("balanced_accuracy", 0.02), ("macro_f1", 0.02)):
        df[f"{m}_lo"], df[f"{m}_hi"] = df[m] - half, df[m] + half
    out = compare(df, ["b", "a"])
    assert out.loc["fast", "accuracy_lo"] == 0.84
    assert list(out.index) == ["big", "fast"]
    assert out.loc["fast", "speedup"] == 4.0 and out.loc["fast", "size_ratio"] == 0.25
    assert out.loc["fast", "ram_ratio"] == pytest.approx(31.1 / 111.2) and out.loc["fast", "flash_kb"] == 100.0
    assert round(out.loc["fast", "delta_pts"], 6) == -5.0 and out.loc["big", "delta_pts"] == 0


def test_balanced_accuracy_and_macro_f1_come_from_the_confusion_matrix():
    import dataclasses

    from explorer.record import VariantRecord

    fields = {f.name: None for f in dataclasses.fields(VariantRecord)}
    # class a: 90 images, all right; class b: 10 images, 5 right, 5 called a
    v = VariantRecord(**{**fields, "confusion": ((90, 0), (5, 5)), "class_names": ("a", "b")})
    assert v.balanced_accuracy == (1.0 + 0.5) / 2
    f1_a, f1_b = 2 * 90 / (90 + 95), 2 * 5 / (10 + 5)
    assert abs(v.macro_f1 - (f1_a + f1_b) / 2) < 1e-12
    assert v.weakest_class == ("b", 0.5)


def test_the_default_budget_is_a_round_figure_at_or_above_the_median_so_half_fit():
    from explorer.present.pareto import default_budget

    assert default_budget([13.836, 14.2, 50.0]) == 20  # median 14.2
    assert default_budget([10.01, float("nan"), 12.0]) == 20  # median 11.005
    assert default_budget([63.0, 24.9, 81.9]) == 100 and default_budget([0.3, 0.41]) == 0.5
    assert default_budget([5.0, 5.0]) == 5 and default_budget([1000.0]) == 1000  # a round median is kept
    for costs in ([3.3, 7.1, 9.9, 120.0], [0.012, 0.5], [52.4, 24.9, 63.0, 81.9]):
        budget = default_budget(costs)
        assert np.mean(np.asarray(costs) <= budget) >= 0.5 and budget < 2.5 * np.median(costs)
    assert np.isnan(default_budget([float("nan")]))


def _noisy_table():
    """Four variants on one 1,000-image test split: the two fast ones differ by 2 images out of 1,000."""
    import pandas as pd

    from explorer.uncertainty import interval_columns
    from explorer.present.significance import Evidence

    rng = np.random.default_rng(0)
    truth = rng.integers(0, 2, 1000)
    right = {"a": 850, "b": 852, "c": 940, "d": 700}  # images each gets right, nested: a's are within b's
    preds, rows = {}, []
    for i, (key, k) in enumerate(right.items()):
        p = truth.copy()
        p[k:] = 1 - p[k:]
        preds[key] = p
        cm = np.zeros((2, 2), int)
        np.add.at(cm, (truth, p), 1)
        rows.append({"key": key, "label": key, "dataset": "toy", "accuracy": k / 1000,
                     "p50_us": [10.0, 11.0, 30.0, 12.0][i], **interval_columns(cm)})
    return pd.DataFrame(rows), Evidence({"toy": truth}, preds)


def test_the_front_does_not_rank_noise_and_the_budget_answer_names_the_ties():
    from explorer.present.pareto import budget_answer
    from explorer.present.significance import front_status, tied_with

    df, evidence = _noisy_table()
    status = dict(zip(df["key"], front_status(df, "p50_us", "accuracy", evidence)))
    # b is on the strict front (2 images better); a is 2 images worse but faster: on it too; d is
    # significantly worse than a faster variant: dominated
    assert status == {"a": "front", "b": "front", "c": "front", "d": "dominated"}
    df.loc[df["key"] == "a", "p50_us"] = 11.5  # now slower than b and 2 images worse: tied, not dominated
    status = dict(zip(df["key"], front_status(df, "p50_us", "accuracy", evidence)))
    assert status["a"] == "tied" and status["d"] == "dominated"
    fits = (df["p50_us"] <= 20).to_numpy()
    assert tied_with(df, "b", fits, evidence) == ["a"]
    answer = budget_answer(df, "p50_us", "µs", 20.0, tied=lambda w, m: tied_with(df, w, m, evidence))
    assert answer.winner == "b" and "**statistically tied with it**: a" in answer.text
    assert "accuracy 0.85 ± 0.02" in answer.text  # with its interval, at its precision
    df.loc[df["key"] == "a", "p50_us"] = 5.0  # a, tied with b, is now the cheapest: its gain is a tie, said so
    answer = budget_answer(df, "p50_us", "µs", 20.0, tied=lambda w, m: tied_with(df, w, m, evidence))
    assert "the cost of the cheapest (" in answer.text and "points, a tie" in answer.text


def test_seed_replicates_group_into_one_row_holding_each_seed():
    import pandas as pd

    from explorer.uncertainty import accuracy_interval
    from explorer.present.results import COLUMNS, group_seeds

    rows = []
    for seed, correct in ((0, 8963), (1, 8930), (2, 9024), (0, 8700)):
        acc = accuracy_interval(correct, 10_000)
        rows.append({**{c: 0 for c in COLUMNS}, "key": f"k{seed}{correct}", "label": f"v-seed{seed}", "seed": seed,
                     "dataset": "fashion-mnist", "depth": 2 if correct != 8700 else 3, "accuracy": acc.value,
                     "accuracy_lo": acc.lo, "accuracy_hi": acc.hi, "balanced_accuracy": acc.value,
                     "balanced_accuracy_lo": acc.lo, "balanced_accuracy_hi": acc.hi, "macro_f1": acc.value,
                     "macro_f1_lo": acc.lo, "macro_f1_hi": acc.hi, "p50_us": 30.0 + seed, "p50_lo_us": 29.0 + seed,
                     "p50_hi_us": 31.0 + seed, "noisy": False, "measured_here": True})
    grouped = group_seeds(pd.DataFrame(rows))
    assert len(grouped) == 2 and sorted(grouped["seeds"]) == [1, 3]
    g = grouped[grouped["seeds"] == 3].iloc[0]
    assert g["accuracy"] == pytest.approx((0.8963 + 0.8930 + 0.9024) / 3) and g["label"] == "v-seed0 ×3 seeds"
    assert g["accuracy_lo"] < 0.8930 and g["accuracy_hi"] > 0.9024 and g["replicates"].count(",") == 2
    assert (g["p50_us"], g["p50_lo_us"], g["p50_hi_us"]) == (31.0, 29.0, 33.0)


def test_a_preview_band_alone_is_drawn_within_the_axes():
    from explorer.present import figures

    empty = results.table_of([])
    fig = figures.pareto(empty, np.zeros(0, bool), "p50_us", preview={"p50": 97.6, "lo": 94.8, "hi": 100.5, "label": "x"})
    lo, hi = fig.layout.xaxis.range
    assert lo < 94.8 and 100.5 < hi and tuple(fig.layout.yaxis.range) == (0, 1)


def test_pages_open_on_the_most_accurate_variant_that_has_a_latency():
    nan = float("nan")
    rows = [{"key": "replicate", "dataset": "d", "accuracy": 0.95, "p50_us": nan},
            {"key": "measured", "dataset": "d", "accuracy": 0.93, "p50_us": 40.0},
            {"key": "slower", "dataset": "d", "accuracy": 0.91, "p50_us": 20.0}]
    assert results.first_measured(results.table_of(rows)) == "measured"
    assert results.first_measured(results.table_of([{**rows[0]}])) == "replicate"  # none measured: the first row
    assert results.first_measured(results.table_of([])) is None


def test_compare_opens_on_the_most_accurate_measured_variant_against_the_fastest_of_its_dataset():
    nan = float("nan")
    rows = [{"key": "replicate", "dataset": "d", "accuracy": 0.95, "p50_us": nan},
            {"key": "measured", "dataset": "d", "accuracy": 0.93, "p50_us": 40.0},
            {"key": "slower", "dataset": "d", "accuracy": 0.91, "p50_us": 60.0},
            {"key": "fastest", "dataset": "d", "accuracy": 0.88, "p50_us": 20.0},
            {"key": "other-data", "dataset": "e", "accuracy": 0.99, "p50_us": 5.0}]
    assert results.compare_defaults(results.table_of(rows)) == ["measured", "fastest"]
    assert results.compare_defaults(results.table_of(rows[:2])) == ["measured", "replicate"]  # it is the fastest
    assert results.compare_defaults(results.table_of([rows[0]])) == ["replicate"]
    assert results.compare_defaults(results.table_of([])) == []
    assert results.compare_defaults(results.table_of(rows), "e") == ["other-data"]  # the Pareto page's dataset
    upload = [{"key": "big", "dataset": "a-upload", "accuracy": 0.99, "p50_us": 700.0}]  # first by name, one variant
    assert results.compare_defaults(results.table_of(rows + upload)) == ["measured", "fastest"]  # the fullest one
