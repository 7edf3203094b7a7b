"""Submits of any size in one call (issue 20): `ferry submit --bulk` reads
its file a part of 65,536 jobs at a time and the library sends each part
in batches; a failure part-way says how many jobs were submitted, names
the file's line, and the ids printed are the jobs that exist.

The files are of held jobs (nothing runs) and big enough to cross the
old one-frame limit (16 MiB, near 60,000 lines) and the CLI's parts. The
tests share one xdist group so that they run one after the other, not
both workers at once on a 2-core machine."""
import os
import re
import signal

import pytest

from conftest import poll

pytestmark = pytest.mark.xdist_group("bulk_scale")

CHUNK = 65536  # the CLI's part (src/cli/submit.c, BULK_CHUNK)


def write_bulk(ferry, name, n, bad=None):
    """A file of n lines `true K`; bad: {line number (from 1): text}."""
    bad = bad or {}
    path = ferry.path(name)
    with open(path, "w") as f:
        for k in range(1, n + 1):
            f.write(bad.get(k, f"true {k}") + "\n")
    return path


def status(ferry, job_id):
    return ferry.run("status", job_id).stdout.strip()


def test_bulk_100k_in_one_call(ferry):
    path = write_bulk(ferry, "jobs.txt", 100_000)
    cp = ferry.run("submit", "--hold", "--bulk", path, timeout=300)
    ids = [int(x) for x in cp.stdout.split()]
    assert len(ids) == 100_000, cp.stderr
    assert ids == list(range(ids[0], ids[0] + 100_000)), "ids not distinct and consecutive"
    for i in (0, CHUNK - 1, CHUNK, 99_999):  # both sides of a part's end
        assert status(ferry, ids[i]) == "user_on_hold"
        assert ferry.info(ids[i])["command"] == ["true", str(i + 1)]
    cp = ferry.run("status", ids[-1] + 1, check=False)
    assert cp.returncode == 1, "a job past the last id printed exists"


def test_bulk_bad_line_midway_reports_partial(ferry):
    """A line the CLI cannot read, in the file's second part: the first
    part is submitted and its ids printed, nothing after."""
    path = write_bulk(ferry, "jobs.txt", 200_000, {100_001: "echo 'unclosed"})
    cp = ferry.run("submit", "--hold", "--bulk", path, check=False, timeout=300)
    assert cp.returncode == 1, cp
    assert re.search(r"jobs\.txt:100001: .*quote", cp.stderr), cp.stderr
    assert f"{CHUNK} jobs submitted (their ids are printed), the others not" in cp.stderr, \
        cp.stderr
    ids = [int(x) for x in cp.stdout.split()]
    assert ids == list(range(ids[0], ids[0] + CHUNK)), "ids printed are not the first part"
    assert status(ferry, ids[0]) == "user_on_hold"
    assert status(ferry, ids[-1]) == "user_on_hold"
    assert ferry.run("status", ids[-1] + 1, check=False).returncode == 1, \
        "a job past the ids printed was submitted"


def test_bulk_engine_refusal_midway_reports_partial(ferry):
    """A job only the engine refuses (an argument over the kernel's 128
    KiB): the batches before it are submitted, the message names the
    line and how many jobs were, and every id printed is a job."""
    big = "x" * (200 * 1024)
    path = write_bulk(ferry, "jobs.txt", 20_000, {10_001: f"true {big}"})
    cp = ferry.run("submit", "--hold", "--bulk", path, check=False, timeout=300)
    assert cp.returncode == 1, cp
    m = re.search(r"jobs\.txt:10001: .*longer than 131072 bytes.*; (\d+) jobs submitted",
                  cp.stderr)
    assert m, cp.stderr
    ids = [int(x) for x in cp.stdout.split()]
    assert len(ids) == int(m.group(1)), (len(ids), cp.stderr)
    assert 0 < len(ids) < 20_000
    assert len(set(ids)) == len(ids)
    # the jobs before the bad one's batch are all there, in order
    assert ids[:5_000] == list(range(ids[0], ids[0] + 5_000))
    for i in (0, len(ids) // 2, len(ids) - 1):
        assert status(ferry, ids[i]) == "user_on_hold"


def test_bulk_key_resubmit_part_way_is_idempotent(ferry):
    """With --key, the same file again after a partial failure gives the
    jobs already made their first ids and makes only the others."""
    path = write_bulk(ferry, "jobs.txt", 70_000, {68_001: "echo 'unclosed"})
    cp = ferry.run("submit", "--hold", "--key", "k", "--bulk", path, check=False, timeout=300)
    assert cp.returncode == 1, cp
    first = [int(x) for x in cp.stdout.split()]
    assert len(first) == CHUNK
    path = write_bulk(ferry, "jobs.txt", 70_000)
    cp = ferry.run("submit", "--hold", "--key", "k", "--bulk", path, timeout=300)
    again = [int(x) for x in cp.stdout.split()]
    assert again[:CHUNK] == first, "a resubmitted key made a second job"
    assert again == list(range(first[0], first[0] + 70_000))


def test_bulk_stdin_streams(ferry):
    text = "".join(f"true {k}\n" for k in range(CHUNK + 10))
    cp = ferry.run("submit", "--hold", "--json", "--bulk", "-", input=text, timeout=300)
    ids = __import__("json").loads(cp.stdout)
    assert ids == list(range(ids[0], ids[0] + CHUNK + 10))


def test_engine_killed_during_pipelined_submit(ferry):
    """The engine dies while batches are in flight: the library starts a
    new one, sends again, in order, every batch without an answer (their
    keys return the ids of those that were committed) and goes on. The
    ids come out consecutive and no job exists past them: none twice."""
    from test_remote import Driver  # noqa: E402 (the driver of test_remote.py)

    d = Driver(ferry)
    try:
        d.ok("connect local", timeout=30)
        pid = int(open(ferry.pid_path).read())
        d.send("submit_held 100000 true")
        # Kill once the engine writes the submit (its WAL grows): a fixed
        # sleep lost the race to the whole submit once held jobs got cheap.
        # (The engine locks its database: no reader can look inside.)
        wal = os.path.join(ferry.state_dir, "ferry.db-wal")
        size = os.path.getsize(wal)
        poll(lambda: os.path.getsize(wal) > size + (1 << 20), 60, interval=0.002,
             what="the engine writing the submit")
        os.kill(pid, signal.SIGKILL)
        a = d.answer(timeout=240)
        assert a.startswith("ok") and len(a.split()) == 100_001, a[:300]
        ids = [int(x) for x in a.split()[1:]]
        assert ids == list(range(ids[0], ids[0] + 100_000)), "ids out of order or a job twice"
        assert int(open(ferry.pid_path).read()) != pid, "the engine was not killed in time"
        assert ferry.run("status", ids[-1] + 1, check=False).returncode == 1, \
            "a job past the last id exists: a replay made a new job"
    finally:
        d.close()


def test_a_batch_key_answers_a_replay_with_the_first_ids(ferry):
    """The key libferry gives each batch of a submit: the same request
    again (its replay after a lost reply) answers the ids of the first and
    makes no job; the key with other jobs, or not a key, is refused; a
    job's own key still gives its first id, within a new batch too."""
    ferry.env["FERRYD_TEST_HOUR_SECONDS"] = "0.05"  # the keys' week is 8.4 s
    ferry.run("daemon", "start")
    cwd = ferry.path()
    jobs = [{"argv": ["true", str(k)], "working_directory": cwd, "hold": True}
            for k in range(3)]
    jobs.append(dict(jobs[0], submission_key="own"))
    req = {"op": "submit", "jobs": jobs, "key": "batch-1"}
    with ferry.raw() as c:
        c.hello()
        first = c.request(req)
        assert first["ok"], first
        assert c.request(req) == first
        r = c.request(dict(req, jobs=jobs[:2]))
        assert r["message"].startswith("key 'batch-1' is of another batch of jobs"), r
        for bad in ("", 3, "k" * 129):
            r = c.request(dict(req, key=bad))
            assert r["error"] == "EINVAL" and "'key' must be a string" in r["message"], r
        other = c.request(dict(req, key="batch-2", jobs=jobs[3:]))
        assert other["ids"] == first["ids"][3:], "a job's own key made a second job"
    ids = first["ids"]
    assert ids == list(range(ids[0], ids[0] + 4))
    assert [j["id"] for j in ferry.json("jobs")] == ids
    assert ferry.info(ids[0])["submission_key"] is None
    assert ferry.info(ids[3])["submission_key"] == "own"

    def forgotten():  # the engine's garbage collection runs every tenth of an hour
        with ferry.raw() as c:
            c.hello()
            return c.request(req)["ids"] != ids
    assert poll(forgotten, 60, interval=1, what="the batch key forgotten after a week")


def test_common_fields_of_a_batch_are_each_jobs_unless_it_says_otherwise(ferry):
    """"common" (what libferry sends once for a batch's jobs): each job
    takes its fields, the job's own win, a null one too; it is checked
    as a job spec is."""
    cwd = ferry.path()
    ferry.run("daemon", "start")
    common = {"working_directory": cwd, "hold": True, "name": "shared", "cpus": 1}
    jobs = [{"argv": ["true", "a"]}, {"argv": ["true", "b"], "name": "own"},
            {"argv": ["true", "c"], "name": None, "hold": False}]
    with ferry.raw() as c:
        c.hello()
        r = c.request({"op": "submit", "jobs": jobs, "common": common})
        assert r["ok"], r
        a, b, d = r["ids"]
        for bad, why in (([], "'common' must be an object"),
                         ({"colour": "red"}, "unknown field 'colour' in job spec"),
                         ({"cpus": "two"}, "'cpus' must be an integer")):
            r = c.request({"op": "submit", "jobs": jobs, "common": bad})
            assert r["error"] == "EINVAL" and why in r["message"], r
    got = {i: ferry.info(i) for i in (a, b, d)}
    assert [got[i]["name"] for i in (a, b, d)] == ["shared", "own", None]
    assert [got[i]["status"] for i in (a, b)] == ["user_on_hold", "user_on_hold"]
    assert {got[i]["working_directory"] for i in got} == {cwd}
    assert ferry.wait_ended(d)["status"] == "done"
