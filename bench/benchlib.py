"""benchlib - what the Python benchmarks (bench/scale, bench/workflow) share:
where the build is, and a fresh engine of the local resource."""
import os
import shutil
import subprocess
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
BUILD = os.path.abspath(os.environ.get("FERRY_BUILD_DIR", os.path.join(HERE, "..", "build")))
FERRY = os.path.join(BUILD, "ferry")


class Engine:
    """A fresh engine of the local resource in a temporary state directory."""

    def __init__(self):
        self.tmp = tempfile.mkdtemp(prefix="ferry-bench.")
        self.env = dict(os.environ, XDG_STATE_HOME=os.path.join(self.tmp, "state"),
                        XDG_CONFIG_HOME=os.path.join(self.tmp, "config"),
                        FERRYD=os.path.join(BUILD, "ferryd"))
        self.env.pop("FERRY_RESOURCE", None)
        self.ferry("daemon", "start")
        self.read_pid()

    def read_pid(self):
        pidfile = os.path.join(self.tmp, "state", "ferry", "local", "ferryd.pid")
        self.pid = int(open(pidfile).read())

    def ferry(self, *args, **kw):
        return subprocess.run([FERRY, *args], env=self.env, cwd=self.tmp, check=True,
                              capture_output=True, text=True, **kw)

    def cpu_s(self):
        """The engine's user + system CPU time so far."""
        with open(f"/proc/{self.pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def _status_mib(self, key):
        with open(f"/proc/{self.pid}/status") as f:
            for line in f:
                if line.startswith(key):
                    return int(line.split()[1]) / 1024
        return 0.0

    def rss_mib(self):
        return self._status_mib("VmRSS:")

    def peak_rss_mib(self):
        """The engine's peak RSS so far (VmHWM)."""
        return self._status_mib("VmHWM:")

    def stop(self):
        subprocess.run([FERRY, "daemon", "stop"], env=self.env, capture_output=True)
        shutil.rmtree(self.tmp, ignore_errors=True)
