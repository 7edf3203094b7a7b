/*
 * workflow.c - the workflow calls of libferry (include/ferry.h,
 * "Workflows"): submit one as the JSON text of docs/workflows.md, its
 * status, the list, a wait for all its jobs, and its stop, restart and
 * disposal; and the translation of a soma-workflow SharedResourcePath,
 * which a workflow's jobs name.
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
 * The request: the file's object with "op", our directory ("cwd": the
 * engine takes each job's working directory against it, as ferry_submit()
 * takes it against ours) and a key of our own ("auto_key": a key the
 * file has wins) put in front of its members, the rest of its text as it
 * stands. Parsing 12 MB of jobs into a tree to add three fields and
 * write it out again cost the client 1.2 s of a 100,000-job submit; the
 * engine parses the text anyway, and names what is wrong. *text is
 * malloc'd; *prefix gets the length of what was put in front.
 */
static int request_text(ferry_conn *c, const char *wf, const char *const *base_env, char **text,
			size_t *len, size_t *prefix)
{
	const char *body = wf + strspn(wf, " \t\r\n");
	char cwd[PATH_MAX], key[64] = "auto-", *dir, *head, *env = NULL;
	size_t blen;
	json_t *js;

	*text = NULL;
	if (*body != '{')
		return ferry__seterr(c, FERRY_EINVAL, "the workflow must be a JSON object");
	body++;
	if (!getcwd(cwd, sizeof(cwd)))
		return ferry__seterr(c, FERRY_EINVAL, "cannot get the current directory: %s",
				     strerror(errno));
	/* a key always: the library's own resend after a lost link must not submit it twice */
	if (ferry__random_hex(key + 5, 16) < 0)
		return ferry__seterr(c, FERRY_EIO, "cannot get random bytes for a key");
	js = json_string(cwd);
	dir = js ? json_dumps(js, JSON_ENCODE_ANY) : NULL;
	json_decref(js);
	if (base_env && base_env[0]) {
		js = ferry__json_bytesv(base_env);
		env = js ? ferry__json_dumps(js, JSON_COMPACT) : NULL;
		json_decref(js);
		if (!env) {
			free(dir);
			return ferry__seterr(c, FERRY_ENOMEM, "out of memory");
		}
	}
	/* the head by printf, the body (megabytes) by memcpy: vasprintf took 80 ms of 8 MB */
	head = dir ? ferry__asprintf(
			 "{\"op\":\"workflow_submit\",\"cwd\":%s,\"auto_key\":\"%s\"%s%s%s", dir,
			 key, env ? ",\"base_env\":" : "", env ? env : "",
			 body[strspn(body, " \t\r\n")] == '}' ? "" : ",")
		   : NULL;
	free(dir);
	free(env);
	blen = strlen(body);
	if (head && (*text = malloc(strlen(head) + blen + 1))) {
		*prefix = strlen(head);
		memcpy(*text, head, *prefix);
		memcpy(*text + *prefix, body, blen + 1);
		*len = *prefix + blen;
	}
	free(head);
	return *text ? 0 : ferry__seterr(c, FERRY_ENOMEM, "out of memory");
}

/*
 * The engine's parse error of the request ("invalid json at byte N: ..."),
 * said of the file: its line and column, the bytes put in front left out.
 */
static int not_json(ferry_conn *c, const char *wf, size_t prefix)
{
	const char *msg = ferry_errmsg(c), *at = "invalid json at byte ";
	size_t n = strlen(at), pos, line = 1, col = 1;
	char why[256];

	if (strncmp(msg, at, n))
		return FERRY_EPROTO;
	pos = strtoul(msg + n, NULL, 10);
	snprintf(why, sizeof(why), "%s", strchr(msg + n, ':') ? strchr(msg + n, ':') + 2 : msg);
	/*
	 * jansson's position is past the byte it stopped at; the file's
	 * offset of that byte: text holds wf's body from its '{' on, after
	 * prefix.
	 */
	pos = pos > prefix ? pos - 1 - prefix + (size_t)(strchr(wf, '{') - wf) + 1 : 0;
	for (size_t i = 0; i < pos && wf[i]; i++, col++)
		if (wf[i] == '\n') {
			line++;
			col = 0;
		}
	/* a member named twice, or one of those put in front */
	if (strstr(why, "duplicate object key"))
		return ferry__seterr(
		    c, FERRY_EINVAL,
		    "the workflow names a member twice, or one libferry adds "
		    "('op', 'cwd', 'auto_key', 'base_env'): line %zu, column %zu: %s",
		    line, col, why);
	return ferry__seterr(c, FERRY_EINVAL, "the workflow is not JSON: line %zu, column %zu: %s",
			     line, col, why);
}

FERRY_EXPORT int ferry_submit_workflow(ferry_conn *c, const char *workflow, ferry_workflow_id *id)
{
	return ferry_submit_workflow_env(c, workflow, NULL, id);
}

FERRY_EXPORT int ferry_submit_workflow_env(ferry_conn *c, const char *workflow,
					   const char *const *base_env, ferry_workflow_id *id)
{
	size_t len = 0, prefix = 0;
	char *text = NULL;
	json_t *reply = NULL;
	int rc;

	*id = 0;
	for (size_t i = 0; base_env && base_env[i]; i++) {
		char err[512];
		if (ferry__env_entry_check(base_env[i], "base_env", i, 1, err, sizeof(err)))
			return ferry__seterr(c, FERRY_EINVAL, "%s", err);
	}
	if ((rc = request_text(c, workflow, base_env, &text, &len, &prefix)))
		return rc;
	/* one request, one frame: said here, with the size, rather than as a failed send */
	if (len > FERRY_FRAME_MAX) {
		free(text);
		return ferry__seterr(c, FERRY_EINVAL,
				     "the workflow is %zu bytes as a request, over the limit of %u "
				     "(one frame; docs/workflows.md, \"Size\")",
				     len, FERRY_FRAME_MAX);
	}
	rc = ferry__call_text(c, text, len, &reply);
	if (rc == FERRY_EPROTO)
		rc = not_json(c, workflow, prefix);
	free(text);
	if (rc)
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
	/* a key: a replay after a lost reply is answered, not run again */
	char key[64] = "restart-";
	json_t *req, *reply = NULL;
	int rc;

	if (id < 1)
		return ferry__seterr(c, FERRY_EINVAL, "invalid workflow id %lld", (long long)id);
	if (ferry__random_hex(key + 8, 16) < 0)
		return ferry__seterr(c, FERRY_EIO, "cannot get random bytes for a key");
	req = json_pack("{s:s,s:I,s:s}", "op", "workflow_restart", "workflow", (json_int_t)id,
			"key", key);
	if ((rc = ferry__call_locked(c, req, 0, &reply)))
		return rc;
	if (restarted)
		*restarted = (size_t)json_integer_value(json_object_get(reply, "restarted"));
	json_decref(reply);
	return 0;
}

FERRY_EXPORT int ferry_translate_path(ferry_conn *c, const char *ns, const char *uuid, char **path)
{
	json_t *reply = NULL;
	int rc;

	*path = NULL;
	if (!ns || !*ns || !uuid || !*uuid)
		return ferry__seterr(c, FERRY_EINVAL, "a translation needs a namespace and a uuid");
	rc = ferry__call_locked(c,
				json_pack("{s:s,s:o,s:o}", "op", "translate_path", "namespace",
					  ferry__json_bytes(ns), "uuid", ferry__json_bytes(uuid)),
				0, &reply);
	if (rc)
		return rc;
	if (!json_is_string(json_object_get(reply, "path")))
		rc = ferry__seterr(c, FERRY_EPROTO, "the engine sent no path");
	else if (!(*path = ferry__jstrdup(reply, "path")))
		rc = ferry__seterr(c, FERRY_ENOMEM, "out of memory");
	json_decref(reply);
	return rc;
}
