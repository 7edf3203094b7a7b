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
#include <stdio.h>

/* A JSON string of the bytes of s (not checked for UTF-8); null for NULL. */
json_t *ferry__json_bytes(const char *s);

/* A NULL-terminated vector (NULL: none) as an array of such strings. */
json_t *ferry__json_bytesv(const char *const *v);

/*
 * Serialises v as json_dumps(v, flags) does, escaping the bytes of its
 * strings that are no UTF-8. malloc'd; NULL when out of memory.
 */
char *ferry__json_dumps(const json_t *v, size_t flags);

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

#endif
