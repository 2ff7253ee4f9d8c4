/*  aigw_edge_io: handler threads <-> one I/O actor <-> the broker. */
#include "aigw_edge_io.h"
#include "aigw_log.h"
#include "aigw_stage.h"

#include <pthread.h>
#include <stdatomic.h>
#include <sys/eventfd.h>

//  Stages that must have a live worker for /readyz; the admin actor only
//  counts when a database is configured.
static const char *s_required[] = {"auth", "ratelimit", "guardrail", "cache", "provider",
                                   "admin"};
#define AIGW_REQUIRED_STAGES 5
//  A STATUS answer older than this many heartbeats no longer counts.
#define AIGW_STATUS_STALE_BEATS 4
//  Longest STATUS text kept.
#define AIGW_STATUS_MAX 4096

//  One event queued on a slot.
typedef struct _s_item_t {
    aigw_client_event_t *event; //  the event
    struct _s_item_t *next;     //  next in the slot's queue
} s_item_t;

struct _aigw_slot_t {
    aigw_edge_io_t *io;         //  owning I/O (for unregistering)
    char id[24];                //  broker request id
    pthread_mutex_t mutex;      //  guards the queue
    pthread_cond_t cond;        //  signalled on every new event
    s_item_t *head;             //  oldest event
    s_item_t *tail;             //  newest event
};

//  One message waiting to go to the broker.
typedef struct _s_out_t {
    int type;                   //  AIGW_CLIENT_REPLY (a request) or _METRICS
    char id[24];                //  broker request id
    char service[32];           //  first stage
    int64_t deadline_ms;        //  absolute deadline
    char *data;                 //  encoded envelope
    size_t size;                //  bytes in data
    struct _s_out_t *next;      //  next in the queue
} s_out_t;

struct _aigw_edge_io_t {
    const aigw_config_t *config; //  settings (shared, read-only)
    char *endpoint;             //  broker endpoint
    zactor_t *actor;            //  the I/O thread
    int evfd;                   //  wakes the I/O thread
    pthread_mutex_t lock;       //  guards everything below
    s_out_t *out_head;          //  queue to the broker, oldest first
    s_out_t *out_tail;          //  newest in the queue
    zhashx_t *slots;            //  broker request id -> slot
    char status[AIGW_STATUS_MAX]; //  last STATUS text
    int64_t status_at;          //  when it arrived, Unix ms
    bool connected;             //  broker answering
    atomic_ullong next_id;      //  request id counter
};

//  Append EVENT to SLOT's queue and wake its handler.
static void
s_push (aigw_slot_t *slot, aigw_client_event_t **event_p)
{
    s_item_t *item = malloc (sizeof *item);
    item->event = *event_p;
    item->next = NULL;
    *event_p = NULL;
    pthread_mutex_lock (&slot->mutex);
    if (slot->tail)
        slot->tail->next = item;
    else
        slot->head = item;
    slot->tail = item;
    pthread_cond_signal (&slot->cond);
    pthread_mutex_unlock (&slot->mutex);
}

//  Deliver EVENT to the slot registered under ID; drops it if none.
//  Caller holds io->lock.
static void
s_deliver (aigw_edge_io_t *self, const char *id, aigw_client_event_t **event_p)
{
    aigw_slot_t *slot = (aigw_slot_t *) zhashx_lookup (self->slots, id);
    if (slot)
        s_push (slot, event_p);
    else
        aigw_client_event_destroy (event_p);
}

//  A broker-made error for request ID, as the broker itself would send it.
static aigw_client_event_t *
s_error_event (const char *id, int status, const char *text)
{
    aigw_client_event_t *event = calloc (1, sizeof *event);
    event->type = AIGW_CLIENT_ERROR;
    event->request_id = strdup (id);
    event->status = status;
    event->text = strdup (text);
    return event;
}

//  Fail every waiting request: the broker went away.
static void
s_fail_all (aigw_edge_io_t *self, const char *text)
{
    pthread_mutex_lock (&self->lock);
    for (aigw_slot_t *slot = (aigw_slot_t *) zhashx_first (self->slots); slot;
         slot = (aigw_slot_t *) zhashx_next (self->slots)) {
        aigw_client_event_t *event = s_error_event (slot->id, 503, text);
        s_push (slot, &event);
    }
    pthread_mutex_unlock (&self->lock);
}

//  The I/O actor: moves queued requests to the broker and replies back.
static void
s_io_actor (zsock_t *pipe, void *args)
{
    pthread_setname_np (pthread_self (), "aigw-edge-io");
    aigw_edge_io_t *self = (aigw_edge_io_t *) args;
    aigw_client_t *client = aigw_client_new (self->endpoint, self->config->heartbeat_ms,
                                             self->config->liveness);
    if (!client) {
        aigw_error ("edge cannot connect to the broker");
        zsock_signal (pipe, 1);
        return;
    }
    zlistx_t *metrics_waiting = zlistx_new ();  //  slot ids, oldest first
    zlistx_set_destructor (metrics_waiting, (zlistx_destructor_fn *) zstr_free);
    zsock_signal (pipe, 0);
    int64_t next_status = 0;
    bool was_connected = false;
    while (true) {
        int timeout = aigw_client_tick (client);
        int64_t now = aigw_now_ms ();
        if (now >= next_status) {
            aigw_client_status (client);
            next_status = now + self->config->heartbeat_ms;
        }
        bool connected = aigw_client_connected (client);
        if (connected != was_connected) {
            pthread_mutex_lock (&self->lock);
            self->connected = connected;
            pthread_mutex_unlock (&self->lock);
            if (was_connected) {
                aigw_warn ("broker unreachable; failing requests in flight");
                s_fail_all (self, "The pipeline broker is unreachable.");
            }
            else
                aigw_info ("connected to the broker at %s", self->endpoint);
            was_connected = connected;
        }
        zmq_pollitem_t items[] = {{zsock_resolve (pipe), 0, ZMQ_POLLIN, 0},
                                  {zsock_resolve (aigw_client_sock (client)), 0,
                                   ZMQ_POLLIN, 0},
                                  {NULL, self->evfd, ZMQ_POLLIN, 0}};
        if (zmq_poll (items, 3, timeout) == -1)
            break;
        if ((items[0].revents & ZMQ_POLLIN) && aigw_stage_pipe_term (pipe))
            break;
        if (items[2].revents & ZMQ_POLLIN) {
            uint64_t count;
            if (read (self->evfd, &count, sizeof count) < 0) {
                //  Spurious wake-up; the queue tells the truth.
            }
            pthread_mutex_lock (&self->lock);
            s_out_t *out = self->out_head;
            self->out_head = self->out_tail = NULL;
            pthread_mutex_unlock (&self->lock);
            while (out) {
                s_out_t *next = out->next;
                if (!connected) {
                    aigw_client_event_t *event
                        = s_error_event (out->id, 503, "The pipeline broker is unreachable.");
                    pthread_mutex_lock (&self->lock);
                    s_deliver (self, out->id, &event);
                    pthread_mutex_unlock (&self->lock);
                    free (out->data);
                }
                else if (out->type == AIGW_CLIENT_METRICS) {
                    aigw_client_metrics (client);
                    zlistx_add_end (metrics_waiting, strdup (out->id));
                }
                else
                    aigw_client_send (client, out->service, "", out->id,
                                      out->deadline_ms, &out->data, out->size);
                free (out);
                out = next;
            }
        }
        if (items[1].revents & ZMQ_POLLIN) {
            aigw_client_event_t *event;
            while ((event = aigw_client_recv (client))) {
                if (event->type == AIGW_CLIENT_STATUS) {
                    pthread_mutex_lock (&self->lock);
                    snprintf (self->status, sizeof self->status, "%s",
                              event->text ? event->text : "");
                    self->status_at = aigw_now_ms ();
                    pthread_mutex_unlock (&self->lock);
                    aigw_client_event_destroy (&event);
                }
                else if (event->type == AIGW_CLIENT_METRICS) {
                    char *id = (char *) zlistx_first (metrics_waiting);
                    pthread_mutex_lock (&self->lock);
                    if (id)
                        s_deliver (self, id, &event);
                    pthread_mutex_unlock (&self->lock);
                    aigw_client_event_destroy (&event);
                    if (id)
                        zlistx_delete (metrics_waiting, zlistx_cursor (metrics_waiting));
                }
                else if (event->request_id) {
                    pthread_mutex_lock (&self->lock);
                    s_deliver (self, event->request_id, &event);
                    pthread_mutex_unlock (&self->lock);
                }
                else
                    aigw_client_event_destroy (&event);
            }
        }
    }
    zlistx_destroy (&metrics_waiting);
    aigw_client_destroy (&client);
}

aigw_edge_io_t *
aigw_edge_io_new (const aigw_config_t *config, const char *endpoint)
{
    aigw_edge_io_t *self = calloc (1, sizeof *self);
    if (!self)
        return NULL;
    self->config = config;
    self->endpoint = strdup (endpoint);
    self->evfd = eventfd (0, EFD_NONBLOCK | EFD_CLOEXEC);
    pthread_mutex_init (&self->lock, NULL);
    self->slots = zhashx_new ();
    atomic_init (&self->next_id, 1);
    self->actor = zactor_new (s_io_actor, self);
    if (self->evfd < 0 || !self->actor)
        aigw_edge_io_destroy (&self);
    return self;
}

void
aigw_edge_io_destroy (aigw_edge_io_t **self_p)
{
    aigw_edge_io_t *self = *self_p;
    if (!self)
        return;
    zactor_destroy (&self->actor);
    while (self->out_head) {
        s_out_t *next = self->out_head->next;
        free (self->out_head->data);
        free (self->out_head);
        self->out_head = next;
    }
    zhashx_destroy (&self->slots);
    pthread_mutex_destroy (&self->lock);
    if (self->evfd >= 0)
        close (self->evfd);
    free (self->endpoint);
    free (self);
    *self_p = NULL;
}

//  Register a new slot and queue OUT for the I/O thread.
static aigw_slot_t *
s_enqueue (aigw_edge_io_t *self, s_out_t *out)
{
    aigw_slot_t *slot = calloc (1, sizeof *slot);
    slot->io = self;
    snprintf (out->id, sizeof out->id, "e%llx",
              (unsigned long long) atomic_fetch_add (&self->next_id, 1));
    memcpy (slot->id, out->id, sizeof slot->id);
    pthread_mutex_init (&slot->mutex, NULL);
    pthread_condattr_t attr;
    pthread_condattr_init (&attr);
    pthread_condattr_setclock (&attr, CLOCK_REALTIME);
    pthread_cond_init (&slot->cond, &attr);
    pthread_condattr_destroy (&attr);
    out->next = NULL;
    pthread_mutex_lock (&self->lock);
    zhashx_insert (self->slots, slot->id, slot);
    bool was_empty = self->out_head == NULL;
    if (self->out_tail)
        self->out_tail->next = out;
    else
        self->out_head = out;
    self->out_tail = out;
    pthread_mutex_unlock (&self->lock);
    if (was_empty) {
        //  One wake-up covers everything queued before the I/O thread runs.
        uint64_t one = 1;
        if (write (self->evfd, &one, sizeof one) < 0) {
            //  The counter is saturated: the I/O thread is awake anyway.
        }
    }
    return slot;
}

aigw_slot_t *
aigw_edge_io_request (aigw_edge_io_t *self, const char *service, int64_t deadline_ms,
                      char **data, size_t size)
{
    s_out_t *out = calloc (1, sizeof *out);
    out->type = AIGW_CLIENT_REPLY;
    snprintf (out->service, sizeof out->service, "%s", service);
    out->deadline_ms = deadline_ms;
    out->data = *data;
    out->size = size;
    *data = NULL;
    return s_enqueue (self, out);
}

aigw_slot_t *
aigw_edge_io_metrics (aigw_edge_io_t *self)
{
    s_out_t *out = calloc (1, sizeof *out);
    out->type = AIGW_CLIENT_METRICS;
    return s_enqueue (self, out);
}

aigw_client_event_t *
aigw_slot_wait (aigw_slot_t *slot, int64_t deadline_ms)
{
    struct timespec until = {deadline_ms / 1000, (deadline_ms % 1000) * 1000000};
    pthread_mutex_lock (&slot->mutex);
    while (!slot->head) {
        if (pthread_cond_timedwait (&slot->cond, &slot->mutex, &until) == ETIMEDOUT
            && !slot->head)
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
    return event;
}

void
aigw_slot_destroy (aigw_slot_t **self_p)
{
    aigw_slot_t *slot = *self_p;
    if (!slot)
        return;
    //  Once out of the table, the I/O thread cannot reach it.
    pthread_mutex_lock (&slot->io->lock);
    zhashx_delete (slot->io->slots, slot->id);
    pthread_mutex_unlock (&slot->io->lock);
    while (slot->head) {
        s_item_t *next = slot->head->next;
        aigw_client_event_destroy (&slot->head->event);
        free (slot->head);
        slot->head = next;
    }
    pthread_cond_destroy (&slot->cond);
    pthread_mutex_destroy (&slot->mutex);
    free (slot);
    *self_p = NULL;
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
    pthread_mutex_unlock (&self->lock);
    bool ready = connected && fresh;
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
            if (sscanf (line, "%63s %d", name, &workers) == 2
                && streq (name, s_required[i]))
                live = workers;
            line = strchr (line, '\n');
            if (line)
                line++;
        }
        if (!fresh)
            live = 0;
        if (live == 0)
            ready = false;
        if (used < size)
            used += snprintf (buf + used, size - used, "%s\"%s\":%d", i ? "," : "",
                              s_required[i], live);
    }
    if (used < size)
        snprintf (buf + used, size - used, "}}");
    return ready;
}
