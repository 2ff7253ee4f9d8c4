/*  aigw_stage: the runtime every pipeline actor shares. An actor runs as a
    thread in `aigw run` (inproc) or as the main of `aigw actor NAME` (tcp or
    ipc), with the same code: aigw_stage_actor () is the CZMQ actor body for
    the synchronous stages (auth, ratelimit, guardrail, cache); the provider,
    which waits on upstreams, has its own loop but uses the same helpers. */
#ifndef AIGW_STAGE_H_INCLUDED
#define AIGW_STAGE_H_INCLUDED

#include "aigw_config.h"
#include "aigw_envelope.h"
#include "aigw_worker.h"

//  Most requests an actor takes per pass of its loop: enough to batch
//  under load, few enough that heartbeats and other input never starve.
#define AIGW_STAGE_BATCH_MAX 256

//  What a synchronous stage plugs into the runtime.
typedef struct {
    const char *name;           //  service name at the broker
    bool replay_safe;           //  may be re-sent to another worker on death
    //  Build the stage's private state from CONFIG; NULL on failure.
    void *(*state_new) (const aigw_config_t *config);
    //  Free the state; nulls *STATE_P.
    void (*state_destroy) (void **state_p);
    //  Look at ENV: answer it (set env->status, e.g. with
    //  aigw_envelope_set_error) or leave status 0 to pass it on.
    void (*handle) (void *state, aigw_envelope_t *env);
    //  Housekeeping, called about once a second; may be NULL.
    void (*tick) (void *state);
} aigw_stage_def_t;

//  Arguments of every actor; the caller keeps them alive while it runs.
typedef struct {
    const aigw_stage_def_t *def; //  the stage (NULL for the provider)
    const aigw_config_t *config; //  read-only settings, shared
    const char *endpoint;       //  broker endpoint
} aigw_stage_args_t;

//  CZMQ actor body for a synchronous stage; ARGS is aigw_stage_args_t.
void aigw_stage_actor (zsock_t *pipe, void *args);

//  Takes one request: owns JOB and ENV (answer, keep or destroy them).
typedef void (aigw_stage_take_fn) (void *self, aigw_job_t *job, aigw_envelope_t *env);

//  Take up to AIGW_STAGE_BATCH_MAX requests waiting on WORKER, decode each
//  and hand it to TAKE with SELF; undecodable ones are dropped. The socket
//  stays readable when more wait, for the next pass of the loop.
void aigw_stage_take (aigw_worker_t *worker, aigw_stage_take_fn *take, void *self);

//  Read the command waiting on an actor's PIPE. True when the actor must
//  stop ($TERM, or the pipe failed).
bool aigw_stage_pipe_term (zsock_t *pipe);

//  Decode a job's envelope. Returns NULL (and answers 400 upstream is not
//  possible) when it is malformed; the caller then drops the job.
aigw_envelope_t *aigw_stage_decode (aigw_job_t *job);

//  Send ENV on: to the next stage of its route when it is unanswered, else
//  back to the client as the final reply. Destroys *JOB_P. Returns 0 or -1.
int aigw_stage_pass (aigw_worker_t *worker, aigw_job_t **job_p,
                     aigw_envelope_t *env, const aigw_config_t *config);

//  Send ENV to the client as one chunk of a streamed reply (LAST when
//  env->last). Returns 0 or -1. With LAST, destroys *JOB_P.
int aigw_stage_chunk (aigw_worker_t *worker, aigw_job_t **job_p,
                      aigw_envelope_t *env);

//  Shard key for handing ENV to SERVICE ("" when any worker will do):
//  ratelimit shards by key id, cache by cache key. Computes the cache key
//  into ENV when it is missing and the cache is on. Returns a string owned
//  by ENV or static.
const char *aigw_stage_shard_key (aigw_envelope_t *env, const char *service,
                                  const aigw_config_t *config);

//  True when comma-separated LIST (may be NULL) holds ITEM exactly.
bool aigw_list_has (const char *list, const char *item);

//  True when ENV's principal may use MODEL (env->models lists them, comma-
//  separated; NULL allows every model).
bool aigw_stage_model_allowed (const aigw_envelope_t *env, const char *model);

//  Now, in Unix ms.
int64_t aigw_now_ms (void);

#endif
