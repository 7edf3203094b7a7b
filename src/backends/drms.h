/*
 * drms.h - what the DRMS backends share. The bash script a DRMS runs for a
 * ferry job (slurm, drmaa):
 * it redirects the job's files, enters its directory, sets its
 * environment, marks its start and execs its command, so that the DRMS's
 * exit code and signal are the command's own.
 */
#ifndef FERRY_DRMS_H
#define FERRY_DRMS_H

#include <stdio.h>

#include "engine.h"

/* The job's directory, JOBS/ID (JOBS: job_dir, or $STATE/jobs), malloc'd. */
char *ferry__job_dir(struct ferry_engine *eng, int64_t id);
/* Writes s single-quoted for bash: every byte but NUL stays as it is. */
void ferry__sh_quote(FILE *f, const char *s);
/*
 * The script's first lines: interpreter, whose it is, fail(), and the
 * DRMS's id of the job (native: a shell expression of the DRMS's
 * variables, in double quotes) read before any export of the job's env,
 * which may set those variables, into a readonly FERRY_NATIVE_ID.
 */
void ferry__script_head(struct ferry_engine *eng, FILE *f, const char *native);
/*
 * One job's part: sets d to its directory (made here), its files,
 * directory, environment and argv ("$@"), each line after indent.
 * 0, or -1 when its directory cannot be made.
 */
int ferry__script_job(struct ferry_engine *eng, FILE *f, struct job *j, const char *indent);
/*
 * The export lines of the environment j starts from (its spec's
 * base_env, jobenv.c), the same for every job of a batch (see
 * ferry__same_batch), to f when not NULL, and their size into *bytes
 * when not NULL. 0, or a FERRY_E* code with err set (its record is
 * unreadable: the job cannot run as asked).
 */
int ferry__script_base_env(struct ferry_engine *eng, FILE *f, struct job *j, size_t *bytes,
			   char *err, size_t errlen);
/*
 * No fewer than the bytes ferry__script_job() writes for j, without
 * writing them: what tells where a batch must end to stay under the DRMS's
 * limit on the size of a script.
 */
size_t ferry__script_job_bytes(struct ferry_engine *eng, struct job *j, const char *indent);
/*
 * The start mark, holding the DRMS's id of the job the head read, then
 * exec of "$@", through launch when not NULL (the words of a launcher,
 * "srun" or "mpirun": its exit is the command's then, an exec failure
 * its own).
 */
void ferry__script_tail(FILE *f, const char *launch);
/*
 * 1 with the DRMS's id of the job in buf when its script ran and left it:
 * what an engine that died before it recorded the id learns it from.
 */
int ferry__script_native(struct ferry_engine *eng, struct job *j, char *buf, size_t len);
/*
 * 1 with res set to an abort ("cannot execute 'CMD': ...") when the
 * script left a note that its exec or cd failed, or exited 127 before
 * its start mark (the node has no such job directory), else 0.
 */
int ferry__script_exec_failure(struct ferry_engine *eng, struct job *j, struct job_result *res);
/* 1 with *at (its time) when the job's script marked its start. */
int ferry__script_started(struct ferry_engine *eng, struct job *j, double *at);

/* The jobs a DRMS backend has handed over, sorted by ferry id. */
struct ferry_tracked {
	int64_t id;
	int seen;   /* in the backend's last look at the DRMS */
	int misses; /* looks since the DRMS last knew it */
	int old;    /* handed by an earlier engine (re-attached) */
};
struct ferry_track_set {
	struct ferry_tracked *v;
	size_t n, cap;
};
struct ferry_tracked *ferry__track_find(struct ferry_track_set *s, int64_t id);
/* 0, or -1 when out of memory; adding a known id does nothing. */
int ferry__track_add(struct ferry_track_set *s, int64_t id);
void ferry__track_del(struct ferry_track_set *s, int64_t id);
void ferry__track_release(struct ferry_track_set *s);

/*
 * The DRMS cannot tell where job j stands (its query failed, or the job
 * is missing while its record may still come): j is undetermined until
 * the DRMS answers, and j->known keeps the state it had.
 */
void ferry__drms_uncertain(struct ferry_engine *eng, struct job *j);

/* Whether two jobs may go in one job array (bulk submission): same requests. */
int ferry__same_batch(const struct job *a, const struct job *b);

/*
 * What a listing command (sinfo, qconf -sql) printed, run on the engine's
 * worker at most once a minute: a DRMS's queues change rarely, and a
 * submit must stay cheap.
 */
struct ferry_listing {
	char *text;   /* NULL: it never ran well (the DRMS then says what is wrong) */
	double at;    /* monotonic time of the last run */
	int asking;   /* a run is out on the worker */
	int answered; /* a run came back, good or not */
};
/*
 * The listing to check a spec against: 0 with *text (NULL: nothing to
 * check against), or FERRY__PENDING until the first run is back (the
 * backend's check returns it: the request waits and runs again). A stale
 * listing is used while a new run is out. argv must outlive the engine.
 */
int ferry__listing_get(struct ferry_engine *eng, struct ferry_listing *l, char *const *argv,
		       const char **text);
void ferry__listing_release(struct ferry_listing *l);

/*
 * The backends' refresh: the job's script marked its start, so a client
 * sees it running without waiting for the next poll.
 */
void ferry__drms_refresh(struct ferry_engine *eng, struct job *j);

#endif
