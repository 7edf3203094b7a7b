/*
 * jobenv.c - the environments jobs start from. The `ferry` command sends
 * its environment with every job (base_env); a bulk of a million jobs
 * must not store a million copies of it. Each distinct environment is
 * one row of the database (job_envs, db.c), and a job's spec keeps its
 * number. The last one stored and the few last read are kept here, so
 * that a batch looks its environment up once and a DRMS's batch script
 * reads it once. A rolled-back savepoint (a submit that failed, or one
 * that waits for the backend and runs again) may have taken the row
 * stored last back: it is then stored again.
 */
#include <stdlib.h>
#include <string.h>

#include "engine.h"
#include "jobenv.h"
#include "jbytes.h"
#include "util.h"

#define READ_KEPT 8 /* environments read back, kept: a few submitters at a time */

struct ferry_jobenvs {
	json_t *last; /* the client's array last stored (kept: its address is not reused) */
	int64_t last_id;
	unsigned undone; /* ferry__db_undone() then: a rollback took its row back */
	struct {
		int64_t id;
		json_t *env;
	} read[READ_KEPT];
	unsigned next;	      /* the slot of read the next one takes */
	unsigned read_undone; /* ferry__db_undone() when read was filled */
};

static struct ferry_jobenvs *envs(struct ferry_engine *eng)
{
	struct ferry_jobenvs **e = ferry__engine_jobenvs(eng);

	if (!*e)
		*e = calloc(1, sizeof(**e));
	return *e;
}

int ferry__jobenv_known(struct ferry_engine *eng, json_t *v, int64_t *id)
{
	struct ferry_jobenvs *e = *ferry__engine_jobenvs(eng);

	if (!e || !e->last || e->last != v || e->undone != ferry__db_undone(ferry__engine_db(eng)))
		return 0;
	*id = e->last_id;
	return 1;
}

int ferry__jobenv_id(struct ferry_engine *eng, json_t *v, json_t *checked, int64_t *id, char *err,
		     size_t errlen)
{
	struct ferry_jobenvs *e = envs(eng);
	char *text = e ? ferry__json_dumps(checked, JSON_COMPACT) : NULL;
	int rc;

	if (!text)
		return ferry__fail(err, errlen, FERRY_ENOMEM, "out of memory");
	rc = ferry__db_env_put(ferry__engine_db(eng), text, id);
	free(text);
	if (rc)
		return ferry__fail(err, errlen, rc, "cannot record the job's environment");
	json_decref(e->last);
	e->last = json_incref(v);
	e->last_id = *id;
	e->undone = ferry__db_undone(ferry__engine_db(eng));
	return 0;
}

/*
 * A copy kept, read from the database: 0, or a FERRY_E* code with err
 * saying what could not be read.
 */
static int env_read(struct ferry_engine *eng, struct ferry_jobenvs *e, int64_t id, json_t **env,
		    char *err, size_t errlen)
{
	char *text = NULL;
	int rc = ferry__db_env_get(ferry__engine_db(eng), id, &text);
	json_t *a = rc == 1 ? ferry__json_loads(text) : NULL;
	unsigned k = e->next;

	free(text);
	if (rc != 1 || !json_is_array(a)) {
		json_decref(a);
		return ferry__fail(err, errlen, rc < 0 ? rc : FERRY_EINTERNAL,
				   "cannot read the job's environment (base_env): row %lld of "
				   "job_envs %s",
				   (long long)id,
				   rc < 0    ? "cannot be read from the database"
				   : rc == 0 ? "is missing"
					     : "is not a JSON array");
	}
	json_decref(e->read[k].env);
	e->read[k].id = id;
	e->read[k].env = a;
	e->next = (k + 1) % READ_KEPT;
	*env = a;
	return 0;
}

int ferry__jobenv_get(struct ferry_engine *eng, json_t *spec, json_t **env, char *err,
		      size_t errlen)
{
	json_t *v = json_object_get(spec, "base_env");
	struct ferry_jobenvs *e;
	int64_t id;

	*env = NULL;
	if (!json_is_integer(v))
		return 0;
	if (!(e = envs(eng)))
		return ferry__fail(err, errlen, FERRY_ENOMEM, "out of memory");
	id = json_integer_value(v);
	if (e->read_undone != ferry__db_undone(ferry__engine_db(eng))) { /* ids may be reused */
		for (unsigned k = 0; k < READ_KEPT; k++) {
			json_decref(e->read[k].env);
			e->read[k].env = NULL;
		}
		e->read_undone = ferry__db_undone(ferry__engine_db(eng));
	}
	for (unsigned k = 0; k < READ_KEPT; k++)
		if (e->read[k].env && e->read[k].id == id) {
			*env = e->read[k].env;
			return 0;
		}
	return env_read(eng, e, id, env, err, errlen);
}

void ferry__jobenvs_free(struct ferry_jobenvs *e)
{
	if (!e)
		return;
	json_decref(e->last);
	for (unsigned k = 0; k < READ_KEPT; k++)
		json_decref(e->read[k].env);
	free(e);
}
