/*
 * template.c - DRMAA job templates: their attributes, checked when set so
 * that a value ferry cannot honour is refused at once with the reason, the
 * attribute-name lists and the string vectors of the binding.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include "util.h"

typedef int (*check_fn)(const char *name, const char *value, char *diag, size_t len);

static int check_any(const char *name, const char *value, char *diag, size_t len)
{
	return 0;
}

static int bad_value(const char *name, const char *value, const char *why, char *diag, size_t len)
{
	return drmaa__diag(diag, len, DRMAA_ERRNO_INVALID_ATTRIBUTE_VALUE, "%s '%s': %s", name,
			   value, why);
}

static int check_command(const char *name, const char *value, char *diag, size_t len)
{
	return *value ? 0 : bad_value(name, value, "the command must not be empty", diag, len);
}

static int check_js_state(const char *name, const char *value, char *diag, size_t len)
{
	if (strcmp(value, DRMAA_SUBMISSION_STATE_ACTIVE) == 0 ||
	    strcmp(value, DRMAA_SUBMISSION_STATE_HOLD) == 0)
		return 0;
	return bad_value(name, value, "expected drmaa_active or drmaa_hold", diag, len);
}

static int check_yn(const char *name, const char *value, char *diag, size_t len)
{
	if (strcmp(value, "y") == 0 || strcmp(value, "n") == 0)
		return 0;
	return bad_value(name, value, "expected y or n", diag, len);
}

static int check_bool(const char *name, const char *value, char *diag, size_t len)
{
	if (strcmp(value, "0") == 0 || strcmp(value, "1") == 0)
		return 0;
	return bad_value(name, value, "expected 0 or 1", diag, len);
}

/* Attributes of the specification whose meaning ferry has no way to carry out. */
static int check_unsupported(const char *name, const char *value, char *diag, size_t len)
{
	if (!*value)
		return 0;
	if (strcmp(name, DRMAA_START_TIME) == 0)
		return bad_value(name, value, "ferry cannot delay a job's start (not supported)",
				 diag, len);
	return bad_value(name, value,
			 "ferry has no job categories (not supported): use "
			 "drmaa_native_specification",
			 diag, len);
}

static int check_limit(const char *name, const char *value, char *diag, size_t len)
{
	int64_t s;

	if (ferry__parse_walltime(value, &s) == 0 && s > 0)
		return 0;
	return bad_value(name, value, "expected a time amount [[h:]m:]s above 0, at most 366 days",
			 diag, len);
}

static int check_native(const char *name, const char *value, char *diag, size_t len)
{
	struct ferry_job_spec spec;
	char **words = NULL;
	int rc;

	ferry_job_spec_init(&spec);
	rc = drmaa__native(value, &spec, &words, diag, len);
	ferry__strv_free(words);
	return rc;
}

static int check_path(const char *name, const char *value, char *diag, size_t len)
{
	const char *path;

	/* whether it is transferred is known at the submit, which checks the host */
	return drmaa__path(name, value, 0, &path, diag, len);
}

static int check_wd(const char *name, const char *value, char *diag, size_t len)
{
	const char *hd = strstr(value, DRMAA_PLACEHOLDER_HD);

	if (strstr(value, DRMAA_PLACEHOLDER_WD))
		return bad_value(name, value, "the working directory cannot name itself", diag,
				 len);
	if (hd && (hd != value || strstr(hd + 1, DRMAA_PLACEHOLDER_HD)))
		return bad_value(name, value, "$drmaa_hd_ph$ may only begin it", diag, len);
	return 0;
}

/* Which of the input, output and error files are ferry transfers: i, o and e, each once. */
static int check_transfer(const char *name, const char *value, char *diag, size_t len)
{
	for (const char *p = value; *p; p++)
		if (!strchr("ioe", *p) || strchr(p + 1, *p))
			return bad_value(name, value,
					 "expected some of the letters i, o and e, each once", diag,
					 len);
	return 0;
}

/* The scalar attributes, in enum drmaa__scalar's order: every mandatory one of the spec, and
 * drmaa_transfer_files. */
static const struct {
	const char *name;
	check_fn check;
} scalars[DRMAA__NSCALAR] = {
    [DRMAA__REMOTE_COMMAND] = {DRMAA_REMOTE_COMMAND, check_command},
    [DRMAA__JS_STATE] = {DRMAA_JS_STATE, check_js_state},
    [DRMAA__WD] = {DRMAA_WD, check_wd},
    [DRMAA__JOB_CATEGORY] = {DRMAA_JOB_CATEGORY, check_unsupported},
    [DRMAA__NATIVE] = {DRMAA_NATIVE_SPECIFICATION, check_native},
    [DRMAA__BLOCK_EMAIL] = {DRMAA_BLOCK_EMAIL, check_bool},
    [DRMAA__START_TIME] = {DRMAA_START_TIME, check_unsupported},
    [DRMAA__JOB_NAME] = {DRMAA_JOB_NAME, check_any},
    [DRMAA__INPUT_PATH] = {DRMAA_INPUT_PATH, check_path},
    [DRMAA__OUTPUT_PATH] = {DRMAA_OUTPUT_PATH, check_path},
    [DRMAA__ERROR_PATH] = {DRMAA_ERROR_PATH, check_path},
    [DRMAA__JOIN_FILES] = {DRMAA_JOIN_FILES, check_yn},
    [DRMAA__WCT_HLIMIT] = {DRMAA_WCT_HLIMIT, check_limit},
    [DRMAA__TRANSFER_FILES] = {DRMAA_TRANSFER_FILES, check_transfer},
};

static const char *const vectors[DRMAA__NVECTOR] = {
    [DRMAA__V_ARGV] = DRMAA_V_ARGV,
    [DRMAA__V_ENV] = DRMAA_V_ENV,
    [DRMAA__V_EMAIL] = DRMAA_V_EMAIL,
};

/* Optional attributes of the spec ferry does not offer, and why (answered to a set or get). */
static const struct {
	const char *name, *why;
} unoffered[] = {
    {DRMAA_DEADLINE_TIME, "ferry has no deadlines"},
    {DRMAA_WCT_SLIMIT, "ferry has no soft wall-clock limit (drmaa_wct_hlimit is the hard one)"},
    {DRMAA_DURATION_HLIMIT, "ferry has no limit on the time a job runs less its suspensions "
			    "(drmaa_wct_hlimit, which counts them, is the one it has)"},
    {DRMAA_DURATION_SLIMIT, "ferry has no soft limits"},
};

/* The index of a scalar (vector: vec 1) attribute name; -1 with diag set when none. */
static int lookup(const char *name, int vec, char *diag, size_t len)
{
	const size_t nunoffered = sizeof(unoffered) / sizeof(unoffered[0]);

	if (!name)
		return drmaa__diag(diag, len, -1, "no attribute name given");
	for (int i = 0; i < (vec ? DRMAA__NVECTOR : DRMAA__NSCALAR); i++)
		if (strcmp(name, vec ? vectors[i] : scalars[i].name) == 0)
			return i;
	for (size_t i = 0; i < nunoffered; i++)
		if (strcmp(name, unoffered[i].name) == 0)
			return drmaa__diag(diag, len, -1,
					   "'%s' is an optional attribute ferry does not support: "
					   "%s",
					   name, unoffered[i].why);
	for (int i = 0; i < (vec ? DRMAA__NSCALAR : DRMAA__NVECTOR); i++)
		if (strcmp(name, vec ? scalars[i].name : vectors[i]) == 0)
			return drmaa__diag(diag, len, -1, "'%s' is a %s attribute", name,
					   vec ? "scalar" : "vector");
	return drmaa__diag(diag, len, -1, "'%s' is no job template attribute", name);
}

int drmaa_allocate_job_template(drmaa_job_template_t **jt, char *error_diagnosis,
				size_t error_diag_len)
{
	ferry_conn *conn;
	int rc;

	if (!jt)
		return drmaa__diag(error_diagnosis, error_diag_len, DRMAA_ERRNO_INVALID_ARGUMENT,
				   "jt must not be NULL");
	rc = drmaa__enter(&conn, error_diagnosis, error_diag_len);
	if (rc)
		return rc;
	drmaa__leave();
	*jt = calloc(1, sizeof(**jt));
	if (!*jt)
		return drmaa__diag(error_diagnosis, error_diag_len, DRMAA_ERRNO_NO_MEMORY,
				   "out of memory");
	return DRMAA_ERRNO_SUCCESS;
}

int drmaa_delete_job_template(drmaa_job_template_t *jt, char *error_diagnosis,
			      size_t error_diag_len)
{
	/*
	 * No session needed: the binding's deallocation has no effect on
	 * jobs, and refusing it after drmaa_exit() would leak the template
	 * (there is no other way to free it).
	 */
	if (!jt)
		return drmaa__diag(error_diagnosis, error_diag_len, DRMAA_ERRNO_INVALID_ARGUMENT,
				   "jt must not be NULL");
	for (int i = 0; i < DRMAA__NSCALAR; i++)
		free(jt->scalar[i]);
	for (int i = 0; i < DRMAA__NVECTOR; i++)
		ferry__strv_free(jt->vector[i]);
	free(jt);
	return DRMAA_ERRNO_SUCCESS;
}

/* Checks the call's arguments and the session; the attribute's index in *i. */
static int attr_call(const drmaa_job_template_t *jt, const char *name, int vec, int *i, char *diag,
		     size_t len)
{
	ferry_conn *conn;
	int rc;

	if (!jt)
		return drmaa__diag(diag, len, DRMAA_ERRNO_INVALID_ARGUMENT, "jt must not be NULL");
	rc = drmaa__enter(&conn, diag, len);
	if (rc)
		return rc;
	drmaa__leave();
	*i = lookup(name, vec, diag, len);
	return *i < 0 ? DRMAA_ERRNO_INVALID_ARGUMENT : 0;
}

int drmaa_set_attribute(drmaa_job_template_t *jt, const char *name, const char *value,
			char *error_diagnosis, size_t error_diag_len)
{
	char *copy;
	int i, rc;

	rc = attr_call(jt, name, 0, &i, error_diagnosis, error_diag_len);
	if (rc)
		return rc;
	if (!value)
		return drmaa__diag(error_diagnosis, error_diag_len, DRMAA_ERRNO_INVALID_ARGUMENT,
				   "no value given for '%s'", name);
	rc = scalars[i].check(name, value, error_diagnosis, error_diag_len);
	if (rc)
		return rc;
	copy = strdup(value);
	if (!copy)
		return drmaa__diag(error_diagnosis, error_diag_len, DRMAA_ERRNO_NO_MEMORY,
				   "out of memory");
	free(jt->scalar[i]);
	jt->scalar[i] = copy;
	return DRMAA_ERRNO_SUCCESS;
}

int drmaa_get_attribute(drmaa_job_template_t *jt, const char *name, char *value, size_t value_len,
			char *error_diagnosis, size_t error_diag_len)
{
	int i, rc;

	rc = attr_call(jt, name, 0, &i, error_diagnosis, error_diag_len);
	if (rc)
		return rc;
	if (!value || !value_len)
		return drmaa__diag(error_diagnosis, error_diag_len, DRMAA_ERRNO_INVALID_ARGUMENT,
				   "no buffer given for the value of '%s'", name);
	/* An attribute not set reads as empty, which is what "not set" means when set. */
	snprintf(value, value_len, "%s", jt->scalar[i] ? jt->scalar[i] : "");
	return DRMAA_ERRNO_SUCCESS;
}

static int check_vector(int i, const char *const *value, char *diag, size_t len)
{
	for (size_t k = 0; value[k]; k++) {
		const char *eq = strchr(value[k], '=');
		/* not echoed: an entry's text may hold a secret value */
		if (i == DRMAA__V_ENV && (!eq || eq == value[k]))
			return drmaa__diag(diag, len, DRMAA_ERRNO_INVALID_ATTRIBUTE_VALUE,
					   "%s entry %zu: expected NAME=value (%s)", DRMAA_V_ENV, k,
					   eq ? "its NAME is empty" : "it has no '='");
		if (i == DRMAA__V_EMAIL)
			return bad_value(DRMAA_V_EMAIL, value[k],
					 "ferry sends no mail (not supported)", diag, len);
	}
	return 0;
}

int drmaa_set_vector_attribute(drmaa_job_template_t *jt, const char *name, const char *value[],
			       char *error_diagnosis, size_t error_diag_len)
{
	char **copy;
	size_t n = 0;
	int i, rc;

	rc = attr_call(jt, name, 1, &i, error_diagnosis, error_diag_len);
	if (rc)
		return rc;
	if (!value)
		return drmaa__diag(error_diagnosis, error_diag_len, DRMAA_ERRNO_INVALID_ARGUMENT,
				   "no value given for '%s'", name);
	rc = check_vector(i, value, error_diagnosis, error_diag_len);
	if (rc)
		return rc;
	while (value[n])
		n++;
	copy = calloc(n + 1, sizeof(*copy));
	for (size_t k = 0; copy && k < n; k++) {
		copy[k] = strdup(value[k]);
		if (!copy[k]) {
			ferry__strv_free(copy);
			copy = NULL;
		}
	}
	if (!copy)
		return drmaa__diag(error_diagnosis, error_diag_len, DRMAA_ERRNO_NO_MEMORY,
				   "out of memory");
	ferry__strv_free(jt->vector[i]);
	jt->vector[i] = copy;
	return DRMAA_ERRNO_SUCCESS;
}

int drmaa_get_vector_attribute(drmaa_job_template_t *jt, const char *name,
			       drmaa_attr_values_t **values, char *error_diagnosis,
			       size_t error_diag_len)
{
	drmaa_attr_values_t *v;
	int i, rc;

	rc = attr_call(jt, name, 1, &i, error_diagnosis, error_diag_len);
	if (rc)
		return rc;
	if (!values)
		return drmaa__diag(error_diagnosis, error_diag_len, DRMAA_ERRNO_INVALID_ARGUMENT,
				   "values must not be NULL");
	v = calloc(1, sizeof(*v));
	rc = v ? 0 : DRMAA_ERRNO_NO_MEMORY;
	for (size_t k = 0; !rc && jt->vector[i] && jt->vector[i][k]; k++)
		rc = drmaa__strv_push(&v->s, jt->vector[i][k]);
	if (rc) {
		drmaa_release_attr_values(v);
		return drmaa__diag(error_diagnosis, error_diag_len, rc, "out of memory");
	}
	*values = v;
	return DRMAA_ERRNO_SUCCESS;
}

/* A names vector of the scalar (vec 0) or vector attributes. */
static int names(drmaa_attr_names_t **values, int vec, char *diag, size_t len)
{
	drmaa_attr_names_t *v;
	ferry_conn *conn;
	int rc;

	if (!values)
		return drmaa__diag(diag, len, DRMAA_ERRNO_INVALID_ARGUMENT,
				   "values must not be NULL");
	rc = drmaa__enter(&conn, diag, len);
	if (rc)
		return rc;
	drmaa__leave();
	v = calloc(1, sizeof(*v));
	rc = v ? 0 : DRMAA_ERRNO_NO_MEMORY;
	for (int i = 0; !rc && i < (vec ? DRMAA__NVECTOR : DRMAA__NSCALAR); i++)
		rc = drmaa__strv_push(&v->s, vec ? vectors[i] : scalars[i].name);
	if (rc) {
		drmaa_release_attr_names(v);
		return drmaa__diag(diag, len, rc, "out of memory");
	}
	*values = v;
	return DRMAA_ERRNO_SUCCESS;
}

int drmaa_get_attribute_names(drmaa_attr_names_t **values, char *error_diagnosis,
			      size_t error_diag_len)
{
	return names(values, 0, error_diagnosis, error_diag_len);
}

int drmaa_get_vector_attribute_names(drmaa_attr_names_t **values, char *error_diagnosis,
				     size_t error_diag_len)
{
	return names(values, 1, error_diagnosis, error_diag_len);
}

static int next(struct drmaa__strv *s, char *value, size_t value_len)
{
	if (s->next >= s->n)
		return DRMAA_ERRNO_NO_MORE_ELEMENTS;
	if (!value || !value_len)
		return DRMAA_ERRNO_INVALID_ARGUMENT;
	snprintf(value, value_len, "%s", s->v[s->next++]);
	return DRMAA_ERRNO_SUCCESS;
}

static int count(const struct drmaa__strv *s, size_t *size)
{
	if (!size)
		return DRMAA_ERRNO_INVALID_ARGUMENT;
	*size = s->n;
	return DRMAA_ERRNO_SUCCESS;
}

int drmaa_get_next_attr_name(drmaa_attr_names_t *values, char *value, size_t value_len)
{
	return values ? next(&values->s, value, value_len) : DRMAA_ERRNO_INVALID_ARGUMENT;
}

int drmaa_get_next_attr_value(drmaa_attr_values_t *values, char *value, size_t value_len)
{
	return values ? next(&values->s, value, value_len) : DRMAA_ERRNO_INVALID_ARGUMENT;
}

int drmaa_get_next_job_id(drmaa_job_ids_t *values, char *value, size_t value_len)
{
	return values ? next(&values->s, value, value_len) : DRMAA_ERRNO_INVALID_ARGUMENT;
}

int drmaa_get_num_attr_names(drmaa_attr_names_t *values, size_t *size)
{
	return values ? count(&values->s, size) : DRMAA_ERRNO_INVALID_ARGUMENT;
}

int drmaa_get_num_attr_values(drmaa_attr_values_t *values, size_t *size)
{
	return values ? count(&values->s, size) : DRMAA_ERRNO_INVALID_ARGUMENT;
}

int drmaa_get_num_job_ids(drmaa_job_ids_t *values, size_t *size)
{
	return values ? count(&values->s, size) : DRMAA_ERRNO_INVALID_ARGUMENT;
}

void drmaa_release_attr_names(drmaa_attr_names_t *values)
{
	if (values)
		drmaa__strv_clear(&values->s);
	free(values);
}

void drmaa_release_attr_values(drmaa_attr_values_t *values)
{
	if (values)
		drmaa__strv_clear(&values->s);
	free(values);
}

void drmaa_release_job_ids(drmaa_job_ids_t *values)
{
	if (values)
		drmaa__strv_clear(&values->s);
	free(values);
}
