"""ferry.soma_workflow (docs/workflows.md, "From Python: ferry.soma_workflow"):
issue 16's scenarios written as a soma-workflow user writes them, with
soma-workflow's classes and calls, on the local machine and through ssh
(where FileTransfers are real transfers). Each snippet runs in a process of
its own, as in tests/test_python.py; each job appends its name to a log
file, whose order is what the tests check."""
import json
import os
import textwrap

import pytest

from conftest import DEFAULT_CONFIG, engine_keys_config, poll
from test_python import TRANSPORTS, world

SOMA = '''
from ferry.soma_workflow import (Job, BarrierJob, Workflow, Group, FileTransfer,
                                 SharedResourcePath, TemporaryPath, WorkflowController,
                                 Helper, constants, Unsupported)
LOG = os.path.join(WORK, "log")
REMOTE = RESOURCE == "remote"

def app(name, extra=""):
    """A job appending its name to the log."""
    return Job(["sh", "-c", f"{extra}echo {name} >> {LOG}"], name=name)

def log():
    try:
        with open(LOG) as f:
            return f.read().split()
    except FileNotFoundError:
        return []

ctl = WorkflowController(RESOURCE)

def run(wf):
    w = ctl.submit_workflow(wf)
    Helper.wait_workflow(w, ctl)
    return w

def by_name(w):
    """name -> (status, exit_info) from workflow_elements_status()."""
    names = {j.job_id: j.name for j in ctl.workflow(w).jobs}
    return {names[e[0]]: (e[1], list(e[3][:3])) for e in ctl.workflow_elements_status(w)[0]}

OK = ["done", ["finished_regularly", 0, None]]
'''


def snippet(py, code, prefix="", **kw):
    return py.run(SOMA + prefix + textwrap.dedent(code), **kw)


OK = ["done", ["finished_regularly", 0, None]]


@pytest.fixture(params=["local", "ssh"])
def py(request):
    return world(request, request.param)


@pytest.fixture(params=TRANSPORTS)
def py_all(request):
    """Also on Slurm and Grid Engine (DRMAA): the scenarios issue 16 marks so."""
    return world(request, request.param)


@pytest.fixture(params=["local", "ssh", "slurm"])
def py_native(request):
    return world(request, request.param)


@pytest.fixture
def py_local(request):
    return world(request, "local")


def test_diamond(py_all):
    r = snippet(py_all, '''
    a, b, c, d = app("a"), app("b", "sleep 0.3; "), app("c"), app("d")
    wf = Workflow(jobs=[a, b, c, d], dependencies=[(a, b), (a, c), (b, d), (c, d)],
                  name="diamond")
    w = ctl.submit_workflow(wf)
    assert ctl.workflow_status(w) in (constants.WORKFLOW_NOT_STARTED,
                                      constants.WORKFLOW_IN_PROGRESS)
    Helper.wait_workflow(w, ctl)
    els = ctl.workflow_elements_status(w)
    ids = [e[0] for e in els[0]]
    out([ctl.workflow_status(w), by_name(w), log(), ctl.workflows(), els[2],
         [ctl.job_status(i) for i in ids], ctl.job_termination_status(ids[0])[:3],
         [len(e) for e in els[0]], w])
    ''')
    status, jobs, order, wfs, wf_status, statuses, term, lens, w = r
    assert status == "workflow_done" and wf_status == "workflow_done"
    assert jobs == {k: ["done", ["finished_regularly", 0, None]] for k in "abcd"}, jobs
    assert order[0] == "a" and order[-1] == "d" and sorted(order) == list("abcd"), order
    assert wfs == {str(w): ["diamond", None]}
    assert statuses == ["done"] * 4 and term == ["finished_regularly", 0, None]
    assert lens == [6] * 4  # (id, status, queue, exit_info, dates, drms id)


def test_group_of_30_between_a_first_and_a_last(py):
    """Dependencies on a Group, as soma-workflow users write them: two
    barrier jobs per group (and per group in it) stand for it, as
    soma-workflow makes them."""
    r = snippet(py, '''
    first, last = app("first"), app("last")
    mid = [app(f"m{i}") for i in range(30)]
    inner = Group(mid[15:], name="nested")
    group = Group(mid[:15] + [inner], name="middle")
    wf = Workflow(jobs=[first, last] + mid, dependencies=[(first, group), (group, last)],
                  root_group=[first, group, last], name="group")
    w = run(wf)
    st = ctl._conn.workflow_status(w)
    out([by_name(w), log(), st["groups"]])
    ''')
    jobs, order, groups = r
    assert len(jobs) == 36 and all(v[0] == "done" for v in jobs.values()), jobs
    assert {"middle_input", "middle_output", "nested_input", "nested_output"} <= set(jobs)
    assert order[0] == "first" and order[-1] == "last"
    assert sorted(order[1:-1]) == sorted(f"m{i}" for i in range(30))
    assert groups[0]["name"] == "middle" and groups[0]["elements"][15]["name"] == "nested"
    assert len(groups[0]["elements"][15]["elements"]) == 15


FAILING = '''
flag = os.path.join(WORK, "fixed")
a, c, d, e, o1, o2 = (app(n) for n in ("a", "c", "d", "e", "o1", "o2"))
seg = app("seg", f"test -e {flag} || exit 3; ")
wf = Workflow(jobs=[a, seg, c, d, e, o1, o2],
              dependencies=[(a, seg), (seg, c), (c, d), (seg, e), (d, e), (a, o1), (o1, o2)],
              name="fails")
w = run(wf)
'''


def test_failure_propagation(py_all):
    """A job exiting 3 is done with exit value 3 (soma-workflow's words);
    its descendants never run: failed, aborted_before_running; the other
    branch is done; the workflow is done."""
    r = snippet(py_all, prefix=FAILING, code='''
    names = {j.job_id: j.name for j in ctl.workflow(w).jobs}
    failed = [names[i] for i in Helper.list_failed_jobs(w, ctl)]
    with_aborted = sorted(names[i] for i in Helper.list_failed_jobs(
        w, ctl, include_aborted_jobs=True))
    out([ctl.workflow_status(w), by_name(w), sorted(log()), failed, with_aborted])
    ''')
    status, jobs, order, failed, with_aborted = r
    assert status == "workflow_done"
    assert jobs["seg"] == ["done", ["finished_regularly", 3, None]], jobs
    for k in "cde":
        assert jobs[k] == ["failed", ["aborted_before_running", None, None]], jobs
    for k in ("a", "o1", "o2"):
        assert jobs[k] == OK, jobs
    assert order == ["a", "o1", "o2"]
    assert failed == ["seg"] and with_aborted == ["c", "d", "e", "seg"]


def test_restart_after_fixing_the_failing_command(py_all):
    r = snippet(py_all, prefix=FAILING, code='''
    before = sorted(log())
    open(flag, "w").close()
    assert ctl.restart_workflow(w) is True
    Helper.wait_workflow(w, ctl)
    out([before, log(), ctl.workflow_status(w), by_name(w), Helper.list_failed_jobs(w, ctl),
         ctl.restart_workflow(w)])
    ''')
    before, order, status, jobs, failed, again = r
    assert before == ["a", "o1", "o2"]
    # only the failed and aborted jobs ran again, in their order
    assert sorted(order[3:]) == ["c", "d", "e", "seg"] and order[3] == "seg", order
    assert order[3:].index("d") < order[3:].index("e")
    assert status == "workflow_done" and all(v == OK for v in jobs.values()), jobs
    assert failed == [] and again is False  # nothing left to restart


def test_twenty_independent_jobs(py):
    r = snippet(py, '''
    jobs = [app(f"j{i}") for i in range(20)]
    w = ctl.submit_workflow(Workflow(jobs=jobs, name="twenty"))
    ids = [e[0] for e in ctl.workflow_elements_status(w)[0]]
    ctl.wait_job(ids)
    out([sorted(log()), [ctl.job_status(i) for i in ids], ctl.workflow_status(w)])
    ''')
    assert r[0] == sorted(f"j{i}" for i in range(20))
    assert r[1] == ["done"] * 20 and r[2] == "workflow_done"


def test_three_layers_of_ten_fully_connected(py_all):
    r = snippet(py_all, '''
    layers = [[app(f"l{k}_{i}") for i in range(10)] for k in range(3)]
    deps = [(a, b) for k in range(2) for a in layers[k] for b in layers[k + 1]]
    w = run(Workflow(jobs=sum(layers, []), dependencies=deps, name="layers"))
    out([log(), ctl.workflow_status(w)])
    ''')
    order, status = r
    assert status == "workflow_done" and len(order) == 30
    assert [int(x[1]) for x in order] == sorted(int(x[1]) for x in order), order


def test_six_serial_jobs(py):
    r = snippet(py, '''
    jobs = [app(f"s{i}") for i in range(6)]
    w = run(Workflow(jobs=jobs, dependencies=list(zip(jobs, jobs[1:]))))
    out([log(), ctl.workflow_status(w)])
    ''')
    assert r == [[f"s{i}" for i in range(6)], "workflow_done"]


def test_fake_pipeline(py):
    """A 7-step chain per subject, 4 x nproc subjects, a final group job."""
    r = snippet(py, '''
    n = 4 * (os.cpu_count() or 1)
    steps = ["seg", "surf", "morph", "stat", "qc", "reg", "proj"]
    chains = [[app(f"{s}.{k}") for s in steps] for k in range(n)]
    final = app("group")
    deps = [(c[i], c[i + 1]) for c in chains for i in range(6)] + [(c[-1], final) for c in chains]
    root = [Group(c, name=f"subject {k}") for k, c in enumerate(chains)] + [final]
    w = run(Workflow(jobs=sum(chains, []) + [final], dependencies=deps, root_group=root,
                     name="pipeline"))
    out([n, log(), ctl.workflow_status(w), len(ctl._conn.workflow_status(w)["groups"])])
    ''')
    n, order, status, groups = r
    steps = ["seg", "surf", "morph", "stat", "qc", "reg", "proj"]
    assert status == "workflow_done" and len(order) == 7 * n + 1 and order[-1] == "group"
    for k in range(n):
        assert [x.split(".")[0] for x in order if x.endswith(f".{k}")] == steps
    assert groups == n


def test_barrier_jobs(py):
    r = snippet(py, '''
    start = BarrierJob(name="start")
    a = [app(f"a{i}") for i in range(3)]
    mid = BarrierJob(name="mid")
    b = [app(f"b{i}") for i in range(3)]
    deps = [(start, x) for x in a] + [(x, mid) for x in a] + [(mid, x) for x in b]
    w = run(Workflow(jobs=[start, *a, mid, *b], dependencies=deps))
    info = {j.name: j for j in ctl.workflow(w).jobs}
    out([log(), by_name(w)["mid"], type(info["mid"]).__name__, info["mid"].command])
    ''')
    order, mid, cls, command = r
    assert sorted(order[:3]) == ["a0", "a1", "a2"] and sorted(order[3:]) == ["b0", "b1", "b2"]
    assert mid == OK and cls == "BarrierJob" and command == []


def test_special_command(py):
    """Arguments with spaces, quotes, $, ;, non-ASCII reach the job as given."""
    args = ["with space", "it's", 'say "hi"', "$HOME", "a;b", "`x`", "été ✓", "*", ""]
    r = snippet(py, f'''
    args = {args!r}
    dest = os.path.join(WORK, "argv.json")
    job = Job(["python3", "-c", "import sys, json; "
               "open(sys.argv[1], 'w', encoding='utf-8').write(json.dumps(sys.argv[2:]))",
               dest, *args], name="special")
    w = run(Workflow(jobs=[job]))
    out([by_name(w)["special"], json.load(open(dest, encoding="utf-8"))])
    ''')
    assert r == [["done", ["finished_regularly", 0, None]], args]


def test_transfers_of_a_directory_and_an_img_hdr_pair(py):
    """Inputs and outputs: a directory and a multi-file image, in
    soma-workflow's order (submit, transfer the inputs, wait, transfer the
    outputs). Through ssh they are real transfers: the jobs see server
    paths and the outputs reach the client only at transfer_output_files."""
    r = snippet(py, '''
    d = os.path.join(WORK, "data")
    os.makedirs(d + "/indir/sub")
    for name, text in (("indir/a.txt", "A"), ("indir/sub/b.txt", "B"),
                       ("in.img", "IMG" * 1000), ("in.hdr", "HDR")):
        with open(os.path.join(d, name), "w") as f:
            f.write(text)
    in_dir = FileTransfer(is_input=True, client_path=d + "/indir", name="indir")
    in_img = FileTransfer(True, d + "/in.img", client_paths=[d + "/in.img", d + "/in.hdr"])
    out_dir = FileTransfer(False, d + "/outdir")
    out_img = FileTransfer(False, d + "/out.img", client_paths=[d + "/out.img", d + "/out.hdr"])
    hdr_copy = FileTransfer(False, d + "/hdr-copy")
    script = ('mkdir -p "$2" && cat "$0/a.txt" "$0/sub/b.txt" > "$2/ab.txt" && '
              'cp "$1" "$3" && cp "${1%.img}.hdr" "${3%.img}.hdr"')
    j1 = Job(["sh", "-c", script, in_dir, in_img, out_dir, out_img],
             referenced_input_files=[in_dir, in_img], referenced_output_files=[out_dir, out_img],
             name="convert")
    j2 = Job(["cp", (in_img, "in.hdr"), hdr_copy], referenced_input_files=[in_img],
             referenced_output_files=[hdr_copy], name="copy")
    w = ctl.submit_workflow(Workflow(jobs=[j1, j2], name="transfers"))
    Helper.transfer_input_files(w, ctl)
    Helper.wait_workflow(w, ctl)
    before = sorted(os.listdir(d))
    Helper.transfer_output_files(w, ctl)
    def read(p):
        with open(os.path.join(d, p)) as f:
            return f.read()
    tr = ctl.workflow_elements_status(w)[1]
    command = ctl._conn.jobInformation(ctl.workflow(w).jobs[0].job_id)["command"]
    out([by_name(w), before, read("outdir/ab.txt"), read("out.img") == read("in.img"),
         read("out.hdr"), read("hdr-copy"), sorted(t[1][0] for t in tr), len(tr),
         any(d in a for a in command[3:])])
    ''')
    jobs, before, ab, img, hdr, copy, statuses, n, client_paths_in_command = r
    assert jobs == {"convert": ["done", ["finished_regularly", 0, None]],
                    "copy": ["done", ["finished_regularly", 0, None]]}, jobs
    assert ab == "AB" and img is True and hdr == "HDR" and copy == "HDR"
    assert n == 5 and set(statuses) == {"on both sides"}, statuses
    if py.resource == "remote":
        # the outputs came back only through transfer_output_files, the jobs
        # worked on the engine's copies
        assert before == ["in.hdr", "in.img", "indir"], before
        assert not client_paths_in_command
    else:
        assert "out.img" in before and client_paths_in_command


def test_native_specification_and_unsupported_input_submit_nothing(py_native):
    """A native specification the resource refuses (the local scheduler takes
    none; on Slurm, an option ferry sets itself) and what ferry cannot honour
    are clear errors, and nothing of the workflow stays: no workflow, no job,
    no transfer. On Slurm a good one reaches the job."""
    r = snippet(py_native, '''
    bad_native = "--comment=mine" if RESOURCE == "slurm" else "--mem=1G"
    src = os.path.join(WORK, "input.txt")
    open(src, "w").write("x")
    ft = FileTransfer(True, src)
    def attempt(**kw):
        ok = Job(["cat", ft], referenced_input_files=[ft], name="ok")
        bad = Job(["true"], name="bad", **kw)
        try:
            ctl.submit_workflow(Workflow(jobs=[ok, bad], dependencies=[(ok, bad)]))
        except ferry.Error as e:
            return [type(e).__name__, str(e)]
        return None
    res = [attempt(native_specification=bad_native),
           attempt(priority=5),
           attempt(parallel_job_info={"config_name": "OpenMP", "nodes_number": 2,
                                      "cpu_per_node": 2})]
    # a SharedResourcePath on a resource with no path_translation_files
    srp = Job(["cat", SharedResourcePath("a.txt", "study", "1234"), ft],
              referenced_input_files=[ft])
    try:
        ctl.submit_workflow(Workflow(jobs=[srp]))
    except ferry.Error as e:
        res.append([type(e).__name__, str(e)])
    left = [ctl.workflows(), ctl._conn.jobs(), ctl._conn.transfers()]
    good = None
    if RESOURCE == "slurm":
        j = Job(["true"], native_specification="--time=10", name="good")
        w = run(Workflow(jobs=[j]))
        good = [by_name(w)["good"], ctl._conn.jobInformation(
            ctl.workflow(w).jobs[0].job_id)["native_specification"]]
    out([bad_native, res, left, good])
    ''')
    bad_native, res, left, good = r
    # the engine refuses it naming the job and the specification
    assert res[0][0] in ("InvalidArgument", "Unsupported"), res
    assert "job '1'" in res[0][1] and bad_native in res[0][1], res
    assert res[1][0] == "Unsupported" and "priority" in res[1][1]
    assert res[2][0] == "Unsupported" and "parallel_job_info" in res[2][1]
    assert res[3] == ["InvalidArgument", "job 0 ('cat'): SharedResourcePath 'study:1234:a.txt': "
                      "no translation files configured (path_translation_files of resource "
                      f"'{py_native.resource}')"], res
    assert left == [{}, [], []], left
    if py_native.resource == "slurm":
        assert good == [OK, "--time=10"], good


def test_environment_variables_of_the_workflow(py):
    r = snippet(py, '''
    dest = os.path.join(WORK, "env.txt")
    a = Job(["sh", "-c", f'echo "$A $B $C" > {dest}'], env={"B": "job", "C": "only-job"})
    b = Job(["sh", "-c", f'echo "$A $B" >> {dest}'])
    w = run(Workflow(jobs=[a, b], dependencies=[(a, b)], env={"A": "wf a", "B": "wf b"}))
    out(open(dest).read())
    ''')
    assert r == "wf a job only-job\nwf a wf b\n"


def test_serialize_round_trip(py_local):
    """Helper.serialize writes soma-workflow's layout; unserialize gives back
    a Workflow that serialises the same and runs the same."""
    r = snippet(py_local, '''
    src = FileTransfer(True, os.path.join(WORK, "in.txt"), name="in")
    open(src.client_path, "w").write("data\\n")
    tmp = TemporaryPath(suffix=".txt")
    a = Job(["sh", "-c", f'cat "$0" > "$1"; echo a >> {LOG}', src, tmp],
            referenced_input_files=[src], referenced_output_files=[tmp], name="a",
            env={"X": "1"}, disposal_timeout=24)
    b = Job(["sh", "-c", f'cat "$0" >> {LOG}', tmp], referenced_input_files=[tmp], name="b")
    hub = BarrierJob(name="hub")
    c = app("c")
    wf = Workflow(jobs=[a, hub, b, c], dependencies=[(a, hub), (hub, b), (b, c)],
                  root_group=[Group([a, hub], "first"), b, c], name="ser", env={"Y": "2"})
    p1, p2 = os.path.join(WORK, "wf1.json"), os.path.join(WORK, "wf2.json")
    Helper.serialize(p1, wf)
    wf2 = Helper.unserialize(p1)
    Helper.serialize(p2, wf2)
    d1, d2 = json.load(open(p1)), json.load(open(p2))
    w = run(wf2)
    out([d1 == d2, sorted(d1), [type(j).__name__ for j in wf2.jobs], log(),
         ctl.workflow_status(w), wf2.jobs[0].env, wf2.jobs[0].disposal_timeout,
         [g.name for g in wf2.groups]])
    ''')
    same, keys, classes, order, status, env, hours, groups = r
    assert same, "a workflow read back does not serialise the same"
    assert {"jobs", "dependencies", "root_group", "serialized_jobs",
            "serialized_file_transfers", "serialized_temporary_paths"} <= set(keys)
    assert classes == ["Job", "BarrierJob", "Job", "Job"]
    assert order == ["a", "data", "c"] and status == "workflow_done"
    assert env == {"X": "1"} and hours == 24 and groups == ["first"]


def test_stop_restart_and_delete_a_workflow(py):
    r = snippet(py, '''
    flag = os.path.join(WORK, "go")
    a = app("a", f"test -e {flag} || sleep 60; ")
    b, c, d = app("b"), app("c"), app("d")
    w = ctl.submit_workflow(Workflow(jobs=[a, b, c, d], dependencies=[(a, b), (b, c)],
                                     name="ctl"))
    ids = {j.name: j.job_id for j in ctl.workflow(w).jobs}
    until(lambda: ctl.job_status(ids["a"]) == constants.RUNNING and "d" in log(),
          "a running")
    assert ctl.stop_workflow(w) is True  # returns once the running job was killed
    stopped = [ctl.workflow_status(w), by_name(w)]
    open(flag, "w").close()
    assert ctl.restart_workflow(w) is True
    ctl.wait_workflow(w)
    restarted = [ctl.workflow_status(w), by_name(w), log()]
    assert ctl.delete_workflow(w) is True
    gone = w not in ctl.workflows()
    # force: the call returns once the running job was killed and disposed of
    s = Job(["sleep", "300"], name="s")
    w2 = ctl.submit_workflow(Workflow(jobs=[s], name="running"))
    sid = ctl.workflow(w2).jobs[0].job_id
    until(lambda: ctl.job_status(sid) == constants.RUNNING, "s running")
    assert ctl.delete_workflow(w2, force=True) is True
    try:
        ctl._conn.status(sid)
        gone = False
    except ferry.NoSuchJob:
        pass
    try:
        ctl.workflow_status(w)
        unknown = False
    except ferry.NoSuchJob:
        unknown = True
    out([stopped, restarted, gone, unknown])
    ''')
    (st1, jobs1), (st2, jobs2, order), gone, unknown = r
    assert st1 == "workflow_done"
    assert jobs1["a"][0] == "failed" and jobs1["a"][1][0] == "killed_by_user", jobs1
    assert jobs1["b"] == jobs1["c"] == ["failed", ["aborted_before_running", None, None]]
    assert jobs1["d"] == OK
    assert st2 == "workflow_done" and all(v == OK for v in jobs2.values()), jobs2
    assert order == ["d", "a", "b", "c"]
    assert gone and unknown


def test_retrieve_stdouterr_and_unsupported_controller_options(py):
    r = snippet(py, '''
    j = Job(["sh", "-c", "echo out; echo err >&2"], name="io")
    w = run(Workflow(jobs=[j]))
    jid = ctl.workflow(w).jobs[0].job_id
    o, e = os.path.join(WORK, "o.txt"), os.path.join(WORK, "e.txt")
    ctl.retrieve_job_stdouterr(jid, o, e)
    errs = []
    for call in (lambda: WorkflowController(RESOURCE, rsa_key_pass="x"),
                 lambda: ctl.restart_workflow(w, queue="long"),
                 lambda: ctl.restart_jobs(w, [jid]),
                 lambda: ctl.change_workflow_expiration_date(w, None),
                 lambda: ctl.set_queue_limits):
        try:
            call()
        except Unsupported as ex:
            errs.append(str(ex))
    out([open(o).read(), open(e).read(), errs, ctl.get_job_command(jid),
         ctl.drms_job_id(w, jid) == ctl._conn.jobInformation(jid)["native_id"]])
    ''')
    assert r[0] == "out\n" and r[1] == "err\n"
    assert len(r[2]) == 5 and all("not supported" in e for e in r[2]), r[2]
    assert "set_queue_limits" in r[2][4] and "max_queued" in r[2][4]
    assert r[3] == ["sh", "-c", "echo out; echo err >&2"] and r[4] is True


def test_temporary_paths(py):
    """A TemporaryPath file written by one job and read by the next, and a
    TemporaryPath directory: places on the resource, none in the client's
    directories."""
    r = snippet(py, '''
    tmp, tdir = TemporaryPath(name="mid", suffix=".txt"), TemporaryPath(is_directory=True)
    a = Job(["sh", "-c", 'echo from-a > "$0"; echo x > "$1/f"', tmp, tdir],
            referenced_output_files=[tmp], name="a")
    b = Job(["sh", "-c", f'cat "$0" "$1/f" >> {LOG}', tmp, tdir],
            referenced_input_files=[tmp], name="b")
    w = run(Workflow(jobs=[a, b], dependencies=[(a, b)]))
    temps = ctl.workflow_elements_status(w)[4]
    out([by_name(w), log(), [t[1] for t in temps], [t[2] for t in temps], os.listdir(WORK)])
    ''')
    jobs, order, paths, statuses, work = r
    assert jobs == {"a": OK, "b": OK} and order == ["from-a", "x"], (jobs, order)
    assert paths[0].endswith("/mid.txt") and len(paths) == 2
    assert "/transfers/" in paths[0] and "/transfers/" in paths[1], paths
    assert statuses[0] == "on computing resource side", statuses
    assert "mid.txt" not in work


def test_engine_killed_while_a_soma_script_waits(py_local):
    """SIGKILL of the engine, three times, while a soma-workflow script waits
    in Helper.wait_workflow(): the wait regains the next engine, every job
    ran once, the workflow ends done."""
    f = py_local.f
    p = py_local.popen(SOMA + textwrap.dedent('''
    layers = [[app(f"l{k}_{i}", "sleep 0.1; ") for i in range(8)] for k in range(6)]
    deps = [(layers[k][i], layers[k + 1][j]) for k in range(5) for i in range(8)
            for j in (i, (i + 1) % 8)]
    w = ctl.submit_workflow(Workflow(jobs=sum(layers, []), dependencies=deps, name="crash"))
    print("SUBMITTED", flush=True)
    Helper.wait_workflow(w, ctl)
    out([ctl.workflow_status(w), sorted(set(v[0] for v in by_name(w).values())),
         Helper.list_failed_jobs(w, ctl, include_aborted_jobs=True)])
    '''))
    assert p.stdout.readline().strip() == "SUBMITTED"
    logf = f.path("log")

    def ran():
        try:
            with open(logf) as fh:
                return fh.read().split()
        except FileNotFoundError:
            return []
    for k in range(3):
        poll(lambda: len(ran()) >= 6 + 10 * k and f.engine_alive(), 60, 0.05, "jobs running")
        f.kill_engine()
    stdout, stderr = p.communicate(timeout=300)
    assert p.returncode == 0, stdout + stderr
    result = json.loads([ln for ln in stdout.splitlines() if ln.startswith("RESULT ")][-1][7:])
    assert result == ["workflow_done", ["done"], []], result
    order = ran()
    assert sorted(order) == sorted(f"l{k}_{i}" for k in range(6) for i in range(8)), order
    for k in range(5):  # each job after the two it depends on
        for i in range(8):
            for j in (i, (i + 1) % 8):
                assert order.index(f"l{k}_{i}") < order.index(f"l{k + 1}_{j}"), order


def translation_config(py, value):
    """path_translation_files = value for the test's resource. Over ssh the
    engine's host reads no configuration of its own (its ferry runs with an
    empty XDG_CONFIG_HOME): the key reaches the engine only as a setting
    the client sends (tests/test_limits.py does the same)."""
    engine_keys_config(py.f, DEFAULT_CONFIG + f"path_translation_files = {value}\n", slots=2,
                       path_translation_files=value)


def test_shared_resource_paths(py):
    """SharedResourcePaths in a command (as they are, in a (path, relative)
    tuple, derived with + ".txt"), as working directory, stdin, stdout and
    referenced files: the jobs work at their translated places, read by the
    resource's engine in the translation file at each submission. An unknown
    namespace or uuid is a clear error and submits and sends nothing."""
    work = py.f.work
    study, other, moved = (os.path.join(work, d) for d in ("study data", "other", "moved"))
    for d in (study + "/in", study + "/out", other, moved):
        os.makedirs(d)
    with open(os.path.join(study, "in", "x.txt"), "w") as fh:
        fh.write("X\n")
    tr = os.path.join(work, "study.translation")
    with open(tr, "w") as fh:
        fh.write(f"# the study\nsubj-1  {study}  \nsubj-2\t{other}\nsubj-3\n")
    translation_config(py, f"atlas{{/nonexistent/atlas}}\n    study{{{tr}}}")
    r = snippet(py, '''
    tr = os.path.join(WORK, "study.translation")
    def S(rel, uuid="subj-1", ns="study"):
        return SharedResourcePath(rel, ns, uuid)
    a = Job(["sh", "-c", 'cat "$0" > "$1"; pwd > pwd.txt', S("in/x.txt"), S("out/a.txt")],
            working_directory=S("", "subj-2"), referenced_input_files=[S("in/x.txt")],
            referenced_output_files=[S("out/a.txt")], name="a")
    b = Job(["sh", "-c", 'cat; echo "$0"; cat "$1"', (S("", "subj-2"), "rel"),
             S("out/a") + ".txt"],
            stdin=S("in/x.txt"), stdout_file=S("b.txt", "subj-2"), name="b")
    w = run(Workflow(jobs=[a, b], dependencies=[(a, b)]))
    command = ctl._conn.jobInformation(ctl.workflow(w).jobs[0].job_id)["command"]
    # the file is read again at the next submission
    with open(tr, "w") as fh:
        fh.write(f"subj-1 {os.path.join(WORK, 'moved')}\\n")
    w2 = run(Workflow(jobs=[Job(["sh", "-c", 'echo c > "$0"', S("c.txt")], name="c")]))
    src = os.path.join(WORK, "input.txt")
    open(src, "w").write("x")
    ft = FileTransfer(True, src)
    before = [ctl.workflows(), ctl._conn.transfers()]
    errors = []
    for bad in (S("a", ns="nostudy"), S("a", uuid="subj-9"), S("a", uuid="subj-3"),
                S("a", ns="atlas")):
        try:
            ctl.submit_workflow(Workflow(jobs=[
                Job(["cat", ft], referenced_input_files=[ft], name="fine"),
                Job(["cat", bad], name="bad")]))
        except ferry.Error as e:
            errors.append([type(e).__name__, str(e)])
    out([by_name(w), by_name(w2), command, errors,
         before == [ctl.workflows(), ctl._conn.transfers()]])
    ''')
    jobs, jobs2, command, errors, unchanged = r
    assert jobs == {"a": OK, "b": OK} and jobs2 == {"c": OK}, (jobs, jobs2)
    assert command[3:] == [f"{study}/in/x.txt", f"{study}/out/a.txt"], command

    def read(*p):
        with open(os.path.join(*p)) as fh:
            return fh.read()
    assert read(study, "out", "a.txt") == "X\n"
    assert read(other, "pwd.txt") == other + "\n"
    assert read(other, "b.txt") == f"X\n{other}/rel\nX\n"
    assert read(moved, "c.txt") == "c\n" and not os.path.exists(os.path.join(study, "c.txt"))
    res = "remote" if py.f.sshd else "local"
    assert errors == [
        ["InvalidArgument", "job 1 ('bad'): SharedResourcePath 'nostudy:subj-1:a': namespace "
         f"'nostudy' has no translation file (path_translation_files of resource '{res}')"],
        ["InvalidArgument", "job 1 ('bad'): SharedResourcePath 'study:subj-9:a': no "
         f"translation of uuid 'subj-9' in namespace 'study' ('{tr}')"],
        ["InvalidArgument", "job 1 ('bad'): SharedResourcePath 'study:subj-3:a': no "
         f"translation of uuid 'subj-3' in namespace 'study' ('{tr}')"],
        ["IOFailure", "job 1 ('bad'): SharedResourcePath 'atlas:subj-1:a': cannot read the "
         "translation file '/nonexistent/atlas': No such file or directory"]], errors
    assert unchanged, "a refused submission left a workflow or a transfer"


def test_mpi_parallel_job_info_gives_tasks_and_nodes(py_local):
    """parallel_job_info 'MPI' (nodes_number x cpu_per_node tasks, the
    command starting its own ranks, as soma-workflow's MPI configuration
    only allocates) maps onto ferry's tasks and nodes."""
    r = snippet(py_local, '''
    job = Job(["sh", "-c", "echo mpi"], name="m",
              parallel_job_info={"config_name": "MPI", "nodes_number": 1, "cpu_per_node": 2})
    w = run(Workflow(jobs=[job]))
    info = ctl._conn.jobInformation(ctl.workflow(w).jobs[0].job_id)
    out([by_name(w)["m"], info["tasks"], info["nodes"], info["cpus"], info["launcher"]])
    ''')
    assert r == [OK, 2, 1, 2, None], r
