/*
 * ui.h - `ferry ui`: a local web page over libferry (docs/architecture.md,
 * "ferry ui"). state.c holds the resources, their connections and the
 * pollers that summarise them; http.c the HTTP server and its security
 * checks; api.c the JSON API the page calls, monitor.c its transfers
 * and plots, graph.c its workflows' graphs; assets.c (generated from
 * src/ui/assets/ at build time) the page itself.
 */
#ifndef FERRY_UI_H
#define FERRY_UI_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "ferry.h"

#define UI_PAGE_MAX 500 /* jobs one /api/jobs answer holds at most */
/*
 * The newest ids of each state a poller keeps from its count: twice a
 * page and its cursor, so that the newest page stays whole when up to a
 * page of them left their state since (ferry__ui_end_cursor()).
 */
#define UI_TAIL (2 * UI_PAGE_MAX + 1)

/*
 * The samples of running jobs and used slots a poller keeps, one a count:
 * an hour at the poll interval of a second (fewer when counting slows).
 */
#define UI_RING 3600

struct ui_sample {
	double t;	 /* when, in seconds since the epoch */
	int32_t running; /* jobs running */
	int32_t used;	 /* the slots (cpus) of the running jobs */
};

/* A resource the page shows, and the one connection every thread shares (ferry.h allows it). */
struct ui_res {
	char *name;
	char *scheduler;  /* from the configuration: "local", "slurm", "drmaa" */
	char *host;	  /* NULL: this host */
	int slots;	  /* local: 0 means every core */
	ferry_conn *conn; /* NULL until connected; then kept to the end (libferry reconnects) */
	/*
	 * Held from a call on conn to the copy of its ferry_errmsg(): the
	 * message is one buffer of the connection, which the next call of
	 * another thread overwrites (libferry's own lock is released when
	 * the call returns). Taken after st->mu is released, never before.
	 */
	pthread_mutex_t call_mu;
	double next_try; /* when the poller tries to connect again */
	char err[512];	 /* why the last connect failed (its poller only) */
	struct ui_state *st;
	json_t *summary; /* its last summary (under st->mu) */
	/* the newest ids of each state at its last count, tails_ok once it succeeded (under st->mu)
	 */
	ferry_job_id tail[FERRY_FAILED + 1][UI_TAIL];
	size_t ntail[FERRY_FAILED + 1];
	int tails_ok;
	struct ui_sample
	    *ring; /* UI_RING of them, the oldest at ring_head once full (under st->mu) */
	size_t ring_head, ring_n;
	pthread_t poller; /* connects it and counts its jobs: one a resource, so that a
			     slow or unreachable host holds up no other */
	int started;
};

struct ui_state {
	const char *config;
	struct ui_res *res;
	size_t nres;
	pthread_mutex_t mu;   /* guards the members below and each res[i].conn */
	pthread_cond_t moved; /* summary changed, or quitting */
	json_t *summary;      /* the resources as /api/resources gives them */
	uint64_t generation;  /* bumped with each new summary */
	int quit;
};

/* ---- state.c ---- */

/* Reads the configuration into st->res: the names given (n of them) or every resource. */
int ferry__ui_state_init(struct ui_state *st, const char *config, char *const *names, size_t n,
			 char *err, size_t errlen);
/* Starts the pollers (each connects its resource, counts its jobs each second): 0 or -errno. */
int ferry__ui_state_start(struct ui_state *st);
/* Stops the pollers and wakes the event streams. */
void ferry__ui_state_stop(struct ui_state *st);
void ferry__ui_state_release(struct ui_state *st);
/* The resource named, with its connection (NULL when none yet: *why says so). */
struct ui_res *ferry__ui_find(struct ui_state *st, const char *name, ferry_conn **conn);
/*
 * from=end: a cursor before the newest limit jobs of r in states (n of
 * them; 0: any), from the ids its poller last counted, or earlier: a
 * listing of the ids after it costs what the page shows and what came
 * since, not every job. 0, or -1 when r has not been counted yet.
 */
int ferry__ui_end_cursor(struct ui_res *r, const enum ferry_job_status *states, size_t n,
			 size_t limit, ferry_job_id *after);
/* The current summary (a new reference) and its generation. */
json_t *ferry__ui_summary(struct ui_state *st, uint64_t *generation);
/*
 * Waits up to timeout_s for a summary newer than after: its text as an
 * SSE event (malloc'd), NULL when none came or when quitting (*quit set).
 */
char *ferry__ui_next_event(struct ui_state *st, uint64_t *after, double timeout_s, int *quit);

/* ---- api.c ---- */

/* What an API handler answers: status, a body (malloc'd) and its type. */
struct ui_reply {
	unsigned status;
	char *body;
	size_t len;
	const char *type;
	char *next_offset; /* /api/output: X-Next-Offset, malloc'd */
	int ended;	   /* /api/output: X-Ended: 1 */
};

/* Query argument lookup, as http.c gives it to the handlers. */
typedef const char *(*ui_arg_fn)(void *ctx, const char *key);

int ferry__ui_api_get(struct ui_state *st, const char *url, ui_arg_fn arg, void *ctx,
		      struct ui_reply *r);
int ferry__ui_api_post(struct ui_state *st, const char *url, const char *body, size_t len,
		       struct ui_reply *r);
/* A JSON reply of status (o released; NULL is out of memory: 500). */
void ferry__ui_json_reply(struct ui_reply *r, unsigned status, json_t *o);
/* {"error": msg} with status. */
void ferry__ui_error_reply(struct ui_reply *r, unsigned status, const char *msg);

/* The resource of a request's "resource" argument and its connection; NULL after a reply. */
ferry_conn *ferry__ui_resource_arg(struct ui_state *st, const char *name, struct ui_reply *r,
				   struct ui_res **res);
/* A reply for a libferry call on c that failed with rc (under res->call_mu, held since the call).
 */
void ferry__ui_ferry_error(struct ui_reply *r, ferry_conn *c, int rc);
/*
 * The cursor before the newest limit jobs (at most UI_PAGE_MAX) that o
 * selects, listed from the poller's count: 0, or -1 after a reply.
 */
int ferry__ui_cursor_of_end(struct ui_res *res, ferry_conn *c, const struct ferry_list_opts *o,
			    size_t limit, ferry_job_id *after, struct ui_reply *r);

/* ---- monitor.c ---- */

/*
 * A sample of r (its poller, after a count): the running jobs and their
 * slots, into its ring and into o's "running" and "used_slots". 0, or -1
 * with err set.
 */
int ferry__ui_sample(struct ui_res *r, json_t *o, char *err, size_t errlen);
/* GET /api/transfers, /api/plots, then graph.c's: 0 after a reply, -1 for another URL. */
int ferry__ui_monitor_get(struct ui_state *st, const char *url, ui_arg_fn arg, void *ctx,
			  struct ui_reply *r);

/* ---- graph.c ---- */

/* GET /api/workflows, /api/graph and /api/workflow-jobs: 0 after a reply, -1 for another URL. */
int ferry__ui_graph_get(struct ui_state *st, const char *url, ui_arg_fn arg, void *ctx,
			struct ui_reply *r);

/* ---- http.c ---- */

struct ui_http;
struct ui_http_opts {
	const char *bind; /* NULL: 127.0.0.1 */
	unsigned port;	  /* 0: any free one */
	struct ui_state *st;
};
/* Starts the server: 0, or -1 with err set. *out is released with ferry__ui_http_stop(). */
int ferry__ui_http_start(const struct ui_http_opts *o, struct ui_http **out, char *err,
			 size_t errlen);
/* The page's URL with the token (owned by h); a wildcard bind gives a loopback one. */
const char *ferry__ui_http_url(const struct ui_http *h);
/* Bound to a wildcard (0.0.0.0, ::): the URL with this host's name, else NULL (owned by h). */
const char *ferry__ui_http_remote_url(const struct ui_http *h);
void ferry__ui_http_stop(struct ui_http *h);
/* Whether addr (numeric) is a loopback address: 1, 0, or -1 for no address. */
int ferry__ui_is_loopback(const char *addr);

/* ---- assets.c (generated) ---- */

struct ui_asset {
	const char *path; /* "/app.js" */
	const char *type;
	const unsigned char *data;
	size_t len;
};
extern const struct ui_asset ferry__ui_assets[];
extern const size_t ferry__ui_nassets;

#endif
