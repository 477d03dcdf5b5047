"""Bring your own model, worked example: a keras.applications network trained briefly on Fashion-MNIST, saved as
.keras and imported, ready to sweep beside the built-in family.

    $ .venv/bin/python scripts/own_model_example.py            # about a minute on two cores
    $ .venv/bin/python -m explorer sweep --model my-mobilenet --dataset fashion-mnist --quant fp32 dynamic int8
    $ make run                                                  # Pareto: its variants are the stars

Your own network works the same way: any Functional or Sequential Keras model with built-in layers, one image
input and one class output, saved with model.save("name.keras") by Keras 3 or tf-keras (a backbone inside it,
Rescaling and augmentation layers included: docs/own-model.md); or a converted .tflite.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path



def main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--name", default="my-mobilenet", help="the name its variants carry")
    p.add_argument("--out", default=str(Path.home() / "my-mobilenet.keras"), help="where the .keras file is saved")
    p.add_argument("--images", type=int, default=5000, help="training images (a subset keeps it brief)")
    args = p.parse_args(argv)

    from explorer.data import datasets
    from explorer.models import imports
    from explorer.models.tf_runtime import keras

    data = datasets.load("fashion-mnist")
    # MobileNetV2 takes colour images of at least 32x32: the grey 28x28 ones, resized and repeated in three channels
    # (the explorer does the same when it builds the variants, for the input the model declares).
    x = datasets.convert(data.x_train[:args.images], (32, 32, 3))
    y = data.y_train[:args.images]
    model = keras.applications.MobileNetV2(weights=None, alpha=0.35, input_shape=(32, 32, 3), classes=10)
    for layer in model.layers:  # its batch norm's 0.999 is for long ImageNet runs: this brief training needs 0.9,
        if isinstance(layer, keras.layers.BatchNormalization):  # or its statistics stay untrained (the import sets
            layer.momentum = 0.9  # 0.9 for the explorer's own training; this fit() is before the import)
    model.compile(optimizer=keras.optimizers.Adam(1e-3), loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    model.fit(x, y, batch_size=64, epochs=1, verbose=2)
    model.save(args.out)
    print(f"Saved {args.out}")

    made = imports.import_path(args.name, Path(args.out))  # checked as an upload is, rebuilt from built-in layers
    h, w, c = made.input_shape
    print(f"Imported {made.name}: {h}x{w}x{c} images, {made.classes} classes, {made.params:,} parameters.\n"
          f"Next: .venv/bin/python -m explorer sweep --model {made.name} --dataset fashion-mnist "
          "--quant fp32 dynamic int8 --epochs 2\n"
          "then open the Pareto page (make run): its variants are the stars beside the built-in family.")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
