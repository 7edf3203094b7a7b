/*
 * ui.c - `ferry ui`: starts the page's server (src/ui), prints its URL
 * with the token, opens the browser (through a file of this user's that
 * leads to the URL: see struct opener), and serves until SIGINT or SIGTERM.
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

/*
 * The page the browser is given: a file only this user reads, in a
 * directory of its own, that sends the browser on to the URL with the
 * token (Jupyter's way). The browser's command line, which `ps` shows
 * every local user, then names only the file.
 */
struct opener {
	char *dir;  /* mkdtemp(3): mode 0700 */
	char *path; /* dir/open.html: mode 0600 */
};

/* Where the file's directory is made: $XDG_RUNTIME_DIR, else $TMPDIR, else /tmp. */
static const char *opener_base(void)
{
	const char *base = getenv("XDG_RUNTIME_DIR");

	if (!base || base[0] != '/')
		base = getenv("TMPDIR");
	return base && base[0] == '/' ? base : "/tmp";
}

/* A directory of our own under base (mode 0700): NULL with errno set. */
static char *private_dir(const char *base)
{
	char *dir = ferry__asprintf("%s/ferry-ui-XXXXXX", base);

	if (!dir) {
		errno = ENOMEM;
		return NULL;
	}
	if (!mkdtemp(dir)) {
		int e = errno;

		free(dir);
		errno = e;
		return NULL;
	}
	return dir;
}

/* The page that redirects to url (no character of it needs quoting in HTML or JS). */
static char *redirect_page(const char *url)
{
	return ferry__asprintf("<!doctype html>\n<html><head><meta charset=\"utf-8\">\n"
			       "<meta http-equiv=\"refresh\" content=\"1;url=%s\">\n"
			       "<title>ferry ui</title></head><body>\n"
			       "<script>window.location.replace(\"%s\");</script>\n"
			       "<p>Opening <a href=\"%s\">the ferry page</a>.</p>\n"
			       "</body></html>\n",
			       url, url, url);
}

/* Writes o's file that leads to url: 0, or -errno with o's members as far as made. */
static int opener_write(struct opener *o, const char *url)
{
	char *page = redirect_page(url);
	int fd = -1, rc = 0;

	o->dir = private_dir(opener_base());
	if (!o->dir)
		rc = -errno;
	if (rc == 0 && !(o->path = ferry__asprintf("%s/open.html", o->dir)))
		rc = -ENOMEM;
	if (rc == 0 && !page)
		rc = -ENOMEM;
	if (rc == 0 &&
	    (fd = open(o->path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600)) < 0)
		rc = -errno;
	if (rc == 0)
		rc = ferry__write_all(fd, page, strlen(page));
	if (fd >= 0 && close(fd) < 0 && rc == 0)
		rc = -errno;
	free(page);
	return rc;
}

/* Removes o's file and directory (made or not). */
static void opener_remove(struct opener *o)
{
	if (o->path)
		unlink(o->path);
	if (o->dir)
		rmdir(o->dir);
	free(o->path);
	free(o->dir);
	o->path = o->dir = NULL;
}

/* xdg-open FILE, its output to /dev/null; its pid, 0 when there is none (then says so). */
static pid_t open_browser(const struct ctx *c, const char *file, const sigset_t *old)
{
	char *argv[] = {(char *)"xdg-open", (char *)file, NULL};
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

/* Opens the page in the browser through o's file: as open_browser(). */
static pid_t open_page(const struct ctx *c, struct opener *o, const char *url, const sigset_t *old)
{
	int rc = opener_write(o, url);

	if (rc < 0) {
		ferry__cli_errorf(c,
				  "cannot write the browser's page under '%s' (%s): open the "
				  "URL yourself",
				  opener_base(), ferry__cli_errno_str(-rc));
		opener_remove(o);
		return 0;
	}
	return open_browser(c, o->path, old);
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
	struct opener op = {0};
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
	if (ferry__ui_http_remote_url(h))
		printf("or from another host (the same token: it opens one session)\n%s\n",
		       ferry__ui_http_remote_url(h));
	fflush(stdout);
	serve(o->no_browser ? 0 : open_page(c, &op, ferry__ui_http_url(h), old));
	rc = CLI_OK;
out:
	opener_remove(&op);
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
