"""Held jobs wait in the database (docs/architecture.md, "Held jobs wait in
the database"): a job the user holds on the local scheduler is a row, not
a struct job in the engine; every request still finds it, waits on it,
releases, kills and disposes of it, before and after a restart, and a
kill by selection ends them in one statement. Schema 5 keeps the specs
in a table of their own; a database of schema 4 is carried over."""
import os
import sqlite3
import subprocess
import time

import pytest

from conftest import FERRYD_BIN, SCHEMA_5_TO_4, SCHEMA_6_TO_5, SCHEMA_7_TO_6, SCHEMA_8_TO_7, poll


def rss_kb(pid):
    with open(f"/proc/{pid}/status") as f:
        return next(int(l.split()[1]) for l in f if l.startswith("VmRSS:"))


def bulk(ferry, n, name="held.txt"):
    path = ferry.path(name)
    with open(path, "w") as f:
        f.write("true\n" * n)
    ids = [int(x) for x in
           ferry.run("submit", "--hold", "--bulk", path, timeout=300).stdout.split()]
    assert len(ids) == n
    return ids


def test_held_jobs_act_as_before_across_a_restart(ferry):
    a = ferry.submit("sh", "-c", "echo a", opts=("--hold", "--name", "hx-a"))
    b = ferry.submit("true", opts=("--hold", "--name", "hx-b"))
    c = ferry.submit("true", opts=("--hold", "--name", "other"))
    d = ferry.submit("true", opts=("--hold",))
    for restart in (False, True):
        if restart:
            ferry.run("daemon", "stop", timeout=60)
        assert [ferry.state(i) for i in (a, b, c, d)] == ["user_on_hold"] * 4
        assert ferry.info(a)["command"] == ["sh", "-c", "echo a"]
        assert [j["id"] for j in ferry.json("jobs", "--state", "user_on_hold")] == [a, b, c, d]
        # a wait on a held job waits (it ends only when the user acts)
        cp = ferry.run("wait", str(b), "--timeout", "0.5", check=False, timeout=20)
        assert cp.returncode == 3, cp
        assert ferry.run("hold", str(a)).returncode == 0
        assert ferry.state(a) == "user_on_hold"
        cp = ferry.run("hold", "--state", "user_on_hold")
        assert cp.stdout.strip() == "0 jobs held (4 matched)", cp
    ferry.run("release", str(a))
    ferry.wait_ended(a)
    assert ferry.state(a) == "done"
    assert ferry.run("logs", str(a)).stdout == "a\n"
    cp = ferry.run("kill", "--name", "hx-*")
    assert cp.stdout.strip() == "1 job killed (1 matched)", cp  # a has ended: not taken
    assert ferry.info(b)["exit_status"] == "killed_by_user"
    ferry.run("dispose", str(c))
    assert ferry.run("status", str(c), check=False).returncode != 0
    ferry.run("kill", str(d))
    assert ferry.info(d)["exit_status"] == "killed_by_user"


def test_wait_for_a_held_job_ends_with_its_kill(ferry):
    ids = bulk(ferry, 50)
    ferry.run("daemon", "stop", timeout=60)
    one = ferry.popen("wait", str(ids[3]), "--timeout", "60")
    held = ferry.popen("wait", "--all", "--state", "user_on_hold", "--timeout", "60")
    try:
        time.sleep(1.5)  # both waits are taken
        cp = ferry.run("kill", "--state", "user_on_hold")
        assert cp.stdout.strip() == "50 jobs killed (50 matched)", cp
        _, err1 = one.communicate(timeout=30)
        _, err2 = held.communicate(timeout=30)
    finally:
        for p in (one, held):
            if p.poll() is None:
                p.kill()
                p.wait(10)
    # a killed job failed: both waits say so (exit 4)
    assert one.returncode == 4, err1
    assert held.returncode == 4 and "of the 50 jobs failed" in err2, err2
    assert not ferry.json("jobs", "--state", "user_on_hold")


def test_kill_of_held_jobs_records_what_a_single_kill_does(ferry):
    """The statement that kills held jobs in the database writes the row a
    kill of one job writes: status, exit status, message, disposal time."""
    one = ferry.submit("true", opts=("--hold", "--disposal", "3"))
    many = [ferry.submit("true", opts=("--hold", "--disposal", "3")) for _ in range(3)]
    ferry.run("daemon", "stop", timeout=60)
    ferry.run("kill", str(one))  # the job is taken back and ended
    ferry.run("kill", "--state", "user_on_hold")  # one statement
    ferry.run("daemon", "stop", timeout=60)
    db = sqlite3.connect(os.path.join(ferry.state_dir, "ferry.db"))
    cols = ("state, exit_status, exit_value, signal, cpu_user, cpu_sys, max_rss_kb, wall, "
            "started_at, message, kill_requested, disposed, dispose_after - ended_at")
    rows = [db.execute(f"SELECT {cols} FROM jobs WHERE id = ?", (i,)).fetchone()
            for i in [one] + many]
    db.close()
    assert all(r[:-1] == rows[0][:-1] for r in rows), rows
    assert all(abs(r[-1] - 3 * 3600) < 5 for r in rows), rows
    for i in [one] + many:
        j = ferry.info(i)
        assert j["status"] == "failed" and j["exit_status"] == "killed_by_user", j
        assert j["message"] == "killed by user before it started", j


def test_held_jobs_cost_the_engine_no_memory(ferry):
    """The engine's RSS does not grow with the held jobs (a struct job and
    its hash entry took some 130 bytes a job), and a restart with them
    answers at once and reads none of them."""
    ldd = subprocess.run(["ldd", FERRYD_BIN], capture_output=True, text=True).stdout
    if "libasan" in ldd:
        pytest.skip("AddressSanitizer keeps freed memory in quarantine: the engine's RSS "
                    "says nothing of what it keeps; the plain build checks it")
    bulk(ferry, 20000)
    before = rss_kb(ferry.engine_pid())
    bulk(ferry, 40000, name="more.txt")
    after = rss_kb(ferry.engine_pid())
    assert after - before < 40000 * 40 // 1024, (before, after)
    ferry.run("daemon", "stop", timeout=60)
    t0 = time.monotonic()
    assert ferry.state(1) == "user_on_hold"
    took = time.monotonic() - t0
    restarted = rss_kb(ferry.engine_pid())
    print(f"RSS {before} -> {after} kB from 20,000 to 60,000 held; after a restart "
          f"{restarted} kB, its first call {took:.2f} s")
    assert restarted < before, (before, restarted)


def test_jobs_held_under_a_wait_go_back_to_the_database_when_it_ends(ferry):
    """Queued jobs a `wait --all` marks, then held, stay in memory for the
    wait's sake only: once it ends (here, timed out) they go back to the
    database, and the engine gives their memory back."""
    ldd = subprocess.run(["ldd", FERRYD_BIN], capture_output=True, text=True).stdout
    if "libasan" in ldd:
        pytest.skip("AddressSanitizer keeps freed memory in quarantine; the plain build checks it")
    busy = [ferry.submit("sleep", "300") for _ in range(2)]  # both slots
    path = ferry.path("queued.txt")
    with open(path, "w") as f:
        f.write("true\n" * 20000)
    ferry.run("submit", "--bulk", path, timeout=300)
    before = rss_kb(ferry.engine_pid())
    waiting = ferry.popen("wait", "--all", "--timeout", "4")
    time.sleep(1)  # the wait has marked them
    cp = ferry.run("hold", "--state", "queued_active", timeout=120)
    assert cp.stdout.startswith("20000 jobs held"), cp
    assert waiting.wait(timeout=60) == 3, waiting.stderr.read()
    held = rss_kb(ferry.engine_pid())
    # given back a second after the last big release (engine.c, trim_heap)
    poll(lambda: rss_kb(ferry.engine_pid()) < held - 10000, 15, interval=0.5,
         what=f"the engine's RSS down from {held} kB (before the jobs: {before} kB)")
    assert ferry.state(busy[-1] + 1) == "user_on_hold"
    ferry.run("kill", "--all")


def to_schema_4(path):
    db = sqlite3.connect(path)
    db.executescript(SCHEMA_8_TO_7 + SCHEMA_7_TO_6 + SCHEMA_6_TO_5 + SCHEMA_5_TO_4)
    db.close()


def test_schema_4_database_is_carried_over(ferry):
    ended = ferry.submit("sh", "-c", "echo ended")
    ferry.wait_ended(ended)
    held = ferry.submit("sh", "-c", "echo held", opts=("--hold", "--disposal", "5"))
    killed = ferry.submit("true", opts=("--hold", "--disposal", "7"))
    ferry.run("daemon", "stop", timeout=60)
    path = os.path.join(ferry.state_dir, "ferry.db")
    to_schema_4(path)
    assert ferry.state(ended) == "done"
    assert ferry.info(ended)["command"] == ["sh", "-c", "echo ended"]
    assert ferry.state(held) == "user_on_hold"
    ferry.run("release", str(held))
    ferry.wait_ended(held)
    assert ferry.run("logs", str(held)).stdout == "held\n"
    cp = ferry.run("kill", "--state", "user_on_hold", "--name", "*")
    assert cp.stdout.strip() == "1 job killed (1 matched)", cp
    assert ferry.state(killed) == "failed"
    ferry.run("daemon", "stop", timeout=60)
    db = sqlite3.connect(path)
    assert db.execute("SELECT value FROM meta WHERE key = 'schema'").fetchone() == ("8",)
    cols = [r[1] for r in db.execute("PRAGMA table_info(jobs)")]
    assert "spec" not in cols and "disposal_hours" in cols, cols
    assert db.execute("SELECT count(*) FROM job_specs").fetchone() == (3,)
    after = db.execute("SELECT dispose_after - ended_at FROM jobs WHERE id = ?",
                       (killed,)).fetchone()[0]
    names = [r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type = 'index'")]
    db.close()
    assert abs(after - 7 * 3600) < 5, after
    assert "jobs_live" in names and "jobs_active" not in names, names
    ferry.run("dispose", str(ended))
    ferry.run("daemon", "stop", timeout=60)
    db = sqlite3.connect(path)
    assert db.execute("SELECT count(*) FROM job_specs WHERE id = ?", (ended,)).fetchone() == (0,)
    db.close()


def test_ids_are_never_handed_out_again(ferry):
    """Schema 7: ids are the engine's, not an AUTOINCREMENT sequence's.
    The highest job disposed of (its row gone), then an engine restart,
    and the next job still gets a new id; a refused submit leaves no gap."""
    a = int(ferry.submit("true", opts=["--hold"]))
    b = int(ferry.submit("true", opts=["--hold"]))
    ferry.run("kill", str(b))
    ferry.run("dispose", str(b))
    ferry.run("daemon", "stop", timeout=60)
    db = sqlite3.connect(os.path.join(ferry.state_dir, "ferry.db"))
    assert db.execute("SELECT count(*) FROM jobs WHERE id = ?", (b,)).fetchone() == (0,)
    db.close()
    c = int(ferry.submit("true", opts=["--hold"]))
    assert c == b + 1, (a, b, c)
    with ferry.raw() as r:
        r.hello()
        # job 0 is inserted, job 1 refused after it: the savepoint takes job 0 back
        bad = r.request({"op": "submit", "jobs": [
            {"argv": ["true"], "hold": True, "working_directory": "/"},
            {"argv": [], "working_directory": "/"}]})
        assert not bad["ok"] and "job 1" in bad["message"], bad
    assert int(ferry.submit("true", opts=["--hold"])) == c + 1
    ferry.run("kill", "--all")


def test_schema_6_database_keeps_its_sequence(ferry):
    """A database of schema 6 (AUTOINCREMENT, every key in a UNIQUE index)
    is rebuilt to schema 7: its jobs, specs, keys and indexes are kept, and
    the sequence past a highest job disposed of becomes meta's job_seq."""
    done = ferry.submit("sh", "-c", "echo kept", opts=["--key", "k-done"])
    ferry.wait_ended(done)
    held = ferry.submit("true", opts=["--hold"])
    gone = ferry.submit("true", opts=["--hold"])
    ferry.run("kill", gone)
    ferry.run("dispose", gone)
    ferry.run("daemon", "stop", timeout=60)
    path = os.path.join(ferry.state_dir, "ferry.db")
    db = sqlite3.connect(path)
    db.executescript(SCHEMA_8_TO_7 + SCHEMA_7_TO_6)
    assert db.execute("SELECT seq FROM sqlite_sequence WHERE name = 'jobs'").fetchone() == \
        (int(gone),)
    db.close()
    assert ferry.state(held) == "user_on_hold"
    assert ferry.run("logs", done).stdout == "kept\n"
    new = ferry.submit("true", opts=["--hold"])
    assert int(new) == int(gone) + 1, (gone, new)
    # the key still finds its job, once
    assert ferry.submit("sh", "-c", "echo kept", opts=["--key", "k-done"]) == done
    ferry.run("kill", "--all")
    ferry.run("daemon", "stop", timeout=60)
    db = sqlite3.connect(path)
    assert db.execute("SELECT value FROM meta WHERE key = 'schema'").fetchone() == ("8",)
    assert db.execute("SELECT value FROM meta WHERE key = 'job_seq'").fetchone() == (str(new),)
    assert db.execute("SELECT count(*) FROM sqlite_sequence WHERE name = 'jobs'").fetchone() == \
        (0,)
    sql = dict(db.execute("SELECT name, sql FROM sqlite_master WHERE tbl_name = 'jobs'"))
    db.close()
    assert "AUTOINCREMENT" not in sql["jobs"] and "UNIQUE" not in sql["jobs"], sql["jobs"]
    assert "WHERE skey IS NOT NULL" in sql["jobs_skey"], sql
    for name in ("jobs_state", "jobs_live", "jobs_dispose", "jobs_workflow", "jobs_spec_gone",
                 "jobs_deps_gone"):
        assert name in sql, (name, sorted(sql))
