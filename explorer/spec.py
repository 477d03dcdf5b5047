"""The variant spec: one frozen, validated description of a CNN variant and its stable cache keys.

Pure: no TensorFlow. A spec splits into three stages that are cached and reused separately
(training is the expensive part): the trained *base* model, its pruned/clustered *tuned* model,
and the final quantized *variant*. Each stage's key hashes only the fields that stage depends on,
plus the versions of the libraries that produced it, so a sweep over quantization modes trains once.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import re
from dataclasses import dataclass
from importlib import metadata
from typing import Any

QUANT_MODES = ("fp32", "dynamic", "float16", "int8", "qat-int8", "int16x8")
CONV_KINDS = ("standard", "separable")
SCHEDULES = ("constant", "polynomial")
PADDINGS = ("valid", "same")
HEADS = ("flatten", "gap")  # flatten + dense, or global average pooling + dense (far fewer parameters)
CLASS_WEIGHTS = ("none", "balanced")
COLOURS = ("native", "grey", "rgb")  # the dataset's own channels, one grey channel, or grey repeated in three
IMAGE_SIZE_RANGE = (8, 224)  # image_size: 0 (the dataset's own) or a side in this range
# Fields added after the shipped cache was built: at these values they are left out of the stored spec
# and of every key, so adding them did not change any existing key.
NEUTRAL = {"image_size": 0, "colour": "native", "precision": "full", "model": ""}
PRECISION_AUTO = "auto"  # chosen from this host's op profiles when built (explorer.measure.precision)
# "auto:0.5": auto, and the fewest layers kept in float that bring full int8 within 0.5 points of validation
# accuracy of the fp32 sibling (explorer.run.accuracy_bound)
_AUTO_BOUND = re.compile(r"^auto:(\d{1,2}(\.\d{1,2})?)$")
# Where a variant's network comes from (explorer.models.sources): "" the built-in family; an imported file by
# name and content hash ("file:resnet@3fa2c1d9e0b1"); a keras.applications architecture by name and its
# arguments, trained from scratch ("keras:MobileNetV2:alpha=0.35").
MODEL_SOURCE = re.compile(r"^(file:[a-z0-9][a-z0-9_-]{0,63}@[0-9a-f]{12}"
                          r"|keras:[A-Z][A-Za-z0-9]{1,40}(:[a-z_]{1,30}=[A-Za-z0-9_.-]{1,20}){0,6})$")
# The built-in family's architecture knobs, at their defaults whenever the network comes from elsewhere.
FAMILY_FIELDS = ("depth", "width", "conv", "padding", "dense", "head", "batchnorm", "dropout", "channels")
# conv1+dense: kept in float; an imported or keras: network's names as Keras gave them (Conv, block_1/expand)
_LAYER_LIST = re.compile(r"^[A-Za-z][A-Za-z0-9_./-]{0,79}(\+[A-Za-z][A-Za-z0-9_./-]{0,79}){0,199}$")

TUNE_STAGES = ("channels", "prune", "cluster", "qat")  # a build's stages that fine-tune (VariantSpec.fine_tunes)
AFTER_BASE = ("channels", "sparsity", "schedule", "clusters", "quant", "tune_epochs", "precision")  # applied to a
# trained base (fine-tunes and conversion): variants that differ only in these share their base stage

# Bumped whenever the training/conversion recipe changes in a way that changes results.
RECIPE_VERSION = 3  # 3: training levers, early stopping, softmax-free int8; 2: seeded weights

_DATASET_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")
_VERSIONED_PACKAGES = ("tensorflow", "tf-keras", "tensorflow-model-optimization")


# The declared range of every numeric field: validation below, and the app's knobs, read it from here.
BOUNDS: dict[str, tuple[float, float]] = {
    "depth": (1, 4), "width": (4, 256), "dense": (8, 2048), "sparsity": (0.0, 0.95), "epochs": (1, 100),
    "tune_epochs": (1, 20), "learning_rate": (1e-6, 1.0), "batch_size": (1, 4096), "seed": (0, 2**31 - 1),
    "channels": (0.0, 0.75), "dropout": (0.0, 0.7), "patience": (0, 20), "min_steps": (0, 20000),
}
FLAGS = ("batchnorm", "augment")  # on/off fields
CLUSTERS_RANGE = (2, 256)  # clusters: 0 (off) or a number in this range


class SpecError(ValueError):
    """A spec field is out of range; the message names the field and what is allowed."""

    def __init__(self, field: str, allowed: str, got: Any):
        self.field = field
        super().__init__(f"{field}: {allowed} (got {got!r})")


def _check_int(name: str, value: Any, lo: int, hi: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
        raise SpecError(name, f"must be a whole number from {lo} to {hi}", value)


def _check_float(name: str, value: Any, lo: float, hi: float) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not lo <= value <= hi:
        raise SpecError(name, f"must be a number from {lo} to {hi}", value)


def _check_choice(name: str, value: Any, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise SpecError(name, f"must be one of {', '.join(choices)}", value)


@dataclass(frozen=True)
class VariantSpec:
    """Everything that determines a variant's weights, file and accuracy."""

    dataset: str = "fashion-mnist"  # a name from explorer.data.datasets (built-in or uploaded)
    image_size: int = 0  # input side in pixels, images resized when the model is built (0: the dataset's own)
    colour: str = "native"  # or "grey": colour images converted to one channel
    depth: int = 2  # conv blocks (conv 3x3 + ReLU + 2x2 max-pool), like the reference CNN
    width: int = 32  # filters of the first block; doubles per block (32 -> 64 -> 128)
    conv: str = "standard"  # or "separable": depthwise-separable convolutions, fewer MACs
    padding: str = "valid"  # or "same": convolutions keep the borders (larger maps, more MACs, more accuracy)
    dense: int = 128  # units of the hidden dense layer (the reference uses 512)
    head: str = "flatten"  # or "gap": global average pooling before the dense layer
    batchnorm: bool = False  # batch normalization after every conv (folded into the conv on conversion)
    dropout: float = 0.0  # dropout rate before the dense layer and before the logits
    augment: bool = False  # random shifts of up to 8 % (and horizontal flips where the dataset allows) in training
    class_weight: str = "none"  # or "balanced": each class weighs n / (classes * its count) in the loss
    channels: float = 0.0  # structured pruning: fraction of each conv's filters and the dense units removed
    sparsity: float = 0.0  # fraction of weights zeroed by magnitude pruning, 0 to 0.95
    schedule: str = "constant"  # pruning schedule: constant, or polynomial decay from 0
    clusters: int = 0  # weight clustering: 0 = off, else number of shared weight values
    quant: str = "fp32"  # TFLite conversion mode, see QUANT_MODES
    precision: str = "full"  # int8 modes: "full", "auto" (this host's profiles choose) or layers kept float, "conv1+dense"
    epochs: int = 5  # base training epochs (at most; see patience and min_steps)
    patience: int = 10  # early stopping: epochs without a better validation accuracy (0 = off); best weights kept
    min_steps: int = 1500  # small datasets train more epochs, up to this many batches (0 = exactly epochs)
    tune_epochs: int = 2  # fine-tune epochs for pruning, clustering and QAT
    learning_rate: float = 1e-3  # Adam
    batch_size: int = 128
    seed: int = 0  # weights init, shuffling; the data split has its own fixed seed
    model: str = ""  # where the network comes from: "" (the built-in family) or a source (MODEL_SOURCE)

    def __post_init__(self) -> None:
        if not isinstance(self.dataset, str) or not _DATASET_NAME.match(self.dataset):
            raise SpecError("dataset", "must be a lower-case name of letters, digits, '-' or '_'", self.dataset)
        for name, (lo, hi) in BOUNDS.items():
            (_check_float if isinstance(lo, float) else _check_int)(name, getattr(self, name), lo, hi)
        for name in FLAGS:
            if not isinstance(getattr(self, name), bool):
                raise SpecError(name, "must be true or false", getattr(self, name))
        _check_choice("conv", self.conv, CONV_KINDS)
        _check_choice("head", self.head, HEADS)
        _check_choice("padding", self.padding, PADDINGS)
        _check_choice("colour", self.colour, COLOURS)
        lo, hi = IMAGE_SIZE_RANGE
        if isinstance(self.image_size, bool) or not isinstance(self.image_size, int) or not (
            self.image_size == 0 or lo <= self.image_size <= hi
        ):
            raise SpecError("image_size", f"must be 0 (the dataset's own) or a whole number from {lo} to {hi}",
                            self.image_size)
        _check_choice("class_weight", self.class_weight, CLASS_WEIGHTS)
        _check_choice("schedule", self.schedule, SCHEDULES)
        lo, hi = CLUSTERS_RANGE
        if isinstance(self.clusters, bool) or not isinstance(self.clusters, int) or not (
            self.clusters == 0 or lo <= self.clusters <= hi
        ):
            raise SpecError("clusters", f"must be 0 (off) or a whole number from {lo} to {hi}", self.clusters)
        _check_choice("quant", self.quant, QUANT_MODES)
        if not isinstance(self.precision, str) or not (self.precision in ("full", PRECISION_AUTO)
                                                       or _AUTO_BOUND.match(self.precision)
                                                       or _LAYER_LIST.match(self.precision)):
            raise SpecError("precision", "must be full, auto, auto:D (at most D points of accuracy lost, e.g. "
                                         "auto:0.5) or layer names joined by '+' (e.g. conv1+dense)", self.precision)
        if self.precision != "full" and self.quant not in ("int8", "qat-int8"):
            raise SpecError("precision", "applies to full-integer modes only (int8, qat-int8)", self.precision)
        if not isinstance(self.model, str) or not (self.model == "" or MODEL_SOURCE.match(self.model)):
            raise SpecError("model", "must be empty (the built-in family), file:NAME@HASH (an imported model) or "
                                     "keras:Name[:arg=value...] (a keras.applications architecture)", self.model)
        if self.model:
            defaults = VariantSpec()
            changed = [f for f in FAMILY_FIELDS if getattr(self, f) != getattr(defaults, f)]
            if changed:
                raise SpecError(changed[0], f"belongs to the built-in family: a network from {self.model} has its "
                                            "own architecture (leave it at its default)", getattr(self, changed[0]))
        # Canonical float form, so 0.5 and 0.50000000001 from a slider are one cache entry.
        for name in ("sparsity", "channels", "dropout"):
            object.__setattr__(self, name, round(float(getattr(self, name)), 4))
        object.__setattr__(self, "learning_rate", float(f"{float(self.learning_rate):.6g}"))

    # -- serialisation -------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """The stored form: every field, except later ones at their neutral value (see NEUTRAL)."""
        return {k: v for k, v in dataclasses.asdict(self).items() if not (k in NEUTRAL and v == NEUTRAL[k])}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> VariantSpec:
        """Rebuild from metadata or user input; unknown fields are an error, not silently dropped."""
        if not isinstance(data, dict):
            raise SpecError("spec", "must be a mapping of field names to values", data)
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise SpecError(unknown[0], f"is not a spec field; fields are {', '.join(sorted(known))}", data[unknown[0]])
        return cls(**data)

    def replace(self, **changes: Any) -> VariantSpec:
        return dataclasses.replace(self, **changes)

    @property
    def source(self) -> ModelSource:
        """Where its network comes from, parsed (the model field is its text)."""
        return ModelSource.parse(self.model)

    @property
    def is_auto(self) -> bool:
        """Precision "auto" or "auto:D": which layers stay float is chosen when built, on the host."""
        return self.precision == PRECISION_AUTO or bool(_AUTO_BOUND.match(self.precision))

    @property
    def max_drop(self) -> float | None:
        """The bound of "auto:D", in points of validation accuracy against the fp32 sibling (None: no bound)."""
        bound = _AUTO_BOUND.match(self.precision)
        return float(bound.group(1)) if bound else None

    # -- stages --------------------------------------------------------------------------------
    @property
    def is_tuned(self) -> bool:
        """Whether a pruning/clustering fine-tune stage sits between base and variant."""
        return self.channels > 0 or self.sparsity > 0 or self.clusters > 0

    def fine_tunes(self) -> tuple[str, ...]:
        """The build stages that fine-tune this variant, tune_epochs each, in the order they run (TUNE_STAGES): the
        tuned stage's channel pruning, pruning and clustering, then quantization-aware training. The one rule the
        build's progress, the search's budget and its economies read."""
        on = {"channels": self.channels > 0, "prune": self.sparsity > 0, "cluster": self.clusters > 0,
              "qat": self.quant == "qat-int8"}
        return tuple(stage for stage in TUNE_STAGES if on[stage])

    def base_fields(self) -> dict[str, Any]:
        d = self.to_dict()
        for name in AFTER_BASE:
            d.pop(name, None)
        return d

    def tuned_fields(self) -> dict[str, Any]:
        d = self.to_dict()
        d.pop("quant")
        d.pop("precision", None)
        if not self.is_tuned:  # no fine-tune: these fields do not change the weights
            d.pop("schedule")
            d.pop("tune_epochs")
        return d

    def variant_fields(self) -> dict[str, Any]:
        d = self.tuned_fields()
        d["quant"] = self.quant
        if self.precision != "full":
            d["precision"] = self.precision
        if self.quant == "qat-int8":
            d["tune_epochs"] = self.tune_epochs
        return d

    def base_key(self, versions: dict[str, str] | None = None) -> str:
        return stable_key(self.base_fields(), versions)

    def tuned_key(self, versions: dict[str, str] | None = None) -> str:
        return stable_key(self.tuned_fields(), versions)

    def base_epochs(self, n_train: int) -> int:
        """Epochs of base training on n_train images: epochs, or more on a small dataset until min_steps batches
        (capped by the epoch bound); early stopping may end it sooner."""
        steps = -(-n_train // self.batch_size)
        return int(min(BOUNDS["epochs"][1], max(self.epochs, -(-self.min_steps // steps))))

    def key(self, versions: dict[str, str] | None = None) -> str:
        """The final variant's cache key."""
        return stable_key(self.variant_fields(), versions)

    def label(self) -> str:
        """A short readable name, unique per variant: the architecture and optimizations, then every
        training field that differs from the defaults (so ten seeds are ten labels)."""
        defaults = VariantSpec()
        parts = [self.dataset]
        if self.image_size:
            parts.append(f"{self.image_size}px")
        if self.colour != "native":
            parts.append(self.colour)
        if self.model:
            parts.append(model_label(self.model))
        else:
            parts += [f"d{self.depth}w{self.width}", f"fc{self.dense}"]
        if self.conv == "separable":
            parts.append("sep")
        if self.padding == "same":
            parts.append("same")
        if self.head == "gap":
            parts.append("gap")
        if self.batchnorm:
            parts.append("bn")
        if self.dropout:
            parts.append(f"do{self.dropout:g}")
        if self.augment:
            parts.append("aug")
        if self.class_weight == "balanced":
            parts.append("cw")
        if self.channels:
            parts.append(f"ch{self.channels:g}")
        if self.sparsity:
            parts.append(f"s{self.sparsity:g}")
            if self.schedule != defaults.schedule:
                parts.append("poly")
        if self.clusters:
            parts.append(f"c{self.clusters}")
        parts.append(self.quant)
        if self.precision != "full":
            parts.append(f"float-{_short_list(self.precision)}")
        extras = [("e", self.epochs, defaults.epochs), ("lr", self.learning_rate, defaults.learning_rate),
                  ("b", self.batch_size, defaults.batch_size), ("seed", self.seed, defaults.seed),
                  ("pat", self.patience, defaults.patience), ("ms", self.min_steps, defaults.min_steps)]
        if self.is_tuned or self.quant == "qat-int8":
            extras.append(("ft", self.tune_epochs, defaults.tune_epochs))
        parts.extend(f"{tag}{value:g}" for tag, value, default in extras if value != default)
        return "-".join(parts)


@dataclass(frozen=True)
class ModelSource:
    """Where a variant's network comes from, parsed once from the spec's model text (MODEL_SOURCE): the built-in
    family (""), an imported file by name and content hash ("file:NAME@HASH"), or a keras.applications
    architecture by name with its arguments ("keras:MobileNetV2:alpha=0.35", arguments in sorted order)."""

    kind: str = "built-in"  # built-in | file | keras
    name: str = ""
    hash: str = ""  # file: the first 12 hex digits of its content's SHA-256
    args: tuple[tuple[str, str], ...] = ()  # keras: (argument, value) as written

    @classmethod
    def parse(cls, text: str) -> ModelSource:
        if not text:
            return cls()
        if text.startswith("file:"):
            name, _, sha = text[len("file:"):].partition("@")
            return cls("file", name, sha)
        name, *args = text[len("keras:"):].split(":")
        return cls("keras", name, args=tuple(tuple(a.split("=", 1)) for a in args))

    def __str__(self) -> str:
        if self.kind == "file":
            return f"file:{self.name}@{self.hash}"
        if self.kind == "keras":
            return ":".join([f"keras:{self.name}", *(f"{k}={v}" for k, v in self.args)])
        return ""

    @property
    def imported(self) -> bool:
        return self.kind == "file"

    @property
    def application(self) -> bool:
        return self.kind == "keras"

    def canonical(self) -> ModelSource:
        """The same source with its arguments in sorted order (one spelling, one cache key)."""
        return dataclasses.replace(self, args=tuple(sorted(self.args)))

    def with_args(self, **args: str | None) -> ModelSource:
        """A keras: source with these arguments set (None removes one), canonical."""
        kept = dict(self.args) | args
        return dataclasses.replace(self, args=tuple((k, v) for k, v in kept.items() if v is not None)).canonical()

    def label(self) -> str:
        """Its short name in labels: the imported file's name, or the architecture and its arguments
        ("keras:MobileNetV2:alpha=0.35" -> "MobileNetV2-alpha0.35")."""
        return "-".join([self.name, *(f"{k}{v}" for k, v in self.args)])


def source_label(model: str) -> str:
    """Where a variant's network comes from, for tables and legends."""
    source = ModelSource.parse(model)
    if source.kind == "built-in":
        return "built-in"
    return f"{source.label()} ({'imported' if source.imported else 'keras.applications'})"


def model_label(model: str) -> str:
    """A source's short name in labels (ModelSource.label)."""
    return ModelSource.parse(model).label()


def package_versions(packages: tuple[str, ...]) -> dict[str, str]:
    """Installed versions of these packages ("missing" when absent), read without importing them."""
    out = {}
    for pkg in packages:
        try:
            out[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            out[pkg] = "missing"
    return out


def library_versions() -> dict[str, str]:
    """Versions of the libraries whose behaviour is baked into a cached model."""
    return package_versions(_VERSIONED_PACKAGES)


def stable_key(fields: dict[str, Any], versions: dict[str, str] | None = None) -> str:
    """A 16-hex-digit hash of the canonical JSON of fields, the library versions and the recipe."""
    payload = {
        "fields": fields,
        "versions": library_versions() if versions is None else versions,
        "recipe": RECIPE_VERSION,
    }
    canonical = json.dumps(payload, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()[:16]


def _short_list(precision: str) -> str:
    """A label's precision part: the layers kept float when they are few, else their number and a digest that
    keeps labels unique ("float-conv1+dense", "float-12-layers-3fa2c1")."""
    layers = precision.split("+")
    if len(layers) <= 3 and len(precision) <= 40:
        return precision
    return f"{len(layers)}-layers-{hashlib.sha256(precision.encode()).hexdigest()[:6]}"
