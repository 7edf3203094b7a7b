/* workflow.h - jobs with dependencies, run by the engine (workflow.c). */
#ifndef FERRY_WORKFLOW_H
#define FERRY_WORKFLOW_H

#include <stddef.h>
#include <stdint.h>

#include "ferry.h"

struct ferry_engine;
struct wf_end;

/*
 * The ends of workflow jobs still to be carried out to their successors:
 * a job's end may end others (a barrier released, descendants aborted),
 * whose ends are queued here rather than carried out by recursion, so a
 * chain of any depth costs no stack. Zero-initialised is empty.
 */
struct ferry_wfwork {
	struct wf_end *v;
	size_t n, cap;
	int busy;     /* a job's end is being carried out: others queue */
	int aborting; /* descendants are being aborted: theirs are too, nothing to queue */
	/*
	 * The jobs run again whose last run's directory waits, renamed
	 * jobs/<id>.old, to be removed; those before committed are of
	 * transactions committed (ferry__wf_committed).
	 */
	int64_t *aside;
	size_t naside, aside_cap, committed;
};

/*
 * Job id of workflow wf (0: none, and nothing happens) has ended, and
 * its end is recorded: how is NULL when it ended done, else what it did
 * ("failed", "was killed", "was disposed of"). Done: its successors'
 * counts of dependencies go down, and those reaching 0 are released.
 * Else: every job downstream of it that has not ended ends without
 * running (failed, aborted, a message naming it). In the open
 * transaction, so the end and what follows from it commit together.
 */
void ferry__wf_job_ended(struct ferry_engine *eng, int64_t id, int64_t wf, const char *how);
void ferry__wf_work_free(struct ferry_wfwork *w);
/* The open transaction committed: the directories it set aside may go. */
void ferry__wf_committed(struct ferry_engine *eng);
/* Removes some of the directories set aside; 1 when some are left. */
int ferry__wf_tick(struct ferry_engine *eng);
/*
 * At the engine's start: a directory set aside by a restart that never
 * committed (the job still ended, none at jobs/<id>) goes back; the
 * others wait for ferry__wf_tick.
 */
void ferry__wf_sweep(struct ferry_engine *eng);
/* What ferry__wf_job_ended takes as how, for a job that ended in st (es; disposed of). */
const char *ferry__wf_how(enum ferry_job_status st, enum ferry_exit_status es, int disposed);

#endif
