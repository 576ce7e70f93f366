#!/usr/bin/env bash
# The main job on a fresh machine: set up, then train and evaluate every method on every
# protocol group on the built-in synthetic data (the smoke suite), then render the leaderboards.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
.venv/bin/vibench suites
.venv/bin/vibench run --suite smoke --out results/store --jobs 2
.venv/bin/vibench report --results results/store --out reports
echo "leaderboards: reports/index.html and reports/leaderboard.md"
