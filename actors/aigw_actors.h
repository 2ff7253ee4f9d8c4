/*  aigw_actors: the table of pipeline stages by name, so `aigw run` and
    `aigw actor NAME[,NAME...]` find them the same way. */
#ifndef AIGW_ACTORS_H_INCLUDED
#define AIGW_ACTORS_H_INCLUDED

#include "aigw_stage.h"

//  The names, for messages.
#define AIGW_ACTOR_LIST "auth, ratelimit, guardrail, cache, provider, admin, usage, responses"

//  The stages `aigw run` puts in the edge's thread, in pipeline order; the
//  admin actor runs in a thread of its own (its database calls and broker
//  questions may take seconds), and so does usage (database writes and
//  spool fsyncs, none on a request's path). responses reads and writes
//  stored Responses through its own asynchronous connection, never
//  blocking the loop, and only /v1/responses requests that store or name
//  a previous response go through it.
#define AIGW_RUN_PIPELINE "auth,ratelimit,guardrail,responses,cache,provider"

//  The definition of stage NAME, or NULL.
const aigw_stage_def_t *aigw_stage_find (const char *name);

//  Every stage's definition, NULL-terminated.
const aigw_stage_def_t *const *aigw_stage_defs (void);

#endif
