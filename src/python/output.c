/*
 * output.c - stdoutReadLine() and stderrReadLine(): a job's output line by
 * line, each line with its newline as file.readline() gives it. The bytes
 * come from ferry_read_output() into a cursor per (job, stream) and
 * Connection, so that a last line without a newline stays one.
 */
#include "pyferry.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

#define CHUNK (64u << 10)

/* The cursor of (id, stream), created at offset 0; NULL when out of memory. */
static struct pyf_cursor *cursor(struct pyf_conn *self, ferry_job_id id, enum ferry_stream stream)
{
	struct pyf_cursor *c;

	for (size_t i = 0; i < self->ncursors; i++)
		if (self->cursors[i].id == id && self->cursors[i].stream == stream)
			return &self->cursors[i];
	c = realloc(self->cursors, (self->ncursors + 1) * sizeof(*c));
	if (!c)
		return NULL;
	self->cursors = c;
	c = &self->cursors[self->ncursors++];
	memset(c, 0, sizeof(*c));
	c->id = id;
	c->stream = stream;
	return c;
}

void pyf_cursors_free(struct pyf_conn *self)
{
	for (size_t i = 0; i < self->ncursors; i++)
		free(self->cursors[i].buf);
	free(self->cursors);
	self->cursors = NULL;
	self->ncursors = 0;
}

/* What one try found: a line (line/n, n may be 0 for ""), or nothing yet. */
struct got_line {
	int found;
	char *line;
	size_t n;
};

/* Takes the first n bytes of c's buffer as the line. */
static int take(struct pyf_cursor *c, size_t n, struct got_line *g)
{
	g->line = malloc(n ? n : 1);
	if (!g->line)
		return FERRY_ENOMEM;
	memcpy(g->line, c->buf, n);
	memmove(c->buf, c->buf + n, c->len - n);
	c->len -= n;
	g->n = n;
	g->found = 1;
	return 0;
}

/* Reads until a line is there, the stream is at its current end, or an error. */
static int fill(ferry_conn *conn, struct pyf_cursor *c, struct got_line *g)
{
	size_t scanned = 0;

	for (;;) {
		char *nl =
		    c->len > scanned ? memchr(c->buf + scanned, '\n', c->len - scanned) : NULL;
		size_t got = 0;
		int ended = 0, rc;

		if (nl)
			return take(c, (size_t)(nl - c->buf) + 1, g);
		if (c->eof) {
			g->found = 1; /* "" again */
			return 0;
		}
		scanned = c->len;
		if (c->cap - c->len < CHUNK) {
			char *b = realloc(c->buf, c->len + CHUNK);
			if (!b)
				return FERRY_ENOMEM;
			c->buf = b;
			c->cap = c->len + CHUNK;
		}
		rc = ferry_read_output(conn, c->id, c->stream, c->offset, c->buf + c->len, CHUNK,
				       &got, &ended);
		if (rc)
			return rc;
		c->offset += got;
		c->len += got;
		if (got == 0 && ended) {
			c->eof = c->len == 0;
			return take(c, c->len, g); /* the last line without a newline, or "" */
		}
		if (got == 0)
			return 0;
	}
}

/*
 * After a try: an emptied buffer is given back (a reader of thousands of
 * jobs keeps no 64 KiB each), and the cursor of a job the engine no
 * longer knows is dropped.
 */
static void settle(struct pyf_conn *self, struct pyf_cursor *c, int rc)
{
	if (c->len == 0) {
		free(c->buf);
		c->buf = NULL;
		c->cap = 0;
	}
	if (rc == FERRY_ENOJOB) {
		free(c->buf);
		*c = self->cursors[--self->ncursors];
	}
}

/* One try, GIL released: 1 with *out set (a str), 0 for nothing yet, -1 with an exception. */
static int try_line(struct pyf_conn *self, ferry_job_id id, enum ferry_stream stream,
		    PyObject **out)
{
	struct got_line g = {0};
	struct pyf_err e = {0};
	struct pyf_cursor *c = NULL;
	PyThreadState *ts;

	if (pyf_in_callback(self, &e)) {
		pyf_raise(&e);
		return -1;
	}
	ts = PyEval_SaveThread();
	pthread_mutex_lock(&self->mu);
	if (!self->conn)
		pyf_closed(&e);
	else if (!(c = cursor(self, id, stream)))
		e.rc = FERRY_ENOMEM;
	else if ((e.rc = fill(self->conn, c, &g)) != 0 && e.rc != FERRY_ENOMEM)
		pyf_keep(self->conn, e.rc, &e);
	if (c)
		settle(self, c, e.rc);
	pthread_mutex_unlock(&self->mu);
	PyEval_RestoreThread(ts);
	if (e.rc) {
		free(g.line);
		pyf_raise(&e);
		return -1;
	}
	if (!g.found)
		return 0;
	*out = g.n ? PyUnicode_DecodeUTF8(g.line, (Py_ssize_t)g.n, "replace")
		   : PyUnicode_FromStringAndSize("", 0);
	free(g.line);
	return *out ? 1 : -1;
}

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

PyObject *pyf_read_line(struct pyf_conn *self, PyObject *args, PyObject *kw,
			enum ferry_stream stream)
{
	static char *kwlist[] = {"job_id", "timeout", NULL};
	double timeout = 0, deadline, pause = 0.02;
	PyObject *o, *t = NULL, *line = NULL;
	ferry_job_id id;
	int r;

	if (!PyArg_ParseTupleAndKeywords(args, kw, "O|O", kwlist, &o, &t) ||
	    pyf_job_id(o, &id) < 0 || (t && pyf_timeout(t, &timeout) < 0))
		return NULL;
	deadline = now_s() + timeout;
	/* a line is polled for: the engine has no "tell me when a line comes" */
	while ((r = try_line(self, id, stream, &line)) == 0) {
		double left = deadline - now_s();
		if (timeout >= 0 && left <= 0)
			Py_RETURN_NONE;
		if (pyf_nap(timeout >= 0 && left < pause ? left : pause) < 0)
			return NULL;
		pause = pause < 0.2 ? pause * 2 : 0.2;
	}
	return r > 0 ? line : NULL;
}
