# The two commands a newcomer needs (see README.md):
#   make run    set up, then serve the app on http://127.0.0.1:8501
#   make test   set up (with test tools), then run the whole test suite
PY := .venv/bin/python

.PHONY: setup setup-dev run test bench sweep

setup:
	scripts/setup.sh

setup-dev:
	scripts/setup.sh --dev

run: setup
	$(PY) scripts/serve.py

test: setup-dev
	$(PY) -m pytest -n auto --dist loadgroup

bench: setup-dev
	$(PY) -m benchmarks

sweep: setup
	$(PY) -m explorer sweep --preset default
