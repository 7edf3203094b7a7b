/*
 * module.c - ferry._ferry: the exceptions, the constants, the helpers the
 * other files share, and the module's creation.
 */
#include "pyferry.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

/*
 * The exception classes, by -code. The module uses single-phase
 * initialisation (one instance per process, as libferry keeps no global
 * state of its own to tie to an interpreter), so they live here, set once
 * at import and never changed.
 */
static PyObject *errors[PYF_NERR];

static const struct {
	const char *name;
	const char *builtin; /* a built-in exception it also is, or NULL */
	const char *doc;
} error_classes[PYF_NERR] = {
    {"Error", NULL, "Any error ferry reports: .code is the FERRY_E* code, str() the message."},
    {"InvalidArgument", "ValueError", "An argument or a request field is invalid (FERRY_EINVAL)."},
    {"OutOfMemory", "MemoryError", "Out of memory (FERRY_ENOMEM)."},
    {"NoSuchJob", "LookupError",
     "No such job or transfer: never existed, or disposed (FERRY_ENOJOB)."},
    {"ConnectFailed", "ConnectionError", "Cannot reach or start the engine (FERRY_ECONNECT)."},
    {"ProtocolError", NULL, "A malformed or unexpected protocol message (FERRY_EPROTO)."},
    {"Timeout", "TimeoutError", "The timeout passed before the condition held (FERRY_ETIMEDOUT)."},
    {"InvalidState", NULL, "The job's state does not allow the action (FERRY_ESTATE)."},
    {"Unsupported", NULL, "Valid, but not supported by this resource (FERRY_EUNSUPPORTED)."},
    {"ConfigurationError", NULL, "The configuration file or resource is invalid (FERRY_ECONFIG)."},
    {"IOFailure", NULL, "An I/O error on a file or the connection (FERRY_EIO)."},
    {"TryAgain", NULL, "Nothing available now, or the cluster is busy (FERRY_EAGAIN)."},
    {"EndOfOutput", NULL, "The job ended and all its output was read (FERRY_EEOF)."},
    {"PermissionDenied", "PermissionError", "Permission denied (FERRY_EPERM)."},
    {"Disconnected", "ConnectionError",
     "The engine was lost and not regained within set_timeout() (FERRY_EDISCONNECTED)."},
    {"ResourceError", NULL, "The resource cannot satisfy the request (FERRY_ERESOURCE)."},
    {"InternalError", NULL, "An internal engine error, e.g. its database (FERRY_EINTERNAL)."},
    {"AuthenticationError", NULL, "The remote host refused the login (FERRY_EAUTH)."},
};

PyObject *pyf_exception(int code)
{
	if (code > 0 || -code >= PYF_NERR)
		code = 0;
	return errors[-code];
}

static PyObject *raise_msg(int code, const char *msg)
{
	PyObject *cls = pyf_exception(code), *exc = NULL, *text;

	if (!msg || !*msg)
		msg = ferry_strerror(code);
	/* messages quote paths, which need not be UTF-8 */
	text = PyUnicode_DecodeUTF8(msg, (Py_ssize_t)strlen(msg), "backslashreplace");
	if (text)
		exc = PyObject_CallOneArg(cls, text);
	Py_XDECREF(text);
	if (exc) {
		PyErr_SetObject(cls, exc);
		Py_DECREF(exc);
	}
	return NULL;
}

PyObject *pyf_raise(const struct pyf_err *e)
{
	return raise_msg(e->rc, e->msg);
}

PyObject *pyf_raisef(int code, const char *fmt, ...)
{
	char msg[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	return raise_msg(code, msg);
}

void pyf_keep(ferry_conn *conn, int code, struct pyf_err *e)
{
	e->rc = code;
	snprintf(e->msg, sizeof(e->msg), "%s", conn ? ferry_errmsg(conn) : "");
}

void pyf_closed(struct pyf_err *e)
{
	e->rc = FERRY_EINVAL;
	snprintf(e->msg, sizeof(e->msg), "the connection is closed");
}

int pyf_in_callback(struct pyf_conn *self, struct pyf_err *e)
{
	if (!self->cb_thread || self->cb_thread != PyThread_get_thread_ident())
		return 0;
	e->rc = FERRY_ESTATE;
	snprintf(e->msg, sizeof(e->msg),
		 "a progress callable cannot call its own connection during the transfer");
	return 1;
}

int pyf_int64(PyObject *o, int64_t *out, const char *what)
{
	PyObject *i;
	long long v;

	/* any integer (numpy's too), not a bool or a float */
	if (!PyIndex_Check(o) || PyBool_Check(o)) {
		PyErr_Format(PyExc_TypeError, "%s must be an int, not %.80s", what,
			     Py_TYPE(o)->tp_name);
		return -1;
	}
	i = PyNumber_Index(o);
	v = i ? PyLong_AsLongLong(i) : -1;
	Py_XDECREF(i);
	if (v == -1 && PyErr_Occurred())
		return -1;
	*out = v;
	return 0;
}

int pyf_timeout(PyObject *o, double *out)
{
	double t;

	*out = -1;
	if (o == Py_None)
		return 0;
	t = PyFloat_AsDouble(o);
	if (t == -1 && PyErr_Occurred())
		return -1;
	if (isnan(t)) {
		pyf_raisef(FERRY_EINVAL, "a timeout must be a number of seconds, not NaN");
		return -1;
	}
	*out = t < 0 ? -1 : t;
	return 0;
}

int pyf_job_id(PyObject *o, ferry_job_id *id)
{
	return pyf_int64(o, id, "a job id");
}

int pyf_nap(double s)
{
	struct timespec ts = {.tv_sec = (time_t)s, .tv_nsec = (long)((s - (time_t)s) * 1e9)};

	PyThreadState *save = PyEval_SaveThread();

	nanosleep(&ts, NULL);
	PyEval_RestoreThread(save);
	return PyErr_CheckSignals();
}

/* ------------------------------------------------------------------ */
/* The arena: Python objects whose bytes libferry borrows during a call */

int pyf_arena_init(struct pyf_arena *a)
{
	memset(a, 0, sizeof(*a));
	a->keep = PyList_New(0);
	return a->keep ? 0 : -1;
}

void pyf_arena_release(struct pyf_arena *a)
{
	for (size_t i = 0; i < a->nblocks; i++)
		PyMem_Free(a->blocks[i]);
	PyMem_Free(a->blocks);
	Py_CLEAR(a->keep);
	a->blocks = NULL;
	a->nblocks = 0;
}

void *pyf_arena_alloc(struct pyf_arena *a, size_t size)
{
	void **blocks = PyMem_Realloc(a->blocks, (a->nblocks + 1) * sizeof(*blocks));
	void *p;

	if (!blocks)
		return PyErr_NoMemory();
	a->blocks = blocks;
	p = PyMem_Calloc(1, size ? size : 1);
	if (!p)
		return PyErr_NoMemory();
	a->blocks[a->nblocks++] = p;
	return p;
}

const char *pyf_cstr(struct pyf_arena *a, PyObject *o, const char *what)
{
	PyObject *b = NULL;

	if (!PyUnicode_Check(o) && !PyBytes_Check(o) && !PyObject_HasAttrString(o, "__fspath__")) {
		PyErr_Format(PyExc_TypeError, "%s must be str, bytes or os.PathLike, not %.80s",
			     what, Py_TYPE(o)->tp_name);
		return NULL;
	}
	if (!PyUnicode_FSConverter(o, &b))
		return NULL;
	if (PyList_Append(a->keep, b) < 0) {
		Py_DECREF(b);
		return NULL;
	}
	Py_DECREF(b);
	return PyBytes_AS_STRING(b);
}

/* ------------------------------------------------------------------ */
/* The module */

static int add_errors(PyObject *m)
{
	for (int i = 0; i < PYF_NERR; i++) {
		PyObject *bases, *builtin = NULL, *dict = PyDict_New(), *code = PyLong_FromLong(-i);
		char qual[64];
		int bad = !dict || !code || PyDict_SetItemString(dict, "code", code) < 0;

		Py_XDECREF(code);
		if (bad) {
			Py_XDECREF(dict);
			return -1;
		}
		if (error_classes[i].builtin)
			builtin =
			    PyDict_GetItemString(PyEval_GetBuiltins(), error_classes[i].builtin);
		bases = i == 0	  ? Py_NewRef(PyExc_Exception)
			: builtin ? PyTuple_Pack(2, errors[0], builtin)
				  : Py_NewRef(errors[0]);
		snprintf(qual, sizeof(qual), "ferry.%s", error_classes[i].name);
		errors[i] = bases
				? PyErr_NewExceptionWithDoc(qual, error_classes[i].doc, bases, dict)
				: NULL;
		Py_XDECREF(bases);
		Py_DECREF(dict);
		if (!errors[i] || PyModule_AddObjectRef(m, error_classes[i].name, errors[i]) < 0)
			return -1;
	}
	return 0;
}

/* ferry.RUNNING == "running", ...; and the tuples of all names. */
static int add_names(PyObject *m, const char *tuple_name, int first, int last,
		     const char *(*name_of)(int))
{
	PyObject *all = PyTuple_New(last - first + 1);

	if (!all)
		return -1;
	for (int v = first; v <= last; v++) {
		const char *name = name_of(v);
		char upper[64];
		size_t k;

		for (k = 0; name[k] && k + 1 < sizeof(upper); k++)
			upper[k] =
			    (char)(name[k] >= 'a' && name[k] <= 'z' ? name[k] - 32 : name[k]);
		upper[k] = '\0';
		PyTuple_SET_ITEM(all, v - first, PyUnicode_FromString(name));
		if (!PyTuple_GET_ITEM(all, v - first) ||
		    PyModule_AddStringConstant(m, upper, name) < 0) {
			Py_DECREF(all);
			return -1;
		}
	}
	if (PyModule_AddObjectRef(m, tuple_name, all) < 0) {
		Py_DECREF(all);
		return -1;
	}
	Py_DECREF(all);
	return 0;
}

static const char *state_name(int v)
{
	return ferry_status_name((enum ferry_job_status)v);
}

static const char *exit_name(int v)
{
	return ferry_exit_status_name((enum ferry_exit_status)v);
}

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT,
    .m_name = "ferry._ferry",
    .m_doc = "The C layer of the ferry package over libferry; use the ferry package.",
    .m_size = -1,
};

PyMODINIT_FUNC PyInit__ferry(void);

PyMODINIT_FUNC PyInit__ferry(void)
{
	PyObject *m;

	if (PyType_Ready(&pyf_conn_type) < 0)
		return NULL;
	m = PyModule_Create(&module);
	if (!m)
		return NULL;
	if (add_errors(m) < 0 || pyf_many_init(m) < 0 ||
	    add_names(m, "JOB_STATES", FERRY_UNDETERMINED, FERRY_FAILED, state_name) < 0 ||
	    add_names(m, "EXIT_STATUSES", FERRY_FINISHED_REGULARLY, FERRY_ABORTED, exit_name) < 0 ||
	    PyModule_AddStringConstant(m, "__version__", FERRY_VERSION_STRING) < 0 ||
	    PyModule_AddObjectRef(m, "Connection", (PyObject *)&pyf_conn_type) < 0) {
		Py_DECREF(m);
		return NULL;
	}
	return m;
}
