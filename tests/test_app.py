"""Every page driven with Streamlit's AppTest against a small real cache (digits variants)."""

import base64
import io
import json
import os
import subprocess
import sys
import time
import zipfile

import numpy as np
import pytest
from PIL import Image
from streamlit.testing.v1 import AppTest

from support import FAST_LATENCY, REPO, TINY, intel_only_cache, stop_workers, wait_until
from explorer.measure import host
from explorer import record
from explorer.present import links
from explorer.present.pareto import default_budget
from explorer.run import pipeline
from explorer.store.cache import Store
from explorer.spec import QUANT_MODES, VariantSpec

pytestmark = pytest.mark.slow
APP = str(REPO / "app.py")
SPECS = [VariantSpec(**TINY, quant="fp32"), VariantSpec(**TINY, quant="int8"),
         VariantSpec(**TINY, sparsity=0.5, quant="int8")]


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    root = tmp_path_factory.mktemp("appcache")
    store = Store(root)
    for spec in SPECS:
        pipeline.ensure(spec, store, latency_kwargs=FAST_LATENCY)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("EXPLORER_CACHE_DIR", str(root))
        userdata = tmp_path_factory.mktemp("userdata")
        mp.setenv("EXPLORER_DATA_DIR", str(userdata))
        import streamlit as st

        st.cache_data.clear()
        st.cache_resource.clear()
        yield store
        stop_workers(userdata)


def open_page(page: str | None = None) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=120)
    at.run()
    if page:
        at.switch_page(str(REPO / "pages" / f"{page}.py"))
        at.run()
    assert not at.exception, [e.message for e in at.exception]
    return at


def chart_specs(at: AppTest) -> list[dict]:
    return [json.loads(c.proto.spec) for c in at.get("plotly_chart")]


def values(arr) -> np.ndarray:
    """A plotly array from the JSON spec: a list, or base64 'bdata' with a dtype (plotly >= 6)."""
    if isinstance(arr, dict):
        return np.frombuffer(base64.b64decode(arr["bdata"]), dtype=arr["dtype"])
    return np.asarray(arr)


def markers(spec: dict) -> int:
    return sum(len(values(t["x"])) for t in spec["data"] if t.get("name") in QUANT_MODES)


def test_pareto_page_plots_every_variant_with_front_table_and_budget(cache):
    at = open_page()
    assert at.title[0].value == "Speed–accuracy Pareto front"
    at.sidebar.selectbox(key="dataset").set_value("digits").run()
    fig = chart_specs(at)[0]
    assert markers(fig) == len(SPECS)
    assert any(t["name"] == "Pareto front" for t in fig["data"])
    assert "measured on" in fig["layout"]["xaxis"]["title"]["text"]
    assert not at.dataframe  # drawn when asked: its data would cost every view
    at.toggle(key="pareto_table").set_value(True).run()
    assert len(at.dataframe[0].value) == len(SPECS)
    assert at.get("download_button")
    at.number_input(key="budget:digits:p50_us").set_value(1e6).run()
    assert "accuracy" in at.success[0].value
    # int8 and int8 with half its weights pruned barely differ on 360 test images: the answer says they tie
    int8, pruned = SPECS[1].key(), SPECS[2].key()
    evidence = (cache.read_predictions(int8), cache.read_predictions(pruned))
    assert np.mean(evidence[0] != evidence[1]) < 0.05  # their predictions barely differ
    assert "statistically tied with it" in at.success[0].value
    assert all(t in at.success[0].value for t in (SPECS[1].label(), SPECS[2].label()))
    shown = at.dataframe[0].value
    assert {"accuracy_lo", "accuracy_hi", "front"} <= set(shown.columns)
    assert (shown["accuracy_lo"] <= shown["accuracy"]).all() and set(shown["front"]) <= {"front", "tied", "dominated"}
    assert all("error_y" in t for t in fig["data"] if t.get("name") in QUANT_MODES)  # accuracy error bars
    at.number_input(key="budget:digits:p50_us").set_value(0.0).run()
    assert "Nothing fits under" in at.warning[0].value


def test_a_board_or_my_limits_fade_what_does_not_fit_and_the_answer_names_what_does(cache):
    fp32, int8 = (record.load(cache, s.key(), "x").memory.peak_ram_kb for s in SPECS[:2])
    assert int8 < fp32
    at = open_page()
    at.sidebar.selectbox(key="dataset").set_value("digits").run()
    at.number_input(key="budget:digits:p50_us").set_value(1e6).run()
    at.sidebar.selectbox(key="board").set_value("my limits").run()
    at.sidebar.number_input(key="ram_limit").set_value((int8 + fp32) / 2).run()
    answer = at.success[0].value
    assert "that fits" in answer and f"KB of RAM" in answer and SPECS[0].label() not in answer.split(";")[0]
    faded = [t for t in chart_specs(at)[0]["data"] if t.get("opacity") == 0.2 and t.get("x") != [None]]
    assert [t["name"] for t in faded] == ["fp32"]
    assert "2 of 3 fit your limits" in at.caption[-1].value or any("2 of 3 fit" in c.value for c in at.caption)
    at.sidebar.selectbox(key="board").set_value("STM32F746").run()  # 320 KiB: the tiny models all fit
    assert "(STM32F746)" in at.success[0].value
    at.sidebar.selectbox(key="x").set_value("peak_ram_kb").run()
    assert "Peak RAM" in chart_specs(at)[0]["layout"]["xaxis"]["title"]["text"]
    assert at.query_params["board"] == ["STM32F746"] or at.query_params["board"] == "STM32F746"


def test_pareto_page_filters_and_switches_axis(cache):
    at = open_page()
    at.sidebar.selectbox(key="dataset").set_value("digits").run()
    at.sidebar.multiselect(key="quants:digits").set_value(["int8"]).run()
    assert markers(chart_specs(at)[0]) == 2
    at.sidebar.selectbox(key="x").set_value("gzip_kb").run()
    assert "Gzipped size" in chart_specs(at)[0]["layout"]["xaxis"]["title"]["text"]


def test_a_new_host_sees_other_hosts_figures_at_once_then_its_own_from_the_worker(cache):
    key = SPECS[0].key()
    path = cache.latency_path(key, host.current().id)
    foreign = json.loads(path.read_text())
    foreign["host"] = {**foreign["host"], "id": "otherhost", "label": "Another CPU (8 cores)"}
    foreign["p50_us"], foreign["p50_ci_us"] = foreign["p50_us"] / 50, [v / 50 for v in foreign["p50_ci_us"]]  # a fast CPU
    path.unlink()
    (path.parent / "otherhost.json").write_text(json.dumps(foreign))  # measured elsewhere only
    at = open_page()
    at.sidebar.selectbox(key="dataset").set_value("digits").run()
    traces = {t["name"]: len(values(t["x"])) for t in chart_specs(at)[0]["data"]}
    assert traces.get("fp32 (other host)") == 1  # drawn at once, hollow, in a trace of its own
    assert not path.exists()  # the page itself never measures
    budget = lambda: at.sidebar.number_input(key="budget:digits:p50_us").value  # noqa: E731
    time.sleep(1.1)  # the page asks the worker once it has been drawn (its status fragment's next tick)
    at.run()
    wait_until(path.exists, "the worker to measure it in the background", 90)
    mine = json.loads(path.read_text())
    assert mine["host"]["id"] == host.current().id and mine["p50_ci_us"][0] <= mine["p50_us"]
    assert mine["provisional"] and len(mine["block_p50s_us"]) == 3 and not mine["ops"]  # the quick first pass
    at.run()
    assert "provisional" in at.caption[-1].value or any("provisional" in c.value for c in at.caption)
    wait_until(lambda: at.run() and not json.loads(path.read_text())["provisional"],
               "the full protocol to replace the first pass", 90, every=1)
    full = json.loads(path.read_text())
    assert len(full["block_p50s_us"]) in (6, 12, 18) and full["ops"] and full["throughput_ips"]
    at.run()
    traces = {t["name"]: len(values(t["x"])) for t in chart_specs(at)[0]["data"]}
    assert "fp32 (other host)" not in traces and traces["fp32"] == 1
    # the default budget followed this host's figures: something fits, never "nothing fits" by default
    shown = np.concatenate([values(t["x"]) for t in chart_specs(at)[0]["data"] if t.get("name") in QUANT_MODES])
    assert budget() == default_budget(shown) and not any("Nothing fits" in w.value for w in at.warning)


def test_the_default_budget_stays_while_this_host_measures_then_follows_its_figures(tmp_path, monkeypatch):
    """A newcomer's page: another host's figures first; this host's landing one by one do not move the default."""
    import streamlit as st
    from pages.ui import measuring

    cache, _ = intel_only_cache(tmp_path / "cache")
    monkeypatch.setenv("EXPLORER_CACHE_DIR", str(cache))
    monkeypatch.setenv("EXPLORER_DATA_DIR", str(tmp_path / "user_data"))
    monkeypatch.setattr(measuring, "request_measurements", lambda *a, **k: 0)  # this test lands the figures itself
    st.cache_data.clear()
    st.cache_resource.clear()
    store, here = Store(cache), host.current()
    keys = [m["key"] for m in store.variants()[0] if m["dataset"]["name"] == "fashion-mnist" and
            store.file_path("variants", m["key"], "model.tflite").exists()]

    def land(some: list[str], factor: float) -> None:  # this host measures some variants: factor x the other's
        for key in some:
            (theirs,) = [r for r in store.latencies(key).values() if r["host"]["id"] != here.id]
            store.write_latency(key, here.id, {**theirs, "host": {**theirs["host"], "id": here.id},
                                               "p50_us": theirs["p50_us"] * factor,
                                               "p50_ci_us": [v * factor for v in theirs["p50_ci_us"]]})

    def shown() -> np.ndarray:
        return np.concatenate([values(t["x"]) for t in chart_specs(at)[0]["data"]
                               if t.get("name", "").split(" (")[0] in QUANT_MODES])

    try:
        at = open_page()
        budget = lambda: at.sidebar.number_input(key="budget:fashion-mnist:p50_us").value  # noqa: E731
        first = budget()
        assert first == default_budget(shown()) and "it stays while this host's figures land" in " ".join(
            c.value for c in at.sidebar.caption)
        land(keys[: len(keys) // 2], 0.2)  # half of them, five times as fast here: the median moves
        at.run()
        assert default_budget(shown()) != first and budget() == first  # held
        land(keys[len(keys) // 2:], 0.2)  # the last ones land: this host's figures decide
        at.run()
        assert budget() == default_budget(shown()) < first
        at.sidebar.number_input(key="budget:fashion-mnist:p50_us").set_value(123.0).run()
        land(keys, 0.5)
        at.run()
        assert budget() == 123.0  # a budget the user typed stays
    finally:
        stop_workers(tmp_path / "user_data")
        st.cache_data.clear()
        st.cache_resource.clear()


def test_damaged_entry_is_reported_and_the_rest_still_renders(cache):
    victim = cache.file_path("variants", SPECS[2].key(), "model.tflite")
    original = victim.read_bytes()
    try:
        victim.write_bytes(original[: len(original) // 2])
        at = open_page()
        at.sidebar.selectbox(key="dataset").set_value("digits").run()
        assert markers(chart_specs(at)[0]) == len(SPECS) - 1
        assert "damaged" in at.expander[0].label
    finally:
        victim.write_bytes(original)


def _set_knobs(at: AppTest, spec: VariantSpec) -> None:
    at.sidebar.selectbox(key="k_dataset").set_value(spec.dataset).run()
    at.sidebar.slider(key="k_sparsity").set_value(spec.sparsity).run()  # enables the schedule radio
    at.sidebar.select_slider(key="k_image_size").set_value(spec.image_size).run()  # sets the depths on offer
    colour = at.sidebar.radio(key="k_colour")
    assert colour.disabled == (spec.dataset == "digits")  # a grey dataset has no colour to drop
    for name in ("depth", "conv", "padding", "head", "class_weight") + (("schedule",) if spec.sparsity else ()):
        at.sidebar.radio(key=f"k_{name}").set_value(getattr(spec, name))
    for name in ("width", "dense", "clusters", "learning_rate", "batch_size", "min_steps"):
        at.sidebar.select_slider(key=f"k_{name}").set_value(getattr(spec, name))
    for name in ("epochs", "tune_epochs", "channels", "dropout", "patience"):
        at.sidebar.slider(key=f"k_{name}").set_value(getattr(spec, name))
    for name in ("batchnorm", "augment"):
        at.sidebar.toggle(key=f"k_{name}").set_value(getattr(spec, name))
    at.sidebar.selectbox(key="k_quant").set_value(spec.quant)
    at.sidebar.number_input(key="k_seed").set_value(spec.seed)
    at.run()


def _button(at: AppTest, label: str):
    return next(b for b in at.button if b.label == label)


def test_explore_loads_a_cached_variant_with_deltas_against_its_baseline(cache):
    at = open_page("explore")
    _set_knobs(at, SPECS[2])
    assert "In the cache" in at.markdown[0].value
    assert not any(b.label == "Load" for b in at.button)  # its result shows at once: no click to load it
    assert not at.exception
    metrics = {m.label: m for m in at.metric}
    value, half = metrics["Test accuracy"].value.split(" ± ")  # with its interval, e.g. 0.96 ± 0.02
    assert float(value) > 0.8 and len(value.split(".")[1]) == len(half.split(".")[1]) <= 3  # no 4 decimals under ±2 pts
    assert "pts" in metrics["Test accuracy"].delta  # against the fp32 unpruned baseline
    assert "speed-up" in metrics["Latency p50"].delta
    assert "smaller" in metrics["Gzipped"].delta


def test_explore_trains_an_uncached_variant_with_progress(cache):
    spec = VariantSpec(**{**TINY, "epochs": 3, "quant": "dynamic", "seed": 7})
    at = open_page("explore")
    _set_knobs(at, spec)
    assert "Not built yet" in at.markdown[0].value
    _button(at, "Train and measure").click().run()
    assert not at.exception
    assert at.get("status")  # progress shown while the worker builds (it takes seconds to start)
    wait_until(lambda: at.run() and any(m.label == "Test accuracy" for m in at.metric), "the result card", every=1)
    assert not at.exception and not at.error
    assert cache.has("variants", spec.key())
    assert any(m.label == "Test accuracy" for m in at.metric)
    pareto = open_page()  # the same server process: the new variant shows without a restart
    pareto.sidebar.selectbox(key="dataset").set_value("digits").run()
    assert markers(chart_specs(pareto)[0]) == len(SPECS) + 1


def test_a_full_disk_gives_a_message_not_a_traceback(cache, monkeypatch):
    import sqlite3

    from explorer.run import queue as queue_module

    path = cache.latency_path(SPECS[1].key(), host.current().id)
    saved = path.read_bytes()
    path.unlink()  # so the page asks the worker to measure it, and queuing fails

    def disk_full(*args, **kwargs):
        raise sqlite3.OperationalError("database or disk is full")

    monkeypatch.setattr(queue_module.sqlite3, "connect", disk_full)
    try:
        at = open_page()
        time.sleep(1.1)  # the page queues measurements once drawn
        at.run()
        assert not at.exception
        assert "Could not queue the measurements" in at.error[0].value and "disk is full" in at.error[0].value
        assert chart_specs(at)  # the rest still renders
    finally:
        monkeypatch.undo()
        path.write_bytes(saved)


def test_app_refuses_training_beyond_the_configured_size(cache):
    from explorer.run.executors import JobRequest, LocalExecutor

    with pytest.raises(ValueError, match="epochs: at most 5"):
        LocalExecutor(cache, max_epochs=5).submit(JobRequest.build(VariantSpec(**{**TINY, "epochs": 6}), cache), "me")


def test_compare_page_shows_ratios_per_class_and_latency(cache):
    at = open_page("compare")
    at.multiselect(key="compare_pick").set_value([s.label() for s in SPECS[:2]]).run()
    assert not at.exception
    specs = chart_specs(at)
    assert len(specs[0]["data"]) == 2 and len(values(specs[0]["data"][0]["y"])) == 10  # per-class bars
    assert specs[1]["data"][0]["type"] == "histogram"
    table = at.dataframe[0].value
    assert "speed-up vs first" in table.index
    delta = table.loc["Δ accuracy vs first"].iloc[1]  # paired by image: McNemar's p and its verdict
    assert "McNemar p = " in delta and " pts" in delta and ("significant" in delta or "a tie" in delta)


def test_details_page_shows_one_variant(cache):
    at = AppTest.from_file(APP, default_timeout=60)
    at.session_state["detail_key"] = SPECS[1].key()
    at.run()
    at.switch_page(str(REPO / "pages" / "details.py")).run()
    assert not at.exception
    assert at.selectbox(key="detail_select").value == SPECS[1].key()
    charts = chart_specs(at)
    # the int8 variant: the op profile, then each op's int8 error in the same order, then the memory profile
    assert [s["data"][0]["type"] for s in charts] == ["heatmap", "histogram", "bar", "bar", "bar", "scatter"]
    bars, errors = charts[2]["data"][0], charts[3]["data"][0]
    assert len(bars["y"]) == len(bars["x"]) >= 5  # one bar per op on the image's path
    variant = record.load(cache, SPECS[1].key(), "x")
    assert len(errors["y"]) == len(variant.quant_error.layers) and "validation images" in " ".join(
        m.value for m in at.markdown)
    arena = charts[4]["data"][0]  # the memory profile: activations alive op by op, the peak in red
    plan = variant.memory
    assert len(arena["x"]) == len(plan.steps) and max(arena["y"]) == pytest.approx(plan.head_bytes / 1000)
    assert [m.value for m in at.metric if m.label == "Peak RAM"] == [f"{plan.peak_ram_kb:,.1f} KB"]
    captions = " ".join(c.value for c in at.caption)
    # the lever is judged by the fp32 sibling's measurement on this host, then explained
    assert "**int8** — Int8 is " in captions and "the sibling's speed" in captions
    assert "every op runs in XNNPACK" in captions
    assert "**int8** — Int8 needs less RAM: peak" in captions and "Peak RAM" in captions  # memory against fp32
    assert "Their sum" in captions and "of the recorded p50" in captions
    assert len(at.get("download_button")) == 2


def test_data_page_lists_datasets_with_counts(cache):
    at = open_page("data")
    assert [t.label for t in at.tabs][:3] == ["fashion-mnist", "fashion-mnist-imbalanced", "digits"]
    assert at.dataframe[0].value["test"].sum() == 10_000
    assert at.metric[0].value == "1.0 : 1" and at.metric[1].value == "20.0 : 1"  # the imbalanced view
    small = [w.value for w in at.warning if "Test split: 359 images" in w.value]  # digits: said plainly
    assert small and "±3.1 points" in small[0]
    assert any("Test split: 10,000 images" in c.value and "±0.6 points" in c.value for c in at.caption)


def test_results_pages_do_not_import_tensorflow(cache):
    """Opening every results page must not pull TensorFlow (2.5 s) into the server process."""
    code = f"""
import sys
from streamlit.testing.v1 import AppTest
at = AppTest.from_file({APP!r}, default_timeout=60); at.run()
for page in ("compare", "details", "data"):
    at.switch_page({str(REPO / 'pages')!r} + "/" + page + ".py"); at.run()
    assert not at.exception, at.exception
print("tensorflow" in sys.modules, "tf_keras" in sys.modules)
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO,
                         env={**os.environ, "EXPLORER_CACHE_DIR": str(cache.root)}, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.split()[-2:] == ["False", "False"]


OPENED: list[str] = []
_WATCH = {"on": False}


def _audit(event, args):
    if _WATCH["on"] and event == "open" and args and isinstance(args[0], (str, bytes, os.PathLike)):
        OPENED.append(os.fsdecode(args[0]))


sys.addaudithook(_audit)  # audit hooks cannot be removed: this one records only while a test switches it on

HOSTILE_LINKS = {
    "pareto": {"x": "../../etc/passwd", "dataset": "a" * 10_000, "budget": "nan", "depth": "9,../1",
               "quant": "evil", "log": "yes", "../../etc/passwd": "1"},
    "details": {"key": "../../../../etc/passwd", "depth": "a" * 10_000, "nope": "1"},
    "compare": {"keys": "../../etc/passwd," + "a" * 10_000, "foo": "bar"},
    "explore": {"dataset": "../../etc/passwd", "depth": "a" * 10_000, "quant": "evil", "nope": "1"},
}


@pytest.mark.parametrize("page", list(HOSTILE_LINKS))
def test_hostile_links_give_messages_no_exception_and_read_nothing_outside(cache, page):
    at = AppTest.from_file(APP, default_timeout=120)
    at.query_params.update(HOSTILE_LINKS[page])
    OPENED.clear()
    _WATCH["on"] = True
    try:
        open(os.devnull).close()  # the hook records: checked below
        if page != "pareto":
            at.run()
            at.switch_page(str(REPO / "pages" / f"{page}.py"))
            at.query_params.update(HOSTILE_LINKS[page])
        at.run()
    finally:
        _WATCH["on"] = False
    assert not at.exception, [e.message for e in at.exception]
    messages = [w.value for w in at.warning]
    assert any(m.startswith("Link:") for m in messages), messages
    assert all(len(m) < 400 for m in messages)  # a 10 kB value is never echoed back
    assert os.devnull in OPENED and not [p for p in OPENED if "passwd" in p or "aaaaaaaaaa" in p]


def test_a_pareto_link_opens_its_view(cache):
    at = AppTest.from_file(APP, default_timeout=120)
    at.query_params.update({"dataset": "digits", "x": "gzip_kb", "quant": "int8", "budget": "1000"})
    at.run()
    assert not at.exception and not at.warning
    assert at.sidebar.selectbox(key="x").value == "gzip_kb"
    assert at.sidebar.multiselect(key="quants:digits").value == ["int8"]
    assert at.number_input(key="budget:digits:gzip_kb").value == 1000
    fig = chart_specs(at)[0]
    assert "Gzipped size" in fig["layout"]["xaxis"]["title"]["text"] and markers(fig) == 2
    assert dict(at.query_params) == {"dataset": "digits", "x": "gzip_kb", "log": "0", "quant": "int8",
                                     "budget": "1000"}  # the address keeps the view


def test_a_details_link_to_a_missing_variant_says_so_and_offers_to_build_it(cache):
    spec = VariantSpec(**{**TINY, "seed": 99})
    at = AppTest.from_file(APP, default_timeout=120)
    at.run()
    at.switch_page(str(REPO / "pages" / "details.py"))
    at.query_params.update({"key": spec.key(), **links.spec_params(spec)})  # as Details writes it
    at.run()
    assert not at.exception
    assert any("is not in the cache" in w.value and spec.label() in w.value for w in at.warning)
    _button(at, "Build it on Explore").click().run()
    assert not at.exception
    assert at.session_state["k_seed"] == 99 and at.session_state["k_dataset"] == "digits"


def test_a_damaged_variant_on_explore_is_offered_for_rebuilding_not_rebuilt_in_the_page(cache):
    victim = cache.file_path("variants", SPECS[1].key(), "model.tflite")
    original = victim.read_bytes()
    try:
        victim.write_bytes(original[:100])
        at = open_page("explore")
        _set_knobs(at, SPECS[1])
        assert any("damaged" in w.value for w in at.warning)
        assert _button(at, "Train and measure")  # through the worker, like any build
        assert victim.read_bytes() == original[:100]  # the page itself rebuilt nothing
    finally:
        victim.write_bytes(original)


def test_an_uploaded_dataset_can_be_deleted_from_the_data_page(cache):
    import io
    import zipfile

    from PIL import Image

    from explorer.data import datasets, uploads

    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for cls in ("a", "b"):
            for i in range(6):
                img = io.BytesIO()
                Image.new("L", (8, 8), 30 * i).save(img, "PNG")
                zf.writestr(f"{cls}/{i}.png", img.getvalue())
    uploads.import_zip("throwaway", buf.getvalue())
    at = open_page("data")
    assert "throwaway" in [t.label for t in at.tabs]
    at.checkbox(key="sure-throwaway").check().run()
    at.button(key="delete-throwaway").click().run()
    assert not at.exception
    assert "throwaway" not in datasets.available()
    assert "throwaway" not in [t.label for t in at.tabs]


def test_a_newcomers_pages_show_the_other_hosts_figures_and_never_predict_a_verdict(tmp_path, monkeypatch):
    """The shipped cache as a new machine sees it: only the Intel host's records (real data), none of its own."""
    import streamlit as st

    cache, _ = intel_only_cache(tmp_path / "cache")
    monkeypatch.setenv("EXPLORER_CACHE_DIR", str(cache))
    monkeypatch.setenv("EXPLORER_DATA_DIR", str(tmp_path / "user_data"))
    st.cache_data.clear()
    st.cache_resource.clear()
    try:
        at = open_page()
        hollow = [len(values(t["x"])) for t in chart_specs(at)[0]["data"] if t["name"].endswith("(other host)")]
        shown = [m for m in Store(cache).variants()[0] if m["dataset"]["name"] == "fashion-mnist"]
        assert sum(hollow) == len(shown) > 40  # every fashion-mnist variant (seed points as one), the other host's
        title = chart_specs(at)[0]["layout"]["xaxis"]["title"]["text"]
        assert "measured on another host (hollow)" in title and host.current().label not in title
        assert at.success and "Nothing fits" not in at.success[0].value  # the default budget fits the data
        key = next(m["key"] for m in Store(cache).variants()[0] if m["label"] == "fashion-mnist-d2w32-fc128-ch0.5-int8")
        at.session_state["detail_key"] = key
        at.switch_page(str(REPO / "pages" / "details.py")).run()
        assert not at.exception
        lines = " ".join(c.value for c in at.caption)
        assert "**int8** — Not measured against its sibling without int8" in lines  # no ✓ predicted
        assert "Int8 is faster" not in lines and "Int8 is slower" not in lines
        # Compare opens on two variants with a latency (the most accurate row is a seed kept without its model)
        at.switch_page(str(REPO / "pages" / "compare.py")).run()
        assert not at.exception
        table = at.dataframe[0].value
        assert not table.loc["p50 µs"].isin(["—", "nan"]).any()
        assert float(table.loc["speed-up vs first"].iloc[1][:-1]) > 1  # the fastest of the dataset, against the best
        replicate = next(v for v in record.load_all(Store(cache), "x")[0] if not v.has_model)
        at.multiselect(key="compare_pick").set_value([replicate.label, table.columns[0]]).run()
        table = at.dataframe[0].value
        assert list(table.loc["p50 µs"])[0] == "—" and list(table.loc["speed-up vs first"]) == ["—", "—"]
        assert f"without its model (the same variant's other seed has one): {replicate.label}." in " ".join(
            c.value for c in at.caption)
    finally:
        stop_workers(tmp_path / "user_data")
        st.cache_data.clear()
        st.cache_resource.clear()


def test_a_seed_kept_as_evidence_is_one_point_with_its_sibling_and_its_details_have_no_model(cache, tmp_path, monkeypatch):
    import shutil

    import streamlit as st

    root = tmp_path / "cache"
    shutil.copytree(cache.root, root, ignore=shutil.ignore_patterns(".tmp"))
    monkeypatch.setenv("EXPLORER_CACHE_DIR", str(root))
    st.cache_data.clear()
    st.cache_resource.clear()
    points = markers(chart_specs(open_page("pareto"))[0])
    store = Store(root)
    spec = SPECS[0].replace(seed=1)
    pipeline.ensure(spec, store, measure_missing=False)
    store.keep_as_evidence(spec.key())
    st.cache_data.clear()
    st.cache_resource.clear()
    at = open_page("pareto")
    assert markers(chart_specs(at)[0]) == points  # the replicate joined its seed-0 sibling's point
    at = AppTest.from_file(APP, default_timeout=60)
    at.session_state["detail_key"] = spec.key()
    at.run()
    at.switch_page(str(REPO / "pages" / "details.py")).run()
    assert not at.exception
    assert any("kept without its model" in i.value for i in at.info)
    assert any("2 seed replicates" in c.value for c in at.caption)
    assert [b.label for b in at.get("download_button")] == ["Download metadata (JSON)"]  # no model to download


def test_picking_a_small_upload_on_explore_applies_its_defaults_and_the_card_names_them(cache, tmp_path):
    from explorer.data import datasets, uploads

    rng = np.random.default_rng(0)
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for cls in ("a", "b"):
            for i in range(10):
                png = io.BytesIO()
                Image.fromarray(rng.integers(0, 256, (16, 16), dtype=np.uint8), "L").save(png, "PNG")
                zf.writestr(f"{cls}/{i}.png", png.getvalue())
    uploads.import_zip("small-upload", buf.getvalue())
    datasets.split_sizes.cache_clear()
    at = open_page("explore")  # on the Pareto page's dataset (digits, small: its defaults), through the link
    at.sidebar.selectbox(key="k_dataset").set_value("fashion-mnist").run()
    assert at.sidebar.toggle(key="k_augment").value is False  # Fashion-MNIST: the plain recipe
    assert any("the plain recipe" in c.value for c in at.caption)
    at.sidebar.selectbox(key="k_dataset").set_value("small-upload").run()
    assert not at.exception
    assert at.sidebar.toggle(key="k_augment").value and at.sidebar.toggle(key="k_batchnorm").value
    assert at.sidebar.radio(key="k_padding").value == "same" and at.sidebar.slider(key="k_dropout").value == 0.3
    card = next(m.value for m in at.markdown if "Defaults for small-upload" in m.value)
    assert "augment on" in card and "14 training images" in card and "patience 20" in card
    at.sidebar.slider(key="k_dropout").set_value(0.0).run()
    card = next(m.value for m in at.markdown if "Defaults for small-upload" in m.value)
    assert "~~dropout 0.3~~ (changed)" in card
    at.sidebar.selectbox(key="k_dataset").set_value("fashion-mnist").run()  # back: the plain recipe again
    assert at.sidebar.toggle(key="k_augment").value is False and at.sidebar.radio(key="k_padding").value == "valid"


def test_the_budget_answer_stays_while_the_next_is_computed_and_goes_when_nothing_matches(cache):
    at = open_page()
    at.sidebar.selectbox(key="dataset").set_value("digits").run()
    first = at.success[0].value
    assert at.session_state["pareto_answer"] == (first, True)  # what the next rerun shows until its own is drawn
    at.sidebar.multiselect(key="quants:digits").set_value([]).run()
    assert "No variant matches" in at.warning[0].value and not at.success  # no stale answer above nothing
