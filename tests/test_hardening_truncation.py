"""No silent truncation (issue 21, item 14): a NUL byte in a `--bulk` line
or in ferry.conf, a key or a section given twice, a value continued where
it takes one: each refused with its line, nothing run or configured from
what was left. The parser's cases in detail are in tests/unit/test-cfg.c;
these go through the CLI, as a user meets them."""
import os

import pytest


BULK = [b"echo one", b"echo two", b"echo three"]


def bulk_file(ferry, lines, name="jobs.txt", final_newline=True):
    path = ferry.path(name)
    with open(path, "wb") as f:
        f.write(b"\n".join(lines) + (b"\n" if final_newline else b""))
    return path


def assert_no_jobs(ferry):
    assert ferry.json("jobs") == [], "a job was submitted from a refused file"


@pytest.mark.parametrize("where,line", [
    ("first", 1), ("middle", 2), ("last", 3), ("last, no newline", 3),
    ("start of a line", 2), ("end of a line", 2), ("a comment", 2), ("a blank line", 2),
])
def test_bulk_line_with_a_nul_byte_is_refused(ferry, where, line):
    lines = list(BULK)
    if where == "start of a line":
        lines[1] = b"\0" + lines[1]
    elif where == "end of a line":
        lines[1] = lines[1] + b"\0"
    elif where == "a comment":
        lines[1] = b"# a comment\0echo hidden"
    elif where == "a blank line":
        lines[1] = b"  \0"
    else:
        lines[line - 1] = lines[line - 1].replace(b" ", b" \0", 1) + b" rm -rf x"
    path = bulk_file(ferry, lines, final_newline=where != "last, no newline")
    cp = ferry.run("submit", "--bulk", path, check=False)
    assert cp.returncode == 1, cp
    assert f"{path}:{line}: NUL byte" in cp.stderr, cp.stderr
    assert "nothing was submitted" in cp.stderr, cp.stderr
    assert_no_jobs(ferry)


def test_bulk_nul_from_stdin_is_refused(ferry):
    cp = ferry.run("submit", "--bulk", "-", check=False,
                   input="echo a\necho b\0; echo c\n")
    assert cp.returncode == 1 and "(stdin):2: NUL byte" in cp.stderr, cp
    assert_no_jobs(ferry)


def test_bulk_without_nul_still_submits_every_line(ferry):
    """The control: the same lines without the byte all run."""
    path = bulk_file(ferry, BULK, final_newline=False)
    cp = ferry.run("submit", "--bulk", path)
    ids = [int(x) for x in cp.stdout.split()]
    assert len(ids) == 3, cp.stdout
    for jid in ids:
        assert ferry.wait_ended(jid)["status"] == "done", ferry.info(jid)


CONFIGS = {
    "NUL byte": (b"[local]\nslots = 2\0\nscheduler = local\n", 2, "NUL byte"),
    "NUL at the end": (b"[local]\nslots = 2\n\0", 3, "NUL byte"),
    "key twice": (b"[local]\nslots = 2\nslots = 4\n", 3,
                  "key 'slots' given twice in section [local] (first on line 2)"),
    "key twice, other keys between": (
        b"[local]\nscheduler = local\nslots = 2\n; note\nscheduler = local\n", 5,
        "key 'scheduler' given twice in section [local] (first on line 2)"),
    "section twice": (b"[local]\nslots = 2\n[other]\nslots = 1\n[local]\nslots = 3\n", 5,
                      "section [local] given twice (first on line 1)"),
    "section twice, keyless": (b"[local]\n[local]\nslots = 2\n", 2,
                               "section [local] given twice (first on line 1)"),
    "a value continued": (b"[local]\nslots = 2\n  4\n", 3,
                          "an indented line continues the value of 'slots' above"),
}


@pytest.mark.parametrize("shape", list(CONFIGS))
def test_config_that_would_lose_a_value_is_refused(ferry, shape):
    text, line, msg = CONFIGS[shape]
    with open(ferry.config_path, "wb") as f:
        f.write(text)
    for args in (("ping",), ("submit", "--", "true")):
        cp = ferry.run(*args, check=False, timeout=30)
        assert cp.returncode == 1, cp
        assert f"{ferry.config_path}:{line}: {msg}" in cp.stderr, cp.stderr
    assert not ferry.engine_alive()


def test_ssh_options_still_continue_on_indented_lines(ferry):
    """The one key that continues: a remote section whose ssh_options go
    over three lines is taken, and ssh gets every option. The ssh here is a
    stand-in that records its arguments and fails (no host is reached)."""
    bindir = ferry.path("bin")
    os.makedirs(bindir)
    args = ferry.path("ssh-args")
    with open(os.path.join(bindir, "ssh"), "w") as f:
        f.write(f"#!/bin/sh\nprintf '%s\\n' \"$@\" > {args}\nexit 255\n")
    os.chmod(os.path.join(bindir, "ssh"), 0o755)
    ferry.config("[local]\nslots = 2\n[far]\nhost = far.example.org\n"
                 "ssh_options = -o ServerAliveInterval=7\n"
                 "    -o ConnectionAttempts=2\n"
                 "\t-o IdentitiesOnly=yes -4\n")
    cp = ferry.run("-r", "far", "ping", check=False, timeout=60,
                   env={"PATH": bindir + os.pathsep + ferry.env["PATH"]})
    assert cp.returncode == 1, cp
    assert "ferry.conf" not in cp.stderr, cp.stderr
    with open(args) as f:
        got = f.read().split("\n")
    for opt in ("ServerAliveInterval=7", "ConnectionAttempts=2", "IdentitiesOnly=yes", "-4"):
        assert opt in got, (opt, got)
