/*
 * requests.c - the handlers of the job requests (docs/protocol.md):
 * submit, status, info, wait, control, dispose, read (jobs: listing.c), and hello,
 * ping and shutdown. dispatch.c has their rows (fields, flags) and calls
 * them; what they change goes through the engine (engine.c).
 */
#include <errno.h>
#include <fcntl.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config.h"
#include "dbrow.h"
#include "dispatch.h"
#include "jbytes.h"
#include "proto.h"

#define MAX_WAIT_IDS 1000000

static int get_id(struct ferry_req *r, const char *key, int64_t *id)
{
	json_t *v = json_object_get(r->in, key);

	if (!v)
		return ferry__req_fail(r, FERRY_EINVAL, "missing field '%s'", key);
	if (!json_is_integer(v) || json_integer_value(v) < 1)
		return ferry__req_fail(r, FERRY_EINVAL, "'%s' must be a positive integer", key);
	*id = json_integer_value(v);
	return 0;
}

static int no_job(struct ferry_req *r, int64_t id)
{
	return ferry__req_fail(r, FERRY_ENOJOB, "no job %lld on resource '%s'", (long long)id,
			       ferry__engine_resource(r->eng));
}

/* The "id" field of the request, naming a job that exists; its status. */
static int get_job_id(struct ferry_req *r, int64_t *id, enum ferry_job_status *st)
{
	int rc = get_id(r, "id", id);

	if (rc)
		return rc;
	rc = ferry__engine_job_status(r->eng, *id, st);
	return rc == FERRY_ENOJOB ? no_job(r, *id) : rc;
}

/*
 * Records which transfers the job names and returns how many of its inputs
 * are not ready yet (the job waits for them), or a negative error.
 */
static int link_transfers(struct ferry_engine *eng, int64_t id, json_t *n)
{
	static const char *const keys[2] = {"referenced_input_files", "referenced_output_files"};
	char err[256];
	int pending = 0;

	for (int role = 0; role < 2; role++) {
		json_t *e;
		size_t i;
		json_array_foreach(json_object_get(n, keys[role]), i, e)
		{
			int64_t tid;
			int ready = 0;
			int rc = ferry__transfer_lookup(eng, json_string_value(e), &tid, &ready,
							err, sizeof(err));
			if (rc < 0)
				return rc;
			if (rc == 0)
				continue;
			if ((rc = ferry__db_ref_add(ferry__engine_db(eng), tid, id, role)))
				return rc;
			pending += role == 0 && !ready;
		}
	}
	return pending;
}

/*
 * The row of a new job of spec n, of workflow wf (NULL: none; its
 * workflow, how many dependencies it waits for and why): 0 and *id, or
 * the request's failure. Its text is written in r->text, the request's
 * for all its jobs: a buffer of each job's own was a large allocation,
 * which made malloc gather every small chunk the last job's trees freed.
 */
static int record_job(struct ferry_req *r, json_t *n, const char *key, int hold,
		      const struct db_wf_job *wf, int64_t *id)
{
	json_t *d = json_object_get(n, "disposal_timeout_hours");
	struct db_wf_job w = wf ? *wf : (struct db_wf_job){0};
	int rc;

	r->text.len = 0;
	if (ferry__jtext_json(&r->text, n))
		return ferry__req_fail(r, FERRY_ENOMEM, "out of memory");
	w.key = key;
	w.env = json_integer_value(json_object_get(n, "base_env")); /* 0: none */
	w.name = json_string_value(json_object_get(n, "name"));
	w.spec = r->text.p;
	w.now = ferry__now();
	if (json_is_integer(d))
		w.hours = (double)json_integer_value(d);
	else if (!wf)
		w.hours = -1;
	/* waiting for its dependencies is system_on_hold, as for its inputs */
	if (w.waiting)
		w.state = hold ? FERRY_USER_SYSTEM_ON_HOLD : FERRY_SYSTEM_ON_HOLD;
	else
		w.state = hold ? FERRY_USER_ON_HOLD : FERRY_QUEUED_ACTIVE;
	if (wf)
		rc = ferry__db_wf_insert_job(ferry__engine_db(r->eng), &w, id);
	else
		rc = ferry__db_insert_job(ferry__engine_db(r->eng), key, w.name, r->text.p, w.env,
					  w.state, w.now, w.hours, id);
	return rc ? ferry__req_fail(r, rc, "cannot record the job in the database") : 0;
}

int ferry__req_add_job(struct ferry_req *r, json_t *n, const struct db_wf_job *wf, int64_t *id)
{
	struct ferry_engine *eng = r->eng;
	const char *key = json_string_value(json_object_get(n, "submission_key"));
	int hold = json_is_true(json_object_get(n, "hold"));
	struct job *j;
	int rc;

	/* a new record: after the replay's answer */
	if ((rc = ferry__req_check_room(r)) || (rc = record_job(r, n, key, hold, wf, id))) {
		json_decref(n);
		return rc;
	}
	if ((rc = link_transfers(eng, *id, n)) < 0) {
		json_decref(n);
		return ferry__req_fail(r, rc, "cannot record the job's transfers");
	}
	/* one waiting for its dependencies lives in the database only (workflow.c) */
	if (wf && wf->waiting) {
		json_decref(n);
		return 0;
	}
	if (hold && !rc && (rc = ferry__engine_job_park_new(eng, *id))) {
		json_decref(n);
		return rc < 0 ? ferry__req_fail(r, FERRY_ENOMEM, "out of memory") : 0;
	}
	if (!(j = calloc(1, sizeof(*j)))) {
		json_decref(n);
		return ferry__req_fail(r, FERRY_ENOMEM, "out of memory");
	}
	j->id = *id;
	j->workflow = wf ? wf->workflow : 0;
	j->state = hold ? FERRY_USER_ON_HOLD : FERRY_QUEUED_ACTIVE;
	if (rc > 0) { /* inputs on their way */
		j->state = hold ? FERRY_USER_SYSTEM_ON_HOLD : FERRY_SYSTEM_ON_HOLD;
		ferry__db_set_state(ferry__engine_db(eng), *id, j->state);
	}
	j->cpus = (int)json_integer_value(json_object_get(n, "cpus"));
	j->spec = n;
	if (ferry__engine_job_add_new(eng, j) < 0)
		return ferry__req_fail(r, FERRY_ENOMEM, "out of memory");
	return 0;
}

/* Job idx of a submit: 0 and *id, *made when it is a new one (not found by its key). */
static int submit_one(struct ferry_req *r, json_t *spec, size_t idx, char **seen, int64_t *id,
		      unsigned char *made)
{
	struct ferry_engine *eng = r->eng;
	json_t *common = json_object_get(r->in, "common");
	char msg[900];
	int code = 0;
	json_t *n = ferry__spec_normalise(eng, spec, common, 0, seen, msg, sizeof(msg), &code);
	const char *key;
	int rc;

	if (!n)
		return ferry__req_fail(r, code, "job %zu: %s", idx, msg);
	key = json_string_value(json_object_get(n, "submission_key"));
	/*
	 * Looked up before the insert, not found by its conflict: few jobs
	 * have a key of their own (a batch has one, submit_keys), and an
	 * insert would end its statement on the partial unique index.
	 */
	if (key && (rc = ferry__db_find_key(ferry__engine_db(eng), key, id)) != 0) {
		json_decref(n);
		return rc < 0 ? ferry__req_fail(r, rc, "database error") : 0;
	}
	*made = 1;
	return ferry__req_add_job(r, n, NULL, id);
}

/*
 * A batch's ids as runs of consecutive ids, "[[first,last],...]": what
 * its key is recorded with, a few bytes for thousands of jobs.
 */
static char *ids_runs(const int64_t *ids, size_t n)
{
	json_t *runs = json_array();
	char *text;

	for (size_t i = 0, k; runs && i < n; i = k) {
		for (k = i + 1; k < n && ids[k] == ids[k - 1] + 1; k++)
			;
		if (json_array_append_new(
			runs, json_pack("[II]", (json_int_t)ids[i], (json_int_t)ids[k - 1]))) {
			json_decref(runs);
			runs = NULL;
		}
	}
	text = runs ? json_dumps(runs, JSON_COMPACT) : NULL;
	json_decref(runs);
	return text;
}

/*
 * A batch whose key is known was submitted: its ids are answered again
 * (libferry's replay after a lost reply). 1 when answered, 0 for a new
 * key, or the request's failure.
 */
static int batch_replay(struct ferry_req *r, const char *key, size_t n)
{
	char *text = NULL;
	json_t *runs, *ids = json_array(), *run;
	size_t i;
	int rc = ferry__db_batch_find(ferry__engine_db(r->eng), key, &text);

	if (rc <= 0) {
		json_decref(ids);
		return rc < 0 ? ferry__req_fail(r, rc, "database error") : 0;
	}
	runs = json_loads(text, 0, NULL);
	free(text);
	json_array_foreach(runs, i, run)
	{
		json_int_t a = json_integer_value(json_array_get(run, 0));
		json_int_t b = json_integer_value(json_array_get(run, 1));
		for (; ids && a <= b && json_array_size(ids) <= n; a++)
			if (json_array_append_new(ids, json_integer(a))) {
				json_decref(ids);
				ids = NULL;
			}
	}
	json_decref(runs);
	if (!ids)
		return ferry__req_fail(r, FERRY_ENOMEM, "out of memory");
	if (json_array_size(ids) != n) {
		json_decref(ids);
		return ferry__req_fail(r, FERRY_EINVAL,
				       "key '%.128s' is of another batch of jobs (or its record "
				       "is unreadable)",
				       key);
	}
	json_object_set_new(r->out, "ids", ids);
	return 1;
}

/*
 * The jobs a submit that failed made, taken back with the savepoint; not
 * one its key found, which a request before it in this iteration may
 * have made (fresh too), and whose row stays.
 */
static void submit_undo(struct ferry_req *r, const int64_t *ids, const unsigned char *made,
			size_t n)
{
	for (size_t k = 0; k < n; k++) {
		struct job *j = made[k] ? ferry__engine_job(r->eng, ids[k]) : NULL;
		if (j && j->fresh && !j->in_queue && !ferry__job_started(j))
			ferry__engine_job_forget(r->eng, j);
	}
	ferry__db_rollback_savepoint(ferry__engine_db(r->eng));
}

/* The jobs of a submit into the open savepoint, and its key: 0 or the failure. */
static int submit_all(struct ferry_req *r, json_t *jobs, const char *key, int64_t *ids,
		      unsigned char *made, json_t *out, size_t *done)
{
	char *seen = NULL, *runs; /* seen: the working directory found to exist */
	json_t *spec;
	size_t i;
	int rc = 0;

	json_array_foreach(jobs, i, spec)
	{
		if ((rc = submit_one(r, spec, i, &seen, &ids[i], &made[i])))
			break;
		json_array_append_new(out, json_integer(ids[i]));
	}
	free(seen);
	*done = i;
	if (rc || !key)
		return rc;
	if (!(runs = ids_runs(ids, i)))
		return ferry__req_fail(r, FERRY_ENOMEM, "out of memory");
	rc = ferry__db_batch_set(ferry__engine_db(r->eng), key, runs, ferry__now());
	free(runs);
	return rc ? ferry__req_fail(r, rc, "cannot record the key of the jobs") : 0;
}

int ferry__req_submit(struct ferry_req *r)
{
	json_t *jobs = json_object_get(r->in, "jobs"), *k = json_object_get(r->in, "key"), *ids;
	const char *key = json_string_value(k);
	size_t i, n;
	int64_t *newids;
	unsigned char *made;
	int rc;

	if (!json_is_array(jobs) || !(n = json_array_size(jobs)))
		return ferry__req_fail(r, FERRY_EINVAL,
				       "'jobs' must be a non-empty array of job specs");
	if (n > FERRY_SUBMIT_MAX)
		return ferry__req_fail(r, FERRY_EINVAL,
				       "%zu jobs in one submit, over the limit of %d", n,
				       FERRY_SUBMIT_MAX);
	if (json_object_get(r->in, "common") && !json_is_object(json_object_get(r->in, "common")))
		return ferry__req_fail(r, FERRY_EINVAL,
				       "'common' must be an object of job spec fields");
	if (k && (!key || !key[0] || strlen(key) > FERRY_SPEC_KEY_MAX))
		return ferry__req_fail(r, FERRY_EINVAL, "'key' must be a string of 1 to %d bytes",
				       FERRY_SPEC_KEY_MAX);
	if (key && (rc = batch_replay(r, key, n)))
		return rc < 0 ? rc : 0;
	/* the ids, then whether this request made each job */
	newids = calloc(n, sizeof(*newids) + 1);
	ids = json_array();
	if (!newids || !ids || ferry__db_savepoint(ferry__engine_db(r->eng))) {
		free(newids);
		json_decref(ids);
		return ferry__req_fail(r, FERRY_EINTERNAL, "cannot start a transaction");
	}
	made = (unsigned char *)(newids + n);
	if ((rc = submit_all(r, jobs, key, newids, made, ids, &i))) {
		submit_undo(r, newids, made, i); /* all or none */
		json_decref(ids);
		free(newids);
		return rc;
	}
	ferry__db_release(ferry__engine_db(r->eng));
	for (i = 0; i < n; i++) {
		struct job *j = ferry__engine_job(r->eng, newids[i]);
		if (j)
			ferry__engine_job_queue(r->eng, j);
	}
	free(newids);
	json_object_set_new(r->out, "ids", ids);
	return 0;
}

int ferry__req_status(struct ferry_req *r)
{
	enum ferry_job_status st;
	int64_t id;
	int rc;

	if ((rc = get_job_id(r, &id, &st)))
		return rc;
	json_object_set_new(r->out, "status", json_string(ferry_status_name(st)));
	return 0;
}

struct info {
	struct ferry_engine *eng;
	struct ferry_jtext t;
};

static int info_row(void *arg, sqlite3_stmt *q)
{
	struct info *i = arg;

	return ferry__db_row_text(ferry__engine_jobs_dir(i->eng),
				  ferry__engine_job(i->eng, sqlite3_column_int64(q, JC_id)), q,
				  &i->t);
}

/* The job object is the one a listing sends (ferry__db_row_text), parsed. */
int ferry__req_info(struct ferry_req *r)
{
	struct info i = {r->eng, {0}};
	json_t *o = NULL;
	int64_t id;
	int rc;

	if ((rc = get_id(r, "id", &id)))
		return rc;
	if (ferry__engine_job(r->eng, id) && ferry__engine_job(r->eng, id)->dispose_requested)
		return no_job(r, id);
	rc = ferry__db_job_row(ferry__engine_db(r->eng), id, info_row, &i);
	if (rc == FERRY_ENOJOB)
		return no_job(r, id);
	if (!rc && !(o = ferry__json_loadb(i.t.p, i.t.len, 0, r->err, sizeof(r->err))))
		rc = FERRY_EINTERNAL;
	ferry__jtext_free(&i.t);
	if (rc)
		return ferry__req_fail(r, rc, "cannot read job %lld", (long long)id);
	json_object_set_new(r->out, "job", o);
	return 0;
}

/*
 * What a wait for all jobs takes by default: every state a job leaves by
 * itself. Jobs the user holds or stopped are left out: they end only when
 * the user acts, so a wait that took them would never return.
 */
#define WAIT_ALL_STATES                                                                            \
	((1u << FERRY_QUEUED_ACTIVE) | (1u << FERRY_SYSTEM_ON_HOLD) | (1u << FERRY_RUNNING) |      \
	 (1u << FERRY_SYSTEM_SUSPENDED))

static int add_state(struct ferry_req *r, json_t *e, unsigned *states)
{
	enum ferry_job_status s;

	if (!json_is_string(e))
		return ferry__req_fail(r, FERRY_EINVAL, "'state' must hold job state names");
	if (ferry_status_from_name(json_string_value(e), &s))
		return ferry__req_fail(r, FERRY_EINVAL, "unknown job state '%s'",
				       json_string_value(e));
	*states |= 1u << s;
	return 0;
}

/* One parser for the "state" of every request that selects jobs by state. */
int ferry__req_states(struct ferry_req *r, unsigned *states)
{
	json_t *v = json_object_get(r->in, "state"), *e;
	size_t i;
	int rc;

	*states = 0;
	if (!v || json_is_null(v))
		return 0;
	if (json_is_string(v))
		return add_state(r, v, states);
	if (!json_is_array(v) || !json_array_size(v))
		return ferry__req_fail(r, FERRY_EINVAL,
				       "'state' must be a job state name or a non-empty array of "
				       "them");
	json_array_foreach(v, i, e)
	{
		if ((rc = add_state(r, e, states)))
			return rc;
	}
	return 0;
}

/* The "state" of a wait for all jobs as a mask of 1u << state. */
static int wait_states(struct ferry_req *r, unsigned *mask)
{
	const unsigned ended = (1u << FERRY_DONE) | (1u << FERRY_FAILED);
	int rc;

	if ((rc = ferry__req_states(r, mask)))
		return rc;
	if (!*mask)
		*mask = WAIT_ALL_STATES;
	if (*mask & ended)
		return ferry__req_fail(
		    r, FERRY_EINVAL, "state '%s' has ended: a wait takes states of jobs not ended",
		    ferry_status_name(*mask & (1u << FERRY_DONE) ? FERRY_DONE : FERRY_FAILED));
	if (*mask & (1u << FERRY_UNDETERMINED))
		return ferry__req_fail(
		    r, FERRY_EINVAL, "a wait cannot take state 'undetermined': no job stays in it");
	return 0;
}

/* A wait's optional non-negative integer field name into *v (else left). */
static int wait_int(struct ferry_req *r, const char *name, const char *what, int64_t *v)
{
	json_t *e = json_object_get(r->in, name);

	if (!e)
		return 0;
	if (!json_is_integer(e) || json_integer_value(e) < 0)
		return ferry__req_fail(r, FERRY_EINVAL, "'%s' must be %s", name, what);
	*v = json_integer_value(e);
	return 0;
}

/* wait with "all": every job not ended now (in "state", up to "upto"). */
static int wait_all(struct ferry_req *r, double deadline)
{
	struct ferry_wait_all_args a = {.upto = -1, .since = -1, .deadline = deadline};
	int rc;

	if (json_object_get(r->in, "ids"))
		return ferry__req_fail(r, FERRY_EINVAL, "'all' and 'ids' exclude each other");
	if ((rc = wait_int(r, "upto", "a job id or 0", &a.upto)) ||
	    (rc = wait_int(r, "failed_since", "a mark of an earlier answer", &a.since)) ||
	    (rc = wait_states(r, &a.states)))
		return rc;
	rc = ferry__engine_wait_all(r->eng, r->client, r->def, &a);
	if (rc < 0)
		return ferry__req_fail(r, rc,
				       rc == FERRY_ENOMEM
					   ? "out of memory"
					   : "cannot read the failure log or the held jobs");
	r->deferred = 1;
	return 0;
}

int ferry__req_wait(struct ferry_req *r)
{
	json_t *ids = json_object_get(r->in, "ids"), *t = json_object_get(r->in, "timeout"), *e;
	json_t *all = json_object_get(r->in, "all");
	enum ferry_job_status st;
	double deadline = -1;
	int64_t *v;
	size_t i;
	int rc;

	if (t && !json_is_number(t))
		return ferry__req_fail(r, FERRY_EINVAL, "'timeout' must be a number");
	if (t && json_number_value(t) >= 0)
		deadline = ferry__mono() + json_number_value(t);
	if (json_object_get(r->in, "workflow")) /* workflow.c */
		return ferry__req_wait_workflow(r, deadline);
	if (all && !json_is_boolean(all))
		return ferry__req_fail(r, FERRY_EINVAL, "'all' must be a boolean");
	if (json_is_true(all))
		return wait_all(r, deadline);
	if (json_object_get(r->in, "state") || json_object_get(r->in, "upto") ||
	    json_object_get(r->in, "failed_since"))
		return ferry__req_fail(r, FERRY_EINVAL,
				       "'state', 'upto' and 'failed_since' go with 'all'");
	if (!json_is_array(ids) || json_array_size(ids) > MAX_WAIT_IDS)
		return ferry__req_fail(r, FERRY_EINVAL, "'ids' must be an array of ids");
	if (!(v = calloc(json_array_size(ids) + 1, sizeof(*v))))
		return ferry__req_fail(r, FERRY_ENOMEM, "out of memory");
	json_array_foreach(ids, i, e)
	{
		if (!json_is_integer(e) || json_integer_value(e) < 1) {
			free(v);
			return ferry__req_fail(r, FERRY_EINVAL, "'ids'[%zu] is not a job id", i);
		}
		v[i] = json_integer_value(e);
		if ((rc = ferry__engine_job_status(r->eng, v[i], &st))) {
			int64_t id = v[i];
			free(v);
			return rc == FERRY_ENOJOB ? no_job(r, id) : rc;
		}
	}
	/* all ended: the reply is now; else the tick in which the last one ends gives it */
	rc = ferry__engine_wait(r->eng, r->client, r->def, v, json_array_size(ids), deadline);
	if (rc < 0)
		return ferry__req_fail(r, rc, "out of memory");
	r->deferred = rc;
	return 0;
}

/*
 * Through the backend; one that must ask its DRMS answers later
 * (ferry__engine_control_done), and so does the request then. In a
 * selection (sel) nobody waits for it: the DRMS's answer is applied and
 * committed when it comes, and the request answers at once.
 */
static int control_started(struct ferry_req *r, struct job *j, enum backend_ctl ctl,
			   enum ferry_job_status to, int sel)
{
	int rc = ferry__engine_control(r->eng, sel ? NULL : r->client, sel ? NULL : r->def, j, ctl,
				       to, r->err, sizeof(r->err));

	if (rc == FERRY__PENDING) {
		r->deferred = !sel;
		return 0;
	}
	return rc;
}

/* What a control on one job returns when it had nothing to change. */
#define ONE_NOOP 2 /* not FERRY__PENDING */

static int ended_error(struct ferry_req *r, int64_t id, const char *action)
{
	return ferry__req_fail(r, FERRY_ESTATE, "job %lld has ended; cannot %s it", (long long)id,
			       action);
}

static int do_kill(struct ferry_req *r, struct job *j, int sel)
{
	j->kill_requested = 1;
	/*
	 * A job that never went anywhere ends now, in this transaction: its
	 * end is the record (a kill flag written first cost a second write
	 * of its row, a third of a kill by selection's time).
	 */
	if (!j->handing && !ferry__job_started(j) && !j->handed) {
		ferry__engine_job_end_unstarted(r->eng, j, FERRY_KILLED_BY_USER,
						"killed by user before it started");
		return 0;
	}
	ferry__db_set_kill(ferry__engine_db(r->eng), j->id, j->dispose_requested);
	/*
	 * A job being handed stays until the DRMS answered: then the engine
	 * cancels what the DRMS made of it (ferry__engine_job_handed), or
	 * ends it if the DRMS has none. The kill is recorded durably now, so
	 * an engine that dies meanwhile cancels it when it re-attaches it.
	 */
	if (j->handing)
		return 0;
	return control_started(r, j, CTL_TERMINATE, FERRY_UNDETERMINED, sel);
}

/* hold, or stop (which also suspends a running job) */
static int hold_one(struct ferry_req *r, struct job *j, int stop, int sel)
{
	/* one the DRMS cannot tell of now: as it last told (the DRMS says if that is wrong) */
	enum ferry_job_status st = ferry__job_known(j);

	if (j->handed && st == FERRY_QUEUED_ACTIVE)
		return control_started(r, j, CTL_HOLD, FERRY_USER_ON_HOLD, sel);
	if (j->handed && st == FERRY_SYSTEM_ON_HOLD) /* the DRMS holds it */
		return control_started(r, j, CTL_HOLD, FERRY_USER_SYSTEM_ON_HOLD, sel);
	if (j->state == FERRY_QUEUED_ACTIVE)
		ferry__engine_job_set_state(r->eng, j, FERRY_USER_ON_HOLD);
	else if (j->state == FERRY_SYSTEM_ON_HOLD) /* also waiting for its inputs */
		ferry__engine_job_set_state(r->eng, j, FERRY_USER_SYSTEM_ON_HOLD);
	else if (st == FERRY_RUNNING && stop)
		return control_started(r, j, CTL_SUSPEND, FERRY_USER_SUSPENDED, sel);
	else if (ferry__job_started(j) && !stop)
		return ferry__req_fail(
		    r, FERRY_ESTATE,
		    "job %lld has started; hold applies before the start (use stop)",
		    (long long)j->id);
	else
		return ONE_NOOP;
	return 0;
}

/* release, or restart (which also resumes a stopped job) */
static int release_one(struct ferry_req *r, struct job *j, int restart, int sel)
{
	enum ferry_job_status st = ferry__job_known(j); /* as in hold_one */

	if (j->handed && st == FERRY_USER_ON_HOLD)
		return control_started(r, j, CTL_RELEASE, FERRY_QUEUED_ACTIVE, sel);
	if (j->handed && st == FERRY_USER_SYSTEM_ON_HOLD)
		return control_started(r, j, CTL_RELEASE, FERRY_SYSTEM_ON_HOLD, sel);
	if (j->state == FERRY_USER_ON_HOLD)
		ferry__engine_job_set_state(r->eng, j, FERRY_QUEUED_ACTIVE);
	else if (j->state == FERRY_USER_SYSTEM_ON_HOLD)
		ferry__engine_job_set_state(r->eng, j, FERRY_SYSTEM_ON_HOLD);
	else if (st == FERRY_USER_SUSPENDED && restart)
		return control_started(r, j, CTL_RESUME, FERRY_RUNNING, sel);
	else if (ferry__job_started(j) && !restart)
		return ferry__req_fail(r, FERRY_ESTATE,
				       "job %lld has started; release applies to held jobs",
				       (long long)j->id);
	else
		return ONE_NOOP;
	return 0;
}

/*
 * action on job id, which exists: 0 (changed, or asked of the DRMS),
 * ONE_NOOP, FERRY__PENDING (one job being handed, outside a selection: ask
 * again once the DRMS placed it), or a FERRY_E* code with r->err set.
 */
static int control_one(struct ferry_req *r, int64_t id, const char *action, int sel)
{
	struct job *j = ferry__engine_job_load(r->eng, id);
	int rc;

	if (!j) /* ended */
		return strcmp(action, "kill") ? ended_error(r, id, action) : ONE_NOOP;
	if (j->handing && strcmp(action, "kill")) {
		if (!sel) /* where the DRMS puts it decides: asked again then */
			return FERRY__PENDING;
		return ferry__req_fail(r, FERRY_ESTATE,
				       "job %lld is being handed to the cluster; try again",
				       (long long)id);
	}
	if (!strcmp(action, "kill"))
		return do_kill(r, j, sel);
	if (!strcmp(action, "stop") || !strcmp(action, "hold"))
		rc = hold_one(r, j, !strcmp(action, "stop"), sel);
	else
		rc = release_one(r, j, !strcmp(action, "restart"), sel);
	/* held now, or named while held: the job waits in the database again */
	ferry__engine_job_settle(r->eng, j);
	return rc;
}

/* dispose of job id, which exists: 0, or a FERRY_E* code with r->err set */
static int dispose_one(struct ferry_req *r, int64_t id, int sel)
{
	struct job *j = ferry__engine_job_load(r->eng, id);
	int rc;

	if (j) {
		j->dispose_requested = 1;
		return do_kill(r, j, sel);
	}
	if ((rc = ferry__db_delete_job(ferry__engine_db(r->eng), id)))
		return ferry__req_fail(r, rc, "cannot delete job %lld", (long long)id);
	ferry__engine_remove_job_files(r->eng, id);
	return 0;
}

static int is_selection(struct ferry_req *r)
{
	return json_object_get(r->in, "all") || json_object_get(r->in, "state") ||
	       json_object_get(r->in, "name") || json_object_get(r->in, "ids") ||
	       json_object_get(r->in, "workflow");
}

int ferry__req_control(struct ferry_req *r)
{
	const char *action = json_string_value(json_object_get(r->in, "action"));
	enum ferry_job_status st;
	int64_t id;
	int rc;

	if (!action)
		return ferry__req_fail(r, FERRY_EINVAL, "missing field 'action'");
	if (strcmp(action, "stop") && strcmp(action, "restart") && strcmp(action, "hold") &&
	    strcmp(action, "release") && strcmp(action, "kill"))
		return ferry__req_fail(r, FERRY_EINVAL,
				       "unknown action '%s' (stop, restart, hold, release, kill)",
				       action);
	if (is_selection(r))
		return ferry__req_select(r, action);
	if ((rc = get_job_id(r, &id, &st)))
		return rc;
	rc = control_one(r, id, action, 0);
	if ((rc && rc != ONE_NOOP) || r->deferred)
		return rc;
	if ((rc = ferry__engine_job_status(r->eng, id, &st)) == 0)
		json_object_set_new(r->out, "status", json_string(ferry_status_name(st)));
	return 0;
}

int ferry__req_dispose(struct ferry_req *r)
{
	enum ferry_job_status st;
	int64_t id;
	int rc;

	if (is_selection(r))
		return ferry__req_select(r, NULL);
	if ((rc = get_job_id(r, &id, &st)))
		return rc;
	return dispose_one(r, id, 0);
}

int ferry__req_apply(struct ferry_req *r, int64_t id, const char *action)
{
	int rc = action ? control_one(r, id, action, 1) : dispose_one(r, id, 1);

	return rc == FERRY__PENDING ? FERRY_EINTERNAL : rc;
}

/* The file of a job's stream into *path (malloc'd), and whether the job ended. */
static int output_path(struct ferry_req *r, int64_t id, const char *stream, char **path, int *ended)
{
	char *text = NULL;
	json_t *spec, *p;
	int rc;

	if ((rc = ferry__db_spec(ferry__engine_db(r->eng), id, &text, ended)))
		return rc == FERRY_ENOJOB ? no_job(r, id) : rc;
	spec = ferry__json_loads(text);
	free(text);
	if (!spec)
		return ferry__req_fail(r, FERRY_EINTERNAL, "corrupt spec of job %lld",
				       (long long)id);
	if (!strcmp(stream, "stderr") && json_is_true(json_object_get(spec, "join_stderrout"))) {
		json_decref(spec);
		return ferry__req_fail(r, FERRY_EINVAL, "job %lld has stderr joined to stdout",
				       (long long)id);
	}
	p = json_object_get(spec, !strcmp(stream, "stdout") ? "stdout_path" : "stderr_path");
	*path = json_is_string(p) ? strdup(json_string_value(p))
				  : ferry__asprintf("%s/%lld/%s", ferry__engine_jobs_dir(r->eng),
						    (long long)id, stream);
	json_decref(spec);
	return *path ? 0 : ferry__req_fail(r, FERRY_ENOMEM, "out of memory");
}

/*
 * "path": where the file is, for a client on this host that reads it
 * itself (as fast as cat): its path, and its device and inode as the
 * engine sees them, so that a client that sees another file there (in
 * another mount namespace) knows it and reads through the engine.
 */
static int locate(struct ferry_req *r, const char *path, int fd)
{
	struct stat st;

	if (fd < 0)
		return 0; /* nothing written yet: no file */
	if (fstat(fd, &st) < 0)
		return ferry__req_fail(r, FERRY_EIO, "cannot read '%s': %s", path, strerror(errno));
	json_object_set_new(r->out, "path", ferry__json_bytes(path));
	json_object_set_new(r->out, "dev", json_integer((json_int_t)st.st_dev));
	json_object_set_new(r->out, "ino", json_integer((json_int_t)st.st_ino));
	return 0;
}

int ferry__req_read(struct ferry_req *r)
{
	const char *stream = json_string_value(json_object_get(r->in, "stream"));
	json_t *where = json_object_get(r->in, "path");
	json_int_t off, max;
	char *path = NULL;
	int ended = 0, rc, fd;
	int64_t id;
	ssize_t n = 0;

	if ((rc = get_id(r, "id", &id)) ||
	    (rc = ferry__opt_int(r->in, "offset", 0, INT64_MAX, 0, &off, r->err, sizeof(r->err))) ||
	    (rc = ferry__opt_int(r->in, "max", 0, FERRY_READ_MAX, 65536, &max, r->err,
				 sizeof(r->err))))
		return rc;
	if (!stream || (strcmp(stream, "stdout") && strcmp(stream, "stderr")))
		return ferry__req_fail(r, FERRY_EINVAL,
				       "'stream' must be \"stdout\" or \"stderr\"");
	if (where && !json_is_boolean(where))
		return ferry__req_fail(r, FERRY_EINVAL, "'path' must be a boolean");
	if ((rc = output_path(r, id, stream, &path, &ended)))
		return rc;
	if (!(r->bin.p = malloc(max ? (size_t)max : 1))) {
		free(path);
		return ferry__req_fail(r, FERRY_ENOMEM, "out of memory");
	}
	/* a job's output may be a terminal: not the engine's (a session leader; SIGHUP) */
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);
	if (fd < 0 && errno != ENOENT)
		rc = ferry__req_fail(r, FERRY_EIO, "cannot open '%s': %s", path, strerror(errno));
	else if (fd >= 0 && (n = pread(fd, r->bin.p, (size_t)max, off)) < 0)
		rc = ferry__req_fail(r, FERRY_EIO, "cannot read '%s': %s", path, strerror(errno));
	else if (json_is_true(where))
		rc = locate(r, path, fd);
	if (fd >= 0)
		close(fd);
	free(path);
	if (rc)
		return rc;
	r->bin.len = (size_t)n;
	json_object_set_new(r->out, "size", json_integer(n));
	json_object_set_new(r->out, "ended", json_boolean(ended));
	return 0;
}

/* A remote client says which engine settings its configuration gives. */
static int check_expect(struct ferry_req *r)
{
	json_t *e = json_object_get(r->in, "expect"), *v;
	const char *sets[16];
	size_t i, n = 0;

	if (!e)
		return 0;
	if (!json_is_array(e) || json_array_size(e) >= FERRY_ARRAY_SIZE(sets)) {
		return ferry__req_fail(
		    r, FERRY_EINVAL,
		    "field 'expect' must be an array of at most %zu \"KEY=VALUE\" strings",
		    FERRY_ARRAY_SIZE(sets) - 1);
	}
	json_array_foreach(e, i, v)
	{
		if (!json_is_string(v)) {
			return ferry__req_fail(r, FERRY_EINVAL, "field 'expect' must hold strings");
		}
		sets[n++] = json_string_value(v);
	}
	sets[n] = NULL;
	if (ferry__cfg_check_settings(ferry__engine_cfg(r->eng), sets, r->err, sizeof(r->err)) < 0)
		return FERRY_ECONFIG;
	return 0;
}

/*
 * The home directory of the engine's jobs (they inherit its environment):
 * a DRMAA client's $drmaa_hd_ph$ of a remote resource is that host's.
 */
static void set_home(json_t *out)
{
	const char *home = getenv("HOME");
	struct passwd *pw;

	if (!home || home[0] != '/') {
		pw = getpwuid(getuid());
		home = pw && pw->pw_dir && pw->pw_dir[0] == '/' ? pw->pw_dir : NULL;
	}
	if (home)
		json_object_set_new(out, "home", ferry__json_bytes(home));
}

int ferry__req_hello(struct ferry_req *r)
{
	json_t *v = json_object_get(r->in, "version");

	if (!json_is_integer(v) || json_integer_value(v) != FERRY_PROTO_VERSION)
		return ferry__req_fail(
		    r, FERRY_EPROTO,
		    "client protocol version %lld is not supported (engine speaks %d)",
		    json_is_integer(v) ? (long long)json_integer_value(v) : -1LL,
		    FERRY_PROTO_VERSION);
	int rc = check_expect(r);
	if (rc)
		return rc;
	json_object_set_new(r->out, "protocol", json_integer(FERRY_PROTO_VERSION));
	json_object_set_new(r->out, "engine", json_string(FERRY_VERSION));
	json_object_set_new(r->out, "resource", json_string(ferry__engine_resource(r->eng)));
	json_object_set_new(r->out, "backend", json_string(ferry__engine_backend(r->eng)->name));
	json_object_set_new(r->out, "pid", json_integer(getpid()));
	set_home(r->out);
	json_t *w = ferry__engine_warnings(r->eng);
	if (w)
		json_object_set_new(r->out, "warnings", w);
	return 0;
}

int ferry__req_ping(struct ferry_req *r)
{
	return 0;
}

int ferry__req_shutdown(struct ferry_req *r)
{
	ferry__engine_shutdown(r->eng);
	return 0;
}
