/*
 * jbytes.h - JSON strings that carry any bytes.
 *
 * Linux names, arguments and environment values are bytes, and JSON
 * strings are Unicode. Inside ferry a json_t string holds the bytes
 * themselves (made with ferry__json_bytes, never checked for UTF-8); on
 * the wire and in the database each byte that is no part of valid UTF-8
 * is written as a NUL character followed by two hex digits ("\u0000ff"
 * for 0xff). No Linux string holds a NUL byte, so the escape never meets
 * a real one, and valid UTF-8 is written unchanged (docs/protocol.md,
 * "Bytes").
 */
#ifndef FERRY_JBYTES_H
#define FERRY_JBYTES_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

/* A JSON string of the bytes of s (not checked for UTF-8); null for NULL. */
json_t *ferry__json_bytes(const char *s);

/* A NULL-terminated vector (NULL: none) as an array of such strings. */
json_t *ferry__json_bytesv(const char *const *v);

/*
 * Serialises v as json_dumps(v, flags) does, escaping the bytes of its
 * strings that are no UTF-8. malloc'd; NULL when out of memory.
 */
char *ferry__json_dumps(const json_t *v, size_t flags);

/*
 * The same compact text appended to t, and a NUL after it (not counted
 * in t->len): 0, or -1 (t->bad set). What writes many texts one after
 * the other (a bulk submit's specs) reuses one buffer.
 */
struct ferry_jtext;
int ferry__jtext_json(struct ferry_jtext *t, const json_t *v);

/* The same, written to f: 0, or -1 when a write fails (errno set). */
int ferry__json_dumpf(const json_t *v, FILE *f, size_t flags);

/*
 * Parses len bytes of JSON with jansson's flags, turning each escape
 * back into its byte. NULL with a message in err (errlen bytes) on
 * invalid JSON and on a NUL that starts no escape.
 */
json_t *ferry__json_loadb(const char *buf, size_t len, size_t flags, char *err, size_t errlen);

/* A stored text (NUL-terminated) parsed as above; NULL when it is bad. */
json_t *ferry__json_loads(const char *text);

/*
 * JSON text written straight, for what is too many to build as json_t
 * (a listing's job objects): each value exactly as ferry__json_dumps()
 * with JSON_COMPACT writes it, so that both forms of a job agree byte
 * for byte. A failed allocation sets bad and later writes do nothing.
 */
struct ferry_jtext {
	char *p;
	size_t len, cap;
	int bad;
};

/* Room for n more bytes at t->p + t->len: 0, or -1 (t->bad set). */
int ferry__jtext_room(struct ferry_jtext *t, size_t n);
/* n bytes as they are (JSON text already); inline, as a job object is many short ones. */
static inline void ferry__jtext_raw(struct ferry_jtext *t, const char *s, size_t n)
{
	if (t->len + n <= t->cap || ferry__jtext_room(t, n) == 0) {
		memcpy(t->p + t->len, s, n);
		t->len += n;
	}
}
/* The n bytes at s as a JSON string, escaped as the protocol says ("Bytes"). */
void ferry__jtext_str(struct ferry_jtext *t, const char *s, size_t n);
/* The NUL-terminated s as above; null for NULL. */
void ferry__jtext_cstr(struct ferry_jtext *t, const char *s);
void ferry__jtext_int(struct ferry_jtext *t, int64_t v);
/* The string "DIR/ID/NAME" (a job's file), as ferry__jtext_str() writes it. */
void ferry__jtext_path(struct ferry_jtext *t, const char *dir, int64_t id, const char *name);
/* A real as jansson writes one ("%.17g", with ".0" when it would read as an integer). */
void ferry__jtext_real(struct ferry_jtext *t, double v);
void ferry__jtext_free(struct ferry_jtext *t);

#endif
