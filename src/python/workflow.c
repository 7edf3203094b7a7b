/*
 * workflow.c - Connection's workflow calls (docs/python.md, "Workflows"):
 * the C API's (include/ferry.h, "Workflows"), a workflow's status as the
 * dict `ferry workflow status --json` prints. The soma-workflow layer
 * (python/ferry/soma_workflow.py) is written over these.
 */
#include "pyferry.h"

#include <stdlib.h>

static int wf_id(PyObject *o, ferry_workflow_id *id)
{
	if (pyf_int64(o, id, "workflow id") < 0)
		return -1;
	if (*id < 1) {
		pyf_raisef(FERRY_EINVAL, "invalid workflow id %lld", (long long)*id);
		return -1;
	}
	return 0;
}

/* The JSON text of a workflow file (the package's submit_workflow() dumps a dict). */
PyObject *pyf_submit_workflow(struct pyf_conn *self, PyObject *arg)
{
	struct pyf_err e = {0};
	ferry_workflow_id id = 0;
	struct pyf_arena a;
	const char *text;

	if (pyf_arena_init(&a) < 0)
		return NULL;
	if (!(text = pyf_cstr(&a, arg, "workflow"))) {
		pyf_arena_release(&a);
		return NULL;
	}
	PYF_CALL(self, &e, ferry_submit_workflow(self->conn, text, &id));
	pyf_arena_release(&a);
	return e.rc ? pyf_raise(&e) : PyLong_FromLongLong(id);
}

/* The counts of w by state name, only the states some job is in. */
static PyObject *counts_dict(const struct ferry_workflow_info *w)
{
	PyObject *d = PyDict_New();

	for (int s = 0; d && s <= FERRY_FAILED; s++) {
		PyObject *n;
		if (!w->counts[s])
			continue;
		n = PyLong_FromSize_t(w->counts[s]);
		if (!n ||
		    PyDict_SetItemString(d, ferry_status_name((enum ferry_job_status)s), n) < 0)
			Py_CLEAR(d);
		Py_XDECREF(n);
	}
	return d;
}

/* w as the dict of `ferry workflow status --json` (new reference), or NULL raised. */
static PyObject *wf_dict(const struct ferry_workflow_info *w)
{
	json_t *g = w->groups ? json_loads(w->groups, 0, NULL) : NULL;
	PyObject *groups = g ? pyf_from_json(g) : Py_NewRef(Py_None);
	PyObject *counts = counts_dict(w), *d = NULL;

	json_decref(g);
	if (groups && counts)
		d = Py_BuildValue("{s:L,s:s,s:d,s:s,s:n,s:O,s:O}", "id", (long long)w->id, "name",
				  w->name, "submitted_at", w->submitted_at, "status",
				  ferry_workflow_state_name(w->state), "jobs", (Py_ssize_t)w->jobs,
				  "counts", counts, "groups", groups);
	Py_XDECREF(groups);
	Py_XDECREF(counts);
	return d;
}

PyObject *pyf_workflow_status(struct pyf_conn *self, PyObject *arg)
{
	struct ferry_workflow_info *w = NULL;
	struct pyf_err e = {0};
	ferry_workflow_id id;
	PyObject *d;

	if (wf_id(arg, &id) < 0)
		return NULL;
	PYF_CALL(self, &e, ferry_workflow_status(self->conn, id, &w));
	if (e.rc)
		return pyf_raise(&e);
	d = wf_dict(w);
	ferry_workflow_info_free(w);
	return d;
}

PyObject *pyf_workflows(struct pyf_conn *self, PyObject *unused)
{
	struct ferry_workflow_info **v = NULL;
	struct pyf_err e = {0};
	PyObject *l;
	size_t n = 0;

	PYF_CALL(self, &e, ferry_workflows(self->conn, &v, &n));
	if (e.rc)
		return pyf_raise(&e);
	l = PyList_New((Py_ssize_t)n);
	for (size_t i = 0; l && i < n; i++) {
		PyObject *d = wf_dict(v[i]);
		if (!d)
			Py_CLEAR(l);
		else
			PyList_SET_ITEM(l, (Py_ssize_t)i, d);
	}
	ferry_workflows_free(v, n);
	return l;
}

/* One slice of a wait for workflow *arg. */
static int wf_slice(ferry_conn *c, void *arg, double slice, struct pyf_err *e)
{
	PyThreadState *ts = PyEval_SaveThread();

	e->rc = ferry_wait_workflow(c, *(ferry_workflow_id *)arg, slice);
	if (e->rc && e->rc != FERRY_ETIMEDOUT)
		pyf_keep(c, e->rc, e);
	PyEval_RestoreThread(ts);
	return e->rc;
}

PyObject *pyf_wait_workflow(struct pyf_conn *self, PyObject *args, PyObject *kw)
{
	static char *kwlist[] = {"workflow_id", "timeout", NULL};
	PyObject *o, *t = Py_None;
	ferry_workflow_id id;
	double timeout = -1;

	if (!PyArg_ParseTupleAndKeywords(args, kw, "O|O:wait_workflow", kwlist, &o, &t) ||
	    pyf_timeout(t, &timeout) < 0 || wf_id(o, &id) < 0)
		return NULL;
	return pyf_side_wait(self, timeout, wf_slice, &id);
}

/* stop_workflow() and dispose_workflow(): a ferry.ControlResult */
static PyObject *wf_select(struct pyf_conn *self, PyObject *arg,
			   int (*fn)(ferry_conn *, ferry_workflow_id,
				     struct ferry_control_result *))
{
	struct ferry_control_result res;
	struct pyf_err e = {0};
	ferry_workflow_id id;

	if (wf_id(arg, &id) < 0)
		return NULL;
	PYF_CALL(self, &e, fn(self->conn, id, &res));
	return e.rc ? pyf_raise(&e) : pyf_control_result(&res);
}

PyObject *pyf_stop_workflow(struct pyf_conn *self, PyObject *arg)
{
	return wf_select(self, arg, ferry_stop_workflow);
}

PyObject *pyf_dispose_workflow(struct pyf_conn *self, PyObject *arg)
{
	return wf_select(self, arg, ferry_dispose_workflow);
}

PyObject *pyf_restart_workflow(struct pyf_conn *self, PyObject *arg)
{
	struct pyf_err e = {0};
	ferry_workflow_id id;
	size_t n = 0;

	if (wf_id(arg, &id) < 0)
		return NULL;
	PYF_CALL(self, &e, ferry_restart_workflow(self->conn, id, &n));
	return e.rc ? pyf_raise(&e) : PyLong_FromSize_t(n);
}

PyObject *pyf_translate_path(struct pyf_conn *self, PyObject *args, PyObject *kw)
{
	static char *kwlist[] = {"namespace", "uuid", NULL};
	PyObject *ns_o, *uuid_o, *p = NULL;
	const char *ns, *uuid;
	struct pyf_err e = {0};
	struct pyf_arena a;
	char *path = NULL;

	if (!PyArg_ParseTupleAndKeywords(args, kw, "OO:translate_path", kwlist, &ns_o, &uuid_o) ||
	    pyf_arena_init(&a) < 0)
		return NULL;
	if ((ns = pyf_cstr(&a, ns_o, "namespace")) && (uuid = pyf_cstr(&a, uuid_o, "uuid"))) {
		PYF_CALL(self, &e, ferry_translate_path(self->conn, ns, uuid, &path));
		p = e.rc ? pyf_raise(&e) : PyUnicode_DecodeFSDefault(path);
	}
	pyf_arena_release(&a);
	free(path);
	return p;
}
