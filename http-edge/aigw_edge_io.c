/*  aigw_edge_io: handler threads <-> one I/O actor <-> the broker. */
#include "aigw_edge_io.h"
#include "aigw_broker.h"
#include "aigw_log.h"
#include "aigw_stage.h"
#include "aigw_worker.h"

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
    int type;                   //  AIGW_CLIENT_REPLY (a request), _METRICS or _REPORTS
    char id[24];                //  broker request id
    //  First stage, or the service asked about; one spare byte, so that a
    //  longer name cut to fit is still too long, hence invalid.
    char service[AIGW_BROKER_NAME_MAX + 2];
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

//  Deliver EVENT, an answer to the oldest question on WAITING (slot ids),
//  to that question's slot and take the question off; drop it if none.
static void
s_deliver_first (aigw_edge_io_t *self, zlistx_t *waiting, aigw_client_event_t **event_p)
{
    char *id = (char *) zlistx_first (waiting);
    pthread_mutex_lock (&self->lock);
    if (id)
        s_deliver (self, id, event_p);
    pthread_mutex_unlock (&self->lock);
    aigw_client_event_destroy (event_p);
    if (id)
        zlistx_delete (waiting, zlistx_cursor (waiting));
}

//  Send OUT, a REPORTS question, on CLIENT and note its slot on WAITING;
//  answer its slot with an ERROR instead when it cannot be asked. OUT stays
//  the caller's.
static void
s_send_reports (aigw_edge_io_t *self, aigw_client_t *client, zlistx_t *waiting,
                s_out_t *out)
{
    aigw_client_event_t *event = NULL;
    if (!aigw_broker_name_valid (out->service, strlen (out->service)))
        event = s_error_event (out->id, 400, "Invalid service name.");
    else if (aigw_now_ms () >= out->deadline_ms)
        event = s_error_event (out->id, 504, "The deadline passed.");
    else if (aigw_client_reports (client, out->service) == -1)
        event = s_error_event (out->id, 503, "The pipeline broker is unreachable.");
    else
        zlistx_add_end (waiting, strdup (out->id));
    if (event) {
        pthread_mutex_lock (&self->lock);
        s_deliver (self, out->id, &event);
        pthread_mutex_unlock (&self->lock);
    }
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
    //  Slot ids of METRICS and REPORTS questions, oldest first: the broker
    //  answers each kind in the order asked, on this one connection.
    zlistx_t *metrics_waiting = zlistx_new ();
    zlistx_set_destructor (metrics_waiting, (zlistx_destructor_fn *) zstr_free);
    zlistx_t *reports_waiting = zlistx_new ();
    zlistx_set_destructor (reports_waiting, (zlistx_destructor_fn *) zstr_free);
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
                //  Their answers are lost with the connection: a late one
                //  must not go to the next question.
                zlistx_purge (metrics_waiting);
                zlistx_purge (reports_waiting);
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
                else if (out->type == AIGW_CLIENT_REPORTS)
                    s_send_reports (self, client, reports_waiting, out);
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
                else if (event->type == AIGW_CLIENT_METRICS)
                    s_deliver_first (self, metrics_waiting, &event);
                else if (event->type == AIGW_CLIENT_REPORTS)
                    s_deliver_first (self, reports_waiting, &event);
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
    zlistx_destroy (&reports_waiting);
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

aigw_slot_t *
aigw_edge_io_reports (aigw_edge_io_t *self, const char *service, int64_t deadline_ms)
{
    s_out_t *out = calloc (1, sizeof *out);
    out->type = AIGW_CLIENT_REPORTS;
    snprintf (out->service, sizeof out->service, "%s", service ? service : "");
    out->deadline_ms = deadline_ms;
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

//  --------------------------------------------------------------------------
//  Selftest

#define S_TEST_ENDPOINT "inproc://aigw-edge-io-test"
#define S_TEST_NOBODY "inproc://aigw-edge-io-test-nobody"
#define S_TEST_WAIT_MS 3000     //  longest wait for anything expected
#define S_TEST_ASK_MS 250       //  deadline of one question
#define S_TEST_POLL_MS 5        //  pause between tries
#define S_TEST_SLOTS 3          //  questions asked at once

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
    aigw_edge_io_t *io = aigw_edge_io_new (config, endpoint);
    assert (io);
    aigw_worker_t *worker = aigw_worker_new (endpoint, "provider", 1, false,
                                             config->heartbeat_ms, config->liveness);
    assert (worker);
    const char *report = "{\"deployments\":{\"gpt\":{\"circuit\":\"open\"}}}";
    assert (aigw_worker_report (worker, report, strlen (report)) == 0);

    //  The report arrives once the edge is connected and the broker has it.
    int64_t until = aigw_now_ms () + S_TEST_WAIT_MS;
    while (true) {
        aigw_client_event_t *event = s_test_ask (io, "provider", aigw_now_ms () + S_TEST_ASK_MS);
        bool found = event && event->type == AIGW_CLIENT_REPORTS
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
        assert (event && event->type == AIGW_CLIENT_REPORTS);
        if (streq (services[i], "nobody"))
            assert (streq (event->text, "[]"));
        else
            assert (strstr (event->text, "\"circuit\":\"open\""));
        aigw_client_event_destroy (&event);
        aigw_slot_destroy (&slots[i]);
    }
    aigw_client_event_t *event = aigw_slot_wait (metrics, deadline);
    assert (event && event->type == AIGW_CLIENT_METRICS);
    aigw_client_event_destroy (&event);
    aigw_slot_destroy (&metrics);

    //  Refused before asking: a bad name (400), a deadline already past (504).
    event = s_test_ask (io, "no spaces", deadline);
    assert (event && event->type == AIGW_CLIENT_ERROR && event->status == 400);
    aigw_client_event_destroy (&event);
    char long_name[AIGW_BROKER_NAME_MAX + 8];
    memset (long_name, 'a', sizeof long_name - 1);
    long_name[sizeof long_name - 1] = 0;
    event = s_test_ask (io, long_name, deadline);
    assert (event && event->type == AIGW_CLIENT_ERROR && event->status == 400);
    aigw_client_event_destroy (&event);
    aigw_slot_t *slot = aigw_edge_io_reports (io, "provider", aigw_now_ms () - 1);
    event = aigw_slot_wait (slot, deadline);
    assert (event && event->type == AIGW_CLIENT_ERROR && event->status == 504);
    aigw_client_event_destroy (&event);
    aigw_slot_destroy (&slot);

    //  The worker leaves: its report goes with it.
    aigw_worker_destroy (&worker);
    until = aigw_now_ms () + S_TEST_WAIT_MS;
    while (true) {
        event = s_test_ask (io, "provider", aigw_now_ms () + S_TEST_ASK_MS);
        bool empty = event && event->type == AIGW_CLIENT_REPORTS && streq (event->text, "[]");
        aigw_client_event_destroy (&event);
        if (empty)
            break;
        assert (aigw_now_ms () < until);
        zclock_sleep (S_TEST_POLL_MS);
    }
    aigw_edge_io_destroy (&io);

    //  No broker: the handler is answered, or gives up, by its deadline.
    io = aigw_edge_io_new (config, S_TEST_NOBODY);
    assert (io);
    int64_t start = aigw_now_ms ();
    event = s_test_ask (io, "provider", start + S_TEST_ASK_MS);
    assert (!event || (event->type == AIGW_CLIENT_ERROR && event->status == 503));
    assert (aigw_now_ms () - start < S_TEST_WAIT_MS);
    aigw_client_event_destroy (&event);
    aigw_edge_io_destroy (&io);

    zstr_free (&endpoint);
    zactor_destroy (&broker);
    aigw_config_destroy (&config);
    aigw_log_set_level (level);
}
