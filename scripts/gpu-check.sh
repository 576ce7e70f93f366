#!/usr/bin/env bash
# The GPU check (docs/gpu-check.md): one command on a fresh GPU machine, at most 8 minutes.
#
#   bash scripts/gpu-check.sh [OUT.json] [extra options of python -m vibench.runner.gpu_check]
#
# OUT.json defaults to $OUT/gpu-check.json when $OUT is set, else ./gpu-check.json; the work
# folder (stores, logs, the data cache) is $GPU_CHECK_WORK, default /tmp/vibench-gpu-check. Installs the
# checkout with `pip install --no-deps --no-build-isolation -e .` when vibench or its methods
# are not importable (no network needed: torch, torchvision, timm and the packages listed in
# docs/gpu-check.md must be there already). Exit code 0 when no part failed, 1 otherwise, 2 when
# the check could not start.
set -uo pipefail
cd "$(dirname "$0")/.."
PY="${PYTHON:-python3}"
DEST="${1:-${OUT:-.}/gpu-check.json}"
shift || true
WORK="${GPU_CHECK_WORK:-${TMPDIR:-/tmp}/vibench-gpu-check}"
DEADLINE="${GPU_CHECK_DEADLINE:-420}"   # seconds for all parts; the install and start-up fit in the rest of 8 minutes

have_vibench() {
  "$PY" - <<'EOF' 2>/dev/null
from vibench.registry import available_methods
missing = {"agw", "pmt", "bit", "aminet", "tmpa", "mixer", "pmcm"} - set(available_methods())
raise SystemExit(1 if missing else 0)
EOF
}

if ! have_vibench; then
  echo "gpu-check: installing this checkout (pip install --no-deps --no-build-isolation -e .)"
  if ! "$PY" -m pip install -q --no-deps --no-build-isolation -e . ; then
    echo "gpu-check: error: could not install vibench from $(pwd) (needs setuptools and wheel offline)" >&2
    exit 2
  fi
  if ! have_vibench; then
    echo "gpu-check: error: vibench installed but its seven methods are not registered" >&2
    exit 2
  fi
fi

mkdir -p "$WORK" "$(dirname "$DEST")"
export VIBENCH_CACHE="${VIBENCH_CACHE:-$WORK/cache}"
export PYTHONUNBUFFERED=1
# the outer limit is a safety net: the check itself stops starting parts at its deadline
timeout 450 "$PY" -m vibench.runner.gpu_check --device "${GPU_CHECK_DEVICE:-cuda}" \
  --deadline "$DEADLINE" --work "$WORK" --out "$DEST" "$@"
rc=$?
if [ "$rc" = 124 ]; then
  echo "gpu-check: error: stopped after 450 s; the parts finished so far are in $WORK/*.json" >&2
fi
exit "$rc"
