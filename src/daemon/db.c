/* db.c - every SQL statement of ferryd. One SQLite file per resource, WAL. */
#include <errno.h>
#include <fcntl.h>
#include <sqlite3.h>
#include <unistd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dbrow.h"
#include "dbwhy.h"
#include "engine.h"
#include "jbytes.h"
#include "jobfields.h"
#include "util.h"

#define SCHEMA_VERSION 8

/* A job not ended as the engine takes it back (struct db_job_row) */
#define ACTIVE_COLS                                                                                \
	"id, state, kill_requested, disposed, "                                                    \
	"(SELECT spec FROM job_specs s WHERE s.id = jobs.id), started_at, native_id, requeues, "   \
	"workflow"
/*
 * Named: for "ORDER BY id" SQLite would rather scan the whole table in id
 * order than sort what the index finds (a million held rows read at start).
 */
#define LIVE "jobs INDEXED BY jobs_live"
/*
 * What jobs_live holds: the jobs not ended but those waiting for their
 * dependencies (workflow.c) and the held ones neither disposed nor being
 * killed, which a local engine leaves in the database (engine.c): a held
 * job's insert writes no entry (22,800 instructions a row instead of
 * 28,400, callgrind), nor does its kill remove one. The same expression
 * in the index and in the queries that use it, the state a literal, not
 * a parameter: SQLite uses a partial index only for a query whose WHERE
 * holds the index's terms.
 */
#define PARKED "3"
_Static_assert(FERRY_USER_ON_HOLD == 3, "PARKED is FERRY_USER_ON_HOLD");
#define LIVE_WHERE                                                                                 \
	"ended_at IS NULL AND waiting = 0 AND "                                                    \
	"(state != " PARKED " OR disposed != 0 OR kill_requested != 0)"
/* A workflow as struct db_wf_row takes it */
#define WF_COLS                                                                                    \
	"id, name, submitted_at, groups, "                                                         \
	"EXISTS (SELECT 1 FROM workflow_stops s WHERE s.wf = workflows.id)"

enum stmt_id {
	S_BEGIN,
	S_COMMIT,
	S_SAVEPOINT,
	S_RELEASE,
	S_ROLLBACK_SP,
	S_FIND_KEY,
	S_INSERT,
	S_INSERT_SPEC,
	S_ENV_PUT,
	S_ENV_FIND,
	S_ENV_GET,
	S_SET_STATE,
	S_SET_STARTED,
	S_SET_KILL,
	S_SET_NATIVE,
	S_SET_REQUEUED,
	S_MAX_ID,
	S_INSERT_LOST,
	S_ANY_OUT,
	S_SET_ENDED,
	S_DELETE,
	S_ACTIVE,
	S_ACTIVE_ALL,
	S_ACTIVE_ONE,
	S_KILL_HELD,
	S_KILL_HELD_LOG,
	S_STATUS,
	S_JOB,
	S_LIST_IDS,
	S_LIST_IDS_STATE,
	S_LIST_IDS_STATE_SINCE,
	S_JOB_RANGE,
	S_LIST_ROWS,
	S_SELECT,
	S_SELECT_STATE,
	S_SELECT_STATE_IDS,
	S_EXPIRED,
	S_SPEC,
	S_TR_INSERT,
	S_TR_FIND_KEY,
	S_TR_BY_ID,
	S_TR_BY_DIR,
	S_TR_UPDATE,
	S_TR_DELETE,
	S_TR_LIST,
	S_TR_EXPIRED,
	S_TR_DOC_SET,
	S_TR_DOC_GET,
	S_TR_DOC_DEL,
	S_TR_HASH_ADD,
	S_TR_HASH_LIST,
	S_TR_HASH_DEL,
	S_REF_ADD,
	S_REF_JOBS,
	S_REF_OF_JOB,
	S_REF_PENDING,
	S_REF_ACTIVE,
	S_REF_DEL_JOB,
	S_REF_DEL_TR,
	S_META_GET,
	S_META_SET,
	S_FAIL_ADD,
	S_FAIL_DEL_JOB,
	S_FAIL_CLEAR_LAST,
	S_FAIL_MARK,
	S_FAIL_SINCE,
	S_WF_FIND_KEY,
	S_WF_INSERT,
	S_WF_SET_GROUPS,
	S_WF_JOB_INSERT,
	S_DEP_ADD,
	S_DEP_SUCCS,
	S_WAITING_DOWN,
	S_RELEASE_JOB,
	S_DESCENDANTS,
	S_WF_COUNTS,
	S_WF_LEFT,
	S_WF_GET,
	S_WF_LIST,
	S_WF_JOBS,
	S_WF_GC,
	S_JOB_WAITING,
	S_WF_STOP,
	S_WF_UNSTOP,
	S_WF_DELETE,
	S_WF_RERUNNABLE,
	S_PREDS_NOT_DONE,
	S_RERUN_JOB,
	S_WF_KILLING,
	S_WF_RESTART_FIND,
	S_WF_RESTART_SET,
	S_LIST_IDS_WF,
	S_LIST_IDS_WF_STATE,
	S_SELECT_WF,
	S_BATCH_FIND,
	S_BATCH_SET,
	S_BATCH_GC,
	S_COUNT
};

/*
 * The held jobs of ids ?1 to ?2 a kill ends in one statement (S_KILL_HELD);
 * ?7: held. Not those of a workflow, whose end goes on to their successors
 * (one by one, in select.c). "state = ?7 AND disposed = 0" and the ids
 * make it a range of jobs_state, whose entries hold the id (rowid).
 */
#define KILL_HELD_WHERE                                                                            \
	"WHERE state = ?7 AND disposed = 0 AND kill_requested = 0 AND ended_at IS NULL AND "       \
	"id >= ?1 AND id <= ?2 AND waiting = 0 AND workflow IS NULL AND NOT EXISTS "               \
	"(SELECT 1 FROM transfer_refs r WHERE r.job = jobs.id AND r.role = 1)"

static const char *const sql[S_COUNT] = {
    [S_BEGIN] = "BEGIN IMMEDIATE",
    [S_COMMIT] = "COMMIT",
    [S_SAVEPOINT] = "SAVEPOINT sub",
    [S_RELEASE] = "RELEASE sub",
    [S_ROLLBACK_SP] = "ROLLBACK TO sub",
    [S_FIND_KEY] = "SELECT id FROM jobs WHERE skey = ?1 AND disposed = 0",
    /* a batch of a submit by its key (ferry__db_batch_find): the ids it answered */
    [S_BATCH_FIND] = "SELECT ids FROM submit_keys WHERE skey = ?1",
    [S_BATCH_SET] = "INSERT INTO submit_keys(skey, ids, at) VALUES (?1, ?2, ?3)",
    [S_BATCH_GC] = "DELETE FROM submit_keys WHERE at < ?1",
    /* the id is the engine's (db->next_id): no AUTOINCREMENT sequence to update (schema 7) */
    [S_INSERT] = "INSERT INTO jobs(id, skey, name, state, submitted_at, disposal_hours) "
		 "VALUES (?3, ?1, ?2, ?4, ?5, ?6)",
    /* a job's spec, apart from its row (schema 5), and its base_env's row (schema 8) */
    [S_INSERT_SPEC] = "INSERT INTO job_specs(id, spec, env) VALUES (?1, ?2, ?3)",
    /* the environments jobs start from, one row each however many jobs name it (jobenv.c) */
    [S_ENV_PUT] = "INSERT OR IGNORE INTO job_envs(env) VALUES (?1)",
    [S_ENV_FIND] = "SELECT id FROM job_envs WHERE env = ?1",
    [S_ENV_GET] = "SELECT env FROM job_envs WHERE id = ?1",
    [S_SET_STATE] = "UPDATE jobs SET state = ?2 WHERE id = ?1",
    [S_SET_STARTED] = "UPDATE jobs SET state = ?4, started_at = ?2, native_id = ?3 "
		      "WHERE id = ?1",
    [S_SET_NATIVE] = "UPDATE jobs SET native_id = ?2 WHERE id = ?1",
    /*
     * The highest job id handed out and kept (meta's job_seq: its row may
     * be gone), and the highest row: the next id is above both.
     */
    [S_MAX_ID] = "SELECT COALESCE((SELECT CAST(value AS INTEGER) FROM meta WHERE key = 'job_seq'), "
		 "0), COALESCE((SELECT max(id) FROM jobs), 0)",
    /* a job not ended that was started or handed: it has a job directory */
    [S_ANY_OUT] = "SELECT EXISTS (SELECT 1 FROM jobs WHERE ended_at IS NULL AND waiting = 0 "
		  "AND (started_at IS NOT NULL OR native_id IS NOT NULL))",
    [S_INSERT_LOST] = "INSERT INTO jobs(id, state, exit_status, submitted_at, ended_at, "
		      "message, dispose_after) VALUES (?1, ?2, ?3, ?4, ?4, ?5, ?6)",
    [S_SET_REQUEUED] = "UPDATE jobs SET state = ?2, started_at = NULL, native_id = NULL, "
		       "requeues = ?3 WHERE id = ?1",
    /* a disposed job gives its key back at once */
    [S_SET_KILL] = "UPDATE jobs SET kill_requested = 1, disposed = ?2, "
		   "skey = CASE WHEN ?2 THEN NULL ELSE skey END WHERE id = ?1",
    [S_SET_ENDED] = "UPDATE jobs SET state = ?2, exit_status = ?3, exit_value = ?4, "
		    "signal = ?5, cpu_user = ?6, cpu_sys = ?7, max_rss_kb = ?8, wall = ?9, "
		    "started_at = COALESCE(started_at, ?10), ended_at = ?11, message = ?12, "
		    /* a job kept without its spec (engine.c) takes its hours from its row */
		    "dispose_after = ?11 + ?14 * COALESCE(?13, disposal_hours, 168) WHERE id = ?1",
    [S_DELETE] = "DELETE FROM jobs WHERE id = ?1",
    /*
     * The jobs a local engine keeps in memory at its start: jobs_live,
     * every entry. A DRMS engine keeps the held ones too (S_ACTIVE_ALL),
     * a range of jobs_state.
     */
    [S_ACTIVE] = "SELECT " ACTIVE_COLS " FROM " LIVE " WHERE " LIVE_WHERE " ORDER BY 1",
    [S_ACTIVE_ALL] = "SELECT " ACTIVE_COLS " FROM " LIVE " WHERE " LIVE_WHERE
		     " UNION ALL SELECT " ACTIVE_COLS " FROM jobs INDEXED BY jobs_state WHERE "
		     "state = " PARKED " AND disposed = 0 AND kill_requested = 0 AND "
		     "ended_at IS NULL AND waiting = 0 ORDER BY 1",
    /* one job not ended that the engine left in the database */
    [S_ACTIVE_ONE] = "SELECT " ACTIVE_COLS " FROM jobs WHERE id = ?1 AND ended_at IS NULL",
    /*
     * Kills the held jobs of ids ?1..?2 the engine keeps in the database
     * only, as ending each one would (ferry__db_set_ended of a job killed
     * before it started), in one statement. A job that produces an
     * output is left to the engine: its end tells the transfer.
     */
    [S_KILL_HELD] = "UPDATE jobs SET state = ?3, exit_status = ?4, signal = 0, ended_at = ?5, "
		    "message = 'killed by user before it started', "
		    "dispose_after = ?5 + ?6 * COALESCE(disposal_hours, 168) " KILL_HELD_WHERE,
    /* the same jobs' failures, logged before they end (ferry__db_wait_failures) */
    [S_KILL_HELD_LOG] =
	"INSERT INTO failures(job) SELECT id FROM jobs " KILL_HELD_WHERE " ORDER BY id",
    [S_STATUS] = "SELECT state FROM jobs WHERE id = ?1 AND disposed = 0",
    [S_JOB] = "SELECT " JOB_COLS " FROM jobs JOIN job_specs USING (id) WHERE id = ?1 AND "
	      "disposed = 0",
    /*
     * A listing's page (ferry__db_list_ids): keyset by id, each page its
     * own short read. By state through jobs_state, which holds the id
     * (rowid) of each row: "state = ? AND id > ?" is a range of it, and
     * without a time bound the index alone answers.
     */
    [S_LIST_IDS] = "SELECT id FROM jobs WHERE id > ?1 AND disposed = 0 AND submitted_at >= ?2 "
		   "ORDER BY id LIMIT ?3",
    [S_LIST_IDS_STATE] = "SELECT id FROM jobs WHERE state = ?4 AND disposed = 0 AND id > ?1 "
			 "ORDER BY id LIMIT ?3",
    [S_LIST_IDS_STATE_SINCE] = "SELECT id FROM jobs WHERE state = ?4 AND disposed = 0 AND "
			       "id > ?1 AND submitted_at >= ?2 ORDER BY id LIMIT ?3",
    [S_JOB_RANGE] = "SELECT " JOB_COLS " FROM jobs JOIN job_specs USING (id) WHERE id >= ?1 AND "
		    "id <= ?2 AND disposed = 0 "
		    "ORDER BY id",
    /* a page of job objects of any state: its rows in one read, no ids first */
    [S_LIST_ROWS] = "SELECT " JOB_COLS
		    " FROM jobs JOIN job_specs USING (id) WHERE id > ?1 AND disposed = 0 AND "
		    "submitted_at >= ?2 ORDER BY id LIMIT ?3",
    /* a control by selection (ferry__db_select_jobs): by id, or by state through jobs_state */
    [S_SELECT] = "SELECT id, name, state FROM jobs WHERE id >= ?1 AND id <= ?2 AND disposed = 0",
    [S_SELECT_STATE] = "SELECT id, name, state FROM jobs WHERE state = ?3 AND disposed = 0 AND "
		       "id >= ?1 AND id <= ?2",
    /* without the name, jobs_state alone answers: no row of the table is read */
    [S_SELECT_STATE_IDS] = "SELECT id, NULL, state FROM jobs WHERE state = ?3 AND disposed = 0 "
			   "AND id >= ?1 AND id <= ?2",
    [S_EXPIRED] = "SELECT id FROM jobs WHERE dispose_after IS NOT NULL AND "
		  "dispose_after < ?1",
    [S_SPEC] = "SELECT spec, ended_at IS NOT NULL FROM jobs JOIN job_specs USING (id) "
	       "WHERE id = ?1 AND disposed = 0",
    [S_TR_INSERT] = "INSERT INTO transfers(tkey, dir, server_path, kind, state, created_at, "
		    "deadline) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
    [S_TR_FIND_KEY] = "SELECT id FROM transfers WHERE tkey = ?1",
    [S_TR_BY_ID] = "SELECT " TR_COLS " FROM transfers WHERE id = ?1",
    [S_TR_BY_DIR] = "SELECT " TR_COLS " FROM transfers WHERE dir = ?1",
    [S_TR_UPDATE] = "UPDATE transfers SET state = ?2, received = ?3, deadline = ?4, "
		    "ended_at = ?5, message = ?6 WHERE id = ?1",
    [S_TR_DELETE] = "DELETE FROM transfers WHERE id = ?1",
    [S_TR_LIST] = "SELECT " TR_COLS " FROM transfers ORDER BY id",
    /* nothing an unfinished job still names is collected */
    [S_TR_EXPIRED] = "SELECT t.id FROM transfers t WHERE t.deadline < ?1 AND NOT EXISTS "
		     "(SELECT 1 FROM transfer_refs r JOIN jobs j ON j.id = r.job "
		     "WHERE r.tid = t.id AND j.ended_at IS NULL)",
    [S_TR_DOC_SET] = "INSERT OR REPLACE INTO transfer_docs(tid, doc) VALUES (?1, ?2)",
    [S_TR_DOC_GET] = "SELECT doc FROM transfer_docs WHERE tid = ?1",
    [S_TR_DOC_DEL] = "DELETE FROM transfer_docs WHERE tid = ?1",
    [S_TR_HASH_ADD] = "INSERT OR REPLACE INTO transfer_hashes(tid, file, hash) VALUES (?1, ?2, ?3)",
    [S_TR_HASH_LIST] = "SELECT file, hash FROM transfer_hashes WHERE tid = ?1",
    [S_TR_HASH_DEL] = "DELETE FROM transfer_hashes WHERE tid = ?1",
    [S_REF_ADD] = "INSERT OR IGNORE INTO transfer_refs(tid, job, role) VALUES (?1, ?2, ?3)",
    [S_REF_JOBS] = "SELECT job FROM transfer_refs WHERE tid = ?1 AND role = ?2 ORDER BY job",
    [S_REF_OF_JOB] = "SELECT tid FROM transfer_refs WHERE job = ?1 AND role = ?2",
    /* the states in which jobs may use a transfer (ferry_transfer_state_name()) */
    [S_REF_PENDING] = "SELECT count(*) FROM transfer_refs r JOIN transfers t ON t.id = r.tid "
		      "WHERE r.job = ?1 AND r.role = 0 AND t.state NOT IN "
		      "('ready', 'produced', 'retrieved')",
    [S_REF_ACTIVE] = "SELECT r.job FROM transfer_refs r JOIN jobs j ON j.id = r.job "
		     "WHERE r.tid = ?1 AND j.ended_at IS NULL ORDER BY r.job",
    [S_REF_DEL_JOB] = "DELETE FROM transfer_refs WHERE job = ?1",
    [S_REF_DEL_TR] = "DELETE FROM transfer_refs WHERE tid = ?1",
    [S_META_GET] = "SELECT value FROM meta WHERE key = ?1",
    [S_META_SET] = "INSERT OR REPLACE INTO meta(key, value) VALUES (?1, ?2)",
    /* the failure log (schema comment): a wait for all jobs reads what failed since its mark */
    [S_FAIL_ADD] = "INSERT INTO failures(job) VALUES (?1)",
    /* never the last row: the next number stays above every mark handed out */
    [S_FAIL_DEL_JOB] = "DELETE FROM failures WHERE job = ?1 AND "
		       "seq < (SELECT max(seq) FROM failures)",
    /* the last row stays, for its number, but no longer names a job (job 0) */
    [S_FAIL_CLEAR_LAST] = "UPDATE failures SET job = 0 WHERE job = ?1 AND "
			  "seq = (SELECT max(seq) FROM failures)",
    [S_FAIL_MARK] = "SELECT COALESCE(max(seq), 0) FROM failures",
    [S_FAIL_SINCE] = "SELECT job FROM failures WHERE seq > ?1 AND job > 0 AND job <= ?2 "
		     "ORDER BY seq",
    /* ---- workflows (workflow.c) ---- */
    [S_WF_FIND_KEY] = "SELECT id FROM workflows WHERE skey = ?1",
    [S_WF_INSERT] = "INSERT INTO workflows(skey, name, submitted_at, groups, disposal_hours) "
		    "VALUES (?1, ?2, ?3, ?4, ?5)",
    [S_WF_SET_GROUPS] = "UPDATE workflows SET groups = ?2 WHERE id = ?1",
    [S_WF_JOB_INSERT] =
	"INSERT INTO jobs(id, skey, name, state, submitted_at, disposal_hours, "
	"workflow, waiting, message, deps) VALUES (?3, ?1, ?2, ?4, ?5, ?6, ?7, ?8, ?9, "
	"?10)",
    [S_DEP_ADD] = "INSERT INTO job_deps(pred, succ) VALUES (?1, ?2)",
    [S_DEP_SUCCS] = "SELECT succ FROM job_deps WHERE pred = ?1 ORDER BY succ",
    /* one dependency of a job not ended is done: how many are left, and its state */
    [S_WAITING_DOWN] = "UPDATE jobs SET waiting = waiting - 1 WHERE id = ?1 AND "
		       "ended_at IS NULL AND waiting > 0 RETURNING waiting, state",
    [S_RELEASE_JOB] = "UPDATE jobs SET state = ?2, message = NULL WHERE id = ?1",
    /*
     * Every job downstream of ?1 not ended yet, each once however many
     * paths lead to it: SQLite runs the recursion as a queue, so a deep
     * chain costs no stack.
     */
    [S_DESCENDANTS] = "WITH RECURSIVE d(id) AS (SELECT succ FROM job_deps WHERE pred = ?1 "
		      "UNION SELECT s.succ FROM job_deps s JOIN d ON s.pred = d.id) "
		      "SELECT d.id FROM d JOIN jobs j ON j.id = d.id WHERE j.ended_at IS NULL "
		      "ORDER BY d.id",
    [S_WF_COUNTS] = "SELECT state, count(*) FROM jobs WHERE workflow = ?1 AND disposed = 0 "
		    "GROUP BY state",
    [S_WF_LEFT] = "SELECT count(*) FROM jobs WHERE workflow = ?1 AND disposed = 0 AND "
		  "ended_at IS NULL",
    [S_WF_GET] = "SELECT " WF_COLS " FROM workflows WHERE id = ?1",
    [S_WF_LIST] = "SELECT " WF_COLS " FROM workflows WHERE id > ?1 ORDER BY id",
    [S_WF_JOBS] = "SELECT id FROM jobs WHERE workflow = ?1 AND disposed = 0 AND id > ?2 "
		  "ORDER BY id LIMIT ?3",
    /* a workflow goes with its last job */
    [S_WF_GC] = "DELETE FROM workflows WHERE NOT EXISTS "
		"(SELECT 1 FROM jobs WHERE jobs.workflow = workflows.id)",
    [S_JOB_WAITING] = "SELECT waiting FROM jobs WHERE id = ?1",
    [S_WF_STOP] = "INSERT OR IGNORE INTO workflow_stops(wf) VALUES (?1)",
    [S_WF_UNSTOP] = "DELETE FROM workflow_stops WHERE wf = ?1",
    [S_WF_DELETE] = "DELETE FROM workflows WHERE id = ?1",
    /*
     * The jobs of workflow ?1 a restart runs again: those ended failed
     * (?2), but the ones downstream of a dependency disposed of, which
     * can never be done again.
     */
    [S_WF_RERUNNABLE] =
	"WITH RECURSIVE blocked(id) AS (SELECT j.id FROM jobs j JOIN job_deps d ON d.succ = j.id "
	"WHERE j.workflow = ?1 AND NOT EXISTS (SELECT 1 FROM jobs p WHERE p.id = d.pred AND "
	"p.disposed = 0) UNION SELECT d.succ FROM job_deps d JOIN blocked b ON d.pred = b.id) "
	"SELECT id FROM jobs WHERE workflow = ?1 AND disposed = 0 AND state = ?2 AND "
	"id NOT IN (SELECT id FROM blocked) ORDER BY id",
    [S_PREDS_NOT_DONE] = "SELECT d.pred FROM job_deps d JOIN jobs p ON p.id = d.pred "
			 "WHERE d.succ = ?1 AND p.state != ?2 ORDER BY d.pred",
    /* an ended job back to what a job of a workflow is when submitted */
    [S_RERUN_JOB] = "UPDATE jobs SET state = ?2, waiting = ?3, message = ?4, exit_status = 0, "
		    "exit_value = NULL, signal = NULL, cpu_user = NULL, cpu_sys = NULL, "
		    "max_rss_kb = NULL, wall = NULL, started_at = NULL, ended_at = NULL, "
		    "native_id = NULL, kill_requested = 0, dispose_after = NULL, requeues = 0 "
		    "WHERE id = ?1 AND ended_at IS NOT NULL AND disposed = 0",
    [S_WF_KILLING] = "SELECT count(*) FROM jobs WHERE workflow = ?1 AND disposed = 0 AND "
		     "ended_at IS NULL AND kill_requested = 1",
    [S_WF_RESTART_FIND] = "SELECT n FROM workflow_restarts WHERE wf = ?1 AND rkey = ?2",
    [S_WF_RESTART_SET] =
	"INSERT OR REPLACE INTO workflow_restarts(wf, rkey, n) VALUES (?1, ?2, ?3)",
    /* a listing of one workflow's jobs (ferry__db_list_ids), through jobs_workflow */
    [S_LIST_IDS_WF] = "SELECT id FROM jobs WHERE workflow = ?5 AND id > ?1 AND disposed = 0 AND "
		      "submitted_at >= ?2 ORDER BY id LIMIT ?3",
    /* a selection of one workflow's jobs (ferry__db_select_workflow) */
    [S_SELECT_WF] = "SELECT id, name, state FROM jobs WHERE workflow = ?3 AND disposed = 0 AND "
		    "id >= ?1 AND id <= ?2 ORDER BY id",
    [S_LIST_IDS_WF_STATE] = "SELECT id FROM jobs WHERE workflow = ?5 AND state = ?4 AND id > ?1 "
			    "AND disposed = 0 AND submitted_at >= ?2 ORDER BY id LIMIT ?3",
};

/*
 * The jobs table's columns, for its creation and its rebuild (schema 7).
 * Ids are the engine's own (db->next_id), never handed out twice: the
 * highest kept in meta's job_seq once its row may go. Not AUTOINCREMENT,
 * whose sequence row each insert read and rewrote, and the key's index
 * partial (schema_late): a job without a key has no entry. Together
 * 36,400 instructions a row became 28,400 (callgrind). requeues: how often its start
 * was lost with the job runner (local); disposal_hours: the spec's
 * disposal_timeout_hours, so that its end need not read the spec;
 * workflow: its workflow (NULL: none), waiting: how many of its
 * dependencies are not done (schema 6); deps: the ids of its
 * dependencies as a JSON array, for info, written once, never read back.
 */
#define JOBS_COLUMNS                                                                               \
	" id INTEGER PRIMARY KEY, skey TEXT, name TEXT, state INTEGER NOT NULL,"                   \
	" exit_status INTEGER NOT NULL DEFAULT 0, exit_value INTEGER, signal INTEGER,"             \
	" cpu_user REAL, cpu_sys REAL, max_rss_kb INTEGER, wall REAL,"                             \
	" submitted_at REAL NOT NULL, started_at REAL, ended_at REAL,"                             \
	" message TEXT, native_id TEXT,"                                                           \
	" kill_requested INTEGER NOT NULL DEFAULT 0, disposed INTEGER NOT NULL DEFAULT 0,"         \
	" dispose_after REAL, requeues INTEGER NOT NULL DEFAULT 0, disposal_hours REAL,"           \
	" workflow INTEGER, waiting INTEGER NOT NULL DEFAULT 0, deps TEXT"

/* Every column of jobs, in JOBS_COLUMNS' order. */
#define JOBS_NAMES                                                                                 \
	"id, skey, name, state, exit_status, exit_value, signal, cpu_user, cpu_sys, "              \
	"max_rss_kb, wall, submitted_at, started_at, ended_at, message, native_id, "               \
	"kill_requested, disposed, dispose_after, requeues, disposal_hours, workflow, waiting, "   \
	"deps"

static const char schema[] =
    "CREATE TABLE IF NOT EXISTS meta(key TEXT PRIMARY KEY, value TEXT NOT NULL);"
    "CREATE TABLE IF NOT EXISTS jobs(" JOBS_COLUMNS ");"
    /*
     * The spec (a few hundred bytes to kilobytes of JSON) apart from the
     * row, which each change of state rewrites whole: a kill of a million
     * held jobs rewrote 600 MB of rows holding their specs (schema 5).
     */
    "CREATE TABLE IF NOT EXISTS job_specs(id INTEGER PRIMARY KEY, spec TEXT NOT NULL);"
    /*
     * A spec's base_env names one (job_specs.env, from schema 8, which
     * db_migrate adds here as to an older database): it goes with the
     * last job that names it (schema_late's trigger).
     */
    "CREATE TABLE IF NOT EXISTS job_envs(id INTEGER PRIMARY KEY, env TEXT NOT NULL UNIQUE);"
    "CREATE TABLE IF NOT EXISTS transfers("
    " id INTEGER PRIMARY KEY AUTOINCREMENT,"
    " tkey TEXT UNIQUE,"
    " dir TEXT NOT NULL UNIQUE,"
    " server_path TEXT NOT NULL,"
    " kind TEXT NOT NULL,"
    " state TEXT NOT NULL,"
    " received INTEGER NOT NULL DEFAULT 0,"
    " created_at REAL NOT NULL, deadline REAL NOT NULL, ended_at REAL, message TEXT);"
    /*
     * The manifest apart from the row, which every chunk updates: a row
     * holding a tree's manifest of megabytes made each update rewrite it.
     * A send's checksums, known file by file, are rows of their own until
     * it is complete; then they join its manifest.
     */
    "CREATE TABLE IF NOT EXISTS transfer_docs(tid INTEGER PRIMARY KEY, doc TEXT NOT NULL);"
    "CREATE TABLE IF NOT EXISTS transfer_hashes("
    " tid INTEGER NOT NULL, file INTEGER NOT NULL, hash TEXT NOT NULL,"
    " PRIMARY KEY(tid, file));"
    "CREATE TABLE IF NOT EXISTS transfer_refs("
    " tid INTEGER NOT NULL, job INTEGER NOT NULL, role INTEGER NOT NULL,"
    " PRIMARY KEY(tid, job, role));"
    "CREATE INDEX IF NOT EXISTS transfer_refs_job ON transfer_refs(job);"
    /*
     * Every failure of a job, numbered in the order the engine recorded it:
     * a wait for all jobs learns the last number in each answer and its
     * next request counts the failures after it, so a failure between two
     * requests, or while no engine ran, is not missed. Not ended_at: a
     * cluster's end time may precede the recording by minutes. Its row goes
     * with the job's, except the last row, which stays with job 0 (no job)
     * so that the next number (the rowid's max + 1) stays above every one
     * handed out; not AUTOINCREMENT,
     * whose sqlite_sequence update made a kill of 100,000 held jobs cost
     * 3 us a job more instead of 1.5-2. No schema version: an older database
     * gains the table at open, empty, and loses nothing without it.
     */
    "CREATE TABLE IF NOT EXISTS failures(seq INTEGER PRIMARY KEY,"
    " job INTEGER NOT NULL);"
    "CREATE INDEX IF NOT EXISTS failures_job ON failures(job);"
    /*
     * A workflow (schema 6, workflow.c): its jobs are rows of jobs, its
     * dependencies rows of job_deps, found from either end: by pred when
     * a job ends (its successors), by succ for info (its dependencies).
     */
    "CREATE TABLE IF NOT EXISTS workflows("
    " id INTEGER PRIMARY KEY AUTOINCREMENT,"
    " skey TEXT UNIQUE, name TEXT, submitted_at REAL NOT NULL,"
    " groups TEXT, disposal_hours REAL);"
    "CREATE TABLE IF NOT EXISTS job_deps(pred INTEGER NOT NULL, succ INTEGER NOT NULL,"
    " PRIMARY KEY(pred, succ)) WITHOUT ROWID;"
    "CREATE INDEX IF NOT EXISTS job_deps_succ ON job_deps(succ);"
    /*
     * The workflows stopped (ferry workflow stop) and not restarted since.
     * A table rather than a column: no schema version, as for failures; an
     * older engine ignores it, and one of schema 6 gains it empty.
     */
    "CREATE TABLE IF NOT EXISTS workflow_stops(wf INTEGER PRIMARY KEY);"
    /* the last restart of each workflow, by its key: a replay answers what it did */
    "CREATE TABLE IF NOT EXISTS workflow_restarts(wf INTEGER PRIMARY KEY, rkey TEXT NOT NULL,"
    " n INTEGER NOT NULL);"
    "CREATE TRIGGER IF NOT EXISTS workflows_stop_gone AFTER DELETE ON workflows "
    "BEGIN DELETE FROM workflow_stops WHERE wf = old.id;"
    " DELETE FROM workflow_restarts WHERE wf = old.id; END;"
    /*
     * The keys of the batches of a submit, each with the ids it answered
     * (runs "[[first,last],...]"): a replay after a lost reply answers
     * them again. One key a batch of thousands of jobs rather than one a
     * job: a job's own key, looked up and indexed, was a fifth of what a
     * bulk submit cost the database. A table: no schema version.
     */
    "CREATE TABLE IF NOT EXISTS submit_keys(skey TEXT PRIMARY KEY, ids TEXT NOT NULL,"
    " at REAL NOT NULL) WITHOUT ROWID;"
    /* a new database too is of schema 7 until migrations[7] (job_specs.env) */
    "INSERT OR IGNORE INTO meta VALUES('schema', '7');";

/*
 * What names schema 6's columns, which an older database gains only in
 * db_migrate, and what goes with the jobs table, which schema 7 rebuilt.
 */
static const char schema_late[] =
    "CREATE TRIGGER IF NOT EXISTS jobs_spec_gone AFTER DELETE ON jobs "
    "BEGIN DELETE FROM job_specs WHERE id = old.id; END;"
    /*
     * An environment goes in the statement that deletes the last job
     * naming it (schema 8): one probe of job_specs_env a job deleted, and
     * an index entry only for the jobs that name one.
     */
    "CREATE INDEX IF NOT EXISTS job_specs_env ON job_specs(env) WHERE env IS NOT NULL;"
    "CREATE TRIGGER IF NOT EXISTS job_specs_env_gone AFTER DELETE ON job_specs "
    "WHEN old.env IS NOT NULL BEGIN DELETE FROM job_envs WHERE id = old.env AND "
    "NOT EXISTS (SELECT 1 FROM job_specs WHERE env = old.env); END;"
    /* only the jobs ended have a disposal time: a new job's insert writes no entry */
    "CREATE INDEX IF NOT EXISTS jobs_dispose ON jobs(dispose_after) "
    "WHERE dispose_after IS NOT NULL;"
    /* a listing by state costs its result, not the table (ferry__db_list_ids) */
    "CREATE INDEX IF NOT EXISTS jobs_state ON jobs(state) WHERE disposed = 0;"
    "CREATE TRIGGER IF NOT EXISTS jobs_deps_gone AFTER DELETE ON jobs "
    "BEGIN DELETE FROM job_deps WHERE succ = old.id; END;"
    /*
     * the jobs not ended by state but those waiting for their dependencies:
     * what an engine loads at its start (S_ACTIVE)
     */
    "CREATE INDEX IF NOT EXISTS jobs_live ON jobs(state, disposed, kill_requested) "
    "WHERE " LIVE_WHERE ";"
    "CREATE INDEX IF NOT EXISTS jobs_workflow ON jobs(workflow) WHERE workflow IS NOT NULL;"
    /* schema 7: a submission key is unique among the jobs that have one */
    "CREATE UNIQUE INDEX IF NOT EXISTS jobs_skey ON jobs(skey) WHERE skey IS NOT NULL;";

/*
 * What takes a database of schema N to N + 1, at index N, each in a
 * transaction of its own: an older database goes through each in turn.
 */
static const char *const migrations[SCHEMA_VERSION] = {
    [1] = /* schema 1 kept the manifest in the transfer's row */
    "BEGIN IMMEDIATE;"
    "INSERT INTO transfer_docs(tid, doc) SELECT id, doc FROM transfers;"
    "ALTER TABLE transfers DROP COLUMN doc;"
    "UPDATE meta SET value = '2' WHERE key = 'schema';"
    "COMMIT;",
    [2] = /* schema 2 kept a job's runner deaths in memory: an engine restart forgot them */
    "BEGIN IMMEDIATE;"
    "ALTER TABLE jobs ADD COLUMN requeues INTEGER NOT NULL DEFAULT 0;"
    "UPDATE meta SET value = '3' WHERE key = 'schema';"
    "COMMIT;",
    [3] = /* schema 3 listed jobs by state with a scan of the table */
    "BEGIN IMMEDIATE;"
    "CREATE INDEX IF NOT EXISTS jobs_state ON jobs(state) WHERE disposed = 0;"
    "UPDATE meta SET value = '4' WHERE key = 'schema';"
    "COMMIT;",
    [4] = /*
	   * schema 4 found the jobs not ended by ended_at alone (held ones
	   * were read too) and kept the spec in the row
	   */
    "BEGIN IMMEDIATE;"
    "DROP INDEX IF EXISTS jobs_active;"
    "CREATE INDEX IF NOT EXISTS jobs_live ON jobs(state, disposed, kill_requested) "
    "WHERE ended_at IS NULL;"
    "ALTER TABLE jobs ADD COLUMN disposal_hours REAL;"
    "UPDATE jobs SET disposal_hours = json_extract(spec, '$.disposal_timeout_hours') "
    "WHERE ended_at IS NULL;"
    "INSERT INTO job_specs(id, spec) SELECT id, spec FROM jobs;"
    "ALTER TABLE jobs DROP COLUMN spec;"
    "UPDATE meta SET value = '5' WHERE key = 'schema';"
    "COMMIT;",
    [5] = /*
	   * schema 5 had no workflows; its jobs_live took every job not
	   * ended, and jobs_dispose every job (3.6% of a bulk submit)
	   */
    "BEGIN IMMEDIATE;"
    "DROP INDEX IF EXISTS jobs_dispose;"
    "CREATE INDEX jobs_dispose ON jobs(dispose_after) WHERE dispose_after IS NOT NULL;"
    "ALTER TABLE jobs ADD COLUMN workflow INTEGER;"
    "ALTER TABLE jobs ADD COLUMN waiting INTEGER NOT NULL DEFAULT 0;"
    "ALTER TABLE jobs ADD COLUMN deps TEXT;"
    "DROP INDEX IF EXISTS jobs_live;"
    "CREATE INDEX jobs_live ON jobs(state, disposed, kill_requested) "
    "WHERE ended_at IS NULL AND waiting = 0;"
    "UPDATE meta SET value = '6' WHERE key = 'schema';"
    "COMMIT;",
    [6] = /*
	   * schema 6 took ids from an AUTOINCREMENT sequence and indexed
	   * every job's key, NULL ones included: the table is rebuilt (its
	   * indexes and triggers go with it and come back in schema_late)
	   */
    "BEGIN IMMEDIATE;"
    "CREATE TABLE jobs_7(" JOBS_COLUMNS ");"
    "INSERT INTO jobs_7(" JOBS_NAMES ") SELECT " JOBS_NAMES " FROM jobs;"
    "INSERT OR REPLACE INTO meta(key, value) SELECT 'job_seq', max("
    "COALESCE((SELECT seq FROM sqlite_sequence WHERE name = 'jobs'), 0), "
    "COALESCE((SELECT max(id) FROM jobs), 0));"
    "DROP TABLE jobs;"
    "ALTER TABLE jobs_7 RENAME TO jobs;"
    "DELETE FROM sqlite_sequence WHERE name = 'jobs';"
    "UPDATE meta SET value = '7' WHERE key = 'schema';"
    "COMMIT;",
    [7] = /*
	   * schema 7 kept every environment for ever: which one a spec
	   * names was in its JSON alone, and an index on json_extract()
	   * cost each job of a submit 4 us (three times its spec's insert)
	   */
    "BEGIN IMMEDIATE;"
    "ALTER TABLE job_specs ADD COLUMN env INTEGER;"
    "UPDATE job_specs SET env = json_extract(spec, '$.base_env') "
    "WHERE spec LIKE '%\"base_env\":%';"
    "DELETE FROM job_envs WHERE id NOT IN (SELECT env FROM job_specs WHERE env IS NOT NULL);"
    "UPDATE meta SET value = '8' WHERE key = 'schema';"
    "COMMIT;",
};

struct ferry_db {
	sqlite3 *h;
	sqlite3_stmt *st[S_COUNT];
	int in_tx;
	int wal_fd;  /* to make one commit durable; -1: use synchronous=FULL */
	int durable; /* the open transaction must reach the disk at commit */
	/*
	 * A commit or its sync failed: nothing after it may be acknowledged,
	 * so every later begin and commit fails too, and the engine exits
	 * (even a commit in the middle of an iteration, ferry__engine_sync).
	 */
	int broken;
	unsigned
	    undone; /* savepoints rolled back, jobs deleted: what a cache of rows may not outlive */
	int wal_pages; /* in the WAL after the last commit (wal_hook) */
	/*
	 * The next job id, and the highest one kept in meta's job_seq: above
	 * it, a job's row is all that holds its id, so its commit, or its
	 * row's delete, writes job_seq first. *_sp: their values at the
	 * savepoint, which a rollback to it restores.
	 */
	int64_t next_id, seq_kept, next_sp, seq_sp;
	int sp_depth; /* savepoints open */
	char *path;
	struct ferry_db_why why; /* the last failure's word on the file or disk */
};

static int db_fail(struct ferry_db *db, const char *what)
{
	int said = ferry__db_why_explain(&db->why, db->path, sqlite3_extended_errcode(db->h),
					 sqlite3_system_errno(db->h));

	fprintf(stderr, "ferryd: database: %s: %s\n", what,
		said ? db->why.text : sqlite3_errmsg(db->h));
	return FERRY_EINTERNAL;
}

const char *ferry__db_why(struct ferry_db *db, int *code)
{
	if (code)
		*code = db->why.text[0] ? db->why.code : 0;
	return db->why.text[0] ? db->why.text : NULL;
}

unsigned ferry__db_failures(struct ferry_db *db)
{
	return db->why.failures;
}

/* err: what failed, and why when SQLite said something of the file or its disk. */
static void open_error(struct ferry_db *db, const char *what, const char *msg, char *err,
		       size_t errlen)
{
	if (ferry__db_why_explain(&db->why, db->path, sqlite3_extended_errcode(db->h),
				  sqlite3_system_errno(db->h)))
		snprintf(err, errlen, "%s", db->why.text);
	else
		snprintf(err, errlen, "cannot %s database '%s': %s", what, db->path,
			 msg ? msg : sqlite3_errmsg(db->h));
}

/*
 * PRAGMA quick_check: the b-trees' structure, every page read (not the
 * indexes against their tables). 0, or -1 with err set.
 */
static int quick_check(struct ferry_db *db, char *err, size_t errlen)
{
	sqlite3_stmt *q = NULL;
	const char *said = NULL;
	int rc;

	if (sqlite3_prepare_v2(db->h, "PRAGMA quick_check(1)", -1, &q, NULL)) {
		open_error(db, "check", NULL, err, errlen);
		return -1;
	}
	rc = sqlite3_step(q);
	if (rc == SQLITE_ROW)
		said = (const char *)sqlite3_column_text(q, 0); /* NULL: out of memory */
	if (said && !strcmp(said, "ok")) {
		sqlite3_finalize(q);
		return 0;
	}
	if (said) {
		ferry__db_why_corrupt(&db->why, db->path, said);
		snprintf(err, errlen, "%s", db->why.text);
	} else {
		open_error(db, "check", NULL, err, errlen);
	}
	sqlite3_finalize(q);
	return -1;
}

/*
 * Blocks reserved past the WAL's end (size kept: SQLite reads the WAL up
 * to its size), taken again after each durable commit. Commits append
 * there without new space, and SQLite rewrites the WAL from its start
 * after a checkpoint, never truncating it: on a full disk, job events and
 * the requests that only update records still commit, for about a
 * thousand pages (docs/architecture.md, "Recovery").
 */
#define WAL_RESERVE (4 << 20)

static void wal_reserve(struct ferry_db *db)
{
	off_t end = db->wal_fd >= 0 ? lseek(db->wal_fd, 0, SEEK_END) : -1;

	if (end >= 0)
		fallocate(db->wal_fd, FALLOC_FL_KEEP_SIZE, 0, end + WAL_RESERVE); /* best effort */
}

/*
 * SQLite's own checkpoint runs inside the commit that takes the WAL past
 * 1,000 pages: a 100,000-job submit waited about 0.3 s more for its
 * answer while its 50 MB of pages were copied into the database and
 * synced. This hook only counts; ferry__db_checkpoint() does the same
 * work after the replies are out.
 */
static int wal_hook(void *arg, sqlite3 *h, const char *name, int pages)
{
	(void)h;
	(void)name;
	((struct ferry_db *)arg)->wal_pages = pages;
	return SQLITE_OK;
}

#define CHECKPOINT_PAGES 1000 /* SQLite's default wal_autocheckpoint */
/*
 * While requests wait, the checkpoint waits for them, up to this: a bulk
 * submit's batches come 8 at a time, and a checkpoint between two of
 * them held the rest (a tenth of a 100,000-job submit). 64 MiB of WAL,
 * which a read finds through its index, as any.
 */
#define CHECKPOINT_BUSY_PAGES 16384

void ferry__db_checkpoint(struct ferry_db *db, int busy)
{
	if (db->in_tx || db->broken || db->wal_pages < CHECKPOINT_PAGES ||
	    (busy && db->wal_pages < CHECKPOINT_BUSY_PAGES))
		return;
	db->wal_pages = 0;
	/* as SQLite's own: passive, and its failure costs only a larger WAL */
	if (sqlite3_wal_checkpoint_v2(db->h, NULL, SQLITE_CHECKPOINT_PASSIVE, NULL, NULL))
		fprintf(stderr, "ferryd: database: checkpoint: %s\n", sqlite3_errmsg(db->h));
}

/* The WAL persists while our connection is open: kept open to sync it, writable to reserve. */
static void wal_open(struct ferry_db *db)
{
	char *wal = ferry__asprintf("%s-wal", db->path);

	db->wal_fd = wal ? open(wal, O_RDWR | O_NOFOLLOW | O_CLOEXEC) : -1;
	free(wal);
	if (db->wal_fd < 0)
		sqlite3_exec(db->h, "PRAGMA synchronous=FULL", NULL, NULL, NULL);
	wal_reserve(db);
}

/*
 * WAL with synchronous=NORMAL, and an fsync of the WAL by us after each
 * commit that a reply depends on (ferry__db_commit): a request is on disk
 * before it is acknowledged, while the far more frequent job events -
 * which recovery rebuilds from the runner's files anyway - cost no fsync.
 * One loop iteration is one transaction, so even acknowledged requests
 * share their fsync (group commit). Exclusive locking: only this engine
 * (it holds ferryd.lock) opens the file, and it saves the lock calls of
 * every transaction. Then the schema. 0, or -1 with err set.
 */
static int db_init(struct ferry_db *db, int check, char *err, size_t errlen)
{
	char *msg = NULL;

	if (sqlite3_exec(db->h,
			 "PRAGMA locking_mode=EXCLUSIVE; PRAGMA journal_mode=WAL; "
			 "PRAGMA synchronous=NORMAL; "
			 "PRAGMA foreign_keys=ON;",
			 NULL, NULL, &msg) ||
	    (check && quick_check(db, err, errlen)) ||
	    sqlite3_exec(db->h, schema, NULL, NULL, &msg)) {
		if (!check || msg)
			open_error(db, "initialise", msg, err, errlen);
		sqlite3_free(msg);
		return -1;
	}
	return 0;
}

/* Takes an older schema to SCHEMA_VERSION (migrations[]). 0, or -1 with err set. */
static int db_migrate(struct ferry_db *db, char *err, size_t errlen)
{
	sqlite3_stmt *q = NULL;
	char *msg = NULL;
	int version;

	if (sqlite3_prepare_v2(db->h, "SELECT value FROM meta WHERE key = 'schema'", -1, &q,
			       NULL) ||
	    sqlite3_step(q) != SQLITE_ROW) {
		sqlite3_finalize(q);
		snprintf(err, errlen, "database '%s' has no schema version", db->path);
		return -1;
	}
	version = sqlite3_column_int(q, 0);
	sqlite3_finalize(q);
	if (version < 1 || version > SCHEMA_VERSION) {
		snprintf(err, errlen, "database '%s' has an unknown schema version %d", db->path,
			 version);
		return -1;
	}
	for (; version < SCHEMA_VERSION; version++) {
		if (sqlite3_exec(db->h, migrations[version], NULL, NULL, &msg)) {
			snprintf(err, errlen, "cannot update database '%s' from schema %d: %s",
				 db->path, version, msg);
			sqlite3_free(msg);
			sqlite3_exec(db->h, "ROLLBACK", NULL, NULL, NULL);
			return -1;
		}
	}
	if (sqlite3_exec(db->h, schema_late, NULL, NULL, &msg)) {
		open_error(db, "initialise", msg, err, errlen);
		sqlite3_free(msg);
		return -1;
	}
	return 0;
}

/* At open: the next job id, above every one handed out (S_MAX_ID). 0, or -1. */
static int read_next_id(struct ferry_db *db)
{
	sqlite3_stmt *q = db->st[S_MAX_ID];
	int rc = sqlite3_step(q);

	int64_t max;

	if (rc == SQLITE_ROW) {
		db->seq_kept = sqlite3_column_int64(q, 0);
		max = sqlite3_column_int64(q, 1);
		db->next_id = (max > db->seq_kept ? max : db->seq_kept) + 1;
	}
	sqlite3_reset(q);
	return rc == SQLITE_ROW ? 0 : -1;
}

int ferry__db_open(const char *path, int check, struct ferry_db **out, char *err, size_t errlen)
{
	struct ferry_db *db = calloc(1, sizeof(*db));

	if (!db || !(db->path = strdup(path))) {
		free(db);
		snprintf(err, errlen, "out of memory");
		return FERRY_ENOMEM;
	}
	db->wal_fd = -1;
	/*
	 * No mutex: only the loop's thread uses the connection (the DRMS
	 * worker never does), and a listing reads each of a million rows'
	 * columns through calls that took and released it each time.
	 */
	if (sqlite3_open_v2(path, &db->h,
			    SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX,
			    NULL)) {
		if (db->h)
			open_error(db, "open", NULL, err, errlen);
		else
			snprintf(err, errlen, "cannot open database '%s': out of memory", path);
		goto fail;
	}
	sqlite3_busy_timeout(db->h, 5000);
	if (db_init(db, check, err, errlen) || db_migrate(db, err, errlen))
		goto fail;
	wal_open(db);
	sqlite3_wal_hook(db->h, wal_hook, db); /* replaces the automatic checkpoint */
	for (int i = 0; i < S_COUNT; i++) {
		if (sqlite3_prepare_v3(db->h, sql[i], -1, SQLITE_PREPARE_PERSISTENT, &db->st[i],
				       NULL)) {
			snprintf(err, errlen, "cannot prepare statement %d: %s", i,
				 sqlite3_errmsg(db->h));
			goto fail;
		}
	}
	if (read_next_id(db)) {
		open_error(db, "read the highest job id of", NULL, err, errlen);
		goto fail;
	}
	*out = db;
	return 0;
fail:
	ferry__db_close(db);
	return FERRY_EINTERNAL;
}

void ferry__db_close(struct ferry_db *db)
{
	if (!db)
		return;
	for (int i = 0; i < S_COUNT; i++)
		sqlite3_finalize(db->st[i]);
	sqlite3_close(db->h);
	if (db->wal_fd >= 0)
		close(db->wal_fd);
	free(db->path);
	free(db);
}

/* Runs a statement that returns no rows; binds were done by the caller. */
static int run(struct ferry_db *db, enum stmt_id s, const char *what)
{
	sqlite3_stmt *q = db->st[s];
	int rc = sqlite3_step(q);

	sqlite3_reset(q);
	sqlite3_clear_bindings(q);
	if (rc != SQLITE_DONE)
		return db_fail(db, what);
	return 0;
}

/*
 * Writes the highest id handed out into meta's job_seq when it is above
 * what is kept there: once a transaction that made jobs, not once a job.
 */
static int keep_seq(struct ferry_db *db)
{
	char v[24];

	if (db->next_id - 1 <= db->seq_kept)
		return 0;
	snprintf(v, sizeof(v), "%lld", (long long)(db->next_id - 1));
	if (ferry__db_meta_set(db, "job_seq", v))
		return -1;
	db->seq_kept = db->next_id - 1;
	return 0;
}

int ferry__db_begin(struct ferry_db *db)
{
	if (db->broken)
		return FERRY_EINTERNAL;
	if (db->in_tx)
		return 0;
	db->why.text[0] = '\0';
	if (run(db, S_BEGIN, "begin"))
		return FERRY_EINTERNAL;
	db->in_tx = 1;
	return 0;
}

void ferry__db_need_durable(struct ferry_db *db)
{
	db->durable = 1;
}

int ferry__db_commit(struct ferry_db *db)
{
	int durable = db->durable;

	if (db->broken)
		return FERRY_EINTERNAL;
	if (!db->in_tx)
		return 0;
	db->in_tx = 0;
	db->durable = 0;
	if (keep_seq(db) || run(db, S_COMMIT, "commit")) {
		db->broken = 1;
		return FERRY_EINTERNAL;
	}
	if (durable && db->wal_fd >= 0 && fdatasync(db->wal_fd) < 0) {
		int e = errno;
		snprintf(db->why.text, sizeof(db->why.text), "cannot write '%s-wal': %s", db->path,
			 e == ENOSPC || e == EDQUOT ? "disk full" : strerror(e));
		db->why.code = FERRY_EIO;
		fprintf(stderr, "ferryd: database: %s\n", db->why.text);
		db->broken = 1;
		return FERRY_EINTERNAL;
	}
	if (durable)
		wal_reserve(db); /* one more call beside an fdatasync */
	return 0;
}

int ferry__db_savepoint(struct ferry_db *db)
{
	int rc = run(db, S_SAVEPOINT, "savepoint");

	if (!rc && !db->sp_depth++) { /* the outermost's values: a nested one keeps them */
		db->next_sp = db->next_id;
		db->seq_sp = db->seq_kept;
	}
	return rc;
}

int ferry__db_release(struct ferry_db *db)
{
	int rc = run(db, S_RELEASE, "release");

	if (!rc && db->sp_depth)
		db->sp_depth--;
	return rc;
}

int ferry__db_rollback_savepoint(struct ferry_db *db)
{
	int rc = run(db, S_ROLLBACK_SP, "rollback");

	db->undone++;
	/*
	 * As a sequence rolled back: no gap in the ids (the outermost only; an
	 * inner one leaves a gap, which is harmless). What job_seq holds may
	 * have been written inside and undone: believed lower, never higher.
	 */
	if (!rc && db->sp_depth == 1)
		db->next_id = db->next_sp;
	if (!rc && db->seq_kept > db->seq_sp)
		db->seq_kept = db->seq_sp;
	return rc ? rc : ferry__db_release(db);
}

unsigned ferry__db_undone(struct ferry_db *db)
{
	return db->undone;
}

static void bind_text(sqlite3_stmt *q, int i, const char *s)
{
	if (s)
		sqlite3_bind_text(q, i, s, -1, SQLITE_TRANSIENT);
	else
		sqlite3_bind_null(q, i);
}

/*
 * Runs statement s, its parameters bound, for at most one row, which
 * read() takes (0, or FERRY_ENOMEM), and resets it: 1 with a row, 0
 * without one, or a FERRY_E* code.
 */
static int one_row(struct ferry_db *db, enum stmt_id s, int (*read)(sqlite3_stmt *q, void *out),
		   void *out, const char *what)
{
	sqlite3_stmt *q = db->st[s];
	int rc = sqlite3_step(q), got = rc == SQLITE_ROW ? read(q, out) : 0;

	sqlite3_reset(q);
	sqlite3_clear_bindings(q);
	if (rc == SQLITE_ROW)
		return got ? got : 1;
	return rc == SQLITE_DONE ? 0 : db_fail(db, what);
}

static int read_int(sqlite3_stmt *q, void *out)
{
	*(int *)out = sqlite3_column_int(q, 0);
	return 0;
}

static int read_int64(sqlite3_stmt *q, void *out)
{
	*(int64_t *)out = sqlite3_column_int64(q, 0);
	return 0;
}

static int read_str(sqlite3_stmt *q, void *out)
{
	return (*(char **)out = ferry__db_col_strdup(q, 0)) ? 0 : FERRY_ENOMEM;
}

int ferry__db_meta_get(struct ferry_db *db, const char *key, char **value)
{
	int rc;

	*value = NULL;
	bind_text(db->st[S_META_GET], 1, key);
	rc = one_row(db, S_META_GET, read_str, value, "read meta");
	return rc < 0 ? rc : 0;
}

int ferry__db_find_key(struct ferry_db *db, const char *key, int64_t *id)
{
	bind_text(db->st[S_FIND_KEY], 1, key);
	return one_row(db, S_FIND_KEY, read_int64, id, "find key");
}

int ferry__db_batch_find(struct ferry_db *db, const char *key, char **ids)
{
	*ids = NULL;
	bind_text(db->st[S_BATCH_FIND], 1, key);
	return one_row(db, S_BATCH_FIND, read_str, ids, "find batch key");
}

int ferry__db_batch_set(struct ferry_db *db, const char *key, const char *ids, double now)
{
	sqlite3_stmt *q = db->st[S_BATCH_SET];

	bind_text(q, 1, key);
	bind_text(q, 2, ids);
	sqlite3_bind_double(q, 3, now);
	return run(db, S_BATCH_SET, "record batch key") ? FERRY_EINTERNAL : 0;
}

int ferry__db_batch_gc(struct ferry_db *db, double before)
{
	sqlite3_bind_double(db->st[S_BATCH_GC], 1, before);
	return run(db, S_BATCH_GC, "delete batch keys") ? FERRY_EINTERNAL : 0;
}

/* The spec of job id, in its own table. */
static int insert_spec(struct ferry_db *db, int64_t id, const char *spec, int64_t env)
{
	sqlite3_bind_int64(db->st[S_INSERT_SPEC], 1, id);
	/* not copied: the text outlives the statement's run (a copy a job of a bulk submit) */
	sqlite3_bind_text(db->st[S_INSERT_SPEC], 2, spec, -1, SQLITE_STATIC);
	if (env > 0)
		sqlite3_bind_int64(db->st[S_INSERT_SPEC], 3, env);
	else
		sqlite3_bind_null(db->st[S_INSERT_SPEC], 3);
	return run(db, S_INSERT_SPEC, "insert job spec");
}

int ferry__db_env_put(struct ferry_db *db, const char *env, int64_t *id)
{
	int rc;

	bind_text(db->st[S_ENV_PUT], 1, env);
	if (run(db, S_ENV_PUT, "record job environment"))
		return FERRY_EINTERNAL;
	bind_text(db->st[S_ENV_FIND], 1, env);
	rc = one_row(db, S_ENV_FIND, read_int64, id, "find job environment");
	return rc == 1 ? 0 : rc < 0 ? rc : FERRY_EINTERNAL;
}

int ferry__db_env_get(struct ferry_db *db, int64_t id, char **env)
{
	*env = NULL;
	sqlite3_bind_int64(db->st[S_ENV_GET], 1, id);
	return one_row(db, S_ENV_GET, read_str, env, "read job environment");
}

int ferry__db_insert_job(struct ferry_db *db, const char *key, const char *name, const char *spec,
			 int64_t env, enum ferry_job_status st, double now, double hours,
			 int64_t *id)
{
	sqlite3_stmt *q = db->st[S_INSERT];

	bind_text(q, 1, key);
	bind_text(q, 2, name);
	sqlite3_bind_int64(q, 3, db->next_id);
	sqlite3_bind_int(q, 4, st);
	sqlite3_bind_double(q, 5, now);
	if (hours >= 0)
		sqlite3_bind_double(q, 6, hours);
	else
		sqlite3_bind_null(q, 6);
	if (run(db, S_INSERT, "insert job"))
		return FERRY_EINTERNAL;
	*id = db->next_id++;
	return insert_spec(db, *id, spec, env) ? FERRY_EINTERNAL : 0;
}

int ferry__db_set_state(struct ferry_db *db, int64_t id, enum ferry_job_status st)
{
	sqlite3_stmt *q = db->st[S_SET_STATE];

	sqlite3_bind_int64(q, 1, id);
	sqlite3_bind_int(q, 2, st);
	return run(db, S_SET_STATE, "set state");
}

int ferry__db_set_started(struct ferry_db *db, int64_t id, double at, const char *native_id)
{
	sqlite3_stmt *q = db->st[S_SET_STARTED];

	sqlite3_bind_int64(q, 1, id);
	sqlite3_bind_double(q, 2, at);
	bind_text(q, 3, native_id);
	sqlite3_bind_int(q, 4, FERRY_RUNNING);
	return run(db, S_SET_STARTED, "set started");
}

int ferry__db_set_native_id(struct ferry_db *db, int64_t id, const char *native_id)
{
	sqlite3_stmt *q = db->st[S_SET_NATIVE];

	sqlite3_bind_int64(q, 1, id);
	bind_text(q, 2, native_id);
	return run(db, S_SET_NATIVE, "set native id");
}

int ferry__db_max_job_id(struct ferry_db *db, int64_t *max)
{
	*max = db->next_id - 1;
	return 0;
}

int ferry__db_any_out(struct ferry_db *db, int *yes)
{
	sqlite3_stmt *q = db->st[S_ANY_OUT];
	int rc = sqlite3_step(q);

	*yes = rc == SQLITE_ROW && sqlite3_column_int(q, 0);
	sqlite3_reset(q);
	return rc == SQLITE_ROW ? 0 : FERRY_EINTERNAL;
}

/* Numbers a failure of job id in the failure log. */
static int log_failure(struct ferry_db *db, int64_t id)
{
	sqlite3_bind_int64(db->st[S_FAIL_ADD], 1, id);
	return run(db, S_FAIL_ADD, "log a failure");
}

int ferry__db_insert_lost(struct ferry_db *db, int64_t id, double at, double dispose_after,
			  const char *msg)
{
	sqlite3_stmt *q = db->st[S_INSERT_LOST];

	sqlite3_bind_int64(q, 1, id);
	sqlite3_bind_int(q, 2, FERRY_FAILED);
	sqlite3_bind_int(q, 3, FERRY_FINISHED_UNCLEAR_CONDITION);
	sqlite3_bind_double(q, 4, at);
	bind_text(q, 5, msg);
	sqlite3_bind_double(q, 6, dispose_after);
	if (run(db, S_INSERT_LOST, "record a lost job") || insert_spec(db, id, "{}", 0))
		return FERRY_EINTERNAL;
	if (id >= db->next_id)
		db->next_id = id + 1; /* no new job gets an id that has a directory */
	return log_failure(db, id);
}

int ferry__db_set_requeued(struct ferry_db *db, int64_t id, enum ferry_job_status st, int requeues)
{
	sqlite3_stmt *q = db->st[S_SET_REQUEUED];

	sqlite3_bind_int64(q, 1, id);
	sqlite3_bind_int(q, 2, (int)st);
	sqlite3_bind_int(q, 3, requeues);
	return run(db, S_SET_REQUEUED, "requeue");
}

int ferry__db_meta_set(struct ferry_db *db, const char *key, const char *value)
{
	sqlite3_stmt *q = db->st[S_META_SET];

	bind_text(q, 1, key);
	bind_text(q, 2, value);
	return run(db, S_META_SET, "write meta");
}

int ferry__db_set_kill(struct ferry_db *db, int64_t id, int disposed)
{
	sqlite3_stmt *q = db->st[S_SET_KILL];

	sqlite3_bind_int64(q, 1, id);
	sqlite3_bind_int(q, 2, disposed);
	return run(db, S_SET_KILL, "set kill");
}

static void bind_opt_double(sqlite3_stmt *q, int i, double v)
{
	if (v < 0)
		sqlite3_bind_null(q, i);
	else
		sqlite3_bind_double(q, i, v);
}

int ferry__db_set_ended(struct ferry_db *db, int64_t id, enum ferry_job_status st,
			const struct job_result *r, double hours, double hour_s)
{
	sqlite3_stmt *q = db->st[S_SET_ENDED];

	sqlite3_bind_int64(q, 1, id);
	sqlite3_bind_int(q, 2, st);
	sqlite3_bind_int(q, 3, r->exit_status);
	if (r->exit_status == FERRY_FINISHED_REGULARLY)
		sqlite3_bind_int(q, 4, r->exit_value);
	else
		sqlite3_bind_null(q, 4);
	sqlite3_bind_int(q, 5, r->signal);
	bind_opt_double(q, 6, r->cpu_user);
	bind_opt_double(q, 7, r->cpu_sys);
	if (r->max_rss_kb >= 0)
		sqlite3_bind_int64(q, 8, r->max_rss_kb);
	else
		sqlite3_bind_null(q, 8);
	bind_opt_double(q, 9, r->wall);
	if (r->started_at > 0)
		sqlite3_bind_double(q, 10, r->started_at);
	else
		sqlite3_bind_null(q, 10);
	sqlite3_bind_double(q, 11, r->ended_at > 0 ? r->ended_at : ferry__now());
	bind_text(q, 12, r->message[0] ? r->message : NULL);
	if (hours >= 0)
		sqlite3_bind_double(q, 13, hours);
	else
		sqlite3_bind_null(q, 13);
	sqlite3_bind_double(q, 14, hour_s);
	if (run(db, S_SET_ENDED, "set ended"))
		return FERRY_EINTERNAL;
	return st == FERRY_FAILED ? log_failure(db, id) : 0;
}

int ferry__db_failure_mark(struct ferry_db *db, int64_t *mark)
{
	int rc = one_row(db, S_FAIL_MARK, read_int64, mark, "read the failure mark");

	return rc < 0 ? rc : 0;
}

int ferry__db_failures_since(struct ferry_db *db, int64_t mark, int64_t upto,
			     void (*fn)(void *arg, int64_t id), void *arg)
{
	sqlite3_stmt *q = db->st[S_FAIL_SINCE];
	int rc;

	sqlite3_bind_int64(q, 1, mark);
	sqlite3_bind_int64(q, 2, upto < 0 ? INT64_MAX : upto);
	while ((rc = sqlite3_step(q)) == SQLITE_ROW)
		fn(arg, sqlite3_column_int64(q, 0));
	sqlite3_reset(q);
	sqlite3_clear_bindings(q);
	return rc == SQLITE_DONE ? 0 : db_fail(db, "read the failures since a mark");
}

int ferry__db_delete_job(struct ferry_db *db, int64_t id)
{
	/* before any row goes: a failure leaves the job whole */
	if (id > db->seq_kept && keep_seq(db))
		return FERRY_EINTERNAL;
	sqlite3_bind_int64(db->st[S_REF_DEL_JOB], 1, id);
	if (run(db, S_REF_DEL_JOB, "delete job references"))
		return FERRY_EINTERNAL;
	sqlite3_bind_int64(db->st[S_FAIL_DEL_JOB], 1, id);
	sqlite3_bind_int64(db->st[S_FAIL_CLEAR_LAST], 1, id);
	if (run(db, S_FAIL_DEL_JOB, "delete job failures") ||
	    run(db, S_FAIL_CLEAR_LAST, "delete job failures"))
		return FERRY_EINTERNAL;
	sqlite3_bind_int64(db->st[S_DELETE], 1, id);
	/* its environment may go with it, and a new one take its id: caches must not outlive it */
	db->undone++;
	return run(db, S_DELETE, "delete job");
}

/* The row q is on as a struct db_job_row to cb: its return. */
static int active_row(sqlite3_stmt *q, int (*cb)(void *arg, struct db_job_row *row), void *arg)
{
	struct db_job_row row = {
	    .id = sqlite3_column_int64(q, 0),
	    .state = (enum ferry_job_status)sqlite3_column_int(q, 1),
	    .kill_requested = sqlite3_column_int(q, 2),
	    .disposed = sqlite3_column_int(q, 3),
	    /* not copied: a held job's spec is not even parsed (engine.c) */
	    .spec = (const char *)sqlite3_column_text(q, 4),
	    .started_at = sqlite3_column_double(q, 5),
	    .native_id = ferry__db_col_strdup(q, 6),
	    .requeues = sqlite3_column_int(q, 7),
	    .workflow = sqlite3_column_int64(q, 8),
	};
	int err = cb(arg, &row);

	free(row.native_id);
	return err;
}

int ferry__db_active_jobs(struct ferry_db *db, int park_held,
			  int (*cb)(void *arg, struct db_job_row *row), void *arg)
{
	sqlite3_stmt *q = db->st[park_held ? S_ACTIVE : S_ACTIVE_ALL];
	int rc, err = 0;

	while ((rc = sqlite3_step(q)) == SQLITE_ROW && !(err = active_row(q, cb, arg)))
		;
	sqlite3_reset(q);
	sqlite3_clear_bindings(q);
	if (!err && rc != SQLITE_DONE)
		return db_fail(db, "list active jobs");
	return err;
}

int ferry__db_active_job(struct ferry_db *db, int64_t id,
			 int (*cb)(void *arg, struct db_job_row *row), void *arg)
{
	sqlite3_stmt *q = db->st[S_ACTIVE_ONE];
	int rc, err = 0;

	sqlite3_bind_int64(q, 1, id);
	rc = sqlite3_step(q);
	if (rc == SQLITE_ROW)
		err = active_row(q, cb, arg);
	sqlite3_reset(q);
	sqlite3_clear_bindings(q);
	if (rc == SQLITE_ROW)
		return err;
	return rc == SQLITE_DONE ? FERRY_ENOJOB : db_fail(db, "read an active job");
}

int ferry__db_kill_held(struct ferry_db *db, int64_t first, int64_t last, double now, double hour_s,
			size_t *changed)
{
	sqlite3_stmt *q = db->st[S_KILL_HELD], *log = db->st[S_KILL_HELD_LOG];

	/* both or neither: a logged failure of a job still held would fail a wait */
	if (ferry__db_savepoint(db))
		return FERRY_EINTERNAL;
	/* a wait for all jobs counts these failures too (the failure log) */
	sqlite3_bind_int64(log, 1, first);
	sqlite3_bind_int64(log, 2, last);
	sqlite3_bind_int(log, 7, FERRY_USER_ON_HOLD);
	if (run(db, S_KILL_HELD_LOG, "log the failures of held jobs"))
		goto fail;
	sqlite3_bind_int64(q, 1, first);
	sqlite3_bind_int64(q, 2, last);
	sqlite3_bind_int(q, 3, FERRY_FAILED);
	sqlite3_bind_int(q, 4, FERRY_KILLED_BY_USER);
	sqlite3_bind_double(q, 5, now);
	sqlite3_bind_double(q, 6, hour_s);
	sqlite3_bind_int(q, 7, FERRY_USER_ON_HOLD);
	if (run(db, S_KILL_HELD, "kill held jobs"))
		goto fail;
	*changed = (size_t)sqlite3_changes(db->h);
	return ferry__db_release(db) ? FERRY_EINTERNAL : 0;
fail:
	ferry__db_rollback_savepoint(db);
	return FERRY_EINTERNAL;
}

int ferry__db_status(struct ferry_db *db, int64_t id, enum ferry_job_status *st)
{
	int v = 0, rc;

	sqlite3_bind_int64(db->st[S_STATUS], 1, id);
	rc = one_row(db, S_STATUS, read_int, &v, "status");
	if (rc == 1)
		*st = (enum ferry_job_status)v;
	return rc == 1 ? 0 : rc ? rc : FERRY_ENOJOB;
}

int ferry__db_job_row(struct ferry_db *db, int64_t id, int (*cb)(void *arg, sqlite3_stmt *row),
		      void *arg)
{
	sqlite3_stmt *q = db->st[S_JOB];
	int step, rc = 0;

	sqlite3_bind_int64(q, 1, id);
	if ((step = sqlite3_step(q)) == SQLITE_ROW)
		rc = cb(arg, q);
	sqlite3_reset(q);
	sqlite3_clear_bindings(q);
	if (step == SQLITE_ROW)
		return rc;
	return step == SQLITE_DONE ? FERRY_ENOJOB : db_fail(db, "job info");
}

/* The first ids (at most max) statement s gives for listing l (in one state, or -1). */
static int page_ids(struct ferry_db *db, enum stmt_id s, const struct db_list *l, int state,
		    int64_t *ids, size_t max, size_t *n)
{
	sqlite3_stmt *q = db->st[s];
	int rc;

	*n = 0;
	sqlite3_bind_int64(q, 1, l->after);
	sqlite3_bind_double(q, 2, l->since); /* a statement without ?2 ignores it */
	sqlite3_bind_int64(q, 3, (sqlite3_int64)max);
	if (state >= 0)
		sqlite3_bind_int(q, 4, state);
	if (l->workflow)
		sqlite3_bind_int64(q, 5, l->workflow);
	while (*n < max && (rc = sqlite3_step(q)) == SQLITE_ROW)
		ids[(*n)++] = sqlite3_column_int64(q, 0);
	if (*n == max)
		rc = SQLITE_DONE;
	sqlite3_reset(q);
	sqlite3_clear_bindings(q);
	return rc == SQLITE_DONE ? 0 : db_fail(db, "list jobs");
}

static int cmp_id(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;

	return x < y ? -1 : x > y;
}

int ferry__db_list_ids(struct ferry_db *db, const struct db_list *l, int64_t *ids, size_t max,
		       size_t *n)
{
	enum stmt_id s = l->workflow	? S_LIST_IDS_WF_STATE
			 : l->since > 0 ? S_LIST_IDS_STATE_SINCE
					: S_LIST_IDS_STATE;
	size_t nstates = 0, got = 0, one;
	int64_t *all = ids;
	int rc = 0;

	*n = 0;
	if (!l->states)
		return page_ids(db, l->workflow ? S_LIST_IDS_WF : S_LIST_IDS, l, -1, ids, max, n);
	for (int st = 0; st < 32; st++)
		nstates += (l->states >> st) & 1u;
	/* each state's first max, merged: an IN () would sort every match of every page */
	if (nstates > 1 && !(all = malloc(nstates * max * sizeof(*all))))
		return FERRY_ENOMEM;
	for (int st = 0; !rc && st < 32; st++) {
		if (!(l->states & (1u << st)))
			continue;
		rc = page_ids(db, s, l, st, all + got, max, &one);
		got += one;
	}
	if (nstates > 1) {
		qsort(all, got, sizeof(*all), cmp_id);
		got = got < max ? got : max;
		memcpy(ids, all, got * sizeof(*ids));
		free(all);
	}
	*n = rc ? 0 : got;
	return rc;
}

int ferry__db_list_rows(struct ferry_db *db, const struct db_list *l, size_t max,
			int (*cb)(void *arg, sqlite3_stmt *row), void *arg, size_t *n,
			int64_t *last)
{
	sqlite3_stmt *q = db->st[S_LIST_ROWS];
	int rc = 0, step = SQLITE_DONE;

	*n = 0;
	sqlite3_bind_int64(q, 1, l->after);
	sqlite3_bind_double(q, 2, l->since);
	sqlite3_bind_int64(q, 3, (sqlite3_int64)max);
	while (!rc && (step = sqlite3_step(q)) == SQLITE_ROW) {
		(*n)++;
		*last = sqlite3_column_int64(q, JC_id);
		rc = cb(arg, q);
	}
	sqlite3_reset(q);
	sqlite3_clear_bindings(q);
	if (rc)
		return rc < 0 ? rc : 0;
	return step == SQLITE_DONE ? 0 : db_fail(db, "list jobs");
}

static int select_state(struct ferry_db *db, enum stmt_id s, int state, int64_t first, int64_t last,
			int (*cb)(void *arg, int64_t id, const char *name, int state), void *arg)
{
	sqlite3_stmt *q = db->st[s];
	int rc = 0, step = SQLITE_DONE;

	sqlite3_bind_int64(q, 1, first);
	sqlite3_bind_int64(q, 2, last);
	if (state >= 0)
		sqlite3_bind_int(q, 3, state);
	while (!rc && (step = sqlite3_step(q)) == SQLITE_ROW)
		rc = cb(arg, sqlite3_column_int64(q, 0), (const char *)sqlite3_column_text(q, 1),
			sqlite3_column_int(q, 2));
	sqlite3_reset(q);
	sqlite3_clear_bindings(q);
	if (rc)
		return rc;
	return step == SQLITE_DONE ? 0 : db_fail(db, "select jobs");
}

int ferry__db_select_jobs(struct ferry_db *db, unsigned states, int names, int64_t first,
			  int64_t last,
			  int (*cb)(void *arg, int64_t id, const char *name, int state), void *arg)
{
	int rc = 0;

	if (!states)
		return select_state(db, S_SELECT, -1, first, last, cb, arg);
	for (int st = 0; !rc && st < 32; st++)
		if (states & (1u << st))
			rc = select_state(db, names ? S_SELECT_STATE : S_SELECT_STATE_IDS, st,
					  first, last, cb, arg);
	return rc;
}

/* ids spread thin (a state's jobs among others): a look-up each. */
static int jobs_by_id(struct ferry_db *db, const int64_t *ids, size_t n,
		      int (*cb)(void *arg, sqlite3_stmt *row), void *arg)
{
	sqlite3_stmt *q = db->st[S_JOB];
	int rc = 0, step = SQLITE_DONE;

	for (size_t i = 0; i < n && !rc; i++) {
		sqlite3_bind_int64(q, 1, ids[i]);
		step = sqlite3_step(q);
		if (step == SQLITE_ROW)
			rc = cb(arg, q);
		sqlite3_reset(q);
		if (step != SQLITE_ROW && step != SQLITE_DONE)
			break;
	}
	sqlite3_clear_bindings(q);
	if (step != SQLITE_ROW && step != SQLITE_DONE)
		return db_fail(db, "list jobs");
	return rc < 0 ? rc : 0;
}

int ferry__db_job_rows(struct ferry_db *db, const int64_t *ids, size_t n,
		       int (*cb)(void *arg, sqlite3_stmt *row), void *arg)
{
	sqlite3_stmt *q = db->st[S_JOB_RANGE];
	size_t i = 0;
	int rc = 0, step;

	if (!n || ids[n - 1] - ids[0] >= 2 * (int64_t)n)
		return n ? jobs_by_id(db, ids, n, cb, arg) : 0;
	/* ids close together (a listing of every job): one range read */
	sqlite3_bind_int64(q, 1, ids[0]);
	sqlite3_bind_int64(q, 2, ids[n - 1]);
	while (!rc && (step = sqlite3_step(q)) == SQLITE_ROW) {
		int64_t id = sqlite3_column_int64(q, JC_id);
		while (i < n && ids[i] < id)
			i++;
		if (i < n && ids[i] == id)
			rc = cb(arg, q);
	}
	sqlite3_reset(q);
	sqlite3_clear_bindings(q);
	if (!rc && step != SQLITE_DONE)
		return db_fail(db, "list jobs");
	return rc < 0 ? rc : 0;
}

static int collect_ids(struct ferry_db *db, sqlite3_stmt *q, const char *what, int64_t **ids,
		       size_t *n);

int ferry__db_expired(struct ferry_db *db, double now, int64_t **ids, size_t *n)
{
	sqlite3_bind_double(db->st[S_EXPIRED], 1, now);
	return collect_ids(db, db->st[S_EXPIRED], "expired jobs", ids, n);
}

struct spec_out {
	char **spec;
	int *ended;
};

static int read_spec(sqlite3_stmt *q, void *out)
{
	struct spec_out *o = out;

	*o->ended = sqlite3_column_int(q, 1);
	return (*o->spec = ferry__db_col_strdup(q, 0)) ? 0 : FERRY_ENOMEM;
}

int ferry__db_spec(struct ferry_db *db, int64_t id, char **spec, int *ended)
{
	struct spec_out o = {spec, ended};
	int rc;

	*spec = NULL;
	sqlite3_bind_int64(db->st[S_SPEC], 1, id);
	rc = one_row(db, S_SPEC, read_spec, &o, "job spec");
	return rc == 1 ? 0 : rc ? rc : FERRY_ENOJOB;
}

/* ---- transfers ---- */

/* Collects the first column (an id) of every row of a bound statement. */
static int collect_ids(struct ferry_db *db, sqlite3_stmt *q, const char *what, int64_t **ids,
		       size_t *n)
{
	int64_t *v = NULL;
	size_t cnt = 0, cap = 0;
	int rc;

	while ((rc = sqlite3_step(q)) == SQLITE_ROW) {
		if (cnt == cap) {
			int64_t *nv = realloc(v, (cap = cap ? 2 * cap : 16) * sizeof(*v));
			if (!nv) {
				sqlite3_reset(q);
				sqlite3_clear_bindings(q);
				free(v);
				return FERRY_ENOMEM;
			}
			v = nv;
		}
		v[cnt++] = sqlite3_column_int64(q, 0);
	}
	sqlite3_reset(q);
	sqlite3_clear_bindings(q);
	if (rc != SQLITE_DONE) {
		free(v);
		return db_fail(db, what);
	}
	*ids = v;
	*n = cnt;
	return 0;
}

int ferry__db_tr_insert(struct ferry_db *db, const struct db_tr_row *t, const char *doc,
			int64_t *id)
{
	sqlite3_stmt *q = db->st[S_TR_INSERT];

	bind_text(q, 1, t->key);
	bind_text(q, 2, t->dir);
	bind_text(q, 3, t->server_path);
	/* out of range: NULL, which the NOT NULL columns refuse */
	bind_text(q, 4, ferry_transfer_kind_name(t->kind));
	bind_text(q, 5, ferry_transfer_state_name(t->state));
	sqlite3_bind_double(q, 6, t->created_at);
	sqlite3_bind_double(q, 7, t->deadline);
	if (run(db, S_TR_INSERT, "insert transfer"))
		return FERRY_EINTERNAL;
	*id = sqlite3_last_insert_rowid(db->h);
	return ferry__db_tr_set_doc(db, *id, doc);
}

int ferry__db_tr_set_doc(struct ferry_db *db, int64_t id, const char *doc)
{
	sqlite3_bind_int64(db->st[S_TR_DOC_SET], 1, id);
	bind_text(db->st[S_TR_DOC_SET], 2, doc);
	return run(db, S_TR_DOC_SET, "write transfer manifest");
}

int ferry__db_tr_doc(struct ferry_db *db, int64_t id, char **doc)
{
	int rc;

	*doc = NULL;
	sqlite3_bind_int64(db->st[S_TR_DOC_GET], 1, id);
	rc = one_row(db, S_TR_DOC_GET, read_str, doc, "read transfer manifest");
	return rc == 1 ? 0 : rc ? rc : FERRY_ENOJOB;
}

int ferry__db_tr_hash_add(struct ferry_db *db, int64_t id, int64_t file, const char *hash)
{
	sqlite3_stmt *q = db->st[S_TR_HASH_ADD];

	sqlite3_bind_int64(q, 1, id);
	sqlite3_bind_int64(q, 2, file);
	bind_text(q, 3, hash);
	return run(db, S_TR_HASH_ADD, "record a checksum");
}

int ferry__db_tr_hashes(struct ferry_db *db, int64_t id,
			void (*cb)(void *arg, int64_t file, const char *hash), void *arg)
{
	sqlite3_stmt *q = db->st[S_TR_HASH_LIST];
	int rc;

	sqlite3_bind_int64(q, 1, id);
	while ((rc = sqlite3_step(q)) == SQLITE_ROW)
		cb(arg, sqlite3_column_int64(q, 0), (const char *)sqlite3_column_text(q, 1));
	sqlite3_reset(q);
	sqlite3_clear_bindings(q);
	return rc == SQLITE_DONE ? 0 : db_fail(db, "read checksums");
}

int ferry__db_tr_hashes_clear(struct ferry_db *db, int64_t id)
{
	sqlite3_bind_int64(db->st[S_TR_HASH_DEL], 1, id);
	return run(db, S_TR_HASH_DEL, "delete checksums");
}

int ferry__db_tr_find_key(struct ferry_db *db, const char *key, int64_t *id)
{
	bind_text(db->st[S_TR_FIND_KEY], 1, key);
	return one_row(db, S_TR_FIND_KEY, read_int64, id, "find transfer key");
}

static int tr_get(struct ferry_db *db, enum stmt_id s, struct db_tr_row *t)
{
	sqlite3_stmt *q = db->st[s];
	int rc = sqlite3_step(q), err = 0;

	memset(t, 0, sizeof(*t));
	if (rc == SQLITE_ROW)
		err = ferry__db_row_transfer(q, t);
	sqlite3_reset(q);
	sqlite3_clear_bindings(q);
	if (rc == SQLITE_ROW)
		return err;
	return rc == SQLITE_DONE ? FERRY_ENOJOB : db_fail(db, "get transfer");
}

int ferry__db_tr_by_id(struct ferry_db *db, int64_t id, struct db_tr_row *t)
{
	sqlite3_bind_int64(db->st[S_TR_BY_ID], 1, id);
	return tr_get(db, S_TR_BY_ID, t);
}

int ferry__db_tr_by_dir(struct ferry_db *db, const char *dir, struct db_tr_row *t)
{
	bind_text(db->st[S_TR_BY_DIR], 1, dir);
	return tr_get(db, S_TR_BY_DIR, t);
}

int ferry__db_tr_update(struct ferry_db *db, const struct db_tr_row *t)
{
	sqlite3_stmt *q = db->st[S_TR_UPDATE];

	sqlite3_bind_int64(q, 1, t->id);
	bind_text(q, 2, ferry_transfer_state_name(t->state));
	sqlite3_bind_int64(q, 3, t->received);
	sqlite3_bind_double(q, 4, t->deadline);
	bind_opt_double(q, 5, t->ended_at);
	bind_text(q, 6, t->message);
	return run(db, S_TR_UPDATE, "update transfer");
}

int ferry__db_tr_delete(struct ferry_db *db, int64_t id)
{
	sqlite3_bind_int64(db->st[S_REF_DEL_TR], 1, id);
	if (run(db, S_REF_DEL_TR, "delete transfer references") ||
	    ferry__db_tr_hashes_clear(db, id))
		return FERRY_EINTERNAL;
	sqlite3_bind_int64(db->st[S_TR_DOC_DEL], 1, id);
	if (run(db, S_TR_DOC_DEL, "delete transfer manifest"))
		return FERRY_EINTERNAL;
	sqlite3_bind_int64(db->st[S_TR_DELETE], 1, id);
	return run(db, S_TR_DELETE, "delete transfer");
}

int ferry__db_tr_list(struct ferry_db *db, int (*cb)(void *arg, struct db_tr_row *t), void *arg)
{
	sqlite3_stmt *q = db->st[S_TR_LIST];
	int rc, err = 0;

	while ((rc = sqlite3_step(q)) == SQLITE_ROW) {
		struct db_tr_row t;
		if (!(err = ferry__db_row_transfer(q, &t)))
			err = cb(arg, &t);
		ferry__db_tr_row_release(&t);
		if (err)
			break;
	}
	sqlite3_reset(q);
	if (!err && rc != SQLITE_DONE)
		return db_fail(db, "list transfers");
	return err;
}

int ferry__db_tr_expired(struct ferry_db *db, double now, int64_t **ids, size_t *n)
{
	sqlite3_bind_double(db->st[S_TR_EXPIRED], 1, now);
	return collect_ids(db, db->st[S_TR_EXPIRED], "expired transfers", ids, n);
}

int ferry__db_ref_add(struct ferry_db *db, int64_t tid, int64_t job, int role)
{
	sqlite3_stmt *q = db->st[S_REF_ADD];

	sqlite3_bind_int64(q, 1, tid);
	sqlite3_bind_int64(q, 2, job);
	sqlite3_bind_int(q, 3, role);
	return run(db, S_REF_ADD, "add transfer reference");
}

int ferry__db_ref_jobs(struct ferry_db *db, int64_t tid, int role, int64_t **ids, size_t *n)
{
	sqlite3_bind_int64(db->st[S_REF_JOBS], 1, tid);
	sqlite3_bind_int(db->st[S_REF_JOBS], 2, role);
	return collect_ids(db, db->st[S_REF_JOBS], "jobs of a transfer", ids, n);
}

int ferry__db_ref_active_jobs(struct ferry_db *db, int64_t tid, int64_t **ids, size_t *n)
{
	sqlite3_bind_int64(db->st[S_REF_ACTIVE], 1, tid);
	return collect_ids(db, db->st[S_REF_ACTIVE], "unfinished jobs of a transfer", ids, n);
}

int ferry__db_ref_of_job(struct ferry_db *db, int64_t job, int role, int64_t **tids, size_t *n)
{
	sqlite3_bind_int64(db->st[S_REF_OF_JOB], 1, job);
	sqlite3_bind_int(db->st[S_REF_OF_JOB], 2, role);
	return collect_ids(db, db->st[S_REF_OF_JOB], "transfers of a job", tids, n);
}

int ferry__db_ref_pending(struct ferry_db *db, int64_t job)
{
	int n = 0, rc;

	sqlite3_bind_int64(db->st[S_REF_PENDING], 1, job);
	rc = one_row(db, S_REF_PENDING, read_int, &n, "pending inputs");
	/* a count always has its row */
	return rc == 1 ? n : rc ? rc : db_fail(db, "pending inputs");
}

/* ---- workflows (workflow.c) ---- */

int ferry__db_wf_find_key(struct ferry_db *db, const char *key, int64_t *id)
{
	bind_text(db->st[S_WF_FIND_KEY], 1, key);
	return one_row(db, S_WF_FIND_KEY, read_int64, id, "find workflow key");
}

int ferry__db_wf_insert(struct ferry_db *db, const char *key, const char *name, double now,
			const char *groups, double hours, int64_t *id)
{
	sqlite3_stmt *q = db->st[S_WF_INSERT];

	bind_text(q, 1, key);
	bind_text(q, 2, name);
	sqlite3_bind_double(q, 3, now);
	bind_text(q, 4, groups);
	bind_opt_double(q, 5, hours);
	if (run(db, S_WF_INSERT, "insert workflow"))
		return FERRY_EINTERNAL;
	*id = sqlite3_last_insert_rowid(db->h);
	return 0;
}

int ferry__db_wf_set_groups(struct ferry_db *db, int64_t wf, const char *groups)
{
	sqlite3_stmt *q = db->st[S_WF_SET_GROUPS];

	sqlite3_bind_int64(q, 1, wf);
	bind_text(q, 2, groups);
	return run(db, S_WF_SET_GROUPS, "record the workflow's groups") ? FERRY_EINTERNAL : 0;
}

int ferry__db_wf_insert_job(struct ferry_db *db, const struct db_wf_job *j, int64_t *id)
{
	sqlite3_stmt *q = db->st[S_WF_JOB_INSERT];

	bind_text(q, 1, j->key);
	bind_text(q, 2, j->name);
	sqlite3_bind_int(q, 4, j->state);
	sqlite3_bind_double(q, 5, j->now);
	bind_opt_double(q, 6, j->hours);
	sqlite3_bind_int64(q, 7, j->workflow);
	sqlite3_bind_int(q, 8, j->waiting);
	bind_text(q, 9, j->message);
	bind_text(q, 10, j->deps);
	sqlite3_bind_int64(q, 3, db->next_id);
	if (run(db, S_WF_JOB_INSERT, "insert workflow job"))
		return FERRY_EINTERNAL;
	*id = db->next_id++;
	return insert_spec(db, *id, j->spec, j->env) ? FERRY_EINTERNAL : 0;
}

int ferry__db_dep_add(struct ferry_db *db, int64_t pred, int64_t succ)
{
	sqlite3_bind_int64(db->st[S_DEP_ADD], 1, pred);
	sqlite3_bind_int64(db->st[S_DEP_ADD], 2, succ);
	return run(db, S_DEP_ADD, "insert dependency") ? FERRY_EINTERNAL : 0;
}

int ferry__db_successors(struct ferry_db *db, int64_t id, int64_t **ids, size_t *n)
{
	sqlite3_bind_int64(db->st[S_DEP_SUCCS], 1, id);
	return collect_ids(db, db->st[S_DEP_SUCCS], "successors", ids, n);
}

int ferry__db_descendants(struct ferry_db *db, int64_t id, int64_t **ids, size_t *n)
{
	sqlite3_bind_int64(db->st[S_DESCENDANTS], 1, id);
	return collect_ids(db, db->st[S_DESCENDANTS], "descendants", ids, n);
}

int ferry__db_waiting_down(struct ferry_db *db, int64_t id, int *left, enum ferry_job_status *st)
{
	sqlite3_stmt *q = db->st[S_WAITING_DOWN];
	int rc, found;

	sqlite3_bind_int64(q, 1, id);
	rc = sqlite3_step(q);
	if ((found = rc == SQLITE_ROW)) {
		*left = sqlite3_column_int(q, 0);
		*st = (enum ferry_job_status)sqlite3_column_int(q, 1);
		rc = sqlite3_step(q); /* RETURNING: the update is done at SQLITE_DONE */
	}
	sqlite3_reset(q);
	sqlite3_clear_bindings(q);
	if (rc != SQLITE_DONE)
		return db_fail(db, "count down dependencies");
	return found;
}

int ferry__db_release_job(struct ferry_db *db, int64_t id, enum ferry_job_status st)
{
	sqlite3_bind_int64(db->st[S_RELEASE_JOB], 1, id);
	sqlite3_bind_int(db->st[S_RELEASE_JOB], 2, st);
	return run(db, S_RELEASE_JOB, "release job") ? FERRY_EINTERNAL : 0;
}

int ferry__db_job_waiting(struct ferry_db *db, int64_t id, int64_t *waiting)
{
	int rc;

	*waiting = 0;
	sqlite3_bind_int64(db->st[S_JOB_WAITING], 1, id);
	rc = one_row(db, S_JOB_WAITING, read_int64, waiting, "read waiting");
	return rc < 0 ? rc : 0;
}

int ferry__db_wf_counts(struct ferry_db *db, int64_t wf, int64_t counts[FERRY_FAILED + 1])
{
	sqlite3_stmt *q = db->st[S_WF_COUNTS];
	int rc;

	memset(counts, 0, (FERRY_FAILED + 1) * sizeof(*counts));
	sqlite3_bind_int64(q, 1, wf);
	while ((rc = sqlite3_step(q)) == SQLITE_ROW) {
		int st = sqlite3_column_int(q, 0);
		if (st >= 0 && st <= FERRY_FAILED)
			counts[st] = sqlite3_column_int64(q, 1);
	}
	sqlite3_reset(q);
	sqlite3_clear_bindings(q);
	return rc == SQLITE_DONE ? 0 : db_fail(db, "count workflow jobs");
}

int ferry__db_wf_left(struct ferry_db *db, int64_t wf, int64_t *left)
{
	int rc;

	*left = 0;
	sqlite3_bind_int64(db->st[S_WF_LEFT], 1, wf);
	rc = one_row(db, S_WF_LEFT, read_int64, left, "count workflow jobs");
	return rc < 0 ? rc : 0;
}

static int wf_rows(struct ferry_db *db, enum stmt_id s, int64_t arg,
		   int (*cb)(void *arg, const struct db_wf_row *w), void *cbarg)
{
	sqlite3_stmt *q = db->st[s];
	int rc, err = 0, found = 0;

	sqlite3_bind_int64(q, 1, arg);
	while (!err && (rc = sqlite3_step(q)) == SQLITE_ROW) {
		struct db_wf_row w = {
		    .id = sqlite3_column_int64(q, 0),
		    .name = (const char *)sqlite3_column_text(q, 1),
		    .submitted_at = sqlite3_column_double(q, 2),
		    .groups = (const char *)sqlite3_column_text(q, 3),
		    .stopped = sqlite3_column_int(q, 4),
		};
		found = 1;
		err = cb(cbarg, &w);
	}
	sqlite3_reset(q);
	sqlite3_clear_bindings(q);
	if (err)
		return err;
	if (rc != SQLITE_DONE)
		return db_fail(db, "read workflows");
	return found ? 0 : FERRY_ENOJOB;
}

int ferry__db_wf_get(struct ferry_db *db, int64_t wf,
		     int (*cb)(void *arg, const struct db_wf_row *w), void *arg)
{
	return wf_rows(db, S_WF_GET, wf, cb, arg);
}

int ferry__db_wf_list(struct ferry_db *db, int (*cb)(void *arg, const struct db_wf_row *w),
		      void *arg)
{
	int rc = wf_rows(db, S_WF_LIST, 0, cb, arg);

	return rc == FERRY_ENOJOB ? 0 : rc;
}

int ferry__db_wf_jobs(struct ferry_db *db, int64_t wf, int64_t after, size_t max, int64_t **ids,
		      size_t *n)
{
	sqlite3_stmt *q = db->st[S_WF_JOBS];

	sqlite3_bind_int64(q, 1, wf);
	sqlite3_bind_int64(q, 2, after);
	sqlite3_bind_int64(q, 3, (sqlite3_int64)max);
	return collect_ids(db, q, "workflow jobs", ids, n);
}

int ferry__db_wf_gc(struct ferry_db *db)
{
	return run(db, S_WF_GC, "delete workflows") ? FERRY_EINTERNAL : 0;
}

static int wf_run(struct ferry_db *db, enum stmt_id s, int64_t wf, const char *what)
{
	sqlite3_bind_int64(db->st[s], 1, wf);
	return run(db, s, what) ? FERRY_EINTERNAL : 0;
}

int ferry__db_wf_set_stopped(struct ferry_db *db, int64_t wf, int stopped)
{
	return stopped ? wf_run(db, S_WF_STOP, wf, "stop workflow")
		       : wf_run(db, S_WF_UNSTOP, wf, "restart workflow");
}

int ferry__db_wf_delete(struct ferry_db *db, int64_t wf)
{
	return wf_run(db, S_WF_DELETE, wf, "delete workflow");
}

int ferry__db_wf_rerunnable(struct ferry_db *db, int64_t wf, int64_t **ids, size_t *n)
{
	sqlite3_bind_int64(db->st[S_WF_RERUNNABLE], 1, wf);
	sqlite3_bind_int(db->st[S_WF_RERUNNABLE], 2, FERRY_FAILED);
	return collect_ids(db, db->st[S_WF_RERUNNABLE], "jobs to run again", ids, n);
}

int ferry__db_preds_not_done(struct ferry_db *db, int64_t id, int64_t **ids, size_t *n)
{
	sqlite3_bind_int64(db->st[S_PREDS_NOT_DONE], 1, id);
	sqlite3_bind_int(db->st[S_PREDS_NOT_DONE], 2, FERRY_DONE);
	return collect_ids(db, db->st[S_PREDS_NOT_DONE], "dependencies", ids, n);
}

int ferry__db_wf_killing(struct ferry_db *db, int64_t wf, int64_t *n)
{
	int rc;

	*n = 0;
	sqlite3_bind_int64(db->st[S_WF_KILLING], 1, wf);
	rc = one_row(db, S_WF_KILLING, read_int64, n, "count jobs being killed");
	return rc < 0 ? rc : 0;
}

int ferry__db_wf_restart_find(struct ferry_db *db, int64_t wf, const char *key, int64_t *n)
{
	sqlite3_bind_int64(db->st[S_WF_RESTART_FIND], 1, wf);
	bind_text(db->st[S_WF_RESTART_FIND], 2, key);
	return one_row(db, S_WF_RESTART_FIND, read_int64, n, "find restart key");
}

int ferry__db_wf_restart_set(struct ferry_db *db, int64_t wf, const char *key, int64_t n)
{
	sqlite3_bind_int64(db->st[S_WF_RESTART_SET], 1, wf);
	bind_text(db->st[S_WF_RESTART_SET], 2, key);
	sqlite3_bind_int64(db->st[S_WF_RESTART_SET], 3, n);
	return run(db, S_WF_RESTART_SET, "record restart") ? FERRY_EINTERNAL : 0;
}

int ferry__db_rerun_job(struct ferry_db *db, int64_t id, enum ferry_job_status st, int waiting,
			const char *message)
{
	sqlite3_stmt *q = db->st[S_RERUN_JOB];

	sqlite3_bind_int64(q, 1, id);
	sqlite3_bind_int(q, 2, (int)st);
	sqlite3_bind_int(q, 3, waiting);
	bind_text(q, 4, message);
	return run(db, S_RERUN_JOB, "run a job again") ? FERRY_EINTERNAL : 0;
}

int ferry__db_select_workflow(struct ferry_db *db, int64_t wf, unsigned states, int64_t first,
			      int64_t last,
			      int (*cb)(void *arg, int64_t id, const char *name, int state),
			      void *arg)
{
	sqlite3_stmt *q = db->st[S_SELECT_WF];
	int rc, err = 0;

	sqlite3_bind_int64(q, 1, first);
	sqlite3_bind_int64(q, 2, last);
	sqlite3_bind_int64(q, 3, wf);
	while (!err && (rc = sqlite3_step(q)) == SQLITE_ROW) {
		int st = sqlite3_column_int(q, 2);
		if (!states || (states & (1u << st)))
			err = cb(arg, sqlite3_column_int64(q, 0),
				 (const char *)sqlite3_column_text(q, 1), st);
	}
	sqlite3_reset(q);
	sqlite3_clear_bindings(q);
	if (err)
		return err;
	return rc == SQLITE_DONE ? 0 : db_fail(db, "select workflow jobs");
}
