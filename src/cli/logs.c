/*
 * logs.c - `ferry logs`: a job's stdout or stderr as the engine has it,
 * once or followed until the job ended.
 */
#include <errno.h>
#include <getopt.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "cli.h"

#define READ_CHUNK     (64 * 1024)
#define FOLLOW_DELAY_S 0.2

struct logs_opts {
	enum ferry_stream stream;
	int follow;
};

static int logs_opt(struct ctx *c, void *data, int opt, const char *arg)
{
	struct logs_opts *o = data;

	if (opt == OPT_STDERR)
		o->stream = FERRY_STDERR;
	else if (opt == 'f')
		o->follow = 1;
	else
		return ferry__cli_usage_error(c);
	return CLI_OK;
}

static int copy_output(const struct ctx *c, ferry_job_id id, const struct logs_opts *o, char *buf)
{
	uint64_t off = 0;
	size_t got;
	int ended, rc;

	for (;;) {
		got = 0;
		ended = 0;
		rc = ferry_read_output(c->conn, id, o->stream, off, buf, READ_CHUNK, &got, &ended);
		if (rc == FERRY_EEOF)
			return CLI_OK;
		if (rc < 0)
			return ferry__cli_report_id(c, id, rc);
		if (got > 0) {
			if (fwrite(buf, 1, got, stdout) != got) {
				ferry__cli_errorf(c, "cannot write the output: %s",
						  ferry__cli_errno_str(errno));
				return CLI_ERR;
			}
			off += got;
			continue;
		}
		if (!o->follow || ended)
			return CLI_OK;
		/* The API has no "wait for output"; polling is the only way to follow. */
		fflush(stdout);
		ferry__cli_sleep(FOLLOW_DELAY_S);
	}
}

int ferry__cli_cmd_logs(struct ctx *c, int argc, char **argv)
{
	static const struct option opts[] = {
	    {"help", no_argument, NULL, 'h'},
	    {"json", no_argument, NULL, OPT_JSON},
	    {"stderr", no_argument, NULL, OPT_STDERR},
	    {"follow", no_argument, NULL, 'f'},
	    {0},
	};
	struct logs_opts o = {.stream = FERRY_STDOUT};
	ferry_job_id id;
	char *buf;
	int rc;

	rc = ferry__cli_parse_opts(c, argc, argv, "hf", opts, logs_opt, &o);
	if (rc == CLI_OK)
		rc = ferry__cli_one_job(c, argc, argv, &id);
	if (rc != CLI_OK)
		return rc;
	buf = malloc(READ_CHUNK);
	if (!buf)
		return ferry__cli_out_of_memory(c);
	rc = copy_output(c, id, &o, buf);
	free(buf);
	return rc;
}
