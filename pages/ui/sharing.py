"""A page's view in the address bar: read a link being opened, write the view back, offer it to copy."""

from __future__ import annotations

import streamlit as st

from explorer.present import links


def incoming_link(page: str) -> dict[str, str]:
    """The query parameters when they are a link being opened (or edited), {} when they are what this
    page itself wrote last (then the widgets, not the address, hold the view)."""
    params = st.query_params.to_dict()
    return params if params and params != st.session_state.get(f"{page}_written") else {}


def write_link(page: str, params: dict[str, str], note: str) -> None:
    """Put the view in the address bar, and offer it as a link to copy."""
    st.query_params.from_dict(params)
    st.session_state[f"{page}_written"] = params
    with st.sidebar.popover("Share this view", icon=":material/link:"):
        st.caption(note)
        st.code(links.url(st.context.url, params), language=None)


def show_link_problems(problems: list[str]) -> None:
    for problem in problems:
        st.warning(f"Link: {problem}.")


