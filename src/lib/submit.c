/*
 * submit.c - ferry_submit() and ferry_submit_many(): every spec checked
 * first, then the jobs sent in bounded batches, several in flight on the
 * connection, each batch one request and one transaction of the engine
 * (docs/architecture.md, "Submission").
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "internal.h"
#include "jbytes.h"
#include "proto.h"
#include "util.h"

/*
 * About this much request JSON per batch (as spec_bytes() counts it,
 * before the common fields are taken out): big enough that the engine's
 * fixed cost per request (a frame, a savepoint, a reply, and the durable
 * commit's fdatasync of 3-5 ms) is nothing per job, small enough that a
 * batch is quick to build, send and replay. At 256 KiB a batch of a bulk
 * file was 3,200 jobs and its fdatasync 1-1.5 us a job; at 1 MiB, 13,000.
 */
#define BATCH_BYTES (1024 * 1024)
/* Batches sent ahead of their answers: the engine works while we build the next. */
#define IN_FLIGHT 8

/*
 * What the specs of one call share: the caller's directory (the local
 * resource's default working directory) and the random start of the keys
 * of its batches, looked up once per call.
 */
struct shared {
	char cwd[PATH_MAX];
	int cwd_errno; /* why getcwd() failed; 0 */
	size_t cwdlen;
	char key[64];
	/* the wire form of the last base_env seen: one for all the specs that share it */
	const char *const *env_of;
	json_t *env;
};

static int shared_init(ferry_conn *c, struct shared *b)
{
	memcpy(b->key, "auto-", 5);
	if (ferry__random_hex(b->key + 5, 16) < 0)
		return ferry__seterr(c, FERRY_EIO, "cannot get random bytes for a key");
	b->cwd_errno = getcwd(b->cwd, sizeof(b->cwd)) ? 0 : errno;
	b->cwdlen = b->cwd_errno ? 0 : strlen(b->cwd);
	return 0;
}

/*
 * The JSON object of one spec being built: the setters below do nothing
 * once one failed (out of memory). Strings are bytes (jbytes.h).
 */
struct wire {
	json_t *o;
	int failed;
};

static void put(struct wire *w, const char *key, json_t *v)
{
	if (!w->failed)
		w->failed = json_object_set_new(w->o, key, v) < 0;
}

static void set_str(struct wire *w, const char *key, const char *v)
{
	if (v)
		put(w, key, ferry__json_bytes(v));
}

static void set_strv(struct wire *w, const char *key, const char *const *v)
{
	if (v && v[0])
		put(w, key, ferry__json_bytesv(v));
}

static void set_true(struct wire *w, const char *key, int v)
{
	if (v)
		put(w, key, json_true());
}

static void set_int(struct wire *w, const char *key, int64_t v, int64_t dflt)
{
	if (v != dflt)
		put(w, key, json_integer(v));
}

static int bad_int(ferry_conn *c, size_t idx, const char *key, int64_t v, int64_t min, int64_t max)
{
	if (v >= min && v <= max)
		return 0;
	return ferry__seterr(c, FERRY_EINVAL, "job %zu: '%s' is %lld, not between %lld and %lld",
			     idx, key, (long long)v, (long long)min, (long long)max);
}

/* The engine's check (ferry__env_entry_check), so that the message is the same either way. */
static int bad_env(ferry_conn *c, size_t idx, const char *key, const char *const *env)
{
	char err[512];

	for (size_t i = 0; env && env[i]; i++)
		if (ferry__env_entry_check(env[i], key, i, !strcmp(key, "base_env"), err,
					   sizeof(err)))
			return ferry__seterr(c, FERRY_EINVAL, "job %zu: %s", idx, err);
	return 0;
}

/*
 * What the library can tell of a spec without the engine, checked for
 * every spec before the first batch goes: the same limits and words as
 * the engine's (proto.h), so that the message is the same either way.
 */
static int spec_check(ferry_conn *c, const struct ferry_job_spec *s, size_t idx,
		      const struct shared *b, const char *const *env_checked)
{
	const char *wd = s->working_directory;
	int rc;

	if (s->version != FERRY_JOB_SPEC_VERSION)
		return ferry__seterr(c, FERRY_EINVAL,
				     "job %zu was not set up with ferry_job_spec_init()", idx);
	if (!s->argv || !s->argv[0])
		return ferry__seterr(c, FERRY_EINVAL,
				     "job %zu: 'argv' must hold at least the command", idx);
	if (!s->argv[0][0])
		return ferry__seterr(c, FERRY_EINVAL, "job %zu: the command (argv[0]) is empty",
				     idx);
	if ((!wd || wd[0] != '/') && b->cwd_errno)
		return ferry__seterr(c, FERRY_EINVAL,
				     "job %zu: cannot get the current directory: %s", idx,
				     strerror(b->cwd_errno));
	if (s->name && strlen(s->name) > FERRY_SPEC_NAME_MAX)
		return ferry__seterr(c, FERRY_EINVAL, "job %zu: 'name' is longer than %d bytes",
				     idx, FERRY_SPEC_NAME_MAX);
	if (s->submission_key &&
	    (!s->submission_key[0] || strlen(s->submission_key) > FERRY_SPEC_KEY_MAX))
		return ferry__seterr(c, FERRY_EINVAL,
				     "job %zu: 'submission_key' is empty or longer than %d bytes",
				     idx, FERRY_SPEC_KEY_MAX);
	if ((rc = bad_int(c, idx, "disposal_timeout_hours", s->disposal_timeout_hours, 1,
			  FERRY_SPEC_DISPOSAL_MAX)) ||
	    (rc = bad_int(c, idx, "cpus", s->cpus, 1, FERRY_SPEC_CPUS_MAX)) ||
	    (rc = bad_int(c, idx, "memory_mb", s->memory_mb, 0, FERRY_SPEC_MEMORY_MAX)) ||
	    (rc = bad_int(c, idx, "walltime_s", s->walltime_s, 0, FERRY_SPEC_WALLTIME_MAX)) ||
	    (rc = bad_int(c, idx, "tasks", s->tasks, 1, FERRY_SPEC_CPUS_MAX)) ||
	    (rc = bad_int(c, idx, "cpus_per_task", s->cpus_per_task, 1, FERRY_SPEC_CPUS_MAX)) ||
	    (rc = bad_int(c, idx, "nodes", s->nodes, 0, FERRY_SPEC_CPUS_MAX)))
		return rc;
	if (s->launcher != FERRY_LAUNCHER_NONE && s->launcher != FERRY_LAUNCHER_MPI)
		return ferry__seterr(c, FERRY_EINVAL, "job %zu: unknown launcher %d", idx,
				     (int)s->launcher);
	if ((rc = bad_env(c, idx, "env", s->env)))
		return rc;
	/* specs share one base_env (a bulk's): checked once, not once a job (a third of the CLI) */
	return s->base_env == env_checked ? 0 : bad_env(c, idx, "base_env", s->base_env);
}

/*
 * The working directory a spec asks for into *out (free() it): the
 * caller's for none (a local resource shares our files), and a relative
 * one under it, as the shell would take it.
 */
static int working_directory(ferry_conn *c, const struct ferry_job_spec *s, const struct shared *b,
			     char **out)
{
	const char *wd = s->working_directory;

	if (wd && wd[0] == '/')
		*out = strdup(wd);
	else
		*out = wd ? ferry__asprintf("%s/%s", b->cwd, wd) : strdup(b->cwd);
	return *out ? 0 : ferry__seterr(c, FERRY_ENOMEM, "out of memory");
}

/*
 * The wire form of spec idx of the call: only what differs from the
 * engine's defaults (docs/protocol.md, "Job spec"), which keeps a large
 * batch small to send and quick for the engine to read.
 */
static int spec_json(ferry_conn *c, const struct ferry_job_spec *s, size_t idx, struct shared *b,
		     json_t **out)
{
	struct wire w = {.o = json_object()};
	char *wd;
	int rc;

	*out = NULL;
	if (!w.o)
		return ferry__seterr(c, FERRY_ENOMEM, "out of memory");
	if ((rc = working_directory(c, s, b, &wd))) {
		json_decref(w.o);
		return rc;
	}
	put(&w, "argv", ferry__json_bytesv(s->argv));
	set_str(&w, "name", s->name);
	set_str(&w, "working_directory", wd);
	set_str(&w, "stdin_path", s->stdin_path);
	set_str(&w, "stdout_path", s->stdout_path);
	set_str(&w, "stderr_path", s->stderr_path);
	set_true(&w, "join_stderrout", s->join_stderrout);
	set_strv(&w, "env", s->env);
	if (s->base_env && s->base_env[0]) {
		if (b->env_of != s->base_env) {
			json_decref(b->env);
			b->env = ferry__json_bytesv(s->base_env);
			b->env_of = b->env ? s->base_env : NULL;
		}
		put(&w, "base_env", json_incref(b->env));
	}
	set_strv(&w, "referenced_input_files", s->referenced_input_files);
	set_strv(&w, "referenced_output_files", s->referenced_output_files);
	set_int(&w, "disposal_timeout_hours", s->disposal_timeout_hours, 168);
	set_int(&w, "cpus", s->cpus, 1);
	set_int(&w, "memory_mb", s->memory_mb, 0);
	set_int(&w, "walltime_s", s->walltime_s, 0);
	set_int(&w, "tasks", s->tasks, 1);
	set_int(&w, "cpus_per_task", s->cpus_per_task, 1);
	set_int(&w, "nodes", s->nodes, 0);
	set_str(&w, "launcher", s->launcher == FERRY_LAUNCHER_MPI ? "mpi" : NULL);
	set_str(&w, "queue", s->queue);
	set_str(&w, "native_specification", s->native_specification);
	set_true(&w, "hold", s->hold);
	set_str(&w, "submission_key", s->submission_key);
	free(wd);
	if (!w.failed) {
		*out = w.o;
		return 0;
	}
	json_decref(w.o);
	return ferry__seterr(c, FERRY_ENOMEM, "out of memory");
}

static size_t strv_bytes(const char *const *v)
{
	size_t n = 0;

	for (; v && *v; v++)
		n += strlen(*v) + 3; /* quotes and comma */
	return n;
}

static size_t opt_bytes(const char *s)
{
	return s ? strlen(s) + 24 : 0; /* "key":"",  */
}

/* About what the spec's JSON takes, without writing it: where a batch ends. */
static size_t spec_bytes(const struct ferry_job_spec *s, const struct shared *b)
{
	return 16 + strv_bytes(s->argv) + strv_bytes(s->env) +
	       strv_bytes(s->referenced_input_files) + strv_bytes(s->referenced_output_files) +
	       opt_bytes(s->name) + opt_bytes(s->working_directory) + b->cwdlen + 22 +
	       opt_bytes(s->stdin_path) + opt_bytes(s->stdout_path) + opt_bytes(s->stderr_path) +
	       opt_bytes(s->queue) + opt_bytes(s->native_specification) +
	       opt_bytes(s->submission_key) + (s->hold ? 12 : 0);
}

/* A batch sent and not yet answered: its request is kept for a replay. */
struct flight {
	json_t *req;
	size_t first, n;
};

/* One call of ferry_submit_many() on its way. */
struct submission {
	ferry_conn *c;
	const struct ferry_job_spec *specs;
	ferry_job_id *ids;
	size_t n;
	struct shared sh;
	size_t next;		     /* the first spec in no batch yet */
	struct flight fl[IN_FLIGHT]; /* a ring, oldest at head */
	size_t head, count;
	size_t done; /* jobs submitted */
	int gone;    /* the engine was lost and not regained */
	int rc;	     /* the first failed batch's code; 0 */
	char why[sizeof(((struct ferry_conn *)0)->errmsg)]; /* and its message */
};

/*
 * The fields every spec of a batch has, with the same value, moved out of
 * them into one object, the request's "common" (docs/protocol.md): a
 * bulk file's working directory and hold are sent and read once, not
 * once a job, which was a third of what the engine spent reading a
 * batch of `true K`. NULL when out of memory.
 */
static json_t *batch_common(json_t *jobs)
{
	json_t *first = json_array_get(jobs, 0), *common = json_object(), *v, *o;
	const char *k;
	size_t i;

	if (!common || json_array_size(jobs) < 2)
		return common;
	json_object_foreach(first, k, v)
	{
		json_array_foreach(jobs, i, o) if (!json_equal(json_object_get(o, k), v)) break;
		if (i == json_array_size(jobs) && json_object_set(common, k, v)) {
			json_decref(common);
			return NULL;
		}
	}
	json_object_foreach(common, k, v)
	{
		json_array_foreach(jobs, i, o) json_object_del(o, k);
	}
	return common;
}

/* The next batch into *f: specs from s->next, up to BATCH_BYTES or FERRY_SUBMIT_MAX. */
static int batch_make(struct submission *s, struct flight *f)
{
	json_t *jobs = json_array(), *o, *common;
	char key[96];
	size_t bytes = 0;
	int rc = 0;

	f->first = s->next;
	f->n = 0;
	f->req = NULL;
	while (jobs && s->next < s->n && f->n < FERRY_SUBMIT_MAX && bytes < BATCH_BYTES) {
		const struct ferry_job_spec *sp = &s->specs[s->next];
		if ((rc = spec_json(s->c, sp, s->next, &s->sh, &o)))
			break;
		if (json_array_append_new(jobs, o))
			break;
		bytes += spec_bytes(sp, &s->sh);
		/* the same base_env throughout goes once, in the batch's common */
		if (!f->n || sp->base_env != s->specs[f->first].base_env)
			bytes += strv_bytes(sp->base_env);
		s->next++;
		f->n++;
	}
	/* random: a replay after a lost reply answers the first ids, creates no job */
	snprintf(key, sizeof(key), "%s-%zu", s->sh.key, f->first);
	if (!rc && jobs && s->next - f->first == f->n && (common = batch_common(jobs)))
		f->req = json_pack("{s:s,s:o,s:s,s:o}", "op", "submit", "jobs", jobs, "key", key,
				   "common", common);
	else
		json_decref(jobs);
	if (!f->req)
		return rc ? rc : ferry__seterr(s->c, FERRY_ENOMEM, "out of memory");
	return 0;
}

/*
 * "job K: ..." of the engine counts in the batch; the caller counts in
 * specs: the message of a failed batch, renumbered, into s->why.
 */
static void keep_why(struct submission *s, const struct flight *f, const char *msg)
{
	unsigned long long k;
	int used = 0;

	if (sscanf(msg, "job %llu: %n", &k, &used) == 1 && used > 0)
		snprintf(s->why, sizeof(s->why), "job %llu: %s", k + f->first, msg + used);
	else
		snprintf(s->why, sizeof(s->why), "%s", msg);
}

/* The answer to a batch (rc 0: reply), into ids, or the first failure kept. */
static void batch_done(struct submission *s, struct flight *f, int rc, json_t *reply)
{
	json_t *a = json_object_get(reply, "ids");

	if (!rc && json_array_size(a) != f->n)
		rc = ferry__seterr(s->c, FERRY_EPROTO, "the engine returned %zu ids for %zu jobs",
				   json_array_size(a), f->n);
	for (size_t i = 0; i < f->n; i++)
		s->ids[f->first + i] = rc ? 0 : json_integer_value(json_array_get(a, i));
	if (!rc)
		s->done += f->n;
	else if (!s->rc) {
		s->rc = rc;
		keep_why(s, f, s->c->errmsg);
	}
	json_decref(reply);
	json_decref(f->req);
	f->req = NULL;
}

/*
 * The oldest batch in flight, answered: read from the link, or, once it
 * broke, sent again through ferry__call(), which reconnects and replays
 * (the keys make the replay return the first ids). *broken says which.
 */
static void batch_answer(struct submission *s, int *broken)
{
	struct flight *f = &s->fl[s->head];
	json_t *reply = NULL;
	int rc = FERRY_EIO;

	if (s->gone) { /* not known: not asked again, for a whole retry budget each */
		batch_done(s, f, s->rc, NULL);
		goto next;
	}
	if (!*broken) {
		rc = ferry__recv_reply(s->c, &reply, NULL, NULL);
		if (!rc && !json_is_true(json_object_get(reply, "ok"))) {
			rc = ferry__reply_error(s->c, reply);
			json_decref(reply);
			reply = NULL;
		}
	}
	if (rc == FERRY_EIO) {
		if (!*broken) {
			ferry__close(s->c); /* a reconnection, replaying what is in flight */
			s->c->lost = 1;
			*broken = 1;
		}
		rc = ferry__call(s->c, f->req, 0, &reply, NULL, NULL);
		/* an error answer leaves the link up; a lost engine, down */
		s->gone = rc && s->c->fd < 0;
		/* what else was in flight went on the lost link: sent again, in order */
		*broken = rc || s->count > 1;
	}
	batch_done(s, f, rc, reply);
next:
	s->head = (s->head + 1) % IN_FLIGHT;
	s->count--;
}

/*
 * Up to IN_FLIGHT batches sent ahead of their answers; none after a
 * failure is known. Under the connection's lock.
 */
static void pipeline(struct submission *s)
{
	int broken = s->c->fd < 0; /* no link yet: ferry__call() makes one */

	while (s->count || (s->next < s->n && !s->rc)) {
		while (!s->rc && s->next < s->n && s->count < IN_FLIGHT) {
			struct flight *f = &s->fl[(s->head + s->count) % IN_FLIGHT];
			int rc = batch_make(s, f);
			if (rc) {
				s->rc = rc;
				snprintf(s->why, sizeof(s->why), "%s", s->c->errmsg);
				break;
			}
			s->count++;
			if (broken)
				break; /* sent by batch_answer(), one at a time */
			rc = ferry__send_request(s->c, f->req, NULL, 0);
			if (rc && rc != FERRY_EIO) { /* e.g. a spec too big for a frame */
				batch_done(s, f,
					   ferry__seterr(s->c, rc, "cannot send the jobs: %s",
							 ferry_strerror(rc)),
					   NULL);
				s->count--;
			}
			if (rc)
				break; /* a broken link is found by the answer */
		}
		if (s->count)
			batch_answer(s, &broken);
	}
}

/*
 * The size of each version's struct ferry_job_spec, 0 for none: 1 ended
 * before base_env, 2 (never released) before tasks.
 */
static size_t spec_size(unsigned int version)
{
	return version == 1			   ? offsetof(struct ferry_job_spec, base_env)
	       : version == 2			   ? offsetof(struct ferry_job_spec, tasks)
	       : version == FERRY_JOB_SPEC_VERSION ? sizeof(struct ferry_job_spec)
						   : 0;
}

FERRY_EXPORT void ferry_job_spec_init_version(struct ferry_job_spec *s, unsigned int version)
{
	size_t n = spec_size(version);

	/* a caller's struct of an older ferry.h is smaller: only its own bytes are written */
	memset(s, 0, n ? n : sizeof(s->version));
	s->version = version;
	if (!n)
		return; /* an unknown version: ferry_submit() refuses it */
	s->disposal_timeout_hours = 168;
	s->cpus = 1;
	if (version >= 3) {
		s->tasks = 1;
		s->cpus_per_task = 1;
	}
}

/* Of version 1: what a program built with version 1's ferry.h calls (ferry.h). */
FERRY_EXPORT void(ferry_job_spec_init)(struct ferry_job_spec *s)
{
	ferry_job_spec_init_version(s, 1);
}

/*
 * Specs of an older ferry.h as this version's: their array's stride is
 * their own size, and what they lack takes its default. NULL: ENOMEM.
 */
static struct ferry_job_spec *specs_now(const struct ferry_job_spec *specs, size_t n, size_t size)
{
	struct ferry_job_spec *v = malloc(n * sizeof(*v));

	for (size_t i = 0; v && i < n; i++) {
		ferry_job_spec_init_version(&v[i], FERRY_JOB_SPEC_VERSION);
		memcpy(&v[i], (const char *)specs + i * size, size);
		v[i].version = FERRY_JOB_SPEC_VERSION;
	}
	return v;
}

FERRY_EXPORT int ferry_submit_many(ferry_conn *c, const struct ferry_job_spec *specs, size_t n,
				   ferry_job_id *ids)
{
	struct submission s = {.c = c, .specs = specs, .ids = ids, .n = n};
	size_t size = n ? spec_size(specs[0].version) : 0;
	int rc;

	if (!n)
		return ferry__seterr(c, FERRY_EINVAL, "no job to submit");
	if (size && specs[0].version != FERRY_JOB_SPEC_VERSION) {
		struct ferry_job_spec *now = specs_now(specs, n, size);
		if (!now)
			return ferry__seterr(c, FERRY_ENOMEM, "out of memory");
		rc = ferry_submit_many(c, now, n, ids);
		free(now);
		return rc;
	}
	memset(ids, 0, n * sizeof(*ids)); /* whatever fails: 0 for each job not submitted */
	if ((rc = shared_init(c, &s.sh)))
		return rc;
	for (size_t i = 0; i < n; i++)
		if ((rc = spec_check(c, &specs[i], i, &s.sh, i ? specs[i - 1].base_env : NULL)))
			return rc;
	pthread_mutex_lock(&c->mu);
	c->errmsg[0] = '\0';
	pipeline(&s);
	if (s.rc && n > 1)
		ferry__seterr(c, s.rc, "%zu of %zu jobs submitted; %s", s.done, n, s.why);
	else if (s.rc)
		ferry__seterr(c, s.rc, "%s", s.why);
	else
		c->errmsg[0] = '\0';
	pthread_mutex_unlock(&c->mu);
	json_decref(s.sh.env);
	return s.rc;
}

FERRY_EXPORT int ferry_submit(ferry_conn *c, const struct ferry_job_spec *spec,
			      ferry_job_id *job_id)
{
	return ferry_submit_many(c, spec, 1, job_id);
}
