"""Every page runs through app.py, however the server was started.

A folder named pages/ sits beside app.py (the layout is fixed), so until st.navigation is first called in a
server process, Streamlit takes the folder for its old page list: the first visitor after a start who opens a
page's own address (/compare, a shared link) gets that page run on its own — every file of pages/ listed as a
page (app, compare, …), and app.py's page config, worker sidebar and role banner skipped — and so does every
visitor after, until someone opens /. scripts/serve.py (`make run`) says so before the server starts; under a
plain `streamlit run app.py`, the first page run that finds the old mode on says so and runs again, through
app.py, at the same address.
"""

import streamlit as st
from streamlit.runtime.pages_manager import PagesManager


def use_app_navigation() -> None:
    """Tell Streamlit that app.py's st.navigation defines the pages (what its first call sets)."""
    PagesManager.uses_pages_directory = False


def through_app() -> None:
    """In a page run that Streamlit started from the folder: switch, and run again through app.py."""
    if PagesManager.uses_pages_directory:
        use_app_navigation()
        st.rerun()
