/*
 * jscan.h - the values of a stored JSON object found as text, without
 * building it (jscan.c). A listing copies each job's spec values from the
 * database into its answer: parsing every spec with jansson to dump its
 * values again was most of a listing's cost.
 */
#ifndef FERRY_JSCAN_H
#define FERRY_JSCAN_H

#include <stddef.h>

/* A value's text: p NULL when the key is absent. */
struct ferry_jspan {
	const char *p;
	size_t n;
	int strings; /* an array whose elements are all strings (or none) */
};

/*
 * The first byte from p on (by end) that a JSON string cannot hold as it
 * stands (printable ASCII but the quote and the backslash); end when none
 * is: the scans and the escaper skip runs of plain bytes at once.
 */
const unsigned char *ferry__json_plain_end(const unsigned char *p, const unsigned char *end);

/*
 * Finds in the n bytes at text, a JSON object, the value of each of the
 * nkeys keys (a NULL one is none; keylens[i] its strlen; a key holds
 * printable ASCII but the quote and the backslash) into spans[i] (the last
 * one when a key comes twice, as jansson takes it). A key is looked for
 * first right after the one found last: given in the order the text has
 * them, each costs one comparison, unknown ones included. Succeeds
 * (0) only when every value found is exactly what
 * ferry__json_dumps(value, JSON_COMPACT) would write for it — the form
 * the engine stores (a string escaped as jansson does, an integer, true,
 * false, null, or an array of those, with no white space), and no string
 * escapes a byte (\u0000, jbytes.h): then the spans can be copied as
 * they stand. Returns -1 otherwise (invalid JSON, another form or
 * another kind of value), and the caller parses the text with jansson.
 */
int ferry__jscan_object(const char *text, size_t n, const char *const *keys, const size_t *keylens,
			size_t nkeys, struct ferry_jspan *spans);

/*
 * The end of the scalar at p (a string, an integer, true, false or null,
 * in the form above) that ends by end, or NULL when there is none: to walk
 * an array's elements in a span that ferry__jscan_object() gave.
 */
const char *ferry__jscan_scalar_end(const char *p, const char *end);

#endif
