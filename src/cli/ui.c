/*
 * ui.c - `ferry ui`: starts the page's server (src/ui), prints its URL
 * with the token, opens the browser, and serves until SIGINT or SIGTERM.
 * The signals are blocked before any thread starts, so that every thread
 * inherits the mask and only sigwait() here takes them.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cli.h"
#include "util.h"
#include "ui.h"

extern char **environ;

struct ui_opts {
	char *names[64]; /* resources named by -r */
	size_t n;
	long long port;
	const char *bind;
	int no_browser;
};

static int ui_opt(struct ctx *c, void *data, int opt, const char *arg)
{
	struct ui_opts *o = data;

	switch (opt) {
	case 'r':
		if (o->n == FERRY_ARRAY_SIZE(o->names)) {
			ferry__cli_errorf(c, "too many resources (at most %zu)", o->n);
			return ferry__cli_usage_error(c);
		}
		o->names[o->n++] = (char *)arg;
		return CLI_OK;
	case OPT_PORT:
		return ferry__cli_int_option(c, "--port", arg, 1, 65535, &o->port) < 0
			   ? ferry__cli_usage_error(c)
			   : CLI_OK;
	case OPT_BIND:
		if (ferry__ui_is_loopback(arg) < 0) {
			ferry__cli_bad_value(c, "--bind", arg, "a numeric IPv4 or IPv6 address");
			return ferry__cli_usage_error(c);
		}
		o->bind = arg;
		return CLI_OK;
	case OPT_NO_BROWSER:
		o->no_browser = 1;
		return CLI_OK;
	}
	return ferry__cli_usage_error(c);
}

static int parse(struct ctx *c, int argc, char **argv, struct ui_opts *o)
{
	static const struct option opts[] = {
	    {"help", no_argument, NULL, 'h'},
	    {"resource", required_argument, NULL, 'r'},
	    {"port", required_argument, NULL, OPT_PORT},
	    {"bind", required_argument, NULL, OPT_BIND},
	    {"no-browser", no_argument, NULL, OPT_NO_BROWSER},
	    {0},
	};
	int rc;

	if (c->resource_given)
		o->names[o->n++] = (char *)c->resource;
	rc = ferry__cli_parse_opts(c, argc, argv, "hr:", opts, ui_opt, o);
	if (rc == CLI_OK)
		rc = ferry__cli_no_args(c, argc, argv);
	if (rc == CLI_OK && c->json) {
		ferry__cli_errorf(c, "--json is not an option of ui");
		rc = ferry__cli_usage_error(c);
	}
	return rc;
}

/* xdg-open URL, its output to /dev/null; its pid, 0 when there is none (then says so). */
static pid_t open_browser(const struct ctx *c, const char *url, const sigset_t *old)
{
	char *argv[] = {(char *)"xdg-open", (char *)url, NULL};
	posix_spawn_file_actions_t fa;
	posix_spawnattr_t at;
	pid_t pid = 0;
	int rc;

	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
	posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
	posix_spawn_file_actions_addopen(&fa, 2, "/dev/null", O_WRONLY, 0);
	posix_spawnattr_init(&at);
	posix_spawnattr_setsigmask(&at, old);
	posix_spawnattr_setflags(&at, POSIX_SPAWN_SETSIGMASK);
	rc = posix_spawnp(&pid, "xdg-open", &fa, &at, argv, environ);
	posix_spawnattr_destroy(&at);
	posix_spawn_file_actions_destroy(&fa);
	if (rc != 0) {
		ferry__cli_errorf(c, "cannot run 'xdg-open' (%s): open the URL yourself",
				  ferry__cli_errno_str(rc));
		return 0;
	}
	return pid;
}

/* Serves until SIGINT or SIGTERM; reaps the browser's opener meanwhile. */
static void serve(pid_t opener)
{
	sigset_t set;
	int sig = 0;

	sigemptyset(&set);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGCHLD);
	while (sig != SIGINT && sig != SIGTERM) {
		if (sigwait(&set, &sig) != 0)
			break;
		/* only our own child: libferry waits for its ssh processes itself */
		if (sig == SIGCHLD && opener > 0 && waitpid(opener, NULL, WNOHANG) == opener)
			opener = 0;
	}
}

static void warn_exposed(const struct ctx *c, const char *bind)
{
	if (bind && ferry__ui_is_loopback(bind) == 0)
		ferry__cli_errorf(
		    c,
		    "warning: listening on '%s', not a loopback address: other "
		    "hosts reach the page, and whoever has its URL controls your jobs",
		    bind);
}

static int run(struct ctx *c, const struct ui_opts *o, const sigset_t *old)
{
	struct ui_http_opts ho = {.bind = o->bind, .port = (unsigned)o->port};
	struct ui_state st;
	struct ui_http *h = NULL;
	char err[1024];
	int rc = CLI_ERR;

	if (ferry__ui_state_init(&st, c->config, o->names, o->n, err, sizeof(err)) < 0) {
		ferry__cli_errorf(c, "%s", err);
		goto out;
	}
	ho.st = &st;
	if (ferry__ui_http_start(&ho, &h, err, sizeof(err)) < 0) {
		ferry__cli_errorf(c, "%s", err);
		goto out;
	}
	warn_exposed(c, o->bind);
	if (ferry__ui_state_start(&st) < 0) {
		ferry__cli_errorf(c, "cannot start a thread");
		goto out;
	}
	printf("ferry ui: serving %zu resource%s; open\n%s\n", st.nres, st.nres == 1 ? "" : "s",
	       ferry__ui_http_url(h));
	fflush(stdout);
	serve(o->no_browser ? 0 : open_browser(c, ferry__ui_http_url(h), old));
	rc = CLI_OK;
out:
	/* the poller and the event streams first: MHD then joins its threads */
	ferry__ui_state_stop(&st);
	ferry__ui_http_stop(h);
	ferry__ui_state_release(&st);
	return rc;
}

int ferry__cli_cmd_ui(struct ctx *c, int argc, char **argv)
{
	struct ui_opts o = {0};
	sigset_t set, old;
	int rc = parse(c, argc, argv, &o);

	if (rc != CLI_OK)
		return rc;
	sigemptyset(&set);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGCHLD);
	pthread_sigmask(SIG_BLOCK, &set, &old);
	rc = run(c, &o, &old);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	return rc;
}
