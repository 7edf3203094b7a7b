/*
 * render.c - what the ferry command prints: its messages on stderr, the
 * protocol's objects as JSON (--json) or for people ("key: value" lines
 * and tables), all in one place so that every command shows a job or a
 * transfer the same way.
 */
#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli.h"
#include "jbytes.h"
#include "jobfields.h"

/* Columns of the job table's text cells, beyond which they are cut with "...". */
#define TABLE_NAME_MAX 24
#define TABLE_CMD_MAX  60

/* ------------------------------------------------------------------ */
/* Messages */

void ferry__cli_errorf(const struct ctx *c, const char *fmt, ...)
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
const char *ferry__cli_api_msg(const struct ctx *c, int rc)
{
	const char *m = c->conn ? ferry_errmsg(c->conn) : NULL;

	return m && *m ? m : ferry_strerror(rc);
}

int ferry__cli_report(const struct ctx *c, int rc)
{
	ferry__cli_errorf(c, "%s", ferry__cli_api_msg(c, rc));
	return CLI_ERR;
}

int ferry__cli_report_id(const struct ctx *c, ferry_job_id id, int rc)
{
	fprintf(stderr, "ferry: %s %" PRId64 ": %s\n", c->cmd->name, id, ferry__cli_api_msg(c, rc));
	return CLI_ERR;
}

/* strerror() capitalises; our messages are lowercase throughout. */
const char *ferry__cli_errno_str(int err)
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

int ferry__cli_usage_error(const struct ctx *c)
{
	if (c->cmd)
		print_usage(c->cmd, stderr);
	else
		fputs("usage: ferry [OPTIONS] COMMAND [ARGS...] (see 'ferry --help')\n", stderr);
	return CLI_USAGE;
}

void ferry__cli_print_cmd_help(const struct cmd *cmd, FILE *f)
{
	print_usage(cmd, f);
	fprintf(f, "\n%s.\n", cmd->summary);
	if (cmd->help)
		fprintf(f, "\n%s", cmd->help);
}

int ferry__cli_out_of_memory(const struct ctx *c)
{
	ferry__cli_errorf(c, "out of memory");
	return CLI_ERR;
}

int ferry__cli_print_json(const struct ctx *c, json_t *j, size_t flags)
{
	int rc = CLI_OK;

	if (!j)
		return ferry__cli_out_of_memory(c);
	if (ferry__json_dumpf(j, stdout, flags | JSON_PRESERVE_ORDER) < 0 || putchar('\n') == EOF) {
		ferry__cli_errorf(c, "cannot write the output");
		rc = CLI_ERR;
	}
	json_decref(j);
	return rc;
}

/* ------------------------------------------------------------------ */
/* Text for people */

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

const char *ferry__cli_status_str(enum ferry_job_status s)
{
	const char *name = ferry_status_name(s);

	return name ? name : "unknown";
}

/* ------------------------------------------------------------------ */
/* The protocol's objects (docs/protocol.md) as JSON */
/* (ferry__job_to_json() and ferry__transfer_to_json(), in jobfields.c) */

/* ------------------------------------------------------------------ */
/* Objects for people */

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
static void print_object_human(json_t *o)
{
	size_t width = 0;
	const char *key;
	json_t *v;

	json_object_foreach(o, key, v)
	{
		if (strlen(key) > width)
			width = strlen(key);
	}
	json_object_foreach(o, key, v)
	{
		printf("%s:%*s ", key, (int)(width - strlen(key)), "");
		print_human_value(key, v);
		putchar('\n');
	}
}

/* Everything about one object (released): indented JSON, or a "key: value" line each. */
static int show(const struct ctx *c, json_t *o)
{
	if (c->json || !o)
		return ferry__cli_print_json(c, o, JSON_INDENT(2));
	print_object_human(o);
	json_decref(o);
	return CLI_OK;
}

int ferry__cli_show_job(const struct ctx *c, const struct ferry_job_info *j)
{
	return show(c, ferry__job_to_json(j));
}

int ferry__cli_show_transfer(const struct ctx *c, const struct ferry_transfer_info *t)
{
	return show(c, ferry__transfer_to_json(t));
}

/* ------------------------------------------------------------------ */
/* Lists for people */

/* An array of objects (released): indented JSON, or a header and a row each. */
static int print_list(const struct ctx *c, json_t *all, void (*header)(void),
		      void (*row)(const json_t *o))
{
	size_t i;
	json_t *o;

	if (c->json || !all)
		return ferry__cli_print_json(c, all, JSON_INDENT(2));
	header();
	json_array_foreach(all, i, o) row(o);
	json_decref(all);
	return CLI_OK;
}

static void transfer_header(void)
{
	printf("%-13s %-9s %12s  %s\n", "STATE", "KIND", "BYTES", "SERVER PATH <- LOCAL PATH");
}

static void transfer_row(const json_t *t)
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

int ferry__cli_print_transfers(const struct ctx *c, struct ferry_transfer_info *const *list,
			       size_t n)
{
	json_t *all = json_array();

	for (size_t i = 0; all && i < n; i++)
		json_array_append_new(all, ferry__transfer_to_json(list[i]));
	return print_list(c, all, transfer_header, transfer_row);
}

static void resource_header(void)
{
	printf("%-16s %-9s %-24s %s\n", "NAME", "SCHEDULER", "HOST", "STATE");
}

static void resource_row(const json_t *o)
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

int ferry__cli_print_resources(const struct ctx *c, json_t *all)
{
	return print_list(c, all, resource_header, resource_row);
}

/* ------------------------------------------------------------------ */
/* The table of jobs */

struct row {
	char id[24];
	char exit[32];
	const char *status;
	char *name;
	char *command;
};

/*
 * A job's end in a table's cell: brief in `ferry jobs` ("0", "sig9",
 * "?"), in words in top ("exit 0", "signal 9", "unclear"), whose column
 * has the room; the rest is the same in both.
 */
void ferry__cli_exit_cell(char *buf, size_t cap, enum ferry_exit_status st, int value, int sig,
			  int words)
{
	switch (st) {
	case FERRY_FINISHED_REGULARLY:
		snprintf(buf, cap, words ? "exit %d" : "%d", value);
		break;
	case FERRY_FINISHED_SIGNAL:
		snprintf(buf, cap, words ? "signal %d" : "sig%d", sig);
		break;
	case FERRY_KILLED_BY_USER:
		snprintf(buf, cap, "killed");
		break;
	case FERRY_ABORTED:
		snprintf(buf, cap, "aborted");
		break;
	case FERRY_FINISHED_UNCLEAR_CONDITION:
		snprintf(buf, cap, "%s", words ? "unclear" : "?");
		break;
	default:
		snprintf(buf, cap, "-");
		break;
	}
}

static int fill_row(const struct ferry_job_info *j, struct row *r)
{
	char *cmd = join_words(j->argv);

	snprintf(r->id, sizeof(r->id), "%" PRId64, j->id);
	ferry__cli_exit_cell(r->exit, sizeof(r->exit), j->exit_status, j->exit_value, j->signal, 0);
	r->status = ferry__cli_status_str(j->status);
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

/*
 * The rows held until the widths are known: so many, or all when fewer.
 * A later cell that is wider takes more room, and its row only moves.
 */
#define TABLE_SAMPLE 1000

struct ferry_jobs_out {
	const struct ctx *c;
	size_t n;	  /* jobs taken */
	struct row *rows; /* held until the widths are known; NULL after */
	size_t nrows;
	size_t wid, wst, wex, wna;
	int rc;
};

static void print_row(const struct ferry_jobs_out *o, const struct row *r)
{
	print_cell(r->id, o->wid);
	print_cell(r->status, o->wst);
	print_cell(r->exit, o->wex);
	print_cell(r->name, o->wna);
	puts(r->command);
}

static void free_row(struct row *r)
{
	free(r->name);
	free(r->command);
}

/* The widths from the rows held; the header and those rows. */
static void print_held(struct ferry_jobs_out *o)
{
	size_t i;

	for (i = 0; i < o->nrows; i++) {
		o->wid = max_width(o->wid, o->rows[i].id);
		o->wst = max_width(o->wst, o->rows[i].status);
		o->wex = max_width(o->wex, o->rows[i].exit);
		o->wna = max_width(o->wna, o->rows[i].name);
	}
	print_cell("ID", o->wid);
	print_cell("STATUS", o->wst);
	print_cell("EXIT", o->wex);
	print_cell("NAME", o->wna);
	puts("COMMAND");
	for (i = 0; i < o->nrows; i++) {
		print_row(o, &o->rows[i]);
		free_row(&o->rows[i]);
	}
	free(o->rows);
	o->rows = NULL;
	o->nrows = 0;
}

struct ferry_jobs_out *ferry__cli_jobs_out_new(const struct ctx *c)
{
	struct ferry_jobs_out *o = calloc(1, sizeof(*o));

	if (!o)
		return NULL;
	*o = (struct ferry_jobs_out){.c = c, .wid = 2, .wst = 6, .wex = 4, .wna = 4};
	if (!(o->rows = calloc(TABLE_SAMPLE, sizeof(*o->rows)))) {
		free(o);
		return NULL;
	}
	return o;
}

int ferry__cli_jobs_out_add(struct ferry_jobs_out *o, const struct ferry_job_info *j)
{
	struct row r = {0};

	if (o->rc != CLI_OK)
		return o->rc;
	if (fill_row(j, &r) < 0) {
		free_row(&r);
		return o->rc = ferry__cli_out_of_memory(o->c);
	}
	o->n++;
	if (o->rows) {
		o->rows[o->nrows++] = r;
		if (o->nrows == TABLE_SAMPLE)
			print_held(o);
		return CLI_OK;
	}
	print_row(o, &r);
	free_row(&r);
	return CLI_OK;
}

int ferry__cli_jobs_out_end(struct ferry_jobs_out *o)
{
	int rc = o->rc;

	if (o->rows)
		print_held(o);
	if ((fflush(stdout) == EOF || ferror(stdout)) && rc == CLI_OK) {
		ferry__cli_errorf(o->c, "cannot write the output");
		rc = CLI_ERR;
	}
	free(o);
	return rc;
}
