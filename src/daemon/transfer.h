/*
 * transfer.h - what the engine calls of the checked file transfers
 * (transfer.c); transfer_int.h is what the transfer files share.
 */
#ifndef FERRY_TRANSFER_H
#define FERRY_TRANSFER_H

#include <jansson.h>
#include <stdint.h>

#include "loop.h"

struct ferry_engine;

/* (The transfer requests' handlers are declared in dispatch.h.) */
/*
 * Whether path lies under the transfer root: 0 not, 1 (with *tid, and
 * *ready when its transfer is ready), or an error code with err set (no
 * such transfer, a bad name).
 */
int ferry__transfer_lookup(struct ferry_engine *eng, const char *path, int64_t *tid, int *ready,
			   char *err, size_t errlen);
/* A job ended: outputs of it that exist now are produced. */
void ferry__transfer_job_ended(struct ferry_engine *eng, int64_t job);
/*
 * What the transfers keep between requests (parsed manifests, running
 * checksums), one per engine: NULL when out of memory.
 */
struct ferry_transfers *ferry__transfers_new(void);
/*
 * The transfer root: configured (transfer_root), or transfers/ in
 * state_dir (made 0700); writable by the user alone, resolved once into
 * *root (malloc'd), then reached through *fd (O_PATH). 0, or -1 with err
 * set (*root and *fd, -1, as far as they got: the caller frees them).
 */
int ferry__transfer_root_open(const char *configured, const char *state_dir, char **root, int *fd,
			      char *err, size_t errlen);
void ferry__transfers_free(struct ferry_transfers *x);
/* Removes expired transfers. */
void ferry__transfer_gc(struct ferry_engine *eng);

#endif
