"""The job's environment: the submitter's, captured by `ferry submit` and
`ferry workflow submit` as sbatch's --export=ALL does, or not with
--env-clean; --env always wins; never the per-session variables; not for a
remote resource (the laptop's PATH means nothing on the cluster); a bulk
or a workflow stores its environment once (docs/architecture.md, "The
job's environment"). On the local backend, through ssh, on Slurm and on
Grid Engine (DRMAA)."""
import json
import os
import sqlite3

import pytest

from conftest import SCHEMA_8_TO_7, poll, runner_pid, transport_world

WAIT = 180  # a Slurm job may queue behind other tests' hundreds


@pytest.fixture(params=["local", "ssh", "slurm", "drmaa"])
def fw(request):
    f = transport_world(request, request.param, prefix="fy-env-")
    f.transport = request.param
    # the engine started first, from the plain test environment: what a job
    # gets beyond it came with the submit
    f.run("jobs")
    return f


def _conda(f):
    """A conda-style prefix: CONDA_PREFIX and its bin first on PATH, with a
    command found only there."""
    prefix = f.path("conda", "envs", "x")
    os.makedirs(os.path.join(prefix, "bin"))
    tool = os.path.join(prefix, "bin", "condatool")
    with open(tool, "w") as fh:
        fh.write("#!/bin/sh\necho \"condatool of $CONDA_PREFIX\"\n")
    os.chmod(tool, 0o755)
    return {"CONDA_PREFIX": prefix,
            "PATH": os.path.join(prefix, "bin") + os.pathsep + f.env["PATH"]}


SHOW = ('condatool 2>/dev/null || echo "no condatool"; '
        'echo "MYVAR=${MYVAR-unset} OTHER=${OTHER-unset} SSH_X=${SSH_X-unset} '
        'FERRY_X=${FERRY_X-unset} DISPLAY=${DISPLAY-unset}"')


def _run(f, *opts, env):
    cp = f.run("submit", *opts, "--", "sh", "-c", SHOW, env=env)
    jid = int(cp.stdout.strip())
    info = f.wait_ended(jid, timeout=WAIT)
    assert info["status"] == "done", info
    return f.run("logs", jid).stdout.splitlines()


def _shell(f, **extra):
    env = _conda(f)
    env.update({"MYVAR": "from the shell", "SSH_X": "session", "FERRY_X": "ferry's",
                "DISPLAY": ":9"})
    env.update(extra)
    return env


def test_submitters_environment_reaches_the_job(fw):
    env = _shell(fw)
    out = _run(fw, env=env)
    if fw.transport == "ssh":
        # the CLI's environment is the laptop's: none of it reaches a
        # remote resource's job, which runs with that resource's own
        assert out == ["no condatool", "MYVAR=unset OTHER=unset SSH_X=unset FERRY_X=unset "
                       "DISPLAY=unset"], out
        return
    assert out == [f"condatool of {env['CONDA_PREFIX']}",
                   "MYVAR=from the shell OTHER=unset SSH_X=unset FERRY_X=unset "
                   "DISPLAY=unset"], out


def test_env_option_wins_and_carries_what_capture_leaves_out(fw):
    out = _run(fw, "--env", "MYVAR=named", "--env", "SSH_X=asked for", env=_shell(fw))
    assert out[1] == ("MYVAR=named OTHER=unset SSH_X=asked for FERRY_X=unset "
                      "DISPLAY=unset"), out


def test_env_clean_gives_the_resources_default(fw):
    out = _run(fw, "--env-clean", "--env", "OTHER=1", env=_shell(fw))
    assert out == ["no condatool", "MYVAR=unset OTHER=1 SSH_X=unset FERRY_X=unset "
                   "DISPLAY=unset"], out


def _envs_stored(f):
    """Rows of the engine's job_envs, and the base_env of every job spec,
    read with the engine stopped (it holds its database alone), which is
    then started again from the plain test environment."""
    f.run("daemon", "stop")
    db = sqlite3.connect(f"file:{os.path.join(f.state_dir, 'ferry.db')}?mode=ro", uri=True,
                         timeout=30)
    try:
        rows = db.execute("SELECT id FROM job_envs").fetchall()
        bases = db.execute("SELECT json_extract(spec, '$.base_env') FROM job_specs").fetchall()
    finally:
        db.close()
    f.run("jobs")
    return [r[0] for r in rows], [b[0] for b in bases]


@pytest.mark.parametrize("fw", ["local", "slurm", "drmaa"], indirect=True)
def test_bulk_and_workflow_carry_it_once(fw):
    env = _shell(fw)
    path = fw.path("bulk.txt")
    with open(path, "w") as fh:
        fh.write("".join(f"sh -c 'echo \"{i} $MYVAR $CONDA_PREFIX\"'\n" for i in range(30)))
    ids = fw.run("submit", "--bulk", path, env=env).stdout.split()
    wf = fw.path("wf.json")
    with open(wf, "w") as fh:
        fh.write('{"jobs": {"a": {"argv": ["sh", "-c", "echo \\"wf $MYVAR\\""]},'
                 ' "b": {"argv": ["sh", "-c", "echo \\"wf ${MYVAR-unset}\\""],'
                 ' "env": ["MYVAR=own"]}},'
                 ' "dependencies": [["a", "b"]]}')
    wid = fw.run("workflow", "submit", wf, env=env).stdout.strip()
    fw.run("workflow", "wait", "--timeout", str(WAIT), wid, timeout=WAIT + 30)
    fw.run("wait", "--timeout", str(WAIT), *ids, timeout=WAIT + 30)
    for i, jid in enumerate(ids):
        assert fw.run("logs", jid).stdout == f"{i} from the shell {env['CONDA_PREFIX']}\n"
    jobs = fw.json("jobs", "--workflow", wid)
    outs = sorted(fw.run("logs", j["id"]).stdout for j in jobs)
    assert outs == ["wf from the shell\n", "wf own\n"], outs
    # one environment stored, named by the 32 jobs
    rows, bases = _envs_stored(fw)
    assert len(rows) == 1 and bases == [rows[0]] * 32, (rows, bases)
    # a workflow with --env-clean: its jobs start from the default
    wid = fw.run("workflow", "submit", "--env-clean", wf, env=env).stdout.strip()
    fw.run("workflow", "wait", "--timeout", str(WAIT), wid, timeout=WAIT + 30)
    jobs = fw.json("jobs", "--workflow", wid)
    outs = sorted(fw.run("logs", j["id"]).stdout for j in jobs)
    assert outs == ["wf \n", "wf own\n"], outs


@pytest.mark.parametrize("fw", ["local"], indirect=True)
def test_variables_that_are_not_names_are_left_out(fw):
    """bash's exported functions (BASH_FUNC_f%%) name no variable the job's
    exec takes: the submit goes on without them."""
    env = _shell(fw, **{"BASH_FUNC_f%%": "() {  echo f\n}"})
    out = _run(fw, env=env)
    assert out[1].startswith("MYVAR=from the shell "), out


@pytest.mark.parametrize("fw", ["local"], indirect=True)
def test_a_workflow_files_own_base_env_wins(fw):
    wf = fw.path("wf.json")
    with open(wf, "w") as fh:
        fh.write('{"base_env": ["MYVAR=the file\'s", "OTHER=2"],'
                 ' "jobs": {"a": {"argv": ["sh", "-c", "echo \\"$MYVAR $OTHER\\""]}}}')
    wid = fw.run("workflow", "submit", wf, env=_shell(fw)).stdout.strip()
    fw.run("workflow", "wait", "--timeout", str(WAIT), wid, timeout=WAIT + 30)
    jobs = fw.json("jobs", "--workflow", wid)
    assert fw.run("logs", jobs[0]["id"]).stdout == "the file's 2\n"
    cp = fw.run("workflow", "status", "--env-clean", wid, check=False)
    assert cp.returncode == 2 and "--env-clean goes with submit" in cp.stderr, cp


@pytest.mark.parametrize("fw", ["local"], indirect=True)
def test_a_jobs_own_base_env_keeps_the_shells_for_the_others(fw):
    """Only the file's top-level base_env replaces the shell's: a job's own
    (or a job named base_env) leaves the other jobs the shell's."""
    wf = fw.path("wf-own.json")
    echo = ["sh", "-c", 'echo "$MYVAR"']
    with open(wf, "w") as fh:
        json.dump({"jobs": {"own": {"argv": echo, "base_env": ["MYVAR=its own"]},
                            "base_env": {"argv": echo}, "plain": {"argv": echo}}}, fh)
    wid = fw.run("workflow", "submit", wf, env=_shell(fw)).stdout.strip()
    fw.run("workflow", "wait", "--timeout", str(WAIT), wid, timeout=WAIT + 30)
    out = {j["name"]: fw.run("logs", j["id"]).stdout for j in fw.json("jobs", "--workflow", wid)}
    assert out == {"own": "its own\n", "base_env": "from the shell\n",
                   "plain": "from the shell\n"}, out


@pytest.mark.parametrize("fw", ["slurm", "drmaa"], indirect=True)
def test_an_environment_that_cannot_be_read_fails_the_job(fw):
    """A job_envs row found corrupt when a job is to go to the DRMS: the job
    ends aborted, saying what could not be read, rather than going back to
    the queue for ever (DRMAA did) or running without it. The row is made
    corrupt while the engine is stopped, after the workflow's first job
    went and before the second (which waits for it) goes."""
    go = fw.path("go")
    wf = fw.path("wf-gate.json")
    with open(wf, "w") as fh:
        json.dump({"jobs": {"a": {"argv": ["sh", "-c", f"while [ ! -e {go} ]; do sleep 0.2; "
                                          "done"]},
                            "b": {"argv": ["sh", "-c", "echo b ran"]}},
                   "dependencies": [["a", "b"]]}, fh)
    wid = fw.run("workflow", "submit", wf, env=_shell(fw)).stdout.strip()
    jobs = {j["name"]: j["id"] for j in fw.json("jobs", "--workflow", wid)}
    fw.wait_state(jobs["a"], "running", timeout=WAIT)
    fw.run("daemon", "stop")
    db = sqlite3.connect(os.path.join(fw.state_dir, "ferry.db"), timeout=30)
    try:
        with db:
            assert db.execute("UPDATE job_envs SET env = 'not json'").rowcount == 1
    finally:
        db.close()
    fw.run("jobs")
    with open(go, "w"):
        pass
    assert fw.wait_ended(jobs["a"], timeout=WAIT)["status"] == "done"
    info = fw.wait_ended(jobs["b"], timeout=WAIT)
    assert info["exit_status"] == "aborted", info
    assert ("cannot read the job's environment (base_env): row 1 of job_envs is not a JSON "
            "array") in info["message"], info


@pytest.mark.parametrize("fw", ["local"], indirect=True)
def test_names_ferry_and_the_drms_set_are_never_carried(fw):
    """A submit from inside a Slurm or Grid Engine job (or a shell that set
    FERRY_*): the captured environment leaves out what names that job's
    allocation and what ferry sets for each job, so the new job gets its
    own (ferry(1), "ENVIRONMENT OF A JOB")."""
    names = ["SLURM_JOB_ID", "SLURM_CONF", "SGE_TASK_ID", "JOB_ID", "NSLOTS", "PE_HOSTFILE",
             "FERRY_JOB_ID"]
    env = _shell(fw, **{n: "outer" for n in names})
    show = "; ".join(f'echo "{n}=${{{n}-unset}}"' for n in names)
    jid = int(fw.run("submit", "--", "sh", "-c", f"echo $MYVAR; {show}", env=env).stdout)
    assert fw.wait_ended(jid, timeout=WAIT)["status"] == "done"
    out = fw.run("logs", jid).stdout.splitlines()
    # none is the shell's: unset, or the engine's (SLURM_CONF, when the
    # Slurm tests ran in this process), and FERRY_JOB_ID the job's own
    assert out[0] == "from the shell" and out[-1] == f"FERRY_JOB_ID={jid}", out
    assert [line.split("=")[0] for line in out[1:]] == names, out
    assert not [line for line in out if line.endswith("=outer")], out


@pytest.mark.parametrize("fw", ["local"], indirect=True)
@pytest.mark.parametrize("name", ["SLURM_JOB_ID", "SLURM_ARRAY_TASK_ID", "SGE_TASK_ID",
                                  "JOB_ID", "FERRY_JOB_ID", "FERRY_STATE_DIR"])
def test_the_engine_refuses_a_base_env_setting_them(fw, name):
    """The engine's own check, whatever the client: a base_env that sets
    one of them (here a workflow file's, which the CLI sends as written)
    is refused, naming the variable, and no job is recorded."""
    wf = fw.path("wf-reserved.json")
    with open(wf, "w") as fh:
        json.dump({"base_env": ["MYVAR=1", f"{name}=s3cret"],
                   "jobs": {"a": {"argv": ["true"]}}}, fh)
    cp = fw.run("workflow", "submit", wf, check=False)
    assert cp.returncode != 0, cp
    assert f"'base_env'[1] sets '{name}'" in cp.stderr, cp.stderr
    assert "s3cret" not in cp.stderr, cp.stderr
    assert fw.json("jobs") == []


@pytest.mark.parametrize("fw", ["local"], indirect=True)
@pytest.mark.parametrize("entry,said", [
    ("=s3cret", "'base_env'[0] is not NAME=value: its name is empty"),
    ("s3cret", "'base_env'[0] is not NAME=value: it has no '='"),
    ("BAD NAME=s3cret", "'base_env'[0] names 'BAD NAME', not a shell identifier")])
def test_a_bad_entry_is_named_never_its_value(fw, entry, said):
    """Values may be secrets: an error names the entry and the variable,
    never the value (the engine's check, the library's, the CLI's)."""
    wf = fw.path("wf-bad.json")
    with open(wf, "w") as fh:
        json.dump({"base_env": [entry], "jobs": {"a": {"argv": ["true"]}}}, fh)
    cp = fw.run("workflow", "submit", wf, check=False)
    assert cp.returncode != 0 and said in cp.stderr, cp.stderr
    assert "s3cret" not in cp.stderr, cp.stderr
    with open(wf, "w") as fh:
        json.dump({"jobs": {"a": {"argv": ["true"], "env": [entry]}}}, fh)
    cp = fw.run("workflow", "submit", wf, check=False)
    assert cp.returncode != 0 and said.replace("base_env", "env") in cp.stderr, cp.stderr
    assert "s3cret" not in cp.stderr, cp.stderr
    cp = fw.run("submit", "--env", entry, "--", "true", check=False)
    assert cp.returncode != 0 and "s3cret" not in cp.stderr, cp.stderr
    assert "invalid value for --env: expected NAME=VALUE" in cp.stderr or \
        "'env'[0] names 'BAD NAME'" in cp.stderr, cp.stderr


def _submit_env(f, value, *more):
    """A job that shows MYVAR, submitted from a shell where it is value."""
    cp = f.run("submit", *more, "--", "sh", "-c", 'echo "$MYVAR"', env=dict(f.env, MYVAR=value))
    return cp.stdout.split()


@pytest.mark.parametrize("fw", ["local"], indirect=True)
def test_an_environment_goes_with_the_last_job_naming_it(fw):
    """job_envs is collected: a row goes in the transaction that deletes
    the last job naming it (the others keep theirs), and its number,
    taken again by the next environment stored, names that one."""
    path = fw.path("bulk.txt")
    with open(path, "w") as fh:
        fh.write("sh -c 'echo \"$MYVAR\"'\n" * 20)
    bulk = fw.run("submit", "--bulk", path, env=dict(fw.env, MYVAR="bulk")).stdout.split()
    one, = _submit_env(fw, "one")
    fw.run("wait", "--timeout", str(WAIT), *bulk, one, timeout=WAIT + 30)
    rows, _ = _envs_stored(fw)
    assert len(rows) == 2, rows
    fw.run("dispose", *bulk[:-1])
    rows, bases = _envs_stored(fw)
    assert len(rows) == 2 and sorted(set(bases)) == sorted(rows), (rows, bases)
    fw.run("dispose", bulk[-1])
    rows, bases = _envs_stored(fw)
    assert len(rows) == 1 and bases == rows, (rows, bases)
    # the highest number gone, the next one stored takes it: jobs started
    # from it must get the new environment, not one the engine read before
    fw.run("dispose", one)
    rows, bases = _envs_stored(fw)
    assert rows == [] and bases == [], (rows, bases)
    two, = _submit_env(fw, "two")
    fw.run("wait", "--timeout", str(WAIT), two, timeout=WAIT + 30)
    assert fw.run("logs", two).stdout == "two\n"
    fw.run("dispose", two)
    three, = _submit_env(fw, "three")
    fw.run("wait", "--timeout", str(WAIT), three, timeout=WAIT + 30)
    assert fw.run("logs", three).stdout == "three\n"
    fw.run("dispose", three)
    assert _envs_stored(fw) == ([], [])


@pytest.mark.parametrize("fw", ["local"], indirect=True)
def test_schema_7_database_gains_the_environments_column(fw):
    """A database of schema 7 named a job's environment in its spec alone
    and kept every row: migrations[7] fills job_specs.env from the specs
    and drops the rows no job names, and later disposals collect."""
    kept, = _submit_env(fw, "kept")
    held, = _submit_env(fw, "held", "--hold")
    fw.wait_ended(kept, timeout=WAIT)
    fw.run("daemon", "stop")
    path = os.path.join(fw.state_dir, "ferry.db")
    db = sqlite3.connect(path)
    try:
        db.executescript(SCHEMA_8_TO_7 +
                         "INSERT INTO job_envs(env) VALUES ('[\"MYVAR=orphan\"]');")
        assert db.execute("SELECT count(*) FROM job_envs").fetchone() == (3,)
    finally:
        db.close()
    fw.run("jobs")
    rows, bases = _envs_stored(fw)
    assert sorted(rows) == sorted(bases) and len(rows) == 2, (rows, bases)
    fw.run("daemon", "stop")
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=30)
    try:
        assert db.execute("SELECT value FROM meta WHERE key = 'schema'").fetchone() == ("8",)
        assert db.execute("SELECT count(*) FROM job_specs WHERE env = "
                          "json_extract(spec, '$.base_env')").fetchone() == (2,)
    finally:
        db.close()
    fw.run("jobs")
    fw.run("release", held)
    fw.wait_ended(held, timeout=WAIT)
    assert fw.run("logs", held).stdout == "held\n"
    fw.run("dispose", kept, held)
    assert _envs_stored(fw) == ([], [])


@pytest.mark.parametrize("fw", ["local"], indirect=True)
def test_a_runner_of_an_older_ferryd_gets_no_job_with_base_env(fw):
    """The job runner outlives engines: after an upgrade the new engine may
    find the runner of an older ferryd, which dropped base_env from a start.
    Its runner message says so (no "base_env" in its caps; the test knob
    makes this build's runner say what an older one said). While it runs
    jobs, a job with base_env fails, saying why, and one without runs on
    it; once idle, it is left and the engine starts its own."""
    fw.run("daemon", "stop")
    go = fw.path("go")
    busy = fw.run("submit", "--env-clean", "--", "sh", "-c",
                  f"while [ ! -e {go} ]; do sleep 0.2; done",
                  env={"FERRYD_TEST_RUNNER_WITHOUT_CAPS": "1"}).stdout.strip()
    fw.wait_state(busy, "running", timeout=60)
    old = poll(lambda: runner_pid(fw), timeout=30, what="the runner")
    fw.run("daemon", "stop")  # the runner stays: its job runs
    # the "upgraded" engine finds the runner on runner.sock
    refused, = _submit_env(fw, "refused")
    info = fw.wait_ended(refused, timeout=60)
    assert info["exit_status"] == "aborted", info
    assert (f"the job runner (pid {old}) was started by an older ferryd, which cannot give "
            "the job the submitter's environment (base_env)") in info["message"], info
    clean = fw.run("submit", "--env-clean", "--", "true").stdout.strip()
    assert fw.wait_ended(clean, timeout=60)["status"] == "done"
    assert runner_pid(fw) == old
    with open(go, "w"):
        pass
    assert fw.wait_ended(busy, timeout=60)["status"] == "done"
    given, = _submit_env(fw, "given")
    assert fw.wait_ended(given, timeout=60)["status"] == "done"
    assert fw.run("logs", given).stdout == "given\n"
    assert runner_pid(fw) not in (None, old)
