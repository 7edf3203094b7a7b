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
#include <limits.h>
#include <math.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/sendfile.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#include "dispatch.h"
#include "frame.h"
#include "lastwords.h"
#include "proto.h"
#include "util.h"

#define MAX_CLIENTS 1024
#define READ_CHUNK  65536
/*
 * Descriptors the engine keeps for its own work besides its connections:
 * the database and its WAL, the log, the listener, the runner's socket, a
 * worker's pipes, a job's output file opened for a read, a transfer's
 * files being written; the file parts of queued replies have their own
 * cap (FERRY_LOOP_FILES_MAX) on top.
 */
#define FD_RESERVE_OWN 64
#define FD_RESERVE     (FD_RESERVE_OWN + FERRY_LOOP_FILES_MAX)
/*
 * A connection's replies not yet taken by its client, past which its next
 * request waits (back-pressure): so it holds at most this plus one reply.
 */
#define OUT_HIGH (1u << 20)
/*
 * A reply in pages (struct ferry_pager) gets its next page once its client
 * took all but this much: the socket stays busy, and a client that does
 * not read holds one page and this of the engine's memory.
 */
#define PAGE_LOW (256u << 10)
/* Seconds a connection may stay silent with no request in progress. */
#define IDLE_S 600
/* The same before its handshake (a client sends it at once). */
#define HELLO_S 10
/* After the engine ran out of descriptors: seconds before it accepts again. */
#define ACCEPT_PAUSE_S 0.1

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
	int cap;  /* connections at most: below the descriptor limit, less FD_RESERVE */
	int stop; /* a signal asked the engine to stop */
	int lfd;
	struct ferry_watch *lw; /* the listener's watch */
	uint32_t levents;	/* as epoll watches lfd now: 0 while accepting is paused */
	double resume_at;	/* when accepting, paused, starts again */
	/*
	 * /dev/null held open: with no descriptor left, it is closed to take
	 * the next connection, which is told why and closed (a connection
	 * left waiting would wake the loop again and again).
	 */
	int spare;
	int ready;		/* a connection can take its next request now */
	double idle_s, hello_s; /* IDLE_S, HELLO_S (or $FERRYD_TEST_IDLE_SECONDS) */
	double next_expiry;	/* when the next silent connection is due to close */
	/*
	 * Big requests' trees, freed once the iteration's replies are out:
	 * freeing a 100,000-job workflow's took 0.3 s, which its answer
	 * need not wait for.
	 */
	json_t *spent[4];
	int nspent;
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
	size_t outlen;		   /* bytes queued, all pieces */
	size_t outoff;		   /* of them, sent of the first piece */
	uint32_t events, wevents;  /* as epoll watches fd and wfd now */
	int hello;		   /* handshake done */
	int busy;		   /* a deferred reply is pending (wait; struct ferry_req) */
	struct ferry_pager *pager; /* a reply in pages under way (busy too); NULL */
	int closing;		   /* close once the output is flushed */
	int eof;		   /* the client sent all it will: close once answered */
	int dead;
	double active; /* when a byte last came from the client or went to it */
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

void ferry__bin_release(struct ferry_bin *b)
{
	free(b->p);
	if (b->fd >= 0)
		close(b->fd);
	*b = (struct ferry_bin)FERRY_BIN_INIT;
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
	c->active = ferry__mono(); /* silence counts from the answer to a long request */
	queue_frame(c, reply, NULL);
}

void ferry__client_stream(struct ferry_client *c, struct ferry_pager *p)
{
	c->pager = p;
	c->busy = 1;
}

static void stream_end(struct ferry_client *c)
{
	c->pager->free(c->pager);
	c->pager = NULL;
	c->busy = 0;
	c->active = ferry__mono();
}

/*
 * The next page of c's reply in pages, once its client took the pages
 * before (back-pressure): one page a loop iteration, so that the other
 * connections are served between two.
 */
static void stream_page(struct ferry_engine *eng, struct ferry_client *c)
{
	char err[FERRY_REQ_ERRLEN] = "out of memory";
	struct ferry_bin bin = FERRY_BIN_INIT;
	json_t *page;
	int rc;

	if (!c->pager || c->dead || c->closing || c->outlen >= PAGE_LOW)
		return;
	page = json_object();
	rc = page ? c->pager->next(c->pager, eng, page, &bin, err, sizeof(err)) : FERRY_ENOMEM;
	if (rc < 0) {
		/* an error ends the reply: the client has what came before */
		ferry__bin_release(&bin);
		json_decref(page);
		queue_error(c, rc, err);
		stream_end(c);
		return;
	}
	if (json_object_set_new(page, "ok", json_true()) ||
	    json_object_set_new(page, "more", json_boolean(rc == 0)))
		c->closing = 1; /* the client sees the reply end early */
	else
		queue_frame(c, page, &bin);
	ferry__bin_release(&bin);
	json_decref(page);
	if (rc || c->closing)
		stream_end(c);
}

static void close_passed(struct ferry_client *c)
{
	while (c->npassed)
		close(c->passed[--c->npassed]);
}

static void on_client(struct ferry_engine *eng, int fd, void *arg);
static int client_free(struct ferry_engine *eng, struct ferry_client *c);

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
	else if (c->srv->nclients >= c->srv->cap)
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
	a->active = ferry__mono();
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
		ferry__dispatch(eng, c, req, f->bin, f->binlen, &reply, &bin, NULL);
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

/* A complete frame waits in c's input (or a bad header, which process_input answers). */
static int frame_waiting(const struct ferry_client *c)
{
	return ferry__reader_pending(&c->in) && !ferry__reader_missing(&c->in);
}

/*
 * c's next request may run: none is in progress, and its client has taken
 * its replies but for less than OUT_HIGH. Else its requests wait, and so
 * does its input, in the kernel's buffers, until its client blocks in its
 * own writes: a client that does not read its replies costs the engine
 * one reply and OUT_HIGH, however many requests it sends.
 */
static int can_dispatch(const struct ferry_client *c)
{
	return !c->busy && !c->closing && !c->dead && c->outlen < OUT_HIGH;
}

/* A request this big has its tree freed after the replies are sent (struct server). */
#define SPENT_BYTES (1 << 20)
#define SPENT_MAX   FERRY_ARRAY_SIZE(((struct server *)0)->spent)

/* Handles the complete frames read, while the connection may take them. */
static void process_input(struct ferry_engine *eng, struct ferry_client *c)
{
	while (can_dispatch(c)) {
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
		if (f.json && f.len - f.binlen >= SPENT_BYTES && (size_t)c->srv->nspent < SPENT_MAX)
			c->srv->spent[c->srv->nspent++] = f.json;
		else
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

/*
 * Reads what c sent until a frame is complete (it is handled before more
 * is read), nothing more is there, or the client is gone. At most one
 * frame and a read's worth are in c's input.
 */
static void read_input(struct ferry_client *c)
{
	while (!frame_waiting(c)) {
		/* the rest of a large frame (a transfer's chunk) in few reads */
		size_t want = ferry__reader_missing(&c->in);
		if (want < READ_CHUNK)
			want = READ_CHUNK;
		unsigned char *room = ferry__reader_space(&c->in, want);
		if (!room) {
			c->dead = 1;
			return;
		}
		ssize_t n = client_read(c, room, want);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return;
		if (n == 0) {
			/*
			 * The client is done sending (it may have only half-closed):
			 * answer what it sent, then close. A wait still pending then
			 * has no one left to tell and is dropped.
			 */
			c->eof = 1;
			return;
		}
		if (n < 0) {
			c->dead = 1;
			return;
		}
		ferry__reader_added(&c->in, (size_t)n);
		c->active = ferry__mono();
		if ((size_t)n < want)
			return;
	}
}

static void on_client(struct ferry_engine *eng, int fd, void *arg)
{
	struct ferry_client *c = arg;
	struct pollfd p = {fd, POLLIN, 0};

	process_input(eng, c); /* what waits goes first: its replies say whether to read on */
	if (frame_waiting(c)) {
		/*
		 * Its input is not watched (back-pressure): its output woke us,
		 * or a hang-up, which epoll reports whatever the mask (and
		 * again, until it is dealt with). A socket hung up both ways
		 * takes no reply either.
		 */
		if (poll(&p, 1, 0) == 1 && (p.revents & (POLLHUP | POLLERR)))
			c->dead = 1;
		return;
	}
	read_input(c);
	process_input(eng, c);
}

/*
 * A connection that may be closed when silent (idle, or to make room):
 * no request of it is in progress, and it is not a bridge's. A bridge's
 * socket is silent by design (its channel talks), and the channel it
 * handed over (adopt) is a remote client's ssh login: closed, its user
 * would have to log in again. Only the engine's own user can adopt.
 */
static int idle_able(const struct ferry_client *c)
{
	/* a listing whose client stopped reading is as silent as any */
	return (!c->busy || c->pager) && !c->handed_over && !c->peer;
}

/*
 * Closes the connection silent longest to make room for a new one: 1, or
 * 0 when every connection silent since before `before` (those accepted
 * since have had no chance to speak) has a request in progress. Its
 * client, if it comes back, finds the connection closed and connects
 * again (libferry does it by itself): so a flood of idle connections
 * never locks the owner out.
 */
static int evict_idlest(struct ferry_engine *eng, struct server *srv, double before)
{
	struct ferry_client **victim = NULL;

	for (struct ferry_client **p = &srv->clients; *p; p = &(*p)->next)
		if (idle_able(*p) && (*p)->active < before &&
		    (!victim || (*p)->active < (*victim)->active))
			victim = p;
	if (!victim)
		return 0;
	struct ferry_client *c = *victim;
	*victim = c->next;
	client_free(eng, c);
	return 1;
}

/*
 * Takes connection fd, accepted in the batch that began at batch: refused
 * (the reason queued) when it cannot be served.
 */
static void new_client(struct ferry_engine *eng, struct server *srv, int fd, double batch,
		       const char *refuse)
{
	struct ucred cred = {.uid = (uid_t)-1};
	socklen_t cl = sizeof(cred);
	char msg[160];
	struct ferry_client *c = calloc(1, sizeof(*c));

	if (!c) {
		close(fd);
		return;
	}
	c->fd = c->wfd = fd;
	c->out_sock = c->can_pass = 1;
	c->active = ferry__mono();
	/* a retrieve's chunks leave in a few writes, not hundreds (best effort) */
	int big = 4 << 20;
	setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &big, sizeof(big));
	if (!refuse &&
	    (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &cl) < 0 || cred.uid != geteuid())) {
		snprintf(msg, sizeof(msg),
			 "connection from uid %ld refused: this engine serves uid %ld only",
			 (long)cred.uid, (long)geteuid());
		refuse = msg;
	}
	if (!refuse && srv->nclients >= srv->cap && !evict_idlest(eng, srv, batch))
		refuse = "too many connections: each has a request in progress";
	c->srv = srv;
	c->next = srv->clients;
	srv->clients = c;
	srv->nclients++;
	if (refuse) {
		queue_error(c, refuse == msg ? FERRY_EPERM : FERRY_ECONNECT, refuse);
		c->closing = 1;
		return;
	}
	if (!(c->rw = ferry__loop_watch_events(srv->loop, fd, EPOLLIN, on_client, c)))
		c->dead = 1;
	c->events = EPOLLIN;
}

/* Stops accepting for a while: a pending connection would wake the loop at once. */
static void pause_accepting(struct server *srv, double seconds)
{
	ferry__loop_set_events(srv->loop, srv->lw, 0, &srv->levents);
	srv->resume_at = ferry__mono() + seconds;
}

/*
 * accept found no descriptor left (EMFILE, ENFILE), which it says whether
 * or not a connection waits. When one does, the connection silent longest
 * makes room, else the spare descriptor takes the new one to refuse it,
 * else accepting pauses. 1 to accept again.
 */
static int out_of_descriptors(struct ferry_engine *eng, struct server *srv, double batch, int err)
{
	struct pollfd p = {srv->lfd, POLLIN, 0};
	char msg[160];

	if (poll(&p, 1, 0) != 1)
		return 0; /* none waits: epoll wakes us when one comes */
	if (evict_idlest(eng, srv, batch))
		return 1;
	if (srv->spare >= 0) {
		close(srv->spare);
		srv->spare = -1; /* open again once connections have gone (flush_clients) */
		int fd = accept4(srv->lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd >= 0) {
			snprintf(msg, sizeof(msg), "the engine cannot take a connection now: %s",
				 strerror(err));
			new_client(eng, srv, fd, batch, msg);
		}
	}
	pause_accepting(srv, ACCEPT_PAUSE_S);
	return 0;
}

/*
 * Accepts at most ACCEPT_BATCH connections per loop pass: the listener
 * stays readable for the rest, and a flood is taken in batches, so that
 * the connections of an earlier batch, which had a pass to speak, may be
 * evicted for the newest (evict_idlest) rather than the newest refused,
 * and the other clients are served between two batches.
 */
#define ACCEPT_BATCH 64

static void on_accept(struct ferry_engine *eng, int lfd, void *arg)
{
	struct server *srv = arg;
	double batch = ferry__mono();

	for (int n = 0; n < ACCEPT_BATCH; n++) {
		int fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		int err = errno;

		if (fd >= 0)
			new_client(eng, srv, fd, batch, NULL);
		else if (err == EAGAIN || err == EWOULDBLOCK)
			return;
		else if (err == EMFILE || err == ENFILE) {
			if (!out_of_descriptors(eng, srv, batch, err))
				return;
		} else if (err != EINTR && err != ECONNABORTED) {
			/* no kernel memory, or else: not again at once, lest it spin */
			pause_accepting(srv, ACCEPT_PAUSE_S);
			return;
		}
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
	c->active = ferry__mono();
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
	if (c->pager)
		c->pager->free(c->pager);
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

/*
 * Sets what epoll watches of c: its input unless it ended or a frame
 * waits that cannot run yet (back-pressure), its output while some is
 * queued. -1 when a watch cannot be made.
 */
static int watch_client(struct server *srv, struct ferry_client *c)
{
	uint32_t in = c->eof || frame_waiting(c) ? 0 : EPOLLIN, out = c->outlen ? EPOLLOUT : 0;

	if (!c->ww) {
		ferry__loop_set_events(srv->loop, c->rw, in | out, &c->events);
		return 0;
	}
	/* a pipe's writer gone is EPOLLHUP, whatever the mask: unwatched, not masked */
	if (!in && c->rw) {
		ferry__loop_unwatch(srv->loop, c->fd);
		c->rw = NULL;
	} else if (in && !c->rw) {
		c->rw = ferry__loop_watch_events(srv->loop, c->fd, EPOLLIN, on_client, c);
		if (!c->rw)
			return -1;
		c->events = EPOLLIN;
	}
	ferry__loop_set_events(srv->loop, c->ww, out, &c->wevents);
	return 0;
}

/*
 * c was silent too long with no request in progress (its replies not
 * taken count as silence): 1. Else notes when it will be.
 */
static int expired(struct server *srv, const struct ferry_client *c, double now)
{
	double at = c->active + (c->hello ? srv->idle_s : srv->hello_s);

	if (!idle_able(c))
		return 0;
	if (at <= now)
		return 1;
	if (at < srv->next_expiry)
		srv->next_expiry = at;
	return 0;
}

/* One pass of flush_clients; 1 when another is needed. */
static int flush_pass(struct server *srv, struct ferry_engine *eng)
{
	struct ferry_client **p = &srv->clients;
	double now = ferry__mono();
	int again = 0;

	while (*p) {
		struct ferry_client *c = *p;

		while (!c->dead && c->out && send_pieces(c) == 0)
			;
		/* closed without a word: one would pass for the reply to its next request */
		if (expired(srv, c, now))
			c->dead = 1;
		/* a client done sending still gets the rest of its listing */
		if (c->dead || ((c->closing || (c->eof && !c->pager)) && c->outlen == 0)) {
			*p = c->next;
			again |= client_free(eng, c);
			continue;
		}
		if (watch_client(srv, c) < 0) {
			c->dead = 1;
			continue; /* freed by the next turn, on the same c */
		}
		/* its replies drained: its next request (or page) runs in the next iteration */
		if ((frame_waiting(c) && can_dispatch(c)) || (c->pager && c->outlen < PAGE_LOW))
			srv->ready = 1;
		p = &c->next;
	}
	return again;
}

/* Writes pending output; frees dead, finished or silent connections. */
static void flush_clients(struct server *srv, struct ferry_engine *eng)
{
	srv->ready = 0;
	srv->next_expiry = HUGE_VAL;
	while (flush_pass(srv, eng))
		;
	/* connections that went left descriptors: one is the spare again */
	if (srv->spare < 0)
		srv->spare = open("/dev/null", O_RDONLY | O_CLOEXEC);
	if (!srv->levents && ferry__mono() >= srv->resume_at)
		ferry__loop_set_events(srv->loop, srv->lw, EPOLLIN, &srv->levents);
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
	const char *why;

	if (ferry__db_begin(ferry__engine_db(eng)) == 0)
		return 0;
	/* without a transaction nothing could be acknowledged durably */
	why = ferry__db_why(ferry__engine_db(eng), NULL);
	fprintf(stderr, "ferryd: cannot begin a transaction%s%s; the engine stops\n",
		why ? ": " : "", why ? why : "");
	return -1;
}

/* Requests that waited (for a wait's answer) and can run now, a few rounds. */
static void run_ready(struct server *srv, struct ferry_engine *eng)
{
	for (struct ferry_client *c = srv->clients; c; c = c->next)
		stream_page(eng, c);
	/* a wait answered by the tick lets its connection's next request run */
	for (int round = 0; round < 4; round++) {
		int progress = 0;
		ferry__engine_tick(eng);
		for (struct ferry_client *c = srv->clients; c; c = c->next) {
			size_t before = ferry__reader_pending(&c->in);
			if (frame_waiting(c) && can_dispatch(c)) {
				process_input(eng, c);
				progress |= ferry__reader_pending(&c->in) != before;
			}
		}
		if (!progress)
			break;
	}
}

/* The loop's timeout: the engine's, or sooner for a silent connection or a paused accept. */
static int timeout_ms(const struct server *srv, struct ferry_engine *eng)
{
	int engine_ms = ferry__engine_timeout_ms(eng);
	double at = srv->next_expiry, ms;

	if (!srv->levents && srv->resume_at < at)
		at = srv->resume_at;
	if (at == HUGE_VAL)
		return engine_ms;
	ms = (at - ferry__mono()) * 1000 + 1; /* + 1: not a turn too early */
	if (ms < 0)
		ms = 0;
	if (engine_ms >= 0 && engine_ms < ms)
		return engine_ms;
	return ms > INT_MAX ? INT_MAX : (int)ms;
}

static void free_spent(struct server *srv)
{
	while (srv->nspent)
		json_decref(srv->spent[--srv->nspent]);
}

static int serve(struct server *srv, struct ferry_engine *eng)
{
	int again = 0;

	while (!srv->stop) {
		int timeout = again ? 0 : timeout_ms(srv, eng);
		if (ferry__loop_poll(srv->loop, eng, timeout, begin) < 0)
			goto fail;
		run_ready(srv, eng);
		if (ferry__db_commit(ferry__engine_db(eng))) {
			/* nothing of this iteration is durable: tell no one it is */
			const char *why = ferry__db_why(ferry__engine_db(eng), NULL);
			fprintf(stderr,
				"ferryd: commit failed%s%s; the engine stops, nothing of its last "
				"iteration acknowledged\n",
				why ? ": " : "", why ? why : "");
			goto fail;
		}
		flush_clients(srv, eng);
		free_spent(srv);
		ferry__db_checkpoint(ferry__engine_db(eng), srv->ready);
		again = ferry__engine_committed(eng);
		again |= srv->ready;
		if (ferry__engine_shutting_down(eng))
			break;
	}
	free_spent(srv);
	return 0;
fail:
	free_spent(srv);
	return -1;
}

/*
 * Connections at most: MAX_CLIENTS, or fewer when the descriptor limit
 * (main.c raised it as far as it could) leaves less after FD_RESERVE; so
 * the engine runs out of connections before it runs out of descriptors.
 */
static int connection_cap(void)
{
	struct rlimit rl;
	rlim_t n;

	if (getrlimit(RLIMIT_NOFILE, &rl) < 0 || rl.rlim_cur == RLIM_INFINITY ||
	    rl.rlim_cur >= MAX_CLIENTS + FD_RESERVE)
		return MAX_CLIENTS;
	/* a limit that low squeezes the reserve too: half of it for connections */
	n = rl.rlim_cur > 2 * FD_RESERVE ? rl.rlim_cur - FD_RESERVE : rl.rlim_cur / 2;
	fprintf(stderr, "ferryd: the descriptor limit (%ld) allows %ld connections at most\n",
		(long)rl.rlim_cur, (long)(n < 4 ? 4 : n));
	return n < 4 ? 4 : (int)n;
}

/* What the server is before it serves: its limits, and $FERRYD_TEST_IDLE_SECONDS. */
static void server_init(struct server *srv, struct ferry_loop *loop, int listen_fd)
{
	const char *knob = getenv("FERRYD_TEST_IDLE_SECONDS");
	double v = knob ? strtod(knob, NULL) : 0;

	*srv = (struct server){.loop = loop, .lfd = listen_fd, .next_expiry = HUGE_VAL};
	srv->cap = connection_cap();
	srv->idle_s = v > 0 ? v : IDLE_S;
	srv->hello_s = srv->idle_s < HELLO_S ? srv->idle_s : HELLO_S;
	srv->spare = open("/dev/null", O_RDONLY | O_CLOEXEC);
}

/*
 * The engine stops on a fatal error: its last words, before its
 * connections close, so that a client that finds its connection closed
 * finds them too (lastwords.c).
 */
static void say_last_words(struct ferry_engine *eng, int fd)
{
	int code;
	const char *why = ferry__db_why(ferry__engine_db(eng), &code);

	ferry__last_words_say(fd, why ? code : FERRY_EINTERNAL,
			      why ? why : "the engine's loop failed (see ferryd.log)");
}

int ferry__server_run(struct ferry_loop *loop, struct ferry_engine *eng, int listen_fd,
		      int last_words_fd)
{
	struct server srv;
	sigset_t set;
	int sfd, rc;

	server_init(&srv, loop, listen_fd);
	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGHUP);
	sfd = signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC);
	if (sfd < 0 || ferry__loop_watch(loop, sfd, on_signal, &srv) < 0 ||
	    !(srv.lw = ferry__loop_watch_events(loop, listen_fd, EPOLLIN, on_accept, &srv))) {
		if (sfd >= 0)
			close(sfd);
		if (srv.spare >= 0)
			close(srv.spare);
		return -1;
	}
	srv.levents = EPOLLIN;
	rc = serve(&srv, eng);
	if (rc < 0)
		say_last_words(eng, last_words_fd);
	/* srv ends here: its connections go with it, answered or not */
	while (srv.clients) {
		struct ferry_client *c = srv.clients;
		srv.clients = c->next;
		client_free(eng, c);
	}
	ferry__loop_unwatch(loop, listen_fd);
	ferry__loop_unwatch(loop, sfd);
	close(sfd);
	if (srv.spare >= 0)
		close(srv.spare);
	return rc;
}
