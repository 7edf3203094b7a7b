/*
 * server.c - ferryd's event loop: one epoll set for the listening socket,
 * the clients, the signals and the backends' fds (the local job runner's socket).
 *
 * Every loop iteration is one database transaction: all requests and job
 * events of the iteration are applied, committed at once (group commit),
 * and only then are the replies written. So no reply acknowledges
 * anything that is not on disk.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/sendfile.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#include "dispatch.h"
#include "frame.h"
#include "proto.h"
#include "util.h"

#define MAX_CLIENTS 1024
#define READ_CHUNK  65536

/*
 * Output waiting for the socket, in order: each frame's header and JSON in
 * a piece, and a big binary part (a transfer's chunk) in a piece of its
 * own, taken from the handler as it is: no byte is copied to be queued,
 * and none is moved when a send takes only part. A file part (fd >= 0) is
 * len bytes of that file from off, sent by the kernel from the page cache.
 */
struct piece {
	struct piece *next;
	unsigned char *p;
	size_t len;
	int fd;
	off_t off; /* of the file, where the next byte to send is */
};

/* What the server serves: its loop and its connections. */
struct server {
	struct ferry_loop *loop;
	struct ferry_client *clients;
	int nclients;
	int stop; /* a signal asked the engine to stop */
};

/*
 * A client as the server sees it: one connection, its input and its queued
 * output (libferry's handle of the other end is struct ferry_conn).
 */
struct ferry_client {
	int fd;	      /* read from; a client's socket, or a channel it handed over */
	int wfd;      /* written to: fd, or the other half of a handed-over channel */
	int out_sock; /* wfd is a socket: sendmsg, else writev */
	struct server *srv;
	struct ferry_watch *rw, *ww; /* fd's watch; wfd's when it is another fd */
	int can_pass;		     /* fd is a client's socket: descriptors may come (adopt) */
	int passed[2], npassed;	     /* descriptors that came with the input */
	int passed_bad;		     /* more came than adopt takes: the rest were dropped */
	int handed_over;	     /* a bridge's socket whose channel is served as peer */
	/*
	 * A bridge's socket and the channel it handed over (adopt) point at
	 * each other: when one ends, so does the other.
	 */
	struct ferry_client *peer;
	struct ferry_reader in; /* read, not yet handled */
	struct piece *out, **out_tail;
	size_t outlen;		  /* bytes queued, all pieces */
	size_t outoff;		  /* of them, sent of the first piece */
	uint32_t events, wevents; /* as epoll watches fd and wfd now */
	int hello;		  /* handshake done */
	int busy;		  /* a deferred reply is pending (wait; struct ferry_req) */
	int closing;		  /* close once the output is flushed */
	int eof;		  /* the client sent all it will: close once answered */
	int dead;
	struct ferry_client *next;
};

static int queue_piece(struct ferry_client *c, unsigned char *p, size_t len, int fd, off_t off)
{
	struct piece *pc = malloc(sizeof(*pc));

	if (!pc)
		return -1;
	*pc = (struct piece){NULL, p, len, fd, off};
	ferry__loop_files_add(c->srv->loop, fd >= 0);
	if (!c->out)
		c->out_tail = &c->out;
	*c->out_tail = pc;
	c->out_tail = &pc->next;
	c->outlen += len;
	return 0;
}

/* Queues a reply; takes bin (which may be NULL: no binary part). */
static void queue_frame(struct ferry_client *c, json_t *reply, struct ferry_bin *bin)
{
	struct ferry_bin none = FERRY_BIN_INIT;
	unsigned char *f = NULL;
	size_t fl;
	int rc;

	if (!bin)
		bin = &none;
	int apart = bin->fd >= 0 || bin->len > 65536; /* the binary part in a piece of its own */
	if (c->dead)
		goto out;
	rc = apart ? ferry__frame_head(FERRY_FRAME_REPLY, reply, bin->len, &f, &fl)
		   : ferry__frame_build(FERRY_FRAME_REPLY, reply, bin->p, bin->len, &f, &fl);
	if (rc || queue_piece(c, f, fl, -1, 0)) {
		c->closing = 1; /* cannot answer: the client sees the close */
		goto out;
	}
	f = NULL;
	if (apart && queue_piece(c, bin->p, bin->len, bin->fd, (off_t)bin->off))
		c->closing = 1; /* a frame cut short: the client sees it end early */
	else if (apart)
		*bin = none;
out:
	free(f);
	ferry__bin_release(bin);
}

static void queue_error(struct ferry_client *c, int code, const char *msg)
{
	json_t *r = ferry__error_reply(code, msg);

	queue_frame(c, r, NULL);
	json_decref(r);
}

void ferry__client_reply(struct ferry_client *c, json_t *reply)
{
	c->busy = 0;
	queue_frame(c, reply, NULL);
}

static void close_passed(struct ferry_client *c)
{
	while (c->npassed)
		close(c->passed[--c->npassed]);
}

static void on_client(struct ferry_engine *eng, int fd, void *arg);

/* The channel's output can take more, or its reader is gone: then it is dead. */
static void on_wfd(struct ferry_engine *eng, int fd, void *arg)
{
	struct ferry_client *c = arg;
	struct pollfd p = {fd, POLLOUT, 0};

	/* with output queued, the next write finds out by itself */
	if (!c->outlen && poll(&p, 1, 0) == 1 && (p.revents & (POLLERR | POLLHUP)))
		c->dead = 1;
}

/* Why the passed descriptors cannot be a channel, or NULL. */
static const char *channel_unfit(const int fd[2], int *out_sock)
{
	struct stat st[2];
	int fl[2];

	for (int i = 0; i < 2; i++) {
		if (fstat(fd[i], &st[i]) < 0 || (fl[i] = fcntl(fd[i], F_GETFL)) < 0)
			return "cannot inspect a passed descriptor";
		if (!S_ISFIFO(st[i].st_mode) && !S_ISSOCK(st[i].st_mode))
			return "'adopt' takes pipes or sockets only";
	}
	if ((fl[0] & O_ACCMODE) == O_WRONLY || (fl[1] & O_ACCMODE) == O_RDONLY)
		return "'adopt' needs the channel's input first and its output second";
	if (fcntl(fd[0], F_SETFL, fl[0] | O_NONBLOCK) < 0 ||
	    fcntl(fd[1], F_SETFL, fl[1] | O_NONBLOCK) < 0)
		return "cannot make the channel non-blocking";
	*out_sock = S_ISSOCK(st[1].st_mode);
	return NULL;
}

/*
 * adopt: a bridge hands over the channel it serves (its stdin and stdout,
 * passed with the request), and the engine reads and writes it as a
 * client's connection of its own, so that no process copies the bytes
 * between the two (docs/protocol.md). The bridge's socket stays open
 * beside it and closes with it: that tells the bridge when to exit.
 */
static void adopt(struct ferry_client *c, json_t *req, size_t binlen)
{
	const char *why = NULL;
	struct ferry_client *a = NULL;
	int out_sock = 0;

	if (c->hello || c->handed_over || !c->can_pass)
		why = "'adopt' must be the first request of a client's own connection";
	else if (json_object_size(req) != 1)
		why = "'adopt' takes no fields";
	else if (binlen)
		why = "'adopt' takes no binary part";
	else if (c->npassed != 2 || c->passed_bad)
		why =
		    "'adopt' needs two descriptors passed with it: the channel's input and output";
	else if (c->srv->nclients >= MAX_CLIENTS)
		why = "too many connections";
	else
		why = channel_unfit(c->passed, &out_sock);
	if (!why && !(a = calloc(1, sizeof(*a))))
		why = "out of memory";
	if (why)
		goto refuse;
	a->fd = c->passed[0];
	a->wfd = c->passed[1];
	a->out_sock = out_sock;
	a->srv = c->srv;
	a->rw = ferry__loop_watch_events(a->srv->loop, a->fd, EPOLLIN, on_client, a);
	a->ww = a->rw ? ferry__loop_watch_events(a->srv->loop, a->wfd, 0, on_wfd, a) : NULL;
	if (!a->ww) {
		if (a->rw)
			ferry__loop_unwatch(a->srv->loop, a->fd);
		free(a);
		why = "cannot watch the channel";
		goto refuse;
	}
	a->events = EPOLLIN;
	c->npassed = 0;
	a->peer = c;
	c->peer = a;
	c->handed_over = 1;
	a->next = a->srv->clients;
	a->srv->clients = a;
	a->srv->nclients++;
	json_t *ok = json_pack("{s:b}", "ok", 1);
	if (ok)
		queue_frame(c, ok, NULL);
	else
		c->closing = 1;
	json_decref(ok);
	return;
refuse:
	/* the bridge copies the bytes itself then, on a new connection */
	close_passed(c);
	queue_error(c, FERRY_EINVAL, why);
	c->closing = 1;
}

/* Handles one complete frame f; err says why when its JSON is bad. */
static void handle_frame(struct ferry_engine *eng, struct ferry_client *c,
			 const struct ferry_frame *f, const char *err)
{
	json_t *req = f->json, *reply;
	struct ferry_bin bin;
	const char *op = req ? json_string_value(json_object_get(req, "op")) : NULL;

	if (op && !strcmp(op, "adopt")) {
		adopt(c, req, f->binlen);
	} else if (c->handed_over) {
		queue_error(c, FERRY_EPROTO,
			    "this connection handed its channel over and takes no more requests");
		c->closing = 1;
	} else if (!req) {
		queue_error(c, FERRY_EPROTO, err);
	} else if (!c->hello && (!op || strcmp(op, "hello"))) {
		queue_error(c, FERRY_EPROTO, "the first request must be 'hello'");
		c->closing = 1;
	} else {
		ferry__dispatch(eng, c, req, f->bin, f->binlen, &reply, &bin);
		if (!reply) {
			c->busy = 1;
		} else {
			if (!c->hello && json_is_true(json_object_get(reply, "ok")))
				c->hello = 1;
			else if (!c->hello)
				c->closing = 1;
			queue_frame(c, reply, &bin);
			json_decref(reply);
		}
	}
	close_passed(c); /* descriptors a request other than adopt brought */
}

/* Handles the complete frames read, until one defers its reply or ends the connection. */
static void process_input(struct ferry_engine *eng, struct ferry_client *c)
{
	while (!c->busy && !c->closing && !c->dead) {
		struct ferry_frame f;
		char err[512], msg[600];
		int rc = ferry__reader_next(&c->in, FERRY_FRAME_REQUEST, &f, err, sizeof(err));

		if (rc == 0)
			break;
		if (rc < 0) {
			/* after a bad header nothing read can be trusted: drop it all */
			snprintf(msg, sizeof(msg), "%s; closing the connection", err);
			queue_error(c, FERRY_EPROTO, msg);
			c->closing = 1;
			ferry__reader_reset(&c->in);
			break;
		}
		handle_frame(eng, c, &f, err);
		json_decref(f.json);
		ferry__reader_consume(&c->in, f.len);
	}
}

/*
 * One read of a client's input. On a client's own socket it is a recvmsg,
 * so that the descriptors a bridge passes with adopt are kept (the kernel
 * would drop them for a read); they wait in c->passed for the request.
 */
static ssize_t client_read(struct ferry_client *c, void *buf, size_t len)
{
	union {
		struct cmsghdr h;
		char b[CMSG_SPACE(2 * sizeof(int))];
	} cm;
	struct iovec iov = {buf, len};
	struct msghdr mh = {
	    .msg_iov = &iov, .msg_iovlen = 1, .msg_control = cm.b, .msg_controllen = sizeof(cm.b)};
	ssize_t n;

	if (!c->can_pass)
		return read(c->fd, buf, len);
	n = recvmsg(c->fd, &mh, MSG_CMSG_CLOEXEC);
	if (n < 0)
		return n;
	for (struct cmsghdr *h = CMSG_FIRSTHDR(&mh); h; h = CMSG_NXTHDR(&mh, h)) {
		if (h->cmsg_level != SOL_SOCKET || h->cmsg_type != SCM_RIGHTS)
			continue;
		for (size_t i = 0; i < (h->cmsg_len - CMSG_LEN(0)) / sizeof(int); i++) {
			int fd;
			memcpy(&fd, CMSG_DATA(h) + i * sizeof(int), sizeof(fd));
			if (c->npassed < 2)
				c->passed[c->npassed++] = fd;
			else {
				close(fd);
				c->passed_bad = 1;
			}
		}
	}
	if (mh.msg_flags & MSG_CTRUNC) /* the kernel closed what did not fit */
		c->passed_bad = 1;
	return n;
}

static void on_client(struct ferry_engine *eng, int fd, void *arg)
{
	struct ferry_client *c = arg;

	for (;;) {
		ssize_t n;

		if (ferry__reader_pending(&c->in) > FERRY_FRAME_HDR + FERRY_FRAME_MAX) {
			c->closing = 1; /* a client pipelining without reading replies */
			break;
		}
		/* the rest of a large frame (a transfer's chunk) in few reads */
		size_t want = ferry__reader_missing(&c->in);
		if (want < READ_CHUNK)
			want = READ_CHUNK;
		unsigned char *room = ferry__reader_space(&c->in, want);
		if (!room) {
			c->dead = 1;
			return;
		}
		n = client_read(c, room, want);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			break;
		if (n == 0) {
			/*
			 * The client is done sending (it may have only half-closed):
			 * answer what it sent, then close. A wait still pending then
			 * has no one left to tell and is dropped.
			 */
			c->eof = 1;
			break;
		}
		if (n < 0) {
			c->dead = 1;
			return;
		}
		ferry__reader_added(&c->in, (size_t)n);
		if ((size_t)n < want)
			break;
	}
	process_input(eng, c);
}

static void on_accept(struct ferry_engine *eng, int lfd, void *arg)
{
	struct server *srv = arg;

	for (;;) {
		int fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		struct ferry_client *c;
		struct ucred cred = {.uid = (uid_t)-1};
		socklen_t cl = sizeof(cred);

		if (fd < 0)
			return;
		c = calloc(1, sizeof(*c));
		if (!c) {
			close(fd);
			return;
		}
		c->fd = c->wfd = fd;
		c->out_sock = c->can_pass = 1;
		/* a retrieve's chunks leave in a few writes, not hundreds (best effort) */
		int big = 4 << 20;
		setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &big, sizeof(big));
		c->srv = srv;
		c->next = srv->clients;
		srv->clients = c;
		srv->nclients++;
		if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &cl) < 0 ||
		    cred.uid != geteuid()) {
			char msg[160];
			snprintf(msg, sizeof(msg),
				 "connection from uid %ld refused: this engine serves uid %ld only",
				 (long)cred.uid, (long)geteuid());
			queue_error(c, FERRY_EPERM, msg);
			c->closing = 1;
			continue;
		}
		if (srv->nclients > MAX_CLIENTS) {
			queue_error(c, FERRY_ECONNECT, "too many connections");
			c->closing = 1;
			continue;
		}
		if (!(c->rw = ferry__loop_watch_events(srv->loop, fd, EPOLLIN, on_client, c)))
			c->dead = 1;
		c->events = EPOLLIN;
	}
}

static void drop_piece(struct ferry_client *c)
{
	struct piece *pc = c->out;

	c->out = pc->next;
	c->outlen -= pc->len - c->outoff;
	c->outoff = 0;
	free(pc->p);
	if (pc->fd >= 0) {
		close(pc->fd);
		ferry__loop_files_add(c->srv->loop, -1);
	}
	free(pc);
}

/*
 * Sends the first piece, a file part: the kernel passes its pages on to
 * the socket or pipe. A file that became shorter leaves the frame cut
 * short, and the connection ends (the client asks again).
 */
static ssize_t send_file_piece(struct ferry_client *c, size_t *want)
{
	struct piece *pc = c->out;
	ssize_t n;

	*want = pc->len - c->outoff;
	n = sendfile(c->wfd, pc->fd, &pc->off, *want);
	if (n == 0)
		errno = ENODATA;
	return n == 0 ? -1 : n;
}

/* One send of what is queued: 1 when the socket took less (full, or dead), else 0. */
static int send_pieces(struct ferry_client *c)
{
	struct iovec iov[16];
	size_t want = 0;
	int n = 0;
	ssize_t sent;

	/* memory pieces up to the next file part go in one call */
	for (struct piece *pc = c->out; pc && pc->fd < 0 && n < 16; pc = pc->next, n++) {
		iov[n] = (struct iovec){pc->p + (n ? 0 : c->outoff), pc->len - (n ? 0 : c->outoff)};
		want += iov[n].iov_len;
	}
	struct msghdr mh = {.msg_iov = iov, .msg_iovlen = (size_t)n};
	/* a pipe's reader gone is EPIPE: ferryd ignores SIGPIPE */
	if (!n)
		sent = send_file_piece(c, &want);
	else if (c->out_sock)
		sent = sendmsg(c->wfd, &mh, MSG_NOSIGNAL | MSG_DONTWAIT);
	else
		sent = writev(c->wfd, iov, n);
	if (sent < 0 && errno == EINTR)
		return 0;
	if (sent < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
		return 1;
	if (sent <= 0) {
		c->dead = 1;
		return 1;
	}
	int full = (size_t)sent < want;
	while (c->out && (size_t)sent >= c->out->len - c->outoff) {
		sent -= (ssize_t)(c->out->len - c->outoff);
		drop_piece(c);
	}
	if (c->out) {
		c->outoff += (size_t)sent;
		c->outlen -= (size_t)sent;
	}
	return full;
}

/* Frees c; 1 when that ended a peer too (which may need another pass). */
static int client_free(struct ferry_engine *eng, struct ferry_client *c)
{
	int ended_peer = c->peer != NULL;

	if (c->peer) {
		c->peer->eof = 1; /* answers what it has, then closes */
		c->peer->peer = NULL;
	}
	ferry__engine_client_closed(eng, c);
	if (c->rw)
		ferry__loop_unwatch(c->srv->loop, c->fd);
	if (c->ww)
		ferry__loop_unwatch(c->srv->loop, c->wfd);
	if (c->wfd != c->fd)
		close(c->wfd);
	close(c->fd);
	close_passed(c);
	ferry__reader_free(&c->in);
	while (c->out)
		drop_piece(c);
	c->srv->nclients--;
	free(c);
	return ended_peer;
}

/* One pass of flush_clients; 1 when another is needed. */
static int flush_pass(struct server *srv, struct ferry_engine *eng)
{
	struct ferry_client **p = &srv->clients;
	int again = 0;

	while (*p) {
		struct ferry_client *c = *p;

		while (!c->dead && c->out && send_pieces(c) == 0)
			;
		if (c->dead || ((c->closing || c->eof) && c->outlen == 0)) {
			*p = c->next;
			again |= client_free(eng, c);
			continue;
		}
		/* blocked writer: wake us when the socket drains */
		uint32_t in = c->eof ? 0 : EPOLLIN, out = c->outlen ? EPOLLOUT : 0;
		if (c->ww && !in && c->rw) {
			/* a pipe's writer gone is EPOLLHUP, whatever the mask: unwatch */
			ferry__loop_unwatch(srv->loop, c->fd);
			c->rw = NULL;
		}
		if (c->ww) {
			ferry__loop_set_events(srv->loop, c->rw, in, &c->events);
			ferry__loop_set_events(srv->loop, c->ww, out, &c->wevents);
		} else {
			ferry__loop_set_events(srv->loop, c->rw, in | out, &c->events);
		}
		p = &c->next;
	}
	return again;
}

/* Writes pending output; frees dead or finished connections. */
static void flush_clients(struct server *srv, struct ferry_engine *eng)
{
	while (flush_pass(srv, eng))
		;
}

static void on_signal(struct ferry_engine *eng, int fd, void *arg)
{
	struct signalfd_siginfo si;
	struct server *srv = arg;

	while (read(fd, &si, sizeof(si)) == sizeof(si)) {
		if (si.ssi_signo == SIGTERM || si.ssi_signo == SIGINT || si.ssi_signo == SIGHUP)
			srv->stop = 1;
	}
}

static int begin(struct ferry_engine *eng)
{
	if (ferry__db_begin(ferry__engine_db(eng)) == 0)
		return 0;
	/* without a transaction nothing could be acknowledged durably */
	fprintf(stderr, "ferryd: cannot begin a transaction; exiting so that clients retry\n");
	return -1;
}

/* Requests that waited (for a wait's answer) and can run now, a few rounds. */
static void run_ready(struct server *srv, struct ferry_engine *eng)
{
	/* a wait answered by the tick lets its connection's next request run */
	for (int round = 0; round < 4; round++) {
		int progress = 0;
		ferry__engine_tick(eng);
		for (struct ferry_client *c = srv->clients; c; c = c->next) {
			size_t before = ferry__reader_pending(&c->in);
			if (!c->busy && before >= FERRY_FRAME_HDR && !c->closing && !c->dead) {
				process_input(eng, c);
				progress |= ferry__reader_pending(&c->in) != before;
			}
		}
		if (!progress)
			break;
	}
}

static int serve(struct server *srv, struct ferry_engine *eng)
{
	int again = 0;

	while (!srv->stop) {
		int timeout = again ? 0 : ferry__engine_timeout_ms(eng);
		if (ferry__loop_poll(srv->loop, eng, timeout, begin) < 0)
			return -1;
		run_ready(srv, eng);
		if (ferry__db_commit(ferry__engine_db(eng))) {
			/* nothing of this iteration is durable: tell no one it is */
			fprintf(stderr, "ferryd: commit failed; exiting so that clients retry\n");
			return -1;
		}
		flush_clients(srv, eng);
		again = ferry__engine_committed(eng);
		if (ferry__engine_shutting_down(eng))
			break;
	}
	return 0;
}

int ferry__server_run(struct ferry_loop *loop, struct ferry_engine *eng, int listen_fd)
{
	struct server srv = {.loop = loop};
	sigset_t set;
	int sfd, rc;

	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGHUP);
	sfd = signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC);
	if (sfd < 0 || ferry__loop_watch(loop, sfd, on_signal, &srv) < 0 ||
	    ferry__loop_watch(loop, listen_fd, on_accept, &srv) < 0) {
		if (sfd >= 0)
			close(sfd);
		return -1;
	}
	rc = serve(&srv, eng);
	/* srv ends here: its connections go with it, answered or not */
	while (srv.clients) {
		struct ferry_client *c = srv.clients;
		srv.clients = c->next;
		client_free(eng, c);
	}
	ferry__loop_unwatch(loop, listen_fd);
	ferry__loop_unwatch(loop, sfd);
	close(sfd);
	return rc;
}
