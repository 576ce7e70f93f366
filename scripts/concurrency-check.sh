#!/usr/bin/env bash
# Thread sizing under concurrency (docs/training.md, "Threads and parallel runs"): the ci suite
# once with --jobs 1, once with --jobs 2, four concurrent runs with idle threads waiting
# passively (vibench's default), then four with spinning threads (OMP_WAIT_POLICY=ACTIVE), the
# last stopped at STOP_S seconds. Every run in its own empty store under OUT. Run it on an
# otherwise idle machine; it prints wall times and the load average.
# Usage: bash scripts/concurrency-check.sh [OUT] [STOP_S]
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${1:-/tmp/vibench-concurrency}
STOP_S=${2:-690}
VIBENCH=${VIBENCH:-$PWD/.venv/bin/vibench}
[[ -e "$OUT" ]] && { echo "concurrency-check: $OUT exists; give a new folder" >&2; exit 2; }
mkdir -p "$OUT"
load() { cut -d' ' -f1 /proc/loadavg; }
now() { date +%s.%N; }
since() { python3 -c "import sys; print(f'{float(sys.argv[2]) - float(sys.argv[1]):.1f}')" "$1" "$(now)"; }
ci() { nice -n 19 "$VIBENCH" run --suite ci --device cpu "$@"; }

echo "start $(date -u +%FT%TZ), load $(load)"
ci --out "$OUT/warm-up" >"$OUT/warm-up.log" 2>&1
for jobs in 1 2; do
  t0=$(now); ci --jobs "$jobs" --out "$OUT/one-jobs$jobs" >"$OUT/one-jobs$jobs.log" 2>&1
  echo "one ci run, --jobs $jobs: $(since "$t0") s, load $(load)"
done

four() {  # four() NAME [env assignments...]: four concurrent runs, prints each and the total
  local name=$1; shift
  local t0 pids=() i
  t0=$(now)
  for i in 1 2 3 4; do
    ( t=$(now); rc=0
      env "$@" timeout -s INT "$STOP_S" nice -n 19 "$VIBENCH" run --suite ci --device cpu \
        --out "$OUT/$name-$i" >"$OUT/$name-$i.log" 2>&1 || rc=$?
      echo "  $name run $i: $(since "$t") s, exit $rc" ) &
    pids+=($!)
  done
  wait "${pids[@]}"
  echo "four concurrent ($name): $(since "$t0") s, load $(load), cells done: \
$(find "$OUT" -path "$OUT/$name-*/cells/*/DONE" | wc -l) of 16"
}
sleep 20
four passive
sleep 20
four active OMP_WAIT_POLICY=ACTIVE
echo "end $(date -u +%FT%TZ)"
