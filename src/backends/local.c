/*
 * local.c - the local backend: jobs run on this machine, started and
 * watched by the job runner (runner.c), one process per engine that
 * outlives it. This is the engine's side: it starts or finds the runner,
 * sends it the jobs and controls, and turns its messages and the jobs'
 * result files into job ends. The engine itself never forks per job.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/timerfd.h>
#include <sys/un.h>
#include <unistd.h>

#include "engine.h"
#include "jobenv.h"
#include "jbytes.h"
#include "runner.h"
#include "util.h"

#define LIST_TIMEOUT_MS 10000
/*
 * Seconds a runner we left may take to close its end, or one asked for its
 * jobs at the engine's start may take to answer, before it is killed.
 */
#define LEAVE_S 10
/* what a stopping engine waits at most to hand the runner its last starts */
#define CLOSE_FLUSH_S 2.0

/* ---- the engine side ---- */

/* The backend's state (backend.h: what open returns). */
struct local {
	struct ferry_engine *eng;
	struct chan ch;
	struct ferry_watch *w; /* ch's watch on the engine's loop */
	uint32_t wev;	       /* the events it asks for */
	int draining;	       /* we broke ch: its input is dropped until the runner closes it */
	int leave_timer;       /* timerfd while draining: then the runner is killed; -1 */
	double leave_s;	       /* LEAVE_S, or $FERRYD_TEST_LEAVE_RUNNER_SECONDS */
	pid_t runner;	       /* the runner on ch (its runner message), 0 when unknown */
	int runner_env;	       /* it takes base_env: 1; an older ferryd's: 0; not said yet: -1 */
	pid_t left;	       /* an older ferryd's runner we left to start our own */
	int64_t *ids;	       /* jobs sent to the current runner */
	size_t nids, capids;
	json_t *list;  /* the runner's jobs when this engine started */
	long ncpu;     /* asked once: sysconf reads /sys at each call, and slots runs each tick */
	int jobs_fd;   /* jobs/ (O_PATH): a claim is looked up from there */
	int64_t *dirs; /* the ids with a directory in jobs/ at the start, sorted (held_claimed) */
	size_t ndirs;
	int dirs_read; /* 1 read, -1 unreadable */
	char *mpirun;  /* the MPI launcher found on ferryd's PATH, once asked for; NULL */
};

static char *dir_of(struct ferry_engine *eng, int64_t id)
{
	return ferry__asprintf("%s/%lld", ferry__engine_jobs_dir(eng), (long long)id);
}

static double kv_num(const char *text, const char *key)
{
	size_t kl = strlen(key);

	for (const char *p = text; p && *p; p = strchr(p, '\n'), p = p ? p + 1 : NULL)
		if (!strncmp(p, key, kl) && p[kl] == '=')
			return strtod(p + kl + 1, NULL);
	return 0;
}

/* What each setup step of the runner's child is called in a message. */
static const struct {
	const char *step, *what;
} setup_steps[] = {
    {"session", "cannot give the job a session of its own"},
    {"stdin", "cannot open the job's stdin"},
    {"stdout", "cannot open the job's stdout"},
    {"stderr", "cannot open the job's stderr"},
    {"cwd", "cannot change to the job's working directory"},
    {"limit", "cannot limit the job's memory to"},
    {"exec", "cannot execute"},
};

/*
 * The message of a job that never ran: which step failed, on what (the
 * subject runs to the end of the file; an older runner wrote "command").
 */
static void setup_message(const char *text, int err, char *msg, size_t len)
{
	const char *step = strstr(text, "\nsetup="), *subj = strstr(text, "\nsubject=");
	const char *what = "cannot set up the job";
	int sl;

	if (!step && (subj = strstr(text, "\ncommand="))) /* exec, the one step it named */
		what = "cannot execute";
	subj = subj ? strchr(subj, '=') + 1 : "";
	sl = (int)strlen(subj);
	if (sl && subj[sl - 1] == '\n')
		sl--;
	for (size_t i = 0; step && i < FERRY_ARRAY_SIZE(setup_steps); i++) {
		size_t n = strlen(setup_steps[i].step);
		if (!strncmp(step + 7, setup_steps[i].step, n) && step[7 + n] == '\n')
			what = setup_steps[i].what;
	}
	if (sl)
		snprintf(msg, len, "%s '%.*s': %s", what, sl > 300 ? 300 : sl, subj, strerror(err));
	else
		snprintf(msg, len, "%s: %s", what, strerror(err));
}

/* Turns a job's result file into a job_result. 0, or -1 if absent. */
static int read_result(const char *dir, struct job_result *r)
{
	char path[4096], *text = NULL;
	int spawn_errno;

	snprintf(path, sizeof(path), "%s/result", dir);
	if (ferry__read_file(path, 16384, &text, NULL) < 0)
		return -1;
	memset(r, 0, sizeof(*r));
	r->exit_value = (int)kv_num(text, "code");
	r->signal = (int)kv_num(text, "signal");
	r->cpu_user = kv_num(text, "user");
	r->cpu_sys = kv_num(text, "sys");
	r->max_rss_kb = (int64_t)kv_num(text, "maxrss");
	r->started_at = kv_num(text, "start");
	r->ended_at = kv_num(text, "end");
	r->wall = r->ended_at > r->started_at ? r->ended_at - r->started_at : 0;
	spawn_errno = (int)kv_num(text, "spawn_errno");
	if (spawn_errno) {
		r->exit_status = FERRY_ABORTED;
		r->cpu_user = r->cpu_sys = r->wall = -1;
		r->max_rss_kb = -1;
		setup_message(text, spawn_errno, r->message, sizeof(r->message));
	} else if (kv_num(text, "exited") != 0) {
		r->exit_status = FERRY_FINISHED_REGULARLY;
	} else if (r->signal) {
		r->exit_status = FERRY_FINISHED_SIGNAL;
	} else {
		r->exit_status = FERRY_FINISHED_UNCLEAR_CONDITION;
	}
	if (kv_num(text, "walltime") != 0)
		snprintf(r->message, sizeof(r->message), "walltime limit exceeded: killed");
	else if (kv_num(text, "killed") != 0)
		snprintf(r->message, sizeof(r->message), "killed by user");
	free(text);
	return 0;
}

static void unclear(struct job_result *r, const char *why)
{
	memset(r, 0, sizeof(*r));
	r->exit_status = FERRY_FINISHED_UNCLEAR_CONDITION;
	r->cpu_user = r->cpu_sys = r->wall = -1;
	r->max_rss_kb = -1;
	snprintf(r->message, sizeof(r->message), "%s", why);
}

/* Remembers a job sent to the runner (runner_lost() settles it). 0, or -1 when out of memory. */
static int track(struct local *l, int64_t id)
{
	if (l->nids == l->capids) {
		size_t ncap = l->capids ? 2 * l->capids : 64;
		int64_t *n = realloc(l->ids, ncap * sizeof(*n));
		if (!n)
			return -1;
		l->ids = n;
		l->capids = ncap;
	}
	l->ids[l->nids++] = id;
	return 0;
}

static void untrack(struct local *l, int64_t id)
{
	for (size_t i = 0; i < l->nids; i++) {
		if (l->ids[i] == id) {
			l->ids[i] = l->ids[--l->nids];
			return;
		}
	}
}

/* Reports the end of a job from its result file. */
static void collect(struct local *l, struct job *j, const char *why_missing)
{
	struct ferry_engine *eng = l->eng;
	struct job_result r;
	char *dir = dir_of(l->eng, j->id);

	untrack(l, j->id);
	if (!dir || read_result(dir, &r) < 0)
		unclear(&r, why_missing);
	free(dir);
	ferry__engine_job_ended(eng, j, &r);
}

/*
 * Whether the job has a claim: a claimed job may have run. Looked up from
 * jobs/, not from '/': the engine's start asks this of every held job, a
 * million of them.
 */
static int claimed(struct local *l, int64_t id)
{
	char rel[40];
	struct stat st;

	snprintf(rel, sizeof(rel), "%lld/claim", (long long)id);
	return fstatat(l->jobs_fd, rel, &st, AT_SYMLINK_NOFOLLOW) == 0;
}

static int by_id_desc(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;

	return x < y ? 1 : x > y ? -1 : 0;
}

/* Lists the ids of jobs/ into l->dirs, sorted high to low; 0 or -1. */
static int read_dirs(struct local *l)
{
	int fd = openat(l->jobs_fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	DIR *d = fd >= 0 ? fdopendir(fd) : NULL;
	size_t cap = 0;
	struct dirent *e;

	if (!d) {
		if (fd >= 0)
			close(fd);
		return -1;
	}
	while ((e = readdir(d))) {
		char *end;
		long long id = strtoll(e->d_name, &end, 10);
		if (*end || end == e->d_name)
			continue;
		if (l->ndirs == cap) {
			int64_t *nv = realloc(l->dirs, (cap = cap ? 2 * cap : 256) * sizeof(*nv));
			if (!nv) {
				closedir(d);
				return -1;
			}
			l->dirs = nv;
		}
		l->dirs[l->ndirs++] = id;
	}
	closedir(d);
	if (l->ndirs) /* qsort and bsearch take no NULL, even for 0 items */
		qsort(l->dirs, l->ndirs, sizeof(*l->dirs), by_id_desc);
	return 0;
}

/*
 * claimed() for a held job at the engine's start. jobs/ is read once
 * then: a job without a directory has no claim, and a million held jobs
 * are not a million lookups. A held job is never sent to a runner (only
 * a queued one is, and it counts as started from then on), so no
 * directory of one appears after that read.
 */
static int held_claimed(struct local *l, int64_t id)
{
	if (!l->dirs_read)
		l->dirs_read = read_dirs(l) ? -1 : 1;
	if (l->dirs_read > 0 &&
	    (!l->ndirs || !bsearch(&id, l->dirs, l->ndirs, sizeof(*l->dirs), by_id_desc)))
		return 0;
	return claimed(l, id);
}

static void leave_timer_stop(struct local *l)
{
	if (l->leave_timer < 0)
		return;
	ferry__loop_unwatch(ferry__engine_loop(l->eng), l->leave_timer);
	close(l->leave_timer);
	l->leave_timer = -1;
}

/*
 * The runner on fd when it never said its pid (it is stopped): the
 * process SO_PEERCRED names (the runner listens again at its start, so
 * that it is the runner, not the engine that forked it), if it is one.
 */
static pid_t peer_runner(int fd)
{
	struct ucred cred;
	socklen_t cl = sizeof(cred);
	char path[64], *comm = NULL;
	pid_t pid = 0;

	if (fd < 0 || getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &cl) < 0 || cred.pid <= 0 ||
	    cred.pid == getpid())
		return 0;
	snprintf(path, sizeof(path), "/proc/%d/comm", (int)cred.pid);
	if (ferry__read_file(path, 64, &comm, NULL) == 0 && !strcmp(comm, "ferry-runner\n"))
		pid = cred.pid;
	free(comm);
	return pid;
}

/*
 * A runner we left has not closed its end in time (it is stopped, or
 * hangs): it is killed, as its claims are final only once it can read
 * nothing more. Its end of file follows, and runner_lost().
 */
static void kill_runner(struct local *l, const char *why)
{
	pid_t pid = l->runner > 0 ? l->runner : peer_runner(l->ch.fd);

	if (pid > 0) {
		fprintf(stderr, "ferryd: the job runner (pid %d) %s; killing it\n", (int)pid, why);
		kill(pid, SIGKILL);
	} else {
		fprintf(stderr, "ferryd: the job runner %s; its pid is unknown\n", why);
	}
	l->runner = 0;
}

static void on_leave_timer(struct ferry_engine *eng, int fd, void *arg)
{
	struct local *l = arg;
	char why[96];

	(void)eng;
	(void)fd;
	leave_timer_stop(l);
	snprintf(why, sizeof(why), "did not close its connection within %g s", l->leave_s);
	kill_runner(l, why);
}

/* Bounds the wait for a runner we left (drain); without a timer it may wait for ever. */
static void leave_timer_start(struct local *l)
{
	struct itimerspec at = {
	    .it_value = {.tv_sec = (time_t)l->leave_s,
			 .tv_nsec = (long)((l->leave_s - (double)(time_t)l->leave_s) * 1e9)}};
	int fd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);

	if (fd >= 0 && at.it_value.tv_sec == 0 && at.it_value.tv_nsec == 0)
		at.it_value.tv_nsec = 1;
	if (fd < 0 || timerfd_settime(fd, 0, &at, NULL) < 0 ||
	    ferry__loop_watch(ferry__engine_loop(l->eng), fd, on_leave_timer, l) < 0) {
		if (fd >= 0)
			close(fd);
		kill_runner(l, "sent a malformed message and no timer can wait for it");
		return;
	}
	l->leave_timer = fd;
}

/*
 * The runner closed its end or died: it reads nothing more of what we
 * sent, so its claims are final. A claimed job ends with what its result
 * file says; a job it never claimed never started (its start was still in
 * the socket, or the runner died before the claim), so it goes back to the
 * head of the queue, in its order, for the next runner.
 */
static void runner_lost(struct local *l)
{
	struct ferry_engine *eng = l->eng;
	int64_t *v = l->ids;
	size_t nv = l->nids, n = 0;

	ferry__loop_unwatch(ferry__engine_loop(eng), l->ch.fd);
	ferry__chan_close(&l->ch);
	l->w = NULL;
	l->draining = 0;
	l->runner = 0;
	leave_timer_stop(l);
	l->ids = NULL;
	l->nids = l->capids = 0;
	for (size_t i = 0; i < nv; i++) {
		struct job *j = ferry__engine_job(eng, v[i]);
		if (j && claimed(l, j->id))
			collect(l, j, "the job's runner died before recording its result");
		else if (j)
			v[n++] = j->id;
	}
	if (n)
		qsort(v, n, sizeof(*v), by_id_desc);
	for (size_t i = 0; i < n; i++) {
		struct job *j = ferry__engine_job(eng, v[i]);
		if (j)
			ferry__engine_job_requeue(eng, j);
	}
	free(v);
}

static void want(struct local *l, uint32_t events)
{
	ferry__loop_set_events(ferry__engine_loop(l->eng), l->w, events, &l->wev);
}

/*
 * We stop sending and drop what the runner says until it closes its end
 * (it does on our end of file), so that no start of ours is still unread
 * when runner_lost() looks at the claims; past leave_s it is killed.
 */
static void leave(struct local *l)
{
	shutdown(l->ch.fd, SHUT_WR);
	l->draining = 1;
	l->ch.outlen = 0;
	want(l, EPOLLIN);
	leave_timer_start(l);
}

/* The runner sent what we cannot read. */
static void drain(struct local *l)
{
	fprintf(stderr, "ferryd: the job runner sent a malformed message; leaving it\n");
	leave(l);
}

static void runner_message(struct local *l, json_t *m)
{
	struct ferry_engine *eng = l->eng;
	const char *op = json_string_value(json_object_get(m, "op"));
	struct job *j = ferry__engine_job(eng, json_integer_value(json_object_get(m, "id")));

	if (op && !strcmp(op, "runner")) {
		json_t *cap;
		size_t i;
		l->runner = (pid_t)json_integer_value(json_object_get(m, "pid"));
		l->runner_env = 0;
		json_array_foreach(json_object_get(m, "caps"), i, cap)
		{
			if (json_is_string(cap) && !strcmp(json_string_value(cap), "base_env"))
				l->runner_env = 1;
		}
	} else if (j && op && !strcmp(op, "ended")) {
		collect(l, j, "the job ended without a result file");
	} else if (j && op && !strcmp(op, "refused")) {
		struct job_result res;
		const char *msg = json_string_value(json_object_get(m, "message"));
		unclear(&res, msg ? msg : "the job runner refused the job");
		res.exit_status = FERRY_ABORTED;
		untrack(l, j->id);
		ferry__engine_job_ended(eng, j, &res);
	} else if (j && op && !strcmp(op, "started")) {
		char pid[32];
		snprintf(pid, sizeof(pid), "%d",
			 (int)json_integer_value(json_object_get(m, "pid")));
		ferry__engine_job_native_id(eng, j, pid);
	}
}

static void on_runner(struct ferry_engine *eng, int fd, void *arg)
{
	struct local *l = arg;
	json_t *m;
	int bad = 0, eof;

	/* a write error shows as the end of file below */
	if (l->ch.outlen)
		(void)ferry__chan_flush(&l->ch);
	/* all sent, or armed only to read what is buffered (await_runner_message) */
	if (!l->ch.outlen && (l->wev & EPOLLOUT))
		want(l, EPOLLIN);
	eof = ferry__chan_fill(&l->ch) < 0;
	while (!l->draining && (m = ferry__chan_next(&l->ch, &bad))) {
		runner_message(l, m);
		json_decref(m);
	}
	if (l->draining)
		ferry__reader_reset(&l->ch.in);
	if (eof)
		runner_lost(l);
	else if (bad)
		drain(l);
}

static int connect_runner(const char *path)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	int fd;

	if (strlen(path) >= sizeof(sa.sun_path))
		return -1;
	strcpy(sa.sun_path, path);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd >= 0 && connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		close(fd);
		fd = -1;
	}
	return fd;
}

/*
 * Runs the runner as a fresh image of this very program: posix_spawn
 * (a vfork in glibc: no copy of the engine's page tables) of
 * /proc/self/exe, a link to the file the engine runs even once an
 * upgrade replaced or removed it, so engine and runner always speak the
 * same protocol. A forked runner would share the engine's heap, and
 * every engine write would then copy a page. The listening socket
 * becomes the runner's fd RUNNER_FD; everything else is close-on-exec.
 */
static pid_t exec_runner(int lfd, const char *log, unsigned long long nofile)
{
	char fdarg[16], nofilearg[32];
	char *argv[] = {"ferry-runner", "--runner", fdarg, (char *)log, nofilearg, NULL};
	posix_spawn_file_actions_t fa;
	posix_spawnattr_t at;
	sigset_t none, all;
	int src = lfd, rc;
	pid_t pid = -1;

	/* glibc >= 2.29 clears close-on-exec when a dup2's fds are equal; older ones do not */
	if (lfd == RUNNER_FD && (src = fcntl(lfd, F_DUPFD_CLOEXEC, RUNNER_FD + 1)) < 0)
		return -1;
	snprintf(fdarg, sizeof(fdarg), "%d", RUNNER_FD);
	snprintf(nofilearg, sizeof(nofilearg), "%llu", nofile);
	sigemptyset(&none);
	sigfillset(&all);
	posix_spawn_file_actions_init(&fa);
	posix_spawnattr_init(&at);
	posix_spawnattr_setflags(&at, POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETSIGMASK);
	posix_spawnattr_setsigdefault(&at, &all);
	posix_spawnattr_setsigmask(&at, &none);
	rc = posix_spawn_file_actions_adddup2(&fa, src, RUNNER_FD);
	if (!rc)
		rc = posix_spawn(&pid, "/proc/self/exe", &fa, &at, argv, environ);
	posix_spawn_file_actions_destroy(&fa);
	posix_spawnattr_destroy(&at);
	if (src != lfd)
		close(src);
	if (rc) {
		errno = rc;
		return -1;
	}
	return pid;
}

/* Starts a runner; its socket listens before the spawn, so no race. */
static int spawn_runner(struct ferry_engine *eng, const char *path)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	char *log = ferry__asprintf("%s/runner.log", ferry__engine_state_dir(eng));
	int lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

	if (lfd < 0 || !log || strlen(path) >= sizeof(sa.sun_path))
		goto fail;
	strcpy(sa.sun_path, path);
	unlink(path); /* a dead runner's: the engine's lock makes us the only starter */
	if (bind(lfd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || chmod(path, 0600) < 0 ||
	    listen(lfd, 8) < 0)
		goto fail;
	/*
	 * The runner keeps ferryd's raised descriptor limit (it holds
	 * descriptors per job); each job's child gets the one ferryd started with.
	 */
	if (exec_runner(lfd, log, ferry__loop_start_nofile(ferry__engine_loop(eng))) < 0) {
		fprintf(stderr, "ferryd: cannot start the job runner: %s\n", strerror(errno));
		goto fail;
	}
	close(lfd);
	free(log);
	return 0;
fail:
	if (lfd >= 0)
		close(lfd);
	free(log);
	return -1;
}

/* Connects to the runner of this state directory, starting one if needed. */
static int ensure_runner(struct local *l, char *err, size_t errlen)
{
	struct ferry_engine *eng = l->eng;
	char *path;

	if (l->draining) {
		snprintf(err, errlen, "the job runner is being left");
		return FERRY_EAGAIN;
	}
	if (l->ch.fd >= 0)
		return 0;
	path = ferry__asprintf("%s/runner.sock", ferry__engine_state_dir(eng));
	if (!path) {
		snprintf(err, errlen, "out of memory");
		return FERRY_EAGAIN;
	}
	l->ch.fd = connect_runner(path);
	l->runner_env = -1; /* an earlier engine's: its runner message says */
	if (l->ch.fd < 0 && spawn_runner(eng, path) == 0) {
		l->ch.fd = connect_runner(path);
		l->runner_env = 1; /* this very program (exec_runner) */
	}
	l->runner = 0; /* until its runner message */
	if (l->ch.fd >= 0)
		l->w = ferry__loop_watch_events(ferry__engine_loop(eng), l->ch.fd, EPOLLIN,
						on_runner, l);
	l->wev = EPOLLIN;
	if (!l->w) {
		snprintf(err, errlen, "cannot reach the job runner on '%s': %s", path,
			 strerror(errno));
		free(path);
		ferry__chan_close(&l->ch);
		return FERRY_EAGAIN;
	}
	free(path);
	return 0;
}

/*
 * Queues one message (taken) for the runner and sends what the socket
 * takes now; the rest goes when it is writable (on_runner). Never waits,
 * and never gives up on the connection: only the runner closes it, so
 * that a start it may still read is never taken for one it never got.
 * 0, or -1 when the message cannot be made (nothing was queued).
 */
static int runner_send(struct local *l, json_t *m)
{
	int rc = ferry__chan_queue(&l->ch, m);

	json_decref(m);
	if (rc)
		return -1;
	(void)ferry__chan_flush(&l->ch); /* an error: the runner's end of file follows */
	if (l->ch.outlen)
		want(l, EPOLLIN | EPOLLOUT);
	return 0;
}

/* Outside the loop: writes what is queued for the runner; 0 once all is. */
static int flush_until(struct local *l, double until)
{
	while (l->ch.fd >= 0 && l->ch.outlen) {
		struct pollfd p = {l->ch.fd, POLLOUT, 0};
		if (ferry__mono() > until || poll(&p, 1, 200) < 0 || ferry__chan_flush(&l->ch) < 0)
			return -1;
	}
	return 0;
}

/* At start, before the loop runs: runner_send(), then waits until it is sent. */
static int runner_send_wait(struct local *l, json_t *m)
{
	if (runner_send(l, m) || flush_until(l, ferry__mono() + LIST_TIMEOUT_MS / 1000.0))
		return -1;
	want(l, EPOLLIN);
	return 0;
}

/* The MPI launcher, looked for until found: installing it needs no restart. */
static const char *mpirun(struct local *l)
{
	if (!l->mpirun)
		l->mpirun = ferry__which("mpirun", NULL);
	return l->mpirun;
}

/* Whether "NAME=value" entry array a sets name (len bytes). */
static int env_sets(json_t *a, const char *name, size_t len)
{
	size_t i;
	json_t *v;

	json_array_foreach(a, i, v)
	{
		const char *e = json_string_value(v);
		if (e && !strncmp(e, name, len) && e[len] == '=')
			return 1;
	}
	return 0;
}

/*
 * What the runner starts for an MPI job (launcher "mpi"): its command
 * as tasks ranks of mpirun. The engine has counted the slots, so Open
 * MPI may place more ranks than it counts cores; a job of root's (the
 * engine's user) is one root asked for, which Open MPI refuses without
 * being told. Each is set unless the job's env or base_env sets it, as
 * the Grid Engine script does. A new reference, or NULL.
 */
static json_t *mpi_spec(struct local *l, json_t *spec, json_t *base)
{
	static const char *const vars[] = {"OMPI_MCA_rmaps_base_oversubscribe=1",
					   "OMPI_ALLOW_RUN_AS_ROOT=1",
					   "OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1"};
	json_int_t tasks = json_integer_value(json_object_get(spec, "tasks"));
	json_t *run = json_copy(spec), *argv = json_array(), *env = json_array(),
	       *own = json_object_get(spec, "env");
	int bad = !run || !argv || !env || !mpirun(l);
	char np[24];

	snprintf(np, sizeof(np), "%lld", (long long)(tasks > 0 ? tasks : 1));
	bad = bad || json_array_append_new(argv, ferry__json_bytes(l->mpirun)) ||
	      json_array_append_new(argv, json_string("-np")) ||
	      json_array_append_new(argv, json_string(np)) ||
	      json_array_extend(argv, json_object_get(spec, "argv"));
	for (size_t k = 0; !bad && k < (geteuid() == 0 ? 3 : 1); k++) {
		size_t n = strcspn(vars[k], "=");
		if (!env_sets(own, vars[k], n) && !env_sets(base, vars[k], n))
			bad = json_array_append_new(env, json_string(vars[k]));
	}
	bad = bad || (own && json_array_extend(env, own));
	/* json_object_set_new() takes its value whatever it returns */
	if (!bad) {
		bad = json_object_set_new(run, "argv", argv);
		argv = NULL;
	}
	if (!bad) {
		bad = json_object_set_new(run, "env", env);
		env = NULL;
	}
	json_decref(argv);
	json_decref(env);
	if (bad) {
		json_decref(run);
		return NULL;
	}
	return run;
}

/*
 * Whether the runner gives a job its base_env. The runner outlives
 * engines, so after an upgrade a new engine may find a runner of an
 * older ferryd, which drops base_env from a start: the job would run
 * without the submitter's environment. Its runner message says (caps).
 * Idle, it is left (it exits once no engine is connected and no job
 * runs) and the next start spawns this program's; running jobs, it
 * cannot be, and the job fails, saying why: no jobs run twice, and a
 * queue stalled behind a week-long job would say nothing.
 */
static int runner_takes_env(struct local *l, char *err, size_t errlen)
{
	if (l->runner_env > 0)
		return 0;
	/* not waited for here: the loop reads its message, and the start is tried again */
	if (l->runner_env < 0) {
		snprintf(err, errlen, "the job runner has not said what it supports yet");
		return FERRY_EAGAIN;
	}
	if (!l->nids) { /* idle: left once, then awaited until it is gone */
		if (l->runner != l->left) {
			fprintf(
			    stderr,
			    "ferryd: the job runner (pid %d) is an older ferryd's, which cannot "
			    "give a job the submitter's environment; leaving it for a new one\n",
			    (int)l->runner);
			l->left = l->runner;
			leave(l);
		}
		snprintf(err, errlen, "the job runner is being replaced");
		return FERRY_EAGAIN;
	}
	snprintf(err, errlen,
		 "the job runner (pid %d) was started by an older ferryd, which cannot give the "
		 "job the submitter's environment (base_env), and it still runs jobs: submit "
		 "again once they ended (a new runner then starts), or with --env-clean",
		 (int)l->runner);
	return FERRY_EUNSUPPORTED;
}

static int local_start(void *self, struct job *j, char *err, size_t errlen)
{
	struct local *l = self;
	json_t *spec = ferry__engine_job_spec(l->eng, j), *base;
	char *dir;
	int rc = ensure_runner(l, err, errlen);

	if (rc)
		return rc;
	/* an environment that cannot be read is not a job's to run without: it fails */
	if ((rc = ferry__jobenv_get(l->eng, spec, &base, err, errlen)) ||
	    (base && (rc = runner_takes_env(l, err, errlen))))
		return rc;
	dir = dir_of(l->eng, j->id);
	if (!dir) {
		snprintf(err, errlen, "out of memory");
		return FERRY_EAGAIN;
	}
	/* an MPI job's command runs under mpirun: the stored spec keeps the user's */
	if (json_object_get(spec, "launcher") && !mpirun(l)) {
		free(dir);
		snprintf(err, errlen, "'mpirun' is no longer on the engine's PATH");
		return FERRY_EUNSUPPORTED;
	}
	spec = json_object_get(spec, "launcher") ? mpi_spec(l, spec, base) : json_incref(spec);
	/* tracked first: from its send on, a lost runner must settle it */
	rc = spec ? track(l, j->id) : -1;
	if (!rc)
		rc = runner_send(l, json_pack("{s:s,s:I,s:o,s:O,s:O*}", "op", "start", "id",
					      (json_int_t)j->id, "dir", ferry__json_bytes(dir),
					      "spec", spec, "base_env", base));
	json_decref(spec);
	free(dir);
	if (rc) {
		untrack(l, j->id);
		snprintf(err, errlen, "out of memory");
		return FERRY_EAGAIN;
	}
	return 0;
}

static int local_control(void *self, struct job *j, enum backend_ctl ctl, struct ferry_ctl *token,
			 char *err, size_t errlen)
{
	struct local *l = self;
	const char *action = ctl == CTL_SUSPEND	 ? "suspend"
			     : ctl == CTL_RESUME ? "resume"
						 : "terminate";

	if (l->ch.fd < 0 || l->draining ||
	    runner_send(l, json_pack("{s:s,s:I,s:s}", "op", "signal", "id", (json_int_t)j->id,
				     "action", action))) {
		snprintf(err, errlen, "the job runner is gone");
		return FERRY_ESTATE;
	}
	return 0;
}

/* At start: waits (until deadline) for a runner we killed to close its end. */
static void wait_closed(struct local *l, double deadline)
{
	char buf[4096];

	while (l->ch.fd >= 0 && ferry__mono() < deadline) {
		struct pollfd p = {l->ch.fd, POLLIN, 0};
		if (poll(&p, 1, 200) < 0 && errno != EINTR)
			return;
		if (p.revents && recv(l->ch.fd, buf, sizeof(buf), MSG_DONTWAIT) == 0)
			return;
	}
}

/* The runner's current jobs, asked once when an engine starts. */
static json_t *runner_jobs(struct local *l)
{
	double until = ferry__mono() + l->leave_s;
	char err[256];
	json_t *m;
	int bad = 0, eof = 0;

	if (l->list)
		return l->list;
	if (ensure_runner(l, err, sizeof(err)))
		return NULL;
	if (runner_send_wait(l, json_pack("{s:s}", "op", "list")) == 0) {
		while (!bad && !eof && ferry__mono() < until) {
			struct pollfd p = {l->ch.fd, POLLIN, 0};
			if (poll(&p, 1, 200) < 0 && errno != EINTR)
				break;
			eof = ferry__chan_fill(&l->ch) < 0;
			/* "ended" messages before the list are redundant: results are in files */
			while ((m = ferry__chan_next(&l->ch, &bad))) {
				const char *op = json_string_value(json_object_get(m, "op"));
				if (op && !strcmp(op, "list"))
					return l->list = m;
				if (op && !strcmp(op, "runner"))
					runner_message(l, m);
				json_decref(m);
			}
		}
	}
	/* a runner we leave alive could still run what it claims: it goes */
	if (!eof) {
		kill_runner(l, bad ? "sent a malformed message" : "did not list its jobs in time");
		wait_closed(l, ferry__mono() + l->leave_s);
	}
	runner_lost(l);
	return NULL;
}

/*
 * After an engine restart: a claimed job is with the runner (its list
 * says so), or ended (its result file says how), or lost with a runner
 * that died. An unclaimed job never started.
 */
static int local_adopt(void *self, struct job *j)
{
	struct local *l = self;
	struct ferry_engine *eng = l->eng;
	json_t *list, *ids, *e;
	size_t i;
	int held = j->state == FERRY_USER_ON_HOLD || j->state == FERRY_SYSTEM_ON_HOLD;

	if (!(held ? held_claimed(l, j->id) : claimed(l, j->id)))
		return 0;
	ferry__engine_job_adopted(eng, j);
	list = runner_jobs(l);
	ids = json_object_get(list, "ids");
	json_array_foreach(ids, i, e)
	{
		if (json_integer_value(e) == j->id) {
			char pid[32];
			snprintf(pid, sizeof(pid), "%d",
				 (int)json_integer_value(
				     json_array_get(json_object_get(list, "pids"), i)));
			ferry__engine_job_native_id(eng, j, pid);
			if (track(l, j->id) < 0) /* then a lost runner leaves it running */
				fprintf(stderr, "ferryd: job %lld: out of memory\n",
					(long long)j->id);
			return 1;
		}
	}
	collect(l, j, "the runner that started the job died before recording its result");
	return 1;
}

static int local_check(void *self, json_t *spec, char *err, size_t errlen)
{
	struct local *l = self;

	if (json_is_string(json_object_get(spec, "queue"))) {
		snprintf(err, errlen, "the local backend has no queues (queue '%s')",
			 json_string_value(json_object_get(spec, "queue")));
		return FERRY_EUNSUPPORTED;
	}
	if (json_is_string(json_object_get(spec, "native_specification"))) {
		snprintf(err, errlen, "the local backend takes no native specification ('%s')",
			 json_string_value(json_object_get(spec, "native_specification")));
		return FERRY_EUNSUPPORTED;
	}
	if (json_integer_value(json_object_get(spec, "nodes")) > 1) {
		snprintf(err, errlen, "resource '%s' is one machine: the job asks for %lld nodes",
			 ferry__engine_resource(l->eng),
			 (long long)json_integer_value(json_object_get(spec, "nodes")));
		return FERRY_ERESOURCE;
	}
	if (json_object_get(spec, "launcher") && !mpirun(l)) {
		snprintf(err, errlen,
			 "resource '%s' has no MPI launcher: 'mpirun' is not on the engine's PATH "
			 "(Debian's openmpi-bin has it)",
			 ferry__engine_resource(l->eng));
		return FERRY_EUNSUPPORTED;
	}
	return 0;
}

static int local_slots(void *self)
{
	struct local *l = self;
	int slots = ferry__engine_cfg(l->eng)->slots;

	if (slots > 0)
		return slots;
	return l->ncpu > 0 ? (int)l->ncpu : 1;
}

static int local_open(struct ferry_engine *eng, void **self, char *err, size_t errlen)
{
	struct local *l = calloc(1, sizeof(*l));
	const char *knob = getenv("FERRYD_TEST_LEAVE_RUNNER_SECONDS");

	if (!l) {
		snprintf(err, errlen, "out of memory");
		return FERRY_ENOMEM;
	}
	l->eng = eng;
	l->ch.fd = -1;
	l->leave_timer = -1;
	l->leave_s = knob && atof(knob) > 0 ? atof(knob) : LEAVE_S;
	l->ncpu = sysconf(_SC_NPROCESSORS_ONLN);
	l->jobs_fd = open(ferry__engine_jobs_dir(eng), O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (l->jobs_fd < 0) {
		snprintf(err, errlen, "cannot open '%s': %s", ferry__engine_jobs_dir(eng),
			 strerror(errno));
		free(l);
		return FERRY_EIO;
	}
	*self = l;
	return 0;
}

static void local_close(void *self)
{
	struct local *l = self;

	/* the starts still queued are of jobs the engine calls running: they go */
	if (!l->draining)
		(void)flush_until(l, ferry__mono() + CLOSE_FLUSH_S);
	if (l->ch.fd >= 0)
		ferry__loop_unwatch(ferry__engine_loop(l->eng), l->ch.fd);
	leave_timer_stop(l);
	ferry__chan_free(&l->ch);
	json_decref(l->list);
	free(l->ids);
	free(l->dirs);
	free(l->mpirun);
	close(l->jobs_fd);
	free(l);
}

const struct ferry_backend ferry__backend_local = {
    .name = "local",
    .open = local_open,
    .close = local_close,
    .check = local_check,
    .start = local_start,
    .control = local_control,
    .adopt = local_adopt,
    .slots = local_slots,
};
