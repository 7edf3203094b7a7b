/* loop.h - the engine's event loop and its connections (server.c). */
#ifndef FERRY_LOOP_H
#define FERRY_LOOP_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

struct ferry_engine;
struct ferry_client;

/*
 * A reply's binary part: len bytes at p (malloc'd), or, with fd >= 0, len
 * bytes of that open file from off, which the server passes on from the
 * page cache (sendfile) without reading them, and then closes. Owned by
 * whoever holds it; ferry__bin_release frees either kind.
 */
struct ferry_bin {
	void *p;
	size_t len;
	int fd;
	int64_t off;
};
#define FERRY_BIN_INIT                                                                             \
	{                                                                                          \
		NULL, 0, -1, 0                                                                     \
	}
void ferry__bin_release(struct ferry_bin *b);

struct ferry_loop;
struct ferry_watch;
typedef void (*ferry_fd_cb)(struct ferry_engine *eng, int fd, void *arg);

/* A new loop; NULL with err set. */
struct ferry_loop *ferry__loop_new(char *err, size_t errlen);
/* Frees the loop and its watches (not their descriptors). NULL is fine. */
void ferry__loop_free(struct ferry_loop *loop);
/* Calls cb(eng, fd, arg) when fd is readable (or hung up). 0 or -1. */
int ferry__loop_watch(struct ferry_loop *loop, int fd, ferry_fd_cb cb, void *arg);
/* The same for any epoll events; the watch, or NULL. */
struct ferry_watch *ferry__loop_watch_events(struct ferry_loop *loop, int fd, uint32_t events,
					     ferry_fd_cb cb, void *arg);
/* Changes a watch's events to want when *have differs (and sets *have). */
void ferry__loop_set_events(struct ferry_loop *loop, struct ferry_watch *w, uint32_t want,
			    uint32_t *have);
/* Stops watching fd (safe from a callback of the same iteration). */
void ferry__loop_unwatch(struct ferry_loop *loop, int fd);
/*
 * One iteration: waits up to timeout_ms (-1: no limit), calls before(eng)
 * (it opens the iteration's transaction; -1 from it is returned), then the
 * callbacks of the ready watches. 0, or -1 with errno.
 */
int ferry__loop_poll(struct ferry_loop *loop, struct ferry_engine *eng, int timeout_ms,
		     int (*before)(struct ferry_engine *eng));
/*
 * File parts (struct ferry_bin with an fd) queued on all connections, not
 * yet sent: the transfers bound the descriptors they keep open with it.
 */
void ferry__loop_files_add(struct ferry_loop *loop, int delta);
int ferry__loop_files_queued(const struct ferry_loop *loop);
/*
 * Queues a deferred reply on a connection, which takes requests again;
 * handlers answer through ferry__req_answer (dispatch.h), which calls it.
 */
void ferry__client_reply(struct ferry_client *c, json_t *reply);
/* Serves clients on listen_fd until a signal or a shutdown request. 0 or -1. */
int ferry__server_run(struct ferry_loop *loop, struct ferry_engine *eng, int listen_fd);

#endif
