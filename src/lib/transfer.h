/*
 * transfer.h - what libferry's sends (transfer-send.c) and retrieves
 * (transfer-get.c) share; transfer.c holds it, and the transfer calls
 * that move no bytes.
 */
#ifndef FERRY_LIB_TRANSFER_H
#define FERRY_LIB_TRANSFER_H

#include <stdint.h>

#include "hash.h"
#include "internal.h"

#define CHUNK  (1u << 20)
#define WINDOW 32 /* chunks in flight: the link never waits for the engine */
/* the most of a hole one put stands for: the engine hashes its zeros on its loop */
#define HOLE_PUT (256 << 20)

/*
 * A call's progress (ferry_set_progress): base is the bytes of the other
 * files, present or moved, so that one file's offset gives the whole's;
 * last keeps done from going back when a retry starts a file over.
 */
struct ferry__progress {
	ferry_progress_fn fn;
	void *ud;
	int64_t total, base, last;
	int started;
};

/* Takes the connection's progress function for one call. */
void ferry__progress_init(struct ferry__progress *p, ferry_conn *c);
/* Reports done (kept within [last, total]); a repeat is reported once. */
void ferry__progress_at(struct ferry__progress *p, int64_t done);

/*
 * Requests in flight over a link, answered in order: a send's puts, a
 * retrieve's gets. Each side keeps in a ring of WINDOW what each one is
 * for, at the index these calls give. All under the connection's lock.
 */
struct ferry__pipeline {
	ferry_conn *c;
	int inflight;
	int broken, link_broke; /* no more answers: the stream is lost (link_broke: the link) */
	unsigned head;		/* ring index of the oldest in flight, modulo WINDOW */
};

/*
 * Sends req (not consumed) with n bytes as its data (n 0: none): those at
 * mem, or without mem those of fd from off; *at receives its ring index.
 * req NULL counts as a failed send: FERRY_ENOMEM. A failed send breaks
 * the stream: no answer will come.
 */
int ferry__pipeline_send(struct ferry__pipeline *q, json_t *req, const void *mem, int fd,
			 int64_t off, size_t n, unsigned *at);
/*
 * Takes the oldest answer: *at receives its ring index, *r the reply
 * (decref it, also after an error reply), *bin and *len (bin may be NULL)
 * its data, which stays the connection's and good until the next answer
 * is taken. 0, the reply's error (message set) or the link's (the stream
 * is then broken).
 */
int ferry__pipeline_recv(struct ferry__pipeline *q, unsigned *at, json_t **r, const void **bin,
			 size_t *len);
/*
 * After the answers that will come were taken: a lost stream closes the
 * connection, whose answers can no longer be told apart, and a broken
 * link gives FERRY_ESTATE (the caller asks where the transfer stands,
 * which reconnects, and goes on from there). Otherwise rc.
 */
int ferry__pipeline_end(struct ferry__pipeline *q, int rc);

/*
 * Copies [off, end) of in to the same offsets of out on this host (copy.c),
 * hashing every byte into h and reporting to p from p->base. 0 or an errno.
 */
int ferry__copy_progress(int in, int out, int64_t off, int64_t end, struct ferry_hash *h,
			 struct ferry__progress *p);

/* The code of a failed file operation's errno: ENOMEM, EPERM, or else EIO. */
int ferry__errno_code(int e);
/* An absolute path for the record: a relative one is taken from the cwd. malloc'd. */
char *ferry__absolute(const char *p);
/* The last component of p, trailing slashes dropped; the thread's buffer. */
const char *ferry__base_name(const char *p);
/*
 * A server path as the engine takes it: on a local resource the engine's
 * files are this host's, so a relative one is taken from the current
 * directory, as for any other path. 0 with *sp (free it), or an error.
 */
int ferry__server_arg(ferry_conn *c, const char *server_path, char **sp);
/*
 * The transfer root an engine on this host keeps its files in, as this
 * client's configuration says (transfer_root, or transfers/ in the state
 * directory), resolved; NULL when it cannot be told. malloc'd.
 */
char *ferry__expected_root(ferry_conn *c);
/*
 * Whether part, where an engine on this host tells the client to copy the
 * transfer's file rel, is that file's part in its transfer's directory
 * beneath root: "ROOT/DIR/REL's directory/.NAME.ferry-part", DIR one
 * component. The client writes nowhere else: a foreign or confused engine
 * could name any file of the user's.
 */
int ferry__part_expected(const char *root, const char *rel, const char *part);
/*
 * Whether p is a clean relative path: components separated by single
 * '/', none empty, "." or "..". What a manifest's paths must be before
 * anything is written beneath the place they name.
 */
int ferry__clean_rel(const char *p);
/* *server_path = a copy of the reply's server path. 0, or FERRY_ENOMEM. */
int ferry__reply_path(ferry_conn *c, json_t *reply, char **server_path);

#endif
