/*
 * names.c - names of error codes, job states, exit statuses and the kinds
 * and states of transfers: one table per enum, indexed by its value, so
 * that the library, the engine and the CLI spell them alike (they are
 * also the protocol's strings).
 */
#include <string.h>

#include "ferry.h"

#define FERRY_EXPORT __attribute__((visibility("default")))

static const char *const status_names[] = {
    "undetermined",	     "queued_active", "system_on_hold",	  "user_on_hold",
    "user_system_on_hold",   "running",	      "system_suspended", "user_suspended",
    "user_system_suspended", "done",	      "failed",
};

static const char *const exit_names[] = {
    "none",
    "finished_regularly",
    "finished_signal",
    "finished_unclear_condition",
    "killed_by_user",
    "aborted",
};

static const char *const transfer_kind_names[] = {
    [FERRY_TRANSFER_SEND] = "send",
    [FERRY_TRANSFER_REGISTER] = "register",
};

static const char *const transfer_state_names[] = {
    [FERRY_TRANSFER_TRANSFERRING] = "transferring", [FERRY_TRANSFER_READY] = "ready",
    [FERRY_TRANSFER_REGISTERED] = "registered",	    [FERRY_TRANSFER_PRODUCED] = "produced",
    [FERRY_TRANSFER_RETRIEVED] = "retrieved",
};

static const char *const error_texts[] = {
    "success",
    "invalid argument",
    "out of memory",
    "no such job",
    "cannot connect to the engine",
    "protocol error",
    "timed out",
    "job state does not allow this",
    "not supported",
    "configuration error",
    "input/output error",
    "nothing available yet",
    "end of data",
    "permission denied",
    "disconnected",
    "resource cannot satisfy the request",
    "internal error",
    "authentication failed",
};

FERRY_EXPORT const char *ferry_status_name(enum ferry_job_status s)
{
	if ((unsigned)s >= sizeof(status_names) / sizeof(status_names[0]))
		return NULL;
	return status_names[s];
}

FERRY_EXPORT const char *ferry_exit_status_name(enum ferry_exit_status s)
{
	if ((unsigned)s >= sizeof(exit_names) / sizeof(exit_names[0]))
		return "none";
	return exit_names[s];
}

FERRY_EXPORT int ferry_status_from_name(const char *name, enum ferry_job_status *out)
{
	for (size_t i = 0; name && i < sizeof(status_names) / sizeof(status_names[0]); i++) {
		if (!strcmp(status_names[i], name)) {
			*out = (enum ferry_job_status)i;
			return 0;
		}
	}
	return FERRY_EINVAL;
}

FERRY_EXPORT int ferry_launcher_from_name(const char *name, enum ferry_launcher *out)
{
	if (name && !strcmp(name, "mpi"))
		*out = FERRY_LAUNCHER_MPI;
	else if (name && !strcmp(name, "none"))
		*out = FERRY_LAUNCHER_NONE;
	else
		return FERRY_EINVAL;
	return 0;
}

FERRY_EXPORT const char *ferry_transfer_kind_name(enum ferry_transfer_kind k)
{
	if ((unsigned)k >= sizeof(transfer_kind_names) / sizeof(transfer_kind_names[0]))
		return NULL;
	return transfer_kind_names[k];
}

FERRY_EXPORT const char *ferry_transfer_state_name(enum ferry_transfer_state s)
{
	if ((unsigned)s >= sizeof(transfer_state_names) / sizeof(transfer_state_names[0]))
		return NULL;
	return transfer_state_names[s];
}

FERRY_EXPORT int ferry_transfer_kind_from_name(const char *name, enum ferry_transfer_kind *out)
{
	for (size_t i = 0; name && i < sizeof(transfer_kind_names) / sizeof(transfer_kind_names[0]);
	     i++) {
		if (!strcmp(transfer_kind_names[i], name)) {
			*out = (enum ferry_transfer_kind)i;
			return 0;
		}
	}
	return FERRY_EINVAL;
}

FERRY_EXPORT int ferry_transfer_state_from_name(const char *name, enum ferry_transfer_state *out)
{
	for (size_t i = 0;
	     name && i < sizeof(transfer_state_names) / sizeof(transfer_state_names[0]); i++) {
		if (!strcmp(transfer_state_names[i], name)) {
			*out = (enum ferry_transfer_state)i;
			return 0;
		}
	}
	return FERRY_EINVAL;
}

FERRY_EXPORT const char *ferry_strerror(int code)
{
	if (code > 0 || (size_t)-code >= sizeof(error_texts) / sizeof(error_texts[0]))
		return "unknown error";
	return error_texts[-code];
}
