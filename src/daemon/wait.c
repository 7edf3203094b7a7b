/*
 * wait.c - wait requests whose reply waits for their jobs to end. A wait
 * keeps its ids and a cursor over them: a tick checks each parked wait
 * from its first job not yet seen ended, so a wait costs what ended
 * since the last tick, not its whole list each time.
 */
#include "wait.h"

#include <stdlib.h>

#include "dispatch.h"
#include "engine.h"
#include "ferry.h"
#include "util.h"

struct waiter {
	struct ferry_client *c;
	const struct ferry_reqdef *def; /* wait's row, for the reply */
	int64_t *ids;
	size_t n, pos;
	double deadline; /* monotonic; <0: none */
	struct waiter *next;
};

static void waiter_free(struct waiter *w)
{
	free(w->ids);
	free(w);
}

/* Whether every job of w has ended; advances w->pos over ended jobs. */
static int waiter_done(struct ferry_engine *eng, struct waiter *w)
{
	while (w->pos < w->n) {
		struct job *j = ferry__engine_job(eng, w->ids[w->pos]);
		if (j && !j->dispose_requested)
			return 0;
		w->pos++;
	}
	return 1;
}

int ferry__waits_add(struct ferry_waits *ws, struct ferry_engine *eng, struct ferry_client *c,
		     const struct ferry_reqdef *def, int64_t *ids, size_t n, double deadline)
{
	struct waiter *w = calloc(1, sizeof(*w));

	if (!w) {
		free(ids);
		return FERRY_ENOMEM;
	}
	*w = (struct waiter){.c = c, .def = def, .ids = ids, .n = n, .deadline = deadline};
	if (waiter_done(eng, w)) {
		waiter_free(w);
		return 0;
	}
	w->next = ws->head;
	ws->head = w;
	return 1;
}

void ferry__waits_wake(struct ferry_waits *ws, struct ferry_engine *eng)
{
	struct waiter **p = &ws->head;
	double now = ferry__mono();

	while (*p) {
		struct waiter *w = *p;
		json_t *reply = NULL;

		if (waiter_done(eng, w))
			reply = json_pack("{s:b}", "ok", 1);
		else if (w->deadline >= 0 && now >= w->deadline)
			reply = ferry__error_reply(FERRY_ETIMEDOUT,
						   "timed out waiting for the jobs to end");
		if (!reply) {
			p = &w->next;
			continue;
		}
		*p = w->next;
		ferry__req_answer(eng, w->c, w->def, reply);
		json_decref(reply);
		waiter_free(w);
	}
}

void ferry__waits_forget(struct ferry_waits *ws, struct ferry_client *c)
{
	struct waiter **p = &ws->head;

	while (*p) {
		struct waiter *w = *p;
		if (w->c == c) {
			*p = w->next;
			waiter_free(w);
		} else {
			p = &w->next;
		}
	}
}

double ferry__waits_next_deadline(const struct ferry_waits *ws, double next)
{
	for (const struct waiter *w = ws->head; w; w = w->next)
		if (w->deadline >= 0 && w->deadline < next)
			next = w->deadline;
	return next;
}

void ferry__waits_release(struct ferry_waits *ws)
{
	while (ws->head) {
		struct waiter *w = ws->head;
		ws->head = w->next;
		waiter_free(w);
	}
}
