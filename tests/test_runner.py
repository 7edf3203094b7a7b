"""The local backend's job runner: its death, and jobs it must refuse."""
import os
import signal

from conftest import pid_alive, poll, runner_pid


def test_runner_killed_mid_job(ferry):
    jid = ferry.submit("sleep", "300")
    ferry.wait_state(jid, "running")
    # the runner reports the pid just after the start: kill it once it has
    pid = poll(lambda: ferry.info(jid)["native_id"], 10, what="the job's pid")
    runner = poll(lambda: runner_pid(ferry), 10, what="the job runner")
    os.kill(runner, signal.SIGKILL)
    j = ferry.wait_ended(jid, timeout=20)
    assert j["status"] == "failed"
    assert j["exit_status"] == "finished_unclear_condition"
    assert "runner" in j["message"]
    # the orphaned job is not ferry's any more; end it ourselves
    os.kill(int(pid), signal.SIGKILL)
    # a new runner serves the next job
    jid2 = ferry.submit("true")
    ferry.run("wait", "--timeout", "30", jid2, timeout=40)
    assert ferry.info(jid2)["status"] == "done"
    assert runner_pid(ferry) not in (None, runner)


def test_stale_claim_is_refused_clearly(ferry):
    # a job directory left over (e.g. the database was removed, not jobs/)
    first = ferry.submit("true")
    ferry.run("wait", "--timeout", "30", first, timeout=40)
    stale = os.path.join(ferry.state_dir, "jobs", str(first + 1))
    os.makedirs(stale)
    with open(os.path.join(stale, "claim"), "w") as f:
        f.write("1 1\n")
    jid = ferry.submit("true")
    assert jid == first + 1
    j = ferry.wait_ended(jid)
    assert j["status"] == "failed" and j["exit_status"] == "aborted"
    assert "claim" in j["message"] and stale in j["message"]
    jid3 = ferry.submit("true")  # and the engine goes on
    ferry.run("wait", "--timeout", "30", jid3, timeout=40)
    assert ferry.info(jid3)["status"] == "done"


def test_runner_leaves_when_idle(ferry):
    jid = ferry.submit("true")
    ferry.run("wait", "--timeout", "30", jid, timeout=40)
    runner = poll(lambda: runner_pid(ferry), 10, what="the job runner")
    ferry.run("daemon", "stop")
    poll(lambda: not pid_alive(runner), 15, what="the idle runner to exit")
