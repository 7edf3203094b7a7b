"""Debian's Snakemake 7 (/usr/bin/snakemake, python3-drmaa) driving ferry
through libferry-drmaa: `snakemake --drmaa` with DRMAA_LIBRARY_PATH at the
library of the build being tested, and its generic --cluster mode with
`ferry submit` and the helpers ferry ships for it (src/snakemake:
ferry-snakemake-status, ferry-snakemake-cancel). Issue 19's acceptance.
Each test runs on the local resource of the test's own ferry world and
on an ssh one (this host's test sshd, logged in as root): Snakemake
opens $FERRY_RESOURCE's, as the helpers and `ferry submit` do.

Snakemake polls its DRMAA jobs every 10 s unless CI=true (1 s), and
needs a writable $XDG_CACHE_HOME; each job runs snakemake again, with
the environment of the engine that runs it (the test's). Under the ASan
build the sanitizer's runtime is preloaded into snakemake's python, as
tests/test_drmaa_provider.py does, and dropped from its environment at
once so that what it starts does not get it; the engine is started
before snakemake, from the test's environment."""
import os
import re
import signal
import subprocess
import time

import pytest

from conftest import BUILD_DIR, SRC_DIR, engine_keys_config, ferry_world, poll
from test_python import asan_runtime

PYTHON = "/usr/bin/python3"
SNAKEMAKE = "/usr/bin/snakemake"
LIBRARY = os.path.join(BUILD_DIR, "libferry-drmaa.so.1")
SAMPLES = [f"s{i:02d}" for i in range(1, 21)]
HELPERS = os.path.join(SRC_DIR, "src", "snakemake")
CLUSTER = ["--cluster", "ferry submit --name smk.{rule} --cpus {threads} --",
           "--cluster-status", os.path.join(HELPERS, "ferry-snakemake-status"),
           "--cluster-cancel", os.path.join(HELPERS, "ferry-snakemake-cancel")]

# prep fans out to 20 squares (wildcard {s}, 2 threads each), gathered by
# one rule: 22 jobs with dependencies
SNAKEFILE = '''
SAMPLES = [f"s{i:02d}" for i in range(1, 21)]

rule all:
    input: "result.txt"

rule prep:
    output: "prep/factor.txt"
    shell: "echo 3 > {output}"

rule square:
    input: data="in/{s}.txt", factor="prep/factor.txt"
    output: "sq/{s}.txt"
    threads: 2
    shell: "echo {wildcards.s} $(( $(cat {input.data}) * $(cat {input.data}) * $(cat {input.factor}) )) > {output}"

rule gather:
    input: expand("sq/{s}.txt", s=SAMPLES)
    output: "result.txt"
    shell: "cat {input} > {output}"
'''


class SnakeWorld:
    def __init__(self, f):
        self.f = f
        self.env = dict(f.env, DRMAA_LIBRARY_PATH=LIBRARY, CI="true",
                        XDG_CACHE_HOME=os.path.join(f.base, "xdg-cache"))
        self.argv0 = [SNAKEMAKE]
        asan = asan_runtime()
        if asan:
            # CPython is not leak-clean at exit: leaks are checked by the C tests
            self.env["LD_PRELOAD"] = asan
            self.env["ASAN_OPTIONS"] = (os.environ.get("ASAN_OPTIONS", "") +
                                        ":detect_leaks=0").lstrip(":")
            # /usr/bin/snakemake's own lines, after the runtime is loaded
            self.argv0 = [PYTHON, "-c", "import os, sys; os.environ.pop('LD_PRELOAD', None); "
                          "sys.argv[0] = 'snakemake'; from snakemake import main; "
                          "sys.exit(main())"]
        # the engine gets the test's environment, not snakemake's
        f.run("daemon", "start")

    def workflow(self, name, snakefile, inputs):
        d = self.f.path(name)
        os.makedirs(os.path.join(d, "in"))
        with open(os.path.join(d, "Snakefile"), "w") as fh:
            fh.write(snakefile)
        for s, v in inputs.items():
            with open(os.path.join(d, "in", f"{s}.txt"), "w") as fh:
                fh.write(f"{v}\n")
        return d

    def snakemake(self, wd, *args, timeout=300):
        try:
            return subprocess.run([*self.argv0, *args], env=self.env, cwd=wd,
                                  capture_output=True, text=True, errors="replace",
                                  timeout=timeout)
        except subprocess.TimeoutExpired as ex:
            raise AssertionError(f"snakemake did not end in {timeout}s:\n{ex.stdout}\n"
                                 f"{ex.stderr}")

    def popen(self, wd, *args):
        # SIGINT as at a terminal: a suite started in the background of a
        # script ignores it, and a Python started so ignores Ctrl-C too
        return subprocess.Popen([*self.argv0, *args], env=self.env, cwd=wd,
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                errors="replace",
                                preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))

    def submitted(self, log):
        """{snakemake's job id: ferry's job id} of the jobs it submitted
        (--drmaa's words, or --cluster's)."""
        return {int(a): int(b) for a, b in re.findall(
            r"Submitted (?:DRMAA job|job) (\d+) with external jobid '?(\d+)'?\.", log)}


@pytest.fixture(params=["local", "ssh"])
def sw(request):
    for what, path in (("snakemake", SNAKEMAKE),
                       ("python3-drmaa", "/usr/lib/python3/dist-packages/drmaa/__init__.py")):
        if not os.path.exists(path):
            pytest.fail(f"{what} is not installed (scripts/install-deps --test)", pytrace=False)
    f = ferry_world(request, request.param)
    # over ssh the engine's settings travel with the client's connection
    engine_keys_config(f, "[local]\nscheduler = local\nslots = 4\n", slots=4)
    return SnakeWorld(f)


def outputs(wd):
    files = {}
    for sub in ("prep", "sq"):
        for name in sorted(os.listdir(os.path.join(wd, sub))):
            with open(os.path.join(wd, sub, name)) as fh:
                files[f"{sub}/{name}"] = fh.read()
    with open(os.path.join(wd, "result.txt")) as fh:
        files["result.txt"] = fh.read()
    return files


def test_snakemake_drmaa_workflow_runs_every_job_in_ferry(sw):
    """22 jobs (prep, 20 squares of a wildcard, gather) through --drmaa: the
    outputs are those of snakemake's local run, each step is a ferry job
    named as snakemake names it, `{threads}` reaches the job as --cpus, and
    --drmaa-log-dir (a directory as both paths) gets each job's files."""
    inputs = {s: i for i, s in enumerate(SAMPLES, 1)}
    local = sw.workflow("local", SNAKEFILE, inputs)
    cp = sw.snakemake(local, "-j", "2")
    assert cp.returncode == 0, cp.stdout + cp.stderr
    wd = sw.workflow("drmaa", SNAKEFILE, inputs)
    logs = sw.f.path("logs")
    cp = sw.snakemake(wd, "-j", "10", "--drmaa", " --cpus {threads} --walltime 10:00",
                      "--drmaa-log-dir", logs)
    log = cp.stdout + cp.stderr
    assert cp.returncode == 0, log
    assert "23 of 23 steps (100%) done" in log, log
    assert outputs(wd) == outputs(local)
    assert outputs(wd)["sq/s07.txt"] == "s07 147\n"

    sub = sw.submitted(cp.stdout + cp.stderr)
    assert len(sub) == 22, sub
    jobs = {j["id"]: j for j in sw.f.json("jobs")}
    assert set(jobs) == set(sub.values())
    names = {}
    for smk, jid in sub.items():
        j = sw.f.info(jid)
        assert j["status"] == "done" and j["exit_value"] == 0, j
        assert j["name"] == jobs[jid]["name"]
        m = re.fullmatch(r"snakejob\.(prep|square|gather)\.(\d+)\.sh", j["name"])
        assert m and int(m.group(2)) == smk, j["name"]
        names[m.group(1)] = names.get(m.group(1), 0) + 1
        assert j["cpus"] == (2 if m.group(1) == "square" else 1), j
        assert j["walltime_s"] == 600 and j["working_directory"] == wd, j
        assert j["stdout_path"] == os.path.join(logs, j["name"] + ".o"), j
        assert j["stderr_path"] == os.path.join(logs, j["name"] + ".e"), j
        with open(j["stderr_path"]) as fh:
            # the job's own snakemake logs to stderr: the one rule it ran
            assert f"rule {m.group(1)}:" in fh.read()
    assert names == {"prep": 1, "square": 20, "gather": 1}
    # dependencies held: gather started after every square ended, each square after prep
    by_rule = {}
    for jid in sub.values():
        by_rule.setdefault(jobs[jid]["name"].split(".")[1], []).append(jobs[jid])
    prep_end = by_rule["prep"][0]["ended_at"]
    assert all(j["started_at"] >= prep_end for j in by_rule["square"])
    assert by_rule["gather"][0]["started_at"] >= max(j["ended_at"] for j in by_rule["square"])


FAILING = '''
rule all:
    input: "ok.txt", "bad.txt"

rule ok:
    output: "ok.txt"
    shell: "echo fine > {output}"

rule bad:
    output: "bad.txt"
    shell: "echo boom-from-bad >&2; exit 3"
'''


def test_snakemake_drmaa_failing_rule_fails_the_run(sw):
    """A rule whose command fails: its ferry job fails, snakemake names
    that job's id (the one `ferry info` knows) and exits non-zero."""
    wd = sw.workflow("fail", FAILING, {})
    cp = sw.snakemake(wd, "-j", "4", "--drmaa", "", "--drmaa-log-dir", sw.f.path("logs"))
    log = cp.stdout + cp.stderr
    assert cp.returncode != 0, log
    m = re.search(r"Error executing rule bad on cluster \(jobid: (\d+), external: (\d+),", log)
    assert m, log
    sub = sw.submitted(cp.stdout + cp.stderr)
    assert sub[int(m.group(1))] == int(m.group(2))
    j = sw.f.info(int(m.group(2)))
    # the job's snakemake exits 1 when the rule's command fails
    assert j["name"] == f"snakejob.bad.{m.group(1)}.sh", j
    assert j["status"] == "failed" and j["exit_value"] == 1, j
    with open(j["stderr_path"]) as fh:
        assert "boom-from-bad" in fh.read()
    ok = [sw.f.info(jid) for jid in sub.values() if jid != int(m.group(2))]
    assert [o["status"] for o in ok] == ["done"], ok
    with open(os.path.join(wd, "ok.txt")) as fh:
        assert fh.read() == "fine\n"
    assert not os.path.exists(os.path.join(wd, "bad.txt"))


def test_snakemake_drmaa_refused_native_specification(sw):
    """What ferry cannot do is refused at submission with the library's
    reason, and snakemake reports it: more cpus than the resource has
    (`{threads}` as --cpus), a word ferry does not know."""
    wd = sw.workflow("refused", SNAKEFILE.replace("threads: 2", "threads: 64"),
                     {s: 1 for s in SAMPLES})
    cp = sw.snakemake(wd, "-j", "4", "--drmaa", " --cpus {threads}")
    log = cp.stdout + cp.stderr
    assert cp.returncode != 0, log
    assert re.search(r"DRMAA Error: code 17: .*cpus", log), log
    wd2 = sw.workflow("unknown", FAILING, {})
    cp = sw.snakemake(wd2, "-j", "4", "--drmaa", " --bogus 1")
    log = cp.stdout + cp.stderr
    assert cp.returncode != 0 and re.search(r"DRMAA Error: code 14: .*--bogus", log), log
    # only prep (1 cpu) got through in the first run, nothing in the second
    names = [j["name"] for j in sw.f.json("jobs")]
    assert len(names) == 1 and names[0].startswith("snakejob.prep."), names


def test_snakemake_cluster_mode_with_ferry_submit(sw):
    """Snakemake's generic cluster mode: `ferry submit` as --cluster (its
    output is the job id Snakemake keeps), ferry-snakemake-status as
    --cluster-status; the same outputs as the local run, each step a
    ferry job; a failing rule fails the run, its job named."""
    inputs = {s: i for i, s in enumerate(SAMPLES, 1)}
    local = sw.workflow("local", SNAKEFILE, inputs)
    cp = sw.snakemake(local, "-j", "2")
    assert cp.returncode == 0, cp.stdout + cp.stderr
    wd = sw.workflow("cluster", SNAKEFILE, inputs)
    cp = sw.snakemake(wd, "-j", "10", *CLUSTER)
    log = cp.stdout + cp.stderr
    assert cp.returncode == 0 and "23 of 23 steps (100%) done" in log, log
    assert outputs(wd) == outputs(local)
    sub = sw.submitted(log)
    assert len(sub) == 22, sub
    rules = {}
    for jid in sub.values():
        j = sw.f.info(jid)
        rule = j["name"].split(".")[1]
        rules[rule] = rules.get(rule, 0) + 1
        assert j["status"] == "done" and j["name"] == f"smk.{rule}", j
        assert j["cpus"] == (2 if rule == "square" else 1) and j["working_directory"] == wd, j
    assert rules == {"prep": 1, "square": 20, "gather": 1}

    wd = sw.workflow("cluster-fail", FAILING, {})
    cp = sw.snakemake(wd, "-j", "4", *CLUSTER)
    log = cp.stdout + cp.stderr
    assert cp.returncode != 0, log
    m = re.search(r"Error executing rule bad on cluster \(jobid: (\d+), external: (\d+),", log)
    assert m, log
    j = sw.f.info(int(m.group(2)))
    assert j["name"] == "smk.bad" and j["status"] == "failed" and j["exit_value"] == 1, j


SLOW = '''
rule all:
    input: expand("slow/{n}.txt", n=range(2))

rule slow:
    output: "slow/{n}.txt"
    shell: "sleep 120; touch {output}"
'''


@pytest.mark.parametrize("mode", ["drmaa", "cluster"])
def test_snakemake_interrupted_kills_its_jobs(sw, mode):
    """Ctrl-C (SIGINT) to snakemake: it terminates its jobs, through
    drmaa_control (--drmaa) or ferry-snakemake-cancel (--cluster), and
    ferry kills them."""
    wd = sw.workflow(mode, SLOW, {})
    args = ["--drmaa", ""] if mode == "drmaa" else CLUSTER
    p = sw.popen(wd, "-j", "4", *args)
    try:
        running = poll(lambda: (lambda js: js if len(js) == 2 and all(
            j["status"] == "running" for j in js) else None)(sw.f.json("jobs")), 60, 0.2,
            "both jobs running")
        time.sleep(1)  # snakemake has seen them submitted
        p.send_signal(signal.SIGINT)
        log, _ = p.communicate(timeout=60)
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
    assert p.returncode != 0, log
    ended = poll(lambda: (lambda js: js if all(j["status"] == "failed" for j in js) else None)(
        sw.f.json("jobs")), 30, 0.2, "the jobs killed")
    assert len(ended) == 2 and len(running) == 2
    assert all(j["exit_status"] == "killed_by_user" for j in ended), ended
