/* jbytes.c - JSON strings that carry any bytes (see jbytes.h). */
#include "jbytes.h"

#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "jscan.h"
#include "util.h"

json_t *ferry__json_bytes(const char *s)
{
	return s ? json_stringn_nocheck(s, strlen(s)) : json_null();
}

json_t *ferry__json_bytesv(const char *const *v)
{
	json_t *a = json_array();

	for (; a && v && *v; v++) {
		if (json_array_append_new(a, ferry__json_bytes(*v)) < 0) {
			json_decref(a);
			return NULL;
		}
	}
	return a;
}

static const char hex[] = "0123456789abcdef";

/* A byte of valid UTF-8 that JSON escapes, escaped as jansson does. */
static char *json_char(char *o, unsigned char c)
{
	char e = c == '\b'   ? 'b'
		 : c == '\f' ? 'f'
		 : c == '\n' ? 'n'
		 : c == '\r' ? 'r'
		 : c == '\t' ? 't'
		 : c == '\\' ? '\\'
		 : c == '"'  ? '"'
			     : 0;

	*o++ = '\\';
	if (e) {
		*o++ = e;
		return o;
	}
	memcpy(o, "u00", 3);
	o[3] = "0123456789ABCDEF"[c >> 4]; /* jansson's "\\u%04X" */
	o[4] = "0123456789ABCDEF"[c & 15];
	return o + 5;
}

/*
 * The escape of n bytes at s into o, which has room for 8 n bytes: each
 * byte no part of valid UTF-8 becomes a NUL and two hex digits. With
 * json, what that gives is written as the inside of a JSON string the
 * way jansson's dump writes it (the NUL as \u0000, quotes and control
 * characters escaped), so that a text written here and a json_t dumped
 * agree byte for byte. Returns the end of what was written.
 */
static char *escape_into(char *o, const char *s, size_t n, int json)
{
	const unsigned char *p = (const unsigned char *)s, *end = p + n;

	while (p < end) {
		const unsigned char *run = ferry__json_plain_end(p, end);
		size_t k;
		if (run > p) { /* the common case, first: a run copied at once */
			memcpy(o, p, (size_t)(run - p));
			o += run - p;
			p = run;
			continue;
		}
		k = ferry__utf8_char(p, end);
		if (k == 1 && json) {
			o = json_char(o, *p++);
			continue;
		}
		if (k) {
			memcpy(o, p, k);
			o += k, p += k;
			continue;
		}
		if (json) {
			memcpy(o, "\\u0000", 6);
			o += 6;
		} else {
			*o++ = '\0';
		}
		*o++ = hex[*p >> 4];
		*o++ = hex[*p & 15];
		p++;
	}
	return o;
}

/* The escaped form of n bytes at s, valid UTF-8, into *out (free() it). */
static int escape(const char *s, size_t n, char **out, size_t *outn)
{
	char *o = malloc(3 * n + 1);

	if (!o)
		return -1;
	*outn = (size_t)(escape_into(o, s, n, 0) - o);
	*out = o;
	return 0;
}

/*
 * A copy of v whose strings are all valid UTF-8: the slow path of a dump,
 * taken only when jansson refused one. New reference; NULL out of memory.
 */
static json_t *escaped_copy(json_t *v)
{
	const char *key;
	json_t *c = NULL, *e;
	size_t i, n;
	char *s;

	switch (json_typeof(v)) {
	case JSON_OBJECT:
		c = json_object();
		json_object_foreach(v, key,
				    e) if (!c || json_object_set_new(c, key, escaped_copy(e)) <
						     0) goto fail;
		return c;
	case JSON_ARRAY:
		c = json_array();
		json_array_foreach(v, i, e) if (!c || json_array_append_new(c, escaped_copy(e)) <
							  0) goto fail;
		return c;
	case JSON_STRING:
		if (ferry__valid_utf8(json_string_value(v), json_string_length(v)))
			return json_incref(v);
		if (escape(json_string_value(v), json_string_length(v), &s, &n) < 0)
			return NULL;
		c = json_stringn(s, n);
		free(s);
		return c;
	default:
		return json_incref(v);
	}
fail:
	json_decref(c);
	return NULL;
}

static void out_value(struct ferry_jtext *t, const json_t *v)
{
	const char *key;
	json_t *e;
	size_t i;

	switch (json_typeof(v)) {
	case JSON_OBJECT:
		ferry__jtext_raw(t, "{", 1);
		i = 0;
		json_object_foreach((json_t *)v, key, e)
		{
			ferry__jtext_raw(t, ",", i++ > 0);
			ferry__jtext_str(t, key, strlen(key));
			ferry__jtext_raw(t, ":", 1);
			out_value(t, e);
		}
		ferry__jtext_raw(t, "}", 1);
		return;
	case JSON_ARRAY:
		ferry__jtext_raw(t, "[", 1);
		json_array_foreach(v, i, e)
		{
			ferry__jtext_raw(t, ",", i > 0);
			out_value(t, e);
		}
		ferry__jtext_raw(t, "]", 1);
		return;
	case JSON_STRING:
		ferry__jtext_str(t, json_string_value(v), json_string_length(v));
		return;
	case JSON_INTEGER:
		ferry__jtext_int(t, json_integer_value(v));
		return;
	case JSON_REAL:
		ferry__jtext_real(t, json_real_value(v));
		return;
	case JSON_TRUE:
		ferry__jtext_raw(t, "true", 4);
		return;
	case JSON_FALSE:
		ferry__jtext_raw(t, "false", 5);
		return;
	default:
		ferry__jtext_raw(t, "null", 4);
	}
}

/*
 * The compact form, written with the listing's text writer (below) rather
 * than by jansson: a bulk submit writes a frame of thousands of specs at
 * the client and each spec's stored text at the engine, and jansson's dump
 * (a callback per piece, a UTF-8 check of each string, then the escaped
 * copy when one is no UTF-8) took as much of the engine's time as the
 * database's insert. The same text as json_dumps(v, JSON_COMPACT) for
 * valid UTF-8, with the bytes' escape written in the same pass.
 */
static char *dump_compact(const json_t *v)
{
	struct ferry_jtext t = {0};

	out_value(&t, v);
	ferry__jtext_raw(&t, "", 1);
	if (t.bad) {
		ferry__jtext_free(&t);
		return NULL;
	}
	return t.p;
}

int ferry__jtext_json(struct ferry_jtext *t, const json_t *v)
{
	out_value(t, v);
	ferry__jtext_raw(t, "", 1);
	if (t->bad)
		return -1;
	t->len--;
	return 0;
}

char *ferry__json_dumps(const json_t *v, size_t flags)
{
	char *s;
	json_t *c;

	if ((flags & JSON_COMPACT) &&
	    !(flags & ~(size_t)(JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_ENCODE_ANY)) &&
	    ((flags & JSON_ENCODE_ANY) || json_is_object(v) || json_is_array(v)))
		return dump_compact(v);
	if ((s = json_dumps(v, flags)))
		return s;
	/* jansson writes no string that is not UTF-8: escape, then again */
	c = escaped_copy((json_t *)v);
	s = c ? json_dumps(c, flags) : NULL;
	json_decref(c);
	return s;
}

int ferry__json_dumpf(const json_t *v, FILE *f, size_t flags)
{
	char *s = ferry__json_dumps(v, flags);
	int rc;

	if (!s) {
		errno = ENOMEM;
		return -1;
	}
	rc = fputs(s, f) < 0 ? -1 : 0;
	free(s);
	return rc;
}

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1;
}

/* Whether n bytes at o escape back to exactly the wire text s (sn bytes). */
static int canonical(const char *o, size_t n, const char *s, size_t sn)
{
	char *e;
	size_t en;
	int same;

	if (escape(o, n, &e, &en) < 0)
		return -1;
	same = en == sn && !memcmp(e, s, sn);
	free(e);
	return same;
}

/*
 * Turns the escapes of string v back into bytes. Each must stand, in
 * lower-case hex, for a byte that valid UTF-8 could not have carried where
 * it is (never a part of a valid character), so that one string has one
 * wire form. 0, or -1 with a message in err.
 */
static int unescape(json_t *v, char *err, size_t errlen)
{
	const char *s = json_string_value(v);
	size_t n = json_string_length(v), j = 0;
	char *o;
	int rc;

	if (!memchr(s, '\0', n))
		return 0;
	if (!(o = malloc(n))) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	for (size_t i = 0; i < n; i++) {
		int hi, lo;
		if (s[i] != '\0') {
			o[j++] = s[i];
			continue;
		}
		hi = i + 2 < n ? hexval(s[i + 1]) : -1;
		lo = hi >= 0 ? hexval(s[i + 2]) : -1;
		if (lo < 0 || hi < 8) {
			snprintf(err, errlen,
				 "a string holds \\u0000 not followed by the "
				 "hex of a byte from 80 to ff");
			free(o);
			return -1;
		}
		o[j++] = (char)(hi << 4 | lo);
		i += 2;
	}
	rc = canonical(o, j, s, n);
	if (rc == 0)
		snprintf(err, errlen, "a string escapes bytes that are valid UTF-8 as they stand");
	else if (rc > 0 && (rc = json_string_setn_nocheck(v, o, j)) == 0)
		rc = 1;
	if (rc < 0)
		snprintf(err, errlen, "out of memory");
	free(o);
	return rc > 0 ? 0 : -1;
}

static int unescape_tree(json_t *v, char *err, size_t errlen)
{
	const char *key;
	json_t *e;
	size_t i;

	switch (json_typeof(v)) {
	case JSON_OBJECT:
		json_object_foreach(v, key, e) if (unescape_tree(e, err, errlen) < 0) return -1;
		return 0;
	case JSON_ARRAY:
		json_array_foreach(v, i, e) if (unescape_tree(e, err, errlen) < 0) return -1;
		return 0;
	case JSON_STRING:
		return unescape(v, err, errlen);
	default:
		return 0;
	}
}

json_t *ferry__json_loadb(const char *buf, size_t len, size_t flags, char *err, size_t errlen)
{
	json_error_t je;
	json_t *v = json_loadb(buf, len, flags | JSON_ALLOW_NUL, &je);

	if (!v) {
		snprintf(err, errlen, "invalid json at byte %d: %s", je.position, je.text);
		return NULL;
	}
	if (unescape_tree(v, err, errlen) < 0) {
		json_decref(v);
		return NULL;
	}
	return v;
}

json_t *ferry__json_loads(const char *text)
{
	char err[160];

	return ferry__json_loadb(text, strlen(text), 0, err, sizeof(err));
}

/* ------------------------------------------------------------------ */
/* JSON text written straight */

int ferry__jtext_room(struct ferry_jtext *t, size_t n)
{
	size_t cap = t->cap ? t->cap : 4096;
	char *p;

	if (t->bad)
		return -1;
	if (t->len + n <= t->cap)
		return 0;
	while (cap < t->len + n)
		cap *= 2;
	if (!(p = realloc(t->p, cap))) {
		t->bad = 1;
		return -1;
	}
	t->p = p;
	t->cap = cap;
	return 0;
}

void ferry__jtext_str(struct ferry_jtext *t, const char *s, size_t n)
{
	char *o;

	if (n > (SIZE_MAX - 2) / 8 || ferry__jtext_room(t, 8 * n + 2) < 0) {
		t->bad = 1;
		return;
	}
	o = t->p + t->len;
	*o++ = '"';
	o = escape_into(o, s, n, 1);
	*o++ = '"';
	t->len = (size_t)(o - t->p);
}

void ferry__jtext_cstr(struct ferry_jtext *t, const char *s)
{
	if (s)
		ferry__jtext_str(t, s, strlen(s));
	else
		ferry__jtext_raw(t, "null", 4);
}

/* v in decimal at the end of b[24]; returns where it starts (printf's "%lld", faster). */
static char *int_text(char *end, int64_t v)
{
	uint64_t u = v < 0 ? 0 - (uint64_t)v : (uint64_t)v;
	char *p = end;

	do
		*--p = (char)('0' + u % 10);
	while (u /= 10);
	if (v < 0)
		*--p = '-';
	return p;
}

void ferry__jtext_int(struct ferry_jtext *t, int64_t v)
{
	char b[24], *p = int_text(b + sizeof(b), v);

	ferry__jtext_raw(t, p, (size_t)(b + sizeof(b) - p));
}

void ferry__jtext_path(struct ferry_jtext *t, const char *dir, int64_t id, const char *name)
{
	char b[24], *p = int_text(b + sizeof(b), id), *o;
	size_t dl = strlen(dir), il = (size_t)(b + sizeof(b) - p), nl = strlen(name);

	/*
	 * Escaped in pieces straight into t: the same as the escape of the
	 * whole, since '/' and digits are plain and end any UTF-8 sequence. A
	 * listing writes two a job; a copy and a check of it first cost more.
	 */
	if (dl + nl > (SIZE_MAX - 64) / 8 || ferry__jtext_room(t, 8 * (dl + nl) + il + 4) < 0) {
		t->bad = 1;
		return;
	}
	o = t->p + t->len;
	*o++ = '"';
	o = escape_into(o, dir, dl, 1);
	*o++ = '/';
	memcpy(o, p, il);
	o += il;
	*o++ = '/';
	o = escape_into(o, name, nl, 1);
	*o++ = '"';
	t->len = (size_t)(o - t->p);
}

/*
 * The 17 significant digits of |v| that "%.17g" prints, when |v| is m 2^e
 * with 10^-4 <= |v| < 10^17 (the times and durations of jobs): the digits
 * are |v| 10^(16 - k) rounded to an integer, half to even (as glibc's
 * printf rounds the exact binary value), k the decimal exponent of the
 * first digit, and m 10^(16 - k) fits 128 bits. Returns k, or INT_MIN
 * outside that range (printf then writes it). printf's digits cost some
 * 0.2 us a real, a tenth of a listing's time per job.
 */
static int digits17(double v, uint64_t *digits)
{
	static const uint64_t e17 = 100000000000000000u, e16 = 10000000000000000u;
	double a = v < 0 ? -v : v;
	uint64_t bits, m;
	int bexp, sh, k;

	if (!(a >= 1e-4 && a < 1e17))
		return INT_MIN;
	memcpy(&bits, &a, sizeof(bits));
	bexp = (int)(bits >> 52) & 0x7ff; /* normal: a = m 2^(bexp - 1075) */
	m = (bits & ((UINT64_C(1) << 52) - 1)) | UINT64_C(1) << 52;
	sh = 1075 - bexp;
	if (sh <= 0 || sh > 120)
		return INT_MIN;
	/* log10(2) (bexp - 1023), maybe one off: the loop below corrects it */
	k = (int)((bexp - 1023) * 0.30102999566398120);
	for (int tries = 0; tries < 3 && k >= -5 && k <= 17; tries++) {
		unsigned __int128 n = m, q, rem, half;
		for (int i = 0; i < 16 - k; i++)
			n *= 10;
		q = n >> sh;
		rem = n - (q << sh);
		half = (unsigned __int128)1 << (sh - 1);
		q += rem > half || (rem == half && (q & 1));
		if (q >= e17)
			k++;
		else if (q < e16)
			k--;
		else {
			*digits = (uint64_t)q;
			return k >= -4 && k <= 16 ? k : INT_MIN;
		}
	}
	return INT_MIN;
}

/* The form "%.17g" gives 17 digits of exponent k (-4..16): no exponent, no trailing zeros. */
static int fixed17(char *b, int neg, uint64_t digits, int k)
{
	char d[17], *o = b;
	int last = 16;

	for (int i = 16; i >= 0; i--, digits /= 10)
		d[i] = (char)('0' + digits % 10);
	while (last > k && last > 0 && d[last] == '0')
		last--; /* %g drops the fraction's trailing zeros */
	if (neg)
		*o++ = '-';
	if (k < 0) {
		memcpy(o, "0.", 2);
		o += 2;
		for (int i = -1; i > k; i--)
			*o++ = '0';
	}
	for (int i = 0; i <= last; i++) {
		*o++ = d[i];
		if (i == k && i < last)
			*o++ = '.';
	}
	return (int)(o - b);
}

/*
 * jansson's jsonp_dtostr (2.14, built without dtoa, as Debian's is):
 * "%.17g", ".0" added when neither a point nor an exponent shows, and the
 * exponent's '+' and leading zeros dropped. The engine and libferry keep
 * the C locale, so the point is a point.
 */
void ferry__jtext_real(struct ferry_jtext *t, double v)
{
	char b[40], *e;
	uint64_t digits;
	int n, k;

	if (!isfinite(v)) { /* no column holds one; jansson would refuse it */
		ferry__jtext_raw(t, "null", 4);
		return;
	}
	if ((k = digits17(v, &digits)) != INT_MIN)
		n = fixed17(b, v < 0, digits, k);
	else
		n = snprintf(b, sizeof(b) - 2, "%.17g", v);
	b[n] = '\0';
	if (!strchr(b, '.') && !(e = strchr(b, 'e'))) {
		memcpy(b + n, ".0", 3);
		n += 2;
	}
	if ((e = strchr(b, 'e'))) {
		char *start = e + 1 + (e[1] == '-'), *from = e + 2;
		while (*from == '0')
			from++;
		memmove(start, from, (size_t)(b + n + 1 - from));
		n -= (int)(from - start);
	}
	ferry__jtext_raw(t, b, (size_t)n);
}

void ferry__jtext_free(struct ferry_jtext *t)
{
	free(t->p);
	*t = (struct ferry_jtext){0};
}
