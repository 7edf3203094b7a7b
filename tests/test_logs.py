"""`ferry logs` on this host reads the job's file itself (ferry_open_output:
the engine names the file, the client opens it with its own permissions
and sendfile passes it to stdout): the same bytes as through the engine,
for big outputs, bytes that are not UTF-8, a file still being written,
--follow, --stderr, and stdout of every kind (pipe, file, appended file,
terminal). A remote resource's output still comes through the engine
(tests/test_remote.py)."""
import os
import pty
import shutil
import subprocess
import time

import pytest

from conftest import frame

# 6 MiB of every byte value, then bytes that are no UTF-8
PATTERN = bytes(range(256)) * 4096 * 6 + b"\xff\xfe\xc3(end"


def logs(ferry, *args, stdout=subprocess.PIPE, timeout=60):
    cp = subprocess.run([ferry.bin, "logs", *map(str, args)], env=ferry.env, cwd=ferry.work,
                        stdout=stdout, stderr=subprocess.PIPE, timeout=timeout)
    return cp


def writer_job(ferry, data, *opts, err=False):
    src = ferry.path("pattern.bin")
    with open(src, "wb") as f:
        f.write(data)
    cmd = f"cat {src}" + (" >&2" if err else "")
    return ferry.submit("sh", "-c", cmd, opts=opts)


def test_big_output_not_utf8(ferry):
    jid = writer_job(ferry, PATTERN)
    ferry.run("wait", "--timeout", "60", jid, timeout=70)
    cp = logs(ferry, jid)
    assert cp.returncode == 0, cp.stderr
    assert cp.stdout == PATTERN
    path = ferry.info(jid)["stdout_path"]
    with open(path, "rb") as f:
        assert f.read() == PATTERN


@pytest.mark.parametrize("kind", ["file", "append", "terminal"])
def test_every_kind_of_stdout(ferry, kind):
    jid = writer_job(ferry, PATTERN[:300000])
    ferry.run("wait", "--timeout", "60", jid, timeout=70)
    out = ferry.path("out.bin")
    if kind == "terminal":
        # a terminal takes no sendfile: the copy goes by read and write
        master, slave = pty.openpty()
        os.system(f"stty raw -echo < {os.ttyname(slave)}")
        proc = subprocess.Popen([ferry.bin, "logs", str(jid)], env=ferry.env, cwd=ferry.work,
                                stdout=slave, stderr=subprocess.PIPE)
        os.close(slave)
        got = b""
        while True:
            try:
                chunk = os.read(master, 65536)
            except OSError:
                break
            if not chunk:
                break
            got += chunk
        proc.wait(30)
        os.close(master)
        assert proc.returncode == 0, proc.stderr.read()
        assert got == PATTERN[:300000]
        return
    with open(out, "wb") as f:
        f.write(b"before\n")
    with open(out, "ab" if kind == "append" else "wb") as f:
        cp = logs(ferry, jid, stdout=f)
    assert cp.returncode == 0, cp.stderr
    with open(out, "rb") as f:
        want = (b"before\n" if kind == "append" else b"") + PATTERN[:300000]
        assert f.read() == want


def test_a_file_being_written(ferry):
    """A job writing 2 MiB in steps: logs mid-way gives a prefix, --follow
    all of it, and ends with the job."""
    gate = ferry.path("gate")
    script = ("i=0; while [ $i -lt 32 ]; do head -c 65536 /dev/zero | tr '\\0' x; "
              "printf '\\377%04d\\n' $i; i=$((i+1)); "
              f"[ $i = 8 ] && while [ ! -e {gate} ]; do sleep 0.05; done; sleep 0.02; done")
    jid = ferry.submit("sh", "-c", script)
    path = ferry.wait_state(jid, "running")["stdout_path"]
    follower = subprocess.Popen([ferry.bin, "logs", "--follow", str(jid)], env=ferry.env,
                                cwd=ferry.work, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 20
    while (not os.path.exists(path) or os.path.getsize(path) < 8 * 65542) \
            and time.monotonic() < deadline:
        time.sleep(0.05)
    mid = logs(ferry, jid)
    assert mid.returncode == 0 and len(mid.stdout) >= 8 * 65542, len(mid.stdout)
    assert follower.poll() is None, "--follow stopped while the job runs"
    open(gate, "w").close()
    out, err = follower.communicate(timeout=60)
    assert follower.returncode == 0, err
    with open(path, "rb") as f:
        final = f.read()
    assert len(final) == 32 * 65542
    assert mid.stdout == final[:len(mid.stdout)]
    assert out == final
    assert ferry.state(jid) == "done"


def test_follow_a_job_that_has_not_started(ferry):
    jid = ferry.submit("sh", "-c", "printf 'late\\377\\n'", opts=("--hold",))
    cp = logs(ferry, jid)
    assert cp.returncode == 0 and cp.stdout == b"", cp
    follower = subprocess.Popen([ferry.bin, "logs", "-f", str(jid)], env=ferry.env,
                                cwd=ferry.work, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    time.sleep(0.5)
    ferry.run("release", jid)
    out, err = follower.communicate(timeout=30)
    assert follower.returncode == 0, err
    assert out == b"late\xff\n"


def test_stderr_and_joined(ferry):
    jid = writer_job(ferry, PATTERN[:100000], err=True)
    ferry.run("wait", "--timeout", "60", jid, timeout=70)
    assert logs(ferry, "--stderr", jid).stdout == PATTERN[:100000]
    assert logs(ferry, jid).stdout == b""
    joined = ferry.submit("sh", "-c", "echo o; echo e >&2", opts=("--join",))
    ferry.run("wait", "--timeout", "60", joined, timeout=70)
    cp = logs(ferry, "--stderr", joined)
    assert cp.returncode == 1 and b"joined" in cp.stderr, cp


def test_the_engine_names_the_file(ferry):
    jid = ferry.submit("echo", "hi")
    ferry.run("wait", "--timeout", "60", jid, timeout=70)
    path = ferry.info(jid)["stdout_path"]
    st = os.stat(path)
    with ferry.raw() as c:
        c.hello()
        c.send(frame({"op": "read", "id": jid, "stream": "stdout", "max": 0, "path": True}))
        r, data = c.recv()
        assert r["ok"] and r["path"] == path and data == b"", r
        assert (r["dev"], r["ino"]) == (st.st_dev, st.st_ino), r
        c.send(frame({"op": "read", "id": jid, "stream": "stdout", "max": 10}))
        r, data = c.recv()
        assert r["ok"] and "path" not in r and data == b"hi\n", r
        r = c.request({"op": "read", "id": jid, "stream": "stdout", "path": 1})
        assert r["ok"] is False and r["error"] == "EINVAL", r


def test_another_file_at_the_path_is_read_through_the_engine(ferry):
    """A client that sees another file at the path than the engine (another
    mount namespace, here one with a file mounted over the job's output)
    gets the engine's bytes, not that file's."""
    if os.geteuid() != 0 or not shutil.which("unshare"):
        pytest.skip("SKIPPED LOUDLY: needs root and unshare(1) for a mount namespace")
    jid = writer_job(ferry, PATTERN[:200000])
    ferry.run("wait", "--timeout", "60", jid, timeout=70)
    path = ferry.info(jid)["stdout_path"]
    decoy = ferry.path("decoy")
    with open(decoy, "wb") as f:
        f.write(b"not the job's output\n")
    cp = subprocess.run(["unshare", "-m", "sh", "-c",
                         f"mount --bind {decoy} {path} && exec {ferry.bin} logs {jid}"],
                        env=ferry.env, cwd=ferry.work, capture_output=True, timeout=60)
    assert cp.returncode == 0, cp.stderr
    assert cp.stdout == PATTERN[:200000]
