"""The translate_path request (docs/protocol.md, "translate_path"): a
soma-workflow SharedResourcePath's place, read by the engine in the
translation files of path_translation_files. Through the raw protocol:
soma-workflow's reading of the lines, the errors, and hostile files (a
FIFO, a device, a directory, a huge line, binary junk, a file too big)
that must neither hang nor crash the engine. The soma-workflow layer's
use of it: tests/test_soma_workflow.py."""
import os
import random
import time

import pytest

from conftest import DEFAULT_CONFIG
from test_badinput import assert_alive, assert_err

GOOD = (b"# uuids of the study\n"
        b"u1   /data/one  \r\n"
        b"lonely\n"
        b"\n"
        b"  u2\t/data/two words\t\n"
        b"u1 /data/last\n"
        b"u3 /no/newline")


def write(path, data):
    with open(path, "wb") as f:
        f.write(data)


@pytest.fixture
def eng(ferry):
    """An engine whose [local] names a translation file per kind of file."""
    b = ferry.base
    write(os.path.join(b, "good"), GOOD)
    os.mkfifo(os.path.join(b, "fifo"))
    os.symlink(os.path.join(b, "fifo"), os.path.join(b, "link"))
    with open(os.path.join(b, "big"), "wb") as f:
        f.truncate((16 << 20) + 1)
    # one line of 15 MiB, no blank in it, then a translation
    write(os.path.join(b, "huge"), b"x" * (15 << 20) + b"\nu9 /after/huge\n")
    rng = random.Random(16)
    junk = rng.randbytes(1 << 20)
    write(os.path.join(b, "junk"), junk + b"\nuj /after/junk\nun /a\0b\n" + junk)
    names = ["good", "fifo", "link", "big", "huge", "junk", "missing"]
    tokens = [f"{n}{{{os.path.join(b, n)}}}" for n in names] + [f"dir{{{b}}}", "dev{/dev/zero}"]
    # one token a line: a line holds 198 bytes, indented lines continue the value
    ferry.config(DEFAULT_CONFIG + "path_translation_files = " + "\n    ".join(tokens) + "\n")
    ferry.run("daemon", "start")
    ferry.pid0 = ferry.engine_pid()
    yield ferry
    assert_alive(ferry, ferry.pid0)


def translate(f, ns, uuid, timeout=10):
    with f.raw(timeout) as c:
        c.hello()
        return c.request({"op": "translate_path", "namespace": ns, "uuid": uuid})


def test_lines_read_as_soma_workflow_reads_them(eng):
    # split at the first run of blanks, trailing blanks (CR too) cut, the last line wins
    assert translate(eng, "good", "u1") == {"ok": True, "path": "/data/last"}
    assert translate(eng, "good", "u2")["path"] == "/data/two words"
    assert translate(eng, "good", "u3")["path"] == "/no/newline"
    good = os.path.join(eng.base, "good")
    for uuid in ("lonely", "u", "u10", "/data/one"):
        assert_err(translate(eng, "good", uuid), "EINVAL", "no translation")
        assert translate(eng, "good", uuid)["message"] == \
            f"no translation of uuid '{uuid}' in namespace 'good' ('{good}')"


def test_the_file_is_read_at_each_request(eng):
    assert translate(eng, "good", "u1")["path"] == "/data/last"
    write(os.path.join(eng.base, "good"), b"u1 /data/changed\nnew /data/new\n")
    assert translate(eng, "good", "u1")["path"] == "/data/changed"
    assert translate(eng, "good", "new")["path"] == "/data/new"


def test_unknown_namespace(eng):
    r = translate(eng, "other", "u1")
    assert_err(r, "EINVAL", "no translation file")
    assert r["message"] == ("namespace 'other' has no translation file "
                            "(path_translation_files of resource 'local')")
    # a namespace is a whole token's name, not a prefix of one
    assert_err(translate(eng, "goo", "u1"), "EINVAL", "namespace 'goo' has no translation")


@pytest.mark.parametrize("ns", ["fifo", "link", "dir", "dev"])
def test_what_is_no_regular_file_is_not_read(eng, ns):
    """A FIFO with no writer would block a read forever, /dev/zero never
    end: refused at once, and the engine answers the next request."""
    t0 = time.monotonic()
    r = translate(eng, ns, "u1")
    assert time.monotonic() - t0 < 5
    assert_err(r, "EIO", "not a regular file")
    path = "/dev/zero" if ns == "dev" else eng.base if ns == "dir" else \
        os.path.join(eng.base, ns)
    assert r["message"] == f"cannot read the translation file '{path}': not a regular file"
    assert translate(eng, "good", "u2")["path"] == "/data/two words"


def test_a_file_too_big_is_not_read(eng):
    r = translate(eng, "big", "u1")
    assert_err(r, "EIO", "larger than 16 MiB")
    assert os.path.join(eng.base, "big") in r["message"]


def test_a_missing_file(eng):
    r = translate(eng, "missing", "u1")
    assert r["message"] == (f"cannot read the translation file "
                            f"'{os.path.join(eng.base, 'missing')}': No such file or directory")
    assert_err(r, "EIO", "no such file")


def test_a_huge_line_and_binary_junk(eng):
    assert translate(eng, "huge", "u9", timeout=30)["path"] == "/after/huge"
    assert_err(translate(eng, "huge", "x" * 100, timeout=30), "EINVAL", "no translation")
    assert translate(eng, "junk", "uj")["path"] == "/after/junk"
    r = translate(eng, "junk", "un")
    assert_err(r, "EINVAL", "holds a NUL byte")


@pytest.mark.parametrize("req, message", [
    ({"uuid": "u1"}, "field 'namespace' must be a non-empty string without a NUL byte"),
    ({"namespace": "good"}, "field 'uuid' must be a non-empty string without a NUL byte"),
    ({"namespace": "", "uuid": "u1"}, "field 'namespace' must be a non-empty string without a NUL byte"),
    ({"namespace": "good", "uuid": ""}, "field 'uuid' must be a non-empty string without a NUL byte"),
    ({"namespace": 3, "uuid": "u1"}, "field 'namespace' must be a non-empty string without a NUL byte"),
    ({"namespace": "good", "uuid": ["u1"]},
     "field 'uuid' must be a non-empty string without a NUL byte"),
    ({"namespace": "good", "uuid": "u1", "path": "/x"},
     "unknown field 'path' in request 'translate_path'"),
])
def test_bad_requests(eng, req, message):
    with eng.raw() as c:
        c.hello()
        r = c.request(dict(op="translate_path", **req))
    assert_err(r, "EINVAL", "field")
    assert r["message"] == message


def test_no_translation_files_configured(ferry):
    ferry.run("daemon", "start")
    r = translate(ferry, "good", "u1")
    assert_err(r, "EINVAL", "no translation files")
    assert r["message"] == ("no translation files configured (path_translation_files of "
                            "resource 'local')")


@pytest.mark.parametrize("value, message", [
    ("study{relative/file}", "invalid path_translation_files token 'study{relative/file}'"),
    ("study/file", "invalid path_translation_files token 'study/file'"),
    ("{/file}", "invalid path_translation_files token '{/file}'"),
    ("a{/x} a{/y}", "namespace 'a' given twice in path_translation_files"),
])
def test_bad_values_are_refused_naming_the_token(ferry, value, message):
    ferry.config(DEFAULT_CONFIG + f"path_translation_files = {value}\n")
    cp = ferry.run("ping", check=False)
    assert cp.returncode != 0
    assert f"ferry.conf:4: {message}" in cp.stderr, cp.stderr
