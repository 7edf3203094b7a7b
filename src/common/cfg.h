/* cfg.h - the INI configuration file (parsed with inih). */
#ifndef FERRY_CFG_H
#define FERRY_CFG_H

#include <stddef.h>
#include <stdint.h>

/* One resource section. Strings are malloc'd, NULL when absent. */
struct ferry_resource_cfg {
	char *name;
	char *scheduler; /* "local" (default), "slurm", "drmaa" */
	int slots;	 /* local: 0 means every core */
	int max_running; /* local: jobs started at once at most; 0: no bound */
	int max_queued;	 /* DRMS: jobs handed and not ended at once at most; 0: no bound */
	char *host;
	int port;
	char *login;
	char *queue;
	char *transfer_root;
	char *remote_command;
	char *ssh_options;
	char *drmaa_library;
	char *mpi_pe;  /* Grid Engine's parallel environment for MPI jobs; NULL: none */
	char *job_dir; /* the job directories, on storage the nodes see; NULL: the state dir's */
	double poll_interval; /* seconds; 0: backend default */
	/*
	 * soma-workflow's PATH_TRANSLATION_FILES: "NAMESPACE{/file} ...", checked,
	 * one blank between tokens; NULL: none. The engine reads the files.
	 */
	char *path_translation_files;
};

struct ferry_cfg {
	struct ferry_resource_cfg *res;
	int nres;
};

/*
 * Parses the file at path (or, with text != NULL, that text; path then
 * only names it in messages). Unknown sections' keys, bad values and
 * syntax errors fail with a message "FILE:LINE: ..." in err (size errlen).
 * Returns 0 or -1.
 */
int ferry__cfg_parse(const char *path, const char *text, struct ferry_cfg *cfg, char *err,
		     size_t errlen);
void ferry__cfg_release(struct ferry_cfg *cfg);

/*
 * Resolves a resource: loads config_file (or the default path; a missing
 * default file is fine for "local"), finds the section, fills *out (a copy
 * the caller releases with ferry__resource_cfg_release). "local" without a
 * section is the embedded default. 0, or -1 with err set.
 */
int ferry__resolve_resource(const char *config_file, const char *resource,
			    struct ferry_resource_cfg *out, char *err, size_t errlen);
void ferry__resource_cfg_release(struct ferry_resource_cfg *r);

/*
 * Same, then applies engine settings "KEY=VALUE" (sets, NULL-terminated,
 * may be NULL) over the section: what a remote client's configuration says
 * of the engine it reaches (scheduler, slots, max_running, max_queued,
 * queue, transfer_root, poll_interval, drmaa_library, mpi_pe,
 * path_translation_files, job_dir).
 * With sets != NULL (even empty), the
 * resource needs no section of its own on this host: the client defines it.
 */
int ferry__resolve_resource_set(const char *config_file, const char *resource,
				const char *const *sets, struct ferry_resource_cfg *out, char *err,
				size_t errlen);

/*
 * The translation file that value (a resource's path_translation_files, as
 * stored) names for namespace ns: malloc'd in *file, NULL when it names
 * none. 0, or -1 (ENOMEM).
 */
int ferry__cfg_translation_file(const char *value, const char *ns, char **file);

/* Applies one engine setting "KEY=VALUE" to r. 0, or -1 with err set. */
int ferry__cfg_set(struct ferry_resource_cfg *r, const char *assignment, char *err, size_t errlen);

/*
 * The engine settings r gives explicitly, as a NULL-terminated array of
 * "KEY=VALUE" (free with ferry__strv_free); NULL on ENOMEM.
 */
char **ferry__cfg_engine_settings(const struct ferry_resource_cfg *r);

/*
 * Whether an engine configured as r agrees with the settings a client
 * expects: 0, or -1 with err saying which key differs and how to change it.
 */
int ferry__cfg_check_settings(const struct ferry_resource_cfg *r, const char *const *sets,
			      char *err, size_t errlen);

/*
 * Whether this build can serve the resource as configured: 0, or -1 with
 * err naming what is not supported (a remote host, a cluster scheduler, or
 * a key that only such resources use: none is ever silently ignored).
 */
int ferry__resource_supported(const struct ferry_resource_cfg *r, char *err, size_t errlen);

#endif
