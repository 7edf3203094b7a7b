/*
 * work.h - blocking work off the engine's loop (libuv's uv_queue_work).
 *
 * A backend in front of a DRMS must ask the cluster (sbatch, squeue,
 * scontrol, qacct, a DRMAA library call), and a cluster can take seconds
 * or minutes to answer. None of that may stall the loop, which answers
 * every client. So a backend splits such an operation in three: it
 * prepares a work item on the loop (copying what it needs: ids, native
 * ids, argv, script text), the worker thread runs it (no engine object is
 * touched there), and its done callback applies the result on the loop,
 * looking jobs up again by id (they may have ended meanwhile).
 *
 * One thread per worker runs the items in the order they were queued, so
 * a backend's commands reach the cluster in the order it issued them.
 */
#ifndef FERRY_WORK_H
#define FERRY_WORK_H

struct ferry_engine;
struct ferry_loop;
struct ferry_worker;

struct ferry_work {
	/* On the worker thread: the blocking part. Touches only the item. */
	void (*run)(struct ferry_work *w);
	/* Then on the loop: applies the result and frees the item. */
	void (*done)(struct ferry_engine *eng, struct ferry_work *w);
	/*
	 * Set by the worker: ran is 0 in the done of an item the engine
	 * stopped before it ran (free it, apply nothing); cancel_fd becomes
	 * readable when the engine stops, so that a command run for the item
	 * is killed rather than waited for (ferry__run_command's cancel_fd).
	 */
	int ran;
	int cancel_fd;
	/* the soft RLIMIT_NOFILE its commands get (ferry__run_command's nofile) */
	unsigned long long nofile;
	struct ferry_work *next; /* the worker's */
};

/*
 * Starts the thread and watches its completions on loop. NULL with err
 * set when the thread or its eventfd cannot be made.
 */
struct ferry_worker *ferry__worker_new(struct ferry_loop *loop, char *err, size_t errlen);
/* Queues w; its done runs on the loop after its run. */
void ferry__worker_queue(struct ferry_worker *wk, struct ferry_work *w);
/*
 * Stops the thread (a command it runs is killed), calls done of every
 * item, with ran 0 for those that did not run, and frees the worker.
 * NULL is fine.
 */
void ferry__worker_free(struct ferry_engine *eng, struct ferry_worker *wk);

#endif
