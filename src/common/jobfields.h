/*
 * jobfields.h - the one list of the fields of a job object (docs/protocol.md,
 * "Job object"). Every layer that maps a job is made from it: the engine's
 * object from its row and spec (src/daemon/db.c), struct ferry_job_info
 * from that object (src/lib/api.c), and the CLI's "key: value" and --json
 * output from the struct (src/cli/render.c). tests/conftest.py reads the
 * field names from this file. Adding a field: docs/architecture.md,
 * "Adding a job field".
 */
#ifndef FERRY_JOBFIELDS_H
#define FERRY_JOBFIELDS_H

#include <jansson.h>

#include "ferry.h"

/*
 * X(name, type, source, member, dflt), one row per field in the object's
 * order:
 *
 * name    the JSON key.
 * type    what the member holds and how the value is shown:
 *         INT     int, a JSON integer; null when negative
 *         INT64   int64_t, the same
 *         ENDINT  int, a JSON integer that only the end of the job gives:
 *                 the CLI shows null until the job ended
 *         NUM     double, a JSON number; null when negative (unknown)
 *         TIME    double, seconds since the epoch; null when 0 (not yet)
 *         STR     char *, a string; null when NULL
 *         STRV    char **, NULL-terminated, an array of strings (never null)
 *         BOOL    int, true or false
 *         STATE   enum ferry_job_status, as its name ("running")
 *         EXIT    enum ferry_exit_status, as its name ("none" before the end)
 *         IDV     int64_t *, 0-terminated, an array of ids (never null);
 *                 from a column holding a JSON array of integers (NULL: [])
 * source  where ferryd takes it from:
 *         COL(c)        column c of the jobs table (a scalar type)
 *         SPEC          the stored spec's key of the same name (null when
 *                       the spec has none)
 *         SPEC_AS(k)    the stored spec's key k
 *         DERIVED(f)    computed from the object's other fields by
 *                       derive_f() in jobfields.c, for the engine and the
 *                       CLI alike
 * member  M(m): member m of struct ferry_job_info; NONE: not in the struct.
 * dflt    the member's value when the object has null or nothing there
 *         (numbers; 0 for the other types).
 */
/* clang-format off */
#define FERRY__JOB_FIELDS(X)                                                                       \
	X(id,                      INT64,  COL(id),           M(id),                      0)       \
	X(name,                    STR,    COL(name),         M(name),                    0)       \
	X(command,                 STRV,   SPEC_AS(argv),     M(argv),                    0)       \
	X(status,                  STATE,  COL(state),        M(status),                  0)       \
	X(exit_status,             EXIT,   COL(exit_status),  M(exit_status),             0)       \
	X(exit_value,              ENDINT, COL(exit_value),   M(exit_value),              0)       \
	X(signal,                  ENDINT, COL(signal),       M(signal),                  0)       \
	X(submitted_at,            TIME,   COL(submitted_at), M(submitted_at),            0)       \
	X(started_at,              TIME,   COL(started_at),   M(started_at),              0)       \
	X(ended_at,                TIME,   COL(ended_at),     M(ended_at),                0)       \
	X(cpu_time,                NUM,    DERIVED(cpu_time), NONE,                       -1)      \
	X(cpu_user,                NUM,    COL(cpu_user),     M(cpu_user_s),              -1)      \
	X(cpu_sys,                 NUM,    COL(cpu_sys),      M(cpu_sys_s),               -1)      \
	X(max_rss_kb,              INT64,  COL(max_rss_kb),   M(max_rss_kb),              -1)      \
	X(wall_time,               NUM,    COL(wall),         M(wall_s),                  -1)      \
	X(message,                 STR,    COL(message),      M(message),                 0)       \
	X(stdin_path,              STR,    SPEC,              M(stdin_path),              0)       \
	X(stdout_path,             STR,    SPEC,              M(stdout_path),             0)       \
	X(stderr_path,             STR,    SPEC,              M(stderr_path),             0)       \
	X(join_stderrout,          BOOL,   SPEC,              M(join_stderrout),          0)       \
	X(working_directory,       STR,    SPEC,              M(working_directory),       0)       \
	X(env,                     STRV,   SPEC,              M(env),                     0)       \
	X(referenced_input_files,  STRV,   SPEC,              M(referenced_input_files),  0)       \
	X(referenced_output_files, STRV,   SPEC,              M(referenced_output_files), 0)       \
	X(disposal_timeout_hours,  INT,    SPEC,              M(disposal_timeout_hours),  168)     \
	X(cpus,                    INT,    SPEC,              M(cpus),                    1)       \
	X(memory_mb,               INT64,  SPEC,              M(memory_mb),               0)       \
	X(walltime_s,              INT64,  SPEC,              M(walltime_s),              0)       \
	X(tasks,                   INT,    SPEC,              M(tasks),                   1)       \
	X(cpus_per_task,           INT,    SPEC,              M(cpus_per_task),           1)       \
	X(nodes,                   INT,    SPEC,              M(nodes),                   0)       \
	X(launcher,                STR,    SPEC,              M(launcher),                0)       \
	X(queue,                   STR,    SPEC,              M(queue),                   0)       \
	X(native_specification,    STR,    SPEC,              M(native_specification),    0)       \
	X(submission_key,          STR,    COL(skey),         M(submission_key),          0)       \
	X(backend,                 STR,    SPEC,              M(backend),                 0)       \
	X(native_id,               STR,    COL(native_id),    M(native_id),               0)       \
	X(resource,                STR,    SPEC,              M(resource),                0)       \
	X(workflow,                INT64,  COL(workflow),     M(workflow),                0)       \
	X(dependencies,            IDV,    COL(deps),         M(dependencies),            0)
/* clang-format on */

/* A row's type; FERRY__JF_##type names it. */
enum ferry__jf_type {
	FERRY__JF_INT,
	FERRY__JF_INT64,
	FERRY__JF_ENDINT,
	FERRY__JF_NUM,
	FERRY__JF_TIME,
	FERRY__JF_STR,
	FERRY__JF_STRV,
	FERRY__JF_BOOL,
	FERRY__JF_STATE,
	FERRY__JF_EXIT,
	FERRY__JF_IDV,
};

/*
 * Fills *i from a job object by the table; the other members of *i are
 * left alone. Returns 0, or FERRY_ENOMEM, after which *i must still be
 * released with ferry__job_release() (what it holds is valid).
 */
int ferry__job_from_json(const json_t *o, struct ferry_job_info *i);
/* Only the members that need no allocation: numbers, booleans, states. */
void ferry__job_scalars_from_json(const json_t *o, struct ferry_job_info *i);
/* Frees what the members of *i own (strings, arrays), not i itself. */
void ferry__job_release(struct ferry_job_info *i);
/* The job object of *i, in the table's order, as the CLI shows it; NULL on ENOMEM. */
json_t *ferry__job_to_json(const struct ferry_job_info *i);
/*
 * Sets the DERIVED fields of a job object from its other fields (a key
 * already there keeps its place). 0, or -1 on ENOMEM.
 */
int ferry__job_derive(json_t *o);

/*
 * The object of a transfer (docs/transfers.md), as
 * `ferry transfers --json` shows it; NULL on ENOMEM.
 */
json_t *ferry__transfer_to_json(const struct ferry_transfer_info *t);

#endif
