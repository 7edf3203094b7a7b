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
	char *host;
	int port;
	char *login;
	char *queue;
	char *transfer_root;
	char *remote_command;
	char *ssh_options;
	char *drmaa_library;
	double poll_interval; /* seconds; 0: backend default */
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
 * Whether this build can serve the resource as configured: 0, or -1 with
 * err naming what is not supported (a remote host, a cluster scheduler, or
 * a key that only such resources use: none is ever silently ignored).
 */
int ferry__resource_supported(const struct ferry_resource_cfg *r, char *err, size_t errlen);

#endif
