"""The C API tests (tests/test_api.c), one engine per test, on the local
socket and through ssh (the test sshd, as root, to this host's engine)."""
import os
import signal
import subprocess
import tempfile
import time

import pytest

from conftest import (SANITIZER_FOUND, kill_procs_mentioning, remote_section, sanitizer_reports,
                      sge_section, slurm_section)

BUILD = os.environ.get("FERRY_BUILD_DIR", os.path.join(os.path.dirname(__file__), "..", "build"))
BUILD = os.path.abspath(BUILD)
TEST_API = os.path.join(BUILD, "tests", "test_api")


def _names():
    if not os.path.exists(TEST_API):
        return ["missing-build"]
    out = subprocess.run([TEST_API, "--list"], capture_output=True, text=True, check=True)
    return out.stdout.split()


def _stop_engine(state, resource):
    pidfile = os.path.join(state, "ferry", resource, "ferryd.pid")
    try:
        pid = int(open(pidfile).read())
    except (OSError, ValueError):
        return
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    for _ in range(100):
        try:
            with open(f"/proc/{pid}/stat") as f:
                if ") Z" in f.read():
                    return
        except OSError:
            return
        time.sleep(0.05)
    os.kill(pid, signal.SIGKILL)


@pytest.mark.parametrize("transport", ["local", "ssh", "slurm",
                                       pytest.param("drmaa", marks=pytest.mark.xdist_group("sge"))])
@pytest.mark.parametrize("name", _names())
def test_capi(request, name, transport):
    assert os.path.exists(TEST_API), f"build the project first: {TEST_API} is missing"
    with tempfile.TemporaryDirectory(prefix="ferry-capi-", dir="/tmp") as tmp:
        state, cfg, work = (os.path.join(tmp, d) for d in ("state", "config", "work"))
        os.makedirs(os.path.join(cfg, "ferry"))
        os.makedirs(work)
        # the translation file of t_translate_path, on every resource
        tr = os.path.join(work, "capi.translation")
        with open(tr, "w") as f:
            f.write("u1 /the/place of u1\nu2\n")
        keys = {"path_translation_files": f"capi{{{tr}}}"}
        conf = "[local]\nscheduler = local\nslots = 2\n" + \
            f"path_translation_files = {keys['path_translation_files']}\n"
        env = dict(os.environ, XDG_STATE_HOME=state, XDG_CONFIG_HOME=cfg,
                   FERRYD=os.path.join(BUILD, "ferryd"), FERRY_TEST_TMP=work)
        resource = "local"
        if transport == "ssh":
            resource = "remote"
            conf += remote_section("remote", tmp, request.getfixturevalue("sshd"), slots=2,
                                   **keys)
            env["FERRY_TEST_RESOURCE"] = resource
            env["FERRY_TEST_REMOTE"] = "1"
        if transport == "slurm":
            request.getfixturevalue("slurm")
            resource = "slurm"
            conf += slurm_section(**keys)
            env["FERRY_TEST_RESOURCE"] = resource
            env["FERRY_TEST_SCHEDULER"] = "slurm"
        if transport == "drmaa":
            info = request.getfixturevalue("sge")
            resource = "sge"
            conf += sge_section(**keys)
            env.update(FERRY_TEST_RESOURCE=resource, FERRY_TEST_SCHEDULER="drmaa",
                       FERRY_TEST_SLOTS=info["SGE_TEST_SLOTS"], SGE_ROOT=os.environ["SGE_ROOT"],
                       SGE_CELL=os.environ["SGE_CELL"])
        if name == "mpi":  # tests/test_mpi.py's program, built with Debian's mpicc
            from test_mpi import HELLO  # noqa: E402
            with open(os.path.join(work, "hello.c"), "w") as f:
                f.write(HELLO)
            env["FERRY_TEST_MPI_HELLO"] = os.path.join(work, "hello")
            subprocess.run(["mpicc", "-O2", "-o", env["FERRY_TEST_MPI_HELLO"],
                            os.path.join(work, "hello.c")], check=True)
        with open(os.path.join(cfg, "ferry", "ferry.conf"), "w") as f:
            f.write(conf)
        try:
            r = subprocess.run([TEST_API, name], env=env, cwd=work, capture_output=True,
                               text=True, timeout=120)
        finally:
            _stop_engine(state, resource)
            kill_procs_mentioning(tmp)
            SANITIZER_FOUND.extend(sanitizer_reports(state))
        assert r.returncode == 0, f"test_api {name} failed:\n{r.stdout}\n{r.stderr}"
