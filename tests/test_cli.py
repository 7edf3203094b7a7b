"""End-to-end tests of the `ferry` CLI against a real engine, run twice: on
the local socket, and through ssh to the test sshd (transport "ssh"), where
the same engine is reached with `ssh host ferry bridge`."""
import json
import os
import re
import signal
import stat
import subprocess
import time

import pytest

from conftest import (JOB_FIELDS, SRC_DIR, ferry_world, live_pids_in_pgroup, pid_alive, poll,
                      proc_comm, proc_environ, proc_pgid, wait_dead)


@pytest.fixture(params=["local", "ssh"])
def ferry(request):
    return ferry_world(request, request.param)


def read(path):
    with open(path) as f:
        return f.read()


def read_lines(path):
    try:
        with open(path) as f:
            return f.read().splitlines()
    except FileNotFoundError:
        return []


def write_script(path, text, mode=0o755):
    with open(path, "w") as f:
        f.write(text)
    os.chmod(path, mode)
    return path


# ------------------------------------------------------------ job outcomes


def test_success(ferry):
    out = ferry.path("out.txt")
    jid = ferry.submit("echo", "hello", "world", opts=["--name", "greet", "--stdout", out])
    ferry.run("wait", "--timeout", "30", jid, timeout=40)
    j = ferry.info(jid)
    assert j["status"] == "done"
    assert j["exit_status"] == "finished_regularly"
    assert j["exit_value"] == 0
    assert j["name"] == "greet"
    assert j["command"] == ["echo", "hello", "world"]
    assert read(out) == "hello world\n"
    assert j["stdout_path"] == out
    assert j["submitted_at"] <= j["started_at"] <= j["ended_at"]
    assert j["ended_at"] - j["submitted_at"] < 30


def test_success_default_stdout_in_job_dir(ferry):
    jid = ferry.submit("sh", "-c", "echo to-default-out; echo to-default-err >&2")
    ferry.run("wait", "--timeout", "30", jid, timeout=40)
    j = ferry.info(jid)
    assert j["status"] == "done"
    assert read(j["stdout_path"]) == "to-default-out\n"
    assert read(j["stderr_path"]) == "to-default-err\n"
    # the default files live in the job's directory of the state dir
    jobdir = os.path.join(ferry.state_dir, "jobs", str(jid))
    assert os.path.isdir(jobdir), f"no job directory {jobdir}"
    assert os.path.realpath(j["stdout_path"]).startswith(os.path.realpath(jobdir) + "/")
    assert ferry.run("logs", jid).stdout == "to-default-out\n"


def test_nonzero_exit(ferry):
    jid = ferry.submit("sh", "-c", "exit 3")
    cp = ferry.run("wait", "--timeout", "30", jid, check=False, timeout=40)
    assert cp.returncode == 4, cp
    j = ferry.info(jid)
    assert j["status"] == "failed"
    assert j["exit_status"] == "finished_regularly"
    assert j["exit_value"] == 3


@pytest.mark.parametrize("sig", [9, 15])
def test_killed_by_signal(ferry, sig):
    jid = ferry.submit("sh", "-c", f"kill -{sig} $$")
    cp = ferry.run("wait", "--timeout", "30", jid, check=False, timeout=40)
    assert cp.returncode == 4, cp
    j = ferry.info(jid)
    assert j["status"] == "failed"
    assert j["exit_status"] == "finished_signal"
    assert j["signal"] == sig


def test_kill_by_user_kills_process_group(ferry):
    pids = ferry.path("pids")
    # the job shell writes its pid, starts a child sleep and writes its pid
    jid = ferry.submit("sh", "-c", f"echo $$ > {pids}; sleep 100 & echo $! >> {pids}; wait")
    ferry.wait_state(jid, "running")
    lines = poll(lambda: (lambda l: l if len(l) == 2 else None)(read_lines(pids)), 10,
                 what="the job's pid file")
    shpid, sleeppid = int(lines[0]), int(lines[1])
    assert pid_alive(shpid) and pid_alive(sleeppid)
    pgid = proc_pgid(shpid)
    assert proc_pgid(sleeppid) == pgid
    # the job must run in its own process group, not the engine's or ours
    assert pgid != os.getpgrp()
    t0 = time.monotonic()
    ferry.run("kill", jid)
    cp = ferry.run("wait", "--timeout", "20", jid, check=False, timeout=30)
    assert cp.returncode == 4, cp
    j = ferry.info(jid)
    assert j["status"] == "failed"
    assert j["exit_status"] == "killed_by_user"
    assert wait_dead(shpid, 10), "job shell survived the kill"
    assert wait_dead(sleeppid, 10), "the job's child sleep survived the kill"
    assert live_pids_in_pgroup(pgid) == [], "processes of the job's group survived"
    assert time.monotonic() - t0 < 15


def test_missing_executable(ferry):
    missing = "/nonexistent/dir/no-such-program"
    jid = ferry.submit(missing, "arg")
    cp = ferry.run("wait", "--timeout", "30", jid, check=False, timeout=40)
    assert cp.returncode == 4, cp
    j = ferry.info(jid)
    assert j["status"] == "failed"
    assert j["exit_status"] == "aborted"
    assert j["message"] and missing in j["message"], j["message"]


def test_missing_executable_in_path(ferry):
    jid = ferry.submit("no-such-program-ferry-test")
    ferry.run("wait", "--timeout", "30", jid, check=False, timeout=40)
    j = ferry.info(jid)
    assert j["status"] == "failed"
    assert j["exit_status"] == "aborted"
    assert j["message"] and "no-such-program-ferry-test" in j["message"], j["message"]


def test_non_executable_file(ferry):
    script = write_script(ferry.path("notexec.sh"), "#!/bin/sh\necho should-not-run\n", 0o644)
    jid = ferry.submit(script)
    cp = ferry.run("wait", "--timeout", "30", jid, check=False, timeout=40)
    assert cp.returncode == 4, cp
    j = ferry.info(jid)
    assert j["status"] == "failed"
    assert j["exit_status"] == "aborted"
    assert j["message"] and script in j["message"], j["message"]
    if j["stdout_path"] and os.path.exists(j["stdout_path"]):
        assert "should-not-run" not in read(j["stdout_path"])


@pytest.mark.parametrize("walltime", ["1", "00:00:01"])
def test_walltime_exceeded(ferry, walltime):
    t0 = time.monotonic()
    jid = ferry.submit("sleep", "30", opts=["--walltime", walltime])
    cp = ferry.run("wait", "--timeout", "20", jid, check=False, timeout=30)
    elapsed = time.monotonic() - t0
    assert cp.returncode == 4, cp
    j = ferry.info(jid)
    assert j["walltime_s"] == 1
    assert j["status"] == "failed"
    assert j["exit_status"] == "finished_signal"
    assert j["message"] and "walltime" in j["message"].lower(), j["message"]
    assert elapsed < 10, f"walltime 1 s job ended after {elapsed:.1f}s"
    assert j["ended_at"] - j["started_at"] >= 0.9


def test_walltime_kills_process_group(ferry):
    pids = ferry.path("pids")
    jid = ferry.submit("sh", "-c", f"echo $$ > {pids}; sleep 60 & echo $! >> {pids}; wait",
                       opts=["--walltime", "1"])
    j = ferry.wait_ended(jid, 20)
    assert j["exit_status"] == "finished_signal" and "walltime" in j["message"].lower(), j
    for pid in map(int, read_lines(pids)):
        assert wait_dead(pid, 10), "a process of the job outlived its walltime"


def test_invalid_walltime_refused(ferry):
    for bad in ("abc", "1:2:3:4", "-5", "00:61:00x"):
        cp = ferry.run("submit", "--walltime", bad, "--", "true", check=False)
        assert cp.returncode in (1, 2), (bad, cp)
        assert "walltime" in cp.stderr.lower(), (bad, cp.stderr)


# ------------------------------------------------------- hold / stop / etc


def test_hold_then_release(ferry):
    ran = ferry.path("ran")
    jid = ferry.submit("sh", "-c", f"echo ran > {ran}", opts=["--hold"])
    assert ferry.state(jid) == "user_on_hold"
    time.sleep(1.0)
    assert ferry.state(jid) == "user_on_hold"
    assert not os.path.exists(ran), "a held job ran"
    ferry.run("release", jid)
    ferry.run("wait", "--timeout", "30", jid, timeout=40)
    assert ferry.state(jid) == "done"
    assert read(ran) == "ran\n"


def _fill_slots(ferry, n=2):
    ids = [ferry.submit("sleep", "60") for _ in range(n)]
    for i in ids:
        ferry.wait_state(i, "running")
    return ids


def test_stop_restart_queued_job(ferry):
    sleepers = _fill_slots(ferry)
    ran = ferry.path("ran")
    jid = ferry.submit("sh", "-c", f"echo ran > {ran}")
    assert ferry.state(jid) == "queued_active"
    ferry.run("stop", jid)
    assert ferry.state(jid) == "user_on_hold"
    ferry.run("kill", *sleepers)
    ferry.run("wait", "--timeout", "20", *sleepers, check=False, timeout=30)
    for s in sleepers:
        assert ferry.state(s) == "failed"
    time.sleep(1.0)  # slots free now; a held job must still not start
    assert ferry.state(jid) == "user_on_hold"
    assert not os.path.exists(ran)
    ferry.run("restart", jid)
    ferry.run("wait", "--timeout", "30", jid, timeout=40)
    assert ferry.state(jid) == "done"
    assert read(ran) == "ran\n"


def test_hold_release_commands_on_queued_job(ferry):
    sleepers = _fill_slots(ferry)
    jid = ferry.submit("true")
    assert ferry.state(jid) == "queued_active"
    ferry.run("hold", jid)
    assert ferry.state(jid) == "user_on_hold"
    ferry.run("release", jid)
    assert ferry.state(jid) == "queued_active"
    ferry.run("kill", *sleepers)
    ferry.run("wait", "--timeout", "30", jid, timeout=40)
    assert ferry.state(jid) == "done"


def test_control_on_ended_job_is_refused(ferry):
    jid = ferry.submit("true")
    ferry.run("wait", "--timeout", "30", jid, timeout=40)
    for action in ("stop", "restart", "hold", "release"):
        cp = ferry.run(action, jid, check=False)
        assert cp.returncode == 1, (action, cp)
        assert cp.stderr.strip(), f"{action} on an ended job gave no message"
    # killing an ended job does nothing and is not an error
    ferry.run("kill", jid)
    assert ferry.state(jid) == "done"


@pytest.mark.parametrize("where", ["job_shell", "child_process"])
def test_suspend_resume_running_job(ferry, where):
    counter = ferry.path("counter")
    loop = f"i=0; while :; do i=$((i+1)); echo $i >> {counter}; sleep 0.1; done"
    if where == "child_process":  # the whole group must stop, not only the leader
        loop = f"( {loop} ) & wait"
    jid = ferry.submit("sh", "-c", loop)
    ferry.wait_state(jid, "running")
    poll(lambda: len(read_lines(counter)) >= 3, 10, what="the counter to grow")
    ferry.run("stop", jid)
    assert ferry.state(jid) == "user_suspended"
    time.sleep(0.3)  # let a write in flight land
    n1 = len(read_lines(counter))
    time.sleep(1.5)
    n2 = len(read_lines(counter))
    assert n2 == n1, f"a suspended job kept running ({n1} -> {n2} lines)"
    assert ferry.state(jid) == "user_suspended"
    ferry.run("restart", jid)
    assert ferry.state(jid) == "running"
    poll(lambda: len(read_lines(counter)) >= n2 + 3, 10, what="the counter to grow again")
    ferry.run("kill", jid)
    ferry.wait_ended(jid)
    assert ferry.info(jid)["exit_status"] == "killed_by_user"


def test_kill_suspended_job(ferry):
    pidf = ferry.path("pid")
    jid = ferry.submit("sh", "-c", f"echo $$ > {pidf}; exec sleep 100")
    ferry.wait_state(jid, "running")
    pid = int(poll(lambda: read_lines(pidf), 10, what="pid file")[0])
    ferry.run("stop", jid)
    assert ferry.state(jid) == "user_suspended"
    ferry.run("kill", jid)
    j = ferry.wait_ended(jid, 20)
    assert j["status"] == "failed" and j["exit_status"] == "killed_by_user"
    assert wait_dead(pid, 10), "a suspended job survived kill"


# -------------------------------------------------------------- output


def test_logs_of_running_job(ferry):
    jid = ferry.submit("sh", "-c", "echo first line; sleep 30")
    ferry.wait_state(jid, "running")
    out = poll(lambda: (lambda cp: cp.stdout if "first line" in cp.stdout else None)(
        ferry.run("logs", jid)), 10, what="logs to show the first line")
    assert out == "first line\n"
    assert ferry.state(jid) == "running", "the line must be readable while the job runs"
    ferry.run("kill", jid)
    ferry.wait_ended(jid)


def test_logs_follow(ferry):
    jid = ferry.submit("sh", "-c", "echo a; sleep 1; echo b; sleep 0.5; printf c")
    t0 = time.monotonic()
    cp = ferry.run("logs", "--follow", jid, timeout=30)
    assert cp.stdout == "a\nb\nc"
    assert time.monotonic() - t0 >= 1.0, "--follow returned before the job ended"
    assert ferry.state(jid) == "done"


def test_logs_stderr(ferry):
    jid = ferry.submit("sh", "-c", "echo out1; echo err1 >&2; echo out2; echo err2 >&2")
    ferry.run("wait", "--timeout", "30", jid, timeout=40)
    assert ferry.run("logs", jid).stdout == "out1\nout2\n"
    assert ferry.run("logs", "--stderr", jid).stdout == "err1\nerr2\n"


def test_join(ferry):
    out = ferry.path("joined.txt")
    jid = ferry.submit("sh", "-c", "echo out1; echo err1 >&2; echo out2",
                       opts=["--join", "--stdout", out])
    ferry.run("wait", "--timeout", "30", jid, timeout=40)
    assert read(out) == "out1\nerr1\nout2\n"
    j = ferry.info(jid)
    assert j["join_stderrout"] is True
    assert ferry.run("logs", jid).stdout == "out1\nerr1\nout2\n"


def test_stdout_stderr_paths(ferry):
    out, err = ferry.path("o.txt"), ferry.path("e.txt")
    jid = ferry.submit("sh", "-c", "echo O; echo E >&2", opts=["--stdout", out, "--stderr", err])
    ferry.run("wait", "--timeout", "30", jid, timeout=40)
    assert read(out) == "O\n"
    assert read(err) == "E\n"
    assert ferry.run("logs", jid).stdout == "O\n"
    assert ferry.run("logs", "--stderr", jid).stdout == "E\n"
    j = ferry.info(jid)
    assert j["stdout_path"] == out and j["stderr_path"] == err


def test_stdin(ferry):
    inp = ferry.path("in.txt")
    with open(inp, "w") as f:
        f.write("line one\nline two\n")
    out = ferry.path("o.txt")
    jid = ferry.submit("cat", opts=["--stdin", inp, "--stdout", out])
    ferry.run("wait", "--timeout", "30", jid, timeout=40)
    assert read(out) == "line one\nline two\n"
    assert ferry.info(jid)["stdin_path"] == inp


def test_no_stdin_reads_eof(ferry):
    # without --stdin the job must not hang reading a terminal or a pipe
    out = ferry.path("o.txt")
    jid = ferry.submit("sh", "-c", "cat; echo end", opts=["--stdout", out])
    ferry.run("wait", "--timeout", "20", jid, timeout=30)
    assert read(out) == "end\n"


def test_env(ferry):
    out = ferry.path("o.txt")
    jid = ferry.submit("sh", "-c", 'echo "$FOO|$BAZ|$EMPTY|"',
                       opts=["--env", "FOO=bar", "--env", "BAZ=a b=c", "--env", "EMPTY=",
                             "--stdout", out])
    ferry.run("wait", "--timeout", "30", jid, timeout=40)
    assert read(out) == "bar|a b=c||\n"
    env = ferry.info(jid)["env"]
    assert "FOO=bar" in env and "BAZ=a b=c" in env


def test_cwd_relative_script(ferry):
    sub = ferry.path("sub dir")
    os.makedirs(sub)
    write_script(os.path.join(sub, "script.sh"), "#!/bin/sh\npwd\necho script ran\n")
    out = ferry.path("o.txt")
    jid = ferry.submit("./script.sh", opts=["--cwd", sub, "--stdout", out])
    ferry.run("wait", "--timeout", "30", jid, timeout=40)
    j = ferry.info(jid)
    assert j["status"] == "done", j
    assert read(out) == f"{sub}\nscript ran\n"
    assert j["working_directory"] == sub


def test_default_cwd_is_callers(ferry):
    sub = ferry.path("caller")
    os.makedirs(sub)
    out = ferry.path("o.txt")
    cp = ferry.run("submit", "--stdout", out, "--", "pwd", cwd=sub)
    jid = int(cp.stdout.strip())
    ferry.run("wait", "--timeout", "30", jid, timeout=40)
    assert read(out) == sub + "\n"


# ------------------------------------------------------- info / jobs


def test_job_fields_documented():
    """The table the code is built from (src/common/jobfields.h) and the
    protocol's list of the job object's fields name the same fields in
    the same order."""
    with open(os.path.join(SRC_DIR, "docs", "protocol.md")) as f:
        doc = f.read()
    m = re.search(r"^### Job object.*?\n\n(.*?)(?:\n\n|\Z)", doc, re.S | re.M)
    assert m, "docs/protocol.md has no 'Job object' section"
    # `none` is exit_status's value before the end, not a field
    named = [w for w in re.findall(r"`(\w+)`", m.group(1)) if w != "none"]
    assert named == JOB_FIELDS


def test_info_json_fields(ferry):
    jid = ferry.submit("sh", "-c", "echo hi", opts=["--name", "n1", "--env", "A=1",
                                                    "--cpus", "1", "--walltime", "60"])
    ferry.run("wait", "--timeout", "30", jid, timeout=40)
    j = ferry.json("info", jid)                             # global --json
    j2 = json.loads(ferry.run("info", jid, "--json").stdout)  # subcommand --json
    assert j == j2
    missing = [k for k in JOB_FIELDS if k not in j]
    assert not missing, f"info --json lacks fields {missing}"
    assert list(j) == JOB_FIELDS, "info --json shows the fields in the protocol's order"
    assert j["id"] == jid
    assert j["name"] == "n1"
    assert j["command"] == ["sh", "-c", "echo hi"]
    assert j["status"] == "done" and j["exit_status"] == "finished_regularly"
    assert j["exit_value"] == 0 and j["signal"] == 0
    assert j["cpus"] == 1 and j["walltime_s"] == 60 and j["memory_mb"] == 0
    assert j["disposal_timeout_hours"] == 168
    assert j["backend"] == "local" and j["resource"] == ferry.resource
    assert j["join_stderrout"] is False
    assert "A=1" in j["env"]
    for k in ("submitted_at", "started_at", "ended_at"):
        assert isinstance(j[k], (int, float)) and j[k] > 1.6e9, (k, j[k])
    for k in ("cpu_time", "cpu_user", "cpu_sys", "wall_time"):
        assert isinstance(j[k], (int, float)) and j[k] >= 0, (k, j[k])
    assert isinstance(j["max_rss_kb"], int) and j["max_rss_kb"] > 0
    assert isinstance(j["referenced_input_files"], list)
    assert isinstance(j["referenced_output_files"], list)
    # plain info is human readable and mentions the state
    cp = ferry.run("info", jid)
    assert "done" in cp.stdout


def test_info_json_before_start(ferry):
    jid = ferry.submit("true", opts=["--hold"])
    j = ferry.info(jid)
    assert not [k for k in JOB_FIELDS if k not in j]
    assert j["status"] == "user_on_hold"
    assert j["exit_status"] == "none"
    assert j["started_at"] is None and j["ended_at"] is None
    assert isinstance(j["submitted_at"], (int, float))


def test_jobs_json_and_state_filter(ferry):
    a = ferry.submit("true")
    b = ferry.submit("false")
    c = ferry.submit("true", opts=["--hold"])
    ferry.run("wait", "--timeout", "30", a, b, check=False, timeout=40)
    jobs = ferry.json("jobs")
    assert isinstance(jobs, list)
    assert [j["id"] for j in jobs] == [a, b, c], "jobs are listed oldest first"
    for j in jobs:
        assert not [k for k in JOB_FIELDS if k not in j]
    by = {j["id"]: j["status"] for j in jobs}
    assert by == {a: "done", b: "failed", c: "user_on_hold"}
    assert [j["id"] for j in ferry.json("jobs", "--state", "done")] == [a]
    assert [j["id"] for j in ferry.json("jobs", "--state", "failed")] == [b]
    assert [j["id"] for j in ferry.json("jobs", "--state", "user_on_hold")] == [c]
    assert ferry.json("jobs", "--state", "running") == []
    # `jobs --json` after the subcommand too
    assert [j["id"] for j in json.loads(ferry.run("jobs", "--state", "done", "--json").stdout)] == [a]
    # plain output lists the ids
    plain = ferry.run("jobs").stdout
    for i in (a, b, c):
        assert re.search(rf"\b{i}\b", plain), plain
    cp = ferry.run("jobs", "--state", "bogus", check=False)
    assert cp.returncode in (1, 2) and "bogus" in cp.stderr


def test_status_command(ferry):
    a = ferry.submit("true")
    b = ferry.submit("true", opts=["--hold"])
    ferry.run("wait", "--timeout", "30", a, timeout=40)
    out = ferry.run("status", a, b).stdout
    lines = out.strip().splitlines()
    assert len(lines) == 2, out
    assert "done" in lines[0] and "user_on_hold" in lines[1], out
    assert str(a) in lines[0] and str(b) in lines[1], out


def test_dispose(ferry):
    jid = ferry.submit("true")
    ferry.run("wait", "--timeout", "30", jid, timeout=40)
    jobdir = os.path.join(ferry.state_dir, "jobs", str(jid))
    assert os.path.isdir(jobdir)
    ferry.run("dispose", jid)
    cp = ferry.run("status", jid, check=False)
    assert cp.returncode == 1, cp
    assert re.search(r"no (such )?job|unknown job", cp.stderr, re.I), cp.stderr
    assert str(jid) in cp.stderr
    assert not os.path.exists(jobdir), "dispose left the job directory"
    assert ferry.json("jobs") == []
    cp = ferry.run("dispose", jid, check=False)
    assert cp.returncode == 1 and re.search(r"no (such )?job|unknown job", cp.stderr, re.I)


def test_dispose_running_job_kills_it(ferry):
    pidf = ferry.path("pid")
    jid = ferry.submit("sh", "-c", f"echo $$ > {pidf}; exec sleep 100")
    ferry.wait_state(jid, "running")
    pid = int(poll(lambda: read_lines(pidf), 10, what="pid file")[0])
    ferry.run("dispose", jid, timeout=30)
    assert wait_dead(pid, 10), "dispose did not kill the running job"
    assert ferry.run("status", jid, check=False).returncode == 1


def test_unknown_job(ferry):
    for cmd in (("status", "987654"), ("info", "987654"), ("logs", "987654"),
                ("kill", "987654"), ("wait", "987654")):
        cp = ferry.run(*cmd, check=False)
        assert cp.returncode == 1, (cmd, cp)
        assert re.search(r"no (such )?job|unknown job", cp.stderr, re.I), (cmd, cp.stderr)
        assert "987654" in cp.stderr, (cmd, cp.stderr)


# -------------------------------------------------------------- wait


def test_wait_exit_codes(ferry):
    ok = ferry.submit("true")
    bad = ferry.submit("sh", "-c", "exit 5")
    assert ferry.run("wait", "--timeout", "30", ok, timeout=40).returncode == 0
    assert ferry.run("wait", "--timeout", "30", ok, bad, check=False, timeout=40).returncode == 4
    long = ferry.submit("sleep", "30")
    t0 = time.monotonic()
    cp = ferry.run("wait", "--timeout", "1", long, check=False, timeout=20)
    assert cp.returncode == 3, cp
    assert 0.8 <= time.monotonic() - t0 < 10
    assert ferry.state(long) == "running"
    cp = ferry.run("wait", "--timeout", "1", "--all", check=False, timeout=20)
    assert cp.returncode == 3, cp
    ferry.run("kill", long)
    # --all takes the jobs not ended at the call: bad and long ended before it;
    # the new one ends when told, once the wait has had 2 s to make its call
    # (a job of `sleep 0.5` ended before a loaded machine's wait called)
    go = ferry.path("go")
    ferry.submit("sh", "-c", f"until test -e {go}; do sleep 0.05; done; exit 5")
    p = ferry.popen("wait", "--timeout", "20", "--all")
    time.sleep(2)
    assert p.poll() is None, p.communicate()
    open(go, "w").close()
    out, err = p.communicate(timeout=30)
    assert p.returncode == 4, (out, err)


def test_wait_all_without_jobs(ferry):
    cp = ferry.run("wait", "--all", "--timeout", "5", timeout=20)
    assert cp.returncode == 0


def test_kill_and_dispose_queued_jobs(ferry):
    sleepers = _fill_slots(ferry)
    ran = ferry.path("ran")
    a = ferry.submit("sh", "-c", f"echo a >> {ran}")
    b = ferry.submit("sh", "-c", f"echo b >> {ran}")
    assert ferry.state(a) == "queued_active" and ferry.state(b) == "queued_active"
    ferry.run("kill", a)
    j = ferry.info(a)
    assert j["status"] == "failed" and j["exit_status"] == "killed_by_user", j
    ferry.run("dispose", b)
    assert ferry.run("status", b, check=False).returncode == 1
    ferry.run("kill", *sleepers)
    ferry.run("wait", "--all", "--timeout", "20", check=False, timeout=30)
    time.sleep(0.5)
    assert not os.path.exists(ran), "a killed or disposed queued job ran"


def test_wait_all_success(ferry):
    ids = [ferry.submit("sh", "-c", f"sleep 0.{i}") for i in range(4)]
    cp = ferry.run("wait", "--all", "--timeout", "30", timeout=40)
    assert cp.returncode == 0, cp
    assert all(ferry.state(i) == "done" for i in ids)


def test_wait_wakes_promptly(ferry):
    jid = ferry.submit("sleep", "1")
    t0 = time.monotonic()
    ferry.run("wait", "--timeout", "30", jid, timeout=40)
    assert time.monotonic() - t0 < 4, "wait did not return soon after the job ended"


# -------------------------------------------------------------- bulk


def test_submit_bulk_quoting(ferry):
    w = ferry.work
    bulk = ferry.path("jobs.txt")
    with open(bulk, "w") as f:
        f.write("# a comment line\n")
        f.write("\n")
        f.write(f"sh -c 'printf \"%s|\" \"$@\" > {w}/b1' argv0 \"two words\" 'single quoted' back\\ slash\n")
        f.write(f"   sh -c \"echo dq > {w}/b2\"   \n")
        f.write(f"sh -c 'echo \"it'\\''s\" > {w}/b3'\n")
        f.write("   # indented comment\n")
        f.write(f"sh -c 'echo \"$0\" > {w}/b4' '$HOME *'\n")
    cp = ferry.run("submit", "--bulk", bulk)
    ids = [int(x) for x in cp.stdout.split()]
    assert len(ids) == 4 and len(set(ids)) == 4, cp.stdout
    ferry.run("wait", "--timeout", "30", *ids, timeout=40)
    assert read(f"{w}/b1") == "two words|single quoted|back slash|"
    assert read(f"{w}/b2") == "dq\n"
    assert read(f"{w}/b3") == "it's\n"
    assert read(f"{w}/b4") == "$HOME *\n", "bulk lines must not be expanded"
    j = ferry.info(ids[0])
    assert j["command"] == ["sh", "-c", f"printf \"%s|\" \"$@\" > {w}/b1", "argv0",
                            "two words", "single quoted", "back slash"]


def test_submit_bulk_json(ferry):
    bulk = ferry.path("jobs.txt")
    with open(bulk, "w") as f:
        f.write("true\ntrue\n")
    ids = ferry.json("submit", "--bulk", bulk)
    assert isinstance(ids, list) and len(ids) == 2 and all(isinstance(i, int) for i in ids)
    one = ferry.json("submit", "--", "true")
    assert isinstance(one, dict) and isinstance(one.get("id"), int)
    assert one["id"] not in ids


def test_submit_bulk_bad_quote_submits_nothing(ferry):
    bulk = ferry.path("jobs.txt")
    with open(bulk, "w") as f:
        f.write("true\ntrue\necho 'unbalanced\ntrue\n")
    cp = ferry.run("submit", "--bulk", bulk, check=False)
    assert cp.returncode in (1, 2), cp
    assert re.search(r"quot", cp.stderr, re.I), cp.stderr
    assert re.search(r"\b3\b", cp.stderr), f"message should name line 3: {cp.stderr!r}"
    assert ferry.json("jobs") == [], "a failed bulk submission created jobs"


def test_submit_bulk_missing_file(ferry):
    cp = ferry.run("submit", "--bulk", ferry.path("nope.txt"), check=False)
    assert cp.returncode in (1, 2)
    assert "nope.txt" in cp.stderr


# ----------------------------------------------------------- the engine


def test_daemon_status_stop_start(ferry):
    cp = ferry.run("daemon", "status", check=False)
    assert cp.returncode == 3, cp
    ferry.run("daemon", "start")
    pid = ferry.engine_pid()
    assert pid and ferry.engine_alive()
    cp = ferry.run("daemon", "status")
    assert str(pid) in cp.stdout, cp.stdout
    ferry.run("ping")
    assert ferry.engine_pid() == pid
    ferry.run("daemon", "stop")
    assert wait_dead(pid, 10), "engine still running after daemon stop"
    cp = ferry.run("daemon", "status", check=False)
    assert cp.returncode == 3, cp
    ferry.run("daemon", "start")
    pid2 = ferry.engine_pid()
    assert pid2 and pid2 != pid and ferry.engine_alive()
    ferry.run("daemon", "start")  # already running: fine, same engine
    assert ferry.engine_pid() == pid2


def test_engine_stopping_leaves_a_later_engines_socket(request):
    """A state directory replaced under a running engine holds, once a new
    engine runs there, that engine's socket and pid file: stopping the old
    one removes only its own."""
    ferry = ferry_world(request, "local")
    ferry.run("daemon", "start")
    old = ferry.engine_pid()
    sd = ferry.state_dir
    os.rename(sd, sd + ".gone")
    ferry.run("daemon", "start")
    new = ferry.engine_pid()
    assert new and new != old
    os.kill(old, signal.SIGTERM)
    assert wait_dead(old, 10)
    assert os.path.exists(os.path.join(sd, "ferryd.sock"))
    assert ferry.engine_pid() == new
    ferry.run("ping")
    ferry.run("daemon", "stop")
    assert wait_dead(new, 10)


def test_engine_autostart_and_state_dir(ferry):
    assert not ferry.engine_alive()
    ferry.run("ping")
    assert ferry.engine_alive()
    sd = ferry.state_dir
    st = os.stat(sd)
    assert stat.S_IMODE(st.st_mode) == 0o700, oct(st.st_mode)
    assert st.st_uid == os.getuid()
    assert stat.S_ISSOCK(os.stat(os.path.join(sd, "ferryd.sock")).st_mode)
    assert os.path.isfile(os.path.join(sd, "ferry.db"))
    assert b"ferryd" in open(f"/proc/{ferry.engine_pid()}/cmdline", "rb").read()
    # a second client uses the same engine
    pid = ferry.engine_pid()
    ferry.run("ping")
    assert ferry.engine_pid() == pid


def test_jobs_survive_engine_stop(ferry):
    f = ferry.path("f")
    jid = ferry.submit("sh", "-c", f"sleep 2; echo finished > {f}")
    ferry.wait_state(jid, "running")
    pid = ferry.engine_pid()
    ferry.run("daemon", "stop")
    assert wait_dead(pid, 10)
    poll(lambda: os.path.exists(f), 15, what="the job to finish without an engine")
    ferry.run("wait", "--timeout", "30", jid, timeout=40)  # restarts the engine
    j = ferry.info(jid)
    assert j["status"] == "done" and j["exit_value"] == 0, j


def test_job_ends_while_engine_dead(ferry):
    # the job ends when told, once the engine is dead (a `sleep 1` could
    # end before a loaded machine's poll saw it running)
    go = ferry.path("go")
    jid = ferry.submit("sh", "-c", f"until test -e {go}; do sleep 0.05; done; exit 7")
    ferry.wait_state(jid, "running")
    ferry.kill_engine(signal.SIGKILL)
    open(go, "w").close()
    time.sleep(2.0)
    cp = ferry.run("wait", "--timeout", "30", jid, check=False, timeout=40)
    assert cp.returncode == 4, cp
    j = ferry.info(jid)
    assert j["status"] == "failed" and j["exit_status"] == "finished_regularly"
    assert j["exit_value"] == 7, "the exit value must survive an engine crash"


def test_input_file_check(ferry):
    missing = ferry.path("nope.txt")
    cp = ferry.run("submit", "--input", missing, "--", "true", check=False)
    assert cp.returncode == 1, cp
    assert "nope.txt" in cp.stderr, cp.stderr
    assert ferry.json("jobs") == [], "a refused submission created a job"
    present = ferry.path("present.txt")
    open(present, "w").close()
    jid = ferry.submit("true", opts=["--input", present, "--output", ferry.path("out.dat")])
    ferry.run("wait", "--timeout", "30", jid, timeout=40)
    j = ferry.info(jid)
    assert j["referenced_input_files"] == [present]
    assert j["referenced_output_files"] == [ferry.path("out.dat")]


def test_cpus_more_than_slots_refused(ferry):
    cp = ferry.run("submit", "--cpus", "3", "--", "true", check=False)
    assert cp.returncode == 1, cp
    assert re.search(r"cpu|slot", cp.stderr, re.I), cp.stderr
    assert ferry.json("jobs") == []
    jid = ferry.submit("true", opts=["--cpus", "2"])
    ferry.run("wait", "--timeout", "30", jid, timeout=40)


def test_two_cpu_job_takes_both_slots(ferry):
    # the big job runs until told to end: a fixed sleep ended before the
    # check on a loaded machine, and the small job then ran
    go = ferry.path("go")
    big = ferry.submit("sh", "-c", f"until test -e {go}; do sleep 0.05; done",
                       opts=["--cpus", "2"])
    ferry.wait_state(big, "running")
    small = ferry.submit("true")
    time.sleep(0.5)
    assert ferry.state(small) == "queued_active", "a 2-cpu job must use both slots"
    open(go, "w").close()
    ferry.run("wait", "--timeout", "30", big, small, timeout=40)


def test_usage_errors(ferry):
    for args in (("bogus-subcommand",), ("submit",), ("submit", "--"), ("--no-such-option", "ping"),
                 ("wait",), ("status",)):
        cp = ferry.run(*args, check=False)
        assert cp.returncode == 2, (args, cp)
        assert cp.stderr.strip(), f"no usage message for {args}"
    cp = ferry.run("status", "abc", check=False)
    assert cp.returncode in (1, 2) and "abc" in cp.stderr, cp
    cp = ferry.run("submit", "--cpus", "many", "--", "true", check=False)
    assert cp.returncode in (1, 2) and "cpus" in cp.stderr, cp


# ------------------------------------------------------ more job behaviour


def test_memory_limit(ferry):
    alloc = "import sys; b = bytearray(400 * 1024 * 1024); print(len(b))"
    ok = ferry.submit("/usr/bin/python3", "-c", alloc)
    limited = ferry.submit("/usr/bin/python3", "-c", alloc, opts=["--memory", "200"])
    ferry.run("wait", "--timeout", "60", ok, limited, check=False, timeout=70)
    assert ferry.state(ok) == "done", ferry.info(ok)
    j = ferry.info(limited)
    assert j["memory_mb"] == 200
    assert j["status"] == "failed", "a 400 MB allocation passed a 200 MB limit"
    assert "MemoryError" in ferry.run("logs", "--stderr", limited).stdout


def test_resource_usage_recorded(ferry):
    jid = ferry.submit("sh", "-c", "i=0; while [ $i -lt 200000 ]; do i=$((i+1)); done")
    ferry.run("wait", "--timeout", "60", jid, timeout=70)
    j = ferry.info(jid)
    assert j["cpu_user"] >= 0.05, j
    assert j["cpu_time"] >= j["cpu_user"] - 1e-6
    assert j["wall_time"] >= 0.05
    assert j["max_rss_kb"] > 100
    assert abs(j["wall_time"] - (j["ended_at"] - j["started_at"])) < 1.0


def test_large_binary_output(ferry):
    data = ferry.path("data.bin")
    with open(data, "wb") as f:
        f.write(os.urandom(3 * 1024 * 1024 + 12345))
    jid = ferry.submit("cat", data)
    ferry.run("wait", "--timeout", "30", jid, timeout=40)
    cp = subprocess.run([ferry.bin, "logs", str(jid)], env=ferry.env,
                        capture_output=True, timeout=60)
    assert cp.returncode == 0, cp.stderr
    with open(data, "rb") as f:
        assert cp.stdout == f.read(), "logs changed the bytes of the output"


def test_kill_job_ignoring_sigterm(ferry):
    pidf = ferry.path("pid")
    jid = ferry.submit("sh", "-c", f"trap '' TERM; echo $$ > {pidf}; while :; do sleep 0.1; done")
    ferry.wait_state(jid, "running")
    pid = int(poll(lambda: read_lines(pidf), 10, what="pid file")[0])
    t0 = time.monotonic()
    ferry.run("kill", jid)
    j = ferry.wait_ended(jid, 40)
    assert j["exit_status"] == "killed_by_user"
    assert wait_dead(pid, 5), "a job ignoring SIGTERM survived kill"
    assert time.monotonic() - t0 < 35


def test_stdout_in_missing_directory(ferry):
    bad = "/nonexistent/ferry-out/o.txt"
    cp = ferry.run("submit", "--stdout", bad, "--", "echo", "x", check=False)
    if cp.returncode == 0:  # accepted: the job must end aborted naming the path
        j = ferry.wait_ended(int(cp.stdout), 20)
        assert j["status"] == "failed" and j["exit_status"] == "aborted", j
        assert bad in (j["message"] or ""), j["message"]
    else:
        assert cp.returncode == 1 and "/nonexistent/ferry-out" in cp.stderr, cp


def test_concurrent_clients_start_one_engine(ferry):
    assert not ferry.engine_alive()
    procs = [ferry.popen("submit", "--", "true") for _ in range(10)]
    ids = []
    for p in procs:
        out, err = p.communicate(timeout=60)
        assert p.returncode == 0, err
        ids.append(int(out))
    assert len(set(ids)) == 10
    ferry.run("wait", "--timeout", "30", *ids, timeout=40)
    engines = [pid for pid in map(int, filter(str.isdigit, os.listdir("/proc")))
               if proc_comm(pid) == "ferryd"
               and ferry.base.encode() in proc_environ(pid) and pid_alive(pid)]
    assert len(engines) == 1, f"{len(engines)} engines for one resource: {engines}"
    assert engines == [ferry.engine_pid()]


def test_many_waiters(ferry):
    jid = ferry.submit("sleep", "1")
    procs = [ferry.popen("wait", "--timeout", "30", jid) for _ in range(20)]
    for p in procs:
        p.communicate(timeout=40)
        assert p.returncode == 0
    assert ferry.state(jid) == "done"


def test_wait_counts_disposed_job_as_ended(ferry):
    jid = ferry.submit("sleep", "30")
    ferry.wait_state(jid, "running")
    p = ferry.popen("wait", "--timeout", "20", jid)
    time.sleep(0.5)
    ferry.run("dispose", jid)
    out, err = p.communicate(timeout=30)
    assert p.returncode in (0, 4), (p.returncode, err)


def test_engine_keeps_no_fd_of_the_client_that_started_it(ferry):
    """A pipe the starting program left inheritable must not be held open by
    the engine (or its job runner): whoever reads it would wait for ever."""
    r, w = os.pipe()
    try:
        os.set_inheritable(w, True)
        subprocess.run([ferry.bin, "submit", "--", "true"], env=ferry.env, pass_fds=(w,),
                       check=True, timeout=30, capture_output=True)
        os.close(w)
        w = -1
        os.set_blocking(r, False)
        deadline = time.monotonic() + 5
        while True:
            try:
                assert os.read(r, 1) == b"", "unexpected data"
                break  # EOF: nobody holds the write end any more
            except BlockingIOError:
                assert time.monotonic() < deadline, "the engine kept the client's pipe open"
                time.sleep(0.05)
    finally:
        os.close(r)
        if w >= 0:
            os.close(w)


def test_transfer_info(ferry):
    src = ferry.path("in.txt")
    with open(src, "w") as f:
        f.write("x\n")
    sp = ferry.run("send", src).stdout.strip()
    jid = ferry.submit("cat", sp, opts=["--input", sp])
    one = ferry.json("transfer-info", sp)
    assert one == ferry.json("transfers", sp)
    assert one["server_path"] == sp and one["local_paths"] == [src] and one["jobs"] == [jid]
    human = ferry.run("transfer-info", sp).stdout
    assert re.search(rf"^server_path: +{re.escape(sp)}$", human, re.M), human
    assert re.search(r"^state: +ready$", human, re.M) and re.search(r"^size: +2$", human, re.M)
    assert re.search(rf"^jobs: +{jid}$", human, re.M), human
    assert re.search(r"^deadline: +\d{4}-\d\d-\d\d \d\d:\d\d:\d\d", human, re.M), human
    assert ferry.run("transfers", sp).stdout == human
    cp = ferry.run("transfer-info", check=False)
    assert cp.returncode == 2 and "missing argument" in cp.stderr
    other = os.path.join(os.path.dirname(os.path.dirname(sp)), "t0000000000000000", "in.txt")
    cp = ferry.run("transfer-info", other, check=False)
    assert cp.returncode == 1 and "no transfer" in cp.stderr, cp.stderr


@pytest.mark.parametrize("args,option", [
    (["transfers", "--force"], "--force"),
    (["transfer-info", "--disposal", "3", "/x"], "--disposal"),
    (["cancel-transfer", "--to", "x", "/x"], "--to"),
    (["send", "--force", "f"], "--force"),
    (["register", "--to", "x", "f"], "--to"),
    (["retrieve", "--disposal", "3", "/x"], "--disposal"),
])
def test_transfer_commands_refuse_options_not_theirs(ferry, args, option):
    cp = ferry.run(*args, check=False)
    assert cp.returncode == 2, cp
    assert f"option '{option}' does not apply to this command" in cp.stderr, cp.stderr


def test_main_help_lists_transfer_commands_aligned(ferry):
    out = ferry.run("--help").stdout
    rows = re.findall(r"^  (\S+) +(\S.*)$", out.split("Commands:\n")[1].split("\n\n")[0], re.M)
    names = [n for n, _ in rows]
    assert {"transfer-info", "cancel-transfer", "transfers"} <= set(names)
    starts = {line.index(summary) for line, (_, summary) in
              zip(out.split("Commands:\n")[1].splitlines(), rows)}
    assert len(starts) == 1, "the summaries start in one column"
