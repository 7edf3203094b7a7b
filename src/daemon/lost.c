/*
 * lost.c - what an engine finds of its past when it starts: its instance
 * token, and the jobs the database forgot.
 *
 * A job's directory is made only after the row that gave the job its id
 * was committed (a job never starts in the transaction that inserted it),
 * so a directory beyond the highest id the database ever handed out means
 * the database lost what it had acknowledged: its write-ahead log was cut
 * short or removed, or an older copy of it was put back. Left alone, the
 * next jobs would get those ids again, find their directories claimed and
 * abort, and show the old jobs' output as theirs. Instead the engine says
 * so (ferryd.log, and the hello of every client for a week), records
 * each such job as failed, so that its id, its output and its directory
 * stay its own until it is disposed of, and the id sequence moves past it.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "engine.h"
#include "jbytes.h"
#include "util.h"

/* How long the lost jobs are kept, and the warning given, in hours of disposal time. */
#define LOST_HOURS 168

struct ids {
	int64_t *v;
	size_t n, cap;
};

static int by_id(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;

	return x < y ? -1 : x > y;
}

/* The ids above floor that have an entry in jobs_dir, ascending. 0 or -errno. */
static int entries_above(const char *jobs_dir, int64_t floor, struct ids *f)
{
	DIR *d = opendir(jobs_dir);
	struct dirent *de;
	int rc = 0;

	if (!d)
		return -errno;
	while (!rc && (de = readdir(d))) {
		char *end;
		long long id;

		if (de->d_name[0] < '1' || de->d_name[0] > '9')
			continue;
		errno = 0;
		id = strtoll(de->d_name, &end, 10);
		if (*end || errno || id <= floor)
			continue;
		if (f->n == f->cap) {
			size_t ncap = f->cap ? 2 * f->cap : 64;
			int64_t *nv = realloc(f->v, ncap * sizeof(*nv));
			if (!nv) {
				rc = -ENOMEM;
				break;
			}
			f->v = nv;
			f->cap = ncap;
		}
		f->v[f->n++] = id;
	}
	closedir(d);
	if (f->n)
		qsort(f->v, f->n, sizeof(*f->v), by_id);
	return rc;
}

/* Records each lost job and the warning. 0 or an error. */
static int record(struct ferry_engine *eng, int64_t max, const struct ids *f)
{
	struct ferry_db *db = ferry__engine_db(eng);
	double now = ferry__now(), until = now + LOST_HOURS * ferry__engine_hour(eng);
	time_t t = (time_t)now;
	char when[64] = "", at[32];
	struct tm tm;
	char *msg;
	int rc = 0;

	for (size_t i = 0; !rc && i < f->n; i++) {
		msg = ferry__asprintf("the engine's database lost this job (its log was cut short "
				      "or removed, or an older copy of it was put back); what the "
				      "job left is in '%s/%lld'",
				      ferry__engine_jobs_dir(eng), (long long)f->v[i]);
		rc = msg ? ferry__db_insert_lost(db, f->v[i], now, until, msg) : FERRY_ENOMEM;
		free(msg);
	}
	if (localtime_r(&t, &tm))
		strftime(when, sizeof(when), "%Y-%m-%d %H:%M:%S %Z", &tm);
	msg = ferry__asprintf("on %s the engine found that its database had lost jobs %lld to "
			      "%lld or more (its log was cut short or removed, or an older copy "
			      "of it was put back): %zu of them left a directory and are "
			      "recorded as failed, and new jobs get ids above %lld",
			      when, (long long)max + 1, (long long)f->v[f->n - 1], f->n,
			      (long long)f->v[f->n - 1]);
	snprintf(at, sizeof(at), "%.3f", until); /* whole seconds would cut a test-length week */
	if (!rc && !msg)
		rc = FERRY_ENOMEM;
	if (!rc)
		rc = ferry__db_meta_set(db, "lost_jobs", msg);
	if (!rc)
		rc = ferry__db_meta_set(db, "lost_jobs_until", at);
	ferry__db_need_durable(db); /* the ids they hold must not be handed out again */
	free(msg);
	return rc;
}

int ferry__engine_find_lost(struct ferry_engine *eng, char *err, size_t errlen)
{
	const char *jobs_dir = ferry__engine_jobs_dir(eng);
	struct ids f = {0};
	int64_t max = 0;
	int rc = ferry__db_max_job_id(ferry__engine_db(eng), &max);

	if (rc) {
		snprintf(err, errlen, "cannot read the highest job id from the database");
		return rc;
	}
	rc = entries_above(jobs_dir, max, &f);
	if (rc < 0) {
		snprintf(err, errlen, "cannot read the job directories in '%s': %s", jobs_dir,
			 strerror(-rc));
		rc = FERRY_EIO;
	} else if (f.n && (rc = record(eng, max, &f))) {
		snprintf(err, errlen, "cannot record the jobs the database lost");
	}
	free(f.v);
	return rc;
}

/* The mark of a configured job_dir: the instance and resource of its engine. */
#define MARK ".ferry-engine"

/*
 * Whether dir holds a job directory. 0 or 1, or -errno (0 for a dir that
 * is gone: there is nothing in it to lose).
 */
static int holds_jobs(const char *dir)
{
	struct ids f = {0};
	int rc = entries_above(dir, 0, &f);

	free(f.v);
	return rc == -ENOENT ? 0 : rc < 0 ? rc : f.n > 0;
}

/* Whether a and b name one directory: one path, or one inode (a symlink, a bind mount). */
static int same_dir(const char *a, const char *b)
{
	struct stat x, y;

	return !strcmp(a, b) || (stat(a, &x) == 0 && stat(b, &y) == 0 && x.st_dev == y.st_dev &&
				 x.st_ino == y.st_ino);
}

/* Refuses a job_dir changed while the old one, was, holds job directories. */
static int check_moved(const char *was, const char *dir, char *err, size_t errlen)
{
	int rc = holds_jobs(was);

	if (rc < 0) {
		snprintf(err, errlen, "cannot read the job directories in '%s': %s", was,
			 strerror(-rc));
		return FERRY_EIO;
	}
	if (rc > 0)
		/* find, not a glob: a week of a million jobs' directories is too long an argv */
		snprintf(err, errlen,
			 "this engine's job directories are in '%s', but its job_dir is now '%s': "
			 "with the engine stopped and no job running, move them there (find '%s' "
			 "-mindepth 1 -maxdepth 1 ! -name " MARK " -exec mv -t '%s' -- {} +) or "
			 "set job_dir back",
			 was, dir, was, dir);
	return rc > 0 ? FERRY_EPERM : 0;
}

/* Refuses a job directory another engine marked as its own. 0 or FERRY_EPERM/EIO. */
static int check_mark(struct ferry_engine *eng, const char *dir, const char *mark, int *marked,
		      char *err, size_t errlen)
{
	const char *me = ferry__engine_instance(eng);
	char *text = NULL;
	int rc = ferry__read_file(mark, 4096, &text, NULL);

	*marked = rc == 0;
	if (rc == -ENOENT)
		return 0;
	if (rc < 0) {
		snprintf(err, errlen, "cannot read '%s': %s", mark, strerror(-rc));
		return FERRY_EIO;
	}
	rc = strncmp(text, me, strlen(me)) || text[strlen(me)] != ' ' ? FERRY_EPERM : 0;
	if (rc)
		snprintf(err, errlen,
			 "the job directory '%s' belongs to another engine (its mark '%s' says "
			 "'%.*s'): give each resource a job_dir of its own, or remove the mark if "
			 "that engine's database is gone for good",
			 dir, mark, (int)strcspn(text, "\n"), text);
	free(text);
	return rc;
}

/*
 * An unmarked job_dir is taken only new or empty, or holding job
 * directories this engine may have made (ids up to its highest: moved
 * from its last job_dir): crash recovery would take any other numbered
 * entry for a lost job, and disposal remove it. 0, or an error.
 */
static int check_unmarked(struct ferry_engine *eng, const char *dir, char *err, size_t errlen)
{
	DIR *d = opendir(dir);
	struct dirent *de;
	int64_t max = 0;
	int rc = ferry__db_max_job_id(ferry__engine_db(eng), &max) ? FERRY_EIO : 0;

	if (!d) {
		snprintf(err, errlen, "cannot read '%s': %s", dir, strerror(errno));
		return FERRY_EIO;
	}
	while (!rc && (de = readdir(d))) {
		const char *n = de->d_name;
		char *end;
		long long id = strtoll(n, &end, 10);
		if (!strcmp(n, ".") || !strcmp(n, "..") ||
		    !strncmp(n, MARK ".tmp.", sizeof(MARK ".tmp.") - 1))
			continue;
		if (n[0] >= '1' && n[0] <= '9' && (!*end || !strcmp(end, ".old")) && id <= max)
			continue;
		snprintf(err, errlen,
			 "the job directory '%s' is not empty and has no ferry mark ('%s' is in "
			 "it): give job_dir a new or empty directory",
			 dir, n);
		rc = FERRY_EPERM;
	}
	closedir(d);
	return rc;
}

/*
 * Writes the mark, whole, where no mark is: link() of a complete file
 * fails if another engine's came first, where a rename would replace
 * it. 0, 1 when a mark appeared meanwhile, or an error.
 */
static int place_mark(struct ferry_engine *eng, const char *mark, char *err, size_t errlen)
{
	char *tmp = ferry__asprintf("%s.tmp.%ld", mark, (long)getpid()),
	     *text = ferry__asprintf("%s %s\n", ferry__engine_instance(eng),
				     ferry__engine_resource(eng));
	int fd = tmp ? open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0600) : -1;
	int e = !tmp || !text ? ENOMEM : fd < 0 ? errno : 0;

	if (!e)
		e = -ferry__write_all(fd, text, strlen(text));
	if (!e && fsync(fd) < 0)
		e = errno;
	if (fd >= 0 && close(fd) < 0 && !e)
		e = errno;
	if (!e && link(tmp, mark) < 0)
		e = errno;
	if (tmp)
		unlink(tmp);
	free(tmp);
	free(text);
	if (e && e != EEXIST)
		snprintf(err, errlen, "cannot write '%s': %s", mark, strerror(e));
	return e == EEXIST ? 1 : e ? FERRY_EIO : 0;
}

/*
 * The mark of a job_dir this engine marked before is gone: purged from
 * scratch, or its file system not mounted here now (an empty mount
 * point). With jobs out, whose directories it must hold, that is
 * refused rather than marked again: their ends and logs would be looked
 * for in an empty directory. 0, or an error.
 */
static int check_purged(struct ferry_engine *eng, const char *dir, const char *mark, char *err,
			size_t errlen)
{
	int out = 0, rc = ferry__db_any_out(ferry__engine_db(eng), &out), held;

	if (rc || !out)
		return rc;
	if ((held = holds_jobs(dir)) != 0)
		return held > 0 ? 0 : FERRY_EIO;
	snprintf(err, errlen,
		 "the job directory '%s' lost its mark '%s' and holds no job directory, while "
		 "jobs of this engine that started are not ended: is its file system mounted "
		 "here? If it was purged, give job_dir a new directory (their logs are gone)",
		 dir, mark);
	return FERRY_EPERM;
}

/* Makes a configured job_dir this engine's: its mark, or refused. */
static int claim_marked(struct ferry_engine *eng, const char *dir, int before, char *err,
			size_t errlen)
{
	char *mark = ferry__asprintf("%s/" MARK, dir);
	int marked = 0, rc = mark ? 1 : FERRY_ENOMEM;

	/* twice at most: an engine that marked it meanwhile is checked as such */
	for (int tries = 0; rc == 1 && tries < 2; tries++) {
		rc = check_mark(eng, dir, mark, &marked, err, errlen);
		if (!rc && !marked && before)
			rc = check_purged(eng, dir, mark, err, errlen);
		if (!rc && !marked && !(rc = check_unmarked(eng, dir, err, errlen)))
			rc = place_mark(eng, mark, err, errlen);
	}
	if (rc == 1)
		rc = check_mark(eng, dir, mark, &marked, err, errlen);
	free(mark);
	return rc;
}

int ferry__engine_claim_jobs_dir(struct ferry_engine *eng, char *err, size_t errlen)
{
	const char *dir = ferry__engine_jobs_dir(eng);
	struct ferry_db *db = ferry__engine_db(eng);
	char *was = NULL;
	int rc = ferry__db_meta_get(db, "jobs_dir", &was) ? FERRY_EIO : 0, same = 0,
	    recorded = !!was;

	/* no record: a database of before job_dir, whose jobs were in the state directory */
	if (!rc && !was && !(was = ferry__asprintf("%s/jobs", ferry__engine_state_dir(eng))))
		rc = FERRY_ENOMEM;
	if (!rc && !(same = same_dir(was, dir)))
		rc = check_moved(was, dir, err, errlen);
	/* the default one is private to the state directory, which the engine's lock guards */
	if (!rc && ferry__engine_cfg(eng)->job_dir)
		rc = claim_marked(eng, dir, recorded && same, err, errlen);
	if (!rc && strcmp(was, dir) && ferry__db_meta_set(db, "jobs_dir", dir))
		rc = FERRY_EIO;
	if (rc && !err[0])
		snprintf(err, errlen, "%s",
			 rc == FERRY_ENOMEM
			     ? "out of memory"
			     : "cannot read or record the job directory in the database");
	free(was);
	return rc;
}

json_t *ferry__engine_warnings(struct ferry_engine *eng)
{
	struct ferry_db *db = ferry__engine_db(eng);
	char *msg = NULL, *until = NULL;
	json_t *w = NULL;

	if (!ferry__db_meta_get(db, "lost_jobs", &msg) && msg &&
	    !ferry__db_meta_get(db, "lost_jobs_until", &until) && until &&
	    ferry__now() < atof(until))
		w = json_pack("[o]", ferry__json_bytes(msg));
	free(msg);
	free(until);
	return w;
}

int ferry__instance_load(struct ferry_db *db, char *out, size_t len, char *err, size_t errlen)
{
	char *v = NULL;

	if (len < 17 || ferry__db_meta_get(db, "instance", &v))
		goto fail;
	if (!v) {
		if (ferry__random_hex(out, 8) < 0)
			goto fail;
		return ferry__db_meta_set(db, "instance", out) ? -1 : 0;
	}
	snprintf(out, len, "%s", v);
	free(v);
	return 0;
fail:
	snprintf(err, errlen, "cannot make the engine's instance token");
	return -1;
}
