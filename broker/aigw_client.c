/*  aigw_client: the client side of AIGW-BP/1. See schemas/broker-protocol.md.

    Requests hand the caller's buffer to ZeroMQ without a copy; a reply's
    envelope is received in place as a zframe_t. */
#include "aigw_client.h"
#include "aigw_bp.h"
#include "aigw_log.h"

#include <errno.h>
#include <inttypes.h>

#define S_NUMBER_SIZE       24  //  bytes for a decimal int64
#define S_STATUS_DIGITS_MAX 3   //  an HTTP status has three digits

struct _aigw_client_t {
    zsock_t *sock;            //  DEALER to the broker
    int heartbeat_ms;         //  heartbeat interval
    int liveness;             //  silent intervals before the broker is gone
    int64_t heartbeat_at;     //  monotonic ms when the next heartbeat is due
    int64_t heard_at;         //  monotonic ms the broker last spoke, 0: never
    bool wants_directory;     //  ask the broker for its directory
    char *directory;          //  the latest directory text, NULL before one
    char *directory_version;  //  its version token, "" before one
};

//  Send the client header and command CMD; MORE says whether frames follow.
//  Returns 0, or -1 if the socket would not take it.
static int
s_send_head (aigw_client_t *self, byte cmd, bool more)
{
    return aigw_bp_send_head (zsock_resolve (self->sock), AIGW_BP_CLIENT_HEADER, cmd, more);
}

aigw_client_t *
aigw_client_new (const char *endpoint, int heartbeat_ms, int liveness)
{
    if (!endpoint)
        return NULL;
    aigw_client_t *self = (aigw_client_t *) calloc (1, sizeof *self);
    if (!self)
        return NULL;
    self->heartbeat_ms = heartbeat_ms > 0 ? heartbeat_ms : AIGW_BP_HEARTBEAT_MS;
    self->liveness = liveness > 0 ? liveness : AIGW_BP_LIVENESS;
    self->directory_version = strdup ("");
    self->sock = zsock_new (ZMQ_DEALER);
    if (!self->sock) {
        aigw_client_destroy (&self);
        return NULL;
    }
    zsock_set_sndhwm (self->sock, AIGW_BP_HWM);
    zsock_set_rcvhwm (self->sock, AIGW_BP_HWM);
    zsock_set_linger (self->sock, 0);
    zsock_set_immediate (self->sock, 0);
    if (zsock_connect (self->sock, "%s", endpoint) == -1) {
        aigw_error ("client: cannot connect to %s", endpoint);
        aigw_client_destroy (&self);
        return NULL;
    }
    //  Ask at once, so that connected () turns true within a round trip.
    s_send_head (self, AIGW_BP_CLIENT_HEARTBEAT, false);
    self->heartbeat_at = zclock_mono () + self->heartbeat_ms;
    return self;
}

void
aigw_client_destroy (aigw_client_t **self_p)
{
    assert (self_p);
    aigw_client_t *self = *self_p;
    if (!self)
        return;
    zsock_destroy (&self->sock);
    free (self->directory);
    free (self->directory_version);
    free (self);
    *self_p = NULL;
}

zsock_t *
aigw_client_sock (aigw_client_t *self)
{
    assert (self);
    return self->sock;
}

int
aigw_client_send (aigw_client_t *self, const char *service, const char *shard_key,
                  const char *request_id, int64_t deadline_ms, char **data, size_t size)
{
    assert (self);
    assert (data);
    zmq_msg_t envelope;
    aigw_bp_msg_take (&envelope, data, size);
    int rc = -1;
    if (!service || !request_id || !*request_id || deadline_ms < 0)
        aigw_error ("client: request needs a service, a request id and a deadline >= 0");
    else if (s_send_head (self, AIGW_BP_CLIENT_REQUEST, true) == 0) {
        void *handle = zsock_resolve (self->sock);
        char deadline[S_NUMBER_SIZE];
        int len = snprintf (deadline, sizeof deadline, "%" PRId64, deadline_ms);
        aigw_bp_send_str (handle, service);
        aigw_bp_send_str (handle, shard_key);
        aigw_bp_send_str (handle, request_id);
        zmq_send (handle, deadline, (size_t) len, ZMQ_SNDMORE | ZMQ_DONTWAIT);
        zmq_msg_send (&envelope, handle, ZMQ_DONTWAIT);
        rc = 0;
    }
    else
        aigw_warn ("client: request %s not sent: %s", request_id, zmq_strerror (zmq_errno ()));
    zmq_msg_close (&envelope);
    return rc;
}

int
aigw_client_status (aigw_client_t *self)
{
    assert (self);
    return s_send_head (self, AIGW_BP_CLIENT_STATUS, false);
}

int
aigw_client_metrics (aigw_client_t *self)
{
    assert (self);
    return s_send_head (self, AIGW_BP_CLIENT_METRICS, false);
}

int
aigw_client_reports (aigw_client_t *self, const char *service)
{
    assert (self);
    if (!service || s_send_head (self, AIGW_BP_CLIENT_REPORTS, true) == -1)
        return -1;
    zmq_send (zsock_resolve (self->sock), service, strlen (service), ZMQ_DONTWAIT);
    return 0;
}

void
aigw_client_event_destroy (aigw_client_event_t **self_p)
{
    assert (self_p);
    aigw_client_event_t *self = *self_p;
    if (!self)
        return;
    free (self->request_id);
    zframe_destroy (&self->envelope);
    aigw_envelope_destroy (&self->env);
    free (self->text);
    free (self);
    *self_p = NULL;
}

//  A copy of MSG as a string, or NULL.
static char *
s_msg_strdup (zmq_msg_t *msg)
{
    return strndup ((const char *) zmq_msg_data (msg), zmq_msg_size (msg));
}

//  Parse an HTTP status frame. Returns it, or -1.
static int
s_msg_status (zmq_msg_t *msg)
{
    int64_t status;
    if (aigw_bp_decimal (zmq_msg_data (msg), zmq_msg_size (msg), S_STATUS_DIGITS_MAX, &status)
        == -1)
        return -1;
    return (int) status;
}

//  Build the event for a message of COUNT frames with command CMD, taking
//  *LAST when used. Returns NULL for a heartbeat or a malformed message.
static aigw_client_event_t *
s_event_new (byte cmd, zmq_msg_t *frames, int count, zframe_t **last)
{
    aigw_client_event_t *event = (aigw_client_event_t *) calloc (1, sizeof *event);
    if (!event)
        return NULL;
    event->type = cmd;
    bool valid = false;
    if (cmd == AIGW_BP_CLIENT_REPLY && count == AIGW_BP_SMALL_FRAMES + 1
        && zmq_msg_size (&frames[3]) == 1) {
        event->request_id = s_msg_strdup (&frames[2]);
        event->last = (*(byte *) zmq_msg_data (&frames[3]) & AIGW_BP_FLAG_LAST) != 0;
        event->envelope = *last;
        *last = NULL;
        valid = event->request_id != NULL;
    }
    else if (cmd == AIGW_BP_CLIENT_ERROR && count == AIGW_BP_SMALL_FRAMES + 1) {
        event->request_id = s_msg_strdup (&frames[2]);
        event->status = s_msg_status (&frames[3]);
        event->last = true;
        event->text = strndup ((const char *) zframe_data (*last), zframe_size (*last));
        valid = event->request_id && event->text && event->status >= 0;
    }
    else if ((cmd == AIGW_BP_CLIENT_STATUS || cmd == AIGW_BP_CLIENT_METRICS
              || cmd == AIGW_BP_CLIENT_REPORTS)
             && count == 3) {
        event->text = s_msg_strdup (&frames[2]);
        valid = event->text != NULL;
    }
    if (!valid)
        aigw_client_event_destroy (&event);
    return event;
}

aigw_client_event_t *
aigw_client_recv (aigw_client_t *self)
{
    assert (self);
    void *handle = zsock_resolve (self->sock);
    while (true) {
        aigw_bp_message_t msg;
        if (aigw_bp_message_recv (&msg, handle, AIGW_BP_CLIENT_HEADER) <= 0)
            return NULL;
        self->heard_at = zclock_mono ();
        aigw_client_event_t *event = NULL;
        if (msg.cmd == -1)
            aigw_debug ("client: malformed message dropped");
        else if (msg.cmd == AIGW_BP_CLIENT_DIRECTORY && msg.count == 4)
            aigw_bp_directory_keep (&msg.frames[2], &msg.frames[3], &self->directory_version,
                                    &self->directory);
        else if (msg.cmd != AIGW_BP_CLIENT_HEARTBEAT || msg.count != 2) {
            event = s_event_new (msg.cmd, msg.frames, msg.count, &msg.last);
            if (!event)
                aigw_debug ("client: malformed message dropped (command %d)", msg.cmd);
        }
        aigw_bp_message_close (&msg);
        if (event)
            return event;
    }
}

int
aigw_client_tick (aigw_client_t *self)
{
    assert (self);
    int64_t now = zclock_mono ();
    if (now >= self->heartbeat_at) {
        s_send_head (self, AIGW_BP_CLIENT_HEARTBEAT, false);
        if (self->wants_directory && s_send_head (self, AIGW_BP_CLIENT_DIRECTORY, true) == 0)
            zmq_send (zsock_resolve (self->sock), self->directory_version,
                      strlen (self->directory_version), ZMQ_DONTWAIT);
        self->heartbeat_at = now + self->heartbeat_ms;
    }
    return self->heartbeat_at > now ? (int) (self->heartbeat_at - now) : 1;
}

void
aigw_client_want_directory (aigw_client_t *self)
{
    self->wants_directory = true;
    self->heartbeat_at = 0;  //  ask at the next tick
}

const char *
aigw_client_directory (aigw_client_t *self, const char **version)
{
    *version = self->directory_version;
    return self->directory;
}

bool
aigw_client_connected (aigw_client_t *self)
{
    assert (self);
    return self->heard_at > 0
           && zclock_mono () - self->heard_at < (int64_t) self->heartbeat_ms * self->liveness;
}

char *
aigw_client_reports_once (const char *endpoint, const char *service, int64_t deadline_ms, char *err,
                          size_t err_size)
{
    char scratch[1];
    if (!err) {
        err = scratch;
        err_size = sizeof scratch;
    }
    if (err_size)
        *err = 0;
    if (!endpoint || !service) {
        snprintf (err, err_size, "reports: endpoint and service required");
        return NULL;
    }
    //  Heartbeats are irrelevant to one question; the defaults are fine.
    aigw_client_t *client = aigw_client_new (endpoint, 0, 0);
    if (!client) {
        snprintf (err, err_size, "reports: cannot connect to %s", endpoint);
        return NULL;
    }
    char *text = NULL;
    if (aigw_client_reports (client, service) == -1)
        snprintf (err, err_size, "reports: cannot send to %s: %s", endpoint,
                  zmq_strerror (zmq_errno ()));
    else {
        zmq_pollitem_t item = {zsock_resolve (client->sock), 0, ZMQ_POLLIN, 0};
        while (!text) {
            int64_t left = deadline_ms - zclock_time ();
            if (left <= 0) {
                snprintf (err, err_size, "reports: no answer from %s for %s in time", endpoint,
                          service);
                break;
            }
            if (zmq_poll (&item, 1, (long) left) == -1 && zmq_errno () != EINTR) {
                snprintf (err, err_size, "reports: poll failed: %s", zmq_strerror (zmq_errno ()));
                break;
            }
            aigw_client_event_t *event;
            while (!text && (event = aigw_client_recv (client))) {
                if (event->type == AIGW_BP_CLIENT_REPORTS) {
                    text = event->text;
                    event->text = NULL;
                }
                aigw_client_event_destroy (&event);
            }
        }
    }
    aigw_client_destroy (&client);
    return text;
}

//  --------------------------------------------------------------------------
//  Selftest: the test plays the broker on a ROUTER, so that each frame the
//  client sends is checked against the protocol and the broker's silence
//  can be staged.

#define S_TEST_ENDPOINT     "inproc://aigw-client-test"
#define S_TEST_HEARTBEAT_MS 20    //  short heartbeats keep the test fast
#define S_TEST_LIVENESS     3     //  so a silent broker is gone after 60 ms
#define S_TEST_WAIT_MS      3000  //  longest wait for anything expected
#define S_TEST_ONCE_MS      100   //  deadline of a REPORTS nobody answers

//  Send REPLY for RID with the FLAGS byte and ENVELOPE to the client at
//  IDENTITY.
static void
s_test_reply (zsock_t *broker, zframe_t *identity, const char *rid, byte flags,
              const char *envelope)
{
    int rc
        = zsock_send (broker, "fsbsbs", identity, AIGW_BP_CLIENT_HEADER,
                      &(byte){AIGW_BP_CLIENT_REPLY}, (size_t) 1, rid, &flags, (size_t) 1, envelope);
    assert (rc == 0);
}

//  Tick SELF and read its input until an event comes or WAIT_MS pass.
static aigw_client_event_t *
s_test_event (aigw_client_t *self, int wait_ms)
{
    int64_t until = zclock_mono () + wait_ms;
    while (true) {
        aigw_client_tick (self);
        aigw_client_event_t *event = aigw_client_recv (self);
        if (event || zclock_mono () >= until)
            return event;
        zmq_pollitem_t item = {zsock_resolve (self->sock), 0, ZMQ_POLLIN, 0};
        zmq_poll (&item, 1, 5);
    }
}

void
aigw_client_test (bool verbose)
{
    aigw_log_level_t level = aigw_log_level ();
    aigw_log_set_level (verbose ? AIGW_LOG_DEBUG : (aigw_log_level_t) -1);
    assert (!aigw_client_new (NULL, 0, 0));
    zsock_t *broker = zsock_new_router ("@" S_TEST_ENDPOINT);
    assert (broker);
    aigw_client_t *client = aigw_client_new (S_TEST_ENDPOINT, S_TEST_HEARTBEAT_MS, S_TEST_LIVENESS);
    assert (client && aigw_client_sock (client));
    //  A HEARTBEAT at once; connected once the broker answers it.
    zmsg_t *msg
        = aigw_bp_expect (broker, AIGW_BP_CLIENT_HEADER, AIGW_BP_CLIENT_HEARTBEAT, S_TEST_WAIT_MS);
    assert (msg && zmsg_size (msg) == 3);
    zframe_t *identity = zframe_dup (zmsg_first (msg));
    zmsg_destroy (&msg);
    assert (!aigw_client_connected (client));
    aigw_bp_test_send (broker, identity, AIGW_BP_CLIENT_HEADER, AIGW_BP_CLIENT_HEARTBEAT, NULL);
    int64_t until = zclock_mono () + S_TEST_WAIT_MS;
    while (!aigw_client_connected (client) && zclock_mono () < until)
        assert (!s_test_event (client, 5));  //  heartbeats are no events
    assert (aigw_client_connected (client));

    //  REQUEST: service, shard key, request id, deadline, envelope.
    char *data = strdup ("envelope");
    assert (aigw_client_send (client, "auth", NULL, "rid-1", 1234, &data, 8) == 0 && !data);
    msg = aigw_bp_expect (broker, AIGW_BP_CLIENT_HEADER, AIGW_BP_CLIENT_REQUEST, S_TEST_WAIT_MS);
    assert (msg && zmsg_size (msg) == 8);
    assert (aigw_bp_frame_is (msg, 3, "auth") && aigw_bp_frame_is (msg, 4, ""));
    assert (aigw_bp_frame_is (msg, 5, "rid-1") && aigw_bp_frame_is (msg, 6, "1234"));
    assert (aigw_bp_frame_is (msg, 7, "envelope"));
    zmsg_destroy (&msg);
    data = strdup ("x");
    assert (aigw_client_send (client, "auth", NULL, "", 0, &data, 1) == -1 && !data);
    data = strdup ("x");
    assert (aigw_client_send (client, "auth", NULL, "rid", -1, &data, 1) == -1 && !data);

    //  Replies stream, LAST ends them; an ERROR is final with its status.
    s_test_reply (broker, identity, "rid-1", 0, "chunk");
    aigw_client_event_t *event = s_test_event (client, S_TEST_WAIT_MS);
    assert (event && event->type == AIGW_BP_CLIENT_REPLY && streq (event->request_id, "rid-1"));
    assert (!event->last && zframe_streq (event->envelope, "chunk"));
    aigw_client_event_destroy (&event);
    s_test_reply (broker, identity, "rid-1", AIGW_BP_FLAG_LAST, "end");
    event = s_test_event (client, S_TEST_WAIT_MS);
    assert (event && event->type == AIGW_BP_CLIENT_REPLY && event->last);
    aigw_client_event_destroy (&event);
    //  A malformed ERROR (status not a number) is dropped; the next is kept.
    aigw_bp_test_send (broker, identity, AIGW_BP_CLIENT_HEADER, AIGW_BP_CLIENT_ERROR, "rid-2",
                       "5x3", "bad", NULL);
    aigw_bp_test_send (broker, identity, AIGW_BP_CLIENT_HEADER, AIGW_BP_CLIENT_ERROR, "rid-2",
                       "503", "no worker", NULL);
    event = s_test_event (client, S_TEST_WAIT_MS);
    assert (event && event->type == AIGW_BP_CLIENT_ERROR && event->status == 503);
    assert (event->last && streq (event->text, "no worker"));
    aigw_client_event_destroy (&event);

    //  STATUS, METRICS and REPORTS: asked, and answered as text events.
    assert (aigw_client_status (client) == 0 && aigw_client_metrics (client) == 0);
    assert (aigw_client_reports (client, "provider") == 0);
    assert (aigw_client_reports (client, NULL) == -1);
    msg = aigw_bp_expect (broker, AIGW_BP_CLIENT_HEADER, AIGW_BP_CLIENT_STATUS, S_TEST_WAIT_MS);
    assert (msg && zmsg_size (msg) == 3);
    zmsg_destroy (&msg);
    msg = aigw_bp_expect (broker, AIGW_BP_CLIENT_HEADER, AIGW_BP_CLIENT_METRICS, S_TEST_WAIT_MS);
    assert (msg && zmsg_size (msg) == 3);
    zmsg_destroy (&msg);
    msg = aigw_bp_expect (broker, AIGW_BP_CLIENT_HEADER, AIGW_BP_CLIENT_REPORTS, S_TEST_WAIT_MS);
    assert (msg && zmsg_size (msg) == 4 && aigw_bp_frame_is (msg, 3, "provider"));
    zmsg_destroy (&msg);
    byte types[] = {AIGW_BP_CLIENT_STATUS, AIGW_BP_CLIENT_METRICS, AIGW_BP_CLIENT_REPORTS};
    for (size_t i = 0; i < sizeof types; i++) {
        aigw_bp_test_send (broker, identity, AIGW_BP_CLIENT_HEADER, types[i], "text", NULL);
        event = s_test_event (client, S_TEST_WAIT_MS);
        assert (event && event->type == types[i] && streq (event->text, "text"));
        aigw_client_event_destroy (&event);
    }

    //  The directory: asked at each heartbeat with the version held.
    const char *version;
    assert (!aigw_client_directory (client, &version) && streq (version, ""));
    aigw_client_want_directory (client);
    aigw_client_tick (client);
    msg = aigw_bp_expect (broker, AIGW_BP_CLIENT_HEADER, AIGW_BP_CLIENT_DIRECTORY, S_TEST_WAIT_MS);
    assert (msg && zmsg_size (msg) == 4 && aigw_bp_frame_is (msg, 3, ""));
    zmsg_destroy (&msg);
    aigw_bp_test_send (broker, identity, AIGW_BP_CLIENT_HEADER, AIGW_BP_CLIENT_DIRECTORY, "i-3",
                       "auth w ipc://x R\n", NULL);
    until = zclock_mono () + S_TEST_WAIT_MS;
    while (!aigw_client_directory (client, &version) && zclock_mono () < until)
        assert (!s_test_event (client, 5));
    assert (streq (aigw_client_directory (client, &version), "auth w ipc://x R\n"));
    assert (streq (version, "i-3"));

    //  Heartbeat loss: the broker stays silent and the client says so.
    until = zclock_mono () + S_TEST_WAIT_MS;
    while (aigw_client_connected (client) && zclock_mono () < until)
        assert (!s_test_event (client, 5));
    assert (!aigw_client_connected (client));
    //  ... and says so no more once the broker speaks again.
    aigw_bp_test_send (broker, identity, AIGW_BP_CLIENT_HEADER, AIGW_BP_CLIENT_HEARTBEAT, NULL);
    until = zclock_mono () + S_TEST_WAIT_MS;
    while (!aigw_client_connected (client) && zclock_mono () < until)
        assert (!s_test_event (client, 5));
    assert (aigw_client_connected (client));
    aigw_client_destroy (&client);
    assert (!client);
    aigw_client_destroy (&client);

    //  The one-shot REPORTS gives up at its deadline when nobody answers.
    char err[128];
    char *text = aigw_client_reports_once (S_TEST_ENDPOINT, "provider",
                                           zclock_time () + S_TEST_ONCE_MS, err, sizeof err);
    assert (!text && strstr (err, "no answer"));
    assert (!aigw_client_reports_once (NULL, "x", 0, NULL, 0));
    zframe_destroy (&identity);
    zsock_destroy (&broker);
    aigw_log_set_level (level);
    if (verbose)
        printf ("client: ok\n");
}
