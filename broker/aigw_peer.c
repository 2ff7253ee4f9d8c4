/*  aigw_peer: AIGW-BP/2's peer-to-peer data path. */
#include "aigw_peer.h"
#include "aigw_bp.h"
#include "aigw_hex.h"
#include "aigw_log.h"
#include "aigw_stats.h"

#include <errno.h>
#include <inttypes.h>

//  Most frames a peer message may have (a DONE batch: two per request).
#define S_FRAMES_MAX (2 + 2 * AIGW_BP_DONE_BATCH)
//  How long a DONE may wait for others to go with it, ms. Every message
//  wakes two or three threads on each side (ours, ZeroMQ's I/O threads):
//  one DONE per request would cost as much as the request's own hop. A
//  DONE only ends tracking; nothing waits on it.
#define S_DONE_DELAY_MS 10
//  A tracked request is forgotten this long after its deadline: the origin
//  answered 504 by then.
#define S_TRACK_GRACE_MS AIGW_BP_GRACE_MS
//  Linger of links, so a reply sent just before destroy still leaves.
#define S_LINGER_MS 100
//  Separator of origin and request id in a tracking key.
#define S_KEY_SEP '\x1f'
//  Hex digits of a peer's token, after '#' in its address (section 8).
#define S_TOKEN_HEX 16
//  A link to a peer the directory does not list (an origin) is closed
//  after this long with nothing to send.
#define S_LINK_IDLE_MS 60000
//  At most one warning about misdirected messages this often.
#define S_MISDIRECTED_WARN_MS 10000

//  One live worker in the directory.
typedef struct {
    char *service;     //  its stage
    char *worker_id;   //  its id, input to sharding
    char *endpoint;    //  its peer endpoint
    bool replay_safe;  //  its requests may be sent again elsewhere
    uint64_t id_hash;  //  aigw_bp_id_hash (worker_id)
} s_entry_t;

//  A parsed directory: entries, and per service the next in turn.
typedef struct {
    zlistx_t *entries;  //  s_entry_t, in the broker's order
    zhashx_t *turns;    //  service -> size_t * round-robin position
} s_directory_t;

//  A DEALER to one peer, and what waits for it.
typedef struct {
    char *endpoint;    //  the peer's address (endpoint '#' token)
    zsock_t *sock;     //  our DEALER connected to it
    zlistx_t *outbox;  //  s_out_t refused by the socket, oldest first
    int64_t used_ms;   //  when a message was last given to it, Unix ms
} s_link_t;

//  A message waiting in an outbox.
typedef struct {
    zmsg_t *msg;    //  the message
    char *ack_to;   //  once it is sent, tell this sender DONE, or NULL
    char *ack_key;  //  for this tracking key
} s_out_t;

//  A request we sent and track until DONE.
typedef struct {
    char *key;            //  origin S_KEY_SEP request id
    char *service;        //  its stage
    char *shard;          //  its shard key, "" for none
    char *origin;         //  where its replies go
    char *request_id;     //  the origin's id
    char *later;          //  the stages after it on its route
    char *ack_to;         //  the previous sender, told DONE once it left
    char *worker_id;      //  the worker it went to
    bool replay_safe;     //  it may be sent again elsewhere
    int64_t deadline_ms;  //  absolute, Unix ms
    zframe_t *envelope;   //  a copy, to send again
} s_track_t;

struct _aigw_peer_t {
    zsock_t *inbox;               //  our ROUTER
    char *endpoint;               //  our address: where others reach it, '#', token
    char token[S_TOKEN_HEX + 1];  //  ours, drawn at bind
    aigw_stat_t *misdirected;     //  messages meant for an earlier peer here
    int64_t misdirected_warn_at;  //  next warning allowed, Unix ms
    zhashx_t *links;              //  endpoint -> s_link_t
    zhashx_t *tracked;            //  key -> s_track_t
    zhashx_t *dones;              //  sender endpoint -> zlistx_t of keys
    size_t dones_count;           //  keys waiting in dones
    int64_t dones_due;            //  when they must go, Unix ms (0: none wait)
    s_directory_t *directory;     //  the broker's latest, merged while in grace
    char *version;                //  its version token
    char *text;                   //  its text, as received
    s_directory_t *old;           //  a restarted broker's predecessor's, in grace
    int64_t merge_until;          //  end of the grace, Unix ms; 0 = none
    int64_t sweep_at;             //  next look for tracking past its grace, Unix ms
};

//  How often tracked requests past their deadline and grace are looked for.
#define S_SWEEP_MS 1000

static int64_t
s_now_ms (void)
{
    return zclock_time ();
}

//  --------------------------------------------------------------------------
//  Directory

static void
s_entry_destroy (s_entry_t **self_p)
{
    s_entry_t *self = *self_p;
    if (!self)
        return;
    free (self->service);
    free (self->worker_id);
    free (self->endpoint);
    free (self);
    *self_p = NULL;
}

static void
s_directory_destroy (s_directory_t **self_p)
{
    s_directory_t *self = *self_p;
    if (!self)
        return;
    zlistx_destroy (&self->entries);
    zhashx_destroy (&self->turns);
    free (self);
    *self_p = NULL;
}

//  An entry for WORKER_ID in SELF, or NULL.
static s_entry_t *
s_directory_find (s_directory_t *self, const char *worker_id)
{
    for (s_entry_t *e = (s_entry_t *) zlistx_first (self->entries); e;
         e = (s_entry_t *) zlistx_next (self->entries))
        if (streq (e->worker_id, worker_id))
            return e;
    return NULL;
}

//  Parse TEXT; lines that do not parse, and workers without an endpoint
//  (reachable through the broker only), are left out.
static s_directory_t *
s_directory_parse (const char *text)
{
    s_directory_t *self = (s_directory_t *) calloc (1, sizeof *self);
    assert (self);
    self->entries = zlistx_new ();
    zlistx_set_destructor (self->entries, (zlistx_destructor_fn *) s_entry_destroy);
    self->turns = zhashx_new ();
    zhashx_set_destructor (self->turns, (zhashx_destructor_fn *) zstr_free);
    for (const char *line = text; line && *line;) {
        const char *end = strchr (line, '\n');
        size_t len = end ? (size_t) (end - line) : strlen (line);
        char service[AIGW_BP_NAME_MAX + 1], id[AIGW_BP_WORKER_ID_MAX + 1],
            endpoint[AIGW_BP_ENDPOINT_MAX + 1], flags[8];
        char *copy = strndup (line, len);
        if (copy && sscanf (copy, "%64s %255s %255s %7s", service, id, endpoint, flags) == 4
            && !streq (endpoint, "-")) {
            s_entry_t *e = (s_entry_t *) calloc (1, sizeof *e);
            assert (e);
            e->service = strdup (service);
            e->worker_id = strdup (id);
            e->endpoint = strdup (endpoint);
            e->replay_safe = strchr (flags, AIGW_BP_REPLAY_SAFE_FLAG) != NULL;
            e->id_hash = aigw_bp_id_hash (id);
            zlistx_add_end (self->entries, e);
        }
        free (copy);
        line = end ? end + 1 : NULL;
    }
    return self;
}

//  Copy OTHER's entries that SELF lacks into SELF.
static void
s_directory_merge (s_directory_t *self, s_directory_t *other)
{
    for (s_entry_t *e = (s_entry_t *) zlistx_first (other->entries); e;
         e = (s_entry_t *) zlistx_next (other->entries))
        if (!s_directory_find (self, e->worker_id)) {
            s_entry_t *copy = (s_entry_t *) calloc (1, sizeof *copy);
            assert (copy);
            *copy = *e;
            copy->service = strdup (e->service);
            copy->worker_id = strdup (e->worker_id);
            copy->endpoint = strdup (e->endpoint);
            zlistx_add_end (self->entries, copy);
        }
}

//  The worker of SERVICE for SHARD: its owner by rendezvous hashing, or the
//  next in turn when SHARD is empty. NULL when SERVICE has none.
static s_entry_t *
s_directory_pick (s_directory_t *self, const char *service, const char *shard)
{
    if (!self)
        return NULL;
    uint64_t key_hash = shard && *shard ? aigw_bp_fnv1a (shard, strlen (shard)) : 0;
    size_t count = 0;
    s_entry_t *best = NULL;
    uint64_t best_score = 0;
    for (s_entry_t *e = (s_entry_t *) zlistx_first (self->entries); e;
         e = (s_entry_t *) zlistx_next (self->entries)) {
        if (!streq (e->service, service))
            continue;
        count++;
        if (shard && *shard) {
            uint64_t score = aigw_bp_shard_score (key_hash, e->id_hash);
            if (!best || score > best_score
                || (score == best_score && strcmp (e->worker_id, best->worker_id) > 0)) {
                best = e;
                best_score = score;
            }
        }
    }
    if (count == 0 || (shard && *shard))
        return best;
    size_t *turn = (size_t *) zhashx_lookup (self->turns, service);
    if (!turn) {
        turn = (size_t *) calloc (1, sizeof *turn);
        assert (turn);
        zhashx_insert (self->turns, service, turn);
    }
    size_t want = (*turn)++ % count, at = 0;
    for (s_entry_t *e = (s_entry_t *) zlistx_first (self->entries); e;
         e = (s_entry_t *) zlistx_next (self->entries))
        if (streq (e->service, service) && at++ == want)
            return e;
    return NULL;
}

//  --------------------------------------------------------------------------
//  Links and sending

static void
s_link_destroy (s_link_t **self_p)
{
    s_link_t *self = *self_p;
    if (!self)
        return;
    zsock_destroy (&self->sock);
    zlistx_destroy (&self->outbox);
    free (self->endpoint);
    free (self);
    *self_p = NULL;
}

static void
s_out_free (void **item)
{
    s_out_t *out = (s_out_t *) *item;
    if (out) {
        zmsg_destroy (&out->msg);
        free (out->ack_to);
        free (out->ack_key);
        free (out);
    }
    *item = NULL;
}

static void s_queue_done (aigw_peer_t *self, const char *sender, char *key);

//  The link to ADDRESS, made on first use; NULL if it cannot connect.
static s_link_t *
s_link (aigw_peer_t *self, const char *address)
{
    s_link_t *link = (s_link_t *) zhashx_lookup (self->links, address);
    if (link)
        return link;
    const char *hash = strrchr (address, '#');
    if (!hash || strlen (hash + 1) != S_TOKEN_HEX) {
        aigw_warn ("peer: %s is no peer address (endpoint#token)", address);
        return NULL;
    }
    link = (s_link_t *) calloc (1, sizeof *link);
    assert (link);
    link->endpoint = strdup (address);
    link->outbox = zlistx_new ();
    zlistx_set_destructor (link->outbox, s_out_free);
    link->sock = zsock_new (ZMQ_DEALER);
    if (link->sock) {
        zsock_set_sndhwm (link->sock, AIGW_BP_HWM);
        zsock_set_linger (link->sock, S_LINGER_MS);
        //  Nothing queues inside ZeroMQ for a peer not (yet) connected: it
        //  waits in our outbox, where a death can fail it over.
        zsock_set_immediate (link->sock, 1);
        //  Their token, then ours: a stranger that took their endpoint
        //  after a death drops what this link still sends.
        char routing_id[2 * S_TOKEN_HEX + 1];
        snprintf (routing_id, sizeof routing_id, "%s%s", hash + 1, self->token);
        zsock_set_identity (link->sock, routing_id);
        if (zsock_connect (link->sock, "%.*s", (int) (hash - address), address) == -1)
            zsock_destroy (&link->sock);
    }
    if (!link->sock) {
        aigw_warn ("peer: cannot connect to %s", address);
        s_link_destroy (&link);
        return NULL;
    }
    zhashx_insert (self->links, address, link);
    return link;
}

//  Send MSG on LINK's socket if it takes it now (MSG stays the caller's).
//  A message is all or nothing: ZeroMQ refuses its first frame (EAGAIN),
//  or, when the peer's pipe ends mid-message (it died), a later frame.
//  Then it has rolled back the frames it took and drops the message's
//  remaining frames as they come: they are sent so that the next message
//  starts clean. libzmq 4.3.4 says EAGAIN and drops only what follows the
//  refused frame; later versions say EFAULT and drop up to a frame
//  without MORE, so a refused last frame needs one empty frame to end it.
static bool
s_try_send (s_link_t *link, zmsg_t *msg)
{
    void *handle = zsock_resolve (link->sock);
    size_t frames = zmsg_size (msg);
    zframe_t *frame = zmsg_first (msg);
    for (size_t i = 0; frame; i++, frame = zmsg_next (msg)) {
        int flags = ZFRAME_REUSE | ZFRAME_DONTWAIT | (i + 1 < frames ? ZFRAME_MORE : 0);
        if (zframe_send (&frame, handle, flags) == 0)
            continue;
        int refused = errno;
        if (i > 0 && i + 1 < frames)
            while ((frame = zmsg_next (msg))) {
                i++;
                zframe_send (&frame, handle,
                             ZFRAME_REUSE | ZFRAME_DONTWAIT | (i + 1 < frames ? ZFRAME_MORE : 0));
            }
        else if (i > 0 && refused == EFAULT) {
            zframe_t *end = zframe_new_empty ();
            if (zframe_send (&end, handle, ZFRAME_DONTWAIT) == -1)
                zframe_destroy (&end);
        }
        return false;
    }
    return true;
}

//  Send MSG (taken) on LINK now, or queue it behind what waits.
//  ACK_TO (may be NULL) hears DONE for ACK_KEY once the message has left:
//  a request forwarded must not be forgotten by its previous sender while
//  it still waits here, or a death would lose it.
static void
s_link_send (aigw_peer_t *self, s_link_t *link, zmsg_t **msg_p, const char *ack_to,
             const char *ack_key)
{
    link->used_ms = s_now_ms ();
    if (zlistx_size (link->outbox) == 0 && s_try_send (link, *msg_p)) {
        zmsg_destroy (msg_p);
        if (ack_to)
            s_queue_done (self, ack_to, strdup (ack_key));
        return;
    }
    s_out_t *out = (s_out_t *) calloc (1, sizeof *out);
    assert (out);
    out->msg = *msg_p;
    *msg_p = NULL;
    if (ack_to) {
        out->ack_to = strdup (ack_to);
        out->ack_key = strdup (ack_key);
    }
    zlistx_add_end (link->outbox, out);
}

//  Send what waits on LINK until the socket refuses again.
static void
s_link_flush (aigw_peer_t *self, s_link_t *link)
{
    s_out_t *out;
    while ((out = (s_out_t *) zlistx_first (link->outbox)) && s_try_send (link, out->msg)) {
        if (out->ack_to) {
            s_queue_done (self, out->ack_to, out->ack_key);
            out->ack_key = NULL;
        }
        zlistx_delete (link->outbox, zlistx_cursor (link->outbox));
    }
}

//  Send MSG (taken) to ENDPOINT; see s_link_send for ACK_TO.
static void
s_send (aigw_peer_t *self, const char *endpoint, zmsg_t **msg_p, const char *ack_to,
        const char *ack_key)
{
    s_link_t *link = s_link (self, endpoint);
    if (link)
        s_link_send (self, link, msg_p, ack_to, ack_key);
    zmsg_destroy (msg_p);
}

//  A new message with the peer header and CMD.
static zmsg_t *
s_msg_new (byte cmd)
{
    zmsg_t *msg = zmsg_new ();
    zmsg_addmem (msg, AIGW_BP_PEER_HEADER, AIGW_BP_HEADER_SIZE);
    zmsg_addmem (msg, &cmd, 1);
    return msg;
}

//  True when ENTRY's stage, and those of TRACK's later stages that ENTRY's
//  endpoint serves too, are all replay-safe.
static bool
s_replay_safe (aigw_peer_t *self, s_track_t *track, s_entry_t *entry)
{
    if (!entry->replay_safe)
        return false;
    for (s_entry_t *e = (s_entry_t *) zlistx_first (self->directory->entries); e;
         e = (s_entry_t *) zlistx_next (self->directory->entries)) {
        //  The cursor is the directory's own: ENTRY is one of its items.
        if (!e->replay_safe && streq (e->endpoint, entry->endpoint)) {
            size_t len = strlen (e->service);
            for (const char *p = track->later; p && *p;) {
                const char *end = strchr (p, ',');
                size_t n = end ? (size_t) (end - p) : strlen (p);
                if (n == len && memcmp (p, e->service, len) == 0)
                    return false;
                p = end ? end + 1 : NULL;
            }
        }
    }
    return true;
}

//  Send TRACK's request to ENTRY and note it there.
static void
s_track_send (aigw_peer_t *self, s_track_t *track, s_entry_t *entry)
{
    free (track->worker_id);
    track->worker_id = strdup (entry->worker_id);
    track->replay_safe = s_replay_safe (self, track, entry);
    char deadline[24];
    snprintf (deadline, sizeof deadline, "%" PRId64, track->deadline_ms);
    zmsg_t *msg = s_msg_new (AIGW_BP_PEER_REQUEST);
    zmsg_addstr (msg, track->service);
    zmsg_addstr (msg, track->origin);
    zmsg_addstr (msg, track->request_id);
    zmsg_addstr (msg, self->endpoint);
    zmsg_addstr (msg, deadline);
    zframe_t *envelope = zframe_dup (track->envelope);
    zmsg_append (msg, &envelope);
    s_send (self, entry->endpoint, &msg, track->ack_to, track->ack_to ? track->key : NULL);
    free (track->ack_to);
    track->ack_to = NULL;
}

static void
s_track_destroy (s_track_t **self_p)
{
    s_track_t *self = *self_p;
    if (!self)
        return;
    free (self->key);
    free (self->service);
    free (self->shard);
    free (self->later);
    free (self->ack_to);
    free (self->origin);
    free (self->request_id);
    free (self->worker_id);
    zframe_destroy (&self->envelope);
    free (self);
    *self_p = NULL;
}

//  --------------------------------------------------------------------------
//  The class

aigw_peer_t *
aigw_peer_new (const char *bind, const char *advertise, char *err, size_t err_size)
{
    aigw_peer_t *self = (aigw_peer_t *) calloc (1, sizeof *self);
    assert (self);
    self->links = zhashx_new ();
    zhashx_set_destructor (self->links, (zhashx_destructor_fn *) s_link_destroy);
    self->tracked = zhashx_new ();
    zhashx_set_destructor (self->tracked, (zhashx_destructor_fn *) s_track_destroy);
    self->dones = zhashx_new ();
    zhashx_set_destructor (self->dones, (zhashx_destructor_fn *) zlistx_destroy);
    self->version = strdup ("");
    self->inbox = zsock_new (ZMQ_ROUTER);
    if (!self->inbox) {
        snprintf (err, err_size, "peer: cannot make a socket");
        aigw_peer_destroy (&self);
        return NULL;
    }
    zsock_set_rcvhwm (self->inbox, AIGW_BP_HWM);
    zsock_set_maxmsgsize (self->inbox, AIGW_BP_FRAME_MAX);
    //  A link that reconnects after a network blip takes its routing id
    //  back rather than being refused while the old pipe lingers.
    zsock_set_router_handover (self->inbox, 1);
    aigw_hex_random (S_TOKEN_HEX / 2, self->token);
    self->misdirected = aigw_stats_counter (
        "aigw_peer_misdirected_total", "",
        "Peer messages dropped unread: meant for an earlier process at this endpoint.");
    //  libzmq's own bind, not CZMQ's: a wildcard port is the one the
    //  system picks, not the first free one above 49152 (a port a peer
    //  freed a moment ago).
    if (zmq_bind (zsock_resolve (self->inbox), bind) == -1) {
        snprintf (err, err_size, "peer: cannot bind %s: %s", bind, zmq_strerror (zmq_errno ()));
        aigw_peer_destroy (&self);
        return NULL;
    }
    char *bound = zsock_last_endpoint (self->inbox);
    if (advertise && *advertise && bound && strncmp (bound, "tcp://", 6) == 0) {
        //  tcp://HOST:PORT: the port we got, on the host others can reach.
        const char *port = strrchr (bound, ':');
        self->endpoint = zsys_sprintf ("tcp://%s%s#%s", advertise, port ? port : "", self->token);
    }
    else if (bound)
        self->endpoint = zsys_sprintf ("%s#%s", bound, self->token);
    zstr_free (&bound);
    if (!self->endpoint || strlen (self->endpoint) > AIGW_BP_ENDPOINT_MAX) {
        snprintf (err, err_size, "peer: bad endpoint for %s", bind);
        aigw_peer_destroy (&self);
    }
    return self;
}

void
aigw_peer_destroy (aigw_peer_t **self_p)
{
    aigw_peer_t *self = *self_p;
    if (!self)
        return;
    zhashx_destroy (&self->tracked);
    zhashx_destroy (&self->dones);
    zhashx_destroy (&self->links);
    s_directory_destroy (&self->directory);
    s_directory_destroy (&self->old);
    zsock_destroy (&self->inbox);
    free (self->endpoint);
    free (self->version);
    free (self->text);
    free (self);
    *self_p = NULL;
}

const char *
aigw_peer_endpoint (aigw_peer_t *self)
{
    return self->endpoint;
}

int
aigw_peer_directory_live (const char *text, const char *service)
{
    s_directory_t *directory = s_directory_parse (text);
    int live = 0;
    for (s_entry_t *e = (s_entry_t *) zlistx_first (directory->entries); e;
         e = (s_entry_t *) zlistx_next (directory->entries))
        live += streq (e->service, service);
    s_directory_destroy (&directory);
    return live;
}

bool
aigw_peer_has_directory (aigw_peer_t *self)
{
    return self->directory != NULL;
}

//  Fail over every tracked request whose worker the directory lost: send
//  it again when its stage is replay-safe and time is left, else answer its
//  origin 503.
static void
s_failover (aigw_peer_t *self)
{
    int64_t now = s_now_ms ();
    zlistx_t *keys = zhashx_keys (self->tracked);
    for (char *key = (char *) zlistx_first (keys); key; key = (char *) zlistx_next (keys)) {
        s_track_t *track = (s_track_t *) zhashx_lookup (self->tracked, key);
        if (!track || s_directory_find (self->directory, track->worker_id))
            continue;
        s_entry_t *next = track->replay_safe && now < track->deadline_ms
                              ? s_directory_pick (self->directory, track->service, track->shard)
                              : NULL;
        if (next) {
            aigw_info ("peer: %s died; request %s sent again to %s", track->worker_id,
                       track->request_id, next->worker_id);
            s_track_send (self, track, next);
            continue;
        }
        aigw_warn ("peer: %s died holding request %s", track->worker_id, track->request_id);
        aigw_peer_error (self, track->origin, track->request_id, 503, "The stage's worker died.");
        zhashx_delete (self->tracked, key);
    }
    zlistx_destroy (&keys);
}

//  True when a worker of SELF (may be NULL) is reached at ADDRESS. Uses
//  SELF's list cursor.
static bool
s_directory_lists (s_directory_t *self, const char *address)
{
    for (s_entry_t *e = self ? (s_entry_t *) zlistx_first (self->entries) : NULL; e;
         e = (s_entry_t *) zlistx_next (self->entries))
        if (streq (e->endpoint, address))
            return true;
    return false;
}

//  Drop the links to endpoints PREV listed and the directory no longer
//  does: what waits in their outboxes was failed over above. Links to
//  origins (edges, never listed) stay.
static void
s_drop_links (aigw_peer_t *self, s_directory_t *prev)
{
    for (s_entry_t *e = prev ? (s_entry_t *) zlistx_first (prev->entries) : NULL; e;
         e = (s_entry_t *) zlistx_next (prev->entries))
        if (!s_directory_lists (self->directory, e->endpoint))
            zhashx_delete (self->links, e->endpoint);
}

//  Close links to peers the directory does not list (origins) that had
//  nothing to send for S_LINK_IDLE_MS: an edge that went away leaves no
//  link behind reconnecting for ever.
static void
s_drop_idle_links (aigw_peer_t *self, int64_t now)
{
    zlistx_t *idle = zlistx_new ();
    zlistx_set_duplicator (idle, (zlistx_duplicator_fn *) strdup);
    zlistx_set_destructor (idle, (zlistx_destructor_fn *) zstr_free);
    for (s_link_t *link = (s_link_t *) zhashx_first (self->links); link;
         link = (s_link_t *) zhashx_next (self->links)) {
        if (zlistx_size (link->outbox) == 0 && now - link->used_ms >= S_LINK_IDLE_MS
            && !s_directory_lists (self->directory, link->endpoint))
            zlistx_add_end (idle, link->endpoint);
    }
    for (char *address = (char *) zlistx_first (idle); address;
         address = (char *) zlistx_next (idle))
        zhashx_delete (self->links, address);
    zlistx_destroy (&idle);
}

//  Rebuild the directory from the latest text, merged with the previous
//  broker's while in grace.
static void
s_directory_rebuild (aigw_peer_t *self)
{
    s_directory_t *fresh = s_directory_parse (self->text);
    if (self->old && s_now_ms () < self->merge_until)
        s_directory_merge (fresh, self->old);
    else
        s_directory_destroy (&self->old);
    s_directory_t *prev = self->directory;
    self->directory = fresh;
    s_failover (self);
    s_drop_links (self, prev);
    s_directory_destroy (&prev);
}

void
aigw_peer_set_directory (aigw_peer_t *self, const char *version, const char *text)
{
    if (!version || !text || streq (version, self->version))
        return;
    const char *dash = strchr (version, '-');
    size_t instance = dash ? (size_t) (dash - version) : strlen (version);
    bool restarted
        = *self->version
          && (strlen (self->version) < instance || strncmp (self->version, version, instance) != 0
              || self->version[instance] != '-');
    if (restarted && self->directory) {
        //  A new broker knows only the workers that registered again so
        //  far: keep the others for a while rather than fail them over.
        aigw_info ("peer: the broker restarted; keeping its predecessor's directory for %d ms",
                   AIGW_BP_DIRECTORY_GRACE_MS);
        s_directory_destroy (&self->old);
        self->old = self->directory;
        self->directory = NULL;
        self->merge_until = s_now_ms () + AIGW_BP_DIRECTORY_GRACE_MS;
    }
    free (self->version);
    free (self->text);
    self->version = strdup (version);
    self->text = strdup (text);
    s_directory_rebuild (self);
}

bool
aigw_peer_owns (aigw_peer_t *self, const char *service, const char *shard, const char *worker_id)
{
    s_entry_t *owner = s_directory_pick (self->directory, service, shard);
    return !owner || streq (owner->worker_id, worker_id);
}

const char *
aigw_peer_owner (aigw_peer_t *self, const char *service, const char *shard)
{
    s_entry_t *owner = s_directory_pick (self->directory, service, shard);
    return owner ? owner->worker_id : NULL;
}

int
aigw_peer_request (aigw_peer_t *self, const char *service, const char *shard, const char *later,
                   const char *origin, const char *request_id, const char *ack_to,
                   int64_t deadline_ms, char **data, size_t size)
{
    s_entry_t *entry = s_directory_pick (self->directory, service, shard);
    if (!entry) {
        free (*data);
        *data = NULL;
        return -1;
    }
    s_track_t *track = (s_track_t *) calloc (1, sizeof *track);
    assert (track);
    track->key = zsys_sprintf ("%s%c%s", origin, S_KEY_SEP, request_id);
    track->service = strdup (service);
    track->shard = strdup (shard ? shard : "");
    track->later = strdup (later ? later : "");
    track->ack_to = ack_to && *ack_to ? strdup (ack_to) : NULL;
    track->origin = strdup (origin);
    track->request_id = strdup (request_id);
    track->deadline_ms = deadline_ms;
    track->envelope = zframe_new (*data, size);
    free (*data);
    *data = NULL;
    s_track_send (self, track, entry);
    //  A key seen again (a request that came back to us) replaces the old.
    zhashx_update (self->tracked, track->key, track);
    return 0;
}

int
aigw_peer_oneway (aigw_peer_t *self, const char *service, const char *shard, const char *request_id,
                  char **data, size_t size)
{
    s_entry_t *entry = s_directory_pick (self->directory, service, shard);
    if (!entry) {
        free (*data);
        *data = NULL;
        return -1;
    }
    zmsg_t *msg = s_msg_new (AIGW_BP_PEER_ONEWAY);
    zmsg_addstr (msg, service);
    zmsg_addstr (msg, request_id ? request_id : "");
    zmsg_addmem (msg, *data, size);
    free (*data);
    *data = NULL;
    s_send (self, entry->endpoint, &msg, NULL, NULL);
    return 0;
}

void
aigw_peer_reply (aigw_peer_t *self, const char *origin, const char *request_id, bool last,
                 char **data, size_t size)
{
    zmsg_t *msg = s_msg_new (AIGW_BP_PEER_REPLY);
    zmsg_addstr (msg, request_id);
    byte flags = last ? 1 : 0;
    zmsg_addmem (msg, &flags, 1);
    zmsg_addmem (msg, *data, size);
    free (*data);
    *data = NULL;
    s_send (self, origin, &msg, NULL, NULL);
}

char *
aigw_peer_request_key (const char *origin, const char *request_id)
{
    return zsys_sprintf ("%s/%s", origin, request_id);
}

//  Whether LIST (comma-separated) names NAME.
static bool
s_list_has (const char *list, const char *name)
{
    size_t len = strlen (name);
    for (const char *p = list; p && *p;) {
        const char *end = strchr (p, ',');
        size_t n = end ? (size_t) (end - p) : strlen (p);
        if (n == len && memcmp (p, name, len) == 0)
            return true;
        p = end ? end + 1 : NULL;
    }
    return false;
}

void
aigw_peer_cancel (aigw_peer_t *self, const char *keyed, const char *any, const char *origin,
                  const char *request_id)
{
    //  A cancel is not a death: what we sent of it is not sent again.
    char *tracked = zsys_sprintf ("%s%c%s", origin, S_KEY_SEP, request_id);
    zhashx_delete (self->tracked, tracked);
    zstr_free (&tracked);
    if (!self->directory)
        return;
    //  Every endpoint that may hold it, once: a process runs many stages.
    zhashx_t *endpoints = zhashx_new ();
    char *key = aigw_peer_request_key (origin, request_id);
    for (const char *p = keyed; p && *p;) {
        const char *end = strchr (p, ',');
        char *service = strndup (p, end ? (size_t) (end - p) : strlen (p));
        assert (service);
        s_entry_t *entry = s_directory_pick (self->directory, service, key);
        if (entry)
            zhashx_update (endpoints, entry->endpoint, entry);
        free (service);
        p = end ? end + 1 : NULL;
    }
    zstr_free (&key);
    //  A replay-safe stage takes requests in turn or by a shard key of its
    //  own: any of its workers may hold this one.
    for (s_entry_t *e = (s_entry_t *) zlistx_first (self->directory->entries); e;
         e = (s_entry_t *) zlistx_next (self->directory->entries))
        if (s_list_has (any, e->service))
            zhashx_update (endpoints, e->endpoint, e);
    for (s_entry_t *e = (s_entry_t *) zhashx_first (endpoints); e;
         e = (s_entry_t *) zhashx_next (endpoints)) {
        zmsg_t *msg = s_msg_new (AIGW_BP_PEER_CANCEL);
        zmsg_addstr (msg, origin);
        zmsg_addstr (msg, request_id);
        s_send (self, e->endpoint, &msg, NULL, NULL);
    }
    zhashx_destroy (&endpoints);
}

void
aigw_peer_error (aigw_peer_t *self, const char *origin, const char *request_id, int status,
                 const char *text)
{
    zmsg_t *msg = s_msg_new (AIGW_BP_PEER_ERROR);
    zmsg_addstr (msg, request_id);
    zmsg_addstrf (msg, "%d", status);
    zmsg_addstr (msg, text);
    s_send (self, origin, &msg, NULL, NULL);
}

//  Queue a DONE for KEY (taken) to SENDER.
static void
s_queue_done (aigw_peer_t *self, const char *sender, char *key)
{
    zlistx_t *keys = (zlistx_t *) zhashx_lookup (self->dones, sender);
    if (!keys) {
        keys = zlistx_new ();
        zlistx_set_destructor (keys, (zlistx_destructor_fn *) zstr_free);
        zhashx_insert (self->dones, sender, keys);
    }
    zlistx_add_end (keys, key);
    if (self->dones_count++ == 0)
        self->dones_due = s_now_ms () + S_DONE_DELAY_MS;
}

void
aigw_peer_done (aigw_peer_t *self, const char *sender, const char *origin, const char *request_id)
{
    if (sender && *sender)
        s_queue_done (self, sender, zsys_sprintf ("%s%c%s", origin, S_KEY_SEP, request_id));
}

int
aigw_peer_pollitems (aigw_peer_t *self, zmq_pollitem_t *items, int max)
{
    int count = 0;
    if (count < max)
        items[count++] = (zmq_pollitem_t){zsock_resolve (self->inbox), 0, ZMQ_POLLIN, 0};
    for (s_link_t *link = (s_link_t *) zhashx_first (self->links); link && count < max;
         link = (s_link_t *) zhashx_next (self->links))
        if (zlistx_size (link->outbox))
            items[count++] = (zmq_pollitem_t){zsock_resolve (link->sock), 0, ZMQ_POLLOUT, 0};
    return count;
}

int
aigw_peer_timeout (aigw_peer_t *self)
{
    if (!self->dones_count)
        return -1;
    int64_t wait = self->dones_due - s_now_ms ();
    return wait > 0 ? (int) wait : 0;
}

//  Send the DONEs that wait, one message per sender and batch, once they
//  are due or a batch is full.
static void
s_flush_dones (aigw_peer_t *self)
{
    if (!self->dones_count
        || (self->dones_count < AIGW_BP_DONE_BATCH && s_now_ms () < self->dones_due))
        return;
    for (zlistx_t *keys = (zlistx_t *) zhashx_first (self->dones); keys;
         keys = (zlistx_t *) zhashx_next (self->dones)) {
        const char *sender = (const char *) zhashx_cursor (self->dones);
        while (zlistx_size (keys)) {
            zmsg_t *msg = s_msg_new (AIGW_BP_PEER_DONE);
            char *key;
            for (int n = 0; n < AIGW_BP_DONE_BATCH && (key = (char *) zlistx_detach (keys, NULL));
                 n++) {
                char *sep = strchr (key, S_KEY_SEP);
                zmsg_addmem (msg, key, sep ? (size_t) (sep - key) : strlen (key));
                zmsg_addstr (msg, sep ? sep + 1 : "");
                free (key);
            }
            s_send (self, sender, &msg, NULL, NULL);
        }
    }
    zhashx_purge (self->dones);
    self->dones_count = 0;
    self->dones_due = 0;
}

void
aigw_peer_process (aigw_peer_t *self, zmq_pollitem_t *items, int count)
{
    for (s_link_t *link = (s_link_t *) zhashx_first (self->links); link;
         link = (s_link_t *) zhashx_next (self->links))
        if (zlistx_size (link->outbox))
            s_link_flush (self, link);
    s_flush_dones (self);
    int64_t now = s_now_ms ();
    if (self->old && now >= self->merge_until && self->text)
        s_directory_rebuild (self);
    if (now >= self->sweep_at) {
        //  Tracking whose DONE never came (its receiver forwarded it, then
        //  the DONE was lost with a link): the origin answered 504 long ago.
        self->sweep_at = now + S_SWEEP_MS;
        zlistx_t *keys = zhashx_keys (self->tracked);
        for (char *key = (char *) zlistx_first (keys); key; key = (char *) zlistx_next (keys)) {
            s_track_t *track = (s_track_t *) zhashx_lookup (self->tracked, key);
            if (track && track->deadline_ms + S_TRACK_GRACE_MS < now)
                zhashx_delete (self->tracked, key);
        }
        zlistx_destroy (&keys);
        s_drop_idle_links (self, now);
    }
}

//  A DONE batch from a receiver: forget those requests.
static void
s_take_done (aigw_peer_t *self, zmsg_t *msg)
{
    zframe_t *origin;
    while ((origin = zmsg_next (msg))) {
        zframe_t *rid = zmsg_next (msg);
        if (!rid)
            break;
        char *key
            = zsys_sprintf ("%.*s%c%.*s", (int) zframe_size (origin), (char *) zframe_data (origin),
                            S_KEY_SEP, (int) zframe_size (rid), (char *) zframe_data (rid));
        zhashx_delete (self->tracked, key);
        zstr_free (&key);
    }
}

//  Frame I of MSG as a new string, or NULL.
static char *
s_str (zmsg_t *msg, size_t i)
{
    zframe_t *frame = zmsg_first (msg);
    for (size_t n = 0; frame && n < i; n++)
        frame = zmsg_next (msg);
    return frame ? zframe_strdup (frame) : NULL;
}

aigw_peer_event_t *
aigw_peer_recv (aigw_peer_t *self)
{
    while (true) {
        zmsg_t *msg = zmsg_recv_nowait (self->inbox);
        if (!msg)
            return NULL;
        //  [identity] header cmd ...: the identity starts with the token
        //  of the peer the sender meant.
        zframe_t *identity = zmsg_pop (msg);
        bool ours = identity && zframe_size (identity) == 2 * S_TOKEN_HEX
                    && memcmp (zframe_data (identity), self->token, S_TOKEN_HEX) == 0;
        zframe_destroy (&identity);
        if (!ours) {
            aigw_stat_add (self->misdirected, 1);
            int64_t now = s_now_ms ();
            if (now >= self->misdirected_warn_at) {
                aigw_warn ("peer %s: dropped a message meant for an earlier process at its "
                           "endpoint (the sender has not yet heard that one died)",
                           self->endpoint);
                self->misdirected_warn_at = now + S_MISDIRECTED_WARN_MS;
            }
            zmsg_destroy (&msg);
            continue;
        }
        zframe_t *header = zmsg_first (msg);
        zframe_t *command = zmsg_next (msg);
        size_t frames = zmsg_size (msg);
        aigw_peer_event_t *event = NULL;
        if (header && command && zframe_size (header) == AIGW_BP_HEADER_SIZE
            && memcmp (zframe_data (header), AIGW_BP_PEER_HEADER, AIGW_BP_HEADER_SIZE) == 0
            && zframe_size (command) == 1 && frames <= S_FRAMES_MAX) {
            byte cmd = *zframe_data (command);
            event = (aigw_peer_event_t *) calloc (1, sizeof *event);
            assert (event);
            event->type = cmd;
            bool valid = false;
            if (cmd == AIGW_BP_PEER_REQUEST && frames == 8) {
                event->service = s_str (msg, 2);
                event->origin = s_str (msg, 3);
                event->request_id = s_str (msg, 4);
                event->sender = s_str (msg, 5);
                char *deadline = s_str (msg, 6);
                char *end = NULL;
                event->deadline_ms = deadline ? strtoll (deadline, &end, 10) : 0;
                valid = end && !*end && *event->service && *event->origin && *event->request_id;
                zstr_free (&deadline);
                event->envelope = zmsg_last (msg);
                zmsg_remove (msg, event->envelope);
            }
            else if (cmd == AIGW_BP_PEER_REPLY && frames == 5) {
                event->request_id = s_str (msg, 2);
                zframe_t *flags = zmsg_next (msg);
                valid = flags && zframe_size (flags) == 1;
                event->last = valid && (*zframe_data (flags) & 1);
                event->envelope = zmsg_last (msg);
                zmsg_remove (msg, event->envelope);
            }
            else if (cmd == AIGW_BP_PEER_ERROR && frames == 5) {
                event->request_id = s_str (msg, 2);
                char *status = s_str (msg, 3);
                event->status = status ? atoi (status) : 0;
                zstr_free (&status);
                event->text = s_str (msg, 4);
                event->last = true;
                valid = event->status >= 400 && event->status <= 599 && event->text;
            }
            else if (cmd == AIGW_BP_PEER_ONEWAY && frames == 5) {
                event->service = s_str (msg, 2);
                event->request_id = s_str (msg, 3);
                valid = event->service && *event->service;
                event->envelope = zmsg_last (msg);
                zmsg_remove (msg, event->envelope);
            }
            else if (cmd == AIGW_BP_PEER_CANCEL && frames == 4) {
                event->origin = s_str (msg, 2);
                event->request_id = s_str (msg, 3);
                valid = event->origin && *event->origin;
                if (valid && event->request_id) {
                    //  Forwarded from here already: not sent again after a
                    //  death either.
                    char *key
                        = zsys_sprintf ("%s%c%s", event->origin, S_KEY_SEP, event->request_id);
                    zhashx_delete (self->tracked, key);
                    zstr_free (&key);
                }
            }
            else if (cmd == AIGW_BP_PEER_DONE && frames % 2 == 0) {
                zmsg_first (msg);
                zmsg_next (msg);
                s_take_done (self, msg);
            }
            if (!valid || !event->request_id)
                aigw_peer_event_destroy (&event);
            if (!event && cmd != AIGW_BP_PEER_DONE)
                aigw_debug ("peer: malformed message dropped (command %d, %zu frames)", cmd,
                            frames);
        }
        else
            aigw_debug ("peer: malformed message dropped");
        zmsg_destroy (&msg);
        if (event)
            return event;
    }
}

void
aigw_peer_event_destroy (aigw_peer_event_t **self_p)
{
    aigw_peer_event_t *self = *self_p;
    if (!self)
        return;
    free (self->service);
    free (self->origin);
    free (self->request_id);
    free (self->sender);
    free (self->text);
    zframe_destroy (&self->envelope);
    free (self);
    *self_p = NULL;
}

size_t
aigw_peer_tracked (aigw_peer_t *self)
{
    return zhashx_size (self->tracked);
}

size_t
aigw_peer_backlog (aigw_peer_t *self)
{
    size_t total = 0;
    for (s_link_t *link = (s_link_t *) zhashx_first (self->links); link;
         link = (s_link_t *) zhashx_next (self->links))
        total += zlistx_size (link->outbox);
    return total;
}

//  --------------------------------------------------------------------------
//  Selftest

#define S_TEST_WAIT_MS 2000  //  longest wait for a message expected

//  One turn of SELF's loop: poll up to MS, send what waits.
static void
s_test_turn (aigw_peer_t *self, long ms)
{
    zmq_pollitem_t items[8];
    int count = aigw_peer_pollitems (self, items, 8);
    zmq_poll (items, count, ms);
    aigw_peer_process (self, items, count);
}

//  Pump FROM too when not NULL (its outboxes wait for a tcp connection)
//  until TO yields an event, or fail after S_TEST_WAIT_MS.
static aigw_peer_event_t *
s_test_event_from (aigw_peer_t *from, aigw_peer_t *to)
{
    int64_t until = zclock_mono () + S_TEST_WAIT_MS;
    while (zclock_mono () < until) {
        if (from)
            s_test_turn (from, 5);
        s_test_turn (to, from ? 5 : 10);
        aigw_peer_event_t *event = aigw_peer_recv (to);
        if (event)
            return event;
    }
    return NULL;
}

//  Pump SELF until it yields an event, or fail after S_TEST_WAIT_MS.
static aigw_peer_event_t *
s_test_event (aigw_peer_t *self)
{
    return s_test_event_from (NULL, self);
}

//  Let SELF send what waits (DONEs, outboxes) and read what came.
static void
s_test_pump (aigw_peer_t *self)
{
    for (int i = 0; i < 5; i++) {
        s_test_turn (self, 5);
        aigw_peer_event_t *event = aigw_peer_recv (self);
        assert (!event);
    }
}

//  Send a request from A for SERVICE with LATER stages, body BODY.
static void
s_test_request (aigw_peer_t *a, const char *service, const char *shard, const char *later,
                const char *rid, int expect)
{
    char *data = strdup ("payload");
    int rc = aigw_peer_request (a, service, shard, later, aigw_peer_endpoint (a), rid, NULL,
                                zclock_time () + 10000, &data, 7);
    assert (rc == expect);
    assert (data == NULL);
}

void
aigw_peer_test (bool verbose)
{
    aigw_log_level_t level = aigw_log_level ();
    if (!verbose)
        aigw_log_set_level (AIGW_LOG_ERROR);
    char err[256];
    aigw_peer_t *a = aigw_peer_new ("inproc://aigw-peer-test-a", NULL, err, sizeof err);
    aigw_peer_t *b = aigw_peer_new ("inproc://aigw-peer-test-b", NULL, err, sizeof err);
    aigw_peer_t *c = aigw_peer_new ("inproc://aigw-peer-test-c", NULL, err, sizeof err);
    assert (a && b && c);
    //  An address: the endpoint, '#', and 16 hex digits drawn at bind.
    const char *b_address = aigw_peer_endpoint (b);
    assert (strncmp (b_address, "inproc://aigw-peer-test-b#", 26) == 0);
    assert (strlen (b_address) == 26 + S_TOKEN_HEX);
    assert (strspn (b_address + 26, "0123456789abcdef") == S_TOKEN_HEX);
    assert (!streq (b_address + 26, aigw_peer_endpoint (c) + 26));
    assert (!aigw_peer_new ("inproc://aigw-peer-test-a", NULL, err, sizeof err));
    assert (!aigw_peer_has_directory (a));
    assert (aigw_peer_directory_live ("svc w1 tcp://h:1 R\nsvc w2 - R\nx w3 tcp://h:2 -\n", "svc")
            == 1);
    assert (aigw_peer_directory_live ("", "svc") == 0);
    //  No directory: nobody to send to.
    s_test_request (a, "svc", "", "", "r0", -1);

    char text[1024];
    snprintf (text, sizeof text, "svc w1 %s R\nsvc w2 %s R\nbad line\nold w0 - R\n",
              aigw_peer_endpoint (b), aigw_peer_endpoint (c));
    aigw_peer_set_directory (a, "00000000000000aa-1", text);
    assert (aigw_peer_has_directory (a));
    s_test_request (a, "old", "", "", "r0", -1);  //  reachable through the broker only

    //  A request, its reply and the DONE that ends its tracking.
    s_test_request (a, "svc", "", "", "r1", 0);
    assert (aigw_peer_tracked (a) == 1);
    aigw_peer_t *first = NULL;
    aigw_peer_event_t *event = NULL;
    for (int i = 0; i < 200 && !event; i++) {
        event = aigw_peer_recv (b);
        first = b;
        if (!event) {
            event = aigw_peer_recv (c);
            first = c;
        }
        if (!event)
            zclock_sleep (5);
    }
    assert (event && event->type == AIGW_PEER_REQUEST);
    assert (streq (event->service, "svc") && streq (event->request_id, "r1"));
    assert (streq (event->origin, aigw_peer_endpoint (a)));
    assert (streq (event->sender, aigw_peer_endpoint (a)));
    assert (zframe_streq (event->envelope, "payload"));
    char *reply = strdup ("answer");
    aigw_peer_reply (first, event->origin, event->request_id, true, &reply, 6);
    aigw_peer_done (first, event->sender, event->origin, event->request_id);
    aigw_peer_event_destroy (&event);
    s_test_pump (first);
    event = s_test_event (a);
    assert (event && event->type == AIGW_PEER_REPLY && event->last);
    assert (streq (event->request_id, "r1") && zframe_streq (event->envelope, "answer"));
    aigw_peer_event_destroy (&event);
    s_test_pump (a);
    assert (aigw_peer_tracked (a) == 0);

    //  Round robin: the next request goes to the other worker.
    s_test_request (a, "svc", "", "", "r2", 0);
    aigw_peer_t *second = first == b ? c : b;
    event = s_test_event (second);
    assert (event && streq (event->request_id, "r2"));
    aigw_peer_event_destroy (&event);

    //  The worker holding r2 dies: replay-safe, so it goes to the other.
    const char *gone = second == b ? "w1" : "w2";
    snprintf (text, sizeof text, "svc %s %s R\n", second == b ? "w2" : "w1",
              aigw_peer_endpoint (first));
    aigw_peer_set_directory (a, "00000000000000aa-2", text);
    event = s_test_event (first);
    assert (event && streq (event->request_id, "r2"));
    aigw_peer_event_destroy (&event);
    assert (aigw_peer_tracked (a) == 1);
    (void) gone;

    //  A stage that is not replay-safe, and a replay-safe one whose later
    //  stage on the route the same process serves and is not: both answer
    //  the origin 503 when their worker dies.
    snprintf (text, sizeof text, "prov w3 %s -\ncache w4 %s R\nprovider w5 %s -\n",
              aigw_peer_endpoint (b), aigw_peer_endpoint (c), aigw_peer_endpoint (c));
    aigw_peer_set_directory (a, "00000000000000aa-3", text);
    //  r2's worker left too: not replay-safe elsewhere any more (no svc).
    event = s_test_event (a);
    assert (event && event->type == AIGW_PEER_ERROR && event->status == 503);
    assert (streq (event->request_id, "r2"));
    aigw_peer_event_destroy (&event);
    s_test_request (a, "prov", "", "", "r3", 0);
    s_test_request (a, "cache", "k", "provider", "r4", 0);
    event = s_test_event (b);
    assert (event && streq (event->request_id, "r3"));
    aigw_peer_event_destroy (&event);
    event = s_test_event (c);
    assert (event && streq (event->request_id, "r4"));
    aigw_peer_event_destroy (&event);
    aigw_peer_set_directory (a, "00000000000000aa-4", "");
    for (int i = 0; i < 2; i++) {
        event = s_test_event (a);
        assert (event && event->type == AIGW_PEER_ERROR && event->status == 503);
        assert (streq (event->request_id, "r3") || streq (event->request_id, "r4"));
        aigw_peer_event_destroy (&event);
    }
    assert (aigw_peer_tracked (a) == 0);

    //  Shard owners: every key has one, and it is the one requests go to.
    snprintf (text, sizeof text, "rl w6 %s R\nrl w7 %s R\n", aigw_peer_endpoint (b),
              aigw_peer_endpoint (c));
    aigw_peer_set_directory (a, "00000000000000aa-5", text);
    for (int key = 0; key < 8; key++) {
        char shard[16];
        snprintf (shard, sizeof shard, "key%d", key);
        bool six = aigw_peer_owns (a, "rl", shard, "w6");
        assert (six != aigw_peer_owns (a, "rl", shard, "w7"));
        s_test_request (a, "rl", shard, "", shard, 0);
        event = s_test_event (six ? b : c);
        assert (event && streq (event->request_id, shard));
        aigw_peer_done (six ? b : c, event->sender, event->origin, event->request_id);
        aigw_peer_event_destroy (&event);
        s_test_pump (six ? b : c);
    }
    assert (aigw_peer_owns (a, "unknown", "key", "w6"));
    s_test_pump (a);
    assert (aigw_peer_tracked (a) == 0);

    //  A one-way request goes to the shard's owner, untracked, and
    //  needs a live worker of its service.
    char *data = strdup ("store");
    assert (aigw_peer_oneway (a, "rl", "key1", "ow1", &data, 5) == 0 && !data);
    assert (aigw_peer_tracked (a) == 0);
    bool one_six = aigw_peer_owns (a, "rl", "key1", "w6");
    event = s_test_event (one_six ? b : c);
    assert (event && event->type == AIGW_PEER_ONEWAY && streq (event->service, "rl"));
    assert (streq (event->request_id, "ow1") && zframe_streq (event->envelope, "store"));
    aigw_peer_event_destroy (&event);
    data = strdup ("store");
    assert (aigw_peer_oneway (a, "nobody", "", "ow2", &data, 5) == -1 && !data);

    //  A restarted broker (new instance) that knows w7 only: w6 is kept for
    //  the grace period.
    snprintf (text, sizeof text, "rl w7 %s R\n", aigw_peer_endpoint (c));
    aigw_peer_set_directory (a, "00000000000000bb-1", text);
    bool six_seen = false;
    for (int key = 0; key < 16; key++) {
        char shard[16];
        snprintf (shard, sizeof shard, "key%d", key);
        six_seen = six_seen || aigw_peer_owns (a, "rl", shard, "w6");
    }
    assert (six_seen);

    //  A client left: every worker of a replay-safe stage hears it, and
    //  the worker a keyed stage's key picks; one CANCEL per endpoint. The
    //  origin stops tracking it: no copy goes out after a death.
    snprintf (text, sizeof text, "guard w8 %s R\nguard w9 %s R\nprov w10 %s -\n",
              aigw_peer_endpoint (b), aigw_peer_endpoint (c), aigw_peer_endpoint (b));
    aigw_peer_set_directory (a, "00000000000000cc-1", text);
    s_test_request (a, "guard", "", "", "r5", 0);
    assert (aigw_peer_tracked (a) == 1);
    aigw_peer_cancel (a, "prov", "guard", aigw_peer_endpoint (a), "r5");
    assert (aigw_peer_tracked (a) == 0);
    for (int i = 0; i < 2; i++) {
        aigw_peer_t *at = i ? c : b;
        event = s_test_event (at);
        if (event && event->type == AIGW_PEER_REQUEST) {
            aigw_peer_event_destroy (&event);  //  the request itself went here
            event = s_test_event (at);
        }
        assert (event && event->type == AIGW_PEER_CANCEL);
        assert (streq (event->request_id, "r5") && streq (event->origin, aigw_peer_endpoint (a)));
        aigw_peer_event_destroy (&event);
    }
    s_test_pump (b);  //  one CANCEL only, though b runs both stages
    s_test_pump (c);

    //  Junk at an inbox is dropped, from a sender that names b's token
    //  and from one that names none.
    aigw_stat_t *misdirected = aigw_stats_counter ("aigw_peer_misdirected_total", "", "");
    int64_t refused = aigw_stat_value (misdirected);
    zsock_t *junk = zsock_new (ZMQ_DEALER);
    char junk_id[2 * S_TOKEN_HEX + 1];
    snprintf (junk_id, sizeof junk_id, "%s%s", b_address + 26, "0123456789abcdef");
    zsock_set_identity (junk, junk_id);
    zsock_connect (junk, "inproc://aigw-peer-test-b");
    zstr_sendx (junk, "AGWP01", "nonsense", NULL);
    zstr_sendx (junk, "XXXXXX", NULL);
    zsock_destroy (&junk);
    junk = zsock_new_dealer ("inproc://aigw-peer-test-b");
    zstr_sendx (junk, "AGWP01", "\x06", "rl", "id", "data", NULL);
    zsock_destroy (&junk);
    s_test_pump (b);
    assert (aigw_stat_value (misdirected) == refused + 1);  //  inproc: none but ours

    //  A peer that gets a dead peer's port drops what links to the dead
    //  one still send (ZeroMQ reconnects them by itself); what is meant
    //  for it arrives.
    aigw_peer_t *d = aigw_peer_new ("tcp://127.0.0.1:*", NULL, err, sizeof err);
    assert (d);
    char *d_address = strdup (aigw_peer_endpoint (d));
    snprintf (text, sizeof text, "mis w20 %s R\n", d_address);
    aigw_peer_set_directory (a, "00000000000000dd-1", text);
    data = strdup ("one");
    assert (aigw_peer_oneway (a, "mis", "", "ow3", &data, 3) == 0);
    event = s_test_event_from (a, d);
    assert (event && event->type == AIGW_PEER_ONEWAY && streq (event->request_id, "ow3"));
    aigw_peer_event_destroy (&event);
    aigw_peer_destroy (&d);
    char bound[AIGW_BP_ENDPOINT_MAX + 1];
    snprintf (bound, sizeof bound, "%.*s", (int) (strrchr (d_address, '#') - d_address), d_address);
    //  ZeroMQ closes the listener in its own thread, soon.
    aigw_peer_t *d2 = NULL;
    for (int i = 0; i < 200 && !d2; i++)
        if (!(d2 = aigw_peer_new (bound, NULL, err, sizeof err)))
            zclock_sleep (10);
    assert (d2);
    assert (strncmp (aigw_peer_endpoint (d2), bound, strlen (bound)) == 0);
    assert (!streq (aigw_peer_endpoint (d2), d_address));
    refused = aigw_stat_value (misdirected);
    data = strdup ("two");
    assert (aigw_peer_oneway (a, "mis", "", "ow4", &data, 3) == 0);
    int64_t until = zclock_mono () + S_TEST_WAIT_MS;
    while (aigw_stat_value (misdirected) == refused && zclock_mono () < until) {
        s_test_pump (a);
        s_test_pump (d2);
    }
    //  At least ours: a link of another process on this machine may still
    //  reach for the port too (the very case this guards against).
    assert (aigw_stat_value (misdirected) >= refused + 1);
    snprintf (text, sizeof text, "mis w21 %s R\n", aigw_peer_endpoint (d2));
    aigw_peer_set_directory (a, "00000000000000dd-2", text);
    data = strdup ("three");
    assert (aigw_peer_oneway (a, "mis", "", "ow5", &data, 5) == 0);
    event = s_test_event_from (a, d2);
    assert (event && streq (event->request_id, "ow5") && zframe_streq (event->envelope, "three"));
    aigw_peer_event_destroy (&event);
    aigw_peer_destroy (&d2);
    free (d_address);

    aigw_peer_destroy (&a);
    aigw_peer_destroy (&b);
    aigw_peer_destroy (&c);
    aigw_peer_destroy (&c);
    aigw_log_set_level (level);
    if (verbose)
        printf ("peer: ok\n");
}
