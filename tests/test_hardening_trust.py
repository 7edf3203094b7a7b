"""Trust only what is yours (issue 21, items 11 and 12).

The client talks only to an engine of its own uid, found in a state
directory no one else can change, and checks both before it sends a byte;
an engine keeps transfers only in a transfer root no one else can change;
and a transfer writes only where the user asked, whatever an engine says.

The tests that need a second Unix user run as root (test_security.py's
OtherUser). ConfusedEngine is a fake engine of the client's own uid: it
injects the replies a real engine never gives (part paths and manifests
naming other places), which is the only way to show the client refuses them.
"""
import json
import os
import socket
import stat
import subprocess
import threading

import pytest

from conftest import BUILD_DIR, HDR, MAGIC, pid_alive, poll
from test_security import OTHER_USER, other  # noqa: F401,F811 (other: a fixture)


def refused(cp, *names):
    """cp failed, saying it refused, naming each of names."""
    assert cp.returncode == 1, cp
    assert "refusing" in cp.stderr, cp.stderr
    for n in names:
        assert str(n) in cp.stderr, (n, cp.stderr)


def starts_recorded(ferry):
    """Makes the client start ferryd through a wrapper that leaves a mark:
    returns the mark's path (it exists once an engine was started)."""
    mark = os.path.join(ferry.base, "ferryd-started")
    wrapper = os.path.join(ferry.base, "ferryd-wrapper")
    with open(wrapper, "w") as f:
        f.write(f"#!/bin/sh\ntouch {mark}\nexec {os.path.join(BUILD_DIR, 'ferryd')} \"$@\"\n")
    os.chmod(wrapper, 0o755)
    ferry.env["FERRYD"] = wrapper
    return mark


def set_state_home(ferry, path):
    ferry.state_home = path
    ferry.env["XDG_STATE_HOME"] = path


# ------------------------------------------------- the state directory


def _dir_of_other(ferry, other):
    os.makedirs(ferry.state_dir, mode=0o700)
    os.chown(ferry.state_dir, other.pw.pw_uid, other.pw.pw_gid)
    return ferry.state_dir, OTHER_USER


def _parent_of_other(ferry, other):
    parent = os.path.dirname(ferry.state_dir)  # .../state/ferry
    os.makedirs(parent, mode=0o755)
    os.chown(parent, other.pw.pw_uid, other.pw.pw_gid)
    return parent, OTHER_USER


def _home_of_other_0777(ferry, other):
    os.chown(ferry.state_home, other.pw.pw_uid, other.pw.pw_gid)
    os.chmod(ferry.state_home, 0o777)
    return ferry.state_home, OTHER_USER


def _mode(mode, which, group_of_other=False):
    def arrange(ferry, other):
        os.makedirs(ferry.state_dir, mode=0o700, exist_ok=True)
        path = {"dir": ferry.state_dir, "home": ferry.state_home}[which]
        os.chmod(path, mode)
        if group_of_other:  # a group of one's own (umask 002) would be fine
            os.chown(path, -1, other.pw.pw_gid)
        return path, f"{mode:04o}"
    return arrange


def _link_into_shared(ferry, other):
    """XDG_STATE_HOME is a link to a world-writable directory (not sticky)."""
    shared = os.path.join(ferry.base, "shared")
    os.makedirs(os.path.join(shared, "ferry", ferry.resource), mode=0o700)
    os.chmod(shared, 0o777)
    link = os.path.join(ferry.base, "state-link")
    os.symlink(shared, link)
    set_state_home(ferry, link)
    return shared, "0777"  # named along the real path


def _link_inside_shared(ferry, other):
    """XDG_STATE_HOME is good, but reached through a link in a world-writable
    directory, which anyone could point elsewhere."""
    shared = os.path.join(ferry.base, "shared")
    os.makedirs(shared)
    os.chmod(shared, 0o777)
    link = os.path.join(shared, "state")
    os.symlink(ferry.state_home, link)
    set_state_home(ferry, link)
    return shared, "0777"


STATE_SHAPES = {
    "state dir of another user": (_dir_of_other, True),
    "its parent of another user": (_parent_of_other, True),
    "XDG_STATE_HOME another user's, 0777": (_home_of_other_0777, True),
    "state dir 0770": (_mode(0o770, "dir"), False),
    "state dir 0707": (_mode(0o707, "dir"), False),
    "state dir 0750": (_mode(0o750, "dir"), False),
    "XDG_STATE_HOME 0777": (_mode(0o777, "home"), False),
    "XDG_STATE_HOME 0775, another's group": (_mode(0o775, "home", True), True),
    "XDG_STATE_HOME 0757": (_mode(0o757, "home"), False),
    "link to a shared dir": (_link_into_shared, False),
    "link inside a shared dir": (_link_inside_shared, False),
}


@pytest.mark.parametrize("shape", list(STATE_SHAPES))
def test_client_refuses_a_state_dir_others_can_change(request, ferry, shape):
    arrange, needs_other = STATE_SHAPES[shape]
    other = request.getfixturevalue("other") if needs_other else None
    mark = starts_recorded(ferry)
    path, owner_or_mode = arrange(ferry, other)
    for args in (("ping",), ("submit", "--env", "SECRET=hunter2", "--", "true")):
        cp = ferry.run(*args, check=False, timeout=30)
        refused(cp, path, owner_or_mode)
    assert not os.path.exists(mark), "an engine was started in a state dir others can change"
    assert not os.path.exists(ferry.sock_path)


def test_client_refuses_a_running_engines_dir_once_opened(ferry):
    """Not only at start: a state dir opened up under a running engine is
    refused by the next client, which then talks to no one."""
    ferry.run("ping")
    pid = ferry.engine_pid()
    for mode in (0o777, 0o770, 0o705):
        os.chmod(ferry.state_dir, mode)
        refused(ferry.run("ping", check=False, timeout=30), ferry.state_dir, f"{mode:04o}")
    os.chmod(ferry.state_dir, 0o700)
    ferry.run("ping")
    assert ferry.engine_pid() == pid


@pytest.mark.parametrize("shape", ["sticky parent", "parent of root 0755", "link to a good dir",
                                   "missing parents", "0775 of one's own group"])
def test_client_accepts_a_state_dir_only_it_can_change(ferry, shape):
    if shape == "sticky parent":
        os.chmod(ferry.state_home, 0o1777)
    elif shape == "parent of root 0755":
        os.chmod(ferry.state_home, 0o755)
    elif shape == "0775 of one's own group":
        os.chown(ferry.state_home, -1, os.getegid())
        os.chmod(ferry.state_home, 0o775)
    elif shape == "link to a good dir":
        link = os.path.join(ferry.base, "state-link")
        os.symlink(ferry.state_home, link)
        set_state_home(ferry, link)
    else:
        set_state_home(ferry, os.path.join(ferry.base, "new", "deeper"))
    ferry.run("ping", timeout=30)
    jid = ferry.submit("true")
    ferry.wait_ended(jid)
    st = os.stat(ferry.state_dir)
    assert st.st_uid == os.geteuid() and stat.S_IMODE(st.st_mode) == 0o700


# ------------------------------------------------ an engine of another uid


# Listens as another user and records every byte any client sends it.
IMPOSTOR = r'''
import os, socket, sys
path, out = sys.argv[1], sys.argv[2]
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.bind(path)
os.chmod(path, 0o777)
s.listen(16)
open(out + ".ready", "w").close()
conns = got = 0
while True:
    c, _ = s.accept()
    conns += 1
    c.settimeout(10)
    while True:
        try:
            b = c.recv(65536)
        except (socket.timeout, ConnectionResetError):
            b = b""
        if not b:
            break
        got += len(b)
        with open(out + ".bytes", "ab") as f:
            f.write(b)
    c.close()
    # whole or not at all: the test reads it meanwhile
    with open(out + ".count.tmp", "w") as f:
        f.write(f"{conns} {got}\n")
    os.replace(out + ".count.tmp", out + ".count")
'''


def test_client_sends_nothing_to_another_users_listener(ferry, other):
    """The state dir is the user's own, but its socket leads to a listener
    of another uid (a link, as a shared directory once allowed): the client
    must connect, see the uid and close without a byte, for every command."""
    script = os.path.join(other.base, "impostor.py")
    with open(script, "w") as f:
        f.write(IMPOSTOR)
    os.chmod(script, 0o644)
    sock = os.path.join(other.base, "ferryd.sock")
    out = os.path.join(other.base, "got")
    proc = subprocess.Popen(["runuser", "-u", OTHER_USER, "--", "/usr/bin/python3", script,
                             sock, out])
    try:
        poll(lambda: os.path.exists(out + ".ready"), 10, 0.05, "impostor listening")
        os.makedirs(ferry.state_dir, mode=0o700)
        os.symlink(sock, ferry.sock_path)
        mark = starts_recorded(ferry)
        data = ferry.path("secret.txt")
        with open(data, "w") as f:
            f.write("hunter2\n")
        commands = [("ping",), ("submit", "--env", "SECRET=hunter2", "--", "true"),
                    ("send", data), ("jobs",)]
        for args in commands:
            cp = ferry.run(*args, check=False, timeout=30)
            refused(cp, ferry.sock_path, f"uid {other.pw.pw_uid} ({OTHER_USER})")
            assert "nothing was sent" in cp.stderr, cp.stderr
        poll(lambda: os.path.exists(out + ".count") and
             int(open(out + ".count").read().split()[0]) >= len(commands),
             10, 0.05, "the impostor saw every connection")
        conns, got = map(int, open(out + ".count").read().split())
        assert got == 0 and not os.path.exists(out + ".bytes"), \
            f"another user's listener got {got} bytes"
        assert not os.path.exists(mark)
    finally:
        proc.kill()
        proc.wait()


def test_client_refuses_another_users_real_engine(ferry, other):
    cp = other.ferry("daemon", "start")
    assert cp.returncode == 0, cp.stderr
    pid = other.engine_pid()
    os.makedirs(ferry.state_dir, mode=0o700)
    os.symlink(other.sock_path, ferry.sock_path)
    for args in (("ping",), ("submit", "--env", "TOKEN=abc", "--", "true")):
        cp = ferry.run(*args, check=False, timeout=30)
        refused(cp, ferry.sock_path, OTHER_USER)
    # the other user's engine neither served nor suffered
    assert other.engine_pid() == pid and pid_alive(pid)
    cp = other.ferry("--json", "jobs")
    assert cp.returncode == 0 and json.loads(cp.stdout) == [], cp
    log = os.path.join(other.state_dir, "ferryd.log")
    assert "TOKEN" not in (open(log).read() if os.path.exists(log) else "")


# -------------------------------------- a confused engine of the same uid


class ConfusedEngine:
    """Fault injection: an engine of the client's own uid that answers
    hello and then what `answers` (op -> reply dict, or a function of the
    request) says; it records every request and its binary part's length."""

    def __init__(self, ferry, answers):
        os.makedirs(ferry.state_dir, mode=0o700, exist_ok=True)
        self.answers = answers
        self.requests = []
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.bind(ferry.sock_path)
        self.sock.listen(8)
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def close(self):
        self.sock.close()

    def _serve(self):
        while True:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._conn, args=(c,), daemon=True).start()

    @staticmethod
    def _exact(c, n):
        b = b""
        while len(b) < n:
            chunk = c.recv(n - len(b))
            if not chunk:
                raise EOFError
            b += chunk
        return b

    def _conn(self, c):
        try:
            while True:
                _, _, _, body_len, json_len = HDR.unpack(self._exact(c, HDR.size))
                body = self._exact(c, body_len)
                req = json.loads(body[:json_len])
                self.requests.append((req, body_len - json_len))
                op = req.get("op")
                if op == "hello":
                    rep = {"ok": True, "protocol": 3, "pid": os.getpid()}
                else:
                    a = self.answers.get(op, {"ok": False, "code": -10, "error": "EIO",
                                              "message": f"confused engine: no {op}"})
                    rep = a(req) if callable(a) else a
                js = json.dumps(rep).encode()
                c.sendall(HDR.pack(MAGIC, 1, 2, len(js), len(js)) + js)
        except (EOFError, OSError, ValueError):
            c.close()

    def ops(self):
        return [r.get("op") for r, _ in self.requests]


@pytest.fixture
def expected_root(ferry):
    """The transfer root the client expects (the default): it must exist
    for the client to copy into it at all."""
    root = os.path.join(ferry.state_dir, "transfers")
    os.makedirs(root, mode=0o700)
    os.chmod(ferry.state_dir, 0o700)
    return os.path.realpath(root)


def _victim(ferry, path=None):
    path = path or ferry.path("victim.txt")
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        f.write("precious\n")
    return path


PART_SHAPES = {
    "a file of the user's": lambda f, root: _victim(f),
    "a way out of the root": lambda f, root: os.path.join(
        root, "t1", os.path.relpath(_victim(f), os.path.join(root, "t1"))),
    "another file's part": lambda f, root: _victim(f, os.path.join(root, "t1",
                                                                   ".other.bin.ferry-part")),
    "no transfer directory": lambda f, root: _victim(f, os.path.join(root,
                                                                    ".data.bin.ferry-part")),
    "a directory too deep": lambda f, root: _victim(f, os.path.join(root, "t1", "x",
                                                                   ".data.bin.ferry-part")),
    "the name without its dot": lambda f, root: _victim(f, os.path.join(root, "t1",
                                                                       "data.bin.ferry-part")),
}


def _send_answers(part):
    return {
        "transfer_send": {"ok": True, "id": 1, "server_path": "/elsewhere/t1/data.bin",
                          "state": "transferring",
                          "files": [{"done": 0, "complete": False, "part_path": part}]},
        "transfer_put": {"ok": False, "code": -10, "error": "EIO",
                         "message": "confused engine: enough"},
    }


@pytest.mark.parametrize("shape", list(PART_SHAPES))
def test_send_writes_no_part_the_engine_names_elsewhere(ferry, expected_root, shape):
    part = PART_SHAPES[shape](ferry, expected_root)
    data = ferry.path("data.bin")
    with open(data, "wb") as f:
        f.write(os.urandom(5000))
    eng = ConfusedEngine(ferry, _send_answers(part))
    try:
        cp = ferry.run("send", data, check=False, timeout=30)
    finally:
        eng.close()
    assert cp.returncode == 1 and "confused engine: enough" in cp.stderr, cp
    with open(os.path.realpath(part)) as f:
        assert f.read() == "precious\n", f"the client wrote the engine's '{part}'"
    puts = [(r, n) for r, n in eng.requests if r.get("op") == "transfer_put"]
    assert puts and puts[0][1] == 5000 and "copied_from" not in puts[0][0], \
        f"the bytes did not go over the socket: {eng.requests}"


def test_send_copies_into_the_expected_part(ferry, expected_root):
    """The control: the part a real engine names is written on this host."""
    part = os.path.join(expected_root, "t1", ".data.bin.ferry-part")
    os.makedirs(os.path.dirname(part))
    data = ferry.path("data.bin")
    payload = os.urandom(5000)
    with open(data, "wb") as f:
        f.write(payload)
    eng = ConfusedEngine(ferry, _send_answers(part))
    try:
        cp = ferry.run("send", data, check=False, timeout=30)
    finally:
        eng.close()
    assert cp.returncode == 1, cp
    with open(part, "rb") as f:
        assert f.read() == payload
    puts = [(r, n) for r, n in eng.requests if r.get("op") == "transfer_put"]
    assert puts and puts[0][1] == 0 and puts[0][0].get("copied_from") == 0, eng.requests


def _entry(path, **kw):
    e = {"path": path, "type": "file", "size": 9, "mode": 0o644, "mtime_ns": 0,
         "hash": "0" * 32}
    e.update(kw)
    return {k: v for k, v in e.items() if v is not None}


BAD_MANIFESTS = {
    "parent": [_entry("../victim.txt")],
    "absolute": [_entry("/tmp/victim.txt")],
    "out through a dir": [_entry("top", type="dir"), _entry("top/../../victim.txt")],
    "deep way out": [_entry("top", type="dir"), _entry("top/a/../../../victim.txt")],
    "empty component": [_entry("top", type="dir"), _entry("top//x")],
    "dot component": [_entry("top", type="dir"), _entry("top/./x")],
    "empty path": [_entry("")],
    "dot": [_entry(".", type="dir")],
    "dot dot": [_entry("..", type="dir")],
    "no path": [_entry(None)],
    "unknown type": [_entry("x", type="symlink")],
    "no type": [_entry("x", type=None)],
    "negative size": [_entry("x", size=-1)],
    "no checksum": [_entry("x", hash=None)],
    "not a list": {"x": 1},
}


def _manifest_answers(sp, files, local_paths=()):
    return {"transfer_manifest": {"ok": True, "transfer": {
        "server_path": sp, "state": "ready", "files": files,
        "local_paths": list(local_paths)}}}


def _tree(d):
    return sorted(os.path.relpath(os.path.join(r, n), d)
                  for r, ds, fs in os.walk(d) for n in ds + fs)


@pytest.mark.parametrize("shape", list(BAD_MANIFESTS))
def test_retrieve_refuses_a_manifest_leading_elsewhere(ferry, expected_root, shape):
    victim = _victim(ferry)
    dest_dir = ferry.path("dest", "in")
    os.makedirs(dest_dir)
    before = _tree(ferry.work)
    sp = os.path.join(expected_root, "t1", "x")
    eng = ConfusedEngine(ferry, _manifest_answers(sp, BAD_MANIFESTS[shape]))
    try:
        cp = ferry.run("retrieve", "--to", os.path.join(dest_dir, "out"), sp, check=False,
                       timeout=30)
    finally:
        eng.close()
    assert cp.returncode == 1, cp
    assert "bad reply from the engine" in cp.stderr, cp.stderr
    assert _tree(ferry.work) == before, "the client wrote something"
    assert open(victim).read() == "precious\n"
    assert "transfer_get" not in eng.ops() and "transfer_retrieved" not in eng.ops()


@pytest.mark.parametrize("recorded", ["relative/victim.txt", "victim.txt", "./victim.txt"])
def test_retrieve_refuses_a_recorded_path_that_is_not_absolute(ferry, expected_root, recorded):
    """A relative recorded path would be taken from wherever the retrieve
    happens to run."""
    victim = _victim(ferry)
    before = _tree(ferry.work)
    sp = os.path.join(expected_root, "t1", "victim.txt")
    eng = ConfusedEngine(ferry, _manifest_answers(sp, [_entry("victim.txt")], [recorded]))
    try:
        cp = ferry.run("retrieve", sp, check=False, timeout=30)
    finally:
        eng.close()
    assert cp.returncode == 1 and "recorded local path" in cp.stderr, cp
    assert _tree(ferry.work) == before and open(victim).read() == "precious\n"


@pytest.mark.parametrize("given", ["./f.txt", "sub/../f.txt", "sub//../f.txt"])
def test_retrieve_to_a_recorded_path_as_the_user_gave_it(ferry, given):
    """The control: a path recorded as the user wrote it comes back there."""
    os.makedirs(ferry.path("sub"))
    with open(ferry.path("f.txt"), "w") as f:
        f.write("mine\n")
    sp = ferry.run("send", given).stdout.strip()
    os.unlink(ferry.path("f.txt"))
    ferry.run("retrieve", sp)
    with open(ferry.path("f.txt")) as f:
        assert f.read() == "mine\n"


def test_retrieve_of_a_good_manifest_goes_past_the_checks(ferry, expected_root):
    """The control: a manifest of plain paths is taken (and then fails only
    for want of the engine's file)."""
    sp = os.path.join(expected_root, "t1", "top")
    eng = ConfusedEngine(ferry, _manifest_answers(
        sp, [_entry("top", type="dir"), _entry("top/a.txt"), _entry("top/sub", type="dir"),
             _entry("top/sub/b.txt")]))
    try:
        cp = ferry.run("retrieve", "--to", ferry.path("out"), sp, check=False, timeout=30)
    finally:
        eng.close()
    assert cp.returncode == 1, cp
    assert "bad reply" not in cp.stderr and "cannot copy" in cp.stderr, cp.stderr


def test_retrieve_streams_from_a_transfer_outside_the_expected_root(ferry, expected_root):
    """A server path the client does not expect is not read on this host:
    the bytes are asked of the engine instead."""
    outside = _victim(ferry, ferry.path("elsewhere", "t1", "victim.txt"))
    eng = ConfusedEngine(ferry, _manifest_answers(outside, [_entry("victim.txt")]))
    try:
        cp = ferry.run("retrieve", "--to", ferry.path("out"), outside, check=False, timeout=30)
    finally:
        eng.close()
    assert cp.returncode == 1, cp
    assert "transfer_get" in eng.ops(), eng.ops()
    assert not os.path.exists(ferry.path("out"))


@pytest.mark.parametrize("mode,want", [(0o4755, 0o755), (0o2750, 0o750), (0o1644, 0o644),
                                       (0o6711, 0o711)])
def test_retrieved_copy_is_never_set_id(ferry, mode, want):
    src = ferry.path("prog")
    with open(src, "w") as f:
        f.write("#!/bin/sh\necho hi\n")
    os.chmod(src, mode)
    sp = ferry.run("send", src).stdout.strip()
    dest = ferry.path("back")
    ferry.run("retrieve", "--to", dest, sp)
    assert stat.S_IMODE(os.stat(dest).st_mode) == want


# --------------------------------------------------- the transfer root


def _root_of_other(mode):
    def arrange(ferry, other):
        root = os.path.join(ferry.base, "troot")
        os.makedirs(root)
        os.chown(root, other.pw.pw_uid, other.pw.pw_gid)
        os.chmod(root, mode)
        return root, root, OTHER_USER
    return arrange


def _root_mode(mode, group_of_other=False):
    def arrange(ferry, other):
        root = os.path.join(ferry.base, "troot")
        os.makedirs(root)
        os.chmod(root, mode)
        if group_of_other:
            os.chown(root, -1, other.pw.pw_gid)
        return root, root, f"{mode:04o}"
    return arrange


def _root_in(parent_mode, parent_of_other=False, missing=False, group_of_other=False):
    def arrange(ferry, other):
        parent = os.path.join(ferry.base, "scratch")
        os.makedirs(parent)
        os.chmod(parent, parent_mode)
        if parent_of_other:
            os.chown(parent, other.pw.pw_uid, other.pw.pw_gid)
        if group_of_other:
            os.chown(parent, -1, other.pw.pw_gid)
        root = os.path.join(parent, "me", "troot") if missing else os.path.join(parent, "troot")
        if not missing:
            os.makedirs(root, mode=0o700)
        return root, parent, OTHER_USER if parent_of_other else f"{parent_mode:04o}"
    return arrange


def _link_to(arrange_target):
    def arrange(ferry, other):
        target, bad, why = arrange_target(ferry, other)
        link = os.path.join(ferry.base, "troot-link")
        os.symlink(target, link)
        return link, bad, why
    return arrange


ROOT_SHAPES = {
    "of another user, 0777": (_root_of_other(0o777), True),
    "of another user, 0700": (_root_of_other(0o700), True),
    "ours, 0777": (_root_mode(0o777), False),
    "ours, 0757": (_root_mode(0o757), False),
    "ours, 0770 in another's group": (_root_mode(0o770, group_of_other=True), True),
    "in a 0777 parent": (_root_in(0o777), False),
    "in a 0775 parent of another's group": (_root_in(0o775, group_of_other=True), True),
    "in a parent of another user": (_root_in(0o755, parent_of_other=True), True),
    "to be made in a 0777 parent": (_root_in(0o777, missing=True), False),
    "a link to another user's 0777": (_link_to(_root_of_other(0o777)), True),
    "a link into a 0777 parent": (_link_to(_root_in(0o777)), False),
}


@pytest.mark.parametrize("shape", list(ROOT_SHAPES))
def test_engine_refuses_a_transfer_root_others_can_change(request, ferry, shape):
    arrange, needs_other = ROOT_SHAPES[shape]
    other = request.getfixturevalue("other") if needs_other else None
    root, bad, why = arrange(ferry, other)
    ferry.config(f"[local]\nslots = 2\ntransfer_root = {root}\n")
    cp = ferry.run("daemon", "start", check=False, timeout=30)
    assert cp.returncode == 1, cp
    assert "refusing the transfer root" in cp.stderr, cp.stderr
    assert f"'{bad}'" in cp.stderr and why in cp.stderr, cp.stderr
    # the fix, when the user can make it: the directory is theirs
    hint = f"fix: chmod go-w '{os.path.realpath(bad)}'"
    assert (hint in cp.stderr) == (os.stat(bad).st_uid == os.geteuid()), cp.stderr
    assert not ferry.engine_alive()


@pytest.mark.parametrize("shape", ["sticky parent", "link to a good dir", "made by the engine",
                                   "0755", "0750", "0711", "0555"])
def test_engine_takes_a_transfer_root_only_it_can_change(ferry, shape):
    """Others may read the transfer root (StrictModes): 0755 is fine, as
    long as no one else can write it."""
    mode = 0o700
    if shape[0] == "0":
        mode = int(shape, 8)
        root = os.path.join(ferry.base, "troot")
        os.makedirs(root)
        os.chmod(root, mode)
    elif shape == "sticky parent":
        parent = os.path.join(ferry.base, "scratch")
        os.makedirs(parent)
        os.chmod(parent, 0o1777)
        root = os.path.join(parent, "troot")
        os.makedirs(root, mode=0o700)
    elif shape == "link to a good dir":
        target = os.path.join(ferry.base, "troot")
        os.makedirs(target, mode=0o700)
        root = os.path.join(ferry.base, "troot-link")
        os.symlink(target, root)
    else:
        root = os.path.join(ferry.base, "a", "b", "troot")
    ferry.config(f"[local]\nslots = 2\ntransfer_root = {root}\n")
    src = ferry.path("in.txt")
    with open(src, "w") as f:
        f.write("data\n")
    sp = ferry.run("send", src).stdout.strip()
    assert sp.startswith(os.path.realpath(root) + "/"), sp
    st = os.stat(root)
    assert st.st_uid == os.geteuid() and stat.S_IMODE(st.st_mode) == mode


def test_a_users_engine_takes_a_transfer_root_of_roots(other):
    """A root-owned transfer root no one else can write (as a system's
    scratch directory) passes for a user; the engine starts."""
    root = os.path.join(other.base, "rootowned")
    os.makedirs(root)
    os.chmod(root, 0o755)
    conf = os.path.join(other.base, "config", "ferry", "ferry.conf")
    os.makedirs(os.path.dirname(conf), exist_ok=True)
    with open(conf, "w") as f:
        f.write(f"[local]\nscheduler = local\ntransfer_root = {root}\n")
    for p in (os.path.dirname(conf), conf):
        os.chown(p, other.pw.pw_uid, other.pw.pw_gid)
    cp = other.ferry("daemon", "start")
    assert cp.returncode == 0, cp
    assert other.ferry("ping").returncode == 0
    os.chmod(root, 0o775)  # root's group: not the user's own
    assert other.ferry("daemon", "stop").returncode == 0
    cp = other.ferry("daemon", "start")
    assert cp.returncode != 0 and "refusing the transfer root" in cp.stderr, cp
    assert "fix: chmod" not in cp.stderr, cp.stderr  # not theirs to fix
