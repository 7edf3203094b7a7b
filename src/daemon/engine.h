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
#include "wait.h"

struct ferry_engine;
struct ferry_client;
struct ferry_worker;
struct ferry_reqdef;
struct ferry_jobenvs;

/*
 * The engine of a resource, on loop (which must outlive it): opens its
 * database (checked first with check_db: the last engine stopped on a
 * fatal error) and backend and re-attaches the jobs of the last engine.
 */
struct ferry_engine *ferry__engine_new(struct ferry_loop *loop, const char *resource,
				       const char *state_dir, const struct ferry_resource_cfg *cfg,
				       int check_db, char *err, size_t errlen);
struct ferry_loop *ferry__engine_loop(struct ferry_engine *eng);
/*
 * At start (lost.c): job directories beyond the highest id the database
 * handed out mean it lost jobs. Each is recorded as failed, the id
 * sequence moves past them, and the engine warns. 0, or an error with err.
 */
int ferry__engine_find_lost(struct ferry_engine *eng, char *err, size_t errlen);
/*
 * At start (lost.c), once the instance is loaded: makes the job
 * directory this engine's (a mark naming its instance; another engine's
 * mark is refused, as two engines would give their job 5 one directory),
 * and refuses a job_dir changed while the old one still holds job
 * directories (their jobs' logs and marks would be looked for in the
 * new one). 0, or an error with err.
 */
int ferry__engine_claim_jobs_dir(struct ferry_engine *eng, char *err, size_t errlen);
/*
 * At start (lost.c): the engine's token among the user's engines, made
 * once and kept in the database's meta table, into out (len >= 17: 16 hex
 * digits). 0, or -1 with err set.
 */
int ferry__instance_load(struct ferry_db *db, char *out, size_t len, char *err, size_t errlen);
/* What the engine warns every client of (hello's "warnings"), or NULL. */
json_t *ferry__engine_warnings(struct ferry_engine *eng);
void ferry__engine_free(struct ferry_engine *eng);
const char *ferry__engine_state_dir(struct ferry_engine *eng);
const struct ferry_resource_cfg *ferry__engine_cfg(struct ferry_engine *eng);

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
/* The result of a job that never ran: es, msg, no usage, ended now. */
struct job_result ferry__job_result_unran(enum ferry_exit_status es, const char *msg);
/* The job in memory, or NULL: ended, unknown, or waiting in the database (held). */
struct job *ferry__engine_job(struct ferry_engine *eng, int64_t id);
/*
 * The job if it has not ended: in memory, or taken back from the database
 * where a held job waits (docs/architecture.md, "Held jobs wait in the
 * database"); it then stays in memory until it ends. NULL when it ended,
 * is unknown, or cannot be read (said in the log). Every request that acts
 * on a job or waits for it takes it this way.
 */
struct job *ferry__engine_job_load(struct ferry_engine *eng, int64_t id);
/*
 * j goes back to the database (freed) when nothing of the engine needs it
 * any more: a held job on the engine's own scheduler that nothing waits
 * on, kills or disposes of (docs/architecture.md, "Held jobs wait in the
 * database"). After the request that took it back or held it.
 */
void ferry__engine_job_settle(struct ferry_engine *eng, struct job *j);
/*
 * Kills the held jobs first..last that wait in the database (not in
 * memory, not producing an output), in one statement: how many into
 * *changed. 0, or an error. Nothing waits on them: a wait takes its jobs
 * into memory.
 */
int ferry__engine_kill_held(struct ferry_engine *eng, int64_t first, int64_t last, size_t *changed);
/*
 * The backend's start of j never reached the job (local: the runner died
 * before it claimed it): j goes back to the head of the queue, or on hold
 * when it was stopped meanwhile; killed meanwhile, or lost too often, it
 * ends (j is then freed).
 */
void ferry__engine_job_requeue(struct ferry_engine *eng, struct job *j);
/* The backend learnt the job's native id (local: its pid) after the start. */
void ferry__engine_job_native_id(struct ferry_engine *eng, struct job *j, const char *native_id);
/*
 * A DRMS took the job under native_id. A job killed while it was being
 * handed is cancelled at once (j may then be freed).
 */
void ferry__engine_job_handed(struct ferry_engine *eng, struct job *j, const char *native_id);
/* The DRMS refused the job: it ends aborted with msg (killed, when its kill was asked); j is freed.
 */
void ferry__engine_job_refused(struct ferry_engine *eng, struct job *j, const char *msg);
/*
 * The DRMS could not take the job now (msg says why): it goes back to the
 * queue, handed again after a pause (at once when msg is NULL); a job
 * killed meanwhile ends, and j is freed.
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
/*
 * j's spec. A job recovered at the engine's start (local backend) waits
 * without it: a million held jobs' specs took most of a minute to parse
 * and gigabytes to keep. It is read from the database when the job is
 * next to start or is adopted, and j->cpus with it; a job that ends
 * without it leaves its disposal hours to the database.
 * Never NULL: an empty object when it cannot be read (said in the log).
 */
json_t *ferry__engine_job_spec(struct ferry_engine *eng, struct job *j);
/* The backend re-attached a started job after an engine restart. */
void ferry__engine_job_adopted(struct ferry_engine *eng, struct job *j);
/* The database, for the server's group commit. */
struct ferry_db *ferry__engine_db(struct ferry_engine *eng);
/* Where jobenv.c keeps what it knows of the environments of base_env. */
struct ferry_jobenvs **ferry__engine_jobenvs(struct ferry_engine *eng);
/*
 * A connection went away: drop what deferred replies kept of it (its
 * pending wait), so that nothing answers a connection that is freed.
 */
void ferry__engine_client_closed(struct ferry_engine *eng, struct ferry_client *c);
int ferry__engine_shutting_down(struct ferry_engine *eng);
/* The transfer root (absolute, resolved) and a descriptor of it. */
const char *ferry__engine_transfer_root(struct ferry_engine *eng);
int ferry__engine_transfer_root_fd(struct ferry_engine *eng);
/* What the transfers keep between requests (transfer.h). */
struct ferry_transfers *ferry__engine_transfers(struct ferry_engine *eng);
/* Seconds in an hour of disposal time: 3600, or $FERRYD_TEST_HOUR_SECONDS. */
double ferry__engine_hour(struct ferry_engine *eng);
/* A transfer became ready: jobs waiting only for their inputs may go on. */
void ferry__engine_inputs_changed(struct ferry_engine *eng, int64_t tid);
/* A transfer was removed: jobs still waiting for it are aborted. */
void ferry__engine_inputs_gone(struct ferry_engine *eng, int64_t tid);

/* ---- what the job requests change and read (requests.c) ---- */
const struct ferry_backend *ferry__engine_backend(struct ferry_engine *eng);
/* What the backend's open made: the first argument of its methods. */
void *ferry__engine_backend_self(struct ferry_engine *eng);
/*
 * Sends ctl to job j through the backend: 0 when done (the job's state
 * becomes to, unless to is FERRY_UNDETERMINED; a terminated job that had
 * not started ends killed), a FERRY_E* code with err set, or
 * FERRY__PENDING: the backend asks its DRMS, and the reply to request def
 * on c comes when it answered (ferry__engine_control_done).
 */
int ferry__engine_control(struct ferry_engine *eng, struct ferry_client *c,
			  const struct ferry_reqdef *def, struct job *j, enum backend_ctl ctl,
			  enum ferry_job_status to, char *err, size_t errlen);
/* The engine's requests that wait for the backend (dispatch.h). */
struct ferry_parking *ferry__engine_parking(struct ferry_engine *eng);
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
 * A new job submitted held, parked at once where parked jobs wait in the
 * database (not on a DRMS): its id is marked fresh and no struct job is
 * made, nor freed again at once (a tenth of a held bulk submit's CPU).
 * 1 when parked, 0 when the job is to be added, -1 when out of memory.
 */
int ferry__engine_job_park_new(struct ferry_engine *eng, int64_t id);
/*
 * Tracks a job the open transaction inserted; it becomes startable once
 * that transaction is committed. -1 when out of memory (j is freed).
 */
int ferry__engine_job_add_new(struct ferry_engine *eng, struct job *j);
/*
 * Job id, not in memory, is of the open transaction: none of its
 * successors released in it starts before the commit. 0 or FERRY_ENOMEM.
 */
int ferry__engine_fresh(struct ferry_engine *eng, int64_t id);
/* The workflow ends being carried out (workflow.c), and the parked waits (wait.c). */
struct ferry_wfwork *ferry__engine_wf(struct ferry_engine *eng);
struct ferry_waits *ferry__engine_waits(struct ferry_engine *eng);
/* Drops a job of the open transaction again (its request failed and rolled back). */
void ferry__engine_job_forget(struct ferry_engine *eng, struct job *j);
/* Queues the job to start (or to be handed to the DRMS) when its state says so. */
void ferry__engine_job_queue(struct ferry_engine *eng, struct job *j);
/* A job in the run queue goes to its head: the next to start. */
void ferry__engine_job_first(struct ferry_engine *eng, struct job *j);
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
int ferry__engine_wait(struct ferry_engine *eng, struct ferry_client *c,
		       const struct ferry_reqdef *def, int64_t *ids, size_t n, double deadline);
/*
 * A wait for every job not ended now in a->states up to a->upto, and for
 * the failures logged since a->since (wait.h), on connection c: always
 * parked (1; the tick answers with its counts, in the same iteration when
 * none), or FERRY_ENOMEM, FERRY_EINTERNAL. A job being disposed is ended
 * already. Costs a pass over the jobs in memory now and the failures
 * since the mark (held ones are taken back from the database first when
 * a->states has user_on_hold); each job's end then costs the waits that hold it.
 */
int ferry__engine_wait_all(struct ferry_engine *eng, struct ferry_client *c,
			   const struct ferry_reqdef *def, const struct ferry_wait_all_args *a);
/*
 * Calls fn on every job in memory (every job not ended), in no order;
 * fn must not add or remove jobs.
 */
void ferry__engine_each_job(struct ferry_engine *eng, void (*fn)(void *arg, struct job *j),
			    void *arg);

/* ---- job specs (spec.c) ---- */
/*
 * A normalised copy of a client's job spec (docs/protocol.md, "Job spec":
 * paths resolved, defaults filled in, the backend's check passed), or NULL
 * with *code and err set. *seen (NULL at first, free() it after the
 * request) is the working directory last found to exist in this request,
 * which the next spec naming it is not looked up again for. late: the
 * files are not looked at now (the working directory, stdin, the
 * directories of stdout and stderr, the referenced inputs outside the
 * transfers), only when the job starts: those of a workflow's job that
 * waits for its dependencies may be what they make. common (NULL: none)
 * holds fields of a batch's jobs that spec leaves out (a field spec has,
 * even null, is spec's).
 */
json_t *ferry__spec_normalise(struct ferry_engine *eng, json_t *spec, json_t *common, int late,
			      char **seen, char *err, size_t errlen, int *code);
/*
 * The integer field key of o into *out: dflt when absent or null, else it
 * must be an integer from min to max (0, or FERRY_EINVAL with err set).
 */
int ferry__opt_int(json_t *o, const char *key, json_int_t min, json_int_t max, json_int_t dflt,
		   json_int_t *out, char *err, size_t errlen);

#endif
