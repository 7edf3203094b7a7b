"""`ferry bridge`: the engine of this host on stdin/stdout (what ssh runs)."""
import contextlib
import json
import os
import signal
import socket
import subprocess

import pytest

from conftest import HDR, frame, pid_alive, poll


def replies(data):
    """The (json, binary) of every reply frame in data."""
    out, i = [], 0
    while i < len(data):
        magic, version, ftype, body_len, json_len = HDR.unpack(data[i:i + HDR.size])
        assert (magic, version, ftype) == (b"FRY1", 1, 2), data[i:i + HDR.size]
        body = data[i + HDR.size:i + HDR.size + body_len]
        assert len(body) == body_len, "truncated reply"
        out.append((json.loads(body[:json_len]), body[json_len:]))
        i += HDR.size + body_len
    return out


def read_reply(f):
    hdr = f.read(HDR.size)
    body = f.read(HDR.unpack(hdr)[3])
    return replies(hdr + body)[0]


def hello():
    return frame({"op": "hello", "version": 3, "client": "bridge-test"})


@contextlib.contextmanager
def session(ferry):
    """A bridge kept open like a client's, past its hello; yields the process."""
    p = subprocess.Popen([ferry.bin, "bridge"], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                         env=ferry.env)
    try:
        p.stdin.write(hello())
        p.stdin.flush()
        assert read_reply(p.stdout)[0]["ok"] is True
        yield p
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
        for f in (p.stdin, p.stdout):
            try:
                f.close()
            except OSError:  # stdin's last bytes to a channel already gone
                pass


def bridge(ferry, data, *args, timeout=60):
    return subprocess.run([ferry.bin, "bridge", *args], input=data, env=ferry.env,
                          capture_output=True, timeout=timeout)


def test_bridge_serves_a_session_and_starts_the_engine(ferry):
    assert ferry.engine_pid() is None
    job = {"argv": ["sh", "-c", "yes x | tr -d '\\n' | head -c 1500000"],
           "working_directory": ferry.work}
    cp = bridge(ferry, hello() + frame({"op": "submit", "jobs": [job]}))
    assert cp.returncode == 0, cp.stderr
    (h, _), (sub, _) = replies(cp.stdout)
    assert h["ok"] and h["resource"] == "local" and h["pid"] == ferry.engine_pid()
    jid = sub["ids"][0]
    # a second session, kept open like a client's: wait, then read 1 MiB of output
    p = subprocess.Popen([ferry.bin, "bridge"], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                         env=ferry.env)
    try:
        for req in (hello(), frame({"op": "wait", "ids": [jid], "timeout": 30}),
                    frame({"op": "read", "id": jid, "stream": "stdout", "offset": 0,
                           "max": 1 << 20})):
            p.stdin.write(req)
        p.stdin.flush()
        got = [read_reply(p.stdout) for _ in range(3)]
        p.stdin.close()
        assert p.wait(timeout=20) == 0
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
        p.stdout.close()
    (_, _), (w, _), (rd, data) = got
    assert w["ok"] is True, w
    assert rd["ok"] and rd["size"] == 1 << 20 and data == b"x" * (1 << 20)
    assert ferry.info(jid)["status"] == "done"


def test_half_closed_client_gets_its_replies(ferry):
    """Requests sent before the client stops sending are all answered."""
    reqs = hello() + b"".join(frame({"op": "ping"}) for _ in range(50))
    cp = bridge(ferry, reqs + frame({"op": "jobs"}))
    assert cp.returncode == 0, cp.stderr
    got = replies(cp.stdout)
    assert len(got) == 52 and all(r["ok"] for r, _ in got)


def test_bridge_refuses_what_the_engine_refuses(ferry):
    cp = bridge(ferry, frame({"op": "ping"}))  # no hello first
    assert cp.returncode == 0
    (r, _), = replies(cp.stdout)
    assert r["ok"] is False and r["error"] == "EPROTO" and "hello" in r["message"]


def test_bridge_to_an_unusable_resource_says_why_on_stderr(ferry):
    """A configuration problem exits 78 (EX_CONFIG), which the ssh client
    takes as final instead of retrying."""
    ferry.config("[local]\nslots = 2\n[far]\nqueue = normal\n")
    cp = bridge(ferry, hello(), "--resource", "far")
    assert cp.returncode == 78
    assert cp.stdout == b"", "nothing may reach the protocol channel"
    assert b"the local scheduler has no queues" in cp.stderr, cp.stderr


def test_bridge_serves_a_resource_defined_by_the_client(ferry):
    """The client's configuration says what the engine must be: --set
    defines a resource that has no section on this host."""
    cp = bridge(ferry, hello(), "--resource", "far", "--set", "slots=3",
                "--set", "scheduler=local")
    assert cp.returncode == 0, cp.stderr
    (r, _), = replies(cp.stdout)
    assert r["ok"] is True and r["resource"] == "far"
    assert os.path.exists(os.path.join(ferry.state_home, "ferry", "far", "ferryd.sock"))


def test_bridge_ignores_the_ssh_keys_of_its_own_section(ferry):
    """A copy of the client's file on the host names the host itself: the
    bridge serves the engine here instead of refusing or looping."""
    ferry.config("[local]\nslots = 2\n[far]\nhost = cluster.example.org\nport = 2222\n")
    cp = bridge(ferry, hello(), "--resource", "far")
    assert cp.returncode == 0, cp.stderr
    (r, _), = replies(cp.stdout)
    assert r["ok"] is True and r["resource"] == "far"


@pytest.mark.parametrize("setting,pattern", [
    ("host=elsewhere", b"key 'host' cannot be set for an engine"),
    ("slots=many", b"invalid slots 'many'"),
    ("noequals", b"invalid setting 'noequals'"),
    ("scheduler=pbs", b"unknown scheduler 'pbs'"),
])
def test_bridge_refuses_bad_settings(ferry, setting, pattern):
    cp = bridge(ferry, hello(), "--resource", "far", "--set", setting)
    assert cp.returncode == 78, cp
    assert cp.stdout == b""
    assert pattern in cp.stderr, cp.stderr


def test_engine_with_other_settings_is_refused_at_hello(ferry):
    """An engine already running with other settings than the client's
    configuration gives is not silently used."""
    cp = bridge(ferry, hello(), "--resource", "far", "--set", "slots=3")
    assert cp.returncode == 0, cp.stderr
    h = frame({"op": "hello", "version": 3, "client": "test", "expect": ["slots=5"]})
    cp = bridge(ferry, h, "--resource", "far", "--set", "slots=5")
    (r, _), = replies(cp.stdout)
    assert r["ok"] is False and r["error"] == "ECONFIG", r
    assert "slots '3'" in r["message"] and "'5'" in r["message"], r


def test_bridge_ends_when_the_engine_dies(ferry):
    with session(ferry) as p:
        engine = ferry.engine_pid()
        os.kill(engine, signal.SIGKILL)
        assert p.wait(timeout=20) == 0  # EOF from the engine ends the bridge
        poll(lambda: not pid_alive(engine), 10, what="the killed engine")
    # the next bridge starts a new engine
    cp = bridge(ferry, hello() + frame({"op": "ping"}))
    assert [r["ok"] for r, _ in replies(cp.stdout)] == [True, True]


# ------------------------------------------------- adopt: the channel handed over


def send_adopt(c, fds, obj=None):
    """Sends an adopt request with fds passed alongside (SCM_RIGHTS)."""
    data = frame(obj or {"op": "adopt"})
    assert socket.send_fds(c.sock, [data], fds) == len(data)


def test_bridge_hands_its_channel_to_the_engine(ferry):
    """The bridge passes its stdin and stdout to the engine and copies
    nothing: the engine holds the pipes, and the bridge only waits."""
    with session(ferry) as p:
        engine = ferry.engine_pid()
        ino = os.fstat(p.stdin.fileno()).st_ino
        held = [os.stat(f"/proc/{engine}/fd/{n}").st_ino
                for n in os.listdir(f"/proc/{engine}/fd")]
        assert ino in held, "the engine does not hold the bridge's stdin"
        # the bridge lets go of its copies once the engine said yes, which
        # may come after the engine answered the hello
        poll(lambda: ino not in [os.stat(f"/proc/{p.pid}/fd/{n}").st_ino for n in ("0", "1")],
             10, what="the bridge to let go of its stdin and stdout")
        p.stdin.write(frame({"op": "ping"}))
        p.stdin.flush()
        assert read_reply(p.stdout)[0]["ok"] is True
        p.stdin.close()  # EOF: the engine answers, closes, and the bridge ends
        assert p.wait(timeout=20) == 0


def test_bridge_pumps_a_channel_the_engine_cannot_take(ferry, tmp_path):
    """stdin a regular file: the engine refuses it, and the bridge copies
    the bytes itself on a new connection."""
    reqs = tmp_path / "reqs"
    reqs.write_bytes(hello() + frame({"op": "ping"}))
    with open(reqs, "rb") as f:
        cp = subprocess.run([ferry.bin, "bridge"], stdin=f, env=ferry.env,
                            capture_output=True, timeout=60)
    assert cp.returncode == 0, cp.stderr
    assert [r["ok"] for r, _ in replies(cp.stdout)] == [True, True]


def test_killed_bridge_ends_its_channel(ferry):
    """A bridge that dies takes its session with it: the engine answers
    and closes the channel it held, so nothing stays open."""
    with session(ferry) as p:
        p.kill()
        p.wait()
        assert p.stdout.read() == b"", "the engine kept the channel open"
    ferry.run("ping")


@pytest.mark.parametrize("case", ["no fds", "one fd", "three fds", "regular file", "swapped",
                                  "fields", "binary", "after hello"])
def test_adopt_refused(ferry, tmp_path, case):
    ferry.run("daemon", "start")
    r, w = os.pipe()
    f = os.open(tmp_path / "plain", os.O_RDWR | os.O_CREAT)
    fds = {"no fds": [], "one fd": [r], "three fds": [r, w, f], "regular file": [f, f],
           "swapped": [w, r]}.get(case, [r, w])
    why = {"no fds": "two descriptors", "one fd": "two descriptors",
           "three fds": "two descriptors", "regular file": "pipes or sockets",
           "swapped": "input first", "fields": "no fields", "binary": "no binary",
           "after hello": "first request"}[case]
    try:
        with ferry.raw() as c:
            if case == "after hello":
                c.hello()
            if case == "binary":
                data = frame({"op": "adopt"}, b"x")
                assert socket.send_fds(c.sock, [data], fds) == len(data)
            else:
                send_adopt(c, fds, {"op": "adopt", "x": 1} if case == "fields" else None)
            rep, _ = c.recv()
            assert rep["ok"] is False and why in rep["message"], rep
            assert c.is_closed()
        # the engine took nothing: the pipe has no other writer and reads EOF
        os.close(w)
        w = -1
        os.set_blocking(r, False)
        assert poll_eof(r)
    finally:
        for fd in (r, w, f):
            if fd >= 0:
                os.close(fd)
    ferry.run("ping")


def poll_eof(fd, timeout=5.0):
    def eof():
        try:
            return os.read(fd, 1) == b""
        except BlockingIOError:
            return False
    return poll(eof, timeout, what="the engine to close the passed descriptors")


def test_a_socket_that_handed_over_takes_no_requests(ferry):
    ferry.run("daemon", "start")
    a, b = socket.socketpair()
    try:
        with ferry.raw() as c:
            send_adopt(c, [a.fileno(), a.fileno()])
            assert c.recv()[0] == {"ok": True}
            c.send(frame({"op": "ping"}))
            rep, _ = c.recv()
            assert rep["ok"] is False and "handed its channel over" in rep["message"], rep
            a.close()
            # the channel itself is the engine's connection now, and ends with that socket
            b.settimeout(10)
            assert b.recv(1) == b""
    finally:
        a.close()
        b.close()
    ferry.run("ping")
