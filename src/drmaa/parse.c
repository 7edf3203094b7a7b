/*
 * parse.c - what libferry-drmaa reads from its callers' text: the native
 * specification, the "[hostname]:path" attributes and their placeholders.
 * Pure functions over the common code, also built into fuzz/fuzz_drmaa.
 */
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "internal.h"
#include "util.h"

int drmaa__diag(char *diag, size_t len, int code, const char *fmt, ...)
{
	va_list ap;

	if (!diag || !len)
		return code;
	va_start(ap, fmt);
	vsnprintf(diag, len, fmt, ap);
	va_end(ap);
	return code;
}

/* The int words of `ferry submit`: where each goes in a spec, and its least value. */
static int *int_word(const char *opt, struct ferry_job_spec *spec)
{
	return !strcmp(opt, "--cpus")		 ? &spec->cpus
	       : !strcmp(opt, "--tasks")	 ? &spec->tasks
	       : !strcmp(opt, "--cpus-per-task") ? &spec->cpus_per_task
	       : !strcmp(opt, "--nodes")	 ? &spec->nodes
						 : NULL;
}

/* One native word's value into spec; *word is the option, value borrowed from words. */
static int native_word(const char *opt, const char *value, struct ferry_job_spec *spec, char *diag,
		       size_t len)
{
	int *member = int_word(opt, spec);
	char *end;
	long long v;

	if (member) {
		errno = 0;
		v = strtoll(value, &end, 10);
		if (errno || *end || v < 1 || v > INT_MAX || end == value)
			goto bad;
		*member = (int)v;
	} else if (strcmp(opt, "--launcher") == 0) {
		if (ferry_launcher_from_name(value, &spec->launcher))
			goto bad;
	} else if (strcmp(opt, "--memory") == 0) {
		if (ferry__parse_memory(value, &spec->memory_mb) < 0)
			goto bad;
	} else if (strcmp(opt, "--walltime") == 0) {
		if (ferry__parse_walltime(value, &spec->walltime_s) < 0)
			goto bad;
		/* No limit would pass unseen under a drmaa_wct_hlimit: leaving it out says that. */
		if (!spec->walltime_s)
			return drmaa__diag(diag, len, DRMAA_ERRNO_INVALID_ATTRIBUTE_VALUE,
					   "drmaa_native_specification: --walltime 0 sets no "
					   "limit: leave --walltime out for none");
	} else if (strcmp(opt, "--queue") == 0) {
		spec->queue = value;
	} else if (strcmp(opt, "--native") == 0) {
		spec->native_specification = value;
	} else {
		return drmaa__diag(
		    diag, len, DRMAA_ERRNO_INVALID_ATTRIBUTE_VALUE,
		    "drmaa_native_specification: unknown word '%s' (ferry takes "
		    "--cpus, --tasks, --cpus-per-task, --nodes, --launcher, --memory, "
		    "--walltime, --queue and --native)",
		    opt);
	}
	return 0;
bad:
	return drmaa__diag(diag, len, DRMAA_ERRNO_INVALID_ATTRIBUTE_VALUE,
			   "drmaa_native_specification: invalid value '%s' of %s (as `ferry "
			   "submit %s` takes it)",
			   value, opt, opt);
}

int drmaa__native(const char *text, struct ferry_job_spec *spec, char ***words, char *diag,
		  size_t len)
{
	const char *err = NULL;
	char **w;
	int rc;

	rc = ferry__split_words(text, words, &err);
	if (rc == -ENOMEM)
		return drmaa__diag(diag, len, DRMAA_ERRNO_NO_MEMORY, "out of memory");
	if (rc < 0)
		return drmaa__diag(diag, len, DRMAA_ERRNO_INVALID_ATTRIBUTE_VALUE,
				   "drmaa_native_specification '%s': %s", text, err);
	w = *words;
	for (size_t i = 0; w[i]; i++) {
		char *eq = strchr(w[i], '=');
		const char *value;
		if (strncmp(w[i], "--", 2) != 0 || (!eq && !w[i + 1]))
			return drmaa__diag(diag, len, DRMAA_ERRNO_INVALID_ATTRIBUTE_VALUE,
					   "drmaa_native_specification: '%s' is no --word with a "
					   "value",
					   w[i]);
		if (eq)
			*eq = '\0';
		value = eq ? eq + 1 : w[i + 1];
		rc = native_word(w[i], value, spec, diag, len);
		if (rc)
			return rc;
		if (!eq)
			i++;
	}
	return 0;
}

/* Where a placeholder may stand: $drmaa_hd_ph$ and $drmaa_wd_ph$ only first. */
static int check_placeholders(const char *attr, const char *path, char *diag, size_t len)
{
	static const char *const leading[] = {DRMAA_PLACEHOLDER_HD, DRMAA_PLACEHOLDER_WD};

	for (size_t i = 0; i < 2; i++) {
		const char *p = strstr(path, leading[i]);
		if (p && (p != path || strstr(p + 1, leading[i])))
			return drmaa__diag(diag, len, DRMAA_ERRNO_INVALID_ATTRIBUTE_VALUE,
					   "%s '%s': %s may only begin the path", attr, path,
					   leading[i]);
	}
	return 0;
}

/* Whether host (n bytes) names the caller's: "localhost", its name or its short name. */
static int this_host(const char *host, size_t n)
{
	char me[256] = "";

	if (n == 9 && !strncmp(host, "localhost", 9))
		return 1;
	if (gethostname(me, sizeof(me) - 1) < 0)
		return 0;
	return (strlen(me) == n || strcspn(me, ".") == n) && !strncmp(me, host, n);
}

int drmaa__path(const char *attr, const char *value, int transferred, const char **path, char *diag,
		size_t len)
{
	const char *colon = strchr(value, ':');

	*path = value;
	if (colon && memchr(value, '/', (size_t)(colon - value)) == NULL && value[0] != '$') {
		size_t n = (size_t)(colon - value);
		if (n && transferred && !this_host(value, n))
			return drmaa__diag(diag, len, DRMAA_ERRNO_INVALID_ATTRIBUTE_VALUE,
					   "%s '%s': a transfer from or to host '%.*s' is not "
					   "supported: ferry transfers the files of the caller's "
					   "host",
					   attr, value, (int)(n > 64 ? 64 : n), value);
		*path = colon + 1;
	}
	if (*value && !**path)
		return drmaa__diag(diag, len, DRMAA_ERRNO_INVALID_ATTRIBUTE_VALUE,
				   "%s '%s': no path after ':'", attr, value);
	return check_placeholders(attr, *path, diag, len);
}

char *drmaa__expand(const char *path, long index, const char *wd, const char *home)
{
	size_t cap = strlen(path) + strlen(wd ? wd : "") + strlen(home ? home : "") + 64, n = 0;
	char *out = malloc(cap);
	const char *incr = DRMAA_PLACEHOLDER_INCR;

	if (!out)
		return NULL;
	out[0] = '\0';
	if (strncmp(path, DRMAA_PLACEHOLDER_HD, strlen(DRMAA_PLACEHOLDER_HD)) == 0) {
		n = (size_t)snprintf(out, cap, "%s", home ? home : "");
		path += strlen(DRMAA_PLACEHOLDER_HD);
	} else if (wd && strncmp(path, DRMAA_PLACEHOLDER_WD, strlen(DRMAA_PLACEHOLDER_WD)) == 0) {
		n = (size_t)snprintf(out, cap, "%s", wd);
		path += strlen(DRMAA_PLACEHOLDER_WD);
	} else if (wd && path[0] != '/') {
		n = (size_t)snprintf(out, cap, "%s/", wd);
	}
	while (*path) {
		const char *p = strstr(path, incr);
		size_t k = p ? (size_t)(p - path) : strlen(path);
		char *grown = realloc(out, cap += k + 24);
		if (!grown) {
			free(out);
			return NULL;
		}
		out = grown;
		memcpy(out + n, path, k);
		n += k;
		n += p ? (size_t)snprintf(out + n, cap - n, "%ld", index) : 0;
		out[n] = '\0';
		path += k + (p ? strlen(incr) : 0);
	}
	return out;
}
