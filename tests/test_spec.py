import pytest

from explorer.spec import SpecError, VariantSpec, stable_key

VERSIONS = {"tensorflow": "2.21.0", "tf-keras": "2.21.0", "tensorflow-model-optimization": "0.8.1"}


@pytest.mark.parametrize("field,value,needle", [
    ("sparsity", 1.0, "sparsity: must be a number from 0.0 to 0.95"),
    ("sparsity", -0.1, "sparsity"),
    ("depth", 0, "depth: must be a whole number from 1 to 4"),
    ("depth", 2.5, "depth"),
    ("quant", "int4", "quant: must be one of fp32, dynamic, float16, int8, qat-int8"),
    ("conv", "dilated", "conv"),
    ("clusters", 1, "clusters: must be 0 (off) or a whole number from 2 to 256"),
    ("dataset", "../etc", "dataset"),
    ("epochs", True, "epochs"),
    ("channels", 0.8, "channels: must be a number from 0.0 to 0.75"),
    ("head", "attention", "head: must be one of flatten, gap"),
    ("batchnorm", 1, "batchnorm: must be true or false"),
    ("class_weight", "inverse", "class_weight: must be one of none, balanced"),
    ("dropout", 0.9, "dropout"),
    ("patience", -1, "patience"),
    ("image_size", 4, "image_size: must be 0 (the dataset's own) or a whole number from 8 to 224"),
    ("colour", "sepia", "colour: must be one of native, grey"),
])
def test_invalid_fields_name_the_field_and_range(field, value, needle):
    with pytest.raises(SpecError) as exc:
        VariantSpec(**{field: value})
    assert exc.value.field == field
    assert needle in str(exc.value)


def test_from_dict_rejects_unknown_fields_and_round_trips():
    spec = VariantSpec(depth=3, sparsity=0.5, quant="int8")
    assert VariantSpec.from_dict(spec.to_dict()) == spec
    with pytest.raises(SpecError, match="spars: is not a spec field"):
        VariantSpec.from_dict({"spars": 0.5})


def test_key_is_stable_and_canonical():
    a = VariantSpec(sparsity=0.5, learning_rate=0.001)
    b = VariantSpec(sparsity=0.50000000001, learning_rate=1e-3)
    assert a.key(VERSIONS) == b.key(VERSIONS)
    # Pinned: a key must not change between runs or Python versions, or the shipped cache is lost.
    assert stable_key({"a": 1, "b": [1, 2]}, VERSIONS) == stable_key({"b": [1, 2], "a": 1}, VERSIONS)
    assert len(a.key(VERSIONS)) == 16


def test_key_changes_with_library_versions():
    spec = VariantSpec()
    assert spec.key(VERSIONS) != spec.key({**VERSIONS, "tensorflow": "2.22.0"})


def test_stages_share_keys_where_weights_are_shared():
    base = VariantSpec(depth=2)
    quant_modes = {base.replace(quant=q) for q in ("fp32", "int8", "dynamic")}
    assert len({s.base_key(VERSIONS) for s in quant_modes}) == 1
    assert len({s.tuned_key(VERSIONS) for s in quant_modes}) == 1
    assert len({s.key(VERSIONS) for s in quant_modes}) == 3
    pruned = base.replace(sparsity=0.5)
    assert pruned.base_key(VERSIONS) == base.base_key(VERSIONS)
    assert pruned.tuned_key(VERSIONS) != base.tuned_key(VERSIONS)
    # Fine-tune settings do not matter when nothing is fine-tuned.
    assert base.replace(tune_epochs=5).key(VERSIONS) == base.key(VERSIONS)
    assert base.replace(tune_epochs=5, quant="qat-int8").key(VERSIONS) != base.replace(quant="qat-int8").key(VERSIONS)


def test_labels_are_unique_and_readable_and_the_default_stays_short():
    from explorer.spec import VariantSpec

    assert VariantSpec().label() == "fashion-mnist-d2w32-fc128-fp32"
    seeds = {VariantSpec(seed=s).label() for s in range(10)}
    assert len(seeds) == 10 and "fashion-mnist-d2w32-fc128-fp32-seed3" in seeds
    spec = VariantSpec(depth=3, dense=512, epochs=10, sparsity=0.5, schedule="polynomial", quant="qat-int8",
                       learning_rate=3e-4, batch_size=64, tune_epochs=3)
    assert spec.label() == "fashion-mnist-d3w32-fc512-s0.5-poly-qat-int8-e10-lr0.0003-b64-ft3"
    assert VariantSpec(tune_epochs=5).label() == VariantSpec().label() == VariantSpec(schedule="polynomial").label()
    # (fine-tune epochs and the schedule do not change an untuned variant: it is the same variant, the same key)
    assert VariantSpec(tune_epochs=5).key() == VariantSpec().key()


def test_training_levers_belong_to_the_base_stage_and_channel_pruning_to_the_tuned_one():
    base = VariantSpec()
    for lever in (dict(head="gap"), dict(batchnorm=True), dict(dropout=0.3), dict(augment=True),
                  dict(class_weight="balanced"), dict(patience=0), dict(min_steps=0)):
        assert base.replace(**lever).base_key(VERSIONS) != base.base_key(VERSIONS), lever
    pruned = base.replace(channels=0.5)
    assert pruned.is_tuned and pruned.base_key(VERSIONS) == base.base_key(VERSIONS)
    assert pruned.tuned_key(VERSIONS) != base.tuned_key(VERSIONS)
    assert VariantSpec(head="gap", batchnorm=True, dropout=0.3, augment=True, class_weight="balanced",
                       channels=0.25, quant="int8").label() == "fashion-mnist-d2w32-fc128-gap-bn-do0.3-aug-cw-ch0.25-int8"


def test_fields_added_later_leave_existing_keys_alone_at_their_neutral_value():
    spec = VariantSpec(depth=3, quant="int8")
    assert "image_size" not in spec.to_dict() and "colour" not in spec.to_dict()
    assert VariantSpec.from_dict(spec.to_dict()) == spec
    resized = spec.replace(image_size=64, colour="grey")
    assert resized.to_dict()["image_size"] == 64 and VariantSpec.from_dict(resized.to_dict()) == resized
    assert len({spec.key(VERSIONS), resized.key(VERSIONS), spec.replace(image_size=64).key(VERSIONS)}) == 3
    assert resized.base_key(VERSIONS) != spec.base_key(VERSIONS)
    assert resized.label() == "fashion-mnist-64px-grey-d3w32-fc128-int8"


def test_a_model_source_is_parsed_once_and_written_back_the_same():
    from explorer.spec import ModelSource

    for text in ("", "file:resnet@3fa2c1d9e0b1", "keras:MobileNetV2:alpha=0.35"):
        assert str(ModelSource.parse(text)) == text and str(VariantSpec(model=text).source) == text
    imported = VariantSpec(model="file:resnet@3fa2c1d9e0b1").source
    assert imported.imported and (imported.name, imported.hash) == ("resnet", "3fa2c1d9e0b1")
    app = ModelSource.parse("keras:MobileNetV3Small:minimalistic=true:alpha=0.75")
    assert app.application and str(app.canonical()) == "keras:MobileNetV3Small:alpha=0.75:minimalistic=true"
    assert str(app.with_args(alpha=None)) == "keras:MobileNetV3Small:minimalistic=true"
    assert app.label() == "MobileNetV3Small-minimalistictrue-alpha0.75" and ModelSource.parse("").kind == "built-in"
