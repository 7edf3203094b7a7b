/*
 * unit.h - checks for the unit tests of tests/unit/ (one program per pure
 * module, run by `meson test --suite unit`).
 *
 * A failed check prints FILE:LINE, the case being checked (unit_case(),
 * usually a table row's name), the expression and both values, and the
 * program goes on; unit_done() prints the count and is main's exit status:
 * non-zero when a check failed or none ran.
 */
#ifndef FERRY_UNIT_H
#define FERRY_UNIT_H

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

static int unit_cases, unit_checks, unit_failures;
static char unit_case_name[256];

/* Names (printf format) and counts the case the next checks belong to. */
__attribute__((format(printf, 1, 2))) static inline void unit_case(const char *fmt, ...)
{
	va_list ap;

	unit_cases++;
	va_start(ap, fmt);
	vsnprintf(unit_case_name, sizeof(unit_case_name), fmt, ap);
	va_end(ap);
}

/* Counts one check; on failure prints where and what, and returns 0. */
static inline int unit_count(int ok, const char *file, int line, const char *expr)
{
	unit_checks++;
	if (ok)
		return 1;
	unit_failures++;
	fprintf(stderr, "%s:%d: [%s] check failed: %s\n", file, line, unit_case_name, expr);
	return 0;
}

/* Prints len bytes of s quoted, with C escapes for what is not printable ASCII. */
static inline void unit_print_bytes(const char *label, const void *s, size_t len)
{
	const unsigned char *p = s;
	size_t shown = len > 200 ? 200 : len;

	fprintf(stderr, "    %s: ", label);
	if (!s) {
		fputs("NULL\n", stderr);
		return;
	}
	fputc('"', stderr);
	for (size_t i = 0; i < shown; i++) {
		if (p[i] == '"' || p[i] == '\\')
			fprintf(stderr, "\\%c", p[i]);
		else if (p[i] >= 0x20 && p[i] < 0x7f)
			fputc(p[i], stderr);
		else
			fprintf(stderr, "\\x%02x", p[i]);
	}
	fprintf(stderr, "\"%s (%zu bytes)\n", shown < len ? "..." : "", len);
}

static inline int unit_int(intmax_t a, intmax_t b, int ok, const char *file, int line,
			   const char *expr)
{
	if (unit_count(ok, file, line, expr))
		return 1;
	fprintf(stderr, "    left: %jd\n    right: %jd\n", a, b);
	return 0;
}

static inline int unit_uint(uintmax_t a, uintmax_t b, int ok, const char *file, int line,
			    const char *expr)
{
	if (unit_count(ok, file, line, expr))
		return 1;
	fprintf(stderr, "    left: %ju (0x%jx)\n    right: %ju (0x%jx)\n", a, a, b, b);
	return 0;
}

static inline int unit_double(double a, double b, const char *file, int line, const char *expr)
{
	if (unit_count(a == b, file, line, expr))
		return 1;
	fprintf(stderr, "    left: %.17g\n    right: %.17g\n", a, b);
	return 0;
}

/* Equal strings, or both NULL. */
static inline int unit_str(const char *a, const char *b, const char *file, int line,
			   const char *expr)
{
	int ok = (!a && !b) || (a && b && !strcmp(a, b));

	if (unit_count(ok, file, line, expr))
		return 1;
	unit_print_bytes("got", a, a ? strlen(a) : 0);
	unit_print_bytes("want", b, b ? strlen(b) : 0);
	return 0;
}

static inline int unit_mem(const void *a, size_t alen, const void *b, size_t blen, const char *file,
			   int line, const char *expr)
{
	int ok = alen == blen && (!alen || (a && b && !memcmp(a, b, alen)));

	if (unit_count(ok, file, line, expr))
		return 1;
	unit_print_bytes("got", a, alen);
	unit_print_bytes("want", b, blen);
	return 0;
}

/* haystack (not NULL) holds needle. */
static inline int unit_contains(const char *haystack, const char *needle, const char *file,
				int line, const char *expr)
{
	if (unit_count(haystack && strstr(haystack, needle), file, line, expr))
		return 1;
	unit_print_bytes("text", haystack, haystack ? strlen(haystack) : 0);
	unit_print_bytes("missing", needle, strlen(needle));
	return 0;
}

/* Each check evaluates its arguments once and returns whether it held. */
#define CHECK(cond) unit_count(!!(cond), __FILE__, __LINE__, #cond)
#define CHECK_INT(a, op, b)                                                                        \
	__extension__({                                                                            \
		intmax_t unit_a_ = (a), unit_b_ = (b);                                             \
		unit_int(unit_a_, unit_b_, unit_a_ op unit_b_, __FILE__, __LINE__,                 \
			 #a " " #op " " #b);                                                       \
	})
#define CHECK_UINT(a, op, b)                                                                       \
	__extension__({                                                                            \
		uintmax_t unit_a_ = (a), unit_b_ = (b);                                            \
		unit_uint(unit_a_, unit_b_, unit_a_ op unit_b_, __FILE__, __LINE__,                \
			  #a " " #op " " #b);                                                      \
	})
#define CHECK_DOUBLE(a, b) unit_double((a), (b), __FILE__, __LINE__, #a " == " #b)
#define CHECK_STR(a, b)	   unit_str((a), (b), __FILE__, __LINE__, #a " == " #b)
#define CHECK_MEM(a, alen, b, blen)                                                                \
	unit_mem((a), (alen), (b), (blen), __FILE__, __LINE__, #a " == " #b)
#define CHECK_CONTAINS(s, needle)                                                                  \
	unit_contains((s), (needle), __FILE__, __LINE__, #s " holds " #needle)

/* main's exit status: 0 when every check held and there was one. */
static inline int unit_done(const char *name)
{
	printf("%s: %d cases, %d checks, %d failed\n", name, unit_cases, unit_checks,
	       unit_failures);
	if (!unit_checks)
		fprintf(stderr, "%s: no check ran\n", name);
	return unit_failures || !unit_checks ? 1 : 0;
}

/* A frame header from its fields, as the wire has it (big-endian): bad ones too. */
static inline void unit_raw_hdr(unsigned char *h, const char *magic, uint16_t version,
				uint16_t type, uint32_t body, uint32_t json)
{
	memcpy(h, magic, 4);
	h[4] = (unsigned char)(version >> 8);
	h[5] = (unsigned char)version;
	h[6] = (unsigned char)(type >> 8);
	h[7] = (unsigned char)type;
	for (int i = 0; i < 4; i++) {
		h[8 + i] = (unsigned char)(body >> (24 - 8 * i));
		h[12 + i] = (unsigned char)(json >> (24 - 8 * i));
	}
}

#endif
