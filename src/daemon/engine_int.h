/*
 * engine_int.h - the engine's own state (engine.c): apart from engine.c so
 * that it stays one file of a size to read. Private to engine.c; every
 * other part goes through engine.h.
 */
#ifndef FERRY_ENGINE_INT_H
#define FERRY_ENGINE_INT_H

#include "dispatch.h"
#include "wait.h"
#include "work.h"
#include "workflow.h"

/* A control in flight on the DRMS (backend.h: FERRY__PENDING). */
struct ferry_ctl {
	struct ferry_client *c;		/* who waits for the answer; NULL: nobody (any more) */
	const struct ferry_reqdef *def; /* the request's row, for the reply */
	int64_t id;
	enum backend_ctl ctl;
	enum ferry_job_status to; /* the state once it is done; UNDETERMINED: none */
	int with_status;	  /* the answer carries the job's status (control) */
	struct ferry_ctl *next;
};

struct ferry_engine {
	struct ferry_loop *loop;
	char *resource;
	char *state_dir;
	char *jobs_dir;
	struct ferry_resource_cfg cfg;
	struct ferry_db *db;
	const struct ferry_backend *be;
	void *be_self;		     /* what be->open made: every method's first argument */
	int be_open;		     /* be->open succeeded: be->close is due */
	struct ferry_worker *worker; /* the DRMS backend's blocking calls */
	struct ferry_ctl *ctls;	     /* controls in flight */
	struct ferry_parking parked; /* requests waiting for the backend (dispatch.h) */
	struct ferry_jobenvs *envs;  /* the environments of base_env (jobenv.c) */
	int polling; /* a poll is out: the next one waits for ferry__engine_polled */
	struct job **htab;
	size_t hsize, nactive;
	size_t nfreed;	/* jobs freed since the last trim was planned (trim_heap) */
	double trim_at; /* monotonic time of the heap's next trim; 0: none */
	struct job *qhead, *qtail;
	int used_slots;
	int nstarted; /* local: jobs started and not ended (cfg.max_running bounds it) */
	int in_drms;  /* DRMS: jobs handing or handed, not ended (cfg.max_queued bounds it) */
	struct ferry_waits waits;
	double next_gc;
	double retry_start; /* monotonic time to retry a failed start; 0: none */
	/*
	 * Ids of the jobs of the open transaction (struct job.fresh): the
	 * commit clears their mark by id, at a cost of what was inserted,
	 * not of every job in memory. A job forgotten meanwhile is not found.
	 */
	int64_t *fresh;
	size_t nfresh, fresh_cap;
	int shutdown;
	char *tr_root;		    /* the transfer root, absolute and resolved */
	struct ferry_transfers *tr; /* the transfers' caches */
	int tr_root_fd;
	double hour_s;		/* seconds in an hour of disposal time (a test knob) */
	double next_poll;	/* monotonic time of the backend's next poll (DRMS) */
	struct ferry_wfwork wf; /* the workflow ends being carried out (workflow.c) */
	char instance[24];	/* ferry__engine_instance() */
};

#endif
