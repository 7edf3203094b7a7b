/*
 * test-names.c - the names of src/common/names.c: the kinds and states of
 * transfers, and the job states, both ways. The names are the protocol's
 * strings and what `ferry transfers` prints, so each is spelled out here:
 * renaming one breaks clients of other versions and this test.
 */
#include <limits.h>

#include "ferry.h"
#include "unit.h"
#include "util.h"

static const struct kind_case {
	enum ferry_transfer_kind kind;
	const char *name;
} kind_cases[] = {
    {FERRY_TRANSFER_SEND, "send"},
    {FERRY_TRANSFER_REGISTER, "register"},
};

static const struct state_case {
	enum ferry_transfer_state state;
	const char *name;
} state_cases[] = {
    {FERRY_TRANSFER_TRANSFERRING, "transferring"}, {FERRY_TRANSFER_READY, "ready"},
    {FERRY_TRANSFER_REGISTERED, "registered"},	   {FERRY_TRANSFER_PRODUCED, "produced"},
    {FERRY_TRANSFER_RETRIEVED, "retrieved"},
};

/* No name: case and blanks matter, and a kind is no state nor the other way round. */
static const char *const bad_names[] = {
    "", "Send", "READY", " ready", "ready ", "read", "readyx", "queued_active", "none", "0",
};

static void check_kinds(void)
{
	enum ferry_transfer_kind k;

	for (size_t i = 0; i < FERRY_ARRAY_SIZE(kind_cases); i++) {
		const struct kind_case *c = &kind_cases[i];
		unit_case("transfer kind %s", c->name);
		CHECK_STR(ferry_transfer_kind_name(c->kind), c->name);
		k = (enum ferry_transfer_kind) - 1;
		CHECK_INT(ferry_transfer_kind_from_name(c->name, &k), ==, 0);
		CHECK_INT(k, ==, c->kind);
		CHECK_INT(ferry_transfer_state_from_name(c->name, &(enum ferry_transfer_state){0}),
			  ==, FERRY_EINVAL);
	}
	unit_case("transfer kind out of range");
	CHECK_STR(ferry_transfer_kind_name((enum ferry_transfer_kind)FERRY_ARRAY_SIZE(kind_cases)),
		  NULL);
	CHECK_STR(ferry_transfer_kind_name((enum ferry_transfer_kind) - 1), NULL);
	CHECK_STR(ferry_transfer_kind_name((enum ferry_transfer_kind)INT_MAX), NULL);
	for (size_t i = 0; i < FERRY_ARRAY_SIZE(bad_names); i++) {
		unit_case("transfer kind of unknown name '%s'", bad_names[i]);
		CHECK_INT(ferry_transfer_kind_from_name(bad_names[i], &k), ==, FERRY_EINVAL);
	}
	unit_case("transfer kind of NULL");
	CHECK_INT(ferry_transfer_kind_from_name(NULL, &k), ==, FERRY_EINVAL);
}

static void check_states(void)
{
	enum ferry_transfer_state s;

	for (size_t i = 0; i < FERRY_ARRAY_SIZE(state_cases); i++) {
		const struct state_case *c = &state_cases[i];
		unit_case("transfer state %s", c->name);
		CHECK_STR(ferry_transfer_state_name(c->state), c->name);
		s = (enum ferry_transfer_state) - 1;
		CHECK_INT(ferry_transfer_state_from_name(c->name, &s), ==, 0);
		CHECK_INT(s, ==, c->state);
		CHECK_INT(ferry_transfer_kind_from_name(c->name, &(enum ferry_transfer_kind){0}),
			  ==, FERRY_EINVAL);
	}
	unit_case("transfer state out of range");
	CHECK_STR(
	    ferry_transfer_state_name((enum ferry_transfer_state)FERRY_ARRAY_SIZE(state_cases)),
	    NULL);
	CHECK_STR(ferry_transfer_state_name((enum ferry_transfer_state) - 1), NULL);
	CHECK_STR(ferry_transfer_state_name((enum ferry_transfer_state)INT_MAX), NULL);
	for (size_t i = 0; i < FERRY_ARRAY_SIZE(bad_names); i++) {
		unit_case("transfer state of unknown name '%s'", bad_names[i]);
		CHECK_INT(ferry_transfer_state_from_name(bad_names[i], &s), ==, FERRY_EINVAL);
	}
	unit_case("transfer state of NULL");
	CHECK_INT(ferry_transfer_state_from_name(NULL, &s), ==, FERRY_EINVAL);
}

/* The job states, whose functions the transfers' follow: every value both ways. */
static void check_job_states(void)
{
	enum ferry_job_status s;

	for (int v = FERRY_UNDETERMINED; v <= FERRY_FAILED; v++) {
		const char *name = ferry_status_name((enum ferry_job_status)v);
		unit_case("job state %d", v);
		if (!CHECK(name != NULL))
			continue;
		CHECK_INT(ferry_status_from_name(name, &s), ==, 0);
		CHECK_INT(s, ==, v);
	}
	unit_case("job state names");
	CHECK_STR(ferry_status_name(FERRY_QUEUED_ACTIVE), "queued_active");
	CHECK_STR(ferry_status_name(FERRY_USER_SYSTEM_SUSPENDED), "user_system_suspended");
	CHECK_STR(ferry_status_name((enum ferry_job_status)(FERRY_FAILED + 1)), NULL);
	CHECK_INT(ferry_status_from_name("ready", &s), ==, FERRY_EINVAL);
	CHECK_INT(ferry_status_from_name(NULL, &s), ==, FERRY_EINVAL);
}

int main(void)
{
	check_kinds();
	check_states();
	check_job_states();
	return unit_done("test-names");
}
