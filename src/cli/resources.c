/*
 * resources.c - the commands on resources and their engines: daemon
 * (start, stop, status), ping and resources. Those that only ask whether
 * an engine runs start none, here or over ssh.
 */
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cfg.h"
#include "cli.h"
#include "jbytes.h"
#include "util.h"

/* How long `ferry daemon stop` waits for the engine to exit, asking this often. */
#define STOP_TIMEOUT_S 10.0
#define STOP_POLL_S    0.1

/* What ferry_engine_status() said when it failed, or its code's name where it said nothing. */
static const char *engine_error(const char *msg, int rc)
{
	return msg[0] ? msg : ferry_strerror(rc);
}

/* ferry_engine_status() failed: why, and what to do when the host wants a password. */
static void say_engine_error(const struct ctx *c, const char *msg, int rc)
{
	ferry__cli_errorf(c, "%s", engine_error(msg, rc));
	if (rc == FERRY_EAUTH && ferry__cli_password_offered(msg))
		ferry__cli_errorf(c,
				  "resource '%s' needs a password, which this command does not ask "
				  "for: it logs in with an ssh key or an agent only",
				  c->resource);
}

/* Whether the resource's engine runs (1) or not (0), without starting it; -1 after saying why. */
static int engine_status(const struct ctx *c, long *pid)
{
	char msg[1024];
	int rc = ferry_engine_status(c->resource, c->config, pid, msg, sizeof(msg));

	if (rc < 0) {
		say_engine_error(c, msg, rc);
		return -1;
	}
	return rc;
}

/* ------------------------------------------------------------------ */
/* daemon */

static int daemon_start(struct ctx *c)
{
	long pid = 0;
	int rc;

	if (ferry__cli_connect(c) < 0)
		return CLI_ERR;
	rc = ferry_ping(c->conn);
	if (rc < 0)
		return ferry__cli_report(c, rc);
	if (ferry_engine_running(c->resource, c->config, &pid) == 1)
		printf("ferryd running (pid %ld)\n", pid);
	else
		puts("ferryd running");
	return CLI_OK;
}

static int daemon_stop(struct ctx *c)
{
	double deadline;
	long pid = 0;
	int rc = engine_status(c, &pid);

	if (rc < 0)
		return CLI_ERR;
	if (rc == 0) {
		puts("ferryd not running");
		return CLI_OK;
	}
	if (ferry__cli_connect(c) < 0)
		return CLI_ERR;
	rc = ferry_shutdown_engine(c->conn);
	if (rc < 0)
		return ferry__cli_report(c, rc);
	/* Let go of the engine so that nothing of ours keeps or revives it. */
	ferry_disconnect(c->conn);
	c->conn = NULL;
	deadline = ferry__mono() + STOP_TIMEOUT_S;
	while ((rc = engine_status(c, NULL)) == 1 && ferry__mono() < deadline)
		ferry__cli_sleep(STOP_POLL_S);
	if (rc < 0)
		return CLI_ERR;
	if (rc == 1) {
		ferry__cli_errorf(c, "ferryd (pid %ld) did not exit within %.0f s", pid,
				  STOP_TIMEOUT_S);
		return CLI_ERR;
	}
	puts("ferryd stopped");
	return CLI_OK;
}

/* Whether the engine runs, and what it warns of (on stderr, a line each). */
static int daemon_status(const struct ctx *c)
{
	char msg[4096];
	long pid = 0;
	int rc = ferry_engine_status(c->resource, c->config, &pid, msg, sizeof(msg));

	if (rc < 0) {
		say_engine_error(c, msg, rc);
		return CLI_ERR;
	}
	if (rc == 0) {
		puts("not running");
		return CLI_TIMEOUT;
	}
	printf("running (pid %ld)\n", pid);
	fflush(stdout);
	for (char *line = msg, *nl; *line; line = nl ? nl + 1 : line + strlen(line)) {
		nl = strchr(line, '\n');
		ferry__cli_errorf(c, "warning: %.*s", nl ? (int)(nl - line) : (int)strlen(line),
				  line);
	}
	return CLI_OK;
}

int ferry__cli_cmd_daemon(struct ctx *c, int argc, char **argv)
{
	const char *action;
	int rc;

	rc = ferry__cli_parse_plain(c, argc, argv);
	if (rc != CLI_OK)
		return rc;
	if (argc - optind != 1) {
		ferry__cli_errorf(c, argc == optind ? "no action given" : "too many arguments");
		return ferry__cli_usage_error(c);
	}
	action = argv[optind];
	if (strcmp(action, "start") == 0)
		return daemon_start(c);
	if (strcmp(action, "stop") == 0)
		return daemon_stop(c);
	if (strcmp(action, "status") == 0)
		return daemon_status(c);
	ferry__cli_errorf(c, "unknown action '%s'", action);
	return ferry__cli_usage_error(c);
}

/* ------------------------------------------------------------------ */
/* ping */

static int ping_opt(struct ctx *c, void *data, int opt, const char *arg)
{
	long long *count = data;

	if (opt != 'n')
		return ferry__cli_usage_error(c);
	return ferry__cli_int_option(c, "-n", arg, 1, 1000000, count) < 0
		   ? ferry__cli_usage_error(c)
		   : CLI_OK;
}

int ferry__cli_cmd_ping(struct ctx *c, int argc, char **argv)
{
	static const struct option opts[] = {
	    {"help", no_argument, NULL, 'h'},
	    {"json", no_argument, NULL, OPT_JSON},
	    {"count", required_argument, NULL, 'n'},
	    {0},
	};
	double t, conn_t, min = HUGE_VAL, max = 0, sum = 0;
	long long count = 1, i;
	int rc;

	rc = ferry__cli_parse_opts(c, argc, argv, "hn:", opts, ping_opt, &count);
	if (rc == CLI_OK)
		rc = ferry__cli_no_args(c, argc, argv);
	if (rc != CLI_OK)
		return rc;
	/* Connecting (ssh, starting the engine) is reported apart from round trips. */
	conn_t = ferry__mono();
	if (ferry__cli_connect(c) < 0)
		return CLI_ERR;
	conn_t = (ferry__mono() - conn_t) * 1e3;
	if (!c->json)
		printf("connected in %.1f ms\n", conn_t);
	for (i = 0; i < count; i++) {
		t = ferry__mono();
		rc = ferry_ping(c->conn);
		t = (ferry__mono() - t) * 1e6;
		if (rc < 0)
			return ferry__cli_report(c, rc);
		if (!c->json)
			printf("round trip: %.0f µs\n", t);
		min = t < min ? t : min;
		max = t > max ? t : max;
		sum += t;
	}
	if (c->json)
		return ferry__cli_print_json(
		    c,
		    json_pack("{s:s,s:f,s:I,s:f,s:f,s:f}", "resource", ferry_resource(c->conn),
			      "connect_ms", conn_t, "count", (json_int_t)count, "min_us", min,
			      "avg_us", sum / (double)count, "max_us", max),
		    JSON_COMPACT);
	if (count > 1)
		printf("%lld pings: min %.0f µs, avg %.0f µs, max %.0f µs\n", count, min,
		       sum / (double)count, max);
	return CLI_OK;
}

/* ------------------------------------------------------------------ */
/* resources */

/* One resource's line of `ferry resources`: where it is and whether its engine answers. */
static json_t *resource_json(const struct ctx *c, const struct ferry_resource_cfg *r, int check)
{
	json_t *o = json_pack("{s:s,s:s}", "name", r->name, "scheduler",
			      r->scheduler ? r->scheduler : "local");
	char msg[1024];
	long pid = 0;
	int rc;

	if (!o)
		return NULL;
	json_object_set_new(o, "host", ferry__json_bytes(r->host));
	if (r->port)
		json_object_set_new(o, "port", json_integer(r->port));
	if (r->login)
		json_object_set_new(o, "login", ferry__json_bytes(r->login));
	if (!check)
		return o;
	/* asks without starting anything: the bridge's --no-start over ssh */
	rc = ferry_engine_status(r->name, c->config, &pid, msg, sizeof(msg));
	json_object_set_new(o, "reachable", json_boolean(rc >= 0));
	if (rc >= 0)
		json_object_set_new(o, "engine_running", json_boolean(rc == 1));
	if (rc == 1)
		json_object_set_new(o, "pid", json_integer(pid));
	if (rc < 0)
		json_object_set_new(o, "error", ferry__json_bytes(engine_error(msg, rc)));
	return o;
}

static int resources_opt(struct ctx *c, void *data, int opt, const char *arg)
{
	int *check = data;

	if (opt != OPT_NO_CHECK)
		return ferry__cli_usage_error(c);
	*check = 0;
	return CLI_OK;
}

/* The configuration file given, or the default one where it exists (else: no sections). */
static int read_config(const struct ctx *c, struct ferry_cfg *cfg)
{
	char err[1024], *path = c->config ? strdup(c->config) : ferry__default_config_path();
	int rc = CLI_OK;

	if (path && (c->config || access(path, F_OK) == 0) &&
	    ferry__cfg_parse(path, NULL, cfg, err, sizeof(err)) < 0) {
		ferry__cli_errorf(c, "%s", err);
		rc = CLI_ERR;
	}
	free(path);
	return rc;
}

int ferry__cli_cmd_resources(struct ctx *c, int argc, char **argv)
{
	static const struct option opts[] = {
	    {"help", no_argument, NULL, 'h'},
	    {"json", no_argument, NULL, OPT_JSON},
	    {"no-check", no_argument, NULL, OPT_NO_CHECK},
	    {0},
	};
	struct ferry_cfg cfg = {0};
	struct ferry_resource_cfg local = {.name = (char *)"local"};
	json_t *all;
	int check = 1, rc, has_local = 0;

	rc = ferry__cli_parse_opts(c, argc, argv, "h", opts, resources_opt, &check);
	if (rc == CLI_OK)
		rc = ferry__cli_no_args(c, argc, argv);
	if (rc == CLI_OK)
		rc = read_config(c, &cfg);
	if (rc != CLI_OK)
		return rc;
	all = json_array();
	for (int i = 0; all && i < cfg.nres; i++) {
		has_local |= !strcmp(cfg.res[i].name, "local");
		json_array_append_new(all, resource_json(c, &cfg.res[i], check));
	}
	/* "local" exists without a section: the embedded default */
	if (all && !has_local)
		json_array_insert_new(all, 0, resource_json(c, &local, check));
	ferry__cfg_release(&cfg);
	return ferry__cli_print_resources(c, all);
}
