/* hash.c - XXH3-128 of files and buffers (see hash.h for why this hash). */
#include "hash.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>
#include <xxhash.h>

#include "config.h"
#include "holes.h"
#if FERRY_XXH_DISPATCH
#include <xxh_x86dispatch.h> /* maps the calls below to the widest SIMD the CPU has */
#endif

#define HASH_BUF  (1u << 20)
#define ZEROS_BUF (64u << 10) /* stays in the CPU's cache while it is hashed again and again */

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

void ferry__hash_zeros(struct ferry_hash *h, uint64_t n)
{
	static const char zeros[ZEROS_BUF];

	while (n) {
		size_t k = n < ZEROS_BUF ? (size_t)n : ZEROS_BUF;
		XXH3_128bits_update(h->state, zeros, k);
		n -= k;
	}
}

/* Feeds [off, end) of fd, all of it data. 0 or -errno. */
static int hash_data(struct ferry_hash *h, int fd, char *buf, uint64_t off, uint64_t end)
{
	while (off < end) {
		size_t want = end - off < HASH_BUF ? (size_t)(end - off) : HASH_BUF;
		ssize_t n = pread(fd, buf, want, (off_t)off);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return n < 0 ? -errno : -EIO; /* shorter than said: changed under us */
		ferry__hash_update(h, buf, (size_t)n);
		off += (uint64_t)n;
	}
	return 0;
}

/* A sparse file's holes are hashed as the zeros they read as, without reading them. */
int ferry__hash_update_range(struct ferry_hash *h, int fd, uint64_t off, uint64_t end)
{
	struct stat st;
	char *buf;
	int e = 0;

	if (off >= end)
		return 0;
	if (fstat(fd, &st) < 0)
		return -errno;
	if ((uint64_t)st.st_size < end)
		return -EIO; /* shorter than said: changed under us */
	if (!(buf = malloc(HASH_BUF)))
		return -ENOMEM;
	if (!ferry__holey(&st))
		e = hash_data(h, fd, buf, off, end);
	while (ferry__holey(&st) && !e && off < end) {
		int64_t d, de;
		ferry__next_data(fd, (int64_t)off, (int64_t)end, &d, &de);
		ferry__hash_zeros(h, (uint64_t)d - off);
		e = hash_data(h, fd, buf, (uint64_t)d, (uint64_t)de);
		off = (uint64_t)de;
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
