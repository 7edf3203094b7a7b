/*
 * slurm-native.c - a job's native specification as sbatch will read it:
 * split into words, its groups of short options taken apart as getopt
 * takes them, and each option checked against those ferry sets itself
 * and those that would take the job where ferry cannot follow it. A word
 * that is neither an option nor an option's value is refused too: sbatch
 * would take it for its script.
 */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "ferry.h"
#include "slurm.h"
#include "util.h"

/* Options of the native specification that ferry sets itself. */
static const char *const owned[] = {
    "-a", "--array", "--parsable", "-o", "--output",   "-e",	 "--error", "-i",     "--input",
    "-D", "--chdir", "--comment",  "-J", "--job-name", "--wrap", "-H",	    "--hold",
};

#define HELP	"sbatch would print its help and submit nothing"
#define VERSION "sbatch would print its version and submit nothing"

/* Options that would take a job where ferry cannot follow it, and why. */
static const struct {
	const char *opt, *why;
} unfollowed[] = {
    {"-M", "the job would run on another cluster, which ferry does not watch"},
    {"--clusters", "the job would run on another cluster, which ferry does not watch"},
    {"-W", "sbatch would wait for the job to end"},
    {"--wait", "sbatch would wait for the job to end"},
    {"--test-only", "sbatch would submit nothing"},
    {"-Q", "sbatch would not print the job's id"},
    {"--quiet", "sbatch would not print the job's id"},
    {"-h", HELP},
    {"--help", HELP},
    {"--usage", HELP},
    {"-V", VERSION},
    {"--version", VERSION},
};

/*
 * sbatch's short options (Slurm 22.05.8, each letter tried on sbatch):
 * those whose value is required, attached or the next word ("-p x",
 * "-px"), which end a group ("-vn4" is -v -n 4); -k (--no-kill[=off]),
 * whose value is optional and so, as getopt's "k::" reads it, only the
 * rest of its word: "-kv" is --no-kill=v, and in "-k off" 'off' is no
 * value but sbatch's script; and those that take none.
 */
static const char short_value[] = "AaBbCcDdeFGiJLMmNnopqStwx";
static const char short_optional[] = "k";
static const char short_flag[] = "HhOQsVvW";

/* Long options whose value is optional: only after '=', never the next word. */
static const char *const long_optional[] = {
    "--exclusive", "--get-user-env", "--nice", "--no-kill", "--propagate",
};

/* Long options that take no value (sbatch(1) of Slurm 22.05.8, each tried). */
static const char *const long_flag[] = {
    "--contiguous", "--help",	       "--hold",      "--ignore-pbs", "--no-requeue",
    "--overcommit", "--oversubscribe", "--parsable",  "--quiet",      "--reboot",
    "--requeue",    "--spread-job",    "--test-only", "--usage",      "--use-min-nodes",
    "--verbose",    "--version",       "--wait",
};

/* The values sbatch takes for --no-kill (arg_set_no_kill), case aside. */
static const char *const no_kill_values[] = {"off", "no", "set"};

int ferry__slurm_names_option(const char *word, const char *opt)
{
	size_t nl = strcspn(word, "=");

	if (opt[1] == '-')
		return word[0] == '-' && word[1] == '-' && nl > 2 && nl <= strlen(opt) &&
		       !strncmp(word, opt, nl);
	return word[0] == '-' && word[1] == opt[1] && word[1] != '-';
}

static int listed(const char *word, const char *const *list, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (!strcmp(word, list[i]))
			return 1;
	return 0;
}

/* Whether getopt would take the word after word as its value. */
static int takes_next(const char *word)
{
	if (word[0] != '-' || !word[1])
		return 0;
	if (word[1] != '-')
		return strchr(short_value, word[1]) && !word[2];
	/* a long option ferry has no list of may take one: its next word is let be */
	return !strchr(word, '=') &&
	       !listed(word, long_optional, FERRY_ARRAY_SIZE(long_optional)) &&
	       !listed(word, long_flag, FERRY_ARRAY_SIZE(long_flag));
}

/*
 * Word w[i] as getopt reads it: a group of short options ("-Hv") split
 * into one word each ("-H", "-v"), a value attached to the last of them
 * kept with it ("-vn4": "-v", "-n4"; "-vkoff": "-v", "-koff"), so that
 * each is checked like a long one. A letter sbatch has not is refused
 * rather than let through unchecked. 0, FERRY_EINVAL (err set) or
 * FERRY_ENOMEM.
 */
static int split_group(const char *native, char ***w, size_t i, char *err, size_t errlen)
{
	char *g = (*w)[i], **v;
	size_t n = ferry__strv_len(*w), k = 1, parts, m;

	/* "-10" is a value (sbatch has no digit option), as "-5" already was */
	if (g[0] != '-' || g[1] == '-' || !g[1] || !g[2] || strchr(short_value, g[1]) ||
	    strchr(short_optional, g[1]) || isdigit((unsigned char)g[1]))
		return 0;
	for (; g[k] && !strchr(short_value, g[k]) && !strchr(short_optional, g[k]); k++)
		if (!strchr(short_flag, g[k]))
			return ferry__fail(err, errlen, FERRY_EINVAL,
					   "native specification '%s': '-%c' in '%s' is not an "
					   "sbatch option",
					   native, g[k], g);
	parts = k - 1 + (g[k] != '\0'); /* the flags, then a value option with its value */
	if (!(v = calloc(n + parts, sizeof(*v))))
		return FERRY_ENOMEM;
	for (m = 0; m < parts; m++)
		if (!(v[i + m] = m < k - 1 ? ferry__asprintf("-%c", g[m + 1])
					   : ferry__asprintf("-%s", g + k)))
			break;
	if (m < parts) {
		while (m--)
			free(v[i + m]);
		free(v);
		return FERRY_ENOMEM;
	}
	memcpy(v, *w, i * sizeof(*v));
	memcpy(v + i + parts, *w + i + 1, (n - i) * sizeof(*v)); /* its NULL too */
	free(g);
	free(*w);
	*w = v;
	return 0;
}

/*
 * A word that is no option where none takes it as a value: sbatch would
 * read it as its script. prev: the word before (NULL for the first).
 */
static int stray_word(const char *native, const char *word, const char *prev, char *err,
		      size_t errlen)
{
	if (prev && ferry__slurm_names_option(prev, "-k") && !prev[2])
		return ferry__fail(err, errlen, FERRY_EINVAL,
				   "native specification '%s': '%s' is not an sbatch option: "
				   "-k takes its value attached ('-k%s'), so sbatch would read "
				   "'%s' as its script",
				   native, word, word, word);
	if (prev && listed(prev, long_optional, FERRY_ARRAY_SIZE(long_optional)))
		return ferry__fail(err, errlen, FERRY_EINVAL,
				   "native specification '%s': '%s' is not an sbatch option: "
				   "%s takes its value after '=' ('%s=%s'), so sbatch would read "
				   "'%s' as its script",
				   native, word, prev, prev, word, word);
	return ferry__fail(
	    err, errlen, FERRY_EINVAL, "native specification '%s': '%s' is not an sbatch option%s",
	    native, word, prev ? " nor the value of one (sbatch would read it as its script)" : "");
}

/* --no-kill's value, attached ("-koff", "--no-kill=off"): one sbatch takes. */
static int check_no_kill(const char *native, const char *word, char *err, size_t errlen)
{
	const char *v = NULL;

	if (word[1] != '-' && ferry__slurm_names_option(word, "-k") && word[2])
		v = word + 2;
	else if (ferry__slurm_names_option(word, "--no-kill") && strchr(word, '='))
		v = strchr(word, '=') + 1;
	if (!v)
		return 0;
	for (size_t k = 0; k < FERRY_ARRAY_SIZE(no_kill_values); k++)
		if (!strcasecmp(v, no_kill_values[k]))
			return 0;
	return ferry__fail(
	    err, errlen, FERRY_EINVAL,
	    "native specification '%s': '%s' gives --no-kill the value '%s', which "
	    "sbatch refuses: it takes 'off', 'no' or 'set' (an optional value is the "
	    "rest of its word: '-kv' is not '-k -v')",
	    native, word, v);
}

/* One option word (split): ferry's own, not followed, or a bad --no-kill value. */
static int check_option(const char *native, const char *word, char *err, size_t errlen)
{
	for (size_t k = 0; k < FERRY_ARRAY_SIZE(owned); k++)
		if (ferry__slurm_names_option(word, owned[k]))
			return ferry__fail(err, errlen, FERRY_EINVAL,
					   "native specification '%s': option '%s' is ferry's own "
					   "(use the job's fields)",
					   native, owned[k]);
	for (size_t k = 0; k < FERRY_ARRAY_SIZE(unfollowed); k++)
		if (ferry__slurm_names_option(word, unfollowed[k].opt))
			return ferry__fail(
			    err, errlen, FERRY_EUNSUPPORTED,
			    "native specification '%s': option '%s' is not supported: "
			    "%s",
			    native, unfollowed[k].opt, unfollowed[k].why);
	return check_no_kill(native, word, err, errlen);
}

int ferry__slurm_native_words(const char *native, char ***words, char *err, size_t errlen)
{
	const char *why = NULL;
	char **w = NULL;
	int rc = 0, value_next = 0;

	*words = NULL;
	if (!native)
		return 0;
	if ((rc = ferry__split_words(native, &w, &why)) < 0)
		return ferry__fail(err, errlen, rc == -ENOMEM ? FERRY_ENOMEM : FERRY_EINVAL,
				   "native specification '%s': %s", native,
				   rc == -ENOMEM ? "out of memory" : why);
	for (size_t i = 0; w[i] && !rc; i++) {
		if (w[i][0] != '-' || !w[i][1]) {
			/* a value of the option before, or sbatch's script */
			if (!value_next)
				rc = stray_word(native, w[i], i ? w[i - 1] : NULL, err, errlen);
			value_next = 0;
			continue;
		}
		if (!(rc = split_group(native, &w, i, err, errlen)))
			rc = check_option(native, w[i], err, errlen);
		/* the group's other words come next in w, each checked in turn */
		value_next = takes_next(w[i]);
	}
	if (rc) {
		ferry__strv_free(w);
		return rc;
	}
	*words = w;
	return 0;
}
