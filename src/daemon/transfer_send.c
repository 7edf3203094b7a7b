/*
 * transfer_send.c - the requests that create a transfer and fill it
 * (docs/transfers.md): transfer_send (a manifest of files to come),
 * transfer_register (an output a job will produce) and transfer_put (a
 * chunk of a file, or a local copy's claim), with what makes a send
 * complete: each file checked against its checksum, a tree's files synced
 * together at its end, then named, and the send ready for its jobs.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "hash.h"
#include "jbytes.h"
#include "transfer_int.h"
#include "util.h"

#define DISPOSAL_MAX 87600 /* hours: ten years */

/*
 * Running checksums of files received in one uninterrupted stream of
 * chunks: each chunk is hashed from memory as it is written, so that the
 * last one needs no second pass over the whole file. A file whose stream
 * began elsewhere than at 0, or was interrupted (any transfer_send, which
 * every resume starts with, drops its state), or whose state was evicted,
 * is read back and hashed whole at the end, as before: what was written
 * by anyone but this stream is never taken on trust.
 */

static struct tr_running *running_find(struct ferry_transfers *x, int64_t tid, int64_t idx)
{
	for (size_t i = 0; i < RUNNING_MAX; i++)
		if (x->running[i].h.state && x->running[i].tid == tid && x->running[i].idx == idx)
			return &x->running[i];
	return NULL;
}

static void running_drop(struct tr_running *r)
{
	if (r)
		ferry__hash_release(&r->h);
}

void ferry__tr_running_drop_transfer(struct ferry_transfers *x, int64_t tid)
{
	for (size_t i = 0; i < RUNNING_MAX; i++)
		if (x->running[i].h.state && x->running[i].tid == tid)
			running_drop(&x->running[i]);
}

/* A fresh state for the file, in a free slot or the least recently fed one. */
static struct tr_running *running_start(struct ferry_transfers *x, int64_t tid, int64_t idx)
{
	struct tr_running *r = &x->running[0];

	running_drop(running_find(x, tid, idx));
	for (size_t i = 0; i < RUNNING_MAX && r->h.state; i++)
		if (!x->running[i].h.state || x->running[i].used < r->used)
			r = &x->running[i];
	running_drop(r);
	if (ferry__hash_init(&r->h) < 0)
		return NULL;
	r->tid = tid;
	r->idx = idx;
	r->off = 0;
	r->used = ++x->running_clock;
	return r;
}

/*
 * Feeds a chunk written at off (data NULL: a hole, len zeros); a chunk at 0
 * starts (or restarts) the file's state.
 */
static void running_feed(struct ferry_transfers *x, int64_t tid, int64_t idx, int64_t off,
			 const void *data, size_t len)
{
	struct tr_running *r = off == 0 ? running_start(x, tid, idx) : running_find(x, tid, idx);

	if (!r)
		return;
	if (r->off != off) {
		running_drop(r);
		return;
	}
	if (data)
		ferry__hash_update(&r->h, data, len);
	else
		ferry__hash_zeros(&r->h, len);
	r->off += (int64_t)len;
	r->used = ++x->running_clock;
}

/* mkdir -p beneath the root, each new directory 0700 until the end. */
static int mkdirs_beneath(int root, const char *rel)
{
	char buf[PATH_MAX];
	size_t len = strlen(rel);

	if (len >= sizeof(buf))
		return -ENAMETOOLONG;
	memcpy(buf, rel, len + 1);
	for (char *p = buf;; p++) {
		if (*p != '/' && *p)
			continue;
		char c = *p;
		*p = '\0';
		int fd = ferry__tr_open_beneath(root, buf, O_PATH | O_DIRECTORY, 0);
		if (fd < 0) {
			char *slash = strrchr(buf, '/');
			int parent =
			    slash ? (*slash = '\0',
				     ferry__tr_open_beneath(root, buf, O_PATH | O_DIRECTORY, 0))
				  : dup(root);
			if (slash)
				*slash = '/';
			if (parent < 0)
				return -errno;
			int r = mkdirat(parent, slash ? slash + 1 : buf, 0700);
			int e = errno;
			close(parent);
			if (r < 0 && e != EEXIST)
				return -e;
		} else {
			close(fd);
		}
		if (!c)
			return 0;
		*p = c;
	}
}

static json_t *progress(struct ferry_req *t, const struct db_tr_row *row, json_t *doc)
{
	json_t *a = json_array(), *f;
	size_t i;
	char rel[PATH_MAX], prel[PATH_MAX];

	json_array_foreach(json_object_get(doc, "files"), i, f)
	{
		int complete = 0;
		int64_t done = 0;
		json_t *e;
		if (!strcmp(json_string_value(json_object_get(f, "type")), "dir")) {
			e = json_pack("{s:I,s:b}", "done", (json_int_t)0, "complete", 1);
		} else {
			done = ferry__tr_file_done(t, row, f, &complete);
			complete |= ferry__tr_is_verified(ferry__tr_caches(t), row->id,
							  (int64_t)i); /* named at the end */
			ferry__tr_file_rel(row, f, rel, sizeof(rel));
			char *p = ferry__tr_part_rel(rel, prel, sizeof(prel)) < 0
				      ? NULL
				      : ferry__asprintf("%s/%s", ferry__tr_root(t), prel);
			e = json_pack("{s:I,s:b,s:o}", "done", (json_int_t)done, "complete",
				      complete, "part_path", ferry__json_bytes(p ? p : ""));
			free(p);
		}
		json_array_append_new(a, e);
	}
	return a;
}

/* ---- requests ---- */

static int is_hash(const char *h)
{
	return h && strlen(h) == FERRY_HASH_HEX - 1 &&
	       strspn(h, "0123456789abcdef") == FERRY_HASH_HEX - 1;
}

static int check_manifest(struct ferry_req *t, json_t *files)
{
	json_t *f;
	size_t i;
	int rc;

	if (!json_is_array(files) || !json_array_size(files))
		return ferry__req_fail(t, FERRY_EINVAL, "'files' must be a non-empty array");
	if (json_array_size(files) > MAX_FILES)
		return ferry__req_fail(t, FERRY_EINVAL,
				       "%zu files in one transfer, over the limit of %d",
				       json_array_size(files), MAX_FILES);
	json_array_foreach(files, i, f)
	{
		const char *path = json_string_value(json_object_get(f, "path"));
		const char *type = json_string_value(json_object_get(f, "type"));
		const char *hash = json_string_value(json_object_get(f, "hash"));
		json_t *size = json_object_get(f, "size"), *mode = json_object_get(f, "mode");
		json_t *mtime = json_object_get(f, "mtime_ns");

		if (!json_is_object(f) || !path || !type)
			return ferry__req_fail(t, FERRY_EINVAL, "file %zu needs 'path' and 'type'",
					       i);
		if ((rc = ferry__tr_check_rel(t, path)))
			return rc;
		if (strcmp(type, "file") && strcmp(type, "dir"))
			return ferry__req_fail(t, FERRY_EINVAL,
					       "file '%s': type '%s' (file or dir)", path, type);
		if (!json_is_integer(mode) || json_integer_value(mode) < 0 ||
		    json_integer_value(mode) > 07777 || !json_is_integer(mtime))
			return ferry__req_fail(t, FERRY_EINVAL,
					       "file '%s' needs a 'mode' and an 'mtime_ns'", path);
		if (!strcmp(type, "dir"))
			continue;
		if (!json_is_integer(size) || json_integer_value(size) < 0 ||
		    json_integer_value(size) > (1LL << 50))
			return ferry__req_fail(t, FERRY_EINVAL, "file '%s' needs a 'size'", path);
		/* optional: a client that hashes while it sends gives it with the last chunk */
		if (json_object_get(f, "hash") && !is_hash(hash))
			return ferry__req_fail(t, FERRY_EINVAL,
					       "file '%s': 'hash' must be 32 hex digits", path);
	}
	return 0;
}

static int opt_hours(struct ferry_req *t, int64_t *hours)
{
	json_t *h = json_object_get(t->in, "disposal_hours");

	*hours = 168;
	if (!h)
		return 0;
	if (!json_is_integer(h) || json_integer_value(h) < 1 ||
	    json_integer_value(h) > DISPOSAL_MAX)
		return ferry__req_fail(t, FERRY_EINVAL, "'disposal_hours' must be 1 to %d",
				       DISPOSAL_MAX);
	*hours = json_integer_value(h);
	return 0;
}

/* A new transfer directory and row; the directory name is random and unique. */
static int create(struct ferry_req *t, const char *key, enum ferry_transfer_kind kind,
		  enum ferry_transfer_state state, const char *top, json_t *doc, int64_t hours,
		  struct db_tr_row *row)
{
	char hex[17], dir[20], *text;
	int rc;

	if (ferry__random_hex(hex, 8) < 0)
		return ferry__req_fail(t, FERRY_EINTERNAL, "no random bytes");
	snprintf(dir, sizeof(dir), "t%s", hex);
	if (mkdirat(ferry__tr_rootfd(t), dir, 0700) < 0)
		return ferry__req_fail(t, FERRY_EIO, "cannot create '%s/%s': %s", ferry__tr_root(t),
				       dir, strerror(errno));
	text = ferry__json_dumps(doc, JSON_COMPACT);
	memset(row, 0, sizeof(*row));
	row->key = key ? strdup(key) : NULL;
	row->dir = strdup(dir);
	row->server_path = ferry__asprintf("%s/%s/%s", ferry__tr_root(t), dir, top);
	row->kind = kind;
	row->state = state;
	row->created_at = ferry__now();
	row->deadline = row->created_at + (double)hours * ferry__engine_hour(t->eng);
	if (!row->dir || !row->server_path || !text || (key && !row->key)) {
		free(text);
		return ferry__req_fail(t, FERRY_ENOMEM, "out of memory");
	}
	rc = ferry__db_tr_insert(ferry__engine_db(t->eng), row, text, &row->id);
	free(text);
	if (rc) {
		unlinkat(ferry__tr_rootfd(t), dir, AT_REMOVEDIR);
		return ferry__req_fail(t, rc, "cannot record the transfer");
	}
	return 0;
}

/* Existing transfer with this key: 1 (row filled), 0 none, <0 error. */
static int by_key(struct ferry_req *t, const char *key, struct db_tr_row *row)
{
	int64_t id;
	int rc;

	if (!key)
		return 0;
	rc = ferry__db_tr_find_key(ferry__engine_db(t->eng), key, &id);
	if (rc <= 0)
		return rc < 0 ? ferry__req_fail(t, rc, "database error") : 0;
	rc = ferry__db_tr_by_id(ferry__engine_db(t->eng), id, row);
	if (rc)
		return ferry__req_fail(t, rc, "database error");
	/* known: a retry, or the next call after an interruption; streams restart */
	ferry__tr_running_drop_transfer(ferry__tr_caches(t), row->id);
	return 1;
}

static int opt_key(struct ferry_req *t, const char **key)
{
	json_t *k = json_object_get(t->in, "key");

	*key = json_string_value(k);
	if (k && (!*key || !**key || strlen(*key) > 256))
		return ferry__req_fail(t, FERRY_EINVAL, "'key' must be a string of 1 to 256 bytes");
	return 0;
}

static int local_paths(struct ferry_req *t, json_t **out)
{
	json_t *lp = json_object_get(t->in, "local_paths"), *e;
	size_t i;

	if (!json_is_array(lp) || !json_array_size(lp) || json_array_size(lp) > MAX_FILES)
		return ferry__req_fail(t, FERRY_EINVAL,
				       "'local_paths' must be a non-empty array of paths");
	json_array_foreach(lp, i, e)
	{
		if (!json_is_string(e) || json_string_length(e) > PATH_MAX)
			return ferry__req_fail(t, FERRY_EINVAL, "'local_paths' must hold paths");
	}
	*out = lp;
	return 0;
}

/* Makes the directories of a send, so that files can be written into them. */
static int make_tree(struct ferry_req *t, const struct db_tr_row *row, json_t *files)
{
	char rel[PATH_MAX];
	json_t *f;
	size_t i;

	json_array_foreach(files, i, f)
	{
		int is_dir = !strcmp(json_string_value(json_object_get(f, "type")), "dir");
		ferry__tr_file_rel(row, f, rel, sizeof(rel));
		if (!is_dir)
			*strrchr(rel, '/') = '\0';
		int e = mkdirs_beneath(ferry__tr_rootfd(t), rel);
		if (e < 0)
			return ferry__req_fail(t, FERRY_EIO, "cannot create '%s/%s': %s",
					       ferry__tr_root(t), rel, strerror(-e));
	}
	return 0;
}

/* Tops: the first component of every file, the names the client sent. */
static int top_of(struct ferry_req *t, json_t *files, char *top, size_t cap)
{
	const char *p = json_string_value(json_object_get(json_array_get(files, 0), "path"));
	size_t n = strcspn(p, "/");

	if (n >= cap)
		return ferry__req_fail(t, FERRY_EINVAL, "file name too long");
	memcpy(top, p, n);
	top[n] = '\0';
	return 0;
}

/*
 * The bytes a send's file takes on the root: its size, or for a sparse
 * file its data ("data", which the client counted from its extents; 0
 * from a client that did not say).
 */
static int64_t file_bytes(json_t *f)
{
	int64_t size = json_integer_value(json_object_get(f, "size"));
	json_t *data = json_object_get(f, "data");

	if (strcmp(json_string_value(json_object_get(f, "type")), "file"))
		return 0;
	if (!json_is_true(json_object_get(f, "sparse")))
		return size;
	if (!json_is_integer(data) || json_integer_value(data) < 0)
		return 0;
	return json_integer_value(data) < size ? json_integer_value(data) : size;
}

/*
 * What a send leaves free: FERRY_TRANSFER_MARGIN where the root shares
 * its file system with the database (the default), nothing where it has
 * one of its own, which only transfers fill.
 */
static int64_t margin(struct ferry_req *t)
{
	struct stat root, state;

	if (fstat(ferry__tr_rootfd(t), &root) == 0 &&
	    stat(ferry__engine_state_dir(t->eng), &state) == 0 && root.st_dev != state.st_dev)
		return 0;
	return FERRY_TRANSFER_MARGIN;
}

static int no_space(struct ferry_req *t, const char *top, int64_t need, int64_t avail)
{
	int64_t keep = margin(t);
	char kept[96] = "";

	if (keep)
		snprintf(kept, sizeof(kept),
			 " (the engine keeps %lld MiB free there for its database and jobs)",
			 (long long)(keep >> 20));
	return ferry__req_fail(t, FERRY_ERESOURCE,
			       "no space for '%s' on '%s': %lld bytes needed, %lld free%s", top,
			       ferry__tr_root(t), (long long)need, (long long)avail, kept);
}

/*
 * Refuses, before anything is written, a send whose files the root
 * cannot hold with the margin to spare. The blocks that other
 * sends reserved (reserve()) are not free: an abandoned send holds its
 * space, and a new one is refused rather than fill the disk.
 */
static int check_space(struct ferry_req *t, json_t *files, const char *top, int64_t *need)
{
	int64_t avail = ferry__fs_free(ferry__tr_rootfd(t), NULL);
	json_t *f;
	size_t i;

	*need = 0;
	json_array_foreach(files, i, f)
	{
		int64_t n = file_bytes(f);
		/* sizes of up to 2^50 each: a sum that would wrap stays huge */
		*need = n > 0 && *need > INT64_MAX - n ? INT64_MAX : *need + (n > 0 ? n : 0);
	}
	if (avail < 0 || (*need <= INT64_MAX - margin(t) && *need + margin(t) <= avail))
		return 0;
	return no_space(t, top, *need, avail);
}

/*
 * Reserves the blocks of every file of a new send up front (fallocate;
 * the part's size stays 0, as it says how far the send got), so that no
 * other writer takes them while the bytes come, and the bytes never find
 * the disk full. A sparse file reserves nothing: where its data lies is
 * learnt only as its puts come, and blocks reserved at other offsets
 * would fill its holes (check_space counted its data). A file system that
 * cannot reserve allocates as the writes come.
 */
static int reserve(struct ferry_req *t, const struct db_tr_row *row, json_t *files, const char *top,
		   int64_t need)
{
	char rel[PATH_MAX], prel[PATH_MAX];
	json_t *f;
	size_t i;

	json_array_foreach(files, i, f)
	{
		int64_t n = file_bytes(f);
		int fd, e = 0;
		if (!n || json_is_true(json_object_get(f, "sparse")))
			continue;
		ferry__tr_file_rel(row, f, rel, sizeof(rel));
		if (ferry__tr_part_rel(rel, prel, sizeof(prel)) < 0)
			return ferry__req_fail(t, FERRY_EINVAL, "file name too long: '%s'", rel);
		fd = ferry__tr_open_beneath(ferry__tr_rootfd(t), prel,
					    O_RDWR | O_CREAT | O_NOFOLLOW, 0600);
		if (fd < 0)
			return ferry__req_fail(t, FERRY_EIO, "cannot create '%s/%s': %s",
					       ferry__tr_root(t), prel, strerror(errno));
		if (fallocate(fd, FALLOC_FL_KEEP_SIZE, 0, (off_t)n) < 0)
			e = errno;
		close(fd);
		/* taken since the check, by another writer; or beyond what a file may be */
		if (e == ENOSPC || e == EDQUOT || e == EFBIG)
			return no_space(t, top, need, ferry__fs_free(ferry__tr_rootfd(t), NULL));
	}
	return 0;
}

/* A new send: its directory, record, tree and reserved blocks; all or none. */
static int create_send(struct ferry_req *t, const char *key, json_t *lp, int64_t hours,
		       json_t *files, const char *top, struct db_tr_row *row)
{
	json_t *doc = json_pack("{s:O,s:I,s:O}", "local_paths", lp, "disposal_hours",
				(json_int_t)hours, "files", files);
	int64_t need;
	int rc;

	if (!doc)
		return ferry__req_fail(t, FERRY_ENOMEM, "out of memory");
	/* the database's room first (ferry__req_check_room), then the root's */
	rc = ferry__req_check_room(t);
	if (!rc)
		rc = check_space(t, files, top, &need);
	if (!rc)
		rc = create(t, key, FERRY_TRANSFER_SEND, FERRY_TRANSFER_TRANSFERRING, top, doc,
			    hours, row);
	json_decref(doc);
	if (rc)
		return rc;
	if ((rc = make_tree(t, row, files)) || (rc = reserve(t, row, files, top, need)))
		ferry__tr_remove(t->eng, row); /* nothing of it is left */
	return rc;
}

int ferry__req_transfer_send(struct ferry_req *t)
{
	json_t *files = json_object_get(t->in, "files"), *lp, *doc = NULL;
	struct db_tr_row row = {0};
	const char *key;
	char top[NAME_MAX + 1];
	int64_t hours;
	int rc;

	if ((rc = opt_key(t, &key)) || (rc = opt_hours(t, &hours)) || (rc = local_paths(t, &lp)) ||
	    (rc = check_manifest(t, files)) || (rc = top_of(t, files, top, sizeof(top))))
		return rc;
	rc = by_key(t, key, &row);
	if (rc < 0)
		return rc;
	if (rc == 1) {
		rc = 0;
		struct tr_doc *d = ferry__tr_doc_find(ferry__tr_caches(t), row.id);
		if (d)
			d->left = -1; /* counted again, as the disk has them */
	} else if ((rc = create_send(t, key, lp, hours, files, top, &row))) {
		goto out;
	}
	/* a retry, or the next call after an interruption: where it stands */
	if (!(doc = ferry__tr_doc_of(t, &row))) {
		rc = FERRY_EINTERNAL;
		goto out;
	}
	json_object_set_new(t->out, "id", json_integer(row.id));
	json_object_set_new(t->out, "server_path", ferry__json_bytes(row.server_path));
	json_object_set_new(t->out, "state", json_string(ferry_transfer_state_name(row.state)));
	json_object_set_new(t->out, "files", progress(t, &row, doc));
	json_object_set_new(t->out, "holes", json_true()); /* puts of holes are taken */
out:
	json_decref(doc);
	ferry__db_tr_row_release(&row);
	return rc;
}

int ferry__req_transfer_register(struct ferry_req *t)
{
	const char *key, *name = json_string_value(json_object_get(t->in, "name"));
	struct db_tr_row row = {0};
	json_t *lp, *doc;
	int64_t hours;
	int rc;

	if ((rc = opt_key(t, &key)) || (rc = opt_hours(t, &hours)) || (rc = local_paths(t, &lp)))
		return rc;
	if (!name)
		return ferry__req_fail(t, FERRY_EINVAL, "missing string field 'name'");
	if ((rc = ferry__tr_check_rel(t, name)))
		return rc;
	if (strchr(name, '/'))
		return ferry__req_fail(t, FERRY_EINVAL, "'name' must be one file name, not '%s'",
				       name);
	rc = by_key(t, key, &row);
	if (rc < 0)
		return rc;
	if (rc == 1) {
		rc = 0;
	} else if ((rc = ferry__req_check_room(t))) {
		goto out;
	} else {
		doc = json_pack("{s:O,s:I,s:o,s:[]}", "local_paths", lp, "disposal_hours",
				(json_int_t)hours, "name", ferry__json_bytes(name), "files");
		if (!doc)
			return ferry__req_fail(t, FERRY_ENOMEM, "out of memory");
		rc = create(t, key, FERRY_TRANSFER_REGISTER, FERRY_TRANSFER_REGISTERED, name, doc,
			    hours, &row);
		json_decref(doc);
		if (rc)
			goto out;
	}
	json_object_set_new(t->out, "id", json_integer(row.id));
	json_object_set_new(t->out, "server_path", ferry__json_bytes(row.server_path));
	json_object_set_new(t->out, "state", json_string(ferry_transfer_state_name(row.state)));
out:
	ferry__db_tr_row_release(&row);
	return rc;
}

/* Applies modes and mtimes, files first, then directories deepest first. */
static void apply_attrs(struct ferry_req *t, const struct db_tr_row *row, json_t *files)
{
	char rel[PATH_MAX];
	size_t n = json_array_size(files);

	for (int pass = 0; pass < 2; pass++) {
		for (size_t k = 0; k < n; k++) {
			/* directories: in reverse, so children come before parents */
			json_t *f = json_array_get(files, pass ? n - 1 - k : k);
			int is_dir = !strcmp(json_string_value(json_object_get(f, "type")), "dir");
			if (is_dir != pass)
				continue;
			const char *base;
			int parent = ferry__tr_open_parent(
			    ferry__tr_rootfd(t), ferry__tr_file_rel(row, f, rel, sizeof(rel)),
			    &base);
			if (parent < 0)
				continue;
			int64_t mt = json_integer_value(json_object_get(f, "mtime_ns"));
			struct timespec ts[2] = {{.tv_nsec = UTIME_OMIT},
						 {.tv_sec = (time_t)(mt / 1000000000),
						  .tv_nsec = (long)(mt % 1000000000)}};
			/* an O_PATH parent works with *at() calls through /proc-free paths */
			int dfd = openat(parent, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
			if (dfd >= 0) {
				fchmodat(dfd, base,
					 (mode_t)json_integer_value(json_object_get(f, "mode")), 0);
				utimensat(dfd, base, ts, AT_SYMLINK_NOFOLLOW);
				close(dfd);
			}
			close(parent);
		}
	}
}

/*
 * The send's files not complete: neither named, nor checked and waiting
 * for their name, nor a whole part with a checksum on record (checked at
 * the end, as one no one remembers). Counted once per cached doc, then kept.
 */
static int64_t files_left(struct ferry_req *t, const struct db_tr_row *row, json_t *doc)
{
	struct tr_doc *d = ferry__tr_doc_find(ferry__tr_caches(t), row->id);
	json_t *f;
	size_t i;
	int64_t left = 0;

	if (d && d->left >= 0)
		return d->left;
	json_array_foreach(json_object_get(doc, "files"), i, f)
	{
		int complete = 1;
		int64_t done = 0;
		if (strcmp(json_string_value(json_object_get(f, "type")), "dir"))
			done = ferry__tr_file_done(t, row, f, &complete);
		left += !complete &&
			!ferry__tr_is_verified(ferry__tr_caches(t), row->id, (int64_t)i) &&
			!(done == json_integer_value(json_object_get(f, "size")) &&
			  json_object_get(f, "hash"));
	}
	if (d)
		d->left = left;
	return left;
}

/*
 * File idx of the send was named, or checked to be named at the end (on),
 * or is to be checked again, its part emptied (off: the count is retaken).
 */
static void set_verified(struct ferry_transfers *x, int64_t id, int64_t idx, int on)
{
	struct tr_doc *d = ferry__tr_doc_find(x, id);

	if (!d)
		return;
	if (d->verified && idx >= 0 && (size_t)idx < d->nfiles)
		d->verified[idx] = (unsigned char)on;
	d->left = !on ? -1 : d->left > 0 ? d->left - 1 : d->left;
}

#define SYNC_BATCH 256 /* parts open at once */

/* Opens the part of file f, checked against its recorded checksum unless verified. */
static int open_part(struct ferry_req *t, const struct db_tr_row *row, json_t *f, int verified)
{
	const char *want = json_string_value(json_object_get(f, "hash"));
	char rel[PATH_MAX], prel[PATH_MAX], got[FERRY_HASH_HEX];
	int fd, e = 0;

	ferry__tr_file_rel(row, f, rel, sizeof(rel));
	if (ferry__tr_part_rel(rel, prel, sizeof(prel)) < 0)
		return ferry__req_fail(t, FERRY_EINVAL, "file name too long: '%s'", rel);
	fd = ferry__tr_open_beneath(ferry__tr_rootfd(t), prel, O_RDWR, 0);
	if (fd < 0)
		return ferry__req_fail(t, FERRY_EIO, "cannot open '%s/%s': %s", ferry__tr_root(t),
				       prel, strerror(errno));
	if (!verified)
		e = ferry__hash_fd(fd, (uint64_t)json_integer_value(json_object_get(f, "size")),
				   got);
	if (!verified && (e < 0 || !want || strcmp(got, want))) {
		if (!e && ftruncate(fd, 0) < 0) /* never named with wrong bytes: sent again */
			e = -errno;
		close(fd);
		return e < 0 ? ferry__req_fail(t, FERRY_EIO, "cannot read back '%s/%s': %s",
					       ferry__tr_root(t), prel, strerror(-e))
			     : ferry__req_fail(
				   t, FERRY_EIO,
				   "checksum mismatch for '%s' of transfer '%s': the received copy "
				   "was discarded; sending again sends it again",
				   json_string_value(json_object_get(f, "path")), row->server_path);
	}
	return fd;
}

/* Renames the part of file f; fsyncs its directory when it is not *last's. */
static int name_part(struct ferry_req *t, const struct db_tr_row *row, json_t *f, char *last,
		     size_t cap)
{
	char rel[PATH_MAX], *part;
	const char *base;
	int parent = ferry__tr_open_parent(ferry__tr_rootfd(t),
					   ferry__tr_file_rel(row, f, rel, sizeof(rel)), &base),
	    e = 0;

	if (parent < 0)
		return ferry__req_fail(t, FERRY_EIO, "cannot open the directory of '%s/%s': %s",
				       ferry__tr_root(t), rel, strerror(errno));
	part = ferry__tr_part_name(base);
	if (!part || renameat(parent, part, parent, base) < 0)
		e = part ? errno : ENOMEM;
	free(part);
	*strrchr(rel, '/') = '\0';
	if (!e && strcmp(rel, last)) {
		int dfd = openat(parent, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		if (dfd < 0 || fsync(dfd) < 0)
			e = errno;
		if (dfd >= 0)
			close(dfd);
		snprintf(last, cap, "%s", rel);
	}
	close(parent);
	return e ? ferry__req_fail(t, FERRY_EIO, "cannot complete '%s/%s': %s", ferry__tr_root(t),
				   rel, strerror(e))
		 : 0;
}

/*
 * The end of a tree's send: the files checked but not named yet are
 * fsynced together, in batches, then renamed, and their directories
 * fsynced, each once in a row. A part no one remembers as checked (the
 * engine restarted, or forgot the tree) is checked first against the
 * checksum on record.
 */
static int name_parts(struct ferry_req *t, const struct db_tr_row *row, json_t *files)
{
	size_t n = json_array_size(files), *todo = malloc((n ? n : 1) * sizeof(*todo)), k = 0;
	int fds[SYNC_BATCH], rc = 0;
	char last[PATH_MAX] = "";

	if (!todo)
		return ferry__req_fail(t, FERRY_ENOMEM, "out of memory");
	for (size_t i = 0; i < n; i++) {
		json_t *f = json_array_get(files, i);
		int complete = 0;
		if (!strcmp(json_string_value(json_object_get(f, "type")), "file") &&
		    (ferry__tr_file_done(t, row, f, &complete), !complete))
			todo[k++] = i;
	}
	for (size_t b = 0; !rc && b < k; b += SYNC_BATCH) {
		size_t m = 0;
		for (; !rc && m < SYNC_BATCH && b + m < k; m++) {
			size_t i = todo[b + m];
			fds[m] = open_part(
			    t, row, json_array_get(files, i),
			    ferry__tr_is_verified(ferry__tr_caches(t), row->id, (int64_t)i));
			if (fds[m] < 0)
				rc = fds[m];
		}
		if (rc)
			m--; /* the one that failed holds no descriptor */
		int e = rc ? 0 : ferry__fsync_all(fds, m);
		while (m) {
			m--;
			/*
			 * After a failed writeback the pages may be clean and
			 * the disk without them: no part of the batch is
			 * trusted, each is emptied and sent again.
			 */
			if (e) {
				/* one that cannot be emptied is checked again at the end */
				int z = ftruncate(fds[m], 0);
				(void)z;
				set_verified(ferry__tr_caches(t), row->id, (int64_t)todo[b + m], 0);
			}
			close(fds[m]);
		}
		if (e)
			rc = ferry__req_fail(
			    t, FERRY_EIO,
			    "cannot sync the files of '%s': %s; they were discarded, and "
			    "sending again sends them again",
			    row->server_path, strerror(e));
	}
	for (size_t j = 0; !rc && j < k; j++)
		rc = name_part(t, row, json_array_get(files, todo[j]), last, sizeof(last));
	free(todo);
	return rc;
}

/*
 * A file renamed just before the engine died has its name but not its
 * checksum's row: the rename is not in the database's transaction. It was
 * checked and synced before the rename, so its bytes on disk are the ones
 * that matched.
 */
static int hash_unrecorded(struct ferry_req *t, const struct db_tr_row *row, json_t *files)
{
	char rel[PATH_MAX], hex[FERRY_HASH_HEX];
	json_t *f;
	size_t i;

	json_array_foreach(files, i, f)
	{
		if (json_object_get(f, "hash") ||
		    strcmp(json_string_value(json_object_get(f, "type")), "file"))
			continue;
		uint64_t size = (uint64_t)json_integer_value(json_object_get(f, "size"));
		int fd = ferry__tr_open_beneath(
		    ferry__tr_rootfd(t), ferry__tr_file_rel(row, f, rel, sizeof(rel)), O_RDONLY, 0);
		int e = fd < 0 ? -errno : ferry__hash_fd(fd, size, hex);
		if (fd >= 0)
			close(fd);
		if (e < 0)
			return ferry__req_fail(t, FERRY_EIO, "cannot read back '%s/%s': %s",
					       ferry__tr_root(t), rel, strerror(-e));
		json_object_set_new(f, "hash", json_string(hex));
	}
	return 0;
}

/* Every file of a send is complete: it becomes ready and its jobs may start. */
static int finish_send(struct ferry_req *t, struct db_tr_row *row, json_t *doc)
{
	json_t *files = json_object_get(doc, "files");
	struct tr_doc *d = ferry__tr_doc_find(ferry__tr_caches(t), row->id);
	int rc;

	if (files_left(t, row, doc))
		return 0;
	if (d && (d->left = -1, files_left(t, row, doc)))
		return 0; /* the count was wrong: what is on disk counts */
	if ((rc = name_parts(t, row, files)) || (rc = hash_unrecorded(t, row, files)))
		return rc;
	apply_attrs(t, row, files);
	row->state = FERRY_TRANSFER_READY;
	row->ended_at = ferry__now();
	row->deadline = row->ended_at + ferry__tr_hours_s(t, doc);
	/* the checksums join the doc, which changes no more */
	if ((rc = ferry__tr_save(t, row, doc)) ||
	    (rc = ferry__db_tr_hashes_clear(ferry__engine_db(t->eng), row->id)))
		return rc == FERRY_EINTERNAL ? ferry__req_fail(t, rc, "cannot record the transfer")
					     : rc;
	t->durable = 1; /* the send is ready: its jobs may start (dispatch.c, transfer_put) */
	ferry__engine_inputs_changed(t->eng, row->id);
	return 0;
}

/* What a put says of its bytes, and the one that ends a file of the whole. */
struct want {
	int64_t hole;		 /* a put of a hole of this length: no data, the part extended */
	int sparse;		 /* the file has holes: no blocks are reserved for them */
	int defer;		 /* a tree's file: checked now, named with the others at the end */
	const char *hash;	 /* the file's checksum */
	int64_t copied_from;	 /* -1, or: a client on this host wrote from here on itself */
	const char *prefix_hash; /* then, if above 0: the checksum of what comes before */
};

/* The part holds the whole file: checks it, then gives it its name. */
static int complete_file(struct ferry_req *t, const struct db_tr_row *row, json_t *f, int parent,
			 const char *base, const char *part, int fd, struct tr_running *r,
			 const struct want *w)
{
	uint64_t size = (uint64_t)json_integer_value(json_object_get(f, "size"));
	const char *want = w->hash;
	char got[FERRY_HASH_HEX];
	int e = 0;

	if (w->copied_from >= 0) {
		/*
		 * The client copied the rest from its source, hashing the very
		 * bytes it wrote, in one pass: its checksum stands for them,
		 * as a remote stream's chunks are hashed from memory. What was
		 * here before, an earlier call's, is read back and checked
		 * against the same bytes of the source (docs/architecture.md).
		 */
		want = w->prefix_hash;
		if (w->copied_from > 0)
			e = ferry__hash_fd(fd, (uint64_t)w->copied_from, got);
		else
			want = NULL;
	} else if (r && r->off <= (int64_t)size) {
		/* the stream's bytes are hashed; whatever it lacked is read */
		e = ferry__hash_update_range(&r->h, fd, (uint64_t)r->off, size);
		ferry__hash_final(&r->h, got);
	} else {
		e = ferry__hash_fd(fd, size, got);
	}
	running_drop(r);

	if (e < 0)
		return ferry__req_fail(t, FERRY_EIO, "cannot read back '%s/%s/%s': %s",
				       ferry__tr_root(t), row->dir,
				       json_string_value(json_object_get(f, "path")), strerror(-e));
	if (want && strcmp(got, want)) {
		/* never ready with wrong bytes: start that file over */
		if (ftruncate(fd, 0) < 0)
			unlinkat(parent, part, 0);
		return ferry__req_fail(
		    t, FERRY_EIO,
		    "checksum mismatch for '%s' of transfer '%s' (sent %s, received %s): "
		    "the received copy was discarded; sending again starts it over",
		    json_string_value(json_object_get(f, "path")), row->server_path, want, got);
	}
	if (w->defer) {
		sync_file_range(fd, 0, 0,
				SYNC_FILE_RANGE_WRITE); /* the end's fsync finds it written */
		return 0;
	}
	if (fsync(fd) < 0 || renameat(parent, part, parent, base) < 0)
		return ferry__req_fail(
		    t, FERRY_EIO, "cannot complete '%s/%s/%s': %s", ferry__tr_root(t), row->dir,
		    json_string_value(json_object_get(f, "path")), strerror(errno));
	int dfd = openat(parent, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd >= 0) {
		fsync(dfd);
		close(dfd);
	}
	return 0;
}

#define WRITEBACK_SLICE (8 << 20)

/* Extends the part (fd) at off over a hole: 0, or FERRY_EIO with the part as it was. */
static int put_hole(struct ferry_req *t, struct db_tr_row *row, int64_t idx, int fd, int64_t off,
		    int64_t len, const char *rel)
{
	if (ftruncate(fd, off + len) < 0) {
		int e = errno;
		if (ftruncate(fd, off) < 0) /* what was acknowledged, nothing more */
			e = errno;
		return ferry__req_fail(t, FERRY_EIO, "cannot extend '%s/%s': %s", ferry__tr_root(t),
				       rel, strerror(e));
	}
	running_feed(ferry__tr_caches(t), row->id, idx, off, NULL, (size_t)len);
	return 0;
}

/*
 * Writes the request's bytes into the part (fd) at off, of a file of size
 * bytes: 0, or FERRY_EIO with the part cut back to off, what was
 * acknowledged. The bytes feed the file's running checksum.
 */
static int put_bytes(struct ferry_req *t, struct db_tr_row *row, int64_t idx, int fd, int64_t off,
		     int64_t size, const char *rel, const struct want *want)
{
	if (want->hole)
		return put_hole(t, row, idx, fd, off, want->hole, rel);
	if (off == 0 && t->datalen && !want->sparse)
		ferry__preallocate(fd, 0, size);
	for (size_t w = 0; w < t->datalen;) {
		ssize_t n = pwrite(fd, (const char *)t->data + w, t->datalen - w, off + (off_t)w);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			int e = errno;
			if (ftruncate(fd, off) < 0) /* what was acknowledged, nothing more */
				e = errno;
			else if (!want->sparse) /* the cut gave back the blocks it reserved */
				ferry__preallocate(fd, off, size - off);
			return ferry__req_fail(t, FERRY_EIO, "cannot write '%s/%s': %s",
					       ferry__tr_root(t), rel, strerror(e));
		}
		w += (size_t)n;
	}
	row->received += (int64_t)t->datalen;
	if (t->datalen) {
		/*
		 * The disk works while the next chunks come, so that the last
		 * one's fsync finds little: the writeback of each slice starts
		 * once a chunk crosses its end, one call for several chunks.
		 */
		int64_t slice_end = (off + (int64_t)t->datalen) / WRITEBACK_SLICE * WRITEBACK_SLICE;
		if (slice_end > off)
			sync_file_range(fd, (off_t)(slice_end - WRITEBACK_SLICE), WRITEBACK_SLICE,
					SYNC_FILE_RANGE_WRITE);
		running_feed(ferry__tr_caches(t), row->id, idx, off, t->data, t->datalen);
	}
	return 0;
}

/* Writes a chunk at offset (the part's size); the last one completes the file. */
static int write_chunk(struct ferry_req *t, struct db_tr_row *row, json_t *f, int64_t idx,
		       int64_t off, const struct want *want, int *complete)
{
	char rel[PATH_MAX], *part = NULL;
	const char *base;
	int64_t size = json_integer_value(json_object_get(f, "size"));
	int64_t len = want->hole ? want->hole : (int64_t)t->datalen; /* bytes the put brings */
	int parent = ferry__tr_open_parent(ferry__tr_rootfd(t),
					   ferry__tr_file_rel(row, f, rel, sizeof(rel)), &base);
	int fd = -1, rc = 0;
	struct stat st;

	*complete = 0;
	if (parent < 0)
		return ferry__req_fail(t, FERRY_EIO, "cannot open the directory of '%s/%s': %s",
				       ferry__tr_root(t), rel, strerror(errno));
	if (ferry__tr_is_verified(ferry__tr_caches(t), row->id, idx) ||
	    (fstatat(parent, base, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISREG(st.st_mode))) {
		*complete = 1; /* a replay of the last chunk: already done */
		goto out;
	}
	part = ferry__tr_part_name(base);
	fd = part ? openat(parent, part, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600) : -1;
	if (fd < 0 || fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		rc = ferry__req_fail(t, FERRY_EIO, "cannot open '%s/%s': %s", ferry__tr_root(t),
				     rel, strerror(errno));
		goto out;
	}
	if (off != st.st_size) {
		rc = ferry__req_fail(t, FERRY_ESTATE,
				     "chunk at offset %lld, but %lld bytes of '%s' are here",
				     (long long)off, (long long)st.st_size, rel);
		json_object_set_new(t->out, "done", json_integer(st.st_size));
		goto out;
	}
	if (off + len > size) {
		rc = ferry__req_fail(t, FERRY_EINVAL,
				     "chunk ends at %lld, past the size %lld of '%s'",
				     (long long)(off + len), (long long)size, rel);
		goto out;
	}
	if (off + len == size && !want->hash) {
		rc = ferry__req_fail(
		    t, FERRY_EINVAL,
		    "the last chunk of '%s' needs a 'hash': its manifest gave none", rel);
		goto out;
	}
	if ((rc = put_bytes(t, row, idx, fd, off, size, rel, want)))
		goto out;
	if (off + len == size) {
		rc = complete_file(t, row, f, parent, base, part, fd,
				   running_find(ferry__tr_caches(t), row->id, idx), want);
		*complete = !rc;
		if (!rc)
			set_verified(ferry__tr_caches(t), row->id, idx, 1);
	}
out:
	if (fd >= 0)
		close(fd);
	if (parent >= 0)
		close(parent);
	free(part);
	return rc;
}

/*
 * The send transfer `id` still taking data, and its file idx: 0 with
 * *row, *doc (release both) and *f set, or an error (row released).
 */
static int receiving_file(struct ferry_req *t, int64_t id, int64_t idx, struct db_tr_row *row,
			  json_t **doc, json_t **f)
{
	int rc = ferry__db_tr_by_id(ferry__engine_db(t->eng), id, row);

	*doc = NULL;
	if (rc)
		return ferry__req_fail(t, rc, "no transfer %lld", (long long)id);
	if (row->kind != FERRY_TRANSFER_SEND || row->state != FERRY_TRANSFER_TRANSFERRING) {
		rc = ferry__req_fail(t, FERRY_ESTATE, "transfer '%s' is %s: it takes no data",
				     row->server_path, ferry_transfer_state_name(row->state));
	} else if (!(*doc = ferry__tr_doc_of(t, row))) {
		rc = FERRY_EINTERNAL;
	} else {
		*f = json_array_get(json_object_get(*doc, "files"), (size_t)idx);
		if (*f && !strcmp(json_string_value(json_object_get(*f, "type")), "file"))
			return 0;
		rc = ferry__req_fail(t, FERRY_EINVAL, "transfer '%s' has no file %lld",
				     row->server_path, (long long)idx);
	}
	json_decref(*doc);
	*doc = NULL;
	ferry__db_tr_row_release(row);
	return rc;
}

/*
 * A put that ends a local copy says from where the client wrote the part
 * itself ("copied_from"), and gives the checksum of the source before
 * that ("prefix_hash"), which the engine checks against the part.
 */
static int copy_claim(struct ferry_req *t, json_t *f, int64_t off, struct want *w)
{
	json_t *from = json_object_get(t->in, "copied_from");
	const char *ph = json_string_value(json_object_get(t->in, "prefix_hash"));
	int64_t size = json_integer_value(json_object_get(f, "size"));

	if (!from)
		return 0;
	if (!json_is_integer(from) || json_integer_value(from) < 0 ||
	    json_integer_value(from) > size || off != size || t->datalen || w->hole)
		return ferry__req_fail(
		    t, FERRY_EINVAL,
		    "'copied_from' goes with an empty put at the end of the file, "
		    "and from 0 to its size");
	w->copied_from = json_integer_value(from);
	if (w->copied_from > 0 && !is_hash(ph))
		return ferry__req_fail(t, FERRY_EINVAL,
				       "'copied_from' above 0 needs a 'prefix_hash'");
	w->prefix_hash = ph;
	return 0;
}

int ferry__req_transfer_put(struct ferry_req *t)
{
	struct db_tr_row row = {0};
	json_t *doc = NULL, *f = NULL;
	const char *hash = json_string_value(json_object_get(t->in, "hash")), *listed;
	int64_t id, idx, off, hole = 0;
	int rc, complete = 0;

	if ((rc = ferry__tr_get_int(t, "id", 1, INT64_MAX, &id)) ||
	    (rc = ferry__tr_get_int(t, "file", 0, MAX_FILES, &idx)) ||
	    (rc = ferry__tr_get_int(t, "offset", 0, 1LL << 50, &off)))
		return rc;
	if (t->datalen > MAX_CHUNK)
		return ferry__req_fail(t, FERRY_EINVAL, "chunk of %zu bytes, over the limit of %u",
				       t->datalen, MAX_CHUNK);
	if (json_object_get(t->in, "hash") && !is_hash(hash))
		return ferry__req_fail(t, FERRY_EINVAL, "'hash' must be 32 hex digits");
	if (json_object_get(t->in, "hole") &&
	    (rc = ferry__tr_get_int(t, "hole", 1, MAX_HOLE, &hole)))
		return rc;
	if (hole && t->datalen)
		return ferry__req_fail(t, FERRY_EINVAL, "a put of a hole carries no data");
	if ((rc = receiving_file(t, id, idx, &row, &doc, &f)))
		return rc;
	/* the manifest's, from a client that hashed before sending, else the last put's */
	listed = json_string_value(json_object_get(f, "hash"));
	struct want w = {.hole = hole,
			 .sparse = json_is_true(json_object_get(f, "sparse")),
			 .defer = json_array_size(json_object_get(doc, "files")) > 1,
			 .hash = listed ? listed : hash,
			 .copied_from = -1};
	if (listed && hash && strcmp(listed, hash))
		rc = ferry__req_fail(t, FERRY_EINVAL, "'hash' %s differs from the manifest's %s",
				     hash, listed);
	else if (!(rc = copy_claim(t, f, off, &w)))
		rc = write_chunk(t, &row, f, idx, off, &w, &complete);
	if (!rc && complete && !listed && hash) {
		/* a row of its own: the doc is written once, when the send is complete */
		json_object_set_new(f, "hash", json_string(hash));
		if (ferry__db_tr_hash_add(ferry__engine_db(t->eng), id, idx, hash)) {
			ferry__tr_doc_drop(ferry__tr_caches(t), id);
			rc = ferry__req_fail(t, FERRY_EINTERNAL, "cannot record the checksum");
		}
	}
	int rc2 = ferry__tr_save(t, &row, NULL); /* the count, also after a failure */
	if (!rc)
		rc = rc2;
	if (!rc && complete)
		rc = finish_send(t, &row, doc);
	if (!rc) {
		json_object_set_new(t->out, "complete", json_boolean(complete));
		json_object_set_new(t->out, "state",
				    json_string(ferry_transfer_state_name(row.state)));
	}
	json_decref(doc);
	ferry__db_tr_row_release(&row);
	return rc;
}
