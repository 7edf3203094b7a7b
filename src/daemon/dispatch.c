/*
 * dispatch.c - the one request path: server.c hands every request frame
 * here; its row in the table says which handler runs, which fields and
 * whether a binary part it takes, and whether its reply acknowledges a
 * change (then the iteration's commit is synced before the reply goes).
 * What the table says is checked here, once, for every request, so that
 * no handler checks it by hand and none can forget to.
 */
#include <stdio.h>
#include <string.h>

#include "dispatch.h"
#include "jbytes.h"
#include "proto.h"

#define FIELDS(...) ((const char *const[]){__VA_ARGS__, NULL})
#define NO_FIELDS   ((const char *const[]){NULL})

/*
 * Every request but adopt, which server.c answers itself before any
 * hello: it hands the connection's descriptors over, so it is about the
 * connection, not a request to the engine (docs/protocol.md).
 */
static const struct ferry_reqdef table[] = {
    /* name, handler, fields besides "op", flags */
    {"hello", ferry__req_hello, FIELDS("version", "client", "expect"), 0},
    {"ping", ferry__req_ping, NO_FIELDS, 0},
    {"submit", ferry__req_submit, FIELDS("jobs", "key", "common"), FERRY_REQ_MUTATES},
    {"status", ferry__req_status, FIELDS("id"), 0},
    {"info", ferry__req_info, FIELDS("id"), 0},
    {"jobs", ferry__req_jobs,
     FIELDS("state", "detail", "format", "after", "since", "limit", "page", "workflow"), 0},
    {"wait", ferry__req_wait,
     FIELDS("ids", "timeout", "all", "state", "upto", "failed_since", "workflow"), 0},
    {"control", ferry__req_control,
     FIELDS("id", "action", "all", "state", "name", "ids", "workflow"), FERRY_REQ_MUTATES},
    {"dispose", ferry__req_dispose, FIELDS("id", "all", "state", "name", "ids", "workflow"),
     FERRY_REQ_MUTATES},
    {"read", ferry__req_read, FIELDS("id", "stream", "offset", "max", "path"), 0},
    {"shutdown", ferry__req_shutdown, NO_FIELDS, 0},
    {"translate_path", ferry__req_translate_path, FIELDS("namespace", "uuid"), 0},
    {"workflow_submit", ferry__req_workflow_submit,
     FIELDS("name", "key", "jobs", "dependencies", "groups", "disposal_timeout_hours", "cwd",
	    "auto_key", "base_env"),
     FERRY_REQ_MUTATES},
    {"workflow_status", ferry__req_workflow_status, FIELDS("workflow"), 0},
    {"workflows", ferry__req_workflows, NO_FIELDS, 0},
    {"workflow_stop", ferry__req_workflow_stop, FIELDS("workflow"), FERRY_REQ_MUTATES},
    {"workflow_restart", ferry__req_workflow_restart, FIELDS("workflow", "key"), FERRY_REQ_MUTATES},
    {"workflow_dispose", ferry__req_workflow_dispose, FIELDS("workflow"), FERRY_REQ_MUTATES},
    {"transfer_send", ferry__req_transfer_send,
     FIELDS("key", "local_paths", "disposal_hours", "files"), FERRY_REQ_MUTATES},
    {"transfer_register", ferry__req_transfer_register,
     FIELDS("key", "local_paths", "name", "disposal_hours"), FERRY_REQ_MUTATES},
    /*
     * Not FERRY_REQ_MUTATES, the one request whose handler decides: what a
     * put records (bytes in a partial file, the count received, a file's
     * checksum) is progress, which a send resumed after a machine crash
     * finds again on the disk or sends again (docs/architecture.md, "File
     * transfers"), and an engine crash loses nothing committed. Only the
     * put that completes its send acknowledges a change (the send is
     * ready, its jobs may start), and its handler sets r->durable then.
     * Measured (2-vCPU VM, a tree of 500 small files sent on this host
     * into a journaled ext4 on a loop device): 1.13-1.16 s; with every
     * put's iteration synced, 1.74-2.13 s (21-31 WAL fdatasyncs of 4-6
     * ms each instead of 2).
     */
    {"transfer_put", ferry__req_transfer_put,
     FIELDS("id", "file", "offset", "hash", "copied_from", "prefix_hash", "hole"),
     FERRY_REQ_BINARY},
    /* a registered output found produced is recorded, but found again by the next look */
    {"transfer_manifest", ferry__req_transfer_manifest, FIELDS("server_path"), 0},
    {"transfer_get", ferry__req_transfer_get,
     FIELDS("server_path", "file", "offset", "length", "holes"), 0},
    {"transfer_retrieved", ferry__req_transfer_retrieved, FIELDS("server_path"), FERRY_REQ_MUTATES},
    {"transfer_info", ferry__req_transfer_info, FIELDS("server_path"), 0},
    {"transfers", ferry__req_transfers, NO_FIELDS, 0},
    {"transfer_cancel", ferry__req_transfer_cancel, FIELDS("server_path", "force"),
     FERRY_REQ_MUTATES},
};

static const struct ferry_reqdef *find(const char *op)
{
	for (size_t i = 0; i < FERRY_ARRAY_SIZE(table); i++)
		if (!strcmp(op, table[i].name))
			return &table[i];
	return NULL;
}

/* What the row says the request may hold: its fields, and a binary part. */
static int check_request(struct ferry_req *r)
{
	const char *k;
	json_t *v;

	if (r->datalen && !(r->def->flags & FERRY_REQ_BINARY))
		return ferry__req_fail(r, FERRY_EINVAL, "request '%s' takes no binary data",
				       r->def->name);
	json_object_foreach(r->in, k, v)
	{
		const char *const *f = r->def->fields;
		if (!strcmp(k, "op"))
			continue;
		while (*f && strcmp(k, *f))
			f++;
		if (!*f)
			return ferry__req_fail(
			    r, FERRY_EINVAL, "unknown field '%s' in request '%s'", k, r->def->name);
	}
	return 0;
}

int ferry__req_check_room(struct ferry_req *r)
{
	const char *dir = ferry__engine_state_dir(r->eng);
	int64_t avail;

	if (r->room_ok) /* once per request: a statvfs per job was 8% of a big submit */
		return 0;
	avail = ferry__fs_free(-1, dir);
	if (avail < 0 || avail >= FERRY_DB_ROOM) {
		r->room_ok = 1;
		return 0;
	}
	return ferry__req_fail(r, FERRY_EIO,
			       "cannot write '%s/ferry.db': disk full (%lld bytes free on its file "
			       "system; a request that adds records needs %lld)",
			       dir, (long long)avail, FERRY_DB_ROOM);
}

/*
 * A handler that failed on the database: what its error said of the file
 * or its disk goes with the reply ("cannot record the transfer: cannot
 * write '/x/ferry.db': disk full").
 */
static int explain_failure(struct ferry_req *r, unsigned failures, int rc)
{
	int code;
	const char *why = ferry__db_why(ferry__engine_db(r->eng), &code);
	size_t len = strlen(r->err);

	if (!why || rc >= 0 || failures == ferry__db_failures(ferry__engine_db(r->eng)) ||
	    strstr(r->err, why))
		return rc;
	snprintf(r->err + len, sizeof(r->err) - len, "%s%s", len ? ": " : "", why);
	return code;
}

json_t *ferry__error_reply(int code, const char *message)
{
	char msg[FERRY_REQ_ERRLEN];
	json_t *reply;

	/* bytes: a message quotes paths, and may be cut inside a character */
	snprintf(msg, sizeof(msg), "%s", message);
	reply = json_pack("{s:b,s:s,s:i,s:o}", "ok", 0, "error", ferry__error_name(code), "code",
			  code, "message", ferry__json_bytes(msg));
	/* NULL would read as a deferred reply: never leave a client hanging */
	if (!reply)
		reply = json_pack("{s:b,s:s,s:i,s:s}", "ok", 0, "error", "EINTERNAL", "code",
				  FERRY_EINTERNAL, "message", "cannot encode the error reply");
	return reply;
}

struct ferry_parked {
	struct ferry_client *client;
	json_t *req;
	struct ferry_parked *next;
};

void ferry__dispatch_parking_init(struct ferry_parking *p)
{
	p->head = NULL;
	p->tail = &p->head;
}

static int park(struct ferry_parking *p, struct ferry_client *c, json_t *req)
{
	struct ferry_parked *k = calloc(1, sizeof(*k));

	if (!k)
		return -1;
	k->client = c;
	k->req = json_incref(req);
	*p->tail = k;
	p->tail = &k->next;
	return 0;
}

void ferry__dispatch_rerun(struct ferry_engine *eng, struct ferry_parking *p)
{
	struct ferry_parked *list = p->head;

	ferry__dispatch_parking_init(p);
	while (list) {
		struct ferry_parked *k = list;
		struct ferry_bin bin;
		json_t *reply;

		list = k->next;
		ferry__dispatch(eng, k->client, k->req, NULL, 0, &reply, &bin, NULL);
		ferry__bin_release(&bin); /* no request that may park answers with data */
		if (reply) {
			ferry__client_reply(k->client, reply);
			json_decref(reply);
		}
		json_decref(k->req);
		free(k);
	}
}

void ferry__dispatch_forget(struct ferry_parking *p, struct ferry_client *c)
{
	struct ferry_parked **pp = &p->head;

	p->tail = &p->head;
	while (*pp) {
		struct ferry_parked *k = *pp;
		if (!c || k->client == c) {
			*pp = k->next;
			json_decref(k->req);
			free(k);
		} else {
			pp = &k->next;
			p->tail = &k->next;
		}
	}
}

void ferry__dispatch(struct ferry_engine *eng, struct ferry_client *client, json_t *in,
		     const void *data, size_t datalen, json_t **reply, struct ferry_bin *bin,
		     struct ferry_pager **pager)
{
	struct ferry_req r = {
	    .eng = eng, .client = client, .in = in, .data = data, .datalen = datalen};
	const char *op = json_string_value(json_object_get(in, "op"));
	int rc;

	r.bin = *bin = (struct ferry_bin)FERRY_BIN_INIT;
	if (pager)
		*pager = NULL;
	if (!op)
		rc = ferry__req_fail(&r, FERRY_EINVAL, "request has no 'op' string");
	else if (!(r.def = find(op)))
		rc = ferry__req_fail(&r, FERRY_EINVAL, "unknown request '%s'", op);
	else if (!(r.out = json_object()))
		rc = ferry__req_fail(&r, FERRY_ENOMEM, "out of memory");
	else if (!(rc = check_request(&r))) {
		unsigned failures = ferry__db_failures(ferry__engine_db(eng));
		rc = explain_failure(&r, failures, r.def->handler(&r));
		/* it waits for the backend: run again when the backend is ready */
		if (rc == FERRY__PENDING && park(ferry__engine_parking(eng), client, in) == 0)
			r.deferred = 1;
		if (rc == FERRY__PENDING)
			rc = r.deferred ? 0 : ferry__req_fail(&r, FERRY_ENOMEM, "out of memory");
		/* even after a failure: a kill is recorded before its signal may fail */
		if ((r.def->flags & FERRY_REQ_MUTATES) || r.durable)
			ferry__db_need_durable(ferry__engine_db(eng));
	}
	if (r.pager && rc) /* a handler that failed after all */
		r.pager->free(r.pager);
	else if (r.pager) {
		if (pager)
			*pager = r.pager;
		else
			ferry__client_stream(client, r.pager);
		r.deferred = 1;
	}
	ferry__jtext_free(&r.text);
	if (rc || r.deferred) {
		json_decref(r.out);
		ferry__bin_release(&r.bin);
		*reply = rc ? ferry__error_reply(rc, r.err) : NULL;
		return;
	}
	json_object_set_new(r.out, "ok", json_true());
	*reply = r.out;
	*bin = r.bin;
}

void ferry__req_answer(struct ferry_engine *eng, struct ferry_client *client,
		       const struct ferry_reqdef *def, json_t *reply)
{
	if (def->flags & FERRY_REQ_MUTATES)
		ferry__db_need_durable(ferry__engine_db(eng));
	ferry__client_reply(client, reply);
}
