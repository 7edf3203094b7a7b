/*
 * spec.c - submit() and submit_many(): Python arguments into struct
 * ferry_job_spec. The strings stay owned by an arena of bytes objects for
 * the duration of the call, as libferry borrows them.
 */
#include "pyferry.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

const char *const *pyf_strv(struct pyf_arena *a, PyObject *o, const char *what, size_t *n)
{
	PyObject *tuple;
	const char **v;
	Py_ssize_t len;

	if (PyUnicode_Check(o) || PyBytes_Check(o) || !PySequence_Check(o)) {
		PyErr_Format(PyExc_TypeError, "%s must be a list of str, not %s%.80s", what,
			     PyUnicode_Check(o) || PyBytes_Check(o) ? "a single " : "",
			     Py_TYPE(o)->tp_name);
		return NULL;
	}
	/* a copy: the items stay while __fspath__ and the like run */
	if (!(tuple = PySequence_Tuple(o)))
		return NULL;
	len = PyTuple_GET_SIZE(tuple);
	v = pyf_arena_alloc(a, sizeof(*v) * (size_t)(len + 1));
	for (Py_ssize_t i = 0; v && i < len; i++)
		if (!(v[i] = pyf_cstr(a, PyTuple_GET_ITEM(tuple, i), what)))
			v = NULL;
	Py_DECREF(tuple);
	if (v && n)
		*n = (size_t)len;
	return v;
}

static const char *const *strv(struct pyf_arena *a, PyObject *o, const char *what)
{
	return pyf_strv(a, o, what, NULL);
}

/* env: a mapping (name -> value) or a list of "NAME=value". */
static const char *const *env_strv(struct pyf_arena *a, PyObject *o)
{
	PyObject *keys, *l;
	const char *const *v;

	if (!PyMapping_Check(o) || PyList_Check(o) || PyTuple_Check(o))
		return strv(a, o, "env");
	keys = PyMapping_Keys(o);
	if (!keys)
		return NULL;
	l = PyList_New(0);
	for (Py_ssize_t i = 0; l && i < PyList_GET_SIZE(keys); i++) {
		PyObject *k = PyList_GET_ITEM(keys, i), *val = PyObject_GetItem(o, k), *s = NULL;
		const char *name = val ? pyf_cstr(a, k, "an env name") : NULL;
		const char *value = name ? pyf_cstr(a, val, "an env value") : NULL;
		if (value && (!*name || strchr(name, '='))) {
			/* what follows a '=' in it may be a value: not echoed */
			pyf_raisef(FERRY_EINVAL, "env name '%.*s' is empty or has a '='",
				   (int)strcspn(name, "="), name);
			value = NULL;
		}
		s = value ? PyBytes_FromFormat("%s=%s", name, value) : NULL;
		if (!s || PyList_Append(l, s) < 0)
			Py_CLEAR(l);
		Py_XDECREF(s);
		Py_XDECREF(val);
	}
	Py_DECREF(keys);
	if (!l)
		return NULL;
	v = strv(a, l, "env");
	Py_DECREF(l);
	return v;
}

/* None or an int into *out; what names it in errors. */
static int opt_int64(PyObject *o, int64_t *out, const char *what)
{
	return o == Py_None ? 0 : pyf_int64(o, out, what);
}

/* walltime: seconds (int or float, rounded up) or a datetime.timedelta. */
static int walltime(PyObject *o, int64_t *out)
{
	PyObject *secs = NULL;
	double s;

	if (o == Py_None)
		return 0;
	if (PyObject_HasAttrString(o, "total_seconds"))
		o = secs = PyObject_CallMethod(o, "total_seconds", NULL);
	if (!o)
		return -1;
	if (!PyNumber_Check(o) || PyBool_Check(o)) {
		PyErr_Format(PyExc_TypeError, "walltime must be seconds or a timedelta, not %.80s",
			     Py_TYPE(o)->tp_name);
		Py_XDECREF(secs);
		return -1;
	}
	s = PyFloat_AsDouble(o);
	Py_XDECREF(secs);
	if (s == -1 && PyErr_Occurred())
		return -1;
	if (!isfinite(s) || s < 0 || s > 1e15) {
		pyf_raisef(FERRY_EINVAL, "walltime must be a positive number of seconds");
		return -1;
	}
	*out = (int64_t)ceil(s);
	return 0;
}

/* An optional path-like argument. */
static int opt_path(struct pyf_arena *a, PyObject *o, const char **out, const char *what)
{
	if (o == Py_None)
		return 0;
	*out = pyf_cstr(a, o, what);
	return *out ? 0 : -1;
}

/* join_stderrout, or the seed's join_stderrot; both only if they agree. -1: error set. */
static int join_flag(PyObject *join, PyObject *seed_spelling)
{
	int a = join != Py_None ? PyObject_IsTrue(join) : 0;
	int b = seed_spelling != Py_None ? PyObject_IsTrue(seed_spelling) : 0;

	if (a < 0 || b < 0)
		return -1;
	if (join != Py_None && seed_spelling != Py_None && a != b) {
		pyf_raisef(FERRY_EINVAL, "join_stderrout and join_stderrot disagree");
		return -1;
	}
	return a || b;
}

static int lists_and_ints(struct pyf_arena *a, struct ferry_job_spec *s, PyObject *in,
			  PyObject *out, PyObject *env, PyObject *cpus, PyObject *mem, PyObject *wt)
{
	int64_t ncpus = 1;

	if (in != Py_None && !(s->referenced_input_files = strv(a, in, "referenced_input_files")))
		return -1;
	if (out != Py_None &&
	    !(s->referenced_output_files = strv(a, out, "referenced_output_files")))
		return -1;
	if (env != Py_None && !(s->env = env_strv(a, env)))
		return -1;
	if (opt_int64(cpus, &ncpus, "cpus") < 0 || opt_int64(mem, &s->memory_mb, "memory") < 0 ||
	    walltime(wt, &s->walltime_s) < 0)
		return -1;
	if (ncpus < 1 || ncpus > 1 << 20) {
		pyf_raisef(FERRY_EINVAL, "cpus must be between 1 and %d", 1 << 20);
		return -1;
	}
	s->cpus = (int)ncpus;
	return 0;
}

/* A parallel job's request (struct ferry_job_spec's tasks...launcher). */
static int parallel(struct ferry_job_spec *s, PyObject *tasks, PyObject *cpt, PyObject *nodes,
		    PyObject *launcher)
{
	int64_t t = 1, c = 1, n = 0;
	const char *l = NULL;

	if (opt_int64(tasks, &t, "tasks") < 0 || opt_int64(cpt, &c, "cpus_per_task") < 0 ||
	    opt_int64(nodes, &n, "nodes") < 0)
		return -1;
	if (t < 1 || t > 1 << 20 || c < 1 || c > 1 << 20 || n < 0 || n > 1 << 20) {
		pyf_raisef(FERRY_EINVAL,
			   "tasks and cpus_per_task must be between 1 and %d, "
			   "nodes between 0 and %d",
			   1 << 20, 1 << 20);
		return -1;
	}
	if (launcher != Py_None &&
	    !(l = PyUnicode_Check(launcher) ? PyUnicode_AsUTF8(launcher) : NULL)) {
		if (!PyErr_Occurred())
			PyErr_SetString(PyExc_TypeError, "launcher must be 'mpi', 'none' or None");
		return -1;
	}
	if (l && ferry_launcher_from_name(l, &s->launcher)) {
		pyf_raisef(FERRY_EINVAL, "launcher is '%s', not 'mpi' or 'none'", l);
		return -1;
	}
	s->tasks = (int)t;
	s->cpus_per_task = (int)c;
	s->nodes = (int)n;
	return 0;
}

/* submit()'s arguments into *s; the strings live as long as the arena. */
static int spec_from(PyObject *args, PyObject *kw, struct pyf_arena *a, struct ferry_job_spec *s)
{
	static char *kwlist[] = {"command",
				 "referenced_input_files",
				 "referenced_output_files",
				 "stdin",
				 "join_stderrout",
				 "disposal_timeout",
				 "name_description",
				 "stdout_path",
				 "stderr_path",
				 "working_directory",
				 "env",
				 "cpus",
				 "memory",
				 "walltime",
				 "queue",
				 "native_specification",
				 "hold",
				 "submission_key",
				 "join_stderrot",
				 "tasks",
				 "cpus_per_task",
				 "nodes",
				 "launcher",
				 NULL};
	PyObject *cmd, *in = Py_None, *out = Py_None, *in0 = Py_None, *join = Py_None;
	PyObject *name = Py_None, *so = Py_None, *se = Py_None, *wd = Py_None, *env = Py_None;
	PyObject *cpus = Py_None, *mem = Py_None, *wt = Py_None, *queue = Py_None;
	PyObject *native = Py_None, *skey = Py_None, *join2 = Py_None;
	PyObject *tasks = Py_None, *cpt = Py_None, *nodes = Py_None, *launcher = Py_None;
	int disposal = 168, hold = 0;

	ferry_job_spec_init(s);
	if (!PyArg_ParseTupleAndKeywords(args, kw, "O|OOOOiOOOO$OOOOOOpOOOOOO:submit", kwlist, &cmd,
					 &in, &out, &in0, &join, &disposal, &name, &so, &se, &wd,
					 &env, &cpus, &mem, &wt, &queue, &native, &hold, &skey,
					 &join2, &tasks, &cpt, &nodes, &launcher))
		return -1;
	if (parallel(s, tasks, cpt, nodes, launcher) < 0)
		return -1;
	if (!(s->argv = strv(a, cmd, "command")))
		return -1;
	if (!s->argv[0]) {
		pyf_raisef(FERRY_EINVAL, "command is empty: it needs at least the program");
		return -1;
	}
	if ((s->join_stderrout = join_flag(join, join2)) < 0 ||
	    lists_and_ints(a, s, in, out, env, cpus, mem, wt) < 0 ||
	    opt_path(a, in0, &s->stdin_path, "stdin") < 0 ||
	    opt_path(a, name, &s->name, "name_description") < 0 ||
	    opt_path(a, so, &s->stdout_path, "stdout_path") < 0 ||
	    opt_path(a, se, &s->stderr_path, "stderr_path") < 0 ||
	    opt_path(a, wd, &s->working_directory, "working_directory") < 0 ||
	    opt_path(a, queue, &s->queue, "queue") < 0 ||
	    opt_path(a, native, &s->native_specification, "native_specification") < 0 ||
	    opt_path(a, skey, &s->submission_key, "submission_key") < 0)
		return -1;
	s->disposal_timeout_hours = disposal;
	s->hold = hold;
	return 0;
}

PyObject *pyf_submit(struct pyf_conn *self, PyObject *args, PyObject *kw)
{
	struct ferry_job_spec spec;
	struct pyf_err e = {0};
	struct pyf_arena a;
	ferry_job_id id = 0;

	if (pyf_arena_init(&a) < 0)
		return NULL;
	if (spec_from(args, kw, &a, &spec) < 0) {
		pyf_arena_release(&a);
		return NULL;
	}
	PYF_CALL(self, &e, ferry_submit(self->conn, &spec, &id));
	pyf_arena_release(&a);
	if (e.rc)
		return pyf_raise(&e);
	return PyLong_FromLongLong(id);
}

/*
 * Names the job of the pending exception: "jobs[i]: " before the message
 * of a ferry.Error, TypeError or ValueError (made from one message); a note
 * on any other (UnicodeEncodeError's constructor takes five arguments).
 */
static void name_index(Py_ssize_t i)
{
	PyObject *type, *value, *tb, *msg;
	int plain;

	PyErr_Fetch(&type, &value, &tb);
	PyErr_NormalizeException(&type, &value, &tb);
	plain = type == PyExc_TypeError || type == PyExc_ValueError ||
		PyErr_GivenExceptionMatches(type, pyf_exception(0));
	msg = value ? PyObject_Str(value) : NULL;
	if (msg && plain) {
		PyErr_Format(type, "jobs[%zd]: %U", i, msg);
		Py_XDECREF(type);
		Py_XDECREF(value);
		Py_XDECREF(tb);
	} else {
		PyObject *r = value ? PyObject_CallMethod(value, "add_note", "N",
							  PyUnicode_FromFormat("in jobs[%zd]", i))
				    : NULL;
		Py_XDECREF(r);
		PyErr_Clear();
		PyErr_Restore(type, value, tb);
	}
	Py_XDECREF(msg);
}

static int specs_from(PyObject *seq, struct pyf_arena *a, struct ferry_job_spec *specs)
{
	PyObject *none = PyTuple_New(0);

	for (Py_ssize_t i = 0; none && i < PySequence_Fast_GET_SIZE(seq); i++) {
		PyObject *d = PySequence_Fast_GET_ITEM(seq, i);
		if (!PyDict_Check(d)) {
			PyErr_Format(PyExc_TypeError, "jobs[%zd] must be a dict, not %.80s", i,
				     Py_TYPE(d)->tp_name);
			break;
		}
		if (spec_from(none, d, a, &specs[i]) < 0) {
			name_index(i);
			break;
		}
	}
	Py_XDECREF(none);
	return PyErr_Occurred() ? -1 : 0;
}

PyObject *pyf_submit_many(struct pyf_conn *self, PyObject *jobs)
{
	PyObject *seq = PySequence_Fast(jobs, "jobs must be a list of dicts"), *l = NULL;
	struct ferry_job_spec *specs;
	ferry_job_id *ids = NULL;
	struct pyf_err e = {0};
	struct pyf_arena a;
	Py_ssize_t n;

	if (!seq || pyf_arena_init(&a) < 0) {
		Py_XDECREF(seq);
		return NULL;
	}
	n = PySequence_Fast_GET_SIZE(seq);
	specs = pyf_arena_alloc(&a, sizeof(*specs) * (size_t)n);
	ids = specs ? pyf_arena_alloc(&a, sizeof(*ids) * (size_t)n) : NULL;
	if (!ids || specs_from(seq, &a, specs) < 0)
		goto out;
	if (!n) {
		l = PyList_New(0);
		goto out;
	}
	PYF_CALL(self, &e, ferry_submit_many(self->conn, specs, (size_t)n, ids));
	if (e.rc) {
		pyf_raise(&e);
		goto out;
	}
	l = PyList_New(n);
	for (Py_ssize_t i = 0; l && i < n; i++) {
		PyObject *v = PyLong_FromLongLong(ids[i]);
		if (!v) {
			Py_CLEAR(l);
			break;
		}
		PyList_SET_ITEM(l, i, v);
	}
out:
	pyf_arena_release(&a);
	Py_DECREF(seq);
	return l;
}
