"""Thin Streamlit pages: they render what the engine (explorer/) computed."""
