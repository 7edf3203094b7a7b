/*
 * jscan.c - a stored JSON object's values found as text (see jscan.h).
 * It accepts only the form jansson's compact dump writes, and refuses
 * everything else, so that what it accepts is exactly what a parse and a
 * dump would give; fuzz/fuzz_jtext.c holds it to that.
 */
#include "jscan.h"

#include <string.h>

#include "util.h"

/*
 * Printable ASCII (0x20-0x7f) but '"' (0x22) and '\\' (0x5c). Static,
 * read through ferry__json_plain_end(): the common code is linked into
 * both libferry and the programs, and a global would be defined twice.
 */
static const unsigned char json_plain[256] = {
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    1, 1, 0, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 1, 1, 1,
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
};

const unsigned char *ferry__json_plain_end(const unsigned char *p, const unsigned char *end)
{
	while (end - p >= 4 && json_plain[p[0]] && json_plain[p[1]] && json_plain[p[2]] &&
	       json_plain[p[3]])
		p += 4;
	while (p < end && json_plain[*p])
		p++;
	return p;
}

/* memcmp() == 0 for the few bytes of a key, without a call */
static inline int same(const char *a, const char *b, size_t n)
{
	while (n && *a == *b)
		a++, b++, n--;
	return !n;
}

/* The escapes jansson writes for a character below U+0020 as \uXXXX. */
static int long_escape(const char *p, const char *end)
{
	static const char hexu[] = "0123456789ABCDEF";
	int c;

	if (end - p < 5 || memcmp(p, "u00", 3) || (p[3] != '0' && p[3] != '1') ||
	    !strchr(hexu, p[4]) || !p[4])
		return 0;
	c = (p[3] - '0') << 4 | (int)(strchr(hexu, p[4]) - hexu);
	/* \u0000 escapes a byte (jbytes.h); the others have a short form */
	return c != 0 && c != '\b' && c != '\f' && c != '\n' && c != '\r' && c != '\t';
}

/* The end of the string that starts at p (a quote), or NULL when it is not in dump form. */
static const char *string_end(const char *p, const char *end)
{
	const unsigned char *u = (const unsigned char *)p + 1, *e = (const unsigned char *)end;

	while ((u = ferry__json_plain_end(u, e)) < e) {
		size_t k;
		if (*u == '"')
			return (const char *)u + 1;
		if (*u == '\\') {
			if (u + 1 < e && strchr("\"\\bfnrt", u[1]) && u[1]) {
				u += 2;
				continue;
			}
			if (!long_escape((const char *)u + 1, end))
				return NULL;
			u += 6;
			continue;
		}
		if (*u < 0x20 || !(k = ferry__utf8_char(u, e)))
			return NULL;
		u += k;
	}
	return NULL;
}

/* The end of the integer at p, written as jansson writes one, or NULL. */
static const char *int_end(const char *p, const char *end)
{
	const char *d = p + (p < end && *p == '-'), *e = d;
	const char *max = *p == '-' ? "9223372036854775808" : "9223372036854775807";

	while (e < end && *e >= '0' && *e <= '9')
		e++;
	if (e == d || (*d == '0' && (e - d > 1 || d > p)))
		return NULL; /* no digit, a leading zero, or -0 (which jansson writes 0) */
	if (e < end && (*e == '.' || *e == 'e' || *e == 'E'))
		return NULL; /* a real: jansson may write it otherwise */
	if (e - d > 19 || (e - d == 19 && memcmp(d, max, 19) > 0))
		return NULL; /* past int64_t: jansson refuses it */
	return e;
}

const char *ferry__jscan_scalar_end(const char *p, const char *end)
{
	static const char *const words[] = {"true", "false", "null"};
	size_t w;

	if (p >= end)
		return NULL;
	if (*p == '"')
		return string_end(p, end);
	w = *p == 't' ? 0 : *p == 'f' ? 1 : *p == 'n' ? 2 : 3;
	if (w < 3) {
		size_t l = w == 1 ? 5 : 4;
		return (size_t)(end - p) >= l && same(p, words[w], l) ? p + l : NULL;
	}
	return int_end(p, end);
}

/* The end of the value at p (a scalar or an array of them), or NULL; *strings as in jspan. */
static const char *value_end(const char *p, const char *end, int *strings)
{
	*strings = 0;
	if (p >= end || *p != '[')
		return ferry__jscan_scalar_end(p, end);
	*strings = 1;
	if (++p < end && *p == ']')
		return p + 1;
	for (;;) {
		*strings &= p < end && *p == '"';
		if (!(p = ferry__jscan_scalar_end(p, end)) || p >= end)
			return NULL;
		if (*p == ']')
			return p + 1;
		if (*p++ != ',')
			return NULL;
	}
}

/*
 * Notes the value of key k among keys (NULL ones stand for none). The
 * search starts after the key found last: a stored spec names its keys
 * in the order keys has them, mostly, which makes a row's look-ups linear.
 */
static void note(const char *k, size_t kn, struct ferry_jspan v, const char *const *keys,
		 const size_t *keylens, size_t nkeys, size_t *from, struct ferry_jspan *spans)
{
	for (size_t c = 0, i = *from; c < nkeys; c++, i = i + 1 == nkeys ? 0 : i + 1) {
		if (keys[i] && keylens[i] == kn && same(keys[i], k, kn)) {
			spans[i] = v;
			*from = i + 1 == nkeys ? 0 : i + 1;
			return;
		}
	}
}

int ferry__jscan_object(const char *text, size_t n, const char *const *keys, const size_t *keylens,
			size_t nkeys, struct ferry_jspan *spans)
{
	const char *p = text, *end = text + n, *k, *v;
	size_t from = 0;
	int strings;

	memset(spans, 0, nkeys * sizeof(*spans));
	if (n < 2 || *p++ != '{')
		return -1;
	if (*p == '}')
		return p + 1 == end ? 0 : -1;
	for (;;) {
		if (*p != '"' || !(v = string_end(p, end)) || v >= end || *v++ != ':')
			return -1;
		k = p + 1;
		if (!(p = value_end(v, end, &strings)) || p >= end)
			return -1;
		/* a key with an escape is none of keys, which have none */
		note(k, (size_t)(v - 2 - k), (struct ferry_jspan){v, (size_t)(p - v), strings},
		     keys, keylens, nkeys, &from, spans);
		if (*p == '}')
			return p + 1 == end ? 0 : -1;
		if (*p++ != ',' || p >= end)
			return -1;
	}
}
