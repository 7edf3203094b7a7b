"""`ferry wait --all` (docs/protocol.md, "wait"): one wait in the engine for
every job not ended at the call, woken by the ends of jobs; jobs submitted
later, ended ones and ones the user holds are not waited for; exit 0, 4
(a job failed) and 3 (timeout) as for `ferry wait ID...`."""
import signal
import time

from conftest import ferry_world


def bulk(ferry, n, cmd="true", hold=False, name="bulk.txt"):
    path = ferry.path(name)
    with open(path, "w") as f:
        f.write(f"{cmd}\n" * n)
    opts = ("--hold",) if hold else ()
    ids = [int(x) for x in ferry.run("submit", *opts, "--bulk", path, timeout=300).stdout.split()]
    assert len(ids) == n
    return ids


def not_ended(ferry, states=("queued_active", "running")):
    return [j["id"] for st in states for j in ferry.json("jobs", "--state", st)]


def test_returns_when_the_last_of_1000_ends(ferry):
    ferry.config("[local]\nscheduler = local\nslots = 4\n")
    ids = bulk(ferry, 1000)
    t0 = time.monotonic()
    cp = ferry.run("wait", "--all", "--timeout", "300", timeout=320)
    took = time.monotonic() - t0
    assert cp.returncode == 0, cp
    assert not not_ended(ferry), "wait --all returned before every job ended"
    assert ferry.state(ids[-1]) == "done"
    print(f"1000 true jobs on 4 slots: wait --all returned after {took:.2f}s")


def test_jobs_submitted_after_the_call_are_not_waited_for(ferry):
    first = ferry.submit("sleep", "2")
    waiter = ferry.popen("wait", "--all", "--timeout", "60")
    try:
        time.sleep(1)  # the wait is taken (the engine answers in microseconds)
        later = ferry.submit("sleep", "60")
        out, err = waiter.communicate(timeout=30)
    finally:
        if waiter.poll() is None:
            waiter.kill()
            waiter.wait(10)
    assert waiter.returncode == 0, err
    assert ferry.state(first) == "done"
    assert ferry.state(later) == "running", "wait --all waited for a later job"


def test_ended_and_held_jobs_are_not_waited_for(ferry):
    ended_ok = ferry.submit("true")
    ended_bad = ferry.submit("false")
    ferry.wait_ended(ended_bad)
    ferry.wait_ended(ended_ok)
    held = bulk(ferry, 2000, hold=True)
    stopped = ferry.submit("sleep", "60")
    ferry.wait_state(stopped, "running")
    ferry.run("stop", stopped)
    ferry.wait_state(stopped, "user_suspended")
    t0 = time.monotonic()
    cp = ferry.run("wait", "--all", "--timeout", "20", timeout=30)
    assert cp.returncode == 0, cp  # the failed job had ended before the call
    assert time.monotonic() - t0 < 5
    assert ferry.state(held[0]) == "user_on_hold"
    # named, held jobs are waited for
    cp = ferry.run("wait", "--all", "--state", "user_on_hold", "--timeout", "1",
                   check=False, timeout=20)
    assert cp.returncode == 3, cp
    assert "2000 of 2000 not ended" in cp.stderr, cp.stderr
    cp = ferry.run("wait", "--all", "--state", "user_suspended", "--state", "running",
                   "--timeout", "0.5", check=False, timeout=20)
    assert cp.returncode == 3 and "1 of 1 not ended" in cp.stderr, cp.stderr


def wait_all_then_open(ferry, gate):
    """Starts `ferry wait --all`, then creates the file gate (the jobs
    wait for it) once the wait runs: its exit code and stderr."""
    waiter = ferry.popen("wait", "--all", "--timeout", "120")
    try:
        time.sleep(2)
        open(gate, "w").close()
        _, err = waiter.communicate(timeout=130)
    finally:
        if waiter.poll() is None:
            waiter.kill()
            waiter.wait(10)
    return waiter.returncode, err


def test_exit_4_names_the_failed_jobs(ferry):
    # the failing job waits for the wait to have started: a job that
    # failed before the call is not one of the wait's (a loaded machine
    # may start the CLI later than a short sleep)
    gate = ferry.path("gate")
    ok = [ferry.submit("sh", "-c", "sleep 0.3") for _ in range(3)]
    bad = ferry.submit("sh", "-c", f"while [ ! -e {gate} ]; do sleep 0.05; done; exit 7")
    rc, err = wait_all_then_open(ferry, gate)
    assert rc == 4, err
    assert f"job {bad} failed: finished_regularly (exit value 7)" in err, err
    assert all(f"job {i} " not in err for i in ok)


def test_many_failures_are_counted(ferry):
    """40 failures: the first 16 are named, the others counted."""
    ferry.config("[local]\nscheduler = local\nslots = 4\n")
    gate = ferry.path("gate")
    bulk(ferry, 40, cmd=f"sh -c 'while [ ! -e {gate} ]; do sleep 0.05; done; exit 1'")
    rc, err = wait_all_then_open(ferry, gate)
    assert rc == 4, err
    named = [ln for ln in err.splitlines() if ln.startswith("job ")]
    assert len(named) == 16, err
    assert "24 more of the 40 jobs failed" in err, err


def test_timeout_exits_3(ferry):
    ferry.submit("sleep", "30")
    t0 = time.monotonic()
    cp = ferry.run("wait", "--all", "--timeout", "1", check=False, timeout=20)
    assert cp.returncode == 3, cp
    assert 0.8 <= time.monotonic() - t0 < 10
    assert "timed out" in cp.stderr


def test_state_is_checked(ferry):
    for args in (("--state", "done"), ("--state", "nonsense"), ("--state", "running", "1")):
        cp = ferry.run("wait", "--all", *args, check=False)
        assert cp.returncode == 2, (args, cp)
    cp = ferry.run("wait", "--state", "running", "1", check=False)
    assert cp.returncode == 2 and "--state goes with --all" in cp.stderr, cp


def test_protocol_fields(ferry):
    ferry.run("ping")
    ferry.submit("true", opts=("--hold",))
    held = ferry.submit("true", opts=("--hold",))
    with ferry.raw() as c:
        c.hello()
        for req, msg in (
            ({"op": "wait", "all": True, "ids": [held]}, "exclude each other"),
            ({"op": "wait", "all": "yes"}, "'all' must be a boolean"),
            ({"op": "wait", "all": True, "state": ["done"]}, "has ended"),
            ({"op": "wait", "all": True, "state": []}, "non-empty array"),
            ({"op": "wait", "all": True, "state": ["bogus"]}, "unknown job state"),
            ({"op": "wait", "all": True, "upto": -1}, "'upto'"),
            ({"op": "wait", "ids": [held], "state": ["running"]}, "go with 'all'"),
            ({"op": "wait", "all": True, "failed_since": -1}, "'failed_since'"),
            ({"op": "wait", "all": True, "failed_since": "1"}, "'failed_since'"),
            ({"op": "wait", "ids": [held], "failed_since": 0}, "go with 'all'"),
        ):
            r = c.request(req)
            assert r["ok"] is False and r["error"] == "EINVAL", (req, r)
            assert msg in r["message"], (req, r)
        r = c.request({"op": "wait", "all": True, "timeout": 0})
        assert r == {"ok": True, "jobs": 0, "pending": 0, "failed": 0, "failed_ids": [],
                     "upto": 0, "mark": 0}, r
        r = c.request({"op": "wait", "all": True, "state": ["user_on_hold"], "timeout": 0})
        assert r["ok"] and r["jobs"] == 2 and r["pending"] == 2 and r["upto"] == held, r
        r = c.request({"op": "wait", "all": True, "state": ["user_on_hold"],
                       "upto": held - 1, "timeout": 0})
        assert r["ok"] and r["jobs"] == 1 and r["pending"] == 1 and r["upto"] == held - 1, r


def test_held_jobs_present_cost_nothing_per_event(ferry):
    """100,000 held jobs in memory: the wait takes its set once; the end of
    each of its 10 jobs costs the wait, not a pass over the held ones."""
    ferry.config("[local]\nscheduler = local\nslots = 4\n")
    bulk(ferry, 50000, hold=True, name="a.txt")
    bulk(ferry, 50000, hold=True, name="b.txt")
    gate = ferry.path("gate")
    ids = [ferry.submit("sh", "-c", f"while [ ! -e {gate} ]; do sleep 0.05; done")
           for _ in range(10)]
    waiter = ferry.popen("wait", "--all", "--timeout", "120")
    try:
        time.sleep(1)
        assert waiter.poll() is None, waiter.communicate()
        open(gate, "w").close()
        t0 = time.monotonic()
        out, err = waiter.communicate(timeout=60)
        took = time.monotonic() - t0
    finally:
        if waiter.poll() is None:
            waiter.kill()
            waiter.wait(10)
    assert waiter.returncode == 0, err
    assert all(ferry.state(i) == "done" for i in ids)
    print(f"wait --all with 100000 held jobs: answered {took:.2f}s after the gate opened")
    assert took < 5, f"wait --all took {took:.2f}s to see 10 jobs end"


def test_engine_restart_during_the_wait(ferry):
    ids = [ferry.submit("sleep", "3") for _ in range(2)]
    waiter = ferry.popen("wait", "--all", "--timeout", "120")
    try:
        time.sleep(1)
        ferry.kill_engine(signal.SIGKILL)
        later = ferry.submit("sleep", "60")  # starts a new engine
        out, err = waiter.communicate(timeout=60)
    finally:
        if waiter.poll() is None:
            waiter.kill()
            waiter.wait(10)
    assert waiter.returncode == 0, err
    assert all(ferry.state(i) == "done" for i in ids)
    assert ferry.state(later) == "running", "the replayed wait took a job submitted later"


def test_client_gone_during_the_wait(ferry):
    ids = [ferry.submit("sleep", "1") for _ in range(3)]
    waiter = ferry.popen("wait", "--all")
    time.sleep(0.5)
    waiter.kill()
    waiter.wait(10)
    for i in ids:
        ferry.wait_ended(i)
    # the engine took the marks of the gone wait off; it still answers waits
    assert ferry.run("wait", "--all", "--timeout", "5", timeout=20).returncode == 0
    assert ferry.engine_alive()


def test_wait_by_ids_still_works(ferry):
    a = ferry.submit("true")
    b = ferry.submit("sh", "-c", "exit 2")
    assert ferry.run("wait", "--timeout", "30", a, timeout=40).returncode == 0
    assert ferry.run("wait", "--timeout", "30", a, b, check=False, timeout=40).returncode == 4


def test_remote_wait_is_sent_again_with_its_bound(request, sshd):
    """Through ssh a wait comes back every 10 s (a silent link would look
    dead) and is sent again: the jobs submitted after the call stay out,
    and the failure counted in an earlier answer still makes exit 4."""
    f = ferry_world(request, "ssh")
    gate_bad, gate = f.path("gate-bad"), f.path("gate")
    bad = f.submit("sh", "-c", f"while [ ! -e {gate_bad} ]; do sleep 0.1; done; exit 3")
    first = f.submit("sh", "-c", f"while [ ! -e {gate} ]; do sleep 0.1; done")
    t0 = time.monotonic()
    waiter = f.popen("wait", "--all", "--timeout", "120")

    def at(s):
        time.sleep(max(0.0, s - (time.monotonic() - t0)))
    try:
        at(5)  # the waiter's ssh login and its first request
        later = f.submit("sleep", "120")
        at(6)
        open(gate_bad, "w").close()  # fails within the first 10 s answer
        at(16)  # past that answer: the wait was sent again
        assert waiter.poll() is None, waiter.communicate()
        open(gate, "w").close()
        out, err = waiter.communicate(timeout=60)
    finally:
        if waiter.poll() is None:
            waiter.kill()
            waiter.wait(10)
    assert waiter.returncode == 4, err
    assert f"job {bad} failed" in err, err
    assert f.state(first) == "done"
    assert f.state(later) == "running", "the wait sent again took a job submitted later"


def test_remote_wait_counts_a_failure_between_two_requests(request, sshd):
    """docs/protocol.md, "wait for all jobs": a job that fails after one of
    the 10 s answers and before the request sent again (the client is
    stopped meanwhile) is counted by that request: exit 4."""
    f = ferry_world(request, "ssh")
    gate_bad, gate = f.path("gate-bad"), f.path("gate")
    bad = f.submit("sh", "-c", f"while [ ! -e {gate_bad} ]; do sleep 0.1; done; exit 3")
    f.submit("sh", "-c", f"while [ ! -e {gate} ]; do sleep 0.1; done")
    t0 = time.monotonic()
    waiter = f.popen("wait", "--all", "--timeout", "120")

    def at(s):
        time.sleep(max(0.0, s - (time.monotonic() - t0)))
    try:
        at(5)  # the waiter's ssh login and its first two requests
        waiter.send_signal(signal.SIGSTOP)
        at(20)  # the second request's 10 s answer is out, unread
        open(gate_bad, "w").close()  # fails while no request of the wait is parked
        f.wait_ended(bad)
        waiter.send_signal(signal.SIGCONT)
        at(23)
        assert waiter.poll() is None, waiter.communicate()
        open(gate, "w").close()
        out, err = waiter.communicate(timeout=60)
    finally:
        if waiter.poll() is None:
            waiter.send_signal(signal.SIGCONT)
            waiter.kill()
            waiter.wait(10)
    assert waiter.returncode == 4, err
    assert f"job {bad} failed" in err, err
