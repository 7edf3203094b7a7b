"""Issue 21, item 13: Linux names are bytes, and ferry carries them exactly.

An argument, a name, a working directory, an environment value, output
paths and the names of sent and retrieved files that are not UTF-8 go
through submit, bulk, info, transfers and every backend byte for byte;
--json shows them with the protocol's escape (docs/protocol.md, "Bytes").
"""
import json
import os
import subprocess

import pytest

from conftest import frame, transport_world

# Latin-1 (a real encoding of old file systems), bytes no UTF-8 has, a cut
# character, an overlong slash, a surrogate, and valid UTF-8 beside them
LATIN1 = b"r\xe9sum\xe9"
SAMPLES = [LATIN1, b"\xff\xfe\x80", b"caf\xc3", b"a\xc0\xafb", b"\xed\xa0\x80", "é-ü".encode()]
TRANSPORTS = ["local", "ssh", "slurm", "drmaa"]


def unescape(s):
    """The bytes a JSON string of the protocol stands for."""
    out, i = bytearray(), 0
    while i < len(s):
        if s[i] == "\0":
            out.append(int(s[i + 1:i + 3], 16))
            i += 3
        else:
            out += s[i].encode()
            i += 1
    return bytes(out)


@pytest.fixture(params=TRANSPORTS)
def world(request):
    return transport_world(request, request.param, "fy-bytes-")


def run(f, *args, check=True, input=None, timeout=120):
    """The CLI with bytes in and out (Ferry.run decodes its output as text)."""
    argv = [os.fsencode(f.bin)] + [a if isinstance(a, bytes) else str(a).encode()
                                   for a in args]
    cp = subprocess.run(argv, input=input, capture_output=True, env=f.env, cwd=f.work,
                        timeout=timeout)
    if check and cp.returncode:
        raise AssertionError(f"{argv!r} exited {cp.returncode}: {cp.stderr!r}")
    return cp


def ended(f, jid, timeout=120):
    run(f, "wait", jid, timeout=timeout)
    info = json.loads(run(f, "--json", "info", jid).stdout)
    assert info["status"] == "done" and info["exit_value"] == 0, info
    return info


def test_job_fields_keep_their_bytes(world):
    """Every string of a job spec, with each sample, on every backend."""
    f = world
    root = os.path.join(os.fsencode(f.work), b"w")
    jobs = []
    for i, b in enumerate(SAMPLES):
        wd = os.path.join(root, b"d" + b + b"%d" % i)
        os.makedirs(wd)
        jid = int(run(f, "submit", "--name", b"n" + b, "--cwd", wd, "--env", b"X=v" + b,
                      "-o", b"out" + b, "-e", os.path.join(wd, b"err" + b), "--",
                      "sh", "-c", 'printf "%s|%s|%s" "$1" "$X" "$(pwd)"; printf e >&2',
                      "sh", b"a" + b).stdout)
        jobs.append((jid, b, wd))
    for jid, b, wd in jobs:
        info = ended(f, jid)
        with open(os.path.join(wd, b"out" + b), "rb") as fh:
            assert fh.read() == b"a" + b + b"|v" + b + b"|" + wd
        with open(os.path.join(wd, b"err" + b), "rb") as fh:
            assert fh.read() == b"e"
        assert unescape(info["name"]) == b"n" + b
        assert unescape(info["working_directory"]) == wd
        assert unescape(info["stdout_path"]) == os.path.join(wd, b"out" + b)
        assert [unescape(a) for a in info["command"]][-1] == b"a" + b
        assert unescape(info["env"][0]) == b"X=v" + b
        # the text form prints the bytes themselves
        assert b"n" + b in run(f, "info", jid).stdout
        assert b"a" + b in run(f, "logs", jid).stdout


def test_wire_form_is_the_documented_escape(ferry):
    """--json shows each byte that is not UTF-8 as \\u0000 and two hex
    digits, and valid UTF-8 as it is."""
    jid = int(run(ferry, "submit", "--hold", "--name", b"r\xe9s\xc3\xa9", "--", "true").stdout)
    text = run(ferry, "--json", "info", jid).stdout.decode()
    assert '"name":"r\\u0000e9s\u00e9"' in text.replace(" ", ""), text
    jobs = run(ferry, "--json", "jobs").stdout.decode()
    assert "r\\u0000e9s" in jobs, jobs


def test_bulk_lines_keep_their_bytes(ferry):
    lines = b"".join(b"printf %s '" + b + b"'\n" for b in SAMPLES)
    ids = run(ferry, "submit", "--bulk", "-", input=lines).stdout.split()
    assert len(ids) == len(SAMPLES)
    for jid, b in zip(ids, SAMPLES):
        ended(ferry, int(jid))
        assert run(ferry, "logs", int(jid)).stdout == b


@pytest.mark.parametrize("transport", ["local", "ssh"])
def test_transfers_keep_file_names(request, transport):
    """A sent tree and a retrieved one whose names are not UTF-8."""
    f = transport_world(request, transport, "fy-bytes-")
    src = os.path.join(os.fsencode(f.work), b"in" + LATIN1)
    os.makedirs(os.path.join(src, b"sub\xff"))
    for i, b in enumerate(SAMPLES):
        with open(os.path.join(src, b"sub\xff", b"f%d" % i + b), "wb") as fh:
            fh.write(b"data" + b)
    out = os.path.join(os.fsencode(f.work), b"out\xfe")
    sp = run(f, "send", src).stdout.strip()
    tr = json.loads(run(f, "--json", "transfers").stdout)
    assert [unescape(t["local_paths"][0]) for t in tr] == [src]
    assert unescape(tr[0]["server_path"]) == sp
    jid = int(run(f, "submit", "--in", src, "--out", out, "--", "sh", "-ec",
                  b'mkdir "$2"; cp -r "$1"/* "$2"/; ls "$1/sub\xff" > "$2/list\xe9"',
                  "sh", src, out).stdout)
    ended(f, jid)
    assert sp  # the send printed its server path
    outs = [t for t in json.loads(run(f, "--json", "transfers").stdout)
            if t["kind"] == "register"]
    assert unescape(outs[0]["local_paths"][0]) == out
    run(f, "retrieve", unescape(outs[0]["server_path"]))
    names = sorted(os.listdir(os.path.join(out, b"sub\xff")))
    assert names == sorted(b"f%d" % i + b for i, b in enumerate(SAMPLES))
    for i, b in enumerate(SAMPLES):
        with open(os.path.join(out, b"sub\xff", b"f%d" % i + b), "rb") as fh:
            assert fh.read() == b"data" + b
    with open(os.path.join(out, b"list\xe9"), "rb") as fh:
        assert sorted(fh.read().split()) == sorted(b"f%d" % i + b for i, b in enumerate(SAMPLES))


def test_escape_that_is_not_one_is_refused(ferry):
    """On the wire, a U+0000 that stands for no byte from 80 to ff is
    invalid, and the connection stays usable."""
    ferry.run("ping")  # starts the engine
    with ferry.raw() as c:
        c.hello()
        for bad in ["x\\u0000", "\\u000041", "\\u0000f", "\\u000000", "\\u0000zz"]:
            body = ('{"op":"submit","jobs":[{"argv":["true"],"hold":true,'
                    '"working_directory":"/","name":"' + bad + '"}]}')
            c.send(frame(raw_json=body.encode()))
            r = c.recv()[0]
            assert not r["ok"] and r["error"] in ("EINVAL", "EPROTO"), r
            assert "80 to ff" in r["message"], r
        c.send(frame(raw_json=b'{"op":"submit","jobs":[{"argv":["true"],"hold":true,'
                   b'"working_directory":"/","name":"ok\\u0000e9"}]}'))
        r = c.recv()[0]
        assert r["ok"], r
    assert unescape(ferry.info(r["ids"][0])["name"]) == b"ok\xe9"

