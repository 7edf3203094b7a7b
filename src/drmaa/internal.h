/*
 * internal.h - what the files of libferry-drmaa share: the session, the
 * string vectors of the binding, the mapping of libferry's errors.
 */
#ifndef FERRY_DRMAA_INTERNAL_H
#define FERRY_DRMAA_INTERNAL_H

/* The library is built with hidden visibility: the binding's calls alone are exported. */
#pragma GCC visibility push(default)
#include "drmaa.h"
#pragma GCC visibility pop

#include "ferry.h"

/* A vector of malloc'd strings read one by one (names, values and job ids alike). */
struct drmaa__strv {
	char **v;
	size_t n, next;
};
struct drmaa_attr_names_s {
	struct drmaa__strv s;
};
struct drmaa_attr_values_s {
	struct drmaa__strv s;
};
struct drmaa_job_ids_s {
	struct drmaa__strv s;
};

/* Appends a copy of str. 0, or DRMAA_ERRNO_NO_MEMORY. */
int drmaa__strv_push(struct drmaa__strv *s, const char *str);
void drmaa__strv_clear(struct drmaa__strv *s);

/* Writes the message into diag (cut short, NUL-terminated; NULL or 0: nothing); returns code. */
int drmaa__diag(char *diag, size_t len, int code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* The DRMAA code of a libferry error in general use; diag gets ferry_errmsg(conn). */
int drmaa__ferry_error(ferry_conn *conn, int rc, char *diag, size_t len);

/*
 * The session. drmaa__enter() gives the connection of the active session
 * and counts the caller in, so that drmaa_exit() waits for it to
 * drmaa__leave() before it closes the connection; DRMAA_ERRNO_NO_ACTIVE_SESSION
 * (diag set) when there is none. Calls that block (waits) check
 * drmaa__closing() between slices so that an exit is not held long.
 *
 * From drmaa__enter() to drmaa__leave() the caller holds the connection
 * alone, so that ferry_errmsg(conn) is still its call's when it is read
 * (another thread's call would replace it). A wait, which uses a
 * connection of its own or sleeps, lets go with drmaa__yield_conn() and
 * takes it back with drmaa__take_conn() before it uses conn again.
 */
int drmaa__enter(ferry_conn **conn, char *diag, size_t len);
void drmaa__leave(void);
void drmaa__yield_conn(void);
void drmaa__take_conn(void);
int drmaa__closing(void);

/*
 * A connection of its own for a blocking wait, taken from the session's
 * idle ones or opened: libferry serialises the calls on one connection,
 * and a wait on the session's would hold every other thread's calls
 * (jobStatus while another thread waits) until it ended. Returned with
 * drmaa__wait_conn_done(). 0, or a DRMAA code with diag set.
 */
int drmaa__wait_conn(ferry_conn **conn, char *diag, size_t len);
void drmaa__wait_conn_done(ferry_conn *conn);

/*
 * Jobs this session submitted or reaped, for DRMAA_JOB_IDS_SESSION_* and
 * reaping; staged: their template's outputs are ferry transfers
 * (drmaa_transfer_files) to retrieve when they end.
 */
int drmaa__track(const ferry_job_id *ids, size_t n, int staged);
/*
 * Whether the end of id may have outputs to retrieve: staged, or not
 * submitted here, and not retrieved in the session yet.
 */
int drmaa__may_have_outputs(ferry_job_id id);
/* Whether id was submitted in the session with outputs to retrieve (drmaa_transfer_files). */
int drmaa__staged(ferry_job_id id);
/* Marks the outputs of id (ended) retrieved: 0, or -1 without memory. */
int drmaa__retrieved(ferry_job_id id);
/* Marks id reaped: 0, or -1 when it was already (another thread reaped it). */
int drmaa__reap(ferry_job_id id);
int drmaa__is_reaped(ferry_job_id id);
/* The jobs submitted in the session not reaped yet (*ids freed with free()). 0 or -1 (memory). */
int drmaa__session_jobs(ferry_job_id **ids, size_t *n);

/* Parses a job id of this library (a ferry job id in decimal). 0, or DRMAA_ERRNO_INVALID_JOB. */
int drmaa__parse_id(const char *s, ferry_job_id *id, char *diag, size_t len);

/* The job template (template.c) as submit.c reads it. */
enum drmaa__scalar {
	DRMAA__REMOTE_COMMAND,
	DRMAA__JS_STATE,
	DRMAA__WD,
	DRMAA__JOB_CATEGORY,
	DRMAA__NATIVE,
	DRMAA__BLOCK_EMAIL,
	DRMAA__START_TIME,
	DRMAA__JOB_NAME,
	DRMAA__INPUT_PATH,
	DRMAA__OUTPUT_PATH,
	DRMAA__ERROR_PATH,
	DRMAA__JOIN_FILES,
	DRMAA__WCT_HLIMIT,
	DRMAA__TRANSFER_FILES,
	DRMAA__NSCALAR
};
enum drmaa__vector { DRMAA__V_ARGV, DRMAA__V_ENV, DRMAA__V_EMAIL, DRMAA__NVECTOR };

struct drmaa_job_template_s {
	char *scalar[DRMAA__NSCALAR];  /* NULL: not set */
	char **vector[DRMAA__NVECTOR]; /* NULL-terminated; NULL: not set */
};

/*
 * Reads a native specification (the words of `ferry submit`: --cpus N,
 * --memory SIZE, --walltime TIME (not 0), --queue NAME, --native TEXT;
 * also as --word=value) into spec, whose queue points into *words afterwards
 * (freed with ferry__strv_free by the caller, also on failure).
 * 0, or DRMAA_ERRNO_INVALID_ATTRIBUTE_VALUE / DRMAA_ERRNO_NO_MEMORY (diag set).
 */
int drmaa__native(const char *text, struct ferry_job_spec *spec, char ***words, char *diag,
		  size_t len);
/*
 * Checks a path attribute ("[hostname]:path") and its placeholders:
 * *path gets where the path starts in value. The hostname is disregarded,
 * as the binding says, unless the file is transferred (drmaa_transfer_files):
 * it then comes from (goes to) that host, and ferry transfers the
 * caller's files only, so another host is refused. 0 or
 * DRMAA_ERRNO_INVALID_ATTRIBUTE_VALUE (diag set).
 */
int drmaa__path(const char *attr, const char *value, int transferred, const char **path, char *diag,
		size_t len);
/*
 * path (as drmaa__path() gave it) with its placeholders replaced: a leading
 * $drmaa_hd_ph$ by home, a leading $drmaa_wd_ph$ by wd, every
 * $drmaa_incr_ph$ by index; a relative result is put under wd (NULL: left
 * as is). malloc'd; NULL without memory.
 */
char *drmaa__expand(const char *path, long index, const char *wd, const char *home);

#endif
