/*
 * state.c - the resources `ferry ui` shows: their connections, each
 * opened by a poller thread of its own (an ssh login must hold up
 * neither the page nor the other resources), and the summary of each
 * (engine reachable, jobs per state) its poller makes once a second for
 * every page at once, whatever the number of pages open.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cfg.h"
#include "jbytes.h"
#include "ui.h"
#include "util.h"

/* The summary is made once a second, and less often when counting takes
 * over a tenth of the time: counting costs the engine. */
#define POLL_S	       1.0
#define POLL_SHARE     10.0
#define RETRY_S	       5.0  /* how long after a failed connect the next one is tried */
#define CALL_TIMEOUT_S 15.0 /* the most a call may spend regaining a lost engine */

static int copy_res(struct ui_res *d, const struct ferry_resource_cfg *r)
{
	pthread_mutex_init(&d->call_mu, NULL);
	d->name = strdup(r->name);
	d->scheduler = strdup(r->scheduler ? r->scheduler : "local");
	d->host = r->host ? strdup(r->host) : NULL;
	d->slots = r->slots;
	return d->name && d->scheduler && (!r->host || d->host) ? 0 : -1;
}

/* Every section of the configuration, and "local" first when it has none. */
static int all_resources(struct ui_state *st, const char *config, char *err, size_t errlen)
{
	struct ferry_resource_cfg local = {.name = (char *)"local"};
	struct ferry_cfg cfg = {0};
	char *path = config ? strdup(config) : ferry__default_config_path();
	int rc = 0, has_local = 0;

	if (path && (config || access(path, F_OK) == 0) &&
	    ferry__cfg_parse(path, NULL, &cfg, err, errlen) < 0)
		rc = -1;
	free(path);
	st->res = calloc((size_t)cfg.nres + 1, sizeof(*st->res));
	if (rc == 0 && !st->res)
		rc = ferry__fail(err, errlen, -1, "out of memory");
	for (int i = 0; rc == 0 && i < cfg.nres; i++)
		has_local |= !strcmp(cfg.res[i].name, "local");
	if (rc == 0 && !has_local && copy_res(&st->res[st->nres++], &local) < 0)
		rc = ferry__fail(err, errlen, -1, "out of memory");
	for (int i = 0; rc == 0 && i < cfg.nres; i++)
		if (copy_res(&st->res[st->nres++], &cfg.res[i]) < 0)
			rc = ferry__fail(err, errlen, -1, "out of memory");
	ferry__cfg_release(&cfg);
	return rc;
}

/* The resources named, each once, in the order given. */
static int named_resources(struct ui_state *st, const char *config, char *const *names, size_t n,
			   char *err, size_t errlen)
{
	struct ferry_resource_cfg r;

	st->res = calloc(n, sizeof(*st->res));
	if (!st->res)
		return ferry__fail(err, errlen, -1, "out of memory");
	for (size_t i = 0; i < n; i++) {
		if (ferry__ui_find(st, names[i], NULL))
			continue;
		memset(&r, 0, sizeof(r));
		if (ferry__resolve_resource(config, names[i], &r, err, errlen) < 0)
			return -1;
		if (copy_res(&st->res[st->nres++], &r) < 0) {
			ferry__resource_cfg_release(&r);
			return ferry__fail(err, errlen, -1, "out of memory");
		}
		ferry__resource_cfg_release(&r);
	}
	return 0;
}

int ferry__ui_state_init(struct ui_state *st, const char *config, char *const *names, size_t n,
			 char *err, size_t errlen)
{
	int rc;

	memset(st, 0, sizeof(*st));
	st->config = config;
	pthread_mutex_init(&st->mu, NULL);
	pthread_cond_init(&st->moved, NULL);
	st->summary = json_array();
	if (!st->summary)
		return ferry__fail(err, errlen, -1, "out of memory");
	rc = n ? named_resources(st, config, names, n, err, errlen)
	       : all_resources(st, config, err, errlen);
	for (size_t i = 0; i < st->nres; i++)
		st->res[i].st = st;
	return rc;
}

struct ui_res *ferry__ui_find(struct ui_state *st, const char *name, ferry_conn **conn)
{
	for (size_t i = 0; name && i < st->nres; i++) {
		if (strcmp(st->res[i].name, name) != 0)
			continue;
		if (conn) {
			pthread_mutex_lock(&st->mu);
			*conn = st->res[i].conn;
			pthread_mutex_unlock(&st->mu);
		}
		return &st->res[i];
	}
	return NULL;
}

/* Opens r's connection (poller thread only): 0, or -1 with err set. */
static int connect_res(struct ui_state *st, struct ui_res *r, char *err, size_t errlen)
{
	ferry_conn *c = NULL;
	int rc = ferry_connect(r->name, NULL, NULL, st->config, &c);

	if (rc < 0) {
		/* c is this thread's alone until published below: no other call overwrites its
		 * message */
		snprintf(r->err, sizeof(r->err), "%s", c ? ferry_errmsg(c) : ferry_strerror(rc));
		if (!r->err[0])
			snprintf(r->err, sizeof(r->err), "%s", ferry_strerror(rc));
		snprintf(err, errlen, "%s", r->err);
		ferry_disconnect(c);
		r->next_try = ferry__mono() + RETRY_S;
		return -1;
	}
	ferry_set_timeout(c, CALL_TIMEOUT_S);
	pthread_mutex_lock(&st->mu);
	r->conn = c;
	pthread_mutex_unlock(&st->mu);
	return 0;
}

/* Keeps the newest of the n ids of state s (oldest first) in r's tail. */
static void keep_tail(struct ui_res *r, int s, const ferry_job_id *ids, size_t n)
{
	size_t k = n < UI_TAIL ? n : UI_TAIL;

	pthread_mutex_lock(&r->st->mu);
	memcpy(r->tail[s], ids + (n - k), k * sizeof(*ids));
	r->ntail[s] = k;
	pthread_mutex_unlock(&r->st->mu);
}

static void tails_ok(struct ui_res *r, int ok)
{
	pthread_mutex_lock(&r->st->mu);
	r->tails_ok = ok;
	pthread_mutex_unlock(&r->st->mu);
}

/*
 * Jobs per state of r, into o's "counts" and "total", and the newest ids
 * of each into r's tail: 0, or -1 with err set.
 */
static int count_jobs(struct ui_res *r, json_t *o, char *err, size_t errlen)
{
	json_t *counts = json_object();
	size_t total = 0;

	tails_ok(r, 0);
	if (!counts)
		return ferry__fail(err, errlen, -1, "out of memory");
	json_object_set_new(o, "counts", counts);
	for (int s = FERRY_QUEUED_ACTIVE; s <= FERRY_FAILED; s++) {
		enum ferry_job_status st = (enum ferry_job_status)s;
		struct ferry_list_opts opts;
		ferry_job_id *ids = NULL;
		size_t n = 0;
		int rc;

		ferry_list_opts_init(&opts);
		opts.states = &st;
		opts.nstates = 1;
		pthread_mutex_lock(&r->call_mu);
		rc = ferry_list_ids(r->conn, &opts, &ids, &n);
		if (rc < 0)
			snprintf(err, errlen, "%s",
				 *ferry_errmsg(r->conn) ? ferry_errmsg(r->conn)
							: ferry_strerror(rc));
		pthread_mutex_unlock(&r->call_mu);
		if (rc == 0)
			keep_tail(r, s, ids, n);
		free(ids);
		if (rc < 0)
			return -1;
		json_object_set_new(counts, ferry_status_name(st), json_integer((json_int_t)n));
		total += n;
	}
	json_object_set_new(o, "total", json_integer((json_int_t)total));
	tails_ok(r, 1);
	return 0;
}

static int newest_first(const void *a, const void *b)
{
	ferry_job_id x = *(const ferry_job_id *)a, y = *(const ferry_job_id *)b;

	return x < y ? 1 : x > y ? -1 : 0;
}

static int wanted(int s, const enum ferry_job_status *states, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if ((int)states[i] == s)
			return 1;
	return n == 0;
}

int ferry__ui_end_cursor(struct ui_res *r, const enum ferry_job_status *states, size_t n,
			 size_t limit, ferry_job_id *after)
{
	ferry_job_id *all = malloc(sizeof(r->tail));
	size_t k = 0;
	int rc = -1;

	if (!all || 2 * limit >= UI_TAIL) {
		free(all);
		return -1;
	}
	pthread_mutex_lock(&r->st->mu);
	for (int s = 0; r->tails_ok && s <= FERRY_FAILED; s++) {
		if (!wanted(s, states, n))
			continue;
		memcpy(all + k, r->tail[s], r->ntail[s] * sizeof(*all));
		k += r->ntail[s];
	}
	rc = r->tails_ok ? 0 : -1;
	pthread_mutex_unlock(&r->st->mu);
	if (rc == 0) {
		/* twice the page: it stays whole when up to a page of them left their state since
		 */
		qsort(all, k, sizeof(*all), newest_first);
		*after = k > 2 * limit ? all[2 * limit] : 0;
	}
	free(all);
	return rc;
}

/* What /api/resources says of r: its configuration, whether it answers, its counts. */
static json_t *summarise(struct ui_state *st, struct ui_res *r)
{
	json_t *o = json_pack("{s:s,s:s,s:i}", "name", r->name, "scheduler", r->scheduler, "slots",
			      r->slots);
	char err[1024] = "";
	int ok = 0;

	if (!o)
		return NULL;
	json_object_set_new(o, "host", ferry__json_bytes(r->host));
	if (r->conn || ferry__mono() >= r->next_try)
		ok = (r->conn || connect_res(st, r, err, sizeof(err)) == 0) &&
		     count_jobs(r, o, err, sizeof(err)) == 0 &&
		     ferry__ui_sample(r, o, err, sizeof(err)) == 0;
	else
		snprintf(err, sizeof(err), "%s", r->err);
	json_object_set_new(o, "connected", json_boolean(ok));
	json_object_set_new(o, "error", ok ? json_null() : ferry__json_bytes(err));
	return o;
}

static void sleep_until_due(struct ui_state *st, double due)
{
	struct timespec ts;
	double now = ferry__now() + (due - ferry__mono());

	ts.tv_sec = (time_t)now;
	ts.tv_nsec = (long)((now - (double)ts.tv_sec) * 1e9);
	pthread_mutex_lock(&st->mu);
	while (!st->quit && pthread_cond_timedwait(&st->moved, &st->mu, &ts) != ETIMEDOUT)
		;
	pthread_mutex_unlock(&st->mu);
}

static int quitting(struct ui_state *st)
{
	int q;

	pthread_mutex_lock(&st->mu);
	q = st->quit;
	pthread_mutex_unlock(&st->mu);
	return q;
}

/* The summaries of every resource, as /api/resources answers (under st->mu). */
static void publish(struct ui_state *st)
{
	json_t *all = json_array();

	for (size_t i = 0; all && i < st->nres; i++)
		json_array_append(all, st->res[i].summary);
	if (!all)
		return;
	json_decref(st->summary);
	st->summary = all;
	st->generation++;
	pthread_cond_broadcast(&st->moved);
}

static void *poller(void *arg)
{
	struct ui_res *r = arg;
	struct ui_state *st = r->st;

	while (!quitting(st)) {
		double t = ferry__mono(), took;
		json_t *o = summarise(st, r);

		took = ferry__mono() - t;
		pthread_mutex_lock(&st->mu);
		if (o) {
			json_decref(r->summary);
			r->summary = o;
			publish(st);
		}
		pthread_mutex_unlock(&st->mu);
		/* many jobs make counting slow: then count less often */
		sleep_until_due(st, t + (took * POLL_SHARE > POLL_S ? took * POLL_SHARE : POLL_S));
	}
	return NULL;
}

/* What a resource shows before its poller's first summary. */
static json_t *first_summary(const struct ui_res *r)
{
	return json_pack("{s:s,s:s,s:i,s:o,s:b,s:s}", "name", r->name, "scheduler", r->scheduler,
			 "slots", r->slots, "host", ferry__json_bytes(r->host), "connected", 0,
			 "error", "connecting");
}

int ferry__ui_state_start(struct ui_state *st)
{
	int rc = 0;

	pthread_mutex_lock(&st->mu);
	for (size_t i = 0; i < st->nres; i++)
		st->res[i].summary = first_summary(&st->res[i]);
	publish(st);
	pthread_mutex_unlock(&st->mu);
	for (size_t i = 0; rc == 0 && i < st->nres; i++) {
		rc = pthread_create(&st->res[i].poller, NULL, poller, &st->res[i]);
		st->res[i].started = rc == 0;
	}
	return -rc;
}

void ferry__ui_state_stop(struct ui_state *st)
{
	pthread_mutex_lock(&st->mu);
	st->quit = 1;
	pthread_cond_broadcast(&st->moved);
	pthread_mutex_unlock(&st->mu);
	for (size_t i = 0; i < st->nres; i++) {
		if (st->res[i].started)
			pthread_join(st->res[i].poller, NULL);
		st->res[i].started = 0;
	}
}

void ferry__ui_state_release(struct ui_state *st)
{
	for (size_t i = 0; i < st->nres; i++) {
		ferry_disconnect(st->res[i].conn);
		free(st->res[i].name);
		free(st->res[i].scheduler);
		free(st->res[i].host);
		json_decref(st->res[i].summary);
		free(st->res[i].ring);
		pthread_mutex_destroy(&st->res[i].call_mu);
	}
	free(st->res);
	json_decref(st->summary);
	pthread_cond_destroy(&st->moved);
	pthread_mutex_destroy(&st->mu);
}

json_t *ferry__ui_summary(struct ui_state *st, uint64_t *generation)
{
	json_t *s;

	pthread_mutex_lock(&st->mu);
	s = json_incref(st->summary);
	if (generation)
		*generation = st->generation;
	pthread_mutex_unlock(&st->mu);
	return s;
}

char *ferry__ui_next_event(struct ui_state *st, uint64_t *after, double timeout_s, int *quit)
{
	double t = ferry__now() + timeout_s;
	struct timespec ts = {.tv_sec = (time_t)t,
			      .tv_nsec = (long)((t - (double)(time_t)t) * 1e9)};
	json_t *s = NULL;
	char *text, *ev;

	pthread_mutex_lock(&st->mu);
	while (!st->quit && st->generation <= *after &&
	       pthread_cond_timedwait(&st->moved, &st->mu, &ts) != ETIMEDOUT)
		;
	*quit = st->quit;
	if (!st->quit && st->generation > *after) {
		s = json_incref(st->summary);
		*after = st->generation;
	}
	pthread_mutex_unlock(&st->mu);
	if (!s)
		return NULL;
	text = ferry__json_dumps(s, JSON_COMPACT);
	json_decref(s);
	ev = text ? ferry__asprintf("event: resources\ndata: %s\n\n", text) : NULL;
	free(text);
	return ev;
}
