"""Hardening of the local backend's job runner (issue 21, items 1-3).

1. A job's setup (opening its stdin, stdout and stderr, changing to its
   working directory) happens in the job's own process after the fork:
   a FIFO stalls that job alone, other jobs keep starting, and kill and
   the walltime reach the stuck job.
2. A setup that fails says which step failed and on which path.
3. Kill (and a job's end) reaches every process the job started, also
   those that left its process group or session: a cgroup (v2) per job
   where the runner may create one, else the process tree in /proc (as a
   user without a delegated cgroup: the other-user cases below).
"""
import os
import re
import resource
import signal
import time

import pytest

from conftest import pid_alive, poll, wait_dead
from test_hardening_connections import soft_nofile, start_engine
from test_hardening_runner_death import fresh_runner, runner_pid
from test_security import OTHER_USER, other  # noqa: F401,F811 (other: a fixture)


def read_pids(path, n):
    def got():
        try:
            with open(path) as f:
                v = [int(x) for x in f.read().split()]
        except (OSError, ValueError):
            return None
        return v if len(v) >= n else None
    return poll(got, 15, what=f"{n} pid(s) in {path}")


def runner_log(state_dir):
    try:
        with open(os.path.join(state_dir, "runner.log")) as f:
            return f.read()
    except OSError:
        return ""


def uses_cgroup(state_dir):
    """What the runner said of itself at its start: a cgroup per job, or /proc."""
    log = poll(lambda: (lambda t: t if "job processes tracked by" in t else None)(
        runner_log(state_dir)), 10, what="the runner's first log line")
    return "a cgroup (v2) per job" in log


def all_true_jobs_done(ferry, n):
    """n short jobs submitted now all run to their end meanwhile."""
    ids = [ferry.submit("true") for _ in range(n)]
    for jid in ids:
        j = ferry.wait_ended(jid, 20)
        assert j["status"] == "done", j


# ------------------------------------------------ 1: a setup never blocks


@pytest.mark.parametrize("stream", ["-i", "-o", "-e"])
def test_fifo_stalls_its_job_alone_and_kill_reaches_it(ferry, stream):
    fifo = ferry.path("fifo")
    os.mkfifo(fifo)
    stuck = ferry.submit("cat", opts=[stream, fifo])
    j = ferry.wait_state(stuck, "running")
    # the job's process exists (it waits in open), so it has a pid
    pid = int(poll(lambda: ferry.info(stuck)["native_id"], 10, what="the stuck job's pid"))
    assert pid_alive(pid)
    # two slots: the other one keeps serving jobs, one after another
    all_true_jobs_done(ferry, 4)
    assert ferry.state(stuck) == "running"
    t0 = time.monotonic()
    ferry.run("kill", stuck)
    j = ferry.wait_ended(stuck, 15)
    assert j["exit_status"] == "killed_by_user", j
    assert time.monotonic() - t0 < 4, "the stuck job needed SIGKILL: SIGTERM was blocked"
    assert wait_dead(pid, 5)


@pytest.mark.parametrize("stream", ["-i", "-o", "-e"])
def test_walltime_ends_a_job_stuck_in_setup(ferry, stream):
    fifo = ferry.path("fifo")
    os.mkfifo(fifo)
    jid = ferry.submit("cat", opts=[stream, fifo, "--walltime", "1"])
    j = ferry.wait_ended(jid, 15)
    assert j["exit_status"] == "finished_signal", j
    assert "walltime" in j["message"], j


def test_stuck_job_goes_on_once_its_fifo_is_opened(ferry):
    # only the job waits: when a reader comes, it runs as usual
    fifo = ferry.path("fifo")
    os.mkfifo(fifo)
    jid = ferry.submit("echo", "through the fifo", opts=["-o", fifo])
    ferry.wait_state(jid, "running")
    all_true_jobs_done(ferry, 2)
    with open(fifo) as f:
        assert f.read() == "through the fifo\n"
    j = ferry.wait_ended(jid, 15)
    assert j["status"] == "done", j


# ------------------------- 1: kill and walltime before the pid is known


def stopped_runner_start(ferry, cmd, opts):
    """Stops the runner, submits cmd with opts: its start (and what the
    test sends next) waits unread in the runner's socket, so the engine
    knows no pid of it. Returns the runner's pid and the job's id."""
    runner = fresh_runner(ferry)
    os.kill(runner, signal.SIGSTOP)
    try:
        jid = ferry.submit(*cmd, opts=opts)
        j = ferry.wait_state(jid, "running")
        assert not j["native_id"], j
    except BaseException:
        os.kill(runner, signal.SIGCONT)
        raise
    return runner, jid


@pytest.mark.parametrize("stuck", ["stdin fifo", "stdout fifo", "plain"])
def test_kill_before_the_pid_is_known(ferry, stuck):
    """`ferry kill` of a job whose pid the runner has not reported yet
    (its start unread; then a setup stuck on a FIFO, or none): the runner
    gets the kill before the job's pid, and kills it as soon as it has it."""
    fifo = ferry.path("fifo")
    os.mkfifo(fifo)
    cmd, opts = {"stdin fifo": (["cat"], ["-i", fifo]), "stdout fifo": (["cat"], ["-o", fifo]),
                 "plain": (["sleep", "30"], [])}[stuck]
    runner, jid = stopped_runner_start(ferry, cmd, opts)
    try:
        ferry.run("kill", jid)
        assert not ferry.info(jid)["native_id"]
    finally:
        os.kill(runner, signal.SIGCONT)
    t0 = time.monotonic()
    j = ferry.wait_ended(jid, 15)
    assert j["exit_status"] == "killed_by_user", j
    assert time.monotonic() - t0 < 4, "the job needed SIGKILL: SIGTERM was blocked"
    if j["native_id"]:
        assert wait_dead(int(j["native_id"]), 5)


@pytest.mark.parametrize("stuck", ["stdin fifo", "stdout fifo"])
def test_walltime_of_a_job_whose_pid_came_late(ferry, stuck):
    """The walltime of a job the runner got while stopped, stuck in its
    setup: it runs from the runner's start of the job and ends it."""
    fifo = ferry.path("fifo")
    os.mkfifo(fifo)
    runner, jid = stopped_runner_start(
        ferry, ["cat"], [{"stdin fifo": "-i", "stdout fifo": "-o"}[stuck], fifo, "--walltime", "1"])
    time.sleep(1.2)  # the walltime runs from the runner's start of the job
    os.kill(runner, signal.SIGCONT)
    j = ferry.wait_ended(jid, 15)
    assert j["exit_status"] == "finished_signal" and "walltime" in j["message"], j
    assert j["native_id"] and wait_dead(int(j["native_id"]), 5)


# ------------------------------------- 2: a failed setup names its step


def _held_then_broken(ferry, opts, breaks):
    """Submits `cat` held, breaks its setup, releases it: the ended job."""
    jid = ferry.submit("cat", opts=["--hold", *opts])
    breaks()
    ferry.run("release", jid)
    return ferry.wait_ended(jid, 20)


SETUP_CASES = {
    # name: (options, what breaks them, words of the message)
    "working directory removed": (
        lambda d: ["--cwd", os.path.join(d, "wd")], lambda d: os.rmdir(os.path.join(d, "wd")),
        "working directory", "wd"),
    "stdout directory removed": (
        lambda d: ["-o", os.path.join(d, "od", "out")], lambda d: os.rmdir(os.path.join(d, "od")),
        "stdout", "od/out"),
    "stderr directory removed": (
        lambda d: ["-e", os.path.join(d, "ed", "err")], lambda d: os.rmdir(os.path.join(d, "ed")),
        "stderr", "ed/err"),
    "stdin removed": (
        lambda d: ["-i", os.path.join(d, "in")], lambda d: os.unlink(os.path.join(d, "in")),
        "stdin", "in"),
    "stdout became a directory": (
        lambda d: ["-o", os.path.join(d, "o2")], lambda d: os.mkdir(os.path.join(d, "o2")),
        "stdout", "o2"),
}


@pytest.mark.parametrize("case", sorted(SETUP_CASES))
def test_setup_failure_names_step_and_path(ferry, case):
    opts, breaks, words, path = SETUP_CASES[case]
    d = ferry.path("setup")
    for sub in ("wd", "od", "ed"):
        os.makedirs(os.path.join(d, sub))
    open(os.path.join(d, "in"), "w").close()
    j = _held_then_broken(ferry, opts(d), lambda: breaks(d))
    assert j["status"] == "failed" and j["exit_status"] == "aborted", j
    assert words in j["message"] and os.path.join(d, path) in j["message"], j["message"]
    assert not j["message"].startswith("cannot execute"), j["message"]


def test_missing_command_still_cannot_execute(ferry):
    j = ferry.wait_ended(ferry.submit("no-such-command-ferry"), 20)
    assert j["exit_status"] == "aborted", j
    assert j["message"].startswith("cannot execute 'no-such-command-ferry'"), j["message"]


SCRIPT_RUNS = {
    # how the command is named: (argv[0], options), the script in <work>/bin
    "absolute path": (lambda d: os.path.join(d, "noshebang"), lambda d: []),
    "found on the job's PATH": (lambda d: "noshebang",
                                lambda d: ["--env", f"PATH=/nonexistent:{d}:/usr/bin:/bin"]),
    "relative to the working directory": (lambda d: "./noshebang", lambda d: ["--cwd", d]),
}


@pytest.mark.parametrize("how", sorted(SCRIPT_RUNS))
def test_script_without_shebang_runs_under_sh(ferry, how):
    """As execvp does, a file the kernel will not execute (ENOEXEC: a
    script without "#!") runs under /bin/sh, with its arguments as they
    were; "cannot execute" was the message before."""
    d = ferry.path("bin")
    os.makedirs(d)
    out = ferry.path("out")
    with open(os.path.join(d, "noshebang"), "w") as f:
        f.write(f'printf "%s|%s|%s|%s" "$0" "$#" "$1" "$2" > {out}\n')
    os.chmod(os.path.join(d, "noshebang"), 0o755)
    name, opts = SCRIPT_RUNS[how]
    j = ferry.wait_ended(ferry.submit(name(d), "a b", "c*", opts=opts(d)), 20)
    assert j["status"] == "done", j
    with open(out) as f:
        zero, n, a, b = f.read().split("|")
    assert (n, a, b) == ("2", "a b", "c*")
    assert zero.endswith("noshebang")


def test_empty_executable_runs_as_an_empty_script(ferry):
    # the kernel refuses an empty file too (ENOEXEC): sh runs nothing, exit 0
    path = ferry.path("empty")
    open(path, "w").close()
    os.chmod(path, 0o755)
    j = ferry.wait_ended(ferry.submit(path), 20)
    assert j["status"] == "done", j


def test_script_not_executable_still_cannot_execute(ferry):
    # no x bit: EACCES, no fallback
    path = ferry.path("noexec")
    with open(path, "w") as f:
        f.write("echo hi\n")
    j = ferry.wait_ended(ferry.submit(path), 20)
    assert j["exit_status"] == "aborted", j
    assert j["message"].startswith(f"cannot execute '{path}'"), j["message"]
    assert "Permission denied" in j["message"], j["message"]


def _other_submit(other, *args):
    cp = other.ferry("submit", *args)
    assert cp.returncode == 0 and cp.stdout.strip().isdigit(), cp
    return cp.stdout.strip()


def _other_info(other, jid):
    import json
    cp = other.ferry("--json", "info", jid)
    assert cp.returncode == 0, cp
    return json.loads(cp.stdout)


def _other_wait_ended(other, jid, timeout=20):
    return poll(lambda: (lambda j: j if j["status"] in ("done", "failed") else None)(
        _other_info(other, jid)), timeout, what=f"job {jid} of {OTHER_USER} to end")


def test_setup_permission_failures_as_a_user(other):
    # a path a user may not write, a stdin made unreadable after the submit
    j = _other_wait_ended(other, _other_submit(other, "-o", "/etc/ferry-test-x", "--", "true"))
    assert j["exit_status"] == "aborted", j
    assert "stdout '/etc/ferry-test-x'" in j["message"], j["message"]
    assert "Permission denied" in j["message"], j["message"]
    assert not os.path.exists("/etc/ferry-test-x")
    stdin = os.path.join(other.base, "work", "in")
    cp = other.run("sh", "-c", f"echo x > {stdin}")
    assert cp.returncode == 0, cp
    jid = _other_submit(other, "--hold", "-i", stdin, "--", "cat")
    os.chmod(stdin, 0)
    assert other.ferry("release", jid).returncode == 0
    j = _other_wait_ended(other, jid)
    assert j["exit_status"] == "aborted", j
    assert f"stdin '{stdin}'" in j["message"] and "Permission denied" in j["message"], j


# ----------------------------------- 3: kill reaches escaped processes

# Each writes the pids of the processes that escape, one per line, to $P,
# then waits; every one of them must be dead after `ferry kill`.
ESCAPES = {
    "setsid child": "setsid sh -c 'echo $$ >> $P; exec sleep 1001' & wait",
    "job control": "bash -c 'set -m; sh -c \"echo \\$\\$ >> $P; exec sleep 502\" & "
                   "sh -c \"echo \\$\\$ >> $P; exec sleep 503\"'",
    "double fork daemon": "( setsid sh -c 'echo $$ >> $P; exec sleep 1003' & ) ; sleep 1000",
    "own group": "perl -e 'setpgrp(0,0); open F, \">>\", $ENV{P}; print F \"$$\\n\"; "
                 "close F; sleep 1004' & wait",
}
NPIDS = {"setsid child": 1, "job control": 2, "double fork daemon": 1, "own group": 1}


@pytest.mark.parametrize("shape", sorted(ESCAPES))
def test_kill_reaches_escaped_processes(ferry, shape):
    pids_file = ferry.path("pids")
    jid = ferry.submit("sh", "-c", ESCAPES[shape], opts=["--env", f"P={pids_file}"])
    pids = read_pids(pids_file, NPIDS[shape])
    main = int(poll(lambda: ferry.info(jid)["native_id"], 10, what="the job's pid"))
    for pid in pids:
        assert pid_alive(pid)
        assert os.getsid(pid) != main or shape in ("job control", "own group")
    if uses_cgroup(ferry.state_dir):
        with open(f"/proc/{pids[0]}/cgroup") as f:
            assert re.search(r"^0::/.*ferry\.\d+\.%d$" % jid, f.read(), re.M)
    ferry.run("kill", jid)
    j = ferry.wait_ended(jid, 15)
    assert j["exit_status"] == "killed_by_user", j
    for pid in pids:
        assert wait_dead(pid, 5), f"escaped process {pid} ({shape}) survived the kill"


def test_escaped_processes_die_with_a_job_that_ends(ferry):
    # the job ends regularly; what it left behind is killed, as Slurm does
    pids_file = ferry.path("pids")
    jid = ferry.submit("sh", "-c",
                       "setsid sh -c 'echo $$ >> $P; exec sleep 1001' & "
                       "( setsid sh -c 'echo $$ >> $P; exec sleep 1002' & ); "
                       "sleep 1003 & echo $! >> $P; "
                       "while [ $(wc -l < $P) -lt 3 ]; do sleep 0.05; done",
                       opts=["--env", f"P={pids_file}"])
    j = ferry.wait_ended(jid, 20)
    assert j["status"] == "done", j
    for pid in read_pids(pids_file, 3):
        assert wait_dead(pid, 5), f"process {pid} outlived its job"


def test_walltime_reaches_escaped_processes(ferry):
    pids_file = ferry.path("pids")
    jid = ferry.submit("sh", "-c", ESCAPES["double fork daemon"],
                       opts=["--env", f"P={pids_file}", "--walltime", "2"])
    pids = read_pids(pids_file, 1)
    j = ferry.wait_ended(jid, 20)
    assert "walltime" in j["message"], j
    assert wait_dead(pids[0], 5)


def test_cgroups_are_removed(ferry):
    jid = ferry.submit("true")
    ferry.wait_ended(jid, 20)
    if not uses_cgroup(ferry.state_dir):
        pytest.skip("SKIPPED LOUDLY: the runner tracks jobs through /proc here (no cgroup "
                    "it may create), so there are no cgroups to remove")
    m = re.search(r"ferry-runner (\d+): job processes tracked by a cgroup \(v2\) per job "
                  r"in '([^']+)'", runner_log(ferry.state_dir))
    runner, root = m.group(1), m.group(2)
    jid2 = ferry.submit("sh", "-c", "setsid sleep 1000 & exit 0")
    ferry.wait_ended(jid2, 20)
    names = {f"ferry.{runner}.{jid}", f"ferry.{runner}.{jid2}"}
    poll(lambda: not names & set(os.listdir(root)), 10, what="the jobs' cgroups to go")


@pytest.mark.parametrize("shape", ["setsid child", "job control", "double fork daemon"])
def test_kill_reaches_escaped_processes_as_a_user(other, shape):
    # no cgroup for this user here (unless delegated): /proc does it
    pids_file = os.path.join(other.base, "work", "pids")
    jid = _other_submit(other, "--env", f"P={pids_file}", "--", "sh", "-c", ESCAPES[shape])
    pids = read_pids(pids_file, NPIDS[shape])
    state_dir = other.state_dir
    if "a cgroup (v2)" not in runner_log(state_dir):
        assert "/proc" in runner_log(state_dir)
    assert other.ferry("kill", jid).returncode == 0
    j = _other_wait_ended(other, jid)
    assert j["exit_status"] == "killed_by_user", j
    for pid in pids:
        assert wait_dead(pid, 5), f"escaped process {pid} ({shape}) survived the kill"


def test_suspend_reaches_escaped_processes(ferry):
    pids_file = ferry.path("pids")
    jid = ferry.submit("sh", "-c", ESCAPES["double fork daemon"],
                       opts=["--env", f"P={pids_file}"])
    pid = read_pids(pids_file, 1)[0]
    ferry.run("stop", jid)
    stopped = lambda: open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()[0] == "T"
    poll(stopped, 10, what="the escaped process to stop")
    ferry.run("restart", jid)
    poll(lambda: not stopped(), 10, what="the escaped process to continue")
    ferry.run("kill", jid)
    ferry.wait_ended(jid, 15)
    assert wait_dead(pid, 5)


# ------------------------- the runner's descriptors and the jobs' limit


def test_runner_keeps_the_raised_limit_for_many_jobs(ferry):
    """An engine started with `ulimit -n 256` (hard 2048) raises its soft
    limit, and so does its runner, which holds descriptors for each job at
    once (a setup pipe while a job starts, a cgroup while it runs): 300
    jobs stuck opening a FIFO all start, where a runner at 256 ran out of
    descriptors after about 120 and failed the rest. Each job gets the 256
    the engine was started with."""
    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    if hard != resource.RLIM_INFINITY and hard < 2048:
        pytest.skip(f"the hard limit here ({hard}) is too low to raise from 256")
    n = 300
    ferry.config(f"[local]\nscheduler = local\nslots = {n}\n")
    start_engine(ferry, nofile=(256, 2048))
    fifo, out = ferry.path("fifo"), ferry.path("limits")
    os.mkfifo(fifo)
    os.mkdir(out)
    bulk = ferry.path("bulk.txt")
    with open(bulk, "w") as f:
        for k in range(n):
            f.write(f"sh -c 'ulimit -n > {out}/{k}'\n")
    ids = set(int(x) for x in ferry.run("submit", "-i", fifo, "--bulk", bulk).stdout.split())
    assert len(ids) == n

    def all_stuck():
        jobs = [j for j in ferry.json("jobs") if j["id"] in ids]
        failed = [j for j in jobs if j["status"] not in ("queued_active", "running")]
        assert not failed, failed[:3]
        return all(j["native_id"] for j in jobs)
    poll(all_stuck, 60, 0.5, what=f"{n} jobs waiting in their setup")
    runner = runner_pid(ferry)
    assert soft_nofile(runner) == 2048
    assert len(os.listdir(f"/proc/{runner}/fd")) > 256
    w = os.open(fifo, os.O_WRONLY)  # every job's open of its stdin returns
    try:
        ferry.run("wait", "--timeout", "60", *sorted(ids), timeout=70)
    finally:
        os.close(w)
    jobs = [j for j in ferry.json("jobs") if j["id"] in ids]
    assert all(j["status"] == "done" for j in jobs), [j for j in jobs if j["status"] != "done"][:3]
    for k in range(n):
        with open(os.path.join(out, str(k))) as f:
            assert f.read().strip() == "256", k
