/*
 * monitor.c - what `ferry ui`'s page shows beside the jobs: a resource's
 * transfers with their progress, and its plots. Running jobs and used
 * slots over time come from the samples its poller keeps (a ring of
 * UI_RING, an hour at a second apart); jobs ended per minute and the
 * histogram of durations from the newest PLOT_ENDED ended jobs, listed
 * when the page asks: bounded work however many jobs the engine holds.
 * The transfers shown are the newest TRANSFERS_MAX.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "jobfields.h"
#include "ui.h"
#include "util.h"

#define RUNNING_MAX   10000	  /* running jobs a sample adds the slots of, at most */
#define PLOT_ENDED    UI_PAGE_MAX /* ended jobs the per-minute plot and the histogram take */
#define PLOT_MINUTES  60	  /* minutes the jobs-ended plot shows, the current one last */
#define HIST_BINS     20
#define TRANSFERS_MAX 200 /* transfers one answer holds, the newest */

/* ---- samples ---- */

struct slots {
	int64_t used;
	size_t running;
};

static int add_slots(void *data, const struct ferry_job_info *j)
{
	struct slots *s = data;

	s->used += j->cpus > 0 ? j->cpus : 1;
	s->running++;
	return 0;
}

static void keep_sample(struct ui_res *r, const struct ui_sample *s)
{
	pthread_mutex_lock(&r->st->mu);
	if (!r->ring)
		r->ring = calloc(UI_RING, sizeof(*r->ring));
	if (r->ring) {
		r->ring[(r->ring_head + r->ring_n) % UI_RING] = *s;
		if (r->ring_n < UI_RING)
			r->ring_n++;
		else
			r->ring_head = (r->ring_head + 1) % UI_RING;
	}
	pthread_mutex_unlock(&r->st->mu);
}

int ferry__ui_sample(struct ui_res *r, json_t *o, char *err, size_t errlen)
{
	enum ferry_job_status running = FERRY_RUNNING;
	struct ferry_list_opts opts;
	struct slots s = {0};
	struct ui_sample sample;
	int rc;

	ferry_list_opts_init(&opts);
	opts.states = &running;
	opts.nstates = 1;
	opts.limit = RUNNING_MAX;
	pthread_mutex_lock(&r->call_mu);
	rc = ferry_list_jobs(r->conn, &opts, add_slots, &s);
	if (rc < 0)
		snprintf(err, errlen, "%s",
			 *ferry_errmsg(r->conn) ? ferry_errmsg(r->conn) : ferry_strerror(rc));
	pthread_mutex_unlock(&r->call_mu);
	if (rc < 0)
		return -1;
	sample.t = ferry__now();
	sample.running = (int32_t)s.running;
	sample.used = (int32_t)(s.used < INT32_MAX ? s.used : INT32_MAX);
	keep_sample(r, &sample);
	json_object_set_new(o, "used_slots", json_integer(sample.used));
	return 0;
}

/* ---- /api/transfers ---- */

static int newest_transfer_first(const void *a, const void *b)
{
	const struct ferry_transfer_info *x = *(struct ferry_transfer_info *const *)a;
	const struct ferry_transfer_info *y = *(struct ferry_transfer_info *const *)b;

	return x->created_at < y->created_at ? 1 : x->created_at > y->created_at ? -1 : 0;
}

/*
 * Transfer t as the page shows it: the bytes done of a send still
 * transferring, whose bar the page draws, are asked for one by one, as
 * the listing of an engine older than this one says 0.
 */
static json_t *transfer_json(struct ui_res *res, ferry_conn *c, const struct ferry_transfer_info *t)
{
	struct ferry_transfer_info *one = NULL;
	json_t *o;
	int rc = -1;

	if (t->state == FERRY_TRANSFER_TRANSFERRING) {
		pthread_mutex_lock(&res->call_mu);
		rc = ferry_transfer_info(c, t->server_path, &one);
		pthread_mutex_unlock(&res->call_mu);
	}
	/* gone since the listing, or the engine failed: shown as listed */
	o = ferry__transfer_to_json(rc == 0 ? one : t);
	ferry_transfer_info_free(one);
	return o;
}

static int get_transfers(struct ui_state *st, ui_arg_fn arg, void *ctx, struct ui_reply *r)
{
	struct ferry_transfer_info **list = NULL;
	struct ui_res *res;
	ferry_conn *c = ferry__ui_resource_arg(st, arg(ctx, "resource"), r, &res);
	json_t *out;
	size_t n = 0;
	int rc;

	if (!c)
		return 0;
	pthread_mutex_lock(&res->call_mu);
	rc = ferry_transfers(c, &list, &n);
	if (rc < 0)
		ferry__ui_ferry_error(r, c, rc);
	pthread_mutex_unlock(&res->call_mu);
	if (rc < 0)
		return 0;
	qsort(list, n, sizeof(*list), newest_transfer_first);
	out = json_pack("{s:[],s:I}", "transfers", "total", (json_int_t)n);
	for (size_t i = 0; out && i < n && i < TRANSFERS_MAX; i++)
		if (json_array_append_new(json_object_get(out, "transfers"),
					  transfer_json(res, c, list[i])) < 0) {
			json_decref(out);
			out = NULL;
		}
	ferry_transfer_list_free(list, n);
	ferry__ui_json_reply(r, 200, out);
	return 0;
}

/* ---- /api/plots ---- */

/* The ring of res, oldest first: [[t, running, used], ...]. */
static json_t *samples_json(struct ui_res *res)
{
	json_t *a = json_array();

	pthread_mutex_lock(&res->st->mu);
	for (size_t i = 0; a && i < res->ring_n; i++) {
		const struct ui_sample *s = &res->ring[(res->ring_head + i) % UI_RING];

		if (json_array_append_new(
			a, json_pack("[f,i,i]", s->t, (int)s->running, (int)s->used)) < 0) {
			json_decref(a);
			a = NULL;
		}
	}
	pthread_mutex_unlock(&res->st->mu);
	return a;
}

struct ended {
	double now;
	size_t jobs; /* ended jobs looked at */
	size_t per_minute[PLOT_MINUTES];
	double *durations; /* of those that started, PLOT_ENDED of room */
	size_t ndurations;
};

static int ended_job(void *data, const struct ferry_job_info *j)
{
	struct ended *e = data;
	double first = floor(e->now / 60) * 60 - (PLOT_MINUTES - 1) * 60;

	if (e->jobs == PLOT_ENDED)
		return 1;
	e->jobs++;
	if (j->ended_at >= first && j->ended_at < first + PLOT_MINUTES * 60)
		e->per_minute[(size_t)((j->ended_at - first) / 60)]++;
	if (j->started_at > 0 && j->ended_at >= j->started_at)
		e->durations[e->ndurations++] = j->ended_at - j->started_at;
	return 0;
}

/* The newest PLOT_ENDED ended jobs of res into e: 0, or -1 after a reply. */
static int list_ended(struct ui_res *res, ferry_conn *c, struct ended *e, struct ui_reply *r)
{
	static const enum ferry_job_status ended[] = {FERRY_DONE, FERRY_FAILED};
	struct ferry_list_opts o;
	int rc;

	ferry_list_opts_init(&o);
	o.states = ended;
	o.nstates = FERRY_ARRAY_SIZE(ended);
	if (ferry__ui_cursor_of_end(res, c, &o, PLOT_ENDED, &o.after, r) < 0)
		return -1;
	o.limit = PLOT_ENDED;
	pthread_mutex_lock(&res->call_mu);
	rc = ferry_list_jobs(c, &o, ended_job, e);
	if (rc < 0)
		ferry__ui_ferry_error(r, c, rc);
	pthread_mutex_unlock(&res->call_mu);
	return rc < 0 ? -1 : 0;
}

static json_t *counts_json(const size_t *n, size_t k)
{
	json_t *a = json_array();

	for (size_t i = 0; a && i < k; i++)
		if (json_array_append_new(a, json_integer((json_int_t)n[i])) < 0) {
			json_decref(a);
			return NULL;
		}
	return a;
}

/* The least of 1, 2 or 5 times a power of ten that is at least w: bins read as round numbers. */
static double round_width(double w)
{
	double p;

	if (!(w > 1e-3))
		return 1e-3;
	p = pow(10, floor(log10(w)));
	return w <= p ? p : w <= 2 * p ? 2 * p : w <= 5 * p ? 5 * p : 10 * p;
}

/* HIST_BINS bins of equal, round width from 0 to past the longest duration. */
static json_t *histogram(const struct ended *e)
{
	size_t counts[HIST_BINS] = {0};
	double longest = 0, width;

	for (size_t i = 0; i < e->ndurations; i++)
		longest = e->durations[i] > longest ? e->durations[i] : longest;
	width = longest > 0 ? round_width(longest / HIST_BINS) : 1;
	for (size_t i = 0; i < e->ndurations; i++) {
		size_t b = (size_t)(e->durations[i] / width);

		counts[b < HIST_BINS ? b : HIST_BINS - 1]++;
	}
	return json_pack("{s:I,s:f,s:o}", "jobs", (json_int_t)e->ndurations, "width", width,
			 "counts", counts_json(counts, HIST_BINS));
}

static int get_plots(struct ui_state *st, ui_arg_fn arg, void *ctx, struct ui_reply *r)
{
	struct ended e = {.now = ferry__now()};
	struct ui_res *res;
	ferry_conn *c = ferry__ui_resource_arg(st, arg(ctx, "resource"), r, &res);

	if (!c)
		return 0;
	e.durations = malloc(PLOT_ENDED * sizeof(*e.durations));
	if (!e.durations) {
		ferry__ui_error_reply(r, 500, "out of memory");
		return 0;
	}
	if (list_ended(res, c, &e, r) == 0)
		ferry__ui_json_reply(
		    r, 200,
		    json_pack("{s:f,s:i,s:o,s:I,s:{s:f,s:o},s:o}", "now", e.now, "slots",
			      res->slots, "samples", samples_json(res), "ended_jobs",
			      (json_int_t)e.jobs, "ended_per_minute", "first",
			      floor(e.now / 60) * 60 - (PLOT_MINUTES - 1) * 60, "counts",
			      counts_json(e.per_minute, PLOT_MINUTES), "durations", histogram(&e)));
	free(e.durations);
	return 0;
}

int ferry__ui_monitor_get(struct ui_state *st, const char *url, ui_arg_fn arg, void *ctx,
			  struct ui_reply *r)
{
	if (!strcmp(url, "/api/transfers"))
		return get_transfers(st, arg, ctx, r);
	if (!strcmp(url, "/api/plots"))
		return get_plots(st, arg, ctx, r);
	return ferry__ui_graph_get(st, url, arg, ctx, r);
}
