/*
 * engine.c - the job engine: validates requests, keeps the jobs that have
 * not ended in memory, schedules them on the backend, records every change
 * in the database and answers waiters.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config.h"
#include "engine.h"
#include "proto.h"
#include "util.h"
#include "work.h"

#define GC_INTERVAL   60.0
#define MAX_ARG_BYTES (128 * 1024)
#define MAX_CMD_BYTES (2 * 1024 * 1024)
#define MAX_WAIT_IDS  1000000
#define MAX_SUBMIT    100000

struct waiter {
	struct ferry_conn_s *c;
	int64_t *ids;
	size_t n, pos;
	double deadline; /* monotonic; <0: none */
	struct waiter *next;
};

/* A control in flight on the DRMS (backend.h: FERRY__PENDING). */
struct ferry_ctl {
	struct ferry_conn_s *c; /* who waits for the answer; NULL: nobody (any more) */
	int64_t id;
	enum backend_ctl ctl;
	enum ferry_job_status to; /* the state once it is done; UNDETERMINED: none */
	int with_status;	  /* the answer carries the job's status (control) */
	struct ferry_ctl *next;
};

/* A request that waits until the backend is ready for it (backend.h). */
struct parked {
	struct ferry_conn_s *c;
	json_t *req;
	struct parked *next;
};

struct ferry_engine {
	struct ferry_loop *loop;
	char *resource;
	char *state_dir;
	char *jobs_dir;
	struct ferry_resource_cfg cfg;
	struct ferry_db *db;
	const struct ferry_backend *be;
	void *be_self;		     /* what be->open made: every method's first argument */
	int be_open;		     /* be->open succeeded: be->close is due */
	struct ferry_worker *worker; /* the DRMS backend's blocking calls */
	struct ferry_ctl *ctls;	     /* controls in flight */
	struct parked *parked, **parked_tail;
	int polling; /* a poll is out: the next one waits for ferry__engine_polled */
	struct job **htab;
	size_t hsize, nactive;
	struct job *qhead, *qtail;
	int used_slots;
	struct waiter *waiters;
	double next_gc;
	double retry_start; /* monotonic time to retry a failed start; 0: none */
	size_t nfresh;	    /* jobs of the open transaction (struct job.fresh) */
	int shutdown;
	char *tr_root; /* the transfer root, absolute and resolved */
	int tr_root_fd;
	double hour_s;	   /* seconds in an hour of disposal time (a test knob) */
	double next_poll;  /* monotonic time of the backend's next poll (DRMS) */
	char instance[24]; /* ferry__engine_instance() */
};

static double poll_interval(const struct ferry_engine *eng);
static json_t *error_reply(int rc, char *msg);

/* The backend sits in front of a DRMS, which queues and schedules. */
static int drms(const struct ferry_engine *eng)
{
	return (eng->be->flags & FERRY_BE_DRMS) != 0;
}

/* Error helper: fills err and returns code. */
static int fail(char *err, size_t errlen, int code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static int fail(char *err, size_t errlen, int code, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
	return code;
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

static void job_remove(struct ferry_engine *eng, struct job *j)
{
	struct job **p = &eng->htab[hslot(eng, j->id)];

	queue_remove(eng, j);
	for (; *p; p = &(*p)->hnext) {
		if (*p == j) {
			*p = j->hnext;
			eng->nactive--;
			break;
		}
	}
	job_free(j);
}

static int job_started(const struct job *j)
{
	return j->state == FERRY_RUNNING || j->state == FERRY_USER_SUSPENDED ||
	       j->state == FERRY_SYSTEM_SUSPENDED || j->state == FERRY_USER_SYSTEM_SUSPENDED;
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

void ferry__engine_job_ended(struct ferry_engine *eng, struct job *j, const struct job_result *r)
{
	struct job_result res = *r;
	enum ferry_job_status st;
	json_t *d = json_object_get(j->spec, "disposal_timeout_hours");
	double hours = json_is_integer(d) ? (double)json_integer_value(d) : 168;

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
	if (job_started(j))
		eng->used_slots -= j->cpus;
	if (j->dispose_requested) {
		ferry__db_delete_job(eng->db, j->id);
		remove_job_files(eng, j->id);
	} else {
		ferry__db_set_ended(eng->db, j->id, st, &res, res.ended_at + hours * eng->hour_s);
		ferry__transfer_job_ended(eng, j->id);
	}
	job_remove(eng, j);
}

static void end_unstarted(struct ferry_engine *eng, struct job *j, enum ferry_exit_status es,
			  const char *msg);

void ferry__engine_job_handed(struct ferry_engine *eng, struct job *j, const char *native_id)
{
	j->handed = 1;
	j->handing = 0;
	queue_remove(eng, j);
	ferry__engine_job_native_id(eng, j, native_id);
}

void ferry__engine_job_refused(struct ferry_engine *eng, struct job *j, const char *msg)
{
	j->handing = 0;
	end_unstarted(eng, j, FERRY_ABORTED, msg);
}

void ferry__engine_job_unhanded(struct ferry_engine *eng, struct job *j, const char *msg)
{
	if (j->handing)
		fprintf(stderr, "ferryd: cannot hand job %lld to %s now: %s\n", (long long)j->id,
			eng->be->name, msg);
	j->handing = 0;
	if (wants_queue(eng, j))
		queue_append(eng, j);
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

void ferry__engine_job_state(struct ferry_engine *eng, struct job *j, enum ferry_job_status st,
			     double at)
{
	if (st == j->state)
		return;
	if (st == FERRY_RUNNING && !job_started(j)) {
		j->started_at = at > 0 ? at : ferry__now();
		ferry__db_set_started(eng->db, j->id, j->started_at, j->native_id);
		j->state = st;
		return;
	}
	j->state = st;
	ferry__db_set_state(eng->db, j->id, st);
}

/* Ends a job that never started (killed or refused before its start). */
static void end_unstarted(struct ferry_engine *eng, struct job *j, enum ferry_exit_status es,
			  const char *msg)
{
	struct job_result r = {
	    .exit_status = es,
	    .cpu_user = -1,
	    .cpu_sys = -1,
	    .wall = -1,
	    .max_rss_kb = -1,
	};

	snprintf(r.message, sizeof(r.message), "%s", msg);
	ferry__engine_job_ended(eng, j, &r);
}

/* ---- spec validation ---- */

static const char *const spec_keys[] = {
    "argv",
    "name",
    "working_directory",
    "stdin_path",
    "stdout_path",
    "stderr_path",
    "join_stderrout",
    "env",
    "referenced_input_files",
    "referenced_output_files",
    "disposal_timeout_hours",
    "cpus",
    "memory_mb",
    "walltime_s",
    "queue",
    "native_specification",
    "hold",
    "submission_key",
};

static int check_keys(json_t *o, const char *const *keys, size_t n, const char *what, char *err,
		      size_t errlen)
{
	const char *k;
	json_t *v;

	json_object_foreach(o, k, v)
	{
		size_t i;
		for (i = 0; i < n; i++)
			if (!strcmp(k, keys[i]))
				break;
		if (i == n)
			return fail(err, errlen, FERRY_EINVAL, "unknown field '%s' in %s", k, what);
	}
	return 0;
}

/* A JSON string without NUL bytes, or absent/null. */
static int opt_string(json_t *spec, const char *key, size_t max, const char **out, char *err,
		      size_t errlen)
{
	json_t *v = json_object_get(spec, key);

	*out = NULL;
	if (!v || json_is_null(v))
		return 0;
	if (!json_is_string(v))
		return fail(err, errlen, FERRY_EINVAL, "'%s' must be a string", key);
	if (strlen(json_string_value(v)) != json_string_length(v))
		return fail(err, errlen, FERRY_EINVAL, "'%s' contains a NUL byte", key);
	if (json_string_length(v) > max)
		return fail(err, errlen, FERRY_EINVAL, "'%s' is longer than %zu bytes", key, max);
	*out = json_string_value(v);
	return 0;
}

static int opt_int(json_t *spec, const char *key, json_int_t min, json_int_t max, json_int_t dflt,
		   json_int_t *out, char *err, size_t errlen)
{
	json_t *v = json_object_get(spec, key);

	*out = dflt;
	if (!v || json_is_null(v))
		return 0;
	if (!json_is_integer(v))
		return fail(err, errlen, FERRY_EINVAL, "'%s' must be an integer", key);
	*out = json_integer_value(v);
	if (*out < min || *out > max)
		return fail(err, errlen, FERRY_EINVAL, "'%s' is %lld, not between %lld and %lld",
			    key, (long long)*out, (long long)min, (long long)max);
	return 0;
}

static int opt_bool(json_t *spec, const char *key, int *out, char *err, size_t errlen)
{
	json_t *v = json_object_get(spec, key);

	*out = 0;
	if (!v || json_is_null(v))
		return 0;
	if (!json_is_boolean(v))
		return fail(err, errlen, FERRY_EINVAL, "'%s' must be true or false", key);
	*out = json_is_true(v);
	return 0;
}

/* Absolute path of p (relative to cwd); malloc'd. */
static char *resolve(const char *cwd, const char *p)
{
	return p[0] == '/' ? strdup(p) : ferry__asprintf("%s/%s", cwd, p);
}

/* Checks a string array and resolves its paths when cwd != NULL. */
static int string_array(json_t *spec, const char *key, const char *cwd, size_t *bytes, json_t **out,
			char *err, size_t errlen)
{
	json_t *v = json_object_get(spec, key), *a, *e;
	size_t i;

	*out = NULL;
	if (!v || json_is_null(v))
		return 0;
	if (!json_is_array(v))
		return fail(err, errlen, FERRY_EINVAL, "'%s' must be an array of strings", key);
	a = json_array();
	if (!a)
		return fail(err, errlen, FERRY_ENOMEM, "out of memory");
	json_array_foreach(v, i, e)
	{
		const char *s;
		char *r;

		if (!json_is_string(e)) {
			json_decref(a);
			return fail(err, errlen, FERRY_EINVAL, "'%s'[%zu] is not a string", key, i);
		}
		s = json_string_value(e);
		if (strlen(s) != json_string_length(e)) {
			json_decref(a);
			return fail(err, errlen, FERRY_EINVAL, "'%s'[%zu] contains a NUL byte", key,
				    i);
		}
		if (json_string_length(e) > MAX_ARG_BYTES) {
			json_decref(a);
			return fail(err, errlen, FERRY_EINVAL,
				    "'%s'[%zu] is longer than %d bytes (the kernel's limit)", key,
				    i, MAX_ARG_BYTES);
		}
		if (bytes)
			*bytes += json_string_length(e) + 1;
		r = cwd ? resolve(cwd, s) : strdup(s);
		if (!r || json_array_append_new(a, json_string(r))) {
			free(r);
			json_decref(a);
			return fail(err, errlen, FERRY_ENOMEM, "out of memory");
		}
		free(r);
	}
	*out = a;
	return 0;
}

static int check_env(json_t *env, char *err, size_t errlen)
{
	size_t i;
	json_t *e;

	json_array_foreach(env, i, e)
	{
		const char *s = json_string_value(e), *eq = strchr(s, '=');
		if (!eq || eq == s)
			return fail(err, errlen, FERRY_EINVAL,
				    "environment entry '%s' is not NAME=value", s);
		for (const char *p = s; p < eq; p++)
			if (!(*p == '_' || (*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z') ||
			      (p > s && *p >= '0' && *p <= '9')))
				return fail(err, errlen, FERRY_EINVAL,
					    "invalid environment variable name in '%s'", s);
	}
	return 0;
}

static int check_dir_of(const char *what, const char *path, char *err, size_t errlen)
{
	char *d = strdup(path), *slash;
	struct stat st;
	int rc = 0;

	if (!d)
		return fail(err, errlen, FERRY_ENOMEM, "out of memory");
	slash = strrchr(d, '/');
	if (slash == d)
		slash[1] = '\0';
	else if (slash)
		*slash = '\0';
	if (stat(d, &st) < 0 || !S_ISDIR(st.st_mode))
		rc = fail(err, errlen, FERRY_EINVAL, "directory of %s '%s' does not exist", what,
			  path);
	free(d);
	return rc;
}

static int set_path(json_t *o, const char *key, const char *cwd, const char *p)
{
	char *r;
	int rc;

	if (!p)
		return 0;
	r = resolve(cwd, p);
	if (!r)
		return -1;
	rc = json_object_set_new(o, key, json_string(r));
	free(r);
	return rc;
}

/* Validates the path fields of a spec and copies them, resolved, into n. */
static int normalise_paths(json_t *spec, json_t *n, const char **cwd_out, char *err, size_t errlen)
{
	const char *cwd, *in, *out, *errp;
	struct stat st;
	int rc, fd;

	if ((rc = opt_string(spec, "working_directory", PATH_MAX, &cwd, err, errlen)) ||
	    (rc = opt_string(spec, "stdin_path", PATH_MAX, &in, err, errlen)) ||
	    (rc = opt_string(spec, "stdout_path", PATH_MAX, &out, err, errlen)) ||
	    (rc = opt_string(spec, "stderr_path", PATH_MAX, &errp, err, errlen)))
		return rc;
	if (!cwd)
		return fail(err, errlen, FERRY_EINVAL, "'working_directory' is required");
	if (cwd[0] != '/')
		return fail(err, errlen, FERRY_EINVAL, "working directory '%s' is not absolute",
			    cwd);
	if (stat(cwd, &st) < 0 || !S_ISDIR(st.st_mode))
		return fail(err, errlen, FERRY_EINVAL, "working directory '%s' does not exist",
			    cwd);
	json_object_set_new(n, "working_directory", json_string(cwd));
	if (in) {
		char *p = resolve(cwd, in);
		if (!p)
			return fail(err, errlen, FERRY_ENOMEM, "out of memory");
		fd = open(p, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
		if (fd < 0 || fstat(fd, &st) < 0 || S_ISDIR(st.st_mode)) {
			rc =
			    fail(err, errlen, FERRY_EINVAL, "stdin '%s' is not a readable file: %s",
				 p, fd < 0 ? strerror(errno) : "is a directory");
			if (fd >= 0)
				close(fd);
			free(p);
			return rc;
		}
		close(fd);
		free(p);
	}
	if (set_path(n, "stdin_path", cwd, in) || set_path(n, "stdout_path", cwd, out) ||
	    set_path(n, "stderr_path", cwd, errp))
		return fail(err, errlen, FERRY_ENOMEM, "out of memory");
	if (out &&
	    (rc = check_dir_of("stdout", json_string_value(json_object_get(n, "stdout_path")), err,
			       errlen)))
		return rc;
	if (errp &&
	    (rc = check_dir_of("stderr", json_string_value(json_object_get(n, "stderr_path")), err,
			       errlen)))
		return rc;
	*cwd_out = cwd;
	return 0;
}

static int normalise_arrays(struct ferry_engine *eng, json_t *spec, json_t *n, const char *cwd,
			    char *err, size_t errlen)
{
	json_t *argv, *env, *inputs, *outputs;
	size_t bytes = 0, i;
	json_t *e;
	int rc;

	if ((rc = string_array(spec, "argv", NULL, &bytes, &argv, err, errlen)))
		return rc;
	json_object_set_new(n, "argv", argv ? argv : json_array());
	if (!argv || json_array_size(argv) == 0)
		return fail(err, errlen, FERRY_EINVAL, "'argv' must hold at least the command");
	if (!json_string_length(json_array_get(argv, 0)))
		return fail(err, errlen, FERRY_EINVAL, "the command (argv[0]) is empty");
	if ((rc = string_array(spec, "env", NULL, &bytes, &env, err, errlen)))
		return rc;
	json_object_set_new(n, "env", env ? env : json_array());
	if (env && (rc = check_env(env, err, errlen)))
		return rc;
	if (bytes > MAX_CMD_BYTES)
		return fail(err, errlen, FERRY_EINVAL,
			    "command line and environment take %zu bytes, over the %d byte limit",
			    bytes, MAX_CMD_BYTES);
	if ((rc = string_array(spec, "referenced_input_files", cwd, NULL, &inputs, err, errlen)))
		return rc;
	json_object_set_new(n, "referenced_input_files", inputs ? inputs : json_array());
	json_array_foreach(inputs, i, e)
	{
		/* a transfer may still be on its way: the job then waits for it */
		int64_t tid;
		int ready;
		rc = ferry__transfer_lookup(eng, json_string_value(e), &tid, &ready, err, errlen);
		if (rc < 0)
			return rc;
		if (rc == 0 && access(json_string_value(e), F_OK) < 0)
			return fail(err, errlen, FERRY_EINVAL,
				    "referenced input file '%s' does not exist",
				    json_string_value(e));
	}
	if ((rc = string_array(spec, "referenced_output_files", cwd, NULL, &outputs, err, errlen)))
		return rc;
	json_object_set_new(n, "referenced_output_files", outputs ? outputs : json_array());
	json_array_foreach(outputs, i, e)
	{
		int64_t tid;
		int ready;
		rc = ferry__transfer_lookup(eng, json_string_value(e), &tid, &ready, err, errlen);
		if (rc < 0)
			return rc;
	}
	return 0;
}

static int normalise_scalars(struct ferry_engine *eng, json_t *spec, json_t *n, char *err,
			     size_t errlen)
{
	json_int_t disposal, cpus, mem, wall;
	int join, hold, rc, slots = eng->be->slots ? eng->be->slots(eng->be_self) : 0;
	const char *name, *queue, *native, *key;

	if ((rc = opt_string(spec, "name", 1024, &name, err, errlen)) ||
	    (rc = opt_string(spec, "queue", 256, &queue, err, errlen)) ||
	    (rc = opt_string(spec, "native_specification", 65536, &native, err, errlen)) ||
	    (rc = opt_string(spec, "submission_key", 128, &key, err, errlen)) ||
	    (rc = opt_int(spec, "disposal_timeout_hours", 1, 87600, 168, &disposal, err, errlen)) ||
	    (rc = opt_int(spec, "cpus", 1, 1 << 20, 1, &cpus, err, errlen)) ||
	    (rc = opt_int(spec, "memory_mb", 0, (json_int_t)1 << 30, 0, &mem, err, errlen)) ||
	    (rc = opt_int(spec, "walltime_s", 0, 366 * 86400, 0, &wall, err, errlen)) ||
	    (rc = opt_bool(spec, "join_stderrout", &join, err, errlen)) ||
	    (rc = opt_bool(spec, "hold", &hold, err, errlen)))
		return rc;
	if (key && !*key)
		return fail(err, errlen, FERRY_EINVAL, "'submission_key' is empty");
	if (slots > 0 && cpus > slots)
		return fail(err, errlen, FERRY_ERESOURCE,
			    "the job asks for %lld cpus but resource '%s' has %d slots",
			    (long long)cpus, eng->resource, slots);
	json_object_set_new(n, "name", name ? json_string(name) : json_null());
	json_object_set_new(n, "queue", queue ? json_string(queue) : json_null());
	json_object_set_new(n, "native_specification", native ? json_string(native) : json_null());
	json_object_set_new(n, "submission_key", key ? json_string(key) : json_null());
	json_object_set_new(n, "disposal_timeout_hours", json_integer(disposal));
	json_object_set_new(n, "cpus", json_integer(cpus));
	json_object_set_new(n, "memory_mb", json_integer(mem));
	json_object_set_new(n, "walltime_s", json_integer(wall));
	json_object_set_new(n, "join_stderrout", json_boolean(join));
	json_object_set_new(n, "hold", json_boolean(hold));
	json_object_set_new(n, "backend", json_string(eng->be->name));
	json_object_set_new(n, "resource", json_string(eng->resource));
	return 0;
}

/* Returns a normalised copy of spec (resolved paths, defaults), or NULL. */
static json_t *normalise_spec(struct ferry_engine *eng, json_t *spec, char *err, size_t errlen,
			      int *code)
{
	json_t *n = json_object();
	const char *cwd = NULL;
	int rc;

	if (!n) {
		*code = fail(err, errlen, FERRY_ENOMEM, "out of memory");
		return NULL;
	}
	if (!json_is_object(spec)) {
		rc = fail(err, errlen, FERRY_EINVAL, "a job spec must be a json object");
		goto bad;
	}
	if ((rc = check_keys(spec, spec_keys, FERRY_ARRAY_SIZE(spec_keys), "job spec", err,
			     errlen)) ||
	    (rc = normalise_scalars(eng, spec, n, err, errlen)) ||
	    (rc = normalise_paths(spec, n, &cwd, err, errlen)) ||
	    (rc = normalise_arrays(eng, spec, n, cwd, err, errlen)))
		goto bad;
	if (eng->be->check && (rc = eng->be->check(eng->be_self, n, err, errlen)))
		goto bad;
	return n;
bad:
	json_decref(n);
	*code = rc;
	return NULL;
}

/* ---- requests ---- */

struct req {
	struct ferry_engine *eng;
	struct ferry_conn_s *c;
	json_t *in;
	json_t *out;
	struct ferry_bin bin;
	int deferred;
	char err[1024];
};

static int get_id(struct req *r, const char *key, int64_t *id)
{
	json_t *v = json_object_get(r->in, key);

	if (!v)
		return fail(r->err, sizeof(r->err), FERRY_EINVAL, "missing field '%s'", key);
	if (!json_is_integer(v) || json_integer_value(v) < 1)
		return fail(r->err, sizeof(r->err), FERRY_EINVAL, "'%s' must be a positive integer",
			    key);
	*id = json_integer_value(v);
	return 0;
}

static int allow(struct req *r, const char *const *keys, size_t n)
{
	const char *k;
	json_t *v;

	json_object_foreach(r->in, k, v)
	{
		size_t i;
		if (!strcmp(k, "op"))
			continue;
		for (i = 0; i < n; i++)
			if (!strcmp(k, keys[i]))
				break;
		if (i == n)
			return fail(r->err, sizeof(r->err), FERRY_EINVAL,
				    "unknown field '%s' in request '%s'", k,
				    json_string_value(json_object_get(r->in, "op")));
	}
	return 0;
}

#define ALLOW(r, ...)                                                                              \
	do {                                                                                       \
		static const char *const k_[] = {__VA_ARGS__};                                     \
		int rc_ = allow(r, k_, FERRY_ARRAY_SIZE(k_));                                      \
		if (rc_)                                                                           \
			return rc_;                                                                \
	} while (0)

static int job_status(struct ferry_engine *eng, int64_t id, enum ferry_job_status *st)
{
	struct job *j = ferry__engine_job(eng, id);

	if (j) {
		if (j->dispose_requested)
			return FERRY_ENOJOB;
		if (j->handed && !job_started(j) && eng->be->refresh)
			eng->be->refresh(eng->be_self, j);
		*st = j->state;
		return 0;
	}
	return ferry__db_status(eng->db, id, st);
}

static int no_job(struct req *r, int64_t id)
{
	return fail(r->err, sizeof(r->err), FERRY_ENOJOB, "no job %lld on resource '%s'",
		    (long long)id, r->eng->resource);
}

/* The "id" field of the request, naming a job that exists; its status. */
static int get_job_id(struct req *r, int64_t *id, enum ferry_job_status *st)
{
	int rc = get_id(r, "id", id);

	if (rc)
		return rc;
	rc = job_status(r->eng, *id, st);
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
			if ((rc = ferry__db_ref_add(eng->db, tid, id, role)))
				return rc;
			pending += role == 0 && !ready;
		}
	}
	return pending;
}

static int op_submit_one(struct req *r, json_t *spec, size_t idx, int64_t *id)
{
	struct ferry_engine *eng = r->eng;
	char msg[900];
	int code = 0;
	json_t *n = normalise_spec(eng, spec, msg, sizeof(msg), &code);
	const char *key;
	struct job *j;
	char *text;
	int hold, rc;

	if (!n)
		return fail(r->err, sizeof(r->err), code, "job %zu: %s", idx, msg);
	key = json_string_value(json_object_get(n, "submission_key"));
	if (key && (rc = ferry__db_find_key(eng->db, key, id)) != 0) {
		json_decref(n);
		return rc < 0 ? fail(r->err, sizeof(r->err), rc, "database error") : 0;
	}
	hold = json_is_true(json_object_get(n, "hold"));
	text = json_dumps(n, JSON_COMPACT);
	j = calloc(1, sizeof(*j));
	if (!text || !j) {
		free(text);
		free(j);
		json_decref(n);
		return fail(r->err, sizeof(r->err), FERRY_ENOMEM, "out of memory");
	}
	rc =
	    ferry__db_insert_job(eng->db, key, json_string_value(json_object_get(n, "name")), text,
				 hold ? FERRY_USER_ON_HOLD : FERRY_QUEUED_ACTIVE, ferry__now(), id);
	free(text);
	if (rc) {
		free(j);
		json_decref(n);
		return fail(r->err, sizeof(r->err), rc, "cannot record the job in the database");
	}
	j->id = *id;
	j->state = hold ? FERRY_USER_ON_HOLD : FERRY_QUEUED_ACTIVE;
	rc = link_transfers(eng, *id, n);
	if (rc < 0) {
		free(j);
		json_decref(n);
		return fail(r->err, sizeof(r->err), rc, "cannot record the job's transfers");
	}
	if (rc > 0) { /* inputs on their way */
		j->state = hold ? FERRY_USER_SYSTEM_ON_HOLD : FERRY_SYSTEM_ON_HOLD;
		ferry__db_set_state(eng->db, *id, j->state);
	}
	j->cpus = (int)json_integer_value(json_object_get(n, "cpus"));
	j->spec = n;
	/*
	 * Not started before the insert is committed: a crash before the
	 * commit would otherwise give this id, and the claim of a job that
	 * ran, to the next job submitted.
	 */
	j->fresh = 1;
	eng->nfresh++;
	if (job_add(eng, j) < 0) {
		job_free(j);
		return fail(r->err, sizeof(r->err), FERRY_ENOMEM, "out of memory");
	}
	return 0;
}

static int op_submit(struct req *r)
{
	json_t *jobs = json_object_get(r->in, "jobs"), *ids, *spec;
	size_t i, n;
	int64_t *newids;
	int rc = 0;

	ALLOW(r, "jobs");
	if (!json_is_array(jobs) || !(n = json_array_size(jobs)))
		return fail(r->err, sizeof(r->err), FERRY_EINVAL,
			    "'jobs' must be a non-empty array of job specs");
	if (n > MAX_SUBMIT)
		return fail(r->err, sizeof(r->err), FERRY_EINVAL,
			    "%zu jobs in one submit, over the limit of %d", n, MAX_SUBMIT);
	newids = calloc(n, sizeof(*newids));
	ids = json_array();
	if (!newids || !ids || ferry__db_savepoint(r->eng->db)) {
		free(newids);
		json_decref(ids);
		return fail(r->err, sizeof(r->err), FERRY_EINTERNAL, "cannot start a transaction");
	}
	json_array_foreach(jobs, i, spec)
	{
		if ((rc = op_submit_one(r, spec, i, &newids[i])))
			break;
		json_array_append_new(ids, json_integer(newids[i]));
	}
	if (rc) {
		/* all or none: forget the jobs this request created */
		for (size_t k = 0; k < i; k++) {
			struct job *j = ferry__engine_job(r->eng, newids[k]);
			if (j && j->fresh && !j->in_queue && !job_started(j)) {
				r->eng->nfresh--;
				job_remove(r->eng, j);
			}
		}
		ferry__db_rollback_savepoint(r->eng->db);
		json_decref(ids);
		free(newids);
		return rc;
	}
	ferry__db_release(r->eng->db);
	for (i = 0; i < n; i++) {
		struct job *j = ferry__engine_job(r->eng, newids[i]);
		if (j && wants_queue(r->eng, j))
			queue_append(r->eng, j);
	}
	free(newids);
	json_object_set_new(r->out, "ids", ids);
	return 0;
}

static int op_status(struct req *r)
{
	enum ferry_job_status st;
	int64_t id;
	int rc;

	ALLOW(r, "id");
	if ((rc = get_job_id(r, &id, &st)))
		return rc;
	json_object_set_new(r->out, "status", json_string(ferry_status_name(st)));
	return 0;
}

static void default_path(struct ferry_engine *eng, json_t *o, const char *key, int64_t id,
			 const char *stream)
{
	char *p;

	if (!json_is_null(json_object_get(o, key)))
		return;
	p = ferry__asprintf("%s/%lld/%s", eng->jobs_dir, (long long)id, stream);
	if (p)
		json_object_set_new(o, key, json_string(p));
	free(p);
}

/* Fills the effective output paths the engine uses by default. */
static void fix_paths(struct ferry_engine *eng, json_t *o)
{
	int64_t id = json_integer_value(json_object_get(o, "id"));

	default_path(eng, o, "stdout_path", id, "stdout");
	if (!json_is_true(json_object_get(o, "join_stderrout")))
		default_path(eng, o, "stderr_path", id, "stderr");
}

/* Live fields of an active job override what the database had. */
static void overlay_active(struct ferry_engine *eng, json_t *o)
{
	struct job *j = ferry__engine_job(eng, json_integer_value(json_object_get(o, "id")));

	if (!j)
		return;
	json_object_set_new(o, "status", json_string(ferry_status_name(j->state)));
	if (j->started_at > 0)
		json_object_set_new(o, "started_at", json_real(j->started_at));
	if (j->native_id)
		json_object_set_new(o, "native_id", json_string(j->native_id));
}

static int op_info(struct req *r)
{
	json_t *o;
	int64_t id;
	int rc;

	ALLOW(r, "id");
	if ((rc = get_id(r, "id", &id)))
		return rc;
	if (ferry__engine_job(r->eng, id) && ferry__engine_job(r->eng, id)->dispose_requested)
		return no_job(r, id);
	rc = ferry__db_job_json(r->eng->db, id, &o);
	if (rc == FERRY_ENOJOB)
		return no_job(r, id);
	if (rc)
		return fail(r->err, sizeof(r->err), rc, "cannot read job %lld", (long long)id);
	fix_paths(r->eng, o);
	overlay_active(r->eng, o);
	json_object_set_new(r->out, "job", o);
	return 0;
}

static int op_jobs(struct req *r)
{
	json_t *st = json_object_get(r->in, "state"), *d = json_object_get(r->in, "detail");
	enum ferry_job_status s;
	int state = -1, detail = 0, rc;
	json_t *a, *e;
	size_t i;

	ALLOW(r, "state", "detail");
	a = json_array();
	if (st && !json_is_null(st)) {
		if (!json_is_string(st) || ferry_status_from_name(json_string_value(st), &s)) {
			json_decref(a);
			return fail(r->err, sizeof(r->err), FERRY_EINVAL, "unknown job state '%s'",
				    json_is_string(st) ? json_string_value(st) : "?");
		}
		state = (int)s;
	}
	if (d && !json_is_boolean(d)) {
		json_decref(a);
		return fail(r->err, sizeof(r->err), FERRY_EINVAL, "'detail' must be a boolean");
	}
	detail = json_is_true(d);
	if ((rc = ferry__db_list(r->eng->db, state, detail, a))) {
		json_decref(a);
		return fail(r->err, sizeof(r->err), rc, "cannot list jobs");
	}
	if (detail) {
		json_array_foreach(a, i, e)
		{
			fix_paths(r->eng, e);
			overlay_active(r->eng, e);
		}
	}
	json_object_set_new(r->out, detail ? "jobs" : "ids", a);
	return 0;
}

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

static int op_wait(struct req *r)
{
	json_t *ids = json_object_get(r->in, "ids"), *t = json_object_get(r->in, "timeout"), *e;
	struct waiter *w;
	enum ferry_job_status st;
	size_t i;
	int rc;

	ALLOW(r, "ids", "timeout");
	if (!json_is_array(ids) || json_array_size(ids) > MAX_WAIT_IDS)
		return fail(r->err, sizeof(r->err), FERRY_EINVAL, "'ids' must be an array of ids");
	if (t && !json_is_number(t))
		return fail(r->err, sizeof(r->err), FERRY_EINVAL, "'timeout' must be a number");
	w = calloc(1, sizeof(*w));
	if (!w || !(w->ids = calloc(json_array_size(ids) + 1, sizeof(*w->ids)))) {
		free(w);
		return fail(r->err, sizeof(r->err), FERRY_ENOMEM, "out of memory");
	}
	json_array_foreach(ids, i, e)
	{
		if (!json_is_integer(e) || json_integer_value(e) < 1) {
			waiter_free(w);
			return fail(r->err, sizeof(r->err), FERRY_EINVAL,
				    "'ids'[%zu] is not a job id", i);
		}
		w->ids[i] = json_integer_value(e);
		if ((rc = job_status(r->eng, w->ids[i], &st))) {
			int64_t id = w->ids[i];
			waiter_free(w);
			return rc == FERRY_ENOJOB ? no_job(r, id) : rc;
		}
	}
	w->n = json_array_size(ids);
	w->c = r->c;
	w->deadline = -1;
	if (t && json_number_value(t) >= 0)
		w->deadline = ferry__mono() + json_number_value(t);
	if (waiter_done(r->eng, w)) {
		waiter_free(w);
		return 0;
	}
	w->next = r->eng->waiters;
	r->eng->waiters = w;
	r->deferred = 1;
	return 0;
}

static void wake_waiters(struct ferry_engine *eng)
{
	struct waiter **p = &eng->waiters;
	double now = ferry__mono();

	while (*p) {
		struct waiter *w = *p;
		json_t *reply = NULL;

		if (waiter_done(eng, w)) {
			reply = json_pack("{s:b}", "ok", 1);
		} else if (w->deadline >= 0 && now >= w->deadline) {
			reply = json_pack("{s:b,s:s,s:i,s:s}", "ok", 0, "error", "ETIMEDOUT",
					  "code", FERRY_ETIMEDOUT, "message",
					  "timed out waiting for the jobs to end");
		}
		if (!reply) {
			p = &w->next;
			continue;
		}
		*p = w->next;
		ferry__conn_reply(w->c, reply);
		json_decref(reply);
		waiter_free(w);
	}
}

void ferry__engine_conn_closed(struct ferry_engine *eng, struct ferry_conn_s *c)
{
	struct waiter **p = &eng->waiters;
	struct parked **pp = &eng->parked;

	for (struct ferry_ctl *t = eng->ctls; t; t = t->next)
		if (t->c == c)
			t->c = NULL; /* it goes on; nobody hears of it */
	eng->parked_tail = &eng->parked;
	while (*pp) {
		struct parked *k = *pp;
		if (k->c == c) {
			*pp = k->next;
			json_decref(k->req);
			free(k);
		} else {
			pp = &k->next;
			eng->parked_tail = &k->next;
		}
	}

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
	if (ctl == CTL_TERMINATE && !job_started(j))
		end_unstarted(eng, j, FERRY_KILLED_BY_USER, "killed by user before it started");
}

/*
 * Asks the backend; a backend that must ask its DRMS answers later
 * (ferry__engine_control_done), and so does the request then.
 */
static int control_started(struct req *r, struct job *j, enum backend_ctl ctl,
			   enum ferry_job_status to)
{
	struct ferry_engine *eng = r->eng;
	struct ferry_ctl *t;
	char msg[512] = "";
	int rc;

	if (!eng->be->control)
		return fail(r->err, sizeof(r->err), FERRY_EUNSUPPORTED,
			    "backend '%s' cannot control running jobs", eng->be->name);
	if (!(t = calloc(1, sizeof(*t))))
		return fail(r->err, sizeof(r->err), FERRY_ENOMEM, "out of memory");
	*t = (struct ferry_ctl){
	    .c = r->c, .id = j->id, .ctl = ctl, .to = to, .with_status = !j->dispose_requested};
	rc = eng->be->control(eng->be_self, j, ctl, t, msg, sizeof(msg));
	if (rc == FERRY__PENDING) {
		t->next = eng->ctls;
		eng->ctls = t;
		r->deferred = 1;
		return 0;
	}
	free(t);
	if (rc)
		return fail(r->err, sizeof(r->err), rc, "job %lld: %s", (long long)j->id, msg);
	control_applied(eng, j->id, ctl, to);
	return 0;
}

void ferry__engine_control_done(struct ferry_engine *eng, struct ferry_ctl *t, int rc,
				const char *msg)
{
	struct ferry_ctl **p = &eng->ctls;
	enum ferry_job_status st;
	json_t *reply;

	while (*p && *p != t)
		p = &(*p)->next;
	if (*p)
		*p = t->next;
	if (!rc)
		control_applied(eng, t->id, t->ctl, t->to);
	/* the answer acknowledges what changed: commit it durably first */
	ferry__db_need_durable(eng->db);
	if (t->c) {
		if (rc) {
			char err[640];
			snprintf(err, sizeof(err), "job %lld: %s", (long long)t->id, msg);
			reply = error_reply(rc, err);
		} else {
			reply = json_pack("{s:b}", "ok", 1);
			if (reply && t->with_status && !job_status(eng, t->id, &st))
				json_object_set_new(reply, "status",
						    json_string(ferry_status_name(st)));
		}
		ferry__conn_reply(t->c, reply);
		json_decref(reply);
	}
	free(t);
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

static int ended_error(struct req *r, int64_t id, const char *action)
{
	return fail(r->err, sizeof(r->err), FERRY_ESTATE, "job %lld has ended; cannot %s it",
		    (long long)id, action);
}

static int do_kill(struct req *r, struct job *j)
{
	j->kill_requested = 1;
	ferry__db_set_kill(r->eng->db, j->id, j->dispose_requested);
	/*
	 * A job being handed ends here too: the backend finds it gone when
	 * the DRMS answers, and cancels what the DRMS made of it.
	 */
	if (!job_started(j) && !j->handed) {
		end_unstarted(r->eng, j, FERRY_KILLED_BY_USER, "killed by user before it started");
		return 0;
	}
	return control_started(r, j, CTL_TERMINATE, FERRY_UNDETERMINED);
}

static int op_control(struct req *r)
{
	const char *action = json_string_value(json_object_get(r->in, "action"));
	enum ferry_job_status st;
	struct job *j;
	int64_t id;
	int rc;

	ALLOW(r, "id", "action");
	if ((rc = get_id(r, "id", &id)))
		return rc;
	if (!action)
		return fail(r->err, sizeof(r->err), FERRY_EINVAL, "missing field 'action'");
	if (strcmp(action, "stop") && strcmp(action, "restart") && strcmp(action, "hold") &&
	    strcmp(action, "release") && strcmp(action, "kill"))
		return fail(r->err, sizeof(r->err), FERRY_EINVAL,
			    "unknown action '%s' (stop, restart, hold, release, kill)", action);
	if ((rc = job_status(r->eng, id, &st)))
		return rc == FERRY_ENOJOB ? no_job(r, id) : rc;
	j = ferry__engine_job(r->eng, id);
	if (!j) { /* ended */
		if (!strcmp(action, "kill"))
			goto done;
		return ended_error(r, id, action);
	}
	if (j->handing && strcmp(action, "kill"))
		return FERRY__PENDING; /* where the DRMS puts it decides: asked again then */
	if (!strcmp(action, "kill")) {
		rc = do_kill(r, j);
	} else if (!strcmp(action, "stop") || !strcmp(action, "hold")) {
		if (j->handed && j->state == FERRY_QUEUED_ACTIVE)
			rc = control_started(r, j, CTL_HOLD, FERRY_USER_ON_HOLD);
		else if (j->handed && j->state == FERRY_SYSTEM_ON_HOLD) /* the DRMS holds it */
			rc = control_started(r, j, CTL_HOLD, FERRY_USER_SYSTEM_ON_HOLD);
		else if (j->state == FERRY_QUEUED_ACTIVE)
			set_state(r->eng, j, FERRY_USER_ON_HOLD);
		else if (j->state == FERRY_SYSTEM_ON_HOLD) /* also waiting for its inputs */
			set_state(r->eng, j, FERRY_USER_SYSTEM_ON_HOLD);
		else if (j->state == FERRY_RUNNING && !strcmp(action, "stop"))
			rc = control_started(r, j, CTL_SUSPEND, FERRY_USER_SUSPENDED);
		else if (job_started(j) && !strcmp(action, "hold"))
			rc = fail(r->err, sizeof(r->err), FERRY_ESTATE,
				  "job %lld has started; hold applies before the start (use stop)",
				  (long long)id);
	} else { /* restart, release */
		if (j->handed && j->state == FERRY_USER_ON_HOLD)
			rc = control_started(r, j, CTL_RELEASE, FERRY_QUEUED_ACTIVE);
		else if (j->handed && j->state == FERRY_USER_SYSTEM_ON_HOLD)
			rc = control_started(r, j, CTL_RELEASE, FERRY_SYSTEM_ON_HOLD);
		else if (j->state == FERRY_USER_ON_HOLD)
			set_state(r->eng, j, FERRY_QUEUED_ACTIVE);
		else if (j->state == FERRY_USER_SYSTEM_ON_HOLD)
			set_state(r->eng, j, FERRY_SYSTEM_ON_HOLD);
		else if (j->state == FERRY_USER_SUSPENDED && !strcmp(action, "restart"))
			rc = control_started(r, j, CTL_RESUME, FERRY_RUNNING);
		else if (job_started(j) && !strcmp(action, "release"))
			rc = fail(r->err, sizeof(r->err), FERRY_ESTATE,
				  "job %lld has started; release applies to held jobs",
				  (long long)id);
	}
	if (rc || r->deferred)
		return rc;
done:
	if ((rc = job_status(r->eng, id, &st)) == 0)
		json_object_set_new(r->out, "status", json_string(ferry_status_name(st)));
	return 0;
}

static int op_dispose(struct req *r)
{
	enum ferry_job_status st;
	struct job *j;
	int64_t id;
	int rc;

	ALLOW(r, "id");
	if ((rc = get_job_id(r, &id, &st)))
		return rc;
	j = ferry__engine_job(r->eng, id);
	if (j) {
		j->dispose_requested = 1;
		return do_kill(r, j);
	}
	if ((rc = ferry__db_delete_job(r->eng->db, id)))
		return fail(r->err, sizeof(r->err), rc, "cannot delete job %lld", (long long)id);
	remove_job_files(r->eng, id);
	return 0;
}

static int op_read(struct req *r)
{
	json_t *s = json_object_get(r->in, "stream"), *spec, *p;
	json_int_t off, max;
	const char *stream;
	char *text = NULL, *path = NULL;
	int ended = 0, rc, fd;
	int64_t id;
	ssize_t n;

	ALLOW(r, "id", "stream", "offset", "max");
	if ((rc = get_id(r, "id", &id)) ||
	    (rc = opt_int(r->in, "offset", 0, INT64_MAX, 0, &off, r->err, sizeof(r->err))) ||
	    (rc = opt_int(r->in, "max", 0, FERRY_READ_MAX, 65536, &max, r->err, sizeof(r->err))))
		return rc;
	stream = json_string_value(s);
	if (!stream || (strcmp(stream, "stdout") && strcmp(stream, "stderr")))
		return fail(r->err, sizeof(r->err), FERRY_EINVAL,
			    "'stream' must be \"stdout\" or \"stderr\"");
	if ((rc = ferry__db_spec(r->eng->db, id, &text, &ended)))
		return rc == FERRY_ENOJOB ? no_job(r, id) : rc;
	spec = json_loads(text, 0, NULL);
	free(text);
	if (!spec)
		return fail(r->err, sizeof(r->err), FERRY_EINTERNAL, "corrupt spec of job %lld",
			    (long long)id);
	if (!strcmp(stream, "stderr") && json_is_true(json_object_get(spec, "join_stderrout"))) {
		json_decref(spec);
		return fail(r->err, sizeof(r->err), FERRY_EINVAL,
			    "job %lld has stderr joined to stdout", (long long)id);
	}
	p = json_object_get(spec, !strcmp(stream, "stdout") ? "stdout_path" : "stderr_path");
	path = json_is_string(p)
		   ? strdup(json_string_value(p))
		   : ferry__asprintf("%s/%lld/%s", r->eng->jobs_dir, (long long)id, stream);
	json_decref(spec);
	r->bin.p = malloc(max ? (size_t)max : 1);
	if (!path || !r->bin.p) {
		free(path);
		return fail(r->err, sizeof(r->err), FERRY_ENOMEM, "out of memory");
	}
	n = 0;
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
	if (fd < 0 && errno != ENOENT) {
		rc = fail(r->err, sizeof(r->err), FERRY_EIO, "cannot open '%s': %s", path,
			  strerror(errno));
		free(path);
		return rc;
	}
	if (fd >= 0) {
		n = pread(fd, r->bin.p, (size_t)max, off);
		if (n < 0) {
			rc = fail(r->err, sizeof(r->err), FERRY_EIO, "cannot read '%s': %s", path,
				  strerror(errno));
			close(fd);
			free(path);
			return rc;
		}
		close(fd);
	}
	free(path);
	r->bin.len = (size_t)n;
	json_object_set_new(r->out, "size", json_integer(n));
	json_object_set_new(r->out, "ended", json_boolean(ended));
	return 0;
}

/* A remote client says which engine settings its configuration gives. */
static int check_expect(struct req *r)
{
	json_t *e = json_object_get(r->in, "expect"), *v;
	const char *sets[16];
	size_t i, n = 0;

	if (!e)
		return 0;
	if (!json_is_array(e) || json_array_size(e) >= FERRY_ARRAY_SIZE(sets)) {
		return fail(r->err, sizeof(r->err), FERRY_EINVAL,
			    "field 'expect' must be an array of at most %zu \"KEY=VALUE\" strings",
			    FERRY_ARRAY_SIZE(sets) - 1);
	}
	json_array_foreach(e, i, v)
	{
		if (!json_is_string(v)) {
			return fail(r->err, sizeof(r->err), FERRY_EINVAL,
				    "field 'expect' must hold strings");
		}
		sets[n++] = json_string_value(v);
	}
	sets[n] = NULL;
	if (ferry__cfg_check_settings(&r->eng->cfg, sets, r->err, sizeof(r->err)) < 0)
		return FERRY_ECONFIG;
	return 0;
}

static int op_hello(struct req *r)
{
	json_t *v = json_object_get(r->in, "version");

	ALLOW(r, "version", "client", "expect");
	if (!json_is_integer(v) || json_integer_value(v) != FERRY_PROTO_VERSION)
		return fail(r->err, sizeof(r->err), FERRY_EPROTO,
			    "client protocol version %lld is not supported (engine speaks %d)",
			    json_is_integer(v) ? (long long)json_integer_value(v) : -1LL,
			    FERRY_PROTO_VERSION);
	int rc = check_expect(r);
	if (rc)
		return rc;
	json_object_set_new(r->out, "protocol", json_integer(FERRY_PROTO_VERSION));
	json_object_set_new(r->out, "engine", json_string(FERRY_VERSION));
	json_object_set_new(r->out, "resource", json_string(r->eng->resource));
	json_object_set_new(r->out, "backend", json_string(r->eng->be->name));
	json_object_set_new(r->out, "pid", json_integer(getpid()));
	return 0;
}

static int op_ping(struct req *r)
{
	ALLOW(r, "");
	return 0;
}

static int op_shutdown(struct req *r)
{
	ALLOW(r, "");
	r->eng->shutdown = 1;
	return 0;
}

static const struct {
	const char *name;
	int (*fn)(struct req *r);
	int mutates; /* its reply acknowledges a change: commit durably */
} ops[] = {
    {"hello", op_hello, 0},   {"ping", op_ping, 0},	    {"submit", op_submit, 1},
    {"status", op_status, 0}, {"info", op_info, 0},	    {"jobs", op_jobs, 0},
    {"wait", op_wait, 0},     {"control", op_control, 1},   {"dispose", op_dispose, 1},
    {"read", op_read, 0},     {"shutdown", op_shutdown, 0},
};

/* An error reply; never NULL, which would read as a deferred one. */
static json_t *error_reply(int rc, char *msg)
{
	json_t *reply;
	/* a message cut by its buffer inside a UTF-8 character */
	size_t el = strlen(msg);

	while (el && !ferry__valid_utf8(msg, el))
		msg[--el] = '\0';
	reply = json_pack("{s:b,s:s,s:i,s:s}", "ok", 0, "error", ferry__error_name(rc), "code", rc,
			  "message", msg);
	if (!reply)
		reply = json_pack("{s:b,s:s,s:i,s:s}", "ok", 0, "error", "EINTERNAL", "code",
				  FERRY_EINTERNAL, "message", "cannot encode the error reply");
	return reply;
}

/* The request waits for the backend (FERRY__PENDING): it runs again when ready. */
static int park(struct ferry_engine *eng, struct ferry_conn_s *c, json_t *req)
{
	struct parked *p = calloc(1, sizeof(*p));

	if (!p)
		return -1;
	p->c = c;
	p->req = json_incref(req);
	*eng->parked_tail = p;
	eng->parked_tail = &p->next;
	return 0;
}

void ferry__engine_backend_ready(struct ferry_engine *eng)
{
	struct parked *list = eng->parked;

	eng->parked = NULL;
	eng->parked_tail = &eng->parked;
	while (list) {
		struct parked *p = list;
		struct ferry_bin bin;
		json_t *reply;

		list = p->next;
		ferry__engine_request(eng, p->c, p->req, NULL, 0, &reply, &bin);
		ferry__bin_release(&bin); /* no request that may park answers with data */
		if (reply) {
			ferry__conn_reply(p->c, reply);
			json_decref(reply);
		}
		json_decref(p->req);
		free(p);
	}
}

void ferry__engine_request(struct ferry_engine *eng, struct ferry_conn_s *c, json_t *req,
			   const void *data, size_t datalen, json_t **reply, struct ferry_bin *bin)
{
	struct req r = {.eng = eng, .c = c, .in = req, .bin = FERRY_BIN_INIT};
	const char *op = json_string_value(json_object_get(req, "op"));
	int rc = FERRY_EINVAL;

	*bin = (struct ferry_bin)FERRY_BIN_INIT;
	r.out = json_object();
	if (!op) {
		fail(r.err, sizeof(r.err), FERRY_EINVAL, "request has no 'op' string");
		goto out;
	}
	if (ferry__transfer_is_op(op)) {
		rc = ferry__transfer_request(eng, op, req, r.out, data, datalen, &r.bin, r.err,
					     sizeof(r.err));
		goto out;
	}
	if (datalen) {
		rc = fail(r.err, sizeof(r.err), FERRY_EINVAL, "request '%s' takes no binary data",
			  op);
		goto out;
	}
	for (size_t i = 0; i < FERRY_ARRAY_SIZE(ops); i++) {
		if (!strcmp(op, ops[i].name)) {
			rc = ops[i].fn(&r);
			if (ops[i].mutates)
				ferry__db_need_durable(eng->db);
			goto out;
		}
	}
	fail(r.err, sizeof(r.err), FERRY_EINVAL, "unknown request '%s'", op);
out:
	if (rc == FERRY__PENDING && park(eng, c, req) == 0) {
		r.deferred = 1;
		rc = 0;
	} else if (rc == FERRY__PENDING) {
		rc = fail(r.err, sizeof(r.err), FERRY_ENOMEM, "out of memory");
	}
	if (rc) {
		json_decref(r.out);
		ferry__bin_release(&r.bin);
		*reply = error_reply(rc, r.err);
		return;
	}
	if (r.deferred) {
		json_decref(r.out);
		ferry__bin_release(&r.bin);
		*reply = NULL;
		return;
	}
	json_object_set_new(r.out, "ok", json_true());
	*reply = r.out;
	*bin = r.bin;
}

void ferry__bin_release(struct ferry_bin *b)
{
	free(b->p);
	if (b->fd >= 0)
		close(b->fd);
	*b = (struct ferry_bin)FERRY_BIN_INIT;
}

/* ---- transfers a job waits for (transfer.c) ---- */

const char *ferry__engine_transfer_root(struct ferry_engine *eng)
{
	return eng->tr_root;
}

int ferry__engine_transfer_root_fd(struct ferry_engine *eng)
{
	return eng->tr_root_fd;
}

double ferry__engine_hour(struct ferry_engine *eng)
{
	return eng->hour_s;
}

void ferry__engine_inputs_changed(struct ferry_engine *eng, int64_t tid)
{
	int64_t *ids = NULL;
	size_t n = 0;

	if (ferry__db_ref_jobs(eng->db, tid, 0, &ids, &n))
		return;
	for (size_t i = 0; i < n; i++) {
		struct job *j = ferry__engine_job(eng, ids[i]);
		if (!j ||
		    (j->state != FERRY_SYSTEM_ON_HOLD && j->state != FERRY_USER_SYSTEM_ON_HOLD))
			continue;
		if (ferry__db_ref_pending(eng->db, j->id) != 0)
			continue;
		set_state(eng, j,
			  j->state == FERRY_SYSTEM_ON_HOLD ? FERRY_QUEUED_ACTIVE
							   : FERRY_USER_ON_HOLD);
	}
	free(ids);
}

void ferry__engine_inputs_gone(struct ferry_engine *eng, int64_t tid)
{
	int64_t *ids = NULL;
	size_t n = 0;

	if (ferry__db_ref_jobs(eng->db, tid, 0, &ids, &n))
		return;
	for (size_t i = 0; i < n; i++) {
		struct job *j = ferry__engine_job(eng, ids[i]);
		if (j &&
		    (j->state == FERRY_SYSTEM_ON_HOLD || j->state == FERRY_USER_SYSTEM_ON_HOLD))
			end_unstarted(eng, j, FERRY_ABORTED,
				      "an input transfer was removed before it was ready");
	}
	free(ids);
}

/* ---- scheduling and timers ---- */

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
		size_t n = 0;
		for (struct job *j = eng->qhead; j && !j->fresh && n < BATCH; j = j->qnext)
			v[n++] = j;
		if (!n)
			break;
		for (size_t i = 0; i < n; i++) {
			queue_remove(eng, v[i]);
			v[i]->handing = 1;
		}
		msg[0] = '\0';
		if (!eng->be->hand(eng->be_self, v, n, msg, sizeof(msg)))
			continue;
		for (size_t i = n; i-- > 0;) {
			v[i]->handing = 0;
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

		if (j->fresh || (slots > 0 && eng->used_slots + j->cpus > slots))
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
		eng->used_slots += j->cpus;
		ferry__engine_job_started(eng, j, ferry__now());
	}
}

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
	wake_waiters(eng);
	if (ferry__mono() >= eng->next_gc)
		collect_garbage(eng);
}

int ferry__engine_committed(struct ferry_engine *eng)
{
	if (!eng->nfresh)
		return 0;
	for (size_t i = 0; i < eng->hsize; i++)
		for (struct job *j = eng->htab[i]; j; j = j->hnext)
			j->fresh = 0;
	eng->nfresh = 0;
	return eng->qhead != NULL;
}

int ferry__engine_timeout_ms(struct ferry_engine *eng)
{
	double next = eng->next_gc, now = ferry__mono();

	for (struct waiter *w = eng->waiters; w; w = w->next)
		if (w->deadline >= 0 && w->deadline < next)
			next = w->deadline;
	if (eng->retry_start > 0 && eng->retry_start < next)
		next = eng->retry_start;
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
};

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
	j = calloc(1, sizeof(*j));
	if (!j)
		return FERRY_ENOMEM;
	j->id = row->id;
	j->state = row->state;
	j->kill_requested = row->kill_requested;
	j->dispose_requested = row->disposed;
	j->started_at = row->started_at;
	j->native_id = row->native_id;
	row->native_id = NULL;
	j->spec = row->spec ? json_loads(row->spec, 0, NULL) : NULL;
	if (!j->spec)
		j->spec = json_object();
	j->cpus = (int)json_integer_value(json_object_get(j->spec, "cpus"));
	if (j->cpus < 1)
		j->cpus = 1;
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
		j->handed = 1; /* the next poll says where it stands */
		return;
	}
	if (job_started(j)) { /* the DRMS never had it */
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
	struct recovered rec = {0};
	int rc = ferry__db_active_jobs(eng->db, collect_row, &rec);
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
		} else if (job_started(j)) {
			j->state = FERRY_QUEUED_ACTIVE; /* never really started */
			ferry__db_set_state(eng->db, j->id, j->state);
		}
		if (j->kill_requested && !job_started(j))
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
	if (!job_started(j)) {
		j->state = FERRY_RUNNING;
		ferry__db_set_started(
		    eng->db, j->id, j->started_at > 0 ? j->started_at : ferry__now(), j->native_id);
	}
	eng->used_slots += j->cpus;
}

/*
 * The transfer root: transfer_root, or transfers/ in the state directory;
 * private (0700), resolved once, then reached through a descriptor.
 */
static int transfer_root_init(struct ferry_engine *eng, char *err, size_t errlen)
{
	const char *knob = getenv("FERRYD_TEST_HOUR_SECONDS");
	char *want = eng->cfg.transfer_root ? strdup(eng->cfg.transfer_root)
					    : ferry__asprintf("%s/transfers", eng->state_dir);

	eng->tr_root_fd = -1;
	eng->hour_s = knob && atof(knob) > 0 ? atof(knob) : 3600;
	if (!want) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	if (want[0] != '/') {
		snprintf(err, errlen, "transfer_root '%s' is not an absolute path", want);
		free(want);
		return -1;
	}
	if (ferry__mkdir_p(want, 0700) < 0 || !(eng->tr_root = realpath(want, NULL)) ||
	    (eng->tr_root_fd = open(eng->tr_root, O_PATH | O_DIRECTORY | O_CLOEXEC)) < 0) {
		snprintf(err, errlen, "cannot use the transfer root '%s': %s", want,
			 strerror(errno));
		free(want);
		return -1;
	}
	free(want);
	return 0;
}

/* The engine's token among the user's engines, made once and kept. */
static int instance_init(struct ferry_engine *eng, char *err, size_t errlen)
{
	char *v = NULL;

	if (ferry__db_meta_get(eng->db, "instance", &v))
		goto fail;
	if (!v) {
		if (ferry__random_hex(eng->instance, 8) < 0)
			goto fail;
		return ferry__db_meta_set(eng->db, "instance", eng->instance) ? -1 : 0;
	}
	snprintf(eng->instance, sizeof(eng->instance), "%s", v);
	free(v);
	return 0;
fail:
	snprintf(err, errlen, "cannot make the engine's instance token");
	return -1;
}

struct ferry_engine *ferry__engine_new(struct ferry_loop *loop, const char *resource,
				       const char *state_dir, const struct ferry_resource_cfg *cfg,
				       char *err, size_t errlen)
{
	struct ferry_engine *eng = calloc(1, sizeof(*eng));
	char *dbpath = NULL;

	if (errlen)
		err[0] = '\0';
	if (!eng)
		goto nomem;
	eng->loop = loop;
	eng->tr_root_fd = -1;
	eng->parked_tail = &eng->parked;
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
	eng->jobs_dir = ferry__asprintf("%s/jobs", state_dir);
	dbpath = ferry__asprintf("%s/ferry.db", state_dir);
	if (!eng->resource || !eng->state_dir || !eng->jobs_dir || !dbpath)
		goto nomem;
	eng->cfg = *cfg; /* shallow: main keeps cfg alive for the engine's life */
	if (ferry__mkdir_p(eng->jobs_dir, 0700) < 0) {
		snprintf(err, errlen, "cannot create '%s': %s", eng->jobs_dir, strerror(errno));
		goto fail;
	}
	if (transfer_root_init(eng, err, errlen) < 0)
		goto fail;
	if (htab_grow(eng) < 0)
		goto nomem;
	if (ferry__db_open(dbpath, &eng->db, err, errlen))
		goto fail;
	free(dbpath);
	dbpath = NULL;
	if (ferry__db_begin(eng->db) || instance_init(eng, err, errlen)) {
		if (!err[0])
			snprintf(err, errlen,
				 "cannot read the engine's instance from the database");
		goto fail;
	}
	if (drms(eng) && !(eng->worker = ferry__worker_new(loop, err, errlen)))
		goto fail;
	if (eng->be->open(eng, &eng->be_self, err, errlen))
		goto fail;
	eng->be_open = 1;
	if (recover(eng) || ferry__db_commit(eng->db)) {
		snprintf(err, errlen, "cannot recover the jobs of the last engine");
		goto fail;
	}
	eng->next_gc = ferry__mono() + 1.0;
	return eng;
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
	while (eng->parked) {
		struct parked *p = eng->parked;
		eng->parked = p->next;
		json_decref(p->req);
		free(p);
	}
	eng->parked_tail = &eng->parked;
	ferry__worker_free(eng, eng->worker);
	eng->worker = NULL;
	if (eng->be_open && eng->be->close)
		eng->be->close(eng->be_self);
	eng->be_open = 0;
	for (size_t i = 0; i < eng->hsize; i++) {
		struct job *j = eng->htab[i], *next;
		for (; j; j = next) {
			next = j->hnext;
			job_free(j);
		}
	}
	while (eng->waiters) {
		struct waiter *w = eng->waiters;
		eng->waiters = w->next;
		waiter_free(w);
	}
	free(eng->htab);
	if (eng->tr_root_fd >= 0)
		close(eng->tr_root_fd);
	free(eng->tr_root);
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
