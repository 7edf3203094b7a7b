/* loop.h - the engine's event loop and its connections (server.c). */
#ifndef FERRY_LOOP_H
#define FERRY_LOOP_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

struct ferry_engine;
struct ferry_conn_s;

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

typedef void (*ferry_fd_cb)(struct ferry_engine *eng, int fd, void *arg);
int ferry__loop_watch(int fd, ferry_fd_cb cb, void *arg);
void ferry__loop_unwatch(int fd);
/* File parts (struct ferry_bin with an fd) queued on all connections, not yet sent. */
int ferry__loop_files_queued(void);
/* Sends a deferred reply on a connection (used by wait). */
void ferry__conn_reply(struct ferry_conn_s *c, json_t *reply);
int ferry__server_run(struct ferry_engine *eng, int listen_fd);

#endif
