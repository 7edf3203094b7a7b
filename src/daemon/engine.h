/*
 * engine.h - the engine (engine.c): jobs in memory, scheduling, and what
 * backends call to report. The other parts of ferryd have their own
 * headers: backend.h, db.h, loop.h, transfer.h, work.h, run.h, job.h.
 */
#ifndef FERRY_ENGINE_H
#define FERRY_ENGINE_H

#include <jansson.h>
#include <stdint.h>
#include <sys/types.h>

#include "backend.h"
#include "cfg.h"
#include "db.h"
#include "ferry.h"
#include "job.h"
#include "loop.h"
#include "transfer.h"

struct ferry_engine;
struct ferry_conn_s;
struct ferry_worker;

/*
 * The engine of a resource, on loop (which must outlive it): opens its
 * database and backend and re-attaches the jobs of the last engine.
 */
struct ferry_engine *ferry__engine_new(struct ferry_loop *loop, const char *resource,
				       const char *state_dir, const struct ferry_resource_cfg *cfg,
				       char *err, size_t errlen);
struct ferry_loop *ferry__engine_loop(struct ferry_engine *eng);
void ferry__engine_free(struct ferry_engine *eng);
const char *ferry__engine_state_dir(struct ferry_engine *eng);
const struct ferry_resource_cfg *ferry__engine_cfg(struct ferry_engine *eng);

/* Handles one request; fills *reply and *bin (empty when the reply has no binary part). */
void ferry__engine_request(struct ferry_engine *eng, struct ferry_conn_s *c, json_t *req,
			   const void *data, size_t datalen, json_t **reply, struct ferry_bin *bin);
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
/* A DRMS took the job under native_id. */
void ferry__engine_job_handed(struct ferry_engine *eng, struct job *j, const char *native_id);
/* The DRMS refused the job: it ends aborted with msg; j is freed. */
void ferry__engine_job_refused(struct ferry_engine *eng, struct job *j, const char *msg);
/*
 * The DRMS could not take the job now (msg says why): it goes back to the
 * queue, handed again after a pause.
 */
void ferry__engine_job_unhanded(struct ferry_engine *eng, struct job *j, const char *msg);
/* The poll the engine asked for is over: the next one is due in an interval. */
void ferry__engine_polled(struct ferry_engine *eng);
/*
 * A control that went FERRY__PENDING is over: rc 0, or a FERRY_E* code
 * with msg. The engine applies it and answers whoever asked.
 */
void ferry__engine_control_done(struct ferry_engine *eng, struct ferry_ctl *token, int rc,
				const char *msg);
/* What a check waited for has come: requests parked on it run again. */
void ferry__engine_backend_ready(struct ferry_engine *eng);
/* The thread a DRMS backend runs its blocking calls on (NULL without FERRY_BE_DRMS). */
struct ferry_worker *ferry__engine_worker(struct ferry_engine *eng);
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
/* A connection went away: drop its pending wait. */
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

#endif
