/*
 * frame.h - a connection's input, cut into frames (docs/protocol.md).
 *
 * The one reader of frames that the engine's server, libferry and the
 * local backend's runner channel share. How the bytes arrive stays each
 * one's own (the server's recvmsg that keeps passed descriptors, the
 * client's blocking reads with a silence timeout, the runner's
 * non-blocking recv); where a frame ends and whether it is well formed is
 * decided here, once:
 *
 *	p = ferry__reader_space(&r, want);	room to read into
 *	n = read(fd, p, want);			the caller's own way of reading
 *	ferry__reader_added(&r, n);		what was read
 *	while (ferry__reader_next(&r, type, &f, err, sizeof(err)) > 0) {
 *		... f.json, f.bin ...
 *		json_decref(f.json);
 *		ferry__reader_consume(&r, f.len);
 *	}
 *
 * A zeroed struct is an empty reader.
 */
#ifndef FERRY_FRAME_H
#define FERRY_FRAME_H

#include <jansson.h>
#include <stddef.h>

struct ferry_reader {
	unsigned char *buf;
	size_t start; /* the first byte not consumed */
	size_t end;   /* one past the last byte read */
	size_t cap;
};

/* One complete frame, as ferry__reader_next() finds it in the buffer. */
struct ferry_frame {
	json_t *json; /* the JSON part, an object (the caller's); NULL when it is not one */
	/*
	 * The binary part, where it was read: never copied, so a transfer's
	 * chunk is read into memory once. It stays there after the frame is
	 * consumed, until the next ferry__reader_space(), reset or free.
	 */
	const unsigned char *bin;
	size_t binlen;
	size_t len; /* the whole frame, header included: what to consume */
};

/*
 * Room for want more bytes after those read; returns where to read them
 * into, or NULL without memory. May move the bytes not consumed to the
 * start of the buffer, so a frame's bin is not to be used after it.
 */
unsigned char *ferry__reader_space(struct ferry_reader *r, size_t want);

/* Appends n bytes that were read into the space ferry__reader_space() gave. */
void ferry__reader_added(struct ferry_reader *r, size_t n);

/* Appends n bytes from p (space and a copy): 0, or -1 without memory. */
int ferry__reader_append(struct ferry_reader *r, const void *p, size_t n);

/*
 * How many bytes the next frame still lacks: its header's first, then its
 * body. 0 when it is complete, or when ferry__hdr_decode() refuses its
 * header (next says why). A reader that blocks reads exactly this, never
 * into the frame after, which may not have been sent yet.
 */
size_t ferry__reader_missing(const struct ferry_reader *r);

/*
 * Takes the next frame. type is the frame type every frame must have
 * (FERRY_FRAME_REQUEST or _REPLY), or 0 for either.
 *  - 1: f is the frame. When its JSON part is not one JSON object
 *    (duplicate keys refused), f->json is NULL and err says why; the
 *    stream is still good.
 *  - 0: the frame is not complete yet; read ferry__reader_missing() more.
 *  - FERRY_EPROTO: its header is bad (magic, version, type, lengths) and
 *    err says why, without a final period: nothing after it can be
 *    trusted, so the caller ends the connection.
 * The frame stays in the buffer until ferry__reader_consume(r, f->len);
 * taking it again parses it again.
 */
int ferry__reader_next(struct ferry_reader *r, int type, struct ferry_frame *f, char *err,
		       size_t errlen);

/* Drops the first n bytes (a frame taken): no byte moves. */
void ferry__reader_consume(struct ferry_reader *r, size_t n);

/* The bytes read and not consumed yet: ferry__reader_pending() of them. */
const unsigned char *ferry__reader_data(const struct ferry_reader *r);
size_t ferry__reader_pending(const struct ferry_reader *r);

/* Drops every byte (the connection ended); the buffer is kept for the next. */
void ferry__reader_reset(struct ferry_reader *r);

/* Frees the buffer; r is an empty reader again. */
void ferry__reader_free(struct ferry_reader *r);

#endif
