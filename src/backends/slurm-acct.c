/*
 * slurm-acct.c - running Slurm's commands and reading what they print of
 * ended jobs: sacct, `scontrol show job` records and the jobcomp file.
 * Nothing here touches the engine: it runs on the worker thread
 * (slurm.c's poll hands it copies and applies what it finds).
 */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>

#include "run.h"
#include "slurm.h"
#include "util.h"

/* Slurm's message: its stderr (else stdout), trimmed to one paragraph. */
static void slurm_message(const char *cmd, int rc, int status, const struct ferry_output *out,
			  const struct ferry_output *err, char *msg, size_t msglen)
{
	const char *text = err->len ? err->data : out->data;
	int tl = (int)strlen(text);

	while (tl > 0 && isspace((unsigned char)text[tl - 1]))
		tl--;
	if (rc == -ENOENT)
		snprintf(msg, msglen, "cannot run '%s': it is not installed or not on PATH", cmd);
	else if (rc == -ETIMEDOUT)
		snprintf(msg, msglen, "'%s' did not answer within %.0f s", cmd, CMD_TIMEOUT_S);
	else if (rc == -ECANCELED)
		snprintf(msg, msglen, "'%s' was stopped: the engine stops", cmd);
	else if (rc < 0)
		snprintf(msg, msglen, "cannot run '%s': %s", cmd, strerror(-rc));
	else if (tl)
		snprintf(msg, msglen, "%s failed: %.*s", cmd, tl > 400 ? 400 : tl, text);
	else
		snprintf(msg, msglen, "%s failed (exit status %d)", cmd,
			 WIFEXITED(status) ? WEXITSTATUS(status) : -1);
}

/*
 * Runs a Slurm command; 0 with its output in *out (release it), or -1
 * with msg set. *transient says whether trying again later may help.
 * Blocks: on the worker thread (cancel_fd: the item's), or at startup
 * (-1).
 */
int ferry__slurm_run(int cancel_fd, unsigned long long nofile, char *const *argv, const char *input,
		     size_t inlen, struct ferry_output *out, char *msg, size_t msglen,
		     int *transient)
{
	struct ferry_output err;
	int status, rc = ferry__run_command(argv, input, inlen, CMD_TIMEOUT_S, cancel_fd, nofile,
					    out, &err, &status);
	static const char *const passing[] = {
	    "Unable to contact",
	    "Socket timed out",
	    "temporarily",
	    "Connection refused",
	    "Zero Bytes were transmitted",
	    "Resource temporarily unavailable",
	};

	if (transient)
		*transient = rc == -ETIMEDOUT || rc == -ECANCELED;
	if (rc == 0 && WIFEXITED(status) && WEXITSTATUS(status) == 0) {
		ferry__output_release(&err);
		return 0;
	}
	slurm_message(argv[0], rc, status, out, &err, msg, msglen);
	for (size_t i = 0; transient && i < FERRY_ARRAY_SIZE(passing); i++)
		if (strstr(err.data, passing[i]))
			*transient = 1;
	ferry__output_release(out);
	ferry__output_release(&err);
	return -1;
}

double ferry__slurm_parse_time(const char *s)
{
	struct tm tm = {0};
	const char *end = strptime(s, "%Y-%m-%dT%H:%M:%S", &tm);

	if (!end)
		return 0;
	tm.tm_isdst = -1;
	return (double)mktime(&tm);
}

/* [DD-][HH:]MM:SS[.mmm] into seconds. */
static double parse_duration(const char *s)
{
	double parts[3] = {0}, days = 0, frac = 0;
	int n = 0;
	const char *p = s;

	if (strchr(s, '-')) {
		days = atof(s);
		p = strchr(s, '-') + 1;
	}
	while (*p && n < 3) {
		parts[n++] = (double)strtol(p, (char **)&p, 10);
		if (*p == '.')
			frac = strtod(p, (char **)&p);
		if (*p != ':')
			break;
		p++;
	}
	if (n == 3)
		return days * 86400 + parts[0] * 3600 + parts[1] * 60 + parts[2] + frac;
	if (n == 2)
		return days * 86400 + parts[0] * 60 + parts[1] + frac;
	return days * 86400 + parts[0] + frac;
}

static int64_t parse_kb(const char *s)
{
	char *end;
	double v = strtod(s, &end);

	if (end == s)
		return -1;
	switch (*end) {
	case 'G':
		return (int64_t)(v * 1024 * 1024);
	case 'M':
		return (int64_t)(v * 1024);
	case 'K':
		return (int64_t)v;
	default:
		return (int64_t)(v / 1024);
	}
}

int ferry__slurm_ended_state(const char *st)
{
	static const char *const ended[] = {
	    "COMPLETED", "FAILED",   "CANCELLED", "TIMEOUT",	  "OUT_OF_MEMORY", "NODE_FAIL",
	    "BOOT_FAIL", "DEADLINE", "PREEMPTED", "SPECIAL_EXIT", "REVOKED",
	};

	for (size_t i = 0; i < FERRY_ARRAY_SIZE(ended); i++)
		if (!strncmp(st, ended[i], strlen(ended[i])))
			return 1;
	return 0;
}

/* Splits a line at '|' into at most max fields (the last keeps the rest). */
size_t ferry__slurm_fields(char *line, char **f, size_t max)
{
	size_t n = 0;

	while (line && n < max) {
		f[n++] = line;
		line = n < max ? strchr(line, '|') : NULL;
		if (line)
			*line++ = '\0';
	}
	return n;
}

/*
 * Whether rec names the pending remainder of an array ("A" alone, or
 * "A_[2-4,7]" in sacct) that held the task native "A_T". A task still
 * pending when Slurm cancels it never gets a record of its own: only the
 * remainder's record tells how it ended.
 */
static int in_remainder(const char *rec, const char *native)
{
	const char *us = strchr(native, '_');
	size_t al = us ? (size_t)(us - native) : 0;
	long t;

	if (!us || strncmp(rec, native, al) || (rec[al] && strncmp(rec + al, "_[", 2)))
		return 0;
	if (!rec[al])
		return 1;
	t = atol(us + 1);
	for (const char *p = rec + al + 2; isdigit((unsigned char)*p);) {
		char *e;
		long lo = strtol(p, &e, 10), hi = lo, step = 1;
		if (*e == '-')
			hi = strtol(e + 1, &e, 10);
		if (*e == ':')
			step = strtol(e + 1, &e, 10);
		if (t >= lo && t <= hi && step > 0 && (t - lo) % step == 0)
			return 1;
		if (*e != ',')
			break;
		p = e + 1;
	}
	return 0;
}

/* Whether a record named rec tells of r: its own, or (pass 1) its array's remainder. */
static int names(const char *rec, const struct sres *r, int pass)
{
	return pass ? in_remainder(rec, r->native) : !strcmp(rec, r->native);
}

/*
 * sacct's -j list: the natives of r (arrays 0), or the array ids ("A" of
 * "A_T") of its unresolved tasks, whose remainders sacct then lists
 * (arrays 1). malloc'd; NULL when empty.
 */
static char *sacct_ids(const struct sres *r, size_t n, int arrays)
{
	char *ids = NULL;
	const char *last = NULL; /* the native whose array was listed last */
	size_t len, k = 0;
	FILE *f = open_memstream(&ids, &len);

	for (size_t i = 0; f && i < n; i++) {
		size_t al = strcspn(r[i].native, "_");
		if (!r[i].native[0]) /* not known: no record names it */
			continue;
		if (!arrays) {
			fprintf(f, "%s%s", k++ ? "," : "", r[i].native);
		} else if (!r[i].state[0] && r[i].native[al] &&
			   (!last || strncmp(last, r[i].native, al + 1))) {
			fprintf(f, "%s%.*s", k++ ? "," : "", (int)al, r[i].native);
			last = r[i].native;
		}
	}
	if (!f || fclose(f) != 0 || !k) {
		free(ids);
		return NULL;
	}
	return ids;
}

/* One sacct row (JobID|State|ExitCode|UserCPU|SystemCPU|MaxRSS|Start|End) into r. */
static void sacct_row(char **f, struct sres *r, size_t n, int pass)
{
	char *dot = strchr(f[0], '.');

	if (dot)
		*dot = '\0';
	for (size_t i = 0; i < n; i++) {
		if ((pass && r[i].state[0]) || !names(f[0], &r[i], pass))
			continue;
		if (dot) { /* a step: what it used, the batch step's exit */
			int64_t kb = parse_kb(f[5]);
			if (kb > r[i].maxrss_kb)
				r[i].maxrss_kb = kb;
			continue;
		}
		if (!ferry__slurm_ended_state(f[1]))
			continue; /* accounting has not heard of the end yet */
		snprintf(r[i].state, sizeof(r[i].state), "%s", f[1]);
		sscanf(f[2], "%d:%d", &r[i].code, &r[i].sig);
		r[i].user = parse_duration(f[3]);
		r[i].sys = parse_duration(f[4]);
		r[i].start = ferry__slurm_parse_time(f[6]);
		r[i].end = ferry__slurm_parse_time(f[7]);
	}
	if (dot)
		*dot = '.';
}

/* What accounting says of the jobs of r (ids: their natives, comma-separated). */
static void from_sacct(struct slurm_resolve *x, const char *ids, struct sres *r, size_t n)
{
	char *argv[] = {"sacct",
			"-n",
			"-P",
			"-j",
			(char *)ids,
			"-o",
			"JobID,State,ExitCode,UserCPU,SystemCPU,MaxRSS,Start,End",
			NULL};
	struct ferry_output out;
	char msg[512], *save = NULL, *(*rows)[8] = NULL;
	size_t nrows = 0, cap = 0;

	if (x->accounting == 0)
		return;
	if (ferry__slurm_run(x->cancel_fd, x->nofile, argv, NULL, 0, &out, msg, sizeof(msg), NULL) <
	    0) {
		if (strstr(msg, "accounting storage is disabled") || strstr(msg, "not installed"))
			x->accounting = 0;
		return;
	}
	x->accounting = 1;
	x->answered = 1;
	for (char *l = strtok_r(out.data, "\n", &save); l; l = strtok_r(NULL, "\n", &save)) {
		if (nrows == cap) {
			size_t c = cap ? 2 * cap : 64;
			char *(*v)[8] = realloc(rows, c * sizeof(*v));
			if (!v)
				break;
			rows = v;
			cap = c;
		}
		if (ferry__slurm_fields(l, rows[nrows], 8) == 8)
			nrows++;
	}
	for (int pass = 0; pass < 2; pass++)
		for (size_t k = 0; k < nrows; k++)
			sacct_row(rows[k], r, n, pass);
	free(rows);
	ferry__output_release(&out);
}

/* The value of KEY= in a "KEY=VALUE KEY=VALUE" record, in buf. */
static const char *kv(const char *rec, const char *key, char *buf, size_t len)
{
	size_t kl = strlen(key);

	for (const char *p = rec; (p = strstr(p, key)); p += kl) {
		if ((p == rec || p[-1] == ' ') && p[kl] == '=') {
			size_t vl = strcspn(p + kl + 1, " \n");
			snprintf(buf, len, "%.*s", (int)vl, p + kl + 1);
			return buf;
		}
	}
	buf[0] = '\0';
	return buf;
}

/*
 * The native id a scontrol or jobcomp record is of: "A_T" for a task,
 * "A" or "A_[RANGE]" for an array's pending remainder, else the job id.
 */
static void record_native(const char *rec, char *nat, size_t len)
{
	char id[64], arr[64], task[64];

	kv(rec, "JobId", id, sizeof(id));
	kv(rec, "ArrayJobId", arr, sizeof(arr));
	kv(rec, "ArrayTaskId", task, sizeof(task));
	if (!arr[0] || !task[0] || !strcmp(task, "N/A"))
		snprintf(nat, len, "%s", id);
	else if (!strcmp(task, "4294967294")) /* NO_VAL: the remainder, range forgotten */
		snprintf(nat, len, "%s", arr);
	else if (strspn(task, "0123456789") != strlen(task))
		snprintf(nat, len, "%s_[%s]", arr, task);
	else
		snprintf(nat, len, "%s_%s", arr, task);
}

/*
 * Fills unresolved results from records of scontrol or the jobcomp file.
 * A record without ArrayJobId (the jobcomp file's never have it) names a
 * job by its own id only: "A" there may be any task of array A (the one
 * that kept the array's id), not its remainder, so it is no task's in
 * pass 1. Taking it for one gave a task that exited 3 the 0 of another.
 */
static void from_records(const char *text, struct sres *r, size_t n, int pass)
{
	char *copy = strdup(text), *save = NULL;

	for (char *l = copy ? strtok_r(copy, "\n", &save) : NULL; l;
	     l = strtok_r(NULL, "\n", &save)) {
		char nat[160], st[32], ec[64], t[64];
		if (pass && !kv(l, "ArrayJobId", t, sizeof(t))[0])
			continue;
		record_native(l, nat, sizeof(nat));
		kv(l, "JobState", st, sizeof(st));
		for (size_t i = 0; i < n; i++) {
			if (r[i].state[0] || !names(nat, &r[i], pass) ||
			    !ferry__slurm_ended_state(st))
				continue;
			snprintf(r[i].state, sizeof(r[i].state), "%s", st);
			if (sscanf(kv(l, "ExitCode", ec, sizeof(ec)), "%d:%d", &r[i].code,
				   &r[i].sig) != 2) {
				int raw = atoi(kv(l, "ExitCode", ec, sizeof(ec)));
				r[i].code = WIFEXITED(raw) ? WEXITSTATUS(raw) : 0;
				r[i].sig = WIFSIGNALED(raw) ? WTERMSIG(raw) : 0;
			}
			r[i].start = ferry__slurm_parse_time(kv(l, "StartTime", t, sizeof(t)));
			r[i].end = ferry__slurm_parse_time(kv(l, "EndTime", t, sizeof(t)));
		}
	}
	free(copy);
}

static size_t unresolved(const struct sres *r, size_t n)
{
	size_t missing = 0;

	for (size_t i = 0; i < n; i++)
		missing += !r[i].state[0];
	return missing;
}

/*
 * Exit information of ended jobs, from the best source that knows them:
 * accounting, else slurmctld's records, else the jobcomp file; a job's
 * own record first, else its array's remainder. x->answered says whether
 * any source could be read: when none could, a job left unresolved is
 * not known to be gone.
 */
void ferry__slurm_resolve(struct slurm_resolve *x, struct sres *r, size_t n)
{
	char *argv[] = {"scontrol", "-o", "show", "job", NULL}, msg[512];
	char *text = NULL, *ids;
	struct ferry_output out;

	/* the jobs' own records; an array's whole listing only when a task has none */
	for (int arrays = 0; arrays < 2; arrays++) {
		if ((ids = sacct_ids(r, n, arrays)))
			from_sacct(x, ids, r, n);
		free(ids);
	}
	if (unresolved(r, n) && ferry__slurm_run(x->cancel_fd, x->nofile, argv, NULL, 0, &out, msg,
						 sizeof(msg), NULL) == 0) {
		x->answered = 1;
		for (int pass = 0; pass < 2; pass++)
			from_records(out.data, r, n, pass);
		ferry__output_release(&out);
	}
	if (unresolved(r, n) && x->jobcomp &&
	    ferry__read_file(x->jobcomp, 512u << 20, &text, NULL) == 0) {
		x->answered = 1;
		for (int pass = 0; pass < 2; pass++)
			from_records(text, r, n, pass);
	}
	free(text);
}
