/*
 * hash.h - the checksum of transferred files: XXH3-128 (libxxhash).
 *
 * Not a cryptographic hash: it guards against corruption and truncation
 * (disk, memory, a bug), while who may write is settled by ssh and file
 * modes. It runs at memory speed, so checking a file end to end costs
 * little next to copying it (see docs/architecture.md).
 */
#ifndef FERRY_HASH_H
#define FERRY_HASH_H

#include <stddef.h>
#include <stdint.h>

#define FERRY_HASH_HEX 33 /* 32 hex digits and a NUL */

struct ferry_hash {
	void *state; /* XXH3_state_t */
};

int ferry__hash_init(struct ferry_hash *h);
void ferry__hash_update(struct ferry_hash *h, const void *data, size_t len);
/* Feeds n zero bytes (a hole of a sparse file) without reading them. */
void ferry__hash_zeros(struct ferry_hash *h, uint64_t n);
/* Writes the digest as hex and frees the state. */
void ferry__hash_final(struct ferry_hash *h, char hex[FERRY_HASH_HEX]);
/* Writes the digest of what h was fed so far, and h goes on. 0, or -EINVAL when released. */
int ferry__hash_peek(const struct ferry_hash *h, char hex[FERRY_HASH_HEX]);
/* Frees the state without a digest (no-op on a released one). */
void ferry__hash_release(struct ferry_hash *h);
/* Feeds the first len bytes of fd (from offset 0) to h. 0 or -errno. */
int ferry__hash_update_fd(struct ferry_hash *h, int fd, uint64_t len);
/*
 * Feeds bytes [off, end) of fd to h, its holes as zeros without reading
 * them. 0 or -errno (-EIO when fd is shorter than end).
 */
int ferry__hash_update_range(struct ferry_hash *h, int fd, uint64_t off, uint64_t end);
/* Hashes the first len bytes of fd (from offset 0). 0 or -errno. */
int ferry__hash_fd(int fd, uint64_t len, char hex[FERRY_HASH_HEX]);

#endif
