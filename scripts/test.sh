#!/usr/bin/env bash
# Set up and run the tests, then the regression check of the ci suite against the committed
# baseline, run from the built wheel installed in a throwaway environment (scripts/wheel-check.sh).
# Installs Debian's chromium for the browser test, and starts a one-node Slurm cluster for the
# real-Slurm test (scripts/slurm-localhost.sh), when run as root with apt available.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
if ! command -v chromium >/dev/null 2>&1 && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null) \
    || echo "warning: could not install chromium; the browser test will skip" >&2
fi
# A one-node Slurm on this machine for the real-Slurm test (tests/runner/test_slurm_real.py);
# where it cannot be installed or started, that test skips and says why.
if [ "$(id -u)" = 0 ]; then
  bash scripts/slurm-localhost.sh --install \
    || echo "warning: could not start a local Slurm cluster; the real-Slurm test will skip" >&2
fi
export VIBENCH_CACHE="${VIBENCH_CACHE:-$PWD/.cache/vibench}"
.venv/bin/python -m pytest -q -p no:cacheprovider "$@"
# The regression check, from the built wheel installed outside the checkout (docs/testing.md).
bash scripts/wheel-check.sh
