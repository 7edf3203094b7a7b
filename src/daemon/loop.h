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
 * yet sent: the transfers keep them under FERRY_LOOP_FILES_MAX, past which
 * a reply's bytes are read into memory instead (the server keeps that many
 * descriptors in reserve).
 */
#define FERRY_LOOP_FILES_MAX 256
void ferry__loop_files_add(struct ferry_loop *loop, int delta);
int ferry__loop_files_queued(const struct ferry_loop *loop);
/*
 * The soft descriptor limit (RLIMIT_NOFILE) ferryd started with, before
 * main.c raised it for the engine's connections: the processes that run
 * the user's programs (jobs, cluster commands) get it back in their child
 * just before the exec, as a program that uses select(2) must not see
 * descriptors past 1024; the job runner itself keeps the raised one, as
 * it holds descriptors per job. 0: unknown (or unlimited), leave it.
 */
void ferry__loop_set_start_nofile(struct ferry_loop *loop, unsigned long long soft);
unsigned long long ferry__loop_start_nofile(const struct ferry_loop *loop);
/*
 * Queues a deferred reply on a connection, which takes requests again;
 * handlers answer through ferry__req_answer (dispatch.h), which calls it.
 */
void ferry__client_reply(struct ferry_client *c, json_t *reply);
/*
 * Answers a connection's request in pages (struct ferry_pager,
 * dispatch.h), which the server takes and frees: the connection takes
 * no other request until the last page went out.
 */
struct ferry_pager;
void ferry__client_stream(struct ferry_client *c, struct ferry_pager *p);
/*
 * Serves clients on listen_fd until a signal or a shutdown request. 0, or
 * -1 after a fatal error, whose reason is then written to last_words_fd
 * (lastwords.h; -1: nowhere) before the connections close.
 */
int ferry__server_run(struct ferry_loop *loop, struct ferry_engine *eng, int listen_fd,
		      int last_words_fd);

#endif
