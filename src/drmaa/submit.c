/*
 * submit.c - drmaa_run_job() and drmaa_run_bulk_jobs(): a job template
 * becomes ferry job specs (placeholders expanded per job, paths made
 * absolute against the job's working directory), submitted in one
 * ferry_submit_many() call.
 */
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "internal.h"
#include "util.h"

/*
 * The caller's home directory, malloc'd: $drmaa_hd_ph$ of a path of its
 * host (drmaa_transfer_files). getpwuid_r(): the client's other threads
 * may be in getpwuid() meanwhile. NULL without memory.
 */
static char *client_home(void)
{
	const char *home = getenv("HOME");
	struct passwd pw, *found = NULL;
	char buf[4096];

	if (home && *home)
		return strdup(home);
	if (getpwuid_r(getuid(), &pw, buf, sizeof(buf), &found) == 0 && found && pw.pw_dir)
		return strdup(pw.pw_dir);
	return strdup("/");
}

/* What the jobs of one template share: made once, borrowed by every spec. */
struct common {
	struct ferry_job_spec spec;
	const char **argv;
	char **words;
	char *cwd;
	char *home;	   /* for $drmaa_hd_ph$; NULL: no path of the template names it */
	char *client_home; /* the same of a file transferred (drmaa_transfer_files) */
	ferry_conn *conn;
	const char *transfer; /* drmaa_transfer_files: "" for none */
};

static void common_free(struct common *c)
{
	free(c->argv);
	ferry__strv_free(c->words);
	free(c->cwd);
	free(c->home);
	free(c->client_home);
}

static int common_argv(struct common *c, const drmaa_job_template_t *jt, char *diag, size_t len)
{
	char **args = jt->vector[DRMAA__V_ARGV];
	size_t n = args ? ferry__strv_len(args) : 0;

	if (!jt->scalar[DRMAA__REMOTE_COMMAND])
		return drmaa__diag(diag, len, DRMAA_ERRNO_INVALID_ATTRIBUTE_VALUE,
				   "drmaa_remote_command is not set: a job needs a command");
	c->argv = calloc(n + 2, sizeof(*c->argv));
	if (!c->argv)
		return drmaa__diag(diag, len, DRMAA_ERRNO_NO_MEMORY, "out of memory");
	c->argv[0] = jt->scalar[DRMAA__REMOTE_COMMAND];
	for (size_t i = 0; i < n; i++)
		c->argv[i + 1] = args[i];
	c->spec.argv = c->argv;
	return 0;
}

/*
 * $drmaa_hd_ph$ is the home directory of the jobs' user on the resource's
 * host, which the engine tells: on a remote resource it is not the
 * caller's. Asked only of a template whose paths name it (a path that
 * drmaa_transfer_files makes a transfer names the caller's host: its
 * home is the caller's).
 */
static int common_home(struct common *c, ferry_conn *conn, const drmaa_job_template_t *jt,
		       char *diag, size_t len)
{
	static const enum drmaa__scalar paths[] = {DRMAA__WD, DRMAA__INPUT_PATH, DRMAA__OUTPUT_PATH,
						   DRMAA__ERROR_PATH};
	int n = 0, rc;
	size_t i;

	for (i = 0; i < sizeof(paths) / sizeof(paths[0]); i++)
		if (jt->scalar[paths[i]] && strstr(jt->scalar[paths[i]], "$drmaa_hd_ph$"))
			break;
	if (i == sizeof(paths) / sizeof(paths[0]))
		return 0;
	/* The engine tells it in its hello, which a connection may not have said yet. */
	if (ferry_engine_home(conn, NULL, 0) == 0 && (rc = ferry_ping(conn)) != 0)
		return drmaa__ferry_error(conn, rc, diag, len);
	n = ferry_engine_home(conn, NULL, 0);
	if (n <= 0)
		return drmaa__diag(diag, len, DRMAA_ERRNO_DENIED_BY_DRM,
				   "the engine of resource '%s' does not tell its home directory "
				   "(an older ferry): $drmaa_hd_ph$ cannot be expanded",
				   ferry_resource(conn));
	c->home = malloc((size_t)n + 1);
	if (!c->home)
		return drmaa__diag(diag, len, DRMAA_ERRNO_NO_MEMORY, "out of memory");
	ferry_engine_home(conn, c->home, (size_t)n + 1);
	return 0;
}

static int common_init(struct common *c, ferry_conn *conn, const drmaa_job_template_t *jt,
		       char *diag, size_t len)
{
	const char *const *s = (const char *const *)jt->scalar;
	int rc;

	ferry_job_spec_init(&c->spec);
	rc = common_argv(c, jt, diag, len);
	if (rc)
		return rc;
	if (s[DRMAA__NATIVE] &&
	    (rc = drmaa__native(s[DRMAA__NATIVE], &c->spec, &c->words, diag, len)) != 0)
		return rc;
	if (s[DRMAA__WCT_HLIMIT] && *s[DRMAA__WCT_HLIMIT]) {
		if (c->spec.walltime_s)
			return drmaa__diag(diag, len, DRMAA_ERRNO_CONFLICTING_ATTRIBUTE_VALUES,
					   "drmaa_wct_hlimit and --walltime of "
					   "drmaa_native_specification both set the wall-clock "
					   "limit");
		ferry__parse_walltime(s[DRMAA__WCT_HLIMIT], &c->spec.walltime_s);
	}
	c->spec.name = s[DRMAA__JOB_NAME];
	c->spec.env = (const char *const *)jt->vector[DRMAA__V_ENV];
	c->spec.hold = s[DRMAA__JS_STATE] && strcmp(s[DRMAA__JS_STATE], "drmaa_hold") == 0;
	c->spec.join_stderrout = s[DRMAA__JOIN_FILES] && strcmp(s[DRMAA__JOIN_FILES], "y") == 0;
	c->conn = conn;
	c->transfer = s[DRMAA__TRANSFER_FILES] ? s[DRMAA__TRANSFER_FILES] : "";
	c->cwd = getcwd(NULL, 0);
	if (!c->cwd)
		return drmaa__diag(diag, len, DRMAA_ERRNO_INTERNAL_ERROR,
				   "cannot determine the current directory: %s", strerror(errno));
	if (*c->transfer && !(c->client_home = client_home()))
		return drmaa__diag(diag, len, DRMAA_ERRNO_NO_MEMORY, "out of memory");
	return common_home(c, conn, jt, diag, len);
}

/* The strings made for one job's spec; x*: the server paths of its transfers. */
struct job_strings {
	char *wd, *in, *out, *err;
	char *xin, *xout, *xerr;
	const char *refin[2], *refout[3];
	char *index;	  /* BULK_INDEX=N of a job of a bulk */
	const char **env; /* its env: index, then the template's drmaa_v_env */
};

/* The variable that tells a job of drmaa_run_bulk_jobs() its index. */
#define BULK_INDEX "DRMAA_BULK_INDEX"

static void job_strings_free(struct job_strings *j)
{
	free(j->wd);
	free(j->in);
	free(j->out);
	free(j->err);
	free(j->xin);
	free(j->xout);
	free(j->xerr);
	free(j->index);
	free(j->env);
}

/*
 * The spec leaves how a job of a bulk learns its index to the
 * implementation: $DRMAA_BULK_INDEX, unless the template's drmaa_v_env
 * sets that variable itself. 0 or DRMAA_ERRNO_NO_MEMORY.
 */
static int bulk_env(const struct common *c, long index, struct ferry_job_spec *spec,
		    struct job_strings *j, char *diag, size_t len)
{
	const char *const *env = c->spec.env;
	size_t n = 0;

	for (; env && env[n]; n++)
		if (strncmp(env[n], BULK_INDEX "=", strlen(BULK_INDEX "=")) == 0)
			return 0;
	j->index = ferry__asprintf(BULK_INDEX "=%ld", index);
	j->env = calloc(n + 2, sizeof(*j->env));
	if (!j->index || !j->env)
		return drmaa__diag(diag, len, DRMAA_ERRNO_NO_MEMORY, "out of memory");
	j->env[0] = j->index;
	if (n)
		memcpy(j->env + 1, env, n * sizeof(*env));
	spec->env = j->env;
	return 0;
}

/* A path that names a directory: it ends in '/', or is one on this host. */
static int names_directory(const char *path)
{
	size_t n = strlen(path);
	struct stat st;

	return (n && path[n - 1] == '/') || (stat(path, &st) == 0 && S_ISDIR(st.st_mode));
}

/*
 * *path naming a directory becomes the file NAME.o (stream 'o') or NAME.e
 * in it, NAME.o.INDEX for a job of a bulk (index > 0): Grid Engine's
 * NAME.oJOBID without the job id, which is not known before submission.
 * Snakemake's --drmaa-log-dir gives a directory as both paths. NAME is
 * the job name, or the command's last component as Grid Engine takes it,
 * with '/' made '_'. 0 or DRMAA_ERRNO_NO_MEMORY.
 */
static int file_in_directory(char **path, const drmaa_job_template_t *jt, char stream, long index,
			     char *diag, size_t len)
{
	const char *name = jt->scalar[DRMAA__JOB_NAME], *cmd = jt->scalar[DRMAA__REMOTE_COMMAND];
	const char *sep = (*path)[strlen(*path) - 1] == '/' ? "" : "/";
	char *file, *slash;
	size_t at;

	if (!name || !*name)
		name = cmd && strrchr(cmd, '/') ? strrchr(cmd, '/') + 1 : cmd ? cmd : "";
	file = index > 0 ? ferry__asprintf("%s%s%s.%c.%ld", *path, sep, name, stream, index)
			 : ferry__asprintf("%s%s%s.%c", *path, sep, name, stream);
	if (!file)
		return drmaa__diag(diag, len, DRMAA_ERRNO_NO_MEMORY, "out of memory");
	at = strlen(*path) + strlen(sep);
	while ((slash = strchr(file + at, '/')) != NULL)
		*slash = '_';
	free(*path);
	*path = file;
	return 0;
}

/*
 * *out: value's path expanded for job index (NULL when unset or empty); of
 * stream 'o' or 'e' (0: the input), a directory gets a file in it. 0 or
 * an error code.
 */
static int job_path(const struct common *c, const drmaa_job_template_t *jt, const char *attr,
		    const char *value, char stream, long index, const char *wd, char **out,
		    char *diag, size_t len)
{
	const char *path;
	int rc;

	*out = NULL;
	if (!value || !*value)
		return 0;
	rc = drmaa__path(attr, value, strchr(c->transfer, stream ? stream : 'i') != NULL, &path,
			 diag, len);
	if (rc)
		return rc;
	/* A file that ferry transfers is the caller's, in the caller's home. */
	*out = drmaa__expand(path, index, wd,
			     strchr(c->transfer, stream ? stream : 'i') ? c->client_home : c->home);
	if (!*out)
		return drmaa__diag(diag, len, DRMAA_ERRNO_NO_MEMORY, "out of memory");
	return stream && names_directory(*out)
		   ? file_in_directory(out, jt, stream, index, diag, len)
		   : 0;
}

/*
 * A file of the client's host made a ferry transfer, as `ferry submit --in`
 * and `--out` do: an input sent now (the job waits until it is there), an
 * output registered (the job writes the engine's copy; a wait retrieves
 * it). *server is the path the job uses.
 */
static int stage_one(const struct common *c, const char *attr, const char *path, int input,
		     char **server, char *diag, size_t len)
{
	int rc = input ? ferry_send_file(c->conn, path, 0, server)
		       : ferry_register_transfer(c->conn, path, 0, server);

	if (!rc)
		return 0;
	*server = NULL;
	return drmaa__diag(diag, len,
			   rc == FERRY_EINVAL ? DRMAA_ERRNO_INVALID_ATTRIBUTE_VALUE
					      : drmaa__ferry_error(c->conn, rc, NULL, 0),
			   "%s '%s' (drmaa_transfer_files): cannot %s it: %s", attr, path,
			   input ? "send" : "register", ferry_errmsg(c->conn));
}

/* The files drmaa_transfer_files names go through ferry's transfers. */
static int stage(const struct common *c, struct ferry_job_spec *spec, struct job_strings *j,
		 char *diag, size_t len)
{
	size_t nout = 0;
	int rc = 0;

	if (strchr(c->transfer, 'i') && j->in &&
	    !(rc = stage_one(c, DRMAA_INPUT_PATH, j->in, 1, &j->xin, diag, len))) {
		spec->stdin_path = j->refin[0] = j->xin;
		spec->referenced_input_files = j->refin;
	}
	if (!rc && strchr(c->transfer, 'o') && j->out &&
	    !(rc = stage_one(c, DRMAA_OUTPUT_PATH, j->out, 0, &j->xout, diag, len)))
		spec->stdout_path = j->refout[nout++] = j->xout;
	if (!rc && strchr(c->transfer, 'e') && j->err &&
	    !(rc = stage_one(c, DRMAA_ERROR_PATH, j->err, 0, &j->xerr, diag, len)))
		spec->stderr_path = j->refout[nout++] = j->xerr;
	if (nout)
		spec->referenced_output_files = j->refout;
	return rc;
}

/* spec (a copy of the common one) for job index of jt; its strings in *j. */
static int job_spec(const struct common *c, const drmaa_job_template_t *jt, long index,
		    struct ferry_job_spec *spec, struct job_strings *j, char *diag, size_t len)
{
	const char *const *s = (const char *const *)jt->scalar;
	const char *wd = s[DRMAA__WD];
	int rc;

	*spec = c->spec;
	j->wd = wd && *wd ? drmaa__expand(wd, index, c->cwd, c->home) : strdup(c->cwd);
	if (!j->wd)
		return drmaa__diag(diag, len, DRMAA_ERRNO_NO_MEMORY, "out of memory");
	/* A bulk's indexes start at 1: drmaa_run_job()'s job (index 0) has none. */
	if (index > 0 && (rc = bulk_env(c, index, spec, j, diag, len)) != 0)
		return rc;
	rc = job_path(c, jt, DRMAA_INPUT_PATH, s[DRMAA__INPUT_PATH], 0, index, j->wd, &j->in, diag,
		      len);
	if (!rc)
		rc = job_path(c, jt, DRMAA_OUTPUT_PATH, s[DRMAA__OUTPUT_PATH], 'o', index, j->wd,
			      &j->out, diag, len);
	/* With drmaa_join_files the error stream goes to the output: the spec ignores the path. */
	if (!rc && !spec->join_stderrout)
		rc = job_path(c, jt, DRMAA_ERROR_PATH, s[DRMAA__ERROR_PATH], 'e', index, j->wd,
			      &j->err, diag, len);
	spec->working_directory = j->wd;
	spec->stdin_path = j->in;
	spec->stdout_path = j->out;
	spec->stderr_path = j->err;
	return rc ? rc : stage(c, spec, j, diag, len);
}

/*
 * After a failed submission, the transfers made for the jobs that were not
 * submitted go (ids[i] 0), as no job will use them. The engine refuses
 * (and keeps) one that an unfinished job names: an unchanged input sent
 * before may be another job's too. The call's message is in diag already.
 */
static void unstage(ferry_conn *conn, const struct job_strings *strs, size_t n,
		    const ferry_job_id *ids)
{
	for (size_t i = 0; i < n; i++) {
		const char *x[] = {strs[i].xin, strs[i].xout, strs[i].xerr};
		for (size_t k = 0; !ids[i] && k < sizeof(x) / sizeof(x[0]); k++)
			if (x[k])
				ferry_cancel_transfer(conn, x[k], 0);
	}
}

/* Submits the jobs start, start + incr, ... end of jt; ids[] gets n ids. */
static int submit(ferry_conn *conn, const drmaa_job_template_t *jt, long start, long incr, size_t n,
		  ferry_job_id *ids, char *diag, size_t len)
{
	struct ferry_job_spec *specs = calloc(n, sizeof(*specs));
	struct job_strings *strs = calloc(n, sizeof(*strs));
	struct common c = {0};
	size_t made = 0;
	int lost = 0, rc;

	rc = specs && strs ? common_init(&c, conn, jt, diag, len)
			   : drmaa__diag(diag, len, DRMAA_ERRNO_NO_MEMORY, "out of memory");
	for (; !rc && made < n; made++)
		rc = job_spec(&c, jt, start + (long)made * incr, &specs[made], &strs[made], diag,
			      len);
	if (rc)
		goto out;
	rc = ferry_submit_many(conn, specs, n, ids);
	/* Jobs submitted before a failure are the session's too (DRMAA_JOB_IDS_SESSION_ALL). */
	for (size_t i = 0; i < n; i++)
		if (ids[i] && drmaa__track(&ids[i], 1, strpbrk(c.transfer, "oe") != NULL) < 0)
			lost = 1;
	if (rc)
		rc = rc == FERRY_EINVAL
			 ? drmaa__diag(diag, len, DRMAA_ERRNO_INVALID_ATTRIBUTE_VALUE, "%s",
				       ferry_errmsg(conn))
		     : rc == FERRY_EUNSUPPORTED || rc == FERRY_ERESOURCE
			 ? drmaa__diag(diag, len, DRMAA_ERRNO_DENIED_BY_DRM, "%s",
				       ferry_errmsg(conn))
			 : drmaa__ferry_error(conn, rc, diag, len);
	else if (lost)
		rc = drmaa__diag(diag, len, DRMAA_ERRNO_NO_MEMORY,
				 "out of memory (the jobs were submitted, but not all are known "
				 "to the session)");
out:
	if (rc && strs)
		unstage(conn, strs, made, ids);
	for (size_t i = 0; strs && i < made; i++)
		job_strings_free(&strs[i]);
	common_free(&c);
	free(specs);
	free(strs);
	return rc;
}

int drmaa_run_job(char *job_id, size_t job_id_len, const drmaa_job_template_t *jt,
		  char *error_diagnosis, size_t error_diag_len)
{
	ferry_job_id id = 0;
	ferry_conn *conn;
	int rc;

	if (!job_id || !job_id_len || !jt)
		return drmaa__diag(error_diagnosis, error_diag_len, DRMAA_ERRNO_INVALID_ARGUMENT,
				   "job_id and jt must not be NULL");
	rc = drmaa__enter(&conn, error_diagnosis, error_diag_len);
	if (rc)
		return rc;
	/* A single job's placeholder $drmaa_incr_ph$ has no index: the spec leaves it; 0 here. */
	rc = submit(conn, jt, 0, 1, 1, &id, error_diagnosis, error_diag_len);
	drmaa__leave();
	if (!rc)
		snprintf(job_id, job_id_len, "%" PRId64, id);
	return rc;
}

static int bulk_ids(const ferry_job_id *ids, size_t n, drmaa_job_ids_t **jobids, char *diag,
		    size_t len)
{
	drmaa_job_ids_t *v = calloc(1, sizeof(*v));
	char buf[32];
	int rc = v ? 0 : DRMAA_ERRNO_NO_MEMORY;

	for (size_t i = 0; !rc && i < n; i++) {
		snprintf(buf, sizeof(buf), "%" PRId64, ids[i]);
		rc = drmaa__strv_push(&v->s, buf);
	}
	if (rc) {
		drmaa_release_job_ids(v);
		return drmaa__diag(diag, len, rc,
				   "out of memory (the %zu jobs were submitted: "
				   "DRMAA_JOB_IDS_SESSION_ALL names them)",
				   n);
	}
	*jobids = v;
	return 0;
}

int drmaa_run_bulk_jobs(drmaa_job_ids_t **jobids, const drmaa_job_template_t *jt, int start,
			int end, int incr, char *error_diagnosis, size_t error_diag_len)
{
	ferry_job_id *ids;
	ferry_conn *conn;
	size_t n;
	int rc;

	if (!jobids || !jt || start < 1 || end < start || incr < 1)
		return drmaa__diag(error_diagnosis, error_diag_len, DRMAA_ERRNO_INVALID_ARGUMENT,
				   "expected jobids and jt, 1 <= start <= end and incr >= 1 "
				   "(got %d, %d, %d)",
				   start, end, incr);
	n = (size_t)(((long)end - start) / incr + 1);
	ids = calloc(n, sizeof(*ids));
	if (!ids)
		return drmaa__diag(error_diagnosis, error_diag_len, DRMAA_ERRNO_NO_MEMORY,
				   "out of memory");
	rc = drmaa__enter(&conn, error_diagnosis, error_diag_len);
	if (!rc) {
		rc = submit(conn, jt, start, incr, n, ids, error_diagnosis, error_diag_len);
		drmaa__leave();
	}
	if (!rc)
		rc = bulk_ids(ids, n, jobids, error_diagnosis, error_diag_len);
	free(ids);
	return rc;
}
