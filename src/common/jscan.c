/*
 * jscan.c - a stored JSON object's values found as text (see jscan.h).
 * It accepts only the form jansson's compact dump writes, and refuses
 * everything else, so that what it accepts is exactly what a parse and a
 * dump would give; fuzz/fuzz_jtext.c holds it to that.
 */
#include "jscan.h"

#include <stdint.h>
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

/*
 * Eight bytes at a time where the byte order allows: the bytes of w that
 * are not plain have their high bit set in the result (below 0x20, the
 * quote, the backslash, 0x80 and above). A borrow can flag a plain byte
 * too, but only one above a byte that is not plain, so the lowest flag is
 * exact, and it is the one wanted. The table's loop took a fifth of a
 * listing's instructions in the engine (callgrind).
 */
#define BYTES(b) (0x0101010101010101u * (b))
static inline uint64_t not_plain(uint64_t w)
{
	uint64_t q = w ^ BYTES(0x22), b = w ^ BYTES(0x5c);

	return (((w - BYTES(0x20)) & ~w) | ((q - BYTES(1)) & ~q) | ((b - BYTES(1)) & ~b) | w) &
	       BYTES(0x80);
}

const unsigned char *ferry__json_plain_end(const unsigned char *p, const unsigned char *end)
{
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
	for (; end - p >= 8; p += 8) {
		uint64_t w, bad;
		memcpy(&w, p, 8);
		if ((bad = not_plain(w)))
			return p + (__builtin_ctzll(bad) >> 3);
	}
#endif
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
 * The start of the value of the member at p (a quote) when its key is key,
 * written as it stands ("key":), else NULL: a key holds plain bytes only
 * (jscan.h), so that is the string's whole text in the dump form.
 */
static inline const char *key_at(const char *p, const char *end, const char *key, size_t n)
{
	if (!key || (size_t)(end - p) <= n + 2 || p[n + 1] != '"' || p[n + 2] != ':' ||
	    memcmp(p + 1, key, n))
		return NULL;
	return p + n + 3;
}

/*
 * The index among keys of the member's key at p, looked for from the one
 * after the key found last (a stored spec names its keys in the order
 * keys has them, mostly, which makes a row's look-ups linear), with its
 * value's start in *v; nkeys when it is none of them.
 */
static size_t find_key(const char *p, const char *end, const char *const *keys,
		       const size_t *keylens, size_t nkeys, size_t from, const char **v)
{
	for (size_t c = 0, i = from; c < nkeys; c++, i = i + 1 == nkeys ? 0 : i + 1) {
		if ((*v = key_at(p, end, keys[i], keylens[i])))
			return i;
	}
	return nkeys;
}

int ferry__jscan_object(const char *text, size_t n, const char *const *keys, const size_t *keylens,
			size_t nkeys, struct ferry_jspan *spans)
{
	const char *p = text, *end = text + n, *v;
	size_t from = 0;
	int strings;

	memset(spans, 0, nkeys * sizeof(*spans));
	if (n < 2 || *p++ != '{')
		return -1;
	if (*p == '}')
		return p + 1 == end ? 0 : -1;
	for (;;) {
		size_t at;
		if (*p != '"')
			return -1;
		/* a key with an escape is none of keys, which have none: skipped as any other */
		if ((at = find_key(p, end, keys, keylens, nkeys, from, &v)) == nkeys &&
		    (!(v = string_end(p, end)) || v >= end || *v++ != ':'))
			return -1;
		if (!(p = value_end(v, end, &strings)) || p >= end)
			return -1;
		if (at < nkeys) {
			spans[at] = (struct ferry_jspan){v, (size_t)(p - v), strings};
			from = at + 1 == nkeys ? 0 : at + 1;
		}
		if (*p == '}')
			return p + 1 == end ? 0 : -1;
		if (*p++ != ',' || p >= end)
			return -1;
	}
}
