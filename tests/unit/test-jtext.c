/*
 * test-jtext.c - the reals of src/common/jbytes.c's text writer: what
 * ferry__jtext_real() writes must be what jansson's dump writes, byte for
 * byte, since `info` parses the same text a listing sends and clients
 * compare both with what jansson gives them. The writer computes the
 * digits of the times and durations of jobs itself (printf for the
 * rest), so the cases are those ranges: times of submission, durations,
 * CPU seconds, both sides of each power of ten, ties of the last digit.
 */
#include <float.h>
#include <jansson.h>
#include <math.h>
#include <stdlib.h>

#include "jbytes.h"
#include "unit.h"

/* One real: the writer's text against jansson's dump. */
static void check(double v)
{
	struct ferry_jtext t = {0};
	json_t *j = json_real(v);
	char *want = json_dumps(j, JSON_COMPACT | JSON_ENCODE_ANY);

	ferry__jtext_real(&t, v);
	ferry__jtext_raw(&t, "", 1);
	unit_case("%.17g", v);
	CHECK_STR(t.p, want);
	free(want);
	json_decref(j);
	ferry__jtext_free(&t);
}

static uint64_t rng = 88172645463325252u;

static uint64_t next(void)
{
	rng ^= rng << 13, rng ^= rng >> 7, rng ^= rng << 17; /* xorshift64 */
	return rng;
}

/* A double with random bits between lo and hi. */
static double between(double lo, double hi)
{
	return lo + (hi - lo) * ((double)(next() >> 11) / 9007199254740992.0);
}

int main(void)
{
	static const double fixed[] = {1796510559.8801057,
				       1e-4,
				       1e-5,
				       0.001,
				       0.5,
				       1,
				       10,
				       0.1,
				       0.3,
				       1e16,
				       9.999999999999999e16,
				       1e17,
				       2.5,
				       1234.5,
				       1e15,
				       123456789.125,
				       0.0,
				       -0.0,
				       -1.5,
				       -1796510559.25,
				       DBL_MIN,
				       DBL_MAX,
				       4503599627370497.5,
				       9007199254740993.0};

	for (size_t i = 0; i < sizeof(fixed) / sizeof(fixed[0]); i++)
		check(fixed[i]);
	for (int i = 0; i < 200000; i++) {
		check(between(1.7e9, 1.9e9));	     /* times */
		check(pow(10, between(-5, 18)));     /* every decade */
		check(-pow(10, between(-5, 18)));    /* and negative */
		check(floor(between(0, 1e9)) + 0.5); /* ties */
		check((double)(next() >> 11) /
		      (double)(UINT64_C(1) << (next() % 40)));	      /* exact binaries */
		check(nextafter(pow(10, (int)(next() % 22) - 5), 0)); /* just under 10^k */
		check(nextafter(pow(10, (int)(next() % 22) - 5), 1e30));
	}
	return unit_done("test-jtext");
}
