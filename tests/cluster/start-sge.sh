#!/usr/bin/env bash
# start-sge.sh - install (non-interactively), configure and start a real single-node Son of
# Grid Engine 8.1.9 (Debian 12 packages) on this host for ferry's DRMAA-backend tests
# (adapted from the sandbox notes' tested reference script). Root, no systemd.
#
# * exec host = this host, $SGE_TEST_SLOTS slots in all (default 8, more than the cores):
#   queues all.q (default for jobs that name none) and long.q, both on this host; the host's
#   complex_values slots=N caps the two queues together at N running slots
# * parallel environments: smp (allocation_rule $pe_slots) and mpi ($fill_up), both attached
#   to both queues:  qsub -pe smp 4 ...  /  DRMAA native spec "-pe smp 4"
# * root may submit (min_uid/min_gid 0); qacct sees a job as soon as it ends
#   (accounting_flush_time 0); scheduler runs every second
# * DRMAA: gridengine-drmaa-dev, libdrmaa at /usr/lib/gridengine-drmaa/lib/libdrmaa.so.1.0
#
# Idempotent: safe to run again while SGE is up or down; a running daemon is reused.
# Daemons started here are recorded as "PID STARTTIME" in $SGE_TEST_DIR/*.pid, and
# stop-sge.sh stops only those, by pid. Installs its Debian packages itself (apt-get update
# + retry if the install fails).
#
# Tunables (environment):
#   SGE_TEST_DIR    state dir: env.sh, pid files           (/tmp/ferry-sge)
#   SGE_TEST_SLOTS  slots of the host (and of each queue)  (8)
#   SGE_TEST_WAIT   bound in seconds for each wait         (90)
#   SGE_TEST_SMOKE  1 = always run a 'true' job with qsub -sync y at the end, 0 = never,
#                   auto = only if this run started a daemon (auto)
# On success prints the variables for tests and writes them to $SGE_TEST_DIR/env.sh.
set -euo pipefail

export SGE_ROOT=/var/lib/gridengine
export SGE_CELL=default
SGE_BIN=/usr/lib/gridengine            # real binaries (/usr/bin/q* are slow sh wrappers)
export PATH="$SGE_BIN:$PATH"
DIR=${SGE_TEST_DIR:-/tmp/ferry-sge}
SLOTS=${SGE_TEST_SLOTS:-8}
WAIT_S=${SGE_TEST_WAIT:-90}
SMOKE=${SGE_TEST_SMOKE:-auto}
started=0
QUEUES="all.q long.q"
PES="smp mpi"
COMMON=$SGE_ROOT/$SGE_CELL/common
QMASTER_SPOOL=/var/spool/gridengine/qmaster
EXECD_SPOOL=/var/spool/gridengine/execd
DRMAA_LIB=/usr/lib/gridengine-drmaa/lib/libdrmaa.so.1.0
PKGS="gridengine-master gridengine-exec gridengine-client gridengine-drmaa-dev"

case "${1:-}" in -h|--help) sed -n '2,26p' "$0"; exit 0 ;; '') ;; *) echo "start-sge: unknown argument: $1" >&2; exit 2 ;; esac
die() { echo "start-sge: ERROR: $*" >&2; exit 1; }
log() { echo "start-sge: $*"; }

[ "$(id -u)" = 0 ] || die "must be run as root"
case "$SLOTS$WAIT_S" in *[!0-9]*) die "SGE_TEST_SLOTS/SGE_TEST_WAIT must be integers" ;; esac
[ "$SLOTS" -ge 2 ] || die "SGE_TEST_SLOTS must be >= 2"
mkdir -p "$DIR"
# one start/stop at a time (tests running in parallel may all call this script)
exec 9> "$DIR/.lock"
flock -w 300 9 || die "another start-sge.sh/stop-sge.sh holds $DIR/.lock"

# ---------------------------------------------------------------- install
missing=""
for p in $PKGS; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing="$missing $p"
done
if [ -n "$missing" ]; then
    log "installing:$missing"
    H0=$(hostname)
    debconf-set-selections <<EOF
gridengine-common shared/gridengineconfig boolean true
gridengine-common shared/gridenginecell string $SGE_CELL
gridengine-common shared/gridenginemaster string $H0
EOF
    # package installs must not start daemons (this image's policy-rc.d says 101; add one if absent)
    own_policy=0
    if [ ! -e /usr/sbin/policy-rc.d ]; then
        printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d
        chmod 755 /usr/sbin/policy-rc.d
        own_policy=1
    fi
    apt_install() {
        DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=900 -q install -y \
            --no-install-recommends $PKGS
    }
    rc=0
    apt_install > /tmp/start-sge-apt.log 2>&1 || {
        log "install failed, running apt-get update and retrying"
        { apt-get -o DPkg::Lock::Timeout=900 -q update && apt_install; } >> /tmp/start-sge-apt.log 2>&1
    } || rc=$?
    [ "$own_policy" = 1 ] && rm -f /usr/sbin/policy-rc.d
    [ "$rc" = 0 ] || die "apt-get install of $PKGS failed (rc=$rc, see /tmp/start-sge-apt.log)"
fi
for f in $SGE_BIN/sge_qmaster $SGE_BIN/sge_execd $SGE_BIN/qconf $SGE_BIN/qsub \
         "$DRMAA_LIB" /usr/lib/gridengine-drmaa/include/drmaa.h; do
    [ -e "$f" ] || die "$f missing after install"
done
id sgeadmin >/dev/null 2>&1 || die "user sgeadmin missing (gridengine-common postinst failed?)"

# ------------------------------------------------- host name resolution
# SGE requires that the IP a client connects from resolves back to the same name the client
# calls itself. Here 'hostname' -> 127.0.0.1 -> "localhost", which makes qmaster reject every
# client ("access denied (client IP resolved to host name "localhost". This is not identical
# to clients host name ..."). Fixed inside SGE only, with a host_aliases file.
H=$(hostname)
if ! getent hosts "$H" >/dev/null; then
    log "host name $H does not resolve; adding '127.0.1.1 $H' to /etc/hosts"
    echo "127.0.1.1 $H" >> /etc/hosts
fi
mkdir -p "$COMMON"
H=$($SGE_BIN/gethostname -name)                    # the name SGE will use (-name: no aliasing)
[ -n "$H" ] || die "gethostname failed"
IP=$($SGE_BIN/gethostbyname -all "$H" | awk '/^Host Address/{print $3; exit}')
[ -n "$IP" ] || die "cannot resolve $H"
REV=$($SGE_BIN/gethostbyaddr -name "$IP" || true)
if [ -n "$REV" ] && [ "$REV" != "$H" ]; then
    if [ "$(cat "$COMMON/host_aliases" 2>/dev/null)" != "$H $REV" ]; then
        echo "$H $REV" > "$COMMON/host_aliases.new" && mv "$COMMON/host_aliases.new" "$COMMON/host_aliases"
        log "host_aliases: '$H $REV' ($H resolves to $IP, which resolves back to $REV)"
    fi
fi
[ "$($SGE_BIN/gethostbyaddr -aname "$IP")" = "$H" ] || die "host name resolution still inconsistent for $H/$IP"
[ "$(cat "$COMMON/act_qmaster" 2>/dev/null)" = "$H" ] || echo "$H" > "$COMMON/act_qmaster"
chown sgeadmin:sgeadmin "$COMMON" "$COMMON/act_qmaster"
[ -e "$COMMON/host_aliases" ] && chmod 644 "$COMMON/host_aliases"

# bootstrap + cluster spool (created by the postinsts on first install when
# shared/gridengineconfig=true; recreated here if that was skipped)
[ -e "$COMMON/bootstrap" ] ||
    install -m0644 -o sgeadmin -g sgeadmin /usr/share/gridengine/default-bootstrap "$COMMON/bootstrap"
if [ ! -e /var/spool/gridengine/spooldb/sge ]; then
    log "initialising cluster spool"
    mkdir -p /var/spool/gridengine/spooldb "$QMASTER_SPOOL/job_scripts"
    chown sgeadmin:sgeadmin /var/spool/gridengine/spooldb "$QMASTER_SPOOL" "$QMASTER_SPOOL/job_scripts"
    su -s /bin/sh -c "/usr/share/gridengine/scripts/init_cluster $SGE_ROOT $SGE_CELL /var/spool/gridengine/spooldb sgeadmin" sgeadmin \
        || die "init_cluster failed"
fi
mkdir -p "$EXECD_SPOOL" && chown sgeadmin:sgeadmin "$EXECD_SPOOL"

# ---------------------------------------------------------------- helpers
# A pid is trusted only together with its start time (field 22 of /proc/PID/stat).
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
pidfile_pid() { # pidfile_pid COMM FILE...: the pid in a daemon's own pid file, if alive
    local comm=$1 f p; shift
    for f in "$@"; do
        [ -r "$f" ] || continue
        p=$(tr -dc '0-9' < "$f")
        alive "$p" "$comm" && { echo "$p"; return 0; }
    done
    return 1
}
mark() { echo "$2 $(starttime "$2")" > "$DIR/$1.pid"; }   # mark NAME PID
wait_for() {   # $1 = description, rest = command; bounded by WAIT_S
    local desc=$1 t=0; shift
    until "$@" >/dev/null 2>&1; do
        t=$((t + 1))
        [ $t -le $((WAIT_S * 4)) ] || die "timed out after ${WAIT_S}s waiting for $desc"
        sleep 0.25
    done
}

# ---------------------------------------------------------------- qmaster
if QPID=$(pidfile_pid sge_qmaster "$QMASTER_SPOOL/qmaster.pid"); then
    log "sge_qmaster already running (pid $QPID)"
else
    rm -f "$QMASTER_SPOOL/qmaster.pid" "$DIR/qmaster.pid"
    log "starting sge_qmaster"
    setsid -w "$SGE_BIN/sge_qmaster" 9>&- </dev/null >/dev/null 2>&1 || die "sge_qmaster failed to start; see $QMASTER_SPOOL/messages"
    wait_for "qmaster pid file" pidfile_pid sge_qmaster "$QMASTER_SPOOL/qmaster.pid"
    QPID=$(pidfile_pid sge_qmaster "$QMASTER_SPOOL/qmaster.pid")
    mark qmaster "$QPID"
    started=1
fi
wait_for "qmaster to answer (see $QMASTER_SPOOL/messages)" qconf -sh
alive "$QPID" sge_qmaster || die "sge_qmaster died; tail of messages: $(tail -5 $QMASTER_SPOOL/messages)"

# ---------------------------------------------------------------- configure
TMP=$(mktemp -d); trap 'rm -rf "$TMP"' EXIT
set_kv() {     # $1 file, $2 key, $3 value (value may contain spaces)
    awk -v k="$2" -v v="$3" 'BEGIN{d=0} $1==k{printf "%-28s %s\n",k,v; d=1; next} {print} END{if(!d) printf "%-28s %s\n",k,v}' \
        "$1" > "$1.new" && mv "$1.new" "$1"
}
flatten() { sed -e ':a' -e '/\\$/N; s/\\\n[[:space:]]*/ /; ta' | grep -v '^#'; }
norm() { flatten | awk '{$1=$1};1'; }      # for comparisons only
q() { local out; out=$("$@" 2>&1) || die "'$*' failed: $out"; }   # quiet qconf

qconf -ah "$H" >/dev/null 2>&1 || true          # admin host (qmaster host already is)
qconf -ss 2>/dev/null | grep -qx "$H" || q qconf -as "$H"

# global configuration: allow root jobs (min_uid/min_gid 1000 by default), call the real
# shepherd binary (the /usr/sbin/sge_shepherd wrapper costs ~0.5 s and much CPU per job
# start), immediate accounting for qacct, faster load reports.
qconf -sconf global | flatten > "$TMP/global"
set_kv "$TMP/global" min_uid 0
set_kv "$TMP/global" min_gid 0
set_kv "$TMP/global" shepherd_cmd "$SGE_BIN/sge_shepherd"
set_kv "$TMP/global" load_report_time 00:00:05
set_kv "$TMP/global" execd_params "ENABLE_ADDGRP_KILL=TRUE"
set_kv "$TMP/global" reporting_params "accounting=true reporting=false flush_time=00:00:01 joblog=false sharelog=00:00:00 accounting_flush_time=00:00:00"
if ! diff -q <(qconf -sconf global | norm) <(norm < "$TMP/global") >/dev/null; then
    q qconf -Mconf "$TMP/global"
fi

# scheduler: run every second and right after submits/finishes
qconf -ssconf | flatten > "$TMP/sched"
set_kv "$TMP/sched" schedule_interval 0:0:1
set_kv "$TMP/sched" flush_submit_sec 1
set_kv "$TMP/sched" flush_finish_sec 1
set_kv "$TMP/sched" job_load_adjustments NONE
set_kv "$TMP/sched" load_adjustment_decay_time 0:0:0
diff -q <(qconf -ssconf | norm) <(norm < "$TMP/sched") >/dev/null || q qconf -Msconf "$TMP/sched"

# execution host; complex_values slots=N caps all queues on it together at N slots
cat > "$TMP/eh" <<EOF
hostname              $H
load_scaling          NONE
complex_values        slots=$SLOTS
user_lists            NONE
xuser_lists           NONE
projects              NONE
xprojects             NONE
usage_scaling         NONE
report_variables      NONE
EOF
if ! qconf -se "$H" >/dev/null 2>&1; then
    q qconf -Ae "$TMP/eh"
elif ! qconf -se "$H" | grep -Eq "^complex_values[[:space:]]+slots=$SLOTS\$"; then
    q qconf -mattr exechost complex_values "slots=$SLOTS" "$H"
fi

# parallel environments: 'smp' (all slots of a job on one host) and 'mpi' (fill up hosts)
for PE in $PES; do
    rule='$pe_slots'; [ "$PE" = mpi ] && rule='$fill_up'
    cat > "$TMP/pe" <<EOF
pe_name            $PE
slots              999
user_lists         NONE
xuser_lists        NONE
start_proc_args    NONE
stop_proc_args     NONE
allocation_rule    $rule
control_slaves     TRUE
job_is_first_task  TRUE
urgency_slots      min
accounting_summary TRUE
qsort_args         NONE
EOF
    if ! qconf -sp "$PE" >/dev/null 2>&1; then q qconf -Ap "$TMP/pe"
    elif ! diff -q <(qconf -sp "$PE" | norm) <(norm < "$TMP/pe") >/dev/null; then q qconf -Mp "$TMP/pe"; fi
done

# queues: no load thresholds (a busy 2-core box would put them in alarm state)
for QUEUE in $QUEUES; do
    if qconf -sq "$QUEUE" >/dev/null 2>&1; then qconf -sq "$QUEUE" | flatten > "$TMP/q"
    else qconf -sq | flatten > "$TMP/q"; fi          # template
    set_kv "$TMP/q" qname "$QUEUE"
    set_kv "$TMP/q" hostlist "$H"
    set_kv "$TMP/q" slots "$SLOTS"
    set_kv "$TMP/q" pe_list "$PES"
    set_kv "$TMP/q" load_thresholds NONE
    set_kv "$TMP/q" shell /bin/sh
    # all.q is the default queue (jobs that request none may go anywhere, but ask for
    # 'long.q' explicitly with -q); long.q only differs by name and a lower seq_no
    if [ "$QUEUE" = long.q ]; then set_kv "$TMP/q" seq_no 10; else set_kv "$TMP/q" seq_no 0; fi
    if ! qconf -sq "$QUEUE" >/dev/null 2>&1; then q qconf -Aq "$TMP/q"
    elif ! diff -q <(qconf -sq "$QUEUE" | norm) <(norm < "$TMP/q") >/dev/null; then q qconf -Mq "$TMP/q"; fi
done
# scheduler: fill queues by seq_no, so a job that names no queue lands in all.q first
if ! qconf -ssconf | grep -Eq '^queue_sort_method[[:space:]]+seqno'; then
    qconf -ssconf | flatten > "$TMP/sched"
    set_kv "$TMP/sched" queue_sort_method seqno
    q qconf -Msconf "$TMP/sched"
fi

# ---------------------------------------------------------------- execd
execd_pid() { pidfile_pid sge_execd "$EXECD_SPOOL"/*/execd.pid; }   # glob re-evaluated each call
if EPID=$(execd_pid); then
    log "sge_execd already running (pid $EPID)"
else
    rm -f "$EXECD_SPOOL"/*/execd.pid "$DIR/execd.pid"
    log "starting sge_execd"
    setsid -w "$SGE_BIN/sge_execd" 9>&- </dev/null >/dev/null 2>&1 || die "sge_execd failed to start"
    # its spool dir is named after the host as execd sees it (here: "localhost")
    wait_for "execd pid file" execd_pid
    EPID=$(execd_pid)
    mark execd "$EPID"
    started=1
fi
for QUEUE in $QUEUES; do qmod -e "$QUEUE@$H" >/dev/null 2>&1 || true; done   # clear a left-over disabled state

# ---------------------------------------------------------------- wait until usable
EXECD_PORT=$(getent services sge-execd | awk '{split($2, a, "/"); print a[1]}')
queue_ready() {  # execd answers, and each queue instance has a load value and no state flags
    local QUEUE
    qping -info "$H" "${EXECD_PORT:-6445}" execd 1 >/dev/null 2>&1 || return 1
    for QUEUE in $QUEUES; do
        qstat -f -q "$QUEUE@$H" 2>/dev/null |
            awk -v q="$QUEUE@$H" '$1==q { ok = ($4 != "-NA-" && NF == 5) } END { exit !ok }' || return 1
    done
}
wait_for "queues $QUEUES on $H to become available (execd messages: $EXECD_SPOOL/*/messages)" queue_ready

if [ "$SMOKE" = 1 ] || { [ "$SMOKE" = auto ] && [ $started = 1 ]; }; then
    out=$(cd /tmp && timeout "$WAIT_S" qsub -sync y -b y -N ferry-smoke -o /dev/null -e /dev/null /bin/true 2>&1) \
        || die "smoke job failed: $out"
fi

cat > "$DIR/env.sh" <<EOF
# source me: . $DIR/env.sh   (written by tests/cluster/start-sge.sh)
export SGE_ROOT=$SGE_ROOT
export SGE_CELL=$SGE_CELL
export PATH=$SGE_BIN:\$PATH
export SGE_TEST_DIR=$DIR
export SGE_TEST_HOST=$H
export SGE_TEST_SLOTS=$SLOTS
export SGE_TEST_QUEUE=all.q
export SGE_TEST_QUEUE2=long.q
export SGE_TEST_PE=smp
export SGE_TEST_PE2=mpi
export SGE_TEST_DRMAA_LIB=$DRMAA_LIB
export SGE_TEST_DRMAA_INCLUDE=/usr/lib/gridengine-drmaa/include
# the path under the name other DRMAA clients (python-drmaa, ...) read it from
export DRMAA_LIBRARY_PATH=$DRMAA_LIB
# Debian's libdrmaa has SONAME libdrmaa.so.1.0 (there is no libdrmaa.so.1 anywhere) and is
# linked with jemalloc: dlopen() of it fails with "libjemalloc.so.2: cannot allocate memory in
# static TLS block" unless the process was started with GLIBC_TUNABLES set to this value (or
# LD_PRELOAD=libjemalloc.so.2, or the program links -ldrmaa). Not exported on purpose.
export SGE_TEST_GLIBC_TUNABLES=glibc.rtld.optional_static_tls=4096
# -ldrmaa: run-time search path for programs linked against it
export LD_LIBRARY_PATH=/usr/lib/gridengine-drmaa/lib\${LD_LIBRARY_PATH:+:\$LD_LIBRARY_PATH}
EOF
log "SGE up: qmaster pid $QPID, execd pid $EPID, host $H, queues all.q + long.q ($SLOTS slots in all), pes $PES"
log "environment: . $DIR/env.sh"
cat "$DIR/env.sh"
