/*
 * args.c - the arguments of the ferry commands: the getopt loop every
 * command runs (it takes -h and --json for all of them), and the values
 * several take: integers in a range and job ids.
 */
#include <ctype.h>
#include <errno.h>
#include <getopt.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

int ferry__cli_parse_opts(struct ctx *c, int argc, char **argv, const char *shortopts,
			  const struct option *longopts, ferry_cli_opt_fn fn, void *data)
{
	int opt, rc;

	/* 0, not 1: glibc then also resets its state and rereads the '+'. */
	optind = 0;
	while ((opt = getopt_long(argc, argv, shortopts, longopts, NULL)) != -1) {
		switch (opt) {
		case 'h':
			ferry__cli_print_cmd_help(c->cmd, stdout);
			return CLI_DONE;
		case OPT_JSON:
			c->json = 1;
			continue;
		case '?':
			return ferry__cli_usage_error(c);
		}
		rc = fn ? fn(c, data, opt, optarg) : ferry__cli_usage_error(c);
		if (rc != CLI_OK)
			return rc;
	}
	return CLI_OK;
}

int ferry__cli_parse_plain(struct ctx *c, int argc, char **argv)
{
	static const struct option opts[] = {
	    {"help", no_argument, NULL, 'h'}, {"json", no_argument, NULL, OPT_JSON}, {0}};

	return ferry__cli_parse_opts(c, argc, argv, "h", opts, NULL, NULL);
}

int ferry__cli_no_args(const struct ctx *c, int argc, char **argv)
{
	if (optind >= argc)
		return CLI_OK;
	ferry__cli_errorf(c, "unexpected argument '%s'", argv[optind]);
	return ferry__cli_usage_error(c);
}

/* Strict: the whole string is a decimal integer within [min, max] (min >= 0). */
static int parse_ll(const char *s, long long min, long long max, long long *out)
{
	char *end;
	long long v;

	/* strtoll() would also take blanks and signs. */
	if (!isdigit((unsigned char)*s))
		return -1;
	errno = 0;
	v = strtoll(s, &end, 10);
	if (errno || *end || v < min || v > max)
		return -1;
	*out = v;
	return 0;
}

void ferry__cli_bad_value(const struct ctx *c, const char *opt, const char *s, const char *hint)
{
	ferry__cli_errorf(c, "invalid value for %s: '%s'%s%s%s", opt, s, hint ? " (" : "",
			  hint ? hint : "", hint ? ")" : "");
}

int ferry__cli_add_state(const struct ctx *c, struct cli_states *s, const char *arg, int not_ended)
{
	enum ferry_job_status st;

	if (ferry_status_from_name(arg, &st) < 0 || (not_ended && st == FERRY_UNDETERMINED)) {
		ferry__cli_bad_value(c, "--state", arg, "expected a job state");
		return ferry__cli_usage_error(c);
	}
	if (not_ended && (st == FERRY_DONE || st == FERRY_FAILED)) {
		ferry__cli_bad_value(c, "--state", arg, "expected the state of a job not ended");
		return ferry__cli_usage_error(c);
	}
	for (size_t i = 0; i < s->n; i++)
		if (s->v[i] == st)
			return CLI_OK; /* named twice: once is what it means */
	s->v[s->n++] = st;	       /* fewer states than room: each once */
	return CLI_OK;
}

int ferry__cli_int_option(const struct ctx *c, const char *opt, const char *s, long long min,
			  long long max, long long *out)
{
	char hint[80];

	if (parse_ll(s, min, max, out) == 0)
		return 0;
	snprintf(hint, sizeof(hint), "expected an integer from %lld to %lld", min, max);
	ferry__cli_bad_value(c, opt, s, hint);
	return -1;
}

static int parse_id(const struct ctx *c, const char *s, ferry_job_id *id)
{
	long long v;

	if (parse_ll(s, 1, INT64_MAX, &v) < 0) {
		ferry__cli_errorf(c, "invalid job id '%s'", s);
		return -1;
	}
	*id = v;
	return 0;
}

int ferry__cli_parse_ids(const struct ctx *c, int argc, char **argv, ferry_job_id **ids, size_t *n)
{
	int count = argc - optind;
	ferry_job_id *v;

	if (count < 1) {
		ferry__cli_errorf(c, "no job id given");
		return ferry__cli_usage_error(c);
	}
	v = calloc((size_t)count, sizeof(*v));
	if (!v)
		return ferry__cli_out_of_memory(c);
	for (int i = 0; i < count; i++) {
		if (parse_id(c, argv[optind + i], &v[i]) < 0) {
			free(v);
			return ferry__cli_usage_error(c);
		}
	}
	*ids = v;
	*n = (size_t)count;
	return CLI_OK;
}

int ferry__cli_parse_range(const struct ctx *c, const char *s, ferry_job_id r[2])
{
	const char *dash = strchr(s, '-');
	char first[32];
	long long a, b;

	if (!dash)
		return parse_id(c, s, &r[0]) < 0 ? -1 : (r[1] = r[0], 0);
	if ((size_t)(dash - s) >= sizeof(first) || dash == s) {
		ferry__cli_errorf(c, "invalid job id range '%s' (expected FIRST-LAST)", s);
		return -1;
	}
	memcpy(first, s, (size_t)(dash - s));
	first[dash - s] = '\0';
	if (parse_ll(first, 1, INT64_MAX, &a) < 0 || parse_ll(dash + 1, 1, INT64_MAX, &b) < 0) {
		ferry__cli_errorf(c, "invalid job id range '%s' (expected FIRST-LAST)", s);
		return -1;
	}
	if (a > b) {
		ferry__cli_errorf(c, "invalid job id range '%s' (%lld is above %lld)", s, a, b);
		return -1;
	}
	r[0] = a;
	r[1] = b;
	return 0;
}

int ferry__cli_one_job(struct ctx *c, int argc, char **argv, ferry_job_id *id)
{
	int n = argc - optind;

	if (n != 1) {
		ferry__cli_errorf(c, n ? "too many arguments" : "no job id given");
		return ferry__cli_usage_error(c);
	}
	if (parse_id(c, argv[optind], id) < 0)
		return ferry__cli_usage_error(c);
	return ferry__cli_connect(c) < 0 ? CLI_ERR : CLI_OK;
}
