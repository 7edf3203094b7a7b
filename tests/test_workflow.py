"""Workflows (docs/workflows.md; docs/architecture.md, "Workflows"): jobs
with dependencies, submitted in one call and run by the engine. Real
processes: each job appends what it is to a file, and the order there is
what the tests check."""
import json
import os
import signal
import sqlite3
import time

from conftest import SCHEMA_6_TO_5, SCHEMA_7_TO_6, SCHEMA_8_TO_7, poll


def rss_kb(pid):
    with open(f"/proc/{pid}/status") as f:
        return next(int(l.split()[1]) for l in f if l.startswith("VmRSS:"))


def appender(ferry, name, line=None, extra=""):
    """A job spec appending line (its name) to the log file."""
    return {"argv": ["sh", "-c", f"{extra}echo {line or name} >> {ferry.path('log')}"]}


def submit(ferry, wf, check=True):
    path = ferry.path("wf.json")
    with open(path, "w") as f:
        json.dump(wf, f)
    cp = ferry.run("workflow", "submit", path, check=check)
    if not check:
        return cp
    assert cp.stdout.strip().isdigit(), cp
    return int(cp.stdout.strip())


def run_to_end(ferry, w, timeout=120, code=0):
    cp = ferry.run("workflow", "wait", w, check=False, timeout=timeout)
    assert cp.returncode == code, cp
    return ferry.json("workflow", "status", w)


def log(ferry):
    try:
        with open(ferry.path("log")) as f:
            return f.read().split()
    except FileNotFoundError:
        return []


def jobs_of(ferry, w):
    return {j["name"]: j for j in ferry.json("workflow", "jobs", w)}


def test_diamond(ferry):
    wf = {"name": "diamond",
          "jobs": {k: appender(ferry, k, extra="sleep 0.2; " if k == "b" else "")
                   for k in "abcd"},
          "dependencies": [["a", "b"], ["a", "c"], ["b", "d"], ["c", "d"]]}
    w = submit(ferry, wf)
    st = run_to_end(ferry, w)
    assert st["status"] == "done" and st["counts"] == {"done": 4} and st["jobs"] == 4, st
    order = log(ferry)
    assert sorted(order) == list("abcd") and order[0] == "a" and order[-1] == "d", order
    jobs = jobs_of(ferry, w)
    assert all(j["workflow"] == w for j in jobs.values())
    assert jobs["d"]["started_at"] >= max(jobs["b"]["ended_at"], jobs["c"]["ended_at"])
    assert ferry.info(jobs["d"]["id"])["dependencies"] == [jobs["b"]["id"], jobs["c"]["id"]]
    assert ferry.info(jobs["a"]["id"])["dependencies"] == []
    plain = ferry.submit("true")
    assert ferry.info(plain)["workflow"] == 0 and ferry.info(plain)["dependencies"] == []
    assert ferry.json("workflows") == [st]
    ferry.wait_ended(plain)


def test_group_of_30_between_first_and_last(ferry):
    mid = [f"m{i}" for i in range(30)]
    wf = {"name": "group",
          "jobs": {"first": appender(ferry, "first"), "last": appender(ferry, "last"),
                   **{m: appender(ferry, m) for m in mid}},
          "dependencies": [["first", m] for m in mid] + [[m, "last"] for m in mid],
          "groups": [{"name": "middle", "elements": mid[:15] + [
              {"name": "nested", "elements": mid[15:]}]}]}
    w = submit(ferry, wf)
    assert run_to_end(ferry, w)["status"] == "done"
    order = log(ferry)
    assert order[0] == "first" and order[-1] == "last" and sorted(order[1:-1]) == sorted(mid)
    st = ferry.json("workflow", "status", w)
    ids = {j["name"]: j["id"] for j in ferry.json("jobs", "--workflow", w)}
    assert st["groups"][0]["elements"][:15] == [ids[m] for m in mid[:15]]
    assert st["groups"][0]["elements"][15] == {"name": "nested",
                                               "elements": [ids[m] for m in mid[15:]]}


def test_failure_aborts_descendants_only(ferry):
    wf = {"name": "fails",
          "jobs": {"a": appender(ferry, "a"),
                   "seg": {"argv": ["sh", "-c", "exit 3"]},
                   "c": appender(ferry, "c"), "d": appender(ferry, "d"),
                   "e": appender(ferry, "e"),
                   "o1": appender(ferry, "o1"), "o2": appender(ferry, "o2")},
          "dependencies": [["a", "seg"], ["seg", "c"], ["c", "d"], ["seg", "e"], ["d", "e"],
                           ["a", "o1"], ["o1", "o2"]]}
    w = submit(ferry, wf)
    st = run_to_end(ferry, w, code=4)
    assert st["status"] == "done with failures", st
    assert st["counts"] == {"done": 3, "failed": 4}, st
    assert sorted(log(ferry)) == ["a", "o1", "o2"]
    jobs = jobs_of(ferry, w)
    assert jobs["seg"]["exit_status"] == "finished_regularly" and jobs["seg"]["exit_value"] == 3
    for k in "cde":
        j = ferry.info(jobs[k]["id"])
        assert j["status"] == "failed" and j["exit_status"] == "aborted", j
        assert j["message"] == f"job {jobs['seg']['id']} ('seg') failed", j
        assert j["started_at"] is None


def test_barriers(ferry):
    """Many-to-many without n x m pairs; a barrier never runs anything, one
    with nothing to wait for ends at once."""
    wf = {"jobs": {"start": {"barrier": True, "name": "start"},
                   **{f"a{i}": appender(ferry, f"a{i}") for i in range(3)},
                   "mid": {"barrier": True},
                   **{f"b{i}": appender(ferry, f"b{i}") for i in range(3)}},
          "dependencies": [["start", f"a{i}"] for i in range(3)] +
                          [[f"a{i}", "mid"] for i in range(3)] +
                          [["mid", f"b{i}"] for i in range(3)]}
    w = submit(ferry, wf)
    assert run_to_end(ferry, w)["counts"] == {"done": 8}
    order = log(ferry)
    assert sorted(order[:3]) == ["a0", "a1", "a2"] and sorted(order[3:]) == ["b0", "b1", "b2"]
    jobs = jobs_of(ferry, w)
    for b in ("start", "mid"):
        assert jobs[b]["command"] == [] and jobs[b]["status"] == "done"
        assert not os.path.exists(os.path.join(ferry.state_dir, "jobs", str(jobs[b]["id"])))
    bad = submit(ferry, {"jobs": {"x": {"barrier": True, "argv": ["true"]}}}, check=False)
    assert bad.returncode == 1 and "job 'x': a barrier takes no 'argv'" in bad.stderr, bad


def test_six_serial_jobs(ferry):
    names = [f"s{i}" for i in range(6)]
    gate = ferry.path("gate")
    wf = {"jobs": {n: appender(ferry, n) for n in names},
          "dependencies": [[names[i], names[i + 1]] for i in range(5)]}
    # the first job waits for the test's look (a slow CLI, under ASan, came after the end)
    wf["jobs"]["s0"] = appender(ferry, "s0", extra=f"while [ ! -e {gate} ]; do sleep 0.05; done; ")
    w = submit(ferry, wf)
    st = ferry.json("workflow", "status", w)
    assert st["status"] in ("not started", "in progress"), st
    open(gate, "w").close()
    assert run_to_end(ferry, w)["status"] == "done"
    assert log(ferry) == names


def test_three_layers_of_ten(ferry):
    layers = [[f"l{k}j{i}" for i in range(10)] for k in range(3)]
    wf = {"jobs": {n: appender(ferry, n) for layer in layers for n in layer},
          "dependencies": [[p, s] for k in range(2) for p in layers[k] for s in layers[k + 1]]}
    w = submit(ferry, wf)
    assert run_to_end(ferry, w)["counts"] == {"done": 30}
    order = log(ferry)
    for k in range(3):
        assert sorted(order[10 * k:10 * k + 10]) == sorted(layers[k]), order
    ferry.run("daemon", "stop", timeout=60)
    db = sqlite3.connect(os.path.join(ferry.state_dir, "ferry.db"))
    assert db.execute("SELECT count(*) FROM job_deps").fetchone() == (200,)
    db.close()


def test_invalid_workflows_submit_nothing(ferry):
    good = {"a": {"argv": ["true"]}, "b": {"argv": ["true"]}, "c": {"argv": ["true"]}}
    cases = [
        ({"jobs": good, "dependencies": [["a", "b"], ["b", "c"], ["c", "a"]]},
         "the dependencies make a cycle: "),
        ({"jobs": good, "dependencies": [["a", "a"]]}, "job 'a' cannot depend on itself"),
        ({"jobs": good, "dependencies": [["a", "zz"]]}, "dependency 0: no job 'zz' in 'jobs'"),
        ({"jobs": good, "dependencies": [["a"]]}, "dependency 0: must be a pair"),
        ({"jobs": {**good, "d": {"argv": []}}, "dependencies": [["a", "d"]]},
         "job 'd': 'argv' must hold at least the command"),
        ({"jobs": {**good, "d": {"argv": ["true"], "cpus": 99}}}, "job 'd': "),
        ({"jobs": {**good, "d": {"argv": ["true"], "colour": 1}}},
         "job 'd': unknown field 'colour'"),
        ({"jobs": {"a": {"argv": ["true"], "submission_key": "k"}}}, "takes no 'submission_key'"),
        ({"jobs": good, "groups": [{"name": "g", "elements": ["a", "nope"]}]},
         "group 'g': no job 'nope' in 'jobs'"),
        ({"jobs": {}}, "'jobs' must be a non-empty object"),
        ({"jobs": good, "colour": 1}, "unknown field 'colour'"),
    ]
    for wf, msg in cases:
        cp = submit(ferry, wf, check=False)
        assert cp.returncode == 1 and msg in cp.stderr, (wf, cp)
    cycle = submit(ferry, cases[0][0], check=False).stderr
    assert "'a'" in cycle and "'b'" in cycle and "'c'" in cycle, cycle
    assert ferry.json("jobs") == [] and ferry.json("workflows") == []


def test_retried_submit_with_a_key_returns_the_first(ferry):
    wf = {"name": "k", "key": "study-1", "jobs": {"a": appender(ferry, "a"),
                                                   "b": appender(ferry, "b")},
          "dependencies": [["a", "b"]]}
    w = submit(ferry, wf)
    assert submit(ferry, wf) == w
    run_to_end(ferry, w)
    assert submit(ferry, wf) == w
    assert len(ferry.json("jobs")) == 2 and log(ferry) == ["a", "b"]


def test_hold_composes_with_waiting(ferry):
    """A user's hold of a job waiting for its dependencies stays when they
    are done (user_system_on_hold, then user_on_hold); a release runs it."""
    gate = ferry.path("gate")
    # a ends once b is held (a fixed sleep was too short for a CLI under ASan)
    wf = {"jobs": {"a": appender(ferry, "a",
                                 extra=f"while [ ! -e {gate} ]; do sleep 0.05; done; "),
                   "b": appender(ferry, "b"), "c": appender(ferry, "c")},
          "dependencies": [["a", "b"], ["b", "c"]]}
    w = submit(ferry, wf)
    jobs = jobs_of(ferry, w)
    b, c = jobs["b"]["id"], jobs["c"]["id"]
    assert ferry.state(b) == "system_on_hold"
    assert ferry.info(b)["message"] == f"waiting for job {jobs['a']['id']}"
    ferry.run("hold", b)
    assert ferry.state(b) == "user_system_on_hold"
    open(gate, "w").close()
    ferry.wait_state(b, "user_on_hold")
    time.sleep(0.5)
    assert ferry.state(b) == "user_on_hold" and ferry.state(c) == "system_on_hold"
    assert ferry.run("workflow", "wait", "--timeout", "0.5", w, check=False).returncode == 3
    ferry.run("release", b)
    assert run_to_end(ferry, w)["status"] == "done"
    assert log(ferry) == ["a", "b", "c"]


def test_kill_and_listing_by_workflow(ferry):
    """kill --workflow ends its jobs (the waiting ones as aborted or killed),
    not another workflow's; jobs --workflow lists one workflow's jobs."""
    chain = {f"j{i}": {"argv": ["sleep", "30"]} for i in range(5)}
    deps = [[f"j{i}", f"j{i + 1}"] for i in range(4)]
    w1 = submit(ferry, {"jobs": chain, "dependencies": deps})
    w2 = submit(ferry, {"jobs": {"x": appender(ferry, "x")}})
    run_to_end(ferry, w2)
    assert [j["name"] for j in ferry.json("jobs", "--workflow", w1)] == list(chain)
    assert [j["name"] for j in ferry.json("jobs", "--workflow", w2)] == ["x"]
    assert len(ferry.json("jobs", "--workflow", w1, "--state", "system_on_hold")) >= 3
    ferry.wait_state(ferry.json("jobs", "--workflow", w1)[0]["id"], "running")
    cp = ferry.run("kill", "--workflow", w1, check=False)
    assert cp.returncode == 0, cp
    st = run_to_end(ferry, w1, code=4)
    assert st["counts"] == {"failed": 5}, st
    assert ferry.json("workflow", "status", w2)["status"] == "done"
    # by id: the running one killed, the first waiting one killed before it
    # started, and what waited on that one aborted, naming it
    js = ferry.json("jobs", "--workflow", w1)
    assert [j["exit_status"] for j in js] == ["killed_by_user"] * 2 + ["aborted"] * 3, js
    assert js[1]["message"] == "killed by user before it started"
    assert {j["message"] for j in js[2:]} == {f"job {js[1]['id']} ('j1') was killed"}


def test_kill_by_workflow_leaves_other_held_jobs_held(ferry):
    """kill --workflow W of W's held jobs once ran the statement that kills
    held jobs over every id: a held job of no workflow, before and after
    W's ids, ended killed too."""
    before = ferry.submit("true", opts=["--hold"])
    w = submit(ferry, {"jobs": {"h": {"argv": ["true"], "hold": True}}})
    after = ferry.submit("true", opts=["--hold"])
    ferry.run("daemon", "stop", timeout=60)  # a new engine: all three wait in the database
    h = jobs_of(ferry, w)["h"]["id"]
    ferry.run("kill", "--workflow", w)
    assert ferry.state(h) == "failed"
    assert [ferry.state(before), ferry.state(after)] == ["user_on_hold"] * 2


def test_engine_killed_while_a_workflow_runs(ferry):
    """SIGKILL mid-workflow: the next engine goes on from where it was; no
    job ran twice and none was lost."""
    n = 24
    names = [f"c{i}" for i in range(n)]
    jobs = {nm: {"argv": ["sh", "-c", f"echo {nm} >> {ferry.path('log')}; sleep 0.15"]}
            for nm in names}
    # two chains of 12, joined at the end by a barrier and a last job
    deps = [[names[i], names[i + 1]] for i in range(11)] + \
           [[names[i], names[i + 1]] for i in range(12, 23)]
    jobs["join"] = {"barrier": True}
    jobs["end"] = {"argv": ["sh", "-c", f"echo end >> {ferry.path('log')}"]}
    deps += [[names[11], "join"], [names[23], "join"], ["join", "end"]]
    w = submit(ferry, {"jobs": jobs, "dependencies": deps})
    for k in range(3):
        # a client's call starts the next engine
        poll(lambda: ferry.run("workflow", "status", w) and len(log(ferry)) >= 4 + 6 * k, 60,
             0.05, "jobs running")
        ferry.kill_engine()
    st = run_to_end(ferry, w, timeout=180)
    assert st["status"] == "done", st
    out = log(ferry)
    assert sorted(out) == sorted(names + ["end"]), out
    assert out.index("c11") < out.index("end") and out.index("c23") < out.index("end")
    for chain in (names[:12], names[12:]):
        assert [x for x in out if x in chain] == chain


def test_ten_thousand_jobs_in_one_call_wait_in_the_database(ferry):
    """1,000 chains of 10: one request; the 9,000 waiting jobs are rows,
    not structs, so the engine's memory does not grow with them."""
    ferry.config("[local]\nscheduler = local\nslots = 1\n")
    ferry.run("ping")
    pid = ferry.engine_pid()
    base = rss_kb(pid)
    jobs, deps = {}, []
    for c in range(1000):
        for k in range(10):
            jobs[f"s{c}.{k}"] = {"argv": ["sleep", "60"] if k == 0 else ["true"]}
            if k:
                deps.append([f"s{c}.{k - 1}", f"s{c}.{k}"])
    t = time.monotonic()
    w = submit(ferry, {"name": "big", "jobs": jobs, "dependencies": deps})
    took = time.monotonic() - t
    after = rss_kb(pid)
    st = ferry.json("workflow", "status", w)
    assert st["jobs"] == 10000 and st["counts"]["system_on_hold"] == 9000, st
    ferry.run("daemon", "stop", timeout=60)
    t = time.monotonic()
    st = ferry.json("workflow", "status", w)
    first = time.monotonic() - t
    restarted = rss_kb(ferry.engine_pid())
    print(f"10,000-job workflow: submit {took:.2f} s; engine RSS {base} -> {after} kB; "
          f"after a restart {restarted} kB, first call {first:.2f} s")
    # 1,000 jobs in memory (the roots); 9,000 struct jobs would be ~1.2 MB more
    assert restarted - base < 8000, (base, after, restarted)
    cp = ferry.run("kill", "--workflow", w, timeout=120)
    assert "10000 matched" in cp.stdout or "matched" in cp.stdout, cp
    st = run_to_end(ferry, w, timeout=120, code=4)
    assert st["counts"] == {"failed": 10000}, st


def test_schema_5_database_is_carried_over(ferry):
    j = ferry.submit("sh", "-c", "echo old")
    ferry.wait_ended(j)
    h = ferry.submit("true", opts=("--hold",))
    ferry.run("daemon", "stop", timeout=60)
    path = os.path.join(ferry.state_dir, "ferry.db")
    db = sqlite3.connect(path)
    db.executescript(SCHEMA_8_TO_7 + SCHEMA_7_TO_6 + SCHEMA_6_TO_5)
    db.close()
    assert ferry.state(j) == "done" and ferry.state(h) == "user_on_hold"
    w = submit(ferry, {"jobs": {"a": appender(ferry, "a"), "b": appender(ferry, "b")},
                       "dependencies": [["a", "b"]]})
    assert run_to_end(ferry, w)["status"] == "done" and log(ferry) == ["a", "b"]
    ferry.run("daemon", "stop", timeout=60)
    db = sqlite3.connect(path)
    assert db.execute("SELECT value FROM meta WHERE key = 'schema'").fetchone() == ("8",)
    cols = [r[1] for r in db.execute("PRAGMA table_info(jobs)")]
    assert "workflow" in cols and "waiting" in cols, cols
    sql = db.execute("SELECT sql FROM sqlite_master WHERE name = 'jobs_live'").fetchone()[0]
    assert "waiting = 0" in sql, sql
    db.close()


def test_a_workflow_over_the_frame_says_so(ferry):
    big = "x" * 120000
    cp = submit(ferry, {"jobs": {f"j{i}": {"argv": ["echo", big]} for i in range(150)}},
                check=False)
    assert cp.returncode == 1 and "bytes as a request, over the limit of" in cp.stderr, cp
    assert ferry.json("jobs") == []


def test_diamond_over_ssh(request, sshd):
    """The requests go through the ssh transport as every other does."""
    from conftest import ferry_world
    f = ferry_world(request, "ssh")
    wf = {"name": "remote", "key": "remote-1",
          "jobs": {k: appender(f, k) for k in "abcd"},
          "dependencies": [["a", "b"], ["a", "c"], ["b", "d"], ["c", "d"]]}
    w = submit(f, wf)
    assert submit(f, wf) == w
    st = run_to_end(f, w)
    assert st["status"] == "done" and st["counts"] == {"done": 4}, st
    order = log(f)
    assert order[0] == "a" and order[-1] == "d", order
    assert [j["name"] for j in f.json("jobs", "--workflow", w)] == list("abcd")
    assert [x["id"] for x in f.json("workflows")] == [w]


def test_wait_all_takes_the_jobs_waiting_for_dependencies(ferry):
    """wait --all takes system_on_hold jobs: those of a workflow that wait
    in the database are read back for it, as held ones are."""
    names = [f"w{i}" for i in range(4)]
    wf = {"jobs": {n: appender(ferry, n, extra="sleep 0.2; ") for n in names},
          "dependencies": [[names[i], names[i + 1]] for i in range(3)]}
    # it fails during the wait: one that failed before the call is not counted
    wf["jobs"]["bad"] = {"argv": ["sh", "-c", "sleep 1; exit 1"]}
    wf["jobs"]["after_bad"] = appender(ferry, "after_bad")
    wf["dependencies"].append(["bad", "after_bad"])
    w = submit(ferry, wf)
    cp = ferry.run("wait", "--all", check=False, timeout=60)
    assert cp.returncode == 4, cp
    assert log(ferry) == names
    st = ferry.json("workflow", "status", w)
    assert st["counts"] == {"done": 4, "failed": 2}, st


def test_cycle_of_long_local_ids_is_named_within_bounds(ferry):
    """The cycle's message is cut to its buffer however long the local ids
    are (a 2,000-byte id once wrote past the end of the stack buffer)."""
    pid = ferry.engine_pid() if ferry.run("ping") else None
    a, b = "a" * 2000, "b" * 700
    wf = {"jobs": {a: {"argv": ["true"]}, b: {"argv": ["true"]}},
          "dependencies": [[a, b], [b, a]]}
    cp = submit(ferry, wf, check=False)
    assert cp.returncode == 1 and "the dependencies make a cycle: " in cp.stderr, cp
    assert ferry.engine_pid() == pid and ferry.json("jobs") == []


def test_a_damaged_deps_column_does_not_break_the_listing(ferry):
    """The deps column is copied raw into JSON: what is not an array of ids
    there (a damaged or edited database) shows as [], the rest as it is."""
    w = submit(ferry, {"jobs": {k: {"argv": ["true"]} for k in "abcdef"},
                       "dependencies": [["a", k] for k in "bcdef"]})
    run_to_end(ferry, w)
    ids = {j["name"]: j["id"] for j in ferry.json("workflow", "jobs", w)}
    ferry.run("daemon", "stop", timeout=60)
    db = sqlite3.connect(os.path.join(ferry.state_dir, "ferry.db"))
    for k, v in zip("bcdef", ["not json", 42, "[1,", "[01]", '[1]"x']):
        db.execute("UPDATE jobs SET deps = ? WHERE id = ?", (v, ids[k]))
    db.commit()
    db.close()
    jobs = {j["name"]: j for j in ferry.json("jobs")}
    assert jobs["a"]["dependencies"] == []
    assert all(jobs[k]["dependencies"] == [] for k in "bcdef"), jobs
    assert ferry.info(ids["b"])["dependencies"] == []
    ferry.run("daemon", "stop", timeout=60)
    db = sqlite3.connect(os.path.join(ferry.state_dir, "ferry.db"))
    db.execute("UPDATE jobs SET deps = ? WHERE id = ?", (f"[{ids['a']},7]", ids["b"]))
    db.commit()
    db.close()
    assert ferry.info(ids["b"])["dependencies"] == [ids["a"], 7]


def test_workflow_wait_outlasts_a_disposed_job_ending_late(ferry):
    """A job disposed of while it runs is not counted as left by a wait
    that starts then, but its end still comes: the wait must not take it
    for another job's and answer while the workflow runs on."""
    slow_end = {"argv": ["sh", "-c", "trap '' TERM; sleep 2"]}
    w = submit(ferry, {"jobs": {"a": slow_end, "b": {"argv": ["sleep", "6"]}}})
    a = jobs_of(ferry, w)["a"]["id"]
    ferry.wait_state(a, "running")
    ferry.run("dispose", a)
    t = time.monotonic()
    cp = ferry.run("workflow", "wait", "--timeout", "4", w, check=False, timeout=30)
    assert cp.returncode == 3 and time.monotonic() - t > 3.5, cp
    assert run_to_end(ferry, w)["status"] == "done"


def test_a_barrier_name_is_checked_as_a_job_name(ferry):
    """A barrier's name (its local id when it has none) is bounded as a
    job's is; a message names a long local id cut short."""
    long_id = "n" * 1100
    for jobs, msg in [({long_id: {"barrier": True}}, "'name' is longer than 1024 bytes"),
                      ({"b": {"barrier": True, "name": "x" * 1025}}, "is longer than 1024"),
                      ({long_id: {"argv": ["true"]}}, "'name' is longer than 1024 bytes")]:
        cp = submit(ferry, {"jobs": jobs}, check=False)
        assert cp.returncode == 1 and msg in cp.stderr, (msg, cp)
    assert ferry.json("jobs") == [] and ferry.json("workflows") == []


def test_a_long_chain_aborts_in_linear_time(ferry):
    """The first of a chain of 12,000 fails: its descendants end aborted in
    one pass. Each aborted one looked for its own descendants again (all
    ended already), which made the abort quadratic in the chain's length."""
    n = 12000
    jobs = {f"c{i}": {"argv": ["true"]} for i in range(1, n)}
    jobs["c0"] = {"argv": ["false"]}
    w = submit(ferry, {"jobs": jobs, "dependencies": [[f"c{i}", f"c{i + 1}"]
                                                      for i in range(n - 1)]})
    t = time.monotonic()
    st = run_to_end(ferry, w, timeout=120, code=4)
    took = time.monotonic() - t
    print(f"a chain of {n} aborted in {took:.2f} s")
    assert st["counts"] == {"failed": n}, st
    assert took < 15, took


def test_a_released_job_starts_before_the_jobs_queued_earlier(ferry):
    """Depth first: with one slot, a chain goes on in the slot its last
    step freed, ahead of the other chains' first steps queued before."""
    ferry.config("[local]\nslots = 1\n")
    chains = {c: [f"{c}{k}" for k in range(3)] for c in "ab"}
    jobs = {n: appender(ferry, n) for chain in chains.values() for n in chain}
    deps = [[ch[k], ch[k + 1]] for ch in chains.values() for k in range(2)]
    w = submit(ferry, {"jobs": jobs, "dependencies": deps})
    run_to_end(ferry, w)
    assert log(ferry) == chains["a"] + chains["b"]


def test_a_thousand_jobs_through_five_engine_kills(ferry):
    """Issue 16's crash test: 1,000 jobs in 100 layers of 10, each job
    after two of the layer before (diamonds), the engine SIGKILLed five
    times at random moments: every job ran exactly once (each appends its
    id), and the workflow ends done."""
    import random
    rng = random.Random(16)
    log_path = ferry.path("log")
    width, layers = 10, 100
    jobs, deps = {}, []
    for k in range(layers):
        for i in range(width):
            # 20 ms each: the kills must fall inside the run, also on a fast machine
            jobs[f"{k}.{i}"] = {"argv": ["sh", "-c",
                                         f'echo "$FERRY_JOB_ID" >> {log_path}; sleep 0.02']}
            if k:
                deps += [[f"{k - 1}.{i}", f"{k}.{i}"], [f"{k - 1}.{(i + 1) % width}", f"{k}.{i}"]]
    w = submit(ferry, {"jobs": jobs, "dependencies": deps})
    at = []  # how many jobs had run at each kill
    for _ in range(5):
        time.sleep(rng.uniform(0.2, 1.5))
        ferry.kill_engine()
        at.append(len(log(ferry)) if os.path.exists(log_path) else 0)
        ferry.run("workflow", "status", w)  # the next engine
    assert sum(0 < n < 1000 for n in at) >= 3, f"the kills missed the run: {at}"
    st = run_to_end(ferry, w, timeout=600)
    assert st["status"] == "done" and st["counts"] == {"done": 1000}, st
    with open(log_path) as f:
        ran = [int(x) for x in f.read().split()]
    ids = [j["id"] for j in ferry.json("jobs", "--workflow", w)]
    assert len(ran) == len(set(ran)) == 1000, "a job ran twice, or not at all"
    assert set(ran) == set(ids)
    # and each after its dependencies
    pos = {jid: i for i, jid in enumerate(ran)}
    for j in ferry.json("jobs", "--workflow", w):
        assert all(pos[d] < pos[j["id"]] for d in j["dependencies"]), j


def test_a_file_that_is_not_a_workflow_object_is_named(ferry):
    """The file goes to the engine as it stands (libferry puts its own
    fields in front); what is wrong with its JSON is said of the file."""
    path = ferry.path("bad.json")
    cases = [
        ('{"jobs": {"a": {"argv": ["true"]}},\n  "dependencies": [["a", "b"]\n',
         "the workflow is not JSON: line 2, column "),
        ('{"jobs": {"a": {"argv": ["true"],}}}', "the workflow is not JSON: line 1, column 34"),
        ('  [1, 2]', "the workflow must be a JSON object"),
        ('{"op": "submit", "jobs": {"a": {"argv": ["true"]}}}',
         "names a member twice, or one libferry adds ('op', 'cwd', 'auto_key', 'base_env')"),
        ('{"cwd": "/", "jobs": {"a": {"argv": ["true"]}}}', "duplicate object key"),
        ('{ }', "'jobs' must be a non-empty object"),
    ]
    for text, msg in cases:
        with open(path, "w") as f:
            f.write(text)
        cp = ferry.run("workflow", "submit", path, check=False)
        assert cp.returncode == 1 and msg in cp.stderr, (text, cp)
    assert ferry.json("workflows") == []


def test_working_directories_are_taken_against_the_submitter(ferry):
    """Absent: where `ferry workflow submit` ran; relative: under it;
    absolute: as it is."""
    base = ferry.path("wd")
    os.makedirs(os.path.join(base, "sub"))
    pwd = {"argv": ["sh", "-c", f"pwd >> {ferry.path('log')}"]}
    path = os.path.join(base, "wf.json")
    with open(path, "w") as f:
        json.dump({"jobs": {"a": pwd, "b": {**pwd, "working_directory": "sub"},
                            "c": {**pwd, "working_directory": "/tmp"}},
                   "dependencies": [["a", "b"], ["b", "c"]]}, f)
    cp = ferry.run("workflow", "submit", path, cwd=base)
    w = int(cp.stdout)
    run_to_end(ferry, w)
    assert log(ferry) == [base, os.path.join(base, "sub"), "/tmp"]


def test_a_job_after_others_may_use_what_they_make(ferry):
    """The working directory, stdin, stdout's directory and referenced
    inputs of a job that waits for its dependencies are looked at when it
    starts, not at the submit: a pipeline's step reads what the one
    before made. A job without dependencies is checked at the submit."""
    base = ferry.path("pipe")
    os.makedirs(base)
    make = {"argv": ["sh", "-c", "mkdir -p out/res && echo hello > out/in.txt"],
            "working_directory": base}
    use = {"argv": ["cat"], "working_directory": os.path.join(base, "out"),
           "stdin_path": "in.txt", "stdout_path": "res/copy.txt",
           "referenced_input_files": ["in.txt"]}
    w = submit(ferry, {"jobs": {"make": make, "use": use}, "dependencies": [["make", "use"]]})
    assert run_to_end(ferry, w)["status"] == "done"
    with open(os.path.join(base, "out", "res", "copy.txt")) as f:
        assert f.read() == "hello\n"
    cp = submit(ferry, {"jobs": {"alone": {**use, "working_directory": ferry.path("nowhere")}}},
                check=False)
    assert cp.returncode == 1 and "does not exist" in cp.stderr, cp
    # made by no one: the job ends aborted when it starts, naming what is missing
    w = submit(ferry, {"jobs": {"a": {"argv": ["true"]},
                                "b": {"argv": ["true"], "working_directory": ferry.path("nowhere")}},
                       "dependencies": [["a", "b"]]})
    run_to_end(ferry, w, code=4)
    b = jobs_of(ferry, w)["b"]
    assert b["exit_status"] == "aborted" and "nowhere" in b["message"], b


def test_the_fields_libferry_adds_are_checked(ferry):
    """cwd and auto_key, as a raw client may send them: a NUL byte or a
    wrong type is refused, named, before anything is submitted."""
    ferry.run("workflows")  # an engine
    jobs = {"a": {"argv": ["true"], "working_directory": "/tmp"}}
    with ferry.raw() as c:
        c.hello()
        # a NUL byte cannot reach a request's string: the frame refuses it
        r = c.request({"op": "workflow_submit", "jobs": jobs, "cwd": "/tmp\u0000x"})
        assert r.get("error") == "EPROTO" and "\\u0000" in r["message"], r
        for extra, msg in [({"cwd": "tmp"}, "'cwd' must be an absolute path"),
                           ({"auto_key": 7}, "'auto_key' must be a non-empty string"),
                           ({"auto_key": ""}, "'auto_key' must be a non-empty string")]:
            r = c.request({"op": "workflow_submit", "jobs": jobs, **extra})
            assert r.get("error") == "EINVAL" and msg in r["message"], (extra, r)
        # the file's own key wins over the automatic one
        r = c.request({"op": "workflow_submit", "jobs": jobs, "key": "mine", "auto_key": "auto"})
        assert r["ok"], r
        r2 = c.request({"op": "workflow_submit", "jobs": jobs, "key": "mine", "auto_key": "x"})
        assert r2["id"] == r["id"], (r, r2)
    assert len(ferry.json("workflows")) == 1
