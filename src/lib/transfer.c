/*
 * transfer.c - libferry's side of file transfers (docs/transfers.md).
 *
 * A send first lists what it sends (the manifest: names, sizes, modes,
 * times), then asks the engine where each file stands, so that the next
 * call after an interruption goes on from the bytes the engine has. Bytes
 * travel in chunks inside the connection, each hashed as it is read, the
 * file's checksum with the last; when the engine is on this host (a local
 * resource) the client copies into the engine's partial file itself
 * (copy.c), hashing as it goes, and the engine still checks what it did
 * not see written before it names the file.
 *
 * A retrieve writes into a temporary name beside the destination, checks
 * the checksum the engine gives, fsyncs and renames.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "copy.h"
#include "hash.h"
#include "internal.h"
#include "util.h"

#define CHUNK	    (1u << 20)
#define WINDOW	    32 /* chunks in flight: the link never waits for the engine */
#define PART_SUFFIX ".ferry-part"

/*
 * A call's progress (ferry_set_progress): base is the bytes of the other
 * files, present or moved, so that one file's offset gives the whole's;
 * last keeps done from going back when a retry starts a file over.
 */
struct progress {
	ferry_progress_fn fn;
	void *ud;
	int64_t total, base, last;
	int started;
};

static void progress_init(struct progress *p, ferry_conn *c)
{
	memset(p, 0, sizeof(*p));
	pthread_mutex_lock(&c->mu);
	p->fn = c->progress_fn;
	p->ud = c->progress_ud;
	pthread_mutex_unlock(&c->mu);
}

static void progress_at(struct progress *p, int64_t done)
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

struct lfile {
	char *abs; /* local path */
	char *rel; /* path in the transfer: top name / ... */
	int is_dir;
	int64_t size;
	int mode;
	int64_t mtime_ns, ctime_ns;
	uint64_t ino; /* with the times and size: the content's identity (send_key) */
};

struct manifest {
	struct lfile *v;
	size_t n, cap;
};

static void manifest_free(struct manifest *m)
{
	for (size_t i = 0; i < m->n; i++) {
		free(m->v[i].abs);
		free(m->v[i].rel);
	}
	free(m->v);
	memset(m, 0, sizeof(*m));
}

static int errno_code(int e)
{
	return e == ENOMEM ? FERRY_ENOMEM : e == EACCES || e == EPERM ? FERRY_EPERM : FERRY_EIO;
}

static int add_entry(struct ferry_conn *c, struct manifest *m, const char *abs, const char *rel,
		     int follow);

static int add_dir(struct ferry_conn *c, struct manifest *m, const char *abs, const char *rel)
{
	struct dirent **names = NULL;
	int n = scandir(abs, &names, NULL, alphasort), rc = 0;

	if (n < 0)
		return ferry__seterr(c, errno_code(errno), "cannot list '%s': %s", abs,
				     strerror(errno));
	for (int i = 0; i < n; i++) {
		const char *d = names[i]->d_name;
		if (!rc && strcmp(d, ".") && strcmp(d, "..")) {
			char *ca = ferry__asprintf("%s/%s", abs, d),
			     *cr = ferry__asprintf("%s/%s", rel, d);
			rc = ca && cr ? add_entry(c, m, ca, cr, 0)
				      : ferry__seterr(c, FERRY_ENOMEM, "out of memory");
			free(ca);
			free(cr);
		}
		free(names[i]);
	}
	free(names);
	return rc;
}

static int64_t ns_of(struct timespec ts)
{
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* Adds a path (and a directory's contents). Files are hashed as they are sent. */
static int add_entry(struct ferry_conn *c, struct manifest *m, const char *abs, const char *rel,
		     int follow)
{
	struct stat st;
	struct lfile *f;

	if ((follow ? stat(abs, &st) : lstat(abs, &st)) < 0)
		return ferry__seterr(c, errno == ENOENT ? FERRY_EINVAL : errno_code(errno),
				     "cannot send '%s': %s", abs, strerror(errno));
	if (S_ISLNK(st.st_mode))
		return ferry__seterr(c, FERRY_EINVAL,
				     "cannot send '%s': it is a symbolic link (links are not sent)",
				     abs);
	if (!S_ISREG(st.st_mode) && !S_ISDIR(st.st_mode))
		return ferry__seterr(c, FERRY_EINVAL,
				     "cannot send '%s': not a regular file or directory", abs);
	if (m->n == m->cap) {
		size_t cap = m->cap ? 2 * m->cap : 16;
		struct lfile *v = realloc(m->v, cap * sizeof(*v));
		if (!v)
			return ferry__seterr(c, FERRY_ENOMEM, "out of memory");
		m->v = v;
		m->cap = cap;
	}
	f = &m->v[m->n];
	memset(f, 0, sizeof(*f));
	f->abs = strdup(abs);
	f->rel = strdup(rel);
	if (!f->abs || !f->rel) {
		free(f->abs);
		free(f->rel);
		return ferry__seterr(c, FERRY_ENOMEM, "out of memory");
	}
	m->n++;
	f->is_dir = S_ISDIR(st.st_mode);
	f->size = (int64_t)st.st_size;
	f->mode = (int)(st.st_mode & 07777);
	f->mtime_ns = ns_of(st.st_mtim);
	f->ctime_ns = ns_of(st.st_ctim);
	f->ino = (uint64_t)st.st_ino;
	if (f->is_dir) {
		f->size = 0;
		return add_dir(c, m, abs, rel);
	}
	if (access(abs, R_OK) < 0) /* refused now rather than after the others are sent */
		return ferry__seterr(c, errno_code(errno), "cannot read '%s': %s", abs,
				     strerror(errno));
	return 0;
}

/* An absolute path for the record: relative ones are taken from the cwd. */
static char *absolute(const char *p)
{
	char cwd[PATH_MAX];

	if (p[0] == '/')
		return strdup(p);
	if (!getcwd(cwd, sizeof(cwd)))
		return NULL;
	return ferry__asprintf("%s/%s", cwd, p);
}

static const char *base_name(const char *p)
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

static json_t *manifest_json(const struct manifest *m)
{
	json_t *a = json_array();

	for (size_t i = 0; a && i < m->n; i++) {
		const struct lfile *f = &m->v[i];
		json_t *o = f->is_dir
				? json_pack("{s:s,s:s,s:i,s:I}", "path", f->rel, "type", "dir",
					    "mode", f->mode, "mtime_ns", (json_int_t)f->mtime_ns)
				: json_pack("{s:s,s:s,s:I,s:i,s:I}", "path", f->rel, "type", "file",
					    "size", (json_int_t)f->size, "mode", f->mode,
					    "mtime_ns", (json_int_t)f->mtime_ns);
		if (!o || json_array_append_new(a, o)) {
			json_decref(a);
			return NULL;
		}
	}
	return a;
}

/*
 * The identity of a send: its local paths, and of each file its name,
 * size, mode, inode and times, the change time included (no program sets
 * it: any write moves it). Sending the same unchanged paths again finds
 * the transfer, without reading a byte; the content's checksum comes with
 * each file's last chunk.
 */
static void send_key(const struct manifest *m, json_t *lps, char key[FERRY_HASH_HEX])
{
	struct ferry_hash h;
	json_t *e;
	size_t i;
	char buf[128];

	if (ferry__hash_init(&h) < 0) {
		key[0] = '\0';
		return;
	}
	ferry__hash_update(&h, "send2", 6);
	json_array_foreach(lps, i, e)
	    ferry__hash_update(&h, json_string_value(e), json_string_length(e) + 1);
	for (i = 0; i < m->n; i++) {
		const struct lfile *f = &m->v[i];
		ferry__hash_update(&h, f->rel, strlen(f->rel) + 1);
		snprintf(buf, sizeof(buf), "%d %lld %o %lld %lld %llu", f->is_dir,
			 (long long)f->size, f->mode, (long long)f->mtime_ns,
			 f->is_dir ? 0LL : (long long)f->ctime_ns,
			 f->is_dir ? 0ULL : (unsigned long long)f->ino);
		ferry__hash_update(&h, buf, strlen(buf) + 1);
	}
	ferry__hash_final(&h, key);
}

/* One request under the connection's lock; consumes req. */
static int tcall(ferry_conn *c, json_t *req, const void *data, size_t len, json_t **reply,
		 void **bin, size_t *binlen)
{
	json_t *dummy = NULL;
	int rc;

	if (!req)
		return ferry__seterr(c, FERRY_ENOMEM, "out of memory");
	pthread_mutex_lock(&c->mu);
	rc = ferry__call_data(c, req, data, len, 0, reply ? reply : &dummy, bin, binlen);
	pthread_mutex_unlock(&c->mu);
	json_decref(req);
	json_decref(dummy);
	return rc;
}

/* Whether fd is still the file the manifest listed, unchanged. */
static int unchanged(const struct lfile *f, int fd)
{
	struct stat st;

	return fstat(fd, &st) == 0 && (int64_t)st.st_size == f->size &&
	       ns_of(st.st_mtim) == f->mtime_ns && ns_of(st.st_ctim) == f->ctime_ns &&
	       (uint64_t)st.st_ino == f->ino;
}

static int changed_err(ferry_conn *c, const struct lfile *f)
{
	return ferry__seterr(c, FERRY_EIO,
			     "'%s' changed while it was sent: send it again once it is written",
			     f->abs);
}

/*
 * Opens the source of f to send it from off, with *h fed what the engine
 * already has of it, read again from the source: the checksum is the
 * source's, so the engine's check also covers bytes an earlier call left.
 */
static int open_source(ferry_conn *c, const struct lfile *f, int64_t off, struct ferry_hash *h,
		       int *fd)
{
	int e;

	*fd = open(f->abs, O_RDONLY | O_CLOEXEC);
	if (*fd < 0)
		return ferry__seterr(c, errno_code(errno), "cannot read '%s': %s", f->abs,
				     strerror(errno));
	if (!unchanged(f, *fd)) {
		e = changed_err(c, f);
	} else if (ferry__hash_init(h) < 0) {
		e = ferry__seterr(c, FERRY_ENOMEM, "out of memory");
	} else {
		e = ferry__hash_update_fd(h, *fd, (uint64_t)off);
		if (!e)
			return 0;
		ferry__hash_release(h);
		e = ferry__seterr(c, FERRY_EIO, "cannot read '%s': %s", f->abs, strerror(-e));
	}
	close(*fd);
	*fd = -1;
	return e;
}

static void progress_cb(void *arg, int64_t upto)
{
	struct progress *p = arg;

	progress_at(p, p->base + upto);
}

/*
 * Copies the source from off to the end into the engine's partial file, on
 * this host. hash gets the source's checksum, prefix that of its first off
 * bytes, which the engine checks against what its part held before.
 */
static int copy_local(ferry_conn *c, const struct lfile *f, const char *part, int64_t off,
		      struct progress *p, char hash[FERRY_HASH_HEX], char prefix[FERRY_HASH_HEX])
{
	struct ferry_hash h;
	int in, out = -1, rc, e = 0;

	if ((rc = open_source(c, f, off, &h, &in)))
		return rc;
	if (ferry__hash_peek(&h, prefix) < 0) {
		rc = ferry__seterr(c, FERRY_ENOMEM, "out of memory");
		goto out;
	}
	out = open(part, O_WRONLY | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (out < 0) {
		rc = ferry__seterr(c, FERRY_EIO, "cannot write '%s': %s", part, strerror(errno));
		goto out;
	}
	struct ferry__copy cp = {.in = in,
				 .out = out,
				 .off = off,
				 .end = f->size,
				 .h = &h,
				 .progress = p->fn ? progress_cb : NULL,
				 .arg = p,
				 .step = CHUNK};
	e = ferry__copy_hashed(&cp);
	if (e == ENODATA || (!e && !unchanged(f, in)))
		rc = changed_err(c, f);
	else if (e)
		rc = ferry__seterr(c, FERRY_EIO, "cannot copy '%s' to '%s': %s", f->abs, part,
				   strerror(e));
out:
	if (rc)
		ferry__hash_release(&h);
	else
		ferry__hash_final(&h, hash);
	if (out >= 0)
		close(out);
	close(in);
	return rc;
}

/*
 * Puts in flight, over one or several files: the link does not wait for
 * the answer to a file's last chunk before the next file starts, which in
 * a tree of small files would cost a round trip per file. Answers come in
 * order, so a ring of the chunks' lengths tells what each one acknowledges.
 * All under the connection's lock, which the queue holds while it has puts
 * in flight.
 */
struct putq {
	ferry_conn *c;
	int inflight, locked;
	int broken, link_broke; /* no more answers: the stream is lost (link_broke: the link) */
	unsigned head;
	int64_t len[WINDOW]; /* bytes each put in flight brings the engine */
	int64_t acked;	     /* bytes of the transfer the engine has: the progress */
	int64_t sent;	     /* and those it will have once the puts in flight are answered */
	json_t **last;	     /* the last answer */
	struct progress *p;
};

/* Takes one answer; rc: the first error so far (the rest are read and dropped). */
static int putq_recv(struct putq *q, int rc)
{
	json_t *r = NULL;
	int e = ferry__recv_reply(q->c, &r, NULL, NULL);
	int64_t len = q->len[q->head++ % WINDOW];

	q->inflight--;
	if (e) {
		q->broken = 1;
		q->link_broke = e == FERRY_EIO;
		return rc ? rc : e;
	}
	if (!json_is_true(json_object_get(r, "ok"))) {
		int code = ferry__reply_error(q->c, r);
		json_decref(r);
		return rc ? rc : code;
	}
	json_decref(*q->last);
	*q->last = r;
	q->acked += len;
	progress_at(q->p, q->acked);
	return rc;
}

/*
 * Waits for every answer and lets the connection go. A lost stream closes
 * the connection, whose answers can no longer be told apart; a broken
 * link gives FERRY_ESTATE: the caller asks where the transfer stands
 * (which reconnects) and goes on from there.
 */
static int putq_drain(struct putq *q, int rc)
{
	while (q->inflight && !q->broken)
		rc = putq_recv(q, rc);
	if (q->broken) {
		ferry__close(q->c);
		q->c->lost = 1;
		rc = q->link_broke ? FERRY_ESTATE : rc;
		q->inflight = q->broken = q->link_broke = 0;
	}
	if (q->locked)
		pthread_mutex_unlock(&q->c->mu);
	q->locked = 0;
	return rc;
}

/*
 * Sends one put of n bytes of fd from off (none: n 0), waiting for room
 * first; its answer tells that the engine has credit bytes more.
 */
static int putq_send(struct putq *q, json_t *req, int fd, int64_t off, size_t n, int64_t credit)
{
	int rc = 0, e;

	if (!req)
		return ferry__seterr(q->c, FERRY_ENOMEM, "out of memory");
	if (!q->locked)
		pthread_mutex_lock(&q->c->mu);
	q->locked = 1;
	while (!rc && !q->broken && q->inflight == WINDOW)
		rc = putq_recv(q, rc);
	if (!rc && !q->broken) {
		/* sent from the page cache: a change since the read fails the check */
		e = n ? ferry__send_request_file(q->c, req, fd, off, n)
		      : ferry__send_request(q->c, req, NULL, 0);
		if (e) {
			rc = e;
			q->broken = q->link_broke = 1;
		} else {
			q->len[(q->head + (unsigned)q->inflight++) % WINDOW] = credit;
			q->sent += credit;
		}
	}
	json_decref(req);
	return rc;
}

/*
 * Streams file idx from off into q, hashing each chunk as it is read; the
 * last carries the checksum.
 */
static int stream_file(struct putq *q, int64_t id, size_t idx, const struct lfile *f, int64_t off)
{
	ferry_conn *c = q->c;
	char *buf = malloc(f->size - off < CHUNK ? (size_t)(f->size - off) + 1 : CHUNK);
	char hash[FERRY_HASH_HEX] = "";
	struct ferry_hash h = {0};
	int fd = -1, rc = 0, sent_last = 0;

	if (!buf)
		return ferry__seterr(c, FERRY_ENOMEM, "out of memory");
	if ((rc = open_source(c, f, off, &h, &fd)))
		goto out;
	while (!rc && !sent_last) {
		size_t want = f->size - off < CHUNK ? (size_t)(f->size - off) : CHUNK;
		ssize_t n = want ? pread(fd, buf, want, off) : 0;
		if (n < 0 || (size_t)n != want) {
			rc = n < 0 ? ferry__seterr(c, FERRY_EIO, "cannot read '%s': %s", f->abs,
						   strerror(errno))
				   : changed_err(c, f);
			break;
		}
		ferry__hash_update(&h, buf, (size_t)n);
		sent_last = off + n == f->size;
		if (sent_last && !unchanged(f, fd)) {
			rc = changed_err(c, f);
			break;
		}
		if (sent_last)
			ferry__hash_final(&h, hash);
		rc = putq_send(q,
			       json_pack("{s:s,s:I,s:I,s:I,s:s*}", "op", "transfer_put", "id",
					 (json_int_t)id, "file", (json_int_t)idx, "offset",
					 (json_int_t)off, "hash", sent_last ? hash : NULL),
			       fd, off, (size_t)n, n);
		off += n;
	}
out:
	ferry__hash_release(&h); /* when the last chunk was not reached */
	free(buf);
	if (fd >= 0)
		close(fd);
	return rc;
}

/*
 * Sends file idx from off; its last put, with the checksum, makes the
 * engine check it. On this host the client copies the bytes itself, and
 * the put that says so joins the queue too: the engine checks and names
 * one file while the next is copied.
 */
static int send_one(struct putq *q, int64_t id, size_t idx, const struct lfile *f, int64_t off,
		    const char *part)
{
	char hash[FERRY_HASH_HEX], prefix[FERRY_HASH_HEX];
	ferry_conn *c = q->c;
	int rc;

	if (c->cfg.host || !part || !*part)
		return stream_file(q, id, idx, f, off);
	q->p->base = q->sent - off;
	if ((rc = copy_local(c, f, part, off, q->p, hash, prefix)))
		return rc;
	return putq_send(q,
			 json_pack("{s:s,s:I,s:I,s:I,s:s,s:I,s:s*}", "op", "transfer_put", "id",
				   (json_int_t)id, "file", (json_int_t)idx, "offset",
				   (json_int_t)f->size, "hash", hash, "copied_from",
				   (json_int_t)off, "prefix_hash", off ? prefix : NULL),
			 -1, 0, 0, f->size - off);
}

/* Asks for (or creates) the transfer; *reply has where each file stands. */
static int begin_send(ferry_conn *c, json_t *lps, const struct manifest *m, int hours,
		      json_t **reply)
{
	char key[FERRY_HASH_HEX];
	json_t *files = manifest_json(m);

	send_key(m, lps, key);
	if (!files || !key[0]) {
		json_decref(files);
		return ferry__seterr(c, FERRY_ENOMEM, "out of memory");
	}
	return tcall(c,
		     json_pack("{s:s,s:s,s:O,s:i,s:o}", "op", "transfer_send", "key", key,
			       "local_paths", lps, "disposal_hours", hours > 0 ? hours : 168,
			       "files", files),
		     NULL, 0, reply, NULL, NULL);
}

/* Sends what the engine lacks, as its reply to transfer_send tells. */
static int send_missing(ferry_conn *c, const struct manifest *m, json_t *reply, json_t **last,
			struct progress *p)
{
	json_t *st = json_object_get(reply, "files");
	int64_t id = json_integer_value(json_object_get(reply, "id")), present = 0;
	int rc = 0;

	for (size_t i = 0; i < m->n; i++) {
		json_t *f = json_array_get(st, i);
		present += json_is_true(json_object_get(f, "complete"))
			       ? m->v[i].size
			       : json_integer_value(json_object_get(f, "done"));
	}
	progress_at(p, present);
	struct putq q = {.c = c, .acked = present, .sent = present, .last = last, .p = p};
	for (size_t i = 0; !rc && i < m->n; i++) {
		json_t *f = json_array_get(st, i);
		int64_t done = json_integer_value(json_object_get(f, "done"));
		if (m->v[i].is_dir || json_is_true(json_object_get(f, "complete")))
			continue;
		rc = send_one(&q, id, i, &m->v[i], done,
			      json_string_value(json_object_get(f, "part_path")));
	}
	return putq_drain(&q, rc);
}

static int is_state(json_t *reply, const char *state)
{
	const char *st = json_string_value(json_object_get(reply, "state"));

	return st && !strcmp(st, state);
}

static int send_all(ferry_conn *c, json_t *lps, const struct manifest *m, int hours,
		    char **server_path)
{
	json_t *reply = NULL, *last = NULL;
	struct progress p;
	int rc = 0;

	progress_init(&p, c);
	for (size_t i = 0; i < m->n; i++)
		p.total += m->v[i].size;

	/*
	 * A chunk refused as out of place (a replay after a lost link), or a
	 * link that broke mid-file: ask where it stands (reconnecting within
	 * the connection's timeout) and go on from there.
	 */
	for (int attempt = 0; attempt < 1000; attempt++) {
		json_decref(reply);
		reply = NULL;
		rc = begin_send(c, lps, m, hours, &reply);
		if (rc)
			break;
		rc = send_missing(c, m, reply, &last, &p);
		if (rc != FERRY_ESTATE)
			break;
	}
	if (!rc && last && json_is_true(json_object_get(last, "complete")) &&
	    is_state(last, "ready")) {
		/* the last put made it ready: its path is the one the engine gave */
		if (!(*server_path =
			  strdup(json_string_value(json_object_get(reply, "server_path")))))
			rc = ferry__seterr(c, FERRY_ENOMEM, "out of memory");
	} else if (!rc) {
		json_t *again = NULL;
		/* where it stands now: every file checked, the transfer ready */
		rc = begin_send(c, lps, m, hours, &again);
		/* retrieved: a send that was also fetched back since, still on the server */
		if (!rc && !is_state(again, "ready") && !is_state(again, "retrieved"))
			rc = ferry__seterr(c, FERRY_EIO, "transfer '%s' is %s after sending it all",
					   json_string_value(json_object_get(again, "server_path")),
					   json_string_value(json_object_get(again, "state")));
		if (!rc && !(*server_path =
				 strdup(json_string_value(json_object_get(again, "server_path")))))
			rc = ferry__seterr(c, FERRY_ENOMEM, "out of memory");
		json_decref(again);
	}
	if (!rc)
		progress_at(&p, p.total); /* also when nothing was left to send */
	json_decref(reply);
	json_decref(last);
	return rc;
}

FERRY_EXPORT int ferry_send_files(ferry_conn *c, const char *const *local_paths, size_t n,
				  int disposal_hours, char **server_path)
{
	struct manifest m = {0};
	json_t *lps = json_array();
	int rc = 0;

	*server_path = NULL;
	c->errmsg[0] = '\0';
	if (!n || !lps) {
		json_decref(lps);
		return ferry__seterr(c, n ? FERRY_ENOMEM : FERRY_EINVAL, "no file to send");
	}
	if (disposal_hours < 0)
		return ferry__seterr(c, FERRY_EINVAL, "negative disposal time");
	for (size_t i = 0; !rc && i < n; i++) {
		char *abs = local_paths[i] ? absolute(local_paths[i]) : NULL;
		const char *b = abs ? base_name(abs) : "";
		if (!abs)
			rc = ferry__seterr(c, FERRY_EINVAL, "cannot send file %zu: no usable path",
					   i);
		else if (!*b || !strcmp(b, ".") || !strcmp(b, ".."))
			rc = ferry__seterr(c, FERRY_EINVAL, "cannot send '%s': no base name", abs);
		for (size_t k = 0; !rc && k < m.n; k++)
			if (!strchr(m.v[k].rel, '/') && !strcmp(m.v[k].rel, b))
				rc = ferry__seterr(c, FERRY_EINVAL,
						   "two files named '%s' in one transfer", b);
		if (!rc)
			rc = add_entry(c, &m, abs, b, 1);
		if (!rc)
			json_array_append_new(lps, json_string(abs));
		free(abs);
	}
	if (!rc)
		rc = send_all(c, lps, &m, disposal_hours, server_path);
	manifest_free(&m);
	json_decref(lps);
	return rc;
}

FERRY_EXPORT int ferry_send_file(ferry_conn *c, const char *local_path, int disposal_hours,
				 char **server_path)
{
	const char *one[] = {local_path};

	return ferry_send_files(c, one, 1, disposal_hours, server_path);
}

FERRY_EXPORT int ferry_register_transfer(ferry_conn *c, const char *local_path, int disposal_hours,
					 char **server_path)
{
	char *abs = local_path ? absolute(local_path) : NULL, key[33];
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
	rc = tcall(c,
		   json_pack("{s:s,s:s,s:[s],s:s,s:i}", "op", "transfer_register", "key", key,
			     "local_paths", abs, "name", base_name(abs), "disposal_hours",
			     disposal_hours > 0 ? disposal_hours : 168),
		   NULL, 0, &reply, NULL, NULL);
	free(abs);
	if (!rc &&
	    !(*server_path = strdup(json_string_value(json_object_get(reply, "server_path")))))
		rc = ferry__seterr(c, FERRY_ENOMEM, "out of memory");
	json_decref(reply);
	return rc;
}

/* ---- retrieval ---- */

/* Copies [off, size) of the server's file into out on this host, hashing it into h. */
static int copy_back(ferry_conn *c, const char *server_file, int out, int64_t off, int64_t size,
		     struct progress *p, struct ferry_hash *h)
{
	int in = open(server_file, O_RDONLY | O_NOFOLLOW | O_CLOEXEC), e;
	struct ferry__copy cp = {.in = in,
				 .out = out,
				 .off = off,
				 .end = size,
				 .h = h,
				 .progress = p->fn ? progress_cb : NULL,
				 .arg = p,
				 .step = CHUNK};

	e = in < 0 ? errno : ferry__copy_hashed(&cp);
	if (in >= 0)
		close(in);
	return e ? ferry__seterr(c, FERRY_EIO, "cannot copy '%s': %s", server_file,
				 e == ENODATA ? "it became shorter" : strerror(e))
		 : 0;
}

/*
 * Opens tmp to fetch a file of size bytes into, resuming at its size:
 * *off, with h fed what is there, read back, so that every byte of the file
 * counts, the old ones as they are on disk. 0, or an error (nothing open).
 */
static int open_fetch(ferry_conn *c, const char *tmp, int64_t size, int *out, int64_t *off,
		      struct ferry_hash *h)
{
	struct stat st;
	int rc = 0;

	*out = open(tmp, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (*out < 0 || fstat(*out, &st) < 0)
		rc = ferry__seterr(c, errno_code(errno), "cannot write '%s': %s", tmp,
				   strerror(errno));
	else if ((*off = (int64_t)st.st_size <= size ? (int64_t)st.st_size : 0) == 0 &&
		 ftruncate(*out, 0) < 0)
		rc = ferry__seterr(c, FERRY_EIO, "cannot truncate '%s': %s", tmp, strerror(errno));
	else if (ferry__hash_init(h) < 0)
		rc = ferry__seterr(c, FERRY_ENOMEM, "out of memory");
	else if (ferry__hash_update_fd(h, *out, (uint64_t)*off) < 0)
		rc = ferry__seterr(c, FERRY_EIO, "cannot read back '%s'", tmp);
	if (rc) {
		ferry__hash_release(h);
		if (*out >= 0)
			close(*out);
		*out = -1;
	}
	return rc;
}

/* The fetched file's checksum h against want; a wrong copy is emptied, never kept. */
static int check_fetched(ferry_conn *c, struct ferry_hash *h, const char *want, int out,
			 const char *tmp)
{
	char got[FERRY_HASH_HEX];

	ferry__hash_final(h, got);
	if (want && !strcmp(got, want))
		return 0;
	if (ftruncate(out, 0) < 0) /* the next call starts this file over */
		unlink(tmp);
	return ferry__seterr(c, FERRY_EIO, "checksum mismatch for '%s': the copy was discarded",
			     tmp);
}

/* Copies one file of the transfer on this host into tmp (resuming at its size) and checks it. */
static int fetch_file(ferry_conn *c, const char *server_file, json_t *f, const char *tmp,
		      struct progress *p)
{
	int64_t size = json_integer_value(json_object_get(f, "size")), off;
	struct ferry_hash h = {0};
	int out, rc;

	if ((rc = open_fetch(c, tmp, size, &out, &off, &h)))
		return rc;
	progress_at(p, p->base + off);
	rc = copy_back(c, server_file, out, off, size, p, &h);
	if (!rc)
		rc = check_fetched(c, &h, json_string_value(json_object_get(f, "hash")), out, tmp);
	if (!rc)
		p->base += size;
	ferry__hash_release(&h);
	close(out);
	return rc;
}

/*
 * A retrieve over a link: WINDOW gets in flight, across files as a send's
 * puts are, so that a tree of small files does not pay a round trip per
 * file. Each get in flight names the file it is for; answers come in
 * order, so each file's chunks arrive in order and are hashed from memory
 * as they are written. A file is checked when its last chunk is in, and
 * fsynced with the others at the end. A broken link closes the
 * connection and gives FERRY_ESTATE: the caller starts the retrieve
 * again, which reconnects and resumes from what reached the disk. All
 * under the connection's lock.
 */
struct slot {
	char *tmp; /* the local part (owned) */
	const char *want;
	int out, refs; /* refs: gets in flight for it, and 1 while they are asked */
	int64_t off, size;
	struct ferry_hash h;
};

struct getq {
	ferry_conn *c;
	const char *server_path;
	int inflight, rc, broken, link_broke;
	unsigned head;
	struct slot *slot[WINDOW];
	int64_t len[WINDOW];
	int64_t got; /* bytes of the transfer here: the progress */
	struct progress *p;
	char **done; /* files checked, to sync (owned) */
	size_t ndone;
};

/* The last reference to s: a whole file is checked, anything else left for a resume. */
static void slot_unref(struct getq *q, struct slot *s)
{
	if (--s->refs)
		return;
	if (!q->rc && s->off == s->size &&
	    !(q->rc = check_fetched(q->c, &s->h, s->want, s->out, s->tmp))) {
		q->done[q->ndone++] = s->tmp;
		s->tmp = NULL;
	}
	ferry__hash_release(&s->h);
	close(s->out);
	free(s->tmp);
	free(s);
}

/* Takes one answer and writes it into the file it is for. */
static void getq_recv(struct getq *q)
{
	struct slot *s = q->slot[q->head % WINDOW];
	int64_t want = q->len[q->head++ % WINDOW];
	json_t *r = NULL;
	void *bin = NULL;
	size_t len = 0;
	int e = ferry__recv_reply(q->c, &r, &bin, &len);

	q->inflight--;
	if (e) {
		q->broken = 1;
		q->link_broke = e == FERRY_EIO;
		q->rc = q->rc ? q->rc : e;
	} else if (!json_is_true(json_object_get(r, "ok"))) {
		int code = ferry__reply_error(q->c, r);
		q->rc = q->rc ? q->rc : code;
	} else if (!q->rc) {
		if ((int64_t)len != want)
			q->rc = ferry__seterr(q->c, FERRY_EIO,
					      "the server's copy changed size while read");
		else if (pwrite(s->out, bin, len, s->off) != (ssize_t)len)
			q->rc = ferry__seterr(q->c, FERRY_EIO, "cannot write '%s': %s", s->tmp,
					      strerror(errno));
		else {
			ferry__hash_update(&s->h, bin, len);
			sync_file_range(s->out, s->off, (off_t)len, SYNC_FILE_RANGE_WRITE);
			s->off += (int64_t)len;
			q->got += (int64_t)len;
			progress_at(q->p, q->got);
		}
	}
	json_decref(r);
	free(bin);
	slot_unref(q, s);
}

/* Opens the part tmp of file idx (f) and asks for what it lacks. */
static void getq_file(struct getq *q, size_t idx, json_t *f, const char *tmp)
{
	struct slot *s = calloc(1, sizeof(*s));
	int e;

	if (!s || !(s->tmp = strdup(tmp))) {
		free(s);
		q->rc = ferry__seterr(q->c, FERRY_ENOMEM, "out of memory");
		return;
	}
	s->size = json_integer_value(json_object_get(f, "size"));
	s->want = json_string_value(json_object_get(f, "hash"));
	s->refs = 1;
	if ((e = open_fetch(q->c, tmp, s->size, &s->out, &s->off, &s->h))) {
		q->rc = e;
		free(s->tmp);
		free(s);
		return;
	}
	q->got += s->off;
	ferry__preallocate(s->out, s->off, s->size - s->off);
	for (int64_t asked = s->off; !q->rc && asked < s->size;) {
		int64_t len = s->size - asked < CHUNK ? s->size - asked : CHUNK;
		while (q->inflight == WINDOW && !q->broken)
			getq_recv(q);
		if (q->rc)
			break;
		json_t *req = json_pack("{s:s,s:s,s:I,s:I,s:I}", "op", "transfer_get",
					"server_path", q->server_path, "file", (json_int_t)idx,
					"offset", (json_int_t)asked, "length", (json_int_t)len);
		e = req ? ferry__send_request(q->c, req, NULL, 0) : FERRY_ENOMEM;
		json_decref(req);
		if (e) {
			q->broken = q->link_broke = 1;
			q->rc = q->rc ? q->rc : e;
			break;
		}
		q->slot[(q->head + (unsigned)q->inflight) % WINDOW] = s;
		q->len[(q->head + (unsigned)q->inflight++) % WINDOW] = len;
		s->refs++;
		asked += len;
	}
	slot_unref(q, s);
}

/* Waits for every answer; a broken link gives FERRY_ESTATE (the caller resumes). */
static int getq_drain(struct getq *q)
{
	while (q->inflight && !q->broken)
		getq_recv(q);
	while (q->inflight) { /* answers that will not come: their files stay for a resume */
		struct slot *s = q->slot[q->head++ % WINDOW];
		q->inflight--;
		slot_unref(q, s);
	}
	if (q->broken) {
		ferry__close(q->c);
		q->c->lost = 1;
		return q->link_broke ? FERRY_ESTATE : q->rc;
	}
	return q->rc;
}

/* fsyncs the files at paths, SYNC_BATCH open at a time, in parallel (ferry__fsync_all). */
#define SYNC_BATCH 256
static int sync_files(ferry_conn *c, char **paths, size_t n)
{
	int fds[SYNC_BATCH], rc = 0;

	for (size_t b = 0; !rc && b < n; b += SYNC_BATCH) {
		size_t m = 0;
		for (; !rc && m < SYNC_BATCH && b + m < n; m++)
			if ((fds[m] = open(paths[b + m], O_RDONLY | O_NOFOLLOW | O_CLOEXEC)) < 0)
				rc = ferry__seterr(c, FERRY_EIO, "cannot sync '%s': %s",
						   paths[b + m], strerror(errno));
		if (rc)
			m--; /* the one that failed holds no descriptor */
		int e = rc ? 0 : ferry__fsync_all(fds, m);
		while (m)
			close(fds[--m]);
		if (e)
			rc = ferry__seterr(c, FERRY_EIO, "cannot sync the files of '%s': %s",
					   paths[b], strerror(e));
	}
	return rc;
}

static void set_attrs(const char *path, json_t *f)
{
	int64_t mt = json_integer_value(json_object_get(f, "mtime_ns"));
	struct timespec ts[2] = {
	    {.tv_nsec = UTIME_OMIT},
	    {.tv_sec = (time_t)(mt / 1000000000), .tv_nsec = (long)(mt % 1000000000)}};

	chmod(path, (mode_t)json_integer_value(json_object_get(f, "mode")));
	utimensat(AT_FDCWD, path, ts, AT_SYMLINK_NOFOLLOW);
}

static void fsync_dir_of(const char *path)
{
	char *d = strdup(path), *slash = d ? strrchr(d, '/') : NULL;
	int fd;

	if (!slash) {
		free(d);
		return;
	}
	*slash = slash == d ? (slash[1] = '\0', '/') : '\0';
	fd = open(d, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd >= 0) {
		fsync(fd);
		close(fd);
	}
	free(d);
}

/* Retrieves one top entry (file or tree) of the transfer to target. */
static int fetch_top(ferry_conn *c, json_t *tr, const char *top, const char *target,
		     struct progress *prog)
{
	const char *sp = json_string_value(json_object_get(tr, "server_path"));
	json_t *files = json_object_get(tr, "files"), *f;
	char *sdir = strdup(sp), *tmp, *slash;
	size_t tl = strlen(top), i, nfetched = 0;
	int rc = 0, top_is_dir = 0;
	/* fetched files, fsynced together before the rename into place */
	char **fetched = calloc(json_array_size(files) + 1, sizeof(*fetched));

	if (!sdir || !fetched) {
		free(sdir);
		free(fetched);
		return ferry__seterr(c, FERRY_ENOMEM, "out of memory");
	}
	*strrchr(sdir, '/') = '\0'; /* the transfer's directory on the server */
	slash = strrchr(target, '/');
	tmp = ferry__asprintf("%.*s.%s" PART_SUFFIX, slash ? (int)(slash - target + 1) : 0, target,
			      slash ? slash + 1 : target);
	if (!tmp) {
		free(sdir);
		free(fetched);
		return ferry__seterr(c, FERRY_ENOMEM, "out of memory");
	}
	struct getq gq = {.server_path = sp, .p = prog, .got = prog->base, .done = fetched};
	if (c->cfg.host) {
		gq.c = c;
		pthread_mutex_lock(&c->mu);
	}
	json_array_foreach(files, i, f)
	{
		const char *p = json_string_value(json_object_get(f, "path"));
		int is_dir = !strcmp(json_string_value(json_object_get(f, "type")), "dir");
		if (strncmp(p, top, tl) || (p[tl] && p[tl] != '/'))
			continue;
		char *local = ferry__asprintf("%s%s", tmp, p + tl);
		char *remote = ferry__asprintf("%s/%s", sdir, p);
		if (!local || !remote)
			rc = ferry__seterr(c, FERRY_ENOMEM, "out of memory");
		else if (is_dir) {
			top_is_dir |= !p[tl];
			if (mkdir(local, 0700) < 0 && errno != EEXIST)
				rc = ferry__seterr(c, errno_code(errno), "cannot create '%s': %s",
						   local, strerror(errno));
		} else if (gq.c) {
			getq_file(&gq, i, f, local);
			rc = gq.rc;
		} else if (!(rc = fetch_file(c, remote, f, local, prog))) {
			fetched[nfetched++] = local;
			local = NULL;
		}
		free(local);
		free(remote);
		if (rc)
			break;
	}
	if (gq.c) {
		int rc2 = getq_drain(&gq); /* a broken link's FERRY_ESTATE comes first */
		pthread_mutex_unlock(&c->mu);
		rc = rc2 ? rc2 : rc;
		nfetched = gq.ndone;
		prog->base = gq.got;
	}
	if (!rc)
		rc = sync_files(c, fetched, nfetched);
	if (rc)
		goto out;
	/* modes and times: files first, then directories from the deepest */
	for (int pass = 0; pass < 2; pass++) {
		size_t n = json_array_size(files);
		for (size_t k = 0; k < n; k++) {
			f = json_array_get(files, pass ? n - 1 - k : k);
			const char *p = json_string_value(json_object_get(f, "path"));
			int is_dir = !strcmp(json_string_value(json_object_get(f, "type")), "dir");
			if (is_dir != pass || strncmp(p, top, tl) || (p[tl] && p[tl] != '/'))
				continue;
			char *local = ferry__asprintf("%s%s", tmp, p + tl);
			if (local)
				set_attrs(local, f);
			free(local);
		}
	}
	struct stat st;
	if (lstat(target, &st) == 0 && S_ISDIR(st.st_mode) && top_is_dir)
		ferry__rm_rf(target); /* rename cannot replace a directory that has entries */
	else if (lstat(target, &st) == 0 && S_ISDIR(st.st_mode) != top_is_dir) {
		rc = ferry__seterr(c, FERRY_EINVAL, "cannot replace '%s': it is a %s", target,
				   top_is_dir ? "file" : "directory");
		goto out;
	}
	if (rename(tmp, target) < 0) {
		rc = ferry__seterr(c, errno_code(errno), "cannot rename '%s' to '%s': %s", tmp,
				   target, strerror(errno));
		goto out;
	}
	fsync_dir_of(target);
out:
	for (size_t k = 0; k < nfetched; k++)
		free(fetched[k]);
	free(fetched);
	free(tmp);
	free(sdir);
	return rc;
}

/* The local path of each top entry: the one recorded, or dest. */
static char *target_of(ferry_conn *c, json_t *tr, const char *top, size_t ntops, const char *dest)
{
	json_t *lps = json_object_get(tr, "local_paths"), *e;
	size_t i;

	if (dest)
		return ntops == 1 ? strdup(dest) : ferry__asprintf("%s/%s", dest, top);
	json_array_foreach(lps, i, e) if (!strcmp(base_name(json_string_value(e)),
						  top)) return strdup(json_string_value(e));
	ferry__seterr(c, FERRY_EINVAL, "no local path recorded for '%s'", top);
	return NULL;
}

/* The first components of the manifest's paths, in order, each once. */
static json_t *top_names(json_t *files)
{
	json_t *tops = json_array(), *f;
	size_t i;

	json_array_foreach(files, i, f)
	{
		const char *p = json_string_value(json_object_get(f, "path"));
		char *t = strndup(p, strcspn(p, "/"));
		int seen = 0;
		json_t *e;
		size_t k;
		json_array_foreach(tops, k, e) seen |= t && !strcmp(json_string_value(e), t);
		if (t && !seen)
			json_array_append_new(tops, json_string(t));
		free(t);
	}
	return tops;
}

static int64_t files_size(json_t *files)
{
	int64_t sum = 0;
	json_t *f;
	size_t i;

	json_array_foreach(files, i, f) sum += json_integer_value(json_object_get(f, "size"));
	return sum;
}

static int retrieve(ferry_conn *c, const char *server_path, const char *dest, unsigned flags,
		    struct progress *p)
{
	json_t *reply = NULL, *tr, *f, *tops = NULL;
	size_t i;
	int rc;

	c->errmsg[0] = '\0';
	if (!server_path)
		return ferry__seterr(c, FERRY_EINVAL, "no server path");
	rc = tcall(c, json_pack("{s:s,s:s}", "op", "transfer_manifest", "server_path", server_path),
		   NULL, 0, &reply, NULL, NULL);
	if (rc)
		goto out;
	tr = json_object_get(reply, "transfer");
	tops = top_names(json_object_get(tr, "files"));
	p->total = files_size(json_object_get(tr, "files"));
	p->base = 0;
	if (dest && json_array_size(tops) > 1 && mkdir(dest, 0700) < 0 && errno != EEXIST) {
		rc = ferry__seterr(c, errno_code(errno), "cannot create '%s': %s", dest,
				   strerror(errno));
		goto out;
	}
	json_array_foreach(tops, i, f)
	{
		char *target = target_of(c, tr, json_string_value(f), json_array_size(tops), dest);
		struct stat st;
		if (!target) {
			rc = c->errmsg[0] ? FERRY_EINVAL
					  : ferry__seterr(c, FERRY_ENOMEM, "out of memory");
			goto out;
		}
		if (dest && !(flags & FERRY_OVERWRITE) && lstat(target, &st) == 0) {
			rc = ferry__seterr(c, FERRY_EINVAL,
					   "'%s' exists: it is not the transfer's own path, so it "
					   "is replaced only when asked (FERRY_OVERWRITE, ferry "
					   "retrieve --force)",
					   target);
			free(target);
			goto out;
		}
		rc = fetch_top(c, tr, json_string_value(f), target, p);
		free(target);
		if (rc)
			goto out;
	}
	progress_at(p, p->total); /* a transfer without files has moved all too */
	rc =
	    tcall(c, json_pack("{s:s,s:s}", "op", "transfer_retrieved", "server_path", server_path),
		  NULL, 0, NULL, NULL, NULL);
out:
	json_decref(tops);
	json_decref(reply);
	return rc;
}

/* A link broken mid-download: again (reconnecting), resuming from the disk. */
static int retrieve_resuming(ferry_conn *c, const char *server_path, const char *dest,
			     unsigned flags)
{
	int rc = FERRY_ESTATE;
	struct progress p;

	progress_init(&p, c);
	for (int attempt = 0; rc == FERRY_ESTATE && attempt < 1000; attempt++) {
		rc = retrieve(c, server_path, dest, flags | (attempt ? FERRY_OVERWRITE : 0), &p);
		if (rc == FERRY_ESTATE && c->fd >= 0)
			break; /* a real state error from the engine, not a broken link */
	}
	return rc;
}

/*
 * A server path as the engine takes it: on a local resource the engine's
 * files are this host's, so a relative one is taken from the current
 * directory, as for any other path. 0 with *sp (free it), or an error.
 */
static int server_arg(ferry_conn *c, const char *server_path, char **sp)
{
	if (!server_path)
		return ferry__seterr(c, FERRY_EINVAL, "no server path");
	*sp = !c->cfg.host ? absolute(server_path) : strdup(server_path);
	if (!*sp)
		return errno == ENOMEM ? ferry__seterr(c, FERRY_ENOMEM, "out of memory")
				       : ferry__seterr(c, FERRY_EINVAL, "cannot resolve '%s': %s",
						       server_path, strerror(errno));
	return 0;
}

static int retrieve_arg(ferry_conn *c, const char *server_path, const char *dest, unsigned flags)
{
	char *sp;
	int rc;

	if ((rc = server_arg(c, server_path, &sp)))
		return rc;
	rc = retrieve_resuming(c, sp, dest, flags);
	free(sp);
	return rc;
}

FERRY_EXPORT int ferry_retrieve_file(ferry_conn *c, const char *server_path)
{
	return retrieve_arg(c, server_path, NULL, 0);
}

FERRY_EXPORT int ferry_retrieve_file_to(ferry_conn *c, const char *server_path, const char *dest,
					unsigned flags)
{
	if (!dest)
		return ferry__seterr(c, FERRY_EINVAL, "no destination");
	return retrieve_arg(c, server_path, dest, flags);
}

FERRY_EXPORT int ferry_cancel_transfer(ferry_conn *c, const char *server_path, unsigned flags)
{
	char *sp;
	int rc;

	c->errmsg[0] = '\0';
	if ((rc = server_arg(c, server_path, &sp)))
		return rc;
	rc = tcall(c,
		   json_pack("{s:s,s:s,s:b}", "op", "transfer_cancel", "server_path", sp, "force",
			     (flags & FERRY_FORCE) != 0),
		   NULL, 0, NULL, NULL, NULL);
	free(sp);
	return rc;
}

/* ---- records ---- */

static char *jstrdup(json_t *o, const char *key)
{
	const char *s = json_string_value(json_object_get(o, key));

	return s ? strdup(s) : NULL;
}

static struct ferry_transfer_info *info_of(json_t *o)
{
	struct ferry_transfer_info *t = calloc(1, sizeof(*t));
	json_t *lps = json_object_get(o, "local_paths"), *jobs = json_object_get(o, "jobs"), *e;
	size_t i;

	if (!t)
		return NULL;
	t->server_path = jstrdup(o, "server_path");
	t->kind = jstrdup(o, "kind");
	t->state = jstrdup(o, "state");
	t->hash = jstrdup(o, "hash");
	t->message = jstrdup(o, "message");
	t->size = json_integer_value(json_object_get(o, "size"));
	t->done = json_integer_value(json_object_get(o, "done"));
	t->received = json_integer_value(json_object_get(o, "received"));
	t->created_at = json_number_value(json_object_get(o, "created_at"));
	t->ended_at = json_number_value(json_object_get(o, "ended_at"));
	t->deadline = json_number_value(json_object_get(o, "deadline"));
	t->disposal_hours = (int)json_integer_value(json_object_get(o, "disposal_hours"));
	t->local_paths = calloc(json_array_size(lps) + 1, sizeof(char *));
	t->jobs = calloc(json_array_size(jobs) + 1, sizeof(*t->jobs));
	if (!t->server_path || !t->kind || !t->state || !t->local_paths || !t->jobs) {
		ferry_transfer_info_free(t);
		return NULL;
	}
	json_array_foreach(lps, i, e) t->local_paths[i] = strdup(json_string_value(e));
	json_array_foreach(jobs, i, e) t->jobs[t->njobs++] =
	    json_integer_value(json_object_get(e, "id"));
	return t;
}

FERRY_EXPORT void ferry_transfer_info_free(struct ferry_transfer_info *t)
{
	if (!t)
		return;
	free(t->server_path);
	for (size_t i = 0; t->local_paths && t->local_paths[i]; i++)
		free(t->local_paths[i]);
	free(t->local_paths);
	free(t->kind);
	free(t->state);
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
	if ((rc = server_arg(c, server_path, &sp)))
		return rc;
	rc = tcall(c, json_pack("{s:s,s:s}", "op", "transfer_info", "server_path", sp), NULL, 0,
		   &reply, NULL, NULL);
	free(sp);
	if (!rc && !(*info = info_of(json_object_get(reply, "transfer"))))
		rc = ferry__seterr(c, FERRY_ENOMEM, "out of memory");
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
	rc = tcall(c, json_pack("{s:s}", "op", "transfers"), NULL, 0, &reply, NULL, NULL);
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
		if (!((*list)[i] = info_of(e))) {
			ferry_transfer_list_free(*list, i);
			*list = NULL;
			json_decref(reply);
			return ferry__seterr(c, FERRY_ENOMEM, "out of memory");
		}
		*n = i + 1;
	}
	json_decref(reply);
	return 0;
}
