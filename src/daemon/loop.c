/*
 * loop.c - the engine's event loop: an epoll set and the watches on it.
 *
 * The loop is an object passed to every call (libuv's uv_loop_t): the
 * engine, its backends and the worker each watch their descriptors on the
 * loop they are given, and nothing in ferryd reaches a loop it was not
 * handed. server.c runs it.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <unistd.h>

#include "loop.h"
#include "util.h"

struct ferry_watch {
	int fd;
	ferry_fd_cb cb;
	void *arg;
	struct ferry_watch *next;
};

struct ferry_loop {
	int ep;
	struct ferry_watch *watches;
	struct ferry_watch *graveyard;	 /* unwatched this iteration; freed after it */
	int files_queued;		 /* file parts queued on all connections */
	unsigned long long start_nofile; /* ferryd's soft RLIMIT_NOFILE at start; 0: unknown */
};

struct ferry_loop *ferry__loop_new(char *err, size_t errlen)
{
	struct ferry_loop *loop = calloc(1, sizeof(*loop));

	if (!loop || (loop->ep = epoll_create1(EPOLL_CLOEXEC)) < 0) {
		snprintf(err, errlen, "cannot make the event loop: %s", strerror(errno));
		free(loop);
		return NULL;
	}
	return loop;
}

static void bury(struct ferry_loop *loop)
{
	while (loop->graveyard) {
		struct ferry_watch *w = loop->graveyard;
		loop->graveyard = w->next;
		free(w);
	}
}

void ferry__loop_free(struct ferry_loop *loop)
{
	if (!loop)
		return;
	while (loop->watches) {
		struct ferry_watch *w = loop->watches;
		loop->watches = w->next;
		free(w);
	}
	bury(loop);
	close(loop->ep);
	free(loop);
}

struct ferry_watch *ferry__loop_watch_events(struct ferry_loop *loop, int fd, uint32_t events,
					     ferry_fd_cb cb, void *arg)
{
	struct ferry_watch *w = malloc(sizeof(*w));
	struct epoll_event ev = {.events = events};

	if (!w)
		return NULL;
	ev.data.ptr = w;
	*w = (struct ferry_watch){.fd = fd, .cb = cb, .arg = arg, .next = loop->watches};
	if (epoll_ctl(loop->ep, EPOLL_CTL_ADD, fd, &ev) < 0) {
		free(w);
		return NULL;
	}
	loop->watches = w;
	return w;
}

int ferry__loop_watch(struct ferry_loop *loop, int fd, ferry_fd_cb cb, void *arg)
{
	return ferry__loop_watch_events(loop, fd, EPOLLIN, cb, arg) ? 0 : -1;
}

void ferry__loop_set_events(struct ferry_loop *loop, struct ferry_watch *w, uint32_t want,
			    uint32_t *have)
{
	if (w && want != *have) {
		struct epoll_event ev = {.events = want, .data.ptr = w};
		epoll_ctl(loop->ep, EPOLL_CTL_MOD, w->fd, &ev);
		*have = want;
	}
}

void ferry__loop_unwatch(struct ferry_loop *loop, int fd)
{
	for (struct ferry_watch **p = &loop->watches; *p; p = &(*p)->next) {
		if ((*p)->fd == fd) {
			struct ferry_watch *w = *p;
			epoll_ctl(loop->ep, EPOLL_CTL_DEL, fd, NULL);
			*p = w->next;
			/* the event array of this iteration may still point to it */
			w->cb = NULL;
			w->next = loop->graveyard;
			loop->graveyard = w;
			return;
		}
	}
}

int ferry__loop_poll(struct ferry_loop *loop, struct ferry_engine *eng, int timeout_ms,
		     int (*before)(struct ferry_engine *eng))
{
	struct epoll_event evs[128];
	int n = epoll_wait(loop->ep, evs, (int)FERRY_ARRAY_SIZE(evs), timeout_ms);

	if (n < 0 && errno != EINTR)
		return -1;
	if (before && before(eng) < 0)
		return -1;
	for (int i = 0; i < n; i++) {
		struct ferry_watch *w = evs[i].data.ptr;
		if (w->cb)
			w->cb(eng, w->fd, w->arg);
	}
	bury(loop);
	return 0;
}

void ferry__loop_files_add(struct ferry_loop *loop, int delta)
{
	loop->files_queued += delta;
}

int ferry__loop_files_queued(const struct ferry_loop *loop)
{
	return loop->files_queued;
}

void ferry__loop_set_start_nofile(struct ferry_loop *loop, unsigned long long soft)
{
	loop->start_nofile = soft;
}

unsigned long long ferry__loop_start_nofile(const struct ferry_loop *loop)
{
	return loop->start_nofile;
}
