/*  aigw_provider: upstream calls with libcurl multi inside the actor loop. */
#include "aigw_provider.h"
#include "aigw_log.h"
#include "aigw_openai.h"

#include <curl/curl.h>
#include <jansson.h>
#include <sys/epoll.h>

//  Largest upstream answer we hold (non-streaming bodies, error bodies).
#define AIGW_PROVIDER_MAX_RESPONSE (32 * 1024 * 1024)
//  Events taken from epoll per call.
#define AIGW_PROVIDER_EPOLL_BATCH 256
//  Header line buffer size.
#define AIGW_PROVIDER_HEADER_MAX 512
//  curl multi handles per actor. Each new transfer scans its multi's whole
//  connection pool, so one pool of 10,000 connections costs O(n^2); shards
//  keep each pool small. Transfers are dealt out round-robin.
#define AIGW_PROVIDER_SHARDS 16

typedef struct _self_t self_t;

//  One curl multi handle and its timer.
typedef struct {
    self_t *owner;              //  the actor
    CURLM *multi;               //  transfers of this shard
    uint32_t index;             //  position in owner->shards
    int64_t timer_at;           //  curl's timer, Unix ms, -1 = none
} s_shard_t;

//  One upstream call in flight.
typedef struct _s_transfer_t {
    self_t *owner;              //  the actor that runs it
    s_shard_t *shard;           //  the multi handle it runs in
    CURL *easy;                 //  curl handle
    struct curl_slist *headers; //  request headers
    aigw_job_t *job;            //  broker job, answered when done
    aigw_envelope_t *env;       //  the request, reused for every reply
    char *request;              //  request body sent upstream
    size_t request_len;         //  bytes in request
    char *buf;                  //  response bytes not yet relayed
    size_t buf_len;             //  bytes used in buf
    size_t buf_cap;             //  bytes allocated in buf
    long http_status;           //  upstream status, 0 until known
    int retry_after;            //  upstream Retry-After seconds
    bool started;               //  a streamed chunk reached the client
    bool saw_done;              //  the stream's [DONE] arrived
    struct _s_transfer_t *prev; //  previous in the actor's list
    struct _s_transfer_t *next; //  next in the actor's list
} s_transfer_t;

//  The actor's private state.
struct _self_t {
    const aigw_config_t *config; //  settings (shared, read-only)
    aigw_worker_t *worker;      //  our broker connection
    s_shard_t shards[AIGW_PROVIDER_SHARDS]; //  curl multi handles
    uint32_t next_shard;        //  where the next transfer goes
    int epfd;                   //  epoll set of every shard's sockets
    s_transfer_t *transfers;    //  transfers in flight
    char upstream_auth[AIGW_PROVIDER_HEADER_MAX]; //  Authorization header
    bool has_auth;              //  whether upstream_auth is set
};

static void
s_transfer_destroy (s_transfer_t **self_p)
{
    s_transfer_t *t = *self_p;
    if (!t)
        return;
    if (t->easy) {
        curl_multi_remove_handle (t->shard->multi, t->easy);
        curl_easy_cleanup (t->easy);
    }
    curl_slist_free_all (t->headers);
    aigw_job_destroy (&t->job);
    aigw_envelope_destroy (&t->env);
    free (t->request);
    free (t->buf);
    if (t->prev)
        t->prev->next = t->next;
    else
        t->owner->transfers = t->next;
    if (t->next)
        t->next->prev = t->prev;
    free (t);
    *self_p = NULL;
}

//  Send ENV's current state as a reply to the job; LAST ends the job.
static void
s_reply (s_transfer_t *t)
{
    if (t->env->last)
        aigw_stage_pass (t->owner->worker, &t->job, t->env, t->owner->config);
    else
        aigw_stage_chunk (t->owner->worker, &t->job, t->env);
}

//  Relay every complete SSE event in the buffer as one chunk.
static void
s_relay_events (s_transfer_t *t)
{
    size_t used = 0, end;
    while ((end = aigw_openai_sse_event_end (t->buf + used, t->buf_len - used))) {
        if (aigw_openai_sse_is_done (t->buf + used, end))
            t->saw_done = true;
        used += end;
    }
    if (used == 0)
        return;
    aigw_envelope_t *env = t->env;
    env->status = 200;
    aigw_envelope_set (&env->content_type, "text/event-stream");
    aigw_envelope_set_body (env, t->buf, used);
    env->last = false;
    s_reply (t);
    env->seq++;
    t->started = true;
    memmove (t->buf, t->buf + used, t->buf_len - used);
    t->buf_len -= used;
}

//  curl write callback: collect, and relay streams as events complete.
static size_t
s_on_data (char *data, size_t size, size_t count, void *userdata)
{
    s_transfer_t *t = (s_transfer_t *) userdata;
    size_t len = size * count;
    if (t->buf_len + len > AIGW_PROVIDER_MAX_RESPONSE)
        return 0;               //  curl fails the transfer: CURLE_WRITE_ERROR
    if (t->buf_len + len > t->buf_cap) {
        size_t cap = t->buf_cap ? t->buf_cap * 2 : 4096;
        while (cap < t->buf_len + len)
            cap *= 2;
        char *buf = realloc (t->buf, cap);
        if (!buf)
            return 0;
        t->buf = buf;
        t->buf_cap = cap;
    }
    memcpy (t->buf + t->buf_len, data, len);
    t->buf_len += len;
    if (t->env->stream) {
        if (!t->http_status)
            curl_easy_getinfo (t->easy, CURLINFO_RESPONSE_CODE, &t->http_status);
        if (t->http_status == 200)
            s_relay_events (t);
    }
    return len;
}

//  curl header callback: keeps Retry-After.
static size_t
s_on_header (char *data, size_t size, size_t count, void *userdata)
{
    s_transfer_t *t = (s_transfer_t *) userdata;
    size_t len = size * count;
    static const char name[] = "retry-after:";
    if (len > sizeof name && strncasecmp (data, name, sizeof name - 1) == 0) {
        int seconds = atoi (data + sizeof name - 1);
        if (seconds > 0 && seconds < 86400)
            t->retry_after = seconds;
    }
    return len;
}

//  Answer the request with an error; mid-stream, as a final SSE error event.
static void
s_fail (s_transfer_t *t, int status, const char *type, const char *code,
        const char *message)
{
    aigw_envelope_t *env = t->env;
    if (status >= 500)
        aigw_warn ("request %s: %d %s: %s", env->id ? env->id : "?", status, code, message);
    if (t->started) {
        json_t *event = json_pack ("{s:{s:s,s:s,s:s}}", "error", "message", message,
                                   "type", type, "code", code);
        char *text = json_dumps (event, JSON_COMPACT);
        json_decref (event);
        char *frame = zsys_sprintf ("data: %s\n\n", text ? text : "{}");
        free (text);
        aigw_envelope_set_body (env, frame, strlen (frame));
        zstr_free (&frame);
        env->last = true;
        s_reply (t);
        return;
    }
    aigw_envelope_set_error (env, status, type, code, NULL, message);
    env->retry_after = t->retry_after;
    s_reply (t);
}

//  A transfer ended: answer the client, and feed the cache.
static void
s_transfer_done (s_transfer_t *t, CURLcode rc)
{
    self_t *self = t->owner;
    aigw_envelope_t *env = t->env;
    curl_easy_getinfo (t->easy, CURLINFO_RESPONSE_CODE, &t->http_status);
    if (rc == CURLE_OPERATION_TIMEDOUT) {
        s_fail (t, 504, "timeout_error", "upstream_timeout",
                "The upstream did not answer within the request deadline.");
        return;
    }
    if (rc != CURLE_OK) {
        char message[256];
        snprintf (message, sizeof message, "The upstream could not be reached: %s.",
                  curl_easy_strerror (rc));
        s_fail (t, 502, "upstream_error", "upstream_unreachable", message);
        return;
    }
    long status = t->http_status;
    if (status == 200 && env->stream) {
        s_relay_events (t);
        if (!t->saw_done) {
            s_fail (t, 502, "upstream_error", "upstream_stream_ended",
                    "The upstream ended the stream early.");
            return;
        }
        aigw_envelope_set_body (env, NULL, 0);
        env->last = true;
        s_reply (t);
        return;
    }
    if (status >= 200 && status < 300) {
        env->status = 200;
        aigw_envelope_set (&env->content_type, "application/json");
        aigw_envelope_take_body (env, t->buf, t->buf_len);
        t->buf = NULL;
        t->buf_len = t->buf_cap = 0;
        env->last = true;
        if (env->cache_status && streq (env->cache_status, "MISS") && env->cache_key) {
            //  Sent before the reply, so the cache owner has it before the
            //  client can ask again (the broker keeps per-peer order).
            size_t size;
            char *data = aigw_envelope_encode (env, &size);
            if (data)
                aigw_worker_send_oneway (self->worker, "cache", env->cache_key, env->id,
                                         &data, size);
        }
        s_reply (t);
        return;
    }
    char *upstream = aigw_openai_error_message (t->buf, t->buf_len);
    char message[512];
    if (status == 400 || status == 404 || status == 409 || status == 413
        || status == 422) {
        //  The client's own mistake, seen by the upstream: pass it through.
        snprintf (message, sizeof message, "%.480s",
                  upstream ? upstream : "The upstream rejected the request.");
        aigw_envelope_set_error (env, (int) status, "invalid_request_error",
                                 "upstream_rejected", NULL, message);
        s_reply (t);
    }
    else if (status == 429) {
        snprintf (message, sizeof message, "The upstream is rate limiting: %.400s",
                  upstream ? upstream : "too many requests");
        if (!t->retry_after)
            t->retry_after = 1;
        s_fail (t, 429, "rate_limit_error", "upstream_rate_limited", message);
    }
    else {
        snprintf (message, sizeof message, "The upstream answered HTTP %ld: %.400s",
                  status, upstream ? upstream : "no message");
        s_fail (t, 502, "upstream_error", "upstream_error", message);
    }
    free (upstream);
}

//  Collect finished transfers. Runs outside every curl callback.
static void
s_shard_check_done (s_shard_t *shard)
{
    CURLMsg *msg;
    int left;
    while ((msg = curl_multi_info_read (shard->multi, &left))) {
        if (msg->msg != CURLMSG_DONE)
            continue;
        s_transfer_t *t = NULL;
        curl_easy_getinfo (msg->easy_handle, CURLINFO_PRIVATE, (char **) &t);
        CURLcode rc = msg->data.result;
        s_transfer_done (t, rc);
        s_transfer_destroy (&t);
    }
}

//  curl socket callback: mirror curl's interest in the epoll set. The event
//  carries the shard index in its high half and the fd in its low half.
static int
s_on_socket (CURL *easy, curl_socket_t fd, int what, void *userp, void *socketp)
{
    s_shard_t *shard = (s_shard_t *) userp;
    self_t *self = shard->owner;
    if (what == CURL_POLL_REMOVE) {
        epoll_ctl (self->epfd, EPOLL_CTL_DEL, fd, NULL);
        curl_multi_assign (shard->multi, fd, NULL);
        return 0;
    }
    struct epoll_event ev = {0};
    ev.data.u64 = ((uint64_t) shard->index << 32) | (uint32_t) fd;
    if (what & CURL_POLL_IN)
        ev.events |= EPOLLIN;
    if (what & CURL_POLL_OUT)
        ev.events |= EPOLLOUT;
    if (socketp)
        epoll_ctl (self->epfd, EPOLL_CTL_MOD, fd, &ev);
    else {
        epoll_ctl (self->epfd, EPOLL_CTL_ADD, fd, &ev);
        curl_multi_assign (shard->multi, fd, shard);
    }
    return 0;
}

//  curl timer callback: one timer for the whole multi.
static int
s_on_timer (CURLM *multi, long timeout_ms, void *userp)
{
    s_shard_t *shard = (s_shard_t *) userp;
    shard->timer_at = timeout_ms < 0 ? -1 : aigw_now_ms () + timeout_ms;
    return 0;
}

//  Answer GET /v1/models from the config.
static void
s_answer_models (self_t *self, aigw_job_t **job_p, aigw_envelope_t *env)
{
    json_t *data = json_array ();
    for (int i = 0; i < self->config->model_count; i++)
        if (aigw_stage_model_allowed (env, self->config->models[i].name))
            json_array_append_new (
            data, json_pack ("{s:s,s:s,s:i,s:s}", "id", self->config->models[i].name,
                             "object", "model", "created", 0, "owned_by",
                             self->config->models[i].provider));
    json_t *root = json_pack ("{s:s,s:o}", "object", "list", "data", data);
    char *text = json_dumps (root, JSON_COMPACT);
    json_decref (root);
    aigw_envelope_take_body (env, text, strlen (text));
    aigw_envelope_set (&env->content_type, "application/json");
    aigw_envelope_set (&env->cache_status, "BYPASS");
    env->status = 200;
    env->last = true;
    aigw_stage_pass (self->worker, job_p, env, self->config);
}

//  Start the upstream call for one request; answers at once on errors.
static void
s_self_take (void *arg, aigw_job_t *job, aigw_envelope_t *env)
{
    self_t *self = (self_t *) arg;
    if (env->kind == AIGW_KIND_MODELS) {
        s_answer_models (self, &job, env);
        aigw_envelope_destroy (&env);
        return;
    }
    s_transfer_t *t = calloc (1, sizeof *t);
    t->owner = self;
    t->shard = &self->shards[self->next_shard++ % AIGW_PROVIDER_SHARDS];
    t->job = job;
    t->env = env;
    t->next = self->transfers;
    if (self->transfers)
        self->transfers->prev = t;
    self->transfers = t;

    const aigw_config_model_t *model = aigw_config_model (self->config, env->model);
    const char *path = aigw_openai_path ((aigw_kind_t) env->kind);
    int64_t remaining = env->deadline_ms - aigw_now_ms ();
    if (!model || !path || !streq (model->provider, "openai")) {
        s_fail (t, 404, "invalid_request_error", "model_not_found",
                "The model is not served by any configured provider.");
        s_transfer_destroy (&t);
        return;
    }
    if (remaining <= 0) {
        s_fail (t, 504, "timeout_error", "deadline_exceeded",
                "The request deadline passed before the upstream call.");
        s_transfer_destroy (&t);
        return;
    }
    aigw_envelope_set (&env->provider, model->provider);
    if (model->upstream_model && !streq (model->upstream_model, model->name))
        t->request = aigw_openai_with_model (env->body, env->body_len,
                                             model->upstream_model, &t->request_len);
    if (!t->request) {
        //  Sent as the client wrote it: take the body, no copy.
        t->request = env->body;
        t->request_len = env->body_len;
        env->body = NULL;
        env->body_len = 0;
    }
    char url[2048];
    snprintf (url, sizeof url, "%s%s", self->config->openai_base_url, path);
    t->headers = curl_slist_append (t->headers, "Content-Type: application/json");
    t->headers = curl_slist_append (t->headers, "Expect:");
    if (env->stream)
        t->headers = curl_slist_append (t->headers, "Accept: text/event-stream");
    if (self->has_auth)
        t->headers = curl_slist_append (t->headers, self->upstream_auth);

    CURL *easy = curl_easy_init ();
    t->easy = easy;
    curl_easy_setopt (easy, CURLOPT_URL, url);
    curl_easy_setopt (easy, CURLOPT_PRIVATE, t);
    curl_easy_setopt (easy, CURLOPT_HTTPHEADER, t->headers);
    curl_easy_setopt (easy, CURLOPT_POST, 1L);
    curl_easy_setopt (easy, CURLOPT_POSTFIELDS, t->request);
    curl_easy_setopt (easy, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t) t->request_len);
    curl_easy_setopt (easy, CURLOPT_WRITEFUNCTION, s_on_data);
    curl_easy_setopt (easy, CURLOPT_WRITEDATA, t);
    curl_easy_setopt (easy, CURLOPT_HEADERFUNCTION, s_on_header);
    curl_easy_setopt (easy, CURLOPT_HEADERDATA, t);
    curl_easy_setopt (easy, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt (easy, CURLOPT_TCP_NODELAY, 1L);
    curl_easy_setopt (easy, CURLOPT_TCP_KEEPALIVE, 1L);
    curl_easy_setopt (easy, CURLOPT_CONNECTTIMEOUT_MS,
                      (long) self->config->connect_timeout_ms);
    curl_easy_setopt (easy, CURLOPT_TIMEOUT_MS, (long) remaining);
    curl_easy_setopt (easy, CURLOPT_PIPEWAIT, 1L);
    if (curl_multi_add_handle (t->shard->multi, easy) != CURLM_OK) {
        s_fail (t, 502, "upstream_error", "upstream_unreachable",
                "The upstream call could not be started.");
        s_transfer_destroy (&t);
    }
}

static void
s_self_destroy (self_t **self_p)
{
    self_t *self = *self_p;
    if (!self)
        return;
    while (self->transfers) {
        s_transfer_t *t = self->transfers;
        s_transfer_destroy (&t);
    }
    for (int i = 0; i < AIGW_PROVIDER_SHARDS; i++)
        if (self->shards[i].multi)
            curl_multi_cleanup (self->shards[i].multi);
    if (self->epfd >= 0)
        close (self->epfd);
    aigw_worker_destroy (&self->worker);
    memset (self->upstream_auth, 0, sizeof self->upstream_auth);
    free (self);
    *self_p = NULL;
}

static self_t *
s_self_new (aigw_stage_args_t *args)
{
    self_t *self = calloc (1, sizeof *self);
    if (!self)
        return NULL;
    self->config = args->config;
    self->epfd = epoll_create1 (EPOLL_CLOEXEC);
    if (self->epfd < 0) {
        s_self_destroy (&self);
        return NULL;
    }
    //  The host connection limit is shared out among the shards.
    long per_shard = (self->config->max_host_connections + AIGW_PROVIDER_SHARDS - 1)
                     / AIGW_PROVIDER_SHARDS;
    for (uint32_t i = 0; i < AIGW_PROVIDER_SHARDS; i++) {
        s_shard_t *shard = &self->shards[i];
        shard->owner = self;
        shard->index = i;
        shard->timer_at = -1;
        shard->multi = curl_multi_init ();
        if (!shard->multi) {
            s_self_destroy (&self);
            return NULL;
        }
        curl_multi_setopt (shard->multi, CURLMOPT_SOCKETFUNCTION, s_on_socket);
        curl_multi_setopt (shard->multi, CURLMOPT_SOCKETDATA, shard);
        curl_multi_setopt (shard->multi, CURLMOPT_TIMERFUNCTION, s_on_timer);
        curl_multi_setopt (shard->multi, CURLMOPT_TIMERDATA, shard);
        curl_multi_setopt (shard->multi, CURLMOPT_MAX_HOST_CONNECTIONS, per_shard);
        curl_multi_setopt (shard->multi, CURLMOPT_MAXCONNECTS, per_shard);
        curl_multi_setopt (shard->multi, CURLMOPT_PIPELINING, CURLPIPE_MULTIPLEX);
    }
    const char *key = self->config->openai_api_key;
    if (key && *key) {
        snprintf (self->upstream_auth, sizeof self->upstream_auth,
                  "Authorization: Bearer %s", key);
        self->has_auth = true;
    }
    self->worker = aigw_worker_new (args->endpoint, "provider",
                                    self->config->worker_credit, false,
                                    self->config->heartbeat_ms, self->config->liveness);
    if (!self->worker)
        s_self_destroy (&self);
    return self;
}

//  Let curl act on the sockets epoll reports ready.
static void
s_self_handle_sockets (self_t *self)
{
    struct epoll_event events[AIGW_PROVIDER_EPOLL_BATCH];
    int count;
    do {
        count = epoll_wait (self->epfd, events, AIGW_PROVIDER_EPOLL_BATCH, 0);
        for (int i = 0; i < count; i++) {
            int mask = 0;
            if (events[i].events & EPOLLIN)
                mask |= CURL_CSELECT_IN;
            if (events[i].events & EPOLLOUT)
                mask |= CURL_CSELECT_OUT;
            if (events[i].events & (EPOLLERR | EPOLLHUP))
                mask |= CURL_CSELECT_ERR;
            s_shard_t *shard = &self->shards[events[i].data.u64 >> 32];
            curl_socket_t fd = (curl_socket_t) (events[i].data.u64 & 0xFFFFFFFFu);
            int running;
            curl_multi_socket_action (shard->multi, fd, mask, &running);
        }
    } while (count == AIGW_PROVIDER_EPOLL_BATCH);
}

void
aigw_provider_actor (zsock_t *pipe, void *args)
{
    pthread_setname_np (pthread_self (), "aigw-provider");
    self_t *self = s_self_new ((aigw_stage_args_t *) args);
    if (!self) {
        aigw_error ("provider actor could not start");
        zsock_signal (pipe, 1);
        return;
    }
    zsock_signal (pipe, 0);
    while (true) {
        int timeout = aigw_worker_tick (self->worker);
        int64_t now = aigw_now_ms ();
        for (int i = 0; i < AIGW_PROVIDER_SHARDS; i++)
            if (self->shards[i].timer_at >= 0) {
                int64_t wait = self->shards[i].timer_at - now;
                if (wait < timeout)
                    timeout = wait > 0 ? (int) wait : 0;
            }
        zmq_pollitem_t items[] = {
            {zsock_resolve (pipe), 0, ZMQ_POLLIN, 0},
            {zsock_resolve (aigw_worker_sock (self->worker)), 0, ZMQ_POLLIN, 0},
            {NULL, self->epfd, ZMQ_POLLIN, 0}};
        if (zmq_poll (items, 3, timeout) == -1)
            break;
        if ((items[0].revents & ZMQ_POLLIN) && aigw_stage_pipe_term (pipe))
            break;
        if (items[2].revents & ZMQ_POLLIN)
            s_self_handle_sockets (self);
        now = aigw_now_ms ();
        for (int i = 0; i < AIGW_PROVIDER_SHARDS; i++) {
            s_shard_t *shard = &self->shards[i];
            if (shard->timer_at >= 0 && now >= shard->timer_at) {
                shard->timer_at = -1;
                int running;
                curl_multi_socket_action (shard->multi, CURL_SOCKET_TIMEOUT, 0, &running);
            }
        }
        //  A batch per pass: starting a transfer costs tens of microseconds,
        //  and 10,000 at once would starve heartbeats.
        if (items[1].revents & ZMQ_POLLIN)
            aigw_stage_take (self->worker, s_self_take, self);
        for (int i = 0; i < AIGW_PROVIDER_SHARDS; i++)
            s_shard_check_done (&self->shards[i]);
    }
    s_self_destroy (&self);
}

void
aigw_provider_test (bool verbose)
{
    aigw_openai_test (verbose);
    if (verbose)
        printf ("provider: ok\n");
}
