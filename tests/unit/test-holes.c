/*
 * test-holes.c - where a sparse file's data is (src/common/holes.c), and
 * the checksum of a range of it (src/common/hash.c): its holes hashed as
 * the zeros they read as, never read. Each case makes a file of its size
 * with its pieces of data in a temporary directory; where the file system
 * keeps no holes (every byte data), only the checksums are checked.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "hash.h"
#include "holes.h"
#include "unit.h"

#define K	  4096
#define MAXP	  4
#define MAX_RANGE 4

struct piece {
	int64_t off, len;
};

static const struct holes_case {
	const char *name;
	int64_t size;
	struct piece data[MAXP];       /* also the extents SEEK_DATA finds, in order; len 0 ends */
	struct piece range[MAX_RANGE]; /* hashed: [off, off + len) */
} cases[] = {
    {"dense", 25 * K, {{0, 25 * K}}, {{0, 25 * K}, {K + 7, 3 * K}}},
    {"all hole", 256 * K, {{0, 0}}, {{0, 256 * K}, {100, 1}}},
    {"hole then data", 512 * K, {{128 * K, 2 * K}}, {{0, 512 * K}, {K, 128 * K}}},
    {"data hole data",
     1024 * K,
     {{0, 2 * K}, {600 * K, 3 * K}},
     {{0, 1024 * K}, {K, 600 * K}, {601 * K, 423 * K}}},
    {"hole at the end", 4096 * K, {{0, K}}, {{0, 4096 * K}, {K, 4095 * K}}},
};

/* The bytes of case c, dense, as it reads: its pieces, zeros elsewhere. */
static unsigned char *dense(const struct holes_case *c)
{
	unsigned char *b = calloc(1, (size_t)c->size);

	for (int i = 0; b && i < MAXP && c->data[i].len; i++)
		for (int64_t k = 0; k < c->data[i].len; k++)
			b[c->data[i].off + k] = (unsigned char)(1 + (c->data[i].off + k) % 251);
	return b;
}

static int make(const struct holes_case *c, const unsigned char *b)
{
	char path[] = "/tmp/ferry-test-holes-XXXXXX";
	int fd = mkstemp(path);

	if (fd < 0)
		return -1;
	unlink(path);
	if (ftruncate(fd, c->size) < 0) {
		close(fd);
		return -1;
	}
	for (int i = 0; i < MAXP && c->data[i].len; i++)
		if (pwrite(fd, b + c->data[i].off, (size_t)c->data[i].len, c->data[i].off) !=
		    (ssize_t)c->data[i].len) {
			close(fd);
			return -1;
		}
	if (fsync(fd) < 0) {
		close(fd);
		return -1;
	}
	return fd;
}

static void check_extents(const struct holes_case *c, int fd)
{
	int64_t pos = 0, d, de;
	int i = 0;

	for (; pos < c->size; pos = de, i++) {
		ferry__next_data(fd, pos, c->size, &d, &de);
		if (d == c->size)
			break;
		if (!CHECK(i < MAXP && c->data[i].len))
			return;
		CHECK_INT(d, ==, c->data[i].off);
		CHECK_INT(de, ==, c->data[i].off + c->data[i].len);
	}
	CHECK(i == MAXP || !c->data[i].len);
	/* within a range that ends in a hole */
	ferry__next_data(fd, 0, K / 2, &d, &de);
	CHECK_INT(de, <=, K / 2);
}

static void check_ranges(const struct holes_case *c, int fd, const unsigned char *b)
{
	for (int i = 0; i < MAX_RANGE && c->range[i].len; i++) {
		struct ferry_hash h, w;
		char got[FERRY_HASH_HEX], want[FERRY_HASH_HEX];
		uint64_t off = (uint64_t)c->range[i].off, end = off + (uint64_t)c->range[i].len;
		if (!CHECK(ferry__hash_init(&h) == 0 && ferry__hash_init(&w) == 0))
			return;
		CHECK_INT(ferry__hash_update_range(&h, fd, off, end), ==, 0);
		ferry__hash_update(&w, b + off, end - off);
		ferry__hash_final(&h, got);
		ferry__hash_final(&w, want);
		CHECK_STR(got, want);
	}
}

static void check_case(const struct holes_case *c)
{
	unsigned char *b = dense(c);
	int fd = b ? make(c, b) : -1;
	struct stat st;
	struct ferry_hash h;

	unit_case("%s", c->name);
	if (!CHECK(fd >= 0 && fstat(fd, &st) == 0)) {
		free(b);
		return;
	}
	/* a file system that keeps holes: the map is what was written */
	if (ferry__holey(&st) || c->data[0].len == c->size)
		check_extents(c, fd);
	CHECK_INT(ferry__holey(&st) && c->data[0].len == c->size, ==, 0);
	check_ranges(c, fd, b);
	/* past the end: the file changed under the reader */
	if (CHECK(ferry__hash_init(&h) == 0)) {
		CHECK_INT(ferry__hash_update_range(&h, fd, 0, (uint64_t)c->size + 1), ==, -EIO);
		ferry__hash_release(&h);
	}
	close(fd);
	free(b);
}

/* n zeros hashed without a buffer: as many zero bytes hashed from one. */
static void check_zeros(void)
{
	static const uint64_t sizes[] = {0, 1, 65535, 65536, 65537, 3 << 20};

	for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		struct ferry_hash a, b;
		char ha[FERRY_HASH_HEX], hb[FERRY_HASH_HEX];
		unsigned char *z = calloc(1, sizes[i] + 1);
		unit_case("%llu zeros", (unsigned long long)sizes[i]);
		if (!CHECK(z && ferry__hash_init(&a) == 0 && ferry__hash_init(&b) == 0)) {
			free(z);
			return;
		}
		ferry__hash_zeros(&a, sizes[i]);
		ferry__hash_update(&b, z, sizes[i]);
		ferry__hash_final(&a, ha);
		ferry__hash_final(&b, hb);
		CHECK_STR(ha, hb);
		free(z);
	}
}

int main(void)
{
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		check_case(&cases[i]);
	check_zeros();
	return unit_done("test-holes");
}
