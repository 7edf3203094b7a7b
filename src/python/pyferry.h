/*
 * pyferry.h - the CPython module ferry._ferry, a thin layer over libferry
 * (docs/python.md). Internal to the module's files.
 *
 * Locking: every call into libferry runs with the GIL released. A
 * Connection's main ferry_conn is used under the Connection's own mutex,
 * taken only after the GIL was released (never the other way round), so
 * that a failed call's message is read before another thread's call
 * replaces it. Blocking waits use side connections from a small pool
 * (conn.c), so that a wait on one thread does not hold up the calls of
 * the others: libferry serialises the calls of one ferry_conn.
 */
#ifndef FERRY_PYFERRY_H
#define FERRY_PYFERRY_H

#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <jansson.h>
#include <pthread.h>

#include "ferry.h"

/* A failed call's code and message, copied under the connection's lock. */
struct pyf_err {
	int rc;
	char msg[1024];
};

/* Where a stdoutReadLine()/stderrReadLine() caller stands in a stream. */
struct pyf_cursor {
	ferry_job_id id;
	enum ferry_stream stream;
	uint64_t offset; /* next byte to read from the engine */
	char *buf;	 /* read but not yet returned */
	size_t len, cap;
	int eof; /* "" was returned: the job ended and all was read */
};

struct pyf_conn {
	PyObject_HEAD ferry_conn *conn; /* NULL once closed */
	pthread_mutex_t mu;		/* conn, its message, the cursors */
	char *resource, *login, *password, *config;
	double timeout; /* ferry_set_timeout(); < 0: the library's default */
	/* side connections for waits, under pool_mu */
	pthread_mutex_t pool_mu;
	ferry_conn **idle;
	size_t nidle, capidle;
	int closed; /* close() was called: side connections are freed on return */
	struct pyf_cursor *cursors;
	size_t ncursors;
	unsigned long cb_thread; /* the thread running the callable; 0: none */
	int initialised;	 /* __init__ ran (once only) */
};

extern PyTypeObject pyf_conn_type;

/* Module state: the exception classes, by -code (index 0: ferry.Error). */
#define PYF_NERR 18
PyObject *pyf_exception(int code);

/* Raises the exception of e's code with e's message; returns NULL. */
PyObject *pyf_raise(const struct pyf_err *e);
/* Raises the exception of code with a formatted message; returns NULL. */
PyObject *pyf_raisef(int code, const char *fmt, ...);
/* Keeps conn's message for code in e (under the connection's lock). */
void pyf_keep(ferry_conn *conn, int code, struct pyf_err *e);

/*
 * Runs expr on self's main connection with the GIL released and self->mu
 * held; a failure's code and message land in *e (e->rc is 0 on success).
 */
#define PYF_CALL(self, e, expr)                                                                    \
	do {                                                                                       \
		PyThreadState *pyf_ts_;                                                            \
		if (pyf_in_callback(self, e))                                                      \
			break;                                                                     \
		pyf_ts_ = PyEval_SaveThread();                                                     \
		pthread_mutex_lock(&(self)->mu);                                                   \
		if (!(self)->conn)                                                                 \
			pyf_closed(e);                                                             \
		else if (((e)->rc = (expr)) != 0)                                                  \
			pyf_keep((self)->conn, (e)->rc, (e));                                      \
		pthread_mutex_unlock(&(self)->mu);                                                 \
		PyEval_RestoreThread(pyf_ts_);                                                     \
	} while (0)

/* e says "the connection is closed". */
void pyf_closed(struct pyf_err *e);
/*
 * 1 with *e set when this thread runs self's progress callable: self's
 * lock is held by the transfer that called it, so a call would deadlock.
 */
int pyf_in_callback(struct pyf_conn *self, struct pyf_err *e);

/* An int argument (not a bool) that fits; what names it in errors. -1 with an exception set. */
int pyf_int64(PyObject *o, int64_t *out, const char *what);
/* A job id argument. */
int pyf_job_id(PyObject *o, ferry_job_id *id);
/* A timeout argument: None or a negative number for none, else seconds. */
int pyf_timeout(PyObject *o, double *out);

/* What a Python object keeps alive while libferry borrows its bytes. */
struct pyf_arena {
	PyObject *keep; /* list of bytes objects */
	void **blocks;	/* PyMem allocations */
	size_t nblocks;
};

int pyf_arena_init(struct pyf_arena *a);
void pyf_arena_release(struct pyf_arena *a);
/* size bytes, zeroed, freed with the arena; NULL with MemoryError set. */
void *pyf_arena_alloc(struct pyf_arena *a, size_t size);
/* A path or string (str, bytes, os.PathLike) as a C string the arena keeps; NULL: error set. */
const char *pyf_cstr(struct pyf_arena *a, PyObject *o, const char *what);

/*
 * A list or tuple of paths or strings as a NULL-terminated vector the
 * arena keeps; *n (may be NULL) its length. NULL: error set.
 */
const char *const *pyf_strv(struct pyf_arena *a, PyObject *o, const char *what, size_t *n);

/* spec.c: submit(), submit_many() */
PyObject *pyf_submit(struct pyf_conn *self, PyObject *args, PyObject *kw);
PyObject *pyf_submit_many(struct pyf_conn *self, PyObject *jobs);

/* conn.c: a side connection for a blocking call (GIL released); 0, or -1 with *e set */
int pyf_side_get(struct pyf_conn *self, ferry_conn **out, struct pyf_err *e);
/*
 * A wait on a side connection, in slices: slice(c, arg, seconds, e) waits
 * up to seconds and returns 0 once all ended, FERRY_ETIMEDOUT, or an
 * error kept in e. True, False after timeout (< 0: none), NULL raised
 * (Ctrl-C included).
 */
PyObject *pyf_side_wait(struct pyf_conn *self, double timeout,
			int (*slice)(ferry_conn *, void *, double, struct pyf_err *), void *arg);
/* Gives c (may be NULL) back to the pool, or closes it. GIL released. */
void pyf_side_put(struct pyf_conn *self, ferry_conn *c);

/* info.c: objects as Python values */
/* A JSON value as the Python value json.loads() would give; NULL: error set. */
PyObject *pyf_from_json(const json_t *v);
PyObject *pyf_job_information(struct pyf_conn *self, PyObject *arg);
PyObject *pyf_exit_information(struct pyf_conn *self, PyObject *arg);
PyObject *pyf_transfer_information(struct pyf_conn *self, PyObject *arg);
PyObject *pyf_transfers(struct pyf_conn *self, PyObject *unused);

/* transfer.c: sendFile() and the others */
PyObject *pyf_send_file(struct pyf_conn *self, PyObject *args, PyObject *kw);
PyObject *pyf_register_transfer(struct pyf_conn *self, PyObject *args, PyObject *kw);
PyObject *pyf_retrieve_file(struct pyf_conn *self, PyObject *args, PyObject *kw);
PyObject *pyf_cancel_transfer(struct pyf_conn *self, PyObject *args, PyObject *kw);

/* output.c: stdoutReadLine(), stderrReadLine() */
PyObject *pyf_read_line(struct pyf_conn *self, PyObject *args, PyObject *kw,
			enum ferry_stream stream);
void pyf_cursors_free(struct pyf_conn *self);

/*
 * many.c: _list_page() (list_jobs() of the package pages through it),
 * wait_all(), the controls by selection, open_output(); pyf_many_init
 * adds the result types to the module.
 */
PyObject *pyf_list_page(struct pyf_conn *self, PyObject *args, PyObject *kw);
PyObject *pyf_wait_all(struct pyf_conn *self, PyObject *args, PyObject *kw);
PyObject *pyf_control_select(struct pyf_conn *self, enum ferry_control action, int all,
			     PyObject *state, PyObject *name, PyObject *ids);
PyObject *pyf_open_output(struct pyf_conn *self, PyObject *args, PyObject *kw);
int pyf_many_init(PyObject *m);
/* A ferry.ControlResult of r (new reference), or NULL raised. */
PyObject *pyf_control_result(const struct ferry_control_result *r);

/* workflow.c: Connection's workflow calls */
PyObject *pyf_submit_workflow(struct pyf_conn *self, PyObject *arg);
PyObject *pyf_workflow_status(struct pyf_conn *self, PyObject *arg);
PyObject *pyf_workflows(struct pyf_conn *self, PyObject *unused);
PyObject *pyf_wait_workflow(struct pyf_conn *self, PyObject *args, PyObject *kw);
PyObject *pyf_stop_workflow(struct pyf_conn *self, PyObject *arg);
PyObject *pyf_restart_workflow(struct pyf_conn *self, PyObject *arg);
PyObject *pyf_dispose_workflow(struct pyf_conn *self, PyObject *arg);
PyObject *pyf_translate_path(struct pyf_conn *self, PyObject *args, PyObject *kw);

/* Sleeps s seconds with the GIL released; -1 with KeyboardInterrupt (or another) set. */
int pyf_nap(double s);

#endif
