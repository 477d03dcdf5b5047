"""The documents a newcomer reads: a short README, and a benchmarks page that cannot drift from the figures."""

import importlib.util
import json
import re

from support import REPO


def test_the_readme_is_short_links_only_pages_that_exist_and_narrates_no_history():
    text = (REPO / "README.md").read_text()
    assert len(text.splitlines()) <= 200
    for target in re.findall(r"\]\((docs/[^)#]+)", text):
        assert (REPO / target).is_file(), target
    assert not re.search(r"\b(commit [0-9a-f]{7}|issue #\d+|session \d+|earlier host|later host)\b", text)


def test_the_benchmarks_page_is_generated_from_the_results_file():
    spec = importlib.util.spec_from_file_location("benchmarks_doc", REPO / "scripts" / "benchmarks_doc.py")
    doc = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(doc)
    results = json.loads((REPO / "benchmarks" / "results" / "latest.json").read_text())
    assert (REPO / "docs" / "benchmarks.md").read_text() == doc.render(results), \
        "docs/benchmarks.md is out of date: run scripts/benchmarks_doc.py"
    page = doc.render(results)
    assert "## 21. Will it fit" in page and "Measured on **" in page
