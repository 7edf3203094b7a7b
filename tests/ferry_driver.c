/*
 * ferry_driver.c - one long-lived libferry connection driven line by line
 * from stdin, so that Python tests can act on the world (cut a link, kill
 * an engine) while a call is in flight on a connection that lives on.
 *
 * Commands (words split on blanks), one answer line each:
 *   connect RESOURCE [LOGIN|- [PASSWORD]]   timeout SECONDS   ping
 *   submit ARG...     submit_many N ARG...    wait SECONDS ID...
 *   submit_held N ARG... (submit_many, the jobs held)
 *   status ID...      engine_running RESOURCE                 quit
 *   send PATH...      retrieve SERVER_PATH      transfer SERVER_PATH
 * Answers: "ok [VALUES...]" or "err CODE message".
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ferry.h"

#define MAXW 256

static ferry_conn *conn;

static void err(int rc)
{
	printf("err %d %s\n", rc, conn ? ferry_errmsg(conn) : ferry_strerror(rc));
}

static void do_connect(char **w, int n)
{
	const char *login = n > 2 && strcmp(w[2], "-") ? w[2] : NULL;
	int rc;

	ferry_disconnect(conn);
	conn = NULL;
	rc = ferry_connect(w[1], login, n > 3 ? w[3] : NULL, NULL, &conn);
	if (rc) {
		err(rc);
		ferry_disconnect(conn);
		conn = NULL;
		return;
	}
	puts("ok");
}

static void do_submit_many(char **argv, long count, int hold)
{
	struct ferry_job_spec *specs = calloc((size_t)count, sizeof(*specs));
	ferry_job_id *ids = calloc((size_t)count, sizeof(*ids));
	int rc;

	for (long i = 0; specs && i < count; i++) {
		ferry_job_spec_init(&specs[i]);
		specs[i].argv = (const char *const *)argv;
		specs[i].hold = hold;
	}
	rc = specs && ids ? ferry_submit_many(conn, specs, (size_t)count, ids) : FERRY_ENOMEM;
	if (rc) {
		err(rc);
	} else {
		printf("ok");
		for (long i = 0; i < count; i++)
			printf(" %lld", (long long)ids[i]);
		putchar('\n');
	}
	free(specs);
	free(ids);
}

static void do_status(char **w, int n)
{
	enum ferry_job_status st;
	char line[8192] = "ok";

	for (int i = 1; i < n; i++) {
		int rc = ferry_status(conn, strtoll(w[i], NULL, 10), &st);
		if (rc) {
			err(rc);
			return;
		}
		strncat(line, " ", sizeof(line) - strlen(line) - 1);
		strncat(line, ferry_status_name(st), sizeof(line) - strlen(line) - 1);
	}
	puts(line);
}

static void do_wait(char **w, int n)
{
	ferry_job_id ids[MAXW];
	int rc;

	for (int i = 2; i < n; i++)
		ids[i - 2] = strtoll(w[i], NULL, 10);
	rc = ferry_wait(conn, ids, (size_t)(n - 2), strtod(w[1], NULL));
	if (rc)
		err(rc);
	else
		puts("ok");
}

static void command(char **w, int n)
{
	int rc = 0;
	long pid = 0;

	if (!strcmp(w[0], "connect") && n >= 2) {
		do_connect(w, n);
		return;
	}
	if (!strcmp(w[0], "engine_running") && n == 2) {
		rc = ferry_engine_running(w[1], NULL, &pid);
		if (rc < 0)
			printf("err %d %s\n", rc, ferry_strerror(rc));
		else
			printf("ok %d %ld\n", rc, pid);
		return;
	}
	if (!conn) {
		puts("err 0 not connected");
		return;
	}
	if (!strcmp(w[0], "timeout") && n == 2) {
		rc = ferry_set_timeout(conn, strtod(w[1], NULL));
	} else if (!strcmp(w[0], "ping") && n == 1) {
		rc = ferry_ping(conn);
	} else if (!strcmp(w[0], "submit") && n >= 2) {
		do_submit_many(w + 1, 1, 0);
		return;
	} else if (!strcmp(w[0], "submit_many") && n >= 3) {
		do_submit_many(w + 2, strtol(w[1], NULL, 10), 0);
		return;
	} else if (!strcmp(w[0], "submit_held") && n >= 3) {
		do_submit_many(w + 2, strtol(w[1], NULL, 10), 1);
		return;
	} else if (!strcmp(w[0], "send") && n >= 2) {
		char *sp = NULL;
		rc = ferry_send_files(conn, (const char *const *)w + 1, (size_t)(n - 1), 0, &sp);
		if (!rc)
			printf("ok %s\n", sp);
		free(sp);
		if (!rc)
			return;
	} else if (!strcmp(w[0], "retrieve") && n == 2) {
		rc = ferry_retrieve_file(conn, w[1]);
	} else if (!strcmp(w[0], "transfer") && n == 2) {
		struct ferry_transfer_info *t = NULL;
		rc = ferry_transfer_info(conn, w[1], &t);
		if (!rc)
			printf("ok %s %lld %lld %lld\n", ferry_transfer_state_name(t->state),
			       (long long)t->size, (long long)t->done, (long long)t->received);
		ferry_transfer_info_free(t);
		if (!rc)
			return;
	} else if (!strcmp(w[0], "status") && n >= 2) {
		do_status(w, n);
		return;
	} else if (!strcmp(w[0], "wait") && n >= 3) {
		do_wait(w, n);
		return;
	} else {
		puts("err 0 unknown command");
		return;
	}
	if (rc)
		err(rc);
	else
		puts("ok");
}

int main(void)
{
	char line[65536];

	setvbuf(stdout, NULL, _IOLBF, 0);
	while (fgets(line, sizeof(line), stdin)) {
		char *w[MAXW + 1], *save = NULL;
		int n = 0;

		for (char *t = strtok_r(line, " \t\r\n", &save); t && n < MAXW;
		     t = strtok_r(NULL, " \t\r\n", &save))
			w[n++] = t;
		w[n] = NULL;
		if (n == 0)
			continue;
		if (!strcmp(w[0], "quit"))
			break;
		command(w, n);
	}
	ferry_disconnect(conn);
	return 0;
}
