"""The dataset's default recipe on Explore: the knobs it sets when a dataset is picked, and the card that says
which defaults apply and why (the recipe itself is chosen in explorer.models.recipe)."""

from __future__ import annotations

import streamlit as st

from explorer.models import recipe
from explorer.spec import VariantSpec
from pages.ui.jobs import max_epochs


def apply(dataset: str) -> None:
    """Set the knobs the recipe governs to this dataset's defaults (on a change of dataset, before drawing)."""
    chosen = recipe.for_dataset(dataset).spec()
    for name in recipe.GOVERNED:
        value = getattr(chosen, name)
        st.session_state[f"k_{name}"] = min(value, max_epochs()) if name == "epochs" else value


def _value(d: recipe.Default) -> str:
    if isinstance(d.value, bool):
        return f"{d.field} {'on' if d.value else 'off'}"
    return f"{d.field} {d.value:g}" if isinstance(d.value, (int, float)) else f"{d.value} {d.field}"


def card(spec: VariantSpec) -> None:
    """Which of the dataset's defaults this spec keeps, which it changed, and why they were chosen."""
    chosen = recipe.for_dataset(spec.dataset)
    if not chosen.applied:
        st.caption(f":material/tune: Defaults for **{spec.dataset}**: the plain recipe. With "
                   f"{chosen.train_images:,} training images (more than {recipe.SMALL_TRAIN_IMAGES:,}) it does not "
                   "overfit; the training levers are yours to try.")
        return
    lines = [f":material/tune: **Defaults for {spec.dataset}**, chosen by measurement on small datasets:"]
    for why, defaults in chosen.reasons(spec):
        shown = ", ".join(_value(d) if kept else f"~~{_value(d)}~~ (changed)" for d, kept in defaults)
        lines.append(f"- {shown}: {why}")
    st.markdown("\n".join(lines))
