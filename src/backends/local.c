/*
 * local.c - the local backend: jobs run on this machine, started and
 * watched by the job runner (runner.c), one process per engine that
 * outlives it. This is the engine's side: it starts or finds the runner,
 * sends it the jobs and controls, and turns its messages and the jobs'
 * result files into job ends. The engine itself never forks per job.
 */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "engine.h"
#include "runner.h"
#include "util.h"

#define LIST_TIMEOUT_MS 10000

/* ---- the engine side ---- */

/* The backend's state (backend.h: what open returns). */
struct local {
	struct ferry_engine *eng;
	struct chan ch;
	int64_t *ids; /* jobs started on the current runner */
	size_t nids, capids;
	json_t *list; /* the runner's jobs when this engine started */
	long ncpu;    /* asked once: sysconf reads /sys at each call, and slots runs each tick */
};

static char *dir_of(struct ferry_engine *eng, int64_t id)
{
	return ferry__asprintf("%s/jobs/%lld", ferry__engine_state_dir(eng), (long long)id);
}

static double kv_num(const char *text, const char *key)
{
	size_t kl = strlen(key);

	for (const char *p = text; p && *p; p = strchr(p, '\n'), p = p ? p + 1 : NULL)
		if (!strncmp(p, key, kl) && p[kl] == '=')
			return strtod(p + kl + 1, NULL);
	return 0;
}

/* Turns a job's result file into a job_result. 0, or -1 if absent. */
static int read_result(const char *dir, struct job_result *r)
{
	char path[4096], *text = NULL;
	int spawn_errno;

	snprintf(path, sizeof(path), "%s/result", dir);
	if (ferry__read_file(path, 16384, &text, NULL) < 0)
		return -1;
	memset(r, 0, sizeof(*r));
	r->exit_value = (int)kv_num(text, "code");
	r->signal = (int)kv_num(text, "signal");
	r->cpu_user = kv_num(text, "user");
	r->cpu_sys = kv_num(text, "sys");
	r->max_rss_kb = (int64_t)kv_num(text, "maxrss");
	r->started_at = kv_num(text, "start");
	r->ended_at = kv_num(text, "end");
	r->wall = r->ended_at > r->started_at ? r->ended_at - r->started_at : 0;
	spawn_errno = (int)kv_num(text, "spawn_errno");
	if (spawn_errno) {
		const char *c = strstr(text, "\ncommand=");
		int cl = c ? (int)strcspn(c + 9, "\n") : 0;
		r->exit_status = FERRY_ABORTED;
		r->cpu_user = r->cpu_sys = r->wall = -1;
		r->max_rss_kb = -1;
		snprintf(r->message, sizeof(r->message), "cannot execute '%.*s': %s", cl,
			 c ? c + 9 : "", strerror(spawn_errno));
	} else if (kv_num(text, "exited") != 0) {
		r->exit_status = FERRY_FINISHED_REGULARLY;
	} else if (r->signal) {
		r->exit_status = FERRY_FINISHED_SIGNAL;
	} else {
		r->exit_status = FERRY_FINISHED_UNCLEAR_CONDITION;
	}
	if (kv_num(text, "walltime") != 0)
		snprintf(r->message, sizeof(r->message), "walltime limit exceeded: killed");
	else if (kv_num(text, "killed") != 0)
		snprintf(r->message, sizeof(r->message), "killed by user");
	free(text);
	return 0;
}

static void unclear(struct job_result *r, const char *why)
{
	memset(r, 0, sizeof(*r));
	r->exit_status = FERRY_FINISHED_UNCLEAR_CONDITION;
	r->cpu_user = r->cpu_sys = r->wall = -1;
	r->max_rss_kb = -1;
	snprintf(r->message, sizeof(r->message), "%s", why);
}

static void track(struct local *l, int64_t id)
{
	if (l->nids == l->capids) {
		size_t ncap = l->capids ? 2 * l->capids : 64;
		int64_t *n = realloc(l->ids, ncap * sizeof(*n));
		if (!n)
			return; /* untracked: it is still reported by its end message */
		l->ids = n;
		l->capids = ncap;
	}
	l->ids[l->nids++] = id;
}

static void untrack(struct local *l, int64_t id)
{
	for (size_t i = 0; i < l->nids; i++) {
		if (l->ids[i] == id) {
			l->ids[i] = l->ids[--l->nids];
			return;
		}
	}
}

/* Reports the end of a job from its result file. */
static void collect(struct local *l, struct job *j, const char *why_missing)
{
	struct ferry_engine *eng = l->eng;
	struct job_result r;
	char *dir = dir_of(l->eng, j->id);

	untrack(l, j->id);
	if (!dir || read_result(dir, &r) < 0)
		unclear(&r, why_missing);
	free(dir);
	ferry__engine_job_ended(eng, j, &r);
}

static void on_runner(struct ferry_engine *eng, int fd, void *arg);

/* The runner is gone: its jobs end with what their result files say. */
static void runner_lost(struct local *l)
{
	struct ferry_engine *eng = l->eng;

	ferry__loop_unwatch(ferry__engine_loop(l->eng), l->ch.fd);
	ferry__chan_close(&l->ch);
	while (l->nids) {
		struct job *j = ferry__engine_job(eng, l->ids[l->nids - 1]);
		if (j)
			collect(l, j, "the job's runner died before recording its result");
		else
			l->nids--;
	}
}

static void on_runner(struct ferry_engine *eng, int fd, void *arg)
{
	struct local *l = arg;
	json_t *m;
	int bad, eof = ferry__chan_fill(&l->ch) < 0;

	while ((m = ferry__chan_next(&l->ch, &bad))) {
		const char *op = json_string_value(json_object_get(m, "op"));
		struct job *j =
		    ferry__engine_job(eng, json_integer_value(json_object_get(m, "id")));
		if (j && op && !strcmp(op, "ended")) {
			collect(l, j, "the job ended without a result file");
		} else if (j && op && !strcmp(op, "refused")) {
			struct job_result res;
			const char *msg = json_string_value(json_object_get(m, "message"));
			unclear(&res, msg ? msg : "the job runner refused the job");
			res.exit_status = FERRY_ABORTED;
			untrack(l, j->id);
			ferry__engine_job_ended(eng, j, &res);
		} else if (j && op && !strcmp(op, "started")) {
			char pid[32];
			snprintf(pid, sizeof(pid), "%d",
				 (int)json_integer_value(json_object_get(m, "pid")));
			ferry__engine_job_native_id(eng, j, pid);
		}
		json_decref(m);
	}
	if (eof || bad)
		runner_lost(l);
}

static int connect_runner(const char *path)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	int fd;

	if (strlen(path) >= sizeof(sa.sun_path))
		return -1;
	strcpy(sa.sun_path, path);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd >= 0 && connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		close(fd);
		fd = -1;
	}
	return fd;
}

/* Starts a runner; its socket listens before the fork, so no race. */
static int spawn_runner(struct ferry_engine *eng, const char *path)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	char *log = ferry__asprintf("%s/runner.log", ferry__engine_state_dir(eng));
	int lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	pid_t pid;

	if (lfd < 0 || !log || strlen(path) >= sizeof(sa.sun_path))
		goto fail;
	strcpy(sa.sun_path, path);
	unlink(path); /* a dead runner's: the engine's lock makes us the only starter */
	if (bind(lfd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || chmod(path, 0600) < 0 ||
	    listen(lfd, 8) < 0)
		goto fail;
	pid = fork();
	if (pid < 0)
		goto fail;
	if (pid == 0)
		ferry__runner_main(lfd, log);
	close(lfd);
	free(log);
	return 0;
fail:
	if (lfd >= 0)
		close(lfd);
	free(log);
	return -1;
}

/* Connects to the runner of this state directory, starting one if needed. */
static int ensure_runner(struct local *l, char *err, size_t errlen)
{
	struct ferry_engine *eng = l->eng;
	char *path;

	if (l->ch.fd >= 0)
		return 0;
	path = ferry__asprintf("%s/runner.sock", ferry__engine_state_dir(eng));
	if (!path) {
		snprintf(err, errlen, "out of memory");
		return FERRY_EAGAIN;
	}
	l->ch.fd = connect_runner(path);
	if (l->ch.fd < 0 && spawn_runner(eng, path) == 0)
		l->ch.fd = connect_runner(path);
	if (l->ch.fd < 0 ||
	    ferry__loop_watch(ferry__engine_loop(eng), l->ch.fd, on_runner, l) < 0) {
		snprintf(err, errlen, "cannot reach the job runner on '%s': %s", path,
			 strerror(errno));
		free(path);
		ferry__chan_close(&l->ch);
		return FERRY_EAGAIN;
	}
	free(path);
	return 0;
}

/* Sends one message to the runner, waiting for room if need be. */
static int runner_call(struct local *l, json_t *m)
{
	int rc = ferry__chan_queue(&l->ch, m);

	json_decref(m);
	while (!rc && l->ch.outlen) {
		struct pollfd p = {l->ch.fd, POLLOUT, 0};
		if (ferry__chan_flush(&l->ch) < 0 || (l->ch.outlen && poll(&p, 1, 1000) <= 0))
			rc = -1;
	}
	if (rc)
		runner_lost(l);
	return rc;
}

static int local_start(void *self, struct job *j, char *err, size_t errlen)
{
	struct local *l = self;
	char *dir;
	int rc = ensure_runner(l, err, errlen);

	if (rc)
		return rc;
	dir = dir_of(l->eng, j->id);
	if (!dir) {
		snprintf(err, errlen, "out of memory");
		return FERRY_EAGAIN;
	}
	rc = runner_call(l, json_pack("{s:s,s:I,s:s,s:O}", "op", "start", "id", (json_int_t)j->id,
				      "dir", dir, "spec", j->spec));
	free(dir);
	if (rc) {
		snprintf(err, errlen, "the job runner went away");
		return FERRY_EAGAIN;
	}
	track(l, j->id);
	return 0;
}

static int local_control(void *self, struct job *j, enum backend_ctl ctl, struct ferry_ctl *token,
			 char *err, size_t errlen)
{
	struct local *l = self;
	const char *action = ctl == CTL_SUSPEND	 ? "suspend"
			     : ctl == CTL_RESUME ? "resume"
						 : "terminate";

	if (l->ch.fd < 0 || runner_call(l, json_pack("{s:s,s:I,s:s}", "op", "signal", "id",
						     (json_int_t)j->id, "action", action))) {
		snprintf(err, errlen, "the job runner is gone");
		return FERRY_ESTATE;
	}
	return 0;
}

/* The runner's current jobs, asked once when an engine starts. */
static json_t *runner_jobs(struct local *l)
{
	double until = ferry__mono() + LIST_TIMEOUT_MS / 1000.0;
	char err[256];
	json_t *m;
	int bad;

	if (l->list)
		return l->list;
	if (ensure_runner(l, err, sizeof(err)) || runner_call(l, json_pack("{s:s}", "op", "list")))
		return NULL;
	while (ferry__mono() < until) {
		struct pollfd p = {l->ch.fd, POLLIN, 0};
		if (poll(&p, 1, 200) < 0 || ferry__chan_fill(&l->ch) < 0)
			break;
		/* "ended" messages before the list are redundant: results are in files */
		while ((m = ferry__chan_next(&l->ch, &bad))) {
			if (!strcmp(json_string_value(json_object_get(m, "op")) ?: "", "list"))
				return l->list = m;
			json_decref(m);
		}
		if (bad)
			break;
	}
	runner_lost(l);
	return NULL;
}

/*
 * After an engine restart: a claimed job is with the runner (its list
 * says so), or ended (its result file says how), or lost with a runner
 * that died. An unclaimed job never started.
 */
static int local_adopt(void *self, struct job *j)
{
	struct local *l = self;
	struct ferry_engine *eng = l->eng;
	char *dir = dir_of(eng, j->id), path[4096];
	json_t *list, *ids, *e;
	struct stat st;
	size_t i;

	if (!dir)
		return 0;
	snprintf(path, sizeof(path), "%s/claim", dir);
	free(dir);
	if (stat(path, &st) < 0)
		return 0;
	ferry__engine_job_adopted(eng, j);
	list = runner_jobs(l);
	ids = json_object_get(list, "ids");
	json_array_foreach(ids, i, e)
	{
		if (json_integer_value(e) == j->id) {
			char pid[32];
			snprintf(pid, sizeof(pid), "%d",
				 (int)json_integer_value(
				     json_array_get(json_object_get(list, "pids"), i)));
			ferry__engine_job_native_id(eng, j, pid);
			track(l, j->id);
			return 1;
		}
	}
	collect(l, j, "the runner that started the job died before recording its result");
	return 1;
}

static int local_check(void *self, json_t *spec, char *err, size_t errlen)
{
	if (json_is_string(json_object_get(spec, "queue"))) {
		snprintf(err, errlen, "the local backend has no queues (queue '%s')",
			 json_string_value(json_object_get(spec, "queue")));
		return FERRY_EUNSUPPORTED;
	}
	if (json_is_string(json_object_get(spec, "native_specification"))) {
		snprintf(err, errlen, "the local backend takes no native specification ('%s')",
			 json_string_value(json_object_get(spec, "native_specification")));
		return FERRY_EUNSUPPORTED;
	}
	return 0;
}

static int local_slots(void *self)
{
	struct local *l = self;
	int slots = ferry__engine_cfg(l->eng)->slots;

	if (slots > 0)
		return slots;
	return l->ncpu > 0 ? (int)l->ncpu : 1;
}

static int local_open(struct ferry_engine *eng, void **self, char *err, size_t errlen)
{
	struct local *l = calloc(1, sizeof(*l));

	if (!l) {
		snprintf(err, errlen, "out of memory");
		return FERRY_ENOMEM;
	}
	l->eng = eng;
	l->ch.fd = -1;
	l->ncpu = sysconf(_SC_NPROCESSORS_ONLN);
	*self = l;
	return 0;
}

static void local_close(void *self)
{
	struct local *l = self;

	if (l->ch.fd >= 0)
		ferry__loop_unwatch(ferry__engine_loop(l->eng), l->ch.fd);
	ferry__chan_free(&l->ch);
	json_decref(l->list);
	free(l->ids);
	free(l);
}

const struct ferry_backend ferry__backend_local = {
    .name = "local",
    .open = local_open,
    .close = local_close,
    .check = local_check,
    .start = local_start,
    .control = local_control,
    .adopt = local_adopt,
    .slots = local_slots,
};
