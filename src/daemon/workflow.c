/*
 * workflow.c - jobs with dependencies (docs/architecture.md, "Workflows";
 * docs/workflows.md): what a job's end does to the jobs after it, and the
 * requests workflow_submit, workflow_status and workflows. The graph is
 * never held in memory: each job's row counts its dependencies not done
 * yet (jobs.waiting), the edges are rows of job_deps, and a job waiting
 * for its dependencies is its row only, as a held job is, until the last
 * of them is done.
 */
#include "workflow.h"

#include <dirent.h>
#include <errno.h>
#include <sys/stat.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "db.h"
#include "dispatch.h"
#include "engine.h"
#include "jbytes.h"
#include "jscan.h"
#include "proto.h"
#include "util.h"
#include "wait.h"

/* ---- what a job's end does downstream ---- */

struct wf_end {
	int64_t id, wf;
	const char *how; /* NULL: done; else a static phrase */
};

void ferry__wf_work_free(struct ferry_wfwork *w)
{
	free(w->v);
	free(w->aside);
	*w = (struct ferry_wfwork){0};
}

static int push(struct ferry_wfwork *w, int64_t id, int64_t wf, const char *how)
{
	if (w->n == w->cap) {
		size_t cap = w->cap ? 2 * w->cap : 64;
		struct wf_end *v = realloc(w->v, cap * sizeof(*v));
		if (!v)
			return FERRY_ENOMEM;
		w->v = v;
		w->cap = cap;
	}
	w->v[w->n++] = (struct wf_end){id, wf, how};
	return 0;
}

/*
 * Whether a stored spec is a barrier's (no command: never handed to a
 * backend): found as text (jscan.h), parsed only when the scan cannot say.
 */
static int is_barrier(struct ferry_engine *eng, int64_t id)
{
	static const char *const key[1] = {"barrier"};
	static const size_t keylen[1] = {7};
	struct ferry_jspan v;
	char *text = NULL;
	json_t *spec;
	int ended, barrier;

	if (ferry__db_spec(ferry__engine_db(eng), id, &text, &ended))
		return 0;
	if (!ferry__jscan_object(text, strlen(text), key, keylen, 1, &v)) {
		barrier = v.p && v.n == 4 && !memcmp(v.p, "true", 4);
	} else {
		spec = ferry__json_loads(text);
		barrier = json_is_true(json_object_get(spec, "barrier"));
		json_decref(spec);
	}
	free(text);
	return barrier;
}

/*
 * Ends job id, which never ran: through the engine when it is in memory
 * (a wait or a hold took it), else its row alone. Its own end is queued.
 */
static void end_unran(struct ferry_engine *eng, int64_t id, int64_t wf, enum ferry_exit_status es,
		      const char *msg, const char *how)
{
	struct job *j = ferry__engine_job(eng, id);
	struct job_result r = ferry__job_result_unran(es, msg);

	if (j) {
		if (es == FERRY_FINISHED_REGULARLY)
			ferry__engine_job_ended(eng, j, &r);
		else
			ferry__engine_job_end_unstarted(eng, j, es, msg);
		return;
	}
	r.started_at = es == FERRY_FINISHED_REGULARLY ? r.ended_at : 0;
	if (ferry__db_set_ended(ferry__engine_db(eng), id,
				es == FERRY_FINISHED_REGULARLY ? FERRY_DONE : FERRY_FAILED, &r, -1,
				ferry__engine_hour(eng)))
		return;
	ferry__waits_held_ended(ferry__engine_waits(eng), eng, id, id);
	ferry__transfer_job_ended(eng, id);
	ferry__wf_job_ended(eng, id, wf, how);
}

/*
 * Job id's dependencies are all done: it goes on as a job just submitted
 * would (queued, or held if the user held it, or waiting for its inputs
 * still); a barrier ends done at once.
 */
static void release(struct ferry_engine *eng, int64_t id, int64_t wf, enum ferry_job_status st)
{
	struct ferry_db *db = ferry__engine_db(eng);
	int held = st == FERRY_USER_SYSTEM_ON_HOLD;
	int inputs = ferry__db_ref_pending(db, id) > 0;
	enum ferry_job_status to = held ? (inputs ? FERRY_USER_SYSTEM_ON_HOLD : FERRY_USER_ON_HOLD)
					: (inputs ? FERRY_SYSTEM_ON_HOLD : FERRY_QUEUED_ACTIVE);
	struct job *j;

	if (is_barrier(eng, id)) {
		end_unran(eng, id, wf, FERRY_FINISHED_REGULARLY, "", NULL);
		return;
	}
	if (ferry__db_release_job(db, id, to))
		return;
	if ((j = ferry__engine_job(eng, id))) {
		ferry__engine_job_set_state(eng, j, to);
		if (to ==
		    FERRY_USER_ON_HOLD) { /* back to the database, unless something needs it */
			ferry__engine_job_settle(eng, j);
			return;
		}
	} else if (to != FERRY_USER_ON_HOLD) { /* a held one waits in the database still */
		j = ferry__engine_job_load(eng, id);
	}
	/*
	 * Depth first: ahead of the jobs queued before, so that a chain goes
	 * on in the slot its last step freed (docs/architecture.md).
	 */
	if (j)
		ferry__engine_job_first(eng, j);
}

static void successors_go_on(struct ferry_engine *eng, int64_t id, int64_t wf)
{
	int64_t *succ = NULL;
	size_t n = 0;

	if (ferry__db_successors(ferry__engine_db(eng), id, &succ, &n))
		return;
	/* the last first: each goes to the queue's head, so they start by id */
	for (size_t i = n; i-- > 0;) {
		enum ferry_job_status st;
		int left;
		if (ferry__db_waiting_down(ferry__engine_db(eng), succ[i], &left, &st) == 1 &&
		    left == 0)
			release(eng, succ[i], wf, st);
	}
	free(succ);
}

static int name_of(void *arg, int64_t id, const char *name, int state)
{
	(void)id;
	(void)state;
	if (name)
		snprintf(arg, 300, " ('%s')", name);
	return 0;
}

/* Every job downstream of job id ends without running, its message naming job id. */
static void descendants_abort(struct ferry_engine *eng, int64_t id, int64_t wf, const char *how)
{
	char name[300] = "", msg[400];
	int64_t *d = NULL;
	size_t n = 0;

	ferry__db_select_jobs(ferry__engine_db(eng), 0, 1, id, id, name_of, name);
	snprintf(msg, sizeof(msg), "job %lld%s %s", (long long)id, name, how);
	if (ferry__db_descendants(ferry__engine_db(eng), id, &d, &n))
		return;
	/*
	 * The descendants of each are among d and end here too: looking for
	 * them again at each one's end made a chain's abort quadratic.
	 */
	ferry__engine_wf(eng)->aborting = 1;
	for (size_t i = 0; i < n; i++)
		end_unran(eng, d[i], wf, FERRY_ABORTED, msg, "failed");
	ferry__engine_wf(eng)->aborting = 0;
	free(d);
}

const char *ferry__wf_how(enum ferry_job_status st, enum ferry_exit_status es, int disposed)
{
	if (disposed)
		return "was disposed of";
	if (st == FERRY_DONE)
		return NULL;
	return es == FERRY_KILLED_BY_USER ? "was killed" : "failed";
}

void ferry__wf_job_ended(struct ferry_engine *eng, int64_t id, int64_t wf, const char *how)
{
	struct ferry_wfwork *w = ferry__engine_wf(eng);

	if (!wf)
		return;
	ferry__waits_workflow_ended(ferry__engine_waits(eng), wf);
	if (w->aborting) /* descendants_abort ends every job downstream */
		return;
	if (push(w, id, wf, how)) {
		fprintf(stderr, "ferryd: job %lld: cannot go on with its workflow: out of memory\n",
			(long long)id);
		return;
	}
	if (w->busy)
		return; /* the loop below takes it */
	w->busy = 1;
	while (w->n) {
		struct wf_end e = w->v[--w->n];
		if (e.how)
			descendants_abort(eng, e.id, e.wf, e.how);
		else
			successors_go_on(eng, e.id, e.wf);
	}
	w->busy = 0;
}

/* ---- workflow_submit ---- */

/* The largest workflow one request takes; the frame's size bounds it first. */
#define WF_JOBS_MAX    1000000
#define WF_GROUP_DEPTH 32

/* A workflow as a request gives it, its jobs by index (their order in "jobs"). */
struct graph {
	size_t n;
	const char **local; /* local ids */
	json_t **spec;
	size_t *by_name;  /* indexes sorted by local id, to find one */
	size_t (*dep)[2]; /* (pred, succ), sorted by succ then pred, no duplicate */
	size_t ndep;
	size_t *in_start;  /* dep[in_start[s] .. in_start[s + 1]): the dependencies of s */
	size_t *out_start; /* out[out_start[p] ..]: the successors of p */
	size_t *out;
	size_t *order; /* every job after its dependencies */
	int64_t *id;   /* job ids, once recorded */
};

static void graph_free(struct graph *g)
{
	free(g->local);
	free(g->spec);
	free(g->by_name);
	free(g->dep);
	free(g->in_start);
	free(g->out_start);
	free(g->out);
	free(g->order);
	free(g->id);
}

static const struct graph *sort_graph;

static int cmp_name(const void *a, const void *b)
{
	return strcmp(sort_graph->local[*(const size_t *)a], sort_graph->local[*(const size_t *)b]);
}

static int cmp_dep(const void *a, const void *b)
{
	const size_t *x = a, *y = b;

	if (x[1] != y[1])
		return x[1] < y[1] ? -1 : 1;
	return x[0] < y[0] ? -1 : x[0] > y[0];
}

/* The index of local id s, or -1. */
static long find_local(const struct graph *g, const char *s)
{
	size_t lo = 0, hi = g->n;

	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		int c = strcmp(s, g->local[g->by_name[mid]]);
		if (!c)
			return (long)g->by_name[mid];
		if (c < 0)
			hi = mid;
		else
			lo = mid + 1;
	}
	return -1;
}

static int read_jobs(struct ferry_req *r, struct graph *g)
{
	json_t *jobs = json_object_get(r->in, "jobs"), *v;
	const char *k;
	size_t i = 0;

	if (!json_is_object(jobs) || !(g->n = json_object_size(jobs)))
		return ferry__req_fail(
		    r, FERRY_EINVAL, "'jobs' must be a non-empty object of job specs by local id");
	if (g->n > WF_JOBS_MAX)
		return ferry__req_fail(r, FERRY_EINVAL,
				       "%zu jobs in one workflow, over the limit of %d", g->n,
				       WF_JOBS_MAX);
	g->local = calloc(g->n, sizeof(*g->local));
	g->spec = calloc(g->n, sizeof(*g->spec));
	g->by_name = calloc(g->n, sizeof(*g->by_name));
	g->id = calloc(g->n, sizeof(*g->id));
	if (!g->local || !g->spec || !g->by_name || !g->id)
		return ferry__req_fail(r, FERRY_ENOMEM, "out of memory");
	json_object_foreach(jobs, k, v)
	{
		if (!json_is_object(v))
			return ferry__req_fail(r, FERRY_EINVAL,
					       "job '%.64s': must be a job spec (an object)", k);
		g->local[i] = k;
		g->spec[i] = v;
		g->by_name[i] = i;
		i++;
	}
	sort_graph = g;
	qsort(g->by_name, g->n, sizeof(*g->by_name), cmp_name);
	return 0;
}

/* One pair of "dependencies" into *d: 0, or the request's failure. */
static int read_dep(struct ferry_req *r, const struct graph *g, json_t *e, size_t i, size_t d[2])
{
	for (int k = 0; k < 2; k++) {
		json_t *s = json_array_get(e, (size_t)k);
		long at = json_is_string(s) ? find_local(g, json_string_value(s)) : -1;
		if (json_array_size(e) != 2 || !json_is_string(s))
			return ferry__req_fail(
			    r, FERRY_EINVAL, "dependency %zu: must be a pair of local job ids", i);
		if (at < 0)
			return ferry__req_fail(r, FERRY_EINVAL,
					       "dependency %zu: no job '%.64s' in 'jobs'", i,
					       json_string_value(s));
		d[k] = (size_t)at;
	}
	if (d[0] == d[1])
		return ferry__req_fail(r, FERRY_EINVAL,
				       "dependency %zu: job '%.64s' cannot depend on itself", i,
				       g->local[d[0]]);
	return 0;
}

/* "dependencies": sorted, duplicates dropped (a pair said twice says it once), indexed both ways.
 */
static int read_deps(struct ferry_req *r, struct graph *g)
{
	json_t *deps = json_object_get(r->in, "dependencies"), *e;
	size_t i, k = 0, total, *pos;
	int rc;

	if (deps && !json_is_array(deps))
		return ferry__req_fail(r, FERRY_EINVAL, "'dependencies' must be an array of pairs");
	total = json_array_size(deps);
	g->dep = malloc((total ? total : 1) * sizeof(*g->dep));
	g->in_start = calloc(g->n + 1, sizeof(*g->in_start));
	g->out_start = calloc(g->n + 1, sizeof(*g->out_start));
	g->out = malloc((total ? total : 1) * sizeof(*g->out));
	if (!g->dep || !g->in_start || !g->out_start || !g->out)
		return ferry__req_fail(r, FERRY_ENOMEM, "out of memory");
	json_array_foreach(deps, i, e)
	{
		if ((rc = read_dep(r, g, e, i, g->dep[i])))
			return rc;
	}
	qsort(g->dep, total, sizeof(*g->dep), cmp_dep);
	for (i = 0; i < total; i++)
		if (!k || cmp_dep(g->dep[k - 1], g->dep[i]))
			memcpy(g->dep[k++], g->dep[i], sizeof(*g->dep));
	g->ndep = k;
	for (i = 0; i < g->ndep; i++) {
		g->in_start[g->dep[i][1] + 1]++;
		g->out_start[g->dep[i][0] + 1]++;
	}
	for (i = 0; i < g->n; i++) {
		g->in_start[i + 1] += g->in_start[i];
		g->out_start[i + 1] += g->out_start[i];
	}
	/* the successors of each job, filled through a cursor per job */
	if (!(pos = malloc((g->n + 1) * sizeof(*pos))))
		return ferry__req_fail(r, FERRY_ENOMEM, "out of memory");
	memcpy(pos, g->out_start, (g->n + 1) * sizeof(*pos));
	for (i = 0; i < g->ndep; i++)
		g->out[pos[g->dep[i][0]]++] = g->dep[i][1];
	free(pos);
	return 0;
}

/* A dependency of s on a job not sorted yet (left[] > 0): there is one on a cycle. */
static size_t unsorted_pred(const struct graph *g, const size_t *left, size_t s)
{
	for (size_t k = g->in_start[s]; k < g->in_start[s + 1]; k++)
		if (left[g->dep[k][0]])
			return g->dep[k][0];
	return s;
}

/* The error naming a cycle among the jobs topo_sort left (left[] > 0). */
static int cycle_error(struct ferry_req *r, const struct graph *g, const size_t *left)
{
	char path[600] = "";
	size_t v = 0, len = 0, hops = 0, u;

	while (!left[v])
		v++;
	/* each job left waits on one left: walking back n steps ends on a cycle */
	for (size_t i = 0; i < g->n; i++)
		v = unsorted_pred(g, left, v);
	/* a local id has no bound of its own: each is cut so that len stays in path */
	for (u = v; len < sizeof(path) - 160 && (u != v || !hops); hops++) {
		len += (size_t)snprintf(path + len, sizeof(path) - len, "%s'%.64s'",
					hops ? " <- " : "", g->local[u]);
		u = unsorted_pred(g, left, u);
	}
	if (u == v)
		snprintf(path + len, sizeof(path) - len, " <- '%.64s'", g->local[v]);
	else
		snprintf(path + len, sizeof(path) - len, " <- ...");
	return ferry__req_fail(r, FERRY_EINVAL, "the dependencies make a cycle: %s", path);
}

/* g->order: every job after its dependencies (Kahn), or the cycle's error. */
static int topo_sort(struct ferry_req *r, struct graph *g)
{
	size_t *left = malloc(g->n * sizeof(*left)), head = 0, tail = 0;
	int rc = 0;

	if (!left || !(g->order = malloc(g->n * sizeof(*g->order)))) {
		free(left);
		return ferry__req_fail(r, FERRY_ENOMEM, "out of memory");
	}
	for (size_t i = 0; i < g->n; i++)
		if (!(left[i] = g->in_start[i + 1] - g->in_start[i]))
			g->order[tail++] = i;
	while (head < tail) {
		size_t p = g->order[head++];
		for (size_t k = g->out_start[p]; k < g->out_start[p + 1]; k++)
			if (!--left[g->out[k]])
				g->order[tail++] = g->out[k];
	}
	if (tail < g->n)
		rc = cycle_error(r, g, left);
	free(left);
	return rc;
}

/* A group: {"name", "elements": [local ids or groups]}, depth levels deep at most. */
static int check_group(struct ferry_req *r, const struct graph *g, json_t *grp, int depth)
{
	json_t *el = json_object_get(grp, "elements"), *e;
	const char *k;
	size_t i;

	if (!json_is_object(grp) || !json_is_string(json_object_get(grp, "name")) ||
	    !json_is_array(el))
		return ferry__req_fail(r, FERRY_EINVAL,
				       "a group must be an object with a 'name' and 'elements'");
	json_object_foreach(grp, k, e)
	{
		if (strcmp(k, "name") && strcmp(k, "elements"))
			return ferry__req_fail(r, FERRY_EINVAL,
					       "unknown field '%.64s' in group '%.64s'", k,
					       json_string_value(json_object_get(grp, "name")));
	}
	if (depth > WF_GROUP_DEPTH)
		return ferry__req_fail(r, FERRY_EINVAL, "groups nest deeper than %d levels",
				       WF_GROUP_DEPTH);
	json_array_foreach(el, i, e)
	{
		int rc =
		    json_is_string(e)
			? (find_local(g, json_string_value(e)) < 0
			       ? ferry__req_fail(r, FERRY_EINVAL,
						 "group '%.64s': no job '%.64s' in 'jobs'",
						 json_string_value(json_object_get(grp, "name")),
						 json_string_value(e))
			       : 0)
			: check_group(r, g, e, depth + 1);
		if (rc)
			return rc;
	}
	return 0;
}

static int check_groups(struct ferry_req *r, const struct graph *g)
{
	json_t *groups = json_object_get(r->in, "groups"), *e;
	size_t i;
	int rc;

	if (groups && !json_is_array(groups))
		return ferry__req_fail(r, FERRY_EINVAL, "'groups' must be an array of groups");
	json_array_foreach(groups, i, e)
	{
		if ((rc = check_group(r, g, e, 1)))
			return rc;
	}
	return 0;
}

/*
 * "waiting for jobs 12, 13" of ids[0 .. shown) of the n a job waits for:
 * a message shows a few, so a caller passes at most WAIT_SHOWN.
 */
#define WAIT_SHOWN 32
static void waiting_message(const int64_t *ids, size_t shown, size_t n, char *msg, size_t len)
{
	size_t at = (size_t)snprintf(msg, len, "waiting for %s", n > 1 ? "jobs" : "job");

	for (size_t k = 0; k < n && at < len; k++) {
		if (k == shown || (at > len - 40 && k + 1 < n)) {
			snprintf(msg + at, len - at, " and %zu more", n - k);
			return;
		}
		at += (size_t)snprintf(msg + at, len - at, "%s%lld", k ? ", " : " ",
				       (long long)ids[k]);
	}
}

/* The message of job i of g, waiting for its dependencies. */
static void graph_waiting_message(const struct graph *g, size_t i, char *msg, size_t len)
{
	size_t first = g->in_start[i], n = g->in_start[i + 1] - first, shown = 0;
	int64_t ids[WAIT_SHOWN];

	for (; shown < n && shown < WAIT_SHOWN; shown++)
		ids[shown] = g->id[g->dep[first + shown][0]];
	waiting_message(ids, shown, n, msg, len);
}

/* A barrier's spec: {"barrier": true} and a name at most. */
static int record_barrier(struct ferry_req *r, const struct graph *g, size_t i, struct db_wf_job *w)
{
	json_t *spec = g->spec[i], *v;
	const char *k;
	char *text;
	int rc;

	json_object_foreach(spec, k, v)
	{
		if (strcmp(k, "barrier") && strcmp(k, "name"))
			return ferry__req_fail(
			    r, FERRY_EINVAL,
			    "job '%.64s': a barrier takes no '%.64s' (only 'name')", g->local[i],
			    k);
	}
	if (!json_is_string((v = json_object_get(spec, "name"))))
		return ferry__req_fail(r, FERRY_EINVAL, "job '%.64s': 'name' must be a string",
				       g->local[i]);
	/* bounded as a job's name is (spec.c), also when it is the local id */
	if (json_string_length(v) > FERRY_SPEC_NAME_MAX)
		return ferry__req_fail(r, FERRY_EINVAL,
				       "job '%.64s': 'name' is longer than %d bytes", g->local[i],
				       FERRY_SPEC_NAME_MAX);
	w->name = json_string_value(v);
	w->state = w->waiting ? FERRY_SYSTEM_ON_HOLD : FERRY_QUEUED_ACTIVE;
	w->now = ferry__now();
	if (!(text = ferry__json_dumps(spec, JSON_COMPACT)))
		return ferry__req_fail(r, FERRY_ENOMEM, "out of memory");
	w->spec = text;
	rc = ferry__db_wf_insert_job(ferry__engine_db(r->eng), w, &g->id[i]);
	free(text);
	if (rc)
		return ferry__req_fail(r, rc, "cannot record the job in the database");
	/* released in this transaction, its successors must not start before the commit */
	return ferry__engine_fresh(r->eng, g->id[i])
		   ? ferry__req_fail(r, FERRY_ENOMEM, "out of memory")
		   : 0;
}

static int record_deps(struct ferry_req *r, const struct graph *g, size_t i)
{
	for (size_t k = g->in_start[i]; k < g->in_start[i + 1]; k++) {
		int rc = ferry__db_dep_add(ferry__engine_db(r->eng), g->id[g->dep[k][0]], g->id[i]);
		if (rc)
			return ferry__req_fail(r, rc, "cannot record a dependency in the database");
	}
	return 0;
}

/* The ids of job i's dependencies as a JSON array (malloc'd), or NULL without memory. */
static char *deps_text(const struct graph *g, size_t i)
{
	size_t n = g->in_start[i + 1] - g->in_start[i], cap = 2 + 21 * n, at = 1;
	char *t = malloc(cap);

	if (!t)
		return NULL;
	t[0] = '[';
	for (size_t k = g->in_start[i]; k < g->in_start[i + 1]; k++)
		at += (size_t)snprintf(t + at, cap - at, "%s%lld", at > 1 ? "," : "",
				       (long long)g->id[g->dep[k][0]]);
	snprintf(t + at, cap - at, "]");
	return t;
}

/*
 * A job's working directory taken against the request's "cwd" (the
 * submitter's, which libferry sends): absent, it is cwd; relative, under
 * it; what is not a string is left for the spec's check to name.
 */
static int in_cwd(struct ferry_req *r, json_t *spec)
{
	const char *cwd = json_string_value(json_object_get(r->in, "cwd"));
	json_t *wd = json_object_get(spec, "working_directory");
	char *abs;

	/* what is not a string of a relative path (with a NUL too) the spec's check names */
	if (!cwd || (wd && (!json_is_string(wd) || json_string_value(wd)[0] == '/' ||
			    strlen(json_string_value(wd)) != json_string_length(wd))))
		return 0;
	abs = wd ? ferry__asprintf("%s/%s", cwd, json_string_value(wd)) : strdup(cwd);
	if (!abs || json_object_set_new(spec, "working_directory", json_string(abs))) {
		free(abs);
		return ferry__req_fail(r, FERRY_ENOMEM, "out of memory");
	}
	free(abs);
	return 0;
}

/* Job i of the workflow as w says (its waiting, message, dependencies). */
static int record_spec(struct ferry_req *r, const struct graph *g, size_t i, struct db_wf_job *w,
		       json_t *hours, char **seen)
{
	json_t *spec = g->spec[i], *b = json_object_get(spec, "barrier"), *n;
	json_t *base = json_object_get(r->in, "base_env");
	char msg[700];
	int code = 0, rc;

	if (!json_object_get(spec, "name")) /* a job is known by its local id */
		json_object_set_new(spec, "name", json_string(g->local[i]));
	if (b && !json_is_true(b))
		return ferry__req_fail(r, FERRY_EINVAL, "job '%.64s': 'barrier' must be true",
				       g->local[i]);
	if (b)
		return (rc = record_barrier(r, g, i, w)) ? rc : record_deps(r, g, i);
	if (json_object_get(spec, "submission_key"))
		return ferry__req_fail(
		    r, FERRY_EINVAL,
		    "job '%.64s': a workflow's job takes no 'submission_key' (the "
		    "workflow's 'key' makes its submit replayable)",
		    g->local[i]);
	if (hours && !json_object_get(spec, "disposal_timeout_hours"))
		json_object_set(spec, "disposal_timeout_hours", hours);
	/* one array for all the jobs: checked and stored once (jobenv.c); a job's own wins */
	if (base && !json_object_get(spec, "base_env"))
		json_object_set(spec, "base_env", base);
	if ((rc = in_cwd(r, spec)))
		return rc;
	/* a job after others may read or write where they make */
	if (!(n = ferry__spec_normalise(r->eng, spec, NULL, g->in_start[i + 1] > g->in_start[i],
					seen, msg, sizeof(msg), &code)))
		return ferry__req_fail(r, code, "job '%.64s': %s", g->local[i], msg);
	if ((rc = ferry__req_add_job(r, n, w, &g->id[i])))
		return rc;
	return record_deps(r, g, i);
}

/* Job i of the workflow, its dependencies recorded before it. */
static int record_one(struct ferry_req *r, const struct graph *g, size_t i, int64_t wf,
		      json_t *hours, char **seen)
{
	char msg[200];
	struct db_wf_job w = {.workflow = wf,
			      .hours =
				  json_is_integer(hours) ? (double)json_integer_value(hours) : -1};
	char *deps = NULL;
	int rc;

	w.waiting = (int)(g->in_start[i + 1] - g->in_start[i]);
	graph_waiting_message(g, i, msg, sizeof(msg));
	w.message = w.waiting ? msg : NULL;
	if (w.waiting && !(w.deps = deps = deps_text(g, i)))
		return ferry__req_fail(r, FERRY_ENOMEM, "out of memory");
	rc = record_spec(r, g, i, &w, hours, seen);
	free(deps);
	return rc;
}

/* All or none: the jobs recorded so far leave memory with the savepoint's rollback. */
static void forget_recorded(struct ferry_engine *eng, const struct graph *g)
{
	for (size_t i = 0; i < g->n; i++) {
		struct job *j = g->id[i] ? ferry__engine_job(eng, g->id[i]) : NULL;
		if (j && j->fresh && !j->in_queue && !ferry__job_started(j))
			ferry__engine_job_forget(eng, j);
	}
	ferry__db_rollback_savepoint(ferry__engine_db(eng));
}

/* Its jobs start as any job submitted: the roots queue, barriers with none to wait for end. */
static void workflow_started(struct ferry_engine *eng, const struct graph *g, int64_t wf)
{
	for (size_t k = 0; k < g->n; k++) {
		size_t i = g->order[k];
		struct job *j;
		if (g->in_start[i + 1] > g->in_start[i])
			break; /* the roots come first in the order */
		if (json_object_get(g->spec[i], "barrier"))
			end_unran(eng, g->id[i], wf, FERRY_FINISHED_REGULARLY, "", NULL);
		else if ((j = ferry__engine_job(eng, g->id[i])))
			ferry__engine_job_queue(eng, j);
	}
}

/*
 * Group grp (checked) with each local id replaced by its job's id: the
 * engine keeps no local ids, so that is what names a job to a client
 * once the file is gone (ferry ui draws the groups by them). NULL: ENOMEM.
 */
static json_t *group_by_id(const struct graph *g, json_t *grp)
{
	json_t *els = json_array(), *e,
	       *o = json_pack("{s:O,s:o}", "name", json_object_get(grp, "name"), "elements", els);
	size_t i;

	json_array_foreach(json_object_get(grp, "elements"), i, e)
	{
		json_t *x = json_is_string(e)
				? json_integer(g->id[find_local(g, json_string_value(e))])
				: group_by_id(g, e);
		if (!o || json_array_append_new(els, x)) {
			json_decref(o);
			return NULL;
		}
	}
	return o;
}

/* The request's groups by job id into the workflow's row. 0 or an error. */
static int record_groups(struct ferry_req *r, const struct graph *g, int64_t wf)
{
	json_t *groups = json_object_get(r->in, "groups"), *a = json_array(), *e;
	char *text = NULL;
	size_t i;
	int rc = a ? 0 : FERRY_ENOMEM;

	json_array_foreach(groups, i, e)
	{
		if (!rc && json_array_append_new(a, group_by_id(g, e)))
			rc = FERRY_ENOMEM;
	}
	if (!rc && !(text = ferry__json_dumps(a, JSON_COMPACT)))
		rc = FERRY_ENOMEM;
	if (!rc)
		rc = ferry__db_wf_set_groups(ferry__engine_db(r->eng), wf, text);
	json_decref(a);
	free(text);
	return rc ? ferry__req_fail(r, rc, "cannot record the workflow's groups") : 0;
}

static int record(struct ferry_req *r, struct graph *g, int64_t *wf)
{
	struct ferry_db *db = ferry__engine_db(r->eng);
	json_t *hours = json_object_get(r->in, "disposal_timeout_hours");
	char *seen = NULL;
	int rc;

	if (ferry__db_savepoint(db))
		return ferry__req_fail(r, FERRY_EINTERNAL, "cannot start a transaction");
	rc = ferry__db_wf_insert(db, json_string_value(json_object_get(r->in, "key")),
				 json_string_value(json_object_get(r->in, "name")), ferry__now(),
				 NULL, hours ? (double)json_integer_value(hours) : -1, wf);
	if (rc)
		rc = ferry__req_fail(r, rc, "cannot record the workflow in the database");
	for (size_t k = 0; !rc && k < g->n; k++)
		rc = record_one(r, g, g->order[k], *wf, hours, &seen);
	free(seen);
	if (!rc && json_object_get(r->in, "groups"))
		rc = record_groups(r, g, *wf);
	if (rc) {
		forget_recorded(r->eng, g);
		return rc;
	}
	ferry__db_release(db);
	workflow_started(r->eng, g, *wf);
	return 0;
}

/*
 * name, key, disposal_timeout_hours, base_env and cwd of the workflow,
 * each optional. libferry sends the key it made as "auto_key", beside the
 * file's text as it stands: a key the file has wins.
 */
static int check_top(struct ferry_req *r)
{
	json_t *name = json_object_get(r->in, "name"), *key = json_object_get(r->in, "key");
	json_t *hours = json_object_get(r->in, "disposal_timeout_hours");
	json_t *cwd = json_object_get(r->in, "cwd"), *auto_key = json_object_get(r->in, "auto_key");

	if (auto_key && (!json_is_string(auto_key) || !json_string_length(auto_key) ||
			 json_string_length(auto_key) > FERRY_SPEC_KEY_MAX))
		return ferry__req_fail(r, FERRY_EINVAL,
				       "'auto_key' must be a non-empty string of at most %d bytes",
				       FERRY_SPEC_KEY_MAX);
	if (!key && auto_key) {
		json_object_set(r->in, "key", auto_key);
		key = auto_key;
	}
	/* a NUL byte would cut it (the frame's JSON may hold one): refused */
	if (cwd && (!json_is_string(cwd) || json_string_value(cwd)[0] != '/' ||
		    json_string_length(cwd) >= PATH_MAX ||
		    strlen(json_string_value(cwd)) != json_string_length(cwd)))
		return ferry__req_fail(r, FERRY_EINVAL, "'cwd' must be an absolute path");

	if (name && (!json_is_string(name) || json_string_length(name) > FERRY_SPEC_NAME_MAX))
		return ferry__req_fail(r, FERRY_EINVAL,
				       "'name' must be a string of at most %d bytes",
				       FERRY_SPEC_NAME_MAX);
	if (key && (!json_is_string(key) || !json_string_length(key) ||
		    json_string_length(key) > FERRY_SPEC_KEY_MAX))
		return ferry__req_fail(r, FERRY_EINVAL,
				       "'key' must be a non-empty string of at most %d bytes",
				       FERRY_SPEC_KEY_MAX);
	if (json_object_get(r->in, "base_env") &&
	    !json_is_array(json_object_get(r->in, "base_env")))
		return ferry__req_fail(r, FERRY_EINVAL, "'base_env' must be an array of strings");
	if (hours && (!json_is_integer(hours) || json_integer_value(hours) < 0 ||
		      json_integer_value(hours) > FERRY_SPEC_DISPOSAL_MAX))
		return ferry__req_fail(r, FERRY_EINVAL,
				       "'disposal_timeout_hours' must be an integer from 0 to %d",
				       FERRY_SPEC_DISPOSAL_MAX);
	return 0;
}

int ferry__req_workflow_submit(struct ferry_req *r)
{
	struct graph g = {0};
	int64_t wf = 0;
	int rc = check_top(r); /* first: it takes "auto_key" as "key" */
	const char *key = json_string_value(json_object_get(r->in, "key"));

	/* a retried submit: the first one's workflow, as a job's key gives its first id */
	if (!rc && key && (rc = ferry__db_wf_find_key(ferry__engine_db(r->eng), key, &wf)) != 0) {
		if (rc < 0)
			return ferry__req_fail(r, rc, "database error");
		json_object_set_new(r->out, "id", json_integer(wf));
		return 0;
	}
	if (!rc && !(rc = read_jobs(r, &g)) && !(rc = read_deps(r, &g)) &&
	    !(rc = topo_sort(r, &g)) && !(rc = check_groups(r, &g)))
		rc = record(r, &g, &wf);
	graph_free(&g);
	if (!rc)
		json_object_set_new(r->out, "id", json_integer(wf));
	return rc;
}

/* ---- workflow_status, workflows, wait for a workflow ---- */

/*
 * One overall state of a workflow from its jobs' counts per state, and
 * whether it was stopped: stopped until restarted, unless all its jobs
 * ended done anyway (the stop came as the last ones ended).
 */
static const char *overall(const int64_t c[FERRY_FAILED + 1], int64_t total, int stopped)
{
	int64_t ended = c[FERRY_DONE] + c[FERRY_FAILED];
	int64_t started = c[FERRY_RUNNING] + c[FERRY_SYSTEM_SUSPENDED] + c[FERRY_USER_SUSPENDED] +
			  c[FERRY_USER_SYSTEM_SUSPENDED];

	if (stopped && c[FERRY_DONE] < total)
		return "stopped";
	if (ended == total)
		return c[FERRY_FAILED] ? "done with failures" : "done";
	return ended || started ? "in progress" : "not started";
}

struct wf_out {
	struct ferry_engine *eng;
	json_t *o; /* the workflow object, or the array of them */
	int list;
};

/* The workflow object of docs/protocol.md ("workflow_status"). */
static int wf_object(void *arg, const struct db_wf_row *w)
{
	struct wf_out *out = arg;
	int64_t c[FERRY_FAILED + 1], total = 0;
	json_t *o, *counts = json_object();
	int rc = ferry__db_wf_counts(ferry__engine_db(out->eng), w->id, c);

	if (rc || !counts) {
		json_decref(counts);
		return rc ? rc : FERRY_ENOMEM;
	}
	for (int s = 0; s <= FERRY_FAILED; s++) {
		total += c[s];
		if (c[s])
			json_object_set_new(counts, ferry_status_name((enum ferry_job_status)s),
					    json_integer(c[s]));
	}
	o = json_pack("{s:I,s:s?,s:f,s:s,s:I,s:o}", "id", (json_int_t)w->id, "name", w->name,
		      "submitted_at", w->submitted_at, "status", overall(c, total, w->stopped),
		      "jobs", (json_int_t)total, "counts", counts);
	if (!o)
		return FERRY_ENOMEM;
	if (!out->list)
		json_object_set_new(o, "groups",
				    w->groups ? ferry__json_loads(w->groups) : json_null());
	if (out->list)
		json_array_append_new(out->o, o);
	else
		out->o = o;
	return 0;
}

static int get_wf(struct ferry_req *r, int64_t *wf)
{
	json_t *v = json_object_get(r->in, "workflow");

	if (!json_is_integer(v) || json_integer_value(v) < 1)
		return ferry__req_fail(r, FERRY_EINVAL, "'workflow' must be a workflow id");
	*wf = json_integer_value(v);
	return 0;
}

static int no_workflow(struct ferry_req *r, int64_t wf, int rc)
{
	if (rc == FERRY_ENOJOB)
		return ferry__req_fail(r, FERRY_ENOJOB, "no workflow %lld on resource '%s'",
				       (long long)wf, ferry__engine_resource(r->eng));
	return ferry__req_fail(r, rc, "cannot read workflow %lld", (long long)wf);
}

int ferry__req_workflow_status(struct ferry_req *r)
{
	struct wf_out out = {r->eng, NULL, 0};
	int64_t wf;
	int rc;

	if ((rc = get_wf(r, &wf)))
		return rc;
	if ((rc = ferry__db_wf_get(ferry__engine_db(r->eng), wf, wf_object, &out)))
		return no_workflow(r, wf, rc);
	json_object_set_new(r->out, "workflow", out.o);
	return 0;
}

int ferry__req_workflows(struct ferry_req *r)
{
	struct wf_out out = {r->eng, json_array(), 1};
	int rc;

	if (!out.o)
		return ferry__req_fail(r, FERRY_ENOMEM, "out of memory");
	if ((rc = ferry__db_wf_list(ferry__engine_db(r->eng), wf_object, &out))) {
		json_decref(out.o);
		return ferry__req_fail(r, rc, "cannot read the workflows");
	}
	json_object_set_new(r->out, "workflows", out.o);
	return 0;
}

static int wf_exists(void *arg, const struct db_wf_row *w)
{
	(void)arg;
	(void)w;
	return 0;
}

int ferry__req_wait_workflow(struct ferry_req *r, double deadline)
{
	int64_t wf, left;
	int rc;

	if (json_object_get(r->in, "ids") || json_object_get(r->in, "all"))
		return ferry__req_fail(r, FERRY_EINVAL, "'workflow' excludes 'ids' and 'all'");
	if ((rc = get_wf(r, &wf)))
		return rc;
	if ((rc = ferry__db_wf_get(ferry__engine_db(r->eng), wf, wf_exists, NULL)) ||
	    (rc = ferry__db_wf_left(ferry__engine_db(r->eng), wf, &left)))
		return no_workflow(r, wf, rc);
	rc = ferry__waits_add_workflow(ferry__engine_waits(r->eng), r->client, r->def, wf,
				       (size_t)left, deadline);
	if (rc < 0)
		return ferry__req_fail(r, rc, "out of memory");
	r->deferred = rc;
	return 0;
}

/* ---- workflow_stop, workflow_restart, workflow_dispose ---- */

static int wf_stopped(void *arg, const struct db_wf_row *w)
{
	*(int *)arg = w->stopped;
	return 0;
}

/* The request's workflow, which exists, and whether it is stopped: 0, or an error answered. */
static int existing_wf(struct ferry_req *r, int64_t *wf, int *stopped)
{
	int rc = get_wf(r, wf);

	if (!rc && (rc = ferry__db_wf_get(ferry__engine_db(r->eng), *wf, wf_stopped, stopped)))
		return no_workflow(r, *wf, rc);
	return rc;
}

/*
 * Stop: its jobs not ended are killed, as ferry kill --workflow does (the
 * answer is that selection's), and it is marked stopped until restarted.
 * A job ended by the kill aborts what is downstream of it, so nothing of
 * the workflow starts after the stop; a running job ends when it dies.
 */
int ferry__req_workflow_stop(struct ferry_req *r)
{
	int64_t wf, left;
	int stopped, rc = existing_wf(r, &wf, &stopped);

	if (rc)
		return rc;
	if ((rc = ferry__db_wf_left(ferry__engine_db(r->eng), wf, &left)))
		return ferry__req_fail(r, rc, "cannot read workflow %lld", (long long)wf);
	if (left && (rc = ferry__db_wf_set_stopped(ferry__engine_db(r->eng), wf, 1)))
		return ferry__req_fail(r, rc, "cannot record the stop of workflow %lld",
				       (long long)wf);
	return ferry__req_select(r, "kill");
}

/* ---- the directories of the runs before a restart ---- */

/* jobs/<id> and jobs/<id>.old (malloc'd), or -1 without memory. */
static int aside_paths(struct ferry_engine *eng, int64_t id, char **dir, char **old)
{
	*dir = ferry__asprintf("%s/%lld", ferry__engine_jobs_dir(eng), (long long)id);
	*old = ferry__asprintf("%s/%lld.old", ferry__engine_jobs_dir(eng), (long long)id);
	if (*dir && *old)
		return 0;
	free(*dir);
	free(*old);
	return -1;
}

static int aside_push(struct ferry_wfwork *w, int64_t id)
{
	if (w->naside == w->aside_cap) {
		size_t cap = w->aside_cap ? 2 * w->aside_cap : 64;
		int64_t *v = realloc(w->aside, cap * sizeof(*v));
		if (!v)
			return FERRY_ENOMEM;
		w->aside = v;
		w->aside_cap = cap;
	}
	w->aside[w->naside++] = id;
	return 0;
}

/*
 * A namesake jobs/<id>.old, of a restart of id before (its removal still
 * queued) or of a crash since, goes now, and its entries with it: a tick
 * must not remove the directory this restart sets aside before it
 * committed.
 */
static void aside_forget(struct ferry_engine *eng, int64_t id, const char *old)
{
	struct ferry_wfwork *w = ferry__engine_wf(eng);
	struct stat st;

	if (lstat(old, &st) < 0)
		return;
	ferry__rm_rf(old);
	/* 0, not moved: the places of the entries after stay (aside_undo's from) */
	for (size_t i = 0; i < w->naside; i++)
		if (w->aside[i] == id)
			w->aside[i] = 0;
}

/*
 * Job id's last run's directory (its claim and result, which would make
 * the next run look started or ended already; its default stdout and
 * stderr) renamed jobs/<id>.old, removed once the restart committed
 * (ferry__wf_tick). A rename, not a removal: a restart of 100,000 jobs
 * removing theirs held the loop 20-30 s, and one that does not commit
 * (a rollback, an engine killed) gives the directories back.
 */
static int set_aside(struct ferry_engine *eng, int64_t id, char *why, size_t len)
{
	char *dir, *old;
	int rc = 0;

	if (aside_paths(eng, id, &dir, &old))
		return ferry__fail(why, len, FERRY_ENOMEM, "out of memory");
	aside_forget(eng, id, old);
	if (rename(dir, old) == 0)
		rc = aside_push(ferry__engine_wf(eng), id);
	else if (errno != ENOENT) /* a job that never ran has none */
		rc = ferry__fail(why, len, FERRY_EIO, "cannot rename '%s': %s", dir,
				 strerror(errno));
	if (rc == FERRY_ENOMEM) {
		rename(old, dir);
		rc = ferry__fail(why, len, FERRY_ENOMEM, "out of memory");
	}
	free(dir);
	free(old);
	return rc;
}

/* The directories set aside after the first `from`, back: their restart rolled back. */
static void aside_undo(struct ferry_engine *eng, size_t from)
{
	struct ferry_wfwork *w = ferry__engine_wf(eng);
	char *dir, *old;

	while (w->naside > from) {
		if (!w->aside[--w->naside] || aside_paths(eng, w->aside[w->naside], &dir, &old))
			continue;
		rename(old, dir);
		free(dir);
		free(old);
	}
}

void ferry__wf_committed(struct ferry_engine *eng)
{
	struct ferry_wfwork *w = ferry__engine_wf(eng);

	w->committed = w->naside;
}

int ferry__wf_tick(struct ferry_engine *eng)
{
	/* a few a turn of the loop: it goes on serving meanwhile */
	enum { PER_TICK = 32 };
	struct ferry_wfwork *w = ferry__engine_wf(eng);
	size_t k = 0;
	char *dir, *old;

	for (; k < w->committed && k < PER_TICK; k++) {
		if (!w->aside[k] || aside_paths(eng, w->aside[k], &dir, &old))
			continue; /* gone already, or out of memory: left, not tried for ever */
		ferry__rm_rf(old);
		free(dir);
		free(old);
	}
	if (!k)
		return 0;
	memmove(w->aside, w->aside + k, (w->naside - k) * sizeof(*w->aside));
	w->naside -= k;
	w->committed -= k;
	return w->naside > 0;
}

/* One entry of jobs/ at the engine's start: "<id>.old" back or to remove. */
static void sweep_one(struct ferry_engine *eng, const char *name)
{
	char *end, *dir, *old;
	long long id = strtoll(name, &end, 10);
	enum ferry_job_status st = FERRY_UNDETERMINED;
	struct stat sb;
	int rc;

	if (end == name || strcmp(end, ".old") || id < 1 || aside_paths(eng, id, &dir, &old))
		return;
	rc = ferry__db_status(ferry__engine_db(eng), id, &st);
	if (rc && rc != FERRY_ENOJOB) { /* left as it is: the next start looks again */
		fprintf(stderr, "ferryd: cannot read job %lld to sweep '%s'\n", id, old);
	} else if (!rc && st == FERRY_FAILED && lstat(dir, &sb) < 0 && errno == ENOENT) {
		rename(old, dir); /* still failed, no run since: its restart never committed */
	} else if (aside_push(ferry__engine_wf(eng), id) == 0) {
		ferry__engine_wf(eng)->committed = ferry__engine_wf(eng)->naside;
	}
	free(dir);
	free(old);
}

void ferry__wf_sweep(struct ferry_engine *eng)
{
	DIR *d = opendir(ferry__engine_jobs_dir(eng));
	struct dirent *e;

	while (d && (e = readdir(d)))
		if (strchr(e->d_name, '.') && e->d_name[0] != '.')
			sweep_one(eng, e->d_name);
	if (d)
		closedir(d);
}

/*
 * Job id, ended failed, back to what it was at the submit: waiting for
 * its dependencies not done, or (*root) for none; its last run's
 * directory set aside.
 */
static int rerun_one(struct ferry_req *r, int64_t id, int *root)
{
	struct ferry_db *db = ferry__engine_db(r->eng);
	int64_t *preds = NULL;
	size_t n = 0;
	char msg[200];
	int rc;

	/* an ended job is not in memory (job_remove): a check, not a case */
	if (ferry__engine_job(r->eng, id))
		return ferry__req_fail(r, FERRY_EINTERNAL, "job %lld ended but is still loaded",
				       (long long)id);
	if ((rc = ferry__db_preds_not_done(db, id, &preds, &n)))
		return ferry__req_fail(r, rc, "cannot read the dependencies of job %lld",
				       (long long)id);
	waiting_message(preds, n < WAIT_SHOWN ? n : WAIT_SHOWN, n, msg, sizeof(msg));
	free(preds);
	if ((rc = set_aside(r->eng, id, r->err, sizeof(r->err))))
		return rc;
	if ((rc = ferry__db_rerun_job(db, id, FERRY_SYSTEM_ON_HOLD, (int)n, n ? msg : NULL)))
		return ferry__req_fail(r, rc, "cannot run job %lld again", (long long)id);
	*root = n == 0;
	return 0;
}

/* Every job of ids (n) reset, the roots among them left at the front of ids (*k). */
static int rerun_all(struct ferry_req *r, int64_t wf, const char *key, int64_t *ids, size_t n,
		     size_t *k)
{
	struct ferry_db *db = ferry__engine_db(r->eng);
	size_t from = ferry__engine_wf(r->eng)->naside;
	int rc = 0, root = 0;

	*k = 0;
	if (ferry__db_savepoint(db))
		return ferry__req_fail(r, FERRY_EINTERNAL, "cannot start a transaction");
	for (size_t i = 0; !rc && i < n; i++)
		if (!(rc = rerun_one(r, ids[i], &root)) && root)
			ids[(*k)++] = ids[i]; /* in order */
	/* in the savepoint too: no job reset that is not released */
	if (!rc && ((rc = ferry__db_wf_set_stopped(db, wf, 0)) ||
		    (key && (rc = ferry__db_wf_restart_set(db, wf, key, (int64_t)n)))))
		rc = ferry__req_fail(r, rc, "cannot record the restart of workflow %lld",
				     (long long)wf);
	if (rc) { /* all or none */
		ferry__db_rollback_savepoint(db);
		aside_undo(r->eng, from);
	} else {
		ferry__db_release(db);
	}
	return rc;
}

/*
 * What a restart cannot do yet: run again while jobs of wf are still being
 * killed (a stop's, a kill's), whose ends would abort what it released.
 * A key already answered (a replay after a lost reply) is answered again,
 * rather than run again what failed meanwhile. 0 to go on, 1 answered,
 * or an error.
 */
static int restart_first(struct ferry_req *r, int64_t wf, const char *key)
{
	struct ferry_db *db = ferry__engine_db(r->eng);
	int64_t n = 0;
	int rc;

	if (key && (rc = ferry__db_wf_restart_find(db, wf, key, &n)) != 0) {
		if (rc < 0)
			return ferry__req_fail(r, rc, "cannot read workflow %lld", (long long)wf);
		json_object_set_new(r->out, "restarted", json_integer(n));
		return 1;
	}
	if ((rc = ferry__db_wf_killing(db, wf, &n)))
		return ferry__req_fail(r, rc, "cannot read workflow %lld", (long long)wf);
	if (n)
		return ferry__req_fail(
		    r, FERRY_ESTATE,
		    "workflow %lld is being stopped: %lld of its jobs %s not ended "
		    "yet; restart it once they have",
		    (long long)wf, (long long)n, n == 1 ? "has" : "have");
	return 0;
}

/*
 * Restart (soma-workflow's restart_workflow): the jobs that ended failed
 * (killed and aborted ones too) run again, each once its dependencies are
 * done; the done ones stay. All are reset before any is released: a
 * barrier released ends at once and counts its successors down, which
 * must already wait again.
 */
int ferry__req_workflow_restart(struct ferry_req *r)
{
	struct ferry_db *db = ferry__engine_db(r->eng);
	json_t *kv = json_object_get(r->in, "key");
	const char *key = json_string_value(kv);
	int64_t wf, *ids = NULL;
	size_t n = 0, k = 0;
	int stopped, rc = existing_wf(r, &wf, &stopped);

	if (rc)
		return rc;
	if (kv && (!key || !*key || strlen(key) > FERRY_SPEC_KEY_MAX))
		return ferry__req_fail(r, FERRY_EINVAL,
				       "'key' must be a non-empty string of at most %d bytes",
				       FERRY_SPEC_KEY_MAX);
	if ((rc = restart_first(r, wf, key)))
		return rc < 0 ? rc : 0;
	if ((rc = ferry__db_wf_rerunnable(db, wf, &ids, &n)))
		return ferry__req_fail(r, rc, "cannot read workflow %lld", (long long)wf);
	rc = rerun_all(r, wf, key, ids, n, &k);
	for (size_t i = k; !rc && i-- > 0;) /* each to the queue's head: by id */
		release(r->eng, ids[i], wf, FERRY_SYSTEM_ON_HOLD);
	free(ids);
	if (!rc)
		json_object_set_new(r->out, "restarted", json_integer((json_int_t)n));
	return rc;
}

/*
 * Dispose: every job (as ferry dispose --workflow does; a running one is
 * killed and goes when it ends), then the workflow's row, so that its
 * status is no longer found.
 */
int ferry__req_workflow_dispose(struct ferry_req *r)
{
	int64_t wf;
	int stopped, rc = existing_wf(r, &wf, &stopped);

	if (!rc)
		rc = ferry__req_select(r, NULL);
	/* a job that could not be disposed of keeps its workflow, to be seen */
	if (!rc && !json_integer_value(json_object_get(r->out, "failed")) &&
	    (rc = ferry__db_wf_delete(ferry__engine_db(r->eng), wf)))
		rc = ferry__req_fail(r, rc, "cannot delete workflow %lld", (long long)wf);
	return rc;
}
