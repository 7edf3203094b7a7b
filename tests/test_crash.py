"""Crash safety: the engine is SIGKILLed repeatedly under load; every job
still runs exactly once, and a waiting client survives the restarts."""
import collections
import os
import random
import signal
import time

from conftest import pid_alive, poll, proc_cmdline, wait_dead

N_JOBS = 1000
MIN_KILLS = 5
# Appended to every job's command, to spread the run over the kills.
JOB_TAIL = os.environ.get("FERRY_CRASH_JOB_TAIL", "; sleep 0.02")


def count_lines(path):
    try:
        with open(path, "rb") as f:
            return f.read().count(b"\n")
    except FileNotFoundError:
        return 0


def live_engine_pid(ferry, not_pid, timeout):
    """The pid of a running engine other than not_pid, or None."""
    def get():
        pid = ferry.engine_pid()
        if pid and pid != not_pid and pid_alive(pid) and b"ferryd" in proc_cmdline(pid):
            return pid
        return None
    try:
        return poll(get, timeout, 0.02, "a new engine")
    except AssertionError:
        return None


def test_crash_1000_jobs(ferry):
    out = ferry.path("out.txt")
    bulk = ferry.path("bulk.txt")
    with open(bulk, "w") as f:
        for n in range(N_JOBS):
            f.write(f"sh -c 'echo {n} >> {out}{JOB_TAIL}'\n")
    ids = [int(x) for x in ferry.run("submit", "--bulk", bulk, timeout=120).stdout.split()]
    assert len(ids) == N_JOBS and len(set(ids)) == N_JOBS

    seed = int(os.environ.get("FERRY_CRASH_SEED", time.time_ns() % 100000))
    rng = random.Random(seed)
    print(f"crash test seed {seed} (FERRY_CRASH_SEED to replay)")

    waiter = ferry.popen("wait", "--all", "--timeout", "600")
    kills = []  # (pid, lines done when killed)
    last = None
    try:
        t_end = time.monotonic() + 180
        while len(kills) < MIN_KILLS:
            assert time.monotonic() < t_end, f"kill loop too slow; kills so far {kills}"
            time.sleep(rng.uniform(0.3, 1.5))
            pid = live_engine_pid(ferry, last, 5.0)
            if pid is None:
                # nobody restarted it (yet): a client does
                ferry.run("ping", timeout=30)
                pid = live_engine_pid(ferry, last, 10.0)
            assert pid, "no engine came up after ping"
            done = count_lines(out)
            os.kill(pid, signal.SIGKILL)
            assert wait_dead(pid, 10)
            kills.append((pid, done))
            last = pid
            if len(kills) % 2 == 0:
                ferry.run("ping", timeout=30)  # restart it ourselves
            # else: the waiting client must restart it
        try:
            wout, werr = waiter.communicate(timeout=300)
        except Exception:
            waiter.kill()
            wout, werr = waiter.communicate(timeout=10)
            raise AssertionError(f"`wait --all` did not finish; stderr: {werr}")
    finally:
        if waiter.poll() is None:
            waiter.kill()
            waiter.wait(10)
    print(f"kills (pid, lines done): {kills}")
    assert waiter.returncode == 0, (
        f"`wait --all` across {len(kills)} engine kills exited {waiter.returncode}: "
        f"stdout={wout!r} stderr={werr!r}")
    mid = [k for k in kills if k[1] < N_JOBS]
    assert len(mid) >= 3, (f"only {len(mid)} kills happened while jobs were pending; "
                           f"make the jobs slower (FERRY_CRASH_JOB_TAIL): {kills}")

    jobs = ferry.json("jobs", timeout=60)
    assert sorted(j["id"] for j in jobs) == sorted(ids)
    bad = [(j["id"], j["status"], j["exit_status"], j["exit_value"], j["message"])
           for j in jobs if j["status"] != "done" or j["exit_value"] != 0]
    assert not bad, f"{len(bad)} jobs not done/0, e.g. {bad[:5]}"

    with open(out) as f:
        got = collections.Counter(int(x) for x in f.read().split())
    dups = sorted(n for n, c in got.items() if c > 1)
    missing = sorted(set(range(N_JOBS)) - set(got))
    assert not dups, f"{len(dups)} jobs ran more than once, e.g. {dups[:10]}"
    assert not missing, f"{len(missing)} jobs never ran, e.g. {missing[:10]}"
    assert sum(got.values()) == N_JOBS


def test_submit_key_idempotent(ferry):
    a = ferry.submit("true", opts=["--key", "my-key-1"])
    b = ferry.submit("true", opts=["--key", "my-key-1"])
    assert a == b
    # a different spec with a known key still yields the first job
    c = ferry.submit("false", opts=["--key", "my-key-1"])
    assert c == a
    j = ferry.json("submit", "--key", "my-key-1", "--", "true")
    assert j == {"id": a}
    jobs = ferry.json("jobs")
    assert [x["id"] for x in jobs] == [a]
    assert jobs[0]["submission_key"] == "my-key-1"
    assert jobs[0]["command"] == ["true"]
    d = ferry.submit("true", opts=["--key", "my-key-2"])
    assert d != a
    # the key is durable: it survives an engine crash
    ferry.kill_engine(signal.SIGKILL)
    assert ferry.submit("true", opts=["--key", "my-key-1"]) == a
    assert ferry.submit("true", opts=["--key", "my-key-2"]) == d
    assert len(ferry.json("jobs")) == 2
    ferry.run("wait", "--all", "--timeout", "30", timeout=40)


def test_submit_survives_engine_kill(ferry):
    ferry.run("ping")
    ferry.kill_engine(signal.SIGKILL)
    jid = ferry.submit("true")  # the library starts a new engine
    ferry.run("wait", "--timeout", "30", jid, timeout=40)
    assert ferry.state(jid) == "done"
    assert ferry.engine_alive()
