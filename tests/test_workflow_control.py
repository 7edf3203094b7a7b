"""Workflow control (docs/workflows.md, "Stop, restart, dispose"): stop
kills what has not ended and nothing of the workflow starts after it;
restart runs again the failed, killed and aborted jobs once their
dependencies are done, keeping the done ones; dispose takes the jobs and
the workflow. Real jobs: each appends its name to a file when it runs to
its end, so the file tells what ran, and how many times."""
import os

import pytest

from conftest import poll, term_proof, transport_world
from test_workflow import appender, jobs_of, log, run_to_end, submit

TRANSPORTS = ["local", "ssh", "slurm", pytest.param("drmaa", marks=pytest.mark.xdist_group("sge"))]


@pytest.fixture(params=TRANSPORTS)
def world(request):
    return transport_world(request, request.param, "fy-wfc-")


@pytest.fixture(params=["local", "ssh"])
def near(request):
    return transport_world(request, request.param, "fy-wfc-")


def fixable(ferry, name):
    """A job that fails until the file 'fixed' exists, then appends its name."""
    return {"argv": ["sh", "-c", f"test -e {ferry.path('fixed')} && echo {name} >> "
                                 f"{ferry.path('log')}"]}


def test_restart_after_fixing_the_failing_command(world):
    """soma-workflow's classic: a failing job in the middle; its
    descendants are aborted, the other branch is done; once the command is
    fixed, a restart runs only the failed and aborted jobs, under the same
    ids, and the workflow ends done."""
    f = world
    wf = {"name": "fix-me",
          "jobs": {"a": appender(f, "a"), "seg": fixable(f, "seg"),
                   "c": appender(f, "c"), "d": appender(f, "d"), "o": appender(f, "o")},
          "dependencies": [["a", "seg"], ["seg", "c"], ["c", "d"], ["a", "o"]]}
    w = submit(f, wf)
    st = run_to_end(f, w, timeout=180, code=4)
    assert st["status"] == "done with failures" and st["counts"] == {"done": 2, "failed": 3}, st
    before = jobs_of(f, w)
    assert sorted(log(f)) == ["a", "o"]
    # not fixed yet: a restart runs them again, and they fail again
    cp = f.run("workflow", "restart", w)
    assert cp.stdout.strip() == "3 jobs restarted", cp
    run_to_end(f, w, timeout=180, code=4)
    open(f.path("fixed"), "w").close()
    assert f.json("workflow", "restart", w) == {"restarted": 3}
    st = run_to_end(f, w, timeout=180)
    assert st["status"] == "done" and st["counts"] == {"done": 5}, st
    out = log(f)
    assert sorted(out) == ["a", "c", "d", "o", "seg"], out  # each ran to its end once
    assert out.index("seg") < out.index("c") < out.index("d")
    after = jobs_of(f, w)
    assert {k: j["id"] for k, j in after.items()} == {k: j["id"] for k, j in before.items()}
    for k in ("a", "o"):  # kept as they were
        assert after[k]["started_at"] == before[k]["started_at"], (before[k], after[k])
    for k in ("seg", "c", "d"):
        j = f.info(after[k]["id"])
        assert j["exit_status"] == "finished_regularly" and j["exit_value"] == 0, j
        assert j["started_at"] > before["seg"]["ended_at"], j
        assert not j.get("message"), j
    assert f.json("workflow", "restart", w) == {"restarted": 0}


def test_stop_kills_and_nothing_starts_until_restart(world):
    """Stop kills the running job and ends the waiting ones; the workflow
    is "stopped" (not "done with failures") until a restart runs them."""
    f = world
    slow = {"argv": ["sh", "-c", f"test -e {f.path('fixed')} || sleep 300; "
                                 f"echo slow >> {f.path('log')}"]}
    wf = {"jobs": {"x": appender(f, "x"), "slow": slow, "s1": appender(f, "s1"),
                   "s2": appender(f, "s2")},
          "dependencies": [["x", "slow"], ["slow", "s1"], ["s1", "s2"]]}
    w = submit(f, wf)
    slow_id = jobs_of(f, w)["slow"]["id"]
    f.wait_state(slow_id, "running", timeout=120)
    res = f.json("workflow", "stop", w)
    # x had ended: not taken; s2 ends with s1, aborted
    assert res["matched"] == 3 and res["changed"] == 2 and res["failed"] == 0, res
    st = run_to_end(f, w, timeout=120, code=4)
    assert st["status"] == "stopped" and st["counts"] == {"done": 1, "failed": 3}, st
    js = jobs_of(f, w)
    assert js["slow"]["exit_status"] == "killed_by_user", js["slow"]
    assert {js[k]["exit_status"] for k in ("s1", "s2")} <= {"killed_by_user", "aborted"}
    assert f.json("workflows")[0]["status"] == "stopped"
    open(f.path("fixed"), "w").close()
    assert f.json("workflow", "restart", w) == {"restarted": 3}
    st = run_to_end(f, w, timeout=180)
    assert st["status"] == "done", st
    assert log(f) == ["x", "slow", "s1", "s2"]


def test_stop_of_an_ended_workflow_changes_nothing(near):
    f = near
    w = submit(f, {"jobs": {"a": appender(f, "a")}})
    run_to_end(f, w)
    assert f.json("workflow", "stop", w)["changed"] == 0
    assert f.json("workflow", "status", w)["status"] == "done"


def test_restart_is_refused_while_a_stop_still_kills(near):
    """A job that outlives SIGTERM (until the kill's SIGKILL, 5 s later)
    keeps the stop going: a restart then would release jobs its end
    aborts."""
    f = near
    argv, trapped = term_proof(f, f"test -e {f.path('fixed')} || sleep 30")
    w = submit(f, {"jobs": {"s": {"argv": argv}, "n": appender(f, "n")},
                   "dependencies": [["s", "n"]]})
    poll(lambda: os.path.exists(trapped), 60, what="the job's trap")
    f.run("workflow", "stop", w)
    cp = f.run("workflow", "restart", w, check=False)
    assert cp.returncode != 0 and "is being stopped" in cp.stderr, cp
    assert "restart it once they have" in cp.stderr
    st = run_to_end(f, w, timeout=60, code=4)
    assert st["status"] == "stopped", st
    open(f.path("fixed"), "w").close()
    assert f.json("workflow", "restart", w) == {"restarted": 2}
    assert run_to_end(f, w, timeout=60)["status"] == "done"


def test_dispose_takes_the_jobs_and_the_workflow(near):
    f = near
    w = submit(f, {"jobs": {"a": {"argv": ["sleep", "300"]}, "b": appender(f, "b")},
                   "dependencies": [["a", "b"]]})
    other = submit(f, {"jobs": {"z": appender(f, "z")}})
    a = jobs_of(f, w)["a"]["id"]
    f.wait_state(a, "running")
    res = f.json("workflow", "dispose", w)
    assert res["matched"] == 2 and res["failed"] == 0, res
    cp = f.run("workflow", "status", w, check=False)
    assert cp.returncode != 0 and f"no workflow {w}" in cp.stderr, cp
    poll(lambda: not f.json("jobs", "--workflow", w), 30, 0.1, "its jobs gone")
    assert [x["id"] for x in f.json("workflows")] == [other]
    assert "b" not in log(f)
    cp = f.run("workflow", "dispose", w, check=False)
    assert cp.returncode != 0 and f"no workflow {w}" in cp.stderr, cp


def test_a_job_after_one_disposed_of_is_not_restarted(near):
    """A dependency disposed of can never be done again: what is
    downstream of it stays aborted, the rest of the failed run again."""
    f = near
    w = submit(f, {"jobs": {"bad": {"argv": ["false"]}, "after": appender(f, "after"),
                            "lone": fixable(f, "lone")},
                   "dependencies": [["bad", "after"]]})
    run_to_end(f, w, code=4)
    js = jobs_of(f, w)
    f.run("dispose", js["bad"]["id"])
    open(f.path("fixed"), "w").close()
    assert f.json("workflow", "restart", w) == {"restarted": 1}
    st = run_to_end(f, w, code=4)
    assert st["counts"] == {"done": 1, "failed": 1}, st
    assert log(f) == ["lone"]


def test_restart_survives_an_engine_killed_at_once(near):
    """The restart is committed before its answer: an engine SIGKILLed
    right after it runs every restarted job once, from a clean directory
    (no claim or result of the run before)."""
    f = near
    names = [f"c{i}" for i in range(6)]
    w = submit(f, {"jobs": {n: fixable(f, n) for n in names},
                   "dependencies": [[names[i], names[i + 1]] for i in range(5)]})
    run_to_end(f, w, code=4)
    open(f.path("fixed"), "w").close()
    assert f.json("workflow", "restart", w) == {"restarted": 6}
    f.kill_engine()
    st = run_to_end(f, w, timeout=120)
    assert st["status"] == "done", st
    assert log(f) == names


def test_control_of_no_workflow_is_refused(near):
    f = near
    for action in ("stop", "restart", "dispose"):
        cp = f.run("workflow", action, "77", check=False)
        assert cp.returncode != 0 and "no workflow 77" in cp.stderr, (action, cp)


def test_bad_requests_are_refused(ferry):
    ferry.run("workflows")  # an engine
    with ferry.raw() as c:
        c.hello()
        for op in ("workflow_stop", "workflow_restart", "workflow_dispose"):
            r = c.request({"op": op, "workflow": "x"})
            assert r["error"] == "EINVAL" and "'workflow'" in r["message"], r
            r = c.request({"op": op})
            assert r["error"] == "EINVAL", r


def test_restart_is_refused_while_a_kill_still_kills(ferry):
    """Not only a stop's: a plain kill of a workflow's job that outlives
    SIGTERM keeps a restart away until it ended."""
    argv, trapped = term_proof(ferry, f"test -e {ferry.path('fixed')} || sleep 30")
    w = submit(ferry, {"jobs": {"s": {"argv": argv}, "n": appender(ferry, "n")},
                       "dependencies": [["s", "n"]]})
    s = jobs_of(ferry, w)["s"]["id"]
    poll(lambda: os.path.exists(trapped), 60, what="the job's trap")
    ferry.run("kill", s)
    cp = ferry.run("workflow", "restart", w, check=False)
    assert cp.returncode != 0 and "1 of its jobs has not ended yet" in cp.stderr, cp
    run_to_end(ferry, w, timeout=60, code=4)
    open(ferry.path("fixed"), "w").close()
    assert ferry.json("workflow", "restart", w) == {"restarted": 2}
    assert run_to_end(ferry, w, timeout=60)["status"] == "done"


def test_a_replayed_restart_is_answered_not_run_again(ferry):
    """The same key (libferry's replay after a lost reply) gets the first
    answer; the failing job is not run a third time."""
    w = submit(ferry, {"jobs": {"bad": {"argv": ["sh", "-c",
                                                 f"echo bad >> {ferry.path('log')}; false"]}}})
    run_to_end(ferry, w, code=4)
    with ferry.raw() as c:
        c.hello()
        r = c.request({"op": "workflow_restart", "workflow": w, "key": "k1"})
        assert r["ok"] and r["restarted"] == 1, r
        run_to_end(ferry, w, code=4)
        r = c.request({"op": "workflow_restart", "workflow": w, "key": "k1"})
        assert r["ok"] and r["restarted"] == 1, r
        for bad in ("", 7, "k" * 129):
            r = c.request({"op": "workflow_restart", "workflow": w, "key": bad})
            assert r["error"] == "EINVAL" and "'key'" in r["message"], r
    run_to_end(ferry, w, code=4)
    assert log(ferry) == ["bad", "bad"]


def test_the_last_run_directory_goes_after_the_restart(ferry):
    """A restarted job's last run (claim, result, default stdout) is set
    aside and removed; its new run writes its own stdout."""
    fixed = ferry.path("fixed")
    w = submit(ferry, {"jobs": {"a": {"argv": ["sh", "-c", f"echo run; test -e {fixed}"]}}})
    run_to_end(ferry, w, code=4)
    a = jobs_of(ferry, w)["a"]["id"]
    jobs_dir = os.path.join(ferry.state_dir, "jobs")
    assert os.path.exists(os.path.join(jobs_dir, str(a), "claim"))
    open(fixed, "w").close()
    assert ferry.json("workflow", "restart", w) == {"restarted": 1}
    run_to_end(ferry, w)
    poll(lambda: not os.path.exists(os.path.join(jobs_dir, f"{a}.old")), 10, 0.05,
         "the old run's directory removed")
    assert ferry.run("logs", a).stdout == "run\n"


def test_a_restart_that_never_committed_gives_the_directory_back(ferry):
    """An engine killed between a restart's renames and its commit: the
    next engine finds jobs/<id>.old of a job still failed, and none at
    jobs/<id>, and gives it back; a .old of a job run since goes."""
    w = submit(ferry, {"jobs": {"bad": {"argv": ["sh", "-c", "echo output; false"]},
                                "ok": {"argv": ["true"]}}})
    run_to_end(ferry, w, code=4)
    js = jobs_of(ferry, w)
    jobs_dir = os.path.join(ferry.state_dir, "jobs")
    ferry.run("daemon", "stop")
    bad, ok = (os.path.join(jobs_dir, str(js[k]["id"])) for k in ("bad", "ok"))
    os.rename(bad, bad + ".old")
    os.makedirs(ok + ".old")
    ferry.run("workflows")  # the next engine
    assert os.path.exists(os.path.join(bad, "stdout")) and not os.path.exists(bad + ".old")
    poll(lambda: not os.path.exists(ok + ".old"), 10, 0.05, "the stale .old removed")
    assert ferry.run("logs", js["bad"]["id"]).stdout == "output\n"
