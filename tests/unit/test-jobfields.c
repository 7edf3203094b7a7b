/*
 * test-jobfields.c - src/common/jobfields.c: a job object as the engine
 * sends it, through struct ferry_job_info, to the object the CLI prints;
 * the defaults of missing fields; the derived cpu_time.
 */
#include <stdlib.h>
#include <string.h>

#include "jobfields.h"
#include "unit.h"

/* The parts of a job object (docs/protocol.md) the cases share. */
#define ENDED_TIMES   "\"submitted_at\":100.5,\"started_at\":101.0,\"ended_at\":102.0,"
#define RUNNING_TIMES "\"submitted_at\":100.5,\"started_at\":101.0,\"ended_at\":null,"
#define USAGE                                                                                      \
	"\"cpu_time\":0.75,\"cpu_user\":0.5,\"cpu_sys\":0.25,\"max_rss_kb\":2048,"                 \
	"\"wall_time\":1.0,"
#define NO_USAGE                                                                                   \
	"\"cpu_time\":null,\"cpu_user\":null,\"cpu_sys\":null,\"max_rss_kb\":null,"                \
	"\"wall_time\":null,"
#define SPEC_PART                                                                                  \
	"\"message\":null,\"stdin_path\":null,\"stdout_path\":\"/o\",\"stderr_path\":null,"        \
	"\"join_stderrout\":true,\"working_directory\":\"/w\",\"env\":[\"A=1\"],"                  \
	"\"referenced_input_files\":[],\"referenced_output_files\":[\"/x\",\"/y\"],"               \
	"\"disposal_timeout_hours\":5,\"cpus\":4,\"memory_mb\":512,\"walltime_s\":60,"             \
	"\"tasks\":2,\"cpus_per_task\":2,\"nodes\":1,\"launcher\":\"mpi\","                        \
	"\"queue\":null,\"native_specification\":null,\"submission_key\":\"k\","                   \
	"\"backend\":\"local\",\"native_id\":\"42\",\"resource\":\"local\",\"workflow\":3,"        \
	"\"dependencies\":[1,2]}"
#define DONE                                                                                       \
	"{\"id\":7,\"name\":\"n\",\"command\":[\"sh\",\"-c\",\"x y\"],\"status\":\"done\","        \
	"\"exit_status\":\"finished_regularly\",\"exit_value\":0,\"signal\":0," ENDED_TIMES USAGE  \
	    SPEC_PART
#define RUNNING                                                                                    \
	"{\"id\":9,\"name\":\"r\",\"command\":[\"sleep\",\"9\"],\"status\":\"running\","           \
	"\"exit_status\":\"none\",\"exit_value\":null,\"signal\":null," RUNNING_TIMES NO_USAGE     \
	    SPEC_PART
#define SIGNALLED(exit_value)                                                                      \
	"{\"id\":8,\"name\":null,\"command\":[\"a\"],\"status\":\"failed\","                       \
	"\"exit_status\":\"finished_signal\",\"exit_value\":" exit_value                           \
	",\"signal\":9," ENDED_TIMES NO_USAGE SPEC_PART

static const struct round_case {
	const char *name;
	const char *in;	  /* as the engine sends it */
	const char *want; /* as the CLI prints it (compact) */
} round_cases[] = {
    {"done", DONE, DONE},
    {"running", RUNNING, RUNNING},
    /* the engine's null exit value of a signal's end is the struct's 0 */
    {"killed by a signal", SIGNALLED("null"), SIGNALLED("0")},
    /* nothing at all: the defaults of jobfields.h, in the table's order */
    {"empty object", "{}",
     "{\"id\":0,\"name\":null,\"command\":[],\"status\":\"undetermined\",\"exit_status\":\"none\","
     "\"exit_value\":null,\"signal\":null,\"submitted_at\":null,\"started_at\":null,"
     "\"ended_at\":null,\"cpu_time\":null,\"cpu_user\":null,\"cpu_sys\":null,\"max_rss_kb\":null,"
     "\"wall_time\":null,\"message\":null,\"stdin_path\":null,\"stdout_path\":null,"
     "\"stderr_path\":null,\"join_stderrout\":false,\"working_directory\":null,\"env\":[],"
     "\"referenced_input_files\":[],\"referenced_output_files\":[],"
     "\"disposal_timeout_hours\":168,\"cpus\":1,\"memory_mb\":0,\"walltime_s\":0,\"tasks\":1,"
     "\"cpus_per_task\":1,\"nodes\":0,\"launcher\":null,\"queue\":null,"
     "\"native_specification\":null,\"submission_key\":null,\"backend\":null,\"native_id\":null,"
     "\"resource\":null,\"workflow\":0,\"dependencies\":[]}"},
};

static void test_round_trip(void)
{
	for (size_t k = 0; k < sizeof(round_cases) / sizeof(round_cases[0]); k++) {
		const struct round_case *c = &round_cases[k];
		json_t *in = json_loads(c->in, 0, NULL), *out = NULL;
		struct ferry_job_info i;
		char *text = NULL;

		unit_case("%s", c->name);
		memset(&i, 0, sizeof(i));
		if (!CHECK(in) || !CHECK(ferry__job_from_json(in, &i) == 0))
			goto next;
		out = ferry__job_to_json(&i);
		text = out ? json_dumps(out, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
		CHECK_STR(text, c->want);
	next:
		free(text);
		json_decref(out);
		json_decref(in);
		ferry__job_release(&i);
	}
}

static void test_members(void)
{
	json_t *o = json_loads("{\"id\":12345678901,\"command\":[\"a\",7],\"status\":\"bogus\","
			       "\"exit_status\":\"killed_by_user\",\"memory_mb\":3.0,"
			       "\"cpu_user\":1.5,\"wall_time\":2,\"native_id\":\"n\","
			       "\"dependencies\":[5,\"x\",7]}",
			       0, NULL);
	struct ferry_job_info i;

	unit_case("members by type");
	memset(&i, 0, sizeof(i));
	if (!CHECK(o) || !CHECK(ferry__job_from_json(o, &i) == 0))
		goto out;
	CHECK_INT(i.id, ==, 12345678901);
	CHECK_STR(i.argv[0], "a");
	CHECK_STR(i.argv[1], ""); /* a non-string element */
	/* ids, 0-terminated: a non-integer element is -1, not the end */
	CHECK_INT(i.dependencies[0], ==, 5);
	CHECK_INT(i.dependencies[1], ==, -1);
	CHECK_INT(i.dependencies[2], ==, 7);
	CHECK_INT(i.dependencies[3], ==, 0);
	CHECK(i.argv[2] == NULL);
	CHECK_INT(i.status, ==, FERRY_UNDETERMINED);
	CHECK_INT(i.exit_status, ==, FERRY_KILLED_BY_USER);
	CHECK_INT(i.memory_mb, ==, 3);
	CHECK_DOUBLE(i.cpu_user_s, 1.5);
	CHECK_DOUBLE(i.cpu_sys_s, -1);
	CHECK_DOUBLE(i.wall_s, 2);
	CHECK_INT(i.max_rss_kb, ==, -1);
	CHECK_INT(i.cpus, ==, 1);
	CHECK_INT(i.disposal_timeout_hours, ==, 168);
	CHECK_STR(i.native_id, "n");
	CHECK(i.env && !i.env[0]);
	ferry__job_release(&i);

	/* what ferry_exit_info() uses allocates nothing */
	unit_case("scalars only");
	memset(&i, 0, sizeof(i));
	i.name = (char *)"untouched";
	ferry__job_scalars_from_json(o, &i);
	CHECK_STR(i.name, "untouched");
	CHECK(i.argv == NULL);
	CHECK_INT(i.exit_status, ==, FERRY_KILLED_BY_USER);
	CHECK_DOUBLE(i.cpu_user_s, 1.5);
out:
	json_decref(o);
}

static void test_derive(void)
{
	static const struct {
		const char *name, *in, *want;
	} cases[] = {
	    {"both parts", "{\"cpu_user\":1.5,\"cpu_sys\":0.25}", "1.75"},
	    {"integer parts", "{\"cpu_user\":1,\"cpu_sys\":2}", "3.0"},
	    {"no system part", "{\"cpu_user\":1.5,\"cpu_sys\":null}", "null"},
	    {"neither", "{}", "null"},
	};

	for (size_t k = 0; k < sizeof(cases) / sizeof(cases[0]); k++) {
		json_t *o = json_loads(cases[k].in, 0, NULL);
		char *text;

		unit_case("cpu_time: %s", cases[k].name);
		if (!CHECK(o) || !CHECK(ferry__job_derive(o) == 0)) {
			json_decref(o);
			continue;
		}
		text = json_dumps(json_object_get(o, "cpu_time"), JSON_ENCODE_ANY);
		CHECK_STR(text, cases[k].want);
		free(text);
		json_decref(o);
	}
}

int main(void)
{
	test_round_trip();
	test_members();
	test_derive();
	return unit_done("jobfields");
}
