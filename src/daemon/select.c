/*
 * select.c - control and dispose by selection (docs/protocol.md,
 * "Selections"): every job that "all", "state", "name" and "ids" take
 * together is acted on in one request, so in the loop iteration's one
 * transaction and its one disk sync, and the answer counts what matched,
 * what changed and what could not be applied; one job's refusal never
 * fails the request. The jobs are found by the database's indexes (state,
 * id), so a selection costs what it matches; a name glob filters them.
 */
#include <fnmatch.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "dispatch.h"
#include "jbytes.h"
#include "proto.h"

/* How many refusals the answer names (it counts them all). */
#define SEL_ERRORS 16

struct selection {
	unsigned states;  /* 1u << state; 0: any */
	int64_t workflow; /* of this workflow only; 0: any */
	const char *glob; /* on the job's name; NULL: any */
	int64_t (*ranges)[2];
	size_t nranges;
	struct hit *hits; /* what the database found, then sorted by id, unique */
	size_t n, cap;
};

/* A job the selection found, and its state in the database then. */
struct hit {
	int64_t id;
	int state;
};

static int bad_ids(struct ferry_req *r, size_t i)
{
	return ferry__req_fail(r, FERRY_EINVAL,
			       "'ids'[%zu] must be a job id or a [first, last] range of ids with "
			       "first <= last",
			       i);
}

static int id_of(json_t *e, int64_t *id)
{
	if (!json_is_integer(e) || json_integer_value(e) < 1)
		return -1;
	*id = json_integer_value(e);
	return 0;
}

/* "ids": ids and [first, last] ranges; absent: every id. */
static int parse_ids(struct ferry_req *r, struct selection *s)
{
	json_t *v = json_object_get(r->in, "ids"), *e;
	size_t i;

	if (!v) {
		if (!(s->ranges = malloc(sizeof(*s->ranges))))
			return ferry__req_fail(r, FERRY_ENOMEM, "out of memory");
		s->ranges[0][0] = 1;
		s->ranges[0][1] = INT64_MAX;
		s->nranges = 1;
		return 0;
	}
	if (!json_is_array(v) || !json_array_size(v))
		return ferry__req_fail(r, FERRY_EINVAL,
				       "'ids' must be a non-empty array of ids and [first, last] "
				       "ranges");
	if (!(s->ranges = calloc(json_array_size(v), sizeof(*s->ranges))))
		return ferry__req_fail(r, FERRY_ENOMEM, "out of memory");
	json_array_foreach(v, i, e)
	{
		int64_t *g = s->ranges[i];
		if (json_is_array(e) && json_array_size(e) == 2) {
			if (id_of(json_array_get(e, 0), &g[0]) ||
			    id_of(json_array_get(e, 1), &g[1]) || g[0] > g[1])
				return bad_ids(r, i);
		} else if (id_of(e, &g[0])) {
			return bad_ids(r, i);
		} else {
			g[1] = g[0];
		}
	}
	s->nranges = json_array_size(v);
	return 0;
}

static int parse(struct ferry_req *r, struct selection *s)
{
	json_t *all = json_object_get(r->in, "all"), *name = json_object_get(r->in, "name");
	json_t *wf = json_object_get(r->in, "workflow");
	int rc;

	if (json_object_get(r->in, "id"))
		return ferry__req_fail(r, FERRY_EINVAL, "'id' and a selection exclude each other");
	if (all && !json_is_true(all))
		return ferry__req_fail(r, FERRY_EINVAL, "'all' must be true");
	if (name && (!json_is_string(name) || !json_string_length(name)))
		return ferry__req_fail(r, FERRY_EINVAL, "'name' must be a non-empty glob");
	if (wf && (!json_is_integer(wf) || json_integer_value(wf) < 1))
		return ferry__req_fail(r, FERRY_EINVAL, "'workflow' must be a workflow id");
	s->workflow = wf ? json_integer_value(wf) : 0;
	if ((rc = ferry__req_states(r, &s->states)))
		return rc;
	if (!all && !s->states && !name && !wf && !json_object_get(r->in, "ids"))
		return ferry__req_fail(r, FERRY_EINVAL,
				       "a selection needs 'all', 'state', 'name', 'workflow' or "
				       "'ids'");
	s->glob = name ? json_string_value(name) : NULL;
	return parse_ids(r, s);
}

static int found(void *arg, int64_t id, const char *name, int state)
{
	struct selection *s = arg;

	if (s->glob && fnmatch(s->glob, name ? name : "", 0))
		return 0;
	if (s->n == s->cap) {
		size_t cap = s->cap ? s->cap * 2 : 1024;
		struct hit *v = realloc(s->hits, cap * sizeof(*v));
		if (!v)
			return FERRY_ENOMEM;
		s->hits = v;
		s->cap = cap;
	}
	s->hits[s->n++] = (struct hit){.id = id, .state = state};
	return 0;
}

static int cmp_id(const void *a, const void *b)
{
	int64_t x = ((const struct hit *)a)->id, y = ((const struct hit *)b)->id;

	return x < y ? -1 : x > y;
}

/* The ids the selection names, ascending, each once (ranges may overlap). */
static int collect(struct ferry_req *r, struct selection *s)
{
	struct ferry_db *db = ferry__engine_db(r->eng);
	size_t k = 0;
	int rc = 0;

	for (size_t i = 0; !rc && i < s->nranges; i++)
		rc = s->workflow
			 ? ferry__db_select_workflow(db, s->workflow, s->states, s->ranges[i][0],
						     s->ranges[i][1], found, s)
			 : ferry__db_select_jobs(db, s->states, s->glob != NULL, s->ranges[i][0],
						 s->ranges[i][1], found, s);
	if (rc)
		return ferry__req_fail(
		    r, rc, rc == FERRY_ENOMEM ? "out of memory" : "cannot select the jobs");
	/* hits is NULL when nothing was found: qsort(NULL, 0) is undefined */
	if (s->n > 1 && (s->nranges > 1 || __builtin_popcount(s->states) > 1))
		qsort(s->hits, s->n, sizeof(*s->hits), cmp_id);
	for (size_t i = 0; i < s->n; i++)
		if (!k || s->hits[k - 1].id != s->hits[i].id)
			s->hits[k++] = s->hits[i];
	s->n = k;
	return 0;
}

static void refused(struct ferry_req *r, json_t *errors, int64_t id, int rc)
{
	if (json_array_size(errors) < SEL_ERRORS)
		json_array_append_new(errors, json_pack("{s:I,s:s,s:i,s:o}", "id", (json_int_t)id,
							"error", ferry__error_name(rc), "code", rc,
							"message", ferry__json_bytes(r->err)));
	r->err[0] = '\0';
}

/* What apply counts, for the answer. */
struct tally {
	size_t matched, changed, failed, held;
	json_t *errors;
};

/* The action (NULL: dispose) on job id, found in state st; t counts it. */
static void apply_one(struct ferry_req *r, struct selection *s, struct tally *t, int64_t id,
		      enum ferry_job_status st, const char *action)
{
	int rc;

	/* gone meanwhile, being disposed, or in memory in another state */
	if ((ferry__engine_job(r->eng, id) && ferry__engine_job_status(r->eng, id, &st)) ||
	    (s->states && !(s->states & (1u << st))))
		return;
	t->matched++;
	rc = ferry__req_apply(r, id, action);
	if (rc < 0) {
		t->failed++;
		refused(r, t->errors, id, rc);
	}
	t->changed += rc == 0;
}

/*
 * Kills the held jobs found that wait in the database (t->held of them)
 * in one statement per range of ids (or per id under a name glob): no
 * struct job, no per-job work in the engine. Those the statement leaves
 * (a job producing an output: its end tells the transfer) go one by one.
 */
static int kill_held(struct ferry_req *r, struct selection *s, struct tally *t)
{
	/* a range holds held jobs the selection did not name when a name or workflow narrows it */
	int each = s->glob || s->workflow;
	size_t n, changed = 0;
	int rc = 0;

	for (size_t i = 0; !rc && i < (each ? s->n : s->nranges); i++) {
		if (each && (s->hits[i].state != FERRY_USER_ON_HOLD ||
			     ferry__engine_job(r->eng, s->hits[i].id)))
			continue;
		int64_t first = each ? s->hits[i].id : s->ranges[i][0];
		int64_t last = each ? s->hits[i].id : s->ranges[i][1];
		if (!(rc = ferry__engine_kill_held(r->eng, first, last, &n)) && n)
			/* at once: a later range's failure returns, this one's jobs ended */
			ferry__waits_held_ended(ferry__engine_waits(r->eng), r->eng, first, last);
		changed += n;
	}
	if (rc)
		return ferry__req_fail(r, rc, "cannot kill the held jobs");
	t->matched += t->held;
	t->changed += changed;
	for (size_t i = 0; changed < t->held && i < s->n; i++) {
		if (s->hits[i].state != FERRY_USER_ON_HOLD ||
		    ferry__engine_job(r->eng, s->hits[i].id))
			continue;
		t->matched--; /* counted again, if not ended by the statement */
		apply_one(r, s, t, s->hits[i].id, FERRY_USER_ON_HOLD, "kill");
	}
	return 0;
}

/* The action (NULL: dispose) on every job found that is still as selected. */
static int apply(struct ferry_req *r, struct selection *s, const char *action)
{
	struct tally t = {.errors = json_array()};
	int bulk = action && !strcmp(action, "kill"), rc;
	int noop = action && (!strcmp(action, "hold") || !strcmp(action, "stop"));

	if (!t.errors)
		return ferry__req_fail(r, FERRY_ENOMEM, "out of memory");
	for (size_t i = 0; i < s->n; i++) {
		int64_t id = s->hits[i].id;
		int parked =
		    s->hits[i].state == FERRY_USER_ON_HOLD && !ferry__engine_job(r->eng, id);
		if (parked && noop) { /* held already: not taken back into memory for nothing */
			t.matched++;
			continue;
		}
		if (parked && bulk) {
			t.held++; /* waits in the database: killed below, all at once */
			continue;
		}
		apply_one(r, s, &t, id, s->hits[i].state, action);
	}
	if (t.held && (rc = kill_held(r, s, &t))) {
		json_decref(t.errors);
		return rc;
	}
	json_object_set_new(r->out, "matched", json_integer((json_int_t)t.matched));
	json_object_set_new(r->out, "changed", json_integer((json_int_t)t.changed));
	json_object_set_new(r->out, "failed", json_integer((json_int_t)t.failed));
	json_object_set_new(r->out, "errors", t.errors);
	return 0;
}

/*
 * The states a selection that names neither states nor ids takes (all,
 * a name, a workflow): for a control, the jobs not ended. A hold of
 * every job once counted each ended job as refused (a million errors
 * on a database of ended jobs) and read each one back to say so; a
 * kill of a workflow, each of its jobs done. A dispose takes every
 * state; ids named are each taken, and refused if they must be.
 */
static unsigned default_states(const char *action)
{
	unsigned unended = 0;

	for (int st = FERRY_QUEUED_ACTIVE; st <= FERRY_USER_SYSTEM_SUSPENDED; st++)
		unended |= 1u << st;
	return action ? unended : 0;
}

int ferry__req_select(struct ferry_req *r, const char *action)
{
	struct selection s = {0};
	int rc = parse(r, &s);

	if (!rc && !s.states && !json_object_get(r->in, "ids"))
		s.states = default_states(action);
	if (!rc)
		rc = collect(r, &s);
	if (!rc)
		rc = apply(r, &s, action);
	free(s.ranges);
	free(s.hits);
	return rc;
}
