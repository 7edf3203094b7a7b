/*
 * transfer.c - sendFile(), registerFileTransfer(), retrieveFile(),
 * cancelTransfer(), with a Python progress callable called as bytes move.
 */
#include "pyferry.h"

#include <stdlib.h>

/* One transfer call, run with the GIL released and the connection locked. */
struct tcall {
	enum { SEND, SEND_MANY, REGISTER, RETRIEVE, CANCEL } kind;
	const char *path; /* local path (SEND, REGISTER) or server path */
	const char *const *paths;
	size_t n;
	int hours;
	const char *dest; /* RETRIEVE: NULL for the transfer's own path */
	unsigned flags;
	char *server_path; /* SEND, REGISTER: the result */
};

static int run(ferry_conn *c, struct tcall *t)
{
	switch (t->kind) {
	case SEND:
		return ferry_send_file(c, t->path, t->hours, &t->server_path);
	case SEND_MANY:
		return ferry_send_files(c, t->paths, t->n, t->hours, &t->server_path);
	case REGISTER:
		return ferry_register_transfer(c, t->path, t->hours, &t->server_path);
	case RETRIEVE:
		return t->dest ? ferry_retrieve_file_to(c, t->path, t->dest, t->flags)
			       : ferry_retrieve_file(c, t->path);
	default:
		return ferry_cancel_transfer(c, t->path, t->flags);
	}
}

/* One call's progress callable and what it raised, on the caller's stack. */
struct progress {
	struct pyf_conn *self;
	PyObject *fn;
	PyObject *error; /* the first exception: re-raised once the call returned */
};

/* libferry's progress function: calls the Python callable with the GIL. */
static void progress_cb(void *userdata, int64_t done, int64_t total)
{
	struct progress *p = userdata;
	PyGILState_STATE g;
	PyObject *r;

	/* after a first exception the callable is not called again */
	if (p->error)
		return;
	g = PyGILState_Ensure();
	p->self->cb_thread = PyThread_get_thread_ident();
	r = PyObject_CallFunction(p->fn, "LL", (long long)done, (long long)total);
	p->self->cb_thread = 0;
	if (!r) {
		PyObject *type, *value, *tb;
		PyErr_Fetch(&type, &value, &tb);
		PyErr_NormalizeException(&type, &value, &tb);
		if (tb && value)
			PyException_SetTraceback(value, tb);
		p->error = value;
		Py_XDECREF(type);
		Py_XDECREF(tb);
	}
	Py_XDECREF(r);
	PyGILState_Release(g);
}

/*
 * Runs t on self's connection with progress (None: none). Returns 0 or -1
 * with an exception set: the call's error, else what the callable raised.
 */
static int transfer(struct pyf_conn *self, struct tcall *t, PyObject *fn)
{
	struct progress p = {.self = self, .fn = fn != Py_None ? fn : NULL};
	struct pyf_err e = {0};
	PyThreadState *ts;

	if (p.fn && !PyCallable_Check(p.fn)) {
		PyErr_SetString(PyExc_TypeError, "progress must be callable(done, total)");
		return -1;
	}
	if (pyf_in_callback(self, &e))
		return pyf_raise(&e), -1;
	ts = PyEval_SaveThread();
	pthread_mutex_lock(&self->mu);
	if (!self->conn) {
		pyf_closed(&e);
	} else {
		ferry_set_progress(self->conn, p.fn ? progress_cb : NULL, &p);
		if ((e.rc = run(self->conn, t)) != 0)
			pyf_keep(self->conn, e.rc, &e);
		ferry_set_progress(self->conn, NULL, NULL);
	}
	pthread_mutex_unlock(&self->mu);
	PyEval_RestoreThread(ts);
	if (p.error && !e.rc) {
		PyErr_SetObject((PyObject *)Py_TYPE(p.error), p.error);
		Py_DECREF(p.error);
		return -1;
	}
	Py_XDECREF(p.error);
	return e.rc ? (pyf_raise(&e), -1) : 0;
}

static PyObject *server_path_result(struct tcall *t)
{
	PyObject *p = PyUnicode_DecodeFSDefault(t->server_path);

	free(t->server_path);
	return p;
}

/* local_path as one path, or a list of paths sent as one transfer. */
static int local_paths(struct pyf_arena *a, PyObject *o, struct tcall *t)
{
	if (!PyList_Check(o) && !PyTuple_Check(o)) {
		t->kind = SEND;
		t->path = pyf_cstr(a, o, "local_path");
		return t->path ? 0 : -1;
	}
	t->kind = SEND_MANY;
	t->paths = pyf_strv(a, o, "local_path", &t->n);
	return t->paths ? 0 : -1;
}

PyObject *pyf_send_file(struct pyf_conn *self, PyObject *args, PyObject *kw)
{
	static char *kwlist[] = {"local_path", "disposal_timeout", "progress", NULL};
	struct tcall t = {.hours = 168};
	PyObject *path, *progress = Py_None, *r = NULL;
	struct pyf_arena a;

	if (!PyArg_ParseTupleAndKeywords(args, kw, "O|i$O:sendFile", kwlist, &path, &t.hours,
					 &progress) ||
	    pyf_arena_init(&a) < 0)
		return NULL;
	if (local_paths(&a, path, &t) == 0 && transfer(self, &t, progress) == 0)
		r = server_path_result(&t);
	pyf_arena_release(&a);
	return r;
}

PyObject *pyf_register_transfer(struct pyf_conn *self, PyObject *args, PyObject *kw)
{
	static char *kwlist[] = {"local_path", "disposal_timeout", NULL};
	struct tcall t = {.kind = REGISTER, .hours = 168};
	PyObject *path, *r = NULL;
	struct pyf_arena a;

	if (!PyArg_ParseTupleAndKeywords(args, kw, "O|i:registerFileTransfer", kwlist, &path,
					 &t.hours) ||
	    pyf_arena_init(&a) < 0)
		return NULL;
	if ((t.path = pyf_cstr(&a, path, "local_path")) && transfer(self, &t, Py_None) == 0)
		r = server_path_result(&t);
	pyf_arena_release(&a);
	return r;
}

PyObject *pyf_retrieve_file(struct pyf_conn *self, PyObject *args, PyObject *kw)
{
	static char *kwlist[] = {"server_path", "destination", "overwrite", "progress", NULL};
	struct tcall t = {.kind = RETRIEVE};
	PyObject *path, *dest = Py_None, *progress = Py_None;
	struct pyf_arena a;
	int overwrite = 0, rc = -1;

	if (!PyArg_ParseTupleAndKeywords(args, kw, "O|O$pO:retrieveFile", kwlist, &path, &dest,
					 &overwrite, &progress) ||
	    pyf_arena_init(&a) < 0)
		return NULL;
	t.flags = overwrite ? FERRY_OVERWRITE : 0;
	if ((t.path = pyf_cstr(&a, path, "server_path")) &&
	    (dest == Py_None || (t.dest = pyf_cstr(&a, dest, "destination"))))
		rc = transfer(self, &t, progress);
	pyf_arena_release(&a);
	if (rc < 0)
		return NULL;
	Py_RETURN_NONE;
}

PyObject *pyf_cancel_transfer(struct pyf_conn *self, PyObject *args, PyObject *kw)
{
	static char *kwlist[] = {"server_path", "force", NULL};
	struct tcall t = {.kind = CANCEL};
	struct pyf_arena a;
	PyObject *path;
	int force = 0, rc = -1;

	if (!PyArg_ParseTupleAndKeywords(args, kw, "O|$p:cancelTransfer", kwlist, &path, &force) ||
	    pyf_arena_init(&a) < 0)
		return NULL;
	t.flags = force ? FERRY_FORCE : 0;
	if ((t.path = pyf_cstr(&a, path, "server_path")))
		rc = transfer(self, &t, Py_None);
	pyf_arena_release(&a);
	if (rc < 0)
		return NULL;
	Py_RETURN_NONE;
}
