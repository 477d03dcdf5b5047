"""Data: the datasets available, their class counts and samples, and upload of your own; your own models."""

import numpy as np
import pandas as pd
import streamlit as st

from explorer.data import datasets, uploads
from explorer.models import imports
from explorer.uncertainty import accuracy_interval
from pages.ui import actions, captions, loading, roles

st.title("Datasets")


@st.cache_data(show_spinner="Loading dataset…", max_entries=4)
def summary(name: str) -> tuple[pd.DataFrame, np.ndarray]:
    """Images per class in each split, and one sample image per class (the dataset itself is not kept)."""
    d = datasets.read(name, raw=True)  # bytes, not float: a quarter of the memory while the page reads it
    counts = pd.DataFrame({split: np.bincount(y, minlength=d.info.num_classes)
                           for split, y in (("train", d.y_train), ("val", d.y_val), ("test", d.y_test))},
                          index=list(d.info.class_names))
    samples = np.stack([d.x_test[np.flatnonzero(d.y_test == c)[0]] for c in range(d.info.num_classes)
                        if (d.y_test == c).any()])
    return counts, samples


names = datasets.available()
tabs = st.tabs(names)
for name, tab in zip(names, tabs):
    with tab:
        info = datasets.info(name)
        h, w, c = info.input_shape
        st.write(f"**{info.source}** — images {h}×{w}×{c}, {info.num_classes} classes.")
        try:
            counts, samples = summary(name)
        except datasets.DatasetError as exc:
            st.error(str(exc))
            continue
        left, right = st.columns([2, 3])
        left.dataframe(counts, width="stretch")
        imgs = [s.squeeze(-1) if s.shape[-1] == 1 else s for s in samples]
        right.image(imgs, caption=list(info.class_names)[:len(imgs)], width=64)
        n_test = int(counts["test"].sum())
        resolution = accuracy_interval(round(0.9 * n_test), n_test)  # at a typical 90 % accuracy
        (st.warning if resolution.half_width > 0.01 else st.caption)(
            f"Test split: {n_test:,} images. An accuracy near 90 % measured on them has a 95 % interval of "
            f"±{resolution.half_width * 100:.1f} points, so variants closer than about that cannot be told apart"
            + (" — a small split: more images narrow it." if resolution.half_width > 0.01 else "."))
        ratio = datasets.imbalance_ratio(counts["train"].to_numpy())
        st.metric("Imbalance ratio (training split)", f"{ratio:,.1f} : 1",
                  help="Images of the largest class per image of the smallest; 1 : 1 is balanced")
        if ratio > 2:
            st.warning(f"Classes are imbalanced in training ({ratio:,.1f} : 1): the rare classes tend to be recognized "
                       "worse. See balanced accuracy and the weakest class on Explore, Pareto (y axis) and Compare; "
                       "the remedy to try is **class weights: balanced** on Explore.")
        if name not in datasets.BUILTIN and roles.access().can_act:
            with st.expander(":material/delete: Delete this dataset"):
                n = int((loading.load_results().table["dataset"] == name).sum())
                sure = st.checkbox(f"Delete **{name}** and its {n} cached variant{'s' if n != 1 else ''}",
                                   key=f"sure-{name}")
                if st.button("Delete", key=f"delete-{name}", disabled=not sure, type="primary"):
                    gone = actions.delete_dataset(name)
                    if gone is not None:
                        summary.clear()
                        st.toast(f"Deleted {name} and {gone} variants")
                        st.rerun()

def models_section() -> None:
    """Imported models: list, upload (owner only: a .keras or .tflite, checked in a process of its own), delete."""
    st.header("Your own models")
    found = imports.available()
    if found:
        st.dataframe(pd.DataFrame([{"name": m.name, "kind": m.kind, "input": "×".join(map(str, m.input_shape)),
                                    "classes": m.classes, "input range": m.scale, "parameters": m.params or None,
                                    "spec model": m.source} for m in found]), hide_index=True, width="stretch")
        for m in found:
            captions.import_notes(m)
        st.caption("Pick one as the **network** on Explore (or `sweep --model NAME`): its variants sit on the Pareto "
                   "chart beside the built-in family's, marked in the legend.")
    else:
        st.caption("None imported yet. A Functional or Sequential Keras model saved as .keras (built-in layers only), "
                   "or a .tflite: its variants then sit on the Pareto chart beside the built-in family's.")
    if not roles.access().can_act:
        st.caption(":material/visibility: Importing a model needs the owner's link on this shared server.")
        return
    for m in found:
        with st.expander(f":material/delete: Delete {m.name}"):
            n = int((loading.load_results().table["model"] == m.source).sum())
            sure = st.checkbox(f"Delete **{m.name}** and its {n} cached variant{'s' if n != 1 else ''}",
                               key=f"sure-model-{m.name}")
            if st.button("Delete", key=f"delete-model-{m.name}", disabled=not sure, type="primary"):
                gone = actions.delete_model(m.name)
                if gone is not None:
                    st.toast(f"Deleted {m.name} and {gone} variants")
                    st.rerun()
    with st.form("model_upload"):
        name = st.text_input("Model name", placeholder="my-mobilenet")
        file = st.file_uploader("A .keras or .tflite file", type=["keras", "tflite", "h5", "zip"])
        scale = st.radio("its input range", (imports.AUTO, *imports.SCALE_NAMES), horizontal=True,
                         help="Images are [0, 1] here and are mapped to the range the model was trained on; auto: "
                              "0-255 when its first layer rescales them (Rescaling(1/255)), else 0-1")
        submitted = st.form_submit_button("Import model")
    if submitted:
        if not name.strip() or file is None:
            st.error("Give the model a name and choose a file.")
        else:
            with st.spinner("Checking the model (its configuration is read as data, then loaded in safe mode)…"):
                said = actions.import_model(name.strip(), file.name, file.getvalue(), scale)
            if said is not None:
                st.success(said)


st.header("Upload your own")
st.write("A **.zip** with one folder per class, images inside (PNG, JPEG, …). Images keep their own size "
         f"(the most common one among them, at most {uploads.Limits().max_side} pixels a side) and colour; "
         "each variant picks its input size and grey or colour on Explore. "
         "The split is 70/15/15, stratified, with a fixed seed.")
if not roles.access().can_act:
    st.caption(":material/visibility: Uploading needs the owner's link on this shared server.")
    models_section()
    st.stop()
with st.form("upload"):
    new_name = st.text_input("Dataset name", placeholder="my-dataset")
    file = st.file_uploader("Zip of class folders", type=["zip"])
    submitted = st.form_submit_button("Import")
if submitted:
    if not new_name.strip() or file is None:
        st.error("Give the dataset a name and choose a zip file.")
    else:
        report = actions.import_upload(new_name.strip(), file.getvalue())
        if report is not None:
            st.success(f"Imported **{report.info.name}**: " + ", ".join(f"{c} ({n})" for c, n in report.class_counts.items()))
            if report.skipped:
                st.warning(f"Skipped {len(report.skipped)} files that are not readable images: "
                           + ", ".join(report.skipped[:10]) + (" …" if len(report.skipped) > 10 else ""))

models_section()
