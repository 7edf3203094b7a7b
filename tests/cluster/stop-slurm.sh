#!/usr/bin/env bash
# stop-slurm.sh - stop what start-slurm.sh (beside it) started, and nothing else.
#
#   stop-slurm.sh             cancel all jobs still in the cluster (so that no job process
#                             outlives slurmd), then stop slurmd, slurmctld, slurmdbd, mariadbd,
#                             munged - each only if start-slurm.sh started it
#   stop-slurm.sh --keep-jobs do not cancel jobs first (SLURM_TEST_KEEP_JOBS=1 does the same)
#   stop-slurm.sh --purge     also delete $SLURM_TEST_DIR (MariaDB data = accounting history)
#
# Daemons are found only through the "PID STARTTIME" files start-slurm.sh wrote in
# $SLURM_TEST_DIR (default /tmp/ferry-slurm), checked against /proc/PID (comm and start
# time), so a recycled pid is never hit. No pkill -f, no killall. Keeps packages, config,
# /var/spool/slurmctld (job ids go on counting) and logs.
set -uo pipefail

PROG=stop-slurm
DIR=${SLURM_TEST_DIR:-/tmp/ferry-slurm}
KEEP_JOBS=${SLURM_TEST_KEEP_JOBS:-0}
PURGE=0
for a in "$@"; do
    case $a in
        --keep-jobs) KEEP_JOBS=1 ;;
        --purge) PURGE=1 ;;
        -h|--help) sed -n '2,13p' "$0"; exit 0 ;;
        *) echo "$PROG: unknown argument: $a" >&2; exit 2 ;;
    esac
done
[ "$(id -u)" -eq 0 ] || { echo "$PROG: ERROR: must be run as root" >&2; exit 1; }
log() { echo "$PROG: $*"; }
rc=0
[ -d "$DIR" ] || { log "nothing to stop ($DIR does not exist)"; exit 0; }
exec 9> "$DIR/.lock"
flock -w 300 9 || { echo "$PROG: ERROR: another start/stop holds $DIR/.lock" >&2; exit 1; }

starttime() { sed 's/^.*) //' "/proc/$1/stat" 2>/dev/null | cut -d' ' -f20; }
alive() {      # alive PID COMM: process named COMM with at least one live (non-zombie) thread
    # (a daemon whose main thread has exited shows state Z while its other threads still
    # shut down, e.g. sge_qmaster for 7-8 s after SIGTERM: that is not "stopped" yet)
    local t st
    [ -n "$1" ] && [ "$(cat "/proc/$1/comm" 2>/dev/null)" = "$2" ] || return 1
    for t in /proc/"$1"/task/*/stat; do
        st=$(sed 's/^.*) //' "$t" 2>/dev/null | cut -d' ' -f1)
        case "$st" in ''|Z|X) ;; *) return 0 ;; esac
    done
    return 1
}
marked_pid() {  # marked_pid NAME COMM: the pid start-slurm.sh recorded, if still that process
    local p s
    [ -r "$DIR/$1.pid" ] || return 1
    read -r p s < "$DIR/$1.pid" || return 1
    alive "$p" "$2" && [ "$(starttime "$p")" = "$s" ] && echo "$p"
}

# ---- cancel jobs (only while our slurmctld is up)
if [ "$KEEP_JOBS" != 1 ] && marked_pid slurmctld slurmctld >/dev/null && command -v squeue >/dev/null; then
    ids=$(timeout 20 squeue -h -o %A 2>/dev/null | tr '\n' ' ')
    if [ -n "${ids// /}" ]; then
        log "cancelling jobs: $ids"
        # (scancel also ends suspended jobs: state CANCELLED, ExitCode 0:9)
        timeout 20 scancel $ids 2>/dev/null || true
        for _ in $(seq 1 100); do      # wait (<= 20 s) until no job is left running/completing
            [ -z "$(timeout 10 squeue -h -t R,CG,S -o %A 2>/dev/null)" ] && break
            sleep 0.2
        done
    fi
fi

for name in slurmd slurmctld slurmdbd mariadbd munged; do
    f=$DIR/$name.pid
    [ -f "$f" ] || continue
    if ! pid=$(marked_pid "$name" "$name"); then
        log "$name (recorded in $f) is not running"
        rm -f "$f"
        continue
    fi
    log "stopping $name (pid $pid)"
    kill -TERM "$pid" 2>/dev/null
    for _ in $(seq 1 150); do alive "$pid" "$name" || break; sleep 0.2; done
    if alive "$pid" "$name"; then
        log "$name (pid $pid) ignored SIGTERM for 30 s; sending SIGKILL"
        kill -KILL "$pid" 2>/dev/null
        sleep 0.5
    fi
    if alive "$pid" "$name"; then
        echo "$PROG: ERROR: could not stop $name (pid $pid)" >&2
        rc=1
    else
        rm -f "$f"      # (PID 1 here reaps orphans slowly: it may linger as a zombie ~1 s)
    fi
done
[ $rc = 0 ] && rm -f "$DIR/env.sh"
if [ $PURGE = 1 ] && [ $rc = 0 ]; then
    log "removing $DIR"
    rm -rf "$DIR"
fi
exit $rc
