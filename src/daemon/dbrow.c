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
#include "util.h"

static json_t *col_json_num(sqlite3_stmt *q, int i)
{
	if (sqlite3_column_type(q, i) == SQLITE_NULL)
		return json_null();
	if (sqlite3_column_type(q, i) == SQLITE_INTEGER)
		return json_integer(sqlite3_column_int64(q, i));
	return json_real(sqlite3_column_double(q, i));
}

static json_t *col_json_str(sqlite3_stmt *q, int i)
{
	const unsigned char *s = sqlite3_column_text(q, i);

	return ferry__json_bytes((const char *)s);
}

/* Where each field of the job object comes from, by jobfields.h. */
enum field_from { FROM_COL, FROM_SPEC, FROM_DERIVED };

struct job_field {
	const char *name;
	enum ferry__jf_type type;
	enum field_from from;
	int col;	 /* FROM_COL: its index in a JOB_COLS row */
	const char *key; /* FROM_SPEC: the spec's key; NULL: the field's name */
};

#define SRC_COL(c)				    FROM_COL, JC_##c, NULL
#define SRC_SPEC				    FROM_SPEC, 0, NULL
#define SRC_SPEC_AS(k)				    FROM_SPEC, 0, #k
#define SRC_DERIVED(f)				    FROM_DERIVED, 0, NULL
#define JOB_FIELD(name, type, source, member, dflt) {#name, FERRY__JF_##type, SRC_##source},

static const struct job_field job_fields[] = {FERRY__JOB_FIELDS(JOB_FIELD)};

/* A column's value as its field's type shows it. */
static json_t *col_json(sqlite3_stmt *q, const struct job_field *f)
{
	const char *name;

	switch (f->type) {
	case FERRY__JF_STATE:
		name = ferry_status_name((enum ferry_job_status)sqlite3_column_int(q, f->col));
		return name ? json_string(name) : json_null();
	case FERRY__JF_EXIT:
		return json_string(
		    ferry_exit_status_name((enum ferry_exit_status)sqlite3_column_int(q, f->col)));
	case FERRY__JF_STR:
		return col_json_str(q, f->col);
	case FERRY__JF_STRV: /* arrays live in the spec only */
		return json_null();
	case FERRY__JF_BOOL:
		if (sqlite3_column_type(q, f->col) == SQLITE_NULL)
			return json_null();
		return json_boolean(sqlite3_column_int(q, f->col));
	default: /* the numbers, as stored: an INTEGER column gives an integer */
		return col_json_num(q, f->col);
	}
}

static json_t *field_json(sqlite3_stmt *q, json_t *spec, const struct job_field *f)
{
	json_t *v;

	switch (f->from) {
	case FROM_COL:
		return col_json(q, f);
	case FROM_SPEC:
		v = json_object_get(spec, f->key ? f->key : f->name);
		return v ? json_incref(v) : json_null();
	case FROM_DERIVED: /* ferry__job_derive(), once the others are there */
		break;
	}
	return json_null();
}

/* Builds the job object of docs/protocol.md from a JOB_COLS row. */
json_t *ferry__db_row_job(sqlite3_stmt *q)
{
	const unsigned char *text = sqlite3_column_text(q, JC_SPEC);
	json_t *spec = text ? ferry__json_loads((const char *)text) : NULL;
	json_t *o = json_object();
	int bad;

	if (!spec)
		spec = json_object();
	bad = !o || !spec;
	for (size_t i = 0; !bad && i < FERRY_ARRAY_SIZE(job_fields); i++)
		bad = json_object_set_new(o, job_fields[i].name,
					  field_json(q, spec, &job_fields[i])) < 0;
	json_decref(spec);
	if (bad || ferry__job_derive(o) < 0) {
		json_decref(o);
		return NULL;
	}
	return o;
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
