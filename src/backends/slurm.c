/*
 * slurm.c - the Slurm backend: jobs go to a Slurm cluster through its
 * commands (sbatch, squeue, scontrol, scancel, sacct), run without a shell
 * and with a time limit; their failures carry Slurm's own message.
 *
 * Every job handed over carries `--comment=ferry:INSTANCE:BASE`: INSTANCE
 * names this engine's database, BASE the first ferry job id of its batch.
 * A batch of similar jobs is one job array whose task ids are the ferry
 * ids minus BASE, so that one squeue line names its ferry job on its own,
 * and an engine that crashed between sbatch and recording what sbatch
 * answered finds its jobs again by their comments: none is submitted
 * twice.
 *
 * Polling is one squeue per interval for all the user's jobs, whatever
 * their number, and one batched sacct (or, without accounting, one
 * `scontrol show job`, then the jobcomp file) for the jobs that ended.
 * docs/backends.md has the state table and what each control needs.
 */
#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "drms.h"
#include "engine.h"
#include "run.h"
#include "slurm.h"
#include "util.h"
#include "work.h"

#define POLL_INTERVAL_S 2.0
#define MAX_TASKS	1000 /* per array: a bounded script, a bounded sbatch */
#define UNKNOWN_POLLS	5    /* polls a vanished job may stay unresolved */
#define PENDING_NATIVE	"?"  /* handing over: the comment tells where it went */
/* Slurm's default max_script_size (SchedulerParameters), when it says none */
#define MAX_SCRIPT (4 * 1024 * 1024)
/* of it, for the script's head, its case and its tail */
#define SCRIPT_FRAME 4096

/*
 * The backend's state (backend.h: what open returns). The loop owns it;
 * a work item carries copies of what its commands need and brings back
 * what they found, applied by its done callback (work.h).
 */
struct slurm {
	struct ferry_engine *eng;
	struct ferry_worker *wk;
	struct ferry_track_set t;   /* the handed jobs, by id */
	int max_array;		    /* highest array task id Slurm takes */
	size_t max_script;	    /* bytes of a batch script Slurm takes */
	int accounting;		    /* sacct: 1 works, 0 disabled, -1 not tried */
	char *jobcomp;		    /* the jobcomp/filetxt file, if any */
	char *recovery;		    /* squeue output while jobs are re-attached */
	int config_known;	    /* scontrol show config was read */
	struct ferry_listing parts; /* sinfo: partitions and their CPUs */
};

/* ---- running Slurm's commands ---- */

/*
 * Reads what the backend needs of the cluster's configuration, once, when
 * the engine starts (before its loop serves anyone).
 */
static void read_config(struct slurm *sl)
{
	char *argv[] = {"scontrol", "show", "config", NULL}, msg[512];
	struct ferry_output out;
	char *p;

	if (sl->config_known)
		return;
	sl->max_array = MAX_TASKS - 1;
	sl->max_script = MAX_SCRIPT;
	if (ferry__slurm_run(-1, ferry__loop_start_nofile(ferry__engine_loop(sl->eng)), argv, NULL,
			     0, &out, msg, sizeof(msg), NULL) < 0) {
		fprintf(stderr, "ferryd: slurm: %s\n", msg);
		return;
	}
	sl->config_known = 1;
	if ((p = strstr(out.data, "max_script_size=")))
		sl->max_script = strtoull(p + 16, NULL, 10);
	if (sl->max_script <= SCRIPT_FRAME)
		sl->max_script = MAX_SCRIPT;
	if ((p = strstr(out.data, "\nMaxArraySize ")) && (p = strchr(p, '=')))
		sl->max_array = atoi(p + 1) - 1;
	if (sl->max_array < 0)
		sl->max_array = 0; /* arrays disabled (MaxArraySize=0): one sbatch per job */
	if (sl->max_array > MAX_TASKS - 1)
		sl->max_array = MAX_TASKS - 1;
	if (strstr(out.data, "JobCompType             = jobcomp/filetxt") &&
	    (p = strstr(out.data, "\nJobCompLoc ")) && (p = strchr(p, '='))) {
		p += 1 + strspn(p + 1, " ");
		sl->jobcomp = strndup(p, strcspn(p, "\n"));
	}
	ferry__output_release(&out);
}

/* ---- the jobs this backend tracks ---- */

static struct ferry_tracked *find(struct slurm *sl, int64_t id)
{
	return ferry__track_find(&sl->t, id);
}

static void track(struct slurm *sl, int64_t id)
{
	if (ferry__track_add(&sl->t, id) < 0)
		fprintf(stderr,
			"ferryd: slurm: out of memory: job %lld is resolved at the engine's "
			"next start\n",
			(long long)id);
}

static void untrack(struct slurm *sl, int64_t id)
{
	ferry__track_del(&sl->t, id);
}

/* ---- the batch script ---- */

static const char *spec_str(json_t *spec, const char *key)
{
	return json_string_value(json_object_get(spec, key));
}

/*
 * The script of a batch: each task picks its job by its array index. The
 * command replaces the shell (exec), so Slurm's exit code and signal are
 * the command's own; an exec that fails leaves its reason in the job
 * directory, which makes "cannot execute" an abort, as on the local
 * backend, not an exit status 127.
 */
static char *script(struct ferry_engine *eng, struct job **jobs, size_t n, int64_t base,
		    const char *launch, size_t *len)
{
	char *text = NULL;
	FILE *f = open_memstream(&text, len);
	int bad = !f;

	if (!f)
		return NULL;
	/* the native id submit_batch gives: A_T for an array's task */
	ferry__script_head(
	    eng, f, n > 1 ? "${SLURM_ARRAY_JOB_ID}_${SLURM_ARRAY_TASK_ID}" : "$SLURM_JOB_ID");
	/* the batch's jobs share it (ferry__same_batch): once, not once a task */
	bad = ferry__script_base_env(eng, f, jobs[0], NULL, NULL, 0) != 0;
	fputs("case ${SLURM_ARRAY_TASK_ID:-0} in\n", f);
	for (size_t i = 0; i < n && !bad; i++) {
		fprintf(f, "%lld)\n", (long long)(jobs[i]->id - base));
		bad = ferry__script_job(eng, f, jobs[i], "\t") < 0;
		fputs("\t;;\n", f);
	}
	fputs("*) echo \"ferry: no job for array task $SLURM_ARRAY_TASK_ID\" >&2; exit 1;;\n"
	      "esac\n",
	      f);
	ferry__script_tail(f, launch);
	if (fclose(f) != 0 || bad) {
		free(text);
		return NULL;
	}
	return text;
}

static int find_pending(struct slurm *sl, struct job *j, const char *queue, char *nid, size_t len);
static int partitions(struct slurm *sl, const char **text);

/* ---- handing jobs over ---- */

/* The job's native specification as words for sbatch, checked (slurm-native.c). */
static int native_words(json_t *spec, char ***words, char *err, size_t errlen)
{
	return ferry__slurm_native_words(spec_str(spec, "native_specification"), words, err,
					 errlen);
}

/* Whether the native specification asks for more than one task (run by srun). */
static int many_tasks(char **w)
{
	for (size_t i = 0; w && w[i]; i++) {
		const char *v = NULL;
		if (!strncmp(w[i], "--ntasks=", 9))
			v = w[i] + 9;
		else if ((!strcmp(w[i], "--ntasks") || !strcmp(w[i], "-n")) && w[i + 1])
			v = w[i + 1];
		else if (!strncmp(w[i], "-n", 2) && isdigit((unsigned char)w[i][2]))
			v = w[i] + 2;
		if (v && atoi(v) > 1)
			return 1;
	}
	return 0;
}

/*
 * Who starts the command's tasks. An MPI job: srun, with PMIx, the one
 * plugin Debian's Slurm and Open MPI share (docs/backends.md, "Parallel
 * jobs"). A job whose tasks are its own (launcher none): nobody, the
 * command is started once. Tasks asked for in the native specification
 * alone: srun, as ferry always did.
 */
static const char *launcher(json_t *spec, char **native)
{
	if (json_object_get(spec, "launcher"))
		return "srun --mpi=pmix";
	if (json_object_get(spec, "tasks"))
		return NULL;
	return many_tasks(native) ? "srun" : NULL;
}

/* A parallel job's request and the same request in its native specification: refused. */
static int check_parallel(json_t *spec, char **w, char *err, size_t errlen)
{
	static const struct {
		const char *key, *opt[2];
	} pairs[] = {{"tasks", {"-n", "--ntasks"}},
		     {"cpus_per_task", {"-c", "--cpus-per-task"}},
		     {"nodes", {"-N", "--nodes"}}};

	for (size_t p = 0; p < FERRY_ARRAY_SIZE(pairs); p++) {
		if (!json_object_get(spec, pairs[p].key))
			continue;
		for (size_t i = 0; w && w[i]; i++)
			for (size_t k = 0; k < 2; k++)
				if (ferry__slurm_names_option(w[i], pairs[p].opt[k]))
					return ferry__fail(err, errlen, FERRY_EINVAL,
							   "native specification '%s' sets '%s', "
							   "which the job's '%s' sets",
							   spec_str(spec, "native_specification"),
							   pairs[p].opt[k], pairs[p].key);
	}
	return 0;
}

/* What sbatch would refuse anyway, refused at submission with a clear error. */
static int check_partition(struct slurm *sl, json_t *spec, char *err, size_t errlen)
{
	struct ferry_engine *eng = sl->eng;
	const char *queue = spec_str(spec, "queue") ?: ferry__engine_cfg(eng)->queue;
	/* a task is on one node: a parallel job's largest part is a task */
	json_int_t cpus = json_object_get(spec, "tasks")
			      ? json_integer_value(json_object_get(spec, "cpus_per_task")) ?: 1
			      : json_integer_value(json_object_get(spec, "cpus"));
	const char *list;
	int found = !queue, most = 0;

	if (partitions(sl, &list) == FERRY__PENDING)
		return FERRY__PENDING;
	if (!list)
		return 0;
	for (const char *l = list; *l; l += strcspn(l, "\n"), l += *l == '\n') {
		size_t nl = strcspn(l, "|");
		int c = atoi(l + nl + 1);
		if (queue && (strlen(queue) != nl || strncmp(l, queue, nl)))
			continue;
		found = 1;
		most = c > most ? c : most;
	}
	if (!found) {
		snprintf(err, errlen, "resource '%s' has no partition '%s'",
			 ferry__engine_resource(eng), queue);
		return FERRY_ERESOURCE;
	}
	if (most > 0 && cpus > most) {
		snprintf(err, errlen,
			 "the job asks for %lld cpus but the largest node of %s has %d",
			 (long long)cpus, queue ? "that partition" : "the cluster", most);
		return FERRY_ERESOURCE;
	}
	return 0;
}

static int slurm_check(void *self, json_t *spec, char *err, size_t errlen)
{
	char **w;
	int rc = native_words(spec, &w, err, errlen);

	if (!rc)
		rc = check_parallel(spec, w, err, errlen);
	ferry__strv_free(w);
	return rc ? rc : check_partition(self, spec, err, errlen);
}

/* sbatch's arguments for a batch of n jobs like jobs[0]. */
static char **sbatch_argv(struct ferry_engine *eng, struct job **jobs, size_t n, int64_t base,
			  char **native)
{
	json_t *s = jobs[0]->spec;
	const char *queue = spec_str(s, "queue") ?: ferry__engine_cfg(eng)->queue;
	const char *name = spec_str(s, "name");
	json_int_t mem = json_integer_value(json_object_get(s, "memory_mb"));
	json_int_t wall = json_integer_value(json_object_get(s, "walltime_s"));
	json_t *tasks = json_object_get(s, "tasks");
	json_int_t cpt = json_integer_value(json_object_get(s, "cpus_per_task")),
		   nodes = json_integer_value(json_object_get(s, "nodes"));
	size_t nn = ferry__strv_len(native), k = 0;
	char **v = calloc(18 + nn, sizeof(*v));
	FILE *arr = NULL;
	char *array = NULL;
	size_t alen;

	if (!v)
		return NULL;
	v[k++] = strdup("sbatch");
	v[k++] = strdup("--parsable");
	v[k++] = ferry__asprintf("--job-name=%s", name ? name : "ferry");
	v[k++] = ferry__asprintf("--comment=ferry:%s:%lld", ferry__engine_instance(eng),
				 (long long)base);
	v[k++] = ferry__asprintf("--chdir=%s", ferry__engine_jobs_dir(eng)); /* the nodes see it */
	v[k++] = strdup("--output=/dev/null");
	if (tasks) { /* a parallel job: cpus is tasks x cpus_per_task */
		v[k++] = ferry__asprintf("--ntasks=%lld", (long long)json_integer_value(tasks));
		v[k++] = ferry__asprintf("--cpus-per-task=%lld", (long long)(cpt ? cpt : 1));
	} else {
		v[k++] = ferry__asprintf("--cpus-per-task=%lld",
					 (long long)json_integer_value(json_object_get(s, "cpus")));
	}
	if (nodes > 0)
		v[k++] = ferry__asprintf("--nodes=%lld", (long long)nodes);
	if (mem > 0)
		v[k++] = ferry__asprintf("--mem=%lldM", (long long)mem);
	if (wall > 0)
		v[k++] = ferry__asprintf("--time=%lld:%02lld:%02lld", (long long)(wall / 3600),
					 (long long)(wall / 60 % 60), (long long)(wall % 60));
	if (queue)
		v[k++] = ferry__asprintf("--partition=%s", queue);
	if (jobs[0]->state == FERRY_USER_ON_HOLD)
		v[k++] = strdup("--hold");
	if (n > 1 && (arr = open_memstream(&array, &alen))) {
		fputs("--array=", arr);
		for (size_t i = 0; i < n; i++)
			fprintf(arr, "%s%lld", i ? "," : "", (long long)(jobs[i]->id - base));
		if (fclose(arr) == 0)
			v[k++] = array;
	}
	for (size_t i = 0; i < nn; i++)
		v[k++] = strdup(native[i]);
	for (size_t i = 0; i < k; i++)
		if (!v[i]) {
			ferry__strv_free(v);
			return NULL;
		}
	return v;
}

/*
 * A hand's work: the lookups of jobs whose last sbatch failed (it may
 * have gone through: one squeue finds them by their comments), then one
 * sbatch per batch. The loop built every argv and script; the worker
 * only runs them.
 */
struct batch {
	int64_t *ids;
	size_t n;
	char **argv;
	char *script;
	size_t len;
	/* what came back */
	int outcome; /* 0 submitted (sid), 1 refused, 2 try again later */
	long long sid;
	char msg[512];
};

struct hand_work {
	struct ferry_work w;
	struct slurm *sl;
	int64_t *lookups; /* ids of jobs to look for in squeue first */
	size_t nlookups;
	char *queue; /* squeue's answer for the lookups; NULL: it failed */
	struct batch *b;
	size_t nb;
};

static int list_queue(int cancel_fd, unsigned long long nofile, struct ferry_output *out, char *msg,
		      size_t msglen);

static void hand_run(struct ferry_work *w)
{
	struct hand_work *h = (struct hand_work *)w;
	struct ferry_output out;
	char msg[512];

	if (h->nlookups && list_queue(w->cancel_fd, w->nofile, &out, msg, sizeof(msg)) == 0)
		h->queue = out.data;
	for (size_t i = 0; i < h->nb; i++) {
		struct batch *b = &h->b[i];
		int transient = 0;
		if (b->outcome) /* refused already */
			continue;
		if (ferry__slurm_run(w->cancel_fd, w->nofile, b->argv, b->script, b->len, &out,
				     b->msg, sizeof(b->msg), &transient) < 0) {
			b->outcome = transient ? 2 : 1;
			continue;
		}
		b->sid = strtoll(out.data, NULL, 10);
		if (b->sid <= 0) {
			snprintf(b->msg, sizeof(b->msg), "sbatch answered '%.100s', not a job id",
				 out.data);
			b->outcome = 1;
		}
		ferry__output_release(&out);
	}
}

static void hand_free(struct hand_work *h)
{
	for (size_t i = 0; i < h->nb; i++) {
		free(h->b[i].ids);
		ferry__strv_free(h->b[i].argv);
		free(h->b[i].script);
	}
	free(h->b);
	free(h->lookups);
	free(h->queue);
	free(h);
}

static void cancel_later(struct slurm *sl, const char *native);

/* A batch's jobs: handed, refused or back in the queue, as sbatch said. */
static void batch_done(struct slurm *sl, struct batch *b, int ran)
{
	for (size_t i = 0; i < b->n; i++) {
		struct job *j = ferry__engine_job(sl->eng, b->ids[i]);
		char nid[64];
		if (!ran || b->outcome == 2) {
			if (j)
				ferry__engine_job_unhanded(sl->eng, j,
							   ran ? b->msg : "the engine stops");
			continue;
		}
		if (b->outcome == 1) {
			if (j)
				ferry__engine_job_refused(sl->eng, j, b->msg);
			continue;
		}
		if (b->n > 1)
			snprintf(nid, sizeof(nid), "%lld_%lld", b->sid,
				 (long long)(b->ids[i] - b->ids[0]));
		else
			snprintf(nid, sizeof(nid), "%lld", b->sid);
		if (!j) { /* killed or disposed while sbatch ran */
			cancel_later(sl, nid);
			continue;
		}
		track(sl, j->id);
		ferry__engine_job_handed(sl->eng, j, nid);
	}
}

/* A job whose last sbatch failed: in Slurm after all, or handed again. */
static void lookup_done(struct slurm *sl, int64_t id, const char *queue, int ran)
{
	struct job *j = ferry__engine_job(sl->eng, id);
	char nid[128];

	if (!j)
		return;
	if (!ran || !queue) {
		ferry__engine_job_unhanded(sl->eng, j, "cannot ask squeue where it went");
		return;
	}
	if (find_pending(sl, j, queue, nid, sizeof(nid))) {
		track(sl, j->id);
		ferry__engine_job_handed(sl->eng, j, nid);
		return;
	}
	ferry__engine_job_native_id(sl->eng, j, ""); /* sbatch never made it */
	ferry__engine_job_unhanded(sl->eng, j, NULL);
}

static void hand_done(struct ferry_engine *eng, struct ferry_work *w)
{
	struct hand_work *h = (struct hand_work *)w;

	for (size_t i = 0; i < h->nlookups; i++)
		lookup_done(h->sl, h->lookups[i], h->queue, w->ran);
	for (size_t i = 0; i < h->nb; i++)
		batch_done(h->sl, &h->b[i], w->ran);
	hand_free(h);
	ferry__engine_backend_ready(eng); /* controls that waited for the hand */
}

/*
 * Builds the sbatch of jobs[0..n); 0, or -1 when out of memory. A native
 * specification sbatch would refuse makes the batch refused (outcome 1),
 * reported with the rest by hand_done: hand itself frees no job.
 */
static int batch_init(struct slurm *sl, struct batch *b, struct job **jobs, size_t n)
{
	int64_t base = jobs[0]->id;
	char **native = NULL;

	b->n = n;
	if (!(b->ids = malloc(n * sizeof(*b->ids))))
		return -1;
	for (size_t i = 0; i < n; i++)
		b->ids[i] = jobs[i]->id;
	/* an environment that cannot be read fails the batch, said, as a native one */
	if (native_words(jobs[0]->spec, &native, b->msg, sizeof(b->msg)) ||
	    ferry__script_base_env(sl->eng, NULL, jobs[0], NULL, b->msg, sizeof(b->msg))) {
		ferry__strv_free(native);
		b->outcome = 1;
		return 0;
	}
	b->argv = sbatch_argv(sl->eng, jobs, n, base, native);
	b->script = script(sl->eng, jobs, n, base, launcher(jobs[0]->spec, native), &b->len);
	ferry__strv_free(native);
	return b->argv && b->script ? 0 : -1;
}

/* Groups jobs (in id order) into arrays of like jobs within an id span. */
static int hand_batches(struct slurm *sl, struct hand_work *h, struct job **jobs, size_t n,
			char *taken)
{
	struct job **batch = malloc(n * sizeof(*batch));

	if (!batch || !(h->b = calloc(n, sizeof(*h->b)))) {
		free(batch);
		return -1;
	}
	for (size_t i = 0; i < n; i++) {
		size_t m = 0, bytes = SCRIPT_FRAME, env = 0;
		int rc;
		if (taken[i])
			continue;
		/* unreadable: batch_init says so */
		ferry__script_base_env(sl->eng, NULL, jobs[i], &env, NULL, 0);
		bytes += env;
		for (size_t k = i; k < n && m < MAX_TASKS; k++) {
			if (taken[k] || !ferry__same_batch(jobs[i], jobs[k]))
				continue;
			/* past Slurm's limits: the next array takes the rest */
			if (jobs[k]->id - jobs[i]->id > sl->max_array)
				break;
			bytes += ferry__script_job_bytes(sl->eng, jobs[k], "\t") + 16;
			if (m > 0 && bytes > sl->max_script)
				break;
			batch[m++] = jobs[k];
			taken[k] = 1;
		}
		rc = batch_init(sl, &h->b[h->nb++], batch, m);
		if (rc < 0) { /* its strings are freed with the rest */
			free(batch);
			return -1;
		}
	}
	free(batch);
	return 0;
}

static int slurm_hand(void *self, struct job **jobs, size_t n, char *err, size_t errlen)
{
	struct slurm *sl = self;
	struct hand_work *h = calloc(1, sizeof(*h));
	char *taken = calloc(n, 1);

	if (!h || !taken || !(h->lookups = malloc(n * sizeof(*h->lookups))))
		goto nomem;
	h->w = (struct ferry_work){.run = hand_run, .done = hand_done};
	h->sl = sl;
	/* a job whose last sbatch failed may still be in Slurm: look before submitting */
	for (size_t i = 0; i < n; i++) {
		if (jobs[i]->native_id && !strcmp(jobs[i]->native_id, PENDING_NATIVE)) {
			h->lookups[h->nlookups++] = jobs[i]->id;
			taken[i] = 1;
		}
	}
	if (hand_batches(sl, h, jobs, n, taken) < 0)
		goto nomem;
	free(taken);
	/* the intent first: after a crash the comment finds what sbatch made */
	for (size_t i = 0; i < h->nb; i++)
		for (size_t k = 0; !h->b[i].outcome && k < h->b[i].n; k++)
			ferry__engine_job_native_id(
			    sl->eng, ferry__engine_job(sl->eng, h->b[i].ids[k]), PENDING_NATIVE);
	if (ferry__engine_sync(sl->eng)) {
		snprintf(err, errlen, "cannot record the submission in the database");
		hand_free(h);
		return FERRY_EAGAIN;
	}
	ferry__worker_queue(sl->wk, &h->w);
	return 0;
nomem:
	snprintf(err, errlen, "out of memory");
	free(taken);
	if (h)
		hand_free(h);
	return FERRY_EAGAIN;
}

/* ---- what Slurm says of the jobs ---- */

/* The ferry id of a line whose comment is ours: BASE plus the task id. */
static int64_t ferry_id(struct ferry_engine *eng, const char *comment, const char *task)
{
	const char *inst = ferry__engine_instance(eng); /* set once: read on the loop only */
	size_t il = strlen(inst);

	if (strncmp(comment, "ferry:", 6) || strncmp(comment + 6, inst, il) ||
	    comment[6 + il] != ':')
		return 0;
	return strtoll(comment + 7 + il, NULL, 10) +
	       (isdigit((unsigned char)task[0]) ? strtoll(task, NULL, 10) : 0);
}

/* The user's jobs as squeue lists them: "id|task|state|reason|start|comment". */
static int list_queue(int cancel_fd, unsigned long long nofile, struct ferry_output *out, char *msg,
		      size_t msglen)
{
	char uid[32];
	char *argv[] = {"squeue", "-h", "-r", "-t", "all", "-u", uid, "-o", "%i|%K|%T|%r|%S|%k",
			NULL};

	snprintf(uid, sizeof(uid), "%u", (unsigned)getuid());
	return ferry__slurm_run(cancel_fd, nofile, argv, NULL, 0, out, msg, msglen, NULL);
}

/*
 * A live job's state from squeue's state and reason. Slurm has one
 * suspension and one hold reason per job, not one per party: whether
 * ferry is one of them comes from was, the state ferry knew.
 */
static enum ferry_job_status active_state(enum ferry_job_status was, const char *st,
					  const char *why)
{
	if (!strcmp(st, "RUNNING") || !strcmp(st, "COMPLETING") || !strcmp(st, "STOPPED") ||
	    !strcmp(st, "SIGNALING") || !strcmp(st, "STAGE_OUT"))
		return FERRY_RUNNING;
	if (!strcmp(st, "SUSPENDED"))
		return was == FERRY_USER_SUSPENDED ? FERRY_USER_SUSPENDED : FERRY_SYSTEM_SUSPENDED;
	if (!strcmp(why, "JobHeldUser"))
		return FERRY_USER_ON_HOLD;
	if (!strcmp(why, "JobHeldAdmin"))
		return was == FERRY_USER_ON_HOLD || was == FERRY_USER_SYSTEM_ON_HOLD
			   ? FERRY_USER_SYSTEM_ON_HOLD
			   : FERRY_SYSTEM_ON_HOLD;
	return FERRY_QUEUED_ACTIVE;
}

/* Maps what Slurm says of an ended job; docs/backends.md has the table. */
static void to_result(struct ferry_engine *eng, struct job *j, const struct sres *s,
		      struct job_result *res)
{
	const char *st = s->state;

	memset(res, 0, sizeof(*res));
	res->exit_value = s->code;
	res->signal = s->sig;
	res->cpu_user = s->user;
	res->cpu_sys = s->sys;
	res->max_rss_kb = s->maxrss_kb;
	res->started_at = s->start;
	res->ended_at = s->end;
	res->wall = s->start > 0 && s->end >= s->start ? s->end - s->start : -1;
	if (!st[0]) {
		res->exit_status = FERRY_FINISHED_UNCLEAR_CONDITION;
		res->cpu_user = res->cpu_sys = res->wall = -1;
		snprintf(res->message, sizeof(res->message),
			 "Slurm no longer knows job %s and keeps no record of it", j->native_id);
		return;
	}
	if (ferry__script_exec_failure(eng, j, res))
		return;
	res->exit_status = s->sig ? FERRY_FINISHED_SIGNAL : FERRY_FINISHED_REGULARLY;
	if (!strcmp(st, "COMPLETED") || !strcmp(st, "FAILED"))
		return;
	if (!strncmp(st, "CANCELLED", 9)) {
		res->exit_status = FERRY_ABORTED;
		snprintf(res->message, sizeof(res->message), "cancelled in Slurm (%s)", st);
	} else if (!strcmp(st, "TIMEOUT")) {
		res->exit_status = FERRY_FINISHED_SIGNAL;
		res->signal = s->sig ? s->sig : 9;
		snprintf(res->message, sizeof(res->message), "walltime limit exceeded: killed");
	} else if (!strcmp(st, "OUT_OF_MEMORY")) {
		res->exit_status = FERRY_FINISHED_SIGNAL;
		res->signal = s->sig ? s->sig : 9;
		snprintf(res->message, sizeof(res->message), "memory limit exceeded: killed");
	} else if (!strcmp(st, "NODE_FAIL") || !strcmp(st, "PREEMPTED")) {
		res->exit_status = FERRY_FINISHED_UNCLEAR_CONDITION;
		snprintf(res->message, sizeof(res->message), "Slurm says %s", st);
	} else {
		res->exit_status = FERRY_ABORTED;
		snprintf(res->message, sizeof(res->message), "Slurm says %s", st);
	}
}

/*
 * Ends the jobs of r that Slurm has a word on, or that stayed unknown too
 * long (answered: a source of records could be read). The others are
 * undetermined meanwhile.
 */
static void report_ended(struct slurm *sl, const int64_t *ids, const struct sres *r, size_t n,
			 int answered)
{
	for (size_t i = 0; i < n; i++) {
		struct job *j = ferry__engine_job(sl->eng, ids[i]);
		struct ferry_tracked *t = find(sl, ids[i]);
		struct job_result res;
		if (!j || !t)
			continue;
		/* accounting may lag behind; no source answering says nothing of the job */
		if (!r[i].state[0] && (!answered || ++t->misses < UNKNOWN_POLLS)) {
			ferry__drms_uncertain(sl->eng, j);
			continue;
		}
		to_result(sl->eng, j, &r[i], &res);
		untrack(sl, ids[i]);
		ferry__engine_job_ended(sl->eng, j, &res);
	}
}

/* One squeue line of ours: a state change, or an end to resolve. */
static int queue_line(struct slurm *sl, char *line, int64_t *id)
{
	struct ferry_engine *eng = sl->eng;
	char *f[6];
	struct ferry_tracked *t;
	struct job *j;

	if (ferry__slurm_fields(line, f, 6) < 6 || !(*id = ferry_id(eng, f[5], f[1])))
		return 0;
	t = find(sl, *id);
	j = ferry__engine_job(eng, *id);
	if (t && j && j->native_id && !strcmp(j->native_id, PENDING_NATIVE))
		ferry__engine_job_native_id(eng, j, f[0]); /* adopted while squeue failed */
	if (!t || !j || !j->native_id || strcmp(j->native_id, f[0]))
		return 0;
	t->seen = 1;
	if (ferry__slurm_ended_state(f[2]))
		return 1;
	ferry__engine_job_state(eng, j, active_state(ferry__job_known(j), f[2], f[3]),
				ferry__slurm_parse_time(f[4]));
	return 0;
}

/*
 * A poll is two items on the worker: one squeue for all the user's jobs,
 * then, for those that ended or left the queue, what sacct, scontrol or
 * the jobcomp file say of them. Each is applied on the loop in between.
 */
struct poll_work {
	struct ferry_work w;
	struct slurm *sl;
	struct ferry_output out; /* squeue's */
	char msg[512];
	int rc;
	/* the ended jobs to resolve */
	struct slurm_resolve x;
	int64_t *ids;
	struct sres *r;
	size_t n;
};

static void poll_free(struct poll_work *p)
{
	ferry__output_release(&p->out);
	free(p->ids);
	free(p->r);
	free(p);
}

static void resolve_run(struct ferry_work *w)
{
	struct poll_work *p = (struct poll_work *)w;

	p->x.cancel_fd = w->cancel_fd;
	p->x.nofile = w->nofile;
	ferry__slurm_resolve(&p->x, p->r, p->n);
}

static void resolve_done(struct ferry_engine *eng, struct ferry_work *w)
{
	struct poll_work *p = (struct poll_work *)w;

	if (w->ran) {
		p->sl->accounting = p->x.accounting;
		report_ended(p->sl, p->ids, p->r, p->n, p->x.answered);
	}
	poll_free(p);
	ferry__engine_polled(eng);
}

/* The ended or vanished jobs of a poll, with what is known of each. */
static void ended_jobs(struct slurm *sl, struct poll_work *p)
{
	for (size_t i = 0; i < p->n; i++) {
		struct job *j = ferry__engine_job(sl->eng, p->ids[i]);
		char nid[64];
		if (j && j->native_id && !strcmp(j->native_id, PENDING_NATIVE) &&
		    ferry__script_native(sl->eng, j, nid, sizeof(nid)))
			ferry__engine_job_native_id(sl->eng, j, nid); /* it ran, and left its id */
		/* still "?": no record can name it; it ends unclear after UNKNOWN_POLLS */
		snprintf(p->r[i].native, sizeof(p->r[i].native), "%s",
			 j && strcmp(j->native_id, PENDING_NATIVE) ? j->native_id : "");
		p->r[i].maxrss_kb = -1;
		p->r[i].user = p->r[i].sys = -1; /* scontrol and jobcomp do not say */
	}
}

/* squeue's answer: states applied; the jobs that ended go to resolve_run. */
static int queue_answer(struct slurm *sl, struct poll_work *p)
{
	struct ferry_track_set *t = &sl->t;
	char *save = NULL;
	int64_t id;

	p->r = calloc(t->n, sizeof(*p->r));
	p->ids = calloc(t->n, sizeof(*p->ids));
	if (!p->r || !p->ids)
		return -1;
	for (size_t i = 0; i < t->n; i++)
		t->v[i].seen = 0;
	for (char *l = strtok_r(p->out.data, "\n", &save); l; l = strtok_r(NULL, "\n", &save))
		if (queue_line(sl, l, &id) && p->n < t->n)
			p->ids[p->n++] = id;
	for (size_t i = 0; i < t->n; i++)
		if (!t->v[i].seen && p->n < t->n)
			p->ids[p->n++] = t->v[i].id;
	ended_jobs(sl, p);
	return 0;
}

/* squeue failed: no job of the engine's is known to be where it was. */
static void uncertain(struct slurm *sl)
{
	for (size_t i = 0; i < sl->t.n; i++) {
		struct job *j = ferry__engine_job(sl->eng, sl->t.v[i].id);
		if (j)
			ferry__drms_uncertain(sl->eng, j);
	}
}

static void queue_run(struct ferry_work *w)
{
	struct poll_work *p = (struct poll_work *)w;

	p->rc = list_queue(w->cancel_fd, w->nofile, &p->out, p->msg, sizeof(p->msg));
}

static void queue_done(struct ferry_engine *eng, struct ferry_work *w)
{
	struct poll_work *p = (struct poll_work *)w;
	struct slurm *sl = p->sl;

	if (w->ran && p->rc < 0) {
		fprintf(stderr, "ferryd: slurm: %s\n", p->msg);
		uncertain(sl);
	}
	if (!w->ran || p->rc < 0 || queue_answer(sl, p) < 0 || !p->n) {
		poll_free(p);
		ferry__engine_polled(eng);
		return;
	}
	ferry__output_release(&p->out);
	p->x = (struct slurm_resolve){.accounting = sl->accounting, .jobcomp = sl->jobcomp};
	p->w = (struct ferry_work){.run = resolve_run, .done = resolve_done};
	ferry__worker_queue(sl->wk, &p->w);
}

static void slurm_poll(void *self)
{
	struct slurm *sl = self;
	struct poll_work *p;

	free(sl->recovery); /* re-attaching is over */
	sl->recovery = NULL;
	for (size_t i = sl->t.n; i-- > 0;) /* ended by the engine itself (killed while queued) */
		if (!ferry__engine_job(sl->eng, sl->t.v[i].id))
			untrack(sl, sl->t.v[i].id);
	if (!sl->t.n || !(p = calloc(1, sizeof(*p)))) {
		ferry__engine_polled(sl->eng);
		return;
	}
	p->w = (struct ferry_work){.run = queue_run, .done = queue_done};
	p->sl = sl;
	ferry__worker_queue(sl->wk, &p->w);
}

/* ---- control and recovery ---- */

/*
 * A control on the worker: scontrol or scancel. With a token, its
 * outcome answers the client that asked (ferry__engine_control_done);
 * without, the engine acts on its own (a cancel) and a failure is logged.
 */
struct ctl_work {
	struct ferry_work w;
	struct slurm *sl;
	struct ferry_ctl *token;
	char *argv[4];
	int rc;
	char msg[600];
};

static void ctl_run(struct ferry_work *w)
{
	struct ctl_work *c = (struct ctl_work *)w;
	struct ferry_output out;
	char msg[512];

	if (ferry__slurm_run(w->cancel_fd, w->nofile, c->argv, NULL, 0, &out, msg, sizeof(msg),
			     NULL) == 0) {
		ferry__output_release(&out);
		return;
	}
	if (strstr(msg, "Access/permission denied") || strstr(msg, "Permission denied")) {
		snprintf(c->msg, sizeof(c->msg),
			 "%s (this cluster lets only its administrators do this)", msg);
		c->rc = FERRY_EPERM;
		return;
	}
	snprintf(c->msg, sizeof(c->msg), "%s", msg);
	c->rc = FERRY_ESTATE;
}

static void ctl_done(struct ferry_engine *eng, struct ferry_work *w)
{
	struct ctl_work *c = (struct ctl_work *)w;

	if (!w->ran) {
		c->rc = FERRY_EAGAIN;
		snprintf(c->msg, sizeof(c->msg), "the engine stopped before '%s' ran", c->argv[0]);
	}
	if (c->token)
		ferry__engine_control_done(eng, c->token, c->rc, c->msg);
	else if (c->rc)
		fprintf(stderr, "ferryd: slurm: %s\n", c->msg);
	for (int i = 0; i < 3; i++)
		free(c->argv[i]);
	free(c);
}

/* Queues a0 a1 [a2]; 0, or FERRY_ENOMEM. */
static int ctl_queue(struct slurm *sl, struct ferry_ctl *token, const char *a0, const char *a1,
		     const char *a2)
{
	struct ctl_work *c = calloc(1, sizeof(*c));

	if (!c)
		return FERRY_ENOMEM;
	c->w = (struct ferry_work){.run = ctl_run, .done = ctl_done};
	c->sl = sl;
	c->token = token;
	c->argv[0] = strdup(a0);
	c->argv[1] = strdup(a1);
	c->argv[2] = a2 ? strdup(a2) : NULL;
	if (!c->argv[0] || !c->argv[1] || (a2 && !c->argv[2])) {
		for (int i = 0; i < 3; i++)
			free(c->argv[i]);
		free(c);
		return FERRY_ENOMEM;
	}
	ferry__worker_queue(sl->wk, &c->w);
	return 0;
}

static void cancel_later(struct slurm *sl, const char *native)
{
	if (ctl_queue(sl, NULL, "scancel", native, NULL))
		fprintf(stderr, "ferryd: slurm: out of memory: cannot cancel Slurm job %s\n",
			native);
}

static int slurm_control(void *self, struct job *j, enum backend_ctl ctl, struct ferry_ctl *token,
			 char *err, size_t errlen)
{
	static const char *const verb[] = {
	    [CTL_SUSPEND] = "suspend", [CTL_RESUME] = "resume", [CTL_HOLD] = "uhold",
	    [CTL_RELEASE] = "release", [CTL_TERMINATE] = NULL,
	};
	int rc;

	if (!j->native_id || !strcmp(j->native_id, PENDING_NATIVE)) {
		snprintf(err, errlen, "its Slurm job id is not known yet; try again");
		return FERRY_EAGAIN;
	}
	rc = ctl == CTL_TERMINATE ? ctl_queue(self, token, "scancel", j->native_id, NULL)
				  : ctl_queue(self, token, "scontrol", verb[ctl], j->native_id);
	if (rc) {
		snprintf(err, errlen, "out of memory");
		return rc;
	}
	return FERRY__PENDING;
}

/*
 * Where a submission that failed or was in flight went: the squeue line
 * that carries its comment, else the id its script left when it ran
 * (gone from slurmctld, MinJobAge). 1 with nid, or 0.
 */
static int find_pending(struct slurm *sl, struct job *j, const char *queue, char *nid, size_t len)
{
	char *save = NULL, *copy = strdup(queue);

	for (char *l = copy ? strtok_r(copy, "\n", &save) : NULL; l;
	     l = strtok_r(NULL, "\n", &save)) {
		char *f[6];
		if (ferry__slurm_fields(l, f, 6) == 6 && ferry_id(sl->eng, f[5], f[1]) == j->id) {
			snprintf(nid, len, "%s", f[0]);
			free(copy);
			return 1;
		}
	}
	free(copy);
	return ferry__script_native(sl->eng, j, nid, len);
}

/* At startup (before the loop serves anyone): one squeue for all re-attached jobs. */
static int recovery_pending(struct slurm *sl, struct job *j)
{
	char msg[512], nid[128];
	struct ferry_output out;

	if (!sl->recovery) {
		if (list_queue(-1, ferry__loop_start_nofile(ferry__engine_loop(sl->eng)), &out, msg,
			       sizeof(msg)) < 0) {
			fprintf(stderr, "ferryd: slurm: %s\n", msg);
			return -1;
		}
		sl->recovery = out.data; /* kept until the first poll */
	}
	if (!find_pending(sl, j, sl->recovery, nid, sizeof(nid)))
		return 0;
	ferry__engine_job_native_id(sl->eng, j, nid);
	return 1;
}

static int slurm_adopt(void *self, struct job *j)
{
	struct slurm *sl = self;

	if (!j->native_id[0])
		return 0; /* an sbatch that failed before the last engine stopped */
	if (!strcmp(j->native_id, PENDING_NATIVE)) {
		int rc = recovery_pending(sl, j);
		if (rc < 0) {
			/* Slurm cannot be asked: track it, its end comes out unclear */
			track(sl, j->id);
			return 1;
		}
		if (rc == 0) {
			ferry__engine_job_native_id(sl->eng, j, "");
			return 0; /* sbatch never made it: hand it over again */
		}
	}
	track(sl, j->id);
	if (j->kill_requested)
		cancel_later(sl, j->native_id);
	return 1;
}

/* The cluster's partitions as "NAME|CPUS" lines, or FERRY__PENDING. */
static int partitions(struct slurm *sl, const char **text)
{
	static char *const argv[] = {"sinfo", "-h", "-o", "%R|%c", NULL};

	return ferry__listing_get(sl->eng, &sl->parts, argv, text);
}

static int slurm_open(struct ferry_engine *eng, void **self, char *err, size_t errlen)
{
	struct slurm *sl = calloc(1, sizeof(*sl));

	ferry__run_prepare();
	if (!sl) {
		snprintf(err, errlen, "out of memory");
		return FERRY_ENOMEM;
	}
	sl->eng = eng;
	sl->wk = ferry__engine_worker(eng);
	sl->accounting = -1;
	read_config(sl);
	*self = sl;
	return 0;
}

static void slurm_close(void *self)
{
	struct slurm *sl = self;

	ferry__track_release(&sl->t);
	ferry__listing_release(&sl->parts);
	free(sl->jobcomp);
	free(sl->recovery);
	free(sl);
}

static void slurm_refresh(void *self, struct job *j)
{
	struct slurm *sl = self;

	ferry__drms_refresh(sl->eng, j);
}

const struct ferry_backend ferry__backend_slurm = {
    .name = "slurm",
    .flags = FERRY_BE_DRMS,
    .poll_interval = POLL_INTERVAL_S,
    .open = slurm_open,
    .close = slurm_close,
    .check = slurm_check,
    .control = slurm_control,
    .adopt = slurm_adopt,
    .poll = slurm_poll,
    .hand = slurm_hand,
    .refresh = slurm_refresh,
};
