"""Streamlit glue the pages share, one concern a module (no TensorFlow: results pages import only these)."""
