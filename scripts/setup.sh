#!/usr/bin/env bash
# Set up vibench from scratch: a virtual environment in .venv with vibench installed (editable)
# and its test extras. Idempotent: a second run only checks the install.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -m venv .venv
fi
.venv/bin/python -m pip install --quiet --upgrade pip "setuptools>=77" wheel
.venv/bin/python -m pip install --quiet -e ".[test]"
.venv/bin/vibench --version
