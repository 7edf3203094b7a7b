"""Per-resource bounds on a resource's jobs (docs/architecture.md, "Bounds
on a resource's jobs"): `max_running` on the local scheduler (jobs started
at once, whatever their cpus), `max_queued` on a cluster's (jobs handed to
the DRMS and not ended). Real jobs: the local ones' start and end times,
and what squeue and qstat themselves list, say how many were out at once;
each test's slots or cluster could take all its jobs at once, so only the
bound keeps them apart."""
import os
import re
import subprocess
import time
import uuid
import xml.etree.ElementTree as ET

import pytest

from conftest import (DEFAULT_CONFIG, engine_keys_config, poll, remote_section, sge_section,
                      slurm_section, transport_world)

NJOBS = 6
BOUND = 2


def max_overlap(jobs):
    """The most jobs running at one moment, from their start and end times
    (an end and a start at the same time: the end first)."""
    events = []
    for j in jobs:
        assert j["started_at"] and j["ended_at"], j
        events += [(j["started_at"], 1), (j["ended_at"], -1)]
    cur = most = 0
    for _, d in sorted(events):
        cur += d
        most = max(most, cur)
    return most


def bulk(f, command, name):
    """NJOBS alike jobs in one submission (one batch to the engine: without
    a bound all of them go at once)."""
    path = f.path("bulk.txt")
    with open(path, "w") as fh:
        fh.write(f"{command}\n" * NJOBS)
    ids = f.run("submit", "--name", name, "--bulk", path).stdout.split()
    assert len(ids) == NJOBS
    return ids


def all_done(f, ids, timeout=180):
    f.run("wait", "--timeout", str(timeout), *ids, timeout=timeout + 20)
    infos = [f.info(j) for j in ids]
    assert all(i["status"] == "done" for i in infos), infos
    return infos


# ------------------------------------------------------------- local


@pytest.fixture(params=["local", "ssh"])
def world(request):
    return transport_world(request, request.param, "fy-limits-")


def bounded_config(f):
    """slots for every job at once, max_running = BOUND. Over ssh the
    engine's host reads no configuration of its own (its ferry runs with an
    empty XDG_CONFIG_HOME): the bound reaches the engine only as a setting
    the client sends."""
    engine_keys_config(f, f"[local]\nslots = 8\nmax_running = {BOUND}\n", slots=8,
                       max_running=BOUND)


def test_max_running_bounds_the_jobs_started_at_once(world):
    bounded_config(world)
    ids = bulk(world, "sleep 1", "bounded")
    infos = all_done(world, ids)
    assert max_overlap(infos) == BOUND, infos
    if world.sshd:
        # the engine runs with the bound the client sent: a client saying
        # otherwise is told so, not served by an engine it did not ask for
        with open(world.config_path) as fh:
            text = fh.read()
        with open(world.config_path, "w") as fh:
            fh.write(text.replace(f"max_running = {BOUND}", "max_running = 3"))
        cp = world.run("jobs", check=False)
        assert cp.returncode != 0
        assert f"runs with max_running '{BOUND}', but the client's configuration says '3'" \
            in cp.stderr, cp


def test_max_running_counts_the_jobs_an_engine_takes_back(ferry):
    """The engine killed with BOUND jobs running: the next one takes them
    back (the runners keep them) and counts them, so starts no more."""
    ferry.config(f"[local]\nslots = 8\nmax_running = {BOUND}\n")
    ids = bulk(ferry, "sleep 2", "restart")
    # one listing a look, not a call per job: those took longer than the
    # jobs run on a loaded machine, and never saw BOUND at once
    poll(lambda: sum(j["status"] == "running" for j in ferry.json("jobs")
                     if str(j["id"]) in ids) == BOUND, timeout=20, what="the first jobs running")
    ferry.kill_engine()
    infos = all_done(ferry, ids)  # the CLI starts the engine again
    assert max_overlap(infos) == BOUND, infos


def test_no_bound_by_default(ferry):
    """Without max_running the slots alone decide (the bound is what keeps
    the tests above at BOUND)."""
    ferry.config("[local]\nslots = 8\n")
    infos = all_done(ferry, bulk(ferry, "sleep 1", "free"))
    assert max_overlap(infos) > BOUND, infos


# ------------------------------------------------------------- clusters


def squeue_count(name):
    """How many jobs (array tasks one by one) named name Slurm holds, pending or not ended."""
    cp = subprocess.run(["squeue", "-h", "-r", "-o", "%i|%T|%j"], capture_output=True,
                        text=True, check=True)
    return sum(1 for line in cp.stdout.splitlines() if line.split("|", 2)[2] == name)


def task_count(tasks):
    """The tasks of a qstat entry: none (a plain job), "N", or ranges "1-5:1,7"."""
    if not tasks:
        return 1
    n = 0
    for part in tasks.split(","):
        m = re.fullmatch(r"(\d+)(?:-(\d+)(?::(\d+))?)?", part)
        assert m, tasks
        lo, hi, step = int(m[1]), int(m[2] or m[1]), int(m[3] or 1)
        n += (hi - lo) // step + 1
    return n


def qstat_count(name):
    """How many jobs (array tasks one by one) named name Grid Engine holds."""
    cp = subprocess.run(["qstat", "-xml", "-u", "*"], capture_output=True, text=True, check=True)
    root = ET.fromstring(cp.stdout)
    return sum(task_count(jl.findtext("tasks")) for jl in root.iter("job_list")
               if jl.findtext("JB_name") == name)


@pytest.fixture(params=["slurm", pytest.param("drmaa", marks=pytest.mark.xdist_group("sge"))])
def cluster(request):
    f = transport_world(request, request.param, "fy-limits-")
    section = slurm_section if request.param == "slurm" else sge_section
    f.config("[local]\nslots = 2\n" + section(f.resource, max_queued=BOUND))
    return f, squeue_count if request.param == "slurm" else qstat_count


def most_in_cluster(f, count, name, ids):
    """The most of the jobs the cluster listed at once, polled until they ended."""
    most, deadline = 0, time.monotonic() + 240
    while time.monotonic() < deadline:
        most = max(most, count(name))
        if all(f.state(j) in ("done", "failed") for j in ids):
            break
        time.sleep(0.2)
    return most


def test_max_queued_bounds_the_jobs_in_the_cluster(cluster):
    f, count = cluster
    name = "lim" + uuid.uuid4().hex[:12]
    ids = bulk(f, "sleep 3", name)
    most = most_in_cluster(f, count, name, ids)
    infos = all_done(f, ids, timeout=60)
    assert most == BOUND, f"{most} of the jobs in the cluster's queue at once"
    assert max_overlap(infos) <= BOUND, infos


def test_max_queued_counts_the_jobs_an_engine_finds_handed(cluster):
    """The engine killed with BOUND jobs in the cluster: the next one finds
    them there and counts them, so hands no more until they end."""
    f, count = cluster
    name = "lim" + uuid.uuid4().hex[:12]
    ids = bulk(f, "sleep 4", name)
    poll(lambda: count(name) == BOUND, timeout=60, what="the first jobs in the cluster")
    f.kill_engine()
    most = most_in_cluster(f, count, name, ids)  # the CLI starts the engine again
    all_done(f, ids, timeout=60)
    assert most == BOUND, f"{most} of the jobs in the cluster's queue at once"


# ------------------------------------------------------------- configuration


@pytest.mark.parametrize("section, message", [
    ("[local]\nmax_queued = 2\n",
     "key 'max_queued' of resource 'local' is for a cluster scheduler; the local "
     "scheduler's is 'max_running'"),
    ("[local]\nscheduler = slurm\nmax_running = 2\n",
     "key 'max_running' of resource 'local' is for the local scheduler; a cluster "
     "scheduler's is 'max_queued'"),
    ("[local]\nscheduler = drmaa\nmax_running = 2\n",
     "key 'max_running' of resource 'local' is for the local scheduler; a cluster "
     "scheduler's is 'max_queued'"),
    ("[local]\nmax_running = -1\n",
     "ferry.conf:2: invalid max_running '-1' (a number from 0 to 1000000; 0: no bound)"),
    ("[local]\nmax_running = 1000001\n",
     "ferry.conf:2: invalid max_running '1000001' (a number from 0 to 1000000; 0: no bound)"),
    ("[local]\nscheduler = slurm\nmax_queued = two\n",
     "ferry.conf:3: invalid max_queued 'two' (a number from 0 to 1000000; 0: no bound)"),
    ("[local]\nmax_running = 1\nmax_running = 2\n",
     "ferry.conf:3: key 'max_running' given twice in section [local] (first on line 2)"),
])
def test_config_errors_are_clear(ferry, section, message):
    ferry.config(section)
    cp = ferry.run("jobs", check=False)
    assert cp.returncode != 0 and message in cp.stderr, cp
    assert not os.path.exists(ferry.sock_path)


def test_remote_section_with_the_wrong_key_is_refused(request):
    """The client's section says what the remote engine is: the wrong bound
    there is refused before any engine starts."""
    f = transport_world(request, "ssh", "fy-limits-")
    with open(f.config_path, "w") as fh:
        fh.write(DEFAULT_CONFIG + "\n" + remote_section("remote", f.base, f.sshd, max_queued=2))
    cp = f.run("jobs", check=False)
    assert cp.returncode != 0, cp
    assert ("key 'max_queued' of resource 'remote' is for a cluster scheduler; the local "
            "scheduler's is 'max_running'") in cp.stderr, cp
    assert not os.path.exists(f.sock_path)
