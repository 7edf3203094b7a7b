"""The DRMAA backend against the real single-node Grid Engine of
tests/cluster/start-sge.sh: what Grid Engine itself (qstat, qacct, the
accounting file) says of ferry's jobs, bulk jobs as one DRMAA bulk
submission, parallel environments, native specifications Grid Engine
refuses, engine crashes (every job tracked to its end, none submitted
twice), hold/release/suspend/resume through the CLI, and an engine that
answers at once while Grid Engine is slow (its DRMAA calls and commands
run on a worker thread)."""
import os
import re
import shutil
import subprocess
import time
import xml.etree.ElementTree as ET

import pytest

import conftest
from conftest import SLOW_S, Ferry, answers_quickly, new_base, poll, slow_command

# Grid Engine's 8 slots are shared: its tests run one at a time, on one
# worker (scripts/test runs pytest with --dist loadgroup)
pytestmark = [pytest.mark.usefixtures("sge"), pytest.mark.xdist_group("sge")]

sge_section = conftest.sge_section

ACCOUNTING_JOB_NUMBER = 5  # 0-based field index in $SGE_ROOT/$SGE_CELL/common/accounting
ACCOUNTING_TASK_NUMBER = 35
@pytest.fixture
def fs(request):
    """A Ferry whose default resource is [sge] (scheduler = drmaa)."""
    base = new_base("fy-sge-")
    f = Ferry(base, resource="sge")
    f.config("[local]\nslots = 2\n" + sge_section())
    f.env["FERRY_RESOURCE"] = "sge"
    yield f
    natives = set()
    try:
        natives = {j["native_id"] for j in f.json("jobs", timeout=20)
                   if j.get("native_id") and j["native_id"][0].isdigit()}
    except AssertionError:
        pass
    f.cleanup()
    # what a failed test left in Grid Engine: qdel by job number (a bulk's
    # tasks all share one)
    numbers = sorted({n.split(".")[0] for n in natives})
    live = _qstat_numbers()
    left = [n for n in numbers if n in live]
    if left:
        subprocess.run(["qdel", *left], capture_output=True, timeout=60)
    if not os.environ.get("FERRY_TEST_KEEP"):
        shutil.rmtree(base, ignore_errors=True)


# ------------------------------------------------------------- helpers


def _sge(*args, check=True, timeout=60):
    cp = subprocess.run(list(args), capture_output=True, text=True, timeout=timeout)
    if check and cp.returncode != 0:
        raise AssertionError(f"{' '.join(args)} exited {cp.returncode}: {cp.stdout} {cp.stderr}")
    return cp


def _qstat_xml():
    """Every job (or array task) qmaster lists, as dicts: number, task,
    name, state, queue, slots."""
    root = ET.fromstring(_sge("qstat", "-xml", "-u", "*").stdout)
    out = []
    for jl in root.iter("job_list"):
        out.append(dict(number=jl.findtext("JB_job_number"), task=jl.findtext("tasks"),
                        name=jl.findtext("JB_name"), state=jl.findtext("state"),
                        queue=jl.findtext("queue_name") or "", slots=jl.findtext("slots")))
    return out


def _qstat_numbers():
    try:
        return {j["number"] for j in _qstat_xml()}
    except (AssertionError, ET.ParseError, subprocess.SubprocessError):
        return set()


def _qstat_job(native):
    """The qstat -xml entry of a native id ("N" or "N.T"), or None."""
    number, _, task = native.partition(".")
    for j in _qstat_xml():
        if j["number"] != number:
            continue
        if not task:
            return j
        t = j["task"] or ""
        # a pending array collapses its tasks into ranges "1-5:1,7"
        for part in t.split(","):
            m = re.fullmatch(r"(\d+)(?:-(\d+)(?::(\d+))?)?", part)
            if m:
                lo, hi, step = int(m[1]), int(m[2] or m[1]), int(m[3] or 1)
                if lo <= int(task) <= hi and (int(task) - lo) % step == 0:
                    return j
    return None


def _qacct(native):
    """The qacct record of a native id as a dict, or None while there is none."""
    number, _, task = native.partition(".")
    args = ["qacct", "-j", number] + (["-t", task] if task else [])
    cp = _sge(*args, check=False)
    if cp.returncode != 0:
        return None
    rec = {}
    for line in cp.stdout.splitlines():
        if line.startswith("="):
            continue
        k, _, v = line.partition(" ")
        rec[k] = v.strip()
    return rec


def _native(f, jid, timeout=30):
    """The job's Grid Engine id, once it is handed over."""
    def get():
        n = f.info(jid).get("native_id")
        return n if n and n[0].isdigit() else None
    return poll(get, timeout=timeout, what=f"job {jid} handed to Grid Engine")


def _accounting_records(number):
    """(job_number, task_number) of every record of job number in the accounting file."""
    path = os.path.join(os.environ["SGE_ROOT"], os.environ.get("SGE_CELL", "default"),
                        "common", "accounting")
    recs = []
    with open(path, errors="replace") as fh:
        for line in fh:
            if line.startswith("#"):
                continue
            fields = line.rstrip("\n").split(":")
            if len(fields) > ACCOUNTING_TASK_NUMBER and fields[ACCOUNTING_JOB_NUMBER] == number:
                recs.append((fields[ACCOUNTING_JOB_NUMBER], fields[ACCOUNTING_TASK_NUMBER]))
    return recs


def _bulk(f, lines, *opts):
    path = f.path("bulk.txt")
    with open(path, "w") as fh:
        fh.write("".join(l + "\n" for l in lines))
    ids = f.run("submit", "--bulk", path, *opts).stdout.split()
    assert len(ids) == len(lines), ids
    return ids


def test_qstat_shows_what_the_job_asked(fs):
    jid = fs.submit("sleep", "300", opts=("--queue", "long.q", "--cpus", "2", "--name", "asked"))
    native = _native(fs, jid)
    assert re.fullmatch(r"\d+", native), native  # a single job: no task id
    info = fs.info(jid)
    assert info["backend"] == "drmaa" and info["queue"] == "long.q", info
    qj = _sge("qstat", "-j", native).stdout
    assert re.search(r"^job_name:\s+asked$", qj, re.M), qj
    assert re.search(r"^hard_queue_list:\s+long\.q$", qj, re.M), qj
    assert re.search(r"^parallel environment:\s+smp range: 2$", qj, re.M), qj
    j = poll(lambda: (lambda q: q if q and q["state"] == "r" else None)(_qstat_job(native)),
             timeout=60, what="qstat says r")
    assert j["queue"].startswith("long.q@") and j["slots"] == "2" and j["name"] == "asked", j
    fs.wait_state(jid, "running", timeout=30)
    fs.run("kill", jid)
    info = fs.wait_ended(jid, timeout=60)
    assert info["status"] == "failed" and info["exit_status"] == "killed_by_user", info
    poll(lambda: _qstat_job(native) is None, timeout=30, what="gone from qstat")


def test_qacct_agrees_on_exit_values(fs):
    cmds = {"0": ("sh", "-c", "exit 0"), "3": ("sh", "-c", "exit 3"),
            "kill9": ("sh", "-c", "kill -9 $$")}
    jobs = {k: fs.submit(*c) for k, c in cmds.items()}
    infos = {k: fs.wait_ended(j, timeout=90) for k, j in jobs.items()}
    assert infos["0"]["status"] == "done" and infos["0"]["exit_value"] == 0, infos["0"]
    assert infos["3"]["status"] == "failed" and infos["3"]["exit_value"] == 3, infos["3"]
    assert infos["kill9"]["status"] == "failed" and infos["kill9"]["signal"] == 9, infos["kill9"]
    for k, info in infos.items():
        rec = poll(lambda: _qacct(info["native_id"]), timeout=20,
                   what=f"qacct record of {info['native_id']}")
        code = int(rec["exit_status"].split()[0])
        if info["signal"]:
            assert code == 128 + info["signal"], (k, rec["exit_status"], info)
        else:
            assert code == info["exit_value"], (k, rec["exit_status"], info)
        assert rec["jobnumber"] == info["native_id"].split(".")[0], rec


def test_bulk_of_100_is_one_drmaa_bulk(fs):
    ids = _bulk(fs, [f"sh -c 'echo task {k}'" for k in range(100)])
    fs.run("wait", "--timeout", "300", *ids, timeout=320)
    numbers = set()
    for k, jid in enumerate(ids):
        info = fs.info(jid)
        assert info["status"] == "done", info
        m = re.fullmatch(r"(\d+)\.(\d+)", info["native_id"] or "")
        assert m, info["native_id"]
        numbers.add(m[1])
        assert int(m[2]) == int(jid), (jid, info["native_id"])
        assert fs.run("logs", jid).stdout == f"task {k}\n", jid
    assert len(numbers) == 1, numbers
    # Grid Engine agrees: one job, the ferry ids as its task ids
    number = numbers.pop()
    recs = poll(lambda: (lambda r: r if len(r) >= 100 else None)(_accounting_records(number)),
                timeout=20, what="100 accounting records")
    assert sorted(int(t) for _, t in recs) == sorted(int(i) for i in ids), recs[:5]


def test_parallel_environment_two_slots(fs):
    a = fs.submit("sh", "-c", "echo $NSLOTS $PE", opts=("--cpus", "2"))
    b = fs.submit("sh", "-c", "echo $NSLOTS $PE", opts=("--native", "-pe mpi 2"))
    for jid, want in ((a, "2 smp\n"), (b, "2 mpi\n")):
        info = fs.wait_ended(jid, timeout=90)
        assert info["status"] == "done", info
        assert fs.run("logs", jid).stdout == want, (jid, fs.run("logs", jid).stdout)
    rec = poll(lambda: _qacct(fs.info(b)["native_id"]), timeout=20, what="qacct record")
    assert rec["granted_pe"] == "mpi" and rec["slots"] == "2", rec


def test_native_specifications_grid_engine_refuses(fs):
    bogus = fs.submit("true", opts=("--native", "-bogus"))
    noq = fs.submit("true", opts=("--native", "-q nosuch.q"))
    info = fs.wait_ended(bogus, timeout=30)
    assert info["status"] == "failed" and info["exit_status"] == "aborted", info
    assert info["message"].startswith("DRMAA refused the job: "), info["message"]
    assert "invalid option argument" in info["message"], info["message"]
    assert "-bogus" in info["message"], info["message"]
    info = fs.wait_ended(noq, timeout=30)
    assert info["status"] == "failed" and info["exit_status"] == "aborted", info
    assert info["message"].startswith("DRMAA refused the job: "), info["message"]
    assert "nosuch.q" in info["message"], info["message"]
    # the engine goes on: a good job after the refused ones runs
    ok = fs.submit("sh", "-c", "echo fine")
    assert fs.wait_ended(ok, timeout=60)["status"] == "done"
    assert fs.run("logs", ok).stdout == "fine\n"


def test_engine_killed_twice_during_200_jobs_none_twice(fs):
    n = 200
    ids = _bulk(fs, [f"sh -c 'sleep 0.$((RANDOM % 5)); echo {k}; exit {k % 3}'"
                     for k in range(n)])
    time.sleep(1.5)
    fs.kill_engine()
    time.sleep(1)
    fs.run("ping")  # a new engine adopts every job
    time.sleep(6)
    fs.kill_engine()
    time.sleep(1)
    fs.run("ping")
    # wait exits 4 when jobs failed (two in three do, on purpose), 3 on timeout
    cp = fs.run("wait", "--timeout", "400", *ids, timeout=420, check=False)
    assert cp.returncode == 4, (cp.returncode, cp.stderr[-2000:])
    jobs = {str(j["id"]): j for j in fs.json("jobs", timeout=60)}
    bad = []
    numbers = set()
    for k, jid in enumerate(ids):
        j = jobs[jid]
        if j["exit_status"] != "finished_regularly" or j["exit_value"] != k % 3:
            bad.append(j)
        numbers.add((j["native_id"] or "").split(".")[0])
    assert not bad, (len(bad), [(j["id"], j["status"], j["exit_status"], j["exit_value"], j["message"]) for j in bad[:3]])
    for k, jid in enumerate(ids):
        assert fs.run("logs", jid).stdout == f"{k}\n", jid
    # none submitted twice: every ferry id is exactly one accounting record
    assert len(numbers) == 1 and all(x.isdigit() for x in numbers), numbers
    number = numbers.pop()
    recs = poll(lambda: (lambda r: r if len(r) >= n else None)(_accounting_records(number)),
                timeout=30, what=f"{n} accounting records")
    seen = {}
    for _, t in recs:
        seen[int(t)] = seen.get(int(t), 0) + 1
    assert sorted(seen) == sorted(int(i) for i in ids), (len(seen), len(ids))
    assert max(seen.values()) == 1, [t for t, c in seen.items() if c > 1]


def test_hold_release_stop_restart(fs):
    jid = fs.submit("sleep", "300", opts=("--hold",))
    native = _native(fs, jid)
    fs.wait_state(jid, "user_on_hold", timeout=30)
    assert _qstat_job(native)["state"] == "hqw", _qstat_job(native)
    time.sleep(2)  # held, it does not start
    assert fs.info(jid)["status"] == "user_on_hold"
    fs.run("release", jid)
    fs.wait_state(jid, "running", timeout=60)
    poll(lambda: (_qstat_job(native) or {}).get("state") == "r", timeout=30,
         what="qstat says r")
    fs.run("stop", jid)
    fs.wait_state(jid, "user_suspended", timeout=30)
    st = _qstat_job(native)["state"]
    assert "s" in st, st
    fs.run("restart", jid)
    fs.wait_state(jid, "running", timeout=30)
    poll(lambda: (_qstat_job(native) or {}).get("state") == "r", timeout=30,
         what="qstat says r again")
    fs.run("kill", jid)
    info = fs.wait_ended(jid, timeout=60)
    assert info["exit_status"] == "killed_by_user", info


def test_slow_qacct_does_not_stall_the_engine(fs):
    """A job of an earlier engine ends while no engine runs, so its end
    comes from qacct (DRMAA cannot reap it), which the engine's worker
    runs. While qacct takes 20 s, the engine still answers at once; when
    it does answer, what it said is applied."""
    jid = fs.submit("sh", "-c", "sleep 2; echo earlier; exit 3")
    native = _native(fs, jid)
    fs.kill_engine()
    poll(lambda: _qacct(native), timeout=60, what=f"qacct record of {native}")
    began, ended = slow_command(fs, "qacct")
    fs.run("ping")  # a new engine adopts the job; its first poll asks qacct
    poll(lambda: os.path.exists(began), timeout=30, what="the slow qacct")
    answers_quickly(fs, jid)
    assert not os.path.exists(ended), "the checks outlasted the slow qacct"
    info = fs.wait_ended(jid, timeout=SLOW_S + 30)
    assert os.path.exists(ended)
    assert info["status"] == "failed" and info["exit_status"] == "finished_regularly", info
    assert info["exit_value"] == 3 and info["native_id"] == native, info
    assert fs.run("logs", jid).stdout == "earlier\n"
