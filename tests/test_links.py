"""Deep links as untrusted input (pure: no Streamlit, no TensorFlow)."""

import pytest

from explorer.present import links
from explorer.spec import VariantSpec

HOSTILE = ["../../etc/passwd", "/etc/passwd", "x" * 10_000, "nan", "inf", "-1", "1e400", "<script>", "%00", ""]


def test_a_pareto_view_round_trips_through_its_link():
    view = links.ParetoView("fashion-mnist", "peak_ram_kb", True, (1, 3), ("int8", "dynamic"), 250.0,
                            board="nRF52840", ram_kb=262.144, flash_kb=1048.576)
    parsed, problems = links.parse_pareto(links.pareto_params(view))
    assert parsed == view and problems == []
    assert links.parse_pareto({}) == (links.ParetoView(), [])


@pytest.mark.parametrize("name", ["dataset", "x", "log", "depth", "quant", "budget", "board", "ram", "flash"])
@pytest.mark.parametrize("value", HOSTILE)
def test_every_hostile_pareto_value_is_dropped_with_a_message(name, value):
    if name == "dataset" and value in ("nan", "inf", "1e400"):
        pytest.skip("a well-formed dataset name; the page says there is no such dataset")
    parsed, problems = links.parse_pareto({name: value})
    field = {"log": "log_x", "depth": "depths", "quant": "quants", "ram": "ram_kb", "flash": "flash_kb"}.get(name, name)
    assert getattr(parsed, field) is None
    assert len(problems) == 1 and f"'{name}'" in problems[0]


def test_unknown_and_overlong_parameters_are_named_and_ignored():
    parsed, problems = links.parse_pareto({"../../etc": "1", "x": "p50_us", "y" * 5000: "1"})
    assert parsed.x == "p50_us"
    assert any("'../../etc' is not a setting" in p for p in problems)
    assert any("…" in p for p in problems)  # a 5,000-character name is shortened in the message
    assert all(len(p) < 200 for p in problems)


def test_keys_are_sixteen_hex_digits_and_capped():
    good = ["0123456789abcdef", "fedcba9876543210"]
    keys, problems = links.parse_keys({"keys": ",".join([*good, "../../x", "0123456789ABCDEF", good[0]])}, "keys", 4)
    assert keys == tuple(good) and "2 values of 'keys' are not a variant key" in problems[0]
    many = ",".join(f"{i:016x}" for i in range(6))
    keys, problems = links.parse_keys({"keys": many}, "keys", 4)
    assert len(keys) == 4 and "first 4" in problems[0]


def test_a_spec_round_trips_and_bad_fields_say_why():
    spec = VariantSpec(depth=3, quant="int8", sparsity=0.5, learning_rate=3e-4, seed=7)
    params = links.spec_params(spec)
    assert params == {"dataset": "fashion-mnist", "depth": "3", "sparsity": "0.5", "quant": "int8",
                      "learning_rate": "0.0003", "seed": "7"}
    assert links.parse_spec(params) == (spec, [])
    assert links.parse_spec({}) == (None, [])
    spec, problems = links.parse_spec({"depth": "../1", "quant": "int8"})
    assert spec == VariantSpec(quant="int8") and "'depth' must be a whole number: ignored" in problems[0]
    spec, problems = links.parse_spec({"depth": "9"})
    assert spec is None and "depth: must be a whole number from 1 to 4" in problems[0]
    spec, problems = links.parse_spec({"dataset": "../../etc"})
    assert spec is None and "dataset" in problems[0]


def test_a_link_address_is_the_page_address_and_its_query():
    assert links.url("http://h:8501/pareto", {"x": "gzip_kb", "quant": "int8,fp32"}) == \
        "http://h:8501/pareto?x=gzip_kb&quant=int8%2Cfp32"
    assert links.url(None, {}) == ""


def test_on_off_levers_round_trip_through_a_link_and_bad_ones_are_named():
    spec = VariantSpec(batchnorm=True, augment=True, head="gap", channels=0.5)
    params = links.spec_params(spec)
    assert params["batchnorm"] == "1" and params["augment"] == "1" and "dropout" not in params
    assert links.parse_spec(params) == (spec, [])
    parsed, problems = links.parse_spec({"batchnorm": "False", "depth": "3"})
    assert parsed == VariantSpec(depth=3) and problems == ["'batchnorm' must be 0 or 1: ignored"]


def test_a_links_missing_fields_are_its_datasets_defaults_as_the_cli_fills_them():
    from explorer.models import recipe

    digits = recipe.for_dataset("digits").spec()
    assert digits != VariantSpec(dataset="digits")  # a small set's recipe turns levers on
    spec, problems = links.parse_spec({"dataset": "digits", "depth": "1", "quant": "int8"})
    assert problems == [] and spec == digits.replace(depth=1, quant="int8")
    plain = VariantSpec(dataset="digits", depth=1)  # the global defaults: every lever the recipe sets is named
    params = links.spec_params(plain)
    assert "batchnorm" in params or "augment" in params
    assert links.parse_spec(params) == (plain, [])
    own = VariantSpec(dataset="digits", model="keras:MobileNetV2:alpha=0.35", image_size=32, colour="rgb")
    assert links.parse_spec(links.spec_params(own)) == (own, [])  # the family's knobs stay at theirs
