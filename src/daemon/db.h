/* db.h - the engine's database (db.c): all SQL lives there. */
#ifndef FERRY_DB_H
#define FERRY_DB_H

#include <stdint.h>

#include "job.h"

struct ferry_db;
struct db_job_row {
	int64_t id;
	enum ferry_job_status state;
	int kill_requested, disposed;
	const char *spec; /* JSON text, valid during the callback only */
	double started_at;
	char *native_id;
	int requeues;	  /* how often its start was lost with the runner */
	int64_t workflow; /* 0: none */
};
/*
 * Opens (creates) the database; with check, runs PRAGMA quick_check first
 * (after an engine stopped on a fatal error). A damaged file, a full disk
 * or an I/O error is named in err with the path.
 */
int ferry__db_open(const char *path, int check, struct ferry_db **db, char *err, size_t errlen);
void ferry__db_close(struct ferry_db *db);
/*
 * What the last failure said of the database's file or its disk ("cannot
 * write '/x/ferry.db': disk full", "database '/x/ferry.db' is corrupt
 * ..."), and its FERRY_E* code in *code (may be NULL); NULL when no
 * failure of the open transaction said anything of them.
 */
const char *ferry__db_why(struct ferry_db *db, int *code);
/* How many failures said something of the file or its disk so far. */
unsigned ferry__db_failures(struct ferry_db *db);
int ferry__db_begin(struct ferry_db *db);
int ferry__db_commit(struct ferry_db *db);
/*
 * Copies the WAL into the database when it holds 1,000 pages or more
 * (what SQLite does inside a commit, done here once the replies that
 * wait for the commit are sent); when busy (requests wait to run), only
 * once it holds 16,384. Outside a transaction only.
 */
void ferry__db_checkpoint(struct ferry_db *db, int busy);
/* A value of the meta table (malloc'd in *value, NULL when absent), or set one. */
int ferry__db_meta_get(struct ferry_db *db, const char *key, char **value);
int ferry__db_meta_set(struct ferry_db *db, const char *key, const char *value);
/* The open transaction acknowledges a request: commit it durably. */
void ferry__db_need_durable(struct ferry_db *db);
int ferry__db_savepoint(struct ferry_db *db);
int ferry__db_release(struct ferry_db *db);
int ferry__db_rollback_savepoint(struct ferry_db *db);
/*
 * How many savepoints were rolled back or jobs deleted: a row cached from
 * before (a job's environment, which goes with the last job naming it)
 * may be gone, and its id another's.
 */
unsigned ferry__db_undone(struct ferry_db *db);
/* 1 and *id when the key is known, 0 when not, <0 on error. */
int ferry__db_find_key(struct ferry_db *db, const char *key, int64_t *id);
/*
 * The ids a submit's batch of this key answered, as recorded: 1 and *ids
 * (malloc'd), 0 when the key is unknown, or a negative FERRY_E*.
 */
/*
 * The number of the stored environment env (JSON text), added when new:
 * 0, or a FERRY_E* code.
 */
int ferry__db_env_put(struct ferry_db *db, const char *env, int64_t *id);
/* Environment id's text into *env (malloc'd): 1, 0 when none, or a FERRY_E* code. */
int ferry__db_env_get(struct ferry_db *db, int64_t id, char **env);
int ferry__db_batch_find(struct ferry_db *db, const char *key, char **ids);
/* Records a batch's key and the ids it answers (JSON text), at time now. */
int ferry__db_batch_set(struct ferry_db *db, const char *key, const char *ids, double now);
/* Forgets the batch keys recorded before time `before`. */
int ferry__db_batch_gc(struct ferry_db *db, double before);
/*
 * A new job (its spec into job_specs, with env, the job_envs row its
 * base_env names, 0 for none), with the spec's disposal hours (< 0: none).
 */
int ferry__db_insert_job(struct ferry_db *db, const char *key, const char *name, const char *spec,
			 int64_t env, enum ferry_job_status st, double now, double hours,
			 int64_t *id);
int ferry__db_set_state(struct ferry_db *db, int64_t id, enum ferry_job_status st);
int ferry__db_set_started(struct ferry_db *db, int64_t id, double at, const char *native_id);
/* The highest job id the database handed out (0: none). 0 or an error. */
int ferry__db_max_job_id(struct ferry_db *db, int64_t *max);
/* *yes: whether a job not ended was started or handed (it has a job directory). */
int ferry__db_any_out(struct ferry_db *db, int *yes);
/*
 * Records job id, which the database had lost, as failed (unclear
 * condition) at time at with msg; the id sequence moves past it.
 */
int ferry__db_insert_lost(struct ferry_db *db, int64_t id, double at, double dispose_after,
			  const char *msg);
/*
 * The job never started after all: back in state st, with no start time or
 * native id, its start lost requeues times so far (kept across restarts).
 */
int ferry__db_set_requeued(struct ferry_db *db, int64_t id, enum ferry_job_status st, int requeues);
int ferry__db_set_native_id(struct ferry_db *db, int64_t id, const char *native_id);
int ferry__db_set_kill(struct ferry_db *db, int64_t id, int disposed);
/*
 * Records the end; the job is disposed of hours * hour_s seconds after
 * it (hours < 0: the stored spec's disposal_timeout_hours, else 168).
 */
int ferry__db_set_ended(struct ferry_db *db, int64_t id, enum ferry_job_status st,
			const struct job_result *r, double hours, double hour_s);
int ferry__db_delete_job(struct ferry_db *db, int64_t id);
/*
 * The failure log (set_ended with FERRY_FAILED, insert_lost): *mark gets
 * the number of the last failure recorded (0: none yet); numbers only
 * grow, also across restarts. failures_since calls fn, in the order they
 * were recorded, with each job of id <= upto (< 0: any) whose failure came
 * after mark: it costs the failures since mark.
 */
int ferry__db_failure_mark(struct ferry_db *db, int64_t *mark);
int ferry__db_failures_since(struct ferry_db *db, int64_t mark, int64_t upto,
			     void (*fn)(void *arg, int64_t id), void *arg);
/*
 * Iterates the jobs not ended yet, oldest first, but those waiting for
 * their dependencies and, with park_held, those held (FERRY_USER_ON_HOLD)
 * that are neither disposed nor being killed: a local engine leaves those
 * in the database (engine.c).
 */
int ferry__db_active_jobs(struct ferry_db *db, int park_held,
			  int (*cb)(void *arg, struct db_job_row *row), void *arg);
/* Job id if it has not ended, to cb: cb's return, FERRY_ENOJOB, or another error. */
int ferry__db_active_job(struct ferry_db *db, int64_t id,
			 int (*cb)(void *arg, struct db_job_row *row), void *arg);
/*
 * Ends the held jobs first..last that are neither disposed nor being
 * killed nor produce an output, killed before they started, in one
 * statement (disposal after their hours of hour_s seconds from now); how
 * many into *changed. 0, or FERRY_EINTERNAL.
 */
int ferry__db_kill_held(struct ferry_db *db, int64_t first, int64_t last, double now, double hour_s,
			size_t *changed);
/* Status of any job; 0, FERRY_ENOJOB. */
int ferry__db_status(struct ferry_db *db, int64_t id, enum ferry_job_status *st);
/*
 * The JOB_COLS row of job id (dbrow.h reads it) handed to cb, which
 * returns 0 or a negative code: cb's code, FERRY_ENOJOB when no job has
 * that id, or another FERRY_E* code.
 */
struct sqlite3_stmt;
int ferry__db_job_row(struct ferry_db *db, int64_t id,
		      int (*cb)(void *arg, struct sqlite3_stmt *row), void *arg);
/* What a listing takes (docs/protocol.md, "jobs"): the jobs not disposed that are ... */
struct db_list {
	unsigned states;  /* ... in one of these states (bit 1 << state); 0: any */
	int64_t after;	  /* ... with an id above it */
	double since;	  /* ... submitted at or after it; 0: any time */
	int64_t workflow; /* ... of this workflow; 0: any (then by ids, not rows) */
};
/*
 * The ids of a listing's next page, ascending: the first max (at most),
 * in *n. Each page is its own short read (keyset: the next page's after
 * is this one's last id), indexed by state.
 */
int ferry__db_list_ids(struct ferry_db *db, const struct db_list *l, int64_t *ids, size_t max,
		       size_t *n);
/*
 * A page of a listing of any state (l->states 0) as rows: the JOB_COLS
 * rows of the first max jobs l takes, in id order, each handed to cb
 * (0 to go on, 1 to stop, or a negative code, which is returned), in one
 * read: no ids first. *n: the rows read (the one cb stopped at too);
 * *last: the id of the last of them.
 */
int ferry__db_list_rows(struct ferry_db *db, const struct db_list *l, size_t max,
			int (*cb)(void *arg, struct sqlite3_stmt *row), void *arg, size_t *n,
			int64_t *last);
/*
 * The JOB_COLS rows of ids (ascending), in order, each handed to cb; a job
 * gone is skipped. cb returns 0 to go on, 1 to stop, or a negative code,
 * which is returned.
 */
int ferry__db_job_rows(struct ferry_db *db, const int64_t *ids, size_t n,
		       int (*cb)(void *arg, struct sqlite3_stmt *row), void *arg);
/*
 * The jobs not disposed with ids from first to last in one of states (bit
 * 1 << state; 0: any), each handed to cb with its state and its name (NULL:
 * none, or not asked for: names 0, which needs no row of the table read),
 * ascending by id within a state: a range of jobs_state for each state, or
 * of the primary key. cb returns 0 to go on, or a negative code, which is
 * returned. cb must not change the jobs table (collect, then act).
 */
int ferry__db_select_jobs(struct ferry_db *db, unsigned states, int names, int64_t first,
			  int64_t last,
			  int (*cb)(void *arg, int64_t id, const char *name, int state), void *arg);
/* Ids of ended jobs whose disposal deadline passed. */
int ferry__db_expired(struct ferry_db *db, double now, int64_t **ids, size_t *n);
/* Spec text of any job (malloc'd) and whether it ended. */
int ferry__db_spec(struct ferry_db *db, int64_t id, char **spec, int *ended);

/*
 * A transfer's row; strings malloc'd (ferry__db_tr_row_release). Kind and
 * state are stored as their names (ferry_transfer_state_name()), which
 * db.c alone converts.
 */
struct db_tr_row {
	int64_t id;
	char *key;	   /* the client's idempotency key, may be NULL */
	char *dir;	   /* its directory under the transfer root (unique name) */
	char *server_path; /* what the client is given */
	enum ferry_transfer_kind kind;
	enum ferry_transfer_state state; /* docs/transfers.md */
	int64_t received;		 /* bytes received over the connection, re-sends included */
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

/* ---- workflows (workflow.c; docs/architecture.md, "Workflows") ---- */
/* 1 and *id when a workflow has the key, 0 when none, <0 on error. */
int ferry__db_wf_find_key(struct ferry_db *db, const char *key, int64_t *id);
/* A new workflow's row (groups: JSON text or NULL; hours < 0: none). */
int ferry__db_wf_insert(struct ferry_db *db, const char *key, const char *name, double now,
			const char *groups, double hours, int64_t *id);
/* A job of a workflow: as ferry__db_insert_job, with its workflow and what it waits for. */
struct db_wf_job {
	const char *key, *name, *spec;
	enum ferry_job_status state;
	double now, hours; /* hours < 0: none */
	int64_t workflow;
	int waiting;	     /* how many of its dependencies are not done */
	const char *message; /* what it waits for; NULL: nothing */
	const char *deps;    /* the ids of its dependencies, a JSON array; NULL: none */
	int64_t env;	     /* the job_envs row its spec's base_env names; 0: none */
};
/* Its groups (JSON text, job ids as elements), once its jobs have ids. */
int ferry__db_wf_set_groups(struct ferry_db *db, int64_t wf, const char *groups);
int ferry__db_wf_insert_job(struct ferry_db *db, const struct db_wf_job *j, int64_t *id);
/* Job succ runs only after job pred ended done. */
int ferry__db_dep_add(struct ferry_db *db, int64_t pred, int64_t succ);
/* The jobs that depend on job id directly (malloc'd, ascending). */
int ferry__db_successors(struct ferry_db *db, int64_t id, int64_t **ids, size_t *n);
/* Every job downstream of job id that has not ended, each once (malloc'd, ascending). */
int ferry__db_descendants(struct ferry_db *db, int64_t id, int64_t **ids, size_t *n);
/*
 * One dependency of job id is done: 1 with how many are left and its
 * state, 0 when it has ended or waits for nothing, <0 on error.
 */
int ferry__db_waiting_down(struct ferry_db *db, int64_t id, int *left, enum ferry_job_status *st);
/* A job whose dependencies are done: state st, its waiting message gone. */
int ferry__db_release_job(struct ferry_db *db, int64_t id, enum ferry_job_status st);
/* How many of job id's dependencies are not done (0 for a job gone). */
int ferry__db_job_waiting(struct ferry_db *db, int64_t id, int64_t *waiting);
/* Jobs of workflow wf not disposed, per state. */
int ferry__db_wf_counts(struct ferry_db *db, int64_t wf, int64_t counts[FERRY_FAILED + 1]);
/* How many jobs of workflow wf, not disposed, have not ended. */
int ferry__db_wf_left(struct ferry_db *db, int64_t wf, int64_t *left);
/* A workflow's row, valid during the callback only. */
struct db_wf_row {
	int64_t id;
	const char *name, *groups; /* may be NULL */
	double submitted_at;
	int stopped; /* stopped, and not restarted since */
};
/* Workflow wf to cb: cb's return, FERRY_ENOJOB, or another error. */
int ferry__db_wf_get(struct ferry_db *db, int64_t wf,
		     int (*cb)(void *arg, const struct db_wf_row *w), void *arg);
/* Every workflow, by id, to cb (which returns 0 to go on or an error). */
int ferry__db_wf_list(struct ferry_db *db, int (*cb)(void *arg, const struct db_wf_row *w),
		      void *arg);
/* The ids of workflow wf's jobs not disposed above after, at most max (malloc'd). */
int ferry__db_wf_jobs(struct ferry_db *db, int64_t wf, int64_t after, size_t max, int64_t **ids,
		      size_t *n);
/* As ferry__db_select_jobs, of workflow wf's jobs only (by id, through jobs_workflow). */
int ferry__db_select_workflow(struct ferry_db *db, int64_t wf, unsigned states, int64_t first,
			      int64_t last,
			      int (*cb)(void *arg, int64_t id, const char *name, int state),
			      void *arg);
/* Deletes the workflows whose jobs are all gone. */
int ferry__db_wf_gc(struct ferry_db *db);
/* Marks workflow wf stopped (1) or not (0). */
int ferry__db_wf_set_stopped(struct ferry_db *db, int64_t wf, int stopped);
/* Deletes workflow wf's row (its jobs are disposed of apart). */
int ferry__db_wf_delete(struct ferry_db *db, int64_t wf);
/*
 * The jobs of workflow wf that a restart runs again, by id (so each after
 * its dependencies): the failed ones, but those downstream of a job
 * disposed of. *ids is malloc'd.
 */
int ferry__db_wf_rerunnable(struct ferry_db *db, int64_t wf, int64_t **ids, size_t *n);
/* How many jobs of workflow wf have a kill asked for and have not ended. */
int ferry__db_wf_killing(struct ferry_db *db, int64_t wf, int64_t *n);
/* 1 with *n when wf's last restart had key; 0 when not; or an error. */
int ferry__db_wf_restart_find(struct ferry_db *db, int64_t wf, const char *key, int64_t *n);
/* Records wf's restart of key, which ran n jobs again. */
int ferry__db_wf_restart_set(struct ferry_db *db, int64_t wf, const char *key, int64_t n);
/* The ids of job id's dependencies that are not done, ascending (malloc'd). */
int ferry__db_preds_not_done(struct ferry_db *db, int64_t id, int64_t **ids, size_t *n);
/*
 * Ended job id back to a job not started, in state st, waiting for
 * waiting dependencies, with message (may be NULL): its end, usage and
 * disposal time cleared. Nothing for a job not ended or being disposed.
 */
int ferry__db_rerun_job(struct ferry_db *db, int64_t id, enum ferry_job_status st, int waiting,
			const char *message);

#endif
