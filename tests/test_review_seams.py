"""Reproducers from the review of issue 20's merge (held jobs in the
database, the failure log, listings as text): each test states what the
documentation promises and fails on the code it was written against."""
import os
import subprocess
import time

import pytest

from conftest import FERRY_BIN, FERRYD_BIN, frame, poll


def test_a_failure_outside_the_set_counts_the_same_in_or_between_requests(ferry):
    """docs/protocol.md, "wait for all jobs": "Every failure up to an
    answer's mark was counted by that request or happened before it took
    its jobs" and a failure "counts by its job's id alone, whatever state
    the job had when the first request took its set (a held job released
    and failed in a gap counts)". A held job killed while a request waits
    must then count too (in that answer or the next one); it counts
    only when the kill falls in a gap."""
    gap = ferry.submit("true", opts=("--hold",))
    during = ferry.submit("true", opts=("--hold",))
    ferry.submit("sleep", "60")
    with ferry.raw() as c:
        c.hello()
        first = c.request({"op": "wait", "all": True, "timeout": 0})
        upto, mark = first["upto"], first["mark"]
        assert first["jobs"] == 1 and upto > during, first
        ferry.run("kill", str(gap))  # between two requests
        r = c.request({"op": "wait", "all": True, "upto": upto, "failed_since": mark,
                       "timeout": 0})
        assert r["failed_ids"] == [gap], r
        mark = r["mark"]
        # the same kill while the next request waits
        c.send(frame({"op": "wait", "all": True, "upto": upto, "failed_since": mark,
                      "timeout": 3}))
        time.sleep(1)
        ferry.run("kill", str(during))
        r, _ = c.recv()
        r2 = c.request({"op": "wait", "all": True, "upto": upto, "failed_since": r["mark"],
                        "timeout": 0})
    assert during in r["failed_ids"] + r2["failed_ids"], (r, r2)


def test_a_disposed_jobs_failure_is_not_counted(ferry):
    """A job disposed since does not fail a wait for all jobs (its
    failures go with its row), whichever failure was recorded last.
    docs/protocol.md carves out the last one ("unless its failure was the
    last one recorded"): whether a disposed job fails the wait then hangs
    on whether another job failed after it. Keeping the last row with its
    job cleared (job = 0, not counted) keeps the numbering without that."""
    bad = ferry.submit("sh", "-c", "sleep 1; exit 1")
    ferry.submit("sleep", "60")
    with ferry.raw() as c:
        c.hello()
        first = c.request({"op": "wait", "all": True, "timeout": 0})
        assert first["jobs"] == 2, first
        ferry.wait_ended(bad)
        ferry.run("dispose", str(bad))
        r = c.request({"op": "wait", "all": True, "upto": first["upto"],
                       "failed_since": first["mark"], "timeout": 0})
    assert r["failed"] == 0 and r["failed_ids"] == [], r


def rss_kb(pid):
    with open(f"/proc/{pid}/status") as f:
        return next(int(l.split()[1]) for l in f if l.startswith("VmRSS:"))


def test_a_wait_for_held_jobs_keeps_their_ids_only(ferry):
    """docs/architecture.md, "Held jobs wait in the database", and issue
    20: the engine's memory is bounded by what is active. A wait for all
    held jobs (--state user_on_hold) once took every one back as a struct
    job (kilobytes each) and they stayed after the wait returned; it keeps
    their ids now, and they stay in the database."""
    ldd = subprocess.run(["ldd", FERRYD_BIN], capture_output=True, text=True).stdout
    if "libasan" in ldd:
        pytest.skip("AddressSanitizer's quarantine hides what the engine keeps")
    n = 40000
    path = ferry.path("held.txt")
    with open(path, "w") as f:
        f.write("true\n" * n)
    ferry.run("submit", "--hold", "--bulk", path, timeout=300)
    ferry.run("daemon", "stop", timeout=60)
    assert ferry.state(1) == "user_on_hold"  # a new engine, none in memory
    before = rss_kb(ferry.engine_pid())
    cp = ferry.run("wait", "--all", "--state", "user_on_hold", "--timeout", "0.1", check=False)
    assert cp.returncode == 3, cp  # timed out: nothing ended
    after = rss_kb(ferry.engine_pid())
    print(f"RSS {before} -> {after} kB after a 0.1 s wait for {n} held jobs")
    # the wait keeps 8 bytes an id; SQLite's page cache, read through for
    # the ids, grows to its 2 MiB (cache_size's default) whatever n is
    assert after - before < 2048 + n * 40 // 1024, (before, after)


def test_a_wait_for_all_counts_held_jobs_that_end_in_the_database(ferry):
    """The ids a wait for all keeps: a released one is taken back and
    marked, so its end counts; the others, killed by one statement in
    the database, count too; a held job of no selection stays held."""
    ids = [ferry.submit("true", opts=["--hold"]) for _ in range(4)]
    ferry.run("daemon", "stop", timeout=60)
    ferry.state(ids[0])  # a new engine: the held jobs wait in the database
    pid = ferry.engine_pid()

    def sockets():
        found = set()
        for fd in os.listdir(f"/proc/{pid}/fd"):
            try:
                link = os.readlink(f"/proc/{pid}/fd/{fd}")
            except OSError:
                continue
            if link.startswith("socket:"):
                found.add(link)
        return found
    # A new socket, not more of them: the engine may still hold the
    # connection of the call before, and close it while the wait comes.
    idle = sockets()
    w = subprocess.Popen([FERRY_BIN, "wait", "--all", "--state", "user_on_hold",
                          "--timeout", "60"], env=ferry.env, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True)
    poll(lambda: sockets() - idle or w.poll() is not None, what="the wait's connection")
    assert w.poll() is None, w.communicate()
    time.sleep(0.5)  # its request is read in the loop's next turn
    ferry.run("release", str(ids[0]))
    ferry.wait_ended(ids[0])
    assert w.poll() is None  # three still held
    ferry.run("kill", f"{ids[1]}-{ids[2]}")
    time.sleep(0.5)
    assert w.poll() is None  # the last still held
    ferry.run("kill", str(ids[3]))
    out, err = w.communicate(timeout=30)
    assert w.returncode == 4, (w.returncode, out, err)  # 4: some failed
    assert [f"job {i} failed: killed_by_user" in err for i in ids] == [False, True, True, True]
    assert ferry.state(ids[0]) == "done"


def test_jobs_held_after_their_submit_leave_memory(ferry):
    """Held jobs wait in the database: not only those submitted held, or
    found held at a start. A queued job the user holds (hold_one) once
    stayed a struct job, its spec in memory, until it ended or the engine
    restarted; it goes back to the database now
    (ferry__engine_job_settle)."""
    ldd = subprocess.run(["ldd", FERRYD_BIN], capture_output=True, text=True).stdout
    if "libasan" in ldd:
        pytest.skip("AddressSanitizer's quarantine hides what the engine keeps")
    ferry.submit("sleep", "60")
    ferry.submit("sleep", "60")  # both slots taken: the rest stays queued
    n = 20000
    path = ferry.path("queued.txt")
    with open(path, "w") as f:
        f.write("true\n" * n)
    before = rss_kb(ferry.engine_pid())
    ferry.run("submit", "--bulk", path, timeout=300)
    queued = rss_kb(ferry.engine_pid())
    cp = ferry.run("hold", "--state", "queued_active")
    assert cp.stdout.strip() == f"{n} jobs held ({n} matched)", cp
    # freed and the heap trimmed after the reply went out: most goes back
    poll(lambda: rss_kb(ferry.engine_pid()) - before < (queued - before) // 2, timeout=5)
    held = rss_kb(ferry.engine_pid())
    print(f"RSS {before} kB, {queued} kB with {n} queued, {held} kB once they are held")
    assert held - before < (queued - before) // 2, (before, queued, held)


HOSTILE_SPECS = [
    b'[]', b'"x"', b'{', b'', b'{"argv":[["a"]],"cpus":1e300,"name":7}',
    b'{"argv":["a",1,null,true],"cpus":99999999999999999999,"env":"x"}',
    b'{"name":"\xff\xfe","argv":["\xc3"],"stdout_path":5,"join_stderrout":"true"}',
    b'{"cpus":-9223372036854775808,"memory_mb":1.5,"hold":1,"argv":[]}',
    b'{"a":1,"a":2,"name":"n","name":"m","argv":["x"]}',
    b'{"name":"\\u0000ff","argv":["\\ud800"]}',
]


def test_a_damaged_spec_lists_as_info_shows_it(ferry):
    """dbrow.c reads a stored spec by scanning it, and falls back to
    jansson: whatever a damaged database holds, the engine stays up, and a
    listing's line is the object `info` gives."""
    import json
    import sqlite3
    ids = [ferry.submit("true", opts=("--hold",)) for _ in HOSTILE_SPECS]
    ferry.run("daemon", "stop", timeout=60)
    db = sqlite3.connect(os.path.join(ferry.state_dir, "ferry.db"))
    db.text_factory = bytes
    for i, s in zip(ids, HOSTILE_SPECS):
        db.execute("UPDATE job_specs SET spec = CAST(? AS TEXT) WHERE id = ?", (s, i))
    db.commit()
    db.close()
    lines = ferry.run("jobs", "--jsonl").stdout.splitlines()
    listed = {j["id"]: j for j in map(json.loads, lines)}
    for i in ids:
        assert listed[i] == ferry.info(i), (i, listed[i])
    asan_clean(ferry)


def asan_clean(ferry):
    log = os.path.join(ferry.state_dir, "ferryd.log")
    text = open(log, errors="replace").read() if os.path.exists(log) else ""
    assert "Sanitizer" not in text and "runtime error" not in text, text[-4000:]


def test_a_kill_of_held_jobs_logs_each_failure_once(ferry):
    """Overlapping ranges, held jobs in memory (a wait names one) and in
    the database, a running one: each job killed has one row in the
    failure log, and the answer counts each job once."""
    import sqlite3
    held = [ferry.submit("true", opts=("--hold",)) for _ in range(6)]
    ferry.run("daemon", "stop", timeout=60)  # all of them in the database
    waiter = ferry.popen("wait", str(held[2]), "--timeout", "60")
    try:
        time.sleep(1)  # the wait took held[2] back into memory
        cp = ferry.run("kill", f"{held[0]}-{held[3]}", f"{held[2]}-{held[5]}", check=False)
        waiter.communicate(timeout=30)
    finally:
        if waiter.poll() is None:
            waiter.kill()
            waiter.wait(10)
    assert cp.stdout.strip() == "6 jobs killed (6 matched)", cp
    ferry.run("daemon", "stop", timeout=60)
    db = sqlite3.connect(os.path.join(ferry.state_dir, "ferry.db"))
    rows = sorted(r[0] for r in db.execute("SELECT job FROM failures"))
    db.close()
    assert rows == held, rows
