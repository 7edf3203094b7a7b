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
 * FERRY_ECONNECT or FERRY_ENOMEM with err set. *refused: it said why it
 * cannot start (its database, its state directory, its configuration),
 * which another try would only say again.
 */
int ferry__start_engine(const char *resource, const char *config, const char *const *sets,
			int *refused, char *err, size_t errlen);

/*
 * What a caller keeps between its attempts to reach an engine, so that
 * engines that die while starting are started less and less often
 * (zeroed at first; may be NULL).
 */
struct ferry_start_state {
	int refused;	   /* out: the engine said why it cannot start; not worth a retry */
	double died_pause; /* the wait after an engine that died while starting */
};

/*
 * Connects to the engine's socket, starting the engine when none listens,
 * retrying for budget_s seconds (budget_s < 0: never start it, fail with
 * FERRY_ECONNECT). A start waits as long as the engine started, or the
 * one found holding its lock, loads its jobs (ferryd returns once one
 * listens, main.c), and is followed by one more try past the budget.
 * 0 with *fd set (CLOEXEC), or a FERRY_E* code with err set: FERRY_EPERM,
 * before anything is sent, when the state directory is not this user's
 * own (ferry__check_own_dir) or the engine on the socket runs
 * as another user. ss->refused, with FERRY_ECONNECT: the engine said why it
 * cannot start (ferry__start_engine). An engine that died while starting
 * is started again after ss->died_pause, which doubles from 50 ms to 5 s.
 */
int ferry__engine_connect(const char *resource, const char *config, const char *const *sets,
			  double budget_s, int *fd, struct ferry_start_state *ss, char *err,
			  size_t errlen);

#endif
