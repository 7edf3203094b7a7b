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

extern char **environ;

/*
 * Names never carried (ferry(1), "ENVIRONMENT OF A JOB"), a trailing '*'
 * for a prefix: what the login session, the shell or ferry set for this
 * process and would be wrong in a job that runs later, elsewhere, or in
 * a DRMS's own allocation.
 */
static const char *const session[] = {
    "SSH_*",
    "DISPLAY",
    "XAUTHORITY",
    "WAYLAND_DISPLAY",
    "XDG_RUNTIME_DIR",
    "XDG_SESSION_*",
    "DBUS_SESSION_BUS_ADDRESS",
    "FERRY_*",
    "SLURM_*",
    "PWD",
    "OLDPWD",
    "SHLVL",
    "_",
};

static int is_identifier(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (!(s[i] == '_' || (s[i] >= 'A' && s[i] <= 'Z') || (s[i] >= 'a' && s[i] <= 'z') ||
		      (i > 0 && s[i] >= '0' && s[i] <= '9')))
			return 0;
	return n > 0;
}

/* Whether entry s ("NAME=value") is carried. */
int ferry__cli_env_carried(const char *s)
{
	const char *eq = strchr(s, '=');
	size_t n = eq ? (size_t)(eq - s) : 0;

	/* bash's exported functions (BASH_FUNC_f%%) are no variable a job's exec takes */
	if (!is_identifier(s, n))
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
