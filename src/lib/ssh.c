/*
 * ssh.c - the transport of remote resources: the user's OpenSSH client
 * running `ferry bridge` on the resource's host, the way git and rsync
 * reach their far side. ssh's stdin and stdout are one end of a socket
 * pair, so the rest of the library speaks to a remote engine exactly as to
 * a local one; its stderr is kept apart (the last bytes, for messages).
 *
 * A password never appears on a command line, in an environment or on
 * disk: ssh asks its SSH_ASKPASS helper (ferry-askpass), which fetches the
 * answer from this process over an abstract Unix socket whose peer must be
 * our own uid. ssh closes every inherited descriptor at start, which rules
 * out handing the helper a pipe.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "config.h"
#include "internal.h"
#include "proto.h"
#include "start.h"
#include "util.h"

extern char **environ;

/* ssh's own check of a dead link: ServerAliveInterval * ServerAliveCountMax. */
#define ALIVE_INTERVAL "5"
#define ALIVE_COUNT    "3"

/* Appends s to a growing argv; -1 on ENOMEM. */
static int push(char ***v, size_t *n, const char *s)
{
	char **nv = realloc(*v, (*n + 2) * sizeof(**v));

	if (!nv)
		return -1;
	*v = nv;
	nv[*n] = strdup(s);
	if (!nv[*n])
		return -1;
	nv[++*n] = NULL;
	return 0;
}

/* Single-quotes s for the remote shell, which ssh hands the command to. */
static char *shell_quote(const char *s)
{
	size_t n = 3;
	char *q, *p;

	for (const char *t = s; *t; t++)
		n += *t == '\'' ? 4 : 1;
	q = p = malloc(n);
	if (!q)
		return NULL;
	*p++ = '\'';
	for (; *s; s++) {
		if (*s == '\'') {
			memcpy(p, "'\\''", 4);
			p += 4;
		} else {
			*p++ = *s;
		}
	}
	*p++ = '\'';
	*p = '\0';
	return q;
}

/* The command ssh runs remotely: ferry bridge --resource R --set K=V... */
static char *remote_command(struct ferry_conn *c)
{
	const char *prog = c->cfg.remote_command ? c->cfg.remote_command : "ferry";
	char *cmd = shell_quote(prog), *q = shell_quote(c->resource), *t;

	if (!cmd || !q)
		goto nomem;
	t = ferry__asprintf("%s bridge --resource %s", cmd, q);
	free(cmd);
	free(q);
	cmd = t;
	for (size_t i = 0; cmd && c->sets && c->sets[i]; i++) {
		q = shell_quote(c->sets[i]);
		if (!q)
			goto nomem;
		t = ferry__asprintf("%s --set %s", cmd, q);
		free(q);
		free(cmd);
		cmd = t;
	}
	return cmd;
nomem:
	free(cmd);
	free(q);
	return NULL;
}

/* A host or login that ssh could take for an option, or that is no name. */
static int bad_name(const char *s)
{
	if (!*s || *s == '-')
		return 1;
	for (; *s; s++)
		if ((unsigned char)*s <= ' ' || *s == 0x7f)
			return 1;
	return 0;
}

static char **ssh_argv(struct ferry_conn *c, const char **why)
{
	const char *login = c->login ? c->login : c->cfg.login;
	char **v = NULL, **user = NULL, *cmd, port[16];
	size_t n = 0;
	int bad = 0;

	if (c->cfg.ssh_options && ferry__split_words(c->cfg.ssh_options, &user, why) < 0)
		return NULL;
	cmd = remote_command(c);
	/*
	 * The user's options come first: for each option ssh keeps the first
	 * value it sees, so they win over our defaults, which in turn win over
	 * ~/.ssh/config.
	 */
	bad |= push(&v, &n, "ssh");
	for (size_t i = 0; user && user[i]; i++)
		bad |= push(&v, &n, user[i]);
	bad |= push(&v, &n, "-T") | push(&v, &n, "-x") | push(&v, &n, "-a");
	bad |= push(&v, &n, "-o") | push(&v, &n, "ServerAliveInterval=" ALIVE_INTERVAL);
	bad |= push(&v, &n, "-o") | push(&v, &n, "ServerAliveCountMax=" ALIVE_COUNT);
	bad |= push(&v, &n, "-o") | push(&v, &n, "ConnectTimeout=10");
	if (c->no_start) {
		char *t = cmd ? ferry__asprintf("%s --no-start", cmd) : NULL;
		free(cmd);
		cmd = t;
	}
	if (c->password) {
		bad |= push(&v, &n, "-o") | push(&v, &n, "BatchMode=no");
		bad |= push(&v, &n, "-o") | push(&v, &n, "NumberOfPasswordPrompts=1");
	} else {
		bad |= push(&v, &n, "-o") | push(&v, &n, "BatchMode=yes");
	}
	if (c->cfg.port) {
		snprintf(port, sizeof(port), "%d", c->cfg.port);
		bad |= push(&v, &n, "-p") | push(&v, &n, port);
	}
	if (login)
		bad |= push(&v, &n, "-l") | push(&v, &n, login);
	bad |= !cmd || push(&v, &n, "--") | push(&v, &n, c->cfg.host) | push(&v, &n, cmd);
	free(cmd);
	ferry__strv_free(user);
	if (bad) {
		ferry__strv_free(v);
		*why = "out of memory";
		return NULL;
	}
	return v;
}

/* Listens on an abstract socket for ferry-askpass; its name goes in *name. */
static int askpass_listen(char *name, size_t cap)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	char hex[33];
	size_t len;
	int fd;

	if (ferry__random_hex(hex, 16) < 0)
		return -1;
	snprintf(name, cap, "ferry-askpass-%s", hex);
	len = strlen(name);
	memcpy(sa.sun_path + 1, name, len);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0)
		return -1;
	if (bind(fd, (struct sockaddr *)&sa,
		 (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 1 + len)) < 0 ||
	    listen(fd, 4) < 0) {
		close(fd);
		return -1;
	}
	return fd;
}

/* The environment of ssh: ours, plus the askpass settings when needed. */
static char **ssh_env(struct ferry_conn *c, const char *sock_name, const char **why)
{
	static const char *const ours[] = {
	    "SSH_ASKPASS=", "SSH_ASKPASS_REQUIRE=", "FERRY_ASKPASS_SOCKET="};
	char **v = NULL, *helper = NULL, *t;
	size_t n = 0;
	int bad = 0;

	for (char **e = environ; *e; e++) {
		int skip = 0;
		for (size_t i = 0; i < FERRY_ARRAY_SIZE(ours); i++)
			skip |= !strncmp(*e, ours[i], strlen(ours[i]));
		if (!skip)
			bad |= push(&v, &n, *e);
	}
	if (sock_name) {
		helper =
		    ferry__find_program("FERRY_ASKPASS", "ferry-askpass", FERRY_ASKPASS_INSTALLED);
		t = helper ? ferry__asprintf("SSH_ASKPASS=%s", helper) : NULL;
		bad |= !t || push(&v, &n, t);
		free(t);
		bad |= push(&v, &n, "SSH_ASKPASS_REQUIRE=force");
		t = ferry__asprintf("FERRY_ASKPASS_SOCKET=%s", sock_name);
		bad |= !t || push(&v, &n, t);
		free(t);
		free(helper);
	}
	if (bad || !v) {
		ferry__strv_free(v);
		*why = "out of memory";
		return NULL;
	}
	return v;
}

static int spawn_ssh(struct ferry_conn *c, char **argv, char **envp, int sock, int err)
{
	posix_spawn_file_actions_t fa;
	posix_spawnattr_t at;
	sigset_t none;
	int rc;

	sigemptyset(&none);
	posix_spawnattr_init(&at);
	/* its own process group: a ^C meant for the caller's loop does not cut the link */
	posix_spawnattr_setpgroup(&at, 0);
	posix_spawnattr_setsigmask(&at, &none);
	posix_spawnattr_setflags(&at, POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGMASK);
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_adddup2(&fa, sock, 0);
	posix_spawn_file_actions_adddup2(&fa, sock, 1);
	posix_spawn_file_actions_adddup2(&fa, err, 2);
	rc = posix_spawnp(&c->ssh_pid, argv[0], &fa, &at, argv, envp);
	posix_spawn_file_actions_destroy(&fa);
	posix_spawnattr_destroy(&at);
	if (rc)
		c->ssh_pid = -1;
	return rc;
}

int ferry__ssh_spawn(struct ferry_conn *c)
{
	const char *why = NULL;
	char **argv = NULL, **envp = NULL, name[64];
	int sv[2] = {-1, -1}, ep[2] = {-1, -1}, rc;

	c->ssh_errlen = 0;
	c->askpass_served = 0;
	if (bad_name(c->cfg.host))
		return ferry__seterr(c, FERRY_ECONFIG,
				     "invalid host '%s' of resource '%s' (a name, not an option)",
				     c->cfg.host, c->resource);
	if ((c->login && bad_name(c->login)) ||
	    (!c->login && c->cfg.login && bad_name(c->cfg.login)))
		return ferry__seterr(c, FERRY_ECONFIG, "invalid login '%s' (a name, not an option)",
				     c->login ? c->login : c->cfg.login);
	argv = ssh_argv(c, &why);
	if (!argv) {
		rc = ferry__seterr(
		    c, why && strcmp(why, "out of memory") ? FERRY_ECONFIG : FERRY_ENOMEM,
		    "invalid ssh_options of resource '%s': %s", c->resource,
		    why ? why : "out of memory");
		goto out;
	}
	if (c->password) {
		c->askpass = askpass_listen(name, sizeof(name));
		if (c->askpass < 0) {
			rc = ferry__seterr(c, FERRY_ECONNECT,
					   "cannot listen for the askpass helper: %s",
					   strerror(errno));
			goto out;
		}
	}
	envp = ssh_env(c, c->password ? name : NULL, &why);
	if (!envp) {
		rc = ferry__seterr(c, FERRY_ENOMEM, "out of memory");
		goto out;
	}
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0 ||
	    pipe2(ep, O_CLOEXEC | O_NONBLOCK) < 0) {
		rc = ferry__seterr(c, FERRY_ECONNECT, "cannot create the ssh channel: %s",
				   strerror(errno));
		goto out;
	}
	/* deep buffers let a transfer's chunks flow while either end is busy */
	int big = 4 << 20;
	for (int i = 0; i < 2; i++) {
		setsockopt(sv[i], SOL_SOCKET, SO_SNDBUF, &big, sizeof(big));
		setsockopt(sv[i], SOL_SOCKET, SO_RCVBUF, &big, sizeof(big));
	}
	rc = spawn_ssh(c, argv, envp, sv[1], ep[1]);
	if (rc) {
		rc = ferry__seterr(c, FERRY_ECONNECT, "cannot run 'ssh': %s", strerror(rc));
		goto out;
	}
	c->fd = sv[0];
	sv[0] = -1;
	c->ssh_err = ep[0];
	ep[0] = -1;
out:
	if (rc && c->askpass >= 0) {
		close(c->askpass);
		c->askpass = -1;
	}
	for (int i = 0; i < 2; i++) {
		if (sv[i] >= 0)
			close(sv[i]);
		if (ep[i] >= 0)
			close(ep[i]);
	}
	ferry__strv_free(argv);
	ferry__strv_free(envp);
	return rc;
}

/* Keeps the last bytes ssh printed; stops at EOF or when nothing is left. */
static void drain_stderr(struct ferry_conn *c)
{
	char buf[1024];
	ssize_t n;

	_Static_assert(sizeof(buf) < sizeof(c->ssh_errbuf), "a read must fit the buffer");
	while (c->ssh_err >= 0) {
		n = read(c->ssh_err, buf, sizeof(buf));
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			if (n == 0 || errno != EAGAIN) {
				close(c->ssh_err);
				c->ssh_err = -1;
			}
			return;
		}
		/* keep the last bytes: a read (1 KiB) is smaller than the buffer */
		size_t cap = sizeof(c->ssh_errbuf) - 1, k = (size_t)n;
		if (c->ssh_errlen + k > cap) {
			size_t drop = c->ssh_errlen + k - cap;
			memmove(c->ssh_errbuf, c->ssh_errbuf + drop, c->ssh_errlen - drop);
			c->ssh_errlen -= drop;
		}
		memcpy(c->ssh_errbuf + c->ssh_errlen, buf, k);
		c->ssh_errlen += k;
		c->ssh_errbuf[c->ssh_errlen] = '\0';
	}
}

/*
 * Answers one ferry-askpass request: the password for a password prompt of
 * the ssh we started, once; nothing for anything else (a host key to
 * accept, a key's passphrase), which makes ssh give up with its own message.
 */
static void serve_askpass(struct ferry_conn *c)
{
	struct ucred cr;
	socklen_t cl = sizeof(cr);
	char prompt[512];
	size_t got = 0;
	ssize_t n;
	int fd = accept4(c->askpass, NULL, NULL, SOCK_CLOEXEC);

	if (fd < 0)
		return;
	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cr, &cl) < 0 || cr.uid != geteuid())
		goto out;
	/* the helper sends the prompt and shuts its side; it is small and local */
	struct timeval tv = {.tv_sec = 2};
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	while (got < sizeof(prompt) - 1 && (n = read(fd, prompt + got, sizeof(prompt) - 1 - got))) {
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			goto out;
		got += (size_t)n;
	}
	prompt[got] = '\0';
	if (c->askpass_served || !strcasestr(prompt, "password") ||
	    strcasestr(prompt, "passphrase"))
		goto out;
	c->askpass_served = 1;
	ferry__write_all(fd, c->password, strlen(c->password));
out:
	close(fd);
}

int ferry__ssh_read(struct ferry_conn *c, void *buf, size_t len, double silence_s)
{
	char *p = buf;
	double until = ferry__mono() + silence_s;
	unsigned streak = 0;

	while (len > 0) {
		struct pollfd pf[3] = {
		    {c->fd, POLLIN, 0}, {c->ssh_err, POLLIN, 0}, {c->askpass, POLLIN, 0}};
		double left = until - ferry__mono();
		int r;

		/*
		 * Data that is there already is taken without a poll first: a
		 * big reply comes in ssh's small packets, and a poll for each
		 * doubles the system calls. Every 64th read polls all the same,
		 * so ssh's stderr and the password helper are served.
		 */
		if (++streak % 64) {
			ssize_t n = recv(c->fd, p, len, MSG_DONTWAIT);
			if (n > 0) {
				p += n;
				len -= (size_t)n;
				until = ferry__mono() + silence_s;
				continue;
			}
			if (n == 0)
				return FERRY_EIO;
			if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
				return FERRY_EIO;
		}

		if (left <= 0) {
			ferry__seterr(c, FERRY_EIO,
				      "no answer from host '%s' for %g s: taking the link for dead",
				      c->cfg.host, silence_s);
			return FERRY_EIO;
		}
		r = poll(pf, 3, (int)(left * 1000) + 1);
		if (r < 0 && errno != EINTR)
			return FERRY_EIO;
		if (r <= 0)
			continue;
		if (pf[1].revents)
			drain_stderr(c);
		if (pf[2].revents)
			serve_askpass(c);
		if (!pf[0].revents)
			continue;
		ssize_t n = read(c->fd, p, len);
		if (n < 0 && (errno == EINTR || errno == EAGAIN))
			continue;
		if (n <= 0)
			return FERRY_EIO;
		p += n;
		len -= (size_t)n;
		until = ferry__mono() + silence_s;
	}
	return 0;
}

/* Escapes bytes for a one-line message; out has room for 4 * len + 1. */
static void escape(const unsigned char *s, size_t len, char *out)
{
	for (size_t i = 0; i < len; i++) {
		if (s[i] >= ' ' && s[i] < 0x7f && s[i] != '\\')
			*out++ = (char)s[i];
		else
			out += sprintf(out, "\\x%02x", s[i]);
	}
	*out = '\0';
}

int ferry__ssh_unclean(struct ferry_conn *c, const unsigned char *start, size_t len)
{
	unsigned char bytes[160];
	char shown[4 * sizeof(bytes) + 1];
	size_t got = len < sizeof(bytes) ? len : sizeof(bytes);
	double until = ferry__mono() + 0.3;

	memcpy(bytes, start, got);
	/* what else the login scripts print, for the message */
	while (got < sizeof(bytes) && ferry__mono() < until) {
		struct pollfd pf = {c->fd, POLLIN, 0};
		if (poll(&pf, 1, 50) <= 0)
			continue;
		ssize_t n = read(c->fd, bytes + got, sizeof(bytes) - got);
		if (n <= 0)
			break;
		got += (size_t)n;
	}
	/* the bridge's answer after the banner is ours, not the shell's */
	for (size_t i = 0; i + 4 <= got; i++) {
		if (!memcmp(bytes + i, FERRY_MAGIC, 4)) {
			got = i;
			break;
		}
	}
	escape(bytes, got, shown);
	return ferry__seterr(c, FERRY_EPROTO,
			     "remote shell is not clean: the login on host '%s' printed \"%s\" "
			     "before ferry bridge could answer (make the shell startup files of "
			     "that account print nothing when not interactive)",
			     c->cfg.host, shown);
}

/* ssh's last line on stderr, without the "\r\n". */
static const char *last_words(struct ferry_conn *c)
{
	char *s = c->ssh_errbuf;

	while (c->ssh_errlen && (s[c->ssh_errlen - 1] == '\n' || s[c->ssh_errlen - 1] == '\r'))
		s[--c->ssh_errlen] = '\0';
	for (char *t = s; *t; t++)
		if (*t == '\r' || *t == '\n')
			*t = ' ';
	return c->ssh_errlen ? s : "";
}

/* Waits for ssh to exit, up to wait_s, then kills it; its wait status. */
static int reap(struct ferry_conn *c, double wait_s)
{
	double until = ferry__mono() + wait_s;
	int status = 0;
	pid_t r;

	if (c->ssh_pid <= 0)
		return -1;
	for (;;) {
		r = waitpid(c->ssh_pid, &status, WNOHANG);
		if (r == c->ssh_pid || (r < 0 && errno != EINTR))
			break;
		if (ferry__mono() > until) {
			kill(c->ssh_pid, SIGKILL);
			while (waitpid(c->ssh_pid, &status, 0) < 0 && errno == EINTR)
				;
			break;
		}
		drain_stderr(c);
		struct timespec ts = {0, 10 * 1000 * 1000};
		nanosleep(&ts, NULL);
	}
	c->ssh_pid = -1;
	return r < 0 ? -1 : status;
}

int ferry__ssh_failure(struct ferry_conn *c)
{
	const char *host = c->cfg.host, *said;
	int status, code;

	close(c->fd);
	c->fd = -1;
	status = reap(c, 2.0);
	drain_stderr(c);
	said = last_words(c);
	code = status >= 0 && WIFEXITED(status) ? WEXITSTATUS(status) : -1;
	c->ssh_exit = code;
	if (code == 255 &&
	    (strstr(said, "Permission denied") || strstr(said, "Host key verification failed") ||
	     strstr(said, "Too many authentication failures")))
		return ferry__seterr(c, FERRY_EAUTH, "ssh to host '%s' failed: %s", host, said);
	if (code == 255)
		return ferry__seterr(c, FERRY_ECONNECT, "ssh to host '%s' failed: %s", host,
				     said[0] ? said : "exit status 255");
	if (code == 126 || code == 127)
		return ferry__seterr(c, FERRY_ECONFIG,
				     "cannot run '%s' on host '%s': %s (set remote_command of "
				     "resource '%s' to the path of ferry there)",
				     c->cfg.remote_command ? c->cfg.remote_command : "ferry", host,
				     said[0] ? said : "command not found", c->resource);
	if (code == 78) /* EX_CONFIG from ferry bridge */
		return ferry__seterr(c, FERRY_ECONFIG, "ferry bridge on host '%s': %s", host, said);
	/* EX_UNAVAILABLE: the engine there said why it cannot start */
	c->start.refused = code == 69;
	if (code >= 0)
		return ferry__seterr(c, FERRY_ECONNECT,
				     "ferry bridge on host '%s' ended (exit status %d)%s%s", host,
				     code, said[0] ? ": " : "", said);
	return ferry__seterr(c, FERRY_ECONNECT, "ssh to host '%s' ended%s%s", host,
			     said[0] ? ": " : "", said);
}

void ferry__ssh_close(struct ferry_conn *c)
{
	if (c->fd >= 0) {
		/* EOF on its stdin ends the bridge, then ssh */
		close(c->fd);
		c->fd = -1;
	}
	if (c->ssh_pid > 0) {
		/* a dead link would keep ssh for ServerAlive's whole period */
		if (waitpid(c->ssh_pid, NULL, WNOHANG) == 0)
			kill(c->ssh_pid, SIGTERM);
		reap(c, 1.0);
	}
	if (c->ssh_err >= 0) {
		close(c->ssh_err);
		c->ssh_err = -1;
	}
	if (c->askpass >= 0) {
		close(c->askpass);
		c->askpass = -1;
	}
}
