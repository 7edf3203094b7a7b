/* run.h - running a DRMS command (sbatch, squeue, qacct...) on a worker thread. */
#ifndef FERRY_RUN_H
#define FERRY_RUN_H

#include <stddef.h>

/* What a command printed: NUL-terminated, malloc'd. */
struct ferry_output {
	char *data;
	size_t len, cap;
};
/*
 * Runs argv[0] (found on PATH) with argv, no shell, input on its stdin,
 * collecting its stdout and stderr; killed after timeout_s, or as soon as
 * cancel_fd (-1: none) is readable. It runs with nofile as its soft
 * RLIMIT_NOFILE (the one ferryd started with; 0: ferryd's own), which
 * sbatch passes on to the job. Returns 0 with *status as waitpid
 * gives it, -ETIMEDOUT or -ECANCELED (killed), or another -errno when it
 * could not run (-ENOENT: not installed). out and err are always set
 * (release them with ferry__output_release). Blocks: call it on a worker
 * thread (work.h), never on the loop.
 */
int ferry__run_command(char *const *argv, const char *input, size_t inlen, double timeout_s,
		       int cancel_fd, unsigned long long nofile, struct ferry_output *out,
		       struct ferry_output *err, int *status);
void ferry__output_release(struct ferry_output *o);
/*
 * Once, from the open of a backend that runs commands: ferryd lets the
 * kernel reap its children (SA_NOCLDWAIT, for the local backend's runner),
 * which would take a command's exit status away; such an engine has no
 * runner, and waits for each command it starts by its pid, from whichever
 * thread started it.
 */
void ferry__run_prepare(void);

#endif
