/*
 * fuzz_drmaa.c - libFuzzer target for what libferry-drmaa reads from its
 * callers (src/drmaa/parse.c): the native specification, the
 * "[hostname]:path" attributes and the placeholders they expand.
 *
 * The input, cut at its first NUL, is read as each of them; the checks:
 * - drmaa__native(): on success every number is in the range `ferry
 *   submit` allows, and the queue and native words point into the words
 *   it split; on failure the diagnosis names the attribute.
 * - drmaa__path(): on success the path is a suffix of the value, with
 *   $drmaa_hd_ph$ and $drmaa_wd_ph$ at most at its start; then
 *   drmaa__expand() for a few indexes gives a string without
 *   $drmaa_incr_ph$ whose length is what the replacements make it.
 * Deterministic: no clock, no randomness, no file.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include "proto.h"
#include "util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check(int cond, const char *what, const char *text)
{
	if (!cond) {
		fprintf(stderr, "fuzz_drmaa: %s: '%s'\n", what, text);
		abort();
	}
}

/* p is a word, or the value of a --word=value (its '=' became the NUL before p). */
static int inside(const char *p, char **words)
{
	for (size_t i = 0; words && words[i]; i++)
		if (p == words[i] || p == words[i] + strlen(words[i]) + 1)
			return 1;
	return 0;
}

static void native(const char *text)
{
	struct ferry_job_spec spec;
	char diag[64] = "", **words = NULL;
	int rc;

	memset(&spec, 0, sizeof(spec));
	rc = drmaa__native(text, &spec, &words, diag, sizeof(diag));
	if (rc == 0) {
		check(spec.cpus >= 0 && spec.memory_mb >= 0 && spec.tasks >= 0 &&
			  spec.cpus_per_task >= 0 && spec.nodes >= 0,
		      "negative amount", text);
		check(spec.launcher == FERRY_LAUNCHER_NONE || spec.launcher == FERRY_LAUNCHER_MPI,
		      "no launcher", text);
		check(spec.walltime_s >= 0 && spec.walltime_s <= FERRY_SPEC_WALLTIME_MAX,
		      "walltime out of range", text);
		check(!spec.queue || inside(spec.queue, words), "queue outside the words", text);
		check(!spec.native_specification || inside(spec.native_specification, words),
		      "native outside the words", text);
	} else {
		check(rc == DRMAA_ERRNO_INVALID_ATTRIBUTE_VALUE || rc == DRMAA_ERRNO_NO_MEMORY,
		      "unexpected code", text);
		check(strlen(diag) < sizeof(diag) && diag[0], "no diagnosis", text);
	}
	ferry__strv_free(words);
}

/* How many $drmaa_incr_ph$ expand() replaces in s (leftmost, not overlapping). */
static size_t count_incr(const char *s)
{
	size_t n = 0;

	while ((s = strstr(s, DRMAA_PLACEHOLDER_INCR)) != NULL) {
		n++;
		s += strlen(DRMAA_PLACEHOLDER_INCR);
	}
	return n;
}

static void expand(const char *path, long index, const char *wd)
{
	const char *home = "/home/u", *rest = path, *prefix = "";
	char num[32], *out = drmaa__expand(path, index, wd, home);
	size_t want, lead = 0;

	if (!out)
		return; /* out of memory: nothing to check */
	if (strncmp(path, DRMAA_PLACEHOLDER_HD, strlen(DRMAA_PLACEHOLDER_HD)) == 0) {
		prefix = home;
		rest = path + strlen(DRMAA_PLACEHOLDER_HD);
	} else if (wd && strncmp(path, DRMAA_PLACEHOLDER_WD, strlen(DRMAA_PLACEHOLDER_WD)) == 0) {
		prefix = wd;
		rest = path + strlen(DRMAA_PLACEHOLDER_WD);
	} else if (wd && path[0] != '/') {
		prefix = wd;
		lead = 1; /* the '/' between */
	}
	snprintf(num, sizeof(num), "%ld", index);
	want = strlen(prefix) + lead + strlen(rest) +
	       count_incr(rest) * (strlen(num) - strlen(DRMAA_PLACEHOLDER_INCR));
	check(strlen(out) == want, "expanded length", path);
	check(!strstr(out + strlen(prefix), DRMAA_PLACEHOLDER_INCR), "placeholder left", path);
	free(out);
}

/* ph is nowhere in p, or only at its start. */
static int leading_only(const char *p, const char *ph)
{
	const char *at = strstr(p, ph);

	return !at || (at == p && !strstr(p + 1, ph));
}

static void path(const char *text)
{
	char diag[64] = "";
	const char *p;
	int rc = drmaa__path("drmaa_output_path", text, text[0] & 1, &p, diag, sizeof(diag));

	if (rc) {
		check(rc == DRMAA_ERRNO_INVALID_ATTRIBUTE_VALUE && diag[0], "path refusal", text);
		return;
	}
	check(p >= text && p <= text + strlen(text), "path outside the value", text);
	/* $drmaa_hd_ph$ and $drmaa_wd_ph$ may only begin the path, once */
	check(leading_only(p, DRMAA_PLACEHOLDER_HD) && leading_only(p, DRMAA_PLACEHOLDER_WD),
	      "placeholder inside the path", text);
	expand(p, 0, NULL);
	expand(p, 7, "/w");
	expand(p, 2147483647L, "/work/dir");
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *text = malloc(size + 1);

	if (!text)
		return 0;
	memcpy(text, data, size);
	text[size] = '\0';
	native(text);
	path(text);
	free(text);
	return 0;
}
