"""Edges of issue 20's work. Clients that misbehave around the streamed
listing and wait --all (pipelining behind a listing, half-closing,
hanging up mid-listing or mid-wait, jobs disposed while a wait for all
holds them): the engine stays up, answers the others and leaks nothing
(run under ASan). Held jobs whose spec is in the database only: every
path that needs it, and a restart that must not load them all again."""
import os
import signal
import socket
import time

import pytest

from conftest import frame


def held(ferry, n):
    path = ferry.path("held.txt")
    with open(path, "w") as f:
        f.write("true\n" * n)
    out = ferry.run("submit", "--hold", "--bulk", path, timeout=120).stdout.split()
    assert len(out) == n
    return [int(x) for x in out]


def asan_clean(ferry):
    log = os.path.join(ferry.state_dir, "ferryd.log")
    text = open(log, errors="replace").read() if os.path.exists(log) else ""
    assert "Sanitizer" not in text and "runtime error" not in text, text[-4000:]


def test_listing_pipelined_half_closed_and_dropped(ferry):
    ids = held(ferry, 3000)
    # requests behind a listing, then a half-close: all answered, in order
    with ferry.raw() as c:
        c.hello()
        c.send(frame({"op": "jobs", "page": 7}) + frame({"op": "ping"}) +
               frame({"op": "jobs", "page": 1000, "limit": 5}))
        c.sock.shutdown(socket.SHUT_WR)
        got = []
        while True:
            r = c.recv()[0]
            assert r["ok"], r
            got += r.get("ids", [])
            if not r.get("more"):
                break
        assert got == ids
        assert "ids" not in c.recv()[0]  # the ping's reply
        r = c.recv()[0]
        assert r["ids"] == ids[:5] and r["more"] is False
        assert c.is_closed()
    # listings dropped after a page, or before any, by many clients
    for i in range(20):
        c = ferry.raw()
        c.hello()
        c.send(frame({"op": "jobs", "page": 1, "detail": True}))
        if i % 2:
            c.recv()
        c.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\0\0\0\0\0\0\0")
        c.close()  # a reset, with pages under way
    with ferry.raw() as c:
        c.hello()
        assert c.request({"op": "ping"})["ok"]
    assert len(ferry.json("jobs")) == 3000
    ferry.run("daemon", "stop", timeout=60)
    asan_clean(ferry)


def test_wait_all_hung_up_and_jobs_disposed_under_it(ferry):
    ids = held(ferry, 200)
    a, b = ferry.raw(), ferry.raw()
    try:
        for c in (a, b):
            c.hello()
            c.send(frame({"op": "wait", "all": True, "state": "user_on_hold"}))
        time.sleep(0.5)
        # disposed while both waits mark them
        ferry.run("dispose", *map(str, ids[:100]))
        a.close()  # gone with its marks on the rest
        ferry.run("kill", *map(str, ids[100:150]))
        ferry.run("dispose", *map(str, ids[150:]))
        r = b.recv()[0]
        assert r["ok"] and r["jobs"] == 200 and r["pending"] == 0, r
        assert r["failed"] == 50, r  # killed ones failed; disposed ones did not
    finally:
        a.close()
        b.close()
    # a wait left parked at the stop: its marks go before the jobs
    more = held(ferry, 10)
    c = ferry.raw()
    c.hello()
    c.send(frame({"op": "wait", "all": True, "state": "user_on_hold"}))
    time.sleep(0.3)
    ferry.run("daemon", "stop", timeout=60)
    c.close()
    asan_clean(ferry)
    assert ferry.state(more[0]) == "user_on_hold"


def test_held_jobs_spec_from_the_database(ferry):
    """A held job's spec lives in its row only: its kill, its release
    (before and after a restart) and its info still use it."""
    out = ferry.path("out.txt")
    a = ferry.submit("sh", "-c", "echo hello-a", opts=("--hold", "--disposal", "2"))
    b = ferry.submit("sh", "-c", "echo hello-b", opts=("--hold", "--stdout", out))
    c = ferry.submit("true", opts=("--hold",))
    assert ferry.info(b)["stdout_path"] == out
    ferry.run("kill", a)
    ja = ferry.info(a)
    assert ja["status"] == "failed"
    ferry.run("daemon", "stop", timeout=60)
    import sqlite3
    db = sqlite3.connect(os.path.join(ferry.state_dir, "ferry.db"))
    ended, after = db.execute("SELECT ended_at, dispose_after FROM jobs WHERE id = ?",
                              (a,)).fetchone()
    db.close()
    assert abs(after - ended - 2 * 3600) < 5, (ended, after)
    ferry.run("release", b)
    ferry.wait_ended(b)
    assert open(out).read() == "hello-b\n"
    ferry.run("release", c)
    ferry.wait_ended(c)
    assert ferry.state(c) == "done"


def rss_kb(pid):
    with open(f"/proc/{pid}/status") as f:
        return next(int(l.split()[1]) for l in f if l.startswith("VmRSS:"))


def test_restart_keeps_held_specs_on_disk(ferry):
    """Held jobs' specs stay in the database after a restart too: the
    engine's memory with them is what it was before the restart."""
    env = " ".join(f"--env V{i}={'x' * 40}" for i in range(20))  # specs of some 2 KB
    path = ferry.path("held.txt")
    with open(path, "w") as f:
        f.write("true\n" * 30000)
    ferry.run("submit", "--hold", *env.split(), "--bulk", path, timeout=300)
    before = rss_kb(ferry.engine_pid())
    ferry.run("daemon", "stop", timeout=60)
    ferry.run("daemon", "start", timeout=60)
    ferry.run("jobs", "--limit", "1")
    after = rss_kb(ferry.engine_pid())
    print(f"engine RSS with 30,000 held jobs: {before} kB at submit, {after} kB after restart")
    assert after < before + 20 * 1024, (before, after)


def test_wait_all_counts_failures_across_an_engine_restart(ferry):
    """Jobs that fail while the engine is down, during a wait --all,
    fail the wait: the replayed request must still count them."""
    bad = [ferry.submit("sh", "-c", "sleep 2; exit 1") for _ in range(3)]
    ferry.submit("sleep", "8")
    waiter = ferry.popen("wait", "--all", "--timeout", "60")
    try:
        time.sleep(1)
        os.kill(waiter.pid, signal.SIGSTOP)  # it would restart the engine at once
        ferry.kill_engine()
        time.sleep(3)  # the failing jobs end with no engine
        os.kill(waiter.pid, signal.SIGCONT)
        out, err = waiter.communicate(timeout=60)
    finally:
        if waiter.poll() is None:
            waiter.kill()
            waiter.wait(10)
    assert [ferry.state(b) for b in bad] == ["failed"] * 3
    assert waiter.returncode == 4, err
    for b in bad:
        assert f"job {b} failed" in err, err


def test_wait_all_counts_a_failure_between_two_requests(ferry):
    """docs/protocol.md, "wait for all jobs": a request naming the mark of
    the answer before it counts the failures since, up to its upto, once."""
    bad = ferry.submit("sh", "-c", "sleep 1; exit 1")
    ferry.submit("sleep", "30")
    with ferry.raw() as c:
        c.hello()
        first = c.request({"op": "wait", "all": True, "timeout": 0})
        assert first["ok"] and first["jobs"] == 2 and first["failed"] == 0, first
        upto, mark = first["upto"], first["mark"]
        ferry.wait_ended(bad)
        later = ferry.submit("false")  # above upto: not counted
        ferry.wait_ended(later)
        # without the mark, the gap is lost (an older client's request)
        r = c.request({"op": "wait", "all": True, "upto": upto, "timeout": 0})
        assert r["ok"] and r["jobs"] == 1 and r["failed"] == 0, r
        r = c.request({"op": "wait", "all": True, "upto": upto, "failed_since": mark,
                       "timeout": 0})
        assert r["ok"] and r["jobs"] == 1 and r["pending"] == 1, r
        assert r["failed"] == 1 and r["failed_ids"] == [bad], r
        assert r["mark"] > mark, r
        # the next request from this answer's mark does not count it again
        r = c.request({"op": "wait", "all": True, "upto": upto, "failed_since": r["mark"],
                       "timeout": 0})
        assert r["ok"] and r["failed"] == 0 and r["failed_ids"] == [], r


def test_the_failure_log_comes_to_an_older_database(ferry):
    """A database made before the failure log (same schema version) gains
    it at open; a disposed job's failures go with its row, but for the
    last one, which keeps the next number above every mark given and
    names no job (job 0)."""
    import sqlite3
    bad = ferry.submit("false")
    ferry.wait_ended(bad)
    ferry.run("daemon", "stop")
    db = os.path.join(ferry.state_dir, "ferry.db")
    with sqlite3.connect(db) as h:
        h.execute("DROP TABLE failures")
    h.close()
    bad2 = ferry.submit("false")
    ferry.wait_ended(bad2)
    bad3 = ferry.submit("false")
    ferry.wait_ended(bad3)
    ferry.run("dispose", bad2)
    ferry.run("dispose", bad3)
    with ferry.raw() as c:
        c.hello()
        r = c.request({"op": "wait", "all": True, "timeout": 0})
        assert r["ok"] and r["mark"] == 2, r
    ferry.run("daemon", "stop")
    with sqlite3.connect(db) as h:
        assert h.execute("SELECT value FROM meta WHERE key = 'schema'").fetchone() == ("8",)
        rows = h.execute("SELECT seq, job FROM failures").fetchall()
    h.close()
    assert rows == [(2, 0)], rows  # the last number stays, naming no job


def test_wait_all_upto_0_takes_none(ferry):
    """docs/protocol.md: "With upto (a job id; 0 takes none)"."""
    ferry.submit("sleep", "30")
    with ferry.raw() as c:
        c.hello()
        r = c.request({"op": "wait", "all": True, "upto": 0, "timeout": 5})
        assert r["ok"] and r["jobs"] == 0 and r["upto"] == 0, r
        r = c.request({"op": "wait", "all": True, "timeout": 0})
        assert r["ok"] and r["jobs"] == 1 and r["pending"] == 1, r


@pytest.mark.parametrize("how", ["logs", "stdin"])
def test_a_terminal_named_by_a_job_never_becomes_the_engines(ferry, how):
    """A job whose stdout or stdin is a terminal: the engine (a session
    leader) opens it (for `ferry logs`, or to check a stdin at the
    submit) and must not make it its controlling terminal, whose hang-up
    would stop the engine with SIGHUP."""
    import pty
    ferry.run("daemon", "start")
    pid = ferry.engine_pid()
    master, slave = pty.openpty()
    try:
        tty = os.ttyname(slave)
        os.close(slave)
        if how == "logs":
            jid = ferry.submit("sh", "-c", "echo hi", opts=("--stdout", tty))
            ferry.wait_ended(jid)
            ferry.run("logs", jid, check=False)
        else:
            jid = ferry.submit("true", opts=("--stdin", tty, "--hold"))
    finally:
        os.close(master)  # the terminal hangs up
    time.sleep(1)
    assert ferry.engine_pid() == pid and ferry.engine_alive()
