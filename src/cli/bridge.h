/* bridge.h - `ferry bridge`: this host's engine on stdin/stdout. */
#ifndef FERRY_CLI_BRIDGE_H
#define FERRY_CLI_BRIDGE_H

#include <stddef.h>

/*
 * Starts the engine of the resource if needed, connects to its socket and
 * copies bytes both ways between it and stdin/stdout until either side
 * ends. The bytes are frames of docs/protocol.md, which the engine checks.
 * Returns 0, or -1 with err set; nothing is written to stdout on error.
 */
int ferry__bridge(const char *resource, const char *config, char *err, size_t errlen);

#endif
