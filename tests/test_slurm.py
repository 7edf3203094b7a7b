"""The Slurm backend against the real single-node Slurm of
tests/cluster/start-slurm.sh: what Slurm itself says of ferry's jobs, job
arrays for bulk submission, the poll load, MPI, native specifications, and
engine crashes (none submitted twice). The C API tests also run on Slurm
(tests/test_capi.py, transport "slurm")."""
import os
import re
import shutil
import subprocess
import time

import pytest

from conftest import (SLOW_S, Ferry, answers_quickly, new_base, poll, slow_command,
                      slurm_section)

# A job here may queue behind another test's hundreds of jobs on the same
# 8 CPUs (the 300- and 500-job tests run on the other worker): a job's own
# wait allows for that, not for its run time alone.
WAIT = 180

pytestmark = pytest.mark.usefixtures("slurm")


@pytest.fixture
def fs(request):
    """A Ferry whose default resource is [slurm] (and a PATH with a log dir)."""
    base = new_base("fy-slurm-")
    f = Ferry(base, resource="slurm")
    f.config("[local]\nslots = 2\n" + slurm_section())
    f.env["FERRY_RESOURCE"] = "slurm"
    yield f
    instance = _instance(f)
    f.cleanup()
    if instance:  # what a failed test left in Slurm
        for line in _queue():
            if line["comment"].startswith(f"ferry:{instance}:"):
                subprocess.run(["scancel", line["id"]], capture_output=True)
    if not os.environ.get("FERRY_TEST_KEEP"):
        shutil.rmtree(base, ignore_errors=True)


def _instance(f):
    """The engine's instance token, as Slurm shows it in the comment of one
    of its jobs (ferry:INSTANCE:BASE); None before any job was handed."""
    try:
        natives = {j["native_id"] for j in f.json("jobs") if j.get("native_id")}
    except AssertionError:
        return None
    for q in _queue():
        if q["id"] in natives and q["comment"].startswith("ferry:"):
            return q["comment"].split(":")[1]
    return None


def _queue():
    """Every job slurmctld knows (MinJobAge keeps ended ones a while)."""
    cp = subprocess.run(["squeue", "-h", "-r", "-t", "all", "-o", "%i|%K|%T|%P|%C|%m|%l|%k"],
                        capture_output=True, text=True, check=True)
    out = []
    for l in cp.stdout.splitlines():
        i, k, st, part, cpus, mem, lim, comment = l.split("|", 7)
        out.append(dict(id=i, task=k, state=st, partition=part, cpus=cpus, memory=mem,
                        limit=lim, comment=comment))
    return out


def _slurm_state(native):
    cp = subprocess.run(["scontrol", "-o", "show", "job", native], capture_output=True,
                        text=True)
    m = re.search(r"JobState=(\S+)", cp.stdout)
    return m.group(1) if m else None


def _native(f, jid, timeout=20):
    """The job's Slurm id, once it is handed over."""
    def get():
        n = f.info(jid).get("native_id")
        return n if n and n[0].isdigit() else None
    return poll(get, timeout=timeout, what=f"job {jid} handed to Slurm")


def _wrap(f, *commands):
    """Slurm commands on PATH through a logging wrapper: each call appends
    'TIME NAME ARGS' to the log, then runs the real command."""
    bindir = os.path.join(f.base, "wrap")
    log = os.path.join(f.base, "slurm-calls.log")
    os.makedirs(bindir, exist_ok=True)
    for c in commands:
        real = shutil.which(c)
        p = os.path.join(bindir, c)
        with open(p, "w") as fh:
            fh.write(f'#!/bin/sh\necho "$(date +%s.%N) {c} $*" >> {log}\nexec {real} "$@"\n')
        os.chmod(p, 0o755)
    f.env["PATH"] = bindir + os.pathsep + f.env["PATH"]
    return log


def _calls(log, name):
    if not os.path.exists(log):
        return []
    return [l for l in open(log).read().splitlines() if l.split(" ", 2)[1] == name]


def test_squeue_shows_what_the_job_asked(fs):
    jid = fs.submit("sleep", "300", opts=("--queue", "long", "--cpus", "2", "--memory", "100",
                                          "--walltime", "10:00", "--name", "asked"))
    native = _native(fs, jid)
    line = [q for q in _queue() if q["id"] == native][0]
    assert (line["partition"], line["cpus"], line["memory"], line["limit"]) == \
        ("long", "2", "100M", "10:00"), line
    info = fs.info(jid)
    assert info["backend"] == "slurm" and info["queue"] == "long"
    fs.run("kill", jid)
    assert fs.wait_ended(jid, timeout=WAIT)["status"] == "failed"
    assert fs.info(jid)["exit_status"] == "killed_by_user"
    poll(lambda: _slurm_state(native) == "CANCELLED", timeout=20, what="Slurm says CANCELLED")


def test_kill_running_job_slurm_says_cancelled(fs):
    jid = fs.submit("sleep", "300")
    native = _native(fs, jid)
    fs.wait_state(jid, ("running",), timeout=WAIT)
    fs.run("kill", jid)
    info = fs.wait_ended(jid, timeout=WAIT)
    assert info["status"] == "failed" and info["exit_status"] == "killed_by_user", info
    assert _slurm_state(native) == "CANCELLED"


def test_bulk_is_one_job_array(fs):
    log = _wrap(fs, "sbatch")
    lines = "".join(f"sh -c 'echo task {i}'\n" for i in range(20))
    path = fs.path("bulk.txt")
    with open(path, "w") as fh:
        fh.write(lines)
    ids = fs.run("submit", "--bulk", path).stdout.split()
    assert len(ids) == 20
    fs.run("wait", "--timeout", "120", *ids)
    calls = _calls(log, "sbatch")
    assert len(calls) == 1 and "--array=" + ",".join(map(str, range(20))) in calls[0], calls
    natives = set()
    for i, jid in enumerate(ids):
        info = fs.info(jid)
        assert info["status"] == "done", info
        natives.add(info["native_id"])
        assert re.fullmatch(r"\d+_\d+", info["native_id"]), info["native_id"]
        assert fs.run("logs", jid).stdout == f"task {i}\n"
    assert len(natives) == 20


def test_unlike_jobs_go_in_separate_arrays(fs):
    log = _wrap(fs, "sbatch")
    path = fs.path("bulk.txt")
    with open(path, "w") as fh:
        fh.write("true\ntrue\n")
    a = fs.run("submit", "--bulk", path, "--cpus", "1").stdout.split()
    b = fs.run("submit", "--bulk", path, "--cpus", "2").stdout.split()
    fs.run("wait", "--timeout", "120", *(a + b))
    assert all(fs.info(j)["status"] == "done" for j in a + b)
    assert len(_calls(log, "sbatch")) == 2


def test_poll_load_one_squeue_per_interval(fs):
    """500 active jobs: at most one squeue per poll interval, whatever their number."""
    interval = 1.0
    fs.config("[local]\nslots = 2\n" + slurm_section(poll_interval=interval))
    log = _wrap(fs, "squeue", "sacct", "scontrol", "sbatch")
    path = fs.path("bulk.txt")
    with open(path, "w") as fh:
        fh.write("sleep 600\n" * 500)
    ids = fs.run("submit", "--hold", "--bulk", path).stdout.split()
    assert len(ids) == 500
    poll(lambda: all(j["native_id"] and j["native_id"][0].isdigit()
                     for j in fs.json("jobs", "--json")), timeout=60, what="500 handed")
    t0 = time.time()
    time.sleep(8)
    t1 = time.time()
    # every job is still tracked and held
    states = {j["status"] for j in fs.json("jobs", "--json")}
    assert states == {"user_on_hold"}, states
    squeues = [float(l.split()[0]) for l in _calls(log, "squeue")]
    window = [t for t in squeues if t0 <= t <= t1]
    assert len(window) <= (t1 - t0) / interval + 1, len(window)
    assert len(window) >= (t1 - t0) / interval - 3, len(window)  # it does poll
    assert len(_calls(log, "sbatch")) == 1
    assert not [c for c in _calls(log, "scontrol") if " show job" in c]
    # cancelled behind ferry's back, while pending: the tasks never get a
    # record of their own (only the array does); other tests' jobs stay
    arrays = {j["native_id"].split("_")[0] for j in fs.json("jobs", "--json")}
    inst = _instance(fs)
    subprocess.run(["scancel", "--state=PENDING", *arrays], capture_output=True, check=True)
    poll(lambda: not [q for q in _queue() if q["comment"].startswith(f"ferry:{inst}:")
                      and q["state"] == "PENDING"], timeout=60, what="cancelled")
    # held jobs are waited for when named (a plain --all leaves out what
    # the user holds): these end without the user, cancelled by Slurm
    fs.run("wait", "--all", "--state", "user_on_hold", "--timeout", "120", check=False)
    jobs = fs.json("jobs", "--json")
    assert {j["exit_status"] for j in jobs} == {"aborted"}, {j["exit_status"] for j in jobs}
    assert "cancelled in Slurm" in jobs[0]["message"]


def test_mpi_two_tasks_both_report(fs):
    jid = fs.submit("sh", "-c", 'echo "rank $SLURM_PROCID of $SLURM_NTASKS"',
                    opts=("--native", "--ntasks=2"))
    info = fs.wait_ended(jid, timeout=WAIT)
    assert info["status"] == "done", info
    out = sorted(fs.run("logs", jid).stdout.splitlines())
    assert out == ["rank 0 of 2", "rank 1 of 2"], out


def test_native_specification_errors(fs):
    cp = fs.run("submit", "--native", "--output=/tmp/x", "--", "true", check=False)
    assert cp.returncode != 0 and "'--output' is ferry's own" in cp.stderr, cp.stderr
    cp = fs.run("submit", "--native", "--comment 'unbalanced", "--", "true", check=False)
    assert cp.returncode != 0 and "native specification" in cp.stderr, cp.stderr
    for spec, owned in (("-o/tmp/x", "-o"), ("--out=/tmp/x", "--output"), ("-Jname", "-J"),
                        ("--comm=x", "--comment")):
        cp = fs.run("submit", "--native", spec, "--", "true", check=False)
        assert cp.returncode != 0 and f"'{owned}' is ferry's own" in cp.stderr, (spec, cp.stderr)
    for spec in ("-M other", "--clusters=other", "--wait", "--test-only"):
        cp = fs.run("submit", "--native", spec, "--", "true", check=False)
        assert cp.returncode != 0 and "is not supported" in cp.stderr, (spec, cp.stderr)
    cp = fs.run("submit", "--native", "notanoption", "--", "true", check=False)
    assert cp.returncode != 0 and "not an sbatch option" in cp.stderr, cp.stderr
    # sbatch itself refuses: the job ends aborted with Slurm's message
    jid = fs.submit("true", opts=("--native", "--no-such-sbatch-option"))
    info = fs.wait_ended(jid, timeout=WAIT)
    assert info["exit_status"] == "aborted", info
    assert "sbatch failed" in info["message"] and "no-such-sbatch-option" in info["message"]


def test_unknown_partition_and_too_many_cpus_refused_at_submit(fs):
    cp = fs.run("submit", "--queue", "nosuch", "--", "true", check=False)
    assert cp.returncode != 0 and "no partition 'nosuch'" in cp.stderr, cp.stderr
    cp = fs.run("submit", "--cpus", "64", "--", "true", check=False)
    assert cp.returncode != 0 and "64 cpus" in cp.stderr, cp.stderr
    assert fs.json("jobs", "--json") == []


def test_argv_bytes_survive_the_batch_script(fs):
    weird = ["it's", 'a "quoted" $HOME `x`', "new\nline", "tab\there", "-n", "*", "\\"]
    jid = fs.submit("printf", "[%s]\\n", *weird)
    assert fs.wait_ended(jid, timeout=WAIT)["status"] == "done"
    assert fs.run("logs", jid).stdout == "".join(f"[{w}]\n" for w in weird)


def test_env_cwd_stdin_join(fs):
    with open(fs.path("in.txt"), "w") as fh:
        fh.write("from stdin\n")
    jid = fs.submit("sh", "-c", 'cat; echo "$V" >&2; pwd',
                    opts=("--env", "V=forty two", "--stdin", fs.path("in.txt"), "--join",
                          "--cwd", fs.path(), "--stdout", fs.path("out.txt")))
    assert fs.wait_ended(jid, timeout=WAIT)["status"] == "done"
    assert open(fs.path("out.txt")).read() == f"from stdin\nforty two\n{fs.path()}\n"


def test_engine_killed_during_300_job_run_none_twice(fs):
    path = fs.path("bulk.txt")
    with open(path, "w") as fh:
        fh.write("".join(f"sh -c 'sleep 0.$((RANDOM % 5)); echo {i}'\n" for i in range(300)))
    ids = fs.run("submit", "--bulk", path).stdout.split()
    time.sleep(1.5)
    fs.kill_engine()
    time.sleep(1)
    fs.run("ping")  # a new engine re-attaches every job
    fs.kill_engine()
    fs.run("wait", "--timeout", "300", *ids)
    jobs = {str(j["id"]): j for j in fs.json("jobs", "--json")}
    assert all(jobs[i]["status"] == "done" for i in ids), \
        [jobs[i] for i in ids if jobs[i]["status"] != "done"][:3]
    for n, i in enumerate(ids):
        assert fs.run("logs", i).stdout == f"{n}\n"
    _none_twice(fs, ids)


def _none_twice(fs, ids):
    inst = _instance(fs)
    seen = {}
    for q in _queue():
        m = re.fullmatch(rf"ferry:{inst}:(\d+)", q["comment"])
        if m:
            fid = int(m.group(1)) + (int(q["task"]) if q["task"].isdigit() else 0)
            seen[fid] = seen.get(fid, 0) + 1
    assert sorted(seen) == sorted(int(i) for i in ids), (len(seen), len(ids))
    assert max(seen.values()) == 1, [k for k, v in seen.items() if v > 1]


def _faults(fs, squeue=None):
    """Puts fault-injecting wrappers first on the engine's PATH (a real
    Slurm cannot lose an answer or forget a job on demand):
    fault-sbatch-then-crash runs the real sbatch, then SIGKILLs ferryd
    before it reads the job id, once ($FAULT_ONCE marks it done); squeue,
    when given, is the body of a wrapper script for squeue. Returns the
    PATH as it was."""
    bindir = os.path.join(fs.base, "fault")
    os.makedirs(bindir)
    scripts = {"sbatch": "# fault-sbatch-then-crash\n"
                         f'{shutil.which("sbatch")} "$@" || exit\n'
                         'if [ ! -e "$FAULT_ONCE" ]; then : > "$FAULT_ONCE"; kill -9 $PPID; '
                         'sleep 5; fi\n'}
    if squeue:
        scripts["squeue"] = squeue
    for name, body in scripts.items():
        p = os.path.join(bindir, name)
        with open(p, "w") as fh:
            fh.write("#!/bin/sh\n" + body)
        os.chmod(p, 0o755)
    env_path = fs.env["PATH"]
    fs.env["PATH"] = bindir + os.pathsep + env_path
    fs.env["FAULT_ONCE"] = os.path.join(fs.base, "fault-done")
    return env_path


def test_engine_killed_between_sbatch_and_its_answer(fs):
    """Fault injection (a real sbatch cannot be made to lose its answer on
    demand): fault-sbatch-then-crash runs the real sbatch, then SIGKILLs
    ferryd before it reads the job id. The next engine finds the job by
    its comment: it is tracked, not submitted again."""
    env_path = _faults(fs)
    path = fs.path("bulk.txt")
    with open(path, "w") as fh:
        fh.write("".join(f"sh -c 'echo {i}'\n" for i in range(10)))
    ids = fs.run("submit", "--bulk", path).stdout.split()
    poll(lambda: os.path.exists(fs.env["FAULT_ONCE"]), timeout=20, what="the fault")
    poll(lambda: not fs.engine_alive(), timeout=20, what="the engine killed")
    fs.env["PATH"] = env_path
    fs.run("wait", "--timeout", "120", *ids)
    for n, i in enumerate(ids):
        info = fs.info(i)
        assert info["status"] == "done", info
        assert fs.run("logs", i).stdout == f"{n}\n"
    _none_twice(fs, ids)


def test_engine_killed_after_sbatch_and_jobs_purged(fs):
    """As above, and by the time the next engine starts slurmctld has
    purged the ended jobs (MinJobAge): fault-squeue-purged hides them from
    squeue (slurmctld cannot be made to purge on demand). Their scripts
    left their Slurm ids in the job directories: the jobs are tracked to
    their end through accounting, and not submitted again."""
    env_path = _faults(fs, squeue="# fault-squeue-purged: ferry's jobs are not listed\n"
                                  f'{shutil.which("squeue")} "$@" | grep -v "ferry:"\nexit 0\n')
    path = fs.path("bulk.txt")
    with open(path, "w") as fh:
        fh.write("".join(f"sh -c 'echo {i}'\n" for i in range(5)))
    ids = fs.run("submit", "--bulk", path).stdout.split()
    poll(lambda: not fs.engine_alive(), timeout=20, what="the engine killed")
    jobs = os.path.join(fs.state_dir, "jobs")
    poll(lambda: all(os.path.exists(os.path.join(jobs, i, "started")) for i in ids),
         timeout=60, what="every job started")
    time.sleep(2)  # and ended
    fs.run("wait", "--timeout", "120", *ids)
    for n, i in enumerate(ids):
        info = fs.info(i)
        assert info["status"] == "done", info
        assert fs.run("logs", i).stdout == f"{n}\n"
    fs.env["PATH"] = env_path
    _none_twice(fs, ids)


def test_start_mark_holds_slurms_id_whatever_the_jobs_env(fs):
    """As above for one job whose own env sets SLURM_JOB_ID (a job may
    name any variable): its script reads Slurm's id before it exports the
    job's env, so the next engine learns the real id from the start mark,
    and the job gets its own value."""
    env_path = _faults(fs, squeue="# fault-squeue-purged: ferry's jobs are not listed\n"
                                  f'{shutil.which("squeue")} "$@" | grep -v "ferry:"\nexit 0\n')
    jid = fs.submit("sh", "-c", 'echo "job sees $SLURM_JOB_ID"',
                    opts=("--env", "SLURM_JOB_ID=999999"))
    poll(lambda: not fs.engine_alive(), timeout=20, what="the engine killed")
    mark = os.path.join(fs.state_dir, "jobs", str(jid), "started")
    poll(lambda: os.path.exists(mark), timeout=60, what="the job started")
    time.sleep(2)  # and ended
    info = fs.wait_ended(jid, timeout=120)
    assert info["status"] == "done", info
    assert re.fullmatch(r"\d+", info["native_id"]) and info["native_id"] != "999999", info
    assert fs.run("logs", jid).stdout == "job sees 999999\n"
    fs.env["PATH"] = env_path
    _none_twice(fs, [str(jid)])


def test_engine_killed_after_sbatch_and_squeue_down_at_restart(fs):
    """As above, and the first squeue of the next engine fails
    (fault-squeue-fails-once: slurmctld cannot be made unreachable for one
    call on demand). The jobs wait with their ids unknown; the next poll's
    squeue names them, and they are tracked to their end, none twice."""
    _faults(fs, squeue="# fault-squeue-fails-once, after the crash\n"
                       'if [ -e "$FAULT_ONCE" ] && [ ! -e "$FAULT_ONCE.squeue" ]; then\n'
                       '  : > "$FAULT_ONCE.squeue"; echo "squeue: error: Unable to contact '
                       'slurm controller (connect failure)" >&2; exit 1\nfi\n'
                       f'exec {shutil.which("squeue")} "$@"\n')
    path = fs.path("bulk.txt")
    with open(path, "w") as fh:
        fh.write("".join(f"sh -c 'sleep 3; echo {i}'\n" for i in range(4)))
    # held: none starts (and leaves its id in its start mark) before squeue works again
    ids = fs.run("submit", "--hold", "--bulk", path).stdout.split()
    poll(lambda: not fs.engine_alive(), timeout=20, what="the engine killed")
    fs.run("ping")
    for i in ids:
        poll(lambda: fs.run("release", i, check=False).returncode == 0, timeout=30,
             what=f"job {i}'s Slurm id known again (its release accepted)")
    fs.run("wait", "--timeout", "120", *ids)
    assert os.path.exists(fs.env["FAULT_ONCE"] + ".squeue"), "the fault did not happen"
    for n, i in enumerate(ids):
        info = fs.info(i)
        assert info["status"] == "done", info
        assert fs.run("logs", i).stdout == f"{n}\n"
    _none_twice(fs, ids)


def test_held_jobs_are_kept_in_memory_across_a_restart(fs):
    """A DRMS engine keeps held jobs in memory (Slurm holds them), which
    jobs_live no longer lists (schema 7): its start reads them from
    jobs_state (S_ACTIVE_ALL). After a restart they are held still, with
    their native ids, and tracked: a cancel behind ferry's back is seen."""
    held = [fs.submit("sleep", "600", opts=("--hold",)) for _ in range(3)]
    natives = [_native(fs, j) for j in held]
    fs.run("daemon", "stop", timeout=60)
    fs.run("ping")
    assert [fs.state(j) for j in held] == ["user_on_hold"] * 3
    assert [fs.info(j)["native_id"] for j in held] == natives
    subprocess.run(["scancel", natives[0]], check=True)
    fs.wait_ended(held[0], timeout=WAIT)
    assert fs.info(held[0])["exit_status"] == "aborted", fs.info(held[0])
    fs.run("kill", held[1], held[2])
    assert fs.wait_ended(held[1], timeout=WAIT)["exit_status"] == "killed_by_user"
    fs.wait_ended(held[2], timeout=WAIT)


def test_suspend_needs_rights_error_is_clear(fs):
    """As a user Slurm does not let suspend, stop gives EPERM with Slurm's
    message (the engine runs as that user)."""
    if shutil.which("runuser") is None:
        pytest.skip("no runuser")
    subprocess.run(["useradd", "-m", "ferryslurm"], capture_output=True)
    base = new_base("fy-slurm-user-")
    os.chmod(base, 0o755)
    env = dict(fs.env, XDG_STATE_HOME=f"{base}/state", XDG_CONFIG_HOME=f"{base}/config",
               HOME="/home/ferryslurm")
    os.makedirs(f"{base}/config/ferry")
    with open(f"{base}/config/ferry/ferry.conf", "w") as fh:
        fh.write(slurm_section())
    subprocess.run(["chown", "-R", "ferryslurm", base], check=True)

    def run(*a, check=True):
        cp = subprocess.run(["runuser", "-u", "ferryslurm", "--", fs.bin, "-r", "slurm", *a],
                            capture_output=True, text=True, env=env, cwd="/tmp", timeout=60)
        assert not check or cp.returncode == 0, cp
        return cp
    try:
        jid = run("submit", "--", "sleep", "300").stdout.strip()
        # the single node may be busy with other tests' jobs for a while
        poll(lambda: run("status", jid).stdout.strip() == "running", timeout=120,
             what="running")
        cp = run("stop", jid, check=False)
        assert cp.returncode != 0 and "administrators" in cp.stderr, cp.stderr
        assert run("status", jid).stdout.strip() == "running"
        run("kill", jid)
    finally:
        run("daemon", "stop", check=False)
        shutil.rmtree(base, ignore_errors=True)


def test_slow_squeue_does_not_stall_the_engine(fs):
    """While squeue takes 20 s to answer, the engine still answers at once;
    when it does answer, what it said is applied (the job ends done)."""
    began, ended = slow_command(fs, "squeue")
    jid = fs.submit("sh", "-c", "echo polled")
    poll(lambda: os.path.exists(began), timeout=30, what="the slow squeue")
    answers_quickly(fs, jid)
    assert not os.path.exists(ended), "the checks outlasted the slow squeue"
    fs.run("wait", "--timeout", str(WAIT), jid)
    assert os.path.exists(ended)
    assert fs.info(jid)["status"] == "done"
    assert fs.run("logs", jid).stdout == "polled\n"


def test_slow_sbatch_does_not_stall_the_engine(fs):
    """While sbatch takes 20 s, the engine answers at once; a hold asked
    meanwhile waits for sbatch (the job is held in Slurm after: it asks
    to begin in a minute, so it cannot start before the hold), a kill
    does not (it is recorded at once; once sbatch answered, Slurm's copy
    is cancelled before it runs and the job ends killed); then sbatch's
    answer is applied."""
    began, ended = slow_command(fs, "sbatch")
    flag = fs.path("b-ran")
    a = fs.submit("sh", "-c", "echo handed")
    b = fs.submit("sh", "-c", f"sleep 8; touch {flag}")
    c = fs.submit("sh", "-c", "echo held", opts=("--native", "--begin=now+60"))
    poll(lambda: os.path.exists(began), timeout=30, what="the slow sbatch")
    answers_quickly(fs, a)
    hold = fs.popen("hold", c)
    t = time.monotonic()
    fs.run("kill", b)
    assert time.monotonic() - t < SLOW_S / 2, "the kill waited for sbatch"
    answers_quickly(fs, a)
    assert hold.wait(timeout=SLOW_S + 30) == 0, hold.stderr.read()
    assert os.path.exists(ended), "the hold did not wait for sbatch"
    assert fs.state(c) == "user_on_hold"
    fs.run("wait", "--timeout", str(WAIT), a)
    assert fs.info(a)["status"] == "done" and fs.info(a)["native_id"]
    assert _slurm_state(_native(fs, c)) == "PENDING"
    info = fs.wait_ended(b, timeout=30)
    assert info["exit_status"] == "killed_by_user", info
    time.sleep(10)  # b would have run by now, had it not been cancelled
    assert not os.path.exists(flag)
    fs.run("kill", c)


def test_jobs_and_commands_get_the_submitters_descriptor_limit(fs):
    """The engine raises its soft RLIMIT_NOFILE; the Slurm commands it runs
    get the one it was started with back, so that sbatch (Slurm's default
    PropagateResourceLimits) passes the user's limit on to the job, not
    the engine's. Every command is checked, not sbatch alone."""
    import resource
    from test_hardening_connections import soft_nofile, start_engine
    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    if hard != resource.RLIM_INFINITY and hard < 2048:
        pytest.skip(f"the hard limit here ({hard}) is too low to raise from 512")
    bindir, log = os.path.join(fs.base, "limits"), os.path.join(fs.base, "limits.log")
    os.makedirs(bindir)
    for c in ("sbatch", "squeue"):
        with open(os.path.join(bindir, c), "w") as fh:
            fh.write(f'#!/bin/sh\necho "{c} $(ulimit -n)" >> {log}\n'
                     f'exec {shutil.which(c)} "$@"\n')
        os.chmod(os.path.join(bindir, c), 0o755)
    fs.env["PATH"] = bindir + os.pathsep + fs.env["PATH"]
    pid = start_engine(fs, nofile=(512, 2048))
    assert soft_nofile(pid) == 2048
    jid = fs.submit("sh", "-c", "ulimit -n; ulimit -Sn")
    assert fs.wait_ended(jid, timeout=WAIT)["status"] == "done"
    assert fs.run("logs", jid).stdout == "512\n512\n"
    calls = open(log).read().splitlines()
    assert any(c.startswith("sbatch ") for c in calls), calls
    assert any(c.startswith("squeue ") for c in calls), calls
    assert all(c.endswith(" 512") for c in calls), calls


def test_grouped_short_options_checked_like_long_ones(fs):
    """getopt reads "-Hv" as -H -v: each option of a group is checked."""
    for spec, what in (("-Hv", "'-H' is ferry's own"), ("-vJname", "'-J' is ferry's own"),
                       ("-OH", "'-H' is ferry's own"), ("-vW", "'-W' is not supported"),
                       ("-vQ", "'-Q' is not supported"), ("--qui", "'--quiet' is not supported"),
                       ("-vZ", "'-Z' in '-vZ' is not an sbatch option"),
                       # -k's value is optional, so only the rest of its word (getopt's k::)
                       ("-kv", "'-kv' gives --no-kill the value 'v', which sbatch refuses"),
                       ("-k off", "-k takes its value attached ('-koff')"),
                       ("-O extra", "'extra' is not an sbatch option nor the value of one")):
        cp = fs.run("submit", "--native", spec, "--", "true", check=False)
        assert cp.returncode != 0 and what in cp.stderr, (spec, cp.stderr)
    assert fs.json("jobs", "--json") == []
    # a value option ends the group, its value attached: -n2 asks two tasks (srun)
    jid = fs.submit("sh", "-c", 'echo "rank $SLURM_PROCID of $SLURM_NTASKS"',
                    opts=("--native", "-On2"))
    info = fs.wait_ended(jid, timeout=WAIT)
    assert info["status"] == "done", (info["message"], fs.run("logs", "--stderr", jid).stdout)
    assert sorted(fs.run("logs", jid).stdout.splitlines()) == ["rank 0 of 2", "rank 1 of 2"]
    # -k ends a group too, with its value: -O --no-kill=off
    jid = fs.submit("true", opts=("--native", "-Okoff"))
    info = fs.wait_ended(jid, timeout=WAIT)
    assert info["status"] == "done", info["message"]


def _limited_slurm(f, max_array, max_script):
    """scontrol and sbatch on the engine's PATH: `scontrol show config` says
    Slurm's limits are max_array and max_script (the test cluster's are
    Slurm's defaults, and the other tests share it); sbatch logs the size
    of each script it is given, then runs the real one."""
    bindir = os.path.join(f.base, "limits")
    log = os.path.join(f.base, "scripts.log")
    os.makedirs(bindir)
    with open(os.path.join(bindir, "scontrol"), "w") as fh:
        fh.write(f'#!/bin/sh\nif [ "$1 $2" = "show config" ]; then\n'
                 f'{shutil.which("scontrol")} "$@" | sed -e "s/^MaxArraySize .*/MaxArraySize '
                 f'= {max_array}/" -e "s/^SchedulerParameters .*/SchedulerParameters = '
                 f'max_script_size={max_script}/"\nexit\nfi\n'
                 f'exec {shutil.which("scontrol")} "$@"\n')
    with open(os.path.join(bindir, "sbatch"), "w") as fh:
        fh.write(f'#!/bin/sh\nt=$(mktemp)\ncat > "$t"\nwc -c < "$t" >> {log}\n'
                 f'{shutil.which("sbatch")} "$@" < "$t"\nrc=$?\nrm -f "$t"\nexit $rc\n')
    for c in ("scontrol", "sbatch"):
        os.chmod(os.path.join(bindir, c), 0o755)
    f.env["PATH"] = bindir + os.pathsep + f.env["PATH"]
    return log


def _sizes(log):
    return [int(l) for l in open(log).read().split()] if os.path.exists(log) else []


def test_bulk_over_max_array_size_is_split(fs):
    log = _limited_slurm(fs, 5, 4194304)
    path = fs.path("bulk.txt")
    with open(path, "w") as fh:
        fh.write("".join(f"sh -c 'echo task {i}'\n" for i in range(12)))
    ids = fs.run("submit", "--bulk", path).stdout.split()
    fs.run("wait", "--timeout", str(WAIT), *ids, timeout=WAIT + 30)
    for i, jid in enumerate(ids):
        assert fs.info(jid)["status"] == "done", fs.info(jid)
        assert fs.run("logs", jid).stdout == f"task {i}\n"
    arrays = {fs.info(j)["native_id"].split("_")[0] for j in ids}
    assert len(_sizes(log)) == 3 and len(arrays) == 3, (_sizes(log), arrays)


def test_bulk_over_max_script_size_is_split(fs):
    limit = 20000
    log = _limited_slurm(fs, 1001, limit)
    big = "x" * 3000  # each job's part of the script: over 3,000 bytes
    path = fs.path("bulk.txt")
    with open(path, "w") as fh:
        fh.write("".join(f"sh -c 'echo {i} ${{#0}}' {big}\n" for i in range(12)))
    ids = fs.run("submit", "--bulk", path).stdout.split()
    fs.run("wait", "--timeout", str(WAIT), *ids, timeout=WAIT + 30)
    for i, jid in enumerate(ids):
        assert fs.info(jid)["status"] == "done", fs.info(jid)
        assert fs.run("logs", jid).stdout == f"{i} 3000\n"
    sizes = _sizes(log)
    assert len(sizes) >= 3 and all(s <= limit for s in sizes), sizes
