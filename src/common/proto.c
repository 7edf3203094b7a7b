/* proto.c - frame codec: 16-byte header, JSON part, binary part. */
#include "proto.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ferry.h"
#include "jbytes.h"

static const unsigned char magic[4] = {'F', 'R', 'Y', '1'}; /* FERRY_MAGIC */

static void put16(unsigned char *p, uint16_t v)
{
	p[0] = (unsigned char)(v >> 8);
	p[1] = (unsigned char)v;
}

static void put32(unsigned char *p, uint32_t v)
{
	p[0] = (unsigned char)(v >> 24);
	p[1] = (unsigned char)(v >> 16);
	p[2] = (unsigned char)(v >> 8);
	p[3] = (unsigned char)v;
}

static uint16_t get16(const unsigned char *p)
{
	return (uint16_t)((p[0] << 8) | p[1]);
}

static uint32_t get32(const unsigned char *p)
{
	return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | p[3];
}

void ferry__hdr_encode(unsigned char *out, uint16_t type, uint32_t body_len, uint32_t json_len)
{
	memcpy(out, magic, 4);
	put16(out + 4, FERRY_FRAME_VERSION);
	put16(out + 6, type);
	put32(out + 8, body_len);
	put32(out + 12, json_len);
}

int ferry__hdr_decode(const unsigned char *in, struct ferry_frame_hdr *h, const char **why)
{
	if (memcmp(in, magic, 4) != 0) {
		*why = "bad frame magic (not a ferry peer?)";
		return FERRY_EPROTO;
	}
	h->version = get16(in + 4);
	h->type = get16(in + 6);
	h->body_len = get32(in + 8);
	h->json_len = get32(in + 12);
	if (h->version != FERRY_FRAME_VERSION) {
		*why = "unsupported frame version";
		return FERRY_EPROTO;
	}
	if (h->type != FERRY_FRAME_REQUEST && h->type != FERRY_FRAME_REPLY) {
		*why = "unknown frame type";
		return FERRY_EPROTO;
	}
	if (h->body_len > FERRY_FRAME_MAX) {
		*why = "frame larger than the 16 MiB limit";
		return FERRY_EPROTO;
	}
	if (h->json_len > h->body_len) {
		*why = "json length larger than the body";
		return FERRY_EPROTO;
	}
	return 0;
}

json_t *ferry__json_parse(const char *buf, size_t len, char *err, size_t errlen)
{
	json_t *v = ferry__json_loadb(buf, len, JSON_REJECT_DUPLICATES, err, errlen);

	if (!v)
		return NULL;
	if (!json_is_object(v)) {
		snprintf(err, errlen, "request is not a json object");
		json_decref(v);
		return NULL;
	}
	return v;
}

/* Whether a body of jl + binlen bytes is over the limit (a sum that wraps is). */
static int too_large(size_t jl, size_t binlen)
{
	return binlen > FERRY_FRAME_MAX || jl > FERRY_FRAME_MAX - binlen;
}

int ferry__frame_head(uint16_t type, const json_t *obj, size_t binlen, unsigned char **out,
		      size_t *outlen)
{
	int rc = ferry__frame_build(type, obj, NULL, 0, out, outlen);
	size_t jl;

	if (rc)
		return rc;
	jl = *outlen - FERRY_FRAME_HDR;
	if (too_large(jl, binlen)) {
		free(*out);
		*out = NULL;
		return FERRY_EINVAL;
	}
	ferry__hdr_encode(*out, type, (uint32_t)(jl + binlen), (uint32_t)jl);
	return 0;
}

int ferry__frame_build(uint16_t type, const json_t *obj, const void *bin, size_t binlen,
		       unsigned char **out, size_t *outlen)
{
	char *js = ferry__json_dumps(obj, JSON_COMPACT);
	size_t jl, total;
	unsigned char *f;

	if (!js)
		return FERRY_ENOMEM;
	jl = strlen(js);
	if (too_large(jl, binlen)) {
		free(js);
		return FERRY_EINVAL;
	}
	total = FERRY_FRAME_HDR + jl + binlen;
	f = malloc(total);
	if (!f) {
		free(js);
		return FERRY_ENOMEM;
	}
	ferry__hdr_encode(f, type, (uint32_t)(jl + binlen), (uint32_t)jl);
	memcpy(f + FERRY_FRAME_HDR, js, jl);
	if (binlen)
		memcpy(f + FERRY_FRAME_HDR + jl, bin, binlen);
	free(js);
	*out = f;
	*outlen = total;
	return 0;
}

static const char *const names[] = {
    "OK",	 "EINVAL", "ENOMEM",	    "ENOJOB",	 "ECONNECT",  "EPROTO",
    "ETIMEDOUT", "ESTATE", "EUNSUPPORTED",  "ECONFIG",	 "EIO",	      "EAGAIN",
    "EEOF",	 "EPERM",  "EDISCONNECTED", "ERESOURCE", "EINTERNAL", "EAUTH",
};

const char *ferry__error_name(int code)
{
	/* compared before negating: -INT_MIN does not exist */
	if (code > 0 || code <= -(int)(sizeof(names) / sizeof(names[0])))
		return "EINTERNAL";
	return names[-code];
}

int ferry__error_from_name(const char *name)
{
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		if (name && !strcmp(names[i], name))
			return -(int)i;
	return FERRY_EINTERNAL;
}
