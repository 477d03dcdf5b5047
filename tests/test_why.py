"""The per-lever 'why' is measured first and explained second: on real records of two kinds of host, a line
never contradicts the measurement beside it; flags are read as the kernel spells them."""

import json
from pathlib import Path

import pytest

from explorer.measure.host import parse_cpu_flags
from explorer.present.why import reasons, siblings
from explorer.record import Latency, VariantRecord
from explorer.spec import VariantSpec

HOSTS = Path(__file__).parent / "data" / "hosts"
INTEL = HOSTS / "intel-xeon-avx512-amx-2core"
SHIPPED = Path(__file__).parent.parent / "cached_models" / "variants"
X86_AVX = frozenset({"avx", "avx2", "avx512_vnni"})


def _why(spec, **over):
    args = dict(flags=X86_AVX, machine="x86_64", cores=2, threads=1, fallback_ops=[],
                layer_kinds=["conv", "pool", "flatten", "dense", "logits", "softmax"], macs=1000)
    args.update(over)
    return {r.lever: r for r in reasons(spec, **args)}


def _flags(path: Path, field: str = "flags") -> frozenset[str]:
    return parse_cpu_flags(f"processor\t: 0\n{field}\t\t: {path.read_text().strip()}\n")


@pytest.fixture(scope="module")
def shipped():
    """The shipped variants by label, and the Intel host's latency records of them by key."""
    metas = [json.loads(p.read_text()) for p in SHIPPED.glob("*/meta.json")]
    records = {m["label"]: VariantRecord.from_meta(m) for m in metas}
    intel = {p.stem: Latency.from_dict(json.loads(p.read_text())) for p in (INTEL / "latency").glob("*.json")}
    return records, intel


def _on_intel(records, intel, label):
    v = records[label]
    sib = {lever: intel.get(records[s.label()].key) if s.label() in records else None
           for lever, s in siblings(v.spec).items()}
    return {r.lever: r for r in reasons(v.spec, flags=_flags(INTEL / "cpuinfo-flags.txt"), machine="x86_64", cores=2,
                                        threads=1, fallback_ops=v.fallback_ops, layer_kinds=[lp.kind for lp in v.layers],
                                        macs=v.macs, latency=intel[v.key], sibling_latency=sib)}


def test_flags_are_read_as_the_kernel_spells_them():
    intel = _flags(INTEL / "cpuinfo-flags.txt")
    assert {"avx512_fp16", "avx512_vnni", "amx_int8"} <= intel and "avx512fp16" not in intel
    amd = _flags(HOSTS / "amd-epyc-flags.txt")
    assert "avx2" in amd and not amd & {"avx512_fp16", "avx512_vnni"}
    arm = _flags(HOSTS / "arm-cortex-a76-features.txt", "Features")
    assert {"asimddp", "asimdhp"} <= arm
    f16 = lambda flags: _why(VariantSpec(quant="float16"), flags=flags)["float16"].sentence  # noqa: E731
    assert "native fp16 (avx512_fp16) is not used" in f16(intel)
    assert "no native fp16" in f16(amd) and "native fp16 (asimdhp, fphp)" in f16(arm)
    assert "(amx_int8, avx512_vnni, avx_vnni)" in _why(VariantSpec(quant="int8"), flags=intel)["int8"].sentence


def test_on_the_intel_host_int8_is_said_slower_where_it_is_and_the_first_convolution_is_named(shipped):
    records, intel = shipped
    r = _on_intel(records, intel, "fashion-mnist-d2w32-fc128-ch0.5-int8")
    assert r["int8"].works is False
    assert "slower here: 38.2 µs against 20.6 µs, 0.54× the sibling's speed" in r["int8"].sentence
    assert "The first convolution takes 30.1 µs here against 4.3 µs" in r["int8"].sentence
    assert "every op runs in XNNPACK" in r["int8"].sentence  # a fact, no longer a ✓
    # depth 2, all channels: int8 is faster there (41.4 µs vs 63.9 µs) and the line says so
    r = _on_intel(records, intel, "fashion-mnist-d2w32-fc128-int8")
    assert r["int8"].works is True and "faster here" in r["int8"].sentence
    # dynamic range is the fastest mode on that host
    assert _on_intel(records, intel, "fashion-mnist-d2w32-fc128-ch0.5-dynamic")["dynamic"].works is True


def test_no_line_contradicts_its_measurement_on_either_host(shipped):
    records, intel = shipped
    checked = 0
    for label, v in records.items():
        for lever, s in siblings(v.spec).items():
            if s.label() not in records or lever in ("pruning", "clustering", "channels") or v.key not in intel:
                continue
            mine, theirs = intel[v.key], intel[records[s.label()].key]
            r = _on_intel(records, intel, label)[lever]
            if mine.p50_ci_us[1] < theirs.p50_ci_us[0]:
                assert r.works is True and "faster here" in r.sentence, r.sentence
            elif mine.p50_ci_us[0] > theirs.p50_ci_us[1]:
                assert r.works is False and "slower here" in r.sentence, r.sentence
            else:
                assert r.works is None and "no faster here" in r.sentence
            checked += 1
    assert checked >= 30


def test_nothing_measured_is_said_instead_of_predicting():
    r = _why(VariantSpec(quant="int8"))["int8"]
    assert r.works is None and r.sentence.startswith("Not measured against its sibling without int8 (d2w32-fc128-fp32)")
    r = _why(VariantSpec(quant="int8"), fallback_ops=["SOFTMAX"])["int8"]
    assert "SOFTMAX runs on LiteRT's built-in kernels" in r.sentence


def test_sparsity_names_every_blocker():
    r = _why(VariantSpec(sparsity=0.5, quant="int8"))["pruning"]
    assert "fp32 models (this one is int8)" in r.sentence and "1×1 convolutions" in r.sentence
    assert "at least 67% zeros (this has 50%)" in r.sentence and "AVX" in r.sentence
    r = _why(VariantSpec(sparsity=0.8, conv="separable"), layer_kinds=["separable"], machine="aarch64",
             flags=frozenset({"asimd"}))["pruning"]
    assert "can take XNNPACK's sparse path" in r.sentence


def test_channel_pruning_reports_the_macs_it_removes_and_threads_follow_the_host():
    r = _why(VariantSpec(channels=0.5), macs=250, unpruned_macs=1000)["channels"]
    assert "250 multiply-accumulates" in r.sentence and "4.00× fewer" in r.sentence
    assert not _why(VariantSpec(), cores=1)["threads"].works
    assert "1 of 2 cores" in _why(VariantSpec())["threads"].sentence
    assert "clustering" in _why(VariantSpec(clusters=16)) and "clustering" not in _why(VariantSpec())


def test_a_layer_kept_in_float_is_judged_against_full_int8(shipped):
    records, _ = shipped
    v = records["fashion-mnist-d2w32-fc128-int8-float-conv1"]
    sibs = siblings(v.spec)
    assert sibs["int8"].label() == "fashion-mnist-d2w32-fc128-fp32"
    assert sibs["precision"].label() == "fashion-mnist-d2w32-fc128-int8"
    r = _why(v.spec)["precision"]
    assert r.works is None and r.sentence.startswith("Not measured against its sibling without keeping conv1 in float")
