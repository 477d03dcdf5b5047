"""The per-technique 'why' is computed from its inputs: change an input, the sentence changes."""

from explorer.spec import VariantSpec
from explorer.present.why import reasons

X86_AVX = frozenset({"avx", "avx2", "avx512_vnni"})


def _why(spec, **over):
    args = dict(flags=X86_AVX, machine="x86_64", cores=2, threads=1, fallback_ops=[],
                layer_kinds=["conv", "pool", "flatten", "dense", "logits", "softmax"], macs=1000)
    args.update(over)
    return {r.lever: r for r in reasons(spec, **args)}


def test_sparsity_names_every_blocker_and_works_only_when_none_is_left():
    r = _why(VariantSpec(sparsity=0.5, quant="int8"))["pruning"]
    assert not r.works
    assert "fp32 models (this one is int8)" in r.sentence and "1×1 convolutions" in r.sentence
    assert "at least 67% zeros (this has 50%)" in r.sentence and "AVX" in r.sentence
    r = _why(VariantSpec(sparsity=0.8, conv="separable"), layer_kinds=["separable", "pool"])["pruning"]
    assert not r.works and "fp32 models" not in r.sentence and "zeros (" not in r.sentence and "AVX" in r.sentence
    r = _why(VariantSpec(sparsity=0.8, conv="separable"), layer_kinds=["separable"], machine="aarch64",
             flags=frozenset({"asimd"}))["pruning"]
    assert r.works and "sparse path" in r.sentence


def test_int8_sentence_follows_the_ops_xnnpack_left_behind():
    assert _why(VariantSpec(quant="int8"))["int8"].works
    r = _why(VariantSpec(quant="int8"), fallback_ops=["SOFTMAX"])["int8"]
    assert not r.works and "SOFTMAX runs on LiteRT's built-in kernels" in r.sentence
    assert "with int8 dot-product" in r.sentence
    assert "without int8 dot-product" in _why(VariantSpec(quant="int8"), flags=frozenset({"avx"}))["int8"].sentence


def test_float16_depends_on_native_fp16_arithmetic():
    assert not _why(VariantSpec(quant="float16"))["float16"].works
    assert _why(VariantSpec(quant="float16"), flags=X86_AVX | {"avx512fp16"})["float16"].works


def test_channel_pruning_reports_the_macs_it_removes_and_threads_follow_the_host():
    r = _why(VariantSpec(channels=0.5), macs=250, unpruned_macs=1000)["channels"]
    assert r.works and "250 multiply-accumulates" in r.sentence and "4.00× fewer" in r.sentence
    assert not _why(VariantSpec(), cores=1)["threads"].works
    assert "1 of 2 cores" in _why(VariantSpec())["threads"].sentence
    assert "clustering" in _why(VariantSpec(clusters=16)) and "clustering" not in _why(VariantSpec())
