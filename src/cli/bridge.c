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
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "cfg.h"
#include "ferry.h"
#include "start.h"
#include "util.h"

#define PUMP_CHUNK (256 * 1024)

/*
 * Moves what one read gives from 'from' to 'to'. 1 moved, 0 at EOF, -1
 * error. sshd hands the bridge pipes, so splice(2) moves the bytes without
 * copying them through this process (it matters for transfers); where
 * neither end is a pipe, a read and a write.
 */
static int move(int from, int to, char *buf, int *can_splice)
{
	ssize_t n;

	if (*can_splice) {
		do
			n = splice(from, NULL, to, NULL, PUMP_CHUNK, SPLICE_F_MOVE);
		while (n < 0 && errno == EINTR);
		if (n >= 0)
			return n > 0;
		if (errno != EINVAL)
			return -1;
		*can_splice = 0;
	}
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
	int in_open = 1, rc = 0, splice_out = 1, splice_in = 1;

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
			m = move(sock, 1, buf, &splice_out);
			if (m <= 0) /* the engine closed (or stdout did): the client reconnects */
				break;
		}
		if (in_open && p[1].revents) {
			m = move(0, sock, buf, &splice_in);
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

int ferry__bridge(const char *resource, const char *config, const char *const *sets, int start,
		  char *err, size_t errlen)
{
	struct ferry_resource_cfg cfg = {0};
	const char *none[] = {NULL};
	char **eng = NULL;
	int rc, sock = -1;

	signal(SIGPIPE, SIG_IGN); /* a gone peer shows as a write error */
	if (!resource)
		resource = "local";
	/*
	 * The settings come from the client's configuration. This host's own
	 * section, if any, gives the rest; its ssh keys (a copy of the
	 * client's file) say how to reach this very host and mean nothing here.
	 */
	if (ferry__resolve_resource_set(config, resource, sets ? sets : none, &cfg, err, errlen) <
	    0)
		return FERRY_ECONFIG;
	free(cfg.host);
	cfg.host = NULL;
	cfg.port = 0;
	free(cfg.login);
	free(cfg.remote_command);
	free(cfg.ssh_options);
	cfg.login = cfg.remote_command = cfg.ssh_options = NULL;
	if (ferry__resource_supported(&cfg, err, errlen) < 0) {
		rc = FERRY_EUNSUPPORTED;
		goto out;
	}
	/* the engine gets every setting, so it needs no section here either */
	if (!cfg.scheduler && !(cfg.scheduler = strdup("local")))
		goto nomem;
	eng = ferry__cfg_engine_settings(&cfg);
	if (!eng)
		goto nomem;
	rc = ferry__engine_connect(resource, config, (const char *const *)eng, start ? 10 : -1,
				   &sock, err, errlen);
	if (rc)
		goto out;
	/*
	 * Deeper buffers on both hops keep a transfer's bytes flowing while
	 * the engine writes a chunk (best effort: pipes and sockets work
	 * without).
	 */
	int big = 4 << 20;
	fcntl(0, F_SETPIPE_SZ, 1 << 20);
	fcntl(1, F_SETPIPE_SZ, 1 << 20);
	setsockopt(sock, SOL_SOCKET, SO_SNDBUF, &big, sizeof(big));
	setsockopt(sock, SOL_SOCKET, SO_RCVBUF, &big, sizeof(big));
	rc = pump(sock, err, errlen) < 0 ? FERRY_EIO : 0;
	close(sock);
out:
	ferry__strv_free(eng);
	ferry__resource_cfg_release(&cfg);
	return rc;
nomem:
	snprintf(err, errlen, "out of memory");
	rc = FERRY_ENOMEM;
	goto out;
}
