#!/usr/bin/env bash
# Set up a fresh clone: system packages (data, and a browser for tests), then a virtualenv.
#   scripts/setup.sh          # to run the app
#   scripts/setup.sh --dev    # to run the tests too (adds pytest, Playwright and Chromium)
set -euo pipefail
cd "$(dirname "$0")/.."
dev=0; [ "${1:-}" = "--dev" ] && dev=1

apt_install() {  # apt_install PACKAGE CHECK_PATH WHY
  [ -e "$2" ] && return 0
  if command -v apt-get >/dev/null && [ "$(id -u)" = 0 ]; then
    echo "setup: installing $1 ($3)"
    apt-get install -y -qq "$1" >/dev/null 2>&1 || { apt-get update -qq >/dev/null && apt-get install -y -qq "$1" >/dev/null; }
  elif command -v apt-get >/dev/null && command -v sudo >/dev/null && sudo -n true 2>/dev/null; then
    sudo apt-get install -y -qq "$1" >/dev/null
  else
    echo "setup: $1 is not installed ($3). Install it with: sudo apt-get install $1" >&2
  fi
}

apt_install dataset-fashion-mnist /usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz \
  "the default dataset; or set EXPLORER_FASHION_MNIST_DIR to a folder with its four IDX .gz files"
[ $dev = 1 ] && apt_install chromium /usr/bin/chromium "headless browser for the end-to-end test"

PYTHON=${PYTHON:-python3}
req=requirements.txt; [ $dev = 1 ] && req=requirements-dev.txt
stamp=".venv/.installed-$(basename "$req" .txt)"
if [ ! -f "$stamp" ] || [ "$req" -nt "$stamp" ] || [ requirements.txt -nt "$stamp" ]; then
  [ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
  .venv/bin/python -m pip install -q --upgrade pip
  .venv/bin/python -m pip install -q -r "$req"
  touch "$stamp"
fi
# The measuring agent's packages as wheels, once: the tests build a target's environment from them, so the
# suite runs with the registry unreachable after setup.
if [ $dev = 1 ] && [ ! -f .venv/wheels/.complete ]; then
  pins=$(.venv/bin/python -c "from importlib.metadata import version as v; print(f'ai-edge-litert=={v(\"ai-edge-litert\")} numpy=={v(\"numpy\")}')")
  .venv/bin/python -m pip download -q --disable-pip-version-check -d .venv/wheels $pins && touch .venv/wheels/.complete
fi
# The project itself, in editable mode: `import explorer` works from anywhere (tests, workers, scripts).
if [ ! -f .venv/.installed-editable ] || [ pyproject.toml -nt .venv/.installed-editable ]; then
  .venv/bin/python -m pip install -q --no-deps --no-build-isolation -e . && touch .venv/.installed-editable
fi
