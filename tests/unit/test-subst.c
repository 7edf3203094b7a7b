/*
 * test-subst.c - src/cli/subst.c: the forms of a local path of
 * `ferry submit --in/--out` and their replacement in a job's words.
 *
 * The absolute forms depend on the working directory: most cases run in
 * '/', a few in a temporary directory two levels down.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "subst.h"
#include "unit.h"
#include "util.h"

static const struct prepare_case {
	const char *local, *given, *abs; /* abs: as seen from '/' */
} prepare_cases[] = {
    {"a", "a", "/a"},
    {"a/", "a", "/a"},
    {"a///", "a", "/a"},
    {"./a", "./a", "/a"},
    {"a/./b", "a/./b", "/a/b"},
    {"a//b", "a//b", "/a/b"},
    {"a/../b", "a/../b", "/b"},
    {"a/..", "a/..", "/"},
    {".", ".", "/"},
    {"./", ".", "/"},
    {"..", "..", "/"},
    {"../../x", "../../x", "/x"},
    {"...", "...", "/..."},
    {"..a/.b", "..a/.b", "/..a/.b"},
    {".hidden", ".hidden", "/.hidden"},
    {"/", "/", "/"},
    {"//", "/", "/"},
    {"///x//", "///x", "/x"},
    {"/abs/path/", "/abs/path", "/abs/path"},
    {"/a/b/..", "/a/b/..", "/a"},
    {"/a/b/../../../..", "/a/b/../../../..", "/"},
    {"a b", "a b", "/a b"},
    {"caf\xc3\xa9/\xe6\x97\xa5.nii", "caf\xc3\xa9/\xe6\x97\xa5.nii",
     "/caf\xc3\xa9/\xe6\x97\xa5.nii"},
    {"data:1,2", "data:1,2", "/data:1,2"},
};

static void check_prepare(const struct prepare_case *c)
{
	struct ferry_subst s;

	unit_case("prepare in /: '%s'", c->local);
	if (!CHECK_INT(ferry__subst_prepare(&s, c->local), ==, 0))
		return;
	CHECK(s.local == c->local);
	CHECK_STR(s.given, c->given);
	CHECK_STR(s.abs, c->abs);
	CHECK(s.server == NULL);
	CHECK_INT(s.used, ==, 0);
	ferry__subst_release(&s);
	CHECK(s.given == NULL && s.abs == NULL);
	ferry__subst_release(&s); /* twice is harmless */
}

/* In DIR/d1/d2: relative paths join the working directory, '..' climbs it. */
static void check_prepare_cwd(const char *top)
{
	static const struct {
		const char *local, *rel; /* rel: abs after top */
	} cases[] = {
	    {"a", "/d1/d2/a"},	     {"./a/", "/d1/d2/a"},    {"..", "/d1"},
	    {"../x", "/d1/x"},	     {"../../x/./y", "/x/y"}, {"../..", ""},
	    {"d3/../../z", "/d1/z"},
	};
	struct ferry_subst s;

	for (size_t i = 0; i < FERRY_ARRAY_SIZE(cases); i++) {
		unit_case("prepare in %s/d1/d2: '%s'", top, cases[i].local);
		if (!CHECK_INT(ferry__subst_prepare(&s, cases[i].local), ==, 0))
			continue;
		char *want = ferry__asprintf("%s%s", top, cases[i].rel);
		CHECK_STR(s.abs, want);
		free(want);
		ferry__subst_release(&s);
	}
	unit_case("prepare in %s/d1/d2: climbing past the root", top);
	if (CHECK_INT(ferry__subst_prepare(&s, "../../../../../../../../../../../../../../.."), ==,
		      0)) {
		CHECK_STR(s.abs, "/");
		ferry__subst_release(&s);
	}
}

#define MAXP 3

static const struct word_case {
	const char *name;
	const char *local[MAXP], *server[MAXP]; /* server NULL: replace by itself */
	const char *word, *want;
	int used[MAXP];
} word_cases[] = {
    {"whole word", {"a.nii"}, {"S"}, "a.nii", "S", {1}},
    {"empty word", {"a.nii"}, {"S"}, "", "", {0}},
    {"no occurrence", {"a.nii"}, {"S"}, "b.nii", "b.nii", {0}},
    {"inside a longer name", {"a.nii"}, {"S"}, "data.nii", "data.nii", {0}},
    {"prefix of a longer name", {"a.nii"}, {"S"}, "a.nii.gz", "a.nii.gz", {0}},
    {"followed by a letter", {"a.nii"}, {"S"}, "a.niix", "a.niix", {0}},
    {"followed by '-'", {"a.nii"}, {"S"}, "a.nii-", "a.nii-", {0}},
    {"followed by '+'", {"a.nii"}, {"S"}, "a.nii+", "a.nii+", {0}},
    {"followed by '~'", {"a.nii"}, {"S"}, "a.nii~", "a.nii~", {0}},
    {"followed by '_'", {"a.nii"}, {"S"}, "a.nii_", "a.nii_", {0}},
    {"after '~'", {"a.nii"}, {"S"}, "~a.nii", "~a.nii", {0}},
    {"after a directory", {"a.nii"}, {"S"}, "dir/a.nii", "dir/a.nii", {0}},
    {"followed by '/'", {"a.nii"}, {"S"}, "a.nii/sub", "S/sub", {1}},
    {"followed by '//'", {"a.nii"}, {"S"}, "a.nii//x", "S//x", {1}},
    {"option value", {"a.nii"}, {"S"}, "--in=a.nii", "--in=S", {1}},
    {"list", {"a.nii"}, {"S"}, "a.nii,a.nii:a.nii", "S,S:S", {1}},
    {"shell command", {"a.nii"}, {"S"}, "cat a.nii > b.nii", "cat S > b.nii", {1}},
    {"single quoted", {"a.nii"}, {"S"}, "'a.nii'", "'S'", {1}},
    {"double quoted", {"a.nii"}, {"S"}, "\"a.nii\";", "\"S\";", {1}},
    {"parenthesised", {"a.nii"}, {"S"}, "f(a.nii)", "f(S)", {1}},
    {"after a tab", {"a.nii"}, {"S"}, "x\ta.nii", "x\tS", {1}},
    {"absolute form", {"a.nii"}, {"S"}, "/a.nii", "S", {1}},
    {"absolute form in an option", {"a.nii"}, {"S"}, "-i=/a.nii,a.nii", "-i=S,S", {1}},
    {"given form with ./", {"./a.nii"}, {"S"}, "./a.nii a.nii", "S a.nii", {1}},
    {"given form with ..", {"../a"}, {"S"}, "../a /a", "S S", {1}},
    {"trailing slash dropped", {"out/"}, {"S"}, "out out/f", "S S/f", {1}},
    {"longest wins", {"a", "a/b"}, {"S1", "S2"}, "a/b", "S2", {0, 1}},
    {"longest wins, either order", {"a/b", "a"}, {"S2", "S1"}, "a/b a/c", "S2 S1/c", {1, 1}},
    {"shorter where the longer stops", {"a", "a/b"}, {"S1", "S2"}, "a/bc", "S1/bc", {1, 0}},
    {"replaced text not searched", {"a", "b"}, {"b", "X"}, "a b", "b X", {1, 1}},
    {"replacement not searched", {"a", "S"}, {"S", "T"}, "a", "S", {1, 0}},
    {"only what occurs is used", {"a", "b"}, {"A", "B"}, "a", "A", {1, 0}},
    {"no server path: kept", {"a.nii"}, {NULL}, "x=a.nii", "x=a.nii", {1}},
    {"empty server path", {"a"}, {""}, "x=a,y", "x=,y", {1}},
    {"root", {"/"}, {"R"}, "/ x:/", "R x:R", {1}},
    {"root is not a prefix", {"/"}, {"R"}, "/usr", "/usr", {0}},
    {"root repeated", {"/"}, {"R"}, "//", "R/", {1}},
    {"utf-8 path", {"caf\xc3\xa9.nii"}, {"S"}, "caf\xc3\xa9.nii", "S", {1}},
    {"utf-8 byte before",
     {"a.nii"},
     {"S"},
     "\xc3\xa9"
     "a.nii",
     "\xc3\xa9"
     "a.nii",
     {0}},
    {"utf-8 byte after", {"a.nii"}, {"S"}, "a.nii\xc3\xa9", "a.nii\xc3\xa9", {0}},
    {"utf-8 word around", {"a.nii"}, {"S"}, "\xc3\xa9 a.nii \xc3\xa9", "\xc3\xa9 S \xc3\xa9", {1}},
    {"path with a blank", {"a b"}, {"S"}, "cat a b", "cat S", {1}},
    {"path with a colon", {"d:1"}, {"S"}, "d:1:d", "S:d", {1}},
    {"server path with specials", {"a"}, {"/t/x y/$z"}, "<a>", "</t/x y/$z>", {1}},
    {"three paths", {"in", "out", "log"}, {"I", "O", "L"}, "in>out 2>log", "I>O 2>L", {1, 1, 1}},
    {"dot", {"."}, {"D"}, ". ./x", "D D/x", {1}},
};

static void check_word(const struct word_case *c)
{
	struct ferry_subst v[MAXP];
	size_t n = 0;
	char *out;

	unit_case("word: %s", c->name);
	for (; n < MAXP && c->local[n]; n++) {
		if (!CHECK_INT(ferry__subst_prepare(&v[n], c->local[n]), ==, 0))
			goto out;
		v[n].server = c->server[n];
	}
	out = ferry__subst_word(v, n, c->word);
	CHECK_STR(out, c->want);
	free(out);
	for (size_t k = 0; k < n; k++)
		CHECK_INT(v[k].used, ==, c->used[k]);
out:
	while (n > 0)
		ferry__subst_release(&v[--n]);
}

/* Occurrences in a long word, and a word with no path at all. */
static void check_word_sizes(void)
{
	enum { LEN = 100000 };
	struct ferry_subst s;
	char *word = malloc(LEN + 8), *out;

	unit_case("word: %d bytes", LEN);
	if (!CHECK(word != NULL) || !CHECK_INT(ferry__subst_prepare(&s, "a"), ==, 0)) {
		free(word);
		return;
	}
	s.server = "LONGER";
	for (size_t i = 0; i < LEN; i += 2)
		memcpy(word + i, "a,", 2);
	word[LEN] = '\0';
	out = ferry__subst_word(&s, 1, word);
	if (CHECK(out != NULL)) {
		CHECK_UINT(strlen(out), ==, LEN / 2 * 7);
		CHECK_MEM(out, 14, "LONGER,LONGER,", 14);
	}
	free(out);

	unit_case("word: no paths at all");
	out = ferry__subst_word(NULL, 0, "a b c");
	CHECK_STR(out, "a b c");
	free(out);
	ferry__subst_release(&s);
	free(word);
}

/* A fresh DIR/d1/d2 to work in; DIR (physical, as getcwd(3) says it) into top. */
static int enter_tree(char *top, size_t size)
{
	char tmpl[] = "/tmp/ferry-unit-subst.XXXXXX";

	if (!mkdtemp(tmpl) || chdir(tmpl) < 0 || !getcwd(top, size))
		return -1;
	if (mkdir("d1", 0700) < 0 || mkdir("d1/d2", 0700) < 0 || chdir("d1/d2") < 0)
		return -1;
	return 0;
}

int main(void)
{
	char top[4096];

	if (!CHECK_INT(chdir("/"), ==, 0))
		return unit_done("test-subst");
	for (size_t i = 0; i < FERRY_ARRAY_SIZE(prepare_cases); i++)
		check_prepare(&prepare_cases[i]);
	for (size_t i = 0; i < FERRY_ARRAY_SIZE(word_cases); i++)
		check_word(&word_cases[i]);
	check_word_sizes();
	unit_case("temporary directory");
	if (CHECK_INT(enter_tree(top, sizeof(top)), ==, 0)) {
		check_prepare_cwd(top);
		CHECK_INT(chdir(top), ==, 0);
		CHECK_INT(rmdir("d1/d2"), ==, 0);
		CHECK_INT(rmdir("d1"), ==, 0);
		CHECK_INT(rmdir(top), ==, 0);
	}
	return unit_done("test-subst");
}
