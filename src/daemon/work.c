/*
 * work.c - one worker thread that runs blocking work items in order, and
 * hands each back to the loop through an eventfd (work.h says why).
 *
 * The queue and the list of finished items are the only state the two
 * threads share, under one mutex; an item belongs to the thread that
 * holds it: the loop until it is queued, the worker while it runs, the
 * loop again from the moment it is on the finished list.
 */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "engine.h"
#include "work.h"

struct ferry_worker {
	struct ferry_loop *loop;
	pthread_t thread;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	struct ferry_work *todo, **todo_tail; /* FIFO */
	struct ferry_work *finished;	      /* LIFO; reversed when applied */
	int stop;
	int done_fd;  /* eventfd: the loop has finished items to apply */
	int abort_fd; /* eventfd: readable once the engine stops */
};

static void signal_fd(int fd)
{
	uint64_t one = 1;

	/* an eventfd only refuses a write at 2^64-2: never here */
	while (write(fd, &one, sizeof(one)) < 0 && errno == EINTR)
		;
}

static void *worker_main(void *arg)
{
	struct ferry_worker *wk = arg;

	pthread_mutex_lock(&wk->mu);
	for (;;) {
		struct ferry_work *w;
		while (!wk->todo && !wk->stop)
			pthread_cond_wait(&wk->cv, &wk->mu);
		if (wk->stop)
			break;
		w = wk->todo;
		if (!(wk->todo = w->next))
			wk->todo_tail = &wk->todo;
		pthread_mutex_unlock(&wk->mu);
		w->run(w);
		w->ran = 1;
		pthread_mutex_lock(&wk->mu);
		w->next = wk->finished;
		wk->finished = w;
		signal_fd(wk->done_fd);
	}
	pthread_mutex_unlock(&wk->mu);
	return NULL;
}

/* Applies finished items in the order they ran. */
static void apply(struct ferry_engine *eng, struct ferry_worker *wk)
{
	struct ferry_work *list, *rev = NULL;

	pthread_mutex_lock(&wk->mu);
	list = wk->finished;
	wk->finished = NULL;
	pthread_mutex_unlock(&wk->mu);
	while (list) {
		struct ferry_work *next = list->next;
		list->next = rev;
		rev = list;
		list = next;
	}
	while (rev) {
		struct ferry_work *next = rev->next;
		rev->done(eng, rev);
		rev = next;
	}
}

static void on_done(struct ferry_engine *eng, int fd, void *arg)
{
	uint64_t n;

	while (read(fd, &n, sizeof(n)) < 0 && errno == EINTR)
		;
	apply(eng, arg);
}

static int start_thread(struct ferry_worker *wk)
{
	sigset_t all, old;
	int rc;

	/* the loop's signalfd reads the engine's signals: none for this thread */
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	rc = pthread_create(&wk->thread, NULL, worker_main, wk);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	return rc;
}

struct ferry_worker *ferry__worker_new(struct ferry_loop *loop, char *err, size_t errlen)
{
	struct ferry_worker *wk = calloc(1, sizeof(*wk));
	int rc = ENOMEM;

	if (!wk)
		goto fail;
	wk->loop = loop;
	wk->todo_tail = &wk->todo;
	wk->done_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	wk->abort_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (wk->done_fd < 0 || wk->abort_fd < 0) {
		rc = errno;
		goto fail;
	}
	pthread_mutex_init(&wk->mu, NULL);
	pthread_cond_init(&wk->cv, NULL);
	if ((rc = start_thread(wk)))
		goto fail_sync;
	if (ferry__loop_watch(loop, wk->done_fd, on_done, wk) < 0) {
		rc = errno ? errno : ENOMEM;
		pthread_mutex_lock(&wk->mu);
		wk->stop = 1;
		pthread_cond_signal(&wk->cv);
		pthread_mutex_unlock(&wk->mu);
		pthread_join(wk->thread, NULL);
		goto fail_sync;
	}
	return wk;
fail_sync:
	pthread_cond_destroy(&wk->cv);
	pthread_mutex_destroy(&wk->mu);
fail:
	snprintf(err, errlen, "cannot start the worker thread: %s", strerror(rc));
	if (wk) {
		if (wk->done_fd >= 0)
			close(wk->done_fd);
		if (wk->abort_fd >= 0)
			close(wk->abort_fd);
	}
	free(wk);
	return NULL;
}

void ferry__worker_queue(struct ferry_worker *wk, struct ferry_work *w)
{
	w->ran = 0;
	w->cancel_fd = wk->abort_fd;
	w->nofile = ferry__loop_start_nofile(wk->loop);
	w->next = NULL;
	pthread_mutex_lock(&wk->mu);
	*wk->todo_tail = w;
	wk->todo_tail = &w->next;
	pthread_cond_signal(&wk->cv);
	pthread_mutex_unlock(&wk->mu);
}

void ferry__worker_free(struct ferry_engine *eng, struct ferry_worker *wk)
{
	if (!wk)
		return;
	pthread_mutex_lock(&wk->mu);
	wk->stop = 1;
	pthread_cond_signal(&wk->cv);
	pthread_mutex_unlock(&wk->mu);
	signal_fd(wk->abort_fd);
	pthread_join(wk->thread, NULL);
	ferry__loop_unwatch(wk->loop, wk->done_fd);
	apply(eng, wk);
	/* what never ran, also what a done queues now: its done frees it */
	while (wk->todo) {
		struct ferry_work *w = wk->todo;
		if (!(wk->todo = w->next))
			wk->todo_tail = &wk->todo;
		w->done(eng, w);
	}
	pthread_cond_destroy(&wk->cv);
	pthread_mutex_destroy(&wk->mu);
	close(wk->done_fd);
	close(wk->abort_fd);
	free(wk);
}
