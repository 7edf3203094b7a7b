/*
 * test-proto.c - the frame codec of src/common/proto.c (docs/protocol.md):
 * the 16-byte header, its checks, the JSON part, frames built whole or
 * head-only, and the error names.
 */
#include <limits.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "ferry.h"
#include "jbytes.h"
#include "proto.h"
#include "unit.h"
#include "util.h"

static void check_encode(void)
{
	static const unsigned char want[FERRY_FRAME_HDR] = {
	    'F', 'R', 'Y', '1', 0, 1, 0, 2, 0x01, 0x02, 0x03, 0x04, 0x0a, 0x0b, 0x0c, 0x0d};
	unsigned char h[FERRY_FRAME_HDR + 1];

	unit_case("encode: bytes on the wire");
	memset(h, 0xee, sizeof(h));
	ferry__hdr_encode(h, FERRY_FRAME_REPLY, 0x01020304, 0x0a0b0c0d);
	CHECK_MEM(h, FERRY_FRAME_HDR, want, FERRY_FRAME_HDR);
	CHECK_UINT(h[FERRY_FRAME_HDR], ==, 0xee); /* nothing written past the header */
	CHECK_MEM(h, 4, FERRY_MAGIC, 4);
}

static const struct decode_ok_case {
	const char *name;
	uint16_t type;
	uint32_t body, json;
} decode_ok_cases[] = {
    {"request, empty body", FERRY_FRAME_REQUEST, 0, 0},
    {"reply, empty body", FERRY_FRAME_REPLY, 0, 0},
    {"json only", FERRY_FRAME_REQUEST, 2, 2},
    {"binary only", FERRY_FRAME_REPLY, 100, 0},
    {"json and binary", FERRY_FRAME_REQUEST, 1000, 10},
    {"every byte of the length fields", FERRY_FRAME_REPLY, 0x00f1e2d3, 0x00a4b5c6},
    {"body at the limit", FERRY_FRAME_REQUEST, FERRY_FRAME_MAX, 1},
    {"json at the limit", FERRY_FRAME_REPLY, FERRY_FRAME_MAX, FERRY_FRAME_MAX},
};

static void check_decode_ok(const struct decode_ok_case *c)
{
	unsigned char buf[FERRY_FRAME_HDR];
	struct ferry_frame_hdr h;
	const char *why = NULL;

	unit_case("decode: %s", c->name);
	ferry__hdr_encode(buf, c->type, c->body, c->json);
	CHECK_INT(ferry__hdr_decode(buf, &h, &why), ==, 0);
	CHECK_UINT(h.version, ==, FERRY_FRAME_VERSION);
	CHECK_UINT(h.type, ==, c->type);
	CHECK_UINT(h.body_len, ==, c->body);
	CHECK_UINT(h.json_len, ==, c->json);
}

static const struct decode_bad_case {
	const char *name, *magic;
	uint16_t version, type;
	uint32_t body, json;
	const char *why;
} decode_bad_cases[] = {
    {"magic: lower case", "fry1", 1, 1, 0, 0, "bad frame magic"},
    {"magic: first byte", "GRY1", 1, 1, 0, 0, "bad frame magic"},
    {"magic: last byte", "FRY2", 1, 1, 0, 0, "bad frame magic"},
    {"magic: NUL bytes", "\0\0\0\0", 1, 1, 0, 0, "bad frame magic"},
    {"magic: an HTTP request", "GET ", 1, 1, 0, 0, "bad frame magic"},
    {"magic: JSON", "{\"op", 1, 1, 0, 0, "bad frame magic"},
    {"magic before version", "FRY0", 9, 1, 0, 0, "bad frame magic"},
    {"version 0", "FRY1", 0, 1, 0, 0, "unsupported frame version"},
    {"version 2", "FRY1", 2, 1, 0, 0, "unsupported frame version"},
    {"version byte-swapped", "FRY1", 0x0100, 1, 0, 0, "unsupported frame version"},
    {"version 0xffff", "FRY1", 0xffff, 1, 0, 0, "unsupported frame version"},
    {"version before type", "FRY1", 2, 9, 0, 0, "unsupported frame version"},
    {"type 0", "FRY1", 1, 0, 0, 0, "unknown frame type"},
    {"type 3", "FRY1", 1, 3, 0, 0, "unknown frame type"},
    {"type byte-swapped", "FRY1", 1, 0x0100, 0, 0, "unknown frame type"},
    {"type 0xffff", "FRY1", 1, 0xffff, 0, 0, "unknown frame type"},
    {"type before length", "FRY1", 1, 7, UINT32_MAX, 0, "unknown frame type"},
    {"body one over the limit", "FRY1", 1, 1, FERRY_FRAME_MAX + 1, 0, "16 MiB"},
    {"body 4 GiB - 1", "FRY1", 1, 2, UINT32_MAX, 0, "16 MiB"},
    {"body with the top bit", "FRY1", 1, 1, 0x80000000u, 0, "16 MiB"},
    {"body over the limit before json", "FRY1", 1, 1, UINT32_MAX, UINT32_MAX, "16 MiB"},
    {"json past an empty body", "FRY1", 1, 1, 0, 1, "json length larger than the body"},
    {"json one past the body", "FRY1", 1, 2, 10, 11, "json length larger than the body"},
    {"json 4 GiB - 1", "FRY1", 1, 1, 10, UINT32_MAX, "json length larger than the body"},
};

static void check_decode_bad(const struct decode_bad_case *c)
{
	unsigned char buf[FERRY_FRAME_HDR];
	struct ferry_frame_hdr h;
	const char *why = NULL;

	unit_case("decode refuses: %s", c->name);
	unit_raw_hdr(buf, c->magic, c->version, c->type, c->body, c->json);
	CHECK_INT(ferry__hdr_decode(buf, &h, &why), ==, FERRY_EPROTO);
	if (CHECK(why != NULL))
		CHECK_CONTAINS(why, c->why);
}

/* The fields of a built frame, its JSON part parsed back. */
static json_t *split_frame(const unsigned char *f, size_t fl, uint16_t type, size_t binlen,
			   size_t *jl)
{
	struct ferry_frame_hdr h;
	const char *why = NULL;
	char err[200] = "";
	json_t *obj;

	*jl = 0;
	if (!CHECK(fl >= FERRY_FRAME_HDR) || !CHECK_INT(ferry__hdr_decode(f, &h, &why), ==, 0))
		return NULL;
	CHECK_UINT(h.type, ==, type);
	CHECK_UINT(h.body_len, ==, fl - FERRY_FRAME_HDR);
	CHECK_UINT(h.body_len - h.json_len, ==, binlen);
	*jl = h.json_len;
	obj = ferry__json_parse((const char *)f + FERRY_FRAME_HDR, h.json_len, err, sizeof(err));
	CHECK_STR(err, "");
	return obj;
}

static const struct build_case {
	const char *name, *json; /* compact, as jansson writes it */
	const char *bin;
	size_t binlen;
} build_cases[] = {
    {"empty object", "{}", NULL, 0},
    {"hello", "{\"op\":\"hello\",\"version\":1}", NULL, 0},
    {"nested", "{\"op\":\"submit\",\"jobs\":[{\"argv\":[\"sh\",\"-c\",\"x\"]}]}", NULL, 0},
    {"utf-8 kept as is", "{\"p\":\"/d/caf\xc3\xa9/\xe6\x97\xa5\xf0\x9f\x98\x80\"}", NULL, 0},
    {"escapes", "{\"s\":\"a\\\"b\\\\c\\nd\\u0001\"}", NULL, 0},
    {"binary part", "{\"op\":\"put\"}", "data", 4},
    {"binary with NUL and high bytes", "{}", "\0\xff\0\x80\n", 5},
    {"binary of one NUL", "{\"n\":0}", "\0", 1},
};

static void check_build(const struct build_case *c)
{
	json_error_t je;
	json_t *in = json_loads(c->json, JSON_REJECT_DUPLICATES, &je), *back;
	unsigned char *f = NULL;
	size_t fl = 0, jl;

	unit_case("build: %s", c->name);
	if (!CHECK(in != NULL))
		return;
	if (CHECK_INT(ferry__frame_build(FERRY_FRAME_REQUEST, in, c->bin, c->binlen, &f, &fl), ==,
		      0)) {
		CHECK_UINT(fl, ==, FERRY_FRAME_HDR + strlen(c->json) + c->binlen);
		back = split_frame(f, fl, FERRY_FRAME_REQUEST, c->binlen, &jl);
		CHECK_MEM(f + FERRY_FRAME_HDR, jl, c->json, strlen(c->json));
		CHECK(back && json_equal(in, back));
		CHECK_MEM(f + FERRY_FRAME_HDR + jl, fl - FERRY_FRAME_HDR - jl, c->bin, c->binlen);
		json_decref(back);
		free(f);
	}

	unit_case("head: %s", c->name);
	f = NULL;
	if (CHECK_INT(ferry__frame_head(FERRY_FRAME_REPLY, in, c->binlen, &f, &fl), ==, 0)) {
		/* the frame without its binary part, whose length the header counts */
		CHECK_UINT(fl, ==, FERRY_FRAME_HDR + strlen(c->json));
		back = split_frame(f, fl + c->binlen, FERRY_FRAME_REPLY, c->binlen, &jl);
		CHECK(back && json_equal(in, back));
		json_decref(back);
		free(f);
	}
	json_decref(in);
}

/* A string value that makes the JSON part exactly len bytes: {"s":"xxx..."}. */
static json_t *object_of_size(size_t len)
{
	char *s = malloc(len);
	json_t *o;

	if (!s)
		return NULL;
	memset(s, 'x', len - 8);
	o = json_pack("{s:s%}", "s", s, len - 8);
	free(s);
	return o;
}

static void check_limits(void)
{
	json_t *small = json_pack("{s:s}", "op", "put"), *big;
	size_t jl = strlen("{\"op\":\"put\"}"), fl = 0;
	char *bin = calloc(1, FERRY_FRAME_MAX);
	unsigned char *f = (unsigned char *)bin; /* must become NULL on refusal */

	if (!CHECK(small && bin))
		goto out;
	unit_case("build: body exactly at the limit");
	if (CHECK_INT(ferry__frame_build(1, small, bin, FERRY_FRAME_MAX - jl, &f, &fl), ==, 0)) {
		CHECK_UINT(fl, ==, FERRY_FRAME_HDR + FERRY_FRAME_MAX);
		free(f);
	}
	unit_case("build: body one byte over the limit");
	CHECK_INT(ferry__frame_build(1, small, bin, FERRY_FRAME_MAX - jl + 1, &f, &fl), ==,
		  FERRY_EINVAL);
	unit_case("build: a binary length that wraps the size");
	CHECK_INT(ferry__frame_build(1, small, bin, SIZE_MAX - jl + 1, &f, &fl), ==, FERRY_EINVAL);
	CHECK_INT(ferry__frame_build(1, small, bin, SIZE_MAX, &f, &fl), ==, FERRY_EINVAL);

	unit_case("head: body exactly at the limit");
	f = NULL;
	if (CHECK_INT(ferry__frame_head(2, small, FERRY_FRAME_MAX - jl, &f, &fl), ==, 0)) {
		CHECK_UINT(fl, ==, FERRY_FRAME_HDR + jl);
		free(f);
	}
	unit_case("head: body one byte over the limit");
	f = (unsigned char *)bin;
	CHECK_INT(ferry__frame_head(2, small, FERRY_FRAME_MAX - jl + 1, &f, &fl), ==, FERRY_EINVAL);
	CHECK(f == NULL);
	unit_case("head: a binary length that wraps the size");
	f = (unsigned char *)bin;
	CHECK_INT(ferry__frame_head(2, small, SIZE_MAX - jl + 1, &f, &fl), ==, FERRY_EINVAL);
	CHECK_INT(ferry__frame_head(2, small, SIZE_MAX, &f, &fl), ==, FERRY_EINVAL);

	unit_case("build: JSON part alone over the limit");
	big = object_of_size(FERRY_FRAME_MAX + 1);
	if (CHECK(big != NULL)) {
		CHECK_INT(ferry__frame_build(1, big, NULL, 0, &f, &fl), ==, FERRY_EINVAL);
		CHECK_INT(ferry__frame_head(1, big, 0, &f, &fl), ==, FERRY_EINVAL);
		json_decref(big);
	}
	unit_case("build: JSON part alone at the limit");
	big = object_of_size(FERRY_FRAME_MAX);
	if (CHECK(big != NULL) && CHECK_INT(ferry__frame_build(1, big, NULL, 0, &f, &fl), ==, 0)) {
		CHECK_UINT(fl, ==, FERRY_FRAME_HDR + FERRY_FRAME_MAX);
		free(f);
	}
	json_decref(big);
out:
	json_decref(small);
	free(bin);
}

#define LIT(s) s, sizeof(s) - 1 /* a literal and its length, NUL bytes included */

static const struct parse_case {
	const char *name, *buf;
	size_t len;
	const char *err; /* NULL: parses into an object; else a part of the message */
} parse_cases[] = {
    {"empty object", LIT("{}"), NULL},
    {"blanks around", LIT(" \n{\"a\":1}\t "), NULL},
    {"nested", LIT("{\"a\":{\"b\":[1,2,{}]}}"), NULL},
    {"utf-8 key and value", LIT("{\"\xc3\xa9\":\"\xe2\x82\xac\"}"), NULL},
    {"len shorter than the text", "{\"a\":1}garbage", 7, NULL},
    {"escaped unicode", LIT("{\"a\":\"\\u00e9\\ud83d\\ude00\"}"), NULL},
    {"empty", LIT(""), "invalid json at byte"},
    {"blanks only", LIT("   "), "invalid json at byte"},
    {"array", LIT("[]"), "not a json object"},
    {"array of an object", LIT("[{}]"), "not a json object"},
    {"number (jansson wants an array or object)", LIT("1"), "invalid json at byte"},
    {"string", LIT("\"s\""), "invalid json at byte"},
    {"null", LIT("null"), "invalid json at byte"},
    {"duplicate key", LIT("{\"a\":1,\"a\":2}"), "invalid json at byte"},
    {"trailing garbage", LIT("{\"a\":1} x"), "invalid json at byte"},
    {"two objects", LIT("{}{}"), "invalid json at byte"},
    {"truncated", LIT("{\"a\":"), "invalid json at byte"},
    {"cut by len", "{\"a\":1}", 6, "invalid json at byte"},
    {"NUL after the object", LIT("{\"a\":1}\0"), "invalid json at byte"},
    {"NUL inside a string", LIT("{\"a\":\"x\0y\"}"), "invalid json at byte"},
    {"escaped NUL", LIT("{\"a\":\"\\u0000\"}"), "not followed by the hex of a byte"},
    {"byte escape", LIT("{\"a\":[\"x\\u0000ffy\", {\"b\":\"\\u000080\"}]}"), NULL},
    {"byte escape in capitals", LIT("{\"a\":\"\\u0000FE\"}"), "not followed by the hex"},
    {"escaped utf-8", LIT("{\"a\":\"\\u0000c3\\u0000a9\"}"), "valid UTF-8 as they stand"},
    {"half of a character escaped", LIT("{\"a\":\"\\u0000c3\xa9\"}"), "invalid json at byte"},
    {"a cut character", LIT("{\"a\":\"\\u0000c3x\"}"), NULL},
    {"escape of an ascii byte", LIT("{\"a\":\"\\u000041\"}"), "not followed by the hex"},
    {"escape of NUL", LIT("{\"a\":\"\\u000000\"}"), "not followed by the hex"},
    {"escape cut short", LIT("{\"a\":\"\\u0000f\"}"), "not followed by the hex"},
    {"escape with no hex", LIT("{\"a\":\"\\u0000zz\"}"), "not followed by the hex"},
    {"escape deep in arrays", LIT("{\"a\":[[[\"\\u0000\"]]]}"), "not followed by the hex"},
    {"invalid utf-8", LIT("{\"a\":\"\xff\"}"), "invalid json at byte"},
    {"overlong utf-8", LIT("{\"a\":\"\xc0\x80\"}"), "invalid json at byte"},
    {"lone surrogate", LIT("{\"a\":\"\\ud800\"}"), "invalid json at byte"},
    {"single quotes", LIT("{'a':1}"), "invalid json at byte"},
    {"trailing comma", LIT("{\"a\":1,}"), "invalid json at byte"},
};

static void check_parse(const struct parse_case *c)
{
	char err[200] = "";
	json_t *o;

	unit_case("json: %s", c->name);
	o = ferry__json_parse(c->buf, c->len, err, sizeof(err));
	if (!c->err) {
		CHECK(o != NULL && json_is_object(o));
		CHECK_STR(err, "");
	} else {
		CHECK(o == NULL);
		CHECK_CONTAINS(err, c->err);
	}
	json_decref(o);
}

static void check_parse_small_err(void)
{
	char err[8];

	unit_case("json: message cut to errlen");
	memset(err, 'z', sizeof(err));
	CHECK(ferry__json_parse("[]", 2, err, sizeof(err)) == NULL);
	CHECK_STR(err, "request");
}

/* Bytes through a dump and a parse come back as they were. */
static void check_bytes_case(const char *what, const char *bytes, const char *wire)
{
	json_t *o = json_pack("{s:o,s:[o]}", "v", ferry__json_bytes(bytes), "a",
			      ferry__json_bytes(bytes)),
	       *back = NULL;
	char *text = o ? ferry__json_dumps(o, JSON_COMPACT | JSON_SORT_KEYS) : NULL, err[200];

	unit_case("bytes: %s", what);
	CHECK(text != NULL);
	if (text && wire)
		CHECK_CONTAINS(text, wire);
	back = text ? ferry__json_parse(text, strlen(text), err, sizeof(err)) : NULL;
	CHECK(back != NULL);
	if (back) {
		json_t *v = json_object_get(back, "v");
		CHECK(json_string_length(v) == strlen(bytes));
		CHECK(!memcmp(json_string_value(v), bytes, strlen(bytes)));
		CHECK_STR(json_string_value(json_array_get(json_object_get(back, "a"), 0)), bytes);
	}
	free(text);
	json_decref(o);
	json_decref(back);
}

static void check_bytes(void)
{
	char one[2] = "", name[32], rnd[64];
	uint32_t x = 12345;

	check_bytes_case("valid utf-8 unchanged", "caf\xc3\xa9 \xf0\x9f\x98\x80", "caf\xc3\xa9 ");
	check_bytes_case("latin-1 name", "r\xe9sum\xe9.nii", "r\\u0000e9sum\\u0000e9.nii");
	check_bytes_case("a cut character", "ab\xc3", "ab\\u0000c3");
	check_bytes_case("overlong form", "\xc0\x80", "\\u0000c0\\u000080");
	check_bytes_case("surrogate", "\xed\xa0\x80", "\\u0000ed\\u0000a0\\u000080");
	check_bytes_case("empty", "", "\"v\":\"\"");
	for (int b = 1; b < 256; b++) {
		one[0] = (char)b;
		snprintf(name, sizeof(name), "byte %02x", b);
		check_bytes_case(name, one, NULL);
	}
	for (int k = 0; k < 200; k++) {
		size_t n = 1 + k % 60;
		for (size_t i = 0; i < n; i++) {
			x = x * 1103515245 + 12345;
			rnd[i] = (char)(1 + (x >> 16) % 255);
		}
		rnd[n] = '\0';
		snprintf(name, sizeof(name), "random %d", k);
		check_bytes_case(name, rnd, NULL);
	}
}

static const struct name_case {
	int code;
	const char *name;
} name_cases[] = {
    {FERRY_OK, "OK"},
    {FERRY_EINVAL, "EINVAL"},
    {FERRY_ENOMEM, "ENOMEM"},
    {FERRY_ENOJOB, "ENOJOB"},
    {FERRY_ECONNECT, "ECONNECT"},
    {FERRY_EPROTO, "EPROTO"},
    {FERRY_ETIMEDOUT, "ETIMEDOUT"},
    {FERRY_ESTATE, "ESTATE"},
    {FERRY_EUNSUPPORTED, "EUNSUPPORTED"},
    {FERRY_ECONFIG, "ECONFIG"},
    {FERRY_EIO, "EIO"},
    {FERRY_EAGAIN, "EAGAIN"},
    {FERRY_EEOF, "EEOF"},
    {FERRY_EPERM, "EPERM"},
    {FERRY_EDISCONNECTED, "EDISCONNECTED"},
    {FERRY_ERESOURCE, "ERESOURCE"},
    {FERRY_EINTERNAL, "EINTERNAL"},
    {FERRY_EAUTH, "EAUTH"},
};

static void check_error_names(void)
{
	static const int unknown[] = {1,     100,	  INT_MAX, FERRY_EAUTH - 1,
				      -1000, INT_MIN + 1, INT_MIN};
	static const char *const bad[] = {"",  "einval",       "EINVAL ", " EINVAL",
					  "E", "FERRY_EINVAL", "EINVALX"};

	for (size_t i = 0; i < FERRY_ARRAY_SIZE(name_cases); i++) {
		unit_case("error name: %s", name_cases[i].name);
		CHECK_STR(ferry__error_name(name_cases[i].code), name_cases[i].name);
		CHECK_INT(ferry__error_from_name(name_cases[i].name), ==, name_cases[i].code);
	}
	for (size_t i = 0; i < FERRY_ARRAY_SIZE(unknown); i++) {
		unit_case("error name of unknown code %d", unknown[i]);
		CHECK_STR(ferry__error_name(unknown[i]), "EINTERNAL");
	}
	for (size_t i = 0; i < FERRY_ARRAY_SIZE(bad); i++) {
		unit_case("error code of unknown name '%s'", bad[i]);
		CHECK_INT(ferry__error_from_name(bad[i]), ==, FERRY_EINTERNAL);
	}
	unit_case("error code of NULL");
	CHECK_INT(ferry__error_from_name(NULL), ==, FERRY_EINTERNAL);
}

int main(void)
{
	check_encode();
	for (size_t i = 0; i < FERRY_ARRAY_SIZE(decode_ok_cases); i++)
		check_decode_ok(&decode_ok_cases[i]);
	for (size_t i = 0; i < FERRY_ARRAY_SIZE(decode_bad_cases); i++)
		check_decode_bad(&decode_bad_cases[i]);
	for (size_t i = 0; i < FERRY_ARRAY_SIZE(build_cases); i++)
		check_build(&build_cases[i]);
	check_limits();
	for (size_t i = 0; i < FERRY_ARRAY_SIZE(parse_cases); i++)
		check_parse(&parse_cases[i]);
	check_parse_small_err();
	check_bytes();
	check_error_names();
	return unit_done("test-proto");
}
