/*  aigw_stage: the stage runtime: hosts, local hand-offs, forwarding. */
#include "aigw_stage.h"
#include "aigw_actors.h"
#include "aigw_log.h"
#include "aigw_bp.h"
#include "aigw_peer.h"

#include <arpa/inet.h>
#include <netdb.h>
#include <stdatomic.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

//  Housekeeping period of the stages' ticks.
#define AIGW_STAGE_TICK_MS 1000
//  Longest stage name (the broker's service names are at most 64).
#define AIGW_STAGE_NAME_MAX 64
//  How long a stage that is not replay-safe remembers a request it took
//  from a peer, ms: a sender that saw a worker die just after the request
//  moved on may send it again, and it lands here again (placement by the
//  request's key); within this window it is dropped, not run twice.
#define AIGW_STAGE_SEEN_MS 30000

int64_t
aigw_now_ms (void)
{
    struct timeval tv;
    gettimeofday (&tv, NULL);
    return (int64_t) tv.tv_sec * 1000 + tv.tv_usec / 1000;
}

int64_t
aigw_now_us (void)
{
    struct timeval tv;
    gettimeofday (&tv, NULL);
    return (int64_t) tv.tv_sec * 1000000 + tv.tv_usec;
}

bool
aigw_list_has (const char *list, const char *item)
{
    size_t len = strlen (item);
    for (const char *p = list; p && *p;) {
        const char *end = strchr (p, ',');
        size_t n = end ? (size_t) (end - p) : strlen (p);
        if (n == len && memcmp (p, item, len) == 0)
            return true;
        p = end ? end + 1 : NULL;
    }
    return false;
}

bool
aigw_stage_model_allowed (const aigw_envelope_t *env, const char *model)
{
    return !env->models || aigw_list_has (env->models, model);
}

bool
aigw_stage_pipe_term (zsock_t *pipe)
{
    //  Polled by its descriptor between cold passes, the pipe may signal
    //  with nothing to read: never wait for a command.
    if (!(zsock_events (pipe) & ZMQ_POLLIN))
        return false;
    char *command = zstr_recv (pipe);
    bool term = !command || streq (command, "$TERM");
    zstr_free (&command);
    return term;
}

const char *
aigw_stage_shard_key (aigw_envelope_t *env, const char *service, const aigw_config_t *config)
{
    const aigw_stage_def_t *def = aigw_stage_find (service);
    return def && def->shard_key ? def->shard_key (env, config) : "";
}

//  --------------------------------------------------------------------------
//  The host

//  One stage the host runs.
typedef struct {
    const aigw_stage_def_t *def;  //  what it is
    void *state;                  //  its private state
    aigw_worker_t *worker;        //  its registration at the broker
    int item_first;               //  its own poll items in the last poll: first
    int item_count;               //  and how many
    int item_worker;              //  its worker's item in the last poll
} s_stage_t;

//  One local hand-off waiting in the run queue.
typedef struct _s_run_t {
    aigw_job_t *job;        //  the job
    aigw_envelope_t *env;   //  its envelope
    int stage;              //  index of the stage that takes it
    struct _s_run_t *next;  //  next in the queue
} s_run_t;

struct _aigw_host_t {
    const aigw_config_t *config;             //  settings (shared, read-only)
    char *endpoint;                          //  broker endpoint
    s_stage_t stages[AIGW_HOST_STAGES_MAX];  //  the stages, in the order named
    int stage_count;                         //  entries in stages
    bool owns_shards;                        //  local sharded stages own every key
    aigw_front_t front;                      //  the edge in this thread; self NULL = none
    aigw_peer_t *peer;                       //  our inbox and links to other peers (BP/2)
    zhashx_t *pending;                       //  origin id -> front origin, waiting on peers
    zhashx_t *seen;                          //  origin+id -> expiry: requests a stage that is not
        //  replay-safe took from peers (duplicates are dropped)
    zlistx_t *seen_order;       //  their keys, oldest first
    zhashx_t *cancelled;        //  origin/id -> expiry: requests whose client left,
                                //  dropped when they come (any stage)
    zlistx_t *cancelled_order;  //  their keys, oldest first
    zhashx_t *held;             //  origin/id -> job: peers' requests held here, for
                                //  a CANCEL
    s_run_t *run_head;          //  hand-offs waiting, oldest first
    s_run_t *run_tail;          //  newest
    int64_t next_tick;          //  when the stages' ticks are due, Unix ms
    int item_peer;              //  the peer's poll items in the last poll: first
    int item_peer_count;        //  and how many
    bool cold;                  //  the last poll was a cold pass
    int64_t cold_due;           //  when the next cold pass is due, Unix ms
};

//  Index of stage NAME in SELF, or -1.
static int
s_host_find (aigw_host_t *self, const char *name)
{
    for (int i = 0; i < self->stage_count; i++)
        if (streq (self->stages[i].def->name, name))
            return i;
    return -1;
}

//  Whether stage INDEX here takes a request with SHARD: the owner of a
//  shard key must be the one of every process (the directory says who).
static bool
s_host_takes (aigw_host_t *self, int index, const char *shard)
{
    if (index < 0)
        return false;
    if (!*shard || self->owns_shards || !self->peer)
        return true;
    s_stage_t *stage = &self->stages[index];
    return aigw_peer_owns (self->peer, stage->def->name, shard, aigw_worker_id (stage->worker));
}

//  Queue JOB and ENV (both taken) for stage INDEX.
static void
s_host_enqueue (aigw_host_t *self, aigw_job_t *job, aigw_envelope_t *env, int index)
{
    s_run_t *run = malloc (sizeof *run);
    assert (run);
    *run = (s_run_t){.job = job, .env = env, .stage = index};
    job->stage = -1;
    job->holder = NULL;
    if (self->run_tail)
        self->run_tail->next = run;
    else
        self->run_head = run;
    self->run_tail = run;
}

//  A job leaves this host: a peer's sender hears DONE.
static void
s_job_leaves (aigw_host_t *self, aigw_job_t *job)
{
    if (job->reply_to && self->peer)
        aigw_peer_done (self->peer, job->sender, job->reply_to, job->request_id);
    free (job->sender);
    job->sender = NULL;
}

//  A job leaves without its final reply: its origin still waits, so it
//  hears why at once rather than at its deadline.
static void
s_job_release (aigw_job_t *job)
{
    aigw_host_t *host = (aigw_host_t *) job->runtime;
    if (!host)
        return;
    if (job->held)
        zhashx_delete (host->held, job->held);
    if (job->reply_to && host->peer) {
        //  A cancelled request's origin forgot it: DONE only.
        if (!job->cancelled)
            aigw_peer_error (host->peer, job->reply_to, job->request_id, 503,
                             "The stage stopped before answering.");
        s_job_leaves (host, job);
        free (job->reply_to);
        job->reply_to = NULL;
    }
    if (!job->origin || !host->front.self)
        return;
    aigw_client_event_t *event = calloc (1, sizeof *event);
    assert (event);
    event->type = AIGW_BP_CLIENT_ERROR;
    event->status = 503;
    event->text = strdup ("The stage stopped before answering.");
    if (job->request_id)
        zhashx_delete (host->pending, job->request_id);
    host->front.deliver (host->front.self, job->origin, &event);
    job->origin = NULL;
}

//  A job made in this process, for ORIGIN (NULL: one-way) known as
//  ORIGIN_ID (may be NULL).
static aigw_job_t *
s_job_new (aigw_host_t *self, void *origin, const char *origin_id)
{
    aigw_job_t *job = calloc (1, sizeof *job);
    assert (job);
    job->runtime = self;
    job->origin = origin;
    job->request_id = origin_id ? strdup (origin_id) : NULL;
    job->release = s_job_release;
    return job;
}

//  The final reply or a chunk for a job with no broker worker: to its
//  origin here, or to a peer's. Takes *ENV_P. With LAST the job is done and
//  destroyed.
static void
s_deliver (aigw_host_t *self, aigw_job_t **job_p, aigw_envelope_t **env_p, bool last)
{
    aigw_job_t *job = *job_p;
    if (job->reply_to && self->peer) {
        size_t size;
        char *data = aigw_envelope_encode (*env_p, &size);
        bool encoded = data != NULL;
        if (encoded)
            aigw_peer_reply (self->peer, job->reply_to, job->request_id, last, &data, size);
        else
            aigw_peer_error (self->peer, job->reply_to, job->request_id, 500,
                             "The reply could not be encoded.");
        if (last || !encoded) {
            s_job_leaves (self, job);
            free (job->reply_to);
            job->reply_to = NULL;
            last = true;
        }
    }
    else if (job->origin && self->front.self) {
        aigw_client_event_t *event = calloc (1, sizeof *event);
        assert (event);
        event->type = AIGW_BP_CLIENT_REPLY;
        event->last = last;
        event->env = *env_p;
        *env_p = NULL;
        if (last && job->request_id)
            zhashx_delete (self->pending, job->request_id);
        self->front.deliver (self->front.self, job->origin, &event);
    }
    aigw_envelope_destroy (env_p);
    if (last) {
        job->origin = NULL;
        aigw_job_destroy (job_p);
    }
}

//  Encode ENV and send it through the job's worker with FLAGS; takes the
//  job on LAST. ENV stays the caller's.
static int
s_send (aigw_job_t **job_p, aigw_envelope_t *env, int flags, const char *next, const char *shard)
{
    size_t size;
    char *data = aigw_envelope_encode (env, &size);
    if (!data) {
        aigw_error ("cannot encode envelope for %s", env->id ? env->id : "?");
        if (flags & AIGW_REPLY_LAST)
            aigw_job_destroy (job_p);
        return -1;
    }
    return aigw_worker_reply ((*job_p)->worker, job_p, flags, next, shard, &data, size);
}

//  The stages after the one ENV goes to next, comma-separated, into BUF:
//  a peer that hosts them too hands the request on by call, so whether it
//  may be replayed depends on them as well.
static const char *
s_route_after (const aigw_envelope_t *env, char *buf, size_t size)
{
    size_t used = 0;
    buf[0] = 0;
    for (int i = env->hop + 1; i < env->route_len && env->route[i]; i++) {
        int n = snprintf (buf + used, size - used, "%s%s", used ? "," : "", env->route[i]);
        if (n < 0 || (size_t) n >= size - used)
            break;
        used += (size_t) n;
    }
    return buf;
}

//  Send JOB's ENV (both taken) to SERVICE elsewhere: straight to a peer
//  that runs it when the directory names one, else through the broker.
static int
s_host_remote (aigw_host_t *self, aigw_job_t **job_p, aigw_envelope_t **env_p, const char *service,
               const char *shard)
{
    aigw_job_t *job = *job_p;
    aigw_envelope_t *env = *env_p;
    int rc = 0;
    bool broker_job = job->worker != NULL;
    //  A peer's job must go to a peer; ours may, when peers run SERVICE
    //  (a one-way job has no id to be answered by: the broker takes it).
    if (self->peer && !broker_job && job->request_id
        && (job->reply_to || aigw_peer_has_directory (self->peer))) {
        char later[AIGW_ROUTE_MAX * (AIGW_STAGE_NAME_MAX + 1) + 1];
        s_route_after (env, later, sizeof later);
        const char *origin = job->reply_to ? job->reply_to : aigw_peer_endpoint (self->peer);
        //  A stage that must not run a request twice gets it by the
        //  request's own key: a copy sent again after a death lands on the
        //  same worker, which drops it (AIGW_STAGE_SEEN_MS).
        const aigw_stage_def_t *def = aigw_stage_find (service);
        char *key = def && !def->replay_safe && !*shard
                        ? aigw_peer_request_key (origin, job->request_id)
                        : NULL;
        size_t size;
        char *data = aigw_envelope_encode (env, &size);
        int sent
            = data ? aigw_peer_request (self->peer, service, key ? key : shard, later, origin,
                                        job->request_id, job->sender, env->deadline_ms, &data, size)
                   : -1;
        zstr_free (&key);
        if (sent == 0) {
            if (job->origin) {
                //  The front's origin now waits on the peer for its replies,
                //  and must forget the job it may hold.
                zhashx_update (self->pending, job->request_id, job->origin);
                if (self->front.self && self->front.left)
                    self->front.left (self->front.self, job->origin);
                job->origin = NULL;
            }
            //  The peer tells our sender DONE once the request has left.
            free (job->sender);
            job->sender = NULL;
            free (job->reply_to);
            job->reply_to = NULL;
            aigw_job_destroy (job_p);
            aigw_envelope_destroy (env_p);
            return 0;
        }
        if (job->reply_to || !job->origin || !self->front.self) {
            aigw_warn ("request %s: no live worker of %s in the directory", env->id ? env->id : "?",
                       service);
            aigw_envelope_set_error (env, 503, "service_unavailable", "stage_unavailable", NULL,
                                     "No live worker serves a stage of this request.");
            env->last = true;
            s_deliver (self, job_p, env_p, true);
            return -1;
        }
    }
    if (broker_job)
        rc = s_send (job_p, env, AIGW_REPLY_LAST | AIGW_REPLY_FORWARD, service, shard);
    else if (job->origin && self->front.self) {
        //  From the edge in this thread, through the broker; the replies
        //  come back to the origin.
        if (job->request_id)
            zhashx_delete (self->pending, job->request_id);
        self->front.forward (self->front.self, job->origin, service, shard, env_p);
        job->origin = NULL;
    }
    aigw_job_destroy (job_p);
    aigw_envelope_destroy (env_p);
    return rc;
}

//  The stage now handling ENV is done with it: how long it took goes
//  beside its start (a stage that answers in chunks is done at the last).
static inline void
s_stamp_done (aigw_envelope_t *env)
{
    if (env->hop < AIGW_ROUTE_MAX && env->stage_us[2 * env->hop]) {
        int64_t now = aigw_now_us ();
        int64_t spent = now - env->stage_us[2 * env->hop];
        env->stage_us[2 * env->hop + 1] = spent > 0 ? spent : 1;
    }
}

int
aigw_stage_pass (aigw_job_t **job_p, aigw_envelope_t **env_p)
{
    aigw_job_t *job = *job_p;
    aigw_envelope_t *env = *env_p;
    aigw_host_t *host = (aigw_host_t *) job->runtime;
    int rc = 0;
    if (job->cancelled) {
        aigw_job_destroy (job_p);
        aigw_envelope_destroy (env_p);
        return 0;
    }
    s_stamp_done (env);
    if (env->status == 0) {
        //  Unanswered: on to the next stage of the route.
        env->hop++;
        const char *next = aigw_envelope_stage (env);
        if (next) {
            const char *shard = aigw_stage_shard_key (env, next, host->config);
            int index = s_host_find (host, next);
            //  A broker's job on a replay-safe worker must not reach a stage
            //  that is not here: the broker would replay it after a death.
            bool keep = !(job->worker && job->replay_safe && index >= 0
                          && !host->stages[index].def->replay_safe);
            if (keep && s_host_takes (host, index, shard)) {
                s_host_enqueue (host, job, env, index);
                *job_p = NULL;
                *env_p = NULL;
                return 0;
            }
            return s_host_remote (host, job_p, env_p, next, shard);
        }
        aigw_envelope_set_error (env, 500, "server_error", "route_exhausted", NULL,
                                 "no stage answered the request");
    }
    env->last = true;
    if (job->worker) {
        rc = s_send (job_p, env, AIGW_REPLY_LAST, NULL, NULL);
        aigw_envelope_destroy (env_p);
    }
    else
        s_deliver (host, job_p, env_p, true);
    return rc;
}

int
aigw_stage_chunk (aigw_job_t **job_p, aigw_envelope_t *env)
{
    aigw_job_t *job = *job_p;
    if (env->last)
        s_stamp_done (env);
    int rc = 0;
    if (job->worker)
        rc = s_send (job_p, env, env->last ? AIGW_REPLY_LAST : 0, NULL, NULL);
    else {
        aigw_envelope_t *copy = aigw_envelope_dup (env);
        if (!copy) {
            if (env->last)
                aigw_job_destroy (job_p);
            return -1;
        }
        s_deliver ((aigw_host_t *) job->runtime, job_p, &copy, env->last);
    }
    //  The edge keeps the request's content from the first chunk: the
    //  rest of a stream need not carry up to 64 KiB each.
    if (env->content_request)
        aigw_envelope_set (&env->content_request, NULL);
    return rc;
}

void
aigw_host_destroy (aigw_host_t **self_p)
{
    aigw_host_t *self = *self_p;
    if (!self)
        return;
    //  Waiting hand-offs first: their jobs may tell the front.
    while (self->run_head) {
        s_run_t *run = self->run_head;
        self->run_head = run->next;
        aigw_job_destroy (&run->job);
        aigw_envelope_destroy (&run->env);
        free (run);
    }
    //  Stages before workers: a stage's requests answer through them.
    for (int i = self->stage_count - 1; i >= 0; i--)
        if (self->stages[i].state)
            self->stages[i].def->state_destroy (&self->stages[i].state);
    for (int i = 0; i < self->stage_count; i++)
        aigw_worker_destroy (&self->stages[i].worker);
    //  The peer last: the stages' last words go out through it.
    if (self->peer)
        aigw_peer_process (self->peer, NULL, 0);
    aigw_peer_destroy (&self->peer);
    zhashx_destroy (&self->pending);
    zhashx_destroy (&self->seen);
    zlistx_destroy (&self->seen_order);
    zhashx_destroy (&self->cancelled);
    zlistx_destroy (&self->cancelled_order);
    zhashx_destroy (&self->held);
    free (self->endpoint);
    free (self);
    *self_p = NULL;
}

//  The address this host reaches HOST (a name or an IPv4 address) from,
//  into BUF: what other hosts can reach us at, when the broker is on
//  another host. Sends nothing (a UDP socket only picks its route).
//  Returns 0, or -1.
static int
s_local_address (const char *host, char *buf, size_t size)
{
    struct addrinfo hints = {.ai_family = AF_INET, .ai_socktype = SOCK_DGRAM};
    struct addrinfo *found = NULL;
    if (getaddrinfo (host, "9", &hints, &found) != 0 || !found)
        return -1;
    int fd = socket (AF_INET, SOCK_DGRAM, 0);
    struct sockaddr_in local;
    socklen_t len = sizeof local;
    int rc = fd >= 0 && connect (fd, found->ai_addr, found->ai_addrlen) == 0
                     && getsockname (fd, (struct sockaddr *) &local, &len) == 0
                     && inet_ntop (AF_INET, &local.sin_addr, buf, (socklen_t) size)
                 ? 0
                 : -1;
    if (fd >= 0)
        close (fd);
    freeaddrinfo (found);
    return rc;
}

//  Where this host's peer inbox binds, into BIND, and the host others are
//  told to reach it at, into ADVERTISE ("" for the bound one): the
//  config's; else inproc beside an inproc broker; else any port on
//  loopback beside a broker on this machine; else any port on every
//  interface, advertised as the address that reaches the broker.
static void
s_peer_bind (const aigw_config_t *config, const char *endpoint, char *bind, size_t size,
             char *advertise, size_t advertise_size)
{
    static atomic_uint counter;
    snprintf (advertise, advertise_size, "%s",
              config->peer_advertise ? config->peer_advertise : "");
    char host[256] = "";
    if (strncmp (endpoint, "tcp://", 6) == 0)
        sscanf (endpoint + 6, "%255[^:]", host);
    bool remote = *host && strcmp (host, "localhost") != 0 && strncmp (host, "127.", 4) != 0
                  && strcmp (host, "*") != 0;
    if (config->peer_bind && *config->peer_bind)
        snprintf (bind, size, "%s", config->peer_bind);
    else if (strncmp (endpoint, "inproc://", 9) == 0) {
        snprintf (bind, size, "inproc://aigw-peer-%d-%u", (int) getpid (),
                  atomic_fetch_add (&counter, 1) + 1);
        return;
    }
    else if (*advertise)
        //  Others reach us at the advertised host: listen on every address.
        snprintf (bind, size, "tcp://0.0.0.0:*");
    else if (remote && s_local_address (host, advertise, advertise_size) == 0)
        snprintf (bind, size, "tcp://0.0.0.0:*");
    else {
        if (remote)
            aigw_warn ("peer inbox on loopback only: no address of this host reaches the "
                       "broker's host %s; set AIGW_PEER_ADVERTISE",
                       host);
        snprintf (bind, size, "tcp://127.0.0.1:*");
    }
    //  A wildcard bind is no address to give others: advertise the one
    //  this host reaches the broker from (or loopback, for a local broker).
    bool wildcard = strncmp (bind, "tcp://0.0.0.0:", 14) == 0 || strncmp (bind, "tcp://*:", 8) == 0;
    if (wildcard && !*advertise
        && !(remote && s_local_address (host, advertise, advertise_size) == 0))
        snprintf (advertise, advertise_size, "127.0.0.1");
}

aigw_host_t *
aigw_host_new (const aigw_config_t *config, const char *endpoint, const char *stages,
               bool owns_shards, char *err, size_t err_size)
{
    aigw_host_t *self = calloc (1, sizeof *self);
    assert (self);
    self->config = config;
    self->endpoint = strdup (endpoint);
    self->owns_shards = owns_shards;
    self->pending = zhashx_new ();
    self->seen = zhashx_new ();
    zhashx_set_destructor (self->seen, (zhashx_destructor_fn *) zstr_free);
    self->seen_order = zlistx_new ();
    zlistx_set_destructor (self->seen_order, (zlistx_destructor_fn *) zstr_free);
    self->cancelled = zhashx_new ();
    zhashx_set_destructor (self->cancelled, (zhashx_destructor_fn *) zstr_free);
    self->cancelled_order = zlistx_new ();
    zlistx_set_destructor (self->cancelled_order, (zlistx_destructor_fn *) zstr_free);
    self->held = zhashx_new ();
    char bind[AIGW_BP_ENDPOINT_MAX + 1], advertise[AIGW_BP_ENDPOINT_MAX + 1];
    s_peer_bind (config, endpoint, bind, sizeof bind, advertise, sizeof advertise);
    self->peer = aigw_peer_new (bind, advertise, err, err_size);
    if (!self->peer) {
        aigw_host_destroy (&self);
        return NULL;
    }
    if (strncmp (bind, "inproc://", 9) != 0)
        aigw_info ("%s: peer inbox %s (bound to %s)", stages, aigw_peer_endpoint (self->peer),
                   bind);
    for (const char *p = stages; p && *p;) {
        const char *end = strchr (p, ',');
        size_t n = end ? (size_t) (end - p) : strlen (p);
        char name[AIGW_STAGE_NAME_MAX + 1];
        snprintf (name, sizeof name, "%.*s", (int) (n < sizeof name ? n : sizeof name - 1), p);
        const aigw_stage_def_t *def = aigw_stage_find (name);
        if (!def || n >= sizeof name) {
            snprintf (err, err_size, "unknown actor '%.*s' (%s)", (int) (n > 64 ? 64 : n), p,
                      AIGW_ACTOR_LIST);
            aigw_host_destroy (&self);
            return NULL;
        }
        if (s_host_find (self, name) >= 0 || self->stage_count == AIGW_HOST_STAGES_MAX) {
            snprintf (err, err_size, "actor '%s' named twice", name);
            aigw_host_destroy (&self);
            return NULL;
        }
        s_stage_t *stage = &self->stages[self->stage_count++];
        stage->def = def;
        stage->worker = aigw_worker_new (endpoint, def->name, config->worker_credit,
                                         def->replay_safe, config->heartbeat_ms, config->liveness);
        if (!stage->worker) {
            snprintf (err, err_size, "%s cannot connect to the broker at %s", name, endpoint);
            aigw_host_destroy (&self);
            return NULL;
        }
        aigw_worker_set_peer (stage->worker, aigw_peer_endpoint (self->peer));
        stage->state = def->state_new (self, config);
        if (!stage->state) {
            snprintf (err, err_size, "the %s actor could not start (see the log)", name);
            aigw_host_destroy (&self);
            return NULL;
        }
        p = end ? end + 1 : NULL;
    }
    if (self->stage_count)
        aigw_worker_want_directory (self->stages[0].worker);
    return self;
}

void
aigw_host_set_front (aigw_host_t *self, const aigw_front_t *front)
{
    self->front = *front;
}

size_t
aigw_host_backlog (aigw_host_t *self)
{
    return aigw_peer_backlog (self->peer);
}

const char *
aigw_host_endpoint (aigw_host_t *self)
{
    return self->endpoint;
}

aigw_worker_t *
aigw_host_worker (aigw_host_t *self, const char *name)
{
    int index = s_host_find (self, name);
    return index >= 0 ? self->stages[index].worker : NULL;
}

void
aigw_host_set_directory (aigw_host_t *self, const char *version, const char *text)
{
    if (self->peer && text)
        aigw_peer_set_directory (self->peer, version, text);
}

aigw_job_t *
aigw_host_submit (aigw_host_t *self, aigw_envelope_t **env_p, void *origin, const char *origin_id)
{
    aigw_envelope_t *env = *env_p;
    *env_p = NULL;
    aigw_job_t *job = s_job_new (self, origin, origin_id);
    const char *first = aigw_envelope_stage (env);
    if (!first) {
        aigw_envelope_set_error (env, 500, "server_error", "route_exhausted", NULL,
                                 "the request has no route");
        s_deliver (self, &job, &env, true);
        return NULL;
    }
    const char *shard = aigw_stage_shard_key (env, first, self->config);
    int index = s_host_find (self, first);
    if (s_host_takes (self, index, shard)) {
        s_host_enqueue (self, job, env, index);
        return job;
    }
    s_host_remote (self, &job, &env, first, shard);
    return NULL;
}

void
aigw_host_forget (aigw_host_t *self, const char *origin_id, bool cancel)
{
    if (cancel && self->peer && zhashx_lookup (self->pending, origin_id)) {
        //  The stages that can stop work midway (an upstream call, a
        //  webhook call, a wait for a rate limit) hear it. One that is not
        //  replay-safe got the request by its own key: the CANCEL goes to
        //  the one worker it went, or will go, to. A replay-safe one took
        //  it in turn or by a key we may not know: every worker hears it.
        char keyed[AIGW_HOST_STAGES_MAX * (AIGW_STAGE_NAME_MAX + 1) + 1] = "";
        char any[sizeof keyed] = "";
        for (const aigw_stage_def_t *const *def = aigw_stage_defs (); *def; def++)
            if ((*def)->cancel) {
                char *list = (*def)->replay_safe ? any : keyed;
                size_t used = strlen (list);
                snprintf (list + used, sizeof keyed - used, "%s%s", used ? "," : "", (*def)->name);
            }
        aigw_peer_cancel (self->peer, keyed, any, aigw_peer_endpoint (self->peer), origin_id);
    }
    zhashx_delete (self->pending, origin_id);
}

void
aigw_host_cancel (aigw_host_t *self, aigw_job_t *job)
{
    job->cancelled = true;
    //  Queued, or with a stage that cannot drop it: it is dropped when it
    //  next moves.
    if (job->stage >= 0 && self->stages[job->stage].def->cancel)
        self->stages[job->stage].def->cancel (self->stages[job->stage].state, job);
}

bool
aigw_host_owns (aigw_host_t *self, const char *service, const char *shard)
{
    return self ? s_host_takes (self, s_host_find (self, service), shard) : true;
}

const char *
aigw_host_shard_owner (aigw_host_t *self, const char *service, const char *shard)
{
    if (!self || !self->peer || !aigw_peer_has_directory (self->peer))
        return NULL;
    return aigw_peer_owner (self->peer, service, shard);
}

int
aigw_host_oneway (aigw_host_t *self, const char *service, const char *shard,
                  aigw_envelope_t **env_p)
{
    aigw_envelope_t *env = *env_p;
    if (!env)
        return -1;
    int index = s_host_find (self, service);
    if (s_host_takes (self, index, shard)) {
        s_host_enqueue (self, s_job_new (self, NULL, NULL), env, index);
        *env_p = NULL;
        return 0;
    }
    int rc = -1;
    size_t size;
    //  A host with no stage (an edge alone) reaches owners through its
    //  peer only; the broker's way needs a worker of ours.
    char *data = aigw_envelope_encode (env, &size);
    if (data && self->peer && aigw_peer_has_directory (self->peer)) {
        //  Straight to the owner: the broker stays off the data path.
        char *copy = (char *) malloc (size);
        assert (copy);
        memcpy (copy, data, size);
        rc = aigw_peer_oneway (self->peer, service, shard, env->id, &copy, size);
    }
    if (data && rc == -1 && self->stage_count)
        //  Through the broker: any of our workers may send it, a one-way
        //  request holds no credit.
        rc = aigw_worker_send_oneway (self->stages[0].worker, service, shard,
                                      env->id ? env->id : "", &data, size);
    free (data);
    aigw_envelope_destroy (env_p);
    return rc;
}

int
aigw_host_pollitems (aigw_host_t *self, zmq_pollitem_t *items, int max)
{
    int count = 0;
    int64_t now = aigw_now_ms ();
    self->cold = now >= self->cold_due;
    if (self->cold)
        self->cold_due = now + AIGW_HOST_COLD_MS;
    self->item_peer = 0;
    self->item_peer_count = aigw_peer_pollitems (self->peer, items, max);
    count += self->item_peer_count;
    for (int i = 0; i < self->stage_count && count < max; i++) {
        s_stage_t *stage = &self->stages[i];
        //  The socket changes after a reconnect: fetched again every pass.
        stage->item_worker = count;
        items[count++] = aigw_host_cold_item (self, aigw_worker_sock (stage->worker),
                                              aigw_worker_fd (stage->worker));
        stage->item_first = count;
        stage->item_count = stage->def->pollitems && count < max
                                ? stage->def->pollitems (stage->state, items + count, max - count)
                                : 0;
        count += stage->item_count;
    }
    return count;
}

zmq_pollitem_t
aigw_host_cold_item (aigw_host_t *self, zsock_t *sock, int fd)
{
    return self->cold ? (zmq_pollitem_t){zsock_resolve (sock), 0, ZMQ_POLLIN, 0}
                      : (zmq_pollitem_t){NULL, fd, ZMQ_POLLIN, 0};
}

int
aigw_host_timeout (aigw_host_t *self, int timeout)
{
    if (self->run_head)
        return 0;
    int64_t cold = self->cold_due - aigw_now_ms ();
    if (cold < timeout)
        timeout = cold > 0 ? (int) cold : 0;
    int due = aigw_peer_timeout (self->peer);
    if (due >= 0 && due < timeout)
        timeout = due;
    for (int i = 0; i < self->stage_count; i++) {
        s_stage_t *stage = &self->stages[i];
        int due = aigw_worker_tick (stage->worker);
        if (due < timeout)
            timeout = due;
        if (stage->def->timeout) {
            due = stage->def->timeout (stage->state);
            if (due >= 0 && due < timeout)
                timeout = due;
        }
    }
    if (self->stage_count) {
        int64_t tick = self->next_tick - aigw_now_ms ();
        if (tick < timeout)
            timeout = tick > 0 ? (int) tick : 0;
    }
    return timeout < 0 ? 0 : timeout;
}

//  Run every hand-off in the queue, those it makes included.
static void
s_host_run (aigw_host_t *self)
{
    while (self->run_head) {
        s_run_t *run = self->run_head;
        self->run_head = run->next;
        if (!self->run_head)
            self->run_tail = NULL;
        s_stage_t *stage = &self->stages[run->stage];
        aigw_job_t *job = run->job;
        aigw_envelope_t *env = run->env;
        free (run);
        if (job->cancelled) {
            aigw_job_destroy (&job);
            aigw_envelope_destroy (&env);
            continue;
        }
        job->stage = (int) (stage - self->stages);
        if (env->hop < AIGW_ROUTE_MAX)
            env->stage_us[2 * env->hop] = aigw_now_us ();
        if (stage->def->take)
            stage->def->take (stage->state, job, env);
        else {
            stage->def->handle (stage->state, env);
            aigw_stage_pass (&job, &env);
        }
    }
}

//  Decode a job's envelope; NULL (and the job dropped) when malformed.
static aigw_envelope_t *
s_decode (aigw_job_t **job_p, zframe_t *frame)
{
    aigw_job_t *job = *job_p;
    char err[128];
    aigw_envelope_t *env
        = aigw_envelope_decode (zframe_data (frame), zframe_size (frame), err, sizeof err);
    if (!env) {
        aigw_warn ("dropping request %s: bad envelope: %s", job->request_id, err);
        aigw_job_destroy (job_p);
    }
    return env;
}

//  True when MEMO (keys to expiry, ORDER oldest first) holds EVENT's
//  request (at HOP of its route, unless HOP is -1); else, with ADD,
//  remember it for AIGW_STAGE_SEEN_MS.
static bool
s_memo (zhashx_t *memo, zlistx_t *order, aigw_peer_event_t *event, int hop, bool add)
{
    int64_t now = aigw_now_ms ();
    char *oldest;
    while ((oldest = (char *) zlistx_first (order))) {
        int64_t *expiry = (int64_t *) zhashx_lookup (memo, oldest);
        if (expiry && *expiry > now)
            break;
        zhashx_delete (memo, oldest);
        zlistx_delete (order, zlistx_cursor (order));
    }
    char *key = aigw_peer_request_key (event->origin, event->request_id);
    if (hop >= 0) {
        //  The same request may come twice for two hops of its route.
        char *at_hop = zsys_sprintf ("%s#%d", key, hop);
        zstr_free (&key);
        key = at_hop;
    }
    bool seen = zhashx_lookup (memo, key) != NULL;
    if (!seen && add) {
        int64_t *expiry = (int64_t *) malloc (sizeof *expiry);
        assert (expiry);
        *expiry = now + AIGW_STAGE_SEEN_MS;
        zhashx_insert (memo, key, expiry);
        zlistx_add_end (order, key);
    }
    else
        zstr_free (&key);
    return seen;
}

//  True when a stage that is not replay-safe took EVENT's request at HOP
//  before; else remember it. By hop: one request may visit a stage twice
//  (the provider fetches the semantic cache's vector before the cache,
//  then answers after it). Kept apart from cancels: a replay-safe stage
//  must still take a copy sent again after a death.
static bool
s_seen (aigw_host_t *self, aigw_peer_event_t *event, int hop)
{
    return s_memo (self->seen, self->seen_order, event, hop, true);
}

//  True when a stage that is not replay-safe runs here at or after ENV's
//  hop: a copy of the request sent again after a death must not run it
//  twice, even when it comes for a replay-safe stage before it (cache,
//  then provider by call).
static bool
s_runs_once (aigw_host_t *self, const aigw_envelope_t *env)
{
    for (int h = env->hop; h < env->route_len && env->route[h]; h++) {
        int index = s_host_find (self, env->route[h]);
        if (index >= 0 && !self->stages[index].def->replay_safe)
            return true;
    }
    return false;
}

//  A request from a peer for one of our stages.
static void
s_take_peer_request (aigw_host_t *self, aigw_peer_event_t *event)
{
    aigw_job_t *job = s_job_new (self, NULL, event->request_id);
    job->reply_to = strdup (event->origin);
    job->sender = strdup (event->sender);
    int index = s_host_find (self, event->service);
    char err[128] = "";
    aigw_envelope_t *env = NULL;
    bool gone = s_memo (self->cancelled, self->cancelled_order, event, -1, false);
    if (!gone && index >= 0 && !(event->deadline_ms && event->deadline_ms <= aigw_now_ms ()))
        env = aigw_envelope_decode (zframe_data (event->envelope), zframe_size (event->envelope),
                                    err, sizeof err);
    if (gone || (env && s_runs_once (self, env) && s_seen (self, event, env->hop))) {
        //  A copy of a request this stage runs or ran: the first answers.
        //  Or its client left before it came here: nobody waits.
        if (gone)
            aigw_debug ("peer request %s for %s: its client left; dropped", event->request_id,
                        event->service);
        else
            aigw_info ("peer request %s for %s came again; dropped", event->request_id,
                       event->service);
        aigw_envelope_destroy (&env);
        s_job_leaves (self, job);
        free (job->reply_to);
        job->reply_to = NULL;
        aigw_job_destroy (&job);
        return;
    }
    if (index < 0)
        snprintf (err, sizeof err, "The stage '%.64s' is not served here.", event->service);
    else if (event->deadline_ms && event->deadline_ms <= aigw_now_ms ())
        snprintf (err, sizeof err, "The deadline passed.");
    else if (!env)
        aigw_warn ("peer request %s: bad envelope: %s", event->request_id, err);
    if (!env) {
        aigw_peer_error (self->peer, job->reply_to, job->request_id,
                         index < 0     ? 503
                         : *err == 'T' ? 504
                                       : 500,
                         *err ? err : "Bad request envelope.");
        s_job_leaves (self, job);
        free (job->reply_to);
        job->reply_to = NULL;
        aigw_job_destroy (&job);
        return;
    }
    //  Any stage here may hand it on by call to the one a CANCEL is for.
    job->held = aigw_peer_request_key (event->origin, event->request_id);
    zhashx_update (self->held, job->held, job);
    s_host_enqueue (self, job, env, index);
}

//  A one-way request from a peer: run it, nobody waits for an answer.
static void
s_take_peer_oneway (aigw_host_t *self, aigw_peer_event_t *event)
{
    int index = s_host_find (self, event->service);
    char err[128] = "";
    aigw_envelope_t *env
        = index < 0 ? NULL
                    : aigw_envelope_decode (zframe_data (event->envelope),
                                            zframe_size (event->envelope), err, sizeof err);
    if (!env) {
        aigw_debug ("peer one-way %s for %s dropped: %s", event->request_id, event->service,
                    index < 0 ? "not served here" : err);
        return;
    }
    s_host_enqueue (self, s_job_new (self, NULL, NULL), env, index);
}

//  A peer's client left: drop its request here, or when it comes.
static void
s_take_peer_cancel (aigw_host_t *self, aigw_peer_event_t *event)
{
    char *key = aigw_peer_request_key (event->origin, event->request_id);
    aigw_job_t *job = (aigw_job_t *) zhashx_lookup (self->held, key);
    zstr_free (&key);
    //  Not here yet, or here and sent again later (a CANCEL goes to every
    //  process that may hold it): dropped when it comes.
    s_memo (self->cancelled, self->cancelled_order, event, -1, true);
    if (job && !job->cancelled) {
        aigw_debug ("peer request %s: its client left; cancelled", event->request_id);
        aigw_host_cancel (self, job);
    }
}

//  A reply from a peer for a request the front here made.
static void
s_take_peer_reply (aigw_host_t *self, aigw_peer_event_t **event_p)
{
    aigw_peer_event_t *event = *event_p;
    void *origin = zhashx_lookup (self->pending, event->request_id);
    if (!origin || !self->front.self) {
        aigw_peer_event_destroy (event_p);
        return;  //  the front forgot it: its client left
    }
    aigw_client_event_t *out = calloc (1, sizeof *out);
    assert (out);
    out->type = event->type == AIGW_PEER_REPLY ? AIGW_BP_CLIENT_REPLY : AIGW_BP_CLIENT_ERROR;
    out->request_id = event->request_id;
    event->request_id = NULL;
    out->last = event->last;
    out->envelope = event->envelope;
    event->envelope = NULL;
    out->status = event->status;
    out->text = event->text;
    event->text = NULL;
    if (out->type == AIGW_BP_CLIENT_ERROR || out->last)
        zhashx_delete (self->pending, out->request_id);
    aigw_peer_event_destroy (event_p);
    self->front.deliver (self->front.self, origin, &out);
}

void
aigw_host_process (aigw_host_t *self, zmq_pollitem_t *items, int count)
{
    int64_t now = aigw_now_ms ();
    bool tick = self->stage_count && now >= self->next_tick;
    if (tick)
        self->next_tick = now + AIGW_STAGE_TICK_MS;
    for (int i = 0; i < self->stage_count; i++) {
        s_stage_t *stage = &self->stages[i];
        if (stage->def->process)
            stage->def->process (
                stage->state, stage->item_first < count ? items + stage->item_first : NULL,
                stage->item_first + stage->item_count <= count ? stage->item_count : 0);
        if (tick && stage->def->tick)
            stage->def->tick (stage->state);
    }
    //  Requests from the broker: a batch per worker per pass, so that one
    //  busy stage cannot starve the others or the heartbeats; the socket
    //  stays readable when more wait.
    for (int i = 0; i < self->stage_count; i++) {
        //  Only a socket the poll saw readable: a read costs libzmq a
        //  syscall even when nothing waits.
        int at = self->stages[i].item_worker;
        if (items && count && !(at < count && (items[at].revents & ZMQ_POLLIN)))
            continue;
        aigw_job_t *job;
        for (int taken = 0;
             taken < AIGW_STAGE_BATCH_MAX && (job = aigw_worker_recv (self->stages[i].worker));
             taken++) {
            job->runtime = self;
            job->replay_safe = self->stages[i].def->replay_safe;
            aigw_envelope_t *env = s_decode (&job, job->envelope);
            if (env) {
                zframe_destroy (&job->envelope);
                s_host_enqueue (self, job, env, i);
            }
        }
        s_host_run (self);
    }
    if (self->stage_count) {
        const char *version;
        const char *text = aigw_worker_directory (self->stages[0].worker, &version);
        if (text)
            aigw_peer_set_directory (self->peer, version, text);
    }
    //  Messages from peers, a batch per pass as above.
    aigw_peer_event_t *event;
    for (int taken = 0; taken < AIGW_STAGE_BATCH_MAX && (event = aigw_peer_recv (self->peer));
         taken++) {
        if (event->type == AIGW_PEER_REQUEST) {
            s_take_peer_request (self, event);
            aigw_peer_event_destroy (&event);
        }
        else if (event->type == AIGW_PEER_CANCEL) {
            s_take_peer_cancel (self, event);
            aigw_peer_event_destroy (&event);
        }
        else if (event->type == AIGW_PEER_ONEWAY) {
            s_take_peer_oneway (self, event);
            aigw_peer_event_destroy (&event);
        }
        else
            s_take_peer_reply (self, &event);
    }
    s_host_run (self);
    //  What the stages sent, and the DONEs they owe, go out now.
    aigw_peer_process (self->peer, items + self->item_peer, self->item_peer_count);
}

void
aigw_host_actor (zsock_t *pipe, void *args)
{
    aigw_host_args_t *host_args = (aigw_host_args_t *) args;
    char name[16];
    snprintf (name, sizeof name, "aigw-%s", host_args->stages);
    pthread_setname_np (pthread_self (), name);
    //  Other processes may run the same stages: the directory names the
    //  owner of each key.
    aigw_host_t *self = aigw_host_new (host_args->config, host_args->endpoint, host_args->stages,
                                       false, host_args->err, sizeof host_args->err);
    if (!self) {
        host_args->failed = true;
        zsock_signal (pipe, 1);
        return;
    }
    zsock_signal (pipe, 0);
    zmq_pollitem_t items[1 + AIGW_HOST_POLLITEMS_MAX];
    int pipe_fd = zsock_fd (pipe);
    while (true) {
        int timeout = aigw_host_timeout (self, AIGW_STAGE_TICK_MS);
        int count = aigw_host_pollitems (self, items + 1, AIGW_HOST_POLLITEMS_MAX);
        //  The pipe is a cold socket too (AIGW_HOST_COLD_MS).
        items[0] = aigw_host_cold_item (self, pipe, pipe_fd);
        if (zmq_poll (items, 1 + count, timeout) == -1)
            break;  //  interrupted
        if ((items[0].revents & ZMQ_POLLIN) && aigw_stage_pipe_term (pipe))
            break;
        aigw_host_process (self, items + 1, count);
    }
    aigw_host_destroy (&self);
}
