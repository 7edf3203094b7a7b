/*
 * submit.c - `ferry submit`: one job from the command line, or one a line
 * of a --bulk file, after the --in/--out transfers it names.
 */
#include <ctype.h>
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "jbytes.h"
#include "subst.h"
#include "util.h"

/* A NULL-terminated array of borrowed strings. */
struct strv {
	const char **v;
	size_t n;
};

static int strv_push(struct strv *s, const char *str)
{
	const char **nv = realloc(s->v, (s->n + 2) * sizeof(*nv));

	if (!nv)
		return -1;
	nv[s->n++] = str;
	nv[s->n] = NULL;
	s->v = nv;
	return 0;
}

static void strv_free_all(struct strv *s)
{
	for (size_t i = 0; i < s->n; i++)
		free((char *)s->v[i]);
	free(s->v);
}

struct submit_opts {
	struct ferry_job_spec spec;
	struct strv env, inputs, outputs;
	struct strv ins, outs; /* --in and --out, as given */
	const char *cwd;
	const char *bulk;
	const char *key;
	int disposal_given;
	int env_clean;		/* --env-clean: no base_env */
	const char **base_env;	/* the submitter's environment (environ.c) */
	struct ferry_subst *xf; /* the --in paths, then the --out paths */
	size_t nxf;
	struct strv owned; /* strings made for the spec: freed at the end */
};

/* --cpus and a parallel job's counts: ints from 1 into their member of the spec. */
static int slots_opt(struct ctx *c, struct submit_opts *o, int opt, const char *arg)
{
	const char *name = opt == OPT_CPUS	      ? "--cpus"
			   : opt == OPT_TASKS	      ? "--tasks"
			   : opt == OPT_CPUS_PER_TASK ? "--cpus-per-task"
						      : "--nodes";
	int *member = opt == OPT_CPUS		 ? &o->spec.cpus
		      : opt == OPT_TASKS	 ? &o->spec.tasks
		      : opt == OPT_CPUS_PER_TASK ? &o->spec.cpus_per_task
						 : &o->spec.nodes;
	long long v;

	if (ferry__cli_int_option(c, name, arg, 1, INT_MAX, &v) < 0)
		return ferry__cli_usage_error(c);
	*member = (int)v;
	return CLI_OK;
}

static int submit_number_opt(struct ctx *c, struct submit_opts *o, int opt, const char *arg)
{
	long long v;

	switch (opt) {
	case OPT_DISPOSAL:
		if (ferry__cli_int_option(c, "--disposal", arg, 1, DISPOSAL_MAX_HOURS, &v) < 0)
			return ferry__cli_usage_error(c);
		o->spec.disposal_timeout_hours = (int)v;
		o->disposal_given = 1;
		break;
	case OPT_CPUS:
	case OPT_TASKS:
	case OPT_CPUS_PER_TASK:
	case OPT_NODES:
		return slots_opt(c, o, opt, arg);
	case OPT_MEMORY:
		if (ferry__parse_memory(arg, &o->spec.memory_mb) < 0) {
			ferry__cli_bad_value(c, "--memory", arg,
					     "expected megabytes, or a size like 512M or 2G");
			return ferry__cli_usage_error(c);
		}
		break;
	case OPT_WALLTIME:
		if (ferry__parse_walltime(arg, &o->spec.walltime_s) < 0) {
			ferry__cli_bad_value(c, "--walltime", arg,
					     "expected seconds or [[HH:]MM:]SS, at most 366 days");
			return ferry__cli_usage_error(c);
		}
		break;
	default:
		return ferry__cli_usage_error(c);
	}
	return CLI_OK;
}

static int submit_list_opt(struct ctx *c, struct submit_opts *o, int opt, const char *arg)
{
	struct strv *list = opt == OPT_ENV	? &o->env
			    : opt == OPT_INPUT	? &o->inputs
			    : opt == OPT_OUTPUT ? &o->outputs
			    : opt == OPT_IN	? &o->ins
						: &o->outs;

	if (opt == OPT_ENV && (!strchr(arg, '=') || arg[0] == '=')) {
		/* not echoed: what was given in place of NAME may be the secret VALUE */
		ferry__cli_errorf(c, "invalid value for --env: expected NAME=VALUE (%s)",
				  arg[0] == '=' ? "its NAME is empty" : "it has no '='");
		return ferry__cli_usage_error(c);
	}
	if ((opt == OPT_IN || opt == OPT_OUT) && !*arg) {
		ferry__cli_bad_value(c, opt == OPT_IN ? "--in" : "--out", arg,
				     "expected a local path");
		return ferry__cli_usage_error(c);
	}
	return strv_push(list, arg) < 0 ? ferry__cli_out_of_memory(c) : CLI_OK;
}

static int submit_opt(struct ctx *c, void *data, int opt, const char *arg)
{
	struct submit_opts *o = data;

	switch (opt) {
	case 'n':
		o->spec.name = arg;
		break;
	case 'o':
		o->spec.stdout_path = arg;
		break;
	case 'e':
		o->spec.stderr_path = arg;
		break;
	case 'i':
		o->spec.stdin_path = arg;
		break;
	case 'j':
		o->spec.join_stderrout = 1;
		break;
	case OPT_CWD:
		o->cwd = arg;
		break;
	case OPT_QUEUE:
		o->spec.queue = arg;
		break;
	case OPT_NATIVE:
		o->spec.native_specification = arg;
		break;
	case OPT_HOLD:
		o->spec.hold = 1;
		break;
	case OPT_KEY:
		o->key = arg;
		break;
	case OPT_BULK:
		o->bulk = arg;
		break;
	case OPT_ENV_CLEAN:
		o->env_clean = 1;
		break;
	case OPT_LAUNCHER:
		if (ferry_launcher_from_name(arg, &o->spec.launcher)) {
			ferry__cli_bad_value(c, "--launcher", arg, "expected mpi or none");
			return ferry__cli_usage_error(c);
		}
		break;
	case OPT_ENV:
	case OPT_INPUT:
	case OPT_OUTPUT:
	case OPT_IN:
	case OPT_OUT:
		return submit_list_opt(c, o, opt, arg);
	default:
		return submit_number_opt(c, o, opt, arg);
	}
	return CLI_OK;
}

/* The engine needs an absolute working directory; relative ones are ours. */
static char *absolute_dir(const struct ctx *c, const char *dir)
{
	char *cwd, *abs;

	if (dir && dir[0] == '/') {
		abs = strdup(dir);
		if (!abs)
			ferry__cli_out_of_memory(c);
		return abs;
	}
	cwd = getcwd(NULL, 0);
	if (!cwd) {
		ferry__cli_errorf(c, "cannot determine the current directory: %s",
				  ferry__cli_errno_str(errno));
		return NULL;
	}
	if (!dir || !*dir || strcmp(dir, ".") == 0)
		return cwd;
	abs = ferry__asprintf("%s/%s", cwd, dir);
	free(cwd);
	if (!abs)
		ferry__cli_out_of_memory(c);
	return abs;
}

/*
 * Jobs of a --bulk file read and submitted at a time: the client's memory
 * stays bounded whatever the file's size, and ids come as each part is
 * acknowledged.
 */
#define BULK_CHUNK 65536

struct bulk_job {
	char **argv;
	char *key;
	unsigned long line; /* of the --bulk file; 0 for the command line's */
};

/* The jobs read and not yet submitted; with --bulk, the file they come from. */
struct bulk {
	struct bulk_job *jobs;
	size_t n, cap;
	size_t base;	   /* jobs of the file before these: their keys number on */
	FILE *f;	   /* the --bulk file; NULL: none */
	const char *where; /* its name in messages */
	unsigned long lineno;
	char *line;
	size_t linecap;
	int eof;
	size_t submitted; /* jobs of the file submitted */
	size_t printed;	  /* ids printed */
};

/* Forgets the jobs submitted; the next read numbers on. */
static void bulk_clear(struct bulk *b)
{
	for (size_t i = 0; i < b->n; i++) {
		ferry__strv_free(b->jobs[i].argv);
		free(b->jobs[i].key);
	}
	b->base += b->n;
	b->n = 0;
}

static void bulk_release(struct bulk *b)
{
	bulk_clear(b);
	free(b->jobs);
	free(b->line);
	if (b->f && b->f != stdin)
		fclose(b->f);
}

/* Takes argv over. Keys are numbered from 1 so that resubmitting the file is idempotent. */
static int bulk_add(struct bulk *b, char **argv, const char *key, unsigned long line)
{
	struct bulk_job *j;

	if (b->n == b->cap) {
		size_t cap = b->cap ? b->cap * 2 : 64;

		j = cap < SIZE_MAX / sizeof(*j) ? realloc(b->jobs, cap * sizeof(*j)) : NULL;
		if (!j)
			goto fail;
		b->jobs = j;
		b->cap = cap;
	}
	j = &b->jobs[b->n];
	j->key = NULL;
	j->line = line;
	if (key) {
		j->key = ferry__asprintf("%s-%zu", key, b->base + b->n + 1);
		if (!j->key)
			goto fail;
	}
	j->argv = argv;
	b->n++;
	return 0;
fail:
	ferry__strv_free(argv);
	return -1;
}

static int blank_or_comment(const char *line)
{
	line += strspn(line, " \t");
	return *line == '\0' || *line == '\n' || *line == '\r' || *line == '#';
}

/* What became of the file when its reading or submitting stopped. */
static void bulk_fail(const struct ctx *c, const struct bulk *b, unsigned long line,
		      const char *why)
{
	char tail[128] = "nothing was submitted";

	if (b->submitted)
		snprintf(tail, sizeof(tail),
			 "%zu jobs submitted (their ids are printed), the others not",
			 b->submitted);
	if (line)
		ferry__cli_errorf(c, "%s:%lu: %s; %s", b->where, line, why, tail);
	else
		ferry__cli_errorf(c, "%s; %s", why, tail);
}

/* line holds n bytes as read: a NUL byte would end its text early, and the job run less. */
static int bulk_line(const struct ctx *c, struct bulk *b, char *line, size_t n, const char *key)
{
	size_t len = strcspn(line, "\r\n");
	const char *err = NULL;
	char **argv = NULL;
	int rc;

	if (memchr(line, '\0', n)) {
		bulk_fail(c, b, b->lineno, "NUL byte (not a text file?)");
		return -1;
	}
	if (blank_or_comment(line))
		return 0;
	line[len] = '\0';
	rc = ferry__split_words(line, &argv, &err);
	if (rc == -ENOMEM) {
		ferry__cli_out_of_memory(c);
		return -1;
	}
	if (rc < 0) {
		bulk_fail(c, b, b->lineno, err ? err : "invalid line");
		return -1;
	}
	if (!argv[0]) {
		ferry__strv_free(argv);
		return 0;
	}
	if (bulk_add(b, argv, key, b->lineno) < 0) {
		ferry__cli_out_of_memory(c);
		return -1;
	}
	return 0;
}

static int bulk_open(const struct ctx *c, const char *path, struct bulk *b)
{
	int from_stdin = strcmp(path, "-") == 0;

	b->where = from_stdin ? "(stdin)" : path;
	b->f = from_stdin ? stdin : fopen(path, "r");
	if (!b->f) {
		ferry__cli_errorf(c, "cannot open '%s': %s", path, ferry__cli_errno_str(errno));
		return CLI_ERR;
	}
	return CLI_OK;
}

/* The next BULK_CHUNK jobs of the file (fewer at its end: b->eof). */
static int bulk_read(const struct ctx *c, struct bulk *b, const char *key)
{
	ssize_t n = 0;

	bulk_clear(b);
	while (b->n < BULK_CHUNK && (n = getline(&b->line, &b->linecap, b->f)) >= 0) {
		b->lineno++;
		if (bulk_line(c, b, b->line, (size_t)n, key) < 0)
			return CLI_ERR;
	}
	if (n < 0 && ferror(b->f)) {
		char why[PATH_MAX + 64];
		snprintf(why, sizeof(why), "cannot read '%s': %s", b->where,
			 ferry__cli_errno_str(errno));
		bulk_fail(c, b, 0, why);
		return CLI_ERR;
	}
	b->eof = n < 0;
	return CLI_OK;
}

/* The ids of the jobs submitted, as they come: a JSON array (or object) closed at the end. */
static void print_ids(const struct ctx *c, struct bulk *b, const char *open,
		      const ferry_job_id *ids, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		if (!ids[i])
			continue; /* not submitted */
		if (c->json)
			printf("%s%" PRId64, b->printed ? ", " : open, ids[i]);
		else
			printf("%" PRId64 "\n", ids[i]);
		b->printed++;
	}
	fflush(stdout);
}

/* The command of a single submit, as a job of its own copy, like a line of --bulk. */
static int bulk_add_copy(const struct ctx *c, struct bulk *b, char *const *argv)
{
	size_t n = ferry__strv_len(argv);
	char **v = calloc(n + 1, sizeof(*v));

	for (size_t i = 0; v && i < n; i++) {
		if (!(v[i] = strdup(argv[i]))) {
			ferry__strv_free(v);
			v = NULL;
		}
	}
	if (!v || bulk_add(b, v, NULL, 0) < 0)
		return ferry__cli_out_of_memory(c);
	return CLI_OK;
}

/* ---- submit --in / --out (the rule is in subst.h and ferry(1)) ---- */

static int xf_is_input(const struct submit_opts *o, size_t i)
{
	return i < o->ins.n;
}

static const char *xf_option(const struct submit_opts *o, size_t i)
{
	return xf_is_input(o, i) ? "--in" : "--out";
}

/* The forms each path is looked for in; a path given twice would have two server paths. */
static int xf_prepare(const struct ctx *c, struct submit_opts *o)
{
	size_t n = o->ins.n + o->outs.n;

	if (!n)
		return CLI_OK;
	if (!(o->xf = calloc(n, sizeof(*o->xf))))
		return ferry__cli_out_of_memory(c);
	for (size_t i = 0; i < n; i++) {
		const char *p = xf_is_input(o, i) ? o->ins.v[i] : o->outs.v[i - o->ins.n];
		o->nxf = i + 1;
		if (ferry__subst_prepare(&o->xf[i], p) < 0) {
			if (errno == ENOMEM)
				return ferry__cli_out_of_memory(c);
			ferry__cli_errorf(c, "cannot determine the current directory: %s",
					  ferry__cli_errno_str(errno));
			return CLI_ERR;
		}
		for (size_t k = 0; k < i; k++) {
			if (strcmp(o->xf[k].abs, o->xf[i].abs) == 0) {
				ferry__cli_errorf(c, "'%s' is given twice (%s '%s', %s '%s')",
						  o->xf[i].abs, xf_option(o, k), o->xf[k].local,
						  xf_option(o, i), p);
				return ferry__cli_usage_error(c);
			}
		}
	}
	return CLI_OK;
}

/* *word becomes a copy with the paths replaced, which o frees at the end. */
static int subst_str(struct submit_opts *o, const char **word)
{
	char *w;

	if (!*word)
		return 0;
	w = ferry__subst_word(o->xf, o->nxf, *word);
	if (!w || strv_push(&o->owned, w) < 0) {
		free(w);
		return -1;
	}
	*word = w;
	return 0;
}

/* NAME=VALUE: only the value; a name is no path. */
static int subst_env(struct submit_opts *o, const char **entry)
{
	const char *eq = strchr(*entry, '=');
	char *val = ferry__subst_word(o->xf, o->nxf, eq + 1);
	char *w = val ? ferry__asprintf("%.*s=%s", (int)(eq - *entry), *entry, val) : NULL;

	free(val);
	if (!w || strv_push(&o->owned, w) < 0) {
		free(w);
		return -1;
	}
	*entry = w;
	return 0;
}

static int subst_argv(struct submit_opts *o, char **argv)
{
	for (; *argv; argv++) {
		char *w = ferry__subst_word(o->xf, o->nxf, *argv);
		if (!w)
			return -1;
		free(*argv);
		*argv = w;
	}
	return 0;
}

/* The commands of the jobs read, for each part of a --bulk file. */
static int subst_jobs(struct submit_opts *o, struct bulk *b)
{
	int bad = 0;

	for (size_t i = 0; i < b->n; i++)
		bad |= subst_argv(o, b->jobs[i].argv);
	return bad ? -1 : 0;
}

/*
 * Every word the rule covers. Before the transfers exist (no server
 * paths) this changes nothing and only finds which paths are named.
 */
static int subst_all(struct submit_opts *o, struct bulk *b)
{
	int bad = 0;

	bad |= subst_str(o, &o->spec.stdin_path);
	bad |= subst_str(o, &o->spec.stdout_path);
	bad |= subst_str(o, &o->spec.stderr_path);
	bad |= subst_str(o, &o->cwd);
	for (size_t i = 0; i < o->env.n; i++)
		bad |= subst_env(o, &o->env.v[i]);
	return bad || subst_jobs(o, b) < 0 ? -1 : 0;
}

/* A path the job is not told about would be sent for nothing: surely a mistake. */
static int xf_check_named(const struct ctx *c, const struct submit_opts *o)
{
	for (size_t i = 0; i < o->nxf; i++) {
		if (o->xf[i].used)
			continue;
		ferry__cli_errorf(
		    c,
		    "%s '%s' is named nowhere: neither as given nor as '%s' in the command, "
		    "--stdin, --stdout, --stderr, --cwd or an --env value (see 'ferry help "
		    "submit')",
		    xf_option(o, i), o->xf[i].local, o->xf[i].abs);
		return ferry__cli_usage_error(c);
	}
	return CLI_OK;
}

/* Sends each --in, registers each --out; the server paths join --input and --output. */
static int xf_make(struct ctx *c, struct submit_opts *o)
{
	int hours = o->disposal_given ? o->spec.disposal_timeout_hours : 0;

	ferry__bar_attach(&c->bar, c->conn);
	for (size_t i = 0; i < o->nxf; i++) {
		struct ferry_subst *x = &o->xf[i];
		int in = xf_is_input(o, i), rc;
		char *sp = NULL;

		c->bar.label = x->given;
		rc = in ? ferry_send_file(c->conn, x->local, hours, &sp)
			: ferry_register_transfer(c->conn, x->local, hours, &sp);
		ferry__bar_end(&c->bar);
		if (rc < 0) {
			ferry__cli_errorf(c, "%s '%s': %s", xf_option(o, i), x->local,
					  ferry__cli_api_msg(c, rc));
			return CLI_ERR;
		}
		if (strv_push(&o->owned, sp) < 0) {
			free(sp);
			return ferry__cli_out_of_memory(c);
		}
		x->server = sp;
		if (strv_push(in ? &o->inputs : &o->outputs, sp) < 0)
			return ferry__cli_out_of_memory(c);
	}
	return CLI_OK;
}

static int submit_transfers(struct ctx *c, struct submit_opts *o, struct bulk *b)
{
	int rc = xf_prepare(c, o);

	if (rc != CLI_OK || !o->nxf)
		return rc;
	if (subst_all(o, b) < 0)
		return ferry__cli_out_of_memory(c);
	rc = xf_check_named(c, o);
	if (rc != CLI_OK)
		return rc;
	if (ferry__cli_connect(c) < 0)
		return CLI_ERR;
	rc = xf_make(c, o);
	if (rc == CLI_OK && subst_all(o, b) < 0)
		rc = ferry__cli_out_of_memory(c);
	return rc;
}

/* After a failure, what stays on the server is for the user to know. */
static void report_made(const struct ctx *c, const struct submit_opts *o)
{
	int any = 0;

	for (size_t i = 0; i < o->nxf; i++) {
		if (!o->xf[i].server)
			continue;
		if (!any++)
			ferry__cli_errorf(
			    c, "no job was submitted; these transfers were made and remain "
			       "('ferry cancel-transfer SERVER_PATH' removes one; a new submit "
			       "finds unchanged --in paths already sent):");
		fprintf(stderr, "  %s <- %s (%s)\n", o->xf[i].server, o->xf[i].local,
			xf_is_input(o, i) ? "sent" : "registered");
	}
}

/* The jobs read, submitted: 0, or the library's code (ids: 0 for those not submitted). */
static int submit_jobs(struct ctx *c, const struct submit_opts *o, const struct bulk *b,
		       ferry_job_id *ids)
{
	struct ferry_job_spec *specs = calloc(b->n, sizeof(*specs));
	int rc;

	memset(ids, 0, b->n * sizeof(*ids)); /* none of the part before is counted again */
	if (!specs)
		return FERRY_ENOMEM;
	for (size_t i = 0; i < b->n; i++) {
		specs[i] = o->spec;
		specs[i].argv = (const char *const *)b->jobs[i].argv;
		specs[i].submission_key = o->bulk ? b->jobs[i].key : o->key;
	}
	rc = ferry_submit_many(c->conn, specs, b->n, ids);
	free(specs);
	return rc;
}

/*
 * The library names a failed job by its index in the call, after how
 * many were submitted ("K of n jobs submitted; job J: ..."): the file's
 * line instead, and how many of the file's jobs were submitted.
 */
static void bulk_report(const struct ctx *c, const struct bulk *b, int rc)
{
	const char *rest = ferry__cli_api_msg(c, rc);
	size_t j;
	int used = 0;

	if (sscanf(rest, "%*u of %*u jobs submitted; %n", &used) >= 0 && used > 0)
		rest += used;
	used = 0;
	if (sscanf(rest, "job %zu: %n", &j, &used) == 1 && used > 0 && j < b->n)
		bulk_fail(c, b, b->jobs[j].line, rest + used);
	else
		bulk_fail(c, b, 0, rest);
}

static json_t *xf_json(const struct submit_opts *o, int inputs);

/* Closes the JSON of the ids: an array, or with --in/--out an object with the server paths. */
static void print_ids_end(const struct ctx *c, const struct submit_opts *o, struct bulk *b,
			  const char *open)
{
	char *in = NULL, *out = NULL;
	json_t *v;

	if (!c->json)
		return;
	if (!b->printed)
		fputs(open, stdout);
	if (!o->nxf) {
		puts("]");
		return;
	}
	in = (v = xf_json(o, 1)) ? json_dumps(v, JSON_COMPACT) : NULL;
	json_decref(v);
	out = (v = xf_json(o, 0)) ? json_dumps(v, JSON_COMPACT) : NULL;
	json_decref(v);
	printf("], \"inputs\": %s, \"outputs\": %s}\n", in ? in : "null", out ? out : "null");
	free(in);
	free(out);
}

/*
 * A --bulk file, a part at a time: each part's ids are printed once it
 * is submitted, before the next is read. A failure stops at its part;
 * the ids printed are the jobs submitted.
 */
static int submit_bulk(struct ctx *c, struct submit_opts *o, struct bulk *b, ferry_job_id *ids)
{
	const char *open = c->json && o->nxf ? "{\"ids\": [" : "[";
	int rc = CLI_OK;

	while (b->n) {
		int api = submit_jobs(c, o, b, ids);
		for (size_t i = 0; i < b->n; i++)
			b->submitted += ids[i] != 0;
		print_ids(c, b, open, ids, b->n);
		if (api) {
			bulk_report(c, b, api);
			rc = CLI_ERR;
			break;
		}
		if (b->eof || (rc = bulk_read(c, b, o->key)) != CLI_OK)
			break;
		if (o->nxf && subst_jobs(o, b) < 0) {
			rc = ferry__cli_out_of_memory(c);
			break;
		}
	}
	if (rc == CLI_OK || b->printed)
		print_ids_end(c, o, b, open);
	return rc;
}

static int submit_run(struct ctx *c, struct submit_opts *o, struct bulk *b, ferry_job_id *ids)
{
	int rc = submit_transfers(c, o, b);
	char *cwd;

	if (rc != CLI_OK)
		return rc;
	cwd = absolute_dir(c, o->cwd);
	if (!cwd)
		return CLI_ERR;
	if (strv_push(&o->owned, cwd) < 0) {
		free(cwd);
		return ferry__cli_out_of_memory(c);
	}
	o->spec.working_directory = cwd;
	o->spec.env = o->env.v;
	o->spec.referenced_input_files = o->inputs.v;
	o->spec.referenced_output_files = o->outputs.v;
	if (ferry__cli_connect(c) < 0 ||
	    ferry__cli_base_env(c, o->env_clean, &o->base_env) != CLI_OK)
		return CLI_ERR;
	o->spec.base_env = o->base_env;
	if (o->bulk)
		return submit_bulk(c, o, b, ids);
	rc = submit_jobs(c, o, b, ids);
	return rc ? ferry__cli_report(c, rc) : CLI_OK;
}

static json_t *xf_json(const struct submit_opts *o, int inputs)
{
	json_t *a = json_array();

	for (size_t i = 0; a && i < o->nxf; i++) {
		if (xf_is_input(o, i) != inputs)
			continue;
		if (json_array_append_new(
			a, json_pack("{s:o,s:o}", "local_path", ferry__json_bytes(o->xf[i].local),
				     "server_path", ferry__json_bytes(o->xf[i].server))) < 0) {
			json_decref(a);
			return NULL;
		}
	}
	return a;
}

/* The id of a single submit; with --json and --in/--out, an object that also has the server paths.
 */
static int print_submitted(const struct ctx *c, const struct submit_opts *o, ferry_job_id id)
{
	json_t *j;

	if (!c->json || !o->nxf) {
		printf(c->json ? "{\"id\": %" PRId64 "}\n" : "%" PRId64 "\n", id);
		return CLI_OK;
	}
	j = json_pack("{s:I}", "id", (json_int_t)id);
	if (j && (json_object_set_new(j, "inputs", xf_json(o, 1)) < 0 ||
		  json_object_set_new(j, "outputs", xf_json(o, 0)) < 0)) {
		json_decref(j);
		j = NULL;
	}
	return ferry__cli_print_json(c, j, JSON_COMPACT);
}

static int submit_check(const struct ctx *c, const struct submit_opts *o, int nargs)
{
	if (o->bulk && nargs > 0)
		ferry__cli_errorf(c, "--bulk and a command exclude each other");
	else if (!o->bulk && nargs == 0)
		ferry__cli_errorf(c, "no command given");
	else if (o->bulk && o->outs.n)
		ferry__cli_errorf(
		    c, "--out and --bulk exclude each other: every job of the file would "
		       "write the one output (register one per job with 'ferry register' "
		       "and name it with --output)");
	else
		return CLI_OK;
	return ferry__cli_usage_error(c);
}

static void submit_release(struct submit_opts *o, struct bulk *b)
{
	for (size_t i = 0; i < o->nxf; i++)
		ferry__subst_release(&o->xf[i]);
	free(o->xf);
	strv_free_all(&o->owned);
	free(o->env.v);
	free(o->base_env);
	free(o->inputs.v);
	free(o->outputs.v);
	free(o->ins.v);
	free(o->outs.v);
	bulk_release(b);
}

int ferry__cli_cmd_submit(struct ctx *c, int argc, char **argv)
{
	static const struct option opts[] = {
	    {"help", no_argument, NULL, 'h'},
	    {"json", no_argument, NULL, OPT_JSON},
	    {"name", required_argument, NULL, 'n'},
	    {"stdout", required_argument, NULL, 'o'},
	    {"stderr", required_argument, NULL, 'e'},
	    {"stdin", required_argument, NULL, 'i'},
	    {"join", no_argument, NULL, 'j'},
	    {"cwd", required_argument, NULL, OPT_CWD},
	    {"env", required_argument, NULL, OPT_ENV},
	    {"env-clean", no_argument, NULL, OPT_ENV_CLEAN},
	    {"input", required_argument, NULL, OPT_INPUT},
	    {"output", required_argument, NULL, OPT_OUTPUT},
	    {"in", required_argument, NULL, OPT_IN},
	    {"out", required_argument, NULL, OPT_OUT},
	    {"disposal", required_argument, NULL, OPT_DISPOSAL},
	    {"cpus", required_argument, NULL, OPT_CPUS},
	    {"tasks", required_argument, NULL, OPT_TASKS},
	    {"cpus-per-task", required_argument, NULL, OPT_CPUS_PER_TASK},
	    {"nodes", required_argument, NULL, OPT_NODES},
	    {"launcher", required_argument, NULL, OPT_LAUNCHER},
	    {"memory", required_argument, NULL, OPT_MEMORY},
	    {"walltime", required_argument, NULL, OPT_WALLTIME},
	    {"queue", required_argument, NULL, OPT_QUEUE},
	    {"native", required_argument, NULL, OPT_NATIVE},
	    {"hold", no_argument, NULL, OPT_HOLD},
	    {"key", required_argument, NULL, OPT_KEY},
	    {"bulk", required_argument, NULL, OPT_BULK},
	    {0},
	};
	struct submit_opts o = {0};
	struct bulk b = {0};
	ferry_job_id *ids = NULL;
	int rc;

	ferry_job_spec_init(&o.spec);
	/* '+': options end at the command, whose own options are its business. */
	rc = ferry__cli_parse_opts(c, argc, argv, "+hn:o:e:i:j", opts, submit_opt, &o);
	if (rc == CLI_OK)
		rc = submit_check(c, &o, argc - optind);
	if (rc == CLI_OK)
		rc = o.bulk ? bulk_open(c, o.bulk, &b) : bulk_add_copy(c, &b, argv + optind);
	if (rc == CLI_OK && o.bulk) /* the first part: the transfers are for the whole file */
		rc = bulk_read(c, &b, o.key);
	if (rc == CLI_OK && b.n && !(ids = calloc(b.n, sizeof(*ids))))
		rc = ferry__cli_out_of_memory(c);
	if (rc == CLI_OK && b.n)
		rc = submit_run(c, &o, &b, ids);
	else if (rc == CLI_OK) /* an empty --bulk file submits nothing, and says so with no ids */
		print_ids_end(c, &o, &b, "[");
	if (rc == CLI_OK && !o.bulk)
		rc = print_submitted(c, &o, ids[0]);
	else if (rc != CLI_OK && rc != CLI_DONE && !b.submitted)
		report_made(c, &o);
	free(ids);
	submit_release(&o, &b);
	return rc;
}
