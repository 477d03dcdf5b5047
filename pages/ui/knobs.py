"""The Explore knobs' positions, within the spec's declared bounds, and setting them from a spec (a link)."""

from __future__ import annotations

import dataclasses

import streamlit as st

from explorer.spec import BOUNDS, CLUSTERS_RANGE, IMAGE_SIZE_RANGE, ModelSource, VariantSpec
from pages.ui.jobs import max_epochs


def _within(name: str, positions: list) -> list:
    """The positions inside the field's declared range (0 is 'off' for clusters, 'own size' for image_size)."""
    lo, hi = {"clusters": CLUSTERS_RANGE, "image_size": IMAGE_SIZE_RANGE}.get(name) or BOUNDS[name]
    return [p for p in positions if lo <= p <= hi or (name in ("clusters", "image_size") and p == 0)]


# The positions of the Explore knobs that are not free sliders (kept within the spec's declared bounds).
KNOB_POSITIONS = {name: _within(name, positions) for name, positions in {
    "width": [8, 16, 32, 64], "dense": [32, 64, 128, 256, 512], "clusters": [0, 8, 16, 32, 64],
    "learning_rate": [1e-4, 3e-4, 1e-3, 3e-3, 1e-2], "batch_size": [16, 32, 64, 128, 256],
    "min_steps": [0, 500, 1500, 3000, 6000], "image_size": [0, 16, 28, 32, 64, 96, 128, 160, 224]}.items()}
TUNE_EPOCHS_MAX = 10
BUILT_IN = "built-in family"
APPLICATION_CHOICES = ("keras:MobileNetV2", "keras:MobileNetV3Small:minimalistic=true",
                       "keras:MobileNetV3Small", "keras:EfficientNetB0", "keras:ResNet50")


def networks() -> list[str]:
    """The network pickers' choices (Explore, Search): the family, every imported model (by name), some
    keras.applications architectures."""
    from explorer.models import imports

    return [BUILT_IN, *(m.name for m in imports.available()), *APPLICATION_CHOICES]


def alpha_key(network: str) -> str:
    return f"k_alpha_{network}"


def width_knob(network: str, model: str) -> str:
    """A keras.applications architecture that comes in several widths gets a slider for its width multiplier
    (alpha), as a resolution knob beside it; the model it returns carries the width."""
    if not ModelSource.parse(model).application:
        return model
    from explorer.models import sources

    app = sources.Application(model)
    choices = sources.ALPHAS.get(app.name)
    if not choices:
        return model
    st.session_state.setdefault(alpha_key(network), app.args.get("alpha", sources.SMALLEST_FIRST.get(app.name, 1.0)))
    alpha = st.select_slider("width multiplier (alpha)", choices, key=alpha_key(network),
                             help="keras.applications' width: every layer's filters times alpha (fewer MACs and "
                                  "parameters, usually some accuracy)")
    return sources.with_args(model, alpha=alpha)


def _network_of(model: str) -> str:
    """The network picker's choice for a spec's model: an import by its name; a keras: architecture by the choice
    that names it (its width is set on the alpha knob)."""
    source = ModelSource.parse(model)
    if source.imported:
        return source.label()
    if not source.application:
        return BUILT_IN
    from explorer.models import sources

    app = sources.Application(model)
    bare = sources.with_args(model, alpha=None)
    choice = bare if bare in APPLICATION_CHOICES else next(
        (c for c in APPLICATION_CHOICES if sources.Application(c).name == app.name), model)
    if app.name in sources.ALPHAS:
        st.session_state[alpha_key(choice)] = app.args.get("alpha", 1.0)
    return choice


def set_knobs(spec: VariantSpec) -> list[str]:
    """Set the Explore knobs to a spec (before they are drawn); returns what could not be set, and why."""
    problems = []
    limits = {"epochs": max_epochs(), "tune_epochs": TUNE_EPOCHS_MAX}
    for name, value in dataclasses.asdict(spec).items():  # every field, neutral ones too
        if name == "model":  # the network picker shows an import by its name
            st.session_state["k_network"] = _network_of(value)
            continue
        positions = KNOB_POSITIONS.get(name)
        if positions is not None and value not in positions:
            problems.append(f"{name} {value:g} is not one of the knob's positions ({', '.join(f'{p:g}' for p in positions)})")
        elif name in limits and value > limits[name]:
            problems.append(f"{name} {value} is over this app's limit of {limits[name]}")
        else:
            st.session_state[f"k_{name}"] = value
    return problems


BOUNDED_AUTO = ("auto:0.5", "auto:1")  # precision "auto" under an accuracy bound, in points (the CLI takes any)


def precision_choices(current: str, own: bool, depth: int) -> list[str]:
    """The int8 precision knob's choices: full, auto, auto within a bound (and a link's other bound), then the
    family's layers one at a time (another network's layer names: the CLI's --precision)."""
    bounded = [*BOUNDED_AUTO, *([current] if current.startswith("auto:") and current not in BOUNDED_AUTO else [])]
    layers = [] if own else [*(f"conv{i}" for i in range(1, depth + 1)), "dense", "logits"]
    return ["full", "auto", *bounded, *layers]


def precision_name(choice: str) -> str:
    """A precision choice for people."""
    if choice.startswith("auto:"):
        return f"auto, at most {choice[5:]} points below fp32"
    return {"full": "full int8", "auto": "auto: from this host's op profiles"}.get(choice, f"keep {choice} in float")
