/*  aigw_held: requests a stage holds back, oldest first, until what they
    wait for is there (a shard's counters or a partition's rows read from
    the database); a client that leaves drops its request from the line. */
#ifndef AIGW_HELD_H_INCLUDED
#define AIGW_HELD_H_INCLUDED

#include "aigw_envelope.h"
#include "aigw_worker.h"

#include <stdbool.h>
#include <stddef.h>

typedef struct _aigw_held_t aigw_held_t;

aigw_held_t *aigw_held_new (void);

//  Destroy SELF with every job and envelope it still holds; nulls *SELF_P.
void aigw_held_destroy (aigw_held_t **self_p);

//  Hold JOB and its ENV (both taken) at the end of the line.
void aigw_held_add (aigw_held_t *self, aigw_job_t *job, aigw_envelope_t *env);

//  Give the oldest back into *JOB_P and *ENV_P; false when none is held.
bool aigw_held_take (aigw_held_t *self, aigw_job_t **job_p, aigw_envelope_t **env_p);

//  Destroy JOB and its envelope if held here (its client left); false
//  when it is not.
bool aigw_held_drop (aigw_held_t *self, aigw_job_t *job);

//  Requests held.
size_t aigw_held_size (aigw_held_t *self);

void aigw_held_test (bool verbose);

#endif
