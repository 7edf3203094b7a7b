/*
 * workflow.c - the workflow calls of libferry (include/ferry.h,
 * "Workflows"): submit one as the JSON text of docs/workflows.md, its
 * status, the list, a wait for all its jobs, and its stop, restart and
 * disposal.
 */
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "internal.h"
#include "jbytes.h"
#include "proto.h"
#include "util.h"

static const char *const wf_state_names[] = {
    [FERRY_WF_NOT_STARTED] = "not started",
    [FERRY_WF_IN_PROGRESS] = "in progress",
    [FERRY_WF_DONE] = "done",
    [FERRY_WF_DONE_WITH_FAILURES] = "done with failures",
    [FERRY_WF_STOPPED] = "stopped",
};

FERRY_EXPORT const char *ferry_workflow_state_name(enum ferry_workflow_state s)
{
	if ((unsigned)s >= sizeof(wf_state_names) / sizeof(wf_state_names[0]))
		return NULL;
	return wf_state_names[s];
}

/*
 * Each command job's working directory made absolute against ours (none:
 * ours), as ferry_submit() does: the file's relative paths mean the
 * directory it is submitted from.
 */
static int set_directories(ferry_conn *c, json_t *jobs)
{
	char cwd[PATH_MAX];
	const char *k;
	json_t *spec;

	if (!getcwd(cwd, sizeof(cwd)))
		return ferry__seterr(c, FERRY_EINVAL, "cannot get the current directory: %s",
				     strerror(errno));
	json_object_foreach(jobs, k, spec)
	{
		json_t *wd = json_object_get(spec, "working_directory");
		char *abs;
		if (!json_is_object(spec) || json_object_get(spec, "barrier") ||
		    (wd && (!json_is_string(wd) || json_string_value(wd)[0] == '/')))
			continue; /* the engine names what is wrong */
		abs = wd ? ferry__asprintf("%s/%s", cwd, json_string_value(wd)) : strdup(cwd);
		if (!abs || json_object_set_new(spec, "working_directory", json_string(abs))) {
			free(abs);
			return ferry__seterr(c, FERRY_ENOMEM, "out of memory");
		}
		free(abs);
	}
	return 0;
}

FERRY_EXPORT int ferry_submit_workflow(ferry_conn *c, const char *workflow, ferry_workflow_id *id)
{
	json_error_t e;
	json_t *req = json_loads(workflow, JSON_REJECT_DUPLICATES, &e), *reply = NULL;
	char key[64] = "auto-";
	size_t len;
	int rc;

	*id = 0;
	if (!req)
		return ferry__seterr(c, FERRY_EINVAL, "the workflow is not JSON: line %d: %s",
				     e.line, e.text);
	if (!json_is_object(req) || json_object_get(req, "op")) {
		json_decref(req);
		return ferry__seterr(c, FERRY_EINVAL, "the workflow must be a JSON object");
	}
	/* a key always: the library's own resend after a lost link must not submit it twice */
	if (!json_object_get(req, "key") && (ferry__random_hex(key + 5, 16) < 0 ||
					     json_object_set_new(req, "key", json_string(key)))) {
		json_decref(req);
		return ferry__seterr(c, FERRY_EIO, "cannot get random bytes for a key");
	}
	if ((rc = set_directories(c, json_object_get(req, "jobs")))) {
		json_decref(req);
		return rc;
	}
	json_object_set_new(req, "op", json_string("workflow_submit"));
	/* one request, one frame: said here, with the size, rather than as a failed send */
	if ((len = json_dumpb(req, NULL, 0, JSON_COMPACT)) > FERRY_FRAME_MAX) {
		json_decref(req);
		return ferry__seterr(c, FERRY_EINVAL,
				     "the workflow is %zu bytes as a request, over the limit of %u "
				     "(one frame; docs/workflows.md, \"Size\")",
				     len, FERRY_FRAME_MAX);
	}
	if ((rc = ferry__call_locked(c, req, 0, &reply)))
		return rc;
	*id = json_integer_value(json_object_get(reply, "id"));
	json_decref(reply);
	return *id > 0 ? 0 : ferry__seterr(c, FERRY_EPROTO, "the engine sent no workflow id");
}

FERRY_EXPORT void ferry_workflow_info_free(struct ferry_workflow_info *w)
{
	if (!w)
		return;
	free(w->name);
	free(w->groups);
	free(w);
}

/* The workflow object of docs/protocol.md as a struct (malloc'd), or NULL. */
static struct ferry_workflow_info *wf_from_json(json_t *o)
{
	struct ferry_workflow_info *w = calloc(1, sizeof(*w));
	json_t *counts = json_object_get(o, "counts"), *groups = json_object_get(o, "groups");
	const char *status = json_string_value(json_object_get(o, "status"));

	if (!w)
		return NULL;
	w->id = json_integer_value(json_object_get(o, "id"));
	w->submitted_at = json_number_value(json_object_get(o, "submitted_at"));
	w->jobs = (size_t)json_integer_value(json_object_get(o, "jobs"));
	for (int s = 0; s <= FERRY_FAILED; s++)
		w->counts[s] = (size_t)json_integer_value(
		    json_object_get(counts, ferry_status_name((enum ferry_job_status)s)));
	for (int s = 0; status && s <= FERRY_WF_STOPPED; s++)
		if (!strcmp(status, wf_state_names[s]))
			w->state = (enum ferry_workflow_state)s;
	if (json_is_string(json_object_get(o, "name")) && !(w->name = ferry__jstrdup(o, "name")))
		goto fail;
	if (json_is_array(groups) && !(w->groups = json_dumps(groups, JSON_COMPACT)))
		goto fail;
	return w;
fail:
	ferry_workflow_info_free(w);
	return NULL;
}

FERRY_EXPORT int ferry_workflow_status(ferry_conn *c, ferry_workflow_id id,
				       struct ferry_workflow_info **out)
{
	json_t *reply = NULL, *o;
	int rc = ferry__call_locked(
	    c, json_pack("{s:s,s:I}", "op", "workflow_status", "workflow", (json_int_t)id), 0,
	    &reply);

	*out = NULL;
	if (rc)
		return rc;
	o = json_object_get(reply, "workflow");
	if (!json_is_object(o)) {
		json_decref(reply);
		return ferry__seterr(c, FERRY_EPROTO, "the engine sent no workflow object");
	}
	*out = wf_from_json(o);
	json_decref(reply);
	return *out ? 0 : ferry__seterr(c, FERRY_ENOMEM, "out of memory");
}

FERRY_EXPORT void ferry_workflows_free(struct ferry_workflow_info **list, size_t n)
{
	for (size_t i = 0; list && i < n; i++)
		ferry_workflow_info_free(list[i]);
	free(list);
}

FERRY_EXPORT int ferry_workflows(ferry_conn *c, struct ferry_workflow_info ***list, size_t *n)
{
	json_t *reply = NULL, *a, *o;
	size_t i;
	int rc = ferry__call_locked(c, json_pack("{s:s}", "op", "workflows"), 0, &reply);

	*list = NULL;
	*n = 0;
	if (rc)
		return rc;
	a = json_object_get(reply, "workflows");
	if (!json_is_array(a)) {
		json_decref(reply);
		return ferry__seterr(c, FERRY_EPROTO, "the engine sent no list of workflows");
	}
	if (!(*list = calloc(json_array_size(a) + 1, sizeof(**list)))) {
		json_decref(reply);
		return ferry__seterr(c, FERRY_ENOMEM, "out of memory");
	}
	json_array_foreach(a, i, o)
	{
		if (!((*list)[i] = wf_from_json(o))) {
			ferry_workflows_free(*list, i);
			*list = NULL;
			json_decref(reply);
			return ferry__seterr(c, FERRY_ENOMEM, "out of memory");
		}
		*n = i + 1;
	}
	json_decref(reply);
	return 0;
}

FERRY_EXPORT int ferry_wait_workflow(ferry_conn *c, ferry_workflow_id id, double timeout_s)
{
	double deadline = timeout_s >= 0 ? ferry__mono() + timeout_s : 0;

	/* deadline 0 means none; a zero timeout still needs one */
	if (timeout_s >= 0 && deadline <= 0)
		deadline = 1e-9;
	return ferry__call_locked(
	    c,
	    json_pack("{s:s,s:I,s:f}", "op", "wait", "workflow", (json_int_t)id, "timeout", -1.0),
	    deadline, NULL);
}

/* A request about workflow id alone; *reply is the caller's on success. */
static int wf_call(ferry_conn *c, const char *op, ferry_workflow_id id, json_t **reply)
{
	json_t *req;
	int rc;

	*reply = NULL;
	if (id < 1)
		return ferry__seterr(c, FERRY_EINVAL, "invalid workflow id %lld", (long long)id);
	if (!(req = json_pack("{s:s,s:I}", "op", op, "workflow", (json_int_t)id)))
		return ferry__seterr(c, FERRY_ENOMEM, "out of memory");
	pthread_mutex_lock(&c->mu);
	rc = ferry__call(c, req, 0, reply, NULL, NULL);
	/* a replay after a lost reply finds the workflow disposed of already: success */
	if (rc == FERRY_ENOJOB && c->replayed && !strcmp(op, "workflow_dispose")) {
		c->errmsg[0] = '\0';
		rc = 0;
	}
	pthread_mutex_unlock(&c->mu);
	json_decref(req);
	return rc;
}

/* ferry_stop_workflow() and ferry_dispose_workflow(): a selection's counts */
static int wf_select(ferry_conn *c, const char *op, ferry_workflow_id id,
		     struct ferry_control_result *out)
{
	json_t *reply;
	int rc = wf_call(c, op, id, &reply);

	if (!rc && out)
		ferry__control_result(reply, out);
	json_decref(reply);
	return rc;
}

FERRY_EXPORT int ferry_stop_workflow(ferry_conn *c, ferry_workflow_id id,
				     struct ferry_control_result *out)
{
	return wf_select(c, "workflow_stop", id, out);
}

FERRY_EXPORT int ferry_dispose_workflow(ferry_conn *c, ferry_workflow_id id,
					struct ferry_control_result *out)
{
	return wf_select(c, "workflow_dispose", id, out);
}

FERRY_EXPORT int ferry_restart_workflow(ferry_conn *c, ferry_workflow_id id, size_t *restarted)
{
	json_t *reply;
	int rc = wf_call(c, "workflow_restart", id, &reply);

	if (!rc && restarted)
		*restarted = (size_t)json_integer_value(json_object_get(reply, "restarted"));
	json_decref(reply);
	return rc;
}
