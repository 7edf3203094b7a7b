/*
 * client.c - libferry's transport: the engine's Unix socket, the engine
 * started on demand, and reconnection with replay of the request.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <spawn.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "config.h"
#include "internal.h"
#include "proto.h"
#include "util.h"

extern char **environ;

int ferry__seterr(struct ferry_conn *c, int code, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(c->errmsg, sizeof(c->errmsg), fmt, ap);
	va_end(ap);
	return code;
}

static void sleep_s(double s)
{
	struct timespec ts = {.tv_sec = (time_t)s, .tv_nsec = (long)((s - (time_t)s) * 1e9)};

	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

/* The ferryd to start: $FERRYD, next to this program, installed, or PATH. */
static char *find_ferryd(void)
{
	const char *env = getenv("FERRYD");
	char self[PATH_MAX], *slash, *p;
	ssize_t n;

	if (env && *env)
		return strdup(env);
	n = readlink("/proc/self/exe", self, sizeof(self) - 1);
	if (n > 0) {
		self[n] = '\0';
		slash = strrchr(self, '/');
		if (slash) {
			*slash = '\0';
			p = ferry__asprintf("%s/ferryd", self);
			if (p && access(p, X_OK) == 0)
				return p;
			free(p);
		}
	}
	if (access(FERRYD_INSTALLED, X_OK) == 0)
		return strdup(FERRYD_INSTALLED);
	return strdup("ferryd");
}

/* Starts the engine; returns once it listens (or failed, with a message). */
static int start_engine(struct ferry_conn *c)
{
	char *exe = find_ferryd(), msg[768];
	char *argv[] = {exe,	   "--resource", c->resource, c->config ? "--config" : NULL,
			c->config, NULL};
	posix_spawn_file_actions_t fa;
	int p[2] = {-1, -1}, rc, status = 0;
	size_t got = 0;
	ssize_t n;
	pid_t pid;

	if (!exe)
		return ferry__seterr(c, FERRY_ENOMEM, "out of memory");
	if (pipe2(p, O_CLOEXEC) < 0) {
		free(exe);
		return ferry__seterr(c, FERRY_ECONNECT, "cannot create a pipe: %s",
				     strerror(errno));
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
		rc = ferry__seterr(c, FERRY_ECONNECT, "cannot start the engine '%s': %s", exe,
				   strerror(rc));
		free(exe);
		return rc;
	}
	/* the engine's first process exits once the engine listens */
	while (got < sizeof(msg) - 1 && (n = read(p[0], msg + got, sizeof(msg) - 1 - got)) != 0) {
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			break;
		got += (size_t)n;
	}
	msg[got] = '\0';
	close(p[0]);
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
		/* killed while starting (ferryd exits 3 then): worth another try */
		int transient = !WIFEXITED(status) || WEXITSTATUS(status) == 3;
		while (got && (msg[got - 1] == '\n'))
			msg[--got] = '\0';
		ferry__seterr(c, FERRY_ECONNECT, "cannot start the engine '%s': %s", exe,
			      got ? msg : "it failed without a message");
		free(exe);
		return transient ? FERRY_EAGAIN : FERRY_ECONNECT;
	}
	free(exe);
	return 0;
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

/* send(2) with MSG_NOSIGNAL: a dead engine must not kill the caller with SIGPIPE. */
static int send_all(int fd, const unsigned char *p, size_t len)
{
	while (len > 0) {
		ssize_t n = send(fd, p, len, MSG_NOSIGNAL);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return FERRY_EIO;
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

static int send_frame(int fd, json_t *req)
{
	unsigned char *f;
	size_t fl;
	int rc = ferry__frame_build(FERRY_FRAME_REQUEST, req, NULL, 0, &f, &fl);

	if (rc)
		return rc;
	rc = send_all(fd, f, fl);
	free(f);
	return rc;
}

/* Reads one reply frame. FERRY_EIO when the connection broke. */
static int recv_frame(struct ferry_conn *c, json_t **reply, void **bin, size_t *binlen)
{
	unsigned char hdr[FERRY_FRAME_HDR];
	struct ferry_frame_hdr h;
	const char *why;
	char *body, err[256];

	if (ferry__read_all(c->fd, hdr, sizeof(hdr)))
		return FERRY_EIO;
	if (ferry__hdr_decode(hdr, &h, &why) || h.type != FERRY_FRAME_REPLY)
		return ferry__seterr(c, FERRY_EPROTO, "bad reply from the engine: %s",
				     h.type != FERRY_FRAME_REPLY ? "not a reply" : why);
	body = malloc(h.body_len + 1);
	if (!body)
		return ferry__seterr(c, FERRY_ENOMEM, "out of memory");
	if (ferry__read_all(c->fd, body, h.body_len)) {
		free(body);
		return FERRY_EIO;
	}
	*reply = ferry__json_parse(body, h.json_len, err, sizeof(err));
	if (!*reply) {
		free(body);
		return ferry__seterr(c, FERRY_EPROTO, "bad reply from the engine: %s", err);
	}
	if (bin) {
		*binlen = h.body_len - h.json_len;
		*bin = NULL;
		if (*binlen) {
			*bin = malloc(*binlen);
			if (*bin)
				memcpy(*bin, body + h.json_len, *binlen);
		}
	}
	free(body);
	return 0;
}

/* Turns an error reply into its code and message. */
static int reply_error(struct ferry_conn *c, json_t *reply)
{
	json_t *code = json_object_get(reply, "code");
	const char *msg = json_string_value(json_object_get(reply, "message"));
	int rc = json_is_integer(code) ? (int)json_integer_value(code) : FERRY_EPROTO;

	if (rc >= 0 || rc < FERRY_EINTERNAL)
		rc = FERRY_EPROTO;
	return ferry__seterr(c, rc, "%s", msg ? msg : ferry_strerror(rc));
}

static int handshake(struct ferry_conn *c)
{
	json_t *hello = json_pack("{s:s,s:i,s:s}", "op", "hello", "version", FERRY_PROTO_VERSION,
				  "client", "libferry " FERRY_VERSION);
	json_t *reply = NULL;
	int rc;

	if (!hello)
		return ferry__seterr(c, FERRY_ENOMEM, "out of memory");
	rc = send_frame(c->fd, hello);
	json_decref(hello);
	/* even when the send failed, the engine may have said why it refused us */
	if (!rc || rc == FERRY_EIO)
		rc = recv_frame(c, &reply, NULL, NULL);
	if (rc == FERRY_EIO)
		return FERRY_EIO;
	if (rc)
		return rc;
	if (!json_is_true(json_object_get(reply, "ok")))
		rc = reply_error(c, reply);
	json_decref(reply);
	return rc;
}

int ferry__open(struct ferry_conn *c)
{
	char *state = ferry__state_dir(c->resource), *sock;
	int fd, rc;
	double until;

	if (!state)
		return ferry__seterr(c, FERRY_ECONFIG,
				     "neither XDG_STATE_HOME nor HOME is an absolute path");
	sock = ferry__asprintf("%s/ferryd.sock", state);
	free(state);
	if (!sock)
		return ferry__seterr(c, FERRY_ENOMEM, "out of memory");
	/* a starting engine gets 10 s to listen, or less when the caller said so */
	until = ferry__mono() + (c->retry_budget_s < 1	  ? 1
				 : c->retry_budget_s < 10 ? c->retry_budget_s
							  : 10);
again:
	for (double pause = 0.01;; pause = pause < 0.2 ? pause * 2 : pause) {
		fd = connect_socket(sock);
		if (fd >= 0)
			break;
		if (fd != -ENOENT && fd != -ECONNREFUSED) {
			rc = ferry__seterr(c, fd == -EACCES ? FERRY_EPERM : FERRY_ECONNECT,
					   "cannot connect to '%s': %s", sock, strerror(-fd));
			free(sock);
			return rc;
		}
		/*
		 * No engine listens: start one, again after each refusal (the one
		 * started may have been killed since). A ferryd that finds another
		 * holding the lock exits at once, and that one is about to listen.
		 */
		rc = start_engine(c);
		if (rc && rc != FERRY_EAGAIN) {
			free(sock);
			return rc;
		}
		if (ferry__mono() > until) {
			if (!rc)
				ferry__seterr(c, FERRY_ECONNECT,
					      "the engine does not answer on '%s': %s", sock,
					      strerror(-fd));
			free(sock);
			return FERRY_ECONNECT;
		}
		if (rc || pause > 0.01)
			sleep_s(pause);
	}
	c->fd = fd;
	rc = handshake(c);
	if (rc)
		ferry__close(c);
	if (rc == FERRY_EIO) {
		/* the engine died under us (or is being restarted): start over */
		if (ferry__mono() <= until) {
			sleep_s(0.05);
			goto again;
		}
		rc = ferry__seterr(c, FERRY_ECONNECT, "the engine on '%s' closed the connection",
				   sock);
	}
	free(sock);
	return rc;
}

void ferry__close(struct ferry_conn *c)
{
	if (c->fd >= 0)
		close(c->fd);
	c->fd = -1;
}

/* The engine was lost and not regained within the connection's timeout. */
static int lost(struct ferry_conn *c)
{
	char why[sizeof(c->errmsg)];

	snprintf(why, sizeof(why), "%s", c->errmsg[0] ? c->errmsg : "the connection broke");
	return ferry__seterr(c, FERRY_EDISCONNECTED,
			     "lost the engine of '%s' and could not regain it within %g s: %.600s",
			     c->resource, c->retry_budget_s, why);
}

int ferry__call(struct ferry_conn *c, json_t *req, double deadline, json_t **reply, void **bin,
		size_t *binlen)
{
	double give_up = ferry__mono() + c->retry_budget_s, pause = 0.05;
	int rc, reconnecting = 0;

	c->errmsg[0] = '\0';
	c->replayed = 0;
	for (;;) {
		/* a first connect fails at once; a reconnect may wait for a restart */
		if (c->fd < 0 && (rc = ferry__open(c)) != 0) {
			if (!reconnecting || rc != FERRY_ECONNECT)
				return rc;
			if (ferry__mono() > give_up)
				return lost(c);
			goto retry;
		}
		if (deadline > 0) {
			double left = deadline - ferry__mono();
			json_object_set_new(req, "timeout", json_real(left > 0 ? left : 0));
		}
		rc = send_frame(c->fd, req);
		if (!rc)
			rc = recv_frame(c, reply, bin, binlen);
		if (rc != FERRY_EIO)
			break;
		ferry__close(c); /* the engine died or restarted: replay on a new one */
		reconnecting = 1;
		c->replayed = 1;
		if (ferry__mono() > give_up)
			return lost(c);
	retry:
		sleep_s(pause);
		pause = pause < 1 ? pause * 2 : 1;
	}
	if (rc)
		return rc;
	if (!json_is_true(json_object_get(*reply, "ok"))) {
		rc = reply_error(c, *reply);
		json_decref(*reply);
		*reply = NULL;
		if (bin) {
			free(*bin);
			*bin = NULL;
		}
	}
	return rc;
}
