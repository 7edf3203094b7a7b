/*
 * fuzz_frame.c - libFuzzer target for the engine's request path.
 *
 * An input is a byte stream as a client would send it on the socket: a
 * sequence of frames. It goes through what server.c does with it: into a
 * frame reader (frame.h) in pieces, as reads hand it out, so that frames
 * arrive split; each frame the reader takes (its header checked, its JSON
 * part parsed) goes to ferry__dispatch() against a real engine (database,
 * local backend) living in a temporary state directory, and the reply is
 * encoded with ferry__frame_build(). Decoding stops at the first frame the
 * server would close the connection on, or at an incomplete frame.
 *
 * Safety and determinism:
 *  - ferry__engine_tick() is never called, so a submitted job is never
 *    started (no process is ever forked) and waiters are never answered;
 *    'shutdown' only sets a flag that nothing but the tick and the event
 *    loop read.
 *  - 'wait' gets a dummy connection pointer; after each input
 *    ferry__engine_client_closed() drops its waiters, and every job left is
 *    disposed, so the engine's state does not grow from input to input.
 *  - Job ids in requests are made relative to the input: an "id" (or an
 *    element of "ids") between 1 and ID_WINDOW is shifted by the highest
 *    id any earlier input created, so {"id": 1} names the first job this
 *    input submitted, whatever ran before.
 *  - Each input is one database transaction, as one event-loop iteration
 *    of the server, followed by ferry__engine_committed() as there.
 *
 * A request that gets no reply although it is not a deferred 'wait', or a
 * reply that cannot be encoded, is reported as a crash: the server would
 * leave that client hanging.
 *
 * A custom mutator keeps the frame lengths consistent: most of the time it
 * mutates the JSON of one frame and rewrites that frame's header, or
 * duplicates / drops a frame; sometimes it mutates the raw bytes.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cfg.h"
#include "dispatch.h"
#include "frame.h"
#include "loop.h"
#include "jbytes.h"
#include "proto.h"
#include "util.h"

#define ID_WINDOW  (1 << 16)
#define MAX_FRAMES 64
#define MUTATE_RAW 8 /* one mutation in MUTATE_RAW works on raw bytes */

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
size_t LLVMFuzzerMutate(uint8_t *data, size_t size, size_t max_size);
size_t LLVMFuzzerCustomMutator(uint8_t *data, size_t size, size_t max_size, unsigned int seed);

static struct ferry_engine *eng;
static struct ferry_cfg cfg; /* the engine borrows cfg.res[0] for its whole life */
static char *tmp_root;
static int64_t id_base;	    /* highest job id the earlier inputs created */
static int64_t id_max_seen; /* highest job id seen in any reply */
static struct ferry_loop *loop;
static int debug; /* $FUZZ_FRAME_DEBUG: print each request and reply */
static char dummy_client_storage;
#define DUMMY_CLIENT ((struct ferry_client *)&dummy_client_storage)

static void die(const char *what, const char *detail)
{
	fprintf(stderr, "fuzz_frame: %s%s%s\n", what, detail ? ": " : "", detail ? detail : "");
	if (tmp_root)
		ferry__rm_rf(tmp_root);
	abort();
}

static void cleanup(void)
{
	ferry__engine_free(eng);
	eng = NULL;
	ferry__loop_free(loop);
	loop = NULL;
	ferry__cfg_release(&cfg);
	if (tmp_root) {
		ferry__rm_rf(tmp_root);
		free(tmp_root);
		tmp_root = NULL;
	}
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	const char *tmpdir = getenv("TMPDIR");
	char err[1024], *state_dir;

	(void)argc;
	(void)argv;
	json_object_seed(1); /* same hash order in every run */
	debug = getenv("FUZZ_FRAME_DEBUG") != NULL;
	tmp_root = ferry__asprintf("%s/ferry-fuzz-XXXXXX", tmpdir && *tmpdir ? tmpdir : "/tmp");
	if (!tmp_root || !mkdtemp(tmp_root))
		die("cannot create a temporary directory", strerror(errno));
	if (setenv("XDG_STATE_HOME", tmp_root, 1) < 0)
		die("setenv", strerror(errno));
	if (ferry__cfg_parse("fuzz.conf", "[local]\nscheduler = local\nslots = 1\n", &cfg, err,
			     sizeof(err)) < 0 ||
	    cfg.nres != 1)
		die("cannot parse the built-in configuration", err);
	state_dir = ferry__state_dir("local");
	if (!state_dir || ferry__mkdir_p(state_dir, 0700) < 0)
		die("cannot create the state directory", state_dir);
	if (!(loop = ferry__loop_new(err, sizeof(err))))
		die("cannot make the loop", err);
	eng = ferry__engine_new(loop, "local", state_dir, &cfg.res[0], 0, err, sizeof(err));
	free(state_dir);
	if (!eng)
		die("cannot create the engine", err);
	atexit(cleanup);
	return 0;
}

/* Shifts an input-relative id into the ids this process has. */
static void rebase_id(json_t *v)
{
	json_int_t id;

	if (!json_is_integer(v))
		return;
	id = json_integer_value(v);
	if (id >= 1 && id <= ID_WINDOW)
		json_integer_set(v, id + id_base);
}

static void rebase_request(json_t *req)
{
	json_t *ids = json_object_get(req, "ids"), *e;
	size_t i;

	rebase_id(json_object_get(req, "id"));
	if (json_is_array(ids))
		json_array_foreach(ids, i, e) rebase_id(e);
}

/* A file part read in, as the server's sendfile would send it: 0, or -1 when short. */
static int bin_in_memory(struct ferry_bin *b)
{
	if (b->fd < 0)
		return 0;
	if (!(b->p = malloc(b->len ? b->len : 1)) ||
	    pread(b->fd, b->p, b->len, (off_t)b->off) != (ssize_t)b->len)
		return -1;
	close(b->fd);
	b->fd = -1;
	return 0;
}

/*
 * A reply in pages, taken page by page as server.c does, into one reply
 * whose array holds every page's: each page must be an object with one
 * array (ids or jobs), and the pages end.
 */
/* A page's JSON Lines (a listing's "format": "jsonl") into page's "jobs": each must parse. */
static void page_lines(json_t *page, const struct ferry_bin *bin)
{
	const char *at = bin->p, *end = at + bin->len, *nl;
	json_t *a = json_array();

	for (; at < end; at = nl + 1) {
		json_t *o;
		if (!(nl = memchr(at, '\n', (size_t)(end - at))))
			die("a page's lines do not end with a newline", "jsonl");
		if (!(o = ferry__json_loadb(at, (size_t)(nl - at), 0, NULL, 0)))
			die("a page's line is no JSON", "jsonl");
		json_array_append_new(a, o);
	}
	json_object_set_new(page, "jobs", a);
}

static json_t *all_pages(struct ferry_pager *p)
{
	json_t *whole = json_object(), *page, *v;
	char err[FERRY_REQ_ERRLEN];
	const char *key;
	int rc;

	do {
		struct ferry_bin bin = FERRY_BIN_INIT;
		if (!(page = json_object()))
			die("out of memory", "page");
		rc = p->next(p, eng, page, &bin, err, sizeof(err));
		if (rc >= 0 && bin.len)
			page_lines(page, &bin);
		ferry__bin_release(&bin);
		json_object_foreach(page, key, v)
		{
			json_t *a = json_object_get(whole, key);
			if (!strcmp(key, "count") || !strcmp(key, "last"))
				continue; /* a page of lines: how many, and the last id */
			if (!json_is_array(v))
				die("a page holds something else than an array", key);
			if (!a)
				json_object_set(whole, key, v);
			else
				json_array_extend(a, v);
		}
		json_decref(page);
	} while (rc == 0);
	p->free(p);
	if (rc < 0) {
		json_decref(whole);
		return ferry__error_reply(rc, err);
	}
	json_object_set_new(whole, "ok", json_true());
	return whole;
}

/* Runs one request the way server.c does and checks the reply. */
static json_t *run_request(json_t *req, const void *data, size_t datalen, int check)
{
	const char *op = json_string_value(json_object_get(req, "op"));
	int is_wait = op && !strcmp(op, "wait");
	json_t *reply = NULL;
	struct ferry_bin bin = FERRY_BIN_INIT;
	struct ferry_pager *pager;

	ferry__dispatch(eng, DUMMY_CLIENT, req, data, datalen, &reply, &bin, &pager);
	if (pager)
		reply = all_pages(pager);
	if (debug && check) {
		char *a = json_dumps(req, JSON_COMPACT),
		     *b = reply ? json_dumps(reply, JSON_COMPACT) : NULL;
		fprintf(stderr, "> %.300s\n< %.300s\n", a ? a : "?", b ? b : "(deferred)");
		free(a);
		free(b);
	}
	if (!reply) {
		if (check && !is_wait)
			die("request got no reply although it is not a deferred wait", op);
		ferry__bin_release(&bin);
		return NULL;
	}
	if (check) {
		unsigned char *frame = NULL; /* set only when rc is 0; else die() ends the run */
		size_t flen;
		struct ferry_frame_hdr h;
		const char *why = "";
		char err[512];
		json_t *back;
		int rc = bin_in_memory(&bin) ? FERRY_EIO
					     : ferry__frame_build(FERRY_FRAME_REPLY, reply, bin.p,
								  bin.len, &frame, &flen);

		if (rc)
			die("reply cannot be encoded", ferry__error_name(rc));
		if (ferry__hdr_decode(frame, &h, &why) || h.type != FERRY_FRAME_REPLY ||
		    FERRY_FRAME_HDR + (size_t)h.body_len != flen)
			die("encoded reply has a bad header", why);
		back = ferry__json_parse((const char *)frame + FERRY_FRAME_HDR, h.json_len, err,
					 sizeof(err));
		if (!back)
			die("encoded reply does not parse back", err);
		if (!json_is_boolean(json_object_get(back, "ok")))
			die("reply has no boolean 'ok'", op);
		/* bytes that are not UTF-8 come back through their escape */
		if (!json_equal(back, reply))
			die("encoded reply parses back to something else", op);
		json_decref(back);
		free(frame);
	}
	ferry__bin_release(&bin);
	return reply;
}

static void note_ids(json_t *reply)
{
	json_t *ids = json_object_get(reply, "ids"), *e;
	size_t i;

	if (!json_is_true(json_object_get(reply, "ok")) || !json_is_array(ids))
		return;
	json_array_foreach(ids, i, e)
	{
		if (json_is_integer(e) && json_integer_value(e) > id_max_seen)
			id_max_seen = json_integer_value(e);
	}
}

/* Disposes every job, so that the next input starts from an empty engine. */
static void reset_engine(void)
{
	json_t *req = json_pack("{s:s}", "op", "jobs"), *reply, *ids, *e;
	size_t i;

	ferry__engine_client_closed(eng, DUMMY_CLIENT);
	reply = run_request(req, NULL, 0, 0);
	json_decref(req);
	ids = json_object_get(reply, "ids");
	json_array_foreach(ids, i, e)
	{
		json_t *d = json_pack("{s:s,s:O}", "op", "dispose", "id", e), *r;
		if (json_integer_value(e) > id_max_seen)
			id_max_seen = json_integer_value(e);
		r = run_request(d, NULL, 0, 0);
		if (!json_is_true(json_object_get(r, "ok")))
			die("cannot dispose a job between inputs",
			    json_string_value(json_object_get(r, "message")));
		json_decref(r);
		json_decref(d);
	}
	json_decref(reply);
}

/* Runs one frame the reader took, as server.c would. */
static void run_frame(const struct ferry_reader *in, const struct ferry_frame *f)
{
	json_t *reply;

	if (f->len < FERRY_FRAME_HDR || f->len > ferry__reader_pending(in) ||
	    f->len - FERRY_FRAME_HDR > FERRY_FRAME_MAX || f->binlen > f->len - FERRY_FRAME_HDR ||
	    f->bin + f->binlen != ferry__reader_data(in) + f->len)
		die("the reader took a frame of inconsistent lengths", NULL);
	if (!f->json)
		return; /* error reply; the connection stays usable */
	if (!json_is_object(f->json))
		die("the reader parsed a non-object", NULL);
	/* ids are relative to this input (see the top of the file) */
	rebase_request(f->json);
	reply = run_request(f->json, f->bin, f->binlen, 1);
	if (reply) {
		note_ids(reply);
		json_decref(reply);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	/* the same input is always cut the same way: determinism */
	size_t off = 0, piece = 1 + size % 61;
	struct ferry_reader in = {0};
	int rc = 0;

	if (ferry__db_begin(ferry__engine_db(eng)))
		die("cannot begin a transaction", NULL);
	while (rc >= 0 && off < size) {
		size_t n = size - off < piece ? size - off : piece;
		struct ferry_frame f;
		char err[512] = "";

		if (ferry__reader_append(&in, data + off, n))
			die("out of memory", NULL);
		off += n;
		for (;;) {
			rc = ferry__reader_next(&in, FERRY_FRAME_REQUEST, &f, err, sizeof(err));
			if (rc <= 0)
				break;
			run_frame(&in, &f);
			json_decref(f.json);
			ferry__reader_consume(&in, f.len);
		}
		if (rc < 0 && !err[0])
			die("the reader refused a header without a reason", NULL);
	}
	ferry__reader_free(&in);
	reset_engine();
	if (ferry__db_commit(ferry__engine_db(eng)))
		die("cannot commit", NULL);
	/* as the server after its commit; this starts nothing, only the tick does */
	if (ferry__engine_committed(eng))
		die("jobs are still queued after every job was disposed", NULL);
	/*
	 * Every job a successful submit created was seen in a reply; a failed
	 * submit was rolled back with its AUTOINCREMENT step. So the next
	 * input's first job is id_base + 1.
	 */
	id_base = id_max_seen;
	return 0;
}

/* ---- structure-aware mutator ---- */

struct span {
	size_t off, json_len, body_len;
};

/* The complete, well-formed request frames at the start of data. */
static size_t split_frames(const uint8_t *data, size_t size, struct span *v, size_t max,
			   size_t *end)
{
	size_t n = 0, off = 0;

	while (n < max && size - off >= FERRY_FRAME_HDR) {
		struct ferry_frame_hdr h;
		const char *why;

		if (ferry__hdr_decode(data + off, &h, &why) || h.type != FERRY_FRAME_REQUEST ||
		    size - off - FERRY_FRAME_HDR < h.body_len)
			break;
		v[n].off = off;
		v[n].json_len = h.json_len;
		v[n].body_len = h.body_len;
		n++;
		off += FERRY_FRAME_HDR + h.body_len;
	}
	*end = off;
	return n;
}

size_t LLVMFuzzerCustomMutator(uint8_t *data, size_t size, size_t max_size, unsigned int seed)
{
	struct span fr[MAX_FRAMES];
	size_t end, n, k, jl, bl, newjl, total;
	uint8_t *out, *json;
	unsigned int what;

	if (seed % MUTATE_RAW == 0)
		return LLVMFuzzerMutate(data, size, max_size);
	n = split_frames(data, size, fr, MAX_FRAMES, &end);
	if (n == 0)
		return LLVMFuzzerMutate(data, size, max_size);
	seed /= MUTATE_RAW;
	k = seed % n;
	seed /= (unsigned int)n;
	what = seed % 8;
	jl = fr[k].json_len;
	bl = fr[k].body_len - jl;

	if (what == 0 && n > 1) { /* drop frame k */
		size_t flen = FERRY_FRAME_HDR + fr[k].body_len;
		memmove(data + fr[k].off, data + fr[k].off + flen, size - fr[k].off - flen);
		return size - flen;
	}
	if (what == 1) { /* duplicate frame k after itself */
		size_t flen = FERRY_FRAME_HDR + fr[k].body_len;
		if (size + flen > max_size)
			return LLVMFuzzerMutate(data, size, max_size);
		memmove(data + fr[k].off + flen, data + fr[k].off, size - fr[k].off);
		return size + flen;
	}
	/* mutate the JSON of frame k and fix its header */
	if (max_size < size)
		return size;
	json = malloc(max_size + 1);
	out = malloc(max_size);
	if (!json || !out) {
		free(json);
		free(out);
		return size;
	}
	memcpy(json, data + fr[k].off + FERRY_FRAME_HDR, jl);
	newjl = LLVMFuzzerMutate(json, jl, max_size - (size - jl));
	total = size - jl + newjl;
	if (total > max_size) {
		free(json);
		free(out);
		return size;
	}
	memcpy(out, data, fr[k].off);
	ferry__hdr_encode(out + fr[k].off, FERRY_FRAME_REQUEST, (uint32_t)(newjl + bl),
			  (uint32_t)newjl);
	memcpy(out + fr[k].off + FERRY_FRAME_HDR, json, newjl);
	memcpy(out + fr[k].off + FERRY_FRAME_HDR + newjl, data + fr[k].off + FERRY_FRAME_HDR + jl,
	       size - (fr[k].off + FERRY_FRAME_HDR + jl));
	memcpy(data, out, total);
	free(json);
	free(out);
	return total;
}
