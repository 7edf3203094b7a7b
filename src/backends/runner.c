/*
 * runner.c - the local backend's job runner: one long-lived process per
 * engine that starts and watches every job (local.c is the engine's side).
 *
 * It is a fork of the engine that needs no exec of its own, lives in its
 * own session as the child subreaper of the jobs, and outlives the engine:
 * a job and its result survive an engine crash, and a new engine finds the
 * runner again through its socket. Per job the runner claims the job (so
 * that no job ever runs twice), spawns it with posix_spawn (vfork speed,
 * no copy of any address space) in its own process group, relays the
 * engine's controls to that group, enforces the walltime, and writes the
 * exit status and rusage atomically into the job directory before telling
 * the engine.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "ferry.h"
#include "frame.h"
#include "runner.h"
#include "proto.h"
#include "util.h"

#define KILL_GRACE_S 5

extern char **environ;

/* ---- frames between the engine and the runner (the wire format) ---- */

/* Reads what is there; -1 at EOF or on an error. */
int ferry__chan_fill(struct chan *c)
{
	for (;;) {
		unsigned char *room = ferry__reader_space(&c->in, 65536);
		ssize_t n;

		if (!room)
			return -1;
		n = recv(c->fd, room, 65536, MSG_DONTWAIT);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return 0;
		if (n <= 0)
			return -1;
		ferry__reader_added(&c->in, (size_t)n);
	}
}

/* Takes the next complete message; NULL when none (or a bad one: *bad). */
json_t *ferry__chan_next(struct chan *c, int *bad)
{
	struct ferry_frame f;
	char err[200];
	/* both sides send request frames: the type tells nothing here */
	int rc = ferry__reader_next(&c->in, 0, &f, err, sizeof(err));

	*bad = rc < 0 || (rc > 0 && !f.json);
	if (rc <= 0)
		return NULL;
	ferry__reader_consume(&c->in, f.len);
	return f.json;
}

int ferry__chan_queue(struct chan *c, json_t *m)
{
	unsigned char *f;
	size_t fl;

	if (!m || ferry__frame_build(FERRY_FRAME_REQUEST, m, NULL, 0, &f, &fl))
		return -1;
	if (ferry__reserve(&c->out, &c->outcap, c->outlen + fl) < 0) {
		free(f);
		return -1;
	}
	memcpy(c->out + c->outlen, f, fl);
	c->outlen += fl;
	free(f);
	return 0;
}

/* Writes queued output without blocking; -1 when the peer is gone. */
int ferry__chan_flush(struct chan *c)
{
	size_t off = 0;
	int rc = 0;

	while (off < c->outlen) {
		ssize_t n = send(c->fd, c->out + off, c->outlen - off, MSG_DONTWAIT | MSG_NOSIGNAL);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			break;
		if (n <= 0) {
			rc = -1;
			break;
		}
		off += (size_t)n;
	}
	memmove(c->out, c->out + off, c->outlen - off);
	c->outlen -= off;
	return rc;
}

void ferry__chan_close(struct chan *c)
{
	if (c->fd >= 0)
		close(c->fd);
	c->fd = -1;
	ferry__reader_reset(&c->in);
	c->outlen = 0;
}

void ferry__chan_free(struct chan *c)
{
	ferry__chan_close(c);
	ferry__reader_free(&c->in);
	free(c->out);
	c->out = NULL;
	c->outcap = 0;
}

/* ---- the runner (a process of its own) ---- */

/* Start time of a process in clock ticks since boot, 0 when unknown. */
static unsigned long long proc_start_time(pid_t pid, char *state)
{
	char path[64], buf[1024], *p;
	unsigned long long st = 0;
	ssize_t n;
	int fd;

	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return 0;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return 0;
	buf[n] = '\0';
	p = strrchr(buf, ')');
	if (!p || p[1] != ' ')
		return 0;
	if (state)
		*state = p[2];
	/* after ')': state is field 3; starttime is field 22 */
	p += 2;
	for (int field = 3; field < 22 && p; field++) {
		p = strchr(p, ' ');
		if (p)
			p++;
	}
	if (p)
		st = strtoull(p, NULL, 10);
	return st;
}

/*
 * Writes the claim with link(2): exactly one process can create it, so a
 * job runs at most once whatever crashed before its start was recorded.
 * It names the runner ("pid starttime") that owns the job.
 */
static int claim_job(const char *dir, const char *owner)
{
	char tmp[4096], claim[4096];
	int fd, rc;

	snprintf(tmp, sizeof(tmp), "%s/claim.%d", dir, (int)getpid());
	snprintf(claim, sizeof(claim), "%s/claim", dir);
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0)
		return -errno;
	rc = ferry__write_all(fd, owner, strlen(owner));
	close(fd);
	if (!rc && link(tmp, claim) < 0)
		rc = -errno;
	unlink(tmp);
	return rc;
}

struct outcome {
	int status; /* wait status, valid when waited */
	int waited;
	int spawn_errno;
	int killed, walltime;
	struct rusage ru;
	double start, end;
};

static void write_result(const char *dir, const struct outcome *o, const char *cmd)
{
	char path[4096], buf[2048];
	int n;

	n = snprintf(buf, sizeof(buf),
		     "exited=%d\ncode=%d\nsignal=%d\nspawn_errno=%d\nkilled=%d\nwalltime=%d\n"
		     "user=%.6f\nsys=%.6f\nmaxrss=%ld\nstart=%.6f\nend=%.6f\n",
		     o->waited && WIFEXITED(o->status), o->waited ? WEXITSTATUS(o->status) : 0,
		     o->waited && WIFSIGNALED(o->status) ? WTERMSIG(o->status) : 0, o->spawn_errno,
		     o->killed, o->walltime,
		     (double)o->ru.ru_utime.tv_sec + o->ru.ru_utime.tv_usec / 1e6,
		     (double)o->ru.ru_stime.tv_sec + o->ru.ru_stime.tv_usec / 1e6, o->ru.ru_maxrss,
		     o->start, o->end);
	if (o->spawn_errno && n > 0 && (size_t)n < sizeof(buf))
		snprintf(buf + n, sizeof(buf) - (size_t)n, "command=%.1000s\n", cmd);
	snprintf(path, sizeof(path), "%s/result", dir);
	/* no fsync: a machine crash kills the job too, so its result goes anyway */
	ferry__write_file_atomic(path, buf, strlen(buf), 0);
}

/* The job's environment: the engine's, then the spec's entries. */
static char **job_env(json_t *spec)
{
	json_t *env = json_object_get(spec, "env"), *e;
	size_t n = ferry__strv_len(environ), i, k = 0;
	char **v = calloc(n + json_array_size(env) + 1, sizeof(*v));

	if (!v)
		return NULL;
	for (i = 0; i < n; i++)
		v[k++] = environ[i];
	json_array_foreach(env, i, e)
	{
		const char *s = json_string_value(e);
		size_t nl = (size_t)(strchr(s, '=') - s);
		size_t m;
		for (m = 0; m < k; m++)
			if (!strncmp(v[m], s, nl + 1))
				break;
		v[m] = (char *)s;
		if (m == k)
			k++;
	}
	v[k] = NULL;
	return v;
}

/* What the job's process is made of, prepared before any fork. */
struct launch {
	char **argv, **envp;
	const char *in, *out, *err, *cwd;
	int join;
	int64_t memory_mb;
};

static int open_action(posix_spawn_file_actions_t *fa, int fd, const char *path, int flags)
{
	return posix_spawn_file_actions_addopen(fa, fd, path, flags, 0644);
}

/* The common case: posix_spawn (vfork speed, nothing of ours after the fork). */
static int spawn_fast(const struct launch *l, pid_t *pid)
{
	posix_spawn_file_actions_t fa;
	posix_spawnattr_t at;
	sigset_t none, all;
	int rc;

	posix_spawn_file_actions_init(&fa);
	posix_spawnattr_init(&at);
	sigemptyset(&none);
	sigfillset(&all);
	posix_spawnattr_setsigmask(&at, &none);
	posix_spawnattr_setsigdefault(&at, &all);
	posix_spawnattr_setpgroup(&at, 0);
	posix_spawnattr_setflags(&at, POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGMASK |
					  POSIX_SPAWN_SETSIGDEF);
	rc = open_action(&fa, 0, l->in, O_RDONLY);
	if (!rc)
		rc = open_action(&fa, 1, l->out, O_WRONLY | O_CREAT | O_TRUNC);
	if (!rc)
		rc = l->join ? posix_spawn_file_actions_adddup2(&fa, 1, 2)
			     : open_action(&fa, 2, l->err, O_WRONLY | O_CREAT | O_TRUNC);
	if (!rc && l->cwd)
		rc = posix_spawn_file_actions_addchdir_np(&fa, l->cwd);
	if (!rc) {
		/* posix_spawnp searches the PATH of the job's environment */
		char **saved = environ;
		environ = l->envp;
		rc = posix_spawnp(pid, l->argv[0], &fa, &at, l->argv, l->envp);
		environ = saved;
	}
	posix_spawn_file_actions_destroy(&fa);
	posix_spawnattr_destroy(&at);
	return rc;
}

static int redirect(const char *path, int flags, int fd)
{
	int f = open(path, flags, 0644);

	if (f < 0)
		return -1;
	if (f != fd && (dup2(f, fd) < 0 || close(f) < 0))
		return -1;
	return 0;
}

/*
 * With a memory limit: fork, limit the child alone, exec. Only
 * async-signal-safe calls run in the child; its exec error comes back
 * through a close-on-exec pipe.
 */
static int spawn_limited(const struct launch *l, pid_t *pid)
{
	struct rlimit rl = {.rlim_cur = (rlim_t)l->memory_mb << 20,
			    .rlim_max = (rlim_t)l->memory_mb << 20};
	struct sigaction dfl = {.sa_handler = SIG_DFL};
	int p[2], e = 0;
	sigset_t none;
	ssize_t n;
	pid_t c;

	sigemptyset(&none);
	if (pipe2(p, O_CLOEXEC) < 0)
		return errno;
	c = fork();
	if (c < 0) {
		e = errno;
		close(p[0]);
		close(p[1]);
		return e;
	}
	if (c == 0) {
		for (int sig = 1; sig < NSIG; sig++)
			sigaction(sig, &dfl, NULL);
		if (setpgid(0, 0) < 0 || redirect(l->in, O_RDONLY, 0) < 0 ||
		    redirect(l->out, O_WRONLY | O_CREAT | O_TRUNC, 1) < 0 ||
		    (l->join ? dup2(1, 2) < 0
			     : redirect(l->err, O_WRONLY | O_CREAT | O_TRUNC, 2) < 0) ||
		    (l->cwd && chdir(l->cwd) < 0) || setrlimit(RLIMIT_AS, &rl) < 0 ||
		    sigprocmask(SIG_SETMASK, &none, NULL) < 0)
			goto fail;
		execvpe(l->argv[0], l->argv, l->envp);
	fail:
		e = errno;
		if (write(p[1], &e, sizeof(e)) < 0)
			_exit(127);
		_exit(127);
	}
	close(p[1]);
	while ((n = read(p[0], &e, sizeof(e))) < 0 && errno == EINTR)
		;
	close(p[0]);
	if (n == (ssize_t)sizeof(e)) { /* the exec failed: the child is gone */
		while (waitpid(c, NULL, 0) < 0 && errno == EINTR)
			;
		return e;
	}
	*pid = c;
	return 0;
}

static int spawn_job(const char *dir, json_t *spec, pid_t *pid)
{
	json_t *argvj = json_object_get(spec, "argv");
	size_t argc = json_array_size(argvj);
	const char *in = json_string_value(json_object_get(spec, "stdin_path"));
	const char *out = json_string_value(json_object_get(spec, "stdout_path"));
	const char *err = json_string_value(json_object_get(spec, "stderr_path"));
	char dout[4096], derr[4096];
	struct launch l = {
	    .argv = calloc(argc + 1, sizeof(char *)),
	    .envp = job_env(spec),
	    .cwd = json_string_value(json_object_get(spec, "working_directory")),
	    .join = json_is_true(json_object_get(spec, "join_stderrout")),
	    .memory_mb = json_integer_value(json_object_get(spec, "memory_mb")),
	};
	int rc;

	if (!l.argv || !l.envp) {
		free(l.argv);
		free(l.envp);
		return ENOMEM;
	}
	for (size_t i = 0; i < argc; i++)
		l.argv[i] = (char *)json_string_value(json_array_get(argvj, i));
	snprintf(dout, sizeof(dout), "%s/stdout", dir);
	snprintf(derr, sizeof(derr), "%s/stderr", dir);
	l.in = in ? in : "/dev/null";
	l.out = out ? out : dout;
	l.err = err ? err : derr;
	rc = l.memory_mb > 0 ? spawn_limited(&l, pid) : spawn_fast(&l, pid);
	free(l.argv);
	free(l.envp);
	return rc;
}

/* What a result file records of one run. */
struct rjob {
	int64_t id;
	pid_t pid; /* also the job's process group */
	char *dir;
	int killed, walltime;
	double deadline, kill_at; /* monotonic; <0: none */
	double start;
	struct rjob *next;
};

struct runner {
	int lfd, sfd;
	struct chan eng; /* the engine's connection; fd -1 when none */
	struct rjob *jobs;
	char owner[64]; /* claim content: this runner's pid and start time */
};

static void runner_send(struct runner *r, json_t *m)
{
	if (r->eng.fd >= 0 && ferry__chan_queue(&r->eng, m) == 0 && ferry__chan_flush(&r->eng) < 0)
		ferry__chan_close(&r->eng); /* results are in files: a new engine reads them */
	json_decref(m);
}

static void runner_ended(struct runner *r, int64_t id)
{
	runner_send(r, json_pack("{s:s,s:I}", "op", "ended", "id", (json_int_t)id));
}

/* The job cannot start: the engine ends it with this message. */
static void runner_refuse(struct runner *r, int64_t id, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void runner_refuse(struct runner *r, int64_t id, const char *fmt, ...)
{
	char msg[600];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	runner_send(
	    r, json_pack("{s:s,s:I,s:s}", "op", "refused", "id", (json_int_t)id, "message", msg));
}

static void runner_start(struct runner *r, json_t *m)
{
	int64_t id = json_integer_value(json_object_get(m, "id"));
	const char *dir = json_string_value(json_object_get(m, "dir"));
	json_t *spec = json_object_get(m, "spec");
	struct outcome o = {0};
	struct rjob *j;
	int64_t wall;
	int rc;

	if (id <= 0 || !dir || !json_is_object(spec))
		return;
	if (mkdir(dir, 0700) < 0 && errno != EEXIST) {
		runner_refuse(r, id, "cannot create the job directory '%s': %s", dir,
			      strerror(errno));
		return;
	}
	rc = claim_job(dir, r->owner);
	if (rc < 0) {
		runner_refuse(r, id, "cannot claim the job in '%s': %s%s", dir, strerror(-rc),
			      rc == -EEXIST ? " (a stale job directory?)" : "");
		return;
	}
	j = calloc(1, sizeof(*j));
	if (!j || !(j->dir = strdup(dir))) {
		free(j);
		o.spawn_errno = ENOMEM;
		goto failed;
	}
	o.start = ferry__now();
	o.spawn_errno = spawn_job(dir, spec, &j->pid);
	if (o.spawn_errno) {
		free(j->dir);
		free(j);
		goto failed;
	}
	j->id = id;
	j->start = o.start;
	wall = json_integer_value(json_object_get(spec, "walltime_s"));
	j->deadline = wall > 0 ? ferry__mono() + (double)wall : -1;
	j->kill_at = -1;
	j->next = r->jobs;
	r->jobs = j;
	runner_send(r, json_pack("{s:s,s:I,s:i}", "op", "started", "id", (json_int_t)id, "pid",
				 (int)j->pid));
	return;
failed:
	o.end = ferry__now();
	write_result(dir, &o, json_string_value(json_array_get(json_object_get(spec, "argv"), 0)));
	runner_ended(r, id);
}

static struct rjob *rjob_find(struct runner *r, int64_t id)
{
	for (struct rjob *j = r->jobs; j; j = j->next)
		if (j->id == id)
			return j;
	return NULL;
}

static void terminate(struct rjob *j)
{
	kill(-j->pid, SIGTERM);
	kill(-j->pid, SIGCONT); /* a stopped job must run to die */
	j->kill_at = ferry__mono() + KILL_GRACE_S;
}

static void runner_signal(struct runner *r, json_t *m)
{
	struct rjob *j = rjob_find(r, json_integer_value(json_object_get(m, "id")));
	const char *action = json_string_value(json_object_get(m, "action"));

	if (!j || !action)
		return; /* ended meanwhile: its end is on its way */
	if (!strcmp(action, "suspend")) {
		kill(-j->pid, SIGSTOP);
	} else if (!strcmp(action, "resume")) {
		kill(-j->pid, SIGCONT);
	} else if (!strcmp(action, "terminate") && !j->killed) {
		j->killed = 1;
		terminate(j);
	}
}

static void runner_list(struct runner *r)
{
	json_t *ids = json_array(), *pids = json_array();

	for (struct rjob *j = r->jobs; j; j = j->next) {
		json_array_append_new(ids, json_integer(j->id));
		json_array_append_new(pids, json_integer(j->pid));
	}
	runner_send(r, json_pack("{s:s,s:o,s:o}", "op", "list", "ids", ids, "pids", pids));
}

static void runner_read(struct runner *r)
{
	json_t *m;
	int bad;

	if (ferry__chan_fill(&r->eng) < 0) {
		ferry__chan_close(&r->eng);
		return;
	}
	while ((m = ferry__chan_next(&r->eng, &bad))) {
		const char *op = json_string_value(json_object_get(m, "op"));
		if (op && !strcmp(op, "start"))
			runner_start(r, m);
		else if (op && !strcmp(op, "signal"))
			runner_signal(r, m);
		else if (op && !strcmp(op, "list"))
			runner_list(r);
		json_decref(m);
	}
	if (bad)
		ferry__chan_close(&r->eng);
}

/* Collects every child that ended; records the jobs among them. */
static void runner_reap(struct runner *r)
{
	struct signalfd_siginfo si;
	struct outcome o;
	pid_t pid;

	while (read(r->sfd, &si, sizeof(si)) == sizeof(si))
		;
	for (;;) {
		memset(&o, 0, sizeof(o));
		pid = wait4(-1, &o.status, WNOHANG, &o.ru);
		if (pid <= 0)
			break;
		for (struct rjob **p = &r->jobs; *p; p = &(*p)->next) {
			struct rjob *j = *p;
			if (j->pid != pid)
				continue;
			o.waited = 1;
			o.killed = j->killed;
			o.walltime = j->walltime;
			o.start = j->start;
			o.end = ferry__now();
			if (j->killed || j->walltime)
				kill(-j->pid, SIGKILL); /* what the job left in its group */
			write_result(j->dir, &o, "");
			runner_ended(r, j->id);
			*p = j->next;
			free(j->dir);
			free(j);
			break;
		}
	}
}

/* Walltimes and kill grace periods; returns the poll timeout in ms. */
static int runner_timers(struct runner *r)
{
	double now = ferry__mono(), next = -1;

	for (struct rjob *j = r->jobs; j; j = j->next) {
		if (j->deadline >= 0 && now >= j->deadline && !j->walltime && !j->killed) {
			j->walltime = 1;
			terminate(j);
		}
		if (j->kill_at >= 0 && now >= j->kill_at) {
			kill(-j->pid, SIGKILL);
			j->kill_at = -1;
		}
		if (j->deadline >= 0 && !j->walltime && !j->killed &&
		    (next < 0 || j->deadline < next))
			next = j->deadline;
		if (j->kill_at >= 0 && (next < 0 || j->kill_at < next))
			next = j->kill_at;
	}
	return next < 0 ? -1 : (int)((next - now) * 1000) + 1;
}

static void runner_accept(struct runner *r, double *first)
{
	int fd = accept4(r->lfd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
	struct ucred cred;
	socklen_t cl = sizeof(cred);

	if (fd < 0)
		return;
	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &cl) < 0 || cred.uid != geteuid()) {
		close(fd);
		return;
	}
	ferry__chan_close(&r->eng); /* a new engine replaces the old one */
	r->eng.fd = fd;
	*first = 0;
}

/*
 * The runner's life. It ignores the signals that stop engines (it is the
 * jobs' supervisor, not a daemon of its own) and exits once no engine is
 * connected and no job runs.
 */
void ferry__runner_main(int lfd, const char *log)
{
	struct runner r = {.lfd = lfd, .eng = {.fd = -1}};
	struct sigaction dfl = {.sa_handler = SIG_DFL};
	int null = open("/dev/null", O_RDWR | O_CLOEXEC), logfd;
	sigset_t set;

	setsid();
	prctl(PR_SET_NAME, "ferry-runner");
	prctl(PR_SET_CHILD_SUBREAPER, 1); /* orphans of the jobs come to us */
	logfd = open(log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
	dup2(null, 0);
	dup2(null, 1);
	dup2(logfd >= 0 ? logfd : null, 2);
	if (dup2(lfd, 3) < 0)
		_exit(1);
	r.lfd = 3;
	syscall(SYS_close_range, 4U, ~0U, 0U);
	fcntl(3, F_SETFD, FD_CLOEXEC);
	sigaction(SIGCHLD, &dfl, NULL); /* undo the engine's SA_NOCLDWAIT */
	signal(SIGPIPE, SIG_IGN);
	sigemptyset(&set);
	sigaddset(&set, SIGCHLD);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGHUP);
	sigaddset(&set, SIGUSR1);
	sigaddset(&set, SIGUSR2);
	sigprocmask(SIG_SETMASK, &set, NULL);
	sigemptyset(&set);
	sigaddset(&set, SIGCHLD);
	r.sfd = signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC);
	snprintf(r.owner, sizeof(r.owner), "%d %llu\n", (int)getpid(),
		 proc_start_time(getpid(), NULL));
	/* the engine that started us connects right after the fork */
	double first_until = ferry__mono() + 10;
	while (r.sfd >= 0 && (r.eng.fd >= 0 || r.jobs || first_until > 0)) {
		struct pollfd p[3] = {
		    {r.lfd, POLLIN, 0}, {r.sfd, POLLIN, 0}, {r.eng.fd, POLLIN, 0}};
		int timeout = runner_timers(&r);
		if (first_until > 0 && ferry__mono() > first_until)
			first_until = 0;
		if (first_until > 0 && (timeout < 0 || timeout > 1000))
			timeout = 1000;
		if (r.eng.outlen)
			p[2].events |= POLLOUT;
		if (poll(p, r.eng.fd >= 0 ? 3 : 2, timeout) < 0 && errno != EINTR)
			break;
		if (p[1].revents)
			runner_reap(&r);
		if (r.eng.fd >= 0 && (p[2].revents & (POLLIN | POLLHUP | POLLERR)))
			runner_read(&r);
		if (r.eng.fd >= 0 && (p[2].revents & POLLOUT) && ferry__chan_flush(&r.eng) < 0)
			ferry__chan_close(&r.eng);
		if (p[0].revents)
			runner_accept(&r, &first_until);
	}
	_exit(0);
}
