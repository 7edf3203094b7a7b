/*
 * info.c - a job's and a transfer's record as Python values. The dicts are
 * made from the objects the CLI prints with --json (jobfields.c), so that
 * jobInformation() has every field `ferry info --json` has, by the same
 * names, and a field added to the table reaches Python with no code here.
 */
#include "pyferry.h"

#include <stdlib.h>

#include "jobfields.h"

PyObject *pyf_from_json(const json_t *v)
{
	PyObject *o;
	const char *key;
	json_t *item;
	size_t i;

	switch (json_typeof(v)) {
	case JSON_OBJECT:
		o = PyDict_New();
		json_object_foreach((json_t *)v, key, item)
		{
			PyObject *x = o ? pyf_from_json(item) : NULL;
			if (!x || PyDict_SetItemString(o, key, x) < 0)
				Py_CLEAR(o);
			Py_XDECREF(x);
		}
		return o;
	case JSON_ARRAY:
		o = PyList_New((Py_ssize_t)json_array_size(v));
		json_array_foreach(v, i, item)
		{
			PyObject *x = o ? pyf_from_json(item) : NULL;
			if (!x)
				Py_CLEAR(o);
			else
				PyList_SET_ITEM(o, (Py_ssize_t)i, x);
		}
		return o;
	case JSON_STRING:
		return PyUnicode_DecodeUTF8(json_string_value(v), (Py_ssize_t)json_string_length(v),
					    "surrogateescape");
	case JSON_INTEGER:
		return PyLong_FromLongLong(json_integer_value(v));
	case JSON_REAL:
		return PyFloat_FromDouble(json_real_value(v));
	case JSON_TRUE:
		Py_RETURN_TRUE;
	case JSON_FALSE:
		Py_RETURN_FALSE;
	default:
		Py_RETURN_NONE;
	}
}

/* Takes j (NULL: out of memory). */
static PyObject *from_json_object(json_t *j)
{
	PyObject *o = j ? pyf_from_json(j) : PyErr_NoMemory();

	json_decref(j);
	return o;
}

PyObject *pyf_job_information(struct pyf_conn *self, PyObject *arg)
{
	struct ferry_job_info *info = NULL;
	struct pyf_err e = {0};
	ferry_job_id id;
	PyObject *o;

	if (pyf_job_id(arg, &id) < 0)
		return NULL;
	PYF_CALL(self, &e, ferry_job_info(self->conn, id, &info));
	if (e.rc)
		return pyf_raise(&e);
	o = from_json_object(ferry__job_to_json(info));
	ferry_job_info_free(info);
	return o;
}

/* Adds key: v to d when v is known (>= 0). */
static int usage(PyObject *d, const char *key, double v, int integer)
{
	PyObject *x;
	int rc;

	if (v < 0)
		return 0;
	x = integer ? PyLong_FromLongLong((long long)v) : PyFloat_FromDouble(v);
	if (!x)
		return -1;
	rc = PyDict_SetItemString(d, key, x);
	Py_DECREF(x);
	return rc;
}

PyObject *pyf_exit_information(struct pyf_conn *self, PyObject *arg)
{
	struct ferry_exit_info x = {0};
	struct pyf_err e = {0};
	ferry_job_id id;
	PyObject *ru, *status, *value, *sig;
	int bad;

	if (pyf_job_id(arg, &id) < 0)
		return NULL;
	PYF_CALL(self, &e, ferry_exit_info(self->conn, id, &x));
	if (e.rc)
		return pyf_raise(&e);
	ru = PyDict_New();
	bad =
	    !ru || usage(ru, "cpu_user", x.cpu_user_s, 0) < 0 ||
	    usage(ru, "cpu_sys", x.cpu_sys_s, 0) < 0 ||
	    usage(ru, "cpu_time",
		  x.cpu_user_s >= 0 && x.cpu_sys_s >= 0 ? x.cpu_user_s + x.cpu_sys_s : -1, 0) < 0 ||
	    usage(ru, "wall_time", x.wall_s, 0) < 0 ||
	    usage(ru, "max_rss_kb", (double)x.max_rss_kb, 1) < 0;
	if (bad) {
		Py_XDECREF(ru);
		return NULL;
	}
	status = x.exit_status == FERRY_EXIT_NONE
		     ? Py_NewRef(Py_None)
		     : PyUnicode_FromString(ferry_exit_status_name(x.exit_status));
	value = x.exit_status == FERRY_FINISHED_REGULARLY ? PyLong_FromLong(x.exit_value)
							  : Py_NewRef(Py_None);
	sig = x.signal > 0 && x.exit_status != FERRY_EXIT_NONE ? PyLong_FromLong(x.signal)
							       : Py_NewRef(Py_None);
	if (!status || !value || !sig) {
		Py_XDECREF(status);
		Py_XDECREF(value);
		Py_XDECREF(sig);
		Py_DECREF(ru);
		return NULL;
	}
	return Py_BuildValue("(NNNN)", status, value, sig, ru);
}

PyObject *pyf_transfer_information(struct pyf_conn *self, PyObject *arg)
{
	struct ferry_transfer_info *info = NULL;
	struct pyf_err e = {0};
	struct pyf_arena a;
	const char *path;
	PyObject *o;

	if (pyf_arena_init(&a) < 0)
		return NULL;
	path = pyf_cstr(&a, arg, "server_path");
	if (!path) {
		pyf_arena_release(&a);
		return NULL;
	}
	PYF_CALL(self, &e, ferry_transfer_info(self->conn, path, &info));
	pyf_arena_release(&a);
	if (e.rc)
		return pyf_raise(&e);
	o = from_json_object(ferry__transfer_to_json(info));
	ferry_transfer_info_free(info);
	return o;
}

PyObject *pyf_transfers(struct pyf_conn *self, PyObject *unused)
{
	struct ferry_transfer_info **list = NULL;
	struct pyf_err e = {0};
	PyObject *l;
	size_t n = 0;

	PYF_CALL(self, &e, ferry_transfers(self->conn, &list, &n));
	if (e.rc)
		return pyf_raise(&e);
	l = PyList_New((Py_ssize_t)n);
	for (size_t i = 0; l && i < n; i++) {
		PyObject *p = PyUnicode_DecodeFSDefault(list[i]->server_path);
		if (!p) {
			Py_CLEAR(l);
			break;
		}
		PyList_SET_ITEM(l, (Py_ssize_t)i, p);
	}
	ferry_transfer_list_free(list, n);
	return l;
}
