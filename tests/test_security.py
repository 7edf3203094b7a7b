"""Security: the state directory is private and checked; the engine only
serves its own uid."""
import json
import os
import pwd
import re
import shutil
import signal
import stat
import subprocess
import sys

import pytest

from conftest import (BUILD_DIR, SANITIZER_FOUND, ClosedError, RawConn, frame,
                      kill_procs_mentioning, new_base, pid_alive, proc_cmdline, sanitizer_reports,
                      wait_dead)

OTHER_USER = "ferrytest"

NOT_ROOT_REASON = ("!!! NOT RUN: this test needs root (to create the Unix user "
                   f"'{OTHER_USER}' and run an engine as it with runuser); run the suite "
                   "as root to cover cross-uid refusal !!!")


def need_root():
    if os.geteuid() != 0:
        pytest.skip(NOT_ROOT_REASON)


# ------------------------------------------------------------ state dir


def test_state_dir_is_private(ferry):
    ferry.run("ping")
    st = os.stat(ferry.state_dir)
    assert stat.S_IMODE(st.st_mode) == 0o700, oct(st.st_mode)
    assert st.st_uid == os.geteuid()
    # nothing inside is group/world writable
    for name in os.listdir(ferry.state_dir):
        m = os.lstat(os.path.join(ferry.state_dir, name)).st_mode
        assert not (m & 0o022), f"{name} is group/world writable: {oct(m)}"


def test_job_dir_is_private(ferry):
    jid = ferry.submit("true")
    ferry.run("wait", "--timeout", "30", jid, timeout=40)
    for d in (os.path.join(ferry.state_dir, "jobs"),
              os.path.join(ferry.state_dir, "jobs", str(jid))):
        m = os.stat(d).st_mode
        assert not (m & 0o022), f"{d} is group/world writable: {oct(m)}"


def test_engine_refuses_wrong_state_dir_mode(ferry):
    ferry.run("daemon", "start")
    os.chmod(ferry.state_dir, 0o755)
    ferry.kill_engine(signal.SIGKILL)
    cp = ferry.run("daemon", "start", check=False, timeout=30)
    assert cp.returncode == 1, cp
    assert re.search(r"permission|mode|0?755|0?700|insecure|unsafe", cp.stderr, re.I), cp.stderr
    assert ferry.state_dir in cp.stderr or "state" in cp.stderr.lower(), cp.stderr
    assert not ferry.engine_alive(), "an engine started in a 0755 state dir"
    cp = ferry.run("ping", check=False, timeout=30)
    assert cp.returncode == 1, cp
    assert not ferry.engine_alive()
    # the engine must not have "fixed" the directory silently either
    assert stat.S_IMODE(os.stat(ferry.state_dir).st_mode) == 0o755
    os.chmod(ferry.state_dir, 0o700)
    ferry.run("ping", timeout=30)
    assert ferry.engine_alive()


def test_engine_refuses_group_writable_state_dir(ferry):
    ferry.run("daemon", "start")
    for mode in (0o770, 0o777):
        os.chmod(ferry.state_dir, mode)
        if ferry.engine_alive():
            ferry.kill_engine(signal.SIGKILL)
        cp = ferry.run("daemon", "start", check=False, timeout=30)
        assert cp.returncode == 1, (oct(mode), cp)
        assert not ferry.engine_alive()
    os.chmod(ferry.state_dir, 0o700)
    ferry.run("daemon", "start", timeout=30)


# --------------------------------------------------------------- cross uid


def ensure_user():
    try:
        return pwd.getpwnam(OTHER_USER)
    except KeyError:
        pass
    cp = subprocess.run(["useradd", "-m", "-s", "/bin/sh", OTHER_USER],
                        capture_output=True, text=True, timeout=60)
    try:  # another test process may have created it meanwhile
        return pwd.getpwnam(OTHER_USER)
    except KeyError:
        raise AssertionError(f"useradd {OTHER_USER} failed: {cp.stderr}")


class OtherUser:
    """An engine and clients run as OTHER_USER in their own /tmp dir."""

    def __init__(self):
        self.pw = ensure_user()
        self.base = new_base("fyu-")
        os.chmod(self.base, 0o755)
        self.bin = os.path.join(self.base, "bin")
        os.makedirs(self.bin)
        for name in os.listdir(BUILD_DIR):
            if name in ("ferry", "ferryd") or name.startswith("libferry.so"):
                src = os.path.join(BUILD_DIR, name)
                if os.path.isfile(src):
                    shutil.copy(src, os.path.join(self.bin, name))  # follows symlinks
        for name in os.listdir(self.bin):
            os.chmod(os.path.join(self.bin, name), 0o755)
        for sub in ("state", "config", "home", "work"):
            os.makedirs(os.path.join(self.base, sub))
        for root, dirs, files in os.walk(self.base):
            for n in dirs + files:
                os.chown(os.path.join(root, n), self.pw.pw_uid, self.pw.pw_gid)
        os.chown(self.base, self.pw.pw_uid, self.pw.pw_gid)
        self.env = {
            "PATH": f"{self.bin}:/usr/bin:/bin",
            "HOME": os.path.join(self.base, "home"),
            "XDG_STATE_HOME": os.path.join(self.base, "state"),
            "XDG_CONFIG_HOME": os.path.join(self.base, "config"),
            "FERRYD": os.path.join(self.bin, "ferryd"),
            "LD_LIBRARY_PATH": self.bin,
            "LC_ALL": "C.UTF-8",
        }
        self.state_dir = os.path.join(self.base, "state", "ferry", "local")
        self.sock_path = os.path.join(self.state_dir, "ferryd.sock")

    def run(self, *cmd, timeout=30, env=None):
        e = dict(self.env)
        e.update(env or {})
        full = ["runuser", "-u", OTHER_USER, "--", "env", "-i",
                *[f"{k}={v}" for k, v in e.items()], *cmd]
        return subprocess.run(full, capture_output=True, text=True, errors="replace",
                              timeout=timeout, cwd=self.base)

    def ferry(self, *args, timeout=30):
        return self.run(os.path.join(self.bin, "ferry"), *args, timeout=timeout)

    def engine_pid(self):
        try:
            with open(os.path.join(self.state_dir, "ferryd.pid")) as f:
                return int(f.read().split()[0])
        except (OSError, ValueError, IndexError):
            return None

    def cleanup(self):
        pid = self.engine_pid()  # before the stop removes the file (Ferry.cleanup)
        try:
            self.ferry("daemon", "stop", timeout=15)
        except subprocess.TimeoutExpired:
            pass
        if pid and pid_alive(pid) and b"ferryd" in proc_cmdline(pid) and \
                (self.engine_pid() == pid or not wait_dead(pid, 10)):
            os.kill(pid, signal.SIGKILL)
            wait_dead(pid, 5)
        kill_procs_mentioning(self.base)
        # its environment (env -i) has no sanitizer settings: reports go to its logs
        SANITIZER_FOUND.extend(sanitizer_reports(self.env["XDG_STATE_HOME"]))
        shutil.rmtree(self.base, ignore_errors=True)


@pytest.fixture
def other():
    need_root()
    o = OtherUser()
    try:
        yield o
    finally:
        o.cleanup()


# A raw client run as OTHER_USER: prints what happened as JSON.
CLIENT = r'''
import json, socket, struct, sys
path = sys.argv[1]
def out(**kw):
    print(json.dumps(kw)); sys.exit(0)
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.settimeout(10)
try:
    s.connect(path)
except OSError as e:
    out(result="connect_error", errno=e.errno, error=str(e))
body = json.dumps({"op": "hello", "version": 3, "client": "intruder"}).encode()
try:
    s.sendall(struct.pack(">4sHHII", b"FRY1", 1, 1, len(body), len(body)) + body)
except OSError as e:
    out(result="closed", error=str(e))
def rd(n):
    b = b""
    while len(b) < n:
        try:
            c = s.recv(n - len(b))
        except ConnectionResetError:
            c = b""
        except socket.timeout:
            out(result="timeout")
        if not c:
            out(result="closed")
        b += c
    return b
m, v, t, bl, jl = struct.unpack(">4sHHII", rd(16))
reply = json.loads(rd(bl)[:jl])
if reply.get("ok"):
    # try to use the engine too
    body = json.dumps({"op": "ping"}).encode()
    try:
        s.sendall(struct.pack(">4sHHII", b"FRY1", 1, 1, len(body), len(body)) + body)
        m, v, t, bl, jl = struct.unpack(">4sHHII", rd(16))
        reply["ping"] = json.loads(rd(bl)[:jl])
    except OSError:
        pass
out(result="reply", reply=reply)
'''


def assert_refused_reply(conn):
    """conn got a hello; the engine must reply EPERM (uid) or close."""
    try:
        r, _ = conn.recv()
    except ClosedError:
        return "closed"
    assert r.get("ok") is False, f"engine of another uid accepted us: {r!r}"
    assert r.get("error") == "EPERM", r
    assert re.search(r"uid|user", r.get("message", ""), re.I), r
    return "refused"


def test_root_cannot_use_other_users_engine(other):
    cp = other.ferry("daemon", "start")
    assert cp.returncode == 0, f"engine as {OTHER_USER} did not start: {cp.stderr}"
    pid = other.engine_pid()
    assert pid and pid_alive(pid)
    assert os.stat(f"/proc/{pid}").st_uid == other.pw.pw_uid, "engine does not run as ferrytest"
    st = os.stat(other.state_dir)
    assert st.st_uid == other.pw.pw_uid and stat.S_IMODE(st.st_mode) == 0o700
    conn = RawConn(other.sock_path)
    try:
        try:
            conn.send(frame({"op": "hello", "version": 3, "client": "root"}))
        except (BrokenPipeError, ConnectionResetError):
            pass  # refused at accept; a reply may still be waiting
        how = assert_refused_reply(conn)
        if how == "refused":
            # whatever comes next must not be served
            try:
                conn.send(frame({"op": "jobs"}))
                r, _ = conn.recv()
                assert r.get("ok") is False, f"served a request after refusing: {r!r}"
            except (ClosedError, BrokenPipeError, ConnectionResetError):
                pass
    finally:
        conn.close()
    # the other user's engine is unharmed and still serves its owner
    assert pid_alive(pid)
    cp = other.ferry("ping")
    assert cp.returncode == 0, cp.stderr
    assert other.engine_pid() == pid


def test_root_cli_refuses_other_users_state_dir(other):
    cp = other.ferry("daemon", "start")
    assert cp.returncode == 0, cp.stderr
    pid = other.engine_pid()
    env = dict(os.environ)
    env.update({"XDG_STATE_HOME": other.env["XDG_STATE_HOME"],
                "XDG_CONFIG_HOME": other.env["XDG_CONFIG_HOME"],
                "FERRYD": os.path.join(BUILD_DIR, "ferryd"),
                "LD_LIBRARY_PATH": BUILD_DIR,
                "HOME": other.env["HOME"]})
    cp = subprocess.run([os.path.join(BUILD_DIR, "ferry"), "ping"], capture_output=True,
                        text=True, env=env, timeout=30, cwd="/")
    assert cp.returncode != 0, "root used another user's engine"
    assert re.search(r"uid|user|owner|permission", cp.stderr, re.I), cp.stderr
    assert other.engine_pid() == pid and pid_alive(pid)
    assert other.ferry("ping").returncode == 0


def run_client_as_other(other, sock_path):
    script = os.path.join(other.base, "client.py")
    with open(script, "w") as f:
        f.write(CLIENT)
    os.chmod(script, 0o644)
    cp = other.run("/usr/bin/python3", script, sock_path, timeout=30)
    assert cp.returncode == 0, f"client script failed: {cp.stderr}"
    return json.loads(cp.stdout.strip().splitlines()[-1])


def test_other_user_cannot_reach_roots_engine(ferry, other):
    ferry.run("daemon", "start")
    pid = ferry.engine_pid()
    # 1. as set up: the private state dir blocks the socket path
    res = run_client_as_other(other, ferry.sock_path)
    assert res["result"] in ("connect_error", "closed"), res
    # 2. even with the path opened up, the engine itself refuses the uid
    opened = [ferry.base, ferry.state_home, os.path.dirname(ferry.state_dir), ferry.state_dir]
    saved = {p: stat.S_IMODE(os.stat(p).st_mode) for p in opened + [ferry.sock_path]}
    try:
        for p in opened:
            os.chmod(p, 0o711)
        os.chmod(ferry.sock_path, 0o777)
        res = run_client_as_other(other, ferry.sock_path)
    finally:
        for p, m in saved.items():
            os.chmod(p, m)
    if res["result"] == "reply":
        r = res["reply"]
        assert r.get("ok") is False, f"root's engine served uid {other.pw.pw_uid}: {res!r}"
        assert r.get("error") == "EPERM", r
        assert re.search(r"uid|user", r.get("message", ""), re.I), r
    else:
        assert res["result"] == "closed", res
    assert ferry.engine_pid() == pid and pid_alive(pid)
    ferry.run("ping")


def test_not_root_is_reported():
    """Makes a non-root run visible instead of silently passing."""
    if os.geteuid() != 0:
        print(NOT_ROOT_REASON, file=sys.stderr)
        pytest.skip(NOT_ROOT_REASON)


def test_other_user_cannot_read_roots_job_output(ferry, other):
    """`ferry logs` reads a job's file in the client on this host: another
    user gets neither the engine's answer (it refuses the uid) nor the file
    (the job directory is private), even with the way to the socket open."""
    secret = "root-secret-output"
    jid = ferry.submit("echo", secret)
    ferry.run("wait", "--timeout", "30", jid, timeout=40)
    path = ferry.info(jid)["stdout_path"]
    opened = [ferry.base, ferry.state_home, os.path.dirname(ferry.state_dir), ferry.state_dir]
    saved = {p: stat.S_IMODE(os.stat(p).st_mode) for p in opened + [ferry.sock_path]}
    try:
        for p in opened:
            os.chmod(p, 0o711)
        os.chmod(ferry.sock_path, 0o777)
        env = {"XDG_STATE_HOME": ferry.state_home, "XDG_CONFIG_HOME": ferry.config_home}
        cp = other.run(os.path.join(other.bin, "ferry"), "logs", str(jid), env=env)
        assert cp.returncode != 0, cp
        assert secret not in cp.stdout + cp.stderr, cp
        cp = other.run("cat", path)
        assert cp.returncode != 0 and secret not in cp.stdout, cp
    finally:
        for p, m in saved.items():
            os.chmod(p, m)
    assert ferry.run("logs", jid).stdout == secret + "\n"
