/*
 * transfer-send.c - libferry's sends (docs/transfers.md).
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
 * Two kinds of file need more than a read of st_size bytes. A file of a
 * pseudo-file system (/proc, /sys) has a size that is no measure of what
 * reading it gives: it is read whole, until EOF, when it is listed, and
 * that snapshot is what is sent. A sparse file keeps its holes: they are
 * hashed as zeros but not sent (holes.c).
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/magic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <unistd.h>

#include "holes.h"
#include "jbytes.h"
#include "transfer.h"
#include "util.h"

#define SNAP_MAX       (64 << 20) /* bytes of pseudo-files one send reads into memory */
#define SNAP_BUF       (64 << 10)
#define CONFIGFS_MAGIC 0x62656570 /* not in <linux/magic.h> */

struct lfile {
	char *abs; /* local path */
	char *rel; /* path in the transfer: top name / ... */
	int is_dir;
	int64_t size;
	int mode;
	int64_t mtime_ns, ctime_ns;
	uint64_t ino; /* with the times and size: the content's identity (send_key) */
	char *snap;   /* a pseudo-file's bytes, read when it was listed; NULL for others */
	int sparse;   /* it may have holes */
	int64_t data; /* then: the bytes of its data extents (the engine reserves them) */
};

struct manifest {
	struct lfile *v;
	size_t n, cap;
	size_t snap_bytes; /* held by the snapshots */
};

static void manifest_free(struct manifest *m)
{
	for (size_t i = 0; i < m->n; i++) {
		free(m->v[i].abs);
		free(m->v[i].rel);
		free(m->v[i].snap);
	}
	free(m->v);
	memset(m, 0, sizeof(*m));
}

static int add_entry(struct ferry_conn *c, struct manifest *m, const char *abs, const char *rel,
		     int follow);

static int add_dir(struct ferry_conn *c, struct manifest *m, const char *abs, const char *rel)
{
	struct dirent **names = NULL;
	int n = scandir(abs, &names, NULL, alphasort), rc = 0;

	if (n < 0)
		return ferry__seterr(c, ferry__errno_code(errno), "cannot list '%s': %s", abs,
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

/*
 * Whether the size of the file at abs (st) says nothing of what reading it
 * gives: a pseudo-file system makes its files' bytes as they are read
 * (/proc/cpuinfo has size 0, a /sys file 4096), and any file of size 0 is
 * read to be sure, which costs an empty file one read. Known by the file
 * system's type rather than by trying, since a read of st_size bytes of a
 * /sys file simply ends early.
 */
static int size_unknown(const char *abs, const struct stat *st)
{
	static const unsigned long pseudo[] = {
	    PROC_SUPER_MAGIC,	 SYSFS_MAGIC,	 DEBUGFS_MAGIC,	 TRACEFS_MAGIC,
	    SECURITYFS_MAGIC,	 SELINUX_MAGIC,	 SMACK_MAGIC,	 CGROUP_SUPER_MAGIC,
	    CGROUP2_SUPER_MAGIC, CONFIGFS_MAGIC, PSTOREFS_MAGIC, EFIVARFS_MAGIC,
	    BINFMTFS_MAGIC};
	struct statfs fs;

	if (st->st_size == 0)
		return 1;
	if (statfs(abs, &fs) < 0)
		return 0;
	for (size_t i = 0; i < sizeof(pseudo) / sizeof(pseudo[0]); i++)
		if ((unsigned long)fs.f_type == pseudo[i])
			return 1;
	return 0;
}

/* Whether two looks at one file saw the same file, unchanged. */
static int same_file(const struct stat *a, const struct stat *b)
{
	return a->st_ino == b->st_ino && a->st_dev == b->st_dev && a->st_size == b->st_size &&
	       a->st_mtim.tv_sec == b->st_mtim.tv_sec && a->st_mtim.tv_nsec == b->st_mtim.tv_nsec &&
	       a->st_ctim.tv_sec == b->st_ctim.tv_sec && a->st_ctim.tv_nsec == b->st_ctim.tv_nsec;
}

/* Reads fd until EOF into *buf (*len bytes), room bytes at most. 0 or an errno (EFBIG). */
static int read_whole(int fd, size_t room, char **buf, size_t *len)
{
	size_t cap = 0;

	*buf = NULL;
	*len = 0;
	for (;;) {
		if (*len == cap) {
			size_t ncap = cap ? 2 * cap : SNAP_BUF;
			char *nb = realloc(*buf, ncap < room + 1 ? ncap : room + 1);
			if (!nb)
				return ENOMEM;
			*buf = nb;
			cap = ncap < room + 1 ? ncap : room + 1;
		}
		ssize_t n = read(fd, *buf + *len, cap - *len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return n < 0 ? errno : 0;
		*len += (size_t)n;
		if (*len > room)
			return EFBIG;
	}
}

/*
 * Reads f, a file whose size says nothing (size_unknown), whole into
 * f->snap: what it gives when read until EOF is what is sent, its
 * checksum that of those bytes. A file that changed while it was read (a
 * regular file written to) is refused, as one that changes while it is
 * sent; one whose read would block (a stream, like trace_pipe) too.
 */
static int snapshot(ferry_conn *c, struct manifest *m, struct lfile *f)
{
	struct stat a, b;
	size_t len = 0;
	int fd = open(f->abs, O_RDONLY | O_NONBLOCK | O_CLOEXEC), e;

	if (fd < 0)
		return ferry__seterr(c, ferry__errno_code(errno), "cannot read '%s': %s", f->abs,
				     strerror(errno));
	e = fstat(fd, &a) < 0 ? errno : read_whole(fd, SNAP_MAX - m->snap_bytes, &f->snap, &len);
	if (!e && (fstat(fd, &b) < 0 || !same_file(&a, &b) || !S_ISREG(b.st_mode)))
		e = ESTALE;
	close(fd);
	if (e == EFBIG)
		return ferry__seterr(
		    c, FERRY_EINVAL,
		    "cannot send '%s': a file whose size its file system does not "
		    "tell (such as those of /proc and /sys) is read whole first, "
		    "and the files of this kind in one send may hold %d MiB at most",
		    f->abs, SNAP_MAX >> 20);
	if (e == EAGAIN)
		return ferry__seterr(c, FERRY_EINVAL,
				     "cannot send '%s': reading it would wait for more (a stream, "
				     "not a file)",
				     f->abs);
	if (e == ESTALE)
		return ferry__seterr(c, FERRY_EIO,
				     "'%s' changed while it was read: send it again once it is "
				     "written",
				     f->abs);
	if (e)
		return ferry__seterr(c, ferry__errno_code(e), "cannot read '%s': %s", f->abs,
				     strerror(e));
	m->snap_bytes += len;
	f->size = (int64_t)len;
	f->sparse = 0;
	return 0;
}

/* Adds a path (and a directory's contents). Files are hashed as they are sent. */
static int add_entry(struct ferry_conn *c, struct manifest *m, const char *abs, const char *rel,
		     int follow)
{
	struct stat st;
	struct lfile *f;

	if ((follow ? stat(abs, &st) : lstat(abs, &st)) < 0)
		return ferry__seterr(c, errno == ENOENT ? FERRY_EINVAL : ferry__errno_code(errno),
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
	f->sparse = ferry__holey(&st);
	if (f->is_dir) {
		f->size = 0;
		return add_dir(c, m, abs, rel);
	}
	if (access(abs, R_OK) < 0) /* refused now rather than after the others are sent */
		return ferry__seterr(c, ferry__errno_code(errno), "cannot read '%s': %s", abs,
				     strerror(errno));
	if (size_unknown(abs, &st))
		return snapshot(c, m, f);
	if (f->sparse)
		f->data = ferry__data_bytes(abs, f->size);
	return 0;
}

static json_t *manifest_json(const struct manifest *m)
{
	json_t *a = json_array();

	for (size_t i = 0; a && i < m->n; i++) {
		const struct lfile *f = &m->v[i];
		json_t *o =
		    f->is_dir
			? json_pack("{s:o,s:s,s:i,s:I}", "path", ferry__json_bytes(f->rel), "type",
				    "dir", "mode", f->mode, "mtime_ns", (json_int_t)f->mtime_ns)
			: json_pack("{s:o,s:s,s:I,s:i,s:I}", "path", ferry__json_bytes(f->rel),
				    "type", "file", "size", (json_int_t)f->size, "mode", f->mode,
				    "mtime_ns", (json_int_t)f->mtime_ns);
		/* the engine reserves no blocks for the holes, and counts the data */
		if (o && f->sparse) {
			json_object_set_new(o, "sparse", json_true());
			json_object_set_new(o, "data", json_integer(f->data));
		}
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
 * each file's last chunk. A pseudo-file's times do not move with what it
 * gives: its snapshot's bytes count too.
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
		if (f->snap)
			ferry__hash_update(&h, f->snap, (size_t)f->size);
	}
	ferry__hash_final(&h, key);
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
		return ferry__seterr(c, ferry__errno_code(errno), "cannot read '%s': %s", f->abs,
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

/*
 * Writes a pseudo-file's snapshot from off into the engine's partial file,
 * hashed as copy_local hashes a file.
 */
static int copy_snapshot(ferry_conn *c, const struct lfile *f, const char *part, int64_t off,
			 struct ferry__progress *p, char hash[FERRY_HASH_HEX],
			 char prefix[FERRY_HASH_HEX])
{
	struct ferry_hash h;
	int out, e = 0;

	if (ferry__hash_init(&h) < 0)
		return ferry__seterr(c, FERRY_ENOMEM, "out of memory");
	ferry__hash_update(&h, f->snap, (size_t)off);
	ferry__hash_peek(&h, prefix);
	out = open(part, O_WRONLY | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600);
	for (int64_t at = off; out >= 0 && !e && at < f->size;) {
		ssize_t n = pwrite(out, f->snap + at, (size_t)(f->size - at), at);
		e = n < 0 && errno != EINTR ? errno : 0;
		at += n > 0 ? n : 0;
	}
	e = out < 0 ? errno : e;
	if (out >= 0)
		close(out);
	ferry__hash_update(&h, f->snap + off, (size_t)(f->size - off));
	ferry__hash_final(&h, hash);
	if (e)
		return ferry__seterr(c, FERRY_EIO, "cannot write '%s': %s", part, strerror(e));
	ferry__progress_at(p, p->base + f->size);
	return 0;
}

/*
 * Copies the source from off to the end into the engine's partial file, on
 * this host. hash gets the source's checksum, prefix that of its first off
 * bytes, which the engine checks against what its part held before.
 */
static int copy_local(ferry_conn *c, const struct lfile *f, const char *part, int64_t off,
		      struct ferry__progress *p, char hash[FERRY_HASH_HEX],
		      char prefix[FERRY_HASH_HEX])
{
	struct ferry_hash h;
	int in, out = -1, rc, e = 0;

	if (f->snap)
		return copy_snapshot(c, f, part, off, p, hash, prefix);
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
	e = ferry__copy_progress(in, out, off, f->size, &h, p);
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
	struct ferry__pipeline pl;
	int locked;
	int64_t len[WINDOW]; /* bytes each put in flight brings the engine */
	int64_t acked;	     /* bytes of the transfer the engine has: the progress */
	int64_t sent;	     /* and those it will have once the puts in flight are answered */
	json_t **last;	     /* the last answer */
	struct ferry__progress *p;
	const char *root; /* where an engine on this host may have us copy (NULL: nowhere) */
	int holes;	  /* the engine takes puts of holes */
};

/* Takes one answer; rc: the first error so far (the rest are read and dropped). */
static int putq_recv(struct putq *q, int rc)
{
	json_t *r;
	unsigned at;
	int e = ferry__pipeline_recv(&q->pl, &at, &r, NULL, NULL);

	if (e) {
		json_decref(r);
		return rc ? rc : e;
	}
	json_decref(*q->last);
	*q->last = r;
	q->acked += q->len[at];
	ferry__progress_at(q->p, q->acked);
	return rc;
}

/* Waits for every answer and lets the connection go (ferry__pipeline_end). */
static int putq_drain(struct putq *q, int rc)
{
	while (q->pl.inflight && !q->pl.broken)
		rc = putq_recv(q, rc);
	rc = ferry__pipeline_end(&q->pl, rc);
	if (q->locked)
		pthread_mutex_unlock(&q->pl.c->mu);
	q->locked = 0;
	return rc;
}

/*
 * Sends one put of n bytes (those at mem, or of fd from off; none: n 0),
 * waiting for room first; its answer tells that the engine has credit
 * bytes more.
 */
static int putq_send(struct putq *q, json_t *req, const void *mem, int fd, int64_t off, size_t n,
		     int64_t credit)
{
	unsigned at;
	int rc = 0;

	if (!req)
		return ferry__seterr(q->pl.c, FERRY_ENOMEM, "out of memory");
	if (!q->locked)
		pthread_mutex_lock(&q->pl.c->mu);
	q->locked = 1;
	while (!rc && !q->pl.broken && q->pl.inflight == WINDOW)
		rc = putq_recv(q, rc);
	if (!rc && !q->pl.broken &&
	    !(rc = ferry__pipeline_send(&q->pl, req, mem, fd, off, n, &at))) {
		q->len[at] = credit;
		q->sent += credit;
	}
	json_decref(req);
	return rc;
}

/* A put of file idx at off; hash: the file's checksum, with its last one; hole: its length. */
static json_t *put_req(int64_t id, size_t idx, int64_t off, const char *hash, int64_t hole)
{
	json_t *r = json_pack("{s:s,s:I,s:I,s:I,s:s*}", "op", "transfer_put", "id", (json_int_t)id,
			      "file", (json_int_t)idx, "offset", (json_int_t)off, "hash", hash);

	if (r && hole && json_object_set_new(r, "hole", json_integer(hole))) {
		json_decref(r);
		return NULL;
	}
	return r;
}

/* Streams a pseudo-file's snapshot from off, as stream_file a file's bytes. */
static int stream_snapshot(struct putq *q, int64_t id, size_t idx, const struct lfile *f,
			   int64_t off)
{
	char hash[FERRY_HASH_HEX];
	struct ferry_hash h;
	int rc = 0, last = 0;

	if (ferry__hash_init(&h) < 0)
		return ferry__seterr(q->pl.c, FERRY_ENOMEM, "out of memory");
	ferry__hash_update(&h, f->snap, (size_t)off); /* the engine has those */
	while (!rc && !last) {
		size_t n = f->size - off < CHUNK ? (size_t)(f->size - off) : CHUNK;
		ferry__hash_update(&h, f->snap + off, n);
		if ((last = off + (int64_t)n == f->size))
			ferry__hash_final(&h, hash);
		rc = putq_send(q, put_req(id, idx, off, last ? hash : NULL, 0), f->snap + off, -1,
			       0, n, (int64_t)n);
		off += (int64_t)n;
	}
	ferry__hash_release(&h);
	return rc;
}

/* Where a file being streamed stands: its source, its checksum so far, its next data. */
struct stream {
	struct putq *q;
	int64_t id;
	size_t idx;
	const struct lfile *f;
	int fd;
	struct ferry_hash h;
	int64_t off, data, data_end; /* [data, data_end): the data extent at or after off */
	int last;		     /* the put with the checksum went */
};

/* The checksum for the put that ends at end: once the file's end is reached, and unchanged. */
static int stream_hash(struct stream *st, int64_t end, char hash[FERRY_HASH_HEX])
{
	if ((st->last = end == st->f->size)) {
		if (!unchanged(st->f, st->fd))
			return changed_err(st->q->pl.c, st->f);
		ferry__hash_final(&st->h, hash);
	}
	return 0;
}

/* Sends the hole at st->off (up to the next data), its zeros hashed but not sent. */
static int stream_hole(struct stream *st)
{
	int64_t n = st->data - st->off < HOLE_PUT ? st->data - st->off : HOLE_PUT;
	char hash[FERRY_HASH_HEX];
	int rc;

	ferry__hash_zeros(&st->h, (uint64_t)n);
	if ((rc = stream_hash(st, st->off + n, hash)))
		return rc;
	rc = putq_send(st->q, put_req(st->id, st->idx, st->off, st->last ? hash : NULL, n), NULL,
		       -1, 0, 0, n);
	st->off += n;
	return rc;
}

/* Sends the next chunk of data at st->off, hashed as it is read (buf: CHUNK bytes). */
static int stream_chunk(struct stream *st, char *buf)
{
	ferry_conn *c = st->q->pl.c;
	size_t want = st->data_end - st->off < CHUNK ? (size_t)(st->data_end - st->off) : CHUNK;
	ssize_t n = want ? pread(st->fd, buf, want, st->off) : 0;
	char hash[FERRY_HASH_HEX];
	int rc;

	if (n < 0 || (size_t)n != want)
		return n < 0 ? ferry__seterr(c, FERRY_EIO, "cannot read '%s': %s", st->f->abs,
					     strerror(errno))
			     : changed_err(c, st->f);
	ferry__hash_update(&st->h, buf, (size_t)n);
	if ((rc = stream_hash(st, st->off + n, hash)))
		return rc;
	rc = putq_send(st->q, put_req(st->id, st->idx, st->off, st->last ? hash : NULL, 0), NULL,
		       st->fd, st->off, (size_t)n, n);
	st->off += n;
	return rc;
}

/*
 * Streams file idx from off into q, hashing each chunk as it is read; the
 * last carries the checksum. The holes of a sparse file go as puts of
 * their length, when the engine takes them.
 */
static int stream_file(struct putq *q, int64_t id, size_t idx, const struct lfile *f, int64_t off)
{
	struct stream st = {
	    .q = q, .id = id, .idx = idx, .f = f, .fd = -1, .off = off, .data = off};
	int holey = q->holes && f->sparse, rc;
	char *buf;

	if (f->snap)
		return stream_snapshot(q, id, idx, f, off);
	buf = malloc(f->size - off < CHUNK ? (size_t)(f->size - off) + 1 : CHUNK);
	if (!buf)
		return ferry__seterr(q->pl.c, FERRY_ENOMEM, "out of memory");
	st.data_end = holey ? off : f->size;
	rc = open_source(q->pl.c, f, off, &st.h, &st.fd);
	while (!rc && !st.last) {
		if (holey && st.off >= st.data_end)
			ferry__next_data(st.fd, st.off, f->size, &st.data, &st.data_end);
		rc = st.off < st.data ? stream_hole(&st) : stream_chunk(&st, buf);
	}
	ferry__hash_release(&st.h); /* when the last chunk was not reached */
	free(buf);
	if (st.fd >= 0)
		close(st.fd);
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
	ferry_conn *c = q->pl.c;
	int rc;

	/* a part the engine names elsewhere is not written: its bytes go over the socket */
	if (c->cfg.host || !ferry__part_expected(q->root, f->rel, part))
		return stream_file(q, id, idx, f, off);
	q->p->base = q->sent - off;
	if ((rc = copy_local(c, f, part, off, q->p, hash, prefix)))
		return rc;
	return putq_send(q,
			 json_pack("{s:s,s:I,s:I,s:I,s:s,s:I,s:s*}", "op", "transfer_put", "id",
				   (json_int_t)id, "file", (json_int_t)idx, "offset",
				   (json_int_t)f->size, "hash", hash, "copied_from",
				   (json_int_t)off, "prefix_hash", off ? prefix : NULL),
			 NULL, -1, 0, 0, f->size - off);
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
	return ferry__call_locked(c,
				  json_pack("{s:s,s:s,s:O,s:i,s:o}", "op", "transfer_send", "key",
					    key, "local_paths", lps, "disposal_hours",
					    hours > 0 ? hours : 168, "files", files),
				  0, reply);
}

/* Sends what the engine lacks, as its reply to transfer_send tells. */
static int send_missing(ferry_conn *c, const struct manifest *m, json_t *reply, json_t **last,
			struct ferry__progress *p)
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
	ferry__progress_at(p, present);
	char *root = c->cfg.host ? NULL : ferry__expected_root(c);
	struct putq q = {.pl.c = c,
			 .acked = present,
			 .sent = present,
			 .last = last,
			 .p = p,
			 .root = root,
			 .holes = json_is_true(json_object_get(reply, "holes"))};
	for (size_t i = 0; !rc && i < m->n; i++) {
		json_t *f = json_array_get(st, i);
		int64_t done = json_integer_value(json_object_get(f, "done"));
		if (m->v[i].is_dir || json_is_true(json_object_get(f, "complete")))
			continue;
		if (done < 0 || done > m->v[i].size) {
			rc = ferry__seterr(c, FERRY_EPROTO,
					   "bad reply from the engine: '%s' has %lld of %lld bytes",
					   m->v[i].rel, (long long)done, (long long)m->v[i].size);
			break;
		}
		rc = send_one(&q, id, i, &m->v[i], done,
			      json_string_value(json_object_get(f, "part_path")));
	}
	rc = putq_drain(&q, rc);
	free(root);
	return rc;
}

static int is_state(json_t *reply, enum ferry_transfer_state state)
{
	const char *name = json_string_value(json_object_get(reply, "state"));
	enum ferry_transfer_state st;

	return !ferry_transfer_state_from_name(name, &st) && st == state;
}

/*
 * The server path of a send whose bytes all went (reply: the engine's
 * answer to transfer_send, last: to the last put), once it is ready.
 */
static int ready_path(ferry_conn *c, json_t *lps, const struct manifest *m, int hours,
		      json_t *reply, json_t *last, char **server_path)
{
	json_t *again = NULL;
	int rc;

	/* the last put made it ready: its path is the one the engine gave */
	if (last && json_is_true(json_object_get(last, "complete")) &&
	    is_state(last, FERRY_TRANSFER_READY))
		return ferry__reply_path(c, reply, server_path);
	/* where it stands now: every file checked, the transfer ready */
	rc = begin_send(c, lps, m, hours, &again);
	/* retrieved: a send that was also fetched back since, still on the server */
	if (!rc && !is_state(again, FERRY_TRANSFER_READY) &&
	    !is_state(again, FERRY_TRANSFER_RETRIEVED))
		rc = ferry__seterr(c, FERRY_EIO, "transfer '%s' is %s after sending it all",
				   json_string_value(json_object_get(again, "server_path")),
				   json_string_value(json_object_get(again, "state")));
	if (!rc)
		rc = ferry__reply_path(c, again, server_path);
	json_decref(again);
	return rc;
}

static int send_all(ferry_conn *c, json_t *lps, const struct manifest *m, int hours,
		    char **server_path)
{
	json_t *reply = NULL, *last = NULL;
	struct ferry__progress p;
	int rc = 0;

	ferry__progress_init(&p, c);
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
	if (!rc)
		rc = ready_path(c, lps, m, hours, reply, last, server_path);
	if (!rc)
		ferry__progress_at(&p, p.total); /* also when nothing was left to send */
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
	if (disposal_hours < 0) {
		json_decref(lps);
		return ferry__seterr(c, FERRY_EINVAL, "negative disposal time");
	}
	for (size_t i = 0; !rc && i < n; i++) {
		char *abs = local_paths[i] ? ferry__absolute(local_paths[i]) : NULL;
		const char *b = abs ? ferry__base_name(abs) : "";
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
			json_array_append_new(lps, ferry__json_bytes(abs));
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
