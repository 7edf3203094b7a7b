/*
 * run.c - runs a DRMS command (sbatch, squeue, qacct...) without a shell,
 * feeding it some input and collecting what it prints, within a time limit.
 *
 * A vfork child does the exec, as posix_spawnp does, with one step more
 * that posix_spawn cannot take: it puts back the soft descriptor limit
 * ferryd started with (sbatch passes its limits on to the job, Slurm's
 * PropagateResourceLimits). Only async-signal-safe calls run in the
 * child, and only the three pipe ends it needs cross the exec (everything
 * else ferryd holds is CLOEXEC).
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include "run.h"
#include "util.h"

#define OUTPUT_MAX (256u << 20) /* what a command may print before it is cut off */

extern char **environ;

static int grow_append(struct ferry_output *o, const char *buf, size_t n)
{
	if (o->len + n + 1 > o->cap) {
		size_t cap = o->cap ? o->cap : 4096;
		char *nb;
		while (cap < o->len + n + 1)
			cap *= 2;
		if (!(nb = realloc(o->data, cap)))
			return -1;
		o->data = nb;
		o->cap = cap;
	}
	memcpy(o->data + o->len, buf, n);
	o->len += n;
	o->data[o->len] = '\0';
	return 0;
}

void ferry__output_release(struct ferry_output *o)
{
	free(o->data);
	memset(o, 0, sizeof(*o));
}

/* What the command's child needs, prepared before the vfork. */
struct cmd {
	char *const *argv;
	const char *path; /* ferryd's PATH, where argv[0] is searched */
	int in, out, err; /* the pipe ends that become its 0, 1 and 2 */
	int set_nofile;
	struct rlimit nofile;
	volatile int exec_errno; /* set by the child when it cannot exec */
};

/* In the child: from the pipe end to fd; one already there loses its CLOEXEC. */
static int to_fd(int from, int fd)
{
	return from == fd ? fcntl(fd, F_SETFD, 0) : dup2(from, fd);
}

/*
 * The child: the signal dispositions and mask of a fresh process, not the
 * worker thread's (every signal blocked) nor ferryd's (SIGPIPE ignored),
 * and the descriptor limit ferryd started with. Tells the parent, which
 * vfork suspends until the exec, why it failed through c->exec_errno.
 */
static void cmd_child(struct cmd *c) __attribute__((noreturn));
static void cmd_child(struct cmd *c)
{
	struct sigaction dfl = {.sa_handler = SIG_DFL};
	sigset_t none;

	if (to_fd(c->in, 0) < 0 || to_fd(c->out, 1) < 0 || to_fd(c->err, 2) < 0)
		goto fail;
	for (int sig = 1; sig < NSIG; sig++)
		sigaction(sig, &dfl, NULL);
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	/* a soft limit lowered below the hard one cannot fail */
	if (c->set_nofile)
		setrlimit(RLIMIT_NOFILE, &c->nofile);
	ferry__exec_search(c->argv, environ, c->path, NULL);
fail:
	c->exec_errno = errno ? errno : EIO;
	_exit(127);
}

/* vfork in a function of its own: the child never returns from it. */
static pid_t __attribute__((noinline)) vfork_cmd(struct cmd *c)
{
	pid_t pid = vfork();

	if (pid == 0)
		cmd_child(c);
	return pid;
}

/* Starts the command; 0, or the errno of the vfork or the exec. */
static int spawn(char *const *argv, int fds[3][2], unsigned long long nofile, pid_t *pid)
{
	const char *path = getenv("PATH");
	struct cmd c = {.argv = argv,
			.path = path ? path : "/bin:/usr/bin",
			.in = fds[0][0],
			.out = fds[1][1],
			.err = fds[2][1]};
	sigset_t all, was;
	int status, e;

	c.set_nofile =
	    nofile && getrlimit(RLIMIT_NOFILE, &c.nofile) == 0 && c.nofile.rlim_cur > nofile;
	if (c.set_nofile)
		c.nofile.rlim_cur = (rlim_t)nofile;
	/* no handler may run in the child, on this thread's stack, before its reset */
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &was);
	*pid = vfork_cmd(&c);
	e = errno;
	pthread_sigmask(SIG_SETMASK, &was, NULL);
	if (*pid < 0)
		return e;
	if (c.exec_errno) {
		while (waitpid(*pid, &status, 0) < 0 && errno == EINTR)
			;
		return c.exec_errno;
	}
	return 0;
}

void ferry__run_prepare(void)
{
	struct sigaction waitable = {.sa_handler = SIG_DFL};

	sigaction(SIGCHLD, &waitable, NULL);
}

/*
 * Feeds input, drains both outputs; 0, -1 when the deadline passed, -2
 * when cancel_fd became readable.
 */
static int pump(int fds[3][2], const char *input, size_t inlen, struct ferry_output *out,
		struct ferry_output *err, double deadline, int cancel_fd)
{
	struct pollfd p[4] = {{fds[0][1], POLLOUT, 0},
			      {fds[1][0], POLLIN, 0},
			      {fds[2][0], POLLIN, 0},
			      {cancel_fd, POLLIN, 0}};
	struct ferry_output *dst[3] = {NULL, out, err};
	size_t done = 0;
	char buf[65536];

	if (!inlen) {
		close(fds[0][1]);
		p[0].fd = fds[0][1] = -1;
	}
	while (p[1].fd >= 0 || p[2].fd >= 0) {
		double left = deadline - ferry__mono();
		if (left <= 0)
			return -1;
		if (poll(p, 4, (int)(left * 1000) + 1) < 0 && errno != EINTR)
			return -1;
		if (p[3].revents)
			return -2;
		if (p[0].fd >= 0 && p[0].revents) {
			ssize_t n = write(p[0].fd, input + done, inlen - done);
			if (n > 0)
				done += (size_t)n;
			if ((n < 0 && errno != EINTR && errno != EAGAIN) || done == inlen) {
				close(fds[0][1]);
				p[0].fd = fds[0][1] = -1;
			}
		}
		for (int i = 1; i < 3; i++) {
			if (p[i].fd < 0 || !p[i].revents)
				continue;
			ssize_t n = read(p[i].fd, buf, sizeof(buf));
			if (n < 0 && (errno == EINTR || errno == EAGAIN))
				continue;
			if (n <= 0 || dst[i]->len + (size_t)n > OUTPUT_MAX ||
			    grow_append(dst[i], buf, (size_t)n) < 0) {
				/* the end, or too much: closed now, so that a command
				 * still writing gets EPIPE instead of a full pipe */
				close(fds[i][0]);
				p[i].fd = fds[i][0] = -1;
			}
		}
	}
	return 0;
}

int ferry__run_command(char *const *argv, const char *input, size_t inlen, double timeout_s,
		       int cancel_fd, unsigned long long nofile, struct ferry_output *out,
		       struct ferry_output *err, int *status)
{
	int fds[3][2] = {{-1, -1}, {-1, -1}, {-1, -1}}, rc = 0, late;
	double deadline;
	pid_t pid;

	memset(out, 0, sizeof(*out));
	memset(err, 0, sizeof(*err));
	*status = -1;
	for (int i = 0; i < 3; i++) {
		if (pipe2(fds[i], O_CLOEXEC) < 0) {
			rc = -errno;
			goto out;
		}
	}
	/* ferryd ignores SIGPIPE: a command that exits unread gives EPIPE */
	fcntl(fds[0][1], F_SETFL, O_NONBLOCK);
	if ((rc = spawn(argv, fds, nofile, &pid))) {
		rc = -rc;
		goto out;
	}
	close(fds[0][0]);
	close(fds[1][1]);
	close(fds[2][1]);
	fds[0][0] = fds[1][1] = fds[2][1] = -1;
	deadline = ferry__mono() + timeout_s;
	late = pump(fds, input, inlen, out, err, deadline, cancel_fd);
	/* it may have closed its outputs and still linger */
	while (!late && waitpid(pid, status, WNOHANG) == 0) {
		if (ferry__mono() > deadline)
			late = 1;
		else
			usleep(1000);
	}
	if (late) {
		kill(pid, SIGKILL);
		while (waitpid(pid, status, 0) < 0 && errno == EINTR)
			;
	}
	rc = late == -2 ? -ECANCELED : late ? -ETIMEDOUT : 0;
out:
	for (int i = 0; i < 3; i++)
		for (int k = 0; k < 2; k++)
			if (fds[i][k] >= 0)
				close(fds[i][k]);
	if (!out->data)
		grow_append(out, "", 0);
	if (!err->data)
		grow_append(err, "", 0);
	return rc;
}
