#!/usr/bin/env bash
# Start a single-node Slurm cluster on this machine, for the real-Slurm test of
# `vibench run --executor slurm` (tests/runner/test_slurm_real.py; docs/testing.md, "Real Slurm").
#
#   sudo bash scripts/slurm-localhost.sh            # start (or check) the cluster
#   sudo bash scripts/slurm-localhost.sh --install  # first apt-get install slurm-wlm munge if missing
#   sudo bash scripts/slurm-localhost.sh --stop     # stop the daemons this script started
#
# One node named after `hostname -s` with this machine's CPUs and memory (from `slurmd -C`), one
# partition `debug`, no cgroups (proctrack/linuxproc, task/none: works in a VM or a container
# without cgroup delegation), select/cons_tres with CPUs and memory as consumable resources, no
# accounting database. Config at $SLURM_CONF (default /etc/slurm/slurm.conf; a config this script
# did not write is never overwritten), state and logs under $VIBENCH_SLURM_STATE (default
# /var/spool/vibench-slurm). Idempotent: a cluster already up is left running. Exits non-zero
# with the reason (and the daemon's log) when the cluster cannot start.
set -euo pipefail

CONF="${SLURM_CONF:-/etc/slurm/slurm.conf}"
STATE="${VIBENCH_SLURM_STATE:-/var/spool/vibench-slurm}"
MARK="# written by vibench scripts/slurm-localhost.sh"
WAIT_S="${VIBENCH_SLURM_WAIT_S:-60}"
INSTALL=0
STOP=0
for arg in "$@"; do
  case "$arg" in
    --install) INSTALL=1 ;;
    --stop) STOP=1 ;;
    -h|--help) sed -n '2,16p' "$0"; exit 0 ;;
    *) echo "slurm-localhost: unknown option $arg (expected --install, --stop)" >&2; exit 2 ;;
  esac
done

die() { echo "slurm-localhost: $*" >&2; exit 1; }
log_tail() { [ -f "$1" ] && { echo "--- last lines of $1:" >&2; tail -n 15 "$1" >&2; } || true; }
alive() { [ -f "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null; }

[ "$(id -u)" = 0 ] || die "must run as root (munged, slurmctld and slurmd are system daemons): sudo bash $0"

if [ "$STOP" = 1 ]; then
  for pidfile in "$STATE/slurmd.pid" "$STATE/slurmctld.pid" "$STATE/munged.pid"; do
    if alive "$pidfile"; then kill "$(cat "$pidfile")" && echo "stopped $(basename "$pidfile" .pid)"; fi
  done
  exit 0
fi

missing() { for b in munged munge unmunge slurmctld slurmd sinfo scontrol sbatch; do command -v "$b" >/dev/null 2>&1 || return 0; done; return 1; }
if missing && [ "$INSTALL" = 1 ]; then
  command -v apt-get >/dev/null 2>&1 || die "slurm-wlm and munge are missing and apt-get is not available"
  echo "slurm-localhost: installing slurm-wlm and munge (apt-get)" >&2
  { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends slurm-wlm munge >/dev/null; } \
    || die "apt-get install slurm-wlm munge failed"
fi
missing && die "Slurm is not installed: apt-get install -y slurm-wlm munge (or run with --install)"

HOST="$(hostname -s)"
mkdir -p "$STATE/ctld" "$STATE/d" "$(dirname "$CONF")"

# The node line from slurmd's own view of the hardware: logical CPUs (no socket/core topology,
# so CR_CPU can place one job on each CPU) and the memory it reports.
HW="$(slurmd -C 2>/dev/null | head -n 1)" || die "slurmd -C failed: cannot read this machine's hardware"
CPUS="$(sed -n 's/.*CPUs=\([0-9]*\).*/\1/p' <<<"$HW")"
MEM="$(sed -n 's/.*RealMemory=\([0-9]*\).*/\1/p' <<<"$HW")"
[ -n "$CPUS" ] && [ -n "$MEM" ] || die "could not read CPUs and RealMemory from 'slurmd -C': $HW"

NEW="$(cat <<EOF
$MARK
# one node ($HOST: $CPUS CPUs, $MEM MB), no cgroups, no accounting database
ClusterName=vibench
SlurmctldHost=$HOST(127.0.0.1)
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
MpiDefault=none
StateSaveLocation=$STATE/ctld
SlurmdSpoolDir=$STATE/d
SlurmctldPidFile=$STATE/slurmctld.pid
SlurmdPidFile=$STATE/slurmd.pid
SlurmctldLogFile=$STATE/slurmctld.log
SlurmdLogFile=$STATE/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU_Memory
DefMemPerCPU=$((MEM / CPUS))
ReturnToService=2
KillWait=10
MinJobAge=600
SlurmctldTimeout=30
SlurmdTimeout=60
NodeName=$HOST NodeAddr=127.0.0.1 CPUs=$CPUS RealMemory=$MEM State=UNKNOWN
PartitionName=debug Nodes=$HOST Default=YES MaxTime=INFINITE State=UP
EOF
)"

if [ -f "$CONF" ] && ! grep -qxF "$MARK" "$CONF"; then
  die "$CONF was not written by this script: not overwriting it (move it away, or set SLURM_CONF to another path)"
fi
CHANGED=0
if [ ! -f "$CONF" ] || [ "$(cat "$CONF")" != "$NEW" ]; then
  printf '%s\n' "$NEW" > "$CONF.tmp" && mv "$CONF.tmp" "$CONF"
  CHANGED=1
fi
export SLURM_CONF="$CONF"

# munge: the authentication daemon every Slurm command talks through.
if ! munge -n 2>/dev/null | unmunge >/dev/null 2>&1; then
  [ -f /etc/munge/munge.key ] || { mungekey --create 2>/dev/null || /usr/sbin/create-munge-key -f; } \
    || die "no /etc/munge/munge.key and it could not be created"
  chown munge:munge /etc/munge/munge.key && chmod 400 /etc/munge/munge.key
  mkdir -p /run/munge /var/log/munge /var/lib/munge
  chown munge:munge /run/munge /var/log/munge /var/lib/munge
  runuser -u munge -- /usr/sbin/munged --pid-file=/run/munge/munged.pid \
    || { log_tail /var/log/munge/munged.log; die "munged did not start"; }
  cp /run/munge/munged.pid "$STATE/munged.pid" 2>/dev/null || true
  for _ in $(seq 20); do munge -n 2>/dev/null | unmunge >/dev/null 2>&1 && break; sleep 0.5; done
  munge -n 2>/dev/null | unmunge >/dev/null 2>&1 || { log_tail /var/log/munge/munged.log; die "munged is not answering"; }
fi

# A config change restarts the daemons this script started (they read it only at start).
if [ "$CHANGED" = 1 ]; then
  for pidfile in "$STATE/slurmd.pid" "$STATE/slurmctld.pid"; do
    if alive "$pidfile"; then kill "$(cat "$pidfile")"; sleep 2; fi
  done
fi
if ! alive "$STATE/slurmctld.pid"; then
  slurmctld || { log_tail "$STATE/slurmctld.log"; die "slurmctld did not start"; }
fi
for _ in $(seq 20); do scontrol ping 2>/dev/null | grep -q "is UP" && break; sleep 0.5; done
scontrol ping 2>/dev/null | grep -q "is UP" || { log_tail "$STATE/slurmctld.log"; die "slurmctld is not answering (scontrol ping)"; }
if ! alive "$STATE/slurmd.pid"; then
  slurmd || { log_tail "$STATE/slurmd.log"; die "slurmd did not start"; }
fi

# Wait for the node: idle (or already running jobs); a node left down or drained by an earlier
# run is resumed.
state=""
for _ in $(seq "$((WAIT_S * 2))"); do
  state="$(sinfo -h -n "$HOST" -o %t 2>/dev/null | head -n 1)"
  case "$state" in
    idle|mix|alloc|comp) break ;;
    down*|drain*|drng*) scontrol update NodeName="$HOST" State=RESUME >/dev/null 2>&1 || true ;;
  esac
  sleep 0.5
done
case "$state" in
  idle|mix|alloc|comp) ;;
  *) log_tail "$STATE/slurmd.log"; log_tail "$STATE/slurmctld.log"
     die "node $HOST is '${state:-unknown}' after ${WAIT_S}s (sinfo), not idle" ;;
esac
echo "slurm-localhost: node $HOST ($CPUS CPUs, $MEM MB) is $state in partition debug; config $CONF, logs $STATE"
