"""Hardening (issue 21, item 4): the job runner's death loses no job.

A job the runner had been sent but had not claimed never started: it is
queued again and runs once. A job it had claimed ran at most once and ends
with what its result file says, or finished_unclear_condition. Every job
appends a line to a marker file of its own, so a run is counted, not
inferred from the job's state."""
import os
import random
import signal
import sqlite3
import subprocess
import sys
import time

from conftest import (SCHEMA_5_TO_4, SCHEMA_6_TO_5, SCHEMA_7_TO_6, SCHEMA_8_TO_7, pid_alive,
                      poll, runner_pid, wait_dead)
from test_crash import count_lines
from test_hardening_connections import start_engine


def submit_marked(ferry, tag, n, tail):
    """n jobs in one batch; each appends a line to its marker, then runs tail."""
    marks = [ferry.path(f"mark-{tag}-{k}") for k in range(n)]
    bulk = ferry.path(f"bulk-{tag}.txt")
    with open(bulk, "w") as f:
        for m in marks:
            f.write(f"sh -c 'echo run >> {m}; {tail}'\n")
    ids = [int(x) for x in ferry.run("submit", "--bulk", bulk).stdout.split()]
    assert len(ids) == n
    return ids, dict(zip(ids, marks))


def settle(ferry, ids, marks):
    """Waits for every job, and checks the class: no job ran twice, a job
    that is done ran once, and a job that is not done was claimed (it
    started) and says that its runner died. Returns the job objects."""
    ferry.run("wait", "--timeout", "60", *ids, check=False, timeout=70)
    jobs = {j["id"]: j for j in ferry.json("jobs")}
    for i in ids:
        j, runs = jobs[i], count_lines(marks[i])
        assert j["status"] in ("done", "failed"), j
        assert runs <= 1, f"job {i} ran {runs} times: {j}"
        if j["status"] == "done":
            assert runs == 1, f"job {i} is done but ran {runs} times"
            continue
        claim = os.path.join(ferry.state_dir, "jobs", str(i), "claim")
        assert os.path.exists(claim), f"job {i} ended without ever starting: {j}"
        assert j["exit_status"] == "finished_unclear_condition" and "runner" in j["message"], j
    return [jobs[i] for i in ids]


def fresh_runner(ferry):
    """A runner that has served a job and has none now."""
    jid = ferry.submit("true")
    ferry.run("wait", "--timeout", "30", jid, timeout=40)
    return poll(lambda: runner_pid(ferry), 10, what="the job runner")


def kill(pid):
    os.kill(pid, signal.SIGKILL)
    assert wait_dead(pid, 10), f"runner {pid} survived SIGKILL"


def test_starts_the_runner_never_read_run_after_its_death(ferry):
    """The issue's case made certain: the runner is stopped, so the starts
    of the first two of four jobs (2 slots) stay unread in its socket when
    it is killed. Before the fix both ended finished_unclear_condition with
    no job directory and never ran."""
    runner = fresh_runner(ferry)
    os.kill(runner, signal.SIGSTOP)
    try:
        ids, marks = submit_marked(ferry, "unread", 4, "sleep 0.3")
        poll(lambda: [ferry.state(i) for i in ids[:2]] == ["running"] * 2, 10,
             what="the first two starts sent")
    finally:
        kill(runner)
    jobs = settle(ferry, ids, marks)
    assert [j["status"] for j in jobs] == ["done"] * 4, jobs
    assert all(count_lines(marks[i]) == 1 for i in ids)
    assert runner_pid(ferry) not in (None, runner)  # a new runner served them


def test_unread_start_keeps_a_stop_and_a_kill(ferry):
    """What was asked of a job whose start was lost holds: a stopped one
    waits on hold (it never ran), a killed one ends killed_by_user."""
    runner = fresh_runner(ferry)
    os.kill(runner, signal.SIGSTOP)
    try:
        ids, marks = submit_marked(ferry, "ctl", 2, "sleep 0.2")
        poll(lambda: [ferry.state(i) for i in ids] == ["running"] * 2, 10,
             what="both starts sent")
        ferry.run("stop", ids[0])
        ferry.run("kill", ids[1])
    finally:
        kill(runner)
    held = ferry.wait_state(ids[0], "user_on_hold")
    assert held["started_at"] is None and not held["native_id"], held
    killed = ferry.wait_ended(ids[1])
    assert killed["exit_status"] == "killed_by_user", killed
    time.sleep(0.5)
    assert count_lines(marks[ids[0]]) == 0 and count_lines(marks[ids[1]]) == 0
    ferry.run("release", ids[0])
    assert ferry.wait_ended(ids[0])["status"] == "done"
    assert count_lines(marks[ids[0]]) == 1


def test_runner_killed_at_any_moment_after_a_batch(ferry):
    """Repeated trials: the runner dies right after a batch submit, or while
    its jobs start, or while they run."""
    seed = int(os.environ.get("FERRY_CRASH_SEED", time.time_ns() % 100000))
    rng = random.Random(seed)
    print(f"seed {seed} (FERRY_CRASH_SEED to replay)")
    done = 0
    for trial in range(6):
        fresh_runner(ferry)
        ids, marks = submit_marked(ferry, f"t{trial}", 4, "sleep 0.3")
        time.sleep(rng.choice([0, 0, 0.01, 0.03, 0.1, 0.4]))
        pid = runner_pid(ferry)
        if pid:
            kill(pid)
        jobs = settle(ferry, ids, marks)
        # at most the two that had started (2 slots) are lost with the runner
        assert sum(j["status"] == "done" for j in jobs) >= 2, jobs
        done += sum(j["status"] == "done" for j in jobs)
    assert done >= 12


def test_runner_killed_repeatedly_with_many_queued_jobs(ferry):
    seed = int(os.environ.get("FERRY_CRASH_SEED", time.time_ns() % 100000))
    rng = random.Random(seed)
    print(f"seed {seed} (FERRY_CRASH_SEED to replay)")
    ids, marks = submit_marked(ferry, "many", 40, "sleep 0.05")
    kills = 0
    t_end = time.monotonic() + 30
    while kills < 5 and time.monotonic() < t_end:
        time.sleep(rng.uniform(0.0, 0.25))
        pid = runner_pid(ferry)
        if pid:
            kill(pid)
            kills += 1
    jobs = settle(ferry, ids, marks)
    done = sum(j["status"] == "done" for j in jobs)
    # each death takes at most the jobs running on the two slots
    assert done >= len(ids) - 2 * kills, (kills, [j for j in jobs if j["status"] != "done"])


def test_starts_wait_for_a_slow_runner_without_stalling_the_engine(ferry):
    """Starts the socket cannot take at once wait in the engine, which goes
    on answering; the runner gets them when it reads again. Before, the
    engine waited for room on its loop, gave up after a second and ended
    every job sent as if the runner had died."""
    ferry.config("[local]\nscheduler = local\nslots = 24\n")
    runner = fresh_runner(ferry)
    os.kill(runner, signal.SIGSTOP)
    try:
        marks = [ferry.path(f"mark-big-{k}") for k in range(24)]
        bulk = ferry.path("bulk-big.txt")
        with open(bulk, "w") as f:
            for m in marks:
                f.write(f"sh -c 'echo run >> {m}'\n")
        # ~100 KiB a start: far more than a socket buffer holds
        ids = [int(x) for x in ferry.run("submit", "--env", "BIG=" + "x" * 100_000,
                                         "--bulk", bulk).stdout.split()]
        poll(lambda: all(ferry.state(i) == "running" for i in ids), 10, what="all sent")
        time.sleep(1.5)
        t0 = time.monotonic()
        assert ferry.state(ids[-1]) == "running"
        assert time.monotonic() - t0 < 1.0, "the engine waited for the runner"
    finally:
        os.kill(runner, signal.SIGCONT)
    jobs = settle(ferry, ids, dict(zip(ids, marks)))
    assert [j["status"] for j in jobs] == ["done"] * len(ids), jobs


# -------------------------------------------- a runner the engine leaves

# Fault injection: a real runner never sends a malformed message, nor
# closes each connection at once for ever, on demand. This fake listens on
# runner.sock before the engine first needs a runner; it logs each
# connection, says its pid and caps as this build's runner does, then (per
# its mode, by connection number) closes it at once, holds it unread, or
# sends a malformed frame and holds it whatever the engine does.
FAKE_RUNNER = r"""
import json, os, socket, struct, sys
path, log, modes = sys.argv[1], sys.argv[2], sys.argv[3].split(",")
js = json.dumps({"op": "runner", "pid": os.getpid(), "caps": ["base_env"]}).encode()
hello = struct.pack(">4sHHII", b"FRY1", 1, 1, len(js), len(js)) + js
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.bind(path)
s.listen(64)
print("ready", flush=True)
held, n = [], 0
while True:
    c, _ = s.accept()
    n += 1
    with open(log, "a") as f:
        f.write("conn\n")
    mode = modes[min(n, len(modes)) - 1]
    c.sendall(hello)  # who it is, as a runner says first
    if mode == "close":  # dies once the engine sent it something: a start is lost
        c.settimeout(10)
        try:
            c.recv(65536)
        except OSError:
            pass
        c.close()
    elif mode == "garbage":
        c.sendall(b"not a frame at all, " * 4)
        held.append(c)
    else:
        held.append(c)
"""


def fake_runner(ferry, modes):
    """Starts the fake on the engine's runner.sock; returns it and its log."""
    log = ferry.path("fake-runner.log")
    p = subprocess.Popen([sys.executable, "-c", FAKE_RUNNER,
                          os.path.join(ferry.state_dir, "runner.sock"), log, ",".join(modes)],
                         stdout=subprocess.PIPE, text=True)
    assert p.stdout.readline().strip() == "ready"
    return p, log


def engine_log(ferry):
    with open(os.path.join(ferry.state_dir, "ferryd.log")) as f:
        return f.read()


def test_a_runner_left_for_a_malformed_message_is_killed_in_time(ferry):
    """The engine leaves a runner that sends what it cannot read and waits
    for it to close its end, so that no start it sent is still unread when
    it settles the claims. A runner that never closes (this fake; a stopped
    one alike) is killed after the bound (1 s here), and the job it never
    claimed runs once with a new runner. Before, the engine waited for
    ever and the job stayed running with no pid."""
    start_engine(ferry, env={"FERRYD_TEST_LEAVE_RUNNER_SECONDS": "1"})
    fake, log = fake_runner(ferry, ["garbage"])
    try:
        ids, marks = submit_marked(ferry, "left", 1, "true")
        t0 = time.monotonic()
        assert fake.wait(timeout=15) == -signal.SIGKILL
        assert time.monotonic() - t0 < 8, "the engine waited too long for the runner"
    finally:
        if fake.poll() is None:
            fake.kill()
            fake.wait()
    jobs = settle(ferry, ids, marks)
    assert jobs[0]["status"] == "done", jobs
    assert count_lines(marks[ids[0]]) == 1
    log_text = engine_log(ferry)
    assert "malformed message" in log_text and "killing it" in log_text, log_text


def test_a_stopped_runner_that_does_not_list_is_killed_at_engine_start(ferry):
    """At its start the engine asks the runner of a claimed job for its
    list; a runner stopped meanwhile never answers. After the bound (10 s,
    1 s here) it is killed rather than left running with the claims it
    holds (a new runner would run beside it), and the job ends saying its
    runner died; new jobs run with a new runner."""
    ids, marks = submit_marked(ferry, "stopped", 1, "sleep 60")
    poll(lambda: ferry.info(ids[0])["native_id"], 10, what="the job's pid")
    runner = runner_pid(ferry)
    ferry.kill_engine()
    os.kill(runner, signal.SIGSTOP)
    try:
        ferry.run("ping", timeout=60, env={"FERRYD_TEST_LEAVE_RUNNER_SECONDS": "1"})
        assert wait_dead(runner, 10), "the stopped runner was left running"
    finally:
        if pid_alive(runner):
            os.kill(runner, signal.SIGKILL)
    j = ferry.wait_ended(ids[0], 30)
    assert j["exit_status"] == "finished_unclear_condition" and "runner" in j["message"], j
    assert ferry.wait_ended(ferry.submit("true"), 30)["status"] == "done"


def test_lost_starts_are_counted_across_engine_restarts(ferry):
    """A job whose start loses its runner each time ends aborted after five
    requeues, and the count survives an engine restart (it is in the job's
    row): three lost starts, an engine killed with the fourth start
    unread, then three more make six. Kept in memory only, the restart
    began again at zero and the job took ten runners."""
    ferry.run("ping")
    fake, log = fake_runner(ferry, ["close", "close", "close", "hold", "close"])
    try:
        ids, marks = submit_marked(ferry, "count", 1, "true")
        poll(lambda: count_lines(log) == 4, 15, what="four runners tried")
        time.sleep(0.3)
        ferry.kill_engine()
        db = sqlite3.connect(os.path.join(ferry.state_dir, "ferry.db"))
        assert db.execute("SELECT requeues FROM jobs WHERE id = ?",
                          (ids[0],)).fetchone() == (3,)
        db.close()
        j = ferry.wait_ended(ids[0], 30)  # the CLI starts a new engine
        assert j["exit_status"] == "aborted" and "died each time" in j["message"], j
        assert count_lines(log) == 7, count_lines(log)
        assert count_lines(marks[ids[0]]) == 0
    finally:
        fake.kill()
        fake.wait()


def test_database_of_schema_2_gains_the_count(ferry):
    """An engine opens a database of schema 2 (no requeue count), adds
    the column and migrates it to its own schema (6);
    its jobs are as they were."""
    jid = ferry.submit("true", opts=["--hold"])
    ferry.run("daemon", "stop")
    db = sqlite3.connect(os.path.join(ferry.state_dir, "ferry.db"))
    db.executescript(SCHEMA_8_TO_7 + SCHEMA_7_TO_6 + SCHEMA_6_TO_5 + SCHEMA_5_TO_4 + """
        ALTER TABLE jobs DROP COLUMN requeues;
        UPDATE meta SET value = '2' WHERE key = 'schema';
    """)
    db.close()
    assert ferry.state(jid) == "user_on_hold"
    ferry.run("release", jid)
    assert ferry.wait_ended(jid)["status"] == "done"
    ferry.run("daemon", "stop")
    db = sqlite3.connect(os.path.join(ferry.state_dir, "ferry.db"))
    assert db.execute("SELECT value FROM meta WHERE key = 'schema'").fetchone() == ("8",)
    assert "requeues" in [r[1] for r in db.execute("PRAGMA table_info(jobs)")]
    db.close()
