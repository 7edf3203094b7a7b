"""Hardening (issue 21, item 7): a database that lost jobs it had
acknowledged - its write-ahead log cut short or removed after a crash, or
an older copy put back - is found when the engine starts. The engine says
so (ferryd.log, the hello's warnings, `ferry daemon status`), records each
lost job that left a directory as failed, and never gives a new job an id
that already has a directory: before the fix the next jobs got those ids,
aborted with "cannot claim ... stale job directory?", and `ferry logs`
showed the old jobs' output."""
import os
import shutil
import signal
import time

import pytest

from conftest import poll

LOST_WORDS = "database lost this job"


def db_path(ferry):
    return os.path.join(ferry.state_dir, "ferry.db")


def wal_path(ferry):
    return db_path(ferry) + "-wal"


def log_text(ferry):
    try:
        with open(os.path.join(ferry.state_dir, "ferryd.log")) as f:
            return f.read()
    except FileNotFoundError:
        return ""


def run_jobs(ferry, tag, n):
    ids = [ferry.submit("echo", f"{tag}-{k}") for k in range(n)]
    ferry.run("wait", "--timeout", "30", *ids, timeout=40)
    return ids


def lose_tail(ferry, how):
    """Jobs 1-3 are in ferry.db itself, 4-6 only in its log (or only in a
    later copy); then the log or the file is damaged as `how` says."""
    old = run_jobs(ferry, "old", 3)
    ferry.run("daemon", "stop")  # a clean stop folds the log into ferry.db
    if how == "older-copy":
        shutil.copy(db_path(ferry), db_path(ferry) + ".old")
    lost = run_jobs(ferry, "lost", 3)
    assert old == [1, 2, 3] and lost == [4, 5, 6]
    if how == "older-copy":
        ferry.run("daemon", "stop")
        os.replace(db_path(ferry) + ".old", db_path(ferry))
        if os.path.exists(wal_path(ferry)):
            os.unlink(wal_path(ferry))
        return old, lost
    ferry.kill_engine(signal.SIGKILL)
    size = os.path.getsize(wal_path(ferry))
    assert size > 32, "the crashed engine's log should hold jobs 4-6"
    if how == "wal-deleted":
        os.unlink(wal_path(ferry))
    else:
        keep = {"wal-truncated-empty": 0, "wal-truncated-header": 32,
                "wal-truncated-half": size // 2}[how]
        with open(wal_path(ferry), "r+b") as f:
            f.truncate(keep)
    return old, lost


def status_warnings(ferry):
    cp = ferry.run("daemon", "status")
    assert cp.stdout.startswith("running"), cp
    return [ln for ln in cp.stderr.splitlines() if "warning:" in ln]


@pytest.mark.parametrize("how", ["wal-truncated-empty", "wal-truncated-header",
                                 "wal-truncated-half", "wal-deleted", "older-copy"])
def test_lost_jobs_are_found_and_their_ids_never_reused(ferry, how):
    old, lost = lose_tail(ferry, how)
    new = ferry.submit("echo", "new-job")
    assert new == 7, f"a new job got id {new}, which a lost job's directory holds"
    j = ferry.wait_ended(new)
    assert j["status"] == "done", j
    assert ferry.run("logs", new).stdout == "new-job\n"

    for k, i in enumerate(old):
        assert ferry.info(i)["status"] == "done"
    gone = []
    for k, i in enumerate(lost):
        j = ferry.info(i)
        # the old job's output stays its own
        assert ferry.run("logs", i).stdout == f"lost-{k}\n"
        if j["status"] == "done":  # its row survived the damage
            continue
        assert j["status"] == "failed" and j["exit_status"] == "finished_unclear_condition"
        assert LOST_WORDS in j["message"] and os.path.join("jobs", str(i)) in j["message"], j
        gone.append(i)
    if how != "wal-truncated-half":  # a cut in the middle may keep some
        assert gone == lost

    log = log_text(ferry)
    warnings = status_warnings(ferry)
    if gone:
        assert "had lost jobs" in log and f"to {lost[-1]}" in log, log
        assert len(warnings) == 1 and "lost jobs" in warnings[0], warnings
        assert "ids above 6" in warnings[0], warnings
    else:
        assert "had lost jobs" not in log and not warnings
    # the lost jobs show in listings like other ended jobs
    listed = ferry.json("jobs")
    assert [x["id"] for x in listed] == old + lost + [new]
    ferry.run("jobs")
    ferry.run("info", lost[-1])


def test_a_restart_after_finding_lost_jobs_finds_nothing_new(ferry):
    lose_tail(ferry, "wal-deleted")
    assert ferry.submit("true") == 7
    ferry.run("daemon", "stop")
    assert ferry.submit("true") == 8
    # the warning lasts (a week), across engines, in the log of each
    assert len(status_warnings(ferry)) == 1
    assert log_text(ferry).count("warning: on ") == 2
    assert ferry.json("jobs")[3]["message"] == ferry.json("info", 4)["message"]


def test_lost_jobs_beyond_a_gap_and_claims_only(ferry):
    """Only directories say a job existed: ids lost without one (queued
    jobs that never started) are skipped too, and a directory with only a
    claim (a job that was starting) counts."""
    lose_tail(ferry, "older-copy")
    jobs_dir = os.path.join(ferry.state_dir, "jobs")
    os.makedirs(os.path.join(jobs_dir, "9"))
    with open(os.path.join(jobs_dir, "9", "claim"), "w") as f:
        f.write("1 1\n")
    os.makedirs(os.path.join(jobs_dir, "not-a-job"))
    new = ferry.submit("true")
    assert new == 10
    assert ferry.wait_ended(new)["status"] == "done"
    with pytest.raises(AssertionError):
        ferry.info(8)  # nothing left of it: it stays unknown
    assert LOST_WORDS in ferry.info(9)["message"]
    w = status_warnings(ferry)
    assert "jobs 4 to 9 or more" in w[0] and "4 of them left a directory" in w[0], w


def test_lost_jobs_and_the_warning_expire_like_ended_jobs(ferry):
    lose_tail(ferry, "wal-truncated-empty")
    ferry.env["FERRYD_TEST_HOUR_SECONDS"] = "0.02"  # a week is 3.4 s
    t0 = time.monotonic()
    assert ferry.submit("true") == 7
    assert len(status_warnings(ferry)) == 1
    assert ferry.info(4)["status"] == "failed"
    poll(lambda: not status_warnings(ferry), 20, 0.2, "the warning to expire")
    assert time.monotonic() - t0 > 3
    poll(lambda: not os.path.exists(os.path.join(ferry.state_dir, "jobs", "4")), 20, 0.2,
         "the lost job's directory to be disposed of")
    assert ferry.submit("true") == 8
