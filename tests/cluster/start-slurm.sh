#!/usr/bin/env bash
# start-slurm.sh - bring up a real single-node Slurm cluster on this host for ferry's
# Slurm-backend tests (adapted from the sandbox notes' tested reference script).
#
#   munged  ->  mariadbd (private instance)  ->  slurmdbd  ->  slurmctld  ->  slurmd
#
# * one node (this host) advertising $SLURM_TEST_CPUS CPUs (default 8, more than the real
#   cores, so that many jobs run at once; SlurmdParameters=config_overrides)
# * partitions 'debug' (default) and 'long'
# * accounting: slurmdbd + a private MariaDB on 127.0.0.1:$SLURM_TEST_DB_PORT, so plain
#   `sacct` works as on a real cluster; SLURM_TEST_ACCOUNTING=none skips both (faster start,
#   `sacct` then fails, finished jobs only in the jobcomp file / `scontrol show job`)
# * finished jobs are also appended to the jobcomp file (jobcomp/filetxt) in both modes
# * memory limits enforced without cgroups (jobacct_gather/linux + OverMemoryKill)
# * root (SlurmUser) may hold/release/suspend/resume any job
#
# Daemons are started with setsid (own session): they survive the end of the calling shell.
# Idempotent: safe to run again while everything (or part of it) is up; a daemon already
# running is reused. Daemons started here are recorded as "PID STARTTIME" in
# $SLURM_TEST_DIR/*.pid, and stop-slurm.sh stops only those, by pid.
# Needs root. Installs its Debian packages itself (apt-get update + retry if install fails).
# Writes /etc/slurm/slurm.conf and /etc/slurm/slurmdbd.conf (a foreign slurm.conf is kept
# as slurm.conf.orig). Slurm state: /var/spool/slurmctld (job ids go on counting across runs).
#
# Tunables (environment):
#   SLURM_TEST_DIR         state dir: env.sh, pid files, MariaDB data + log (/tmp/ferry-slurm)
#   SLURM_TEST_CPUS        CPUs the node advertises (8)
#   SLURM_TEST_ACCOUNTING  slurmdbd | none (slurmdbd)
#   SLURM_TEST_DB_PORT     port of the private MariaDB (3307)
#   SLURM_TEST_MIN_JOB_AGE seconds a finished job stays in slurmctld (squeue/scontrol) (300)
#   SLURM_TEST_WAIT        bound in seconds for each wait (90)
#   SLURM_TEST_INSTALL_DEV 1 = also install libslurm-dev (C API) (0)
#
# On success prints the variables for tests and writes them to $SLURM_TEST_DIR/env.sh.
set -euo pipefail

PROG=start-slurm
DIR=${SLURM_TEST_DIR:-/tmp/ferry-slurm}
NODE_CPUS=${SLURM_TEST_CPUS:-8}
ACCT=${SLURM_TEST_ACCOUNTING:-slurmdbd}
DB_PORT=${SLURM_TEST_DB_PORT:-3307}
MIN_JOB_AGE=${SLURM_TEST_MIN_JOB_AGE:-300}
WAIT_SECS=${SLURM_TEST_WAIT:-90}
CLUSTER=localcluster          # same as the notes' reference (slurmctld refuses a changed name
                              # for an existing StateSaveLocation)
DB_NAME=slurm_acct_db
DB_USER=slurm
DB_PASS=ferry-slurm-test

CONF_DIR=/etc/slurm
CONF=$CONF_DIR/slurm.conf
DBD_CONF=$CONF_DIR/slurmdbd.conf
STATE_DIR=/var/spool/slurmctld
SPOOL_DIR=/var/spool/slurmd
LOG_DIR=/var/log/slurm
PID_DIR=/run/slurm
JOBCOMP=$LOG_DIR/jobcomp.log
MUNGE_KEY=/etc/munge/munge.key
MUNGE_PID=/run/munge/munged.pid
DB_RUN=$DIR/db                # owned by mysql: socket, pid file, error log
DB_DIR=$DB_RUN/data
DB_SOCK=$DB_RUN/mysqld.sock

case "${1:-}" in -h|--help) sed -n '2,34p' "$0"; exit 0 ;; '') ;; *) echo "$PROG: unknown argument: $1" >&2; exit 2 ;; esac

log() { echo "$PROG: $*"; }
die() {
    echo "$PROG: ERROR: $*" >&2
    local f
    for f in "$LOG_DIR/slurmctld.log" "$LOG_DIR/slurmd.log" "$LOG_DIR/slurmdbd.log" "$DB_RUN/mysqld.err" /var/log/munge/munged.log; do
        [ -s "$f" ] && { echo "---- last lines of $f ----" >&2; tail -n 12 "$f" >&2; }
    done
    exit 1
}

[ "$(id -u)" -eq 0 ] || { echo "$PROG: ERROR: must be run as root" >&2; exit 1; }
case "$NODE_CPUS" in ''|*[!0-9]*|0) die "SLURM_TEST_CPUS must be a positive integer" ;; esac
case "$MIN_JOB_AGE$WAIT_SECS$DB_PORT" in *[!0-9]*) die "SLURM_TEST_MIN_JOB_AGE/SLURM_TEST_WAIT/SLURM_TEST_DB_PORT must be integers" ;; esac
case "$ACCT" in slurmdbd|none) ;; *) die "SLURM_TEST_ACCOUNTING must be 'slurmdbd' or 'none'" ;; esac

# ---------------------------------------------------------------- process helpers
# A pid is only trusted together with its start time (field 22 of /proc/PID/stat), so a
# recycled pid is never mistaken for our daemon.
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
pidfile_pid() { # pidfile_pid COMM FILE: print the pid in a daemon's own pid file if alive
    local p
    [ -r "$2" ] || return 1
    p=$(tr -dc '0-9' < "$2")
    alive "$p" "$1" && echo "$p"
}
mark() {        # mark NAME PID: record a daemon started by this script
    echo "$2 $(starttime "$2")" > "$DIR/$1.pid"
}
marked_pid() {  # marked_pid NAME COMM: print the pid recorded by mark if still that process
    local p s
    [ -r "$DIR/$1.pid" ] || return 1
    read -r p s < "$DIR/$1.pid" || return 1
    alive "$p" "$2" && [ "$(starttime "$p")" = "$s" ] && echo "$p"
}
stop_pid() {    # stop_pid NAME COMM PID: TERM, wait up to 20 s, then KILL
    local name=$1 comm=$2 pid=$3
    log "stopping $name (pid $pid)"
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 1 100); do alive "$pid" "$comm" || break; sleep 0.2; done
    if alive "$pid" "$comm"; then kill -KILL "$pid" 2>/dev/null || true; sleep 0.5; fi
    rm -f "$DIR/$name.pid"
}
wait_secs() {   # wait_secs SECS CMD...: retry CMD until it succeeds, for at most SECS seconds
    local secs=$1; shift
    local end=$((SECONDS + secs))
    until "$@" >/dev/null 2>&1; do
        [ $SECONDS -lt $end ] || return 1
        sleep 0.2
    done
}

mkdir -p "$DIR"
chmod 0755 "$DIR"
# one start/stop at a time (tests running in parallel may all call this script)
exec 9> "$DIR/.lock"
flock -w 300 9 || die "another start-slurm.sh/stop-slurm.sh holds $DIR/.lock"

# ---------------------------------------------------------------- packages
PKGS=(munge slurmctld slurmd slurm-client)
[ "$ACCT" = slurmdbd ] && PKGS+=(slurmdbd mariadb-server mariadb-client)
[ "${SLURM_TEST_INSTALL_DEV:-0}" = 1 ] && PKGS+=(libslurm-dev)
missing=()
for p in "${PKGS[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
    log "installing: ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    APT=(apt-get -q -o DPkg::Lock::Timeout=900)
    # package installs must not start daemons (this image's policy-rc.d says 101; add one if absent)
    own_policy=0
    if [ ! -e /usr/sbin/policy-rc.d ]; then
        printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d; chmod 755 /usr/sbin/policy-rc.d; own_policy=1
    fi
    rc=0
    if ! "${APT[@]}" install -y --no-install-recommends "${missing[@]}" > /tmp/start-slurm-apt.log 2>&1; then
        log "install failed; running apt-get update and retrying"
        { "${APT[@]}" update && "${APT[@]}" install -y --no-install-recommends "${missing[@]}"; } \
            >> /tmp/start-slurm-apt.log 2>&1 || rc=$?
    fi
    [ $own_policy = 1 ] && rm -f /usr/sbin/policy-rc.d
    [ $rc = 0 ] || die "apt-get install ${missing[*]} failed (see /tmp/start-slurm-apt.log)"
fi
for b in munged munge unmunge slurmctld slurmd sinfo sbatch scontrol squeue runuser; do
    command -v "$b" >/dev/null || die "required program '$b' not found after install"
done
if [ "$ACCT" = slurmdbd ]; then
    for b in slurmdbd mariadbd mariadb-install-db mariadb sacct sacctmgr; do
        command -v "$b" >/dev/null || [ -x "/usr/sbin/$b" ] || die "required program '$b' not found after install"
    done
fi


# ---------------------------------------------------------------- munge
getent passwd munge >/dev/null || die "user 'munge' does not exist (munge package broken?)"
mkdir -p /etc/munge /var/lib/munge /var/log/munge /run/munge
if [ ! -s "$MUNGE_KEY" ]; then
    log "creating munge key"
    if command -v mungekey >/dev/null; then mungekey --create --keyfile="$MUNGE_KEY" --force
    else dd if=/dev/urandom of="$MUNGE_KEY" bs=1 count=1024 status=none; fi
fi
chown munge:munge /etc/munge /var/lib/munge /var/log/munge /run/munge "$MUNGE_KEY"
chmod 0700 /etc/munge /var/log/munge
chmod 0711 /var/lib/munge
chmod 0755 /run/munge
chmod 0400 "$MUNGE_KEY"

munge_ok() { munge -n </dev/null 2>/dev/null | unmunge >/dev/null 2>&1; }
if munge_ok; then
    log "munged already running"
else
    log "starting munged"
    rm -f "$MUNGE_PID"
    setsid -w runuser -u munge -- /usr/sbin/munged 9>&- </dev/null >/dev/null 2>&1 || die "munged failed to start"
    wait_secs 15 munge_ok || die "munged started but 'munge -n | unmunge' fails"
    pid=$(pidfile_pid munged "$MUNGE_PID") || die "munged pid file $MUNGE_PID missing"
    mark munged "$pid"
fi

NODE=$(hostname -s)
[ -n "$NODE" ] || die "empty hostname"
getent hosts "$NODE" >/dev/null || die "host name $NODE does not resolve (add it to /etc/hosts)"
mkdir -p "$CONF_DIR" "$STATE_DIR" "$SPOOL_DIR" "$LOG_DIR" "$PID_DIR"
chmod 0755 "$STATE_DIR" "$SPOOL_DIR" "$LOG_DIR" "$PID_DIR"
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT

# ---------------------------------------------------------------- MariaDB + slurmdbd
dbd_conf_changed=0
if [ "$ACCT" = slurmdbd ]; then
    db_ok() { mariadb --no-defaults -S "$DB_SOCK" -u root -e 'select 1' >/dev/null 2>&1; }
    mkdir -p "$DB_RUN"; chown mysql:mysql "$DB_RUN"
    if [ ! -d "$DB_DIR/mysql" ]; then
        log "initialising MariaDB data dir $DB_DIR"
        rm -rf "$DB_DIR"; mkdir -p "$DB_DIR"; chown mysql:mysql "$DB_DIR"
        mariadb-install-db --no-defaults --datadir="$DB_DIR" --user=mysql --skip-test-db \
            --auth-root-authentication-method=socket > "$DIR/mysql-install.log" 2>&1 \
            || die "mariadb-install-db failed (see $DIR/mysql-install.log)"
    fi
    if pid=$(marked_pid mariadbd mariadbd); then
        log "mariadbd already running (pid $pid)"
    elif db_ok; then
        log "a MariaDB already answers on $DB_SOCK (not started by this script)"
    else
        log "starting mariadbd (127.0.0.1:$DB_PORT, socket $DB_SOCK)"
        rm -f "$DB_RUN/mysqld.pid"
        setsid /usr/sbin/mariadbd --no-defaults --user=mysql --datadir="$DB_DIR" \
            --socket="$DB_SOCK" --pid-file="$DB_RUN/mysqld.pid" --port="$DB_PORT" --bind-address=127.0.0.1 \
            --log-error="$DB_RUN/mysqld.err" --innodb-buffer-pool-size=64M --innodb-lock-wait-timeout=900 --skip-name-resolve \
            9>&- </dev/null >/dev/null 2>&1 &
        dbpid=$!
        db_ok_or_dead() { db_ok || ! alive "$dbpid" mariadbd; }
        wait_secs 60 db_ok_or_dead; db_ok || die "mariadbd does not answer on $DB_SOCK (see $DB_RUN/mysqld.err)"
        pid=$(pidfile_pid mariadbd "$DB_RUN/mysqld.pid") || die "mariadbd pid file missing"
        mark mariadbd "$pid"
    fi
    mariadb --no-defaults -S "$DB_SOCK" -u root > /dev/null 2>&1 <<EOF || die "cannot create the slurm database user"
CREATE USER IF NOT EXISTS '$DB_USER'@'127.0.0.1' IDENTIFIED BY '$DB_PASS';
CREATE USER IF NOT EXISTS '$DB_USER'@'localhost' IDENTIFIED BY '$DB_PASS';
GRANT ALL ON $DB_NAME.* TO '$DB_USER'@'127.0.0.1';
GRANT ALL ON $DB_NAME.* TO '$DB_USER'@'localhost';
EOF

    cat > "$TMP/slurmdbd.conf" <<EOF
# generated by ferry tests/cluster/start-slurm.sh
AuthType=auth/munge
DbdHost=$NODE
DbdAddr=127.0.0.1
SlurmUser=root
DebugLevel=info
LogFile=$LOG_DIR/slurmdbd.log
PidFile=$PID_DIR/slurmdbd.pid
StorageType=accounting_storage/mysql
StorageHost=127.0.0.1
StoragePort=$DB_PORT
StorageUser=$DB_USER
StoragePass=$DB_PASS
StorageLoc=$DB_NAME
EOF
    if ! cmp -s "$TMP/slurmdbd.conf" "$DBD_CONF"; then
        install -m 0600 "$TMP/slurmdbd.conf" "$DBD_CONF"
        dbd_conf_changed=1
        log "wrote $DBD_CONF"
    fi
    chmod 0600 "$DBD_CONF"
    if pid=$(pidfile_pid slurmdbd "$PID_DIR/slurmdbd.pid"); then
        if [ $dbd_conf_changed = 1 ]; then
            stop_pid slurmdbd slurmdbd "$pid"
        else
            log "slurmdbd already running (pid $pid)"
        fi
    fi
    if ! pidfile_pid slurmdbd "$PID_DIR/slurmdbd.pid" >/dev/null; then
        log "starting slurmdbd"
        rm -f "$PID_DIR/slurmdbd.pid"
        setsid -w slurmdbd 9>&- </dev/null >/dev/null 2>&1 || die "slurmdbd failed to start"
        wait_secs 30 pidfile_pid slurmdbd "$PID_DIR/slurmdbd.pid" || die "slurmdbd did not stay up"
        mark slurmdbd "$(pidfile_pid slurmdbd "$PID_DIR/slurmdbd.pid")"
    fi
    # slurmdbd listens once it has created/checked its tables
    wait_secs 60 bash -c "exec 3<>/dev/tcp/127.0.0.1/6819" || die "slurmdbd does not listen on 127.0.0.1:6819"
fi

# ---------------------------------------------------------------- slurm.conf
if [ "$ACCT" = slurmdbd ]; then
    ACCT_LINES="AccountingStorageType=accounting_storage/slurmdbd
AccountingStorageHost=$NODE
AccountingStoragePort=6819"
else
    ACCT_LINES="AccountingStorageType=accounting_storage/none"
fi
cat > "$TMP/slurm.conf" <<EOF
# generated by ferry tests/cluster/start-slurm.sh - single-node local Slurm cluster
ClusterName=$CLUSTER
SlurmctldHost=$NODE(127.0.0.1)
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CryptoType=crypto/munge
MpiDefault=none
# no cgroups: processes tracked through /proc, memory limits enforced by polling
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/linux
JobAcctGatherFrequency=task=2
JobAcctGatherParams=OverMemoryKill
$ACCT_LINES
# every finished job is appended here (one key=value line per job), in both modes
JobCompType=jobcomp/filetxt
JobCompLoc=$JOBCOMP
SchedulerType=sched/backfill
SchedulerParameters=batch_sched_delay=0
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
DefMemPerCPU=256
StateSaveLocation=$STATE_DIR
SlurmdSpoolDir=$SPOOL_DIR
SlurmctldPidFile=$PID_DIR/slurmctld.pid
SlurmdPidFile=$PID_DIR/slurmd.pid
SlurmctldLogFile=$LOG_DIR/slurmctld.log
SlurmdLogFile=$LOG_DIR/slurmd.log
SlurmctldDebug=info
SlurmdDebug=info
SlurmdParameters=config_overrides
ReturnToService=2
MinJobAge=$MIN_JOB_AGE
MaxJobCount=50000
MaxArraySize=10001
KillWait=5
InactiveLimit=0
NodeName=$NODE NodeAddr=127.0.0.1 CPUs=$NODE_CPUS Boards=1 SocketsPerBoard=1 CoresPerSocket=$NODE_CPUS ThreadsPerCore=1 RealMemory=16000 State=UNKNOWN
PartitionName=debug Nodes=ALL Default=YES MaxTime=INFINITE State=UP
PartitionName=long Nodes=ALL Default=NO MaxTime=INFINITE State=UP
EOF

conf_changed=0
if ! cmp -s "$TMP/slurm.conf" "$CONF"; then
    if [ -f "$CONF" ] && ! head -n 1 "$CONF" | grep -q 'generated by' && [ ! -f "$CONF.orig" ]; then
        cp -p "$CONF" "$CONF.orig"
        log "saved previous $CONF as $CONF.orig"
    fi
    install -m 0644 "$TMP/slurm.conf" "$CONF"
    conf_changed=1
    log "wrote $CONF (node $NODE, $NODE_CPUS CPUs, partitions debug+long, accounting: $ACCT)"
fi

# ---------------------------------------------------------------- slurmctld + slurmd
if [ $conf_changed = 1 ]; then
    # node/partition definitions do not change with 'scontrol reconfigure': restart
    if pid=$(pidfile_pid slurmd "$PID_DIR/slurmd.pid"); then stop_pid slurmd slurmd "$pid"; fi
    if pid=$(pidfile_pid slurmctld "$PID_DIR/slurmctld.pid"); then stop_pid slurmctld slurmctld "$pid"; fi
fi

ctld_up() { scontrol ping 2>/dev/null | grep -q 'is UP'; }
if pid=$(pidfile_pid slurmctld "$PID_DIR/slurmctld.pid"); then
    log "slurmctld already running (pid $pid)"
else
    log "starting slurmctld"
    rm -f "$PID_DIR/slurmctld.pid"
    setsid -w slurmctld 9>&- </dev/null >/dev/null 2>&1 || die "slurmctld failed to start"
    wait_secs 30 pidfile_pid slurmctld "$PID_DIR/slurmctld.pid" || die "slurmctld did not stay up"
    mark slurmctld "$(pidfile_pid slurmctld "$PID_DIR/slurmctld.pid")"
fi
wait_secs 30 ctld_up || die "slurmctld does not answer 'scontrol ping'"

if [ "$ACCT" = slurmdbd ]; then
    # slurmctld registers the cluster itself; make sure root has an association so that
    # its jobs carry one (sacct shows jobs either way; AccountingStorageEnforce is unset)
    sacctmgr -n -P list cluster format=cluster 2>/dev/null | grep -qx "$CLUSTER" \
        || sacctmgr -i add cluster "$CLUSTER" >/dev/null 2>&1 || true
fi

if pid=$(pidfile_pid slurmd "$PID_DIR/slurmd.pid"); then
    log "slurmd already running (pid $pid)"
else
    log "starting slurmd"
    rm -f "$PID_DIR/slurmd.pid"
    setsid -w slurmd 9>&- </dev/null >/dev/null 2>&1 || die "slurmd failed to start"
    wait_secs 30 pidfile_pid slurmd "$PID_DIR/slurmd.pid" || die "slurmd did not stay up"
    mark slurmd "$(pidfile_pid slurmd "$PID_DIR/slurmd.pid")"
fi

# ---------------------------------------------------------------- wait for the node
end=$((SECONDS + WAIT_SECS))
resumed=0
while :; do
    state=$(sinfo -h -N -n "$NODE" -o '%T' 2>/dev/null | head -n 1 || true)
    case "$state" in
        idle|mixed|allocated|completing) break ;;
        *drain*|down|down\*|fail*)
            if [ $resumed -lt 3 ]; then
                scontrol update NodeName="$NODE" State=RESUME >/dev/null 2>&1 || true
                resumed=$((resumed + 1))
            fi ;;
    esac
    [ $SECONDS -lt $end ] || die "node $NODE not usable after ${WAIT_SECS}s (sinfo state: '${state:-none}', reason: $(sinfo -h -N -n "$NODE" -o '%E' 2>/dev/null))"
    sleep 0.3
done
if [ "$ACCT" = slurmdbd ]; then
    wait_secs 30 sacct -n -X -S now-1minutes || die "'sacct' does not work"
fi

# ---------------------------------------------------------------- env file
cat > "$DIR/env.sh" <<EOF
# source me: . $DIR/env.sh   (written by tests/cluster/start-slurm.sh)
export SLURM_TEST_DIR=$DIR
export SLURM_CONF=$CONF
export SLURM_TEST_CLUSTER=$CLUSTER
export SLURM_TEST_NODE=$NODE
export SLURM_TEST_CPUS=$NODE_CPUS
export SLURM_TEST_PARTITION=debug
export SLURM_TEST_PARTITION2=long
export SLURM_TEST_ACCOUNTING=$ACCT
export SLURM_TEST_JOBCOMP=$JOBCOMP
export SLURM_TEST_MIN_JOB_AGE=$MIN_JOB_AGE
export SLURM_TEST_VERSION=$(sinfo -V | awk '{print $2}')
EOF
log "ready: node $NODE is $state ($NODE_CPUS CPUs; partitions debug (default), long; accounting: $ACCT)"
log "environment: . $DIR/env.sh"
cat "$DIR/env.sh"
