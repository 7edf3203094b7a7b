/*
 * spec.c - a job spec as a client sends it, checked and made what the
 * engine stores (docs/protocol.md, "Job spec"): unknown fields refused,
 * types and ranges checked, paths made absolute against the working
 * directory and the files they name looked at, the backend's check last.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "engine.h"
#include "jbytes.h"
#include "jobenv.h"
#include "proto.h"
#include "util.h"

#define MAX_ARG_BYTES (128 * 1024)
#define MAX_CMD_BYTES (2 * 1024 * 1024)

/*
 * The normalised spec's keys are literals: they are set with
 * json_object_set_new_nocheck(), as jansson's UTF-8 check of each key
 * was 2.4% of the engine's instructions in a bulk submit.
 */
#define SPEC_KEYS(X)                                                                               \
	X(argv)                                                                                    \
	X(name)                                                                                    \
	X(working_directory)                                                                       \
	X(stdin_path)                                                                              \
	X(stdout_path)                                                                             \
	X(stderr_path)                                                                             \
	X(join_stderrout)                                                                          \
	X(env)                                                                                     \
	X(referenced_input_files)                                                                  \
	X(referenced_output_files)                                                                 \
	X(disposal_timeout_hours)                                                                  \
	X(cpus)                                                                                    \
	X(memory_mb)                                                                               \
	X(walltime_s)                                                                              \
	X(queue)                                                                                   \
	X(native_specification)                                                                    \
	X(hold)                                                                                    \
	X(submission_key)                                                                          \
	X(base_env)                                                                                \
	X(tasks)                                                                                   \
	X(cpus_per_task)                                                                           \
	X(nodes)                                                                                   \
	X(launcher)

#define KEY_ENUM(k) K_##k,
enum spec_key { SPEC_KEYS(KEY_ENUM) NKEYS };
#define KEY_NAME(k) #k,
static const char *const spec_keys[] = {SPEC_KEYS(KEY_NAME)};

/*
 * The client's spec, its values by key: taken in one pass over its
 * fields, which also refuses one it does not know. A look-up by key for
 * each field (json_object_get() hashes its key) was 6.5% of the
 * engine's instructions in a bulk submit.
 */
struct spec_in {
	json_t *v[NKEYS];
	int late; /* the files are looked at when the job starts (ferry__spec_normalise) */
};

static int spec_in_take(json_t *o, struct spec_in *in, char *err, size_t errlen)
{
	const char *k;
	json_t *v;

	json_object_foreach(o, k, v)
	{
		size_t i;
		for (i = 0; i < NKEYS; i++)
			if (!strcmp(k, spec_keys[i]))
				break;
		if (i == NKEYS)
			return ferry__fail(err, errlen, FERRY_EINVAL,
					   "unknown field '%s' in job spec", k);
		in->v[i] = v;
	}
	return 0;
}

/* A JSON string without NUL bytes, or absent/null. */
static int opt_string(const struct spec_in *in, enum spec_key k, size_t max, const char **out,
		      char *err, size_t errlen)
{
	json_t *v = in->v[k];
	const char *key = spec_keys[k];

	*out = NULL;
	if (!v || json_is_null(v))
		return 0;
	if (!json_is_string(v))
		return ferry__fail(err, errlen, FERRY_EINVAL, "'%s' must be a string", key);
	if (strlen(json_string_value(v)) != json_string_length(v))
		return ferry__fail(err, errlen, FERRY_EINVAL, "'%s' contains a NUL byte", key);
	if (json_string_length(v) > max)
		return ferry__fail(err, errlen, FERRY_EINVAL, "'%s' is longer than %zu bytes", key,
				   max);
	*out = json_string_value(v);
	return 0;
}

/* ferry__opt_int() of the value v of key */
static int opt_int_of(json_t *v, const char *key, json_int_t min, json_int_t max, json_int_t dflt,
		      json_int_t *out, char *err, size_t errlen)
{
	*out = dflt;
	if (!v || json_is_null(v))
		return 0;
	if (!json_is_integer(v))
		return ferry__fail(err, errlen, FERRY_EINVAL, "'%s' must be an integer", key);
	*out = json_integer_value(v);
	if (*out < min || *out > max)
		return ferry__fail(err, errlen, FERRY_EINVAL,
				   "'%s' is %lld, not between %lld and %lld", key, (long long)*out,
				   (long long)min, (long long)max);
	return 0;
}

int ferry__opt_int(json_t *o, const char *key, json_int_t min, json_int_t max, json_int_t dflt,
		   json_int_t *out, char *err, size_t errlen)
{
	return opt_int_of(json_object_get(o, key), key, min, max, dflt, out, err, errlen);
}

static int opt_int(const struct spec_in *in, enum spec_key k, json_int_t min, json_int_t max,
		   json_int_t dflt, json_int_t *out, char *err, size_t errlen)
{
	return opt_int_of(in->v[k], spec_keys[k], min, max, dflt, out, err, errlen);
}

static int opt_bool(const struct spec_in *in, enum spec_key k, int *out, char *err, size_t errlen)
{
	json_t *v = in->v[k];
	const char *key = spec_keys[k];

	*out = 0;
	if (!v || json_is_null(v))
		return 0;
	if (!json_is_boolean(v))
		return ferry__fail(err, errlen, FERRY_EINVAL, "'%s' must be true or false", key);
	*out = json_is_true(v);
	return 0;
}

/*
 * A string field checked by opt_string(), for the normalised spec: the
 * client's own value, shared rather than copied (a bulk submit's jobs
 * each carry a few), or null.
 */
static json_t *checked_string(const struct spec_in *in, enum spec_key k)
{
	json_t *v = in->v[k];

	return json_is_string(v) ? json_incref(v) : json_null();
}

/* Absolute path of p (relative to cwd); malloc'd. */
static char *resolve(const char *cwd, const char *p)
{
	return p[0] == '/' ? strdup(p) : ferry__asprintf("%s/%s", cwd, p);
}

/* Checks a string array and resolves its paths when cwd != NULL. */
static int string_array(const struct spec_in *in, enum spec_key k, const char *cwd, size_t *bytes,
			json_t **out, char *err, size_t errlen)
{
	json_t *v = in->v[k], *a, *e;
	const char *key = spec_keys[k];
	size_t i;

	*out = NULL;
	if (!v || json_is_null(v))
		return 0;
	if (!json_is_array(v))
		return ferry__fail(err, errlen, FERRY_EINVAL, "'%s' must be an array of strings",
				   key);
	a = json_array();
	if (!a)
		return ferry__fail(err, errlen, FERRY_ENOMEM, "out of memory");
	json_array_foreach(v, i, e)
	{
		const char *s;
		char *r;

		if (!json_is_string(e)) {
			json_decref(a);
			return ferry__fail(err, errlen, FERRY_EINVAL, "'%s'[%zu] is not a string",
					   key, i);
		}
		s = json_string_value(e);
		if (strlen(s) != json_string_length(e)) {
			json_decref(a);
			return ferry__fail(err, errlen, FERRY_EINVAL,
					   "'%s'[%zu] contains a NUL byte", key, i);
		}
		if (json_string_length(e) > MAX_ARG_BYTES) {
			json_decref(a);
			return ferry__fail(err, errlen, FERRY_EINVAL,
					   "'%s'[%zu] is longer than %d bytes (the kernel's limit)",
					   key, i, MAX_ARG_BYTES);
		}
		if (bytes)
			*bytes += json_string_length(e) + 1;
		/* a path resolved is a new string; any other is the client's, shared */
		r = cwd && s[0] != '/' ? resolve(cwd, s) : NULL;
		if ((cwd && s[0] != '/' && !r) ||
		    json_array_append_new(a, r ? ferry__json_bytes(r) : json_incref(e))) {
			free(r);
			json_decref(a);
			return ferry__fail(err, errlen, FERRY_ENOMEM, "out of memory");
		}
		free(r);
	}
	*out = a;
	return 0;
}

/* env's or base_env's entries (key, base: ferry__env_entry_check). */
static int check_env(json_t *env, const char *key, int base, char *err, size_t errlen)
{
	size_t i;
	json_t *e;
	int rc;

	json_array_foreach(env, i, e)
	{
		if ((rc = ferry__env_entry_check(json_string_value(e), key, i, base, err, errlen)))
			return rc;
	}
	return 0;
}

static int check_dir_of(const char *what, const char *path, char *err, size_t errlen)
{
	char *d = strdup(path), *slash;
	struct stat st;
	int rc = 0;

	if (!d)
		return ferry__fail(err, errlen, FERRY_ENOMEM, "out of memory");
	slash = strrchr(d, '/');
	if (slash == d)
		slash[1] = '\0';
	else if (slash)
		*slash = '\0';
	if (stat(d, &st) < 0 || !S_ISDIR(st.st_mode))
		rc = ferry__fail(err, errlen, FERRY_EINVAL, "directory of %s '%s' does not exist",
				 what, path);
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
	rc = json_object_set_new_nocheck(o, key, ferry__json_bytes(r));
	free(r);
	return rc;
}

/* Validates the path fields of a spec and copies them, resolved, into n. */
static int normalise_paths(const struct spec_in *spec, json_t *n, char **seen, const char **cwd_out,
			   char *err, size_t errlen)
{
	const char *cwd, *in, *out, *errp;
	struct stat st;
	int rc, fd;

	if ((rc = opt_string(spec, K_working_directory, PATH_MAX, &cwd, err, errlen)) ||
	    (rc = opt_string(spec, K_stdin_path, PATH_MAX, &in, err, errlen)) ||
	    (rc = opt_string(spec, K_stdout_path, PATH_MAX, &out, err, errlen)) ||
	    (rc = opt_string(spec, K_stderr_path, PATH_MAX, &errp, err, errlen)))
		return rc;
	if (!cwd)
		return ferry__fail(err, errlen, FERRY_EINVAL, "'working_directory' is required");
	if (cwd[0] != '/')
		return ferry__fail(err, errlen, FERRY_EINVAL,
				   "working directory '%s' is not absolute", cwd);
	if (!spec->late && (!*seen || strcmp(*seen, cwd))) {
		/* once per request and directory: the jobs of a big submit share one */
		if (stat(cwd, &st) < 0 || !S_ISDIR(st.st_mode))
			return ferry__fail(err, errlen, FERRY_EINVAL,
					   "working directory '%s' does not exist", cwd);
		free(*seen);
		*seen = strdup(cwd); /* none for lack of memory: the next job looks again */
	}
	json_object_set_new_nocheck(n, "working_directory",
				    checked_string(spec, K_working_directory));
	if (in && !spec->late) {
		char *p = resolve(cwd, in);
		if (!p)
			return ferry__fail(err, errlen, FERRY_ENOMEM, "out of memory");
		/* a terminal's open must not make it the engine's: its hang-up is a SIGHUP */
		fd = open(p, O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);
		if (fd < 0 || fstat(fd, &st) < 0 || S_ISDIR(st.st_mode)) {
			rc = ferry__fail(err, errlen, FERRY_EINVAL,
					 "stdin '%s' is not a readable file: %s", p,
					 fd < 0 ? strerror(errno) : "is a directory");
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
		return ferry__fail(err, errlen, FERRY_ENOMEM, "out of memory");
	if (out && !spec->late &&
	    (rc = check_dir_of("stdout", json_string_value(json_object_get(n, "stdout_path")), err,
			       errlen)))
		return rc;
	if (errp && !spec->late &&
	    (rc = check_dir_of("stderr", json_string_value(json_object_get(n, "stderr_path")), err,
			       errlen)))
		return rc;
	*cwd_out = cwd;
	return 0;
}

/*
 * The spec's referenced input or output files: each under the transfer
 * root names a transfer (one still on its way makes the job wait for
 * it), an input elsewhere must exist.
 */
static int file_refs(struct ferry_engine *eng, const struct spec_in *spec, json_t *n,
		     enum spec_key k, const char *cwd, char *err, size_t errlen)
{
	const char *key = spec_keys[k];
	int input = k == K_referenced_input_files, rc, ready;
	json_t *files, *e;
	int64_t tid;
	size_t i;

	if ((rc = string_array(spec, k, cwd, NULL, &files, err, errlen)))
		return rc;
	json_object_set_new_nocheck(n, key, files ? files : json_array());
	json_array_foreach(files, i, e)
	{
		rc = ferry__transfer_lookup(eng, json_string_value(e), &tid, &ready, err, errlen);
		if (rc < 0)
			return rc;
		if (input && rc == 0 && !spec->late && access(json_string_value(e), F_OK) < 0)
			return ferry__fail(err, errlen, FERRY_EINVAL,
					   "referenced input file '%s' does not exist",
					   json_string_value(e));
	}
	return 0;
}
static int normalise_arrays(struct ferry_engine *eng, const struct spec_in *spec, json_t *n,
			    const char *cwd, char *err, size_t errlen)
{
	json_t *argv, *env;
	size_t bytes = 0;
	int rc;

	if ((rc = string_array(spec, K_argv, NULL, &bytes, &argv, err, errlen)))
		return rc;
	json_object_set_new_nocheck(n, "argv", argv ? argv : json_array());
	if (!argv || json_array_size(argv) == 0)
		return ferry__fail(err, errlen, FERRY_EINVAL,
				   "'argv' must hold at least the command");
	if (!json_string_length(json_array_get(argv, 0)))
		return ferry__fail(err, errlen, FERRY_EINVAL, "the command (argv[0]) is empty");
	if ((rc = string_array(spec, K_env, NULL, &bytes, &env, err, errlen)))
		return rc;
	json_object_set_new_nocheck(n, "env", env ? env : json_array());
	if (env && (rc = check_env(env, "env", 0, err, errlen)))
		return rc;
	if (bytes > MAX_CMD_BYTES)
		return ferry__fail(
		    err, errlen, FERRY_EINVAL,
		    "command line and environment take %zu bytes, over the %d byte limit", bytes,
		    MAX_CMD_BYTES);
	if ((rc = file_refs(eng, spec, n, K_referenced_input_files, cwd, err, errlen)))
		return rc;
	return file_refs(eng, spec, n, K_referenced_output_files, cwd, err, errlen);
}

/*
 * base_env: checked and stored once (jobenv.c), the spec keeping its
 * number. The jobs of a batch share the client's array (libferry sends
 * it in the request's common), so a bulk checks it once, not once a job.
 */
static int normalise_base_env(struct ferry_engine *eng, const struct spec_in *in, json_t *n,
			      char *err, size_t errlen)
{
	json_t *v = in->v[K_base_env], *a = NULL;
	size_t bytes = 0;
	int64_t id;
	int rc;

	if (!v || json_is_null(v))
		return 0;
	if (!ferry__jobenv_known(eng, v, &id)) {
		if ((rc = string_array(in, K_base_env, NULL, &bytes, &a, err, errlen)) ||
		    (a && (rc = check_env(a, "base_env", 1, err, errlen))))
			goto out;
		if (bytes > MAX_CMD_BYTES) {
			rc = ferry__fail(err, errlen, FERRY_EINVAL,
					 "'base_env' takes %zu bytes, over the %d byte limit",
					 bytes, MAX_CMD_BYTES);
			goto out;
		}
		if ((rc = ferry__jobenv_id(eng, v, a, &id, err, errlen)))
			goto out;
	}
	rc = json_object_set_new_nocheck(n, "base_env", json_integer(id))
		 ? ferry__fail(err, errlen, FERRY_ENOMEM, "out of memory")
		 : 0;
out:
	json_decref(a);
	return rc;
}

/* A parallel job's request (struct ferry_job_spec's tasks...launcher). */
struct parallel {
	json_int_t tasks, cpt, nodes;
	const char *launcher; /* "mpi", or NULL */
};

/*
 * Reads a parallel job's request into *p and makes *cpus the slots it
 * holds: tasks x cpus_per_task, which a cpus given as well must equal,
 * so that the slots a job holds are one number on every backend.
 */
static int read_parallel(const struct spec_in *spec, json_int_t *cpus, struct parallel *p,
			 char *err, size_t errlen)
{
	json_t *given = spec->v[K_cpus];
	enum ferry_launcher l;
	int rc;

	if ((rc = opt_int(spec, K_tasks, 1, FERRY_SPEC_CPUS_MAX, 1, &p->tasks, err, errlen)) ||
	    (rc =
		 opt_int(spec, K_cpus_per_task, 1, FERRY_SPEC_CPUS_MAX, 1, &p->cpt, err, errlen)) ||
	    (rc = opt_int(spec, K_nodes, 0, FERRY_SPEC_CPUS_MAX, 0, &p->nodes, err, errlen)) ||
	    (rc = opt_string(spec, K_launcher, 16, &p->launcher, err, errlen)))
		return rc;
	if (p->launcher && ferry_launcher_from_name(p->launcher, &l))
		return ferry__fail(err, errlen, FERRY_EINVAL,
				   "'launcher' is '%s', not 'mpi' or 'none'", p->launcher);
	if (p->launcher && l == FERRY_LAUNCHER_NONE)
		p->launcher = NULL;
	if (p->nodes > p->tasks)
		return ferry__fail(err, errlen, FERRY_EINVAL,
				   "'nodes' is %lld, more than the job's %lld tasks",
				   (long long)p->nodes, (long long)p->tasks);
	if (p->tasks == 1 && p->cpt == 1)
		return 0;
	if (p->tasks * p->cpt > FERRY_SPEC_CPUS_MAX)
		return ferry__fail(err, errlen, FERRY_EINVAL,
				   "'tasks' x 'cpus_per_task' is %lld, over the %d cpu limit",
				   (long long)(p->tasks * p->cpt), FERRY_SPEC_CPUS_MAX);
	if (given && !json_is_null(given) && *cpus != p->tasks * p->cpt)
		return ferry__fail(err, errlen, FERRY_EINVAL,
				   "'cpus' is %lld but 'tasks' x 'cpus_per_task' is %lld",
				   (long long)*cpus, (long long)(p->tasks * p->cpt));
	*cpus = p->tasks * p->cpt;
	return 0;
}

/* Stores what differs from the defaults alone: most jobs are not parallel. */
static void set_parallel(json_t *n, const struct parallel *p)
{
	if (p->tasks != 1)
		json_object_set_new_nocheck(n, "tasks", json_integer(p->tasks));
	if (p->cpt != 1)
		json_object_set_new_nocheck(n, "cpus_per_task", json_integer(p->cpt));
	if (p->nodes)
		json_object_set_new_nocheck(n, "nodes", json_integer(p->nodes));
	if (p->launcher)
		json_object_set_new_nocheck(n, "launcher", json_string_nocheck(p->launcher));
}

static int normalise_scalars(struct ferry_engine *eng, const struct spec_in *spec, json_t *n,
			     char *err, size_t errlen)
{
	struct parallel par;
	json_int_t disposal, cpus, mem, wall;
	const struct ferry_backend *be = ferry__engine_backend(eng);
	int join, hold, rc, slots = be->slots ? be->slots(ferry__engine_backend_self(eng)) : 0;
	const char *name, *queue, *native, *key;

	if ((rc = opt_string(spec, K_name, FERRY_SPEC_NAME_MAX, &name, err, errlen)) ||
	    (rc = opt_string(spec, K_queue, 256, &queue, err, errlen)) ||
	    (rc = opt_string(spec, K_native_specification, 65536, &native, err, errlen)) ||
	    (rc = opt_string(spec, K_submission_key, FERRY_SPEC_KEY_MAX, &key, err, errlen)) ||
	    (rc = opt_int(spec, K_disposal_timeout_hours, 1, FERRY_SPEC_DISPOSAL_MAX, 168,
			  &disposal, err, errlen)) ||
	    (rc = opt_int(spec, K_cpus, 1, FERRY_SPEC_CPUS_MAX, 1, &cpus, err, errlen)) ||
	    (rc = opt_int(spec, K_memory_mb, 0, FERRY_SPEC_MEMORY_MAX, 0, &mem, err, errlen)) ||
	    (rc = opt_int(spec, K_walltime_s, 0, FERRY_SPEC_WALLTIME_MAX, 0, &wall, err, errlen)) ||
	    (rc = opt_bool(spec, K_join_stderrout, &join, err, errlen)) ||
	    (rc = opt_bool(spec, K_hold, &hold, err, errlen)) ||
	    (rc = read_parallel(spec, &cpus, &par, err, errlen)))
		return rc;
	if (key && !*key)
		return ferry__fail(err, errlen, FERRY_EINVAL, "'submission_key' is empty");
	if (slots > 0 && cpus > slots)
		return ferry__fail(err, errlen, FERRY_ERESOURCE,
				   "the job asks for %lld cpus but resource '%s' has %d slots",
				   (long long)cpus, ferry__engine_resource(eng), slots);
	json_object_set_new_nocheck(n, "name", checked_string(spec, K_name));
	json_object_set_new_nocheck(n, "queue", checked_string(spec, K_queue));
	json_object_set_new_nocheck(n, "native_specification",
				    checked_string(spec, K_native_specification));
	json_object_set_new_nocheck(n, "submission_key", checked_string(spec, K_submission_key));
	json_object_set_new_nocheck(n, "disposal_timeout_hours", json_integer(disposal));
	json_object_set_new_nocheck(n, "cpus", json_integer(cpus));
	json_object_set_new_nocheck(n, "memory_mb", json_integer(mem));
	json_object_set_new_nocheck(n, "walltime_s", json_integer(wall));
	json_object_set_new_nocheck(n, "join_stderrout", json_boolean(join));
	json_object_set_new_nocheck(n, "hold", json_boolean(hold));
	json_object_set_new_nocheck(n, "backend", json_string_nocheck(be->name));
	json_object_set_new_nocheck(n, "resource", json_string(ferry__engine_resource(eng)));
	set_parallel(n, &par);
	return 0;
}

/* Returns a normalised copy of spec (resolved paths, defaults), or NULL. */
json_t *ferry__spec_normalise(struct ferry_engine *eng, json_t *spec, json_t *common, int late,
			      char **seen, char *err, size_t errlen, int *code)
{
	const struct ferry_backend *be = ferry__engine_backend(eng);
	json_t *n = json_object();
	const char *cwd = NULL;
	struct spec_in in;
	int rc;

	if (!n) {
		*code = ferry__fail(err, errlen, FERRY_ENOMEM, "out of memory");
		return NULL;
	}
	if (!json_is_object(spec)) {
		rc = ferry__fail(err, errlen, FERRY_EINVAL, "a job spec must be a json object");
		goto bad;
	}
	/* the batch's common fields first: the job's own, null included, win */
	memset(&in, 0, sizeof(in));
	if ((common && (rc = spec_in_take(common, &in, err, errlen))) ||
	    (rc = spec_in_take(spec, &in, err, errlen)))
		goto bad;
	in.late = late;
	if ((rc = normalise_scalars(eng, &in, n, err, errlen)) ||
	    (rc = normalise_paths(&in, n, seen, &cwd, err, errlen)) ||
	    (rc = normalise_arrays(eng, &in, n, cwd, err, errlen)) ||
	    (rc = normalise_base_env(eng, &in, n, err, errlen)))
		goto bad;
	if (be->check && (rc = be->check(ferry__engine_backend_self(eng), n, err, errlen)))
		goto bad;
	return n;
bad:
	json_decref(n);
	*code = rc;
	return NULL;
}
