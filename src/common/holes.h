/*
 * holes.h - the holes of sparse files (holes.c): where a file's data is,
 * so that a copy skips what reads as zeros without being stored, and the
 * copy keeps the holes (docs/transfers.md, "Sparse files").
 */
#ifndef FERRY_HOLES_H
#define FERRY_HOLES_H

#include <stdint.h>
#include <sys/stat.h>

/*
 * Whether the file st describes may have holes: fewer blocks than its
 * size needs. A file that has none costs no lseek(2) at all.
 */
int ferry__holey(const struct stat *st);

/*
 * The first data of fd at or after pos, within [pos, end): [*data,
 * *data_end), both end when only a hole is left. A file system that
 * cannot tell (lseek refused) has data everywhere.
 */
void ferry__next_data(int fd, int64_t pos, int64_t end, int64_t *data, int64_t *data_end);

/*
 * The bytes of data of the file at path, of size bytes: the sum of its
 * data extents, what a sparse copy of it takes (the engine reserves that
 * much for a send). size when it cannot be opened.
 */
int64_t ferry__data_bytes(const char *path, int64_t size);

#endif
