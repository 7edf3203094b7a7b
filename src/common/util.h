/* util.h - small helpers shared by the library, the engine and the CLI. */
#ifndef FERRY_UTIL_H
#define FERRY_UTIL_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define FERRY_ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

/* Seconds since the epoch, as a double (CLOCK_REALTIME). */
double ferry__now(void);
/* Monotonic seconds (CLOCK_MONOTONIC). */
double ferry__mono(void);

/* malloc'd printf; NULL on ENOMEM. */
char *ferry__asprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/*
 * The one error helper of the engine: writes the message (printf-style)
 * into err and returns code, so that a failure is one statement:
 * `return ferry__fail(err, errlen, FERRY_EINVAL, "'%s' must be ...", key);`.
 * A request's handler writes into its request (ferry__req_fail, dispatch.h).
 */
int ferry__fail(char *err, size_t errlen, int code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/*
 * Makes the malloc'd buffer *buf (*cap bytes; NULL and 0 at first) hold at
 * least need bytes, doubling from 4 KiB so that appends cost amortised
 * O(1). 0, or -1 without memory (the buffer unchanged).
 */
int ferry__reserve(unsigned char **buf, size_t *cap, size_t need);

/* Writes all of buf, retrying on EINTR/short writes. 0 or -errno. */
int ferry__write_all(int fd, const void *buf, size_t len);
/* Reads exactly len bytes. 0, -errno, or -EPIPE at a premature EOF. */
int ferry__read_all(int fd, void *buf, size_t len);
/*
 * Reserves the blocks of [off, off + len) of a file about to be written
 * there, without changing its size (which is how far a transfer got).
 * Best effort: where the file system cannot, the writes allocate as usual.
 */
void ferry__preallocate(int fd, int64_t off, int64_t len);

/*
 * Bytes this process may still write on the file system of fd (or of
 * path, with fd < 0): the available blocks, or the free ones for root,
 * whom the file system's reserve serves too. -1 when it cannot tell.
 */
int64_t ferry__fs_free(int fd, const char *path);

/*
 * fsyncs fd[0..n) (borrowed) from up to 16 threads at once, so that their
 * device flushes merge. 0 or the first errno.
 */
int ferry__fsync_all(const int *fd, size_t n);

/*
 * Reads a whole small file (at most max bytes) into a malloc'd,
 * NUL-terminated buffer. 0 or -errno (-EFBIG when larger than max).
 */
int ferry__read_file(const char *path, size_t max, char **out, size_t *len);

/*
 * Writes data to path atomically: temporary file, (fsync when durable),
 * rename. Without durable the file survives a crash of any process but
 * not of the machine.
 */
int ferry__write_file_atomic(const char *path, const void *data, size_t len, int durable);

/* mkdir -p with mode for the created components. 0 or -errno. */
int ferry__mkdir_p(const char *path, mode_t mode);

/* Removes a directory tree (no symlink following). 0 or -errno. */
int ferry__rm_rf(const char *path);

/*
 * Splits a line into words the way a POSIX shell does for quoting only:
 * blanks separate words, '...' and "..." quote, backslash escapes; no
 * expansion of any kind. *argv is a NULL-terminated malloc'd array of
 * malloc'd strings (free with ferry__strv_free). Returns 0, -EINVAL with
 * *err set to a static message on unbalanced quotes, or -ENOMEM.
 */
int ferry__split_words(const char *line, char ***argv, const char **err);

void ferry__strv_free(char **v);
size_t ferry__strv_len(char *const *v);

/*
 * execvpe without its allocations, for a vfork child (async-signal-safe):
 * runs argv[0], searched on path (the caller's PATH, taken before the
 * fork) when it holds no '/'. A file the kernel cannot execute (ENOEXEC:
 * a script without "#!") runs under /bin/sh, as execvp runs it, when
 * shargv is not NULL; shargv is made by ferry__sh_argv before the fork.
 * Returns only on failure, with errno set as execvp sets it.
 */
void ferry__exec_search(char *const argv[], char *const envp[], const char *path, char **shargv);
/*
 * The executable file name is in the directories of path (a PATH value;
 * NULL: $PATH), as execvp would find it, or name itself when it holds a
 * '/' (an empty entry of path is skipped): malloc'd, or NULL (none, or
 * out of memory).
 */
char *ferry__which(const char *name, const char *path);
/* The argv of /bin/sh for a script run with argv (malloc'd; NULL when out of memory). */
char **ferry__sh_argv(char *const argv[]);

/*
 * Whether environment entry s is one a job's environment takes: "NAME=value"
 * with NAME a shell identifier and, for a base_env entry (base), none of
 * the names ferry and the DRMS set for each job (FERRY_*, SLURM_*, SGE_*,
 * JOB_ID: ferry(1), "ENVIRONMENT OF A JOB"). 0, or FERRY_EINVAL with err
 * naming 'key'[idx] and the variable, never its value: a value may be a
 * secret, and messages go to logs and terminals.
 */
int ferry__env_entry_check(const char *s, const char *key, size_t idx, int base, char *err,
			   size_t errlen);

/* Validates a resource name: [A-Za-z0-9_.-]{1,64}, not starting with '.'. */
int ferry__valid_resource_name(const char *name);

/*
 * The length of the UTF-8 character at p (1 to 4 bytes, before end), as
 * jansson takes one; 0 when p starts none (or is NUL).
 */
size_t ferry__utf8_char(const unsigned char *p, const unsigned char *end);

/* Whether s (len bytes) is valid UTF-8 without NUL. */
int ferry__valid_utf8(const char *s, size_t len);

/*
 * State directory of a resource: $XDG_STATE_HOME/ferry/<resource>, or
 * $HOME/.local/state/ferry/<resource>. malloc'd; NULL on error.
 */
char *ferry__state_dir(const char *resource);
/* Default configuration file path; malloc'd; NULL when no HOME. */
char *ferry__default_config_path(void);

/* Random hex string of 2*nbytes chars into out (size >= 2*nbytes+1). */
int ferry__random_hex(char *out, size_t nbytes);

/* Megabytes, or a number with the suffix M or G (ferry submit --memory). 0 or -1. */
int ferry__parse_memory(const char *s, int64_t *mb);
/* Seconds or [[HH:]MM:]SS, at most FERRY_SPEC_WALLTIME_MAX (ferry submit --walltime). 0 or -1. */
int ferry__parse_walltime(const char *s, int64_t *out);

#endif
