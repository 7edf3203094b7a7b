/*
 * transfer.c - files moved between clients and the engine's host
 * (docs/transfers.md): the transfer root and the paths beneath it, the
 * records and cached manifests of transfers, retrieval, outputs that jobs
 * produce, disposal. transfer_send.c has the requests that create a
 * transfer and bring its bytes: chunks written into ".part" files and
 * checked end to end.
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

#include "hash.h"
#include "holes.h"
#include "jbytes.h"
#include "partfile.h"
#include "trust.h"
#include "transfer_int.h"
#include "util.h"

#define SUFFIX_LEN  (sizeof(FERRY_PART_SUFFIX) - 1)
#define ROLE_INPUT  0
#define ROLE_OUTPUT 1

/* ---- paths beneath the root ---- */

int ferry__tr_open_beneath(int dirfd, const char *rel, int flags, mode_t mode)
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
int ferry__tr_check_rel(struct ferry_req *t, const char *rel)
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
		if (n >= SUFFIX_LEN && !memcmp(p + n - SUFFIX_LEN, FERRY_PART_SUFFIX, SUFFIX_LEN))
			return ferry__req_fail(t, FERRY_EINVAL, "file name '%s' ends in '%s'", rel,
					       FERRY_PART_SUFFIX);
		p += n;
		if (*p == '/')
			p++;
	}
	return 0;
}

/* The parent directory of rel (opened beneath root) and rel's last component. */
int ferry__tr_open_parent(int root, const char *rel, const char **base)
{
	const char *slash = strrchr(rel, '/');
	char buf[PATH_MAX];

	*base = slash ? slash + 1 : rel;
	if (!slash)
		return ferry__tr_open_beneath(root, ".", O_PATH | O_DIRECTORY, 0);
	if ((size_t)(slash - rel) >= sizeof(buf)) {
		errno = ENAMETOOLONG;
		return -1;
	}
	memcpy(buf, rel, (size_t)(slash - rel));
	buf[slash - rel] = '\0';
	return ferry__tr_open_beneath(root, buf, O_PATH | O_DIRECTORY, 0);
}

char *ferry__tr_part_name(const char *base)
{
	return ferry__asprintf(".%s" FERRY_PART_SUFFIX, base);
}

/* ---- rows ---- */

/*
 * The transfer a server path names (the path itself or one inside it) and
 * the path relative to the root. 0, FERRY_ENOJOB (nothing there) or an
 * error, with the message set.
 */
static int find_by_path(struct ferry_req *t, const char *path, struct db_tr_row *row)
{
	size_t rl = strlen(ferry__tr_root(t));
	char dir[64];
	const char *rel, *slash;
	int rc;

	if (strncmp(path, ferry__tr_root(t), rl) || path[rl] != '/')
		return ferry__req_fail(t, FERRY_EINVAL, "'%s' is not under the transfer root '%s'",
				       path, ferry__tr_root(t));
	rel = path + rl + 1;
	if ((rc = ferry__tr_check_rel(t, rel)))
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

/*
 * find_by_path() of a request that acts on a whole transfer (retrieve,
 * cancel): a path inside one is refused rather than taken for all of it,
 * which gave a retrieve of one file the whole directory.
 */
static int find_whole(struct ferry_req *t, const char *path, const char *verb,
		      struct db_tr_row *row)
{
	int rc = find_by_path(t, path, row);
	size_t n = strlen(path);

	while (n > 1 && path[n - 1] == '/') /* the transfer's directory named as one */
		n--;
	if (!rc && (strncmp(path, row->server_path, n) || row->server_path[n])) {
		rc = ferry__req_fail(t, FERRY_EINVAL, "'%s' is inside transfer '%s': %s that one",
				     path, row->server_path, verb);
		ferry__db_tr_row_release(row);
	}
	return rc;
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
 * database's only writer, and a doc changes only through ferry__tr_save() or is
 * dropped, so an entry is never stale. A send's count of files still
 * incomplete is kept with it, so that a put need not stat them all.
 */
struct ferry_transfers *ferry__transfers_new(void)
{
	return calloc(1, sizeof(struct ferry_transfers));
}

void ferry__transfers_free(struct ferry_transfers *x)
{
	if (!x)
		return;
	for (size_t i = 0; i < DOCS_MAX; i++) {
		json_decref(x->docs[i].doc);
		free(x->docs[i].verified);
	}
	for (size_t i = 0; i < RUNNING_MAX; i++)
		if (x->running[i].h.state)
			ferry__hash_release(&x->running[i].h);
	free(x);
}

struct tr_doc *ferry__tr_doc_find(struct ferry_transfers *x, int64_t id)
{
	for (size_t i = 0; i < DOCS_MAX; i++)
		if (x->docs[i].doc && x->docs[i].id == id)
			return &x->docs[i];
	return NULL;
}

void ferry__tr_doc_drop(struct ferry_transfers *x, int64_t id)
{
	struct tr_doc *d = ferry__tr_doc_find(x, id);

	if (d) {
		json_decref(d->doc);
		free(d->verified);
		memset(d, 0, sizeof(*d));
	}
}

static void doc_keep(struct ferry_transfers *x, int64_t id, json_t *doc)
{
	struct tr_doc *d = &x->docs[0];

	for (size_t i = 0; i < DOCS_MAX && d->doc; i++)
		if (!x->docs[i].doc || x->docs[i].used < d->used)
			d = &x->docs[i];
	json_decref(d->doc);
	free(d->verified);
	*d =
	    (struct tr_doc){.id = id, .doc = json_incref(doc), .left = -1, .used = ++x->docs_clock};
	d->nfiles = json_array_size(json_object_get(doc, "files"));
	d->verified = d->nfiles > 1 ? calloc(d->nfiles, 1) : NULL; /* none: checked again */
}

/* Whether file idx of the transfer was checked and waits for its name. */
int ferry__tr_is_verified(struct ferry_transfers *x, int64_t id, int64_t idx)
{
	struct tr_doc *d = ferry__tr_doc_find(x, id);

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
	struct tr_doc *d = ferry__tr_doc_find(ferry__tr_caches(t), row->id);
	char *text = NULL;
	json_t *doc = NULL;

	if (d) {
		d->used = ++ferry__tr_caches(t)->docs_clock;
		return json_incref(d->doc);
	}
	if (!ferry__db_tr_doc(db, row->id, &text))
		doc = ferry__json_loads(text);
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
		doc_keep(ferry__tr_caches(t), row->id, doc);
	return doc;
}

json_t *ferry__tr_doc_of(struct ferry_req *t, const struct db_tr_row *row)
{
	return doc_load(t, row, 1);
}

/* Writes the row, and doc when given (the cached one, changed in place). */
int ferry__tr_save(struct ferry_req *t, struct db_tr_row *row, json_t *doc)
{
	struct ferry_db *db = ferry__engine_db(t->eng);
	char *text = doc ? ferry__json_dumps(doc, JSON_COMPACT) : NULL;
	int rc = doc && !text ? FERRY_ENOMEM : 0;

	if (!rc && text)
		rc = ferry__db_tr_set_doc(db, row->id, text);
	free(text);
	if (!rc)
		rc = ferry__db_tr_update(db, row);
	if (rc && doc)
		ferry__tr_doc_drop(ferry__tr_caches(t),
				   row->id); /* what the database holds is read again */
	return rc ? ferry__req_fail(t, rc, "cannot record the transfer") : 0;
}

double ferry__tr_hours_s(struct ferry_req *t, json_t *doc)
{
	return (double)json_integer_value(json_object_get(doc, "disposal_hours")) *
	       ferry__engine_hour(t->eng);
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

/*
 * Bytes on the server now. A listing (exact 0) stats the files of a send
 * still arriving only: the others' are all there (size) or, for an output
 * no job produced, none; transfer_info counts each file.
 */
static int64_t bytes_done(struct ferry_req *t, const struct db_tr_row *row, json_t *files,
			  int64_t size, int exact)
{
	int64_t done = 0;
	json_t *f;
	size_t i;

	/* a registered output's files count once a job produced it */
	if (row->kind != FERRY_TRANSFER_SEND && row->state == FERRY_TRANSFER_REGISTERED)
		return 0;
	if (!exact && row->state != FERRY_TRANSFER_TRANSFERRING)
		return size;
	json_array_foreach(files, i, f)
	{
		int complete;
		if (!strcmp(json_string_value(json_object_get(f, "type")), "file"))
			done += ferry__tr_file_done(t, row, f, &complete);
	}
	return done;
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
	json_array_foreach(files, i, f)
	{
		int64_t fs = json_integer_value(json_object_get(f, "size"));
		size = fs > 0 && size > INT64_MAX - fs ? INT64_MAX : size + (fs > 0 ? fs : 0);
	}
	o = json_pack("{s:I,s:o,s:s,s:s,s:O,s:I,s:I,s:f,s:f,s:O}", "id", (json_int_t)row->id,
		      "server_path", ferry__json_bytes(row->server_path), "kind",
		      ferry_transfer_kind_name(row->kind), "state",
		      ferry_transfer_state_name(row->state), "local_paths",
		      json_object_get(doc, "local_paths"), "size", (json_int_t)size, "received",
		      (json_int_t)row->received, "created_at", row->created_at, "deadline",
		      row->deadline, "disposal_hours", json_object_get(doc, "disposal_hours"));
	if (!o) {
		json_decref(doc);
		return NULL;
	}
	json_object_set_new(o, "ended_at",
			    row->ended_at > 0 ? json_real(row->ended_at) : json_null());
	json_object_set_new(o, "message", ferry__json_bytes(row->message));
	json_object_set_new(o, "hash", transfer_hash(files));
	json_object_set_new(o, "done", json_integer(bytes_done(t, row, files, size, with_files)));
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
int64_t ferry__tr_file_done(struct ferry_req *t, const struct db_tr_row *row, json_t *f,
			    int *complete)
{
	char rel[PATH_MAX];
	const char *base;
	struct stat st;
	int64_t done = 0;
	int parent = ferry__tr_open_parent(ferry__tr_rootfd(t),
					   ferry__tr_file_rel(row, f, rel, sizeof(rel)), &base);
	char *part = NULL;

	*complete = 0;
	if (parent < 0)
		return 0;
	if (fstatat(parent, base, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISREG(st.st_mode)) {
		*complete = 1;
		done = (int64_t)st.st_size;
	} else if ((part = ferry__tr_part_name(base)) &&
		   fstatat(parent, part, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISREG(st.st_mode)) {
		done = (int64_t)st.st_size;
	}
	free(part);
	close(parent);
	return done;
}

/* rel with its last component turned into its part's name. */
int ferry__tr_part_rel(const char *rel, char *buf, size_t cap)
{
	const char *slash = strrchr(rel, '/');
	size_t dl = slash ? (size_t)(slash - rel + 1) : 0;
	int n = snprintf(buf, cap, "%.*s.%s" FERRY_PART_SUFFIX, (int)dl, rel, rel + dl);

	return n < 0 || (size_t)n >= cap ? -1 : 0;
}

/* ---- requests ---- */

int ferry__tr_get_int(struct ferry_req *t, const char *key, int64_t min, int64_t max, int64_t *v)
{
	json_t *j = json_object_get(t->in, key);

	if (!json_is_integer(j) || json_integer_value(j) < min || json_integer_value(j) > max)
		return ferry__req_fail(t, FERRY_EINVAL,
				       "field '%s' must be an integer from %lld to %lld", key,
				       (long long)min, (long long)max);
	*v = json_integer_value(j);
	return 0;
}

/* ---- outputs and retrieval ---- */

/*
 * The first job but skip that names transfer tid as an output and has not
 * ended (*st its state): 1, or 0 when there is none. An output is not
 * complete before every job that produces it has ended: a retrieve would
 * copy part of it, and a job reading it as an input would read part of it.
 */
static int active_producer(struct ferry_engine *eng, int64_t tid, int64_t skip, int64_t *job,
			   enum ferry_job_status *st)
{
	int64_t *jobs = NULL;
	size_t n = 0;
	int found = 0;

	/* unreadable references: as if a producer ran, the safe side */
	if (ferry__db_ref_jobs(ferry__engine_db(eng), tid, ROLE_OUTPUT, &jobs, &n)) {
		*job = 0;
		*st = FERRY_UNDETERMINED;
		return 1;
	}
	for (size_t i = 0; !found && i < n; i++) {
		if (jobs[i] == skip || ferry__engine_job_status(eng, jobs[i], st))
			continue; /* FERRY_ENOJOB: disposed of, so ended */
		if (*st != FERRY_DONE && *st != FERRY_FAILED) {
			*job = jobs[i];
			found = 1;
		}
	}
	free(jobs);
	return found;
}

/*
 * 0 when the transfer's bytes are final: a send that is ready, an output
 * whose jobs have all ended. Else FERRY_ESTATE, naming what is not over.
 */
static int bytes_final(struct ferry_req *t, const struct db_tr_row *row)
{
	enum ferry_job_status st;
	int64_t job;

	if (row->kind == FERRY_TRANSFER_SEND) {
		if (row->state == FERRY_TRANSFER_READY || row->state == FERRY_TRANSFER_RETRIEVED)
			return 0;
		return ferry__req_fail(t, FERRY_ESTATE, "transfer '%s' is %s, not ready",
				       row->server_path, ferry_transfer_state_name(row->state));
	}
	if (!active_producer(t->eng, row->id, 0, &job, &st))
		return 0;
	if (!job)
		return ferry__req_fail(t, FERRY_EINTERNAL, "cannot read the jobs that produce '%s'",
				       row->server_path);
	return ferry__req_fail(t, FERRY_ESTATE,
			       "'%s' is not complete: job %lld, which produces it, is %s; retrieve "
			       "it once the job has ended",
			       row->server_path, (long long)job, ferry_status_name(st));
}

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

	if ((rc = ferry__tr_check_rel(w->t, rel)))
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
		json_array_append_new(
		    w->files, json_pack("{s:o,s:s,s:i,s:I}", "path", ferry__json_bytes(rel), "type",
					"dir", "mode", st.st_mode & 07777, "mtime_ns", mt));
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
	json_t *o = json_pack("{s:o,s:s,s:I,s:i,s:I,s:s}", "path", ferry__json_bytes(rel), "type",
			      "file", "size", (json_int_t)st.st_size, "mode", st.st_mode & 07777,
			      "mtime_ns", mt, "hash", hex);
	if (o && ferry__holey(&st)) /* the client reserves no blocks for the holes */
		json_object_set_new(o, "sparse", json_true());
	json_array_append_new(w->files, o);
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
	int dfd = ferry__tr_open_beneath(ferry__tr_rootfd(t), row->dir, O_RDONLY | O_DIRECTORY, 0);
	struct stat st;
	int rc;

	if (dfd < 0 || !w.files) {
		json_decref(w.files);
		if (dfd >= 0)
			close(dfd);
		return ferry__req_fail(t, FERRY_EIO, "cannot open '%s/%s': %s", ferry__tr_root(t),
				       row->dir, strerror(errno));
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

int ferry__req_transfer_manifest(struct ferry_req *t)
{
	struct db_tr_row row = {0};
	json_t *doc = NULL;
	const char *path;
	int rc;

	if ((rc = get_path_arg(t, &path)) || (rc = find_whole(t, path, "retrieve", &row)))
		return rc;
	if (!(doc = ferry__tr_doc_of(t, &row))) {
		rc = FERRY_EINTERNAL;
		goto out;
	}
	if ((rc = bytes_final(t, &row)))
		goto out;
	if (row.kind == FERRY_TRANSFER_REGISTER) {
		if ((rc = scan_output(t, &row, doc)))
			goto out;
		int produced = row.state == FERRY_TRANSFER_REGISTERED;
		if (produced) {
			row.state = FERRY_TRANSFER_PRODUCED;
			row.ended_at = ferry__now();
			row.deadline = row.ended_at + ferry__tr_hours_s(t, doc);
		}
		if ((rc = ferry__tr_save(t, &row, doc)))
			goto out;
		if (produced) /* jobs that read it as an input may start */
			ferry__engine_inputs_changed(t->eng, row.id);
	}
	json_object_set_new(t->out, "transfer", row_json(t, &row, 1));
	json_object_set_new(t->out, "holes", json_true()); /* transfer_get gives them */
out:
	json_decref(doc);
	ferry__db_tr_row_release(&row);
	return rc;
}

/*
 * Reads [off, off + n) of a sparse file into the reply: its data, in order,
 * as the binary part, and its holes as "holes": [[start, length], ...];
 * when the range ends in a hole, "next_data" says where that hole ends
 * (the next data, or the end of the file), so that the client asks for
 * none of it. The data bytes, or -errno.
 */
static ssize_t sparse_out(struct ferry_req *t, int fd, int64_t off, int64_t n, int64_t size)
{
	json_t *holes = json_array();
	int64_t pos = off, end = off + n, d = off, de;
	size_t got = 0;

	if (!holes || !(t->bin.p = malloc(n ? (size_t)n : 1))) {
		json_decref(holes);
		return -ENOMEM;
	}
	for (; pos < end; pos = de) {
		ferry__next_data(fd, pos, end, &d, &de);
		if (d > pos)
			json_array_append_new(
			    holes, json_pack("[I,I]", (json_int_t)pos, (json_int_t)(d - pos)));
		for (int64_t at = d; at < de;) {
			ssize_t r = pread(fd, (char *)t->bin.p + got, (size_t)(de - at), (off_t)at);
			if (r < 0 && errno == EINTR)
				continue;
			if (r <= 0) {
				json_decref(holes);
				return r < 0 ? -errno : -ESTALE; /* it became shorter */
			}
			got += (size_t)r;
			at += r;
		}
	}
	json_object_set_new(t->out, "holes", holes);
	if (d == end && end < size) {
		ferry__next_data(fd, end, size, &d, &de);
		if (d > end)
			json_object_set_new(t->out, "next_data", json_integer(d));
	}
	t->bin.len = got;
	return (ssize_t)got;
}

/*
 * Makes up to len bytes of fd from off the reply's binary part: the size
 * it has, or -errno. The bytes stay in the page cache and the server sends
 * them from there (t->bin takes fd), so the engine neither reads nor
 * copies them; past a cap of such parts queued at once (each holds a
 * descriptor), they are read into memory instead. holes: the client takes
 * the holes of a sparse file apart (sparse_out).
 */
static ssize_t chunk_out(struct ferry_req *t, int fd, int64_t off, int64_t len, int holes)
{
	struct stat st;
	int64_t d, de;
	ssize_t n;

	if (fstat(fd, &st) < 0)
		return -errno;
	n = st.st_size > off ? (ssize_t)(st.st_size - off < len ? st.st_size - off : len) : 0;
	if (n && holes && ferry__holey(&st)) {
		ferry__next_data(fd, off, off + n, &d, &de);
		if (d != off || de != off + n)
			return sparse_out(t, fd, off, n, st.st_size);
	}
	if (n && ferry__loop_files_queued(ferry__engine_loop(t->eng)) < FERRY_LOOP_FILES_MAX) {
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
	json_t *doc = NULL, *f, *holes = json_object_get(t->in, "holes");
	const char *path;
	char rel[PATH_MAX];
	int64_t idx, off, len;
	int rc, fd = -1;

	if ((rc = get_path_arg(t, &path)) ||
	    (rc = ferry__tr_get_int(t, "file", 0, MAX_FILES, &idx)) ||
	    (rc = ferry__tr_get_int(t, "offset", 0, 1LL << 50, &off)) ||
	    (rc = ferry__tr_get_int(t, "length", 1, MAX_CHUNK, &len)))
		return rc;
	if (holes && !json_is_boolean(holes))
		return ferry__req_fail(t, FERRY_EINVAL, "'holes' must be a boolean");
	if ((rc = find_by_path(t, path, &row)))
		return rc;
	/* each get: a job may have started to write it since the manifest */
	if ((rc = bytes_final(t, &row)))
		goto out;
	if (!(doc = ferry__tr_doc_of(t, &row))) {
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
	fd = ferry__tr_open_beneath(ferry__tr_rootfd(t),
				    ferry__tr_file_rel(&row, f, rel, sizeof(rel)), O_RDONLY, 0);
	if (fd < 0) {
		rc = ferry__req_fail(t, FERRY_EIO, "cannot open '%s/%s': %s", ferry__tr_root(t),
				     rel, strerror(errno));
		goto out;
	}
	ssize_t n = chunk_out(t, fd, off, len, json_is_true(holes));
	if (n < 0) {
		rc = ferry__req_fail(t, n == -ENOMEM ? FERRY_ENOMEM : FERRY_EIO,
				     "cannot read '%s/%s': %s", ferry__tr_root(t), rel,
				     strerror((int)-n));
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

	if ((rc = get_path_arg(t, &path)) || (rc = find_whole(t, path, "retrieve", &row)))
		return rc;
	/* what was copied while a job still wrote it is no retrieve */
	if ((rc = bytes_final(t, &row)))
		goto out;
	if (row.state == FERRY_TRANSFER_REGISTERED) {
		rc =
		    ferry__req_fail(t, FERRY_ESTATE, "'%s' was not produced: nothing was retrieved",
				    row.server_path);
	} else if (row.state != FERRY_TRANSFER_RETRIEVED) {
		row.state = FERRY_TRANSFER_RETRIEVED;
		rc = ferry__tr_save(t, &row, NULL);
	}
out:
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

int ferry__tr_remove(struct ferry_engine *eng, const struct db_tr_row *row)
{
	char *dir = ferry__asprintf("%s/%s", ferry__engine_transfer_root(eng), row->dir);

	if (!dir)
		return FERRY_ENOMEM;
	ferry__rm_rf(dir);
	free(dir);
	ferry__tr_running_drop_transfer(ferry__engine_transfers(eng), row->id);
	ferry__tr_doc_drop(ferry__engine_transfers(eng), row->id);
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

	if ((rc = get_path_arg(t, &path)) || (rc = find_whole(t, path, "cancel", &row)))
		return rc;
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
	rc = ferry__tr_remove(t->eng, &row);
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
	*ready = row.state == FERRY_TRANSFER_READY || row.state == FERRY_TRANSFER_PRODUCED ||
		 row.state == FERRY_TRANSFER_RETRIEVED;
	ferry__db_tr_row_release(&row);
	return 1;
}

/*
 * Job job that names output tid ended: the output is produced when it
 * exists and no other job that produces it is left, and jobs that read it
 * as an input may start.
 */
static void output_ended(struct ferry_engine *eng, int64_t tid, int64_t job)
{
	struct db_tr_row row = {0};
	struct ferry_req t = {.eng = eng};
	enum ferry_job_status st;
	int64_t other;
	json_t *doc;
	int fd = -1;

	if (active_producer(eng, tid, job, &other, &st) ||
	    ferry__db_tr_by_id(ferry__engine_db(eng), tid, &row))
		return;
	doc = doc_load(&t, &row, 0);
	if (row.kind == FERRY_TRANSFER_REGISTER && row.state == FERRY_TRANSFER_REGISTERED && doc) {
		const char *name = json_string_value(json_object_get(doc, "name"));
		char *rel = ferry__asprintf("%s/%s", row.dir, name ? name : "");
		fd = rel ? ferry__tr_open_beneath(ferry__tr_rootfd(&t), rel, O_PATH, 0) : -1;
		free(rel);
		free(row.message);
		row.message = NULL;
		if (fd >= 0) {
			row.state = FERRY_TRANSFER_PRODUCED;
			row.ended_at = ferry__now();
			row.deadline = row.ended_at + ferry__tr_hours_s(&t, doc);
		} else {
			row.message =
			    ferry__asprintf("job %lld ended without producing it", (long long)job);
		}
		if (!ferry__db_tr_update(ferry__engine_db(eng), &row) && fd >= 0)
			ferry__engine_inputs_changed(eng, row.id);
	}
	if (fd >= 0)
		close(fd);
	json_decref(doc);
	ferry__db_tr_row_release(&row);
}

void ferry__transfer_job_ended(struct ferry_engine *eng, int64_t job)
{
	int64_t *tids = NULL;
	size_t n = 0;

	if (ferry__db_ref_of_job(ferry__engine_db(eng), job, ROLE_OUTPUT, &tids, &n))
		return;
	for (size_t i = 0; i < n; i++)
		output_ended(eng, tids[i], job);
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
			ferry__tr_remove(eng, &row);
		ferry__db_tr_row_release(&row);
	}
	free(ids);
}

int ferry__transfer_root_open(const char *configured, const char *state_dir, char **root, int *fd,
			      char *err, size_t errlen)
{
	char *want = configured ? strdup(configured) : ferry__asprintf("%s/transfers", state_dir);
	int rc;

	*fd = -1;
	if (!want) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	if (want[0] != '/') {
		snprintf(err, errlen, "transfer_root '%s' is not an absolute path", want);
		free(want);
		return -1;
	}
	if (ferry__mkdir_p(want, 0700) < 0 || !(*root = realpath(want, NULL)) ||
	    (*fd = open(*root, O_PATH | O_DIRECTORY | O_CLOEXEC)) < 0) {
		snprintf(err, errlen, "cannot use the transfer root '%s': %s", want,
			 strerror(errno));
		free(want);
		return -1;
	}
	/* jobs read their inputs there once ready: no one else may swap them */
	rc = ferry__check_own_dir_fd("transfer root", want, *fd, FERRY_DIR_NOT_WRITABLE, err,
				     errlen);
	free(want);
	return rc ? -1 : 0;
}

/* ---- jobs that wait for a transfer's inputs ---- */

static void input_gone(struct ferry_engine *eng, struct job *j);

/*
 * Calls fn for each job that waits (system_on_hold) for the inputs of
 * transfer tid.
 */
static void each_waiting(struct ferry_engine *eng, int64_t tid,
			 void (*fn)(struct ferry_engine *eng, struct job *j))
{
	int64_t *ids = NULL;
	size_t n = 0;

	if (ferry__db_ref_jobs(ferry__engine_db(eng), tid, 0, &ids, &n))
		return;
	for (size_t i = 0; i < n; i++) {
		struct job *j = ferry__engine_job(eng, ids[i]);
		int64_t deps = 0;
		/*
		 * One waiting for its dependencies too is its row only
		 * (workflow.c): its input gone, it must end now, not run
		 * without it once they are done.
		 */
		if (!j && fn == input_gone &&
		    !ferry__db_job_waiting(ferry__engine_db(eng), ids[i], &deps) && deps > 0)
			j = ferry__engine_job_load(eng, ids[i]);
		if (j &&
		    (j->state == FERRY_SYSTEM_ON_HOLD || j->state == FERRY_USER_SYSTEM_ON_HOLD))
			fn(eng, j);
	}
	free(ids);
}

static void inputs_ready(struct ferry_engine *eng, struct job *j)
{
	int64_t deps = 0;

	/* one waiting for its dependencies too goes on when they are done (workflow.c) */
	if (ferry__db_ref_pending(ferry__engine_db(eng), j->id) == 0 &&
	    !ferry__db_job_waiting(ferry__engine_db(eng), j->id, &deps) && !deps) {
		ferry__engine_job_set_state(eng, j,
					    j->state == FERRY_SYSTEM_ON_HOLD ? FERRY_QUEUED_ACTIVE
									     : FERRY_USER_ON_HOLD);
		ferry__engine_job_settle(eng, j); /* held still: it waits in the database */
	}
}

static void input_gone(struct ferry_engine *eng, struct job *j)
{
	ferry__engine_job_end_unstarted(eng, j, FERRY_ABORTED,
					"an input transfer was removed before it was ready");
}

void ferry__engine_inputs_changed(struct ferry_engine *eng, int64_t tid)
{
	each_waiting(eng, tid, inputs_ready);
}

void ferry__engine_inputs_gone(struct ferry_engine *eng, int64_t tid)
{
	each_waiting(eng, tid, input_gone);
}
