/*
 * backend.h - the interface between the engine and a backend (one file
 * per scheduler in src/backends/, one line in table.c).
 *
 * A backend's state lives in the object its open returns, which every
 * other method receives (SQLite's VFS pAppData, libuv's handles): no
 * backend keeps file-scope state, so that nothing ties a backend to one
 * engine per process. What a backend is (a DRMS in front of the engine
 * or not) is declared in its flags, never inferred from which methods it
 * has. All database writes stay the engine's: a backend reports through
 * the ferry__engine_job_* calls of engine.h.
 */
#ifndef FERRY_BACKEND_H
#define FERRY_BACKEND_H

#include <jansson.h>
#include <stddef.h>

#include "job.h"

struct ferry_engine;

/* Control actions a backend implements. */
enum backend_ctl { CTL_SUSPEND, CTL_RESUME, CTL_TERMINATE, CTL_HOLD, CTL_RELEASE };

/* Opaque: the engine's record of a control in flight (control's token). */
struct ferry_ctl;

/*
 * A method's answer "later": the backend asked the DRMS on its worker
 * thread (work.h) and reports the outcome on the loop. Positive, so that
 * it never reads as a FERRY_E* code.
 */
#define FERRY__PENDING 1

enum {
	/*
	 * A DRMS queues, schedules and holds: the engine hands it every
	 * queued job and held ones at once (hand), learns their states from
	 * poll, and relays controls. Without it the engine schedules (slot
	 * accounting, FIFO order, holds) and calls start per job.
	 */
	FERRY_BE_DRMS = 1u << 0,
};

struct ferry_backend {
	const char *name; /* the `scheduler` of ferry.conf */
	unsigned flags;	  /* FERRY_BE_* */
	/* DRMS: default seconds between polls, when the resource says none. */
	double poll_interval;
	/*
	 * Before ferryd does anything else, with its argv: the backend may
	 * exec ferryd again in an environment its library needs (drmaa: a
	 * glibc tunable for static TLS); it returns when it did not.
	 * Optional.
	 */
	void (*pre_exec)(char **argv);
	/*
	 * Once, when the engine starts, before any adopt: loads and opens
	 * what the backend needs and sets *self, passed to every other
	 * method. 0, or a FERRY_E* code with err set (the engine does not
	 * start; the client gets err).
	 */
	int (*open)(struct ferry_engine *eng, void **self, char *err, size_t errlen);
	/* Once when the engine stops, if open succeeded. */
	void (*close)(void *self);
	/*
	 * Checks what a normalised spec asks against the resource (queue,
	 * native specification...): 0, a FERRY_E* code with err set, or
	 * FERRY__PENDING when the backend must first ask the DRMS (the
	 * request waits, and runs again once the backend calls
	 * ferry__engine_backend_ready). Optional.
	 */
	int (*check)(void *self, json_t *spec, char *err, size_t errlen);
	/* Starts a queued job (not DRMS). 0, or a FERRY_E* code with err set. */
	int (*start)(void *self, struct job *j, char *err, size_t errlen);
	/*
	 * Sends a control to a started (or handed) job: 0 when done, a
	 * FERRY_E* code with err set, or FERRY__PENDING when the outcome
	 * comes later through ferry__engine_control_done(eng, ctl_token,
	 * ...), exactly once. Optional: the engine refuses controls of
	 * started jobs without it.
	 */
	int (*control)(void *self, struct job *j, enum backend_ctl ctl, struct ferry_ctl *token,
		       char *err, size_t errlen);
	/*
	 * After an engine restart: re-attaches a job that may have been
	 * started or handed. 1 when attached (running or ended: the backend
	 * reports the end itself), 0 when the job never started or the DRMS
	 * never had it. Required.
	 */
	int (*adopt)(void *self, struct job *j);
	/* Number of job slots (not DRMS); 0: as many as online CPUs. Optional. */
	int (*slots)(void *self);
	/*
	 * DRMS: learns the states of the handed jobs; called every
	 * poll_interval, never while the last poll is still out. The backend
	 * calls ferry__engine_polled once it is over (at once, or from its
	 * worker's done callback).
	 */
	void (*poll)(void *self);
	/*
	 * DRMS: takes jobs over (a job array where the DRMS has them). The
	 * engine has marked them handing; each later ends up handed
	 * (ferry__engine_job_handed), refused (ferry__engine_job_refused) or
	 * back in the queue (ferry__engine_job_unhanded, when the DRMS may
	 * take it later). Returns 0, or FERRY_EAGAIN with err set when
	 * nothing was taken.
	 */
	int (*hand)(void *self, struct job **jobs, size_t n, char *err, size_t errlen);
	/*
	 * DRMS: a client asks about a handed job that has not started; the
	 * backend may learn cheaply (no DRMS call) that it did, between two
	 * polls. Optional.
	 */
	void (*refresh)(void *self, struct job *j);
};

extern const struct ferry_backend ferry__backend_local;
extern const struct ferry_backend ferry__backend_slurm;
extern const struct ferry_backend ferry__backend_drmaa;

/* The backend serving a scheduler name, or NULL. */
const struct ferry_backend *ferry__backend_find(const char *scheduler);

#endif
