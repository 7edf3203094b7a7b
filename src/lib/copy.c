/*
 * copy.c - the local data path of transfers: copies a byte range between
 * two files on this host and hashes every byte it moves.
 *
 * The checksum has to see the bytes anyway, so they go through a buffer
 * once: read, hashed from the buffer, written from it. copy_file_range(2)
 * would copy without the buffer, but on file systems that cannot share
 * blocks it is the same copy inside the kernel, and the checksum would
 * then need a second read of the whole file (docs/architecture.md has the
 * figures). A reader thread reads, hashes and starts the writeback of
 * what is written, while this one writes, which splits the work about
 * evenly between two cores. The writeback goes per 16 MiB slice, so that
 * the disk works during the copy and the caller's fsync finds little
 * left.
 *
 * The holes of a sparse source (holes.c) are hashed as zeros but neither
 * read nor written: the copy keeps them, and its file is extended over a
 * hole at its end.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "copy.h"
#include "holes.h"
#include "util.h"

#define BUF	  (256u << 10)
#define NBUF	  32
#define SLICE	  (16 << 20)  /* writeback starts per slice */
#define HOLE_SLOT (1LL << 30) /* the most of a hole one slot stands for */
/*
 * A reader that found the ring full sleeps until it is down to this many:
 * then it refills half the ring in one go. Woken for every slot instead,
 * it slept and woke 4096 times a GiB, and on a VM waking an idle vCPU
 * costs more than reading the 256 KiB it was woken for.
 */
#define LOW_WATER (NBUF / 2)

struct ring {
	const struct ferry__copy *c;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	char *buf[NBUF];
	ssize_t len[NBUF];	  /* bytes read into buf[i]; -1: failed, with err */
	unsigned char hole[NBUF]; /* buf[i] stands for len[i] bytes of a hole: none to write */
	int holey;		  /* in may have holes: they are looked for */
	int64_t filled, drained;  /* slots produced and consumed, ever */
	int64_t written;	  /* out is written up to here */
	int reader_waits, writer_waits;
	int stop, err;
};

/*
 * The bytes of the slot that starts at pos, into buf and hashed: what was
 * read (0: in ended early), -errno, or a hole's length with *hole set.
 * [*data, *data_end) is in's data extent at or after pos, kept between
 * calls.
 */
static ssize_t read_slot(struct ring *r, char *buf, int64_t pos, int64_t *data, int64_t *data_end,
			 unsigned char *hole)
{
	const struct ferry__copy *c = r->c;
	struct stat st;
	ssize_t n;

	*hole = 0;
	if (r->holey && pos >= *data_end)
		ferry__next_data(c->in, pos, c->end, data, data_end);
	if (pos < *data) {
		/* a hole to the end is only one if in is still that long */
		if (*data == c->end && (fstat(c->in, &st) < 0 || st.st_size < c->end))
			return 0;
		*hole = 1;
		n = *data - pos < HOLE_SLOT ? (ssize_t)(*data - pos) : (ssize_t)HOLE_SLOT;
		ferry__hash_zeros(c->h, (uint64_t)n);
		return n;
	}
	size_t want = *data_end - pos < BUF ? (size_t)(*data_end - pos) : BUF;
	do
		n = pread(c->in, buf, want, pos);
	while (n < 0 && errno == EINTR);
	if (n < 0)
		return -errno;
	if (n) /* in order: one reader, slot after slot */
		ferry__hash_update(c->h, buf, (size_t)n);
	return n;
}

/* Reads slot by slot until the end, an error, or stop. */
static void *reader(void *arg)
{
	struct ring *r = arg;
	int64_t pos = r->c->off, synced = r->c->off;
	int64_t data = pos, data_end = r->holey ? pos : r->c->end;

	for (int64_t k = 0; pos < r->c->end; k++) {
		pthread_mutex_lock(&r->mu);
		if (r->filled - r->drained == NBUF) {
			r->reader_waits = 1;
			while (!r->stop && r->reader_waits)
				pthread_cond_wait(&r->cv, &r->mu);
		}
		int stop = r->stop;
		int64_t written = r->written;
		pthread_mutex_unlock(&r->mu);
		if (stop)
			break;
		if (written - synced >= SLICE) {
			sync_file_range(r->c->out, synced, written - synced, SYNC_FILE_RANGE_WRITE);
			synced = written;
		}
		unsigned char hole;
		ssize_t n = read_slot(r, r->buf[k % NBUF], pos, &data, &data_end, &hole);
		int e = n < 0 ? (int)-n : n == 0 ? ENODATA : 0;
		pthread_mutex_lock(&r->mu);
		r->len[k % NBUF] = e ? -1 : n;
		r->hole[k % NBUF] = hole;
		if (e)
			r->err = e;
		r->filled++;
		if (r->writer_waits) {
			r->writer_waits = 0;
			pthread_cond_broadcast(&r->cv);
		}
		pthread_mutex_unlock(&r->mu);
		if (e)
			break;
		pos += n;
	}
	return NULL;
}

static int write_all(int fd, const char *p, size_t len, int64_t off)
{
	while (len) {
		ssize_t n = pwrite(fd, p, len, off);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return errno;
		p += n;
		len -= (size_t)n;
		off += n;
	}
	return 0;
}

/* Hashes and writes what the reader fills, in order; the error, or 0. */
static int drain(struct ring *r)
{
	const struct ferry__copy *c = r->c;
	int64_t pos = c->off, told = c->off;
	int e = 0;

	for (int64_t k = 0; !e && pos < c->end; k++) {
		pthread_mutex_lock(&r->mu);
		while (r->filled == k) {
			r->writer_waits = 1;
			pthread_cond_wait(&r->cv, &r->mu);
		}
		ssize_t n = r->len[k % NBUF];
		int hole = r->hole[k % NBUF];
		e = n < 0 ? r->err : 0;
		pthread_mutex_unlock(&r->mu);
		if (!e) {
			if (!hole)
				e = write_all(c->out, r->buf[k % NBUF], (size_t)n, pos);
			pos += n;
		}
		pthread_mutex_lock(&r->mu);
		r->written = pos;
		r->drained++;
		if (r->reader_waits && (e || r->filled - r->drained <= LOW_WATER)) {
			r->reader_waits = 0;
			pthread_cond_broadcast(&r->cv);
		}
		pthread_mutex_unlock(&r->mu);
		if (e)
			break;
		if (c->progress && (pos - told >= (int64_t)c->step || pos == c->end)) {
			c->progress(c->arg, pos);
			told = pos;
		}
	}
	return e;
}

/* The reader blocks every signal: the caller's signals are for its own threads. */
static int start_reader(pthread_t *th, struct ring *r)
{
	sigset_t all, old;
	int e;

	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	e = pthread_create(th, NULL, reader, r);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	return e;
}

/* Makes out end at end at least: a hole at the end of the range is not written. */
static int extend(int out, int64_t end)
{
	struct stat st;

	if (fstat(out, &st) < 0)
		return errno;
	if (st.st_size < end && ftruncate(out, end) < 0)
		return errno;
	return 0;
}

/*
 * A range that fits one buffer goes in one read and one write (one per
 * data extent of a sparse source), without the reader thread or the ring:
 * a tree of thousands of small files would otherwise start a thread and
 * allocate 8 MiB per file.
 */
static int copy_small(const struct ferry__copy *c, int holey)
{
	size_t len = (size_t)(c->end - c->off), got = 0;
	char *buf = malloc(len);
	int e = buf ? 0 : ENOMEM;

	while (!e && got < len) {
		ssize_t n = pread(c->in, buf + got, len - got, c->off + (off_t)got);
		if (n < 0 && errno == EINTR)
			continue;
		e = n < 0 ? errno : n == 0 ? ENODATA : 0;
		got += n > 0 ? (size_t)n : 0;
	}
	if (!e) /* holes read as zeros, as they are hashed */
		ferry__hash_update(c->h, buf, len);
	if (!e && !holey)
		e = write_all(c->out, buf, len, c->off);
	for (int64_t pos = c->off, d, de; !e && holey && pos < c->end; pos = de) {
		ferry__next_data(c->in, pos, c->end, &d, &de);
		e = write_all(c->out, buf + (d - c->off), (size_t)(de - d), d);
	}
	if (!e && holey)
		e = extend(c->out, c->end);
	free(buf);
	if (!e && c->progress)
		c->progress(c->arg, c->end);
	return e;
}

int ferry__copy_hashed(const struct ferry__copy *c)
{
	struct ring r = {.c = c, .mu = PTHREAD_MUTEX_INITIALIZER, .cv = PTHREAD_COND_INITIALIZER};
	struct stat st;
	pthread_t th;
	int e = 0;

	if (c->off >= c->end)
		return 0;
	if (fstat(c->in, &st) < 0)
		return errno;
	r.holey = ferry__holey(&st);
	if (c->end - c->off <= (int64_t)BUF)
		return copy_small(c, r.holey);
	if (!r.holey) /* a sparse copy takes the blocks of its data only */
		ferry__preallocate(c->out, c->off, c->end - c->off);
	for (int i = 0; i < NBUF; i++)
		if (!(r.buf[i] = malloc(BUF)))
			e = ENOMEM;
	if (!e && !(e = start_reader(&th, &r))) {
		e = drain(&r);
		pthread_mutex_lock(&r.mu);
		r.stop = 1;
		pthread_cond_broadcast(&r.cv);
		pthread_mutex_unlock(&r.mu);
		pthread_join(th, NULL);
	}
	if (!e && r.holey)
		e = extend(c->out, c->end);
	for (int i = 0; i < NBUF; i++)
		free(r.buf[i]);
	pthread_mutex_destroy(&r.mu);
	pthread_cond_destroy(&r.cv);
	return e;
}
