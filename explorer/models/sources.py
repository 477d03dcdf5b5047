"""Where a variant's network comes from, behind one interface the pipeline uses whatever the source.

    >>> source = for_spec(VariantSpec(model="keras:MobileNetV2:alpha=0.35", image_size=96, colour="rgb"))
    >>> m = source.build(spec, (96, 96, 3), 10)

Four sources (spec.model): the built-in family (""), a keras.applications architecture by name and
arguments, built with weights=None for the dataset's shape and classes and trained on it
("keras:MobileNetV2:alpha=0.35"), an imported .keras model, trained or not, which the levers fine-tune
from, and an imported .tflite, measured and evaluated as it is ("file:NAME@HASH", explorer.models.imports).
Each gives the pipeline: its check against a dataset, its base Keras model, its layers (shapes, parameters,
MACs) and, for a converted file, the model itself. Nothing from an imported file is ever executed: .keras
files are loaded with safe_mode=True, after the import checked them.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from pathlib import Path

from explorer.models import architecture
from explorer.models.architecture import LayerPlan
from explorer.spec import FAMILY_FIELDS, ModelSource, SpecError, VariantSpec

APPLICATIONS = ("MobileNet", "MobileNetV2", "MobileNetV3Small", "MobileNetV3Large", "EfficientNetB0", "ResNet50",
                "DenseNet121", "NASNetMobile")  # keras.applications that build offline with weights=None
APP_ARGS = {"alpha": float, "minimalistic": lambda v: v == "true", "dropout_rate": float, "depth_multiplier": int}
ALPHAS = {"MobileNet": (0.25, 0.5, 0.75, 1.0), "MobileNetV2": (0.35, 0.5, 0.75, 1.0, 1.3),
          "MobileNetV3Small": (0.75, 1.0), "MobileNetV3Large": (0.75, 1.0)}  # the widths keras.applications builds
SMALLEST_FIRST = {"MobileNetV2": 0.35}  # the width Explore offers first: the one that trains in minutes on 2 cores
MIN_SIDE = 32  # the smallest image side the offered keras.applications architectures take
# Levers that belong to the built-in family (explorer.spec.FAMILY_FIELDS): what a knob says elsewhere.
FAMILY_ONLY = "the built-in family's: your network keeps its own architecture"


@dataclass(frozen=True)
class Scale:
    """The input range a model expects; the dataset's [0, 1] images are mapped to it (explorer.data keeps [0, 1])."""

    name: str  # "0-1" (the default), "-1-1" or "0-255"
    factor: float
    offset: float


SCALES = {s.name: s for s in (Scale("0-1", 1.0, 0.0), Scale("-1-1", 2.0, -1.0), Scale("0-255", 255.0, 0.0))}


class Source:
    """The built-in family: today's knobs (explorer.models.architecture and model)."""

    kind = "built-in"
    scale = SCALES["0-1"]
    converted = False  # True: the source is a .tflite, measured and evaluated as it is (no training, no levers)

    def input_shape(self) -> tuple[int, int, int] | None:
        """The input the network needs (None: any, the dataset's)."""
        return None

    def classes(self) -> int | None:
        return None

    def check(self, spec: VariantSpec, input_shape: tuple[int, int, int], num_classes: int) -> None:
        architecture.check(spec, input_shape, num_classes)

    def layers(self, spec: VariantSpec, input_shape: tuple[int, int, int], num_classes: int,
               built=None) -> list[LayerPlan]:
        """The network's layers with their shapes, parameters and MACs; `built`: its Keras model when the caller
        has it already (another network's layers are read from its model, which is not built twice)."""
        return architecture.plan(spec, input_shape, num_classes)

    def build(self, spec: VariantSpec, input_shape: tuple[int, int, int], num_classes: int):
        from explorer.models import model as model_lib

        return model_lib.build(spec, input_shape, num_classes)

    def tflite(self) -> bytes:
        raise ValueError("the built-in family is converted from its trained model")

    def folder(self) -> Path | None:
        """The user-data folder a build on another machine needs (None: every machine has what it needs)."""
        return None

    def data(self, spec: VariantSpec):
        """The spec's dataset at its image size and colour, in the range the network expects."""
        from explorer.data import datasets

        d = datasets.load_for(spec)
        if self.scale.name == "0-1":
            return d
        f, o = self.scale.factor, self.scale.offset
        return dataclasses.replace(d, x_train=d.x_train * f + o, x_val=d.x_val * f + o, x_test=d.x_test * f + o)


def _check_io(source: Source, spec: VariantSpec, input_shape: tuple[int, int, int], num_classes: int) -> None:
    want = source.input_shape()
    if want is not None and tuple(input_shape) != tuple(want):
        raise SpecError("image_size", f"{spec.model} takes {want[0]}x{want[1]}x{want[2]} images; the dataset gives "
                                      f"{input_shape[0]}x{input_shape[1]}x{input_shape[2]} (set image_size {want[0]} and "
                                      f"colour {'rgb' if want[2] == 3 else 'grey'}, or let the CLI and app do it)",
                        spec.image_size)
    if source.classes() is not None and source.classes() != num_classes:
        raise SpecError("model", f"{spec.model} has {source.classes()} outputs but dataset {spec.dataset} has "
                                 f"{num_classes} classes: the model's output width must equal the number of classes",
                        spec.model)


class Application(Source):
    """A keras.applications architecture, built untrained for the dataset's shape and classes."""

    kind = "keras.applications"

    def __init__(self, model: str):
        source = ModelSource.parse(model)
        if source.name not in APPLICATIONS:
            raise SpecError("model", f"{source.name} is not one of the architectures offered: "
                                     f"{', '.join(APPLICATIONS)}", model)
        self.name, self.args = source.name, {}
        for key, value in source.args:
            if key not in APP_ARGS:
                raise SpecError("model", f"{key} is not an argument offered ({', '.join(APP_ARGS)})", model)
            try:
                self.args[key] = APP_ARGS[key](value)
            except ValueError as exc:
                raise SpecError("model", f"{key}={value} is not a valid value", model) from exc

    def check(self, spec: VariantSpec, input_shape: tuple[int, int, int], num_classes: int) -> None:
        if min(input_shape[:2]) < MIN_SIDE:
            raise SpecError("image_size", f"{self.name} needs images of at least {MIN_SIDE}x{MIN_SIDE}", spec.image_size)
        if input_shape[2] != 3 and self.name != "MobileNet":
            raise SpecError("colour", f"{self.name} takes colour images: set colour rgb", spec.colour)

    def build(self, spec: VariantSpec, input_shape: tuple[int, int, int], num_classes: int):
        from explorer.models.tf_runtime import keras

        keras.utils.set_random_seed(spec.seed)
        keras.backend.reset_uids()  # the names Keras numbers (tf.__operators__.add_3, re_lu_7) count per process:
        # reset, every build of one architecture names its layers alike, so a layer kept in float is found again
        kwargs = dict(self.args)
        if self.name.startswith("MobileNetV3"):
            kwargs.setdefault("include_preprocessing", False)  # the data is in [0, 1] already
        m = getattr(keras.applications, self.name)(weights=None, input_shape=tuple(input_shape), classes=num_classes,
                                                   classifier_activation=None, **kwargs)
        # the softmax as a layer of its own, as the family's: full-integer conversions end at the logits
        m = keras.Model(m.inputs, keras.layers.Activation("softmax", name="softmax")(m.outputs[0]), name=m.name)
        for layer in m.layers:  # keras.applications' 0.999 keeps untrained statistics for thousands of steps;
            if isinstance(layer, keras.layers.BatchNormalization):  # trained here from scratch: the family's 0.9
                layer.momentum = 0.9
        return m

    def layers(self, spec: VariantSpec, input_shape: tuple[int, int, int], num_classes: int,
               built=None) -> list[LayerPlan]:
        return describe(built or self.build(spec, input_shape, num_classes))


class Imported(Source):
    """A model file the user imported (explorer.models.imports): .keras, or .tflite (converted already)."""

    def __init__(self, model: str):
        from explorer.models import imports

        self.model = model
        self.meta = imports.find(model)
        self.kind = "imported .tflite" if self.meta.kind == "tflite" else "imported .keras"
        self.converted = self.meta.kind == "tflite"
        self.scale = SCALES[self.meta.scale]
        self.path: Path = self.meta.path

    def input_shape(self) -> tuple[int, int, int]:
        return tuple(self.meta.input_shape)

    def folder(self) -> Path:
        return self.path.parent

    def classes(self) -> int:
        return self.meta.classes

    def check(self, spec: VariantSpec, input_shape: tuple[int, int, int], num_classes: int) -> None:
        _check_io(self, spec, input_shape, num_classes)
        if self.converted:
            levers = [f for f in ("sparsity", "clusters") if getattr(spec, f)] + (
                ["quant"] if spec.quant != "fp32" else []) + (["precision"] if spec.precision != "full" else [])
            if levers:
                raise SpecError(levers[0], "a .tflite is measured and evaluated as it is: it was converted already "
                                           "(no training, quantization, pruning or clustering)", getattr(spec, levers[0]))

    def data(self, spec: VariantSpec):
        """The dataset, with the augmentation layers the import set aside from the model (applied in training)."""
        return dataclasses.replace(super().data(spec), augmentation=self.meta.augmentation)

    def build(self, spec: VariantSpec, input_shape: tuple[int, int, int], num_classes: int):
        if self.converted:
            raise ValueError("an imported .tflite has no Keras model to train")
        from explorer.models import imports

        return imports.load_keras(self.path)

    def layers(self, spec: VariantSpec, input_shape: tuple[int, int, int], num_classes: int,
               built=None) -> list[LayerPlan]:
        if self.converted:
            return list(self.meta.layers)
        return describe(built or self.build(spec, input_shape, num_classes))

    def tflite(self) -> bytes:
        return self.path.read_bytes()


def resolve(text: str) -> str:
    """A source as a user names it (an imported model's name, keras:Name[:arg=value], or "builtin") in the
    form a spec keeps (file:NAME@HASH for an import; keras arguments in sorted order); SpecError if unknown."""
    if text in ("", "builtin", "built-in"):
        return ""
    if text.startswith("keras:"):
        canonical = str(ModelSource.parse(text).canonical())
        VariantSpec(model=canonical)
        Application(canonical)  # the name and arguments are offered
        return canonical
    if text.startswith("file:"):
        VariantSpec(model=text)
        return text
    from explorer.models import imports

    found = {m.name: m for m in imports.available()}
    if text not in found:
        raise SpecError("model", "must be an imported model's name ("
                                 + (", ".join(found) if found else "none imported yet: python -m explorer import-model")
                                 + "), keras:Name[:arg=value] or builtin", text)
    return found[text].source


def with_args(model: str, **args) -> str:
    """A keras: source with these arguments set (canonical: sorted), e.g. its width multiplier alpha; an
    argument set to None is removed."""
    text = {k: None if v is None else f"{v:g}" if isinstance(v, float) else str(v) for k, v in args.items()}
    return resolve(str(ModelSource.parse(model).with_args(**text)))


def on_source(spec: VariantSpec, model: str) -> VariantSpec:
    """The spec built from `model` (a resolved source) instead: the built-in family's knobs back at their
    defaults, the image size and colour its network needs (fitted)."""
    if not model:
        return spec.replace(model="")
    defaults = VariantSpec()
    return fitted(spec.replace(model=model, **{f: getattr(defaults, f) for f in FAMILY_FIELDS}))


def chance_warning(spec: VariantSpec, accuracy: float, classes: int) -> str | None:
    """A warning for an imported float model whose accuracy is near chance (under twice 1 / classes): the likeliest
    cause is an input range other than the one it was imported with. None otherwise."""
    if not spec.source.imported or spec.quant not in ("fp32", "dynamic", "float16") or classes < 2:
        return None
    if accuracy >= 2 / classes:
        return None
    name = spec.source.name
    return (f"{spec.label()} scores {accuracy:.3f}, near chance ({1 / classes:.3f}) for {classes} classes. The likeliest "
            f"cause is the input range: {name} was imported as expecting the range it was given (0-1, -1-1 or 0-255); "
            f"if it was trained on another, import it again with --scale. Batch-norm statistics that have not settled "
            "(keras.applications' momentum 0.999 needs thousands of steps: 0.9 for brief training), an untrained "
            "model or too few epochs also score near chance.")


def for_spec(spec: VariantSpec) -> Source:
    """The source of a spec's network."""
    if not spec.model:
        return Source()
    if spec.source.application:
        return Application(spec.model)
    return Imported(spec.model)


def fitted(spec: VariantSpec) -> VariantSpec:
    """The spec with the image size and colour its model needs (an imported model's input; a keras.applications
    architecture keeps the dataset's size, at least its minimum side, in colour): what the CLI and app build."""
    from explorer.data import datasets

    source = for_spec(spec)
    if not spec.model:
        return spec
    h, w, c = datasets.info(spec.dataset).input_shape
    want = source.input_shape()
    if want is None:  # keras.applications: square, at least MIN_SIDE, in colour (but MobileNet, which takes grey)
        side = max(spec.image_size or min(h, w), MIN_SIDE)
        want = (side, side, 3 if source.name != "MobileNet" else c)
    return spec.replace(image_size=0 if (h, w) == want[:2] else want[0],
                        colour="native" if c == want[2] else {1: "grey", 3: "rgb"}[want[2]])


def describe(model) -> list[LayerPlan]:
    """The layers of a Keras model that hold weights or change the shape, with their parameters and MACs
    (convolutions and dense layers; the rest count no MACs), as the built-in plan lists them."""
    out = []
    for layer in model.layers:
        kind = type(layer).__name__
        if kind == "InputLayer":
            continue
        shape = layer.output_shape[0] if isinstance(layer.output_shape, list) else layer.output_shape
        shape = tuple(int(d) for d in shape[1:] if d is not None)
        cfg = layer.get_config()
        macs = 0
        if kind == "Conv2D":
            kh, kw = cfg["kernel_size"]
            cin = layer.input_shape[-1]
            macs = kh * kw * cin // cfg.get("groups", 1) * math.prod(shape)
        elif kind == "DepthwiseConv2D":
            kh, kw = cfg["kernel_size"]
            macs = kh * kw * math.prod(shape)
        elif kind == "SeparableConv2D":
            kh, kw = cfg["kernel_size"]
            cin = layer.input_shape[-1]
            macs = kh * kw * cin * cfg.get("depth_multiplier", 1) * math.prod(shape[:-1]) + cin * math.prod(shape)
        elif kind == "Dense":
            macs = layer.input_shape[-1] * shape[-1]
        kinds = {"Conv2D": "conv", "DepthwiseConv2D": "depthwise", "SeparableConv2D": "separable", "Dense": "dense"}
        out.append(LayerPlan(layer.name, kinds.get(kind, kind.lower()), shape, int(layer.count_params()), int(macs)))
    return out
