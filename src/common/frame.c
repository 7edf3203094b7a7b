/* frame.c - a connection's input cut into frames (frame.h). */
#include "frame.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ferry.h"
#include "proto.h"
#include "util.h"

unsigned char *ferry__reader_space(struct ferry_reader *r, size_t want)
{
	if (r->buf && r->cap - r->end >= want)
		return r->buf + r->end;
	/*
	 * Consumed bytes are reclaimed only here, when room is short: taking
	 * a frame moves nothing, and what is left of a read is moved once.
	 */
	if (r->start) {
		memmove(r->buf, r->buf + r->start, r->end - r->start);
		r->end -= r->start;
		r->start = 0;
	}
	if (want > SIZE_MAX - r->end || ferry__reserve(&r->buf, &r->cap, r->end + want))
		return NULL;
	return r->buf + r->end;
}

void ferry__reader_added(struct ferry_reader *r, size_t n)
{
	r->end += n;
}

int ferry__reader_append(struct ferry_reader *r, const void *p, size_t n)
{
	unsigned char *to = ferry__reader_space(r, n);

	if (!to)
		return -1;
	if (n)
		memcpy(to, p, n);
	r->end += n;
	return 0;
}

const unsigned char *ferry__reader_data(const struct ferry_reader *r)
{
	return r->buf ? r->buf + r->start : NULL;
}

size_t ferry__reader_pending(const struct ferry_reader *r)
{
	return r->end - r->start;
}

size_t ferry__reader_missing(const struct ferry_reader *r)
{
	size_t have = r->end - r->start, len;
	struct ferry_frame_hdr h;
	const char *why;

	if (have < FERRY_FRAME_HDR)
		return FERRY_FRAME_HDR - have;
	if (ferry__hdr_decode(r->buf + r->start, &h, &why))
		return 0;
	len = FERRY_FRAME_HDR + (size_t)h.body_len;
	return len > have ? len - have : 0;
}

int ferry__reader_next(struct ferry_reader *r, int type, struct ferry_frame *f, char *err,
		       size_t errlen)
{
	size_t have = r->end - r->start;
	struct ferry_frame_hdr h;
	const char *why;

	if (have < FERRY_FRAME_HDR)
		return 0;
	const unsigned char *p = r->buf + r->start;
	if (ferry__hdr_decode(p, &h, &why)) {
		snprintf(err, errlen, "%s", why);
		return FERRY_EPROTO;
	}
	/* refused before the body comes: a peer of the wrong kind may send a lot */
	if (type && h.type != type) {
		snprintf(err, errlen, "expected a %s frame",
			 type == FERRY_FRAME_REQUEST ? "request" : "reply");
		return FERRY_EPROTO;
	}
	if (have - FERRY_FRAME_HDR < h.body_len)
		return 0;
	/* the header bounded body_len, so neither the length nor the parse is unbounded */
	f->len = FERRY_FRAME_HDR + (size_t)h.body_len;
	f->bin = p + FERRY_FRAME_HDR + h.json_len;
	f->binlen = h.body_len - h.json_len;
	f->json = ferry__json_parse((const char *)p + FERRY_FRAME_HDR, h.json_len, err, errlen);
	return 1;
}

void ferry__reader_consume(struct ferry_reader *r, size_t n)
{
	r->start += n;
	/* an empty buffer starts over at its beginning, which costs no move */
	if (r->start >= r->end)
		r->start = r->end = 0;
}

void ferry__reader_reset(struct ferry_reader *r)
{
	r->start = r->end = 0;
}

void ferry__reader_free(struct ferry_reader *r)
{
	free(r->buf);
	*r = (struct ferry_reader){0};
}
