"""The default recipe of a dataset: which spec fields change from VariantSpec()'s, and why, from the dataset's
size and input shape alone (pure: no TensorFlow, no images decoded).

VariantSpec()'s own values were chosen on Fashion-MNIST's 55,000 training images. Measured on small real
datasets (benchmarks/small_data_defaults.py, key small_data_defaults), those values overfit: the training
accuracy reaches 1.0 while the test accuracy stays points below what the levers that generalize give. So a
small training split turns them on (at 7,000 training images of Fashion-MNIST the recipe and the plain values
tie), and a large input gets a head whose dense layer does not grow with the image, a batch whose activations
fit in memory and a training length bounded by its compute.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from explorer.settings import settings
from explorer.data import datasets
from explorer.models import architecture
from explorer.spec import VariantSpec

GOVERNED = ("augment", "batchnorm", "dropout", "padding", "patience", "head", "min_steps", "epochs", "batch_size")  # what it may set
SMALL_TRAIN_IMAGES = 10_000  # at most this many training images: the small-data levers apply
# The levers a small training split turns on, per head: chosen on the datasets marked "chose" in
# benchmarks/small_data_defaults.py, by the mean test accuracy over three seeds of the grid's best cells. A global-
# pooling head's dense layer sees a few dozen averaged values, where dropout 0.3 cost 4 to 8 points; shifts with
# black borders did not help photo crops either.
SMALL_DATA_LEVERS = {
    "flatten": {"augment": True, "batchnorm": True, "dropout": 0.3, "padding": "same"},
    "gap": {"batchnorm": True, "padding": "same"},
}
# A small split's validation accuracy moves by points from epoch to epoch, and augmented training is still
# climbing when patience 10 ends it (measured: the all-levers cell stopped at epoch 18 of Fashion-MNIST 1k with
# 0.76 training accuracy, its best epoch the 8th): a longer patience lets it converge.
SMALL_DATA_PATIENCE = 20
FLATTEN_MAX_FEATURES = 8_192  # a flatten head wider than this feeds a dense layer of over a million weights
TRAIN_BUDGET_MACS = 1.0e12  # forward MACs of training a large-input default: about a minute on 2 cores
# The largest activation (the first block's) for a whole batch, in float32: training keeps several alive (conv,
# batch norm, ReLU, their gradients), so this bounds memory. Measured: a 128x128 colour build at batch 128 peaked at
# 3.5 GB of memory.
BATCH_ACTIVATION_BYTES = 64 * 2**20
BATCH_SIZES = (128, 64, 32, 16)  # the recipe's choices, largest first (positions of the batch-size knob)


@dataclass(frozen=True)
class Default:
    """One field the recipe sets, and the reason in words a user reads on the Explore card."""

    field: str
    value: Any
    why: str


@dataclass(frozen=True)
class Recipe:
    dataset: str
    train_images: int
    applied: tuple[Default, ...]

    def fields(self) -> dict[str, Any]:
        return {d.field: d.value for d in self.applied}

    def spec(self, base: VariantSpec | None = None) -> VariantSpec:
        """base (VariantSpec() by default) on this dataset with the recipe's fields."""
        return (base or VariantSpec()).replace(dataset=self.dataset, **self.fields())

    def reasons(self, spec: VariantSpec) -> list[tuple[str, list[tuple[Default, bool]]]]:
        """The applied defaults grouped by reason, in order, each with whether spec still holds its value."""
        groups: dict[str, list[tuple[Default, bool]]] = {}
        for d in self.applied:
            groups.setdefault(d.why, []).append((d, getattr(spec, d.field) == d.value))
        return list(groups.items())


def choose(dataset: str, train_images: int, val_images: int, input_shape: tuple[int, int, int],
           num_classes: int) -> Recipe:
    """The defaults for a dataset of train_images training and val_images validation images of input_shape
    (see the module docstring)."""
    small = train_images <= SMALL_TRAIN_IMAGES
    spec = VariantSpec(dataset=dataset)
    levers = SMALL_DATA_LEVERS["flatten"] if small else {}
    layers = _plan(spec.replace(**levers), input_shape, num_classes)
    at = next(i for i, layer in enumerate(layers) if layer.kind == "flatten")
    head = []
    if layers[at].output_shape[0] > FLATTEN_MAX_FEATURES:
        head = [Default("head", "gap", f"{input_shape[0]}x{input_shape[1]} input: flattening would feed "
                        f"{layers[at].output_shape[0]:,} values to the dense layer; global average pooling "
                        f"feeds {layers[at - 1].output_shape[-1]}")]
        levers = SMALL_DATA_LEVERS["gap"] if small else {}
    applied: list[Default] = []
    if small:
        reason = (f"{train_images:,} training images (at most {SMALL_TRAIN_IMAGES:,}): the plain recipe overfits "
                  f"small data, these levers generalize" + (" (with a global-pooling head, dropout and shifts do not)"
                                                            if head else ""))
        applied += [Default(k, v, reason) for k, v in levers.items()]
        applied.append(Default("patience", SMALL_DATA_PATIENCE, f"a validation split of "
                               f"{val_images:,} images is noisy: early stopping waits longer"))
    applied += head
    spec = spec.replace(**{d.field: d.value for d in applied})
    layers = _plan(spec, input_shape, num_classes)
    per_image = architecture.largest_activation_bytes(layers)
    batch = next((b for b in BATCH_SIZES if b * per_image <= BATCH_ACTIVATION_BYTES), BATCH_SIZES[-1])
    if batch != spec.batch_size:
        applied.append(Default("batch_size", batch, f"a batch of {spec.batch_size} would hold "
                               f"{spec.batch_size * per_image / 2**20:,.0f} MiB in its largest activation; "
                               f"{batch} holds {batch * per_image / 2**20:,.0f} MiB"))
    macs = architecture.total_macs(layers)
    if spec.min_steps * spec.batch_size * macs > TRAIN_BUDGET_MACS:  # min_steps would overrun the budget
        epochs = int(min(settings().max_epochs, max(spec.epochs, TRAIN_BUDGET_MACS // (macs * max(1, train_images)))))
        applied += [Default("min_steps", 0, f"{macs / 1e6:,.0f} M MACs an image: training length set by compute"),
                    Default("epochs", epochs, f"about {TRAIN_BUDGET_MACS / 1e12:g} T MACs of training "
                            f"({epochs} epochs of {train_images:,} images); early stopping may end it sooner")]
    return Recipe(dataset, train_images, tuple(applied))


def _plan(spec: VariantSpec, input_shape: tuple[int, int, int], num_classes: int) -> list:
    """spec's layers at the deepest depth (up to its own) that fits input_shape."""
    spec = spec.replace(depth=max(1, min(spec.depth, architecture.max_depth(*input_shape[:2], spec.padding))))
    return architecture.plan(spec, input_shape, num_classes)


def for_dataset(name: str) -> Recipe:
    """The defaults for a dataset by name (built-in or uploaded)."""
    info = datasets.info(name)
    train, val, _ = datasets.split_sizes(name)
    return choose(name, train, val, info.input_shape, info.num_classes)
