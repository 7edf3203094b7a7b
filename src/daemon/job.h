/* job.h - a job as the engine tracks it and as a backend reports its end. */
#ifndef FERRY_JOB_H
#define FERRY_JOB_H

#include <jansson.h>
#include <stdint.h>

#include "ferry.h"

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

struct ferry_wmark;

/* A job the engine still tracks in memory (every job not ended yet). */
struct job {
	int64_t id;
	enum ferry_job_status state;
	int cpus;
	int kill_requested;
	int dispose_requested;
	int fresh;	  /* inserted by the open transaction: not startable before commit */
	int handed;	  /* a DRMS has it: the DRMS reports its state */
	int handing;	  /* being handed to a DRMS: out of the queue, the backend reports */
	int requeues;	  /* how often its start was lost with the runner (local) */
	int64_t workflow; /* its workflow (workflow.c); 0: none */
	json_t *spec;	  /* normalised spec (owned); NULL: not read yet (ferry__engine_job_spec) */
	/* backend data */
	double started_at;
	char *native_id;
	/* links */
	struct job *hnext;	   /* hash chain */
	struct job *qnext, *qprev; /* run queue (queued_active, not started) */
	int in_queue;
	enum ferry_job_status known; /* while undetermined: the state before (DRMS) */
	struct ferry_wmark *wmarks;  /* the waits for all jobs that hold it (wait.c) */
};

/*
 * Whether the job has started: running or suspended, or undetermined
 * (its DRMS cannot tell now) after it was seen to start.
 */
static inline int ferry__job_started(const struct job *j)
{
	return j->state == FERRY_RUNNING || j->state == FERRY_USER_SUSPENDED ||
	       j->state == FERRY_SYSTEM_SUSPENDED || j->state == FERRY_USER_SYSTEM_SUSPENDED ||
	       (j->state == FERRY_UNDETERMINED && j->started_at > 0);
}

/*
 * The job's state, or, while its DRMS cannot tell where it stands
 * (undetermined), the last state known: what a control acts on.
 */
static inline enum ferry_job_status ferry__job_known(const struct job *j)
{
	return j->state == FERRY_UNDETERMINED ? j->known : j->state;
}

#endif
