/*
 * dbrow.c - rows of the database as what the engine uses: a JOB_COLS row as
 * the job object (by jobfields.h's table), a TR_COLS row as a transfer's.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dbrow.h"
#include "engine.h"
#include "jbytes.h"
#include "jscan.h"
#include "util.h"

/* Where each field of the job object comes from, by jobfields.h. */
enum field_from { FROM_COL, FROM_SPEC, FROM_DERIVED };

struct job_field {
	const char *name;
	const char *key; /* "\"name\":", as the object writes it */
	size_t keylen;
	enum ferry__jf_type type;
	enum field_from from;
	int col;	  /* FROM_COL: its index in a JOB_COLS row */
	const char *spec; /* FROM_SPEC: the spec's key; NULL: the field's name */
	void (*derive)(sqlite3_stmt *q, struct ferry_jtext *t); /* FROM_DERIVED */
};

/* The DERIVED fields, as jobfields.c's derive_f() computes them from the others. */
static void text_cpu_time(sqlite3_stmt *q, struct ferry_jtext *t)
{
	if (sqlite3_column_type(q, JC_cpu_user) == SQLITE_NULL ||
	    sqlite3_column_type(q, JC_cpu_sys) == SQLITE_NULL)
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
	{#name, "\"" #name "\":", sizeof(#name) + 2, FERRY__JF_##type, SRC_##source},

static const struct job_field job_fields[] = {FERRY__JOB_FIELDS(JOB_FIELD)};

#define NFIELDS FERRY_ARRAY_SIZE(job_fields)

/* The index of each field in job_fields: JF_id, JF_name, ... */
#define FIELD_INDEX(name, type, source, member, dflt) JF_##name,
enum { FERRY__JOB_FIELDS(FIELD_INDEX) };

/* A job's stored spec: each field's value as JSON text (p NULL: none). */
struct spec_text {
	struct ferry_jspan v[NFIELDS];
	char *dumped[NFIELDS]; /* the slow path's texts, owned */
};

/*
 * The slow path, for a spec the scan does not take (one that escapes a
 * byte, or that was not written by the engine): parsed by jansson and each
 * value dumped. A spec that does not parse gives nulls, as it always did.
 */
static int spec_parsed(const char *text, struct spec_text *st)
{
	json_t *spec = text ? ferry__json_loads(text) : NULL;
	int rc = 0;

	for (size_t i = 0; spec && i < NFIELDS; i++) {
		const struct job_field *f = &job_fields[i];
		json_t *v = f->from == FROM_SPEC
				? json_object_get(spec, f->spec ? f->spec : f->name)
				: NULL;
		if (!v)
			continue;
		if (!(st->dumped[i] = ferry__json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY))) {
			rc = FERRY_ENOMEM;
			break;
		}
		st->v[i] = (struct ferry_jspan){st->dumped[i], strlen(st->dumped[i])};
	}
	json_decref(spec);
	return rc;
}

/* The spec's values as text: copied from the stored text as they stand when it can be. */
static int spec_values(sqlite3_stmt *q, struct spec_text *st)
{
	const char *text = (const char *)sqlite3_column_text(q, JC_SPEC);
	const char *keys[NFIELDS];

	for (size_t i = 0; i < NFIELDS; i++)
		keys[i] = job_fields[i].from != FROM_SPEC ? NULL
			  : job_fields[i].spec		  ? job_fields[i].spec
							  : job_fields[i].name;
	if (text && ferry__jscan_object(text, (size_t)sqlite3_column_bytes(q, JC_SPEC), keys,
					NFIELDS, st->v) == 0)
		return 0;
	memset(st->v, 0, sizeof(st->v));
	return spec_parsed(text, st);
}

static void spec_release(struct spec_text *st)
{
	for (size_t i = 0; i < NFIELDS; i++)
		free(st->dumped[i]);
}

static int span_is(const struct ferry_jspan *v, const char *word)
{
	return v->p && v->n == strlen(word) && !memcmp(v->p, word, v->n);
}

/* A column's value as its field's type shows it. */
static void col_text(sqlite3_stmt *q, const struct job_field *f, struct ferry_jtext *t)
{
	int type = sqlite3_column_type(q, f->col);
	const char *name;

	switch (f->type) {
	case FERRY__JF_STATE:
	case FERRY__JF_EXIT:
		name = f->type == FERRY__JF_STATE
			   ? ferry_status_name((enum ferry_job_status)sqlite3_column_int(q, f->col))
			   : ferry_exit_status_name(
				 (enum ferry_exit_status)sqlite3_column_int(q, f->col));
		ferry__jtext_cstr(t, name);
		return;
	case FERRY__JF_STR:
		ferry__jtext_cstr(t, (const char *)sqlite3_column_text(q, f->col));
		return;
	case FERRY__JF_STRV: /* arrays live in the spec only */
		ferry__jtext_raw(t, "null", 4);
		return;
	case FERRY__JF_BOOL:
		if (type == SQLITE_NULL)
			ferry__jtext_raw(t, "null", 4);
		else
			ferry__jtext_raw(t, sqlite3_column_int(q, f->col) ? "true" : "false",
					 sqlite3_column_int(q, f->col) ? 4 : 5);
		return;
	default: /* the numbers, as stored: an INTEGER column gives an integer */
		if (type == SQLITE_NULL)
			ferry__jtext_raw(t, "null", 4);
		else if (type == SQLITE_INTEGER)
			ferry__jtext_int(t, sqlite3_column_int64(q, f->col));
		else
			ferry__jtext_real(t, sqlite3_column_double(q, f->col));
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

static void spec_field(struct ferry_engine *eng, int64_t id, size_t i, const struct spec_text *st,
		       struct ferry_jtext *t)
{
	const struct ferry_jspan *v = &st->v[i];
	int none = !v->p || span_is(v, "null");

	if (none && i == JF_stdout_path)
		ferry__jtext_path(t, ferry__engine_jobs_dir(eng), id, "stdout");
	else if (none && i == JF_stderr_path && !span_is(&st->v[JF_join_stderrout], "true"))
		ferry__jtext_path(t, ferry__engine_jobs_dir(eng), id, "stderr");
	else if (v->p)
		ferry__jtext_raw(t, v->p, v->n);
	else
		ferry__jtext_raw(t, "null", 4);
}

int ferry__db_row_text(struct ferry_engine *eng, const struct job *j, sqlite3_stmt *q,
		       struct ferry_jtext *t)
{
	int64_t id = sqlite3_column_int64(q, JC_id);
	struct spec_text st;
	int rc;

	memset(&st, 0, sizeof(st));
	/* room for the row at once: the spec's text and the columns around it */
	ferry__jtext_room(t, (size_t)sqlite3_column_bytes(q, JC_SPEC) + 1024);
	rc = spec_values(q, &st);
	for (size_t i = 0; !rc && i < NFIELDS; i++) {
		const struct job_field *f = &job_fields[i];

		ferry__jtext_raw(t, i ? "," : "{", 1);
		ferry__jtext_raw(t, f->key, f->keylen);
		if (overlay(j, i, t))
			continue;
		if (f->from == FROM_COL)
			col_text(q, f, t);
		else if (f->from == FROM_SPEC)
			spec_field(eng, id, i, &st, t);
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
