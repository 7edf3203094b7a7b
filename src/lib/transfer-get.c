/*
 * transfer-get.c - libferry's retrieves (docs/transfers.md).
 *
 * A retrieve writes into a temporary name beside the destination, checks
 * the checksum the engine gives, fsyncs and renames. On this host the
 * client copies the engine's stored file itself (copy.c); over a link the
 * chunks come inside the connection, many in flight at a time. The holes of
 * a sparse file are kept: neither sent nor written, the file extended over
 * them (holes.c).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "jbytes.h"
#include "partfile.h"
#include "transfer.h"
#include "util.h"

/* Copies [off, size) of the server's file into out on this host, hashing it into h. */
static int copy_back(ferry_conn *c, const char *server_file, int out, int64_t off, int64_t size,
		     struct ferry__progress *p, struct ferry_hash *h)
{
	int in = open(server_file, O_RDONLY | O_NOFOLLOW | O_CLOEXEC), e;

	e = in < 0 ? errno : ferry__copy_progress(in, out, off, size, h, p);
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
		rc = ferry__seterr(c, ferry__errno_code(errno), "cannot write '%s': %s", tmp,
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
		      struct ferry__progress *p)
{
	int64_t size = json_integer_value(json_object_get(f, "size")), off;
	struct ferry_hash h = {0};
	int out, rc;

	if ((rc = open_fetch(c, tmp, size, &out, &off, &h)))
		return rc;
	ferry__progress_at(p, p->base + off);
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
	int64_t skip_to; /* a hole up to here: no get asks for it */
	int asked_all;	 /* gets asked for all that is not a hole */
	struct ferry_hash h;
};

struct getq {
	struct ferry__pipeline pl;
	const char *server_path;
	int rc;
	struct slot *slot[WINDOW];
	int64_t at[WINDOW], len[WINDOW]; /* the range each get in flight asked for */
	int holes;			 /* the engine gives the holes of sparse files */
	int64_t got;			 /* bytes of the transfer here: the progress */
	struct ferry__progress *p;
	char **done; /* files checked, to sync (owned) */
	size_t ndone;
};

/* A hole of n bytes at s's end: hashed as zeros, not written. */
static void slot_hole(struct getq *q, struct slot *s, int64_t n)
{
	ferry__hash_zeros(&s->h, (uint64_t)n);
	s->off += n;
	q->got += n;
	ferry__progress_at(q->p, q->got);
}

/* Writes len bytes at s's end. 0, or the error (q->rc). */
static int slot_data(struct getq *q, struct slot *s, const char *bin, size_t len)
{
	if (len && pwrite(s->out, bin, len, s->off) != (ssize_t)len)
		return q->rc = ferry__seterr(q->pl.c, FERRY_EIO, "cannot write '%s': %s", s->tmp,
					     strerror(errno));
	ferry__hash_update(&s->h, bin, len);
	sync_file_range(s->out, s->off, (off_t)len, SYNC_FILE_RANGE_WRITE);
	s->off += (int64_t)len;
	q->got += (int64_t)len;
	ferry__progress_at(q->p, q->got);
	return 0;
}

/* s's file is whole: a hole at its end is the file's size, then the checksum. */
static int slot_finish(struct getq *q, struct slot *s)
{
	struct stat st;

	if (fstat(s->out, &st) < 0 || (st.st_size < s->size && ftruncate(s->out, s->size) < 0))
		return ferry__seterr(q->pl.c, FERRY_EIO, "cannot extend '%s': %s", s->tmp,
				     strerror(errno));
	return check_fetched(q->pl.c, &s->h, s->want, s->out, s->tmp);
}

/* The last reference to s: a whole file is checked, anything else left for a resume. */
static void slot_unref(struct getq *q, struct slot *s)
{
	if (--s->refs)
		return;
	/* the rest was a hole that no get asked for */
	if (!q->rc && s->asked_all && s->off < s->size)
		slot_hole(q, s, s->size - s->off);
	if (!q->rc && s->off == s->size && !(q->rc = slot_finish(q, s))) {
		q->done[q->ndone++] = s->tmp;
		s->tmp = NULL;
	}
	ferry__hash_release(&s->h);
	close(s->out);
	free(s->tmp);
	free(s);
}

/*
 * Writes the answer r (bin: len bytes) to the get of [at, at + want) at the
 * end of s's file. Its "holes" ([start, length] in the range) are skipped,
 * the rest of the range is its bytes, in order; a range before at that no
 * get asked for was a hole ("next_data" said so).
 */
static void getq_write(struct getq *q, struct slot *s, json_t *r, const char *bin, size_t len,
		       int64_t at, int64_t want)
{
	json_t *holes = json_object_get(r, "holes"), *hole;
	int64_t end = at + want, nd = json_integer_value(json_object_get(r, "next_data"));
	size_t i, used = 0;

	bin = len ? bin : ""; /* none: an answer of holes only */
	if (at > s->off)
		slot_hole(q, s, at - s->off);
	json_array_foreach(holes, i, hole)
	{
		int64_t hs = json_integer_value(json_array_get(hole, 0));
		int64_t hl = json_integer_value(json_array_get(hole, 1));
		if (hs < s->off || hl <= 0 || hs + hl > end || (uint64_t)(hs - s->off) > len - used)
			break;
		size_t n = (size_t)(hs - s->off);
		if (slot_data(q, s, bin + used, n))
			return;
		used += n;
		slot_hole(q, s, hl);
	}
	if (i < json_array_size(holes) || (int64_t)(len - used) != end - s->off) {
		q->rc =
		    ferry__seterr(q->pl.c, FERRY_EIO, "the server's copy changed size while read");
		return;
	}
	if (!slot_data(q, s, bin + used, len - used) && nd > s->skip_to)
		s->skip_to = nd < s->size ? nd : s->size;
}

/* Takes one answer and writes it into the file it is for. */
static void getq_recv(struct getq *q)
{
	json_t *r;
	const void *bin = NULL;
	size_t len = 0;
	unsigned at;
	int e = ferry__pipeline_recv(&q->pl, &at, &r, &bin, &len);

	if (e)
		q->rc = q->rc ? q->rc : e;
	else if (!q->rc)
		getq_write(q, q->slot[at], r, bin, len, q->at[at], q->len[at]);
	json_decref(r);
	slot_unref(q, q->slot[at]);
}

/* The slot of file f, its part tmp open and resumed; NULL with q->rc set. */
static struct slot *slot_open(struct getq *q, json_t *f, const char *tmp)
{
	struct slot *s = calloc(1, sizeof(*s));
	int e;

	if (!s || !(s->tmp = strdup(tmp))) {
		free(s);
		q->rc = ferry__seterr(q->pl.c, FERRY_ENOMEM, "out of memory");
		return NULL;
	}
	s->size = json_integer_value(json_object_get(f, "size"));
	s->want = json_string_value(json_object_get(f, "hash"));
	s->refs = 1;
	if ((e = open_fetch(q->pl.c, tmp, s->size, &s->out, &s->off, &s->h))) {
		q->rc = e;
		free(s->tmp);
		free(s);
		return NULL;
	}
	return s;
}

/* Opens the part tmp of file idx (f) and asks for what it lacks. */
static void getq_file(struct getq *q, size_t idx, json_t *f, const char *tmp)
{
	struct slot *s = slot_open(q, f, tmp);

	if (!s)
		return;
	q->got += s->off;
	if (!json_is_true(json_object_get(f, "sparse"))) /* no blocks for the holes */
		ferry__preallocate(s->out, s->off, s->size - s->off);
	int64_t asked = s->off;
	while (!q->rc) {
		while (q->pl.inflight == WINDOW && !q->pl.broken)
			getq_recv(q);
		asked = asked < s->skip_to ? s->skip_to : asked;
		if (q->rc || asked >= s->size)
			break;
		int64_t len = s->size - asked < CHUNK ? s->size - asked : CHUNK;
		unsigned at;
		json_t *req =
		    json_pack("{s:s,s:o,s:I,s:I,s:I}", "op", "transfer_get", "server_path",
			      ferry__json_bytes(q->server_path), "file", (json_int_t)idx, "offset",
			      (json_int_t)asked, "length", (json_int_t)len);
		if (req && q->holes)
			json_object_set_new(req, "holes", json_true());
		q->rc = ferry__pipeline_send(&q->pl, req, NULL, -1, 0, 0, &at);
		json_decref(req);
		if (q->rc)
			break;
		q->slot[at] = s;
		q->at[at] = asked;
		q->len[at] = len;
		s->refs++;
		asked += len;
	}
	s->asked_all = !q->rc && asked >= s->size;
	slot_unref(q, s);
}

/* Waits for every answer; a broken link gives FERRY_ESTATE (the caller resumes). */
static int getq_drain(struct getq *q)
{
	while (q->pl.inflight && !q->pl.broken)
		getq_recv(q);
	while (q->pl.inflight) { /* answers that will not come: their files stay for a resume */
		struct slot *s = q->slot[q->pl.head++ % WINDOW];
		q->pl.inflight--;
		slot_unref(q, s);
	}
	return ferry__pipeline_end(&q->pl, q->rc);
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

	/* a copy is not the original program: never set-id, whatever the engine says */
	chmod(path, (mode_t)json_integer_value(json_object_get(f, "mode")) & 0777);
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

/*
 * The retrieve of one top entry (a file or a tree) of a transfer: its
 * files go into a part beside the target, which is renamed into place once
 * they are all checked and fsynced.
 */
struct fetch {
	ferry_conn *c;
	const char *server_path;
	json_t *files;	 /* the transfer's manifest */
	const char *top; /* the entry's name, with which its files' paths start */
	size_t tl;
	char *sdir;	/* the transfer's directory on the server */
	char *tmp;	/* the part: .NAME.ferry-part beside the target */
	char **fetched; /* files checked, fsynced together before the rename (owned) */
	size_t nfetched;
	int top_is_dir;
	int holes; /* the engine gives the holes of sparse files */
	struct ferry__progress *p;
};

static int fetch_begin(struct fetch *ft, ferry_conn *c, json_t *reply, const char *top,
		       const char *target, struct ferry__progress *p)
{
	json_t *tr = json_object_get(reply, "transfer");
	const char *slash = strrchr(target, '/');

	*ft = (struct fetch){.c = c,
			     .server_path = json_string_value(json_object_get(tr, "server_path")),
			     .files = json_object_get(tr, "files"),
			     .top = top,
			     .tl = strlen(top),
			     .holes = json_is_true(json_object_get(reply, "holes")),
			     .p = p};
	ft->sdir = strdup(ft->server_path);
	ft->fetched = calloc(json_array_size(ft->files) + 1, sizeof(*ft->fetched));
	ft->tmp =
	    ferry__asprintf("%.*s.%s" FERRY_PART_SUFFIX, slash ? (int)(slash - target + 1) : 0,
			    target, slash ? slash + 1 : target);
	if (!ft->sdir || !ft->fetched || !ft->tmp)
		return ferry__seterr(c, FERRY_ENOMEM, "out of memory");
	*strrchr(ft->sdir, '/') = '\0';
	return 0;
}

static void fetch_end(struct fetch *ft)
{
	for (size_t k = 0; k < ft->nfetched; k++)
		free(ft->fetched[k]);
	free(ft->fetched);
	free(ft->tmp);
	free(ft->sdir);
}

/* The path of the manifest's entry f when it lies in the top entry, else NULL. */
static const char *in_top(const struct fetch *ft, json_t *f)
{
	const char *p = json_string_value(json_object_get(f, "path"));

	return strncmp(p, ft->top, ft->tl) || (p[ft->tl] && p[ft->tl] != '/') ? NULL : p;
}

static int is_dir(json_t *f)
{
	return !strcmp(json_string_value(json_object_get(f, "type")), "dir");
}

/* Copies file f (path p in the transfer) on this host into local. */
static int fetch_here(struct fetch *ft, const char *p, json_t *f, const char *local)
{
	char *remote = ferry__asprintf("%s/%s", ft->sdir, p);
	int rc = remote ? fetch_file(ft->c, remote, f, local, ft->p)
			: ferry__seterr(ft->c, FERRY_ENOMEM, "out of memory");

	free(remote);
	return rc;
}

/* Makes the entry's directories and fetches its files into the part: over the link with q. */
static int fetch_entries(struct fetch *ft, struct getq *q)
{
	json_t *f;
	size_t i;
	int rc = 0;

	json_array_foreach(ft->files, i, f)
	{
		const char *p = in_top(ft, f);
		if (!p)
			continue;
		char *local = ferry__asprintf("%s%s", ft->tmp, p + ft->tl);
		if (!local) {
			rc = ferry__seterr(ft->c, FERRY_ENOMEM, "out of memory");
		} else if (is_dir(f)) {
			ft->top_is_dir |= !p[ft->tl];
			if (mkdir(local, 0700) < 0 && errno != EEXIST)
				rc =
				    ferry__seterr(ft->c, ferry__errno_code(errno),
						  "cannot create '%s': %s", local, strerror(errno));
		} else if (q) {
			getq_file(q, i, f, local);
			rc = q->rc;
		} else if (!(rc = fetch_here(ft, p, f, local))) {
			ft->fetched[ft->nfetched++] = local;
			local = NULL;
		}
		free(local);
		if (rc)
			break;
	}
	return rc;
}

/* fetch_entries over the link, under the connection's lock. */
static int fetch_link(struct fetch *ft)
{
	struct getq q = {.pl.c = ft->c,
			 .server_path = ft->server_path,
			 .holes = ft->holes,
			 .p = ft->p,
			 .got = ft->p->base,
			 .done = ft->fetched};
	int rc, rc2;

	pthread_mutex_lock(&ft->c->mu);
	rc = fetch_entries(ft, &q);
	rc2 = getq_drain(&q); /* a broken link's FERRY_ESTATE comes first */
	pthread_mutex_unlock(&ft->c->mu);
	ft->nfetched = q.ndone;
	ft->p->base = q.got;
	return rc2 ? rc2 : rc;
}

/* Modes and times: files first, then directories from the deepest. */
static void fetch_attrs(const struct fetch *ft)
{
	size_t n = json_array_size(ft->files);

	for (int pass = 0; pass < 2; pass++) {
		for (size_t k = 0; k < n; k++) {
			json_t *f = json_array_get(ft->files, pass ? n - 1 - k : k);
			const char *p = in_top(ft, f);
			if (!p || is_dir(f) != pass)
				continue;
			char *local = ferry__asprintf("%s%s", ft->tmp, p + ft->tl);
			if (local)
				set_attrs(local, f);
			free(local);
		}
	}
}

/* Renames the part to target, in place of what is there. */
static int put_in_place(const struct fetch *ft, const char *target)
{
	struct stat st;

	if (lstat(target, &st) == 0 && S_ISDIR(st.st_mode) && ft->top_is_dir)
		ferry__rm_rf(target); /* rename cannot replace a directory that has entries */
	else if (lstat(target, &st) == 0 && S_ISDIR(st.st_mode) != ft->top_is_dir)
		return ferry__seterr(ft->c, FERRY_EINVAL, "cannot replace '%s': it is a %s", target,
				     ft->top_is_dir ? "file" : "directory");
	if (rename(ft->tmp, target) < 0)
		return ferry__seterr(ft->c, ferry__errno_code(errno),
				     "cannot rename '%s' to '%s': %s", ft->tmp, target,
				     strerror(errno));
	fsync_dir_of(target);
	return 0;
}

/*
 * Whether the client may copy the transfer's files on this host itself:
 * its directory must be one beneath the transfer root this client expects
 * (else the engine, not the user, would choose which of the user's files
 * are read); otherwise they come over the socket.
 */
static int copy_here(ferry_conn *c, const char *sdir)
{
	char *root = c->cfg.host ? NULL : ferry__expected_root(c);
	size_t rl = root ? strlen(root) : 0;
	int ok = root && !strncmp(sdir, root, rl) && sdir[rl] == '/' &&
		 ferry__clean_rel(sdir + rl + 1) && !strchr(sdir + rl + 1, '/');

	free(root);
	return ok;
}

/* Retrieves one top entry (file or tree) of the transfer (reply: its manifest) to target. */
static int fetch_top(ferry_conn *c, json_t *reply, const char *top, const char *target,
		     struct ferry__progress *p)
{
	struct fetch ft;
	int rc = fetch_begin(&ft, c, reply, top, target, p);

	if (!rc)
		rc = copy_here(c, ft.sdir) ? fetch_entries(&ft, NULL) : fetch_link(&ft);
	if (!rc)
		rc = sync_files(c, ft.fetched, ft.nfetched);
	if (!rc) {
		fetch_attrs(&ft);
		rc = put_in_place(&ft, target);
	}
	fetch_end(&ft);
	return rc;
}

/* The local path of each top entry: the one recorded, or dest. */
static char *target_of(ferry_conn *c, json_t *tr, const char *top, size_t ntops, const char *dest)
{
	json_t *lps = json_object_get(tr, "local_paths"), *e;
	size_t i;

	if (dest)
		return ntops == 1 ? strdup(dest) : ferry__asprintf("%s/%s", dest, top);
	json_array_foreach(lps, i, e)
	{
		const char *lp = json_string_value(e);
		if (!lp || strcmp(ferry__base_name(lp), top))
			continue;
		/* the engine's word for where the user sent it from: at least a whole path */
		if (lp[0] != '/' || json_string_length(e) != strlen(lp)) {
			ferry__seterr(c, FERRY_EPROTO,
				      "bad reply from the engine: recorded local path '%s' of '%s' "
				      "is not an absolute path; nothing was written",
				      lp, top);
			return NULL;
		}
		return strdup(lp);
	}
	ferry__seterr(c, FERRY_EINVAL, "no local path recorded for '%s'", top);
	return NULL;
}

/*
 * The engine's manifest, before anything is written: each path relative
 * and clean (a "../x" or "/x" would have the client write outside the
 * destination), each type known, each file's size and checksum there.
 * 0, or FERRY_EPROTO with the message set.
 */
static int check_manifest(ferry_conn *c, json_t *files)
{
	json_t *f;
	size_t i;

	if (!json_is_array(files))
		return ferry__seterr(c, FERRY_EPROTO, "bad reply from the engine: no manifest");
	json_array_foreach(files, i, f)
	{
		json_t *path = json_object_get(f, "path"), *size = json_object_get(f, "size");
		const char *p = json_string_value(path);
		const char *type = json_string_value(json_object_get(f, "type"));
		int file = type && !strcmp(type, "file");
		if (!ferry__clean_rel(p) || json_string_length(path) != strlen(p))
			return ferry__seterr(c, FERRY_EPROTO,
					     "bad reply from the engine: manifest path '%s' is "
					     "not a clean relative path; nothing was written",
					     p ? p : "(none)");
		if (!file && !(type && !strcmp(type, "dir")))
			return ferry__seterr(c, FERRY_EPROTO,
					     "bad reply from the engine: '%s' has no known type",
					     p);
		if (file && (!json_is_integer(size) || json_integer_value(size) < 0 ||
			     !json_is_string(json_object_get(f, "hash"))))
			return ferry__seterr(c, FERRY_EPROTO,
					     "bad reply from the engine: file '%s' has no size or "
					     "checksum",
					     p);
	}
	return 0;
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
			json_array_append_new(tops, ferry__json_bytes(t));
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

/* Retrieves top entry top (one of ntops) to its recorded path, or into dest. */
static int retrieve_top(ferry_conn *c, json_t *reply, const char *top, size_t ntops,
			const char *dest, unsigned flags, struct ferry__progress *p)
{
	char *target = target_of(c, json_object_get(reply, "transfer"), top, ntops, dest);
	struct stat st;
	int rc;

	if (!target)
		return c->errmsg[0] ? FERRY_EINVAL
				    : ferry__seterr(c, FERRY_ENOMEM, "out of memory");
	if (dest && !(flags & FERRY_OVERWRITE) && lstat(target, &st) == 0)
		rc = ferry__seterr(c, FERRY_EINVAL,
				   "'%s' exists: it is not the transfer's own path, so it is "
				   "replaced only when asked (FERRY_OVERWRITE, ferry retrieve "
				   "--force)",
				   target);
	else
		rc = fetch_top(c, reply, top, target, p);
	free(target);
	return rc;
}

static int retrieve(ferry_conn *c, const char *server_path, const char *dest, unsigned flags,
		    struct ferry__progress *p)
{
	json_t *reply = NULL, *tr, *f, *tops = NULL;
	size_t i;
	int rc;

	c->errmsg[0] = '\0';
	if (!server_path)
		return ferry__seterr(c, FERRY_EINVAL, "no server path");
	rc = ferry__call_locked(c,
				json_pack("{s:s,s:o}", "op", "transfer_manifest", "server_path",
					  ferry__json_bytes(server_path)),
				0, &reply);
	if (rc)
		goto out;
	tr = json_object_get(reply, "transfer");
	if (!json_is_string(json_object_get(tr, "server_path")) ||
	    !strchr(json_string_value(json_object_get(tr, "server_path")), '/')) {
		rc = ferry__seterr(c, FERRY_EPROTO, "bad reply from the engine: no server path");
		goto out;
	}
	if ((rc = check_manifest(c, json_object_get(tr, "files"))))
		goto out;
	tops = top_names(json_object_get(tr, "files"));
	p->total = files_size(json_object_get(tr, "files"));
	p->base = 0;
	if (dest && json_array_size(tops) > 1 && mkdir(dest, 0700) < 0 && errno != EEXIST) {
		rc = ferry__seterr(c, ferry__errno_code(errno), "cannot create '%s': %s", dest,
				   strerror(errno));
		goto out;
	}
	json_array_foreach(tops, i, f)
	{
		rc = retrieve_top(c, reply, json_string_value(f), json_array_size(tops), dest,
				  flags, p);
		if (rc)
			goto out;
	}
	ferry__progress_at(p, p->total); /* a transfer without files has moved all too */
	rc = ferry__call_locked(c,
				json_pack("{s:s,s:o}", "op", "transfer_retrieved", "server_path",
					  ferry__json_bytes(server_path)),
				0, NULL);
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
	struct ferry__progress p;

	ferry__progress_init(&p, c);
	for (int attempt = 0; rc == FERRY_ESTATE && attempt < 1000; attempt++) {
		rc = retrieve(c, server_path, dest, flags | (attempt ? FERRY_OVERWRITE : 0), &p);
		if (rc == FERRY_ESTATE && c->fd >= 0)
			break; /* a real state error from the engine, not a broken link */
	}
	return rc;
}

static int retrieve_arg(ferry_conn *c, const char *server_path, const char *dest, unsigned flags)
{
	char *sp;
	int rc;

	if ((rc = ferry__server_arg(c, server_path, &sp)))
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
