/* internal.h - libferry's private declarations. */
#ifndef FERRY_LIB_INTERNAL_H
#define FERRY_LIB_INTERNAL_H

#include <jansson.h>
#include <pthread.h>

#include "cfg.h"
#include "ferry.h"

#define FERRY_EXPORT __attribute__((visibility("default")))

struct out_cursor {
	ferry_job_id id;
	int stream;
	uint64_t offset; /* of the first byte not yet fetched */
	char *buf;	 /* fetched bytes not yet returned */
	size_t len;
	struct out_cursor *next;
};

struct ferry_conn {
	pthread_mutex_t mu;
	char *resource;
	char *config;
	char *login;
	char *password;
	struct ferry_resource_cfg cfg;
	int fd;
	double retry_budget_s; /* how long a call may spend reconnecting */
	int replayed;	       /* the last call was sent again after a reconnect */
	struct out_cursor *cursors;
	char errmsg[1024];
};

/* Sets conn->errmsg and returns code. */
int ferry__seterr(struct ferry_conn *c, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Opens the transport and does the handshake, starting the engine if needed. */
int ferry__open(struct ferry_conn *c);
void ferry__close(struct ferry_conn *c);

/*
 * Sends req and reads the reply. On a lost connection, reconnects (starting
 * a new engine if the old one died) and sends req again: every request is
 * idempotent (submits by their keys). With deadline > 0 (monotonic), the
 * request's "timeout" is set to what remains before each send. On success
 * *reply is the reply object (caller decrefs) and *bin, *binlen (if bin is
 * not NULL) the binary part, malloc'd.
 */
int ferry__call(struct ferry_conn *c, json_t *req, double deadline, json_t **reply, void **bin,
		size_t *binlen);

#endif
