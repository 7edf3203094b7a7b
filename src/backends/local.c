/*
 * local.c - the local backend: jobs run on this machine, each under a
 * shepherd process.
 *
 * The shepherd is a fork of the engine that needs no exec of its own: it
 * claims the job (so that no job ever runs twice, even when an engine dies
 * between starting a job and recording it), spawns the command with
 * posix_spawn (vfork speed) in its own process group, relays controls from
 * the engine to that group, enforces the walltime, and writes the exit
 * status and rusage atomically into the job directory. It lives in its own
 * session, so the job and its result survive the engine.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/pidfd.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "engine.h"
#include "util.h"

#define KILL_GRACE_S 5

extern char **environ;

/* ---- the shepherd (runs in the forked child) ---- */

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

/* Writes the claim with link(2): exactly one shepherd can create it. */
static int claim_job(const char *dir)
{
	char tmp[4096], claim[4096], data[64];
	int fd, n, rc;

	snprintf(tmp, sizeof(tmp), "%s/claim.%d", dir, (int)getpid());
	snprintf(claim, sizeof(claim), "%s/claim", dir);
	n = snprintf(data, sizeof(data), "%d %llu\n", (int)getpid(),
		     proc_start_time(getpid(), NULL));
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0)
		return -errno;
	rc = ferry__write_all(fd, data, (size_t)n);
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

/* Waits for the job, relaying controls; fills o. */
static void supervise(pid_t child, int64_t walltime, struct outcome *o)
{
	sigset_t set;
	double deadline = walltime > 0 ? ferry__mono() + (double)walltime : -1, kill_at = -1;

	sigemptyset(&set);
	sigaddset(&set, SIGCHLD);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGUSR1);
	sigaddset(&set, SIGUSR2);
	for (;;) {
		double now = ferry__mono(), next = -1;
		struct timespec ts, *tp = NULL;
		int sig;

		if (deadline >= 0 && now >= deadline && !o->walltime && !o->killed) {
			o->walltime = 1;
			kill(-child, SIGTERM);
			kill(-child, SIGCONT);
			kill_at = now + KILL_GRACE_S;
		}
		if (kill_at >= 0 && now >= kill_at) {
			kill(-child, SIGKILL);
			kill_at = -1;
		}
		if (deadline >= 0 && !o->walltime && !o->killed)
			next = deadline;
		if (kill_at >= 0 && (next < 0 || kill_at < next))
			next = kill_at;
		if (next >= 0) {
			double d = next - now;
			ts.tv_sec = (time_t)d;
			ts.tv_nsec = (long)((d - (double)ts.tv_sec) * 1e9);
			tp = &ts;
		}
		sig = sigtimedwait(&set, NULL, tp);
		if (sig == SIGCHLD || sig < 0) {
			pid_t w = wait4(child, &o->status, WNOHANG, &o->ru);
			if (w == child) {
				o->waited = 1;
				break;
			}
		} else if (sig == SIGTERM) {
			o->killed = 1;
			kill(-child, SIGTERM);
			kill(-child, SIGCONT);
			kill_at = ferry__mono() + KILL_GRACE_S;
		} else if (sig == SIGUSR1) {
			kill(-child, SIGSTOP);
		} else if (sig == SIGUSR2) {
			kill(-child, SIGCONT);
		}
	}
	/* what a killed job left behind in its group goes too */
	if (o->killed || o->walltime)
		kill(-child, SIGKILL);
}

/*
 * Body of the shepherd. Runs in a fork of the single-threaded engine, so
 * it may allocate; what runs between vfork and exec is glibc's
 * posix_spawn, which is safe by construction.
 */
static void __attribute__((noreturn)) shepherd_main(const char *dir, json_t *spec)
{
	struct outcome o = {0};
	sigset_t set;
	pid_t child;

	setsid();
	prctl(PR_SET_NAME, "ferry-shepherd"); /* not to be taken for the engine */
	sigemptyset(&set);
	sigaddset(&set, SIGCHLD);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGUSR1);
	sigaddset(&set, SIGUSR2);
	sigprocmask(SIG_SETMASK, &set, NULL);
	signal(SIGPIPE, SIG_DFL);
	{
		struct sigaction sa = {.sa_handler = SIG_DFL}; /* the engine's SA_NOCLDWAIT */
		sigaction(SIGCHLD, &sa, NULL);
	}
	syscall(SYS_close_range, 3U, ~0U, 0U);
	if (mkdir(dir, 0700) < 0 && errno != EEXIST)
		_exit(121);
	if (claim_job(dir) < 0)
		_exit(0); /* another shepherd has the job: it runs it */
	o.start = ferry__now();
	o.spawn_errno = spawn_job(dir, spec, &child);
	if (!o.spawn_errno)
		supervise(child, json_integer_value(json_object_get(spec, "walltime_s")), &o);
	o.end = ferry__now();
	write_result(dir, &o, json_string_value(json_array_get(json_object_get(spec, "argv"), 0)));
	_exit(0);
}

/* ---- the engine side ---- */

static char *dir_of(struct ferry_engine *eng, int64_t id)
{
	return ferry__asprintf("%s/jobs/%lld", ferry__engine_state_dir(eng), (long long)id);
}

static double kv_num(const char *text, const char *key)
{
	size_t kl = strlen(key);

	for (const char *p = text; p && *p; p = strchr(p, '\n'), p = p ? p + 1 : NULL)
		if (!strncmp(p, key, kl) && p[kl] == '=')
			return strtod(p + kl + 1, NULL);
	return 0;
}

/* Turns a shepherd's result file into a job_result. 0, or -1 if absent. */
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
		const char *c = strstr(text, "\ncommand=");
		int cl = c ? (int)strcspn(c + 9, "\n") : 0;
		r->exit_status = FERRY_ABORTED;
		r->cpu_user = r->cpu_sys = r->wall = -1;
		r->max_rss_kb = -1;
		snprintf(r->message, sizeof(r->message), "cannot execute '%.*s': %s", cl,
			 c ? c + 9 : "", strerror(spawn_errno));
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

static void on_shepherd_exit(struct ferry_engine *eng, int fd, void *arg);

static int watch(struct ferry_engine *eng, struct job *j, pid_t pid)
{
	int fd = pidfd_open(pid, 0);

	if (fd < 0)
		return -errno;
	if (ferry__loop_watch(fd, on_shepherd_exit, (void *)(intptr_t)j->id) < 0) {
		close(fd);
		return -ENOMEM;
	}
	j->pid = pid;
	j->pidfd = fd;
	free(j->native_id);
	j->native_id = ferry__asprintf("%d", (int)pid);
	return 0;
}

/* Reads the claim of a job: the pid of the shepherd that owns it. */
static pid_t read_claim(const char *dir, unsigned long long *start)
{
	char path[4096], *text = NULL;
	long pid = 0;

	snprintf(path, sizeof(path), "%s/claim", dir);
	if (ferry__read_file(path, 256, &text, NULL) < 0)
		return 0;
	if (sscanf(text, "%ld %llu", &pid, start) != 2 || pid <= 0)
		pid = -1;
	free(text);
	return (pid_t)pid;
}

/*
 * Follows the shepherd named by a job's claim: watches it when alive,
 * else reports its result. Returns 1 when the job is accounted for.
 */
static int follow_claim(struct ferry_engine *eng, struct job *j, const char *dir)
{
	unsigned long long start = 0;
	struct job_result r;
	pid_t pid = read_claim(dir, &start);
	char state = 0;

	if (pid == 0)
		return 0;
	if (pid > 0 && proc_start_time(pid, &state) == start && state != 'Z' &&
	    watch(eng, j, pid) == 0)
		return 1;
	if (read_result(dir, &r) < 0)
		unclear(&r, "the job's shepherd ended without recording a result");
	ferry__engine_job_ended(eng, j, &r);
	return 1;
}

static void on_shepherd_exit(struct ferry_engine *eng, int fd, void *arg)
{
	struct job *j = ferry__engine_job(eng, (int64_t)(intptr_t)arg);
	struct job_result r;
	char *dir;
	pid_t pid;

	ferry__loop_unwatch(fd);
	close(fd);
	if (!j)
		return;
	pid = j->pid;
	j->pidfd = -1;
	dir = dir_of(eng, j->id);
	if (!dir)
		return;
	if (read_result(dir, &r) == 0) {
		ferry__engine_job_ended(eng, j, &r);
	} else {
		unsigned long long start;
		pid_t owner = read_claim(dir, &start);
		if (owner > 0 && owner != pid) /* lost the claim to an older shepherd */
			follow_claim(eng, j, dir);
		else {
			unclear(&r, "the job's shepherd died without recording a result");
			ferry__engine_job_ended(eng, j, &r);
		}
	}
	free(dir);
}

static int local_start(struct ferry_engine *eng, struct job *j, char *err, size_t errlen)
{
	char *dir = dir_of(eng, j->id);
	pid_t pid;
	int rc;

	if (!dir) {
		snprintf(err, errlen, "out of memory");
		return FERRY_EAGAIN;
	}
	pid = fork();
	if (pid < 0) {
		snprintf(err, errlen, "cannot fork: %s", strerror(errno));
		free(dir);
		return FERRY_EAGAIN;
	}
	if (pid == 0)
		shepherd_main(dir, j->spec);
	free(dir);
	rc = watch(eng, j, pid);
	if (rc < 0) {
		/* cannot watch it: stop it before it claims, then retry later */
		kill(pid, SIGKILL);
		snprintf(err, errlen, "cannot watch the shepherd: %s", strerror(-rc));
		return FERRY_EAGAIN;
	}
	return 0;
}

static int local_control(struct ferry_engine *eng, struct job *j, enum backend_ctl ctl, char *err,
			 size_t errlen)
{
	int sig = ctl == CTL_SUSPEND ? SIGUSR1 : ctl == CTL_RESUME ? SIGUSR2 : SIGTERM;

	if (j->pidfd < 0) {
		snprintf(err, errlen, "the job's shepherd is not known");
		return FERRY_ESTATE;
	}
	if (pidfd_send_signal(j->pidfd, sig, NULL, 0) < 0 && errno != ESRCH) {
		snprintf(err, errlen, "cannot signal the shepherd: %s", strerror(errno));
		return FERRY_EIO;
	}
	return 0;
}

static int local_adopt(struct ferry_engine *eng, struct job *j)
{
	char *dir = dir_of(eng, j->id);
	struct stat st;
	int rc = 0;
	char path[4096];

	if (!dir)
		return 0;
	snprintf(path, sizeof(path), "%s/claim", dir);
	if (stat(path, &st) == 0) {
		ferry__engine_job_adopted(eng, j);
		rc = follow_claim(eng, j, dir);
	}
	free(dir);
	return rc;
}

static int local_check(struct ferry_engine *eng, json_t *spec, char *err, size_t errlen)
{
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
	return 0;
}

static int local_slots(struct ferry_engine *eng)
{
	int slots = ferry__engine_cfg(eng)->slots;
	long n;

	if (slots > 0)
		return slots;
	n = sysconf(_SC_NPROCESSORS_ONLN);
	return n > 0 ? (int)n : 1;
}

const struct ferry_backend ferry__backend_local = {
    .version = FERRY_BACKEND_VERSION,
    .name = "local",
    .check = local_check,
    .start = local_start,
    .control = local_control,
    .adopt = local_adopt,
    .slots = local_slots,
};
