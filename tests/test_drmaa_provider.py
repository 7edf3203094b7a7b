"""libferry-drmaa (src/drmaa, docs/drmaa-provider.md) as a DRMAA client
sees it: Debian's python3-drmaa, /usr/bin/python3, with DRMAA_LIBRARY_PATH
naming the library of the build being tested, on the resource of the
test's own ferry world: each test that takes `dw` runs on the local
resource and on an ssh one (this host's test sshd, logged in as root; the
session opens $FERRY_RESOURCE, "remote", as Snakemake's does).

Each test runs its snippets in processes of their own (the DRMAA session
is per process). Under the ASan build the library is instrumented: the
sanitizer's runtime is preloaded into python as tests/test_python.py does,
and dropped again inside the snippet so that the engine and the jobs it
starts do not get it."""
import json
import os
import pwd
import subprocess
import textwrap
import time

import pytest

from conftest import BUILD_DIR, FERRY_BIN, engine_keys_config, ferry_world
from test_python import SNIPPET_HELPERS, asan_runtime

PYTHON = "/usr/bin/python3"
LIBRARY = os.path.join(BUILD_DIR, "libferry-drmaa.so.1")

PRELUDE = '''
import os
os.environ.pop("LD_PRELOAD", None)
import ctypes, json, sys, time
import drmaa
from drmaa.errors import *
WORK = os.environ["PYTEST_WORK"]
WAIT = 20
''' + SNIPPET_HELPERS + '''

def raises(exc, fn, *a, **kw):
    try:
        fn(*a, **kw)
    except exc as e:
        return str(e)
    raise AssertionError(f"{getattr(fn, '__name__', fn)}{a} did not raise {exc.__name__}")

def state(s, jid, want):
    return until(lambda: s.jobStatus(jid) == want, f"job {jid} {want}")

def template(s, *args, **attrs):
    jt = s.createJobTemplate()
    jt.remoteCommand = "/bin/sh"
    jt.args = ["-c", *args]
    for k, v in attrs.items():
        setattr(jt, k, v)
    return jt
'''


class DrmaaWorld:
    def __init__(self, f):
        self.f = f
        self.env = dict(f.env, DRMAA_LIBRARY_PATH=LIBRARY, PYTEST_WORK=f.work)
        asan = asan_runtime()
        if asan:
            # the instrumented library needs its runtime first in a plain python;
            # CPython is not leak-clean at exit: leaks are checked by the C tests
            self.env["LD_PRELOAD"] = asan
            self.env["ASAN_OPTIONS"] = (os.environ.get("ASAN_OPTIONS", "") +
                                        ":detect_leaks=0").lstrip(":")

    @property
    def home(self):
        """The home of the jobs' user on the resource's host: the test's
        $HOME here, root's over ssh."""
        return pwd.getpwnam("root").pw_dir if self.f.sshd else self.f.home

    def slots(self, n):
        """The resource's engine runs n jobs at a time (over ssh as the
        settings the client sends)."""
        engine_keys_config(self.f, f"[local]\nscheduler = local\nslots = {n}\n", slots=n)

    def run(self, code, timeout=60):
        """Runs a snippet; returns what it gave out() last, or None."""
        script = os.path.join(self.f.base, f"snippet-{time.monotonic_ns()}.py")
        with open(script, "w") as fh:
            fh.write(PRELUDE + textwrap.dedent(code))
        try:
            cp = subprocess.run([PYTHON, script], env=self.env, cwd=self.f.work,
                                capture_output=True, text=True, errors="replace",
                                timeout=timeout)
        except subprocess.TimeoutExpired as ex:
            raise AssertionError(f"the snippet did not end in {timeout}s:\n{ex.stdout}\n"
                                 f"{ex.stderr}")
        assert cp.returncode == 0, f"the snippet failed ({cp.returncode}):\n{cp.stdout}\n{cp.stderr}"
        assert "Sanitizer" not in cp.stderr, cp.stderr
        results = [line[7:] for line in cp.stdout.splitlines() if line.startswith("RESULT ")]
        return json.loads(results[-1]) if results else None


def need_drmaa():
    if not os.path.exists("/usr/lib/python3/dist-packages/drmaa/__init__.py"):
        pytest.fail("python3-drmaa is not installed (scripts/install-deps --test)",
                    pytrace=False)


@pytest.fixture(params=["local", "ssh"])
def dw(request):
    need_drmaa()
    return DrmaaWorld(ferry_world(request, request.param))


def test_job_with_args_env_and_working_directory(dw):
    """$drmaa_hd_ph$ is the home of the resource's host (over ssh: root's
    there, not the client's $HOME)."""
    wd = dw.f.path("wd")
    os.makedirs(wd)
    err = os.path.join(dw.home, f"err-{os.path.basename(dw.f.base)}.txt")
    r = dw.run(f'''
    with drmaa.Session() as s:
        jt = template(s, 'echo "$1|$FOO|$(pwd)"; echo err >&2; exit 3', "sh", "one two",
                      jobEnvironment={{"FOO": "b=ar"}}, workingDirectory={wd!r},
                      jobName="drmaa-one", outputPath=":$drmaa_wd_ph$/out.txt",
                      errorPath=":$drmaa_hd_ph$/{os.path.basename(err)}")
        # python3-drmaa 0.7.9 cannot set it (its IntConverter sends bytes(600): 600 NULs)
        lib = ctypes.CDLL(os.environ["DRMAA_LIBRARY_PATH"])
        assert lib.drmaa_set_attribute(jt._jt, b"drmaa_wct_hlimit", b"10:00",
                                       None, ctypes.c_size_t(0)) == 0
        jid = s.runJob(jt)
        info = s.wait(jid, drmaa.Session.TIMEOUT_WAIT_FOREVER)
        out(dict(id=jid, exited=info.hasExited, status=info.exitStatus,
                 signaled=info.hasSignal, aborted=info.wasAborted, usage=info.resourceUsage,
                 contact=s.contact, drm=s.drmsInfo, impl=s.drmaaImplementation,
                 version=[s.version.major, s.version.minor], ps=s.jobStatus(jid)))
    ''')
    assert r["exited"] and r["status"] == 3 and not r["signaled"] and not r["aborted"]
    assert r["ps"] == "failed"  # ferry's state of a non-zero exit, DRMAA's vocabulary
    for key in ("wallclock", "cpu", "ru_utime", "ru_stime", "maxrss", "submission_time",
                "start_time", "end_time"):
        assert float(r["usage"][key]) >= 0, (key, r["usage"])
    assert float(r["usage"]["end_time"]) >= float(r["usage"]["start_time"])
    assert r["contact"] == dw.f.resource and r["version"] == [1, 0]
    assert r["drm"].startswith("ferry ") and r["impl"].startswith("libferry-drmaa ")
    with open(os.path.join(wd, "out.txt")) as fh:
        assert fh.read() == f"one two|b=ar|{wd}\n"
    try:
        with open(err) as fh:
            assert fh.read() == "err\n"
    finally:
        if dw.f.sshd and os.path.exists(err):
            os.unlink(err)
    # the id is ferry's: the CLI knows the job, with the limit and the name given
    info = dw.f.info(int(r["id"]))
    assert info["name"] == "drmaa-one" and info["walltime_s"] == 600


def test_exit_signal_and_abort_decoded(dw):
    r = dw.run('''
    with drmaa.Session() as s:
        ok = s.runJob(template(s, "exit 0"))
        killed = s.runJob(template(s, "kill -KILL $$"))
        long = s.runJob(template(s, "sleep 60"))
        held = s.runJob(template(s, "true", jobSubmissionState=drmaa.JobSubmissionState.HOLD_STATE))
        state(s, long, "running")
        s.control(long, drmaa.JobControlAction.TERMINATE)
        s.control(held, drmaa.JobControlAction.TERMINATE)
        res = {}
        for name, jid in dict(ok=ok, killed=killed, long=long, held=held).items():
            i = s.wait(jid, 30)
            res[name] = [i.hasExited, i.exitStatus, i.hasSignal, i.terminatedSignal,
                         i.wasAborted, s.jobStatus(jid)]
        out(res)
    ''')
    assert r["ok"] == [True, 0, False, "", False, "done"]
    assert r["killed"] == [False, 0, True, "SIGKILL", False, "failed"]
    assert r["long"] == [False, 0, True, "SIGTERM", False, "failed"]
    # killed before it ran: neither exited nor signalled
    assert r["held"] == [False, 0, False, "", True, "failed"]


def test_bulk_of_50_with_index_placeholder(dw):
    os.makedirs(dw.f.path("in"))
    for i in range(1, 51):
        with open(dw.f.path("in", f"{i}.txt"), "w") as fh:
            fh.write(f"input {i}\n")
    r = dw.run(f'''
    with drmaa.Session() as s:
        # each job knows its index: the placeholder in its paths, $DRMAA_BULK_INDEX
        jt = template(s, "cat; echo done $DRMAA_BULK_INDEX",
                      inputPath=":{dw.f.work}/in/$drmaa_incr_ph$.txt",
                      outputPath=":{dw.f.work}/out/$drmaa_incr_ph$.out")
        os.makedirs({dw.f.path("out")!r})
        ids = s.runBulkJobs(jt, 1, 50, 1)
        # drmaa_run_job()'s job has no index; a template's own variable wins
        one = s.runJob(template(s, 'echo "[$DRMAA_BULK_INDEX]"',
                                outputPath=":{dw.f.work}/one.out"))
        own = s.runBulkJobs(template(s, 'echo "$DRMAA_BULK_INDEX"',
                                     outputPath=":{dw.f.work}/own.$drmaa_incr_ph$.out",
                                     jobEnvironment={{"DRMAA_BULK_INDEX": "mine"}}), 3, 3, 1)
        s.synchronize([drmaa.Session.JOB_IDS_SESSION_ALL], 60, False)
        out(dict(ids=ids, states=sorted(set(s.jobStatus(j) for j in ids)),
                 first=s.wait(ids[0], 0).exitStatus))
    ''')
    assert len(r["ids"]) == 50 and len(set(r["ids"])) == 50
    assert r["states"] == ["done"] and r["first"] == 0
    for i in range(1, 51):
        with open(dw.f.path("out", f"{i}.out")) as fh:
            assert fh.read() == f"input {i}\ndone {i}\n"
    with open(dw.f.path("one.out")) as fh:
        assert fh.read() == "[]\n"
    with open(dw.f.path("own.3.out")) as fh:
        assert fh.read() == "mine\n"


def test_hold_release_on_a_queued_job(dw):
    dw.slots(1)
    r = dw.run('''
    with drmaa.Session() as s:
        blocker = s.runJob(template(s, "sleep 60"))
        state(s, blocker, "running")
        queued = s.runJob(template(s, "exit 0"))
        seen = [s.jobStatus(queued)]
        s.control(queued, drmaa.JobControlAction.HOLD)
        seen.append(s.jobStatus(queued))
        again = raises(HoldInconsistentStateException, s.control, blocker,
                       drmaa.JobControlAction.HOLD)
        s.control(queued, drmaa.JobControlAction.RELEASE)
        seen.append(s.jobStatus(queued))
        norel = raises(ReleaseInconsistentStateException, s.control, queued,
                       drmaa.JobControlAction.RELEASE)
        s.control(blocker, drmaa.JobControlAction.TERMINATE)
        info = s.wait(queued, 30)
        out(dict(seen=seen, again=again, norel=norel, exited=info.hasExited,
                 status=s.jobStatus(queued), blocker=s.jobStatus(blocker)))
    ''')
    assert r["seen"] == ["queued_active", "user_on_hold", "queued_active"]
    assert "code 21" in r["again"] and "code 22" in r["norel"]
    assert r["exited"] and r["status"] == "done" and r["blocker"] == "failed"


def test_suspend_resume_terminate_running_job(dw):
    r = dw.run('''
    with drmaa.Session() as s:
        jid = s.runJob(template(s, "sleep 60"))
        held = s.runJob(template(s, "true", jobSubmissionState="drmaa_hold"))
        state(s, jid, "running")
        seen = [s.jobStatus(held)]
        s.control(jid, drmaa.JobControlAction.SUSPEND)
        seen.append(s.jobStatus(jid))
        notrun = raises(SuspendInconsistentStateException, s.control, held,
                        drmaa.JobControlAction.SUSPEND)
        s.control(jid, drmaa.JobControlAction.RESUME)
        seen.append(s.jobStatus(jid))
        notsusp = raises(ResumeInconsistentStateException, s.control, jid,
                         drmaa.JobControlAction.RESUME)
        s.control(drmaa.Session.JOB_IDS_SESSION_ALL, drmaa.JobControlAction.TERMINATE)
        s.synchronize([jid, held], 30, True)
        seen += [raises(InvalidJobException, s.jobStatus, j) for j in (jid, held)]
        out(dict(seen=seen, notrun=notrun, notsusp=notsusp))
    ''')
    assert r["seen"][:3] == ["user_on_hold", "user_suspended", "running"]
    # disposed of by the synchronize: gone from ferry too
    assert "code 18" in r["seen"][3] and "code 18" in r["seen"][4]
    assert "code 20" in r["notrun"] and "not running" in r["notrun"]
    assert "code 19" in r["notsusp"]


def test_control_all_passes_over_jobs_it_does_not_apply_to(dw):
    """The binding applies the action to all the session's jobs: those it
    does not apply to (a held one to suspend) are no error."""
    r = dw.run('''
    with drmaa.Session() as s:
        run = s.runJob(template(s, "sleep 60"))
        held = s.runJob(template(s, "sleep 60", jobSubmissionState="drmaa_hold"))
        state(s, run, "running")
        s.control(drmaa.Session.JOB_IDS_SESSION_ALL, drmaa.JobControlAction.SUSPEND)
        seen = [s.jobStatus(run), s.jobStatus(held)]
        s.control(drmaa.Session.JOB_IDS_SESSION_ALL, drmaa.JobControlAction.RELEASE)
        seen += [s.jobStatus(run), s.jobStatus(held)]
        s.control(drmaa.Session.JOB_IDS_SESSION_ALL, drmaa.JobControlAction.TERMINATE)
        s.synchronize([run, held], 30, True)
        out(seen)
    ''')
    assert r[:2] == ["user_suspended", "user_on_hold"], r
    assert r[2] == "user_suspended" and r[3] in ("queued_active", "running"), r


def test_jobs_disposed_of_outside_the_session(dw):
    """`ferry dispose` of the session's jobs: a synchronize of all of them
    returns, and a wait for any knows there is none left to wait for."""
    r = dw.run(f'''
    import subprocess
    with drmaa.Session() as s:
        ids = [s.runJob(template(s, "sleep 60")) for _ in range(2)]
        state(s, ids[0], "running")
        subprocess.run([{FERRY_BIN!r}, "dispose", *ids], check=True, capture_output=True)
        t0 = time.monotonic()
        s.synchronize([drmaa.Session.JOB_IDS_SESSION_ALL], 20, False)
        sync = time.monotonic() - t0
        none = raises(InvalidJobException, s.wait, drmaa.Session.JOB_IDS_SESSION_ANY, 20)
        out(dict(sync=sync, none=none, took=time.monotonic() - t0))
    ''')
    assert r["sync"] < 10 and r["took"] < 10, r
    assert "code 18" in r["none"] and "no job left" in r["none"], r


def test_synchronize_with_and_without_dispose(dw):
    r = dw.run('''
    with drmaa.Session() as s:
        a = s.runJob(template(s, "exit 4"))
        b = s.runJob(template(s, "exit 5"))
        s.synchronize([a], 30, False)
        kept = s.wait(a, 0).exitStatus
        reaped = raises(InvalidJobException, s.wait, a, 0)
        s.synchronize([b], 30, True)
        gone = raises(InvalidJobException, s.wait, b, 0)
        slow = s.runJob(template(s, "sleep 60"))
        t0 = time.monotonic()
        timeout = raises(ExitTimeoutException, s.synchronize, [slow], 1, True)
        took = time.monotonic() - t0
        nowait = raises(ExitTimeoutException, s.wait, slow, drmaa.Session.TIMEOUT_NO_WAIT)
        s.control(slow, drmaa.JobControlAction.TERMINATE)
        out(dict(a=a, b=b, kept=kept, reaped=reaped, gone=gone, took=took,
                 slow=s.jobStatus(slow) in ("running", "failed")))
    ''')
    assert r["kept"] == 4 and "code 18" in r["reaped"] and "code 18" in r["gone"]
    assert 0.9 <= r["took"] < 5 and r["slow"]
    assert dw.f.state(int(r["a"])) == "failed"  # waited, not disposed: ferry keeps it
    cp = dw.f.run("status", r["b"], check=False)
    assert cp.returncode != 0 and f"no job {r['b']}" in cp.stdout + cp.stderr


def test_wait_any_of_the_session(dw):
    r = dw.run('''
    with drmaa.Session() as s:
        ids = [s.runJob(template(s, f"exit {n}")) for n in (1, 2)]
        got = [s.wait(drmaa.Session.JOB_IDS_SESSION_ANY, 30) for _ in ids]
        none = raises(InvalidJobException, s.wait, drmaa.Session.JOB_IDS_SESSION_ANY, 0)
        out(dict(ids=ids, got=sorted([g.jobId, g.exitStatus] for g in got), none=none))
    ''')
    assert r["got"] == [[r["ids"][0], 1], [r["ids"][1], 2]] and "code 18" in r["none"]


def test_job_id_waited_on_in_a_later_session(dw):
    """Ids stay valid after the session: a later one, in another process,
    waits on, queries and controls the jobs of the first."""
    first = dw.run('''
    s = drmaa.Session()
    s.initialize()
    jid = s.runJob(template(s, "sleep 1; exit 7"))
    held = s.runJob(template(s, "sleep 60", jobSubmissionState="drmaa_hold"))
    s.exit()
    out([jid, held])
    ''')
    r = dw.run(f'''
    with drmaa.Session() as s:
        jid, held = {first!r}
        i = s.wait(jid, 30)
        seen = [s.jobStatus(held)]
        s.control(held, drmaa.JobControlAction.RELEASE)
        state(s, held, "running")
        s.control(held, drmaa.JobControlAction.SUSPEND)
        seen.append(s.jobStatus(held))
        s.control(held, drmaa.JobControlAction.TERMINATE)
        h = s.wait(held, 30)
        out([i.jobId, i.hasExited, i.exitStatus, seen, h.hasSignal])
    ''')
    assert r == [first[0], True, 7, ["user_on_hold", "user_suspended"], True], r


def test_errors_map_to_the_spec_codes(dw):
    r = dw.run(f'''
    res = {{}}
    s = drmaa.Session()
    res["before"] = raises(NoActiveSessionException, s.createJobTemplate)
    res["before_ps"] = raises(NoActiveSessionException, s.jobStatus, "1")
    res["contact"] = raises(InvalidContactStringException, s.initialize, "no-such-resource")
    s.initialize()
    res["second"] = raises(AlreadyActiveSessionException, s.initialize)
    jt = s.createJobTemplate()
    def setattr_(k, v):
        setattr(jt, k, v)
    res["js_state"] = raises(InvalidAttributeValueException, setattr_, "jobSubmissionState", "x")
    res["native"] = raises(InvalidAttributeValueException, setattr_, "nativeSpecification",
                           "--bogus 1")
    res["email"] = raises(InvalidAttributeValueException, setattr_, "email", ["a@b.c"])
    res["start"] = raises(InvalidAttributeValueException, setattr_, "startTime", "12:00")
    res["deadline"] = raises(InvalidArgumentException, setattr_, "deadlineTime", "12:00")
    res["walltime0"] = raises(InvalidAttributeValueException, setattr_, "nativeSpecification",
                              "--walltime 0")
    jt.nativeSpecification = "--cpus 1 --memory=64M --queue ''"
    # set on the library: python3-drmaa 0.7.9's IntConverter sends bytes(n), n NULs
    lib = ctypes.CDLL(os.environ["DRMAA_LIBRARY_PATH"])
    diag = ctypes.create_string_buffer(1024)
    rc = lib.drmaa_set_attribute(jt._jt, b"drmaa_wct_hlimit", b"1:99", diag,
                                 ctypes.c_size_t(1024))
    res["wct"] = f"code {{rc}}: {{diag.value.decode()}}"
    res["transfer"] = raises(InvalidAttributeValueException, setattr_, "transferFiles", "iox")
    res["transfer2"] = raises(InvalidAttributeValueException, setattr_, "transferFiles", "oo")
    res["unknown_id"] = raises(InvalidJobException, s.wait, "999999", 0)
    res["bad_id"] = raises(InvalidJobException, s.jobStatus, "abc")
    # what python-drmaa cannot reach: an attribute name, a diagnosis buffer too small
    small = ctypes.create_string_buffer(b"x" * 15, 16)
    rc = lib.drmaa_set_attribute(jt._jt, b"drmaa_no_such", b"1", small, ctypes.c_size_t(8))
    res["name"] = [rc, small.raw.decode()]
    rc = lib.drmaa_init(None, small, ctypes.c_size_t(8))
    res["second_small"] = [rc, small.value.decode()]
    res["zero"] = lib.drmaa_init(None, None, ctypes.c_size_t(0))
    jt.remoteCommand = "/bin/true"
    jt.nativeSpecification = "--cpus 99999"
    res["cpus"] = raises(DeniedByDrmException, s.runJob, jt)
    names = sorted(jt.attributeNames)
    s.exit()
    res["after"] = raises(NoActiveSessionException, s.exit)
    res["names"] = names
    out(res)
    ''')
    for key in ("before", "before_ps", "after"):
        assert "code 5" in r[key] and "drmaa_init" in r[key], r[key]
    assert "code 7" in r["contact"] and "no-such-resource" in r["contact"]
    assert "code 11" in r["second"]
    for key in ("js_state", "native", "email", "start", "wct"):
        assert "code 14" in r[key], (key, r[key])
    assert "1:99" in r["wct"] and "--walltime 0" in r["walltime0"]
    for key in ("transfer", "transfer2"):
        assert "code 14" in r[key] and "i, o and e" in r[key], r[key]
    assert "--bogus" in r["native"] and "mail" in r["email"]
    assert "code 4" in r["deadline"] and "does not support" in r["deadline"]
    assert "code 18" in r["unknown_id"] and "code 18" in r["bad_id"]
    # 7 characters and the NUL: cut short, terminated, nothing written past it
    assert r["name"] == [4, "'drmaa_\0xxxxxxx\0"]
    assert r["second_small"] == [11, "a sessi"] and r["zero"] == 11
    assert "code 17" in r["cpus"] and "cpus" in r["cpus"]
    assert "drmaa_remote_command" in r["names"] and "drmaa_wct_hlimit" in r["names"]
    assert "drmaa_deadline_time" not in r["names"]
    assert "drmaa_transfer_files" in r["names"]


def test_c_client_every_call(dw):
    """The binding from C: iterators, buffers, refusals; under the sanitizer
    build with leak detection, which python cannot have."""
    cp = subprocess.run([os.path.join(BUILD_DIR, "tests", "drmaa_client"), dw.f.work],
                        env=dw.f.env, cwd=dw.f.work, capture_output=True, text=True,
                        timeout=60)
    assert cp.returncode == 0 and cp.stdout == "ok\n", cp.stdout + cp.stderr
    with open(dw.f.path("c0.out")) as fh:
        assert fh.read() == "y a\n"
    with open(dw.f.path("c0.err")) as fh:
        assert fh.read() == "e\n"
    for i in (1, 3, 5):
        with open(dw.f.path(f"c{i}.out")) as fh:
            assert fh.read() == "y a\n"
    assert not os.path.exists(dw.f.path("c2.out"))


def test_calls_of_other_threads_go_on_during_a_wait(dw):
    """A wait has a connection of its own: libferry serialises the calls
    on one, and a wait on the session's held every other thread's calls
    until the job ended. The samples are taken once the wait has opened
    its connection (a socket more in the process) and while it still
    waits for a job that ends only when terminated."""
    r = dw.run('''
    import threading
    def sockets():
        n = 0
        for fd in os.listdir("/proc/self/fd"):
            try:
                n += os.readlink(f"/proc/self/fd/{fd}").startswith("socket:")
            except OSError:
                pass
        return n
    with drmaa.Session() as s:
        jid = s.runJob(template(s, "sleep 30"))
        state(s, jid, "running")
        before = sockets()
        got = {}
        th = threading.Thread(target=lambda: got.update(i=s.wait(jid, 60)))
        th.start()
        until(lambda: sockets() > before, "the wait's own connection")
        lat = []
        for _ in range(40):
            t0 = time.monotonic()
            s.jobStatus(jid)
            lat.append(time.monotonic() - t0)
            time.sleep(0.05)
        waiting = th.is_alive()
        s.control(jid, drmaa.JobControlAction.TERMINATE)
        th.join()
        out(dict(lat=max(lat), waiting=waiting, ended=not got["i"].hasExited))
    ''')
    assert r["waiting"] and r["ended"] and r["lat"] < 0.8, r


def test_session_on_an_ssh_resource(request):
    """The contact string names a resource reached over ssh (this host's
    test sshd); NULL takes $FERRY_RESOURCE as the ferry command does."""
    f = ferry_world(request, "ssh")
    w = DrmaaWorld(f)
    r = w.run(f'''
    with drmaa.Session() as s:
        jid = s.runJob(template(s, "echo $0 on ssh; exit 5", "job",
                                outputPath=":{f.work}/ssh.out"))
        i = s.wait(jid, 60)
        first = s.contact
    s = drmaa.Session()
    s.initialize("remote")
    out(dict(first=first, contact=s.contact, id=jid, exited=i.hasExited, status=i.exitStatus,
             usage=sorted(i.resourceUsage), again=s.jobStatus(jid)))
    s.exit()
    ''', timeout=120)
    assert r["first"] == "remote" and r["contact"] == "remote", r
    assert r["exited"] and r["status"] == 5, r
    assert "wallclock" in r["usage"] and r["again"] == "failed"
    with open(f.path("ssh.out")) as fh:
        assert fh.read() == "job on ssh\n"


def test_output_and_error_paths_naming_a_directory(dw):
    """A path naming a directory (it exists, or ends in '/') gets a file in
    it, as Grid Engine does and Snakemake's --drmaa-log-dir relies on:
    NAME.o / NAME.e, NAME.o.INDEX in a bulk; NAME is the job name, or the
    command's last component. A directory used to fail the job ("Is a
    directory")."""
    logs = dw.f.path("logs")
    os.makedirs(logs)
    r = dw.run(f'''
    with drmaa.Session() as s:
        one = s.runJob(template(s, "echo out; echo err >&2", jobName="a/b",
                                outputPath=":{logs}", errorPath=":{logs}"))
        anon = s.runJob(template(s, "echo anon", outputPath=":{logs}/"))
        # joined: the error stream goes to the output file, the error path is ignored
        bulk = s.runBulkJobs(template(s, "echo bulk; echo berr >&2", jobName="blk",
                                      joinFiles=True, outputPath=":$drmaa_wd_ph$/logs",
                                      errorPath=":$drmaa_wd_ph$/logs"), 1, 2, 1)
        # a trailing '/' names a directory, which must exist as for any path
        new = raises(InvalidAttributeValueException, s.runJob,
                     template(s, "true", outputPath=":{logs}/new/"))
        s.synchronize([drmaa.Session.JOB_IDS_SESSION_ALL], 30, False)
        out(dict(one=s.wait(one, 0).exitStatus, anon=s.wait(anon, 0).exitStatus,
                 bulk=[s.wait(b, 0).exitStatus for b in bulk], new=new))
    ''')
    assert r["one"] == 0 and r["anon"] == 0 and r["bulk"] == [0, 0], r
    assert f"{logs}/new/sh.o" in r["new"] and "does not exist" in r["new"], r
    want = {"a_b.o": "out\n", "a_b.e": "err\n", "sh.o": "anon\n", "blk.o.1": "bulk\nberr\n",
            "blk.o.2": "bulk\nberr\n"}
    assert sorted(os.listdir(logs)) == sorted(want)
    for name, text in want.items():
        with open(os.path.join(logs, name)) as fh:
            assert fh.read() == text, name


def test_a_paths_hostname(dw):
    """[hostname]:path as the binding has it: without drmaa_transfer_files
    the file is on the job's host whatever the hostname; with it, the
    caller's host may be named (ferry transfers its files), another host
    is refused at the submit, naming it."""
    work = dw.f.work
    r = dw.run(f'''
    import socket
    with drmaa.Session() as s:
        jid = s.runJob(template(s, "echo there", outputPath="node7:{work}/h.out"))
        i = s.wait(jid, 30)
        far = raises(InvalidAttributeValueException, s.runJob,
                     template(s, "echo x", outputPath="node7:{work}/t.out", transferFiles="o"))
        me = socket.gethostname().split(".")[0]
        jid = s.runJob(template(s, "echo here", outputPath=me + ":{work}/m.out",
                                transferFiles="o"))
        j = s.wait(jid, 30)
    out([i.exitStatus, open("{work}/h.out").read(), far, j.exitStatus,
         open("{work}/m.out").read()])
    ''')
    assert r[0] == 0 and r[1] == "there\n" and r[3] == 0 and r[4] == "here\n", r
    assert "code 14" in r[2] and "host 'node7' is not supported" in r[2], r[2]
    assert not os.path.exists(dw.f.path("t.out"))


def test_transfer_files_send_inputs_and_retrieve_outputs(dw):
    """drmaa_transfer_files: the files named go through ferry's transfers
    (`ferry submit --in/--out`'s calls): an input is sent before the job,
    which reads the engine's copy; an output is written by the job to the
    engine's copy and retrieved to its path by the first call that sees the
    job ended: drmaa_job_ps of a job of the session, drmaa_wait or
    drmaa_synchronize, in the session or (a wait) in a later one."""
    work = dw.f.work
    with open(dw.f.path("in.txt"), "w") as fh:
        fh.write("hello\n")
    for i in (1, 2, 3):
        with open(dw.f.path(f"b{i}.in"), "w") as fh:
            fh.write(f"bulk {i}\n")
    with open(dw.f.path("m1.in"), "w") as fh:
        fh.write("m1\n")
    os.makedirs(dw.f.path("logs"))
    # a path ferry transfers is the client's: $drmaa_hd_ph$ is the client's home there
    with open(os.path.join(dw.f.home, "hin.txt"), "w") as fh:
        fh.write("from home\n")
    first = dw.run(f'''
    with drmaa.Session() as s:
        jt = template(s, "cat; echo err >&2", inputPath=":{work}/in.txt",
                      outputPath=":{work}/out.txt", errorPath=":{work}/logs/",
                      jobName="xf", transferFiles="ioe")
        jid = s.runJob(jt)
        # the job_ps that sees the end retrieves them: a client that polls
        # and never waits finds them (Snakemake's --drmaa polls so)
        state(s, jid, "done")
        with open("{work}/out.txt") as fh:
            out_ = fh.read()
        with open("{work}/logs/xf.e") as fh:
            err = fh.read()
        # fetched once: the wait after it leaves what the client made of them
        with open("{work}/out.txt", "w") as fh:
            fh.write("edited\\n")
        i = s.wait(jid, 30)
        with open("{work}/out.txt") as fh:
            edited = fh.read()
        bulk = s.runBulkJobs(template(s, "cat", inputPath=":{work}/b$drmaa_incr_ph$.in",
                                      outputPath=":{work}/b$drmaa_incr_ph$.out",
                                      joinFiles=True, transferFiles="io"), 1, 3, 1)
        s.synchronize([drmaa.Session.JOB_IDS_SESSION_ALL], 60, True)
        missing = raises(InvalidAttributeValueException, s.runJob,
                         template(s, "cat", inputPath=":{work}/nope.txt", transferFiles="i"))
        # m1.in is sent, m2.in does not exist: no job, and m1.in's copy is removed
        partial = raises(InvalidAttributeValueException, s.runBulkJobs,
                         template(s, "cat", inputPath=":{work}/m$drmaa_incr_ph$.in",
                                  transferFiles="i"), 1, 2, 1)
        hd = s.runJob(template(s, "cat", inputPath=":$drmaa_hd_ph$/hin.txt",
                               outputPath=":{work}/hd.out", transferFiles="i"))
        hd_status = s.wait(hd, 30).exitStatus
        later = s.runJob(template(s, "echo later", outputPath=":{work}/later.out",
                                  transferFiles="o"))
        out(dict(jid=jid, status=i.exitStatus, out=out_, err=err, edited=edited,
                 missing=missing, later=later, hd=hd_status, partial=partial))
    ''')
    assert first["status"] == 0 and first["edited"] == "edited\n", first
    assert first["out"] == "hello\n" and first["err"] == "err\n", first
    assert "code 14" in first["missing"] and "nope.txt" in first["missing"], first
    assert "cannot send" in first["missing"], first
    assert "m2.in" in first["partial"], first
    sent = [p for t in dw.f.json("transfers") for p in t["local_paths"]]
    assert dw.f.path("in.txt") in sent and dw.f.path("m1.in") not in sent, sent
    for i in (1, 2, 3):
        with open(dw.f.path(f"b{i}.out")) as fh:
            assert fh.read() == f"bulk {i}\n"
    assert first["hd"] == 0
    with open(dw.f.path("hd.out")) as fh:
        assert fh.read() == "from home\n"
    j = dw.f.info(int(first["jid"]))
    # the job used the engine's copies, which ferry knows as its transfers
    assert j["stdin_path"] != dw.f.path("in.txt"), j
    assert j["referenced_input_files"] == [j["stdin_path"]], j
    assert sorted(j["referenced_output_files"]) == sorted([j["stdout_path"],
                                                           j["stderr_path"]]), j
    # an output staged in one session is retrieved by a wait in a later one
    assert not os.path.exists(dw.f.path("later.out"))
    r = dw.run(f'''
    with drmaa.Session() as s:
        out(s.wait({first["later"]!r}, 30).exitStatus)
    ''')
    assert r == 0
    with open(dw.f.path("later.out")) as fh:
        assert fh.read() == "later\n"
