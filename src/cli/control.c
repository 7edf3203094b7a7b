/*
 * control.c - stop, restart, hold, release, kill and dispose: of the jobs
 * named by id, one request each as before; of a selection (--all,
 * --state, --name, id ranges FIRST-LAST), one request in all, which the
 * engine applies in one transaction and answers with counts.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

/* How many refusals the summary line names (--json has all the engine named). */
#define SHOWN_REFUSALS 3

struct control_opts {
	int all;
	struct cli_states states;
	const char *name;
	ferry_job_id (*ranges)[2];
	size_t nranges;
	int any_range; /* an argument was FIRST-LAST: a selection, not ids */
	int64_t workflow;
};

static int control_opt(struct ctx *c, void *data, int opt, const char *arg)
{
	struct control_opts *o = data;

	switch (opt) {
	case 'a':
		o->all = 1;
		break;
	case 's':
		return ferry__cli_add_state(c, &o->states, arg, 0);
	case OPT_NAME:
		if (!*arg) {
			ferry__cli_errorf(c, "--name takes a non-empty glob");
			return ferry__cli_usage_error(c);
		}
		o->name = arg;
		break;
	case OPT_WORKFLOW:
		return ferry__cli_workflow_id(c, arg, &o->workflow) < 0 ? ferry__cli_usage_error(c)
									: CLI_OK;
	default:
		return ferry__cli_usage_error(c);
	}
	return CLI_OK;
}

/* The arguments: ids and FIRST-LAST ranges. */
static int parse_ranges(struct ctx *c, int argc, char **argv, struct control_opts *o)
{
	size_t n = (size_t)(argc - optind);

	if (!n)
		return CLI_OK;
	if (!(o->ranges = calloc(n, sizeof(*o->ranges))))
		return ferry__cli_out_of_memory(c);
	for (size_t i = 0; i < n; i++) {
		if (ferry__cli_parse_range(c, argv[optind + (int)i], o->ranges[i]) < 0)
			return ferry__cli_usage_error(c);
		o->any_range |= o->ranges[i][0] != o->ranges[i][1] ||
				strchr(argv[optind + (int)i], '-') != NULL;
	}
	o->nranges = n;
	return CLI_OK;
}

/* Plain ids: one request each, each failure named (as before selections). */
static int control_ids(struct ctx *c, const struct control_opts *o)
{
	int ret = CLI_OK, rc;

	for (size_t i = 0; i < o->nranges; i++) {
		rc = c->cmd->action(c->conn, o->ranges[i][0]);
		if (rc < 0)
			ret = ferry__cli_report_id(c, o->ranges[i][0], rc);
	}
	return ret;
}

static const struct {
	const char *cmd, *done;
	enum ferry_control action;
} actions[] = {
    {"stop", "stopped", FERRY_CONTROL_STOP}, {"restart", "restarted", FERRY_CONTROL_RESTART},
    {"hold", "held", FERRY_CONTROL_HOLD},    {"release", "released", FERRY_CONTROL_RELEASE},
    {"kill", "killed", FERRY_CONTROL_KILL},  {"dispose", "disposed", FERRY_CONTROL_DISPOSE},
};

static json_t *result_json(const struct ferry_control_result *res)
{
	json_t *errors = json_array();

	for (size_t i = 0; errors && i < res->nerrors; i++)
		json_array_append_new(errors,
				      json_pack("{s:I,s:s}", "id", (json_int_t)res->errors[i].id,
						"message", res->errors[i].message));
	return json_pack("{s:I,s:I,s:I,s:o*}", "matched", (json_int_t)res->matched, "changed",
			 (json_int_t)res->changed, "failed", (json_int_t)res->failed, "errors",
			 errors);
}

/* "N jobs killed (M matched; K not: first reasons)"; 4 when some were not. */
int ferry__cli_print_control(const struct ctx *c, const char *done,
			     const struct ferry_control_result *res)
{
	if (c->json) {
		int rc = ferry__cli_print_json(c, result_json(res), JSON_COMPACT); /* takes it */
		if (rc != CLI_OK)
			return rc;
	} else {
		printf("%zu job%s %s (%zu matched", res->changed, res->changed == 1 ? "" : "s",
		       done, res->matched);
		if (res->failed)
			printf("; %zu not:", res->failed);
		for (size_t i = 0; res->failed && i < res->nerrors && i < SHOWN_REFUSALS; i++)
			printf("%s %s", i ? ";" : "", res->errors[i].message);
		if (res->failed > SHOWN_REFUSALS)
			printf("; ...");
		printf(")\n");
	}
	return res->failed ? CLI_FAILED : CLI_OK;
}

static int control_selection(struct ctx *c, const struct control_opts *o)
{
	struct ferry_selection sel = {.all = o->all,
				      .states = o->states.v,
				      .nstates = o->states.n,
				      .name = o->name,
				      .ranges = (const ferry_job_id(*)[2])o->ranges,
				      .nranges = o->nranges};
	struct ferry_control_result *res = malloc(sizeof(*res));
	size_t k = 0;
	int rc;

	if (!res)
		return ferry__cli_out_of_memory(c);
	while (strcmp(actions[k].cmd, c->cmd->name))
		k++;
	rc = o->workflow > 0
		 ? ferry_control_workflow(c->conn, o->workflow, &sel, actions[k].action, res)
		 : ferry_control_select(c->conn, &sel, actions[k].action, res);
	rc = rc < 0 ? ferry__cli_report(c, rc) : ferry__cli_print_control(c, actions[k].done, res);
	free(res);
	return rc;
}

int ferry__cli_cmd_control(struct ctx *c, int argc, char **argv)
{
	static const struct option opts[] = {
	    {"help", no_argument, NULL, 'h'},
	    {"json", no_argument, NULL, OPT_JSON},
	    {"all", no_argument, NULL, 'a'},
	    {"state", required_argument, NULL, 's'},
	    {"name", required_argument, NULL, OPT_NAME},
	    {"workflow", required_argument, NULL, OPT_WORKFLOW},
	    {0},
	};
	struct control_opts o = {0};
	int rc, selection;

	rc = ferry__cli_parse_opts(c, argc, argv, "has:", opts, control_opt, &o);
	if (rc == CLI_OK)
		rc = parse_ranges(c, argc, argv, &o);
	selection = o.all || o.states.n || o.name || o.workflow || o.any_range;
	if (rc == CLI_OK && !selection && !o.nranges) {
		ferry__cli_errorf(c, "no job id given");
		rc = ferry__cli_usage_error(c);
	}
	if (rc == CLI_OK && ferry__cli_connect(c) < 0)
		rc = CLI_ERR;
	if (rc == CLI_OK)
		rc = selection ? control_selection(c, &o) : control_ids(c, &o);
	free(o.ranges);
	return rc;
}
