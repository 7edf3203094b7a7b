/*
 * listing.c - the jobs request: a listing answered in pages (docs/protocol.md,
 * "Listings"). The server asks for each page once the client took the ones
 * before (struct ferry_pager, dispatch.h); each page is its own short read
 * of the database, by id (keyset: the next page starts after this one's
 * last id), so a listing of a million jobs never holds more than a page in
 * the engine, and one by state costs what it finds (db.c's jobs_state).
 */
#include <math.h>
#include <stdlib.h>

#include "dispatch.h"
#include "proto.h"

/* Jobs a page holds unless the request says ("page"), and at most. */
#define PAGE_DEFAULT 1000
#define PAGE_MAX     10000
/*
 * A page of job objects ends early past this many bytes of stored specs
 * (a job's object is about its spec's size): far below the frame's cap
 * however big the specs, and the next page starts after its last job.
 */
#define PAGE_BYTES (4u << 20)

struct listing {
	struct ferry_pager pager; /* first: the server's handle is the listing */
	struct db_list q;	  /* q.after moves on page by page */
	int detail;		  /* job objects, not only ids */
	json_int_t left;	  /* jobs still to list; -1: no limit */
	size_t page;		  /* jobs a page */
	int64_t *ids;		  /* room for a page's ids */
};

/* A page being filled with job objects (ferry__db_jobs_json's callback). */
struct fill {
	struct ferry_engine *eng;
	json_t *a;
	size_t bytes;
	int64_t last; /* the id of the last job taken: the next page starts after it */
	int full;
};

/* A job disposed of but not yet removed (it is being killed) is no longer listed. */
static int hidden(struct ferry_engine *eng, int64_t id)
{
	struct job *j = ferry__engine_job(eng, id);

	return j && j->dispose_requested;
}

static int take_job(void *arg, json_t *job, size_t bytes)
{
	struct fill *f = arg;
	int64_t id = json_integer_value(json_object_get(job, "id"));

	f->last = id;
	if (hidden(f->eng, id)) {
		json_decref(job);
		return 0;
	}
	ferry__req_job_view(f->eng, job);
	if (json_array_append_new(f->a, job))
		return FERRY_ENOMEM;
	f->bytes += bytes;
	f->full = f->bytes >= PAGE_BYTES;
	return f->full;
}

/*
 * The next page's jobs into a, and where the page after starts; *last: no
 * job is left. 0 or a FERRY_E* code.
 */
static int fill_page(struct listing *l, struct ferry_engine *eng, json_t *a, int *last)
{
	struct ferry_db *db = ferry__engine_db(eng);
	size_t want = l->page, n = 0;
	struct fill f = {eng, a, 0, 0, 0};
	int rc;

	if (l->left >= 0 && (json_int_t)want > l->left)
		want = (size_t)l->left;
	if (want && (rc = ferry__db_list_ids(db, &l->q, l->ids, want, &n)))
		return rc;
	*last = n < want || !want;
	if (!n)
		return 0;
	if (l->detail && (rc = ferry__db_jobs_json(db, l->ids, n, take_job, &f)))
		return rc;
	for (size_t i = 0; !l->detail && i < n; i++)
		if (!hidden(eng, l->ids[i]) && json_array_append_new(a, json_integer(l->ids[i])))
			return FERRY_ENOMEM;
	/* a page cut short on its bytes goes on after its last job, else after the last id */
	l->q.after = f.full ? f.last : l->ids[n - 1];
	if (f.full)
		*last = 0;
	if (l->left >= 0) {
		l->left -= (json_int_t)json_array_size(a);
		*last |= l->left <= 0;
	}
	return 0;
}

static int next_page(struct ferry_pager *p, struct ferry_engine *eng, json_t *page, char *err,
		     size_t errlen)
{
	struct listing *l = (struct listing *)p;
	json_t *a = json_array();
	int last = 1, rc;

	if (!a)
		return ferry__fail(err, errlen, FERRY_ENOMEM, "out of memory");
	if ((rc = fill_page(l, eng, a, &last))) {
		json_decref(a);
		return ferry__fail(err, errlen, rc, "cannot list jobs");
	}
	if (json_object_set_new(page, l->detail ? "jobs" : "ids", a))
		return ferry__fail(err, errlen, FERRY_ENOMEM, "out of memory");
	return last;
}

static void listing_free(struct ferry_pager *p)
{
	struct listing *l = (struct listing *)p;

	free(l->ids);
	free(l);
}

/* The request's fields into l; 0 or a FERRY_E* code with r->err set. */
static int get_fields(struct ferry_req *r, struct listing *l)
{
	json_t *since = json_object_get(r->in, "since"), *d = json_object_get(r->in, "detail");
	json_int_t after, page;
	int rc;

	if ((rc = ferry__req_states(r, &l->q.states)) ||
	    (rc =
		 ferry__opt_int(r->in, "after", 0, INT64_MAX, 0, &after, r->err, sizeof(r->err))) ||
	    (rc = ferry__opt_int(r->in, "limit", 1, INT64_MAX, -1, &l->left, r->err,
				 sizeof(r->err))) ||
	    (rc = ferry__opt_int(r->in, "page", 1, PAGE_MAX, PAGE_DEFAULT, &page, r->err,
				 sizeof(r->err))))
		return rc;
	if (since && !json_is_null(since) &&
	    (!json_is_number(since) || !isfinite(json_number_value(since)) ||
	     json_number_value(since) < 0))
		return ferry__req_fail(
		    r, FERRY_EINVAL,
		    "'since' must be a time: seconds since the epoch, not negative");
	if (d && !json_is_null(d) && !json_is_boolean(d))
		return ferry__req_fail(r, FERRY_EINVAL, "'detail' must be a boolean");
	l->q.after = after;
	l->q.since = json_is_number(since) ? json_number_value(since) : 0;
	l->detail = json_is_true(d);
	l->page = (size_t)page;
	return 0;
}

int ferry__req_jobs(struct ferry_req *r)
{
	struct listing *l = calloc(1, sizeof(*l));
	int rc;

	if (!l)
		return ferry__req_fail(r, FERRY_ENOMEM, "out of memory");
	if ((rc = get_fields(r, l))) {
		free(l);
		return rc;
	}
	if (!(l->ids = calloc(l->page, sizeof(*l->ids)))) {
		free(l);
		return ferry__req_fail(r, FERRY_ENOMEM, "out of memory");
	}
	l->pager.next = next_page;
	l->pager.free = listing_free;
	r->pager = &l->pager;
	return 0;
}
