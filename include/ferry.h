/*
 * ferry.h - public C API of libferry.
 *
 * libferry talks to ferryd, the per-user, per-resource job engine, which it
 * starts on demand. Every function returns 0 on success or a negative
 * FERRY_E* code; ferry_strerror() names the code and ferry_errmsg() gives
 * the detailed message of the last failed call on a connection. Each call
 * says which codes it returns on its Errors line. "Connection errors" there
 * are FERRY_ECONNECT, FERRY_EDISCONNECTED (the engine was lost and not
 * regained within ferry_set_timeout()), FERRY_EPROTO and FERRY_EIO; a call
 * that has to open the connection again (its ferry_connect() failed, or a
 * transfer lost the link) may also fail as ferry_connect() does.
 *
 * Thread safety: a ferry_conn may be used from several threads; calls on
 * one connection are serialised by the library, each holding it until it
 * returns: a ferry_wait() delays the other threads' calls on its
 * connection by up to its whole length, so give long waits a connection
 * of their own. Distinct connections are
 * independent. The library keeps no global state.
 *
 * Ownership: pointers passed in are borrowed for the duration of the call
 * only. Pointers returned through out-parameters belong to the caller and
 * are released with the free function named in each prototype.
 *
 * Changes. Before 1.0 the API may still change where it was found wanting;
 * each such change comes with a new soname, so that a program built
 * against the old one is not run against this one.
 * - libferry.so.1 (ferry 0.2.0): the kind and state of struct ferry_transfer_info are
 *   enum ferry_transfer_kind and enum ferry_transfer_state instead of
 *   strings, as job states are enum ferry_job_status: a program switches
 *   on them and the compiler checks the names. ferry_transfer_kind_name()
 *   and ferry_transfer_state_name() give the former strings, which are
 *   still what the protocol and `ferry transfers` show.
 */
#ifndef FERRY_H
#define FERRY_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define FERRY_VERSION_MAJOR  0
#define FERRY_VERSION_MINOR  2
#define FERRY_VERSION_PATCH  0
#define FERRY_VERSION_STRING "0.2.0"

/* Error codes: 0 is success, every error is negative. */
enum ferry_error {
	FERRY_OK = 0,
	FERRY_EINVAL = -1,	   /* an argument or a request field is invalid */
	FERRY_ENOMEM = -2,	   /* out of memory */
	FERRY_ENOJOB = -3,	   /* no such job (never existed or disposed) */
	FERRY_ECONNECT = -4,	   /* cannot reach or start the engine */
	FERRY_EPROTO = -5,	   /* malformed or unexpected protocol message */
	FERRY_ETIMEDOUT = -6,	   /* the timeout passed before the condition held */
	FERRY_ESTATE = -7,	   /* the job's state does not allow the action */
	FERRY_EUNSUPPORTED = -8,   /* the request is valid but not supported here */
	FERRY_ECONFIG = -9,	   /* configuration file or resource is invalid */
	FERRY_EIO = -10,	   /* an I/O error on a file or the connection */
	FERRY_EAGAIN = -11,	   /* nothing available now; try again later */
	FERRY_EEOF = -12,	   /* end of data: the job ended, all was read */
	FERRY_EPERM = -13,	   /* permission denied */
	FERRY_EDISCONNECTED = -14, /* the connection was lost and not regained */
	FERRY_ERESOURCE = -15,	   /* the resource cannot satisfy the request */
	FERRY_EINTERNAL = -16,	   /* internal engine error (database, ...) */
	FERRY_EAUTH = -17,	   /* the remote host refused the login */
};

/*
 * Job states: DRMAA's (drmaa_job_ps()) one for one, so that a program
 * written for DRMAA maps them without a table.
 */
enum ferry_job_status {
	FERRY_UNDETERMINED = 0,
	FERRY_QUEUED_ACTIVE,
	FERRY_SYSTEM_ON_HOLD,
	FERRY_USER_ON_HOLD,
	FERRY_USER_SYSTEM_ON_HOLD,
	FERRY_RUNNING,
	FERRY_SYSTEM_SUSPENDED,
	FERRY_USER_SUSPENDED,
	FERRY_USER_SYSTEM_SUSPENDED,
	FERRY_DONE,
	FERRY_FAILED,
};

/* How an ended job ended. FERRY_EXIT_NONE while the job has not ended. */
enum ferry_exit_status {
	FERRY_EXIT_NONE = 0,
	FERRY_FINISHED_REGULARLY,
	FERRY_FINISHED_SIGNAL,
	FERRY_FINISHED_UNCLEAR_CONDITION,
	FERRY_KILLED_BY_USER,
	FERRY_ABORTED,
};

typedef struct ferry_conn ferry_conn;
typedef int64_t ferry_job_id;

/*
 * Job specification, filled by the caller after ferry_job_spec_init().
 * All pointers are borrowed: the library copies what it needs during
 * ferry_submit(). NULL or 0 means "not given" unless said otherwise.
 * String arrays are NULL-terminated.
 */
struct ferry_job_spec {
	unsigned int version;	       /* set by ferry_job_spec_init(); do not touch */
	const char *const *argv;       /* command and arguments; argv[0] required */
	const char *name;	       /* display name */
	const char *working_directory; /* default: the caller's cwd; relative: under it */
	const char *stdin_path;
	const char *stdout_path;		   /* default: a file in the job's directory */
	const char *stderr_path;		   /* default: a file in the job's directory */
	int join_stderrout;			   /* nonzero: stderr goes to stdout */
	const char *const *env;			   /* "NAME=value" entries added to the job's env */
	const char *const *referenced_input_files; /* must exist before start */
	const char *const *referenced_output_files; /* produced by the job */
	int disposal_timeout_hours;		    /* record kept that long after the end; 168 */
	int cpus;				    /* slots the job uses; default 1 */
	int64_t memory_mb;			    /* address-space limit; 0: none */
	int64_t walltime_s;			    /* wall-clock limit; 0: none */
	const char *queue;			    /* backend queue / partition */
	const char *native_specification;	    /* backend-specific options */
	int hold;				    /* nonzero: submit as user_on_hold */
	/*
	 * Client-generated key that makes submission idempotent: submitting a
	 * key again returns the job first created with it. NULL: no key; a
	 * retry inside the library after a lost acknowledgement still cannot
	 * create a second job (each batch the library sends has a random key
	 * of its own, which the engine recalls).
	 */
	const char *submission_key;
	/*
	 * The environment the job starts from ("NAME=value" entries), in
	 * place of the one the resource gives a job by default (the engine's,
	 * plus what its DRMS adds): each entry is set over that default
	 * environment, then env's entries over these (env always wins). NULL:
	 * the default alone. The library never fills it: a caller passes the
	 * variables it means to carry; the `ferry` command passes its own
	 * environment, less the per-session variables ferry(1) lists (see
	 * --env-clean), when its engine runs on its own host. Specs that
	 * share the same base_env (an equal array) in one ferry_submit_many()
	 * send it once a batch, and the engine stores one copy of each
	 * distinct environment, not one a job. Errors: FERRY_EINVAL for an
	 * entry that is not NAME=value with NAME a shell identifier, or that
	 * sets FERRY_*, SLURM_*, SGE_* or JOB_ID (ferry and the DRMS set them
	 * for each job: ferry(1), "ENVIRONMENT OF A JOB"); the message names
	 * the entry and its variable, never its value.
	 */
	const char *const *base_env;
	/*
	 * A parallel job (docs/backends.md, "Parallel jobs"): tasks
	 * processes (ranks) of cpus_per_task cpus each, on nodes nodes (0:
	 * as the resource places them). The job holds tasks * cpus_per_task
	 * slots; cpus, when set above 1 as well, must be that product. The
	 * launcher says who starts the tasks: FERRY_LAUNCHER_NONE, the
	 * command is started once and starts its own (as srun or mpirun
	 * would); FERRY_LAUNCHER_MPI, ferry starts the command as tasks
	 * ranks with the MPI launcher that fits the resource (mpirun on
	 * local, srun on Slurm, mpirun in the configured parallel
	 * environment on Grid Engine). Defaults: 1 task, 1 cpu a task, no
	 * launcher. Errors: FERRY_EINVAL for a product over the cpus limit
	 * or a cpus that is not the product; FERRY_EUNSUPPORTED or
	 * FERRY_ERESOURCE where the resource cannot honour the request
	 * (several nodes on local, no parallel environment configured).
	 */
	int tasks;
	int cpus_per_task;
	int nodes;
	enum ferry_launcher {
		FERRY_LAUNCHER_NONE,
		FERRY_LAUNCHER_MPI,
	} launcher;
};

/*
 * 2: base_env was added; 3: tasks, cpus_per_task, nodes and launcher.
 * A program built against an older ferry.h gets what it knows: its
 * structs are initialised and read at their own size, the rest taking
 * its default (see ferry_job_spec_init()).
 */
#define FERRY_JOB_SPEC_VERSION 3

/* Everything known about one job. Allocated by the library. */
struct ferry_job_info {
	ferry_job_id id;
	char *name;  /* may be NULL */
	char **argv; /* NULL-terminated */
	enum ferry_job_status status;
	enum ferry_exit_status exit_status;
	int exit_value;	     /* valid with FERRY_FINISHED_REGULARLY */
	int signal;	     /* terminating signal, 0 if none */
	double cpu_user_s;   /* -1 when unknown */
	double cpu_sys_s;    /* -1 when unknown */
	int64_t max_rss_kb;  /* -1 when unknown */
	double wall_s;	     /* -1 when unknown */
	double submitted_at; /* seconds since the epoch; 0 when not yet */
	double started_at;
	double ended_at;
	char *message; /* why the job ended as it did; may be NULL */
	char *working_directory;
	char *stdin_path;
	char *stdout_path; /* where the engine writes the job's stdout */
	char *stderr_path;
	int join_stderrout;
	char **env; /* NULL-terminated */
	char **referenced_input_files;
	char **referenced_output_files;
	int disposal_timeout_hours;
	int cpus;
	int64_t memory_mb;
	int64_t walltime_s;
	char *queue;
	char *native_specification;
	char *submission_key;
	char *backend;	 /* "local", ... */
	char *native_id; /* backend's id (local: the job's pid); may be NULL */
	char *resource;
	int64_t workflow; /* its workflow (a ferry_workflow_id); 0: none */
	/* the ids of the jobs of its workflow it depends on, 0-terminated (never NULL) */
	int64_t *dependencies;
	int tasks;	   /* a parallel job's (struct ferry_job_spec); 1 otherwise */
	int cpus_per_task; /* 1 unless set */
	int nodes;	   /* 0: not set */
	char *launcher;	   /* "mpi", or NULL: the command is started once */
};

/* Resource usage and end of a job, as returned by ferry_exit_info(). */
struct ferry_exit_info {
	enum ferry_exit_status exit_status;
	int exit_value;
	int signal;
	double cpu_user_s;
	double cpu_sys_s;
	int64_t max_rss_kb;
	double wall_s;
};

/*
 * Static, never NULL: the name of an error code ("invalid argument"),
 * "unknown error" for a code that is none. Errors: none.
 */
const char *ferry_strerror(int code);
/* Static: "queued_active", ... Errors: NULL for an out-of-range value. */
const char *ferry_status_name(enum ferry_job_status s);
/* Static: "finished_regularly", ...; "none" for FERRY_EXIT_NONE. Errors: none. */
const char *ferry_exit_status_name(enum ferry_exit_status s);
/*
 * Parses a status name into *out. Errors: FERRY_EINVAL (name NULL or no
 * state's name).
 */
int ferry_status_from_name(const char *name, enum ferry_job_status *out);
/*
 * Parses a launcher's name ("mpi", "none") into *out: what the CLI, the
 * DRMAA native specification and the Python API take. Errors:
 * FERRY_EINVAL (name NULL or another word).
 */
int ferry_launcher_from_name(const char *name, enum ferry_launcher *out);

/*
 * Opens a connection to the engine of a resource, starting it if needed.
 * resource_id: section name in the configuration; NULL or "local" is the
 *   embedded local resource (no configuration file needed).
 * login, password: for a remote resource (one with a 'host'), override its
 *   'login' and let ssh log in with a password (given to ssh through its
 *   askpass helper, never on a command line, in an environment or on
 *   disk); may be NULL, e.g. with keys or an agent. Copied. For a resource
 *   of this host, login must be NULL or the caller's own user name and
 *   password NULL (FERRY_EINVAL otherwise).
 * config_file: path of the INI file; NULL means
 *   $XDG_CONFIG_HOME/ferry/ferry.conf (missing is fine for "local").
 * A remote resource is reached by running the user's ssh client,
 *   `ssh [-p PORT] [-l LOGIN] HOST ferry bridge --resource NAME`, kept for
 *   the life of the connection and started again after a lost link.
 * *conn receives a handle to release with ferry_disconnect(). On failure
 *   *conn is still set when the handle could be allocated (so that
 *   ferry_errmsg() tells why) and must be released too; it is NULL only on
 *   FERRY_ENOMEM.
 * Errors: FERRY_ECONFIG, FERRY_ECONNECT, FERRY_EPROTO (e.g. "remote shell is
 *   not clean"), FERRY_EUNSUPPORTED, FERRY_EPERM, FERRY_EAUTH (the remote
 *   host refused the login), FERRY_EINVAL, FERRY_ENOMEM.
 */
int ferry_connect(const char *resource_id, const char *login, const char *password,
		  const char *config_file, ferry_conn **conn);

/* Closes the connection and frees it. Jobs keep running. NULL is a no-op. Errors: none. */
void ferry_disconnect(ferry_conn *conn);

/*
 * Detailed message of the last failed call on conn (e.g. "working directory
 * '/x' does not exist"). Owned by conn (one buffer per connection, shared
 * by its threads), valid until the next call on conn; "" when the last
 * call succeeded. Errors: none ("no connection" for conn NULL).
 */
const char *ferry_errmsg(const ferry_conn *conn);

/*
 * Sets spec to defaults (all unset, disposal 168 h, cpus 1, 1 task of 1
 * cpu, no launcher). Errors: none.
 */
void ferry_job_spec_init_version(struct ferry_job_spec *spec, unsigned int version);
/*
 * A macro: the struct's version is the one of the ferry.h the caller is
 * built with, which the library then reads at that size. A program built
 * with version 1's header calls the function, which is version 1's.
 */
void ferry_job_spec_init(struct ferry_job_spec *spec);
#define ferry_job_spec_init(spec) ferry_job_spec_init_version((spec), FERRY_JOB_SPEC_VERSION)

/*
 * Submits one job; *job_id receives its id. The request is committed to
 * the engine's database before this returns.
 * Errors: FERRY_EINVAL (bad spec, message says which field),
 *   FERRY_ERESOURCE (e.g. more cpus than the resource has),
 *   FERRY_EUNSUPPORTED (e.g. a queue on the local backend), FERRY_EIO
 *   (the engine's disk is full: "cannot write '.../ferry.db': disk full"),
 *   connection errors; an engine that stopped on its database gives its
 *   reason ("the engine of resource 'R' stopped: ...").
 */
int ferry_submit(ferry_conn *conn, const struct ferry_job_spec *spec, ferry_job_id *job_id);

/* The most jobs of one submit request: ferry_submit_many() splits above it. */
#define FERRY_SUBMIT_MAX 100000

/*
 * Submits n jobs (any n >= 1); ids must have room for n ids.
 * Every spec is first checked here, before anything is sent, as far as
 * the library can (version, argv, numbers in range, env entries,
 * lengths, a relative working directory without a current one): a bad
 * spec then fails the call with no job submitted, the message naming
 * it ("job 17: ...", counted from 0 in specs).
 * The jobs then go in batches of about 1 MiB of request each (and at
 * most FERRY_SUBMIT_MAX jobs), up to 8 of them sent ahead of their
 * answers. Each batch is one request and one transaction of the engine,
 * committed before its answer: all or none per batch, not per call.
 * Each batch carries a random key the library makes, so that a batch
 * sent again after a lost connection returns the ids it first got.
 * On any failure, ids[i] is the id of every job that was submitted and
 * 0 for every other (all 0 when nothing was sent). Part-way, the jobs of
 * batches sent before the failure was answered may be submitted too (the
 * ids say which), and with n > 1 the message reads "K of n jobs
 * submitted; " then the engine's reason for the first failed batch,
 * naming its first bad spec by its index in specs ("job 70123: ...").
 * The code is that batch's (errors as ferry_submit()). If the
 * engine was lost and not regained, the batches without an answer are
 * not known: their ids are 0, and a new call with the same specs' own
 * submission keys finds the jobs that were made.
 */
int ferry_submit_many(ferry_conn *conn, const struct ferry_job_spec *specs, size_t n,
		      ferry_job_id *ids);

/* Current status. Errors: FERRY_ENOJOB, connection errors. */
int ferry_status(ferry_conn *conn, ferry_job_id id, enum ferry_job_status *status);

/*
 * Exit information. Before the job ended, out->exit_status is
 * FERRY_EXIT_NONE and the usage fields are -1.
 * Errors: FERRY_ENOJOB, connection errors.
 */
int ferry_exit_info(ferry_conn *conn, ferry_job_id id, struct ferry_exit_info *out);

/*
 * Everything about one job; *info is freed with ferry_job_info_free().
 * Errors: FERRY_ENOJOB, FERRY_ENOMEM, connection errors.
 */
int ferry_job_info(ferry_conn *conn, ferry_job_id id, struct ferry_job_info **info);
/* Frees what ferry_job_info() returned; NULL is a no-op. Errors: none. */
void ferry_job_info_free(struct ferry_job_info *info);

/*
 * Ids of the jobs of this resource, oldest first, optionally only those in
 * one state (filter: NULL for all). *ids is freed with free() (it is
 * allocated, if only one id long, whenever the call succeeds). One request,
 * its answer streamed in pages (as ferry_list_jobs()), so that any number
 * of jobs is listed. Errors: FERRY_EINVAL (*filter is no enum
 * ferry_job_status), FERRY_ENOMEM, FERRY_EINTERNAL (the engine's database
 * failed), connection errors.
 */
int ferry_jobs(ferry_conn *conn, const enum ferry_job_status *filter, ferry_job_id **ids,
	       size_t *n);

/*
 * What ferry_list_jobs() lists: set up with ferry_list_opts_init(), then
 * set what is wanted; the jobs listed are those that match every member
 * set. Members are borrowed for the call.
 */
struct ferry_list_opts {
	unsigned int version;		     /* set by ferry_list_opts_init(); do not touch */
	const enum ferry_job_status *states; /* jobs in one of these states... */
	size_t nstates;			     /* ...of which there are nstates; 0: any state */
	ferry_job_id after;		     /* jobs with a greater id; 0: from the first */
	double since;			     /* jobs submitted at or after it (seconds since
						the epoch); 0: any time */
	size_t limit;			     /* at most this many (the oldest); 0: no limit */
	size_t page;			     /* jobs per frame of the answer, up to 10000;
						0: the engine's (1000) */
	int64_t workflow; /* jobs of this workflow (a ferry_workflow_id); 0: any */
};

/*
 * The layout of struct ferry_list_opts this header has: 1 had no
 * workflow. A program built with version 1's header has a smaller
 * struct, and calls the library's ferry_list_opts_init() of version 1,
 * which touches none of what it lacks; the library takes either.
 */
#define FERRY_LIST_OPTS_VERSION 2

/*
 * Sets opts, of the layout of version (FERRY_LIST_OPTS_VERSION as the
 * caller was built), to list every job (all members unset).
 * Errors: none (an unknown version leaves opts so that a listing with it
 * fails with FERRY_EINVAL).
 */
void ferry_list_opts_init_version(struct ferry_list_opts *opts, unsigned int version);
/* The same, of this header's layout. Errors: none. */
void ferry_list_opts_init(struct ferry_list_opts *opts);
#define ferry_list_opts_init(opts) ferry_list_opts_init_version((opts), FERRY_LIST_OPTS_VERSION)

/*
 * Called by ferry_list_jobs() with each job: job and all it points to are
 * the library's, valid during the call only. Returns 0 to go on; any other
 * value stops the listing.
 */
typedef int (*ferry_job_fn)(void *userdata, const struct ferry_job_info *job);

/*
 * Lists the jobs of this resource that opts selects (NULL: every job),
 * oldest (lowest id) first, calling fn(userdata, job) for each on the
 * calling thread as the engine's answer arrives: one request, whose answer
 * comes in pages (opts->page jobs each), so that the memory used holds
 * one page however many jobs there are. fn must not call libferry on conn
 * (the connection is locked meanwhile); userdata is handed to it as given.
 * Every job that existed when the call began and is not disposed of
 * before its turn is listed exactly once; jobs submitted meanwhile may or
 * may not be; a job that changes state meanwhile may or may not match a
 * state filter, and is still never listed twice. A link lost midway is
 * regained within ferry_set_timeout() and the listing goes on after the
 * last job handed to fn.
 * Returns 0 once every job was listed or fn stopped it with a positive
 * value; fn's value when it stopped it with a negative one (ferry_errmsg()
 * says so). Errors: FERRY_EINVAL (fn NULL, opts not set up by
 * ferry_list_opts_init(), a state that is no enum ferry_job_status,
 * states NULL with nstates, since negative or not finite, page over
 * 10000), FERRY_ENOMEM, FERRY_EINTERNAL (the engine's database failed: fn
 * may have had some jobs), connection errors.
 */
int ferry_list_jobs(ferry_conn *conn, const struct ferry_list_opts *opts, ferry_job_fn fn,
		    void *userdata);
/*
 * The ids of the jobs opts selects (as ferry_list_jobs() takes them;
 * NULL: every job), oldest first, without their job objects: a listing of ids costs the
 * engine and the link a few bytes a job. *ids is freed with free() (it
 * is allocated, if only one id long, whenever the call succeeds); *n
 * gets how many. One request, its answer streamed in pages (opts->page
 * ids each; 0: 10,000). Errors: as ferry_list_jobs().
 */
int ferry_list_ids(ferry_conn *conn, const struct ferry_list_opts *opts, ferry_job_id **ids,
		   size_t *n);

/*
 * Called by ferry_list_jobs_jsonl() with each page of the listing: n jobs
 * as JSON Lines, len bytes at text, each line one job object as
 * docs/protocol.md ("Job object", "Bytes") defines it, ending in '\n' (a
 * job object holds no raw newline). text is the library's, valid during
 * the call only. Returns 0 to go on; any other value stops the listing.
 */
typedef int (*ferry_jsonl_fn)(void *userdata, const char *text, size_t len, size_t n);

/*
 * Lists the jobs as ferry_list_jobs() does, handing fn each page of them
 * as the engine wrote it, JSON Lines, rather than each job as a struct:
 * what a program that prints or stores job objects wants, with no parse
 * and no conversion (`ferry jobs --json` and `--jsonl`). The same
 * guarantees, page sizes (a page also ends before 4 MiB of text), link
 * recovery (after the last page handed to fn) and errors as
 * ferry_list_jobs(); FERRY_EPROTO when the engine's page is not JSON Lines.
 */
int ferry_list_jobs_jsonl(ferry_conn *conn, const struct ferry_list_opts *opts, ferry_jsonl_fn fn,
			  void *userdata);

/*
 * Waits until every listed job has ended (done or failed), or until
 * timeout_s seconds passed (timeout_s < 0: no limit). The engine answers
 * when the last job ends: no polling. A job disposed meanwhile counts as
 * ended. Errors: FERRY_ETIMEDOUT, FERRY_ENOJOB (an id is unknown at the
 * start), connection errors.
 */
int ferry_wait(ferry_conn *conn, const ferry_job_id *ids, size_t n, double timeout_s);

/* How many failed jobs struct ferry_wait_all_result names. */
#define FERRY_WAIT_FAILED_IDS 16

/* What ferry_wait_all() found. */
struct ferry_wait_all_result {
	size_t jobs;	    /* jobs the wait took at the call */
	size_t pending;	    /* of those, not ended when it returned (0 unless it timed out) */
	size_t failed;	    /* jobs up to the highest taken that failed meanwhile */
	size_t nfailed_ids; /* how many of failed_ids are set: min(failed, FERRY_WAIT_FAILED_IDS) */
	ferry_job_id failed_ids[FERRY_WAIT_FAILED_IDS]; /* the first that failed, as they ended */
};

/*
 * Waits until every job that had not ended at the call has ended, or
 * until timeout_s seconds passed (timeout_s < 0: no limit): one wait in
 * the engine, woken by the ends of jobs, whatever the database holds.
 * states[0..nstates) names the states a job must be in at the call to be
 * taken (not FERRY_DONE or FERRY_FAILED); states NULL or nstates 0 takes
 * every job the user does not hold or stop: queued_active,
 * system_on_hold, running, system_suspended (a user_on_hold or
 * user_suspended job ends only once the user acts: name its state to wait
 * for it too). A job taken stays waited for whatever its state becomes;
 * jobs submitted after the call are not waited for; a job disposed
 * meanwhile counts as ended. Jobs of a workflow waiting for their
 * dependencies (system_on_hold) are taken, read back into the engine's
 * memory (ferry_wait_workflow() needs none). If the engine restarts during the wait,
 * the new engine takes the jobs not ended then of those the first one
 * named (its ids up to the highest it took), in the states asked for.
 * The call is several requests (one to learn the jobs it takes, then the
 * wait; over ssh one every 10 s; a replay on a restarted engine): each
 * counts the failures the engine recorded since the answer before it
 * (docs/protocol.md, "wait for all jobs"), so a job that failed between
 * two, or while no engine ran, is counted as one that failed during a
 * request is: by its id (up to the highest taken), whatever its state at
 * the call (a held job killed meanwhile counts); one disposed is not.
 * out (may be NULL) gets the counts, also on FERRY_ETIMEDOUT; it is the
 * caller's, nothing in it needs freeing. A job that failed does not make
 * the call fail: out->failed says so.
 * Errors: FERRY_ETIMEDOUT, FERRY_EINVAL (a state that is not one, or an
 *   ended one), FERRY_ENOMEM, connection errors.
 */
int ferry_wait_all(ferry_conn *conn, const enum ferry_job_status *states, size_t nstates,
		   double timeout_s, struct ferry_wait_all_result *out);

/*
 * Workflows (docs/workflows.md): jobs with dependencies, run by the
 * engine. A job runs only after every job it depends on ended done; one
 * whose dependency failed, was killed or disposed of ends without
 * running (failed, exit status aborted, its message naming that job).
 */
typedef int64_t ferry_workflow_id;

/* A workflow's overall state, from its jobs' states. */
enum ferry_workflow_state {
	FERRY_WF_NOT_STARTED = 0,    /* no job started or ended yet */
	FERRY_WF_IN_PROGRESS,	     /* some started or ended, not all ended */
	FERRY_WF_DONE,		     /* every job ended done */
	FERRY_WF_DONE_WITH_FAILURES, /* every job ended, some failed (or were aborted) */
	FERRY_WF_STOPPED,	     /* stopped (ferry_stop_workflow()), not restarted since */
};
/* "not started", "in progress", "done", "done with failures", "stopped"; NULL for another. */
const char *ferry_workflow_state_name(enum ferry_workflow_state s);

/*
 * Submits a workflow, given as the JSON text of a workflow file
 * (docs/workflows.md: "name", "key", "jobs" by local id, "dependencies",
 * "groups", "disposal_timeout_hours", "base_env"), in one request and one
 * transaction of the engine: all its jobs or none, committed before the
 * answer. Text rather than a structure: a workflow is a graph whose
 * jobs are the protocol's job specs, which a structure would repeat
 * field for field; programs (and the CLI, and Python) write the file's
 * form anyway. A job's relative (or absent) working_directory is taken
 * against the caller's current directory, as ferry_submit() takes it.
 * Without a "key", the library makes one, so that its own resend after
 * a lost connection never submits the workflow twice; with one, a
 * workflow already submitted with it is returned (its id), whatever the
 * text says now. *id gets the workflow's id (0 on failure); the text
 * stays the caller's. The whole request must fit in one frame (16 MiB:
 * about 100,000 jobs of short commands; docs/workflows.md, "Size").
 * Errors: FERRY_EINVAL (not JSON, an invalid job spec, an unknown
 *   local id in a dependency or a group, a cycle, a request over the
 *   frame's limit: the message names it), FERRY_ERESOURCE (a job asks
 *   for more than the resource has), FERRY_ENOSPC, connection errors.
 */
int ferry_submit_workflow(ferry_conn *conn, const char *workflow, ferry_workflow_id *id);
/*
 * Same, its jobs starting from base_env ("NAME=value" entries, borrowed;
 * NULL: none), as struct ferry_job_spec's base_env: sent and stored once
 * for all of them, a job's own "base_env" winning. The file may also
 * name a "base_env" of its own: giving both is the error of a member
 * named twice. Errors: as ferry_submit_workflow(); FERRY_EINVAL for an
 * entry that is not NAME=value (the engine also refuses a NAME that is
 * not a shell identifier).
 */
int ferry_submit_workflow_env(ferry_conn *conn, const char *workflow, const char *const *base_env,
			      ferry_workflow_id *id);

/* What ferry_workflow_status() and ferry_workflows() tell of a workflow. */
struct ferry_workflow_info {
	ferry_workflow_id id;
	char *name; /* NULL: none */
	double submitted_at;
	enum ferry_workflow_state state;
	size_t jobs;			 /* its jobs not disposed of */
	size_t counts[FERRY_FAILED + 1]; /* of those, how many in each enum ferry_job_status */
	char *groups; /* its "groups" as JSON text, job ids for local ids (NULL: none; always NULL
			 from ferry_workflows()) */
};

/*
 * The status of workflow id: its counts per state and its overall state,
 * read from the database in one query. *out is the caller's, freed with
 * ferry_workflow_info_free() (NULL on failure).
 * Errors: FERRY_ENOJOB (no such workflow, or all its jobs disposed of
 *   and collected), FERRY_ENOMEM, connection errors.
 */
int ferry_workflow_status(ferry_conn *conn, ferry_workflow_id id, struct ferry_workflow_info **out);
void ferry_workflow_info_free(struct ferry_workflow_info *w);
/*
 * Every workflow of the resource, by id: *list (n of them) is the
 * caller's, freed with ferry_workflows_free().
 * Errors: FERRY_ENOMEM, connection errors.
 */
int ferry_workflows(ferry_conn *conn, struct ferry_workflow_info ***list, size_t *n);
void ferry_workflows_free(struct ferry_workflow_info **list, size_t n);
/*
 * Waits until every job of workflow id has ended (done or failed, aborted
 * ones included), or until timeout_s seconds passed (timeout_s < 0: no
 * limit). One wait in the engine, counted down by each end of one of
 * its jobs: no polling, and no job read back from the database. Jobs a
 * user holds end only once the user acts. A failed job does not make
 * the call fail: ferry_workflow_status() tells.
 * Errors: FERRY_ETIMEDOUT, FERRY_ENOJOB (no such workflow), connection
 *   errors.
 */
int ferry_wait_workflow(ferry_conn *conn, ferry_workflow_id id, double timeout_s);
struct ferry_control_result; /* below, with ferry_control_select() */
/*
 * Stops workflow id (soma-workflow's stop_workflow): every job of it not
 * ended is killed, as ferry_control_workflow() with FERRY_CONTROL_KILL
 * does, so nothing of it starts after the call (a job not started ends
 * at once, failed / killed_by_user, and what is downstream of it
 * aborted; a running one ends when it dies). Its state is
 * FERRY_WF_STOPPED until ferry_restart_workflow(), unless every job ended
 * done anyway. Stopping a workflow whose jobs all ended changes nothing.
 * out (may be NULL) gets the kill's counts, as ferry_control_select()'s.
 * Errors: FERRY_ENOJOB (no such workflow), FERRY_EINVAL (id < 1),
 *   connection errors.
 */
int ferry_stop_workflow(ferry_conn *conn, ferry_workflow_id id, struct ferry_control_result *out);
/*
 * Restarts workflow id (soma-workflow's restart_workflow): its jobs that
 * ended failed (killed and aborted ones too) run again, keeping their
 * ids, each once its dependencies are done; the done ones are kept. A
 * job downstream of one disposed of cannot run again and stays as it
 * is. The jobs' previous end, usage and messages are forgotten (the
 * files they wrote elsewhere stay). All reset in one transaction,
 * committed before the answer. *restarted (may be NULL) gets how many
 * jobs will run again. Each call sends a key of its own: the library's
 * replay after a lost reply gets the first answer, and runs nothing again.
 * Errors: FERRY_ENOJOB (no such workflow), FERRY_ESTATE (jobs of it being
 *   killed, by a stop or a kill, have not ended yet: restart once they have),
 *   FERRY_EINVAL (id < 1), connection errors.
 */
int ferry_restart_workflow(ferry_conn *conn, ferry_workflow_id id, size_t *restarted);
/*
 * Disposes of workflow id: every job of it, as ferry_control_workflow()
 * with FERRY_CONTROL_DISPOSE does (a running one is killed and goes
 * when it ended), and the workflow itself, which ferry_workflow_status()
 * no longer finds (unless a job of it could not be disposed of: out->failed,
 * and the workflow stays). out (may be NULL) gets the counts of the jobs'
 * disposal. Errors: FERRY_ENOJOB (no such workflow; not after a replay
 * of this call), FERRY_EINVAL (id < 1), connection errors.
 */
int ferry_dispose_workflow(ferry_conn *conn, ferry_workflow_id id,
			   struct ferry_control_result *out);
/*
 * Where a soma-workflow SharedResourcePath of namespace ns and uuid lies on
 * the resource: the engine reads, at each call, the translation file the
 * resource's path_translation_files key (ferry.conf(5), soma-workflow's
 * PATH_TRANSLATION_FILES) names for ns, on the engine's host, and answers
 * the translation of uuid there (the rest of its line "UUID TRANSLATION",
 * the last such line when several give it). The caller joins the
 * SharedResourcePath's relative path to it. *path is the caller's, freed
 * with free() (NULL on failure).
 * Errors: FERRY_EINVAL (ns or uuid empty; no path_translation_files
 *   configured; ns has no translation file; no translation of uuid in
 *   it), FERRY_EIO (the translation file cannot be read: missing, not a
 *   regular file, larger than 16 MiB), connection errors.
 */
int ferry_translate_path(ferry_conn *conn, const char *ns, const char *uuid, char **path);

/*
 * The controls below act at once on a job the engine runs itself (the
 * local scheduler). On a cluster (slurm, drmaa) the engine asks the
 * cluster, and the call returns once the cluster answered; other clients
 * are served meanwhile. There they may also fail with the cluster's own
 * refusal: FERRY_EPERM (the cluster lets only its administrators do it,
 * e.g. Slurm's suspend), FERRY_EAGAIN (the cluster's id of the job is
 * not known yet, or the cluster is busy: try again), FERRY_ESTATE (the
 * cluster refused, its message says why), FERRY_EUNSUPPORTED (the
 * backend cannot control started jobs).
 */

/*
 * Stops a job whether or not it started: a queued job becomes
 * user_on_hold (one waiting in system_on_hold, user_system_on_hold), a
 * running one user_suspended (its whole process group stops). Stopping a
 * job the user already held or suspended does nothing.
 * Errors: FERRY_ENOJOB, FERRY_ESTATE (ended), the cluster's (above),
 * connection errors.
 */
int ferry_stop(ferry_conn *conn, ferry_job_id id);
/*
 * Inverse of ferry_stop(). Errors: FERRY_ENOJOB, FERRY_ESTATE, the
 * cluster's (above), connection errors.
 */
int ferry_restart(ferry_conn *conn, ferry_job_id id);
/*
 * Holds a job that has not started. Errors: FERRY_ENOJOB, FERRY_ESTATE,
 * the cluster's (above), connection errors.
 */
int ferry_hold(ferry_conn *conn, ferry_job_id id);
/*
 * Releases a held job; a job not held and not started is left as it is
 * (0). Errors: FERRY_ENOJOB, FERRY_ESTATE (started or ended), the
 * cluster's (above), connection errors.
 */
int ferry_release(ferry_conn *conn, ferry_job_id id);
/*
 * Terminates the job's whole process group (SIGTERM, then SIGKILL after a
 * grace period); the job ends failed / killed_by_user. A job not started
 * yet ends at once; one being handed to a cluster ends once the cluster
 * took it and cancelled it. Killing an ended job does nothing.
 * Errors: FERRY_ENOJOB, the cluster's (above), connection errors.
 */
int ferry_kill(ferry_conn *conn, ferry_job_id id);
/*
 * Kills the job if it is active, then removes its record and its directory
 * (the files it wrote elsewhere stay). Errors: FERRY_ENOJOB, the cluster's
 * (above), connection errors.
 */
int ferry_dispose(ferry_conn *conn, ferry_job_id id);

/*
 * Which jobs a control by selection acts on (ferry_control_select()): the
 * jobs every part given takes (they combine by AND); at least one part
 * must be given. Borrowed: the call copies what it needs.
 */
struct ferry_selection {
	int all; /* 1: every job (alone: all of them) */
	/*
	 * In one of these. NULL or nstates 0: any, but with no ranges
	 * either, a control takes only the jobs not ended (a dispose: any).
	 */
	const enum ferry_job_status *states;
	size_t nstates;
	const char *name; /* a glob on the job's name (fnmatch(3)); NULL: any */
	/* ids from ranges[i][0] to ranges[i][1] (one id: [id, id]); NULL or 0: any */
	const ferry_job_id (*ranges)[2];
	size_t nranges;
	/*
	 * No member may be added: a program built with an older header
	 * passes the struct it knew (ferry_control_workflow() takes a
	 * workflow's jobs).
	 */
};

/* The action of ferry_control_select(): ferry_stop() ... ferry_dispose() on each job. */
enum ferry_control {
	FERRY_CONTROL_STOP = 1,
	FERRY_CONTROL_RESTART,
	FERRY_CONTROL_HOLD,
	FERRY_CONTROL_RELEASE,
	FERRY_CONTROL_KILL,
	FERRY_CONTROL_DISPOSE,
};

/* How many refusals struct ferry_control_result names. */
#define FERRY_CONTROL_ERRORS 16

/* What ferry_control_select() did. */
struct ferry_control_result {
	size_t matched; /* jobs the selection took */
	size_t changed; /* of those, the ones the action changed (or asked the cluster to) */
	size_t failed;	/* of those, the ones it could not be applied to */
	size_t nerrors; /* the first failures (at most FERRY_CONTROL_ERRORS): */
	struct {
		ferry_job_id id;
		int code; /* FERRY_E*: FERRY_ESTATE for a hold of a running job ... */
		char message[256];
	} errors[FERRY_CONTROL_ERRORS];
};

/*
 * Applies action to every job sel takes, in one request the engine
 * commits once: matched - changed - failed jobs had nothing to change (a
 * kill of an ended job, a hold of a held one). A job that refuses the
 * action counts in out->failed and never fails the call; ids that name no
 * job are not matched (no FERRY_ENOJOB). On a cluster, the actions the
 * engine asks of it are counted changed once asked: their outcome shows in
 * the jobs' states (docs/protocol.md, "Selections"). out (filled on
 * success) is the caller's. Errors: FERRY_EINVAL (no part given, an
 * unknown state or action, a range with first > last or an id < 1),
 * connection errors.
 */
int ferry_control_select(ferry_conn *conn, const struct ferry_selection *sel,
			 enum ferry_control action, struct ferry_control_result *out);

/*
 * ferry_control_select() of the jobs of workflow wf (ferry_workflow_id,
 * > 0) that sel also takes; sel NULL: every job of wf. Ids of no job of
 * wf are not matched. A workflow that does not exist matches nothing.
 * Errors: as ferry_control_select(); FERRY_EINVAL for wf < 1.
 */
int ferry_control_workflow(ferry_conn *conn, int64_t wf, const struct ferry_selection *sel,
			   enum ferry_control action, struct ferry_control_result *out);

enum ferry_stream { FERRY_STDOUT = 1, FERRY_STDERR = 2 };

/*
 * Reads up to cap bytes of a job's stdout or stderr starting at offset,
 * also while the job runs. *got receives the count (0 at the current end).
 * *ended (may be NULL) is set to 1 when the job has ended, so that a read
 * of 0 bytes means the end of the stream.
 * Errors: FERRY_ENOJOB, FERRY_EIO (the file cannot be read), FERRY_EINVAL.
 */
int ferry_read_output(ferry_conn *conn, ferry_job_id id, enum ferry_stream stream, uint64_t offset,
		      void *buf, size_t cap, size_t *got, int *ended);

/*
 * Opens a job's stdout or stderr file for reading by this process, on a
 * resource of this host: the bytes ferry_read_output() gives (from offset
 * 0), read at the speed of the file system rather than through the
 * engine. *fd gets a read-only, close-on-exec descriptor of the file,
 * which the caller closes, or -1 when the job has written nothing yet
 * (no file: ask again later). The job may still be writing it: read to
 * its end, and once *ended (may be NULL; set before the file was opened)
 * is 1, that end is the end of the stream. The file is opened with the
 * caller's own permissions, and only if it is the file the engine sees.
 * Errors: FERRY_EUNSUPPORTED (a remote resource, or this process sees
 *   another file at that path than the engine: use ferry_read_output()),
 *   FERRY_ENOJOB, FERRY_EINVAL (an invalid stream, or stderr of a job that
 *   joined it to stdout), FERRY_EIO (the file cannot be opened),
 *   connection errors.
 */
int ferry_open_output(ferry_conn *conn, ferry_job_id id, enum ferry_stream stream, int *fd,
		      int *ended);

/*
 * Successive lines of the job's stdout (stderr), the connection
 * remembering where the last call stopped, also while the job runs.
 * *line receives a malloc'd NUL-terminated line without its newline; free
 * it with free(). A last line without a newline is returned once the job
 * ended. Errors: FERRY_EAGAIN when no complete line is there yet and the
 * job is still active, FERRY_EEOF once the job ended and all was read,
 * FERRY_ENOMEM, and those of ferry_read_output().
 */
int ferry_stdout_readline(ferry_conn *conn, ferry_job_id id, char **line);
int ferry_stderr_readline(ferry_conn *conn, ferry_job_id id, char **line);

/*
 * Bounds the time one call may spend regaining a lost engine: reconnecting,
 * starting a new engine, and sending the request again (default 120 s; 0:
 * give up at the first loss). A call that runs out of it fails with
 * FERRY_EDISCONNECTED and a message saying what failed last; it never
 * hangs. The time a wait itself lasts is not counted. Errors: FERRY_EINVAL
 * for a negative or non-finite value.
 */
int ferry_set_timeout(ferry_conn *conn, double seconds);

/*
 * Round trip to the engine (for health checks and benchmarks). The engine
 * always answers it. Errors: FERRY_ENOMEM, connection errors.
 */
int ferry_ping(ferry_conn *conn);

/*
 * File transfers (docs/transfers.md). A transfer is a file, a directory
 * tree or a set of files on the engine's host, under its transfer root,
 * named by the server path the engine gives. Jobs name server paths in
 * referenced_input_files (a job waits, system_on_hold, until they are
 * ready) and referenced_output_files (retrievable once the job ended).
 * Data moves inside the connection in chunks, each file checked end to end
 * with its XXH3-128 checksum; an interrupted send or retrieve resumes where
 * it stopped on the next call with the same paths.
 */

/* How a transfer was made. */
enum ferry_transfer_kind {
	FERRY_TRANSFER_SEND = 0, /* "send": ferry_send_file(), ferry_send_files() */
	FERRY_TRANSFER_REGISTER, /* "register": ferry_register_transfer() */
};

/*
 * Where a transfer stands (docs/transfers.md, "States"). A send goes from
 * transferring to ready, a registered output from registered to produced;
 * either becomes retrieved once a client downloaded it.
 */
enum ferry_transfer_state {
	FERRY_TRANSFER_TRANSFERRING = 0, /* a send whose files are still arriving */
	FERRY_TRANSFER_READY,		 /* a send complete and checked: jobs may use it */
	FERRY_TRANSFER_REGISTERED,	 /* an output no job has produced yet */
	FERRY_TRANSFER_PRODUCED,	 /* an output that exists once every job naming it ended */
	FERRY_TRANSFER_RETRIEVED,	 /* downloaded by a client at least once */
};

/* Static: "send" or "register". Errors: NULL for an out-of-range value. */
const char *ferry_transfer_kind_name(enum ferry_transfer_kind k);
/* Static: "transferring", "ready", ... Errors: NULL for an out-of-range value. */
const char *ferry_transfer_state_name(enum ferry_transfer_state s);
/* Parses a kind name into *out. Errors: FERRY_EINVAL (name NULL or no kind's name). */
int ferry_transfer_kind_from_name(const char *name, enum ferry_transfer_kind *out);
/* Parses a state name into *out. Errors: FERRY_EINVAL (name NULL or no state's name). */
int ferry_transfer_state_from_name(const char *name, enum ferry_transfer_state *out);

/* What the engine knows of a transfer. Allocated by the library. */
struct ferry_transfer_info {
	char *server_path;
	char **local_paths; /* NULL-terminated: the client paths it was sent or registered from */
	enum ferry_transfer_kind kind;
	enum ferry_transfer_state state;
	int64_t size;	  /* bytes of its files (as known: a registered output's once scanned) */
	int64_t done;	  /* bytes on the server now */
	int64_t received; /* bytes received through connections, re-sends included */
	/* XXH3-128 in hex: the file's, or a data set's (docs/transfers.md); NULL until known */
	char *hash;
	double created_at, ended_at, deadline; /* ended_at 0: not ready yet */
	int disposal_hours;
	ferry_job_id *jobs; /* jobs that name it (inputs and outputs) */
	size_t njobs;
	char *message; /* may be NULL */
};

/*
 * Sends a file or a directory tree (recursively, keeping modes and mtimes;
 * symbolic links are refused) to the engine's host and returns once it is
 * there and verified. *server_path receives the path to use in jobs (free
 * it with free()); it keeps local_path's base name. disposal_hours: how
 * long the copy stays after it is complete (0: 168). Sending the same
 * unchanged path again resumes an interrupted send, or returns the same
 * transfer when complete. A file of a pseudo-file system (/proc, /sys) is
 * read until EOF, whatever its size says, and what that gave is sent; the
 * holes of a sparse file are kept. Errors: FERRY_EINVAL (no such local
 * file, a link, a bad name, pseudo-files over 64 MiB, a stream whose read
 * would wait), FERRY_EIO (a read or write failed, the file changed while
 * it was read or sent, a checksum did not match: the bad copy was
 * discarded; the engine's database's disk is full), FERRY_ERESOURCE (the
 * files do not fit on the engine's disk with the room it keeps: refused
 * before anything is written), connection errors.
 */
int ferry_send_file(ferry_conn *conn, const char *local_path, int disposal_hours,
		    char **server_path);
/*
 * Sends several files (e.g. an image and its header) as one transfer: they
 * land side by side, *server_path names the first. Their base names must
 * differ. Errors as ferry_send_file().
 */
int ferry_send_files(ferry_conn *conn, const char *const *local_paths, size_t n, int disposal_hours,
		     char **server_path);
/*
 * Registers an output to fetch later: *server_path (free()) is where a
 * job should write it (a file or a directory), under local_path's base
 * name. Errors: FERRY_EINVAL, FERRY_EIO (the engine's disk is full),
 * connection errors.
 */
int ferry_register_transfer(ferry_conn *conn, const char *local_path, int disposal_hours,
			    char **server_path);

#define FERRY_OVERWRITE 1u /* ferry_retrieve_file_to: replace an existing destination */

/*
 * Downloads a transfer to the local path it was sent or registered with,
 * replacing what is there (that path is the transfer's own). Written to a
 * temporary name beside it, checked, fsynced and renamed: a partial file
 * never replaces a complete one; holes of a sparse file are kept. Errors:
 * FERRY_ENOJOB (no such transfer), FERRY_ESTATE (an output no job produced,
 * or one that a job that has not ended yet produces, or a send still
 * arriving: the message says which job is in which state; nothing is
 * written), FERRY_EIO (checksum mismatch, local write error),
 * FERRY_EUNSUPPORTED (a link in an output), FERRY_EINVAL (server_path is
 * a path inside a transfer, not the transfer's own: the message names
 * that one), connection errors.
 */
int ferry_retrieve_file(ferry_conn *conn, const char *server_path);
/*
 * Same, to dest; an existing dest is replaced only with FERRY_OVERWRITE in
 * flags. A transfer of several files goes into dest as a directory.
 * Errors: as ferry_retrieve_file(), and FERRY_EINVAL (dest NULL, or dest
 * exists and flags lack FERRY_OVERWRITE).
 */
int ferry_retrieve_file_to(ferry_conn *conn, const char *server_path, const char *dest,
			   unsigned flags);

/*
 * Progress of a send or a retrieve: done is the number of bytes of the
 * transfer's files at the destination so far, total the bytes of all its
 * files (directories count 0).
 */
typedef void (*ferry_progress_fn)(void *userdata, int64_t done, int64_t total);

/*
 * Sets the function that ferry_send_file(), ferry_send_files(),
 * ferry_retrieve_file() and ferry_retrieve_file_to() call on conn as bytes
 * move; fn NULL (the default) calls nothing. It is called on the thread
 * that made the transfer call, before that call returns: first once the
 * files are listed (done > 0 when an interrupted transfer resumes), then
 * after each chunk (at most 4 MiB), done never decreasing, and last with
 * done == total once every byte moved (the checks that follow may still
 * fail the call). Hashing a send's files before they move is not counted.
 * fn must return promptly and must not call libferry on conn: the
 * connection may be locked meanwhile. userdata is handed to fn as given;
 * the library never reads or frees it. The setting holds for every thread
 * using conn until changed. Returns 0. Errors: none.
 */
int ferry_set_progress(ferry_conn *conn, ferry_progress_fn fn, void *userdata);

#define FERRY_FORCE 1u /* ferry_cancel_transfer: also when unfinished jobs name it */

/*
 * Removes a transfer's files and record at once. Refused (FERRY_ESTATE)
 * while an unfinished job names it, unless flags has FERRY_FORCE; jobs
 * still waiting for it as an input then end aborted. Errors: FERRY_ENOJOB,
 * FERRY_ESTATE, FERRY_EINVAL (a path inside a transfer, as for
 * ferry_retrieve_file()), connection errors.
 */
int ferry_cancel_transfer(ferry_conn *conn, const char *server_path, unsigned flags);

/*
 * *info receives the record of the transfer server_path names (itself or
 * a path inside it); free it with ferry_transfer_info_free().
 * Errors: FERRY_EINVAL (server_path NULL, not under the transfer root, or
 *   with a bad component), FERRY_ENOJOB (no transfer there), FERRY_ENOMEM,
 *   FERRY_EINTERNAL (the engine's database failed), FERRY_EIO (the
 *   engine's transfer root is not usable), connection errors.
 */
int ferry_transfer_info(ferry_conn *conn, const char *server_path,
			struct ferry_transfer_info **info);
/*
 * Every transfer of the resource: *n records in *list; free them with
 * ferry_transfer_list_free(). Errors: FERRY_ENOMEM, FERRY_EINTERNAL (the
 * engine's database failed), FERRY_EIO (the engine's transfer root is not
 * usable), connection errors.
 */
int ferry_transfers(ferry_conn *conn, struct ferry_transfer_info ***list, size_t *n);
/* Free a record, and a list of n; NULL is a no-op. Errors: none. */
void ferry_transfer_info_free(struct ferry_transfer_info *info);
void ferry_transfer_list_free(struct ferry_transfer_info **list, size_t n);

/*
 * Asks the engine to exit. Jobs keep running under the job runner and are
 * re-adopted by the next engine. Errors: connection errors.
 */
int ferry_shutdown_engine(ferry_conn *conn);

/*
 * Tells whether the engine of a resource is running, without starting it.
 * Returns 1 (running; *pid, if not NULL, receives its pid), 0 (not
 * running) or a negative error. For a remote resource it asks `ferry
 * bridge --no-start` on the host over ssh (*pid is then a pid on that
 * host). Errors: FERRY_ECONFIG (an unknown resource, or no state
 * directory); for a remote resource also those of ferry_connect().
 */
int ferry_engine_running(const char *resource_id, const char *config_file, long *pid);

/*
 * Same, and on failure writes the detailed message (what ferry_errmsg()
 * would say) to msg (msglen bytes, NUL-terminated; msg may be NULL); when
 * the engine runs, msg gets its warnings instead (ferry_engine_warnings(),
 * from a hello that starts no engine), empty when it has none.
 * Errors: as ferry_engine_running().
 */
int ferry_engine_status(const char *resource_id, const char *config_file, long *pid, char *msg,
			size_t msglen);

/* Resource name this connection is bound to ("local", ...). Owned by conn. Errors: none. */
const char *ferry_resource(const ferry_conn *conn);

/*
 * 1 when the connection's resource has a host (its engine runs there,
 * reached over ssh), 0 when its engine runs on this host. What decides
 * whether a caller's own environment means anything to the resource's
 * jobs (struct ferry_job_spec's base_env). Errors: none.
 */
int ferry_is_remote(const ferry_conn *conn);

/*
 * What the engine warned of when this connection last said hello (for
 * instance that its database had lost jobs), one warning a line, copied
 * to buf (len bytes, NUL-terminated, cut short when it does not fit; buf
 * may be NULL when len is 0). Returns the length of the whole text: 0
 * when there is no warning, or before the first call that reached the
 * engine (ferry_ping() reaches it). Errors: none.
 */
int ferry_engine_warnings(ferry_conn *conn, char *buf, size_t len);

/*
 * The home directory of the engine's user as its jobs see it ($HOME of
 * the engine, which they inherit; on a remote resource that host's),
 * as the engine told it when this connection last said hello, copied to
 * buf as ferry_engine_warnings() copies. Returns its length: 0 before
 * the first call that reached the engine, or from an engine that does
 * not tell it. Errors: none.
 */
int ferry_engine_home(ferry_conn *conn, char *buf, size_t len);

#ifdef __cplusplus
}
#endif
#endif /* FERRY_H */
