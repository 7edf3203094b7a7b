/*
 * jobprocs.c - finds every process of a local job, so that a kill, a
 * walltime and the job's end reach what left its process group too
 * (`setsid cmd &`, a shell's `set -m`, a double-forking daemon).
 *
 * Where the runner may create a cgroup (v2) below its own, each job gets
 * one, which its process joins before anything of the job runs (the
 * child writes cgroup.procs, runner.c): nothing the job starts can leave
 * it, and cgroup.kill ends all of it, as Slurm's proctrack/cgroup does.
 * Elsewhere (no cgroup2 mounted, or a cgroup that is not delegated to the
 * user, e.g. a login session's scope) the runner reads /proc: a job's
 * processes are those in its session or process group, their
 * descendants, and the orphans the runner inherits as child subreaper
 * whose environment carries the job's FERRY_JOB_ID. An orphan that
 * cleared its environment and left the session escapes that way.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "jobprocs.h"
#include "util.h"

#define KILL_ROUNDS 20 /* /proc scans of a SIGKILL: a forking job needs several */

/* ---- cgroup (v2) ---- */

/* The value of the "0::" line of /proc/self/cgroup: our cgroup v2 path. */
static char *own_cgroup_path(void)
{
	char *text = NULL, *p, *r = NULL;

	if (ferry__read_file("/proc/self/cgroup", 65536, &text, NULL) < 0)
		return NULL;
	for (p = text; p && *p; p = strchr(p, '\n'), p = p ? p + 1 : NULL) {
		if (!strncmp(p, "0::", 3)) {
			r = strndup(p + 3, strcspn(p + 3, "\n"));
			break;
		}
	}
	free(text);
	return r;
}

/*
 * Where cgroup path cg is in the file system: below a cgroup2 mount whose
 * root is a prefix of it (mountinfo fields 4 and 5, fstype after " - ").
 */
static char *cgroup_dir(const char *cg)
{
	char *text = NULL, *line, *save = NULL, *r = NULL;

	if (ferry__read_file("/proc/self/mountinfo", 1 << 22, &text, NULL) < 0)
		return NULL;
	for (line = strtok_r(text, "\n", &save); line && !r; line = strtok_r(NULL, "\n", &save)) {
		char *f[5], *dash = strstr(line, " - "), *s2 = NULL, *w = line;
		size_t rl;
		int i;

		if (!dash || strncmp(dash + 3, "cgroup2 ", 8))
			continue;
		*dash = '\0';
		for (i = 0; i < 5 && (f[i] = strtok_r(w, " ", &s2)); i++)
			w = NULL;
		/* escaped names (\040...) are not worth decoding here */
		if (i < 5 || strchr(f[3], '\\') || strchr(f[4], '\\'))
			continue;
		rl = strcmp(f[3], "/") ? strlen(f[3]) : 0;
		if (strncmp(cg, f[3], rl) || (cg[rl] != '/' && cg[rl] != '\0'))
			continue;
		r = ferry__asprintf("%s%s", f[4], cg + rl);
	}
	free(text);
	if (r && strlen(r) > 1 && r[strlen(r) - 1] == '/')
		r[strlen(r) - 1] = '\0';
	return r;
}

/*
 * Removes the empty job cgroups of runners that died (SIGKILLed runners
 * leave theirs); one still holding processes stays, as they do.
 */
static void sweep_stale(const char *root)
{
	DIR *d = opendir(root);
	struct dirent *e;
	char *path;
	int pid;

	while (d && (e = readdir(d))) {
		if (sscanf(e->d_name, "ferry.%d.", &pid) != 1 || pid <= 0 ||
		    (kill(pid, 0) == 0 || errno != ESRCH))
			continue;
		if ((path = ferry__asprintf("%s/%s", root, e->d_name)))
			rmdir(path);
		free(path);
	}
	if (d)
		closedir(d);
}

void ferry__jobprocs_init(struct jobprocs_base *b, char *why, size_t whylen)
{
	char *cg = own_cgroup_path(), *dir = cg && cg[0] == '/' ? cgroup_dir(cg) : NULL;
	char *probe = dir ? ferry__asprintf("%s/ferry.%d.probe", dir, (int)getpid()) : NULL;

	b->self = getpid();
	b->cgroot = NULL;
	if (!cg || !dir || !probe) {
		snprintf(why, whylen, "/proc (%s)",
			 !cg ? "not in a cgroup v2 hierarchy" : "cgroup2 is not mounted");
	} else if (mkdir(probe, 0755) < 0 && errno != EEXIST) {
		snprintf(why, whylen, "/proc (cannot create a cgroup in '%s': %s)", dir,
			 strerror(errno));
	} else {
		rmdir(probe);
		sweep_stale(dir);
		b->cgroot = dir;
		dir = NULL;
		snprintf(why, whylen, "a cgroup (v2) per job in '%s'", b->cgroot);
	}
	free(probe);
	free(dir);
	free(cg);
}

int ferry__jobprocs_new(struct jobprocs_base *b, int64_t id, struct jobprocs *p)
{
	int rc;

	p->id = id;
	p->cgfd = -1;
	p->cgpath = NULL;
	if (!b->cgroot)
		return 0;
	p->cgpath = ferry__asprintf("%s/ferry.%d.%lld", b->cgroot, (int)b->self, (long long)id);
	if (!p->cgpath)
		return -ENOMEM;
	rc = mkdir(p->cgpath, 0755);
	if (rc < 0 && errno == EEXIST && rmdir(p->cgpath) == 0) /* a dead namesake's, empty */
		rc = mkdir(p->cgpath, 0755);
	if (rc == 0)
		p->cgfd = open(p->cgpath, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (p->cgfd >= 0)
		return 0;
	rc = -errno;
	ferry__jobprocs_uncgroup(p);
	return rc;
}

void ferry__jobprocs_uncgroup(struct jobprocs *p)
{
	if (p->cgfd >= 0)
		close(p->cgfd);
	if (p->cgpath)
		rmdir(p->cgpath);
	free(p->cgpath);
	p->cgfd = -1;
	p->cgpath = NULL;
}

/* Signals each pid cgroup.procs lists; the number of them. */
static int cgroup_signal(const struct jobprocs_base *b, const struct jobprocs *p, int sig)
{
	char *path = ferry__asprintf("%s/cgroup.procs", p->cgpath), *text = NULL, *s, *end;
	int n = 0;

	if (!path || ferry__read_file(path, 1 << 24, &text, NULL) < 0) {
		free(path);
		return 0;
	}
	for (s = text;; s = end) {
		long pid = strtol(s, &end, 10);
		if (end == s)
			break;
		if (pid > 1 && pid != b->self && kill((pid_t)pid, sig) == 0)
			n++;
	}
	free(text);
	free(path);
	return n;
}

/* ---- the process tree (/proc) ---- */

struct pinfo {
	pid_t pid, ppid, pgrp, sid;
	int mine;
};

static int by_pid(const void *a, const void *b)
{
	pid_t x = ((const struct pinfo *)a)->pid, y = ((const struct pinfo *)b)->pid;

	return (x > y) - (x < y);
}

/* pid's parent, group and session; 0, or -1 when gone or a zombie. */
static int read_stat(pid_t pid, struct pinfo *pi)
{
	char path[64], buf[1024], *p, state;
	ssize_t n;
	int fd;

	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return -1;
	buf[n] = '\0';
	p = strrchr(buf, ')'); /* the name may hold anything */
	if (!p || sscanf(p + 1, " %c %d %d %d", &state, &pi->ppid, &pi->pgrp, &pi->sid) != 4)
		return -1;
	pi->pid = pid;
	pi->mine = 0;
	return state == 'Z' || state == 'X' ? -1 : 0;
}

/* Every live process; sorted by pid. 0, or -1. */
static int scan(struct pinfo **out, size_t *n)
{
	DIR *d = opendir("/proc");
	struct pinfo *v = NULL, *nv;
	size_t cap = 0;
	struct dirent *e;

	*n = 0;
	if (!d)
		return -1;
	while ((e = readdir(d))) {
		long pid = strtol(e->d_name, NULL, 10);
		if (pid <= 0)
			continue;
		if (*n == cap) {
			cap = cap ? 2 * cap : 512;
			if (!(nv = realloc(v, cap * sizeof(*v)))) {
				closedir(d);
				free(v);
				return -1;
			}
			v = nv;
		}
		if (read_stat((pid_t)pid, &v[*n]) == 0)
			(*n)++;
	}
	closedir(d);
	qsort(v, *n, sizeof(*v), by_pid);
	*out = v;
	return 0;
}

/* Whether pid's environment (as it was exec'd) names job id. */
static int marked(pid_t pid, int64_t id)
{
	char path[64], want[64], *text = NULL;
	size_t len, wl;
	int r = 0;

	snprintf(path, sizeof(path), "/proc/%d/environ", (int)pid);
	wl = (size_t)snprintf(want, sizeof(want), "%c%s=%lld", '\0', FERRY_JOB_ID_ENV,
			      (long long)id) +
	     1; /* with its terminating NUL */
	if (ferry__read_file(path, 1 << 23, &text, &len) < 0)
		return 0;
	r = (len >= wl - 1 && !memcmp(text, want + 1, wl - 1)) ||
	    memmem(text, len + 1, want, wl) != NULL;
	free(text);
	return r;
}

/* Marks the job's processes in v (sorted by pid); how many there are. */
static size_t mark_job(const struct jobprocs_base *b, const struct jobprocs *p, struct pinfo *v,
		       size_t n)
{
	size_t count = 0, i;
	int more = 1;

	for (i = 0; i < n; i++) {
		struct pinfo *q = &v[i];
		if (q->pid <= 1 || q->pid == b->self)
			continue;
		q->mine = q->pid == p->pid || q->pgrp == p->pid || q->sid == p->pid ||
			  (q->ppid == b->self && marked(q->pid, p->id));
		count += (size_t)q->mine;
	}
	while (more) { /* and their descendants, however deep */
		more = 0;
		for (i = 0; i < n; i++) {
			struct pinfo key = {.pid = v[i].ppid}, *parent;
			if (v[i].mine || v[i].pid == b->self || v[i].ppid <= 1)
				continue;
			parent = bsearch(&key, v, n, sizeof(*v), by_pid);
			if (parent && parent->mine) {
				v[i].mine = 1;
				count++;
				more = 1;
			}
		}
	}
	return count;
}

/* Signals the job's processes found in one scan; how many there were. */
static size_t tree_signal(const struct jobprocs_base *b, const struct jobprocs *p, int sig)
{
	struct pinfo *v = NULL;
	size_t n, count;

	if (scan(&v, &n) < 0)
		return 0;
	count = mark_job(b, p, v, n);
	for (size_t i = 0; i < n; i++)
		if (v[i].mine)
			kill(v[i].pid, sig);
	free(v);
	return count;
}

/* ---- both ---- */

void ferry__jobprocs_signal(const struct jobprocs_base *b, const struct jobprocs *p, int sig)
{
	if (p->pid <= 1) /* kill(-0) would be the runner's own group */
		return;
	/* the tree before the group: a parent killed first orphans its children */
	if (p->cgfd >= 0)
		cgroup_signal(b, p, sig);
	else
		tree_signal(b, p, sig);
	kill(-p->pid, sig);
}

void ferry__jobprocs_kill_all(const struct jobprocs_base *b, const struct jobprocs *p)
{
	int fd, round;

	if (p->pid <= 1)
		return;
	if (p->cgfd < 0) {
		for (round = 0; round < KILL_ROUNDS && tree_signal(b, p, SIGKILL); round++)
			;
		return;
	}
	fd = openat(p->cgfd, "cgroup.kill", O_WRONLY | O_CLOEXEC);
	if (fd < 0 || write(fd, "1", 1) != 1) /* before Linux 5.14: one by one */
		for (round = 0; round < KILL_ROUNDS && cgroup_signal(b, p, SIGKILL); round++)
			;
	if (fd >= 0)
		close(fd);
}

int ferry__jobprocs_gone(struct jobprocs *p)
{
	if (p->cgpath && rmdir(p->cgpath) < 0 && errno == EBUSY)
		return 0;
	if (p->cgfd >= 0)
		close(p->cgfd);
	p->cgfd = -1;
	free(p->cgpath);
	p->cgpath = NULL;
	return 1;
}

void ferry__jobprocs_free(struct jobprocs *p)
{
	if (p->cgfd >= 0)
		close(p->cgfd);
	p->cgfd = -1;
	free(p->cgpath);
	p->cgpath = NULL;
}
