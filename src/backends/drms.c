/*
 * drms.c - what the backends in front of a DRMS (slurm, drmaa) share: the
 * bash script a DRMS runs for a job (drms.h says what it does and why),
 * the set of jobs handed over, and which jobs may share a job array.
 */
#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <string.h>
#include <sys/stat.h>

#include "drms.h"
#include "jobenv.h"
#include "run.h"
#include "util.h"
#include "work.h"

static const char *spec_str(json_t *spec, const char *key)
{
	return json_string_value(json_object_get(spec, key));
}

char *ferry__job_dir(struct ferry_engine *eng, int64_t id)
{
	return ferry__asprintf("%s/%lld", ferry__engine_jobs_dir(eng), (long long)id);
}

void ferry__sh_quote(FILE *f, const char *s)
{
	fputc('\'', f);
	for (; *s; s++) {
		if (*s == '\'')
			fputs("'\\''", f);
		else
			fputc(*s, f);
	}
	fputc('\'', f);
}

void ferry__script_head(struct ferry_engine *eng, FILE *f, const char *native)
{
	fprintf(f, "#!/bin/bash\n# ferry: resource '%s', engine %s\n", ferry__engine_resource(eng),
		ferry__engine_instance(eng));
	fputs("fail() { printf '%s\\n' \"$1\" >\"$d/ferry-exec\" 2>/dev/null; exit 127; }\n", f);
	/* a job's env may set SLURM_JOB_ID or JOB_ID: the mark must hold the DRMS's */
	fprintf(f, "readonly FERRY_NATIVE_ID=\"%s\"\n", native);
}

void ferry__script_tail(FILE *f, const char *launch)
{
	/* what ferry__script_started and ferry__script_native look for */
	fputs("printf '%s\\n' \"$FERRY_NATIVE_ID\" >\"$d/started\"\n", f);
	if (launch) {
		fprintf(f, "exec %s -- \"$@\"\n", launch);
	} else {
		fputs("shopt -s execfail\nexec -- \"$@\"\n", f);
		fputs("e=$?\nprintf 'exec %d\\n' \"$e\" >\"$d/ferry-exec\"\nexit $e\n", f);
	}
}

int ferry__script_started(struct ferry_engine *eng, struct job *j, double *at)
{
	char *dir = ferry__job_dir(eng, j->id),
	     *path = dir ? ferry__asprintf("%s/started", dir) : NULL;
	struct stat st;
	int rc = path && stat(path, &st) == 0;

	if (rc)
		*at = (double)st.st_mtim.tv_sec + st.st_mtim.tv_nsec / 1e9;
	free(dir);
	free(path);
	return rc;
}

/* The bytes of export lines for the strings of a, each after indent. */
static size_t strings_bytes(json_t *a, size_t each);

static void script_exports(FILE *f, json_t *a, const char *indent)
{
	size_t i;
	json_t *e;

	json_array_foreach(a, i, e)
	{
		fprintf(f, "%sexport -- ", indent);
		ferry__sh_quote(f, json_string_value(e));
		fputs("\n", f);
	}
}

int ferry__script_base_env(struct ferry_engine *eng, FILE *f, struct job *j, size_t *bytes,
			   char *err, size_t errlen)
{
	json_t *base;
	int rc = ferry__jobenv_get(eng, j->spec, &base, err, errlen);

	if (rc)
		return rc;
	if (f)
		script_exports(f, base, "");
	if (bytes)
		*bytes = strings_bytes(base, 12);
	return 0;
}

int ferry__script_job(struct ferry_engine *eng, FILE *f, struct job *j, const char *indent)
{
	json_t *spec = j->spec, *e;
	const char *in = spec_str(spec, "stdin_path"), *out = spec_str(spec, "stdout_path");
	const char *err = spec_str(spec, "stderr_path"), *cwd = spec_str(spec, "working_directory");
	char *dir = ferry__job_dir(eng, j->id);
	size_t i;

	if (!dir || (mkdir(dir, 0700) < 0 && errno != EEXIST)) {
		free(dir);
		return -1;
	}
	fprintf(f, "%sd=", indent);
	ferry__sh_quote(f, dir);
	fprintf(f, "\n%sexec <", indent);
	ferry__sh_quote(f, in ? in : "/dev/null");
	fputs(" >", f);
	if (out)
		ferry__sh_quote(f, out);
	else
		fputs("\"$d/stdout\"", f);
	if (json_is_true(json_object_get(spec, "join_stderrout"))) {
		fputs(" 2>&1", f);
	} else {
		fputs(" 2>", f);
		if (err)
			ferry__sh_quote(f, err);
		else
			fputs("\"$d/stderr\"", f);
	}
	/* bash goes on after a failed exec redirection: the job would run without its files */
	fputs(" || fail files\n", f);
	if (cwd) {
		fprintf(f, "%scd -- ", indent);
		ferry__sh_quote(f, cwd);
		fputs(" || fail cwd\n", f);
	}
	script_exports(f, json_object_get(spec, "env"), indent);
	fprintf(f, "%sset --", indent);
	json_array_foreach(json_object_get(spec, "argv"), i, e)
	{
		fputc(' ', f);
		ferry__sh_quote(f, json_string_value(e));
	}
	fputs("\n", f);
	free(dir);
	return 0;
}

/* What ferry__sh_quote() writes for s. */
static size_t quoted_bytes(const char *s)
{
	size_t n = 2;

	for (; s && *s; s++)
		n += *s == '\'' ? 4 : 1;
	return n;
}

static size_t strings_bytes(json_t *a, size_t each)
{
	size_t n = 0, i;
	json_t *e;

	json_array_foreach(a, i, e) n += each + quoted_bytes(json_string_value(e));
	return n;
}

size_t ferry__script_job_bytes(struct ferry_engine *eng, struct job *j, const char *indent)
{
	static const char *const paths[] = {"stdin_path", "stdout_path", "stderr_path",
					    "working_directory"};
	json_t *spec = j->spec;
	size_t in = strlen(indent),
	       n = 6 * in + 128 + 2 * (strlen(ferry__engine_jobs_dir(eng)) + 32);

	for (size_t i = 0; i < FERRY_ARRAY_SIZE(paths); i++)
		n += quoted_bytes(spec_str(spec, paths[i]));
	n += strings_bytes(json_object_get(spec, "env"), in + 12);
	return n + strings_bytes(json_object_get(spec, "argv"), 1);
}

/*
 * Bash's 127 before the start mark: the script's first redirection
 * failed, as its directory is not there on the node. 1 with res set, or 0.
 */
static int dir_unreached(struct ferry_engine *eng, struct job *j, const char *dir,
			 struct job_result *res)
{
	double at;

	if (res->exit_value != 127 || res->signal || ferry__script_started(eng, j, &at))
		return 0;
	res->exit_status = FERRY_ABORTED;
	snprintf(res->message, sizeof(res->message),
		 "the job's script found no directory '%s' on the node that ran it: %s", dir,
		 ferry__engine_cfg(eng)->job_dir
		     ? "is job_dir mounted there, at the same path?"
		     : "if the nodes do not see it, set the resource's job_dir to a directory "
		       "they share");
	return 1;
}

int ferry__script_exec_failure(struct ferry_engine *eng, struct job *j, struct job_result *res)
{
	char *dir = ferry__job_dir(eng, j->id),
	     *path = dir ? ferry__asprintf("%s/ferry-exec", dir) : NULL;
	char *text = NULL;
	const char *cmd = json_string_value(json_array_get(json_object_get(j->spec, "argv"), 0));
	int rc = path ? ferry__read_file(path, 4096, &text, NULL) : -1;

	if (rc < 0) {
		rc = rc == -ENOENT && dir_unreached(eng, j, dir, res);
		free(dir);
		free(path);
		return rc;
	}
	free(dir);
	free(path);
	res->exit_status = FERRY_ABORTED;
	if (!strncmp(text, "files", 5))
		snprintf(res->message, sizeof(res->message),
			 "cannot open the job's stdin, stdout or stderr file on the node that ran "
			 "it");
	else if (!strncmp(text, "cwd", 3))
		snprintf(res->message, sizeof(res->message),
			 "cannot enter the working directory '%s'",
			 json_string_value(json_object_get(j->spec, "working_directory")));
	else
		snprintf(res->message, sizeof(res->message), "cannot execute '%s': %s",
			 cmd ? cmd : "",
			 atoi(text + 5) == 126 ? "permission denied or not a program"
					       : "no such file or directory");
	free(text);
	return 1;
}

struct ferry_tracked *ferry__track_find(struct ferry_track_set *s, int64_t id)
{
	size_t lo = 0, hi = s->n;

	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		if (s->v[mid].id == id)
			return &s->v[mid];
		if (s->v[mid].id < id)
			lo = mid + 1;
		else
			hi = mid;
	}
	return NULL;
}

int ferry__track_add(struct ferry_track_set *s, int64_t id)
{
	size_t i = s->n;

	if (ferry__track_find(s, id))
		return 0;
	if (s->n == s->cap) {
		size_t cap = s->cap ? 2 * s->cap : 256;
		struct ferry_tracked *v = realloc(s->v, cap * sizeof(*v));
		if (!v)
			return -1;
		s->v = v;
		s->cap = cap;
	}
	while (i > 0 && s->v[i - 1].id > id)
		i--;
	memmove(&s->v[i + 1], &s->v[i], (s->n - i) * sizeof(*s->v));
	s->v[i] = (struct ferry_tracked){.id = id};
	s->n++;
	return 0;
}

void ferry__track_del(struct ferry_track_set *s, int64_t id)
{
	struct ferry_tracked *t = ferry__track_find(s, id);

	if (t) {
		size_t i = (size_t)(t - s->v);
		memmove(t, t + 1, (s->n - i - 1) * sizeof(*t));
		s->n--;
	}
}

void ferry__track_release(struct ferry_track_set *s)
{
	free(s->v);
	*s = (struct ferry_track_set){0};
}

void ferry__drms_uncertain(struct ferry_engine *eng, struct job *j)
{
	if (j->state == FERRY_UNDETERMINED)
		return;
	j->known = j->state;
	ferry__engine_job_state(eng, j, FERRY_UNDETERMINED, 0);
}

int ferry__same_batch(const struct job *a, const struct job *b)
{
	static const char *const keys[] = {
	    "cpus",  "memory_mb",     "walltime_s", "queue",   "name", "native_specification",
	    "hold",  "base_env", /* the script sets a batch's base_env once */
	    "tasks", "cpus_per_task", "nodes",	    "launcher"};

	if ((a->state == FERRY_USER_ON_HOLD) != (b->state == FERRY_USER_ON_HOLD))
		return 0;
	for (size_t i = 0; i < FERRY_ARRAY_SIZE(keys); i++) {
		json_t *x = json_object_get(a->spec, keys[i]),
		       *y = json_object_get(b->spec, keys[i]);
		/* json_equal() finds two absent values unequal: base_env is absent without one */
		if (x != y && !json_equal(x, y))
			return 0;
	}
	return 1;
}

struct listing_work {
	struct ferry_work w;
	struct ferry_listing *l;
	char *const *argv;
	char *text; /* what it printed when it succeeded */
};

static void listing_run(struct ferry_work *w)
{
	struct listing_work *lw = (struct listing_work *)w;
	struct ferry_output out, err;
	int status;

	if (ferry__run_command(lw->argv, NULL, 0, 30.0, w->cancel_fd, w->nofile, &out, &err,
			       &status) == 0 &&
	    WIFEXITED(status) && WEXITSTATUS(status) == 0) {
		lw->text = out.data;
		out.data = NULL;
	}
	ferry__output_release(&out);
	ferry__output_release(&err);
}

static void listing_done(struct ferry_engine *eng, struct ferry_work *w)
{
	struct listing_work *lw = (struct listing_work *)w;
	struct ferry_listing *l = lw->l;

	l->asking = 0;
	l->answered = 1;
	l->at = ferry__mono();
	if (lw->text) {
		free(l->text);
		l->text = lw->text;
	}
	free(lw);
	ferry__engine_backend_ready(eng);
}

int ferry__listing_get(struct ferry_engine *eng, struct ferry_listing *l, char *const *argv,
		       const char **text)
{
	struct listing_work *lw;

	*text = l->text;
	if (l->asking || (l->answered && ferry__mono() - l->at < 60))
		return l->answered ? 0 : FERRY__PENDING;
	if (!(lw = calloc(1, sizeof(*lw))))
		return 0; /* nothing to check against: the DRMS says what is wrong */
	lw->w = (struct ferry_work){.run = listing_run, .done = listing_done};
	lw->l = l;
	lw->argv = argv;
	l->asking = 1;
	ferry__worker_queue(ferry__engine_worker(eng), &lw->w);
	return l->answered ? 0 : FERRY__PENDING;
}

void ferry__listing_release(struct ferry_listing *l)
{
	free(l->text);
	l->text = NULL;
}

void ferry__drms_refresh(struct ferry_engine *eng, struct job *j)
{
	double at;

	if (j->state == FERRY_QUEUED_ACTIVE && ferry__script_started(eng, j, &at))
		ferry__engine_job_state(eng, j, FERRY_RUNNING, at);
}

int ferry__script_native(struct ferry_engine *eng, struct job *j, char *buf, size_t len)
{
	char *dir = ferry__job_dir(eng, j->id),
	     *path = dir ? ferry__asprintf("%s/started", dir) : NULL;
	char *text = NULL;
	int rc = path && ferry__read_file(path, 256, &text, NULL) == 0;

	if (rc) {
		size_t n = strcspn(text, "\n");
		rc = n > 0 && n < len && isdigit((unsigned char)text[0]);
		if (rc)
			snprintf(buf, len, "%.*s", (int)n, text);
	}
	free(text);
	free(dir);
	free(path);
	return rc;
}
