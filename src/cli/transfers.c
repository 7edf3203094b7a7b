/*
 * transfers.c - the commands on transfers (docs/transfers.md): send,
 * register, retrieve, transfers, transfer-info and cancel-transfer.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "jbytes.h"

/* Hours a transfer is kept when the command does not say. */
#define DISPOSAL_DEFAULT_HOURS 168

struct tr_opts {
	long long disposal;
	const char *to;
	int force;
	const char *allowed; /* the command's short options: the long ones it takes */
};

static int tr_opt(struct ctx *c, void *data, int opt, const char *arg)
{
	struct tr_opts *o = data;

	/* the transfer commands share one table of long options, not their meaning */
	if (!strchr(o->allowed, opt)) {
		ferry__cli_errorf(c, "option '--%s' does not apply to this command",
				  opt == 'd'   ? "disposal"
				  : opt == 't' ? "to"
					       : "force");
		return ferry__cli_usage_error(c);
	}
	switch (opt) {
	case 'd':
		return ferry__cli_int_option(c, "--disposal", arg, 1, DISPOSAL_MAX_HOURS,
					     &o->disposal) < 0
			   ? ferry__cli_usage_error(c)
			   : CLI_OK;
	case 't':
		o->to = arg;
		return CLI_OK;
	case 'f':
		o->force = 1;
		return CLI_OK;
	}
	return ferry__cli_usage_error(c);
}

/* The options shortopts names, min_args to max_args (0: no limit) arguments, then connects. */
static int tr_parse(struct ctx *c, int argc, char **argv, const char *shortopts, struct tr_opts *o,
		    int min_args, int max_args)
{
	static const struct option opts[] = {
	    {"help", no_argument, NULL, 'h'},		{"json", no_argument, NULL, OPT_JSON},
	    {"disposal", required_argument, NULL, 'd'}, {"to", required_argument, NULL, 't'},
	    {"force", no_argument, NULL, 'f'},		{0},
	};
	int rc, n;

	o->allowed = shortopts;
	rc = ferry__cli_parse_opts(c, argc, argv, shortopts, opts, tr_opt, o);
	n = argc - optind;

	if (rc != CLI_OK)
		return rc;
	if (n < min_args || (max_args && n > max_args)) {
		ferry__cli_errorf(c, n < min_args ? "missing argument" : "unexpected argument '%s'",
				  n < min_args ? "" : argv[optind + max_args]);
		return ferry__cli_usage_error(c);
	}
	return ferry__cli_connect(c) < 0 ? CLI_ERR : CLI_OK;
}

/* What a send or register made: its server path (freed), or why it failed (rc < 0). */
static int print_path(const struct ctx *c, int rc, char *path)
{
	if (rc < 0) {
		rc = ferry__cli_report(c, rc);
	} else if (c->json) {
		rc = ferry__cli_print_json(
		    c, json_pack("{s:o}", "server_path", ferry__json_bytes(path)), JSON_COMPACT);
	} else {
		puts(path);
		rc = CLI_OK;
	}
	free(path);
	return rc;
}

/* A path's last component, for the progress bar's label. */
static const char *last_name(const char *path)
{
	const char *slash = strrchr(path, '/');

	return slash && slash[1] ? slash + 1 : path;
}

/* ferry send PATH... : one transfer; prints its server path */
int ferry__cli_cmd_send(struct ctx *c, int argc, char **argv)
{
	struct tr_opts o = {.disposal = DISPOSAL_DEFAULT_HOURS};
	char *sp = NULL;
	int rc = tr_parse(c, argc, argv, "hd:", &o, 1, 0);

	if (rc != CLI_OK)
		return rc;
	c->bar.label = last_name(argv[optind]);
	ferry__bar_attach(&c->bar, c->conn);
	rc = ferry_send_files(c->conn, (const char *const *)argv + optind, (size_t)(argc - optind),
			      (int)o.disposal, &sp);
	ferry__bar_end(&c->bar);
	return print_path(c, rc, sp);
}

int ferry__cli_cmd_register(struct ctx *c, int argc, char **argv)
{
	struct tr_opts o = {.disposal = DISPOSAL_DEFAULT_HOURS};
	char *sp = NULL;
	int rc = tr_parse(c, argc, argv, "hd:", &o, 1, 1);

	if (rc != CLI_OK)
		return rc;
	rc = ferry_register_transfer(c->conn, argv[optind], (int)o.disposal, &sp);
	return print_path(c, rc, sp);
}

int ferry__cli_cmd_retrieve(struct ctx *c, int argc, char **argv)
{
	struct tr_opts o = {0};
	int rc = tr_parse(c, argc, argv, "ht:f", &o, 1, 1);

	if (rc != CLI_OK)
		return rc;
	c->bar.label = last_name(o.to ? o.to : argv[optind]);
	ferry__bar_attach(&c->bar, c->conn);
	rc = o.to ? ferry_retrieve_file_to(c->conn, argv[optind], o.to,
					   o.force ? FERRY_OVERWRITE : 0)
		  : ferry_retrieve_file(c->conn, argv[optind]);
	ferry__bar_end(&c->bar);
	return rc < 0 ? ferry__cli_report(c, rc) : CLI_OK;
}

int ferry__cli_cmd_cancel_transfer(struct ctx *c, int argc, char **argv)
{
	struct tr_opts o = {0};
	int rc = tr_parse(c, argc, argv, "hf", &o, 1, 1);

	if (rc != CLI_OK)
		return rc;
	rc = ferry_cancel_transfer(c->conn, argv[optind], o.force ? FERRY_FORCE : 0);
	return rc < 0 ? ferry__cli_report(c, rc) : CLI_OK;
}

/* Everything about one transfer: a JSON object, or one "key: value" line each. */
static int show_transfer(const struct ctx *c, const char *server_path)
{
	struct ferry_transfer_info *t = NULL;
	int rc = ferry_transfer_info(c->conn, server_path, &t);

	if (rc < 0)
		return ferry__cli_report(c, rc);
	rc = ferry__cli_show_transfer(c, t);
	ferry_transfer_info_free(t);
	return rc;
}

int ferry__cli_cmd_transfer_info(struct ctx *c, int argc, char **argv)
{
	struct tr_opts o = {0};
	int rc = tr_parse(c, argc, argv, "h", &o, 1, 1);

	return rc != CLI_OK ? rc : show_transfer(c, argv[optind]);
}

/* ferry transfers [SERVER_PATH]: all of them, or (as transfer-info) everything about one */
int ferry__cli_cmd_transfers(struct ctx *c, int argc, char **argv)
{
	struct tr_opts o = {0};
	struct ferry_transfer_info **list = NULL;
	size_t n = 0;
	int rc = tr_parse(c, argc, argv, "h", &o, 0, 1);

	if (rc != CLI_OK)
		return rc;
	if (optind < argc)
		return show_transfer(c, argv[optind]);
	rc = ferry_transfers(c->conn, &list, &n);
	if (rc < 0)
		return ferry__cli_report(c, rc);
	rc = ferry__cli_print_transfers(c, list, n);
	ferry_transfer_list_free(list, n);
	return rc;
}
