/*
 * jobfields.c - struct ferry_job_info to and from a job object, each field
 * handled by its type in the table of jobfields.h rather than by name, so
 * that a new field is a row there and nothing here.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "jobfields.h"
#include "jbytes.h"
#include "util.h"

/* The DERIVED fields: each computed from the others of the object. */

/* Known once both parts are (they are recorded together at the end). */
static json_t *derive_cpu_time(const json_t *o)
{
	const json_t *u = json_object_get(o, "cpu_user"), *s = json_object_get(o, "cpu_sys");

	if (!json_is_number(u) || !json_is_number(s))
		return json_null();
	return json_real(json_number_value(u) + json_number_value(s));
}

/* ------------------------------------------------------------------ */
/* The table, as data */

#define NO_MEMBER SIZE_MAX

struct field {
	const char *name;
	enum ferry__jf_type type;
	size_t off;			    /* in struct ferry_job_info, or NO_MEMBER */
	double dflt;			    /* see jobfields.h */
	json_t *(*derive)(const json_t *o); /* DERIVED fields only */
};

#define OFF_M(m)	  offsetof(struct ferry_job_info, m)
#define OFF_NONE	  NO_MEMBER
#define DERIVE_COL(c)	  NULL
#define DERIVE_SPEC	  NULL
#define DERIVE_SPEC_AS(k) NULL
#define DERIVE_DERIVED(f) derive_##f
#define FIELD(name, type, source, member, dflt)                                                    \
	{#name, FERRY__JF_##type, OFF_##member, dflt, DERIVE_##source},

static const struct field fields[] = {FERRY__JOB_FIELDS(FIELD)};

/*
 * The code below writes members through their offsets by the row's type,
 * so a row whose type is not its member's must not compile.
 */
struct no_member {
	char unused;
};

#define CTYPE_INT    int
#define CTYPE_INT64  int64_t
#define CTYPE_ENDINT int
#define CTYPE_NUM    double
#define CTYPE_TIME   double
#define CTYPE_STR    char *
#define CTYPE_STRV   char **
#define CTYPE_BOOL   int
#define CTYPE_STATE  enum ferry_job_status
#define CTYPE_EXIT   enum ferry_exit_status
#define CTYPE_IDV    int64_t *
#define MEMBER_M(m)  (((struct ferry_job_info *)0)->m)
#define MEMBER_NONE  (*(struct no_member *)0)
#define TYPE_IS(e, ctype)                                                                          \
	(__builtin_types_compatible_p(__typeof__(e), ctype) ||                                     \
	 __builtin_types_compatible_p(__typeof__(e), struct no_member))
#define CHECK_TYPE(name, type, source, member, dflt)                                               \
	_Static_assert(TYPE_IS(MEMBER_##member, CTYPE_##type),                                     \
		       "the member of job field '" #name "' is not of type " #type);

FERRY__JOB_FIELDS(CHECK_TYPE)

/* ------------------------------------------------------------------ */
/* Object to struct */

static int is_pointer(enum ferry__jf_type t)
{
	return t == FERRY__JF_STR || t == FERRY__JF_STRV || t == FERRY__JF_IDV;
}

static int64_t get_int(const json_t *v, double dflt)
{
	if (json_is_integer(v))
		return json_integer_value(v);
	return (int64_t)(json_is_number(v) ? json_number_value(v) : dflt);
}

static enum ferry_exit_status exit_from_name(const char *name)
{
	for (int e = FERRY_EXIT_NONE; name && e <= FERRY_ABORTED; e++)
		if (!strcmp(name, ferry_exit_status_name((enum ferry_exit_status)e)))
			return (enum ferry_exit_status)e;
	return FERRY_EXIT_NONE;
}

static void set_scalar(void *p, const struct field *f, const json_t *v)
{
	switch (f->type) {
	case FERRY__JF_INT:
	case FERRY__JF_ENDINT:
		*(int *)p = (int)get_int(v, f->dflt);
		break;
	case FERRY__JF_INT64:
		*(int64_t *)p = get_int(v, f->dflt);
		break;
	case FERRY__JF_NUM:
	case FERRY__JF_TIME:
		*(double *)p = json_is_number(v) ? json_number_value(v) : f->dflt;
		break;
	case FERRY__JF_BOOL:
		*(int *)p = json_is_true(v);
		break;
	case FERRY__JF_STATE:
		*(enum ferry_job_status *)p = FERRY_UNDETERMINED;
		ferry_status_from_name(json_string_value(v), p);
		break;
	case FERRY__JF_EXIT:
		*(enum ferry_exit_status *)p = exit_from_name(json_string_value(v));
		break;
	default:
		break;
	}
}

/* A non-string element becomes "", as the array must stay NULL-terminated. */
static char **strv_from_json(const json_t *a)
{
	char **v = calloc(json_array_size(a) + 1, sizeof(*v));
	const char *s;

	for (size_t i = 0; v && i < json_array_size(a); i++) {
		s = json_string_value(json_array_get(a, i));
		if (!(v[i] = strdup(s ? s : ""))) {
			ferry__strv_free(v);
			return NULL;
		}
	}
	return v;
}

/* A non-integer element becomes -1: the array must stay 0-terminated. */
static int64_t *idv_from_json(const json_t *a)
{
	int64_t *v = calloc(json_array_size(a) + 1, sizeof(*v));

	for (size_t i = 0; v && i < json_array_size(a); i++) {
		const json_t *e = json_array_get(a, i);
		v[i] = json_is_integer(e) && json_integer_value(e) ? json_integer_value(e) : -1;
	}
	return v;
}

void ferry__job_scalars_from_json(const json_t *o, struct ferry_job_info *i)
{
	for (size_t k = 0; k < FERRY_ARRAY_SIZE(fields); k++) {
		const struct field *f = &fields[k];

		if (f->off != NO_MEMBER && !is_pointer(f->type))
			set_scalar((char *)i + f->off, f, json_object_get(o, f->name));
	}
}

int ferry__job_from_json(const json_t *o, struct ferry_job_info *i)
{
	int rc = 0;

	ferry__job_scalars_from_json(o, i);
	for (size_t k = 0; k < FERRY_ARRAY_SIZE(fields); k++) {
		const struct field *f = &fields[k];
		const json_t *v = json_object_get(o, f->name);

		if (f->off == NO_MEMBER || !is_pointer(f->type))
			continue;
		if (f->type == FERRY__JF_STR) {
			const char *s = json_string_value(v);
			char **p = (char **)((char *)i + f->off);

			*p = s ? strdup(s) : NULL;
			if (s && !*p)
				rc = FERRY_ENOMEM;
		} else if (f->type == FERRY__JF_IDV) {
			int64_t **p = (int64_t **)((char *)i + f->off);

			if (!(*p = idv_from_json(v)))
				rc = FERRY_ENOMEM;
		} else {
			char ***p = (char ***)((char *)i + f->off);

			if (!(*p = strv_from_json(v)))
				rc = FERRY_ENOMEM;
		}
	}
	return rc;
}

void ferry__job_release(struct ferry_job_info *i)
{
	for (size_t k = 0; k < FERRY_ARRAY_SIZE(fields); k++) {
		const struct field *f = &fields[k];

		if (f->off == NO_MEMBER)
			continue;
		if (f->type == FERRY__JF_STR)
			free(*(char **)((char *)i + f->off));
		else if (f->type == FERRY__JF_STRV)
			ferry__strv_free(*(char ***)((char *)i + f->off));
		else if (f->type == FERRY__JF_IDV)
			free(*(int64_t **)((char *)i + f->off));
	}
}

/* ------------------------------------------------------------------ */
/* Struct to object */

static int job_ended(const struct ferry_job_info *j)
{
	return j->status == FERRY_DONE || j->status == FERRY_FAILED ||
	       j->exit_status != FERRY_EXIT_NONE;
}

static json_t *idv_json(const int64_t *v)
{
	json_t *a = json_array();

	for (size_t i = 0; a && v && v[i]; i++)
		if (json_array_append_new(a, json_integer(v[i]))) {
			json_decref(a);
			return NULL;
		}
	return a;
}

/* The null of each type is the one jobfields.h states. */
static json_t *member_json(const struct ferry_job_info *j, const struct field *f)
{
	const void *p = (const char *)j + f->off;

	switch (f->type) {
	case FERRY__JF_INT:
		return *(const int *)p >= 0 ? json_integer(*(const int *)p) : json_null();
	case FERRY__JF_INT64:
		return *(const int64_t *)p >= 0 ? json_integer(*(const int64_t *)p) : json_null();
	case FERRY__JF_ENDINT:
		return job_ended(j) ? json_integer(*(const int *)p) : json_null();
	case FERRY__JF_NUM:
		return *(const double *)p >= 0 ? json_real(*(const double *)p) : json_null();
	case FERRY__JF_TIME:
		return *(const double *)p > 0 ? json_real(*(const double *)p) : json_null();
	case FERRY__JF_STR:
		return ferry__json_bytes(*(char *const *)p);
	case FERRY__JF_STRV:
		return ferry__json_bytesv(*(const char *const *const *)p);
	case FERRY__JF_BOOL:
		return json_boolean(*(const int *)p);
	case FERRY__JF_STATE:
		return ferry__json_bytes(ferry_status_name(*(const enum ferry_job_status *)p));
	case FERRY__JF_EXIT:
		return ferry__json_bytes(
		    ferry_exit_status_name(*(const enum ferry_exit_status *)p));
	case FERRY__JF_IDV:
		return idv_json(*(int64_t *const *)p);
	}
	return json_null();
}

json_t *ferry__job_to_json(const struct ferry_job_info *j)
{
	json_t *o = json_object();
	int bad = !o;

	for (size_t k = 0; !bad && k < FERRY_ARRAY_SIZE(fields); k++) {
		const struct field *f = &fields[k];
		json_t *v = f->off == NO_MEMBER ? json_null() : member_json(j, f);

		/* set_new releases v on failure too, and fails on v == NULL */
		bad = json_object_set_new(o, f->name, v) < 0;
	}
	if (bad || ferry__job_derive(o) < 0) {
		json_decref(o);
		return NULL;
	}
	return o;
}

int ferry__job_derive(json_t *o)
{
	for (size_t k = 0; k < FERRY_ARRAY_SIZE(fields); k++) {
		if (fields[k].derive &&
		    json_object_set_new(o, fields[k].name, fields[k].derive(o)) < 0)
			return -1;
	}
	return 0;
}

/* ------------------------------------------------------------------ */
/* A transfer's object, as the CLI and the Python module show it */

static int jset(json_t *o, const char *key, json_t *v)
{
	/* set_new also releases v on failure, and fails on v == NULL. */
	return json_object_set_new(o, key, v) < 0 ? -1 : 0;
}

static json_t *jtime(double t)
{
	return t > 0 ? json_real(t) : json_null();
}

json_t *ferry__transfer_to_json(const struct ferry_transfer_info *t)
{
	json_t *o = json_pack(
	    "{s:o,s:s,s:s,s:I,s:I,s:I,s:f,s:f,s:i}", "server_path",
	    ferry__json_bytes(t->server_path), "kind", ferry_transfer_kind_name(t->kind), "state",
	    ferry_transfer_state_name(t->state), "size", (json_int_t)t->size, "done",
	    (json_int_t)t->done, "received", (json_int_t)t->received, "created_at", t->created_at,
	    "deadline", t->deadline, "disposal_hours", t->disposal_hours);
	json_t *jobs = json_array();
	int bad = !o || !jobs;

	for (size_t i = 0; !bad && i < t->njobs; i++)
		bad |= json_array_append_new(jobs, json_integer(t->jobs[i]));
	if (bad) {
		json_decref(o);
		json_decref(jobs);
		return NULL;
	}
	bad |= jset(o, "local_paths", ferry__json_bytesv((const char *const *)t->local_paths));
	bad |= jset(o, "jobs", jobs);
	bad |= jset(o, "hash", ferry__json_bytes(t->hash));
	bad |= jset(o, "ended_at", jtime(t->ended_at));
	bad |= jset(o, "message", ferry__json_bytes(t->message));
	if (bad) {
		json_decref(o);
		return NULL;
	}
	return o;
}
