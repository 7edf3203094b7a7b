/* start.h - reaching (and starting) this host's engine of a resource. */
#ifndef FERRY_START_H
#define FERRY_START_H

#include <stddef.h>

/*
 * Path of a helper program: $envvar when set, else `name` beside the
 * running executable, else `installed` when it exists, else `name` for a
 * PATH search. malloc'd; NULL on ENOMEM.
 */
char *ferry__find_program(const char *envvar, const char *name, const char *installed);

/*
 * Starts ferryd for resource (with config, may be NULL, and engine
 * settings, NULL-terminated, may be NULL) and returns once it listens or
 * failed. 0; FERRY_EAGAIN when it died while starting (worth another try);
 * FERRY_ECONNECT or FERRY_ENOMEM with err set.
 */
int ferry__start_engine(const char *resource, const char *config, const char *const *sets,
			char *err, size_t errlen);

/*
 * Connects to the engine's socket, starting the engine when none listens,
 * for at most budget_s seconds (budget_s < 0: never start it, fail with
 * FERRY_ECONNECT). 0 with *fd set (CLOEXEC), or a FERRY_E* code with err set.
 */
int ferry__engine_connect(const char *resource, const char *config, const char *const *sets,
			  double budget_s, int *fd, char *err, size_t errlen);

#endif
