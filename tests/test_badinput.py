"""Bad input of every kind: each case asserts a clear error naming the
problem AND that the same engine is still up and answers the next request."""
import json
import os
import re
import time

import pytest

from conftest import FRAME_MAX, HDR, ClosedError, frame, pid_alive

CODES = {"EINVAL": -1, "ENOMEM": -2, "ENOJOB": -3, "ECONNECT": -4, "EPROTO": -5,
         "ETIMEDOUT": -6, "ESTATE": -7, "EUNSUPPORTED": -8, "ECONFIG": -9, "EIO": -10,
         "EAGAIN": -11, "EEOF": -12, "EPERM": -13, "EDISCONNECTED": -14,
         "ERESOURCE": -15, "EINTERNAL": -16, "EAUTH": -17}


@pytest.fixture
def eng(ferry):
    """A started engine; yields ferry and checks at the end that the SAME
    engine still answers (CLI ping and a raw hello + ping)."""
    ferry.run("daemon", "start")
    pid = ferry.engine_pid()
    assert pid and pid_alive(pid)
    ferry.pid0 = pid
    yield ferry
    assert_alive(ferry, pid)


def assert_alive(ferry, pid):
    assert pid_alive(pid), "the engine died"
    assert ferry.engine_pid() == pid, "the engine was replaced"
    with ferry.raw() as c:
        c.hello()
        r = c.request({"op": "ping"})
        assert r.get("ok") is True, r
    ferry.run("ping", timeout=20)
    assert ferry.engine_pid() == pid


def assert_err(r, codes, pattern):
    """r is an error reply with error in codes and a message matching
    pattern (case-insensitive)."""
    if isinstance(codes, str):
        codes = (codes,)
    assert r.get("ok") is False, f"expected an error reply, got {r!r}"
    assert r.get("error") in codes, f"error {r.get('error')!r} not in {codes}: {r!r}"
    assert r.get("code") == CODES[r["error"]], r
    msg = r.get("message")
    assert isinstance(msg, str) and msg.strip(), f"no message: {r!r}"
    assert re.search(pattern, msg, re.I), f"message {msg!r} does not match {pattern!r}"


def hello_conn(ferry, timeout=10.0):
    c = ferry.raw(timeout)
    c.hello()
    return c


def assert_conn_usable(c):
    r = c.request({"op": "ping"})
    assert r.get("ok") is True, f"connection unusable after a recoverable error: {r!r}"


# ------------------------------------------------------------ frame level


def expect_fatal(c, pattern):
    """An error reply (EPROTO) followed by the engine closing."""
    try:
        r, _ = c.recv()
    except ClosedError:
        pytest.fail("the engine closed without an error reply")
    assert_err(r, "EPROTO", pattern)
    assert c.is_closed(5), "the engine kept a connection after a malformed frame"


def test_bad_magic(eng):
    with hello_conn(eng) as c:
        c.send(frame({"op": "ping"}, magic=b"XXXX"))
        expect_fatal(c, r"magic")


def test_bad_magic_first_frame(eng):
    with eng.raw() as c:
        c.send(b"GET / HTTP/1.0\r\n\r\n")
        expect_fatal(c, r"magic")


def test_oversized_body_len(eng):
    with hello_conn(eng) as c:
        c.send(HDR.pack(b"FRY1", 1, 1, FRAME_MAX + 1, 10))
        expect_fatal(c, r"larg|size|limit|big")


def test_huge_body_len(eng):
    with hello_conn(eng) as c:
        c.send(HDR.pack(b"FRY1", 1, 1, 0xFFFFFFFF, 0xFFFFFFFF))
        expect_fatal(c, r"larg|size|limit|big")


def test_wrong_protocol_version(eng):
    with hello_conn(eng) as c:
        c.send(frame({"op": "ping"}, version=2))
        expect_fatal(c, r"version")


def test_wrong_frame_type(eng):
    with hello_conn(eng) as c:
        c.send(frame({"op": "ping"}, ftype=7))
        expect_fatal(c, r"type")


def test_reply_frame_from_client(eng):
    # type 2 (reply) is a valid header, but a client may only send requests
    with hello_conn(eng) as c:
        c.send(frame({"op": "ping"}, ftype=2))
        try:
            r, _ = c.recv()
        except ClosedError:
            pytest.fail("closed without an error reply")
        assert_err(r, "EPROTO", r"type|request|reply")


def test_json_len_larger_than_body(eng):
    with hello_conn(eng) as c:
        c.send(frame({"op": "ping"}, json_len=1000))
        expect_fatal(c, r"json|length")


def test_truncated_frame_then_close(eng):
    c = hello_conn(eng)
    c.send(HDR.pack(b"FRY1", 1, 1, 100, 100) + b'{"op": "pi')
    c.close()
    # also a header cut in the middle
    c = eng.raw()
    c.send(b"FRY1\x00")
    c.close()


def test_slow_partial_frame_does_not_block_others(eng):
    slow = hello_conn(eng)
    try:
        slow.send(HDR.pack(b"FRY1", 1, 1, 50, 50) + b'{"op":')
        # another client is served while the first one's frame is incomplete
        eng.run("ping", timeout=10)
    finally:
        slow.close()


def test_invalid_json(eng):
    with hello_conn(eng) as c:
        c.send(frame(raw_json=b'{"op": "ping", '))
        r, _ = c.recv()
        assert_err(r, ("EPROTO", "EINVAL"), r"json")
        assert_conn_usable(c)


def test_json_array_not_object(eng):
    with hello_conn(eng) as c:
        c.send(frame(raw_json=b'["op", "ping"]'))
        r, _ = c.recv()
        assert_err(r, ("EPROTO", "EINVAL"), r"object")
        assert_conn_usable(c)


def test_duplicate_keys(eng):
    with hello_conn(eng) as c:
        c.send(frame(raw_json=b'{"op": "ping", "op": "shutdown"}'))
        r, _ = c.recv()
        assert_err(r, ("EPROTO", "EINVAL"), r"duplicate")
        assert_conn_usable(c)


def test_no_hello_first(eng):
    with eng.raw() as c:
        c.send(frame({"op": "ping"}))
        r, _ = c.recv()
        assert_err(r, "EPROTO", r"hello")
        assert c.is_closed(5), "connection kept open without hello"


def test_hello_wrong_version(eng):
    with eng.raw() as c:
        r = c.request({"op": "hello", "version": 99, "client": "x"})
        assert_err(r, ("EPROTO", "EUNSUPPORTED", "EINVAL"), r"version")


def test_hello_of_a_client_before_paged_listings(eng):
    """A version-1 client (which would take a listing's first page for the
    whole) is told which versions differ, in the same frames it speaks."""
    with eng.raw() as c:
        r = c.request({"op": "hello", "version": 1, "client": "libferry 0.2.0"})
        assert_err(r, "EPROTO", r"client protocol version 1 is not supported \(engine speaks 3\)")


def test_hello_of_a_client_before_batch_keys(eng):
    """Version 3 submits with a batch key and common fields, which an
    engine of version 2 refuses by name: the versions differ at hello."""
    with eng.raw() as c:
        r = c.request({"op": "hello", "version": 2, "client": "libferry 0.2.0"})
        assert_err(r, "EPROTO", r"client protocol version 2 is not supported \(engine speaks 3\)")


def test_unknown_op(eng):
    with hello_conn(eng) as c:
        r = c.request({"op": "frobnicate"})
        assert_err(r, ("EINVAL", "EPROTO"), r"frobnicate")
        assert_conn_usable(c)


def test_op_missing(eng):
    with hello_conn(eng) as c:
        r = c.request({"id": 1})
        assert_err(r, ("EINVAL", "EPROTO"), r"\bop\b")
        assert_conn_usable(c)


def test_unknown_field_in_request(eng):
    with hello_conn(eng) as c:
        r = c.request({"op": "ping", "colour": "red"})
        assert_err(r, "EINVAL", r"colour")
        assert_conn_usable(c)


# Every request refuses a field it does not take, job and transfer requests
# alike, with the same message, before it does anything: each case's fields
# are ones the request takes, so without the check a transfer_send or a
# transfer_register would create a transfer.
# (request, fields it takes)
UNKNOWN_FIELD_CASES = [
    ("ping", {}),
    ("status", {"id": 1}),
    ("submit", {"jobs": []}),
    ("workflow_submit", {"jobs": {"a": {"argv": ["true"]}}}),
    ("workflow_status", {"workflow": 1}),
    ("workflows", {}),
    ("transfer_send", {"key": "k-unknown-field", "local_paths": ["/x/f"], "files": [
        {"path": "f", "type": "file", "size": 1, "mode": 0o644, "mtime_ns": 0}]}),
    ("transfer_register", {"key": "k-unknown-field", "local_paths": ["/x/o"], "name": "o"}),
    ("transfer_put", {"id": 1, "file": 0, "offset": 0}),
    ("transfer_manifest", {"server_path": "/nonexistent/t"}),
    ("transfer_get", {"server_path": "/nonexistent/t", "file": 0, "offset": 0, "length": 1}),
    ("transfer_retrieved", {"server_path": "/nonexistent/t"}),
    ("transfer_info", {"server_path": "/nonexistent/t"}),
    ("transfers", {}),
    ("transfer_cancel", {"server_path": "/nonexistent/t", "force": True}),
]


@pytest.mark.parametrize("op,fields", UNKNOWN_FIELD_CASES,
                         ids=[c[0] for c in UNKNOWN_FIELD_CASES])
def test_unknown_field_is_refused_in_every_request(eng, op, fields):
    with hello_conn(eng) as c:
        r = c.request({"op": op, **fields, "colour": "red"})
        assert_err(r, "EINVAL", rf"^unknown field 'colour' in request '{op}'$")
        assert_conn_usable(c)
    assert eng.json("transfers") == [], "a refused request created a transfer"


# Only transfer_put takes a binary part; any other request with one is
# refused, naming the request, before it does anything.
# (request, fields it takes)
BINARY_CASES = [
    ("ping", {}),
    ("status", {"id": 1}),
    ("workflow_submit", {"jobs": {"a": {"argv": ["true"]}}}),
    ("transfer_send", {"key": "k-binary", "local_paths": ["/x/f"], "files": [
        {"path": "f", "type": "file", "size": 4, "mode": 0o644, "mtime_ns": 0}]}),
    ("transfer_get", {"server_path": "/nonexistent/t", "file": 0, "offset": 0, "length": 1}),
    ("transfer_info", {"server_path": "/nonexistent/t"}),
    ("transfers", {}),
]


@pytest.mark.parametrize("op,fields", BINARY_CASES, ids=[c[0] for c in BINARY_CASES])
def test_binary_part_is_refused_where_not_taken(eng, op, fields):
    with hello_conn(eng) as c:
        r = c.request({"op": op, **fields}, b"junk")
        assert_err(r, "EINVAL", rf"^request '{op}' takes no binary data$")
        assert_conn_usable(c)
    assert eng.json("transfers") == [], "a refused request created a transfer"


# ------------------------------------------------------------ request level


def test_submit_without_jobs(eng):
    with hello_conn(eng) as c:
        assert_err(c.request({"op": "submit"}), "EINVAL", r"jobs")
        assert_err(c.request({"op": "submit", "jobs": []}), "EINVAL", r"jobs")
        assert_err(c.request({"op": "submit", "jobs": {"argv": ["true"]}}), "EINVAL", r"jobs")
        assert_conn_usable(c)
    assert eng.json("jobs") == []


def spec(ferry, **kw):
    s = {"argv": ["true"], "working_directory": ferry.work}
    s.update(kw)
    return s


# (id, spec changes, allowed error names, message pattern)
SPEC_CASES = [
    ("argv_missing", {"argv": None}, "EINVAL", r"argv"),
    ("argv_empty", {"argv": []}, "EINVAL", r"argv"),
    ("argv_non_string", {"argv": ["echo", 5]}, "EINVAL", r"argv"),
    ("argv_not_array", {"argv": "true"}, "EINVAL", r"argv"),
    # jansson refuses \u0000 while parsing (EPROTO) or the engine does (EINVAL)
    ("argv_nul", {"argv": ["echo", "a\u0000b"]}, ("EINVAL", "EPROTO"),
     r"nul|u0000|\\0|zero byte"),
    ("cpus_negative", {"cpus": -1}, "EINVAL", r"cpus"),
    ("cpus_zero", {"cpus": 0}, "EINVAL", r"cpus"),
    ("cpus_string", {"cpus": "2"}, "EINVAL", r"cpus"),
    ("walltime_absurd", {"walltime_s": 10**12}, "EINVAL", r"walltime"),
    ("walltime_negative", {"walltime_s": -1}, "EINVAL", r"walltime"),
    ("memory_negative", {"memory_mb": -5}, "EINVAL", r"memory"),
    ("disposal_negative", {"disposal_timeout_hours": -1}, "EINVAL", r"disposal"),
    ("disposal_too_big", {"disposal_timeout_hours": 87601}, "EINVAL", r"disposal"),
    ("unknown_field", {"colour": "blue"}, "EINVAL", r"colour"),
    ("cwd_missing", {"working_directory": "/nonexistent/ferry-dir"}, ("EINVAL", "EIO"),
     r"/nonexistent/ferry-dir"),
    ("cwd_relative", {"working_directory": "relative/dir"}, "EINVAL",
     r"working.directory|absolute"),
    ("cpus_more_than_slots", {"cpus": 3}, "ERESOURCE", r"cpus|slots"),
    ("queue_on_local", {"queue": "batch"}, "EUNSUPPORTED", r"queue"),
    ("native_on_local", {"native_specification": "-l h_rt=1"}, "EUNSUPPORTED", r"native"),
    ("env_without_equals", {"env": ["NOEQUALS"]}, "EINVAL", r"env|NOEQUALS"),
    ("env_not_strings", {"env": [1]}, "EINVAL", r"env"),
    ("key_too_long", {"submission_key": "k" * 129}, "EINVAL", r"key"),
    ("hold_not_bool", {"hold": "yes"}, "EINVAL", r"hold"),
    ("name_not_string", {"name": 7}, "EINVAL", r"name"),
    ("input_missing", {"referenced_input_files": ["/nonexistent/input.dat"]},
     ("EINVAL", "EIO"), r"/nonexistent/input\.dat"),
]


@pytest.mark.parametrize("changes,codes,pattern", [c[1:] for c in SPEC_CASES],
                         ids=[c[0] for c in SPEC_CASES])
def test_bad_spec(eng, changes, codes, pattern):
    s = spec(eng, hold=True)
    for k, v in changes.items():
        if v is None:
            s.pop(k, None)
        else:
            s[k] = v
    with hello_conn(eng) as c:
        r = c.request({"op": "submit", "jobs": [s]})
        assert_err(r, codes, pattern)
        assert_conn_usable(c)
    assert eng.json("jobs") == [], "a refused spec created a job"


def test_bad_spec_in_batch_names_index_and_submits_nothing(eng):
    good = spec(eng, hold=True)
    with hello_conn(eng) as c:
        r = c.request({"op": "submit", "jobs": [good, good, spec(eng, cpus=0), good]})
        assert_err(r, "EINVAL", r"cpus")
        assert re.search(r"\b2\b", r["message"]), f"index 2 not named: {r['message']!r}"
    assert eng.json("jobs") == [], "a refused batch created jobs"


def test_invalid_utf8_in_name(eng):
    body = (b'{"op":"submit","jobs":[{"argv":["true"],"hold":true,"name":"bad\xff\xfename",'
            b'"working_directory":' + json.dumps(eng.work).encode() + b'}]}')
    with hello_conn(eng) as c:
        c.send(frame(raw_json=body))
        r, _ = c.recv()
        assert_err(r, ("EINVAL", "EPROTO"), r"utf-?8|json|invalid")
        assert_conn_usable(c)
    assert eng.json("jobs") == []


def test_very_long_argv(eng):
    argv = ["echo"] + ["x" * 100] * 100000
    s = spec(eng, argv=argv, hold=True)
    with hello_conn(eng, timeout=60) as c:
        r = c.request({"op": "submit", "jobs": [s]})
        if r.get("ok"):
            (jid,) = r["ids"]
            r2 = c.request({"op": "status", "id": jid})
            assert r2.get("status") == "user_on_hold", r2
            assert c.request({"op": "dispose", "id": jid}).get("ok") is True
        else:
            assert_err(r, ("EINVAL", "ERESOURCE"), r"argv|argument|command line|long|large|limit")
        assert_conn_usable(c)


def test_unknown_job_id(eng):
    with hello_conn(eng) as c:
        for op in ({"op": "status", "id": 999999}, {"op": "info", "id": 999999},
                   {"op": "control", "id": 999999, "action": "kill"},
                   {"op": "dispose", "id": 999999},
                   {"op": "read", "id": 999999, "stream": "stdout", "offset": 0, "max": 10},
                   {"op": "wait", "ids": [999999], "timeout": 1}):
            r = c.request(op)
            assert_err(r, "ENOJOB", r"job")
            assert "999999" in r["message"], f"{op['op']}: the message must name the id: {r!r}"
        assert_conn_usable(c)


def test_bad_id_type(eng):
    with hello_conn(eng) as c:
        assert_err(c.request({"op": "status", "id": "1"}), "EINVAL", r"\bid\b")
        assert_err(c.request({"op": "status"}), "EINVAL", r"\bid\b")
        assert_err(c.request({"op": "wait", "ids": 1, "timeout": 1}), "EINVAL", r"ids")
        assert_conn_usable(c)


def test_stdin_missing(eng):
    _stdin_bad(eng, "/nonexistent/stdin.txt")


def test_stdin_is_directory(eng):
    d = eng.path("a-dir")
    os.makedirs(d)
    _stdin_bad(eng, d)


def _stdin_bad(ferry, path):
    """Refused at submit, or the job ends aborted; either way the message
    names the path."""
    with hello_conn(ferry) as c:
        r = c.request({"op": "submit", "jobs": [spec(ferry, argv=["cat"], stdin_path=path)]})
        if r.get("ok"):
            (jid,) = r["ids"]
            j = ferry.wait_ended(jid, 20)
            assert j["status"] == "failed" and j["exit_status"] == "aborted", j
            assert j["message"] and path in j["message"], j["message"]
        else:
            assert_err(r, ("EINVAL", "EIO"), re.escape(path))
        assert_conn_usable(c)


def test_read_max_too_big(eng):
    jid = eng.submit("echo", "some output")
    eng.run("wait", "--timeout", "30", jid, timeout=40)
    with hello_conn(eng) as c:
        r = c.request({"op": "read", "id": jid, "stream": "stdout", "offset": 0,
                       "max": (1 << 20) + 1})
        assert_err(r, "EINVAL", r"max")
        r = c.request({"op": "read", "id": jid, "stream": "stdout", "offset": -1, "max": 10})
        assert_err(r, "EINVAL", r"offset")
        r = c.request({"op": "read", "id": jid, "stream": "stdlog", "offset": 0, "max": 10})
        assert_err(r, "EINVAL", r"stream")
        assert_conn_usable(c)


def test_control_unknown_action(eng):
    jid = eng.submit("true", opts=["--hold"])
    with hello_conn(eng) as c:
        r = c.request({"op": "control", "id": jid, "action": "explode"})
        assert_err(r, "EINVAL", r"explode|action")
        assert_conn_usable(c)
    assert eng.state(jid) == "user_on_hold"


def test_jobs_unknown_state(eng):
    with hello_conn(eng) as c:
        assert_err(c.request({"op": "jobs", "state": "sleepy"}), "EINVAL", r"sleepy|state")
        assert_conn_usable(c)


# ---------------------------------------------------------- CLI / config


def write(path, text):
    with open(path, "w") as f:
        f.write(text)
    return path


def test_config_syntax_error(eng):
    bad = write(eng.path("bad.conf"), "[local]\nslots = 2\n[broken\n")
    cp = eng.run("-c", bad, "ping", check=False)
    assert cp.returncode == 1, cp
    assert "bad.conf:3" in cp.stderr, f"no file:line in {cp.stderr!r}"


def test_config_default_file_syntax_error(eng):
    eng.config("[local]\nslots = 2\nthis is not ini\n")
    cp = eng.run("ping", check=False)
    assert cp.returncode == 1, cp
    assert "ferry.conf:3" in cp.stderr, cp.stderr
    eng.config("[local]\nscheduler = local\nslots = 2\n")


def test_config_unknown_key(eng):
    bad = write(eng.path("bad.conf"), "[local]\nslots = 2\ncolour = blue\n")
    cp = eng.run("-c", bad, "ping", check=False)
    assert cp.returncode == 1, cp
    assert "bad.conf:3" in cp.stderr and "colour" in cp.stderr, cp.stderr


def test_config_invalid_slots(eng):
    for val in ("many", "-1", "2x", ""):
        bad = write(eng.path("bad.conf"), f"[local]\nslots = {val}\n")
        cp = eng.run("-c", bad, "ping", check=False)
        assert cp.returncode == 1, (val, cp)
        assert "bad.conf:2" in cp.stderr and "slots" in cp.stderr, (val, cp.stderr)


def test_config_file_missing(eng):
    cp = eng.run("-c", eng.path("nope.conf"), "ping", check=False)
    assert cp.returncode == 1, cp
    assert "nope.conf" in cp.stderr


def test_unknown_resource(eng):
    cp = eng.run("-r", "nosuch", "ping", check=False)
    assert cp.returncode == 1, cp
    assert "nosuch" in cp.stderr, cp.stderr
    assert not os.path.exists(os.path.join(eng.state_home, "ferry", "nosuch"))


@pytest.mark.parametrize("line,pattern", [
    ("scheduler = slurm\nslots = 4", r"key 'slots'.*slurm schedules its jobs itself"),
    ("scheduler = drmaa\nslots = 4", r"key 'slots'.*drmaa schedules its jobs itself"),
    ("login = jdoe", r"key 'login'.*needs 'host'"),
    ("port = 2222", r"key 'port'.*needs 'host'"),
    ("remote_command = /opt/ferry/bin/ferry", r"key 'remote_command'.*needs 'host'"),
    ("ssh_options = -o BatchMode=yes", r"key 'ssh_options'.*needs 'host'"),
    ("drmaa_library = /usr/lib/libdrmaa.so", r"key 'drmaa_library'.*for the drmaa scheduler"),
    ("poll_interval = 5", r"key 'poll_interval'.*no polling"),
    ("queue = long", r"key 'queue'.*no queues"),
])
def test_config_key_without_effect_is_refused(eng, line, pattern):
    """A key that this version would not act on is an error, never ignored."""
    eng.config(f"[local]\nslots = 2\n[other]\n{line}\n")
    cp = eng.run("-r", "other", "ping", check=False)
    assert cp.returncode == 1, cp
    assert re.search(pattern, cp.stderr), cp.stderr
    assert not os.path.exists(os.path.join(eng.state_home, "ferry", "other"))


def test_missing_drmaa_library_is_named_at_connect(eng):
    """ferry builds and runs without any DRMAA library: a drmaa resource
    whose library cannot be loaded fails at connect, naming the path."""
    eng.config("[local]\nslots = 2\n[grid]\nscheduler = drmaa\n"
               "drmaa_library = /nonexistent/libdrmaa.so.1\n")
    cp = eng.run("-r", "grid", "ping", check=False)
    assert cp.returncode == 1, cp
    assert "cannot load the DRMAA library: /nonexistent/libdrmaa.so.1" in cp.stderr, cp.stderr
    assert eng.run("-r", "grid", "daemon", "status", check=False).returncode != 0


def test_job_id_of_another_resource(eng):
    """Each resource has its own engine and its own jobs: an id from one
    names nothing on the other."""
    eng.config("[local]\nscheduler = local\nslots = 2\n[other]\nscheduler = local\nslots = 1\n")
    jid = eng.submit("true")
    ferry_other = ("-r", "other")
    try:
        cp = eng.run(*ferry_other, "status", jid, check=False)
        assert cp.returncode == 1, cp
        assert f"no job {jid} on resource 'other'" in cp.stderr, cp.stderr
        assert eng.run("status", jid).stdout.strip() in ("queued_active", "running", "done")
    finally:
        eng.run(*ferry_other, "daemon", "stop", check=False)


@pytest.mark.parametrize("name", ["../x", "a/b", ".hidden", "", "x" * 65])
def test_invalid_resource_name(eng, name):
    cp = eng.run("-r", name, "ping", check=False)
    assert cp.returncode in (1, 2), cp
    assert re.search(r"resource", cp.stderr, re.I), cp.stderr
    assert not os.path.exists(os.path.join(eng.state_home, "x"))
    assert not os.path.exists(os.path.join(eng.state_home, "ferry", "a"))
    assert sorted(os.listdir(os.path.join(eng.state_home, "ferry"))) == ["local"]


def test_cli_submit_bad_cwd(eng):
    cp = eng.run("submit", "--cwd", "/nonexistent/ferry-cwd", "--", "true", check=False)
    assert cp.returncode == 1, cp
    assert "/nonexistent/ferry-cwd" in cp.stderr, cp.stderr
    assert eng.json("jobs") == []


def test_cli_submit_queue_and_native_unsupported(eng):
    cp = eng.run("submit", "--queue", "batch", "--", "true", check=False)
    assert cp.returncode == 1 and "queue" in cp.stderr, cp
    cp = eng.run("submit", "--native", "-l x", "--", "true", check=False)
    assert cp.returncode == 1 and "native" in cp.stderr, cp
    assert eng.json("jobs") == []


def test_cli_submit_bad_env(eng):
    """Said, but not echoed: an --env without '=' is as often a value given
    without its name (a token, identifier-shaped) as a name."""
    cp = eng.run("submit", "--env", "NOEQUALS", "--", "true", check=False)
    assert cp.returncode in (1, 2) and "NOEQUALS" not in cp.stderr, cp
    assert "invalid value for --env: expected NAME=VALUE (it has no '=')" in cp.stderr, cp
    assert eng.json("jobs") == []


# -------------------------------------------------- numbers and structure

# Values that a C int would silently truncate to something valid.
OVERFLOW_CASES = [
    ("cpus_2_32_plus_1", {"cpus": 2**32 + 1}, r"cpus"),
    ("cpus_float", {"cpus": 1.5}, r"cpus"),
    ("cpus_bool", {"cpus": True}, r"cpus"),
    ("disposal_2_32_plus_168", {"disposal_timeout_hours": 2**32 + 168}, r"disposal"),
    ("walltime_2_63", {"walltime_s": 2**63 - 1}, r"walltime"),
    ("walltime_wraps_to_60", {"walltime_s": 2**32 + 60}, r"walltime"),
    ("env_empty_name", {"env": ["=value"]}, r"env"),
    ("argv0_empty", {"argv": [""]}, r"argv|command|empty"),
    ("cwd_is_file", {"working_directory": "/etc/passwd"}, r"/etc/passwd|directory"),
]


@pytest.mark.parametrize("changes,pattern", [c[1:] for c in OVERFLOW_CASES],
                         ids=[c[0] for c in OVERFLOW_CASES])
def test_bad_spec_numbers(eng, changes, pattern):
    s = spec(eng, hold=True)
    s.update(changes)
    with hello_conn(eng) as c:
        r = c.request({"op": "submit", "jobs": [s]})
        assert_err(r, ("EINVAL", "ERESOURCE"), pattern)
        assert_conn_usable(c)
    assert eng.json("jobs") == []


def test_integer_too_big_for_json_parser(eng):
    with hello_conn(eng) as c:
        c.send(frame(raw_json=b'{"op": "status", "id": 99999999999999999999999}'))
        r, _ = c.recv()
        assert_err(r, ("EPROTO", "EINVAL", "ENOJOB"), r"integer|big|json|id|job")
        assert_conn_usable(c)


def test_deeply_nested_json(eng):
    depth = 100000
    body = b'{"op": "ping", "x": ' + b"[" * depth + b"]" * depth + b"}"
    with hello_conn(eng) as c:
        c.send(frame(raw_json=body))
        r, _ = c.recv()
        assert_err(r, ("EPROTO", "EINVAL"), r"json|depth|nest|x")
        assert_conn_usable(c)


def test_too_many_jobs_in_one_submit(eng):
    s = {"argv": ["true"], "working_directory": eng.work, "hold": True}
    with hello_conn(eng, timeout=60) as c:
        r = c.request({"op": "submit", "jobs": [s] * 100001})
        assert_err(r, "EINVAL", r"jobs|100000|many")
        assert_conn_usable(c)
    assert eng.json("jobs") == []


def test_negative_and_zero_ids(eng):
    with hello_conn(eng) as c:
        for jid in (0, -1):
            r = c.request({"op": "status", "id": jid})
            assert_err(r, ("EINVAL", "ENOJOB"), r"\bid\b|job")
        assert_conn_usable(c)


def test_waiter_disconnects(eng):
    jid = eng.submit("sleep", "1")
    c = hello_conn(eng)
    c.send(frame({"op": "wait", "ids": [jid], "timeout": -1}))
    c.close()  # the engine must drop the waiter, not write to a dead socket
    eng.run("wait", "--timeout", "20", jid, timeout=30)


def test_client_that_never_reads(eng):
    """A client pipelining requests without reading replies must not block
    the engine for everyone else."""
    jid = eng.submit("true", opts=["--hold", "--name", "n" * 1000])
    c = hello_conn(eng)
    try:
        c.sock.setblocking(False)
        req = frame({"op": "info", "id": jid})
        sent = 0
        t0 = time.monotonic()
        while sent < 20000 and time.monotonic() - t0 < 5:
            try:
                c.sock.send(req)
                sent += 1
            except BlockingIOError:
                time.sleep(0.01)
        cp = eng.run("ping", check=False, timeout=15)
        assert cp.returncode == 0, f"engine blocked by a client that does not read: {cp}"
    finally:
        c.close()


def test_many_idle_connections(eng):
    conns = []
    try:
        for _ in range(300):
            conns.append(hello_conn(eng))
        eng.run("ping", timeout=15)
    finally:
        for c in conns:
            c.close()


def test_read_past_end(eng):
    jid = eng.submit("echo", "abc")
    eng.run("wait", "--timeout", "30", jid, timeout=40)
    with hello_conn(eng) as c:
        c.send(frame({"op": "read", "id": jid, "stream": "stdout", "offset": 0, "max": 100}))
        r, data = c.recv()
        assert r.get("ok") is True and r["size"] == 4 and data == b"abc\n", (r, data)
        assert r["ended"] is True
        c.send(frame({"op": "read", "id": jid, "stream": "stdout", "offset": 10**9, "max": 100}))
        r, data = c.recv()
        assert r.get("ok") is True and r["size"] == 0 and data == b"", (r, data)


def test_transfer_root_must_be_absolute(eng):
    eng.config("[local]\nslots = 2\n[other]\ntransfer_root = relative/dir\n")
    cp = eng.run("-r", "other", "ping", check=False)
    assert cp.returncode == 1, cp
    assert "transfer_root 'relative/dir' is not an absolute path" in cp.stderr, cp.stderr
