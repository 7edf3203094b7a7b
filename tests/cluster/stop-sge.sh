#!/usr/bin/env bash
# stop-sge.sh - stop the Grid Engine daemons that start-sge.sh (beside it) started, and
# nothing else.
#
#   stop-sge.sh              delete all jobs still in the cluster (qdel -u '*', so that no job
#                            process outlives execd), then stop sge_execd and sge_qmaster -
#                            each only if start-sge.sh started it
#   stop-sge.sh --keep-jobs  do not delete jobs first (SGE_TEST_KEEP_JOBS=1 does the same)
#
# Daemons are found only through the "PID STARTTIME" files start-sge.sh wrote in
# $SGE_TEST_DIR (default /tmp/ferry-sge), checked against /proc/PID (comm and start time),
# so a recycled pid is never hit. No pkill -f, no killall. Keeps packages and configuration
# (job ids go on counting). sge_qmaster takes 7-8 s to exit after SIGTERM.
set -uo pipefail
export SGE_ROOT=/var/lib/gridengine
export SGE_CELL=default
SGE_BIN=/usr/lib/gridengine
DIR=${SGE_TEST_DIR:-/tmp/ferry-sge}
WAIT_S=${SGE_TEST_STOP_WAIT:-30}
KEEP_JOBS=${SGE_TEST_KEEP_JOBS:-0}
for a in "$@"; do
    case $a in
        --keep-jobs) KEEP_JOBS=1 ;;
        -h|--help) sed -n '2,13p' "$0"; exit 0 ;;
        *) echo "stop-sge: unknown argument: $a" >&2; exit 2 ;;
    esac
done
[ "$(id -u)" = 0 ] || { echo "stop-sge: ERROR: must be run as root" >&2; exit 1; }
rc=0

log() { echo "stop-sge: $*"; }
[ -d "$DIR" ] || { log "nothing to stop ($DIR does not exist)"; exit 0; }
exec 9> "$DIR/.lock"
flock -w 300 9 || { echo "stop-sge: ERROR: another start/stop holds $DIR/.lock" >&2; exit 1; }
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
ours() {   # $1 = daemon (qmaster|execd): print its pid if it is alive and ours
    local f=$DIR/$1.pid p s
    [ -s "$f" ] || return 1
    read -r p s < "$f"
    if alive "$p" "sge_$1" && [ "$(starttime "$p")" = "$s" ]; then echo "$p"; return 0; fi
    rm -f "$f"      # stale
    return 1
}
stop() {   # $1 = daemon
    local p i
    p=$(ours "$1") || { log "sge_$1: not started by start-sge.sh or not running"; return 0; }
    log "stopping sge_$1 (pid $p)"
    kill -TERM "$p" 2>/dev/null
    for ((i = 0; i < WAIT_S * 5; i++)); do
        alive "$p" "sge_$1" || break
        sleep 0.2
    done
    if alive "$p" "sge_$1"; then
        log "sge_$1 (pid $p) ignored SIGTERM for ${WAIT_S}s; sending SIGKILL"
        kill -KILL "$p" 2>/dev/null
        sleep 1
        if alive "$p" "sge_$1"; then
            echo "stop-sge: ERROR: sge_$1 (pid $p) still alive" >&2; rc=1; return
        fi
    fi
    rm -f "$DIR/$1.pid"
}

if EPID=$(ours execd) && [ "$KEEP_JOBS" != 1 ] && ours qmaster >/dev/null; then
    if [ -n "$(timeout 20 "$SGE_BIN/qstat" -u '*' 2>/dev/null)" ]; then
        log "deleting all jobs"
        timeout 20 "$SGE_BIN/qdel" -u '*' >/dev/null 2>&1 || true
    fi
    for ((i = 0; i < WAIT_S * 5; i++)); do          # shepherds are children of execd
        [ -z "$(pgrep -P "$EPID" 2>/dev/null)" ] && break
        sleep 0.2
    done
fi
stop execd
stop qmaster
[ $rc = 0 ] && rm -f "$DIR/env.sh"
exit $rc
