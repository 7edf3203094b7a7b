/*
 * conn.c - ferry.Connection: opening and closing, the side connections
 * waits use, and the calls about jobs that take an id (status, the
 * controls, wait, jobs). The seed's names are the methods; the ferry
 * package adds their snake_case aliases.
 */
#include "pyferry.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

/* A wait is cut into slices this long so that Ctrl-C is seen promptly. */
#define WAIT_SLICE_S 0.25
/* Side connections kept open for later waits; more are closed on return. */
#define IDLE_MAX 8

static char *dup_or_null(const char *s)
{
	return s ? strdup(s) : NULL;
}

static void free_secret(char *s)
{
	if (s)
		explicit_bzero(s, strlen(s));
	free(s);
}

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* ------------------------------------------------------------------ */
/* Side connections (GIL released) */

/* An idle connection, or a new one opened as the main one was. */
int pyf_side_get(struct pyf_conn *self, ferry_conn **out, struct pyf_err *e)
{
	int rc;

	pthread_mutex_lock(&self->pool_mu);
	if (self->closed) {
		pthread_mutex_unlock(&self->pool_mu);
		pyf_closed(e);
		return -1;
	}
	if (self->nidle) {
		*out = self->idle[--self->nidle];
		/* a set_timeout() while it waited elsewhere counts from now on */
		if (self->timeout >= 0)
			ferry_set_timeout(*out, self->timeout);
		pthread_mutex_unlock(&self->pool_mu);
		return 0;
	}
	pthread_mutex_unlock(&self->pool_mu);
	rc = ferry_connect(self->resource, self->login, self->password, self->config, out);
	if (rc) {
		pyf_keep(*out, rc, e);
		ferry_disconnect(*out);
		return -1;
	}
	pthread_mutex_lock(&self->pool_mu);
	if (self->timeout >= 0)
		ferry_set_timeout(*out, self->timeout);
	pthread_mutex_unlock(&self->pool_mu);
	return 0;
}

void pyf_side_put(struct pyf_conn *self, ferry_conn *c)
{
	pthread_mutex_lock(&self->pool_mu);
	if (!self->closed && self->nidle < IDLE_MAX) {
		if (self->nidle == self->capidle) {
			size_t cap = self->capidle ? self->capidle * 2 : 2;
			ferry_conn **p = realloc(self->idle, cap * sizeof(*p));
			if (p) {
				self->idle = p;
				self->capidle = cap;
			}
		}
		if (self->nidle < self->capidle) {
			self->idle[self->nidle++] = c;
			c = NULL;
		}
	}
	pthread_mutex_unlock(&self->pool_mu);
	ferry_disconnect(c);
}

/* ------------------------------------------------------------------ */
/* Life */

static PyObject *conn_new(PyTypeObject *type, PyObject *args, PyObject *kw)
{
	struct pyf_conn *self = (struct pyf_conn *)type->tp_alloc(type, 0);

	if (!self)
		return NULL;
	pthread_mutex_init(&self->mu, NULL);
	pthread_mutex_init(&self->pool_mu, NULL);
	self->timeout = -1;
	return (PyObject *)self;
}

/* Frees what a connection holds; the GIL is released, no other thread uses it. */
static void conn_release(struct pyf_conn *self)
{
	ferry_conn *c;

	pthread_mutex_lock(&self->mu);
	c = self->conn;
	self->conn = NULL;
	pyf_cursors_free(self);
	pthread_mutex_unlock(&self->mu);
	ferry_disconnect(c);
	pthread_mutex_lock(&self->pool_mu);
	self->closed = 1;
	while (self->nidle)
		ferry_disconnect(self->idle[--self->nidle]);
	free(self->idle);
	self->idle = NULL;
	self->capidle = 0;
	pthread_mutex_unlock(&self->pool_mu);
}

static void conn_dealloc(struct pyf_conn *self)
{
	PyThreadState *ts = PyEval_SaveThread();

	conn_release(self);
	PyEval_RestoreThread(ts);
	pthread_mutex_destroy(&self->mu);
	pthread_mutex_destroy(&self->pool_mu);
	free(self->resource);
	free(self->login);
	free_secret(self->password);
	free(self->config);
	Py_TYPE(self)->tp_free((PyObject *)self);
}

static int keep_params(struct pyf_conn *self, const char *resource, const char *login,
		       const char *password, const char *config)
{
	self->resource = dup_or_null(resource);
	self->login = dup_or_null(login);
	self->password = dup_or_null(password);
	self->config = dup_or_null(config);
	if ((resource && !self->resource) || (login && !self->login) ||
	    (password && !self->password) || (config && !self->config)) {
		PyErr_NoMemory();
		return -1;
	}
	return 0;
}

static int conn_init(struct pyf_conn *self, PyObject *args, PyObject *kw)
{
	static char *kwlist[] = {"resource_id", "login", "password", "config_file", NULL};
	const char *resource = NULL, *login = NULL, *password = NULL, *config = NULL;
	struct pyf_arena a;
	PyObject *cfg = Py_None;
	struct pyf_err e = {0};
	ferry_conn *c = NULL;
	PyThreadState *ts;

	if (self->initialised) {
		PyErr_SetString(PyExc_RuntimeError, "a ferry.Connection is initialised once");
		return -1;
	}
	self->initialised = 1;
	if (!PyArg_ParseTupleAndKeywords(args, kw, "|zzzO:Connection", kwlist, &resource, &login,
					 &password, &cfg) ||
	    pyf_arena_init(&a) < 0)
		return -1;
	if (cfg != Py_None && !(config = pyf_cstr(&a, cfg, "config_file")))
		goto fail;
	if (keep_params(self, resource, login, password, config) < 0)
		goto fail;
	ts = PyEval_SaveThread();
	e.rc = ferry_connect(resource, login, password, config, &c);
	if (e.rc) {
		pyf_keep(c, e.rc, &e);
		ferry_disconnect(c);
	}
	PyEval_RestoreThread(ts);
	if (e.rc) {
		pyf_raise(&e);
		goto fail;
	}
	self->conn = c;
	pyf_arena_release(&a);
	return 0;
fail:
	pyf_arena_release(&a);
	return -1;
}

static PyObject *conn_close(struct pyf_conn *self, PyObject *unused)
{
	struct pyf_err e = {0};
	PyThreadState *ts;

	/* the transfer that called it holds the lock close() takes */
	if (pyf_in_callback(self, &e))
		return pyf_raise(&e);
	ts = PyEval_SaveThread();
	conn_release(self);
	PyEval_RestoreThread(ts);
	Py_RETURN_NONE;
}

static PyObject *conn_enter(PyObject *self, PyObject *unused)
{
	return Py_NewRef(self);
}

static PyObject *conn_exit(struct pyf_conn *self, PyObject *args)
{
	return conn_close(self, NULL);
}

static PyObject *conn_repr(struct pyf_conn *self)
{
	return PyUnicode_FromFormat("<ferry.Connection resource='%s'%s>",
				    self->resource ? self->resource : "local",
				    self->conn ? "" : " closed");
}

/* ------------------------------------------------------------------ */
/* Calls about jobs */

static PyObject *conn_status(struct pyf_conn *self, PyObject *arg)
{
	enum ferry_job_status st = FERRY_UNDETERMINED;
	struct pyf_err e = {0};
	ferry_job_id id;

	if (pyf_job_id(arg, &id) < 0)
		return NULL;
	PYF_CALL(self, &e, ferry_status(self->conn, id, &st));
	if (e.rc)
		return pyf_raise(&e);
	return PyUnicode_FromString(ferry_status_name(st));
}

/*
 * A control of one job (job_id: fn, None back) or of a selection (the
 * keywords, as the CLI's --all, --state, --name and ranges: one request,
 * a ferry.ControlResult back).
 */
static PyObject *control(struct pyf_conn *self, PyObject *args, PyObject *kw,
			 int (*fn)(ferry_conn *, ferry_job_id), enum ferry_control action)
{
	/* job_id positional only, as before the selections */
	static char *kwlist[] = {"", "all", "state", "name", "ids", NULL};
	PyObject *o = Py_None, *state = Py_None, *name = Py_None, *ids = Py_None;
	struct pyf_err e = {0};
	ferry_job_id id;
	int all = 0, sel;

	if (!PyArg_ParseTupleAndKeywords(args, kw, "|O$pOOO", kwlist, &o, &all, &state, &name,
					 &ids))
		return NULL;
	sel = all || state != Py_None || name != Py_None || ids != Py_None;
	if (o != Py_None && sel)
		return pyf_raisef(FERRY_EINVAL, "a job id and a selection (all, state, name, ids) "
						"exclude each other");
	if (sel)
		return pyf_control_select(self, action, all, state, name, ids);
	if (o == Py_None)
		return pyf_raisef(FERRY_EINVAL,
				  "a job id or a selection (all, state, name, ids) is needed");
	if (pyf_job_id(o, &id) < 0)
		return NULL;
	PYF_CALL(self, &e, fn(self->conn, id));
	if (e.rc)
		return pyf_raise(&e);
	Py_RETURN_NONE;
}

static PyObject *conn_stop(struct pyf_conn *self, PyObject *args, PyObject *kw)
{
	return control(self, args, kw, ferry_stop, FERRY_CONTROL_STOP);
}

static PyObject *conn_restart(struct pyf_conn *self, PyObject *args, PyObject *kw)
{
	return control(self, args, kw, ferry_restart, FERRY_CONTROL_RESTART);
}

static PyObject *conn_hold(struct pyf_conn *self, PyObject *args, PyObject *kw)
{
	return control(self, args, kw, ferry_hold, FERRY_CONTROL_HOLD);
}

static PyObject *conn_release_job(struct pyf_conn *self, PyObject *args, PyObject *kw)
{
	return control(self, args, kw, ferry_release, FERRY_CONTROL_RELEASE);
}

static PyObject *conn_kill(struct pyf_conn *self, PyObject *args, PyObject *kw)
{
	return control(self, args, kw, ferry_kill, FERRY_CONTROL_KILL);
}

static PyObject *conn_dispose(struct pyf_conn *self, PyObject *args, PyObject *kw)
{
	return control(self, args, kw, ferry_dispose, FERRY_CONTROL_DISPOSE);
}

static PyObject *conn_ping(struct pyf_conn *self, PyObject *unused)
{
	struct pyf_err e = {0};

	PYF_CALL(self, &e, ferry_ping(self->conn));
	if (e.rc)
		return pyf_raise(&e);
	Py_RETURN_NONE;
}

static PyObject *id_list(const ferry_job_id *ids, size_t n)
{
	PyObject *l = PyList_New((Py_ssize_t)n);

	for (size_t i = 0; l && i < n; i++) {
		PyObject *v = PyLong_FromLongLong(ids[i]);
		if (!v) {
			Py_CLEAR(l);
			break;
		}
		PyList_SET_ITEM(l, (Py_ssize_t)i, v);
	}
	return l;
}

static PyObject *conn_jobs(struct pyf_conn *self, PyObject *args, PyObject *kw)
{
	static char *kwlist[] = {"state", NULL};
	const char *state = NULL;
	enum ferry_job_status filter;
	struct pyf_err e = {0};
	ferry_job_id *ids = NULL;
	size_t n = 0;
	PyObject *l;

	if (!PyArg_ParseTupleAndKeywords(args, kw, "|z:jobs", kwlist, &state))
		return NULL;
	if (state && ferry_status_from_name(state, &filter) < 0)
		return pyf_raisef(FERRY_EINVAL, "no job state is named '%s'", state);
	PYF_CALL(self, &e, ferry_jobs(self->conn, state ? &filter : NULL, &ids, &n));
	if (e.rc)
		return pyf_raise(&e);
	l = id_list(ids, n);
	free(ids);
	return l;
}

/* ids: one id or an iterable of ids, into a PyMem array. -1 with an exception set. */
static int parse_ids(PyObject *o, ferry_job_id **ids, size_t *n)
{
	PyObject *tuple = NULL;
	Py_ssize_t len = 1;
	int rc = 0;

	*n = 0;
	if (PyIndex_Check(o) && !PyBool_Check(o)) {
		tuple = PyTuple_Pack(1, o);
	} else if (PyUnicode_Check(o) || PyBytes_Check(o)) {
		PyErr_Format(PyExc_TypeError,
			     "job_ids must be a job id or a list of them, not %.80s",
			     Py_TYPE(o)->tp_name);
		return -1;
	} else {
		tuple = PySequence_Tuple(o); /* a copy: the items stay while we read them */
	}
	if (!tuple)
		return -1;
	len = PyTuple_GET_SIZE(tuple);
	*ids = PyMem_Malloc(sizeof(**ids) * (size_t)(len ? len : 1));
	if (!*ids)
		rc = (PyErr_NoMemory(), -1);
	for (Py_ssize_t i = 0; !rc && i < len; i++)
		rc = pyf_job_id(PyTuple_GET_ITEM(tuple, i), *ids + i);
	Py_DECREF(tuple);
	if (!rc)
		*n = (size_t)len;
	return rc;
}

/*
 * One slice of a wait on a side connection: 0 (all ended), FERRY_ETIMEDOUT
 * (the slice ran out) or an error in *e.
 */
static int wait_slice(ferry_conn *c, const ferry_job_id *ids, size_t n, double slice,
		      struct pyf_err *e)
{
	PyThreadState *ts = PyEval_SaveThread();

	e->rc = ferry_wait(c, ids, n, slice);
	if (e->rc && e->rc != FERRY_ETIMEDOUT)
		pyf_keep(c, e->rc, e);
	PyEval_RestoreThread(ts);
	return e->rc;
}

/*
 * Drops from ids those the engine no longer knows: disposed during the
 * wait, they count as ended (ferry_wait()). The count left, or -1 with *e.
 */
static ssize_t prune(ferry_conn *c, ferry_job_id *ids, size_t n, struct pyf_err *e)
{
	PyThreadState *ts = PyEval_SaveThread();
	size_t kept = 0;

	e->rc = 0;
	for (size_t i = 0; i < n && !e->rc; i++) {
		enum ferry_job_status st;
		int rc = ferry_status(c, ids[i], &st);
		if (!rc)
			ids[kept++] = ids[i];
		else if (rc != FERRY_ENOJOB)
			pyf_keep(c, rc, e);
	}
	PyEval_RestoreThread(ts);
	return e->rc ? -1 : (ssize_t)kept;
}

/* What one slice of wait() waits for: the ids left of those asked. */
struct wait_ids {
	ferry_job_id *ids;
	size_t n;
	int first;
};

/* A slice of a wait for ids; one gone since the first slice counts as ended. */
static int ids_slice(ferry_conn *c, void *arg, double slice, struct pyf_err *e)
{
	struct wait_ids *w = arg;
	ssize_t left;

	if (!wait_slice(c, w->ids, w->n, slice, e))
		return 0;
	/* an id unknown at the start is an error; one gone since, an end */
	if (e->rc == FERRY_ENOJOB && !w->first) {
		if ((left = prune(c, w->ids, w->n, e)) < 0)
			return e->rc;
		if (!(w->n = (size_t)left))
			return e->rc = 0;
		e->rc = FERRY_ETIMEDOUT; /* the next slice, within the deadline */
	}
	w->first = 0;
	return e->rc;
}

/*
 * A wait on side connection c, cut into slices of WAIT_SLICE_S so that
 * Ctrl-C is seen between two: True once slice() says all ended, False
 * when timeout (< 0: none) passed first.
 */
static PyObject *sliced_wait(struct pyf_conn *self, ferry_conn *c, double timeout,
			     int (*slice)(ferry_conn *, void *, double, struct pyf_err *),
			     void *arg)
{
	double deadline = timeout >= 0 ? now_s() + timeout : -1;
	struct pyf_err e = {0};

	for (;;) {
		double s = WAIT_SLICE_S;
		if (deadline >= 0 && deadline - now_s() < s)
			s = deadline - now_s() > 0 ? deadline - now_s() : 0;
		if (!slice(c, arg, s, &e))
			Py_RETURN_TRUE;
		if (e.rc != FERRY_ETIMEDOUT)
			return pyf_raise(&e);
		if (deadline >= 0 && now_s() >= deadline)
			Py_RETURN_FALSE;
		if (PyErr_CheckSignals() < 0)
			return NULL;
		if (self->closed)
			return pyf_raisef(FERRY_EINVAL,
					  "the connection was closed during the wait");
	}
}

PyObject *pyf_side_wait(struct pyf_conn *self, double timeout,
			int (*slice)(ferry_conn *, void *, double, struct pyf_err *), void *arg)
{
	struct pyf_err e = {0};
	ferry_conn *c = NULL;
	PyThreadState *ts = PyEval_SaveThread();
	PyObject *r;

	if (pyf_side_get(self, &c, &e) < 0)
		c = NULL;
	PyEval_RestoreThread(ts);
	if (!c)
		return pyf_raise(&e);
	r = sliced_wait(self, c, timeout, slice, arg);
	ts = PyEval_SaveThread();
	pyf_side_put(self, c);
	PyEval_RestoreThread(ts);
	return r;
}

static PyObject *conn_wait(struct pyf_conn *self, PyObject *args, PyObject *kw)
{
	static char *kwlist[] = {"job_ids", "timeout", NULL};
	PyObject *o, *t = Py_None, *r = NULL;
	double timeout = -1;
	ferry_job_id *ids = NULL;
	size_t n = 0;

	if (!PyArg_ParseTupleAndKeywords(args, kw, "O|O:wait", kwlist, &o, &t) ||
	    pyf_timeout(t, &timeout) < 0 || parse_ids(o, &ids, &n) < 0)
		goto out;
	if (!n) {
		r = Py_NewRef(Py_True);
		goto out;
	}
	r = pyf_side_wait(self, timeout, ids_slice, &(struct wait_ids){ids, n, 1});
out:
	PyMem_Free(ids);
	return r;
}

static PyObject *conn_set_timeout(struct pyf_conn *self, PyObject *arg)
{
	struct pyf_err e = {0};
	double s = PyFloat_AsDouble(arg);
	PyThreadState *ts;

	if (s == -1 && PyErr_Occurred())
		return NULL;
	PYF_CALL(self, &e, ferry_set_timeout(self->conn, s));
	if (e.rc)
		return pyf_raise(&e);
	ts = PyEval_SaveThread();
	pthread_mutex_lock(&self->pool_mu);
	self->timeout = s; /* idle side connections get it when handed out */
	pthread_mutex_unlock(&self->pool_mu);
	PyEval_RestoreThread(ts);
	Py_RETURN_NONE;
}

static PyObject *conn_readline_out(struct pyf_conn *self, PyObject *args, PyObject *kw)
{
	return pyf_read_line(self, args, kw, FERRY_STDOUT);
}

static PyObject *conn_readline_err(struct pyf_conn *self, PyObject *args, PyObject *kw)
{
	return pyf_read_line(self, args, kw, FERRY_STDERR);
}

static PyObject *conn_get_resource(struct pyf_conn *self, void *unused)
{
	return PyUnicode_FromString(self->resource ? self->resource : "local");
}

static PyObject *conn_get_closed(struct pyf_conn *self, void *unused)
{
	return PyBool_FromLong(self->conn == NULL);
}

/* ------------------------------------------------------------------ */
/* The type. Docstrings start with the text signature help() shows. */

PyDoc_STRVAR(submit_doc,
	     "submit($self, /, command, referenced_input_files=None, referenced_output_files=None,"
	     " stdin=None, join_stderrout=False, disposal_timeout=168, name_description=None,"
	     " stdout_path=None, stderr_path=None, working_directory=None, *, env=None, cpus=None,"
	     " memory=None, walltime=None, queue=None, native_specification=None, hold=False,"
	     " submission_key=None)\n--\n\n"
	     "Submits a job and returns its id (an int) once the engine committed it.\n\n"
	     "command: the program and its arguments, a list of str (bytes and os.PathLike\n"
	     "  accepted). referenced_input_files: server paths from sendFile() the job\n"
	     "  reads (it waits, system_on_hold, until they are there).\n"
	     "  referenced_output_files: server paths from registerFileTransfer() it writes.\n"
	     "stdin, stdout_path, stderr_path: files on the resource (stdin may be a server\n"
	     "  path). join_stderrout (the seed's spelling join_stderrot works too): stderr\n"
	     "  goes to stdout. disposal_timeout: hours the record is kept after the end.\n"
	     "name_description: the job's name. working_directory: default the caller's\n"
	     "  current directory; a relative one is taken under it.\n"
	     "env: a dict or a list of 'NAME=value' added to the job's environment.\n"
	     "cpus: slots. memory: MB. walltime: seconds (or a datetime.timedelta).\n"
	     "queue, native_specification: the cluster's queue or partition, and options\n"
	     "  passed to it. hold: submit user_on_hold. submission_key: submitting the same\n"
	     "  key again returns the first job's id.\n\n"
	     "Raises InvalidArgument (a bad field, the message names it), ResourceError,\n"
	     "Unsupported, and the connection errors (Disconnected, ...).");

PyDoc_STRVAR(submit_many_doc,
	     "submit_many($self, jobs, /)\n--\n\n"
	     "Submits a list of jobs, each a dict of submit()'s keyword arguments, any\n"
	     "number, in batches each one transaction (all or none per batch, see\n"
	     "libferry(3)); returns their ids in order. Raises what submit() raises; the\n"
	     "message names the first bad job's index, and after a failure part-way\n"
	     "starts 'K of n jobs submitted;' (with submission_key given, the same list\n"
	     "again returns the jobs made and makes the others).");

PyDoc_STRVAR(status_doc, "status($self, job_id, /)\n--\n\n"
			 "The job's state: one of ferry.JOB_STATES ('running', 'done', ...).\n"
			 "Raises NoSuchJob.");

PyDoc_STRVAR(exit_doc, "exitInformation($self, job_id, /)\n--\n\n"
		       "(exit_status, exit_value, terminating_signal, resource_usage) of a job.\n"
		       "exit_status is one of ferry.EXIT_STATUSES, None until the job ended;\n"
		       "exit_value the exit code (None unless finished_regularly);\n"
		       "terminating_signal the signal that ended it (finished_signal, or the\n"
		       "SIGTERM or SIGKILL of a kill), else None;\n"
		       "resource_usage a dict: cpu_user, cpu_sys, cpu_time, wall_time (seconds),\n"
		       "max_rss_kb, each present once known. Raises NoSuchJob.");

PyDoc_STRVAR(readline_out_doc,
	     "stdoutReadLine($self, job_id, /, timeout=0)\n--\n\n"
	     "The next line of the job's stdout with its newline, as file.readline():\n"
	     "also while the job runs; '' once the job ended and all was read; None\n"
	     "when no whole line is there yet and the job is active. With timeout > 0,\n"
	     "waits up to that many seconds for a line (-1: until one comes or the end).\n"
	     "Each Connection remembers where it stopped. Raises NoSuchJob, IOFailure.");

PyDoc_STRVAR(readline_err_doc, "stderrReadLine($self, job_id, /, timeout=0)\n--\n\n"
			       "As stdoutReadLine(), for the job's stderr.");

PyDoc_STRVAR(wait_doc, "wait($self, /, job_ids, timeout=-1)\n--\n\n"
		       "Waits until every job (one id or a list) has ended: True, or False when\n"
		       "timeout seconds passed first (-1: no limit). Ctrl-C interrupts it with\n"
		       "KeyboardInterrupt; the connection stays usable, and other threads' calls\n"
		       "on it go on meanwhile. Raises NoSuchJob (an id unknown at the start).");

/* The selection keywords every control takes, after its own line. */
#define SELECT_SIG "job_id=None, /, *, all=False, state=None, name=None, ids=None)\n--\n\n"
#define SELECT_DOC                                                                                 \
	"\n\nOr, instead of job_id, on every job a selection takes, in one request:\n"             \
	"all=True (every job), state (a name or a list of them), name (a glob on the\n"            \
	"job's name), ids (a job id, a range(), a 'FIRST-LAST' str, or a list of them);\n"         \
	"the parts given combine by AND. Returns a ferry.ControlResult(matched,\n"                 \
	"changed, failed, errors): a job that refuses counts in failed, errors names\n"            \
	"the first 16 as (job_id, ferry.Error) pairs; nothing raises for them."

PyDoc_STRVAR(stop_doc, "stop($self, " SELECT_SIG
		       "Holds a queued job, suspends a running one. Raises NoSuchJob, "
		       "InvalidState." SELECT_DOC);
PyDoc_STRVAR(restart_doc, "restart($self, " SELECT_SIG
			  "Undoes stop(). Raises NoSuchJob, InvalidState." SELECT_DOC);
PyDoc_STRVAR(hold_doc,
	     "hold($self, " SELECT_SIG
	     "Holds a job that has not started. Raises NoSuchJob, InvalidState." SELECT_DOC);
PyDoc_STRVAR(release_doc, "release($self, " SELECT_SIG
			  "Releases a held job. Raises NoSuchJob, InvalidState." SELECT_DOC);
PyDoc_STRVAR(kill_doc,
	     "kill($self, " SELECT_SIG
	     "Kills the job (it ends failed, killed_by_user). Raises NoSuchJob." SELECT_DOC);
PyDoc_STRVAR(dispose_doc,
	     "dispose($self, " SELECT_SIG
	     "Kills the job if active and removes its record. Raises NoSuchJob." SELECT_DOC);

PyDoc_STRVAR(
    list_page_doc,
    "_list_page($self, /, state=None, after=0, since=0.0, limit=1000, detail=False)\n--\n\n"
    "One page of a listing, for list_jobs(): (items, last id). Internal.");

PyDoc_STRVAR(wait_all_doc,
	     "wait_all($self, /, state=None, timeout=-1)\n--\n\n"
	     "Waits until every job not ended at the call has ended: one wait in the\n"
	     "engine, whatever the database holds. state: a name or a list of names of\n"
	     "states of jobs not ended (default: every job the user does not hold or\n"
	     "stop). Returns a ferry.WaitAllResult(jobs, pending, failed, failed_ids):\n"
	     "pending > 0 when timeout seconds passed first (-1 or None: no limit).\n"
	     "A failed job does not raise: failed says how many, failed_ids the first\n"
	     "16. Ctrl-C raises KeyboardInterrupt within 0.25 s. Raises InvalidArgument\n"
	     "(an unknown or ended state), connection errors.");

PyDoc_STRVAR(open_output_doc,
	     "open_output($self, job_id, /, stream='stdout')\n--\n\n"
	     "Opens the job's stdout or stderr file for reading by this process, on a\n"
	     "resource of this host: (file, ended), file a binary file object (None\n"
	     "while the job wrote nothing yet), ended True once the job had ended when\n"
	     "it was opened (then the file's end is the output's end). Raises\n"
	     "Unsupported (a remote resource, or another file at that path than the\n"
	     "engine's: use stdoutReadLine()), NoSuchJob, InvalidArgument, IOFailure.");

PyDoc_STRVAR(send_doc,
	     "sendFile($self, /, local_path, disposal_timeout=168, *, progress=None)\n--\n\n"
	     "Sends a file or a directory tree (or a list of files, side by side) to the\n"
	     "resource, checked end to end; returns its server path for jobs' inputs.\n"
	     "progress(done, total) is called as bytes move. An interrupted send resumes\n"
	     "on the next call. Raises InvalidArgument, IOFailure, connection errors.");

PyDoc_STRVAR(register_doc,
	     "registerFileTransfer($self, /, local_path, disposal_timeout=168)\n--\n\n"
	     "Registers an output to retrieve to local_path later; returns the server\n"
	     "path a job should write it to (in referenced_output_files).");

PyDoc_STRVAR(retrieve_doc,
	     "retrieveFile($self, /, server_path, destination=None, *, overwrite=False,"
	     " progress=None)\n--\n\n"
	     "Downloads a transfer to the local path it was sent or registered from\n"
	     "(or to destination, replaced only with overwrite=True), checked, never\n"
	     "leaving a partial file. Raises NoSuchJob (no such transfer), InvalidState\n"
	     "(no job produced it), IOFailure.");

PyDoc_STRVAR(cancel_doc, "cancelTransfer($self, /, server_path, *, force=False)\n--\n\n"
			 "Removes a transfer's files and record. Refused (InvalidState) while an\n"
			 "unfinished job names it, unless force=True.");

PyDoc_STRVAR(jobs_doc, "jobs($self, /, state=None)\n--\n\n"
		       "The ids of the resource's jobs, oldest first, optionally in one state,\n"
		       "as one list: list_jobs() iterates a page at a time.");

PyDoc_STRVAR(info_doc, "jobInformation($self, job_id, /)\n--\n\n"
		       "Every field of `ferry info --json`, as a dict. Raises NoSuchJob.");

PyDoc_STRVAR(transfers_doc, "transfers($self, /)\n--\n\nThe server paths of every transfer.");

PyDoc_STRVAR(tinfo_doc, "transferInformation($self, server_path, /)\n--\n\n"
			"Every field of `ferry transfers --json SERVER_PATH`, as a dict.\n"
			"Raises NoSuchJob (no transfer there), InvalidArgument.");

PyDoc_STRVAR(ping_doc, "ping($self, /)\n--\n\nA round trip to the engine.");

PyDoc_STRVAR(timeout_doc,
	     "set_timeout($self, seconds, /)\n--\n\n"
	     "Bounds the time one call may spend regaining a lost engine (default 120;\n"
	     "0: give up at the first loss): a call that runs out of it raises\n"
	     "Disconnected, never hangs.");

PyDoc_STRVAR(submit_workflow_doc,
	     "submit_workflow($self, workflow, /)\n--\n\n"
	     "Submits a workflow (docs/workflows.md): a dict of the workflow file's form, or\n"
	     "its JSON text, in one request and one transaction; returns its id once\n"
	     "committed. Raises InvalidArgument naming what is wrong (nothing submitted).");
PyDoc_STRVAR(workflow_status_doc,
	     "workflow_status($self, workflow_id, /)\n--\n\n"
	     "A dict: id, name, submitted_at, status ('not started', 'in progress', 'done',\n"
	     "'done with failures', 'stopped'), jobs, counts (state name -> jobs), groups.\n"
	     "Raises NoSuchJob for an unknown workflow.");
PyDoc_STRVAR(workflows_doc, "workflows($self, /)\n--\n\n"
			    "The workflows of the resource, by id, as workflow_status() dicts\n"
			    "(groups None).");
PyDoc_STRVAR(wait_workflow_doc,
	     "wait_workflow($self, workflow_id, timeout=-1)\n--\n\n"
	     "True once every job of the workflow ended (failed ones too), False when\n"
	     "timeout seconds passed first (-1 or None: no limit). Ctrl-C interrupts it.");
PyDoc_STRVAR(stop_workflow_doc,
	     "stop_workflow($self, workflow_id, /)\n--\n\n"
	     "Kills every job of the workflow not ended: nothing of it starts any more,\n"
	     "and it is 'stopped' until restart_workflow(). Returns a ferry.ControlResult.");
PyDoc_STRVAR(restart_workflow_doc,
	     "restart_workflow($self, workflow_id, /)\n--\n\n"
	     "Runs again the workflow's failed, killed and aborted jobs, each once its\n"
	     "dependencies are done; returns how many. Raises InvalidState while a stop\n"
	     "still kills jobs.");
PyDoc_STRVAR(dispose_workflow_doc,
	     "dispose_workflow($self, workflow_id, /)\n--\n\n"
	     "Disposes of every job of the workflow and of the workflow. Returns a\n"
	     "ferry.ControlResult.");

PyDoc_STRVAR(translate_path_doc,
	     "translate_path($self, namespace, uuid)\n--\n\n"
	     "Where soma-workflow's SharedResourcePath(relative_path, namespace, uuid) lies\n"
	     "on the resource, but for relative_path: the translation of uuid in the file\n"
	     "the resource's path_translation_files names for namespace, read by the engine\n"
	     "on its host. Raises InvalidArgument (none configured, unknown namespace or\n"
	     "uuid), IOFailure (the file cannot be read).");

PyDoc_STRVAR(close_doc, "close($self, /)\n--\n\n"
			"Closes the connection; jobs keep running. Closing twice is fine.");

#define KW METH_VARARGS | METH_KEYWORDS
#define M(name, fn, flags, doc)                                                                    \
	{                                                                                          \
		name, (PyCFunction)(void (*)(void))(fn), flags, doc                                \
	}

static PyMethodDef conn_methods[] = {
    M("submit", pyf_submit, KW, submit_doc),
    M("submit_many", pyf_submit_many, METH_O, submit_many_doc),
    M("status", conn_status, METH_O, status_doc),
    M("exitInformation", pyf_exit_information, METH_O, exit_doc),
    M("stdoutReadLine", conn_readline_out, KW, readline_out_doc),
    M("stderrReadLine", conn_readline_err, KW, readline_err_doc),
    M("wait", conn_wait, KW, wait_doc),
    M("stop", conn_stop, KW, stop_doc),
    M("restart", conn_restart, KW, restart_doc),
    M("kill", conn_kill, KW, kill_doc),
    M("hold", conn_hold, KW, hold_doc),
    M("release", conn_release_job, KW, release_doc),
    M("dispose", conn_dispose, KW, dispose_doc),
    M("wait_all", pyf_wait_all, KW, wait_all_doc),
    M("open_output", pyf_open_output, KW, open_output_doc),
    M("_list_page", pyf_list_page, KW, list_page_doc),
    M("sendFile", pyf_send_file, KW, send_doc),
    M("registerFileTransfer", pyf_register_transfer, KW, register_doc),
    M("retrieveFile", pyf_retrieve_file, KW, retrieve_doc),
    M("cancelTransfer", pyf_cancel_transfer, KW, cancel_doc),
    M("jobs", conn_jobs, KW, jobs_doc),
    M("jobInformation", pyf_job_information, METH_O, info_doc),
    M("submit_workflow", pyf_submit_workflow, METH_O, submit_workflow_doc),
    M("workflow_status", pyf_workflow_status, METH_O, workflow_status_doc),
    M("workflows", pyf_workflows, METH_NOARGS, workflows_doc),
    M("wait_workflow", pyf_wait_workflow, KW, wait_workflow_doc),
    M("stop_workflow", pyf_stop_workflow, METH_O, stop_workflow_doc),
    M("restart_workflow", pyf_restart_workflow, METH_O, restart_workflow_doc),
    M("dispose_workflow", pyf_dispose_workflow, METH_O, dispose_workflow_doc),
    M("translate_path", pyf_translate_path, KW, translate_path_doc),
    M("transfers", pyf_transfers, METH_NOARGS, transfers_doc),
    M("transferInformation", pyf_transfer_information, METH_O, tinfo_doc),
    M("ping", conn_ping, METH_NOARGS, ping_doc),
    M("set_timeout", conn_set_timeout, METH_O, timeout_doc),
    M("close", conn_close, METH_NOARGS, close_doc),
    M("__enter__", conn_enter, METH_NOARGS, NULL),
    M("__exit__", conn_exit, METH_VARARGS, NULL),
    {NULL, NULL, 0, NULL},
};

static PyGetSetDef conn_getset[] = {
    {"resource", (getter)conn_get_resource, NULL, "The resource's name.", NULL},
    {"closed", (getter)conn_get_closed, NULL, "True once close() was called.", NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

PyDoc_STRVAR(conn_doc,
	     "Connection(resource_id=None, login=None, password=None, config_file=None)\n--\n\n"
	     "A connection to the engine of a resource, started if needed.\n\n"
	     "resource_id: a section of the configuration file; None is the local machine.\n"
	     "login, password: for a resource with a 'host', reached with ssh; the password\n"
	     "  goes to ssh through its askpass helper, never on a command line or on disk.\n"
	     "config_file: default $XDG_CONFIG_HOME/ferry/ferry.conf.\n"
	     "Raises ConfigurationError, ConnectFailed, AuthenticationError, ...\n"
	     "May be shared by threads; a `with` block closes it.");

PyTypeObject pyf_conn_type = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "ferry._ferry.Connection",
    .tp_basicsize = sizeof(struct pyf_conn),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE,
    .tp_doc = conn_doc,
    .tp_new = conn_new,
    .tp_init = (initproc)conn_init,
    .tp_dealloc = (destructor)conn_dealloc,
    .tp_repr = (reprfunc)conn_repr,
    .tp_methods = conn_methods,
    .tp_getset = conn_getset,
};
