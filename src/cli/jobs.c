/*
 * jobs.c - the commands on jobs that exist: status, wait, info and jobs
 * (control.c acts on them, submit.c makes them, logs.c reads their output).
 */
#include <ctype.h>
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli.h"

static int parse_seconds(const char *s, double *out)
{
	char *end;
	double v;

	if (!*s || isspace((unsigned char)*s))
		return -1;
	errno = 0;
	v = strtod(s, &end);
	if (errno || *end || !isfinite(v) || v < 0)
		return -1;
	*out = v;
	return 0;
}

/* The options every command takes, job ids, then the connection. */
static int parse_ids_connect(struct ctx *c, int argc, char **argv, ferry_job_id **ids, size_t *n)
{
	int rc = ferry__cli_parse_plain(c, argc, argv);

	if (rc == CLI_OK)
		rc = ferry__cli_parse_ids(c, argc, argv, ids, n);
	if (rc == CLI_OK && ferry__cli_connect(c) < 0) {
		free(*ids);
		*ids = NULL;
		rc = CLI_ERR;
	}
	return rc;
}

/* ------------------------------------------------------------------ */
/* status */

static int status_json_add(json_t *arr, ferry_job_id id, enum ferry_job_status st)
{
	json_t *o =
	    json_pack("{s:I,s:s}", "id", (json_int_t)id, "status", ferry__cli_status_str(st));

	return o ? json_array_append_new(arr, o) : -1;
}

int ferry__cli_cmd_status(struct ctx *c, int argc, char **argv)
{
	enum ferry_job_status st;
	ferry_job_id *ids = NULL;
	json_t *arr = NULL;
	size_t n = 0, i;
	int rc, ret = parse_ids_connect(c, argc, argv, &ids, &n);

	if (ret != CLI_OK)
		return ret;
	if (c->json && !(arr = json_array())) {
		free(ids);
		return ferry__cli_out_of_memory(c);
	}
	for (i = 0; i < n; i++) {
		rc = ferry_status(c->conn, ids[i], &st);
		if (rc < 0) {
			ret = ferry__cli_report_id(c, ids[i], rc);
		} else if (arr) {
			if (status_json_add(arr, ids[i], st) < 0)
				ret = ferry__cli_out_of_memory(c);
		} else if (n == 1) {
			puts(ferry__cli_status_str(st));
		} else {
			printf("%" PRId64 " %s\n", ids[i], ferry__cli_status_str(st));
		}
	}
	if (arr && ferry__cli_print_json(c, arr, JSON_COMPACT) != CLI_OK)
		ret = CLI_ERR;
	free(ids);
	return ret;
}

/* ------------------------------------------------------------------ */
/* wait */

/* Room for each state a --state may name (they are fewer). */
struct wait_opts {
	double timeout;
	int all;
	struct cli_states states;
};

static int wait_opt(struct ctx *c, void *data, int opt, const char *arg)
{
	struct wait_opts *o = data;

	switch (opt) {
	case 't':
		if (parse_seconds(arg, &o->timeout) < 0) {
			ferry__cli_bad_value(c, "--timeout", arg, "expected seconds");
			return ferry__cli_usage_error(c);
		}
		break;
	case 'a':
		o->all = 1;
		break;
	case 's':
		return ferry__cli_add_state(c, &o->states, arg, 1);
	default:
		return ferry__cli_usage_error(c);
	}
	return CLI_OK;
}

static void report_failure(const struct ctx *c, ferry_job_id id)
{
	struct ferry_job_info *j = NULL;

	if (ferry_job_info(c->conn, id, &j) < 0) {
		fprintf(stderr, "job %" PRId64 " failed\n", id);
		return;
	}
	fprintf(stderr, "job %" PRId64 " failed: %s", id, ferry_exit_status_name(j->exit_status));
	if (j->exit_status == FERRY_FINISHED_REGULARLY)
		fprintf(stderr, " (exit value %d)", j->exit_value);
	else if (j->signal > 0)
		fprintf(stderr, " (signal %d)", j->signal);
	if (j->message && *j->message)
		fprintf(stderr, ": %s", j->message);
	fputc('\n', stderr);
	ferry_job_info_free(j);
}

/* A failed lookup outranks a failed job: then nothing sure can be said. */
static int check_ended(const struct ctx *c, const ferry_job_id *ids, size_t n)
{
	enum ferry_job_status st;
	int ret = CLI_OK, rc;
	size_t i;

	for (i = 0; i < n; i++) {
		rc = ferry_status(c->conn, ids[i], &st);
		/* Disposed while we waited: it ended, and nobody kept its outcome. */
		if (rc == FERRY_ENOJOB)
			continue;
		if (rc < 0) {
			ret = ferry__cli_report_id(c, ids[i], rc);
		} else if (st == FERRY_FAILED) {
			report_failure(c, ids[i]);
			if (ret == CLI_OK)
				ret = CLI_FAILED;
		}
	}
	return ret;
}

/* --all: one wait in the engine; it counts the failures, the first are named. */
static int wait_all(const struct ctx *c, const struct wait_opts *o)
{
	struct ferry_wait_all_result res;
	int rc = ferry_wait_all(c->conn, o->states.v, o->states.n, o->timeout, &res);

	if (rc < 0) {
		ferry__cli_report(c, rc);
		return rc == FERRY_ETIMEDOUT ? CLI_TIMEOUT : CLI_ERR;
	}
	for (size_t i = 0; i < res.nfailed_ids; i++)
		report_failure(c, res.failed_ids[i]);
	if (res.failed > res.nfailed_ids)
		fprintf(stderr, "%zu more of the %zu jobs failed\n", res.failed - res.nfailed_ids,
			res.jobs);
	return res.failed ? CLI_FAILED : CLI_OK;
}

int ferry__cli_cmd_wait(struct ctx *c, int argc, char **argv)
{
	static const struct option opts[] = {
	    {"help", no_argument, NULL, 'h'},	       {"json", no_argument, NULL, OPT_JSON},
	    {"timeout", required_argument, NULL, 't'}, {"all", no_argument, NULL, 'a'},
	    {"state", required_argument, NULL, 's'},   {0},
	};
	struct wait_opts o = {.timeout = -1};
	ferry_job_id *ids = NULL;
	size_t n = 0;
	int rc;

	rc = ferry__cli_parse_opts(c, argc, argv, "ht:as:", opts, wait_opt, &o);
	if (rc != CLI_OK)
		return rc;
	if (o.all && optind < argc) {
		ferry__cli_errorf(c, "--all and job ids exclude each other");
		return ferry__cli_usage_error(c);
	}
	if (o.states.n && !o.all) {
		ferry__cli_errorf(c, "--state goes with --all");
		return ferry__cli_usage_error(c);
	}
	if (!o.all && (rc = ferry__cli_parse_ids(c, argc, argv, &ids, &n)) != CLI_OK)
		return rc;
	if (ferry__cli_connect(c) < 0) {
		free(ids);
		return CLI_ERR;
	}
	if (o.all)
		return wait_all(c, &o);
	rc = n ? ferry_wait(c->conn, ids, n, o.timeout) : 0;
	if (rc < 0) {
		ferry__cli_report(c, rc);
		rc = rc == FERRY_ETIMEDOUT ? CLI_TIMEOUT : CLI_ERR;
	} else {
		rc = check_ended(c, ids, n);
	}
	free(ids);
	return rc;
}

/* ------------------------------------------------------------------ */
/* info */

int ferry__cli_cmd_info(struct ctx *c, int argc, char **argv)
{
	struct ferry_job_info *info = NULL;
	ferry_job_id id;
	int rc;

	rc = ferry__cli_parse_plain(c, argc, argv);
	if (rc == CLI_OK)
		rc = ferry__cli_one_job(c, argc, argv, &id);
	if (rc != CLI_OK)
		return rc;
	rc = ferry_job_info(c->conn, id, &info);
	if (rc < 0)
		return ferry__cli_report_id(c, id, rc);
	rc = ferry__cli_show_job(c, info);
	ferry_job_info_free(info);
	return rc;
}

/* ------------------------------------------------------------------ */
/* jobs */

struct jobs_opts {
	struct cli_states states;
	int jsonl;
	struct ferry_list_opts list;
};

/* --since ID (the jobs after it) or TIME: "@SECONDS" or a local "YYYY-MM-DD[THH:MM[:SS]]". */
static int parse_since(const char *s, struct ferry_list_opts *l)
{
	static const char *const forms[] = {"%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M:%S",
					    "%Y-%m-%dT%H:%M", "%Y-%m-%d %H:%M", "%Y-%m-%d"};
	char *end;

	if (isdigit((unsigned char)*s)) {
		errno = 0;
		long long id = strtoll(s, &end, 10);
		if (!*end && !errno && id >= 0) {
			l->after = id;
			return 0;
		}
	}
	if (*s == '@')
		return parse_seconds(s + 1, &l->since);
	for (size_t i = 0; i < sizeof(forms) / sizeof(forms[0]); i++) {
		struct tm tm = {0};
		end = strptime(s, forms[i], &tm);
		if (end && !*end) {
			tm.tm_isdst = -1;
			time_t t = mktime(&tm);
			l->since = (double)t;
			return t == (time_t)-1 ? -1 : 0;
		}
	}
	return -1;
}

static int jobs_opt(struct ctx *c, void *data, int opt, const char *arg)
{
	struct jobs_opts *o = data;
	long long n;

	switch (opt) {
	case 's':
		return ferry__cli_add_state(c, &o->states, arg, 0);
	case OPT_JSONL:
		o->jsonl = 1;
		break;
	case OPT_SINCE:
		if (parse_since(arg, &o->list) < 0) {
			ferry__cli_bad_value(
			    c, "--since", arg,
			    "expected a job id, @SECONDS or YYYY-MM-DD[THH:MM[:SS]]");
			return ferry__cli_usage_error(c);
		}
		break;
	case OPT_LIMIT:
		if (ferry__cli_int_option(c, "--limit", arg, 1, INT64_MAX, &n) < 0)
			return ferry__cli_usage_error(c);
		o->list.limit = (size_t)n;
		break;
	case OPT_WORKFLOW:
		if (ferry__cli_workflow_id(c, arg, &o->list.workflow) < 0)
			return ferry__cli_usage_error(c);
		break;
	default:
		return ferry__cli_usage_error(c);
	}
	return CLI_OK;
}

static int print_job(void *arg, const struct ferry_job_info *j)
{
	return ferry__cli_jobs_out_add(arg, j) != CLI_OK;
}

/* --json or --jsonl: the engine's lines as they come, within an array for --json. */
struct lines_out {
	int json;
	size_t n;  /* jobs printed */
	char *buf; /* --json: a page as the array's part, written at once */
	size_t cap;
};

static int print_lines(void *arg, const char *text, size_t len, size_t n)
{
	struct lines_out *o = arg;
	const char *end = text + len, *nl;
	char *b;

	if (!o->json)
		return fwrite(text, 1, len, stdout) != len;
	/*
	 * One compact object a line in an array, easy to grep and stream:
	 * each of the n lines (ferry.h: each ends in '\n') after "[\n" (the
	 * first) or ",\n", without its own '\n': len + n bytes. Made in one
	 * buffer and written at once: fwrite() of each line through stdout's
	 * 4 KiB buffer made a write(2) every few jobs.
	 */
	if (len + n > o->cap) {
		if (!(b = realloc(o->buf, len + n)))
			return 1;
		o->buf = b;
		o->cap = len + n;
	}
	for (b = o->buf; text < end; text = nl + 1, o->n++) {
		nl = memchr(text, '\n', (size_t)(end - text));
		*b++ = o->n ? ',' : '[';
		*b++ = '\n';
		memcpy(b, text, (size_t)(nl - text));
		b += nl - text;
	}
	return fwrite(o->buf, 1, (size_t)(b - o->buf), stdout) != (size_t)(b - o->buf);
}

static int list_lines(const struct ctx *c, struct jobs_opts *o)
{
	struct lines_out out = {.json = c->json};
	int rc = ferry_list_jobs_jsonl(c->conn, &o->list, print_lines, &out);

	free(out.buf);
	if (rc < 0) {
		ferry__cli_report(c, rc);
		return CLI_ERR;
	}
	if (c->json)
		puts(out.n ? "\n]" : "[]");
	if (fflush(stdout) == EOF || ferror(stdout)) {
		ferry__cli_errorf(c, "cannot write the output");
		return CLI_ERR;
	}
	return CLI_OK;
}

/* One request, each job printed as its page arrives: memory for a page, not the list. */
static int list_jobs(const struct ctx *c, struct jobs_opts *o)
{
	struct ferry_jobs_out *out;
	int rc;

	o->list.states = o->states.v;
	o->list.nstates = o->states.n;
	if (c->json || o->jsonl)
		return list_lines(c, o);
	if (!(out = ferry__cli_jobs_out_new(c)))
		return ferry__cli_out_of_memory(c);
	rc = ferry_list_jobs(c->conn, &o->list, print_job, out);
	if (rc < 0) {
		ferry__cli_report(c, rc);
		ferry__cli_jobs_out_end(out);
		return CLI_ERR;
	}
	return ferry__cli_jobs_out_end(out);
}

int ferry__cli_cmd_jobs(struct ctx *c, int argc, char **argv)
{
	static const struct option opts[] = {
	    {"help", no_argument, NULL, 'h'},
	    {"json", no_argument, NULL, OPT_JSON},
	    {"jsonl", no_argument, NULL, OPT_JSONL},
	    {"state", required_argument, NULL, 's'},
	    {"since", required_argument, NULL, OPT_SINCE},
	    {"limit", required_argument, NULL, OPT_LIMIT},
	    {"workflow", required_argument, NULL, OPT_WORKFLOW},
	    {0},
	};
	struct jobs_opts o = {0};
	int rc;

	ferry_list_opts_init(&o.list);
	rc = ferry__cli_parse_opts(c, argc, argv, "hs:", opts, jobs_opt, &o);
	if (rc == CLI_OK)
		rc = ferry__cli_no_args(c, argc, argv);
	if (rc != CLI_OK)
		return rc;
	if (c->json && o.jsonl) {
		ferry__cli_errorf(c, "--json and --jsonl exclude each other");
		return ferry__cli_usage_error(c);
	}
	if (ferry__cli_connect(c) < 0)
		return CLI_ERR;
	return list_jobs(c, &o);
}
