"""A user's small dataset with the app's defaults: a 3,000-image, 10-class digit upload, imported and built
exactly as the Data page and Explore would. Target: >= 0.97 test accuracy in <= 90 s on 2 cores.

    $ .venv/bin/python -m benchmarks small_data

The zip holds 1,797 real handwritten digits (scikit-learn's, upscaled from 8x8 to 28x28) and 1,203
rendered ones (Pillow's bundled font at random size, position, rotation and stroke, plus noise): every
image is distinct, so no copy of a test image is trained on.
"""

from __future__ import annotations

import io
import os
import time
import zipfile

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from benchmarks.report import Row, row
from benchmarks.worker import Sandbox

IMAGES = 3000


def digit_zip(n: int = IMAGES, seed: int = 0) -> bytes:
    """A zip of class folders 0-9 of 28x28 grey PNGs (see the module docstring)."""
    from sklearn.datasets import load_digits

    rng = np.random.default_rng(seed)
    bunch = load_digits()
    images = [(int(t), Image.fromarray((img * 255 / 16).astype(np.uint8)).resize((28, 28), Image.Resampling.BICUBIC))
              for img, t in zip(bunch.images, bunch.target)]
    while len(images) < n:
        label = int(rng.integers(10))
        canvas = Image.new("L", (56, 56), 0)
        font = ImageFont.load_default(size=int(rng.integers(26, 40)))
        ImageDraw.Draw(canvas).text((28 + rng.integers(-4, 5), 28 + rng.integers(-4, 5)), str(label), fill=255,
                                    font=font, anchor="mm", stroke_width=int(rng.integers(0, 3)), stroke_fill=255)
        canvas = canvas.rotate(float(rng.uniform(-15, 15)), resample=Image.Resampling.BILINEAR)
        arr = np.asarray(canvas.resize((28, 28), Image.Resampling.BILINEAR), dtype=np.float64)
        arr = np.clip(arr + rng.normal(0, 12, arr.shape), 0, 255).astype(np.uint8)
        images.append((label, Image.fromarray(arr)))
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for i, (label, img) in enumerate(images[:n]):
            png = io.BytesIO()
            img.save(png, "PNG")
            zf.writestr(f"{label}/{i:05d}.png", png.getvalue())
    return buf.getvalue()


def run() -> list[Row]:
    box = Sandbox()
    os.environ.update(EXPLORER_CACHE_DIR=str(box.cache), EXPLORER_DATA_DIR=str(box.data))
    from explorer.run import pipeline
    from explorer.data import uploads
    from explorer.store.cache import Store
    from explorer.spec import VariantSpec

    uploads.import_zip("my-digits", digit_zip())
    spec = VariantSpec(dataset="my-digits")
    t0 = time.perf_counter()
    v, report = pipeline.ensure(spec, Store(box.cache, box.data / "stages"))
    seconds = time.perf_counter() - t0
    epochs = len(v.history.get("base", {}).get("accuracy", []))
    weakest, recall = v.weakest_class
    return [
        row("small_data_accuracy", v.accuracy, "", ">=", 0.97,
            note=f"default spec on a {IMAGES:,}-image 10-class digit upload ({'×'.join(map(str, v.input_shape))} "
                 f"as imported); {epochs} epochs "
                 f"(early stopping, min {spec.min_steps} steps); weakest class {weakest}: {recall:.3f}"),
        row("small_data_seconds", seconds, "s", "<=", 90, note="train + convert + evaluate + measure, 2 cores"),
    ]
