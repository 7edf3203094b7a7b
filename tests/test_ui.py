"""`ferry ui`: the web page's server (src/ui). Its security rules with
Python's http.client (the token, the session cookie, Host, CSRF token and
Origin, loopback only), its JSON API, and the page itself in a real
headless Chromium driven by Selenium (Debian's chromium, chromium-driver,
python3-selenium). Each browser test saves a screenshot under
BUILD_DIR/test-output/test_ui/."""
import http.client
import json
import os
import re
import select
import shutil
import signal
import socket
import subprocess
import time
import urllib.parse

import pytest

from conftest import BUILD_DIR, FERRY_BIN, ferry_world, poll
from test_hardening_connections import asan_build

SHOTS = os.path.join(BUILD_DIR, "test-output", "test_ui")


class UI:
    """A running `ferry ui --no-browser` of a ferry world, its URL read
    from its output; stop() ends it with a signal and checks it quit."""

    def __init__(self, f, *args):
        self.f = f
        self.p = subprocess.Popen([FERRY_BIN, "ui", "--no-browser", *args], env=f.env,
                                  cwd=f.work, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        self.out = b""
        deadline = time.monotonic() + 30
        while b"token=" not in self.out or not self.out.endswith(b"\n"):
            left = deadline - time.monotonic()
            assert left > 0, f"ferry ui printed no URL: {self.out!r}"
            r, _, _ = select.select([self.p.stdout], [], [], left)
            chunk = os.read(self.p.stdout.fileno(), 4096) if r else b""
            assert chunk or not r, (f"ferry ui exited {self.p.wait()}: {self.out!r} "
                                    f"{self.p.stderr.read()!r}")
            self.out += chunk
        self.url = re.search(rb"^(http://\S+)$", self.out, re.M).group(1).decode()
        u = urllib.parse.urlsplit(self.url)
        self.host, self.port = u.hostname, u.port
        self.token = urllib.parse.parse_qs(u.query)["token"][0]
        self.cookie = None

    def stop(self, sig=signal.SIGTERM):
        if self.p.poll() is None:
            self.p.send_signal(sig)
        try:
            rc = self.p.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.p.kill()
            self.p.wait()
            raise AssertionError("ferry ui did not quit within 15 s of its signal")
        self.stderr = self.p.stderr.read().decode(errors="replace")
        return rc

    # -- plain HTTP
    def request(self, method, path, headers=None, body=None, host=None, cookie=True):
        c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        h = {"Host": host or f"127.0.0.1:{self.port}"}
        if cookie and self.cookie:
            h["Cookie"] = self.cookie
        h.update(headers or {})
        c.request(method, path, body=body, headers=h)
        r = c.getresponse()
        data = r.read()
        c.close()
        return r, data

    def login(self):
        r, _ = self.request("GET", "/?token=" + self.token, cookie=False)
        assert r.status == 303, r.status
        self.cookie = r.getheader("Set-Cookie").split(";")[0]
        return r

    def wait_connected(self):
        """Until every resource is connected: its poller connects it after
        the URL is printed, and the API answers 503 until then."""
        poll(lambda: all(r["connected"] for r in self.api("/api/resources")), 15, 0.05,
             "the resources connected")

    def csrf(self):
        r, page = self.request("GET", "/")
        assert r.status == 200
        return re.search(rb'name="ferry-csrf" content="([0-9a-f]{64})"', page).group(1).decode()

    def api(self, path, **params):
        r, data = self.request("GET", path + "?" + urllib.parse.urlencode(params))
        assert r.status == 200, (r.status, data)
        return json.loads(data)

    def post(self, body, csrf=None, origin=None):
        h = {"Content-Type": "application/json"}
        if csrf:
            h["X-Ferry-CSRF"] = csrf
        if origin:
            h["Origin"] = origin
        return self.request("POST", "/api/action", headers=h, body=json.dumps(body))


@pytest.fixture
def ui(ferry):
    u = UI(ferry)
    yield u
    assert u.stop() == 0, u.stderr


def held_job(f):
    return f.submit("true", opts=("--hold",))


# ------------------------------------------------------------ security

def test_only_the_token_opens_the_page(ui):
    r, _ = ui.request("GET", "/", cookie=False)
    assert r.status == 403
    r, _ = ui.request("GET", "/?token=" + "0" * 64, cookie=False)
    assert r.status == 403
    r, _ = ui.request("GET", "/?token=" + ui.token[:-1], cookie=False)
    assert r.status == 403
    for path in ("/api/resources", "/app.js", "/events", "/api/jobs?resource=local"):
        r, _ = ui.request("GET", path, cookie=False)
        assert r.status == 403, path
    r = ui.login()
    cookie = r.getheader("Set-Cookie")
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie
    assert r.getheader("Location") == "/"  # the token leaves the address bar
    assert r.getheader("Referrer-Policy") == "no-referrer"
    r, page = ui.request("GET", "/")
    assert r.status == 200 and b"<table" in page
    # the token opened its session: it opens no other, but its browser goes on
    r, body = ui.request("GET", "/?token=" + ui.token, cookie=False)
    assert r.status == 403 and b"opened a session already" in body, body
    r, _ = ui.request("GET", "/?token=" + ui.token)
    assert r.status == 303 and r.getheader("Location") == "/"
    # another cookie value, or the token as the cookie, opens nothing
    name = ui.cookie.split("=")[0]
    for bad in ("0" * 64, ui.token):
        r, _ = ui.request("GET", "/api/resources", cookie=False,
                          headers={"Cookie": f"{name}={bad}"})
        assert r.status == 403


def test_a_foreign_host_header_is_refused(ui):
    ui.login()
    for host in ("evil.example", f"evil.example:{ui.port}", f"127.0.0.1:{ui.port + 1}",
                 f"localhost.evil.example:{ui.port}", "127.0.0.1"):
        r, _ = ui.request("GET", "/api/resources", host=host)
        assert r.status == 403, host
        r, _ = ui.request("GET", "/?token=" + ui.token, host=host, cookie=False)
        assert r.status == 403, host
    for host in (f"127.0.0.1:{ui.port}", f"localhost:{ui.port}"):
        r, _ = ui.request("GET", "/api/resources", host=host)
        assert r.status == 200, host


def test_a_post_needs_the_csrf_token_and_its_own_origin(ui, ferry):
    ui.login()
    csrf = ui.csrf()
    jid = held_job(ferry)
    ui.wait_connected()
    body = {"resource": "local", "action": "kill", "ids": [jid]}
    own = f"http://127.0.0.1:{ui.port}"
    for kw in ({}, {"csrf": "0" * 64}, {"csrf": csrf, "origin": "http://evil.example"},
               {"csrf": csrf, "origin": f"http://localhost:{ui.port}"},
               {"csrf": csrf, "origin": "null"}):
        r, data = ui.post(body, **kw)
        assert r.status == 403, (kw, data)
    assert ferry.state(jid) == "user_on_hold"
    # a GET never acts, and the API takes no other method
    r, _ = ui.request("GET", "/api/action?" + urllib.parse.urlencode(
        {"resource": "local", "action": "kill", "ids": jid}))
    assert r.status == 404
    r, _ = ui.request("PUT", "/api/action", headers={"X-Ferry-CSRF": csrf}, body="{}")
    assert r.status == 405
    assert ferry.state(jid) == "user_on_hold"
    r, data = ui.post(body, csrf=csrf, origin=own)
    assert r.status == 200, data
    assert json.loads(data) == {"matched": 1, "changed": 1, "failed": 0, "errors": []}
    assert ferry.wait_ended(jid)["exit_status"] == "killed_by_user"


def listening_addresses(pid):
    """The local addresses of the listening TCP sockets of process pid."""
    inodes = set()
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            m = re.match(r"socket:\[(\d+)\]", os.readlink(f"/proc/{pid}/fd/{fd}"))
        except OSError:
            continue
        if m:
            inodes.add(m.group(1))
    found = []
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with open(table) as fh:
            for line in fh.readlines()[1:]:
                w = line.split()
                if w[3] == "0A" and w[9] in inodes:  # LISTEN
                    found.append(w[1])
    return found


def test_listens_on_loopback_only_by_default(ui):
    addrs = listening_addresses(ui.p.pid)
    # 127.0.0.1 in /proc/net/tcp's byte order, and the port
    assert addrs == [f"0100007F:{ui.port:04X}"], addrs
    assert ui.url.startswith(f"http://127.0.0.1:{ui.port}/?token=")
    assert re.fullmatch(r"[0-9a-f]{64}", ui.token)


def test_bind_elsewhere_warns(ferry):
    u = UI(ferry, "--bind", "0.0.0.0")
    try:
        assert listening_addresses(u.p.pid) == [f"00000000:{u.port:04X}"]
        # a wildcard is no address to open: the URL is this host's loopback one
        assert u.url.startswith(f"http://127.0.0.1:{u.port}/")
    finally:
        assert u.stop() == 0
    assert "warning: listening on '0.0.0.0', not a loopback address" in u.stderr
    u = UI(ferry, "--bind", "127.0.0.1")
    assert u.stop() == 0
    assert "warning" not in u.stderr


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_quits_cleanly_on_a_signal(ferry, sig):
    u = UI(ferry)
    u.login()
    # an open event stream does not hold the server up
    c = http.client.HTTPConnection("127.0.0.1", u.port, timeout=30)
    c.request("GET", "/events", headers={"Host": f"127.0.0.1:{u.port}", "Cookie": u.cookie})
    r = c.getresponse()
    assert r.getheader("Content-Type") == "text/event-stream"
    assert r.readline().startswith(b"event: resources")
    t = time.monotonic()
    assert u.stop(sig) == 0, u.stderr
    assert time.monotonic() - t < 10
    c.close()


def test_usage_errors(ferry):
    for args, rc, msg in (
            (["--bind", "localhost"], 2, "--bind"),
            (["--bind", "1.2.3"], 2, "--bind"),
            (["--port", "0"], 2, "--port"),
            (["--port", "70000"], 2, "--port"),
            (["--json"], 2, "unrecognized option"),
            (["extra"], 2, "unexpected argument 'extra'"),
            (["-r", "nosuch"], 1, "nosuch")):
        cp = ferry.run("ui", "--no-browser", *args, check=False, timeout=30)
        assert cp.returncode == rc, (args, cp.stderr)
        assert msg in cp.stderr, (args, cp.stderr)


def test_resources_shown_are_all_or_those_named(ferry):
    ferry.config("[local]\nslots = 2\n[second]\nscheduler = local\nslots = 1\n")
    for args, names in (((), ["local", "second"]), (("-r", "second"), ["second"]),
                        (("-r", "second", "-r", "local", "-r", "second"), ["second", "local"])):
        u = UI(ferry, *args)
        try:
            u.login()
            assert [r["name"] for r in u.api("/api/resources")] in ([], names)
            poll(lambda: [r["name"] for r in u.api("/api/resources")] == names, 10, 0.1,
                 f"the resources {names}")
        finally:
            assert u.stop() == 0
    # the global -r names one too
    p = subprocess.Popen([FERRY_BIN, "-r", "second", "ui", "--no-browser", "-r", "local"],
                         env=ferry.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        assert p.stdout.readline() == b"ferry ui: serving 2 resources; open\n"
    finally:
        p.terminate()
        assert p.wait(15) == 0


def test_a_host_that_hangs_holds_up_no_other_resource(ferry):
    """Each resource has a poller of its own: one whose ssh never answers
    leaves the others counted, and the server still quits on a signal."""
    hang = ferry.path("hang.sh")
    with open(hang, "w") as fh:  # its path in its command line: the cleanup finds it
        fh.write("#!/bin/sh\nwhile :; do sleep 1; done\n")
    os.chmod(hang, 0o755)
    ferry.config(f"[local]\nslots = 2\n[hang]\nhost = hang.invalid\n"
                 f"ssh_options = -o ProxyCommand={hang}\n")
    jid = held_job(ferry)
    u = UI(ferry)
    try:
        u.login()

        def summaries():
            got = {r["name"]: r for r in u.api("/api/resources")}
            return got if got.get("local", {}).get("connected") else None
        got = poll(summaries, 5, 0.1, "local counted while hang connects")
        assert got["local"]["counts"]["user_on_hold"] == 1
        assert got["hang"]["connected"] is False and got["hang"]["error"]
        assert [j["id"] for j in u.api("/api/jobs", resource="local")["jobs"]] == [jid]
        r, _ = u.request("GET", "/api/jobs?resource=hang")
        assert r.status == 503
    finally:
        assert u.stop() == 0, u.stderr


def interface_addresses():
    """This host's IPv4 addresses but loopback ones, from ip(8) (none without it)."""
    if not shutil.which("ip"):
        return []
    out = subprocess.run(["ip", "-o", "-4", "addr", "show"], capture_output=True,
                         text=True).stdout
    return [a for a in re.findall(r"\binet (\d+\.\d+\.\d+\.\d+)/", out)
            if not a.startswith("127.")]


def test_bound_elsewhere_takes_its_address_and_hostname_as_host(ferry):
    """--bind 0.0.0.0: the Host another host uses (this one's name, or an
    address of its interfaces) opens the page; other names (DNS rebinding)
    still do not. A loopback bind takes neither."""
    me = socket.gethostname()
    u = UI(ferry, "--bind", "0.0.0.0")
    try:
        assert f"http://{me}:{u.port}/?token={u.token}" in u.out.decode()
        u.login()
        for host in [f"{me}:{u.port}", f"{me.upper()}:{u.port}", f"127.0.0.1:{u.port}",
                     f"localhost:{u.port}"] + [f"{a}:{u.port}" for a in interface_addresses()]:
            r, _ = u.request("GET", "/api/resources", host=host)
            assert r.status == 200, host
        for host in ("evil.example", f"evil.example:{u.port}", f"{me}.evil.example:{u.port}",
                     f"{me}:{u.port + 1}", f"0.0.0.0.evil.example:{u.port}", me,
                     f"192.0.2.254:{u.port}" if "192.0.2.254" not in interface_addresses()
                     else f"198.51.100.1:{u.port}"):
            r, _ = u.request("GET", "/api/resources", host=host)
            assert r.status == 403, host
        # a POST from the page opened by the host's name: its Origin is its Host
        csrf = u.csrf()
        r, data = u.request("POST", "/api/action", host=f"{me}:{u.port}", body="{}",
                            headers={"X-Ferry-CSRF": csrf, "Origin": f"http://{me}:{u.port}",
                                     "Content-Type": "application/json"})
        assert r.status == 400, data  # past the checks, to the API's own
    finally:
        assert u.stop() == 0, u.stderr
    u = UI(ferry, "--bind", "127.0.0.1")
    try:
        assert "another host" not in u.out.decode()
        u.login()
        for host in [f"{me}:{u.port}"] + [f"{a}:{u.port}" for a in interface_addresses()]:
            r, _ = u.request("GET", "/api/resources", host=host)
            assert r.status == 403, host
    finally:
        assert u.stop() == 0, u.stderr


def xdg_open_observer(f, seen):
    """An observation hook of an external program: a script named xdg-open,
    put first on PATH, that records what `ferry ui` gives the real one (its
    argument count and arguments, the modes of the file and of its
    directory, the file's text) in seen. Its directory, for PATH."""
    bin_dir = f.path("bin")
    os.makedirs(bin_dir, exist_ok=True)
    hook = os.path.join(bin_dir, "xdg-open")
    with open(hook, "w") as fh:
        fh.write("#!/bin/sh\n# test hook: records what xdg-open was given\n"
                 f'{{ printf "%s\\n" "$#" "$@"; stat -c %a "$1" "${{1%/*}}"; cat "$1"; }} '
                 f"> {seen}.tmp 2>&1; mv {seen}.tmp {seen}\n")
    os.chmod(hook, 0o755)
    return bin_dir


def opened_with(f, env):
    """Runs `ferry ui` with env until the hook saw xdg-open run: its URL,
    the lines the hook recorded, and the stopped process."""
    seen = f.path("xdg-open.seen")
    if os.path.exists(seen):
        os.unlink(seen)
    p = subprocess.Popen([FERRY_BIN, "ui"], env=env, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE)
    try:
        p.stdout.readline()
        url = p.stdout.readline().decode().strip()
        poll(lambda: os.path.exists(seen), 10, 0.05, "xdg-open run")
        with open(seen) as fh:
            lines = fh.read().splitlines()
    finally:
        p.terminate()
        assert p.wait(15) == 0, p.stderr.read()
    return url, lines


def test_opens_the_browser_through_a_private_file(ferry):
    """xdg-open gets one argument: a file only this user reads (0600, in a
    directory of its own, 0700) that leads the browser on to the URL. The
    token is on no command line, which `ps` shows every local user; the
    file is gone once the server stopped."""
    run = ferry.path("run")
    os.makedirs(run, mode=0o700)
    bin_dir = xdg_open_observer(ferry, ferry.path("xdg-open.seen"))
    env = dict(ferry.env, PATH=bin_dir + os.pathsep + ferry.env["PATH"], XDG_RUNTIME_DIR=run)
    url, lines = opened_with(ferry, env)
    token = urllib.parse.parse_qs(urllib.parse.urlsplit(url).query)["token"][0]
    assert lines[0] == "1", lines
    path = lines[1]
    assert token not in path and os.path.dirname(os.path.dirname(path)) == run, path
    assert lines[2:4] == ["600", "700"], lines
    page = "\n".join(lines[4:])
    assert f'content="1;url={url}"' in page and f'location.replace("{url}")' in page, page
    assert not os.path.exists(path) and os.listdir(run) == []
    # without XDG_RUNTIME_DIR, under TMPDIR
    tmp = ferry.path("tmp")
    os.makedirs(tmp)
    env = dict(env, TMPDIR=tmp)
    del env["XDG_RUNTIME_DIR"]
    url, lines = opened_with(ferry, env)
    assert lines[0] == "1" and lines[2:4] == ["600", "700"], lines
    assert os.path.dirname(os.path.dirname(lines[1])) == tmp and os.listdir(tmp) == []
    # no file can be written: that is said, and no browser gets the URL instead
    seen = ferry.path("xdg-open.seen")
    os.unlink(seen)
    p = subprocess.Popen([FERRY_BIN, "ui"], env=dict(env, XDG_RUNTIME_DIR="/nonexistent/run"),
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        assert b"token=" in p.stdout.readline() + p.stdout.readline()
        time.sleep(0.5)
    finally:
        p.terminate()
        assert p.wait(15) == 0
    assert (b"cannot write the browser's page under '/nonexistent/run' (no such file or "
            b"directory): open the URL yourself") in p.stderr.read()
    assert not os.path.exists(seen)
    # without an xdg-open, the URL is printed and that is said
    env["PATH"] = "/nonexistent"
    p = subprocess.Popen([FERRY_BIN, "ui"], env=env, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE)
    try:
        assert b"token=" in p.stdout.readline() + p.stdout.readline()
    finally:
        p.terminate()
        assert p.wait(15) == 0
    assert b"cannot run 'xdg-open'" in p.stderr.read()
    assert os.listdir(tmp) == []


def test_a_port_in_use_is_a_clear_error(ui, ferry):
    cp = ferry.run("ui", "--no-browser", "--port", str(ui.port), check=False, timeout=30)
    assert cp.returncode == 1
    assert f"cannot listen on '127.0.0.1' port {ui.port}" in cp.stderr


# ------------------------------------------------------------ the JSON API

def test_resources_count_jobs_per_state(ui, ferry):
    ui.login()
    held = [held_job(ferry) for _ in range(3)]
    done = ferry.submit("true")
    ferry.wait_ended(done)

    def counted():
        (r,) = ui.api("/api/resources")
        return r if r["connected"] and r["counts"]["user_on_hold"] == 3 and \
            r["counts"]["done"] == 1 else None
    r = poll(counted, 10, 0.1, "the counts")
    assert r["name"] == "local" and r["total"] == 4 and r["error"] is None
    assert held


def test_jobs_are_paged_and_filtered(ui, ferry):
    ui.login()
    ids = {}
    for i in range(7):
        name = ("a-%d" if i % 2 else "b-%d") % i
        ids[ferry.submit("true", opts=("--name", name, "--hold"))] = name
    seen, after = [], 0
    while True:
        page = ui.api("/api/jobs", resource="local", limit=3, after=after)
        assert len(page["jobs"]) <= 3
        seen += [j["id"] for j in page["jobs"]]
        if page["next"] is None:
            break
        after = page["next"]
    assert seen == sorted(ids)
    b = ui.api("/api/jobs", resource="local", name="b-*")["jobs"]
    assert [j["id"] for j in b] == sorted(i for i, n in ids.items() if n.startswith("b-"))
    # without a glob character: the text anywhere in the name
    assert [j["name"] for j in ui.api("/api/jobs", resource="local", name="-3")["jobs"]] == ["a-3"]
    # a name filter pages too
    page = ui.api("/api/jobs", resource="local", name="a-*", limit=2)
    assert [j["name"] for j in page["jobs"]] == ["a-1", "a-3"] and page["next"] is not None
    page = ui.api("/api/jobs", resource="local", name="a-*", limit=2, after=page["next"])
    assert [j["name"] for j in page["jobs"]] == ["a-5"] and page["next"] is None
    first = min(ids)
    ferry.run("kill", first)
    ferry.wait_ended(first)
    assert [j["id"] for j in ui.api("/api/jobs", resource="local", state="failed")["jobs"]] == \
        [first]
    assert len(ui.api("/api/jobs", resource="local", state="user_on_hold,failed")["jobs"]) == 7
    # the newest page, which the page shows first
    page = ui.api("/api/jobs", resource="local", limit=3, **{"from": "end"})
    assert [j["id"] for j in page["jobs"]] == sorted(ids)[-3:] and page["next"] is None
    page = ui.api("/api/jobs", resource="local", limit=30, **{"from": "end"})
    assert [j["id"] for j in page["jobs"]] == sorted(ids)
    page = ui.api("/api/jobs", resource="local", limit=3, state="failed", **{"from": "end"})
    assert [j["id"] for j in page["jobs"]] == [first]
    for bad in ({"state": "nosuch"}, {"limit": "0"}, {"limit": "501"}, {"after": "x"},
                {"from": "start"}, {"from": "end", "name": "a-*"}, {"from": "end", "after": 2}):
        r, _ = ui.request("GET", "/api/jobs?" + urllib.parse.urlencode(
            {"resource": "local", **bad}))
        assert r.status == 400, bad
    r, _ = ui.request("GET", "/api/jobs?resource=nosuch")
    assert r.status == 404


def test_a_name_filter_looks_at_a_bounded_number_of_jobs_an_answer(ui, ferry):
    """The listing has no name filter: the server looks at 10,000 jobs at
    most an answer, and gives the cursor where it stopped."""
    ui.login()
    with open(ferry.path("bulk"), "w") as fh:
        fh.write("true\n" * 25000)
    ferry.run("submit", "--hold", "--bulk", ferry.path("bulk"), timeout=120)
    needle = ferry.submit("true", opts=("--hold", "--name", "needle"))
    pages, after, found = 0, 0, []
    while True:
        page = ui.api("/api/jobs", resource="local", name="needle", after=after)
        pages += 1
        found += [j["id"] for j in page["jobs"]]
        if page["next"] is None:
            break
        assert page["next"] > after
        after = page["next"]
    assert found == [needle]
    assert pages == 3  # 10,000 + 10,000 + the rest
    # without a name the engine stops the listing itself: one answer
    page = ui.api("/api/jobs", resource="local", limit=2, after=24999)
    assert [j["id"] for j in page["jobs"]] == [25000, needle] and page["next"] is None


def test_the_newest_page_from_the_pollers_count(ui, ferry):
    """from=end starts its listing at a cursor from the ids the poller
    last counted (so a page asking each second does not list every id):
    the newest page is still whole and current when jobs left since the
    count, or came after it."""
    with open(ferry.path("bulk"), "w") as fh:
        fh.write("true\n" * 1100)
    ferry.run("submit", "--hold", "--bulk", ferry.path("bulk"))
    ui.login()
    poll(lambda: [r for r in ui.api("/api/resources") if r.get("total") == 1100], 10, 0.1,
         "1100 jobs counted")

    def newest(limit, **kw):
        page = ui.api("/api/jobs", resource="local", limit=limit, **{"from": "end"}, **kw)
        assert page["next"] is None
        return [j["id"] for j in page["jobs"]]
    assert newest(5) == [1096, 1097, 1098, 1099, 1100]
    assert newest(500) == list(range(601, 1101))
    ferry.run("dispose", "1097", "1098", "1099", "1100")  # the count may not know yet
    assert newest(5) == [1092, 1093, 1094, 1095, 1096]
    new = held_job(ferry)
    assert newest(5) == [1093, 1094, 1095, 1096, new]
    assert newest(5, state="user_on_hold") == [1093, 1094, 1095, 1096, new]
    assert newest(5, state="failed") == []


def test_job_info_and_output_from_an_offset(ui, ferry):
    ui.login()
    ui.wait_connected()
    jid = ferry.submit("sh", "-c", "printf 'one\\ntwo\\n'; printf 'err\\n' >&2")
    ferry.wait_ended(jid)
    j = ui.api("/api/job", resource="local", id=jid)
    assert j == ferry.info(jid)  # every field of `ferry info`
    r, data = ui.request("GET", f"/api/output?resource=local&id={jid}&stream=stdout")
    assert r.status == 200 and data == b"one\ntwo\n"
    assert r.getheader("X-Next-Offset") == "8" and r.getheader("X-Ended") == "1"
    r, data = ui.request("GET", f"/api/output?resource=local&id={jid}&stream=stdout&offset=4")
    assert data == b"two\n"
    r, data = ui.request("GET", f"/api/output?resource=local&id={jid}&stream=stderr")
    assert data == b"err\n"
    r, data = ui.request("GET", "/api/job?resource=local&id=999999")
    assert r.status == 404 and json.loads(data)["error"]


def test_actions_on_a_list_of_ids(ui, ferry):
    ui.login()
    ui.wait_connected()
    csrf = ui.csrf()
    own = f"http://127.0.0.1:{ui.port}"
    a, b = held_job(ferry), held_job(ferry)
    running = ferry.submit("sleep", "60")
    ferry.wait_state(running, "running")
    r, data = ui.post({"resource": "local", "action": "hold", "ids": [running, a]}, csrf, own)
    res = json.loads(data)
    assert r.status == 200, data
    # a is held already: matched, nothing to change; a running job cannot be held
    assert (res["matched"], res["changed"], res["failed"]) == (2, 0, 1)
    assert res["errors"][0]["id"] == running and res["errors"][0]["message"]
    r, data = ui.post({"resource": "local", "action": "release", "ids": [a, b, 999999]},
                      csrf, own)
    assert json.loads(data)["matched"] == 2 and json.loads(data)["changed"] == 2
    r, data = ui.post({"resource": "local", "action": "dispose", "ids": [a, b, running]},
                      csrf, own)
    assert r.status == 200
    poll(lambda: ferry.run("status", running, check=False).returncode != 0, 15, 0.1,
         "the job disposed of")
    for bad in ({"resource": "local", "action": "rm", "ids": [a]},
                {"resource": "local", "action": "kill", "ids": []},
                {"resource": "local", "action": "kill", "ids": ["1; rm -rf /"]},
                {"resource": "local", "action": "kill", "ids": [0]}):
        r, _ = ui.post(bad, csrf, own)
        assert r.status == 400, bad
    r, _ = ui.request("POST", "/api/action", headers={"X-Ferry-CSRF": csrf}, body="{not json")
    assert r.status == 400
    r, _ = ui.request("POST", "/api/action", headers={"X-Ferry-CSRF": csrf},
                      body=" " * (1024 * 1024 + 1))
    assert r.status == 413
    r, _ = ui.request("POST", "/api/other", headers={"X-Ferry-CSRF": csrf}, body="{}")
    assert r.status == 404


# ------------------------------------------------------------ the page, in a browser

def browser(base):
    """A headless Chromium through chromedriver (notes: root needs --no-sandbox,
    Chromium writes its profile under $HOME)."""
    webdriver = pytest.importorskip("selenium.webdriver")
    from selenium.webdriver.chrome.service import Service
    home = os.path.join(base, "chrome-home")
    os.makedirs(home, exist_ok=True)
    o = webdriver.ChromeOptions()
    for a in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage",
              "--window-size=1280,900", f"--user-data-dir={home}/profile",
              "--disable-background-networking", "--disable-component-update",
              "--no-first-run", "--disable-sync"):
        o.add_argument(a)
    env = dict(os.environ, HOME=home)
    return webdriver.Chrome(service=Service(shutil.which("chromedriver") or
                                            "/usr/bin/chromedriver", env=env), options=o)


@pytest.fixture
def page(request, ferry):
    d = browser(ferry.base)
    yield d
    os.makedirs(SHOTS, exist_ok=True)
    d.save_screenshot(os.path.join(SHOTS, request.node.name + ".png"))
    d.quit()


def wait(d, cond, timeout=10, what="condition"):
    """Until cond(d) holds; an element the page redrew meanwhile is looked for again."""
    from selenium.common.exceptions import StaleElementReferenceException
    from selenium.webdriver.support.ui import WebDriverWait
    return WebDriverWait(d, timeout, poll_frequency=0.05,
                         ignored_exceptions=[StaleElementReferenceException]).until(cond, what)


def text(d, css):
    """The text of what css selects, read at once ("" when nothing is)."""
    return d.execute_script(
        "const e = document.querySelector(arguments[0]); return e ? e.textContent : ''", css)


def row_state(d, jid):
    """The state a job's row shows (read at once: the rows are redrawn at each event)."""
    return d.execute_script(
        "const c = document.querySelector(arguments[0]); return c ? c.textContent : null",
        f'#jobs-table tr[data-id="{jid}"] td.state')


def click(d, css, what):
    """Clicks what css selects, again if the page redrew it in between."""
    from selenium.common.exceptions import StaleElementReferenceException
    from selenium.webdriver.common.by import By

    def once(d):
        try:
            d.find_element(By.CSS_SELECTOR, css).click()
            return True
        except StaleElementReferenceException:
            return False
    wait(d, once, 10, what)


def test_browser_needs_the_token(ui, page):
    from selenium.webdriver.common.by import By
    page.get(f"http://127.0.0.1:{ui.port}/")
    assert "forbidden" in page.find_element(By.TAG_NAME, "body").text
    assert not page.find_elements(By.ID, "jobs-table")
    page.get(ui.url)
    wait(page, lambda d: d.find_elements(By.CSS_SELECTOR, '.res[data-resource="local"]'),
         what="the local resource shown")
    assert page.current_url == f"http://127.0.0.1:{ui.port}/"  # the token is gone


def test_browser_follows_a_job_live_and_kills_it(ui, ferry, page):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as EC
    page.get(ui.url)
    wait(page, lambda d: d.find_elements(By.CSS_SELECTOR, "#live.on"), what="the event stream")
    page.execute_script("window.notReloaded = true")
    # neighbours in other states, for the screenshot (docs/ui.png)
    ferry.wait_ended(ferry.submit("echo", "hello", opts=("--name", "subj01")))
    held_job(ferry)
    gate = ferry.path("gate")
    jid = ferry.submit("sh", "-c", f"echo first-line; while [ ! -e {gate} ]; do sleep 0.05; "
                       "done; echo second-line; sleep 600", opts=("--hold", "--name", "live"))
    # it appears within 2 s of its submission
    wait(page, lambda d: row_state(d, jid) == "user_on_hold", 2, "the new job's row")
    ferry.run("release", jid)
    wait(page, lambda d: row_state(d, jid) == "running", 10, "running shown without a reload")
    click(page, f'#jobs-table tr[data-id="{jid}"] td:nth-child(2)', "the job's row")
    wait(page, lambda d: "first-line" in text(d, "#d-stdout"), 10, "the first line")
    assert "second-line" not in text(page, "#d-stdout") and ferry.state(jid) == "running"
    open(gate, "w").close()
    wait(page, lambda d: "second-line" in text(d, "#d-stdout"), 10, "the line written later")
    assert ferry.state(jid) == "running"  # it appeared while the job ran
    page.find_element(By.CSS_SELECTOR, '#d-actions button[data-action="kill"]').click()
    alert = wait(page, EC.alert_is_present(), 5, "the confirmation")
    assert "Kill 1 job (%d)" % jid in alert.text
    alert.accept()
    wait(page, lambda d: row_state(d, jid) == "failed", 15, "the killed job's row")
    assert ferry.run("status", jid).stdout.split()[-1] == "failed"
    assert ferry.info(jid)["exit_status"] == "killed_by_user"
    wait(page, lambda d: text(d, "#d-status") == "failed", 10, "the detail")
    fields = set(page.execute_script(
        "return [...document.querySelectorAll('#d-fields tr')].map((r) => r.dataset.field)"))
    assert set(ferry.info(jid)) == fields
    assert page.execute_script("return window.notReloaded") is True


def test_browser_cancelled_confirmation_kills_nothing(ui, ferry, page):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as EC
    jid = held_job(ferry)
    page.get(ui.url)
    wait(page, lambda d: row_state(d, jid) == "user_on_hold", 10, "the job's row")
    click(page, f'#jobs-table tr[data-id="{jid}"] input', "the job's box")
    page.find_element(By.CSS_SELECTOR, '#bulk button[data-action="dispose"]').click()
    wait(page, EC.alert_is_present(), 5, "the confirmation").dismiss()
    page.find_element(By.CSS_SELECTOR, '#bulk button[data-action="release"]').click()
    wait(page, lambda d: row_state(d, jid) == "done", 15, "the released job done")
    assert ferry.state(jid) == "done"


@pytest.fixture
def remote_world(request):
    return ferry_world(request, "ssh")


def test_browser_shows_an_ssh_resources_jobs(request, remote_world):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select
    f = remote_world
    jid = f.submit("true", opts=("--name", "over-ssh", "--hold"))
    u = UI(f)
    d = browser(f.base)
    try:
        d.get(u.url)
        wait(d, lambda d: d.find_elements(By.CSS_SELECTOR, '.res[data-resource="remote"]'),
             30, "the remote resource")
        Select(d.find_element(By.ID, "f-resource")).select_by_value("remote")
        wait(d, lambda d: row_state(d, jid) == "user_on_hold", 30, "the remote job's row")
        wait(d, lambda d: "1 job" in text(d, '.res[data-resource="remote"] .counts'), 30,
             "its count")
        os.makedirs(SHOTS, exist_ok=True)
        d.save_screenshot(os.path.join(SHOTS, request.node.name + ".png"))
    finally:
        d.quit()
        assert u.stop() == 0, u.stderr


def test_browser_pages_from_the_newest_jobs(ui, ferry, page):
    with open(ferry.path("bulk"), "w") as fh:
        fh.write("true\n" * 60)
    ferry.run("submit", "--hold", "--bulk", ferry.path("bulk"))
    page.get(ui.url)
    # the newest 50 first, and a new one as it comes
    wait(page, lambda d: row_state(d, 60) and not row_state(d, 10), 10, "jobs 11-60")
    assert text(page, "#p-where") == "newest jobs"
    new = held_job(ferry)
    wait(page, lambda d: row_state(d, new) and not row_state(d, 11), 10, "the new job")
    click(page, "#p-first", "oldest")
    wait(page, lambda d: row_state(d, 1) and not row_state(d, 51), 10, "jobs 1-50")
    click(page, "#p-next", "next")
    wait(page, lambda d: row_state(d, 51) and row_state(d, new) and not row_state(d, 50), 10,
         "jobs 51-61")
    assert text(page, "#p-where") == "page 2"
    click(page, "#p-prev", "previous")
    wait(page, lambda d: row_state(d, 1), 10, "page 1 again")
    click(page, "#p-last", "newest")
    wait(page, lambda d: row_state(d, new) and not row_state(d, 11), 10, "the newest again")


def test_browser_keeps_the_last_mib_of_output(ui, ferry, page):
    """A job that writes more than the page keeps (2^20 characters a
    stream): the page shows its last part, and says the rest was cut."""
    jid = ferry.submit("sh", "-c", "i=0; while [ $i -lt 3000 ]; do printf 'line-%06d %0988d\\n' "
                       "$i 0; i=$((i+1)); done; echo the-end")  # 3000 lines of 1000 bytes
    ferry.wait_ended(jid)
    page.get(ui.url)
    wait(page, lambda d: row_state(d, jid) == "done", 10, "the job's row")
    # the action buttons, made once for both places, in the same order
    buttons = page.execute_script(
        "return ['#bulk', '#d-actions'].map((b) => [...document.querySelectorAll(b + ' button')]"
        ".map((e) => e.dataset.action + ' ' + e.className))")
    assert buttons[0] == buttons[1] == ["stop ", "restart ", "hold ", "release ",
                                        "kill danger", "dispose danger"], buttons
    click(page, f'#jobs-table tr[data-id="{jid}"] td:nth-child(2)', "the job's row")
    wait(page, lambda d: "the-end" in text(d, "#d-stdout"), 20, "the output's end")
    out = text(page, "#d-stdout")
    assert out.startswith("earlier output cut"), out[:100]
    assert len(out) <= (1 << 20) + (1 << 18) + len("earlier output cut")
    assert "line-000000" not in out and "line-001999" in out and "line-002999" in out
    assert page.find_element("css selector", "#d-stdout .cut").text == "earlier output cut"


def vm_kib(pid, field):
    """A field of /proc/PID/status in KiB (VmRSS: now, VmHWM: the peak)."""
    with open(f"/proc/{pid}/status") as fh:
        return int(re.search(rf"^{field}:\s+(\d+) kB$", fh.read(), re.M).group(1))


def cpu_s(pid):
    """The CPU seconds (user and system) process pid used so far."""
    with open(f"/proc/{pid}/stat") as fh:
        f = fh.read().rsplit(")", 1)[1].split()
    return (int(f[11]) + int(f[12])) / os.sysconf("SC_CLK_TCK")


@pytest.mark.xdist_group("ui_scale")
def test_browser_first_page_of_100k_jobs_in_under_a_second(ui, ferry, page, capsys):
    """Issue 17's scale: with 100,000 jobs in the database the first page
    of jobs is drawn within 1 s of the page's navigation (the browser's
    performance timing: the mark app.js sets when it drew the first rows),
    and the server's peak RSS stays under 64 MiB. The numbers are printed
    (pytest -s) for the record; the idle CPU of the engine and the server
    while the page stays open is held to a share too."""
    if asan_build():
        pytest.skip("SKIPPED LOUDLY: a measurement of the real build; AddressSanitizer's "
                    "shadow memory and quarantine alone pass 64 MiB")
    n = 100_000
    with open(ferry.path("bulk"), "w") as fh:
        fh.write("true\n" * n)
    ferry.run("submit", "--hold", "--bulk", ferry.path("bulk"), timeout=300)
    t = time.monotonic()
    page.get(ui.url)  # the token opens one session: the browser's
    wait(page, lambda d: f"{n} jobs" in text(d, '.res[data-resource="local"] .counts'), 60,
         "100,000 jobs counted")
    first_count = time.monotonic() - t
    # measured on a navigation of its own, the server up and counting
    page.get(f"http://127.0.0.1:{ui.port}/")
    wait(page, lambda d: row_state(d, n) == "user_on_hold" and row_state(d, n - 49)
         and not row_state(d, n - 50), 10, "the newest 50 jobs")
    drawn = page.execute_script(
        "const m = performance.getEntriesByName('ferry-first-jobs'); "
        "return m.length ? m[0].startTime : null")
    nav = page.execute_script(
        "const e = performance.getEntriesByType('navigation')[0]; "
        "return [e.responseEnd, e.domContentLoadedEventEnd]")
    # the page stays live: each second's counting and asking again for the newest page
    engine, t = ferry.engine_pid(), time.monotonic()
    cpu = (cpu_s(engine), cpu_s(ui.p.pid))
    time.sleep(10)
    span = time.monotonic() - t
    engine_share = (cpu_s(engine) - cpu[0]) / span
    ui_share = (cpu_s(ui.p.pid) - cpu[1]) / span
    for _ in range(10):
        page.execute_script("document.querySelector('#p-first').click()")
        wait(page, lambda d: row_state(d, 1), 10, "the oldest page")
        page.execute_script("document.querySelector('#p-last').click()")
        wait(page, lambda d: row_state(d, n), 10, "the newest page")
    rss, hwm = vm_kib(ui.p.pid, "VmRSS"), vm_kib(ui.p.pid, "VmHWM")
    with capsys.disabled():
        print(f"\n100k jobs: first count {first_count:.2f} s; navigation response "
              f"{nav[0]:.0f} ms, DOM loaded {nav[1]:.0f} ms, first rows drawn {drawn:.0f} ms; "
              f"server RSS {rss} KiB, peak {hwm} KiB; idle CPU: engine {engine_share:.0%}, "
              f"server {ui_share:.0%}")
    assert drawn is not None and drawn < 1000, drawn
    assert hwm < 64 * 1024, hwm
    # the poller's counting each second is bounded to a share of the time (src/ui/state.c)
    assert engine_share < 0.3 and ui_share < 0.3, (engine_share, ui_share)


# ------------------------------------------------------------ transfers and plots

def send_until(f, path, limit):
    """`ferry send path`, stopped by a file size limit once the engine's
    partial file holds limit bytes (the local client writes it itself):
    a real transfer left transferring, as far as limit."""
    import resource
    p = f.popen("send", path, preexec_fn=lambda: resource.setrlimit(
        resource.RLIMIT_FSIZE, (limit, limit)))
    p.wait()
    assert p.returncode != 0, "the send should have been stopped"


def transfer_shown(d, sp):
    """What the transfers table shows of sp: [state, progress value, max, text], or None."""
    return d.execute_script(
        "for (const tr of document.querySelectorAll('#transfers-table tbody tr')) {"
        "  if (tr.dataset.path !== arguments[0]) continue;"
        "  const b = tr.querySelector('progress');"
        "  return [tr.querySelector('td.state').textContent, b ? b.value : null,"
        "          b ? b.max : null, tr.querySelector('td.progress').textContent]; }"
        "return null", sp)


def test_browser_shows_a_transfers_progress(ui, ferry, page):
    """A send of 64 MiB stopped at 25%, resumed and stopped at 75%, then
    completed: the page shows it transferring with its bar at each point,
    live, then ready without a bar."""
    size = 64 << 20
    big = ferry.path("big.bin")
    with open(big, "wb") as fh:
        for i in range(64):
            fh.write(i.to_bytes(8, "little") + os.urandom(1024) * 1023 + b"\0" * 1016)
    assert os.path.getsize(big) == size
    page.get(ui.url)
    wait(page, lambda d: d.find_elements("css selector", "#live.on"), what="the event stream")
    page.execute_script("window.notReloaded = true")
    send_until(ferry, big, size // 4)
    (t,) = ferry.json("transfers")
    sp = t["server_path"]
    t = ferry.json("transfers", sp)  # a listing has no bytes done: one transfer's info has
    assert t["state"] == "transferring" and t["done"] == size // 4, t
    # the page may have drawn it on its way already: until it shows where it stopped
    wait(page, lambda d: (transfer_shown(d, sp) or [0, 0])[1] == size // 4, 10,
         "the transfer shown")
    state, value, mx, shown = transfer_shown(page, sp)
    assert (value, mx) == (size // 4, size) and shown.startswith("25% 16.0 MiB / 64.0 MiB")
    send_until(ferry, big, size * 3 // 4)
    wait(page, lambda d: (transfer_shown(d, sp) or [0, 0])[1] == size * 3 // 4, 10,
         "the bar moved on")
    assert transfer_shown(page, sp)[3].startswith("75% 48.0 MiB / 64.0 MiB")
    os.makedirs(SHOTS, exist_ok=True)
    page.save_screenshot(os.path.join(SHOTS, "test_browser_shows_a_transfers_progress-75.png"))
    assert ferry.run("send", big, timeout=120).stdout.strip() == sp
    wait(page, lambda d: (transfer_shown(d, sp) or [None])[0] == "ready", 10, "the send ready")
    assert transfer_shown(page, sp)[1:3] == [None, None]  # no bar once complete
    assert page.execute_script("return window.notReloaded") is True


def plot_counts(d, css):
    return d.execute_script(
        "return [...document.querySelectorAll(arguments[0] + ' rect.bar')]"
        ".map((r) => Number(r.dataset.count))", css)


def ui_plots(d):
    """/api/plots of local, asked by the page's browser (the token opened its session)."""
    return d.execute_async_script(
        "const done = arguments[0];"
        "fetch('/api/plots?resource=local').then((r) => r.json()).then(done)")


def test_browser_plots_running_jobs_ended_jobs_and_durations(ui, ferry, page):
    """One job of 2 slots alone (slots = 2), then two of one together, two
    short ones and one killed before it ran: the samples saw 1 job on 2
    slots and 2 jobs on 2; 6 jobs ended in the last hour, 5 of which ran,
    the 3 s ones in the histogram's bins from 3 s on."""
    page.get(ui.url)
    wait(page, lambda d: d.find_elements("css selector", "#live.on"), what="the event stream")
    wide = ferry.submit("sleep", "3", opts=("--cpus", "2"))
    ferry.wait_state(wide, "running")
    pair = [ferry.submit("sleep", "3") for _ in range(2)]
    short = [ferry.submit("sleep", "1") for _ in range(2)]
    never = held_job(ferry)
    ferry.run("kill", never)
    for jid in [wide, *pair, *short, never]:
        ferry.wait_ended(jid, timeout=60)
    samples = ui_plots(page)["samples"]
    assert [1, 2] in [s[1:] for s in samples] and [2, 2] in [s[1:] for s in samples], samples

    def drawn(d):
        hist = plot_counts(d, "#plot-durations")
        return hist if sum(hist) == 5 else None
    hist = wait(page, drawn, 15, "the histogram of 5 durations")
    width = float(page.execute_script(
        "return document.querySelector('#plot-durations').dataset.width"))
    assert width == 0.2, width  # the longest, 3 s and some, over 20 bins: rounded up
    assert len(hist) == 20 and sum(hist[int(3 / width):]) == 3, hist  # the 3 s jobs
    ended = plot_counts(page, "#plot-ended")
    assert len(ended) == 60 and sum(ended) == 6, ended
    lines = page.execute_script(
        "return [...document.querySelectorAll('#plot-running polyline')].map((p) => "
        "[p.getAttribute('class'), p.points.numberOfItems, Number(p.dataset.n), "
        "Number(p.dataset.max)])")
    assert [(c, m) for c, _, _, m in lines] == [("running", 2), ("used", 2)], lines
    assert all(n == k and n >= len(samples) for _, n, k, _ in lines), lines
    assert "newest 6 ended jobs (5 of them ran)" in text(page, "#pl-note")
    page.execute_script("document.querySelector('#plots').scrollIntoView()")


def test_plots_take_the_newest_500_ended_jobs(ui, ferry):
    """The per-minute plot and the histogram look at the newest 500 ended
    jobs however many there are; killed before they ran, they have no
    duration."""
    with open(ferry.path("bulk"), "w") as fh:
        fh.write("true\n" * 600)
    ferry.run("submit", "--hold", "--bulk", ferry.path("bulk"))
    ui.login()
    ui.wait_connected()
    r, data = ui.post({"resource": "local", "action": "kill", "ids": list(range(1, 601))},
                      ui.csrf(), f"http://127.0.0.1:{ui.port}")
    assert r.status == 200 and json.loads(data)["changed"] == 600, data
    poll(lambda: [r for r in ui.api("/api/resources") if r.get("counts", {}).get("failed") == 600],
         10, 0.1, "600 jobs failed")
    p = ui.api("/api/plots", resource="local")
    assert p["ended_jobs"] == 500 and sum(p["ended_per_minute"]["counts"]) == 500, p
    assert p["durations"]["jobs"] == 0 and sum(p["durations"]["counts"]) == 0
    assert len(p["ended_per_minute"]["counts"]) == 60 and len(p["durations"]["counts"]) == 20
    assert p["samples"] and all(s[1:] == [0, 0] for s in p["samples"])
    for path in ("/api/plots", "/api/transfers"):
        r, _ = ui.request("GET", path + "?resource=nosuch")
        assert r.status == 404, path
