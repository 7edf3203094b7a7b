#!/bin/bash
# start-sshd.sh - start a throw-away OpenSSH server to serve as the test "remote host" of
# ferry's remote tests (adapted from the sandbox notes' reference script).
#
# What ferry's tests need beyond the reference: root logs in with the test key (the suite
# runs the local job API tests again through ssh, as the same user on the same host, so that
# the files they check are the same), the tests' XDG_* and FERRY* variables pass through
# (AcceptEnv, sent with ssh -o SetEnv), and a second test user 'ferrybanner' whose login
# scripts print a banner (the "remote shell is not clean" test). Keys are authorised in
# files under the state dir, not in anyone's ~/.ssh, so StrictModes is off.
#
# Idempotent: safe to run again; an sshd already started by this script is reused.
# Never touches /etc/ssh/sshd_config or the system sshd.  Needs root (useradd, sshd, ip netns).
#
#   start-sshd.sh            loopback sshd on 127.0.0.1:$SSHD_TEST_PORT (default 2232)
#   start-sshd.sh --netns    also: network namespace $SSHD_TEST_NS (default 'ferryremote') joined to
#                            the host by a veth pair, 10.201.0.1/24 (host) <-> 10.201.0.2/24 (ns),
#                            with a second sshd inside it on 10.201.0.2:$SSHD_TEST_NS_PORT (22).
#
# Everything it makes lives in $SSHD_TEST_DIR (default /tmp/ferry-sshd):
#   id_ed25519{,.pub}  client key pair       password / askpass.sh  password and SSH_ASKPASS helper
#   known_hosts        the host keys         ssh_config             'ssh -F ssh_config testhost|remote'
#   env.sh             variables for tests   *.pid, *.log           pid files and sshd logs
# stop-sshd.sh stops only what this script started (pid files) and removes the namespace.
set -euo pipefail

DIR=${SSHD_TEST_DIR:-/tmp/ferry-sshd}
PORT=${SSHD_TEST_PORT:-2232}
LISTEN=${SSHD_TEST_ADDR:-127.0.0.1}
TUSER=${SSHD_TEST_USER:-jobuser}
BUSER=${SSHD_TEST_BANNER_USER:-ferrybanner}
TPASS=${SSHD_TEST_PASSWORD:-jobuser-test-pw}
NS=${SSHD_TEST_NS:-ferryremote}
NS_PORT=${SSHD_TEST_NS_PORT:-22}
HOST_IP=${SSHD_TEST_NS_HOST_IP:-10.201.0.1}
NS_IP=${SSHD_TEST_NS_IP:-10.201.0.2}
PREFIX=${SSHD_TEST_NS_PREFIX:-24}
VETH_H=${NS:0:12}-h     # host end   (interface names: 15 chars at most)
VETH_R=${NS:0:12}-r     # namespace end
WAIT=${SSHD_TEST_WAIT:-20}   # seconds to wait for each sshd to accept connections
SSHD=/usr/sbin/sshd          # sshd must be started by absolute path (it re-execs itself)

WITH_NS=0
for a in "$@"; do
  case $a in
    --netns) WITH_NS=1 ;;
    -h|--help) sed -n '2,16p' "$0"; exit 0 ;;
    *) echo "unknown argument: $a" >&2; exit 2 ;;
  esac
done

log() { echo "[start-sshd] $*" >&2; }
die() { echo "[start-sshd] ERROR: $*" >&2; exit 1; }
[ "$(id -u)" = 0 ] || die "must run as root"

# ---- 1. packages (non-interactive; waits for an apt lock held by someone else) ----------
need=()
[ -x "$SSHD" ] || need+=(openssh-server)
command -v ssh >/dev/null && command -v ssh-keygen >/dev/null || need+=(openssh-client)
command -v ip >/dev/null && command -v ss >/dev/null || need+=(iproute2)
# the link-cut tests drop one direction of the namespace's traffic with iptables
for a in "$@"; do [ "$a" = --netns ] && { command -v iptables >/dev/null || need+=(iptables); }; done
if [ ${#need[@]} -gt 0 ]; then
  log "installing ${need[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt_install() { apt-get -o DPkg::Lock::Timeout=900 install -y --no-install-recommends "${need[@]}"; }
  # policy-rc.d / no systemd: the package's own sshd service is not started, which we want.
  apt_install >/dev/null || { apt-get -o DPkg::Lock::Timeout=900 update >/dev/null && apt_install >/dev/null; } \
    || die "apt-get install ${need[*]} failed"
fi

# ---- 2. state dir, privilege-separation dir ------------------------------------------------
mkdir -p "$DIR"; chmod 755 "$DIR"
# sshd refuses to start without it ("Missing privilege separation directory: /run/sshd");
# normally systemd's RuntimeDirectory creates it, and /run is a tmpfs on a real boot.
mkdir -p /run/sshd; chmod 755 /run/sshd

# ---- 3. test user with a password and a key ------------------------------------------------
if ! getent passwd "$TUSER" >/dev/null; then
  useradd -m -s /bin/bash "$TUSER"
  echo "$TUSER" > "$DIR/user.created"          # stop-sshd.sh --purge removes it again
fi
TUHOME=$(getent passwd "$TUSER" | cut -d: -f6)
TUGRP=$(id -gn "$TUSER")
# A real password hash also unlocks the account: with 'UsePAM no' sshd rejects even key logins
# for an account whose shadow password is '!' (useradd's default): "account is locked".
echo "$TUSER:$TPASS" | chpasswd
(umask 077; printf '%s\n' "$TPASS" > "$DIR/password")
cat > "$DIR/askpass.sh" <<EOF
#!/bin/sh
# SSH_ASKPASS helper: SSH_ASKPASS=$DIR/askpass.sh SSH_ASKPASS_REQUIRE=force ssh ...
exec cat "$DIR/password"
EOF
chmod 700 "$DIR/askpass.sh"

[ -f "$DIR/id_ed25519" ] || ssh-keygen -q -t ed25519 -N '' -C "sshd-test-client" -f "$DIR/id_ed25519"
# a user whose shell startup prints a banner even when not interactive
if ! getent passwd "$BUSER" >/dev/null; then
  useradd -m -s /bin/bash "$BUSER"
  echo "$BUSER" > "$DIR/banner-user.created"
fi
echo "$BUSER:$TPASS" | chpasswd
BUHOME=$(getent passwd "$BUSER" | cut -d: -f6)
printf 'echo "Welcome to the cluster front-end!"\n' > "$BUHOME/.bashrc"
chown "$BUSER:" "$BUHOME/.bashrc"
# authorised keys live here, one file per user (AuthorizedKeysFile below)
install -d -m 755 "$DIR/authorized_keys"
for u in root "$TUSER" "$BUSER"; do
  install -m 644 "$DIR/id_ed25519.pub" "$DIR/authorized_keys/$u"
done

# ---- 4. sshd config, host keys --------------------------------------------------------------
write_cfg() {   # name listen-addr port
  local n=$1 addr=$2 port=$3
  [ -f "$DIR/hostkey_${n}_ed25519" ] || ssh-keygen -q -t ed25519 -N '' -C "$n" -f "$DIR/hostkey_${n}_ed25519"
  [ -f "$DIR/hostkey_${n}_rsa" ]     || ssh-keygen -q -t rsa -b 3072 -N '' -C "$n" -f "$DIR/hostkey_${n}_rsa"
  cat > "$DIR/sshd_${n}.conf" <<EOF
# generated by start-sshd.sh; run as: $SSHD -f $DIR/sshd_${n}.conf -E $DIR/sshd_${n}.log
ListenAddress $addr
Port $port
HostKey $DIR/hostkey_${n}_ed25519
HostKey $DIR/hostkey_${n}_rsa
PidFile $DIR/sshd_${n}.pid
AllowUsers root $TUSER $BUSER
PermitRootLogin prohibit-password
PubkeyAuthentication yes
PasswordAuthentication yes
PermitEmptyPasswords no
KbdInteractiveAuthentication no
UsePAM no
AuthorizedKeysFile $DIR/authorized_keys/%u
StrictModes no
UseDNS no
PrintMotd no
PrintLastLog no
X11Forwarding no
AllowTcpForwarding yes
# many parallel test connections: the default 10:30:100 randomly drops unauthenticated ones past 10
MaxStartups 100
MaxSessions 64
LoginGraceTime 30
# server side notices a dead client too (matters for disconnection tests)
ClientAliveInterval ${SSHD_TEST_CLIENT_ALIVE_INTERVAL:-5}
ClientAliveCountMax ${SSHD_TEST_CLIENT_ALIVE_COUNT:-3}
AcceptEnv LANG LC_* XDG_STATE_HOME XDG_CONFIG_HOME FERRY* ASAN_OPTIONS UBSAN_OPTIONS
Subsystem sftp internal-sftp
LogLevel VERBOSE
# root's ~/.bashrc on these machines runs pyenv (0.6 s per session, which bash sources for
# ssh commands); a shell level of 2 makes bash skip it. The startup files of a remote
# account are tested with $BUSER instead, whose banner must be seen.
Match User root
  SetEnv SHLVL=1
EOF
  "$SSHD" -t -f "$DIR/sshd_${n}.conf" || die "sshd -t rejected $DIR/sshd_${n}.conf"
}

# pid of a live sshd this script started for config $1, or nothing
our_pid() {
  local pf=$DIR/sshd_$1.pid pid st
  [ -s "$pf" ] || return 0
  pid=$(cat "$pf")
  [ -r "/proc/$pid/cmdline" ] || return 0
  st=$(awk '{print $3}' "/proc/$pid/stat" 2>/dev/null) || return 0
  [ "$st" != Z ] || return 0
  local cmd; cmd=$(tr '\0' ' ' < "/proc/$pid/cmdline" 2>/dev/null) || return 0
  [[ $cmd == *"$DIR/sshd_$1.conf"* ]] && echo "$pid"
  return 0
}

# bounded wait until host:port speaks SSH
wait_banner() {
  local h=$1 p=$2 i
  for ((i = 0; i < WAIT * 4; i++)); do
    if timeout 2 bash -c 'exec 3<>"/dev/tcp/$0/$1" && IFS= read -r -t 2 l <&3 && [[ $l == SSH-* ]]' "$h" "$p" 2>/dev/null; then
      return 0
    fi
    sleep 0.25
  done
  return 1
}

port_busy() {  # is addr $1 port $2 (or the wildcard) already listened on?
  local l; l=$(ss -Hltn "sport = :$2" 2>/dev/null | awk '{print $4}')
  grep -qE "^(\[::\]|0\.0\.0\.0|\*|$1):$2\$" <<<"$l"
}

known_line() {  # known_hosts writes port 22 as a bare host, any other port as [host]:port
  local h=$1 t
  [ "$2" = 22 ] || h="[$1]:$2"
  for t in ed25519 rsa; do printf '%s %s\n' "$h" "$(cut -d' ' -f1-2 "$DIR/hostkey_$3_$t.pub")"; done
}

# ---- 5. loopback sshd ----------------------------------------------------------------------
write_cfg lo "$LISTEN" "$PORT"
pid=$(our_pid lo)
if [ -n "$pid" ]; then
  log "loopback sshd already running (pid $pid)"
else
  port_busy "$LISTEN" "$PORT" && die "$LISTEN:$PORT is already in use by another process"
  : > "$DIR/sshd_lo.log"
  "$SSHD" -f "$DIR/sshd_lo.conf" -E "$DIR/sshd_lo.log" || die "sshd failed to start, see $DIR/sshd_lo.log"
fi
wait_banner "$LISTEN" "$PORT" || die "sshd on $LISTEN:$PORT not answering after ${WAIT}s; log: $DIR/sshd_lo.log"
# known_hosts is rewritten whole, then renamed into place: the clients of
# tests already running (other workers, another suite) read it meanwhile,
# and a file cut to its loopback line failed their ssh to the namespace
# ("Host key verification failed")
known_line "$LISTEN" "$PORT" lo > "$DIR/known_hosts.$$"

# ---- 6. optional: namespace with its own sshd ----------------------------------------
if [ "$WITH_NS" = 1 ]; then
  if [ ! -e "/run/netns/$NS" ]; then
    ip netns add "$NS"
    echo "$NS" > "$DIR/netns.created"
  fi
  [ -f "$DIR/netns.created" ] || log "note: namespace $NS already existed; stop-sshd.sh will not remove it"
  if ! ip link show "$VETH_H" >/dev/null 2>&1; then
    ip link add "$VETH_H" type veth peer name "$VETH_R"
    ip link set "$VETH_R" netns "$NS"
  fi
  ip addr replace "$HOST_IP/$PREFIX" dev "$VETH_H"
  ip link set "$VETH_H" up
  ip netns exec "$NS" ip addr replace "$NS_IP/$PREFIX" dev "$VETH_R"
  ip netns exec "$NS" ip link set "$VETH_R" up
  ip netns exec "$NS" ip link set lo up
  # no default route inside the namespace: it can reach only the host end of the veth.
  write_cfg ns "$NS_IP" "$NS_PORT"
  pid=$(our_pid ns)
  if [ -n "$pid" ]; then
    log "namespace sshd already running (pid $pid)"
  else
    : > "$DIR/sshd_ns.log"
    # own UTS namespace too, so 'hostname' on the remote side says "$NS"
    ip netns exec "$NS" unshare --uts sh -c 'hostname "$0" && exec "$1" -f "$2" -E "$3"' \
      "$NS" "$SSHD" "$DIR/sshd_ns.conf" "$DIR/sshd_ns.log" || die "namespace sshd failed; see $DIR/sshd_ns.log"
  fi
  wait_banner "$NS_IP" "$NS_PORT" || die "sshd on $NS_IP:$NS_PORT not answering after ${WAIT}s; log: $DIR/sshd_ns.log"
  known_line "$NS_IP" "$NS_PORT" ns >> "$DIR/known_hosts.$$"
fi
mv -f "$DIR/known_hosts.$$" "$DIR/known_hosts"

# ---- 7. client config, env file, end-to-end check ----------------------------------------------
cat > "$DIR/ssh_config" <<EOF
Host *
  User $TUSER
  IdentityFile $DIR/id_ed25519
  IdentitiesOnly yes
  UserKnownHostsFile $DIR/known_hosts
  StrictHostKeyChecking yes
  BatchMode yes
  ConnectTimeout 5
  ServerAliveInterval 2
  ServerAliveCountMax 2
  LogLevel ERROR
Host testhost
  HostName $LISTEN
  Port $PORT
Host $NS
  HostName $NS_IP
  Port $NS_PORT
EOF
cat > "$DIR/env.sh" <<EOF
# source me: . $DIR/env.sh
export SSH_TEST_DIR=$DIR
export SSH_TEST_USER=$TUSER
export SSH_TEST_PASSWORD=$TPASS
export SSH_TEST_KEY=$DIR/id_ed25519
export SSH_TEST_KNOWN_HOSTS=$DIR/known_hosts
export SSH_TEST_CONFIG=$DIR/ssh_config
export SSH_TEST_ASKPASS=$DIR/askpass.sh
export SSH_TEST_HOST=$LISTEN
export SSH_TEST_PORT=$PORT
export SSH_TEST_BANNER_USER=$BUSER
EOF
if [ "$WITH_NS" = 1 ]; then cat >> "$DIR/env.sh" <<EOF
export SSH_TEST_NS=$NS
export SSH_TEST_NS_HOST=$NS_IP
export SSH_TEST_NS_PORT=$NS_PORT
export SSH_TEST_NS_VETH_HOST=$VETH_H
export SSH_TEST_NS_VETH_NS=$VETH_R
EOF
fi

ssh -F "$DIR/ssh_config" testhost true </dev/null || die "key login to testhost failed; log: $DIR/sshd_lo.log"
[ "$WITH_NS" = 0 ] || ssh -F "$DIR/ssh_config" "$NS" true </dev/null || die "key login to $NS failed; log: $DIR/sshd_ns.log"

cat <<EOF
sshd for tests is up (state in $DIR; variables: . $DIR/env.sh)
  key:       ssh -F $DIR/ssh_config testhost 'echo ok'
         or  ssh -p $PORT -i $DIR/id_ed25519 -o UserKnownHostsFile=$DIR/known_hosts $TUSER@$LISTEN 'echo ok'
  password:  SSH_ASKPASS=$DIR/askpass.sh SSH_ASKPASS_REQUIRE=force \\
             ssh -F $DIR/ssh_config -o BatchMode=no -o PubkeyAuthentication=no -o PreferredAuthentications=password testhost 'echo ok' </dev/null
             (user $TUSER, password in $DIR/password)
EOF
if [ "$WITH_NS" = 1 ]; then cat <<EOF
  namespace: ssh -F $DIR/ssh_config $NS 'hostname'      ($TUSER@$NS_IP:$NS_PORT, via $VETH_H <-> $VETH_R)
  cut link:  ip link set $VETH_H down    | restore: ip link set $VETH_H up
  drop:      ip netns exec $NS iptables -I INPUT -p tcp --dport $NS_PORT -j DROP   (needs package iptables)
EOF
fi
echo "  stop:      $(dirname "$(readlink -f "$0")")/stop-sshd.sh"
