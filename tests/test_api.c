/*
 * test_api.c - the C API end to end against a real ferryd (local backend).
 *
 * `test_api --list` prints the test names; `test_api NAME` runs one and
 * exits 0 on success. The environment (XDG_STATE_HOME, FERRYD, config with
 * slots) is set up by tests/test_capi.py, one engine per test.
 */
#include <errno.h>
#include <pwd.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "ferry.h"

static ferry_conn *conn;
static char tmpdir[256];
static const char *resource;  /* $FERRY_TEST_RESOURCE: NULL for "local" */
static int remote;	      /* $FERRY_TEST_REMOTE: the resource is reached by ssh */
static const char *scheduler; /* $FERRY_TEST_SCHEDULER: "local" (default), "slurm", "drmaa" */

static int on_slurm(void)
{
	return !strcmp(scheduler, "slurm");
}

static int on_drmaa(void)
{
	return !strcmp(scheduler, "drmaa");
}

#define CHECK(cond)                                                                                \
	do {                                                                                       \
		if (!(cond)) {                                                                     \
			fprintf(stderr, "%s:%d: check failed: %s (last error: %s)\n", __FILE__,    \
				__LINE__, #cond, conn ? ferry_errmsg(conn) : "");                  \
			exit(1);                                                                   \
		}                                                                                  \
	} while (0)

#define OK(call) CHECK((call) == 0)

static void sleep_ms(int ms)
{
	struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};

	nanosleep(&ts, NULL);
}

static ferry_job_id submit_argv(const char *const *argv, void (*tweak)(struct ferry_job_spec *))
{
	struct ferry_job_spec s;
	ferry_job_id id = 0;

	ferry_job_spec_init(&s);
	s.argv = argv;
	if (tweak)
		tweak(&s);
	OK(ferry_submit(conn, &s, &id));
	CHECK(id > 0);
	return id;
}

/*
 * A job that stays queued while `blocker` runs: locally the two slots are
 * taken; on Slurm, whose node has more, a dependency keeps it pending; on
 * Grid Engine (where a dependency is a system hold) it asks for all slots
 * but one, which it gets once one of the two running jobs ended.
 */
static ferry_job_id submit_behind(const char *const *argv, ferry_job_id blocker)
{
	static char native[128];
	struct ferry_job_spec s;
	ferry_job_id id = 0;

	ferry_job_spec_init(&s);
	s.argv = argv;
	if (on_slurm()) {
		struct ferry_job_info *info = NULL;
		for (int i = 0; i < 500; i++) { /* its Slurm id comes with the hand-over */
			OK(ferry_job_info(conn, blocker, &info));
			if (info->native_id && info->native_id[0] >= '0' &&
			    info->native_id[0] <= '9')
				break;
			ferry_job_info_free(info);
			info = NULL;
			sleep_ms(20);
		}
		CHECK(info);
		snprintf(native, sizeof(native), "--dependency=afterany:%s", info->native_id);
		ferry_job_info_free(info);
		s.native_specification = native;
	}
	if (on_drmaa())
		s.cpus = atoi(getenv("FERRY_TEST_SLOTS") ? getenv("FERRY_TEST_SLOTS") : "8") - 1;
	OK(ferry_submit(conn, &s, &id));
	return id;
}

static ferry_job_id submit_sh(const char *script)
{
	const char *argv[] = {"/bin/sh", "-c", script, NULL};

	return submit_argv(argv, NULL);
}

static enum ferry_job_status status_of(ferry_job_id id)
{
	enum ferry_job_status st;

	OK(ferry_status(conn, id, &st));
	return st;
}

static void wait_status(ferry_job_id id, enum ferry_job_status want, double timeout)
{
	for (double t = 0; t < timeout; t += 0.02) {
		if (status_of(id) == want)
			return;
		sleep_ms(20);
	}
	fprintf(stderr, "job %lld: status %s, wanted %s\n", (long long)id,
		ferry_status_name(status_of(id)), ferry_status_name(want));
	exit(1);
}

static void wait_one(ferry_job_id id)
{
	OK(ferry_wait(conn, &id, 1, 60));
}

static long file_size(const char *path)
{
	struct stat st;

	return stat(path, &st) == 0 ? (long)st.st_size : -1;
}

static char *path_in_tmp(const char *name)
{
	static char buf[4][512];
	static int k;
	char *p = buf[k++ % 4];

	snprintf(p, 512, "%s/%s", tmpdir, name);
	return p;
}

/* ---- tests ---- */

static void t_success(void)
{
	struct ferry_exit_info e;
	ferry_job_id id = submit_sh("echo hello; echo oops >&2");
	char *line = NULL;

	wait_one(id);
	CHECK(status_of(id) == FERRY_DONE);
	OK(ferry_exit_info(conn, id, &e));
	CHECK(e.exit_status == FERRY_FINISHED_REGULARLY);
	CHECK(e.exit_value == 0 && e.signal == 0);
	CHECK(e.wall_s >= 0);
	/*
	 * A job whose end Slurm's accounting has not recorded yet ends from
	 * scontrol's record, which has no CPU times (docs/backends.md)
	 */
	CHECK(e.cpu_user_s >= 0 || (on_slurm() && e.cpu_user_s == -1));
	/* Slurm samples memory every few seconds: a short job may have no figure */
	CHECK(e.max_rss_kb > 0 || (on_slurm() && e.max_rss_kb == -1));
	OK(ferry_stdout_readline(conn, id, &line));
	CHECK(!strcmp(line, "hello"));
	free(line);
	CHECK(ferry_stdout_readline(conn, id, &line) == FERRY_EEOF);
	OK(ferry_stderr_readline(conn, id, &line));
	CHECK(!strcmp(line, "oops"));
	free(line);
}

static void t_nonzero_exit(void)
{
	struct ferry_exit_info e;
	ferry_job_id id = submit_sh("exit 3");

	wait_one(id);
	CHECK(status_of(id) == FERRY_FAILED);
	OK(ferry_exit_info(conn, id, &e));
	CHECK(e.exit_status == FERRY_FINISHED_REGULARLY && e.exit_value == 3);
}

static void t_signal(void)
{
	struct ferry_exit_info e;
	ferry_job_id id = submit_sh("kill -SEGV $$");
	enum ferry_job_status st;

	wait_one(id);
	st = status_of(id);
	OK(ferry_exit_info(conn, id, &e));
	/* seen once under load on Slurm: say what the job was, to find why */
	if (st != FERRY_FAILED || e.exit_status != FERRY_FINISHED_SIGNAL)
		fprintf(stderr, "job %lld after its wait: %s, %s, exit value %d, signal %d\n",
			(long long)id, ferry_status_name(st), ferry_exit_status_name(e.exit_status),
			e.exit_value, e.signal);
	CHECK(st == FERRY_FAILED);
	CHECK(e.exit_status == FERRY_FINISHED_SIGNAL && e.signal == SIGSEGV);
}

static void t_kill(void)
{
	struct ferry_exit_info e;
	char script[600];
	ferry_job_id id;
	long child = 0;
	FILE *f;

	/* the job leaves a grandchild in its group: kill must take it too */
	snprintf(script, sizeof(script), "sleep 300 & echo $! > %s; wait",
		 path_in_tmp("child.pid"));
	id = submit_sh(script);
	wait_status(id, FERRY_RUNNING, 10);
	for (int i = 0; i < 200 && file_size(path_in_tmp("child.pid")) <= 0; i++)
		sleep_ms(20);
	f = fopen(path_in_tmp("child.pid"), "r");
	CHECK(f && fscanf(f, "%ld", &child) == 1);
	fclose(f);
	OK(ferry_kill(conn, id));
	wait_one(id);
	OK(ferry_exit_info(conn, id, &e));
	CHECK(status_of(id) == FERRY_FAILED);
	CHECK(e.exit_status == FERRY_KILLED_BY_USER);
	for (int i = 0; i < 100; i++) {
		char path[64], buf[512] = "";
		snprintf(path, sizeof(path), "/proc/%ld/stat", child);
		f = fopen(path, "r");
		if (!f)
			return;
		/* a zombie waiting for a slow init counts as gone */
		CHECK(fgets(buf, sizeof(buf), f) != NULL);
		fclose(f);
		if (strstr(buf, ") Z"))
			return;
		sleep_ms(50);
	}
	fprintf(stderr, "grandchild %ld survived the kill\n", child);
	exit(1);
}

static void t_kill_queued(void)
{
	const char *argv[] = {"sleep", "30", NULL};
	ferry_job_id a = submit_argv(argv, NULL), b = submit_argv(argv, NULL);
	ferry_job_id c = submit_behind(argv, b);
	struct ferry_exit_info e;

	wait_status(b, FERRY_RUNNING, 10); /* slots = 2 */
	CHECK(status_of(c) == FERRY_QUEUED_ACTIVE);
	OK(ferry_kill(conn, c));
	CHECK(status_of(c) == FERRY_FAILED);
	OK(ferry_exit_info(conn, c, &e));
	CHECK(e.exit_status == FERRY_KILLED_BY_USER);
	OK(ferry_kill(conn, c)); /* killing an ended job does nothing */
	OK(ferry_kill(conn, a));
	OK(ferry_kill(conn, b));
}

static void t_missing_executable(void)
{
	const char *argv[] = {"/no/such/program", "x", NULL};
	struct ferry_job_info *info;
	ferry_job_id id = submit_argv(argv, NULL);

	wait_one(id);
	OK(ferry_job_info(conn, id, &info));
	CHECK(info->status == FERRY_FAILED && info->exit_status == FERRY_ABORTED);
	CHECK(info->message && strstr(info->message, "/no/such/program"));
	ferry_job_info_free(info);
}

static void t_not_executable(void)
{
	const char *argv[] = {path_in_tmp("plain.txt"), NULL};
	struct ferry_exit_info e;
	FILE *f = fopen(argv[0], "w");
	ferry_job_id id;

	CHECK(f);
	fputs("not a program\n", f);
	fclose(f);
	id = submit_argv(argv, NULL);
	wait_one(id);
	OK(ferry_exit_info(conn, id, &e));
	CHECK(status_of(id) == FERRY_FAILED && e.exit_status == FERRY_ABORTED);
}

static void walltime_2(struct ferry_job_spec *s)
{
	s->walltime_s = 1;
}

static void t_walltime(void)
{
	const char *argv[] = {"sleep", "600", NULL};
	struct ferry_job_info *info;
	ferry_job_id id = submit_argv(argv, walltime_2);
	time_t t0 = time(NULL);

	/* Slurm counts time limits in minutes and checks them every 30 s or so */
	OK(ferry_wait(conn, &id, 1, on_slurm() ? 240 : 60));
	CHECK(time(NULL) - t0 < (on_slurm() ? 200 : 20));
	OK(ferry_job_info(conn, id, &info));
	if (info->exit_status != FERRY_FINISHED_SIGNAL)
		fprintf(stderr, "walltime: %s %s: %s\n", ferry_status_name(info->status),
			ferry_exit_status_name(info->exit_status), info->message);
	CHECK(info->status == FERRY_FAILED && info->exit_status == FERRY_FINISHED_SIGNAL);
	CHECK(info->message && strstr(info->message, "walltime"));
	ferry_job_info_free(info);
}

static void mpi_2(struct ferry_job_spec *s)
{
	s->tasks = 2;
	s->launcher = FERRY_LAUNCHER_MPI;
}

/* A real MPI program (tests/test_mpi.py's, built by test_capi.py) as 2 ranks. */
static void t_mpi(void)
{
	const char *argv[] = {getenv("FERRY_TEST_MPI_HELLO"), NULL};
	struct ferry_job_spec s;
	struct ferry_job_info *info;
	char buf[4096];
	size_t got;
	int ended;
	ferry_job_id id;

	CHECK(argv[0]);
	if (on_drmaa()) { /* refused until a resource names its MPI parallel environment */
		ferry_job_spec_init(&s);
		s.argv = argv;
		mpi_2(&s);
		CHECK(ferry_submit(conn, &s, &id) == FERRY_EUNSUPPORTED);
		CHECK(strstr(ferry_errmsg(conn), "cannot start MPI jobs"));
		return;
	}
	id = submit_argv(argv, mpi_2);
	OK(ferry_wait(conn, &id, 1, on_slurm() ? 180 : 60));
	OK(ferry_job_info(conn, id, &info));
	CHECK(info->status == FERRY_DONE && info->tasks == 2 && info->cpus == 2);
	CHECK(info->cpus_per_task == 1 && info->launcher && !strcmp(info->launcher, "mpi"));
	ferry_job_info_free(info);
	OK(ferry_read_output(conn, id, FERRY_STDOUT, 0, buf, sizeof(buf) - 1, &got, &ended));
	buf[got] = '\0';
	CHECK(strstr(buf, "rank 0 size 2 ") && strstr(buf, "rank 1 size 2 "));
	CHECK(strstr(buf, "sum 3\n"));
}

/*
 * A program built with version 1's ferry.h calls the function (the
 * macro's parentheses bypassed here): nothing past its struct is written,
 * and a spec of that version, an array of them at its own stride, runs.
 */
static void t_spec_versions(void)
{
	const char *argv[] = {"true", NULL};
	size_t v1 = offsetof(struct ferry_job_spec, base_env);
	struct ferry_job_spec *s = malloc(2 * sizeof(*s));
	ferry_job_id ids[2];
	unsigned char *p = (unsigned char *)s;

	CHECK(s);
	memset(s, 0xab, 2 * sizeof(*s));
	(ferry_job_spec_init)(s);
	CHECK(s->version == 1 && s->cpus == 1 && p[v1] == 0xab && p[sizeof(*s) - 1] == 0xab);
	s->argv = argv;
	memcpy(p + v1, s, v1); /* the array's second spec, at version 1's stride */
	OK(ferry_submit_many(conn, s, 2, ids));
	OK(ferry_wait(conn, ids, 2, 60));
	CHECK(status_of(ids[0]) == FERRY_DONE && status_of(ids[1]) == FERRY_DONE);
	ferry_job_spec_init_version(s, 99);
	s->argv = argv;
	CHECK(ferry_submit(conn, s, ids) == FERRY_EINVAL);
	free(s);
}

static void hold(struct ferry_job_spec *s)
{
	s->hold = 1;
}

static void t_hold_release(void)
{
	const char *argv[] = {"true", NULL};
	ferry_job_id id = submit_argv(argv, hold);

	CHECK(status_of(id) == FERRY_USER_ON_HOLD);
	sleep_ms(500);
	CHECK(status_of(id) == FERRY_USER_ON_HOLD);
	OK(ferry_release(conn, id));
	wait_one(id);
	CHECK(status_of(id) == FERRY_DONE);
	CHECK(ferry_hold(conn, id) == FERRY_ESTATE);
}

static void t_stop_restart_queued(void)
{
	const char *argv[] = {"sleep", "30", NULL}, *t[] = {"true", NULL};
	ferry_job_id a = submit_argv(argv, NULL), b = submit_argv(argv, NULL);
	ferry_job_id c = submit_behind(t, a);

	wait_status(b, FERRY_RUNNING, 10);
	OK(ferry_stop(conn, c));
	CHECK(status_of(c) == FERRY_USER_ON_HOLD);
	OK(ferry_kill(conn, a)); /* a slot frees, but c is held */
	wait_one(a);
	sleep_ms(300);
	CHECK(status_of(c) == FERRY_USER_ON_HOLD);
	OK(ferry_restart(conn, c));
	wait_one(c);
	CHECK(status_of(c) == FERRY_DONE);
	OK(ferry_kill(conn, b));
}

static void t_suspend_resume(void)
{
	char script[600];
	ferry_job_id id;
	long s1, s2, s3;

	snprintf(script, sizeof(script), "while :; do echo x >> %s; sleep 0.05; done",
		 path_in_tmp("ticks"));
	id = submit_sh(script);
	wait_status(id, FERRY_RUNNING, 10);
	sleep_ms(500);
	OK(ferry_stop(conn, id));
	CHECK(status_of(id) == FERRY_USER_SUSPENDED);
	sleep_ms(300);
	s1 = file_size(path_in_tmp("ticks"));
	sleep_ms(1200);
	s2 = file_size(path_in_tmp("ticks"));
	CHECK(s1 > 0 && s1 == s2); /* no progress while suspended */
	OK(ferry_restart(conn, id));
	CHECK(status_of(id) == FERRY_RUNNING);
	sleep_ms(800);
	s3 = file_size(path_in_tmp("ticks"));
	CHECK(s3 > s2);
	OK(ferry_kill(conn, id));
	wait_one(id);
}

static void t_readline_running(void)
{
	ferry_job_id id = submit_sh("echo first; echo second; sleep 30");
	char *line = NULL;
	int rc = FERRY_EAGAIN;

	for (int i = 0; i < 250 && rc == FERRY_EAGAIN; i++) {
		rc = ferry_stdout_readline(conn, id, &line);
		if (rc == FERRY_EAGAIN)
			sleep_ms(20);
	}
	OK(rc);
	CHECK(!strcmp(line, "first"));
	free(line);
	OK(ferry_stdout_readline(conn, id, &line));
	CHECK(!strcmp(line, "second"));
	free(line);
	CHECK(ferry_stdout_readline(conn, id, &line) == FERRY_EAGAIN);
	CHECK(status_of(id) == FERRY_RUNNING);
	OK(ferry_kill(conn, id));
	wait_one(id);
	CHECK(ferry_stdout_readline(conn, id, &line) == FERRY_EEOF);
}

static void t_read_output(void)
{
	ferry_job_id id = submit_sh("seq 1 100000");
	char buf[1000];
	size_t got;
	int ended;

	wait_one(id);
	OK(ferry_read_output(conn, id, FERRY_STDOUT, 0, buf, 6, &got, &ended));
	CHECK(got == 6 && !memcmp(buf, "1\n2\n3\n", 6) && ended);
	OK(ferry_read_output(conn, id, FERRY_STDOUT, 588892, buf, sizeof(buf), &got, &ended));
	CHECK(got == 3 && !memcmp(buf, "00\n", 3));
	OK(ferry_read_output(conn, id, FERRY_STDOUT, 1 << 30, buf, sizeof(buf), &got, &ended));
	CHECK(got == 0);
}

static void redirects(struct ferry_job_spec *s)
{
	static const char *env[] = {"FERRY_TEST_VAR=forty two", NULL};

	s->stdin_path = "in.txt";
	s->stdout_path = "out.txt";
	s->join_stderrout = 1;
	s->working_directory = tmpdir;
	s->env = env;
	s->name = "redirects";
}

static void t_redirects(void)
{
	const char *argv[] = {"/bin/sh", "-c", "cat; echo \"$FERRY_TEST_VAR\" >&2; pwd", NULL};
	struct ferry_job_info *info;
	char buf[512] = "", expect[600];
	FILE *f = fopen(path_in_tmp("in.txt"), "w");
	ferry_job_id id;
	size_t n;

	CHECK(f);
	fputs("from stdin\n", f);
	fclose(f);
	id = submit_argv(argv, redirects);
	wait_one(id);
	CHECK(status_of(id) == FERRY_DONE);
	f = fopen(path_in_tmp("out.txt"), "r");
	CHECK(f);
	n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = '\0';
	snprintf(expect, sizeof(expect), "from stdin\nforty two\n%s\n", tmpdir);
	CHECK(!strcmp(buf, expect));
	OK(ferry_job_info(conn, id, &info));
	CHECK(!strcmp(info->name, "redirects"));
	CHECK(!strcmp(info->stdout_path, path_in_tmp("out.txt")));
	CHECK(info->join_stderrout && !strcmp(info->argv[0], "/bin/sh"));
	CHECK(!strcmp(info->env[0], "FERRY_TEST_VAR=forty two"));
	CHECK(!strcmp(info->backend, scheduler) && info->native_id);
	CHECK(info->submitted_at > 0 && info->started_at >= info->submitted_at - 1);
	CHECK(info->ended_at >= info->started_at);
	ferry_job_info_free(info);
}

/*
 * base_env: the environment jobs start from, given explicitly (the
 * library sends nothing of its caller's own, set after the engine
 * started), env winning over it, shared by a batch.
 */
static void t_base_env(void)
{
	static const char *base[] = {"TEST_BASE=base one", "TEST_VAR=from base", NULL};
	static const char *env[] = {"TEST_VAR=from env", NULL};
	static const char *bad[] = {"BAD-TEST=s3cret", NULL};
	static const char *ferrys[] = {"TEST_BASE=x", "FERRY_JOB_ID=s3cret", NULL};
	const char *argv[] = {"/bin/sh", "-c", "echo \"$TEST_BASE|$TEST_VAR|${TEST_CALLER-unset}\"",
			      NULL};
	struct ferry_job_spec s[3];
	ferry_job_id ids[3];
	char buf[256];
	size_t got;
	int ended;

	CHECK(ferry_is_remote(conn) == remote);
	setenv("TEST_CALLER", "the caller's", 1);
	for (int i = 0; i < 3; i++) {
		ferry_job_spec_init(&s[i]);
		s[i].argv = argv;
		s[i].base_env = base;
		s[i].env = i == 2 ? env : NULL;
	}
	OK(ferry_submit_many(conn, s, 3, ids));
	OK(ferry_wait(conn, ids, 3, 120));
	for (int i = 0; i < 3; i++) {
		CHECK(status_of(ids[i]) == FERRY_DONE);
		OK(ferry_read_output(conn, ids[i], FERRY_STDOUT, 0, buf, sizeof(buf) - 1, &got,
				     &ended));
		buf[got] = '\0';
		CHECK(!strcmp(buf,
			      i == 2 ? "base one|from env|unset\n" : "base one|from base|unset\n"));
	}
	/* the entry and its name said, never its value: it may be a secret */
	s[0].base_env = bad;
	CHECK(ferry_submit(conn, &s[0], &ids[0]) == FERRY_EINVAL);
	CHECK(strstr(ferry_errmsg(conn), "'base_env'[0] names 'BAD-TEST'"));
	CHECK(!strstr(ferry_errmsg(conn), "s3cret"));
	/* what ferry sets for each job: not the caller's to set */
	s[0].base_env = ferrys;
	CHECK(ferry_submit(conn, &s[0], &ids[0]) == FERRY_EINVAL);
	CHECK(strstr(ferry_errmsg(conn), "'base_env'[1] sets 'FERRY_JOB_ID'"));
	CHECK(!strstr(ferry_errmsg(conn), "s3cret"));
	unsetenv("TEST_CALLER");
}

static void t_jobs_filter(void)
{
	const char *ok[] = {"true", NULL}, *bad[] = {"false", NULL};
	ferry_job_id a = submit_argv(ok, NULL), b = submit_argv(bad, NULL), all[2] = {a, b};
	enum ferry_job_status f = FERRY_FAILED;
	ferry_job_id *ids;
	size_t n;

	OK(ferry_wait(conn, all, 2, 30));
	OK(ferry_jobs(conn, NULL, &ids, &n));
	CHECK(n == 2 && ids[0] == a && ids[1] == b);
	free(ids);
	OK(ferry_jobs(conn, &f, &ids, &n));
	CHECK(n == 1 && ids[0] == b);
	free(ids);
}

struct listed {
	ferry_job_id ids[64];
	size_t n, stop_at;
	int stop_with;
};

static int take(void *arg, const struct ferry_job_info *j)
{
	struct listed *s = arg;

	CHECK(j->argv && j->argv[0] && j->status == FERRY_USER_ON_HOLD);
	s->ids[s->n++] = j->id;
	return s->n == s->stop_at ? s->stop_with : 0;
}

/* ferry_list_jobs(): pages, filters, a stop midway, and what it refuses */
static void t_list_jobs(void)
{
	struct ferry_job_spec sp[40];
	const char *argv[] = {"true", NULL};
	enum ferry_job_status st[2] = {FERRY_DONE, FERRY_USER_ON_HOLD},
			      bad = (enum ferry_job_status)99;
	ferry_job_id ids[40];
	struct ferry_list_opts o;
	struct listed s = {0};

	for (int i = 0; i < 40; i++) {
		ferry_job_spec_init(&sp[i]);
		sp[i].argv = argv;
		sp[i].hold = 1;
	}
	OK(ferry_submit_many(conn, sp, 40, ids));
	ferry_list_opts_init(&o);
	o.page = 7;
	o.states = st;
	o.nstates = 2;
	OK(ferry_list_jobs(conn, &o, take, &s));
	CHECK(s.n == 40 && !memcmp(s.ids, ids, sizeof(ids)));
	/* stopped in its second page: the connection answers the next call at once */
	memset(&s, 0, sizeof(s));
	s.stop_at = 9;
	s.stop_with = 1;
	OK(ferry_list_jobs(conn, &o, take, &s));
	CHECK(s.n == 9);
	OK(ferry_ping(conn));
	memset(&s, 0, sizeof(s));
	s.stop_at = 3;
	s.stop_with = FERRY_EIO;
	CHECK(ferry_list_jobs(conn, &o, take, &s) == FERRY_EIO && s.n == 3);
	CHECK(strstr(ferry_errmsg(conn), "stopped"));
	memset(&s, 0, sizeof(s));
	o.after = ids[10];
	o.limit = 5;
	OK(ferry_list_jobs(conn, &o, take, &s));
	CHECK(s.n == 5 && s.ids[0] == ids[11] && s.ids[4] == ids[15]);
	{ /* the same selection as ids alone, in pages of 7 and of the default */
		ferry_job_id *only = NULL;
		size_t n = 0;
		OK(ferry_list_ids(conn, &o, &only, &n));
		CHECK(n == 5 && !memcmp(only, &ids[11], 5 * sizeof(*only)));
		free(only);
		o.page = 0;
		o.limit = 0;
		OK(ferry_list_ids(conn, &o, &only, &n));
		CHECK(n == 29 && !memcmp(only, &ids[11], 29 * sizeof(*only)));
		free(only);
		o.page = 7;
		o.limit = 5;
	}
	o.states = &bad;
	o.nstates = 1;
	CHECK(ferry_list_jobs(conn, &o, take, &s) == FERRY_EINVAL);
	{
		ferry_job_id *only = NULL;
		size_t n = 1;
		CHECK(ferry_list_ids(conn, &o, &only, &n) == FERRY_EINVAL && !only && !n);
	}
	o.nstates = 0;
	o.page = 10001;
	CHECK(ferry_list_jobs(conn, &o, take, &s) == FERRY_EINVAL);
	o.page = 0;
	o.since = -1;
	CHECK(ferry_list_jobs(conn, &o, take, &s) == FERRY_EINVAL);
	CHECK(ferry_list_jobs(conn, NULL, NULL, NULL) == FERRY_EINVAL);
	o.version = 0;
	CHECK(ferry_list_jobs(conn, &o, take, &s) == FERRY_EINVAL);
}

struct lines {
	ferry_job_id ids[64];
	size_t n, pages;
	int stop_page;
};

/* Each page: n lines, each a job object that starts with its id, as the engine writes it. */
static int take_lines(void *arg, const char *text, size_t len, size_t n)
{
	static const char held[] = "\"status\":\"user_on_hold\"";
	struct lines *s = arg;
	const char *p = text, *end = text + len;
	size_t got = 0;

	CHECK(len && text[len - 1] == '\n');
	for (const char *nl; p < end; p = nl + 1, got++) {
		nl = memchr(p, '\n', (size_t)(end - p));
		CHECK(nl && !strncmp(p, "{\"id\":", 6) && nl[-1] == '}');
		CHECK(memmem(p, (size_t)(nl - p), held, strlen(held)));
		s->ids[s->n++] = strtoll(p + 6, NULL, 10);
	}
	CHECK(got == n);
	return ++s->pages == (size_t)abs(s->stop_page) ? s->stop_page : 0;
}

/* ferry_list_jobs_jsonl(): the same jobs as JSON Lines, a page a call */
static void t_list_jobs_jsonl(void)
{
	struct ferry_job_spec sp[20];
	const char *argv[] = {"true", NULL};
	ferry_job_id ids[20];
	struct ferry_list_opts o;
	struct lines s = {0};

	for (int i = 0; i < 20; i++) {
		ferry_job_spec_init(&sp[i]);
		sp[i].argv = argv;
		sp[i].hold = 1;
	}
	OK(ferry_submit_many(conn, sp, 20, ids));
	ferry_list_opts_init(&o);
	o.page = 7;
	o.after = ids[0] - 1;
	o.limit = 20;
	OK(ferry_list_jobs_jsonl(conn, &o, take_lines, &s));
	CHECK(s.n == 20 && s.pages == 3 && !memcmp(s.ids, ids, sizeof(ids)));
	/* stopped after its second page: the connection answers the next call at once */
	memset(&s, 0, sizeof(s));
	s.stop_page = 2;
	OK(ferry_list_jobs_jsonl(conn, &o, take_lines, &s));
	CHECK(s.n == 14);
	OK(ferry_ping(conn));
	memset(&s, 0, sizeof(s));
	s.stop_page = FERRY_EIO;
	o.page = 1;
	CHECK(ferry_list_jobs_jsonl(conn, &o, take_lines, &s) == FERRY_EIO);
	CHECK(strstr(ferry_errmsg(conn), "stopped"));
	CHECK(ferry_list_jobs_jsonl(conn, &o, NULL, NULL) == FERRY_EINVAL);
	o.page = 10001;
	CHECK(ferry_list_jobs_jsonl(conn, &o, take_lines, &s) == FERRY_EINVAL);
}

static void t_dispose(void)
{
	const char *argv[] = {"true", NULL};
	ferry_job_id id = submit_argv(argv, NULL);
	enum ferry_job_status st;

	wait_one(id);
	OK(ferry_dispose(conn, id));
	CHECK(ferry_status(conn, id, &st) == FERRY_ENOJOB);
	CHECK(strstr(ferry_errmsg(conn), "no job"));
}

static void keyed(struct ferry_job_spec *s)
{
	s->submission_key = "the-same-key";
}

static void t_idempotent_key(void)
{
	const char *argv[] = {"true", NULL};
	ferry_job_id a = submit_argv(argv, keyed), b = submit_argv(argv, keyed);
	ferry_job_id *ids;
	size_t n;

	CHECK(a == b);
	OK(ferry_jobs(conn, NULL, &ids, &n));
	CHECK(n == 1);
	free(ids);
}

/*
 * A key of an earlier request, or of a job before in the same request,
 * gives that job's id, makes no second job and leaves no gap in the ids
 * of the jobs after it (an insert that found the key by its conflict
 * took an id: requests.c).
 */
static void t_key_known_in_batch(void)
{
	const char *argv[] = {"true", NULL};
	const char *keys[4] = {"batch-key-new", "the-same-key", "batch-key-new", "batch-key-2"};
	struct ferry_job_spec s[4];
	ferry_job_id first = submit_argv(argv, keyed), ids[4], *all;
	size_t before, n;

	OK(ferry_jobs(conn, NULL, &all, &before));
	free(all);
	for (int i = 0; i < 4; i++) {
		ferry_job_spec_init(&s[i]);
		s[i].argv = argv;
		s[i].hold = 1;
		s[i].submission_key = keys[i];
	}
	OK(ferry_submit_many(conn, s, 4, ids));
	CHECK(ids[1] == first && ids[2] == ids[0] && ids[3] == ids[0] + 1);
	OK(ferry_jobs(conn, NULL, &all, &n));
	CHECK(n == before + 2);
	free(all);
}

static void t_submit_many(void)
{
	struct ferry_job_spec s[50];
	const char *argv[] = {"true", NULL};
	ferry_job_id ids[50];

	for (int i = 0; i < 50; i++) {
		ferry_job_spec_init(&s[i]);
		s[i].argv = argv;
	}
	OK(ferry_submit_many(conn, s, 50, ids));
	for (int i = 1; i < 50; i++)
		CHECK(ids[i] == ids[i - 1] + 1);
	OK(ferry_wait(conn, ids, 50, 60));
	for (int i = 0; i < 50; i++)
		CHECK(status_of(ids[i]) == FERRY_DONE);
	/* all or none: one bad spec refuses the whole batch */
	s[10].cpus = -1;
	CHECK(ferry_submit_many(conn, s, 50, ids) == FERRY_EINVAL);
	CHECK(strstr(ferry_errmsg(conn), "job 10"));
}

/*
 * More jobs than one batch (src/lib/submit.c: about 256 KiB of request
 * each): one call, ids in order; the same keys again return the same ids
 * (each batch replays by its jobs' keys); a job only the engine refuses
 * fails its batch and the call says how many were submitted, the ids
 * saying which; a spec the library can check fails before anything goes.
 * Not on a cluster: 60,000 held jobs are not for a test scheduler.
 */
#define NBATCH 30000

static void t_submit_batches(void)
{
	static struct ferry_job_spec s[NBATCH];
	static ferry_job_id ids[NBATCH], again[NBATCH];
	static char keys[NBATCH][24];
	const char *argv[] = {"true", NULL}, *big[] = {"true", NULL, NULL};
	size_t made = 0, k = 0, n;
	ferry_job_id *all;
	char *arg;

	if (on_slurm() || on_drmaa())
		return;
	for (int i = 0; i < NBATCH; i++) {
		ferry_job_spec_init(&s[i]);
		s[i].argv = argv;
		s[i].hold = 1;
		snprintf(keys[i], sizeof(keys[i]), "batch-%d", i);
		s[i].submission_key = keys[i];
	}
	OK(ferry_submit_many(conn, s, NBATCH, ids));
	for (int i = 1; i < NBATCH; i++)
		CHECK(ids[i] == ids[i - 1] + 1);
	OK(ferry_submit_many(conn, s, NBATCH, again));
	CHECK(!memcmp(ids, again, sizeof(ids)));
	/* an argument over the kernel's limit: only the engine knows it */
	CHECK((arg = malloc(200 * 1024 + 1)) != NULL);
	memset(arg, 'x', 200 * 1024);
	arg[200 * 1024] = '\0';
	big[1] = arg;
	for (int i = 0; i < NBATCH; i++)
		snprintf(keys[i], sizeof(keys[i]), "other-%d", i);
	s[20000].argv = big;
	CHECK(ferry_submit_many(conn, s, NBATCH, again) == FERRY_EINVAL);
	CHECK(sscanf(ferry_errmsg(conn), "%zu of 30000 jobs submitted; job 20000: ", &k) == 1);
	CHECK(strstr(ferry_errmsg(conn), "longer than 131072 bytes"));
	for (int i = 0; i < NBATCH; i++)
		made += again[i] != 0;
	CHECK(made == k && k >= 10000 && again[20000] == 0);
	for (int i = 1; i < 10000; i++)
		CHECK(again[i] == again[i - 1] + 1 && again[0] > ids[NBATCH - 1]);
	/* a spec the library checks: nothing is sent */
	s[20000].argv = argv;
	s[29999].cpus = 0;
	CHECK(ferry_submit_many(conn, s, NBATCH, ids) == FERRY_EINVAL);
	CHECK(strstr(ferry_errmsg(conn), "job 29999: 'cpus' is 0"));
	OK(ferry_jobs(conn, NULL, &all, &n));
	CHECK(n == NBATCH + made);
	free(all);
	free(arg);
}

/*
 * Control by selection: held jobs killed by state and range in one call,
 * counted; a refusal counted and named, never failing the call; dispose by
 * range; bad selections refused. On a cluster the kills go to it after
 * the answer (the wait sees them end); the hold of a held job that does
 * nothing is checked locally only, as a cluster's job may still be being
 * handed to it then (a hold of such a job is refused).
 */
static void t_control_select(void)
{
	const char *argv[] = {"true", NULL};
	ferry_job_id ids[3], d;
	const enum ferry_job_status held[] = {FERRY_USER_ON_HOLD};
	struct ferry_control_result *res = calloc(1, sizeof(*res));
	ferry_job_id range[1][2], bad[1][2] = {{5, 1}};
	struct ferry_selection sel = {.states = held, .nstates = 1, .ranges = range, .nranges = 1};
	struct ferry_selection none = {0}, back = {.ranges = bad, .nranges = 1};

	CHECK(res);
	for (int i = 0; i < 3; i++)
		ids[i] = submit_argv(argv, hold);
	d = submit_argv(argv, hold);
	range[0][0] = ids[0];
	range[0][1] = ids[2];
	OK(ferry_control_select(conn, &sel, FERRY_CONTROL_KILL, res));
	CHECK(res->matched == 3 && res->changed == 3 && res->failed == 0 && res->nerrors == 0);
	OK(ferry_wait(conn, ids, 3, 240));
	for (int i = 0; i < 3; i++)
		CHECK(status_of(ids[i]) == FERRY_FAILED);
	CHECK(status_of(d) == FERRY_USER_ON_HOLD);
	/* a release of ended jobs: refused, counted, named */
	sel.nstates = 0;
	OK(ferry_control_select(conn, &sel, FERRY_CONTROL_RELEASE, res));
	CHECK(res->matched == 3 && res->changed == 0 && res->failed == 3 && res->nerrors == 3);
	CHECK(res->errors[0].id == ids[0] && res->errors[0].code == FERRY_ESTATE);
	CHECK(strstr(res->errors[0].message, "has ended"));
	if (!on_slurm() && !on_drmaa()) {
		range[0][0] = range[0][1] = d;
		OK(ferry_control_select(conn, &sel, FERRY_CONTROL_HOLD, res));
		CHECK(res->matched == 1 && res->changed == 0 && res->failed == 0);
		range[0][0] = ids[0];
		range[0][1] = ids[2];
	}
	OK(ferry_control_select(conn, &sel, FERRY_CONTROL_DISPOSE, res));
	CHECK(res->matched == 3 && res->changed == 3 && res->failed == 0);
	CHECK(ferry_status(conn, ids[1], &(enum ferry_job_status){0}) == FERRY_ENOJOB);
	CHECK(ferry_control_select(conn, &none, FERRY_CONTROL_KILL, res) == FERRY_EINVAL);
	CHECK(strstr(ferry_errmsg(conn), "a selection needs"));
	CHECK(ferry_control_select(conn, &back, FERRY_CONTROL_KILL, res) == FERRY_EINVAL);
	CHECK(ferry_control_select(conn, &sel, (enum ferry_control)99, res) == FERRY_EINVAL);
	OK(ferry_kill(conn, d));
	free(res);
}

static void t_wait_timeout(void)
{
	const char *argv[] = {"sleep", "30", NULL};
	ferry_job_id id = submit_argv(argv, NULL);
	time_t t0 = time(NULL);

	CHECK(ferry_wait(conn, &id, 1, 1) == FERRY_ETIMEDOUT);
	CHECK(time(NULL) - t0 < 5);
	OK(ferry_kill(conn, id));
	wait_one(id);
}

static void t_wait_all(void)
{
	const char *ok[] = {"sleep", "1", NULL},
		   *bad[] = {"/bin/sh", "-c", "sleep 1; exit 3", NULL};
	enum ferry_job_status held = FERRY_USER_ON_HOLD, ended = FERRY_DONE;
	double limit = on_slurm() || on_drmaa() ? 240 : 60;
	struct ferry_wait_all_result res;
	ferry_job_id h = submit_argv(ok, hold), a = submit_argv(ok, NULL),
		     b = submit_argv(bad, NULL);

	/* the held job is not taken: it would end only once released */
	OK(ferry_wait_all(conn, NULL, 0, limit, &res));
	CHECK(res.jobs == 2 && res.pending == 0 && res.failed == 1);
	CHECK(res.nfailed_ids == 1 && res.failed_ids[0] == b);
	CHECK(status_of(a) == FERRY_DONE && status_of(h) == FERRY_USER_ON_HOLD);
	CHECK(ferry_wait_all(conn, &held, 1, 0.5, &res) == FERRY_ETIMEDOUT);
	CHECK(res.jobs == 1 && res.pending == 1 && res.failed == 0);
	CHECK(ferry_wait_all(conn, &ended, 1, 1, NULL) == FERRY_EINVAL);
	OK(ferry_kill(conn, h));
	wait_one(h);
	OK(ferry_wait_all(conn, &held, 1, 0, NULL));
}

static void many_cpus(struct ferry_job_spec *s)
{
	s->cpus = 64;
}

static void t_errors(void)
{
	const char *argv[] = {"true", NULL}, *empty[] = {NULL};
	struct ferry_job_spec s;
	enum ferry_job_status st;
	ferry_job_id id;

	CHECK(ferry_status(conn, 999999, &st) == FERRY_ENOJOB);
	CHECK(ferry_kill(conn, 999999) == FERRY_ENOJOB);
	ferry_job_spec_init(&s);
	s.argv = argv;
	many_cpus(&s);
	CHECK(ferry_submit(conn, &s, &id) == FERRY_ERESOURCE);
	CHECK(strstr(ferry_errmsg(conn), "64 cpus"));
	s.cpus = 1;
	s.queue = on_slurm() ? "nosuchpartition" : on_drmaa() ? "nosuch.q" : "long";
	CHECK(ferry_submit(conn, &s, &id) ==
	      (on_slurm() || on_drmaa() ? FERRY_ERESOURCE : FERRY_EUNSUPPORTED));
	CHECK(strstr(ferry_errmsg(conn), on_slurm()   ? "nosuchpartition"
					 : on_drmaa() ? "nosuch.q"
						      : "queue"));
	s.queue = NULL;
	s.working_directory = "/no/such/dir";
	CHECK(ferry_submit(conn, &s, &id) == FERRY_EINVAL);
	CHECK(strstr(ferry_errmsg(conn), "/no/such/dir"));
	s.working_directory = NULL;
	s.argv = empty;
	CHECK(ferry_submit(conn, &s, &id) == FERRY_EINVAL);
	OK(ferry_ping(conn));
	CHECK(ferry_errmsg(conn)[0] == '\0');
	CHECK(!strcmp(ferry_strerror(FERRY_ENOJOB), "no such job"));
	CHECK(!strcmp(ferry_status_name(FERRY_USER_SYSTEM_SUSPENDED), "user_system_suspended"));
	CHECK(!strcmp(ferry_exit_status_name(FERRY_KILLED_BY_USER), "killed_by_user"));
}

static void t_engine_home(void)
{
	/* the home of the engine's jobs: ours on this host; over ssh the login's, root's */
	const char *want = remote ? getpwnam("root")->pw_dir : getenv("HOME");
	char home[4096], small[4];

	CHECK(want != NULL);
	OK(ferry_ping(conn));
	CHECK(ferry_engine_home(conn, home, sizeof(home)) == (int)strlen(want));
	CHECK(strcmp(home, want) == 0);
	/* cut short, NUL-terminated; the whole length is returned */
	CHECK(ferry_engine_home(conn, small, sizeof(small)) == (int)strlen(want));
	CHECK(strlen(small) == (strlen(want) < 3 ? strlen(want) : 3));
	CHECK(ferry_engine_home(conn, NULL, 0) == (int)strlen(want));
}

static void t_reconnect(void)
{
	/* the engine dies between two calls: the next call restarts it */
	const char *argv[] = {"sleep", "1", NULL};
	ferry_job_id id = submit_argv(argv, NULL);
	long pid = 0;

	CHECK(ferry_engine_running(resource, NULL, &pid) == 1 && pid > 0);
	CHECK(kill((pid_t)pid, SIGKILL) == 0);
	sleep_ms(200);
	wait_one(id);
	CHECK(status_of(id) == FERRY_DONE);
	CHECK(ferry_engine_running(resource, NULL, &pid) == 1);
}

static void t_disconnected(void)
{
	/* the engine dies and cannot be started again: a clear error, soon */
	long pid = 0;
	time_t t0;

	CHECK(ferry_set_timeout(conn, -1) == FERRY_EINVAL);
	OK(ferry_set_timeout(conn, 1.5));
	OK(ferry_ping(conn));
	CHECK(ferry_engine_running(resource, NULL, &pid) == 1);
	/* locally no engine can start; remotely, no ssh can run */
	if (remote)
		setenv("PATH", "/nonexistent", 1);
	else
		setenv("FERRYD", "/nonexistent/ferryd", 1);
	CHECK(kill((pid_t)pid, SIGKILL) == 0);
	t0 = time(NULL);
	CHECK(ferry_ping(conn) == FERRY_EDISCONNECTED);
	CHECK(time(NULL) - t0 < 10);
	CHECK(strstr(ferry_errmsg(conn), remote ? "cannot run 'ssh'" : "/nonexistent/ferryd"));
}

/* The seed's example: sendFile, registerFileTransfer, a job, wait, retrieveFile. */
static void t_transfer_seed(void)
{
	char file0[300], script[300], file1[300], expect[64];
	char *s0 = NULL, *ss = NULL, *s1 = NULL, *got = NULL;
	struct ferry_transfer_info *info = NULL;
	struct ferry_job_spec s;
	ferry_job_id id;
	FILE *f;
	size_t n;

	snprintf(file0, sizeof(file0), "%s/file0", tmpdir);
	snprintf(script, sizeof(script), "%s/script.sh", tmpdir);
	snprintf(file1, sizeof(file1), "%s/file1", tmpdir);
	CHECK((f = fopen(file0, "w")) != NULL);
	for (int i = 0; i < 100000; i++)
		fprintf(f, "line %d\n", i);
	fclose(f);
	CHECK((f = fopen(script, "w")) != NULL);
	fputs("wc -l < \"$1\" > \"$2\"\n", f);
	fclose(f);
	OK(ferry_send_file(conn, file0, 168, &s0));
	OK(ferry_send_file(conn, script, 0, &ss));
	OK(ferry_register_transfer(conn, file1, 168, &s1));
	CHECK(strstr(s0, "/file0") && strstr(s1, "/file1"));
	const char *argv[] = {"/bin/sh", ss, s0, s1, NULL};
	const char *inputs[] = {s0, ss, NULL}, *outputs[] = {s1, NULL};
	ferry_job_spec_init(&s);
	s.argv = argv;
	s.referenced_input_files = inputs;
	s.referenced_output_files = outputs;
	OK(ferry_submit(conn, &s, &id));
	OK(ferry_wait(conn, &id, 1, 60));
	CHECK(status_of(id) == FERRY_DONE);
	OK(ferry_retrieve_file(conn, s1));
	CHECK((f = fopen(file1, "r")) != NULL);
	got = calloc(1, 64);
	n = fread(got, 1, 63, f);
	fclose(f);
	snprintf(expect, sizeof(expect), "100000\n");
	CHECK(n == strlen(expect) && !strcmp(got, expect));
	OK(ferry_transfer_info(conn, s1, &info));
	CHECK(info->kind == FERRY_TRANSFER_REGISTER && info->state == FERRY_TRANSFER_RETRIEVED);
	CHECK(info->njobs == 1 && info->jobs[0] == id);
	CHECK(!strcmp(info->local_paths[0], file1) && !info->local_paths[1]);
	ferry_transfer_info_free(info);
	OK(ferry_transfer_info(conn, s0, &info));
	CHECK(info->kind == FERRY_TRANSFER_SEND && info->state == FERRY_TRANSFER_READY);
	CHECK(info->size == info->done && info->size > 0);
	ferry_transfer_info_free(info);
	/* a job still names file0 as an input only after it ended: cancel works */
	OK(ferry_cancel_transfer(conn, s0, 0));
	CHECK(ferry_transfer_info(conn, s0, &info) == FERRY_ENOJOB);
	CHECK(ferry_retrieve_file(conn, "/not/a/transfer") == FERRY_EINVAL);
	free(got);
	free(s0);
	free(ss);
	free(s1);
}

/* What a progress callback saw: every call, checked as it comes. */
struct seen {
	int calls;
	int64_t first, last, total;
	int bad; /* done went back, beyond the total, or the total changed */
};

static void on_progress(void *ud, int64_t done, int64_t total)
{
	struct seen *s = ud;

	if (s->calls == 0) {
		s->first = done;
		s->total = total;
	}
	if (done < s->last || done > total || total != s->total)
		s->bad = 1;
	s->last = done;
	s->calls++;
}

static void write_bytes(const char *path, long size, int seed)
{
	FILE *f = fopen(path, "w");

	CHECK(f != NULL);
	for (long i = 0; i < size; i++)
		fputc((int)((i * 31 + seed) & 0xff), f);
	CHECK(fclose(f) == 0);
}

/* done from the first call to the total, never back; total is every file's bytes */
static void check_seen(const struct seen *s, int64_t total, int min_calls)
{
	CHECK(!s->bad);
	CHECK(s->total == total);
	CHECK(s->last == total);
	CHECK(s->calls >= min_calls);
}

static void t_transfer_progress(void)
{
	char a[300], b[300], back[300], ba[320];
	const long sa = 9L << 20, sb = 3L << 20 | 17;
	struct seen s = {0};
	char *sp = NULL, *again = NULL;

	snprintf(a, sizeof(a), "%s/a.bin", tmpdir);
	snprintf(b, sizeof(b), "%s/b.bin", tmpdir);
	snprintf(back, sizeof(back), "%s/back", tmpdir);
	snprintf(ba, sizeof(ba), "%s/a.bin", back);
	write_bytes(a, sa, 1);
	write_bytes(b, sb, 2);
	const char *both[] = {a, b};
	OK(ferry_set_progress(conn, on_progress, &s));
	OK(ferry_send_files(conn, both, 2, 0, &sp));
	/* 4 MiB chunks: a start, three chunks of a, one of b */
	check_seen(&s, sa + sb, 5);
	CHECK(s.first == 0);
	/* complete already: one call, at the total */
	memset(&s, 0, sizeof(s));
	OK(ferry_send_files(conn, both, 2, 0, &again));
	CHECK(!strcmp(sp, again));
	check_seen(&s, sa + sb, 1);
	CHECK(s.calls == 1 && s.first == sa + sb);
	memset(&s, 0, sizeof(s));
	OK(ferry_retrieve_file_to(conn, sp, back, 0));
	check_seen(&s, sa + sb, 5);
	CHECK(file_size(ba) == sa);
	/* switched off: no more calls */
	memset(&s, 0, sizeof(s));
	OK(ferry_set_progress(conn, NULL, NULL));
	OK(ferry_retrieve_file_to(conn, sp, back, FERRY_OVERWRITE));
	CHECK(s.calls == 0);
	free(sp);
	free(again);
}

static int count_wf(void *arg, const struct ferry_job_info *j)
{
	size_t *n = arg;

	CHECK(j->workflow > 0 && j->status == FERRY_DONE);
	(*n)++;
	return 0;
}

/* ferry_submit_workflow() and the calls of a workflow: a diamond, in order */
static void list_opts_version_1(void);
static void workflow_stop_restart_dispose(void);

static void t_workflow(void)
{
	char text[4096], path[512], order[16] = "";
#define WF_DIAMOND                                                                                 \
	"{\"name\": \"diamond\", \"jobs\": {"                                                      \
	"\"a\": {\"argv\": [\"sh\", \"-c\", \"echo a >> %s\"]},"                                   \
	"\"b\": {\"argv\": [\"sh\", \"-c\", \"sleep 0.3; echo b >> %s\"]},"                        \
	"\"c\": {\"argv\": [\"sh\", \"-c\", \"echo c >> %s\"]},"                                   \
	"\"d\": {\"argv\": [\"sh\", \"-c\", \"echo d >> %s\"]}},"                                  \
	"\"dependencies\": [[\"a\", \"b\"], [\"a\", \"c\"], [\"b\", \"d\"], [\"c\", \"d\"]]}"
	struct ferry_workflow_info *w = NULL, **all = NULL;
	struct ferry_list_opts o;
	ferry_workflow_id id, again;
	size_t n = 0, listed = 0;
	FILE *f;

	snprintf(path, sizeof(path), "%.400s/order", tmpdir);
	snprintf(text, sizeof(text), WF_DIAMOND, path, path, path, path);
	OK(ferry_submit_workflow(conn, text, &id));
	CHECK(id > 0);
	OK(ferry_wait_workflow(conn, id, 60));
	OK(ferry_workflow_status(conn, id, &w));
	CHECK(w->id == id && w->state == FERRY_WF_DONE && w->jobs == 4 &&
	      w->counts[FERRY_DONE] == 4 && w->name && !strcmp(w->name, "diamond"));
	ferry_workflow_info_free(w);
	CHECK((f = fopen(path, "r")) != NULL);
	CHECK(fread(order, 1, sizeof(order) - 1, f) == 8);
	fclose(f);
	CHECK(order[0] == 'a' && order[6] == 'd');
	OK(ferry_workflows(conn, &all, &n));
	CHECK(n == 1 && all[0]->id == id && all[0]->state == FERRY_WF_DONE);
	ferry_workflows_free(all, n);
	ferry_list_opts_init(&o);
	o.workflow = id;
	OK(ferry_list_jobs(conn, &o, count_wf, &listed));
	CHECK(listed == 4);
	/* a control of the workflow's jobs: all ended, so none taken; ended ones named are */
	{
		struct ferry_control_result res;
		const ferry_job_id(*none)[2] = NULL;
		struct ferry_selection sel = {.ranges = none, .nranges = 0, .name = "d"};
		const ferry_job_id all_ids[1][2] = {{1, INT64_MAX}};
		struct ferry_selection by_id = {.ranges = all_ids, .nranges = 1, .name = "d"};
		OK(ferry_control_workflow(conn, id, NULL, FERRY_CONTROL_KILL, &res));
		CHECK(res.matched == 0 && res.changed == 0 && res.failed == 0);
		OK(ferry_control_workflow(conn, id, &sel, FERRY_CONTROL_KILL, &res));
		CHECK(res.matched == 0);
		OK(ferry_control_workflow(conn, id, &by_id, FERRY_CONTROL_KILL, &res));
		CHECK(res.matched == 1 && res.changed == 0);
		OK(ferry_control_workflow(conn, id + 100, NULL, FERRY_CONTROL_KILL, &res));
		CHECK(res.matched == 0);
		CHECK(ferry_control_workflow(conn, 0, NULL, FERRY_CONTROL_KILL, &res) ==
		      FERRY_EINVAL);
	}
	/* refused whole, with the reason */
	CHECK(ferry_submit_workflow(conn,
				    "{\"jobs\": {\"a\": {\"argv\": [\"true\"]}}, "
				    "\"dependencies\": [[\"a\", \"a\"]]}",
				    &again) == FERRY_EINVAL);
	CHECK(again == 0 && strstr(ferry_errmsg(conn), "cannot depend on itself"));
	CHECK(ferry_submit_workflow(conn, "{\"jobs\": ", &again) == FERRY_EINVAL);
	CHECK(ferry_workflow_status(conn, id + 100, &w) == FERRY_ENOJOB && !w);
	CHECK(ferry_wait_workflow(conn, id + 100, 1) == FERRY_ENOJOB);
	/* the same key: the first workflow */
	OK(ferry_submit_workflow(
	    conn, "{\"key\": \"wf-k\", \"jobs\": {\"a\": {\"argv\": [\"true\"]}}}", &id));
	OK(ferry_submit_workflow(
	    conn, "{\"key\": \"wf-k\", \"jobs\": {\"a\": {\"argv\": [\"true\"]}}}", &again));
	CHECK(again == id);
	OK(ferry_wait_workflow(conn, id, 60));
	list_opts_version_1();
	workflow_stop_restart_dispose();
}

static enum ferry_workflow_state wf_state(ferry_workflow_id id)
{
	struct ferry_workflow_info *w = NULL;
	enum ferry_workflow_state st = (enum ferry_workflow_state) - 1;

	OK(ferry_workflow_status(conn, id, &w));
	if (w)
		st = w->state;
	ferry_workflow_info_free(w);
	return st;
}

/*
 * A workflow stopped at once (its first job runs, or is about to), then
 * restarted once its command is fixed: it ends done; disposed of, it is
 * gone.
 */
static void workflow_stop_restart_dispose(void)
{
	char text[2048], flag[512];
	struct ferry_control_result res;
	ferry_workflow_id id;
	size_t n = 0;

	snprintf(flag, sizeof(flag), "%.400s/wf-fixed", tmpdir);
	snprintf(text, sizeof(text),
		 "{\"jobs\": {\"a\": {\"argv\": [\"sh\", \"-c\", \"test -e %s || sleep 60\"]},"
		 "\"b\": {\"argv\": [\"true\"]}}, \"dependencies\": [[\"a\", \"b\"]]}",
		 flag);
	OK(ferry_submit_workflow(conn, text, &id));
	OK(ferry_stop_workflow(conn, id, &res));
	CHECK(res.matched == 2 && res.failed == 0);
	OK(ferry_wait_workflow(conn, id, 60));
	CHECK(wf_state(id) == FERRY_WF_STOPPED);
	CHECK(!strcmp(ferry_workflow_state_name(FERRY_WF_STOPPED), "stopped"));
	fclose(fopen(flag, "w"));
	OK(ferry_restart_workflow(conn, id, &n));
	CHECK(n == 2);
	OK(ferry_wait_workflow(conn, id, 120));
	CHECK(wf_state(id) == FERRY_WF_DONE);
	OK(ferry_restart_workflow(conn, id, &n)); /* nothing failed: nothing to run */
	CHECK(n == 0);
	OK(ferry_dispose_workflow(conn, id, &res));
	CHECK(res.matched == 2);
	CHECK(ferry_wait_workflow(conn, id, 1) == FERRY_ENOJOB);
	CHECK(ferry_stop_workflow(conn, id, NULL) == FERRY_ENOJOB);
	CHECK(ferry_restart_workflow(conn, id, NULL) == FERRY_ENOJOB);
	CHECK(ferry_dispose_workflow(conn, 0, NULL) == FERRY_EINVAL);
}

static int count_all(void *arg, const struct ferry_job_info *j)
{
	(void)j;
	++*(size_t *)arg;
	return 0;
}

/*
 * A program built with version 1's ferry.h calls the function itself and
 * has a struct that ends before workflow: nothing past it is written or
 * read (its bytes here are not a workflow id), and it lists every job.
 */
static void list_opts_version_1(void)
{
	union {
		struct ferry_list_opts o;
		unsigned char b[sizeof(struct ferry_list_opts)];
	} v1;
	size_t end = offsetof(struct ferry_list_opts, workflow), listed = 0, all = 0;
	struct ferry_list_opts o;

	memset(&v1, 0xa5, sizeof(v1));
	(ferry_list_opts_init)(&v1.o);
	CHECK(v1.o.version == 1);
	for (size_t i = end; i < sizeof(v1); i++)
		CHECK(v1.b[i] == 0xa5);
	OK(ferry_list_jobs(conn, &v1.o, count_all, &listed));
	ferry_list_opts_init(&o);
	CHECK(o.version == FERRY_LIST_OPTS_VERSION && o.workflow == 0);
	OK(ferry_list_jobs(conn, &o, count_all, &all));
	CHECK(listed == all && all == 5); /* the diamond and the keyed one */
}

/*
 * The translation of a soma-workflow SharedResourcePath: tests/test_capi.py
 * names FERRY_TEST_TMP/capi.translation for namespace "capi" on every
 * resource, where the engine reads it.
 */
static void t_translate_path(void)
{
	char *path = (char *)"x";

	OK(ferry_translate_path(conn, "capi", "u1", &path));
	CHECK(path && !strcmp(path, "/the/place of u1"));
	free(path);
	CHECK(ferry_translate_path(conn, "capi", "u2", &path) == FERRY_EINVAL);
	CHECK(!path &&
	      strstr(ferry_errmsg(conn), "no translation of uuid 'u2' in namespace 'capi'"));
	CHECK(ferry_translate_path(conn, "other", "u1", &path) == FERRY_EINVAL);
	CHECK(!path && strstr(ferry_errmsg(conn), "namespace 'other' has no translation file"));
	CHECK(ferry_translate_path(conn, "", "u1", &path) == FERRY_EINVAL && !path);
	CHECK(ferry_translate_path(conn, "capi", "", &path) == FERRY_EINVAL && !path);
	OK(ferry_ping(conn)); /* the connection goes on */
}

static const struct {
	const char *name;
	void (*fn)(void);
} tests[] = {
    {"success", t_success},
    {"nonzero_exit", t_nonzero_exit},
    {"signal", t_signal},
    {"kill", t_kill},
    {"kill_queued", t_kill_queued},
    {"missing_executable", t_missing_executable},
    {"not_executable", t_not_executable},
    {"walltime", t_walltime},
    {"mpi", t_mpi},
    {"spec_versions", t_spec_versions},
    {"hold_release", t_hold_release},
    {"stop_restart_queued", t_stop_restart_queued},
    {"suspend_resume", t_suspend_resume},
    {"readline_running", t_readline_running},
    {"read_output", t_read_output},
    {"redirects", t_redirects},
    {"base_env", t_base_env},
    {"jobs_filter", t_jobs_filter},
    {"list_jobs", t_list_jobs},
    {"list_jobs_jsonl", t_list_jobs_jsonl},
    {"dispose", t_dispose},
    {"idempotent_key", t_idempotent_key},
    {"key_known_in_batch", t_key_known_in_batch},
    {"submit_many", t_submit_many},
    {"submit_batches", t_submit_batches},
    {"control_select", t_control_select},
    {"wait_timeout", t_wait_timeout},
    {"wait_all", t_wait_all},
    {"errors", t_errors},
    {"engine_home", t_engine_home},
    {"reconnect", t_reconnect},
    {"disconnected", t_disconnected},
    {"transfer_seed", t_transfer_seed},
    {"transfer_progress", t_transfer_progress},
    {"workflow", t_workflow},
    {"translate_path", t_translate_path},
};

int main(int argc, char **argv)
{
	const char *t = getenv("FERRY_TEST_TMP");

	if (argc == 2 && !strcmp(argv[1], "--list")) {
		for (size_t i = 0; i < sizeof(tests) / sizeof(tests[0]); i++)
			puts(tests[i].name);
		return 0;
	}
	if (argc != 2 || !t) {
		fprintf(stderr, "usage: FERRY_TEST_TMP=DIR test_api NAME | --list\n");
		return 2;
	}
	snprintf(tmpdir, sizeof(tmpdir), "%s", t);
	resource = getenv("FERRY_TEST_RESOURCE");
	remote = getenv("FERRY_TEST_REMOTE") != NULL;
	scheduler = getenv("FERRY_TEST_SCHEDULER") ? getenv("FERRY_TEST_SCHEDULER") : "local";
	for (size_t i = 0; i < sizeof(tests) / sizeof(tests[0]); i++) {
		if (strcmp(argv[1], tests[i].name))
			continue;
		if (ferry_connect(resource, NULL, NULL, NULL, &conn)) {
			fprintf(stderr, "connect: %s\n", ferry_errmsg(conn));
			return 1;
		}
		tests[i].fn();
		ferry_disconnect(conn);
		return 0;
	}
	fprintf(stderr, "unknown test '%s'\n", argv[1]);
	return 2;
}
