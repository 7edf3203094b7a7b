/*
 * session.c - the DRMAA session of libferry-drmaa: one connection to the
 * engine of the resource the contact string names, the jobs the session
 * submitted and reaped, the error mapping and the auxiliary calls.
 */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include "util.h"

/* Idle wait connections kept for the next waits (each a process over ssh). */
#define SPARE_CONNS 4

/* A job the session knows: submitted by it, or reaped by it (any job id may be waited on). */
struct tracked {
	ferry_job_id id;
	int ours;
	int reaped;
	int staged;    /* its outputs are transfers to retrieve (drmaa_transfer_files) */
	int retrieved; /* its ended outputs were retrieved in this session */
};

/*
 * The one session DRMAA allows a process. mu guards every member; a call
 * that uses conn counts itself in users, so that drmaa_exit() closes conn
 * only once none does. call is held by the thread using conn: libferry
 * serialises the calls on one connection, but ferry_errmsg() is the
 * connection's, and another thread's call would clear it before it is
 * read. Taken before mu where both are.
 */
static struct {
	pthread_mutex_t mu;
	pthread_mutex_t call;
	pthread_cond_t idle;
	ferry_conn *conn;
	char *contact;
	int users;
	int closing;
	struct tracked *jobs; /* by id */
	size_t njobs, cap;
	ferry_conn *spare[SPARE_CONNS]; /* idle connections of waits (drmaa__wait_conn) */
	size_t nspare;
} S = {.mu = PTHREAD_MUTEX_INITIALIZER,
       .call = PTHREAD_MUTEX_INITIALIZER,
       .idle = PTHREAD_COND_INITIALIZER};

int drmaa__ferry_error(ferry_conn *conn, int rc, char *diag, size_t len)
{
	int code;

	switch (rc) {
	case FERRY_EINVAL:
		code = DRMAA_ERRNO_INVALID_ARGUMENT;
		break;
	case FERRY_ENOMEM:
		code = DRMAA_ERRNO_NO_MEMORY;
		break;
	case FERRY_ENOJOB:
		code = DRMAA_ERRNO_INVALID_JOB;
		break;
	case FERRY_ETIMEDOUT:
		code = DRMAA_ERRNO_EXIT_TIMEOUT;
		break;
	case FERRY_EAGAIN:
		code = DRMAA_ERRNO_TRY_LATER;
		break;
	case FERRY_EAUTH:
		code = DRMAA_ERRNO_AUTH_FAILURE;
		break;
	case FERRY_ESTATE:
	case FERRY_EPERM:
	case FERRY_ERESOURCE:
	case FERRY_EUNSUPPORTED:
		code = DRMAA_ERRNO_DENIED_BY_DRM;
		break;
	case FERRY_ECONNECT:
	case FERRY_EDISCONNECTED:
	case FERRY_EPROTO:
	case FERRY_EIO:
		code = DRMAA_ERRNO_DRM_COMMUNICATION_FAILURE;
		break;
	default:
		code = DRMAA_ERRNO_INTERNAL_ERROR;
	}
	return drmaa__diag(diag, len, code, "%s", conn ? ferry_errmsg(conn) : ferry_strerror(rc));
}

/* The resource of a contact string: NULL or "" is $FERRY_RESOURCE or "local", as for `ferry`. */
static const char *contact_resource(const char *contact)
{
	const char *env;

	if (contact && *contact)
		return contact;
	env = getenv("FERRY_RESOURCE");
	return env && *env ? env : "local";
}

/* The DRMAA code of a failed ferry_connect(). */
static int init_error(int rc)
{
	switch (rc) {
	case FERRY_ECONFIG:
	case FERRY_EINVAL:
		return DRMAA_ERRNO_INVALID_CONTACT_STRING;
	case FERRY_ENOMEM:
		return DRMAA_ERRNO_NO_MEMORY;
	case FERRY_EAUTH:
	case FERRY_EPERM:
		return DRMAA_ERRNO_AUTH_FAILURE;
	default:
		return DRMAA_ERRNO_DRMS_INIT_FAILED;
	}
}

int drmaa_init(const char *contact, char *error_diagnosis, size_t error_diag_len)
{
	const char *resource = contact_resource(contact);
	ferry_conn *conn = NULL;
	char *copy = NULL;
	int rc;

	pthread_mutex_lock(&S.mu);
	if (S.conn) {
		rc = drmaa__diag(
		    error_diagnosis, error_diag_len, DRMAA_ERRNO_ALREADY_ACTIVE_SESSION,
		    "a session on resource '%s' is active: drmaa_exit() it first", S.contact);
		goto out;
	}
	rc = ferry_connect(resource, NULL, NULL, NULL, &conn);
	if (rc < 0) {
		rc = drmaa__diag(error_diagnosis, error_diag_len, init_error(rc),
				 "cannot open a session on resource '%s': %s", resource,
				 conn ? ferry_errmsg(conn) : ferry_strerror(rc));
		goto out;
	}
	copy = strdup(resource);
	if (!copy) {
		rc = drmaa__diag(error_diagnosis, error_diag_len, DRMAA_ERRNO_NO_MEMORY,
				 "out of memory");
		goto out;
	}
	S.conn = conn;
	S.contact = copy;
	S.closing = 0;
	conn = NULL;
	copy = NULL;
	rc = DRMAA_ERRNO_SUCCESS;
out:
	pthread_mutex_unlock(&S.mu);
	ferry_disconnect(conn);
	free(copy);
	return rc;
}

int drmaa_exit(char *error_diagnosis, size_t error_diag_len)
{
	pthread_mutex_lock(&S.mu);
	if (!S.conn || S.closing) {
		pthread_mutex_unlock(&S.mu);
		return drmaa__diag(error_diagnosis, error_diag_len, DRMAA_ERRNO_NO_ACTIVE_SESSION,
				   "no active session: drmaa_init() was not called");
	}
	S.closing = 1;
	while (S.users > 0)
		pthread_cond_wait(&S.idle, &S.mu);
	/* The jobs keep running and keep their ids: a later session may wait for them. */
	ferry_disconnect(S.conn);
	while (S.nspare)
		ferry_disconnect(S.spare[--S.nspare]);
	free(S.contact);
	free(S.jobs);
	S.conn = NULL;
	S.contact = NULL;
	S.jobs = NULL;
	S.njobs = S.cap = 0;
	S.closing = 0;
	pthread_mutex_unlock(&S.mu);
	return DRMAA_ERRNO_SUCCESS;
}

int drmaa__enter(ferry_conn **conn, char *diag, size_t len)
{
	int rc = DRMAA_ERRNO_SUCCESS;

	pthread_mutex_lock(&S.mu);
	if (!S.conn || S.closing) {
		rc = drmaa__diag(diag, len, DRMAA_ERRNO_NO_ACTIVE_SESSION,
				 "no active session: call drmaa_init() first");
	} else {
		S.users++;
		*conn = S.conn;
	}
	pthread_mutex_unlock(&S.mu);
	if (rc == DRMAA_ERRNO_SUCCESS)
		pthread_mutex_lock(&S.call);
	return rc;
}

void drmaa__leave(void)
{
	pthread_mutex_unlock(&S.call);
	pthread_mutex_lock(&S.mu);
	if (--S.users == 0)
		pthread_cond_broadcast(&S.idle);
	pthread_mutex_unlock(&S.mu);
}

void drmaa__yield_conn(void)
{
	pthread_mutex_unlock(&S.call);
}

void drmaa__take_conn(void)
{
	pthread_mutex_lock(&S.call);
}

int drmaa__closing(void)
{
	int closing;

	pthread_mutex_lock(&S.mu);
	closing = S.closing;
	pthread_mutex_unlock(&S.mu);
	return closing;
}

int drmaa__wait_conn(ferry_conn **conn, char *diag, size_t len)
{
	const char *resource;
	int rc;

	pthread_mutex_lock(&S.mu);
	*conn = S.nspare ? S.spare[--S.nspare] : NULL;
	resource = S.contact; /* stays while the caller is counted in (drmaa__enter) */
	pthread_mutex_unlock(&S.mu);
	if (*conn)
		return 0;
	rc = ferry_connect(resource, NULL, NULL, NULL, conn);
	if (rc == 0)
		return 0;
	rc = drmaa__ferry_error(*conn, rc, diag, len);
	ferry_disconnect(*conn);
	*conn = NULL;
	return rc;
}

void drmaa__wait_conn_done(ferry_conn *conn)
{
	pthread_mutex_lock(&S.mu);
	if (conn && S.nspare < SPARE_CONNS) {
		S.spare[S.nspare++] = conn;
		conn = NULL;
	}
	pthread_mutex_unlock(&S.mu);
	ferry_disconnect(conn);
}

/* Index of id in S.jobs, or where it goes (*found 0). Called with S.mu held. */
static size_t find(ferry_job_id id, int *found)
{
	size_t lo = 0, hi = S.njobs;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (S.jobs[mid].id < id)
			lo = mid + 1;
		else
			hi = mid;
	}
	*found = lo < S.njobs && S.jobs[lo].id == id;
	return lo;
}

/* The entry of id, added if new; NULL without memory. Called with S.mu held. */
static struct tracked *entry(ferry_job_id id)
{
	int found;
	size_t i = find(id, &found);

	if (found)
		return &S.jobs[i];
	if (S.njobs == S.cap) {
		size_t cap = S.cap ? 2 * S.cap : 64;
		struct tracked *nj = realloc(S.jobs, cap * sizeof(*nj));
		if (!nj)
			return NULL;
		S.jobs = nj;
		S.cap = cap;
	}
	memmove(&S.jobs[i + 1], &S.jobs[i], (S.njobs - i) * sizeof(*S.jobs));
	S.njobs++;
	S.jobs[i] = (struct tracked){id, 0, 0, 0, 0};
	return &S.jobs[i];
}

int drmaa__track(const ferry_job_id *ids, size_t n, int staged)
{
	int rc = 0;

	pthread_mutex_lock(&S.mu);
	for (size_t i = 0; i < n && rc == 0; i++) {
		struct tracked *t = entry(ids[i]);
		if (t) {
			t->ours = 1;
			t->staged = staged;
		} else {
			rc = -1;
		}
	}
	pthread_mutex_unlock(&S.mu);
	return rc;
}

int drmaa__may_have_outputs(ferry_job_id id)
{
	int found, may;
	size_t i;

	pthread_mutex_lock(&S.mu);
	i = find(id, &found);
	may = !found || ((!S.jobs[i].ours || S.jobs[i].staged) && !S.jobs[i].retrieved);
	pthread_mutex_unlock(&S.mu);
	return may;
}

int drmaa__staged(ferry_job_id id)
{
	int found, staged;
	size_t i;

	pthread_mutex_lock(&S.mu);
	i = find(id, &found);
	staged = found && S.jobs[i].ours && S.jobs[i].staged;
	pthread_mutex_unlock(&S.mu);
	return staged;
}

int drmaa__retrieved(ferry_job_id id)
{
	struct tracked *t;

	pthread_mutex_lock(&S.mu);
	t = entry(id);
	if (t)
		t->retrieved = 1;
	pthread_mutex_unlock(&S.mu);
	return t ? 0 : -1;
}

int drmaa__reap(ferry_job_id id)
{
	struct tracked *t;
	int rc = 0;

	pthread_mutex_lock(&S.mu);
	t = entry(id);
	if (t && t->reaped)
		rc = -1;
	else if (t)
		t->reaped = 1;
	pthread_mutex_unlock(&S.mu);
	return rc;
}

int drmaa__is_reaped(ferry_job_id id)
{
	int found, reaped;
	size_t i;

	pthread_mutex_lock(&S.mu);
	i = find(id, &found);
	reaped = found && S.jobs[i].reaped;
	pthread_mutex_unlock(&S.mu);
	return reaped;
}

int drmaa__session_jobs(ferry_job_id **ids, size_t *n)
{
	ferry_job_id *v;
	size_t k = 0;

	pthread_mutex_lock(&S.mu);
	v = malloc((S.njobs ? S.njobs : 1) * sizeof(*v));
	for (size_t i = 0; v && i < S.njobs; i++)
		if (S.jobs[i].ours && !S.jobs[i].reaped)
			v[k++] = S.jobs[i].id;
	pthread_mutex_unlock(&S.mu);
	*ids = v;
	*n = k;
	return v ? 0 : -1;
}

int drmaa__parse_id(const char *s, ferry_job_id *id, char *diag, size_t len)
{
	char *end;
	long long v;

	if (!s || !*s)
		return drmaa__diag(diag, len, DRMAA_ERRNO_INVALID_ARGUMENT, "no job id given");
	errno = 0;
	v = strtoll(s, &end, 10);
	if (errno || *end || v < 1 || s[0] < '0' || s[0] > '9')
		return drmaa__diag(diag, len, DRMAA_ERRNO_INVALID_JOB,
				   "'%s' is no job id of ferry (a positive decimal number)", s);
	*id = v;
	return 0;
}

int drmaa__strv_push(struct drmaa__strv *s, const char *str)
{
	char **nv = realloc(s->v, (s->n + 1) * sizeof(*nv));

	if (!nv)
		return DRMAA_ERRNO_NO_MEMORY;
	s->v = nv;
	s->v[s->n] = strdup(str);
	if (!s->v[s->n])
		return DRMAA_ERRNO_NO_MEMORY;
	s->n++;
	return 0;
}

void drmaa__strv_clear(struct drmaa__strv *s)
{
	for (size_t i = 0; i < s->n; i++)
		free(s->v[i]);
	free(s->v);
	*s = (struct drmaa__strv){NULL, 0, 0};
}

static const char *const messages[DRMAA_NO_ERRNO] = {
    [DRMAA_ERRNO_SUCCESS] = "success",
    [DRMAA_ERRNO_INTERNAL_ERROR] = "internal error",
    [DRMAA_ERRNO_DRM_COMMUNICATION_FAILURE] = "cannot communicate with the ferry engine",
    [DRMAA_ERRNO_AUTH_FAILURE] = "authorization failure",
    [DRMAA_ERRNO_INVALID_ARGUMENT] = "invalid argument",
    [DRMAA_ERRNO_NO_ACTIVE_SESSION] = "no active session",
    [DRMAA_ERRNO_NO_MEMORY] = "out of memory",
    [DRMAA_ERRNO_INVALID_CONTACT_STRING] = "invalid contact string (no such ferry resource)",
    [DRMAA_ERRNO_DEFAULT_CONTACT_STRING_ERROR] = "cannot use the default contact string",
    [DRMAA_ERRNO_NO_DEFAULT_CONTACT_STRING_SELECTED] = "no default contact string selected",
    [DRMAA_ERRNO_DRMS_INIT_FAILED] = "cannot start or reach the ferry engine",
    [DRMAA_ERRNO_ALREADY_ACTIVE_SESSION] = "a session is already active",
    [DRMAA_ERRNO_DRMS_EXIT_ERROR] = "cannot close the session",
    [DRMAA_ERRNO_INVALID_ATTRIBUTE_FORMAT] = "invalid attribute format",
    [DRMAA_ERRNO_INVALID_ATTRIBUTE_VALUE] = "invalid attribute value",
    [DRMAA_ERRNO_CONFLICTING_ATTRIBUTE_VALUES] = "conflicting attribute values",
    [DRMAA_ERRNO_TRY_LATER] = "the engine is busy: try later",
    [DRMAA_ERRNO_DENIED_BY_DRM] = "denied by the ferry engine",
    [DRMAA_ERRNO_INVALID_JOB] = "no such job (or already reaped)",
    [DRMAA_ERRNO_RESUME_INCONSISTENT_STATE] = "the job is not suspended",
    [DRMAA_ERRNO_SUSPEND_INCONSISTENT_STATE] = "the job is not running",
    [DRMAA_ERRNO_HOLD_INCONSISTENT_STATE] = "the job cannot be held in its state",
    [DRMAA_ERRNO_RELEASE_INCONSISTENT_STATE] = "the job is not held",
    [DRMAA_ERRNO_EXIT_TIMEOUT] = "timed out",
    [DRMAA_ERRNO_NO_RUSAGE] = "no resource usage known",
    [DRMAA_ERRNO_NO_MORE_ELEMENTS] = "no more elements",
};

const char *drmaa_strerror(int drmaa_errno)
{
	if (drmaa_errno < 0 || drmaa_errno >= DRMAA_NO_ERRNO)
		return "unknown error code";
	return messages[drmaa_errno];
}

/* Copies s into buf (cut short, NUL-terminated); DRMAA_ERRNO_INVALID_ARGUMENT without buffer. */
static int copy_out(const char *what, const char *s, char *buf, size_t buflen, char *diag,
		    size_t len)
{
	if (!buf || !buflen)
		return drmaa__diag(diag, len, DRMAA_ERRNO_INVALID_ARGUMENT,
				   "no buffer given for the %s", what);
	snprintf(buf, buflen, "%s", s);
	return DRMAA_ERRNO_SUCCESS;
}

int drmaa_get_contact(char *contact, size_t contact_len, char *error_diagnosis,
		      size_t error_diag_len)
{
	int rc;

	/* Before drmaa_init(): the contact a NULL one would choose, as the spec asks. */
	pthread_mutex_lock(&S.mu);
	rc = copy_out("contact", S.contact ? S.contact : contact_resource(NULL), contact,
		      contact_len, error_diagnosis, error_diag_len);
	pthread_mutex_unlock(&S.mu);
	return rc;
}

int drmaa_version(unsigned int *major, unsigned int *minor, char *error_diagnosis,
		  size_t error_diag_len)
{
	if (!major || !minor)
		return drmaa__diag(error_diagnosis, error_diag_len, DRMAA_ERRNO_INVALID_ARGUMENT,
				   "major and minor must not be NULL");
	*major = 1;
	*minor = 0;
	return DRMAA_ERRNO_SUCCESS;
}

int drmaa_get_DRM_system(char *drm_system, size_t drm_system_len, char *error_diagnosis,
			 size_t error_diag_len)
{
	return copy_out("DRM system", "ferry " FERRY_VERSION_STRING, drm_system, drm_system_len,
			error_diagnosis, error_diag_len);
}

int drmaa_get_DRMAA_implementation(char *drmaa_impl, size_t drmaa_impl_len, char *error_diagnosis,
				   size_t error_diag_len)
{
	return copy_out("DRMAA implementation", "libferry-drmaa " FERRY_VERSION_STRING, drmaa_impl,
			drmaa_impl_len, error_diagnosis, error_diag_len);
}
