/*
 * drmaa-acct.h - what the drmaa backend reads of ended jobs, as text:
 * drmaa_wait's rusage entries and Grid Engine's qacct records. Pure
 * parsing (no DRMAA call, no command), so that it runs on any thread.
 */
#ifndef FERRY_DRMAA_ACCT_H
#define FERRY_DRMAA_ACCT_H

#include "job.h"

/* An empty result: every figure unknown (-1), no times, no message. */
void ferry__drmaa_result_init(struct job_result *res);
/*
 * One "name=value" entry of drmaa_wait's rusage (Grid Engine's names and
 * the other implementations' common ones) into res; others are ignored.
 * entry is cut at its '='.
 */
void ferry__drmaa_rusage(char *entry, struct job_result *res);
/* The number of a signal as drmaa_wtermsig names it ("SIGKILL", "KILL", "9"). */
int ferry__drmaa_signal_number(const char *name);
/*
 * The end of Grid Engine task `task` (NULL: a job that is no array) from
 * the text of `qacct -j N`: 1 with res set, 0 when the text holds no
 * record of it (yet).
 */
int ferry__qacct_result(const char *text, const char *task, struct job_result *res);

#endif
