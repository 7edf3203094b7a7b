/*
 * jobprocs.h - what belongs to a job of the local backend, so that the
 * runner (runner.c) can signal and kill all of it, processes that left
 * the job's process group or session included: a cgroup (v2) per job
 * where the runner may create one, else the process tree that /proc shows
 * (docs/architecture.md, "Local jobs and their processes").
 */
#ifndef FERRY_JOBPROCS_H
#define FERRY_JOBPROCS_H

#include <stdint.h>
#include <sys/types.h>

/* The environment variable that marks a job's processes (tree tracking). */
#define FERRY_JOB_ID_ENV "FERRY_JOB_ID"

/* How the runner finds its jobs' processes; one per runner. */
struct jobprocs_base {
	char *cgroot; /* the runner's own cgroup (v2) directory; NULL: tree tracking */
	pid_t self;   /* the runner: never one of a job's processes */
};

/* One job's processes. */
struct jobprocs {
	int64_t id;
	pid_t pid;    /* the job's first process: its session and process group */
	int cgfd;     /* the job's cgroup directory, -1 when tracked by the tree */
	char *cgpath; /* its path, NULL when none */
};

/*
 * Finds out whether jobs get a cgroup; says which way applies (and why)
 * in why. Never fails: without a usable cgroup (v2), the tree it is.
 */
void ferry__jobprocs_init(struct jobprocs_base *b, char *why, size_t whylen);

/*
 * Prepares p for job id: creates its cgroup when the base has one
 * (p->cgfd; the job's child joins it through its cgroup.procs). Leaves
 * tree tracking (cgfd -1) when it cannot; 0, or a negative errno.
 */
int ferry__jobprocs_new(struct jobprocs_base *b, int64_t id, struct jobprocs *p);

/* The job could not join its cgroup: tree tracking for it. */
void ferry__jobprocs_uncgroup(struct jobprocs *p);

/* Sends sig to every process of the job that can be found. */
void ferry__jobprocs_signal(const struct jobprocs_base *b, const struct jobprocs *p, int sig);

/* SIGKILLs every process of the job: cgroup.kill, or rounds of /proc scans. */
void ferry__jobprocs_kill_all(const struct jobprocs_base *b, const struct jobprocs *p);

/*
 * Removes the job's cgroup once its killed processes are gone: 1 when
 * done (or there was none), 0 while it still holds dying processes.
 */
int ferry__jobprocs_gone(struct jobprocs *p);

/* Frees what p holds (not the cgroup itself). */
void ferry__jobprocs_free(struct jobprocs *p);

#endif
