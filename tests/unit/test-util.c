/*
 * test-util.c - the pure helpers of src/common/util.c: word splitting
 * (ssh_options, a native specification), UTF-8 and resource name checks,
 * string vectors.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "unit.h"
#include "util.h"

#define MAXW 8

static const struct split_case {
	const char *name, *line;
	int rc;		     /* 0, -EINVAL */
	const char *err;     /* the message of -EINVAL */
	const char *w[MAXW]; /* the words, NULL-terminated */
} split_cases[] = {
    {"empty", "", 0, NULL, {NULL}},
    {"blanks only", "   ", 0, NULL, {NULL}},
    {"every blank", " \t\n\r ", 0, NULL, {NULL}},
    {"one word", "a", 0, NULL, {"a"}},
    {"two words", "a b", 0, NULL, {"a", "b"}},
    {"blanks around", "  a   b  ", 0, NULL, {"a", "b"}},
    {"tab newline cr separate", "a\tb\nc\rd", 0, NULL, {"a", "b", "c", "d"}},
    {"vertical tab is no blank", "a\vb", 0, NULL, {"a\vb"}},
    {"single quotes", "'a b'", 0, NULL, {"a b"}},
    {"double quotes", "\"a b\"", 0, NULL, {"a b"}},
    {"empty single quotes", "''", 0, NULL, {""}},
    {"empty double quotes", "\"\"", 0, NULL, {""}},
    {"two empty words", "'' \"\"", 0, NULL, {"", ""}},
    {"empty quotes join", "a''b", 0, NULL, {"ab"}},
    {"quotes inside a word", "a'b c'd", 0, NULL, {"ab cd"}},
    {"mixed quotes join", "'a'\"b\"c", 0, NULL, {"abc"}},
    {"escaped blank", "\\ ", 0, NULL, {" "}},
    {"escaped blank inside", "a\\ b c", 0, NULL, {"a b", "c"}},
    {"escaped single quote", "\\'", 0, NULL, {"'"}},
    {"escaped double quote", "\\\"", 0, NULL, {"\""}},
    {"escaped backslash", "\\\\", 0, NULL, {"\\"}},
    {"escaped letter", "\\n", 0, NULL, {"n"}},
    {"backslash in single quotes", "'\\'", 0, NULL, {"\\"}},
    {"no escapes in single quotes", "'a\\nb'", 0, NULL, {"a\\nb"}},
    {"dquote escapes dquote", "\"\\\"\"", 0, NULL, {"\""}},
    {"dquote escapes backslash", "\"\\\\\"", 0, NULL, {"\\"}},
    {"dquote escapes dollar", "\"\\$x\"", 0, NULL, {"$x"}},
    {"dquote escapes backquote", "\"\\`\"", 0, NULL, {"`"}},
    {"dquote keeps other backslashes", "\"\\a\\n\"", 0, NULL, {"\\a\\n"}},
    {"single quote in double", "\"'\"", 0, NULL, {"'"}},
    {"double quote in single", "'\"'", 0, NULL, {"\""}},
    {"no expansion", "$HOME ~ * `x` $(y)", 0, NULL, {"$HOME", "~", "*", "`x`", "$(y)"}},
    {"no operators", "a;b|c&d>e", 0, NULL, {"a;b|c&d>e"}},
    {"ssh options",
     "-o StrictHostKeyChecking=no -o 'ProxyCommand ssh -W %h:%p gw'",
     0,
     NULL,
     {"-o", "StrictHostKeyChecking=no", "-o", "ProxyCommand ssh -W %h:%p gw"}},
    {"native specification",
     "--partition=gpu --gres=gpu:2 --comment=\"two words\"",
     0,
     NULL,
     {"--partition=gpu", "--gres=gpu:2", "--comment=two words"}},
    {"utf-8 words", "h\xc3\xa9llo w\xc3\xb6rld", 0, NULL, {"h\xc3\xa9llo", "w\xc3\xb6rld"}},
    {"utf-8 quoted",
     "'\xe6\x97\xa5\xe6\x9c\xac \xe8\xaa\x9e'",
     0,
     NULL,
     {"\xe6\x97\xa5\xe6\x9c\xac \xe8\xaa\x9e"}},
    {"invalid utf-8 passes", "\xff\xfe x", 0, NULL, {"\xff\xfe", "x"}},
    {"control bytes are word bytes", "\x01\x02 \x7f", 0, NULL, {"\x01\x02", "\x7f"}},
    {"unterminated single quote", "'abc", -EINVAL, "unterminated single quote", {NULL}},
    {"lone single quote", "'", -EINVAL, "unterminated single quote", {NULL}},
    {"unterminated after words", "a b 'c", -EINVAL, "unterminated single quote", {NULL}},
    {"unterminated double quote", "\"abc", -EINVAL, "unterminated double quote", {NULL}},
    {"lone double quote", "\"", -EINVAL, "unterminated double quote", {NULL}},
    {"escaped closing dquote", "\"abc\\\"", -EINVAL, "unterminated double quote", {NULL}},
    {"backslash at end in dquote", "\"a\\", -EINVAL, "unterminated double quote", {NULL}},
    {"trailing backslash", "abc\\", -EINVAL, "trailing backslash", {NULL}},
    {"lone backslash", "\\", -EINVAL, "trailing backslash", {NULL}},
    {"single quote does not close double", "\"a'", -EINVAL, "unterminated double quote", {NULL}},
};

static void check_split(const struct split_case *c)
{
	char **argv = (char **)(uintptr_t)1; /* must stay as it is on failure */
	const char *err = "unset";
	size_t n = 0;
	int rc;

	unit_case("split: %s", c->name);
	rc = ferry__split_words(c->line, &argv, &err);
	CHECK_INT(rc, ==, c->rc);
	CHECK_STR(err, c->err);
	if (rc < 0) {
		CHECK(argv == (char **)(uintptr_t)1);
		return;
	}
	if (!CHECK(argv != NULL))
		return;
	while (n < MAXW && c->w[n])
		n++;
	CHECK_UINT(ferry__strv_len(argv), ==, n);
	for (size_t i = 0; i < n && i < ferry__strv_len(argv); i++)
		CHECK_STR(argv[i], c->w[i]);
	CHECK(argv[ferry__strv_len(argv)] == NULL);
	ferry__strv_free(argv);
}

/* Many words, and a word as long as the line: no fixed limit anywhere. */
static void check_split_sizes(void)
{
	enum { WORDS = 1000, LONG = 100000 };
	char *line = malloc(LONG + 3), **argv = NULL;
	const char *err;
	size_t n;

	unit_case("split: %d words", WORDS);
	if (!CHECK(line != NULL))
		return;
	for (n = 0; n < WORDS; n++)
		memcpy(line + 2 * n, n % 2 ? "b " : "a\t", 2);
	line[2 * n] = '\0';
	if (CHECK_INT(ferry__split_words(line, &argv, &err), ==, 0)) {
		CHECK_UINT(ferry__strv_len(argv), ==, WORDS);
		CHECK_STR(argv[0], "a");
		CHECK_STR(argv[WORDS - 1], "b");
		ferry__strv_free(argv);
	}

	unit_case("split: a word of %d bytes in quotes", LONG);
	line[0] = '\'';
	memset(line + 1, 'x', LONG);
	memcpy(line + 1 + LONG, "'", 2);
	if (CHECK_INT(ferry__split_words(line, &argv, &err), ==, 0)) {
		CHECK_UINT(ferry__strv_len(argv), ==, 1);
		CHECK_UINT(strlen(argv[0]), ==, LONG);
		CHECK_UINT(strspn(argv[0], "x"), ==, LONG);
		ferry__strv_free(argv);
	}
	free(line);
}

static const struct utf8_case {
	const char *name, *s;
	size_t len;
	int valid;
} utf8_cases[] = {
    {"empty", "", 0, 1},
    {"ascii", "hello, world", 12, 1},
    {"NUL", "a\0b", 3, 0},
    {"NUL alone", "\0", 1, 0},
    {"2 bytes (U+00E9)", "\xc3\xa9", 2, 1},
    {"3 bytes (U+20AC)", "\xe2\x82\xac", 3, 1},
    {"4 bytes (U+1F600)", "\xf0\x9f\x98\x80", 4, 1},
    {"lowest 2 bytes (U+0080)", "\xc2\x80", 2, 1},
    {"highest 2 bytes (U+07FF)", "\xdf\xbf", 2, 1},
    {"lowest 3 bytes (U+0800)", "\xe0\xa0\x80", 3, 1},
    {"U+D7FF before surrogates", "\xed\x9f\xbf", 3, 1},
    {"U+E000 after surrogates", "\xee\x80\x80", 3, 1},
    {"U+FFFF", "\xef\xbf\xbf", 3, 1},
    {"lowest 4 bytes (U+10000)", "\xf0\x90\x80\x80", 4, 1},
    {"highest (U+10FFFF)", "\xf4\x8f\xbf\xbf", 4, 1},
    {"above U+10FFFF", "\xf4\x90\x80\x80", 4, 0},
    {"lead F5", "\xf5\x80\x80\x80", 4, 0},
    {"lead F8 (5 bytes)", "\xf8\x88\x80\x80\x80", 5, 0},
    {"lead FE", "\xfe", 1, 0},
    {"lead FF", "\xff", 1, 0},
    {"overlong NUL (C0 80)", "\xc0\x80", 2, 0},
    {"overlong C1 BF", "\xc1\xbf", 2, 0},
    {"overlong 3 bytes", "\xe0\x80\xaf", 3, 0},
    {"overlong 4 bytes", "\xf0\x80\x80\xaf", 4, 0},
    {"surrogate D800", "\xed\xa0\x80", 3, 0},
    {"surrogate DFFF", "\xed\xbf\xbf", 3, 0},
    {"lone continuation", "\x80", 1, 0},
    {"continuation after ascii", "a\xbf", 2, 0},
    {"truncated 2 bytes", "\xc3", 1, 0},
    {"truncated 3 bytes", "\xe2\x82", 2, 0},
    {"truncated 4 bytes", "\xf0\x9f\x98", 3, 0},
    {"cut by len", "\xc3\xa9", 1, 0},
    {"len ends before a bad byte", "ab\xff", 2, 1},
    {"bad continuation", "\xc3\x28", 2, 0},
    {"ascii in place of 3rd byte", "\xe2\x82\x41", 3, 0},
    {"mixed text", "na\xc3\xafve \xe2\x82\xac \xf0\x9f\x98\x80!", 16, 1},
};

static const struct name_case {
	const char *name;
	int valid;
} name_cases[] = {
    {"local", 1},
    {"a", 1},
    {"A-Z_a-z.0-9", 1},
    {"cluster.example.org", 1},
    {"x.", 1},
    {"-x", 1},
    {"_", 1},
    {"", 0},
    {".hidden", 0},
    {".", 0},
    {"..", 0},
    {"a b", 0},
    {"a/b", 0},
    {"a:b", 0},
    {"a\tb", 0},
    {"[a]", 0},
    {"caf\xc3\xa9", 0},
    {"a\n", 0},
    {"1234567890123456789012345678901234567890123456789012345678901234", 1},
    {"12345678901234567890123456789012345678901234567890123456789012345", 0},
};

static void check_strv(void)
{
	char *v[] = {"a", "b", NULL};
	char *s;

	unit_case("strv_len");
	CHECK_UINT(ferry__strv_len(NULL), ==, 0);
	CHECK_UINT(ferry__strv_len(v + 2), ==, 0);
	CHECK_UINT(ferry__strv_len(v), ==, 2);
	ferry__strv_free(NULL); /* must not crash */

	unit_case("asprintf");
	s = ferry__asprintf("%s=%d", "slots", 4);
	CHECK_STR(s, "slots=4");
	free(s);
	s = ferry__asprintf("%s", "");
	CHECK_STR(s, "");
	free(s);
}

int main(void)
{
	for (size_t i = 0; i < FERRY_ARRAY_SIZE(split_cases); i++)
		check_split(&split_cases[i]);
	check_split_sizes();
	for (size_t i = 0; i < FERRY_ARRAY_SIZE(utf8_cases); i++) {
		unit_case("utf8: %s", utf8_cases[i].name);
		CHECK_INT(ferry__valid_utf8(utf8_cases[i].s, utf8_cases[i].len), ==,
			  utf8_cases[i].valid);
	}
	for (size_t i = 0; i < FERRY_ARRAY_SIZE(name_cases); i++) {
		unit_case("resource name: '%s'", name_cases[i].name);
		CHECK_INT(ferry__valid_resource_name(name_cases[i].name), ==, name_cases[i].valid);
	}
	unit_case("resource name: NULL");
	CHECK_INT(ferry__valid_resource_name(NULL), ==, 0);
	check_strv();
	return unit_done("test-util");
}
