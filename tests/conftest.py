"""Shared fixtures of ferry's integration tests.

Every test gets its own XDG_STATE_HOME / XDG_CONFIG_HOME / HOME under a
fresh /tmp directory (short, so that the engine's Unix socket path stays
well under the 108-byte limit), a ferry.conf with `slots = 2`, and its own
engine, which is stopped at teardown (`ferry daemon stop`, then SIGKILL by
the pid in ferryd.pid). Every process left behind by the test (jobs,
shepherds, engines) is found through /proc (its environment, command line
or working directory mention the test's unique directory) and killed.
A sanitizer report in the logs of a test's engines fails the test
(sanitizer_reports): the reports of an engine whose environment lost
ASAN_OPTIONS go there, not to its log_path.

The build directory comes from $FERRY_BUILD_DIR (default
the build/ directory beside tests/). Missing binaries make the tests fail loudly, never skip.
"""
import json as _json
import os
import pwd
import re
import shutil
import signal
import socket
import struct
import subprocess
import tempfile
import time

import pytest

BUILD_DIR = os.path.abspath(os.environ.get(
    "FERRY_BUILD_DIR", os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "build")))
FERRY_BIN = os.path.join(BUILD_DIR, "ferry")
FERRYD_BIN = os.path.join(BUILD_DIR, "ferryd")

DEFAULT_CONFIG = "[local]\nscheduler = local\nslots = 2\n"
SSHD_DIR = os.environ.get("SSHD_TEST_DIR", "/tmp/ferry-sshd")
SSHD_START = os.path.join(os.path.dirname(os.path.abspath(__file__)), "sshd", "start-sshd.sh")
ASKPASS_BIN = os.path.join(BUILD_DIR, "ferry-askpass")
CLUSTER_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "cluster")
SLURM_DIR = os.environ.get("SLURM_TEST_DIR", "/tmp/ferry-slurm")
SGE_DIR = os.environ.get("SGE_TEST_DIR", "/tmp/ferry-sge")

SRC_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")


def job_fields(path=os.path.join(SRC_DIR, "src", "common", "jobfields.h")):
    """Field names of the job object of docs/protocol.md, in order: the
    rows `X(name, ...)` of the one table the engine, the library and the
    CLI are built from. Read from it rather than copied, so that a field
    is added in one place; test_cli's test_job_fields_documented holds the
    table to the protocol's list."""
    with open(path) as f:
        text = f.read()
    m = re.search(r"^#define FERRY__JOB_FIELDS\(X\)((?:.*\\\n)*.*)$", text, re.M)
    names = re.findall(r"^\s*X\((\w+),", m.group(1), re.M) if m else []
    if not names or names[0] != "id" or len(set(names)) != len(names):
        raise RuntimeError(f"cannot read the job fields of {path}: {names}")
    return names


JOB_FIELDS = job_fields()

JOB_STATES = [
    "undetermined", "queued_active", "system_on_hold", "user_on_hold",
    "user_system_on_hold", "running", "system_suspended", "user_suspended",
    "user_system_suspended", "done", "failed",
]
ENDED = ("done", "failed")

# ---------------------------------------------------------------- helpers


# What takes a database of schema 8 back to schema 7: no job_specs.env,
# nor its index and trigger (every environment kept for ever);
# SCHEMA_7_TO_6 goes on from there.
SCHEMA_8_TO_7 = """
    DROP TRIGGER job_specs_env_gone;
    DROP INDEX job_specs_env;
    ALTER TABLE job_specs DROP COLUMN env;
    UPDATE meta SET value = '7' WHERE key = 'schema';
"""

# What takes a database of schema 7 back to schema 6: the jobs table as it
# was, ids from an AUTOINCREMENT sequence (set from meta's job_seq) and
# every key in a UNIQUE index; SCHEMA_6_TO_5 goes on from there.
SCHEMA_7_TO_6 = """
    CREATE TABLE jobs_6(id INTEGER PRIMARY KEY AUTOINCREMENT, skey TEXT UNIQUE, name TEXT,
      state INTEGER NOT NULL, exit_status INTEGER NOT NULL DEFAULT 0, exit_value INTEGER,
      signal INTEGER, cpu_user REAL, cpu_sys REAL, max_rss_kb INTEGER, wall REAL,
      submitted_at REAL NOT NULL, started_at REAL, ended_at REAL, message TEXT, native_id TEXT,
      kill_requested INTEGER NOT NULL DEFAULT 0, disposed INTEGER NOT NULL DEFAULT 0,
      dispose_after REAL, requeues INTEGER NOT NULL DEFAULT 0, disposal_hours REAL,
      workflow INTEGER, waiting INTEGER NOT NULL DEFAULT 0, deps TEXT);
    INSERT INTO jobs_6 SELECT * FROM jobs;
    DROP TABLE jobs;
    ALTER TABLE jobs_6 RENAME TO jobs;
    UPDATE sqlite_sequence SET seq = max(seq, (SELECT CAST(value AS INTEGER) FROM meta
                                               WHERE key = 'job_seq')) WHERE name = 'jobs';
    INSERT INTO sqlite_sequence(name, seq) SELECT 'jobs', CAST(value AS INTEGER) FROM meta
      WHERE key = 'job_seq' AND NOT EXISTS (SELECT 1 FROM sqlite_sequence WHERE name = 'jobs');
    DELETE FROM meta WHERE key = 'job_seq';
    CREATE TRIGGER jobs_spec_gone AFTER DELETE ON jobs
      BEGIN DELETE FROM job_specs WHERE id = old.id; END;
    CREATE TRIGGER jobs_deps_gone AFTER DELETE ON jobs
      BEGIN DELETE FROM job_deps WHERE succ = old.id; END;
    CREATE INDEX jobs_dispose ON jobs(dispose_after) WHERE dispose_after IS NOT NULL;
    CREATE INDEX jobs_state ON jobs(state) WHERE disposed = 0;
    CREATE INDEX jobs_live ON jobs(state, disposed, kill_requested)
      WHERE ended_at IS NULL AND waiting = 0;
    CREATE INDEX jobs_workflow ON jobs(workflow) WHERE workflow IS NOT NULL;
    UPDATE meta SET value = '6' WHERE key = 'schema';
"""

# What takes a database of schema 6 back to schema 5 (no workflows: the
# columns, tables and indexes of workflows gone, jobs_live over every job
# not ended); SCHEMA_5_TO_4 goes on from there.
SCHEMA_6_TO_5 = """
    DROP TRIGGER jobs_deps_gone;
    DROP TABLE job_deps;
    DROP TABLE workflows;
    DROP INDEX jobs_workflow;
    DROP INDEX jobs_live;
    ALTER TABLE jobs DROP COLUMN workflow;
    ALTER TABLE jobs DROP COLUMN waiting;
    ALTER TABLE jobs DROP COLUMN deps;
    CREATE INDEX jobs_live ON jobs(state, disposed, kill_requested) WHERE ended_at IS NULL;
    DROP INDEX jobs_dispose;
    CREATE INDEX jobs_dispose ON jobs(dispose_after);
    UPDATE meta SET value = '5' WHERE key = 'schema';
"""

# What takes a database of schema 5 back to schema 4 (the spec in the
# job's row, no disposal hours, the old index of the jobs not ended): the
# tests of older databases start from it, as migrations take 4 to 5.
SCHEMA_5_TO_4 = """
    ALTER TABLE jobs ADD COLUMN spec TEXT NOT NULL DEFAULT '{}';
    UPDATE jobs SET spec = (SELECT spec FROM job_specs s WHERE s.id = jobs.id);
    ALTER TABLE jobs DROP COLUMN disposal_hours;
    DROP TRIGGER jobs_spec_gone;
    DROP TABLE job_specs;
    DROP INDEX jobs_live;
    CREATE INDEX jobs_active ON jobs(ended_at) WHERE ended_at IS NULL;
    UPDATE meta SET value = '4' WHERE key = 'schema';
"""


def procs_containing(secret):
    """Pids whose command line or environment hold the bytes of secret."""
    hits = []
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        for what in ("cmdline", "environ"):
            try:
                with open(f"/proc/{name}/{what}", "rb") as fh:
                    if secret in fh.read():
                        hits.append((int(name), what))
            except OSError:
                pass
    return hits


def poll(fn, timeout=10.0, interval=0.05, what="condition"):
    """Calls fn() until it returns a truthy value; returns that value.
    Fails the test after timeout seconds."""
    deadline = time.monotonic() + timeout
    last = None
    while True:
        last = fn()
        if last:
            return last
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what} (last: {last!r})")
        time.sleep(interval)


def term_proof(ferry, tail, mark="trapped"):
    """argv of a job that ignores SIGTERM (it ends only at the kill's
    SIGKILL, 5 s later) and then runs `tail`. A job seen running may not
    have set its trap yet, and a SIGTERM then ends it at once: wait for
    the file it returns, made once the trap is set, before a kill."""
    path = ferry.path(mark)
    return ["sh", "-c", f"trap '' TERM; : > {path}; {tail}"], path


def pid_alive(pid):
    """True when pid exists and is not a zombie."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            data = f.read()
    except (FileNotFoundError, ProcessLookupError):
        return False
    except OSError:
        return False
    # state is the field after the ")" that closes comm
    state = data[data.rindex(b")") + 2:data.rindex(b")") + 3]
    return state not in (b"Z", b"X")


def proc_pgid(pid):
    with open(f"/proc/{pid}/stat", "rb") as f:
        data = f.read()
    rest = data[data.rindex(b")") + 2:].split()
    return int(rest[2])  # state ppid pgrp


def live_pids_in_pgroup(pgid):
    out = []
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        pid = int(name)
        try:
            if proc_pgid(pid) == pgid and pid_alive(pid):
                out.append(pid)
        except (OSError, ValueError):
            pass
    return out


def wait_dead(pid, timeout=10.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not pid_alive(pid):
            return True
        time.sleep(0.02)
    return not pid_alive(pid)


def proc_comm(pid):
    """The process name (the job runner shares the engine's command line)."""
    return proc_file(pid, "comm").decode(errors="replace").strip()


def proc_file(pid, name):
    """The bytes of /proc/PID/NAME; b"" when the process is gone."""
    try:
        with open(f"/proc/{pid}/{name}", "rb") as f:
            return f.read()
    except OSError:
        return b""


def runner_pid(ferry):
    """The job runner of this test's engine (its environment names the
    test's state directory), or None. A job the runner has forked but not
    yet exec'd (stuck opening its stdin, say) has the runner's name and
    environment too: the runner is the one whose parent is not a runner."""
    for name in os.listdir("/proc"):
        if not name.isdigit() or proc_comm(name) != "ferry-runner":
            continue
        if ferry.state_home.encode() not in proc_environ(name) or not pid_alive(int(name)):
            continue
        if proc_comm(proc_ppid(name)) != "ferry-runner":
            return int(name)
    return None


def proc_ppid(pid):
    """The parent of pid (0 once it is gone); the name in /proc/PID/stat
    is in parentheses and may hold spaces, so the fields after its last
    ')' are counted."""
    stat = proc_file(pid, "stat")
    fields = stat[stat.rfind(b")") + 2:].split()
    return int(fields[1]) if len(fields) > 1 else 0


def proc_cmdline(pid):
    return proc_file(pid, "cmdline")


def proc_environ(pid):
    return proc_file(pid, "environ")


def _procs_mentioning(marker):
    """Pids (other than ours) whose environment, command line or cwd
    mention marker (bytes)."""
    me = os.getpid()
    found = []
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        pid = int(name)
        if pid == me:
            continue
        hit = False
        for what in ("environ", "cmdline"):
            try:
                with open(f"/proc/{pid}/{what}", "rb") as f:
                    if marker in f.read():
                        hit = True
                        break
            except OSError:
                pass
        if not hit:
            try:
                if os.readlink(f"/proc/{pid}/cwd".encode()).startswith(marker):
                    hit = True
            except OSError:
                pass
        if hit and pid_alive(pid):
            found.append(pid)
    return found


def kill_procs_mentioning(marker):
    """SIGKILLs every live process mentioning marker; returns their pids."""
    if isinstance(marker, str):
        marker = marker.encode()
    killed = []
    for _ in range(5):
        pids = _procs_mentioning(marker)
        if not pids:
            break
        for pid in pids:
            try:
                os.kill(pid, signal.SIGKILL)
                killed.append(pid)
            except ProcessLookupError:
                pass
        for pid in pids:
            wait_dead(pid, 2.0)
    return killed


# ---------------------------------------------------------- wire protocol

MAGIC = b"FRY1"
HDR = struct.Struct(">4sHHII")
FRAME_MAX = (16 << 20) + (64 << 10)


def frame(obj=None, binary=b"", *, raw_json=None, magic=MAGIC, version=1, ftype=1,
          body_len=None, json_len=None):
    """Builds a frame. obj is serialised as JSON unless raw_json (bytes) is
    given. body_len / json_len override the header fields."""
    js = raw_json if raw_json is not None else _json.dumps(obj).encode()
    body = js + binary
    return HDR.pack(magic, version, ftype,
                    len(body) if body_len is None else body_len,
                    len(js) if json_len is None else json_len) + body


class ClosedError(Exception):
    pass


class RawConn:
    """A raw protocol connection to an engine socket."""

    def __init__(self, path, timeout=10.0):
        self.path = path
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(timeout)
        self.sock.connect(path)

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass

    def __enter__(self):
        return self

    def __exit__(self, *a):
        self.close()

    def send(self, data):
        self.sock.sendall(data)

    def _recv_exact(self, n):
        buf = bytearray()
        while len(buf) < n:
            try:
                chunk = self.sock.recv(min(n - len(buf), 1 << 20))
            except ConnectionResetError:
                chunk = b""
            if not chunk:
                if not buf:
                    raise ClosedError("connection closed by the engine")
                raise ClosedError(f"connection closed inside a frame ({len(buf)}/{n} bytes)")
            buf += chunk
        return bytes(buf)

    def recv(self):
        """Returns (json_object, binary) of the next frame; raises
        ClosedError at EOF. Checks the reply header."""
        hdr = self._recv_exact(HDR.size)
        magic, version, ftype, body_len, json_len = HDR.unpack(hdr)
        assert magic == MAGIC, f"reply has bad magic {magic!r}"
        assert version == 1, f"reply has version {version}"
        assert ftype == 2, f"reply has frame type {ftype}, expected 2"
        assert json_len <= body_len <= FRAME_MAX
        body = self._recv_exact(body_len) if body_len else b""
        obj = _json.loads(body[:json_len].decode("utf-8"))
        assert isinstance(obj, dict), f"reply is not an object: {obj!r}"
        return obj, body[json_len:]

    def request(self, obj, binary=b""):
        self.send(frame(obj, binary))
        return self.recv()[0]

    def hello(self):
        r = self.request({"op": "hello", "version": 3, "client": "ferry-tests"})
        assert r.get("ok") is True, f"hello refused: {r!r}"
        return r

    def is_closed(self, timeout=5.0):
        """True when the peer closed the connection (EOF) within timeout."""
        self.sock.settimeout(timeout)
        try:
            data = self.sock.recv(1)
        except ConnectionResetError:
            return True
        except socket.timeout:
            return False
        return data == b""


# ------------------------------------------------------------ the fixture


def remote_section(name, base, sshd, login="root", extra_ssh="", **keys):
    """A [name] section that reaches this host's test sshd as login. The
    engine there gets this test's XDG directories, so that it
    is this test's engine (ssh SendEnv; the sanitizers' settings travel
    too); ControlMaster makes the many CLI calls cheap."""
    # one option per line: inih cuts lines at 200 bytes, continuation lines add up
    opts = [f"-i {sshd['SSH_TEST_KEY']} -o IdentitiesOnly=yes",
            f"-o UserKnownHostsFile={sshd['SSH_TEST_KNOWN_HOSTS']}",
            # the client's XDG dirs are the test's (base/...), the engine's must be too
            "-o SendEnv=XDG_STATE_HOME -o SendEnv=XDG_CONFIG_HOME",
            "-o SendEnv=ASAN_OPTIONS -o SendEnv=UBSAN_OPTIONS",
            f"-o ControlMaster=auto -o ControlPath={base}/cm-%C -o ControlPersist=20"]
    if extra_ssh:
        opts.append(extra_ssh)
    lines = [f"[{name}]", f"host = {sshd['SSH_TEST_HOST']}", f"port = {sshd['SSH_TEST_PORT']}",
             f"login = {login}", f"remote_command = {FERRY_BIN}",
             "ssh_options = " + "\n    ".join(opts)]
    lines += [f"{k} = {v}" for k, v in keys.items()]
    return "\n".join(lines) + "\n"


def as_jobuser(f, sshd):
    """Lets the test user of the sshd run this test's engine: its state and
    config directories become readable (config) and its own (state)."""
    pw = pwd.getpwnam(sshd["SSH_TEST_USER"])
    os.chmod(f.base, 0o755)
    for d in (f.config_home, os.path.dirname(f.config_path)):
        os.chmod(d, 0o755)
    os.chmod(f.config_path, 0o644)
    os.chown(f.state_home, pw.pw_uid, pw.pw_gid)
    return pw


def add_section(f, text):
    """Appends sections to the test's config (the [remote] one stays)."""
    with open(f.config_path) as fh:
        cur = fh.read()
    with open(f.config_path, "w") as fh:
        fh.write(cur + "\n" + text)


def engine_keys_config(f, local_text, **keys):
    """Writes f's configuration with engine keys for its resource: local_text
    for a local world; over ssh a remote section with keys, whose engine's
    host reads no configuration of its own (its ferry runs with an empty
    XDG_CONFIG_HOME), so that the keys reach the engine only as settings the
    client sends."""
    if not f.sshd:
        f.config(local_text)
        return
    empty = os.path.join(f.base, "remote-config")
    os.makedirs(empty, exist_ok=True)
    wrapper = os.path.join(f.base, "remote-ferry")
    with open(wrapper, "w") as fh:
        fh.write(f'#!/bin/sh\nXDG_CONFIG_HOME={empty} exec {FERRY_BIN} "$@"\n')
    os.chmod(wrapper, 0o755)
    section = remote_section("remote", f.base, f.sshd, **keys)
    section = section.replace(f"remote_command = {FERRY_BIN}\n", f"remote_command = {wrapper}\n")
    with open(f.config_path, "w") as fh:
        fh.write(DEFAULT_CONFIG + "\n" + section)


def password_section(f, sshd, name="pw", **keys):
    """A resource reached as the test user with no key: only a password works."""
    opts = (f"-o UserKnownHostsFile={sshd['SSH_TEST_KNOWN_HOSTS']} "
            f"-o PubkeyAuthentication=no -o PreferredAuthentications=password")
    env = "-o SendEnv=XDG_STATE_HOME -o SendEnv=XDG_CONFIG_HOME"
    lines = [f"[{name}]", f"host = {sshd['SSH_TEST_HOST']}", f"port = {sshd['SSH_TEST_PORT']}",
             f"remote_command = {FERRY_BIN}", f"ssh_options = {opts}", f"    {env}"]
    lines += [f"{k} = {v}" for k, v in keys.items()]
    return "\n".join(lines) + "\n"


class Ferry:
    """One isolated ferry world: own state/config/home dirs and engine.
    With sshd (the info of the test sshd), the CLI's default resource is
    "remote": this host's engine reached through ssh as root."""

    def __init__(self, base, resource="local", sshd=None):
        self.base = base
        self.sshd = sshd
        if sshd:
            resource = "remote"
        self.resource = resource
        self.state_home = os.path.join(base, "state")
        self.config_home = os.path.join(base, "config")
        self.home = os.path.join(base, "home")
        self.work = os.path.join(base, "work")  # scratch dir for job files
        for d in (self.state_home, self.config_home, self.home, self.work):
            os.makedirs(d, exist_ok=True)
        self.bin = FERRY_BIN
        self.ferryd = FERRYD_BIN
        env = dict(os.environ)
        for k in list(env):
            if k.startswith("FERRY") and k != "FERRY_BUILD_DIR":
                del env[k]
        env.update({
            "PATH": BUILD_DIR + os.pathsep + env.get("PATH", "/usr/bin:/bin"),
            "FERRYD": FERRYD_BIN,
            "XDG_STATE_HOME": self.state_home,
            "XDG_CONFIG_HOME": self.config_home,
            "HOME": self.home,
            "LD_LIBRARY_PATH": BUILD_DIR + (os.pathsep + env["LD_LIBRARY_PATH"]
                                            if env.get("LD_LIBRARY_PATH") else ""),
            "LC_ALL": "C.UTF-8",
        })
        if sshd:
            env["FERRY_RESOURCE"] = "remote"
            env["FERRY_ASKPASS"] = ASKPASS_BIN
        self.env = env
        self.config(DEFAULT_CONFIG)

    # -- paths
    @property
    def state_dir(self):
        return os.path.join(self.state_home, "ferry", self.resource)

    @property
    def sock_path(self):
        return os.path.join(self.state_dir, "ferryd.sock")

    @property
    def pid_path(self):
        return os.path.join(self.state_dir, "ferryd.pid")

    @property
    def config_path(self):
        return os.path.join(self.config_home, "ferry", "ferry.conf")

    def path(self, *parts):
        """A path inside the test's scratch directory."""
        return os.path.join(self.work, *parts)

    def config(self, text):
        if self.sshd:  # the remote resource stays defined whatever a test writes
            text += "\n" + remote_section("remote", self.base, self.sshd, slots=2)
        os.makedirs(os.path.dirname(self.config_path), exist_ok=True)
        with open(self.config_path, "w") as f:
            f.write(text)
        return self.config_path

    # -- running the CLI
    def run(self, *args, check=True, input=None, timeout=60, env=None, cwd=None):
        e = dict(self.env)
        if env:
            e.update(env)
        try:
            cp = subprocess.run(
                [self.bin, *[str(a) for a in args]], input=input, capture_output=True,
                text=True, errors="replace", env=e, cwd=cwd or self.work, timeout=timeout)
        except subprocess.TimeoutExpired as ex:
            raise AssertionError(f"`ferry {' '.join(map(str, args))}` did not finish in "
                                 f"{timeout}s; stdout={ex.stdout!r} stderr={ex.stderr!r}")
        if check and cp.returncode != 0:
            raise AssertionError(
                f"`ferry {' '.join(map(str, args))}` exited {cp.returncode}\n"
                f"stdout: {cp.stdout}\nstderr: {cp.stderr}")
        return cp

    def popen(self, *args, **kw):
        return subprocess.Popen([self.bin, *[str(a) for a in args]], env=self.env,
                                cwd=self.work, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True, errors="replace", **kw)

    def json(self, *args, timeout=60, cwd=None):
        cp = self.run("--json", *args, timeout=timeout, cwd=cwd)
        try:
            return _json.loads(cp.stdout)
        except ValueError as ex:
            raise AssertionError(f"`ferry --json {' '.join(map(str, args))}` printed no JSON "
                                 f"({ex}): {cp.stdout!r}")

    # -- convenience wrappers
    def submit(self, *cmd, opts=(), timeout=60):
        cp = self.run("submit", *opts, "--", *cmd, timeout=timeout)
        out = cp.stdout.strip()
        assert out.isdigit(), f"submit printed {out!r}, expected an id"
        return int(out)

    def info(self, jid):
        j = self.json("info", jid)
        assert isinstance(j, dict), f"info --json gave {j!r}"
        return j

    def state(self, jid):
        return self.info(jid)["status"]

    def wait_state(self, jid, states, timeout=15):
        if isinstance(states, str):
            states = (states,)
        return poll(lambda: (lambda j: j if j["status"] in states else None)(self.info(jid)),
                    timeout, 0.05, f"job {jid} in {states}")

    def wait_ended(self, jid, timeout=30):
        return self.wait_state(jid, ENDED, timeout)

    # -- the engine
    def engine_pid(self):
        try:
            with open(self.pid_path) as f:
                txt = f.read().strip()
        except OSError:
            return None
        try:
            return int(txt.split()[0])
        except (ValueError, IndexError):
            return None

    def engine_alive(self):
        pid = self.engine_pid()
        return pid is not None and pid_alive(pid) and b"ferryd" in proc_cmdline(pid)

    def kill_engine(self, sig=signal.SIGKILL, timeout=10):
        pid = self.engine_pid()
        assert pid is not None, "no ferryd.pid"
        assert pid_alive(pid), f"engine {pid} not running"
        os.kill(pid, sig)
        if sig in (signal.SIGKILL, signal.SIGTERM):
            assert wait_dead(pid, timeout), f"engine {pid} did not die after signal {sig}"
        return pid

    def raw(self, timeout=10.0):
        return RawConn(self.sock_path, timeout)

    def cleanup(self):
        """Stops the engine and kills what is left; a sanitizer report
        in the engine's logs fails the test (_sanitizer_check)."""
        # taken before the stop: the engine removes its pid file before it
        # exits, and then runs LeakSanitizer's check, which a kill would cut
        pid = self.engine_pid()
        try:
            self.run("daemon", "stop", check=False, timeout=15)
        except AssertionError:
            pass
        if pid and pid_alive(pid) and b"ferryd" in proc_cmdline(pid):
            # only an engine that stopped (its pid file gone) is let finish
            if self.engine_pid() == pid or not wait_dead(pid, 10):
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                wait_dead(pid, 5)
        kill_procs_mentioning(self.base)
        # a test may have moved the state home (test_hardening_trust)
        for home in sorted({self.state_home, self.env.get("XDG_STATE_HOME", self.state_home)}):
            SANITIZER_FOUND.extend(sanitizer_reports(home))


# The first line of a report of AddressSanitizer, LeakSanitizer or
# UndefinedBehaviorSanitizer, or of a sanitizer that could not open its
# log_path and dies instead.
SANITIZER_REPORT = re.compile(
    rb"ERROR: (?:Address|Leak|Undefined)Sanitizer|: runtime error: |ERROR: Can't open file")


def sanitizer_reports(state_home, context=30):
    """The sanitizer reports (a few lines each) in the logs of the engines
    and job runners of state_home. Whatever log_path ASAN_OPTIONS names, a
    report goes to stderr, that is to these logs, where the sanitizer
    settings did not reach the engine (an ssh that does not send them, a
    client whose environment a test replaced), so scripts/test's look at
    the log_path files cannot see it."""
    found = []
    top = os.path.join(state_home, "ferry")
    try:
        resources = sorted(os.listdir(top))
    except OSError:
        return found
    for res in resources:
        for name in ("ferryd.log", "runner.log"):
            path = os.path.join(top, res, name)
            try:
                with open(path, "rb") as f:
                    lines = f.read().splitlines()
            except OSError:
                continue
            for i, line in enumerate(lines):
                if SANITIZER_REPORT.search(line):
                    text = b"\n".join(lines[max(0, i - 1):i + context])
                    found.append(f"{path}:{i + 1}:\n" + text.decode(errors="replace"))
                    break
    return found


# What cleanup() found in the engines' logs during the current test.
SANITIZER_FOUND = []


@pytest.fixture(autouse=True)
def _sanitizer_check():
    """Fails the test on a report cleanup() found in its engines' logs.
    Autouse, so set up before and torn down after the fixtures of the
    worlds, whose teardown ends in cleanup()."""
    SANITIZER_FOUND.clear()
    yield
    if SANITIZER_FOUND:
        found = "\n".join(SANITIZER_FOUND)
        SANITIZER_FOUND.clear()
        pytest.fail("sanitizer reports in the engines' logs:\n" + found, pytrace=False)


def _check_build():
    missing = [p for p in (FERRY_BIN, FERRYD_BIN) if not os.access(p, os.X_OK)]
    if missing:
        pytest.fail(f"ferry is not built: missing {', '.join(missing)} "
                    f"(set FERRY_BUILD_DIR or run `meson setup build && ninja -C build`)",
                    pytrace=False)


def new_base(prefix="fy-"):
    return tempfile.mkdtemp(prefix=prefix, dir="/tmp")


def ferry_world(request, transport):
    """A Ferry for the transport ("local" or "ssh"), cleaned up at the end."""
    _check_build()
    base = new_base()
    f = Ferry(base, sshd=request.getfixturevalue("sshd") if transport == "ssh" else None)
    request.addfinalizer(lambda: (f.cleanup(), os.environ.get("FERRY_TEST_KEEP") or
                                  shutil.rmtree(base, ignore_errors=True)))
    return f


def transport_world(request, transport, prefix="fy-"):
    """A Ferry whose default resource is reached by transport: "local",
    "ssh" (this host's sshd), "slurm" or "drmaa" (the test Grid Engine);
    its processes are killed and its directory removed at the end."""
    _check_build()
    base = new_base(prefix)
    if transport == "ssh":
        f = Ferry(base, sshd=request.getfixturevalue("sshd"))
    elif transport in ("slurm", "drmaa"):
        request.getfixturevalue("slurm" if transport == "slurm" else "sge")
        name = "slurm" if transport == "slurm" else "sge"
        f = Ferry(base, resource=name)
        f.config("[local]\nslots = 2\n" +
                 (slurm_section() if transport == "slurm" else sge_section()))
        f.env["FERRY_RESOURCE"] = name
    else:
        f = Ferry(base)

    def done():
        f.cleanup()
        kill_procs_mentioning(base)
        if not os.environ.get("FERRY_TEST_KEEP"):
            shutil.rmtree(base, ignore_errors=True)
    request.addfinalizer(done)
    return f


def _load_env_sh(path):
    info = {}
    with open(path) as f:
        for line in f:
            if line.startswith("export ") and "=" in line:
                k, v = line[len("export "):].strip().split("=", 1)
                info[k] = v
    return info


@pytest.fixture(scope="session")
def sshd():
    """The test sshd of tests/sshd/start-sshd.sh (with its network
    namespace), started once for all workers; scripts/test stops it."""
    import fcntl
    if os.geteuid() != 0:
        pytest.fail("the ssh tests need root (they start their own sshd)", pytrace=False)
    os.makedirs(SSHD_DIR, exist_ok=True)
    with open(os.path.join(SSHD_DIR, ".start.lock"), "w") as lk:
        fcntl.flock(lk, fcntl.LOCK_EX)
        cp = subprocess.run(["bash", SSHD_START, "--netns"], capture_output=True, text=True,
                            timeout=300, env=dict(os.environ, SSHD_TEST_DIR=SSHD_DIR))
        if cp.returncode != 0:
            pytest.fail(f"cannot start the test sshd:\n{cp.stdout}\n{cp.stderr}", pytrace=False)
    return _load_env_sh(os.path.join(SSHD_DIR, "env.sh"))


def slurm_section(name="slurm", **keys):
    """A [name] section for the test Slurm cluster; a short poll keeps tests quick."""
    keys.setdefault("poll_interval", "0.5")
    return f"[{name}]\nscheduler = slurm\n" + "".join(f"{k} = {v}\n" for k, v in keys.items())


def _start_cluster(what, script, dir_var, directory):
    """Runs a tests/cluster start script (it locks, so every worker may) and
    returns what its env.sh says."""
    if os.geteuid() != 0:
        pytest.fail(f"the {what} tests need root (they start their own cluster)",
                    pytrace=False)
    cp = subprocess.run(["bash", os.path.join(CLUSTER_DIR, script)], capture_output=True,
                        text=True, timeout=900, env=dict(os.environ, **{dir_var: directory}))
    if cp.returncode != 0:
        pytest.fail(f"cannot start the test {what}:\n{cp.stdout}\n{cp.stderr}", pytrace=False)
    return _load_env_sh(os.path.join(directory, "env.sh"))


@pytest.fixture(scope="session")
def slurm():
    """The single-node Slurm cluster of tests/cluster/start-slurm.sh, started
    once for all workers (the script locks); scripts/test stops it."""
    info = _start_cluster("Slurm", "start-slurm.sh", "SLURM_TEST_DIR", SLURM_DIR)
    os.environ["SLURM_CONF"] = info.get("SLURM_CONF", "/etc/slurm/slurm.conf")
    return info


def sge_section(name="sge", **keys):
    """A [name] section for the test Grid Engine, reached through its libdrmaa."""
    keys.setdefault("poll_interval", "0.5")
    return f"[{name}]\nscheduler = drmaa\n" + "".join(f"{k} = {v}\n" for k, v in keys.items())


@pytest.fixture(scope="session")
def sge():
    """The single-node Grid Engine of tests/cluster/start-sge.sh, started once
    for all workers (the script locks); scripts/test stops it. Its SGE_ROOT,
    SGE_CELL and PATH go into this process's environment, which engines
    started by the tests inherit."""
    ldd = subprocess.run(["ldd", FERRYD_BIN], capture_output=True, text=True).stdout
    if "libasan" in ldd:
        pytest.skip("SKIPPED LOUDLY: Grid Engine's libdrmaa (linked with jemalloc) crashes "
                    "inside an AddressSanitizer process (a call through a null pointer in "
                    "libdrmaa); the DRMAA tests run on the plain build only")
    info = _start_cluster("Grid Engine", "start-sge.sh", "SGE_TEST_DIR", SGE_DIR)
    for k in ("SGE_ROOT", "SGE_CELL"):
        os.environ[k] = info[k]
    qstat_dir = "/usr/lib/gridengine"
    if qstat_dir not in os.environ.get("PATH", "").split(os.pathsep):
        os.environ["PATH"] = qstat_dir + os.pathsep + os.environ.get("PATH", "")
    return info


@pytest.fixture
def ferry():
    _check_build()
    base = new_base()
    f = Ferry(base)
    try:
        yield f
    finally:
        f.cleanup()
        if not os.environ.get("FERRY_TEST_KEEP"):
            shutil.rmtree(base, ignore_errors=True)


# ------------------------------------------------ a slow cluster

SLOW_S = 20  # how long a slow-COMMAND sleeps before it answers


def slow_command(fs, command):
    """Fault injection (a real slurmctld or qmaster cannot be made slow on
    demand): slow-COMMAND, first on the engine's PATH, runs the real
    command, but its first call marks its start, sleeps SLOW_S seconds and
    marks its end before, as a busy cluster would answer late. Returns the
    two marker paths."""
    bindir = os.path.join(fs.base, "slow")
    os.makedirs(bindir)
    began, ended = fs.path(f"{command}-began"), fs.path(f"{command}-ended")
    p = os.path.join(bindir, command)
    with open(p, "w") as fh:
        fh.write(f"#!/bin/sh\n# slow-{command}\nif [ ! -e {began} ]; then\n"
                 f": > {began}; sleep {SLOW_S}; : > {ended}\nfi\n"
                 f'exec {shutil.which(command)} "$@"\n')
    os.chmod(p, 0o755)
    fs.env["PATH"] = bindir + os.pathsep + fs.env["PATH"]
    return began, ended


def answers_quickly(fs, jid):
    """A local-socket ping answers in under 100 ms, and `ferry status` and
    `ferry jobs` in under 1 s: the stall this guards against is a loop
    waiting for a 20 s command, and a CLI process under ASan on a busy
    2-core machine takes a few hundred ms to start and exit on its own.
    Each is timed three times and the best counts: a loop that waits for
    a 20 s command makes every try slow, a busy machine only some."""
    def best(fn):
        times = []
        for _ in range(3):
            t = time.monotonic()
            fn()
            times.append(time.monotonic() - t)
        return min(times)

    took = {"status": best(lambda: fs.run("status", jid)), "jobs": best(lambda: fs.run("jobs"))}
    with fs.raw() as c:
        c.hello()
        took["ping"] = best(lambda: c.request({"op": "ping"}))
        assert c.request({"op": "ping"}).get("ok") is True
    assert took["ping"] < 0.1 and took["status"] < 1 and took["jobs"] < 1, took
    return took


# ---- the states tests of Slurm and Grid Engine (test_*_states.py)

def drms_world(base, resource, section, cancel):
    """A Ferry whose default resource is the test cluster's (section of
    ferry.conf); at the end, cancel(native ids) removes what a failed test
    left in the cluster. A generator for a fixture to yield from."""
    f = Ferry(base, resource=resource)
    f.config(section)
    f.env["FERRY_RESOURCE"] = resource
    yield f
    natives = set()
    try:
        natives = {j["native_id"] for j in f.json("jobs", timeout=20)
                   if (j.get("native_id") or "")[:1].isdigit()}
    except AssertionError:
        pass
    f.cleanup()
    if natives:
        cancel(sorted(natives))
    if not os.environ.get("FERRY_TEST_KEEP"):
        shutil.rmtree(base, ignore_errors=True)


def as_admin(*argv):
    """A cluster command run by the test as the cluster's administrator."""
    cp = subprocess.run(list(argv), capture_output=True, text=True, timeout=60)
    assert cp.returncode == 0, cp


def handed_native_id(f, jid):
    """The DRMS's id of job jid, once it was handed over."""
    def get():
        n = f.info(jid).get("native_id")
        return n if n and n[0].isdigit() else None
    return poll(get, timeout=30, what=f"job {jid} handed to {f.resource}")


def steady(f, jid, state, seconds):
    """Job jid stays in state for that long (polls run every 0.5 s)."""
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        assert f.state(jid) == state
        time.sleep(0.2)
