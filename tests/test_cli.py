"""The command line on real (tiny) data: sweep, list, pareto, measure, add-dataset, and bad input."""

import io
import json
import zipfile

import pytest
from PIL import Image

from support import PLAIN_FLAGS
from explorer.run import cli
from explorer.store.cache import Store

pytestmark = pytest.mark.slow
TINY_FLAGS = ["--dataset", "digits", "--depth", "1", "--width", "8", "--dense", "32", "--epochs", "12",
              "--learning-rate", "0.01", "--batch-size", "32", *PLAIN_FLAGS]


def test_sweep_list_pareto_and_measure(tmp_path, capsys):
    cache = str(tmp_path / "cache")
    assert cli.main(["--cache", cache, "sweep", *TINY_FLAGS, "--quant", "fp32", "dynamic"]) == 0
    out, err = capsys.readouterr()
    assert "2 variants in" in err and "1 needed training" in err
    assert "digits-d1w8-fc32-fp32" in out and "digits-d1w8-fc32-dynamic" in out
    assert cli.main(["--cache", cache, "sweep", *TINY_FLAGS, "--quant", "fp32", "dynamic"]) == 0
    assert "0 needed training" in capsys.readouterr().err  # the second run only loads
    assert cli.main(["--cache", cache, "list"]) == 0
    table = capsys.readouterr().out
    assert table.count("digits-d1w8") == 2
    assert cli.main(["--cache", cache, "list", "--format", "json"]) == 0
    rows = json.loads(capsys.readouterr().out)  # for scripts: every column, both intervals, the latency's host
    assert sorted(r["label"] for r in rows) == sorted(line.split()[0] for line in table.splitlines()
                                                      if line.strip().startswith("digits-d1w8"))
    assert all(r["accuracy_lo"] <= r["accuracy"] <= r["accuracy_hi"] and r["p50_lo_us"] <= r["p50_us"] <= r["p50_hi_us"]
               and r["latency_host"] and r["seeds"] == 1 for r in rows)
    assert cli.main(["--cache", cache, "pareto", "--format", "csv"]) == 0
    csv_lines = capsys.readouterr().out.splitlines()
    assert csv_lines[0].startswith("key,label,") and "front" in csv_lines[0] and len(csv_lines) >= 2
    assert cli.main(["--cache", cache, "pareto", "--x", "gzip_kb"]) == 0
    out = capsys.readouterr().out
    assert "Non-dominated variants (Gzipped size (KB) vs Test accuracy)" in out
    assert "peak_ram_kb" in out and "flash_kb" in out
    assert cli.main(["--cache", cache, "pareto", "--board", "nRF52840"]) == 0  # TFLite Micro cannot run dynamic
    out = capsys.readouterr().out
    assert "Only the 1 of 2 variants that fit 262 KB of RAM and 1,049 KB of flash (nRF52840)" in out
    assert "digits-d1w8-fc32-fp32" in out and "dynamic" not in out.split("\n", 1)[1]
    assert cli.main(["--cache", cache, "measure"]) == 0
    assert "Measured 0 variants" in capsys.readouterr().err  # nothing missing on this host
    assert cli.main(["--cache", cache, "measure", "--all"]) == 0
    assert "Measured 2 variants" in capsys.readouterr().err
    assert len(Store(cache).variants()[0]) == 2


@pytest.mark.parametrize("argv,message", [
    (["sweep", "--dataset", "digits", "--depth", "4"], "depth: 4 blocks shrink a 8x8 image below 1x1"),
    (["sweep", "--sparsity", "1.0"], "sparsity: must be a number from 0.0 to 0.95"),
    (["sweep", "--dataset", "cifar"], "unknown dataset 'cifar'"),
])
def test_bad_input_is_one_clear_line_and_writes_nothing(tmp_path, capsys, argv, message):
    cache = tmp_path / "cache"
    assert cli.main(["--cache", str(cache), *argv]) == 2
    assert message in capsys.readouterr().err
    assert not list(cache.rglob("meta.json"))


def test_add_dataset_from_a_folder(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("EXPLORER_DATA_DIR", str(tmp_path / "data"))
    for cls in ("circles", "squares"):
        (tmp_path / "src" / cls).mkdir(parents=True)
        for i in range(5):
            Image.new("L", (16, 16), 50 * i).save(tmp_path / "src" / cls / f"{i}.png")
    assert cli.main(["add-dataset", "shapes", str(tmp_path / "src")]) == 0
    assert "circles (5), squares (5)" in capsys.readouterr().out
    assert cli.main(["add-dataset", "shapes", str(tmp_path / "src")]) == 2
    assert "exists already" in capsys.readouterr().err
    zipped = io.BytesIO()
    with zipfile.ZipFile(zipped, "w") as zf:
        zf.writestr("only/one.png", b"x")
    (tmp_path / "bad.zip").write_bytes(zipped.getvalue())
    assert cli.main(["add-dataset", "bad", str(tmp_path / "bad.zip")]) == 2


def test_preview_prints_latency_before_training_and_reuses_it(user_data, capsys):
    flags = ["--dataset", "digits", "--depth", "1", "--width", "8", "--dense", "32", *PLAIN_FLAGS]
    assert cli.main(["preview", *flags, "--quant", "fp32", "int8"]) == 0
    out = capsys.readouterr().out
    assert "digits-d1w8-fc32-fp32" in out and "digits-d1w8-fc32-int8" in out and "nothing was trained" in out
    assert out.count("measured in") == 2
    assert cli.main(["preview", *flags, "--quant", "int8", "--sparsity", "0.5"]) == 0  # same latency fields
    assert "cached" in capsys.readouterr().out
    assert cli.main(["preview", "--dataset", "digits", "--depth", "4"]) == 2  # does not fit 8x8: one clear line
    assert "depth: 4 blocks shrink" in capsys.readouterr().err


def test_bad_threads_and_a_missing_cache_folder_stop_before_any_work(tmp_path, capsys):
    with pytest.raises(SystemExit) as exc:
        cli.main(["sweep", *TINY_FLAGS, "--threads", "0"])
    assert exc.value.code == 2 and "--threads: must be a whole number from 1 to 64" in capsys.readouterr().err
    assert cli.main(["--cache", str(tmp_path / "nowhere"), "list"]) == 2
    assert "no cache folder at" in capsys.readouterr().err
    assert not (tmp_path / "nowhere").exists()


@pytest.fixture
def newcomer_cache(tmp_path):
    from explorer.measure import host
    from support import intel_only_cache

    cache, other = intel_only_cache(tmp_path / "cache")
    assert other != host.current().id
    return str(cache)


def test_on_a_new_host_the_cli_shows_other_hosts_figures_labelled_and_never_fails(newcomer_cache, user_data, tmp_path,
                                                                                  capsys):
    from pathlib import Path

    n = len(list((Path(newcomer_cache) / "variants").iterdir()))  # (their further seeds: evidence, in their points)
    assert cli.main(["--cache", newcomer_cache, "list"]) == 0
    out = capsys.readouterr().out
    assert "nan" not in out.lower() and out.count("fashion-mnist-") == n > 50
    assert "latency_from" in out and f"{n} of {n} latencies were measured on another host" in out
    assert cli.main(["--cache", newcomer_cache, "pareto"]) == 0
    out = capsys.readouterr().out
    assert "Non-dominated variants" in out and "fashion-mnist-d2w32-fc128-ch0.5-dynamic" in out  # that host's fastest
    assert cli.main(["--cache", newcomer_cache, "report", str(tmp_path / "view.html")]) == 0
    assert "Wrote" in capsys.readouterr().out and (tmp_path / "view.html").stat().st_size > 100_000
    assert cli.main(["--cache", newcomer_cache, "search", "--trials", "1", "--study", "new-host", "--quant", "fp32"]) == 0
    assert "fashion-mnist-d2w32-fc128-fp32" in capsys.readouterr().out  # the cached base, timed here


def test_seeds_build_replicates_that_list_as_one_row_with_their_interval(tmp_path, capsys):
    cache = str(tmp_path / "cache")
    quick = [f if f != "12" else "2" for f in TINY_FLAGS]  # 2 epochs: the replicates, not the accuracy, are tested
    assert cli.main(["--cache", cache, "sweep", *quick, "--quant", "fp32", "--seeds", "2"]) == 0
    assert "2 variants in" in capsys.readouterr().err
    assert cli.main(["--cache", cache, "list"]) == 0
    out = capsys.readouterr().out
    assert out.count("digits-d1w8-fc32") == 1 and "×2 seeds" in out
    assert "(2 seeds)" in out  # the accuracy is the mean with the range a new seed falls in


def test_jobs_and_targets_list_as_json_for_scripts(user_data, capsys):
    assert cli.main(["jobs", "--all", "--format", "json"]) == 0
    assert json.loads(capsys.readouterr().out.splitlines()[-1]) == []  # an empty queue: an empty list
    assert cli.main(["targets", "list", "--format", "json"]) == 0
    [local] = json.loads(capsys.readouterr().out)
    assert local["target"] == "local" and local["host_id"] and "/" in local["host"]  # slashes as written


def test_pareto_on_a_cache_timed_on_no_host_says_how_to_measure_and_fronts_peak_ram(tmp_path, capsys):
    import shutil

    from support import REPO

    cache = tmp_path / "cache"
    shutil.copytree(REPO / "cached_models", cache, ignore=shutil.ignore_patterns("latency"))
    assert cli.main(["--cache", str(cache), "pareto", "--dataset", "fashion-mnist"]) == 0
    out = capsys.readouterr().out
    count = int(out.split("None of the ")[1].split()[0])
    assert count > 40 and "has a latency measured yet: 'python -m explorer measure' times them" in out
    assert "No variants in the cache yet" not in out
    assert "the front on peak ram (tflite micro arena)" in out
    assert "Non-dominated variants (Peak RAM (TFLite Micro arena) (KB) vs Test accuracy)" in out
    assert "fashion-mnist-d" in out.split("Non-dominated", 1)[1]


def test_measure_quick_fills_provisional_figures_and_a_plain_measure_refines_them(tmp_path, capsys):
    """A new host's first pass (3 short blocks, no op profile) is marked provisional; the full protocol replaces it."""
    import shutil

    from support import REPO
    from explorer import record
    from explorer.measure import host

    cache = tmp_path / "cache"
    shutil.copytree(REPO / "cached_models", cache, ignore=shutil.ignore_patterns("latency"))
    keys = sorted(m["key"] for m in Store(cache).variants()[0]
                  if m["label"] in ("fashion-mnist-d1w32-fc128-fp32", "fashion-mnist-d1w32-fc128-int8"))
    assert cli.main(["--cache", str(cache), "measure", "--quick", "--target", "pi"]) == 2  # this machine's only
    assert "a target is timed by the full protocol" in capsys.readouterr().err
    assert cli.main(["--cache", str(cache), "measure", "--quick", "--key", *keys]) == 0
    assert "(quick first pass: provisional)" in capsys.readouterr().err
    here = host.current().id
    first = [record.load(Store(cache), k, here).latency for k in keys]
    assert all(lat.provisional and len(lat.block_p50s_us) == 3 and not lat.ops and lat.rss_increase_bytes is None
               and lat.p50_ci_us[0] <= lat.p50_us <= lat.p50_ci_us[1] for lat in first)
    assert cli.main(["--cache", str(cache), "list"]) == 0
    assert "2 of them are provisional (a quick first pass)" in capsys.readouterr().out
    assert cli.main(["--cache", str(cache), "measure", "--key", *keys]) == 0
    full = [record.load(Store(cache), k, here).latency for k in keys]
    assert all(not lat.provisional and len(lat.block_p50s_us) >= 6 and lat.ops and lat.rss_increase_bytes
               for lat in full)
