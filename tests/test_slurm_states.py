"""States Slurm leaves to others or cannot tell (issue 18): a job held or
suspended by the administrator outside ferry, jobs while squeue or every
source of records fails (undetermined, then their real state again), and
the paths that end a Slurm job finished_unclear_condition. Against the
real single-node Slurm of tests/cluster/start-slurm.sh; the tests run as
root, which is Slurm's administrator here."""
import os
import shutil
import subprocess

import pytest

from conftest import as_admin, drms_world, handed_native_id, new_base, poll, slurm_section, steady

WAIT = 180  # a job may queue behind other tests' jobs on the shared node

pytestmark = pytest.mark.usefixtures("slurm")


@pytest.fixture
def fs(request):
    def cancel(natives):
        for n in natives:
            subprocess.run(["scancel", n], capture_output=True)
    yield from drms_world(new_base("fy-slst-"), "slurm", slurm_section(), cancel)


def _fault(f, command, filt=None):
    """Fault injector: fault/COMMAND, first on the engine's PATH, fails
    (exit 1, a Slurm-like message) while the file it returns exists, and
    runs the real command otherwise; filt, a sed script, edits what the
    real command prints (a job purged from slurmctld)."""
    bindir = os.path.join(f.base, "fault")
    os.makedirs(bindir, exist_ok=True)
    flag = f.path(f"{command}-fails")
    real = shutil.which(command)
    run = f'{real} "$@" | sed -e \'{filt}\'\nexit 0\n' if filt else f'exec {real} "$@"\n'
    p = os.path.join(bindir, command)
    with open(p + ".new", "w") as fh:  # renamed: the engine may be running the old one
        fh.write(f"#!/bin/sh\n# fault injector of {__name__}: {command} fails on demand\n"
                 f'if [ -e {flag} ]; then\n'
                 f'  echo "{command}: error: Unable to contact slurm controller '
                 f'(fault injected by the test)" >&2\n  exit 1\nfi\n{run}')
    os.chmod(p + ".new", 0o755)
    os.rename(p + ".new", p)
    if bindir not in f.env["PATH"].split(os.pathsep):
        f.env["PATH"] = bindir + os.pathsep + f.env["PATH"]
    return flag


def test_admin_hold_and_suspend_outside_ferry(fs):
    """scontrol suspend / hold / release / resume run by the administrator:
    a running job is system_suspended, then running; a queued job
    system_on_hold, then queued_active; a job ferry holds and the
    administrator holds too is user_system_on_hold, and queued_active (or
    running) once the administrator's release lifted both holds, as Slurm
    keeps one hold per job."""
    run = fs.submit("sleep", "300")
    later = fs.submit("sleep", "300", opts=("--native", "--begin=now+600"))
    held = fs.submit("sleep", "300", opts=("--hold",))
    fs.wait_state(run, "running", timeout=WAIT)
    n_run, n_later, n_held = (handed_native_id(fs, j) for j in (run, later, held))
    assert fs.state(later) == "queued_active" and fs.state(held) == "user_on_hold"

    as_admin("scontrol", "suspend", n_run)
    as_admin("scontrol", "hold", n_later)
    as_admin("scontrol", "hold", n_held)
    fs.wait_state(run, "system_suspended")
    fs.wait_state(later, "system_on_hold")
    fs.wait_state(held, "user_system_on_hold")
    # a suspension ferry did not ask for is not ferry's to undo
    fs.run("restart", str(run), check=False)
    steady(fs, run, "system_suspended", 1.5)

    as_admin("scontrol", "resume", n_run)
    as_admin("scontrol", "release", n_later)
    as_admin("scontrol", "release", n_held)
    fs.wait_state(run, "running")
    fs.wait_state(later, "queued_active")
    fs.wait_state(held, ("queued_active", "running"))
    fs.run("kill", str(run), str(later), str(held))


def test_failing_squeue_makes_jobs_undetermined_then_real_again(fs):
    """While squeue fails, every job ferry cannot see is undetermined, none
    ends however long it lasts (well past the 5 polls of the vanished-job
    grace); once squeue answers, each is in its real state again: running,
    held by ferry and the administrator (user_system_on_hold: ferry's own
    hold is remembered through the outage), and the one that ended meanwhile
    ended as Slurm says (exit 3)."""
    flag = _fault(fs, "squeue")
    go = fs.path("go")
    run = fs.submit("sleep", "300")
    held = fs.submit("sleep", "300", opts=("--hold",))
    ends = fs.submit("sh", "-c", f"while [ ! -e {go} ]; do sleep 0.1; done; exit 3")
    fs.wait_state(run, "running", timeout=WAIT)
    fs.wait_state(ends, "running", timeout=WAIT)
    as_admin("scontrol", "hold", handed_native_id(fs, held))
    fs.wait_state(held, "user_system_on_hold")

    open(flag, "w").close()
    for j in (run, held, ends):
        fs.wait_state(j, "undetermined")
    open(go, "w").close()  # ends now, while nobody can see it
    steady(fs, ends, "undetermined", 4)
    assert fs.state(run) == fs.state(held) == "undetermined"

    os.unlink(flag)
    fs.wait_state(run, "running")
    fs.wait_state(held, "user_system_on_hold")
    info = fs.wait_ended(ends)
    assert info["exit_status"] == "finished_regularly" and info["exit_value"] == 3, info
    # a control on a job ferry holds goes through as before the outage
    as_admin("scontrol", "release", handed_native_id(fs, held))
    fs.wait_state(held, ("queued_active", "running"))
    fs.run("kill", str(run), str(held))


def test_purged_job_with_records_unreadable_is_undetermined_not_ended(fs):
    """A job squeue no longer lists (purged) while sacct and scontrol fail
    and no jobcomp file is read: undetermined, not counted as vanished, and
    it ends as its record says once scontrol answers. Then the vanished
    path: with no source naming it, after 5 polls it ends
    finished_unclear_condition."""
    go = fs.path("go")
    a = fs.submit("sh", "-c", f"while [ ! -e {go} ]; do sleep 0.1; done; exit 4")
    b = fs.submit("sleep", "300")
    fs.wait_state(a, "running", timeout=WAIT)
    fs.wait_state(b, "running", timeout=WAIT)
    na, nb = handed_native_id(fs, a), handed_native_id(fs, b)
    # squeue does not list a (as after MinJobAge); scontrol and sacct fail;
    # the next engine reads no jobcomp path (scontrol show config fails)
    _fault(fs, "squeue", rf"/^{na}|/d")
    s_flag = _fault(fs, "scontrol")
    c_flag = _fault(fs, "sacct")
    open(s_flag, "w").close()
    open(c_flag, "w").close()
    fs.run("daemon", "stop")
    fs.run("ping")
    fs.wait_state(a, "undetermined")
    open(go, "w").close()
    poll(lambda: not subprocess.run(["squeue", "-h", "-j", na, "-t", "PD,R,CG"],
                                    capture_output=True, text=True).stdout.strip(),
         timeout=30, what=f"Slurm job {na} ended")
    steady(fs, a, "undetermined", 4)
    assert fs.state(b) == "running"
    os.unlink(s_flag)  # scontrol answers, with a's record
    info = fs.wait_ended(a)
    assert info["exit_status"] == "finished_regularly" and info["exit_value"] == 4, info

    # b gone from squeue and scontrol, sacct failing: no source names it
    hide_b = rf"/^{nb}|/d;/JobId={nb} /d"
    _fault(fs, "squeue", hide_b)
    _fault(fs, "scontrol", hide_b)
    fs.wait_state(b, "undetermined")
    as_admin("scancel", nb)
    info = fs.wait_ended(b, timeout=30)
    assert info["exit_status"] == "finished_unclear_condition", info
    assert f"Slurm no longer knows job {nb}" in info["message"], info


def _restate(f, command):
    """Fault injector: fault/COMMAND runs the real command and, for each
    line 'ID STATE' of the file it returns, prints STATE where Slurm says
    COMPLETED of job ID (squeue, sacct and scontrol lines alike). The test
    cluster's only node cannot fail, nor a job be preempted, without
    failing the jobs of the tests that share it."""
    bindir = os.path.join(f.base, "fault")
    os.makedirs(bindir, exist_ok=True)
    table = f.path("restate")
    p = os.path.join(bindir, command)
    with open(p, "w") as fh:
        fh.write(f"#!/bin/bash\n# fault injector of {__name__}: {command} says other ends\n"
                 "set -o pipefail\nargs=()\n"
                 f'[ -e {table} ] && while read -r n st; do\n'
                 '  args+=(-e "/^$n|/s/|COMPLETED|/|$st|/" '
                 '-e "/JobId=$n /s/JobState=COMPLETED/JobState=$st/")\n'
                 f"done < {table}\n"
                 f'{shutil.which(command)} "$@" | sed -e "" "${{args[@]}}"\n')
    os.chmod(p, 0o755)
    if bindir not in f.env["PATH"].split(os.pathsep):
        f.env["PATH"] = bindir + os.pathsep + f.env["PATH"]
    return table


def test_node_fail_and_preempted_end_unclear(fs):
    """A job Slurm says ended NODE_FAIL or PREEMPTED ends
    finished_unclear_condition (its command may have run in part), with
    Slurm's word in the message."""
    for c in ("squeue", "sacct", "scontrol"):
        table = _restate(fs, c)
    go = fs.path("go")
    jobs = {st: fs.submit("sh", "-c", f"while [ ! -e {go} ]; do sleep 0.1; done")
            for st in ("NODE_FAIL", "PREEMPTED")}
    with open(table, "w") as fh:
        fh.write("".join(f"{handed_native_id(fs, j)} {st}\n" for st, j in jobs.items()))
    for j in jobs.values():
        fs.wait_state(j, "running", timeout=WAIT)
    open(go, "w").close()
    for st, j in jobs.items():
        info = fs.wait_ended(j)
        assert info["exit_status"] == "finished_unclear_condition", info
        assert info["message"] == f"Slurm says {st}", info
