/*
 * list.c - listings that stream (docs/protocol.md, "Listings"):
 * ferry_list_jobs() and ferry_jobs() send one jobs request and take its
 * answer page by page as it arrives, so the client holds one page at a
 * time however many jobs there are, and no frame ever holds the whole list.
 */
#include <math.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include "jbytes.h"
#include "jobfields.h"
#include "util.h"

/* The engine's bound of a page (listing.c). */
#define PAGE_MAX 10000

/* The size of each version's struct ferry_list_opts: 1 ended before workflow. */
static size_t opts_size(unsigned int version)
{
	return version == 1			    ? offsetof(struct ferry_list_opts, workflow)
	       : version == FERRY_LIST_OPTS_VERSION ? sizeof(struct ferry_list_opts)
						    : sizeof(unsigned int);
}

FERRY_EXPORT void ferry_list_opts_init_version(struct ferry_list_opts *o, unsigned int version)
{
	memset(o, 0, opts_size(version));
	o->version = version;
}

/* Of version 1: what a program built with version 1's ferry.h calls (ferry.h). */
FERRY_EXPORT void(ferry_list_opts_init)(struct ferry_list_opts *o)
{
	ferry_list_opts_init_version(o, 1);
}

/* o's workflow: a struct of version 1 has none. */
static int64_t opts_workflow(const struct ferry_list_opts *o)
{
	return o && o->version >= 2 ? o->workflow : 0;
}

/* What a listing does with its pages. */
struct stream {
	ferry_conn *c;
	/* one page (a reply, its binary part): 0 to go on, > 0 to stop, or a negative code */
	int (*page)(struct stream *s, json_t *reply, const char *bin, size_t binlen);
	ferry_job_id last; /* the last job handed on: a replay starts after it */
	size_t taken;	   /* jobs handed on */
	size_t base;	   /* of them, before the request was last sent */
	/* ferry_list_jobs() */
	ferry_job_fn fn;
	void *ud;
	int stopped; /* fn's own return that stopped the listing */
	/* ferry_list_jobs_jsonl() */
	ferry_jsonl_fn text_fn;
	/* ferry_jobs() */
	ferry_job_id *ids;
	size_t cap;
};

/* Why opts cannot be asked for, or 0. */
static int check_opts(ferry_conn *c, const struct ferry_list_opts *o)
{
	if (o->version != 1 && o->version != FERRY_LIST_OPTS_VERSION)
		return ferry__seterr(c, FERRY_EINVAL,
				     "opts were not set up with ferry_list_opts_init()");
	if (o->since < 0 || !isfinite(o->since))
		return ferry__seterr(c, FERRY_EINVAL, "invalid time %g for 'since'", o->since);
	if (opts_workflow(o) < 0)
		return ferry__seterr(c, FERRY_EINVAL, "invalid workflow id %lld",
				     (long long)opts_workflow(o));
	if (o->page > PAGE_MAX)
		return ferry__seterr(c, FERRY_EINVAL, "a page of %zu jobs is over the limit of %d",
				     o->page, PAGE_MAX);
	if (o->nstates && !o->states)
		return ferry__seterr(c, FERRY_EINVAL, "%zu states but no array of them",
				     o->nstates);
	for (size_t i = 0; i < o->nstates; i++)
		if (!ferry_status_name(o->states[i]))
			return ferry__seterr(c, FERRY_EINVAL, "invalid state filter %d",
					     (int)o->states[i]);
	return 0;
}

/* The request of opts (NULL: every job). */
static int list_request(ferry_conn *c, const struct ferry_list_opts *o, int detail, json_t **out)
{
	json_t *req, *st;
	int rc, bad = 0;

	*out = NULL;
	if (o && (rc = check_opts(c, o)))
		return rc;
	/* job objects come as JSON Lines: printed as they stand, or parsed one by one */
	req = detail ? json_pack("{s:s,s:b,s:s}", "op", "jobs", "detail", 1, "format", "jsonl")
		     : json_pack("{s:s,s:b}", "op", "jobs", "detail", 0);
	if (!req)
		return ferry__seterr(c, FERRY_ENOMEM, "out of memory");
	if (o && o->nstates) {
		st = json_array();
		bad = json_object_set_new(req, "state", st);
		for (size_t i = 0; !bad && i < o->nstates; i++)
			bad =
			    json_array_append_new(st, json_string(ferry_status_name(o->states[i])));
	}
	if (o && o->after)
		bad |= json_object_set_new(req, "after", json_integer(o->after));
	if (o && o->since > 0)
		bad |= json_object_set_new(req, "since", json_real(o->since));
	if (o && o->limit)
		bad |= json_object_set_new(req, "limit", json_integer((json_int_t)o->limit));
	if (o && o->page)
		bad |= json_object_set_new(req, "page", json_integer((json_int_t)o->page));
	if (opts_workflow(o))
		bad |= json_object_set_new(req, "workflow", json_integer(opts_workflow(o)));
	if (bad) {
		json_decref(req);
		return ferry__seterr(c, FERRY_ENOMEM, "out of memory");
	}
	*out = req;
	return 0;
}

/*
 * The link broke after some pages: the request asks again for what was
 * not handed on yet (the jobs after the last one, fewer of them), which
 * keyset paging makes exact.
 */
static int resume_request(struct stream *s, json_t *req)
{
	json_t *limit = json_object_get(req, "limit");
	int bad = 0;

	if (s->last)
		bad |= json_object_set_new(req, "after", json_integer(s->last));
	if (limit)
		bad |= json_object_set_new(
		    req, "limit",
		    json_integer(json_integer_value(limit) - (json_int_t)(s->taken - s->base)));
	ferry__close(s->c);
	s->c->lost = 1; /* the next call regains the engine within the budget */
	s->base = s->taken;
	return bad ? ferry__seterr(s->c, FERRY_ENOMEM, "out of memory") : 0;
}

/*
 * The listing was stopped before its end: the rest of its pages must not
 * pass for the replies to the next calls. A local connection is closed
 * (the next call opens another at once); a remote one, whose reopening
 * is a new login, reads them to the end.
 */
static void abandon(ferry_conn *c)
{
	json_t *reply = NULL;

	while (c->cfg.host && ferry__recv_reply(c, &reply, NULL, NULL) == 0) {
		int more = json_is_true(json_object_get(reply, "more"));
		json_decref(reply);
		if (!more)
			return;
	}
	ferry__close(c);
}

/* Sends req and hands each page of the answer to s->page; the lock is held. */
static int run_stream(struct stream *s, json_t *req)
{
	ferry_conn *c = s->c;
	json_t *reply = NULL;
	const void *bin = NULL;
	size_t binlen = 0;
	int rc = ferry__call(c, req, 0, &reply, &bin, &binlen), more = 0, stopped = 0;

	while (rc == 0) {
		more = json_is_true(json_object_get(reply, "more"));
		rc = s->page(s, reply, bin, binlen);
		json_decref(reply);
		reply = NULL;
		stopped = rc != 0;
		if (rc || !more)
			break;
		rc = ferry__recv_reply(c, &reply, &bin, &binlen);
		if (rc == FERRY_EIO && !(rc = resume_request(s, req)))
			rc = ferry__call(c, req, 0, &reply, &bin, &binlen);
		else if (rc == 0 && !json_is_true(json_object_get(reply, "ok"))) {
			rc = ferry__reply_error(c, reply);
			json_decref(reply);
		}
	}
	/*
	 * Stopped at a page (by its function, or a page it could not take):
	 * the pages still to come must not be read as the next call's reply.
	 */
	if (stopped && more)
		abandon(c);
	return rc > 0 ? 0 : rc;
}

static int locked_stream(struct stream *s, json_t *req)
{
	int rc;

	pthread_mutex_lock(&s->c->mu);
	rc = run_stream(s, req);
	pthread_mutex_unlock(&s->c->mu);
	json_decref(req);
	return rc;
}

/*
 * A page of job objects: "count" JSON Lines in its binary part, the id
 * of the last in "last" (docs/protocol.md, "Listings"). 0, or
 * FERRY_EPROTO when the page is not that.
 */
static int page_lines(struct stream *s, json_t *reply, const char *bin, size_t binlen, size_t *n,
		      ferry_job_id *lastid)
{
	json_t *count = json_object_get(reply, "count"), *last = json_object_get(reply, "last");
	size_t lines = 0;

	if (!bin) /* no binary part: no line (and no offset on a null pointer) */
		binlen = 0;
	for (const char *p = bin, *end = bin ? bin + binlen : NULL; p && p < end; lines++) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		p = nl ? nl + 1 : NULL;
	}
	if (!json_is_integer(count) || (json_int_t)lines != json_integer_value(count) ||
	    (binlen && bin[binlen - 1] != '\n') || (lines && !json_is_integer(last)))
		return ferry__seterr(s->c, FERRY_EPROTO, "the engine sent no job objects");
	*n = lines;
	*lastid = lines ? json_integer_value(last) : 0;
	return 0;
}

/* One job's line as the struct handed to fn: 0, 1 when fn stopped, or a negative code. */
static int line_to_fn(struct stream *s, const char *line, size_t len)
{
	struct ferry_job_info info = {0};
	char err[160];
	json_t *o = ferry__json_loadb(line, len, 0, err, sizeof(err));
	int rc;

	if (!o)
		return ferry__seterr(s->c, FERRY_EPROTO, "bad job object from the engine: %s", err);
	rc = ferry__job_from_json(o, &info);
	json_decref(o);
	if (!rc) {
		s->last = info.id; /* a replay starts after it */
		s->taken++;
		rc = s->fn(s->ud, &info);
		s->stopped = rc;
	}
	ferry__job_release(&info);
	if (rc)
		return rc == FERRY_ENOMEM && !s->stopped
			   ? ferry__seterr(s->c, FERRY_ENOMEM, "out of memory")
			   : 1;
	return 0;
}

static int page_of_jobs(struct stream *s, json_t *reply, const char *bin, size_t binlen)
{
	ferry_job_id last;
	size_t n;
	int rc = page_lines(s, reply, bin, binlen, &n, &last);

	if (rc || !n)
		return rc;
	for (const char *p = bin, *end = bin + binlen, *nl; !rc && p < end; p = nl + 1) {
		nl = memchr(p, '\n', (size_t)(end - p));
		rc = line_to_fn(s, p, (size_t)(nl - p));
	}
	return rc;
}

/* A listing of job objects to s's function (fn: whether it has one). */
static int list_detail(struct stream *s, const struct ferry_list_opts *opts, int fn)
{
	json_t *req;
	int rc;

	if (!fn)
		return ferry__seterr(s->c, FERRY_EINVAL, "no function to hand the jobs to");
	if ((rc = list_request(s->c, opts, 1, &req)))
		return rc;
	rc = locked_stream(s, req);
	if (rc == 0 && s->stopped < 0)
		rc = ferry__seterr(s->c, s->stopped, "the listing was stopped by its function (%d)",
				   s->stopped);
	return rc;
}

FERRY_EXPORT int ferry_list_jobs(ferry_conn *c, const struct ferry_list_opts *opts, ferry_job_fn fn,
				 void *userdata)
{
	struct stream s = {.c = c, .page = page_of_jobs, .fn = fn, .ud = userdata};

	return list_detail(&s, opts, fn != NULL);
}

/* A page's lines to fn as they stand: the listing a program prints. */
static int page_of_text(struct stream *s, json_t *reply, const char *bin, size_t binlen)
{
	ferry_job_id last;
	size_t n;
	int rc = page_lines(s, reply, bin, binlen, &n, &last);

	if (rc || !n)
		return rc;
	s->last = last;
	s->taken += n;
	if ((rc = s->text_fn(s->ud, bin, binlen, n)))
		s->stopped = rc;
	return rc ? 1 : 0;
}

FERRY_EXPORT int ferry_list_jobs_jsonl(ferry_conn *c, const struct ferry_list_opts *opts,
				       ferry_jsonl_fn fn, void *userdata)
{
	struct stream s = {.c = c, .page = page_of_text, .text_fn = fn, .ud = userdata};

	return list_detail(&s, opts, fn != NULL);
}

static int page_of_ids(struct stream *s, json_t *reply, const char *bin, size_t binlen)
{
	json_t *a = json_object_get(reply, "ids"), *e;
	size_t i, n = json_array_size(a);

	if (!json_is_array(a) || binlen)
		return ferry__seterr(s->c, FERRY_EPROTO, "the engine sent no job ids");
	if (s->taken + n > s->cap) {
		size_t cap = s->cap ? s->cap : 1024;
		while (cap < s->taken + n)
			cap *= 2;
		ferry_job_id *v = realloc(s->ids, cap * sizeof(*v));
		if (!v)
			return ferry__seterr(s->c, FERRY_ENOMEM, "out of memory");
		s->ids = v;
		s->cap = cap;
	}
	json_array_foreach(a, i, e) s->ids[s->taken++] = json_integer_value(e);
	if (n)
		s->last = s->ids[s->taken - 1];
	return 0;
}

FERRY_EXPORT int ferry_list_ids(ferry_conn *c, const struct ferry_list_opts *opts,
				ferry_job_id **ids, size_t *n)
{
	struct stream s = {.c = c, .page = page_of_ids};
	json_t *req;
	int rc;

	*ids = NULL;
	*n = 0;
	/* opts as given (a version 1 struct is shorter): the page added to the request */
	if ((rc = list_request(c, opts, 0, &req)))
		return rc;
	if ((!opts || !opts->page) && json_object_set_new(req, "page", json_integer(PAGE_MAX))) {
		json_decref(req); /* ids are small: fewer frames */
		return ferry__seterr(c, FERRY_ENOMEM, "out of memory");
	}
	rc = locked_stream(&s, req);
	if (rc) {
		free(s.ids);
		return rc;
	}
	*ids = s.ids ? s.ids : malloc(sizeof(**ids));
	if (!*ids)
		return ferry__seterr(c, FERRY_ENOMEM, "out of memory");
	*n = s.taken;
	return 0;
}

FERRY_EXPORT int ferry_jobs(ferry_conn *c, const enum ferry_job_status *filter, ferry_job_id **ids,
			    size_t *n)
{
	struct ferry_list_opts o;

	ferry_list_opts_init(&o);
	o.states = filter;
	o.nstates = filter ? 1 : 0;
	return ferry_list_ids(c, &o, ids, n);
}
