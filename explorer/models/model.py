"""Build the Keras model of a variant from its layer plan (explorer.models.architecture)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from explorer.models import architecture
from explorer.spec import VariantSpec
from explorer.models.tf_runtime import keras


def build(spec: VariantSpec, input_shape: tuple[int, int, int], num_classes: int) -> keras.Model:
    """An uncompiled Sequential model whose layers mirror architecture.plan() one to one.

    Seeds every RNG with spec.seed first: the weights are initialized here, not in fit().
    """
    keras.utils.set_random_seed(spec.seed)
    kl = keras.layers
    activation = None if spec.batchnorm else "relu"  # with batch norm, ReLU comes after it
    makers = {
        "conv": lambda n, name: kl.Conv2D(n, architecture.KERNEL, padding=spec.padding, activation=activation,
                                          use_bias=not spec.batchnorm, name=name),
        "separable": lambda n, name: kl.SeparableConv2D(n, architecture.KERNEL, padding=spec.padding,
                                                        activation=activation, use_bias=not spec.batchnorm, name=name),
        "batchnorm": lambda n, name: kl.BatchNormalization(momentum=0.9, name=name),  # 0.99 lags on small data
        "relu": lambda n, name: kl.ReLU(name=name),
        "pool": lambda n, name: kl.MaxPooling2D(architecture.POOL, name=name),
        "flatten": lambda n, name: kl.Flatten(name=name),
        "gap": lambda n, name: kl.GlobalAveragePooling2D(name=name),
        "dropout": lambda n, name: kl.Dropout(spec.dropout, seed=spec.seed, name=name),
        "dense": lambda n, name: kl.Dense(n, activation="relu", name=name),
        "logits": lambda n, name: kl.Dense(n, name=name),
        "softmax": lambda n, name: kl.Softmax(name=name),
    }
    layers = [kl.InputLayer(input_shape=input_shape, name="image")]
    for layer in architecture.plan(spec, input_shape, num_classes):
        layers.append(makers[layer.kind](layer.output_shape[-1], layer.name))
    return keras.Sequential(layers, name=spec.label().replace("-", "_").replace(".", "p").replace("+", "_"))


def save_weights(m: keras.Model, path: Path) -> None:
    """The model's weights alone, in layer order (Keras' own .h5 also keeps the optimizer's slots: 3x the size)."""
    with open(path, "wb") as f:
        np.savez(f, *m.get_weights())


def load_weights(m: keras.Model, path: Path) -> None:
    """Weights saved by save_weights into a model built from the same spec."""
    with np.load(path, allow_pickle=False) as saved:
        m.set_weights([saved[f"arr_{i}"] for i in range(len(saved.files))])
