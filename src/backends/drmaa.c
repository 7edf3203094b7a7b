/*
 * drmaa.c - the drmaa backend: jobs go to any DRM that has a DRMAA v1
 * library (Grid Engine, slurm-drmaa, pbs-drmaa, HTCondor, LSF...), loaded
 * at run time with dlopen so that ferry builds and runs where none is
 * installed.
 *
 * Each job runs ferry's job script (drms.c) through `/bin/bash run` in its
 * job directory; a batch of like jobs with consecutive ids is one
 * drmaa_run_bulk_jobs whose task index IS the ferry id (the working
 * directory is $STATE/jobs/$drmaa_incr_ph$), so no per-DRM variable is
 * needed to tell the tasks apart.
 *
 * DRMAA has no batch query: a poll first reaps every ended job of the
 * session with drmaa_wait(SESSION_ANY, NO_WAIT), then asks drmaa_job_ps of
 * a bounded slice of the active jobs, round robin. Jobs of an earlier
 * engine (DRMAA sessions die with their process) can be asked and
 * controlled but not reaped: their end comes from the DRM's accounting
 * (Grid Engine: qacct), behind this file.
 */
#include <ctype.h>
#include <dlfcn.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "drms.h"
#include "run.h"
#include "util.h"

#define POLL_INTERVAL_S 2.0
#define PS_PER_POLL	200  /* drmaa_job_ps calls in one poll */
#define REAP_PER_POLL	5000 /* drmaa_wait calls in one poll */
#define MAX_TASKS	1000 /* jobs in one drmaa_run_bulk_jobs */
#define UNKNOWN_POLLS	3    /* polls a vanished job may wait for accounting */
#define PENDING_NATIVE	"?"  /* handing over: not known yet */
#define DIAG		1024 /* DRMAA_ERROR_STRING_BUFFER */
#define QACCT_TIMEOUT_S 30.0
#define TLS_TUNABLE	"glibc.rtld.optional_static_tls=4096"
#define REEXEC_MARK	"FERRYD_DRMAA_REEXEC"
#define OLD_SESSION	1 /* ferry_tracked.old: handed by an earlier engine */
#define OLD_IN_FLIGHT	2 /* being handed when that engine stopped */

/* The DRMAA 1.0 C binding's values (the same in every implementation's drmaa.h). */
enum {
	E_SUCCESS = 0,
	E_DRM_COMMUNICATION_FAILURE = 2,
	E_AUTH_FAILURE = 3,
	E_INVALID_ARGUMENT = 4,
	E_TRY_LATER = 16,
	E_INVALID_JOB = 18,
	E_NO_RUSAGE = 24,
};
enum {
	PS_UNDETERMINED = 0x00,
	PS_QUEUED_ACTIVE = 0x10,
	PS_SYSTEM_ON_HOLD = 0x11,
	PS_USER_ON_HOLD = 0x12,
	PS_USER_SYSTEM_ON_HOLD = 0x13,
	PS_RUNNING = 0x20,
	PS_SYSTEM_SUSPENDED = 0x21,
	PS_USER_SUSPENDED = 0x22,
	PS_USER_SYSTEM_SUSPENDED = 0x23,
	PS_DONE = 0x30,
	PS_FAILED = 0x40,
};
enum { C_SUSPEND, C_RESUME, C_HOLD, C_RELEASE, C_TERMINATE };
#define SESSION_ANY "DRMAA_JOB_IDS_SESSION_ANY"
#define INCR_PH	    "$drmaa_incr_ph$"

typedef struct drmaa_job_template_s jt_t;
typedef struct drmaa_attr_names_s names_t;
typedef struct drmaa_attr_values_s values_t;
typedef struct drmaa_job_ids_s ids_t;

/* The library's functions, resolved by name (X-macro: one list, two uses). */
#define DRMAA_FUNCS(X)                                                                             \
	X(init, int, (const char *, char *, size_t))                                               \
	X(exit, int, (char *, size_t))                                                             \
	X(allocate_job_template, int, (jt_t **, char *, size_t))                                   \
	X(delete_job_template, int, (jt_t *, char *, size_t))                                      \
	X(set_attribute, int, (jt_t *, const char *, const char *, char *, size_t))                \
	X(set_vector_attribute, int, (jt_t *, const char *, const char **, char *, size_t))        \
	X(run_job, int, (char *, size_t, const jt_t *, char *, size_t))                            \
	X(run_bulk_jobs, int, (ids_t **, const jt_t *, unsigned, unsigned, int, char *, size_t))   \
	X(get_next_job_id, int, (ids_t *, char *, size_t))                                         \
	X(release_job_ids, void, (ids_t *))                                                        \
	X(control, int, (const char *, int, char *, size_t))                                       \
	X(job_ps, int, (const char *, int *, char *, size_t))                                      \
	X(wait, int,                                                                               \
	  (const char *, char *, size_t, int *, signed long, values_t **, char *, size_t))         \
	X(wifexited, int, (int *, int, char *, size_t))                                            \
	X(wexitstatus, int, (int *, int, char *, size_t))                                          \
	X(wifsignaled, int, (int *, int, char *, size_t))                                          \
	X(wtermsig, int, (char *, size_t, int, char *, size_t))                                    \
	X(wifaborted, int, (int *, int, char *, size_t))                                           \
	X(get_next_attr_value, int, (values_t *, char *, size_t))                                  \
	X(release_attr_values, void, (values_t *))                                                 \
	X(get_attribute_names, int, (names_t **, char *, size_t))                                  \
	X(get_next_attr_name, int, (names_t *, char *, size_t))                                    \
	X(release_attr_names, void, (names_t *))                                                   \
	X(get_DRM_system, int, (char *, size_t, char *, size_t))

#define DECLARE(name, ret, args) ret(*name) args;
static struct {
	struct ferry_engine *eng;
	struct ferry_listing queues; /* qstat -g c */
	void *dl;
	char *path; /* the library loaded */
	char drm[256];
	int sge; /* Grid Engine: its native options and qacct are known */
	int wct; /* the library takes drmaa_wct_hlimit */
	int session;
	struct ferry_track_set t;
	size_t cursor; /* where the next job_ps slice starts */
	unsigned polls;
	char *qacct_id, *qacct_text; /* the last qacct -j, valid in poll qacct_poll */
	unsigned qacct_poll;
	struct {
		DRMAA_FUNCS(DECLARE)
	} f;
} D;
#undef DECLARE

/* DRMAA's diagnoses end with a newline (Grid Engine's): without it, in place. */
static const char *trim(char *s)
{
	size_t n = strlen(s);

	while (n > 0 && isspace((unsigned char)s[n - 1]))
		s[--n] = '\0';
	return s;
}

/* ---- loading the library ---- */

/*
 * A DRMAA library may need static TLS that glibc gives a dlopen only when
 * told at exec time (Grid Engine's links jemalloc); the tunable cannot be
 * set later, so ferryd runs itself again with it. The mark lets the new
 * image drop both before any job inherits them.
 */
static void drmaa_pre_exec(char **argv)
{
	const char *old = getenv("GLIBC_TUNABLES");
	char *val, self[4096];

	if (getenv(REEXEC_MARK) || (old && strstr(old, "optional_static_tls")))
		return;
	val = old && *old ? ferry__asprintf("%s:%s", old, TLS_TUNABLE) : strdup(TLS_TUNABLE);
	if (!val || setenv("GLIBC_TUNABLES", val, 1) || setenv(REEXEC_MARK, old ? old : "", 1)) {
		free(val);
		return;
	}
	free(val);
	/* by its own name: exec of /proc/self/exe would make the process "exe" */
	ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
	if (n > 0) {
		self[n] = '\0';
		execv(self, argv);
	}
	/* still here: go on without it; dlopen says what is wrong */
	unsetenv(REEXEC_MARK);
	if (old)
		setenv("GLIBC_TUNABLES", old, 1);
	else
		unsetenv("GLIBC_TUNABLES");
}

/* Puts back the environment ferryd was started with (after the re-exec). */
static void undo_reexec(void)
{
	const char *old = getenv(REEXEC_MARK);

	if (!old)
		return;
	if (*old)
		setenv("GLIBC_TUNABLES", old, 1);
	else
		unsetenv("GLIBC_TUNABLES");
	unsetenv(REEXEC_MARK);
}

static int load_symbols(char *err, size_t errlen)
{
#define RESOLVE(name, ret, args)                                                                   \
	if (!(*(void **)&D.f.name = dlsym(D.dl, "drmaa_" #name))) {                                \
		snprintf(err, errlen, "'%s' is not a DRMAA v1 library: it has no 'drmaa_%s'",      \
			 D.path, #name);                                                           \
		return -1;                                                                         \
	}
	DRMAA_FUNCS(RESOLVE)
#undef RESOLVE
	return 0;
}

/* dlopen of the configured library, else of the usual names; err names each path tried. */
static int load_library(const struct ferry_resource_cfg *cfg, char *err, size_t errlen)
{
	static const char *const names[] = {"libdrmaa.so.1", "libdrmaa.so", "libdrmaa.so.1.0"};
	const char *given = cfg->drmaa_library ?: getenv("DRMAA_LIBRARY_PATH");
	size_t off = 0;

	for (size_t i = 0; i < (given ? 1 : FERRY_ARRAY_SIZE(names)); i++) {
		const char *p = given ? given : names[i];
		if ((D.dl = dlopen(p, RTLD_NOW | RTLD_GLOBAL))) {
			D.path = strdup(p);
			return D.path ? 0 : -1;
		}
		off += (size_t)snprintf(err + off, off < errlen ? errlen - off : 0, "%s%s",
					off ? "; " : "cannot load the DRMAA library: ", dlerror());
	}
	if (!given)
		snprintf(err + off, off < errlen ? errlen - off : 0,
			 " (set drmaa_library in the resource, or DRMAA_LIBRARY_PATH)");
	return -1;
}

static int drmaa_open(struct ferry_engine *eng, void **self, char *err, size_t errlen)
{
	char diag[DIAG] = "", name[256];
	names_t *attrs = NULL;
	int rc;

	D.eng = eng;
	*self = &D;
	undo_reexec();
	if (load_library(ferry__engine_cfg(eng), err, errlen) < 0 || load_symbols(err, errlen) < 0)
		return FERRY_ECONFIG;
	if ((rc = D.f.init(NULL, diag, sizeof(diag))) != E_SUCCESS) {
		snprintf(err, errlen, "drmaa_init of '%s' failed: %s", D.path, trim(diag));
		return rc == E_DRM_COMMUNICATION_FAILURE ? FERRY_ECONNECT : FERRY_ECONFIG;
	}
	D.session = 1;
	if (D.f.get_DRM_system(D.drm, sizeof(D.drm), diag, sizeof(diag)) != E_SUCCESS)
		snprintf(D.drm, sizeof(D.drm), "unknown");
	D.sge = !strncmp(D.drm, "SGE", 3) || strstr(D.drm, "Grid Engine") ||
		!strncmp(D.drm, "OGS", 3) || !strncmp(D.drm, "UGE", 3);
	if (D.f.get_attribute_names(&attrs, diag, sizeof(diag)) == E_SUCCESS) {
		while (D.f.get_next_attr_name(attrs, name, sizeof(name)) == E_SUCCESS)
			D.wct |= !strcmp(name, "drmaa_wct_hlimit");
		D.f.release_attr_names(attrs);
	}
	fprintf(stderr, "ferryd: drmaa: %s, DRM '%s'\n", D.path, D.drm);
	return 0;
}

static void drmaa_close(void *self)
{
	char diag[DIAG];

	if (D.session)
		D.f.exit(diag, sizeof(diag));
	D.session = 0;
	ferry__track_release(&D.t);
	free(D.qacct_id);
	free(D.qacct_text);
	D.qacct_id = D.qacct_text = NULL;
	free(D.path);
	D.path = NULL;
	ferry__listing_release(&D.queues);
	/* the library stays loaded: its atexit handlers may still run */
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
static char *native_spec(struct ferry_engine *eng, json_t *spec, char *err, size_t errlen)
{
	const char *queue = spec_str(spec, "queue") ?: ferry__engine_cfg(eng)->queue;
	const char *native = spec_str(spec, "native_specification");
	json_int_t cpus = json_integer_value(json_object_get(spec, "cpus"));
	json_int_t mem = json_integer_value(json_object_get(spec, "memory_mb"));
	json_int_t wall = json_integer_value(json_object_get(spec, "walltime_s"));
	const char *what = queue ? "a queue" : cpus > 1 ? "cpus" : mem > 0 ? "memory" : NULL;
	char *out = NULL;
	size_t len;
	FILE *f;

	if (!what && wall > 0 && !D.wct)
		what = "a walltime";
	if (what && !D.sge) {
		snprintf(err, errlen,
			 "the job asks for %s, which ferry maps for Grid Engine only (DRM '%s'): "
			 "give it in the native specification",
			 what, D.drm);
		return NULL;
	}
	if (!(f = open_memstream(&out, &len)))
		return NULL;
	if (queue)
		fprintf(f, " -q %s", queue);
	if (cpus > 1 && !(native && strstr(native, "-pe ")))
		fprintf(f, " -pe smp %lld", (long long)cpus);
	if (mem > 0)
		fprintf(f, " -l h_vmem=%lldM", (long long)mem);
	if (wall > 0 && !D.wct)
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
static int sge_queues(struct ferry_engine *eng, const char **text)
{
	static char *const argv[] = {"qstat", "-g", "c", NULL};

	return ferry__listing_get(eng, &D.queues, argv, text);
}

/* What Grid Engine would refuse anyway, refused at submission with a clear error. */
static int sge_check(struct ferry_engine *eng, json_t *spec, char *err, size_t errlen)
{
	const char *queue = spec_str(spec, "queue") ?: ferry__engine_cfg(eng)->queue;
	json_int_t cpus = json_integer_value(json_object_get(spec, "cpus"));
	const char *list;
	int found = !queue, most = 0;

	if (sge_queues(eng, &list) == FERRY__PENDING)
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
			 ferry__engine_resource(eng), queue);
		return FERRY_ERESOURCE;
	}
	if (most > 0 && cpus > most) {
		snprintf(err, errlen, "the job asks for %lld cpus but %s has %d slots",
			 (long long)cpus, queue ? "that queue" : "the largest queue", most);
		return FERRY_ERESOURCE;
	}
	return 0;
}

static int drmaa_check(void *self, json_t *spec, char *err, size_t errlen)
{
	struct ferry_engine *eng = D.eng;

	char *n = native_spec(eng, spec, err, errlen);
	const char *q = spec_str(spec, "queue");

	if (!n)
		return err[0] ? FERRY_EUNSUPPORTED : FERRY_ENOMEM;
	free(n);
	if (q && strpbrk(q, " \t\n'\"")) {
		snprintf(err, errlen, "queue '%s' is not a queue name", q);
		return FERRY_EINVAL;
	}
	return D.sge ? sge_check(eng, spec, err, errlen) : 0;
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

static int set(jt_t *jt, const char *attr, const char *value, char *diag)
{
	return D.f.set_attribute(jt, attr, value, diag, DIAG);
}

/* The environment the jobs start with: the engine's, as on the other backends. */
static const char **job_env(void)
{
	extern char **environ;
	return (const char **)environ;
}

/* A template for jobs like j; wd: its directory, or the bulk placeholder's. */
static int make_template(struct ferry_engine *eng, struct job *j, const char *wd, jt_t **out,
			 char *diag)
{
	const char *argv[] = {"run", NULL};
	char name[256], *native = NULL, err[512] = "";
	json_int_t wall = json_integer_value(json_object_get(j->spec, "walltime_s"));
	jt_t *jt = NULL;
	int rc;

	if ((rc = D.f.allocate_job_template(&jt, diag, DIAG)) != E_SUCCESS)
		return rc;
	job_name(j->spec, name, sizeof(name));
	if (!(native = native_spec(eng, j->spec, err, sizeof(err)))) {
		snprintf(diag, DIAG, "%s", err[0] ? err : "out of memory");
		rc = E_INVALID_ARGUMENT;
		goto out;
	}
	if ((rc = set(jt, "drmaa_remote_command", "/bin/bash", diag)) ||
	    (rc = D.f.set_vector_attribute(jt, "drmaa_v_argv", argv, diag, DIAG)) ||
	    (rc = D.f.set_vector_attribute(jt, "drmaa_v_env", job_env(), diag, DIAG)) ||
	    (rc = set(jt, "drmaa_wd", wd, diag)) || (rc = set(jt, "drmaa_job_name", name, diag)) ||
	    (rc = set(jt, "drmaa_output_path", ":/dev/null", diag)) ||
	    (rc = set(jt, "drmaa_error_path", ":/dev/null", diag)) ||
	    (rc = set(jt, "drmaa_js_state",
		      j->state == FERRY_USER_ON_HOLD ? "drmaa_hold" : "drmaa_active", diag)))
		goto out;
	if (native[0] && (rc = set(jt, "drmaa_native_specification", native + 1, diag)))
		goto out;
	if (wall > 0 && D.wct) {
		char hms[64];
		snprintf(hms, sizeof(hms), "%lld:%02lld:%02lld", (long long)(wall / 3600),
			 (long long)(wall / 60 % 60), (long long)(wall % 60));
		rc = set(jt, "drmaa_wct_hlimit", hms, diag);
	}
out:
	free(native);
	if (rc != E_SUCCESS) {
		char d2[DIAG];
		D.f.delete_job_template(jt, d2, sizeof(d2));
		return rc;
	}
	*out = jt;
	return 0;
}

/* Writes each job's script as $STATE/jobs/ID/run. */
static int write_scripts(struct ferry_engine *eng, struct job **jobs, size_t n, char *diag)
{
	for (size_t i = 0; i < n; i++) {
		char *text = NULL, *dir = NULL, *path = NULL;
		size_t len;
		FILE *f = open_memstream(&text, &len);
		int bad = !f;
		if (f) {
			ferry__script_head(eng, f);
			bad = ferry__script_job(eng, f, jobs[i], "") < 0;
			/* Grid Engine's: N.T for a bulk's task, N.undefined else */
			ferry__script_tail(f, 0, D.sge ? "$JOB_ID.$SGE_TASK_ID" : "");
			bad |= fclose(f) != 0;
		}
		dir = ferry__job_dir(eng, jobs[i]->id);
		path = dir ? ferry__asprintf("%s/run", dir) : NULL;
		if (bad || !path || ferry__write_file_atomic(path, text, len, 0700) < 0) {
			snprintf(diag, DIAG, "cannot write the job script of job %lld: %s",
				 (long long)jobs[i]->id, strerror(errno));
			bad = 1;
		}
		free(text);
		free(dir);
		free(path);
		if (bad)
			return -1;
	}
	return 0;
}

/* ---- handing jobs over ---- */

static int transient(int rc)
{
	return rc == E_TRY_LATER || rc == E_DRM_COMMUNICATION_FAILURE;
}

/* Submits jobs[0..n) (like, consecutive ids) in one DRMAA call. */
static int submit_batch(struct ferry_engine *eng, struct job **jobs, size_t n, char *err,
			size_t errlen)
{
	char diag[DIAG] = "", *wd = NULL, nid[256];
	jt_t *jt = NULL;
	ids_t *ids = NULL;
	int rc;

	if (write_scripts(eng, jobs, n, diag) < 0) {
		snprintf(err, errlen, "%s", diag);
		return FERRY_EAGAIN;
	}
	wd = n > 1 ? ferry__asprintf("%s/jobs/%s", ferry__engine_state_dir(eng), INCR_PH)
		   : ferry__job_dir(eng, jobs[0]->id);
	if (!wd)
		return FERRY_ENOMEM;
	rc = make_template(eng, jobs[0], wd, &jt, diag);
	free(wd);
	if (rc != E_SUCCESS)
		goto refuse;
	for (size_t i = 0; i < n; i++)
		ferry__engine_job_native_id(eng, jobs[i], PENDING_NATIVE);
	if (ferry__engine_sync(eng)) {
		snprintf(err, errlen, "cannot record the submission in the database");
		rc = FERRY_EAGAIN;
		goto out;
	}
	if (n == 1)
		rc = D.f.run_job(nid, sizeof(nid), jt, diag, sizeof(diag));
	else
		rc = D.f.run_bulk_jobs(&ids, jt, (unsigned)jobs[0]->id, (unsigned)jobs[n - 1]->id,
				       1, diag, sizeof(diag));
	if (rc != E_SUCCESS) {
		if (transient(rc)) {
			for (size_t i = 0; i < n; i++)
				ferry__engine_job_native_id(eng, jobs[i], "");
			snprintf(err, errlen, "DRMAA: %s", trim(diag));
			rc = FERRY_EAGAIN;
			goto out;
		}
		goto refuse;
	}
	for (size_t i = 0; i < n; i++) {
		if (n > 1 && D.f.get_next_job_id(ids, nid, sizeof(nid)) != E_SUCCESS)
			snprintf(nid, sizeof(nid), "%s", PENDING_NATIVE); /* cannot happen */
		if (ferry__track_add(&D.t, jobs[i]->id) < 0)
			fprintf(stderr, "ferryd: drmaa: out of memory tracking job %lld\n",
				(long long)jobs[i]->id);
		ferry__engine_job_handed(eng, jobs[i], nid);
	}
	rc = 0;
	goto out;
refuse : {
	char msg[DIAG + 64];
	snprintf(msg, sizeof(msg), "DRMAA refused the job: %s", trim(diag));
	for (size_t i = 0; i < n; i++)
		ferry__engine_job_refused(eng, jobs[i], msg);
	rc = 0;
}
out:
	if (ids)
		D.f.release_job_ids(ids);
	if (jt)
		D.f.delete_job_template(jt, diag, sizeof(diag));
	return rc;
}

/*
 * Each job ends up handed, refused, or (when the DRM cannot take it now)
 * back in the engine's queue; the DRMAA calls still run on the loop.
 */
static int drmaa_hand(void *self, struct job **jobs, size_t n, char *err, size_t errlen)
{
	struct ferry_engine *eng = D.eng;
	int rc = 0;
	size_t i = 0;

	/* jobs come in id order: a bulk takes the like ones with consecutive ids */
	while (!rc && i < n) {
		size_t m = 1;
		while (i + m < n && m < MAX_TASKS && jobs[i + m]->id == jobs[i]->id + (int64_t)m &&
		       ferry__same_batch(jobs[i], jobs[i + m]))
			m++;
		if (!(rc = submit_batch(eng, jobs + i, m, err, errlen)))
			i += m;
	}
	for (; i < n; i++) /* what submit_batch left: none of it was reported */
		ferry__engine_job_unhanded(eng, jobs[i], err);
	return 0;
}

/* ---- what the DRM says of the jobs ---- */

static struct job *job_of_native(struct ferry_engine *eng, const char *native)
{
	const char *dot = strchr(native, '.');
	struct job *j = dot ? ferry__engine_job(eng, strtoll(dot + 1, NULL, 10)) : NULL;

	/* a bulk's task index is the ferry id: no search (this runs per ended job) */
	if (j && j->native_id && !strcmp(j->native_id, native))
		return j;
	for (size_t i = 0; i < D.t.n; i++) {
		j = ferry__engine_job(eng, D.t.v[i].id);
		if (j && j->native_id && !strcmp(j->native_id, native))
			return j;
	}
	return NULL;
}

static int signal_number(const char *name)
{
	const char *n = !strncmp(name, "SIG", 3) ? name + 3 : name;

	for (int s = 1; s < NSIG; s++) {
		const char *abbrev = sigabbrev_np(s);
		if (abbrev && !strcmp(abbrev, n))
			return s;
	}
	return atoi(n);
}

/* rusage values "name=value" of drmaa_wait, as Grid Engine and others give them. */
static void rusage_into(values_t *ru, struct job_result *res)
{
	char v[256];

	while (ru && D.f.get_next_attr_value(ru, v, sizeof(v)) == E_SUCCESS) {
		char *eq = strchr(v, '=');
		double x;
		if (!eq)
			continue;
		*eq = '\0';
		x = atof(eq + 1);
		if (!strcmp(v, "ru_utime") || !strcmp(v, "user_cpu"))
			res->cpu_user = x;
		else if (!strcmp(v, "ru_stime") || !strcmp(v, "system_cpu"))
			res->cpu_sys = x;
		else if (!strcmp(v, "ru_wallclock") || !strcmp(v, "wallclock"))
			res->wall = x;
		else if (!strcmp(v, "ru_maxrss") && x > 0)
			res->max_rss_kb = (int64_t)x;
		else if (!strcmp(v, "start_time") && x > 0)
			res->started_at = x;
		else if (!strcmp(v, "end_time") && x > 0)
			res->ended_at = x;
	}
}

static void result_init(struct job_result *res)
{
	memset(res, 0, sizeof(*res));
	res->cpu_user = res->cpu_sys = res->wall = -1;
	res->max_rss_kb = -1;
}

/* An end a DRM reports: killed by the user, over its walltime, or as it says. */
static void finish(struct ferry_engine *eng, struct job *j, struct job_result *res)
{
	json_int_t wall = json_integer_value(json_object_get(j->spec, "walltime_s"));

	if (ferry__script_exec_failure(eng, j, res)) {
		/* the script could not start the command */
	} else if (j->kill_requested && res->exit_status != FERRY_FINISHED_REGULARLY) {
		res->exit_status = FERRY_KILLED_BY_USER;
		res->message[0] = '\0';
	} else if (res->exit_status == FERRY_FINISHED_SIGNAL && wall > 0 && res->wall >= wall - 1) {
		snprintf(res->message, sizeof(res->message), "walltime limit exceeded: killed");
	}
	if (res->ended_at > 0 && res->ended_at < j->started_at)
		res->ended_at = 0; /* whole seconds from the DRM: the engine's clock is better */
	ferry__track_del(&D.t, j->id);
	ferry__engine_job_ended(eng, j, res);
}

/* What drmaa_wait said (rc, stat, rusage) of an ended job of this session. */
static void reaped(struct ferry_engine *eng, struct job *j, int rc, int stat, values_t *ru)
{
	struct job_result res;
	char diag[DIAG], sig[64] = "";
	int exited = 0, code = 0, signaled = 0, aborted = 0;

	result_init(&res);
	rusage_into(ru, &res);
	if (rc == E_NO_RUSAGE) {
		res.exit_status = FERRY_ABORTED;
		snprintf(res.message, sizeof(res.message), "removed from the DRM before it ran");
		finish(eng, j, &res);
		return;
	}
	D.f.wifexited(&exited, stat, diag, sizeof(diag));
	D.f.wifsignaled(&signaled, stat, diag, sizeof(diag));
	D.f.wifaborted(&aborted, stat, diag, sizeof(diag));
	if (exited) {
		D.f.wexitstatus(&code, stat, diag, sizeof(diag));
		res.exit_status = FERRY_FINISHED_REGULARLY;
		res.exit_value = code;
	} else if (signaled) {
		D.f.wtermsig(sig, sizeof(sig), stat, diag, sizeof(diag));
		res.exit_status = FERRY_FINISHED_SIGNAL;
		res.signal = signal_number(sig);
	} else if (aborted) {
		res.exit_status = FERRY_ABORTED;
		snprintf(res.message, sizeof(res.message), "the DRM ended the job (aborted)");
	} else {
		res.exit_status = FERRY_FINISHED_UNCLEAR_CONDITION;
		snprintf(res.message, sizeof(res.message), "DRMAA tells no exit status");
	}
	finish(eng, j, &res);
}

/* Every job of this session that ended: one drmaa_wait each, none blocks. */
static void reap(struct ferry_engine *eng)
{
	for (int k = 0; k < REAP_PER_POLL; k++) {
		char diag[DIAG], id[256];
		values_t *ru = NULL;
		int stat = 0,
		    rc = D.f.wait(SESSION_ANY, id, sizeof(id), &stat, 0, &ru, diag, sizeof(diag));
		struct job *j;
		if (rc != E_SUCCESS && rc != E_NO_RUSAGE) {
			if (ru)
				D.f.release_attr_values(ru);
			break; /* EXIT_TIMEOUT: none ended; INVALID_JOB: none left */
		}
		if ((j = job_of_native(eng, id)))
			reaped(eng, j, rc, stat, ru);
		if (ru)
			D.f.release_attr_values(ru);
	}
}

/* "key value" lines of qacct: the value of key, or NULL. */
static const char *qacct_value(const char *text, const char *key, char *buf, size_t len)
{
	size_t kl = strlen(key);

	for (const char *l = text; l && *l; l = strchr(l, '\n'), l = l ? l + 1 : NULL) {
		if (!strncmp(l, key, kl) && (l[kl] == ' ' || l[kl] == '\t')) {
			const char *v = l + kl + strspn(l + kl, " \t");
			snprintf(buf, len, "%.*s", (int)strcspn(v, "\n"), v);
			return buf;
		}
	}
	return NULL;
}

/*
 * qacct's records of Grid Engine job `id` (every task of an array at
 * once), kept for the rest of the poll so that the tasks of one array
 * cost one qacct: 0, or -1 when qacct cannot run. An unknown job is an
 * empty text.
 */
static int qacct_job(const char *id, const char **text)
{
	char idbuf[128];
	char *argv[] = {"qacct", "-j", idbuf, NULL};
	struct ferry_output out, err;
	int status, rc;

	if (D.qacct_id && !strcmp(D.qacct_id, id) && D.qacct_poll == D.polls) {
		*text = D.qacct_text;
		return 0;
	}
	snprintf(idbuf, sizeof(idbuf), "%s", id);
	rc = ferry__run_command(argv, NULL, 0, QACCT_TIMEOUT_S, -1, &out, &err, &status);
	if (rc == 0 && WIFEXITED(status) && WEXITSTATUS(status) != 0 &&
	    strstr(err.data, "not found"))
		out.data[0] = '\0'; /* "error: job id N not found": no record (yet) */
	else if (rc < 0 || !WIFEXITED(status) || WEXITSTATUS(status) != 0)
		rc = -1;
	ferry__output_release(&err);
	if (rc < 0) {
		ferry__output_release(&out);
		return -1;
	}
	free(D.qacct_id);
	free(D.qacct_text);
	D.qacct_id = strdup(id);
	D.qacct_text = out.data;
	D.qacct_poll = D.polls;
	*text = D.qacct_text;
	return 0;
}

/* The record of task (NULL: not an array) in qacct's text, up to the next one. */
static const char *qacct_record(const char *text, const char *task, size_t *len)
{
	/* the first record's separator starts the text, the others a line */
	for (const char *r = strncmp(text, "====", 4) ? strstr(text, "\n====") : text; r;
	     r = strstr(r + 1, "\n====")) {
		const char *body = strchr(r + 1, '\n'), *next;
		char v[64];
		if (!body)
			break;
		next = strstr(body, "\n====");
		*len = next ? (size_t)(next - body) : strlen(body);
		char *rec = strndup(body, *len);
		int match =
		    rec &&
		    (!task || (qacct_value(rec, "taskid", v, sizeof(v)) && !strcmp(trim(v), task)));
		free(rec);
		if (match)
			return body;
	}
	return NULL;
}

/*
 * The end of a Grid Engine job from its accounting record: 1 with res
 * set, 0 when there is no record (yet), -1 when qacct cannot run.
 */
static int from_qacct(const char *native, struct job_result *res)
{
	const char *dot = strchr(native, '.'), *text, *rec;
	char id[128], v[256], *r;
	size_t len;
	int failed, code;

	snprintf(id, sizeof(id), "%.*s", (int)(dot ? (size_t)(dot - native) : strlen(native)),
		 native);
	if (qacct_job(id, &text) < 0)
		return -1;
	if (!(rec = qacct_record(text, dot ? dot + 1 : NULL, &len)) || !(r = strndup(rec, len)))
		return 0;
	result_init(res);
	failed = atoi(qacct_value(r, "failed", v, sizeof(v)) ?: "0");
	code = atoi(qacct_value(r, "exit_status", v, sizeof(v)) ?: "0");
	res->wall = atof(qacct_value(r, "ru_wallclock", v, sizeof(v)) ?: "-1");
	res->cpu_user = atof(qacct_value(r, "ru_utime", v, sizeof(v)) ?: "-1");
	res->cpu_sys = atof(qacct_value(r, "ru_stime", v, sizeof(v)) ?: "-1");
	res->max_rss_kb = atoll(qacct_value(r, "ru_maxrss", v, sizeof(v)) ?: "-1");
	if (failed == 0) {
		res->exit_status = FERRY_FINISHED_REGULARLY;
		res->exit_value = code;
	} else if (failed == 100 && code > 128) { /* "assumedly after job": a signal */
		res->exit_status = FERRY_FINISHED_SIGNAL;
		res->signal = code - 128;
	} else if (failed == 37) {
		res->exit_status = FERRY_FINISHED_SIGNAL;
		res->signal = SIGKILL;
		snprintf(res->message, sizeof(res->message), "walltime limit exceeded: killed");
	} else {
		res->exit_status = FERRY_ABORTED;
		snprintf(res->message, sizeof(res->message), "Grid Engine: failed %s",
			 qacct_value(r, "failed", v, sizeof(v)) ?: "?");
	}
	free(r);
	return 1;
}

/* A job DRMAA no longer knows (ended, or of an earlier session and ended). */
static void vanished(struct ferry_engine *eng, struct job *j, struct ferry_tracked *t)
{
	struct job_result res;
	int rc = D.sge ? from_qacct(j->native_id, &res) : -1;

	if (rc == 1) {
		finish(eng, j, &res);
		return;
	}
	if (D.sge && rc <= 0 && ++t->misses < UNKNOWN_POLLS)
		return; /* the record may come, or qacct work again */
	result_init(&res);
	if (rc == 0) {
		res.exit_status = FERRY_ABORTED;
		snprintf(res.message, sizeof(res.message),
			 "removed from Grid Engine before it ran (no accounting record)");
	} else {
		res.exit_status = FERRY_FINISHED_UNCLEAR_CONDITION;
		snprintf(res.message, sizeof(res.message),
			 "DRMAA no longer knows job %s and this DRM ('%s') keeps no record ferry "
			 "can read",
			 j->native_id, D.drm);
	}
	finish(eng, j, &res);
}

static enum ferry_job_status ps_state(int ps)
{
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
		return FERRY_USER_SUSPENDED;
	case PS_USER_SYSTEM_SUSPENDED:
		return FERRY_USER_SYSTEM_SUSPENDED;
	case PS_QUEUED_ACTIVE:
		return FERRY_QUEUED_ACTIVE;
	default:
		return FERRY_UNDETERMINED;
	}
}

/* One job_ps: a state change, or an end (reaped, or resolved by accounting). */
static void look(struct ferry_engine *eng, int64_t id)
{
	struct ferry_tracked *t = ferry__track_find(&D.t, id);
	struct job *j = ferry__engine_job(eng, id);
	char diag[DIAG];
	double at;
	int ps = PS_UNDETERMINED, rc;

	if (!t || !j || !j->native_id || !strcmp(j->native_id, PENDING_NATIVE))
		return;
	rc = D.f.job_ps(j->native_id, &ps, diag, sizeof(diag));
	if (rc == E_INVALID_JOB) {
		vanished(eng, j, t);
		return;
	}
	if (rc != E_SUCCESS) {
		fprintf(stderr, "ferryd: drmaa: job_ps %s: %s\n", j->native_id, trim(diag));
		return;
	}
	t->misses = 0;
	if (ps == PS_DONE || ps == PS_FAILED || ps == PS_UNDETERMINED)
		return; /* reap's drmaa_wait gives the end */
	ferry__engine_job_state(
	    eng, j, ps_state(ps),
	    ps_state(ps) == FERRY_RUNNING && ferry__script_started(eng, j, &at) ? at : 0);
}

/*
 * A job the last engine was handing over when it stopped: DRMAA cannot
 * list jobs, so whether the DRM took it cannot be known. It is not
 * submitted again (it may be running); it ends with that said.
 */
static void in_flight(struct ferry_engine *eng, struct job *j)
{
	struct job_result res;

	result_init(&res);
	res.exit_status = FERRY_FINISHED_UNCLEAR_CONDITION;
	snprintf(res.message, sizeof(res.message),
		 "the engine stopped while handing the job to DRMAA; whether the DRM ran it "
		 "is not known (DRMAA cannot list jobs)");
	finish(eng, j, &res);
}

static void drmaa_poll_slice(struct ferry_engine *eng)
{
	size_t n, start;
	int64_t *ids;

	D.polls++;
	for (size_t i = D.t.n; i-- > 0;) {
		struct job *j = ferry__engine_job(eng, D.t.v[i].id);
		if (!j) /* ended by the engine itself (killed while queued) */
			ferry__track_del(&D.t, D.t.v[i].id);
		else if (D.t.v[i].old == OLD_IN_FLIGHT)
			in_flight(eng, j);
	}
	reap(eng);
	if (!D.t.n)
		return;
	n = D.t.n < PS_PER_POLL ? D.t.n : PS_PER_POLL;
	start = D.cursor % D.t.n;
	if (!(ids = malloc(n * sizeof(*ids))))
		return;
	for (size_t i = 0; i < n; i++) /* look() may untrack: copy the slice first */
		ids[i] = D.t.v[(start + i) % D.t.n].id;
	D.cursor = start + n;
	for (size_t i = 0; i < n; i++)
		look(eng, ids[i]);
	free(ids);
}

static void drmaa_poll(void *self)
{
	drmaa_poll_slice(D.eng);
	ferry__engine_polled(D.eng);
}

/* ---- control and recovery ---- */

static int drmaa_ctl(struct ferry_engine *eng, struct job *j, enum backend_ctl ctl, char *err,
		     size_t errlen)
{
	static const int action[] = {
	    [CTL_SUSPEND] = C_SUSPEND, [CTL_RESUME] = C_RESUME,	  [CTL_TERMINATE] = C_TERMINATE,
	    [CTL_HOLD] = C_HOLD,       [CTL_RELEASE] = C_RELEASE,
	};
	char diag[DIAG] = "";
	int rc;

	(void)eng;
	if (!j->native_id || !strcmp(j->native_id, PENDING_NATIVE)) {
		snprintf(err, errlen, "its DRM job id is not known yet; try again");
		return FERRY_EAGAIN;
	}
	rc = D.f.control(j->native_id, action[ctl], diag, sizeof(diag));
	if (rc == E_SUCCESS)
		return 0;
	snprintf(err, errlen, "DRMAA: %s", trim(diag));
	if (rc == E_AUTH_FAILURE)
		return FERRY_EPERM;
	if (transient(rc))
		return FERRY_EAGAIN;
	return FERRY_ESTATE;
}

static int drmaa_control(void *self, struct job *j, enum backend_ctl ctl, struct ferry_ctl *token,
			 char *err, size_t errlen)
{
	return drmaa_ctl(D.eng, j, ctl, err, errlen);
}

static int drmaa_adopt(void *self, struct job *j)
{
	struct ferry_engine *eng = D.eng;
	struct ferry_tracked *t;
	char msg[512], nid[128];

	if (!j->native_id[0])
		return 0; /* its submission failed before the last engine stopped */
	if (!strcmp(j->native_id, PENDING_NATIVE) &&
	    ferry__script_native(eng, j, nid, sizeof(nid))) {
		/* it ran: its script left the id the last engine did not record */
		char *u = strstr(nid, ".undefined");
		if (u)
			*u = '\0';
		ferry__engine_job_native_id(eng, j, nid);
	}
	if (ferry__track_add(&D.t, j->id) < 0)
		return 1;
	if ((t = ferry__track_find(&D.t, j->id)))
		t->old = strcmp(j->native_id, PENDING_NATIVE) ? OLD_SESSION : OLD_IN_FLIGHT;
	if (t && t->old == OLD_IN_FLIGHT)
		return 1; /* the first poll ends it */
	if (j->kill_requested && drmaa_ctl(eng, j, CTL_TERMINATE, msg, sizeof(msg)))
		fprintf(stderr, "ferryd: drmaa: job %lld: %s\n", (long long)j->id, msg);
	return 1;
}

static void drmaa_refresh(void *self, struct job *j)
{
	ferry__drms_refresh(D.eng, j);
}

const struct ferry_backend ferry__backend_drmaa = {
    .name = "drmaa",
    .flags = FERRY_BE_DRMS,
    .poll_interval = POLL_INTERVAL_S,
    .pre_exec = drmaa_pre_exec,
    .open = drmaa_open,
    .close = drmaa_close,
    .check = drmaa_check,
    .control = drmaa_control,
    .adopt = drmaa_adopt,
    .poll = drmaa_poll,
    .hand = drmaa_hand,
    .refresh = drmaa_refresh,
};
