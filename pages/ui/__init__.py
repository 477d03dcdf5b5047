"""Streamlit glue the pages share, one concern a module (no TensorFlow: results pages import only these)."""

from pages.ui.entry import through_app

through_app()  # once per server process: the first import (see entry.py)
