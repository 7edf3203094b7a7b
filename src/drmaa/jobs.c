/*
 * jobs.c - what DRMAA does with submitted jobs: drmaa_control(),
 * drmaa_job_ps(), drmaa_synchronize(), drmaa_wait() and the functions that
 * read the status drmaa_wait() gives.
 */
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "internal.h"

/*
 * The stat of drmaa_wait(): a wait(2) status (exit value << 8, or the
 * signal in the low 7 bits) with two bits of ours above it for the ends
 * wait(2) has no word for.
 */
#define STAT_ABORTED 0x10000 /* ended without running (killed or aborted before it started) */
#define STAT_UNCLEAR 0x20000 /* ended, but how is not known */

/* A blocking wait is cut into slices this long, so that drmaa_exit() is never held longer. */
#define WAIT_SLICE_S 1.0

static const int states[] = {
    [FERRY_UNDETERMINED] = DRMAA_PS_UNDETERMINED,
    [FERRY_QUEUED_ACTIVE] = DRMAA_PS_QUEUED_ACTIVE,
    [FERRY_SYSTEM_ON_HOLD] = DRMAA_PS_SYSTEM_ON_HOLD,
    [FERRY_USER_ON_HOLD] = DRMAA_PS_USER_ON_HOLD,
    [FERRY_USER_SYSTEM_ON_HOLD] = DRMAA_PS_USER_SYSTEM_ON_HOLD,
    [FERRY_RUNNING] = DRMAA_PS_RUNNING,
    [FERRY_SYSTEM_SUSPENDED] = DRMAA_PS_SYSTEM_SUSPENDED,
    [FERRY_USER_SUSPENDED] = DRMAA_PS_USER_SUSPENDED,
    [FERRY_USER_SYSTEM_SUSPENDED] = DRMAA_PS_USER_SYSTEM_SUSPENDED,
    [FERRY_DONE] = DRMAA_PS_DONE,
    [FERRY_FAILED] = DRMAA_PS_FAILED,
};

/*
 * The outputs of an ended job that are ferry transfers (drmaa_transfer_files
 * registered them) go to the client paths they were registered from, as
 * `ferry retrieve` puts them. A job that never started produced none.
 */
static int retrieve_outputs(ferry_conn *conn, const struct ferry_job_info *j, char *diag,
			    size_t len)
{
	for (char **p = j->referenced_output_files; p && *p; p++) {
		int rc = ferry_retrieve_file(conn, *p);
		if (rc == FERRY_ESTATE && j->started_at <= 0)
			continue;
		if (rc)
			return drmaa__diag(diag, len, drmaa__ferry_error(conn, rc, NULL, 0),
					   "cannot retrieve the output '%s' of job %" PRId64 ": %s",
					   *p, j->id, ferry_errmsg(conn));
	}
	return 0;
}

/*
 * The outputs of job id, ended, retrieved once in the session: by the
 * first call that sees the end (drmaa_wait, drmaa_synchronize, and for
 * the session's own jobs drmaa_job_ps), so that a client that polls the
 * state and never waits finds them too. j: the job's information if the caller has it.
 * A job disposed of from outside has nothing left to fetch. The caller
 * holds the session's connection, so that two threads do not both fetch.
 */
static int fetch_outputs(ferry_conn *conn, ferry_job_id id, const struct ferry_job_info *j,
			 char *diag, size_t len)
{
	struct ferry_job_info *own = NULL;
	int rc;

	if (!drmaa__may_have_outputs(id))
		return 0;
	if (!j) {
		rc = ferry_job_info(conn, id, &own);
		if (rc == FERRY_ENOJOB)
			return 0;
		if (rc)
			return drmaa__ferry_error(conn, rc, diag, len);
		j = own;
	}
	rc = retrieve_outputs(conn, j, diag, len);
	if (!rc && drmaa__retrieved(id) < 0)
		rc = drmaa__diag(diag, len, DRMAA_ERRNO_NO_MEMORY, "out of memory");
	ferry_job_info_free(own);
	return rc;
}

int drmaa_job_ps(const char *job_id, int *remote_ps, char *error_diagnosis, size_t error_diag_len)
{
	enum ferry_job_status st;
	ferry_job_id id;
	ferry_conn *conn;
	int rc;

	if (!remote_ps)
		return drmaa__diag(error_diagnosis, error_diag_len, DRMAA_ERRNO_INVALID_ARGUMENT,
				   "remote_ps must not be NULL");
	rc = drmaa__enter(&conn, error_diagnosis, error_diag_len);
	if (rc)
		return rc;
	rc = drmaa__parse_id(job_id, &id, error_diagnosis, error_diag_len);
	if (!rc) {
		rc = ferry_status(conn, id, &st);
		rc = rc ? drmaa__ferry_error(conn, rc, error_diagnosis, error_diag_len) : 0;
	}
	/* A job of another session may not be DRMAA's: a query fetches no files of it. */
	if (!rc && (st == FERRY_DONE || st == FERRY_FAILED) && drmaa__staged(id))
		rc = fetch_outputs(conn, id, NULL, error_diagnosis, error_diag_len);
	drmaa__leave();
	if (!rc)
		*remote_ps = (unsigned)st < sizeof(states) / sizeof(states[0])
				 ? states[st]
				 : DRMAA_PS_UNDETERMINED;
	return rc;
}

/* The code a refused control answers: the action's "inconsistent state" one where it has one. */
static int control_code(int action, int rc)
{
	static const int inconsistent[] = {
	    [DRMAA_CONTROL_SUSPEND] = DRMAA_ERRNO_SUSPEND_INCONSISTENT_STATE,
	    [DRMAA_CONTROL_RESUME] = DRMAA_ERRNO_RESUME_INCONSISTENT_STATE,
	    [DRMAA_CONTROL_HOLD] = DRMAA_ERRNO_HOLD_INCONSISTENT_STATE,
	    [DRMAA_CONTROL_RELEASE] = DRMAA_ERRNO_RELEASE_INCONSISTENT_STATE,
	    [DRMAA_CONTROL_TERMINATE] = DRMAA_ERRNO_DENIED_BY_DRM,
	};
	return rc == FERRY_ESTATE ? inconsistent[action] : 0;
}

/*
 * Suspend, resume and release act on running, suspended and held jobs
 * only: ferry_stop() would hold a queued job, which DRMAA's suspend must
 * refuse, and ferry_release() of a job not held does nothing, which
 * DRMAA's release must refuse.
 */
static int control_state_check(ferry_conn *conn, ferry_job_id id, int action, char *diag,
			       size_t len)
{
	enum ferry_job_status st;
	int rc = ferry_status(conn, id, &st);

	if (rc)
		return drmaa__ferry_error(conn, rc, diag, len);
	if (action == DRMAA_CONTROL_SUSPEND && st != FERRY_RUNNING)
		return drmaa__diag(diag, len, DRMAA_ERRNO_SUSPEND_INCONSISTENT_STATE,
				   "job %" PRId64 " is %s, not running: it cannot be suspended", id,
				   ferry_status_name(st));
	if (action == DRMAA_CONTROL_RESUME && st != FERRY_USER_SUSPENDED &&
	    st != FERRY_USER_SYSTEM_SUSPENDED)
		return drmaa__diag(diag, len, DRMAA_ERRNO_RESUME_INCONSISTENT_STATE,
				   "job %" PRId64 " is %s, not suspended: it cannot be resumed", id,
				   ferry_status_name(st));
	if (action == DRMAA_CONTROL_RELEASE && st != FERRY_USER_ON_HOLD &&
	    st != FERRY_USER_SYSTEM_ON_HOLD)
		return drmaa__diag(diag, len, DRMAA_ERRNO_RELEASE_INCONSISTENT_STATE,
				   "job %" PRId64 " is %s, not held by the user: it cannot be "
				   "released",
				   id, ferry_status_name(st));
	return 0;
}

static int control_one(ferry_conn *conn, ferry_job_id id, int action, char *diag, size_t len)
{
	int rc = 0;

	if (action == DRMAA_CONTROL_SUSPEND || action == DRMAA_CONTROL_RESUME ||
	    action == DRMAA_CONTROL_RELEASE)
		rc = control_state_check(conn, id, action, diag, len);
	if (rc)
		return rc;
	switch (action) {
	case DRMAA_CONTROL_SUSPEND:
		rc = ferry_stop(conn, id);
		break;
	case DRMAA_CONTROL_RESUME:
		rc = ferry_restart(conn, id);
		break;
	case DRMAA_CONTROL_HOLD:
		rc = ferry_hold(conn, id);
		break;
	case DRMAA_CONTROL_RELEASE:
		rc = ferry_release(conn, id);
		break;
	default:
		rc = ferry_kill(conn, id);
	}
	if (rc && control_code(action, rc))
		return drmaa__diag(diag, len, control_code(action, rc), "job %" PRId64 ": %s", id,
				   ferry_errmsg(conn));
	return rc ? drmaa__ferry_error(conn, rc, diag, len) : 0;
}

/* An "inconsistent state" refusal: the action does not apply to the job as it is. */
static int inconsistent(int rc)
{
	return rc == DRMAA_ERRNO_SUSPEND_INCONSISTENT_STATE ||
	       rc == DRMAA_ERRNO_RESUME_INCONSISTENT_STATE ||
	       rc == DRMAA_ERRNO_HOLD_INCONSISTENT_STATE ||
	       rc == DRMAA_ERRNO_RELEASE_INCONSISTENT_STATE;
}

/*
 * Every job of the session not ended (and not reaped): the binding applies
 * the action to all of them, so the jobs it does not apply to (a held job
 * to suspend) are passed over and the first other error is answered after
 * the rest had their turn.
 */
static int control_all(ferry_conn *conn, int action, char *diag, size_t len)
{
	ferry_job_id *ids;
	size_t n;
	int rc = 0;

	if (drmaa__session_jobs(&ids, &n) < 0)
		return drmaa__diag(diag, len, DRMAA_ERRNO_NO_MEMORY, "out of memory");
	for (size_t i = 0; i < n; i++) {
		enum ferry_job_status st;
		int r = ferry_status(conn, ids[i], &st);
		/* Ended and disposed jobs are past any control: the session's others are not. */
		if (r == FERRY_ENOJOB || (r == 0 && (st == FERRY_DONE || st == FERRY_FAILED)))
			continue;
		/* Only the first error's diagnosis is kept: later ones write to none. */
		r = r ? drmaa__ferry_error(conn, r, rc ? NULL : diag, len)
		      : control_one(conn, ids[i], action, rc ? NULL : diag, len);
		if (r && !inconsistent(r) && !rc)
			rc = r;
	}
	free(ids);
	if (!rc && diag && len)
		diag[0] = '\0';
	return rc;
}

int drmaa_control(const char *jobid, int action, char *error_diagnosis, size_t error_diag_len)
{
	ferry_job_id id;
	ferry_conn *conn;
	int rc;

	if (action < DRMAA_CONTROL_SUSPEND || action > DRMAA_CONTROL_TERMINATE)
		return drmaa__diag(error_diagnosis, error_diag_len, DRMAA_ERRNO_INVALID_ARGUMENT,
				   "%d is no DRMAA_CONTROL_* action", action);
	rc = drmaa__enter(&conn, error_diagnosis, error_diag_len);
	if (rc)
		return rc;
	if (jobid && strcmp(jobid, DRMAA_JOB_IDS_SESSION_ALL) == 0)
		rc = control_all(conn, action, error_diagnosis, error_diag_len);
	else if (!(rc = drmaa__parse_id(jobid, &id, error_diagnosis, error_diag_len)))
		rc = control_one(conn, id, action, error_diagnosis, error_diag_len);
	drmaa__leave();
	return rc;
}

static double mono(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* The timeout argument in seconds (< 0: none); -2 when it is no valid one. */
static double timeout_s(signed long timeout)
{
	if (timeout == DRMAA_TIMEOUT_WAIT_FOREVER)
		return -1;
	return timeout < 0 ? -2 : (double)timeout;
}

/* Drops the ids of jobs disposed of meanwhile: they count as ended. */
static int drop_gone(ferry_conn *conn, ferry_job_id *ids, size_t *n)
{
	size_t k = 0;

	for (size_t i = 0; i < *n; i++) {
		enum ferry_job_status st;
		int rc = ferry_status(conn, ids[i], &st);
		if (rc && rc != FERRY_ENOJOB)
			return rc;
		if (!rc)
			ids[k++] = ids[i];
	}
	*n = k;
	return 0;
}

/*
 * ferry_wait() in slices of WAIT_SLICE_S; 0, a FERRY_E* code, or 1 when the
 * session closes. A job disposed of after the first slice ended during the
 * wait; on the first, it is an error unless all (the session's jobs, which
 * may have been disposed of from outside: `ferry dispose`).
 */
static int wait_slices(ferry_conn *conn, ferry_job_id *ids, size_t n, double timeout, int all)
{
	double end = mono() + timeout;
	int first = !all;

	for (;;) {
		double left = timeout < 0 ? WAIT_SLICE_S : end - mono();
		double slice = left < 0 ? 0 : left > WAIT_SLICE_S ? WAIT_SLICE_S : left;
		int rc = n ? ferry_wait(conn, ids, n, slice) : 0;
		if (rc == FERRY_ENOJOB && !first && !(rc = drop_gone(conn, ids, &n)))
			continue;
		first = 0;
		if (rc != FERRY_ETIMEDOUT || (timeout >= 0 && left <= WAIT_SLICE_S))
			return rc;
		if (drmaa__closing())
			return 1;
	}
}

/*
 * Waits until the jobs ended, on a connection of the wait's own. 0 or a
 * DRMAA code. all: ids are DRMAA_JOB_IDS_SESSION_ALL's, of which a job
 * disposed of counts as ended.
 */
static int wait_ids(ferry_job_id *ids, size_t n, double timeout, int all, char *diag, size_t len)
{
	ferry_conn *conn;
	int rc;

	/* The session's connection is free for other threads while this one waits. */
	drmaa__yield_conn();
	rc = drmaa__wait_conn(&conn, diag, len);
	if (!rc) {
		rc = wait_slices(conn, ids, n, timeout, all);
		if (rc == 1)
			rc = drmaa__diag(diag, len, DRMAA_ERRNO_NO_ACTIVE_SESSION,
					 "the session was closed during the wait");
		else if (rc)
			rc = drmaa__ferry_error(conn, rc, diag, len);
		drmaa__wait_conn_done(conn);
	}
	drmaa__take_conn();
	return rc;
}

/* The ids of job_ids, DRMAA_JOB_IDS_SESSION_ALL standing for the session's jobs. */
static int sync_ids(const char *job_ids[], ferry_job_id **ids, size_t *n, int *all, char *diag,
		    size_t len)
{
	size_t given = 0, k = 0;
	int rc = 0;

	*all = 0;
	for (size_t i = 0; job_ids[i]; i++)
		if ((*all = strcmp(job_ids[i], DRMAA_JOB_IDS_SESSION_ALL) == 0))
			return drmaa__session_jobs(ids, n) < 0
				   ? drmaa__diag(diag, len, DRMAA_ERRNO_NO_MEMORY, "out of memory")
				   : 0;
	while (job_ids[given])
		given++;
	*ids = malloc((given ? given : 1) * sizeof(**ids));
	if (!*ids)
		return drmaa__diag(diag, len, DRMAA_ERRNO_NO_MEMORY, "out of memory");
	for (; !rc && k < given; k++)
		rc = drmaa__parse_id(job_ids[k], &(*ids)[k], diag, len);
	*n = k;
	return rc;
}

/* After a synchronize: the outputs of each job (see fetch_outputs). */
static int retrieve_all(ferry_conn *conn, const ferry_job_id *ids, size_t n, char *diag, size_t len)
{
	int rc = 0;

	for (size_t i = 0; !rc && i < n; i++)
		rc = fetch_outputs(conn, ids[i], NULL, diag, len);
	return rc;
}

/* After a synchronize with dispose: every job's record goes, in ferry as in the session. */
static int dispose_all(ferry_conn *conn, const ferry_job_id *ids, size_t n, char *diag, size_t len)
{
	for (size_t i = 0; i < n; i++) {
		int rc = ferry_dispose(conn, ids[i]);
		if (rc && rc != FERRY_ENOJOB)
			return drmaa__ferry_error(conn, rc, diag, len);
		drmaa__reap(ids[i]);
	}
	return 0;
}

static int synchronize(ferry_conn *conn, const char *job_ids[], double timeout, int dispose,
		       char *diag, size_t len)
{
	ferry_job_id *ids = NULL;
	size_t n = 0;
	int all, rc;

	rc = sync_ids(job_ids, &ids, &n, &all, diag, len);
	for (size_t i = 0; !rc && i < n; i++)
		if (drmaa__is_reaped(ids[i]))
			rc = drmaa__diag(diag, len, DRMAA_ERRNO_INVALID_JOB,
					 "job %" PRId64 " was reaped already in this session",
					 ids[i]);
	if (!rc)
		rc = wait_ids(ids, n, timeout, all, diag, len);
	if (!rc)
		rc = retrieve_all(conn, ids, n, diag, len);
	if (!rc && dispose)
		rc = dispose_all(conn, ids, n, diag, len);
	free(ids);
	return rc;
}

int drmaa_synchronize(const char *job_ids[], signed long timeout, int dispose,
		      char *error_diagnosis, size_t error_diag_len)
{
	ferry_conn *conn;
	int rc;

	if (!job_ids || timeout_s(timeout) < -1)
		return drmaa__diag(error_diagnosis, error_diag_len, DRMAA_ERRNO_INVALID_ARGUMENT,
				   "expected job_ids and a timeout >= 0 or "
				   "DRMAA_TIMEOUT_WAIT_FOREVER");
	rc = drmaa__enter(&conn, error_diagnosis, error_diag_len);
	if (rc)
		return rc;
	rc = synchronize(conn, job_ids, timeout_s(timeout), dispose, error_diagnosis,
			 error_diag_len);
	drmaa__leave();
	return rc;
}

/* The first id of mine (sorted) also in theirs (sorted), or 0. */
static ferry_job_id first_common(const ferry_job_id *mine, size_t n, const ferry_job_id *theirs,
				 size_t ntheirs)
{
	size_t j = 0;

	for (size_t i = 0; i < ntheirs && j < n; i++) {
		while (j < n && mine[j] < theirs[i])
			j++;
		if (j < n && mine[j] == theirs[i])
			return theirs[i];
	}
	return 0;
}

/*
 * Marks reaped the jobs of mine (sorted) that no longer exist (disposed of
 * from outside the session: `ferry dispose`), which no wait would see end;
 * *left gets how many remain.
 */
static int reap_gone(ferry_conn *conn, const ferry_job_id *mine, size_t n, size_t *left)
{
	struct ferry_list_opts opts;
	ferry_job_id *all = NULL;
	size_t nall = 0, j = 0;
	int rc;

	ferry_list_opts_init(&opts);
	opts.after = mine[0] - 1;
	rc = ferry_list_ids(conn, &opts, &all, &nall);
	*left = n;
	for (size_t i = 0; !rc && i < n; i++) {
		while (j < nall && all[j] < mine[i])
			j++;
		if (j == nall || all[j] != mine[i]) {
			drmaa__reap(mine[i]); /* -1: another thread reaped it meanwhile */
			(*left)--;
		}
	}
	free(all);
	return rc;
}

/*
 * One of the session's jobs that ended and is not reaped: *id, or 0 when
 * none yet; DRMAA_ERRNO_INVALID_JOB when the session has none left.
 */
static int ended_session_job(ferry_conn *conn, ferry_job_id *id, char *diag, size_t len)
{
	static const enum ferry_job_status ended[] = {FERRY_DONE, FERRY_FAILED};
	struct ferry_list_opts opts;
	ferry_job_id *mine, *done = NULL;
	size_t n, ndone = 0;
	int rc;

	*id = 0;
	if (drmaa__session_jobs(&mine, &n) < 0)
		return drmaa__diag(diag, len, DRMAA_ERRNO_NO_MEMORY, "out of memory");
	if (!n) {
		free(mine);
		return drmaa__diag(diag, len, DRMAA_ERRNO_INVALID_JOB,
				   "the session has no job left to wait for");
	}
	ferry_list_opts_init(&opts);
	opts.states = ended;
	opts.nstates = 2;
	opts.after = mine[0] - 1;
	rc = ferry_list_ids(conn, &opts, &done, &ndone);
	/* Both lists are sorted by id: the first id in both is the one. */
	if (!rc)
		*id = first_common(mine, n, done, ndone);
	if (!rc && !*id)
		rc = reap_gone(conn, mine, n, &n);
	free(mine);
	free(done);
	if (rc)
		return drmaa__ferry_error(conn, rc, diag, len);
	return *id || n ? 0
			: drmaa__diag(diag, len, DRMAA_ERRNO_INVALID_JOB,
				      "the session has no job left to wait for (the last were "
				      "disposed of from outside it)");
}

/* Waits for any job of the session: polls, as no single engine wait says "any of". */
static int wait_any(ferry_conn *conn, double timeout, ferry_job_id *id, char *diag, size_t len)
{
	double end = mono() + timeout, pause = 0.02;
	int rc;

	for (;;) {
		rc = ended_session_job(conn, id, diag, len);
		if (rc || *id)
			return rc;
		if (timeout >= 0 && mono() >= end)
			return drmaa__diag(diag, len, DRMAA_ERRNO_EXIT_TIMEOUT,
					   "no job of the session ended within %.0f s", timeout);
		if (drmaa__closing())
			return drmaa__diag(diag, len, DRMAA_ERRNO_NO_ACTIVE_SESSION,
					   "the session was closed during the wait");
		drmaa__yield_conn();
		nanosleep(&(struct timespec){0, (long)(pause * 1e9)}, NULL);
		drmaa__take_conn();
		pause = pause * 2 > 0.5 ? 0.5 : pause * 2;
	}
}

/* The stat word of an ended job. */
static int stat_of(const struct ferry_job_info *j)
{
	switch (j->exit_status) {
	case FERRY_FINISHED_REGULARLY:
		return (j->exit_value & 0xff) << 8;
	case FERRY_FINISHED_SIGNAL:
	case FERRY_KILLED_BY_USER:
		if (j->signal > 0)
			return j->signal & 0x7f;
		return j->started_at > 0 ? STAT_UNCLEAR : STAT_ABORTED;
	case FERRY_ABORTED:
		return STAT_ABORTED;
	default:
		return j->signal > 0 ? j->signal & 0x7f : STAT_UNCLEAR;
	}
}

/* "name=value" with digits decimals, unless value is unknown (< 0). */
static int push_usage(drmaa_attr_values_t *v, const char *name, double value, int digits)
{
	char buf[96];

	if (value < 0)
		return 0;
	snprintf(buf, sizeof(buf), "%s=%.*f", name, digits, value);
	return drmaa__strv_push(&v->s, buf);
}

/* The job's resource usage as "name=value" strings (what is known of it). */
static int usage_of(const struct ferry_job_info *j, drmaa_attr_values_t **out)
{
	drmaa_attr_values_t *v = calloc(1, sizeof(*v));
	double cpu = j->cpu_user_s >= 0 && j->cpu_sys_s >= 0 ? j->cpu_user_s + j->cpu_sys_s : -1;
	int rc = v ? 0 : DRMAA_ERRNO_NO_MEMORY;

	rc = rc ? rc : push_usage(v, "wallclock", j->wall_s, 3);
	rc = rc ? rc : push_usage(v, "cpu", cpu, 3);
	rc = rc ? rc : push_usage(v, "ru_utime", j->cpu_user_s, 3);
	rc = rc ? rc : push_usage(v, "ru_stime", j->cpu_sys_s, 3);
	rc = rc ? rc : push_usage(v, "maxrss", (double)j->max_rss_kb, 0);
	rc = rc ? rc : push_usage(v, "submission_time", j->submitted_at, 3);
	rc = rc ? rc : push_usage(v, "start_time", j->started_at > 0 ? j->started_at : -1, 3);
	rc = rc ? rc : push_usage(v, "end_time", j->ended_at > 0 ? j->ended_at : -1, 3);
	if (rc) {
		drmaa_release_attr_values(v);
		return rc;
	}
	*out = v;
	return 0;
}

/* The end of job id (ended), reaped: stat, rusage and job_id_out as asked. */
static int reap(ferry_conn *conn, ferry_job_id id, char *job_id_out, size_t job_id_out_len,
		int *stat, drmaa_attr_values_t **rusage, char *diag, size_t len)
{
	struct ferry_job_info *j = NULL;
	drmaa_attr_values_t *usage = NULL;
	int rc = ferry_job_info(conn, id, &j);

	if (rc)
		return drmaa__ferry_error(conn, rc, diag, len);
	/* Before the reaping: a failed retrieval leaves the job to another wait. */
	if ((rc = fetch_outputs(conn, id, j, diag, len)) != 0)
		goto out;
	if (rusage && (rc = usage_of(j, &usage)) != 0) {
		rc = drmaa__diag(diag, len, rc, "out of memory");
		goto out;
	}
	if (drmaa__reap(id) < 0) {
		rc = drmaa__diag(diag, len, DRMAA_ERRNO_INVALID_JOB,
				 "job %" PRId64 " was reaped meanwhile by another thread", id);
		goto out;
	}
	if (stat)
		*stat = stat_of(j);
	if (job_id_out && job_id_out_len)
		snprintf(job_id_out, job_id_out_len, "%" PRId64, id);
	if (rusage)
		*rusage = usage;
	usage = NULL;
out:
	drmaa_release_attr_values(usage);
	ferry_job_info_free(j);
	return rc;
}

static int wait_job(ferry_conn *conn, const char *job_id, double timeout, ferry_job_id *id,
		    char *diag, size_t len)
{
	int rc;

	if (job_id && strcmp(job_id, DRMAA_JOB_IDS_SESSION_ANY) == 0)
		return wait_any(conn, timeout, id, diag, len);
	rc = drmaa__parse_id(job_id, id, diag, len);
	if (rc)
		return rc;
	if (drmaa__is_reaped(*id))
		return drmaa__diag(diag, len, DRMAA_ERRNO_INVALID_JOB,
				   "job %" PRId64 " was reaped already in this session", *id);
	return wait_ids(id, 1, timeout, 0, diag, len);
}

int drmaa_wait(const char *job_id, char *job_id_out, size_t job_id_out_len, int *stat,
	       signed long timeout, drmaa_attr_values_t **rusage, char *error_diagnosis,
	       size_t error_diag_len)
{
	ferry_job_id id = 0;
	ferry_conn *conn;
	int rc;

	if (timeout_s(timeout) < -1)
		return drmaa__diag(error_diagnosis, error_diag_len, DRMAA_ERRNO_INVALID_ARGUMENT,
				   "expected a timeout >= 0 or DRMAA_TIMEOUT_WAIT_FOREVER, not %ld",
				   timeout);
	rc = drmaa__enter(&conn, error_diagnosis, error_diag_len);
	if (rc)
		return rc;
	rc = wait_job(conn, job_id, timeout_s(timeout), &id, error_diagnosis, error_diag_len);
	if (!rc)
		rc = reap(conn, id, job_id_out, job_id_out_len, stat, rusage, error_diagnosis,
			  error_diag_len);
	drmaa__leave();
	return rc;
}

static int out_null(const void *p, char *diag, size_t len)
{
	return p ? 0
		 : drmaa__diag(diag, len, DRMAA_ERRNO_INVALID_ARGUMENT,
			       "the output argument must not be NULL");
}

static int exited(int stat)
{
	return !(stat & (STAT_ABORTED | STAT_UNCLEAR)) && (stat & 0x7f) == 0;
}

static int signaled(int stat)
{
	return !(stat & (STAT_ABORTED | STAT_UNCLEAR)) && (stat & 0x7f) != 0;
}

int drmaa_wifexited(int *exited_, int stat, char *error_diagnosis, size_t error_diag_len)
{
	int rc = out_null(exited_, error_diagnosis, error_diag_len);

	if (!rc)
		*exited_ = exited(stat);
	return rc;
}

int drmaa_wexitstatus(int *exit_status, int stat, char *error_diagnosis, size_t error_diag_len)
{
	int rc = out_null(exit_status, error_diagnosis, error_diag_len);

	/* 0 unless the job exited: drmaa-python asks whatever the job did. */
	if (!rc)
		*exit_status = exited(stat) ? (stat >> 8) & 0xff : 0;
	return rc;
}

int drmaa_wifsignaled(int *signaled_, int stat, char *error_diagnosis, size_t error_diag_len)
{
	int rc = out_null(signaled_, error_diagnosis, error_diag_len);

	if (!rc)
		*signaled_ = signaled(stat);
	return rc;
}

int drmaa_wtermsig(char *signal, size_t signal_len, int stat, char *error_diagnosis,
		   size_t error_diag_len)
{
	const char *abbrev;
	int rc = out_null(signal, error_diagnosis, error_diag_len);

	if (rc || !signal_len)
		return rc ? rc : out_null(NULL, error_diagnosis, error_diag_len);
	if (!signaled(stat)) {
		signal[0] = '\0';
		return 0;
	}
	abbrev = sigabbrev_np(stat & 0x7f);
	if (abbrev)
		snprintf(signal, signal_len, "SIG%s", abbrev);
	else
		snprintf(signal, signal_len, "%d", stat & 0x7f);
	return 0;
}

int drmaa_wcoredump(int *core_dumped, int stat, char *error_diagnosis, size_t error_diag_len)
{
	int rc = out_null(core_dumped, error_diagnosis, error_diag_len);

	/* ferry does not record core dumps: 0 always (documented). */
	if (!rc)
		*core_dumped = 0;
	return rc;
}

int drmaa_wifaborted(int *aborted, int stat, char *error_diagnosis, size_t error_diag_len)
{
	int rc = out_null(aborted, error_diagnosis, error_diag_len);

	if (!rc)
		*aborted = (stat & STAT_ABORTED) != 0;
	return rc;
}
