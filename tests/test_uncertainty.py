"""Accuracy's uncertainty against published and library values: Wilson's interval, McNemar's exact test, the
bootstrap of class metrics, seed replicates, and the precision an interval supports (no TensorFlow)."""

import math

import numpy as np
import pytest
from scipy import stats

from explorer.uncertainty import (Interval, accuracy_interval, class_metric_intervals, interval_columns,
                                          mcnemar, replicate_interval)


def test_wilson_interval_matches_the_published_formula_for_8963_of_10000():
    ci = accuracy_interval(8963, 10_000)
    z, p, n = 1.959964, 0.8963, 10_000  # Wilson (1927): centre and half-width in closed form
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    assert ci.value == 0.8963
    assert ci.lo == pytest.approx(centre - half, abs=1e-6) and ci.hi == pytest.approx(centre + half, abs=1e-6)
    assert (round(ci.lo, 4), round(ci.hi, 4)) == (0.8902, 0.9021)
    small = accuracy_interval(425, 450)  # a 450-image upload's test split: about ±2 points
    assert 0.018 < small.half_width < 0.025 and small.hi < 1


def test_the_precision_printed_is_the_one_the_interval_supports():
    assert accuracy_interval(8963, 10_000).text() == "0.896 ± 0.006"
    assert accuracy_interval(425, 450).text() == "0.94 ± 0.03"  # never four decimals under ±2 points (the wider side)
    assert Interval(0.9, 0.8, 1.0).decimals == 1 and Interval(0.9, 0.9, 0.9).decimals == 4
    assert accuracy_interval(8963, 10_000).text(points=True) == "89.6 ± 0.6 pts"


def test_mcnemar_is_scipys_exact_binomial_test_on_the_discordant_images():
    truth = np.zeros(1000, dtype=np.uint8)
    a = truth.copy()
    b = truth.copy()
    a[:12] = 1  # A wrong, B right on 12 images
    b[12:15] = 1  # B wrong, A right on 3
    b[100:200] = a[100:200] = 1  # both wrong on 100: they do not count
    paired = mcnemar(truth, a, b)
    assert (paired.only_a, paired.only_b) == (3, 12)
    assert paired.p == pytest.approx(stats.binomtest(3, 15, 0.5).pvalue) == pytest.approx(2 * 576 / 2 ** 15)
    assert paired.significant and paired.diff == pytest.approx(0.009)
    assert paired.lo < paired.diff < paired.hi
    tie = mcnemar(truth, a, a)
    assert tie.p == 1.0 and not tie.significant and tie.diff == 0
    with pytest.raises(ValueError):
        mcnemar(truth, a, b[:10])


def test_class_metric_bootstrap_is_seeded_holds_the_value_and_narrows_with_more_images():
    cm = np.array([[90, 10, 0], [5, 80, 15], [0, 20, 30]])
    one, again = class_metric_intervals(cm), class_metric_intervals(cm)
    assert one == again  # seeded: the same entry always shows the same interval
    for name in ("balanced_accuracy", "macro_f1"):
        assert one[name].lo < one[name].value < one[name].hi
    big = class_metric_intervals(cm * 25)
    assert big["balanced_accuracy"].half_width < one["balanced_accuracy"].half_width / 3
    cols = interval_columns(cm)
    assert cols["accuracy_lo"] < 200 / 250 < cols["accuracy_hi"]


def test_a_replicate_interval_combines_the_seeds_spread_with_the_test_split():
    seeds = [0.8930, 0.8948, 0.8963, 0.8963, 0.8981, 0.8986, 0.9024]  # the default variant, 7 seeds (issue #21)
    test_half = accuracy_interval(8963, 10_000).half_width
    r = replicate_interval(seeds[:3], test_half)
    assert r.n == 3 and r.value == pytest.approx(np.mean(seeds[:3]))
    seed_half = stats.t.ppf(0.975, 2) * np.std(seeds[:3], ddof=1) * math.sqrt(4 / 3)
    assert r.half_width == pytest.approx(math.hypot(seed_half, test_half))
    assert all(r.lo <= s <= r.hi for s in seeds)  # a further seed falls inside
    assert "(3 seeds)" in r.text()
    assert replicate_interval([0.9], test_half).half_width == pytest.approx(test_half)


def test_a_record_keeps_its_intervals_from_build_and_an_older_one_gets_them_from_its_confusion_matrix():
    import dataclasses
    import json
    from pathlib import Path

    from explorer.uncertainty import INTERVAL_COLUMNS, record_interval_columns
    from explorer.record import VariantRecord

    meta_path = next((Path(__file__).resolve().parent.parent / "cached_models" / "variants").glob("*/meta.json"))
    meta = json.loads(meta_path.read_text())
    meta["metrics"].pop("intervals", None)  # as an entry built before intervals were stored
    old = VariantRecord.from_meta(meta)
    computed = record_interval_columns(old)
    assert computed == interval_columns(old.confusion)
    built = dataclasses.replace(old, intervals=computed)
    again = VariantRecord.from_meta({**built.to_meta(), "key": built.key})
    assert again.intervals == computed and record_interval_columns(again) == computed
    stored = dict(computed, accuracy_lo=0.5)  # what was stored is what is shown: the bootstrap is not redone
    assert record_interval_columns(dataclasses.replace(old, intervals=stored))["accuracy_lo"] == 0.5
    partial = {c: 0.0 for c in INTERVAL_COLUMNS[:2]}  # an incomplete set is recomputed, never half-used
    assert record_interval_columns(dataclasses.replace(old, intervals=partial)) == computed


def test_a_seed_point_near_one_stays_within_one_and_reads_as_a_range():
    from explorer.uncertainty import replicate_interval

    iv = replicate_interval([0.99, 0.95, 0.97], 0.02)
    assert iv.hi == 1.0 and iv.lo < 0.97
    assert iv.text() == f"0.97 [{iv.lo:.2f}, 1.00] (3 seeds)"
    assert replicate_interval([0.90, 0.89, 0.91], 0.006).text().startswith("0.90 ± ")  # symmetric: as before
