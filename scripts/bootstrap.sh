#!/usr/bin/env bash
# Create the project's venv (.venv) from Python 3.12 and install the twin with its test extra.
# Works on a fresh machine: finds Python 3.12 through pyenv or on PATH.
set -euo pipefail
cd "$(dirname "$0")/.."

PY="${TWIN_PYTHON:-}"
if [ -z "$PY" ] && command -v pyenv >/dev/null 2>&1; then
    for candidate in "$(pyenv root)"/versions/3.12*/bin/python3.12; do
        [ -x "$candidate" ] && PY="$candidate"
    done
fi
if [ -z "$PY" ] && command -v python3.12 >/dev/null 2>&1; then
    PY="$(command -v python3.12)"
fi
if [ -z "$PY" ]; then
    echo "bootstrap: no Python 3.12 found (install it, or set TWIN_PYTHON=/path/to/python3.12)" >&2
    exit 1
fi

if [ ! -x .venv/bin/python ]; then
    "$PY" -m venv .venv
fi
.venv/bin/python -m pip install --quiet --upgrade pip
.venv/bin/python -m pip install --quiet -e ".[test]"
