/*
 * transfer.c - libferry's side of file transfers (docs/transfers.md): what
 * sends (transfer-send.c) and retrieves (transfer-get.c) share, declared
 * in transfer.h, and the calls that move no bytes: registering an output,
 * cancelling, and the records of transfers.
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "copy.h"
#include "jbytes.h"
#include "partfile.h"
#include "transfer.h"
#include "util.h"

void ferry__progress_init(struct ferry__progress *p, ferry_conn *c)
{
	memset(p, 0, sizeof(*p));
	pthread_mutex_lock(&c->mu);
	p->fn = c->progress_fn;
	p->ud = c->progress_ud;
	pthread_mutex_unlock(&c->mu);
}

void ferry__progress_at(struct ferry__progress *p, int64_t done)
{
	if (!p->fn)
		return;
	done = done < p->last ? p->last : done > p->total ? p->total : done;
	if (p->started && done == p->last)
		return;
	p->started = 1;
	p->last = done;
	p->fn(p->ud, done, p->total);
}

FERRY_EXPORT int ferry_set_progress(ferry_conn *c, ferry_progress_fn fn, void *userdata)
{
	pthread_mutex_lock(&c->mu);
	c->progress_fn = fn;
	c->progress_ud = userdata;
	c->errmsg[0] = '\0';
	pthread_mutex_unlock(&c->mu);
	return 0;
}

static void progress_cb(void *arg, int64_t upto)
{
	struct ferry__progress *p = arg;

	ferry__progress_at(p, p->base + upto);
}

int ferry__copy_progress(int in, int out, int64_t off, int64_t end, struct ferry_hash *h,
			 struct ferry__progress *p)
{
	struct ferry__copy cp = {.in = in,
				 .out = out,
				 .off = off,
				 .end = end,
				 .h = h,
				 .progress = p->fn ? progress_cb : NULL,
				 .arg = p,
				 .step = CHUNK};

	return ferry__copy_hashed(&cp);
}

int ferry__pipeline_send(struct ferry__pipeline *q, json_t *req, const void *mem, int fd,
			 int64_t off, size_t n, unsigned *at)
{
	/* data sent from the page cache: a change since the read fails the check */
	int e = !req	    ? FERRY_ENOMEM
		: n && !mem ? ferry__send_request_file(q->c, req, fd, off, n)
			    : ferry__send_request(q->c, req, mem, n);

	if (e) {
		q->broken = q->link_broke = 1;
		return e;
	}
	*at = (q->head + (unsigned)q->inflight++) % WINDOW;
	return 0;
}

int ferry__pipeline_recv(struct ferry__pipeline *q, unsigned *at, json_t **r, const void **bin,
			 size_t *len)
{
	int e;

	*r = NULL;
	*at = q->head++ % WINDOW;
	q->inflight--;
	e = ferry__recv_reply(q->c, r, bin, len);
	if (e) {
		q->broken = 1;
		q->link_broke = e == FERRY_EIO;
		return e;
	}
	if (!json_is_true(json_object_get(*r, "ok")))
		return ferry__reply_error(q->c, *r);
	return 0;
}

int ferry__pipeline_end(struct ferry__pipeline *q, int rc)
{
	if (!q->broken)
		return rc;
	ferry__close(q->c);
	q->c->lost = 1;
	rc = q->link_broke ? FERRY_ESTATE : rc;
	q->inflight = q->broken = q->link_broke = 0;
	return rc;
}

int ferry__errno_code(int e)
{
	return e == ENOMEM ? FERRY_ENOMEM : e == EACCES || e == EPERM ? FERRY_EPERM : FERRY_EIO;
}

char *ferry__absolute(const char *p)
{
	char cwd[PATH_MAX];

	if (p[0] == '/')
		return strdup(p);
	if (!getcwd(cwd, sizeof(cwd)))
		return NULL;
	return ferry__asprintf("%s/%s", cwd, p);
}

const char *ferry__base_name(const char *p)
{
	size_t len = strlen(p);
	static __thread char buf[NAME_MAX + 1];

	while (len > 1 && p[len - 1] == '/')
		len--;
	const char *end = p + len, *b = end;
	while (b > p && b[-1] != '/')
		b--;
	snprintf(buf, sizeof(buf), "%.*s", (int)(end - b), b);
	return buf;
}

char *ferry__expected_root(ferry_conn *c)
{
	char *state = c->cfg.transfer_root ? NULL : ferry__state_dir(c->resource);
	char *want = c->cfg.transfer_root ? strdup(c->cfg.transfer_root)
		     : state		  ? ferry__asprintf("%s/transfers", state)
					  : NULL;
	char *real = want ? realpath(want, NULL) : NULL;

	free(state);
	free(want);
	return real;
}

int ferry__clean_rel(const char *p)
{
	if (!p || !*p || *p == '/')
		return 0;
	for (;;) {
		size_t n = strcspn(p, "/");
		if (n == 0 || (n == 1 && p[0] == '.') || (n == 2 && p[0] == '.' && p[1] == '.'))
			return 0;
		if (!p[n])
			return 1;
		p += n + 1;
	}
}

int ferry__part_expected(const char *root, const char *rel, const char *part)
{
	size_t rl = root ? strlen(root) : 0, dl;
	const char *slash = strrchr(rel, '/'), *rest;
	char *want;
	int ok;

	if (!root || !part || strncmp(part, root, rl) || part[rl] != '/')
		return 0;
	rest = part + rl + 1;
	dl = strcspn(rest, "/"); /* the transfer's directory */
	if (!rest[dl] || (dl == 1 && rest[0] == '.') || (dl == 2 && !strncmp(rest, "..", 2)) ||
	    !ferry__clean_rel(rel))
		return 0;
	want = ferry__asprintf("%.*s.%s" FERRY_PART_SUFFIX, slash ? (int)(slash - rel + 1) : 0, rel,
			       slash ? slash + 1 : rel);
	ok = dl > 0 && want && !strcmp(rest + dl + 1, want);
	free(want);
	return ok;
}

int ferry__server_arg(ferry_conn *c, const char *server_path, char **sp)
{
	if (!server_path)
		return ferry__seterr(c, FERRY_EINVAL, "no server path");
	*sp = !c->cfg.host ? ferry__absolute(server_path) : strdup(server_path);
	if (!*sp)
		return errno == ENOMEM ? ferry__seterr(c, FERRY_ENOMEM, "out of memory")
				       : ferry__seterr(c, FERRY_EINVAL, "cannot resolve '%s': %s",
						       server_path, strerror(errno));
	return 0;
}

int ferry__reply_path(ferry_conn *c, json_t *reply, char **server_path)
{
	if (!(*server_path = strdup(json_string_value(json_object_get(reply, "server_path")))))
		return ferry__seterr(c, FERRY_ENOMEM, "out of memory");
	return 0;
}

FERRY_EXPORT int ferry_register_transfer(ferry_conn *c, const char *local_path, int disposal_hours,
					 char **server_path)
{
	char *abs = local_path ? ferry__absolute(local_path) : NULL, key[33];
	json_t *reply = NULL;
	int rc;

	*server_path = NULL;
	c->errmsg[0] = '\0';
	if (!abs)
		return ferry__seterr(c, FERRY_EINVAL, "no usable local path");
	if (disposal_hours < 0) {
		free(abs);
		return ferry__seterr(c, FERRY_EINVAL, "negative disposal time");
	}
	/* a replay after a lost link must not register it twice */
	ferry__random_hex(key, 16);
	rc =
	    ferry__call_locked(c,
			       json_pack("{s:s,s:s,s:[o],s:o,s:i}", "op", "transfer_register",
					 "key", key, "local_paths", ferry__json_bytes(abs), "name",
					 ferry__json_bytes(ferry__base_name(abs)), "disposal_hours",
					 disposal_hours > 0 ? disposal_hours : 168),
			       0, &reply);
	free(abs);
	if (!rc)
		rc = ferry__reply_path(c, reply, server_path);
	json_decref(reply);
	return rc;
}

FERRY_EXPORT int ferry_cancel_transfer(ferry_conn *c, const char *server_path, unsigned flags)
{
	char *sp;
	int rc;

	c->errmsg[0] = '\0';
	if ((rc = ferry__server_arg(c, server_path, &sp)))
		return rc;
	rc = ferry__call_locked(c,
				json_pack("{s:s,s:o,s:b}", "op", "transfer_cancel", "server_path",
					  ferry__json_bytes(sp), "force",
					  (flags & FERRY_FORCE) != 0),
				0, NULL);
	free(sp);
	return rc;
}

/* ---- records ---- */

/*
 * *out: the record the engine's JSON object o describes. 0, FERRY_ENOMEM,
 * or FERRY_EPROTO for a kind or state the library has no value for (an
 * engine of another version), with the message set.
 */
static int info_of(ferry_conn *c, json_t *o, struct ferry_transfer_info **out)
{
	struct ferry_transfer_info *t = calloc(1, sizeof(*t));
	json_t *lps = json_object_get(o, "local_paths"), *jobs = json_object_get(o, "jobs"), *e;
	const char *kind = json_string_value(json_object_get(o, "kind"));
	const char *state = json_string_value(json_object_get(o, "state"));
	size_t i;

	*out = NULL;
	if (!t)
		return ferry__seterr(c, FERRY_ENOMEM, "out of memory");
	if (ferry_transfer_kind_from_name(kind, &t->kind) ||
	    ferry_transfer_state_from_name(state, &t->state)) {
		free(t);
		return ferry__seterr(c, FERRY_EPROTO,
				     "the engine sent a transfer of kind '%s' and state '%s', "
				     "one of which this library does not know",
				     kind ? kind : "", state ? state : "");
	}
	t->server_path = ferry__jstrdup(o, "server_path");
	t->hash = ferry__jstrdup(o, "hash");
	t->message = ferry__jstrdup(o, "message");
	t->size = json_integer_value(json_object_get(o, "size"));
	t->done = json_integer_value(json_object_get(o, "done"));
	t->received = json_integer_value(json_object_get(o, "received"));
	t->created_at = json_number_value(json_object_get(o, "created_at"));
	t->ended_at = json_number_value(json_object_get(o, "ended_at"));
	t->deadline = json_number_value(json_object_get(o, "deadline"));
	t->disposal_hours = (int)json_integer_value(json_object_get(o, "disposal_hours"));
	t->local_paths = calloc(json_array_size(lps) + 1, sizeof(char *));
	t->jobs = calloc(json_array_size(jobs) + 1, sizeof(*t->jobs));
	if (!t->server_path || !t->local_paths || !t->jobs) {
		ferry_transfer_info_free(t);
		return ferry__seterr(c, FERRY_ENOMEM, "out of memory");
	}
	json_array_foreach(lps, i, e) t->local_paths[i] = strdup(json_string_value(e));
	json_array_foreach(jobs, i, e) t->jobs[t->njobs++] =
	    json_integer_value(json_object_get(e, "id"));
	*out = t;
	return 0;
}

FERRY_EXPORT void ferry_transfer_info_free(struct ferry_transfer_info *t)
{
	if (!t)
		return;
	free(t->server_path);
	for (size_t i = 0; t->local_paths && t->local_paths[i]; i++)
		free(t->local_paths[i]);
	free(t->local_paths);
	free(t->hash);
	free(t->jobs);
	free(t->message);
	free(t);
}

FERRY_EXPORT void ferry_transfer_list_free(struct ferry_transfer_info **list, size_t n)
{
	for (size_t i = 0; list && i < n; i++)
		ferry_transfer_info_free(list[i]);
	free(list);
}

FERRY_EXPORT int ferry_transfer_info(ferry_conn *c, const char *server_path,
				     struct ferry_transfer_info **info)
{
	json_t *reply = NULL;
	char *sp;
	int rc;

	*info = NULL;
	c->errmsg[0] = '\0';
	if ((rc = ferry__server_arg(c, server_path, &sp)))
		return rc;
	rc = ferry__call_locked(
	    c, json_pack("{s:s,s:o}", "op", "transfer_info", "server_path", ferry__json_bytes(sp)),
	    0, &reply);
	free(sp);
	if (!rc)
		rc = info_of(c, json_object_get(reply, "transfer"), info);
	json_decref(reply);
	return rc;
}

FERRY_EXPORT int ferry_transfers(ferry_conn *c, struct ferry_transfer_info ***list, size_t *n)
{
	json_t *reply = NULL, *a, *e;
	size_t i;
	int rc;

	*list = NULL;
	*n = 0;
	c->errmsg[0] = '\0';
	rc = ferry__call_locked(c, json_pack("{s:s}", "op", "transfers"), 0, &reply);
	if (rc)
		return rc;
	a = json_object_get(reply, "transfers");
	*list = calloc(json_array_size(a) + 1, sizeof(**list));
	if (!*list) {
		json_decref(reply);
		return ferry__seterr(c, FERRY_ENOMEM, "out of memory");
	}
	json_array_foreach(a, i, e)
	{
		if ((rc = info_of(c, e, &(*list)[i]))) {
			ferry_transfer_list_free(*list, i);
			*list = NULL;
			json_decref(reply);
			return rc;
		}
		*n = i + 1;
	}
	json_decref(reply);
	return 0;
}
