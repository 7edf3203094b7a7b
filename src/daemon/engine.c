/*
 * engine.c - the job engine: validates requests, keeps the jobs that have
 * not ended in memory, schedules them on the backend, records every change
 * in the database and answers waiters.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "dispatch.h"
#include "jbytes.h"
#include "proto.h"
#include "util.h"
#include "wait.h"
#include "work.h"
#include "workflow.h"
#include "engine_int.h"
#include "jobenv.h"
#include "trust.h"

#define GC_INTERVAL 60.0

static double poll_interval(const struct ferry_engine *eng);

/* The backend sits in front of a DRMS, which queues and schedules. */
static int drms(const struct ferry_engine *eng)
{
	return (eng->be->flags & FERRY_BE_DRMS) != 0;
}

/* ---- in-memory table of active jobs ---- */

static size_t hslot(struct ferry_engine *eng, int64_t id)
{
	return (size_t)((uint64_t)id * 0x9e3779b97f4a7c15ull >> 20) & (eng->hsize - 1);
}

static int htab_grow(struct ferry_engine *eng)
{
	size_t nsize = eng->hsize ? eng->hsize * 2 : 1024;
	struct job **nt = calloc(nsize, sizeof(*nt));
	struct job **old = eng->htab;
	size_t osize = eng->hsize;

	if (!nt)
		return -1;
	eng->htab = nt;
	eng->hsize = nsize;
	for (size_t i = 0; i < osize; i++) {
		struct job *j = old[i], *next;
		for (; j; j = next) {
			size_t h = hslot(eng, j->id);
			next = j->hnext;
			j->hnext = nt[h];
			nt[h] = j;
		}
	}
	free(old);
	return 0;
}

struct job *ferry__engine_job(struct ferry_engine *eng, int64_t id)
{
	if (!eng->hsize)
		return NULL;
	for (struct job *j = eng->htab[hslot(eng, id)]; j; j = j->hnext)
		if (j->id == id)
			return j;
	return NULL;
}

static int job_add(struct ferry_engine *eng, struct job *j)
{
	size_t h;

	if (eng->nactive + 1 > eng->hsize / 2 && htab_grow(eng) < 0)
		return -1;
	h = hslot(eng, j->id);
	j->hnext = eng->htab[h];
	eng->htab[h] = j;
	eng->nactive++;
	return 0;
}

static void queue_remove(struct ferry_engine *eng, struct job *j)
{
	if (!j->in_queue)
		return;
	if (j->qprev)
		j->qprev->qnext = j->qnext;
	else
		eng->qhead = j->qnext;
	if (j->qnext)
		j->qnext->qprev = j->qprev;
	else
		eng->qtail = j->qprev;
	j->qnext = j->qprev = NULL;
	j->in_queue = 0;
}

static void queue_append(struct ferry_engine *eng, struct job *j)
{
	if (j->in_queue)
		return;
	j->qprev = eng->qtail;
	j->qnext = NULL;
	if (eng->qtail)
		eng->qtail->qnext = j;
	else
		eng->qhead = j;
	eng->qtail = j;
	j->in_queue = 1;
}

/* Puts a job back at the head (a hand that took nothing keeps the order). */
static void queue_push_front(struct ferry_engine *eng, struct job *j)
{
	if (j->in_queue)
		return;
	j->qprev = NULL;
	j->qnext = eng->qhead;
	if (eng->qhead)
		eng->qhead->qprev = j;
	else
		eng->qtail = j;
	eng->qhead = j;
	j->in_queue = 1;
}

/*
 * Whether the job waits in the engine's run queue: queued (local), or,
 * with a DRMS, not handed yet and queued or held (it goes held to the DRMS).
 */
static int wants_queue(const struct ferry_engine *eng, const struct job *j)
{
	if (!drms(eng))
		return j->state == FERRY_QUEUED_ACTIVE;
	return !j->handed && !j->handing &&
	       (j->state == FERRY_QUEUED_ACTIVE || j->state == FERRY_USER_ON_HOLD);
}

static void job_free(struct job *j)
{
	if (!j)
		return;
	json_decref(j->spec);
	free(j->native_id);
	free(j);
}

static void job_set_spec(struct job *j, json_t *spec)
{
	j->spec = spec ? spec : json_object();
	j->cpus = (int)json_integer_value(json_object_get(j->spec, "cpus"));
	if (j->cpus < 1)
		j->cpus = 1;
}

/*
 * Reads the spec of a job kept without it (and its cpus with it): 0, or
 * FERRY_ENOJOB (its row is gone) or another FERRY_E* code, j->spec unset.
 */
static int job_spec_load(struct ferry_engine *eng, struct job *j)
{
	char *text = NULL;
	int ended = 0, rc;
	json_t *spec;

	if (j->spec)
		return 0;
	if ((rc = ferry__db_spec(eng->db, j->id, &text, &ended)))
		return rc;
	spec = text ? ferry__json_loads(text) : NULL;
	free(text);
	if (!json_is_object(spec) || !json_object_size(spec)) {
		json_decref(spec);
		return FERRY_EINTERNAL;
	}
	job_set_spec(j, spec);
	return 0;
}

json_t *ferry__engine_job_spec(struct ferry_engine *eng, struct job *j)
{
	int rc = job_spec_load(eng, j);

	if (rc) {
		fprintf(stderr, "ferryd: job %lld: cannot read its spec from the database: %s\n",
			(long long)j->id,
			rc == FERRY_EINTERNAL ? "not a json object"
					      : ferry__db_why(eng->db, NULL) ?: "database error");
		job_set_spec(j, NULL);
	}
	return j->spec;
}

/* Marks j handing or handed (or neither), keeping the count of the DRMS's jobs. */
static void drms_mark(struct ferry_engine *eng, struct job *j, int handing, int handed)
{
	eng->in_drms += (handing || handed) - (j->handing || j->handed);
	j->handing = handing;
	j->handed = handed;
}

/* A job taking its slots (sign 1) or giving them back (-1): local. */
static void slots_take(struct ferry_engine *eng, const struct job *j, int sign)
{
	/* a cluster's jobs take no slot of the engine's (its counts stay 0) */
	if (drms(eng))
		return;
	eng->used_slots += sign * j->cpus;
	eng->nstarted += sign;
}

static void job_remove(struct ferry_engine *eng, struct job *j)
{
	struct job **p = &eng->htab[hslot(eng, j->id)];

	ferry__waits_job_ended(j); /* a failure is counted from the failure log */
	queue_remove(eng, j);
	drms_mark(eng, j, 0, 0);
	for (; *p; p = &(*p)->hnext) {
		if (*p == j) {
			*p = j->hnext;
			eng->nactive--;
			break;
		}
	}
	job_free(j);
	eng->nfreed++;
}

/* ---- accessors for backends ---- */

const char *ferry__engine_state_dir(struct ferry_engine *eng)
{
	return eng->state_dir;
}

const struct ferry_resource_cfg *ferry__engine_cfg(struct ferry_engine *eng)
{
	return &eng->cfg;
}

const char *ferry__engine_instance(struct ferry_engine *eng)
{
	return eng->instance;
}

const char *ferry__engine_resource(struct ferry_engine *eng)
{
	return eng->resource;
}

int ferry__engine_sync(struct ferry_engine *eng)
{
	int rc;

	ferry__db_need_durable(eng->db);
	rc = ferry__db_commit(eng->db);
	return rc ? rc : ferry__db_begin(eng->db);
}

int ferry__engine_shutting_down(struct ferry_engine *eng)
{
	return eng->shutdown;
}

static char *job_dir(struct ferry_engine *eng, int64_t id)
{
	return ferry__asprintf("%s/%lld", eng->jobs_dir, (long long)id);
}

static void remove_job_files(struct ferry_engine *eng, int64_t id)
{
	char *d = job_dir(eng, id);

	if (d) {
		int rc = ferry__rm_rf(d);
		if (rc < 0)
			fprintf(stderr, "ferryd: cannot remove '%s': %s\n", d, strerror(-rc));
	}
	free(d);
}

/* ---- job lifecycle ---- */

void ferry__engine_job_started(struct ferry_engine *eng, struct job *j, double at)
{
	j->state = FERRY_RUNNING;
	j->started_at = at;
	ferry__db_set_started(eng->db, j->id, at, j->native_id);
}

void ferry__engine_job_native_id(struct ferry_engine *eng, struct job *j, const char *native_id)
{
	char *copy = strdup(native_id);

	if (!copy)
		return;
	free(j->native_id);
	j->native_id = copy;
	ferry__db_set_native_id(eng->db, j->id, native_id);
}

/*
 * A job the user holds on the engine's own scheduler waits in the
 * database only, not as a struct job (docs/architecture.md, "Held jobs
 * wait in the database"): nothing happens to it until a request names it,
 * which takes it back (ferry__engine_job_load). A DRMS gets its held jobs
 * at once (hand_queued): those stay. So does a job something waits on, or
 * one being killed or disposed.
 */
static int parked(const struct ferry_engine *eng, const struct job *j)
{
	return !drms(eng) && j->state == FERRY_USER_ON_HOLD && !j->kill_requested &&
	       !j->dispose_requested && !j->wmarks && !j->in_queue && !j->handing && !j->handed;
}

void ferry__engine_job_ended(struct ferry_engine *eng, struct job *j, const struct job_result *r)
{
	struct job_result res = *r;
	enum ferry_job_status st;
	int dispose = j->dispose_requested;
	int64_t id, wf;
	/* a job kept without its spec leaves its hours to the database */
	json_t *d = json_object_get(j->spec, "disposal_timeout_hours");
	double hours = !j->spec ? -1 : json_is_integer(d) ? (double)json_integer_value(d) : 168;

	if (j->kill_requested &&
	    !(res.exit_status == FERRY_FINISHED_REGULARLY && res.exit_value == 0)) {
		res.exit_status = FERRY_KILLED_BY_USER;
		if (!res.message[0])
			snprintf(res.message, sizeof(res.message), "killed by user");
	}
	st = (res.exit_status == FERRY_FINISHED_REGULARLY && res.exit_value == 0) ? FERRY_DONE
										  : FERRY_FAILED;
	if (res.ended_at <= 0)
		res.ended_at = ferry__now();
	if (ferry__job_started(j))
		slots_take(eng, j, -1);
	ferry__waits_job_ended(j);
	if (j->dispose_requested) {
		ferry__db_delete_job(eng->db, j->id);
		remove_job_files(eng, j->id);
	} else {
		ferry__db_set_ended(eng->db, j->id, st, &res, hours, eng->hour_s);
		ferry__transfer_job_ended(eng, j->id);
	}
	id = j->id;
	wf = j->workflow;
	job_remove(eng, j);
	/* in the same transaction: its successors go on, or end without running */
	ferry__wf_job_ended(eng, id, wf, ferry__wf_how(st, res.exit_status, dispose));
}

static void end_unstarted(struct ferry_engine *eng, struct job *j, enum ferry_exit_status es,
			  const char *msg);

void ferry__engine_job_requeue(struct ferry_engine *eng, struct job *j)
{
	/* a job whose start kills its runner must not kill runners for ever */
	enum { MAX_REQUEUES = 5 };

	if (ferry__job_started(j))
		slots_take(eng, j, -1);
	/* a stop the user asked for stays: it holds the job that never ran */
	j->state = j->state == FERRY_USER_SUSPENDED || j->state == FERRY_USER_SYSTEM_SUSPENDED
		       ? FERRY_USER_ON_HOLD
		       : FERRY_QUEUED_ACTIVE;
	j->started_at = 0;
	free(j->native_id);
	j->native_id = NULL;
	if (j->kill_requested || ++j->requeues > MAX_REQUEUES) {
		end_unstarted(eng, j, j->kill_requested ? FERRY_KILLED_BY_USER : FERRY_ABORTED,
			      j->kill_requested ? "killed by user before it started"
						: "the job runner died each time it got the job");
		return;
	}
	/* a failure is logged; it never ran */
	ferry__db_set_requeued(eng->db, j->id, j->state, j->requeues);
	if (wants_queue(eng, j))
		queue_push_front(eng, j);
}

void ferry__engine_job_handed(struct ferry_engine *eng, struct job *j, const char *native_id)
{
	char err[FERRY_REQ_ERRLEN];

	drms_mark(eng, j, 0, 1);
	queue_remove(eng, j);
	ferry__engine_job_native_id(eng, j, native_id);
	/* killed while it was being handed: the DRMS's copy goes too */
	if (j->kill_requested && ferry__engine_control(eng, NULL, NULL, j, CTL_TERMINATE,
						       FERRY_UNDETERMINED, err, sizeof(err)) < 0)
		fprintf(stderr, "ferryd: job %lld: %s\n", (long long)j->id, err);
}

void ferry__engine_job_refused(struct ferry_engine *eng, struct job *j, const char *msg)
{
	drms_mark(eng, j, 0, j->handed);
	if (j->kill_requested)
		end_unstarted(eng, j, FERRY_KILLED_BY_USER, "killed by user before it started");
	else
		end_unstarted(eng, j, FERRY_ABORTED, msg);
}

void ferry__engine_job_unhanded(struct ferry_engine *eng, struct job *j, const char *msg)
{
	if (j->kill_requested) { /* the DRMS has no copy of it */
		drms_mark(eng, j, 0, j->handed);
		end_unstarted(eng, j, FERRY_KILLED_BY_USER, "killed by user before it started");
		return;
	}
	if (j->handing && msg)
		fprintf(stderr, "ferryd: cannot hand job %lld to %s now: %s\n", (long long)j->id,
			eng->be->name, msg);
	drms_mark(eng, j, 0, j->handed);
	if (wants_queue(eng, j))
		queue_append(eng, j);
	if (msg)
		eng->retry_start = ferry__mono() + 5.0;
}

void ferry__engine_polled(struct ferry_engine *eng)
{
	eng->polling = 0;
	eng->next_poll = ferry__mono() + poll_interval(eng);
}

struct ferry_loop *ferry__engine_loop(struct ferry_engine *eng)
{
	return eng->loop;
}

struct ferry_worker *ferry__engine_worker(struct ferry_engine *eng)
{
	return eng->worker;
}

void *ferry__engine_backend_self(struct ferry_engine *eng)
{
	return eng->be_self;
}

void ferry__engine_job_state(struct ferry_engine *eng, struct job *j, enum ferry_job_status st,
			     double at)
{
	if (st == j->state)
		return;
	if (st == FERRY_RUNNING && !ferry__job_started(j)) {
		j->started_at = at > 0 ? at : ferry__now();
		ferry__db_set_started(eng->db, j->id, j->started_at, j->native_id);
		j->state = st;
		return;
	}
	j->state = st;
	ferry__db_set_state(eng->db, j->id, st);
}

struct job_result ferry__job_result_unran(enum ferry_exit_status es, const char *msg)
{
	struct job_result r = {
	    .exit_status = es,
	    .cpu_user = -1,
	    .cpu_sys = -1,
	    .wall = -1,
	    .max_rss_kb = -1,
	    .ended_at = ferry__now(),
	};

	snprintf(r.message, sizeof(r.message), "%s", msg);
	return r;
}

/* Ends a job that never started (killed or refused before its start). */
static void end_unstarted(struct ferry_engine *eng, struct job *j, enum ferry_exit_status es,
			  const char *msg)
{
	struct job_result r = ferry__job_result_unran(es, msg);

	ferry__engine_job_ended(eng, j, &r);
}

/* ---- for the job requests (requests.c) ---- */

static struct job *job_of_row(struct db_job_row *row, int lazy);
static int fresh_add(struct ferry_engine *eng, int64_t id);

static int load_row(void *arg, struct db_job_row *row)
{
	struct job **out = arg;

	*out = job_of_row(row, 1);
	return *out ? 0 : FERRY_ENOMEM;
}

struct job *ferry__engine_job_load(struct ferry_engine *eng, int64_t id)
{
	struct job *j = ferry__engine_job(eng, id);
	int rc;

	/* a DRMS keeps every job in memory but those waiting for their dependencies */
	if (j)
		return j;
	if ((rc = ferry__db_active_job(eng->db, id, load_row, &j))) {
		if (rc != FERRY_ENOJOB)
			fprintf(stderr, "ferryd: job %lld: cannot read it from the database: %s\n",
				(long long)id, ferry__db_why(eng->db, NULL) ?: "out of memory");
		return NULL;
	}
	if (job_add(eng, j) < 0) {
		job_free(j);
		return NULL;
	}
	/*
	 * Inserted by the open transaction: ids are handed out ascending, and
	 * one rolled back is handed out again, so every id from its first
	 * insert on is of this transaction.
	 */
	j->fresh = eng->nfresh && id >= eng->fresh[0];
	if (j->fresh && fresh_add(eng, id)) { /* its mark is cleared by id at the commit */
		job_remove(eng, j);
		return NULL;
	}
	ferry__waits_job_loaded(&eng->waits, j); /* before anything may end it */
	/* as at the start (recover): one an earlier engine started is the runner's */
	if ((!drms(eng) || (j->native_id && j->native_id[0])) && eng->be->adopt(eng->be_self, j))
		return ferry__engine_job(eng, id);
	if (j->kill_requested) {
		end_unstarted(eng, j, FERRY_KILLED_BY_USER, "killed by user before it started");
		return NULL;
	}
	if (wants_queue(eng, j))
		queue_append(eng, j);
	return j;
}

int ferry__engine_job_status(struct ferry_engine *eng, int64_t id, enum ferry_job_status *st)
{
	struct job *j = ferry__engine_job(eng, id);

	if (j) {
		if (j->dispose_requested)
			return FERRY_ENOJOB;
		if (j->handed && !ferry__job_started(j) && eng->be->refresh)
			eng->be->refresh(eng->be_self, j);
		*st = j->state;
		return 0;
	}
	return ferry__db_status(eng->db, id, st);
}

static void set_state(struct ferry_engine *eng, struct job *j, enum ferry_job_status to)
{
	j->state = to;
	if (wants_queue(eng, j))
		queue_append(eng, j);
	else
		queue_remove(eng, j);
	ferry__db_set_state(eng->db, j->id, to);
}

/* ---- controls on a DRMS, and requests that wait for the backend ---- */

/* What a control that went through changes in the engine. */
static void control_applied(struct ferry_engine *eng, int64_t id, enum backend_ctl ctl,
			    enum ferry_job_status to)
{
	struct job *j = ferry__engine_job(eng, id);

	if (!j)
		return;
	if (to != FERRY_UNDETERMINED) {
		j->state = to;
		ferry__db_set_state(eng->db, j->id, to);
	}
	/* a DRMS never starts a job it cancelled while queued */
	if (ctl == CTL_TERMINATE && !ferry__job_started(j))
		end_unstarted(eng, j, FERRY_KILLED_BY_USER, "killed by user before it started");
}

int ferry__engine_control(struct ferry_engine *eng, struct ferry_client *c,
			  const struct ferry_reqdef *def, struct job *j, enum backend_ctl ctl,
			  enum ferry_job_status to, char *err, size_t errlen)
{
	struct ferry_ctl *t;
	char msg[512] = "";
	int rc;

	if (!eng->be->control)
		return ferry__fail(err, errlen, FERRY_EUNSUPPORTED,
				   "backend '%s' cannot control running jobs", eng->be->name);
	if (!(t = calloc(1, sizeof(*t))))
		return ferry__fail(err, errlen, FERRY_ENOMEM, "out of memory");
	*t = (struct ferry_ctl){.c = c,
				.def = def,
				.id = j->id,
				.ctl = ctl,
				.to = to,
				.with_status = !j->dispose_requested};
	rc = eng->be->control(eng->be_self, j, ctl, t, msg, sizeof(msg));
	if (rc == FERRY__PENDING) {
		t->next = eng->ctls;
		eng->ctls = t;
		return FERRY__PENDING;
	}
	free(t);
	if (rc)
		return ferry__fail(err, errlen, rc, "job %lld: %s", (long long)j->id, msg);
	control_applied(eng, j->id, ctl, to);
	return 0;
}

/* The answer to a control that went through, with the job's status where it has one. */
static json_t *control_answer(struct ferry_engine *eng, const struct ferry_ctl *t)
{
	enum ferry_job_status st;
	json_t *reply = json_pack("{s:b}", "ok", 1);

	if (reply && t->with_status && !ferry__engine_job_status(eng, t->id, &st))
		json_object_set_new(reply, "status", json_string(ferry_status_name(st)));
	return reply;
}

void ferry__engine_control_done(struct ferry_engine *eng, struct ferry_ctl *t, int rc,
				const char *msg)
{
	struct ferry_ctl **p = &eng->ctls;
	char err[FERRY_REQ_ERRLEN];
	json_t *reply;

	while (*p && *p != t)
		p = &(*p)->next;
	if (*p)
		*p = t->next;
	if (!rc)
		control_applied(eng, t->id, t->ctl, t->to);
	if (!t->c) { /* nobody to answer: what changed is committed durably all the same */
		if (rc)
			fprintf(stderr, "ferryd: job %lld: %s\n", (long long)t->id, msg);
		ferry__db_need_durable(eng->db);
		free(t);
		return;
	}
	if (rc) {
		snprintf(err, sizeof(err), "job %lld: %s", (long long)t->id, msg);
		reply = ferry__error_reply(rc, err);
	} else {
		reply = control_answer(eng, t);
	}
	/* ferry__req_answer commits what the answer acknowledges durably first */
	ferry__req_answer(eng, t->c, t->def, reply);
	json_decref(reply);
	free(t);
}

struct ferry_parking *ferry__engine_parking(struct ferry_engine *eng)
{
	return &eng->parked;
}

void ferry__engine_backend_ready(struct ferry_engine *eng)
{
	ferry__dispatch_rerun(eng, &eng->parked);
}

void ferry__engine_client_closed(struct ferry_engine *eng, struct ferry_client *c)
{
	for (struct ferry_ctl *t = eng->ctls; t; t = t->next)
		if (t->c == c)
			t->c = NULL; /* it goes on; nobody hears of it */
	ferry__dispatch_forget(&eng->parked, c);
	ferry__waits_forget(&eng->waits, eng, c);
}

int ferry__engine_wait(struct ferry_engine *eng, struct ferry_client *c,
		       const struct ferry_reqdef *def, int64_t *ids, size_t n, double deadline)
{
	return ferry__waits_add(&eng->waits, eng, c, def, ids, n, deadline);
}

int ferry__engine_wait_all(struct ferry_engine *eng, struct ferry_client *c,
			   const struct ferry_reqdef *def, const struct ferry_wait_all_args *a)
{
	return ferry__waits_add_all(&eng->waits, eng, c, def, a);
}

int ferry__engine_kill_held(struct ferry_engine *eng, int64_t first, int64_t last, size_t *changed)
{
	*changed = 0;
	if (drms(eng))
		return 0;
	return ferry__db_kill_held(eng->db, first, last, ferry__now(), eng->hour_s, changed);
}

void ferry__engine_each_job(struct ferry_engine *eng, void (*fn)(void *arg, struct job *j),
			    void *arg)
{
	for (size_t i = 0; i < eng->hsize; i++)
		for (struct job *j = eng->htab[i]; j; j = j->hnext)
			fn(arg, j);
}

const struct ferry_backend *ferry__engine_backend(struct ferry_engine *eng)
{
	return eng->be;
}

const char *ferry__engine_jobs_dir(struct ferry_engine *eng)
{
	return eng->jobs_dir;
}

void ferry__engine_shutdown(struct ferry_engine *eng)
{
	eng->shutdown = 1;
}

/* Id is of the open transaction (struct job.fresh): 0, or -1 when out of memory. */
static int fresh_add(struct ferry_engine *eng, int64_t id)
{
	if (eng->nfresh == eng->fresh_cap) {
		size_t cap = eng->fresh_cap ? eng->fresh_cap * 2 : 1024;
		int64_t *v = realloc(eng->fresh, cap * sizeof(*v));
		if (!v)
			return -1;
		eng->fresh = v;
		eng->fresh_cap = cap;
	}
	eng->fresh[eng->nfresh++] = id;
	return 0;
}

int ferry__engine_fresh(struct ferry_engine *eng, int64_t id)
{
	return fresh_add(eng, id) ? FERRY_ENOMEM : 0;
}

struct ferry_wfwork *ferry__engine_wf(struct ferry_engine *eng)
{
	return &eng->wf;
}

struct ferry_waits *ferry__engine_waits(struct ferry_engine *eng)
{
	return &eng->waits;
}

int ferry__engine_job_add_new(struct ferry_engine *eng, struct job *j)
{
	if (job_add(eng, j) < 0) {
		job_free(j);
		return -1;
	}
	/*
	 * Not started before the insert is committed: a crash before the
	 * commit would otherwise give this id, and the claim of a job that
	 * ran, to the next job submitted.
	 */
	if (fresh_add(eng, j->id)) {
		job_remove(eng, j);
		return -1;
	}
	j->fresh = 1;
	if (parked(eng, j)) /* kept in fresh: taken back before the commit, it is fresh */
		job_remove(eng, j);
	return 0;
}

int ferry__engine_job_park_new(struct ferry_engine *eng, int64_t id)
{
	if (drms(eng))
		return 0;
	return fresh_add(eng, id) ? -1 : 1;
}

void ferry__engine_job_forget(struct ferry_engine *eng, struct job *j)
{
	job_remove(eng, j);
}

void ferry__engine_job_settle(struct ferry_engine *eng, struct job *j)
{
	if (parked(eng, j))
		job_remove(eng, j);
}

void ferry__engine_job_queue(struct ferry_engine *eng, struct job *j)
{
	if (wants_queue(eng, j))
		queue_append(eng, j);
}

void ferry__engine_job_first(struct ferry_engine *eng, struct job *j)
{
	if (!j->in_queue)
		return;
	queue_remove(eng, j);
	queue_push_front(eng, j);
}

void ferry__engine_job_set_state(struct ferry_engine *eng, struct job *j, enum ferry_job_status to)
{
	set_state(eng, j, to);
}

void ferry__engine_job_end_unstarted(struct ferry_engine *eng, struct job *j,
				     enum ferry_exit_status es, const char *msg)
{
	end_unstarted(eng, j, es, msg);
}

void ferry__engine_remove_job_files(struct ferry_engine *eng, int64_t id)
{
	remove_job_files(eng, id);
}

/* ---- transfers a job waits for (transfer.c) ---- */

const char *ferry__engine_transfer_root(struct ferry_engine *eng)
{
	return eng->tr_root;
}

struct ferry_transfers *ferry__engine_transfers(struct ferry_engine *eng)
{
	return eng->tr;
}

int ferry__engine_transfer_root_fd(struct ferry_engine *eng)
{
	return eng->tr_root_fd;
}

double ferry__engine_hour(struct ferry_engine *eng)
{
	return eng->hour_s;
}

/* ---- scheduling and timers ---- */

/*
 * Reads the spec of the queued job j if it is kept without it: 1, or 0
 * when it cannot be read and j ended, out of the queue, saying why.
 */
static int spec_or_end(struct ferry_engine *eng, struct job *j)
{
	int rc = job_spec_load(eng, j);

	if (!rc)
		return 1;
	queue_remove(eng, j);
	end_unstarted(eng, j, FERRY_ABORTED,
		      rc == FERRY_ENOJOB ? "its record is gone from the database"
					 : "cannot read its spec from the database");
	return 0;
}

/*
 * How many queued jobs the DRMS may be handed now, at most batch: those
 * max_queued leaves room for (0: no bound), so that a big submit does not
 * flood a cluster's queue. The jobs beyond wait in the engine's queue and
 * go as the handed ones end (each end wakes the loop, whose tick hands).
 */
static size_t hand_room(const struct ferry_engine *eng, size_t batch)
{
	int bound = eng->cfg.max_queued;

	if (bound <= 0)
		return batch;
	if (eng->in_drms >= bound)
		return 0;
	return (size_t)(bound - eng->in_drms) < batch ? (size_t)(bound - eng->in_drms) : batch;
}

/*
 * Hands what waits in the queue to the DRMS, a batch at a time. The jobs
 * leave the queue marked handing: the backend reports each one later
 * (backend.h), and a hand that took nothing puts them back in order.
 */
static void hand_queued(struct ferry_engine *eng)
{
	enum { BATCH = 5000 };
	struct job **v = malloc(BATCH * sizeof(*v));
	char msg[512];

	while (v && eng->qhead && !eng->shutdown) {
		size_t n = 0, most = hand_room(eng, BATCH);
		if (!most)
			break;
		/*
		 * Specs first: a job read back from the database (a workflow's,
		 * released) has none. One that cannot be read ends, and its end
		 * may end others in the queue (its descendants): then from the
		 * head again.
		 */
		for (struct job *j = eng->qhead; j && !j->fresh && n < most;)
			if (spec_or_end(eng, j))
				n++, j = j->qnext;
			else
				n = 0, j = eng->qhead;
		n = 0;
		for (struct job *j = eng->qhead; j && !j->fresh && n < most; j = j->qnext)
			v[n++] = j;
		if (!n)
			break;
		for (size_t i = 0; i < n; i++) {
			queue_remove(eng, v[i]);
			drms_mark(eng, v[i], 1, 0);
		}
		msg[0] = '\0';
		if (!eng->be->hand(eng->be_self, v, n, msg, sizeof(msg)))
			continue;
		for (size_t i = n; i-- > 0;) {
			drms_mark(eng, v[i], 0, 0);
			queue_push_front(eng, v[i]);
		}
		fprintf(stderr, "ferryd: cannot hand jobs to %s now: %s\n", eng->be->name, msg);
		eng->retry_start = ferry__mono() + 5.0;
		break;
	}
	free(v);
}

static void start_queued(struct ferry_engine *eng)
{
	int slots = eng->be->slots ? eng->be->slots(eng->be_self) : 0;
	char msg[512];

	if (eng->retry_start > 0 && ferry__mono() < eng->retry_start)
		return;
	eng->retry_start = 0;
	if (drms(eng)) {
		hand_queued(eng);
		return;
	}
	while (eng->qhead && !eng->shutdown) {
		struct job *j = eng->qhead;
		int rc;

		/* first: a full engine costs a tick nothing, however long its queue */
		if (j->fresh || (eng->cfg.max_running > 0 && eng->nstarted >= eng->cfg.max_running))
			break;
		/* read only now: its cpus count from here */
		if (!spec_or_end(eng, j))
			continue;
		if (slots > 0 && eng->used_slots + j->cpus > slots)
			break;
		msg[0] = '\0';
		rc = eng->be->start(eng->be_self, j, msg, sizeof(msg));
		if (rc == FERRY_EAGAIN) { /* e.g. fork failed: try again shortly */
			fprintf(stderr, "ferryd: cannot start job %lld now: %s\n", (long long)j->id,
				msg);
			eng->retry_start = ferry__mono() + 1.0;
			break;
		}
		queue_remove(eng, j);
		if (rc) {
			end_unstarted(eng, j, FERRY_ABORTED, msg);
			continue;
		}
		slots_take(eng, j, 1);
		ferry__engine_job_started(eng, j, ferry__now());
	}
}

/*
 * How long a submit's batch key is kept: a replay comes within the
 * client's retry budget (two minutes unless set otherwise); a week, as a
 * job's record by default.
 */
#define BATCH_KEY_HOURS 168

static void collect_garbage(struct ferry_engine *eng)
{
	int64_t *ids = NULL;
	size_t n = 0;

	eng->next_gc =
	    ferry__mono() + (eng->hour_s / 10 < GC_INTERVAL ? eng->hour_s / 10 : GC_INTERVAL);
	ferry__transfer_gc(eng);
	if (ferry__db_expired(eng->db, ferry__now(), &ids, &n))
		return;
	for (size_t i = 0; i < n; i++) {
		ferry__db_delete_job(eng->db, ids[i]);
		remove_job_files(eng, ids[i]);
	}
	free(ids);
	ferry__db_wf_gc(eng->db);
	ferry__db_batch_gc(eng->db, ferry__now() - BATCH_KEY_HOURS * eng->hour_s);
}

/* Seconds between two polls of the DRMS. */
static double poll_interval(const struct ferry_engine *eng)
{
	return eng->cfg.poll_interval > 0 ? eng->cfg.poll_interval : eng->be->poll_interval;
}

void ferry__engine_tick(struct ferry_engine *eng)
{
	start_queued(eng);
	if (drms(eng) && !eng->polling && ferry__mono() >= eng->next_poll) {
		eng->polling = 1;
		eng->be->poll(eng->be_self);
	}
	ferry__waits_wake(&eng->waits, eng);
	if (ferry__mono() >= eng->next_gc)
		collect_garbage(eng);
	ferry__wf_tick(eng);
}

/*
 * Thousands of jobs freed at once (held, ended, killed) leave their
 * kilobytes in free chunks between long-lived ones (SQLite's page cache,
 * jobs still active): glibc gives back only the heap's top. malloc_trim
 * hands the free pages inside it back too, so that the engine's memory
 * follows what is active (issue 20). Not at once: the pages given back
 * are faulted in again by the next allocations, and a trim after each
 * part of a bulk submit cost a third more CPU a job (11 -> 15 us). A
 * second after the last big release, when the work has paused.
 */
#define TRIM_JOBS    1024
#define TRIM_DELAY_S 1.0

static void trim_heap(struct ferry_engine *eng)
{
	if (eng->nfreed >= TRIM_JOBS) {
		eng->nfreed = 0;
		eng->trim_at = ferry__mono() + TRIM_DELAY_S;
	} else if (eng->trim_at > 0 && ferry__mono() >= eng->trim_at) {
		malloc_trim(0);
		eng->trim_at = 0;
	}
}

int ferry__engine_committed(struct ferry_engine *eng)
{
	trim_heap(eng);
	ferry__wf_committed(eng);
	if (!eng->nfresh)
		return eng->wf.naside > 0;
	for (size_t i = 0; i < eng->nfresh; i++) {
		struct job *j = ferry__engine_job(eng, eng->fresh[i]);
		if (j)
			j->fresh = 0;
	}
	eng->nfresh = 0;
	if (eng->fresh_cap > 65536) { /* a big submit's list is not kept for the next */
		free(eng->fresh);
		eng->fresh = NULL;
		eng->fresh_cap = 0;
	}
	return eng->qhead != NULL || eng->wf.naside > 0;
}

int ferry__engine_timeout_ms(struct ferry_engine *eng)
{
	double next = eng->next_gc, now = ferry__mono();

	next = ferry__waits_next_deadline(&eng->waits, next);
	if (eng->retry_start > 0 && eng->retry_start < next)
		next = eng->retry_start;
	if (eng->trim_at > 0 && eng->trim_at < next)
		next = eng->trim_at;
	if (drms(eng) && !eng->polling && eng->next_poll < next)
		next = eng->next_poll;
	if (next <= now)
		return 0;
	return (int)((next - now) * 1000) + 1;
}

/* ---- creation and recovery ---- */

struct recovered {
	struct job **v;
	size_t n, cap;
	int lazy; /* jobs wait without their spec (ferry__engine_job_spec) */
};

/* A job of the database as the engine tracks it; NULL when out of memory. */
static struct job *job_of_row(struct db_job_row *row, int lazy)
{
	struct job *j = calloc(1, sizeof(*j));

	if (!j)
		return NULL;
	j->id = row->id;
	j->state = row->state;
	j->kill_requested = row->kill_requested;
	j->dispose_requested = row->disposed;
	j->requeues = row->requeues;
	j->workflow = row->workflow;
	j->started_at = row->started_at;
	/*
	 * The state before an undetermined one is not stored: a control acts
	 * on the likeliest (ferry's own holds and suspensions of it are lost
	 * until the DRMS answers), never on "undetermined", which takes none.
	 */
	if (j->state == FERRY_UNDETERMINED)
		j->known = j->started_at > 0 ? FERRY_RUNNING : FERRY_QUEUED_ACTIVE;
	j->native_id = row->native_id;
	row->native_id = NULL;
	if (lazy)
		j->cpus = 1; /* counted once its spec is read */
	else
		job_set_spec(j, row->spec ? ferry__json_loads(row->spec) : NULL);
	return j;
}

static int collect_row(void *arg, struct db_job_row *row)
{
	struct recovered *rec = arg;
	struct job *j;

	if (rec->n == rec->cap) {
		struct job **nv =
		    realloc(rec->v, (rec->cap = rec->cap ? 2 * rec->cap : 256) * sizeof(*nv));
		if (!nv)
			return FERRY_ENOMEM;
		rec->v = nv;
	}
	if (!(j = job_of_row(row, rec->lazy)))
		return FERRY_ENOMEM;
	rec->v[rec->n++] = j;
	return 0;
}

/*
 * Re-attaches every job that had not ended when the last engine stopped.
 * A job that may have been started is offered to the backend first: its
 * claim in the job directory (local) tells whether it ran, so a
 * job is never started twice even if the engine died between starting it
 * and recording that.
 */
static void recover_drms(struct ferry_engine *eng, struct job *j)
{
	if (j->native_id && j->native_id[0] && eng->be->adopt(eng->be_self, j)) {
		drms_mark(eng, j, 0, 1); /* the next poll says where it stands */
		return;
	}
	if (ferry__job_started(j)) { /* the DRMS never had it */
		j->state = FERRY_QUEUED_ACTIVE;
		ferry__db_set_state(eng->db, j->id, j->state);
	}
	if (j->kill_requested)
		end_unstarted(eng, j, FERRY_KILLED_BY_USER, "killed by user before it started");
	else if (wants_queue(eng, j))
		queue_append(eng, j);
}

static int recover(struct ferry_engine *eng)
{
	/* a DRMS is handed held jobs too, in batches of alike specs */
	struct recovered rec = {.lazy = !drms(eng)};
	int rc = ferry__db_active_jobs(eng->db, !drms(eng), collect_row, &rec);
	size_t i;

	for (i = 0; !rc && i < rec.n; i++) {
		struct job *j = rec.v[i];
		enum ferry_job_status was = j->state;

		if (job_add(eng, j) < 0) {
			rc = FERRY_ENOMEM;
			break;
		}
		if (drms(eng)) {
			recover_drms(eng, j);
			continue;
		}
		if (was == FERRY_USER_ON_HOLD || was == FERRY_SYSTEM_ON_HOLD) {
			if (!eng->be->adopt(eng->be_self, j))
				continue;
		} else if (eng->be->adopt(eng->be_self, j)) {
			continue; /* running, or ended and reported */
		} else if (ferry__job_started(j)) {
			j->state = FERRY_QUEUED_ACTIVE; /* never really started */
			ferry__db_set_state(eng->db, j->id, j->state);
		}
		if (j->kill_requested && !ferry__job_started(j))
			end_unstarted(eng, j, FERRY_KILLED_BY_USER,
				      "killed by user before it started");
		else if (j->state == FERRY_QUEUED_ACTIVE)
			queue_append(eng, j);
	}
	for (; i < rec.n; i++)
		job_free(rec.v[i]);
	free(rec.v);
	return rc;
}

void ferry__engine_job_adopted(struct ferry_engine *eng, struct job *j)
{
	ferry__engine_job_spec(eng, j);
	if (!ferry__job_started(j)) {
		j->state = FERRY_RUNNING;
		ferry__db_set_started(
		    eng->db, j->id, j->started_at > 0 ? j->started_at : ferry__now(), j->native_id);
	}
	slots_take(eng, j, 1);
}

/*
 * The job directories: jobs/ in the state directory, or the resource's
 * job_dir, for a cluster whose nodes do not see the state directory
 * (docs/backends.md). Made 0700 and checked as the user's own: jobs read
 * their scripts there, and the engine trusts their marks. 0 or -1.
 */
static int jobs_dir_open(struct ferry_engine *eng, char *err, size_t errlen)
{
	const char *want = eng->cfg.job_dir;
	int rc;

	/*
	 * As configured, not its real path: the scripts and sbatch name it on
	 * the nodes, where a link on the login node may lead elsewhere.
	 */
	eng->jobs_dir = want ? strdup(want) : ferry__asprintf("%s/jobs", eng->state_dir);
	if (!eng->jobs_dir) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	for (size_t n = strlen(eng->jobs_dir); n > 1 && eng->jobs_dir[n - 1] == '/'; n--)
		eng->jobs_dir[n - 1] = '\0'; /* JOBS/ID, not JOBS//ID */
	/* checked before it is made too: no directory is made under another's */
	if (want && ferry__check_own_dir("job directory", want, err, errlen))
		return -1;
	if ((rc = ferry__mkdir_p(eng->jobs_dir, 0700)) < 0) {
		snprintf(err, errlen, "cannot create '%s': %s", eng->jobs_dir, strerror(-rc));
		return -1;
	}
	return want && ferry__check_own_dir("job directory", want, err, errlen) ? -1 : 0;
}

struct ferry_engine *ferry__engine_new(struct ferry_loop *loop, const char *resource,
				       const char *state_dir, const struct ferry_resource_cfg *cfg,
				       int check_db, char *err, size_t errlen)
{
	struct ferry_engine *eng = calloc(1, sizeof(*eng));
	const char *knob = getenv("FERRYD_TEST_HOUR_SECONDS");
	char *dbpath = NULL;

	if (errlen)
		err[0] = '\0';
	if (!eng)
		goto nomem;
	eng->loop = loop;
	eng->tr_root_fd = -1;
	ferry__dispatch_parking_init(&eng->parked);
	if (ferry__resource_supported(cfg, err, errlen) < 0)
		goto fail;
	eng->be = ferry__backend_find(cfg->scheduler ? cfg->scheduler : "local");
	if (!eng->be) {
		snprintf(err, errlen, "scheduler '%s' of resource '%s' has no backend in ferryd",
			 cfg->scheduler, resource);
		goto fail;
	}
	eng->resource = strdup(resource);
	eng->state_dir = strdup(state_dir);
	dbpath = ferry__asprintf("%s/ferry.db", state_dir);
	if (!eng->resource || !eng->state_dir || !dbpath)
		goto nomem;
	eng->cfg = *cfg; /* shallow: main keeps cfg alive for the engine's life */
	if (jobs_dir_open(eng, err, errlen) < 0)
		goto fail;
	eng->hour_s = knob && atof(knob) > 0 ? atof(knob) : 3600;
	if (ferry__transfer_root_open(cfg->transfer_root, state_dir, &eng->tr_root,
				      &eng->tr_root_fd, err, errlen) < 0)
		goto fail;
	if (!(eng->tr = ferry__transfers_new()))
		goto nomem;
	if (htab_grow(eng) < 0)
		goto nomem;
	if (ferry__db_open(dbpath, check_db, &eng->db, err, errlen))
		goto fail;
	free(dbpath);
	dbpath = NULL;
	if (ferry__db_begin(eng->db) ||
	    ferry__instance_load(eng->db, eng->instance, sizeof(eng->instance), err, errlen) ||
	    ferry__engine_claim_jobs_dir(eng, err, errlen) ||
	    ferry__engine_find_lost(eng, err, errlen))
		goto db_fail;
	ferry__wf_sweep(eng);
	if (drms(eng) && !(eng->worker = ferry__worker_new(loop, err, errlen)))
		goto fail;
	if (eng->be->open(eng, &eng->be_self, err, errlen))
		goto fail;
	eng->be_open = 1;
	if (recover(eng) || ferry__db_commit(eng->db))
		goto db_fail;
	eng->next_gc = ferry__mono() + 1.0;
	return eng;
db_fail:
	if (!err[0])
		snprintf(err, errlen, "cannot load the last engine's jobs from its database: %s",
			 ferry__db_why(eng->db, NULL) ?: "database error");
	goto fail;
nomem:
	snprintf(err, errlen, "out of memory");
fail:
	free(dbpath);
	ferry__engine_free(eng);
	return NULL;
}

void ferry__engine_free(struct ferry_engine *eng)
{
	if (!eng)
		return;
	/* what the DRMS answered is still recorded; nobody is answered now */
	for (struct ferry_ctl *t = eng->ctls; t; t = t->next)
		t->c = NULL;
	ferry__dispatch_forget(&eng->parked, NULL);
	/*
	 * What the worker's last items bring back is recorded, in a
	 * transaction of its own: the loop made its last commit already.
	 */
	if (eng->worker && ferry__db_begin(eng->db) == 0) {
		ferry__worker_free(eng, eng->worker);
		ferry__db_need_durable(eng->db);
		ferry__db_commit(eng->db);
	} else {
		ferry__worker_free(eng, eng->worker);
	}
	eng->worker = NULL;
	if (eng->be_open && eng->be->close)
		eng->be->close(eng->be_self);
	eng->be_open = 0;
	ferry__waits_release(&eng->waits); /* before the jobs: it takes its marks off them */
	ferry__wf_work_free(&eng->wf);
	for (size_t i = 0; i < eng->hsize; i++) {
		struct job *j = eng->htab[i], *next;
		for (; j; j = next) {
			next = j->hnext;
			job_free(j);
		}
	}
	free(eng->htab);
	free(eng->fresh);
	if (eng->tr_root_fd >= 0)
		close(eng->tr_root_fd);
	free(eng->tr_root);
	ferry__transfers_free(eng->tr);
	ferry__jobenvs_free(eng->envs);
	ferry__db_close(eng->db);
	free(eng->resource);
	free(eng->state_dir);
	free(eng->jobs_dir);
	free(eng);
}

struct ferry_db *ferry__engine_db(struct ferry_engine *eng)
{
	return eng->db;
}

struct ferry_jobenvs **ferry__engine_jobenvs(struct ferry_engine *eng)
{
	return &eng->envs;
}
