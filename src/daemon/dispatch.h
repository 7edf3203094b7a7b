/*
 * dispatch.h - the request table: every request the engine answers (job
 * and transfer requests alike), the fields it takes, what it may carry and
 * whether its reply acknowledges a change, with the one struct every
 * handler gets. A new request is one row in the table (dispatch.c) plus
 * its handler (docs/architecture.md, "Adding a request").
 */
#ifndef FERRY_DISPATCH_H
#define FERRY_DISPATCH_H

#include <jansson.h>
#include <stddef.h>

#include "engine.h"
#include "jbytes.h"
#include "util.h"

/* Flags of a request in the table. */
enum {
	/*
	 * Its reply acknowledges a change: the loop iteration that handles
	 * it ends with a durable commit (an fdatasync of the WAL) before any
	 * reply goes out. Set whether or not the handler succeeds, as a
	 * failed request may have changed something before it failed.
	 */
	FERRY_REQ_MUTATES = 1u << 0,
	/*
	 * It takes a binary part (r->data). Any other request that carries
	 * one is refused before its handler runs.
	 */
	FERRY_REQ_BINARY = 1u << 1,
};

/*
 * The room a request that adds records needs on the file system of the
 * database: what one turn commits (a few MiB; a batch of a big submit
 * about 6) past the 1,000 pages at which the engine's checkpoint
 * (ferry__db_checkpoint) copies the WAL into ferry.db, which may grow as
 * much. While requests wait, the checkpoint waits up to 64 MiB of WAL:
 * a stream of big submits onto a nearly full disk may then fail a commit
 * and stop the engine (clients retry on a new one, nothing acknowledged
 * is lost), where a single request gets this clear refusal.
 * Below it, the request is refused naming the file, instead of failing
 * the commit (which stops the engine: nothing of the iteration may be
 * acknowledged).
 */
#define FERRY_DB_ROOM (4LL << 20)
/*
 * What a send leaves free on the transfer root's file system, on top of
 * its files (transfer_send.c), when the root shares it with the state
 * directory (the default): four times FERRY_DB_ROOM, so that no transfer,
 * finished or abandoned, can take the room the database, the job
 * directories and ferryd.log need.
 */
#define FERRY_TRANSFER_MARGIN (16LL << 20)

/* Room for an error message (a longer one is cut; its bytes travel as they are). */
#define FERRY_REQ_ERRLEN 1024

struct ferry_req;

/*
 * A reply in pages (a listing, docs/protocol.md "Listings"): a handler
 * that sets r->pager answers with several frames, which the server asks
 * for one at a time, each only once the client took the frames before
 * but for less than a little (back-pressure), and other clients are
 * served between two: so a listing costs the engine one page at a time,
 * however long it is, and a client that stops reading holds the engine's
 * memory of one page. The connection takes no other request meanwhile.
 */
struct ferry_pager {
	/*
	 * Fills page (an empty object; the server adds "ok" and "more") and
	 * bin (empty; the server takes what it holds as the frame's binary
	 * part) with the next page: 0 when more follow, 1 when it is the
	 * last, or a FERRY_E* code with err set, which ends the reply with
	 * that error. Called on the loop's thread, within an iteration.
	 */
	int (*next)(struct ferry_pager *p, struct ferry_engine *eng, json_t *page,
		    struct ferry_bin *bin, char *err, size_t errlen);
	/* Frees it: after its last page, or when the connection goes first. */
	void (*free)(struct ferry_pager *p);
};

/* A row of the request table. */
struct ferry_reqdef {
	const char *name; /* the request's "op" */
	int (*handler)(struct ferry_req *r);
	/*
	 * The fields it takes besides "op", NULL-terminated; the
	 * dispatcher refuses any other before the handler runs, so a
	 * handler never sees a field it does not know.
	 */
	const char *const *fields;
	unsigned flags; /* FERRY_REQ_* */
};

/*
 * One request, as every handler gets it. A handler reads r->in, fills
 * r->out (the dispatcher adds "ok") and r->bin, and returns 0, or a
 * FERRY_E* code with r->err set (ferry__req_fail): the dispatcher then
 * drops r->out and r->bin and answers with the error.
 *
 * A handler may defer its reply: it sets r->deferred and returns 0, and
 * the connection takes no further request until the reply comes (replies
 * keep the order of the requests). r lives only for the call (r->in is
 * freed after it: json_incref what is needed later), so the handler keeps
 * what the answer needs: r->client and r->def, which it hands to
 * ferry__req_answer() later, on the loop's thread, within an
 * iteration (a callback of ferry__loop_watch, or the tick: e.g. wait,
 * answered by the tick in which its last job ended, or a control whose
 * cluster command finished on a worker thread and woke the loop). Whoever
 * keeps a client must forget it in ferry__engine_client_closed(), which the
 * server calls when the connection goes.
 */
struct ferry_req {
	struct ferry_engine *eng;
	struct ferry_client *client;	/* who sent it (server.c) */
	const struct ferry_reqdef *def; /* the request's row */
	json_t *in;			/* the request (borrowed) */
	json_t *out;			/* the reply's fields */
	const void *data;		/* the request's binary part (borrowed), ... */
	size_t datalen;			/* ... 0 for all but FERRY_REQ_BINARY requests */
	struct ferry_bin bin;		/* the reply's binary part (handed to the server) */
	int deferred;			/* the reply comes later: ferry__req_answer() */
	/*
	 * For a request not flagged FERRY_REQ_MUTATES: this call did change
	 * something its reply acknowledges (only transfer_put, whose reply
	 * acknowledges a change only when it completes its send; see its
	 * row in dispatch.c for why the flag is not set).
	 */
	int durable;
	int room_ok; /* ferry__req_check_room() found room once: it holds for the request */
	/*
	 * The reply comes in pages (struct ferry_pager), which the server
	 * takes: set by a handler that returns 0, with nothing in r->out.
	 */
	struct ferry_pager *pager;
	/* scratch: each new job's stored text in turn (requests.c, record_job) */
	struct ferry_jtext text;
	char err[FERRY_REQ_ERRLEN]; /* the message of a failure */
};

/*
 * The request's "state": a state's name or a non-empty array of them, as a
 * mask of 1u << state (0 when absent). 0, or FERRY_EINVAL with r->err set.
 */
int ferry__req_states(struct ferry_req *r, unsigned *states);

/* A failure of request r: the message into r->err; returns code. */
#define ferry__req_fail(r, code, ...) ferry__fail((r)->err, sizeof((r)->err), (code), __VA_ARGS__)

/*
 * Room to add records: 0, or FERRY_EIO ("cannot write '.../ferry.db':
 * disk full ...") while the database's file system has less than
 * FERRY_DB_ROOM free. Called by a handler just before it adds a record
 * (a job, a transfer), after its submission key was looked up: a replay
 * of what was already committed is answered even on a full disk, and the
 * requests that only update or remove records (control, dispose, cancel)
 * always run, so that what fills a disk can be killed and removed. A
 * resumed send fills blocks it reserved and does not ask.
 */
int ferry__req_check_room(struct ferry_req *r);

/*
 * Handles one request: finds its row, refuses a binary part it does not
 * take and fields it does not know, runs its handler and marks the open
 * transaction durable for a request that mutates. Fills *reply (NULL:
 * deferred) and *bin (empty when the reply has no binary part). A reply
 * in pages goes to *pager (the caller's, NULL with *reply when pager is
 * NULL: then the client's connection streams it).
 */
void ferry__dispatch(struct ferry_engine *eng, struct ferry_client *client, json_t *in,
		     const void *data, size_t datalen, json_t **reply, struct ferry_bin *bin,
		     struct ferry_pager **pager);
/*
 * The later reply to a request whose handler deferred it (def: its row,
 * client: its connection): a durable commit first when def mutates, then
 * the reply is queued. reply stays the caller's.
 */
void ferry__req_answer(struct ferry_engine *eng, struct ferry_client *client,
		       const struct ferry_reqdef *def, json_t *reply);
/*
 * Requests that wait for the backend: a handler that answers
 * FERRY__PENDING (backend.h) has its request kept here, in arrival order,
 * and dispatched again when the backend says it is ready
 * (ferry__engine_backend_ready); its client waits meanwhile.
 */
struct ferry_parked;
struct ferry_parking {
	struct ferry_parked *head, **tail;
};
void ferry__dispatch_parking_init(struct ferry_parking *p);
/* Dispatches every parked request again; those that park again wait on. */
void ferry__dispatch_rerun(struct ferry_engine *eng, struct ferry_parking *p);
/* Drops the requests of client c (NULL: all), which went away. */
void ferry__dispatch_forget(struct ferry_parking *p, struct ferry_client *c);

/* An error reply {ok: false, error, code, message}; never NULL. */
json_t *ferry__error_reply(int code, const char *message);

/* ---- the handlers ---- */

/* Job requests (requests.c). */
int ferry__req_hello(struct ferry_req *r);
int ferry__req_ping(struct ferry_req *r);
int ferry__req_submit(struct ferry_req *r);
/*
 * Records job spec n (normalised; taken) as a new job, of workflow wf
 * (NULL: none) and tracks it in memory, but for one waiting for its
 * dependencies (wf->waiting), which lives in the database only. 0 and
 * *id, or the request's failure.
 */
struct db_wf_job;
int ferry__req_add_job(struct ferry_req *r, json_t *n, const struct db_wf_job *wf, int64_t *id);
/* workflow.c */
int ferry__req_workflow_submit(struct ferry_req *r);
int ferry__req_workflow_status(struct ferry_req *r);
int ferry__req_workflows(struct ferry_req *r);
int ferry__req_workflow_stop(struct ferry_req *r);
int ferry__req_workflow_restart(struct ferry_req *r);
int ferry__req_workflow_dispose(struct ferry_req *r);
/* wait with "workflow": every job of it ended; deadline as ferry__req_wait's */
int ferry__req_wait_workflow(struct ferry_req *r, double deadline);
int ferry__req_status(struct ferry_req *r);
int ferry__req_info(struct ferry_req *r);
int ferry__req_jobs(struct ferry_req *r); /* listing.c */
int ferry__req_wait(struct ferry_req *r);
int ferry__req_control(struct ferry_req *r);
int ferry__req_dispose(struct ferry_req *r);
int ferry__req_read(struct ferry_req *r);
/*
 * control (action: its name) or dispose (action NULL) of the jobs the
 * request's selection takes (select.c); the answer counts them.
 */
int ferry__req_select(struct ferry_req *r, const char *action);
/*
 * The action (NULL: dispose) on job id, which exists, within a selection
 * (requests.c): 0 when it changed the job or asked the cluster to, a
 * positive value when there was nothing to change, or a FERRY_E* code with r->err set.
 */
int ferry__req_apply(struct ferry_req *r, int64_t id, const char *action);
int ferry__req_shutdown(struct ferry_req *r);
/* translate.c: a soma-workflow SharedResourcePath's place through the translation files */
int ferry__req_translate_path(struct ferry_req *r);

/* Transfer requests (transfer.c, and transfer_send.c for what creates or fills a transfer). */
int ferry__req_transfer_send(struct ferry_req *r);
int ferry__req_transfer_register(struct ferry_req *r);
int ferry__req_transfer_put(struct ferry_req *r);
int ferry__req_transfer_manifest(struct ferry_req *r);
int ferry__req_transfer_get(struct ferry_req *r);
int ferry__req_transfer_retrieved(struct ferry_req *r);
int ferry__req_transfer_info(struct ferry_req *r);
int ferry__req_transfers(struct ferry_req *r);
int ferry__req_transfer_cancel(struct ferry_req *r);

#endif
