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

static void waiter_free(struct waiter *w)
{
	for (size_t i = 0; w->marks && i < w->total; i++)
		mark_unlink(&w->marks[i]);
	free(w->marks);
	free(w->ids);
	free(w);
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
		/* a held job waiting in the database comes back to be waited on */
		struct job *j = ferry__engine_job_load(eng, w->ids[w->pos]);
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

static void mark_job(void *arg, struct job *j)
{
	struct take *t = arg;
	struct ferry_wmark *m;

	if (!takes(t, j) || t->n == t->w->total)
		return;
	m = &t->w->marks[t->n++];
	m->w = t->w;
	m->next = j->wmarks;
	m->pprev = &j->wmarks;
	if (m->next)
		m->next->pprev = &m->next;
	j->wmarks = m;
	if (j->id > t->w->upto)
		t->w->upto = j->id;
}

/* The ids of the held jobs a wait for all takes back (load_held). */
struct idlist {
	int64_t *v;
	size_t n, cap;
};

static int id_found(void *arg, int64_t id, const char *name, int state)
{
	struct idlist *l = arg;

	(void)name;
	(void)state;
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

/*
 * Takes back the jobs in states (a mask) up to upto (< 0: all) that wait in
 * the database: held ones, and those waiting for their dependencies.
 */
static int load_held(struct ferry_engine *eng, unsigned states, int64_t upto)
{
	struct idlist l = {0};
	int rc = ferry__db_select_jobs(ferry__engine_db(eng), states, 0, 1,
				       upto < 0 ? INT64_MAX : upto, id_found, &l);

	/* collected first: taking one back may write its row (adopt) */
	for (size_t i = 0; !rc && i < l.n; i++)
		ferry__engine_job_load(eng, l.v[i]);
	free(l.v);
	return rc;
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

int ferry__waits_add_all(struct ferry_waits *ws, struct ferry_engine *eng, struct ferry_client *c,
			 const struct ferry_reqdef *def, const struct ferry_wait_all_args *a)
{
	struct take t = {.states = a->states, .upto = a->upto};
	struct waiter *w;
	int drms = (ferry__engine_backend(eng)->flags & FERRY_BE_DRMS) != 0;
	/* a DRMS keeps held jobs in memory; any engine leaves a workflow's waiting ones out */
	unsigned in_db =
	    a->states & ((drms ? 0 : 1u << FERRY_USER_ON_HOLD) | (1u << FERRY_SYSTEM_ON_HOLD) |
			 (1u << FERRY_USER_SYSTEM_ON_HOLD));
	int rc = in_db && a->upto ? load_held(eng, in_db, a->upto) : 0;

	/* a wait marks its jobs in memory: the held ones come back from the database */
	if (rc)
		return rc;

	/* once per call, not per event: the set is taken now and marked */
	ferry__engine_each_job(eng, count_job, &t);
	if (!(w = calloc(1, sizeof(*w))) || (t.n && !(w->marks = calloc(t.n, sizeof(*w->marks))))) {
		free(w);
		return FERRY_ENOMEM;
	}
	w->c = c;
	w->def = def;
	w->all = 1;
	w->total = w->left = t.n;
	w->deadline = a->deadline;
	w->since = a->since;
	if (w->since < 0 && (rc = ferry__db_failure_mark(ferry__engine_db(eng), &w->since))) {
		free(w->marks);
		free(w);
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
