/*
 * runner.h - the local backend's job runner (runner.c), a process of its
 * own (a fresh image of ferryd, `ferryd --runner`, started by the engine),
 * and the frames both sides exchange on runner.sock (docs/protocol.md's codec, JSON only:
 * docs/architecture.md says which messages).
 */
#ifndef FERRY_RUNNER_H
#define FERRY_RUNNER_H

#include <jansson.h>
#include <stddef.h>

#include "frame.h"

/* One end of the engine-runner connection, buffered both ways. */
struct chan {
	int fd;
	struct ferry_reader in; /* read, not yet taken */
	unsigned char *out;	/* what the peer has not read yet */
	size_t outlen, outcap;
};

/* Reads what is there; -1 at EOF or on an error. */
int ferry__chan_fill(struct chan *c);
/* Takes the next complete message; NULL when none (or a bad one: *bad). */
json_t *ferry__chan_next(struct chan *c, int *bad);
/* Queues m (not consumed); 0, or -1 when m is NULL or cannot be encoded. */
int ferry__chan_queue(struct chan *c, json_t *m);
/* Writes queued output without blocking; -1 when the peer is gone. */
int ferry__chan_flush(struct chan *c);
/* Closes the connection; the buffers stay for the next one. */
void ferry__chan_close(struct chan *c);
/* Closes and frees the buffers too. */
void ferry__chan_free(struct chan *c);

/* The descriptor the runner gets its listening socket on (local.c). */
#define RUNNER_FD 3

/*
 * The runner: serves the engine on the listening socket lfd, logs to
 * log, and exits once no engine is connected and no job runs. Each job
 * gets job_nofile as its soft RLIMIT_NOFILE (0: the runner's own).
 */
void ferry__runner_main(int lfd, const char *log, unsigned long long job_nofile)
    __attribute__((noreturn));

/*
 * `ferryd --runner FD LOG NOFILE`, the runner's own entry (argv from
 * argv[1] on, "--runner" first): only the engine runs it, with FD
 * RUNNER_FD its listening socket. Checks its arguments and runs
 * ferry__runner_main(); returns 2, having said why, when they are not
 * what the engine passes.
 */
int ferry__runner_cmd(int argc, char **argv);

#endif
