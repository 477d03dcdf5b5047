"""Grids of variants for sweeps: the cartesian product of a few axes over a base spec (pure), or over each
dataset's default recipe (expand_on_defaults reads the datasets' split sizes)."""

from __future__ import annotations

import itertools
from typing import Any

from explorer.models import recipe
from explorer.models import sources
from explorer.spec import VariantSpec

# The levers that lift accuracy, trained longer with early stopping (benchmarks/accuracy_levers.py):
# 'same' padding, batch norm and dropout take the reference CNN from 0.896 to 0.933 on Fashion-MNIST.
LEVERS: dict[str, Any] = {"padding": "same", "batchnorm": True, "dropout": 0.3, "patience": 5}
REFERENCE = VariantSpec(depth=3, dense=512, epochs=10)  # the write-up's CNN: Conv 32->64->128, Dense 512
LEVER_PAIRS = {  # today's recipe -> with the levers
    "reference CNN": (REFERENCE, REFERENCE.replace(epochs=30, **LEVERS)),
    "default depth 2": (VariantSpec(), VariantSpec(epochs=20, **LEVERS)),
}
IMBALANCED_PAIR = tuple(VariantSpec(dataset="fashion-mnist-imbalanced", class_weight=w) for w in ("none", "balanced"))

# The shipped demo grid (cached_models/): depth x every quantization mode; magnitude pruning; separable,
# clustered and channel-pruned variants; the accuracy levers; class imbalance and its remedy.
PRESETS: dict[str, list[dict[str, Any]]] = {
    "default": [
        {"depth": [1, 2, 3], "quant": ["fp32", "dynamic", "int8", "qat-int8"]},  # int16x8: asked for, not shipped
        {"depth": [2, 3], "quant": ["float16"]},  # (its lesson, half the size at the same speed, needs no depth 1)
        {"depth": [2], "sparsity": [0.5, 0.8], "quant": ["fp32", "dynamic", "int8", "qat-int8"]},
        {"depth": [2, 3], "conv": ["separable"], "quant": ["fp32", "int8"]},
        {"depth": [2], "clusters": [16], "sparsity": [0.0, 0.5], "quant": ["fp32", "int8"]},
        {"depth": [2, 3], "channels": [0.25, 0.5], "quant": ["fp32", "dynamic", "int8"]},
        *({**{k: [v] for k, v in spec.to_dict().items()}, "quant": ["fp32", "int8"]}
          for _, spec in LEVER_PAIRS.values()),
        {"depth": [3], "dense": [512], "epochs": [10], "quant": ["fp32", "dynamic", "int8"]},
        {"dataset": ["fashion-mnist-imbalanced"], "class_weight": ["none", "balanced"]},
    ],
    "reference": [{"depth": [3], "dense": [512], "epochs": [10], "quant": ["fp32", "dynamic", "int8"]}],
    # The shipped cache's seed replicates (sweep --preset seeded --seeds 3 --seeds-as-evidence): the variants
    # on the front on the hosts with records (AMD EPYC Milan, Intel Xeon with AMX), their full-int8 siblings
    # (the fast mode on an AVX-512 EPYC) and each architecture's fp32 baseline, so a demo's front and its
    # deltas are three-seed points, not one draw.
    "seeded": [
        {"depth": [1], "quant": ["fp32", "dynamic", "int8", "qat-int8"]},
        {"depth": [2, 3], "quant": ["fp32"]},
        {"depth": [2], "quant": ["int8"]},
        {"depth": [2, 3], "conv": ["separable"], "quant": ["fp32"]},
        {"depth": [2], "channels": [0.25, 0.5], "quant": ["fp32", "dynamic", "int8"]},
        {"depth": [2], "sparsity": [0.5], "quant": ["dynamic"]},
        {"depth": [3], "dense": [512], "epochs": [10], "quant": ["fp32"]},
        *({**{k: [v] for k, v in spec.to_dict().items()}, "quant": ["fp32", "int8"]}
          for _, spec in reversed(LEVER_PAIRS.values())),  # (the depth-2 recipe first: it trains for less)
    ],
}


def expand(axes: dict[str, list[Any]], base: VariantSpec | None = None) -> list[VariantSpec]:
    """Every combination of the axes' values applied to base (default spec), in axis order."""
    base = base or VariantSpec()
    names = list(axes)
    return [base.replace(**dict(zip(names, values))) for values in itertools.product(*(axes[n] for n in names))]


def expand_on_defaults(axes: dict[str, list[Any]]) -> list[VariantSpec]:
    """Every combination of the axes, each on its dataset's default recipe (explorer.models.recipe): the fields
    the axes name win, the others are the dataset's defaults (on Fashion-MNIST, VariantSpec()'s own)."""
    out = []
    for s in expand(axes):
        base = recipe.for_dataset(s.dataset).spec()
        chosen = {n: getattr(s, n) for n in axes if n != "model"}
        if s.model:  # another source's network: the family's knobs (a dataset's recipe sets some) do not apply
            base = sources.on_source(base, s.model)
        out.append(sources.fitted(base.replace(**chosen)) if s.model else base.replace(**chosen))
    return out


def preset(name: str, base: VariantSpec | None = None) -> list[VariantSpec]:
    """A named grid, deduplicated, in a stable order."""
    if name not in PRESETS:
        raise ValueError(f"unknown preset {name!r}; presets: {', '.join(PRESETS)}")
    specs: list[VariantSpec] = []
    for axes in PRESETS[name]:
        specs.extend(s for s in expand(axes, base) if s not in specs)
    return specs
