/*
 * drmaa-lib.c - loading a DRMAA v1 library and opening its session, and
 * reading what drmaa_wait says of an ended job (drmaa-lib.h). The
 * functions of the library are called on whichever thread calls these:
 * the engine's at startup, its worker's afterwards.
 */
#include <ctype.h>
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "drmaa-acct.h"
#include "drmaa-lib.h"
#include "ferry.h"
#include "util.h"

#define TLS_TUNABLE "glibc.rtld.optional_static_tls=4096"
#define REEXEC_MARK "FERRYD_DRMAA_REEXEC"

const char *ferry__drmaa_trim(char *s)
{
	size_t n = strlen(s);

	while (n > 0 && isspace((unsigned char)s[n - 1]))
		s[--n] = '\0';
	return s;
}

/*
 * A DRMAA library may need static TLS that glibc gives a dlopen only when
 * told at exec time (Grid Engine's links jemalloc); the tunable cannot be
 * set later, so ferryd runs itself again with it. The mark lets the new
 * image drop both before any job inherits them.
 */
void ferry__drmaa_pre_exec(char **argv)
{
	const char *old = getenv("GLIBC_TUNABLES");
	char *val, self[4096];

	if (getenv(REEXEC_MARK) || (old && strstr(old, "optional_static_tls")))
		return;
	val = old && *old ? ferry__asprintf("%s:%s", old, TLS_TUNABLE) : strdup(TLS_TUNABLE);
	if (!val || setenv("GLIBC_TUNABLES", val, 1) || setenv(REEXEC_MARK, old ? old : "", 1)) {
		free(val);
		return;
	}
	free(val);
	/* by its own name: exec of /proc/self/exe would make the process "exe" */
	ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
	if (n > 0) {
		self[n] = '\0';
		execv(self, argv);
	}
	/* still here: go on without it; dlopen says what is wrong */
	unsetenv(REEXEC_MARK);
	if (old)
		setenv("GLIBC_TUNABLES", old, 1);
	else
		unsetenv("GLIBC_TUNABLES");
}

/* Puts back the environment ferryd was started with (after the re-exec). */
static void undo_reexec(void)
{
	const char *old = getenv(REEXEC_MARK);

	if (!old)
		return;
	if (*old)
		setenv("GLIBC_TUNABLES", old, 1);
	else
		unsetenv("GLIBC_TUNABLES");
	unsetenv(REEXEC_MARK);
}

static int load_symbols(struct drmaa_lib *lib, char *err, size_t errlen)
{
#define RESOLVE(name, ret, args)                                                                   \
	if (!(*(void **)&lib->f.name = dlsym(lib->dl, "drmaa_" #name))) {                          \
		snprintf(err, errlen, "'%s' is not a DRMAA v1 library: it has no 'drmaa_%s'",      \
			 lib->path, #name);                                                        \
		return -1;                                                                         \
	}
	DRMAA_FUNCS(RESOLVE)
#undef RESOLVE
	return 0;
}

/* dlopen of the configured library, else of the usual names; err names each path tried. */
static int load_library(struct drmaa_lib *lib, const struct ferry_resource_cfg *cfg, char *err,
			size_t errlen)
{
	static const char *const names[] = {"libdrmaa.so.1", "libdrmaa.so", "libdrmaa.so.1.0"};
	const char *given = cfg->drmaa_library ?: getenv("DRMAA_LIBRARY_PATH");
	size_t off = 0;

	for (size_t i = 0; i < (given ? 1 : FERRY_ARRAY_SIZE(names)); i++) {
		const char *p = given ? given : names[i];
		if ((lib->dl = dlopen(p, RTLD_NOW | RTLD_GLOBAL))) {
			lib->path = strdup(p);
			return lib->path ? 0 : -1;
		}
		off += (size_t)snprintf(err + off, off < errlen ? errlen - off : 0, "%s%s",
					off ? "; " : "cannot load the DRMAA library: ", dlerror());
	}
	if (!given)
		snprintf(err + off, off < errlen ? errlen - off : 0,
			 " (set drmaa_library in the resource, or DRMAA_LIBRARY_PATH)");
	return -1;
}

/* What the DRM is, and whether its library takes a walltime attribute. */
static void learn_drm(struct drmaa_lib *lib)
{
	char diag[DIAG] = "", name[256];
	names_t *attrs = NULL;

	if (lib->f.get_DRM_system(lib->drm, sizeof(lib->drm), diag, sizeof(diag)) != E_SUCCESS)
		snprintf(lib->drm, sizeof(lib->drm), "unknown");
	lib->sge = !strncmp(lib->drm, "SGE", 3) || strstr(lib->drm, "Grid Engine") ||
		   !strncmp(lib->drm, "OGS", 3) || !strncmp(lib->drm, "UGE", 3);
	if (lib->f.get_attribute_names(&attrs, diag, sizeof(diag)) == E_SUCCESS) {
		while (lib->f.get_next_attr_name(attrs, name, sizeof(name)) == E_SUCCESS)
			lib->wct |= !strcmp(name, "drmaa_wct_hlimit");
		lib->f.release_attr_names(attrs);
	}
}

int ferry__drmaa_lib_open(struct drmaa_lib *lib, const struct ferry_resource_cfg *cfg, char *err,
			  size_t errlen)
{
	char diag[DIAG] = "";
	int rc;

	undo_reexec();
	if (load_library(lib, cfg, err, errlen) < 0 || load_symbols(lib, err, errlen) < 0) {
		rc = FERRY_ECONFIG;
	} else if ((rc = lib->f.init(NULL, diag, sizeof(diag))) != E_SUCCESS) {
		snprintf(err, errlen, "drmaa_init of '%s' failed: %s", lib->path,
			 ferry__drmaa_trim(diag));
		rc = rc == E_DRM_COMMUNICATION_FAILURE ? FERRY_ECONNECT : FERRY_ECONFIG;
	} else {
		learn_drm(lib);
		return 0;
	}
	/* the library stays loaded: its atexit handlers may still run */
	free(lib->path);
	lib->path = NULL;
	return rc;
}

void ferry__drmaa_lib_close(struct drmaa_lib *lib)
{
	char diag[DIAG];

	lib->f.exit(diag, sizeof(diag));
	free(lib->path);
	lib->path = NULL;
}

/* What drmaa_wait said (rc, stat, rusage) of an ended job of this session. */
void ferry__drmaa_decode(const struct drmaa_lib *lib, int rc, int stat, values_t *ru,
			 struct job_result *res)
{
	char diag[DIAG], sig[64] = "", v[256];
	int exited = 0, code = 0, signaled = 0, aborted = 0;

	ferry__drmaa_result_init(res);
	while (ru && lib->f.get_next_attr_value(ru, v, sizeof(v)) == E_SUCCESS)
		ferry__drmaa_rusage(v, res);
	if (rc == E_NO_RUSAGE) {
		res->exit_status = FERRY_ABORTED;
		snprintf(res->message, sizeof(res->message), "removed from the DRM before it ran");
		return;
	}
	lib->f.wifexited(&exited, stat, diag, sizeof(diag));
	lib->f.wifsignaled(&signaled, stat, diag, sizeof(diag));
	lib->f.wifaborted(&aborted, stat, diag, sizeof(diag));
	if (exited) {
		lib->f.wexitstatus(&code, stat, diag, sizeof(diag));
		res->exit_status = FERRY_FINISHED_REGULARLY;
		res->exit_value = code;
	} else if (signaled) {
		lib->f.wtermsig(sig, sizeof(sig), stat, diag, sizeof(diag));
		res->exit_status = FERRY_FINISHED_SIGNAL;
		res->signal = ferry__drmaa_signal_number(sig);
	} else if (aborted) {
		res->exit_status = FERRY_ABORTED;
		snprintf(res->message, sizeof(res->message), "the DRM ended the job (aborted)");
	} else {
		res->exit_status = FERRY_FINISHED_UNCLEAR_CONDITION;
		snprintf(res->message, sizeof(res->message), "DRMAA tells no exit status");
	}
}
