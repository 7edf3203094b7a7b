/*
 * cli.h - what the rooms of the ferry command share: the context of a run,
 * the command table's entry, the exit codes, and the helpers of ferry.c
 * (connection), args.c (options and values) and render.c (messages and
 * output). Each command lives in the room of its group (jobs.c, submit.c,
 * logs.c, transfers.c, resources.c, bridge.c, top.c) as one ferry__cli_cmd_*().
 */
#ifndef FERRY_CLI_H
#define FERRY_CLI_H

#include <getopt.h>
#include <stddef.h>
#include <stdio.h>

#include <jansson.h>

#include "ferry.h"
#include "progress.h"

/* Exit codes; documented in the --help text. */
enum {
	CLI_OK = 0,
	CLI_ERR = 1,
	CLI_USAGE = 2,
	CLI_TIMEOUT = 3, /* wait timed out; daemon status: not running */
	CLI_FAILED = 4,	 /* wait: a job ended failed */
	/* Not an exit code: parsing already did everything (--help). */
	CLI_DONE = -1,
};

/* Long-only options get values outside the char range; one list keeps them apart. */
enum {
	OPT_JSON = 256,
	OPT_VERSION,
	OPT_CWD,
	OPT_ENV,
	OPT_INPUT,
	OPT_OUTPUT,
	OPT_IN,
	OPT_OUT,
	OPT_DISPOSAL,
	OPT_CPUS,
	OPT_MEMORY,
	OPT_WALLTIME,
	OPT_QUEUE,
	OPT_NATIVE,
	OPT_HOLD,
	OPT_KEY,
	OPT_BULK,
	OPT_STDERR,
	OPT_NO_START,
	OPT_NO_CHECK,
	OPT_JSONL,
	OPT_SINCE,
	OPT_LIMIT,
	OPT_NAME,
	OPT_WORKFLOW,
	OPT_PORT,
	OPT_BIND,
	OPT_NO_BROWSER,
	OPT_ENV_CLEAN,
	OPT_TASKS,
	OPT_CPUS_PER_TASK,
	OPT_NODES,
	OPT_LAUNCHER,
};

/* A limit of the protocol (docs/protocol.md), checked here for a clear message. */
#define DISPOSAL_MAX_HOURS 87600

struct cmd;

struct ctx {
	const char *resource;
	int resource_given; /* -r before the command (not $FERRY_RESOURCE) */
	const char *config;
	int json;
	const struct cmd *cmd;
	ferry_conn *conn;
	struct ferry_bar bar; /* of the transfer under way */
	/* argv[0] handed to getopt, so that its messages read "ferry: submit: ..." */
	char label[64];
};

struct cmd {
	const char *name;
	int (*run)(struct ctx *c, int argc, char **argv);
	const char *args;
	const char *summary;
	const char *help;
	int (*action)(ferry_conn *conn, ferry_job_id id); /* what ferry__cli_cmd_control does */
};

/* ---- ferry.c ---- */

/* Connects to the resource once; -1 after saying why. */
int ferry__cli_connect(struct ctx *c);
void ferry__cli_sleep(double s);

/* ---- login.c ---- */

/* Whether ssh's refusal (a connection's message) lists a password among the ways in. */
int ferry__cli_password_offered(const char *msg);
/*
 * After the host refused the key login: asks the password on the terminal,
 * once, and connects with it (c->conn, which keeps it for reconnections).
 * 0, or -1 after saying why (no terminal, no password, still refused).
 */
int ferry__cli_password_connect(struct ctx *c);

/* ---- environ.c ---- */

/*
 * The environment the jobs of a submit start from (struct ferry_job_spec's
 * base_env) into *env (free() the array, not its strings: environ's):
 * NULL with clean (--env-clean) or for a remote resource. Connected
 * first. CLI_OK, or CLI_ERR said.
 */
int ferry__cli_base_env(const struct ctx *c, int clean, const char ***env);
/* Whether the environment entry s ("NAME=value") is one the jobs get. */
int ferry__cli_env_carried(const char *s);

/* ---- args.c ---- */

typedef int (*ferry_cli_opt_fn)(struct ctx *c, void *data, int opt, const char *arg);

/*
 * Runs getopt_long over a subcommand's arguments (argv[0] is the label).
 * -h and --json are handled here; anything else goes to fn (NULL: none is
 * taken). CLI_OK, CLI_DONE after the help, or an exit code after saying why.
 */
int ferry__cli_parse_opts(struct ctx *c, int argc, char **argv, const char *shortopts,
			  const struct option *longopts, ferry_cli_opt_fn fn, void *data);
/* Only -h and --json. */
int ferry__cli_parse_plain(struct ctx *c, int argc, char **argv);
/* After the options: CLI_OK when nothing is left, else a usage error. */
int ferry__cli_no_args(const struct ctx *c, int argc, char **argv);

/* The states a --state option named, each once (there are fewer than 16). */
struct cli_states {
	enum ferry_job_status v[16];
	size_t n;
};
/*
 * --state S into s (not_ended: S must be the state of a job not ended):
 * CLI_OK, or a usage error after saying why.
 */
int ferry__cli_add_state(const struct ctx *c, struct cli_states *s, const char *arg, int not_ended);

/* Says that opt does not take s; hint (may be NULL) says what it takes. */
void ferry__cli_bad_value(const struct ctx *c, const char *opt, const char *s, const char *hint);
/* s, a decimal integer within [min, max] (min >= 0) into *out: 0, or -1 after saying so. */
int ferry__cli_int_option(const struct ctx *c, const char *opt, const char *s, long long min,
			  long long max, long long *out);
/* After the options, every argument is a job id; at least one is required. */
int ferry__cli_parse_ids(const struct ctx *c, int argc, char **argv, ferry_job_id **ids, size_t *n);
/*
 * A job id "N", or a range "FIRST-LAST" (FIRST <= LAST), into r[0] and
 * r[1] (both N for an id): 0, or -1 after saying why.
 */
int ferry__cli_parse_range(const struct ctx *c, const char *s, ferry_job_id r[2]);
/* After the options, exactly one job id; then connects. */
int ferry__cli_one_job(struct ctx *c, int argc, char **argv, ferry_job_id *id);

/* ---- render.c ---- */

void ferry__cli_errorf(const struct ctx *c, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* The connection's detailed message, or the name of the code rc. */
const char *ferry__cli_api_msg(const struct ctx *c, int rc);
/* Say why the API call failed with rc (for job id); both return CLI_ERR. */
int ferry__cli_report(const struct ctx *c, int rc);
int ferry__cli_report_id(const struct ctx *c, ferry_job_id id, int rc);
/* strerror(err) in lowercase, as our messages are (a static buffer). */
const char *ferry__cli_errno_str(int err);
/* Prints the usage line of the command (or of ferry) to stderr: CLI_USAGE. */
int ferry__cli_usage_error(const struct ctx *c);
/* Says so: CLI_ERR. */
int ferry__cli_out_of_memory(const struct ctx *c);
void ferry__cli_print_cmd_help(const struct cmd *cmd, FILE *f);

/*
 * Prints j with flags (JSON_COMPACT, JSON_INDENT(n)) and a newline, and
 * releases it; NULL (making it ran out of memory) is reported as such.
 */
int ferry__cli_print_json(const struct ctx *c, json_t *j, size_t flags);

/*
 * The protocol's objects (docs/protocol.md), fields in its order: with
 * --json as JSON, else one "key: value" line a field (show) or a table
 * (print). Each returns CLI_OK or CLI_ERR after saying why.
 */
int ferry__cli_show_job(const struct ctx *c, const struct ferry_job_info *j);
int ferry__cli_show_transfer(const struct ctx *c, const struct ferry_transfer_info *t);
/*
 * Jobs printed as they come (`ferry jobs` without --json or --jsonl,
 * which print the engine's lines as they stand, jobs.c): a table whose
 * widths the first rows set. new: NULL without memory; add
 * prints (or holds) one; end finishes the output and frees o, and says
 * CLI_OK or CLI_ERR after saying why (add: the same).
 */
struct ferry_jobs_out;
struct ferry_jobs_out *ferry__cli_jobs_out_new(const struct ctx *c);
int ferry__cli_jobs_out_add(struct ferry_jobs_out *o, const struct ferry_job_info *j);
int ferry__cli_jobs_out_end(struct ferry_jobs_out *o);
int ferry__cli_print_transfers(const struct ctx *c, struct ferry_transfer_info *const *list,
			       size_t n);
/* The objects of `ferry resources` (released), as resources.c makes them. */
int ferry__cli_print_resources(const struct ctx *c, json_t *all);
const char *ferry__cli_status_str(enum ferry_job_status s);
/* A job's end for a table (render.c): brief ("sig9"), or in words ("signal 9") */
void ferry__cli_exit_cell(char *buf, size_t cap, enum ferry_exit_status st, int value, int sig,
			  int words);

/* ---- the commands, one room a group ---- */

int ferry__cli_cmd_submit(struct ctx *c, int argc, char **argv);
int ferry__cli_cmd_status(struct ctx *c, int argc, char **argv);
int ferry__cli_cmd_wait(struct ctx *c, int argc, char **argv);
int ferry__cli_cmd_info(struct ctx *c, int argc, char **argv);
int ferry__cli_cmd_jobs(struct ctx *c, int argc, char **argv);
/* stop, restart, hold, release, kill, dispose: the table's action on each id */
int ferry__cli_cmd_control(struct ctx *c, int argc, char **argv);
/* What a control by selection did, as text or --json; CLI_FAILED when some job refused. */
int ferry__cli_print_control(const struct ctx *c, const char *done,
			     const struct ferry_control_result *res);
int ferry__cli_cmd_logs(struct ctx *c, int argc, char **argv);
/* top.c: the jobs in a terminal, live (ncurses) */
int ferry__cli_cmd_top(struct ctx *c, int argc, char **argv);
int ferry__cli_cmd_send(struct ctx *c, int argc, char **argv);
int ferry__cli_cmd_register(struct ctx *c, int argc, char **argv);
int ferry__cli_cmd_retrieve(struct ctx *c, int argc, char **argv);
int ferry__cli_cmd_transfers(struct ctx *c, int argc, char **argv);
int ferry__cli_cmd_transfer_info(struct ctx *c, int argc, char **argv);
int ferry__cli_cmd_cancel_transfer(struct ctx *c, int argc, char **argv);
int ferry__cli_cmd_daemon(struct ctx *c, int argc, char **argv);
int ferry__cli_cmd_ping(struct ctx *c, int argc, char **argv);
int ferry__cli_cmd_resources(struct ctx *c, int argc, char **argv);
int ferry__cli_cmd_bridge(struct ctx *c, int argc, char **argv);
/* ui.c: the web page (src/ui) */
int ferry__cli_cmd_ui(struct ctx *c, int argc, char **argv);
/* workflow.c: ferry workflow submit|status|wait|jobs, ferry workflows */
int ferry__cli_cmd_workflow(struct ctx *c, int argc, char **argv);
int ferry__cli_cmd_workflows(struct ctx *c, int argc, char **argv);
/* --workflow W (jobs, and the selections of control.c): 0, or -1 after saying why */
int ferry__cli_workflow_id(const struct ctx *c, const char *arg, int64_t *wf);

#endif
