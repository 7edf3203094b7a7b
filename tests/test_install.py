"""`meson install` gives a usable library (header, pkg-config file, ferryd,
man pages) and Python module; `pip install .` a usable Python package."""
import glob
import os
import shutil
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
                 "pkgconfig/ferry.pc", "libferry.so.1", "include/ferry-drmaa/drmaa.h",
                 "pkgconfig/ferry-drmaa.pc", "libferry-drmaa.so.1",
                 "bin/ferry-snakemake-status", "bin/ferry-snakemake-cancel"):
        assert any(f.endswith(want) for f in files), f"{want} not installed: {sorted(files)}"
    for helper in glob.glob(f"{dest}/**/bin/ferry-snakemake-*", recursive=True):
        assert os.access(helper, os.X_OK), helper
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
    # the DRMAA provider builds from its pkg-config file and runs from the install
    flags = subprocess.run(["pkg-config", "--cflags", "--libs", "ferry-drmaa"], env=env,
                           check=True, capture_output=True, text=True).stdout.split()
    src.write_text("#include <drmaa.h>\n#include <stdio.h>\nint main(void) {\n"
                   "\tunsigned ma, mi;\n\treturn drmaa_version(&ma, &mi, NULL, 0) ||\n"
                   "\t       printf(\"%u.%u\\n\", ma, mi) < 0;\n}\n")
    # (libferry, which it links, is found in libdir once installed; in dest, say where)
    subprocess.run(["cc", "-std=gnu11", "-Wall", "-Werror", str(src), "-o", str(exe), *flags,
                    f"-Wl,-rpath-link,{libdir}", *(["-fsanitize=address,undefined"] if "libasan" in deps else [])],
                   check=True, timeout=120)
    r = subprocess.run([str(exe)], env=dict(os.environ, LD_LIBRARY_PATH=libdir),
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0 and r.stdout == "1.0\n", r.stderr


def _python_job(env, cwd):
    """Runs one job through the installed Python module, then stops its engine."""
    code = ("import ferry\nwith ferry.Connection() as j:\n"
            "    i = j.submit(['sh', '-c', 'echo from python'])\n"
            "    assert j.wait(i, timeout=60) and j.status(i) == ferry.DONE\n"
            "    print(j.stdoutReadLine(i), end='')\n")
    with tempfile.TemporaryDirectory(prefix="fi-", dir="/tmp") as state:
        e = dict(env, XDG_STATE_HOME=state, XDG_CONFIG_HOME=state)
        r = subprocess.run(["/usr/bin/python3", "-c", code], env=e, capture_output=True,
                           text=True, timeout=120, cwd=cwd)
        subprocess.run([os.path.join(BUILD_DIR, "ferry"), "daemon", "stop"], env=e,
                       capture_output=True, timeout=60)
    return r


def test_meson_install_puts_the_module_in_site_packages(tmp_path):
    """meson install puts the module beside its stubs in a site-packages
    directory; `import ferry` from there runs a job (with FERRYD and the
    library path of the staged, not installed, tree)."""
    dest = tmp_path / "dest"
    subprocess.run(["meson", "install", "-C", BUILD_DIR, "--destdir", str(dest)],
                   check=True, capture_output=True, timeout=120)
    inits = glob.glob(f"{dest}/**/ferry/__init__.py", recursive=True)
    mods = glob.glob(f"{dest}/**/ferry/_ferry.cpython-*.so", recursive=True)
    assert inits and mods and os.path.dirname(inits[0]) == os.path.dirname(mods[0])
    assert glob.glob(f"{dest}/**/ferry/__init__.pyi", recursive=True)
    assert glob.glob(f"{dest}/**/ferry/soma_workflow.py", recursive=True)
    libdir = os.path.dirname(glob.glob(f"{dest}/**/libferry.so.1", recursive=True)[0])
    env = dict(os.environ, PYTHONPATH=os.path.dirname(os.path.dirname(inits[0])),
               LD_LIBRARY_PATH=libdir,
               FERRYD=glob.glob(f"{dest}/**/sbin/ferryd", recursive=True)[0])
    ldd = subprocess.run(["ldd", mods[0]], capture_output=True, text=True).stdout
    if "libasan" in ldd:
        runtime = [ln.split("=>")[1].split()[0] for ln in ldd.splitlines() if "libasan" in ln]
        env.update(LD_PRELOAD=runtime[0], ASAN_OPTIONS="detect_leaks=0")
    r = _python_job(env, tmp_path)
    assert r.returncode == 0 and r.stdout == "from python\n", r.stderr


def test_pip_install_into_a_venv(tmp_path):
    """pip install . (meson-python, offline) into a venv: the module runs a
    job with the ferryd of its own package, and `ferry` is on the venv's PATH."""
    src = tmp_path / "src"
    top = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    shutil.copytree(top, src, ignore=shutil.ignore_patterns(
        ".git", "build*", ".mesonpy*", "__pycache__", ".pytest_cache"))
    venv = tmp_path / "venv"
    subprocess.run(["/usr/bin/python3", "-m", "venv", "--system-site-packages", str(venv)],
                   check=True, capture_output=True, timeout=120)
    pip = subprocess.run([str(venv / "bin" / "pip"), "install", "--no-index",
                          "--no-build-isolation", str(src)], capture_output=True, text=True,
                         timeout=600, env=dict(os.environ, PIP_DISABLE_PIP_VERSION_CHECK="1"))
    assert pip.returncode == 0, pip.stdout[-3000:] + pip.stderr[-3000:]
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("FERRY", "LD_", "ASAN", "UBSAN", "PYTHON"))}
    env["PATH"] = f"{venv / 'bin'}:{env.get('PATH', '/usr/bin:/bin')}"
    code = ("import ferry, os, sys\nassert sys.prefix == %r\n" % str(venv) +
            "print(os.path.dirname(ferry.__file__))\n")
    where = subprocess.run([str(venv / "bin" / "python"), "-c", code], env=env,
                           capture_output=True, text=True, timeout=60, cwd=tmp_path)
    assert where.returncode == 0, where.stderr
    pkg = where.stdout.strip()
    assert pkg.startswith(str(venv)) and os.access(os.path.join(pkg, "ferryd"), os.X_OK)
    with tempfile.TemporaryDirectory(prefix="fi-", dir="/tmp") as state:
        e = dict(env, XDG_STATE_HOME=state, XDG_CONFIG_HOME=state)
        code = ("import ferry\nwith ferry.Connection() as j:\n"
                "    i = j.submit(['sh', '-c', 'echo from the wheel'])\n"
                "    assert j.wait(i, timeout=60) and j.status(i) == ferry.DONE\n"
                "    print(j.stdoutReadLine(i), end='')\n")
        r = subprocess.run([str(venv / "bin" / "python"), "-c", code], env=e,
                           capture_output=True, text=True, timeout=120, cwd=tmp_path)
        cli = subprocess.run(["ferry", "daemon", "status"], env=e, capture_output=True,
                             text=True, timeout=60)
        engine = open(os.path.join(state, "ferry", "local", "ferryd.pid")).read().split()[0]
        exe = os.readlink(f"/proc/{engine}/exe")
        subprocess.run(["ferry", "daemon", "stop"], env=e, capture_output=True, timeout=60)
    assert r.returncode == 0 and r.stdout == "from the wheel\n", r.stderr
    assert cli.returncode == 0 and "running" in cli.stdout, cli.stdout + cli.stderr
    assert exe == os.path.join(pkg, "ferryd")
