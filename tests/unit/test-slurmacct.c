/*
 * test-slurmacct.c - the Slurm backend's reading of the jobcomp file
 * (src/backends/slurm-acct.c), its last source when accounting has no
 * record and slurmctld has purged the job.
 *
 * The records are as the real jobcomp/filetxt plugin writes them (a line
 * of KEY=VALUE per job; an array task's with ArrayJobId and ArrayTaskId).
 * Neither sacct nor scontrol is on the PATH while ferry__slurm_resolve()
 * runs, so the file is the only source, as in the case that once gave a
 * task that exited 3 the exit 0 of its array's first task: a record of
 * job A without array fields was taken for the remainder of array A.
 */
#include <stdlib.h>
#include <unistd.h>

#include "slurm.h"
#include "unit.h"
#include "util.h"

static const char records[] =
    /* the array's own id, with no array fields: job 100 only */
    "JobId=100 UserId=u(1) Name=ferry JobState=COMPLETED StartTime=2026-12-05T19:21:16 "
    "EndTime=2026-12-05T19:21:17 DerivedExitCode=0:0 ExitCode=0:0\n"
    /* task 100_2's own record */
    "JobId=102 UserId=u(1) Name=ferry JobState=FAILED ArrayJobId=100 ArrayTaskId=2 "
    "DerivedExitCode=0:0 ExitCode=3:0\n"
    /* the remainder of array 100 (NO_VAL task): tasks never started */
    "JobId=100 UserId=u(1) Name=ferry JobState=CANCELLED ArrayJobId=100 "
    "ArrayTaskId=4294967294 ExitCode=0:15\n"
    /* the remainder of array 300 as a range */
    "JobId=300 UserId=u(1) Name=ferry JobState=CANCELLED ArrayJobId=300 ArrayTaskId=5-7 "
    "ExitCode=0:15\n"
    /* a plain job, and one still running (no end: not taken) */
    "JobId=200 UserId=u(1) Name=ferry JobState=FAILED ExitCode=1:0\n"
    "JobId=201 UserId=u(1) Name=ferry JobState=RUNNING ExitCode=0:0\n";

static const struct want {
	const char *native, *state;
	int code, sig;
} wants[] = {
    {"100", "COMPLETED", 0, 0},	   /* the bare record names its own job */
    {"100_2", "FAILED", 3, 0},	   /* its own record, not the bare 100 nor the remainder */
    {"100_4", "CANCELLED", 0, 15}, /* no record of its own: the remainder's */
    {"300_6", "CANCELLED", 0, 15}, /* in the remainder's range */
    {"300_9", "", 0, 0},	   /* outside it: unresolved, asked again later */
    {"200", "FAILED", 1, 0},	   /* a plain job */
    {"201", "", 0, 0},		   /* still running */
};

int main(void)
{
	char dir[] = "/tmp/test-slurmacct.XXXXXX", path[64];
	struct sres r[sizeof(wants) / sizeof(wants[0])];
	struct slurm_resolve x = {.cancel_fd = -1, .nofile = 1024, .accounting = 1};
	FILE *f;

	memset(r, 0, sizeof(r));
	if (!mkdtemp(dir))
		return 2;
	snprintf(path, sizeof(path), "%s/jobcomp.log", dir);
	if (!(f = fopen(path, "w")) || fputs(records, f) < 0 || fclose(f))
		return 2;
	setenv("PATH", dir, 1); /* no sacct, no scontrol: the file alone */
	x.jobcomp = path;
	for (size_t i = 0; i < FERRY_ARRAY_SIZE(wants); i++)
		snprintf(r[i].native, sizeof(r[i].native), "%s", wants[i].native);
	ferry__slurm_resolve(&x, r, FERRY_ARRAY_SIZE(r));
	for (size_t i = 0; i < FERRY_ARRAY_SIZE(wants); i++) {
		unit_case("%s", wants[i].native);
		CHECK_STR(r[i].state, wants[i].state);
		if (!wants[i].state[0])
			continue;
		CHECK_INT(r[i].code, ==, wants[i].code);
		CHECK_INT(r[i].sig, ==, wants[i].sig);
	}
	unit_case("the finished records' times");
	CHECK_DOUBLE(r[0].end - r[0].start, 1.0);
	unlink(path);
	rmdir(dir);
	return unit_done("slurmacct");
}
