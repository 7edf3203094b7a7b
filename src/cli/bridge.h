/* bridge.h - `ferry bridge`: this host's engine on stdin/stdout. */
#ifndef FERRY_CLI_BRIDGE_H
#define FERRY_CLI_BRIDGE_H

#include <stddef.h>

/*
 * Starts the engine of the resource if needed (with the engine settings
 * "KEY=VALUE" a remote client sent, NULL-terminated, may be NULL), connects
 * to its socket and hands it stdin and stdout (adopt), or, when the engine
 * cannot take them, copies bytes both ways, until either side ends. The
 * bytes are frames of docs/protocol.md, which the engine checks. With
 * start 0, an engine that is not running is not started (FERRY_ECONNECT).
 * Returns 0, or a FERRY_E* code with err set (FERRY_ECONFIG and
 * FERRY_EUNSUPPORTED for the configuration); nothing is written to stdout
 * on error.
 */
int ferry__bridge(const char *resource, const char *config, const char *const *sets, int start,
		  char *err, size_t errlen);

#endif
