/* copy.h - a local copy that hashes the bytes it moves (copy.c). */
#ifndef FERRY_COPY_H
#define FERRY_COPY_H

#include <stddef.h>
#include <stdint.h>

#include "hash.h"

struct ferry__copy {
	int in, out;	      /* borrowed */
	int64_t off, end;     /* [off, end) of in goes to the same offsets of out */
	struct ferry_hash *h; /* fed every byte copied, in order */
	/* optional: out is written up to upto; at most once per step bytes, and at the end */
	void (*progress)(void *arg, int64_t upto);
	void *arg;
	size_t step;
};

/*
 * Copies c's range. The holes of a sparse in are hashed as zeros and kept
 * (not written; out is extended over one at the end). 0, or an errno: ENODATA when in ended before
 * c->end (it became shorter), else the failed read's or write's, or ENOMEM or EAGAIN when no
 * buffers or no thread could be had.
 */
int ferry__copy_hashed(const struct ferry__copy *c);

#endif
