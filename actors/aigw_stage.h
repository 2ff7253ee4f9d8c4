/*  aigw_stage: the runtime every pipeline actor shares.

    A stage (auth, ratelimit, guardrail, cache, provider, admin) is private
    state plus a message handler (aigw_stage_def_t). A host runs one or more
    stages in one thread, with one poll loop: `aigw run` hosts every
    pipeline stage in the edge's I/O thread, `aigw actor auth,ratelimit`
    hosts two in a process of their own. Between stages of one host the
    decoded envelope is handed over by a call (through the host's run
    queue): no msgpack, no socket, no wake-up. A stage that is not in the
    host is reached through the broker, as AIGW-BP/1 says; the envelope is
    encoded only then.

    A front (the HTTP edge, when it shares the host's thread) submits
    requests and receives their replies as aigw_client_event_t, the same
    events a broker client gives it, so replies from local stages and from
    remote ones look alike. */
#ifndef AIGW_STAGE_H_INCLUDED
#define AIGW_STAGE_H_INCLUDED

#include "aigw_client.h"
#include "aigw_config.h"
#include "aigw_envelope.h"
#include "aigw_worker.h"

//  Most requests a host takes from one worker socket per pass of its loop:
//  enough to batch under load, few enough that heartbeats never starve.
#define AIGW_STAGE_BATCH_MAX 256
//  Most stages one host runs.
#define AIGW_HOST_STAGES_MAX 8
//  Most poll items one host adds to its thread's poll (its workers' sockets
//  and its stages' own descriptors).
#define AIGW_HOST_POLLITEMS_MAX 128
//  How often a busy loop polls its cold sockets (the workers' broker
//  sockets: heartbeats, the directory, requests before a directory), ms.
//  Every zmq socket in a poll costs libzmq two ZMQ_EVENTS checks (each a
//  syscall or two): between cold passes the broker's sockets are polled
//  by their descriptors alone.
#define AIGW_HOST_COLD_MS 10

typedef struct _aigw_host_t aigw_host_t;

//  What a stage plugs into the runtime. Either HANDLE (a synchronous stage:
//  the runtime passes the envelope on after it) or TAKE (an asynchronous
//  one, which answers later with aigw_stage_pass) is set.
typedef struct {
    const char *name;  //  service name at the broker
    bool replay_safe;  //  may be re-sent to another worker on death
    //  Build the stage's private state; HOST runs it (NULL in selftests).
    //  NULL on failure.
    void *(*state_new) (aigw_host_t *host, const aigw_config_t *config);
    //  Free the state; nulls *STATE_P.
    void (*state_destroy) (void **state_p);
    //  Look at ENV: answer it (set env->status, e.g. with
    //  aigw_envelope_set_error) or leave status 0 to pass it on.
    void (*handle) (void *state, aigw_envelope_t *env);
    //  Take JOB and ENV; answer later with aigw_stage_pass/_chunk.
    void (*take) (void *state, aigw_job_t *job, aigw_envelope_t *env);
    //  Fill up to MAX poll items with the stage's own descriptors; returns
    //  how many. May be NULL.
    int (*pollitems) (void *state, zmq_pollitem_t *items, int max);
    //  Milliseconds until PROCESS is due again, -1 for no timer. May be NULL.
    int (*timeout) (void *state);
    //  Act on the poll's results for the COUNT items POLLITEMS gave, and on
    //  timers that came due. Called after every poll. May be NULL.
    void (*process) (void *state, zmq_pollitem_t *items, int count);
    //  Housekeeping, called about once a second; may be NULL.
    void (*tick) (void *state);
    //  JOB's client left: drop it (destroying it and what it waits on, an
    //  upstream transfer say). May be NULL: the job is then dropped when
    //  the stage passes it on.
    void (*cancel) (void *state, aigw_job_t *job);
    //  The key whose single owner must take ENV (a string owned by ENV or
    //  static; "" when any worker will do). NULL: not sharded. The sender
    //  computes it, so it must need nothing but ENV and CONFIG.
    const char *(*shard_key) (aigw_envelope_t *env, const aigw_config_t *config);
} aigw_stage_def_t;

//  The edge side of a host that shares the edge's thread.
typedef struct {
    void *self;  //  the front's own state
    //  Deliver EVENT (a REPLY chunk or final, or an ERROR) to ORIGIN; takes
    //  it. A REPLY event from a local stage carries its envelope decoded in
    //  event->env.
    void (*deliver) (void *self, void *origin, aigw_client_event_t **event_p);
    //  Send ENV (taken) through the broker to SERVICE with SHARD, as a new
    //  request whose replies go to ORIGIN.
    void (*forward) (void *self, void *origin, const char *service, const char *shard,
                     aigw_envelope_t **env_p);
    //  ORIGIN's request left this host for a peer (another pipeline or
    //  process): the job aigw_host_submit returned is gone; its replies
    //  still come to ORIGIN. May be NULL.
    void (*left) (void *self, void *origin);
} aigw_front_t;

//  Arguments of aigw_host_actor; the caller keeps them alive while it runs.
typedef struct {
    const aigw_config_t *config;  //  read-only settings, shared
    const char *endpoint;         //  broker endpoint
    const char *stages;           //  comma-separated stage names
    bool failed;                  //  out: the host did not start (read after
                                  //  zactor_new returns)
    char err[256];                //  out: why
} aigw_host_args_t;

//  Create a host for the comma-separated STAGES, each registered at the
//  broker at ENDPOINT. OWNS_SHARDS: this host's ratelimit and cache own
//  every key (true only when no other process hosts them, as in `aigw
//  run`); otherwise sharded requests go through the broker to their owner
//  even when the stage is here. Returns NULL with the reason in ERR.
aigw_host_t *aigw_host_new (const aigw_config_t *config, const char *endpoint, const char *stages,
                            bool owns_shards, char *err, size_t err_size);

//  Destroy the host and its stages; nulls *SELF_P.
void aigw_host_destroy (aigw_host_t **self_p);

//  Attach FRONT (copied): requests submitted with aigw_host_submit answer
//  through it.
void aigw_host_set_front (aigw_host_t *self, const aigw_front_t *front);

//  Messages waiting in the host's outboxes to peers (sockets at their
//  high-water mark, or peers still connecting).
size_t aigw_host_backlog (aigw_host_t *self);

//  True when stage SERVICE here owns SHARD by the directory this host
//  last saw (always, without one, or when it owns every shard).
bool aigw_host_owns (aigw_host_t *self, const char *service, const char *shard);

//  The worker that owns SHARD of stage SERVICE by the directory this host
//  last saw, or NULL when there is no directory to tell (one owner of
//  every shard, as in `aigw run`). Valid until the next directory.
const char *aigw_host_shard_owner (aigw_host_t *self, const char *service, const char *shard);

//  The broker endpoint, and the worker of stage NAME (NULL if not here).
const char *aigw_host_endpoint (aigw_host_t *self);
aigw_worker_t *aigw_host_worker (aigw_host_t *self, const char *name);

//  A request from the front for ORIGIN, whose id (unique in this host) is
//  ORIGIN_ID; takes *ENV_P. It starts at the stage env->route[env->hop]:
//  here when the host runs it, else at a peer (AIGW-BP/2), else through the
//  front's forward (the broker). Returns the job while a stage here holds
//  it, for aigw_host_cancel, or NULL. The job stays valid until the origin
//  gets its final event, or leaves this host.
aigw_job_t *aigw_host_submit (aigw_host_t *self, aigw_envelope_t **env_p, void *origin,
                              const char *origin_id);

//  The front is done with ORIGIN_ID (answered, or its client left): later
//  replies from peers for it are dropped. With CANCEL (its client left),
//  the stages elsewhere that cancel (the provider) are told to drop it.
void aigw_host_forget (aigw_host_t *self, const char *origin_id, bool cancel);

//  A directory from the broker for the host's peer (the front's client
//  fetches it when the host runs no stage). See aigw_peer_set_directory.
void aigw_host_set_directory (aigw_host_t *self, const char *version, const char *text);

//  JOB's client left: the stage holding it drops it, and it goes no
//  further. Its origin still gets a final event.
void aigw_host_cancel (aigw_host_t *self, aigw_job_t *job);

//  Hand *ENV_P (taken) to SERVICE as a one-way request (no reply), with
//  SHARD: a call when SERVICE is here (and owns the shard), else straight
//  to the peer that owns SHARD when the directory names one, else through
//  the broker. Returns 0 or -1.
int aigw_host_oneway (aigw_host_t *self, const char *service, const char *shard,
                      aigw_envelope_t **env_p);

//  The loop's share: fill up to MAX items to poll, returns how many. The
//  workers' broker sockets are in it once per AIGW_HOST_COLD_MS (a cold
//  pass); between, their descriptors (aigw_host_cold_item).
int aigw_host_pollitems (aigw_host_t *self, zmq_pollitem_t *items, int max);

//  The poll item of a loop's own cold socket SOCK (its pipe, a broker
//  client): SOCK in the last aigw_host_pollitems' cold pass; between, its
//  descriptor FD alone (ZMQ_FD, fetched once by the caller; no ZMQ_EVENTS
//  checks), which libzmq signals when the socket has news, so what comes
//  is read at once. A socket seen readable that way may have nothing: its
//  reads must not wait.
zmq_pollitem_t aigw_host_cold_item (aigw_host_t *self, zsock_t *sock, int fd);

//  Milliseconds the loop may sleep, at most TIMEOUT (sends heartbeats that
//  are due), and no later than the next cold pass is due. 0 when work is
//  waiting.
int aigw_host_timeout (aigw_host_t *self, int timeout);

//  After the poll: take requests, run the stages' own processing and
//  every local hand-off. ITEMS are the COUNT items aigw_host_pollitems gave.
void aigw_host_process (aigw_host_t *self, zmq_pollitem_t *items, int count);

//  CZMQ actor body: a host alone in its thread. ARGS is aigw_host_args_t.
//  Signals 0 when every stage started; else sets args->failed and err
//  first, and signals 1.
void aigw_host_actor (zsock_t *pipe, void *args);

//  Send ENV on: to the next stage of its route when it is unanswered, else
//  back to the client as the final reply. Takes *JOB_P and *ENV_P.
//  Returns 0 or -1.
int aigw_stage_pass (aigw_job_t **job_p, aigw_envelope_t **env_p);

//  Send ENV to the client as one chunk of a streamed reply (the last when
//  env->last, which also takes *JOB_P). ENV stays the caller's. Returns 0
//  or -1.
int aigw_stage_chunk (aigw_job_t **job_p, aigw_envelope_t *env);

//  Read the command waiting on an actor's PIPE, if one waits. True when
//  the actor must stop ($TERM, or the pipe failed).
bool aigw_stage_pipe_term (zsock_t *pipe);

//  Shard key for handing ENV to SERVICE ("" when any worker will do), as
//  SERVICE's own shard_key op says. Returns a string owned by ENV or static.
const char *aigw_stage_shard_key (aigw_envelope_t *env, const char *service,
                                  const aigw_config_t *config);

//  True when comma-separated LIST (may be NULL) holds ITEM exactly.
bool aigw_list_has (const char *list, const char *item);

//  True when ENV's principal may use MODEL (env->models lists them, comma-
//  separated; NULL allows every model).
bool aigw_stage_model_allowed (const aigw_envelope_t *env, const char *model);

//  Now, in Unix ms.
int64_t aigw_now_ms (void);

//  Wall-clock time, Unix microseconds (span and stage times).
int64_t aigw_now_us (void);

#endif
