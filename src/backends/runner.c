/*
 * runner.c - the local backend's job runner: one long-lived process per
 * engine that starts and watches every job (local.c is the engine's side).
 *
 * It is ferryd itself run by the engine as a fresh image (`ferryd
 * --runner`: nothing of the engine's memory is shared), lives in its
 * own session as the child subreaper of the jobs, and outlives the engine:
 * a job and its result survive an engine crash, and a new engine finds the
 * runner again through its socket. Per job the runner claims the job (so
 * that no job ever runs twice), vforks it from a spawner thread into a
 * session of its own (and its own cgroup where it may: jobprocs.c), lets
 * the child open the job's files and change directory (so a FIFO or a
 * hung mount stalls that job and its spawner thread alone, and a kill
 * still reaches it), relays the engine's controls to
 * every process of the job, enforces the walltime, kills what the job
 * leaves behind, and writes the exit status and rusage atomically into
 * the job directory before telling the engine.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
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
#include "jbytes.h"
#include "jobprocs.h"
#include "runner.h"
#include "proto.h"
#include "util.h"

#define KILL_GRACE_S  5
#define DRAIN_S	      60   /* how long a killed job's cgroup may take to empty */
#define DRAIN_POLL_S  0.02 /* how often its removal is tried meanwhile */
#define SPAWNER_STACK (256 << 10)

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

/* How a job went; a failed setup step names what the job never became. */
struct outcome {
	int status; /* wait status, valid when waited */
	int waited;
	int setup_step, setup_errno; /* the step that failed, 0 when none */
	const char *subject;	     /* what that step worked on */
	int killed, walltime;
	struct rusage ru;
	double start, end;
};

/* The steps that turn the runner's child into the job, in their order. */
enum setup_step {
	STEP_NONE,
	STEP_SESSION,
	STEP_STDIN,
	STEP_STDOUT,
	STEP_STDERR,
	STEP_CWD,
	STEP_LIMIT,
	STEP_EXEC,
	STEP_OTHER, /* the runner's own part: the fork, a pipe, memory */
	/* not failures: what the child says before its steps */
	STEP_PID = 100, /* its pid */
	STEP_NOCG,	/* it could not join its cgroup (errno) */
};

/* Their names in the result file (local.c turns them into messages). */
static const char *const step_names[] = {"",	"session", "stdin", "stdout", "stderr",
					 "cwd", "limit",   "exec",  "other"};

static void write_result(const char *dir, const struct outcome *o)
{
	char path[4096], buf[6144];
	int n;

	n = snprintf(buf, sizeof(buf),
		     "exited=%d\ncode=%d\nsignal=%d\nspawn_errno=%d\nkilled=%d\nwalltime=%d\n"
		     "user=%.6f\nsys=%.6f\nmaxrss=%ld\nstart=%.6f\nend=%.6f\n",
		     o->waited && WIFEXITED(o->status), o->waited ? WEXITSTATUS(o->status) : 0,
		     o->waited && WIFSIGNALED(o->status) ? WTERMSIG(o->status) : 0, o->setup_errno,
		     o->killed, o->walltime,
		     (double)o->ru.ru_utime.tv_sec + o->ru.ru_utime.tv_usec / 1e6,
		     (double)o->ru.ru_stime.tv_sec + o->ru.ru_stime.tv_usec / 1e6, o->ru.ru_maxrss,
		     o->start, o->end);
	/* the subject last: it runs to the end of the file, newlines and all */
	if (o->setup_errno && n > 0 && (size_t)n < sizeof(buf))
		snprintf(buf + n, sizeof(buf) - (size_t)n, "setup=%s\nsubject=%.4096s\n",
			 step_names[o->setup_step], o->subject ? o->subject : "");
	snprintf(path, sizeof(path), "%s/result", dir);
	/* no fsync: a machine crash kills the job too, so its result goes anyway */
	ferry__write_file_atomic(path, buf, strlen(buf), 0);
}

/* Entry s ("NAME=value") set in v[0..*k), over one of the same name. */
static void env_set(char **v, size_t *k, const char *s)
{
	size_t nl = (size_t)(strchr(s, '=') - s), m;

	for (m = 0; m < *k; m++)
		if (!strncmp(v[m], s, nl + 1))
			break;
	v[m] = (char *)s;
	if (m == *k)
		(*k)++;
}

/*
 * The job's environment: the engine's, then the entries of the
 * submitter's environment (the spec's base_env, as runner_start put it),
 * then the spec's env, then mark (FERRY_JOB_ID=id), which finds the
 * job's orphans in /proc.
 */
static char **job_env(json_t *spec, char *mark)
{
	json_t *env = json_object_get(spec, "env"), *base = json_object_get(spec, "base_env");
	size_t n = ferry__strv_len(environ), nb = json_array_size(base), ne = json_array_size(env);
	size_t i, k = 0;
	char **v = calloc(n + nb + ne + 2, sizeof(*v));

	if (!v)
		return NULL;
	for (i = 0; i < n; i++)
		v[k++] = environ[i];
	for (i = 0; i < nb; i++)
		env_set(v, &k, json_string_value(json_array_get(base, i)));
	for (i = 0; i < ne; i++)
		env_set(v, &k, json_string_value(json_array_get(env, i)));
	env_set(v, &k, mark);
	v[k] = NULL;
	return v;
}

/* What the job's process is made of, prepared before the vfork. */
struct launch {
	char **argv, **envp;
	char **shargv; /* /bin/sh's, for a script without "#!" (ENOEXEC) */
	const char *in, *out, *err, *cwd;
	const char *path; /* the job's PATH: where a command without '/' is searched */
	int join;
	int64_t memory_mb;
	int report;	/* write end of the setup pipe */
	int cgprocs;	/* the job cgroup's cgroup.procs, -1 when none */
	int maxfd;	/* the highest descriptor the runner may hold (close_fds) */
	int set_nofile; /* the job's descriptor limit is nofile, not the runner's */
	struct rlimit nofile;
};

/* The job's files as the spec says, or their defaults in its directory. */
static void job_files(const char *dir, json_t *spec, struct launch *l, char dout[4096],
		      char derr[4096])
{
	const char *in = json_string_value(json_object_get(spec, "stdin_path"));
	const char *out = json_string_value(json_object_get(spec, "stdout_path"));
	const char *err = json_string_value(json_object_get(spec, "stderr_path"));

	snprintf(dout, 4096, "%s/stdout", dir);
	snprintf(derr, 4096, "%s/stderr", dir);
	l->in = in ? in : "/dev/null";
	l->out = out ? out : dout;
	l->err = err ? err : derr;
	l->cwd = json_string_value(json_object_get(spec, "working_directory"));
	l->join = json_is_true(json_object_get(spec, "join_stderrout"));
	l->memory_mb = json_integer_value(json_object_get(spec, "memory_mb"));
}

/* The highest descriptor this process can have open (its soft limit - 1). */
static int max_fd(void)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) < 0 || rl.rlim_cur == RLIM_INFINITY ||
	    rl.rlim_cur > (1u << 20))
		return (1 << 20) - 1;
	return (int)rl.rlim_cur - 1;
}

/*
 * In the child: closes lo..hi. close_range(2) needs Linux 5.9 and may be
 * refused by a seccomp profile; then one close() at a time up to what the
 * runner can hold, so that a child stuck in its setup (a FIFO) never keeps
 * the runner's sockets open. Async-signal-safe either way.
 */
static void close_fds(unsigned lo, unsigned hi, int maxfd)
{
	if (syscall(SYS_close_range, lo, hi, 0U) == 0)
		return;
	for (long fd = lo; fd <= (long)hi && fd <= maxfd; fd++)
		close((int)fd);
}

/* In the child: tells the runner something (a step and errno, its pid). */
static void child_say(const struct launch *l, int what, int value)
{
	int msg[2] = {what, value};

	if (write(l->report, msg, sizeof(msg)) < 0)
		return; /* the runner reads it at the reaping, or knows nothing */
}

/* In the child: tells the runner which step failed (and errno), and leaves. */
static void child_fail(const struct launch *l, int step) __attribute__((noreturn));
static void child_fail(const struct launch *l, int step)
{
	child_say(l, step, errno);
	_exit(127);
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
 * The child, between the vfork and the exec: only async-signal-safe calls,
 * and no write to memory but its own stack, errno (its spawner thread's,
 * which waits) and, for a script without "#!", the /bin/sh argv made for it.
 * Signals come first, so that a kill or a walltime ends a job stuck in a
 * step (opening a FIFO, a chdir on a hung mount); then a session of its
 * own (its process group too), its files, its directory, its limit.
 */
static void child(const struct launch *l) __attribute__((noreturn));
static void child(const struct launch *l)
{
	struct rlimit rl = {.rlim_cur = (rlim_t)l->memory_mb << 20,
			    .rlim_max = (rlim_t)l->memory_mb << 20};
	struct sigaction dfl = {.sa_handler = SIG_DFL};
	sigset_t none;

	/* into its cgroup before anything runs, then the pid: kill can reach it */
	if (l->cgprocs >= 0 && write(l->cgprocs, "0", 1) != 1)
		child_say(l, STEP_NOCG, errno);
	child_say(l, STEP_PID, (int)getpid());
	/* other spawns' pipes, copied by the vfork: their EOF must not wait for us */
	if (l->report > 3)
		close_fds(3U, (unsigned)l->report - 1, l->maxfd);
	close_fds((unsigned)l->report + 1, ~0U, l->maxfd);
	for (int sig = 1; sig < NSIG; sig++)
		sigaction(sig, &dfl, NULL);
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	if (setsid() < 0)
		child_fail(l, STEP_SESSION);
	if (redirect(l->in, O_RDONLY, 0) < 0)
		child_fail(l, STEP_STDIN);
	if (redirect(l->out, O_WRONLY | O_CREAT | O_TRUNC, 1) < 0)
		child_fail(l, STEP_STDOUT);
	if (l->join ? dup2(1, 2) < 0 : redirect(l->err, O_WRONLY | O_CREAT | O_TRUNC, 2) < 0)
		child_fail(l, STEP_STDERR);
	if (l->cwd && chdir(l->cwd) < 0)
		child_fail(l, STEP_CWD);
	if (l->memory_mb > 0 && setrlimit(RLIMIT_AS, &rl) < 0)
		child_fail(l, STEP_LIMIT);
	/* a soft limit lowered below the hard one cannot fail */
	if (l->set_nofile)
		setrlimit(RLIMIT_NOFILE, &l->nofile);
	ferry__exec_search(l->argv, l->envp, l->path, l->shargv);
	child_fail(l, STEP_EXEC);
}

/* A job the runner watches. */
struct rjob {
	int64_t id;
	pid_t pid; /* also the job's session and process group */
	char *dir;
	int killed, walltime;
	double deadline, kill_at; /* monotonic; <0: none */
	double start;
	int setup_fd;		     /* the setup pipe until the exec, -1 after */
	int setup_step, setup_errno; /* what the child reported failing */
	json_t *spec;		     /* until the exec: names a failed step's subject */
	struct jobprocs procs;
	struct rjob *next;
};

/* A job cgroup whose killed processes are still dying. */
struct drain {
	struct jobprocs procs;
	double until; /* monotonic: then it is left behind */
	struct drain *next;
};

struct runner {
	int lfd, sfd;
	struct chan eng; /* the engine's connection; fd -1 when none */
	int eng_gone;	 /* it refused a write: its input is read to its end, then closed */
	struct rjob *jobs;
	struct drain *drains;
	struct jobprocs_base procs;
	struct pollfd *pfd; /* the poll set: listener, signals, engine, setup pipes */
	size_t pfdcap;
	unsigned long long job_nofile; /* the jobs' soft RLIMIT_NOFILE; 0: the runner's */
	char owner[64];		       /* claim content: this runner's pid and start time */
};

/* The job's PATH, or execvp's default. */
static const char *env_path(char **envp)
{
	for (; *envp; envp++)
		if (!strncmp(*envp, "PATH=", 5))
			return *envp + 5;
	return "/bin:/usr/bin";
}

/* A start in progress: what the child needs, owned by its spawner thread. */
struct spawn {
	struct launch l;
	char dout[4096], derr[4096], mark[64];
};

static void spawn_free(struct spawn *s)
{
	if (s->l.report >= 0)
		close(s->l.report);
	if (s->l.cgprocs >= 0)
		close(s->l.cgprocs);
	free(s->l.argv);
	free(s->l.shargv);
	free(s->l.envp);
	free(s);
}

/* vfork in a function of its own: the child never returns from it. */
static pid_t __attribute__((noinline)) vfork_child(const struct launch *l)
{
	pid_t pid = vfork();

	if (pid == 0)
		child(l);
	return pid;
}

/*
 * A spawner thread: vfork (no copy of the runner's memory) suspends this
 * thread alone until the child execs or exits, however long its setup
 * takes; the runner's loop goes on, and learns the child's pid, a failed
 * step, or the exec (EOF) through the setup pipe.
 */
static void *spawner(void *arg)
{
	struct spawn *s = arg;

	if (vfork_child(&s->l) < 0)
		child_say(&s->l, STEP_OTHER, errno);
	spawn_free(s);
	return NULL;
}

/*
 * The descriptor limit the job gets: the soft limit ferryd started with,
 * below the raised one the runner keeps (it holds a setup pipe, and a
 * cgroup per job, for each job at once).
 */
static void job_nofile(const struct runner *r, struct launch *l)
{
	l->set_nofile = r->job_nofile && getrlimit(RLIMIT_NOFILE, &l->nofile) == 0 &&
			l->nofile.rlim_cur > r->job_nofile;
	if (l->set_nofile)
		l->nofile.rlim_cur = (rlim_t)r->job_nofile;
}

/* Makes the job's cgroup, and the fd its child joins it through. */
static int job_cgroup(struct runner *r, struct rjob *j)
{
	int rc = ferry__jobprocs_new(&r->procs, j->id, &j->procs), fd = -1;

	if (j->procs.cgfd >= 0 &&
	    (fd = openat(j->procs.cgfd, "cgroup.procs", O_WRONLY | O_CLOEXEC)) < 0) {
		rc = -errno;
		ferry__jobprocs_uncgroup(&j->procs);
	}
	if (rc < 0)
		fprintf(stderr, "ferry-runner %d: job %lld: no cgroup, tracked by /proc: %s\n",
			(int)getpid(), (long long)j->id, strerror(-rc));
	return fd;
}

/*
 * Starts the job's process and returns at once: its setup (files,
 * directory) runs in the child, so a FIFO or a hung mount stalls that
 * job alone. 0, or the errno of the runner's own part.
 */
static int spawn_job(struct runner *r, struct rjob *j, json_t *spec)
{
	json_t *argvj = json_object_get(spec, "argv");
	size_t argc = json_array_size(argvj);
	struct spawn *s = calloc(1, sizeof(*s));
	int p[2] = {-1, -1}, e = ENOMEM;
	pthread_attr_t at;
	pthread_t t;

	if (!s)
		return ENOMEM;
	s->l.report = s->l.cgprocs = -1;
	snprintf(s->mark, sizeof(s->mark), "%s=%lld", FERRY_JOB_ID_ENV, (long long)j->id);
	s->l.argv = calloc(argc + 1, sizeof(char *));
	s->l.envp = job_env(spec, s->mark);
	if (!s->l.argv || !s->l.envp || (pipe2(p, O_CLOEXEC) < 0 && (e = errno)))
		goto fail;
	s->l.report = p[1];
	for (size_t i = 0; i < argc; i++)
		s->l.argv[i] = (char *)json_string_value(json_array_get(argvj, i));
	if (!(s->l.shargv = ferry__sh_argv(s->l.argv)))
		goto fail;
	job_files(j->dir, spec, &s->l, s->dout, s->derr);
	s->l.path = env_path(s->l.envp);
	s->l.cgprocs = job_cgroup(r, j);
	s->l.maxfd = max_fd();
	job_nofile(r, &s->l);
	pthread_attr_init(&at);
	pthread_attr_setdetachstate(&at, PTHREAD_CREATE_DETACHED);
	pthread_attr_setstacksize(&at, SPAWNER_STACK);
	e = pthread_create(&t, &at, spawner, s);
	pthread_attr_destroy(&at);
	if (e)
		goto fail;
	j->setup_fd = p[0];
	fcntl(j->setup_fd, F_SETFL, O_NONBLOCK);
	j->spec = json_incref(spec); /* the child reads its strings until its exec */
	return 0;
fail:
	if (p[0] >= 0)
		close(p[0]);
	spawn_free(s);
	return e;
}

/*
 * Results are in files, so what a gone engine misses a new one reads
 * there. Its connection is not closed here: the starts it sent before
 * going are still to be read (runner_read).
 */
static void runner_send(struct runner *r, json_t *m)
{
	if (r->eng.fd >= 0 && !r->eng_gone && ferry__chan_queue(&r->eng, m) == 0 &&
	    ferry__chan_flush(&r->eng) < 0)
		r->eng_gone = 1;
	json_decref(m);
}

static void engine_close(struct runner *r)
{
	ferry__chan_close(&r->eng);
	r->eng_gone = 0;
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
	runner_send(r, json_pack("{s:s,s:I,s:o}", "op", "refused", "id", (json_int_t)id, "message",
				 ferry__json_bytes(msg)));
}

static void rjob_free(struct rjob *j)
{
	if (j->setup_fd >= 0)
		close(j->setup_fd);
	json_decref(j->spec);
	ferry__jobprocs_free(&j->procs);
	free(j->dir);
	free(j);
}

static void runner_start(struct runner *r, json_t *m)
{
	int64_t id = json_integer_value(json_object_get(m, "id"));
	const char *dir = json_string_value(json_object_get(m, "dir"));
	json_t *spec = json_object_get(m, "spec"), *base = json_object_get(m, "base_env");
	struct outcome o = {.setup_step = STEP_OTHER};
	struct rjob *j;
	int64_t wall;
	int rc;

	if (id <= 0 || !dir || !json_is_object(spec))
		return;
	/* the entries in place of the engine's number for them: kept as long as the spec */
	if (json_is_array(base))
		json_object_set(spec, "base_env", base);
	else
		json_object_del(spec, "base_env");
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
	o.start = ferry__now();
	j = calloc(1, sizeof(*j));
	if (j) {
		j->id = id;
		j->setup_fd = j->procs.cgfd = -1;
		j->dir = strdup(dir);
	}
	o.setup_errno = !j || !j->dir ? ENOMEM : spawn_job(r, j, spec);
	if (o.setup_errno) {
		if (j)
			ferry__jobprocs_uncgroup(&j->procs);
		o.end = ferry__now();
		write_result(dir, &o);
		runner_ended(r, id);
		if (j)
			rjob_free(j);
		return;
	}
	j->start = o.start;
	wall = json_integer_value(json_object_get(spec, "walltime_s"));
	j->deadline = wall > 0 ? ferry__mono() + (double)wall : -1;
	j->kill_at = -1;
	j->next = r->jobs;
	r->jobs = j;
	/* "started" goes once the child says its pid (setup_read) */
}

static struct rjob *rjob_find(struct runner *r, int64_t id)
{
	for (struct rjob *j = r->jobs; j; j = j->next)
		if (j->id == id)
			return j;
	return NULL;
}

/* SIGTERM to all of the job (and SIGCONT: a stopped job must run to die). */
static void terminate(struct runner *r, struct rjob *j)
{
	ferry__jobprocs_signal(&r->procs, &j->procs, SIGTERM);
	ferry__jobprocs_signal(&r->procs, &j->procs, SIGCONT);
	j->kill_at = ferry__mono() + KILL_GRACE_S;
}

static void runner_signal(struct runner *r, json_t *m)
{
	struct rjob *j = rjob_find(r, json_integer_value(json_object_get(m, "id")));
	const char *action = json_string_value(json_object_get(m, "action"));

	if (!j || !action)
		return; /* ended meanwhile: its end is on its way */
	if (!strcmp(action, "suspend")) {
		ferry__jobprocs_signal(&r->procs, &j->procs, SIGSTOP);
	} else if (!strcmp(action, "resume")) {
		ferry__jobprocs_signal(&r->procs, &j->procs, SIGCONT);
	} else if (!strcmp(action, "terminate") && !j->killed) {
		j->killed = 1;
		terminate(r, j);
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

/*
 * Reads what the engine sent. The messages that came with its end of
 * file count: an engine stopped right after handing over a start (while
 * a fresh runner was still starting) has the job "running", and the job
 * must run.
 */
static void runner_read(struct runner *r)
{
	int eof = ferry__chan_fill(&r->eng) < 0, bad = 0;
	json_t *m;

	while (!bad && (m = ferry__chan_next(&r->eng, &bad))) {
		const char *op = json_string_value(json_object_get(m, "op"));
		if (op && !strcmp(op, "start"))
			runner_start(r, m);
		else if (op && !strcmp(op, "signal"))
			runner_signal(r, m);
		else if (op && !strcmp(op, "list"))
			runner_list(r);
		json_decref(m);
	}
	if (eof || bad || r->eng_gone)
		engine_close(r);
}

static void terminate(struct runner *r, struct rjob *j);

/* The child's pid: the job started, and a kill or walltime already due acts. */
static void setup_pid(struct runner *r, struct rjob *j, pid_t pid)
{
	j->pid = j->procs.pid = pid;
	runner_send(r, json_pack("{s:s,s:I,s:i}", "op", "started", "id", (json_int_t)j->id, "pid",
				 (int)pid));
	if (j->killed || j->walltime)
		terminate(r, j);
}

/*
 * What the child says of its setup: its pid, a cgroup it could not join,
 * the step that failed (then it exits), or EOF: it exec'd, the job runs.
 */
static void setup_read(struct runner *r, struct rjob *j)
{
	int msg[2];
	ssize_t n;

	while (j->setup_fd >= 0) {
		while ((n = read(j->setup_fd, msg, sizeof(msg))) < 0 && errno == EINTR)
			;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return;
		if (n == (ssize_t)sizeof(msg) && msg[0] == STEP_PID) {
			setup_pid(r, j, (pid_t)msg[1]);
		} else if (n == (ssize_t)sizeof(msg) && msg[0] == STEP_NOCG) {
			fprintf(stderr,
				"ferry-runner %d: job %lld cannot join its cgroup '%s' (%s): job "
				"processes tracked by /proc from now on\n",
				(int)getpid(), (long long)j->id, j->procs.cgpath, strerror(msg[1]));
			ferry__jobprocs_uncgroup(&j->procs);
			free(r->procs.cgroot);
			r->procs.cgroot = NULL;
		} else if (n == (ssize_t)sizeof(msg) && msg[0] > STEP_NONE &&
			   msg[0] <= STEP_OTHER) {
			j->setup_step = msg[0];
			j->setup_errno = msg[1] ? msg[1] : EIO;
		} else { /* EOF: the spawner and the child are done with its memory */
			if (!j->setup_step) {
				json_decref(j->spec); /* the job runs: no step to name */
				j->spec = NULL;
			}
			close(j->setup_fd);
			j->setup_fd = -1;
		}
	}
}

/* What the failed step worked on, for its message. */
static const char *step_subject(const struct rjob *j, char *buf, size_t len)
{
	char dout[4096], derr[4096];
	struct launch l = {0};

	job_files(j->dir, j->spec, &l, dout, derr);
	switch (j->setup_step) {
	case STEP_STDIN:
		return snprintf(buf, len, "%s", l.in) < 0 ? "" : buf;
	case STEP_STDOUT:
		return snprintf(buf, len, "%s", l.out) < 0 ? "" : buf;
	case STEP_STDERR:
		return snprintf(buf, len, "%s", l.err) < 0 ? "" : buf;
	case STEP_CWD:
		return l.cwd ? l.cwd : "";
	case STEP_LIMIT:
		snprintf(buf, len, "%lld MiB", (long long)l.memory_mb);
		return buf;
	case STEP_EXEC:
		return json_string_value(json_array_get(json_object_get(j->spec, "argv"), 0)) ?: "";
	default:
		return "";
	}
}

/*
 * The job's first process ended: whatever of the job remains is killed
 * (as Slurm's proctrack/cgroup does at a step's end: what a job leaves
 * behind would hold what its slots promised free), its result written,
 * the engine told.
 */
static void job_done(struct runner *r, struct rjob *j, struct outcome *o)
{
	char subject[4096];
	struct drain *d;

	setup_read(r, j);
	o->waited = !j->setup_step;
	o->setup_step = j->setup_step;
	o->setup_errno = j->setup_errno;
	o->subject = j->setup_step ? step_subject(j, subject, sizeof(subject)) : NULL;
	o->killed = j->killed;
	o->walltime = j->walltime;
	o->start = j->start;
	o->end = ferry__now();
	ferry__jobprocs_kill_all(&r->procs, &j->procs);
	write_result(j->dir, o);
	runner_ended(r, j->id);
	if (!ferry__jobprocs_gone(&j->procs) && (d = calloc(1, sizeof(*d)))) {
		d->procs = j->procs; /* removed once its processes are gone */
		j->procs.cgfd = -1;
		j->procs.cgpath = NULL;
		d->until = ferry__mono() + DRAIN_S;
		d->next = r->drains;
		r->drains = d;
	}
	rjob_free(j);
}

/* Ends the job whose first process pid was; 0 when none is. */
static int rjob_reaped(struct runner *r, pid_t pid, struct outcome *o)
{
	for (struct rjob **p = &r->jobs; *p; p = &(*p)->next) {
		struct rjob *j = *p;
		if (j->pid == pid) {
			*p = j->next;
			job_done(r, j, o);
			return 1;
		}
	}
	return 0;
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
		if (!rjob_reaped(r, pid, &o)) { /* its pid may still be in its pipe */
			for (struct rjob *j = r->jobs; j; j = j->next)
				if (!j->pid)
					setup_read(r, j);
			rjob_reaped(r, pid, &o);
		}
	}
}

/* Removes the job cgroups whose processes are gone; whether some remain. */
static int runner_drain(struct runner *r)
{
	double now = ferry__mono();

	for (struct drain **p = &r->drains; *p;) {
		struct drain *d = *p;
		if (ferry__jobprocs_gone(&d->procs) || now > d->until) {
			if (d->procs.cgpath)
				fprintf(stderr,
					"ferry-runner: cgroup '%s' still holds processes "
					"after SIGKILL; left behind\n",
					d->procs.cgpath);
			ferry__jobprocs_free(&d->procs);
			*p = d->next;
			free(d);
		} else {
			p = &d->next;
		}
	}
	return r->drains != NULL;
}

/* Walltimes and kill grace periods; returns the poll timeout in ms. */
static int runner_timers(struct runner *r)
{
	double now = ferry__mono(), next = -1;

	for (struct rjob *j = r->jobs; j; j = j->next) {
		if (j->deadline >= 0 && now >= j->deadline && !j->walltime && !j->killed) {
			j->walltime = 1;
			terminate(r, j);
		}
		if (j->kill_at >= 0 && now >= j->kill_at) {
			ferry__jobprocs_kill_all(&r->procs, &j->procs);
			j->kill_at = -1;
		}
		if (j->deadline >= 0 && !j->walltime && !j->killed &&
		    (next < 0 || j->deadline < next))
			next = j->deadline;
		if (j->kill_at >= 0 && (next < 0 || j->kill_at < next))
			next = j->kill_at;
	}
	if (runner_drain(r) && (next < 0 || next > now + DRAIN_POLL_S))
		next = now + DRAIN_POLL_S;
	return next < 0 ? -1 : (int)((next - now) * 1000) + 1;
}

/*
 * Waits for the next event: the listener, SIGCHLD, the engine, and each
 * job still in its setup (its pipe says how the setup ended). The number
 * of entries polled, or -1.
 */
static int runner_poll(struct runner *r, int timeout)
{
	size_t n = 3, i = 3;

	for (struct rjob *j = r->jobs; j; j = j->next)
		n += j->setup_fd >= 0;
	if (n > r->pfdcap) {
		struct pollfd *np = realloc(r->pfd, n * sizeof(*np));
		if (np) {
			r->pfd = np;
			r->pfdcap = n;
		} else if (r->pfdcap >= 3) {
			n = 3; /* the setups are read when their jobs are reaped */
		} else {
			return -1;
		}
	}
	r->pfd[0] = (struct pollfd){r->lfd, POLLIN, 0};
	r->pfd[1] = (struct pollfd){r->sfd, POLLIN, 0};
	r->pfd[2] = (struct pollfd){r->eng.fd, (short)(POLLIN | (r->eng.outlen ? POLLOUT : 0)), 0};
	for (struct rjob *j = r->jobs; j && i < n; j = j->next)
		if (j->setup_fd >= 0)
			r->pfd[i++] = (struct pollfd){j->setup_fd, POLLIN, 0};
	/* a negative fd (no engine) is ignored by poll */
	if (poll(r->pfd, n, timeout) < 0 && errno != EINTR)
		return -1;
	return (int)n;
}

/* The setups that said something: before the reaping, which closes fds polled. */
static void runner_setups(struct runner *r, int n)
{
	for (int i = 3; i < n; i++) {
		if (!r->pfd[i].revents)
			continue;
		for (struct rjob **p = &r->jobs; *p; p = &(*p)->next) {
			struct rjob *j = *p;
			struct outcome o = {0};
			if (j->setup_fd != r->pfd[i].fd)
				continue;
			setup_read(r, j);
			if (j->setup_fd < 0 && !j->pid) { /* no child: the vfork failed */
				*p = j->next;
				job_done(r, j, &o);
			}
			break;
		}
	}
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
	engine_close(r); /* a new engine replaces the old one */
	r->eng.fd = fd;
	*first = 0;
	/*
	 * first: whom to kill if it gives up on us (SO_PEERCRED names who
	 * listened), and what it does that an older runner did not (a newer
	 * engine may find this one after an upgrade: local.c). The test knob
	 * makes it say what a runner from before base_env said.
	 */
	runner_send(r, getenv("FERRYD_TEST_RUNNER_WITHOUT_CAPS")
			   ? json_pack("{s:s,s:i}", "op", "runner", "pid", (int)getpid())
			   : json_pack("{s:s,s:i,s:[s]}", "op", "runner", "pid", (int)getpid(),
				       "caps", "base_env"));
}

/*
 * The runner's life. It ignores the signals that stop engines (it is the
 * jobs' supervisor, not a daemon of its own) and exits once no engine is
 * connected and no job runs.
 */
void ferry__runner_main(int lfd, const char *log, unsigned long long job_nofile)
{
	struct runner r = {.lfd = lfd, .eng = {.fd = -1}, .job_nofile = job_nofile};
	struct sigaction dfl = {.sa_handler = SIG_DFL};
	char why[600];
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
	/*
	 * The engine listened before the fork: listening again makes the
	 * connections' SO_PEERCRED name this runner, whom an engine may have
	 * to kill when it stops answering (and so cannot say its pid).
	 */
	listen(3, 8);
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
	ferry__jobprocs_init(&r.procs, why, sizeof(why));
	fprintf(stderr, "ferry-runner %d: job processes tracked by %s\n", (int)getpid(), why);
	/* the engine that started us connects right after the spawn */
	double first_until = ferry__mono() + 10;
	while (r.sfd >= 0 && (r.eng.fd >= 0 || r.jobs || r.drains || first_until > 0)) {
		int timeout = runner_timers(&r), n;
		if (first_until > 0 && ferry__mono() > first_until)
			first_until = 0;
		if (first_until > 0 && (timeout < 0 || timeout > 1000))
			timeout = 1000;
		n = runner_poll(&r, timeout);
		if (n < 0)
			break;
		runner_setups(&r, n);
		if (r.pfd[1].revents)
			runner_reap(&r);
		/* a gone engine's last input is in the socket already */
		if (r.eng.fd >= 0 &&
		    (r.eng_gone || (r.pfd[2].revents & (POLLIN | POLLHUP | POLLERR))))
			runner_read(&r);
		if (r.eng.fd >= 0 && (r.pfd[2].revents & POLLOUT) && ferry__chan_flush(&r.eng) < 0)
			r.eng_gone = 1;
		if (r.pfd[0].revents)
			runner_accept(&r, &first_until);
	}
	_exit(0);
}

/* Whether fd is a listening unix stream socket, as the engine passes it. */
static int is_listening_unix(int fd)
{
	int domain = 0, type = 0, acc = 0;
	socklen_t len = sizeof(int);

	if (getsockopt(fd, SOL_SOCKET, SO_DOMAIN, &domain, &len) < 0 || domain != AF_UNIX)
		return 0;
	len = sizeof(int);
	if (getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &len) < 0 || type != SOCK_STREAM)
		return 0;
	len = sizeof(int);
	return getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &acc, &len) == 0 && acc;
}

int ferry__runner_cmd(int argc, char **argv)
{
	char *end, want[16];
	unsigned long long nofile;

	if (argc != 4 || strcmp(argv[0], "--runner")) {
		fprintf(stderr, "ferryd: '--runner' takes FD LOG NOFILE and is for the engine's "
				"own use\n");
		return 2;
	}
	errno = 0;
	nofile = strtoull(argv[3], &end, 10);
	snprintf(want, sizeof(want), "%d", RUNNER_FD);
	if (strcmp(argv[1], want) || !is_listening_unix(RUNNER_FD)) {
		fprintf(stderr, "ferryd: '--runner' needs a listening unix socket on fd %d\n",
			RUNNER_FD);
		return 2;
	}
	if (argv[2][0] != '/' || errno || *end || end == argv[3] || argv[3][0] == '-') {
		fprintf(stderr,
			"ferryd: '--runner' needs an absolute LOG and a number NOFILE "
			"(got '%s' and '%s')\n",
			argv[2], argv[3]);
		return 2;
	}
	ferry__runner_main(RUNNER_FD, argv[2], nofile);
}
