/*
 * environ.c - the submitter's environment, which `ferry submit` and
 * `ferry workflow submit` give their jobs as sbatch's --export=ALL does
 * (docs/architecture.md, "The job's environment"): this process's
 * environment, less what belongs to its session alone, when the engine
 * runs on this host; nothing for a remote resource, whose jobs would get
 * the laptop's PATH and HOME.
 */
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "util.h"

extern char **environ;

/*
 * Names never carried (ferry(1), "ENVIRONMENT OF A JOB"), a trailing '*'
 * for a prefix: what the login session, the shell or ferry set for this
 * process and would be wrong in a job that runs later, elsewhere, or in
 * a DRMS's own allocation. Besides these, what the engine refuses in a
 * base_env (ferry__env_entry_check: FERRY_*, SLURM_*, SGE_*, JOB_ID).
 */
static const char *const session[] = {
    "SSH_*",
    "DISPLAY",
    "XAUTHORITY",
    "WAYLAND_DISPLAY",
    "XDG_RUNTIME_DIR",
    "XDG_SESSION_*",
    "DBUS_SESSION_BUS_ADDRESS",
    /* the rest of a Grid Engine job's own, from a submit inside one */
    "JOB_NAME",
    "JOB_SCRIPT",
    "NHOSTS",
    "NQUEUES",
    "NSLOTS",
    "PE_HOSTFILE",
    "RESTARTED",
    "PWD",
    "OLDPWD",
    "SHLVL",
    "_",
};

/* Whether entry s ("NAME=value") is carried. */
int ferry__cli_env_carried(const char *s)
{
	const char *eq = strchr(s, '=');
	size_t n = eq ? (size_t)(eq - s) : 0;

	/*
	 * Not a name (bash's exported functions, BASH_FUNC_f%%: no variable a
	 * job's exec takes) or one the engine would refuse: left out, not a
	 * submit refused for what the shell happens to hold.
	 */
	if (ferry__env_entry_check(s, "base_env", 0, 1, NULL, 0))
		return 0;
	for (size_t i = 0; i < sizeof(session) / sizeof(session[0]); i++) {
		size_t k = strlen(session[i]);
		if (session[i][k - 1] == '*' ? !strncmp(s, session[i], k - 1)
					     : k == n && !strncmp(s, session[i], n))
			return 0;
	}
	return 1;
}

int ferry__cli_base_env(const struct ctx *c, int clean, const char ***env)
{
	size_t n = 0, k = 0;
	const char **v;

	*env = NULL;
	if (clean || ferry_is_remote(c->conn))
		return CLI_OK;
	while (environ[n])
		n++;
	if (!(v = calloc(n + 1, sizeof(*v))))
		return ferry__cli_out_of_memory(c);
	for (size_t i = 0; i < n; i++)
		if (ferry__cli_env_carried(environ[i]))
			v[k++] = environ[i];
	*env = v;
	return CLI_OK;
}
