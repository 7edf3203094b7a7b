"""The local backend's job runner: its death, and jobs it must refuse."""
import os
import signal
import subprocess

from conftest import FERRYD_BIN, pid_alive, poll, runner_pid


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


def vm_rss_kib(pid):
    for line in open(f"/proc/{pid}/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError(f"no VmRSS for {pid}")


def test_runner_is_a_fresh_image_of_ferryd(ferry):
    # a runner forked from an engine holding many jobs would share (and
    # count) the engine's heap, and make every engine write copy a page
    bulk = ferry.path("held.txt")
    with open(bulk, "w") as f:
        f.write("true\n" * 50000)
    ferry.run("submit", "--hold", "--bulk", bulk, timeout=120)
    jid = ferry.submit("sleep", "300")
    ferry.wait_state(jid, "running")
    runner = poll(lambda: runner_pid(ferry), 10, what="the job runner")
    engine = ferry.engine_pid()
    with open(f"/proc/{runner}/cmdline", "rb") as f:
        argv = f.read().split(b"\0")
    assert argv[:3] == [b"ferry-runner", b"--runner", b"3"], argv
    assert os.readlink(f"/proc/{runner}/exe") == os.readlink(f"/proc/{engine}/exe")
    assert os.getsid(runner) == runner and os.getsid(runner) != os.getsid(engine)
    # its own image: the argv above is the exec's (a fork keeps ferryd's),
    # and its heap is its own, not a copy of the engine's (held jobs no
    # longer fill the engine's memory, so their sizes are not compared)
    runner_anon = int(next(ln.split()[1] for ln in open(f"/proc/{runner}/status")
                           if ln.startswith("RssAnon:")))
    ldd = subprocess.run(["ldd", FERRYD_BIN], capture_output=True, text=True).stdout
    limit = 16384 if "libasan" in ldd else 4096  # the sanitizers' own allocator
    assert runner_anon < limit, (runner_anon, vm_rss_kib(runner), vm_rss_kib(engine))
    # and it holds its socket and its log, no descriptor of the engine's
    fds = {}
    for n in os.listdir(f"/proc/{runner}/fd"):
        try:
            fds[int(n)] = os.readlink(f"/proc/{runner}/fd/{n}")
        except OSError:
            pass
    assert fds[2].endswith("/runner.log"), fds
    assert fds[3].startswith("socket:"), fds
    assert not [t for t in fds.values()
                if t.endswith(("ferry.db", "ferryd.log", "ferryd.lock", "-wal"))], fds
    ferry.run("kill", str(jid))


def test_runner_mode_refuses_a_hand_run(ferry):
    for args in ([], ["3"], ["3", "/tmp/log", "x"], ["3", "rel", "5"], ["3", "/tmp/log", "5"]):
        cp = subprocess.run([ferry.ferryd, "--runner", *args], capture_output=True,
                            text=True, timeout=10, stdin=subprocess.DEVNULL)
        assert cp.returncode == 2, (args, cp)
        assert "'--runner'" in cp.stderr, (args, cp.stderr)
