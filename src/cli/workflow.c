/*
 * workflow.c - ferry workflow submit|status|wait|jobs|stop|restart|dispose,
 * and ferry workflows
 * (docs/workflows.md): a workflow file goes to the engine as it is, in one
 * call (ferry_submit_workflow()); what the engine says of it is printed.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

int ferry__cli_workflow_id(const struct ctx *c, const char *arg, int64_t *wf)
{
	long long v;

	if (ferry__cli_int_option(c, "--workflow", arg, 1, INT64_MAX, &v) < 0)
		return -1;
	*wf = v;
	return 0;
}

/* The file's whole text (malloc'd, NUL-terminated), or NULL after saying why. */
static char *read_all(const struct ctx *c, const char *path)
{
	FILE *f = strcmp(path, "-") ? fopen(path, "re") : stdin;
	size_t len = 0, cap = 65536, got;
	char *buf = NULL, *nb;

	if (!f) {
		ferry__cli_errorf(c, "cannot open '%s': %s", path, ferry__cli_errno_str(errno));
		return NULL;
	}
	do {
		if (len + 1 >= cap || !buf) {
			if (!(nb = realloc(buf, cap *= 2))) {
				ferry__cli_out_of_memory(c);
				goto fail;
			}
			buf = nb;
		}
		len += got = fread(buf + len, 1, cap - len - 1, f);
	} while (got);
	if (ferror(f)) {
		ferry__cli_errorf(c, "cannot read '%s': %s", path, ferry__cli_errno_str(errno));
		goto fail;
	}
	if (memchr(buf, '\0', len)) {
		ferry__cli_errorf(c, "'%s' holds a NUL byte (not a text file?)", path);
		goto fail;
	}
	buf[len] = '\0';
	if (f != stdin)
		fclose(f);
	return buf;
fail:
	free(buf);
	if (f != stdin)
		fclose(f);
	return NULL;
}

/*
 * Whether the workflow file's top-level object names key: a job's own
 * base_env, or a job named so, is not the file's. A scan of the text
 * (strings skipped, depth counted) rather than a parse, which would cost
 * a 100,000-job file a third of a second before it is sent.
 */
static int top_level_key(const char *text, const char *key)
{
	size_t klen = strlen(key);
	const char *p = text, *s, *q;
	int depth = 0;

	for (; *p; p++) {
		if (*p == '{' || *p == '[')
			depth++;
		else if (*p == '}' || *p == ']')
			depth--;
		if (*p != '"')
			continue;
		for (s = ++p; *p && *p != '"'; p += p[0] == '\\' && p[1] ? 2 : 1)
			;
		if (!*p)
			return 0;
		q = p + 1 + strspn(p + 1, " \t\r\n");
		if (depth == 1 && *q == ':' && (size_t)(p - s) == klen && !memcmp(s, key, klen))
			return 1;
	}
	return 0;
}

static int wf_submit(struct ctx *c, const char *path, int env_clean)
{
	char *text = read_all(c, path);
	const char **env = NULL;
	ferry_workflow_id id;
	int rc;

	if (!text)
		return CLI_ERR;
	if (ferry__cli_connect(c) < 0 || ferry__cli_base_env(c, env_clean, &env) != CLI_OK) {
		free(text);
		return CLI_ERR;
	}
	/* a file that names a base_env of its own: that one (ferry(1)) */
	rc = ferry_submit_workflow_env(c->conn, text, top_level_key(text, "base_env") ? NULL : env,
				       &id);
	free(env);
	free(text);
	if (rc < 0)
		return ferry__cli_report(c, rc);
	if (c->json)
		printf("{\"id\": %" PRId64 "}\n", id);
	else
		printf("%" PRId64 "\n", id);
	return CLI_OK;
}

/* A workflow as --json prints it: the engine's object, counts by state name. */
static json_t *wf_json(const struct ferry_workflow_info *w)
{
	json_t *counts = json_object(), *o;

	for (int s = 0; counts && s <= FERRY_FAILED; s++)
		if (w->counts[s])
			json_object_set_new(counts, ferry_status_name((enum ferry_job_status)s),
					    json_integer((json_int_t)w->counts[s]));
	o = json_pack("{s:I,s:s?,s:f,s:s,s:I,s:o}", "id", (json_int_t)w->id, "name", w->name,
		      "submitted_at", w->submitted_at, "status",
		      ferry_workflow_state_name(w->state), "jobs", (json_int_t)w->jobs, "counts",
		      counts);
	if (o && w->groups)
		json_object_set_new(o, "groups", json_loads(w->groups, 0, NULL));
	return o;
}

static int wf_status(struct ctx *c, ferry_workflow_id id)
{
	struct ferry_workflow_info *w;
	int rc = ferry_workflow_status(c->conn, id, &w);

	if (rc < 0)
		return ferry__cli_report(c, rc);
	if (c->json) {
		rc = ferry__cli_print_json(c, wf_json(w), JSON_INDENT(2));
		ferry_workflow_info_free(w);
		return rc;
	}
	printf("id: %" PRId64 "\nname: %s\nstatus: %s\njobs: %zu\n", w->id, w->name ? w->name : "",
	       ferry_workflow_state_name(w->state), w->jobs);
	for (int s = 0; s <= FERRY_FAILED; s++)
		if (w->counts[s])
			printf("%s: %zu\n", ferry_status_name((enum ferry_job_status)s),
			       w->counts[s]);
	ferry_workflow_info_free(w);
	return CLI_OK;
}

/* Exit codes as wait's: 3 timed out, 4 a job failed (aborted ones too). */
static int wf_wait(struct ctx *c, ferry_workflow_id id, double timeout)
{
	struct ferry_workflow_info *w;
	int rc = ferry_wait_workflow(c->conn, id, timeout);

	if (rc < 0) {
		ferry__cli_report(c, rc);
		return rc == FERRY_ETIMEDOUT ? CLI_TIMEOUT : CLI_ERR;
	}
	if ((rc = ferry_workflow_status(c->conn, id, &w)) < 0)
		return ferry__cli_report(c, rc);
	rc = w->counts[FERRY_FAILED] ? CLI_FAILED : CLI_OK;
	if (rc == CLI_FAILED)
		fprintf(stderr, "ferry: workflow %" PRId64 ": %zu of its %zu jobs failed\n", id,
			w->counts[FERRY_FAILED], w->jobs);
	ferry_workflow_info_free(w);
	return rc;
}

/* workflow jobs W: the listing of `ferry jobs --workflow W`, its options passed on. */
static int wf_jobs(struct ctx *c, const char *w)
{
	char *args[] = {c->label, "--workflow", (char *)w, c->json ? "--json" : NULL, NULL};

	c->json = 0; /* the listing parses its own --json */
	optind = 0;
	return ferry__cli_cmd_jobs(c, args[3] ? 4 : 3, args);
}

/* stop, restart, dispose W: what the engine did, as the job controls print it */
static int wf_control(struct ctx *c, const char *action, ferry_workflow_id id)
{
	struct ferry_control_result *res = malloc(sizeof(*res));
	size_t n = 0;
	int rc;

	if (!res)
		return ferry__cli_out_of_memory(c);
	if (!strcmp(action, "restart")) {
		if ((rc = ferry_restart_workflow(c->conn, id, &n)) < 0)
			rc = ferry__cli_report(c, rc);
		else if (c->json)
			rc = ferry__cli_print_json(
			    c, json_pack("{s:I}", "restarted", (json_int_t)n), JSON_COMPACT);
		else
			printf("%zu job%s restarted\n", n, n == 1 ? "" : "s");
	} else {
		int stop = !strcmp(action, "stop");
		rc = stop ? ferry_stop_workflow(c->conn, id, res)
			  : ferry_dispose_workflow(c->conn, id, res);
		rc = rc < 0 ? ferry__cli_report(c, rc)
			    : ferry__cli_print_control(c, stop ? "killed" : "disposed", res);
	}
	free(res);
	return rc;
}

struct wf_opts {
	double timeout;
	int env_clean;
};

static int wf_opt(struct ctx *c, void *data, int opt, const char *arg)
{
	struct wf_opts *o = data;
	double *timeout = &o->timeout;
	char *end;

	if (opt == OPT_ENV_CLEAN) {
		o->env_clean = 1;
		return CLI_OK;
	}
	if (opt != 't')
		return ferry__cli_usage_error(c);
	errno = 0;
	*timeout = strtod(arg, &end);
	if (errno || end == arg || *end || *timeout < 0) {
		ferry__cli_bad_value(c, "--timeout", arg, "expected seconds, not negative");
		return ferry__cli_usage_error(c);
	}
	return CLI_OK;
}

int ferry__cli_cmd_workflow(struct ctx *c, int argc, char **argv)
{
	static const struct option opts[] = {
	    {"help", no_argument, NULL, 'h'},
	    {"json", no_argument, NULL, OPT_JSON},
	    {"timeout", required_argument, NULL, 't'},
	    {"env-clean", no_argument, NULL, OPT_ENV_CLEAN},
	    {0},
	};
	struct wf_opts o = {.timeout = -1};
	const char *action;
	int64_t id;
	int rc = ferry__cli_parse_opts(c, argc, argv, "ht:", opts, wf_opt, &o);
	double timeout = o.timeout;

	if (rc != CLI_OK)
		return rc;
	if (argc - optind != 2) {
		ferry__cli_errorf(c, argc == optind	  ? "no action given"
				     : argc - optind == 1 ? "no workflow given"
							  : "too many arguments");
		return ferry__cli_usage_error(c);
	}
	action = argv[optind];
	if (timeout >= 0 && strcmp(action, "wait")) {
		ferry__cli_errorf(c, "--timeout goes with wait");
		return ferry__cli_usage_error(c);
	}
	if (o.env_clean && strcmp(action, "submit")) {
		ferry__cli_errorf(c, "--env-clean goes with submit");
		return ferry__cli_usage_error(c);
	}
	if (!strcmp(action, "submit"))
		return wf_submit(c, argv[optind + 1], o.env_clean);
	if (strcmp(action, "status") && strcmp(action, "wait") && strcmp(action, "jobs") &&
	    strcmp(action, "stop") && strcmp(action, "restart") && strcmp(action, "dispose")) {
		ferry__cli_errorf(c, "unknown action '%s'", action);
		return ferry__cli_usage_error(c);
	}
	if (ferry__cli_int_option(c, "workflow", argv[optind + 1], 1, INT64_MAX, (long long *)&id) <
	    0)
		return ferry__cli_usage_error(c);
	if (!strcmp(action, "jobs"))
		return wf_jobs(c, argv[optind + 1]);
	if (ferry__cli_connect(c) < 0)
		return CLI_ERR;
	if (!strcmp(action, "status"))
		return wf_status(c, id);
	return !strcmp(action, "wait") ? wf_wait(c, id, timeout) : wf_control(c, action, id);
}

int ferry__cli_cmd_workflows(struct ctx *c, int argc, char **argv)
{
	struct ferry_workflow_info **list;
	size_t n;
	int rc = ferry__cli_parse_plain(c, argc, argv);

	if (rc == CLI_OK)
		rc = ferry__cli_no_args(c, argc, argv);
	if (rc != CLI_OK)
		return rc;
	if (ferry__cli_connect(c) < 0)
		return CLI_ERR;
	if ((rc = ferry_workflows(c->conn, &list, &n)) < 0)
		return ferry__cli_report(c, rc);
	if (c->json) {
		json_t *a = json_array();
		for (size_t i = 0; a && i < n; i++)
			json_array_append_new(a, wf_json(list[i]));
		rc = ferry__cli_print_json(c, a, JSON_INDENT(2));
	} else {
		printf("%-8s %-20s %-8s %s\n", "ID", "STATUS", "JOBS", "NAME");
		for (size_t i = 0; i < n; i++)
			printf("%-8" PRId64 " %-20s %-8zu %s\n", list[i]->id,
			       ferry_workflow_state_name(list[i]->state), list[i]->jobs,
			       list[i]->name ? list[i]->name : "");
	}
	ferry_workflows_free(list, n);
	return rc;
}
