/*
 * submit-floor - what a bulk submit costs the engine's database alone:
 * N rows written through the engine's own db.c (ferry__db_find_key and
 * ferry__db_insert_job, the calls of a submit), a batch per savepoint and
 * per durable commit as the engine does, with the spec text the engine
 * stores for `true K` (bench/README.md, "submit-floor"). The floor under
 * bench/scale's bulk_submit: what SQLite alone takes on this machine.
 *
 * usage: submit-floor [-n N] [-b BATCH] [--no-find] [--key none|auto|auto-ordered|short] DIR
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include "db.h"
#include "ferry.h"

/* CPU time of this process (user and system): the machine may be busy with others. */
static double cpu_s(void)
{
	struct rusage ru;

	getrusage(RUSAGE_SELF, &ru);
	return ru.ru_utime.tv_sec + ru.ru_stime.tv_sec +
	       (ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

/* The spec the engine stores for line `true K` of a --bulk file (a key: with --key). */
static void spec_text(char *buf, size_t len, const char *key, long k)
{
	snprintf(buf, len,
		 "{\"name\":null,\"queue\":null,\"native_specification\":null,"
		 "\"submission_key\":%s%s%s,\"disposal_timeout_hours\":168,\"cpus\":1,"
		 "\"memory_mb\":0,\"walltime_s\":0,\"join_stderrout\":false,\"hold\":true,"
		 "\"backend\":\"local\",\"resource\":\"local\",\"working_directory\":"
		 "\"/tmp/ferry-bench.abcdefgh\",\"argv\":[\"true\",\"%ld\"],\"env\":[],"
		 "\"referenced_input_files\":[],\"referenced_output_files\":[]}",
		 key[0] ? "\"" : "", key[0] ? key : "null", key[0] ? "\"" : "", k);
}

static void make_key(char *buf, size_t len, const char *kind, long k)
{
	if (!strcmp(kind, "auto")) /* the library's: 16 random bytes in hex, the index */
		snprintf(buf, len, "auto-fa92f739f941ca05c87cfdb318cab178-%ld", k);
	else if (!strcmp(kind, "auto-ordered")) /* index in fixed width: in insertion order */
		snprintf(buf, len, "auto-fa92f739f941ca05c87cfdb318cab178-%08lx", k);
	else if (!strcmp(kind, "short"))
		snprintf(buf, len, "a-%ld", k);
	else
		buf[0] = '\0';
}

static int run(struct ferry_db *db, long n, long batch, int find, const char *kind)
{
	char key[96], spec[1024];
	int64_t id;

	for (long k = 0; k < n;) {
		if (ferry__db_begin(db) || ferry__db_savepoint(db))
			return -1;
		for (long i = 0; i < batch && k < n; i++, k++) {
			make_key(key, sizeof(key), kind, k);
			spec_text(spec, sizeof(spec), key, k + 1);
			if (find && key[0] && ferry__db_find_key(db, key, &id) != 0)
				return -1;
			/* -1: no disposal hours of its own, as a spec without them */
			if (ferry__db_insert_job(db, key[0] ? key : NULL, NULL, spec, 0,
						 FERRY_USER_ON_HOLD, 1.0, -1, &id))
				return -1;
		}
		ferry__db_need_durable(db);
		if (ferry__db_release(db) || ferry__db_commit(db))
			return -1;
	}
	return 0;
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {{"no-find", no_argument, NULL, 'f'},
					     {"key", required_argument, NULL, 'k'},
					     {NULL, 0, NULL, 0}};
	/* as a bulk submit now: batches of 13,000 jobs without keys (libferry's batch keys) */
	long n = 100000, batch = 13000;
	const char *kind = "none";
	int find = 1, c;
	struct ferry_db *db;
	char err[512], path[4096];
	double t0, c0;

	while ((c = getopt_long(argc, argv, "n:b:", opts, NULL)) != -1) {
		if (c == 'n')
			n = atol(optarg);
		else if (c == 'b')
			batch = atol(optarg);
		else if (c == 'f')
			find = 0;
		else if (c == 'k')
			kind = optarg;
		else
			return 2;
	}
	if (optind + 1 != argc || n < 1 || batch < 1) {
		fprintf(stderr, "usage: submit-floor [-n N] [-b BATCH] [--no-find] "
				"[--key none|auto|auto-ordered|short] DIR\n");
		return 2;
	}
	snprintf(path, sizeof(path), "%s/floor.db", argv[optind]);
	if (ferry__db_open(path, 0, &db, err, sizeof(err))) {
		fprintf(stderr, "submit-floor: %s\n", err);
		return 1;
	}
	t0 = now_s();
	c0 = cpu_s();
	if (run(db, n, batch, find, kind)) {
		fprintf(stderr, "submit-floor: the database failed\n");
		ferry__db_close(db);
		return 1;
	}
	c0 = cpu_s() - c0;
	t0 = now_s() - t0;
	printf("submit-floor: %ld rows, batches of %ld, key %s%s: %.2f s, %.0f rows/s; CPU %.2f "
	       "us per row\n",
	       n, batch, kind, find && strcmp(kind, "none") ? ", looked up first" : "", t0, n / t0,
	       c0 / n * 1e6);
	ferry__db_close(db);
	return 0;
}
