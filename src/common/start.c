/*
 * start.c - reaching this host's engine of a resource: its Unix socket,
 * and the engine started on demand. Shared by libferry (local resources)
 * and `ferry bridge` (the far end of an ssh connection).
 */
#include "start.h"

#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "config.h"
#include "ferry.h"
#include "trust.h"
#include "util.h"

extern char **environ;

/* dir/name when it is an executable file there; NULL otherwise. */
static char *program_in(const char *file, const char *name)
{
	const char *slash = file ? strrchr(file, '/') : NULL;
	char *p;

	if (!slash)
		return NULL;
	p = ferry__asprintf("%.*s/%s", (int)(slash - file), file, name);
	if (p && access(p, X_OK) == 0)
		return p;
	free(p);
	return NULL;
}

/*
 * Beside the object that holds this code first (the Python module of a
 * wheel carries libferry inside it and the programs beside it, in its
 * package; a python3 in /usr/bin must not find another ferryd there),
 * then beside the running program (the CLI and ferryd installed together).
 */
char *ferry__find_program(const char *envvar, const char *name, const char *installed)
{
	const char *env = envvar ? getenv(envvar) : NULL;
	char self[PATH_MAX], *p;
	Dl_info here;
	ssize_t n;

	if (env && *env)
		return strdup(env);
	if (dladdr((void *)ferry__find_program, &here) && (p = program_in(here.dli_fname, name)))
		return p;
	n = readlink("/proc/self/exe", self, sizeof(self) - 1);
	if (n > 0) {
		self[n] = '\0';
		if ((p = program_in(self, name)))
			return p;
	}
	if (installed && access(installed, X_OK) == 0)
		return strdup(installed);
	return strdup(name);
}

static void sleep_s(double s)
{
	struct timespec ts = {.tv_sec = (time_t)s, .tv_nsec = (long)((s - (time_t)s) * 1e9)};

	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

/* argv of ferryd: the program, --resource R, [--config F], --set S..., NULL. */
static char **engine_argv(char *exe, const char *resource, const char *config,
			  const char *const *sets)
{
	size_t n = 0, nsets = 0;
	char **argv;

	while (sets && sets[nsets])
		nsets++;
	argv = calloc(6 + 2 * nsets, sizeof(*argv));
	if (!argv)
		return NULL;
	argv[n++] = exe;
	argv[n++] = (char *)"--resource";
	argv[n++] = (char *)resource;
	if (config) {
		argv[n++] = (char *)"--config";
		argv[n++] = (char *)config;
	}
	for (size_t i = 0; i < nsets; i++) {
		argv[n++] = (char *)"--set";
		argv[n++] = (char *)sets[i];
	}
	return argv;
}

/* Reads what the engine's first process says before it exits. */
static void read_msg(int fd, char *msg, size_t cap)
{
	size_t got = 0;
	ssize_t n;

	while (got < cap - 1 && (n = read(fd, msg + got, cap - 1 - got)) != 0) {
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			break;
		got += (size_t)n;
	}
	while (got && msg[got - 1] == '\n')
		got--;
	msg[got] = '\0';
}

int ferry__start_engine(const char *resource, const char *config, const char *const *sets,
			int *refused, char *err, size_t errlen)
{
	char *exe = ferry__find_program("FERRYD", "ferryd", FERRYD_INSTALLED), msg[768];
	char **argv = exe ? engine_argv(exe, resource, config, sets) : NULL;
	posix_spawn_file_actions_t fa;
	int p[2] = {-1, -1}, rc, status = 0;
	pid_t pid;

	if (!argv) {
		snprintf(err, errlen, "out of memory");
		rc = FERRY_ENOMEM;
		goto out;
	}
	if (pipe2(p, O_CLOEXEC) < 0) {
		snprintf(err, errlen, "cannot create a pipe: %s", strerror(errno));
		rc = FERRY_ECONNECT;
		goto out;
	}
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
	posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
	posix_spawn_file_actions_adddup2(&fa, p[1], 2);
	rc = posix_spawnp(&pid, exe, &fa, NULL, argv, environ);
	posix_spawn_file_actions_destroy(&fa);
	close(p[1]);
	if (rc) {
		close(p[0]);
		snprintf(err, errlen, "cannot start the engine '%s': %s", exe, strerror(rc));
		rc = FERRY_ECONNECT;
		goto out;
	}
	/* the engine's first process exits once the engine listens */
	read_msg(p[0], msg, sizeof(msg));
	close(p[0]);
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
	rc = 0;
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
		snprintf(err, errlen, "cannot start the engine '%s': %s", exe,
			 msg[0] ? msg : "it failed without a message");
		/* killed while starting (ferryd exits 3 then): worth another try */
		rc = !WIFEXITED(status) || WEXITSTATUS(status) == 3 ? FERRY_EAGAIN : FERRY_ECONNECT;
		/* it said why it cannot start: the next one would say the same */
		*refused = rc == FERRY_ECONNECT && msg[0];
	}
out:
	free(argv);
	free(exe);
	return rc;
}

static int connect_socket(const char *path)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	int fd;

	if (strlen(path) >= sizeof(sa.sun_path))
		return -ENAMETOOLONG;
	strcpy(sa.sun_path, path);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		int e = errno;
		close(fd);
		return -e;
	}
	return fd;
}

/*
 * The engine's socket in the resource's state directory, once that is
 * found to be this user's own: nothing is sent to an engine whose
 * directory another user can change, as a shared or mistyped
 * XDG_STATE_HOME would hand them our jobs' secrets. 0 or an error.
 */
static int socket_path(const char *resource, char **sock, char *err, size_t errlen)
{
	char *state = ferry__state_dir(resource);
	int rc;

	*sock = NULL;
	if (!state) {
		snprintf(err, errlen, "neither XDG_STATE_HOME nor HOME is an absolute path");
		return FERRY_ECONFIG;
	}
	rc = ferry__check_own_dir("state directory", state, err, errlen);
	if (!rc && !(*sock = ferry__asprintf("%s/ferryd.sock", state))) {
		snprintf(err, errlen, "out of memory");
		rc = FERRY_ENOMEM;
	}
	free(state);
	return rc;
}

/* An engine that died while starting: whatever killed it may kill the next one too. */
static void died_pause(struct ferry_start_state *ss, double until)
{
	double left = until - ferry__mono();

	ss->died_pause = ss->died_pause <= 0 ? 0.05 : ss->died_pause * 2;
	if (ss->died_pause > 5)
		ss->died_pause = 5;
	/* never past the caller's budget, which the next turn then reports */
	sleep_s(ss->died_pause < left ? ss->died_pause : left > 0 ? left : 0);
}

int ferry__engine_connect(const char *resource, const char *config, const char *const *sets,
			  double budget_s, int *fdp, struct ferry_start_state *ss, char *err,
			  size_t errlen)
{
	double until = ferry__mono() + budget_s;
	struct ferry_start_state mine = {0};
	char *sock;
	int fd, rc, listened = 0;

	*fdp = -1;
	ss = ss ? ss : &mine;
	ss->refused = 0;
	if ((rc = socket_path(resource, &sock, err, errlen)))
		return rc;
	for (double pause = 0.01;; pause = pause < 0.2 ? pause * 2 : pause) {
		fd = connect_socket(sock);
		/* a path proves nothing: the one listening must be this user */
		if (fd >= 0 && (rc = ferry__check_peer(fd, sock, err, errlen))) {
			close(fd);
			goto out;
		}
		if (fd >= 0)
			break;
		if (fd != -ENOENT && fd != -ECONNREFUSED) {
			snprintf(err, errlen, "cannot connect to '%s': %s", sock, strerror(-fd));
			rc = fd == -EACCES ? FERRY_EPERM : FERRY_ECONNECT;
			goto out;
		}
		if (budget_s < 0) {
			snprintf(err, errlen, "the engine of resource '%s' is not running",
				 resource);
			rc = FERRY_ECONNECT;
			goto out;
		}
		if (listened && ferry__mono() > until) {
			snprintf(err, errlen, "the engine does not answer on '%s': %s", sock,
				 strerror(-fd));
			rc = FERRY_ECONNECT;
			goto out;
		}
		/*
		 * No engine listens: start one, again after each refusal (the one
		 * started may have been killed since). The ferryd started returns
		 * once an engine listens, however long it takes to load its jobs:
		 * the one it starts, or the one it finds holding the lock (main.c).
		 * Then the engine is tried once more, whatever the time.
		 */
		rc = ferry__start_engine(resource, config, sets, &ss->refused, err, errlen);
		if (rc && rc != FERRY_EAGAIN)
			goto out;
		if (rc && ferry__mono() > until) {
			rc = FERRY_ECONNECT;
			goto out;
		}
		listened = !rc;
		if (rc)
			died_pause(ss, until);
		else if (pause > 0.01)
			sleep_s(pause);
	}
	*fdp = fd;
	rc = 0;
out:
	free(sock);
	return rc;
}
