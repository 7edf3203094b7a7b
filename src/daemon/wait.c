/*
 * wait.c - wait requests whose reply waits for their jobs to end.
 *
 * A wait for listed ids keeps them and a cursor: a tick checks each parked
 * wait from its first job not yet seen ended, so a wait costs what ended
 * since the last tick, not its whole list each time.
 *
 * A wait for all jobs (wait "all") takes its set once, at the call: a
 * mark on each job of it (struct ferry_wmark, on the job's list j->wmarks)
 * and a count. The job's end (ferry__waits_job_ended) takes its marks
 * off and counts them down, so an event costs the waits that hold the
 * job, never a scan of a wait's set; the tick answers a wait whose count
 * reached zero. Its failures come from the database's failure log when
 * it answers: how many jobs up to its highest id failed since the call,
 * and which (the first FERRY_WAIT_FAILED_IDS).
 *
 * A client's wait for all jobs is several requests (the first learns the
 * set, a remote one comes back every few seconds, one is replayed on a
 * restarted engine): each answer carries the failure log's mark
 * (ferry__db_failure_mark), and the next request, given it as
 * "failed_since", first counts the jobs of its range that failed after
 * it - those that ended between the two requests, or while no engine ran.
 */
#include "wait.h"

#include <stdlib.h>

#include "db.h"
#include "dispatch.h"
#include "engine.h"
#include "ferry.h"
#include "util.h"

/* A job's place in a wait for all jobs (one per job of the set). */
struct ferry_wmark {
	struct waiter *w;
	struct job *j;			   /* its job, while the mark is on its list */
	struct ferry_wmark *next, **pprev; /* on the job's list; pprev NULL: off it */
};

struct waiter {
	struct ferry_client *c;
	const struct ferry_reqdef *def; /* wait's row, for the reply */
	int64_t *ids;			/* a wait for ids: the ids, and how far ended */
	size_t n, pos;
	int all;    /* a wait for all jobs (else for ids) */
	int64_t wf; /* a wait for a workflow: its id, and its jobs not ended in left */
	struct ferry_wmark *marks; /* a wait for all: one per job of its set */
	/*
	 * A wait for all: the ids of its jobs that wait in the database (held,
	 * or waiting for their dependencies), ascending, each negated once
	 * taken back (it has marks[nmem + k] then) or ended there: 8 bytes a
	 * job where a struct job costs kilobytes (docs/architecture.md, "Held
	 * jobs wait in the database").
	 */
	int64_t *held;
	size_t nheld, nmem;
	size_t total, left, failed, nfailed_ids;
	int64_t failed_ids[FERRY_WAIT_FAILED_IDS];
	int64_t upto; /* the highest id of the set; 0 when empty */
	/* a wait for all: its failures are those logged after since, of jobs up to fail_upto */
	int64_t since, fail_upto;
	double deadline; /* monotonic; <0: none */
	struct waiter *next;
};

static void mark_unlink(struct ferry_wmark *m)
{
	if (!m->pprev)
		return;
	*m->pprev = m->next;
	if (m->next)
		m->next->pprev = m->pprev;
	m->next = NULL;
	m->pprev = NULL;
}

/*
 * Frees a wait that ended. A held job kept in memory for its marks alone
 * goes back to the database (eng NULL: the engine is going away): one a
 * wait had marked, held since, stayed in memory after a wait that timed
 * out, until a request named it.
 */
static void waiter_free(struct ferry_engine *eng, struct waiter *w)
{
	for (size_t i = 0; w->marks && i < w->total; i++) {
		struct ferry_wmark *m = &w->marks[i];
		struct job *j = m->pprev ? m->j : NULL;
		mark_unlink(m);
		if (eng && j && !j->wmarks)
			ferry__engine_job_settle(eng, j);
	}
	free(w->marks);
	free(w->held);
	free(w->ids);
	free(w);
}

/*
 * Whether job id, not in memory, has ended (or is gone): a failure to
 * read it is no end, so that a wait does not return early for it.
 */
static int ended_in_db(struct ferry_engine *eng, int64_t id)
{
	enum ferry_job_status st;
	int rc = ferry__db_status(ferry__engine_db(eng), id, &st);

	return rc == FERRY_ENOJOB || (rc == 0 && (st == FERRY_DONE || st == FERRY_FAILED));
}

/* Whether every job of w has ended; advances w->pos over ended jobs. */
static int waiter_done(struct ferry_engine *eng, struct waiter *w)
{
	if (w->wf && !w->left) {
		/*
		 * Counted down by each end in the workflow, which the count at
		 * the start may have left out (a job disposed of that ends
		 * late): the database says whether it is done.
		 */
		int64_t left = 0;
		if (ferry__db_wf_left(ferry__engine_db(eng), w->wf, &left) == 0)
			w->left = (size_t)left;
	}
	if (w->all || w->wf)
		return w->left == 0;
	while (w->pos < w->n) {
		/* a job waiting in the database (held) is waited on there, not taken back */
		struct job *j = ferry__engine_job(eng, w->ids[w->pos]);
		if (j ? !j->dispose_requested : !ended_in_db(eng, w->ids[w->pos]))
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
		waiter_free(eng, w);
		return 0;
	}
	w->next = ws->head;
	ws->head = w;
	return 1;
}

/* A pass over the jobs in memory for a wait for all jobs: counts, then marks. */
struct take {
	struct waiter *w;
	unsigned states;
	int64_t upto; /* < 0: any */
	size_t n;
};

/* Whether a wait for all jobs takes j: not ended, in states, not above upto. */
static int takes(const struct take *t, const struct job *j)
{
	return !j->dispose_requested && (t->states & (1u << j->state)) &&
	       (t->upto < 0 || j->id <= t->upto);
}

static void count_job(void *arg, struct job *j)
{
	struct take *t = arg;

	t->n += takes(t, j);
}

/* Puts mark m of wait w on job j: j's end counts w down. */
static void mark_on(struct waiter *w, struct ferry_wmark *m, struct job *j)
{
	m->w = w;
	m->j = j;
	m->next = j->wmarks;
	m->pprev = &j->wmarks;
	if (m->next)
		m->next->pprev = &m->next;
	j->wmarks = m;
}

static void mark_job(void *arg, struct job *j)
{
	struct take *t = arg;

	if (!takes(t, j) || t->n == t->w->nmem)
		return;
	mark_on(t->w, &t->w->marks[t->n++], j);
	if (j->id > t->w->upto)
		t->w->upto = j->id;
}

/* The ids of the jobs of a wait for all that wait in the database (held_ids). */
struct idlist {
	struct ferry_engine *eng;
	int64_t *v;
	size_t n, cap;
};

static int id_found(void *arg, int64_t id, const char *name, int state)
{
	struct idlist *l = arg;

	(void)name;
	(void)state;
	if (ferry__engine_job(l->eng, id)) /* in memory: marked as such */
		return 0;
	if (l->n == l->cap) {
		size_t cap = l->cap ? 2 * l->cap : 256;
		int64_t *v = realloc(l->v, cap * sizeof(*v));
		if (!v)
			return FERRY_ENOMEM;
		l->v = v;
		l->cap = cap;
	}
	l->v[l->n++] = id;
	return 0;
}

static int cmp_id(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;

	return (x > y) - (x < y);
}

/*
 * The ids of the jobs in states (a mask) up to upto (< 0: all) that wait
 * in the database, ascending: held ones, and those waiting for their
 * dependencies. They stay there; their ids are the wait's.
 */
static int held_ids(struct ferry_engine *eng, unsigned states, int64_t upto, struct idlist *l)
{
	int rc = ferry__db_select_jobs(ferry__engine_db(eng), states, 0, 1,
				       upto < 0 ? INT64_MAX : upto, id_found, l);

	if (!rc && l->n > 1) /* ascending within a state only */
		qsort(l->v, l->n, sizeof(*l->v), cmp_id);
	return rc;
}

/* The first index of w->held at or above id (an id gone is kept negated: still in order). */
static size_t held_from(const struct waiter *w, int64_t id)
{
	size_t lo = 0, hi = w->nheld;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (llabs(w->held[mid]) < id)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

static void count_failed(struct waiter *w, int64_t id)
{
	if (w->nfailed_ids < FERRY_WAIT_FAILED_IDS)
		w->failed_ids[w->nfailed_ids++] = id;
	w->failed++;
}

static void count_logged(void *arg, int64_t id)
{
	count_failed(arg, id);
}

/* A wait for all of nmem jobs in memory and the held ids l (taken); NULL when out of memory. */
static struct waiter *all_new(struct ferry_client *c, const struct ferry_reqdef *def, size_t nmem,
			      struct idlist *l)
{
	struct waiter *w = calloc(1, sizeof(*w));
	size_t total = nmem + l->n;

	/* a held id's mark is touched only if it is taken back: calloc's pages stay unmapped */
	if (!w || (total && !(w->marks = calloc(total, sizeof(*w->marks))))) {
		free(w);
		free(l->v);
		return NULL;
	}
	w->c = c;
	w->def = def;
	w->all = 1;
	w->held = l->v;
	w->nheld = l->n;
	w->nmem = nmem;
	w->total = w->left = total;
	if (l->n)
		w->upto = l->v[l->n - 1];
	return w;
}

int ferry__waits_add_all(struct ferry_waits *ws, struct ferry_engine *eng, struct ferry_client *c,
			 const struct ferry_reqdef *def, const struct ferry_wait_all_args *a)
{
	struct take t = {.states = a->states, .upto = a->upto};
	struct idlist l = {.eng = eng};
	struct waiter *w;
	int drms = (ferry__engine_backend(eng)->flags & FERRY_BE_DRMS) != 0;
	/* a DRMS keeps held jobs in memory; any engine leaves a workflow's waiting ones out */
	unsigned in_db =
	    a->states & ((drms ? 0 : 1u << FERRY_USER_ON_HOLD) | (1u << FERRY_SYSTEM_ON_HOLD) |
			 (1u << FERRY_USER_SYSTEM_ON_HOLD));
	int rc = in_db && a->upto ? held_ids(eng, in_db, a->upto, &l) : 0;

	if (rc) {
		free(l.v);
		return rc;
	}
	/* once per call, not per event: the set is taken now and marked */
	ferry__engine_each_job(eng, count_job, &t);
	if (!(w = all_new(c, def, t.n, &l)))
		return FERRY_ENOMEM;
	w->deadline = a->deadline;
	w->since = a->since;
	if (w->since < 0 && (rc = ferry__db_failure_mark(ferry__engine_db(eng), &w->since))) {
		waiter_free(eng, w);
		return rc;
	}
	t.w = w;
	t.n = 0;
	ferry__engine_each_job(eng, mark_job, &t);
	w->fail_upto = a->upto >= 0 ? a->upto : w->upto;
	/* parked even when empty: the tick answers it with its counts */
	w->next = ws->head;
	ws->head = w;
	return 1;
}

void ferry__waits_job_loaded(struct ferry_waits *ws, struct job *j)
{
	for (struct waiter *w = ws->head; w; w = w->next) {
		size_t k = w->nheld ? held_from(w, j->id) : 0;
		if (k < w->nheld && w->held[k] == j->id) {
			w->held[k] = -j->id;
			mark_on(w, &w->marks[w->nmem + k], j);
		}
	}
}

void ferry__waits_held_ended(struct ferry_waits *ws, struct ferry_engine *eng, int64_t first,
			     int64_t last)
{
	for (struct waiter *w = ws->head; w; w = w->next) {
		for (size_t k = w->nheld ? held_from(w, first) : 0;
		     k < w->nheld && llabs(w->held[k]) <= last; k++) {
			/* of a range, only those the change ended (a kill leaves some) */
			if (w->held[k] < 0 || !ended_in_db(eng, w->held[k]))
				continue;
			w->held[k] = -w->held[k];
			w->left--;
		}
	}
}

int ferry__waits_add_workflow(struct ferry_waits *ws, struct ferry_client *c,
			      const struct ferry_reqdef *def, int64_t wf, size_t left,
			      double deadline)
{
	struct waiter *w;

	if (!left)
		return 0;
	if (!(w = calloc(1, sizeof(*w))))
		return FERRY_ENOMEM;
	*w = (struct waiter){.c = c, .def = def, .wf = wf, .left = left, .deadline = deadline};
	w->next = ws->head;
	ws->head = w;
	return 1;
}

void ferry__waits_workflow_ended(struct ferry_waits *ws, int64_t wf)
{
	for (struct waiter *w = ws->head; w; w = w->next)
		if (w->wf == wf && w->left)
			w->left--;
}

void ferry__waits_job_ended(struct job *j)
{
	while (j->wmarks) {
		struct ferry_wmark *m = j->wmarks;

		mark_unlink(m);
		m->w->left--;
	}
}

/*
 * The reply of a wait for all jobs: its counts, whether all ended or not,
 * and the failure log's mark, read now. Its failures are read from the
 * log too, those after its since of jobs up to its fail_upto: one rule,
 * whether a job failed during this request or between two of a client's,
 * of the set or not (a held job killed meanwhile), and every failure up
 * to the mark was counted by this request or one before it.
 */
static json_t *all_reply(struct ferry_engine *eng, struct waiter *w)
{
	json_t *ids = json_array();
	json_t *reply;
	int64_t mark;
	int rc;

	w->failed = w->nfailed_ids = 0;
	rc = ferry__db_failures_since(ferry__engine_db(eng), w->since, w->fail_upto, count_logged,
				      w);
	if (!rc)
		rc = ferry__db_failure_mark(ferry__engine_db(eng), &mark);
	if (rc) {
		json_decref(ids);
		return ferry__error_reply(rc, "cannot read the failure log of the database");
	}
	for (size_t i = 0; ids && i < w->nfailed_ids; i++)
		json_array_append_new(ids, json_integer(w->failed_ids[i]));
	reply = json_pack("{s:b,s:I,s:I,s:I,s:o,s:I,s:I}", "ok", 1, "jobs", (json_int_t)w->total,
			  "pending", (json_int_t)w->left, "failed", (json_int_t)w->failed,
			  "failed_ids", ids, "upto", (json_int_t)w->upto, "mark", (json_int_t)mark);
	return reply ? reply : ferry__error_reply(FERRY_ENOMEM, "out of memory");
}

/* The reply w is due now, or NULL while it waits on. */
static json_t *waiter_reply(struct ferry_engine *eng, struct waiter *w, double now)
{
	int done = waiter_done(eng, w);

	if (!done && (w->deadline < 0 || now < w->deadline))
		return NULL;
	if (w->all)
		return all_reply(eng, w); /* a wait for all tells its counts either way */
	if (done)
		return json_pack("{s:b}", "ok", 1);
	return ferry__error_reply(FERRY_ETIMEDOUT, "timed out waiting for the jobs to end");
}

void ferry__waits_wake(struct ferry_waits *ws, struct ferry_engine *eng)
{
	struct waiter **p = &ws->head;
	double now = ferry__mono();

	while (*p) {
		struct waiter *w = *p;
		json_t *reply = waiter_reply(eng, w, now);

		if (!reply) {
			p = &w->next;
			continue;
		}
		*p = w->next;
		ferry__req_answer(eng, w->c, w->def, reply);
		json_decref(reply);
		waiter_free(eng, w);
	}
}

void ferry__waits_forget(struct ferry_waits *ws, struct ferry_engine *eng, struct ferry_client *c)
{
	struct waiter **p = &ws->head;

	while (*p) {
		struct waiter *w = *p;
		if (w->c == c) {
			*p = w->next;
			waiter_free(eng, w);
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
		waiter_free(NULL, w);
	}
}
