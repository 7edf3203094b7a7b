/*
 * client.c - libferry's transport: the engine's Unix socket, the engine
 * started on demand, and reconnection with replay of the request.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "config.h"
#include "frame.h"
#include "internal.h"
#include "jbytes.h"
#include "lastwords.h"
#include "proto.h"
#include "start.h"
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

/*
 * A frame whose header and JSON are built here and whose data (a
 * transfer's chunk) is sent from where it is: one copy less of every byte.
 */
static int send_frame_data(int fd, json_t *req, const void *data, size_t datalen)
{
	unsigned char *head;
	size_t hl;
	int rc = ferry__frame_head(FERRY_FRAME_REQUEST, req, datalen, &head, &hl);

	if (rc)
		return rc;
	struct iovec iov[2] = {{head, hl}, {(void *)data, datalen}};
	struct msghdr mh = {.msg_iov = iov, .msg_iovlen = 2};
	while (mh.msg_iovlen && rc == 0) {
		ssize_t n = sendmsg(fd, &mh, MSG_NOSIGNAL);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			rc = FERRY_EIO;
			break;
		}
		while (mh.msg_iovlen && (size_t)n >= mh.msg_iov[0].iov_len) {
			n -= (ssize_t)mh.msg_iov[0].iov_len;
			mh.msg_iov++;
			mh.msg_iovlen--;
		}
		if (mh.msg_iovlen) {
			mh.msg_iov[0].iov_base = (char *)mh.msg_iov[0].iov_base + n;
			mh.msg_iov[0].iov_len -= (size_t)n;
		}
	}
	free(head);
	return rc;
}

static int send_frame(int fd, json_t *req, const void *data, size_t datalen)
{
	unsigned char *f;
	size_t fl;
	int rc;

	if (datalen > 65536)
		return send_frame_data(fd, req, data, datalen);
	rc = ferry__frame_build(FERRY_FRAME_REQUEST, req, data, datalen, &f, &fl);
	if (rc)
		return rc;
	rc = send_all(fd, f, fl);
	free(f);
	return rc;
}

/*
 * Reads len bytes of a reply. A remote link that stays silent for silence_s
 * (the request's own time plus a margin) is taken for dead, whatever ssh
 * thinks: that is the protocol's own check of the link.
 */
static int conn_read(struct ferry_conn *c, void *buf, size_t len, double silence_s)
{
	if (c->cfg.host)
		return ferry__ssh_read(c, buf, len, silence_s);
	return ferry__read_all(c->fd, buf, len) ? FERRY_EIO : 0;
}

/* Reads exactly want more bytes of the link into the connection's input. */
static int read_in(struct ferry_conn *c, size_t want, double silence_s)
{
	unsigned char *p = ferry__reader_space(&c->in, want);
	int rc;

	if (!p)
		return ferry__seterr(c, FERRY_ENOMEM, "out of memory");
	if ((rc = conn_read(c, p, want, silence_s)))
		return rc;
	ferry__reader_added(&c->in, want);
	return 0;
}

/*
 * Reads one reply frame. *bin points into the connection's input, where
 * the binary part was read (a transfer's chunk is copied nowhere), and
 * stays good until the next reply is read or the connection closes.
 * FERRY_EIO when the connection broke.
 */
static int recv_frame(struct ferry_conn *c, json_t **reply, const void **bin, size_t *binlen,
		      double silence_s, int first)
{
	struct ferry_frame f;
	char err[256];
	int rc;

	if (first && c->cfg.host) {
		/* a login shell that prints something breaks the protocol: say so */
		if ((rc = read_in(c, 4, silence_s)))
			return rc;
		const unsigned char *start = ferry__reader_data(&c->in);
		if (memcmp(start, FERRY_MAGIC, 4))
			return ferry__ssh_unclean(c, start, 4);
	}
	/* exactly what the frame lacks: a byte more would wait for a reply not asked for */
	while ((rc = ferry__reader_next(&c->in, FERRY_FRAME_REPLY, &f, err, sizeof(err))) == 0)
		if ((rc = read_in(c, ferry__reader_missing(&c->in), silence_s)))
			return rc;
	if (rc < 0)
		return ferry__seterr(c, FERRY_EPROTO, "bad reply from the engine: %s", err);
	ferry__reader_consume(&c->in, f.len); /* its bytes stay until the next read */
	if (!f.json)
		return ferry__seterr(c, FERRY_EPROTO, "bad reply from the engine: %s", err);
	*reply = f.json;
	if (bin) {
		*bin = f.bin;
		*binlen = f.binlen;
	}
	return 0;
}

/* Turns an error reply into its code and message. */
int ferry__reply_error(struct ferry_conn *c, json_t *reply)
{
	json_t *code = json_object_get(reply, "code");
	const char *msg = json_string_value(json_object_get(reply, "message"));
	int rc = json_is_integer(code) ? (int)json_integer_value(code) : FERRY_EPROTO;

	if (rc >= 0 || rc < FERRY_EAUTH)
		rc = FERRY_EPROTO;
	return ferry__seterr(c, rc, "%s", msg ? msg : ferry_strerror(rc));
}

/* How long a remote handshake may stay silent (ssh, login, engine start). */
#define HANDSHAKE_SILENCE_S 60.0
/* Beyond a request's own time, how long a remote reply may keep us waiting. */
#define REPLY_MARGIN_S 30.0
/* A remote wait is sent in slices this long, so that silence means a dead link. */
#define WAIT_SLICE_S 10.0

/* Keeps what the engine's hello says (docs/protocol.md). */
static int hello_reply(struct ferry_conn *c, json_t *reply)
{
	json_t *w = json_object_get(reply, "warnings"), *e;
	size_t i, len = 0;
	char *text = NULL;
	const char *home;
	json_int_t v = json_integer_value(json_object_get(reply, "protocol"));

	if (v != FERRY_PROTO_VERSION)
		return ferry__seterr(
		    c, FERRY_EPROTO,
		    "engine protocol version %lld is not supported (client speaks %d)",
		    (long long)v, FERRY_PROTO_VERSION);
	c->engine_pid = (long)json_integer_value(json_object_get(reply, "pid"));
	home = json_string_value(json_object_get(reply, "home"));
	if (home && !(home = strdup(home)))
		return ferry__seterr(c, FERRY_ENOMEM, "out of memory");
	free(c->engine_home);
	c->engine_home = (char *)home;
	json_array_foreach(w, i, e)
	{
		const char *s = json_string_value(e);
		char *n;
		if (!s)
			continue;
		n = ferry__asprintf("%s%s\n", text ? text : "", s);
		free(text);
		if (!n)
			return ferry__seterr(c, FERRY_ENOMEM, "out of memory");
		text = n;
		len = strlen(text);
	}
	if (len)
		text[len - 1] = '\0'; /* no newline after the last */
	free(c->warnings);
	c->warnings = text;
	return 0;
}

static int handshake(struct ferry_conn *c)
{
	json_t *hello = json_pack("{s:s,s:i,s:s}", "op", "hello", "version", FERRY_PROTO_VERSION,
				  "client", "libferry " FERRY_VERSION);
	json_t *reply = NULL, *expect;
	int rc;

	if (!hello)
		return ferry__seterr(c, FERRY_ENOMEM, "out of memory");
	if (c->cfg.host) {
		/* the remote engine must be the one this configuration describes */
		expect = json_array();
		for (size_t i = 0; expect && c->sets && c->sets[i]; i++)
			json_array_append_new(expect, ferry__json_bytes(c->sets[i]));
		if (!expect || json_object_set_new(hello, "expect", expect)) {
			json_decref(hello);
			return ferry__seterr(c, FERRY_ENOMEM, "out of memory");
		}
	}
	rc = send_frame(c->fd, hello, NULL, 0);
	json_decref(hello);
	/* even when the send failed, the engine may have said why it refused us */
	if (!rc || rc == FERRY_EIO)
		rc = recv_frame(c, &reply, NULL, NULL, HANDSHAKE_SILENCE_S, 1);
	if (rc)
		return rc;
	if (!json_is_true(json_object_get(reply, "ok")))
		rc = ferry__reply_error(c, reply);
	else
		rc = hello_reply(c, reply);
	json_decref(reply);
	return rc;
}

static int open_local(struct ferry_conn *c)
{
	/* a starting engine gets 10 s to listen, or less when the caller said so */
	double budget = c->retry_budget_s < 1 ? 1 : c->retry_budget_s < 10 ? c->retry_budget_s : 10;
	double until = ferry__mono() + budget;
	int rc;

	for (;;) {
		/*
		 * A budget spent while the engine died under us is 0, not below:
		 * below means "start none", and its "not running" would hide why
		 * the engines started keep dying (a full disk, say).
		 */
		double left = until - ferry__mono();
		rc = ferry__engine_connect(c->resource, c->config, NULL,
					   c->no_start ? -1
					   : left > 0  ? left
						       : 0,
					   &c->fd, &c->start, c->errmsg, sizeof(c->errmsg));
		if (rc)
			return rc;
		rc = handshake(c);
		if (!rc) {
			c->start.died_pause = 0; /* reached: the next death starts afresh */
			return 0;
		}
		ferry__close(c);
		if (rc != FERRY_EIO)
			return rc;
		/* the engine died under us (or is being restarted): start over */
		if (ferry__mono() > until)
			return ferry__seterr(c, FERRY_ECONNECT,
					     "the engine of resource '%s' closed the connection",
					     c->resource);
		sleep_s(0.05);
	}
}

static int open_remote(struct ferry_conn *c)
{
	int rc = ferry__ssh_spawn(c);

	if (rc)
		return rc;
	rc = handshake(c);
	if (rc == FERRY_EIO) /* ssh or the bridge ended: find out why */
		rc = ferry__ssh_failure(c);
	if (rc)
		ferry__close(c);
	return rc;
}

int ferry__open(struct ferry_conn *c)
{
	/* no byte of an earlier link may be taken for the start of a reply */
	ferry__reader_reset(&c->in);
	c->start.refused = 0;
	return c->cfg.host ? open_remote(c) : open_local(c);
}

void ferry__close(struct ferry_conn *c)
{
	ferry__reader_free(&c->in); /* up to a frame's size, kept while the link lasts */
	if (c->cfg.host) {
		ferry__ssh_close(c);
		return;
	}
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

/*
 * The engine of this connection stopped on a fatal error and said why
 * (lastwords.h; c->errmsg gets it). The first such engine of a call is
 * replayed to (what killed it may have passed; the request's key makes
 * the replay safe): 0. When the replay meets the same end, its reason is
 * the answer at once, rather than engines started for the whole budget:
 * its code. (A next engine that cannot start says so itself.)
 */
static int died_saying(struct ferry_conn *c, int *deaths)
{
	char why[sizeof(c->errmsg) - 128], *state;
	int code = 0, said, rc;

	if (c->cfg.host || c->engine_pid <= 0 || !(state = ferry__state_dir(c->resource)))
		return 0;
	said = ferry__last_words_read(state, c->engine_pid, &code, why, sizeof(why));
	free(state);
	if (!said)
		return 0;
	if (!(*deaths)++)
		return 0; /* replayed once: the cause may have passed */
	rc = ferry__seterr(c, code < 0 && code >= FERRY_EAUTH ? code : FERRY_EINTERNAL,
			   "the engine of resource '%s' stopped: %s", c->resource, why);
	c->lost = 0;
	return rc;
}

static int is_timeout(json_t *reply)
{
	json_t *code = json_object_get(reply, "code");

	return !json_is_true(json_object_get(reply, "ok")) && json_is_integer(code) &&
	       json_integer_value(code) == FERRY_ETIMEDOUT;
}

int ferry__call(struct ferry_conn *c, json_t *req, double deadline, json_t **reply,
		const void **bin, size_t *binlen)
{
	return ferry__call_data(c, req, NULL, 0, deadline, reply, bin, binlen);
}

int ferry__call_locked(struct ferry_conn *c, json_t *req, double deadline, json_t **reply)
{
	json_t *dummy = NULL;
	int rc;

	if (!req)
		return ferry__seterr(c, FERRY_ENOMEM, "out of memory");
	pthread_mutex_lock(&c->mu);
	rc = ferry__call(c, req, deadline, reply ? reply : &dummy, NULL, NULL);
	pthread_mutex_unlock(&c->mu);
	json_decref(req);
	json_decref(dummy);
	return rc;
}

/* A request whose JSON text is made already (ferry__call_text): sent from where it is. */
static int send_text(int fd, const char *text, size_t len)
{
	unsigned char head[FERRY_FRAME_HDR];
	int rc;

	if (len > FERRY_FRAME_MAX)
		return FERRY_EINVAL;
	ferry__hdr_encode(head, FERRY_FRAME_REQUEST, (uint32_t)len, (uint32_t)len);
	rc = send_all(fd, head, sizeof(head));
	return rc ? rc : send_all(fd, (const unsigned char *)text, len);
}

/* ferry__call_data() of req, or of a request's text when req is NULL. */
static int call(struct ferry_conn *c, json_t *req, const char *text, size_t textlen,
		const void *data, size_t datalen, double deadline, json_t **reply, const void **bin,
		size_t *binlen);

int ferry__call_data(struct ferry_conn *c, json_t *req, const void *data, size_t datalen,
		     double deadline, json_t **reply, const void **bin, size_t *binlen)
{
	return call(c, req, NULL, 0, data, datalen, deadline, reply, bin, binlen);
}

int ferry__call_text(struct ferry_conn *c, const char *text, size_t len, json_t **reply)
{
	int rc;

	pthread_mutex_lock(&c->mu);
	rc = call(c, NULL, text, len, NULL, 0, 0, reply, NULL, NULL);
	pthread_mutex_unlock(&c->mu);
	return rc;
}

static int call(struct ferry_conn *c, json_t *req, const char *text, size_t textlen,
		const void *data, size_t datalen, double deadline, json_t **reply, const void **bin,
		size_t *binlen)
{
	/* the budget runs from the loss, not from the call: a wait may last hours */
	double give_up = 0, pause = 0.05, silence = 0;
	const char *op = req ? json_string_value(json_object_get(req, "op")) : NULL;
	int rc, reconnecting = 0, sliced = 0, deaths = 0;

	c->errmsg[0] = '\0';
	c->replayed = 0;
	/* a link a pipelined transfer found broken: regain it within the budget */
	reconnecting = c->fd < 0 && c->lost;
	if (reconnecting)
		give_up = ferry__mono() + c->retry_budget_s;
	for (;;) {
		/* a first connect fails at once; a reconnect may wait for a restart */
		if (c->fd < 0 && (rc = ferry__open(c)) != 0) {
			if (!reconnecting || rc != FERRY_ECONNECT || c->start.refused) {
				c->lost = 0;
				return rc;
			}
			if (ferry__mono() > give_up)
				return lost(c);
			goto retry;
		}
		double left = deadline > 0 ? deadline - ferry__mono() : -1;
		if (left < 0 && deadline > 0)
			left = 0;
		sliced =
		    c->cfg.host && op && !strcmp(op, "wait") && (left < 0 || left > WAIT_SLICE_S);
		if (sliced)
			left = WAIT_SLICE_S;
		if (left >= 0 && req)
			json_object_set_new(req, "timeout", json_real(left));
		silence = (left > 0 ? left : 0) + REPLY_MARGIN_S;
		rc = req ? send_frame(c->fd, req, data, datalen) : send_text(c->fd, text, textlen);
		if (!rc)
			rc = recv_frame(c, reply, bin, binlen, silence, 0);
		if (!rc && sliced && is_timeout(*reply)) {
			/* a slice of a longer wait ran out: wait on */
			json_decref(*reply);
			*reply = NULL;
			reconnecting = 0;
			pause = 0.05;
			continue;
		}
		if (rc != FERRY_EIO) {
			c->lost = 0;
			break;
		}
		if (c->cfg.host && !c->errmsg[0] && c->ssh_pid > 0)
			ferry__ssh_failure(c); /* why the link broke, for the final message */
		ferry__close(c); /* the engine died or restarted: replay on a new one */
		if ((rc = died_saying(c, &deaths)))
			return rc;
		if (!reconnecting)
			give_up = ferry__mono() + c->retry_budget_s;
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
		rc = ferry__reply_error(c, *reply);
		json_decref(*reply);
		*reply = NULL;
		if (bin)
			*bin = NULL;
	}
	return rc;
}

int ferry__send_request(struct ferry_conn *c, json_t *req, const void *data, size_t datalen)
{
	if (c->fd < 0)
		return FERRY_EIO;
	return send_frame(c->fd, req, data, datalen);
}

/*
 * sendfile(2) has no MSG_NOSIGNAL: SIGPIPE is blocked around it, and one it
 * raised is taken from the pending set, so that a broken link is EPIPE
 * here as for every other write (as libcurl does for the same reason).
 */
static ssize_t sendfile_nosignal(int out, int in, off_t *off, size_t len)
{
	sigset_t pipe_set, old, pending;
	int was_pending, e;
	ssize_t n;

	sigemptyset(&pipe_set);
	sigaddset(&pipe_set, SIGPIPE);
	pthread_sigmask(SIG_BLOCK, &pipe_set, &old);
	was_pending = sigpending(&pending) == 0 && sigismember(&pending, SIGPIPE);
	n = sendfile(out, in, off, len);
	e = errno;
	if (n < 0 && e == EPIPE && !was_pending) {
		const struct timespec now = {0, 0};
		sigtimedwait(&pipe_set, NULL, &now);
	}
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	errno = e;
	return n;
}

int ferry__send_request_file(struct ferry_conn *c, json_t *req, int fd, int64_t from, size_t len)
{
	unsigned char *head;
	off_t off = (off_t)from;
	size_t hl;
	int rc;

	if (c->fd < 0)
		return FERRY_EIO;
	if ((rc = ferry__frame_head(FERRY_FRAME_REQUEST, req, len, &head, &hl)))
		return rc;
	rc = send_all(c->fd, head, hl);
	free(head);
	while (!rc && len) {
		/* the kernel passes the file's pages on to the socket: no copy here */
		ssize_t n = sendfile_nosignal(c->fd, fd, &off, len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) /* a file that became shorter leaves a frame cut short: the link ends */
			rc = FERRY_EIO;
		else
			len -= (size_t)n;
	}
	return rc;
}

int ferry__recv_reply(struct ferry_conn *c, json_t **reply, const void **bin, size_t *binlen)
{
	if (c->fd < 0)
		return FERRY_EIO;
	return recv_frame(c, reply, bin, binlen, REPLY_MARGIN_S, 0);
}
