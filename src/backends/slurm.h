/*
 * slurm.h - what the Slurm backend (slurm.c), the reading of what Slurm
 * says (slurm-acct.c) and the check of native specifications
 * (slurm-native.c) share.
 */
#ifndef FERRY_SLURM_H
#define FERRY_SLURM_H

#include <stddef.h>
#include <stdint.h>

#include "run.h"

#define CMD_TIMEOUT_S 60.0

/*
 * A native specification (NULL: none) as the words sbatch will be given
 * (*words, NULL-terminated; release with ferry__strv_free(), NULL for
 * none): short option groups split as getopt reads them ("-vn4": "-v",
 * "-n4"), every option checked (slurm-native.c). 0; FERRY_EINVAL or
 * FERRY_EUNSUPPORTED with err set; FERRY_ENOMEM.
 */
int ferry__slurm_native_words(const char *native, char ***words, char *err, size_t errlen);
/*
 * Whether word names option opt as sbatch reads it: a long option or any
 * prefix of it (getopt_long takes unambiguous prefixes), with or without
 * "=VALUE"; a short one alone or with its value attached ("-o/tmp/x").
 */
int ferry__slurm_names_option(const char *word, const char *opt);

/* What Slurm says of an ended job. */
struct sres {
	char native[64];
	char state[32];
	int code, sig;
	double user, sys, start, end;
	int64_t maxrss_kb; /* -1: unknown */
};

/*
 * What the resolution of ended jobs needs, on the worker: the loop's
 * copies, and what it learns of accounting, applied back by the loop.
 */
struct slurm_resolve {
	int cancel_fd;
	unsigned long long nofile; /* the work item's */
	int accounting;		   /* as struct slurm's */
	const char *jobcomp;
	int answered; /* set by resolve: a source answered (a job it does not name is gone) */
};

/*
 * Runs a Slurm command; 0 with its output in *out (release it), or -1
 * with msg set. *transient (may be NULL) says whether trying again later
 * may help. Blocks: on the worker thread (cancel_fd and nofile: the
 * item's), or at startup (-1). nofile: ferry__run_command's.
 */
int ferry__slurm_run(int cancel_fd, unsigned long long nofile, char *const *argv, const char *input,
		     size_t inlen, struct ferry_output *out, char *msg, size_t msglen,
		     int *transient);
/* Slurm's time stamp (2026-12-05T10:50:09) in seconds since the epoch; 0: none. */
double ferry__slurm_parse_time(const char *s);
/* Whether a Slurm job state is one of an ended job. */
int ferry__slurm_ended_state(const char *st);
/* Splits a line at '|' into at most max fields (the last keeps the rest). */
size_t ferry__slurm_fields(char *line, char **f, size_t max);
/*
 * Exit information of ended jobs (r[i].native set), from the best source
 * that knows them: accounting, else slurmctld's records, else the jobcomp
 * file. On the worker thread.
 */
void ferry__slurm_resolve(struct slurm_resolve *x, struct sres *r, size_t n);

#endif
