"""Who may act in this session: the owner, everyone in an open room, or a viewer.

Served on 127.0.0.1 only the machine's own user can connect: they are the owner (as before roles).
Listening on any other address, a visitor is a viewer (browse, filter, compare, preview latency, share
links, download the report) unless they present the owner token, which scripts/serve.py prints at start
as a link, as Jupyter does. `--open` (serve.py) makes every visitor a member, who may act within the
quotas (explorer's pages/ui/quotas.py); only the owner's search budget is uncapped.

A viewer's pages never draw the action widgets, and Streamlit drops a request for a widget the page did
not draw, so a crafted request to an action changes nothing; each action also asks `allowed` first.
"""

from __future__ import annotations

import hmac
import os
import secrets
from dataclasses import dataclass

import streamlit as st

from explorer.settings import SETTINGS, settings

OWNER, MEMBER, VIEWER = "owner", "member", "viewer"
LOOPBACK = frozenset({"127.0.0.1", "localhost", "::1"})
TOKEN_ENV, OPEN_ENV = SETTINGS["owner_token"].env, SETTINGS["open"].env  # (set by serve.py at start)
MAX_TOKEN_CHARS = 256  # a token is 43 characters; anything far longer is refused before comparing


@dataclass(frozen=True)
class Access:
    role: str
    why: str  # one sentence a visitor reads

    @property
    def can_act(self) -> bool:
        return self.role != VIEWER

    @property
    def owner(self) -> bool:
        return self.role == OWNER


def loopback(address: str | None) -> bool:
    """Only this machine can connect (Streamlit listens everywhere when no address is set)."""
    return bool(address) and (address in LOOPBACK or address.startswith("127."))


def token_matches(expected: str, presented: str | None) -> bool:
    """Constant-time comparison; empty, missing or oversized tokens never match."""
    if not expected or not presented or len(presented) > MAX_TOKEN_CHARS:
        return False
    return hmac.compare_digest(expected.encode(), presented.encode())


def decide(address: str | None, open_room: bool, has_owner_token: bool) -> Access:
    """The role of a session from where the server listens, the room's openness and the session's token."""
    if loopback(address):
        return Access(OWNER, "served on this machine only")
    if has_owner_token:
        return Access(OWNER, "opened with the owner link")
    if open_room:
        return Access(MEMBER, "an open room (the server was started with --open): everyone may act, within quotas")
    return Access(VIEWER, "a shared server: you can browse, filter, compare, preview latency, share links and "
                          "download the report; building, uploading, deleting, searching and re-measuring need "
                          "the owner's link")


def owner_token() -> str:
    """The owner token of this server process: EXPLORER_OWNER_TOKEN (serve.py sets it at start), else made once."""
    token = settings().owner_token
    if not token:
        token = os.environ[TOKEN_ENV] = secrets.token_urlsafe(32)
        print(f"Owner token ({TOKEN_ENV}): open the app with ?token={token}", flush=True)
    return token


def open_room() -> bool:
    return settings().open


def access() -> Access:
    """This session's access. A token in the address is checked once, kept in the session (so it survives
    page switches) and removed from the address bar, so a shared view link never carries it."""
    address = st.get_option("server.address")
    if "token" in st.query_params:
        presented = st.query_params.get("token")
        del st.query_params["token"]
        if not loopback(address):
            st.session_state["owner"] = token_matches(owner_token(), presented)
            st.session_state["token_refused"] = not st.session_state["owner"]
    return decide(address, open_room(), bool(st.session_state.get("owner")))


def allowed(action: str) -> bool:
    """Whether this session may do `action` (e.g. "Building"); if not, says so on the page."""
    a = access()
    if not a.can_act:
        st.info(f":material/visibility: {action} needs the owner: this is {a.why.split(':')[0]}.")
    return a.can_act


def banner() -> None:
    """Tell a viewer what they can do (once per page, in the sidebar), and a refused token."""
    a = access()
    if st.session_state.pop("token_refused", False):
        st.sidebar.error("That owner token is not this server's: you are a viewer.")
    if not a.can_act:
        st.sidebar.caption(f":material/visibility: **Viewer** — {a.why}.")
    elif a.role == MEMBER:
        st.sidebar.caption(f":material/group: {a.why}.")
