/*  aigw_worker: the worker side of AIGW-BP/1, used by every actor. Owns one
    DEALER socket; the owning thread polls aigw_worker_sock () and calls
    aigw_worker_recv () when it is readable, and aigw_worker_tick () at least
    every heartbeat interval (aigw_worker_tick returns the ms until the next
    call is due). Not thread-safe: one worker object per actor thread. */
#ifndef AIGW_WORKER_H_INCLUDED
#define AIGW_WORKER_H_INCLUDED

#include "aigw_bp.h"

//  Reply flags (AIGW-BP section 4).
#define AIGW_REPLY_LAST    AIGW_BP_FLAG_LAST
#define AIGW_REPLY_FORWARD AIGW_BP_FLAG_FORWARD

typedef struct _aigw_worker_t aigw_worker_t;

//  One request handed to the worker; the actor owns it until it passes it
//  back to aigw_worker_reply with LAST, or destroys it.
typedef struct _aigw_job_t aigw_job_t;
struct _aigw_job_t {
    zframe_t *client;       //  client routing identity (empty: one-way)
    char *request_id;       //  broker request id
    zframe_t *envelope;     //  encoded envelope
    aigw_worker_t *worker;  //  the worker that holds it at the broker; NULL
                            //  for a job made in-process (the stage runtime's)
    //  The stage runtime's fields for jobs it makes itself (aigw_stage.h).
    void *runtime;                      //  the host running the job
    void *origin;                       //  the front's reply target, NULL for broker jobs
    void (*release) (aigw_job_t *job);  //  called by aigw_job_destroy, may be NULL
    char *reply_to;                     //  a peer's job (BP/2): its origin's endpoint,
                                        //  with request_id the origin's id
    char *sender;                       //  a peer's job: who tracks it, told DONE
    bool replay_safe;                   //  a broker's job: its worker said replay-safe
    char *held;                         //  a peer's job: its key in the host's table of
                                        //  jobs held, for a CANCEL
    void *holder;                       //  the holding stage's own record of it, for cancel
    int stage;                          //  index of the stage holding it, -1 while queued
    bool cancelled;                     //  its client left: drop it, send nothing on
};

//  Connect to ENDPOINT and register as a worker of SERVICE taking CREDIT
//  requests at once. REPLAY_SAFE: the broker may resend a request to another
//  worker if this one dies. Returns NULL on failure.
aigw_worker_t *aigw_worker_new (const char *endpoint, const char *service, int credit,
                                bool replay_safe, int heartbeat_ms, int liveness);

void aigw_worker_destroy (aigw_worker_t **self_p);

//  Socket to poll for input. It changes after a reconnect, so fetch it
//  again after every aigw_worker_tick ().
zsock_t *aigw_worker_sock (aigw_worker_t *self);

//  That socket's descriptor (ZMQ_FD), kept: fetching it costs a call into
//  libzmq, and a loop asks on every pass.
int aigw_worker_fd (aigw_worker_t *self);

//  The worker id sent in READY ("<service>-<hostname>-<pid>-<counter>"),
//  owned by the worker.
const char *aigw_worker_id (aigw_worker_t *self);

//  Read all waiting input without blocking. Heartbeats and control messages
//  are handled inside; each request is returned in order. Returns a job the
//  caller owns, or NULL when nothing more is waiting.
aigw_job_t *aigw_worker_recv (aigw_worker_t *self);

//  Send heartbeats and reconnect as needed. Returns ms until the next call.
int aigw_worker_tick (aigw_worker_t *self);

//  Reply for JOB with FLAGS (AIGW_REPLY_*). NEXT_SERVICE and SHARD_KEY are
//  used with FORWARD and may be NULL otherwise. Takes ownership of *DATA
//  (malloc'd, SIZE bytes) and nulls it. With LAST the job is destroyed and
//  *JOB_P nulled. Returns 0, or -1 if the send failed. For a one-way job
//  (empty client) only a FORWARD is sent: the broker would drop the rest.
int aigw_worker_reply (aigw_worker_t *self, aigw_job_t **job_p, int flags, const char *next_service,
                       const char *shard_key, char **data, size_t size);

//  Send a one-way request to SERVICE (no reply expected). Takes *DATA.
int aigw_worker_send_oneway (aigw_worker_t *self, const char *service, const char *shard_key,
                             const char *request_id, char **data, size_t size);

//  Publish this worker's report: LEN bytes of JSON at JSON (a UTF-8 JSON
//  object, copied; the caller keeps it). The broker keeps the latest one
//  per worker and hands it to clients that ask REPORTS; it drops a report
//  that is not a JSON object. Send again after a reconnect: a new READY
//  makes the broker forget it. Returns 0, or -1 if LEN exceeds
//  AIGW_BP_REPORT_MAX or the send failed.
int aigw_worker_report (aigw_worker_t *self, const char *json, size_t len);

//  AIGW-BP/2: register with ENDPOINT, this worker's peer endpoint, so that
//  other peers send it requests directly (READY again, with it).
void aigw_worker_set_peer (aigw_worker_t *self, const char *endpoint);

//  Ask the broker for its directory at every heartbeat from now on; the
//  broker answers when it changed.
void aigw_worker_want_directory (aigw_worker_t *self);

//  The latest directory (NULL before one came) and its version token in
//  *VERSION; both owned by the worker, valid until the next recv.
const char *aigw_worker_directory (aigw_worker_t *self, const char **version);

//  Destroy a job without replying (the broker then waits for the deadline).
void aigw_job_destroy (aigw_job_t **self_p);

void aigw_worker_test (bool verbose);

#endif
