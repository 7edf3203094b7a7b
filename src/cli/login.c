/*
 * login.c - a password typed at the terminal, for a remote resource whose
 * host refused the ssh key login.
 *
 * The first connect runs ssh as ever (BatchMode: keys and the agent, no
 * prompt). Only when the host refused it and said that it takes a
 * password does the CLI ask for one, once, and connect again with it
 * through libferry's password argument: libferry hands it to ssh through
 * ferry-askpass (src/lib/ssh.c) and keeps it in the connection, so that
 * every reconnection of this command logs in with it without asking
 * again. It never goes on a command line, in an environment or on disk,
 * and is zeroed here once libferry has its copy (which ferry_disconnect()
 * zeroes).
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <termios.h>
#include <unistd.h>

#include "cfg.h"
#include "cli.h"
#include "util.h"

/* Longest password read; ferry-askpass takes up to 4 KiB. */
#define PASSWORD_MAX 1024

/* The terminal while its echo is off, for a signal to give it back. */
static int quiet_fd = -1;
static struct termios quiet_saved;

int ferry__cli_password_offered(const char *msg)
{
	/* ssh's "Permission denied (publickey,password)." lists what the host takes */
	const char *p = msg ? strstr(msg, "Permission denied (") : NULL;
	const char *end = p ? strchr(p, ')') : NULL;
	char methods[256];

	if (!end)
		return 0;
	p += strlen("Permission denied (");
	snprintf(methods, sizeof(methods), ",%.*s,", (int)(end - p), p);
	return strstr(methods, ",password,") || strstr(methods, ",keyboard-interactive,");
}

/* A signal while the echo is off: the terminal as it was, then the signal's default. */
static void restore_on_signal(int sig)
{
	if (quiet_fd >= 0)
		tcsetattr(quiet_fd, TCSAFLUSH, &quiet_saved);
	signal(sig, SIG_DFL);
	raise(sig);
}

/* Reads one line into buf with the echo off: 0, or -1 with *why set. */
static int read_quietly(int fd, char *buf, size_t cap, const char **why)
{
	static const int sigs[] = {SIGINT, SIGTERM, SIGHUP, SIGQUIT};
	struct sigaction sa = {.sa_handler = restore_on_signal}, old[FERRY_ARRAY_SIZE(sigs)];
	struct termios quiet;
	size_t n = 0;
	ssize_t r;
	char ch;

	if (tcgetattr(fd, &quiet_saved) < 0) {
		*why = "cannot read the terminal's settings";
		return -1;
	}
	quiet = quiet_saved;
	quiet.c_lflag &= ~(tcflag_t)(ECHO | ECHOE | ECHOK | ECHONL);
	quiet_fd = fd;
	for (size_t i = 0; i < FERRY_ARRAY_SIZE(sigs); i++)
		sigaction(sigs[i], &sa, &old[i]);
	*why = tcsetattr(fd, TCSAFLUSH, &quiet) < 0 ? "cannot turn the terminal's echo off" : NULL;
	while (!*why) {
		r = read(fd, &ch, 1);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			*why = "cannot read the terminal";
		else if (r == 0 || ch == '\n' || ch == '\r')
			break;
		else if (n + 1 >= cap)
			*why = "password too long (1023 bytes at most)";
		else
			buf[n++] = ch;
	}
	buf[n] = '\0';
	explicit_bzero(&ch, sizeof(ch));
	tcsetattr(fd, TCSAFLUSH, &quiet_saved);
	quiet_fd = -1;
	for (size_t i = 0; i < FERRY_ARRAY_SIZE(sigs); i++)
		sigaction(sigs[i], &old[i], NULL);
	if (!*why && !n)
		*why = "no password given";
	return *why ? -1 : 0;
}

/*
 * Asks for the password on the controlling terminal (stdin's when there is
 * none), as ssh and sudo do: a prompt on stderr would be lost in a
 * redirection.
 */
static int ask(const char *prompt, char *buf, size_t cap, const char **why)
{
	int fd = open("/dev/tty", O_RDWR | O_NOCTTY | O_CLOEXEC), rc;
	int in = fd >= 0 ? fd : STDIN_FILENO, out = fd >= 0 ? fd : STDERR_FILENO;

	ferry__write_all(out, prompt, strlen(prompt));
	rc = read_quietly(in, buf, cap, why);
	ferry__write_all(out, "\n", 1); /* the newline the echo did not show */
	if (fd >= 0)
		close(fd);
	return rc;
}

/* "ferry: password for LOGIN@HOST (resource 'R'): ", the login when the section names one. */
static void make_prompt(const struct ctx *c, char *prompt, size_t cap)
{
	struct ferry_resource_cfg r = {0};
	char err[512];

	if (ferry__resolve_resource(c->config, c->resource, &r, err, sizeof(err)) < 0 || !r.host) {
		snprintf(prompt, cap, "ferry: password for resource '%s': ", c->resource);
	} else {
		snprintf(prompt, cap,
			 "ferry: password for %s%s%s (resource '%s'): ", r.login ? r.login : "",
			 r.login ? "@" : "", r.host, c->resource);
	}
	ferry__resource_cfg_release(&r);
}

int ferry__cli_password_connect(struct ctx *c)
{
	char password[PASSWORD_MAX], prompt[1024];
	const char *why = NULL;
	int rc;

	if (!isatty(STDIN_FILENO)) {
		ferry__cli_report(c, FERRY_EAUTH);
		ferry__cli_errorf(c,
				  "resource '%s' needs a password and there is no terminal to ask "
				  "it on: use an ssh key or an agent, or give the password to "
				  "ferry_connect() from a program",
				  c->resource);
		goto fail;
	}
	make_prompt(c, prompt, sizeof(prompt));
	rc = ask(prompt, password, sizeof(password), &why);
	if (rc < 0) {
		explicit_bzero(password, sizeof(password));
		ferry__cli_errorf(c, "%s", why);
		goto fail;
	}
	ferry_disconnect(c->conn);
	rc = ferry_connect(c->resource, NULL, password, c->config, &c->conn);
	explicit_bzero(password, sizeof(password));
	if (rc == 0)
		return 0;
	ferry__cli_report(c, rc);
fail:
	ferry_disconnect(c->conn);
	c->conn = NULL;
	return -1;
}
