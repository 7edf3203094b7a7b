"""`meson install` gives a usable library: header, pkg-config file, ferryd, man pages."""
import glob
import os
import subprocess
import tempfile

from conftest import BUILD_DIR

PROGRAM = r"""
#include <ferry.h>
#include <stdio.h>

int main(void)
{
	const char *argv[] = {"sh", "-c", "echo installed", NULL};
	struct ferry_job_spec spec;
	struct ferry_exit_info e;
	ferry_job_id id;
	ferry_conn *c;

	if (ferry_connect(NULL, NULL, NULL, NULL, &c)) {
		fprintf(stderr, "connect: %s\n", ferry_errmsg(c));
		return 1;
	}
	ferry_job_spec_init(&spec);
	spec.argv = argv;
	if (ferry_submit(c, &spec, &id) || ferry_wait(c, &id, 1, 60) ||
	    ferry_exit_info(c, id, &e) || e.exit_status != FERRY_FINISHED_REGULARLY) {
		fprintf(stderr, "job: %s\n", ferry_errmsg(c));
		return 1;
	}
	ferry_shutdown_engine(c);
	ferry_disconnect(c);
	puts("ok");
	return 0;
}
"""


def test_install_and_link(tmp_path):
    dest = tmp_path / "dest"
    subprocess.run(["meson", "install", "-C", BUILD_DIR, "--destdir", str(dest)],
                   check=True, capture_output=True, timeout=120)
    files = {os.path.relpath(p, dest) for p in glob.glob(f"{dest}/**", recursive=True)}
    for want in ("include/ferry.h", "sbin/ferryd", "bin/ferry", "man1/ferry.1",
                 "man8/ferryd.8", "man3/libferry.3", "man5/ferry.conf.5",
                 "pkgconfig/ferry.pc", "libferry.so.1"):
        assert any(f.endswith(want) for f in files), f"{want} not installed: {sorted(files)}"
    pc = glob.glob(f"{dest}/**/pkgconfig", recursive=True)[0]
    env = dict(os.environ, PKG_CONFIG_PATH=pc, PKG_CONFIG_SYSROOT_DIR=str(dest))
    flags = subprocess.run(["pkg-config", "--cflags", "--libs", "ferry"], env=env, check=True,
                           capture_output=True, text=True).stdout.split()
    libdir = os.path.dirname(glob.glob(f"{dest}/**/libferry.so.1", recursive=True)[0])
    deps = subprocess.run(["ldd", os.path.join(libdir, "libferry.so.1")], capture_output=True,
                          text=True).stdout
    if "libasan" in deps:  # the sanitizer build: the program needs the runtime first
        flags.append("-fsanitize=address,undefined")
    src = tmp_path / "prog.c"
    src.write_text(PROGRAM)
    exe = tmp_path / "prog"
    subprocess.run(["cc", "-std=gnu11", "-Wall", "-Werror", str(src), "-o", str(exe), *flags],
                   check=True, timeout=120)
    ferryd = glob.glob(f"{dest}/**/sbin/ferryd", recursive=True)[0]
    with tempfile.TemporaryDirectory(prefix="fi-", dir="/tmp") as state:
        run_env = dict(os.environ, LD_LIBRARY_PATH=libdir, FERRYD=ferryd,
                       XDG_STATE_HOME=state, XDG_CONFIG_HOME=state)
        r = subprocess.run([str(exe)], env=run_env, capture_output=True, text=True,
                           timeout=120, cwd=tmp_path)
    assert r.returncode == 0 and r.stdout.strip() == "ok", r.stderr
