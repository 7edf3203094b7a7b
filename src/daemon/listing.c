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
#include <string.h>

#include "dbrow.h"
#include "dispatch.h"
#include "jbytes.h"
#include "proto.h"

/* Jobs a page holds unless the request says ("page"), and at most. */
#define PAGE_DEFAULT 1000
#define PAGE_MAX     10000
/*
 * A page of job objects ends before the job that would take it past this
 * many bytes (unless it is the page's first): far below the frame's cap,
 * and the next page starts after its last job.
 */
#define PAGE_BYTES (4u << 20)

/* What a listing answers with. */
enum listing_form {
	FORM_IDS,   /* "ids": an array of ids */
	FORM_JSON,  /* "jobs": an array of job objects (protocol version 2's form) */
	FORM_JSONL, /* the job objects as JSON Lines, in the binary part */
};

struct listing {
	struct ferry_pager pager; /* first: the server's handle is the listing */
	struct db_list q;	  /* q.after moves on page by page */
	enum listing_form form;
	json_int_t left; /* jobs still to list; -1: no limit */
	size_t page;	 /* jobs a page */
	int64_t *ids;	 /* room for a page's ids */
};

/* A page being filled with job objects, a line each (ferry__db_job_rows' callback). */
struct fill {
	struct ferry_engine *eng;
	struct ferry_jtext t;
	size_t count;
	int64_t last; /* the id of the last job taken: the next page starts after it */
	int full;
};

/* A job disposed of but not yet removed (it is being killed) is no longer listed. */
static int hidden(struct ferry_engine *eng, int64_t id)
{
	struct job *j = ferry__engine_job(eng, id);

	return j && j->dispose_requested;
}

static int take_row(void *arg, sqlite3_stmt *q)
{
	struct fill *f = arg;
	int64_t id = sqlite3_column_int64(q, JC_id);
	const struct job *j = ferry__engine_job(f->eng, id);
	size_t before = f->t.len;
	int rc;

	if (j && j->dispose_requested) {
		f->last = id;
		return 0;
	}
	if ((rc = ferry__db_row_text(ferry__engine_jobs_dir(f->eng), j, q, &f->t)))
		return rc;
	ferry__jtext_raw(&f->t, "\n", 1);
	if (f->t.bad)
		return FERRY_ENOMEM;
	if (f->t.len > PAGE_BYTES && f->count) {
		f->t.len = before; /* the next page starts with it */
		return f->full = 1;
	}
	f->last = id;
	f->count++;
	return 0;
}

/*
 * A page of job objects of any state: the rows read at once (an id query
 * first cost as much as the rows again). *last: no job is left.
 */
static int rows_page(struct listing *l, struct fill *f, size_t want, int *last)
{
	int64_t read_last = 0;
	size_t n = 0;
	int rc =
	    ferry__db_list_rows(ferry__engine_db(f->eng), &l->q, want, take_row, f, &n, &read_last);

	if (rc)
		return rc;
	*last = !f->full && n < want;
	if (n) /* a page cut short on its bytes goes on after its last job */
		l->q.after = f->full ? f->last : read_last;
	if (l->left >= 0) {
		l->left -= (json_int_t)f->count;
		*last |= l->left <= 0;
	}
	return 0;
}

/*
 * The next page's jobs into f (or ids into a), and where the page after
 * starts; *last: no job is left. 0 or a FERRY_E* code.
 */
static int fill_page(struct listing *l, struct fill *f, json_t *a, int *last)
{
	struct ferry_db *db = ferry__engine_db(f->eng);
	size_t want = l->page, n = 0;
	int rc;

	if (l->left >= 0 && (json_int_t)want > l->left)
		want = (size_t)l->left;
	if (want && l->form != FORM_IDS && !l->q.states && !l->q.workflow)
		return rows_page(l, f, want, last);
	if (want && (rc = ferry__db_list_ids(db, &l->q, l->ids, want, &n)))
		return rc;
	*last = n < want || !want;
	if (!n)
		return 0;
	if (l->form != FORM_IDS && (rc = ferry__db_job_rows(db, l->ids, n, take_row, f)))
		return rc;
	for (size_t i = 0; l->form == FORM_IDS && i < n; i++) {
		if (hidden(f->eng, l->ids[i]))
			continue;
		if (json_array_append_new(a, json_integer(l->ids[i])))
			return FERRY_ENOMEM;
		f->count++;
	}
	/* a page cut short on its bytes goes on after its last job, else after the last id */
	l->q.after = f->full ? f->last : l->ids[n - 1];
	if (f->full)
		*last = 0;
	if (l->left >= 0) {
		l->left -= (json_int_t)f->count;
		*last |= l->left <= 0;
	}
	return 0;
}

/* The lines of f as the array of job objects of protocol version 2's form. */
static int lines_to_array(struct fill *f, json_t *a, char *err, size_t errlen)
{
	const char *p = f->t.p, *end, *nl;

	if (!p) /* no job on the page: nothing was written */
		return 0;
	for (end = p + f->t.len; p < end; p = nl + 1) {
		json_t *o;
		nl = memchr(p, '\n', (size_t)(end - p));
		if (!(o = ferry__json_loadb(p, (size_t)(nl - p), 0, err, errlen)))
			return FERRY_EINTERNAL;
		if (json_array_append_new(a, o))
			return FERRY_ENOMEM;
	}
	return 0;
}

/* The page's fields and binary part; the lines go to bin (or are parsed into "jobs"). */
static int page_out(struct listing *l, struct fill *f, json_t *a, json_t *page,
		    struct ferry_bin *bin, char *err, size_t errlen)
{
	int rc = 0;

	if (l->form == FORM_JSONL) {
		bin->p = f->t.p;
		bin->len = f->t.len;
		f->t = (struct ferry_jtext){0};
		if (json_object_set_new(page, "count", json_integer((json_int_t)f->count)) ||
		    (f->count && json_object_set_new(page, "last", json_integer(f->last))))
			rc = FERRY_ENOMEM;
		json_decref(a);
		return rc;
	}
	if (l->form == FORM_JSON && (rc = lines_to_array(f, a, err, errlen))) {
		json_decref(a);
		return rc;
	}
	return json_object_set_new(page, l->form == FORM_IDS ? "ids" : "jobs", a) ? FERRY_ENOMEM
										  : 0;
}

static int next_page(struct ferry_pager *p, struct ferry_engine *eng, json_t *page,
		     struct ferry_bin *bin, char *err, size_t errlen)
{
	struct listing *l = (struct listing *)p;
	struct fill f = {.eng = eng};
	json_t *a = json_array();
	int last = 1, rc;

	if (!a)
		return ferry__fail(err, errlen, FERRY_ENOMEM, "out of memory");
	if ((rc = fill_page(l, &f, a, &last))) {
		json_decref(a);
		ferry__jtext_free(&f.t);
		return ferry__fail(err, errlen, rc, "cannot list jobs");
	}
	rc = page_out(l, &f, a, page, bin, err, errlen);
	ferry__jtext_free(&f.t);
	if (rc == FERRY_ENOMEM)
		return ferry__fail(err, errlen, rc, "out of memory");
	return rc ? rc : last;
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
	json_t *form = json_object_get(r->in, "format");
	json_int_t after, page, wf;
	int rc;

	if ((rc = ferry__req_states(r, &l->q.states)) ||
	    (rc =
		 ferry__opt_int(r->in, "workflow", 1, INT64_MAX, 0, &wf, r->err, sizeof(r->err))) ||
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
	if (form && !json_is_null(form) &&
	    (!json_is_string(form) ||
	     (strcmp(json_string_value(form), "json") && strcmp(json_string_value(form), "jsonl"))))
		return ferry__req_fail(r, FERRY_EINVAL, "'format' must be \"json\" or \"jsonl\"");
	if (json_is_string(form) && !json_is_true(d))
		return ferry__req_fail(
		    r, FERRY_EINVAL, "'format' is the form of job objects: it takes 'detail' true");
	l->q.after = after;
	l->q.workflow = wf;
	l->q.since = json_is_number(since) ? json_number_value(since) : 0;
	l->form = !json_is_true(d)						      ? FORM_IDS
		  : json_is_string(form) && !strcmp(json_string_value(form), "jsonl") ? FORM_JSONL
										      : FORM_JSON;
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
