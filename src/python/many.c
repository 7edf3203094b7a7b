/*
 * many.c - the calls on many jobs at once: a listing taken a page at a
 * time (the package's list_jobs() iterates it, so a million jobs never
 * make one list), a wait for every job not ended, the controls by
 * selection, and a job's output as a file of this process.
 */
#include "pyferry.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "jobfields.h"

/* The largest page the engine answers (docs/protocol.md, "Listings"). */
#define PAGE_MAX 10000
/* A wait for all jobs looks for Ctrl-C this often. */
#define WAIT_SLICE_S 0.25

static PyTypeObject *wait_all_result_type, *control_result_type;

/* ------------------------------------------------------------------ */
/* Arguments */

/* One state name into *st; -1 with InvalidArgument or TypeError set. */
static int state_of(PyObject *o, enum ferry_job_status *st)
{
	const char *name;

	if (!PyUnicode_Check(o)) {
		PyErr_Format(PyExc_TypeError, "a state must be a str, not %.80s",
			     Py_TYPE(o)->tp_name);
		return -1;
	}
	if (!(name = PyUnicode_AsUTF8(o)))
		return -1;
	if (ferry_status_from_name(name, st) < 0) {
		pyf_raisef(FERRY_EINVAL, "no job state is named '%s'", name);
		return -1;
	}
	return 0;
}

/*
 * state: None, a state name, or an iterable of them, into an array the
 * arena keeps (*v NULL, *n 0 for None). -1 with an exception set.
 */
static int parse_states(struct pyf_arena *a, PyObject *o, enum ferry_job_status **v, size_t *n)
{
	PyObject *seq;
	Py_ssize_t len;

	*v = NULL;
	*n = 0;
	if (o == Py_None)
		return 0;
	if (PyUnicode_Check(o)) {
		if (!(*v = pyf_arena_alloc(a, sizeof(**v))))
			return -1;
		*n = 1;
		return state_of(o, *v);
	}
	if (!(seq = PySequence_Fast(o, "state must be a str or an iterable of str")))
		return -1;
	len = PySequence_Fast_GET_SIZE(seq);
	if (!len || !(*v = pyf_arena_alloc(a, sizeof(**v) * (size_t)len))) {
		if (!len)
			pyf_raisef(FERRY_EINVAL, "state names no state (an empty %.80s)",
				   Py_TYPE(o)->tp_name);
		Py_DECREF(seq);
		return -1;
	}
	for (Py_ssize_t i = 0; i < len; i++)
		if (state_of(PySequence_Fast_GET_ITEM(seq, i), *v + i) < 0) {
			Py_DECREF(seq);
			return -1;
		}
	*n = (size_t)len;
	Py_DECREF(seq);
	return 0;
}

/* ------------------------------------------------------------------ */
/* A listing, a page at a time */

/* The jobs of one page, gathered with the GIL released. */
struct page {
	json_t *items; /* job objects (detail); a page of ids is id_page()'s */
	int detail;
	ferry_job_id last;
};

static int page_job(void *ud, const struct ferry_job_info *job)
{
	struct page *p = ud;
	json_t *o = ferry__job_to_json(job);

	if (!o || json_array_append_new(p->items, o))
		return FERRY_ENOMEM;
	p->last = job->id;
	return 0;
}

/* The page's items as a list; NULL with an exception set. */
static PyObject *page_list(const struct page *p)
{
	PyObject *l = PyList_New((Py_ssize_t)json_array_size(p->items));
	json_t *o;
	size_t i;

	json_array_foreach(p->items, i, o)
	{
		PyObject *x = l ? pyf_from_json(o) : NULL;
		if (!x) {
			Py_CLEAR(l);
			break;
		}
		PyList_SET_ITEM(l, (Py_ssize_t)i, x);
	}
	return l;
}

/* A page of ids alone (ferry_list_ids): the engine sends no job objects. */
static PyObject *id_page(struct pyf_conn *self, const struct ferry_list_opts *o)
{
	struct pyf_err e = {0};
	ferry_job_id *ids = NULL, last = 0;
	size_t n = 0;
	PyObject *l;

	PYF_CALL(self, &e, ferry_list_ids(self->conn, o, &ids, &n));
	if (e.rc) {
		pyf_raise(&e);
		return NULL;
	}
	l = PyList_New((Py_ssize_t)n);
	for (size_t i = 0; l && i < n; i++) {
		PyObject *x = PyLong_FromLongLong(ids[i]);
		if (!x) {
			Py_CLEAR(l);
			break;
		}
		PyList_SET_ITEM(l, (Py_ssize_t)i, x);
	}
	if (n)
		last = ids[n - 1];
	free(ids);
	return l ? Py_BuildValue("(NL)", l, (long long)last) : NULL;
}

PyObject *pyf_list_page(struct pyf_conn *self, PyObject *args, PyObject *kw)
{
	static char *kwlist[] = {"state", "after", "since", "limit", "detail", "workflow", NULL};
	PyObject *st = Py_None, *l = NULL;
	struct page p = {.items = json_array()};
	struct ferry_list_opts o;
	struct pyf_err e = {0};
	long long after = 0, limit = 1000, workflow = 0;
	struct pyf_arena a;
	double since = 0;

	if (!p.items)
		return PyErr_NoMemory();
	ferry_list_opts_init(&o);
	if (pyf_arena_init(&a) < 0 ||
	    !PyArg_ParseTupleAndKeywords(args, kw, "|OLdLpL:_list_page", kwlist, &st, &after,
					 &since, &limit, &p.detail, &workflow) ||
	    parse_states(&a, st, (enum ferry_job_status **)&o.states, &o.nstates) < 0)
		goto out;
	if (after < 0 || limit < 1 || limit > PAGE_MAX || since < 0 || !isfinite(since) ||
	    workflow < 0) {
		pyf_raisef(FERRY_EINVAL, "after must be a job id or 0, since a time >= 0, a page 1 "
					 "to 10000 jobs, and workflow a workflow id or 0");
		goto out;
	}
	o.workflow = workflow;
	o.after = after;
	o.since = since;
	o.limit = (size_t)limit;
	if (!p.detail) {
		l = id_page(self, &o);
		goto out;
	}
	PYF_CALL(self, &e, ferry_list_jobs(self->conn, &o, page_job, &p));
	if (e.rc)
		pyf_raise(&e);
	else if ((l = page_list(&p)))
		l = Py_BuildValue("(NL)", l, (long long)p.last);
out:
	json_decref(p.items);
	pyf_arena_release(&a);
	return l;
}

/* ------------------------------------------------------------------ */
/* A wait for all jobs */

/*
 * ferry_wait_all() runs on a thread of its own, on a side connection: it
 * takes its set at the call, so it cannot be cut into slices as wait()
 * is. The caller waits for it in slices and looks for Ctrl-C between
 * them; interrupted, it leaves the thread to end (when the engine
 * answers) and free all, the side connection with it.
 */
struct wait_all {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	ferry_conn *c;
	enum ferry_job_status *states;
	size_t nstates;
	double timeout;
	struct ferry_wait_all_result res;
	struct pyf_err e;
	int done, abandoned;
};

static void wait_all_free(struct wait_all *w)
{
	pthread_mutex_destroy(&w->mu);
	pthread_cond_destroy(&w->cv);
	free(w->states);
	free(w);
}

static void *wait_all_thread(void *arg)
{
	struct wait_all *w = arg;
	int rc = ferry_wait_all(w->c, w->states, w->nstates, w->timeout, &w->res);

	pthread_mutex_lock(&w->mu);
	if (rc && rc != FERRY_ETIMEDOUT)
		pyf_keep(w->c, rc, &w->e);
	w->done = 1;
	if (w->abandoned) {
		pthread_mutex_unlock(&w->mu);
		ferry_disconnect(w->c);
		wait_all_free(w);
		return NULL;
	}
	pthread_cond_signal(&w->cv);
	pthread_mutex_unlock(&w->mu);
	return NULL;
}

/* A wait with its copy of states; NULL with an exception set. */
static struct wait_all *wait_all_new(const enum ferry_job_status *states, size_t n, double timeout)
{
	struct wait_all *w = calloc(1, sizeof(*w));
	pthread_condattr_t ca;

	if (!w || (n && !(w->states = malloc(n * sizeof(*states))))) {
		free(w);
		PyErr_NoMemory();
		return NULL;
	}
	if (n)
		memcpy(w->states, states, n * sizeof(*states));
	w->nstates = n;
	w->timeout = timeout;
	pthread_mutex_init(&w->mu, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&w->cv, &ca);
	pthread_condattr_destroy(&ca);
	return w;
}

/*
 * Waits, GIL released, up to one slice for w's thread: 1 once it is done
 * (w is the caller's again), 0 when not yet.
 */
static int wait_all_slice(struct wait_all *w)
{
	PyThreadState *ts = PyEval_SaveThread();
	struct timespec t;
	int done;

	clock_gettime(CLOCK_MONOTONIC, &t);
	t.tv_nsec += (long)(WAIT_SLICE_S * 1e9);
	t.tv_sec += t.tv_nsec / 1000000000L;
	t.tv_nsec %= 1000000000L;
	pthread_mutex_lock(&w->mu);
	while (!w->done && pthread_cond_timedwait(&w->cv, &w->mu, &t) != ETIMEDOUT)
		;
	done = w->done;
	pthread_mutex_unlock(&w->mu);
	PyEval_RestoreThread(ts);
	return done;
}

/* Leaves w to its thread unless it is done: 1 when it was (w is the caller's). */
static int wait_all_abandon(struct wait_all *w)
{
	int done;

	pthread_mutex_lock(&w->mu);
	done = w->done;
	w->abandoned = !done;
	pthread_mutex_unlock(&w->mu);
	return done;
}

static PyObject *wait_all_result(const struct ferry_wait_all_result *r)
{
	PyObject *t = PyStructSequence_New(wait_all_result_type);
	PyObject *ids = PyList_New((Py_ssize_t)r->nfailed_ids);

	for (size_t i = 0; ids && i < r->nfailed_ids; i++) {
		PyObject *v = PyLong_FromLongLong(r->failed_ids[i]);
		if (!v)
			Py_CLEAR(ids);
		else
			PyList_SET_ITEM(ids, (Py_ssize_t)i, v);
	}
	if (!t || !ids) {
		Py_XDECREF(t);
		Py_XDECREF(ids);
		return NULL;
	}
	PyStructSequence_SET_ITEM(t, 0, PyLong_FromSize_t(r->jobs));
	PyStructSequence_SET_ITEM(t, 1, PyLong_FromSize_t(r->pending));
	PyStructSequence_SET_ITEM(t, 2, PyLong_FromSize_t(r->failed));
	PyStructSequence_SET_ITEM(t, 3, ids);
	for (int i = 0; t && i < 3; i++)
		if (!PyStructSequence_GET_ITEM(t, i))
			Py_CLEAR(t);
	return t;
}

/* Runs w on a thread and waits for it; takes w. */
static PyObject *wait_all_run(struct pyf_conn *self, struct wait_all *w)
{
	PyThreadState *ts;
	pthread_t th;
	PyObject *r;
	int err = 0;

	ts = PyEval_SaveThread();
	if (pyf_side_get(self, &w->c, &w->e) < 0)
		w->c = NULL;
	else if ((err = pthread_create(&th, NULL, wait_all_thread, w)) == 0)
		pthread_detach(th);
	PyEval_RestoreThread(ts);
	if (!w->c || err) {
		r = w->c ? pyf_raisef(FERRY_ENOMEM, "cannot start a thread for the wait: %s",
				      strerror(err))
			 : pyf_raise(&w->e);
		ts = PyEval_SaveThread();
		if (w->c)
			pyf_side_put(self, w->c);
		PyEval_RestoreThread(ts);
		wait_all_free(w);
		return r;
	}
	while (!wait_all_slice(w)) {
		int stop = PyErr_CheckSignals() < 0;
		if (!stop && self->closed) {
			stop = 1;
			pyf_raisef(FERRY_EINVAL, "the connection was closed during the wait");
		}
		if (stop && !wait_all_abandon(w))
			return NULL; /* the thread frees w when the engine answers */
		if (stop)
			break;
	}
	r = PyErr_Occurred() ? NULL : w->e.rc ? pyf_raise(&w->e) : wait_all_result(&w->res);
	ts = PyEval_SaveThread();
	pyf_side_put(self, w->c);
	PyEval_RestoreThread(ts);
	wait_all_free(w);
	return r;
}

PyObject *pyf_wait_all(struct pyf_conn *self, PyObject *args, PyObject *kw)
{
	static char *kwlist[] = {"state", "timeout", NULL};
	PyObject *st = Py_None, *t = Py_None, *r = NULL;
	enum ferry_job_status *states;
	struct pyf_arena a;
	struct wait_all *w;
	double timeout = -1;
	size_t n;

	if (pyf_arena_init(&a) < 0)
		return NULL;
	if (PyArg_ParseTupleAndKeywords(args, kw, "|OO:wait_all", kwlist, &st, &t) &&
	    pyf_timeout(t, &timeout) == 0 && parse_states(&a, st, &states, &n) == 0 &&
	    (w = wait_all_new(states, n, timeout)))
		r = wait_all_run(self, w);
	pyf_arena_release(&a);
	return r;
}

/* ------------------------------------------------------------------ */
/* Controls by selection */

/* "A-B" or "A" into [first, last]; -1 with InvalidArgument set. */
static int range_of_str(PyObject *o, ferry_job_id r[2])
{
	const char *s = PyUnicode_AsUTF8(o);
	char *end;
	long long a, b;

	if (!s)
		return -1;
	errno = 0;
	a = strtoll(s, &end, 10);
	b = a;
	if (*end == '-')
		b = strtoll(end + 1, &end, 10);
	if (errno || end == s || *end || a < 1 || b < a || s[0] == '-' || s[0] == '+' ||
	    s[0] == ' ') {
		pyf_raisef(FERRY_EINVAL, "'%s' is not a job id or a range FIRST-LAST", s);
		return -1;
	}
	r[0] = a;
	r[1] = b;
	return 0;
}

/* A job id, a range (step 1) or a "FIRST-LAST" string into r; -1 with an exception set. */
static int range_of(PyObject *o, ferry_job_id r[2])
{
	if (PyUnicode_Check(o))
		return range_of_str(o, r);
	if (PyRange_Check(o)) {
		PyObject *start = PyObject_GetAttrString(o, "start");
		PyObject *stop = start ? PyObject_GetAttrString(o, "stop") : NULL;
		PyObject *step = stop ? PyObject_GetAttrString(o, "step") : NULL;
		int64_t a = 0, b = 0, c = 0;
		int rc = !step || pyf_int64(start, &a, "a range's start") < 0 ||
				 pyf_int64(stop, &b, "a range's stop") < 0 ||
				 pyf_int64(step, &c, "a range's step") < 0
			     ? -1
			     : 0;
		Py_XDECREF(start);
		Py_XDECREF(stop);
		Py_XDECREF(step);
		if (rc)
			return -1;
		if (c != 1 || a < 1 || b <= a) {
			pyf_raisef(FERRY_EINVAL, "a range of job ids has step 1, start >= 1 and is "
						 "not empty");
			return -1;
		}
		r[0] = a;
		r[1] = b - 1;
		return 0;
	}
	if (pyf_job_id(o, &r[0]) < 0)
		return -1;
	r[1] = r[0];
	return 0;
}

/* ids: one of range_of()'s, or an iterable of them, into the arena. */
static int parse_ranges(struct pyf_arena *a, PyObject *o, struct ferry_selection *sel)
{
	ferry_job_id(*v)[2];
	PyObject *seq;
	Py_ssize_t len;

	if (o == Py_None)
		return 0;
	if (PyUnicode_Check(o) || PyRange_Check(o) || PyIndex_Check(o)) {
		if (!(v = pyf_arena_alloc(a, sizeof(*v))) || range_of(o, v[0]) < 0)
			return -1;
		sel->ranges = (const ferry_job_id(*)[2])v;
		sel->nranges = 1;
		return 0;
	}
	if (!(seq = PySequence_Fast(o, "ids must be a job id, a range, a 'FIRST-LAST' str, "
				       "or an iterable of them")))
		return -1;
	len = PySequence_Fast_GET_SIZE(seq);
	v = len ? pyf_arena_alloc(a, sizeof(*v) * (size_t)len) : NULL;
	if (!len)
		pyf_raisef(FERRY_EINVAL, "ids names no job (an empty %.80s)", Py_TYPE(o)->tp_name);
	for (Py_ssize_t i = 0; v && i < len; i++)
		if (range_of(PySequence_Fast_GET_ITEM(seq, i), v[i]) < 0)
			v = NULL;
	Py_DECREF(seq);
	if (!v)
		return -1;
	sel->ranges = (const ferry_job_id(*)[2])v;
	sel->nranges = (size_t)len;
	return 0;
}

PyObject *pyf_control_result(const struct ferry_control_result *r)
{
	PyObject *t = PyStructSequence_New(control_result_type);
	PyObject *errs = PyList_New((Py_ssize_t)r->nerrors);

	for (size_t i = 0; errs && i < r->nerrors; i++) {
		PyObject *msg = PyUnicode_DecodeUTF8(r->errors[i].message,
						     (Py_ssize_t)strlen(r->errors[i].message),
						     "backslashreplace");
		PyObject *exc =
		    msg ? PyObject_CallOneArg(pyf_exception(r->errors[i].code), msg) : NULL;
		PyObject *pair =
		    exc ? Py_BuildValue("(LN)", (long long)r->errors[i].id, exc) : NULL;
		Py_XDECREF(msg);
		if (!pair)
			Py_CLEAR(errs);
		else
			PyList_SET_ITEM(errs, (Py_ssize_t)i, pair);
	}
	if (!t || !errs) {
		Py_XDECREF(t);
		Py_XDECREF(errs);
		return NULL;
	}
	PyStructSequence_SET_ITEM(t, 0, PyLong_FromSize_t(r->matched));
	PyStructSequence_SET_ITEM(t, 1, PyLong_FromSize_t(r->changed));
	PyStructSequence_SET_ITEM(t, 2, PyLong_FromSize_t(r->failed));
	PyStructSequence_SET_ITEM(t, 3, errs);
	for (int i = 0; t && i < 3; i++)
		if (!PyStructSequence_GET_ITEM(t, i))
			Py_CLEAR(t);
	return t;
}

PyObject *pyf_control_select(struct pyf_conn *self, enum ferry_control action, int all,
			     PyObject *state, PyObject *name, PyObject *ids)
{
	struct ferry_selection sel = {.all = all};
	struct ferry_control_result res;
	struct pyf_err e = {0};
	struct pyf_arena a;
	PyObject *r = NULL;

	if (pyf_arena_init(&a) < 0)
		return NULL;
	if (parse_states(&a, state, (enum ferry_job_status **)&sel.states, &sel.nstates) < 0 ||
	    (name != Py_None && !(sel.name = pyf_cstr(&a, name, "name"))) ||
	    parse_ranges(&a, ids, &sel) < 0)
		goto out;
	PYF_CALL(self, &e, ferry_control_select(self->conn, &sel, action, &res));
	r = e.rc ? pyf_raise(&e) : pyf_control_result(&res);
out:
	pyf_arena_release(&a);
	return r;
}

/* ------------------------------------------------------------------ */
/* Output as a file */

PyObject *pyf_open_output(struct pyf_conn *self, PyObject *args, PyObject *kw)
{
	static char *kwlist[] = {"job_id", "stream", NULL};
	const char *stream = "stdout";
	enum ferry_stream s;
	struct pyf_err e = {0};
	int fd = -1, ended = 0;
	ferry_job_id id;
	PyObject *o, *f;

	if (!PyArg_ParseTupleAndKeywords(args, kw, "O|s:open_output", kwlist, &o, &stream) ||
	    pyf_job_id(o, &id) < 0)
		return NULL;
	if (!strcmp(stream, "stdout"))
		s = FERRY_STDOUT;
	else if (!strcmp(stream, "stderr"))
		s = FERRY_STDERR;
	else
		return pyf_raisef(FERRY_EINVAL, "stream must be 'stdout' or 'stderr', not '%s'",
				  stream);
	PYF_CALL(self, &e, ferry_open_output(self->conn, id, s, &fd, &ended));
	if (e.rc)
		return pyf_raise(&e);
	if (fd < 0)
		return Py_BuildValue("(OO)", Py_None, ended ? Py_True : Py_False);
	/*
	 * The file object owns fd. It fails only out of memory, and maybe after
	 * its FileIO took fd and closed it: fd is not closed here, lest another
	 * thread's new descriptor of that number be.
	 */
	if (!(f = PyFile_FromFd(fd, NULL, "rb", -1, NULL, NULL, NULL, 1)))
		return NULL;
	return Py_BuildValue("(NO)", f, ended ? Py_True : Py_False);
}

/* ------------------------------------------------------------------ */

static PyStructSequence_Field wait_all_fields[] = {
    {"jobs", "the jobs the wait took at the call"},
    {"pending", "of those, not ended when it returned (0 unless it timed out)"},
    {"failed", "of those, the ones that ended failed (a disposed job did not fail)"},
    {"failed_ids", "the ids of the first 16 that failed, as they ended"},
    {NULL, NULL},
};

static PyStructSequence_Desc wait_all_desc = {
    "ferry.WaitAllResult", "What Connection.wait_all() found.", wait_all_fields, 4};

static PyStructSequence_Field control_fields[] = {
    {"matched", "the jobs the selection took"},
    {"changed", "of those, the ones the action changed (or asked the cluster to)"},
    {"failed", "of those, the ones it could not be applied to"},
    {"errors", "the first 16 of those: (job_id, ferry.Error instance) pairs"},
    {NULL, NULL},
};

static PyStructSequence_Desc control_desc = {
    "ferry.ControlResult", "What a control by selection (kill(state=...), ...) did.",
    control_fields, 4};

int pyf_many_init(PyObject *m)
{
	if (!wait_all_result_type &&
	    !(wait_all_result_type = PyStructSequence_NewType(&wait_all_desc)))
		return -1;
	if (!control_result_type &&
	    !(control_result_type = PyStructSequence_NewType(&control_desc)))
		return -1;
	if (PyModule_AddObjectRef(m, "WaitAllResult", (PyObject *)wait_all_result_type) < 0 ||
	    PyModule_AddObjectRef(m, "ControlResult", (PyObject *)control_result_type) < 0)
		return -1;
	return 0;
}
