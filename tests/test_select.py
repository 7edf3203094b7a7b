"""Control by selection (docs/protocol.md, "Selections"): kill, hold,
release, stop, restart and dispose of every job that --all, --state,
--name and id ranges take together, in one request the engine commits
once; the answer counts what matched, changed and was refused, and one
job's refusal never fails the request."""
import json
import os
import re
import signal
import time

import pytest

from conftest import poll

CONF = "[local]\nscheduler = local\nslots = 1\n"


def bulk(ferry, n, hold=True, name="bulk.txt"):
    path = ferry.path(name)
    with open(path, "w") as f:
        f.write("true\n" * n)
    opts = ("--hold",) if hold else ()
    ids = [int(x) for x in ferry.run("submit", *opts, "--bulk", path, timeout=600).stdout.split()]
    assert len(ids) == n
    return ids


def mix(ferry, nended=1):
    """Jobs of each kind, on 1 slot: ended (nended), running, queued (2),
    held (3; two of them named "hx-*"). Returns {kind: [ids]}."""
    ferry.config(CONF)
    ended = [ferry.submit("true") for _ in range(nended)]
    for e in ended:
        ferry.wait_ended(e)
    running = ferry.submit("sleep", "300")
    ferry.wait_state(running, "running")
    queued = [ferry.submit("sleep", "300") for _ in range(2)]
    held = [ferry.submit("true", opts=("--hold", "--name", n)) for n in ("hx-a", "hx-b", "other")]
    for q in queued:
        assert ferry.state(q) == "queued_active"
    return {"ended": ended, "running": [running], "queued": queued, "held": held}


def states(ferry, ids):
    return [ferry.state(i) for i in ids]


def summary(cp):
    m = re.match(r"(\d+) jobs? (\w+) \((\d+) matched(?:; (\d+) not: (.*))?\)$", cp.stdout.strip())
    assert m, cp
    return int(m[1]), m[2], int(m[3]), int(m[4] or 0), m[5] or ""


def test_kill_by_state_takes_only_held_jobs(ferry):
    m = mix(ferry)
    cp = ferry.run("kill", "--state", "user_on_hold")
    assert summary(cp) == (3, "killed", 3, 0, ""), cp
    for i in m["held"]:
        assert ferry.info(i)["exit_status"] == "killed_by_user"
    assert states(ferry, m["queued"]) == ["queued_active"] * 2
    assert states(ferry, m["running"]) == ["running"]
    assert states(ferry, m["ended"]) == ["done"]


def test_hold_all_reports_refusals_and_exits_4(ferry):
    m = mix(ferry)
    cp = ferry.run("hold", "--all", check=False)
    assert cp.returncode == 4, cp
    changed, verb, matched, failed, why = summary(cp)
    # queued -> held; held: nothing to do; running: refused; ended: not taken
    assert (changed, verb, matched, failed) == (2, "held", 6, 1), cp
    assert "has started" in why, why
    assert states(ferry, m["queued"]) == ["user_on_hold"] * 2
    assert states(ferry, m["running"]) == ["running"]
    assert states(ferry, m["held"]) == ["user_on_hold"] * 3
    cp = ferry.run("--json", "hold", "--all", check=False)
    assert cp.returncode == 4
    o = json.loads(cp.stdout)
    assert (o["matched"], o["changed"], o["failed"]) == (6, 0, 1), o
    assert sorted(e["id"] for e in o["errors"]) == sorted(m["running"])
    # an ended job named by its id is taken, and refused
    cp = ferry.run("hold", f"{m['ended'][0]}-{m['ended'][0]}", check=False)
    assert cp.returncode == 4 and "has ended" in summary(cp)[4], cp


def test_release_by_range_and_name(ferry):
    m = mix(ferry)
    a, b, other = m["held"]
    # the name glob and the range combine by AND: other is in the range, not the glob
    cp = ferry.run("release", "--name", "hx-*", f"{a}-{other}")
    assert summary(cp) == (2, "released", 2, 0, ""), cp
    assert ferry.state(other) == "user_on_hold"
    assert ferry.state(a) in ("queued_active", "running", "done")
    # a range and a plain id together: one request
    cp = ferry.run("release", f"{other}-{other}", str(m["ended"][0]), check=False)
    assert cp.returncode == 4, cp
    assert summary(cp)[:4] == (1, "released", 2, 1), cp


def test_stop_and_restart_by_state(ferry):
    m = mix(ferry)
    cp = ferry.run("stop", "--state", "running")
    assert summary(cp) == (1, "stopped", 1, 0, ""), cp
    ferry.wait_state(m["running"][0], "user_suspended")
    cp = ferry.run("restart", "--state", "user_suspended", "--state", "user_on_hold")
    assert summary(cp) == (4, "restarted", 4, 0, ""), cp
    ferry.wait_state(m["running"][0], "running")


def test_dispose_by_selection_removes_rows_and_dirs(ferry):
    m = mix(ferry, nended=4)
    ferry.run("hold", *map(str, m["queued"]))
    done = m["ended"]
    dirs = [os.path.join(ferry.state_dir, "jobs", str(i)) for i in done]
    assert all(os.path.isdir(d) for d in dirs)
    cp = ferry.run("dispose", "--state", "done")
    assert summary(cp) == (4, "disposed", 4, 0, ""), cp
    assert not any(os.path.exists(d) for d in dirs)
    listed = {j["id"] for j in ferry.json("jobs")}
    assert not listed & set(done)
    # held jobs (spec in the database only) disposed by range
    cp = ferry.run("dispose", f"{m['queued'][0]}-{m['held'][-1]}")
    assert summary(cp) == (5, "disposed", 5, 0, ""), cp
    listed = {j["id"] for j in ferry.json("jobs")}
    assert listed == set(m["running"]), listed


def test_bad_selections_are_refused(ferry):
    ferry.submit("true", opts=("--hold",))
    for args, msg in ((("kill",), "no job id given"),
                      (("kill", "5-1"), "5 is above 1"),
                      (("kill", "1-x"), "invalid job id range"),
                      (("kill", "--state", "bogus"), "invalid value for --state: 'bogus'"),
                      (("hold", "--name", ""), "non-empty glob")):
        cp = ferry.run(*args, check=False)
        assert cp.returncode == 2, (args, cp)
        assert msg in cp.stderr, (args, cp.stderr)
    with ferry.raw() as r:
        r.hello()
        for req, msg in (({"action": "kill"}, "missing field 'id'"),
                         ({"action": "kill", "all": False}, "'all' must be true"),
                         ({"action": "kill", "all": 1}, "'all' must be true"),
                         ({"action": "kill", "state": "bogus"}, "unknown job state 'bogus'"),
                         ({"action": "kill", "state": []}, "'state' must be"),
                         ({"action": "kill", "ids": [[5, 1]]}, "'ids'[0] must be"),
                         ({"action": "kill", "ids": [1, [2]]}, "'ids'[1] must be"),
                         ({"action": "kill", "ids": [0]}, "'ids'[0] must be"),
                         ({"action": "kill", "ids": "1-5"}, "'ids' must be"),
                         ({"action": "kill", "ids": []}, "'ids' must be"),
                         ({"action": "kill", "name": 3}, "'name' must be"),
                         ({"action": "kill", "id": 1, "all": True}, "exclude each other"),
                         ({"action": "nuke", "all": True}, "unknown action 'nuke'")):
            rep = r.request({"op": "control", **req})
            assert rep["ok"] is False and rep["error"] == "EINVAL", (req, rep)
            assert msg in rep["message"], (req, rep)
        rep = r.request({"op": "dispose", "state": "bogus"})
        assert rep["ok"] is False and "unknown job state" in rep["message"], rep
        # nothing was killed by the refused requests
        rep = r.request({"op": "control", "action": "kill", "ids": [[1, 1000]]})
        assert (rep["matched"], rep["changed"], rep["failed"]) == (1, 1, 0), rep


@pytest.mark.xdist_group("heavy")
def test_100k_held_killed_in_one_request_and_kept_after_sigkill(ferry):
    n = 100_000
    ids = bulk(ferry, n)
    with ferry.raw(timeout=120) as r:
        r.hello()
        t0 = time.monotonic()
        rep = r.request({"op": "control", "action": "kill", "state": "user_on_hold"})
        took = time.monotonic() - t0
    assert rep["ok"] is True, rep
    assert (rep["matched"], rep["changed"], rep["failed"]) == (n, n, 0), rep
    print(f"kill --state user_on_hold of {n}: {took:.2f}s, {n / took:,.0f} jobs/s")
    assert took < 30, f"{n} kills took {took:.1f}s"
    # the answer came after the commit: a SIGKILL now loses nothing
    ferry.kill_engine(signal.SIGKILL)
    for i in (ids[0], ids[n // 2], ids[-1]):
        assert ferry.state(i) == "failed"
    assert ferry.json("jobs", "--state", "user_on_hold") == []
    assert len(ferry.json("jobs", "--state", "failed")) == n


def test_killed_held_jobs_keep_their_disposal_time(ferry):
    """A held job's spec is in the database only: its end reads the
    disposal time there (a job of 2 hours goes, one of the default 168
    stays)."""
    ferry.env["FERRYD_TEST_HOUR_SECONDS"] = "1"
    short = ferry.submit("true", opts=("--hold", "--disposal", "2"))
    default = ferry.submit("true", opts=("--hold",))
    cp = ferry.run("kill", "--all")
    assert summary(cp) == (2, "killed", 2, 0, ""), cp
    poll(lambda: ferry.run("status", short, check=False).returncode == 1, 15,
         what=f"job {short} disposed of after 2 s")
    assert ferry.state(default) == "failed"
