"""A resource's job_dir (issue 18 §3, docs/backends.md "Job directories
on shared scratch"): the job scripts, logs and start marks go there, not
into the engine's private state directory, for a cluster whose nodes do
not see the login node's home.

The cluster tests hide the state directory from the nodes for real: the
engine and every CLI call run in a mount namespace of their own, where
the state home is a private tmpfs; the test's Slurm and Grid Engine run
the jobs in the host's namespace, where that directory is empty, as a
node sees a login node's home it does not mount. A control without
job_dir shows that the rig hides it."""
import os
import re
import shutil
import signal
import sqlite3
import subprocess
import time

import pytest

from conftest import (FERRY_BIN, Ferry, _check_build, engine_keys_config, kill_procs_mentioning,
                      new_base, poll, sge_section, slurm_section, transport_world)

WAIT = 180  # a cluster job may queue behind other tests' jobs on the shared node


class HiddenState:
    """A mount namespace whose XDG state home is a private tmpfs; f's CLI
    (and so its engine) runs in it through nsenter, and f reads the
    engine's files through /proc/PID/root. The holder's command line,
    environment and cwd do not name the test's directory, so the cleanup
    of f's processes leaves it until the engine's logs were read."""

    def __init__(self, f):
        self.holder = subprocess.Popen(
            ["unshare", "-m", "--propagation", "private", "sh", "-c",
             'mount -t tmpfs -o mode=0700,size=64m ferry-private "$1" && echo ready && '
             "exec sleep 100000", "sh", f.state_home],
            stdout=subprocess.PIPE, text=True, cwd="/")
        if self.holder.stdout.readline().strip() != "ready":
            self.holder.kill()
            pytest.fail("cannot make a private state home (unshare -m, mount -t tmpfs)")
        wrapper = os.path.join(f.base, "ferry-in-ns")
        with open(wrapper, "w") as fh:
            fh.write(f'#!/bin/sh\nexec nsenter -t {self.holder.pid} -m -- {FERRY_BIN} "$@"\n')
        os.chmod(wrapper, 0o755)
        self.host_state_home = f.state_home
        f.bin = wrapper
        f.state_home = f"/proc/{self.holder.pid}/root{f.state_home}"

    def close(self):
        self.holder.kill()
        self.holder.wait()


@pytest.fixture(params=["slurm", "drmaa"])
def hidden(request):
    """A cluster world (Slurm, or Grid Engine through DRMAA) whose state
    directory the cluster's jobs cannot see; f.job_dir on the host's /tmp."""
    _check_build()
    request.getfixturevalue("slurm" if request.param == "slurm" else "sge")
    base = new_base("fy-jdir-")
    os.chmod(base, 0o755)
    name = "slurm" if request.param == "slurm" else "sge"
    f = Ferry(base, resource=name)
    f.env["FERRY_RESOURCE"] = name
    f.job_dir = os.path.join(base, "scratch", "ferry-jobs")
    f.section = slurm_section if name == "slurm" else sge_section
    f.config(f.section(job_dir=f.job_dir))
    ns = HiddenState(f)
    yield f
    natives = []
    try:
        natives = [j["native_id"] for j in f.json("jobs", timeout=20)
                   if (j.get("native_id") or "")[:1].isdigit()]
    except AssertionError:
        pass
    f.cleanup()
    ns.close()
    kill_procs_mentioning(base)
    for n in natives:
        subprocess.run(["scancel" if name == "slurm" else "qdel", n], capture_output=True)
    if not os.environ.get("FERRY_TEST_KEEP"):
        shutil.rmtree(base, ignore_errors=True)


def _job_dirs(path):
    try:
        return sorted(e for e in os.listdir(path) if e[0].isdigit())
    except FileNotFoundError:
        return []


def test_the_nodes_run_jobs_from_job_dir(hidden):
    """Logs, exit values and a bulk, with the state directory out of the
    nodes' sight: every job's files are in job_dir, none in the state
    directory."""
    f = hidden
    jid = f.submit("sh", "-c", "echo out; echo err >&2; exit 3")
    bulk = f.path("bulk.txt")
    with open(bulk, "w") as fh:
        fh.write("".join(f"sh -c 'echo task {i}'\n" for i in range(5)))
    ids = f.run("submit", "--bulk", bulk).stdout.split()
    info = f.wait_ended(jid, timeout=WAIT)
    assert info["exit_status"] == "finished_regularly" and info["exit_value"] == 3, info
    assert info["stdout_path"] == os.path.join(f.job_dir, str(jid), "stdout"), info
    assert f.run("logs", jid).stdout == "out\n"
    assert f.run("logs", "--stderr", jid).stdout == "err\n"
    f.run("wait", "--timeout", str(WAIT), *ids, timeout=WAIT + 30)
    for i, b in enumerate(ids):
        assert f.info(b)["status"] == "done", f.info(b)
        assert f.run("logs", b).stdout == f"task {i}\n"
    with open(os.path.join(f.job_dir, str(jid), "stdout")) as fh:  # the host's view
        assert fh.read() == "out\n"
    assert os.path.exists(os.path.join(f.job_dir, str(jid), "started"))
    assert _job_dirs(os.path.join(f.state_dir, "jobs")) == []


def test_engine_killed_while_a_job_runs_from_job_dir(hidden):
    """Crash recovery from job_dir: the engine SIGKILLed while the job
    runs, the job ends while no engine runs, and the next engine finds
    its start mark, exit value and output there."""
    f = hidden
    jid = f.submit("sh", "-c", "sleep 4; echo late; exit 4")
    f.wait_state(jid, "running", timeout=WAIT)
    f.kill_engine()
    poll(lambda: os.path.exists(os.path.join(f.job_dir, str(jid), "stdout")) and
         open(os.path.join(f.job_dir, str(jid), "stdout")).read() == "late\n",
         timeout=WAIT, what="the job's end while no engine runs")
    f.run("ping")  # a new engine
    info = f.wait_ended(jid, timeout=WAIT)
    assert info["exit_status"] == "finished_regularly" and info["exit_value"] == 4, info
    assert f.run("logs", jid).stdout == "late\n"


def test_without_job_dir_the_nodes_cannot_see_the_state_dir(hidden):
    """The control: the same rig without job_dir, where the job's script
    names files in the hidden state directory, does not give the job's
    exit value and output, so the tests above show what job_dir does."""
    f = hidden
    f.config(f.section())
    jid = f.submit("sh", "-c", "echo out; exit 3")
    info = f.wait_ended(jid, timeout=WAIT)
    assert not (info["exit_status"] == "finished_regularly" and info["exit_value"] == 3), info
    if f.resource == "slurm":  # Grid Engine refuses the missing directory itself
        assert info["exit_status"] == "aborted", info
        assert "set the resource's job_dir to a directory they share" in info["message"], info
    assert "out" not in f.run("logs", jid, check=False).stdout


# ---- the key itself, on the local machine and over ssh


@pytest.fixture(params=["local", "ssh"])
def fx(request):
    return transport_world(request, request.param, "fy-jdir-")


def test_job_dir_holds_the_jobs_files(fx):
    """The key is an engine key: over ssh the client's setting reaches
    the engine. Logs and the engine's mark go to job_dir, made 0700."""
    jd = os.path.join(fx.base, "scratch", "jobs")
    engine_keys_config(fx, f"[local]\nslots = 2\njob_dir = {jd}\n", slots=2, job_dir=jd)
    jid = fx.submit("sh", "-c", "echo here; exit 2")
    info = fx.wait_ended(jid)
    assert info["exit_value"] == 2 and info["stdout_path"] == f"{jd}/{jid}/stdout", info
    assert fx.run("logs", jid).stdout == "here\n"
    assert os.stat(jd).st_mode & 0o777 == 0o700
    with open(os.path.join(jd, ".ferry-engine")) as fh:
        assert fh.read().split()[1] == fx.resource
    assert _job_dirs(os.path.join(fx.state_dir, "jobs")) == []
    assert not os.path.exists(os.path.join(fx.state_dir, "jobs", ".ferry-engine"))
    fx.run("dispose", jid)
    poll(lambda: not os.path.exists(f"{jd}/{jid}"), what="the disposed job's directory gone")


def test_two_engines_cannot_share_a_job_dir(ferry):
    jd = ferry.path("shared-jobs")
    ferry.config(f"[local]\nslots = 2\njob_dir = {jd}\n[other]\nslots = 1\njob_dir = {jd}\n")
    ferry.wait_ended(ferry.submit("true"))
    cp = ferry.run("-r", "other", "jobs", check=False)
    assert cp.returncode != 0
    assert f"the job directory '{jd}' belongs to another engine" in cp.stderr, cp.stderr
    assert "give each resource a job_dir of its own" in cp.stderr
    ferry.run("-r", "other", "daemon", "stop", check=False)


def test_a_moved_job_dir_needs_its_jobs_moved(ferry):
    """A job_dir changed while the old one holds job directories is
    refused, naming both (their logs would be looked for in the new
    one); once they are moved, the old jobs' logs are found there."""
    old, new = ferry.path("old-jobs"), ferry.path("new-jobs")
    ferry.config(f"[local]\nslots = 2\njob_dir = {old}\n")
    jid = ferry.submit("echo", "kept")
    ferry.wait_ended(jid)
    ferry.run("daemon", "stop")
    ferry.config(f"[local]\nslots = 2\njob_dir = {new}\n")
    cp = ferry.run("jobs", check=False)
    assert cp.returncode != 0
    assert (f"this engine's job directories are in '{old}', but its job_dir is now "
            f"'{new}'") in cp.stderr, cp.stderr
    # the command the message gives moves them
    cmd = re.search(r"\((find .*) -- \{\} \+\)", cp.stderr)
    assert cmd and cmd.group(1).startswith(f"find '{old}' "), cp.stderr
    subprocess.run(cmd.group(1) + " -- {} +", shell=True, check=True)
    assert os.listdir(old) == [".ferry-engine"]
    assert ferry.run("logs", jid).stdout == "kept\n"
    assert ferry.info(jid)["stdout_path"] == f"{new}/{jid}/stdout"


def test_a_directory_holding_other_files_is_refused_and_kept(ferry):
    """An unmarked job_dir that holds anything but this engine's job
    directories is refused, and nothing in it is touched: crash recovery
    would take 7/ for a lost job, and disposal remove it."""
    mine = ferry.path("mywork")
    os.makedirs(os.path.join(mine, "7"))
    os.makedirs(os.path.join(mine, "2025.old"))
    with open(os.path.join(mine, "7", "results.csv"), "w") as fh:
        fh.write("precious\n")
    os.chmod(mine, 0o700)
    ferry.config(f"[local]\nslots = 2\njob_dir = {mine}\n")
    cp = ferry.run("jobs", check=False)
    assert cp.returncode != 0
    assert (f"the job directory '{mine}' is not empty and has no ferry mark") in cp.stderr
    assert "give job_dir a new or empty directory" in cp.stderr
    assert sorted(os.listdir(mine)) == ["2025.old", "7"]
    with open(os.path.join(mine, "7", "results.csv")) as fh:
        assert fh.read() == "precious\n"


def test_a_database_older_than_job_dir_had_its_jobs_in_the_state_dir(ferry):
    """A database with no record of its job directory (of before the key)
    had them in the state directory's jobs/: a job_dir set then is refused
    while they are there."""
    jid = ferry.submit("echo", "old")
    ferry.wait_ended(jid)
    ferry.run("daemon", "stop")
    db = sqlite3.connect(os.path.join(ferry.state_dir, "ferry.db"))
    with db:
        db.execute("DELETE FROM meta WHERE key = 'jobs_dir'")
    db.close()
    new = ferry.path("new-jobs")
    ferry.config(f"[local]\nslots = 2\njob_dir = {new}\n")
    cp = ferry.run("jobs", check=False)
    assert cp.returncode != 0
    assert (f"this engine's job directories are in '{ferry.state_dir}/jobs', but its job_dir "
            f"is now '{new}'") in cp.stderr, cp.stderr


def test_the_state_home_reached_by_another_path_is_the_same(ferry):
    """The default job directory reached through a symbolic link (a home
    behind /home -> /gpfs/home) is the one recorded: no move is asked."""
    jid = ferry.submit("echo", "here")
    ferry.wait_ended(jid)
    ferry.run("daemon", "stop")
    alias = os.path.join(ferry.base, "alias")
    os.symlink(ferry.base, alias)
    state = os.path.join(alias, "state")
    assert ferry.run("logs", jid, env={"XDG_STATE_HOME": state}).stdout == "here\n"
    ferry.run("daemon", "stop", env={"XDG_STATE_HOME": state})


def test_a_jobs_env_may_not_set_the_scripts_id(ferry):
    cp = ferry.run("submit", "--env", "FERRY_NATIVE_ID=1", "--", "true", check=False)
    assert cp.returncode != 0
    assert "sets 'FERRY_NATIVE_ID', which ferry's batch script keeps" in cp.stderr, cp.stderr


def test_a_purged_or_unmounted_job_dir_is_not_marked_again(ferry):
    """The mark and the job directories gone (a scratch purge, or the file
    system not mounted: an empty mount point) while a job that started is
    not ended: the engine does not start on the empty directory, saying
    why; once the jobs ended it may."""
    jd = ferry.path("scratch-jobs")
    ferry.config(f"[local]\nslots = 2\njob_dir = {jd}\n")
    jid = ferry.submit("sleep", "300")
    ferry.wait_state(jid, "running")
    ferry.run("daemon", "stop")
    shutil.rmtree(jd)
    os.makedirs(jd, mode=0o700)  # the empty mount point
    cp = ferry.run("jobs", check=False)
    assert cp.returncode != 0
    assert (f"the job directory '{jd}' lost its mark '{jd}/.ferry-engine' and holds no job "
            "directory") in cp.stderr, cp.stderr
    assert "is its file system mounted here?" in cp.stderr
    assert not os.path.exists(os.path.join(jd, ".ferry-engine"))


def test_job_dir_must_be_absolute_and_the_users_own(ferry):
    ferry.config("[local]\nslots = 2\njob_dir = scratch/jobs\n")
    cp = ferry.run("jobs", check=False)
    assert cp.returncode != 0
    assert "key 'job_dir' of resource 'local': 'scratch/jobs' is not an absolute path" in cp.stderr
    open_dir = ferry.path("open")
    os.makedirs(open_dir)
    os.chmod(open_dir, 0o777)  # anyone could swap a job's script there
    ferry.config(f"[local]\nslots = 2\njob_dir = {open_dir}/jobs\n")
    cp = ferry.run("jobs", check=False)
    assert cp.returncode != 0 and "job directory" in cp.stderr, cp.stderr
    assert not os.path.exists(f"{open_dir}/jobs")  # checked before it is made


def test_engine_killed_with_job_dir_keeps_its_jobs(ferry):
    """The local runner's jobs outlive a killed engine, found again in job_dir."""
    jd = ferry.path("jobs-elsewhere")
    ferry.config(f"[local]\nslots = 2\njob_dir = {jd}\n")
    jid = ferry.submit("sh", "-c", "sleep 1; echo after; exit 5")
    ferry.wait_state(jid, "running")
    ferry.kill_engine(signal.SIGKILL)
    time.sleep(1.5)
    info = ferry.wait_ended(jid)
    assert info["exit_value"] == 5 and ferry.run("logs", jid).stdout == "after\n", info
    assert os.path.exists(os.path.join(jd, str(jid), "stdout"))
