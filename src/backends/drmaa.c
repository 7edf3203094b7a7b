/*
 * drmaa.c - the drmaa backend: jobs go to any DRM that has a DRMAA v1
 * library (Grid Engine, slurm-drmaa, pbs-drmaa, HTCondor, LSF...), loaded
 * at run time with dlopen so that ferry builds and runs where none is
 * installed.
 *
 * Each job runs ferry's job script (drms.c) through `/bin/bash run` in its
 * job directory; a batch of like jobs with consecutive ids is one
 * drmaa_run_bulk_jobs whose task index IS the ferry id (the working
 * directory is JOBS/$drmaa_incr_ph$), so no per-DRM variable is
 * needed to tell the tasks apart.
 *
 * DRMAA has no batch query: a poll first reaps every ended job of the
 * session with drmaa_wait(SESSION_ANY, NO_WAIT), then asks drmaa_job_ps of
 * a bounded slice of the active jobs, round robin. Jobs of an earlier
 * engine (DRMAA sessions die with their process) can be asked and
 * controlled but not reaped: their end comes from the DRM's accounting
 * (Grid Engine: qacct, parsed in drmaa-acct.c).
 *
 * A DRM can take seconds to answer, so after open every DRMAA call and
 * every Grid Engine command runs on the engine's worker thread (work.h):
 * the loop copies what a call needs into a work item (native ids, the
 * template's strings, the scripts' text), the worker calls the library,
 * and the item's done applies what it said on the loop.
 */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include "drmaa-acct.h"
#include "drmaa-lib.h"
#include "drms.h"
#include "run.h"
#include "util.h"
#include "work.h"

#define POLL_INTERVAL_S 2.0
#define PS_PER_POLL	200  /* drmaa_job_ps calls in one poll */
#define REAP_PER_POLL	5000 /* drmaa_wait calls in one poll */
#define MAX_TASKS	1000 /* jobs in one drmaa_run_bulk_jobs */
#define UNKNOWN_POLLS	3    /* polls a vanished job may wait for accounting */
#define PENDING_NATIVE	"?"  /* handing over: not known yet */
#define NATIVE_MAX	256  /* room for a DRM's job id (HTCondor's name the submit host) */
#define QACCT_TIMEOUT_S 30.0
#define OLD_SESSION	1 /* ferry_tracked.old: handed by an earlier engine */
#define OLD_IN_FLIGHT	2 /* being handed when that engine stopped */

#define INCR_PH "$drmaa_incr_ph$"

/* The backend's state (backend.h: what open returns); the loop's alone. */
struct drmaa {
	struct ferry_engine *eng;
	struct ferry_worker *wk;
	struct drmaa_lib lib;
	struct ferry_listing queues; /* qstat -g c */
	struct ferry_track_set t;    /* the handed jobs, by id */
	size_t cursor;		     /* where the next job_ps slice starts */
};

/*
 * drmaa_init and the questions after it run here, on the loop's thread,
 * synchronously: open runs once at startup, before the loop serves
 * anyone, and an engine whose session cannot open must not start. The
 * worker's later calls come from another thread, which DRMAA allows (the
 * spec asks libraries to be thread safe; Grid Engine's sets up each
 * calling thread in every call, japi_init_mt).
 */
static int drmaa_open(struct ferry_engine *eng, void **self, char *err, size_t errlen)
{
	struct drmaa *d = calloc(1, sizeof(*d));
	int rc;

	ferry__run_prepare();
	if (!d) {
		snprintf(err, errlen, "out of memory");
		return FERRY_ENOMEM;
	}
	d->eng = eng;
	d->wk = ferry__engine_worker(eng);
	if ((rc = ferry__drmaa_lib_open(&d->lib, ferry__engine_cfg(eng), err, errlen))) {
		free(d);
		return rc;
	}
	fprintf(stderr, "ferryd: drmaa: %s, DRM '%s'\n", d->lib.path, d->lib.drm);
	*self = d;
	return 0;
}

/* After the engine stopped its worker: no DRMAA call is out any more. */
static void drmaa_close(void *self)
{
	struct drmaa *d = self;

	ferry__drmaa_lib_close(&d->lib);
	ferry__track_release(&d->t);
	ferry__listing_release(&d->queues);
	free(d);
}

/* ---- the job template ---- */

static const char *spec_str(json_t *spec, const char *key)
{
	return json_string_value(json_object_get(spec, key));
}

/*
 * What the spec's queue, cpus, memory and walltime become: DRMAA's own
 * attribute where it has one, Grid Engine's options otherwise; other DRMs
 * take them in the native specification only.
 */
static char *native_spec(struct drmaa *d, json_t *spec, char *err, size_t errlen)
{
	const char *queue = spec_str(spec, "queue") ?: ferry__engine_cfg(d->eng)->queue;
	const char *native = spec_str(spec, "native_specification");
	json_int_t cpus = json_integer_value(json_object_get(spec, "cpus"));
	json_int_t mem = json_integer_value(json_object_get(spec, "memory_mb"));
	json_int_t wall = json_integer_value(json_object_get(spec, "walltime_s"));
	const char *what = queue ? "a queue" : cpus > 1 ? "cpus" : mem > 0 ? "memory" : NULL;
	const char *pe = ferry__engine_cfg(d->eng)->mpi_pe;
	char *out = NULL;
	size_t len;
	FILE *f;

	if (!what && wall > 0 && !d->lib.wct)
		what = "a walltime";
	if (what && !d->lib.sge) {
		snprintf(err, errlen,
			 "the job asks for %s, which ferry maps for Grid Engine only (DRM '%s'): "
			 "give it in the native specification",
			 what, d->lib.drm);
		return NULL;
	}
	/* queued before a restart without mpi_pe (parallel_check saw it): refused now */
	if (json_object_get(spec, "launcher") && !pe) {
		snprintf(
		    err, errlen,
		    "resource '%s' names no parallel environment for MPI jobs (mpi_pe) any more",
		    ferry__engine_resource(d->eng));
		return NULL;
	}
	if (!(f = open_memstream(&out, &len)))
		return NULL;
	if (queue)
		fprintf(f, " -q %s", queue);
	if (json_object_get(spec, "launcher")) /* parallel_check: Grid Engine with mpi_pe */
		fprintf(f, " -pe %s %lld", pe, (long long)cpus);
	else if (cpus > 1 && !(native && strstr(native, "-pe ")))
		fprintf(f, " -pe smp %lld", (long long)cpus);
	if (mem > 0)
		fprintf(f, " -l h_vmem=%lldM", (long long)mem);
	if (wall > 0 && !d->lib.wct)
		fprintf(f, " -l h_rt=%lld", (long long)wall);
	if (native)
		fprintf(f, " %s", native);
	if (fclose(f) != 0) {
		free(out);
		return NULL;
	}
	return out;
}

/* Grid Engine's cluster queues as "NAME CQLOAD USED RES AVAIL TOTAL ..." lines. */
static int sge_queues(struct drmaa *d, const char **text)
{
	static char *const argv[] = {"qstat", "-g", "c", NULL};

	return ferry__listing_get(d->eng, &d->queues, argv, text);
}

/* What Grid Engine would refuse anyway, refused at submission with a clear error. */
static int sge_check(struct drmaa *d, json_t *spec, char *err, size_t errlen)
{
	const char *queue = spec_str(spec, "queue") ?: ferry__engine_cfg(d->eng)->queue;
	json_int_t cpus = json_integer_value(json_object_get(spec, "cpus"));
	const char *list;
	int found = !queue, most = 0;

	if (sge_queues(d, &list) == FERRY__PENDING)
		return FERRY__PENDING;
	for (const char *l = list; l && *l; l += strcspn(l, "\n"), l += *l == '\n') {
		char name[256];
		int used, res, avail, total;
		if (sscanf(l, "%255s %*s %d %d %d %d", name, &used, &res, &avail, &total) != 5)
			continue; /* the header lines */
		if (queue && strcmp(name, queue))
			continue;
		found = 1;
		most = total > most ? total : most;
	}
	if (!list)
		return 0;
	if (!found) {
		snprintf(err, errlen, "resource '%s' has no queue '%s'",
			 ferry__engine_resource(d->eng), queue);
		return FERRY_ERESOURCE;
	}
	if (most > 0 && cpus > most) {
		snprintf(err, errlen, "the job asks for %lld cpus but %s has %d slots",
			 (long long)cpus, queue ? "that queue" : "the largest queue", most);
		return FERRY_ERESOURCE;
	}
	return 0;
}

/*
 * A parallel job on Grid Engine: an MPI one in the resource's parallel
 * environment (mpi_pe), whose allocation_rule places the slots, so that
 * 'nodes' is not Grid Engine's to honour. Other DRMs have no portable way.
 */
static int parallel_check(struct drmaa *d, json_t *spec, char *err, size_t errlen)
{
	const char *res = ferry__engine_resource(d->eng), *pe = ferry__engine_cfg(d->eng)->mpi_pe;
	const char *native = spec_str(spec, "native_specification");
	json_int_t nodes = json_integer_value(json_object_get(spec, "nodes"));

	/* smp keeps a job on one node; an MPI environment's allocation_rule spreads it */
	if (nodes > 1 || (nodes && json_object_get(spec, "launcher")))
		return ferry__fail(err, errlen, FERRY_EUNSUPPORTED,
				   "resource '%s' (DRMAA) cannot place a job on a number of nodes: "
				   "%s",
				   res,
				   d->lib.sge
				       ? "Grid Engine spreads a parallel environment's slots by "
					 "its allocation_rule"
				       : "give it in the native specification");
	if (!json_object_get(spec, "launcher"))
		return 0;
	if (!d->lib.sge || !pe)
		return ferry__fail(err, errlen, FERRY_EUNSUPPORTED,
				   "resource '%s' (DRMAA) cannot start MPI jobs: %s", res,
				   d->lib.sge ? "it names no parallel environment for them (set "
						"mpi_pe in its section of ferry.conf)"
					      : "ferry starts them on Grid Engine only");
	if (native && strstr(native, "-pe "))
		return ferry__fail(err, errlen, FERRY_EINVAL,
				   "native specification '%s' names a parallel environment, which "
				   "an MPI job takes from mpi_pe ('%s')",
				   native, pe);
	return 0;
}

static int drmaa_check(void *self, json_t *spec, char *err, size_t errlen)
{
	struct drmaa *d = self;
	const char *q = spec_str(spec, "queue");
	char *n;
	int rc;

	if ((rc = parallel_check(d, spec, err, errlen)))
		return rc;
	if (!(n = native_spec(d, spec, err, errlen)))
		return err[0] ? FERRY_EUNSUPPORTED : FERRY_ENOMEM;
	free(n);
	if (q && strpbrk(q, " \t\n'\"")) {
		snprintf(err, errlen, "queue '%s' is not a queue name", q);
		return FERRY_EINVAL;
	}
	return d->lib.sge ? sge_check(d, spec, err, errlen) : 0;
}

/* A job name the DRM takes: Grid Engine refuses '/', ':', '@', '\', '*', '?' and blanks. */
static void job_name(json_t *spec, char *name, size_t len)
{
	const char *n = spec_str(spec, "name");

	snprintf(name, len, "%s", n && *n ? n : "ferry");
	for (char *p = name; *p; p++)
		if (strchr("/:@\\*? \t\n", *p) || !isprint((unsigned char)*p))
			*p = '_';
	if (isdigit((unsigned char)name[0]))
		name[0] = 'j'; /* a number would name a job id to Grid Engine */
}

/* ---- handing jobs over ---- */

/*
 * A hand is one item on the worker, run twice: first it writes the job
 * scripts (an fsync each: the DRM may run them after this machine
 * crashed), then, once the loop has recorded the intent to submit, it
 * builds each batch's template and submits it. The DRM has nothing of a
 * job before its intent is durable, and a crash finds little in flight:
 * only the submission itself (DRMAA cannot list jobs to find it again).
 */
enum { OUT_HANDED, OUT_REFUSED, OUT_LATER };

/* Like jobs with consecutive ids, one DRMAA submission; strings copied on the loop. */
struct batch {
	int64_t *ids;
	size_t n;
	char **paths, **scripts; /* each job's JOBS/ID/run and its text */
	char *wd;		 /* drmaa_wd: the job's directory, or the bulk's placeholder */
	char *native;		 /* native_spec's " -q ..." ("" for none) */
	char name[256];		 /* drmaa_job_name */
	char hms[32];		 /* drmaa_wct_hlimit, "" for none */
	int hold;
	/* what came back */
	int outcome; /* OUT_*: what the loop reports of each job */
	char msg[DIAG + 64];
	char (*natives)[NATIVE_MAX]; /* the DRM's ids, when handed */
};

struct hand_work {
	struct ferry_work w;
	struct drmaa *d; /* the loop's: done only */
	const struct drmaa_lib *lib;
	char **env; /* drmaa_v_env: the engine's environment, as on the other backends */
	struct batch *b;
	size_t nb;
	int submitting; /* 0: writing the scripts, 1: submitting */
};

static int transient(int rc)
{
	return rc == E_TRY_LATER || rc == E_DRM_COMMUNICATION_FAILURE;
}

static int write_scripts(struct batch *b)
{
	for (size_t i = 0; i < b->n; i++) {
		int rc =
		    ferry__write_file_atomic(b->paths[i], b->scripts[i], strlen(b->scripts[i]), 1);
		if (rc < 0) {
			snprintf(b->msg, sizeof(b->msg),
				 "cannot write the job script of job %lld: %s",
				 (long long)b->ids[i], strerror(-rc));
			return -1;
		}
	}
	return 0;
}

static int set(const struct drmaa_lib *lib, jt_t *jt, const char *attr, const char *value,
	       char *diag)
{
	return lib->f.set_attribute(jt, attr, value, diag, DIAG);
}

/* On the worker: the template of a batch, from the strings the loop copied. */
static int make_template(const struct drmaa_lib *lib, const struct batch *b, char **env, jt_t **out,
			 char *diag)
{
	const char *argv[] = {"run", NULL};
	jt_t *jt = NULL;
	char d2[DIAG];
	int rc;

	if ((rc = lib->f.allocate_job_template(&jt, diag, DIAG)) != E_SUCCESS)
		return rc;
	if ((rc = set(lib, jt, "drmaa_remote_command", "/bin/bash", diag)) ||
	    (rc = lib->f.set_vector_attribute(jt, "drmaa_v_argv", argv, diag, DIAG)) ||
	    (rc = lib->f.set_vector_attribute(jt, "drmaa_v_env", (const char **)env, diag, DIAG)) ||
	    (rc = set(lib, jt, "drmaa_wd", b->wd, diag)) ||
	    (rc = set(lib, jt, "drmaa_job_name", b->name, diag)) ||
	    (rc = set(lib, jt, "drmaa_output_path", ":/dev/null", diag)) ||
	    (rc = set(lib, jt, "drmaa_error_path", ":/dev/null", diag)) ||
	    (rc = set(lib, jt, "drmaa_js_state", b->hold ? "drmaa_hold" : "drmaa_active", diag)) ||
	    (b->native[0] &&
	     (rc = set(lib, jt, "drmaa_native_specification", b->native + 1, diag))) ||
	    (b->hms[0] && (rc = set(lib, jt, "drmaa_wct_hlimit", b->hms, diag)))) {
		lib->f.delete_job_template(jt, d2, sizeof(d2));
		return rc;
	}
	*out = jt;
	return 0;
}

static void refused(struct batch *b, char *diag)
{
	b->outcome = OUT_REFUSED;
	snprintf(b->msg, sizeof(b->msg), "DRMAA refused the job: %s", ferry__drmaa_trim(diag));
}

/* On the worker: one drmaa_run_job, or drmaa_run_bulk_jobs for many. */
static void submit(const struct drmaa_lib *lib, struct batch *b, char **env)
{
	char diag[DIAG] = "", d2[DIAG], nid[NATIVE_MAX];
	jt_t *jt = NULL;
	ids_t *ids = NULL;
	int rc;

	if (make_template(lib, b, env, &jt, diag) != E_SUCCESS) {
		refused(b, diag);
		return;
	}
	if (b->n == 1)
		rc = lib->f.run_job(nid, sizeof(nid), jt, diag, sizeof(diag));
	else
		rc = lib->f.run_bulk_jobs(&ids, jt, (unsigned)b->ids[0], (unsigned)b->ids[b->n - 1],
					  1, diag, sizeof(diag));
	lib->f.delete_job_template(jt, d2, sizeof(d2));
	if (rc != E_SUCCESS && transient(rc)) {
		b->outcome = OUT_LATER;
		snprintf(b->msg, sizeof(b->msg), "DRMAA: %s", ferry__drmaa_trim(diag));
		return;
	}
	if (rc != E_SUCCESS) {
		refused(b, diag);
		return;
	}
	for (size_t i = 0; i < b->n; i++) {
		if (b->n == 1)
			snprintf(b->natives[i], NATIVE_MAX, "%s", nid);
		else if (lib->f.get_next_job_id(ids, b->natives[i], NATIVE_MAX) != E_SUCCESS)
			snprintf(b->natives[i], NATIVE_MAX, "%s",
				 PENDING_NATIVE); /* cannot happen */
	}
	if (ids)
		lib->f.release_job_ids(ids);
}

static void hand_run(struct ferry_work *w)
{
	struct hand_work *h = (struct hand_work *)w;

	for (size_t i = 0; i < h->nb; i++) {
		struct batch *b = &h->b[i];
		if (b->outcome != OUT_HANDED) /* refused already, or nothing to submit */
			continue;
		if (!h->submitting && write_scripts(b) < 0)
			b->outcome = OUT_LATER;
		else if (h->submitting)
			submit(h->lib, b, h->env);
	}
}

static void hand_free(struct hand_work *h)
{
	for (size_t i = 0; i < h->nb; i++) {
		struct batch *b = &h->b[i];
		for (size_t k = 0; k < b->n && b->paths; k++)
			free(b->paths[k]);
		for (size_t k = 0; k < b->n && b->scripts; k++)
			free(b->scripts[k]);
		free(b->paths);
		free(b->scripts);
		free(b->ids);
		free(b->wd);
		free(b->native);
		free(b->natives);
	}
	free(h->b);
	ferry__strv_free(h->env);
	free(h);
}

static void track(struct drmaa *d, int64_t id)
{
	if (ferry__track_add(&d->t, id) < 0)
		fprintf(stderr, "ferryd: drmaa: out of memory tracking job %lld\n", (long long)id);
}

static void cancel_later(struct drmaa *d, const char *native);

/* A batch's jobs: handed, refused or back in the queue, as DRMAA said. */
static void batch_done(struct drmaa *d, struct batch *b, int ran)
{
	struct ferry_engine *eng = d->eng;

	for (size_t i = 0; i < b->n; i++) {
		struct job *j = ferry__engine_job(eng, b->ids[i]);
		if (!ran || b->outcome == OUT_LATER) {
			if (!j)
				continue;
			ferry__engine_job_native_id(eng, j, ""); /* the DRM never had it */
			ferry__engine_job_unhanded(eng, j, ran ? b->msg : "the engine stops");
		} else if (b->outcome == OUT_REFUSED) {
			if (j)
				ferry__engine_job_refused(eng, j, b->msg);
		} else if (!j) { /* killed or disposed while DRMAA took it */
			cancel_later(d, b->natives[i]);
		} else {
			track(d, j->id);
			ferry__engine_job_handed(eng, j, b->natives[i]);
		}
	}
}

/*
 * Between the two runs, on the loop: the intent recorded durably before
 * any submission, so that a crash leaves "?" (in flight) rather than a
 * DRM job nobody knows of. A batch whose jobs all ended meanwhile is
 * not submitted. 1 when some batch is to be submitted, 0 when none is,
 * -1 when the database cannot record the intent.
 */
static int intend(struct drmaa *d, struct hand_work *h)
{
	size_t todo = 0;

	for (size_t i = 0; i < h->nb; i++) {
		struct batch *b = &h->b[i];
		size_t alive = 0;
		for (size_t k = 0; b->outcome == OUT_HANDED && k < b->n; k++) {
			struct job *j = ferry__engine_job(d->eng, b->ids[k]);
			if (j) {
				ferry__engine_job_native_id(d->eng, j, PENDING_NATIVE);
				alive += !j->kill_requested;
			}
		}
		/* every job of it was killed meanwhile: refused, they end killed */
		if (b->outcome == OUT_HANDED && !alive)
			b->outcome = OUT_REFUSED;
		todo += b->outcome == OUT_HANDED;
	}
	if (!todo)
		return 0;
	if (!ferry__engine_sync(d->eng))
		return 1;
	for (size_t i = 0; i < h->nb; i++) {
		if (h->b[i].outcome != OUT_HANDED)
			continue;
		h->b[i].outcome = OUT_LATER;
		snprintf(h->b[i].msg, sizeof(h->b[i].msg),
			 "cannot record the submission in the database");
	}
	return -1;
}

static void hand_done(struct ferry_engine *eng, struct ferry_work *w)
{
	struct hand_work *h = (struct hand_work *)w;

	if (w->ran && !h->submitting) {
		h->submitting = 1;
		if (intend(h->d, h) > 0) {
			ferry__worker_queue(h->d->wk, &h->w);
			return;
		}
	}
	for (size_t i = 0; i < h->nb; i++)
		batch_done(h->d, &h->b[i], w->ran);
	hand_free(h);
	ferry__engine_backend_ready(eng); /* controls that waited for the hand */
}

/* The script of job j, to be written to JOBS/ID/run; 0, or -1. */
static int job_script(struct drmaa *d, struct job *j, char **text, char **path)
{
	char *dir = ferry__job_dir(d->eng, j->id);
	json_t *tasks = json_object_get(j->spec, "tasks");
	/* an MPI job: mpirun reads the slots Grid Engine granted (mpi_pe), starts tasks ranks */
	char *mpi = json_object_get(j->spec, "launcher")
			? ferry__asprintf("mpirun -np %lld",
					  (long long)(tasks ? json_integer_value(tasks) : 1))
			: NULL;
	size_t len;
	FILE *f = open_memstream(text, &len);
	int bad = !f || !dir || (json_object_get(j->spec, "launcher") && !mpi);

	if (f) {
		ferry__script_head(d->eng, f, d->lib.sge ? "$JOB_ID.$SGE_TASK_ID" : "");
		bad |= ferry__script_base_env(d->eng, f, j, NULL, NULL, 0) != 0;
		bad |= ferry__script_job(d->eng, f, j, "") < 0;
		if (mpi) /* Open MPI runs as root only when told; the job's own env wins */
			fputs("[ \"$(id -u)\" != 0 ] || export "
			      "OMPI_ALLOW_RUN_AS_ROOT=\"${OMPI_ALLOW_RUN_AS_ROOT-1}\" "
			      "OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=\"${OMPI_ALLOW_RUN_AS_ROOT_CONFIRM-1}"
			      "\"\n",
			      f);
		/* Grid Engine's: N.T for a bulk's task, N.undefined else */
		ferry__script_tail(f, mpi);
		bad |= fclose(f) != 0;
	}
	free(mpi);
	*path = dir ? ferry__asprintf("%s/run", dir) : NULL;
	free(dir);
	return bad || !*path ? -1 : 0;
}

/*
 * What the worker needs of jobs[0..n) (like, consecutive ids), copied:
 * 0, or -1 when out of memory. What DRMAA would refuse makes the batch
 * refused, reported with the rest by hand_done: hand itself ends no job.
 */
static int batch_init(struct drmaa *d, struct batch *b, struct job **jobs, size_t n)
{
	json_int_t wall = json_integer_value(json_object_get(jobs[0]->spec, "walltime_s"));
	char err[512] = "";

	b->n = n;
	b->ids = malloc(n * sizeof(*b->ids));
	b->paths = calloc(n, sizeof(*b->paths));
	b->scripts = calloc(n, sizeof(*b->scripts));
	b->natives = calloc(n, sizeof(*b->natives));
	if (!b->ids || !b->paths || !b->scripts || !b->natives)
		return -1;
	for (size_t i = 0; i < n; i++)
		b->ids[i] = jobs[i]->id;
	if (!(b->native = native_spec(d, jobs[0]->spec, err, sizeof(err)))) {
		b->outcome = OUT_REFUSED;
		snprintf(b->msg, sizeof(b->msg), "DRMAA refused the job: %s",
			 err[0] ? err : "out of memory");
		return 0;
	}
	/*
	 * The batch's jobs share it (ferry__same_batch). Unreadable, no retry
	 * reads it better and running without it would be a guess: refused,
	 * as on Slurm, rather than queued again for ever.
	 */
	if (ferry__script_base_env(d->eng, NULL, jobs[0], NULL, err, sizeof(err))) {
		b->outcome = OUT_REFUSED;
		snprintf(b->msg, sizeof(b->msg), "%s", err);
		fprintf(stderr, "ferryd: drmaa: jobs %lld to %lld refused: %s\n",
			(long long)b->ids[0], (long long)b->ids[n - 1], err);
		return 0;
	}
	job_name(jobs[0]->spec, b->name, sizeof(b->name));
	b->hold = jobs[0]->state == FERRY_USER_ON_HOLD;
	if (wall > 0 && d->lib.wct)
		snprintf(b->hms, sizeof(b->hms), "%lld:%02lld:%02lld", (long long)(wall / 3600),
			 (long long)(wall / 60 % 60), (long long)(wall % 60));
	b->wd = n > 1 ? ferry__asprintf("%s/%s", ferry__engine_jobs_dir(d->eng), INCR_PH)
		      : ferry__job_dir(d->eng, jobs[0]->id);
	for (size_t i = 0; i < n; i++) {
		if (job_script(d, jobs[i], &b->scripts[i], &b->paths[i]) < 0) {
			b->outcome = OUT_LATER;
			snprintf(b->msg, sizeof(b->msg),
				 "cannot write the job script of job %lld: %s",
				 (long long)jobs[i]->id, strerror(errno));
			break;
		}
	}
	return b->wd ? 0 : -1;
}

/* A copy of the engine's environment, for the worker's template. */
static char **env_copy(void)
{
	extern char **environ;
	size_t n = ferry__strv_len(environ);
	char **v = calloc(n + 1, sizeof(*v));

	for (size_t i = 0; v && i < n; i++) {
		if (!(v[i] = strdup(environ[i]))) {
			ferry__strv_free(v);
			return NULL;
		}
	}
	return v;
}

/* How many of jobs[0..n) go in the first batch: like jobs with consecutive ids. */
static size_t batch_len(struct job **jobs, size_t n)
{
	size_t m = 1;

	while (m < n && m < MAX_TASKS && jobs[m]->id == jobs[0]->id + (int64_t)m &&
	       ferry__same_batch(jobs[0], jobs[m]))
		m++;
	return m;
}

/* jobs come in id order: a bulk takes the like ones with consecutive ids */
static int hand_batches(struct drmaa *d, struct hand_work *h, struct job **jobs, size_t n)
{
	size_t nb = 0;

	for (size_t i = 0; i < n; i += batch_len(jobs + i, n - i))
		nb++;
	if (!(h->b = calloc(nb, sizeof(*h->b))))
		return -1;
	for (size_t i = 0, m; i < n; i += m) {
		m = batch_len(jobs + i, n - i);
		if (batch_init(d, &h->b[h->nb++], jobs + i, m) < 0)
			return -1; /* what it allocated is freed with the rest */
	}
	return 0;
}

static int drmaa_hand(void *self, struct job **jobs, size_t n, char *err, size_t errlen)
{
	struct drmaa *d = self;
	struct hand_work *h = calloc(1, sizeof(*h));

	if (!h || !(h->env = env_copy()) || hand_batches(d, h, jobs, n) < 0) {
		snprintf(err, errlen, "out of memory");
		if (h)
			hand_free(h);
		return FERRY_EAGAIN;
	}
	h->w = (struct ferry_work){.run = hand_run, .done = hand_done};
	h->d = d;
	h->lib = &d->lib;
	ferry__worker_queue(d->wk, &h->w);
	return 0;
}

/* ---- controls ---- */

/*
 * A drmaa_control on the worker. With a token, its outcome answers the
 * client that asked (ferry__engine_control_done); without, the engine
 * acts on its own (a cancel) and a failure is logged.
 */
struct ctl_work {
	struct ferry_work w;
	const struct drmaa_lib *lib;
	struct ferry_ctl *token;
	char *native;
	int action;
	int rc;
	char msg[DIAG + 16];
};

static void ctl_run(struct ferry_work *w)
{
	struct ctl_work *c = (struct ctl_work *)w;
	char diag[DIAG] = "";
	int rc = c->lib->f.control(c->native, c->action, diag, sizeof(diag));

	if (rc == E_SUCCESS)
		return;
	snprintf(c->msg, sizeof(c->msg), "DRMAA: %s", ferry__drmaa_trim(diag));
	c->rc = rc == E_AUTH_FAILURE ? FERRY_EPERM : transient(rc) ? FERRY_EAGAIN : FERRY_ESTATE;
}

static void ctl_done(struct ferry_engine *eng, struct ferry_work *w)
{
	struct ctl_work *c = (struct ctl_work *)w;

	if (!w->ran) {
		c->rc = FERRY_EAGAIN;
		snprintf(c->msg, sizeof(c->msg), "the engine stopped before drmaa_control ran");
	}
	if (c->token)
		ferry__engine_control_done(eng, c->token, c->rc, c->msg);
	else if (c->rc)
		fprintf(stderr, "ferryd: drmaa: cannot terminate DRM job %s: %s\n", c->native,
			c->msg);
	free(c->native);
	free(c);
}

/* Queues drmaa_control(native, action); 0, or FERRY_ENOMEM. */
static int ctl_queue(struct drmaa *d, struct ferry_ctl *token, const char *native, int action)
{
	struct ctl_work *c = calloc(1, sizeof(*c));

	if (!c || !(c->native = strdup(native))) {
		free(c);
		return FERRY_ENOMEM;
	}
	c->w = (struct ferry_work){.run = ctl_run, .done = ctl_done};
	c->lib = &d->lib;
	c->token = token;
	c->action = action;
	ferry__worker_queue(d->wk, &c->w);
	return 0;
}

/* Terminates a DRM job no ferry job stands for any more (fire and forget). */
static void cancel_later(struct drmaa *d, const char *native)
{
	if (!strcmp(native, PENDING_NATIVE))
		return; /* no id to name it by */
	if (ctl_queue(d, NULL, native, C_TERMINATE))
		fprintf(stderr, "ferryd: drmaa: out of memory: cannot terminate DRM job %s\n",
			native);
}

static int drmaa_control(void *self, struct job *j, enum backend_ctl ctl, struct ferry_ctl *token,
			 char *err, size_t errlen)
{
	static const int action[] = {
	    [CTL_SUSPEND] = C_SUSPEND, [CTL_RESUME] = C_RESUME,	  [CTL_TERMINATE] = C_TERMINATE,
	    [CTL_HOLD] = C_HOLD,       [CTL_RELEASE] = C_RELEASE,
	};

	if (!j->native_id || !strcmp(j->native_id, PENDING_NATIVE)) {
		snprintf(err, errlen, "its DRM job id is not known yet; try again");
		return FERRY_EAGAIN;
	}
	if (ctl_queue(self, token, j->native_id, action[ctl])) {
		snprintf(err, errlen, "out of memory");
		return FERRY_ENOMEM;
	}
	return FERRY__PENDING;
}

/* ---- what the DRM says of the jobs ---- */

#define LOOK_REAPED (-1) /* look.rc of a job the same poll reaped: not asked */

/* A job of the poll's job_ps slice, and what the worker learnt of it. */
struct look {
	int64_t id;
	char native[NATIVE_MAX];
	int rc; /* drmaa_job_ps's, or LOOK_REAPED */
	int ps;
	int acct; /* after INVALID_JOB: 1 res is qacct's, 0 no record (yet), -1 no answer */
	struct job_result res;
	char diag[256];
};

/* A job drmaa_wait reaped, with its end (finish completes it on the loop). */
struct reaped {
	char native[NATIVE_MAX];
	struct job_result res;
	int no_rusage; /* drmaa_wait gave no rusage, and qacct no record (yet) */
};

/*
 * A poll is one item on the worker: drmaa_wait until none has ended, then
 * job_ps of the slice the loop copied, then qacct for the vanished ones;
 * its done applies it all and ends the poll.
 */
struct poll_work {
	struct ferry_work w;
	struct drmaa *d; /* the loop's: done only */
	const struct drmaa_lib *lib;
	struct look *looks;
	size_t n;
	struct reaped *reaped;
	size_t nreaped, cap;
	char *acct_id, *acct_text; /* the last qacct -j: an array's tasks cost one */
};

static struct reaped *reaped_add(struct poll_work *p)
{
	if (p->nreaped == p->cap) {
		size_t cap = p->cap ? 2 * p->cap : 64;
		struct reaped *v = realloc(p->reaped, cap * sizeof(*v));
		if (!v)
			return NULL;
		p->reaped = v;
		p->cap = cap;
	}
	return &p->reaped[p->nreaped++];
}

/* Every job of this session that ended: one drmaa_wait each, none blocks. */
static void reap(struct poll_work *p)
{
	const struct drmaa_lib *lib = p->lib;

	for (int k = 0; k < REAP_PER_POLL; k++) {
		char diag[DIAG], id[NATIVE_MAX];
		values_t *ru = NULL;
		int stat = 0, rc = lib->f.wait(SESSION_ANY, id, sizeof(id), &stat, 0, &ru, diag,
					       sizeof(diag));
		struct reaped *r;
		if (rc != E_SUCCESS && rc != E_NO_RUSAGE) {
			if (ru)
				lib->f.release_attr_values(ru);
			break; /* EXIT_TIMEOUT: none ended; INVALID_JOB: none left */
		}
		if ((r = reaped_add(p))) {
			snprintf(r->native, sizeof(r->native), "%s", id);
			ferry__drmaa_decode(lib, rc, stat, ru, &r->res);
			r->no_rusage = rc == E_NO_RUSAGE;
		} else { /* its job_ps says INVALID_JOB next: accounting, or unclear */
			fprintf(stderr, "ferryd: drmaa: out of memory: the end of %s is lost\n",
				id);
		}
		if (ru)
			lib->f.release_attr_values(ru);
	}
}

/*
 * qacct's records of Grid Engine job `id` (every task of an array at
 * once), kept for the rest of the poll so that the tasks of one array
 * cost one qacct: 0, or -1 when qacct cannot run. An unknown job is an
 * empty text.
 */
static int qacct_job(struct poll_work *p, const char *id, const char **text)
{
	char idbuf[128];
	char *argv[] = {"qacct", "-j", idbuf, NULL};
	struct ferry_output out, err;
	char *copy = NULL;
	int status, rc;

	if (p->acct_id && !strcmp(p->acct_id, id)) {
		*text = p->acct_text;
		return 0;
	}
	snprintf(idbuf, sizeof(idbuf), "%s", id);
	rc = ferry__run_command(argv, NULL, 0, QACCT_TIMEOUT_S, p->w.cancel_fd, p->w.nofile, &out,
				&err, &status);
	if (rc == 0 && WIFEXITED(status) && WEXITSTATUS(status) != 0 &&
	    strstr(err.data, "not found"))
		out.data[0] = '\0'; /* "error: job id N not found": no record (yet) */
	else if (rc < 0 || !WIFEXITED(status) || WEXITSTATUS(status) != 0)
		rc = -1;
	ferry__output_release(&err);
	if (rc < 0 || !(copy = strdup(id))) {
		ferry__output_release(&out);
		return -1;
	}
	free(p->acct_id);
	free(p->acct_text);
	p->acct_id = copy;
	p->acct_text = out.data;
	*text = p->acct_text;
	return 0;
}

/*
 * The end of a Grid Engine job from its accounting record: 1 with res
 * set, 0 when there is no record (yet), -1 when qacct cannot run.
 */
static int from_qacct(struct poll_work *p, const char *native, struct job_result *res)
{
	const char *dot = strchr(native, '.'), *text;
	char id[128];

	snprintf(id, sizeof(id), "%.*s", (int)(dot ? (size_t)(dot - native) : strlen(native)),
		 native);
	if (qacct_job(p, id, &text) < 0)
		return -1;
	return ferry__qacct_result(text, dot ? dot + 1 : NULL, res);
}

static int was_reaped(const struct poll_work *p, const char *native)
{
	for (size_t i = 0; i < p->nreaped; i++)
		if (!strcmp(p->reaped[i].native, native))
			return 1;
	return 0;
}

static void poll_run(struct ferry_work *w)
{
	struct poll_work *p = (struct poll_work *)w;
	char diag[DIAG];

	reap(p);
	/*
	 * No rusage: deleted before it ran, or an end the session missed
	 * (Grid Engine's, after its link to qmaster was cut). Accounting
	 * tells which.
	 */
	for (size_t i = 0; p->lib->sge && i < p->nreaped; i++) {
		struct reaped *r = &p->reaped[i];
		struct job_result res;
		if (r->no_rusage && from_qacct(p, r->native, &res) == 1) {
			r->res = res;
			r->no_rusage = 0;
		}
	}
	for (size_t i = 0; i < p->n; i++) {
		struct look *l = &p->looks[i];
		if (was_reaped(p, l->native)) { /* job_ps would say INVALID_JOB: no qacct */
			l->rc = LOOK_REAPED;
			continue;
		}
		diag[0] = '\0';
		l->rc = p->lib->f.job_ps(l->native, &l->ps, diag, sizeof(diag));
		if (l->rc == E_INVALID_JOB)
			l->acct = p->lib->sge ? from_qacct(p, l->native, &l->res) : -1;
		else if (l->rc != E_SUCCESS)
			snprintf(l->diag, sizeof(l->diag), "%s", ferry__drmaa_trim(diag));
	}
}

/* An end a DRM reports: killed by the user, over its walltime, or as it says. */
static void finish(struct drmaa *d, struct job *j, struct job_result *res)
{
	json_int_t wall = json_integer_value(json_object_get(j->spec, "walltime_s"));

	if (ferry__script_exec_failure(d->eng, j, res)) {
		/* the script could not start the command */
	} else if (j->kill_requested && res->exit_status != FERRY_FINISHED_REGULARLY) {
		res->exit_status = FERRY_KILLED_BY_USER;
		res->message[0] = '\0';
	} else if (res->exit_status == FERRY_FINISHED_SIGNAL && wall > 0 && res->wall >= wall - 1) {
		snprintf(res->message, sizeof(res->message), "walltime limit exceeded: killed");
	}
	if (res->ended_at > 0 && res->ended_at < j->started_at)
		res->ended_at = 0; /* whole seconds from the DRM: the engine's clock is better */
	ferry__track_del(&d->t, j->id);
	ferry__engine_job_ended(d->eng, j, res);
}

static struct job *job_of_native(struct drmaa *d, const char *native)
{
	const char *dot = strchr(native, '.');
	struct job *j = dot ? ferry__engine_job(d->eng, strtoll(dot + 1, NULL, 10)) : NULL;

	/* a bulk's task index is the ferry id: no search (this runs per ended job) */
	if (j && j->native_id && !strcmp(j->native_id, native))
		return j;
	for (size_t i = 0; i < d->t.n; i++) {
		j = ferry__engine_job(d->eng, d->t.v[i].id);
		if (j && j->native_id && !strcmp(j->native_id, native))
			return j;
	}
	return NULL;
}

/* Whether job j ran: seen running, or its script left its start mark. */
static int ran(struct drmaa *d, struct job *j)
{
	double at;

	return ferry__job_started(j) || ferry__script_started(d->eng, j, &at);
}

/* A job DRMAA no longer knows (ended, or of an earlier session and ended). */
static void vanished(struct drmaa *d, struct job *j, struct ferry_tracked *t, struct look *l)
{
	struct job_result res;

	if (l->acct == 1) {
		finish(d, j, &l->res);
		return;
	}
	if (d->lib.sge && ++t->misses < UNKNOWN_POLLS) {
		ferry__drms_uncertain(d->eng, j); /* the record may come, or qacct work again */
		return;
	}
	ferry__drmaa_result_init(&res);
	if (l->acct == 0 && ran(d, j)) {
		res.exit_status = FERRY_FINISHED_UNCLEAR_CONDITION;
		snprintf(
		    res.message, sizeof(res.message),
		    "Grid Engine ended job %s, which ran, and keeps no accounting record of it",
		    j->native_id);
	} else if (l->acct == 0) {
		res.exit_status = FERRY_ABORTED;
		snprintf(res.message, sizeof(res.message),
			 "removed from Grid Engine before it ran (no accounting record)");
	} else {
		res.exit_status = FERRY_FINISHED_UNCLEAR_CONDITION;
		snprintf(res.message, sizeof(res.message),
			 "DRMAA no longer knows job %s and this DRM ('%s') keeps no record ferry "
			 "can read",
			 j->native_id, d->lib.drm);
	}
	finish(d, j, &res);
}

/*
 * A live job's state from job_ps. A suspension is the user's only when
 * ferry asked for it (was, the state ferry knew): Grid Engine's `qmod -sj`
 * by anyone is USER_SUSPENDED, and the suspension of someone else (an
 * administrator, a script outside ferry) is the system's to ferry, as on
 * Slurm.
 */
static enum ferry_job_status ps_state(int ps, enum ferry_job_status was)
{
	int ours = was == FERRY_USER_SUSPENDED || was == FERRY_USER_SYSTEM_SUSPENDED;

	switch (ps) {
	case PS_SYSTEM_ON_HOLD:
		return FERRY_SYSTEM_ON_HOLD;
	case PS_USER_ON_HOLD:
		return FERRY_USER_ON_HOLD;
	case PS_USER_SYSTEM_ON_HOLD:
		return FERRY_USER_SYSTEM_ON_HOLD;
	case PS_RUNNING:
		return FERRY_RUNNING;
	case PS_SYSTEM_SUSPENDED:
		return FERRY_SYSTEM_SUSPENDED;
	case PS_USER_SUSPENDED:
		return ours ? FERRY_USER_SUSPENDED : FERRY_SYSTEM_SUSPENDED;
	case PS_USER_SYSTEM_SUSPENDED:
		return ours ? FERRY_USER_SYSTEM_SUSPENDED : FERRY_SYSTEM_SUSPENDED;
	case PS_QUEUED_ACTIVE:
		return FERRY_QUEUED_ACTIVE;
	default:
		return FERRY_UNDETERMINED;
	}
}

/* One job_ps answer: a state change, or an end (reaped, or resolved by accounting). */
static void look_done(struct drmaa *d, struct look *l)
{
	struct ferry_tracked *t = ferry__track_find(&d->t, l->id);
	struct job *j = ferry__engine_job(d->eng, l->id);
	enum ferry_job_status st;
	double at;

	/* ended meanwhile (reaped, killed), or handed again under another id */
	if (!t || !j || !j->native_id || strcmp(j->native_id, l->native) || l->rc == LOOK_REAPED)
		return;
	if (l->rc == E_INVALID_JOB) {
		vanished(d, j, t, l);
		return;
	}
	if (l->rc != E_SUCCESS) { /* the DRM cannot tell: a failure ends no job */
		fprintf(stderr, "ferryd: drmaa: job_ps %s: %s\n", l->native, l->diag);
		ferry__drms_uncertain(d->eng, j);
		return;
	}
	t->misses = 0;
	if (l->ps == PS_DONE || l->ps == PS_FAILED)
		return; /* drmaa_wait gives the end */
	if (l->ps == PS_UNDETERMINED) {
		ferry__drms_uncertain(d->eng, j);
		return;
	}
	st = ps_state(l->ps, ferry__job_known(j));
	ferry__engine_job_state(
	    d->eng, j, st, st == FERRY_RUNNING && ferry__script_started(d->eng, j, &at) ? at : 0);
}

/* A job seen running whose end DRMAA reaped without rusage and accounting does not tell. */
static void missed_end(struct drmaa *d, struct job_result *res)
{
	res->exit_status = FERRY_FINISHED_UNCLEAR_CONDITION;
	snprintf(res->message, sizeof(res->message),
		 "DRMAA reported the end without its exit status (no rusage) and this DRM ('%s') "
		 "keeps no record ferry can read",
		 d->lib.drm);
}

static void poll_free(struct poll_work *p)
{
	free(p->looks);
	free(p->reaped);
	free(p->acct_id);
	free(p->acct_text);
	free(p);
}

/*
 * An end drmaa_wait gave. Without rusage and with no accounting record
 * (yet), a job that ran waits for qacct's record as a vanished one does:
 * it is tracked still, the next job_ps says INVALID_JOB, and vanished()
 * asks qacct for the grace polls. Grid Engine writes the record after
 * the end reached qmaster, so an end libdrmaa reports first would else
 * lose the job's exit value.
 */
static void reaped_done(struct poll_work *p, struct reaped *r)
{
	struct drmaa *d = p->d;
	struct job *j = job_of_native(d, r->native);

	if (!j)
		return;
	if (r->no_rusage && d->lib.sge && !j->kill_requested && ran(d, j)) {
		ferry__drms_uncertain(d->eng, j);
		return;
	}
	if (r->no_rusage && ran(d, j))
		missed_end(d, &r->res);
	finish(d, j, &r->res);
}

static void poll_done(struct ferry_engine *eng, struct ferry_work *w)
{
	struct poll_work *p = (struct poll_work *)w;

	if (w->ran) {
		for (size_t i = 0; i < p->nreaped; i++)
			reaped_done(p, &p->reaped[i]);
		for (size_t i = 0; i < p->n; i++)
			look_done(p->d, &p->looks[i]);
	}
	poll_free(p);
	ferry__engine_polled(eng);
}

/*
 * A job the last engine was handing over when it stopped: DRMAA cannot
 * list jobs, so whether the DRM took it cannot be known. It is not
 * submitted again (it may be running); it ends with that said.
 */
static void in_flight(struct drmaa *d, struct job *j)
{
	struct job_result res;

	ferry__drmaa_result_init(&res);
	res.exit_status = FERRY_FINISHED_UNCLEAR_CONDITION;
	snprintf(res.message, sizeof(res.message),
		 "the engine stopped while handing the job to DRMAA; whether the DRM ran it "
		 "is not known (DRMAA cannot list jobs)");
	finish(d, j, &res);
}

/* The poll's item, with the next job_ps slice (round robin) copied. */
static struct poll_work *poll_new(struct drmaa *d)
{
	size_t n = d->t.n < PS_PER_POLL ? d->t.n : PS_PER_POLL;
	size_t start = d->t.n ? d->cursor % d->t.n : 0;
	struct poll_work *p = calloc(1, sizeof(*p));

	if (!p || (n && !(p->looks = calloc(n, sizeof(*p->looks))))) {
		free(p);
		return NULL;
	}
	p->w = (struct ferry_work){.run = poll_run, .done = poll_done};
	p->d = d;
	p->lib = &d->lib;
	for (size_t i = 0; i < n; i++) {
		int64_t id = d->t.v[(start + i) % d->t.n].id;
		struct job *j = ferry__engine_job(d->eng, id);
		if (!j || !j->native_id || !j->native_id[0] ||
		    !strcmp(j->native_id, PENDING_NATIVE))
			continue; /* no id to ask DRMAA by */
		p->looks[p->n].id = id;
		snprintf(p->looks[p->n++].native, NATIVE_MAX, "%s", j->native_id);
	}
	d->cursor = start + n;
	return p;
}

static void drmaa_poll(void *self)
{
	struct drmaa *d = self;
	struct poll_work *p;

	for (size_t i = d->t.n; i-- > 0;) {
		struct job *j = ferry__engine_job(d->eng, d->t.v[i].id);
		if (!j) /* ended by the engine itself (killed while queued) */
			ferry__track_del(&d->t, d->t.v[i].id);
		else if (d->t.v[i].old == OLD_IN_FLIGHT)
			in_flight(d, j);
	}
	/* even with no job tracked: drmaa_wait frees what the session keeps of ended ones */
	if (!(p = poll_new(d))) {
		ferry__engine_polled(d->eng);
		return;
	}
	ferry__worker_queue(d->wk, &p->w);
}

/* ---- recovery ---- */

/*
 * At startup, before the loop serves anyone: adopt asks DRMAA nothing
 * (the first poll does); only the kill of a job killed while no engine
 * ran goes to the worker, fire and forget.
 */
static int drmaa_adopt(void *self, struct job *j)
{
	struct drmaa *d = self;
	struct ferry_tracked *t;
	char nid[128];

	if (!j->native_id[0])
		return 0; /* its submission failed before the last engine stopped */
	if (!strcmp(j->native_id, PENDING_NATIVE) &&
	    ferry__script_native(d->eng, j, nid, sizeof(nid))) {
		/* it ran: its script left the id the last engine did not record */
		char *u = strstr(nid, ".undefined");
		if (u)
			*u = '\0';
		ferry__engine_job_native_id(d->eng, j, nid);
	}
	if (ferry__track_add(&d->t, j->id) < 0)
		return 1;
	if ((t = ferry__track_find(&d->t, j->id)))
		t->old = strcmp(j->native_id, PENDING_NATIVE) ? OLD_SESSION : OLD_IN_FLIGHT;
	if (t && t->old == OLD_IN_FLIGHT)
		return 1; /* the first poll ends it */
	if (j->kill_requested)
		cancel_later(d, j->native_id);
	return 1;
}

static void drmaa_refresh(void *self, struct job *j)
{
	struct drmaa *d = self;

	ferry__drms_refresh(d->eng, j);
}

const struct ferry_backend ferry__backend_drmaa = {
    .name = "drmaa",
    .flags = FERRY_BE_DRMS,
    .poll_interval = POLL_INTERVAL_S,
    .pre_exec = ferry__drmaa_pre_exec,
    .open = drmaa_open,
    .close = drmaa_close,
    .check = drmaa_check,
    .control = drmaa_control,
    .adopt = drmaa_adopt,
    .poll = drmaa_poll,
    .hand = drmaa_hand,
    .refresh = drmaa_refresh,
};
