"""Build the Keras model of a variant from its layer plan (explorer.architecture)."""

from __future__ import annotations

from explorer import architecture
from explorer.spec import VariantSpec
from explorer.tf_runtime import keras


def build(spec: VariantSpec, input_shape: tuple[int, int, int], num_classes: int) -> keras.Model:
    """An uncompiled Sequential model whose layers mirror architecture.plan() one to one.

    Seeds every RNG with spec.seed first: the weights are initialized here, not in fit().
    """
    keras.utils.set_random_seed(spec.seed)
    layers: list[keras.layers.Layer] = [keras.layers.InputLayer(input_shape=input_shape, name="image")]
    for layer in architecture.plan(spec, input_shape, num_classes):
        if layer.kind == "conv":
            layers.append(keras.layers.Conv2D(layer.output_shape[-1], architecture.KERNEL,
                                              activation="relu", name=layer.name))
        elif layer.kind == "separable":
            layers.append(keras.layers.SeparableConv2D(layer.output_shape[-1], architecture.KERNEL,
                                                       activation="relu", name=layer.name))
        elif layer.kind == "pool":
            layers.append(keras.layers.MaxPooling2D(architecture.POOL, name=layer.name))
        elif layer.kind == "flatten":
            layers.append(keras.layers.Flatten(name=layer.name))
        elif layer.name == "logits":
            layers.append(keras.layers.Dense(num_classes, activation="softmax", name=layer.name))
        else:
            layers.append(keras.layers.Dense(layer.output_shape[-1], activation="relu", name=layer.name))
    return keras.Sequential(layers, name=spec.label().replace("-", "_").replace(".", "p"))
