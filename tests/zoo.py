"""Networks written the way users write them, saved as .keras by the Keras that wrote them (a script of its own).

    $ python tests/zoo.py OUT [--tiny]                      # Keras 3 (the keras package): its networks
    $ TF_USE_LEGACY_KERAS=1 python tests/zoo.py OUT [--tiny] # tf-keras: its networks
    (--colour-classes=8: the colour networks' classes; 10 by default, as the grey ones)

Each network is saved as OUT/NAME.keras with OUT/NAME.json: its input, what it is, and its outputs on a fixed
random batch computed by the Keras that wrote it (`y`, for checking a translation to 1e-5). --tiny builds the
shapes small enough for the test suite (8 px grey, 32 px colour); the full set is the real_models benchmark's.
Nothing is downloaded: keras.applications are built with weights=None.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import numpy as np

LEGACY = os.environ.get("TF_USE_LEGACY_KERAS") == "1"
if LEGACY:
    import tensorflow as tf
    import tf_keras as keras
else:
    import keras
L = keras.layers


def seq_cnn(side, c, n, tiny):
    """The textbook Sequential CNN (the reference write-up's, narrower)."""
    f = 4 if tiny else 32
    return keras.Sequential([keras.Input((side, side, c)), L.Conv2D(f, 3, activation="relu", padding="same"),
                             L.MaxPooling2D(), L.Conv2D(2 * f, 3, activation="relu", padding="same"), L.MaxPooling2D(),
                             L.Flatten(), L.Dense(2 * f, activation="relu"), L.Dense(n, activation="softmax")])


def residual(side, c, n, tiny):
    """A Functional residual network with batch norm."""
    f = 8 if tiny else 32
    inp = keras.Input((side, side, c))
    x = L.Conv2D(f, 3, padding="same", use_bias=False)(inp)
    x = L.ReLU()(L.BatchNormalization()(x))
    y = L.BatchNormalization()(L.Conv2D(f, 3, padding="same", use_bias=False)(x))
    x = L.ReLU()(L.Add()([x, y]))
    return keras.Model(inp, L.Dense(n)(L.GlobalAveragePooling2D()(x)))


def branching(side, c, n, tiny):
    """An Inception-like block: parallel convolutions concatenated."""
    f = 4 if tiny else 16
    inp = keras.Input((side, side, c))
    a = L.Conv2D(f, 1, activation="relu", padding="same")(inp)
    b = L.Conv2D(f, 3, activation="relu", padding="same")(inp)
    p = L.Conv2D(f, 1, activation="relu", padding="same")(L.MaxPooling2D(3, 1, padding="same")(inp))
    x = L.Concatenate()([a, b, p])
    return keras.Model(inp, L.Dense(n, activation="softmax")(L.Flatten()(L.MaxPooling2D()(x))))


def augmented(side, c, n, tiny):
    """The tutorial CNN: augmentation layers, then Rescaling(1/255), inside the model."""
    f = 4 if tiny else 16
    return keras.Sequential([keras.Input((side, side, c)), L.RandomFlip("horizontal"), L.RandomRotation(0.1),
                             L.RandomZoom(0.1), L.Rescaling(1.0 / 255), L.Conv2D(f, 3, activation="relu"),
                             L.MaxPooling2D(), L.Flatten(), L.Dense(n)])


def arithmetic(side, c, n, tiny):
    """Arithmetic on tensors: x * 2 - 1, relu6, a hard-swish gate, a channel mean."""
    f = 4 if tiny else 16
    relu6 = tf.nn.relu6 if LEGACY else keras.ops.relu6
    inp = keras.Input((side, side, c))
    x = inp * 2.0 - 1.0
    x = relu6(L.Conv2D(f, 3, padding="same")(x))
    y = L.Conv2D(f, 3, padding="same")(x)
    y = y * (relu6(y + 3.0) * (1.0 / 6.0))
    x = L.Concatenate()([x, y]) if not LEGACY else tf.concat([x, y], axis=-1)
    x = tf.reduce_mean(x, axis=[1, 2]) if LEGACY else L.GlobalAveragePooling2D()(x)
    return keras.Model(inp, L.Dense(n)(x))


def backbone(side, c, tiny):
    """A keras.applications backbone, or (tiny) a small Functional one standing in for it."""
    if not tiny:
        return keras.applications.MobileNetV2(input_shape=(side, side, c), include_top=False, weights=None, alpha=0.35)
    inp = keras.Input((side, side, c))
    x = L.ReLU(6.0)(L.BatchNormalization(momentum=0.999)(L.Conv2D(8, 3, strides=2, padding="same")(inp)))
    x = L.DepthwiseConv2D(3, padding="same")(x)
    return keras.Model(inp, L.Conv2D(16, 1, activation="relu")(x), name="tiny_backbone")


def transfer(side, c, n, tiny):
    """The transfer-learning shape: Rescaling, a backbone model inside, a new head."""
    return keras.Sequential([keras.Input((side, side, c)), L.Rescaling(1 / 127.5, offset=-1), backbone(side, c, tiny),
                             L.GlobalAveragePooling2D(), L.Dropout(0.2), L.Dense(n)])


def nested_twice(side, c, n, tiny):
    """A Functional model holding a Sequential that holds a Functional."""
    inner = keras.Sequential([keras.Input((side, side, c)), backbone(side, c, tiny), L.GlobalAveragePooling2D()],
                             name="features")
    inp = keras.Input((side, side, c))
    return keras.Model(inp, L.Dense(n, activation="softmax")(inner(inp)))


def normalized(side, c, n, tiny):
    """A Normalization layer (adapted to data) first, separable convolutions after."""
    norm = L.Normalization()
    norm.adapt(np.random.default_rng(1).uniform(0, 1, (64, side, side, c)).astype("float32"))
    f = 8 if tiny else 32
    return keras.Sequential([keras.Input((side, side, c)), norm, L.SeparableConv2D(f, 3, activation="relu"),
                             L.GlobalAveragePooling2D(), L.Dense(n)])


def application(name, **kw):
    def make(side, c, n, tiny):
        return getattr(keras.applications, name)(weights=None, input_shape=(side, side, c), classes=n,
                                                  classifier_activation=None, **kw)
    return make


GREY = {"seq_cnn": seq_cnn, "residual": residual, "branching": branching, "arithmetic": arithmetic,
        "normalized": normalized}
COLOUR = {"augmented": augmented, "transfer": transfer, "nested_twice": nested_twice}
APPS = {"mobilenetv2": application("MobileNetV2", alpha=0.35), "mobilenetv3small": application("MobileNetV3Small"),
        "efficientnetb0": application("EfficientNetB0"), "resnet50": application("ResNet50"),
        "densenet121": application("DenseNet121"), "nasnetmobile": application("NASNetMobile")}


def batch(side: int, c: int, high: float) -> np.ndarray:
    """The fixed random batch a network's reference outputs are computed on."""
    return np.random.default_rng(0).uniform(0, high, (4, side, side, c)).astype("float32")


def build_all(out: Path, tiny: bool, colour_classes: int = 10) -> None:
    out.mkdir(parents=True, exist_ok=True)
    grey, colour = (8, 32) if tiny else (28, 32)
    todo = [(k, f, grey, 1) for k, f in GREY.items()] + [(k, f, colour, 3) for k, f in COLOUR.items()]
    if not tiny:
        todo += [(k, f, colour, 3) for k, f in APPS.items()] + ([("untrained_mobilenetv2", APPS["mobilenetv2"], colour, 3)]
                                                               if LEGACY else [])
    for name, make, side, c in todo:
        keras.utils.set_random_seed(0)
        model = make(side, c, colour_classes if c == 3 else 10, tiny)
        model.save(out / f"{name}.keras")
        high = 255.0 if name in ("augmented", "transfer") else 1.0
        x = batch(side, c, high)
        y = np.asarray(model(x, training=False))
        (out / f"{name}.json").write_text(json.dumps({"side": side, "channels": c, "keras": "tf-keras" if LEGACY else "3",
                                                      "doc": (make.__doc__ or name).split("\n")[0],
                                                      "x_high": high,
                                                      "y": y.tolist()}))


if __name__ == "__main__":
    classes = next((int(a.split("=")[1]) for a in sys.argv if a.startswith("--colour-classes=")), 10)
    build_all(Path(sys.argv[1]), "--tiny" in sys.argv, classes)
