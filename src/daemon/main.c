/*
 * main.c - ferryd: the engine of one user and one resource.
 *
 * Started on demand by libferry (or by hand); the first process returns
 * only once the engine listens, so a client that started it can connect
 * at once. A lock file makes sure one engine at most runs per resource.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <signal.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "cfg.h"
#include "config.h"
#include "engine.h"
#include "lastwords.h"
#include "../backends/runner.h"
#include "trust.h"
#include "util.h"

#define FERRYD_EXIT_DIED 3 /* see ferry__start_engine() in src/common/start.c */

static void usage(FILE *f)
{
	fprintf(
	    f,
	    "usage: ferryd [--resource NAME] [--config FILE] [--set KEY=VALUE]... [--foreground]\n"
	    "The engine is normally started by libferry; see ferryd(8).\n");
}

/* The state directory must be ours and private: jobs' data lives there. */
static int check_state_dir(const char *dir, char *err, size_t errlen)
{
	struct stat st;
	int rc = ferry__mkdir_p(dir, 0700);

	if (rc < 0) {
		snprintf(err, errlen, "cannot create state directory '%s': %s", dir, strerror(-rc));
		return -1;
	}
	if (lstat(dir, &st) < 0) {
		snprintf(err, errlen, "cannot stat '%s': %s", dir, strerror(errno));
		return -1;
	}
	if (!S_ISDIR(st.st_mode) || st.st_uid != geteuid() || (st.st_mode & 077)) {
		snprintf(err, errlen,
			 "state directory '%s' must be a directory of uid %ld with mode 0700 "
			 "(it has uid %ld, mode %04o)",
			 dir, (long)geteuid(), (long)st.st_uid, (unsigned)(st.st_mode & 07777));
		return -1;
	}
	/* and no one else may rename it away and put theirs in its place */
	return ferry__check_own_dir("state directory", dir, err, errlen) ? -1 : 0;
}

static int listen_on(const char *path, char *err, size_t errlen)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	int fd;

	if (strlen(path) >= sizeof(sa.sun_path)) {
		snprintf(err, errlen, "socket path '%s' is longer than %zu bytes", path,
			 sizeof(sa.sun_path) - 1);
		return -1;
	}
	strcpy(sa.sun_path, path);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		snprintf(err, errlen, "cannot create a socket: %s", strerror(errno));
		return -1;
	}
	unlink(path); /* stale: we hold the lock, so no engine owns it */
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || chmod(path, 0600) < 0 ||
	    listen(fd, 128) < 0) {
		snprintf(err, errlen, "cannot listen on '%s': %s", path, strerror(errno));
		close(fd);
		return -1;
	}
	return fd;
}

/*
 * Removes path only if it is still the file this engine made (own): a
 * state directory replaced under a running engine may by now hold another
 * engine's socket and pid file, which must outlive this one.
 */
static void unlink_own(const char *path, const struct stat *own)
{
	struct stat st;

	if (own->st_ino && lstat(path, &st) == 0 && st.st_ino == own->st_ino &&
	    st.st_dev == own->st_dev)
		unlink(path);
}

static void report(int fd, const char *msg)
{
	if (fd >= 0) {
		ferry__write_all(fd, msg, strlen(msg));
		close(fd);
	}
}

/* Forks; the parent returns only with the child's readiness message. */
static int daemonize(int *ready_fd)
{
	int p[2];
	pid_t pid;
	char buf[1024];
	ssize_t n;
	size_t got = 0;

	if (pipe2(p, O_CLOEXEC) < 0)
		return -1;
	pid = fork();
	if (pid < 0)
		return -1;
	if (pid > 0) {
		close(p[1]);
		while ((n = read(p[0], buf + got, sizeof(buf) - 1 - got)) > 0)
			got += (size_t)n;
		buf[got] = '\0';
		if (!strcmp(buf, "ok"))
			_exit(0);
		if (!got) {
			/* killed before it could say why: its starter may try again */
			fprintf(stderr, "ferryd: the engine died while starting\n");
			_exit(FERRYD_EXIT_DIED);
		}
		fprintf(stderr, "ferryd: %s\n", buf);
		_exit(1);
	}
	close(p[0]);
	setsid();
	*ready_fd = p[1];
	return 0;
}

/*
 * Blocks kept past the log's end (fallocate, size kept), so that what the
 * engine says of a full disk can still be written there.
 */
#define LOG_RESERVE (64 << 10)

static int open_log(const char *state_dir)
{
	char *log = ferry__asprintf("%s/ferryd.log", state_dir);
	int fd = log ? open(log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600) : -1;
	struct stat st;

	free(log);
	if (fd >= 0 && fstat(fd, &st) == 0)
		fallocate(fd, FALLOC_FL_KEEP_SIZE, st.st_size, LOG_RESERVE); /* best effort */
	return fd;
}

static void redirect_stdio(const char *state_dir)
{
	int fd = open("/dev/null", O_RDWR | O_CLOEXEC);

	if (fd >= 0) {
		dup2(fd, 0);
		close(fd);
	}
	fd = open_log(state_dir);
	if (fd >= 0) {
		dup2(fd, 1);
		dup2(fd, 2);
		close(fd);
	}
}

/* Why an engine could not start goes to its log too, not only to its starter. */
static void log_failure(const char *state_dir, const char *err)
{
	int fd = state_dir ? open_log(state_dir) : -1;

	if (fd >= 0) {
		dprintf(fd, "ferryd: pid %ld cannot start: %s\n", (long)getpid(), err);
		close(fd);
	}
}

/* What the engine warns its clients of goes to its log too, by each engine. */
static void log_warnings(struct ferry_engine *eng)
{
	json_t *w = ferry__engine_warnings(eng), *e;
	size_t i;

	json_array_foreach(w, i, e)
	{
		fprintf(stderr, "ferryd: warning: %s\n", json_string_value(e));
	}
	json_decref(w);
}

struct options {
	const char *resource, *config;
	const char *sets[16]; /* --set KEY=VALUE, NULL-terminated */
	size_t nsets;
	int fg;
};

/* Returns -1 to go on, or the exit code. */
static int parse_args(int argc, char **argv, struct options *o)
{
	static const struct option opts[] = {
	    {"resource", required_argument, NULL, 'r'},
	    {"config", required_argument, NULL, 'c'},
	    {"foreground", no_argument, NULL, 'f'},
	    {"help", no_argument, NULL, 'h'},
	    {"version", no_argument, NULL, 'V'},
	    {"set", required_argument, NULL, 's'},
	    {NULL, 0, NULL, 0},
	};
	int c;

	while ((c = getopt_long(argc, argv, "r:c:s:fhV", opts, NULL)) != -1) {
		switch (c) {
		case 's':
			if (o->nsets + 1 >= FERRY_ARRAY_SIZE(o->sets)) {
				fprintf(stderr, "ferryd: too many --set options\n");
				return 2;
			}
			o->sets[o->nsets++] = optarg;
			break;
		case 'r':
			o->resource = optarg;
			break;
		case 'c':
			o->config = optarg;
			break;
		case 'f':
			o->fg = 1;
			break;
		case 'h':
			usage(stdout);
			return 0;
		case 'V':
			puts("ferryd " FERRY_VERSION);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (optind != argc) {
		usage(stderr);
		return 2;
	}
	return -1;
}

/*
 * Each connection holds a descriptor, and a soft limit of 1024 (a common
 * default) would run out before the server's cap on connections: the soft
 * limit goes as far as the hard one allows, up to NOFILE_WANT, what the
 * engine can use (1024 connections and its reserve, server.c) with room to
 * spare. Returns the soft limit it started with, which the processes
 * ferryd starts get back (0: unknown).
 */
#define NOFILE_WANT 65536
static unsigned long long raise_nofile(void)
{
	struct rlimit rl;
	rlim_t start;

	if (getrlimit(RLIMIT_NOFILE, &rl) < 0)
		return 0;
	start = rl.rlim_cur;
	if (rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur < NOFILE_WANT) {
		rl.rlim_cur = rl.rlim_max == RLIM_INFINITY || rl.rlim_max > NOFILE_WANT
				  ? NOFILE_WANT
				  : rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl); /* best effort: the server caps by what it has */
	}
	return start == RLIM_INFINITY ? 0 : (unsigned long long)start;
}

static void setup_signals(void)
{
	struct sigaction nocldwait = {.sa_handler = SIG_DFL, .sa_flags = SA_NOCLDWAIT};
	sigset_t set;

	/* the loop reads these from a signalfd */
	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGHUP);
	sigaddset(&set, SIGUSR1);
	sigaddset(&set, SIGUSR2);
	sigprocmask(SIG_BLOCK, &set, NULL);
	signal(SIGPIPE, SIG_IGN);
	/* the job runner, our only child, is reaped by the kernel */
	sigaction(SIGCHLD, &nocldwait, NULL);
}

/* Takes the engine lock of a state directory: 1 taken, 0 held by another engine, -1 error. */
static int take_lock(const char *path, int *fd, char *err, size_t errlen)
{
	*fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (*fd < 0) {
		snprintf(err, errlen, "cannot open '%s': %s", path, strerror(errno));
		return -1;
	}
	return flock(*fd, LOCK_EX | LOCK_NB) == 0 ? 1 : 0;
}

/* Where an engine of a resource keeps what it owns. */
struct paths {
	char *state, *lock, *sock, *pidf;
	int words;     /* ferryd.lastwords (lastwords.h), -1 */
	int had_words; /* the last engine stopped on a fatal error */
};

static int paths_init(const char *resource, struct paths *p, char *err, size_t errlen)
{
	if (!(p->state = ferry__state_dir(resource))) {
		snprintf(err, errlen, "neither XDG_STATE_HOME nor HOME is an absolute path");
		return -1;
	}
	if (check_state_dir(p->state, err, errlen) < 0)
		return -1;
	p->lock = ferry__asprintf("%s/ferryd.lock", p->state);
	p->sock = ferry__asprintf("%s/ferryd.sock", p->state);
	p->pidf = ferry__asprintf("%s/ferryd.pid", p->state);
	if (!p->lock || !p->sock || !p->pidf) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	return 0;
}

/*
 * Another engine holds the lock: it is loading its jobs (a million held
 * ones take seconds) or about to listen. Its starter waits for it as long
 * as it lives, not for a fixed time: 0 once it listens (nothing left to
 * do), 1 once it died without listening and the lock is ours now, -1
 * after HOLDER_WAIT_S with neither (err set).
 */
#define HOLDER_WAIT_S 600
static int wait_for_holder(const struct paths *p, int lockfd, char *err, size_t errlen)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	struct timespec pause = {0, 50 * 1000 * 1000};
	double until = ferry__mono() + HOLDER_WAIT_S;

	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", p->sock);
	while (ferry__mono() < until) {
		int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0), up;

		if (fd < 0)
			break;
		up = connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0;
		close(fd);
		if (up)
			return 0;
		if (flock(lockfd, LOCK_EX | LOCK_NB) == 0)
			return 1;
		nanosleep(&pause, NULL);
	}
	snprintf(err, errlen, "the engine holding '%s' has not listened on '%s' for %d s", p->lock,
		 p->sock, HOLDER_WAIT_S);
	return -1;
}

static void paths_release(struct paths *p)
{
	free(p->state);
	free(p->lock);
	free(p->sock);
	free(p->pidf);
}

/*
 * Listens, says so to the starting client (*ready), and serves until
 * told to stop, then frees eng and loop. 0 when it served and stopped
 * well, 2 when serving failed, 1 when it could not listen (err set,
 * *ready still open, eng and loop still the caller's).
 */
static int serve(const struct options *o, const struct paths *p, struct ferry_engine *eng,
		 struct ferry_loop *loop, int *ready, char *err, size_t errlen)
{
	struct stat sock_st = {0}, pid_st = {0}; /* what this engine made, to remove only that */
	char pidbuf[32];
	int lfd = listen_on(p->sock, err, errlen), rc;

	if (lfd < 0)
		return 1;
	if (stat(p->sock, &sock_st) < 0)
		memset(&sock_st, 0, sizeof(sock_st));
	snprintf(pidbuf, sizeof(pidbuf), "%ld\n", (long)getpid());
	ferry__write_file_atomic(p->pidf, pidbuf, strlen(pidbuf), 0);
	if (stat(p->pidf, &pid_st) < 0)
		memset(&pid_st, 0, sizeof(pid_st));
	if (!o->fg)
		redirect_stdio(p->state);
	fprintf(stderr, "ferryd: pid %ld serves '%s'\n", (long)getpid(), p->sock);
	log_warnings(eng);
	ferry__last_words_clear(p->words);
	report(*ready, "ok");
	*ready = -1;
	rc = ferry__server_run(loop, eng, lfd, p->words) == 0 ? 0 : 2;
	unlink_own(p->sock, &sock_st);
	/* a client that connected meanwhile learns now, not after the engine's last work */
	close(lfd);
	ferry__engine_free(eng);
	ferry__loop_free(loop);
	/* the pid file goes last: "not running" means the database is closed */
	unlink_own(p->pidf, &pid_st);
	return rc;
}

int main(int argc, char **argv)
{
	struct options o = {.resource = "local"};
	struct ferry_resource_cfg cfg = {0};
	const struct ferry_backend *be;
	struct ferry_engine *eng = NULL;
	struct ferry_loop *loop = NULL;
	struct paths p = {.words = -1};
	char err[1024];
	int lockfd = -1, ready = -1, rc;

	/* the local backend's job runner, this program run again (runner.h) */
	if (argc > 1 && !strcmp(argv[1], "--runner"))
		return ferry__runner_cmd(argc - 1, argv + 1);
	/* whatever the starting client left open is not ours to keep open */
	syscall(SYS_close_range, 3U, ~0U, 0U);
	/*
	 * SQLite counts its memory under a global mutex by default: a lock
	 * and an unlock for each of its allocations, 2% of a bulk submit's
	 * instructions, for a count nothing here reads.
	 */
	sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0);
	rc = parse_args(argc, argv, &o);
	if (rc >= 0)
		return rc;
	rc = 1;
	if (ferry__resolve_resource_set(o.config, o.resource, o.sets, &cfg, err, sizeof(err)) < 0)
		goto fail;
	be = ferry__backend_find(cfg.scheduler ? cfg.scheduler : "local");
	if (be && be->pre_exec)
		be->pre_exec(argv);
	if (paths_init(o.resource, &p, err, sizeof(err)) < 0)
		goto fail;
	switch (take_lock(p.lock, &lockfd, err, sizeof(err))) {
	case -1:
		goto fail;
	case 0: /* another engine serves this resource, or soon will */
		rc = wait_for_holder(&p, lockfd, err, sizeof(err));
		if (rc < 0)
			goto fail;
		if (rc == 0)
			goto out;
	}
	p.words = ferry__last_words_open(p.state, &p.had_words);
	setup_signals();
	if (!o.fg && daemonize(&ready) < 0) {
		snprintf(err, sizeof(err), "cannot fork: %s", strerror(errno));
		goto fail;
	}
	if (chdir("/") < 0) {
		snprintf(err, sizeof(err), "cannot chdir to '/': %s", strerror(errno));
		goto fail;
	}
	if (!(loop = ferry__loop_new(err, sizeof(err))))
		goto fail;
	ferry__loop_set_start_nofile(loop, raise_nofile());
	if (!(eng = ferry__engine_new(loop, o.resource, p.state, &cfg, p.had_words, err,
				      sizeof(err))))
		goto fail;
	rc = serve(&o, &p, eng, loop, &ready, err, sizeof(err));
	if (rc != 1) { /* it served: the engine and its loop are gone */
		eng = NULL;
		loop = NULL;
		rc = rc ? 1 : 0;
		goto out;
	}
fail:
	if (ready >= 0)
		report(ready, err);
	else
		fprintf(stderr, "ferryd: %s\n", err);
	if (!o.fg && lockfd >= 0) /* only then is the directory known to be ours */
		log_failure(p.state, err);
	rc = 1;
out:
	ferry__engine_free(eng);
	ferry__loop_free(loop);
	if (p.words >= 0)
		close(p.words);
	if (lockfd >= 0)
		close(lockfd);
	ferry__resource_cfg_release(&cfg);
	paths_release(&p);
	return rc;
}
