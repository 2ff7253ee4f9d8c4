/*  aigw_peer: the peer-to-peer data path of AIGW-BP/2 (schemas/broker-
    protocol.md, sections 7 and 8), for one thread.

    A peer binds one ROUTER, its inbox, and connects a DEALER to each peer it
    sends to. Requests go straight to a worker of the next stage, picked from
    the directory the broker keeps; replies go straight to the request's
    origin (the edge that waits for them). The sender of each hop tracks the
    request until the receiver says DONE (it forwarded or answered it); when
    the directory says the receiver died, the sender sends the request again
    to another worker if the stage is replay-safe, or answers the origin 503.
    A message the socket refuses (high-water mark, a peer still connecting)
    waits in that peer's outbox, sent when the socket takes it again: none
    is dropped while its peer lives. Not thread-safe: one owning thread. */
#ifndef AIGW_PEER_H_INCLUDED
#define AIGW_PEER_H_INCLUDED

#include "aigw_bp.h"

typedef struct _aigw_peer_t aigw_peer_t;

typedef enum {
    AIGW_PEER_REQUEST = AIGW_BP_PEER_REQUEST,  //  a request for one of our stages
    AIGW_PEER_REPLY = AIGW_BP_PEER_REPLY,      //  a reply chunk, or the last one
    AIGW_PEER_ERROR = AIGW_BP_PEER_ERROR,      //  a peer-made error, always final
    AIGW_PEER_CANCEL = AIGW_BP_PEER_CANCEL,    //  the origin's client left: drop it
    AIGW_PEER_ONEWAY = AIGW_BP_PEER_ONEWAY     //  a one-way request: no reply, no DONE
} aigw_peer_event_type_t;

//  One message from another peer; the caller owns it.
typedef struct {
    int type;             //  aigw_peer_event_type_t
    char *service;        //  REQUEST, ONEWAY: the stage it is for
    char *origin;         //  REQUEST, CANCEL: the endpoint its replies go to
    char *request_id;     //  the origin's request id
    char *sender;         //  REQUEST: the endpoint that tracks it (DONE)
    int64_t deadline_ms;  //  REQUEST: absolute, Unix ms
    bool last;            //  REPLY: the final one
    int status;           //  ERROR: HTTP status
    char *text;           //  ERROR: short text
    zframe_t *envelope;   //  REQUEST, REPLY, ONEWAY: the encoded envelope
} aigw_peer_event_t;

//  Bind the inbox to BIND (e.g. "tcp://127.0.0.1:*", "inproc://name").
//  ADVERTISE, when not NULL, replaces the bound host in the endpoint others
//  are told (for a wildcard bind on a multi-host deployment). Returns NULL
//  with the reason in ERR.
aigw_peer_t *aigw_peer_new (const char *bind, const char *advertise, char *err, size_t err_size);
void aigw_peer_destroy (aigw_peer_t **self_p);

//  The endpoint other peers reach us at.
const char *aigw_peer_endpoint (aigw_peer_t *self);

//  A directory from the broker: VERSION ("<instance>-<counter>") and TEXT,
//  one "service worker-id endpoint flags" line per live worker. A worker
//  gone from it fails over the requests tracked to it. After a broker
//  restart (a new instance), the old directory's workers are kept for a
//  grace period while workers register again.
void aigw_peer_set_directory (aigw_peer_t *self, const char *version, const char *text);

//  Live workers of SERVICE that peers can reach, in directory TEXT (the
//  broker's format). Thread-safe: a pure function of its arguments.
int aigw_peer_directory_live (const char *text, const char *service);

//  True once a directory came.
bool aigw_peer_has_directory (aigw_peer_t *self);

//  True when WORKER_ID is the owner of SHARD among SERVICE's live workers
//  (rendezvous hashing), or when no directory lists SERVICE.
bool aigw_peer_owns (aigw_peer_t *self, const char *service, const char *shard,
                     const char *worker_id);

//  The worker id of SHARD's owner among SERVICE's live workers, or NULL
//  when no directory lists SERVICE. Valid until the next directory.
const char *aigw_peer_owner (aigw_peer_t *self, const char *service, const char *shard);

//  Send a request for SERVICE (the worker: SHARD's owner, or the next in
//  turn) on behalf of ORIGIN's REQUEST_ID, and track it until DONE. LATER
//  lists the stages after SERVICE on its route, comma-separated: the worker
//  may run some of them too and hand the request on by call, so it may be
//  sent again after a death only if every one of those is replay-safe.
//  ACK_TO (NULL: none) is the peer that sent us this request: it hears
//  DONE once the request has left us, not before (so a death here while it
//  waits in an outbox leaves it tracked there). Takes *DATA (SIZE bytes,
//  malloc'd). Returns 0, or -1 (DATA freed) when no live worker of SERVICE
//  has an endpoint; ACK_TO is then not told.
int aigw_peer_request (aigw_peer_t *self, const char *service, const char *shard, const char *later,
                       const char *origin, const char *request_id, const char *ack_to,
                       int64_t deadline_ms, char **data, size_t size);

//  Send a one-way request (no reply, not tracked) for SERVICE to SHARD's
//  owner, or the next in turn; REQUEST_ID names it in logs. Takes *DATA.
//  Returns 0, or -1 (DATA freed) when no live worker of SERVICE has an
//  endpoint. Lost if that worker dies before it runs it.
int aigw_peer_oneway (aigw_peer_t *self, const char *service, const char *shard,
                      const char *request_id, char **data, size_t size);

//  Send ORIGIN a reply chunk (the final one with LAST). Takes *DATA.
void aigw_peer_reply (aigw_peer_t *self, const char *origin, const char *request_id, bool last,
                      char **data, size_t size);

//  Send ORIGIN a final error.
void aigw_peer_error (aigw_peer_t *self, const char *origin, const char *request_id, int status,
                      const char *text);

//  A request's own key, ORIGIN "/" REQUEST_ID (section 8): the shard key
//  that places it on a stage that is not replay-safe. The caller frees it.
char *aigw_peer_request_key (const char *origin, const char *request_id);

//  ORIGIN's client left REQUEST_ID: tell the workers that may hold it to
//  drop it, now or when it comes: of each service in KEYED (placed by the
//  request's own key), the one that key picks; of each in ANY, every live
//  one. One CANCEL per endpoint. We stop tracking it: a cancelled request
//  is not sent again after a death. KEYED and ANY are comma-separated
//  service names (may be NULL).
void aigw_peer_cancel (aigw_peer_t *self, const char *keyed, const char *any, const char *origin,
                       const char *request_id);

//  Tell SENDER we are done with ORIGIN's REQUEST_ID (sent at the next
//  aigw_peer_process, batched per sender).
void aigw_peer_done (aigw_peer_t *self, const char *sender, const char *origin,
                     const char *request_id);

//  Poll items: the inbox, and every link with an outbox waiting (POLLOUT).
int aigw_peer_pollitems (aigw_peer_t *self, zmq_pollitem_t *items, int max);

//  After the poll: flush outboxes and DONEs, forget requests tracked past
//  their deadline and grace. ITEMS are the COUNT items aigw_peer_pollitems
//  gave (may be NULL).
void aigw_peer_process (aigw_peer_t *self, zmq_pollitem_t *items, int count);

//  Milliseconds until aigw_peer_process has work without input (DONEs due),
//  -1 for none.
int aigw_peer_timeout (aigw_peer_t *self);

//  The next message without blocking, or NULL. DONEs are handled inside.
aigw_peer_event_t *aigw_peer_recv (aigw_peer_t *self);

void aigw_peer_event_destroy (aigw_peer_event_t **self_p);

//  Requests we track, and messages waiting in outboxes, for tests.
size_t aigw_peer_tracked (aigw_peer_t *self);
size_t aigw_peer_backlog (aigw_peer_t *self);

void aigw_peer_test (bool verbose);

#endif
