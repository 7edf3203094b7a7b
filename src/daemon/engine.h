/* engine.h - internal interfaces of ferryd (engine, database, server, backends). */
#ifndef FERRY_ENGINE_H
#define FERRY_ENGINE_H

#include <jansson.h>
#include <stdint.h>
#include <sys/types.h>

#include "cfg.h"
#include "ferry.h"

struct ferry_engine;
struct ferry_conn_s;

/* Outcome of a job as a backend reports it. */
struct job_result {
	enum ferry_exit_status exit_status;
	int exit_value;
	int signal;
	double cpu_user, cpu_sys, wall; /* -1: unknown */
	int64_t max_rss_kb;		/* -1: unknown */
	double started_at, ended_at;	/* 0: unknown */
	char message[512];
};

/* A job the engine still tracks in memory (every job not ended yet). */
struct job {
	int64_t id;
	enum ferry_job_status state;
	int cpus;
	int kill_requested;
	int dispose_requested;
	int fresh;    /* inserted by the open transaction: not startable before commit */
	int handed;   /* a DRMS has it (backends with poll): the DRMS reports its state */
	json_t *spec; /* normalised spec (owned) */
	/* backend data */
	double started_at;
	char *native_id;
	/* links */
	struct job *hnext;	   /* hash chain */
	struct job *qnext, *qprev; /* run queue (queued_active, not started) */
	int in_queue;
};

/* Whether the job has started: running or suspended. */
static inline int ferry__job_started(const struct job *j)
{
	return j->state == FERRY_RUNNING || j->state == FERRY_USER_SUSPENDED ||
	       j->state == FERRY_SYSTEM_SUSPENDED || j->state == FERRY_USER_SYSTEM_SUSPENDED;
}

/* Control actions a backend implements (append-only). */
enum backend_ctl { CTL_SUSPEND, CTL_RESUME, CTL_TERMINATE, CTL_HOLD, CTL_RELEASE };

/*
 * The backend interface. Append-only: new members go at the end and bump
 * version; optional members may be NULL.
 */
struct ferry_backend {
	int version;
	const char *name;
	/* Checks what a spec asks against the backend (queue, native spec...). */
	int (*check)(struct ferry_engine *eng, json_t *spec, char *err, size_t errlen);
	/* Starts a queued job. 0, or a FERRY_E* code with err set. */
	int (*start)(struct ferry_engine *eng, struct job *j, char *err, size_t errlen);
	/* Sends a control to a started job. */
	int (*control)(struct ferry_engine *eng, struct job *j, enum backend_ctl ctl, char *err,
		       size_t errlen);
	/*
	 * After an engine restart: re-attaches a job that may have been
	 * started. Returns 1 when attached (running or ended: the backend
	 * reports the end itself), 0 when the job never started.
	 */
	int (*adopt)(struct ferry_engine *eng, struct job *j);
	/* Number of job slots; 0: unlimited (the DRMS schedules). */
	int (*slots)(struct ferry_engine *eng);
	/* ---- version 2: backends in front of a DRMS ---- */
	/*
	 * With poll set, the DRMS queues, schedules and holds: the engine
	 * hands it every queued job, and held ones (hold in the spec), at
	 * once, and learns their states from poll, called every
	 * poll_interval seconds (the backend's default when the resource
	 * says none). A handed job's hold, release, suspend, resume and kill
	 * go through control. adopt then re-attaches a handed job by its
	 * native id and returns 0 when the DRMS never had it.
	 */
	void (*poll)(struct ferry_engine *eng);
	double poll_interval;
	/*
	 * Hands jobs over in one go (a job array where the DRMS has them).
	 * Each job ends up handed (ferry__engine_job_handed) or refused
	 * (ferry__engine_job_refused: it ends aborted, and j is freed);
	 * FERRY_EAGAIN leaves the rest queued to try again shortly, with err
	 * set. Optional: start per job when NULL.
	 */
	int (*hand)(struct ferry_engine *eng, struct job **jobs, size_t n, char *err,
		    size_t errlen);
	/*
	 * A client asks about a handed job that has not started: the backend
	 * may learn cheaply (no DRMS call) that it did, between two polls.
	 * Optional.
	 */
	void (*refresh)(struct ferry_engine *eng, struct job *j);
	/* ---- version 3: backends with a session or a library to load ---- */
	/*
	 * Called once when the engine starts, before any adopt: loads and
	 * opens what the backend needs. 0, or a FERRY_E* code with err set
	 * (the engine does not start; the client gets err). Optional.
	 */
	int (*open)(struct ferry_engine *eng, char *err, size_t errlen);
	/* Called once when the engine stops, if open succeeded. Optional. */
	void (*close)(struct ferry_engine *eng);
};

#define FERRY_BACKEND_VERSION 3

extern const struct ferry_backend ferry__backend_local;
extern const struct ferry_backend ferry__backend_slurm;
extern const struct ferry_backend ferry__backend_drmaa;

/*
 * ferryd of a drmaa resource runs itself again (execv, same argv) with
 * the glibc tunable a DRMAA library's static TLS may need; returns when
 * it is set already or the exec failed.
 */
void ferry__drmaa_reexec(char **argv);

/* The backend serving a scheduler name, or NULL. */
const struct ferry_backend *ferry__backend_find(const char *scheduler);

/* ---- engine (engine.c) ---- */
struct ferry_engine *ferry__engine_new(const char *resource, const char *state_dir,
				       const struct ferry_resource_cfg *cfg, char *err,
				       size_t errlen);
void ferry__engine_free(struct ferry_engine *eng);
const char *ferry__engine_state_dir(struct ferry_engine *eng);
const struct ferry_resource_cfg *ferry__engine_cfg(struct ferry_engine *eng);
/*
 * A reply's binary part: len bytes at p (malloc'd), or, with fd >= 0, len
 * bytes of that open file from off, which the server passes on from the
 * page cache (sendfile) without reading them, and then closes. Owned by
 * whoever holds it; ferry__bin_release frees either kind.
 */
struct ferry_bin {
	void *p;
	size_t len;
	int fd;
	int64_t off;
};
#define FERRY_BIN_INIT                                                                             \
	{                                                                                          \
		NULL, 0, -1, 0                                                                     \
	}
void ferry__bin_release(struct ferry_bin *b);

/* Starts queued jobs while slots are free; answers waiters; timers. */
void ferry__engine_tick(struct ferry_engine *eng);
/*
 * The loop committed: jobs submitted in the transaction may start now.
 * Returns 1 when some became startable (run the loop again at once).
 */
int ferry__engine_committed(struct ferry_engine *eng);
/* Milliseconds until the next timer, -1 for none. */
int ferry__engine_timeout_ms(struct ferry_engine *eng);
/* A backend reports that a job started / ended. */
void ferry__engine_job_started(struct ferry_engine *eng, struct job *j, double at);
void ferry__engine_job_ended(struct ferry_engine *eng, struct job *j, const struct job_result *r);
struct job *ferry__engine_job(struct ferry_engine *eng, int64_t id);
/* The backend learnt the job's native id (local: its pid) after the start. */
void ferry__engine_job_native_id(struct ferry_engine *eng, struct job *j, const char *native_id);
/* A DRMS took the job under native_id (backends with poll). */
void ferry__engine_job_handed(struct ferry_engine *eng, struct job *j, const char *native_id);
/* The DRMS refused the job: it ends aborted with msg; j is freed. */
void ferry__engine_job_refused(struct ferry_engine *eng, struct job *j, const char *msg);
/*
 * The DRMS reports a handed job in state st (queued, held, running or
 * suspended); at: when it started, 0 when unknown.
 */
void ferry__engine_job_state(struct ferry_engine *eng, struct job *j, enum ferry_job_status st,
			     double at);
/*
 * Commits what the loop did so far durably, and opens a new transaction:
 * a backend records its intent before it acts on a DRMS. 0 or an error.
 */
int ferry__engine_sync(struct ferry_engine *eng);
/*
 * A token naming this engine's database among all engines of the user
 * (random, kept in the database): DRMS jobs carry it with the job id.
 */
const char *ferry__engine_instance(struct ferry_engine *eng);
/* The resource's name. */
const char *ferry__engine_resource(struct ferry_engine *eng);
/* The backend re-attached a started job after an engine restart. */
void ferry__engine_job_adopted(struct ferry_engine *eng, struct job *j);
/* The database, for the server's group commit. */
struct ferry_db *ferry__engine_db(struct ferry_engine *eng);
/*
 * A connection went away: drop what deferred replies kept of it (its
 * pending wait), so that nothing answers a connection that is freed.
 */
void ferry__engine_conn_closed(struct ferry_engine *eng, struct ferry_conn_s *c);
int ferry__engine_shutting_down(struct ferry_engine *eng);
/* The transfer root (absolute, resolved) and a descriptor of it. */
const char *ferry__engine_transfer_root(struct ferry_engine *eng);
int ferry__engine_transfer_root_fd(struct ferry_engine *eng);
/* Seconds in an hour of disposal time: 3600, or $FERRYD_TEST_HOUR_SECONDS. */
double ferry__engine_hour(struct ferry_engine *eng);
/* A transfer became ready: jobs waiting only for their inputs may go on. */
void ferry__engine_inputs_changed(struct ferry_engine *eng, int64_t tid);
/* A transfer was removed: jobs still waiting for it are aborted. */
void ferry__engine_inputs_gone(struct ferry_engine *eng, int64_t tid);

/* ---- what the job requests change and read (requests.c) ---- */
struct ferry_reqdef;
const struct ferry_backend *ferry__engine_backend(struct ferry_engine *eng);
/* Where the jobs' directories are (their default output files). */
const char *ferry__engine_jobs_dir(struct ferry_engine *eng);
void ferry__engine_remove_job_files(struct ferry_engine *eng, int64_t id);
/* The engine stops after this iteration (jobs keep running). */
void ferry__engine_shutdown(struct ferry_engine *eng);
/*
 * Status of any job: an active one's from memory (a handed job not started
 * looked at again, cheaply), else the database's. 0, or FERRY_ENOJOB
 * (also for a job being disposed), or another error.
 */
int ferry__engine_job_status(struct ferry_engine *eng, int64_t id, enum ferry_job_status *st);
/*
 * Tracks a job the open transaction inserted; it becomes startable once
 * that transaction is committed. -1 when out of memory (j is freed).
 */
int ferry__engine_job_add_new(struct ferry_engine *eng, struct job *j);
/* Drops a job of the open transaction again (its request failed and rolled back). */
void ferry__engine_job_forget(struct ferry_engine *eng, struct job *j);
/* Queues the job to start (or to be handed to the DRMS) when its state says so. */
void ferry__engine_job_queue(struct ferry_engine *eng, struct job *j);
/* A new state for an active job; it joins or leaves the run queue accordingly. */
void ferry__engine_job_set_state(struct ferry_engine *eng, struct job *j, enum ferry_job_status to);
/* Ends a job that never started (killed or refused before its start); j is freed. */
void ferry__engine_job_end_unstarted(struct ferry_engine *eng, struct job *j,
				     enum ferry_exit_status es, const char *msg);
/*
 * A wait for jobs ids[0..n) (taken, malloc'd) on connection c until
 * deadline (monotonic seconds; <0: none): 0 when all have ended already
 * (answer now), 1 when parked (the tick in which the last ends, or the
 * deadline, answers through ferry__req_answer with def), or FERRY_ENOMEM.
 */
int ferry__engine_wait(struct ferry_engine *eng, struct ferry_conn_s *c,
		       const struct ferry_reqdef *def, int64_t *ids, size_t n, double deadline);

/* ---- job specs (spec.c) ---- */
/*
 * A normalised copy of a client's job spec (docs/protocol.md, "Job spec":
 * paths resolved, defaults filled in, the backend's check passed), or NULL
 * with *code and err set.
 */
json_t *ferry__spec_normalise(struct ferry_engine *eng, json_t *spec, char *err, size_t errlen,
			      int *code);
/*
 * The integer field key of o into *out: dflt when absent or null, else it
 * must be an integer from min to max (0, or FERRY_EINVAL with err set).
 */
int ferry__opt_int(json_t *o, const char *key, json_int_t min, json_int_t max, json_int_t dflt,
		   json_int_t *out, char *err, size_t errlen);

/* ---- transfers (transfer.c) ---- */
/* (The transfer requests' handlers are declared in dispatch.h.) */
/*
 * Whether path lies under the transfer root: 0 not, 1 (with *tid, and
 * *ready when its transfer is ready), or an error code with err set (no
 * such transfer, a bad name).
 */
int ferry__transfer_lookup(struct ferry_engine *eng, const char *path, int64_t *tid, int *ready,
			   char *err, size_t errlen);
/* A job ended: outputs of it that exist now are produced. */
void ferry__transfer_job_ended(struct ferry_engine *eng, int64_t job);
/* Removes expired transfers. */
void ferry__transfer_gc(struct ferry_engine *eng);

/* ---- DRMS commands (run.c) ---- */
/* What a command printed: NUL-terminated, malloc'd. */
struct ferry_output {
	char *data;
	size_t len, cap;
};
/*
 * Runs argv[0] (found on PATH) with argv, no shell, input on its stdin,
 * collecting its stdout and stderr; killed after timeout_s. Returns 0 with
 * *status as waitpid gives it, -ETIMEDOUT (killed), or another -errno
 * when it could not run (-ENOENT: not installed). out and err are always
 * set (release them with ferry__output_release).
 */
int ferry__run_command(char *const *argv, const char *input, size_t inlen, double timeout_s,
		       struct ferry_output *out, struct ferry_output *err, int *status);
void ferry__output_release(struct ferry_output *o);

/* ---- event loop (server.c) ---- */
typedef void (*ferry_fd_cb)(struct ferry_engine *eng, int fd, void *arg);
int ferry__loop_watch(int fd, ferry_fd_cb cb, void *arg);
void ferry__loop_unwatch(int fd);
/* File parts (struct ferry_bin with an fd) queued on all connections, not yet sent. */
int ferry__loop_files_queued(void);
/*
 * Queues a deferred reply on a connection, which takes requests again;
 * handlers answer through ferry__req_answer (dispatch.h), which calls it.
 */
void ferry__conn_reply(struct ferry_conn_s *c, json_t *reply);
int ferry__server_run(struct ferry_engine *eng, int listen_fd);

/* ---- database (db.c): all SQL lives there ---- */
struct ferry_db;
struct db_job_row {
	int64_t id;
	enum ferry_job_status state;
	int kill_requested, disposed;
	char *spec; /* JSON text, malloc'd */
	double started_at;
	char *native_id;
};
int ferry__db_open(const char *path, struct ferry_db **db, char *err, size_t errlen);
void ferry__db_close(struct ferry_db *db);
int ferry__db_begin(struct ferry_db *db);
int ferry__db_commit(struct ferry_db *db);
/* A value of the meta table (malloc'd in *value, NULL when absent), or set one. */
int ferry__db_meta_get(struct ferry_db *db, const char *key, char **value);
int ferry__db_meta_set(struct ferry_db *db, const char *key, const char *value);
/* The open transaction acknowledges a request: commit it durably. */
void ferry__db_need_durable(struct ferry_db *db);
int ferry__db_savepoint(struct ferry_db *db);
int ferry__db_release(struct ferry_db *db);
int ferry__db_rollback_savepoint(struct ferry_db *db);
/* 1 and *id when the key is known, 0 when not, <0 on error. */
int ferry__db_find_key(struct ferry_db *db, const char *key, int64_t *id);
int ferry__db_insert_job(struct ferry_db *db, const char *key, const char *name, const char *spec,
			 enum ferry_job_status st, double now, int64_t *id);
int ferry__db_set_state(struct ferry_db *db, int64_t id, enum ferry_job_status st);
int ferry__db_set_started(struct ferry_db *db, int64_t id, double at, const char *native_id);
int ferry__db_set_native_id(struct ferry_db *db, int64_t id, const char *native_id);
int ferry__db_set_kill(struct ferry_db *db, int64_t id, int disposed);
int ferry__db_set_ended(struct ferry_db *db, int64_t id, enum ferry_job_status st,
			const struct job_result *r, double dispose_after);
int ferry__db_delete_job(struct ferry_db *db, int64_t id);
/* Iterates the jobs not ended yet, oldest first. */
int ferry__db_active_jobs(struct ferry_db *db, int (*cb)(void *arg, struct db_job_row *row),
			  void *arg);
/* Status of any job; 0, FERRY_ENOJOB. */
int ferry__db_status(struct ferry_db *db, int64_t id, enum ferry_job_status *st);
/* Job object as in docs/protocol.md; NULL and FERRY_ENOJOB when unknown. */
int ferry__db_job_json(struct ferry_db *db, int64_t id, json_t **out);
/* Ids (or job objects) of jobs, optionally in one state. */
int ferry__db_list(struct ferry_db *db, int state, int detail, json_t *out);
/* Ids of ended jobs whose disposal deadline passed. */
int ferry__db_expired(struct ferry_db *db, double now, int64_t **ids, size_t *n);
/* Spec text of any job (malloc'd) and whether it ended. */
int ferry__db_spec(struct ferry_db *db, int64_t id, char **spec, int *ended);

/* A transfer's row; strings malloc'd (ferry__db_tr_row_release). */
struct db_tr_row {
	int64_t id;
	char *key;	   /* the client's idempotency key, may be NULL */
	char *dir;	   /* its directory under the transfer root (unique name) */
	char *server_path; /* what the client is given */
	char *kind;	   /* "send" or "register" */
	char *state;	   /* docs/transfers.md */
	int64_t received;  /* bytes received over the connection, re-sends included */
	double created_at, deadline, ended_at; /* ended_at 0: not ended */
	char *message;
};
void ferry__db_tr_row_release(struct db_tr_row *t);
/* The row and its doc (JSON: local paths, disposal hours, files). */
int ferry__db_tr_insert(struct ferry_db *db, const struct db_tr_row *t, const char *doc,
			int64_t *id);
int ferry__db_tr_set_doc(struct ferry_db *db, int64_t id, const char *doc);
/* *doc (free it); FERRY_ENOJOB when there is none. */
int ferry__db_tr_doc(struct ferry_db *db, int64_t id, char **doc);
/* A send's checksums of complete files, until its doc has them. */
int ferry__db_tr_hash_add(struct ferry_db *db, int64_t id, int64_t file, const char *hash);
int ferry__db_tr_hashes(struct ferry_db *db, int64_t id,
			void (*cb)(void *arg, int64_t file, const char *hash), void *arg);
int ferry__db_tr_hashes_clear(struct ferry_db *db, int64_t id);
/* 1 and *id when the key is known, 0 when not, <0 on error. */
int ferry__db_tr_find_key(struct ferry_db *db, const char *key, int64_t *id);
/* 0, FERRY_ENOJOB when there is no such transfer, or an error. */
int ferry__db_tr_by_id(struct ferry_db *db, int64_t id, struct db_tr_row *t);
int ferry__db_tr_by_dir(struct ferry_db *db, const char *dir, struct db_tr_row *t);
/* Writes state, received, deadline, ended_at and message. */
int ferry__db_tr_update(struct ferry_db *db, const struct db_tr_row *t);
int ferry__db_tr_delete(struct ferry_db *db, int64_t id);
int ferry__db_tr_list(struct ferry_db *db, int (*cb)(void *arg, struct db_tr_row *t), void *arg);
/* Transfers past their deadline that no unfinished job names. */
int ferry__db_tr_expired(struct ferry_db *db, double now, int64_t **ids, size_t *n);
/* Job <-> transfer references; role 0: input, 1: output. */
int ferry__db_ref_add(struct ferry_db *db, int64_t tid, int64_t job, int role);
int ferry__db_ref_jobs(struct ferry_db *db, int64_t tid, int role, int64_t **ids, size_t *n);
int ferry__db_ref_active_jobs(struct ferry_db *db, int64_t tid, int64_t **ids, size_t *n);
int ferry__db_ref_of_job(struct ferry_db *db, int64_t job, int role, int64_t **tids, size_t *n);
/* Number of the job's input transfers not ready yet, or <0. */
int ferry__db_ref_pending(struct ferry_db *db, int64_t job);

#endif
