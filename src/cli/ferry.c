/*
 * ferry.c - the ferry command-line tool: git-style subcommands on top of
 * the public libferry API (include/ferry.h).
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif

#include <ctype.h>
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "bridge.h"
#include "cfg.h"
#include "ferry.h"
#include "progress.h"
#include "subst.h"
#include "util.h"

/* Exit codes; documented in the --help text. */
enum {
	CLI_OK = 0,
	CLI_ERR = 1,
	CLI_USAGE = 2,
	CLI_TIMEOUT = 3, /* wait timed out; daemon status: not running */
	CLI_FAILED = 4,	 /* wait: a job ended failed */
	/* Not an exit code: parsing already did everything (--help). */
	CLI_DONE = -1,
};

/* Long-only options get values outside the char range. */
enum {
	OPT_JSON = 256,
	OPT_VERSION,
	OPT_CWD,
	OPT_ENV,
	OPT_INPUT,
	OPT_OUTPUT,
	OPT_IN,
	OPT_OUT,
	OPT_DISPOSAL,
	OPT_CPUS,
	OPT_MEMORY,
	OPT_WALLTIME,
	OPT_QUEUE,
	OPT_NATIVE,
	OPT_HOLD,
	OPT_KEY,
	OPT_BULK,
	OPT_STDERR,
	OPT_NO_START,
	OPT_NO_CHECK,
};

/* Limits of the protocol (docs/protocol.md), checked here for clear messages. */
#define DISPOSAL_MAX_HOURS 87600
#define WALLTIME_MAX_S	   31622400LL
#define READ_CHUNK	   (64 * 1024)
#define FOLLOW_DELAY_S	   0.2
#define STOP_TIMEOUT_S	   10.0
#define STOP_POLL_S	   0.1
#define TABLE_NAME_MAX	   24
#define TABLE_CMD_MAX	   60

struct cmd;

struct ctx {
	const char *resource;
	const char *config;
	int json;
	const struct cmd *cmd;
	ferry_conn *conn;
	struct ferry_bar bar; /* of the transfer under way */
	/* argv[0] handed to getopt, so that its messages read "ferry: submit: ..." */
	char label[64];
};

struct cmd {
	const char *name;
	int (*run)(struct ctx *c, int argc, char **argv);
	const char *args;
	const char *summary;
	const char *help;
	int (*action)(ferry_conn *conn, ferry_job_id id);
};

static const struct cmd *find_cmd(const char *name);
static void print_main_help(FILE *f);

/* ------------------------------------------------------------------ */
/* Messages */

static void errorf(const struct ctx *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void errorf(const struct ctx *c, const char *fmt, ...)
{
	va_list ap;

	if (c->cmd)
		fprintf(stderr, "ferry: %s: ", c->cmd->name);
	else
		fputs("ferry: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

/* The connection's detailed message says more than the code's name. */
static const char *api_msg(const struct ctx *c, int rc)
{
	const char *m = c->conn ? ferry_errmsg(c->conn) : NULL;

	return m && *m ? m : ferry_strerror(rc);
}

static void report(const struct ctx *c, int rc)
{
	errorf(c, "%s", api_msg(c, rc));
}

static void report_id(const struct ctx *c, ferry_job_id id, int rc)
{
	fprintf(stderr, "ferry: %s %" PRId64 ": %s\n", c->cmd->name, id, api_msg(c, rc));
}

/* strerror() capitalises; our messages are lowercase throughout. */
static const char *errno_str(int err)
{
	static char buf[128];

	snprintf(buf, sizeof(buf), "%s", strerror(err));
	buf[0] = (char)tolower((unsigned char)buf[0]);
	return buf;
}

static void print_usage(const struct cmd *cmd, FILE *f)
{
	fprintf(f, "usage: ferry %s%s%s\n", cmd->name, *cmd->args ? " " : "", cmd->args);
}

static int usage_error(const struct ctx *c)
{
	if (c->cmd)
		print_usage(c->cmd, stderr);
	else
		fputs("usage: ferry [OPTIONS] COMMAND [ARGS...] (see 'ferry --help')\n", stderr);
	return CLI_USAGE;
}

static void print_cmd_help(const struct cmd *cmd, FILE *f)
{
	print_usage(cmd, f);
	fprintf(f, "\n%s.\n", cmd->summary);
	if (cmd->help)
		fprintf(f, "\n%s", cmd->help);
}

static int out_of_memory(const struct ctx *c)
{
	errorf(c, "out of memory");
	return CLI_ERR;
}

static int print_json(const struct ctx *c, const json_t *j, size_t flags)
{
	if (json_dumpf(j, stdout, flags | JSON_PRESERVE_ORDER) < 0 || putchar('\n') == EOF) {
		errorf(c, "cannot write the output");
		return CLI_ERR;
	}
	return CLI_OK;
}

static void sleep_s(double s)
{
	struct timespec ts;

	ts.tv_sec = (time_t)s;
	ts.tv_nsec = (long)((s - (double)ts.tv_sec) * 1e9);

	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

/* ------------------------------------------------------------------ */
/* Parsing of values */

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

static void bad_value(const struct ctx *c, const char *opt, const char *s, const char *hint)
{
	errorf(c, "invalid value for %s: '%s'%s%s%s", opt, s, hint ? " (" : "", hint ? hint : "",
	       hint ? ")" : "");
}

static int int_option(const struct ctx *c, const char *opt, const char *s, long long min,
		      long long max, long long *out)
{
	char hint[80];

	if (parse_ll(s, min, max, out) == 0)
		return 0;
	snprintf(hint, sizeof(hint), "expected an integer from %lld to %lld", min, max);
	bad_value(c, opt, s, hint);
	return -1;
}

/* Megabytes, or a number with the suffix M or G. */
static int parse_memory(const char *s, int64_t *mb)
{
	char *end;
	long long v, mult = 1;

	if (!isdigit((unsigned char)*s))
		return -1;
	errno = 0;
	v = strtoll(s, &end, 10);
	if (errno)
		return -1;
	if (*end == 'G' || *end == 'g')
		mult = 1024;
	if (*end == 'G' || *end == 'g' || *end == 'M' || *end == 'm')
		end++;
	if (*end || v > INT64_MAX / mult)
		return -1;
	*mb = v * mult;
	return 0;
}

/* Seconds, or [[HH:]MM:]SS where the inner fields are below 60. */
static int parse_walltime(const char *s, int64_t *out)
{
	long long part[3], total;
	int n = 0, i;
	char *end;

	for (;;) {
		if (n == 3 || !isdigit((unsigned char)*s))
			return -1;
		errno = 0;
		part[n++] = strtoll(s, &end, 10);
		if (errno)
			return -1;
		if (!*end)
			break;
		if (*end != ':')
			return -1;
		s = end + 1;
	}
	/* Any leading field that large exceeds the limit whatever its unit. */
	if (part[0] > WALLTIME_MAX_S)
		return -1;
	total = part[0];
	for (i = 1; i < n; i++) {
		if (part[i] > 59)
			return -1;
		total = total * 60 + part[i];
	}
	if (total > WALLTIME_MAX_S)
		return -1;
	*out = total;
	return 0;
}

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

static int parse_id(const struct ctx *c, const char *s, ferry_job_id *id)
{
	long long v;

	if (parse_ll(s, 1, INT64_MAX, &v) < 0) {
		errorf(c, "invalid job id '%s'", s);
		return -1;
	}
	*id = v;
	return 0;
}

/* Every remaining argument is a job id; at least one is required. */
static int parse_ids(const struct ctx *c, int argc, char **argv, ferry_job_id **ids, size_t *n)
{
	ferry_job_id *v;
	int i;

	if (argc < 1) {
		errorf(c, "no job id given");
		return usage_error(c);
	}
	v = calloc((size_t)argc, sizeof(*v));
	if (!v)
		return out_of_memory(c);
	for (i = 0; i < argc; i++) {
		if (parse_id(c, argv[i], &v[i]) < 0) {
			free(v);
			return usage_error(c);
		}
	}
	*ids = v;
	*n = (size_t)argc;
	return CLI_OK;
}

static int parse_one_id(const struct ctx *c, int argc, char **argv, ferry_job_id *id)
{
	if (argc != 1) {
		errorf(c, argc ? "too many arguments" : "no job id given");
		return usage_error(c);
	}
	return parse_id(c, argv[0], id) < 0 ? usage_error(c) : CLI_OK;
}

/* ------------------------------------------------------------------ */
/* Option parsing shared by the subcommands */

typedef int (*opt_fn)(struct ctx *c, void *data, int opt, const char *arg);

/*
 * Runs getopt_long over a subcommand's arguments (argv[0] is the label).
 * -h and --json are handled here; anything else goes to fn.
 */
static int parse_opts(struct ctx *c, int argc, char **argv, const char *shortopts,
		      const struct option *longopts, opt_fn fn, void *data)
{
	int opt, rc;

	/* 0, not 1: glibc then also resets its state and rereads the '+'. */
	optind = 0;
	while ((opt = getopt_long(argc, argv, shortopts, longopts, NULL)) != -1) {
		switch (opt) {
		case 'h':
			print_cmd_help(c->cmd, stdout);
			return CLI_DONE;
		case OPT_JSON:
			c->json = 1;
			continue;
		case '?':
			return usage_error(c);
		}
		rc = fn ? fn(c, data, opt, optarg) : usage_error(c);
		if (rc != CLI_OK)
			return rc;
	}
	return CLI_OK;
}

static int parse_plain(struct ctx *c, int argc, char **argv)
{
	static const struct option opts[] = {
	    {"help", no_argument, NULL, 'h'}, {"json", no_argument, NULL, OPT_JSON}, {0}};

	return parse_opts(c, argc, argv, "h", opts, NULL, NULL);
}

static int ctx_connect(struct ctx *c)
{
	int rc;

	if (c->conn)
		return 0;
	rc = ferry_connect(c->resource, NULL, NULL, c->config, &c->conn);
	if (rc < 0) {
		report(c, rc);
		ferry_disconnect(c->conn);
		c->conn = NULL;
		return -1;
	}
	return 0;
}

/* ------------------------------------------------------------------ */
/* Text helpers for human output */

static int is_cont(char ch)
{
	return ((unsigned char)ch & 0xC0) == 0x80;
}

/* Columns taken by UTF-8 text, counting one per code point. */
static size_t text_width(const char *s)
{
	size_t w = 0;

	for (; *s; s++)
		w += !is_cont(*s);
	return w;
}

static size_t byte_offset(const char *s, size_t chars)
{
	size_t i = 0;

	while (s[i] && chars--) {
		i++;
		while (is_cont(s[i]))
			i++;
	}
	return i;
}

/* Control characters would break the table's lines, so they become '?'. */
static char *display_text(const char *s, size_t max)
{
	int cut = text_width(s) > max;
	size_t len = cut ? byte_offset(s, max - 3) : strlen(s), i;
	char *out = malloc(len + 4);

	if (!out)
		return NULL;
	for (i = 0; i < len; i++)
		out[i] = ((unsigned char)s[i] < 0x20 || s[i] == 0x7f) ? '?' : s[i];
	strcpy(out + len, cut ? "..." : "");
	return out;
}

/* Quotes a word the way a shell would need it, so commands can be copied. */
static void print_word(FILE *f, const char *w)
{
	static const char safe[] = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
				   "0123456789_@%+=:,./-";

	if (*w && strspn(w, safe) == strlen(w)) {
		fputs(w, f);
		return;
	}
	fputc('\'', f);
	for (; *w; w++) {
		if (*w == '\'')
			fputs("'\\''", f);
		else
			fputc(*w, f);
	}
	fputc('\'', f);
}

static char *join_words(char *const *v)
{
	char *buf = NULL;
	size_t len = 0, i;
	FILE *f = open_memstream(&buf, &len);

	if (!f)
		return NULL;
	for (i = 0; v && v[i]; i++) {
		if (i)
			fputc(' ', f);
		print_word(f, v[i]);
	}
	if (fclose(f) != 0) {
		free(buf);
		return NULL;
	}
	return buf;
}

static void print_cell(const char *s, size_t width)
{
	size_t w = text_width(s);

	fputs(s, stdout);
	for (; w < width; w++)
		putchar(' ');
	fputs("  ", stdout);
}

static const char *status_str(enum ferry_job_status s)
{
	const char *name = ferry_status_name(s);

	return name ? name : "unknown";
}

/* ------------------------------------------------------------------ */
/* Job objects (docs/protocol.md) */

static int jset(json_t *o, const char *key, json_t *v)
{
	/* set_new also releases v on failure, and fails on v == NULL. */
	return json_object_set_new(o, key, v) < 0 ? -1 : 0;
}

static json_t *jstr(const char *s)
{
	return s ? json_string(s) : json_null();
}

static json_t *jstrv(char *const *v)
{
	json_t *a = json_array();

	for (; a && v && *v; v++) {
		if (json_array_append_new(a, json_string(*v)) < 0) {
			json_decref(a);
			return NULL;
		}
	}
	return a;
}

static json_t *jtime(double t)
{
	return t > 0 ? json_real(t) : json_null();
}

static json_t *jsecs(double s)
{
	return s >= 0 ? json_real(s) : json_null();
}

static json_t *jcount(int64_t v)
{
	return v >= 0 ? json_integer((json_int_t)v) : json_null();
}

static int job_ended(const struct ferry_job_info *j)
{
	return j->status == FERRY_DONE || j->status == FERRY_FAILED ||
	       j->exit_status != FERRY_EXIT_NONE;
}

static int job_json_result(json_t *o, const struct ferry_job_info *j)
{
	int ended = job_ended(j);
	int cpu_known = j->cpu_user_s >= 0 && j->cpu_sys_s >= 0;
	int bad = 0;

	bad |= jset(o, "id", json_integer((json_int_t)j->id));
	bad |= jset(o, "name", jstr(j->name));
	bad |= jset(o, "command", jstrv(j->argv));
	bad |= jset(o, "status", jstr(ferry_status_name(j->status)));
	bad |= jset(o, "exit_status", jstr(ferry_exit_status_name(j->exit_status)));
	bad |= jset(o, "exit_value", ended ? json_integer(j->exit_value) : json_null());
	bad |= jset(o, "signal", ended ? json_integer(j->signal) : json_null());
	bad |= jset(o, "submitted_at", jtime(j->submitted_at));
	bad |= jset(o, "started_at", jtime(j->started_at));
	bad |= jset(o, "ended_at", jtime(j->ended_at));
	bad |=
	    jset(o, "cpu_time", cpu_known ? json_real(j->cpu_user_s + j->cpu_sys_s) : json_null());
	bad |= jset(o, "cpu_user", jsecs(j->cpu_user_s));
	bad |= jset(o, "cpu_sys", jsecs(j->cpu_sys_s));
	bad |= jset(o, "max_rss_kb", jcount(j->max_rss_kb));
	bad |= jset(o, "wall_time", jsecs(j->wall_s));
	bad |= jset(o, "message", jstr(j->message));
	return bad;
}

static int job_json_spec(json_t *o, const struct ferry_job_info *j)
{
	int bad = 0;

	bad |= jset(o, "stdin_path", jstr(j->stdin_path));
	bad |= jset(o, "stdout_path", jstr(j->stdout_path));
	bad |= jset(o, "stderr_path", jstr(j->stderr_path));
	bad |= jset(o, "join_stderrout", json_boolean(j->join_stderrout));
	bad |= jset(o, "working_directory", jstr(j->working_directory));
	bad |= jset(o, "env", jstrv(j->env));
	bad |= jset(o, "referenced_input_files", jstrv(j->referenced_input_files));
	bad |= jset(o, "referenced_output_files", jstrv(j->referenced_output_files));
	bad |= jset(o, "disposal_timeout_hours", jcount(j->disposal_timeout_hours));
	bad |= jset(o, "cpus", jcount(j->cpus));
	bad |= jset(o, "memory_mb", jcount(j->memory_mb));
	bad |= jset(o, "walltime_s", jcount(j->walltime_s));
	bad |= jset(o, "queue", jstr(j->queue));
	bad |= jset(o, "native_specification", jstr(j->native_specification));
	bad |= jset(o, "submission_key", jstr(j->submission_key));
	bad |= jset(o, "backend", jstr(j->backend));
	bad |= jset(o, "native_id", jstr(j->native_id));
	bad |= jset(o, "resource", jstr(j->resource));
	return bad;
}

static json_t *job_to_json(const struct ferry_job_info *j)
{
	json_t *o = json_object();

	if (o && (job_json_result(o, j) < 0 || job_json_spec(o, j) < 0)) {
		json_decref(o);
		return NULL;
	}
	return o;
}

static int ends_with(const char *s, const char *suffix)
{
	size_t n = strlen(s), m = strlen(suffix);

	return n >= m && strcmp(s + n - m, suffix) == 0;
}

static void print_time(double t)
{
	time_t secs = (time_t)t;
	struct tm tm;
	char buf[64];

	if (!localtime_r(&secs, &tm) || !strftime(buf, sizeof(buf), "%Y-%m-%d %H:%M:%S %z", &tm))
		printf("%.3f", t);
	else
		fputs(buf, stdout);
}

static void print_human_array(const json_t *a)
{
	size_t i;
	json_t *v;

	if (json_array_size(a) == 0)
		putchar('-');
	json_array_foreach(a, i, v)
	{
		if (i)
			putchar(' ');
		if (json_is_integer(v))
			printf("%" JSON_INTEGER_FORMAT, json_integer_value(v));
		else
			print_word(stdout, json_string_value(v) ? json_string_value(v) : "");
	}
}

static void print_human_value(const char *key, const json_t *v)
{
	switch (json_typeof(v)) {
	case JSON_STRING:
		fwrite(json_string_value(v), 1, json_string_length(v), stdout);
		break;
	case JSON_INTEGER:
		printf("%" JSON_INTEGER_FORMAT, json_integer_value(v));
		break;
	case JSON_REAL:
		if (ends_with(key, "_at") || strcmp(key, "deadline") == 0)
			print_time(json_real_value(v));
		else
			printf("%.3f", json_real_value(v));
		break;
	case JSON_TRUE:
		fputs("yes", stdout);
		break;
	case JSON_FALSE:
		fputs("no", stdout);
		break;
	case JSON_ARRAY:
		print_human_array(v);
		break;
	default:
		putchar('-');
		break;
	}
}

/* The object keeps insertion order, which is the protocol's field order. */
static void print_job_human(json_t *job)
{
	size_t width = 0;
	const char *key;
	json_t *v;

	json_object_foreach(job, key, v)
	{
		if (strlen(key) > width)
			width = strlen(key);
	}
	json_object_foreach(job, key, v)
	{
		printf("%s:%*s ", key, (int)(width - strlen(key)), "");
		print_human_value(key, v);
		putchar('\n');
	}
}

/* ------------------------------------------------------------------ */
/* submit */

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
	struct ferry_subst *xf; /* the --in paths, then the --out paths */
	size_t nxf;
	struct strv owned; /* strings made for the spec: freed at the end */
};

static int submit_number_opt(struct ctx *c, struct submit_opts *o, int opt, const char *arg)
{
	long long v;

	switch (opt) {
	case OPT_DISPOSAL:
		if (int_option(c, "--disposal", arg, 1, DISPOSAL_MAX_HOURS, &v) < 0)
			return usage_error(c);
		o->spec.disposal_timeout_hours = (int)v;
		o->disposal_given = 1;
		break;
	case OPT_CPUS:
		if (int_option(c, "--cpus", arg, 1, INT_MAX, &v) < 0)
			return usage_error(c);
		o->spec.cpus = (int)v;
		break;
	case OPT_MEMORY:
		if (parse_memory(arg, &o->spec.memory_mb) < 0) {
			bad_value(c, "--memory", arg,
				  "expected megabytes, or a size like 512M or 2G");
			return usage_error(c);
		}
		break;
	case OPT_WALLTIME:
		if (parse_walltime(arg, &o->spec.walltime_s) < 0) {
			bad_value(c, "--walltime", arg,
				  "expected seconds or [[HH:]MM:]SS, at most 366 days");
			return usage_error(c);
		}
		break;
	default:
		return usage_error(c);
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
		bad_value(c, "--env", arg, "expected NAME=VALUE");
		return usage_error(c);
	}
	if ((opt == OPT_IN || opt == OPT_OUT) && !*arg) {
		bad_value(c, opt == OPT_IN ? "--in" : "--out", arg, "expected a local path");
		return usage_error(c);
	}
	return strv_push(list, arg) < 0 ? out_of_memory(c) : CLI_OK;
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
			out_of_memory(c);
		return abs;
	}
	cwd = getcwd(NULL, 0);
	if (!cwd) {
		errorf(c, "cannot determine the current directory: %s", errno_str(errno));
		return NULL;
	}
	if (!dir || !*dir || strcmp(dir, ".") == 0)
		return cwd;
	abs = ferry__asprintf("%s/%s", cwd, dir);
	free(cwd);
	if (!abs)
		out_of_memory(c);
	return abs;
}

struct bulk_job {
	char **argv;
	char *key;
};

struct bulk {
	struct bulk_job *jobs;
	size_t n, cap;
};

static void bulk_release(struct bulk *b)
{
	size_t i;

	for (i = 0; i < b->n; i++) {
		ferry__strv_free(b->jobs[i].argv);
		free(b->jobs[i].key);
	}
	free(b->jobs);
}

/* Takes argv over. Keys are numbered from 1 so that resubmitting the file is idempotent. */
static int bulk_add(struct bulk *b, char **argv, const char *key)
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
	if (key) {
		j->key = ferry__asprintf("%s-%zu", key, b->n + 1);
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

static int bulk_line(const struct ctx *c, struct bulk *b, char *line, const char *key,
		     const char *where, unsigned long lineno)
{
	size_t len = strcspn(line, "\r\n");
	const char *err = NULL;
	char **argv = NULL;
	int rc;

	if (blank_or_comment(line))
		return 0;
	line[len] = '\0';
	rc = ferry__split_words(line, &argv, &err);
	if (rc == -ENOMEM) {
		out_of_memory(c);
		return -1;
	}
	if (rc < 0) {
		errorf(c, "%s:%lu: %s", where, lineno, err ? err : "invalid line");
		return -1;
	}
	if (!argv[0]) {
		ferry__strv_free(argv);
		return 0;
	}
	if (bulk_add(b, argv, key) < 0) {
		out_of_memory(c);
		return -1;
	}
	return 0;
}

static int read_bulk(const struct ctx *c, const char *path, const char *key, struct bulk *b)
{
	int from_stdin = strcmp(path, "-") == 0;
	const char *where = from_stdin ? "(stdin)" : path;
	FILE *f = from_stdin ? stdin : fopen(path, "r");
	unsigned long lineno = 0;
	char *line = NULL;
	size_t cap = 0;
	int rc = CLI_ERR;

	if (!f) {
		errorf(c, "cannot open '%s': %s", path, errno_str(errno));
		return CLI_ERR;
	}
	while (getline(&line, &cap, f) >= 0) {
		if (bulk_line(c, b, line, key, where, ++lineno) < 0)
			goto out;
	}
	if (ferror(f)) {
		errorf(c, "cannot read '%s': %s", where, errno_str(errno));
		goto out;
	}
	rc = CLI_OK;
out:
	free(line);
	if (!from_stdin)
		fclose(f);
	return rc;
}

static int print_ids(const struct ctx *c, const ferry_job_id *ids, size_t n)
{
	size_t i;

	if (c->json)
		putchar('[');
	for (i = 0; i < n; i++) {
		if (c->json)
			printf("%s%" PRId64, i ? ", " : "", ids[i]);
		else
			printf("%" PRId64 "\n", ids[i]);
	}
	if (c->json)
		puts("]");
	return CLI_OK;
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
	if (!v || bulk_add(b, v, NULL) < 0)
		return out_of_memory(c);
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
		return out_of_memory(c);
	for (size_t i = 0; i < n; i++) {
		const char *p = xf_is_input(o, i) ? o->ins.v[i] : o->outs.v[i - o->ins.n];
		o->nxf = i + 1;
		if (ferry__subst_prepare(&o->xf[i], p) < 0) {
			if (errno == ENOMEM)
				return out_of_memory(c);
			errorf(c, "cannot determine the current directory: %s", errno_str(errno));
			return CLI_ERR;
		}
		for (size_t k = 0; k < i; k++) {
			if (strcmp(o->xf[k].abs, o->xf[i].abs) == 0) {
				errorf(c, "'%s' is given twice (%s '%s', %s '%s')", o->xf[i].abs,
				       xf_option(o, k), o->xf[k].local, xf_option(o, i), p);
				return usage_error(c);
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
	for (size_t i = 0; i < b->n; i++)
		bad |= subst_argv(o, b->jobs[i].argv);
	return bad ? -1 : 0;
}

/* A path the job is not told about would be sent for nothing: surely a mistake. */
static int xf_check_named(const struct ctx *c, const struct submit_opts *o)
{
	for (size_t i = 0; i < o->nxf; i++) {
		if (o->xf[i].used)
			continue;
		errorf(c,
		       "%s '%s' is named nowhere: neither as given nor as '%s' in the command, "
		       "--stdin, --stdout, --stderr, --cwd or an --env value (see 'ferry help "
		       "submit')",
		       xf_option(o, i), o->xf[i].local, o->xf[i].abs);
		return usage_error(c);
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
			errorf(c, "%s '%s': %s", xf_option(o, i), x->local, api_msg(c, rc));
			return CLI_ERR;
		}
		if (strv_push(&o->owned, sp) < 0) {
			free(sp);
			return out_of_memory(c);
		}
		x->server = sp;
		if (strv_push(in ? &o->inputs : &o->outputs, sp) < 0)
			return out_of_memory(c);
	}
	return CLI_OK;
}

static int submit_transfers(struct ctx *c, struct submit_opts *o, struct bulk *b)
{
	int rc = xf_prepare(c, o);

	if (rc != CLI_OK || !o->nxf)
		return rc;
	if (subst_all(o, b) < 0)
		return out_of_memory(c);
	rc = xf_check_named(c, o);
	if (rc != CLI_OK)
		return rc;
	if (ctx_connect(c) < 0)
		return CLI_ERR;
	rc = xf_make(c, o);
	if (rc == CLI_OK && subst_all(o, b) < 0)
		rc = out_of_memory(c);
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
			errorf(c, "no job was submitted; these transfers were made and remain "
				  "('ferry cancel-transfer SERVER_PATH' removes one; a new submit "
				  "finds unchanged --in paths already sent):");
		fprintf(stderr, "  %s <- %s (%s)\n", o->xf[i].server, o->xf[i].local,
			xf_is_input(o, i) ? "sent" : "registered");
	}
}

static int submit_jobs(struct ctx *c, const struct submit_opts *o, const struct bulk *b,
		       ferry_job_id *ids)
{
	struct ferry_job_spec *specs;
	int rc;

	if (ctx_connect(c) < 0)
		return CLI_ERR;
	if (!(specs = calloc(b->n, sizeof(*specs))))
		return out_of_memory(c);
	for (size_t i = 0; i < b->n; i++) {
		specs[i] = o->spec;
		specs[i].argv = (const char *const *)b->jobs[i].argv;
		specs[i].submission_key = o->bulk ? b->jobs[i].key : o->key;
	}
	rc = o->bulk ? ferry_submit_many(c->conn, specs, b->n, ids)
		     : ferry_submit(c->conn, specs, ids);
	free(specs);
	if (rc < 0) {
		report(c, rc);
		return CLI_ERR;
	}
	return CLI_OK;
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
		return out_of_memory(c);
	}
	o->spec.working_directory = cwd;
	o->spec.env = o->env.v;
	o->spec.referenced_input_files = o->inputs.v;
	o->spec.referenced_output_files = o->outputs.v;
	return submit_jobs(c, o, b, ids);
}

static json_t *xf_json(const struct submit_opts *o, int inputs)
{
	json_t *a = json_array();

	for (size_t i = 0; a && i < o->nxf; i++) {
		if (xf_is_input(o, i) != inputs)
			continue;
		if (json_array_append_new(a, json_pack("{s:s,s:s}", "local_path", o->xf[i].local,
						       "server_path", o->xf[i].server)) < 0) {
			json_decref(a);
			return NULL;
		}
	}
	return a;
}

/* The ids as always; with --json and --in/--out, an object that also has the server paths. */
static int print_submitted(const struct ctx *c, const struct submit_opts *o,
			   const ferry_job_id *ids, size_t n)
{
	json_t *j, *a = json_array();
	int rc;

	if (!c->json || !o->nxf) {
		json_decref(a);
		if (o->bulk)
			return print_ids(c, ids, n);
		printf(c->json ? "{\"id\": %" PRId64 "}\n" : "%" PRId64 "\n", ids[0]);
		return CLI_OK;
	}
	for (size_t i = 0; a && i < n; i++)
		json_array_append_new(a, json_integer((json_int_t)ids[i]));
	j = o->bulk ? json_pack("{s:o}", "ids", a) : json_pack("{s:I}", "id", (json_int_t)ids[0]);
	if (!o->bulk)
		json_decref(a);
	if (!j || jset(j, "inputs", xf_json(o, 1)) < 0 || jset(j, "outputs", xf_json(o, 0)) < 0) {
		json_decref(j);
		return out_of_memory(c);
	}
	rc = print_json(c, j, JSON_COMPACT);
	json_decref(j);
	return rc;
}

static int submit_check(const struct ctx *c, const struct submit_opts *o, int nargs)
{
	if (o->bulk && nargs > 0)
		errorf(c, "--bulk and a command exclude each other");
	else if (!o->bulk && nargs == 0)
		errorf(c, "no command given");
	else if (o->bulk && o->outs.n)
		errorf(c, "--out and --bulk exclude each other: every job of the file would "
			  "write the one output (register one per job with 'ferry register' "
			  "and name it with --output)");
	else
		return CLI_OK;
	return usage_error(c);
}

static void submit_release(struct submit_opts *o, struct bulk *b)
{
	for (size_t i = 0; i < o->nxf; i++)
		ferry__subst_release(&o->xf[i]);
	free(o->xf);
	strv_free_all(&o->owned);
	free(o->env.v);
	free(o->inputs.v);
	free(o->outputs.v);
	free(o->ins.v);
	free(o->outs.v);
	bulk_release(b);
}

static int cmd_submit(struct ctx *c, int argc, char **argv)
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
	    {"input", required_argument, NULL, OPT_INPUT},
	    {"output", required_argument, NULL, OPT_OUTPUT},
	    {"in", required_argument, NULL, OPT_IN},
	    {"out", required_argument, NULL, OPT_OUT},
	    {"disposal", required_argument, NULL, OPT_DISPOSAL},
	    {"cpus", required_argument, NULL, OPT_CPUS},
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
	rc = parse_opts(c, argc, argv, "+hn:o:e:i:j", opts, submit_opt, &o);
	if (rc == CLI_OK)
		rc = submit_check(c, &o, argc - optind);
	if (rc == CLI_OK)
		rc = o.bulk ? read_bulk(c, o.bulk, o.key, &b) : bulk_add_copy(c, &b, argv + optind);
	if (rc == CLI_OK && b.n && !(ids = calloc(b.n, sizeof(*ids))))
		rc = out_of_memory(c);
	/* an empty --bulk file submits nothing, and says so with no ids */
	if (rc == CLI_OK && b.n)
		rc = submit_run(c, &o, &b, ids);
	if (rc == CLI_OK)
		rc = print_submitted(c, &o, ids, b.n);
	else if (rc != CLI_DONE)
		report_made(c, &o);
	free(ids);
	submit_release(&o, &b);
	return rc;
}

/* ------------------------------------------------------------------ */
/* status */

static int status_json_add(json_t *arr, ferry_job_id id, enum ferry_job_status st)
{
	json_t *o = json_pack("{s:I,s:s}", "id", (json_int_t)id, "status", status_str(st));

	return o ? json_array_append_new(arr, o) : -1;
}

static int cmd_status(struct ctx *c, int argc, char **argv)
{
	enum ferry_job_status st;
	ferry_job_id *ids = NULL;
	json_t *arr = NULL;
	size_t n = 0, i;
	int rc, ret = CLI_ERR;

	rc = parse_plain(c, argc, argv);
	if (rc != CLI_OK)
		return rc;
	rc = parse_ids(c, argc - optind, argv + optind, &ids, &n);
	if (rc != CLI_OK)
		return rc;
	if (ctx_connect(c) < 0)
		goto out;
	if (c->json && !(arr = json_array())) {
		out_of_memory(c);
		goto out;
	}
	ret = CLI_OK;
	for (i = 0; i < n; i++) {
		rc = ferry_status(c->conn, ids[i], &st);
		if (rc < 0) {
			report_id(c, ids[i], rc);
			ret = CLI_ERR;
		} else if (arr) {
			if (status_json_add(arr, ids[i], st) < 0)
				ret = out_of_memory(c);
		} else if (n == 1) {
			puts(status_str(st));
		} else {
			printf("%" PRId64 " %s\n", ids[i], status_str(st));
		}
	}
	if (arr && print_json(c, arr, JSON_COMPACT) != CLI_OK)
		ret = CLI_ERR;
out:
	json_decref(arr);
	free(ids);
	return ret;
}

/* ------------------------------------------------------------------ */
/* wait */

struct wait_opts {
	double timeout;
	int all;
};

static int wait_opt(struct ctx *c, void *data, int opt, const char *arg)
{
	struct wait_opts *o = data;

	switch (opt) {
	case 't':
		if (parse_seconds(arg, &o->timeout) < 0) {
			bad_value(c, "--timeout", arg, "expected seconds");
			return usage_error(c);
		}
		break;
	case 'a':
		o->all = 1;
		break;
	default:
		return usage_error(c);
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
			report_id(c, ids[i], rc);
			ret = CLI_ERR;
		} else if (st == FERRY_FAILED) {
			report_failure(c, ids[i]);
			if (ret == CLI_OK)
				ret = CLI_FAILED;
		}
	}
	return ret;
}

static int all_ids(const struct ctx *c, ferry_job_id **ids, size_t *n)
{
	int rc = ferry_jobs(c->conn, NULL, ids, n);

	if (rc < 0) {
		report(c, rc);
		return CLI_ERR;
	}
	return CLI_OK;
}

static int cmd_wait(struct ctx *c, int argc, char **argv)
{
	static const struct option opts[] = {
	    {"help", no_argument, NULL, 'h'},
	    {"json", no_argument, NULL, OPT_JSON},
	    {"timeout", required_argument, NULL, 't'},
	    {"all", no_argument, NULL, 'a'},
	    {0},
	};
	struct wait_opts o = {.timeout = -1};
	ferry_job_id *ids = NULL;
	size_t n = 0;
	int rc;

	rc = parse_opts(c, argc, argv, "ht:a", opts, wait_opt, &o);
	if (rc != CLI_OK)
		return rc;
	if (o.all && optind < argc) {
		errorf(c, "--all and job ids exclude each other");
		return usage_error(c);
	}
	if (!o.all) {
		rc = parse_ids(c, argc - optind, argv + optind, &ids, &n);
		if (rc != CLI_OK)
			return rc;
	}
	rc = CLI_ERR;
	if (ctx_connect(c) < 0 || (o.all && all_ids(c, &ids, &n) != CLI_OK))
		goto out;
	rc = n ? ferry_wait(c->conn, ids, n, o.timeout) : 0;
	if (rc < 0) {
		report(c, rc);
		rc = rc == FERRY_ETIMEDOUT ? CLI_TIMEOUT : CLI_ERR;
		goto out;
	}
	rc = check_ended(c, ids, n);
out:
	free(ids);
	return rc;
}

/* ------------------------------------------------------------------ */
/* info */

static int cmd_info(struct ctx *c, int argc, char **argv)
{
	struct ferry_job_info *info = NULL;
	json_t *job;
	ferry_job_id id;
	int rc;

	rc = parse_plain(c, argc, argv);
	if (rc != CLI_OK)
		return rc;
	rc = parse_one_id(c, argc - optind, argv + optind, &id);
	if (rc != CLI_OK)
		return rc;
	if (ctx_connect(c) < 0)
		return CLI_ERR;
	rc = ferry_job_info(c->conn, id, &info);
	if (rc < 0) {
		report_id(c, id, rc);
		return CLI_ERR;
	}
	job = job_to_json(info);
	ferry_job_info_free(info);
	if (!job)
		return out_of_memory(c);
	rc = CLI_OK;
	if (c->json)
		rc = print_json(c, job, JSON_INDENT(2));
	else
		print_job_human(job);
	json_decref(job);
	return rc;
}

/* ------------------------------------------------------------------ */
/* logs */

struct logs_opts {
	enum ferry_stream stream;
	int follow;
};

static int logs_opt(struct ctx *c, void *data, int opt, const char *arg)
{
	struct logs_opts *o = data;

	if (opt == OPT_STDERR)
		o->stream = FERRY_STDERR;
	else if (opt == 'f')
		o->follow = 1;
	else
		return usage_error(c);
	return CLI_OK;
}

static int copy_output(const struct ctx *c, ferry_job_id id, const struct logs_opts *o, char *buf)
{
	uint64_t off = 0;
	size_t got;
	int ended, rc;

	for (;;) {
		got = 0;
		ended = 0;
		rc = ferry_read_output(c->conn, id, o->stream, off, buf, READ_CHUNK, &got, &ended);
		if (rc == FERRY_EEOF)
			return CLI_OK;
		if (rc < 0) {
			report_id(c, id, rc);
			return CLI_ERR;
		}
		if (got > 0) {
			if (fwrite(buf, 1, got, stdout) != got) {
				errorf(c, "cannot write the output: %s", errno_str(errno));
				return CLI_ERR;
			}
			off += got;
			continue;
		}
		if (!o->follow || ended)
			return CLI_OK;
		/* The API has no "wait for output"; polling is the only way to follow. */
		fflush(stdout);
		sleep_s(FOLLOW_DELAY_S);
	}
}

static int cmd_logs(struct ctx *c, int argc, char **argv)
{
	static const struct option opts[] = {
	    {"help", no_argument, NULL, 'h'},
	    {"json", no_argument, NULL, OPT_JSON},
	    {"stderr", no_argument, NULL, OPT_STDERR},
	    {"follow", no_argument, NULL, 'f'},
	    {0},
	};
	struct logs_opts o = {.stream = FERRY_STDOUT};
	ferry_job_id id;
	char *buf;
	int rc;

	rc = parse_opts(c, argc, argv, "hf", opts, logs_opt, &o);
	if (rc != CLI_OK)
		return rc;
	rc = parse_one_id(c, argc - optind, argv + optind, &id);
	if (rc != CLI_OK)
		return rc;
	if (ctx_connect(c) < 0)
		return CLI_ERR;
	buf = malloc(READ_CHUNK);
	if (!buf)
		return out_of_memory(c);
	rc = copy_output(c, id, &o, buf);
	free(buf);
	return rc;
}

/* ------------------------------------------------------------------ */
/* stop, restart, hold, release, kill, dispose */

static int cmd_control(struct ctx *c, int argc, char **argv)
{
	ferry_job_id *ids = NULL;
	size_t n = 0, i;
	int rc, ret = CLI_OK;

	rc = parse_plain(c, argc, argv);
	if (rc != CLI_OK)
		return rc;
	rc = parse_ids(c, argc - optind, argv + optind, &ids, &n);
	if (rc != CLI_OK)
		return rc;
	if (ctx_connect(c) < 0) {
		free(ids);
		return CLI_ERR;
	}
	for (i = 0; i < n; i++) {
		rc = c->cmd->action(c->conn, ids[i]);
		if (rc < 0) {
			report_id(c, ids[i], rc);
			ret = CLI_ERR;
		}
	}
	free(ids);
	return ret;
}

/* ------------------------------------------------------------------ */
/* jobs */

struct row {
	char id[24];
	char exit[32];
	const char *status;
	char *name;
	char *command;
};

static void exit_cell(const struct ferry_job_info *j, char *buf, size_t len)
{
	switch (j->exit_status) {
	case FERRY_FINISHED_REGULARLY:
		snprintf(buf, len, "%d", j->exit_value);
		break;
	case FERRY_FINISHED_SIGNAL:
		snprintf(buf, len, "sig%d", j->signal);
		break;
	case FERRY_KILLED_BY_USER:
		snprintf(buf, len, "killed");
		break;
	case FERRY_ABORTED:
		snprintf(buf, len, "aborted");
		break;
	case FERRY_FINISHED_UNCLEAR_CONDITION:
		snprintf(buf, len, "?");
		break;
	default:
		snprintf(buf, len, "-");
		break;
	}
}

static int fill_row(const struct ferry_job_info *j, struct row *r)
{
	char *cmd = join_words(j->argv);

	snprintf(r->id, sizeof(r->id), "%" PRId64, j->id);
	exit_cell(j, r->exit, sizeof(r->exit));
	r->status = status_str(j->status);
	r->name = display_text(j->name && *j->name ? j->name : "-", TABLE_NAME_MAX);
	r->command = cmd ? display_text(cmd, TABLE_CMD_MAX) : NULL;
	free(cmd);
	return r->name && r->command ? 0 : -1;
}

static size_t max_width(size_t w, const char *s)
{
	size_t n = text_width(s);

	return n > w ? n : w;
}

static void print_rows(const struct row *rows, size_t n)
{
	size_t wid = 2, wst = 6, wex = 4, wna = 4, i;

	for (i = 0; i < n; i++) {
		wid = max_width(wid, rows[i].id);
		wst = max_width(wst, rows[i].status);
		wex = max_width(wex, rows[i].exit);
		wna = max_width(wna, rows[i].name);
	}
	print_cell("ID", wid);
	print_cell("STATUS", wst);
	print_cell("EXIT", wex);
	print_cell("NAME", wna);
	puts("COMMAND");
	for (i = 0; i < n; i++) {
		print_cell(rows[i].id, wid);
		print_cell(rows[i].status, wst);
		print_cell(rows[i].exit, wex);
		print_cell(rows[i].name, wna);
		puts(rows[i].command);
	}
}

static int print_table(const struct ctx *c, struct ferry_job_info *const *infos, size_t n)
{
	struct row *rows = calloc(n ? n : 1, sizeof(*rows));
	int rc = CLI_OK;
	size_t i;

	if (!rows)
		return out_of_memory(c);
	for (i = 0; i < n && rc == CLI_OK; i++) {
		if (fill_row(infos[i], &rows[i]) < 0)
			rc = out_of_memory(c);
	}
	if (rc == CLI_OK)
		print_rows(rows, n);
	for (i = 0; i < n; i++) {
		free(rows[i].name);
		free(rows[i].command);
	}
	free(rows);
	return rc;
}

/* One compact object per line keeps the array easy to grep and stream. */
static int print_jobs_json(const struct ctx *c, struct ferry_job_info *const *infos, size_t n)
{
	json_t *job;
	size_t i;
	int rc = CLI_OK;

	fputs(n ? "[\n" : "[", stdout);
	for (i = 0; i < n && rc == CLI_OK; i++) {
		job = job_to_json(infos[i]);
		if (!job) {
			rc = out_of_memory(c);
			break;
		}
		if (json_dumpf(job, stdout, JSON_COMPACT | JSON_PRESERVE_ORDER) < 0)
			rc = CLI_ERR;
		fputs(i + 1 < n ? ",\n" : "\n", stdout);
		json_decref(job);
	}
	puts("]");
	return rc;
}

/* Jobs disposed between the listing and the lookup are simply left out. */
static int fetch_infos(const struct ctx *c, const ferry_job_id *ids, size_t n,
		       struct ferry_job_info **infos, size_t *got)
{
	int rc, ret = CLI_OK;
	size_t i;

	*got = 0;
	for (i = 0; i < n; i++) {
		rc = ferry_job_info(c->conn, ids[i], &infos[*got]);
		if (rc == FERRY_ENOJOB)
			continue;
		if (rc < 0) {
			report_id(c, ids[i], rc);
			ret = CLI_ERR;
			continue;
		}
		(*got)++;
	}
	return ret;
}

static int state_opt(struct ctx *c, void *data, int opt, const char *arg)
{
	const char **state = data;

	if (opt != 's')
		return usage_error(c);
	*state = arg;
	return CLI_OK;
}

static int list_jobs(const struct ctx *c, const enum ferry_job_status *filter)
{
	struct ferry_job_info **infos = NULL;
	ferry_job_id *ids = NULL;
	size_t n = 0, got = 0, i;
	int rc;

	rc = ferry_jobs(c->conn, filter, &ids, &n);
	if (rc < 0) {
		report(c, rc);
		return CLI_ERR;
	}
	infos = calloc(n ? n : 1, sizeof(*infos));
	if (!infos) {
		rc = out_of_memory(c);
		goto out;
	}
	rc = fetch_infos(c, ids, n, infos, &got);
	if (c->json) {
		if (print_jobs_json(c, infos, got) != CLI_OK)
			rc = CLI_ERR;
	} else if (print_table(c, infos, got) != CLI_OK) {
		rc = CLI_ERR;
	}
out:
	for (i = 0; i < got; i++)
		ferry_job_info_free(infos[i]);
	free(infos);
	free(ids);
	return rc;
}

static int cmd_jobs(struct ctx *c, int argc, char **argv)
{
	static const struct option opts[] = {
	    {"help", no_argument, NULL, 'h'},
	    {"json", no_argument, NULL, OPT_JSON},
	    {"state", required_argument, NULL, 's'},
	    {0},
	};
	enum ferry_job_status st;
	const char *state = NULL;
	int rc;

	rc = parse_opts(c, argc, argv, "hs:", opts, state_opt, &state);
	if (rc != CLI_OK)
		return rc;
	if (optind < argc) {
		errorf(c, "unexpected argument '%s'", argv[optind]);
		return usage_error(c);
	}
	if (state && ferry_status_from_name(state, &st) < 0) {
		errorf(c, "invalid state '%s'", state);
		return usage_error(c);
	}
	if (ctx_connect(c) < 0)
		return CLI_ERR;
	return list_jobs(c, state ? &st : NULL);
}

/* ------------------------------------------------------------------ */
/* daemon */

static int daemon_start(struct ctx *c)
{
	long pid = 0;
	int rc;

	if (ctx_connect(c) < 0)
		return CLI_ERR;
	rc = ferry_ping(c->conn);
	if (rc < 0) {
		report(c, rc);
		return CLI_ERR;
	}
	if (ferry_engine_running(c->resource, c->config, &pid) == 1)
		printf("ferryd running (pid %ld)\n", pid);
	else
		puts("ferryd running");
	return CLI_OK;
}

static int daemon_stop(struct ctx *c)
{
	double deadline;
	long pid = 0;
	int rc;

	char msg[1024];

	rc = ferry_engine_status(c->resource, c->config, &pid, msg, sizeof(msg));
	if (rc < 0) {
		errorf(c, "%s", msg[0] ? msg : ferry_strerror(rc));
		return CLI_ERR;
	}
	if (rc == 0) {
		puts("ferryd not running");
		return CLI_OK;
	}
	if (ctx_connect(c) < 0)
		return CLI_ERR;
	rc = ferry_shutdown_engine(c->conn);
	if (rc < 0) {
		report(c, rc);
		return CLI_ERR;
	}
	/* Let go of the engine so that nothing of ours keeps or revives it. */
	ferry_disconnect(c->conn);
	c->conn = NULL;
	deadline = ferry__mono() + STOP_TIMEOUT_S;
	while ((rc = ferry_engine_status(c->resource, c->config, NULL, msg, sizeof(msg))) == 1 &&
	       ferry__mono() < deadline)
		sleep_s(STOP_POLL_S);
	if (rc < 0) {
		errorf(c, "%s", msg[0] ? msg : ferry_strerror(rc));
		return CLI_ERR;
	}
	if (rc == 1) {
		errorf(c, "ferryd (pid %ld) did not exit within %.0f s", pid, STOP_TIMEOUT_S);
		return CLI_ERR;
	}
	puts("ferryd stopped");
	return CLI_OK;
}

static int daemon_status(const struct ctx *c)
{
	long pid = 0;
	char msg[1024];
	int rc = ferry_engine_status(c->resource, c->config, &pid, msg, sizeof(msg));

	if (rc < 0) {
		errorf(c, "%s", msg[0] ? msg : ferry_strerror(rc));
		return CLI_ERR;
	}
	if (rc == 0) {
		puts("not running");
		return CLI_TIMEOUT;
	}
	printf("running (pid %ld)\n", pid);
	return CLI_OK;
}

static int cmd_daemon(struct ctx *c, int argc, char **argv)
{
	const char *action;
	int rc;

	rc = parse_plain(c, argc, argv);
	if (rc != CLI_OK)
		return rc;
	if (argc - optind != 1) {
		errorf(c, argc == optind ? "no action given" : "too many arguments");
		return usage_error(c);
	}
	action = argv[optind];
	if (strcmp(action, "start") == 0)
		return daemon_start(c);
	if (strcmp(action, "stop") == 0)
		return daemon_stop(c);
	if (strcmp(action, "status") == 0)
		return daemon_status(c);
	errorf(c, "unknown action '%s'", action);
	return usage_error(c);
}

/* ------------------------------------------------------------------ */
/* transfers */

struct tr_opts {
	long long disposal;
	const char *to;
	int force;
	const char *allowed; /* the command's short options: the long ones it takes */
};

static int tr_opt(struct ctx *c, void *data, int opt, const char *arg)
{
	struct tr_opts *o = data;

	/* the transfer commands share one table of long options, not their meaning */
	if (!strchr(o->allowed, opt)) {
		errorf(c, "option '--%s' does not apply to this command",
		       opt == 'd'   ? "disposal"
		       : opt == 't' ? "to"
				    : "force");
		return usage_error(c);
	}
	switch (opt) {
	case 'd':
		return int_option(c, "--disposal", arg, 1, DISPOSAL_MAX_HOURS, &o->disposal) < 0
			   ? usage_error(c)
			   : CLI_OK;
	case 't':
		o->to = arg;
		return CLI_OK;
	case 'f':
		o->force = 1;
		return CLI_OK;
	}
	return usage_error(c);
}

static int tr_parse(struct ctx *c, int argc, char **argv, const char *shortopts, struct tr_opts *o,
		    int min_args, int max_args)
{
	static const struct option opts[] = {
	    {"help", no_argument, NULL, 'h'},		{"json", no_argument, NULL, OPT_JSON},
	    {"disposal", required_argument, NULL, 'd'}, {"to", required_argument, NULL, 't'},
	    {"force", no_argument, NULL, 'f'},		{0},
	};
	int rc, n;

	o->allowed = shortopts;
	rc = parse_opts(c, argc, argv, shortopts, opts, tr_opt, o);
	n = argc - optind;

	if (rc != CLI_OK)
		return rc;
	if (n < min_args || (max_args && n > max_args)) {
		errorf(c, n < min_args ? "missing argument" : "unexpected argument '%s'",
		       n < min_args ? "" : argv[optind + max_args]);
		return usage_error(c);
	}
	return ctx_connect(c) < 0 ? CLI_ERR : CLI_OK;
}

static int print_path(const struct ctx *c, const char *path)
{
	if (c->json) {
		json_t *o = json_pack("{s:s}", "server_path", path);
		int rc = o ? print_json(c, o, JSON_COMPACT) : out_of_memory(c);
		json_decref(o);
		return rc;
	}
	puts(path);
	return CLI_OK;
}

/* A path's last component, for the progress bar's label. */
static const char *last_name(const char *path)
{
	const char *slash = strrchr(path, '/');

	return slash && slash[1] ? slash + 1 : path;
}

/* ferry send PATH... : one transfer; prints its server path */
static int cmd_send(struct ctx *c, int argc, char **argv)
{
	struct tr_opts o = {.disposal = 168};
	char *sp = NULL;
	int rc = tr_parse(c, argc, argv, "hd:", &o, 1, 0);

	if (rc != CLI_OK)
		return rc;
	c->bar.label = last_name(argv[optind]);
	ferry__bar_attach(&c->bar, c->conn);
	rc = ferry_send_files(c->conn, (const char *const *)argv + optind, (size_t)(argc - optind),
			      (int)o.disposal, &sp);
	ferry__bar_end(&c->bar);
	if (rc < 0) {
		report(c, rc);
		return CLI_ERR;
	}
	rc = print_path(c, sp);
	free(sp);
	return rc;
}

static int cmd_register(struct ctx *c, int argc, char **argv)
{
	struct tr_opts o = {.disposal = 168};
	char *sp = NULL;
	int rc = tr_parse(c, argc, argv, "hd:", &o, 1, 1);

	if (rc != CLI_OK)
		return rc;
	rc = ferry_register_transfer(c->conn, argv[optind], (int)o.disposal, &sp);
	if (rc < 0) {
		report(c, rc);
		return CLI_ERR;
	}
	rc = print_path(c, sp);
	free(sp);
	return rc;
}

static int cmd_retrieve(struct ctx *c, int argc, char **argv)
{
	struct tr_opts o = {0};
	int rc = tr_parse(c, argc, argv, "ht:f", &o, 1, 1);

	if (rc != CLI_OK)
		return rc;
	c->bar.label = last_name(o.to ? o.to : argv[optind]);
	ferry__bar_attach(&c->bar, c->conn);
	rc = o.to ? ferry_retrieve_file_to(c->conn, argv[optind], o.to,
					   o.force ? FERRY_OVERWRITE : 0)
		  : ferry_retrieve_file(c->conn, argv[optind]);
	ferry__bar_end(&c->bar);
	if (rc < 0) {
		report(c, rc);
		return CLI_ERR;
	}
	return CLI_OK;
}

static int cmd_cancel_transfer(struct ctx *c, int argc, char **argv)
{
	struct tr_opts o = {0};
	int rc = tr_parse(c, argc, argv, "hf", &o, 1, 1);

	if (rc != CLI_OK)
		return rc;
	rc = ferry_cancel_transfer(c->conn, argv[optind], o.force ? FERRY_FORCE : 0);
	if (rc < 0) {
		report(c, rc);
		return CLI_ERR;
	}
	return CLI_OK;
}

static json_t *transfer_json(const struct ferry_transfer_info *t)
{
	json_t *o =
	    json_pack("{s:s,s:s,s:s,s:I,s:I,s:I,s:f,s:f,s:i}", "server_path", t->server_path,
		      "kind", t->kind, "state", t->state, "size", (json_int_t)t->size, "done",
		      (json_int_t)t->done, "received", (json_int_t)t->received, "created_at",
		      t->created_at, "deadline", t->deadline, "disposal_hours", t->disposal_hours);
	json_t *lp = json_array(), *jobs = json_array();

	if (!o || !lp || !jobs) {
		json_decref(o);
		json_decref(lp);
		json_decref(jobs);
		return NULL;
	}
	for (size_t i = 0; t->local_paths[i]; i++)
		json_array_append_new(lp, json_string(t->local_paths[i]));
	for (size_t i = 0; i < t->njobs; i++)
		json_array_append_new(jobs, json_integer(t->jobs[i]));
	json_object_set_new(o, "local_paths", lp);
	json_object_set_new(o, "jobs", jobs);
	json_object_set_new(o, "hash", t->hash ? json_string(t->hash) : json_null());
	json_object_set_new(o, "ended_at", t->ended_at > 0 ? json_real(t->ended_at) : json_null());
	json_object_set_new(o, "message", t->message ? json_string(t->message) : json_null());
	return o;
}

/* Everything about one transfer: a JSON object, or one "key: value" line each. */
static int show_transfer(const struct ctx *c, const char *server_path)
{
	struct ferry_transfer_info *t = NULL;
	json_t *o;
	int rc = ferry_transfer_info(c->conn, server_path, &t);

	if (rc < 0) {
		report(c, rc);
		return CLI_ERR;
	}
	o = transfer_json(t);
	ferry_transfer_info_free(t);
	if (!o)
		return out_of_memory(c);
	rc = CLI_OK;
	if (c->json)
		rc = print_json(c, o, JSON_INDENT(2));
	else
		print_job_human(o);
	json_decref(o);
	return rc;
}

static int cmd_transfer_info(struct ctx *c, int argc, char **argv)
{
	struct tr_opts o = {0};
	int rc = tr_parse(c, argc, argv, "h", &o, 1, 1);

	return rc != CLI_OK ? rc : show_transfer(c, argv[optind]);
}

static void print_transfer_row(const json_t *t)
{
	const char *msg = json_string_value(json_object_get(t, "message"));

	printf("%-13s %-9s %12lld  %s <- %s\n", json_string_value(json_object_get(t, "state")),
	       json_string_value(json_object_get(t, "kind")),
	       (long long)json_integer_value(json_object_get(t, "size")),
	       json_string_value(json_object_get(t, "server_path")),
	       json_string_value(json_array_get(json_object_get(t, "local_paths"), 0)));
	if (msg)
		printf("              %s\n", msg);
}

/* ferry transfers [SERVER_PATH]: all of them, or (as transfer-info) everything about one */
static int cmd_transfers(struct ctx *c, int argc, char **argv)
{
	struct tr_opts o = {0};
	struct ferry_transfer_info **list = NULL;
	size_t n = 0, i;
	json_t *all, *t;
	int rc = tr_parse(c, argc, argv, "h", &o, 0, 1);

	if (rc != CLI_OK)
		return rc;
	if (optind < argc)
		return show_transfer(c, argv[optind]);
	rc = ferry_transfers(c->conn, &list, &n);
	if (rc < 0) {
		report(c, rc);
		return CLI_ERR;
	}
	all = json_array();
	for (i = 0; all && i < n; i++)
		json_array_append_new(all, transfer_json(list[i]));
	ferry_transfer_list_free(list, n);
	if (!all)
		return out_of_memory(c);
	rc = CLI_OK;
	if (c->json) {
		rc = print_json(c, all, JSON_INDENT(2));
	} else {
		printf("%-13s %-9s %12s  %s\n", "STATE", "KIND", "BYTES",
		       "SERVER PATH <- LOCAL PATH");
		json_array_foreach(all, i, t) print_transfer_row(t);
	}
	json_decref(all);
	return rc;
}

/* ------------------------------------------------------------------ */
/* ping, version, help */

struct bridge_sets {
	const char *v[16];
	size_t n;
	int no_start;
};

static int bridge_opt(struct ctx *c, void *data, int opt, const char *arg)
{
	struct bridge_sets *sets = data;

	if (opt == 'r') {
		c->resource = arg;
	} else if (opt == 'c') {
		c->config = arg;
	} else if (opt == OPT_NO_START) {
		sets->no_start = 1;
	} else if (opt == 's') {
		if (sets->n + 1 >= FERRY_ARRAY_SIZE(sets->v)) {
			errorf(c, "too many --set options");
			return usage_error(c);
		}
		sets->v[sets->n++] = arg;
	} else {
		return usage_error(c);
	}
	return CLI_OK;
}

/* sysexits.h's EX_CONFIG: tells the ssh client not to retry */
#define BRIDGE_EXIT_CONFIG 78

/* What `ssh host ferry bridge --resource R` runs: see bridge.c. */
static int cmd_bridge(struct ctx *c, int argc, char **argv)
{
	static const struct option opts[] = {
	    {"help", no_argument, NULL, 'h'},
	    {"resource", required_argument, NULL, 'r'},
	    {"config", required_argument, NULL, 'c'},
	    {"set", required_argument, NULL, 's'},
	    {"no-start", no_argument, NULL, OPT_NO_START},
	    {0},
	};
	struct bridge_sets sets = {.n = 0};
	char err[1024];
	int rc = parse_opts(c, argc, argv, "hr:c:s:", opts, bridge_opt, &sets);

	if (rc != CLI_OK)
		return rc;
	if (optind < argc) {
		errorf(c, "unexpected argument '%s'", argv[optind]);
		return usage_error(c);
	}
	if (!ferry__valid_resource_name(c->resource ? c->resource : "local")) {
		errorf(c, "invalid resource name '%s'", c->resource);
		return usage_error(c);
	}
	rc = ferry__bridge(c->resource, c->config, sets.v, !sets.no_start, err, sizeof(err));
	if (rc == FERRY_ECONNECT && sets.no_start) {
		errorf(c, "%s", err);
		return CLI_TIMEOUT; /* "not running", as for `ferry daemon status` */
	}
	if (rc) {
		errorf(c, "%s", err);
		return rc == FERRY_ECONFIG || rc == FERRY_EUNSUPPORTED ? BRIDGE_EXIT_CONFIG
								       : CLI_ERR;
	}
	return CLI_OK;
}

static int ping_opt(struct ctx *c, void *data, int opt, const char *arg)
{
	long long *count = data;

	if (opt != 'n')
		return usage_error(c);
	return int_option(c, "-n", arg, 1, 1000000, count) < 0 ? usage_error(c) : CLI_OK;
}

static int cmd_ping(struct ctx *c, int argc, char **argv)
{
	static const struct option opts[] = {
	    {"help", no_argument, NULL, 'h'},
	    {"json", no_argument, NULL, OPT_JSON},
	    {"count", required_argument, NULL, 'n'},
	    {0},
	};
	double t, conn_t, min = HUGE_VAL, max = 0, sum = 0;
	long long count = 1, i;
	int rc;

	rc = parse_opts(c, argc, argv, "hn:", opts, ping_opt, &count);
	if (rc != CLI_OK)
		return rc;
	if (optind < argc) {
		errorf(c, "unexpected argument '%s'", argv[optind]);
		return usage_error(c);
	}
	/* Connecting (ssh, starting the engine) is reported apart from round trips. */
	conn_t = ferry__mono();
	if (ctx_connect(c) < 0)
		return CLI_ERR;
	conn_t = (ferry__mono() - conn_t) * 1e3;
	if (!c->json)
		printf("connected in %.1f ms\n", conn_t);
	for (i = 0; i < count; i++) {
		t = ferry__mono();
		rc = ferry_ping(c->conn);
		t = (ferry__mono() - t) * 1e6;
		if (rc < 0) {
			report(c, rc);
			return CLI_ERR;
		}
		if (!c->json)
			printf("round trip: %.0f µs\n", t);
		min = t < min ? t : min;
		max = t > max ? t : max;
		sum += t;
	}
	if (c->json) {
		json_t *o =
		    json_pack("{s:s,s:f,s:I,s:f,s:f,s:f}", "resource", ferry_resource(c->conn),
			      "connect_ms", conn_t, "count", (json_int_t)count, "min_us", min,
			      "avg_us", sum / (double)count, "max_us", max);
		rc = o ? print_json(c, o, JSON_COMPACT) : out_of_memory(c);
		json_decref(o);
		return rc;
	}
	if (count > 1)
		printf("%lld pings: min %.0f µs, avg %.0f µs, max %.0f µs\n", count, min,
		       sum / (double)count, max);
	return CLI_OK;
}

/* One resource's line of `ferry resources`: where it is and whether its engine answers. */
static json_t *resource_json(const struct ctx *c, const struct ferry_resource_cfg *r, int check)
{
	json_t *o = json_pack("{s:s,s:s}", "name", r->name, "scheduler",
			      r->scheduler ? r->scheduler : "local");
	long pid = 0;
	int rc;

	if (!o)
		return NULL;
	json_object_set_new(o, "host", r->host ? json_string(r->host) : json_null());
	if (r->port)
		json_object_set_new(o, "port", json_integer(r->port));
	if (r->login)
		json_object_set_new(o, "login", json_string(r->login));
	if (!check)
		return o;
	/* asks without starting anything: the bridge's --no-start over ssh */
	char msg[1024];
	rc = ferry_engine_status(r->name, c->config, &pid, msg, sizeof(msg));
	json_object_set_new(o, "reachable", json_boolean(rc >= 0));
	if (rc >= 0)
		json_object_set_new(o, "engine_running", json_boolean(rc == 1));
	if (rc == 1)
		json_object_set_new(o, "pid", json_integer(pid));
	if (rc < 0)
		json_object_set_new(o, "error", json_string(msg[0] ? msg : ferry_strerror(rc)));
	return o;
}

static void print_resource(const json_t *o)
{
	const char *host = json_string_value(json_object_get(o, "host"));
	json_t *reach = json_object_get(o, "reachable");
	char where[300], state[200];

	snprintf(where, sizeof(where), "%s", host ? host : "this host");
	if (!reach)
		snprintf(state, sizeof(state), "-");
	else if (!json_is_true(reach))
		snprintf(state, sizeof(state), "unreachable: %s",
			 json_string_value(json_object_get(o, "error")));
	else if (json_is_true(json_object_get(o, "engine_running")))
		snprintf(state, sizeof(state), "engine running (pid %lld)",
			 (long long)json_integer_value(json_object_get(o, "pid")));
	else
		snprintf(state, sizeof(state), "reachable, engine not running");
	printf("%-16s %-9s %-24s %s\n", json_string_value(json_object_get(o, "name")),
	       json_string_value(json_object_get(o, "scheduler")), where, state);
}

static int resources_opt(struct ctx *c, void *data, int opt, const char *arg)
{
	int *check = data;

	if (opt != OPT_NO_CHECK)
		return usage_error(c);
	*check = 0;
	return CLI_OK;
}

static int cmd_resources(struct ctx *c, int argc, char **argv)
{
	static const struct option opts[] = {
	    {"help", no_argument, NULL, 'h'},
	    {"json", no_argument, NULL, OPT_JSON},
	    {"no-check", no_argument, NULL, OPT_NO_CHECK},
	    {0},
	};
	struct ferry_cfg cfg = {0};
	struct ferry_resource_cfg local = {.name = (char *)"local"};
	char err[1024], *path;
	json_t *all;
	int check = 1, rc, has_local = 0;

	rc = parse_opts(c, argc, argv, "h", opts, resources_opt, &check);
	if (rc != CLI_OK)
		return rc;
	if (optind < argc) {
		errorf(c, "unexpected argument '%s'", argv[optind]);
		return usage_error(c);
	}
	path = c->config ? strdup(c->config) : ferry__default_config_path();
	if (path && (c->config || access(path, F_OK) == 0)) {
		if (ferry__cfg_parse(path, NULL, &cfg, err, sizeof(err)) < 0) {
			errorf(c, "%s", err);
			free(path);
			return CLI_ERR;
		}
	}
	free(path);
	all = json_array();
	for (int i = 0; all && i < cfg.nres; i++) {
		has_local |= !strcmp(cfg.res[i].name, "local");
		json_array_append_new(all, resource_json(c, &cfg.res[i], check));
	}
	/* "local" exists without a section: the embedded default */
	if (all && !has_local)
		json_array_insert_new(all, 0, resource_json(c, &local, check));
	ferry__cfg_release(&cfg);
	if (!all)
		return out_of_memory(c);
	if (c->json) {
		rc = print_json(c, all, JSON_INDENT(2));
	} else {
		size_t i;
		json_t *o;
		printf("%-16s %-9s %-24s %s\n", "NAME", "SCHEDULER", "HOST", "STATE");
		json_array_foreach(all, i, o) print_resource(o);
		rc = CLI_OK;
	}
	json_decref(all);
	return rc;
}

static int cmd_version(struct ctx *c, int argc, char **argv)
{
	int rc = parse_plain(c, argc, argv);

	if (rc != CLI_OK)
		return rc;
	puts("ferry " FERRY_VERSION_STRING);
	return CLI_OK;
}

static int cmd_help(struct ctx *c, int argc, char **argv)
{
	const struct cmd *cmd;
	int rc = parse_plain(c, argc, argv);

	if (rc != CLI_OK)
		return rc;
	if (optind >= argc) {
		print_main_help(stdout);
		return CLI_OK;
	}
	cmd = find_cmd(argv[optind]);
	if (!cmd || optind + 1 < argc) {
		if (!cmd)
			errorf(c, "unknown command '%s'", argv[optind]);
		return usage_error(c);
	}
	print_cmd_help(cmd, stdout);
	return CLI_OK;
}

/* ------------------------------------------------------------------ */
/* Command table and main */

static const char submit_help[] =
    "Prints the new job's id.\n\n"
    "Options:\n"
    "  -n, --name NAME        display name\n"
    "  -o, --stdout PATH      file for the job's stdout (relative: to the working directory)\n"
    "  -e, --stderr PATH      file for the job's stderr\n"
    "  -i, --stdin PATH       file the job reads as stdin\n"
    "  -j, --join             send stderr to stdout\n"
    "      --cwd DIR          working directory (default: the current directory)\n"
    "      --env NAME=VALUE   add to the job's environment (repeatable)\n"
    "      --input FILE       file that must exist before the start (repeatable)\n"
    "      --output FILE      file the job produces (repeatable)\n"
    "      --in PATH          send a local file or directory first and name it as an\n"
    "                         input (repeatable); PATH in the command becomes its\n"
    "                         server path (see below)\n"
    "      --out PATH         register a local path first and name it as an output\n"
    "                         (repeatable; not with --bulk); PATH is replaced the same\n"
    "                         way, and 'ferry retrieve SERVER_PATH' fetches it to PATH\n"
    "      --disposal HOURS   keep the record (and --in/--out transfers) that long\n"
    "                         after the end (default 168)\n"
    "      --cpus N           slots the job uses (default 1)\n"
    "      --memory SIZE      memory limit in MB, or with suffix M or G (512M, 2G)\n"
    "      --walltime TIME    wall-clock limit: seconds or [[HH:]MM:]SS\n"
    "      --queue QUEUE      backend queue or partition\n"
    "      --native SPEC      backend-specific options\n"
    "      --hold             submit on hold (see 'ferry release')\n"
    "      --key KEY          submission key: submitting it again returns the same job\n"
    "      --bulk FILE        one command per line ('-': stdin), quoted like a shell;\n"
    "                         blank and '#' lines are skipped; with --key, the\n"
    "                         i-th command gets the key KEY-i (i from 1);\n"
    "                         prints one id per line\n"
    "      --json             print {\"id\": N}, or an array of ids with --bulk; with\n"
    "                         --in/--out, also \"inputs\" and \"outputs\" (local_path,\n"
    "                         server_path), and \"ids\" for --bulk's array\n\n"
    "--in and --out: the arguments of the command and the values of --stdin,\n"
    "--stdout, --stderr, --cwd and --env (after the '=') have each occurrence of\n"
    "PATH replaced by its server path, PATH spelt as given (without trailing '/')\n"
    "or in its absolute form ('.' and '..' resolved, links not). An occurrence\n"
    "counts where it does not continue a longer name: it starts the value or\n"
    "follows a character other than a letter, digit, '.', '_', '-', '+', '~' or\n"
    "'/', and it ends the value or is followed by '/' or such a character. So\n"
    "--in a.nii rewrites 'a.nii', '--x=a.nii', 'a.nii,b' and \"sh -c 'gzip a.nii'\",\n"
    "not 'ba.nii', 'a.nii.gz', './a.nii' or '-ia.nii'. A PATH named nowhere is an\n"
    "error. The transfers are made before the job is submitted; if that fails,\n"
    "the ones made are listed.\n";

static const char wait_help[] =
    "Exit status: 0 when every job ended done, 4 when one failed (the\n"
    "failures are listed on stderr), 3 on timeout, 1 on other errors.\n\n"
    "Options:\n"
    "  -t, --timeout SECONDS  give up after that long (default: no limit)\n"
    "  -a, --all              wait for every job of the resource\n";

static const char logs_help[] =
    "Options:\n"
    "      --stderr  show the job's stderr instead of its stdout\n"
    "  -f, --follow  keep reading until the job ended and all was read\n";

static const char jobs_help[] =
    "Options:\n"
    "  -s, --state STATE  only jobs in that state (queued_active, running, done, ...)\n"
    "      --json         an array of job objects, one per line\n";

static const char daemon_help[] =
    "Actions:\n"
    "  start   start the engine of the resource if needed\n"
    "  stop    ask the engine to exit (jobs keep running)\n"
    "  status  tell whether it runs, without starting it (exit 3: not running)\n";

static const char send_help[] =
    "Sends files or one directory tree (modes and mtimes kept) as one transfer\n"
    "and prints the server path to use in jobs (--input). Sending the same\n"
    "paths again resumes an interrupted send. On a terminal, a transfer of 4 MiB\n"
    "or more shows a progress bar on stderr.\n\n"
    "Options:\n"
    "  -d, --disposal HOURS  keep the copy that long after it is complete (168)\n";

static const char register_help[] =
    "Prints the server path where a job should write an output (--output);\n"
    "'ferry retrieve' fetches it to PATH once the job ended.\n\n"
    "Options:\n"
    "  -d, --disposal HOURS  keep it that long after it was produced (168)\n";

static const char retrieve_help[] =
    "Downloads a transfer to the local path it was sent or registered with\n"
    "(replacing it), or to DEST. Resumes an interrupted download. On a terminal,\n"
    "a transfer of 4 MiB or more shows a progress bar on stderr.\n\n"
    "Options:\n"
    "  -t, --to DEST  another destination (a directory for several files)\n"
    "  -f, --force    replace DEST if it exists\n";

static const char cancel_help[] =
    "Removes a transfer's files and record now. (Not 'cancel': that would read as\n"
    "an action on jobs, which 'ferry kill' ends.)\n\n"
    "Options:\n"
    "  -f, --force  also when unfinished jobs name it (jobs waiting for it end aborted)\n";

static const char resources_help[] =
    "Each resource of the configuration file (and the embedded \"local\"), where it\n"
    "is, and whether its engine runs; a remote one is asked over ssh, which\n"
    "starts nothing there.\n\n"
    "Options:\n"
    "      --no-check  do not contact the resources\n"
    "      --json      an array of objects (name, scheduler, host, port, login,\n"
    "                  reachable, engine_running, pid, error)\n";

static const struct cmd commands[] = {
    {"submit", cmd_submit, "[OPTIONS] (-- CMD [ARGS...] | --bulk FILE)", "Submit a job",
     submit_help, NULL},
    {"status", cmd_status, "[--json] ID...", "Print the status of jobs", NULL, NULL},
    {"wait", cmd_wait, "[--timeout SECONDS] (ID... | --all)", "Wait until jobs ended", wait_help,
     NULL},
    {"info", cmd_info, "[--json] ID", "Print everything known about a job", NULL, NULL},
    {"logs", cmd_logs, "[--stderr] [--follow] ID", "Print a job's output", logs_help, NULL},
    {"jobs", cmd_jobs, "[--state STATE] [--json]", "List the jobs of the resource", jobs_help,
     NULL},
    {"stop", cmd_control, "ID...", "Suspend running jobs, hold queued ones", NULL, ferry_stop},
    {"restart", cmd_control, "ID...", "Undo 'ferry stop'", NULL, ferry_restart},
    {"hold", cmd_control, "ID...", "Hold jobs that have not started", NULL, ferry_hold},
    {"release", cmd_control, "ID...", "Release held jobs", NULL, ferry_release},
    {"kill", cmd_control, "ID...", "Terminate jobs", NULL, ferry_kill},
    {"dispose", cmd_control, "ID...", "Kill jobs if active and forget them", NULL, ferry_dispose},
    {"send", cmd_send, "[--disposal HOURS] PATH...", "Send files or a directory to the resource",
     send_help, NULL},
    {"register", cmd_register, "[--disposal HOURS] PATH", "Register an output to retrieve later",
     register_help, NULL},
    {"retrieve", cmd_retrieve, "[--to DEST [--force]] SERVER_PATH",
     "Download a transfer to its local path", retrieve_help, NULL},
    {"transfers", cmd_transfers, "[--json] [SERVER_PATH]",
     "List transfers, or show one (as transfer-info)", NULL, NULL},
    {"transfer-info", cmd_transfer_info, "[--json] SERVER_PATH",
     "Print everything known about a transfer", NULL, NULL},
    {"cancel-transfer", cmd_cancel_transfer, "[--force] SERVER_PATH", "Remove a transfer at once",
     cancel_help, NULL},
    {"resources", cmd_resources, "[--no-check] [--json]",
     "List the configured resources and whether each answers", resources_help, NULL},
    {"daemon", cmd_daemon, "start|stop|status", "Control the engine (ferryd)", daemon_help, NULL},
    {"ping", cmd_ping, "[-n COUNT]", "Measure the round trip to the engine", NULL, NULL},
    {"bridge", cmd_bridge, "[--resource NAME] [--config FILE] [--set KEY=VALUE]... [--no-start]",
     "Join stdin/stdout to this host's engine (run by ssh for remote clients)", NULL, NULL},
    {"version", cmd_version, "", "Print the version", NULL, NULL},
    {"help", cmd_help, "[COMMAND]", "Show help", NULL, NULL},
};

static const struct cmd *find_cmd(const char *name)
{
	size_t i;

	for (i = 0; i < FERRY_ARRAY_SIZE(commands); i++) {
		if (strcmp(commands[i].name, name) == 0)
			return &commands[i];
	}
	return NULL;
}

static void print_main_help(FILE *f)
{
	size_t i;

	fputs("usage: ferry [OPTIONS] COMMAND [ARGS...]\n\n"
	      "Submits and controls jobs of the ferry job engine (ferryd).\n\n"
	      "Options:\n"
	      "  -r, --resource NAME  resource to use (default: $FERRY_RESOURCE or \"local\")\n"
	      "  -c, --config FILE    configuration file\n"
	      "                       (default: $XDG_CONFIG_HOME/ferry/ferry.conf)\n"
	      "      --json           machine-readable output (also after the command)\n"
	      "  -h, --help           show this help\n"
	      "      --version        show the version\n\n"
	      "Commands:\n",
	      f);
	for (i = 0; i < FERRY_ARRAY_SIZE(commands); i++)
		fprintf(f, "  %-15s %s\n", commands[i].name, commands[i].summary);
	fputs("\nExit status:\n"
	      "  0  success\n"
	      "  1  error\n"
	      "  2  usage error\n"
	      "  3  wait: timeout; daemon status: not running\n"
	      "  4  wait: a job failed\n\n"
	      "'ferry help COMMAND' shows the options of a command.\n",
	      f);
}

static int parse_globals(struct ctx *c, int argc, char **argv)
{
	static const struct option opts[] = {
	    {"resource", required_argument, NULL, 'r'},	 {"config", required_argument, NULL, 'c'},
	    {"json", no_argument, NULL, OPT_JSON},	 {"help", no_argument, NULL, 'h'},
	    {"version", no_argument, NULL, OPT_VERSION}, {0},
	};
	const char *env = getenv("FERRY_RESOURCE");
	int opt;

	c->resource = env && *env ? env : "local";
	optind = 0;
	while ((opt = getopt_long(argc, argv, "+r:c:h", opts, NULL)) != -1) {
		switch (opt) {
		case 'r':
			c->resource = optarg;
			break;
		case 'c':
			c->config = optarg;
			break;
		case OPT_JSON:
			c->json = 1;
			break;
		case 'h':
			print_main_help(stdout);
			return CLI_DONE;
		case OPT_VERSION:
			puts("ferry " FERRY_VERSION_STRING);
			return CLI_DONE;
		default:
			return usage_error(c);
		}
	}
	if (optind >= argc) {
		errorf(c, "no command given");
		return usage_error(c);
	}
	return CLI_OK;
}

static int run_command(struct ctx *c, int argc, char **argv)
{
	const struct cmd *cmd = find_cmd(argv[0]);

	if (!cmd) {
		errorf(c, "unknown command '%s'", argv[0]);
		return usage_error(c);
	}
	c->cmd = cmd;
	snprintf(c->label, sizeof(c->label), "ferry: %s", cmd->name);
	argv[0] = c->label;
	return cmd->run(c, argc, argv);
}

int main(int argc, char **argv)
{
	struct ctx c = {0};
	int rc;

	snprintf(c.label, sizeof(c.label), "ferry");
	if (argc < 1)
		return CLI_USAGE;
	argv[0] = c.label;
	rc = parse_globals(&c, argc, argv);
	if (rc == CLI_OK)
		rc = run_command(&c, argc - optind, argv + optind);
	if (rc == CLI_DONE)
		rc = CLI_OK;
	ferry_disconnect(c.conn);

	/* A command that failed has said why; do not repeat a write error. */
	if ((fflush(stdout) != 0 || ferror(stdout)) && rc == CLI_OK) {
		errorf(&c, "cannot write the output: %s", errno_str(errno));
		rc = CLI_ERR;
	}
	return rc;
}
