/*
 * ferry.c - the ferry command-line tool: git-style subcommands on top of
 * the public libferry API (include/ferry.h). This file holds main(), the
 * global options and the command table; the commands live in the rooms
 * of their groups (cli.h).
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli.h"
#include "util.h"

static const struct cmd *find_cmd(const char *name);
static void print_main_help(FILE *f);

/* ------------------------------------------------------------------ */
/* What the rooms share */

int ferry__cli_connect(struct ctx *c)
{
	int rc;

	if (c->conn)
		return 0;
	rc = ferry_connect(c->resource, NULL, NULL, c->config, &c->conn);
	/* keys and the agent first: a password is asked only when the host wants one */
	if (rc == FERRY_EAUTH && ferry__cli_password_offered(ferry_errmsg(c->conn)))
		return ferry__cli_password_connect(c);
	if (rc < 0) {
		ferry__cli_report(c, rc);
		ferry_disconnect(c->conn);
		c->conn = NULL;
		return -1;
	}
	return 0;
}

void ferry__cli_sleep(double s)
{
	struct timespec ts;

	ts.tv_sec = (time_t)s;
	ts.tv_nsec = (long)((s - (double)ts.tv_sec) * 1e9);

	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

/* ------------------------------------------------------------------ */
/* version, help */

static int cmd_version(struct ctx *c, int argc, char **argv)
{
	int rc = ferry__cli_parse_plain(c, argc, argv);

	if (rc != CLI_OK)
		return rc;
	puts("ferry " FERRY_VERSION_STRING);
	return CLI_OK;
}

static int cmd_help(struct ctx *c, int argc, char **argv)
{
	const struct cmd *cmd;
	int rc = ferry__cli_parse_plain(c, argc, argv);

	if (rc != CLI_OK)
		return rc;
	if (optind >= argc) {
		print_main_help(stdout);
		return CLI_OK;
	}
	cmd = find_cmd(argv[optind]);
	if (!cmd || optind + 1 < argc) {
		if (!cmd)
			ferry__cli_errorf(c, "unknown command '%s'", argv[optind]);
		return ferry__cli_usage_error(c);
	}
	ferry__cli_print_cmd_help(cmd, stdout);
	return CLI_OK;
}

/* ------------------------------------------------------------------ */
/* Command table and main */

static const char submit_help[] =
    "Prints the new job's id.\n\n"
    "Options:\n"
    "  -n, --name NAME        display name\n"
    "  -o, --stdout PATH      file for the job's stdout (relative: to the working directory)\n"
    "  -e, --stderr PATH      file for the job's stderr\n"
    "  -i, --stdin PATH       file the job reads as stdin\n"
    "  -j, --join             send stderr to stdout\n"
    "      --cwd DIR          working directory (default: the current directory)\n"
    "      --env NAME=VALUE   set in the job's environment (repeatable); wins over\n"
    "                         the submitter's environment\n"
    "      --env-clean        do not give the job this shell's environment: it gets\n"
    "                         the resource's default one (sbatch --export=NONE)\n"
    "      --input FILE       file that must exist before the start (repeatable)\n"
    "      --output FILE      file the job produces (repeatable)\n"
    "      --in PATH          send a local file or directory first and name it as an\n"
    "                         input (repeatable); PATH in the command becomes its\n"
    "                         server path (see below)\n"
    "      --out PATH         register a local path first and name it as an output\n"
    "                         (repeatable; not with --bulk); PATH is replaced the same\n"
    "                         way, and 'ferry retrieve SERVER_PATH' fetches it to PATH\n"
    "      --disposal HOURS   keep the record (and --in/--out transfers) that long\n"
    "                         after the end (default 168)\n"
    "      --cpus N           slots the job uses (default 1; with --tasks, their total)\n"
    "      --tasks N          a parallel job's processes (ranks); it holds\n"
    "                         N x --cpus-per-task slots\n"
    "      --cpus-per-task N  cpus of each task (default 1)\n"
    "      --nodes N          nodes the tasks are spread over (default: as the\n"
    "                         resource places them)\n"
    "      --launcher L       mpi: ferry starts the command as --tasks ranks with the\n"
    "                         resource's MPI launcher (mpirun, srun); none (default):\n"
    "                         the command is started once and starts its own\n"
    "      --memory SIZE      memory limit in MB, or with suffix M or G (512M, 2G)\n"
    "      --walltime TIME    wall-clock limit: seconds or [[HH:]MM:]SS\n"
    "      --queue QUEUE      backend queue or partition\n"
    "      --native SPEC      backend-specific options\n"
    "      --hold             submit on hold (see 'ferry release')\n"
    "      --key KEY          submission key: submitting it again returns the same job\n"
    "      --bulk FILE        one command per line ('-': stdin), quoted like a shell;\n"
    "                         blank and '#' lines are skipped; with --key, the\n"
    "                         i-th command gets the key KEY-i (i from 1);\n"
    "                         prints one id per line\n"
    "      --json             print {\"id\": N}, or an array of ids with --bulk; with\n"
    "                         --in/--out, also \"inputs\" and \"outputs\" (local_path,\n"
    "                         server_path), and \"ids\" for --bulk's array\n\n"
    "--in and --out: the arguments of the command and the values of --stdin,\n"
    "--stdout, --stderr, --cwd and --env (after the '=') have each occurrence of\n"
    "PATH replaced by its server path, PATH spelt as given (without trailing '/')\n"
    "or in its absolute form ('.' and '..' resolved, links not). An occurrence\n"
    "counts where it does not continue a longer name: it starts the value or\n"
    "follows a character other than a letter, digit, '.', '_', '-', '+', '~' or\n"
    "'/', and it ends the value or is followed by '/' or such a character. So\n"
    "--in a.nii rewrites 'a.nii', '--x=a.nii', 'a.nii,b' and \"sh -c 'gzip a.nii'\",\n"
    "not 'ba.nii', 'a.nii.gz', './a.nii' or '-ia.nii'. A PATH named nowhere is an\n"
    "error. The transfers are made before the job is submitted; if that fails,\n"
    "the ones made are listed.\n";

static const char wait_help[] =
    "Exit status: 0 when every job ended done, 4 when one failed (the\n"
    "failures are listed on stderr), 3 on timeout, 1 on other errors.\n\n"
    "Options:\n"
    "  -t, --timeout SECONDS  give up after that long (default: no limit)\n"
    "  -a, --all              wait for every job not ended now that the user does\n"
    "                         not hold or stop (queued_active, system_on_hold,\n"
    "                         running, system_suspended); jobs submitted later\n"
    "                         are not waited for\n"
    "  -s, --state STATE      with --all: the jobs in STATE now instead (may be\n"
    "                         repeated; e.g. user_on_hold to take held jobs)\n";

static const char logs_help[] =
    "Options:\n"
    "      --stderr  show the job's stderr instead of its stdout\n"
    "  -f, --follow  keep reading until the job ended and all was read\n";

static const char jobs_help[] =
    "Options:\n"
    "  -s, --state STATE  only jobs in that state (queued_active, running, done, ...);\n"
    "                     repeated: in any of them\n"
    "      --since ID     only jobs after job ID (a greater id)\n"
    "      --since TIME   only jobs submitted at or after TIME: @SECONDS (since the\n"
    "                     epoch) or YYYY-MM-DD[THH:MM[:SS]] (local time)\n"
    "      --limit N      at most N jobs (the oldest)\n"
    "      --workflow W   only the jobs of workflow W\n"
    "      --json         an array of job objects, one per line\n"
    "      --jsonl        one job object per line (JSON Lines)\n"
    "Jobs are printed as they arrive, oldest first; the table's columns are as\n"
    "wide as its first 1000 rows need.\n";

static const char top_help[] =
    "The jobs of the resource in the terminal, refreshed every interval: a page\n"
    "of them (id, name, state, submission time, run time, exit), and the counts\n"
    "per state. Keys:\n"
    "  Up, Down     move (past the first or last row: the page before or after)\n"
    "  PgUp, PgDn   the page before or after;  Home, g  the first page\n"
    "  f, F         the next or previous state filter (any, then each state)\n"
    "  /            filter by a substring of the name (Enter: take, Esc: leave)\n"
    "  o, O         the next sort key of the page (id, name, state, submitted,\n"
    "               runtime), or the reverse order\n"
    "  Enter        the job's stdout, followed (Tab: stderr; q, Esc: back)\n"
    "  k, s, r      kill, stop, restart the job, as 'ferry kill|stop|restart'\n"
    "               (restart resumes a stopped job), after a y/n confirmation\n"
    "  q, Ctrl-C    quit (exit status 0)\n\n"
    "Options:\n"
    "  -i, --interval SECONDS  refresh period (default 1; 0.1 to 3600)\n";

static const char daemon_help[] =
    "Actions:\n"
    "  start   start the engine of the resource if needed\n"
    "  stop    ask the engine to exit (jobs keep running)\n"
    "  status  tell whether it runs, without starting it (exit 3: not running)\n";

static const char send_help[] =
    "Sends files or one directory tree (modes and mtimes kept) as one transfer\n"
    "and prints the server path to use in jobs (--input). Sending the same\n"
    "paths again resumes an interrupted send. On a terminal, a transfer of 4 MiB\n"
    "or more shows a progress bar on stderr.\n\n"
    "Options:\n"
    "  -d, --disposal HOURS  keep the copy that long after it is complete (168)\n";

static const char register_help[] =
    "Prints the server path where a job should write an output (--output);\n"
    "'ferry retrieve' fetches it to PATH once the job ended.\n\n"
    "Options:\n"
    "  -d, --disposal HOURS  keep it that long after it was produced (168)\n";

static const char retrieve_help[] =
    "Downloads a transfer to the local path it was sent or registered with\n"
    "(replacing it), or to DEST. Resumes an interrupted download. On a terminal,\n"
    "a transfer of 4 MiB or more shows a progress bar on stderr.\n\n"
    "Options:\n"
    "  -t, --to DEST  another destination (a directory for several files)\n"
    "  -f, --force    replace DEST if it exists\n";

static const char cancel_help[] =
    "Removes a transfer's files and record now. (Not 'cancel': that would read as\n"
    "an action on jobs, which 'ferry kill' ends.)\n\n"
    "Options:\n"
    "  -f, --force  also when unfinished jobs name it (jobs waiting for it end aborted)\n";

static const char resources_help[] =
    "Each resource of the configuration file (and the embedded \"local\"), where it\n"
    "is, and whether its engine runs; a remote one is asked over ssh, which\n"
    "starts nothing there.\n\n"
    "Options:\n"
    "      --no-check  do not contact the resources\n"
    "      --json      an array of objects (name, scheduler, host, port, login,\n"
    "                  reachable, engine_running, pid, error)\n";

/* What stop, restart, hold, release, kill and dispose take (control.c). */
#define SEL_ARGS "(ID | FIRST-LAST | --all | --state STATE | --name GLOB | --workflow W)..."

static const char control_help[] =
    "Plain ids: one request each. A selection (ranges FIRST-LAST, --all,\n"
    "--state, --name; what all given take) is one request in the engine's one\n"
    "transaction; it prints \"N jobs ACTED (M matched; K not: reasons)\" and\n"
    "exits 4 when K is not 0.\n"
    "  -a, --all              every job\n"
    "  -s, --state STATE      jobs in STATE (repeatable)\n"
    "      --name GLOB        jobs whose name matches GLOB (fnmatch(3))\n"
    "      --workflow W       the jobs of workflow W\n";

static const char workflow_help[] =
    "  submit FILE      submit the workflow of FILE (JSON, docs/workflows.md; - for\n"
    "                   standard input) in one transaction; prints its id; its jobs\n"
    "                   get this shell's environment unless --env-clean\n"
    "  status W         counts of its jobs per state, and its overall state\n"
    "  wait W           until every job of W ended; exit 4 when one failed,\n"
    "                   3 after --timeout SECONDS\n"
    "  jobs W           its jobs, as 'ferry jobs --workflow W' lists them\n"
    "  stop W           kill its jobs not ended: nothing of it starts any more\n"
    "  restart W        run again its failed, killed and aborted jobs (the done\n"
    "                   ones stay), each once its dependencies are done\n"
    "  dispose W        dispose of its jobs and of the workflow\n";

static const char ui_help[] =
    "Serves a web page of the resources' jobs on this host and opens it in\n"
    "the browser (xdg-open). The page shows every configured resource, or\n"
    "those named by -r (also before the command); it follows jobs live and\n"
    "stops, restarts, holds, releases, kills and disposes of them.\n\n"
    "Options:\n"
    "  -r, --resource NAME  a resource to show (repeatable; default: all)\n"
    "      --port N         listen on port N (default: a free one)\n"
    "      --bind ADDR      listen on ADDR (default 127.0.0.1); any other than a\n"
    "                       loopback address lets other hosts reach the page\n"
    "      --no-browser     only print the URL\n\n"
    "The URL printed carries a secret token: whoever has it controls your\n"
    "jobs. Stop the server with Ctrl-C (SIGINT) or SIGTERM.\n";

static const struct cmd commands[] = {
    {"submit", ferry__cli_cmd_submit, "[OPTIONS] (-- CMD [ARGS...] | --bulk FILE)", "Submit a job",
     submit_help, NULL},
    {"status", ferry__cli_cmd_status, "[--json] ID...", "Print the status of jobs", NULL, NULL},
    {"wait", ferry__cli_cmd_wait, "[--timeout SECONDS] (ID... | --all [--state STATE]...)",
     "Wait until jobs ended", wait_help, NULL},
    {"info", ferry__cli_cmd_info, "[--json] ID", "Print everything known about a job", NULL, NULL},
    {"logs", ferry__cli_cmd_logs, "[--stderr] [--follow] ID", "Print a job's output", logs_help,
     NULL},
    {"jobs", ferry__cli_cmd_jobs,
     "[--json | --jsonl] [--state STATE]... [--since ID|TIME] [--limit N] [--workflow W]",
     "List the jobs of the resource", jobs_help, NULL},
    {"stop", ferry__cli_cmd_control, SEL_ARGS, "Suspend running jobs, hold queued ones",
     control_help, ferry_stop},
    {"restart", ferry__cli_cmd_control, SEL_ARGS, "Undo 'ferry stop'", control_help, ferry_restart},
    {"hold", ferry__cli_cmd_control, SEL_ARGS, "Hold jobs that have not started", control_help,
     ferry_hold},
    {"release", ferry__cli_cmd_control, SEL_ARGS, "Release held jobs", control_help, ferry_release},
    {"kill", ferry__cli_cmd_control, SEL_ARGS, "Terminate jobs", control_help, ferry_kill},
    {"dispose", ferry__cli_cmd_control, SEL_ARGS, "Kill jobs if active and forget them",
     control_help, ferry_dispose},
    {"top", ferry__cli_cmd_top, "[--interval SECONDS]",
     "Watch and control the jobs in the terminal", top_help, NULL},
    {"workflow", ferry__cli_cmd_workflow,
     "submit FILE | status|jobs [--json] W | wait [--timeout S] W | stop|restart|dispose W",
     "Submit and follow workflows (jobs with dependencies)", workflow_help, NULL},
    {"workflows", ferry__cli_cmd_workflows, "[--json]", "List the workflows of the resource", NULL,
     NULL},
    {"send", ferry__cli_cmd_send, "[--disposal HOURS] PATH...",
     "Send files or a directory to the resource", send_help, NULL},
    {"register", ferry__cli_cmd_register, "[--disposal HOURS] PATH",
     "Register an output to retrieve later", register_help, NULL},
    {"retrieve", ferry__cli_cmd_retrieve, "[--to DEST [--force]] SERVER_PATH",
     "Download a transfer to its local path", retrieve_help, NULL},
    {"transfers", ferry__cli_cmd_transfers, "[--json] [SERVER_PATH]",
     "List transfers, or show one (as transfer-info)", NULL, NULL},
    {"transfer-info", ferry__cli_cmd_transfer_info, "[--json] SERVER_PATH",
     "Print everything known about a transfer", NULL, NULL},
    {"cancel-transfer", ferry__cli_cmd_cancel_transfer, "[--force] SERVER_PATH",
     "Remove a transfer at once", cancel_help, NULL},
    {"resources", ferry__cli_cmd_resources, "[--no-check] [--json]",
     "List the configured resources and whether each answers", resources_help, NULL},
    {"daemon", ferry__cli_cmd_daemon, "start|stop|status", "Control the engine (ferryd)",
     daemon_help, NULL},
    {"ping", ferry__cli_cmd_ping, "[-n COUNT]", "Measure the round trip to the engine", NULL, NULL},
    {"bridge", ferry__cli_cmd_bridge,
     "[--resource NAME] [--config FILE] [--set KEY=VALUE]... [--no-start]",
     "Join stdin/stdout to this host's engine (run by ssh for remote clients)", NULL, NULL},
    {"ui", ferry__cli_cmd_ui, "[-r RESOURCE]... [--port N] [--bind ADDR] [--no-browser]",
     "Serve a web page to watch and control jobs", ui_help, NULL},
    {"version", cmd_version, "", "Print the version", NULL, NULL},
    {"help", cmd_help, "[COMMAND]", "Show help", NULL, NULL},
};

static const struct cmd *find_cmd(const char *name)
{
	size_t i;

	for (i = 0; i < FERRY_ARRAY_SIZE(commands); i++) {
		if (strcmp(commands[i].name, name) == 0)
			return &commands[i];
	}
	return NULL;
}

static void print_main_help(FILE *f)
{
	size_t i;

	fputs("usage: ferry [OPTIONS] COMMAND [ARGS...]\n\n"
	      "Submits and controls jobs of the ferry job engine (ferryd).\n\n"
	      "Options:\n"
	      "  -r, --resource NAME  resource to use (default: $FERRY_RESOURCE or \"local\")\n"
	      "  -c, --config FILE    configuration file\n"
	      "                       (default: $XDG_CONFIG_HOME/ferry/ferry.conf)\n"
	      "      --json           machine-readable output (also after the command)\n"
	      "  -h, --help           show this help\n"
	      "      --version        show the version\n\n"
	      "Commands:\n",
	      f);
	for (i = 0; i < FERRY_ARRAY_SIZE(commands); i++)
		fprintf(f, "  %-15s %s\n", commands[i].name, commands[i].summary);
	fputs("\nExit status:\n"
	      "  0  success\n"
	      "  1  error (a login the remote host refused too)\n"
	      "  2  usage error\n"
	      "  3  wait: timeout; daemon status: not running\n"
	      "  4  wait: a job failed\n\n"
	      "'ferry help COMMAND' shows the options of a command.\n",
	      f);
}

static int parse_globals(struct ctx *c, int argc, char **argv)
{
	static const struct option opts[] = {
	    {"resource", required_argument, NULL, 'r'},	 {"config", required_argument, NULL, 'c'},
	    {"json", no_argument, NULL, OPT_JSON},	 {"help", no_argument, NULL, 'h'},
	    {"version", no_argument, NULL, OPT_VERSION}, {0},
	};
	const char *env = getenv("FERRY_RESOURCE");
	int opt;

	c->resource = env && *env ? env : "local";
	optind = 0;
	while ((opt = getopt_long(argc, argv, "+r:c:h", opts, NULL)) != -1) {
		switch (opt) {
		case 'r':
			c->resource = optarg;
			c->resource_given = 1;
			break;
		case 'c':
			c->config = optarg;
			break;
		case OPT_JSON:
			c->json = 1;
			break;
		case 'h':
			print_main_help(stdout);
			return CLI_DONE;
		case OPT_VERSION:
			puts("ferry " FERRY_VERSION_STRING);
			return CLI_DONE;
		default:
			return ferry__cli_usage_error(c);
		}
	}
	if (optind >= argc) {
		ferry__cli_errorf(c, "no command given");
		return ferry__cli_usage_error(c);
	}
	return CLI_OK;
}

static int run_command(struct ctx *c, int argc, char **argv)
{
	const struct cmd *cmd = find_cmd(argv[0]);

	if (!cmd) {
		ferry__cli_errorf(c, "unknown command '%s'", argv[0]);
		return ferry__cli_usage_error(c);
	}
	c->cmd = cmd;
	snprintf(c->label, sizeof(c->label), "ferry: %s", cmd->name);
	argv[0] = c->label;
	return cmd->run(c, argc, argv);
}

int main(int argc, char **argv)
{
	struct ctx c = {0};
	int rc;

	snprintf(c.label, sizeof(c.label), "ferry");
	if (argc < 1)
		return CLI_USAGE;
	argv[0] = c.label;
	rc = parse_globals(&c, argc, argv);
	if (rc == CLI_OK)
		rc = run_command(&c, argc - optind, argv + optind);
	if (rc == CLI_DONE)
		rc = CLI_OK;
	ferry_disconnect(c.conn);

	/* A command that failed has said why; do not repeat a write error. */
	if ((fflush(stdout) != 0 || ferror(stdout)) && rc == CLI_OK) {
		ferry__cli_errorf(&c, "cannot write the output: %s", ferry__cli_errno_str(errno));
		rc = CLI_ERR;
	}
	return rc;
}
