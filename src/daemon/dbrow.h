/*
 * dbrow.h - a job's row of the database as the job object of
 * docs/protocol.md (dbrow.c): which columns a job query selects, and how
 * they and the stored spec make the object. No SQL is run here; db.c
 * runs the queries that select JOB_COLS.
 */
#ifndef FERRY_DBROW_H
#define FERRY_DBROW_H

#include <jansson.h>
#include <sqlite3.h>

#include "db.h"
#include "jobfields.h"

/*
 * What a job object is read from (ferry__db_row_text): the stored spec, then the
 * column of each COL() field of jobfields.h, in the table's order.
 */
#define COL_NAME(name, type, source, member, dflt) COL_NAME_##source
#define COL_NAME_COL(c)				   ", " #c
#define COL_NAME_SPEC
#define COL_NAME_SPEC_AS(k)
#define COL_NAME_DERIVED(f)
#define JOB_COLS "spec" FERRY__JOB_FIELDS(COL_NAME)

/* The index of each of them in a JOB_COLS row: JC_SPEC, JC_id, ... */
#define COL_ENUM(name, type, source, member, dflt) COL_ENUM_##source
#define COL_ENUM_COL(c)				   JC_##c,
#define COL_ENUM_SPEC
#define COL_ENUM_SPEC_AS(k)
#define COL_ENUM_DERIVED(f)
enum job_col { JC_SPEC, FERRY__JOB_FIELDS(COL_ENUM) };

/* What a transfer query selects, for ferry__db_row_transfer(). */
#define TR_COLS                                                                                    \
	"id, tkey, dir, server_path, kind, state, received, created_at, deadline, ended_at, "      \
	"message"

/*
 * The job object of docs/protocol.md ("Job object") from the JOB_COLS row
 * q is on, as JSON text appended to t, with what the engine adds to the
 * row: the live fields of the job j in memory (NULL: none; its state,
 * start and DRMS id),
 * the output paths it uses by default, the derived fields. The one maker
 * of job objects: `info` parses it, a listing sends it as it stands.
 * jobs_dir: the engine's directory of job directories (the default paths);
 * j: the job in memory, or NULL. 0, or FERRY_ENOMEM.
 */
struct ferry_jtext;
struct job;
int ferry__db_row_text(const char *jobs_dir, const struct job *j, sqlite3_stmt *q,
		       struct ferry_jtext *t);

/*
 * The TR_COLS row q is on: 0, FERRY_ENOMEM, or FERRY_EINTERNAL for a kind
 * or state that is no name of its enum (see dbrow.c).
 */
int ferry__db_row_transfer(sqlite3_stmt *q, struct db_tr_row *t);
/* Column i as a malloc'd string; NULL for NULL (or without memory). */
char *ferry__db_col_strdup(sqlite3_stmt *q, int i);

#endif
