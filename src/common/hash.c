/* hash.c - XXH3-128 of files and buffers (see hash.h for why this hash). */
#include "hash.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>
#include <xxhash.h>

#include "config.h"
#if FERRY_XXH_DISPATCH
#include <xxh_x86dispatch.h> /* maps the calls below to the widest SIMD the CPU has */
#endif

#define HASH_BUF (1u << 20)

int ferry__hash_init(struct ferry_hash *h)
{
	h->state = XXH3_createState();
	if (!h->state)
		return -ENOMEM;
	XXH3_128bits_reset(h->state);
	return 0;
}

void ferry__hash_update(struct ferry_hash *h, const void *data, size_t len)
{
	XXH3_128bits_update(h->state, data, len);
}

void ferry__hash_final(struct ferry_hash *h, char hex[FERRY_HASH_HEX])
{
	ferry__hash_peek(h, hex);
	XXH3_freeState(h->state);
	h->state = NULL;
}

int ferry__hash_peek(const struct ferry_hash *h, char hex[FERRY_HASH_HEX])
{
	XXH128_hash_t d;

	if (!h->state)
		return -EINVAL;
	d = XXH3_128bits_digest(h->state);
	snprintf(hex, FERRY_HASH_HEX, "%016llx%016llx", (unsigned long long)d.high64,
		 (unsigned long long)d.low64);
	return 0;
}

void ferry__hash_release(struct ferry_hash *h)
{
	if (h->state)
		XXH3_freeState(h->state);
	h->state = NULL;
}

int ferry__hash_update_fd(struct ferry_hash *h, int fd, uint64_t len)
{
	return ferry__hash_update_range(h, fd, 0, len);
}

int ferry__hash_update_range(struct ferry_hash *h, int fd, uint64_t off, uint64_t end)
{
	char *buf = malloc(HASH_BUF);
	int e = 0;

	if (!buf)
		return -ENOMEM;
	while (off < end) {
		size_t want = end - off < HASH_BUF ? (size_t)(end - off) : HASH_BUF;
		ssize_t n = pread(fd, buf, want, (off_t)off);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			e = n < 0 ? -errno : -EIO; /* shorter than said: changed under us */
			break;
		}
		ferry__hash_update(h, buf, (size_t)n);
		off += (uint64_t)n;
	}
	free(buf);
	return e;
}

int ferry__hash_fd(int fd, uint64_t len, char hex[FERRY_HASH_HEX])
{
	struct ferry_hash h;
	int e;

	if (ferry__hash_init(&h) < 0)
		return -ENOMEM;
	e = ferry__hash_update_fd(&h, fd, len);
	ferry__hash_final(&h, hex);
	return e;
}
