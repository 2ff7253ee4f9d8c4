/*  aigw_actors: the table of pipeline actors by name, so `aigw run` and
    `aigw actor NAME` start them the same way. */
#ifndef AIGW_ACTORS_H_INCLUDED
#define AIGW_ACTORS_H_INCLUDED

#include "aigw_stage.h"

//  Names of every actor, in pipeline order, NULL-terminated.
extern const char *aigw_actor_names[];

//  Start actor NAME as a thread talking to the broker at ARGS->endpoint.
//  ARGS must outlive the actor (its def is filled in here). Returns NULL
//  for an unknown name.
zactor_t *aigw_actor_start (const char *name, aigw_stage_args_t *args);

#endif
