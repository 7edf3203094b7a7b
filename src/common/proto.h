/* proto.h - the frame codec shared by the library and the engine. */
#ifndef FERRY_PROTO_H
#define FERRY_PROTO_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

/*
 * Two numbers: the frame layout (in every frame's header) and the requests
 * and replies (in hello). Version 2 of the requests answers `jobs` in
 * pages and takes selections; an engine and a client that differ refuse
 * each other in hello with a message naming both, instead of one
 * misreading a paged listing as a whole one.
 */
#define FERRY_FRAME_VERSION 1
#define FERRY_PROTO_VERSION 3
#define FERRY_FRAME_HDR	    16
#define FERRY_MAGIC	    "FRY1" /* the first 4 bytes of every frame */
#define FERRY_FRAME_MAX	    ((16u << 20) + (64u << 10))
#define FERRY_READ_MAX	    (1u << 20)

enum { FERRY_FRAME_REQUEST = 1, FERRY_FRAME_REPLY = 2 };

/*
 * Limits of a job spec's numbers and strings (docs/protocol.md, "Job
 * spec"): the engine checks them (spec.c), and the library before it
 * sends anything, so that a bad spec of a big submit stops it before
 * its first batch (src/lib/submit.c).
 */
#define FERRY_SPEC_DISPOSAL_MAX 87600
#define FERRY_SPEC_CPUS_MAX	(1 << 20)
#define FERRY_SPEC_MEMORY_MAX	((int64_t)1 << 30)
#define FERRY_SPEC_WALLTIME_MAX (366 * 86400)
#define FERRY_SPEC_NAME_MAX	1024
#define FERRY_SPEC_KEY_MAX	128

struct ferry_frame_hdr {
	uint16_t version;
	uint16_t type;
	uint32_t body_len;
	uint32_t json_len;
};

/* Encodes a header into 16 bytes. */
void ferry__hdr_encode(unsigned char *out, uint16_t type, uint32_t body_len, uint32_t json_len);

/*
 * Decodes and checks a header. Returns 0, or a negative FERRY_E* code with
 * a static reason in *why (bad magic, unsupported version, bad type,
 * oversized body, json_len > body_len).
 */
int ferry__hdr_decode(const unsigned char *in, struct ferry_frame_hdr *h, const char **why);

/*
 * Parses the JSON part of a body into an object. Returns NULL with a
 * message in err (size errlen) when it is not one valid JSON object.
 */
json_t *ferry__json_parse(const char *buf, size_t len, char *err, size_t errlen);

/*
 * Serialises obj (compact) into a malloc'd frame with bin appended;
 * *out and *outlen receive it. 0 or FERRY_ENOMEM / FERRY_EINVAL (too large).
 */
int ferry__frame_build(uint16_t type, const json_t *obj, const void *bin, size_t binlen,
		       unsigned char **out, size_t *outlen);

/*
 * The header and JSON of a frame whose binary part, binlen bytes, is sent
 * from where it is, right after (writev): as ferry__frame_build otherwise.
 */
int ferry__frame_head(uint16_t type, const json_t *obj, size_t binlen, unsigned char **out,
		      size_t *outlen);

/* Error code <-> short name ("EINVAL"). */
const char *ferry__error_name(int code);
int ferry__error_from_name(const char *name);

#endif
