/*
 * drmaa_client.c - a DRMAA client in C linked with libferry-drmaa, run by
 * tests/test_drmaa_provider.py: the calls python3-drmaa cannot reach
 * (iterators to their end, diagnosis buffers of every size, NULL
 * arguments), and, under the sanitizer build, the library's memory with
 * leak detection on (a python process cannot have it).
 * Usage: drmaa_client WORKDIR. Prints "ok" and exits 0, or names the
 * failed check and exits 1.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "drmaa.h"

#define CHECK(cond)                                                                                \
	do {                                                                                       \
		if (!(cond)) {                                                                     \
			fprintf(stderr, "line %d: check failed: %s (diag: %s)\n", __LINE__, #cond, \
				diag);                                                             \
			exit(1);                                                                   \
		}                                                                                  \
	} while (0)

static char diag[DRMAA_ERROR_STRING_BUFFER];
#define D diag, sizeof(diag)

static int ps(const char *id)
{
	int st = -1;

	CHECK(drmaa_job_ps(id, &st, D) == DRMAA_ERRNO_SUCCESS);
	return st;
}

static void until_ps(const char *id, int want)
{
	for (int i = 0; i < 1000 && ps(id) != want; i++)
		nanosleep(&(struct timespec){0, 20000000}, NULL);
	CHECK(ps(id) == want);
}

/*
 * The spec's diagnosis buffer: a call that fails with a buffer of 8 bytes
 * writes 7 characters of its message and the NUL, nothing past them.
 */
static char small[16];
#define SMALL small, 8

static void small_reset(void)
{
	memset(small, 'x', sizeof(small));
}

static int small_ok(void)
{
	return strlen(small) == 7 && small[8] == 'x' && small[15] == 'x';
}

static void names(void)
{
	drmaa_attr_names_t *n;
	char buf[DRMAA_ATTR_BUFFER];
	size_t count, seen = 0;
	int found = 0, transfer = 0, deadline = 0;

	CHECK(drmaa_get_attribute_names(&n, D) == 0);
	CHECK(drmaa_get_num_attr_names(n, &count) == 0 && count == 14);
	while (drmaa_get_next_attr_name(n, buf, sizeof(buf)) == DRMAA_ERRNO_SUCCESS) {
		seen++;
		found |= strcmp(buf, DRMAA_WCT_HLIMIT) == 0;
		transfer |= strcmp(buf, DRMAA_TRANSFER_FILES) == 0;
		deadline |= strcmp(buf, DRMAA_DEADLINE_TIME) == 0;
	}
	CHECK(seen == count && found && transfer && !deadline);
	CHECK(drmaa_get_next_attr_name(n, buf, sizeof(buf)) == DRMAA_ERRNO_NO_MORE_ELEMENTS);
	drmaa_release_attr_names(n);
	CHECK(drmaa_get_vector_attribute_names(&n, D) == 0);
	CHECK(drmaa_get_num_attr_names(n, &count) == 0 && count == 3);
	drmaa_release_attr_names(n);
}

static drmaa_job_template_t *job_template(const char *work)
{
	const char *argv[] = {"-c", "echo $X $1; echo e >&2; exit 2", "sh", "a", NULL};
	const char *env[] = {"X=y", NULL};
	drmaa_job_template_t *jt;
	drmaa_attr_values_t *v;
	char buf[64];
	size_t n;

	CHECK(drmaa_allocate_job_template(&jt, D) == 0);
	CHECK(drmaa_set_attribute(jt, DRMAA_REMOTE_COMMAND, "/bin/sh", D) == 0);
	CHECK(drmaa_set_vector_attribute(jt, DRMAA_V_ARGV, argv, D) == 0);
	CHECK(drmaa_set_vector_attribute(jt, DRMAA_V_ENV, env, D) == 0);
	CHECK(drmaa_set_attribute(jt, DRMAA_WD, work, D) == 0);
	CHECK(drmaa_set_attribute(jt, DRMAA_OUTPUT_PATH, ":$drmaa_wd_ph$/c$drmaa_incr_ph$.out",
				  D) == 0);
	CHECK(drmaa_set_attribute(jt, DRMAA_ERROR_PATH, "c$drmaa_incr_ph$.err", D) == 0);
	CHECK(drmaa_set_attribute(jt, DRMAA_NATIVE_SPECIFICATION, "--cpus=1 --walltime 1:00", D) ==
	      0);
	CHECK(drmaa_get_attribute(jt, DRMAA_NATIVE_SPECIFICATION, buf, 8, D) == 0);
	CHECK(strcmp(buf, "--cpus=") == 0);
	CHECK(drmaa_get_attribute(jt, DRMAA_JOB_NAME, buf, sizeof(buf), D) == 0 && !buf[0]);
	CHECK(drmaa_get_vector_attribute(jt, DRMAA_V_ARGV, &v, D) == 0);
	CHECK(drmaa_get_num_attr_values(v, &n) == 0 && n == 4);
	CHECK(drmaa_get_next_attr_value(v, buf, sizeof(buf)) == 0 && strcmp(buf, "-c") == 0);
	drmaa_release_attr_values(v);
	/* refusals, each with its code and a message naming what */
	CHECK(drmaa_set_attribute(jt, DRMAA_V_ARGV, "x", D) == DRMAA_ERRNO_INVALID_ARGUMENT);
	CHECK(strstr(diag, "vector"));
	CHECK(drmaa_set_attribute(jt, DRMAA_JOIN_FILES, "maybe", D) ==
	      DRMAA_ERRNO_INVALID_ATTRIBUTE_VALUE);
	CHECK(drmaa_set_attribute(jt, DRMAA_WD, "$drmaa_wd_ph$/x", D) ==
	      DRMAA_ERRNO_INVALID_ATTRIBUTE_VALUE);
	CHECK(drmaa_set_attribute(jt, DRMAA_WD, "/x/$drmaa_hd_ph$", D) ==
	      DRMAA_ERRNO_INVALID_ATTRIBUTE_VALUE);
	CHECK(drmaa_set_attribute(jt, DRMAA_OUTPUT_PATH, ":/a/$drmaa_hd_ph$", D) ==
	      DRMAA_ERRNO_INVALID_ATTRIBUTE_VALUE);
	/* Optional and not offered: refused by name, and not listed (names()). */
	CHECK(drmaa_set_attribute(jt, DRMAA_DEADLINE_TIME, "12:00", D) ==
	      DRMAA_ERRNO_INVALID_ARGUMENT);
	CHECK(strstr(diag, "does not support"));
	for (size_t i = 0; i < 3; i++) {
		const char *opt[] = {DRMAA_WCT_SLIMIT, DRMAA_DURATION_HLIMIT,
				     DRMAA_DURATION_SLIMIT};
		CHECK(drmaa_set_attribute(jt, opt[i], "60", D) == DRMAA_ERRNO_INVALID_ARGUMENT);
		CHECK(drmaa_get_attribute(jt, opt[i], buf, sizeof(buf), D) ==
		      DRMAA_ERRNO_INVALID_ARGUMENT);
		CHECK(strstr(diag, opt[i]) && strstr(diag, "does not support"));
	}
	/* Mandatory but not supported: the name is taken, a value refused. */
	CHECK(drmaa_set_attribute(jt, DRMAA_JOB_CATEGORY, "big", D) ==
	      DRMAA_ERRNO_INVALID_ATTRIBUTE_VALUE);
	CHECK(drmaa_set_attribute(jt, DRMAA_JOB_CATEGORY, "", D) == 0);
	CHECK(drmaa_set_attribute(jt, DRMAA_START_TIME, "12:00", D) ==
	      DRMAA_ERRNO_INVALID_ATTRIBUTE_VALUE);
	CHECK(drmaa_set_attribute(jt, DRMAA_BLOCK_EMAIL, "1", D) == 0);
	{
		const char *email[] = {"a@b.c", NULL}, *none[] = {NULL};
		CHECK(drmaa_set_vector_attribute(jt, DRMAA_V_EMAIL, email, D) ==
		      DRMAA_ERRNO_INVALID_ATTRIBUTE_VALUE);
		CHECK(drmaa_set_vector_attribute(jt, DRMAA_V_EMAIL, none, D) == 0);
	}
	/* An invalid value and an invalid name, the diagnosis cut short. */
	small_reset();
	CHECK(drmaa_set_attribute(jt, DRMAA_JOIN_FILES, "maybe", SMALL) ==
	      DRMAA_ERRNO_INVALID_ATTRIBUTE_VALUE);
	CHECK(small_ok() && strncmp(small, "drmaa_j", 7) == 0);
	small_reset();
	CHECK(drmaa_get_attribute(jt, "drmaa_nothing", buf, sizeof(buf), SMALL) ==
	      DRMAA_ERRNO_INVALID_ARGUMENT);
	CHECK(small_ok());
	CHECK(drmaa_set_attribute(jt, DRMAA_TRANSFER_FILES, "ix", D) ==
	      DRMAA_ERRNO_INVALID_ATTRIBUTE_VALUE);
	CHECK(drmaa_set_attribute(jt, DRMAA_NATIVE_SPECIFICATION, "--cpus 'x", D) ==
	      DRMAA_ERRNO_INVALID_ATTRIBUTE_VALUE);
	return jt;
}

static void run_and_wait(drmaa_job_template_t *jt)
{
	char id[DRMAA_JOBNAME_BUFFER], out[DRMAA_JOBNAME_BUFFER], buf[DRMAA_ATTR_BUFFER];
	drmaa_attr_values_t *usage;
	int stat, v, keys = 0;

	CHECK(drmaa_run_job(id, sizeof(id), jt, D) == 0);
	CHECK(drmaa_wait(id, out, sizeof(out), &stat, DRMAA_TIMEOUT_WAIT_FOREVER, &usage, D) == 0);
	CHECK(strcmp(id, out) == 0);
	while (drmaa_get_next_attr_value(usage, buf, sizeof(buf)) == 0)
		keys += strncmp(buf, "wallclock=", 10) == 0 || strncmp(buf, "maxrss=", 7) == 0;
	drmaa_release_attr_values(usage);
	CHECK(keys == 2);
	CHECK(drmaa_wifexited(&v, stat, D) == 0 && v == 1);
	CHECK(drmaa_wexitstatus(&v, stat, D) == 0 && v == 2);
	CHECK(drmaa_wifsignaled(&v, stat, D) == 0 && v == 0);
	CHECK(drmaa_wifaborted(&v, stat, D) == 0 && v == 0);
	CHECK(drmaa_wait(id, NULL, 0, NULL, 0, NULL, D) == DRMAA_ERRNO_INVALID_JOB);
	CHECK(ps(id) == DRMAA_PS_FAILED);
}

static void bulk(drmaa_job_template_t *jt)
{
	const char *all[] = {DRMAA_JOB_IDS_SESSION_ALL, NULL};
	drmaa_job_ids_t *ids;
	char id[32];
	size_t n;
	int st;

	CHECK(drmaa_run_bulk_jobs(&ids, jt, 1, 5, 2, D) == 0);
	CHECK(drmaa_get_num_job_ids(ids, &n) == 0 && n == 3);
	CHECK(drmaa_synchronize(all, 30, 1, D) == 0);
	CHECK(drmaa_get_next_job_id(ids, id, sizeof(id)) == 0);
	CHECK(drmaa_job_ps(id, &st, D) == DRMAA_ERRNO_INVALID_JOB);
	drmaa_release_job_ids(ids);
	CHECK(drmaa_run_bulk_jobs(&ids, jt, 0, 5, 1, D) == DRMAA_ERRNO_INVALID_ARGUMENT);
}

static void terminate(drmaa_job_template_t *jt)
{
	const char *argv[] = {"-c", "sleep 60", NULL};
	char id[32], sig[DRMAA_SIGNAL_BUFFER];
	int stat, v;

	CHECK(drmaa_set_vector_attribute(jt, DRMAA_V_ARGV, argv, D) == 0);
	CHECK(drmaa_set_attribute(jt, DRMAA_JOIN_FILES, "y", D) == 0);
	CHECK(drmaa_set_attribute(jt, DRMAA_OUTPUT_PATH, "sleep.out", D) == 0);
	CHECK(drmaa_run_job(id, sizeof(id), jt, D) == 0);
	until_ps(id, DRMAA_PS_RUNNING);
	CHECK(drmaa_control(id, DRMAA_CONTROL_SUSPEND, D) == 0);
	CHECK(ps(id) == DRMAA_PS_USER_SUSPENDED);
	CHECK(drmaa_control(id, DRMAA_CONTROL_RESUME, D) == 0);
	CHECK(drmaa_control(id, 9, D) == DRMAA_ERRNO_INVALID_ARGUMENT);
	CHECK(drmaa_control(DRMAA_JOB_IDS_SESSION_ALL, DRMAA_CONTROL_TERMINATE, D) == 0);
	CHECK(drmaa_wait(DRMAA_JOB_IDS_SESSION_ANY, NULL, 0, &stat, 30, NULL, D) == 0);
	CHECK(drmaa_wifsignaled(&v, stat, D) == 0 && v == 1);
	CHECK(drmaa_wtermsig(sig, 5, stat, D) == 0 && strcmp(sig, "SIGT") == 0);
	CHECK(drmaa_wait(DRMAA_JOB_IDS_SESSION_ANY, NULL, 0, &stat, 0, NULL, D) ==
	      DRMAA_ERRNO_INVALID_JOB);
}

/*
 * Thread safety: WORKERS threads, each with templates of its own, submit,
 * query and wait on jobs at once; then as many threads reap the session's
 * jobs with DRMAA_JOB_IDS_SESSION_ANY, each job once. A failure is told
 * in the thread's own diagnosis buffer (the global one is main's).
 */
#define WORKERS 4
#define ROUNDS	3

struct worker {
	pthread_t th;
	int k;
	char fail[2 * DRMAA_ERROR_STRING_BUFFER];
	char reaped[2][32];
};

#define TCHECK(w, cond)                                                                            \
	do {                                                                                       \
		if (!(cond)) {                                                                     \
			snprintf((w)->fail, sizeof((w)->fail), "line %d: %s (diag: %s)", __LINE__, \
				 #cond, td);                                                       \
			return NULL;                                                               \
		}                                                                                  \
	} while (0)

static void *submit_and_wait(void *arg)
{
	struct worker *w = arg;
	char td[DRMAA_ERROR_STRING_BUFFER], id[32], out[32], k[8];
	const char *argv[] = {"-c", "exit $0", k, NULL};
	drmaa_attr_values_t *usage;
	int stat, st, v;

	snprintf(k, sizeof(k), "%d", w->k);
	for (int round = 0; round < ROUNDS; round++) {
		drmaa_job_template_t *jt;
		TCHECK(w, drmaa_allocate_job_template(&jt, td, sizeof(td)) == 0);
		TCHECK(w, drmaa_set_attribute(jt, DRMAA_REMOTE_COMMAND, "/bin/sh", td,
					      sizeof(td)) == 0);
		TCHECK(w, drmaa_set_vector_attribute(jt, DRMAA_V_ARGV, argv, td, sizeof(td)) == 0);
		TCHECK(w, drmaa_run_job(id, sizeof(id), jt, td, sizeof(td)) == 0);
		TCHECK(w, drmaa_delete_job_template(jt, td, sizeof(td)) == 0);
		TCHECK(w, drmaa_job_ps(id, &st, td, sizeof(td)) == 0);
		TCHECK(w, drmaa_wait(id, out, sizeof(out), &stat, 60, &usage, td, sizeof(td)) == 0);
		drmaa_release_attr_values(usage);
		TCHECK(w, strcmp(id, out) == 0);
		TCHECK(w, drmaa_wexitstatus(&v, stat, td, sizeof(td)) == 0 && v == w->k);
	}
	return NULL;
}

static void *reap_any(void *arg)
{
	struct worker *w = arg;
	char td[DRMAA_ERROR_STRING_BUFFER];

	for (int i = 0; i < 2; i++)
		TCHECK(w, drmaa_wait(DRMAA_JOB_IDS_SESSION_ANY, w->reaped[i], sizeof(w->reaped[i]),
				     NULL, 60, NULL, td, sizeof(td)) == 0);
	return NULL;
}

static void run_workers(struct worker *w, void *(*fn)(void *))
{
	for (int i = 0; i < WORKERS; i++) {
		w[i].k = i + 1;
		w[i].fail[0] = '\0';
		CHECK(pthread_create(&w[i].th, NULL, fn, &w[i]) == 0);
	}
	for (int i = 0; i < WORKERS; i++) {
		CHECK(pthread_join(w[i].th, NULL) == 0);
		if (w[i].fail[0]) {
			fprintf(stderr, "thread %d: %s\n", i, w[i].fail);
			exit(1);
		}
	}
}

static void threads(drmaa_job_template_t *jt)
{
	const char *argv[] = {"-c", "true", NULL};
	char ids[2 * WORKERS][32];
	struct worker w[WORKERS];
	int stat, found = 0;

	run_workers(w, submit_and_wait);
	CHECK(drmaa_set_vector_attribute(jt, DRMAA_V_ARGV, argv, D) == 0);
	for (int i = 0; i < 2 * WORKERS; i++)
		CHECK(drmaa_run_job(ids[i], sizeof(ids[i]), jt, D) == 0);
	run_workers(w, reap_any);
	for (int i = 0; i < 2 * WORKERS; i++)
		for (int t = 0; t < WORKERS; t++)
			found += !strcmp(ids[i], w[t].reaped[0]) + !strcmp(ids[i], w[t].reaped[1]);
	CHECK(found == 2 * WORKERS);
	CHECK(drmaa_wait(DRMAA_JOB_IDS_SESSION_ANY, NULL, 0, &stat, 0, NULL, D) ==
	      DRMAA_ERRNO_INVALID_JOB);
}

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

struct waiter {
	const char *id;
	int rc;
	char diag[DRMAA_ERROR_STRING_BUFFER];
};

static void *wait_forever(void *arg)
{
	struct waiter *w = arg;

	w->rc = drmaa_wait(w->id, NULL, 0, NULL, DRMAA_TIMEOUT_WAIT_FOREVER, NULL, w->diag,
			   sizeof(w->diag));
	return NULL;
}

/*
 * drmaa_exit() while another thread waits for a job that does not end:
 * the exit is held at most a slice of the wait (1 s), the wait answers
 * NO_ACTIVE_SESSION, and the job goes on (ferry runs it, not the client).
 */
static void exit_during_wait(drmaa_job_template_t *jt)
{
	const char *argv[] = {"-c", "sleep 30", NULL};
	struct waiter w = {0};
	char id[32];
	pthread_t th;
	double t0;

	CHECK(drmaa_set_vector_attribute(jt, DRMAA_V_ARGV, argv, D) == 0);
	CHECK(drmaa_run_job(id, sizeof(id), jt, D) == 0);
	until_ps(id, DRMAA_PS_RUNNING);
	w.id = id;
	CHECK(pthread_create(&th, NULL, wait_forever, &w) == 0);
	nanosleep(&(struct timespec){0, 300000000}, NULL); /* the wait has begun, likely */
	t0 = now();
	CHECK(drmaa_exit(D) == 0);
	CHECK(pthread_join(th, NULL) == 0);
	CHECK(now() - t0 < 3);
	snprintf(diag, sizeof(diag), "%s", w.diag);
	CHECK(w.rc == DRMAA_ERRNO_NO_ACTIVE_SESSION);
}

int main(int argc, char **argv)
{
	drmaa_job_template_t *jt;
	char contact[DRMAA_CONTACT_BUFFER], impl[DRMAA_DRMAA_IMPL_BUFFER];
	unsigned major, minor;
	int st;

	CHECK(argc == 2);
	CHECK(drmaa_allocate_job_template(&jt, D) == DRMAA_ERRNO_NO_ACTIVE_SESSION);
	small_reset();
	CHECK(drmaa_job_ps("1", &st, SMALL) == DRMAA_ERRNO_NO_ACTIVE_SESSION);
	CHECK(small_ok() && strcmp(small, "no acti") == 0);
	/* No buffer, or one of 0 bytes: nothing is written, the code is the same. */
	CHECK(drmaa_exit(NULL, 0) == DRMAA_ERRNO_NO_ACTIVE_SESSION);
	small_reset();
	CHECK(drmaa_exit(small, 0) == DRMAA_ERRNO_NO_ACTIVE_SESSION && small[0] == 'x');
	small_reset();
	CHECK(drmaa_exit(small, 1) == DRMAA_ERRNO_NO_ACTIVE_SESSION && !small[0] &&
	      small[1] == 'x');
	/* Before drmaa_init(): the resource a NULL contact chooses, as the ferry command does. */
	CHECK(drmaa_get_contact(contact, sizeof(contact), D) == 0 &&
	      strcmp(contact, getenv("FERRY_RESOURCE") ? getenv("FERRY_RESOURCE") : "local") == 0);
	CHECK(drmaa_version(&major, &minor, D) == 0 && major == 1 && minor == 0);
	CHECK(drmaa_get_DRMAA_implementation(impl, sizeof(impl), D) == 0 &&
	      strncmp(impl, "libferry-drmaa ", 15) == 0);
	CHECK(strcmp(drmaa_strerror(DRMAA_ERRNO_EXIT_TIMEOUT), "timed out") == 0);
	CHECK(drmaa_init(NULL, D) == 0);
	small_reset();
	CHECK(drmaa_init("local", SMALL) == DRMAA_ERRNO_ALREADY_ACTIVE_SESSION);
	CHECK(small_ok() && strcmp(small, "a sessi") == 0);
	names();
	jt = job_template(argv[1]);
	run_and_wait(jt);
	bulk(jt);
	terminate(jt);
	CHECK(drmaa_wait("123456789", NULL, 0, NULL, 0, NULL, D) == DRMAA_ERRNO_INVALID_JOB);
	small_reset();
	CHECK(drmaa_wait("123456789", NULL, 0, NULL, DRMAA_TIMEOUT_WAIT_FOREVER, NULL, SMALL) ==
	      DRMAA_ERRNO_INVALID_JOB);
	CHECK(small_ok());
	threads(jt);
	CHECK(drmaa_set_attribute(jt, DRMAA_WD, "/nonexistent/wd", D) == 0);
	CHECK(drmaa_run_job(contact, sizeof(contact), jt, D) ==
	      DRMAA_ERRNO_INVALID_ATTRIBUTE_VALUE);
	CHECK(strstr(diag, "/nonexistent/wd"));
	CHECK(drmaa_set_attribute(jt, DRMAA_WD, argv[1], D) == 0);
	exit_during_wait(jt);
	CHECK(drmaa_exit(D) == DRMAA_ERRNO_NO_ACTIVE_SESSION);
	/* A template outlives its session: freed after drmaa_exit() too (ASan sees a leak). */
	CHECK(drmaa_delete_job_template(jt, D) == 0);
	puts("ok");
	return 0;
}
