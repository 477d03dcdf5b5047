"""Search: let an Optuna study fill the front within a budget, and watch it while it runs."""

import pandas as pd
import streamlit as st

from explorer.data import datasets
from explorer.measure.boards import BOARDS
from explorer.present import figures
from explorer.run import grid, search, study_process
from explorer.spec import FAMILY_FIELDS, QUANT_MODES, VariantSpec
from pages.ui import actions, knobs, roles
from pages.ui.quotas import Quotas

DEFAULTS = VariantSpec()


def _arg(value) -> str:
    """A spec value as the CLI reads it (on/off for a switch)."""
    return ("on" if value else "off") if isinstance(value, bool) else f"{value:g}" if isinstance(value, float) else str(value)

st.title("Search for the front")
st.write("Pick the values to try; the search (multi-objective TPE, seeded) builds one variant per trial, maximizing accuracy "
         "on the **validation** split and minimizing p50 on this host. Every trial is an ordinary cached variant: "
         "it shows on the Pareto page too, and a trial whose stages exist costs seconds. It runs in its own "
         "process: leave the page, come back, it goes on; Stop keeps every finished trial and the study resumes.")


def _targets() -> dict:
    from explorer.measure import targets

    try:
        return {n: t for n, t in targets.load().items() if n != targets.LOCAL}
    except targets.TargetError:
        return {}


def search_form() -> None:
    """The study's space, budget and constraints; Start (only for sessions that may act)."""
    with st.form("search"):
        left, right = st.columns(2)
        with left:
            name = st.text_input("study name (the same name resumes it)", value="search", key="s_name")
            network = st.selectbox("network", knobs.networks(), key="s_network",
                                   help="The built-in family (its depth, width and channel values below), a model you "
                                        "imported, or a keras.applications architecture: then the study searches its "
                                        "levers (quantization, epochs, training levers) and the family's are left out")
            dataset = st.selectbox("dataset", datasets.available(), key="s_dataset",
                                   help="Every field the study does not search takes this dataset's defaults (a small "
                                        "dataset's turn the accuracy levers on: see the card on Explore)")
            depth = st.multiselect("depth", [1, 2, 3], default=[1, 2, 3], key="s_depth")
            width = st.multiselect("width", [8, 16, 32, 64], default=[32], key="s_width",
                                   help="32 is the shipped width: its trained bases come with the app, so its trials only fine-tune")
            channels = st.multiselect("channel pruning", [0.0, 0.25, 0.5], default=[0.0, 0.25, 0.5], key="s_channels")
            quant = st.multiselect("quantization", QUANT_MODES, default=["fp32", "dynamic", "int8"], key="s_quant")
            epochs = st.multiselect("epochs (at most: early stopping may end sooner)", [1, 2, 5, 10, 20, 30], default=[5],
                                    key="s_epochs")
            levers = st.multiselect(
                "accuracy levers, each tried off and on", list(grid.LEVERS), key="s_levers",
                format_func=lambda f: f"{f} {_arg(grid.LEVERS[f])}",
                help="Each one picked is tried at its default (" + ", ".join(f"{f} {_arg(getattr(DEFAULTS, f))}" for f in
                     grid.LEVERS) + ") and at its lever value. The shipped lever recipe is all four with 20 epochs: "
                     "when the space holds it, the search starts from it (and from the default variant)")
        with right:
            cap = 600.0 if roles.access().owner else Quotas.from_env().member_search_minutes  # a visitor's is capped
            minutes = st.number_input("budget (minutes)", 0.5, cap, min(10.0, cap), key="s_minutes")
            trials = st.number_input("at most this many trials (0: no limit)", 0, 10_000, 0, key="s_trials")
            seeds = st.number_input("seeds per trial", 1, 10, 1, key="s_seeds",
                                    help="Build each trial with this many seeds and score the mean: fewer trials in the "
                                         "budget, but differences smaller than one seed's noise stop deciding the front")
            min_acc = st.number_input("validation accuracy at least (0: no constraint)", 0.0, 1.0, 0.0, key="s_min_acc")
            max_p50 = st.number_input("p50 at most, µs (0: no constraint)", 0.0, 1e6, 0.0, key="s_max_p50")
            max_size = st.number_input("size at most, KB (0: no constraint)", 0.0, 1e6, 0.0, key="s_max_size")
            board = st.selectbox("fits the board", ["any", *BOARDS], key="s_board",
                                 help="Constraint: the planned peak RAM (TensorFlow Lite Micro's arena) and the flash "
                                      "fit the board's, and TFLite Micro can run it")
            max_ram = st.number_input("peak RAM at most, KB (0: no constraint; overrides the board's)", 0.0, 1e6, 0.0,
                                      key="s_max_ram")
            reached = [n for n, t in _targets().items() if t.facts]
            target = st.selectbox("latency measured on", ["this machine", *reached], key="s_target",
                                  help="A measurement target (python -m explorer targets add): each trial's latency "
                                       "objective is timed there, by its agent") if reached else "this machine"
            address = actions.ray_address()
            on_ray = address is not None and st.checkbox(
                f"build trials on the Ray cluster at {address}", key="s_ray",
                help="The server's own configuration (EXPLORER_RAY_ADDRESS). Latency is always measured here, on "
                     "the machine you target.")
        start = st.form_submit_button("Start", type="primary")

    if start:
        own = network != knobs.BUILT_IN
        chosen = {"quant": quant, "epochs": epochs} if own else {"depth": depth, "width": width, "channels": channels,
                                                                 "quant": quant, "epochs": epochs}
        empty = [k for k, v in chosen.items() if not v]
        chosen |= {f: [getattr(DEFAULTS, f), grid.LEVERS[f]] for f in levers if not (own and f in FAMILY_FIELDS)}
        args = ["--dataset", dataset, "--budget", f"{minutes * 60:g}"] + (["--model", network] if own else [])
        for flag, values in chosen.items():
            args += [f"--{flag}", *map(_arg, values)]
        for flag, value in (("--trials", trials), ("--min-accuracy", min_acc), ("--max-p50", max_p50),
                            ("--max-size", max_size), ("--max-ram", max_ram), ("--seeds", seeds if seeds > 1 else 0)):
            if value:
                args += [flag, f"{value:g}"]
        if target != "this machine":
            args += ["--target", target]
        if board != "any":
            args += ["--board", board]
        if empty:
            st.error(f"pick at least one value of {', '.join(empty)}")
        elif actions.start_search(name.strip(), args, minutes, on_ray):
            st.session_state["s_watch"] = name.strip()


can_search = roles.access().can_act
if not can_search:
    st.caption(":material/visibility: Starting or stopping a search needs the owner's link on this shared server; "
               "the studies run so far are below.")
else:
    search_form()

try:
    known = search.studies()
except Exception:  # no database yet
    known = []
watch = st.session_state.get("s_watch") or (known[-1] if known else None)


@st.fragment(run_every=2.0)
def live(study: str) -> None:
    """The study so far: trials, the front, whether it still runs (polls the study's database)."""
    view = search.load(study)
    done, alive = view.trials, study_process.running(study)
    state = "stopped"
    if alive:
        left = view.seconds_left()
        state = "running" + (f", {left // 60:.0f}:{left % 60:02.0f} left" if left else
                             ", finishing its last trials" if left == 0 else "")
    st.subheader(f"Study **{study}** — {state}, {len(done)} trials ({sum(not t.feasible for t in done)} infeasible)")
    if view.run:
        took = (f" The last run took {view.run['wall_s']:.0f} s of its {view.run['budget_s']:.0f} s budget."
                if not alive and view.run.get("wall_s") is not None and view.run.get("budget_s") else "")
        st.caption(f"Trials are built in {view.run['builds']}; latency is measured on this machine.{took}")
    if view.stopped:
        skipped = sum(t.kind == "skipped" for t in view.stopped)
        early = len(view.stopped) - skipped
        with st.expander(f":material/content_cut: {skipped} trial{'s' * (skipped != 1)} skipped, {early} stopped "
                         "early — and why"):
            st.caption("Skipped: not trained, because the front already beats what its architecture can reach, or "
                       "its build would not fit in the time left. Stopped: hopeless after an epoch, or its next epoch "
                       "would have ended past the deadline. Neither is shown as a variant.")
            st.dataframe(pd.DataFrame([{"trial": t.number, "variant": t.label, "what": t.kind, "why": t.why}
                                       for t in reversed(view.stopped)]), hide_index=True, width="stretch")
    if alive and roles.access().can_act and st.button("Stop after this trial", key="s_stop"):
        study_process.request_stop(study)
        st.toast("Stopping after the current trial: finished trials stay, the study resumes by name")
    error = None if alive else study_process.last_error(study)
    if error:
        st.error(f"The search stopped with an error: {error}")
    if not done:
        st.caption("The first trial is training…" if alive else "No trials yet.")
        return
    best = search.front(done)
    st.plotly_chart(figures.search_trials(done, best), key=f"s_chart_{len(done)}")
    if best:
        st.success(f"Best under the constraints: {len(best)} variant{'s' * (len(best) != 1)} on the front; most accurate "
                   f"**{max(best, key=lambda t: t.val_accuracy).label}**.")
    text = lambda iv, value: iv.text() if iv else f"{value:.4f}"  # noqa: E731
    st.dataframe(pd.DataFrame([{"trial": t.number, "variant": t.label, "val accuracy": text(t.val_interval, t.val_accuracy),
                                "test accuracy": text(t.test_interval, t.test_accuracy), "p50 µs": t.p50_us, "size KB": t.size_kb,
                                "peak RAM KB": t.peak_ram_kb,
                                "feasible": t.feasible, "trained": t.trained} for t in reversed(done)]),
                 hide_index=True, width="stretch")
    st.caption("Accuracies with their 95 % intervals. The front is chosen on the validation split: with a small "
               "split, the pick's validation accuracy is optimistic, and its test accuracy tells the truth.")


if watch:
    if len(known) > 1:
        watch = st.selectbox("show study", known, index=known.index(watch) if watch in known else 0, key="s_show")
    live(watch)
