/*
 * api-latency - round-trip latency of the C API against a local engine.
 *
 * Connects to the "local" resource (starting its engine if needed),
 * submits one `true` job and waits for it, then times N ferry_status()
 * calls on that job with clock_gettime(CLOCK_MONOTONIC) and prints the
 * median, p99 and mean in microseconds. The target is a median of at most
 * 100 us. The exit status is 0 whether the target is met or not; 1 when an
 * API call fails, 2 on a usage error.
 *
 * With -r RESOURCE it reaches that resource instead, e.g. a remote one
 * through ssh (bench/remote-latency); the target then does not apply.
 *
 * usage: api-latency [--quick] [-n N] [-r RESOURCE]
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "ferry.h"

#define TARGET_US 100.0
#define WARMUP	  200

static void usage(FILE *f)
{
	fprintf(f, "usage: api-latency [--quick] [-n N] [-r RESOURCE]\n"
		   "  -n N         number of timed ferry_status() round trips (default 20000)\n"
		   "  --quick      2000 round trips\n"
		   "  -r RESOURCE  the resource to reach (default: local)\n");
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

static double now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e6 + (double)ts.tv_nsec / 1e3;
}

static int failed(ferry_conn *conn, const char *what, int rc)
{
	fprintf(stderr, "api-latency: %s: %s%s%s\n", what, ferry_strerror(rc),
		conn && *ferry_errmsg(conn) ? ": " : "", conn ? ferry_errmsg(conn) : "");
	ferry_disconnect(conn);
	return 1;
}

/* Value at quantile q (0..1) of the sorted array v of n values. */
static double quantile(const double *v, size_t n, double q)
{
	double pos = q * (double)(n - 1);
	size_t i = (size_t)pos;
	double frac = pos - (double)i;

	return i + 1 < n ? v[i] + frac * (v[i + 1] - v[i]) : v[n - 1];
}

int main(int argc, char **argv)
{
	const char *argv_true[] = {"true", NULL};
	struct ferry_job_spec spec;
	enum ferry_job_status st;
	ferry_conn *conn = NULL;
	ferry_job_id id;
	size_t n = 20000;
	const char *resource = NULL;
	double *lat, sum = 0, med, p99, mean, t_all;
	int rc;

	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--quick")) {
			n = 2000;
		} else if (!strcmp(argv[i], "-n") && i + 1 < argc) {
			char *end;
			long v = strtol(argv[++i], &end, 10);
			if (*end || v < 1 || v > 100000000) {
				fprintf(stderr, "api-latency: invalid count '%s'\n", argv[i]);
				return 2;
			}
			n = (size_t)v;
		} else if (!strcmp(argv[i], "-r") && i + 1 < argc) {
			resource = argv[++i];
		} else if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
			usage(stdout);
			return 0;
		} else {
			usage(stderr);
			return 2;
		}
	}
#ifdef BENCH_FERRYD
	/* the engine of this build directory, unless told otherwise */
	if (!getenv("FERRYD") && access(BENCH_FERRYD, X_OK) == 0)
		setenv("FERRYD", BENCH_FERRYD, 0);
#endif
	lat = malloc(n * sizeof(*lat));
	if (!lat) {
		fprintf(stderr, "api-latency: out of memory\n");
		return 1;
	}

	rc = ferry_connect(resource, NULL, NULL, NULL, &conn);
	if (rc)
		return failed(conn, "connect", rc);
	ferry_job_spec_init(&spec);
	spec.argv = argv_true;
	spec.name = "api-latency";
	if ((rc = ferry_submit(conn, &spec, &id)))
		return failed(conn, "submit", rc);
	if ((rc = ferry_wait(conn, &id, 1, 60)))
		return failed(conn, "wait", rc);

	for (int i = 0; i < WARMUP; i++)
		if ((rc = ferry_status(conn, id, &st)))
			return failed(conn, "status", rc);
	t_all = now_us();
	for (size_t i = 0; i < n; i++) {
		double t0 = now_us();
		rc = ferry_status(conn, id, &st);
		lat[i] = now_us() - t0;
		if (rc)
			return failed(conn, "status", rc);
		sum += lat[i];
	}
	t_all = now_us() - t_all;
	if (st != FERRY_DONE)
		fprintf(stderr, "api-latency: note: the job ended %s, not done\n",
			ferry_status_name(st));
	ferry_dispose(conn, id);
	ferry_disconnect(conn);

	qsort(lat, n, sizeof(*lat), cmp_double);
	med = quantile(lat, n, 0.5);
	p99 = quantile(lat, n, 0.99);
	mean = sum / (double)n;
	printf("ferry_status round trips: %zu\n", n);
	printf("  median %8.1f us\n", med);
	printf("  p99    %8.1f us\n", p99);
	printf("  mean   %8.1f us\n", mean);
	printf("  min    %8.1f us   max %.1f us\n", lat[0], lat[n - 1]);
	printf("  total  %8.3f s for %zu calls (%.0f calls/s)\n", t_all / 1e6, n,
	       (double)n / (t_all / 1e6));
	if (!resource)
		printf("target: median <= %.0f us: %s\n", TARGET_US,
		       med <= TARGET_US ? "PASS" : "FAIL");
	free(lat);
	return 0;
}
