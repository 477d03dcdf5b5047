import pytest

from explorer.models import architecture
from explorer.spec import SpecError, VariantSpec


def test_reference_cnn_matches_the_write_up():
    """Conv 32->64->128 (3x3, valid) + 2x2 pools + Dense 512 on 28x28: 1x1x128 before the head."""
    layers = architecture.plan(VariantSpec(depth=3, width=32, dense=512), (28, 28, 1), 10)
    shapes = {layer.name: layer.output_shape for layer in layers}
    assert shapes["conv1"] == (26, 26, 32) and shapes["pool1"] == (13, 13, 32)
    assert shapes["conv3"] == (3, 3, 128) and shapes["flatten"] == (128,)
    assert architecture.total_params(layers) == 320 + 18_496 + 73_856 + 66_048 + 5_130
    assert architecture.total_macs(layers) == (26 * 26 * 9 * 32 + 11 * 11 * 9 * 32 * 64 + 3 * 3 * 9 * 64 * 128
                                               + 128 * 512 + 512 * 10)


def test_separable_convolutions_cut_macs():
    std = architecture.plan(VariantSpec(depth=2, conv="standard"), (28, 28, 1), 10)
    sep = architecture.plan(VariantSpec(depth=2, conv="separable"), (28, 28, 1), 10)
    assert architecture.total_macs(sep) < architecture.total_macs(std) / 2


def test_depth_that_shrinks_the_image_below_1x1_is_refused():
    assert architecture.max_depth(28, 28) == 3
    assert architecture.max_depth(8, 8) == 1
    with pytest.raises(SpecError, match=r"depth: 4 blocks shrink a 28x28 image below 1x1; at most 3"):
        architecture.plan(VariantSpec(depth=4), (28, 28, 1), 10)
    assert architecture.plan(VariantSpec(depth=4), (64, 64, 3), 5)[-1].output_shape == (5,)


def test_global_average_pooling_head_keeps_the_dense_layer_small():
    flat = architecture.plan(VariantSpec(depth=3, dense=512), (28, 28, 1), 10)
    gap = architecture.plan(VariantSpec(depth=3, dense=512, head="gap"), (28, 28, 1), 10)
    dense = {lp.name: lp for lp in gap}["dense"]
    assert dense.params == 128 * 512 + 512  # GAP leaves one value per channel of conv3
    big = architecture.plan(VariantSpec(depth=2, dense=512), (224, 224, 3), 10)
    big_gap = architecture.plan(VariantSpec(depth=2, dense=512, head="gap"), (224, 224, 3), 10)
    assert architecture.total_params(big_gap) < architecture.total_params(big) / 100
    assert architecture.total_params(gap) <= architecture.total_params(flat)


def test_batch_norm_and_dropout_layers_are_planned_where_the_model_puts_them():
    kinds = [lp.kind for lp in architecture.plan(VariantSpec(depth=1, batchnorm=True, dropout=0.5), (28, 28, 1), 10)]
    assert kinds == ["conv", "batchnorm", "relu", "pool", "flatten", "dropout", "dense", "dropout", "logits", "softmax"]
    conv = architecture.plan(VariantSpec(depth=1, batchnorm=True), (28, 28, 1), 10)[0]
    assert conv.params == 9 * 32  # no bias: batch normalization's beta takes its place


def test_more_clusters_than_the_smallest_kernel_has_weights_is_refused():
    with pytest.raises(SpecError, match="clusters: at most 72 here"):
        architecture.check(VariantSpec(depth=1, width=8, conv="standard", clusters=100), (8, 8, 1), 10)
    assert architecture.check(VariantSpec(depth=1, width=8, clusters=16), (8, 8, 1), 10)


def test_same_padding_keeps_the_borders_and_lets_deeper_stacks_fit():
    layers = architecture.plan(VariantSpec(depth=3, padding="same"), (28, 28, 1), 10)
    shapes = {lp.name: lp.output_shape for lp in layers}
    assert shapes["conv1"] == (28, 28, 32) and shapes["pool3"] == (3, 3, 128)
    assert architecture.max_depth(28, 28, "same") == 4 > architecture.max_depth(28, 28) == 3
    valid = architecture.plan(VariantSpec(depth=3), (28, 28, 1), 10)
    assert architecture.total_macs(layers) > 2 * architecture.total_macs(valid)


def test_the_largest_activation_is_the_first_block_of_a_large_image_in_float32_bytes():
    layers = architecture.plan(VariantSpec(), (28, 28, 1), 10)
    assert architecture.largest_activation_bytes(layers) == 4 * 26 * 26 * 32
    big = architecture.plan(VariantSpec(padding="same", head="gap"), (128, 128, 3), 8)
    assert architecture.largest_activation_bytes(big) == 4 * 128 * 128 * 32
