/*
 * test-slurmnative.c - a job's native specification as sbatch reads it
 * (src/backends/slurm-native.c): the words handed to sbatch, or the
 * error at submission.
 *
 * What sbatch does with each case was checked on sbatch 22.05.8 (the
 * test cluster's): "-kv" fails "Invalid --no-kill specification" (getopt
 * gives -k's optional value the rest of its word), "-vkoff" is -v
 * --no-kill=off, and "-k off" makes 'off' the script ("Unable to open
 * file off").
 */
#include <stdlib.h>

#include "ferry.h"
#include "slurm.h"
#include "unit.h"
#include "util.h"

static const struct want {
	const char *native;
	int rc;
	const char *out; /* the words joined by '|'; with rc < 0, what err holds */
} wants[] = {
    /* groups split as getopt reads them; a value option ends the group */
    {"-Ov", 0, "-O|-v"},
    {"-vn4", 0, "-v|-n4"},
    {"-On 2", 0, "-O|-n|2"},
    {"-p debug --nice -v", 0, "-p|debug|--nice|-v"},
    {"--partition debug", 0, "--partition|debug"}, /* a long option's value may follow */
    {"-10", 0, "-10"},
    /* -k's value is optional: only the rest of its word */
    {"-k", 0, "-k"},
    {"-koff", 0, "-koff"},
    {"-vkoff", 0, "-v|-koff"},
    {"-vk", 0, "-v|-k"},
    {"-k -v", 0, "-k|-v"},
    {"-kNo --no-kill=SET", 0, "-kNo|--no-kill=SET"},
    {"-kv", FERRY_EINVAL, "'-kv' gives --no-kill the value 'v', which sbatch refuses"},
    {"-vkv", FERRY_EINVAL, "'-kv' gives --no-kill the value 'v'"},
    {"--no-kill=yes", FERRY_EINVAL, "gives --no-kill the value 'yes'"},
    {"-k off", FERRY_EINVAL,
     "'off' is not an sbatch option: -k takes its value attached ('-koff')"},
    {"-vk off", FERRY_EINVAL, "-k takes its value attached"},
    {"--no-kill off", FERRY_EINVAL, "--no-kill takes its value after '=' ('--no-kill=off')"},
    {"--exclusive user", FERRY_EINVAL, "--exclusive takes its value after '='"},
    /* after an option that takes no value, a word is the script */
    {"-O extra", FERRY_EINVAL, "'extra' is not an sbatch option nor the value of one"},
    {"--overcommit extra", FERRY_EINVAL, "'extra' is not an sbatch option nor the value"},
    {"-p debug extra", FERRY_EINVAL, "'extra' is not an sbatch option nor the value"},
    {"notanoption", FERRY_EINVAL, "'notanoption' is not an sbatch option"},
    /* letters sbatch 22.05 has not */
    {"-vI5", FERRY_EINVAL, "'-I' in '-vI5' is not an sbatch option"},
    {"-vu", FERRY_EINVAL, "'-u' in '-vu' is not an sbatch option"},
    /* ferry's own, and what ferry cannot follow, in a group too */
    {"-Hv", FERRY_EINVAL, "option '-H' is ferry's own"},
    {"-kJx", FERRY_EINVAL, "gives --no-kill the value 'Jx'"},
    {"-vW", FERRY_EUNSUPPORTED, "option '-W' is not supported"},
    {"-vV", FERRY_EUNSUPPORTED, "sbatch would print its version"},
    {"--help", FERRY_EUNSUPPORTED, "sbatch would print its help"},
    {"--comment 'x", FERRY_EINVAL, "unterminated single quote"},
};

static char *joined(char **w)
{
	size_t len = 1;
	char *s;

	for (size_t i = 0; w && w[i]; i++)
		len += strlen(w[i]) + 1;
	if (!(s = calloc(1, len)))
		abort();
	for (size_t i = 0; w && w[i]; i++) {
		if (i)
			strcat(s, "|");
		strcat(s, w[i]);
	}
	return s;
}

int main(void)
{
	char err[512], **w, *s;
	int rc;

	for (size_t i = 0; i < FERRY_ARRAY_SIZE(wants); i++) {
		unit_case("%s", wants[i].native);
		err[0] = '\0';
		rc = ferry__slurm_native_words(wants[i].native, &w, err, sizeof(err));
		CHECK_INT(rc, ==, wants[i].rc);
		if (wants[i].rc == 0) {
			s = joined(w);
			CHECK_STR(s, wants[i].out);
			free(s);
		} else {
			CHECK(w == NULL);
			CHECK_CONTAINS(err, wants[i].out);
		}
		ferry__strv_free(w);
	}
	unit_case("no native specification");
	CHECK_INT(ferry__slurm_native_words(NULL, &w, err, sizeof(err)), ==, 0);
	CHECK(w == NULL);
	return unit_done("slurmnative");
}
