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

#define S_HOSTNAME_MAX 64       //  bytes of the host name in a worker id
#define S_WORKER_ID_SIZE (AIGW_BP_WORKER_ID_MAX + 1)
#define S_CREDIT_SIZE 16        //  bytes for the decimal credit
#define S_WORKER_LINGER_MS 100  //  linger so a final reply outlives destroy

//  Makes worker ids unique within the process.
static atomic_uint s_worker_counter;

struct _aigw_worker_t {
    char *endpoint;             //  broker endpoint
    char *service;              //  service served
    char *worker_id;            //  stable id, the input to shard hashing
    int credit;                 //  requests taken at once
    bool replay_safe;           //  requests may be replayed elsewhere
    int heartbeat_ms;           //  heartbeat interval
    int liveness;               //  silent intervals before the broker is gone
    zsock_t *sock;              //  DEALER to the broker, replaced on reconnect
    int64_t heartbeat_at;       //  monotonic ms when the next heartbeat is due
    int64_t expires_at;         //  monotonic ms past which we reconnect
    int reconnect_ms;           //  backoff before the next reconnect
    char *peer;                 //  our peer endpoint (BP/2), NULL for none
    bool wants_directory;       //  ask the broker for its directory
    char *directory;            //  the latest directory text, NULL before one
    char *directory_version;    //  its version token, "" before one
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
        zmq_send (handle, self->directory_version, strlen (self->directory_version),
                  ZMQ_DONTWAIT);
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
aigw_worker_new (const char *endpoint, const char *service, int credit,
                 bool replay_safe, int heartbeat_ms, int liveness)
{
    if (!endpoint || !service || !aigw_bp_name_valid (service, strlen (service))
        || credit < 1 || credit > AIGW_BP_CREDIT_MAX) {
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
    snprintf (worker_id, sizeof worker_id, "%s-%s-%d-%u", service, hostname,
              (int) getpid (), atomic_fetch_add (&s_worker_counter, 1) + 1);
    self->endpoint = strdup (endpoint);
    self->service = strdup (service);
    self->worker_id = strdup (worker_id);
    self->directory_version = strdup ("");
    self->credit = credit;
    self->replay_safe = replay_safe;
    self->heartbeat_ms = heartbeat_ms > 0 ? heartbeat_ms : AIGW_BP_HEARTBEAT_MS;
    self->liveness = liveness > 0 ? liveness : AIGW_BP_LIVENESS;
    if (!self->endpoint || !self->service || !self->worker_id
        || !(self->sock = s_socket_new (self)) || s_send_ready (self) == -1) {
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
    self->heartbeat_at = 0;     //  ask at the next tick
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
        zmq_msg_t frames[AIGW_BP_SMALL_FRAMES];
        zframe_t *envelope = NULL;
        bool oversized = false;
        int count = aigw_bp_recv (handle, frames, &envelope, &oversized);
        if (count <= 0)
            return NULL;
        s_heard (self);
        aigw_job_t *job = NULL;
        int small = count < AIGW_BP_SMALL_FRAMES ? count : AIGW_BP_SMALL_FRAMES;
        int cmd = count < 2 || oversized
                      ? -1
                      : aigw_bp_command (&frames[0], &frames[1], AIGW_BP_WORKER_HEADER);
        if (cmd == -1)
            aigw_debug ("worker %s: malformed message dropped", self->worker_id);
        else {
            if (cmd == AIGW_BP_WORKER_REQUEST && count == AIGW_BP_SMALL_FRAMES + 1) {
                job = s_job_new (frames, &envelope);
                if (job)
                    job->worker = self;
                if (!job)
                    aigw_debug ("worker %s: malformed request dropped", self->worker_id);
            }
            else if (cmd == AIGW_BP_WORKER_DIRECTORY && count == 4)
                aigw_bp_directory_keep (&frames[2], &frames[3], &self->directory_version,
                                        &self->directory);
            else if (cmd == AIGW_BP_WORKER_DISCONNECT && count == 2) {
                aigw_info ("worker %s: broker asked to register again", self->worker_id);
                s_send_ready (self);
            }
            else if (cmd != AIGW_BP_WORKER_HEARTBEAT || count != 2)
                aigw_debug ("worker %s: unexpected command %d dropped", self->worker_id, cmd);
        }
        for (int i = 0; i < small; i++)
            zmq_msg_close (&frames[i]);
        zframe_destroy (&envelope);
        if (job)
            return job;
    }
}

//  Replace the socket with a new one and register again; the backoff grows
//  while the broker stays silent.
static void
s_reconnect (aigw_worker_t *self, int64_t now)
{
    aigw_info ("worker %s: broker silent, reconnecting to %s (next try in %d ms)",
               self->worker_id, self->endpoint, self->reconnect_ms);
    zsock_t *sock = s_socket_new (self);
    if (sock) {
        //  What is still queued was for a broker that is gone.
        zsock_set_linger (self->sock, 0);
        zsock_destroy (&self->sock);
        self->sock = sock;
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
    int64_t next = self->heartbeat_at < self->expires_at ? self->heartbeat_at
                                                         : self->expires_at;
    return next > now ? (int) (next - now) : 1;
}

//  Send a REPLY: CLIENT (SIZE bytes), RID, FLAGS, NEXT, SHARD, ENVELOPE.
//  Returns 0, or -1 if the socket would not take it.
static int
s_send_reply (aigw_worker_t *self, const void *client, size_t client_size,
              const char *rid, int flags, const char *next, const char *shard,
              zmq_msg_t *envelope)
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
aigw_worker_reply (aigw_worker_t *self, aigw_job_t **job_p, int flags,
                   const char *next_service, const char *shard_key, char **data,
                   size_t size)
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
        aigw_warn ("worker %s: report of %zu bytes refused (at most %d)", self->worker_id,
                   len, AIGW_BP_REPORT_MAX);
        return -1;
    }
    void *handle = zsock_resolve (self->sock);
    if (s_send_head (handle, AIGW_BP_WORKER_REPORT, true) == -1
        || zmq_send (handle, json, len, ZMQ_DONTWAIT) == -1) {
        aigw_warn ("worker %s: report not sent: %s", self->worker_id,
                   zmq_strerror (zmq_errno ()));
        return -1;
    }
    return 0;
}
