/* util.c - helpers shared by the library, the engine and the CLI. */
#include "util.h"

#include "ferry.h"
#include "proto.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <time.h>
#include <unistd.h>

double ferry__now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

double ferry__mono(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

char *ferry__asprintf(const char *fmt, ...)
{
	va_list ap;
	char *s;
	int n;

	va_start(ap, fmt);
	n = vasprintf(&s, fmt, ap);
	va_end(ap);
	return n < 0 ? NULL : s;
}

int ferry__fail(char *err, size_t errlen, int code, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
	return code;
}

int ferry__write_all(int fd, const void *buf, size_t len)
{
	const char *p = buf;

	while (len > 0) {
		ssize_t n = write(fd, p, len);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

/*
 * One extent call up front instead of the file system's delayed
 * allocation of every block as the writes come: on ext4 a quarter less CPU
 * for a GiB written and synced (docs/architecture.md).
 */
void ferry__preallocate(int fd, int64_t off, int64_t len)
{
	if (len > 0)
		fallocate(fd, FALLOC_FL_KEEP_SIZE, (off_t)off, (off_t)len);
}

int64_t ferry__fs_free(int fd, const char *path)
{
	struct statvfs sv;

	if ((fd >= 0 ? fstatvfs(fd, &sv) : statvfs(path, &sv)) < 0)
		return -1;
	return (int64_t)(geteuid() == 0 ? sv.f_bfree : sv.f_bavail) * (int64_t)sv.f_frsize;
}

int ferry__reserve(unsigned char **buf, size_t *cap, size_t need)
{
	size_t ncap = *buf && *cap ? *cap : 4096;
	unsigned char *nb;

	if (*buf && need <= *cap)
		return 0;
	while (ncap < need) {
		if (ncap > SIZE_MAX / 2)
			return -1;
		ncap *= 2;
	}
	if (!(nb = realloc(*buf, ncap)))
		return -1;
	*buf = nb;
	*cap = ncap;
	return 0;
}

int ferry__read_all(int fd, void *buf, size_t len)
{
	char *p = buf;

	while (len > 0) {
		ssize_t n = read(fd, p, len);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		if (n == 0)
			return -EPIPE;
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

int ferry__read_file(const char *path, size_t max, char **out, size_t *len)
{
	int fd, err = 0;
	char *buf = NULL;
	size_t cap = 4096, used = 0;

	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0)
		return -errno;
	for (;;) {
		ssize_t n;
		char *nb;

		if (used + 1 >= cap || !buf) {
			if (buf)
				cap *= 2;
			nb = realloc(buf, cap);
			if (!nb) {
				err = -ENOMEM;
				goto fail;
			}
			buf = nb;
		}
		n = read(fd, buf + used, cap - used - 1);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			err = -errno;
			goto fail;
		}
		if (n == 0)
			break;
		used += (size_t)n;
		if (used > max) {
			err = -EFBIG;
			goto fail;
		}
	}
	close(fd);
	buf[used] = '\0';
	*out = buf;
	if (len)
		*len = used;
	return 0;
fail:
	close(fd);
	free(buf);
	return err;
}

int ferry__write_file_atomic(const char *path, const void *data, size_t len, int durable)
{
	char *tmp = ferry__asprintf("%s.tmp.%ld", path, (long)getpid());
	int fd, err;

	if (!tmp)
		return -ENOMEM;
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0) {
		err = -errno;
		goto out;
	}
	err = ferry__write_all(fd, data, len);
	if (!err && durable && fsync(fd) < 0)
		err = -errno;
	if (close(fd) < 0 && !err)
		err = -errno;
	if (!err && rename(tmp, path) < 0)
		err = -errno;
	if (err)
		unlink(tmp);
out:
	free(tmp);
	return err;
}

int ferry__mkdir_p(const char *path, mode_t mode)
{
	char *p = strdup(path), *s;
	int err = 0;

	if (!p)
		return -ENOMEM;
	for (s = p + 1; *s; s++) {
		if (*s != '/')
			continue;
		*s = '\0';
		if (mkdir(p, mode) < 0 && errno != EEXIST) {
			err = -errno;
			goto out;
		}
		*s = '/';
	}
	if (mkdir(p, mode) < 0 && errno != EEXIST)
		err = -errno;
out:
	free(p);
	return err;
}

static int rm_rf_at(int dirfd, const char *name)
{
	int fd, err = 0;
	DIR *d;
	struct dirent *e;

	if (unlinkat(dirfd, name, 0) == 0 || errno == ENOENT)
		return 0;
	if (errno != EISDIR && errno != EPERM)
		return -errno;
	fd = openat(dirfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	d = fdopendir(fd);
	if (!d) {
		err = -errno;
		close(fd);
		return err;
	}
	while ((e = readdir(d))) {
		if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
			continue;
		if (!err)
			err = rm_rf_at(fd, e->d_name);
	}
	closedir(d);
	if (!err && unlinkat(dirfd, name, AT_REMOVEDIR) < 0 && errno != ENOENT)
		err = -errno;
	return err;
}

int ferry__rm_rf(const char *path)
{
	return rm_rf_at(AT_FDCWD, path);
}

static int strv_push(char ***v, size_t *n, char *s)
{
	char **nv = realloc(*v, (*n + 2) * sizeof(**v));

	if (!nv)
		return -ENOMEM;
	nv[(*n)++] = s;
	nv[*n] = NULL;
	*v = nv;
	return 0;
}

/* Ends the word in w (wl bytes) and appends it to v; 0 or -ENOMEM. */
static int push_word(char ***v, size_t *n, char *w, size_t *wl)
{
	char *dup;

	w[*wl] = '\0';
	if (!(dup = strdup(w)) || strv_push(v, n, dup) < 0) {
		free(dup);
		return -ENOMEM;
	}
	*wl = 0;
	return 0;
}

/*
 * Copies the character, escape or quoted run at *pp into w, leaving *pp
 * on its last byte; NULL, or why the line is bad.
 */
static const char *word_part(const char **pp, char *w, size_t *wl)
{
	const char *p = *pp, *q;

	switch (*p) {
	case '\\':
		if (!p[1])
			return "trailing backslash";
		w[(*wl)++] = *++p;
		break;
	case '\'':
		if (!(q = strchr(p + 1, '\'')))
			return "unterminated single quote";
		memcpy(w + *wl, p + 1, (size_t)(q - p - 1));
		*wl += (size_t)(q - p - 1);
		p = q;
		break;
	case '"':
		for (p++; *p && *p != '"'; p++) {
			if (*p == '\\' && p[1] &&
			    (p[1] == '"' || p[1] == '\\' || p[1] == '$' || p[1] == '`'))
				p++;
			w[(*wl)++] = *p;
		}
		if (!*p)
			return "unterminated double quote";
		break;
	default:
		w[(*wl)++] = *p;
	}
	*pp = p;
	return NULL;
}

int ferry__split_words(const char *line, char ***argv, const char **err)
{
	char **v = NULL, *w = malloc(strlen(line) + 1);
	size_t n = 0, wl = 0;
	int inword = 0, rc = -ENOMEM;

	*err = NULL;
	if (!w || strv_push(&v, &n, NULL) < 0) /* allocate the terminator */
		goto fail;
	n = 0;
	for (const char *p = line; *p; p++) {
		if (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r') {
			if (inword && push_word(&v, &n, w, &wl) < 0)
				goto fail;
			inword = 0;
			continue;
		}
		inword = 1;
		if ((*err = word_part(&p, w, &wl))) {
			rc = -EINVAL;
			goto fail;
		}
	}
	if (inword && push_word(&v, &n, w, &wl) < 0)
		goto fail;
	free(w);
	*argv = v;
	return 0;
fail:
	free(w);
	ferry__strv_free(v);
	return rc;
}

void ferry__strv_free(char **v)
{
	if (!v)
		return;
	for (char **p = v; *p; p++)
		free(*p);
	free(v);
}

size_t ferry__strv_len(char *const *v)
{
	size_t n = 0;

	while (v && v[n])
		n++;
	return n;
}

char **ferry__sh_argv(char *const argv[])
{
	size_t n = ferry__strv_len(argv);
	char **v = calloc(n + 2, sizeof(*v));

	if (!v)
		return NULL;
	v[0] = "/bin/sh";
	for (size_t i = 0; i < n; i++)
		v[i + 1] = argv[i]; /* v[1], the script, is set to the file found */
	return v;
}

/*
 * One candidate. On ENOEXEC the child writes shargv[1]: memory of its
 * parent's, which vfork suspends until the exec and which only this exec
 * reads (as glibc's own script fallback does on its stack).
 */
static void exec_file(const char *file, char *const argv[], char *const envp[], char **shargv)
{
	execve(file, argv, envp);
	if (errno == ENOEXEC && shargv) {
		shargv[1] = (char *)file;
		execve(shargv[0], shargv, envp);
	}
}

void ferry__exec_search(char *const argv[], char *const envp[], const char *path, char **shargv)
{
	const char *name = argv[0], *p = path;
	size_t nl = strlen(name);
	char buf[4096];
	int eacces = 0;

	if (!*name || strchr(name, '/')) {
		exec_file(name, argv, envp, shargv);
		return;
	}
	for (;;) {
		const char *colon = strchr(p, ':');
		size_t dl = colon ? (size_t)(colon - p) : strlen(p);
		if (dl + nl + 3 < sizeof(buf)) {
			memcpy(buf, dl ? p : ".", dl ? dl : 1); /* an empty entry: "." */
			dl = dl ? dl : 1;
			buf[dl] = '/';
			memcpy(buf + dl + 1, name, nl + 1);
			exec_file(buf, argv, envp, shargv);
			if (errno == EACCES)
				eacces = 1;
			else if (errno != ENOENT && errno != ENOTDIR && errno != ESTALE &&
				 errno != ENODEV && errno != ETIMEDOUT)
				return;
		}
		if (!colon)
			break;
		p = colon + 1;
	}
	errno = eacces ? EACCES : ENOENT;
}

static int env_name_ok(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (!(s[i] == '_' || (s[i] >= 'A' && s[i] <= 'Z') || (s[i] >= 'a' && s[i] <= 'z') ||
		      (i > 0 && s[i] >= '0' && s[i] <= '9')))
			return 0;
	return n > 0;
}

/*
 * What a base_env may not set, a trailing '*' for a prefix: FERRY_* are
 * ferry's own for the job (FERRY_JOB_ID) and the engine's settings;
 * SLURM_* and SGE_* the DRMS's for the job it runs, which its tools
 * (srun, qsub) and the batch script read; JOB_ID is Grid Engine's, which
 * the script records as the native id. A submitter's (one inside a Slurm
 * allocation, say) would name another job's allocation.
 */
static const char *const reserved[] = {"FERRY_*", "SLURM_*", "SGE_*", "JOB_ID"};

int ferry__env_entry_check(const char *s, const char *key, size_t idx, int base, char *err,
			   size_t errlen)
{
	const char *eq = strchr(s, '=');
	size_t n = eq ? (size_t)(eq - s) : strlen(s);

	/* not even its text: a token pasted where a name was meant is an identifier */
	if (!eq)
		return ferry__fail(err, errlen, FERRY_EINVAL,
				   "'%s'[%zu] is not NAME=value: it has no '='", key, idx);
	if (!n)
		return ferry__fail(err, errlen, FERRY_EINVAL,
				   "'%s'[%zu] is not NAME=value: its name is empty", key, idx);
	if (!env_name_ok(s, n))
		return ferry__fail(err, errlen, FERRY_EINVAL,
				   "'%s'[%zu] names '%.*s', not a shell identifier", key, idx,
				   (int)(n > 128 ? 128 : n), s);
	/* the batch script's own, read-only there (drms.c): a job would get the DRMS's id */
	if (n == 15 && !strncmp(s, "FERRY_NATIVE_ID", n))
		return ferry__fail(err, errlen, FERRY_EINVAL,
				   "'%s'[%zu] sets 'FERRY_NATIVE_ID', which ferry's batch script "
				   "keeps for the cluster's id of the job",
				   key, idx);
	for (size_t i = 0; base && i < sizeof(reserved) / sizeof(reserved[0]); i++) {
		size_t k = strlen(reserved[i]);
		if (reserved[i][k - 1] == '*' ? n >= k - 1 && !strncmp(s, reserved[i], k - 1)
					      : n == k && !strncmp(s, reserved[i], n))
			return ferry__fail(err, errlen, FERRY_EINVAL,
					   "'%s'[%zu] sets '%.*s': the environment a job starts "
					   "from may not set FERRY_*, SLURM_*, SGE_* or JOB_ID, "
					   "which ferry and the DRMS set for each job",
					   key, idx, (int)n, s);
	}
	return 0;
}

int ferry__valid_resource_name(const char *name)
{
	size_t n = 0;

	if (!name || !*name || name[0] == '.')
		return 0;
	for (const char *p = name; *p; p++, n++) {
		char c = *p;
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      c == '_' || c == '.' || c == '-'))
			return 0;
	}
	return n <= 64;
}

size_t ferry__utf8_char(const unsigned char *p, const unsigned char *end)
{
	unsigned c = *p, min, cp;
	size_t k;

	if (c == 0)
		return 0;
	if (c < 0x80)
		return 1;
	if ((c & 0xe0) == 0xc0)
		k = 1, cp = c & 0x1f, min = 0x80;
	else if ((c & 0xf0) == 0xe0)
		k = 2, cp = c & 0x0f, min = 0x800;
	else if ((c & 0xf8) == 0xf0)
		k = 3, cp = c & 0x07, min = 0x10000;
	else
		return 0;
	if ((size_t)(end - p) <= k)
		return 0;
	for (size_t i = 1; i <= k; i++) {
		if ((p[i] & 0xc0) != 0x80)
			return 0;
		cp = (cp << 6) | (p[i] & 0x3f);
	}
	/* what jansson refuses too: overlong forms, surrogates, beyond U+10FFFF */
	if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
		return 0;
	return k + 1;
}

int ferry__valid_utf8(const char *s, size_t len)
{
	const unsigned char *p = (const unsigned char *)s, *end = p + len;

	while (p < end) {
		size_t k = ferry__utf8_char(p, end);
		if (!k)
			return 0;
		p += k;
	}
	return 1;
}

char *ferry__state_dir(const char *resource)
{
	const char *x = getenv("XDG_STATE_HOME"), *home = getenv("HOME");

	if (x && x[0] == '/')
		return ferry__asprintf("%s/ferry/%s", x, resource);
	if (!home || home[0] != '/')
		return NULL;
	return ferry__asprintf("%s/.local/state/ferry/%s", home, resource);
}

char *ferry__default_config_path(void)
{
	const char *x = getenv("XDG_CONFIG_HOME"), *home = getenv("HOME");

	if (x && x[0] == '/')
		return ferry__asprintf("%s/ferry/ferry.conf", x);
	if (!home || home[0] != '/')
		return NULL;
	return ferry__asprintf("%s/.config/ferry/ferry.conf", home);
}

int ferry__random_hex(char *out, size_t nbytes)
{
	unsigned char b[64];
	static const char hex[] = "0123456789abcdef";

	if (nbytes > sizeof(b))
		return -EINVAL;
	if (getrandom(b, nbytes, 0) != (ssize_t)nbytes)
		return -EIO;
	for (size_t i = 0; i < nbytes; i++) {
		out[2 * i] = hex[b[i] >> 4];
		out[2 * i + 1] = hex[b[i] & 15];
	}
	out[2 * nbytes] = '\0';
	return 0;
}

#define SYNC_THREADS 16

struct fsyncs {
	const int *fd;
	size_t n, next; /* next: taken atomically */
	int err;
};

static void *fsync_worker(void *arg)
{
	struct fsyncs *s = arg;

	for (size_t i; (i = __atomic_fetch_add(&s->next, 1, __ATOMIC_RELAXED)) < s->n;) {
		int zero = 0;
		if (fsync(s->fd[i]) < 0)
			__atomic_compare_exchange_n(&s->err, &zero, errno, 0, __ATOMIC_RELAXED,
						    __ATOMIC_RELAXED);
	}
	return NULL;
}

/*
 * fsyncs fd[0..n) from several threads at once: the block layer merges
 * the device flushes of concurrent fsyncs, so that n small files cost a
 * few flushes rather than n (0.26 ms a file on the development VM, against
 * 0.7 ms one after another).
 */
int ferry__fsync_all(const int *fd, size_t n)
{
	struct fsyncs s = {.fd = fd, .n = n};
	pthread_t th[SYNC_THREADS];
	size_t k = 0;
	sigset_t all, old;

	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old); /* the caller's signals stay its own */
	while (k < SYNC_THREADS && k + 1 < n && !pthread_create(&th[k], NULL, fsync_worker, &s))
		k++;
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	fsync_worker(&s); /* alone, when no thread could start */
	while (k)
		pthread_join(th[--k], NULL);
	return s.err;
}

/* Megabytes, or a number with the suffix M or G. */
int ferry__parse_memory(const char *s, int64_t *mb)
{
	char *end;
	long long v, mult = 1;

	if (!isdigit((unsigned char)*s))
		return -1;
	errno = 0;
	v = strtoll(s, &end, 10);
	if (errno)
		return -1;
	if (*end == 'G' || *end == 'g')
		mult = 1024;
	if (*end == 'G' || *end == 'g' || *end == 'M' || *end == 'm')
		end++;
	if (*end || v > INT64_MAX / mult)
		return -1;
	*mb = v * mult;
	return 0;
}

/* Seconds, or [[HH:]MM:]SS where the inner fields are below 60. */
int ferry__parse_walltime(const char *s, int64_t *out)
{
	long long part[3], total;
	int n = 0, i;
	char *end;

	for (;;) {
		if (n == 3 || !isdigit((unsigned char)*s))
			return -1;
		errno = 0;
		part[n++] = strtoll(s, &end, 10);
		if (errno)
			return -1;
		if (!*end)
			break;
		if (*end != ':')
			return -1;
		s = end + 1;
	}
	/* Any leading field that large exceeds the limit whatever its unit. */
	if (part[0] > FERRY_SPEC_WALLTIME_MAX)
		return -1;
	total = part[0];
	for (i = 1; i < n; i++) {
		if (part[i] > 59)
			return -1;
		total = total * 60 + part[i];
	}
	if (total > FERRY_SPEC_WALLTIME_MAX)
		return -1;
	*out = total;
	return 0;
}

char *ferry__which(const char *name, const char *path)
{
	struct stat st;

	if (strchr(name, '/'))
		return access(name, X_OK) == 0 ? strdup(name) : NULL;
	if (!path && !(path = getenv("PATH")))
		path = "/usr/bin:/bin";
	for (const char *p = path;; p += strcspn(p, ":") + 1) {
		size_t n = strcspn(p, ":");
		/* an empty entry (the current directory) is skipped: ferryd's is no one's */
		char *f = n ? ferry__asprintf("%.*s/%s", (int)n, p, name) : NULL;
		if (f && access(f, X_OK) == 0 && stat(f, &st) == 0 && S_ISREG(st.st_mode))
			return f;
		free(f);
		if (!p[n])
			return NULL;
	}
}
