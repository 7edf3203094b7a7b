/*
 * drmaa-lib.h - the drmaa backend's binding of a DRMAA v1 C library
 * (drmaa-lib.c): the standard's values, the functions ferry calls,
 * resolved with dlopen so that ferry builds and runs where no DRMAA
 * library is installed, and what opening the library learns.
 */
#ifndef FERRY_DRMAA_LIB_H
#define FERRY_DRMAA_LIB_H

#include <stddef.h>

#include "cfg.h"
#include "job.h"

#define DIAG 1024 /* DRMAA_ERROR_STRING_BUFFER */

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

/*
 * A loaded library and what opening it learnt. Nothing writes it after
 * ferry__drmaa_lib_open, so that the backend's worker thread reads it
 * without a lock while the loop reads it too.
 */
#define DECLARE(name, ret, args) ret(*name) args;
struct drmaa_lib {
	void *dl;
	char *path; /* the library loaded */
	char drm[256];
	int sge; /* Grid Engine: its native options and qacct are known */
	int wct; /* the library takes drmaa_wct_hlimit */
	struct {
		DRMAA_FUNCS(DECLARE)
	} f;
};
#undef DECLARE

/*
 * The backend's pre_exec (backend.h): a library may need static TLS that
 * glibc gives a dlopen only when told at exec time, so ferryd runs itself
 * again with the tunable set; returns when it did not.
 */
void ferry__drmaa_pre_exec(char **argv);
/*
 * Puts back the environment ferryd started with, loads the library cfg
 * names (or a usual one), resolves its functions and opens a DRMAA
 * session: 0, or FERRY_ECONFIG / FERRY_ECONNECT (qmaster down) with err
 * set. Blocks: at the engine's startup only.
 */
int ferry__drmaa_lib_open(struct drmaa_lib *lib, const struct ferry_resource_cfg *cfg, char *err,
			  size_t errlen);
/* Ends the session (the library stays loaded: its atexit handlers may still run). */
void ferry__drmaa_lib_close(struct drmaa_lib *lib);
/* A DRMAA diagnosis without its trailing newline (Grid Engine's), in place. */
const char *ferry__drmaa_trim(char *s);
/* The end drmaa_wait reported (its rc, stat and rusage) as a result. */
void ferry__drmaa_decode(const struct drmaa_lib *lib, int rc, int stat, values_t *ru,
			 struct job_result *res);

#endif
