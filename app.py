"""CNN speed–accuracy explorer: the Streamlit entry point.

    $ make run        # or: .venv/bin/python scripts/serve.py (streamlit run app.py, with imports warmed)
"""

from pathlib import Path

import streamlit as st

from pages.ui import jobs, roles

# The icon is a local file: a :material/…: favicon would be fetched from fonts.gstatic.com.
st.set_page_config(page_title="CNN speed–accuracy explorer", page_icon=str(Path(__file__).parent / "docs" / "icon.png"),
                   layout="wide")

PAGES = [
    st.Page("pages/pareto.py", title="Pareto", icon=":material/scatter_plot:", default=True),
    st.Page("pages/explore.py", title="Explore", icon=":material/tune:"),
    st.Page("pages/compare.py", title="Compare", icon=":material/compare_arrows:"),
    st.Page("pages/details.py", title="Details", icon=":material/info:"),
    st.Page("pages/data.py", title="Data", icon=":material/folder_open:"),
    st.Page("pages/search.py", title="Search", icon=":material/travel_explore:"),
]

page = st.navigation(PAGES)
roles.banner()  # first: an owner token in the address is taken out before a page reads its link
jobs.jobs_sidebar()
page.run()
