"""Listings as JSON Lines (docs/protocol.md, "Listings", "format"): the
engine writes each job object as text from its row, the CLI prints it as
it stands. What it writes must be exactly the job object `info` gives,
bytes escaped the protocol's way, live fields of active jobs included,
disposed jobs left out, and --json must stay one valid array."""
import json
import time

import pytest

from conftest import frame
from test_listing import held

# strings the protocol must carry byte for byte: quotes, backslashes,
# control characters, non-ASCII, and bytes that are no UTF-8 (escaped as
# U+0000 and two hex digits, docs/protocol.md "Bytes")
ODD = ['a"b\\c', "tab\tnew\nline\x01\x1f\x7f", "é ü ✓ 𝄞", "r\u0000e9sum\u0000e9", "/x/y"]
# the same without the escaped bytes: such a spec is copied as it stands
# (jscan.c), one with them is parsed (dbrow.c): both must give the same
UTF8 = [s for s in ODD if "\u0000" not in s]


def pages(conn, req):
    """(reply, binary part) of each page of one jobs request."""
    conn.send(frame({"op": "jobs", **req}))
    out = []
    while True:
        r, b = conn.recv()
        out.append((r, b))
        if not r.get("ok") or not r.get("more"):
            return out


def raw_info(conn, jid):
    """The bytes of info's reply frame (its JSON part)."""
    conn.send(frame({"op": "info", "id": jid}))
    hdr = conn._recv_exact(16)
    body_len, json_len = int.from_bytes(hdr[8:12], "big"), int.from_bytes(hdr[12:16], "big")
    return conn._recv_exact(body_len)[:json_len]


def submit_odd(conn, n):
    """n held jobs whose name, command and environment hold ODD (odd k: UTF8)."""
    strs = lambda k: UTF8 if k % 2 else ODD
    jobs = [{"argv": ["echo"] + strs(k) + [str(k)], "name": ODD[k % len(ODD)] + str(k),
             "env": [f"V{i}={s}" for i, s in enumerate(strs(k))], "working_directory": "/tmp",
             "hold": True} for k in range(n)]
    ids = []
    for k in range(0, n, 1000):
        r = conn.request({"op": "submit", "jobs": jobs[k:k + 1000]})
        assert r["ok"], r
        ids += r["ids"]
    return ids


def lines_of(pgs):
    out = []
    for r, b in pgs:
        assert r["ok"], r
        lines = b.split(b"\n")
        assert lines[-1] == b"", "a page ends with a newline"
        assert r["count"] == len(lines) - 1
        if r["count"]:
            assert r["last"] == json.loads(lines[-2])["id"]
        out += lines[:-1]
    return out


def test_lines_are_info_objects_byte_for_byte(ferry):
    ferry.run("daemon", "start")
    with ferry.raw() as c:
        c.hello()
        ids = submit_odd(c, 2500) + held(ferry, 300)
        pgs = pages(c, {"detail": True, "format": "jsonl"})
        assert len(pgs) >= 3  # several pages
        lines = lines_of(pgs)
        assert [json.loads(l)["id"] for l in lines] == ids
        for line in lines[:6] + lines[::97] + lines[-3:]:
            body = raw_info(c, json.loads(line)["id"])
            assert line in body, (line, body)
            assert json.loads(body)["job"] == json.loads(line)
        for k, strs in ((7, UTF8), (8, ODD)):
            o = json.loads(lines[k])
            assert o["name"] == ODD[k % len(ODD)] + str(k) and o["command"][1:-1] == strs
            assert o["env"] == [f"V{i}={s}" for i, s in enumerate(strs)]
        assert o["stdout_path"].endswith(f"/{o['id']}/stdout")
        # the form of protocol version 2 ("jobs") holds the same objects
        old = [j for r, _ in pages(c, {"detail": True}) for j in r["jobs"]]
        assert old == [json.loads(l) for l in lines]
    # the CLI prints the lines as they stand
    assert ferry.run("jobs", "--jsonl").stdout.encode() == b"".join(l + b"\n" for l in lines)


def test_active_jobs_show_their_live_fields(ferry):
    jid = ferry.submit("sleep", "30")
    deadline = time.time() + 30
    while ferry.run("status", jid).stdout.strip() != "running":
        assert time.time() < deadline, "the job did not start"
        time.sleep(0.1)
    with ferry.raw() as c:
        c.hello()
        (line,) = lines_of(pages(c, {"detail": True, "format": "jsonl"}))
        o = json.loads(line)
        assert o["status"] == "running" and o["started_at"] > 0
        assert line in raw_info(c, jid)
    ferry.run("kill", jid)
    ferry.run("wait", "--timeout", "30", jid, check=False)
    # ended by a signal: no exit value in the row, 0 as the struct (and `info`) shows it
    (o,) = ferry.json("jobs", "--state", "failed")
    assert o["exit_value"] == 0 and o["signal"] > 0 and o["exit_status"] != "none"
    assert o == ferry.info(jid)


def test_disposed_jobs_are_not_listed(ferry):
    keep = held(ferry, 3)
    # a job that shrugs off SIGTERM is disposed of while it is being killed
    jid = ferry.submit("sh", "-c", "trap '' TERM; sleep 30")
    deadline = time.time() + 30
    while ferry.run("status", jid).stdout.strip() != "running":
        assert time.time() < deadline, "the job did not start"
        time.sleep(0.1)
    ferry.run("dispose", jid)
    assert [j["id"] for j in ferry.json("jobs")] == keep
    with ferry.raw() as c:
        c.hello()
        assert [json.loads(l)["id"] for l in
                lines_of(pages(c, {"detail": True, "format": "jsonl"}))] == keep


@pytest.mark.parametrize("n", [0, 1, 2500])
def test_json_is_one_array_for_any_number_of_pages(ferry, n):
    ids = held(ferry, n) if n else []
    out = ferry.run("jobs", "--json").stdout
    arr = json.loads(out)
    assert [j["id"] for j in arr] == ids
    lines = ferry.run("jobs", "--jsonl").stdout.splitlines()
    assert arr == [json.loads(l) for l in lines]
    assert out == ("[]\n" if not n else "[\n" + ",\n".join(lines) + "\n]\n")


def test_pages_stay_under_4_mib(ferry):
    big = "x" * 100_000
    ferry.run("daemon", "start")
    with ferry.raw() as c:
        c.hello()
        r = c.request({"op": "submit", "jobs": [
            {"argv": ["true", big, str(k)], "working_directory": "/tmp", "hold": True}
            for k in range(100)]})
        assert r["ok"], r
        pgs = pages(c, {"detail": True, "format": "jsonl"})
        assert len(pgs) >= 3
        assert all(len(b) <= 4 << 20 for _, b in pgs)
        assert [json.loads(l)["id"] for l in lines_of(pgs)] == r["ids"]
        # a limit counts the jobs of pages cut short
        assert len(lines_of(pages(c, {"detail": True, "format": "jsonl", "limit": 77}))) == 77


@pytest.mark.parametrize("req,pattern", [
    ({"detail": True, "format": "xml"}, r"'format' must be \"json\" or \"jsonl\""),
    ({"detail": True, "format": 1}, r"'format' must be"),
    ({"format": "jsonl"}, r"'format' is the form of job objects: it takes 'detail' true"),
    ({"detail": False, "format": "json"}, r"takes 'detail' true"),
])
def test_bad_format(ferry, req, pattern):
    import re
    ferry.run("daemon", "start")
    with ferry.raw() as c:
        c.hello()
        r = c.request({"op": "jobs", **req})
        assert not r["ok"] and r["error"] == "EINVAL" and re.search(pattern, r["message"]), r
