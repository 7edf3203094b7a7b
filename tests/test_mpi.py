"""Parallel (MPI) jobs as a portable request (docs/backends.md, "Parallel
jobs"): a real MPI program in C, built here with Debian's mpicc, run as 2
ranks by ferry with the launcher that fits the resource (mpirun on local,
srun with PMIx on Slurm), through the CLI, the C API (the CLI is a libferry
client; tests/ferry_driver.c too) and the Python API. Every rank reports
its rank, the size and its host; rank 0 prints the sum of an MPI_Reduce."""
import os
import re
import shutil
import subprocess

import pytest

from conftest import sge_section, transport_world

WAIT = 180  # a Slurm job may queue behind other tests' hundreds

HELLO = r"""
#include <mpi.h>
#include <stdio.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	int rank, size, one, sum = 0;
	char host[256];

	MPI_Init(&argc, &argv);
	MPI_Comm_rank(MPI_COMM_WORLD, &rank);
	MPI_Comm_size(MPI_COMM_WORLD, &size);
	gethostname(host, sizeof(host));
	printf("rank %d size %d host %s\n", rank, size, host);
	fflush(stdout);
	one = rank + 1; /* 1 + 2 + ... + size: each rank must have taken part */
	MPI_Reduce(&one, &sum, 1, MPI_INT, MPI_SUM, 0, MPI_COMM_WORLD);
	if (rank == 0)
		printf("sum %d\n", sum);
	MPI_Finalize();
	return 0;
}
"""


@pytest.fixture(scope="module")
def hello(tmp_path_factory):
    if not shutil.which("mpicc"):
        pytest.fail("mpicc is missing: scripts/install-deps --test installs libopenmpi-dev")
    d = tmp_path_factory.mktemp("mpi")
    os.chmod(d, 0o755)
    src = d / "hello.c"
    src.write_text(HELLO)
    subprocess.run(["mpicc", "-O2", "-o", str(d / "hello"), str(src)], check=True)
    return str(d / "hello")


def check_ranks(text, size=2):
    """Every rank once, the same size everywhere, and the reduced value."""
    ranks = sorted(int(m.group(1)) for m in re.finditer(r"^rank (\d+) size (\d+) host \S+$",
                                                         text, re.M))
    sizes = set(re.findall(r"^rank \d+ size (\d+) ", text, re.M))
    assert ranks == list(range(size)), text
    assert sizes == {str(size)}, text
    assert re.search(rf"^sum {size * (size + 1) // 2}$", text, re.M), text


@pytest.fixture(params=["local", "slurm"])
def fw(request):
    return transport_world(request, request.param, prefix="fy-mpi-")


def test_mpi_job_runs_as_ranks_through_the_cli(fw, hello):
    jid = fw.submit(hello, opts=["--tasks", "2", "--launcher", "mpi"])
    info = fw.wait_ended(jid, timeout=WAIT)
    assert info["status"] == "done", (info, fw.run("logs", "--stderr", jid, check=False).stdout)
    assert (info["tasks"], info["cpus_per_task"], info["cpus"], info["launcher"]) == \
        (2, 1, 2, "mpi")
    assert info["command"] == [hello], "the stored command is the user's, not mpirun's"
    check_ranks(fw.run("logs", jid).stdout)


def test_parallel_job_without_launcher_starts_its_command_once(fw):
    """launcher none: the command is started once, holding the slots."""
    jid = fw.submit("sh", "-c", "echo once", opts=["--tasks", "2"])
    info = fw.wait_ended(jid, timeout=WAIT)
    assert info["status"] == "done", info
    assert (info["tasks"], info["cpus"], info["launcher"]) == (2, 2, None)
    assert fw.run("logs", jid).stdout == "once\n"


def test_parallel_requests_that_cannot_be_honoured_are_refused(ferry):
    ferry.config("[local]\nslots = 2\n")
    cases = [
        (["--tasks", "3", "--launcher", "mpi"], "asks for 3 cpus but resource 'local' has 2 slots"),
        (["--tasks", "2", "--cpus", "3"], "'cpus' is 3 but 'tasks' x 'cpus_per_task' is 2"),
        (["--tasks", "2", "--nodes", "2"], "resource 'local' is one machine: the job asks for 2 nodes"),
        (["--tasks", "1", "--nodes", "2"], "'nodes' is 2, more than the job's 1 tasks"),
        (["--launcher", "srun"], "expected mpi or none"),
        (["--tasks", "0"], "--tasks"),
    ]
    for opts, want in cases:
        cp = ferry.run("submit", *opts, "--", "true", check=False)
        assert cp.returncode != 0 and want in cp.stderr, (opts, cp.stderr)
    # a product the engine holds as the job's slots
    jid = ferry.submit("true", opts=["--tasks", "1", "--cpus-per-task", "2"])
    info = ferry.wait_ended(jid)
    assert (info["status"], info["cpus"], info["cpus_per_task"]) == ("done", 2, 2)


def test_slurm_refuses_the_same_request_twice(request):
    f = transport_world(request, "slurm", prefix="fy-mpi-")
    cp = f.run("submit", "--tasks", "2", "--native", "--ntasks=4", "--", "true", check=False)
    assert cp.returncode != 0, cp.stdout
    assert "native specification '--ntasks=4' sets '--ntasks', which the job's 'tasks' sets" \
        in cp.stderr


PE = """pe_name mpi
slots 8
user_lists NONE
xuser_lists NONE
start_proc_args NONE
stop_proc_args NONE
allocation_rule $fill_up
control_slaves TRUE
job_is_first_task FALSE
urgency_slots min
accounting_summary FALSE
qsort_args NONE
"""


@pytest.fixture(scope="module")
def sge_mpi(sge, tmp_path_factory):
    """The parallel environment 'mpi' of ../shared/notes/mpi.md in the test
    Grid Engine's all.q (control_slaves TRUE: Open MPI's tight integration).
    Workers may add it at once: the one that loses finds it there."""
    pe = tmp_path_factory.mktemp("pe") / "mpi.txt"
    pe.write_text(PE)
    if subprocess.run(["qconf", "-Ap", str(pe)], capture_output=True).returncode:
        subprocess.run(["qconf", "-Mp", str(pe)], capture_output=True)
    subprocess.run(["qconf", "-aattr", "queue", "pe_list", "mpi", "all.q"], capture_output=True)
    assert "control_slaves     TRUE" in subprocess.run(["qconf", "-sp", "mpi"], capture_output=True,
                                                        text=True).stdout
    q = subprocess.run(["qconf", "-sq", "all.q"], capture_output=True, text=True).stdout
    assert re.search(r"^pe_list .*\bmpi\b", q, re.M), q


def test_mpi_job_runs_as_ranks_on_grid_engine(request, hello, sge_mpi):
    f = transport_world(request, "drmaa", prefix="fy-mpi-")
    f.config("[local]\nslots = 2\n" + sge_section(mpi_pe="mpi"))
    jid = f.submit(hello, opts=["--tasks", "2", "--launcher", "mpi"])
    info = f.wait_ended(jid, timeout=WAIT)
    assert info["status"] == "done", (info, f.run("logs", "--stderr", jid, check=False).stdout)
    check_ranks(f.run("logs", jid).stdout)
    for nodes in ("2", "1"):  # mpi_pe's allocation_rule places the slots, not the job
        cp = f.run("submit", "--tasks", "2", "--nodes", nodes, "--launcher", "mpi", "--", "true",
                   check=False)
        assert cp.returncode != 0 and "cannot place a job on a number of nodes" in cp.stderr, \
            cp.stderr


def test_drmaa_without_mpi_pe_refuses_mpi_with_a_clear_error(request):
    f = transport_world(request, "drmaa", prefix="fy-mpi-")
    cp = f.run("submit", "--tasks", "2", "--launcher", "mpi", "--", "true", check=False)
    assert cp.returncode != 0, cp.stdout
    assert "resource 'sge' (DRMAA) cannot start MPI jobs: it names no parallel environment " \
        "for them (set mpi_pe in its section of ferry.conf)" in cp.stderr, cp.stderr


@pytest.mark.parametrize("transport", ["local", "slurm"])
def test_mpi_job_through_the_python_api(request, transport, hello):
    from test_python import world  # noqa: E402 (the snippet runner of test_python.py)

    py = world(request, transport)
    r = py.run(f'''
    j = connect()
    i = j.submit([{hello!r}], tasks=2, launcher="mpi")
    assert j.wait([i], timeout=WAIT) is True
    info = j.jobInformation(i)
    lines = []
    while True:
        line = j.stdoutReadLine(i)
        if not line:
            break
        lines.append(line)
    out([j.status(i), info["tasks"], info["launcher"], "".join(lines)])
    ''')
    assert r[:3] == ["done", 2, "mpi"], r
    check_ranks(r[3])



def test_mpi_pe_is_for_grid_engine_and_a_name(ferry):
    for conf, want in [
        ("[local]\nmpi_pe = mpi\n",
         "key 'mpi_pe' of resource 'local' is for the drmaa scheduler (Grid Engine), not local"),
        ("[local]\nscheduler = drmaa\nmpi_pe = mpi -l x\n",
         "key 'mpi_pe' of resource 'local': 'mpi -l x' is not a parallel environment name"),
    ]:
        ferry.config(conf)
        cp = ferry.run("submit", "--", "true", check=False)
        assert cp.returncode != 0 and want in cp.stderr, (conf, cp.stderr)


def test_mpi_job_through_the_drmaa_provider(ferry, hello):
    """A DRMAA client (Debian's python3-drmaa) asks libferry-drmaa for the
    same job with the words of `ferry submit` in its native specification."""
    from test_drmaa_provider import DrmaaWorld, need_drmaa  # noqa: E402

    need_drmaa()
    ferry.config("[local]\nslots = 2\n")
    r = DrmaaWorld(ferry).run(f'''
    s = drmaa.Session()
    s.initialize()
    jt = s.createJobTemplate()
    jt.remoteCommand = {hello!r}
    jt.nativeSpecification = "--tasks 2 --launcher mpi"
    jt.outputPath = ":" + os.path.join(WORK, "mpi.out")
    jid = s.runJob(jt)
    info = s.wait(jid, 60)
    res = [info.hasExited, info.exitStatus, open(os.path.join(WORK, "mpi.out")).read()]
    res.append(raises(InvalidAttributeValueException, setattr, jt, "nativeSpecification",
                      "--launcher srun"))
    s.exit()
    out(res)
    ''')
    assert r[:2] == [True, 0], r
    check_ranks(r[2])
    assert "invalid value 'srun' of --launcher" in r[3], r


def test_local_mpi_variables_give_way_to_the_submitters(ferry, hello):
    """What ferry sets for Open MPI in a local MPI job gives way to the
    submitter's own, from its environment as from --env, as on Grid Engine."""
    ferry.config("[local]\nslots = 2\n")
    show = ferry.path("show.sh")
    with open(show, "w") as fh:
        fh.write('#!/bin/sh\necho "$OMPI_MCA_rmaps_base_oversubscribe '
                 f'$OMPI_MCA_mpi_yield_when_idle"\nexec {hello}\n')
    os.chmod(show, 0o755)
    for opts, env, want in [
            ([], {"OMPI_MCA_rmaps_base_oversubscribe": "true"}, "true \n"),
            (["--env", "OMPI_MCA_rmaps_base_oversubscribe=yes"], {}, "yes \n"),
            ([], {}, "1 \n")]:
        cp = ferry.run("submit", "--tasks", "2", "--launcher", "mpi", *opts, "--", show,
                       env=dict(ferry.env, **env))
        jid = int(cp.stdout)
        info = ferry.wait_ended(jid, timeout=WAIT)
        out = ferry.run("logs", jid).stdout
        assert info["status"] == "done", (info, out)
        assert out.count(want) == 2, (want, out)
        check_ranks(out)
