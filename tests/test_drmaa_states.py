"""States Grid Engine leaves to others or cannot tell (issue 18), through
the DRMAA backend: a job held (`qhold -h s`) or suspended (`qmod -sj`) by
the administrator outside ferry, jobs while qmaster cannot be reached
(undetermined, then their real state again) and the DRMAA paths that end
a job finished_unclear_condition. Against the real single-node Grid
Engine of tests/cluster/start-sge.sh; the tests run as root, its
administrator."""
import os
import shutil
import socket
import sqlite3
import subprocess
import threading

import pytest

import conftest
from conftest import as_admin, drms_world, handed_native_id, new_base, poll, steady

pytestmark = [pytest.mark.usefixtures("sge"), pytest.mark.xdist_group("sge")]


@pytest.fixture
def fs(request):
    def cancel(natives):
        numbers = sorted({n.split(".")[0] for n in natives})
        subprocess.run(["qdel", *numbers], capture_output=True, timeout=60)
    yield from drms_world(new_base("fy-sgst-"), "sge", conftest.sge_section(), cancel)


def test_admin_hold_and_suspend_outside_ferry(fs):
    """qhold -h s / qrls -h s and qmod -sj / qmod -usj by the administrator:
    a job ferry holds is user_system_on_hold, then user_on_hold again; a
    running job is
    system_suspended (Grid Engine's job_ps says USER_SUSPENDED for any
    qmod -sj: the suspension is not ferry's), then running; ferry's own
    stop stays user_suspended."""
    held = fs.submit("sleep", "300", opts=("--hold",))
    run = fs.submit("sleep", "300")
    n_held, n_run = handed_native_id(fs, held), handed_native_id(fs, run)
    fs.wait_state(run, "running", timeout=120)
    fs.wait_state(held, "user_on_hold", timeout=30)

    as_admin("qhold", "-h", "s", n_held)
    as_admin("qmod", "-sj", n_run)
    fs.wait_state(held, "user_system_on_hold")
    fs.wait_state(run, "system_suspended")
    fs.run("restart", str(run), check=False)  # not ferry's suspension to undo
    steady(fs, run, "system_suspended", 1.5)
    as_admin("qrls", "-h", "s", n_held)
    as_admin("qmod", "-usj", n_run)
    fs.wait_state(held, "user_on_hold")
    fs.wait_state(run, "running")
    fs.run("stop", str(run))
    fs.wait_state(run, "user_suspended")
    steady(fs, run, "user_suspended", 1.5)
    fs.run("restart", str(run))
    fs.wait_state(run, "running")
    fs.run("kill", str(held), str(run))


def test_admin_system_hold_of_a_queued_job(fs):
    """The administrator's hold alone: a job ferry submitted held (a queued
    one runs before the administrator can catch it on an idle cluster),
    held by the administrator too (user_system_on_hold), then released by
    ferry, is system_on_hold and does not run; qrls -h s lets it run."""
    jid = fs.submit("sleep", "300", opts=("--hold",))
    native = handed_native_id(fs, jid)
    fs.wait_state(jid, "user_on_hold", timeout=30)
    as_admin("qhold", "-h", "s", native)
    fs.wait_state(jid, "user_system_on_hold")
    fs.run("release", str(jid))
    fs.wait_state(jid, "system_on_hold")
    steady(fs, jid, "system_on_hold", 2)
    as_admin("qrls", "-h", "s", native)
    fs.wait_state(jid, "running", timeout=60)
    fs.run("kill", str(jid))


class _Link:
    """Fault injector: a TCP relay between the engine's DRMAA library and
    qmaster (the engine is started with SGE_QMASTER_PORT = the relay's
    port). cut() closes it and every connection through it (qmaster then
    refuses the library, as when it is down or unreachable); mend() opens
    it again. qmaster itself cannot be made unreachable for one client."""

    def __init__(self, target):
        self.target = target
        self.port = None
        self.lsock = None
        self.conns = []
        self.lock = threading.Lock()
        self.mend()

    def mend(self):
        s = socket.socket()
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind(("0.0.0.0", self.port or 0))
        s.listen(16)
        self.port = s.getsockname()[1]
        self.lsock = s
        self.down = False
        threading.Thread(target=self._accept, args=(s,), daemon=True).start()

    def cut(self):
        with self.lock:
            self.down = True
            try:  # wakes the accept() in progress: a close alone does not
                self.lsock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            self.lsock.close()
            for c in self.conns:
                try:
                    c.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
                c.close()
            self.conns = []

    def _accept(self, lsock):
        while True:
            try:
                a, _ = lsock.accept()
            except OSError:
                return
            try:
                b = socket.create_connection(self.target)
            except OSError:
                a.close()
                continue
            with self.lock:
                if self.down:
                    a.close()
                    b.close()
                    return
                self.conns += [a, b]
            for x, y in ((a, b), (b, a)):
                threading.Thread(target=self._pump, args=(x, y), daemon=True).start()

    @staticmethod
    def _pump(x, y):
        try:
            while True:
                d = x.recv(65536)
                if not d:
                    break
                y.sendall(d)
        except OSError:
            pass
        for s in (x, y):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


def _qmaster_port():
    p = os.environ.get("SGE_QMASTER_PORT")
    if p:
        return int(p)
    try:
        return socket.getservbyname("sge_qmaster")
    except OSError:
        return 6444


def _qacct_late(f):
    """Fault injector: fault/qacct, first on the engine's PATH, says "not
    found" for a job named in the file it returns ("ID N": the next N
    calls; "ID always"), as Grid Engine's accounting does until the
    record of an end is written, and runs the real qacct otherwise."""
    bindir = os.path.join(f.base, "fault")
    os.makedirs(bindir, exist_ok=True)
    hide = f.path("qacct-hide")
    p = os.path.join(bindir, "qacct")
    with open(p, "w") as fh:
        fh.write(f"#!/bin/sh\n# fault injector of {__name__}: a record not written yet\n"
                 f'n=$(sed -n "s/^$2 //p" {hide} 2>/dev/null)\n'
                 'if [ -n "$n" ] && [ "$n" != 0 ]; then\n'
                 f'  [ "$n" = always ] || sed -i "s/^$2 .*/$2 $((n - 1))/" {hide}\n'
                 '  echo "error: job id $2 not found" >&2\n  exit 1\nfi\n'
                 f'exec {shutil.which("qacct")} "$@"\n')
    os.chmod(p, 0o755)
    f.env["PATH"] = bindir + os.pathsep + f.env["PATH"]
    return hide


def test_unreachable_qmaster_makes_jobs_undetermined_then_real_again(fs):
    """While the engine's link to qmaster is cut, drmaa_job_ps fails: its
    jobs are undetermined and none ends; once the link is mended each is in
    its real state again. The ones that ended meanwhile are reported by
    libdrmaa without rusage, so their ends come from accounting: one whose
    record qacct writes late (fault/qacct) is undetermined until it is
    there and ends as Grid Engine says; one whose record never comes ends
    finished_unclear_condition, as it ran."""
    link = _Link((socket.gethostname(), _qmaster_port()))
    fs.env["SGE_QMASTER_PORT"] = str(link.port)
    hide = _qacct_late(fs)
    go = fs.path("go")
    run = fs.submit("sleep", "300")
    held = fs.submit("sleep", "300", opts=("--hold",))
    ends = fs.submit("sh", "-c", f"while [ ! -e {go} ]; do sleep 0.1; done; exit 3")
    lost = fs.submit("sh", "-c", f"while [ ! -e {go} ]; do sleep 0.1; done; exit 4")
    for j in (run, ends, lost):
        fs.wait_state(j, "running", timeout=120)
    fs.wait_state(held, "user_on_hold", timeout=30)
    with open(hide, "w") as fh:
        fh.write(f"{handed_native_id(fs, ends).split('.')[0]} 2\n"
                 f"{handed_native_id(fs, lost).split('.')[0]} always\n")
    try:
        link.cut()
        for j in (run, held, ends, lost):
            fs.wait_state(j, "undetermined", timeout=60)
        open(go, "w").close()
        steady(fs, ends, "undetermined", 3)
    finally:
        link.mend()
    # libdrmaa's link comes back at its own pace: a call the cut caught waits
    # for its gdi timeout (60 s) first; the end comes from qacct, late on a
    # loaded machine
    fs.wait_state(run, "running", timeout=180)
    fs.wait_state(held, "user_on_hold", timeout=60)
    info = fs.wait_ended(ends, timeout=180)
    assert info["exit_status"] == "finished_regularly" and info["exit_value"] == 3, info
    with open(hide) as fh:
        assert fh.read().startswith(f"{info['native_id'].split('.')[0]} 0\n")  # asked 3 times
    info = fs.wait_ended(lost, timeout=60)
    assert info["exit_status"] == "finished_unclear_condition", info
    assert "which ran, and keeps no accounting record of it" in info["message"], info
    fs.run("kill", str(run), str(held))
    link.cut()


def _failing(f, command):
    """Fault injector: fault/COMMAND, first on the engine's PATH, always fails."""
    bindir = os.path.join(f.base, "fault")
    os.makedirs(bindir, exist_ok=True)
    p = os.path.join(bindir, command)
    with open(p, "w") as fh:
        fh.write(f"#!/bin/sh\n# fault injector of {__name__}\n"
                 f'echo "error: {command} fails (fault injected by the test)" >&2\nexit 1\n')
    os.chmod(p, 0o755)
    f.env["PATH"] = bindir + os.pathsep + f.env["PATH"]


def test_earlier_session_job_with_accounting_unreadable_ends_unclear(fs):
    """A job of an earlier engine (DRMAA cannot reap it) that ended while
    qacct fails: undetermined for the grace polls, then
    finished_unclear_condition, saying the DRM keeps no record ferry can
    read."""
    go = fs.path("go")
    jid = fs.submit("sh", "-c", f"while [ ! -e {go} ]; do sleep 0.1; done; exit 3")
    native = handed_native_id(fs, jid)
    fs.wait_state(jid, "running", timeout=120)
    fs.run("daemon", "stop")
    open(go, "w").close()
    poll(lambda: subprocess.run(["qstat", "-j", native.split(".")[0]], capture_output=True)
         .returncode != 0, timeout=60, what=f"{native} gone from qstat")
    _failing(fs, "qacct")
    fs.run("ping")
    fs.wait_state(jid, "undetermined", timeout=30)
    info = fs.wait_ended(jid, timeout=30)
    assert info["exit_status"] == "finished_unclear_condition", info
    assert "keeps no record ferry can read" in info["message"], info


def test_engine_stopped_while_handing_ends_unclear(fs):
    """A job the last engine was handing to DRMAA when it died, whose
    script never ran: DRMAA cannot list jobs, so it is not submitted again
    and ends finished_unclear_condition. The engine's death is staged: the
    job's native id is set back to '?' (handing) in the database, as an
    engine killed between recording its intent and DRMAA's answer leaves
    it, and its Grid Engine copy is deleted first."""
    jid = fs.submit("sleep", "300", opts=("--hold",))
    native = handed_native_id(fs, jid)
    fs.wait_state(jid, "user_on_hold", timeout=30)
    fs.run("daemon", "stop")
    as_admin("qdel", native.split(".")[0])
    db = sqlite3.connect(os.path.join(fs.state_dir, "ferry.db"))
    db.execute("UPDATE jobs SET native_id = '?' WHERE id = ?", (jid,))
    db.commit()
    db.close()
    info = fs.wait_ended(jid, timeout=60)
    assert info["exit_status"] == "finished_unclear_condition", info
    assert "whether the DRM ran it is not known" in info["message"], info
