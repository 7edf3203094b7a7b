"""Password login from the ferry command (issue 18, part 2): a remote
resource whose host takes no key gets the password typed at the terminal,
once per command, and the connection keeps it for its reconnections.

The command runs under a pseudo-terminal that is its stdin and its
controlling terminal, as in an interactive shell; the test sshd's 'pw'
resource (conftest.password_section) turns key logins off, so only a
password gets in."""
import fcntl
import os
import re
import signal
import subprocess
import sys
import termios
import threading
import time

import pytest

from conftest import (Ferry, add_section, as_jobuser, kill_procs_mentioning, new_base,
                      password_section, poll, proc_cmdline, proc_comm, proc_environ,
                      procs_containing, remote_section)

PROMPT = re.compile(r"ferry: password for (\S+) \(resource 'pw'\): ")

# A job-control shell's part, for a ferry that ^Z can stop: ferry in its
# own process group, the terminal's foreground one, under a parent of the
# same session (a group whose parents are all outside the session is
# orphaned, and the kernel discards the stop signals' default action in
# such a group). It waits for ferry through its stops and exits with its
# status.
JOB_SHELL = r"""
import os, signal, sys
pid = os.fork()
if pid == 0:
    os.setpgid(0, 0)
    signal.signal(signal.SIGTTOU, signal.SIG_IGN)
    os.tcsetpgrp(0, os.getpgrp())
    signal.signal(signal.SIGTTOU, signal.SIG_DFL)
    signal.signal(signal.SIGPIPE, signal.SIG_DFL)
    os.execv(sys.argv[1], sys.argv[1:])
while True:
    _, st = os.waitpid(pid, os.WUNTRACED)
    if not os.WIFSTOPPED(st):
        sys.exit(os.waitstatus_to_exitcode(st) & 255)
"""


class Tty:
    """`ferry ARGS` with a pseudo-terminal as controlling terminal and (but
    with stdin=) as stdin; stdout and stderr are pipes, so what reaches the
    terminal (self.screen) is only what ferry wrote there: the prompt. With
    job_control, ferry runs under JOB_SHELL (self.pid: ferry's pid)."""

    def __init__(self, f, *args, stdin=None, job_control=False):
        master, slave = os.openpty()

        def own_terminal():
            os.setsid()
            fcntl.ioctl(slave, termios.TIOCSCTTY, 0)
            # a job of a terminal's shell: a test run in the background of
            # a script (`.ci/run &`) inherits SIGINT and SIGQUIT ignored,
            # which ferry rightly keeps ignored, as nohup asks
            for sig in (signal.SIGINT, signal.SIGQUIT, signal.SIGTSTP):
                signal.signal(sig, signal.SIG_DFL)

        argv = [f.bin, *args]
        if job_control:
            argv = [sys.executable, "-c", JOB_SHELL, *argv]
        self.p = subprocess.Popen(argv, stdin=slave if stdin is None else stdin,
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=f.env,
                                  cwd=f.work, preexec_fn=own_terminal, pass_fds=(slave,))
        os.close(slave)
        self.pid = self.p.pid
        if job_control:
            self.pid, = poll(lambda: children(self.p.pid), 30, what="JOB_SHELL's ferry")
        self.master = master
        self.raw = b""
        self.lock = threading.Lock()
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self):
        while True:
            try:
                b = os.read(self.master, 4096)
            except OSError:  # EIO: every holder of the terminal is gone
                b = b""
            if not b:
                return
            with self.lock:
                self.raw += b

    @property
    def screen(self):
        with self.lock:
            return self.raw.decode(errors="replace")

    def expect_prompt(self, timeout=30):
        poll(lambda: PROMPT.search(self.screen) or self.p.poll() is not None, timeout,
             what="the password prompt")
        m = PROMPT.search(self.screen)
        assert m, f"no prompt on the terminal: {self.screen!r}, stderr: {self._err()!r}"
        return m

    def _err(self):
        if self.p.poll() is None:
            return "(still running)"
        return self.p.stderr.read().decode(errors="replace")

    def type(self, text):
        os.write(self.master, text.encode())

    def finish(self, timeout=60, keep_master=False):
        try:
            out, err = self.p.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.p.kill()
            out, err = self.p.communicate()
            raise AssertionError(f"ferry did not end within {timeout}s: {err!r}")
        self.reader.join(10)
        if not keep_master:
            os.close(self.master)
        return self.p.returncode, out.decode(), err.decode()

    def kill(self):
        if self.p.poll() is None:
            self.p.kill()
            self.p.wait()


@pytest.fixture
def pw(request, sshd):
    """A ferry world with the password-only resource 'pw', as the test user."""
    base = new_base()
    f = Ferry(base, sshd=sshd)
    as_jobuser(f, sshd)
    add_section(f, password_section(f, sshd, login=sshd["SSH_TEST_USER"]))
    ttys = []
    f.tty = lambda *args, **kw: ttys.append(Tty(f, *args, **kw)) or ttys[-1]
    yield f
    for t in ttys:
        t.kill()
    f.cleanup()
    kill_procs_mentioning(base)


def children(pid):
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as fh:
            return [int(k) for k in fh.read().split()]
    except OSError:
        return []


def proc_state(pid):
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().rsplit(")", 1)[1].split()[0]
    except OSError:
        return None


def ssh_children(pid):
    """The ssh processes ferry (pid) runs: its link to the resource."""
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as fh:
            kids = [int(k) for k in fh.read().split()]
    except OSError:
        return []
    return [k for k in kids if proc_comm(k) == "ssh"]


def bridges(f):
    """Pids of the `ferry bridge --resource pw` processes of this world (the
    far end of the link, started by sshd with this world's state home)."""
    mine = b"XDG_STATE_HOME=" + f.state_home.encode()
    found = []
    for name in filter(str.isdigit, os.listdir("/proc")):
        cmd = proc_cmdline(int(name)).split(b"\0")
        if b"bridge" in cmd and b"pw" in cmd and mine in proc_environ(int(name)).split(b"\0"):
            found.append(int(name))
    return found


def stdin_of(pid):
    try:
        return os.readlink(f"/proc/{pid}/fd/0")
    except OSError:
        return None


def test_prompt_once_then_the_job_runs_as_that_login(pw, sshd):
    user, password = sshd["SSH_TEST_USER"], sshd["SSH_TEST_PASSWORD"]
    t = pw.tty("-r", "pw", "submit", "id", "-un")
    m = t.expect_prompt()
    assert m.group(1) == f"{user}@{sshd['SSH_TEST_HOST']}", m.group(0)
    t.type(password + "\n")
    rc, out, err = t.finish()
    assert rc == 0, err
    jid = out.strip()
    assert jid.isdigit(), out
    assert len(PROMPT.findall(t.screen)) == 1, t.screen
    assert password not in t.screen, "the password was echoed"
    # the job ran as the password's login, on that user's engine
    path = os.path.join(pw.state_home, "ferry", "pw", "jobs", jid, "stdout")

    def ran():
        try:
            with open(path) as fh:
                return fh.read().strip() == user
        except OSError:
            return False
    poll(ran, 60, what=f"job {jid}'s output")


def test_stdin_not_a_terminal_still_prompts_on_the_terminal(pw, sshd):
    """`echo data | ferry ...` at a terminal: the data is stdin's, the
    password the controlling terminal's."""
    t = pw.tty("-r", "pw", "submit", "true", stdin=subprocess.DEVNULL)
    t.expect_prompt()
    poll(lambda: not termios.tcgetattr(t.master)[3] & termios.ECHO, 30,
         what="the echo off at the prompt")
    t.type(sshd["SSH_TEST_PASSWORD"] + "\n")
    rc, out, err = t.finish()
    assert rc == 0, err
    assert out.strip().isdigit(), out
    assert len(PROMPT.findall(t.screen)) == 1, t.screen


def test_wrong_password_is_the_authentication_error(pw, sshd):
    t = pw.tty("-r", "pw", "submit", "true")
    t.expect_prompt()
    t.type("not-the-password\n")
    rc, out, err = t.finish()
    assert rc == 1, (rc, err)  # man/ferry.1, EXIT STATUS: an error, the message says which
    assert "Permission denied" in err and sshd["SSH_TEST_HOST"] in err, err
    assert out == ""
    # asked once: a wrong password is not asked again
    assert len(PROMPT.findall(t.screen)) == 1, t.screen


def test_no_terminal_is_a_clear_error_and_no_prompt(pw, sshd):
    cp = subprocess.run([pw.bin, "-r", "pw", "submit", "true"], stdin=subprocess.DEVNULL,
                        capture_output=True, text=True, env=pw.env, cwd=pw.work, timeout=60,
                        start_new_session=True)  # no controlling terminal either
    assert cp.returncode == 1, cp
    assert "Permission denied" in cp.stderr, cp.stderr
    assert "needs a password and there is no terminal to ask it on" in cp.stderr, cp.stderr
    assert "ssh key or an agent" in cp.stderr and "ferry_connect()" in cp.stderr, cp.stderr
    assert "password for" not in cp.stderr and cp.stdout == ""


def test_key_login_with_a_terminal_asks_nothing(pw, sshd):
    """Where the key works, BatchMode's first try gets in: no prompt."""
    add_section(pw, remote_section("keyed", pw.base, sshd, login=sshd["SSH_TEST_USER"]))
    t = pw.tty("-r", "keyed", "ping")
    rc, out, err = t.finish()
    assert rc == 0, err
    assert "round trip" in out
    assert "password" not in t.screen, t.screen


def test_empty_answer_gives_up_without_connecting_again(pw, sshd):
    t = pw.tty("-r", "pw", "submit", "true")
    t.expect_prompt()
    t.type("\n")
    rc, out, err = t.finish()
    assert rc == 1 and "no password given" in err, (rc, err)


def test_cut_link_during_wait_is_regained_without_a_second_prompt(pw, sshd):
    password = sshd["SSH_TEST_PASSWORD"]
    go = pw.path("go")
    t = pw.tty("-r", "pw", "submit", "sh", "-c", f"while [ ! -e {go} ]; do sleep 0.2; done")
    t.expect_prompt()
    t.type(password + "\n")
    rc, out, err = t.finish()
    assert rc == 0, err
    jid = out.strip()
    # the submit's bridge gone, the next one is the wait's
    poll(lambda: not bridges(pw), 30, what="the submit's bridge to end")

    w = pw.tty("-r", "pw", "wait", "-t", "300", jid)
    w.expect_prompt()
    w.type(password + "\n")
    ssh, = poll(lambda: ssh_children(w.p.pid), 30, what="ferry wait's ssh")
    first = poll(lambda: bridges(pw), 30, what="the bridge of ferry wait")
    # the engine has the channel once the bridge handed it over (adopt: its
    # stdin is /dev/null then); the hello's round trip is next, then the
    # wait. The pause is margin for that round trip only: a cut during the
    # hello would be a first connect's failure, not what is tested here,
    # and what proves the reconnection is the second ssh and the wait's end.
    poll(lambda: all(stdin_of(b) == "/dev/null" for b in first), 30,
         what="the engine adopting the bridge's channel")
    time.sleep(2)
    assert w.p.poll() is None, w._err()
    os.kill(ssh, signal.SIGKILL)
    # a new ssh, logged in with the password the command kept
    new = poll(lambda: [k for k in ssh_children(w.p.pid) if k != ssh] or w.p.poll() is not None,
               60, what="a second ssh of ferry wait")
    assert w.p.poll() is None, f"ferry wait ended at the cut: {w._err()}"
    poll(lambda: set(bridges(pw)) - set(first), 60, what="the bridge of the second ssh")
    # the password is on no command line and in no environment meanwhile
    assert procs_containing(password.encode()) == []
    assert w.p.poll() is None, w._err()
    with open(go, "w"):
        pass
    rc, out, err = w.finish(timeout=120)
    assert rc == 0, (rc, err)
    assert len(PROMPT.findall(w.screen)) == 1, f"asked again: {w.screen!r}"
    assert new[0] != ssh


def test_unknown_host_key_asks_no_password(pw, sshd):
    """A refusal that a password cannot cure (the host's key is unknown)
    is said as it is: no prompt."""
    sec = password_section(pw, sshd, name="pwnokey").replace(
        f"UserKnownHostsFile={sshd['SSH_TEST_KNOWN_HOSTS']}",
        "UserKnownHostsFile=/dev/null -o StrictHostKeyChecking=yes")
    add_section(pw, sec)
    t = pw.tty("-r", "pwnokey", "submit", "true")
    rc, out, err = t.finish()
    assert rc == 1 and "Host key verification failed" in err, (rc, err)
    assert "password" not in t.screen, t.screen


def test_ctrl_c_at_the_prompt_gives_the_echo_back(pw, sshd):
    t = pw.tty("-r", "pw", "submit", "true")
    t.expect_prompt()
    assert not termios.tcgetattr(t.master)[3] & termios.ECHO, "the echo is on at the prompt"
    t.type("\x03")  # the terminal's ^C: SIGINT to ferry, whose session it is
    rc, out, err = t.finish(keep_master=True)
    assert rc == -signal.SIGINT, (rc, err)
    assert termios.tcgetattr(t.master)[3] & termios.ECHO, "ferry left the echo off"
    os.close(t.master)


def test_ctrl_z_at_the_prompt_gives_the_echo_back_and_asks_again(pw, sshd):
    """^Z at the prompt stops ferry with the terminal as it was (the shell
    and what runs next get their echo); once continued, ferry turns the
    echo off again and asks again, as ssh and sudo do."""
    t = pw.tty("-r", "pw", "submit", "true", job_control=True)
    t.expect_prompt()
    t.type("partial")
    t.type("\x1a")  # the terminal's ^Z: SIGTSTP to ferry's group, the foreground one
    poll(lambda: proc_state(t.pid) == "T", 30, what="ferry to stop")
    assert termios.tcgetattr(t.master)[3] & termios.ECHO, "stopped with the echo off"
    os.kill(t.pid, signal.SIGCONT)
    poll(lambda: len(PROMPT.findall(t.screen)) == 2 or t.p.poll() is not None, 30,
         what="the second prompt")
    assert len(PROMPT.findall(t.screen)) == 2, (t.screen, t._err())
    poll(lambda: not termios.tcgetattr(t.master)[3] & termios.ECHO, 30,
         what="the echo off at the new prompt")
    t.type(sshd["SSH_TEST_PASSWORD"] + "\n")  # what was typed before ^Z is gone
    rc, out, err = t.finish()
    assert rc == 0, err
    assert out.strip().isdigit(), out


@pytest.mark.parametrize("action", ["status", "stop"])
def test_daemon_commands_say_they_ask_no_password(pw, action):
    """daemon status and stop ask the host without starting the engine
    (ferry_engine_status(), which takes no password): they say so."""
    t = pw.tty("-r", "pw", "daemon", action)
    rc, out, err = t.finish()
    assert rc == 1 and "Permission denied" in err, (rc, err)
    assert "needs a password, which this command does not ask for" in err, err
    assert "password" not in t.screen, t.screen
