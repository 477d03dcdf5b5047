"""Grids of variants for sweeps: the cartesian product of a few axes over a base spec (pure)."""

from __future__ import annotations

import itertools
from typing import Any

from explorer.spec import QUANT_MODES, VariantSpec

# The shipped demo grid (cached_models/): depth x sparsity x every quantization mode, plus
# depthwise-separable and clustered variants of the default depth as extra points on the front.
PRESETS: dict[str, list[dict[str, Any]]] = {
    "default": [
        {"depth": [1, 2, 3], "sparsity": [0.0, 0.5, 0.8], "quant": list(QUANT_MODES)},
        {"depth": [2, 3], "conv": ["separable"], "quant": ["fp32", "int8"]},
        {"depth": [2], "clusters": [16], "sparsity": [0.0, 0.5], "quant": ["fp32", "int8"]},
    ],
    # The write-up's reference CNN: Conv 32->64->128, Dense 512; 10 epochs is its best (5: 0.874, 15: 0.889).
    "reference": [{"depth": [3], "dense": [512], "epochs": [10], "quant": ["fp32", "dynamic", "int8"]}],
}


def expand(axes: dict[str, list[Any]], base: VariantSpec | None = None) -> list[VariantSpec]:
    """Every combination of the axes' values applied to base (default spec), in axis order."""
    base = base or VariantSpec()
    names = list(axes)
    return [base.replace(**dict(zip(names, values))) for values in itertools.product(*(axes[n] for n in names))]


def preset(name: str, base: VariantSpec | None = None) -> list[VariantSpec]:
    """A named grid, deduplicated, in a stable order."""
    if name not in PRESETS:
        raise ValueError(f"unknown preset {name!r}; presets: {', '.join(PRESETS)}")
    specs: list[VariantSpec] = []
    for axes in PRESETS[name]:
        specs.extend(s for s in expand(axes, base) if s not in specs)
    return specs
