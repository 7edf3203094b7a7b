/*
 * bridge.c - `ferry bridge` joins its stdin and stdout to the user's engine
 * on this host, starting it if needed, the way `git upload-pack` or
 * `rsync --server` serve the other end of an ssh connection: a client runs
 * `ssh host ferry bridge --resource R` and speaks the ordinary protocol
 * over the pipe. The bridge parses none of it: the engine checks every
 * frame and the peer's uid (the bridge runs as the ssh user).
 *
 * It hands its stdin and stdout to the engine (the adopt request, with the
 * descriptors passed over the socket), which then reads and writes the
 * channel itself, and waits until the engine closes the socket: sshd ends
 * the session when its child exits, so the bridge stays, idle. An engine
 * that refuses (a channel that is not a pipe or socket) gets the bytes
 * pumped between the channel and a new connection instead.
 */
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
#include "cli.h"
#include "ferry.h"
#include "proto.h"
#include "start.h"
#include "util.h"

#define PUMP_CHUNK (256 * 1024)
/* sysexits.h's EX_CONFIG: tells the ssh client not to retry */
#define BRIDGE_EXIT_CONFIG 78
/* EX_UNAVAILABLE: the engine said why it cannot start; no retry either */
#define BRIDGE_EXIT_REFUSED 69

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

/* Sends adopt with fds 0 and 1; 0 when the engine took them, else -1. */
static int hand_over(int sock)
{
	json_t *req = json_pack("{s:s}", "op", "adopt"), *reply = NULL;
	unsigned char *f = NULL, head[FERRY_FRAME_HDR];
	union {
		struct cmsghdr h;
		char b[CMSG_SPACE(2 * sizeof(int))];
	} cm;
	const int fds[2] = {0, 1};
	struct ferry_frame_hdr h;
	const char *why;
	char *body = NULL, err[128];
	size_t fl;
	int rc = -1;

	if (!req || ferry__frame_build(FERRY_FRAME_REQUEST, req, NULL, 0, &f, &fl))
		goto out;
	memset(&cm, 0, sizeof(cm));
	struct iovec iov = {f, fl};
	struct msghdr mh = {
	    .msg_iov = &iov, .msg_iovlen = 1, .msg_control = cm.b, .msg_controllen = sizeof(cm.b)};
	struct cmsghdr *c = CMSG_FIRSTHDR(&mh);
	c->cmsg_level = SOL_SOCKET;
	c->cmsg_type = SCM_RIGHTS;
	c->cmsg_len = CMSG_LEN(sizeof(fds));
	memcpy(CMSG_DATA(c), fds, sizeof(fds));
	/* one small frame: the socket takes it whole */
	if (sendmsg(sock, &mh, MSG_NOSIGNAL) != (ssize_t)fl)
		goto out;
	if (ferry__read_all(sock, head, sizeof(head)) || ferry__hdr_decode(head, &h, &why) ||
	    h.type != FERRY_FRAME_REPLY || !(body = malloc(h.body_len ? h.body_len : 1)) ||
	    ferry__read_all(sock, body, h.body_len))
		goto out;
	reply = ferry__json_parse(body, h.json_len, err, sizeof(err));
	rc = reply && json_is_true(json_object_get(reply, "ok")) ? 0 : -1;
out:
	json_decref(req);
	json_decref(reply);
	free(f);
	free(body);
	return rc;
}

/*
 * The engine has the channel: the bridge lets go of its own ends (so that
 * the session ends when the engine closes them) and waits for the socket
 * to close, which the engine does when the channel ends.
 */
static int wait_engine(int sock)
{
	int null = open("/dev/null", O_RDWR | O_CLOEXEC);
	char b[64];
	ssize_t n;

	if (null < 0 || dup2(null, 0) < 0 || dup2(null, 1) < 0)
		return -1;
	close(null);
	while ((n = read(sock, b, sizeof(b))) != 0)
		if (n < 0 && errno != EINTR)
			return -1;
	return 0;
}

/*
 * Starts the engine of the resource if needed (with the engine settings
 * "KEY=VALUE" a remote client sent, NULL-terminated, may be NULL), connects
 * to its socket and hands it stdin and stdout (adopt), or, when the engine
 * cannot take them, copies bytes both ways, until either side ends. The
 * bytes are frames of docs/protocol.md, which the engine checks. With
 * start 0, an engine that is not running is not started (FERRY_ECONNECT).
 * Returns 0, or a FERRY_E* code with err set (FERRY_ECONFIG and
 * FERRY_EUNSUPPORTED for the configuration; *refused set when the engine
 * said why it cannot start); nothing is written to stdout on error.
 */
static int bridge(const char *resource, const char *config, const char *const *sets, int start,
		  int *refused, char *err, size_t errlen)
{
	struct ferry_resource_cfg cfg = {0};
	struct ferry_start_state ss = {0};
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
				   &sock, &ss, err, errlen);
	*refused = ss.refused;
	if (rc)
		goto out;
	/* deeper pipes keep a transfer's bytes flowing while the engine writes (best effort) */
	fcntl(0, F_SETPIPE_SZ, 1 << 20);
	fcntl(1, F_SETPIPE_SZ, 1 << 20);
	if (hand_over(sock) == 0) {
		rc = wait_engine(sock) < 0 ? FERRY_EIO : 0;
		if (rc)
			snprintf(err, errlen, "cannot wait for the engine: %s", strerror(errno));
		close(sock);
		goto out;
	}
	close(sock);
	rc = ferry__engine_connect(resource, config, (const char *const *)eng, -1, &sock, NULL, err,
				   errlen);
	if (rc)
		goto out;
	int big = 4 << 20; /* the socket's side of the same */
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

struct bridge_sets {
	const char *v[16];
	size_t n;
	int no_start;
};

static int bridge_opt(struct ctx *c, void *data, int opt, const char *arg)
{
	struct bridge_sets *sets = data;

	if (opt == 'r') {
		c->resource = arg;
	} else if (opt == 'c') {
		c->config = arg;
	} else if (opt == OPT_NO_START) {
		sets->no_start = 1;
	} else if (opt == 's') {
		if (sets->n + 1 >= FERRY_ARRAY_SIZE(sets->v)) {
			ferry__cli_errorf(c, "too many --set options");
			return ferry__cli_usage_error(c);
		}
		sets->v[sets->n++] = arg;
	} else {
		return ferry__cli_usage_error(c);
	}
	return CLI_OK;
}

/* What `ssh host ferry bridge --resource R` runs. */
int ferry__cli_cmd_bridge(struct ctx *c, int argc, char **argv)
{
	static const struct option opts[] = {
	    {"help", no_argument, NULL, 'h'},
	    {"resource", required_argument, NULL, 'r'},
	    {"config", required_argument, NULL, 'c'},
	    {"set", required_argument, NULL, 's'},
	    {"no-start", no_argument, NULL, OPT_NO_START},
	    {0},
	};
	struct bridge_sets sets = {.n = 0};
	char err[1024];
	int refused = 0,
	    rc = ferry__cli_parse_opts(c, argc, argv, "hr:c:s:", opts, bridge_opt, &sets);

	if (rc == CLI_OK)
		rc = ferry__cli_no_args(c, argc, argv);
	if (rc != CLI_OK)
		return rc;
	if (!ferry__valid_resource_name(c->resource ? c->resource : "local")) {
		ferry__cli_errorf(c, "invalid resource name '%s'", c->resource);
		return ferry__cli_usage_error(c);
	}
	rc = bridge(c->resource, c->config, sets.v, !sets.no_start, &refused, err, sizeof(err));
	if (rc == FERRY_ECONNECT && sets.no_start) {
		ferry__cli_errorf(c, "%s", err);
		return CLI_TIMEOUT; /* "not running", as for `ferry daemon status` */
	}
	if (rc) {
		ferry__cli_errorf(c, "%s", err);
		if (refused)
			return BRIDGE_EXIT_REFUSED;
		return rc == FERRY_ECONFIG || rc == FERRY_EUNSUPPORTED ? BRIDGE_EXIT_CONFIG
								       : CLI_ERR;
	}
	return CLI_OK;
}
