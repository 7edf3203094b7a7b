/*
 * dbrow.c - rows of the database as what the engine uses: a JOB_COLS row as
 * the job object (by jobfields.h's table), a TR_COLS row as a transfer's.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dbrow.h"
#include "job.h"
#include "jbytes.h"
#include "jscan.h"
#include "util.h"

/* Where each field of the job object comes from, by jobfields.h. */
enum field_from { FROM_COL, FROM_SPEC, FROM_DERIVED };

struct job_field {
	const char *name;
	const char *key; /* ",\"name\":", as the object writes it after another field */
	size_t keylen;
	enum ferry__jf_type type;
	enum field_from from;
	int col;	  /* FROM_COL: its index in a JOB_COLS row */
	const char *spec; /* FROM_SPEC: the spec's key; NULL: the field's name */
	void (*derive)(sqlite3_stmt *q, struct ferry_jtext *t); /* FROM_DERIVED */
	double dflt; /* the value of null or nothing, as the type shows it */
};

/* The DERIVED fields, as jobfields.c's derive_f() computes them from the others. */
static void text_cpu_time(sqlite3_stmt *q, struct ferry_jtext *t)
{
	/* the parts as NUM shows them: null when unknown or negative */
	if (sqlite3_column_type(q, JC_cpu_user) == SQLITE_NULL ||
	    sqlite3_column_type(q, JC_cpu_sys) == SQLITE_NULL ||
	    sqlite3_column_double(q, JC_cpu_user) < 0 || sqlite3_column_double(q, JC_cpu_sys) < 0)
		ferry__jtext_raw(t, "null", 4);
	else
		ferry__jtext_real(t, sqlite3_column_double(q, JC_cpu_user) +
					 sqlite3_column_double(q, JC_cpu_sys));
}

#define SRC_COL(c)     FROM_COL, JC_##c, NULL, NULL
#define SRC_SPEC       FROM_SPEC, 0, NULL, NULL
#define SRC_SPEC_AS(k) FROM_SPEC, 0, #k, NULL
#define SRC_DERIVED(f) FROM_DERIVED, 0, NULL, text_##f
#define JOB_FIELD(name, type, source, member, dflt)                                                \
	{#name, ",\"" #name "\":", sizeof(#name) + 3, FERRY__JF_##type, SRC_##source, dflt},

static const struct job_field job_fields[] = {FERRY__JOB_FIELDS(JOB_FIELD)};

#define NFIELDS FERRY_ARRAY_SIZE(job_fields)

/* The index of each field in job_fields: JF_id, JF_name, ... */
#define FIELD_INDEX(name, type, source, member, dflt) JF_##name,
enum { FERRY__JOB_FIELDS(FIELD_INDEX) };

/* A job's stored spec: each field's value as JSON text (p NULL: none). */
struct spec_text {
	struct ferry_jspan v[NFIELDS];
	char *dumped[NFIELDS]; /* the slow path's texts, owned */
	int parsed;	       /* they come from jansson: arrays hold strings only */
};

/* An array with "" for each element that is no string, as jobfields.c shows it. */
static json_t *strings_only(json_t *a)
{
	json_t *c = json_array(), *e;
	size_t i;

	json_array_foreach(a, i, e)
	{
		if (!c || json_array_append_new(c, json_is_string(e) ? json_incref(e)
								     : json_string("")) < 0) {
			json_decref(c);
			return NULL;
		}
	}
	return c;
}

/*
 * The slow path, for a spec the scan does not take (one that escapes a
 * byte, or that was not written by the engine): parsed by jansson and each
 * value dumped. A spec that does not parse gives nulls, as it always did.
 */
static int spec_parsed(const char *text, struct spec_text *st)
{
	json_t *spec = text ? ferry__json_loads(text) : NULL;
	int rc = 0;

	st->parsed = 1;
	memset(st->dumped, 0, sizeof(st->dumped));
	for (size_t i = 0; spec && i < NFIELDS; i++) {
		const struct job_field *f = &job_fields[i];
		json_t *v = f->from == FROM_SPEC
				? json_object_get(spec, f->spec ? f->spec : f->name)
				: NULL;
		int strv = f->type == FERRY__JF_STRV;
		if (!v || (strv && !json_is_array(v)))
			continue; /* an array that is none shows as [] */
		v = strv ? strings_only(v) : json_incref(v);
		st->dumped[i] = v ? ferry__json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY) : NULL;
		json_decref(v);
		if (!st->dumped[i]) {
			rc = FERRY_ENOMEM;
			break;
		}
		st->v[i] = (struct ferry_jspan){st->dumped[i], strlen(st->dumped[i]), 0};
	}
	json_decref(spec);
	return rc;
}

/*
 * The spec's keys in the order ferry__spec_normalise() stores them
 * (jansson keeps the order keys were set in), the fields of the object
 * they give, and the keys no field reads (SKIP): the scan, which looks
 * for a key right after the one it found last, then finds each, those too,
 * at its first look. Another order costs time, never results (a key
 * looked for among all of them cost the scan as much as the rest of it).
 * Every field from the spec is here once.
 */
#define SKIP NFIELDS
static const unsigned char spec_order[] = {SKIP, /* name: a column */
					   JF_queue,
					   JF_native_specification,
					   SKIP, /* submission_key: a column */
					   JF_disposal_timeout_hours,
					   JF_cpus,
					   JF_memory_mb,
					   JF_walltime_s,
					   JF_join_stderrout,
					   SKIP, /* hold */
					   JF_backend,
					   JF_resource,
					   JF_tasks,
					   JF_cpus_per_task,
					   JF_nodes,
					   JF_launcher,
					   JF_working_directory,
					   JF_stdin_path,
					   JF_stdout_path,
					   JF_stderr_path,
					   JF_command,
					   JF_env,
					   JF_referenced_input_files,
					   JF_referenced_output_files,
					   SKIP /* base_env */};
/* the SKIP keys, in their order in spec_order */
static const char *const skipped[] = {"name", "submission_key", "hold", "base_env"};

#define NSCAN FERRY_ARRAY_SIZE(spec_order)

#define IS_SPEC_COL(c)				     0
#define IS_SPEC_SPEC				     1
#define IS_SPEC_SPEC_AS(k)			     1
#define IS_SPEC_DERIVED(f)			     0
#define COUNT_SPEC(name, type, source, member, dflt) +IS_SPEC_##source
_Static_assert(NSCAN == FERRY_ARRAY_SIZE(skipped) + 0 FERRY__JOB_FIELDS(COUNT_SPEC),
	       "spec_order names each field from the spec");

/* The keys the scan is given, by spec_order: made once (the loop's thread alone reads rows). */
static const char *const *scan_keys(const size_t **lens)
{
	static const char *keys[NSCAN];
	static size_t keylens[NSCAN];
	static int made;
	size_t s = 0;

	for (size_t k = 0; !made && k < NSCAN; k++) {
		const struct job_field *f =
		    spec_order[k] < NFIELDS ? &job_fields[spec_order[k]] : NULL;
		keys[k] = f ? (f->spec ? f->spec : f->name) : skipped[s++];
		keylens[k] = strlen(keys[k]);
	}
	made = 1;
	*lens = keylens;
	return keys;
}

/* The spec's values as text: copied from the stored text as they stand when it can be. */
static int spec_values(sqlite3_stmt *q, struct spec_text *st)
{
	const char *text = (const char *)sqlite3_column_text(q, JC_SPEC);
	const size_t *keylens;
	const char *const *keys = scan_keys(&keylens);
	struct ferry_jspan v[NSCAN];

	if (text && ferry__jscan_object(text, (size_t)sqlite3_column_bytes(q, JC_SPEC), keys,
					keylens, NSCAN, v) == 0) {
		for (size_t k = 0; k < NSCAN; k++)
			if (spec_order[k] < NFIELDS)
				st->v[spec_order[k]] = v[k];
		return 0;
	}
	memset(st->v, 0, sizeof(st->v));
	return spec_parsed(text, st);
}

/* What the slow path made (a scanned spec holds nothing of its own). */
static void spec_release(struct spec_text *st)
{
	for (size_t i = 0; st->parsed && i < NFIELDS; i++)
		free(st->dumped[i]);
}

static int span_is(const struct ferry_jspan *v, const char *word)
{
	return v->p && v->n == strlen(word) && !memcmp(v->p, word, v->n);
}

/*
 * Each value is written as its type in jobfields.h shows it, which is what
 * libferry's struct ferry_job_info makes of it (jobfields.c): so `info`,
 * the C API and a listing printed as it stands all say the same. An
 * integer null or absent is its default, null when negative.
 */
static void int_text(struct ferry_jtext *t, int have, int64_t v, double dflt)
{
	if (!have)
		v = (int64_t)dflt;
	if (v >= 0)
		ferry__jtext_int(t, v);
	else
		ferry__jtext_raw(t, "null", 4);
}

/* NUM: null when negative (unknown); TIME: null unless after the epoch (not yet). */
static void real_text(struct ferry_jtext *t, enum ferry__jf_type type, int have, double d,
		      double dflt)
{
	if (!have)
		d = dflt;
	if (type == FERRY__JF_TIME ? d > 0 : d >= 0)
		ferry__jtext_real(t, d);
	else
		ferry__jtext_raw(t, "null", 4);
}

static void bool_text(struct ferry_jtext *t, int v)
{
	ferry__jtext_raw(t, v ? "true" : "false", v ? 4 : 5);
}

/*
 * Whether s[0..n) is an array of ids as the engine writes the deps column
 * ("[]", "[3,4]"): what is copied raw into a listing's JSON must be JSON,
 * whatever a damaged or edited database holds.
 */
static int is_id_array(const char *s, size_t n)
{
	size_t i = 1;

	if (!s || n < 2 || s[0] != '[' || s[n - 1] != ']')
		return 0;
	if (n == 2)
		return 1;
	for (;;) {
		size_t d = i;
		while (i < n - 1 && s[i] >= '0' && s[i] <= '9')
			i++;
		if (i == d || i - d > 19 || (s[d] == '0' && i - d > 1))
			return 0;
		if (i == n - 1)
			return 1;
		if (s[i++] != ',')
			return 0;
	}
}

/* A column's value as its field's type shows it; ended: the job ended (for ENDINT). */
static void col_text(sqlite3_stmt *q, const struct job_field *f, int ended, struct ferry_jtext *t)
{
	/*
	 * The column's value once, read by sqlite3_value_*(): each
	 * sqlite3_column_*() call costs an error check of its own, and a
	 * listing makes dozens a row (the connection is this thread's alone).
	 */
	sqlite3_value *cv = sqlite3_column_value(q, f->col);
	int ctype = sqlite3_value_type(cv), have = ctype != SQLITE_NULL;
	int real = f->type == FERRY__JF_NUM || f->type == FERRY__JF_TIME;
	double d = have && (real || ctype == SQLITE_FLOAT) ? sqlite3_value_double(cv) : 0;
	int64_t v = !have || real || f->type == FERRY__JF_STR || f->type == FERRY__JF_IDV ? 0
		    : ctype == SQLITE_FLOAT ? (int64_t)d
					    : sqlite3_value_int64(cv);
	const char *name;

	switch (f->type) {
	case FERRY__JF_STATE:
		name = ferry_status_name((enum ferry_job_status)v);
		ferry__jtext_cstr(t, name ? name : ferry_status_name(FERRY_UNDETERMINED));
		return;
	case FERRY__JF_EXIT:
		name = ferry_exit_status_name((enum ferry_exit_status)v);
		ferry__jtext_cstr(t, name ? name : ferry_exit_status_name(FERRY_EXIT_NONE));
		return;
	case FERRY__JF_STR:
		ferry__jtext_cstr(t, (const char *)sqlite3_value_text(cv));
		return;
	case FERRY__JF_STRV: /* arrays of strings live in the spec only */
		ferry__jtext_raw(t, "[]", 2);
		return;
	case FERRY__JF_IDV: { /* the engine wrote the column: a JSON array of ids, or NULL */
		const char *p = have ? (const char *)sqlite3_value_text(cv) : NULL;
		size_t n = p ? (size_t)sqlite3_value_bytes(cv) : 0;
		if (is_id_array(p, n))
			ferry__jtext_raw(t, p, n);
		else
			ferry__jtext_raw(t, "[]", 2);
		return;
	}
	case FERRY__JF_BOOL:
		bool_text(t, have && v);
		return;
	case FERRY__JF_ENDINT: /* null until the end; then its value (0 for none) */
		if (ended)
			ferry__jtext_int(t, (int)(have ? v : (int64_t)f->dflt));
		else
			ferry__jtext_raw(t, "null", 4);
		return;
	case FERRY__JF_NUM:
	case FERRY__JF_TIME:
		real_text(t, f->type, have, d, f->dflt);
		return;
	default:
		int_text(t, have, f->type == FERRY__JF_INT ? (int)v : v, f->dflt);
	}
}

/* Live fields of an active job override what the database had: 1 when field i was written. */
static int overlay(const struct job *j, size_t i, struct ferry_jtext *t)
{
	if (!j)
		return 0;
	if (i == JF_status) {
		ferry__jtext_cstr(t, ferry_status_name(j->state));
		return 1;
	}
	if (i == JF_started_at && j->started_at > 0) {
		ferry__jtext_real(t, j->started_at);
		return 1;
	}
	if (i == JF_native_id && j->native_id) {
		ferry__jtext_cstr(t, j->native_id);
		return 1;
	}
	return 0;
}

/*
 * An array whose elements are strings: a non-string one shows as ""
 * (jobfields.c). What jansson gave is so already (spec_parsed).
 */
static void strv_text(const struct spec_text *st, const struct ferry_jspan *v,
		      struct ferry_jtext *t)
{
	const char *p, *end, *e;

	if (!v->p || v->n < 2 || v->p[0] != '[') {
		ferry__jtext_raw(t, "[]", 2);
		return;
	}
	p = v->p + 1; /* not before: an array absent (a lost job's "{}") has no p */
	end = v->p + v->n - 1;
	if (st->parsed || v->strings) {
		ferry__jtext_raw(t, v->p, v->n);
		return;
	}
	ferry__jtext_raw(t, "[", 1);
	for (; p < end && (e = ferry__jscan_scalar_end(p, end)); p = e + 1) {
		if (*p == '"')
			ferry__jtext_raw(t, p, (size_t)(e - p));
		else
			ferry__jtext_raw(t, "\"\"", 2);
		if (e < end)
			ferry__jtext_raw(t, ",", 1);
	}
	ferry__jtext_raw(t, "]", 1);
}

/* A spec's number as an integer, as jobfields.c's get_int() takes it. */
static int span_int(const struct spec_text *st, const struct ferry_jspan *v, int64_t *out)
{
	char b[32];

	if (v->p && !st->parsed && (v->p[0] == '-' || (v->p[0] >= '0' && v->p[0] <= '9'))) {
		/* the scan took it: digits, that fit an int64_t (jscan.c's int_end) */
		uint64_t u = 0;
		for (size_t i = v->p[0] == '-'; i < v->n; i++)
			u = u * 10 + (uint64_t)(v->p[i] - '0');
		*out = v->p[0] == '-' ? (int64_t)(0 - u) : (int64_t)u;
		return 1;
	}
	if (!v->p || v->n >= sizeof(b) || (v->p[0] != '-' && (v->p[0] < '0' || v->p[0] > '9')))
		return 0;
	memcpy(b, v->p, v->n);
	b[v->n] = '\0';
	*out = strpbrk(b, ".eE") ? (int64_t)strtod(b, NULL) : strtoll(b, NULL, 10);
	return 1;
}

static void spec_field(const char *jobs_dir, int64_t id, size_t i, const struct spec_text *st,
		       struct ferry_jtext *t)
{
	const struct job_field *f = &job_fields[i];
	const struct ferry_jspan *v = &st->v[i];
	int is_str = v->p && v->p[0] == '"';
	int64_t n = 0;

	switch (f->type) {
	case FERRY__JF_STR:
		if (!is_str && i == JF_stdout_path)
			ferry__jtext_path(t, jobs_dir, id, "stdout");
		else if (!is_str && i == JF_stderr_path &&
			 !span_is(&st->v[JF_join_stderrout], "true"))
			ferry__jtext_path(t, jobs_dir, id, "stderr");
		else if (is_str)
			ferry__jtext_raw(t, v->p, v->n);
		else
			ferry__jtext_raw(t, "null", 4);
		return;
	case FERRY__JF_STRV:
		strv_text(st, v, t);
		return;
	case FERRY__JF_BOOL:
		bool_text(t, span_is(v, "true"));
		return;
	default: { /* the spec holds no other type than integers */
		int have = span_int(st, v, &n);
		int_text(t, have, f->type == FERRY__JF_INT ? (int)n : n, f->dflt);
	}
	}
}

int ferry__db_row_text(const char *jobs_dir, const struct job *j, sqlite3_stmt *q,
		       struct ferry_jtext *t)
{
	int64_t id = sqlite3_column_int64(q, JC_id);
	struct spec_text st;
	int rc;

	enum ferry_job_status state =
	    j ? j->state : (enum ferry_job_status)sqlite3_column_int(q, JC_state);
	int ex = sqlite3_column_int(q, JC_exit_status);
	/* as jobfields.c's job_ended() sees the object: by its status and exit status */
	int ended = state == FERRY_DONE || state == FERRY_FAILED ||
		    (ex != FERRY_EXIT_NONE && ferry_exit_status_name((enum ferry_exit_status)ex));

	st.parsed = 0; /* spec_values() fills the rest */
	/* room for the row at once: the spec's text and the columns around it */
	ferry__jtext_room(t, (size_t)sqlite3_column_bytes(q, JC_SPEC) + 1024);
	rc = spec_values(q, &st);
	ferry__jtext_raw(t, "{", 1);
	for (size_t i = 0; !rc && i < NFIELDS; i++) {
		const struct job_field *f = &job_fields[i];

		ferry__jtext_raw(t, f->key + !i, f->keylen - !i); /* the first without its comma */
		if (overlay(j, i, t))
			continue;
		if (f->from == FROM_COL)
			col_text(q, f, ended, t);
		else if (f->from == FROM_SPEC)
			spec_field(jobs_dir, id, i, &st, t);
		else
			f->derive(q, t);
	}
	ferry__jtext_raw(t, "}", 1);
	spec_release(&st);
	return rc ? rc : t->bad ? FERRY_ENOMEM : 0;
}

char *ferry__db_col_strdup(sqlite3_stmt *q, int i)
{
	const unsigned char *s = sqlite3_column_text(q, i);

	return s ? strdup((const char *)s) : NULL;
}

/*
 * The transfer row q is on: 0, FERRY_ENOMEM, or FERRY_EINTERNAL for a kind
 * or state that is no name of its enum (a database written by another
 * version, or damaged), which no request could act on.
 */
int ferry__db_row_transfer(sqlite3_stmt *q, struct db_tr_row *t)
{
	const char *kind = (const char *)sqlite3_column_text(q, 4);
	const char *state = (const char *)sqlite3_column_text(q, 5);

	memset(t, 0, sizeof(*t));
	t->id = sqlite3_column_int64(q, 0);
	if (ferry_transfer_kind_from_name(kind, &t->kind) ||
	    ferry_transfer_state_from_name(state, &t->state)) {
		fprintf(stderr, "ferryd: database: transfer %lld has kind '%s' and state '%s'\n",
			(long long)t->id, kind ? kind : "(null)", state ? state : "(null)");
		return FERRY_EINTERNAL;
	}
	t->key = ferry__db_col_strdup(q, 1);
	t->dir = ferry__db_col_strdup(q, 2);
	t->server_path = ferry__db_col_strdup(q, 3);
	t->received = sqlite3_column_int64(q, 6);
	t->created_at = sqlite3_column_double(q, 7);
	t->deadline = sqlite3_column_double(q, 8);
	t->ended_at = sqlite3_column_type(q, 9) == SQLITE_NULL ? 0 : sqlite3_column_double(q, 9);
	t->message = ferry__db_col_strdup(q, 10);
	return t->dir && t->server_path ? 0 : FERRY_ENOMEM;
}

void ferry__db_tr_row_release(struct db_tr_row *t)
{
	free(t->key);
	free(t->dir);
	free(t->server_path);
	free(t->message);
	memset(t, 0, sizeof(*t));
}
