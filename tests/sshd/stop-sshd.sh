#!/bin/bash
# shellcheck disable=SC2046,SC2086  # pid lists are word-split on purpose
# stop-sshd.sh - stop what start-sshd.sh (beside it) started, and nothing else.
#
#   stop-sshd.sh           stop both sshds (by pid file) with their sessions, remove the namespace
#                          (only if start-sshd.sh created it); keeps user, keys and logs for the next start
#   stop-sshd.sh --purge   also delete the test user (only if start-sshd.sh created it) and $SSHD_TEST_DIR
#
# Processes are found only through the pid files in $SSHD_TEST_DIR (checked against /proc/PID/cmdline,
# so a recycled pid is never hit), their descendants (sessions), and `ip netns pids` of the namespace
# start-sshd.sh created.  No pkill -f, no killall.
set -uo pipefail

DIR=${SSHD_TEST_DIR:-/tmp/ferry-sshd}
PURGE=0
for a in "$@"; do
  case $a in
    --purge) PURGE=1 ;;
    -h|--help) sed -n '3,11p' "$0"; exit 0 ;;
    *) echo "unknown argument: $a" >&2; exit 2 ;;
  esac
done
log() { echo "[stop-sshd] $*" >&2; }
[ "$(id -u)" = 0 ] || { log "must run as root"; exit 1; }
[ -d "$DIR" ] || { log "nothing to stop ($DIR does not exist)"; exit 0; }

alive() {   # running and not a zombie (PID 1 here reaps orphans only now and then)
  local st
  st=$(awk '{print $3}' "/proc/$1/stat" 2>/dev/null) || return 1
  [ -n "$st" ] && [ "$st" != Z ]
}
alive_only() { local p; for p in "$@"; do alive "$p" && echo "$p"; done; }
descendants() {   # all descendants of pid $1 (a snapshot of pid/ppid pairs, walked from $1)
  ps -eo pid=,ppid= | awk -v root="$1" '
    { kids[$2] = kids[$2] " " $1 }
    END { n = split(kids[root], q, " "); i = 1
          while (i <= n) { p = q[i++]; print p; m = split(kids[p], c, " "); for (j = 1; j <= m; j++) q[++n] = c[j] } }'
}
kill_wait() {   # TERM the given pids, wait up to 5 s, then KILL what is left
  local pids=() p i
  for p in "$@"; do alive "$p" && pids+=("$p"); done
  [ ${#pids[@]} -gt 0 ] || return 0
  kill -TERM "${pids[@]}" 2>/dev/null
  for ((i = 0; i < 50; i++)); do
    local left=()
    for p in "${pids[@]}"; do alive "$p" && left+=("$p"); done
    [ ${#left[@]} -eq 0 ] && return 0
    sleep 0.1
  done
  log "still alive after 5 s, sending KILL: ${left[*]}"
  kill -KILL "${left[@]}" 2>/dev/null
}

stop_sshd() {   # name: lo | ns
  local n=$1 pf=$DIR/sshd_$1.pid pid
  [ -s "$pf" ] || return 0
  pid=$(cat "$pf")
  local cmd=""
  alive "$pid" && cmd=$(tr '\0' ' ' < "/proc/$pid/cmdline" 2>/dev/null)
  if [[ $cmd == *"$DIR/sshd_$n.conf"* ]]; then
    # Killing the listener alone leaves open sessions (and their commands) running: take the
    # whole tree, listed before anything is killed so that nothing gets reparented first.
    local tree
    tree=$(alive_only $(descendants "$pid"))
    log "stopping sshd_$n (pid $pid${tree:+, sessions: $(echo $tree)})"
    kill_wait "$pid" $tree
  else
    log "sshd_$n: pid file $pf is stale, nothing to stop"
  fi
  rm -f "$pf"
}

stop_sshd lo
stop_sshd ns

if [ -s "$DIR/netns.created" ]; then
  NS=$(cat "$DIR/netns.created")
  if [ -e "/run/netns/$NS" ]; then
    # anything still running inside our namespace (sessions whose parent was lost) is ours
    nspids=$(alive_only $(ip netns pids "$NS" 2>/dev/null) | tr "\n" " ")
    [ -n "${nspids// /}" ] && { log "ending processes left in netns $NS: $nspids"; kill_wait $nspids; }
    ip netns del "$NS" && log "removed netns $NS"
  fi
  # deleting the namespace destroys the veth pair; remove the host end in case it survived
  VETH_H=${NS:0:12}-h
  ip link show "$VETH_H" >/dev/null 2>&1 && ip link del "$VETH_H"
  rm -f "$DIR/netns.created"
fi

if [ "$PURGE" = 1 ]; then
  if [ -s "$DIR/user.created" ]; then
    U=$(cat "$DIR/user.created")
    if getent passwd "$U" >/dev/null; then
      # processes of the test user that escaped the session trees (daemonised by a test)
      upids=$(alive_only $(ps -o pid= -u "$U" 2>/dev/null) | tr '\n' ' ')
      [ -n "${upids// /}" ] && { log "ending leftover processes of $U: $upids"; kill_wait $upids; }
      userdel -r "$U" 2>/dev/null || userdel "$U"
      log "removed user $U"
    fi
  fi
  if [ -s "$DIR/banner-user.created" ]; then
    U=$(cat "$DIR/banner-user.created")
    if getent passwd "$U" >/dev/null; then
      userdel -r "$U" 2>/dev/null || userdel "$U"
      log "removed user $U"
    fi
  fi
  rm -rf "$DIR"
  log "removed $DIR"
fi
log "done"
exit 0
