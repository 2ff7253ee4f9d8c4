/*  aigw_edge_io: handler threads <-> one I/O thread <-> stages and broker. */
#include "aigw_edge_io.h"
#include "aigw_guardout.h"
#include "aigw_guardset.h"
#include "aigw_bp.h"
#include "aigw_broker.h"
#include "aigw_log.h"
#include "aigw_peer.h"
#include "aigw_stage.h"
#include "aigw_worker.h"

#include <pthread.h>
#include <stdatomic.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>

//  Stages that must have a live worker for /readyz; the admin actor only
//  counts when a database is configured. Usage is not one of them: the
//  gateway answers while it is down, and its records wait here until a
//  usage worker acknowledges them.
static const char *s_required[] = {"auth", "ratelimit", "guardrail", "cache", "provider", "admin"};
#define AIGW_REQUIRED_STAGES 5
//  A STATUS answer older than this many heartbeats no longer counts.
#define AIGW_STATUS_STALE_BEATS 4
//  Longest STATUS text kept.
#define AIGW_STATUS_MAX 4096
//  Client hang-ups taken from epoll per call.
#define AIGW_EDGE_IO_HUP_BATCH 64
//  A usage record is sent with this deadline, and sent again this long
//  after it failed (no usage worker, or it died holding the record).
#define AIGW_EDGE_USAGE_DEADLINE_MS 10000
#define AIGW_EDGE_USAGE_RETRY_MS    1000
//  Records waiting to be sent again, at most; past it the newest are
//  dropped (counted, and logged at most every AIGW_EDGE_USAGE_LOG_MS).
#define AIGW_EDGE_USAGE_RETRY_MAX 200000
#define AIGW_EDGE_USAGE_LOG_MS    10000
//  How often the I/O thread looks whether a usage worker is live.
#define AIGW_EDGE_USAGE_LOOK_MS 100
//  Records per batch sent to the usage actor, at most, and bytes: under
//  load one pass of the I/O thread takes many records, and one message,
//  one slot and one acknowledgement for them all cost a fraction of one
//  each.
#define AIGW_EDGE_USAGE_BATCH_MAX   512
#define AIGW_EDGE_USAGE_BATCH_BYTES (4 * 1024 * 1024)
//  A batch not full leaves this long after its first record: at light
//  load too, one message carries many records (the client's answer is
//  long gone; the record only waits in memory, as it did for its ack).
#define AIGW_EDGE_USAGE_BATCH_MS 25
//  Longest a queued record waits for the I/O thread's next pass.
#define AIGW_EDGE_USAGE_LINGER_MS 100
//  Status of the final event of a request whose client left (nginx's "client
//  closed request"; nobody reads it).
#define AIGW_EDGE_IO_CLIENT_GONE 499

//  What a slot asks for.
typedef enum {
    S_ASK_REQUEST,  //  a pipeline request
    S_ASK_METRICS,  //  the broker's METRICS
    S_ASK_REPORTS,  //  the broker's REPORTS of a service
    S_ASK_USAGE     //  a usage record to the usage actor (no handler waits)
} s_ask_t;

//  A usage record from a handler, on its way to the I/O thread.
typedef struct _s_usage_t {
    aigw_envelope_t *record;  //  the record
    bool keep;                //  it goes to the usage actor (else: the settle only)
    struct _s_usage_t *next;  //  next in the stack
} s_usage_t;

//  One event queued on a slot.
typedef struct _s_item_t {
    aigw_client_event_t *event;  //  the event
    struct _s_item_t *next;      //  next in the slot's queue
} s_item_t;

struct _aigw_slot_t {
    aigw_edge_io_t *io;     //  owning I/O
    atomic_int refs;        //  the handler's, the I/O thread's, a cancel's
    atomic_bool abandoned;  //  the handler left
    uint64_t num;           //  request number
    char id[24];            //  its text, the broker request id
    int fd;                 //  the client's socket, watched for hang-up; -1 none
    bool handler_done;      //  handler: it has taken the final event
    pthread_mutex_t mutex;  //  guards the event queue
    pthread_cond_t cond;    //  signalled on every new event
    s_item_t *head;         //  oldest event
    s_item_t *tail;         //  newest event
    //  The question, until the I/O thread takes it.
    s_ask_t ask;           //  what it is
    aigw_envelope_t *env;  //  S_ASK_REQUEST: the request
    //  S_ASK_REPORTS: the service asked about; one spare byte, so that a
    //  longer name cut to fit is still too long, hence invalid.
    char service[AIGW_BP_NAME_MAX + 2];
    int64_t deadline_ms;        //  S_ASK_REPORTS: when to stop asking
    struct _aigw_slot_t *next;  //  in the hand-off queue
    //  The I/O thread's alone.
    bool registered;          //  in io->slots: not yet answered in full
    bool remote;              //  waiting on the broker
    aigw_job_t *job;          //  the job a local stage holds, or NULL
    aigw_envelope_t *record;  //  S_ASK_USAGE: the batch of records, kept until acknowledged
    bool guard_seen;          //  its first reply was looked at for a policy
    aigw_guardout_t *guard;   //  the answer's check under the request's policy, or NULL
};

//  A handler's word that it left before its request's end.
typedef struct _s_cancel_t {
    aigw_slot_t *slot;         //  the slot, with a reference of its own
    struct _s_cancel_t *next;  //  next in the stack
} s_cancel_t;

struct _aigw_edge_io_t {
    const aigw_config_t *config;     //  settings (shared, read-only)
    char *endpoint;                  //  broker endpoint
    char *stages;                    //  stages hosted in the I/O thread
    bool owns_shards;                //  they own every key
    zactor_t *actor;                 //  the I/O thread
    int evfd;                        //  wakes the I/O thread
    _Atomic (aigw_slot_t *) queue;   //  hand-offs, newest first (a Treiber stack)
    _Atomic (s_cancel_t *) cancels;  //  handlers that left, newest first
    _Atomic (s_usage_t *) usage;     //  usage records from handlers, newest first
    int hupfd;                       //  epoll set of client sockets (EPOLLRDHUP)
    atomic_bool sleeping;            //  the I/O thread is in, or about to enter, poll
    atomic_ullong next_id;           //  request id counter
    pthread_mutex_t lock;            //  guards status, status_at, connected, directory
    char status[AIGW_STATUS_MAX];    //  last STATUS text
    char *directory;                 //  last directory text, NULL before one
    int64_t status_at;               //  when it arrived, Unix ms
    bool connected;                  //  broker answering
    char err[256];                   //  why the I/O thread did not start
    bool failed;                     //  it did not (set before its signal)

    //  The I/O thread's alone.
    aigw_client_t *client;         //  the broker connection
    aigw_host_t *host;             //  the stages it runs, NULL for none
    zhashx_t *slots;               //  request id -> slot not yet answered in full
    zlistx_t *metrics_waiting;     //  slots asked METRICS, oldest first
    zlistx_t *reports_waiting;     //  slots asked REPORTS, oldest first
    zlistx_t *usage_retry;         //  usage batches to send again, oldest first
    size_t usage_retry_records;    //  records in them
    aigw_envelope_t *usage_batch;  //  the batch filling, or NULL
    size_t usage_batch_records;    //  records in it
    int64_t usage_batch_at;        //  when its first record came, Unix ms
    int64_t usage_retry_at;        //  when, Unix ms
    uint64_t usage_dropped;        //  records dropped: the retry list was full
    int64_t usage_logged_at;       //  last log line about it
    bool usage_live;               //  a usage worker was live at the last look
    int64_t usage_looked_at;       //  when that was, Unix ms (looks are rationed)
    aigw_guardset_t *guards;       //  guardrail policies, for the answers
};

//  Drop one reference to SLOT; the last one frees it.
static void
s_slot_unref (aigw_slot_t **slot_p)
{
    aigw_slot_t *slot = *slot_p;
    *slot_p = NULL;
    if (!slot || atomic_fetch_sub (&slot->refs, 1) != 1)
        return;
    while (slot->head) {
        s_item_t *next = slot->head->next;
        aigw_client_event_destroy (&slot->head->event);
        free (slot->head);
        slot->head = next;
    }
    aigw_envelope_destroy (&slot->env);
    aigw_envelope_destroy (&slot->record);
    aigw_guardout_destroy (&slot->guard);
    pthread_cond_destroy (&slot->cond);
    pthread_mutex_destroy (&slot->mutex);
    free (slot);
}

//  Take SLOT out of the table of slots not yet answered in full.
static void
s_unregister (aigw_edge_io_t *self, aigw_slot_t *slot)
{
    if (slot->registered) {
        zhashx_delete (self->slots, slot->id);
        slot->registered = false;
    }
}

//  True when EVENT ends its request.
static bool
s_final (const aigw_client_event_t *event)
{
    return event->type != AIGW_BP_CLIENT_REPLY || event->last;
}

//  Keep the batch *BATCH_P (taken) to send again after
//  AIGW_EDGE_USAGE_RETRY_MS.
static void
s_usage_retry (aigw_edge_io_t *self, aigw_envelope_t **batch_p)
{
    aigw_envelope_t **record_p = batch_p;
    if (!*record_p)
        return;
    size_t records = aigw_envelope_batch_count (*record_p);
    if (self->usage_retry_records + records > AIGW_EDGE_USAGE_RETRY_MAX) {
        self->usage_dropped += records;
        int64_t now = aigw_now_ms ();
        if (now - self->usage_logged_at >= AIGW_EDGE_USAGE_LOG_MS) {
            aigw_error ("usage: %d records wait for the usage actor; %" PRIu64
                        " records dropped so far",
                        AIGW_EDGE_USAGE_RETRY_MAX, self->usage_dropped);
            self->usage_logged_at = now;
        }
        aigw_envelope_destroy (record_p);
        return;
    }
    if (zlistx_size (self->usage_retry) == 0)
        self->usage_retry_at = aigw_now_ms () + AIGW_EDGE_USAGE_RETRY_MS;
    zlistx_add_end (self->usage_retry, *record_p);
    self->usage_retry_records += records;
    *record_p = NULL;
}

//  The answer's check could not start, or failed: ENV becomes ERROR.
static void
s_guard_fail (aigw_envelope_t *env, int status, const char *code, const char *message)
{
    aigw_envelope_set_error (env, status, "server_error", code, NULL, message);
    aigw_envelope_set_body (env, NULL, 0);
}

//  SLOT's answer ends with EVENT (its ENV) although the request runs on:
//  nothing more reaches the slot, and the request stops where it runs. A
//  stage here holds it mid-call (this is its reply): it is only marked, and
//  drops it at its next step (the provider at the upstream's next bytes).
static void
s_guard_stop (aigw_edge_io_t *self, aigw_slot_t *slot, aigw_client_event_t *event,
              aigw_envelope_t *env)
{
    if (event->last)
        return;
    event->last = env->last = true;
    if (slot->job) {
        slot->job->origin = NULL;
        slot->job->cancelled = true;
        slot->job = NULL;
    }
    aigw_host_forget (self->host, slot->id, true);
}

//  Check a reply of SLOT under the guardrail policy its request met at the
//  guardrail stage (gp): the first reply says which; a block or a failure
//  makes EVENT final and cancels the request where it runs. I/O thread.
static void
s_guard (aigw_edge_io_t *self, aigw_slot_t *slot, aigw_client_event_t *event)
{
    if (slot->guard_seen && !slot->guard)
        return;
    aigw_envelope_t *env = event->env;
    if (!env && event->envelope) {
        //  From another process: decoded here instead of in the handler.
        char err[128] = "";
        env = aigw_envelope_decode (zframe_data (event->envelope), zframe_size (event->envelope),
                                    err, sizeof err);
        if (!env)
            return;  //  the handler finds it broken too, and says so
        zframe_destroy (&event->envelope);
        event->env = env;
    }
    if (!env)
        return;
    if (!slot->guard_seen) {
        slot->guard_seen = true;
        if (!env->guard_policy || env->status >= 400
            || (env->kind != AIGW_KIND_CHAT && env->kind != AIGW_KIND_MESSAGES
                && env->kind != AIGW_KIND_RESPONSES))
            return;
        aigw_policy_t *policy = aigw_guardset_find (self->guards, env->guard_policy);
        aigw_guardout_format_t format = env->kind == AIGW_KIND_MESSAGES    ? AIGW_GUARDOUT_MESSAGES
                                        : env->kind == AIGW_KIND_RESPONSES ? AIGW_GUARDOUT_RESPONSES
                                                                           : AIGW_GUARDOUT_CHAT;
        slot->guard = policy ? aigw_guardout_new (policy, format) : NULL;
        if (!slot->guard) {
            //  Not known here yet (a policy made a moment ago): an answer
            //  unchecked could leak what it guards, so none goes.
            s_guard_fail (env, 503, "guardrail_unavailable",
                          "The answer's guardrail policy is not loaded here yet; try again.");
            s_guard_stop (self, slot, event, env);
            return;
        }
    }
    if (env->status >= 400)
        return;
    bool stream = !event->last || env->seq > 0
                  || (env->content_type && strstr (env->content_type, "event-stream"));
    int rc;
    if (stream) {
        char *out = NULL;
        size_t out_len = 0;
        rc = aigw_guardout_stream (slot->guard, env->body, env->body_len, event->last, &out,
                                   &out_len);
        aigw_envelope_take_body (env, out, out ? out_len : 0);
    }
    else {
        char *body = env->body;
        size_t len = env->body_len;
        env->body = NULL;
        env->body_len = 0;
        rc = aigw_guardout_answer (slot->guard, &body, &len);
        if (rc == 0)
            aigw_envelope_take_body (env, body, len);
        else
            free (body);
        const char *message;
        const char *code = aigw_guardout_blocked (slot->guard, &message);
        if (rc == 1)
            aigw_envelope_set_error (env, 400, "guardrail_error", code, NULL, message);
        else if (rc < 0)
            s_guard_fail (env, 500, "guardrail_failed",
                          "The guardrails could not check the answer.");
    }
    const char *out = aigw_guardout_verdict (slot->guard);
    if (*out) {
        char verdict[1024];
        bool passed = !env->verdict || streq (env->verdict, "pass");
        snprintf (verdict, sizeof verdict, "%s%s%s", passed ? "" : env->verdict, passed ? "" : ",",
                  out);
        aigw_envelope_set (&env->verdict, verdict);
    }
    //  Blocked mid-stream: the error event is the last the client gets.
    if (rc != 0)
        s_guard_stop (self, slot, event, env);
}

//  Append EVENT to SLOT's queue and wake its handler; drop it when the
//  handler left. A final event also ends the I/O thread's part: the slot
//  leaves the table and the I/O thread's reference goes. I/O thread only.
static void
s_push (aigw_slot_t *slot, aigw_client_event_t **event_p)
{
    aigw_client_event_t *event = *event_p;
    *event_p = NULL;
    if (slot->ask == S_ASK_REQUEST && event->type == AIGW_BP_CLIENT_REPLY)
        s_guard (slot->io, slot, event);
    bool final = s_final (event);
    if (final && slot->ask == S_ASK_USAGE && event->type != AIGW_BP_CLIENT_REPLY)
        s_usage_retry (slot->io, &slot->record);
    if (final) {
        s_unregister (slot->io, slot);
        slot->job = NULL;
        //  Here, in the I/O thread that made it, not where the slot's
        //  last reference happens to go.
        aigw_guardout_destroy (&slot->guard);
    }
    if (atomic_load (&slot->abandoned))
        aigw_client_event_destroy (&event);
    else {
        s_item_t *item = malloc (sizeof *item);
        assert (item);
        item->event = event;
        item->next = NULL;
        pthread_mutex_lock (&slot->mutex);
        if (slot->tail)
            slot->tail->next = item;
        else
            slot->head = item;
        slot->tail = item;
        pthread_mutex_unlock (&slot->mutex);
        //  After the unlock: a handler woken under the lock would block on
        //  it at once, one more context switch per reply. Our reference
        //  keeps the slot alive until here.
        pthread_cond_signal (&slot->cond);
    }
    if (final)
        s_slot_unref (&slot);
}

//  A made-up error event for request ID.
static aigw_client_event_t *
s_error_event (const char *id, int status, const char *text)
{
    aigw_client_event_t *event = calloc (1, sizeof *event);
    assert (event);
    event->type = AIGW_BP_CLIENT_ERROR;
    event->request_id = strdup (id);
    event->status = status;
    event->text = strdup (text);
    return event;
}

//  Answer SLOT with an error: its final event.
static void
s_fail (aigw_slot_t *slot, int status, const char *text)
{
    aigw_client_event_t *event = s_error_event (slot->id, status, text);
    s_push (slot, &event);
}

//  Fail every request waiting on the broker (all of them with ALL, as at
//  stop): it went away.
static void
s_fail_all (aigw_edge_io_t *self, bool all, const char *text)
{
    zlistx_t *list = zhashx_values (self->slots);
    for (aigw_slot_t *slot = (aigw_slot_t *) zlistx_first (list); slot;
         slot = (aigw_slot_t *) zlistx_next (list))
        if (slot->remote || all) {
            if (slot->job) {
                //  A stage here still holds it: it must not answer now.
                slot->job->origin = NULL;
                aigw_host_cancel (self->host, slot->job);
            }
            s_fail (slot, 503, text);
        }
    zlistx_destroy (&list);
    //  Their answers are lost with the connection: a late one must not go
    //  to the next question.
    aigw_slot_t *slot;
    while ((slot = (aigw_slot_t *) zlistx_detach (self->metrics_waiting, NULL)))
        s_fail (slot, 503, text);
    while ((slot = (aigw_slot_t *) zlistx_detach (self->reports_waiting, NULL)))
        s_fail (slot, 503, text);
}

//  SLOT's client left: cancel its request where it is, and end the slot.
static void
s_cancel (aigw_edge_io_t *self, aigw_slot_t *slot)
{
    if (!slot->registered)
        return;  //  answered in full already
    if (slot->job) {
        //  The stage holding it drops it; nothing it does reaches the slot.
        slot->job->origin = NULL;
        aigw_host_cancel (self->host, slot->job);
        slot->job = NULL;
    }
    //  Waiting on a peer: the stage elsewhere that cancels is told. On the
    //  broker (AIGW-BP/1 has no cancel): its replies are dropped when they
    //  come.
    aigw_host_forget (self->host, slot->id, true);
    s_fail (slot, AIGW_EDGE_IO_CLIENT_GONE, "The client left.");
}

//  Handlers that left before their request's end.
static void
s_take_cancels (aigw_edge_io_t *self)
{
    s_cancel_t *cancel = atomic_exchange (&self->cancels, NULL);
    while (cancel) {
        s_cancel_t *next = cancel->next;
        s_cancel (self, cancel->slot);
        s_slot_unref (&cancel->slot);
        free (cancel);
        cancel = next;
    }
}

//  Clients that hung up while their requests ran.
static void
s_take_hangups (aigw_edge_io_t *self)
{
    struct epoll_event events[AIGW_EDGE_IO_HUP_BATCH];
    int count = epoll_wait (self->hupfd, events, AIGW_EDGE_IO_HUP_BATCH, 0);
    for (int i = 0; i < count; i++) {
        char id[24];
        snprintf (id, sizeof id, "e%llx", (unsigned long long) events[i].data.u64);
        //  Not found: answered already (or, for a moment, not yet taken).
        aigw_slot_t *slot = (aigw_slot_t *) zhashx_lookup (self->slots, id);
        if (slot)
            s_cancel (self, slot);
    }
}

//  The front's deliver (aigw_front_t): a reply from a stage in this thread.
static void
s_front_deliver (void *arg, void *origin, aigw_client_event_t **event_p)
{
    s_push ((aigw_slot_t *) origin, event_p);
}

//  The front's left (aigw_front_t): the slot's request went on to a peer
//  (the other pipeline's key owner, say) and its job here is freed, so a
//  cancel must not reach it.
static void
s_front_left (void *arg, void *origin)
{
    (void) arg;
    ((aigw_slot_t *) origin)->job = NULL;
}

//  The front's forward (aigw_front_t): ENV goes to SERVICE through the
//  broker; its replies come back by the slot's id.
static void
s_front_forward (void *arg, void *origin, const char *service, const char *shard,
                 aigw_envelope_t **env_p)
{
    aigw_edge_io_t *self = (aigw_edge_io_t *) arg;
    aigw_slot_t *slot = (aigw_slot_t *) origin;
    aigw_envelope_t *env = *env_p;
    *env_p = NULL;
    size_t size = 0;
    char *data = NULL;
    if (!aigw_client_connected (self->client))
        s_fail (slot, 503, "The pipeline broker is unreachable.");
    else if (!(data = aigw_envelope_encode (env, &size)))
        s_fail (slot, 500, "The request could not be encoded.");
    else {
        slot->remote = true;
        slot->job = NULL;
        aigw_client_send (self->client, service, shard ? shard : "", slot->id, env->deadline_ms,
                          &data, size);
    }
    free (data);
    aigw_envelope_destroy (&env);
}

//  Ask REPORTS for SLOT; answer it with an ERROR instead when it cannot be
//  asked.
static void
s_send_reports (aigw_edge_io_t *self, aigw_slot_t *slot)
{
    if (!aigw_bp_name_valid (slot->service, strlen (slot->service)))
        s_fail (slot, 400, "Invalid service name.");
    else if (aigw_now_ms () >= slot->deadline_ms)
        s_fail (slot, 504, "The deadline passed.");
    else if (aigw_client_reports (self->client, slot->service) == -1)
        s_fail (slot, 503, "The pipeline broker is unreachable.");
    else
        zlistx_add_end (self->reports_waiting, slot);
}

//  Deliver EVENT, an answer to the oldest question on WAITING, to it.
static void
s_answer_first (zlistx_t *waiting, aigw_client_event_t **event_p)
{
    aigw_slot_t *slot = (aigw_slot_t *) zlistx_detach (waiting, NULL);
    if (slot)
        s_push (slot, event_p);
    aigw_client_event_destroy (event_p);
}

//  Take every hand-off waiting, oldest first.
static void
s_take_queue (aigw_edge_io_t *self, bool connected)
{
    aigw_slot_t *stack = atomic_exchange (&self->queue, NULL);
    aigw_slot_t *list = NULL;
    while (stack) {
        aigw_slot_t *next = stack->next;
        stack->next = list;
        list = stack;
        stack = next;
    }
    while (list) {
        aigw_slot_t *slot = list;
        list = slot->next;
        slot->next = NULL;
        if (slot->ask == S_ASK_REQUEST) {
            aigw_envelope_t *env = slot->env;
            slot->env = NULL;
            zhashx_update (self->slots, slot->id, slot);
            slot->registered = true;
            //  NULL when it went to the broker, or was answered at once.
            aigw_job_t *job = aigw_host_submit (self->host, &env, slot, slot->id);
            if (slot->registered && !slot->remote)
                slot->job = job;
        }
        else if (!connected)
            s_fail (slot, 503, "The pipeline broker is unreachable.");
        else if (slot->ask == S_ASK_METRICS) {
            aigw_client_metrics (self->client);
            zlistx_add_end (self->metrics_waiting, slot);
        }
        else
            s_send_reports (self, slot);
    }
}

//  Send BATCH (taken) to the usage actor, as a request of its own whose
//  only answer is an acknowledgement: the actor answers once its records
//  are durable. A slot no handler waits on tracks it.
static void
s_usage_send (aigw_edge_io_t *self, aigw_envelope_t *batch)
{
    aigw_envelope_t *record = batch;
    aigw_slot_t *slot = calloc (1, sizeof *slot);
    assert (slot);
    slot->io = self;
    //  The I/O thread's, and one for this call: a submit answered at once
    //  (no usage worker anywhere) lets the first go before it returns.
    atomic_init (&slot->refs, 2);
    atomic_init (&slot->abandoned, true);
    slot->num = atomic_fetch_add (&self->next_id, 1);
    snprintf (slot->id, sizeof slot->id, "u%llx", (unsigned long long) slot->num);
    slot->fd = -1;
    slot->handler_done = true;
    pthread_mutex_init (&slot->mutex, NULL);
    pthread_cond_init (&slot->cond, NULL);
    slot->ask = S_ASK_USAGE;
    record->deadline_ms = aigw_now_ms () + AIGW_EDGE_USAGE_DEADLINE_MS;
    slot->record = aigw_envelope_dup (record);
    zhashx_update (self->slots, slot->id, slot);
    slot->registered = true;
    aigw_job_t *job = aigw_host_submit (self->host, &record, slot, slot->id);
    if (slot->registered && !slot->remote)
        slot->job = job;
    s_slot_unref (&slot);
}

//  True when a usage worker is live, as the broker's last STATUS says (or
//  the last directory, while the broker is away). Records wait here
//  otherwise, rather than cycle through the broker every second. I/O
//  thread only.
static bool
s_usage_live (aigw_edge_io_t *self)
{
    //  Once per AIGW_EDGE_USAGE_LOOK_MS at most: the lock is the handlers'
    //  too, and this runs on every pass while records wait.
    int64_t now = aigw_now_ms ();
    if (now - self->usage_looked_at < AIGW_EDGE_USAGE_LOOK_MS)
        return self->usage_live;
    self->usage_looked_at = now;
    bool live = false;
    pthread_mutex_lock (&self->lock);
    bool fresh = self->connected
                 && aigw_now_ms () - self->status_at
                        <= (int64_t) self->config->heartbeat_ms * AIGW_STATUS_STALE_BEATS;
    if (fresh) {
        for (const char *line = self->status; line && *line;) {
            char name[64];
            int workers;
            if (sscanf (line, "%63s %d", name, &workers) == 2 && streq (name, "usage"))
                live = workers > 0;
            line = strchr (line, '\n');
            if (line)
                line++;
        }
    }
    else if (self->directory)
        live = aigw_peer_directory_live (self->directory, "usage") > 0;
    pthread_mutex_unlock (&self->lock);
    self->usage_live = live;
    return live;
}

//  The settle of RECORD (a finished request that reserved): what the
//  rate-limit owner needs to replace the reservation with the real use
//  (schemas/limits.md 4). Caller owns the result.
static aigw_envelope_t *
s_settle_new (const aigw_envelope_t *record)
{
    aigw_envelope_t *settle = aigw_envelope_new ();
    assert (settle);
    settle->kind = AIGW_KIND_SETTLE;
    aigw_envelope_set (&settle->id, record->id);
    aigw_envelope_set (&settle->tenant_id, record->tenant_id);
    aigw_envelope_set (&settle->key_id, record->key_id);
    aigw_envelope_set (&settle->model, record->model);
    aigw_envelope_set (&settle->reservation, record->reservation);
    settle->tokens_in = record->tokens_in;
    settle->tokens_out = record->tokens_out;
    settle->tokens_cached = record->tokens_cached;
    settle->cost_nusd = record->cost_nusd;
    settle->status = record->status;
    aigw_envelope_set (&settle->route[0], "ratelimit");
    settle->route_len = 1;
    settle->deadline_ms = aigw_now_ms () + AIGW_EDGE_USAGE_DEADLINE_MS;
    return settle;
}

//  Send RECORD's settle one-way to its rate-limit owner, on the shard the
//  rate-limit stage keys its requests by. Not sent again: a settle that
//  is lost is covered by the reservation's lease.
static void
s_settle_send (aigw_edge_io_t *self, const aigw_envelope_t *record)
{
    aigw_envelope_t *settle = s_settle_new (record);
    char *shard = strdup (aigw_stage_shard_key (settle, "ratelimit", self->config));
    assert (shard);
    if (aigw_host_oneway (self->host, "ratelimit", shard, &settle) != 0)
        aigw_debug ("settle of %s not sent: no route to its rate-limit owner", record->id);
    aigw_envelope_destroy (&settle);
    free (shard);
}

//  A new, empty batch of usage records.
static aigw_envelope_t *
s_usage_batch_new (void)
{
    aigw_envelope_t *batch = aigw_envelope_new ();
    assert (batch);
    batch->kind = AIGW_KIND_USAGE;
    aigw_envelope_set (&batch->route[0], "usage");
    batch->route_len = 1;
    return batch;
}

//  Send BATCH (taken) when a usage worker is LIVE, else keep it to send
//  again.
static void
s_usage_flush (aigw_edge_io_t *self, aigw_envelope_t **batch_p, bool live)
{
    if (!*batch_p)
        return;
    if (live)
        s_usage_send (self, *batch_p);
    else
        s_usage_retry (self, batch_p);
    *batch_p = NULL;
}

//  Usage records from handlers, oldest first, into the batch filling,
//  which leaves full or AIGW_EDGE_USAGE_BATCH_MS after its first record;
//  and the batches due again. Each record that reserved settles first;
//  those not kept go no further.
static void
s_take_usage (aigw_edge_io_t *self)
{
    s_usage_t *stack = atomic_exchange (&self->usage, NULL);
    s_usage_t *list = NULL;
    while (stack) {
        s_usage_t *next = stack->next;
        if (stack->record->reservation)
            s_settle_send (self, stack->record);
        if (stack->keep) {
            stack->next = list;
            list = stack;
        }
        else {
            aigw_envelope_destroy (&stack->record);
            free (stack);
        }
        stack = next;
    }
    int64_t now = aigw_now_ms ();
    bool due = self->usage_batch && now - self->usage_batch_at >= AIGW_EDGE_USAGE_BATCH_MS;
    bool live = list || due || zlistx_size (self->usage_retry) ? s_usage_live (self) : false;
    while (list) {
        s_usage_t *next = list->next;
        if (!self->usage_batch) {
            self->usage_batch = s_usage_batch_new ();
            self->usage_batch_at = now;
        }
        if (aigw_envelope_batch_add (self->usage_batch, list->record) == 0)
            self->usage_batch_records++;
        else
            aigw_error ("usage: a record could not be encoded; dropped");
        aigw_envelope_destroy (&list->record);
        free (list);
        list = next;
        if (self->usage_batch_records == AIGW_EDGE_USAGE_BATCH_MAX
            || self->usage_batch->body_len >= AIGW_EDGE_USAGE_BATCH_BYTES) {
            s_usage_flush (self, &self->usage_batch, live);
            self->usage_batch_records = 0;
        }
    }
    if (self->usage_batch && now - self->usage_batch_at >= AIGW_EDGE_USAGE_BATCH_MS) {
        s_usage_flush (self, &self->usage_batch, live);
        self->usage_batch_records = 0;
    }
    if (zlistx_size (self->usage_retry) && now >= self->usage_retry_at && !live)
        self->usage_retry_at = now + AIGW_EDGE_USAGE_RETRY_MS;
    else if (zlistx_size (self->usage_retry) && now >= self->usage_retry_at) {
        zlistx_t *due_list = self->usage_retry;
        self->usage_retry = zlistx_new ();
        self->usage_retry_records = 0;
        aigw_envelope_t *again;
        while ((again = (aigw_envelope_t *) zlistx_detach (due_list, NULL)))
            s_usage_send (self, again);
        zlistx_destroy (&due_list);
    }
}

//  Events from the broker, each to its slot.
static void
s_take_client (aigw_edge_io_t *self)
{
    aigw_client_event_t *event;
    while ((event = aigw_client_recv (self->client))) {
        if (event->type == AIGW_BP_CLIENT_STATUS) {
            pthread_mutex_lock (&self->lock);
            snprintf (self->status, sizeof self->status, "%s", event->text ? event->text : "");
            self->status_at = aigw_now_ms ();
            pthread_mutex_unlock (&self->lock);
            aigw_client_event_destroy (&event);
        }
        else if (event->type == AIGW_BP_CLIENT_METRICS)
            s_answer_first (self->metrics_waiting, &event);
        else if (event->type == AIGW_BP_CLIENT_REPORTS)
            s_answer_first (self->reports_waiting, &event);
        else if (event->request_id) {
            aigw_slot_t *slot = (aigw_slot_t *) zhashx_lookup (self->slots, event->request_id);
            if (slot && slot->remote)
                s_push (slot, &event);
            aigw_client_event_destroy (&event);
        }
        else
            aigw_client_event_destroy (&event);
    }
}

//  The I/O thread's state, made in the thread; NULL (with self->err) on
//  failure.
static int
s_io_start (aigw_edge_io_t *self)
{
    self->client
        = aigw_client_new (self->endpoint, self->config->heartbeat_ms, self->config->liveness);
    if (!self->client) {
        snprintf (self->err, sizeof self->err, "cannot connect to the broker at %s",
                  self->endpoint);
        return -1;
    }
    self->host = aigw_host_new (self->config, self->endpoint, self->stages, self->owns_shards,
                                self->err, sizeof self->err);
    if (!self->host)
        return -1;
    //  With no stage of its own, the host learns where the stages are from
    //  the edge's broker connection.
    if (!*self->stages)
        aigw_client_want_directory (self->client);
    aigw_front_t front = {self, s_front_deliver, s_front_forward, s_front_left};
    aigw_host_set_front (self->host, &front);
    self->guards = aigw_guardset_new (self->config, self->err, sizeof self->err);
    if (!self->guards)
        return -1;
    self->slots = zhashx_new ();
    self->metrics_waiting = zlistx_new ();
    self->reports_waiting = zlistx_new ();
    self->usage_retry = zlistx_new ();
    return 0;
}

//  Undo s_io_start, failing whatever still waits.
static void
s_io_stop (aigw_edge_io_t *self)
{
    if (self->slots)
        s_fail_all (self, true, "The gateway is stopping.");
    //  The stages' requests answer their slots as they go.
    aigw_host_destroy (&self->host);
    zhashx_destroy (&self->slots);
    zlistx_destroy (&self->metrics_waiting);
    zlistx_destroy (&self->reports_waiting);
    if (self->usage_retry) {
        size_t lost = self->usage_retry_records + self->usage_batch_records;
        aigw_envelope_destroy (&self->usage_batch);
        if (lost)
            aigw_warn ("usage: %zu records not sent at stop", lost);
        aigw_envelope_t *record;
        while ((record = (aigw_envelope_t *) zlistx_detach (self->usage_retry, NULL)))
            aigw_envelope_destroy (&record);
        zlistx_destroy (&self->usage_retry);
    }
    aigw_client_destroy (&self->client);
    aigw_guardset_destroy (&self->guards);
}

//  The I/O thread.
static void
s_io_actor (zsock_t *pipe, void *args)
{
    pthread_setname_np (pthread_self (), "aigw-edge-io");
    aigw_edge_io_t *self = (aigw_edge_io_t *) args;
    if (s_io_start (self) != 0) {
        s_io_stop (self);
        self->failed = true;
        zsock_signal (pipe, 1);
        return;
    }
    zsock_signal (pipe, 0);
    int64_t next_status = 0;
    bool was_connected = false;
    zmq_pollitem_t items[4 + AIGW_HOST_POLLITEMS_MAX + 1];
    //  Descriptors of the loop's cold sockets, which never change.
    int pipe_fd = zsock_fd (pipe);
    int client_fd = zsock_fd (aigw_client_sock (self->client));
    while (true) {
        int timeout = aigw_client_tick (self->client);
        int64_t now = aigw_now_ms ();
        if (now >= next_status) {
            aigw_client_status (self->client);
            next_status = now + self->config->heartbeat_ms;
        }
        bool connected = aigw_client_connected (self->client);
        if (connected != was_connected) {
            pthread_mutex_lock (&self->lock);
            self->connected = connected;
            pthread_mutex_unlock (&self->lock);
            if (was_connected) {
                aigw_warn ("broker unreachable; failing requests waiting on it");
                s_fail_all (self, false, "The pipeline broker is unreachable.");
            }
            else
                aigw_info ("connected to the broker at %s", self->endpoint);
            was_connected = connected;
        }
        timeout = aigw_host_timeout (self->host, timeout);
        int count = aigw_host_pollitems (self->host, items + 4, AIGW_HOST_POLLITEMS_MAX);
        //  The pipe and the broker client are cold sockets too
        //  (AIGW_HOST_COLD_MS): what the data path needs arrives on the
        //  eventfd and the host's items.
        items[0] = aigw_host_cold_item (self->host, pipe, pipe_fd);
        items[1] = aigw_host_cold_item (self->host, aigw_client_sock (self->client), client_fd);
        items[2] = (zmq_pollitem_t){NULL, self->evfd, ZMQ_POLLIN, 0};
        items[3] = (zmq_pollitem_t){NULL, self->hupfd, ZMQ_POLLIN, 0};
        int guard_count = aigw_guardset_pollitems (self->guards, items + 4 + count, 1);
        int guard_due = aigw_guardset_timeout (self->guards);
        if (guard_due >= 0 && (timeout < 0 || guard_due < timeout))
            timeout = guard_due;
        //  Say we sleep, then look once more: a handler that queued before
        //  this sees no sleeper and skips the wake-up, so we must not sleep.
        atomic_store (&self->sleeping, true);
        if (atomic_load (&self->queue) || atomic_load (&self->cancels))
            timeout = 0;
        if (atomic_load (&self->usage) && timeout > AIGW_EDGE_USAGE_LINGER_MS)
            timeout = AIGW_EDGE_USAGE_LINGER_MS;
        if (zlistx_size (self->usage_retry)) {
            int64_t due = self->usage_retry_at - aigw_now_ms ();
            if (due < timeout)
                timeout = due < 0 ? 0 : (int) due;
        }
        if (self->usage_batch) {
            int64_t due = self->usage_batch_at + AIGW_EDGE_USAGE_BATCH_MS - aigw_now_ms ();
            if (timeout < 0 || due < timeout)
                timeout = due < 0 ? 0 : (int) due;
        }
        int rc = zmq_poll (items, 4 + count + guard_count, timeout);
        atomic_store (&self->sleeping, false);
        if (rc == -1)
            break;
        if ((items[0].revents & ZMQ_POLLIN) && aigw_stage_pipe_term (pipe))
            break;
        if (items[2].revents & ZMQ_POLLIN) {
            uint64_t value;
            if (read (self->evfd, &value, sizeof value) < 0) {
                //  Spurious: the queue tells the truth.
            }
        }
        //  Settles before new requests: a client's next request must not
        //  meet the reservation its last one already gave back.
        s_take_usage (self);
        s_take_queue (self, connected);
        s_take_cancels (self);
        if (items[3].revents & ZMQ_POLLIN)
            s_take_hangups (self);
        if (items[1].revents & ZMQ_POLLIN) {
            s_take_client (self);
            const char *version;
            const char *text = aigw_client_directory (self->client, &version);
            if (text && !*self->stages) {
                aigw_host_set_directory (self->host, version, text);
                pthread_mutex_lock (&self->lock);
                if (!self->directory || !streq (self->directory, text)) {
                    free (self->directory);
                    self->directory = strdup (text);
                }
                pthread_mutex_unlock (&self->lock);
            }
        }
        aigw_host_process (self->host, items + 4, count);
        aigw_guardset_process (self->guards, items + 4 + count, guard_count);
    }
    s_io_stop (self);
}

aigw_edge_io_t *
aigw_edge_io_new (const aigw_config_t *config, const char *endpoint, const char *stages,
                  bool owns_shards, char *err, size_t err_size)
{
    aigw_edge_io_t *self = calloc (1, sizeof *self);
    assert (self);
    self->config = config;
    self->endpoint = strdup (endpoint);
    self->stages = strdup (stages ? stages : "");
    self->owns_shards = owns_shards;
    self->evfd = eventfd (0, EFD_NONBLOCK | EFD_CLOEXEC);
    self->hupfd = epoll_create1 (EPOLL_CLOEXEC);
    pthread_mutex_init (&self->lock, NULL);
    atomic_init (&self->queue, NULL);
    atomic_init (&self->cancels, NULL);
    atomic_init (&self->usage, NULL);
    atomic_init (&self->sleeping, false);
    atomic_init (&self->next_id, 1);
    if (self->evfd >= 0 && self->hupfd >= 0)
        self->actor = zactor_new (s_io_actor, self);
    if (!self->actor || self->failed) {
        snprintf (err, err_size, "%s",
                  *self->err ? self->err : "the edge's I/O thread did not start");
        aigw_edge_io_destroy (&self);
    }
    return self;
}

void
aigw_edge_io_destroy (aigw_edge_io_t **self_p)
{
    aigw_edge_io_t *self = *self_p;
    if (!self)
        return;
    zactor_destroy (&self->actor);
    //  Hand-offs the thread never took: nobody waits on them but their
    //  handlers, which CivetWeb has stopped by now.
    aigw_slot_t *slot = atomic_exchange (&self->queue, NULL);
    while (slot) {
        aigw_slot_t *next = slot->next;
        s_slot_unref (&slot);
        slot = next;
    }
    s_cancel_t *cancel = atomic_exchange (&self->cancels, NULL);
    while (cancel) {
        s_cancel_t *next = cancel->next;
        s_slot_unref (&cancel->slot);
        free (cancel);
        cancel = next;
    }
    s_usage_t *usage = atomic_exchange (&self->usage, NULL);
    while (usage) {
        s_usage_t *next = usage->next;
        aigw_envelope_destroy (&usage->record);
        free (usage);
        usage = next;
    }
    pthread_mutex_destroy (&self->lock);
    free (self->directory);
    if (self->evfd >= 0)
        close (self->evfd);
    if (self->hupfd >= 0)
        close (self->hupfd);
    free (self->endpoint);
    free (self->stages);
    free (self);
    *self_p = NULL;
}

//  Wake the I/O thread if it sleeps. Only a sleeping thread needs the
//  eventfd, and only one of the handlers that queued while it slept writes.
static void
s_wake (aigw_edge_io_t *self)
{
    if (atomic_exchange (&self->sleeping, false)) {
        uint64_t one = 1;
        if (write (self->evfd, &one, sizeof one) < 0) {
            //  The counter is saturated: the thread is awake anyway.
        }
    }
}

//  Queue a new slot asking ASK and return it, with one reference for the
//  handler and one for the I/O thread.
static aigw_slot_t *
s_enqueue (aigw_edge_io_t *self, s_ask_t ask, aigw_envelope_t **env_p, const char *service,
           int64_t deadline_ms, int fd)
{
    aigw_slot_t *slot = calloc (1, sizeof *slot);
    assert (slot);
    slot->io = self;
    atomic_init (&slot->refs, 2);
    atomic_init (&slot->abandoned, false);
    slot->num = atomic_fetch_add (&self->next_id, 1);
    snprintf (slot->id, sizeof slot->id, "e%llx", (unsigned long long) slot->num);
    slot->fd = -1;
    if (fd >= 0) {
        //  One report of the hang-up is enough; the slot removes the watch
        //  before its handler returns the connection to CivetWeb.
        struct epoll_event watch = {.events = EPOLLRDHUP | EPOLLONESHOT, .data.u64 = slot->num};
        if (epoll_ctl (self->hupfd, EPOLL_CTL_ADD, fd, &watch) == 0)
            slot->fd = fd;
    }
    pthread_mutex_init (&slot->mutex, NULL);
    pthread_condattr_t attr;
    pthread_condattr_init (&attr);
    pthread_condattr_setclock (&attr, CLOCK_REALTIME);
    pthread_cond_init (&slot->cond, &attr);
    pthread_condattr_destroy (&attr);
    slot->ask = ask;
    if (env_p) {
        slot->env = *env_p;
        *env_p = NULL;
    }
    snprintf (slot->service, sizeof slot->service, "%s", service ? service : "");
    slot->deadline_ms = deadline_ms;
    aigw_slot_t *head = atomic_load (&self->queue);
    do
        slot->next = head;
    while (!atomic_compare_exchange_weak (&self->queue, &head, slot));
    s_wake (self);
    return slot;
}

aigw_slot_t *
aigw_edge_io_request (aigw_edge_io_t *self, aigw_envelope_t **env_p, int client_fd)
{
    return s_enqueue (self, S_ASK_REQUEST, env_p, NULL, 0, client_fd);
}

aigw_slot_t *
aigw_edge_io_metrics (aigw_edge_io_t *self)
{
    return s_enqueue (self, S_ASK_METRICS, NULL, NULL, 0, -1);
}

aigw_slot_t *
aigw_edge_io_reports (aigw_edge_io_t *self, const char *service, int64_t deadline_ms)
{
    return s_enqueue (self, S_ASK_REPORTS, NULL, service, deadline_ms, -1);
}

aigw_client_event_t *
aigw_slot_wait (aigw_slot_t *slot, int64_t deadline_ms)
{
    struct timespec until = {deadline_ms / 1000, (deadline_ms % 1000) * 1000000};
    pthread_mutex_lock (&slot->mutex);
    while (!slot->head) {
        if (pthread_cond_timedwait (&slot->cond, &slot->mutex, &until) == ETIMEDOUT && !slot->head)
            break;
    }
    aigw_client_event_t *event = NULL;
    s_item_t *item = slot->head;
    if (item) {
        slot->head = item->next;
        if (!slot->head)
            slot->tail = NULL;
        event = item->event;
        free (item);
    }
    pthread_mutex_unlock (&slot->mutex);
    if (event && s_final (event))
        slot->handler_done = true;
    return event;
}

void
aigw_slot_destroy (aigw_slot_t **self_p)
{
    aigw_slot_t *slot = *self_p;
    if (!slot)
        return;
    //  The connection goes back to CivetWeb (and its descriptor may be
    //  reused) only once nobody watches it.
    if (slot->fd >= 0)
        epoll_ctl (slot->io->hupfd, EPOLL_CTL_DEL, slot->fd, NULL);
    //  The I/O thread may still hold it: it drops what comes from now on
    //  and lets go at the final event (or its sweep).
    atomic_store (&slot->abandoned, true);
    if (!slot->handler_done && slot->ask == S_ASK_REQUEST) {
        //  Left before the end: the I/O thread cancels the request.
        s_cancel_t *cancel = malloc (sizeof *cancel);
        assert (cancel);
        atomic_fetch_add (&slot->refs, 1);
        cancel->slot = slot;
        s_cancel_t *head = atomic_load (&slot->io->cancels);
        do
            cancel->next = head;
        while (!atomic_compare_exchange_weak (&slot->io->cancels, &head, cancel));
        s_wake (slot->io);
    }
    s_slot_unref (self_p);
}

void
aigw_edge_io_settle (aigw_edge_io_t *self, const aigw_envelope_t *record)
{
    aigw_envelope_t *settle = s_settle_new (record);
    aigw_edge_io_usage (self, &settle, false);
}

void
aigw_edge_io_usage (aigw_edge_io_t *self, aigw_envelope_t **record_p, bool keep)
{
    s_usage_t *usage = malloc (sizeof *usage);
    assert (usage);
    usage->keep = keep;
    usage->record = *record_p;
    *record_p = NULL;
    s_usage_t *head = atomic_load (&self->usage);
    do
        usage->next = head;
    while (!atomic_compare_exchange_weak (&self->usage, &head, usage));
}

bool
aigw_edge_io_ready (aigw_edge_io_t *self, char *buf, size_t size)
{
    char status[AIGW_STATUS_MAX];
    pthread_mutex_lock (&self->lock);
    bool connected = self->connected;
    bool fresh = aigw_now_ms () - self->status_at
                 <= (int64_t) self->config->heartbeat_ms * AIGW_STATUS_STALE_BEATS;
    memcpy (status, self->status, sizeof status);
    //  The broker down does not stop traffic among known peers (AIGW-BP/2
    //  section 7): then the last directory says whether every stage is
    //  reachable.
    char *directory = !(connected && fresh) && self->directory ? strdup (self->directory) : NULL;
    pthread_mutex_unlock (&self->lock);
    bool ready = (connected && fresh) || directory;
    size_t used = snprintf (buf, size, "{\"broker\":%s,\"stages\":{",
                            connected && fresh ? "true" : "false");
    bool database = self->config->database_url && *self->config->database_url;
    int stages = AIGW_REQUIRED_STAGES + (database ? 1 : 0);
    for (int i = 0; i < stages; i++) {
        int live = 0;
        //  Lines: "service live in-flight queued".
        for (char *line = status; line && *line;) {
            char name[64];
            int workers;
            if (sscanf (line, "%63s %d", name, &workers) == 2 && streq (name, s_required[i]))
                live = workers;
            line = strchr (line, '\n');
            if (line)
                line++;
        }
        if (directory)
            live = aigw_peer_directory_live (directory, s_required[i]);
        else if (!fresh)
            live = 0;
        if (live == 0)
            ready = false;
        if (used < size)
            used += snprintf (buf + used, size - used, "%s\"%s\":%d", i ? "," : "", s_required[i],
                              live);
    }
    if (used < size)
        snprintf (buf + used, size - used, "}}");
    free (directory);
    return ready;
}

//  --------------------------------------------------------------------------
//  Selftest

#define S_TEST_ENDPOINT "inproc://aigw-edge-io-test"
#define S_TEST_NOBODY   "inproc://aigw-edge-io-test-nobody"
#define S_TEST_WAIT_MS  3000  //  longest wait for anything expected
#define S_TEST_ASK_MS   250   //  deadline of one question
#define S_TEST_POLL_MS  5     //  pause between tries
#define S_TEST_SLOTS    3     //  questions asked at once

//  Ask REPORTS for SERVICE and wait for the event; the caller owns it.
static aigw_client_event_t *
s_test_ask (aigw_edge_io_t *io, const char *service, int64_t deadline_ms)
{
    aigw_slot_t *slot = aigw_edge_io_reports (io, service, deadline_ms);
    assert (slot);
    aigw_client_event_t *event = aigw_slot_wait (slot, deadline_ms);
    aigw_slot_destroy (&slot);
    return event;
}

void
aigw_edge_io_test (bool verbose)
{
    //  A settle carries what limits.md 4 names, routed to ratelimit alone.
    aigw_envelope_t *record = aigw_envelope_new ();
    aigw_envelope_set (&record->id, "req_9");
    aigw_envelope_set (&record->tenant_id, "t-1");
    aigw_envelope_set (&record->tenant, "team");
    aigw_envelope_set (&record->key_id, "k-1");
    aigw_envelope_set (&record->model, "gpt-4o");
    aigw_envelope_set (&record->reservation, "3:17");
    aigw_envelope_set (&record->route[0], "auth");
    aigw_envelope_set (&record->body, "{}");
    record->route_len = 1;
    record->tokens_in = 120;
    record->tokens_out = 30;
    record->tokens_cached = 20;
    record->cost_nusd = 4500;
    record->status = 499;
    aigw_envelope_t *settle = s_settle_new (record);
    assert (settle->kind == AIGW_KIND_SETTLE);
    assert (streq (settle->id, "req_9") && streq (settle->tenant_id, "t-1"));
    assert (streq (settle->key_id, "k-1") && streq (settle->model, "gpt-4o"));
    assert (streq (settle->reservation, "3:17"));
    assert (settle->tokens_in == 120 && settle->tokens_out == 30 && settle->tokens_cached == 20);
    assert (settle->cost_nusd == 4500 && settle->status == 499);
    assert (settle->route_len == 1 && streq (settle->route[0], "ratelimit") && settle->hop == 0);
    assert (!settle->tenant && !settle->body && settle->deadline_ms > aigw_now_ms ());
    aigw_envelope_destroy (&settle);
    aigw_envelope_destroy (&record);

    aigw_log_level_t level = aigw_log_level ();
    if (!verbose)
        aigw_log_set_level (AIGW_LOG_ERROR);
    char err[256];
    aigw_config_t *config = aigw_config_new (NULL, err, sizeof err);
    assert (config);
    aigw_broker_args_t args = {S_TEST_ENDPOINT, config->heartbeat_ms, config->liveness, 0};
    zactor_t *broker = zactor_new (aigw_broker_actor, &args);
    assert (broker);
    char *endpoint = aigw_broker_endpoint (broker);
    assert (endpoint);
    aigw_edge_io_t *io = aigw_edge_io_new (config, endpoint, "", false, err, sizeof err);
    assert (io);
    aigw_worker_t *worker
        = aigw_worker_new (endpoint, "provider", 1, false, config->heartbeat_ms, config->liveness);
    assert (worker);
    const char *report = "{\"deployments\":{\"gpt\":{\"circuit\":\"open\"}}}";
    assert (aigw_worker_report (worker, report, strlen (report)) == 0);

    //  The report arrives once the edge is connected and the broker has it.
    int64_t until = aigw_now_ms () + S_TEST_WAIT_MS;
    while (true) {
        aigw_client_event_t *event = s_test_ask (io, "provider", aigw_now_ms () + S_TEST_ASK_MS);
        bool found = event && event->type == AIGW_BP_CLIENT_REPORTS
                     && strstr (event->text, "\"circuit\":\"open\"")
                     && strstr (event->text, "\"service\":\"provider\"");
        aigw_client_event_destroy (&event);
        if (found)
            break;
        assert (aigw_now_ms () < until);
        aigw_worker_tick (worker);
        zclock_sleep (S_TEST_POLL_MS);
    }

    //  Questions asked at once, with METRICS in between, each get their own
    //  answer.
    int64_t deadline = aigw_now_ms () + S_TEST_WAIT_MS;
    const char *services[S_TEST_SLOTS] = {"nobody", "provider", "nobody"};
    aigw_slot_t *slots[S_TEST_SLOTS];
    aigw_slot_t *metrics = aigw_edge_io_metrics (io);
    for (int i = 0; i < S_TEST_SLOTS; i++)
        slots[i] = aigw_edge_io_reports (io, services[i], deadline);
    for (int i = 0; i < S_TEST_SLOTS; i++) {
        aigw_client_event_t *event = aigw_slot_wait (slots[i], deadline);
        assert (event && event->type == AIGW_BP_CLIENT_REPORTS);
        if (streq (services[i], "nobody"))
            assert (streq (event->text, "[]"));
        else
            assert (strstr (event->text, "\"circuit\":\"open\""));
        aigw_client_event_destroy (&event);
        aigw_slot_destroy (&slots[i]);
    }
    aigw_client_event_t *event = aigw_slot_wait (metrics, deadline);
    assert (event && event->type == AIGW_BP_CLIENT_METRICS);
    aigw_client_event_destroy (&event);
    aigw_slot_destroy (&metrics);

    //  Refused before asking: a bad name (400), a deadline already past (504).
    event = s_test_ask (io, "no spaces", deadline);
    assert (event && event->type == AIGW_BP_CLIENT_ERROR && event->status == 400);
    aigw_client_event_destroy (&event);
    char long_name[AIGW_BP_NAME_MAX + 8];
    memset (long_name, 'a', sizeof long_name - 1);
    long_name[sizeof long_name - 1] = 0;
    event = s_test_ask (io, long_name, deadline);
    assert (event && event->type == AIGW_BP_CLIENT_ERROR && event->status == 400);
    aigw_client_event_destroy (&event);
    aigw_slot_t *slot = aigw_edge_io_reports (io, "provider", aigw_now_ms () - 1);
    event = aigw_slot_wait (slot, deadline);
    assert (event && event->type == AIGW_BP_CLIENT_ERROR && event->status == 504);
    aigw_client_event_destroy (&event);
    aigw_slot_destroy (&slot);

    //  The worker leaves: its report goes with it.
    aigw_worker_destroy (&worker);
    until = aigw_now_ms () + S_TEST_WAIT_MS;
    while (true) {
        event = s_test_ask (io, "provider", aigw_now_ms () + S_TEST_ASK_MS);
        bool empty = event && event->type == AIGW_BP_CLIENT_REPORTS && streq (event->text, "[]");
        aigw_client_event_destroy (&event);
        if (empty)
            break;
        assert (aigw_now_ms () < until);
        zclock_sleep (S_TEST_POLL_MS);
    }
    aigw_edge_io_destroy (&io);

    //  No broker: the handler is answered, or gives up, by its deadline.
    io = aigw_edge_io_new (config, S_TEST_NOBODY, "", false, err, sizeof err);
    assert (io);
    int64_t start = aigw_now_ms ();
    event = s_test_ask (io, "provider", start + S_TEST_ASK_MS);
    assert (!event || (event->type == AIGW_BP_CLIENT_ERROR && event->status == 503));
    assert (aigw_now_ms () - start < S_TEST_WAIT_MS);
    aigw_client_event_destroy (&event);
    aigw_edge_io_destroy (&io);

    zstr_free (&endpoint);
    zactor_destroy (&broker);
    aigw_config_destroy (&config);
    aigw_log_set_level (level);
}
