/*
 * fuzz_jtext.c - libFuzzer target for the JSON text a listing writes
 * without jansson (src/common/jscan.c, jbytes.c's ferry__jtext_*), held to
 * what jansson gives, byte for byte:
 *
 * - ferry__jscan_object() on the input as a stored spec: when it takes
 *   it, jansson (ferry__json_loadb, as the engine reads a spec) must parse
 *   it too, and each value found must be its value dumped with
 *   ferry__json_dumps(v, JSON_COMPACT); a key it did not find must be
 *   absent. (When it refuses, the engine asks jansson: nothing to check.)
 * - ferry__jtext_str() of the input as bytes must equal the dump of
 *   ferry__json_bytes() of them (the protocol's escape, "Bytes").
 * - ferry__jtext_real() of the input's first 8 bytes as a double must
 *   equal jansson's dump of json_real() of it.
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "jbytes.h"
#include "jscan.h"
#include "util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void die(const char *what, const char *a, size_t an, const char *b, size_t bn)
{
	fprintf(stderr, "fuzz_jtext: %s: '%.*s' vs '%.*s'\n", what, (int)an, a, (int)bn, b);
	abort();
}

/* The keys a job's spec is read for (dbrow.c), with a NULL among them, as there. */
static const char *const keys[] = {"argv", NULL, "name", "stdout_path", "env", "cpus",
				   "hold", "a",	 "b"};

static int all_strings(const json_t *a)
{
	size_t i;
	json_t *e;

	json_array_foreach(a, i, e)
	{
		if (!json_is_string(e))
			return 0;
	}
	return 1;
}

static void check_scan(const char *text, size_t n)
{
	struct ferry_jspan spans[FERRY_ARRAY_SIZE(keys)];
	size_t keylens[FERRY_ARRAY_SIZE(keys)];
	char err[160];
	json_t *o;

	for (size_t i = 0; i < FERRY_ARRAY_SIZE(keys); i++)
		keylens[i] = keys[i] ? strlen(keys[i]) : 0;
	if (ferry__jscan_object(text, n, keys, keylens, FERRY_ARRAY_SIZE(keys), spans) < 0)
		return;
	if (!(o = ferry__json_loadb(text, n, 0, err, sizeof(err))))
		die("scan took what jansson refuses", text, n, err, strlen(err));
	if (!json_is_object(o))
		die("scan took what is no object", text, n, "", 0);
	for (size_t i = 0; i < FERRY_ARRAY_SIZE(keys); i++) {
		json_t *v = keys[i] ? json_object_get(o, keys[i]) : NULL;
		char *d;
		if (!v != !spans[i].p)
			die("scan and jansson disagree on a key", text, n, keys[i] ? keys[i] : "",
			    keys[i] ? strlen(keys[i]) : 0);
		if (!v)
			continue;
		if (!(d = ferry__json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY)))
			abort();
		if (strlen(d) != spans[i].n || memcmp(d, spans[i].p, spans[i].n))
			die("a value's text is not its dump", spans[i].p, spans[i].n, d, strlen(d));
		if (spans[i].strings != (json_is_array(v) && all_strings(v)))
			die("scan and jansson disagree on an array of strings", spans[i].p,
			    spans[i].n, d, strlen(d));
		free(d);
	}
	json_decref(o);
}

static void check_str(const char *s, size_t n)
{
	struct ferry_jtext t = {0};
	char *c = malloc(n + 1), *d;
	size_t len;
	json_t *v;

	if (!c)
		return;
	memcpy(c, s, n);
	c[n] = '\0';
	len = strlen(c); /* what a C string of them holds, as the columns give */
	v = ferry__json_bytes(c);
	d = v ? ferry__json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY) : NULL;
	ferry__jtext_str(&t, c, len);
	if (!d || t.bad)
		abort();
	if (strlen(d) != t.len || memcmp(d, t.p, t.len))
		die("a string's text is not its dump", t.p, t.len, d, strlen(d));
	free(d);
	json_decref(v);
	ferry__jtext_free(&t);
	free(c);
}

static void check_real(const uint8_t *data, size_t size)
{
	struct ferry_jtext t = {0};
	double x;
	json_t *v;
	char *d;

	if (size < sizeof(x))
		return;
	memcpy(&x, data, sizeof(x));
	if (!isfinite(x))
		return;
	v = json_real(x);
	d = v ? json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY) : NULL;
	ferry__jtext_real(&t, x);
	if (!d || t.bad)
		abort();
	if (strlen(d) != t.len || memcmp(d, t.p, t.len))
		die("a real's text is not its dump", t.p, t.len, d, strlen(d));
	free(d);
	json_decref(v);
	ferry__jtext_free(&t);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	check_scan((const char *)data, size);
	check_str((const char *)data, size);
	check_real(data, size);
	return 0;
}
