/*  aigw_broker: the AIGW-BP/1 broker. See schemas/broker-protocol.md.

    The data path is built for wake-ups, not for code size:
    - one ROUTER socket, read as raw zmq_msg_t frames into an array inside
      self, so a message costs no heap allocation; envelopes are relayed by
      zmq_msg_send (a move, zero-copy over inproc) and the replay copy of a
      replay-safe request is zmq_msg_copy (a shared, refcounted buffer);
    - every wake-up drains all waiting messages (up to S_DRAIN_MAX, so that
      timers and the pipe still get a turn under a flood) before timers run;
    - state is found by hashing: requests by (client identity, request id),
      workers by routing identity, services by name (aigw_table, intrusive,
      no allocation per lookup); each worker and each service keeps
      intrusive lists of its requests (aigw_list), so a death or a drain
      touches only the requests concerned;
    - request deadlines sit in one binary min-heap (aigw_heap), so expiry costs
      O(log n) per request and the poll timeout is exact; worker liveness is
      checked once per heartbeat, O(workers).
    A worker found dead while a loop walks broker state is only marked (and
    unlinked from dispatch); s_reap () finishes it at the top of the loop,
    so no object is freed under a caller that still uses it. */
#include "aigw_broker.h"
#include "aigw_bp.h"
#include "aigw_heap.h"
#include "aigw_hex.h"
#include "aigw_json.h"
#include "aigw_list.h"
#include "aigw_log.h"
#include "aigw_table.h"
//  The selftest drives the broker through the real worker and client.
#include "aigw_client.h"
#include "aigw_worker.h"

#include <jansson.h>

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <time.h>

#define S_FRAMES_MAX     10    //  frames a message may have, identity included
#define S_DRAIN_MAX      4096  //  messages handled per wake before timers
#define S_KEY_MAX        (1 + AIGW_BP_IDENTITY_MAX + AIGW_BP_REQUEST_ID_MAX)
#define S_STATUS_SIZE    16    //  bytes for a decimal status or number
#define S_TEXT_INITIAL   4096  //  first capacity of a STATUS/METRICS/REPORTS text
#define S_INT_DIGITS_MAX 18    //  longest decimal number accepted on the wire

//  Duration histogram buckets, upper bounds in µs and as Prometheus `le`.
static const int64_t s_bucket_us[]
    = {50,    100,    250,    500,    1000,    2500,    5000,    10000,   25000,
       50000, 100000, 250000, 500000, 1000000, 2500000, 5000000, 10000000};
static const char *s_bucket_le[]
    = {"0.00005", "0.0001", "0.00025", "0.0005", "0.001", "0.0025", "0.005", "0.01", "0.025",
       "0.05",    "0.1",    "0.25",    "0.5",    "1",     "2.5",    "5",     "10"};
#define S_BUCKETS (sizeof s_bucket_us / sizeof s_bucket_us[0])

//  Broker-made error statuses, counted per stage for METRICS.
static const int s_error_status[] = {400, 500, 503, 504};
#define S_ERROR_KINDS (sizeof s_error_status / sizeof s_error_status[0])

typedef struct _s_request_t s_request_t;
typedef struct _s_worker_t s_worker_t;
typedef struct _s_service_t s_service_t;

//  One request the broker tracks: queued, or in flight on a worker.
struct _s_request_t {
    aigw_table_node_t node;  //  in self->requests; must stay first
    aigw_list_node_t link;   //  on a queue or a worker's list, if any
    bool queued;             //  on a queue (counted in service->queued)
    s_service_t *service;    //  stage the request is at now
    s_worker_t *worker;      //  worker holding it, NULL unless in flight
    aigw_heap_node_t timer;  //  in self->timers: monotonic ms it fires
    int64_t deadline;        //  monotonic ms deadline of the request
    int64_t dispatched_us;   //  monotonic µs of the last dispatch
    char *shard_key;         //  shard key of this stage, NULL if empty
    bool has_envelope;       //  envelope holds content (queued or replayable)
    zmq_msg_t envelope;      //  envelope kept to dispatch or replay
    byte key[];              //  client size byte, client identity, request id
};

//  One registered worker.
struct _s_worker_t {
    aigw_table_node_t node;               //  in self->workers; must stay first
    byte identity[AIGW_BP_IDENTITY_MAX];  //  routing identity
    char *worker_id;                      //  worker id from READY, input to sharding
    char *endpoint;                       //  its peer endpoint (BP/2), NULL if none
    uint64_t id_hash;                     //  mixed hash of worker_id
    s_service_t *service;                 //  service it serves
    size_t index;                         //  position in service->workers
    int credit;                           //  requests it takes at once
    bool replay_safe;                     //  its requests may be replayed elsewhere
    int64_t expires_at;                   //  monotonic ms past which it is dead
    aigw_list_t requests;                 //  requests in flight on it
    aigw_list_t pending;                  //  shard-keyed requests waiting for its credit
    bool dead;                            //  killed, waiting for s_reap
    const char *reason;                   //  why it died (static text)
    s_worker_t *reap_next;                //  next worker on self->reap
    char *report;                         //  latest REPORT, a JSON object; NULL if none
    size_t report_size;                   //  bytes in report
    int64_t report_at;                    //  monotonic ms the report arrived
};

//  One service (pipeline stage).
struct _s_service_t {
    aigw_table_node_t node;           //  in self->services; must stay first
    char *name;                       //  service name
    s_worker_t **workers;             //  live workers
    size_t workers_size;              //  live worker count
    size_t workers_cap;               //  capacity of workers
    size_t rr;                        //  round-robin start among equal credit
    aigw_list_t queue;                //  unsharded requests waiting for credit
    size_t queued;                    //  requests waiting here and on workers' pending
    size_t in_flight;                 //  requests in flight on its workers
    uint64_t requests;                //  requests that arrived for it
    uint64_t errors[S_ERROR_KINDS];   //  broker-made errors by s_error_status
    uint64_t buckets[S_BUCKETS + 1];  //  duration counts; last is +Inf
    uint64_t duration_count;          //  durations observed
    int64_t duration_sum_us;          //  sum of durations, µs
};

//  A peer that asks for the directory: every change is pushed to it.
typedef struct {
    byte identity[AIGW_BP_IDENTITY_MAX];  //  its routing identity
    size_t identity_size;                 //  bytes in identity
    bool worker;                          //  it speaks as a worker (else a client)
    int64_t expires_at;                   //  monotonic ms: forgotten if it stops asking
} s_subscriber_t;

//  A growing text buffer for STATUS, METRICS and REPORTS.
typedef struct {
    char *data;   //  text, NUL-terminated
    size_t size;  //  bytes used, without the NUL
    size_t cap;   //  bytes allocated
    bool failed;  //  an allocation failed; text is truncated
} s_text_t;

//  The actor's private state.
typedef struct {
    zsock_t *pipe;                   //  actor pipe
    zsock_t *router;                 //  the ROUTER socket, NULL if not bound
    void *handle;                    //  libzmq handle of router
    char *endpoint;                  //  bound endpoint, resolved
    int heartbeat_ms;                //  heartbeat interval
    int liveness;                    //  silent intervals before a worker is dead
    size_t queue_max;                //  queued requests per service
    aigw_table_t *services;          //  services by name
    aigw_table_t *workers;           //  workers by routing identity
    aigw_table_t *requests;          //  requests by client identity + request id
    s_service_t **service_list;      //  services in creation order
    size_t services_size;            //  service count
    aigw_heap_t *timers;             //  request timers
    s_worker_t *reap;                //  killed workers waiting for s_reap
    int64_t heartbeat_at;            //  monotonic ms of the next heartbeat round
    bool terminated;                 //  $TERM received
    uint64_t instance;               //  random, told apart from a restarted broker
    uint64_t directory_version;      //  bumped whenever the live workers change
    uint64_t directory_pushed;       //  the version last pushed to subscribers
    zhashx_t *subscribers;           //  hex identity -> s_subscriber_t (section 7)
    zmq_msg_t frames[S_FRAMES_MAX];  //  frames of the message being handled
    size_t frames_size;              //  frames received into frames
} self_t;

static void s_dispatch (self_t *self, s_request_t *req);

//  --------------------------------------------------------------------------
//  Clocks and hashing

//  Monotonic time in ms.
static int64_t
s_mono_ms (void)
{
    struct timespec ts;
    clock_gettime (CLOCK_MONOTONIC, &ts);
    return (int64_t) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

//  Monotonic time in µs.
static int64_t
s_mono_us (void)
{
    struct timespec ts;
    clock_gettime (CLOCK_MONOTONIC, &ts);
    return (int64_t) ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

//  Unix time in ms (the clock of wire deadlines).
static int64_t
s_wall_ms (void)
{
    struct timespec ts;
    clock_gettime (CLOCK_REALTIME, &ts);
    return (int64_t) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

//  Hash of a byte string for the tables.
static uint64_t
s_hash (const void *data, size_t size)
{
    return aigw_bp_mix64 (aigw_bp_fnv1a (data, size));
}

//  --------------------------------------------------------------------------
//  Containers

//  The request whose list node is LINK, or NULL.
static s_request_t *
s_request_of_link (aigw_list_node_t *link)
{
    return link ? (s_request_t *) ((char *) link - offsetof (s_request_t, link)) : NULL;
}

//  The request whose timer is TIMER, or NULL.
static s_request_t *
s_request_of_timer (aigw_heap_node_t *timer)
{
    return timer ? (s_request_t *) ((char *) timer - offsetof (s_request_t, timer)) : NULL;
}

//  Set REQ's timer to fire at AT (monotonic ms).
static void
s_request_set_timer (self_t *self, s_request_t *req, int64_t at)
{
    aigw_heap_update (self->timers, &req->timer, at);
}

//  --------------------------------------------------------------------------
//  Text buffer

//  Append formatted text; on allocation failure mark the buffer failed.
static void __attribute__ ((format (printf, 2, 3)))
s_text_printf (s_text_t *text, const char *format, ...)
{
    while (!text->failed) {
        size_t room = text->cap - text->size;
        va_list args;
        va_start (args, format);
        int len = vsnprintf (text->data + text->size, room, format, args);
        va_end (args);
        if (len < 0) {
            text->failed = true;
            break;
        }
        if ((size_t) len < room) {
            text->size += (size_t) len;
            break;
        }
        size_t cap = text->cap * 2 + (size_t) len;
        char *data = (char *) realloc (text->data, cap);
        if (!data) {
            text->failed = true;
            break;
        }
        text->data = data;
        text->cap = cap;
    }
}

//  Append the SIZE bytes at DATA; on allocation failure mark the buffer
//  failed.
static void
s_text_append (s_text_t *text, const void *data, size_t size)
{
    if (text->failed)
        return;
    if (text->cap - text->size <= size) {
        size_t cap = text->cap * 2 + size + 1;
        char *grown = (char *) realloc (text->data, cap);
        if (!grown) {
            text->failed = true;
            return;
        }
        text->data = grown;
        text->cap = cap;
    }
    memcpy (text->data + text->size, data, size);
    text->size += size;
    text->data[text->size] = 0;
}

//  --------------------------------------------------------------------------
//  Frame helpers

//  Data of frame I.
static const byte *
s_frame_data (self_t *self, size_t i)
{
    return (const byte *) zmq_msg_data (&self->frames[i]);
}

//  Size of frame I.
static size_t
s_frame_size (self_t *self, size_t i)
{
    return zmq_msg_size (&self->frames[i]);
}

//  Parse frame I as a non-negative decimal number. Returns 0, or -1.
static int
s_frame_int (self_t *self, size_t i, int64_t *value)
{
    return aigw_bp_decimal (s_frame_data (self, i), s_frame_size (self, i), S_INT_DIGITS_MAX,
                            value);
}

//  Build the request key for CLIENT and RID into KEY (S_KEY_MAX bytes);
//  the size prefix keeps (client, id) pairs from colliding. Returns its size.
static size_t
s_key_build (byte *key, const void *client, size_t client_size, const void *rid, size_t rid_size)
{
    key[0] = (byte) client_size;
    memcpy (key + 1, client, client_size);
    memcpy (key + 1 + client_size, rid, rid_size);
    return 1 + client_size + rid_size;
}

//  --------------------------------------------------------------------------
//  Sending

//  Send SIZE bytes as one frame, more to follow. After the identity frame
//  of a ROUTER message was accepted the rest cannot fail, so its result is
//  not needed.
static void
s_send_more (self_t *self, const void *data, size_t size)
{
    zmq_send (self->handle, data, size, ZMQ_SNDMORE | ZMQ_DONTWAIT);
}

//  Send the identity and header frames of a client message with CMD.
//  Returns 0, or -1 if the client is gone or its queue is full (nothing sent).
static int
s_send_client_head (self_t *self, const byte *client, size_t client_size, byte cmd, bool more)
{
    if (zmq_send (self->handle, client, client_size, ZMQ_SNDMORE | ZMQ_DONTWAIT) == -1) {
        if (errno == EAGAIN)
            aigw_warn ("broker: client send queue full, message dropped");
        else
            aigw_debug ("broker: client gone, message dropped");
        return -1;
    }
    aigw_bp_send_head (self->handle, AIGW_BP_CLIENT_HEADER, cmd, more);
    return 0;
}

//  Send ERROR STATUS TEXT for request RID to CLIENT.
static void
s_send_error (self_t *self, const byte *client, size_t client_size, const byte *rid,
              size_t rid_size, int status, const char *text)
{
    if (client_size == 0)
        return;  //  one-way: nobody to tell
    if (s_send_client_head (self, client, client_size, AIGW_BP_CLIENT_ERROR, true) == -1)
        return;
    char number[S_STATUS_SIZE];
    int len = snprintf (number, sizeof number, "%d", status);
    s_send_more (self, rid, rid_size);
    s_send_more (self, number, (size_t) len);
    zmq_send (self->handle, text, strlen (text), ZMQ_DONTWAIT);
}

//  Send a one-frame client answer (HEARTBEAT, STATUS, METRICS) to frame 0's
//  sender; TEXT may be NULL for none.
static void
s_send_client_text (self_t *self, byte cmd, const char *text, size_t size)
{
    if (s_send_client_head (self, s_frame_data (self, 0), s_frame_size (self, 0), cmd, text != NULL)
        == -1)
        return;
    if (text)
        zmq_send (self->handle, text, size, ZMQ_DONTWAIT);
}

//  Send a worker command frame (HEARTBEAT, DISCONNECT) to IDENTITY.
//  Returns 0, or -1 with errno set (EHOSTUNREACH: the peer is gone).
static int
s_send_worker_command (self_t *self, const byte *identity, size_t size, byte cmd)
{
    if (zmq_send (self->handle, identity, size, ZMQ_SNDMORE | ZMQ_DONTWAIT) == -1)
        return -1;
    aigw_bp_send_head (self->handle, AIGW_BP_WORKER_HEADER, cmd, false);
    return 0;
}

//  --------------------------------------------------------------------------
//  Services

//  Service NAME, created if new. Returns NULL if the name is invalid, the
//  service cap is reached, or memory ran out.
static s_service_t *
s_service_require (self_t *self, const byte *name, size_t size)
{
    uint64_t hash = s_hash (name, size);
    aigw_table_node_t *node = aigw_table_lookup (self->services, name, size, hash);
    if (node)
        return (s_service_t *) node;
    if (!aigw_bp_name_valid ((const char *) name, size)
        || self->services_size >= AIGW_BP_SERVICES_MAX)
        return NULL;
    s_service_t *service = (s_service_t *) calloc (1, sizeof *service);
    s_service_t **list
        = (s_service_t **) realloc (self->service_list, (self->services_size + 1) * sizeof *list);
    if (list)
        self->service_list = list;
    if (!service || !list || !(service->name = strndup ((const char *) name, size))) {
        free (service);
        return NULL;
    }
    service->node.hash = hash;
    service->node.key = (const byte *) service->name;
    service->node.key_size = size;
    aigw_table_insert (self->services, &service->node);
    self->service_list[self->services_size++] = service;
    return service;
}

//  Count a broker-made error STATUS against SERVICE.
static void
s_service_count_error (s_service_t *service, int status)
{
    for (size_t i = 0; i < S_ERROR_KINDS; i++)
        if (s_error_status[i] == status)
            service->errors[i]++;
}

//  Record one dispatch-to-final-reply duration.
static void
s_service_observe (s_service_t *service, int64_t duration_us)
{
    if (duration_us < 0)
        duration_us = 0;
    size_t i = 0;
    while (i < S_BUCKETS && duration_us > s_bucket_us[i])
        i++;
    service->buckets[i]++;
    service->duration_count++;
    service->duration_sum_us += duration_us;
}

//  Add WORKER to SERVICE's live workers. Returns 0, or -1 if out of memory.
static int
s_service_add_worker (s_service_t *service, s_worker_t *worker)
{
    if (service->workers_size == service->workers_cap) {
        size_t cap = service->workers_cap ? service->workers_cap * 2 : 4;
        s_worker_t **workers = (s_worker_t **) realloc (service->workers, cap * sizeof *workers);
        if (!workers)
            return -1;
        service->workers = workers;
        service->workers_cap = cap;
    }
    worker->index = service->workers_size;
    service->workers[service->workers_size++] = worker;
    return 0;
}

//  Take WORKER off its service's live workers (swap with the last).
static void
s_service_remove_worker (s_service_t *service, s_worker_t *worker)
{
    size_t last = --service->workers_size;
    if (worker->index != last) {
        service->workers[worker->index] = service->workers[last];
        service->workers[worker->index]->index = worker->index;
    }
}

//  The live worker with the most free credit (may be none free); ties go
//  round-robin. The service has at least one worker.
static s_worker_t *
s_service_freest (s_service_t *service)
{
    size_t count = service->workers_size;
    size_t start = service->rr % count;
    s_worker_t *best = NULL;
    long best_free = 0;
    size_t best_index = 0;
    for (size_t n = 0; n < count; n++) {
        size_t i = (start + n) % count;
        s_worker_t *worker = service->workers[i];
        long free_credit = (long) worker->credit - (long) aigw_list_size (&worker->requests);
        if (!best || free_credit > best_free) {
            best = worker;
            best_free = free_credit;
            best_index = i;
        }
    }
    service->rr = best_index + 1;
    return best;
}

//  The owner of SHARD_KEY by rendezvous hashing: the live worker with the
//  highest mix64 (hash (shard key) ^ hash (worker id)). The service has at
//  least one worker.
static s_worker_t *
s_service_owner (s_service_t *service, const char *shard_key)
{
    uint64_t key_hash = aigw_bp_fnv1a (shard_key, strlen (shard_key));
    s_worker_t *best = NULL;
    uint64_t best_score = 0;
    for (size_t i = 0; i < service->workers_size; i++) {
        s_worker_t *worker = service->workers[i];
        uint64_t score = aigw_bp_shard_score (key_hash, worker->id_hash);
        if (!best || score > best_score
            || (score == best_score && strcmp (worker->worker_id, best->worker_id) > 0)) {
            best = worker;
            best_score = score;
        }
    }
    return best;
}

//  --------------------------------------------------------------------------
//  Requests

//  Client identity of REQ.
static const byte *
s_request_client (s_request_t *req)
{
    return req->key + 1;
}

//  Client identity size of REQ.
static size_t
s_request_client_size (s_request_t *req)
{
    return req->key[0];
}

//  Request id of REQ.
static const byte *
s_request_id (s_request_t *req)
{
    return req->key + 1 + req->key[0];
}

//  Request id size of REQ.
static size_t
s_request_id_size (s_request_t *req)
{
    return req->node.key_size - 1 - req->key[0];
}

//  Create a request under KEY (new to the table) for SERVICE, with its timer
//  at DEADLINE. Returns NULL if out of memory.
static s_request_t *
s_request_new (self_t *self, const byte *key, size_t key_size, uint64_t hash, s_service_t *service,
               int64_t deadline)
{
    s_request_t *req = (s_request_t *) malloc (sizeof *req + key_size);
    if (!req)
        return NULL;
    memset (req, 0, sizeof *req);
    memcpy (req->key, key, key_size);
    req->node.hash = hash;
    req->node.key = req->key;
    req->node.key_size = key_size;
    req->service = service;
    req->deadline = deadline;
    aigw_heap_node_init (&req->timer, deadline);
    zmq_msg_init (&req->envelope);
    if (aigw_heap_push (self->timers, &req->timer) == -1) {
        zmq_msg_close (&req->envelope);
        free (req);
        return NULL;
    }
    aigw_table_insert (self->requests, &req->node);
    return req;
}

//  Take REQ off its queue or worker, keeping the counts right.
static void
s_request_detach (s_request_t *req)
{
    if (req->worker) {
        req->service->in_flight--;
        req->worker = NULL;
    }
    if (req->queued) {
        req->service->queued--;
        req->queued = false;
    }
    aigw_list_unlink (&req->link);
}

//  Forget REQ and free it.
static void
s_request_destroy (self_t *self, s_request_t **req_p)
{
    s_request_t *req = *req_p;
    if (!req)
        return;
    s_request_detach (req);
    aigw_table_remove (self->requests, &req->node);
    aigw_heap_remove (self->timers, &req->timer);
    zmq_msg_close (&req->envelope);
    free (req->shard_key);
    free (req);
    *req_p = NULL;
}

//  Answer REQ with a broker-made ERROR and free it.
static void
s_request_fail (self_t *self, s_request_t *req, int status, const char *text)
{
    s_service_count_error (req->service, status);
    s_send_error (self, s_request_client (req), s_request_client_size (req), s_request_id (req),
                  s_request_id_size (req), status, text);
    s_request_destroy (self, &req);
}

//  Replace REQ's shard key with the SIZE bytes at KEY (none if SIZE is 0).
//  Returns 0, or -1 if out of memory.
static int
s_request_set_shard (s_request_t *req, const byte *key, size_t size)
{
    free (req->shard_key);
    req->shard_key = NULL;
    if (size > 0 && !(req->shard_key = strndup ((const char *) key, size)))
        return -1;
    return 0;
}

//  --------------------------------------------------------------------------
//  Workers

//  Free WORKER and what it owns; the caller unlinked it everywhere.
static void
s_worker_free (s_worker_t *worker)
{
    free (worker->worker_id);
    free (worker->endpoint);
    free (worker->report);
    free (worker);
}

//  Forget WORKER's report, if any.
static void
s_worker_forget_report (s_worker_t *worker)
{
    free (worker->report);
    worker->report = NULL;
    worker->report_size = 0;
}

//  Mark WORKER dead: it leaves dispatch and lookup at once; s_reap replays or
//  fails its requests later, outside any loop over broker state.
static void
s_worker_kill (self_t *self, s_worker_t *worker, const char *reason)
{
    if (worker->dead)
        return;
    worker->dead = true;
    worker->reason = reason;
    self->directory_version++;
    aigw_table_remove (self->workers, &worker->node);
    s_service_remove_worker (worker->service, worker);
    worker->reap_next = self->reap;
    self->reap = worker;
}

//  Send REQ's envelope to WORKER and mark it in flight there. A replay-safe
//  worker gets a shared copy; otherwise the envelope moves out of REQ.
//  Returns 0, or -1 if the send failed (the worker was killed; REQ unchanged).
static int
s_worker_send_request (self_t *self, s_worker_t *worker, s_request_t *req)
{
    if (zmq_send (self->handle, worker->identity, worker->node.key_size, ZMQ_SNDMORE | ZMQ_DONTWAIT)
        == -1) {
        s_worker_kill (self, worker, errno == EHOSTUNREACH ? "connection gone" : "send queue full");
        return -1;
    }
    aigw_bp_send_head (self->handle, AIGW_BP_WORKER_HEADER, AIGW_BP_WORKER_REQUEST, true);
    s_send_more (self, s_request_client (req), s_request_client_size (req));
    s_send_more (self, s_request_id (req), s_request_id_size (req));
    zmq_msg_t envelope;
    zmq_msg_init (&envelope);
    if (worker->replay_safe)
        zmq_msg_copy (&envelope, &req->envelope);
    else {
        zmq_msg_move (&envelope, &req->envelope);
        req->has_envelope = false;
    }
    zmq_msg_send (&envelope, self->handle, ZMQ_DONTWAIT);
    zmq_msg_close (&envelope);

    aigw_list_append (&worker->requests, &req->link);
    req->worker = worker;
    req->service->in_flight++;
    req->dispatched_us = s_mono_us ();
    s_request_set_timer (self, req, req->deadline + AIGW_BP_GRACE_MS);
    return 0;
}

//  Give WORKER's free credit to waiting requests: first its own shard-keyed
//  ones, then its service's queue.
static void
s_worker_drain (self_t *self, s_worker_t *worker)
{
    s_service_t *service = worker->service;
    while (!worker->dead && aigw_list_size (&worker->requests) < (size_t) worker->credit) {
        s_request_t *req = s_request_of_link (aigw_list_first (&worker->pending));
        if (!req)
            req = s_request_of_link (aigw_list_first (&service->queue));
        if (!req)
            break;
        s_request_detach (req);
        if (s_worker_send_request (self, worker, req) == -1) {
            s_dispatch (self, req);
            break;
        }
    }
}

//  Finish killed workers: replay each replayable request in flight on it,
//  fail the rest with 503, re-dispatch its pending requests, free it. Call
//  only where no caller holds a worker or request pointer.
static void
s_reap (self_t *self)
{
    while (self->reap) {
        s_worker_t *worker = self->reap;
        self->reap = worker->reap_next;
        size_t replayed = 0, failed = 0;
        s_request_t *req;
        while ((req = s_request_of_link (aigw_list_first (&worker->requests)))) {
            s_request_detach (req);
            if (req->has_envelope) {
                replayed++;
                s_dispatch (self, req);
            }
            else {
                failed++;
                s_request_fail (self, req, 503, "worker died");
            }
        }
        while ((req = s_request_of_link (aigw_list_first (&worker->pending)))) {
            s_request_detach (req);
            s_dispatch (self, req);
        }
        aigw_info ("broker: worker %s of %s dead (%s): %zu requests replayed, "
                   "%zu failed",
                   worker->worker_id, worker->service->name, worker->reason, replayed, failed);
        s_worker_free (worker);
    }
}

//  --------------------------------------------------------------------------
//  Dispatch

//  Send REQ (detached, envelope held, service set) to the right worker, or
//  queue it, or fail it. Section 5 of the protocol.
static void
s_dispatch (self_t *self, s_request_t *req)
{
    s_service_t *service = req->service;
    while (true) {
        if (service->workers_size == 0) {
            s_request_fail (self, req, 503, "no live worker");
            return;
        }
        s_worker_t *worker;
        aigw_list_t *queue;
        if (req->shard_key) {
            worker = s_service_owner (service, req->shard_key);
            queue = &worker->pending;
        }
        else {
            worker = s_service_freest (service);
            queue = &service->queue;
        }
        if (aigw_list_size (queue) > 0
            || aigw_list_size (&worker->requests) >= (size_t) worker->credit) {
            if (service->queued >= self->queue_max) {
                s_request_fail (self, req, 503, "queue full");
                return;
            }
            aigw_list_append (queue, &req->link);
            req->queued = true;
            service->queued++;
            s_request_set_timer (self, req, req->deadline);
            return;
        }
        if (s_worker_send_request (self, worker, req) == 0)
            return;
        //  That worker is dead now; choose again among the others.
    }
}

//  Send a one-way request (no client, no credit, never queued) to SERVICE:
//  frames 0 to 8 of a worker REPLY with an empty client. Dropped if the
//  service has no live worker.
static void
s_dispatch_oneway (self_t *self)
{
    //  [4] request-id [6] next-service [7] shard-key [8] envelope
    s_service_t *service = s_service_require (self, s_frame_data (self, 6), s_frame_size (self, 6));
    size_t shard_size = s_frame_size (self, 7);
    size_t rid_size = s_frame_size (self, 4);
    if (!service || shard_size > AIGW_BP_SHARD_KEY_MAX || rid_size > AIGW_BP_REQUEST_ID_MAX) {
        aigw_debug ("broker: bad one-way request dropped");
        return;
    }
    char shard_key[AIGW_BP_SHARD_KEY_MAX + 1];
    memcpy (shard_key, s_frame_data (self, 7), shard_size);
    shard_key[shard_size] = 0;
    service->requests++;
    while (true) {
        if (service->workers_size == 0) {
            s_service_count_error (service, 503);
            aigw_debug ("broker: one-way request to %s dropped: no live worker", service->name);
            return;
        }
        s_worker_t *worker
            = shard_size ? s_service_owner (service, shard_key) : s_service_freest (service);
        if (zmq_send (self->handle, worker->identity, worker->node.key_size,
                      ZMQ_SNDMORE | ZMQ_DONTWAIT)
            != -1) {
            byte cmd = AIGW_BP_WORKER_REQUEST;
            s_send_more (self, AIGW_BP_WORKER_HEADER, AIGW_BP_HEADER_SIZE);
            s_send_more (self, &cmd, 1);
            s_send_more (self, "", 0);
            s_send_more (self, s_frame_data (self, 4), rid_size);
            zmq_msg_send (&self->frames[8], self->handle, ZMQ_DONTWAIT);
            return;
        }
        if (errno != EHOSTUNREACH) {
            aigw_warn ("broker: one-way request to %s dropped: worker queue full", service->name);
            return;
        }
        s_worker_kill (self, worker, "connection gone");
    }
}

//  --------------------------------------------------------------------------
//  Client messages

//  REQUEST: [3] service [4] shard-key [5] request-id [6] deadline [7] envelope
static void
s_handle_client_request (self_t *self)
{
    const byte *client = s_frame_data (self, 0);
    size_t client_size = s_frame_size (self, 0);
    const byte *rid = s_frame_data (self, 5);
    size_t rid_size = s_frame_size (self, 5);
    if (rid_size == 0 || rid_size > AIGW_BP_REQUEST_ID_MAX || client_size > AIGW_BP_IDENTITY_MAX) {
        aigw_debug ("broker: request with a bad request id dropped");
        return;
    }
    int64_t deadline_wall;
    size_t shard_size = s_frame_size (self, 4);
    if (s_frame_int (self, 6, &deadline_wall) == -1 || shard_size > AIGW_BP_SHARD_KEY_MAX
        || memchr (rid, 0, rid_size) || memchr (s_frame_data (self, 4), 0, shard_size)
        || !aigw_bp_name_valid ((const char *) s_frame_data (self, 3), s_frame_size (self, 3))) {
        s_send_error (self, client, client_size, rid, rid_size, 400, "bad request");
        return;
    }
    byte key[S_KEY_MAX];
    size_t key_size = s_key_build (key, client, client_size, rid, rid_size);
    uint64_t hash = s_hash (key, key_size);
    if (aigw_table_lookup (self->requests, key, key_size, hash)) {
        aigw_warn ("broker: duplicate request id from a client, dropped");
        return;
    }
    s_service_t *service = s_service_require (self, s_frame_data (self, 3), s_frame_size (self, 3));
    if (!service) {
        s_send_error (self, client, client_size, rid, rid_size, 503, "too many services");
        return;
    }
    service->requests++;

    int64_t now = s_mono_ms ();
    int64_t left = AIGW_BP_DEADLINE_MS;
    if (deadline_wall > 0)
        left = deadline_wall - s_wall_ms ();
    if (left > AIGW_BP_DEADLINE_MAX_MS)
        left = AIGW_BP_DEADLINE_MAX_MS;
    int status = 0;
    const char *text = NULL;
    if (left <= 0) {
        status = 504;
        text = "deadline passed";
    }
    else if (service->workers_size == 0) {
        status = 503;
        text = "no live worker";
    }
    s_request_t *req = NULL;
    if (!status) {
        req = s_request_new (self, key, key_size, hash, service, now + left);
        if (!req || s_request_set_shard (req, s_frame_data (self, 4), shard_size) == -1) {
            s_request_destroy (self, &req);
            status = 503;
            text = "out of memory";
        }
    }
    if (status) {
        s_service_count_error (service, status);
        s_send_error (self, client, client_size, rid, rid_size, status, text);
        return;
    }
    zmq_msg_move (&req->envelope, &self->frames[7]);
    req->has_envelope = true;
    s_dispatch (self, req);
}

//  Write the STATUS text: one line per service.
static void
s_status_text (self_t *self, s_text_t *text)
{
    for (size_t i = 0; i < self->services_size; i++) {
        s_service_t *service = self->service_list[i];
        s_text_printf (text, "%s %zu %zu %zu\n", service->name, service->workers_size,
                       service->in_flight, service->queued);
    }
}

//  Write one gauge or counter family with a value per service.
static void
s_metrics_family (self_t *self, s_text_t *text, const char *name, const char *type,
                  const char *help, size_t field)
{
    s_text_printf (text, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
    for (size_t i = 0; i < self->services_size; i++) {
        s_service_t *service = self->service_list[i];
        uint64_t value = field == 0   ? service->requests
                         : field == 1 ? service->workers_size
                         : field == 2 ? service->in_flight
                                      : service->queued;
        s_text_printf (text, "%s{stage=\"%s\"} %" PRIu64 "\n", name, service->name, value);
    }
}

//  Write the METRICS text (Prometheus exposition format). Service names are
//  [A-Za-z0-9._-], so label values need no escaping.
static void
s_metrics_text (self_t *self, s_text_t *text)
{
    s_metrics_family (self, text, "aigw_stage_requests_total", "counter",
                      "Requests that arrived at each stage through the broker.", 0);
    s_text_printf (text, "# HELP aigw_stage_errors_total Errors the broker answered itself.\n"
                         "# TYPE aigw_stage_errors_total counter\n");
    for (size_t i = 0; i < self->services_size; i++) {
        s_service_t *service = self->service_list[i];
        for (size_t e = 0; e < S_ERROR_KINDS; e++)
            s_text_printf (text,
                           "aigw_stage_errors_total{stage=\"%s\",status=\"%d\"} %" PRIu64 "\n",
                           service->name, s_error_status[e], service->errors[e]);
    }
    s_metrics_family (self, text, "aigw_stage_workers", "gauge", "Live workers of each stage.", 1);
    s_metrics_family (self, text, "aigw_stage_in_flight", "gauge",
                      "Requests in flight on each stage's workers.", 2);
    s_metrics_family (self, text, "aigw_stage_queued", "gauge",
                      "Requests waiting for a worker's credit.", 3);
    s_text_printf (text, "# HELP aigw_stage_duration_seconds Time from dispatch to the "
                         "worker's final reply.\n"
                         "# TYPE aigw_stage_duration_seconds histogram\n");
    for (size_t i = 0; i < self->services_size; i++) {
        s_service_t *service = self->service_list[i];
        uint64_t cumulative = 0;
        for (size_t b = 0; b < S_BUCKETS; b++) {
            cumulative += service->buckets[b];
            s_text_printf (text,
                           "aigw_stage_duration_seconds_bucket{stage=\"%s\",le=\"%s\"} "
                           "%" PRIu64 "\n",
                           service->name, s_bucket_le[b], cumulative);
        }
        s_text_printf (text,
                       "aigw_stage_duration_seconds_bucket{stage=\"%s\",le=\"+Inf\"} "
                       "%" PRIu64 "\n"
                       "aigw_stage_duration_seconds_sum{stage=\"%s\"} %.6f\n"
                       "aigw_stage_duration_seconds_count{stage=\"%s\"} %" PRIu64 "\n",
                       service->name, service->duration_count, service->name,
                       (double) service->duration_sum_us / 1e6, service->name,
                       service->duration_count);
    }
}

//  Answer STATUS or METRICS (CMD) with the text built by the matching writer.
static void
s_handle_client_text (self_t *self, byte cmd)
{
    s_text_t text = {(char *) malloc (S_TEXT_INITIAL), 0, S_TEXT_INITIAL, false};
    if (!text.data)
        return;
    text.data[0] = 0;
    if (cmd == AIGW_BP_CLIENT_STATUS)
        s_status_text (self, &text);
    else
        s_metrics_text (self, &text);
    if (text.failed)
        aigw_warn ("broker: out of memory building a report");
    else
        s_send_client_text (self, cmd, text.data, text.size);
    free (text.data);
}

//  REPORTS: [3] service. Answers the JSON array of the latest reports of
//  the service's live workers (section 4a); [] for an unknown service.
static void
s_handle_client_reports (self_t *self)
{
    s_text_t text = {(char *) malloc (S_TEXT_INITIAL), 0, S_TEXT_INITIAL, false};
    if (!text.data)
        return;
    text.data[0] = 0;
    const byte *name = s_frame_data (self, 3);
    size_t name_size = s_frame_size (self, 3);
    s_service_t *service = NULL;
    if (aigw_bp_name_valid ((const char *) name, name_size))
        service = (s_service_t *) aigw_table_lookup (self->services, name, name_size,
                                                     s_hash (name, name_size));
    int64_t now = s_mono_ms ();
    s_text_append (&text, "[", 1);
    bool first = true;
    for (size_t i = 0; service && i < service->workers_size; i++) {
        s_worker_t *worker = service->workers[i];
        if (!worker->report)
            continue;
        char identity[2 * AIGW_BP_IDENTITY_MAX + 1];
        aigw_hex_encode (worker->identity, worker->node.key_size, identity);
        //  Service names are [A-Za-z0-9._-]: no JSON escaping needed.
        s_text_printf (&text,
                       "%s{\"worker\":\"%s\",\"service\":\"%s\",\"age_ms\":%" PRId64 ",\"report\":",
                       first ? "" : ",", identity, service->name, now - worker->report_at);
        s_text_append (&text, worker->report, worker->report_size);
        s_text_append (&text, "}", 1);
        first = false;
    }
    s_text_append (&text, "]", 1);
    if (text.failed)
        aigw_warn ("broker: out of memory building a REPORTS answer");
    else
        s_send_client_text (self, AIGW_BP_CLIENT_REPORTS, text.data, text.size);
    free (text.data);
}

//  Send the directory to the peer IDENTITY (SIZE bytes) with HEADER and
//  CMD: [3] version [4] the live workers, one "service worker-id endpoint
//  flags" line each (endpoint "-" for a worker without one). Returns 0, or
//  -1 if the peer is gone.
static int
s_send_directory (self_t *self, const byte *identity, size_t size, const char *header, byte cmd)
{
    char version[64];
    int len = snprintf (version, sizeof version, "%016" PRIx64 "-%" PRIu64, self->instance,
                        self->directory_version);
    int rc = 0;
    s_text_t text = {(char *) malloc (S_TEXT_INITIAL), 0, S_TEXT_INITIAL, false};
    if (!text.data)
        return 0;
    text.data[0] = 0;
    for (size_t i = 0; i < self->services_size; i++) {
        s_service_t *service = self->service_list[i];
        for (size_t w = 0; w < service->workers_size; w++) {
            s_worker_t *worker = service->workers[w];
            s_text_printf (&text, "%s %s %s %s\n", service->name, worker->worker_id,
                           worker->endpoint ? worker->endpoint : "-",
                           worker->replay_safe ? "R" : "-");
        }
    }
    //  A peer that is gone fails the identity frame, and nothing is sent.
    if (text.failed)
        rc = 0;
    else if (zmq_send (self->handle, identity, size, ZMQ_SNDMORE | ZMQ_DONTWAIT) == -1)
        rc = -1;
    else {
        aigw_bp_send_head (self->handle, header, cmd, true);
        s_send_more (self, version, (size_t) len);
        zmq_send (self->handle, text.data, text.size, ZMQ_DONTWAIT);
    }
    free (text.data);
    return rc;
}

//  DIRECTORY: [3] the version the peer knows. The peer subscribes (every
//  change is pushed to it while it keeps asking), and gets the directory
//  now unless it knows this version (section 7).
static void
s_handle_directory (self_t *self, const char *header, byte cmd)
{
    const byte *identity = s_frame_data (self, 0);
    size_t size = s_frame_size (self, 0);
    char key[2 * AIGW_BP_IDENTITY_MAX + 1];
    aigw_hex_encode (identity, size, key);
    s_subscriber_t *sub = (s_subscriber_t *) zhashx_lookup (self->subscribers, key);
    if (!sub) {
        sub = (s_subscriber_t *) calloc (1, sizeof *sub);
        if (!sub)
            return;
        memcpy (sub->identity, identity, size);
        sub->identity_size = size;
        zhashx_insert (self->subscribers, key, sub);
    }
    sub->worker = cmd == AIGW_BP_WORKER_DIRECTORY;
    sub->expires_at = s_mono_ms () + (int64_t) self->heartbeat_ms * self->liveness;
    char version[64];
    int len = snprintf (version, sizeof version, "%016" PRIx64 "-%" PRIu64, self->instance,
                        self->directory_version);
    if (s_frame_size (self, 3) != (size_t) len
        || memcmp (s_frame_data (self, 3), version, (size_t) len) != 0)
        s_send_directory (self, identity, size, header, cmd);
}

//  Push a changed directory to every subscriber; forget the silent and the
//  gone ones.
static void
s_push_directory (self_t *self)
{
    if (self->directory_pushed == self->directory_version)
        return;
    self->directory_pushed = self->directory_version;
    int64_t now = s_mono_ms ();
    zlistx_t *keys = zhashx_keys (self->subscribers);
    for (char *key = (char *) zlistx_first (keys); key; key = (char *) zlistx_next (keys)) {
        s_subscriber_t *sub = (s_subscriber_t *) zhashx_lookup (self->subscribers, key);
        if (now >= sub->expires_at
            || s_send_directory (self, sub->identity, sub->identity_size,
                                 sub->worker ? AIGW_BP_WORKER_HEADER : AIGW_BP_CLIENT_HEADER,
                                 sub->worker ? AIGW_BP_WORKER_DIRECTORY : AIGW_BP_CLIENT_DIRECTORY)
                   == -1)
            zhashx_delete (self->subscribers, key);
    }
    zlistx_destroy (&keys);
}

//  A message with the client header; frames [0] identity [1] header [2] cmd.
static void
s_handle_client (self_t *self, byte cmd)
{
    size_t frames = self->frames_size;
    if (cmd == AIGW_BP_CLIENT_REQUEST && frames == 8)
        s_handle_client_request (self);
    else if (cmd == AIGW_BP_CLIENT_HEARTBEAT && frames == 3)
        s_send_client_text (self, AIGW_BP_CLIENT_HEARTBEAT, NULL, 0);
    else if ((cmd == AIGW_BP_CLIENT_STATUS || cmd == AIGW_BP_CLIENT_METRICS) && frames == 3)
        s_handle_client_text (self, cmd);
    else if (cmd == AIGW_BP_CLIENT_REPORTS && frames == 4)
        s_handle_client_reports (self);
    else if (cmd == AIGW_BP_CLIENT_DIRECTORY && frames == 4)
        s_handle_directory (self, AIGW_BP_CLIENT_HEADER, AIGW_BP_CLIENT_DIRECTORY);
    else
        aigw_debug ("broker: malformed client message dropped (command %d, %zu frames)", cmd,
                    frames);
}

//  --------------------------------------------------------------------------
//  Worker messages

//  READY: [3] service [4] worker-id [5] credit [6] flags [7] endpoint (BP/2,
//  optional). WORKER is the sender if registered, else NULL.
static void
s_handle_worker_ready (self_t *self, s_worker_t *worker)
{
    int64_t credit;
    const byte *id = s_frame_data (self, 4);
    size_t id_size = s_frame_size (self, 4);
    const byte *endpoint = self->frames_size == 8 ? s_frame_data (self, 7) : NULL;
    size_t endpoint_size = endpoint ? s_frame_size (self, 7) : 0;
    if (!aigw_bp_name_valid ((const char *) s_frame_data (self, 3), s_frame_size (self, 3))
        || !aigw_bp_worker_id_valid (id, id_size) || s_frame_int (self, 5, &credit) == -1
        || credit < 1 || credit > AIGW_BP_CREDIT_MAX
        || (endpoint && !aigw_bp_worker_id_valid (endpoint, endpoint_size))) {
        aigw_warn ("broker: invalid READY ignored");
        return;
    }
    char *endpoint_text = endpoint ? strndup ((const char *) endpoint, endpoint_size) : NULL;
    bool replay_safe
        = memchr (s_frame_data (self, 6), AIGW_BP_REPLAY_SAFE_FLAG, s_frame_size (self, 6)) != NULL;
    int64_t expires_at = s_mono_ms () + (int64_t) self->heartbeat_ms * self->liveness;
    if (worker) {
        //  Registered already: refresh it, or re-register if it changed role.
        if (strlen (worker->service->name) == s_frame_size (self, 3)
            && memcmp (worker->service->name, s_frame_data (self, 3), s_frame_size (self, 3)) == 0
            && strlen (worker->worker_id) == id_size
            && memcmp (worker->worker_id, id, id_size) == 0) {
            worker->credit = (int) credit;
            if (worker->replay_safe != replay_safe
                || !(endpoint_text ? worker->endpoint && streq (worker->endpoint, endpoint_text)
                                   : !worker->endpoint))
                self->directory_version++;
            worker->replay_safe = replay_safe;
            worker->expires_at = expires_at;
            free (worker->endpoint);
            worker->endpoint = endpoint_text;
            //  Section 4a: any READY makes the broker forget the report.
            s_worker_forget_report (worker);
            s_worker_drain (self, worker);
            return;
        }
        s_worker_kill (self, worker, "registered again");
    }
    s_service_t *service = s_service_require (self, s_frame_data (self, 3), s_frame_size (self, 3));
    worker = (s_worker_t *) calloc (1, sizeof *worker);
    if (!service || !worker || !(worker->worker_id = strndup ((const char *) id, id_size))
        || s_service_add_worker (service, worker) == -1) {
        aigw_warn ("broker: cannot register a worker (too many services or no memory)");
        if (worker)
            free (worker->worker_id);
        free (worker);
        free (endpoint_text);
        return;
    }
    worker->endpoint = endpoint_text;
    self->directory_version++;
    size_t identity_size = s_frame_size (self, 0);
    memcpy (worker->identity, s_frame_data (self, 0), identity_size);
    worker->node.key = worker->identity;
    worker->node.key_size = identity_size;
    worker->node.hash = s_hash (worker->identity, identity_size);
    worker->id_hash = aigw_bp_id_hash (worker->worker_id);
    worker->service = service;
    worker->credit = (int) credit;
    worker->replay_safe = replay_safe;
    worker->expires_at = expires_at;
    aigw_table_insert (self->workers, &worker->node);
    aigw_info ("broker: worker %s ready for %s (credit %d%s)", worker->worker_id, service->name,
               worker->credit, replay_safe ? ", replay-safe" : "");
    //  Answer at once, so the worker knows the broker heard it.
    s_send_worker_command (self, worker->identity, identity_size, AIGW_BP_WORKER_HEARTBEAT);
    s_worker_drain (self, worker);
}

//  REPLY: [3] client [4] request-id [5] flags [6] next-service [7] shard-key
//  [8] envelope, from registered WORKER.
static void
s_handle_worker_reply (self_t *self, s_worker_t *worker)
{
    if (s_frame_size (self, 5) != 1) {
        aigw_debug ("broker: reply with bad flags dropped");
        return;
    }
    int flags = *s_frame_data (self, 5);
    size_t client_size = s_frame_size (self, 3);
    size_t rid_size = s_frame_size (self, 4);
    if (client_size == 0) {
        if (flags & AIGW_REPLY_FORWARD)
            s_dispatch_oneway (self);
        return;  //  a reply to a one-way request: dropped
    }
    if (client_size > AIGW_BP_IDENTITY_MAX || rid_size == 0 || rid_size > AIGW_BP_REQUEST_ID_MAX) {
        aigw_debug ("broker: reply with bad client or request id dropped");
        return;
    }
    byte key[S_KEY_MAX];
    size_t key_size
        = s_key_build (key, s_frame_data (self, 3), client_size, s_frame_data (self, 4), rid_size);
    s_request_t *req
        = (s_request_t *) aigw_table_lookup (self->requests, key, key_size, s_hash (key, key_size));
    if (!req || req->worker != worker) {
        aigw_debug ("broker: reply for a request not held by its sender dropped");
        return;
    }
    if (!(flags & AIGW_REPLY_LAST)) {
        if (flags & AIGW_REPLY_FORWARD) {
            aigw_debug ("broker: FORWARD without LAST dropped");
            return;
        }
        //  A chunk of a streamed answer.
        if (s_send_client_head (self, s_request_client (req), client_size, AIGW_BP_CLIENT_REPLY,
                                true)
            == 0) {
            byte no_flags = 0;
            s_send_more (self, s_request_id (req), rid_size);
            s_send_more (self, &no_flags, 1);
            zmq_msg_send (&self->frames[8], self->handle, ZMQ_DONTWAIT);
        }
        return;
    }
    //  LAST: this worker is done with it; its credit returns.
    s_service_observe (req->service, s_mono_us () - req->dispatched_us);
    s_request_detach (req);
    if (flags & AIGW_REPLY_FORWARD) {
        size_t shard_size = s_frame_size (self, 7);
        s_service_t *next
            = s_service_require (self, s_frame_data (self, 6), s_frame_size (self, 6));
        if (!next || shard_size > AIGW_BP_SHARD_KEY_MAX
            || s_request_set_shard (req, s_frame_data (self, 7), shard_size) == -1)
            s_request_fail (self, req, 500, "bad forward");
        else {
            req->service = next;
            next->requests++;
            zmq_msg_close (&req->envelope);
            zmq_msg_init (&req->envelope);
            zmq_msg_move (&req->envelope, &self->frames[8]);
            req->has_envelope = true;
            s_dispatch (self, req);
        }
    }
    else {
        if (s_send_client_head (self, s_request_client (req), client_size, AIGW_BP_CLIENT_REPLY,
                                true)
            == 0) {
            byte last = AIGW_REPLY_LAST;
            s_send_more (self, s_request_id (req), rid_size);
            s_send_more (self, &last, 1);
            zmq_msg_send (&self->frames[8], self->handle, ZMQ_DONTWAIT);
        }
        s_request_destroy (self, &req);
    }
    s_worker_drain (self, worker);
}

//  True if the SIZE bytes at DATA are a JSON object within the report caps.
static bool
s_report_valid (const byte *data, size_t size)
{
    if (size > AIGW_BP_REPORT_MAX
        || !aigw_json_depth_ok ((const char *) data, size, AIGW_BP_REPORT_DEPTH_MAX))
        return false;
    json_error_t error;
    json_t *json = json_loadb ((const char *) data, size, 0, &error);
    bool valid = json && json_is_object (json);
    json_decref (json);
    return valid;
}

//  REPORT: [3] report, from registered WORKER. Keeps it if valid, replacing
//  the previous one; drops it otherwise.
static void
s_handle_worker_report (self_t *self, s_worker_t *worker)
{
    const byte *data = s_frame_data (self, 3);
    size_t size = s_frame_size (self, 3);
    if (!s_report_valid (data, size)) {
        aigw_debug ("broker: invalid report from %s dropped (%zu bytes)", worker->worker_id, size);
        return;
    }
    char *report = (char *) malloc (size + 1);
    if (!report) {
        aigw_warn ("broker: out of memory keeping a report");
        return;
    }
    memcpy (report, data, size);
    report[size] = 0;
    s_worker_forget_report (worker);
    worker->report = report;
    worker->report_size = size;
    worker->report_at = s_mono_ms ();
}

//  A message with the worker header; frames [0] identity [1] header [2] cmd.
static void
s_handle_worker (self_t *self, byte cmd)
{
    const byte *identity = s_frame_data (self, 0);
    size_t identity_size = s_frame_size (self, 0);
    s_worker_t *worker = (s_worker_t *) aigw_table_lookup (self->workers, identity, identity_size,
                                                           s_hash (identity, identity_size));
    if (cmd == AIGW_BP_WORKER_READY) {
        if (self->frames_size == 7 || self->frames_size == 8)
            s_handle_worker_ready (self, worker);
        else
            aigw_debug ("broker: malformed READY dropped");
        return;
    }
    if (!worker) {
        //  A worker we do not know (a restart forgot it): make it register.
        if (cmd != AIGW_BP_WORKER_DISCONNECT)
            s_send_worker_command (self, identity, identity_size, AIGW_BP_WORKER_DISCONNECT);
        return;
    }
    worker->expires_at = s_mono_ms () + (int64_t) self->heartbeat_ms * self->liveness;
    if (cmd == AIGW_BP_WORKER_REPLY && self->frames_size == 9)
        s_handle_worker_reply (self, worker);
    else if (cmd == AIGW_BP_WORKER_DISCONNECT)
        s_worker_kill (self, worker, "disconnected");
    else if (cmd == AIGW_BP_WORKER_REPORT && self->frames_size == 4)
        s_handle_worker_report (self, worker);
    else if (cmd == AIGW_BP_WORKER_DIRECTORY && self->frames_size == 4)
        s_handle_directory (self, AIGW_BP_WORKER_HEADER, AIGW_BP_WORKER_DIRECTORY);
    else if (cmd != AIGW_BP_WORKER_HEARTBEAT)
        aigw_debug ("broker: malformed worker message dropped (command %d, %zu frames)", cmd,
                    self->frames_size);
}

//  --------------------------------------------------------------------------
//  The loop

//  Receive one message into self->frames. Returns 1 if one was read, 0 if
//  none is waiting, -1 on error. A message with more than S_FRAMES_MAX
//  frames is read whole and reported with frames_size 0.
static int
s_recv_message (self_t *self)
{
    zmq_msg_t *frames = self->frames;
    zmq_msg_init (&frames[0]);
    if (zmq_msg_recv (&frames[0], self->handle, ZMQ_DONTWAIT) == -1) {
        zmq_msg_close (&frames[0]);
        return errno == EAGAIN ? 0 : -1;
    }
    size_t count = 1;
    bool overflow = false;
    bool more = zmq_msg_more (&frames[0]);
    while (more) {
        zmq_msg_t scratch;
        zmq_msg_t *frame = count < S_FRAMES_MAX ? &frames[count] : &scratch;
        zmq_msg_init (frame);
        if (zmq_msg_recv (frame, self->handle, 0) == -1) {
            zmq_msg_close (frame);
            overflow = true;
            break;
        }
        more = zmq_msg_more (frame);
        if (frame == &scratch) {
            zmq_msg_close (&scratch);
            overflow = true;
        }
        else
            count++;
    }
    if (overflow) {
        for (size_t i = 0; i < count; i++)
            zmq_msg_close (&frames[i]);
        self->frames_size = 0;
        aigw_debug ("broker: oversized message dropped");
        return 1;
    }
    self->frames_size = count;
    return 1;
}

//  Handle the message in self->frames, then release its frames.
static void
s_handle_message (self_t *self)
{
    size_t frames = self->frames_size;
    if (frames == 0)
        return;
    if (frames >= 3 && s_frame_size (self, 1) == AIGW_BP_HEADER_SIZE
        && s_frame_size (self, 2) == 1) {
        byte cmd = *s_frame_data (self, 2);
        if (memcmp (s_frame_data (self, 1), AIGW_BP_CLIENT_HEADER, AIGW_BP_HEADER_SIZE) == 0)
            s_handle_client (self, cmd);
        else if (memcmp (s_frame_data (self, 1), AIGW_BP_WORKER_HEADER, AIGW_BP_HEADER_SIZE) == 0)
            s_handle_worker (self, cmd);
        else
            aigw_debug ("broker: message with an unknown header dropped");
    }
    else
        aigw_debug ("broker: malformed message dropped (%zu frames)", frames);
    for (size_t i = 0; i < frames; i++)
        zmq_msg_close (&self->frames[i]);
    self->frames_size = 0;
}

//  Handle every waiting message, up to S_DRAIN_MAX.
static void
s_drain (self_t *self)
{
    for (int count = 0; count < S_DRAIN_MAX; count++) {
        int rc = s_recv_message (self);
        if (rc <= 0)
            break;
        s_handle_message (self);
        s_reap (self);
    }
    s_push_directory (self);
}

//  Heartbeat round: expire silent workers, heartbeat the others.
static void
s_heartbeat (self_t *self, int64_t now)
{
    for (size_t s = 0; s < self->services_size; s++) {
        s_service_t *service = self->service_list[s];
        //  Backwards, so that a kill's swap-remove moves a visited worker.
        for (size_t i = service->workers_size; i-- > 0;) {
            s_worker_t *worker = service->workers[i];
            if (now >= worker->expires_at)
                s_worker_kill (self, worker, "silent");
            else if (s_send_worker_command (self, worker->identity, worker->node.key_size,
                                            AIGW_BP_WORKER_HEARTBEAT)
                         == -1
                     && errno == EHOSTUNREACH)
                s_worker_kill (self, worker, "connection gone");
        }
    }
}

//  Fire due timers: request expiries, then the heartbeat round.
static void
s_handle_timers (self_t *self)
{
    int64_t now = s_mono_ms ();
    s_request_t *req;
    while ((req = s_request_of_timer (aigw_heap_top (self->timers))) && req->timer.key <= now) {
        if (req->queued)
            s_request_fail (self, req, 504, "deadline passed in queue");
        else {
            //  In flight past deadline + grace: the edge gave up long ago.
            s_worker_t *worker = req->worker;
            aigw_debug ("broker: request in flight on %s expired", req->service->name);
            s_request_destroy (self, &req);
            if (worker)
                s_worker_drain (self, worker);
        }
        s_reap (self);
    }
    if (now >= self->heartbeat_at) {
        s_heartbeat (self, now);
        self->heartbeat_at = now + self->heartbeat_ms;
        s_reap (self);
    }
    s_push_directory (self);
}

//  Handle one command on the pipe.
static void
s_handle_pipe (self_t *self)
{
    char *command = zstr_recv (self->pipe);
    if (!command || streq (command, "$TERM"))
        self->terminated = true;
    else if (streq (command, "ENDPOINT"))
        zstr_send (self->pipe, self->endpoint ? self->endpoint : "");
    else
        aigw_warn ("broker: unknown pipe command");
    zstr_free (&command);
}

//  Free SELF and everything it tracks.
static void
s_self_destroy (self_t **self_p)
{
    self_t *self = *self_p;
    if (!self)
        return;
    aigw_table_node_t *node = self->requests ? aigw_table_first (self->requests) : NULL;
    while (node) {
        s_request_t *req = (s_request_t *) node;
        node = aigw_table_next (self->requests, node);
        zmq_msg_close (&req->envelope);
        free (req->shard_key);
        free (req);
    }
    while (self->reap) {
        //  Killed workers are off the table; their requests are freed above.
        s_worker_t *worker = self->reap;
        self->reap = worker->reap_next;
        s_worker_free (worker);
    }
    node = self->workers ? aigw_table_first (self->workers) : NULL;
    while (node) {
        s_worker_t *worker = (s_worker_t *) node;
        node = aigw_table_next (self->workers, node);
        s_worker_free (worker);
    }
    for (size_t i = 0; i < self->services_size; i++) {
        free (self->service_list[i]->name);
        free (self->service_list[i]->workers);
        free (self->service_list[i]);
    }
    free (self->service_list);
    aigw_table_destroy (&self->services);
    aigw_table_destroy (&self->workers);
    aigw_table_destroy (&self->requests);
    aigw_heap_destroy (&self->timers);
    zhashx_destroy (&self->subscribers);
    zsock_destroy (&self->router);
    zstr_free (&self->endpoint);
    free (self);
    *self_p = NULL;
}

//  Create the actor state from ARGS (0 settings take defaults). Returns
//  NULL if out of memory; the socket is not bound yet.
static self_t *
s_self_new (zsock_t *pipe, aigw_broker_args_t *args)
{
    self_t *self = (self_t *) calloc (1, sizeof *self);
    if (!self)
        return NULL;
    self->pipe = pipe;
    self->heartbeat_ms = args->heartbeat_ms > 0 ? args->heartbeat_ms : AIGW_BP_HEARTBEAT_MS;
    self->liveness = args->liveness > 0 ? args->liveness : AIGW_BP_LIVENESS;
    self->queue_max = args->queue_max > 0 ? (size_t) args->queue_max : AIGW_BROKER_QUEUE_MAX;
    self->instance
        = (uint64_t) zclock_usecs () ^ ((uint64_t) getpid () << 40) ^ (uint64_t) (uintptr_t) self;
    self->directory_version = 1;
    self->directory_pushed = 1;
    self->subscribers = zhashx_new ();
    zhashx_set_destructor (self->subscribers, (zhashx_destructor_fn *) zstr_free);
    self->services = aigw_table_new ();
    self->workers = aigw_table_new ();
    self->requests = aigw_table_new ();
    self->timers = aigw_heap_new ();
    if (!self->services || !self->workers || !self->requests || !self->timers)
        s_self_destroy (&self);
    return self;
}

//  Create and bind the ROUTER on ENDPOINT. Returns 0, or -1.
static int
s_self_bind (self_t *self, const char *endpoint)
{
    self->router = zsock_new (ZMQ_ROUTER);
    if (!self->router || !endpoint)
        return -1;
    zsock_set_router_mandatory (self->router, 1);
    zsock_set_sndhwm (self->router, AIGW_BP_HWM);
    zsock_set_rcvhwm (self->router, AIGW_BP_HWM);
    zsock_set_linger (self->router, 0);
    zsock_set_maxmsgsize (self->router, AIGW_BP_FRAME_MAX);
    if (zsock_bind (self->router, "%s", endpoint) == -1) {
        aigw_error ("broker: cannot bind %s: %s", endpoint, zmq_strerror (zmq_errno ()));
        return -1;
    }
    self->handle = zsock_resolve (self->router);
    self->endpoint = zsock_last_endpoint (self->router);
    return self->endpoint ? 0 : -1;
}

void
aigw_broker_actor (zsock_t *pipe, void *args)
{
    pthread_setname_np (pthread_self (), "aigw-broker");
    assert (args);
    self_t *self = s_self_new (pipe, (aigw_broker_args_t *) args);
    if (!self || s_self_bind (self, ((aigw_broker_args_t *) args)->endpoint) == -1) {
        //  Signal failure, then answer ENDPOINT with "" until $TERM.
        zsock_signal (pipe, (byte) -1);
        if (self)
            zstr_free (&self->endpoint);
        while (true) {
            char *command = zstr_recv (pipe);
            bool term = !command || streq (command, "$TERM");
            if (command && streq (command, "ENDPOINT"))
                zstr_send (pipe, "");
            zstr_free (&command);
            if (term)
                break;
        }
        s_self_destroy (&self);
        return;
    }
    aigw_info ("broker: listening on %s", self->endpoint);
    zsock_signal (pipe, 0);
    self->heartbeat_at = s_mono_ms () + self->heartbeat_ms;
    while (!self->terminated) {
        int64_t next = self->heartbeat_at;
        aigw_heap_node_t *timer = aigw_heap_top (self->timers);
        if (timer && timer->key < next)
            next = timer->key;
        int64_t timeout = next - s_mono_ms ();
        if (timeout < 0)
            timeout = 0;
        zmq_pollitem_t items[]
            = {{zsock_resolve (pipe), 0, ZMQ_POLLIN, 0}, {self->handle, 0, ZMQ_POLLIN, 0}};
        if (zmq_poll (items, 2, (long) timeout) == -1) {
            if (errno == EINTR)
                continue;
            break;  //  context terminated
        }
        if (items[1].revents & ZMQ_POLLIN)
            s_drain (self);
        if (items[0].revents & ZMQ_POLLIN)
            s_handle_pipe (self);
        s_handle_timers (self);
    }
    s_self_destroy (&self);
}

char *
aigw_broker_endpoint (zactor_t *broker)
{
    assert (broker);
    if (zstr_send (broker, "ENDPOINT") == -1)
        return NULL;
    zpoller_t *poller = zpoller_new (broker, NULL);
    if (!poller)
        return NULL;
    char *endpoint = NULL;
    if (zpoller_wait (poller, AIGW_BROKER_PIPE_TIMEOUT_MS) == broker)
        endpoint = zstr_recv (broker);
    zpoller_destroy (&poller);
    if (endpoint && !*endpoint)
        zstr_free (&endpoint);
    return endpoint;
}

//  --------------------------------------------------------------------------
//  Selftest

#define S_TEST_HEARTBEAT_MS 50    //  short heartbeats keep the test fast
#define S_TEST_LIVENESS     3     //  so a silent worker dies after 150 ms
#define S_TEST_QUEUE_MAX    4     //  queued requests per service
#define S_TEST_WAIT_MS      3000  //  longest wait for anything expected
#define S_TEST_QUIET_MS     100   //  how long "nothing arrives" is watched
#define S_TEST_REPORT_MS    250   //  wait for one STATUS/METRICS answer
#define S_TEST_POLL_MS      5     //  one pump round
#define S_TEST_DEADLINE_MS  100   //  deadline of the request left in the queue
#define S_TEST_DEATH_MS     1000  //  bound on noticing a silent worker
#define S_TEST_WORKERS      4     //  worker slots of the fixture
#define S_TEST_SHARD_KEYS   24    //  keys spread over the shard workers
#define S_TEST_LB_REQUESTS  10    //  requests spread over two workers
#define S_TEST_ID_SIZE      32    //  bytes for a test request id
//  Below ERROR: the test provokes errors on purpose and keeps quiet about them.
#define S_TEST_LOG_SILENT ((aigw_log_level_t) -1)

//  The test's side of the broker: one client, a few workers, and what they
//  received so far.
typedef struct {
    char *endpoint;                          //  bound broker endpoint
    aigw_client_t *client;                   //  the client
    aigw_worker_t *workers[S_TEST_WORKERS];  //  workers; NULL slots are free
    zlist_t *jobs[S_TEST_WORKERS];           //  jobs received, per worker
    zlist_t *events;                         //  client events received
} s_fix_t;

//  One pump round: wait up to TIMEOUT_MS for input, read everything, tick.
static void
s_fix_pump (s_fix_t *fix, int timeout_ms)
{
    zmq_pollitem_t items[S_TEST_WORKERS + 1];
    int count = 0;
    items[count++]
        = (zmq_pollitem_t){zsock_resolve (aigw_client_sock (fix->client)), 0, ZMQ_POLLIN, 0};
    for (int i = 0; i < S_TEST_WORKERS; i++)
        if (fix->workers[i])
            items[count++] = (zmq_pollitem_t){zsock_resolve (aigw_worker_sock (fix->workers[i])), 0,
                                              ZMQ_POLLIN, 0};
    zmq_poll (items, count, timeout_ms);
    aigw_client_event_t *event;
    while ((event = aigw_client_recv (fix->client)))
        zlist_append (fix->events, event);
    aigw_client_tick (fix->client);
    for (int i = 0; i < S_TEST_WORKERS; i++)
        if (fix->workers[i]) {
            aigw_job_t *job;
            while ((job = aigw_worker_recv (fix->workers[i])))
                zlist_append (fix->jobs[i], job);
            aigw_worker_tick (fix->workers[i]);
        }
}

//  Next job of worker INDEX, waiting up to S_TEST_WAIT_MS; NULL on timeout.
static aigw_job_t *
s_fix_job (s_fix_t *fix, int index)
{
    int64_t until = zclock_mono () + S_TEST_WAIT_MS;
    while (zlist_size (fix->jobs[index]) == 0 && zclock_mono () < until)
        s_fix_pump (fix, S_TEST_POLL_MS);
    return (aigw_job_t *) zlist_pop (fix->jobs[index]);
}

//  Next job of any worker, its slot in *INDEX; NULL on timeout.
static aigw_job_t *
s_fix_any_job (s_fix_t *fix, int *index)
{
    int64_t until = zclock_mono () + S_TEST_WAIT_MS;
    while (zclock_mono () < until) {
        for (int i = 0; i < S_TEST_WORKERS; i++)
            if (zlist_size (fix->jobs[i]) > 0) {
                *index = i;
                return (aigw_job_t *) zlist_pop (fix->jobs[i]);
            }
        s_fix_pump (fix, S_TEST_POLL_MS);
    }
    return NULL;
}

//  First client event of type TYPE, or of REPLY or ERROR if TYPE is 0,
//  waiting up to S_TEST_WAIT_MS; NULL on timeout. Others stay queued.
static aigw_client_event_t *
s_fix_event (s_fix_t *fix, int type)
{
    int64_t until = zclock_mono () + S_TEST_WAIT_MS;
    while (true) {
        aigw_client_event_t *event = (aigw_client_event_t *) zlist_first (fix->events);
        while (event) {
            if (event->type == type
                || (type == 0
                    && (event->type == AIGW_BP_CLIENT_REPLY
                        || event->type == AIGW_BP_CLIENT_ERROR))) {
                zlist_remove (fix->events, event);
                return event;
            }
            event = (aigw_client_event_t *) zlist_next (fix->events);
        }
        if (zclock_mono () >= until)
            return NULL;
        s_fix_pump (fix, S_TEST_POLL_MS);
    }
}

//  Pump for S_TEST_QUIET_MS and assert that nothing arrived.
static void
s_fix_quiet (s_fix_t *fix)
{
    int64_t until = zclock_mono () + S_TEST_QUIET_MS;
    while (zclock_mono () < until)
        s_fix_pump (fix, S_TEST_POLL_MS);
    assert (zlist_size (fix->events) == 0);
    for (int i = 0; i < S_TEST_WORKERS; i++)
        assert (zlist_size (fix->jobs[i]) == 0);
}

//  Start worker INDEX for SERVICE.
static void
s_fix_worker (s_fix_t *fix, int index, const char *service, int credit, bool replay_safe)
{
    assert (!fix->workers[index]);
    fix->workers[index] = aigw_worker_new (fix->endpoint, service, credit, replay_safe,
                                           S_TEST_HEARTBEAT_MS, S_TEST_LIVENESS);
    assert (fix->workers[index]);
}

//  Stop worker INDEX cleanly (it sends DISCONNECT), dropping its jobs.
static void
s_fix_worker_destroy (s_fix_t *fix, int index)
{
    aigw_job_t *job;
    while ((job = (aigw_job_t *) zlist_pop (fix->jobs[index])))
        aigw_job_destroy (&job);
    aigw_worker_destroy (&fix->workers[index]);
}

//  Set up the fixture for ENDPOINT (taken).
static void
s_fix_init (s_fix_t *fix, char *endpoint)
{
    memset (fix, 0, sizeof *fix);
    fix->endpoint = endpoint;
    fix->client = aigw_client_new (endpoint, S_TEST_HEARTBEAT_MS, S_TEST_LIVENESS);
    assert (fix->client);
    fix->events = zlist_new ();
    assert (fix->events);
    for (int i = 0; i < S_TEST_WORKERS; i++) {
        fix->jobs[i] = zlist_new ();
        assert (fix->jobs[i]);
    }
}

//  Replace the client with a new one.
static void
s_fix_new_client (s_fix_t *fix)
{
    aigw_client_event_t *event;
    while ((event = (aigw_client_event_t *) zlist_pop (fix->events)))
        aigw_client_event_destroy (&event);
    aigw_client_destroy (&fix->client);
    fix->client = aigw_client_new (fix->endpoint, S_TEST_HEARTBEAT_MS, S_TEST_LIVENESS);
    assert (fix->client);
}

//  Tear the fixture down.
static void
s_fix_destroy (s_fix_t *fix)
{
    for (int i = 0; i < S_TEST_WORKERS; i++) {
        s_fix_worker_destroy (fix, i);
        zlist_destroy (&fix->jobs[i]);
    }
    aigw_client_event_t *event;
    while ((event = (aigw_client_event_t *) zlist_pop (fix->events)))
        aigw_client_event_destroy (&event);
    zlist_destroy (&fix->events);
    aigw_client_destroy (&fix->client);
    zstr_free (&fix->endpoint);
}

//  Send a request with TEXT as its envelope.
static void
s_send (s_fix_t *fix, const char *service, const char *shard, const char *rid, int64_t deadline,
        const char *text)
{
    char *data = strdup (text);
    assert (data);
    int rc = aigw_client_send (fix->client, service, shard, rid, deadline, &data, strlen (text));
    assert (rc == 0 && !data);
}

//  Reply to *JOB_P from worker INDEX with TEXT.
static void
s_reply (s_fix_t *fix, int index, aigw_job_t **job_p, int flags, const char *next,
         const char *shard, const char *text)
{
    char *data = strdup (text);
    assert (data);
    int rc
        = aigw_worker_reply (fix->workers[index], job_p, flags, next, shard, &data, strlen (text));
    assert (rc == 0 && !data);
    assert ((flags & AIGW_REPLY_LAST) ? !*job_p : *job_p != NULL);
}

//  Expect REPLY TEXT for RID, with LAST as given.
static void
s_expect_reply (s_fix_t *fix, const char *rid, const char *text, bool last)
{
    aigw_client_event_t *event = s_fix_event (fix, 0);
    assert (event);
    assert (event->type == AIGW_BP_CLIENT_REPLY);
    assert (streq (event->request_id, rid));
    assert (event->last == last);
    assert (zframe_streq (event->envelope, text));
    aigw_client_event_destroy (&event);
}

//  Expect ERROR STATUS for RID.
static void
s_expect_error (s_fix_t *fix, const char *rid, int status)
{
    aigw_client_event_t *event = s_fix_event (fix, 0);
    assert (event);
    assert (event->type == AIGW_BP_CLIENT_ERROR);
    assert (streq (event->request_id, rid));
    assert (event->status == status);
    assert (event->text && event->last);
    aigw_client_event_destroy (&event);
}

//  STATUS or METRICS text (TYPE), or NULL if no answer came within
//  S_TEST_REPORT_MS (a request sent while a tcp connection breaks is lost,
//  so callers ask again). The caller frees it.
static char *
s_report (s_fix_t *fix, int type)
{
    //  Forget late answers to earlier questions.
    aigw_client_event_t *event = (aigw_client_event_t *) zlist_first (fix->events);
    while (event) {
        aigw_client_event_t *next = (aigw_client_event_t *) zlist_next (fix->events);
        if (event->type == type) {
            zlist_remove (fix->events, event);
            aigw_client_event_destroy (&event);
        }
        event = next;
    }
    int rc = type == AIGW_BP_CLIENT_STATUS ? aigw_client_status (fix->client)
                                           : aigw_client_metrics (fix->client);
    assert (rc == 0);
    int64_t until = zclock_mono () + S_TEST_REPORT_MS;
    while (true) {
        event = (aigw_client_event_t *) zlist_first (fix->events);
        while (event && event->type != type)
            event = (aigw_client_event_t *) zlist_next (fix->events);
        if (event || zclock_mono () >= until)
            break;
        s_fix_pump (fix, S_TEST_POLL_MS);
    }
    if (!event)
        return NULL;
    zlist_remove (fix->events, event);
    char *text = event->text;
    event->text = NULL;
    aigw_client_event_destroy (&event);
    return text;
}

//  Read SERVICE's STATUS line. Returns 0, or -1 if it has none or the broker
//  did not answer.
static int
s_status (s_fix_t *fix, const char *service, int *live, int *in_flight, int *queued)
{
    char *text = s_report (fix, AIGW_BP_CLIENT_STATUS);
    if (!text)
        return -1;
    char prefix[AIGW_BP_NAME_MAX + 3];
    snprintf (prefix, sizeof prefix, "\n%s ", service);
    char *all = zsys_sprintf ("\n%s", text);
    assert (all);
    char *line = strstr (all, prefix);
    int rc = -1;
    if (line && sscanf (line + strlen (prefix), "%d %d %d", live, in_flight, queued) == 3)
        rc = 0;
    zstr_free (&all);
    zstr_free (&text);
    return rc;
}

//  Wait until SERVICE has COUNT live workers.
static void
s_wait_workers (s_fix_t *fix, const char *service, int count)
{
    int64_t until = zclock_mono () + S_TEST_WAIT_MS;
    while (true) {
        int live = 0, in_flight, queued;
        if (s_status (fix, service, &live, &in_flight, &queued) == -1)
            live = 0;
        if (live == count)
            return;
        assert (zclock_mono () < until);
        s_fix_pump (fix, S_TEST_POLL_MS);
    }
}

//  Send ROUND's request with shard key number KEY to "shard", answer it, and
//  return the slot of the worker that served it.
static int
s_shard_round_trip (s_fix_t *fix, int key, int round)
{
    char rid[S_TEST_ID_SIZE], shard[S_TEST_ID_SIZE];
    snprintf (rid, sizeof rid, "sk-%d-%d", key, round);
    snprintf (shard, sizeof shard, "key-%d", key);
    s_send (fix, "shard", shard, rid, 0, "s");
    int index = -1;
    aigw_job_t *job = s_fix_any_job (fix, &index);
    assert (job && streq (job->request_id, rid));
    s_reply (fix, index, &job, AIGW_REPLY_LAST, NULL, NULL, "ok");
    s_expect_reply (fix, rid, "ok", true);
    return index;
}

//  A raw DEALER connected to ENDPOINT, to speak the protocol by hand.
static zsock_t *
s_raw_new (const char *endpoint)
{
    zsock_t *sock = zsock_new (ZMQ_DEALER);
    assert (sock);
    zsock_set_linger (sock, 0);
    int rc = zsock_connect (sock, "%s", endpoint);
    assert (rc == 0);
    return sock;
}

//  Send frames given as (data, size) pairs, ended by NULL.
static void
s_raw_send (zsock_t *sock, ...)
{
    zmsg_t *msg = zmsg_new ();
    assert (msg);
    va_list args;
    va_start (args, sock);
    const char *data;
    while ((data = va_arg (args, const char *))) {
        size_t size = va_arg (args, size_t);
        zmsg_addmem (msg, data, size);
    }
    va_end (args);
    int rc = zmsg_send (&msg, sock);
    assert (rc == 0);
}

//  Next message with HEADER and command CMD, skipping others; NULL if none
//  arrives within S_TEST_WAIT_MS.
static zmsg_t *
s_raw_expect (zsock_t *sock, const char *header, byte cmd)
{
    return aigw_bp_expect (sock, header, cmd, S_TEST_WAIT_MS);
}

//  REPORTS for SERVICE asked by the fixture's client, parsed: a JSON array
//  the caller frees, or NULL if no answer came within S_TEST_REPORT_MS.
//  Asserts that an answer is an array of well-formed elements.
static json_t *
s_reports (s_fix_t *fix, const char *service)
{
    aigw_client_event_t *event = (aigw_client_event_t *) zlist_first (fix->events);
    while (event) {
        aigw_client_event_t *next = (aigw_client_event_t *) zlist_next (fix->events);
        if (event->type == AIGW_BP_CLIENT_REPORTS) {
            zlist_remove (fix->events, event);
            aigw_client_event_destroy (&event);
        }
        event = next;
    }
    int rc = aigw_client_reports (fix->client, service);
    assert (rc == 0);
    int64_t until = zclock_mono () + S_TEST_REPORT_MS;
    while (true) {
        event = (aigw_client_event_t *) zlist_first (fix->events);
        while (event && event->type != AIGW_BP_CLIENT_REPORTS)
            event = (aigw_client_event_t *) zlist_next (fix->events);
        if (event || zclock_mono () >= until)
            break;
        s_fix_pump (fix, S_TEST_POLL_MS);
    }
    if (!event)
        return NULL;
    zlist_remove (fix->events, event);
    json_error_t error;
    json_t *array = json_loads (event->text, 0, &error);
    aigw_client_event_destroy (&event);
    assert (json_is_array (array));
    size_t index;
    json_t *item;
    json_array_foreach (array, index, item) {
        const char *worker = json_string_value (json_object_get (item, "worker"));
        assert (worker && *worker && strspn (worker, "0123456789abcdef") == strlen (worker));
        assert (json_is_string (json_object_get (item, "service")));
        assert (streq (json_string_value (json_object_get (item, "service")), service));
        assert (json_is_integer (json_object_get (item, "age_ms")));
        assert (json_integer_value (json_object_get (item, "age_ms")) >= 0);
        assert (json_is_object (json_object_get (item, "report")));
        assert (json_object_size (item) == 4);
    }
    return array;
}

//  How many elements of ARRAY have a report whose integer member KEY is
//  VALUE.
static size_t
s_reports_count (json_t *array, const char *key, json_int_t value)
{
    size_t count = 0, index;
    json_t *item;
    json_array_foreach (array, index, item) {
        json_t *member = json_object_get (json_object_get (item, "report"), key);
        if (json_is_integer (member) && json_integer_value (member) == value)
            count++;
    }
    return count;
}

//  Wait until REPORTS for SERVICE has SIZE elements, of which MATCHES have
//  report member KEY equal to VALUE (KEY NULL: any). Returns the array, which
//  the caller frees; asserts on timeout.
static json_t *
s_wait_reports (s_fix_t *fix, const char *service, size_t size, const char *key, json_int_t value,
                size_t matches)
{
    int64_t until = zclock_mono () + S_TEST_WAIT_MS;
    while (true) {
        json_t *array = s_reports (fix, service);
        if (array && json_array_size (array) == size
            && (!key || s_reports_count (array, key, value) == matches))
            return array;
        json_decref (array);
        assert (zclock_mono () < until);
        s_fix_pump (fix, S_TEST_POLL_MS);
    }
}

//  Send a worker REPORT of the SIZE bytes at DATA on raw socket SOCK.
static void
s_raw_report (zsock_t *sock, const char *data, size_t size)
{
    byte report = AIGW_BP_WORKER_REPORT;
    s_raw_send (sock, AIGW_BP_WORKER_HEADER, (size_t) AIGW_BP_HEADER_SIZE, &report, (size_t) 1,
                data, size, NULL);
}

//  Ask REPORTS for SERVICE on raw socket SOCK, a registered raw worker (so
//  the question follows everything SOCK sent before) and return the answer
//  parsed; asserts it comes. While waiting, SOCK heartbeats and the
//  fixture's workers are pumped, so that nobody falls silent meanwhile.
static json_t *
s_raw_reports (s_fix_t *fix, zsock_t *sock, const char *service)
{
    byte reports = AIGW_BP_CLIENT_REPORTS, heartbeat = AIGW_BP_WORKER_HEARTBEAT;
    s_raw_send (sock, AIGW_BP_CLIENT_HEADER, (size_t) AIGW_BP_HEADER_SIZE, &reports, (size_t) 1,
                service, strlen (service), NULL);
    zmsg_t *msg = NULL;
    int64_t until = zclock_mono () + S_TEST_WAIT_MS;
    while (!msg && zclock_mono () < until) {
        if (!(zsock_events (sock) & ZMQ_POLLIN)) {
            s_raw_send (sock, AIGW_BP_WORKER_HEADER, (size_t) AIGW_BP_HEADER_SIZE, &heartbeat,
                        (size_t) 1, NULL);
            s_fix_pump (fix, S_TEST_POLL_MS);
            continue;
        }
        msg = zmsg_recv (sock);
        assert (msg);
        zframe_t *head = zmsg_first (msg);
        zframe_t *command = zmsg_next (msg);
        if (!zframe_streq (head, AIGW_BP_CLIENT_HEADER) || zframe_size (command) != 1
            || *zframe_data (command) != AIGW_BP_CLIENT_REPORTS)
            zmsg_destroy (&msg);
    }
    assert (msg && zmsg_size (msg) == 3);
    zmsg_first (msg);
    zmsg_next (msg);
    zframe_t *text = zmsg_next (msg);
    json_error_t error;
    json_t *array = json_loadb ((const char *) zframe_data (text), zframe_size (text), 0, &error);
    zmsg_destroy (&msg);
    assert (json_is_array (array));
    return array;
}

//  A JSON object of exactly SIZE bytes ({"pad":"xxx..."}), which the caller
//  frees.
static char *
s_padded_report (size_t size)
{
    const char *head = "{\"pad\":\"", *tail = "\"}";
    assert (size >= strlen (head) + strlen (tail));
    char *text = (char *) malloc (size + 1);
    assert (text);
    memset (text, 'x', size);
    memcpy (text, head, strlen (head));
    memcpy (text + size - strlen (tail), tail, strlen (tail));
    text[size] = 0;
    return text;
}

//  A call of aigw_client_reports_once run on its own thread, so that the
//  test thread keeps its workers heartbeating meanwhile.
typedef struct {
    const char *endpoint;  //  broker endpoint
    const char *service;   //  service asked about
    int64_t deadline;      //  Unix ms deadline
    char err[256];         //  its error text
    char *text;            //  its result, owned by the test
    atomic_bool done;      //  set once the call returned
} s_once_t;

//  Thread body: run the one-shot described by ARG (an s_once_t).
static void *
s_once_run (void *arg)
{
    s_once_t *once = (s_once_t *) arg;
    once->text = aigw_client_reports_once (once->endpoint, once->service, once->deadline, once->err,
                                           sizeof once->err);
    atomic_store (&once->done, true);
    return NULL;
}

//  Run aigw_client_reports_once for SERVICE on the fixture's endpoint with
//  DEADLINE, pumping the fixture until it returns. Fills ONCE.
static void
s_once (s_fix_t *fix, s_once_t *once, const char *service, int64_t deadline)
{
    memset (once, 0, sizeof *once);
    once->endpoint = fix->endpoint;
    once->service = service;
    once->deadline = deadline;
    atomic_init (&once->done, false);
    pthread_t thread;
    int rc = pthread_create (&thread, NULL, s_once_run, once);
    assert (rc == 0);
    while (!atomic_load (&once->done))
        s_fix_pump (fix, S_TEST_POLL_MS);
    pthread_join (thread, NULL);
}

//  Worker reports and REPORTS (section 4a) on the fixture's broker. Uses
//  worker slots 1 and 2, which must be free, and frees them again.
static void
s_test_reports (s_fix_t *fix)
{
    //  Nobody reported yet; unknown and invalid services answer [] too.
    json_t *array = s_wait_reports (fix, "prov", 0, NULL, 0, 0);
    json_decref (array);
    array = s_wait_reports (fix, "no-such-service", 0, NULL, 0, 0);
    json_decref (array);
    array = s_wait_reports (fix, "two words", 0, NULL, 0, 0);
    json_decref (array);

    //  Two workers report; the client sees both, with their service.
    s_fix_worker (fix, 1, "prov", 10, false);
    s_fix_worker (fix, 2, "prov", 10, false);
    s_wait_workers (fix, "prov", 2);
    array = s_wait_reports (fix, "prov", 0, NULL, 0, 0);
    json_decref (array);
    const char *one = "{\"n\": 1, \"deployments\": {\"gpt\": {\"circuit\": \"closed\"}}}";
    const char *two = "{\"n\":2}";
    assert (aigw_worker_report (fix->workers[1], one, strlen (one)) == 0);
    assert (aigw_worker_report (fix->workers[2], two, strlen (two)) == 0);
    array = s_wait_reports (fix, "prov", 2, "n", 1, 1);
    assert (s_reports_count (array, "n", 2) == 1);
    const char *first = json_string_value (json_object_get (json_array_get (array, 0), "worker"));
    const char *second = json_string_value (json_object_get (json_array_get (array, 1), "worker"));
    assert (!streq (first, second));
    //  The report is relayed verbatim.
    for (size_t i = 0; i < 2; i++) {
        json_t *report = json_object_get (json_array_get (array, i), "report");
        json_t *circuit = json_object_get (
            json_object_get (json_object_get (report, "deployments"), "gpt"), "circuit");
        if (json_integer_value (json_object_get (report, "n")) == 1)
            assert (streq (json_string_value (circuit), "closed"));
    }
    json_decref (array);

    //  A newer report replaces the older one.
    const char *eleven = "{\"n\":11}";
    assert (aigw_worker_report (fix->workers[1], eleven, strlen (eleven)) == 0);
    array = s_wait_reports (fix, "prov", 2, "n", 11, 1);
    assert (s_reports_count (array, "n", 1) == 0 && s_reports_count (array, "n", 2) == 1);
    json_decref (array);

    //  The worker library refuses an oversized report.
    char *big = s_padded_report (AIGW_BP_REPORT_MAX + 1);
    assert (aigw_worker_report (fix->workers[1], big, AIGW_BP_REPORT_MAX + 1) == -1);

    //  A raw worker: a report at the cap is kept; oversized, non-JSON,
    //  non-object and too deep ones are dropped and the last good one stays.
    zsock_t *raw = s_raw_new (fix->endpoint);
    byte ready = AIGW_BP_WORKER_READY;
    s_raw_send (raw, AIGW_BP_WORKER_HEADER, (size_t) AIGW_BP_HEADER_SIZE, &ready, (size_t) 1,
                "prov", (size_t) 4, "prov-raw-1", (size_t) 10, "1", (size_t) 1, "", (size_t) 0,
                NULL);
    char *at_cap = s_padded_report (AIGW_BP_REPORT_MAX);
    s_raw_report (raw, at_cap, AIGW_BP_REPORT_MAX);
    array = s_raw_reports (fix, raw, "prov");
    assert (json_array_size (array) == 3);
    size_t padded = 0, index;
    json_t *item;
    json_array_foreach (array, index, item)
        if (json_object_get (json_object_get (item, "report"), "pad"))
            padded++;
    assert (padded == 1);
    json_decref (array);
    const char *raw_good = "{\"n\":3}";
    s_raw_report (raw, raw_good, strlen (raw_good));
    s_raw_report (raw, big, AIGW_BP_REPORT_MAX + 1);
    s_raw_report (raw, "not json", 8);
    s_raw_report (raw, "[1,2]", 5);
    s_raw_report (raw, "{\"n\":4} trailing", 16);
    s_raw_report (raw, "{\"n\":\"\xff\"}", 9);
    s_raw_report (raw, "", 0);
    char deep[2 * (AIGW_BP_REPORT_DEPTH_MAX + 1) + 1];
    for (int i = 0; i <= AIGW_BP_REPORT_DEPTH_MAX; i++) {
        deep[i] = i == 0 ? '{' : '[';
        deep[2 * (AIGW_BP_REPORT_DEPTH_MAX + 1) - 1 - i] = i == 0 ? '}' : ']';
    }
    deep[2 * (AIGW_BP_REPORT_DEPTH_MAX + 1)] = 0;
    s_raw_report (raw, deep, strlen (deep));
    //  REPORT without its frame, and with one too many: malformed, dropped.
    byte report_cmd = AIGW_BP_WORKER_REPORT;
    s_raw_send (raw, AIGW_BP_WORKER_HEADER, (size_t) AIGW_BP_HEADER_SIZE, &report_cmd, (size_t) 1,
                NULL);
    s_raw_send (raw, AIGW_BP_WORKER_HEADER, (size_t) AIGW_BP_HEADER_SIZE, &report_cmd, (size_t) 1,
                "{}", (size_t) 2, "{}", (size_t) 2, NULL);
    //  REPORTS without a service: dropped unanswered.
    byte reports_cmd = AIGW_BP_CLIENT_REPORTS;
    s_raw_send (raw, AIGW_BP_CLIENT_HEADER, (size_t) AIGW_BP_HEADER_SIZE, &reports_cmd, (size_t) 1,
                NULL);
    array = s_raw_reports (fix, raw, "prov");
    assert (json_array_size (array) == 3);
    assert (s_reports_count (array, "n", 3) == 1 && s_reports_count (array, "n", 4) == 0);
    assert (s_reports_count (array, "n", 11) == 1 && s_reports_count (array, "n", 2) == 1);
    json_decref (array);
    free (big);
    free (at_cap);

    //  A new READY from the same identity forgets the report.
    s_raw_send (raw, AIGW_BP_WORKER_HEADER, (size_t) AIGW_BP_HEADER_SIZE, &ready, (size_t) 1,
                "prov", (size_t) 4, "prov-raw-1", (size_t) 10, "1", (size_t) 1, "", (size_t) 0,
                NULL);
    array = s_raw_reports (fix, raw, "prov");
    assert (json_array_size (array) == 2 && s_reports_count (array, "n", 3) == 0);
    json_decref (array);

    //  A worker that stops heartbeating drops out of the answer.
    s_raw_report (raw, raw_good, strlen (raw_good));
    array = s_raw_reports (fix, raw, "prov");
    assert (json_array_size (array) == 3 && s_reports_count (array, "n", 3) == 1);
    json_decref (array);
    int64_t start = zclock_mono ();
    array = s_wait_reports (fix, "prov", 2, "n", 3, 0);
    assert (zclock_mono () - start < S_TEST_DEATH_MS);
    json_decref (array);
    s_wait_workers (fix, "prov", 2);
    //  A stranger's REPORT is answered DISCONNECT, as any worker command.
    s_raw_report (raw, raw_good, strlen (raw_good));
    zmsg_t *msg = s_raw_expect (raw, AIGW_BP_WORKER_HEADER, AIGW_BP_WORKER_DISCONNECT);
    assert (msg);
    zmsg_destroy (&msg);
    zsock_destroy (&raw);

    //  A worker that disconnects drops out too; the broker still serves.
    s_fix_worker_destroy (fix, 1);
    array = s_wait_reports (fix, "prov", 1, "n", 2, 1);
    json_decref (array);
    s_fix_worker_destroy (fix, 2);
    array = s_wait_reports (fix, "prov", 0, NULL, 0, 0);
    json_decref (array);

    //  The one-shot: answered well within its deadline.
    s_fix_worker (fix, 1, "prov", 10, false);
    assert (aigw_worker_report (fix->workers[1], two, strlen (two)) == 0);
    array = s_wait_reports (fix, "prov", 1, "n", 2, 1);
    json_decref (array);
    s_once_t once;
    start = zclock_mono ();
    int64_t deadline = zclock_time () + S_TEST_WAIT_MS;
    s_once (fix, &once, "prov", deadline);
    assert (once.text && !*once.err);
    assert (zclock_mono () - start < S_TEST_WAIT_MS);
    json_error_t error;
    array = json_loads (once.text, 0, &error);
    assert (json_array_size (array) == 1 && s_reports_count (array, "n", 2) == 1);
    json_decref (array);
    zstr_free (&once.text);
    s_once (fix, &once, "nobody", deadline);
    assert (once.text && streq (once.text, "[]"));
    zstr_free (&once.text);
    s_fix_worker_destroy (fix, 1);
    s_wait_workers (fix, "prov", 0);
}

//  The one-shot with nobody answering at ENDPOINT: NULL with a reason, at
//  its deadline and not much later.
static void
s_test_reports_unanswered (const char *endpoint)
{
    char err[256] = "";
    int64_t start = zclock_mono ();
    char *text = aigw_client_reports_once (endpoint, "prov", zclock_time () + S_TEST_QUIET_MS, err,
                                           sizeof err);
    int64_t took = zclock_mono () - start;
    assert (!text && *err);
    assert (took >= S_TEST_QUIET_MS - S_TEST_POLL_MS && took < S_TEST_DEATH_MS);
    //  A deadline already past: no wait at all.
    text = aigw_client_reports_once (endpoint, "prov", zclock_time () - 1, err, sizeof err);
    assert (!text && *err);
}

//  Start a broker with ARGS, retrying while the endpoint is still held by a
//  broker that just stopped. Sets *ENDPOINT_P to the bound endpoint.
static zactor_t *
s_test_broker_new (aigw_broker_args_t *args, char **endpoint_p)
{
    int64_t until = zclock_mono () + S_TEST_WAIT_MS;
    while (zclock_mono () < until) {
        zactor_t *broker = zactor_new (aigw_broker_actor, args);
        assert (broker);
        *endpoint_p = aigw_broker_endpoint (broker);
        if (*endpoint_p)
            return broker;
        zactor_destroy (&broker);
        zclock_sleep (S_TEST_POLL_MS);
    }
    return NULL;
}

//  Every scenario, over the transport of BIND.
static void
s_test_transport (const char *bind, bool verbose)
{
    aigw_broker_args_t args = {bind, S_TEST_HEARTBEAT_MS, S_TEST_LIVENESS, S_TEST_QUEUE_MAX};
    char *endpoint = NULL;
    zactor_t *broker = s_test_broker_new (&args, &endpoint);
    assert (broker && endpoint);
    if (verbose)
        printf ("\n  broker on %s\n", endpoint);
    s_fix_t fix;
    s_fix_init (&fix, endpoint);

    //  The client hears the answer to its first heartbeat.
    int64_t until = zclock_mono () + S_TEST_WAIT_MS;
    while (!aigw_client_connected (fix.client) && zclock_mono () < until)
        s_fix_pump (&fix, S_TEST_POLL_MS);
    assert (aigw_client_connected (fix.client));

    //  No live worker: 503 at once.
    s_send (&fix, "echo", NULL, "r1", 0, "hello");
    s_expect_error (&fix, "r1", 503);

    //  One worker: a round trip.
    s_fix_worker (&fix, 0, "echo", 10, true);
    assert (strncmp (aigw_worker_id (fix.workers[0]), "echo-", 5) == 0);
    s_wait_workers (&fix, "echo", 1);
    s_send (&fix, "echo", NULL, "r2", 0, "hello");
    aigw_job_t *job = s_fix_job (&fix, 0);
    assert (job && streq (job->request_id, "r2") && zframe_size (job->client) > 0);
    assert (zframe_streq (job->envelope, "hello"));
    s_reply (&fix, 0, &job, AIGW_REPLY_LAST, NULL, NULL, "world");
    s_expect_reply (&fix, "r2", "world", true);

    //  Streaming: chunks in order, then LAST.
    s_send (&fix, "echo", NULL, "r3", 0, "stream");
    job = s_fix_job (&fix, 0);
    assert (job);
    s_reply (&fix, 0, &job, 0, NULL, NULL, "c0");
    s_reply (&fix, 0, &job, 0, NULL, NULL, "c1");
    s_reply (&fix, 0, &job, 0, NULL, NULL, "c2");
    s_reply (&fix, 0, &job, AIGW_REPLY_LAST, NULL, NULL, "end");
    s_expect_reply (&fix, "r3", "c0", false);
    s_expect_reply (&fix, "r3", "c1", false);
    s_expect_reply (&fix, "r3", "c2", false);
    s_expect_reply (&fix, "r3", "end", true);

    //  FORWARD through three services, back to the client.
    s_fix_worker (&fix, 1, "b", 10, false);
    s_fix_worker (&fix, 2, "c", 10, true);
    s_wait_workers (&fix, "b", 1);
    s_wait_workers (&fix, "c", 1);
    s_send (&fix, "echo", NULL, "r4", 0, "x");
    job = s_fix_job (&fix, 0);
    assert (job && zframe_streq (job->envelope, "x"));
    s_reply (&fix, 0, &job, AIGW_REPLY_LAST | AIGW_REPLY_FORWARD, "b", NULL, "xa");
    job = s_fix_job (&fix, 1);
    assert (job && streq (job->request_id, "r4") && zframe_streq (job->envelope, "xa"));
    s_reply (&fix, 1, &job, AIGW_REPLY_LAST | AIGW_REPLY_FORWARD, "c", "k", "xab");
    job = s_fix_job (&fix, 2);
    assert (job && streq (job->request_id, "r4") && zframe_streq (job->envelope, "xab"));
    s_reply (&fix, 2, &job, AIGW_REPLY_LAST, NULL, NULL, "xabc");
    s_expect_reply (&fix, "r4", "xabc", true);
    s_fix_quiet (&fix);

    //  One-way: empty client frame, forwarded on, replies dropped.
    char *data = strdup ("note");
    assert (data);
    int rc = aigw_worker_send_oneway (fix.workers[0], "b", NULL, "ow1", &data, 4);
    assert (rc == 0 && !data);
    job = s_fix_job (&fix, 1);
    assert (job && zframe_size (job->client) == 0 && streq (job->request_id, "ow1"));
    assert (zframe_streq (job->envelope, "note"));
    s_reply (&fix, 1, &job, AIGW_REPLY_LAST | AIGW_REPLY_FORWARD, "c", NULL, "note2");
    job = s_fix_job (&fix, 2);
    assert (job && zframe_size (job->client) == 0 && zframe_streq (job->envelope, "note2"));
    s_reply (&fix, 2, &job, AIGW_REPLY_LAST, NULL, NULL, "dropped");
    s_fix_quiet (&fix);
    s_fix_worker_destroy (&fix, 1);
    s_fix_worker_destroy (&fix, 2);
    s_wait_workers (&fix, "b", 0);
    s_wait_workers (&fix, "c", 0);

    //  Load balancing: two workers both get work.
    s_fix_worker (&fix, 1, "echo", 10, true);
    s_wait_workers (&fix, "echo", 2);
    char rid[S_TEST_ID_SIZE];
    int live, in_flight, queued;
    for (int i = 0; i < S_TEST_LB_REQUESTS; i++) {
        snprintf (rid, sizeof rid, "lb-%d", i);
        s_send (&fix, "echo", NULL, rid, 0, "lb");
    }
    aigw_job_t *jobs[S_TEST_LB_REQUESTS];
    int slots[S_TEST_LB_REQUESTS];
    int served[S_TEST_WORKERS] = {0};
    for (int i = 0; i < S_TEST_LB_REQUESTS; i++) {
        jobs[i] = s_fix_any_job (&fix, &slots[i]);
        assert (jobs[i]);
        served[slots[i]]++;
    }
    assert (served[0] > 0 && served[1] > 0);
    for (int i = 0; i < S_TEST_LB_REQUESTS; i++)
        s_reply (&fix, slots[i], &jobs[i], AIGW_REPLY_LAST, NULL, NULL, "lb");
    for (int i = 0; i < S_TEST_LB_REQUESTS; i++) {
        aigw_client_event_t *event = s_fix_event (&fix, 0);
        assert (event && event->type == AIGW_BP_CLIENT_REPLY && event->last);
        aigw_client_event_destroy (&event);
    }
    s_fix_worker_destroy (&fix, 1);
    s_wait_workers (&fix, "echo", 1);

    //  Credit: one in flight, the rest queued, drained in order; then the
    //  queue is full; then a queued request outlives its deadline.
    s_fix_worker (&fix, 1, "cq", 1, true);
    s_wait_workers (&fix, "cq", 1);
    for (int i = 0; i <= S_TEST_QUEUE_MAX; i++) {
        snprintf (rid, sizeof rid, "q-%d", i);
        s_send (&fix, "cq", NULL, rid, 0, rid);
    }
    s_send (&fix, "cq", NULL, "q-full", 0, "full");
    s_expect_error (&fix, "q-full", 503);
    rc = s_status (&fix, "cq", &live, &in_flight, &queued);
    assert (rc == 0 && live == 1 && in_flight == 1 && queued == S_TEST_QUEUE_MAX);
    for (int i = 0; i <= S_TEST_QUEUE_MAX; i++) {
        snprintf (rid, sizeof rid, "q-%d", i);
        job = s_fix_job (&fix, 1);
        assert (job && streq (job->request_id, rid) && zframe_streq (job->envelope, rid));
        s_reply (&fix, 1, &job, AIGW_REPLY_LAST, NULL, NULL, "done");
        s_expect_reply (&fix, rid, "done", true);
    }
    s_send (&fix, "cq", NULL, "d0", 0, "d0");
    job = s_fix_job (&fix, 1);
    assert (job && streq (job->request_id, "d0"));
    s_send (&fix, "cq", NULL, "d1", zclock_time () + S_TEST_DEADLINE_MS, "d1");
    s_expect_error (&fix, "d1", 504);
    s_reply (&fix, 1, &job, AIGW_REPLY_LAST, NULL, NULL, "d0");
    s_expect_reply (&fix, "d0", "d0", true);
    s_fix_worker_destroy (&fix, 1);
    s_wait_workers (&fix, "cq", 0);

    //  Shard keys: one owner per key among three workers; when an owner
    //  dies only its keys move.
    for (int i = 1; i <= 3; i++)
        s_fix_worker (&fix, i, "shard", 100, true);
    s_wait_workers (&fix, "shard", 3);
    int owner[S_TEST_SHARD_KEYS];
    bool used[S_TEST_WORKERS] = {false};
    for (int k = 0; k < S_TEST_SHARD_KEYS; k++) {
        owner[k] = s_shard_round_trip (&fix, k, 0);
        used[owner[k]] = true;
        assert (s_shard_round_trip (&fix, k, 1) == owner[k]);
    }
    assert ((used[1] + used[2] + used[3]) >= 2);
    int dead = owner[0];
    s_fix_worker_destroy (&fix, dead);
    s_wait_workers (&fix, "shard", 2);
    for (int k = 0; k < S_TEST_SHARD_KEYS; k++) {
        int now_owner = s_shard_round_trip (&fix, k, 2);
        assert (now_owner != dead);
        if (owner[k] != dead)
            assert (now_owner == owner[k]);
    }
    for (int i = 1; i <= 3; i++)
        s_fix_worker_destroy (&fix, i);
    s_wait_workers (&fix, "shard", 0);

    //  A replay-safe worker dies holding a request: the other one gets it.
    s_fix_worker (&fix, 1, "rs", 5, true);
    s_fix_worker (&fix, 2, "rs", 5, true);
    s_wait_workers (&fix, "rs", 2);
    s_send (&fix, "rs", NULL, "rs1", 0, "payload");
    int holder = -1;
    job = s_fix_any_job (&fix, &holder);
    assert (job && streq (job->request_id, "rs1"));
    aigw_job_destroy (&job);
    s_fix_worker_destroy (&fix, holder);
    int other = holder == 1 ? 2 : 1;
    job = s_fix_job (&fix, other);
    assert (job && streq (job->request_id, "rs1") && zframe_streq (job->envelope, "payload"));
    s_reply (&fix, other, &job, AIGW_REPLY_LAST, NULL, NULL, "replayed");
    s_expect_reply (&fix, "rs1", "replayed", true);
    s_fix_worker_destroy (&fix, other);

    //  Shard-keyed requests waiting for a dead owner's credit move on too.
    s_fix_worker (&fix, 1, "sp", 1, true);
    s_fix_worker (&fix, 2, "sp", 1, true);
    s_wait_workers (&fix, "sp", 2);
    s_send (&fix, "sp", "k", "sp1", 0, "one");
    s_send (&fix, "sp", "k", "sp2", 0, "two");
    job = s_fix_any_job (&fix, &holder);
    assert (job && streq (job->request_id, "sp1"));
    rc = s_status (&fix, "sp", &live, &in_flight, &queued);
    assert (rc == 0 && live == 2 && in_flight == 1 && queued == 1);
    aigw_job_destroy (&job);
    s_fix_worker_destroy (&fix, holder);
    other = holder == 1 ? 2 : 1;
    job = s_fix_job (&fix, other);
    assert (job && streq (job->request_id, "sp1") && zframe_streq (job->envelope, "one"));
    s_reply (&fix, other, &job, AIGW_REPLY_LAST, NULL, NULL, "1");
    s_expect_reply (&fix, "sp1", "1", true);
    job = s_fix_job (&fix, other);
    assert (job && streq (job->request_id, "sp2") && zframe_streq (job->envelope, "two"));
    s_reply (&fix, other, &job, AIGW_REPLY_LAST, NULL, NULL, "2");
    s_expect_reply (&fix, "sp2", "2", true);
    s_fix_worker_destroy (&fix, other);

    //  Not replay-safe: the client gets 503 and nobody else the request.
    s_fix_worker (&fix, 1, "nrs", 5, false);
    s_fix_worker (&fix, 2, "nrs", 5, false);
    s_wait_workers (&fix, "nrs", 2);
    s_send (&fix, "nrs", NULL, "nrs1", 0, "payload");
    job = s_fix_any_job (&fix, &holder);
    assert (job && streq (job->request_id, "nrs1"));
    aigw_job_destroy (&job);
    s_fix_worker_destroy (&fix, holder);
    s_expect_error (&fix, "nrs1", 503);
    s_fix_quiet (&fix);
    s_fix_worker_destroy (&fix, holder == 1 ? 2 : 1);

    //  A worker that goes silent (READY, twice, then nothing) is dead
    //  within liveness; the request it held fails with 503.
    zsock_t *raw = s_raw_new (endpoint);
    byte ready = AIGW_BP_WORKER_READY;
    for (int i = 0; i < 2; i++)
        s_raw_send (raw, AIGW_BP_WORKER_HEADER, (size_t) AIGW_BP_HEADER_SIZE, &ready, (size_t) 1,
                    "quiet", (size_t) 5, "quiet-raw-1", (size_t) 11, "1", (size_t) 1, "",
                    (size_t) 0, NULL);
    s_wait_workers (&fix, "quiet", 1);
    s_send (&fix, "quiet", NULL, "qt1", 0, "hush");
    zmsg_t *msg = s_raw_expect (raw, AIGW_BP_WORKER_HEADER, AIGW_BP_WORKER_REQUEST);
    assert (msg && zmsg_size (msg) == 5);
    zframe_t *frame = zmsg_first (msg);
    frame = zmsg_next (msg);
    frame = zmsg_next (msg);
    assert (zframe_size (frame) > 0);  //  the client's identity
    assert (zframe_streq (zmsg_next (msg), "qt1"));
    assert (zframe_streq (zmsg_next (msg), "hush"));
    zmsg_destroy (&msg);
    int64_t start = zclock_mono ();
    s_expect_error (&fix, "qt1", 503);
    assert (zclock_mono () - start < S_TEST_DEATH_MS);
    s_wait_workers (&fix, "quiet", 0);
    //  Now a stranger to the broker, it is asked to register again.
    byte heartbeat = AIGW_BP_WORKER_HEARTBEAT;
    s_raw_send (raw, AIGW_BP_WORKER_HEADER, (size_t) AIGW_BP_HEADER_SIZE, &heartbeat, (size_t) 1,
                NULL);
    msg = s_raw_expect (raw, AIGW_BP_WORKER_HEADER, AIGW_BP_WORKER_DISCONNECT);
    assert (msg);
    zmsg_destroy (&msg);
    zsock_destroy (&raw);

    //  Malformed input: dropped or answered, and the broker keeps serving.
    zsock_t *evil = s_raw_new (endpoint);
    byte request = AIGW_BP_CLIENT_REQUEST, reply = AIGW_BP_WORKER_REPLY, bad = 0x09;
    const char *h = AIGW_BP_CLIENT_HEADER;
    size_t hs = AIGW_BP_HEADER_SIZE;
    s_raw_send (evil, "garbage", (size_t) 7, NULL);
    s_raw_send (evil, "", (size_t) 0, NULL);
    s_raw_send (evil, h, hs, NULL);
    s_raw_send (evil, h, hs, &request, (size_t) 1, NULL);
    s_raw_send (evil, h, hs, &bad, (size_t) 1, NULL);
    s_raw_send (evil, h, hs, "abc", (size_t) 3, NULL);
    s_raw_send (evil, "AGWX99", hs, &request, (size_t) 1, "echo", (size_t) 4, "", (size_t) 0, "x1",
                (size_t) 2, "0", (size_t) 1, "e", (size_t) 1, NULL);
    s_raw_send (evil, h, hs, &request, (size_t) 1, "echo", (size_t) 4, "", (size_t) 0, "",
                (size_t) 0, "0", (size_t) 1, "e", (size_t) 1, NULL);
    s_raw_send (evil, h, hs, &request, (size_t) 1, "echo", (size_t) 4, "", (size_t) 0, "bad1",
                (size_t) 4, "soon", (size_t) 4, "e", (size_t) 1, NULL);
    s_raw_send (evil, h, hs, &request, (size_t) 1, "no such", (size_t) 7, "", (size_t) 0, "bad2",
                (size_t) 4, "0", (size_t) 1, "e", (size_t) 1, NULL);
    s_raw_send (evil, h, hs, &request, (size_t) 1, "a", (size_t) 1, "b", (size_t) 1, "c",
                (size_t) 1, "d", (size_t) 1, "e", (size_t) 1, "f", (size_t) 1, "g", (size_t) 1, "h",
                (size_t) 1, "i", (size_t) 1, "j", (size_t) 1, NULL);
    s_raw_send (evil, AIGW_BP_WORKER_HEADER, hs, &ready, (size_t) 1, "evil", (size_t) 4, "evil-1",
                (size_t) 6, "-5", (size_t) 2, "", (size_t) 0, NULL);
    s_raw_send (evil, AIGW_BP_WORKER_HEADER, hs, &ready, (size_t) 1, NULL);
    for (int i = 0; i < 2; i++) {
        msg = s_raw_expect (evil, AIGW_BP_CLIENT_HEADER, AIGW_BP_CLIENT_ERROR);
        assert (msg && zmsg_size (msg) == 5);
        zmsg_first (msg);
        zmsg_next (msg);
        frame = zmsg_next (msg);
        assert (zframe_streq (frame, "bad1") || zframe_streq (frame, "bad2"));
        assert (zframe_streq (zmsg_next (msg), "400"));
        zmsg_destroy (&msg);
    }
    s_raw_send (evil, AIGW_BP_WORKER_HEADER, hs, &reply, (size_t) 1, "zz", (size_t) 2, NULL);
    msg = s_raw_expect (evil, AIGW_BP_WORKER_HEADER, AIGW_BP_WORKER_DISCONNECT);
    assert (msg);
    zmsg_destroy (&msg);
    zsock_destroy (&evil);
    s_wait_workers (&fix, "evil", 0);
    s_send (&fix, "echo", NULL, "r5", 0, "still");
    job = s_fix_job (&fix, 0);
    assert (job && zframe_streq (job->envelope, "still"));
    s_reply (&fix, 0, &job, AIGW_REPLY_LAST, NULL, NULL, "here");
    s_expect_reply (&fix, "r5", "here", true);

    //  STATUS and METRICS.
    rc = s_status (&fix, "echo", &live, &in_flight, &queued);
    assert (rc == 0 && live == 1 && in_flight == 0 && queued == 0);
    char *text = s_report (&fix, AIGW_BP_CLIENT_METRICS);
    assert (text);
    if (verbose)
        printf ("%s", text);
    const char *expected[] = {"# HELP aigw_stage_requests_total ",
                              "# TYPE aigw_stage_requests_total counter\n",
                              "aigw_stage_requests_total{stage=\"b\"} 2\n",
                              "# TYPE aigw_stage_errors_total counter\n",
                              "aigw_stage_errors_total{stage=\"echo\",status=\"503\"} 1\n",
                              "aigw_stage_errors_total{stage=\"cq\",status=\"503\"} 1\n",
                              "aigw_stage_errors_total{stage=\"cq\",status=\"504\"} 1\n",
                              "aigw_stage_errors_total{stage=\"nrs\",status=\"503\"} 1\n",
                              "# TYPE aigw_stage_workers gauge\n",
                              "aigw_stage_workers{stage=\"echo\"} 1\n",
                              "# TYPE aigw_stage_in_flight gauge\n",
                              "aigw_stage_in_flight{stage=\"echo\"} 0\n",
                              "# TYPE aigw_stage_queued gauge\n",
                              "aigw_stage_queued{stage=\"cq\"} 0\n",
                              "# HELP aigw_stage_duration_seconds ",
                              "# TYPE aigw_stage_duration_seconds histogram\n",
                              "aigw_stage_duration_seconds_bucket{stage=\"b\",le=\"0.00005\"} ",
                              "aigw_stage_duration_seconds_bucket{stage=\"b\",le=\"+Inf\"} 1\n",
                              "aigw_stage_duration_seconds_sum{stage=\"b\"} ",
                              "aigw_stage_duration_seconds_count{stage=\"b\"} 1\n",
                              "aigw_stage_duration_seconds_count{stage=\"c\"} 1\n"};
    for (size_t i = 0; i < sizeof expected / sizeof expected[0]; i++) {
        if (!strstr (text, expected[i]))
            printf ("\nmissing from METRICS: %s\n", expected[i]);
        assert (strstr (text, expected[i]));
    }
    zstr_free (&text);

    //  Worker reports (section 4a).
    s_test_reports (&fix);

    //  Broker restart on the same endpoint: the worker registers again and
    //  serves. An inproc client cannot outlive its peer; a tcp one
    //  reconnects by itself.
    zactor_destroy (&broker);
    args.endpoint = endpoint;
    char *again = NULL;
    broker = s_test_broker_new (&args, &again);
    assert (broker && again && streq (again, endpoint));
    zstr_free (&again);
    if (strncmp (endpoint, "inproc:", 7) == 0)
        s_fix_new_client (&fix);
    s_wait_workers (&fix, "echo", 1);
    s_send (&fix, "echo", NULL, "r6", 0, "back");
    job = s_fix_job (&fix, 0);
    assert (job && zframe_streq (job->envelope, "back"));
    s_reply (&fix, 0, &job, AIGW_REPLY_LAST, NULL, NULL, "again");
    s_expect_reply (&fix, "r6", "again", true);
    assert (aigw_client_connected (fix.client));

    s_fix_destroy (&fix);
    zactor_destroy (&broker);
}

void
aigw_broker_test (bool verbose)
{
    aigw_log_level_t level = aigw_log_level ();
    aigw_log_set_level (verbose ? AIGW_LOG_DEBUG : S_TEST_LOG_SILENT);

    //  A failed bind: the actor still answers, with no endpoint.
    aigw_broker_args_t args = {"bogus://nowhere", 0, 0, 0};
    zactor_t *broker = zactor_new (aigw_broker_actor, &args);
    assert (broker);
    assert (aigw_broker_endpoint (broker) == NULL);
    zactor_destroy (&broker);

    //  Settings the worker refuses.
    assert (!aigw_bp_name_valid ("two words", 9));
    assert (aigw_bp_name_valid ("rate.limit_2-x", 14));
    assert (!aigw_worker_new ("inproc://aigw-broker-test", "bad name", 1, true, 0, 0));
    assert (!aigw_worker_new ("inproc://aigw-broker-test", "echo", 0, true, 0, 0));

    s_test_transport ("inproc://aigw-broker-test", verbose);
    s_test_transport ("tcp://127.0.0.1:*", verbose);

    //  REPORTS over ipc, through the one-shot.
    char *ipc = zsys_sprintf ("ipc:///tmp/aigw-broker-test-%d.ipc", (int) getpid ());
    assert (ipc);
    args.endpoint = ipc;  //  default heartbeats: this part pumps nothing
    char *endpoint = NULL;
    broker = s_test_broker_new (&args, &endpoint);
    assert (broker && endpoint);
    aigw_worker_t *worker = aigw_worker_new (endpoint, "prov", 1, false, 0, 0);
    assert (worker);
    assert (aigw_worker_report (worker, "{\"ipc\":true}", 12) == 0);
    int64_t until = zclock_mono () + S_TEST_WAIT_MS;
    char *text = NULL;
    while (!text || !strstr (text, "\"ipc\":true")) {
        zstr_free (&text);
        assert (zclock_mono () < until);
        text = aigw_client_reports_once (endpoint, "prov", zclock_time () + S_TEST_REPORT_MS, NULL,
                                         0);
        aigw_worker_tick (worker);
    }
    zstr_free (&text);
    aigw_worker_destroy (&worker);
    zactor_destroy (&broker);
    zstr_free (&endpoint);
    zstr_free (&ipc);

    //  Nobody answers: the one-shot gives up at its deadline.
    s_test_reports_unanswered ("inproc://aigw-broker-nobody");
    s_test_reports_unanswered ("tcp://127.0.0.1:1");
    aigw_log_set_level (level);
}
