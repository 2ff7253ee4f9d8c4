/*  aigw_worker: the worker side of AIGW-BP/1. See schemas/broker-protocol.md.

    Frames are read as raw zmq_msg_t on the stack; only the envelope becomes
    a zframe_t (received in place, so over inproc it is the very buffer the
    client sent). Replies hand the caller's buffer to ZeroMQ without a copy. */
#include "aigw_worker.h"
#include "aigw_bp.h"
#include "aigw_log.h"

#include <errno.h>
#include <stdatomic.h>
#include <unistd.h>

#define S_HOSTNAME_MAX     64  //  bytes of the host name in a worker id
#define S_WORKER_ID_SIZE   (AIGW_BP_WORKER_ID_MAX + 1)
#define S_CREDIT_SIZE      16   //  bytes for the decimal credit
#define S_WORKER_LINGER_MS 100  //  linger so a final reply outlives destroy

//  Makes worker ids unique within the process.
static atomic_uint s_worker_counter;

struct _aigw_worker_t {
    char *endpoint;           //  broker endpoint
    char *service;            //  service served
    char *worker_id;          //  stable id, the input to shard hashing
    int credit;               //  requests taken at once
    bool replay_safe;         //  requests may be replayed elsewhere
    int heartbeat_ms;         //  heartbeat interval
    int liveness;             //  silent intervals before the broker is gone
    zsock_t *sock;            //  DEALER to the broker, replaced on reconnect
    int fd;                   //  its ZMQ_FD
    int64_t heartbeat_at;     //  monotonic ms when the next heartbeat is due
    int64_t expires_at;       //  monotonic ms past which we reconnect
    int reconnect_ms;         //  backoff before the next reconnect
    char *peer;               //  our peer endpoint (BP/2), NULL for none
    bool wants_directory;     //  ask the broker for its directory
    char *directory;          //  the latest directory text, NULL before one
    char *directory_version;  //  its version token, "" before one
};

//  Send the worker header and command CMD; MORE says whether frames follow.
//  Returns 0, or -1 if the socket would not take it.
static int
s_send_head (void *handle, byte cmd, bool more)
{
    return aigw_bp_send_head (handle, AIGW_BP_WORKER_HEADER, cmd, more);
}

//  Send READY for this worker. Returns 0, or -1.
static int
s_send_ready (aigw_worker_t *self)
{
    void *handle = zsock_resolve (self->sock);
    char credit[S_CREDIT_SIZE];
    snprintf (credit, sizeof credit, "%d", self->credit);
    if (s_send_head (handle, AIGW_BP_WORKER_READY, true) == -1)
        return -1;
    aigw_bp_send_str (handle, self->service);
    aigw_bp_send_str (handle, self->worker_id);
    aigw_bp_send_str (handle, credit);
    char flags = AIGW_BP_REPLAY_SAFE_FLAG;
    zmq_send (handle, &flags, self->replay_safe ? 1 : 0,
              self->peer ? ZMQ_SNDMORE | ZMQ_DONTWAIT : ZMQ_DONTWAIT);
    if (self->peer)
        zmq_send (handle, self->peer, strlen (self->peer), ZMQ_DONTWAIT);
    return 0;
}

//  Ask for the directory, saying which version we hold.
static void
s_send_directory (aigw_worker_t *self)
{
    void *handle = zsock_resolve (self->sock);
    if (s_send_head (handle, AIGW_BP_WORKER_DIRECTORY, true) == 0)
        zmq_send (handle, self->directory_version, strlen (self->directory_version), ZMQ_DONTWAIT);
}

//  A new DEALER connected to the broker, or NULL.
static zsock_t *
s_socket_new (aigw_worker_t *self)
{
    zsock_t *sock = zsock_new (ZMQ_DEALER);
    if (!sock)
        return NULL;
    zsock_set_sndhwm (sock, AIGW_BP_HWM);
    zsock_set_rcvhwm (sock, AIGW_BP_HWM);
    zsock_set_linger (sock, S_WORKER_LINGER_MS);
    zsock_set_immediate (sock, 0);
    if (zsock_connect (sock, "%s", self->endpoint) == -1) {
        aigw_error ("worker %s: cannot connect to %s", self->worker_id, self->endpoint);
        zsock_destroy (&sock);
    }
    return sock;
}

//  The broker spoke: it is alive, and the backoff starts over.
static void
s_heard (aigw_worker_t *self)
{
    self->expires_at = zclock_mono () + (int64_t) self->heartbeat_ms * self->liveness;
    self->reconnect_ms = AIGW_BP_RECONNECT_MIN_MS;
}

aigw_worker_t *
aigw_worker_new (const char *endpoint, const char *service, int credit, bool replay_safe,
                 int heartbeat_ms, int liveness)
{
    if (!endpoint || !service || !aigw_bp_name_valid (service, strlen (service)) || credit < 1
        || credit > AIGW_BP_CREDIT_MAX) {
        aigw_error ("worker: invalid settings for service %s", service ? service : "?");
        return NULL;
    }
    aigw_worker_t *self = (aigw_worker_t *) calloc (1, sizeof *self);
    if (!self)
        return NULL;
    char hostname[S_HOSTNAME_MAX + 1] = "";
    if (gethostname (hostname, sizeof hostname) == -1 || !*hostname)
        snprintf (hostname, sizeof hostname, "localhost");
    hostname[S_HOSTNAME_MAX] = 0;
    for (char *c = hostname; *c; c++)
        if (*c <= 0x20 || *c > 0x7e)
            *c = '_';
    char worker_id[S_WORKER_ID_SIZE];
    snprintf (worker_id, sizeof worker_id, "%s-%s-%d-%u", service, hostname, (int) getpid (),
              atomic_fetch_add (&s_worker_counter, 1) + 1);
    self->endpoint = strdup (endpoint);
    self->service = strdup (service);
    self->worker_id = strdup (worker_id);
    self->directory_version = strdup ("");
    self->credit = credit;
    self->replay_safe = replay_safe;
    self->heartbeat_ms = heartbeat_ms > 0 ? heartbeat_ms : AIGW_BP_HEARTBEAT_MS;
    self->liveness = liveness > 0 ? liveness : AIGW_BP_LIVENESS;
    if (!self->endpoint || !self->service || !self->worker_id || !(self->sock = s_socket_new (self))
        || (self->fd = zsock_fd (self->sock)) < 0 || s_send_ready (self) == -1) {
        aigw_worker_destroy (&self);
        return NULL;
    }
    s_heard (self);
    self->heartbeat_at = zclock_mono () + self->heartbeat_ms;
    return self;
}

void
aigw_worker_destroy (aigw_worker_t **self_p)
{
    assert (self_p);
    aigw_worker_t *self = *self_p;
    if (!self)
        return;
    if (self->sock)
        //  Best effort: the broker treats it as a death, after any replies
        //  already sent (the socket keeps per-peer order).
        s_send_head (zsock_resolve (self->sock), AIGW_BP_WORKER_DISCONNECT, false);
    zsock_destroy (&self->sock);
    free (self->endpoint);
    free (self->service);
    free (self->worker_id);
    free (self->peer);
    free (self->directory);
    free (self->directory_version);
    free (self);
    *self_p = NULL;
}

void
aigw_worker_set_peer (aigw_worker_t *self, const char *endpoint)
{
    assert (self && endpoint);
    free (self->peer);
    self->peer = strdup (endpoint);
    s_send_ready (self);
}

void
aigw_worker_want_directory (aigw_worker_t *self)
{
    self->wants_directory = true;
    self->heartbeat_at = 0;  //  ask at the next tick
}

const char *
aigw_worker_directory (aigw_worker_t *self, const char **version)
{
    *version = self->directory_version;
    return self->directory;
}

zsock_t *
aigw_worker_sock (aigw_worker_t *self)
{
    assert (self);
    return self->sock;
}

int
aigw_worker_fd (aigw_worker_t *self)
{
    assert (self);
    return self->fd;
}

const char *
aigw_worker_id (aigw_worker_t *self)
{
    assert (self);
    return self->worker_id;
}

void
aigw_job_destroy (aigw_job_t **self_p)
{
    assert (self_p);
    aigw_job_t *self = *self_p;
    if (!self)
        return;
    if (self->release)
        self->release (self);
    zframe_destroy (&self->client);
    zframe_destroy (&self->envelope);
    free (self->request_id);
    free (self->reply_to);
    free (self->sender);
    free (self->held);
    free (self);
    *self_p = NULL;
}

//  Build a job from a REQUEST's frames, taking ENVELOPE. Returns NULL if
//  the frames are malformed (ENVELOPE is then left to the caller).
static aigw_job_t *
s_job_new (zmq_msg_t *frames, zframe_t **envelope)
{
    size_t client_size = zmq_msg_size (&frames[2]);
    size_t rid_size = zmq_msg_size (&frames[3]);
    if (client_size > AIGW_BP_IDENTITY_MAX || rid_size == 0 || rid_size > AIGW_BP_REQUEST_ID_MAX
        || memchr (zmq_msg_data (&frames[3]), 0, rid_size))
        return NULL;
    aigw_job_t *job = (aigw_job_t *) calloc (1, sizeof *job);
    if (!job)
        return NULL;
    job->client = zframe_new (zmq_msg_data (&frames[2]), client_size);
    job->request_id = strndup ((const char *) zmq_msg_data (&frames[3]), rid_size);
    if (!job->client || !job->request_id) {
        aigw_job_destroy (&job);
        return NULL;
    }
    job->envelope = *envelope;
    *envelope = NULL;
    return job;
}

aigw_job_t *
aigw_worker_recv (aigw_worker_t *self)
{
    assert (self);
    void *handle = zsock_resolve (self->sock);
    while (true) {
        aigw_bp_message_t msg;
        if (aigw_bp_message_recv (&msg, handle, AIGW_BP_WORKER_HEADER) <= 0)
            return NULL;
        s_heard (self);
        aigw_job_t *job = NULL;
        if (msg.cmd == -1)
            aigw_debug ("worker %s: malformed message dropped", self->worker_id);
        else if (msg.cmd == AIGW_BP_WORKER_REQUEST && msg.count == AIGW_BP_SMALL_FRAMES + 1) {
            job = s_job_new (msg.frames, &msg.last);
            if (job)
                job->worker = self;
            else
                aigw_debug ("worker %s: malformed request dropped", self->worker_id);
        }
        else if (msg.cmd == AIGW_BP_WORKER_DIRECTORY && msg.count == 4)
            aigw_bp_directory_keep (&msg.frames[2], &msg.frames[3], &self->directory_version,
                                    &self->directory);
        else if (msg.cmd == AIGW_BP_WORKER_DISCONNECT && msg.count == 2) {
            aigw_info ("worker %s: broker asked to register again", self->worker_id);
            s_send_ready (self);
        }
        else if (msg.cmd != AIGW_BP_WORKER_HEARTBEAT || msg.count != 2)
            aigw_debug ("worker %s: unexpected command %d dropped", self->worker_id, msg.cmd);
        aigw_bp_message_close (&msg);
        if (job)
            return job;
    }
}

//  Replace the socket with a new one and register again; the backoff grows
//  while the broker stays silent.
static void
s_reconnect (aigw_worker_t *self, int64_t now)
{
    aigw_info ("worker %s: broker silent, reconnecting to %s (next try in %d ms)", self->worker_id,
               self->endpoint, self->reconnect_ms);
    zsock_t *sock = s_socket_new (self);
    if (sock) {
        //  What is still queued was for a broker that is gone.
        zsock_set_linger (self->sock, 0);
        zsock_destroy (&self->sock);
        self->sock = sock;
        self->fd = zsock_fd (sock);
        s_send_ready (self);
    }
    int64_t wait = (int64_t) self->heartbeat_ms * self->liveness;
    if (wait < self->reconnect_ms)
        wait = self->reconnect_ms;
    self->expires_at = now + wait;
    self->reconnect_ms *= 2;
    if (self->reconnect_ms > AIGW_BP_RECONNECT_MAX_MS)
        self->reconnect_ms = AIGW_BP_RECONNECT_MAX_MS;
}

int
aigw_worker_tick (aigw_worker_t *self)
{
    assert (self);
    int64_t now = zclock_mono ();
    if (now >= self->expires_at)
        s_reconnect (self, now);
    if (now >= self->heartbeat_at) {
        s_send_head (zsock_resolve (self->sock), AIGW_BP_WORKER_HEARTBEAT, false);
        if (self->wants_directory)
            s_send_directory (self);
        self->heartbeat_at = now + self->heartbeat_ms;
    }
    int64_t next = self->heartbeat_at < self->expires_at ? self->heartbeat_at : self->expires_at;
    return next > now ? (int) (next - now) : 1;
}

//  Send a REPLY: CLIENT (SIZE bytes), RID, FLAGS, NEXT, SHARD, ENVELOPE.
//  Returns 0, or -1 if the socket would not take it.
static int
s_send_reply (aigw_worker_t *self, const void *client, size_t client_size, const char *rid,
              int flags, const char *next, const char *shard, zmq_msg_t *envelope)
{
    void *handle = zsock_resolve (self->sock);
    byte flags_byte = (byte) flags;
    if (s_send_head (handle, AIGW_BP_WORKER_REPLY, true) == -1) {
        aigw_warn ("worker %s: reply for %s not sent: %s", self->worker_id, rid,
                   zmq_strerror (zmq_errno ()));
        return -1;
    }
    zmq_send (handle, client, client_size, ZMQ_SNDMORE | ZMQ_DONTWAIT);
    aigw_bp_send_str (handle, rid);
    zmq_send (handle, &flags_byte, 1, ZMQ_SNDMORE | ZMQ_DONTWAIT);
    aigw_bp_send_str (handle, next);
    aigw_bp_send_str (handle, shard);
    zmq_msg_send (envelope, handle, ZMQ_DONTWAIT);
    return 0;
}

int
aigw_worker_reply (aigw_worker_t *self, aigw_job_t **job_p, int flags, const char *next_service,
                   const char *shard_key, char **data, size_t size)
{
    assert (self);
    assert (job_p && *job_p);
    assert (data);
    aigw_job_t *job = *job_p;
    zmq_msg_t envelope;
    aigw_bp_msg_take (&envelope, data, size);
    int rc = 0;
    if ((flags & AIGW_REPLY_FORWARD)
        && (!next_service || !aigw_bp_name_valid (next_service, strlen (next_service)))) {
        aigw_error ("worker %s: FORWARD needs a valid next service", self->worker_id);
        rc = -1;
    }
    else if (zframe_size (job->client) > 0 || (flags & AIGW_REPLY_FORWARD))
        rc = s_send_reply (self, zframe_data (job->client), zframe_size (job->client),
                           job->request_id, flags, next_service, shard_key, &envelope);
    //  else: a reply to a one-way request, which the broker would drop.
    zmq_msg_close (&envelope);
    if (flags & AIGW_REPLY_LAST)
        aigw_job_destroy (job_p);
    return rc;
}

int
aigw_worker_send_oneway (aigw_worker_t *self, const char *service, const char *shard_key,
                         const char *request_id, char **data, size_t size)
{
    assert (self);
    assert (data);
    zmq_msg_t envelope;
    aigw_bp_msg_take (&envelope, data, size);
    int rc = -1;
    if (!service || !aigw_bp_name_valid (service, strlen (service)) || !request_id)
        aigw_error ("worker %s: one-way request needs a valid service", self->worker_id);
    else
        rc = s_send_reply (self, "", 0, request_id, AIGW_REPLY_FORWARD, service, shard_key,
                           &envelope);
    zmq_msg_close (&envelope);
    return rc;
}

int
aigw_worker_report (aigw_worker_t *self, const char *json, size_t len)
{
    assert (self);
    if (!json || len > AIGW_BP_REPORT_MAX) {
        aigw_warn ("worker %s: report of %zu bytes refused (at most %d)", self->worker_id, len,
                   AIGW_BP_REPORT_MAX);
        return -1;
    }
    void *handle = zsock_resolve (self->sock);
    if (s_send_head (handle, AIGW_BP_WORKER_REPORT, true) == -1
        || zmq_send (handle, json, len, ZMQ_DONTWAIT) == -1) {
        aigw_warn ("worker %s: report not sent: %s", self->worker_id, zmq_strerror (zmq_errno ()));
        return -1;
    }
    return 0;
}

//  --------------------------------------------------------------------------
//  Selftest: the test plays the broker on a ROUTER, so that each frame the
//  worker sends is checked against the protocol and the broker's silence
//  can be staged.

#define S_TEST_ENDPOINT     "inproc://aigw-worker-test"
#define S_TEST_HEARTBEAT_MS 20    //  short heartbeats keep the test fast
#define S_TEST_LIVENESS     3     //  so a silent broker is gone after 60 ms
#define S_TEST_WAIT_MS      3000  //  longest wait for anything expected
#define S_TEST_QUIET_MS     50    //  how long "nothing arrives" is watched

//  The worker under test and the broker the test plays.
typedef struct {
    aigw_worker_t *worker;
    zsock_t *broker;     //  ROUTER bound at S_TEST_ENDPOINT
    zframe_t *identity;  //  the worker's routing identity, once known
    bool silent;         //  the broker stopped answering
} s_fix_t;

//  Tick the worker, let the broker answer with a HEARTBEAT unless it is
//  silent, and read the worker's input until a job comes or WAIT_MS pass.
static aigw_job_t *
s_test_job (s_fix_t *fix, int wait_ms)
{
    int64_t until = zclock_mono () + wait_ms;
    while (true) {
        aigw_worker_tick (fix->worker);
        if (fix->identity && !fix->silent)
            aigw_bp_test_send (fix->broker, fix->identity, AIGW_BP_WORKER_HEADER,
                               AIGW_BP_WORKER_HEARTBEAT, NULL);
        aigw_job_t *job = aigw_worker_recv (fix->worker);
        if (job || zclock_mono () >= until)
            return job;
        zmq_pollitem_t item = {zsock_resolve (fix->worker->sock), 0, ZMQ_POLLIN, 0};
        zmq_poll (&item, 1, 5);
    }
}

//  Pump the worker until the broker side gets command CMD; returns the
//  message, identity frame first.
static zmsg_t *
s_test_expect (s_fix_t *fix, byte cmd)
{
    int64_t until = zclock_mono () + S_TEST_WAIT_MS;
    while (zclock_mono () < until) {
        aigw_job_t *job = s_test_job (fix, 0);
        aigw_job_destroy (&job);
        zmsg_t *msg = aigw_bp_expect (fix->broker, AIGW_BP_WORKER_HEADER, cmd, 5);
        if (msg)
            return msg;
    }
    return NULL;
}

//  Send the broker REQUEST for CLIENT and RID to the worker at IDENTITY.
static void
s_test_request (zsock_t *broker, zframe_t *identity, const char *client, const char *rid,
                const char *envelope)
{
    aigw_bp_test_send (broker, identity, AIGW_BP_WORKER_HEADER, AIGW_BP_WORKER_REQUEST, client, rid,
                       envelope, NULL);
}

void
aigw_worker_test (bool verbose)
{
    //  Settings the protocol refuses make no worker.
    aigw_log_level_t level = aigw_log_level ();
    aigw_log_set_level (verbose ? AIGW_LOG_DEBUG : (aigw_log_level_t) -1);
    assert (!aigw_worker_new (S_TEST_ENDPOINT, "bad name", 1, false, 0, 0));
    assert (!aigw_worker_new (S_TEST_ENDPOINT, "svc", 0, false, 0, 0));
    assert (!aigw_worker_new (S_TEST_ENDPOINT, "svc", AIGW_BP_CREDIT_MAX + 1, false, 0, 0));
    assert (!aigw_worker_new (NULL, "svc", 1, false, 0, 0));

    zsock_t *broker = zsock_new_router ("@" S_TEST_ENDPOINT);
    assert (broker);
    aigw_worker_t *worker
        = aigw_worker_new (S_TEST_ENDPOINT, "svc", 3, true, S_TEST_HEARTBEAT_MS, S_TEST_LIVENESS);
    assert (worker && aigw_worker_sock (worker));
    s_fix_t fix = {worker, broker, NULL, false};
    //  READY: service, "<service>-<host>-<pid>-<n>", credit, flags.
    zmsg_t *msg = s_test_expect (&fix, AIGW_BP_WORKER_READY);
    assert (msg && zmsg_size (msg) == 7);
    const char *id = aigw_worker_id (worker);
    assert (strncmp (id, "svc-", 4) == 0 && aigw_bp_worker_id_valid (id, strlen (id)));
    assert (aigw_bp_frame_is (msg, 3, "svc") && aigw_bp_frame_is (msg, 4, id));
    assert (aigw_bp_frame_is (msg, 5, "3") && aigw_bp_frame_is (msg, 6, "R"));
    zframe_t *identity = zframe_dup (zmsg_first (msg));
    fix.identity = identity;
    zmsg_destroy (&msg);
    //  Heartbeats go out every interval.
    msg = s_test_expect (&fix, AIGW_BP_WORKER_HEARTBEAT);
    assert (msg && zmsg_size (msg) == 3);
    zmsg_destroy (&msg);

    //  A request becomes a job; a streamed reply, then LAST.
    s_test_request (broker, identity, "client-1", "rid-1", "envelope");
    aigw_job_t *job = s_test_job (&fix, S_TEST_WAIT_MS);
    assert (job && job->worker == worker && streq (job->request_id, "rid-1"));
    assert (zframe_streq (job->client, "client-1") && zframe_streq (job->envelope, "envelope"));
    char *data = strdup ("chunk");
    assert (aigw_worker_reply (worker, &job, 0, NULL, NULL, &data, 5) == 0);
    assert (job && !data);
    msg = s_test_expect (&fix, AIGW_BP_WORKER_REPLY);
    assert (msg && zmsg_size (msg) == 9);
    assert (aigw_bp_frame_is (msg, 3, "client-1") && aigw_bp_frame_is (msg, 4, "rid-1"));
    assert (aigw_bp_frame_is (msg, 8, "chunk"));
    zmsg_destroy (&msg);
    //  FORWARD needs a valid next service; the job stays the caller's.
    data = strdup ("x");
    assert (aigw_worker_reply (worker, &job, AIGW_REPLY_FORWARD, "bad name", NULL, &data, 1) == -1);
    assert (job && !data);
    data = strdup ("next-envelope");
    assert (aigw_worker_reply (worker, &job, AIGW_REPLY_LAST | AIGW_REPLY_FORWARD, "next", "shard",
                               &data, 13)
            == 0);
    assert (!job);
    msg = s_test_expect (&fix, AIGW_BP_WORKER_REPLY);
    assert (msg && aigw_bp_frame_is (msg, 6, "next") && aigw_bp_frame_is (msg, 7, "shard"));
    zframe_t *flags = zmsg_first (msg);
    for (int i = 0; i < 5; i++)
        flags = zmsg_next (msg);
    assert (zframe_size (flags) == 1
            && *zframe_data (flags) == (AIGW_BP_FLAG_LAST | AIGW_BP_FLAG_FORWARD));
    zmsg_destroy (&msg);

    //  A malformed request (empty request id) is dropped; the next is kept.
    s_test_request (broker, identity, "client-1", "", "envelope");
    s_test_request (broker, identity, "", "oneway-1", "envelope");
    job = s_test_job (&fix, S_TEST_WAIT_MS);
    assert (job && streq (job->request_id, "oneway-1") && zframe_size (job->client) == 0);
    //  A one-way job's plain reply is not sent (the broker would drop it).
    data = strdup ("dropped");
    assert (aigw_worker_reply (worker, &job, AIGW_REPLY_LAST, NULL, NULL, &data, 7) == 0);
    assert (!job);
    //  A one-way request of our own: REPLY with an empty client and FORWARD.
    data = strdup ("store");
    assert (aigw_worker_send_oneway (worker, "cache", "k", "ow-2", &data, 5) == 0 && !data);
    msg = s_test_expect (&fix, AIGW_BP_WORKER_REPLY);
    assert (msg && aigw_bp_frame_is (msg, 3, "") && aigw_bp_frame_is (msg, 4, "ow-2"));
    assert (aigw_bp_frame_is (msg, 6, "cache"));
    zmsg_destroy (&msg);
    data = strdup ("x");
    assert (aigw_worker_send_oneway (worker, NULL, NULL, "ow-3", &data, 1) == -1 && !data);

    //  Reports: sent as one frame, refused past the cap.
    assert (aigw_worker_report (worker, "{\"a\":1}", 7) == 0);
    msg = s_test_expect (&fix, AIGW_BP_WORKER_REPORT);
    assert (msg && zmsg_size (msg) == 4 && aigw_bp_frame_is (msg, 3, "{\"a\":1}"));
    zmsg_destroy (&msg);
    assert (aigw_worker_report (worker, "{}", AIGW_BP_REPORT_MAX + 1) == -1);

    //  The directory: asked with the version held, kept when answered.
    const char *version;
    assert (aigw_worker_directory (worker, &version) == NULL && streq (version, ""));
    aigw_worker_want_directory (worker);
    msg = s_test_expect (&fix, AIGW_BP_WORKER_DIRECTORY);
    assert (msg && zmsg_size (msg) == 4 && aigw_bp_frame_is (msg, 3, ""));
    zmsg_destroy (&msg);
    aigw_bp_test_send (broker, identity, AIGW_BP_WORKER_HEADER, AIGW_BP_WORKER_DIRECTORY, "i-2",
                       "svc w - R\n", NULL);
    int64_t until = zclock_mono () + S_TEST_WAIT_MS;
    while (!aigw_worker_directory (worker, &version) && zclock_mono () < until) {
        job = s_test_job (&fix, 5);
        aigw_job_destroy (&job);
    }
    assert (streq (aigw_worker_directory (worker, &version), "svc w - R\n"));
    assert (streq (version, "i-2"));
    msg = s_test_expect (&fix, AIGW_BP_WORKER_DIRECTORY);
    assert (msg && aigw_bp_frame_is (msg, 3, "i-2"));
    zmsg_destroy (&msg);

    //  DISCONNECT from the broker (it forgot us): READY again.
    aigw_bp_test_send (broker, identity, AIGW_BP_WORKER_HEADER, AIGW_BP_WORKER_DISCONNECT, NULL);
    msg = s_test_expect (&fix, AIGW_BP_WORKER_READY);
    assert (msg);
    zmsg_destroy (&msg);
    //  A peer endpoint: READY again, with it.
    aigw_worker_set_peer (worker, "inproc://aigw-worker-test-peer");
    msg = s_test_expect (&fix, AIGW_BP_WORKER_READY);
    assert (msg && zmsg_size (msg) == 8
            && aigw_bp_frame_is (msg, 7, "inproc://aigw-worker-test-peer"));
    zmsg_destroy (&msg);

    //  Heartbeat loss: the broker stays silent past liveness intervals, and
    //  the worker opens a new socket (a new identity) and registers again.
    zsock_t *sock = aigw_worker_sock (worker);
    fix.silent = true;
    zmsg_t *ready = s_test_expect (&fix, AIGW_BP_WORKER_READY);
    assert (ready && !zframe_eq (zmsg_first (ready), identity));
    assert (aigw_worker_sock (worker) != sock);
    assert (aigw_bp_frame_is (ready, 4, id));  //  same worker id
    zframe_destroy (&identity);
    identity = zframe_dup (zmsg_first (ready));
    fix.identity = identity;
    fix.silent = false;
    zmsg_destroy (&ready);
    //  Requests flow on the new socket.
    s_test_request (broker, identity, "client-2", "rid-2", "after");
    job = s_test_job (&fix, S_TEST_WAIT_MS);
    assert (job && streq (job->request_id, "rid-2"));
    aigw_job_destroy (&job);
    assert (!job);

    //  Destroy says DISCONNECT.
    aigw_worker_destroy (&worker);
    assert (!worker);
    msg = aigw_bp_expect (broker, AIGW_BP_WORKER_HEADER, AIGW_BP_WORKER_DISCONNECT, S_TEST_WAIT_MS);
    assert (msg);
    zmsg_destroy (&msg);
    aigw_worker_destroy (&worker);
    zframe_destroy (&identity);
    zsock_destroy (&broker);
    aigw_log_set_level (level);
    if (verbose)
        printf ("worker: ok\n");
}
