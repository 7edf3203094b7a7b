"""`ferry top` in a real terminal: each test runs it in a detached tmux
session of a fixed size (its own tmux server, on a socket in the test's
directory), types with `tmux send-keys` and reads the screen with
`tmux capture-pane -p`. Every check polls the screen (or the CLI) until
a deadline; no sleep is the proof of anything.

The shell around it (bash: it goes on after a child that handled
Ctrl-C and exited by itself) writes top's exit status and the terminal's
modes after it, so that a clean exit and a restored terminal are seen."""
import os
import re
import shlex
import subprocess
import time

import pytest

from conftest import poll, transport_world


class Top:
    def __init__(self, f, width=100, height=24, args=()):
        self.f = f
        self.sock = os.path.join(f.base, "tmux.sock")
        self.exit_file = os.path.join(f.base, "top.exit")
        self.stty_file = os.path.join(f.base, "top.stty")
        script = os.path.join(f.base, "top.sh")
        with open(script, "w") as s:
            s.write(f"{shlex.quote(f.bin)} top {' '.join(map(shlex.quote, args))}\n"
                    f"echo EXIT=$? > {shlex.quote(self.exit_file)}.tmp\n"
                    f"stty -a > {shlex.quote(self.stty_file)}\n"
                    f"mv {shlex.quote(self.exit_file)}.tmp {shlex.quote(self.exit_file)}\n")
        self.tmux("new-session", "-d", "-s", "top", "-x", str(width), "-y", str(height),
                  f"cd {shlex.quote(f.work)} && exec bash {shlex.quote(script)}")

    def tmux(self, *args, check=True):
        cp = subprocess.run(["tmux", "-f", "/dev/null", "-S", self.sock, *args],
                            env=self.f.env, capture_output=True, text=True, timeout=30)
        if check and cp.returncode != 0:
            raise AssertionError(f"tmux {' '.join(args)} exited {cp.returncode}: {cp.stderr}")
        return cp.stdout

    def keys(self, *keys):
        self.tmux("send-keys", "-t", "top", *keys)

    def confirm(self, key, jid, answer="y"):
        """k, s or r on the selected job jid, then answer at its question."""
        verb = {"k": "kill", "s": "stop", "r": "restart"}[key]
        self.keys(key)
        self.wait_text(f"{verb} job {jid}? (y/n)")
        self.keys(answer)

    def filter_name(self, text, erase=0):
        """/, erase characters of the filter shown, type text, Enter."""
        self.keys("/", *["BSpace"] * erase, *text, "Enter")

    def quit(self):
        self.keys("q")
        assert self.wait_exit() == "EXIT=0"

    def screen(self):
        return self.tmux("capture-pane", "-p", "-t", "top")

    def wait(self, pred, timeout=10.0, what="the screen"):
        """Polls the screen until pred(text) is true; returns the text."""
        last = [""]

        def check():
            if self.exited():
                raise AssertionError(f"ferry top exited ({self.exit_status()}) while waiting "
                                     f"for {what}; last screen:\n{last[0]}")
            last[0] = self.screen()
            return last[0] if pred(last[0]) else None
        try:
            return poll(check, timeout, 0.05, what)
        except AssertionError as ex:
            raise AssertionError(f"{ex}\nscreen:\n{last[0]}") from None

    def wait_text(self, text, timeout=10.0):
        return self.wait(lambda s: text in s, timeout, repr(text))

    def row(self, screen, jid):
        """The table's line of job jid, or None."""
        for line in screen.splitlines():
            if re.match(rf"\s*{jid} ", line):
                return line
        return None

    def wait_row(self, jid, pred, timeout=10.0, what=None):
        return self.wait(lambda s: (r := self.row(s, jid)) is not None and pred(r), timeout,
                         what or f"the row of job {jid}")

    def exited(self):
        return os.path.exists(self.exit_file)

    def exit_status(self):
        with open(self.exit_file) as fh:
            return fh.read().strip()

    def wait_exit(self, timeout=10.0):
        poll(self.exited, timeout, 0.05, "ferry top to exit")
        return self.exit_status()

    def close(self):
        self.tmux("kill-server", check=False)


@pytest.fixture
def top_factory(ferry):
    made = []

    def make(f=ferry, **kw):
        t = Top(f, **kw)
        made.append(t)
        return t
    yield make
    for t in made:
        t.close()


def sleeper(ferry, name):
    jid = ferry.submit("sleep", "300", opts=("-n", name))
    ferry.wait_state(jid, "running")
    return jid


def assert_terminal_restored(t):
    with open(t.stty_file) as fh:
        modes = fh.read()
    assert re.search(r"(^|\s)icanon(\s|$)", modes) and re.search(r"(^|\s)echo(\s|$)", modes), \
        f"terminal left in another mode: {modes}"


def test_table_shows_the_jobs_and_a_state_change_within_2s(ferry, top_factory):
    a = sleeper(ferry, "first-sleeper")
    b = sleeper(ferry, "second-sleeper")
    held = ferry.submit("true", opts=("-n", "held-one", "--hold"))
    t = top_factory()
    s = t.wait(lambda s: all(t.row(s, j) for j in (a, b, held)), what="the three jobs")
    assert "first-sleeper" in t.row(s, a) and "running" in t.row(s, a)
    assert "held-one" in t.row(s, held) and "user_on_hold" in t.row(s, held)
    assert re.search(r"3 jobs\b", s), s
    # both slots are taken: released, it waits queued, a change the engine makes at once
    ferry.run("release", held)
    t.wait_row(held, lambda r: "queued_active" in r, timeout=2.0, what="the release")
    # a job ending: the slot goes to the released job, which runs and ends done
    ferry.run("kill", a)
    t.wait_row(a, lambda r: "failed" in r and "killed" in r, timeout=10.0)
    t.wait_row(held, lambda r: "done" in r and "exit 0" in r, timeout=15.0)
    t.quit()


def test_kill_asks_then_kills(ferry, top_factory):
    jid = sleeper(ferry, "victim")
    t = top_factory()
    t.wait_row(jid, lambda r: "running" in r)
    t.confirm("k", jid, "n")
    t.wait_text("not done")
    assert ferry.run("status", jid).stdout.strip() == "running"
    t.confirm("k", jid)
    t.wait_text(f"job {jid} killed")
    poll(lambda: ferry.run("status", jid).stdout.strip() == "failed", 15, 0.1,
         "the job to end")
    assert ferry.info(jid)["exit_status"] == "killed_by_user"
    t.wait_row(jid, lambda r: "killed" in r)


def test_stop_and_restart_keys(ferry, top_factory):
    jid = sleeper(ferry, "pausable")
    t = top_factory()
    t.wait_row(jid, lambda r: "running" in r)
    t.confirm("s", jid)
    t.wait_row(jid, lambda r: "user_suspended" in r)
    assert ferry.run("status", jid).stdout.strip() == "user_suspended"
    t.confirm("r", jid)
    t.wait_row(jid, lambda r: "running" in r)
    # a refusal is said, and top goes on: restarting an ended job
    ferry.run("kill", jid)
    t.wait_row(jid, lambda r: "failed" in r)
    t.confirm("r", jid)
    t.wait_text(f"cannot restart job {jid}: job {jid} has ended")
    t.quit()


def test_resize_redraws_to_the_new_size(ferry, top_factory):
    name = "long-" + "abcdefghij" * 6 + "-end"
    jid = ferry.submit("true", opts=("-n", name, "--hold"))
    more = [ferry.submit("true", opts=("-n", f"filler{i}", "--hold")) for i in range(30)]
    t = top_factory(width=80, height=12)
    s = t.wait_row(jid, lambda r: "user_on_hold" in r)
    assert name not in s  # the name column is too narrow for it
    assert t.row(s, more[-1]) is None  # and the page too short for all
    t.tmux("resize-window", "-t", "top", "-x", "160", "-y", "40")
    s = t.wait(lambda s: name in s and t.row(s, more[-1]) is not None,
               what="the whole name and the last job after widening")
    assert max(len(line) for line in s.splitlines()) > 100
    t.tmux("resize-window", "-t", "top", "-x", "70", "-y", "12")
    s = t.wait(lambda s: name not in s and t.row(s, more[-1]) is None
               and len(s.splitlines()) <= 12, what="the narrow table again")
    assert all(len(line) <= 70 for line in s.splitlines()), s


def test_a_narrow_terminal_cuts_every_line_at_its_edge(ferry, top_factory):
    """20 columns: each line is cut, none wraps onto the next; the title,
    the header, the row and the keys' line keep their rows."""
    jid = ferry.submit("true", opts=("-n", "a-name-wider-than-the-screen", "--hold"))
    t = top_factory(width=20, height=8)
    s = t.wait(lambda s: t.row(s, jid) is not None and s.startswith("ferry top: local  1"),
               what="the narrow table")
    lines = s.split("\n")[:8]
    assert all(len(line) <= 20 for line in lines), s
    assert lines[0] == "ferry top: local  1", s  # the title, cut
    assert lines[1].split() == ["ID", "NAME", "STATE"], s
    assert lines[2].split() == [str(jid), "a-na", "user_o"], s
    assert lines[7].startswith("[state any"), s
    assert all(not line.strip() for line in lines[3:7]), s
    t.keys("Enter")
    s = t.wait_text(f"job {jid} stdout")
    assert all(len(line) <= 20 for line in s.splitlines()), s
    t.keys("q")
    # narrower still, down to one cell: top goes on
    for width, height in ((5, 3), (1, 1), (20, 8)):
        t.tmux("resize-window", "-t", "top", "-x", str(width), "-y", str(height))
    t.wait(lambda s: s.startswith("ferry top: local  1"), what="the table after resizes")
    t.quit()


def test_q_exits_0_and_restores_the_terminal(ferry, top_factory):
    t = top_factory()
    t.wait_text("ferry top: local")
    t.quit()
    assert_terminal_restored(t)


# Ctrl-C (SIGINT) and Ctrl-\ (SIGQUIT, whose default is a core dump with
# the terminal left in curses' modes)
@pytest.mark.parametrize("key", ["C-c", "C-\\"])
def test_ctrl_c_and_ctrl_backslash_exit_cleanly(ferry, top_factory, key):
    jid = ferry.submit("true", opts=("--hold",))
    t = top_factory()
    t.wait_row(jid, lambda r: "user_on_hold" in r)
    t.keys(key)
    assert t.wait_exit() == "EXIT=0"
    assert_terminal_restored(t)
    assert ferry.run("status", jid).stdout.strip() == "user_on_hold"


def test_enter_shows_stdout_then_stderr(ferry, top_factory):
    jid = ferry.submit("sh", "-c", "echo out-line-1; echo out-line-2; echo err-line >&2",
                       opts=("-n", "talker"))
    ferry.run("wait", jid)
    t = top_factory()
    t.wait_row(jid, lambda r: "done" in r)
    t.keys("Enter")
    s = t.wait_text("out-line-2")
    assert f"job {jid} stdout" in s and "out-line-1" in s and "err-line" not in s
    t.keys("Tab")
    s = t.wait_text("err-line")
    assert f"job {jid} stderr" in s and "out-line" not in s
    t.keys("q")  # back to the table, not out
    t.wait_row(jid, lambda r: "talker" in r)
    assert not t.exited()


def test_output_is_followed_while_the_job_runs(ferry, top_factory):
    flag = ferry.path("go")
    jid = ferry.submit("sh", "-c", f"echo before; while [ ! -e {flag} ]; do sleep 0.05; done; "
                       "echo after", opts=("-n", "follower"))
    t = top_factory()
    t.wait_row(jid, lambda r: "running" in r)
    t.keys("Enter")
    t.wait_text("before")
    open(flag, "w").close()
    t.wait_text("after", timeout=10)
    t.wait(lambda s: "ended" in s.splitlines()[0], what="the title to say ended")


def test_state_and_name_filters(ferry, top_factory):
    ok = ferry.submit("true", opts=("-n", "alpha-ok"))
    bad = ferry.submit("false", opts=("-n", "beta-bad"))
    held = ferry.submit("true", opts=("-n", "alpha-held", "--hold"))
    ferry.run("wait", ok, bad, check=False)
    t = top_factory()
    t.wait(lambda s: all(t.row(s, j) for j in (ok, bad, held)), what="all jobs")
    t.keys("F")  # from any back to the last state: failed
    s = t.wait(lambda s: "state failed" in s and t.row(s, ok) is None, what="failed only")
    assert t.row(s, bad) and "beta-bad" in t.row(s, bad) and t.row(s, held) is None
    t.keys("F")
    s = t.wait(lambda s: "state done" in s and t.row(s, bad) is None, what="done only")
    assert t.row(s, ok) and t.row(s, held) is None
    t.keys("f", "f")  # failed, then any again
    t.wait(lambda s: "state any" in s and all(t.row(s, j) for j in (ok, bad, held)),
           what="any state again")
    t.filter_name("alpha")
    s = t.wait(lambda s: "name alpha" in s and t.row(s, bad) is None, what="name filter")
    assert t.row(s, ok) and t.row(s, held)
    t.filter_name("", erase=5)
    t.wait(lambda s: "name *" in s and all(t.row(s, j) for j in (ok, bad, held)),
           what="no name filter")


def test_sort_and_pages(ferry, top_factory):
    ids = [ferry.submit("true", opts=("-n", f"job-{chr(ord('z') - i)}", "--hold"))
           for i in range(15)]
    t = top_factory(height=10)  # 7 rows a page
    s = t.wait(lambda s: t.row(s, ids[0]) is not None, what="the first page")
    assert t.row(s, ids[6]) and t.row(s, ids[7]) is None
    t.keys("NPage")
    s = t.wait(lambda s: t.row(s, ids[7]) is not None and t.row(s, ids[0]) is None,
               what="the second page")
    assert t.row(s, ids[13]) and t.row(s, ids[14]) is None
    t.keys("NPage")
    t.wait(lambda s: t.row(s, ids[14]) is not None and t.row(s, ids[13]) is None,
           what="the last page")
    t.keys("PPage")
    t.wait(lambda s: t.row(s, ids[7]) is not None, what="the second page again")
    t.keys("Home")
    t.wait(lambda s: t.row(s, ids[0]) is not None, what="the first page again")
    t.keys("o")  # by name: job-s ... job-z, the reverse of their ids
    s = t.wait(lambda s: "sort name+" in s, what="sort by name")
    rows = [line.split()[0] for line in s.splitlines() if re.match(r"\s*\d+ job-", line)]
    assert rows == [str(j) for j in reversed(ids[:7])], s


def test_counts_the_page_and_a_bounded_name_scan_of_many_jobs(ferry, top_factory):
    n = 25000
    bulk = ferry.path("bulk")
    with open(bulk, "w") as fh:
        fh.write("true\n" * n)
    ferry.run("submit", "--hold", "--bulk", bulk, timeout=120)
    needle = ferry.submit("true", opts=("-n", "the-needle", "--hold"))
    t = top_factory(height=20)
    s = t.wait_text(f"{n + 1} jobs  user_on_hold {n + 1}", timeout=30)
    assert t.row(s, 17) and t.row(s, 18) is None  # 17 rows: the page, not the list
    # a name filter reads a bounded part of the table a refresh (20,000 jobs)
    t.filter_name("needle")
    t.wait_text("(names searched up to job 20000: PgDn searches on)", timeout=30)
    t.keys("NPage")
    s = t.wait(lambda s: t.row(s, needle) is not None, timeout=30, what="the needle")
    assert "the-needle" in t.row(s, needle)


def test_refuses_without_a_terminal_and_json(ferry):
    cp = ferry.run("top", check=False, input="")
    assert cp.returncode == 1 and "top needs a terminal" in cp.stderr, cp
    cp = ferry.run("top", "--json", check=False)
    assert cp.returncode == 2 and "--json is not for top" in cp.stderr, cp
    cp = ferry.run("top", "--interval", "0", check=False)
    assert cp.returncode == 2 and "--interval" in cp.stderr, cp
    cp = ferry.run("top", "extra", check=False)
    assert cp.returncode == 2 and "unexpected argument 'extra'" in cp.stderr, cp


def test_top_over_ssh(request, top_factory):
    f = transport_world(request, "ssh", "fy-top-")
    jid = f.submit("sleep", "300", opts=("-n", "far-away"))
    f.wait_state(jid, "running", timeout=30)
    t = top_factory(f)
    t.wait_row(jid, lambda r: "far-away" in r and "running" in r, timeout=30)
    assert "ferry top: remote" in t.screen()
    t.confirm("k", jid)
    poll(lambda: f.run("status", jid).stdout.strip() == "failed", 30, 0.1, "the kill")
    t.wait_row(jid, lambda r: "killed" in r, timeout=10)
    t.quit()
