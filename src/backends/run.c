/*
 * run.c - runs a DRMS command (sbatch, squeue, qacct...) without a shell,
 * feeding it some input and collecting what it prints, within a time limit.
 *
 * posix_spawnp does the fork and exec: nothing but the spawn's own
 * async-signal-safe steps runs in the child, and only the three pipe ends
 * the child needs cross the exec (everything else ferryd holds is
 * CLOEXEC).
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
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

/*
 * The command starts with the signal mask and dispositions of a fresh
 * process, not the worker thread's (every signal blocked) nor ferryd's
 * (SIGPIPE ignored).
 */
static int spawn(char *const *argv, int fds[3][2], pid_t *pid)
{
	posix_spawn_file_actions_t fa;
	posix_spawnattr_t at;
	sigset_t none, all;
	int rc;

	sigemptyset(&none);
	sigfillset(&all);
	if ((rc = posix_spawn_file_actions_init(&fa)))
		return rc;
	if ((rc = posix_spawnattr_init(&at))) {
		posix_spawn_file_actions_destroy(&fa);
		return rc;
	}
	if (!(rc = posix_spawnattr_setflags(&at, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF)) &&
	    !(rc = posix_spawnattr_setsigmask(&at, &none)) &&
	    !(rc = posix_spawnattr_setsigdefault(&at, &all)) &&
	    !(rc = posix_spawn_file_actions_adddup2(&fa, fds[0][0], 0)) &&
	    !(rc = posix_spawn_file_actions_adddup2(&fa, fds[1][1], 1)) &&
	    !(rc = posix_spawn_file_actions_adddup2(&fa, fds[2][1], 2)))
		rc = posix_spawnp(pid, argv[0], &fa, &at, argv, environ);
	posix_spawnattr_destroy(&at);
	posix_spawn_file_actions_destroy(&fa);
	return rc;
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
		       int cancel_fd, struct ferry_output *out, struct ferry_output *err,
		       int *status)
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
	if ((rc = spawn(argv, fds, &pid))) {
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
