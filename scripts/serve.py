"""Serve the app, with the modules its pages import loaded before the first visitor arrives.

    $ .venv/bin/python scripts/serve.py [streamlit options]      # what `make run` does

`streamlit run` imports a page's modules during the first script run, while the first visitor waits
(pandas, plotly and the engine's results modules: about half a second here). Importing them first
takes that off the first view; everything else is `streamlit run app.py`.

It also tells Streamlit that app.py's st.navigation defines the pages. Otherwise, because a folder named
pages/ sits beside app.py, the first visitor after a start who opens a page's own address (/explore)
gets Streamlit's old folder-based navigation: every file of pages/ listed as a page.
"""

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import pages.ui.loading, pages.ui.jobs  # noqa: E402,F401  (pandas, streamlit, the cache, results, executor)
import explorer.present.figures  # noqa: E402,F401  (plotly)
import explorer.present.pareto  # noqa: E402,F401
from streamlit.runtime.pages_manager import PagesManager  # noqa: E402
from streamlit.web import cli  # noqa: E402

if __name__ == "__main__":
    PagesManager.uses_pages_directory = False  # what st.navigation sets on its first call
    sys.argv = ["streamlit", "run", str(ROOT / "app.py"), *sys.argv[1:]]
    sys.exit(cli.main())
