/*
 * jobenv.h - the environments jobs start from (a spec's base_env), each
 * stored once however many jobs name it (jobenv.c; docs/architecture.md,
 * "The job's environment").
 */
#ifndef FERRY_JOBENV_H
#define FERRY_JOBENV_H

#include <jansson.h>
#include <stdint.h>

struct ferry_engine;
struct ferry_jobenvs;

/*
 * The number of the stored environment whose entries are those of
 * checked (a checked copy of the client's array v): found or added in
 * the open transaction. The jobs of one request share v, which is
 * looked up once. 0, or FERRY_ENOMEM / a database error (err set).
 */
int ferry__jobenv_id(struct ferry_engine *eng, json_t *v, json_t *checked, int64_t *id, char *err,
		     size_t errlen);
/* 1 with *id when v is the array ferry__jobenv_id() last stored, else 0. */
int ferry__jobenv_known(struct ferry_engine *eng, json_t *v, int64_t *id);
/*
 * The entries of the environment the spec's base_env names (borrowed:
 * valid until the engine is freed), into *env; NULL when it names none.
 * 0, or a FERRY_E* code with err set (its record is unreadable).
 */
int ferry__jobenv_get(struct ferry_engine *eng, json_t *spec, json_t **env, char *err,
		      size_t errlen);
void ferry__jobenvs_free(struct ferry_jobenvs *e);

#endif
