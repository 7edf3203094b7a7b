"""Hardening of transfers (issue 21, items 5 and 6; docs/transfers.md).

5. An output is not retrievable while a job that produces it has not
   ended (queued, running, stopped, held), nor a send whose bytes are still
   arriving; nothing copied meanwhile is recorded as retrieved.
6. Files whose size says nothing of their bytes (/proc, /sys) are read
   until EOF; a file that changes while it is read or sent is refused;
   sparse files keep their holes, on a send and a retrieve, on this host
   (the client's own copy, copy.c) and over ssh (puts and gets of holes).

Most tests run on both transports: "local" (the client copies on this
host) and "ssh" (the bytes go through the link)."""
import errno
import os
import re
import subprocess
import threading
import time

import pytest

from conftest import frame, poll
from test_transfer import (interrupted_send, md5, raw_request, send, tinfo,
                           tree_contents)
# the fixtures: local and ssh, and local only, as for the transfer tests
from test_transfer import ferry, local  # noqa: F401,F811


# ------------------------------------------------- 5: outputs of unfinished jobs


UNFINISHED = {"queued": "queued_active", "running": "running",
              "stopped": "user_suspended", "held": "user_on_hold"}


def producer(out, go):
    """A job that writes half of out, waits for the file go, then writes the rest."""
    return ["sh", "-c", f"head -c 3000000 /dev/urandom > {out}; "
                        f"while [ ! -e {go} ]; do sleep 0.05; done; "
                        f"head -c 3000000 /dev/urandom >> {out}"]


def refused_retrieve(ferry, out, jid, state):
    """A retrieve of out fails naming job jid in state; nothing is written locally."""
    local = ferry.json("transfers", out)["local_paths"][0]
    cp = ferry.run("retrieve", out, check=False)
    assert cp.returncode == 1, cp
    assert re.search(rf"is not complete: job {jid}, which produces it, is {state}",
                     cp.stderr), cp.stderr
    assert not os.path.exists(local)
    assert not os.path.exists(os.path.join(os.path.dirname(local),
                                           "." + os.path.basename(local) + ".ferry-part"))
    assert tinfo(ferry, out)["state"] == "registered", "never recorded as produced"


@pytest.mark.parametrize("how", list(UNFINISHED))
def test_output_of_an_unfinished_job_is_refused(ferry, how):
    """Queued, running, stopped or held: the retrieve fails with the job and
    its state, and records nothing; once the job ended it works and gives
    the job's bytes exactly."""
    out = ferry.run("register", ferry.path("o.bin")).stdout.strip()
    go = ferry.path("go")
    blockers = []
    if how in ("queued", "held"):
        # bytes already there (an earlier run's): still not the job's output
        with open(out, "wb") as f:
            f.write(b"stale" * 1000)
    if how == "queued":  # both slots taken
        blockers = [ferry.submit("sleep", "300") for _ in range(2)]
        for b in blockers:
            ferry.wait_state(b, "running")
    jid = ferry.submit(*producer(out, go),
                       opts=["--output", out] + (["--hold"] if how == "held" else []))
    if how in ("running", "stopped"):
        poll(lambda: os.path.exists(out) and os.path.getsize(out) >= 3000000, 30,
             what="the job's first half")
    if how == "stopped":
        ferry.run("stop", jid)
    ferry.wait_state(jid, UNFINISHED[how])
    refused_retrieve(ferry, out, jid, UNFINISHED[how])
    cp = ferry.run("retrieve", "--to", ferry.path("elsewhere.bin"), out, check=False)
    assert cp.returncode == 1 and not os.path.exists(ferry.path("elsewhere.bin")), cp

    # the job goes on and ends: now the retrieve works
    for b in blockers:
        ferry.run("kill", b)
    if how == "held":
        ferry.run("release", jid)
    if how == "stopped":
        ferry.run("restart", jid)
    open(go, "w").close()
    ferry.run("wait", "--timeout", "60", jid, timeout=70)
    assert ferry.state(jid) == "done"
    ferry.run("retrieve", out)
    assert os.path.getsize(ferry.path("o.bin")) == 6000000
    assert md5(ferry.path("o.bin")) == md5(out)
    assert tinfo(ferry, out)["state"] == "retrieved"


def test_send_still_arriving_is_refused(ferry):
    """A send whose bytes are still arriving (transferring) is not
    retrieved: the retrieve fails and writes nothing; once complete it is."""
    big = ferry.path("arriving.bin")
    with open(big, "wb") as f:
        f.write(os.urandom(24 << 20))
    sp = interrupted_send(ferry, big, 0.3)
    dest = ferry.path("back.bin")
    cp = ferry.run("retrieve", "--to", dest, sp, check=False)
    assert cp.returncode == 1 and "is transferring, not ready" in cp.stderr, cp
    assert not os.path.exists(dest)
    assert tinfo(ferry, sp)["state"] == "transferring"
    assert send(ferry, big) == sp
    ferry.run("retrieve", "--to", dest, sp)
    assert md5(dest) == md5(big)


def get(local, sp, **kw):
    with local.raw() as r:
        r.hello()
        r.send(frame({"op": "transfer_get", "server_path": sp, "file": 0, "offset": 0,
                      "length": 1 << 20, **kw}))
        return r.recv()


def test_gets_and_the_retrieved_mark_wait_for_every_producer(local):
    """The manifest is not the only gate: a get or the mark "retrieved"
    asked directly is refused too while a job that produces the output has
    not ended, also when another one that produces it has; and a transfer
    still arriving gives no bytes either."""
    out = local.run("register", local.path("two.txt")).stdout.strip()
    first = local.submit("sh", "-c", f"echo first > {out}", opts=["--output", out])
    local.wait_ended(first)
    assert tinfo(local, out)["state"] == "produced"
    second = local.submit("sh", "-c", f"echo second > {out}", opts=["--output", out, "--hold"])
    rep, data = get(local, out)
    assert rep["ok"] is False and rep["error"] == "ESTATE", rep
    assert f"job {second}, which produces it, is user_on_hold" in rep["message"]
    assert data == b""
    rep = raw_request(local, {"op": "transfer_retrieved", "server_path": out})
    assert rep["ok"] is False and rep["error"] == "ESTATE", rep
    assert tinfo(local, out)["state"] == "produced", "not marked retrieved"
    local.run("release", second)
    local.wait_ended(second)
    local.run("retrieve", out)
    assert open(local.path("two.txt")).read() == "second\n"

    r = raw_request(local, {"op": "transfer_send", "key": "k-arriving", "local_paths": ["/x/a"],
                            "files": [{"path": "a", "type": "file", "size": 8, "mode": 0o644,
                                       "mtime_ns": 0}]})
    assert r["ok"] is True
    rep, data = get(local, r["server_path"])
    assert rep["ok"] is False and "is transferring, not ready" in rep["message"], rep
    rep = raw_request(local, {"op": "transfer_retrieved", "server_path": r["server_path"]})
    assert rep["ok"] is False and rep["error"] == "ESTATE", rep


def test_output_is_produced_when_its_last_producer_ends(local):
    """Two jobs write one output: it is not produced, and a job that reads
    it as an input does not start, until both have ended."""
    out = local.run("register", local.path("shared.txt")).stdout.strip()
    go = local.path("go")
    slow = local.submit("sh", "-c", f"while [ ! -e {go} ]; do sleep 0.05; done; echo b >> {out}",
                        opts=["--output", out])
    local.wait_state(slow, "running")
    quick = local.submit("sh", "-c", f"echo a > {out}", opts=["--output", out])
    reader = local.submit("cat", out, opts=["--input", out])
    local.wait_ended(quick)
    assert local.state(slow) == "running"
    time.sleep(0.5)
    assert tinfo(local, out)["state"] == "registered"
    assert local.state(reader) == "system_on_hold"
    open(go, "w").close()
    local.wait_ended(slow)
    local.wait_ended(reader)
    assert local.state(reader) == "done"
    assert local.run("logs", reader).stdout == "a\nb\n"
    assert tinfo(local, out)["state"] == "produced"


# ------------------------------------------------------- 6: pseudo-files


PSEUDO = ["/proc/version", "/proc/filesystems", "/proc/sys/kernel/ostype", "/sys/devices/system/cpu/online",
          "/sys/class/net/lo/address", "/sys/kernel/mm/transparent_hugepage/enabled"]


@pytest.mark.parametrize("path", PSEUDO)
def test_pseudo_file_is_read_until_eof(ferry, path):
    """/proc files say size 0, /sys files 4096: what is sent is what
    reading them gives, checked, and it comes back the same."""
    if not os.path.exists(path):
        pytest.skip(f"{path} is not on this machine")
    with open(path, "rb") as f:
        want = f.read()
    assert want and len(want) != os.stat(path).st_size, "the size must lie for this test"
    sp = send(ferry, path)
    assert open(sp, "rb").read() == want
    t = tinfo(ferry, sp)
    assert t["state"] == "ready" and t["size"] == len(want), t
    ferry.run("retrieve", "--to", ferry.path("back"), sp)
    assert open(ferry.path("back"), "rb").read() == want


def test_proc_files_that_change_are_each_sent_as_read(ferry):
    """cpuinfo is sent whole, not as an empty file; a file that gives other
    bytes at each read (uuid) is a new transfer each time, never the first
    one found again by its unchanged times."""
    sp = send(ferry, "/proc/cpuinfo")
    got = open(sp, "rb").read()
    assert got.startswith(b"processor") and len(got) > 100
    one = send(ferry, "/proc/sys/kernel/random/uuid")
    two = send(ferry, "/proc/sys/kernel/random/uuid")
    assert one != two
    a, b = open(one).read(), open(two).read()
    assert re.fullmatch(r"[0-9a-f-]{36}\n", a) and a != b


def test_tree_of_pseudo_files(ferry):
    """A /proc directory: every file read until EOF, none empty."""
    top = "/proc/sys/kernel/random"
    sp = send(ferry, top)
    for name in ("boot_id", "poolsize", "urandom_min_reseed_secs"):
        assert open(os.path.join(sp, name), "rb").read() == \
            open(os.path.join(top, name), "rb").read(), name
    assert all(os.path.getsize(os.path.join(sp, n)) > 0 for n in os.listdir(sp))


def test_stream_that_would_block_is_refused(local, request):
    """A pseudo-file whose read waits for more (a stream) is refused, not
    waited on for ever; a file of size 0 that is a real empty file is sent."""
    empty = local.path("empty")
    open(empty, "w").close()
    sp = send(local, empty)
    assert os.path.getsize(sp) == 0 and tinfo(local, sp)["state"] == "ready"
    tracing = local.path("tracing")  # tracefs, where trace_pipe waits for events
    os.makedirs(tracing)
    if subprocess.run(["mount", "-t", "tracefs", "nodev", tracing]).returncode:
        pytest.skip("tracefs cannot be mounted here")
    request.addfinalizer(lambda: subprocess.run(["umount", "-l", tracing]))
    cp = local.run("send", os.path.join(tracing, "trace_pipe"), check=False, timeout=20)
    assert cp.returncode == 1 and "would wait for more" in cp.stderr, cp


class Grower:
    """Appends to a file, 4 KiB about every millisecond, until stopped."""

    def __init__(self, path):
        self.path, self.stop = path, threading.Event()
        self.t = threading.Thread(target=self.run, daemon=True)

    def run(self):
        with open(self.path, "ab") as f:
            while not self.stop.is_set():
                f.write(b"g" * 4096)
                f.flush()
                time.sleep(0.001)

    def __enter__(self):
        self.t.start()
        time.sleep(0.05)
        return self

    def __exit__(self, *a):
        self.stop.set()
        self.t.join()


@pytest.mark.parametrize("start", [0, 32 << 20], ids=["from-empty", "large"])
def test_file_growing_while_sent_is_refused(ferry, start):
    """A file appended to while it is sent fails the send: nothing is
    ready, no copy is recorded as verified. (A send that fell between two
    appends is complete and right: its copy is a prefix of the file; it is
    tried again then.) Sent again once still, it is complete."""
    path = ferry.path("growing.log")
    with open(path, "wb") as f:
        f.write(os.urandom(start))
    failed = None
    with Grower(path):
        for _ in range(10):
            cp = ferry.run("send", path, check=False, timeout=120)
            if cp.returncode:
                failed = cp
                break
            sp = cp.stdout.strip()
            with open(sp, "rb") as a, open(path, "rb") as b:
                copy = a.read()
                assert copy == b.read(len(copy)), "a ready copy is what the file held"
    assert failed and failed.returncode == 1, failed
    assert re.search(r"changed while it was (sent|read)", failed.stderr), failed.stderr
    for t in ferry.json("transfers"):
        if t["state"] != "ready":
            assert t["state"] == "transferring" and t["hash"] is None, t
            assert not os.path.exists(t["server_path"])
    sp = send(ferry, path)
    assert md5(sp) == md5(path)


# ------------------------------------------------------- 6: sparse files


def sparse(path, size, pieces):
    """A file of size bytes that holds pieces {offset: bytes}, holes elsewhere."""
    with open(path, "wb") as f:
        f.truncate(size)
        for off, data in pieces.items():
            f.seek(off)
            f.write(data)


def disk(path):
    return os.stat(path).st_blocks * 512


def data_map(path):
    """The data extents [(start, end)] of a file (SEEK_DATA, SEEK_HOLE)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        size, pos, out = os.fstat(fd).st_size, 0, []
        while pos < size:
            try:
                d = os.lseek(fd, pos, os.SEEK_DATA)
            except OSError as e:
                if e.errno == errno.ENXIO:
                    break
                raise
            pos = os.lseek(fd, d, os.SEEK_HOLE)
            out.append((d, pos))
        return out
    finally:
        os.close(fd)


def same_sparse(copy, src, slack=1 << 20):
    """copy has src's size and bytes, no data where src has a hole, and
    about src's disk use."""
    assert os.path.getsize(copy) == os.path.getsize(src)
    assert disk(copy) <= disk(src) + slack, (disk(copy), disk(src))
    assert data_map(copy) == data_map(src)
    with open(copy, "rb") as a, open(src, "rb") as b:
        for start, end in data_map(src):
            a.seek(start)
            b.seek(start)
            assert a.read(end - start) == b.read(end - start), (start, end)


def test_sparse_file_keeps_its_holes(ferry):
    """10 GiB holding 4 KiB: sent and retrieved in seconds, each copy
    using about 4 KiB of disk, the same bytes where there are some."""
    src = ferry.path("sparse.img")
    sparse(src, 10 << 30, {5 << 30: os.urandom(4096)})
    t0 = time.monotonic()
    sp = send(ferry, src)
    took = time.monotonic() - t0
    assert tinfo(ferry, sp)["state"] == "ready"
    same_sparse(sp, src, slack=64 << 10)
    assert took < 20, f"a send of 4 KiB took {took:.1f} s"
    t0 = time.monotonic()
    ferry.run("retrieve", "--to", ferry.path("back.img"), sp, timeout=120)
    took = time.monotonic() - t0
    same_sparse(ferry.path("back.img"), src, slack=64 << 10)
    assert took < 20, f"a retrieve of 4 KiB took {took:.1f} s"


def test_data_hole_data(ferry):
    """Data, a hole, data, a hole at the end (the copy is extended over
    it): the bytes are the same, checked end to end, the holes kept."""
    src = ferry.path("dhd.bin")
    sparse(src, 300 << 20, {0: os.urandom(3 << 20), (200 << 20) + 12288: os.urandom(5 << 20),
                            (250 << 20): b"tail" * 1024})
    sp = send(ferry, src)
    same_sparse(sp, src)
    assert md5(sp) == md5(src)
    ferry.run("retrieve", "--to", ferry.path("back.bin"), sp)
    same_sparse(ferry.path("back.bin"), src)
    assert md5(ferry.path("back.bin")) == md5(src)


def test_sparse_file_in_a_tree(ferry):
    top = ferry.path("tree")
    os.makedirs(os.path.join(top, "d"))
    with open(os.path.join(top, "a.txt"), "w") as f:
        f.write("plain\n")
    sparse(os.path.join(top, "d", "disk.img"), 1 << 30, {1 << 20: b"x" * 8192})
    sparse(os.path.join(top, "d", "small-hole"), 200 << 10, {100 << 10: b"y"})
    sp = send(ferry, top)
    same_sparse(os.path.join(sp, "d", "disk.img"), os.path.join(top, "d", "disk.img"))
    assert open(os.path.join(sp, "a.txt")).read() == "plain\n"
    assert md5(os.path.join(sp, "d", "small-hole")) == md5(os.path.join(top, "d", "small-hole"))
    dest = ferry.path("back")
    ferry.run("retrieve", "--to", dest, sp)
    same_sparse(os.path.join(dest, "d", "disk.img"), os.path.join(top, "d", "disk.img"))
    assert tree_contents(os.path.join(dest, "d")).keys() == {"disk.img", "small-hole"}
    assert md5(os.path.join(dest, "d", "small-hole")) == md5(os.path.join(top, "d", "small-hole"))


def test_sparse_output_is_retrieved_sparse(ferry):
    """A job's output with holes comes back with them."""
    out = ferry.run("register", ferry.path("out.img")).stdout.strip()
    jid = ferry.submit("sh", "-c", f"truncate -s 4G {out} && printf data | "
                       f"dd of={out} bs=4096 seek=262144 conv=notrunc 2>/dev/null",
                       opts=["--output", out])
    ferry.run("wait", "--timeout", "60", jid, timeout=70)
    assert ferry.state(jid) == "done"
    t0 = time.monotonic()
    ferry.run("retrieve", out, timeout=120)
    assert time.monotonic() - t0 < 20
    same_sparse(ferry.path("out.img"), out, slack=64 << 10)


def test_interrupted_sparse_send_resumes(ferry):
    """A send of a sparse file stopped midway resumes and completes, the
    holes still holes."""
    src = ferry.path("resume.img")
    pieces = {i << 24: os.urandom(4 << 20) for i in range(24)}
    sparse(src, 24 << 24, pieces)
    sp = interrupted_send(ferry, src, 0.4)
    assert send(ferry, src) == sp
    same_sparse(sp, src)
    assert md5(sp) == md5(src)


def test_holes_on_the_wire(local):
    """transfer_get with holes: the holes of the range, its data only as
    the binary part, where the hole that ends the range ends; a put of a
    hole extends the part and feeds the checksum; its misuses are refused."""
    src = local.path("w.img")
    sparse(src, 64 << 20, {4096: b"A" * 4096, 40 << 20: b"B" * 4096})
    sp = send(local, src)
    rep, data = get(local, sp, holes=True)
    assert rep["ok"] is True, rep
    assert rep["holes"] == [[0, 4096], [8192, (1 << 20) - 8192]], rep
    assert rep["next_data"] == 40 << 20 and rep["size"] == 4096 and data == b"A" * 4096
    rep, data = get(local, sp)  # not asked: the bytes, zeros included
    assert rep["ok"] is True and "holes" not in rep and data == bytes(4096) + b"A" * 4096 + \
        bytes((1 << 20) - 8192)

    from test_transfer import xxh128
    r = raw_request(local, {"op": "transfer_send", "key": "k-hole", "local_paths": ["/x/h"],
                            "files": [{"path": "h", "type": "file", "size": 3 << 20,
                                       "mode": 0o644, "mtime_ns": 0, "sparse": True}]})
    assert r["ok"] is True and r["holes"] is True, r
    put = {"op": "transfer_put", "id": r["id"], "file": 0}
    for bad, binary, pattern in [({"offset": 0, "hole": 5}, b"x", "carries no data"),
                                 ({"offset": 0, "hole": 0}, b"", "'hole' must be"),
                                 ({"offset": 0, "hole": 4 << 20}, b"", "past the size")]:
        rep = raw_request(local, {**put, **bad}, binary)
        assert rep["ok"] is False and pattern in rep["message"], (bad, rep)
    rep = raw_request(local, {**put, "offset": 0}, b"head")
    assert rep["ok"] is True, rep
    rep = raw_request(local, {**put, "offset": 4, "hole": (3 << 20) - 4,
                              "hash": xxh128(b"head" + bytes((3 << 20) - 4))})
    assert rep["ok"] is True and rep["complete"] is True and rep["state"] == "ready", rep
    assert os.path.getsize(r["server_path"]) == 3 << 20 and disk(r["server_path"]) <= 8192
