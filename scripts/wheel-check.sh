#!/usr/bin/env bash
# Build vibench's wheel, install it into a throwaway environment (reusing the project
# environment's torch and other packages, nothing downloaded) and run the regression check
# (`vibench check`: the ci suite plus the exact checks) from a temporary directory outside the
# checkout. Proves that a non-editable install works: packages, package data (protocols,
# reported numbers, method configs) and the `vibench.methods` entry points.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
.venv/bin/python -m pip wheel --quiet --no-deps --no-build-isolation -w "$WORK/dist" .
rm -rf build
.venv/bin/python -m venv "$WORK/venv"
SITE=$(.venv/bin/python -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
NEWSITE=$("$WORK/venv/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
echo "$SITE" > "$NEWSITE/zz_vibench_project_env.pth"
"$WORK/venv/bin/python" -m pip install --quiet --no-deps --no-index "$WORK"/dist/vibench-*.whl
cd "$WORK"
"$WORK/venv/bin/python" -c 'import vibench, vibench.paths as p; assert not p.IN_CHECKOUT, vibench.__file__; print("vibench from", vibench.__file__)'
"$WORK/venv/bin/vibench" check --baseline "$ROOT/results/baselines/ci.json"
