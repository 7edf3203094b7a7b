/*
 * api.c - the JSON API of `ferry ui`'s page: resources, a page of jobs,
 * one job, its output from an offset, and the controls. Each handler
 * calls libferry on the resource's shared connection (ferry.h: calls on
 * one connection are serialised by the library), holding the resource's
 * call_mu from the call to the copy of its message (ui.h). Listings use
 * ferry_list_jobs(), which holds one page of the engine's answer in
 * memory however many jobs there are, and stop at the page's end; the
 * controls are one ferry_control_select() whatever the number of jobs.
 */
#include <errno.h>
#include <fnmatch.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "jbytes.h"
#include "jobfields.h"
#include "ui.h"
#include "util.h"

#define PAGE_MAX     UI_PAGE_MAX
#define PAGE_DEFAULT 50
#define OUTPUT_CHUNK (256 * 1024) /* bytes one /api/output answer holds at most */
#define ACTION_IDS   10000	  /* ids one POST /api/action takes at most */
/*
 * Jobs a name, until or ended-at filter looks at in one answer at most:
 * the listing has none of them, so the jobs are looked at here; an
 * answer stops there with a cursor, the page asking again each second costs no more than that.
 */
#define SCAN_MAX 10000

void ferry__ui_json_reply(struct ui_reply *r, unsigned status, json_t *o)
{
	r->body = o ? ferry__json_dumps(o, JSON_COMPACT) : NULL;
	json_decref(o);
	r->type = "application/json";
	r->status = r->body ? status : 500;
	if (!r->body)
		r->body = strdup("{\"error\":\"out of memory\"}");
	r->len = r->body ? strlen(r->body) : 0;
}

void ferry__ui_error_reply(struct ui_reply *r, unsigned status, const char *msg)
{
	ferry__ui_json_reply(r, status, json_pack("{s:o}", "error", ferry__json_bytes(msg)));
}

/*
 * An API call failed with rc: its message, as a 4xx for what the user
 * asked, else 502. Under the resource's call_mu, held since the call.
 */
void ferry__ui_ferry_error(struct ui_reply *r, ferry_conn *c, int rc)
{
	const char *m = ferry_errmsg(c);
	unsigned status = rc == FERRY_ENOJOB			     ? 404
			  : rc == FERRY_EINVAL || rc == FERRY_ESTATE ? 409
								     : 502;

	ferry__ui_error_reply(r, status, m && *m ? m : ferry_strerror(rc));
}

/* A decimal integer in [min, max]: 0, or -1. */
static int parse_int(const char *s, long long min, long long max, long long *out)
{
	char *end;

	if (!s || !*s)
		return -1;
	errno = 0;
	*out = strtoll(s, &end, 10);
	return errno || *end || *out < min || *out > max ? -1 : 0;
}

ferry_conn *ferry__ui_resource_arg(struct ui_state *st, const char *name, struct ui_reply *r,
				   struct ui_res **res)
{
	ferry_conn *c = NULL;

	*res = ferry__ui_find(st, name, &c);
	if (!*res) {
		ferry__ui_error_reply(r, 404, "no such resource");
		return NULL;
	}
	if (!c)
		ferry__ui_error_reply(r, 503, "the resource is not connected yet");
	return c;
}

/* ---- /api/jobs ---- */

struct page {
	json_t *jobs;
	const char *name; /* fnmatch(3) glob; NULL: any */
	/* submitted before until, ended in [ended_since, ended_until); -1: unset */
	double until, ended_since, ended_until;
	int scan; /* one of the above set: the jobs are looked at here */
	size_t limit;
	size_t scanned;	   /* jobs looked at */
	ferry_job_id last; /* the last job looked at */
	int more;	   /* a job matched past the limit */
};

/* The row of the jobs table: the fields of `ferry info` it shows. */
static json_t *row(const struct ferry_job_info *j)
{
	static const char *const keep[] = {"id",	  "name",	"command",  "status",
					   "exit_status", "exit_value", "signal",   "submitted_at",
					   "started_at",  "ended_at",	"workflow", "cpus"};
	json_t *all = ferry__job_to_json(j), *o = json_object();

	for (size_t i = 0; all && o && i < FERRY_ARRAY_SIZE(keep); i++) {
		json_t *v = json_object_get(all, keep[i]);

		if (v)
			json_object_set(o, keep[i], v);
	}
	json_decref(all);
	return o;
}

/* Whether j passes the filters the engine's listing has not: name, until, ended since or until. */
static int scan_match(const struct page *p, const struct ferry_job_info *j)
{
	if (p->name && fnmatch(p->name, j->name ? j->name : "", 0) != 0)
		return 0;
	if (p->until >= 0 && !(j->submitted_at < p->until))
		return 0;
	if (p->ended_since >= 0 && !(j->ended_at && j->ended_at >= p->ended_since))
		return 0;
	return p->ended_until < 0 || (j->ended_at && j->ended_at < p->ended_until);
}

static int page_job(void *data, const struct ferry_job_info *j)
{
	struct page *p = data;

	if (p->scan && !scan_match(p, j)) {
		p->last = j->id;
		p->more = ++p->scanned >= SCAN_MAX;
		return p->more;
	}
	if (json_array_size(p->jobs) == p->limit) {
		p->more = 1;
		return 1;
	}
	p->last = j->id;
	return json_array_append_new(p->jobs, row(j)) < 0 ? -FERRY_ENOMEM : 0;
}

/* "state=a,b": the states named, into s (room for n): how many, or -1 for a bad name. */
static int parse_states(const char *arg, enum ferry_job_status *s, size_t n)
{
	char buf[256], *save = NULL, *w;
	size_t k = 0;

	if (!arg || !*arg)
		return 0;
	if (strlen(arg) >= sizeof(buf))
		return -1;
	strcpy(buf, arg);
	for (w = strtok_r(buf, ",", &save); w; w = strtok_r(NULL, ",", &save)) {
		if (k == n || ferry_status_from_name(w, &s[k]) < 0)
			return -1;
		k++;
	}
	return (int)k;
}

/* A name without a glob character is looked for anywhere in the name. */
static char *name_glob(const char *name)
{
	if (!name || !*name)
		return NULL;
	if (strpbrk(name, "*?["))
		return strdup(name);
	return ferry__asprintf("*%s*", name);
}

static int list_page(struct ui_res *res, ferry_conn *c, struct ferry_list_opts *o, struct page *p,
		     struct ui_reply *r)
{
	int rc;

	/* without a filter of its own the engine stops the listing itself */
	if (!p->scan)
		o->limit = p->limit + 1;
	o->page = p->limit + 1 < 1000 ? p->limit + 1 : 1000;
	pthread_mutex_lock(&res->call_mu);
	rc = ferry_list_jobs(c, o, page_job, p);
	if (rc < 0)
		ferry__ui_ferry_error(r, c, rc);
	pthread_mutex_unlock(&res->call_mu);
	if (rc < 0)
		return -1;
	ferry__ui_json_reply(r, 200,
			     json_pack("{s:O,s:o}", "jobs", p->jobs, "next",
				       p->more ? json_integer(p->last) : json_null()));
	return 0;
}

/*
 * from=end: the cursor before the last limit jobs that o takes, from
 * their ids (a few bytes a job) after the poller's cursor of the newest
 * ones (ferry__ui_end_cursor(); before the first count, from the first
 * job): the newest page. 0, or -1 after a reply.
 */
int ferry__ui_cursor_of_end(struct ui_res *res, ferry_conn *c, const struct ferry_list_opts *o,
			    size_t limit, ferry_job_id *after, struct ui_reply *r)
{
	struct ferry_list_opts from = *o;
	ferry_job_id *ids = NULL;
	size_t n = 0;
	int rc;

	if (ferry__ui_end_cursor(res, o->states, o->nstates, limit, &from.after) < 0)
		from.after = o->after;
again:
	pthread_mutex_lock(&res->call_mu);
	rc = ferry_list_ids(c, &from, &ids, &n);
	if (rc < 0)
		ferry__ui_ferry_error(r, c, rc);
	pthread_mutex_unlock(&res->call_mu);
	if (rc < 0) {
		free(ids);
		return -1;
	}
	/*
	 * The poller's cursor is of the newest jobs of any workflow and time:
	 * a workflow's or a time's own may be older. Fewer than a page after
	 * it: from the first, their ids only (the engine selects them).
	 */
	if (n <= limit && from.after != o->after && (o->workflow || o->since)) {
		free(ids);
		ids = NULL;
		from.after = o->after;
		goto again;
	}
	*after = n > limit ? ids[n - limit - 1] : from.after;
	free(ids);
	return 0;
}

/* A time: seconds since the epoch, not negative; 0, or -1. An absent one is -1 (unset). */
static int parse_time(const char *s, double *out)
{
	char *end;

	*out = -1;
	if (!s)
		return 0;
	errno = 0;
	*out = strtod(s, &end);
	return !*s || errno || *end || !isfinite(*out) || *out < 0 ? -1 : 0;
}

/*
 * The filters of /api/jobs into o (those the engine's listing has: state,
 * after, since, workflow) and p (those looked at here: name, until, ended
 * since and until). 0, or -1 after a reply.
 */
static int job_filters(ui_arg_fn arg, void *ctx, struct ferry_list_opts *o, struct page *p,
		       enum ferry_job_status *states, size_t nstates, struct ui_reply *r)
{
	const char *from = arg(ctx, "from"), *name = arg(ctx, "name");
	long long after = 0, limit = PAGE_DEFAULT, wf = 0;
	int ns = parse_states(arg(ctx, "state"), states, nstates);
	double since;

	if (ns < 0 ||
	    (arg(ctx, "after") && parse_int(arg(ctx, "after"), 0, INT64_MAX, &after) < 0) ||
	    (arg(ctx, "limit") && parse_int(arg(ctx, "limit"), 1, PAGE_MAX, &limit) < 0) ||
	    (arg(ctx, "workflow") && parse_int(arg(ctx, "workflow"), 1, INT64_MAX, &wf) < 0) ||
	    parse_time(arg(ctx, "since"), &since) < 0 ||
	    parse_time(arg(ctx, "until"), &p->until) < 0 ||
	    parse_time(arg(ctx, "ended_since"), &p->ended_since) < 0 ||
	    parse_time(arg(ctx, "ended_until"), &p->ended_until) < 0) {
		ferry__ui_error_reply(r, 400,
				      "bad state, after, limit or workflow, or a time that is not "
				      "seconds since the epoch");
		return -1;
	}
	p->scan = (name && *name) || p->until >= 0 || p->ended_since >= 0 || p->ended_until >= 0;
	if (from && (strcmp(from, "end") != 0 || p->scan || after)) {
		ferry__ui_error_reply(r, 400,
				      "from is end or nothing, and takes no after, name, until, "
				      "ended_since or ended_until");
		return -1;
	}
	o->since = since > 0 ? since : 0; /* the listing's 0 is any time, as since=0 is */
	o->states = ns ? states : NULL;
	o->nstates = (size_t)ns;
	o->after = after;
	o->workflow = wf;
	p->limit = (size_t)limit;
	return 0;
}

static int get_jobs(struct ui_state *st, ui_arg_fn arg, void *ctx, struct ui_reply *r)
{
	const char *name = arg(ctx, "name");
	enum ferry_job_status states[16];
	struct ferry_list_opts o;
	struct page p = {0};
	struct ui_res *res;
	ferry_conn *c = ferry__ui_resource_arg(st, arg(ctx, "resource"), r, &res);

	if (!c)
		return 0;
	ferry_list_opts_init(&o);
	if (job_filters(arg, ctx, &o, &p, states, FERRY_ARRAY_SIZE(states), r) < 0)
		return 0;
	if (arg(ctx, "from") && ferry__ui_cursor_of_end(res, c, &o, p.limit, &o.after, r) < 0)
		return 0;
	p.jobs = json_array();
	p.name = name_glob(name);
	if (!p.jobs || (name && *name && !p.name))
		ferry__ui_error_reply(r, 500, "out of memory");
	else
		list_page(res, c, &o, &p, r);
	json_decref(p.jobs);
	free((char *)p.name);
	return 0;
}

/* ---- /api/job, /api/output ---- */

static int job_arg(struct ui_state *st, ui_arg_fn arg, void *ctx, struct ui_reply *r,
		   struct ui_res **res, ferry_conn **c, ferry_job_id *id)
{
	long long v;

	*c = ferry__ui_resource_arg(st, arg(ctx, "resource"), r, res);
	if (!*c)
		return -1;
	if (parse_int(arg(ctx, "id"), 1, INT64_MAX, &v) < 0) {
		ferry__ui_error_reply(r, 400, "bad job id");
		return -1;
	}
	*id = v;
	return 0;
}

static int get_job(struct ui_state *st, ui_arg_fn arg, void *ctx, struct ui_reply *r)
{
	struct ferry_job_info *j = NULL;
	struct ui_res *res;
	ferry_job_id id;
	ferry_conn *c;
	int rc;

	if (job_arg(st, arg, ctx, r, &res, &c, &id) < 0)
		return 0;
	pthread_mutex_lock(&res->call_mu);
	rc = ferry_job_info(c, id, &j);
	if (rc < 0)
		ferry__ui_ferry_error(r, c, rc);
	pthread_mutex_unlock(&res->call_mu);
	if (rc >= 0)
		ferry__ui_json_reply(r, 200, ferry__job_to_json(j));
	ferry_job_info_free(j);
	return 0;
}

/* Where a chunk of output may end so that no UTF-8 character is cut in two. */
static size_t utf8_cut(const unsigned char *b, size_t n)
{
	size_t i = n, back = 0;

	while (i > 0 && back < 4 && (b[i - 1] & 0xc0) == 0x80) {
		i--;
		back++;
	}
	if (i == 0 || b[i - 1] < 0xc0)
		return n; /* ends on ASCII or a complete sequence of continuation bytes */
	return ferry__utf8_char(b + i - 1, b + n) ? n : i - 1;
}

static int get_output(struct ui_state *st, ui_arg_fn arg, void *ctx, struct ui_reply *r)
{
	const char *s = arg(ctx, "stream");
	long long off = 0;
	size_t got = 0, keep;
	struct ui_res *res;
	ferry_job_id id;
	ferry_conn *c;
	int rc, ended = 0;

	if (job_arg(st, arg, ctx, r, &res, &c, &id) < 0)
		return 0;
	if ((s && strcmp(s, "stdout") && strcmp(s, "stderr")) ||
	    (arg(ctx, "offset") && parse_int(arg(ctx, "offset"), 0, INT64_MAX, &off) < 0)) {
		ferry__ui_error_reply(r, 400, "bad stream or offset");
		return 0;
	}
	r->body = malloc(OUTPUT_CHUNK);
	if (!r->body) {
		ferry__ui_error_reply(r, 500, "out of memory");
		return 0;
	}
	pthread_mutex_lock(&res->call_mu);
	rc = ferry_read_output(c, id, s && !strcmp(s, "stderr") ? FERRY_STDERR : FERRY_STDOUT,
			       (uint64_t)off, r->body, OUTPUT_CHUNK, &got, &ended);
	if (rc < 0) {
		free(r->body);
		r->body = NULL;
		ferry__ui_ferry_error(r, c, rc);
	}
	pthread_mutex_unlock(&res->call_mu);
	if (rc < 0)
		return 0;
	keep = got == OUTPUT_CHUNK ? utf8_cut((unsigned char *)r->body, got) : got;
	r->len = keep;
	r->status = 200;
	r->type = "text/plain; charset=utf-8";
	r->ended = ended && got < OUTPUT_CHUNK;
	r->next_offset = ferry__asprintf("%lld", off + (long long)keep);
	return 0;
}

int ferry__ui_api_get(struct ui_state *st, const char *url, ui_arg_fn arg, void *ctx,
		      struct ui_reply *r)
{
	if (!strcmp(url, "/api/resources")) {
		ferry__ui_json_reply(r, 200, ferry__ui_summary(st, NULL));
		return 0;
	}
	if (!strcmp(url, "/api/jobs"))
		return get_jobs(st, arg, ctx, r);
	if (!strcmp(url, "/api/job"))
		return get_job(st, arg, ctx, r);
	if (!strcmp(url, "/api/output"))
		return get_output(st, arg, ctx, r);
	return ferry__ui_monitor_get(st, url, arg, ctx, r);
}

/* ---- POST /api/action ---- */

static const struct {
	const char *name;
	enum ferry_control action;
} actions[] = {
    {"stop", FERRY_CONTROL_STOP}, {"restart", FERRY_CONTROL_RESTART},
    {"hold", FERRY_CONTROL_HOLD}, {"release", FERRY_CONTROL_RELEASE},
    {"kill", FERRY_CONTROL_KILL}, {"dispose", FERRY_CONTROL_DISPOSE},
};

static json_t *result_json(const struct ferry_control_result *res)
{
	json_t *errors = json_array();

	for (size_t i = 0; errors && i < res->nerrors; i++)
		json_array_append_new(errors, json_pack("{s:I,s:o}", "id",
							(json_int_t)res->errors[i].id, "message",
							ferry__json_bytes(res->errors[i].message)));
	return json_pack("{s:I,s:I,s:I,s:o*}", "matched", (json_int_t)res->matched, "changed",
			 (json_int_t)res->changed, "failed", (json_int_t)res->failed, "errors",
			 errors);
}

/*
 * The action on the jobs of ids, as one selection of one-id ranges: one
 * request the engine commits once, however many ids (ferry_control_select()).
 */
static void act(struct ui_res *res, ferry_conn *c, enum ferry_control action, json_t *ids,
		struct ui_reply *r)
{
	struct ferry_selection sel = {0};
	struct ferry_control_result out;
	ferry_job_id(*ranges)[2] = calloc(json_array_size(ids), sizeof(*ranges));
	size_t i;
	json_t *v;
	int rc;

	if (!ranges) {
		ferry__ui_error_reply(r, 500, "out of memory");
		return;
	}
	json_array_foreach(ids, i, v) ranges[i][0] = ranges[i][1] = json_integer_value(v);
	sel.ranges = (const ferry_job_id(*)[2])ranges;
	sel.nranges = json_array_size(ids);
	pthread_mutex_lock(&res->call_mu);
	rc = ferry_control_select(c, &sel, action, &out);
	if (rc < 0)
		ferry__ui_ferry_error(r, c, rc);
	pthread_mutex_unlock(&res->call_mu);
	free(ranges);
	if (rc >= 0)
		ferry__ui_json_reply(r, 200, result_json(&out));
}

static int action_of(const char *name, enum ferry_control *out)
{
	for (size_t i = 0; name && i < FERRY_ARRAY_SIZE(actions); i++)
		if (!strcmp(actions[i].name, name)) {
			*out = actions[i].action;
			return 0;
		}
	return -1;
}

/* ids: a non-empty array of positive integers, at most ACTION_IDS. */
static int valid_ids(const json_t *ids)
{
	size_t i;
	json_t *v;

	if (!json_is_array(ids) || json_array_size(ids) == 0 || json_array_size(ids) > ACTION_IDS)
		return 0;
	json_array_foreach(ids, i,
			   v) if (!json_is_integer(v) || json_integer_value(v) < 1) return 0;
	return 1;
}

/*
 * POST /api/workflow-action {"resource", "workflow", "action": "stop" or
 * "restart"}: soma-workflow's stop_workflow and restart_workflow, as
 * `ferry workflow stop|restart` do.
 */
static void workflow_action(struct ui_state *st, json_t *req, struct ui_reply *r)
{
	const char *action = json_string_value(json_object_get(req, "action"));
	json_t *wf = json_object_get(req, "workflow");
	struct ferry_control_result out;
	struct ui_res *res;
	size_t restarted = 0;
	ferry_conn *c;
	int rc, stop = action && !strcmp(action, "stop");

	if (!json_is_integer(wf) || json_integer_value(wf) < 1 ||
	    (!stop && (!action || strcmp(action, "restart")))) {
		ferry__ui_error_reply(r, 400,
				      "want {\"resource\", \"workflow\": ID, \"action\": \"stop\" "
				      "or \"restart\"}");
		return;
	}
	c = ferry__ui_resource_arg(st, json_string_value(json_object_get(req, "resource")), r,
				   &res);
	if (!c)
		return;
	pthread_mutex_lock(&res->call_mu);
	rc = stop ? ferry_stop_workflow(c, json_integer_value(wf), &out)
		  : ferry_restart_workflow(c, json_integer_value(wf), &restarted);
	if (rc < 0)
		ferry__ui_ferry_error(r, c, rc);
	pthread_mutex_unlock(&res->call_mu);
	if (rc >= 0)
		ferry__ui_json_reply(r, 200,
				     stop ? result_json(&out)
					  : json_pack("{s:I}", "restarted", (json_int_t)restarted));
}

int ferry__ui_api_post(struct ui_state *st, const char *url, const char *body, size_t len,
		       struct ui_reply *r)
{
	enum ferry_control action;
	struct ui_res *res;
	json_t *req, *ids;
	ferry_conn *c;

	if (!strcmp(url, "/api/workflow-action")) {
		req = json_loadb(body, len, 0, NULL);
		if (json_is_object(req))
			workflow_action(st, req, r);
		else
			ferry__ui_error_reply(r, 400, "want a JSON object");
		json_decref(req);
		return 0;
	}
	if (strcmp(url, "/api/action") != 0)
		return -1;
	req = json_loadb(body, len, 0, NULL);
	ids = json_object_get(req, "ids");
	if (!json_is_object(req) ||
	    action_of(json_string_value(json_object_get(req, "action")), &action) < 0 ||
	    !valid_ids(ids)) {
		ferry__ui_error_reply(r, 400, "want {\"resource\", \"action\", \"ids\": [...]}");
	} else {
		c = ferry__ui_resource_arg(st, json_string_value(json_object_get(req, "resource")),
					   r, &res);
		if (c)
			act(res, c, action, ids, r);
	}
	json_decref(req);
	return 0;
}
