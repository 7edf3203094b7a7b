/* internal.h - libferry's private declarations. */
#ifndef FERRY_LIB_INTERNAL_H
#define FERRY_LIB_INTERNAL_H

#include <jansson.h>
#include <pthread.h>
#include <sys/types.h>

#include "cfg.h"
#include "ferry.h"
#include "frame.h"
#include "start.h"

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
	struct ferry_reader in; /* what was read of the link: at most the next reply */
	/* a remote resource's connection: the ssh process and what it printed */
	pid_t ssh_pid;
	int ssh_err;	       /* read end of ssh's stderr, nonblocking; -1 */
	int askpass;	       /* listening socket of the askpass helper; -1 */
	int askpass_served;    /* the password was given to this ssh */
	char ssh_errbuf[2048]; /* the last bytes ssh wrote to stderr */
	size_t ssh_errlen;
	char **sets;			/* engine settings the remote engine must have */
	int no_start;			/* only reach a running engine (ferry_engine_running) */
	int ssh_exit;			/* exit status of the last ssh that ended; -1 */
	long engine_pid;		/* from the engine's hello */
	char *warnings;			/* from the engine's last hello, one a line; NULL: none */
	char *engine_home;		/* from the engine's last hello; NULL: not told */
	double retry_budget_s;		/* how long a call may spend reconnecting */
	int replayed;			/* the last call was sent again after a reconnect */
	int lost;			/* the link broke: the next open is a reconnection */
	struct ferry_start_state start; /* reaching a local engine (start.h) */
	struct out_cursor *cursors;
	ferry_progress_fn progress_fn; /* ferry_set_progress(); NULL: none */
	void *progress_ud;
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
 * not NULL) the binary part: not the caller's, it is where the connection
 * read it, good until the next call on the connection (under its lock).
 */
int ferry__call(struct ferry_conn *c, json_t *req, double deadline, json_t **reply,
		const void **bin, size_t *binlen);
/*
 * ferry__call() under the connection's lock, for one public call; consumes
 * req (NULL: FERRY_ENOMEM, from a failed json_pack). reply may be NULL when
 * the call wants none. No binary part: it would not outlive the lock.
 */
int ferry__call_locked(struct ferry_conn *c, json_t *req, double deadline, json_t **reply);
/*
 * ferry__call_locked() of a request given as its JSON text (len bytes,
 * the caller's), sent as it stands: for a request too big to build as a
 * tree only to write it out again (a workflow's file).
 */
int ferry__call_text(struct ferry_conn *c, const char *text, size_t len, json_t **reply);
/* The counts of a selection's answer (docs/protocol.md, "Selections") into *out. */
void ferry__control_result(json_t *reply, struct ferry_control_result *out);
/*
 * Pipelining, for transfers: sends a request without waiting, and reads
 * the next reply (an error reply too: see ferry__reply_error). No
 * reconnection: FERRY_EIO means the link broke; the caller closes the
 * connection and goes on through ferry__call(), which reconnects.
 */
int ferry__send_request(struct ferry_conn *c, json_t *req, const void *data, size_t datalen);
/* The same, with len bytes of fd from off as the data, sent by the kernel (sendfile). */
int ferry__send_request_file(struct ferry_conn *c, json_t *req, int fd, int64_t from, size_t len);
int ferry__recv_reply(struct ferry_conn *c, json_t **reply, const void **bin, size_t *binlen);
/* Sets the message of an error reply and returns its code. */
int ferry__reply_error(struct ferry_conn *c, json_t *reply);
/* Same, with data as the request's binary part. */
int ferry__call_data(struct ferry_conn *c, json_t *req, const void *data, size_t datalen,
		     double deadline, json_t **reply, const void **bin, size_t *binlen);

/* api.c: a copy of the string member key of o; NULL when it is none or no memory. */
char *ferry__jstrdup(json_t *o, const char *key);

/* ssh.c: the transport of a resource with a host (see there). */
/* Starts ssh running `ferry bridge`; sets c->fd. 0 or a code with the message. */
int ferry__ssh_spawn(struct ferry_conn *c);
/* Reads exactly len bytes; FERRY_EIO at EOF or after silence_s without a byte. */
int ferry__ssh_read(struct ferry_conn *c, void *buf, size_t len, double silence_s);
/* The link's first bytes were not a frame: reports what the remote shell printed. */
int ferry__ssh_unclean(struct ferry_conn *c, const unsigned char *start, size_t len);
/* After ssh ended or the link broke: closes, reaps, and sets why (the code). */
int ferry__ssh_failure(struct ferry_conn *c);
/* Ends the ssh process and frees the transport. */
void ferry__ssh_close(struct ferry_conn *c);

#endif
