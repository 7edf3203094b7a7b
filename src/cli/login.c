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
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <sys/select.h>
#include <termios.h>
#include <unistd.h>

#include "cfg.h"
#include "cli.h"
#include "util.h"

/* Longest password read; ferry-askpass takes up to 4 KiB. */
#define PASSWORD_MAX 1024

/*
 * The terminal while its echo is off, for a signal handler to give it
 * back: quiet_saved is complete before quiet_fd names the terminal (the
 * fence orders the two for the handler).
 */
static volatile sig_atomic_t quiet_fd = -1;
static struct termios quiet_saved;
/* The stop signal (^Z, or a background read or write) met at the prompt, or 0. */
static volatile sig_atomic_t stop_sig;

/* The signals that end the command, and those that stop it (readpassphrase's). */
static const int fatal_sigs[] = {SIGINT, SIGTERM, SIGHUP, SIGQUIT};
static const int stop_sigs[] = {SIGTSTP, SIGTTIN, SIGTTOU};
#define NSIGS (FERRY_ARRAY_SIZE(fatal_sigs) + FERRY_ARRAY_SIZE(stop_sigs))

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

/*
 * A signal that ends the command while the echo is off: the terminal as
 * it was, then the signal's default. tcsetattr(), signal() and raise()
 * are async-signal-safe; the signal is blocked in here, so it ends the
 * process as the handler returns.
 */
static void restore_on_signal(int sig)
{
	int fd = quiet_fd;

	if (fd >= 0)
		tcsetattr(fd, TCSAFLUSH, &quiet_saved);
	signal(sig, SIG_DFL);
	raise(sig);
}

/* A stop signal: only noted; the reader gives the terminal back, stops, re-prompts. */
static void note_stop(int sig)
{
	stop_sig = sig;
}

/* sig caught with sa, unless ignored: a ^C that the shell made harmless stays so. */
static void catch_one(int sig, const struct sigaction *sa, struct sigaction *old)
{
	sigaction(sig, NULL, old);
	if (old->sa_handler != SIG_IGN)
		sigaction(sig, sa, NULL);
}

/*
 * Catches the signals for the time of the prompt (stops: the stop
 * signals). The stop signals' handler is installed without SA_RESTART so
 * that a wait or a tcsetattr() they interrupt returns EINTR.
 */
static void catch_signals(struct sigaction old[NSIGS], sigset_t *stops)
{
	struct sigaction fatal = {.sa_handler = restore_on_signal};
	struct sigaction stop = {.sa_handler = note_stop};
	size_t k = 0;

	sigemptyset(&fatal.sa_mask);
	for (size_t i = 0; i < FERRY_ARRAY_SIZE(fatal_sigs); i++)
		sigaddset(&fatal.sa_mask, fatal_sigs[i]);
	sigemptyset(stops);
	for (size_t i = 0; i < FERRY_ARRAY_SIZE(stop_sigs); i++) {
		sigaddset(&fatal.sa_mask, stop_sigs[i]);
		sigaddset(stops, stop_sigs[i]);
	}
	stop.sa_mask = fatal.sa_mask;
	for (size_t i = 0; i < FERRY_ARRAY_SIZE(fatal_sigs); i++)
		catch_one(fatal_sigs[i], &fatal, &old[k++]);
	for (size_t i = 0; i < FERRY_ARRAY_SIZE(stop_sigs); i++)
		catch_one(stop_sigs[i], &stop, &old[k++]);
}

static void release_signals(const struct sigaction old[NSIGS])
{
	size_t k = 0;

	for (size_t i = 0; i < FERRY_ARRAY_SIZE(fatal_sigs); i++)
		sigaction(fatal_sigs[i], &old[k++], NULL);
	for (size_t i = 0; i < FERRY_ARRAY_SIZE(stop_sigs); i++)
		sigaction(stop_sigs[i], &old[k++], NULL);
}

/*
 * Reads one line into buf: 0, or -1 with *why set; 1 when a stop signal
 * came first (stop_sig). The caller blocks the stop signals but in
 * pselect() (mask: the signals blocked there), so one that comes is seen
 * before the next wait and not only after the next key.
 */
static int read_line(int fd, const sigset_t *mask, char *buf, size_t cap, size_t *n,
		     const char **why)
{
	fd_set in;
	ssize_t r;
	char ch = 0;
	int rc = 0;

	while (!rc) {
		FD_ZERO(&in);
		FD_SET(fd, &in);
		if (stop_sig)
			rc = 1;
		else if (pselect(fd + 1, &in, NULL, NULL, NULL, mask) < 0)
			rc = errno == EINTR ? 0 : (*why = "cannot wait for the terminal", -1);
		else if ((r = read(fd, &ch, 1)) < 0)
			rc = errno == EINTR || errno == EAGAIN
				 ? 0
				 : (*why = "cannot read the terminal", -1);
		else if (r == 0 || ch == '\n' || ch == '\r')
			break;
		else if (*n + 1 >= cap)
			rc = (*why = "password too long (1023 bytes at most)", -1);
		else
			buf[(*n)++] = ch;
	}
	explicit_bzero(&ch, sizeof(ch));
	return rc;
}

/*
 * One prompt with the echo off, as readpassphrase(3) does it: 0 with the
 * line in buf, 1 when a stop signal came (the terminal given back, the
 * signal in stop_sig to be sent again), -1 with *why set. The prompt is
 * written before the signals are caught: in the background with tostop
 * set, the write's SIGTTOU stops the command as ever.
 */
static int prompt_once(int fd, const char *prompt, char *buf, size_t cap, const char **why)
{
	struct sigaction old[NSIGS];
	struct termios quiet;
	sigset_t stops, mask;
	size_t n = 0;
	int rc;

	stop_sig = 0;
	if (tcgetattr(fd, &quiet_saved) < 0)
		return (*why = "cannot read the terminal's settings", -1);
	quiet = quiet_saved;
	quiet.c_lflag &= ~(tcflag_t)(ECHO | ECHOE | ECHOK | ECHONL);
	ferry__write_all(fd, prompt, strlen(prompt));
	atomic_signal_fence(memory_order_seq_cst);
	quiet_fd = fd;
	catch_signals(old, &stops);
	/* from the background, SIGTTOU (noted) interrupts it: stop, ask again */
	while ((rc = tcsetattr(fd, TCSAFLUSH, &quiet)) < 0 && errno == EINTR && !stop_sig)
		;
	sigprocmask(SIG_BLOCK, &stops, &mask);
	if (stop_sig)
		rc = 1;
	else if (rc < 0)
		rc = (*why = "cannot turn the terminal's echo off", -1);
	else
		rc = read_line(fd, &mask, buf, cap, &n, why);
	buf[n] = '\0';
	/* SIGTTOU blocked: the terminal is given back even from the background */
	while (tcsetattr(fd, TCSAFLUSH, &quiet_saved) < 0 && errno == EINTR)
		;
	quiet_fd = -1;
	release_signals(old);
	sigprocmask(SIG_SETMASK, &mask, NULL);
	ferry__write_all(fd, "\n", 1); /* the newline the echo did not show */
	return rc;
}

/*
 * Asks for the password on the controlling terminal, as ssh and sudo do:
 * a prompt on stderr would be lost in a redirection, and stdin may be a
 * pipe of the command's own data. A stop at the prompt (^Z) gives the
 * terminal back with its echo on, stops, and asks again once continued.
 */
static int ask(int fd, const char *prompt, char *buf, size_t cap, const char **why)
{
	int rc, sig;

	while ((rc = prompt_once(fd, prompt, buf, cap, why)) == 1) {
		sig = stop_sig;
		explicit_bzero(buf, cap);
		kill(getpid(), sig); /* its default now: stop until continued */
	}
	if (!rc && !buf[0])
		return (*why = "no password given", -1);
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
	int rc, tty;

	/* the terminal is the controlling one, whatever stdin is (echo data | ferry ...) */
	tty = open("/dev/tty", O_RDWR | O_NOCTTY | O_CLOEXEC);
	if (tty < 0) {
		ferry__cli_report(c, FERRY_EAUTH);
		ferry__cli_errorf(c,
				  "resource '%s' needs a password and there is no terminal to ask "
				  "it on: use an ssh key or an agent, or give the password to "
				  "ferry_connect() from a program",
				  c->resource);
		goto fail;
	}
	make_prompt(c, prompt, sizeof(prompt));
	rc = ask(tty, prompt, password, sizeof(password), &why);
	close(tty);
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
