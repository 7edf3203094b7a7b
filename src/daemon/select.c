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
	const char *glob; /* on the job's name; NULL: any */
	int64_t (*ranges)[2];
	size_t nranges;
	int64_t *ids; /* what the database found, then sorted, unique */
	size_t n, cap;
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
	int rc;

	if (json_object_get(r->in, "id"))
		return ferry__req_fail(r, FERRY_EINVAL, "'id' and a selection exclude each other");
	if (all && !json_is_true(all))
		return ferry__req_fail(r, FERRY_EINVAL, "'all' must be true");
	if (name && (!json_is_string(name) || !json_string_length(name)))
		return ferry__req_fail(r, FERRY_EINVAL, "'name' must be a non-empty glob");
	if ((rc = ferry__req_states(r, &s->states)))
		return rc;
	if (!all && !s->states && !name && !json_object_get(r->in, "ids"))
		return ferry__req_fail(r, FERRY_EINVAL,
				       "a selection needs 'all', 'state', 'name' or 'ids'");
	s->glob = name ? json_string_value(name) : NULL;
	return parse_ids(r, s);
}

static int found(void *arg, int64_t id, const char *name)
{
	struct selection *s = arg;

	if (s->glob && fnmatch(s->glob, name ? name : "", 0))
		return 0;
	if (s->n == s->cap) {
		size_t cap = s->cap ? s->cap * 2 : 1024;
		int64_t *v = realloc(s->ids, cap * sizeof(*v));
		if (!v)
			return FERRY_ENOMEM;
		s->ids = v;
		s->cap = cap;
	}
	s->ids[s->n++] = id;
	return 0;
}

static int cmp_id(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;

	return x < y ? -1 : x > y;
}

/* The ids the selection names, ascending, each once (ranges may overlap). */
static int collect(struct ferry_req *r, struct selection *s)
{
	struct ferry_db *db = ferry__engine_db(r->eng);
	size_t k = 0;
	int rc = 0;

	for (size_t i = 0; !rc && i < s->nranges; i++)
		rc = ferry__db_select_jobs(db, s->states, s->ranges[i][0], s->ranges[i][1], found,
					   s);
	if (rc)
		return ferry__req_fail(
		    r, rc, rc == FERRY_ENOMEM ? "out of memory" : "cannot select the jobs");
	if (s->nranges > 1 || __builtin_popcount(s->states) > 1)
		qsort(s->ids, s->n, sizeof(*s->ids), cmp_id);
	for (size_t i = 0; i < s->n; i++)
		if (!k || s->ids[k - 1] != s->ids[i])
			s->ids[k++] = s->ids[i];
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

/* The action (NULL: dispose) on every job found that is still as selected. */
static int apply(struct ferry_req *r, struct selection *s, const char *action)
{
	size_t matched = 0, changed = 0, failed = 0;
	json_t *errors = json_array();
	enum ferry_job_status st;

	if (!errors)
		return ferry__req_fail(r, FERRY_ENOMEM, "out of memory");
	for (size_t i = 0; i < s->n; i++) {
		int64_t id = s->ids[i];
		/* gone meanwhile, being disposed, or in memory in another state */
		if (ferry__engine_job_status(r->eng, id, &st) ||
		    (s->states && !(s->states & (1u << st))))
			continue;
		matched++;
		int rc = ferry__req_apply(r, id, action);
		if (rc < 0) {
			failed++;
			refused(r, errors, id, rc);
		}
		changed += rc == 0;
	}
	json_object_set_new(r->out, "matched", json_integer((json_int_t)matched));
	json_object_set_new(r->out, "changed", json_integer((json_int_t)changed));
	json_object_set_new(r->out, "failed", json_integer((json_int_t)failed));
	json_object_set_new(r->out, "errors", errors);
	return 0;
}

int ferry__req_select(struct ferry_req *r, const char *action)
{
	struct selection s = {0};
	int rc = parse(r, &s);

	if (!rc)
		rc = collect(r, &s);
	if (!rc)
		rc = apply(r, &s, action);
	free(s.ranges);
	free(s.ids);
	return rc;
}
