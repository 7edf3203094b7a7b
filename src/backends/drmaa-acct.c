/*
 * drmaa-acct.c - what the drmaa backend reads of ended jobs (drmaa-acct.h).
 * The backend calls these on its worker thread: they touch nothing but
 * their arguments.
 */
#include <ctype.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "drmaa-acct.h"

void ferry__drmaa_result_init(struct job_result *res)
{
	memset(res, 0, sizeof(*res));
	res->cpu_user = res->cpu_sys = res->wall = -1;
	res->max_rss_kb = -1;
}

void ferry__drmaa_rusage(char *entry, struct job_result *res)
{
	char *eq = strchr(entry, '=');
	double x;

	if (!eq)
		return;
	*eq = '\0';
	x = atof(eq + 1);
	if (!strcmp(entry, "ru_utime") || !strcmp(entry, "user_cpu"))
		res->cpu_user = x;
	else if (!strcmp(entry, "ru_stime") || !strcmp(entry, "system_cpu"))
		res->cpu_sys = x;
	else if (!strcmp(entry, "ru_wallclock") || !strcmp(entry, "wallclock"))
		res->wall = x;
	else if (!strcmp(entry, "ru_maxrss") && x > 0)
		res->max_rss_kb = (int64_t)x;
	else if (!strcmp(entry, "start_time") && x > 0)
		res->started_at = x;
	else if (!strcmp(entry, "end_time") && x > 0)
		res->ended_at = x;
}

int ferry__drmaa_signal_number(const char *name)
{
	const char *n = !strncmp(name, "SIG", 3) ? name + 3 : name;

	for (int s = 1; s < NSIG; s++) {
		const char *abbrev = sigabbrev_np(s);
		if (abbrev && !strcmp(abbrev, n))
			return s;
	}
	return atoi(n);
}

/* qacct's values end with blanks: without them, in place. */
static const char *trim(char *s)
{
	size_t n = strlen(s);

	while (n > 0 && isspace((unsigned char)s[n - 1]))
		s[--n] = '\0';
	return s;
}

/* "key value" lines of qacct: the value of key, or NULL. */
static const char *qacct_value(const char *text, const char *key, char *buf, size_t len)
{
	size_t kl = strlen(key);

	for (const char *l = text; l && *l; l = strchr(l, '\n'), l = l ? l + 1 : NULL) {
		if (!strncmp(l, key, kl) && (l[kl] == ' ' || l[kl] == '\t')) {
			const char *v = l + kl + strspn(l + kl, " \t");
			snprintf(buf, len, "%.*s", (int)strcspn(v, "\n"), v);
			return buf;
		}
	}
	return NULL;
}

/* The record of task (NULL: not an array) in qacct's text, up to the next one. */
static const char *qacct_record(const char *text, const char *task, size_t *len)
{
	/* the first record's separator starts the text, the others a line */
	for (const char *r = strncmp(text, "====", 4) ? strstr(text, "\n====") : text; r;
	     r = strstr(r + 1, "\n====")) {
		const char *body = strchr(r + 1, '\n'), *next;
		char v[64];
		if (!body)
			break;
		next = strstr(body, "\n====");
		*len = next ? (size_t)(next - body) : strlen(body);
		char *rec = strndup(body, *len);
		int match =
		    rec &&
		    (!task || (qacct_value(rec, "taskid", v, sizeof(v)) && !strcmp(trim(v), task)));
		free(rec);
		if (match)
			return body;
	}
	return NULL;
}

int ferry__qacct_result(const char *text, const char *task, struct job_result *res)
{
	const char *rec;
	char v[256], *r;
	size_t len;
	int failed, code;

	if (!(rec = qacct_record(text, task, &len)) || !(r = strndup(rec, len)))
		return 0;
	ferry__drmaa_result_init(res);
	failed = atoi(qacct_value(r, "failed", v, sizeof(v)) ?: "0");
	code = atoi(qacct_value(r, "exit_status", v, sizeof(v)) ?: "0");
	res->wall = atof(qacct_value(r, "ru_wallclock", v, sizeof(v)) ?: "-1");
	res->cpu_user = atof(qacct_value(r, "ru_utime", v, sizeof(v)) ?: "-1");
	res->cpu_sys = atof(qacct_value(r, "ru_stime", v, sizeof(v)) ?: "-1");
	res->max_rss_kb = atoll(qacct_value(r, "ru_maxrss", v, sizeof(v)) ?: "-1");
	if (failed == 0) {
		res->exit_status = FERRY_FINISHED_REGULARLY;
		res->exit_value = code;
	} else if (failed == 100 && code > 128) { /* "assumedly after job": a signal */
		res->exit_status = FERRY_FINISHED_SIGNAL;
		res->signal = code - 128;
	} else if (failed == 37) {
		res->exit_status = FERRY_FINISHED_SIGNAL;
		res->signal = SIGKILL;
		snprintf(res->message, sizeof(res->message), "walltime limit exceeded: killed");
	} else {
		res->exit_status = FERRY_ABORTED;
		snprintf(res->message, sizeof(res->message), "Grid Engine: failed %s",
			 qacct_value(r, "failed", v, sizeof(v)) ?: "?");
	}
	free(r);
	return 1;
}
