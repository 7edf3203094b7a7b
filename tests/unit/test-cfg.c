/*
 * test-cfg.c - ferry.conf (src/common/cfg.c, man/ferry.conf.5): sections,
 * keys and their ranges, the "FILE:LINE: reason" of every error, files,
 * the engine settings of `ferry bridge --set KEY=VALUE` and their checks,
 * which keys a scheduler takes, and resolving a resource.
 *
 * Files are written in a temporary directory, which also stands in for
 * $XDG_CONFIG_HOME and $HOME.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cfg.h"
#include "unit.h"
#include "util.h"

typedef struct ferry_resource_cfg res_t;

static void check_res(const res_t *got, const res_t *want)
{
	CHECK_STR(got->name, want->name);
	CHECK_STR(got->scheduler, want->scheduler);
	CHECK_INT(got->slots, ==, want->slots);
	CHECK_INT(got->max_running, ==, want->max_running);
	CHECK_INT(got->max_queued, ==, want->max_queued);
	CHECK_STR(got->host, want->host);
	CHECK_INT(got->port, ==, want->port);
	CHECK_STR(got->login, want->login);
	CHECK_STR(got->queue, want->queue);
	CHECK_STR(got->transfer_root, want->transfer_root);
	CHECK_STR(got->remote_command, want->remote_command);
	CHECK_STR(got->ssh_options, want->ssh_options);
	CHECK_STR(got->drmaa_library, want->drmaa_library);
	CHECK_DOUBLE(got->poll_interval, want->poll_interval);
	CHECK_STR(got->path_translation_files, want->path_translation_files);
	CHECK_STR(got->mpi_pe, want->mpi_pe);
}

#define NAME49	  "abcdefghijklmnopqrstuvwxyz-ABCDEFGHIJKLMNOPQRSTUV"
#define NAME64	  NAME49 "WXYZ_0123456789."
#define LONG_NAME "resource name longer than 49 characters (the most a section header holds)"

static const struct parse_case {
	const char *name, *text;
	const char *err; /* the whole message; NULL: parses */
	int nres;
	res_t want[2];
} parse_cases[] = {
    {"empty", "", NULL, 0, {{0}}},
    {"comments and blank lines", "; one\n# two\n\n   \n", NULL, 0, {{0}}},
    {"a section needs a key", "[a]\n", NULL, 0, {{0}}},
    {"keyless section skipped", "[a]\n[b]\nslots=1\n", NULL, 1, {{.name = "b", .slots = 1}}},
    {"scheduler", "[a]\nscheduler = slurm\n", NULL, 1, {{.name = "a", .scheduler = "slurm"}}},
    {"every key",
     "[c]\nscheduler = drmaa\nslots = 0\nhost = h.example.org\nport = 2222\nlogin = me\n"
     "queue = all.q\ntransfer_root = /scratch/t\nremote_command = /opt/bin/ferry\n"
     "ssh_options = -4\ndrmaa_library = /usr/lib/libdrmaa.so\npoll_interval = 2.5\n"
     "mpi_pe = mpi\n",
     NULL,
     1,
     {{.name = "c",
       .scheduler = "drmaa",
       .host = "h.example.org",
       .port = 2222,
       .login = "me",
       .queue = "all.q",
       .transfer_root = "/scratch/t",
       .remote_command = "/opt/bin/ferry",
       .ssh_options = "-4",
       .drmaa_library = "/usr/lib/libdrmaa.so",
       .mpi_pe = "mpi",
       .poll_interval = 2.5}}},
    {"path_translation_files: a blank in a file",
     "[a]\npath_translation_files = b{/x/t 1}  c{/y}\n",
     "t.conf:2: invalid path_translation_files token 'b{/x/t' (NAMESPACE{/absolute/file}, "
     "tokens separated by blanks)",
     0,
     {{0}}},
    {"path_translation_files",
     "[a]\npath_translation_files = b{/x/t1} \t c{/y}\n",
     NULL,
     1,
     {{.name = "a", .path_translation_files = "b{/x/t1} c{/y}"}}},
    {"path_translation_files continued",
     "[a]\npath_translation_files = b{/x}\n  c{/y}\n\td{/z}\nslots = 1\n",
     NULL,
     1,
     {{.name = "a", .path_translation_files = "b{/x} c{/y} d{/z}", .slots = 1}}},
    {"path_translation_files begun on the next line",
     "[a]\npath_translation_files =\n  c{/y}\n",
     NULL,
     1,
     {{.name = "a", .path_translation_files = "c{/y}"}}},
    {"path_translation_files empty",
     "[a]\npath_translation_files =\nslots = 2\n",
     NULL,
     1,
     {{.name = "a", .slots = 2}}},
    {"path_translation_files: a namespace continued twice",
     "[a]\npath_translation_files = b{/x}\n  c{/y} b{/z}\n",
     "t.conf:3: namespace 'b' given twice in path_translation_files",
     0,
     {{0}}},
    {"path_translation_files repeated",
     "[a]\npath_translation_files = b{/x}\npath_translation_files = c{/x}\n",
     "t.conf:3: key 'path_translation_files' given twice in section [a] (first on line 2)",
     0,
     {{0}}},
    {"colon separator", "[a]\nslots: 3\n", NULL, 1, {{.name = "a", .slots = 3}}},
    {"blanks around", "[a]\nslots   =   3   \n", NULL, 1, {{.name = "a", .slots = 3}}},
    {"no final newline", "[a]\nslots=3", NULL, 1, {{.name = "a", .slots = 3}}},
    {"CRLF lines",
     "[a]\r\nslots = 3\r\nhost = h\r\n",
     NULL,
     1,
     {{.name = "a", .slots = 3, .host = "h"}}},
    {"byte order mark", "\xef\xbb\xbf[a]\nslots=1\n", NULL, 1, {{.name = "a", .slots = 1}}},
    {"inline comment", "[a]\nslots = 3 ; three\n", NULL, 1, {{.name = "a", .slots = 3}}},
    {"';' without a blank is value", "[a]\nhost = a;b\n", NULL, 1, {{.name = "a", .host = "a;b"}}},
    {"'#' after a key is value", "[a]\nhost = a #b\n", NULL, 1, {{.name = "a", .host = "a #b"}}},
    {"'=' in a value", "[a]\nqueue = a=b\n", NULL, 1, {{.name = "a", .queue = "a=b"}}},
    {"empty value", "[a]\nqueue =\n", NULL, 1, {{.name = "a", .queue = ""}}},
    {"utf-8 value",
     "[a]\ntransfer_root = /d/caf\xc3\xa9/\xe6\x97\xa5\n",
     NULL,
     1,
     {{.name = "a", .transfer_root = "/d/caf\xc3\xa9/\xe6\x97\xa5"}}},
    {"a key in two sections",
     "[a]\nhost=h\n[b]\nhost=h\n",
     NULL,
     2,
     {{.name = "a", .host = "h"}, {.name = "b", .host = "h"}}},
    {"an indented first key", "[a]\n  slots = 1\n", NULL, 1, {{.name = "a", .slots = 1}}},
    {"an indented header after a header",
     "[a]\n  [b]\nslots=1\n",
     NULL,
     1,
     {{.name = "b", .slots = 1}}},
    {"ssh_options continued",
     "[a]\nssh_options = -o A=1\n  -o B=2\n\t-v\n",
     NULL,
     1,
     {{.name = "a", .ssh_options = "-o A=1 -o B=2 -v"}}},
    {"ssh_options continued after a comment",
     "[a]\nssh_options = -4\n; why\n  -v\n",
     NULL,
     1,
     {{.name = "a", .ssh_options = "-4 -v"}}},
    {"slots bounds",
     "[a]\nslots=0\n[b]\nslots=100000\n",
     NULL,
     2,
     {{.name = "a"}, {.name = "b", .slots = 100000}}},
    {"bounds of max_running and max_queued",
     "[a]\nmax_running=1000000\n[b]\nscheduler=slurm\nmax_queued=0\nmax_running=0\n",
     NULL,
     2,
     {{.name = "a", .max_running = 1000000}, {.name = "b", .scheduler = "slurm"}}},
    {"port bounds",
     "[a]\nport=1\n[b]\nport=65535\n",
     NULL,
     2,
     {{.name = "a", .port = 1}, {.name = "b", .port = 65535}}},
    {"poll_interval bounds",
     "[a]\npoll_interval=0.1\n[b]\npoll_interval=3600\n",
     NULL,
     2,
     {{.name = "a", .poll_interval = 0.1}, {.name = "b", .poll_interval = 3600}}},
    {"poll_interval 0 and exponent",
     "[a]\npoll_interval=0\n[b]\npoll_interval=1e1\n",
     NULL,
     2,
     {{.name = "a"}, {.name = "b", .poll_interval = 10}}},
    {"name of 49 characters", "[" NAME49 "]\nslots=1\n", NULL, 1, {{.name = NAME49, .slots = 1}}},
    {"long name in a continuation",
     "[a]\nssh_options = -v\n  [" NAME64 "]\n",
     NULL,
     1,
     {{.name = "a", .ssh_options = "-v [" NAME64 "]"}}},
    {"[local]", "[local]\nslots=2\n", NULL, 1, {{.name = "local", .slots = 2}}},

    {"key outside a section",
     "slots=1\n",
     "t.conf:1: key 'slots' outside of a [resource] section",
     0,
     {{0}}},
    {"key before the first section",
     "; c\n\nhost=h\n[a]\n",
     "t.conf:3: key 'host' outside of a [resource] section",
     0,
     {{0}}},
    {"empty section name",
     "[]\nslots=1\n",
     "t.conf:2: key 'slots' outside of a [resource] section",
     0,
     {{0}}},
    {"unknown key", "[a]\nfoo=1\n", "t.conf:2: unknown key 'foo' in section [a]", 0, {{0}}},
    {"keys are case-sensitive",
     "[a]\nSlots=1\n",
     "t.conf:2: unknown key 'Slots' in section [a]",
     0,
     {{0}}},
    {"'name' is no key", "[a]\nname=b\n", "t.conf:2: unknown key 'name' in section [a]", 0, {{0}}},
    {"unknown scheduler",
     "[a]\nscheduler=pbs\n",
     "t.conf:2: unknown scheduler 'pbs' (local, slurm or drmaa)",
     0,
     {{0}}},
    {"scheduler case",
     "[a]\nscheduler=Slurm\n",
     "t.conf:2: unknown scheduler 'Slurm' (local, slurm or drmaa)",
     0,
     {{0}}},
    {"empty scheduler",
     "[a]\nscheduler=\n",
     "t.conf:2: unknown scheduler '' (local, slurm or drmaa)",
     0,
     {{0}}},
    {"negative slots",
     "[a]\nslots=-1\n",
     "t.conf:2: invalid slots '-1' (a number from 0 to 100000)",
     0,
     {{0}}},
    {"slots over the top",
     "[a]\nslots=100001\n",
     "t.conf:2: invalid slots '100001' (a number from 0 to 100000)",
     0,
     {{0}}},
    {"slots in hex",
     "[a]\nslots=0x10\n",
     "t.conf:2: invalid slots '0x10' (a number from 0 to 100000)",
     0,
     {{0}}},
    {"fractional slots",
     "[a]\nslots=1.5\n",
     "t.conf:2: invalid slots '1.5' (a number from 0 to 100000)",
     0,
     {{0}}},
    {"empty slots",
     "[a]\nslots=\n",
     "t.conf:2: invalid slots '' (a number from 0 to 100000)",
     0,
     {{0}}},
    {"slots past long",
     "[a]\nslots=99999999999999999999\n",
     "t.conf:2: invalid slots '99999999999999999999' (a number from 0 to 100000)",
     0,
     {{0}}},
    {"port 0", "[a]\nport=0\n", "t.conf:2: invalid port '0'", 0, {{0}}},
    {"port 65536", "[a]\nport=65536\n", "t.conf:2: invalid port '65536'", 0, {{0}}},
    {"port name", "[a]\nport=ssh\n", "t.conf:2: invalid port 'ssh'", 0, {{0}}},
    {"poll_interval below 0.1",
     "[a]\npoll_interval=0.05\n",
     "t.conf:2: invalid poll_interval '0.05' (seconds, 0.1 to 3600; 0: default)",
     0,
     {{0}}},
    {"poll_interval over an hour",
     "[a]\npoll_interval=3600.5\n",
     "t.conf:2: invalid poll_interval '3600.5' (seconds, 0.1 to 3600; 0: default)",
     0,
     {{0}}},
    {"negative poll_interval",
     "[a]\npoll_interval=-1\n",
     "t.conf:2: invalid poll_interval '-1' (seconds, 0.1 to 3600; 0: default)",
     0,
     {{0}}},
    {"poll_interval nan",
     "[a]\npoll_interval=nan\n",
     "t.conf:2: invalid poll_interval 'nan' (seconds, 0.1 to 3600; 0: default)",
     0,
     {{0}}},
    {"poll_interval inf",
     "[a]\npoll_interval=inf\n",
     "t.conf:2: invalid poll_interval 'inf' (seconds, 0.1 to 3600; 0: default)",
     0,
     {{0}}},
    {"poll_interval with a unit",
     "[a]\npoll_interval=2s\n",
     "t.conf:2: invalid poll_interval '2s' (seconds, 0.1 to 3600; 0: default)",
     0,
     {{0}}},
    {"empty poll_interval",
     "[a]\npoll_interval=\n",
     "t.conf:2: invalid poll_interval '' (seconds, 0.1 to 3600; 0: default)",
     0,
     {{0}}},
    {"section name with a dot first",
     "[.a]\nslots=1\n",
     "t.conf:2: invalid resource name '.a'",
     0,
     {{0}}},
    {"section name with a blank",
     "[a b]\nslots=1\n",
     "t.conf:2: invalid resource name 'a b'",
     0,
     {{0}}},
    {"section name in blanks",
     "[ a ]\nslots=1\n",
     "t.conf:2: invalid resource name ' a '",
     0,
     {{0}}},
    {"section name with a slash",
     "[a/b]\nslots=1\n",
     "t.conf:2: invalid resource name 'a/b'",
     0,
     {{0}}},
    {"section name in utf-8",
     "[caf\xc3\xa9]\nslots=1\n",
     "t.conf:2: invalid resource name 'caf\xc3\xa9'",
     0,
     {{0}}},
    {"name of 50 characters", "[" NAME49 "W]\nslots=1\n", "t.conf:1: " LONG_NAME, 0, {{0}}},
    {"name of 64 characters", "; c\n[" NAME64 "]\nslots=1\n", "t.conf:2: " LONG_NAME, 0, {{0}}},
    {"name of 65 characters", "[" NAME64 "x]\nslots=1\n", "t.conf:1: " LONG_NAME, 0, {{0}}},
    {"long name after a byte order mark",
     "\xef\xbb\xbf[" NAME64 "]\nslots=1\n",
     "t.conf:1: " LONG_NAME,
     0,
     {{0}}},
    {"long name after an error",
     "[a]\nfoo=1\n[" NAME64 "]\nslots=1\n",
     "t.conf:2: unknown key 'foo' in section [a]",
     0,
     {{0}}},
    {"long name after a syntax error",
     "[a]\nx\n[" NAME64 "]\n",
     "t.conf:2: syntax error",
     0,
     {{0}}},
    {"line without '='", "[a]\nslots\n", "t.conf:2: syntax error", 0, {{0}}},
    {"unclosed section", "[a\nslots=1\n", "t.conf:1: syntax error", 0, {{0}}},
    {"first error wins",
     "[a]\nfoo=1\nslots=x\n",
     "t.conf:2: unknown key 'foo' in section [a]",
     0,
     {{0}}},
    {"bad value before a syntax error",
     "[a]\nslots=x\ngarbage\n",
     "t.conf:2: invalid slots 'x' (a number from 0 to 100000)",
     0,
     {{0}}},
    {"syntax error before a bad value",
     "[a]\ngarbage\nslots=x\n",
     "t.conf:2: syntax error",
     0,
     {{0}}},
    {"syntax error before an unknown key",
     "[a]\n\n[b\nfoo=1\n",
     "t.conf:3: syntax error",
     0,
     {{0}}},
    {"line after continuations",
     "[a]\nssh_options = -v\n  -4\nfoo = 1\n",
     "t.conf:4: unknown key 'foo' in section [a]",
     0,
     {{0}}},
    /* a repeat would keep one value without a word: each shape refused, with both lines */
    {"repeated key",
     "[a]\nslots=1\nslots=2\n",
     "t.conf:3: key 'slots' given twice in section [a] (first on line 2)",
     0,
     {{0}}},
    {"repeated key, same value",
     "[a]\nhost=h\nhost=h\n",
     "t.conf:3: key 'host' given twice in section [a] (first on line 2)",
     0,
     {{0}}},
    {"repeated key, other keys between",
     "[a]\nhost=h\nslots=1\n\n; c\nport=22\nhost = g\n",
     "t.conf:7: key 'host' given twice in section [a] (first on line 2)",
     0,
     {{0}}},
    {"repeated key, ':' and '='",
     "[a]\nqueue = q\nqueue: r\n",
     "t.conf:3: key 'queue' given twice in section [a] (first on line 2)",
     0,
     {{0}}},
    {"repeated key, CRLF",
     "[a]\r\nslots=1\r\nslots=2\r\n",
     "t.conf:3: key 'slots' given twice in section [a] (first on line 2)",
     0,
     {{0}}},
    {"repeated empty value",
     "[a]\nqueue =\nqueue =\n",
     "t.conf:3: key 'queue' given twice in section [a] (first on line 2)",
     0,
     {{0}}},
    {"ssh_options repeated",
     "[a]\nssh_options=-4\nssh_options=-v\n",
     "t.conf:3: key 'ssh_options' given twice in section [a] (first on line 2)",
     0,
     {{0}}},
    {"ssh_options repeated after continuations",
     "[a]\nssh_options = -4\n  -v\nhost = h\nssh_options = -q\n",
     "t.conf:5: key 'ssh_options' given twice in section [a] (first on line 2)",
     0,
     {{0}}},
    {"another key continued",
     "[a]\nhost = h\n  g\n",
     "t.conf:3: an indented line continues the value of 'host' above (which takes one "
     "value; only ssh_options and path_translation_files continue)",
     0,
     {{0}}},
    {"an indented key continues the one above",
     "[a]\nslots = 1\n\tqueue = q\n",
     "t.conf:3: an indented line continues the value of 'slots' above (which takes one "
     "value; only ssh_options and path_translation_files continue)",
     0,
     {{0}}},
    {"repeated section",
     "[a]\nslots=1\n[b]\nslots=2\n[a]\nqueue=q\n",
     "t.conf:5: section [a] given twice (first on line 1)",
     0,
     {{0}}},
    {"repeated section at once",
     "[a]\nslots=1\n[a]\n",
     "t.conf:3: section [a] given twice (first on line 1)",
     0,
     {{0}}},
    {"repeated keyless section",
     "[a]\n[a]\nslots=1\n",
     "t.conf:2: section [a] given twice (first on line 1)",
     0,
     {{0}}},
    {"repeated section, indented",
     "[a]\nslots=1\n[b]\n  [a]\nslots=2\n",
     "t.conf:4: section [a] given twice (first on line 1)",
     0,
     {{0}}},
    {"repeated section after a BOM",
     "\xef\xbb\xbf[local]\nslots=1\n[local]\nslots=2\n",
     "t.conf:3: section [local] given twice (first on line 1)",
     0,
     {{0}}},
    {"repeated section with a comment",
     "[a] ; first\nslots=1\n[a]\n",
     "t.conf:3: section [a] given twice (first on line 1)",
     0,
     {{0}}},
    {"line after CRLF lines",
     "[a]\r\n\r\nfoo=1\r\n",
     "t.conf:3: unknown key 'foo' in section [a]",
     0,
     {{0}}},
};

static void check_parse(const struct parse_case *c)
{
	struct ferry_cfg cfg;
	char err[512] = "";
	int rc;

	unit_case("parse: %s", c->name);
	memset(&cfg, 0x5a, sizeof(cfg));
	rc = ferry__cfg_parse("t.conf", c->text, &cfg, err, sizeof(err));
	if (c->err) {
		CHECK_INT(rc, ==, -1);
		CHECK_STR(err, c->err);
		CHECK_INT(cfg.nres, ==, 0);
		CHECK(cfg.res == NULL);
		return;
	}
	CHECK_INT(rc, ==, 0);
	CHECK_STR(err, "");
	if (CHECK_INT(cfg.nres, ==, c->nres))
		for (int i = 0; i < c->nres; i++)
			check_res(&cfg.res[i], &c->want[i]);
	ferry__cfg_release(&cfg);
	CHECK(cfg.res == NULL && cfg.nres == 0);
}

/* "[a]\n" then a line of len characters (plus eol) then "foo=1\n". */
static char *text_with_line(size_t len, const char *eol)
{
	char *t = malloc(len + 32), *p = t;

	if (!t)
		return NULL;
	p += sprintf(p, "[a]\nhost=");
	memset(p, 'h', len - 5);
	p += len - 5;
	sprintf(p, "%sfoo=1\n", eol);
	return t;
}

/*
 * A line of 100 characters of two bytes each, after a comment line: too
 * long in bytes, which the message says (it said "characters", which it
 * was not), with the line's number.
 */
static void check_long_multibyte_line(void)
{
	char t[512], *p = t, err[512];
	struct ferry_cfg cfg;

	p += sprintf(p, "# a comment\n[a]\nhost=");
	for (int i = 0; i < 100; i++)
		p += sprintf(p, "\xc3\xa9");
	sprintf(p, "\n");
	unit_case("parse: a line of 100 two-byte characters");
	err[0] = '\0';
	CHECK_INT(ferry__cfg_parse("t.conf", t, &cfg, err, sizeof(err)), ==, -1);
	CHECK_STR(err, "t.conf:3: line 3 is longer than 198 bytes (continue a value on indented "
		       "lines)");
}

/* Lines up to 198 bytes; a longer one is refused, not cut (inih cuts at 200). */
static void check_long_lines(void)
{
	static const struct {
		size_t len;
		const char *eol, *err;
	} cases[] = {
	    {198, "\n", "t.conf:3: unknown key 'foo' in section [a]"},
	    {198, "\r\n", "t.conf:3: unknown key 'foo' in section [a]"},
	    {197, "\r\n", "t.conf:3: unknown key 'foo' in section [a]"},
	    {199, "\n",
	     "t.conf:2: line 2 is longer than 198 bytes (continue a value on indented "
	     "lines)"},
	    {199, "\r\n",
	     "t.conf:2: line 2 is longer than 198 bytes (continue a value on "
	     "indented lines)"},
	    {5000, "\n",
	     "t.conf:2: line 2 is longer than 198 bytes (continue a value on indented "
	     "lines)"},
	};
	struct ferry_cfg cfg;
	char err[512];

	for (size_t i = 0; i < FERRY_ARRAY_SIZE(cases); i++) {
		char *t = text_with_line(cases[i].len, cases[i].eol);
		unit_case("parse: a line of %zu characters ending %s", cases[i].len,
			  cases[i].eol[0] == '\r' ? "CRLF" : "LF");
		if (!CHECK(t != NULL))
			continue;
		err[0] = '\0';
		CHECK_INT(ferry__cfg_parse("t.conf", t, &cfg, err, sizeof(err)), ==, -1);
		CHECK_STR(err, cases[i].err);
		free(t);
	}
	check_long_multibyte_line();
}

static char tmp[4096]; /* the temporary directory */

static char *tmp_path(const char *name)
{
	return ferry__asprintf("%s/%s", tmp, name);
}

/* Writes file name (with its directories) of the temporary directory. */
static int write_tmp(const char *name, const void *data, size_t len)
{
	char *p = tmp_path(name), *slash;
	int rc = p ? 0 : -ENOMEM;

	if (p && (slash = strrchr(p, '/')) != NULL) {
		*slash = '\0';
		rc = ferry__mkdir_p(p, 0700);
		*slash = '/';
	}
	if (!rc)
		rc = ferry__write_file_atomic(p, data, len, 0);
	free(p);
	return rc;
}

/* fmt with each '@' replaced by the temporary directory; malloc'd. */
static char *expand(const char *fmt)
{
	char *out = malloc(strlen(fmt) * (strlen(tmp) + 1) + 1), *p = out;

	if (!out)
		return NULL;
	for (; *fmt; fmt++)
		p = *fmt == '@' ? stpcpy(p, tmp) : (*p = *fmt, p + 1);
	*p = '\0';
	return out;
}

/* A file of exactly len bytes: "[a]\nslots=1\n", then comment lines. */
static int write_big(const char *name, size_t len)
{
	char *buf = malloc(len);
	size_t off = 12;
	int rc;

	if (!buf)
		return -ENOMEM;
	memcpy(buf, "[a]\nslots=1\n", off);
	memset(buf + off, '#', len - off);
	for (size_t i = off + 99; i < len; i += 100)
		buf[i] = '\n';
	rc = write_tmp(name, buf, len);
	free(buf);
	return rc;
}

/* Parses file name of the temporary directory: err ('@' for the directory) or nres sections. */
static void check_file(const char *name, const char *err, int nres)
{
	struct ferry_cfg cfg;
	char msg[512] = "", *path = tmp_path(name), *want = NULL;
	int rc;

	if (!CHECK(path != NULL))
		return;
	rc = ferry__cfg_parse(path, NULL, &cfg, msg, sizeof(msg));
	if (err) {
		want = expand(err);
		CHECK_INT(rc, ==, -1);
		CHECK_STR(msg, want);
		CHECK(cfg.nres == 0 && cfg.res == NULL);
	} else if (CHECK_INT(rc, ==, 0)) {
		CHECK_STR(msg, "");
		CHECK_INT(cfg.nres, ==, nres);
		if (nres > 0)
			CHECK_STR(cfg.res[0].name, "a");
		ferry__cfg_release(&cfg);
	}
	free(want);
	free(path);
}

/* A NUL byte on the first, a middle and the last line, ended or not: each named by its line. */
static void check_nuls(void)
{
	static const struct {
		const char *text;
		size_t len;
		int line;
	} cases[] = {
	    {"\0[a]\nslots=1\n", 13, 1},	  {"[a]\0\nslots=1\n", 13, 1},
	    {"[a]\nslots=1\0\nqueue=q\n", 21, 2}, {"[a]\nslots=1\nhost=h\0", 19, 3},
	    {"[a]\nslots=1\nhost=h\n\0", 20, 4},  {"[a]\nslots=1\n\0\0\0\n", 16, 3},
	};

	for (size_t i = 0; i < FERRY_ARRAY_SIZE(cases); i++) {
		char want[64];
		unit_case("file: a NUL byte on line %d (case %zu)", cases[i].line, i);
		snprintf(want, sizeof(want), "@/nul%zu.conf:%d: NUL byte (not a text file?)", i,
			 cases[i].line);
		char name[32];
		snprintf(name, sizeof(name), "nul%zu.conf", i);
		CHECK_INT(write_tmp(name, cases[i].text, cases[i].len), ==, 0);
		check_file(name, want, 0);
	}
}

static void check_files(void)
{
	static const char nul[] = "[a]\nslots=1\n\0[b]\nslots=x\n";
	char *target, *alias;

	unit_case("file: missing");
	check_file("missing.conf", "cannot open '@/missing.conf': No such file or directory", 0);
	unit_case("file: a directory");
	target = tmp_path("dir.conf");
	CHECK(target && mkdir(target, 0700) == 0);
	free(target);
	check_file("dir.conf", "cannot open '@/dir.conf': Is a directory", 0);
	unit_case("file: empty");
	CHECK_INT(write_tmp("empty.conf", "", 0), ==, 0);
	check_file("empty.conf", NULL, 0);
	unit_case("file: a section");
	CHECK_INT(write_tmp("a.conf", "[a]\nslots=1\n", 12), ==, 0);
	check_file("a.conf", NULL, 1);
	unit_case("file: through a symbolic link");
	target = tmp_path("a.conf");
	alias = tmp_path("link.conf");
	CHECK(target && alias && symlink(target, alias) == 0);
	free(target);
	free(alias);
	check_file("link.conf", NULL, 1);
	unit_case("file: an error names the file");
	CHECK_INT(write_tmp("bad.conf", "[a]\n\nport=0\n", 12), ==, 0);
	check_file("bad.conf", "@/bad.conf:3: invalid port '0'", 0);
	unit_case("file: 1 MiB");
	CHECK_INT(write_big("big.conf", 1 << 20), ==, 0);
	check_file("big.conf", NULL, 1);
	unit_case("file: 1 MiB and a byte");
	CHECK_INT(write_big("bigger.conf", (1 << 20) + 1), ==, 0);
	check_file("bigger.conf", "cannot open '@/bigger.conf': larger than 1 MiB", 0);
	unit_case("file: a NUL byte hides nothing after it");
	CHECK_INT(write_tmp("nul.conf", nul, sizeof(nul) - 1), ==, 0);
	check_file("nul.conf", "@/nul.conf:3: NUL byte (not a text file?)", 0);
	check_nuls();
}

#define ONLY_KEYS                                                                                  \
	"(only scheduler, slots, max_running, max_queued, queue, transfer_root, poll_interval, "   \
	"drmaa_library, path_translation_files, mpi_pe, job_dir)"
#define BAD_TOKEN(t)                                                                               \
	"invalid path_translation_files token '" t "' (NAMESPACE{/absolute/file}, tokens "         \
	"separated by blanks)"
#define BOUND_RANGE "(a number from 0 to 1000000; 0: no bound)"

static const struct set_case {
	const char *assignment;
	const char *err; /* the whole message; NULL: applies */
	res_t want;	 /* applied to {.name = "r"} */
} set_cases[] = {
    {"scheduler=slurm", NULL, {.scheduler = "slurm"}},
    {"scheduler=local", NULL, {.scheduler = "local"}},
    {"scheduler=drmaa", NULL, {.scheduler = "drmaa"}},
    {"slots=0", NULL, {0}},
    {"slots=100000", NULL, {.slots = 100000}},
    {"max_running=0", NULL, {0}},
    {"max_running=1000000", NULL, {.max_running = 1000000}},
    {"max_queued=7", NULL, {.max_queued = 7}},
    {"max_running=-1", "invalid max_running '-1' " BOUND_RANGE, {0}},
    {"max_running=1000001", "invalid max_running '1000001' " BOUND_RANGE, {0}},
    {"max_queued=2.5", "invalid max_queued '2.5' " BOUND_RANGE, {0}},
    {"max_queued=", "invalid max_queued '' " BOUND_RANGE, {0}},
    {"queue=gpu", NULL, {.queue = "gpu"}},
    {"queue=", NULL, {.queue = ""}},
    {"queue=a=b", NULL, {.queue = "a=b"}},
    {"queue=\xe6\x97\xa5", NULL, {.queue = "\xe6\x97\xa5"}},
    {"transfer_root=/data/x y", NULL, {.transfer_root = "/data/x y"}},
    {"poll_interval=0", NULL, {0}},
    {"poll_interval=2.0", NULL, {.poll_interval = 2}},
    {"poll_interval=1e3", NULL, {.poll_interval = 1000}},
    {"drmaa_library=libdrmaa.so.1", NULL, {.drmaa_library = "libdrmaa.so.1"}},
    {"path_translation_files=a{/t}", NULL, {.path_translation_files = "a{/t}"}},
    {"path_translation_files= a{/t}\t\tb.c-d{/u/v w} ", BAD_TOKEN("b.c-d{/u/v"), {0}},
    {"path_translation_files= a{/t}\t\tb.c-d{/u/v_w} ",
     NULL,
     {.path_translation_files = "a{/t} b.c-d{/u/v_w}"}},
    {"path_translation_files=", NULL, {0}},
    {"path_translation_files= \t ", NULL, {0}},
    {"path_translation_files=a/t", BAD_TOKEN("a/t"), {0}},
    {"path_translation_files={/t}", BAD_TOKEN("{/t}"), {0}},
    {"path_translation_files=a{t}", BAD_TOKEN("a{t}"), {0}},
    {"path_translation_files=a{/t", BAD_TOKEN("a{/t"), {0}},
    {"path_translation_files=a{}", BAD_TOKEN("a{}"), {0}},
    {"path_translation_files=a{", BAD_TOKEN("a{"), {0}},
    {"path_translation_files=a{/}", NULL, {.path_translation_files = "a{/}"}},
    {"path_translation_files=a{/t}}", BAD_TOKEN("a{/t}}"), {0}},
    {"path_translation_files=a}{/t}", BAD_TOKEN("a}{/t}"), {0}},
    {"path_translation_files=a{/t{x}", BAD_TOKEN("a{/t{x}"), {0}},
    {"path_translation_files=a{/t} b{/u} a{/v}",
     "namespace 'a' given twice in path_translation_files",
     {0}},
    {"path_translation_files=a{/t} ab{/u}", NULL, {.path_translation_files = "a{/t} ab{/u}"}},
    {"scheduler=pbs", "unknown scheduler 'pbs' (local, slurm or drmaa)", {0}},
    {"scheduler=", "unknown scheduler '' (local, slurm or drmaa)", {0}},
    {"slots=-1", "invalid slots '-1' (a number from 0 to 100000)", {0}},
    {"slots=100001", "invalid slots '100001' (a number from 0 to 100000)", {0}},
    {"slots=4x", "invalid slots '4x' (a number from 0 to 100000)", {0}},
    {"slots=4=5", "invalid slots '4=5' (a number from 0 to 100000)", {0}},
    {"slots=", "invalid slots '' (a number from 0 to 100000)", {0}},
    {"poll_interval=0.01", "invalid poll_interval '0.01' (seconds, 0.1 to 3600; 0: default)", {0}},
    {"poll_interval=x", "invalid poll_interval 'x' (seconds, 0.1 to 3600; 0: default)", {0}},
    {"host=h", "key 'host' cannot be set for an engine " ONLY_KEYS, {0}},
    {"port=22", "key 'port' cannot be set for an engine " ONLY_KEYS, {0}},
    {"login=u", "key 'login' cannot be set for an engine " ONLY_KEYS, {0}},
    {"ssh_options=-v", "key 'ssh_options' cannot be set for an engine " ONLY_KEYS, {0}},
    {"remote_command=f", "key 'remote_command' cannot be set for an engine " ONLY_KEYS, {0}},
    {"name=x", "key 'name' cannot be set for an engine " ONLY_KEYS, {0}},
    {"SLOTS=4", "key 'SLOTS' cannot be set for an engine " ONLY_KEYS, {0}},
    {" slots=4", "key ' slots' cannot be set for an engine " ONLY_KEYS, {0}},
    {"abcdefghijklmnopqrstuvwxyz01234=1", /* 31 characters: a key, if unknown */
     "key 'abcdefghijklmnopqrstuvwxyz01234' cannot be set for an engine " ONLY_KEYS,
     {0}},
    {"abcdefghijklmnopqrstuvwxyz012345=1", /* 32: too long to be one */
     "invalid setting 'abcdefghijklmnopqrstuvwxyz012345=1' (KEY=VALUE)",
     {0}},
    {"slots", "invalid setting 'slots' (KEY=VALUE)", {0}},
    {"=4", "invalid setting '=4' (KEY=VALUE)", {0}},
    {"", "invalid setting '' (KEY=VALUE)", {0}},
};

static void check_set(const struct set_case *c)
{
	res_t r = {.name = strdup("r")}, want = c->want;
	char err[512] = "";
	int rc;

	unit_case("set: '%s'", c->assignment);
	rc = ferry__cfg_set(&r, c->assignment, err, sizeof(err));
	want.name = "r";
	if (c->err) {
		CHECK_INT(rc, ==, -1);
		CHECK_STR(err, c->err);
		want = (res_t){.name = "r"}; /* r unchanged */
	} else {
		CHECK_INT(rc, ==, 0);
		CHECK_STR(err, "");
	}
	check_res(&r, &want);
	ferry__resource_cfg_release(&r);
}

static void check_set_twice(void)
{
	res_t r = {.name = strdup("r")};
	char err[256];

	unit_case("set: a second value replaces the first");
	CHECK_INT(ferry__cfg_set(&r, "queue=a", err, sizeof(err)), ==, 0);
	CHECK_INT(ferry__cfg_set(&r, "queue=b", err, sizeof(err)), ==, 0);
	CHECK_INT(ferry__cfg_set(&r, "slots=3", err, sizeof(err)), ==, 0);
	CHECK_INT(ferry__cfg_set(&r, "slots=x", err, sizeof(err)), ==, -1);
	check_res(&r, &(res_t){.name = "r", .queue = "b", .slots = 3});
	ferry__resource_cfg_release(&r);
}

#define MAXS 8

static const struct settings_case {
	const char *name;
	res_t r;
	const char *want[MAXS]; /* in the order of the engine keys */
} settings_cases[] = {
    {"nothing set", {.name = "r"}, {NULL}},
    {"zeros are defaults", {.name = "r", .slots = 0, .poll_interval = 0}, {NULL}},
    {"ssh keys are not the engine's",
     {.name = "r",
      .host = "h",
      .port = 22,
      .login = "u",
      .ssh_options = "-v",
      .remote_command = "f"},
     {NULL}},
    {"local with slots",
     {.name = "r", .scheduler = "local", .slots = 4},
     {"scheduler=local", "slots=4"}},
    {"every engine key",
     {.name = "r",
      .scheduler = "drmaa",
      .slots = 2,
      .queue = "q",
      .transfer_root = "/t",
      .poll_interval = 0.5,
      .drmaa_library = "/l.so"},
     {"scheduler=drmaa", "slots=2", "queue=q", "transfer_root=/t", "poll_interval=0.5",
      "drmaa_library=/l.so"}},
    {"local with max_running", {.name = "r", .max_running = 3}, {"max_running=3"}},
    {"slurm with max_queued",
     {.name = "r", .scheduler = "slurm", .max_queued = 100},
     {"scheduler=slurm", "max_queued=100"}},
    {"interval printed short", {.name = "r", .poll_interval = 2}, {"poll_interval=2"}},
    {"interval 0.1", {.name = "r", .poll_interval = 0.1}, {"poll_interval=0.1"}},
    {"empty queue is set", {.name = "r", .queue = ""}, {"queue="}},
    {"values with blanks and '='",
     {.name = "r", .transfer_root = "/a b=c"},
     {"transfer_root=/a b=c"}},
    {"translation files",
     {.name = "r", .scheduler = "slurm", .path_translation_files = "a{/t} b{/u}"},
     {"scheduler=slurm", "path_translation_files=a{/t} b{/u}"}},
};

static void check_settings_list(const struct settings_case *c)
{
	char **v = ferry__cfg_engine_settings(&c->r), err[512] = "";
	size_t n = 0;

	unit_case("engine settings: %s", c->name);
	if (!CHECK(v != NULL))
		return;
	while (n < MAXS && c->want[n])
		n++;
	CHECK_UINT(ferry__strv_len(v), ==, n);
	for (size_t i = 0; i < n && i < ferry__strv_len(v); i++)
		CHECK_STR(v[i], c->want[i]);
	/* what an engine was given agrees with itself */
	CHECK_INT(ferry__cfg_check_settings(&c->r, (const char *const *)v, err, sizeof(err)), ==,
		  0);
	CHECK_STR(err, "");
	ferry__strv_free(v);
}

#define STOP_IT "; stop that engine ('ferry -r r daemon stop' on its host) to change it"

static const struct check_case {
	const char *name;
	res_t r;
	const char *sets[4];
	const char *err; /* the whole message; NULL: agrees */
} check_cases[] = {
    {"no settings", {.name = "r", .scheduler = "slurm"}, {NULL}, NULL},
    {"local is the default", {.name = "r"}, {"scheduler=local"}, NULL},
    {"local said", {.name = "r", .scheduler = "local"}, {"scheduler=local"}, NULL},
    {"same scheduler", {.name = "r", .scheduler = "slurm"}, {"scheduler=slurm"}, NULL},
    {"other scheduler",
     {.name = "r", .scheduler = "slurm"},
     {"scheduler=drmaa"},
     "the engine of resource 'r' runs with scheduler 'slurm', but the client's configuration "
     "says 'drmaa'" STOP_IT},
    {"scheduler over the default",
     {.name = "r"},
     {"scheduler=slurm"},
     "the engine of resource 'r' runs with scheduler '(default)', but the client's "
     "configuration says 'slurm'" STOP_IT},
    {"same slots", {.name = "r", .slots = 4}, {"slots=4"}, NULL},
    {"slots compared as numbers", {.name = "r", .slots = 4}, {"slots=04"}, NULL},
    {"slots 0 is the default", {.name = "r"}, {"slots=0"}, NULL},
    {"other slots",
     {.name = "r", .slots = 4},
     {"slots=8"},
     "the engine of resource 'r' runs with slots '4', but the client's configuration says "
     "'8'" STOP_IT},
    {"default slots wanted",
     {.name = "r", .slots = 4},
     {"slots=0"},
     "the engine of resource 'r' runs with slots '4', but the client's configuration says "
     "'(default)'" STOP_IT},
    {"same max_queued", {.name = "r", .max_queued = 5}, {"max_queued=5"}, NULL},
    {"max_running 0 is the default", {.name = "r"}, {"max_running=0"}, NULL},
    {"other max_running",
     {.name = "r", .max_running = 2},
     {"max_running=3"},
     "the engine of resource 'r' runs with max_running '2', but the client's configuration "
     "says '3'" STOP_IT},
    {"max_queued not set there",
     {.name = "r", .scheduler = "slurm"},
     {"max_queued=10"},
     "the engine of resource 'r' runs with max_queued '(default)', but the client's "
     "configuration says '10'" STOP_IT},
    {"interval compared as numbers",
     {.name = "r", .poll_interval = 2},
     {"poll_interval=2.0"},
     NULL},
    {"interval in another spelling",
     {.name = "r", .poll_interval = 10},
     {"poll_interval=1e1"},
     NULL},
    {"other interval",
     {.name = "r", .poll_interval = 2},
     {"poll_interval=3"},
     "the engine of resource 'r' runs with poll_interval '2', but the client's configuration "
     "says '3'" STOP_IT},
    {"same queue", {.name = "r", .queue = "q"}, {"queue=q"}, NULL},
    {"queue not set there",
     {.name = "r"},
     {"queue=q"},
     "the engine of resource 'r' runs with queue '(default)', but the client's configuration "
     "says 'q'" STOP_IT},
    {"empty queue is not no queue",
     {.name = "r"},
     {"queue="},
     "the engine of resource 'r' runs with queue '(default)', but the client's configuration "
     "says ''" STOP_IT},
    {"all agree",
     {.name = "r",
      .scheduler = "drmaa",
      .queue = "q",
      .transfer_root = "/t",
      .drmaa_library = "/l.so"},
     {"scheduler=drmaa", "queue=q", "transfer_root=/t", "drmaa_library=/l.so"},
     NULL},
    {"the second differs",
     {.name = "r", .scheduler = "slurm", .queue = "a"},
     {"scheduler=slurm", "queue=b"},
     "the engine of resource 'r' runs with queue 'a', but the client's configuration says "
     "'b'" STOP_IT},
    {"translation files in other blanks",
     {.name = "r", .path_translation_files = "a{/t} b{/u}"},
     {"path_translation_files=  a{/t}\tb{/u}"},
     NULL},
    {"other translation files",
     {.name = "r", .path_translation_files = "a{/t}"},
     {"path_translation_files=a{/u}"},
     "the engine of resource 'r' runs with path_translation_files 'a{/t}', but the client's "
     "configuration says 'a{/u}'" STOP_IT},
    {"translation files not set there",
     {.name = "r"},
     {"path_translation_files=a{/u}"},
     "the engine of resource 'r' runs with path_translation_files '(default)', but the "
     "client's configuration says 'a{/u}'" STOP_IT},
    {"not an engine key", {.name = "r"}, {"host=h"}, "key 'host' cannot be set for an engine"},
    {"no '='", {.name = "r"}, {"slots"}, "invalid setting 'slots' (KEY=VALUE)"},
    {"no key", {.name = "r"}, {"=1"}, "invalid setting '=1' (KEY=VALUE)"},
    {"bad value",
     {.name = "r", .slots = 1},
     {"slots=x"},
     "invalid slots 'x' (a number from 0 to 100000)"},
    {"bad value after good ones",
     {.name = "r", .slots = 1},
     {"slots=1", "scheduler=pbs"},
     "unknown scheduler 'pbs' (local, slurm or drmaa)"},
};

static void check_check(const struct check_case *c)
{
	char err[512] = "";
	int rc;

	unit_case("check settings: %s", c->name);
	rc = ferry__cfg_check_settings(&c->r, c->sets, err, sizeof(err));
	CHECK_INT(rc, ==, (c->err ? -1 : 0));
	CHECK_STR(err, c->err ? c->err : "");
}

static const struct supported_case {
	const char *name;
	res_t r;
	const char *err; /* the whole message; NULL: supported */
} supported_cases[] = {
    {"defaults", {.name = "r"}, NULL},
    {"local with slots", {.name = "r", .scheduler = "local", .slots = 8}, NULL},
    {"remote with every ssh key",
     {.name = "r",
      .host = "h",
      .port = 22,
      .login = "u",
      .ssh_options = "-v",
      .remote_command = "f"},
     NULL},
    {"slurm with a queue and interval",
     {.name = "r", .scheduler = "slurm", .queue = "q", .poll_interval = 5},
     NULL},
    {"drmaa with its library", {.name = "r", .scheduler = "drmaa", .drmaa_library = "l.so"}, NULL},
    {"local with interval 0", {.name = "r", .poll_interval = 0}, NULL},
    {"login without host",
     {.name = "r", .login = "u"},
     "key 'login' of resource 'r' needs 'host' (it says how to reach a remote engine)"},
    {"remote_command without host",
     {.name = "r", .remote_command = "f"},
     "key 'remote_command' of resource 'r' needs 'host' (it says how to reach a remote engine)"},
    {"ssh_options without host",
     {.name = "r", .ssh_options = "-v"},
     "key 'ssh_options' of resource 'r' needs 'host' (it says how to reach a remote engine)"},
    {"port without host",
     {.name = "r", .port = 22},
     "key 'port' of resource 'r' needs 'host' (it says how to reach a remote engine)"},
    {"unknown scheduler",
     {.name = "r", .scheduler = "pbs"},
     "scheduler 'pbs' of resource 'r' is not supported"},
    {"drmaa_library on local",
     {.name = "r", .drmaa_library = "l.so"},
     "key 'drmaa_library' of resource 'r' is for the drmaa scheduler, not local"},
    {"drmaa_library on slurm",
     {.name = "r", .scheduler = "slurm", .drmaa_library = "l.so"},
     "key 'drmaa_library' of resource 'r' is for the drmaa scheduler, not slurm"},
    {"interval on local",
     {.name = "r", .poll_interval = 1},
     "key 'poll_interval' of resource 'r' is for cluster schedulers; the local scheduler needs "
     "no polling"},
    {"queue on local",
     {.name = "r", .scheduler = "local", .queue = "q"},
     "key 'queue' of resource 'r': the local scheduler has no queues"},
    {"empty queue on local",
     {.name = "r", .queue = ""},
     "key 'queue' of resource 'r': the local scheduler has no queues"},
    {"slots on slurm",
     {.name = "r", .scheduler = "slurm", .slots = 2},
     "key 'slots' of resource 'r' is for the local scheduler; slurm schedules its jobs itself"},
    {"slots on drmaa",
     {.name = "r", .scheduler = "drmaa", .slots = 2},
     "key 'slots' of resource 'r' is for the local scheduler; drmaa schedules its jobs itself"},
    {"max_running on local", {.name = "r", .max_running = 4}, NULL},
    {"max_queued on slurm", {.name = "r", .scheduler = "slurm", .max_queued = 4}, NULL},
    {"max_queued on drmaa", {.name = "r", .scheduler = "drmaa", .max_queued = 4}, NULL},
    {"max_queued on local",
     {.name = "r", .max_queued = 4},
     "key 'max_queued' of resource 'r' is for a cluster scheduler; the local scheduler's is "
     "'max_running'"},
    {"max_running on slurm",
     {.name = "r", .scheduler = "slurm", .max_running = 4},
     "key 'max_running' of resource 'r' is for the local scheduler; a cluster scheduler's is "
     "'max_queued' (its jobs in the cluster's queue)"},
    {"max_running on drmaa",
     {.name = "r", .scheduler = "drmaa", .max_running = 4},
     "key 'max_running' of resource 'r' is for the local scheduler; a cluster scheduler's is "
     "'max_queued' (its jobs in the cluster's queue)"},
    {"ssh keys are checked first",
     {.name = "r", .login = "u", .scheduler = "pbs"},
     "key 'login' of resource 'r' needs 'host' (it says how to reach a remote engine)"},
};

static void check_supported(const struct supported_case *c)
{
	char err[512] = "";

	unit_case("supported: %s", c->name);
	CHECK_INT(ferry__resource_supported(&c->r, err, sizeof(err)), ==, (c->err ? -1 : 0));
	CHECK_STR(err, c->err ? c->err : "");
}

static const char resources[] = "[a]\nscheduler = slurm\nqueue = q\n[local]\nslots = 2\n";

static const struct resolve_case {
	const char *name, *file; /* file: '@' is the temporary directory; NULL: the default */
	const char *resource;
	int with_sets;
	const char *sets[3];
	const char *err; /* '@' as in file; NULL: resolves */
	res_t want;
} resolve_cases[] = {
    {"a section",
     "@/r.conf",
     "a",
     0,
     {NULL},
     NULL,
     {.name = "a", .scheduler = "slurm", .queue = "q"}},
    {"local by default", "@/r.conf", NULL, 0, {NULL}, NULL, {.name = "local", .slots = 2}},
    {"local by name", "@/r.conf", "local", 0, {NULL}, NULL, {.name = "local", .slots = 2}},
    {"local without a section", "@/a.conf", "local", 0, {NULL}, NULL, {.name = "local"}},
    {"unknown resource",
     "@/r.conf",
     "zz",
     0,
     {NULL},
     "unknown resource 'zz' (no [zz] section in '@/r.conf')",
     {0}},
    {"invalid name", "@/r.conf", "a b", 0, {NULL}, "invalid resource name 'a b'", {0}},
    {"name with a dot first", "@/r.conf", ".a", 0, {NULL}, "invalid resource name '.a'", {0}},
    {"empty name", "@/r.conf", "", 0, {NULL}, "invalid resource name ''", {0}},
    {"a given file must exist",
     "@/missing.conf",
     "local",
     0,
     {NULL},
     "cannot open '@/missing.conf': No such file or directory",
     {0}},
    {"a bad file fails every resource",
     "@/bad.conf",
     "local",
     0,
     {NULL},
     "@/bad.conf:3: invalid port '0'",
     {0}},
    {"sets define a resource",
     "@/r.conf",
     "remote",
     1,
     {"scheduler=slurm"},
     NULL,
     {.name = "remote", .scheduler = "slurm"}},
    {"no sets define one too", "@/r.conf", "remote", 1, {NULL}, NULL, {.name = "remote"}},
    {"sets over a section",
     "@/r.conf",
     "a",
     1,
     {"queue=b", "poll_interval=5"},
     NULL,
     {.name = "a", .scheduler = "slurm", .queue = "b", .poll_interval = 5}},
    {"sets over local", "@/r.conf", "local", 1, {"slots=3"}, NULL, {.name = "local", .slots = 3}},
    {"a set that is no engine key",
     "@/r.conf",
     "a",
     1,
     {"host=h"},
     "key 'host' cannot be set for an engine " ONLY_KEYS,
     {0}},
    {"a bad set value",
     "@/r.conf",
     "remote",
     1,
     {"queue=q", "slots=x"},
     "invalid slots 'x' (a number from 0 to 100000)",
     {0}},
    {"no file in XDG_CONFIG_HOME: local", NULL, "local", 0, {NULL}, NULL, {.name = "local"}},
    {"no file in XDG_CONFIG_HOME: another",
     NULL,
     "a",
     0,
     {NULL},
     "unknown resource 'a' (no configuration file '@/xdg/ferry/ferry.conf')",
     {0}},
};

static void check_resolve(const struct resolve_case *c)
{
	res_t out = {0};
	char err[512] = "", *file = c->file ? expand(c->file) : NULL, *want_err = NULL;
	int rc;

	unit_case("resolve: %s", c->name);
	rc = ferry__resolve_resource_set(file, c->resource, c->with_sets ? c->sets : NULL, &out,
					 err, sizeof(err));
	if (c->err) {
		want_err = expand(c->err);
		CHECK_INT(rc, ==, -1);
		CHECK_STR(err, want_err);
	} else if (CHECK_INT(rc, ==, 0)) {
		CHECK_STR(err, "");
		check_res(&out, &c->want);
		ferry__resource_cfg_release(&out);
	}
	if (!c->with_sets) { /* the same without sets */
		unit_case("resolve without sets: %s", c->name);
		rc = ferry__resolve_resource(file, c->resource, &out, err, sizeof(err));
		CHECK_INT(rc, ==, (c->err ? -1 : 0));
		if (rc == 0)
			ferry__resource_cfg_release(&out);
	}
	free(want_err);
	free(file);
}

/* The default file: $XDG_CONFIG_HOME/ferry/ferry.conf, else ~/.config/ferry/ferry.conf. */
static void check_default_file(void)
{
	char *home = expand("@/home"), err[512];
	res_t out = {0};

	unit_case("resolve: the file of XDG_CONFIG_HOME");
	CHECK_INT(write_tmp("xdg/ferry/ferry.conf", "[x]\nslots=5\n", 12), ==, 0);
	if (CHECK_INT(ferry__resolve_resource(NULL, "x", &out, err, sizeof(err)), ==, 0)) {
		check_res(&out, &(res_t){.name = "x", .slots = 5});
		ferry__resource_cfg_release(&out);
	}

	unit_case("resolve: the file of HOME, XDG_CONFIG_HOME relative");
	CHECK_INT(write_tmp("home/.config/ferry/ferry.conf", "[h]\nslots=6\n", 12), ==, 0);
	CHECK(home && setenv("HOME", home, 1) == 0);
	CHECK_INT(setenv("XDG_CONFIG_HOME", "relative/is/ignored", 1), ==, 0);
	if (CHECK_INT(ferry__resolve_resource(NULL, "h", &out, err, sizeof(err)), ==, 0)) {
		check_res(&out, &(res_t){.name = "h", .slots = 6});
		ferry__resource_cfg_release(&out);
	}

	unit_case("resolve: a bad default file fails local too");
	CHECK_INT(write_tmp("home/.config/ferry/ferry.conf", "[h]\nslots=-6\n", 13), ==, 0);
	CHECK_INT(ferry__resolve_resource(NULL, "local", &out, err, sizeof(err)), ==, -1);
	CHECK_CONTAINS(err, "/home/.config/ferry/ferry.conf:2: invalid slots '-6'");

	unit_case("resolve: no HOME and no XDG_CONFIG_HOME");
	unsetenv("XDG_CONFIG_HOME");
	unsetenv("HOME");
	if (CHECK_INT(ferry__resolve_resource(NULL, "local", &out, err, sizeof(err)), ==, 0)) {
		check_res(&out, &(res_t){.name = "local"});
		ferry__resource_cfg_release(&out);
	}
	CHECK_INT(ferry__resolve_resource(NULL, "a", &out, err, sizeof(err)), ==, -1);
	CHECK_STR(err, "unknown resource 'a' (no configuration file 'ferry.conf')");
	free(home);
}

static int setup(void)
{
	char tmpl[] = "/tmp/ferry-unit-cfg.XXXXXX";
	char *xdg;

	if (!mkdtemp(tmpl))
		return -1;
	snprintf(tmp, sizeof(tmp), "%s", tmpl);
	xdg = expand("@/xdg");
	if (!xdg || setenv("XDG_CONFIG_HOME", xdg, 1) < 0) {
		free(xdg);
		return -1;
	}
	free(xdg);
	if (write_tmp("r.conf", resources, sizeof(resources) - 1) < 0 ||
	    write_tmp("a.conf", "[a]\nslots=1\n", 12) < 0 ||
	    write_tmp("bad.conf", "[a]\n\nport=0\n", 12) < 0)
		return -1;
	return 0;
}

static void check_translation_file(void)
{
	static const struct {
		const char *value, *ns, *want;
	} cases[] = {
	    {"a{/t} ab{/u}", "a", "/t"},    {"a{/t} ab{/u}", "ab", "/u"},
	    {"a{/t} ab{/u}", "b", NULL},    {"ab{/u}", "a", NULL},
	    {"a{/t} b{/u/v}", "b", "/u/v"}, {NULL, "a", NULL},
	    {"a{/t}", "a{/t}", NULL},
	};
	char *file;

	for (size_t i = 0; i < FERRY_ARRAY_SIZE(cases); i++) {
		unit_case("translation file of '%s' in '%s'", cases[i].ns,
			  cases[i].value ? cases[i].value : "(none)");
		CHECK_INT(ferry__cfg_translation_file(cases[i].value, cases[i].ns, &file), ==, 0);
		CHECK_STR(file, cases[i].want);
		free(file);
	}
}

int main(void)
{
	for (size_t i = 0; i < FERRY_ARRAY_SIZE(parse_cases); i++)
		check_parse(&parse_cases[i]);
	check_long_lines();
	for (size_t i = 0; i < FERRY_ARRAY_SIZE(set_cases); i++)
		check_set(&set_cases[i]);
	check_set_twice();
	check_translation_file();
	for (size_t i = 0; i < FERRY_ARRAY_SIZE(settings_cases); i++)
		check_settings_list(&settings_cases[i]);
	for (size_t i = 0; i < FERRY_ARRAY_SIZE(check_cases); i++)
		check_check(&check_cases[i]);
	for (size_t i = 0; i < FERRY_ARRAY_SIZE(supported_cases); i++)
		check_supported(&supported_cases[i]);
	unit_case("temporary directory");
	if (CHECK_INT(setup(), ==, 0)) {
		check_files();
		for (size_t i = 0; i < FERRY_ARRAY_SIZE(resolve_cases); i++)
			check_resolve(&resolve_cases[i]);
		check_default_file();
	}
	if (tmp[0])
		ferry__rm_rf(tmp);
	return unit_done("test-cfg");
}
