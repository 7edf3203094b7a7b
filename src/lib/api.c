/* api.c - the public functions of libferry (include/ferry.h). */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "internal.h"
#include "jbytes.h"
#include "jobfields.h"
#include "proto.h"
#include "util.h"

#define DEFAULT_RETRY_BUDGET_S 120.0

static char *xstrdup(const char *s)
{
	return s ? strdup(s) : NULL;
}

/* On this host, jobs run as the caller: a login or password would mean nothing. */
static int check_local_login(struct ferry_conn *c)
{
	struct passwd pw, *res = NULL;
	char buf[4096];

	if (c->password)
		return ferry__seterr(c, FERRY_EINVAL,
				     "a password is only for a remote resource; '%s' has no host",
				     c->resource);
	if (!c->login)
		return 0;
	if (getpwuid_r(geteuid(), &pw, buf, sizeof(buf), &res) == 0 && res &&
	    !strcmp(pw.pw_name, c->login))
		return 0;
	return ferry__seterr(c, FERRY_EINVAL,
			     "login '%s' is not yours: jobs of resource '%s' run as %s, on this "
			     "host",
			     c->login, c->resource, res ? pw.pw_name : "the caller");
}

/* A connection's handle, its resource resolved and checked; not yet open. */
static int conn_new(const char *resource_id, const char *login, const char *password,
		    const char *config_file, ferry_conn **out)
{
	struct ferry_conn *c = calloc(1, sizeof(*c));
	int rc;

	*out = c;
	if (!c)
		return FERRY_ENOMEM;
	pthread_mutex_init(&c->mu, NULL);
	c->fd = -1;
	c->ssh_pid = -1;
	c->ssh_err = -1;
	c->askpass = -1;
	c->ssh_exit = -1;
	c->retry_budget_s = DEFAULT_RETRY_BUDGET_S;
	c->resource = strdup(resource_id ? resource_id : "local");
	c->config = xstrdup(config_file);
	c->login = xstrdup(login);
	c->password = xstrdup(password);
	if (!c->resource || (config_file && !c->config) || (login && !c->login) ||
	    (password && !c->password))
		return ferry__seterr(c, FERRY_ENOMEM, "out of memory");
	if (ferry__resolve_resource(config_file, c->resource, &c->cfg, c->errmsg,
				    sizeof(c->errmsg)) < 0)
		return FERRY_ECONFIG;
	if (ferry__resource_supported(&c->cfg, c->errmsg, sizeof(c->errmsg)) < 0)
		return FERRY_EUNSUPPORTED;
	if (c->cfg.host && !(c->sets = ferry__cfg_engine_settings(&c->cfg)))
		return ferry__seterr(c, FERRY_ENOMEM, "out of memory");
	if (!c->cfg.host && (rc = check_local_login(c)) != 0)
		return rc;
	return 0;
}

FERRY_EXPORT int ferry_connect(const char *resource_id, const char *login, const char *password,
			       const char *config_file, ferry_conn **out)
{
	int rc = conn_new(resource_id, login, password, config_file, out);

	if (rc)
		return rc;
	pthread_mutex_lock(&(*out)->mu);
	rc = ferry__open(*out);
	pthread_mutex_unlock(&(*out)->mu);
	return rc;
}

FERRY_EXPORT void ferry_disconnect(ferry_conn *c)
{
	if (!c)
		return;
	ferry__close(c);
	while (c->cursors) {
		struct out_cursor *k = c->cursors;
		c->cursors = k->next;
		free(k->buf);
		free(k);
	}
	ferry__resource_cfg_release(&c->cfg);
	ferry__strv_free(c->sets);
	free(c->warnings);
	free(c->engine_home);
	free(c->resource);
	free(c->config);
	free(c->login);
	if (c->password) {
		explicit_bzero(c->password, strlen(c->password));
		free(c->password);
	}
	pthread_mutex_destroy(&c->mu);
	free(c);
}

FERRY_EXPORT const char *ferry_errmsg(const ferry_conn *c)
{
	return c ? c->errmsg : "no connection";
}

FERRY_EXPORT const char *ferry_resource(const ferry_conn *c)
{
	return c->resource;
}

FERRY_EXPORT int ferry_is_remote(const ferry_conn *c)
{
	return c->cfg.host != NULL;
}

/* A string the hello left on the connection, copied as snprintf does. */
static int copy_hello_string(ferry_conn *c, char *const *field, char *buf, size_t len)
{
	int n;

	pthread_mutex_lock(&c->mu);
	n = snprintf(buf, len, "%s", *field ? *field : "");
	pthread_mutex_unlock(&c->mu);
	return n < 0 ? FERRY_ENOMEM : n;
}

FERRY_EXPORT int ferry_engine_home(ferry_conn *c, char *buf, size_t len)
{
	return copy_hello_string(c, &c->engine_home, buf, len);
}

FERRY_EXPORT int ferry_engine_warnings(ferry_conn *c, char *buf, size_t len)
{
	return copy_hello_string(c, &c->warnings, buf, len);
}

FERRY_EXPORT int ferry_status(ferry_conn *c, ferry_job_id id, enum ferry_job_status *status)
{
	json_t *reply = NULL;
	int rc = ferry__call_locked(c, json_pack("{s:s,s:I}", "op", "status", "id", (json_int_t)id),
				    0, &reply);

	if (rc)
		return rc;
	if (ferry_status_from_name(json_string_value(json_object_get(reply, "status")), status))
		rc = ferry__seterr(c, FERRY_EPROTO, "the engine sent an unknown status");
	json_decref(reply);
	return rc;
}

char *ferry__jstrdup(json_t *o, const char *key)
{
	const char *s = json_string_value(json_object_get(o, key));

	return s ? strdup(s) : NULL;
}

/* The exit info is the job object's fields of that name (jobfields.h). */
static void fill_exit(const json_t *o, struct ferry_exit_info *e)
{
	struct ferry_job_info i = {0};

	ferry__job_scalars_from_json(o, &i);
	*e = (struct ferry_exit_info){
	    .exit_status = i.exit_status,
	    .exit_value = i.exit_value,
	    .signal = i.signal,
	    .cpu_user_s = i.cpu_user_s,
	    .cpu_sys_s = i.cpu_sys_s,
	    .max_rss_kb = i.max_rss_kb,
	    .wall_s = i.wall_s,
	};
}

static int get_job(ferry_conn *c, ferry_job_id id, json_t **reply, json_t **job)
{
	int rc = ferry__call_locked(c, json_pack("{s:s,s:I}", "op", "info", "id", (json_int_t)id),
				    0, reply);

	if (rc)
		return rc;
	*job = json_object_get(*reply, "job");
	if (!json_is_object(*job)) {
		json_decref(*reply);
		return ferry__seterr(c, FERRY_EPROTO, "the engine sent no job object");
	}
	return 0;
}

FERRY_EXPORT int ferry_exit_info(ferry_conn *c, ferry_job_id id, struct ferry_exit_info *out)
{
	json_t *reply, *job;
	int rc = get_job(c, id, &reply, &job);

	if (rc)
		return rc;
	fill_exit(job, out);
	json_decref(reply);
	return 0;
}

FERRY_EXPORT void ferry_job_info_free(struct ferry_job_info *i)
{
	if (!i)
		return;
	ferry__job_release(i);
	free(i);
}

FERRY_EXPORT int ferry_job_info(ferry_conn *c, ferry_job_id id, struct ferry_job_info **info)
{
	json_t *reply, *job;
	struct ferry_job_info *i;
	int rc = get_job(c, id, &reply, &job);

	*info = NULL;
	if (rc)
		return rc;
	i = calloc(1, sizeof(*i));
	if (!i || ferry__job_from_json(job, i)) {
		ferry_job_info_free(i);
		json_decref(reply);
		return ferry__seterr(c, FERRY_ENOMEM, "out of memory");
	}
	json_decref(reply);
	*info = i;
	return 0;
}

FERRY_EXPORT int ferry_wait(ferry_conn *c, const ferry_job_id *ids, size_t n, double timeout_s)
{
	json_t *a = json_array();
	double deadline = timeout_s >= 0 ? ferry__mono() + timeout_s : 0;

	for (size_t i = 0; a && i < n; i++)
		if (json_array_append_new(a, json_integer(ids[i]))) {
			json_decref(a);
			a = NULL;
		}
	if (!a)
		return ferry__seterr(c, FERRY_ENOMEM, "out of memory");
	/* deadline 0 means none; a zero timeout still needs one */
	if (timeout_s >= 0 && deadline <= 0)
		deadline = 1e-9;
	return ferry__call_locked(
	    c, json_pack("{s:s,s:o,s:f}", "op", "wait", "ids", a, "timeout", -1.0), deadline, NULL);
}

/*
 * The request of a wait for all jobs into *req; upto < 0: not known yet;
 * mark < 0: none (the first request, or an engine that gives none).
 */
static int wait_all_request(ferry_conn *c, const enum ferry_job_status *states, size_t nstates,
			    int64_t upto, int64_t mark, json_t **req)
{
	json_t *a = json_array();

	*req = json_pack("{s:s,s:b,s:f}", "op", "wait", "all", 1, "timeout", -1.0);
	if (!*req || !a) {
		json_decref(*req);
		json_decref(a);
		*req = NULL;
		return ferry__seterr(c, FERRY_ENOMEM, "out of memory");
	}
	for (size_t i = 0; states && i < nstates; i++) {
		const char *name = ferry_status_name(states[i]);
		if (!name || states[i] == FERRY_UNDETERMINED) {
			json_decref(a);
			json_decref(*req);
			*req = NULL;
			return ferry__seterr(c, FERRY_EINVAL, "invalid state %d", (int)states[i]);
		}
		json_array_append_new(a, json_string(name));
	}
	if (json_array_size(a))
		json_object_set(*req, "state", a);
	json_decref(a);
	if (upto >= 0)
		json_object_set_new(*req, "upto", json_integer(upto));
	if (mark >= 0)
		json_object_set_new(*req, "failed_since", json_integer(mark));
	return 0;
}

/* Adds what one answer of a wait for all jobs counted to *res. */
static void wait_all_merge(struct ferry_wait_all_result *res, json_t *reply, int first)
{
	json_t *ids = json_object_get(reply, "failed_ids"), *e;
	size_t i;

	if (first)
		res->jobs = (size_t)json_integer_value(json_object_get(reply, "jobs"));
	res->pending = (size_t)json_integer_value(json_object_get(reply, "pending"));
	res->failed += (size_t)json_integer_value(json_object_get(reply, "failed"));
	json_array_foreach(ids, i, e)
	{
		if (res->nfailed_ids < FERRY_WAIT_FAILED_IDS)
			res->failed_ids[res->nfailed_ids++] = json_integer_value(e);
	}
}

/*
 * The first request answers at once (timeout 0) with the highest id of
 * the set: every later one, and a replay on a restarted engine, names it,
 * so jobs submitted after the call stay out. Each answer counts the jobs
 * that ended while it waited, and gives the engine's failure mark: the
 * next request names it, and the engine adds the failures since, so none
 * between two requests (or while no engine ran) is lost. A remote wait
 * comes back every few seconds (a silent link would look dead), and is
 * sent again from here.
 */
FERRY_EXPORT int ferry_wait_all(ferry_conn *c, const enum ferry_job_status *states, size_t nstates,
				double timeout_s, struct ferry_wait_all_result *out)
{
	struct ferry_wait_all_result res = {0};
	double deadline = timeout_s >= 0 ? ferry__mono() + timeout_s : 0;
	int64_t upto = -1, mark = -1;
	int rc;

	for (int first = 1;; first = 0) {
		json_t *reply = NULL, *req, *m;
		if ((rc = wait_all_request(c, states, nstates, upto, mark, &req)))
			return rc;
		/* deadline 0 means none; a timeout 0 (the first) needs a deadline past */
		rc = ferry__call_locked(c, req, first ? 1e-9 : deadline, &reply);
		if (rc)
			return rc;
		wait_all_merge(&res, reply, first);
		upto = json_integer_value(json_object_get(reply, "upto"));
		m = json_object_get(reply, "mark");
		mark = json_is_integer(m) ? json_integer_value(m) : -1;
		json_decref(reply);
		if (out)
			*out = res;
		if (!res.pending)
			return 0;
		if (deadline > 0 && ferry__mono() >= deadline)
			return ferry__seterr(c, FERRY_ETIMEDOUT,
					     "timed out waiting for the jobs to end (%zu of %zu "
					     "not ended)",
					     res.pending, res.jobs);
	}
}

static int control(ferry_conn *c, ferry_job_id id, const char *action)
{
	return ferry__call_locked(
	    c, json_pack("{s:s,s:I,s:s}", "op", "control", "id", (json_int_t)id, "action", action),
	    0, NULL);
}

FERRY_EXPORT int ferry_stop(ferry_conn *c, ferry_job_id id)
{
	return control(c, id, "stop");
}

FERRY_EXPORT int ferry_restart(ferry_conn *c, ferry_job_id id)
{
	return control(c, id, "restart");
}

FERRY_EXPORT int ferry_hold(ferry_conn *c, ferry_job_id id)
{
	return control(c, id, "hold");
}

FERRY_EXPORT int ferry_release(ferry_conn *c, ferry_job_id id)
{
	return control(c, id, "release");
}

FERRY_EXPORT int ferry_kill(ferry_conn *c, ferry_job_id id)
{
	return control(c, id, "kill");
}

FERRY_EXPORT int ferry_dispose(ferry_conn *c, ferry_job_id id)
{
	json_t *req = json_pack("{s:s,s:I}", "op", "dispose", "id", (json_int_t)id), *reply = NULL;
	int rc;

	if (!req)
		return ferry__seterr(c, FERRY_ENOMEM, "out of memory");
	pthread_mutex_lock(&c->mu);
	rc = ferry__call(c, req, 0, &reply, NULL, NULL);
	/* a replay after a lost reply finds the job already gone: that is success */
	if (rc == FERRY_ENOJOB && c->replayed) {
		c->errmsg[0] = '\0';
		rc = 0;
	}
	pthread_mutex_unlock(&c->mu);
	json_decref(req);
	json_decref(reply);
	return rc;
}

/* The selection's states and ranges as the request's "state" and "ids". */
static int selection_lists(ferry_conn *c, const struct ferry_selection *sel, json_t *req)
{
	json_t *st = json_array(), *ids = json_array();
	int bad = !st || !ids;

	for (size_t i = 0; !bad && i < sel->nstates; i++) {
		const char *name = ferry_status_name(sel->states[i]);
		if (!name) {
			json_decref(st);
			json_decref(ids);
			return ferry__seterr(c, FERRY_EINVAL, "unknown job state %d",
					     (int)sel->states[i]);
		}
		bad = json_array_append_new(st, json_string(name));
	}
	for (size_t i = 0; !bad && i < sel->nranges; i++)
		bad = json_array_append_new(ids, json_pack("[I,I]", (json_int_t)sel->ranges[i][0],
							   (json_int_t)sel->ranges[i][1]));
	if (!bad && sel->nstates)
		bad = json_object_set(req, "state", st);
	if (!bad && sel->nranges)
		bad = json_object_set(req, "ids", ids);
	json_decref(st);
	json_decref(ids);
	return bad ? ferry__seterr(c, FERRY_ENOMEM, "out of memory") : 0;
}

/* The selection (and workflow wf, > 0) as the request's fields: 0 or an error. */
static int selection_fields(ferry_conn *c, const struct ferry_selection *sel, int64_t wf,
			    json_t *req)
{
	int bad = 0;

	if (sel->all)
		bad = json_object_set_new(req, "all", json_true());
	if (!bad && sel->name)
		bad = json_object_set_new(req, "name", json_string(sel->name));
	if (!bad && wf > 0)
		bad = json_object_set_new(req, "workflow", json_integer(wf));
	if (bad)
		return ferry__seterr(c, FERRY_ENOMEM, "out of memory");
	return selection_lists(c, sel, req);
}

void ferry__control_result(json_t *reply, struct ferry_control_result *out)
{
	json_t *e;
	size_t i;

	memset(out, 0, sizeof(*out));
	out->matched = (size_t)json_integer_value(json_object_get(reply, "matched"));
	out->changed = (size_t)json_integer_value(json_object_get(reply, "changed"));
	out->failed = (size_t)json_integer_value(json_object_get(reply, "failed"));
	json_array_foreach(json_object_get(reply, "errors"), i, e)
	{
		if (out->nerrors == FERRY_CONTROL_ERRORS)
			break;
		out->errors[out->nerrors].id = json_integer_value(json_object_get(e, "id"));
		out->errors[out->nerrors].code = ferry__error_from_name(
		    json_string_value(json_object_get(e, "error")) ?: "EINTERNAL");
		snprintf(out->errors[out->nerrors].message, sizeof(out->errors[0].message), "%s",
			 json_string_value(json_object_get(e, "message")) ?: "");
		out->nerrors++;
	}
}

/* ferry_control_select() and ferry_control_workflow() (wf > 0) */
static int control_select(ferry_conn *c, const struct ferry_selection *sel, int64_t wf,
			  enum ferry_control action, struct ferry_control_result *out)
{
	static const char *const names[] = {[FERRY_CONTROL_STOP] = "stop",
					    [FERRY_CONTROL_RESTART] = "restart",
					    [FERRY_CONTROL_HOLD] = "hold",
					    [FERRY_CONTROL_RELEASE] = "release",
					    [FERRY_CONTROL_KILL] = "kill"};
	json_t *req, *reply = NULL;
	int rc;

	if (!sel || !out)
		return ferry__seterr(c, FERRY_EINVAL, "no selection or no result given");
	if (!sel->all && !sel->nstates && !sel->name && !sel->nranges && wf <= 0)
		return ferry__seterr(
		    c, FERRY_EINVAL,
		    "a selection needs all, states, a name, a workflow or id ranges");
	if (action < FERRY_CONTROL_STOP || action > FERRY_CONTROL_DISPOSE)
		return ferry__seterr(c, FERRY_EINVAL, "unknown control action %d", (int)action);
	req = action == FERRY_CONTROL_DISPOSE
		  ? json_pack("{s:s}", "op", "dispose")
		  : json_pack("{s:s,s:s}", "op", "control", "action", names[action]);
	if (!req)
		return ferry__seterr(c, FERRY_ENOMEM, "out of memory");
	if ((rc = selection_fields(c, sel, wf, req))) {
		json_decref(req);
		return rc;
	}
	if ((rc = ferry__call_locked(c, req, 0, &reply)))
		return rc;
	ferry__control_result(reply, out);
	json_decref(reply);
	return 0;
}

FERRY_EXPORT int ferry_control_select(ferry_conn *c, const struct ferry_selection *sel,
				      enum ferry_control action, struct ferry_control_result *out)
{
	return control_select(c, sel, 0, action, out);
}

FERRY_EXPORT int ferry_control_workflow(ferry_conn *c, int64_t wf,
					const struct ferry_selection *sel,
					enum ferry_control action, struct ferry_control_result *out)
{
	static const struct ferry_selection every = {0};

	if (wf < 1)
		return ferry__seterr(c, FERRY_EINVAL, "invalid workflow id %lld", (long long)wf);
	return control_select(c, sel ? sel : &every, wf, action, out);
}

FERRY_EXPORT int ferry_read_output(ferry_conn *c, ferry_job_id id, enum ferry_stream stream,
				   uint64_t offset, void *buf, size_t cap, size_t *got, int *ended)
{
	json_t *req, *reply = NULL;
	const void *bin = NULL;
	size_t binlen = 0;
	int rc;

	*got = 0;
	if (stream != FERRY_STDOUT && stream != FERRY_STDERR)
		return ferry__seterr(c, FERRY_EINVAL, "invalid stream %d", (int)stream);
	if (offset > INT64_MAX)
		return ferry__seterr(c, FERRY_EINVAL, "offset too large");
	if (cap > FERRY_READ_MAX)
		cap = FERRY_READ_MAX;
	req = json_pack("{s:s,s:I,s:s,s:I,s:I}", "op", "read", "id", (json_int_t)id, "stream",
			stream == FERRY_STDOUT ? "stdout" : "stderr", "offset", (json_int_t)offset,
			"max", (json_int_t)cap);
	if (!req)
		return ferry__seterr(c, FERRY_ENOMEM, "out of memory");
	/* the bytes are where the connection read them: copied out under its lock */
	pthread_mutex_lock(&c->mu);
	rc = ferry__call(c, req, 0, &reply, &bin, &binlen);
	if (!rc && binlen > cap)
		rc = ferry__seterr(c, FERRY_EPROTO, "the engine sent more than asked");
	else if (!rc && binlen)
		memcpy(buf, bin, binlen);
	pthread_mutex_unlock(&c->mu);
	json_decref(req);
	if (!rc) {
		*got = binlen;
		if (ended)
			*ended = json_is_true(json_object_get(reply, "ended"));
	}
	json_decref(reply);
	return rc;
}

/*
 * Opens the file the engine names, if it is the one the engine opened
 * (same device and inode): else this process sees another file system
 * than the engine (a container), and the bytes must come through it.
 */
static int open_located(ferry_conn *c, json_t *reply, int *fd)
{
	const char *path = json_string_value(json_object_get(reply, "path"));
	json_int_t dev = json_integer_value(json_object_get(reply, "dev"));
	json_int_t ino = json_integer_value(json_object_get(reply, "ino"));
	struct stat st;

	*fd = -1;
	if (!path)
		return 0; /* nothing written yet */
	/* O_NOCTTY: the path may be a terminal, never to become ours */
	*fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);
	if (*fd < 0 && errno == ENOENT)
		return 0;
	if (*fd < 0)
		return ferry__seterr(c, FERRY_EIO, "cannot open '%s': %s", path, strerror(errno));
	if (fstat(*fd, &st) == 0 && S_ISREG(st.st_mode) && (json_int_t)st.st_dev == dev &&
	    (json_int_t)st.st_ino == ino)
		return 0;
	close(*fd);
	*fd = -1;
	return ferry__seterr(c, FERRY_EUNSUPPORTED,
			     "'%s' is not here the file the engine has: read it through the engine",
			     path);
}

FERRY_EXPORT int ferry_open_output(ferry_conn *c, ferry_job_id id, enum ferry_stream stream,
				   int *fd, int *ended)
{
	json_t *req, *reply = NULL;
	int rc;

	*fd = -1;
	if (stream != FERRY_STDOUT && stream != FERRY_STDERR)
		return ferry__seterr(c, FERRY_EINVAL, "invalid stream %d", (int)stream);
	if (c->cfg.host)
		return ferry__seterr(c, FERRY_EUNSUPPORTED,
				     "resource '%s' is remote: its output comes through the engine",
				     c->resource);
	req = json_pack("{s:s,s:I,s:s,s:i,s:i,s:b}", "op", "read", "id", (json_int_t)id, "stream",
			stream == FERRY_STDOUT ? "stdout" : "stderr", "offset", 0, "max", 0, "path",
			1);
	if ((rc = ferry__call_locked(c, req, 0, &reply)))
		return rc;
	if (ended)
		*ended = json_is_true(json_object_get(reply, "ended"));
	rc = open_located(c, reply, fd);
	json_decref(reply);
	return rc;
}

static struct out_cursor *cursor(ferry_conn *c, ferry_job_id id, int stream)
{
	struct out_cursor *k;

	for (k = c->cursors; k; k = k->next)
		if (k->id == id && k->stream == stream)
			return k;
	k = calloc(1, sizeof(*k));
	if (!k)
		return NULL;
	k->id = id;
	k->stream = stream;
	k->next = c->cursors;
	c->cursors = k;
	return k;
}

static int take_line(struct out_cursor *k, size_t len, size_t skip, char **line)
{
	char *l = malloc(len + 1);

	if (!l)
		return FERRY_ENOMEM;
	memcpy(l, k->buf, len);
	l[len] = '\0';
	memmove(k->buf, k->buf + len + skip, k->len - len - skip);
	k->len -= len + skip;
	*line = l;
	return 0;
}

static int readline(ferry_conn *c, ferry_job_id id, int stream, char **line)
{
	struct out_cursor *k = cursor(c, id, stream);
	char chunk[65536];

	*line = NULL;
	if (!k)
		return ferry__seterr(c, FERRY_ENOMEM, "out of memory");
	for (;;) {
		char *nl = k->len ? memchr(k->buf, '\n', k->len) : NULL, *nb;
		size_t got = 0;
		int ended = 0, rc;

		if (nl)
			return take_line(k, (size_t)(nl - k->buf), 1, line);
		rc = ferry_read_output(c, id, (enum ferry_stream)stream, k->offset, chunk,
				       sizeof(chunk), &got, &ended);
		if (rc)
			return rc;
		if (!got) {
			if (!ended)
				return ferry__seterr(c, FERRY_EAGAIN, "no complete line yet");
			if (k->len)
				return take_line(k, k->len, 0, line);
			return ferry__seterr(c, FERRY_EEOF, "job %lld ended; all was read",
					     (long long)id);
		}
		nb = realloc(k->buf, k->len + got);
		if (!nb)
			return ferry__seterr(c, FERRY_ENOMEM, "out of memory");
		k->buf = nb;
		memcpy(k->buf + k->len, chunk, got);
		k->len += got;
		k->offset += got;
	}
}

FERRY_EXPORT int ferry_stdout_readline(ferry_conn *c, ferry_job_id id, char **line)
{
	return readline(c, id, FERRY_STDOUT, line);
}

FERRY_EXPORT int ferry_stderr_readline(ferry_conn *c, ferry_job_id id, char **line)
{
	return readline(c, id, FERRY_STDERR, line);
}

FERRY_EXPORT int ferry_set_timeout(ferry_conn *c, double seconds)
{
	if (!(seconds >= 0 && seconds <= 1e9))
		return ferry__seterr(c, FERRY_EINVAL, "invalid timeout %g s", seconds);
	pthread_mutex_lock(&c->mu);
	c->retry_budget_s = seconds;
	c->errmsg[0] = '\0';
	pthread_mutex_unlock(&c->mu);
	return 0;
}

FERRY_EXPORT int ferry_ping(ferry_conn *c)
{
	return ferry__call_locked(c, json_pack("{s:s}", "op", "ping"), 0, NULL);
}

FERRY_EXPORT int ferry_shutdown_engine(ferry_conn *c)
{
	return ferry__call_locked(c, json_pack("{s:s}", "op", "shutdown"), 0, NULL);
}

/* Asks the bridge on the resource's host, which does not start the engine. */
static int remote_engine_running(const char *resource_id, const char *config_file, long *pid,
				 char *msg, size_t msglen)
{
	ferry_conn *c = NULL;
	int rc = conn_new(resource_id, NULL, NULL, config_file, &c);

	if (!rc) {
		c->no_start = 1;
		rc = ferry__open(c);
		if (!rc && pid)
			*pid = c->engine_pid;
		if (!rc && msg)
			snprintf(msg, msglen, "%s", c->warnings ? c->warnings : "");
		rc = !rc ? 1 : c->ssh_exit == 3 ? 0 : rc;
	}
	if (rc < 0 && msg && c)
		snprintf(msg, msglen, "%s", c->errmsg);
	ferry_disconnect(c);
	return rc;
}

/* The running local engine's warnings into msg, from a hello that starts no engine. */
static void local_warnings(const char *resource_id, const char *config_file, char *msg,
			   size_t msglen)
{
	ferry_conn *c = NULL;

	if (conn_new(resource_id, NULL, NULL, config_file, &c) == 0) {
		c->no_start = 1;
		if (ferry__open(c) == 0)
			snprintf(msg, msglen, "%s", c->warnings ? c->warnings : "");
	}
	ferry_disconnect(c);
}

FERRY_EXPORT int ferry_engine_running(const char *resource_id, const char *config_file, long *pid)
{
	return ferry_engine_status(resource_id, config_file, pid, NULL, 0);
}

FERRY_EXPORT int ferry_engine_status(const char *resource_id, const char *config_file, long *pid,
				     char *msg, size_t msglen)
{
	struct ferry_resource_cfg cfg = {0};
	char err[512], *state, *path, *text = NULL;
	const char *res = resource_id ? resource_id : "local";
	long p = 0;
	int rc = 0, remote;

	if (msg && msglen)
		msg[0] = '\0';
	if (ferry__resolve_resource(config_file, res, &cfg, err, sizeof(err)) < 0) {
		if (msg)
			snprintf(msg, msglen, "%s", err);
		return FERRY_ECONFIG;
	}
	remote = cfg.host != NULL;
	ferry__resource_cfg_release(&cfg);
	if (remote)
		return remote_engine_running(resource_id, config_file, pid, msg, msglen);
	state = ferry__state_dir(res);
	path = state ? ferry__asprintf("%s/ferryd.pid", state) : NULL;
	free(state);
	if (!path)
		return FERRY_ECONFIG;
	if (ferry__read_file(path, 64, &text, NULL) == 0) {
		p = strtol(text, NULL, 10);
		/* the pid file outlives a killed engine: check the process too */
		if (p > 0 && kill((pid_t)p, 0) == 0) {
			char stat[64], *st = NULL, *paren;
			/* "PID (ferryd) S ...": alive, not a zombie awaiting its reaper */
			snprintf(stat, sizeof(stat), "/proc/%ld/stat", p);
			if (ferry__read_file(stat, 4096, &st, NULL) == 0 &&
			    strstr(st, "(ferryd)") && (paren = strrchr(st, ')')) &&
			    paren[1] == ' ' && paren[2] != 'Z' && paren[2] != 'X')
				rc = 1;
			free(st);
		}
	}
	free(text);
	free(path);
	if (rc && pid)
		*pid = p;
	if (rc && msg && msglen)
		local_warnings(resource_id, config_file, msg, msglen);
	return rc;
}
