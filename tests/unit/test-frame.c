/*
 * test-frame.c - the frame reader of src/common/frame.c, which the
 * engine's server, libferry and the job runner's channel cut their input
 * with: frames split at every byte, several in one read, bad headers,
 * lengths at and over the limit, bad JSON parts (the stream goes on after
 * them), and the binary part left where it was read.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "ferry.h"
#include "frame.h"
#include "proto.h"
#include "unit.h"
#include "util.h"

#define LIT(s) s, sizeof(s) - 1 /* a literal and its length, NUL bytes included */

/* The frames of the stream every split is tried on, in order. */
static const struct stream_frame {
	uint16_t type;
	const char *json; /* compact, as jansson writes it */
	const char *bin;
	size_t binlen;
} stream[] = {
    {FERRY_FRAME_REQUEST, "{\"op\":\"hello\",\"version\":1}", NULL, 0},
    {FERRY_FRAME_REQUEST, "{\"op\":\"put\"}", LIT("\0bin\xff\n data")},
    {FERRY_FRAME_REQUEST, "{}", NULL, 0},
    {FERRY_FRAME_REQUEST, "{\"op\":\"ping\"}", LIT("x")},
};
#define NSTREAM FERRY_ARRAY_SIZE(stream)

static unsigned char *wire;	       /* the frames of stream[], one after the other */
static size_t wire_len, ends[NSTREAM]; /* where each frame ends in wire */

static int build_wire(void)
{
	for (size_t i = 0; i < NSTREAM; i++) {
		json_error_t je;
		json_t *o = json_loads(stream[i].json, 0, &je);
		unsigned char *f = NULL;
		size_t fl = 0;

		if (!CHECK(o != NULL) ||
		    !CHECK_INT(ferry__frame_build(stream[i].type, o, stream[i].bin,
						  stream[i].binlen, &f, &fl),
			       ==, 0)) {
			json_decref(o);
			return -1;
		}
		json_decref(o);
		unsigned char *nw = realloc(wire, wire_len + fl);
		if (!CHECK(nw != NULL)) {
			free(f);
			return -1;
		}
		wire = nw;
		memcpy(wire + wire_len, f, fl);
		wire_len += fl;
		ends[i] = wire_len;
		free(f);
	}
	return 0;
}

/* f is frame i of stream[]: its JSON part, its binary part. */
static void check_is(const struct ferry_frame *f, size_t i)
{
	char *js = f->json ? json_dumps(f->json, JSON_COMPACT) : NULL;

	CHECK_STR(js, stream[i].json);
	CHECK_MEM(f->bin, f->binlen, stream[i].bin, stream[i].binlen);
	CHECK_UINT(f->len, ==, ends[i] - (i ? ends[i - 1] : 0));
	free(js);
}

/*
 * Takes what frames r holds, checking each against stream[] from *next on;
 * checks too that an incomplete frame lacks exactly what missing says,
 * given that fed bytes of wire were appended.
 */
static void take_all(struct ferry_reader *r, size_t *next, size_t fed)
{
	struct ferry_frame f;
	char err[200] = "";
	int rc;

	while ((rc = ferry__reader_next(r, FERRY_FRAME_REQUEST, &f, err, sizeof(err))) == 1) {
		if (!CHECK(*next < NSTREAM)) {
			json_decref(f.json);
			return;
		}
		check_is(&f, (*next)++);
		json_decref(f.json);
		ferry__reader_consume(r, f.len);
	}
	CHECK_INT(rc, ==, 0);
	CHECK_STR(err, "");
	if (*next == NSTREAM) {
		CHECK_UINT(ferry__reader_pending(r), ==, 0);
		return;
	}
	/* the header first, then the body: never a byte of the frame after */
	size_t start = *next ? ends[*next - 1] : 0, have = fed - start;
	size_t want = have < FERRY_FRAME_HDR ? FERRY_FRAME_HDR - have : ends[*next] - fed;
	CHECK_UINT(ferry__reader_pending(r), ==, have);
	CHECK_UINT(ferry__reader_missing(r), ==, want);
}

static void check_split_everywhere(void)
{
	for (size_t k = 0; k <= wire_len; k++) {
		struct ferry_reader r = {0};
		size_t next = 0;

		unit_case("split in two reads at byte %zu of %zu", k, wire_len);
		CHECK_INT(ferry__reader_append(&r, wire, k), ==, 0);
		take_all(&r, &next, k);
		CHECK_INT(ferry__reader_append(&r, wire + k, wire_len - k), ==, 0);
		take_all(&r, &next, wire_len);
		CHECK_UINT(next, ==, NSTREAM);
		ferry__reader_free(&r);
	}
}

static void check_byte_by_byte(void)
{
	struct ferry_reader r = {0};
	size_t next = 0;

	unit_case("one byte a read");
	for (size_t k = 0; k < wire_len; k++) {
		unsigned char *p = ferry__reader_space(&r, 1);
		if (!CHECK(p != NULL))
			break;
		*p = wire[k];
		ferry__reader_added(&r, 1);
		take_all(&r, &next, k + 1);
	}
	CHECK_UINT(next, ==, NSTREAM);
	ferry__reader_free(&r);
}

static void check_two_in_one_read(void)
{
	struct ferry_reader r = {0};
	struct ferry_frame f, again;
	char err[200] = "";

	unit_case("two frames in one read");
	CHECK_INT(ferry__reader_append(&r, wire, ends[1]), ==, 0);
	CHECK_UINT(ferry__reader_missing(&r), ==, 0);
	if (!CHECK_INT(ferry__reader_next(&r, FERRY_FRAME_REQUEST, &f, err, sizeof(err)), ==, 1))
		goto out;
	check_is(&f, 0);
	/* not consumed: taken again, the same frame */
	if (CHECK_INT(ferry__reader_next(&r, FERRY_FRAME_REQUEST, &again, err, sizeof(err)), ==,
		      1)) {
		check_is(&again, 0);
		json_decref(again.json);
	}
	json_decref(f.json);
	ferry__reader_consume(&r, f.len);
	CHECK_UINT(ferry__reader_missing(&r), ==, 0);
	if (!CHECK_INT(ferry__reader_next(&r, FERRY_FRAME_REQUEST, &f, err, sizeof(err)), ==, 1))
		goto out;
	check_is(&f, 1);
	json_decref(f.json);
	ferry__reader_consume(&r, f.len);

	unit_case("the binary part stays where it was read after consume");
	CHECK_UINT(ferry__reader_pending(&r), ==, 0);
	CHECK_MEM(f.bin, f.binlen, stream[1].bin, stream[1].binlen);
	CHECK_UINT(ferry__reader_missing(&r), ==, FERRY_FRAME_HDR);
	CHECK_INT(ferry__reader_next(&r, FERRY_FRAME_REQUEST, &f, err, sizeof(err)), ==, 0);
	CHECK_STR(err, "");
out:
	ferry__reader_free(&r);
}

static const struct bad_hdr_case {
	const char *name, *magic;
	uint16_t version, type;
	uint32_t body, json;
	int want_type;	 /* the type asked for */
	const char *why; /* all of it: the server sends it, "; closing the connection" added */
} bad_hdr_cases[] = {
    {"bad magic", "GET ", 1, 1, 2, 2, 0, "bad frame magic (not a ferry peer?)"},
    {"version 2", "FRY1", 2, 1, 2, 2, 0, "unsupported frame version"},
    {"type 3", "FRY1", 1, 3, 2, 2, 0, "unknown frame type"},
    {"body one over the limit", "FRY1", 1, 1, FERRY_FRAME_MAX + 1, 2, 0,
     "frame larger than the 16 MiB limit"},
    {"body 4 GiB - 1", "FRY1", 1, 2, UINT32_MAX, 0, 0, "frame larger than the 16 MiB limit"},
    {"json longer than the body", "FRY1", 1, 1, 2, 3, 0, "json length larger than the body"},
    {"a reply where requests come", "FRY1", 1, 2, 2, 2, FERRY_FRAME_REQUEST,
     "expected a request frame"},
    {"a request where replies come", "FRY1", 1, 1, 2, 2, FERRY_FRAME_REPLY,
     "expected a reply frame"},
};

/*
 * A bad header is refused once it is whole, and only after the good frame
 * before it (a request, so not where replies are wanted).
 */
static void check_bad_hdr(const struct bad_hdr_case *c)
{
	struct ferry_reader r = {0};
	struct ferry_frame f;
	unsigned char h[FERRY_FRAME_HDR];
	char err[200] = "";
	int lead = c->want_type != FERRY_FRAME_REPLY;

	unit_case("bad header: %s", c->name);
	unit_raw_hdr(h, c->magic, c->version, c->type, c->body, c->json);
	if (lead)
		CHECK_INT(ferry__reader_append(&r, wire + ends[1], ends[2] - ends[1]), ==, 0);
	CHECK_INT(ferry__reader_append(&r, h, sizeof(h) - 1), ==, 0);
	if (lead && CHECK_INT(ferry__reader_next(&r, c->want_type, &f, err, sizeof(err)), ==, 1)) {
		check_is(&f, 2);
		json_decref(f.json);
		ferry__reader_consume(&r, f.len);
	}
	CHECK_INT(ferry__reader_next(&r, c->want_type, &f, err, sizeof(err)), ==, 0);
	CHECK_INT(ferry__reader_append(&r, h + sizeof(h) - 1, 1), ==, 0);
	CHECK_INT(ferry__reader_next(&r, c->want_type, &f, err, sizeof(err)), ==, FERRY_EPROTO);
	CHECK_STR(err, c->why);
	if (!c->want_type)
		CHECK_UINT(ferry__reader_missing(&r), ==, 0); /* nothing more is worth reading */
	ferry__reader_reset(&r);
	CHECK_UINT(ferry__reader_pending(&r), ==, 0);
	ferry__reader_free(&r);
}

/* The largest frame there may be comes through; its header came alone first. */
static void check_at_the_limit(void)
{
	struct ferry_reader r = {0};
	struct ferry_frame f;
	unsigned char h[FERRY_FRAME_HDR];
	char err[200] = "";
	unsigned char *p;

	unit_case("body exactly at the limit");
	unit_raw_hdr(h, "FRY1", 1, FERRY_FRAME_REPLY, FERRY_FRAME_MAX, 2);
	CHECK_INT(ferry__reader_append(&r, h, sizeof(h)), ==, 0);
	CHECK_INT(ferry__reader_next(&r, FERRY_FRAME_REPLY, &f, err, sizeof(err)), ==, 0);
	CHECK_UINT(ferry__reader_missing(&r), ==, FERRY_FRAME_MAX);
	CHECK_INT(ferry__reader_append(&r, "{}", 2), ==, 0);
	CHECK_UINT(ferry__reader_missing(&r), ==, FERRY_FRAME_MAX - 2);
	p = ferry__reader_space(&r, FERRY_FRAME_MAX - 2);
	if (!CHECK(p != NULL))
		goto out;
	memset(p, 0xab, FERRY_FRAME_MAX - 2);
	ferry__reader_added(&r, FERRY_FRAME_MAX - 2);
	CHECK_UINT(ferry__reader_missing(&r), ==, 0);
	if (CHECK_INT(ferry__reader_next(&r, FERRY_FRAME_REPLY, &f, err, sizeof(err)), ==, 1)) {
		CHECK(f.json && json_object_size(f.json) == 0);
		CHECK_UINT(f.binlen, ==, FERRY_FRAME_MAX - 2);
		CHECK(f.bin == p); /* where it was read: no copy */
		CHECK_UINT(f.bin[0], ==, 0xab);
		CHECK_UINT(f.bin[f.binlen - 1], ==, 0xab);
		CHECK_UINT(f.len, ==, FERRY_FRAME_HDR + FERRY_FRAME_MAX);
		json_decref(f.json);
	}

	unit_case("room that would wrap the size");
	CHECK(ferry__reader_space(&r, SIZE_MAX) == NULL);
	CHECK(ferry__reader_space(&r, SIZE_MAX - ferry__reader_pending(&r) + 1) == NULL);
	CHECK_UINT(ferry__reader_pending(&r), ==, FERRY_FRAME_HDR + FERRY_FRAME_MAX);
out:
	ferry__reader_free(&r);
	CHECK(r.buf == NULL && ferry__reader_pending(&r) == 0);
}

static const struct bad_json_case {
	const char *name, *json;
	size_t len;
	const char *err; /* a part of the message */
} bad_json_cases[] = {
    {"not json", LIT("{op: ping}"), "invalid json at byte"},
    {"duplicate key", LIT("{\"op\":\"ping\",\"op\":\"ping\"}"), "duplicate"},
    {"an array", LIT("[1]"), "request is not a json object"},
    {"no json part", LIT(""), "invalid json at byte"},
    {"NUL in a string", LIT("{\"op\":\"p\0ng\"}"), "invalid json at byte"},
};

/* A frame whose JSON is bad is taken (the stream is fine); the next comes after it. */
static void check_bad_json(const struct bad_json_case *c)
{
	struct ferry_reader r = {0};
	struct ferry_frame f;
	unsigned char h[FERRY_FRAME_HDR];
	char err[200] = "";

	unit_case("bad json: %s", c->name);
	unit_raw_hdr(h, "FRY1", 1, FERRY_FRAME_REQUEST, (uint32_t)c->len + 3, (uint32_t)c->len);
	CHECK_INT(ferry__reader_append(&r, h, sizeof(h)), ==, 0);
	CHECK_INT(ferry__reader_append(&r, c->json, c->len), ==, 0);
	CHECK_INT(ferry__reader_append(&r, "bin", 3), ==, 0);
	CHECK_INT(ferry__reader_append(&r, wire, ends[0]), ==, 0);
	if (CHECK_INT(ferry__reader_next(&r, FERRY_FRAME_REQUEST, &f, err, sizeof(err)), ==, 1)) {
		CHECK(f.json == NULL);
		CHECK_CONTAINS(err, c->err);
		CHECK_MEM(f.bin, f.binlen, "bin", 3);
		CHECK_UINT(f.len, ==, FERRY_FRAME_HDR + c->len + 3);
		ferry__reader_consume(&r, f.len);
	}
	if (CHECK_INT(ferry__reader_next(&r, FERRY_FRAME_REQUEST, &f, err, sizeof(err)), ==, 1)) {
		check_is(&f, 0);
		json_decref(f.json);
		ferry__reader_consume(&r, f.len);
	}
	CHECK_UINT(ferry__reader_pending(&r), ==, 0);
	ferry__reader_free(&r);
}

static void check_either_type(void)
{
	struct ferry_reader r = {0};
	struct ferry_frame f;
	unsigned char h[FERRY_FRAME_HDR];
	char err[200] = "";

	/* the runner's channel: both ends send request frames, replies would do too */
	for (uint16_t type = FERRY_FRAME_REQUEST; type <= FERRY_FRAME_REPLY; type++) {
		unit_case("type 0 takes frames of type %u", type);
		unit_raw_hdr(h, "FRY1", 1, type, 2, 2);
		CHECK_INT(ferry__reader_append(&r, h, sizeof(h)), ==, 0);
		CHECK_INT(ferry__reader_append(&r, "{}", 2), ==, 0);
		if (CHECK_INT(ferry__reader_next(&r, 0, &f, err, sizeof(err)), ==, 1)) {
			CHECK(f.json != NULL);
			CHECK_UINT(f.binlen, ==, 0);
			json_decref(f.json);
			ferry__reader_consume(&r, f.len);
		}
	}
	ferry__reader_free(&r);
}

static void check_empty(void)
{
	struct ferry_reader r = {0};
	struct ferry_frame f;
	char err[8] = "";

	unit_case("an empty reader");
	CHECK_UINT(ferry__reader_pending(&r), ==, 0);
	CHECK_UINT(ferry__reader_missing(&r), ==, FERRY_FRAME_HDR);
	CHECK(ferry__reader_data(&r) == NULL);
	CHECK_INT(ferry__reader_next(&r, FERRY_FRAME_REPLY, &f, err, sizeof(err)), ==, 0);
	ferry__reader_consume(&r, 0);
	ferry__reader_reset(&r);
	ferry__reader_free(&r);
	CHECK(r.buf == NULL);
	CHECK_INT(ferry__reader_append(&r, "", 0), ==, 0);
	CHECK(ferry__reader_space(&r, 0) != NULL);
	ferry__reader_free(&r);
}

int main(void)
{
	unit_case("the stream of frames");
	if (build_wire())
		return unit_done("test-frame");
	check_split_everywhere();
	check_byte_by_byte();
	check_two_in_one_read();
	for (size_t i = 0; i < FERRY_ARRAY_SIZE(bad_hdr_cases); i++)
		check_bad_hdr(&bad_hdr_cases[i]);
	check_at_the_limit();
	for (size_t i = 0; i < FERRY_ARRAY_SIZE(bad_json_cases); i++)
		check_bad_json(&bad_json_cases[i]);
	check_either_type();
	check_empty();
	free(wire);
	return unit_done("test-frame");
}
