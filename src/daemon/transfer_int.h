/*
 * transfer_int.h - what the two halves of the transfers share: transfer.c
 * (paths beneath the root, the cache of manifests, the transfer object,
 * retrieval, outputs, jobs) and transfer_send.c (the requests that create
 * a transfer and fill it: transfer_send, transfer_register, transfer_put).
 * Private to those two files; the engine sees transfer.h and dispatch.h.
 */
#ifndef FERRY_TRANSFER_INT_H
#define FERRY_TRANSFER_INT_H

#include <stdint.h>
#include <stdio.h>
#include <sys/types.h>

#include "dispatch.h"
#include "hash.h"

#define MAX_FILES 100000      /* in one transfer */
#define MAX_CHUNK (8u << 20)  /* bytes in one put or get */
#define MAX_HOLE  (1LL << 30) /* bytes of a hole in one put: its zeros are hashed on the loop */

/*
 * A transfer's parsed doc (manifest), kept for the transfers in use
 * (transfer.c, "docs", says why). A send's count of files still
 * incomplete and which of a tree's files were checked are kept with it.
 */
struct tr_doc {
	int64_t id;
	json_t *doc;		 /* NULL: a free slot */
	int64_t left;		 /* a send's files not complete yet; -1: not counted */
	unsigned char *verified; /* a tree's files checked, to be named at its end */
	size_t nfiles;
	uint64_t used;
};

/*
 * A running checksum of a file received in one uninterrupted stream of
 * chunks (transfer_send.c says why).
 */
struct tr_running {
	int64_t tid, idx, off; /* off: bytes hashed so far */
	uint64_t used;	       /* when last fed, for eviction */
	struct ferry_hash h;
};

#define DOCS_MAX    8 /* parsed docs kept */
#define RUNNING_MAX 8 /* running checksums kept */

/* What the transfers keep between requests: one per engine (ferry__engine_transfers). */
struct ferry_transfers {
	struct tr_doc docs[DOCS_MAX];
	uint64_t docs_clock;
	struct tr_running running[RUNNING_MAX];
	uint64_t running_clock;
};

/* The engine's transfer caches. */
static inline struct ferry_transfers *ferry__tr_caches(struct ferry_req *t)
{
	return ferry__engine_transfers(t->eng);
}

/* The transfer root: its absolute path, and a descriptor to open beneath it. */
static inline const char *ferry__tr_root(struct ferry_req *t)
{
	return ferry__engine_transfer_root(t->eng);
}

static inline int ferry__tr_rootfd(struct ferry_req *t)
{
	return ferry__engine_transfer_root_fd(t->eng);
}

/* File f of the transfer's doc, as a path relative to the root, in buf. */
static inline const char *ferry__tr_file_rel(const struct db_tr_row *row, json_t *f, char *buf,
					     size_t cap)
{
	snprintf(buf, cap, "%s/%s", row->dir, json_string_value(json_object_get(f, "path")));
	return buf;
}

/* ---- paths beneath the root (transfer.c) ---- */
/* openat(2) of rel beneath dirfd, refusing symlinks and any way out: fd or -1. */
int ferry__tr_open_beneath(int dirfd, const char *rel, int flags, mode_t mode);
/*
 * A relative name from a client: components separated by single '/', none
 * empty, "." or "..", too long, holding a control character or ending in
 * the suffix of partial files. 0, or FERRY_EINVAL with t->err set.
 */
int ferry__tr_check_rel(struct ferry_req *t, const char *rel);
/* The parent directory of rel (an O_PATH fd beneath root, or -1) and rel's last component. */
int ferry__tr_open_parent(int root, const char *rel, const char **base);
/* The name of base's partial file (malloc'd), or NULL. */
char *ferry__tr_part_name(const char *base);
/* rel with its last component turned into its part's name; 0, or -1 when too long. */
int ferry__tr_part_rel(const char *rel, char *buf, size_t cap);

/* ---- docs and rows (transfer.c) ---- */
/* The cached doc of transfer id, or NULL. */
struct tr_doc *ferry__tr_doc_find(struct ferry_transfers *x, int64_t id);
void ferry__tr_doc_drop(struct ferry_transfers *x, int64_t id);
/* The row's doc (a new reference, cached), or NULL with t->err set. */
json_t *ferry__tr_doc_of(struct ferry_req *t, const struct db_tr_row *row);
/* Removes a transfer's files and records (its directory name comes from the database). */
int ferry__tr_remove(struct ferry_engine *eng, const struct db_tr_row *row);
/* Writes the row, and doc when given (the cached one, changed in place). */
int ferry__tr_save(struct ferry_req *t, struct db_tr_row *row, json_t *doc);
/* Whether file idx of the transfer was checked and waits for its name. */
int ferry__tr_is_verified(struct ferry_transfers *x, int64_t id, int64_t idx);
/* The transfer's disposal time, in seconds. */
double ferry__tr_hours_s(struct ferry_req *t, json_t *doc);
/* Bytes of file f present: its size when complete (*complete), else its part's. */
int64_t ferry__tr_file_done(struct ferry_req *t, const struct db_tr_row *row, json_t *f,
			    int *complete);
/* The integer field key of the request, from min to max; or FERRY_EINVAL. */
int ferry__tr_get_int(struct ferry_req *t, const char *key, int64_t min, int64_t max, int64_t *v);

/* ---- sends (transfer_send.c) ---- */
/* Forgets the running checksums of the transfer's files (it is resumed or removed). */
void ferry__tr_running_drop_transfer(struct ferry_transfers *x, int64_t tid);

#endif
