/*
 * table.c - which backend serves which `scheduler`. A new cluster type is
 * one file in this directory and one line here.
 */
#include <string.h>

#include "engine.h"
#include "util.h"

static const struct ferry_backend *const backends[] = {
    &ferry__backend_local,
    &ferry__backend_slurm,
    &ferry__backend_drmaa,
};

const struct ferry_backend *ferry__backend_find(const char *scheduler)
{
	for (size_t i = 0; i < FERRY_ARRAY_SIZE(backends); i++)
		if (!strcmp(backends[i]->name, scheduler))
			return backends[i];
	return NULL;
}
