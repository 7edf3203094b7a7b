"""Remote resources: libferry runs `ssh host ferry bridge` against the
project's own test sshd (tests/sshd/start-sshd.sh): password logins through
the askpass helper, refusals with clear errors, engine and client crashes,
and link cuts through a network namespace reached over a veth pair.

The job API itself runs through ssh in test_cli.py and test_capi.py
(transport "ssh"); this file covers what only a remote link has."""
import fcntl
import os
import queue
import random
import re
import signal
import subprocess
import threading
import time

import pytest

from conftest import (BUILD_DIR, FERRY_BIN, Ferry, SSHD_DIR, add_section, as_jobuser,
                      kill_procs_mentioning, new_base, password_section, pid_alive, poll,
                      procs_containing, remote_section, wait_dead)

DRIVER = os.path.join(BUILD_DIR, "tests", "ferry_driver")


class Driver:
    """tests/ferry_driver: one libferry connection fed commands line by line."""

    def __init__(self, ferry, env=None):
        e = dict(ferry.env)
        e.update(env or {})
        self.p = subprocess.Popen([DRIVER], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, text=True, env=e, cwd=ferry.work,
                                  start_new_session=True)  # no controlling tty to prompt on
        self.lines = queue.Queue()
        threading.Thread(target=self._reader, daemon=True).start()

    def _reader(self):
        for line in self.p.stdout:
            self.lines.put(line.rstrip("\n"))
        self.lines.put(None)

    def send(self, line):
        self.p.stdin.write(line + "\n")
        self.p.stdin.flush()

    def answer(self, timeout=60):
        try:
            line = self.lines.get(timeout=timeout)
        except queue.Empty:
            raise AssertionError(f"ferry_driver gave no answer within {timeout}s")
        assert line is not None, f"ferry_driver died: {self.p.stderr.read()}"
        return line

    def cmd(self, line, timeout=60):
        self.send(line)
        return self.answer(timeout)

    def ok(self, line, timeout=60):
        a = self.cmd(line, timeout)
        assert a.startswith("ok"), f"{line!r} -> {a!r}"
        return a.split()[1:]

    def close(self):
        if self.p.poll() is None:
            try:
                self.send("quit")
                self.p.wait(10)
            except (OSError, subprocess.TimeoutExpired):
                self.p.kill()
                self.p.wait()


def err_code(answer):
    m = re.match(r"err (-?\d+) ", answer)
    assert m, f"expected an error, got {answer!r}"
    return int(m.group(1))


EAUTH, EPROTO, ECONFIG, ECONNECT = -17, -5, -9, -4


@pytest.fixture
def remote(request, sshd):
    """A Ferry whose default resource is this host's engine reached as root."""
    base = new_base()
    f = Ferry(base, sshd=sshd)
    drivers = []
    f.driver = lambda env=None: drivers.append(Driver(f, env)) or drivers[-1]
    yield f
    for d in drivers:
        d.close()
    f.cleanup()
    kill_procs_mentioning(base)


# ---------------------------------------------------------------- logins


def test_password_login_through_askpass(remote, sshd):
    user, password = sshd["SSH_TEST_USER"], sshd["SSH_TEST_PASSWORD"]
    as_jobuser(remote, sshd)
    add_section(remote, password_section(remote, sshd))
    d = remote.driver()
    d.ok(f"connect pw {user} {password}", timeout=30)
    # connected: the password is on no command line and in no environment
    assert procs_containing(password.encode()) == []
    jid, = d.ok("submit id -un")
    d.ok(f"wait 30 {jid}")
    assert d.ok(f"status {jid}") == ["done"]
    # the job ran as the ssh login, on that user's engine
    out = os.path.join(remote.state_home, "ferry", "pw", "jobs", jid, "stdout")
    with open(out) as fh:
        assert fh.read().strip() == user


def test_wrong_password_is_a_quick_clear_error(remote, sshd):
    add_section(remote, password_section(remote, sshd))
    d = remote.driver()
    t0 = time.monotonic()
    a = d.cmd(f"connect pw {sshd['SSH_TEST_USER']} not-the-password", timeout=30)
    assert err_code(a) == EAUTH, a
    assert "Permission denied" in a and sshd["SSH_TEST_HOST"] in a, a
    assert time.monotonic() - t0 < 10


def test_no_password_and_no_key_fails_without_prompting(remote, sshd):
    add_section(remote, password_section(remote, sshd))
    d = remote.driver()
    a = d.cmd(f"connect pw {sshd['SSH_TEST_USER']}", timeout=30)
    assert err_code(a) == EAUTH and "Permission denied" in a, a


def test_unknown_host_key_is_refused_and_gets_no_password(remote, sshd):
    """ssh asks its askpass helper whether to accept an unknown host key:
    the library must not answer that with the password."""
    sec = password_section(remote, sshd).replace(
        f"UserKnownHostsFile={sshd['SSH_TEST_KNOWN_HOSTS']}",
        "UserKnownHostsFile=/dev/null -o StrictHostKeyChecking=ask")
    add_section(remote, sec)
    d = remote.driver()
    a = d.cmd(f"connect pw {sshd['SSH_TEST_USER']} {sshd['SSH_TEST_PASSWORD']}", timeout=30)
    assert err_code(a) == EAUTH and "Host key verification failed" in a, a


def test_remote_shell_that_prints_a_banner(remote, sshd):
    add_section(remote, remote_section("banner", remote.base, sshd,
                                       login=sshd["SSH_TEST_BANNER_USER"]))
    d = remote.driver()
    a = d.cmd("connect banner", timeout=30)
    assert err_code(a) == EPROTO, a
    assert "remote shell is not clean" in a and "Welcome to the cluster front-end!" in a, a
    cp = remote.run("-r", "banner", "ping", check=False)
    assert cp.returncode == 1 and "remote shell is not clean" in cp.stderr, cp


@pytest.mark.parametrize("key,value,pattern", [
    ("host", "-oProxyCommand=touch${IFS}/tmp/ferry-pwned", r"invalid host '-oProxyCommand"),
    ("login", "-oProxyCommand=x", r"invalid login '-oProxyCommand=x'"),
    ("host", "two words", r"invalid host 'two words'"),
    ("ssh_options", "-o 'unbalanced", r"invalid ssh_options"),
])
def test_names_that_ssh_could_take_for_options_are_refused(remote, sshd, key, value, pattern):
    sec = remote_section("evil", remote.base, sshd)
    if key == "ssh_options":
        sec = sec[:sec.index("ssh_options = ")] + f"ssh_options = {value}\n"  # the last key
    else:
        sec = re.sub(rf"^{key} = .*$", f"{key} = {value}", sec, flags=re.M)
    add_section(remote, sec)
    cp = remote.run("-r", "evil", "ping", check=False)
    assert cp.returncode == 1, cp
    assert re.search(pattern, cp.stderr), cp.stderr
    assert not os.path.exists("/tmp/ferry-pwned")


def test_missing_remote_command_names_the_key(remote, sshd):
    sec = remote_section("nocmd", remote.base, sshd).replace(
        f"remote_command = {FERRY_BIN}", "remote_command = /nonexistent/bin/ferry")
    add_section(remote, sec)
    cp = remote.run("-r", "nocmd", "ping", check=False)
    assert cp.returncode == 1, cp
    assert "/nonexistent/bin/ferry" in cp.stderr and "remote_command" in cp.stderr, cp.stderr


def test_unreachable_host_is_a_connect_error(remote, sshd):
    sec = remote_section("nohost", remote.base, sshd).replace(
        f"port = {sshd['SSH_TEST_PORT']}", "port = 1")
    add_section(remote, sec)
    d = remote.driver()
    a = d.cmd("connect nohost", timeout=30)
    assert err_code(a) == ECONNECT and "Connection refused" in a, a


def test_engine_with_other_settings_is_not_used(remote, sshd):
    """The client's configuration says slots = 2; an engine already running
    there with slots = 3 is refused at hello, with a way out."""
    remote.run("bridge", "--resource", "remote", "--set", "slots=3", input="")
    cp = remote.run("ping", check=False)
    assert cp.returncode == 1, cp
    assert "slots '3'" in cp.stderr and "'2'" in cp.stderr and "daemon stop" in cp.stderr


# ------------------------------------------------------- the CLI's view


def test_resources_lists_and_checks_without_starting(remote, sshd):
    add_section(remote, remote_section("closed", remote.base, sshd).replace(
        f"port = {sshd['SSH_TEST_PORT']}", "port = 1"))
    out = remote.run("resources").stdout
    assert re.search(r"^local\s+local\s+this host\s+reachable, engine not running$", out, re.M)
    assert re.search(r"^remote\s+local\s+127\.0\.0\.1\s+reachable, engine not running$", out,
                     re.M), out
    assert re.search(r"^closed\s+.*unreachable: ssh to host .*Connection refused", out, re.M)
    assert not os.path.exists(remote.pid_path), "checking must not start the engine"
    remote.run("ping")
    js = {r["name"]: r for r in remote.json("resources")}
    assert js["remote"]["engine_running"] is True and js["remote"]["pid"] == remote.engine_pid()
    assert js["remote"]["host"] == "127.0.0.1" and js["remote"]["login"] == "root"
    assert js["closed"]["reachable"] is False
    nc = remote.json("resources", "--no-check")
    assert all("reachable" not in r for r in nc)


def test_ping_measures_round_trips(remote):
    js = remote.json("ping", "-n", "20")
    assert js["count"] == 20 and js["resource"] == "remote"
    assert 0 < js["min_us"] <= js["avg_us"] <= js["max_us"] < 1e6
    assert js["connect_ms"] > 0
    out = remote.run("ping", "-n", "3").stdout
    assert re.search(r"^connected in [\d.]+ ms$", out, re.M) and "3 pings: min" in out


def test_daemon_commands_on_a_remote_resource(remote):
    cp = remote.run("daemon", "status", check=False)
    assert cp.returncode == 3 and "not running" in cp.stdout
    assert "ferryd running (pid" in remote.run("daemon", "start").stdout
    pid = remote.engine_pid()
    assert f"running (pid {pid})" in remote.run("daemon", "status").stdout
    assert "ferryd stopped" in remote.run("daemon", "stop").stdout
    assert wait_dead(pid, 10)


# -------------------------------------------------- crashes on either side


def test_remote_engine_killed_during_a_wait(remote):
    d = remote.driver()
    d.ok("connect remote")
    jid, = d.ok("submit sleep 3")
    poll(lambda: remote.engine_pid(), 10, what="engine pid")
    d.send(f"wait 60 {jid}")
    time.sleep(1)
    remote.kill_engine(signal.SIGKILL)
    a = d.answer(timeout=60)
    assert a == "ok", a
    assert d.ok(f"status {jid}") == ["done"]
    # the new engine was started by the bridge and adopted the job
    assert remote.engine_pid() and pid_alive(remote.engine_pid())


def test_client_killed_mid_submit_leaves_whole_batches(remote):
    """Clients killed at random points of 500-job submissions: every batch
    acknowledged exists, and nothing but whole batches."""
    rng = random.Random(7)
    acked = []
    for _ in range(5):
        d = remote.driver()
        d.ok("connect remote")
        d.send("submit_many 500 true")
        time.sleep(rng.uniform(0.0, 0.15))
        os.killpg(d.p.pid, signal.SIGKILL)
        d.p.wait()
        while True:  # what the driver printed before it died
            line = d.lines.get(timeout=10)
            if line is None:
                break
            if line.startswith("ok"):
                acked.append([int(x) for x in line.split()[1:]])
    jobs = remote.json("jobs", timeout=120)
    ids = {j["id"] for j in jobs}
    for batch in acked:
        assert set(batch) <= ids, "an acknowledged job is missing"
    assert len(jobs) % 500 == 0, f"{len(jobs)} jobs: a partial batch was committed"
    # killed after the commit but before the answer: a whole batch nobody heard of
    assert len(acked) <= len(jobs) // 500 <= 5


# ------------------------------------------------------------ link cuts


@pytest.fixture
def netns(sshd, remote):
    """The sshd inside the network namespace, as the test user, exclusive:
    link cuts must not overlap. Its tests are one xdist group, run one
    after another by one worker, so that no other worker sits idle
    waiting for the lock (30 s a test); the lock keeps two suites apart."""
    with open(os.path.join(SSHD_DIR, ".netns.lock"), "w") as lk:
        fcntl.flock(lk, fcntl.LOCK_EX)
        as_jobuser(remote, sshd)
        sec = remote_section("cut", remote.base, sshd, login=sshd["SSH_TEST_USER"], slots=4)
        sec = sec.replace(f"host = {sshd['SSH_TEST_HOST']}", f"host = {sshd['SSH_TEST_NS_HOST']}")
        sec = sec.replace(f"port = {sshd['SSH_TEST_PORT']}", f"port = {sshd['SSH_TEST_NS_PORT']}")
        # one ssh per connection here: a ControlMaster would share one link
        sec = re.sub(r"-o ControlMaster=auto.*ControlPersist=20", "-o ControlMaster=no", sec)
        add_section(remote, sec)
        veth = sshd["SSH_TEST_NS_VETH_HOST"]
        ns = sshd["SSH_TEST_NS"]
        try:
            yield {"veth": veth, "ns": ns}
        finally:
            subprocess.run(["ip", "link", "set", veth, "up"], check=False)
            subprocess.run(["ip", "netns", "exec", ns, "iptables", "-F", "OUTPUT"], check=False)
            subprocess.run([FERRY_BIN, "-r", "cut", "daemon", "stop"], env=remote.env,
                           capture_output=True, timeout=60)


@pytest.mark.xdist_group("netns")
def test_link_down_while_waiting_submitting_and_sending(remote, netns):
    """The link goes down for 25 s while one client waits on running jobs,
    another has a 200-job bulk submit in flight and a third sends 100 MiB:
    the wait returns the right states, exactly 200 jobs exist afterwards,
    and the file arrives with a matching checksum."""
    import hashlib
    big = remote.path("big100.bin")
    with open(big, "wb") as f:
        for i in range(100):
            f.write(hashlib.sha256(str(i).encode()).digest() * 32768)
    waiter, submitter, sender = remote.driver(), remote.driver(), remote.driver()
    waiter.ok("connect cut", timeout=30)
    submitter.ok("connect cut", timeout=30)
    sender.ok("connect cut", timeout=30)
    sender.send(f"send {big}")
    time.sleep(0.3)  # the send is under way when the link goes
    fail = remote.path("fail.sh")
    with open(fail, "w") as fh:
        fh.write("#!/bin/sh\nsleep 8\nexit 3\n")
    os.chmod(fail, 0o755)
    ok_job, = waiter.ok("submit sleep 6")
    bad_job, = waiter.ok(f"submit {fail}")
    subprocess.run(["ip", "link", "set", netns["veth"], "down"], check=True)
    t_cut = time.monotonic()
    waiter.send(f"wait 300 {ok_job} {bad_job}")
    submitter.send("submit_many 200 true")
    time.sleep(25)
    subprocess.run(["ip", "link", "set", netns["veth"], "up"], check=True)
    a = waiter.answer(timeout=120)
    b = submitter.answer(timeout=120)
    c = sender.answer(timeout=180)
    assert time.monotonic() - t_cut >= 25
    assert c.startswith("ok "), c
    server_file = c.split()[1]
    with open(server_file, "rb") as f1, open(big, "rb") as f2:
        assert hashlib.md5(f1.read()).digest() == hashlib.md5(f2.read()).digest()
    assert sender.ok(f"transfer {server_file}")[0] == "ready"
    assert a == "ok", a
    assert b.startswith("ok") and len(b.split()) == 201, b
    states = waiter.ok(f"status {ok_job} {bad_job}")
    assert states == ["done", "failed"], states
    jobs = remote.json("-r", "cut", "jobs", timeout=60)
    assert len(jobs) == 202, f"{len(jobs)} jobs after the cut, expected 2 + 200"
    ids = sorted(int(x) for x in b.split()[1:])
    assert ids == sorted(set(ids)) and set(ids) <= {j["id"] for j in jobs}


@pytest.mark.xdist_group("netns")
def test_replies_lost_during_bulk_submit(remote, netns):
    """The engine's replies are dropped (the request arrives, its
    acknowledgement does not): the client reconnects once the link heals
    and replays; the submission keys make that create nothing twice."""
    d = remote.driver()
    d.ok("connect cut", timeout=30)
    d.ok("ping")
    ns = netns["ns"]
    subprocess.run(["ip", "netns", "exec", ns, "iptables", "-A", "OUTPUT", "-p", "tcp",
                    "--sport", "22", "-j", "DROP"], check=True)
    d.send("submit_many 200 true")  # arrives and commits; its reply is lost
    time.sleep(22)
    subprocess.run(["ip", "netns", "exec", ns, "iptables", "-F", "OUTPUT"], check=True)
    a = d.answer(timeout=120)
    assert a.startswith("ok") and len(a.split()) == 201, a
    jobs = remote.json("-r", "cut", "jobs", timeout=60)
    assert len(jobs) == 200, f"{len(jobs)} jobs: the replayed submission was duplicated"
    assert sorted(j["id"] for j in jobs) == sorted(int(x) for x in a.split()[1:])


@pytest.mark.xdist_group("netns")
def test_replies_lost_during_pipelined_submit(remote, netns):
    """The same with a submit of many batches, 8 in flight (src/lib/submit.c):
    every batch whose answer was lost is replayed, in order, on the new
    link, and the keys make each return the ids it first got."""
    d = remote.driver()
    d.ok("connect cut", timeout=30)
    d.ok("ping")
    ns = netns["ns"]
    subprocess.run(["ip", "netns", "exec", ns, "iptables", "-A", "OUTPUT", "-p", "tcp",
                    "--sport", "22", "-j", "DROP"], check=True)
    d.send("submit_held 20000 true")  # batches arrive and commit; their answers are lost
    time.sleep(22)
    subprocess.run(["ip", "netns", "exec", ns, "iptables", "-F", "OUTPUT"], check=True)
    a = d.answer(timeout=180)
    assert a.startswith("ok") and len(a.split()) == 20001, a[:300]
    ids = [int(x) for x in a.split()[1:]]
    assert ids == list(range(ids[0], ids[0] + 20000)), "ids not in order: a batch was duplicated"
    cp = remote.run("-r", "cut", "status", ids[-1] + 1, check=False, timeout=60)
    assert cp.returncode == 1, "a job past the last id exists: a replay made new jobs"


@pytest.mark.xdist_group("netns")
def test_workflow_goes_on_through_a_link_cut(remote, netns):
    """A workflow submitted over ssh runs in the remote engine while the
    link is down for 15 s; the client waiting on it comes back once the
    link heals: the workflow is complete, every job run once, in order."""
    import json as _json
    shared = remote.path("wf-shared")
    os.makedirs(shared, exist_ok=True)
    os.chmod(shared, 0o777)
    log = os.path.join(shared, "log")
    names = [f"s{i}" for i in range(10)]
    wf = {"name": "cut", "jobs": {n: {"argv": ["sh", "-c", f"echo {n} >> {log}; sleep 0.5"],
                                      "working_directory": shared} for n in names},
          "dependencies": [[names[i], names[i + 1]] for i in range(9)]}
    path = remote.path("wf.json")
    with open(path, "w") as f:
        _json.dump(wf, f)
    w = remote.run("-r", "cut", "workflow", "submit", path, timeout=60).stdout.strip()
    waiter = remote.popen("-r", "cut", "workflow", "wait", w)
    time.sleep(1.0)  # a job or two ran
    subprocess.run(["ip", "link", "set", netns["veth"], "down"], check=True)
    time.sleep(15)
    subprocess.run(["ip", "link", "set", netns["veth"], "up"], check=True)
    assert waiter.wait(timeout=120) == 0, waiter.communicate()
    st = remote.json("-r", "cut", "workflow", "status", w, timeout=60)
    assert st["status"] == "done" and st["counts"] == {"done": 10}, st
    with open(log) as f:
        assert f.read().split() == names
