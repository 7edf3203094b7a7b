"""File transfers (docs/transfers.md): sends, registered outputs, retrieval,
resume, corruption, disposal, path attacks, a full disk. Most tests run on
both transports: the local socket (where the client copies with
copy_file_range) and ssh (where bytes go in chunks through the link)."""
import hashlib
import json
import os
import re
import signal
import stat
import subprocess
import time

import pytest

from conftest import (FERRY_BIN, SCHEMA_5_TO_4, SCHEMA_6_TO_5, SCHEMA_7_TO_6, SCHEMA_8_TO_7, frame,
                      ferry_world, poll)



@pytest.fixture(params=["local", "ssh"])
def ferry(request):
    return ferry_world(request, request.param)


@pytest.fixture
def local(request):
    return ferry_world(request, "local")


def md5(path):
    h = hashlib.md5()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def xxh128(data):
    """XXH3-128 as ferry writes it, by libxxhash through ctypes."""
    import ctypes
    lib = ctypes.CDLL("libxxhash.so.0")

    class H128(ctypes.Structure):
        _fields_ = [("low64", ctypes.c_uint64), ("high64", ctypes.c_uint64)]
    lib.XXH3_128bits.restype = H128
    lib.XXH3_128bits.argtypes = [ctypes.c_char_p, ctypes.c_size_t]
    h = lib.XXH3_128bits(data, len(data))
    return "%016x%016x" % (h.high64, h.low64)


def make_file(path, size, seed=0):
    """size bytes of reproducible data (fast: a repeated random block)."""
    block = hashlib.sha256(str(seed).encode()).digest() * 32768  # 1 MiB
    with open(path, "wb") as f:
        left = size
        i = 0
        while left > 0:
            chunk = block[: min(left, len(block))]
            # vary each MiB so that a misplaced chunk changes the checksum
            chunk = i.to_bytes(8, "little") + chunk[8:] if len(chunk) >= 8 else chunk
            f.write(chunk)
            left -= len(chunk)
            i += 1


def send(ferry, *paths, opts=()):
    return ferry.run("send", *opts, *paths, timeout=300).stdout.strip()


def tinfo(ferry, sp):
    return ferry.json("transfers", sp)


def root_of(ferry):
    return os.path.join(ferry.state_dir, "transfers")


# ------------------------------------------------------------ the seed


def test_seed_example(ferry):
    """sendFile, registerFileTransfer, a job reading and writing them,
    wait, retrieveFile: the output is byte-identical to what the job wrote."""
    data = ferry.path("mypath")
    os.makedirs(data)
    make_file(os.path.join(data, "file0"), 3 << 20, seed=1)
    script = os.path.join(data, "script.sh")
    with open(script, "w") as f:
        f.write("#!/bin/sh\nmd5sum < \"$1\" > \"$2\"\nhead -c 1000 \"$1\" >> \"$2\"\n")
    file0 = send(ferry, os.path.join(data, "file0"), opts=["--disposal", "168"])
    scr = send(ferry, script)
    file1 = ferry.run("register", os.path.join(data, "file1")).stdout.strip()
    assert file0.startswith(root_of(ferry) + "/") and file0.endswith("/file0")
    assert scr.endswith("/script.sh") and file1.endswith("/file1")
    jid = ferry.submit("sh", scr, file0, file1,
                       opts=["--input", file0, "--input", scr, "--output", file1])
    ferry.run("wait", "--timeout", "60", jid, timeout=70)
    assert ferry.state(jid) == "done"
    ferry.run("retrieve", file1)
    with open(os.path.join(data, "file1"), "rb") as f:
        got = f.read()
    with open(file1, "rb") as f:  # what the job wrote, on the (same) host
        assert got == f.read()
    assert got.startswith(md5(os.path.join(data, "file0")).encode())
    t = tinfo(ferry, file1)
    assert t["state"] == "retrieved" and t["jobs"] == [jid], t
    t0 = tinfo(ferry, file0)
    assert t0["state"] == "ready" and t0["size"] == 3 << 20 and t0["done"] == 3 << 20
    listed = {t["server_path"]: t for t in ferry.json("transfers")}
    assert listed[file0]["done"] == 3 << 20 and listed[file1]["done"] == t["size"] > 0, listed


def test_directory_keeps_structure_modes_and_mtimes(ferry):
    src = ferry.path("tree")
    os.makedirs(os.path.join(src, "a", "b"))
    os.makedirs(os.path.join(src, "empty"))
    files = {"top.txt": (0o644, b"top\n"), "a/x.nii.gz": (0o600, os.urandom(70000)),
             "a/b/run.sh": (0o755, b"#!/bin/sh\necho run\n"), "a/b/zero": (0o640, b"")}
    for rel, (mode, content) in files.items():
        p = os.path.join(src, rel)
        with open(p, "wb") as f:
            f.write(content)
        os.chmod(p, mode)
        os.utime(p, (1500000000, 1500000000 + len(rel)))
    os.chmod(os.path.join(src, "a", "b"), 0o750)
    os.utime(os.path.join(src, "a"), (1400000000, 1400000000))
    sp = send(ferry, src)
    assert sp.endswith("/tree")

    def snapshot(top):
        out = {}
        for d, dirs, fs in os.walk(top):
            for n in dirs + fs:
                p = os.path.join(d, n)
                st = os.lstat(p)
                content = open(p, "rb").read() if stat.S_ISREG(st.st_mode) else None
                out[os.path.relpath(p, top)] = (stat.S_IMODE(st.st_mode), st.st_mtime_ns,
                                                content)
        return out

    assert snapshot(sp) == snapshot(src)
    dest = ferry.path("back")
    ferry.run("retrieve", "--to", dest, sp)
    assert snapshot(dest) == snapshot(src)


def test_a_path_inside_a_transfer_is_not_taken_for_all_of_it(ferry):
    """A retrieve or cancel of one file inside a sent directory once acted
    on the whole directory: the retrieve of top.txt wrote the tree."""
    src = ferry.path("tree")
    os.makedirs(os.path.join(src, "a"))
    for rel in ("top.txt", "a/x.txt"):
        with open(os.path.join(src, rel), "w") as f:
            f.write(rel + "\n")
    sp = send(ferry, src)
    inner = os.path.join(sp, "top.txt")
    for args in (("retrieve", "--to", ferry.path("one.txt"), inner), ("cancel-transfer", inner)):
        cp = ferry.run(*args, check=False)
        assert cp.returncode == 1, (args, cp)
        verb = "retrieve" if args[0] == "retrieve" else "cancel"
        assert f"'{inner}' is inside transfer '{sp}': {verb} that one" in cp.stderr, cp.stderr
    assert not os.path.exists(ferry.path("one.txt"))
    assert tinfo(ferry, sp)["state"] != "retrieved" and os.path.isdir(sp)
    # the transfer's own directory, named as a directory, is the transfer
    ferry.run("retrieve", "--to", ferry.path("back"), sp + "/")
    assert open(ferry.path("back", "a", "x.txt")).read() == "a/x.txt\n"


def test_several_files_as_one_transfer(ferry):
    img, hdr = ferry.path("brain.img"), ferry.path("brain.hdr")
    make_file(img, 100000, seed=2)
    make_file(hdr, 348, seed=3)
    sp = send(ferry, img, hdr)
    assert sp.endswith("/brain.img")
    assert open(os.path.join(os.path.dirname(sp), "brain.hdr"), "rb").read() == \
        open(hdr, "rb").read()
    # the data set's checksum: over each file's path and checksum, in order
    want = xxh128(b"".join(n + b"\0" + xxh128(open(p, "rb").read()).encode() + b"\0"
                           for n, p in [(b"brain.img", img), (b"brain.hdr", hdr)]))
    assert tinfo(ferry, sp)["hash"] == want
    cp = ferry.run("send", img, ferry.path("brain.img"), check=False)
    assert cp.returncode == 1 and "two files named 'brain.img'" in cp.stderr


def test_held_job_released_by_a_resumed_send(ferry):
    """A job naming an input still on its way is system_on_hold (with a user
    hold on top: user_system_on_hold), and starts by itself once the send
    completes."""
    big = ferry.path("big.bin")
    make_file(big, 64 << 20, seed=5)
    sp = interrupted_send(ferry, big, 0.3)
    # the listing tells the bytes there as transfer_info does, not 0
    listed = [t for t in ferry.json("transfers") if t["server_path"] == sp]
    done = tinfo(ferry, sp)["done"]
    assert 0 < done < 64 << 20 and [t["done"] for t in listed] == [done], (done, listed)
    jid = ferry.submit("true", opts=["--input", sp])
    assert ferry.state(jid) == "system_on_hold"
    ferry.run("hold", jid)
    assert ferry.state(jid) == "user_system_on_hold"
    ferry.run("release", jid)
    assert ferry.state(jid) == "system_on_hold"
    assert send(ferry, big) == sp
    ferry.run("wait", "--timeout", "60", jid, timeout=70)
    assert ferry.state(jid) == "done"
    assert [t["done"] for t in ferry.json("transfers") if t["server_path"] == sp] == [64 << 20]


# ------------------------------------------------------- resume, checks


def part_file(ferry, name):
    for d, _, fs in os.walk(root_of(ferry)):
        for f in fs:
            if f == f".{name}.ferry-part":
                return os.path.join(d, f)
    return None


def interrupted_send(ferry, path, fraction, name=None, size=None):
    """Starts `ferry send path`, SIGKILLs it once the engine holds about
    fraction of the file (of a tree: its first file, name, of size bytes),
    and returns the transfer's server path."""
    size = size or os.path.getsize(path)
    name = name or os.path.basename(path)
    if not ferry.sshd:
        # here the client itself writes the engine's partial file, faster than
        # anyone can watch: a file size limit stops it (SIGXFSZ) right there
        import resource
        limit = int(fraction * size)
        p = ferry.popen("send", path, preexec_fn=lambda: resource.setrlimit(
            resource.RLIMIT_FSIZE, (limit, limit)))
        p.wait()
        assert p.returncode != 0, "the send should have been stopped"
        ts = [t for t in ferry.json("transfers") if t["local_paths"] == [path]]
        assert len(ts) == 1 and ts[0]["state"] == "transferring", ts
        return ts[0]["server_path"]
    p = ferry.popen("send", path)

    def far_enough():
        pf = part_file(ferry, name)
        try:
            return pf and os.path.getsize(pf) >= fraction * size
        except OSError:
            return False
    try:
        poll(far_enough, 120, 0.005, what=f"{fraction:.0%} of {name} on the server")
    finally:
        p.kill()
        p.wait()
    ts = [t for t in ferry.json("transfers") if t["local_paths"] == [path]]
    assert len(ts) == 1 and ts[0]["state"] == "transferring", ts
    return ts[0]["server_path"]


def test_resume_after_client_killed_three_times(ferry):
    """A 200 MiB send killed at three points; the next call finishes it
    without sending again what the engine had, and the checksum matches."""
    big = ferry.path("big200.bin")
    make_file(big, 200 << 20, seed=6)
    sp = None
    for fraction in (0.15, 0.45, 0.8):
        got = interrupted_send(ferry, big, fraction)
        assert sp in (None, got), "a resumed send must keep its transfer"
        sp = got
        done = tinfo(ferry, sp)["done"]
        assert done >= fraction * (200 << 20) * 0.9
    assert send(ferry, big) == sp
    t = tinfo(ferry, sp)
    assert t["state"] == "ready" and t["done"] == 200 << 20
    if ferry.sshd:  # bytes through the link: each exactly once
        assert t["received"] == 200 << 20, t
    else:  # the client copied into the engine's file itself
        assert t["received"] == 0, t
    assert md5(sp) == md5(big)


def flip_byte(path, at=1000):
    with open(path, "r+b") as f:
        f.seek(at)
        b = f.read(1)
        f.seek(at)
        f.write(bytes([b[0] ^ 0xFF]))


def test_corrupted_chunk_is_detected(ferry):
    big = ferry.path("c.bin")
    make_file(big, 48 << 20, seed=7)
    sp = interrupted_send(ferry, big, 0.4)
    flip_byte(part_file(ferry, "c.bin"))  # a bit flips on the server's disk
    cp = ferry.run("send", big, check=False, timeout=300)
    assert cp.returncode == 1 and "checksum mismatch" in cp.stderr, cp
    t = tinfo(ferry, sp)
    assert t["state"] == "transferring", "a file that failed its check is never ready"
    assert not os.path.exists(sp)
    assert send(ferry, big) == sp  # sent again from the start
    assert md5(sp) == md5(big)


def test_corrupted_file_early_in_a_tree(ferry):
    """A tree whose first file fails its check on the server while the
    chunks of the files after it are on their way (the window spans files):
    the send fails naming that file, the transfer is not ready, and the
    next send completes it."""
    top = ferry.path("set")
    os.makedirs(os.path.join(top, "b"))
    make_file(os.path.join(top, "a.bin"), 24 << 20, seed=21)
    for i in range(200):
        with open(os.path.join(top, "b", "s%03d" % i), "wb") as f:
            f.write(b"%d\n" % i * 50)
    sp = interrupted_send(ferry, top, 0.3, name="a.bin", size=24 << 20)
    flip_byte(part_file(ferry, "a.bin"))
    cp = ferry.run("send", top, check=False, timeout=300)
    assert cp.returncode == 1 and "checksum mismatch for 'set/a.bin'" in cp.stderr, cp
    assert tinfo(ferry, sp)["state"] == "transferring"
    assert send(ferry, top) == sp
    assert tinfo(ferry, sp)["state"] == "ready"
    assert tree_contents(sp) == tree_contents(top)


def test_retrieve_resumes_and_checks(ferry):
    out = ferry.run("register", ferry.path("out.bin")).stdout.strip()
    jid = ferry.submit("sh", "-c", f"head -c 30000000 /dev/urandom > {out}",
                       opts=["--output", out])
    ferry.run("wait", "--timeout", "60", jid, timeout=70)
    ferry.run("retrieve", out)
    assert md5(ferry.path("out.bin")) == md5(out)
    # an interrupted download left half a file beside the destination
    os.unlink(ferry.path("out.bin"))
    with open(ferry.path(".out.bin.ferry-part"), "wb") as f:
        f.write(open(out, "rb").read(12345678))
    ferry.run("retrieve", out)
    assert md5(ferry.path("out.bin")) == md5(out)
    assert not os.path.exists(ferry.path(".out.bin.ferry-part"))


def test_tree_retrieve_resumes_and_checks(ferry):
    """A tree's gets are in flight across files. A download that left part
    of the tree (some files whole, one cut short, one wrong) resumes: the
    whole ones are checked as they are on disk, the short one is completed,
    the wrong one is fetched again; a file changed on the server is refused."""
    src = ferry.path("t")
    small_tree(src, 300, 6)
    make_file(os.path.join(src, "big.bin"), 5 << 20, seed=31)
    sp = send(ferry, src)
    dest = ferry.path("back")
    ferry.run("retrieve", "--to", dest, sp)
    assert tree_contents(dest) == tree_contents(src)
    part = ferry.path(".back.ferry-part")
    os.rename(dest, part)
    with open(os.path.join(part, "big.bin"), "r+b") as f:
        f.truncate(3 << 20)
    with open(os.path.join(part, "d001", "s00001.nii"), "r+b") as f:
        f.write(b"X")  # same size, wrong bytes
    os.unlink(os.path.join(part, "d002", "s00002.nii"))
    cp = ferry.run("retrieve", "--to", dest, sp, check=False)
    assert cp.returncode == 1 and "checksum mismatch" in cp.stderr, cp
    assert not os.path.exists(dest)
    ferry.run("retrieve", "--to", dest, sp)  # the wrong one was emptied: fetched again
    assert tree_contents(dest) == tree_contents(src)
    assert not os.path.exists(part)
    with open(os.path.join(sp, "d003", "s00003.nii"), "r+b") as f:
        f.write(b"Y")  # the server's copy went bad
    cp = ferry.run("retrieve", "--force", "--to", dest, sp, check=False)
    assert cp.returncode == 1 and "checksum mismatch" in cp.stderr, cp
    assert tree_contents(dest) == tree_contents(src), "the good copy stays"


def test_output_of_a_failed_job(ferry):
    got = ferry.run("register", ferry.path("partial.txt")).stdout.strip()
    missing = ferry.run("register", ferry.path("never.txt")).stdout.strip()
    jid = ferry.submit("sh", "-c", f"echo some > {got}; exit 3",
                       opts=["--output", got, "--output", missing])
    cp = ferry.run("wait", "--timeout", "60", jid, check=False, timeout=70)
    assert cp.returncode == 4
    ferry.run("retrieve", got)
    assert open(ferry.path("partial.txt")).read() == "some\n"
    cp = ferry.run("retrieve", missing, check=False)
    assert cp.returncode == 1
    assert re.search(rf"does not exist: job {jid} ended \(failed\) without producing it",
                     cp.stderr), cp.stderr
    assert not os.path.exists(ferry.path("never.txt"))


def test_retrieve_never_overwrites_another_file_unasked(ferry):
    src = ferry.path("a.txt")
    with open(src, "w") as f:
        f.write("transferred\n")
    sp = send(ferry, src)
    other = ferry.path("precious.txt")
    with open(other, "w") as f:
        f.write("mine\n")
    cp = ferry.run("retrieve", "--to", other, sp, check=False)
    assert cp.returncode == 1 and "FERRY_OVERWRITE" in cp.stderr
    assert open(other).read() == "mine\n"
    ferry.run("retrieve", "--to", other, "--force", sp)
    assert open(other).read() == "transferred\n"


def test_cancel_transfer(ferry):
    src = ferry.path("in.txt")
    with open(src, "w") as f:
        f.write("x\n")
    sp = send(ferry, src)
    jid = ferry.submit("sleep", "30", opts=["--input", sp])
    cp = ferry.run("cancel-transfer", sp, check=False)
    assert cp.returncode == 1 and "unfinished job" in cp.stderr and str(jid) in cp.stderr
    assert os.path.exists(sp)
    ferry.run("kill", jid)
    ferry.wait_ended(jid)  # a kill of a running job is asynchronous
    ferry.run("cancel-transfer", sp)
    assert not os.path.exists(os.path.dirname(sp))
    cp = ferry.run("transfers", sp, check=False)
    assert cp.returncode == 1 and "no transfer" in cp.stderr


def test_forced_cancel_aborts_a_job_waiting_for_it(local):
    ferry = local
    big = ferry.path("big.bin")
    make_file(big, 32 << 20, seed=8)
    sp = interrupted_send(ferry, big, 0.3)
    jid = ferry.submit("true", opts=["--input", sp])
    assert ferry.state(jid) == "system_on_hold"
    ferry.run("cancel-transfer", "--force", sp)
    j = ferry.info(jid)
    assert j["status"] == "failed" and j["exit_status"] == "aborted", j
    assert "input transfer" in j["message"]


# ------------------------------------------------------------- disposal


def test_disposal_removes_expired_transfers_and_nothing_else(request):
    """With an hour of disposal time made 2 s (a test-only knob of ferryd),
    expired transfers and jobs are removed; fresh ones stay."""
    ferry = ferry_world(request, "local")
    ferry.env["FERRYD_TEST_HOUR_SECONDS"] = "2"
    a, b = ferry.path("short.txt"), ferry.path("long.txt")
    for p in (a, b):
        with open(p, "w") as f:
            f.write(p)
    short = send(ferry, a, opts=["--disposal", "1"])
    keep = send(ferry, b, opts=["--disposal", "1000"])
    jid = ferry.submit("true", opts=["--disposal", "1"])
    kept_job = ferry.submit("true")
    ferry.run("wait", "--timeout", "30", jid, kept_job, timeout=40)
    poll(lambda: not os.path.exists(os.path.dirname(short)), 20, 0.2,
         what="the expired transfer to be removed")
    names = [t["server_path"] for t in ferry.json("transfers")]
    assert names == [keep], names
    assert os.path.exists(keep) and open(keep).read() == b
    poll(lambda: ferry.run("info", jid, check=False).returncode == 1, 20, 0.2,
         what="the expired job to be removed")
    assert ferry.state(kept_job) == "done"


# ---------------------------------------------------------- path attacks


def raw_request(ferry, obj, binary=b""):
    ferry.run("ping")  # the engine runs
    with ferry.raw() as r:
        r.hello()
        return r.request(obj, binary)


@pytest.fixture
def sent(local):
    src = local.path("victim.txt")
    with open(src, "w") as f:
        f.write("data\n")
    local.sp = send(local, src)
    local.tdir = os.path.dirname(local.sp)
    return local


@pytest.mark.parametrize("path,pattern", [
    ("{root}/../x", r"'\.' or '\.\.' component"),
    ("/etc/passwd", r"not under the transfer root"),
    ("{tdir}/../../../../etc/passwd", r"'\.' or '\.\.' component"),
    ("{tdir}/./victim.txt", r"'\.' or '\.\.' component"),
    ("{tdir}//victim.txt", r"empty"),
    ("{root}/tnosuchtransfer0/x", r"no transfer at"),
    ("{tdir}/" + "n" * 300, r"too long"),
    ("{tdir}/line\nbreak", r"control character"),
    ("{root}", r"not under the transfer root"),
    ("{tdir}/.victim.txt.ferry-part", r"ends in '\.ferry-part'"),
], ids=["root-dotdot", "outside", "climb", "dot", "double-slash", "unknown", "long",
        "newline", "the-root", "part-file"])
def test_server_path_attacks_are_refused(sent, path, pattern):
    path = path.format(root=root_of(sent), tdir=sent.tdir)
    for op in ("transfer_info", "transfer_manifest", "transfer_cancel"):
        r = raw_request(sent, {"op": op, "server_path": path})
        assert r["ok"] is False and re.search(pattern, r["message"]), (op, r)
    r = raw_request(sent, {"op": "transfer_get", "server_path": path, "file": 0, "offset": 0,
                           "length": 10})
    assert r["ok"] is False and re.search(pattern, r["message"]), r
    assert open(sent.sp).read() == "data\n"


@pytest.mark.parametrize("name,pattern", [
    ("../evil", r"'\.' or '\.\.' component"),
    ("/abs/evil", r"empty"),
    ("a/../../evil", r"'\.' or '\.\.' component"),
    ("ok\nname", r"control character"),
    ("x" * 3000, r"too long"),
    ("a/" + "y" * 300, r"too long"),
    ("z.ferry-part", r"ferry-part"),
], ids=["dotdot", "absolute", "inner-dotdot", "newline", "long-name", "long-component",
        "part-suffix"])
def test_manifest_names_are_confined(local, name, pattern):
    r = raw_request(local, {"op": "transfer_send", "local_paths": ["/x"], "files": [
        {"path": name, "type": "file", "size": 1, "mode": 0o644, "mtime_ns": 0,
         "hash": "0" * 32}]})
    assert r["ok"] is False and re.search(pattern, r["message"]), r
    assert os.listdir(root_of(local)) == []
    r = raw_request(local, {"op": "transfer_register", "local_paths": ["/x"], "name": name})
    assert r["ok"] is False, r


def test_local_file_name_with_a_newline_is_refused(local):
    p = local.path("bad\nname")
    with open(p, "w") as f:
        f.write("x")
    cp = local.run("send", p, check=False)
    assert cp.returncode == 1 and "control character" in cp.stderr, cp.stderr


def test_symlink_output_pointing_out_is_not_followed(local):
    out = local.run("register", local.path("o.txt")).stdout.strip()
    jid = local.submit("ln", "-s", "/etc/passwd", out, opts=["--output", out])
    local.run("wait", "--timeout", "30", jid, timeout=40)
    cp = local.run("retrieve", out, check=False)
    assert cp.returncode == 1 and "symbolic link" in cp.stderr, cp.stderr
    assert not os.path.exists(local.path("o.txt"))
    r = raw_request(local, {"op": "transfer_get", "server_path": out, "file": 0, "offset": 0,
                            "length": 100})
    assert r["ok"] is False


def test_symlink_swapped_in_during_a_send(local):
    """The partial file replaced by a symlink to a victim, and the transfer
    directory replaced by a symlink elsewhere: neither is written through."""
    big = local.path("s.bin")
    make_file(big, 48 << 20, seed=9)
    sp = interrupted_send(local, big, 0.3)
    victim = local.path("victim")
    with open(victim, "w") as f:
        f.write("untouched\n")
    pf = part_file(local, "s.bin")
    os.unlink(pf)
    os.symlink(victim, pf)
    cp = local.run("send", big, check=False, timeout=120)
    assert cp.returncode == 1, cp
    assert open(victim).read() == "untouched\n"
    # the whole transfer directory swapped for a link to somewhere else
    os.unlink(pf)
    tdir = os.path.dirname(sp)
    elsewhere = local.path("elsewhere")
    os.makedirs(elsewhere)
    os.rename(tdir, tdir + ".moved")
    os.symlink(elsewhere, tdir)
    r = raw_request(local, {"op": "transfer_info", "server_path": sp})
    assert r["ok"] is True  # the record is there
    tid = r["transfer"]["id"]
    r = raw_request(local, {"op": "transfer_put", "id": tid, "file": 0, "offset": 0}, b"x" * 10)
    assert r["ok"] is False, r
    assert os.listdir(elsewhere) == []


def test_put_out_of_place_and_oversized_are_refused(local):
    src = local.path("p.txt")
    with open(src, "w") as f:
        f.write("12345")
    sp = send(local, src)
    tid = raw_request(local, {"op": "transfer_info", "server_path": sp})["transfer"]["id"]
    r = raw_request(local, {"op": "transfer_put", "id": tid, "file": 0, "offset": 0}, b"zz")
    assert r["ok"] is False and "takes no data" in r["message"]
    r = raw_request(local, {"op": "transfer_get", "server_path": sp, "file": 9, "offset": 0,
                            "length": 10})
    assert r["ok"] is False and "no file 9" in r["message"]
    r = raw_request(local, {"op": "ping"}, b"junk")
    assert r["ok"] is False and "takes no binary data" in r["message"]
    r = raw_request(local, {"op": "transfer_send", "local_paths": ["/x"], "files": [
        {"path": "big", "type": "file", "size": 10, "mode": 0o644, "mtime_ns": 0,
         "hash": "0" * 32}]})
    assert r["ok"] is True
    r = raw_request(local, {"op": "transfer_put", "id": r["id"], "file": 0, "offset": 0},
                    b"y" * 11)
    assert r["ok"] is False and "past the size" in r["message"]


def test_checksum_with_the_last_put_and_copy_claims_are_checked(local):
    """A manifest without checksums takes the checksum from the last put;
    a local copy's claim must come with an empty last put and, past 0, the
    checksum of what was there before, which the engine checks."""
    r = raw_request(local, {"op": "transfer_send", "key": "k-last", "local_paths": ["/x/q"],
                            "files": [{"path": "q", "type": "file", "size": 4,
                                       "mode": 0o644, "mtime_ns": 0}]})
    assert r["ok"] is True, r
    tid, sp = r["id"], r["server_path"]
    put = {"op": "transfer_put", "id": tid, "file": 0}
    r = raw_request(local, {**put, "offset": 0}, b"ab")
    assert r["ok"] is True and r["complete"] is False, r
    r = raw_request(local, {**put, "offset": 2}, b"cd")
    assert r["ok"] is False and "needs a 'hash'" in r["message"], r
    r = raw_request(local, {**put, "offset": 2, "hash": "xyz"}, b"cd")
    assert r["ok"] is False and "32 hex digits" in r["message"], r
    for claim, pattern in [
            ({"offset": 2, "copied_from": 0}, "empty put at the end"),
            ({"offset": 4, "copied_from": 5}, "from 0 to its size"),
            ({"offset": 4, "copied_from": 2}, "needs a 'prefix_hash'")]:
        r = raw_request(local, {**put, **claim, "hash": "0" * 32},
                        b"cd" if claim["offset"] == 2 else b"")
        assert r["ok"] is False and pattern in r["message"], (claim, r)
    # the client "copied" cd itself; ab, there before, is checked against its claim
    with open(part_file(local, "q"), "ab") as f:
        f.write(b"cd")
    whole = xxh128(b"abcd")
    r = raw_request(local, {**put, "offset": 4, "hash": whole, "copied_from": 2,
                            "prefix_hash": xxh128(b"aX")})
    assert r["ok"] is False and "checksum mismatch" in r["message"], r
    assert os.path.getsize(part_file(local, "q")) == 0, "a failed check empties the part"
    r = raw_request(local, {**put, "offset": 0}, b"abcd")
    assert r["ok"] is False and "needs a 'hash'" in r["message"]
    r = raw_request(local, {**put, "offset": 0, "hash": whole}, b"abcd")
    assert r["ok"] is True and r["complete"] is True and r["state"] == "ready", r
    assert open(sp, "rb").read() == b"abcd"
    assert tinfo(local, sp)["hash"] == whole


def test_file_changed_while_sent_is_not_ready(request):
    """The checksum is taken while the bytes go: a file that changes under
    a send fails it with a clear error, and the transfer is not ready."""
    ferry = ferry_world(request, "ssh")
    big = ferry.path("moving.bin")
    make_file(big, 400 << 20, seed=9)
    p = ferry.popen("send", big)

    def under_way():
        pf = part_file(ferry, "moving.bin")
        try:
            return pf and os.path.getsize(pf) >= 8 << 20
        except OSError:
            return False
    poll(under_way, 120, 0.005, what="the send under way")
    with open(big, "r+b") as f:  # rewritten in place, same size
        f.seek(100 << 20)
        f.write(b"changed")
    out, err = p.communicate(timeout=300)
    assert p.returncode == 1 and "changed while it was sent" in err, (out, err)
    ts = [t for t in ferry.json("transfers") if t["local_paths"] == [big]]
    assert len(ts) == 1 and ts[0]["state"] == "transferring", ts
    assert not os.path.exists(ts[0]["server_path"])
    # sent again as it is now: a new transfer, since the file is another
    sp = send(ferry, big)
    assert sp != ts[0]["server_path"] and md5(sp) == md5(big)


def test_sending_an_unchanged_file_again_finds_its_transfer(ferry):
    """The same unchanged paths find their transfer, also once it was
    retrieved, and send nothing; a file whose change time moved (any write,
    even a chmod) is another send."""
    src = ferry.path("again.bin")
    make_file(src, 1 << 20, seed=10)
    sp = send(ferry, src)
    ferry.run("retrieve", "--to", ferry.path("back.bin"), sp)
    received = tinfo(ferry, sp)["received"]
    assert tinfo(ferry, sp)["state"] == "retrieved"
    assert send(ferry, src) == sp
    assert tinfo(ferry, sp)["received"] == received, "nothing is sent again"
    os.chmod(src, 0o600)
    sp2 = send(ferry, src)
    assert sp2 != sp and tinfo(ferry, sp2)["state"] == "ready"
    assert md5(sp2) == md5(src)


def test_relative_server_path_on_a_local_resource(local):
    """On this host a server path is a path like any other: a relative
    one is taken from the current directory."""
    src = local.path("rel.txt")
    with open(src, "w") as f:
        f.write("relative\n")
    sp = send(local, src)
    d = os.path.dirname(os.path.dirname(sp))
    rel = os.path.relpath(sp, d)
    assert local.json("transfer-info", rel, cwd=d)["server_path"] == sp
    local.run("retrieve", "--to", local.path("rel-back.txt"), rel, cwd=d)
    assert open(local.path("rel-back.txt")).read() == "relative\n"
    local.run("cancel-transfer", rel, cwd=d)
    assert not os.path.exists(sp)


def test_input_that_is_no_transfer_is_refused(local):
    cp = local.run("submit", "--input", os.path.join(root_of(local), "tfake", "x"), "--",
                   "true", check=False)
    assert cp.returncode == 1 and "no transfer at" in cp.stderr
    assert local.json("jobs") == []


# ------------------------------------------------------------- disk full


def test_disk_full(request):
    """A transfer root on a file system of its own: a send that cannot fit
    is refused before a byte is written (issue 21; it used to fill the
    disk and fail with ENOSPC, its partial file left behind), and with no
    database there to keep room for, a send may fill it to the last byte
    (tests/test_hardening_disk.py has the shared file system)."""
    ferry = ferry_world(request, "local")
    small = ferry.path("small")
    os.makedirs(small)
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=16m,mode=0700", "tmpfs", small],
                   check=True)
    request.addfinalizer(lambda: subprocess.run(["umount", "-l", small]))
    ferry.config(f"[local]\nslots = 2\ntransfer_root = {small}\n")
    big = ferry.path("big.bin")
    make_file(big, 40 << 20, seed=10)
    cp = ferry.run("send", big, check=False, timeout=120)
    assert cp.returncode == 1, cp
    assert f"no space for 'big.bin' on '{small}': {40 << 20} bytes needed" in cp.stderr, \
        cp.stderr
    assert ferry.json("transfers") == [] and os.listdir(small) == []
    ferry.run("ping")
    exact = ferry.path("exact.bin")
    make_file(exact, (16 << 20) - (64 << 10), seed=11)  # all but the directories' pages
    sp = send(ferry, exact)
    assert os.path.getsize(sp) == os.path.getsize(exact)


# ------------------------------------------------------------- over ssh


def test_client_killed_mid_transfer_over_ssh_resumes(request):
    ferry = ferry_world(request, "ssh")
    big = ferry.path("r.bin")
    make_file(big, 100 << 20, seed=11)
    sp = interrupted_send(ferry, big, 0.5)
    before = tinfo(ferry, sp)["done"]
    assert send(ferry, big) == sp
    t = tinfo(ferry, sp)
    assert t["received"] == 100 << 20 and before > 0
    assert md5(sp) == md5(big)


# ------------------------------------------------- submit --in / --out


def job_of(ferry, cp):
    out = cp.stdout.strip()
    assert out.isdigit(), f"submit printed {out!r}"
    return ferry.info(int(out))



def read_text(path):
    with open(path) as f:
        return f.read()


def test_submit_in_out_replaces_given_and_absolute_forms(ferry):
    """--in sends, --out registers, both before the job; the job names them
    as inputs and outputs, and each occurrence of a local path, as given or
    absolute, in the command and the --stdout and --env values, is its
    server path; a longer name that contains it is left alone."""
    w = ferry.work
    os.makedirs(ferry.path("data"))
    with open(ferry.path("data", "a.nii"), "w") as f:
        f.write("scan\n")
    cp = ferry.run("submit", "--in", "data/a.nii", "--in", "data/", "--out", "res.txt",
                   "--out", "log.txt", "--stdout", "log.txt", "--env", "SCAN=data/a.nii",
                   "--", "sh", "-c", 'cat "$1"; echo "$SCAN"; printf "%s\\n" "$@"', "sh",
                   f"{w}/data/a.nii", "data/a.nii", "--result=res.txt", "data/x.nii",
                   "xdata/a.nii,data/a.nii.gz,./res.txt,-ires.txt,res.txt")
    j = job_of(ferry, cp)
    ts = {t["local_paths"][0].rstrip("/"): t for t in ferry.json("transfers")}
    a, d = ts[f"{w}/data/a.nii"]["server_path"], ts[f"{w}/data"]["server_path"]
    res, log = ts[f"{w}/res.txt"]["server_path"], ts[f"{w}/log.txt"]["server_path"]
    assert sorted(j["referenced_input_files"]) == sorted([a, d])
    assert sorted(j["referenced_output_files"]) == sorted([res, log])
    # data/a.nii.gz is not data/a.nii but a file in data/: the longest path that fits wins
    args = [a, a, f"--result={res}", f"{d}/x.nii",
            f"xdata/a.nii,{d}/a.nii.gz,./res.txt,-ires.txt,{res}"]
    assert j["command"][4:] == args
    assert j["stdout_path"] == log and j["env"] == [f"SCAN={a}"]
    assert ts[f"{w}/data/a.nii"]["state"] == "ready" and ts[f"{w}/res.txt"]["kind"] == "register"
    # the job read the copy and wrote its stdout to the registered output
    ferry.run("wait", "--timeout", "60", j["id"], timeout=70)
    ferry.run("retrieve", log)
    assert read_text(ferry.path("log.txt")) == "scan\n" + f"{a}\n" + "".join(
        f"{x}\n" for x in args)


def test_submit_in_out_job_output_comes_back(ferry):
    with open(ferry.path("in.txt"), "w") as f:
        f.write("one\ntwo\n")
    r = ferry.json("submit", "--in", "in.txt", "--out", "out.txt", "--disposal", "5",
                   "--", "sh", "-c", 'wc -l < "$1" > "$2"', "sh", "in.txt", "out.txt")
    assert set(r) == {"id", "inputs", "outputs"}
    [i], [o] = r["inputs"], r["outputs"]
    assert i["local_path"] == "in.txt" and i["server_path"].endswith("/in.txt")
    assert o["local_path"] == "out.txt" and o["server_path"].endswith("/out.txt")
    assert ferry.info(r["id"])["command"][4:] == [i["server_path"], o["server_path"]]
    assert tinfo(ferry, i["server_path"])["disposal_hours"] == 5
    ferry.run("wait", "--timeout", "60", r["id"], timeout=70)
    assert ferry.state(r["id"]) == "done"
    ferry.run("retrieve", o["server_path"])
    assert read_text(ferry.path("out.txt")).strip() == "2"


def test_submit_in_replaces_cwd_and_stdin(ferry):
    os.makedirs(ferry.path("data"))
    with open(ferry.path("data", "a.txt"), "w") as f:
        f.write("from stdin\n")
    r = ferry.json("submit", "--in", "data", "--cwd", "data", "--stdin", "data/a.txt",
                   "--", "sh", "-c", "cat; ls")
    [i] = r["inputs"]
    j = ferry.info(r["id"])
    assert j["working_directory"] == i["server_path"]
    assert j["stdin_path"] == i["server_path"] + "/a.txt"
    ferry.run("wait", "--timeout", "60", r["id"], timeout=70)
    assert ferry.run("logs", r["id"]).stdout == "from stdin\na.txt\n"


def test_submit_in_with_bulk_shares_one_input(ferry):
    src = ferry.path("atlas.nii")
    with open(src, "w") as f:
        f.write("atlas\n")
    bulk = ferry.path("jobs.txt")
    with open(bulk, "w") as f:
        f.write("cat atlas.nii\nwc -c atlas.nii\ntrue\n")
    ids = [int(x) for x in ferry.run("submit", "--in", "atlas.nii", "--bulk", bulk).stdout.split()]
    assert len(ids) == 3
    [t] = ferry.json("transfers")
    sp = t["server_path"]
    assert [ferry.info(i)["command"] for i in ids] == [["cat", sp], ["wc", "-c", sp], ["true"]]
    assert all(ferry.info(i)["referenced_input_files"] == [sp] for i in ids)
    r = ferry.json("submit", "--in", "atlas.nii", "--bulk", bulk)
    assert set(r) == {"ids", "inputs", "outputs"} and len(r["ids"]) == 3
    assert r["inputs"] == [{"local_path": "atlas.nii", "server_path": sp}] and r["outputs"] == []


@pytest.mark.parametrize("args,pattern", [
    (["--out", "o.txt", "--bulk", "jobs.txt"], r"--out and --bulk exclude each other"),
    (["--in", "a.txt", "--", "cat", "ba.txt", "a.txt.gz", "./a.txt"],
     r"--in 'a.txt' is named nowhere: neither as given nor as '/\S+/a.txt'"),
    (["--in", "a.txt", "--in", "./a.txt", "--", "cat", "a.txt"],
     r"'/\S+/a.txt' is given twice \(--in 'a.txt', --in './a.txt'\)"),
    (["--in", "a.txt", "--out", "a.txt", "--", "cp", "a.txt", "a.txt"], r"is given twice"),
    (["--in", "", "--", "true"], r"invalid value for --in: ''"),
])
def test_submit_in_out_refusals_transfer_nothing(ferry, args, pattern):
    with open(ferry.path("a.txt"), "w") as f:
        f.write("a\n")
    with open(ferry.path("jobs.txt"), "w") as f:
        f.write("true\n")
    cp = ferry.run("submit", *args, check=False)
    assert cp.returncode == 2, cp
    assert re.search(pattern, cp.stderr), cp.stderr
    assert ferry.json("transfers") == [] and ferry.json("jobs") == []


def test_submit_error_after_transfers_names_them(ferry):
    with open(ferry.path("a.txt"), "w") as f:
        f.write("a\n")
    cp = ferry.run("submit", "--in", "a.txt", "--out", "b.txt", "--cwd", "/nonexistent",
                   "--", "cp", "a.txt", "b.txt", check=False)
    assert cp.returncode == 1 and "/nonexistent" in cp.stderr, cp
    ts = {os.path.basename(t["local_paths"][0]): t["server_path"]
          for t in ferry.json("transfers")}
    assert set(ts) == {"a.txt", "b.txt"}
    assert "no job was submitted; these transfers were made and remain" in cp.stderr
    assert f"  {ts['a.txt']} <- a.txt (sent)\n" in cp.stderr
    assert f"  {ts['b.txt']} <- b.txt (registered)\n" in cp.stderr
    assert ferry.json("jobs") == []
    # a failed send is reported with its option, and what came before it
    cp = ferry.run("submit", "--in", "a.txt", "--in", "missing.txt", "--",
                   "cp", "a.txt", "missing.txt", check=False)
    assert cp.returncode == 1 and "--in 'missing.txt': cannot send" in cp.stderr, cp
    assert f"\n  {ts['a.txt']} <- a.txt (sent)\n" in cp.stderr, cp.stderr


# ------------------------------------------------------- progress bar


def run_on_tty(ferry, *args, cols=100, term="xterm", timeout=120):
    """Runs ferry with stderr on a pseudo-terminal (stdout piped); returns
    (exit status, stdout, what the terminal got, seconds taken)."""
    import fcntl
    import pty
    import select
    import struct
    import termios
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 24, cols, 0, 0))
    t0 = time.monotonic()
    p = subprocess.Popen([FERRY_BIN, *args], stdout=subprocess.PIPE, stderr=slave,
                         stdin=subprocess.DEVNULL, cwd=ferry.work,
                         env=dict(ferry.env, TERM=term))
    os.close(slave)
    tty = b""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not select.select([master], [], [], 1)[0]:
            if p.poll() is not None:
                break
            continue
        try:
            data = os.read(master, 65536)
        except OSError:  # EIO: every writer of the terminal is gone
            break
        if not data:
            break
        tty += data
    out = p.communicate(timeout=timeout)[0]
    os.close(master)
    return p.returncode, out.decode(), tty.decode(errors="replace"), time.monotonic() - t0


BAR = re.compile(r"(\S+) +(\d+)% \[[#-]+\] +([\d.]+ \w+) / ([\d.]+ \w+) +([\d.]+ \w+|--)/s"
                 r"  ETA ([\d:]+|--:--)")


def frames(tty):
    """The bar's frames: each starts with \\r and ends with erase-to-end-of-line."""
    assert tty.endswith("\r\x1b[K"), f"the bar is not erased at the end: {tty[-80:]!r}"
    shown = [f[:-len("\x1b[K")] for f in tty.split("\r") if f]
    assert shown and all(BAR.fullmatch(f.rstrip()) for f in shown[:-1]), \
        [f for f in shown[:-1] if not BAR.fullmatch(f.rstrip())]
    return [BAR.fullmatch(f.rstrip()) for f in shown[:-1]]


def test_progress_bar_on_a_terminal_only(ferry):
    big = ferry.path("big.bin")
    make_file(big, 24 << 20, seed=12)
    rc, out, tty, took = run_on_tty(ferry, "send", big)
    assert rc == 0, tty
    sp = out.strip()
    fs = frames(tty)
    pcts = [int(m.group(2)) for m in fs]
    assert fs[0].group(1) == "big.bin" and pcts == sorted(pcts) and pcts[-1] == 100, pcts
    assert fs[-1].group(3) == fs[-1].group(4) == "24.0 MiB"
    assert len(fs) <= took * 10 + 3, f"{len(fs)} frames in {took:.2f} s"
    # piped: nothing on stderr
    ferry.run("cancel-transfer", sp)
    cp = ferry.run("send", big)
    assert cp.stderr == "" and cp.stdout.strip().endswith("/big.bin")
    # a retrieve draws it too; one piped does not
    rc, out, tty, _ = run_on_tty(ferry, "retrieve", "--to", ferry.path("back.bin"),
                                 cp.stdout.strip())
    assert rc == 0 and out == "" and frames(tty)[-1].group(2) == "100"
    assert md5(ferry.path("back.bin")) == md5(big)
    cp = ferry.run("retrieve", "--force", "--to", ferry.path("back.bin"), cp.stdout.strip())
    assert cp.stderr == ""


def test_no_progress_bar_for_small_transfers_or_dumb_terminals(ferry):
    small = ferry.path("small.bin")
    make_file(small, (4 << 20) - 1, seed=13)
    rc, out, tty, _ = run_on_tty(ferry, "send", small)
    assert rc == 0 and tty == "" and out.strip().endswith("/small.bin")
    big = ferry.path("big.bin")
    make_file(big, 8 << 20, seed=14)
    rc, out, tty, _ = run_on_tty(ferry, "send", big, cols=100)
    assert rc == 0 and tty
    ferry.run("cancel-transfer", out.strip())
    rc, out, tty, _ = run_on_tty(ferry, "send", big, term="dumb")
    assert rc == 0 and tty == ""


def test_progress_of_a_resumed_send_starts_where_it_stopped(ferry):
    big = ferry.path("big.bin")
    make_file(big, 64 << 20, seed=15)
    sp = interrupted_send(ferry, big, 0.5)
    rc, out, tty, _ = run_on_tty(ferry, "send", big)
    assert rc == 0 and out.strip() == sp
    pcts = [int(m.group(2)) for m in frames(tty)]
    assert pcts[0] >= 40 and pcts[-1] == 100, pcts


def test_progress_bar_of_submit_in_and_narrow_terminals(ferry):
    big = ferry.path("big.bin")
    make_file(big, 12 << 20, seed=16)
    rc, out, tty, _ = run_on_tty(ferry, "submit", "--in", "big.bin", "--", "wc", "-c",
                                 "big.bin")
    assert rc == 0 and out.strip().isdigit(), tty
    assert frames(tty)[0].group(1) == "big.bin"
    ferry.run("cancel-transfer", "--force", ferry.json("transfers")[0]["server_path"])
    rc, out, tty, _ = run_on_tty(ferry, "send", big, cols=40)
    assert rc == 0
    lines = [f[:-len("\x1b[K")] for f in tty.split("\r") if f]
    assert all(len(f) <= 39 for f in lines), lines


def test_pipelined_gets_past_the_file_part_cap(local):
    """A retrieve's chunks are sent from the page cache, each holding a
    descriptor of the file until it goes (src/daemon/transfer.c,
    MAX_FILE_PARTS 256); past that many queued, chunks are read into
    memory. 270 gets pipelined and left unread fill the socket: the engine
    then holds the file open for the queued ones, never more than the cap,
    and every byte is right from both kinds."""
    src = local.path("pipelined.bin")
    n, size = 270, 64 << 10
    data = os.urandom(n * size)
    with open(src, "wb") as f:
        f.write(data)
    sp = send(local, src)
    engine = local.engine_pid()

    def held():
        k = 0
        for fd in os.listdir(f"/proc/{engine}/fd"):
            try:
                k += os.readlink(f"/proc/{engine}/fd/{fd}") == sp
            except OSError:
                pass
        return k
    with local.raw(timeout=30) as r:
        r.hello()
        r.send(b"".join(frame({"op": "transfer_get", "server_path": sp, "file": 0,
                               "offset": i * size, "length": size}) for i in range(n)))
        poll(lambda: held() > 0, 10, what="the engine to queue file parts")
        assert held() <= 256
        got = [r.recv() for _ in range(n)]
    for i, (rep, binary) in enumerate(got):
        assert rep["ok"] is True and rep["size"] == size, rep
        assert binary == data[i * size:(i + 1) * size], f"chunk {i} differs"
    poll(lambda: held() == 0, 10, what="the engine to close the file")
    local.run("ping")


# ------------------------------------------------------------ trees of many files


def small_tree(top, n, dirs):
    """n small files in dirs directories under top (names sort alike in any locale)."""
    for i in range(n):
        d = os.path.join(top, "d%03d" % (i % dirs))
        os.makedirs(d, exist_ok=True)
        with open(os.path.join(d, "s%05d.nii" % i), "wb") as f:
            f.write(b"%d\n" % i * (1 + i % 9))


def tree_contents(top):
    out = {}
    for d, dirs, fs in os.walk(top):
        for n in dirs:
            out[os.path.relpath(os.path.join(d, n), top)] = None
        for n in fs:
            with open(os.path.join(d, n), "rb") as f:
                out[os.path.relpath(os.path.join(d, n), top)] = f.read()
    return out


def test_tree_of_thousands_of_files_survives_an_engine_crash(ferry):
    """2,500 small files. A send is stopped a third of the way, its engine
    SIGKILLed; the next send finishes it. The checksums of the files done
    before the crash were kept (a row each until the send is complete), or
    are taken again from disk where a row is missing, so the transfer's
    checksum is that of the same tree sent in one go, and the tree comes
    back whole.

    Each request costs O(1), not O(files): when every put read, parsed and
    wrote back the whole manifest, 2,000 files took 28 s to send. The send
    in one go takes 2-4 s here, so a bound of 60 s only trips on that."""
    n = 2500
    src, twin = ferry.path("a", "tree"), ferry.path("b", "tree")
    small_tree(src, n, 25)
    small_tree(twin, n, 25)
    t0 = time.monotonic()
    sp_twin = send(ferry, twin)
    took = time.monotonic() - t0
    assert took < 60, f"sending {n} small files took {took:.1f} s"

    p = ferry.popen("send", src)

    def midway():
        # the client is stopped while it is looked at: a send that goes on
        # meanwhile may end before the kill (its parts are made up front)
        os.kill(p.pid, signal.SIGSTOP)
        ts = [t for t in ferry.json("transfers") if t["local_paths"] == [src]]
        if ts and tinfo(ferry, ts[0]["server_path"])["done"] >= ts[0]["size"] // 3:
            return ts[0]
        os.kill(p.pid, signal.SIGCONT)
        return None
    try:
        t = poll(midway, 120, 0.05, what="a third of the tree on the server")
    finally:
        p.kill()
        p.wait()
    ferry.kill_engine()
    assert t["state"] == "transferring", t
    # a file renamed just before the crash has no checksum row (the rename is
    # not in the transaction): the engine hashes such files from disk
    import sqlite3
    db = sqlite3.connect(os.path.join(ferry.state_dir, "ferry.db"))
    kept = db.execute("SELECT count(*) FROM transfer_hashes").fetchone()[0]
    assert kept >= n // 4, kept
    db.execute("DELETE FROM transfer_hashes WHERE file % 2 = 0")
    db.commit()
    db.close()
    sp = send(ferry, src)
    assert sp == t["server_path"]
    ti, tw = tinfo(ferry, sp), tinfo(ferry, sp_twin)
    assert ti["state"] == "ready" and ti["done"] == tw["size"], ti
    assert ti["hash"] and ti["hash"] == tw["hash"], (ti["hash"], tw["hash"])
    dest = ferry.path("back")
    ferry.run("retrieve", "--to", dest, sp, timeout=300)
    assert tree_contents(dest) == tree_contents(src)


def test_database_of_schema_1_is_carried_over(local):
    """Schema 1 kept each transfer's manifest in its row; an engine of
    schema 2 moves them to their own table when it opens the database,
    and the transfers stay as they were."""
    import sqlite3
    src = local.path("kept.bin")
    make_file(src, 300000, seed=12)
    sp = send(local, src)
    before = tinfo(local, sp)
    local.run("daemon", "stop")
    db = sqlite3.connect(os.path.join(local.state_dir, "ferry.db"))
    db.executescript(SCHEMA_8_TO_7 + SCHEMA_7_TO_6 + SCHEMA_6_TO_5 + SCHEMA_5_TO_4 + """
        ALTER TABLE transfers ADD COLUMN doc TEXT NOT NULL DEFAULT '';
        UPDATE transfers SET doc = (SELECT doc FROM transfer_docs WHERE tid = transfers.id);
        DROP TABLE transfer_docs;
        DROP TABLE transfer_hashes;
        ALTER TABLE jobs DROP COLUMN requeues;
        UPDATE meta SET value = '1' WHERE key = 'schema';
    """)
    db.close()
    after = tinfo(local, sp)
    assert after == before
    dest = local.path("back.bin")
    local.run("retrieve", "--to", dest, sp)
    assert md5(dest) == md5(src)
    other = local.path("new.bin")
    make_file(other, 1000, seed=13)
    assert tinfo(local, send(local, other))["state"] == "ready"
    local.run("daemon", "stop")
    db = sqlite3.connect(os.path.join(local.state_dir, "ferry.db"))
    # and on through schema 3 (a job's lost starts kept in its row), 4
    # (an index of the jobs by state, for listings), 5 (the job specs
    # in a table of their own) and 6 (workflows)
    assert db.execute("SELECT value FROM meta WHERE key = 'schema'").fetchone() == ("8",)
    assert db.execute("SELECT name FROM sqlite_master WHERE name = 'jobs_state'").fetchone()
    cols = [r[1] for r in db.execute("PRAGMA table_info(transfers)")]
    assert "doc" not in cols, cols
    assert "requeues" in [r[1] for r in db.execute("PRAGMA table_info(jobs)")]
    db.close()


def test_database_of_an_unknown_schema_is_refused(local):
    import sqlite3
    local.run("ping")
    local.run("daemon", "stop")
    db = sqlite3.connect(os.path.join(local.state_dir, "ferry.db"))
    db.execute("UPDATE meta SET value = '99' WHERE key = 'schema'")
    db.commit()
    db.close()
    cp = local.run("ping", check=False)
    assert cp.returncode != 0
    log = open(os.path.join(local.state_dir, "ferryd.log")).read()
    assert "unknown schema version 99" in cp.stderr + log, (cp.stderr, log)


def test_forced_cancel_aborts_a_workflow_job_waiting_for_it(local):
    """A job of a workflow waiting for its dependencies lives in the
    database only: an input removed meanwhile aborts it (and what follows
    it) as it does a job in memory; it once ran without the input."""
    ferry = local
    big = ferry.path("big.bin")
    make_file(big, 32 << 20, seed=9)
    sp = interrupted_send(ferry, big, 0.3)
    gate = ferry.path("gate")
    wf = {"jobs": {"a": {"argv": ["sh", "-c", f"while [ ! -e {gate} ]; do sleep 0.05; done"]},
                   "b": {"argv": ["true"], "referenced_input_files": [sp]},
                   "c": {"argv": ["true"]}},
          "dependencies": [["a", "b"], ["b", "c"]]}
    path = ferry.path("wf.json")
    with open(path, "w") as f:
        json.dump(wf, f)
    w = int(ferry.run("workflow", "submit", path).stdout)
    jobs = {j["name"]: j["id"] for j in ferry.json("workflow", "jobs", w)}
    assert ferry.state(jobs["b"]) == "system_on_hold"
    ferry.run("cancel-transfer", "--force", sp)
    open(gate, "w").close()
    ferry.run("workflow", "wait", w, check=False, timeout=60)
    b, c = ferry.info(jobs["b"]), ferry.info(jobs["c"])
    assert b["exit_status"] == "aborted" and "input transfer" in b["message"], b
    assert c["exit_status"] == "aborted", c
    assert ferry.info(jobs["a"])["status"] == "done"
