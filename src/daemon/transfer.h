/* transfer.h - the engine's side of checked file transfers (transfer.c). */
#ifndef FERRY_TRANSFER_H
#define FERRY_TRANSFER_H

#include <jansson.h>
#include <stdint.h>

#include "loop.h"

struct ferry_engine;

int ferry__transfer_is_op(const char *op);
/* A transfer_* request; fills out (and *bin), or returns a code with err. */
int ferry__transfer_request(struct ferry_engine *eng, const char *op, json_t *in, json_t *out,
			    const void *data, size_t datalen, struct ferry_bin *bin, char *err,
			    size_t errlen);
/*
 * Whether path lies under the transfer root: 0 not, 1 (with *tid, and
 * *ready when its transfer is ready), or an error code with err set (no
 * such transfer, a bad name).
 */
int ferry__transfer_lookup(struct ferry_engine *eng, const char *path, int64_t *tid, int *ready,
			   char *err, size_t errlen);
/* A job ended: outputs of it that exist now are produced. */
void ferry__transfer_job_ended(struct ferry_engine *eng, int64_t job);
/* Removes expired transfers. */
void ferry__transfer_gc(struct ferry_engine *eng);

#endif
