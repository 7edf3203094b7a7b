/*
 * bridge.c - `ferry bridge` joins its stdin and stdout to the user's engine
 * on this host, starting it if needed, the way `git upload-pack` or
 * `rsync --server` serve the other end of an ssh connection: a client runs
 * `ssh host ferry bridge --resource R` and speaks the ordinary protocol
 * over the pipe. The bridge is a byte pump: the engine checks every frame
 * and the peer's uid (the bridge runs as the ssh user), so the bridge adds
 * no parsing of its own that could go wrong.
 */
#include "bridge.h"

#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "ferry.h"
#include "util.h"

#define PUMP_CHUNK (256 * 1024)

static int connect_engine(const char *resource, char *err, size_t errlen)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	char *state = ferry__state_dir(resource), *path;
	int fd = -1;

	path = state ? ferry__asprintf("%s/ferryd.sock", state) : NULL;
	free(state);
	if (!path || strlen(path) >= sizeof(sa.sun_path)) {
		snprintf(err, errlen, "no usable socket path for resource '%s'", resource);
		goto out;
	}
	strcpy(sa.sun_path, path);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd >= 0 && connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		snprintf(err, errlen, "cannot connect to '%s': %s", path, strerror(errno));
		close(fd);
		fd = -1;
	}
out:
	free(path);
	return fd;
}

/* Moves what one read gives from 'from' to 'to'. 1 moved, 0 at EOF, -1 error. */
static int move(int from, int to, char *buf)
{
	ssize_t n;

	do
		n = read(from, buf, PUMP_CHUNK);
	while (n < 0 && errno == EINTR);
	if (n <= 0)
		return n == 0 ? 0 : -1;
	return ferry__write_all(to, buf, (size_t)n) == 0 ? 1 : -1;
}

static int pump(int sock, char *err, size_t errlen)
{
	char *buf = malloc(PUMP_CHUNK);
	int in_open = 1, rc = 0;

	if (!buf) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	for (;;) {
		struct pollfd p[2] = {{sock, POLLIN, 0}, {in_open ? 0 : -1, POLLIN, 0}};
		int m;

		if (poll(p, 2, -1) < 0) {
			if (errno == EINTR)
				continue;
			snprintf(err, errlen, "poll: %s", strerror(errno));
			rc = -1;
			break;
		}
		if (p[0].revents) {
			m = move(sock, 1, buf);
			if (m <= 0) /* the engine closed (or stdout did): the client reconnects */
				break;
		}
		if (in_open && p[1].revents) {
			m = move(0, sock, buf);
			if (m <= 0) {
				/* the client is done sending: let the engine answer what it has */
				in_open = 0;
				shutdown(sock, SHUT_WR);
			}
		}
	}
	free(buf);
	return rc;
}

int ferry__bridge(const char *resource, const char *config, char *err, size_t errlen)
{
	ferry_conn *conn = NULL;
	int rc, sock;

	signal(SIGPIPE, SIG_IGN); /* a gone peer shows as a write error */
	/* connecting starts the engine if need be, and checks the resource */
	rc = ferry_connect(resource, NULL, NULL, config, &conn);
	if (rc) {
		snprintf(err, errlen, "%s", conn ? ferry_errmsg(conn) : ferry_strerror(rc));
		ferry_disconnect(conn);
		return -1;
	}
	ferry_disconnect(conn);
	sock = connect_engine(resource ? resource : "local", err, errlen);
	if (sock < 0)
		return -1;
	rc = pump(sock, err, errlen);
	close(sock);
	return rc;
}
