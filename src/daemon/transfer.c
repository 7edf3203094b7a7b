/*
 * transfer.c - files moved between clients and the engine's host
 * (docs/transfers.md): the transfer root, chunks written into ".part"
 * files, end-to-end checksums, outputs that jobs produce, disposal.
 *
 * Every path a client names is confined to the transfer root: it must lie
 * under the root's absolute path, each component is checked (no "..", no
 * control characters), and every file is opened with openat2(2)
 * RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS from a descriptor of the root, so
 * neither a name nor a symlink planted or swapped in later can lead out.
 *
 * Progress is the file system's: the bytes of a file received so far are
 * the size of its ".part" file, and a complete file has its final name,
 * taken by rename only after its checksum matched and it was fsynced. The
 * database keeps the manifest and the state, not per-chunk offsets, and
 * no request reads or writes a whole manifest but the first and the last
 * of a send (docs/architecture.md, "File transfers").
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/openat2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "dispatch.h"
#include "hash.h"
#include "util.h"

#define MAX_FILES    100000
#define MAX_CHUNK    (8u << 20)
#define PART_SUFFIX  ".ferry-part"
#define ROLE_INPUT   0
#define ROLE_OUTPUT  1
#define DISPOSAL_MAX 87600

/*
 * Running checksums of files received in one uninterrupted stream of
 * chunks: each chunk is hashed from memory as it is written, so that the
 * last one needs no second pass over the whole file. A file whose stream
 * began elsewhere than at 0, or was interrupted (any transfer_send, which
 * every resume starts with, drops its state), or whose state was evicted,
 * is read back and hashed whole at the end, as before: what was written
 * by anyone but this stream is never taken on trust.
 */
#define RUNNING_MAX 8
static struct running {
	int64_t tid, idx, off; /* off: bytes hashed so far */
	uint64_t used;	       /* when last fed, for eviction */
	struct ferry_hash h;
} running[RUNNING_MAX];
static uint64_t running_clock;

static struct running *running_find(int64_t tid, int64_t idx)
{
	for (size_t i = 0; i < RUNNING_MAX; i++)
		if (running[i].h.state && running[i].tid == tid && running[i].idx == idx)
			return &running[i];
	return NULL;
}

static void running_drop(struct running *r)
{
	if (r)
		ferry__hash_release(&r->h);
}

static void running_drop_transfer(int64_t tid)
{
	for (size_t i = 0; i < RUNNING_MAX; i++)
		if (running[i].h.state && running[i].tid == tid)
			running_drop(&running[i]);
}

/* A fresh state for the file, in a free slot or the least recently fed one. */
static struct running *running_start(int64_t tid, int64_t idx)
{
	struct running *r = &running[0];

	running_drop(running_find(tid, idx));
	for (size_t i = 0; i < RUNNING_MAX && r->h.state; i++)
		if (!running[i].h.state || running[i].used < r->used)
			r = &running[i];
	running_drop(r);
	if (ferry__hash_init(&r->h) < 0)
		return NULL;
	r->tid = tid;
	r->idx = idx;
	r->off = 0;
	r->used = ++running_clock;
	return r;
}

/* Feeds a chunk written at off; a chunk at 0 starts (or restarts) the file's state. */
static void running_feed(int64_t tid, int64_t idx, int64_t off, const void *data, size_t len)
{
	struct running *r = off == 0 ? running_start(tid, idx) : running_find(tid, idx);

	if (!r)
		return;
	if (r->off != off) {
		running_drop(r);
		return;
	}
	ferry__hash_update(&r->h, data, len);
	r->off += (int64_t)len;
	r->used = ++running_clock;
}

/* ---- paths beneath the root ---- */

static int open_beneath(int dirfd, const char *rel, int flags, mode_t mode)
{
	struct open_how how = {
	    .flags = (uint64_t)(flags | O_CLOEXEC),
	    .mode = (flags & O_CREAT) ? mode : 0,
	    .resolve = RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS,
	};
	long fd = syscall(SYS_openat2, dirfd, rel, &how, sizeof(how));

	return fd < 0 ? -1 : (int)fd;
}

/*
 * A relative name from a client: components separated by single '/', none
 * empty, "." or "..", none longer than NAME_MAX or holding a control
 * character, none ending in the suffix of our partial files.
 */
static int check_rel(struct ferry_req *t, const char *rel)
{
	size_t len = strlen(rel);
	const char *p = rel;

	if (!len)
		return ferry__req_fail(t, FERRY_EINVAL, "an empty file name");
	if (len > PATH_MAX / 2)
		return ferry__req_fail(t, FERRY_EINVAL,
				       "file name of %zu bytes is too long (limit %d)", len,
				       PATH_MAX / 2);
	while (*p) {
		const char *slash = strchr(p, '/');
		size_t n = slash ? (size_t)(slash - p) : strlen(p);
		if (n == 0 || (n == 1 && p[0] == '.') || (n == 2 && p[0] == '.' && p[1] == '.'))
			return ferry__req_fail(t, FERRY_EINVAL,
					       "file name '%s' has an empty, '.' or '..' component",
					       rel);
		if (n > NAME_MAX)
			return ferry__req_fail(t, FERRY_EINVAL,
					       "a component of '%.80s...' is too long", rel);
		for (size_t i = 0; i < n; i++)
			if ((unsigned char)p[i] < 0x20 || p[i] == 0x7f)
				return ferry__req_fail(t, FERRY_EINVAL,
						       "file name '%s' holds a control character",
						       rel);
		if (n >= sizeof(PART_SUFFIX) - 1 && !memcmp(p + n - (sizeof(PART_SUFFIX) - 1),
							    PART_SUFFIX, sizeof(PART_SUFFIX) - 1))
			return ferry__req_fail(t, FERRY_EINVAL, "file name '%s' ends in '%s'", rel,
					       PART_SUFFIX);
		p += n;
		if (*p == '/')
			p++;
	}
	return 0;
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
		int fd = open_beneath(root, buf, O_PATH | O_DIRECTORY, 0);
		if (fd < 0) {
			char *slash = strrchr(buf, '/');
			int parent = slash ? (*slash = '\0',
					      open_beneath(root, buf, O_PATH | O_DIRECTORY, 0))
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

/* The parent directory of rel (opened beneath root) and rel's last component. */
static int open_parent(int root, const char *rel, const char **base)
{
	const char *slash = strrchr(rel, '/');
	char buf[PATH_MAX];

	*base = slash ? slash + 1 : rel;
	if (!slash)
		return open_beneath(root, ".", O_PATH | O_DIRECTORY, 0);
	if ((size_t)(slash - rel) >= sizeof(buf)) {
		errno = ENAMETOOLONG;
		return -1;
	}
	memcpy(buf, rel, (size_t)(slash - rel));
	buf[slash - rel] = '\0';
	return open_beneath(root, buf, O_PATH | O_DIRECTORY, 0);
}

static char *part_name(const char *base)
{
	return ferry__asprintf(".%s" PART_SUFFIX, base);
}

/* ---- rows ---- */

static const char *root(struct ferry_req *t)
{
	return ferry__engine_transfer_root(t->eng);
}

static int rootfd(struct ferry_req *t)
{
	return ferry__engine_transfer_root_fd(t->eng);
}

/*
 * The transfer a server path names (the path itself or one inside it) and
 * the path relative to the root. 0, FERRY_ENOJOB (nothing there) or an
 * error, with the message set.
 */
static int find_by_path(struct ferry_req *t, const char *path, struct db_tr_row *row)
{
	size_t rl = strlen(root(t));
	char dir[64];
	const char *rel, *slash;
	int rc;

	if (strncmp(path, root(t), rl) || path[rl] != '/')
		return ferry__req_fail(t, FERRY_EINVAL, "'%s' is not under the transfer root '%s'",
				       path, root(t));
	rel = path + rl + 1;
	if ((rc = check_rel(t, rel)))
		return rc;
	slash = strchr(rel, '/');
	if (!slash || (size_t)(slash - rel) >= sizeof(dir))
		return ferry__req_fail(t, FERRY_ENOJOB, "no transfer at '%s'", path);
	memcpy(dir, rel, (size_t)(slash - rel));
	dir[slash - rel] = '\0';
	rc = ferry__db_tr_by_dir(ferry__engine_db(t->eng), dir, row);
	if (rc == FERRY_ENOJOB)
		return ferry__req_fail(t, FERRY_ENOJOB, "no transfer at '%s'", path);
	if (rc)
		return ferry__req_fail(t, rc, "cannot read the transfer of '%s'", path);
	return 0;
}

static int get_path_arg(struct ferry_req *t, const char **path)
{
	*path = json_string_value(json_object_get(t->in, "server_path"));
	if (!*path)
		return ferry__req_fail(t, FERRY_EINVAL, "missing string field 'server_path'");
	return 0;
}

/* ---- docs ---- */

/*
 * Parsed docs of the transfers in use. Without them a request about one
 * file of a tree of thousands read and parsed the whole manifest, and each
 * completed file wrote it back: O(files) per request, which made sending
 * a tree quadratic (1,000 small files took 8 s). The engine is the
 * database's only writer, and a doc changes only through save() or is
 * dropped, so an entry is never stale. A send's count of files still
 * incomplete is kept with it, so that a put need not stat them all.
 */
#define DOCS_MAX 8
static struct cdoc {
	int64_t id;
	json_t *doc;		 /* NULL: a free slot */
	int64_t left;		 /* a send's files not complete yet; -1: not counted */
	unsigned char *verified; /* a tree's files checked, to be named at its end */
	size_t nfiles;
	uint64_t used;
} docs[DOCS_MAX];
static uint64_t docs_clock;

static struct cdoc *doc_find(int64_t id)
{
	for (size_t i = 0; i < DOCS_MAX; i++)
		if (docs[i].doc && docs[i].id == id)
			return &docs[i];
	return NULL;
}

static void doc_drop(int64_t id)
{
	struct cdoc *d = doc_find(id);

	if (d) {
		json_decref(d->doc);
		free(d->verified);
		memset(d, 0, sizeof(*d));
	}
}

static void doc_keep(int64_t id, json_t *doc)
{
	struct cdoc *d = &docs[0];

	for (size_t i = 0; i < DOCS_MAX && d->doc; i++)
		if (!docs[i].doc || docs[i].used < d->used)
			d = &docs[i];
	json_decref(d->doc);
	free(d->verified);
	*d = (struct cdoc){.id = id, .doc = json_incref(doc), .left = -1, .used = ++docs_clock};
	d->nfiles = json_array_size(json_object_get(doc, "files"));
	d->verified = d->nfiles > 1 ? calloc(d->nfiles, 1) : NULL; /* none: checked again */
}

/* Whether file idx of the transfer was checked and waits for its name. */
static int is_verified(int64_t id, int64_t idx)
{
	struct cdoc *d = doc_find(id);

	return d && d->verified && idx >= 0 && (size_t)idx < d->nfiles && d->verified[idx];
}

/* A checksum recorded apart, into the doc's file entry. */
static void merge_hash(void *files, int64_t idx, const char *hash)
{
	json_t *f = json_array_get(files, (size_t)idx);

	if (f && hash && !json_object_get(f, "hash"))
		json_object_set_new(f, "hash", json_string(hash));
}

/* The row's doc, a new reference, or NULL (message set); keep: cache it. */
static json_t *doc_load(struct ferry_req *t, const struct db_tr_row *row, int keep)
{
	struct ferry_db *db = ferry__engine_db(t->eng);
	struct cdoc *d = doc_find(row->id);
	char *text = NULL;
	json_t *doc = NULL;

	if (d) {
		d->used = ++docs_clock;
		return json_incref(d->doc);
	}
	if (!ferry__db_tr_doc(db, row->id, &text))
		doc = json_loads(text, 0, NULL);
	free(text);
	if (doc && ferry__db_tr_hashes(db, row->id, merge_hash, json_object_get(doc, "files"))) {
		json_decref(doc);
		doc = NULL;
	}
	if (!doc) {
		ferry__req_fail(t, FERRY_EINTERNAL, "the stored transfer %lld is unreadable",
				(long long)row->id);
		return NULL;
	}
	if (keep)
		doc_keep(row->id, doc);
	return doc;
}

static json_t *doc_of(struct ferry_req *t, const struct db_tr_row *row)
{
	return doc_load(t, row, 1);
}

/* Writes the row, and doc when given (the cached one, changed in place). */
static int save(struct ferry_req *t, struct db_tr_row *row, json_t *doc)
{
	struct ferry_db *db = ferry__engine_db(t->eng);
	char *text = doc ? json_dumps(doc, JSON_COMPACT) : NULL;
	int rc = doc && !text ? FERRY_ENOMEM : 0;

	if (!rc && text)
		rc = ferry__db_tr_set_doc(db, row->id, text);
	free(text);
	if (!rc)
		rc = ferry__db_tr_update(db, row);
	if (rc && doc)
		doc_drop(row->id); /* what the database holds is read again */
	return rc ? ferry__req_fail(t, rc, "cannot record the transfer") : 0;
}

static double hours_s(struct ferry_req *t, json_t *doc)
{
	return (double)json_integer_value(json_object_get(doc, "disposal_hours")) *
	       ferry__engine_hour(t->eng);
}

/* The transfer's files (doc "files") with their relative paths under the root. */
static const char *file_rel(const struct db_tr_row *row, json_t *f, char *buf, size_t cap)
{
	snprintf(buf, cap, "%s/%s", row->dir, json_string_value(json_object_get(f, "path")));
	return buf;
}

/* ---- the object of docs/transfers.md ---- */

/*
 * The transfer's checksum: its file's, for a transfer of one file; for
 * several, or a tree, XXH3-128 over each entry's path, a NUL, its checksum
 * (or "dir"), a NUL, in manifest order. Null while a file's is not known.
 */
static json_t *transfer_hash(json_t *files)
{
	struct ferry_hash h;
	char hex[FERRY_HASH_HEX];
	json_t *f;
	size_t i;

	if (json_array_size(files) == 1) {
		json_t *one = json_object_get(json_array_get(files, 0), "hash");
		return one ? json_incref(one) : json_null();
	}
	if (!json_array_size(files) || ferry__hash_init(&h) < 0)
		return json_null();
	json_array_foreach(files, i, f)
	{
		const char *path = json_string_value(json_object_get(f, "path"));
		const char *type = json_string_value(json_object_get(f, "type"));
		const char *fh = json_string_value(json_object_get(f, "hash"));
		if (!path || !type || (strcmp(type, "dir") && !fh)) {
			ferry__hash_release(&h);
			return json_null();
		}
		fh = strcmp(type, "dir") ? fh : "dir";
		ferry__hash_update(&h, path, strlen(path) + 1);
		ferry__hash_update(&h, fh, strlen(fh) + 1);
	}
	ferry__hash_final(&h, hex);
	return json_string(hex);
}

/* with_files: the whole object (and its doc is cached), else the list's entry */
static json_t *row_json(struct ferry_req *t, const struct db_tr_row *row, int with_files)
{
	json_t *doc = doc_load(t, row, with_files), *o, *files;
	int64_t *jobs = NULL, size = 0;
	size_t n = 0, i;
	json_t *f, *ja;

	if (!doc)
		return NULL;
	files = json_object_get(doc, "files");
	json_array_foreach(files, i, f) size += json_integer_value(json_object_get(f, "size"));
	o = json_pack("{s:I,s:s,s:s,s:s,s:O,s:I,s:I,s:f,s:f,s:O}", "id", (json_int_t)row->id,
		      "server_path", row->server_path, "kind", row->kind, "state", row->state,
		      "local_paths", json_object_get(doc, "local_paths"), "size", (json_int_t)size,
		      "received", (json_int_t)row->received, "created_at", row->created_at,
		      "deadline", row->deadline, "disposal_hours",
		      json_object_get(doc, "disposal_hours"));
	if (!o) {
		json_decref(doc);
		return NULL;
	}
	json_object_set_new(o, "ended_at",
			    row->ended_at > 0 ? json_real(row->ended_at) : json_null());
	json_object_set_new(o, "message", row->message ? json_string(row->message) : json_null());
	json_object_set_new(o, "hash", transfer_hash(files));
	ja = json_array();
	for (int role = 0; role < 2; role++) {
		if (ferry__db_ref_jobs(ferry__engine_db(t->eng), row->id, role, &jobs, &n))
			continue;
		for (size_t k = 0; k < n; k++)
			json_array_append_new(ja, json_pack("{s:I,s:s}", "id", (json_int_t)jobs[k],
							    "role", role ? "output" : "input"));
		free(jobs);
	}
	json_object_set_new(o, "jobs", ja);
	if (with_files)
		json_object_set(o, "files", files);
	json_decref(doc);
	return o;
}

/* ---- progress of a send ---- */

/* Bytes of file f present: its size when complete (*complete), else its part's. */
static int64_t file_done(struct ferry_req *t, const struct db_tr_row *row, json_t *f, int *complete)
{
	char rel[PATH_MAX];
	const char *base;
	struct stat st;
	int64_t done = 0;
	int parent = open_parent(rootfd(t), file_rel(row, f, rel, sizeof(rel)), &base);
	char *part = NULL;

	*complete = 0;
	if (parent < 0)
		return 0;
	if (fstatat(parent, base, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISREG(st.st_mode)) {
		*complete = 1;
		done = (int64_t)st.st_size;
	} else if ((part = part_name(base)) &&
		   fstatat(parent, part, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISREG(st.st_mode)) {
		done = (int64_t)st.st_size;
	}
	free(part);
	close(parent);
	return done;
}

/* rel with its last component turned into its part's name. */
static int part_rel(const char *rel, char *buf, size_t cap)
{
	const char *slash = strrchr(rel, '/');
	size_t dl = slash ? (size_t)(slash - rel + 1) : 0;
	int n = snprintf(buf, cap, "%.*s.%s" PART_SUFFIX, (int)dl, rel, rel + dl);

	return n < 0 || (size_t)n >= cap ? -1 : 0;
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
			done = file_done(t, row, f, &complete);
			complete |= is_verified(row->id, (int64_t)i); /* named at the end */
			file_rel(row, f, rel, sizeof(rel));
			char *p = part_rel(rel, prel, sizeof(prel)) < 0
				      ? NULL
				      : ferry__asprintf("%s/%s", root(t), prel);
			e = json_pack("{s:I,s:b,s:s}", "done", (json_int_t)done, "complete",
				      complete, "part_path", p ? p : "");
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
		if ((rc = check_rel(t, path)))
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
static int create(struct ferry_req *t, const char *key, const char *kind, const char *state,
		  const char *top, json_t *doc, int64_t hours, struct db_tr_row *row)
{
	char hex[17], dir[20], *text;
	int rc;

	if (ferry__random_hex(hex, 8) < 0)
		return ferry__req_fail(t, FERRY_EINTERNAL, "no random bytes");
	snprintf(dir, sizeof(dir), "t%s", hex);
	if (mkdirat(rootfd(t), dir, 0700) < 0)
		return ferry__req_fail(t, FERRY_EIO, "cannot create '%s/%s': %s", root(t), dir,
				       strerror(errno));
	text = json_dumps(doc, JSON_COMPACT);
	memset(row, 0, sizeof(*row));
	row->key = key ? strdup(key) : NULL;
	row->dir = strdup(dir);
	row->server_path = ferry__asprintf("%s/%s/%s", root(t), dir, top);
	row->kind = strdup(kind);
	row->state = strdup(state);
	row->created_at = ferry__now();
	row->deadline = row->created_at + (double)hours * ferry__engine_hour(t->eng);
	if (!row->dir || !row->server_path || !row->kind || !row->state || !text ||
	    (key && !row->key)) {
		free(text);
		return ferry__req_fail(t, FERRY_ENOMEM, "out of memory");
	}
	rc = ferry__db_tr_insert(ferry__engine_db(t->eng), row, text, &row->id);
	free(text);
	if (rc) {
		unlinkat(rootfd(t), dir, AT_REMOVEDIR);
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
	return rc ? ferry__req_fail(t, rc, "database error") : 1;
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
		file_rel(row, f, rel, sizeof(rel));
		if (!is_dir)
			*strrchr(rel, '/') = '\0';
		int e = mkdirs_beneath(rootfd(t), rel);
		if (e < 0)
			return ferry__req_fail(t, FERRY_EIO, "cannot create '%s/%s': %s", root(t),
					       rel, strerror(-e));
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
		rc = 0; /* known: a retry, or the next call after an interruption */
		running_drop_transfer(row.id);
		struct cdoc *d = doc_find(row.id);
		if (d)
			d->left = -1; /* counted again, as the disk has them */
	} else {
		doc = json_pack("{s:O,s:I,s:O}", "local_paths", lp, "disposal_hours",
				(json_int_t)hours, "files", files);
		if (!doc)
			return ferry__req_fail(t, FERRY_ENOMEM, "out of memory");
		rc = create(t, key, "send", "transferring", top, doc, hours, &row);
		if (!rc)
			rc = make_tree(t, &row, files);
		json_decref(doc);
		doc = NULL;
		if (rc)
			goto out;
	}
	/* a retry, or the next call after an interruption: where it stands */
	if (!(doc = doc_of(t, &row))) {
		rc = FERRY_EINTERNAL;
		goto out;
	}
	json_object_set_new(t->out, "id", json_integer(row.id));
	json_object_set_new(t->out, "server_path", json_string(row.server_path));
	json_object_set_new(t->out, "state", json_string(row.state));
	json_object_set_new(t->out, "files", progress(t, &row, doc));
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
	if ((rc = check_rel(t, name)))
		return rc;
	if (strchr(name, '/'))
		return ferry__req_fail(t, FERRY_EINVAL, "'name' must be one file name, not '%s'",
				       name);
	rc = by_key(t, key, &row);
	if (rc < 0)
		return rc;
	if (rc == 1) {
		rc = 0; /* known: a retry, or the next call after an interruption */
		running_drop_transfer(row.id);
	} else {
		doc = json_pack("{s:O,s:I,s:s,s:[]}", "local_paths", lp, "disposal_hours",
				(json_int_t)hours, "name", name, "files");
		if (!doc)
			return ferry__req_fail(t, FERRY_ENOMEM, "out of memory");
		rc = create(t, key, "register", "registered", name, doc, hours, &row);
		json_decref(doc);
		if (rc)
			goto out;
	}
	json_object_set_new(t->out, "id", json_integer(row.id));
	json_object_set_new(t->out, "server_path", json_string(row.server_path));
	json_object_set_new(t->out, "state", json_string(row.state));
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
			int parent =
			    open_parent(rootfd(t), file_rel(row, f, rel, sizeof(rel)), &base);
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
	struct cdoc *d = doc_find(row->id);
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
			done = file_done(t, row, f, &complete);
		left += !complete && !is_verified(row->id, (int64_t)i) &&
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
static void set_verified(int64_t id, int64_t idx, int on)
{
	struct cdoc *d = doc_find(id);

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

	file_rel(row, f, rel, sizeof(rel));
	if (part_rel(rel, prel, sizeof(prel)) < 0)
		return ferry__req_fail(t, FERRY_EINVAL, "file name too long: '%s'", rel);
	fd = open_beneath(rootfd(t), prel, O_RDWR, 0);
	if (fd < 0)
		return ferry__req_fail(t, FERRY_EIO, "cannot open '%s/%s': %s", root(t), prel,
				       strerror(errno));
	if (!verified)
		e = ferry__hash_fd(fd, (uint64_t)json_integer_value(json_object_get(f, "size")),
				   got);
	if (!verified && (e < 0 || !want || strcmp(got, want))) {
		if (!e && ftruncate(fd, 0) < 0) /* never named with wrong bytes: sent again */
			e = -errno;
		close(fd);
		return e < 0 ? ferry__req_fail(t, FERRY_EIO, "cannot read back '%s/%s': %s",
					       root(t), prel, strerror(-e))
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
	int parent = open_parent(rootfd(t), file_rel(row, f, rel, sizeof(rel)), &base), e = 0;

	if (parent < 0)
		return ferry__req_fail(t, FERRY_EIO, "cannot open the directory of '%s/%s': %s",
				       root(t), rel, strerror(errno));
	part = part_name(base);
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
	return e ? ferry__req_fail(t, FERRY_EIO, "cannot complete '%s/%s': %s", root(t), rel,
				   strerror(e))
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
		    (file_done(t, row, f, &complete), !complete))
			todo[k++] = i;
	}
	for (size_t b = 0; !rc && b < k; b += SYNC_BATCH) {
		size_t m = 0;
		for (; !rc && m < SYNC_BATCH && b + m < k; m++) {
			size_t i = todo[b + m];
			fds[m] = open_part(t, row, json_array_get(files, i),
					   is_verified(row->id, (int64_t)i));
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
				set_verified(row->id, (int64_t)todo[b + m], 0);
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
		int fd = open_beneath(rootfd(t), file_rel(row, f, rel, sizeof(rel)), O_RDONLY, 0);
		int e = fd < 0 ? -errno : ferry__hash_fd(fd, size, hex);
		if (fd >= 0)
			close(fd);
		if (e < 0)
			return ferry__req_fail(t, FERRY_EIO, "cannot read back '%s/%s': %s",
					       root(t), rel, strerror(-e));
		json_object_set_new(f, "hash", json_string(hex));
	}
	return 0;
}

/* Every file of a send is complete: it becomes ready and its jobs may start. */
static int finish_send(struct ferry_req *t, struct db_tr_row *row, json_t *doc)
{
	json_t *files = json_object_get(doc, "files");
	struct cdoc *d = doc_find(row->id);
	int rc;

	if (files_left(t, row, doc))
		return 0;
	if (d && (d->left = -1, files_left(t, row, doc)))
		return 0; /* the count was wrong: what is on disk counts */
	if ((rc = name_parts(t, row, files)) || (rc = hash_unrecorded(t, row, files)))
		return rc;
	apply_attrs(t, row, files);
	free(row->state);
	row->state = strdup("ready");
	row->ended_at = ferry__now();
	row->deadline = row->ended_at + hours_s(t, doc);
	/* the checksums join the doc, which changes no more */
	if ((rc = save(t, row, doc)) ||
	    (rc = ferry__db_tr_hashes_clear(ferry__engine_db(t->eng), row->id)))
		return rc == FERRY_EINTERNAL ? ferry__req_fail(t, rc, "cannot record the transfer")
					     : rc;
	t->durable = 1; /* the send is ready: its jobs may start (dispatch.c, transfer_put) */
	ferry__engine_inputs_changed(t->eng, row->id);
	return 0;
}

/* What the put that ends a file says of its bytes. */
struct want {
	int defer;		 /* a tree's file: checked now, named with the others at the end */
	const char *hash;	 /* the file's checksum */
	int64_t copied_from;	 /* -1, or: a client on this host wrote from here on itself */
	const char *prefix_hash; /* then, if above 0: the checksum of what comes before */
};

/* The part holds the whole file: checks it, then gives it its name. */
static int complete_file(struct ferry_req *t, const struct db_tr_row *row, json_t *f, int parent,
			 const char *base, const char *part, int fd, struct running *r,
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
		return ferry__req_fail(t, FERRY_EIO, "cannot read back '%s/%s/%s': %s", root(t),
				       row->dir, json_string_value(json_object_get(f, "path")),
				       strerror(-e));
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
		return ferry__req_fail(t, FERRY_EIO, "cannot complete '%s/%s/%s': %s", root(t),
				       row->dir, json_string_value(json_object_get(f, "path")),
				       strerror(errno));
	int dfd = openat(parent, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd >= 0) {
		fsync(dfd);
		close(dfd);
	}
	return 0;
}

static int get_int(struct ferry_req *t, const char *key, int64_t min, int64_t max, int64_t *v)
{
	json_t *j = json_object_get(t->in, key);

	if (!json_is_integer(j) || json_integer_value(j) < min || json_integer_value(j) > max)
		return ferry__req_fail(t, FERRY_EINVAL,
				       "field '%s' must be an integer from %lld to %lld", key,
				       (long long)min, (long long)max);
	*v = json_integer_value(j);
	return 0;
}

#define WRITEBACK_SLICE (8 << 20)

/* Writes a chunk at offset (the part's size); the last one completes the file. */
static int write_chunk(struct ferry_req *t, struct db_tr_row *row, json_t *f, int64_t idx,
		       int64_t off, const struct want *want, int *complete)
{
	char rel[PATH_MAX], *part = NULL;
	const char *base;
	int64_t size = json_integer_value(json_object_get(f, "size"));
	int parent = open_parent(rootfd(t), file_rel(row, f, rel, sizeof(rel)), &base);
	int fd = -1, rc = 0;
	struct stat st;

	*complete = 0;
	if (parent < 0)
		return ferry__req_fail(t, FERRY_EIO, "cannot open the directory of '%s/%s': %s",
				       root(t), rel, strerror(errno));
	if (is_verified(row->id, idx) ||
	    (fstatat(parent, base, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISREG(st.st_mode))) {
		*complete = 1; /* a replay of the last chunk: already done */
		goto out;
	}
	part = part_name(base);
	fd = part ? openat(parent, part, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600) : -1;
	if (fd < 0 || fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		rc = ferry__req_fail(t, FERRY_EIO, "cannot open '%s/%s': %s", root(t), rel,
				     strerror(errno));
		goto out;
	}
	if (off != st.st_size) {
		rc = ferry__req_fail(t, FERRY_ESTATE,
				     "chunk at offset %lld, but %lld bytes of '%s' are here",
				     (long long)off, (long long)st.st_size, rel);
		json_object_set_new(t->out, "done", json_integer(st.st_size));
		goto out;
	}
	if (off + (int64_t)t->datalen > size) {
		rc = ferry__req_fail(t, FERRY_EINVAL,
				     "chunk ends at %lld, past the size %lld of '%s'",
				     (long long)(off + (int64_t)t->datalen), (long long)size, rel);
		goto out;
	}
	if (off + (int64_t)t->datalen == size && !want->hash) {
		rc = ferry__req_fail(
		    t, FERRY_EINVAL,
		    "the last chunk of '%s' needs a 'hash': its manifest gave none", rel);
		goto out;
	}
	if (off == 0 && t->datalen)
		ferry__preallocate(fd, 0, size);
	for (size_t w = 0; w < t->datalen;) {
		ssize_t n = pwrite(fd, (const char *)t->data + w, t->datalen - w, off + (off_t)w);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			int e = errno;
			if (ftruncate(fd, off) < 0) /* what was acknowledged, nothing more */
				e = errno;
			rc = ferry__req_fail(t, FERRY_EIO, "cannot write '%s/%s': %s", root(t), rel,
					     strerror(e));
			goto out;
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
		running_feed(row->id, idx, off, t->data, t->datalen);
	}
	if (off + (int64_t)t->datalen == size) {
		rc = complete_file(t, row, f, parent, base, part, fd, running_find(row->id, idx),
				   want);
		*complete = !rc;
		if (!rc)
			set_verified(row->id, idx, 1);
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
	if (strcmp(row->kind, "send") || strcmp(row->state, "transferring")) {
		rc = ferry__req_fail(t, FERRY_ESTATE, "transfer '%s' is %s: it takes no data",
				     row->server_path, row->state);
	} else if (!(*doc = doc_of(t, row))) {
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
	    json_integer_value(from) > size || off != size || t->datalen)
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
	int64_t id, idx, off;
	int rc, complete = 0;

	if ((rc = get_int(t, "id", 1, INT64_MAX, &id)) ||
	    (rc = get_int(t, "file", 0, MAX_FILES, &idx)) ||
	    (rc = get_int(t, "offset", 0, 1LL << 50, &off)))
		return rc;
	if (t->datalen > MAX_CHUNK)
		return ferry__req_fail(t, FERRY_EINVAL, "chunk of %zu bytes, over the limit of %u",
				       t->datalen, MAX_CHUNK);
	if (json_object_get(t->in, "hash") && !is_hash(hash))
		return ferry__req_fail(t, FERRY_EINVAL, "'hash' must be 32 hex digits");
	if ((rc = receiving_file(t, id, idx, &row, &doc, &f)))
		return rc;
	/* the manifest's, from a client that hashed before sending, else the last put's */
	listed = json_string_value(json_object_get(f, "hash"));
	struct want w = {.defer = json_array_size(json_object_get(doc, "files")) > 1,
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
			doc_drop(id);
			rc = ferry__req_fail(t, FERRY_EINTERNAL, "cannot record the checksum");
		}
	}
	int rc2 = save(t, &row, NULL); /* the count, also after a failure */
	if (!rc)
		rc = rc2;
	if (!rc && complete)
		rc = finish_send(t, &row, doc);
	if (!rc) {
		json_object_set_new(t->out, "complete", json_boolean(complete));
		json_object_set_new(t->out, "state", json_string(row.state));
	}
	json_decref(doc);
	ferry__db_tr_row_release(&row);
	return rc;
}

/* ---- outputs and retrieval ---- */

struct walk {
	struct ferry_req *t;
	json_t *files;
	char rel[PATH_MAX]; /* under the transfer's directory */
	int depth;
};

static int walk_add(struct walk *w, int dfd, const char *name, const char *rel);

/* Lists a directory beneath the root, recursively, refusing symlinks. */
static int walk_dir(struct walk *w, int fd, const char *rel)
{
	DIR *d = fdopendir(fd);
	struct dirent *de;
	int rc = 0;

	if (!d) {
		close(fd);
		return ferry__req_fail(w->t, FERRY_EIO, "cannot list '%s': %s", rel,
				       strerror(errno));
	}
	if (++w->depth > 64) {
		closedir(d);
		return ferry__req_fail(w->t, FERRY_EINVAL, "'%s' is nested too deep", rel);
	}
	while (!rc && (de = readdir(d))) {
		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		char *child = ferry__asprintf("%s/%s", rel, de->d_name);
		rc = child ? walk_add(w, dirfd(d), de->d_name, child)
			   : ferry__req_fail(w->t, FERRY_ENOMEM, "out of memory");
		free(child);
	}
	w->depth--;
	closedir(d);
	return rc;
}

static int walk_add(struct walk *w, int dfd, const char *name, const char *rel)
{
	struct stat st;
	char hex[FERRY_HASH_HEX];
	int fd, rc;

	if ((rc = check_rel(w->t, rel)))
		return rc;
	if (json_array_size(w->files) >= MAX_FILES)
		return ferry__req_fail(w->t, FERRY_EINVAL, "more than %d files", MAX_FILES);
	fd = openat(dfd, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK);
	if (fd < 0 && errno == ELOOP)
		return ferry__req_fail(w->t, FERRY_EUNSUPPORTED,
				       "'%s' is a symbolic link: links are not transferred", rel);
	if (fd < 0 || fstat(fd, &st) < 0) {
		rc = ferry__req_fail(w->t, FERRY_EIO, "cannot open '%s': %s", rel, strerror(errno));
		if (fd >= 0)
			close(fd);
		return rc;
	}
	json_int_t mt = (json_int_t)st.st_mtim.tv_sec * 1000000000 + st.st_mtim.tv_nsec;
	if (S_ISDIR(st.st_mode)) {
		json_array_append_new(w->files,
				      json_pack("{s:s,s:s,s:i,s:I}", "path", rel, "type", "dir",
						"mode", st.st_mode & 07777, "mtime_ns", mt));
		return walk_dir(w, fd, rel);
	}
	if (!S_ISREG(st.st_mode)) {
		close(fd);
		return ferry__req_fail(w->t, FERRY_EUNSUPPORTED,
				       "'%s' is not a regular file or directory", rel);
	}
	int e = ferry__hash_fd(fd, (uint64_t)st.st_size, hex);
	close(fd);
	if (e < 0)
		return ferry__req_fail(w->t, FERRY_EIO, "cannot read '%s': %s", rel, strerror(-e));
	json_array_append_new(w->files, json_pack("{s:s,s:s,s:I,s:i,s:I,s:s}", "path", rel, "type",
						  "file", "size", (json_int_t)st.st_size, "mode",
						  st.st_mode & 07777, "mtime_ns", mt, "hash", hex));
	return 0;
}

/* Why an output is not there: no job ended yet, or which job ended how. */
static int missing_output(struct ferry_req *t, const struct db_tr_row *row)
{
	int64_t *jobs = NULL;
	size_t n = 0;

	ferry__db_ref_jobs(ferry__engine_db(t->eng), row->id, ROLE_OUTPUT, &jobs, &n);
	for (size_t i = 0; i < n; i++) {
		enum ferry_job_status st;
		if (ferry__db_status(ferry__engine_db(t->eng), jobs[i], &st) == 0 &&
		    (st == FERRY_DONE || st == FERRY_FAILED)) {
			int rc = ferry__req_fail(
			    t, FERRY_ESTATE,
			    "'%s' does not exist: job %lld ended (%s) without producing it",
			    row->server_path, (long long)jobs[i], ferry_status_name(st));
			free(jobs);
			return rc;
		}
	}
	free(jobs);
	return ferry__req_fail(t, FERRY_ESTATE, "'%s' does not exist yet: %s", row->server_path,
			       n ? "the jobs that produce it have not ended"
				 : "no job names it as an output");
}

/* The files of a registered output as they are now, hashed, into the doc. */
static int scan_output(struct ferry_req *t, struct db_tr_row *row, json_t *doc)
{
	const char *name = json_string_value(json_object_get(doc, "name"));
	struct walk w = {.t = t, .files = json_array()};
	int dfd = open_beneath(rootfd(t), row->dir, O_RDONLY | O_DIRECTORY, 0);
	struct stat st;
	int rc;

	if (dfd < 0 || !w.files) {
		json_decref(w.files);
		if (dfd >= 0)
			close(dfd);
		return ferry__req_fail(t, FERRY_EIO, "cannot open '%s/%s': %s", root(t), row->dir,
				       strerror(errno));
	}
	if (fstatat(dfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0) {
		close(dfd);
		json_decref(w.files);
		return missing_output(t, row);
	}
	rc = walk_add(&w, dfd, name, name);
	close(dfd);
	if (rc) {
		json_decref(w.files);
		return rc;
	}
	json_object_set_new(doc, "files", w.files);
	return 0;
}

static int set_state(struct ferry_req *t, struct db_tr_row *row, const char *state)
{
	char *s = strdup(state);

	if (!s)
		return ferry__req_fail(t, FERRY_ENOMEM, "out of memory");
	free(row->state);
	row->state = s;
	return 0;
}

int ferry__req_transfer_manifest(struct ferry_req *t)
{
	struct db_tr_row row = {0};
	json_t *doc = NULL;
	const char *path;
	int rc;

	if ((rc = get_path_arg(t, &path)) || (rc = find_by_path(t, path, &row)))
		return rc;
	if (!(doc = doc_of(t, &row))) {
		rc = FERRY_EINTERNAL;
		goto out;
	}
	if (!strcmp(row.kind, "register")) {
		if ((rc = scan_output(t, &row, doc)))
			goto out;
		if (!strcmp(row.state, "registered")) {
			set_state(t, &row, "produced");
			row.ended_at = ferry__now();
			row.deadline = row.ended_at + hours_s(t, doc);
		}
		if ((rc = save(t, &row, doc)))
			goto out;
	} else if (strcmp(row.state, "ready") && strcmp(row.state, "retrieved")) {
		rc = ferry__req_fail(t, FERRY_ESTATE, "transfer '%s' is %s, not ready",
				     row.server_path, row.state);
		goto out;
	}
	json_object_set_new(t->out, "transfer", row_json(t, &row, 1));
out:
	json_decref(doc);
	ferry__db_tr_row_release(&row);
	return rc;
}

/*
 * Makes up to len bytes of fd from off the reply's binary part: the size
 * it has, or -errno. The bytes stay in the page cache and the server sends
 * them from there (t->bin takes fd), so the engine neither reads nor
 * copies them; past a cap of such parts queued at once (each holds a
 * descriptor), they are read into memory instead.
 */
#define MAX_FILE_PARTS 256
static ssize_t chunk_out(struct ferry_req *t, int fd, int64_t off, int64_t len)
{
	struct stat st;
	ssize_t n;

	if (fstat(fd, &st) < 0)
		return -errno;
	n = st.st_size > off ? (ssize_t)(st.st_size - off < len ? st.st_size - off : len) : 0;
	if (n && ferry__loop_files_queued() < MAX_FILE_PARTS) {
		t->bin = (struct ferry_bin){NULL, (size_t)n, fd, off};
		return n;
	}
	if (!(t->bin.p = malloc(n ? (size_t)n : 1)))
		return -ENOMEM;
	do
		n = pread(fd, t->bin.p, (size_t)n, (off_t)off);
	while (n < 0 && errno == EINTR);
	if (n < 0)
		return -errno;
	t->bin.len = (size_t)n;
	return n;
}

int ferry__req_transfer_get(struct ferry_req *t)
{
	struct db_tr_row row = {0};
	json_t *doc = NULL, *f;
	const char *path;
	char rel[PATH_MAX];
	int64_t idx, off, len;
	int rc, fd = -1;

	if ((rc = get_path_arg(t, &path)) || (rc = get_int(t, "file", 0, MAX_FILES, &idx)) ||
	    (rc = get_int(t, "offset", 0, 1LL << 50, &off)) ||
	    (rc = get_int(t, "length", 1, MAX_CHUNK, &len)) || (rc = find_by_path(t, path, &row)))
		return rc;
	if (!(doc = doc_of(t, &row))) {
		rc = FERRY_EINTERNAL;
		goto out;
	}
	f = json_array_get(json_object_get(doc, "files"), (size_t)idx);
	if (!f || strcmp(json_string_value(json_object_get(f, "type")), "file")) {
		rc = ferry__req_fail(t, FERRY_EINVAL,
				     "transfer '%s' has no file %lld (ask for its manifest)",
				     row.server_path, (long long)idx);
		goto out;
	}
	fd = open_beneath(rootfd(t), file_rel(&row, f, rel, sizeof(rel)), O_RDONLY, 0);
	if (fd < 0) {
		rc = ferry__req_fail(t, FERRY_EIO, "cannot open '%s/%s': %s", root(t), rel,
				     strerror(errno));
		goto out;
	}
	ssize_t n = chunk_out(t, fd, off, len);
	if (n < 0) {
		rc = ferry__req_fail(t, n == -ENOMEM ? FERRY_ENOMEM : FERRY_EIO,
				     "cannot read '%s/%s': %s", root(t), rel, strerror((int)-n));
		goto out;
	}
	if (t->bin.fd == fd)
		fd = -1; /* the reply's now */
	json_object_set_new(t->out, "size", json_integer(n));
out:
	if (fd >= 0)
		close(fd);
	json_decref(doc);
	ferry__db_tr_row_release(&row);
	return rc;
}

int ferry__req_transfer_retrieved(struct ferry_req *t)
{
	struct db_tr_row row = {0};
	const char *path;
	int rc;

	if ((rc = get_path_arg(t, &path)) || (rc = find_by_path(t, path, &row)))
		return rc;
	if (!strcmp(row.state, "ready") || !strcmp(row.state, "produced")) {
		if (!(rc = set_state(t, &row, "retrieved")))
			rc = save(t, &row, NULL);
	}
	ferry__db_tr_row_release(&row);
	return rc;
}

int ferry__req_transfer_info(struct ferry_req *t)
{
	struct db_tr_row row = {0};
	const char *path;
	json_t *o;
	int rc;

	if ((rc = get_path_arg(t, &path)) || (rc = find_by_path(t, path, &row)))
		return rc;
	o = row_json(t, &row, 1);
	if (o) {
		json_t *doc = doc_of(t, &row);
		int64_t done = 0;
		json_t *f;
		size_t i;
		/* bytes on the server now: complete files and parts */
		json_array_foreach(json_object_get(doc, "files"), i, f)
		{
			int complete;
			if (!strcmp(json_string_value(json_object_get(f, "type")), "file"))
				done += !strcmp(row.kind, "send") || strcmp(row.state, "registered")
					    ? file_done(t, &row, f, &complete)
					    : 0;
		}
		json_decref(doc);
		json_object_set_new(o, "done", json_integer(done));
	}
	ferry__db_tr_row_release(&row);
	if (!o)
		return ferry__req_fail(t, FERRY_ENOMEM, "out of memory");
	json_object_set_new(t->out, "transfer", o);
	return 0;
}

struct list_ctx {
	struct ferry_req *t;
	json_t *a;
};

static int list_one(void *arg, struct db_tr_row *row)
{
	struct list_ctx *l = arg;
	json_t *o = row_json(l->t, row, 0);

	return o ? json_array_append_new(l->a, o) : FERRY_ENOMEM;
}

int ferry__req_transfers(struct ferry_req *t)
{
	struct list_ctx l = {.t = t, .a = json_array()};
	int rc = l.a ? ferry__db_tr_list(ferry__engine_db(t->eng), list_one, &l) : FERRY_ENOMEM;

	if (rc) {
		json_decref(l.a);
		return ferry__req_fail(t, rc, "cannot list the transfers");
	}
	json_object_set_new(t->out, "transfers", l.a);
	return 0;
}

/* Removes a transfer's files and records (its directory name comes from the database). */
static int remove_transfer(struct ferry_engine *eng, const struct db_tr_row *row)
{
	char *dir = ferry__asprintf("%s/%s", ferry__engine_transfer_root(eng), row->dir);

	if (!dir)
		return FERRY_ENOMEM;
	ferry__rm_rf(dir);
	free(dir);
	running_drop_transfer(row->id);
	doc_drop(row->id);
	/* before the references go: they say which jobs waited for it */
	ferry__engine_inputs_gone(eng, row->id);
	return ferry__db_tr_delete(ferry__engine_db(eng), row->id);
}

int ferry__req_transfer_cancel(struct ferry_req *t)
{
	struct db_tr_row row = {0};
	const char *path;
	int64_t *jobs = NULL;
	size_t n = 0;
	int rc;

	if ((rc = get_path_arg(t, &path)) || (rc = find_by_path(t, path, &row)))
		return rc;
	if (strcmp(path, row.server_path)) {
		rc = ferry__req_fail(t, FERRY_EINVAL,
				     "'%s' is inside transfer '%s': cancel that one", path,
				     row.server_path);
		goto out;
	}
	rc = ferry__db_ref_active_jobs(ferry__engine_db(t->eng), row.id, &jobs, &n);
	if (rc) {
		rc = ferry__req_fail(t, rc, "database error");
		goto out;
	}
	if (n && !json_is_true(json_object_get(t->in, "force"))) {
		rc = ferry__req_fail(
		    t, FERRY_ESTATE,
		    "transfer '%s' is referenced by %zu unfinished job%s (the first: %lld); "
		    "force the cancel to remove it anyway",
		    row.server_path, n, n > 1 ? "s" : "", (long long)jobs[0]);
		goto out;
	}
	rc = remove_transfer(t->eng, &row);
	if (rc)
		rc = ferry__req_fail(t, rc, "cannot remove transfer '%s'", row.server_path);
out:
	free(jobs);
	ferry__db_tr_row_release(&row);
	return rc;
}

/* ---- jobs ---- */

int ferry__transfer_lookup(struct ferry_engine *eng, const char *path, int64_t *tid, int *ready,
			   char *err, size_t errlen)
{
	const char *r = ferry__engine_transfer_root(eng);
	struct db_tr_row row = {0};
	struct ferry_req t = {.eng = eng};
	size_t rl = strlen(r);
	int rc;

	if (strncmp(path, r, rl) || path[rl] != '/')
		return 0;
	rc = find_by_path(&t, path, &row);
	if (rc) {
		snprintf(err, errlen, "%s", t.err);
		return rc;
	}
	*tid = row.id;
	*ready = !strcmp(row.state, "ready") || !strcmp(row.state, "produced") ||
		 !strcmp(row.state, "retrieved");
	ferry__db_tr_row_release(&row);
	return 1;
}

void ferry__transfer_job_ended(struct ferry_engine *eng, int64_t job)
{
	int64_t *tids = NULL;
	size_t n = 0;

	if (ferry__db_ref_of_job(ferry__engine_db(eng), job, ROLE_OUTPUT, &tids, &n))
		return;
	for (size_t i = 0; i < n; i++) {
		struct db_tr_row row = {0};
		struct ferry_req t = {.eng = eng};
		json_t *doc;
		if (ferry__db_tr_by_id(ferry__engine_db(eng), tids[i], &row))
			continue;
		doc = doc_load(&t, &row, 0);
		if (!strcmp(row.kind, "register") && !strcmp(row.state, "registered") && doc) {
			const char *name = json_string_value(json_object_get(doc, "name"));
			char *rel = ferry__asprintf("%s/%s", row.dir, name ? name : "");
			int fd = rel ? open_beneath(rootfd(&t), rel, O_PATH, 0) : -1;
			free(row.message);
			row.message = NULL;
			if (fd >= 0) {
				close(fd);
				set_state(&t, &row, "produced");
				row.ended_at = ferry__now();
				row.deadline = row.ended_at + hours_s(&t, doc);
			} else {
				row.message = ferry__asprintf("job %lld ended without producing it",
							      (long long)job);
			}
			free(rel);
			ferry__db_tr_update(ferry__engine_db(eng), &row);
		}
		json_decref(doc);
		ferry__db_tr_row_release(&row);
	}
	free(tids);
}

void ferry__transfer_gc(struct ferry_engine *eng)
{
	int64_t *ids = NULL;
	size_t n = 0;

	if (ferry__db_tr_expired(ferry__engine_db(eng), ferry__now(), &ids, &n))
		return;
	for (size_t i = 0; i < n; i++) {
		struct db_tr_row row = {0};
		if (ferry__db_tr_by_id(ferry__engine_db(eng), ids[i], &row) == 0)
			remove_transfer(eng, &row);
		ferry__db_tr_row_release(&row);
	}
	free(ids);
}
