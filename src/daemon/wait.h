/* wait.h - wait requests whose reply waits for their jobs to end. */
#ifndef FERRY_WAIT_H
#define FERRY_WAIT_H

#include <stddef.h>
#include <stdint.h>

#include "ferry.h" /* FERRY_WAIT_FAILED_IDS: how many failed ids a reply names */

struct ferry_engine;
struct ferry_client;
struct ferry_reqdef;
struct waiter;
struct job;

/* The engine's parked waits; zero-initialised is empty. */
struct ferry_waits {
	struct waiter *head;
};

/*
 * A wait for jobs ids[0..n) (taken, malloc'd) on connection c until
 * deadline (monotonic seconds; <0: none): 0 when all have ended already
 * (answer now), 1 when parked (ferry__waits_wake answers it through
 * ferry__req_answer with def), or FERRY_ENOMEM.
 */
int ferry__waits_add(struct ferry_waits *ws, struct ferry_engine *eng, struct ferry_client *c,
		     const struct ferry_reqdef *def, int64_t *ids, size_t n, double deadline);

/* What a wait for all jobs takes (docs/protocol.md, "wait for all jobs"). */
struct ferry_wait_all_args {
	unsigned states; /* a mask of 1u << state */
	int64_t upto;	 /* the highest id taken; < 0: any; 0: none */
	int64_t since;	 /* count the failures logged after this mark; < 0: none */
	double deadline; /* monotonic seconds; < 0: none */
};

/*
 * A wait for every job in memory (not ended) in a->states up to a->upto,
 * on connection c until a->deadline: each job gets a mark, taken off when
 * it ends (ferry__waits_job_ended). Its failures are the jobs up to a->upto
 * (< 0: the set's highest id) whose failures the database logged after
 * a->since (< 0: the mark at the call), read when it answers. The jobs
 * of the set that wait in the database (held, or waiting for their
 * dependencies) stay there: the wait keeps their ids
 * (ferry__waits_job_loaded, ferry__waits_held_ended). Always parked
 * (1): the tick answers with the wait's counts, at once when it took no
 * job. Or FERRY_ENOMEM, FERRY_EINTERNAL (the database) or another error
 * reading the held jobs.
 */
int ferry__waits_add_all(struct ferry_waits *ws, struct ferry_engine *eng, struct ferry_client *c,
			 const struct ferry_reqdef *def, const struct ferry_wait_all_args *a);

/*
 * Job j ends (or is disposed of): the waits for all jobs that hold it
 * count it down. Costs the waits that hold j.
 */
void ferry__waits_job_ended(struct job *j);
/*
 * Job j, which waited in the database, is in memory again
 * (ferry__engine_job_load): the waits for all jobs that hold its id mark
 * it, so that its end counts them down. Costs a binary search a wait.
 */
void ferry__waits_job_loaded(struct ferry_waits *ws, struct job *j);
/*
 * Jobs from first to last that waited in the database may have ended
 * there, without a struct job (a kill of held jobs, a workflow's job
 * aborted): the waits for all that hold their ids read the state of each
 * and count those ended down.
 */
void ferry__waits_held_ended(struct ferry_waits *ws, struct ferry_engine *eng, int64_t first,
			     int64_t last);

/*
 * Parks a wait for the jobs of workflow wf, left of them not ended now
 * (docs/architecture.md, "Workflows"): 1 when parked, 0 when left is 0
 * (the reply is now), or FERRY_ENOMEM. Each end of one of its jobs, in
 * memory or in the database only, counts it down
 * (ferry__waits_workflow_ended): no job is marked, none read back.
 */
int ferry__waits_add_workflow(struct ferry_waits *ws, struct ferry_client *c,
			      const struct ferry_reqdef *def, int64_t wf, size_t left,
			      double deadline);
void ferry__waits_workflow_ended(struct ferry_waits *ws, int64_t wf);

/* Answers the waits whose jobs have all ended, or whose deadline passed. */
void ferry__waits_wake(struct ferry_waits *ws, struct ferry_engine *eng);

/* Drops the waits of a connection that closed. */
void ferry__waits_forget(struct ferry_waits *ws, struct ferry_engine *eng, struct ferry_client *c);

/* The earliest deadline of a wait if before next, else next. */
double ferry__waits_next_deadline(const struct ferry_waits *ws, double next);

/* Frees every wait, unanswered (the engine is going away). */
void ferry__waits_release(struct ferry_waits *ws);

#endif
