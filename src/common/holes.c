/*
 * holes.c - where the data of a sparse file is (SEEK_DATA, SEEK_HOLE).
 *
 * A sparse file of 10 GiB holding 4 KiB costed 10 GiB of reads, writes and
 * disk on each side of a transfer. Its holes read as zeros and are hashed
 * as zeros (the checksum stays the one of the bytes, so a sparse copy and
 * a dense one of the same bytes match), but they are neither read nor
 * written: a copy extends its file over them instead.
 */
#include "holes.h"

#include <errno.h>
#include <fcntl.h>
#include <unistd.h>

int ferry__holey(const struct stat *st)
{
	return S_ISREG(st->st_mode) && (int64_t)st->st_blocks * 512 < (int64_t)st->st_size;
}

void ferry__next_data(int fd, int64_t pos, int64_t end, int64_t *data, int64_t *data_end)
{
	off_t d = lseek(fd, (off_t)pos, SEEK_DATA), h;

	if (d < 0) {
		/* ENXIO: only a hole is left; anything else: no map, all data */
		*data = errno == ENXIO ? end : pos;
		*data_end = end;
		return;
	}
	*data = d < end ? (int64_t)d : end;
	h = *data < end ? lseek(fd, d, SEEK_HOLE) : end;
	*data_end = h < 0 || h > end ? end : (int64_t)h;
	/*
	 * A file cut or punched between the two seeks can give a hole at the
	 * data itself: take the rest as data, whose reads then find the change
	 * (a short read), rather than a range that never advances.
	 */
	if (*data < end && *data_end <= *data)
		*data_end = end;
}

int64_t ferry__data_bytes(const char *path, int64_t size)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	int64_t pos = 0, n = 0, data, data_end;

	if (fd < 0)
		return size;
	while (pos < size) {
		ferry__next_data(fd, pos, size, &data, &data_end);
		if (data >= size)
			break;
		n += data_end - data;
		pos = data_end;
	}
	close(fd);
	return n;
}
