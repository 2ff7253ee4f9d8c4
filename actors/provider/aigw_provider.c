/*  aigw_provider: routes each request across its model's deployments and
    calls the chosen upstream with libcurl multi inside the actor loop.

    A request walks a chain: its model, then the model's fallbacks. Within
    a model the router picks a deployment (priority tier, strategy, breaker)
    the request has not tried yet; a retryable failure (5xx, 429, timeout,
    connection error, or the upstream refusing our credentials) moves on at
    once to the next pick. When the whole chain has been tried and attempts
    are left, the request waits a full-jitter backoff (at least the largest
    Retry-After seen) and walks the chain again, never past its deadline. A
    stream fails over only until its first byte reached the client; after
    that a failure ends it with an error event in the client's format.

    The gateway's own format is OpenAI's: a /v1/messages (Anthropic) request
    is translated to it on the way in and back on the way out, except to an
    Anthropic deployment, where it passes through untouched. A /v1/responses
    (OpenAI Responses) request is the same: translated (aigw_responses), but
    passed through to an "openai" deployment, whose upstream has
    /v1/responses itself. Passing through keeps what the chat form cannot
    carry (reasoning items, encrypted reasoning, OpenAI's own stored state
    when the client asks for it) at no cost; the request is still translated
    first, so every deployment refuses the same bad requests, and a fallback
    to another provider needs nothing more. */
#include "aigw_provider.h"
#include "aigw_testhttp.h"
#include "aigw_catalog.h"
#include "aigw_curlepoll.h"
#include "aigw_dbwatch.h"
#include "aigw_log.h"
#include "aigw_text.h"
#include "aigw_messages.h"
#include "aigw_models.h"
#include "aigw_openai.h"
#include "aigw_responses.h"
#include "aigw_usagescan.h"
#include "aigw_secret.h"
#include "aigw_tokens.h"

#include <arpa/inet.h>
#include <curl/curl.h>
#include <jansson.h>
#include <math.h>
#include <netinet/in.h>
#include <openssl/crypto.h>
#include <pthread.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

//  Largest upstream answer we hold (non-streaming bodies, error bodies).
#define AIGW_PROVIDER_MAX_RESPONSE (32 * 1024 * 1024)
//  Events taken from epoll per pass of the loop, and finished transfers
//  collected per shard per pass: 10,000 streams ending together are many
//  passes, with heartbeats between them, not one pass of seconds that gets
//  the process declared dead.
#define AIGW_PROVIDER_EPOLL_BATCH 256
#define AIGW_PROVIDER_DONE_BATCH  64
//  Shards whose curl timer is run per pass: a timer that fires for
//  hundreds of new transfers opens hundreds of connections in one call.
#define AIGW_PROVIDER_TIMERS_PER_PASS 4
//  A pass of the loop slower than this is logged, ms.
#define AIGW_PROVIDER_SLOW_PASS_MS 500
//  curl multi handles per actor. Each new transfer scans its multi's whole
//  connection pool, so one pool of 10,000 connections costs O(n^2); shards
//  keep each pool small. Transfers are dealt out round-robin.
#define AIGW_PROVIDER_SHARDS 16
//  Deployments one request may try per model (the router's table size).
#define AIGW_PROVIDER_TRIED_MAX AIGW_ROUTER_DEPLOYMENTS_MAX
//  Models in one request's chain: its own and its fallbacks.
#define AIGW_PROVIDER_CHAIN_MAX (1 + AIGW_CONFIG_MAX_FALLBACKS)
//  Bytes kept of the last failure's message.
#define AIGW_PROVIDER_MESSAGE_MAX 512
//  Finished curl handles kept for reuse: curl_easy_init and its first
//  transfer's buffers cost more than the rest of a short upstream call.
#define AIGW_PROVIDER_EASY_POOL 1024
//  Request structs kept for reuse: each is a few KB (the upstream request's
//  URL buffer), and glibc's malloc took 7k instructions to find one that big
//  again for every request.
#define AIGW_PROVIDER_REQUEST_POOL 256
//  Pooled requests stay poisoned for ASan: a use after destroy is caught.
#if defined(__SANITIZE_ADDRESS__)
#include <sanitizer/asan_interface.h>
#define S_POISON(p, n)   ASAN_POISON_MEMORY_REGION ((p), (n))
#define S_UNPOISON(p, n) ASAN_UNPOISON_MEMORY_REGION ((p), (n))
#else
#define S_POISON(p, n)   ((void) (p), (void) (n))
#define S_UNPOISON(p, n) ((void) (p), (void) (n))
#endif
//  Streams stop reading their upstream while this many messages wait in
//  the host's outboxes (the edge cannot take them as fast), and start again
//  below the low mark: a slow reader holds the upstream back instead of
//  filling memory.
#define AIGW_PROVIDER_BACKLOG_HIGH 10000
#define AIGW_PROVIDER_BACKLOG_LOW  1000
//  Anthropic's API version header, sent on pass-through.
#define AIGW_PROVIDER_ANTHROPIC_VERSION "2023-06-01"
//  Longest line of env->upstream (schemas/envelope.md 2b).
#define AIGW_PROVIDER_ATTEMPT_LINE_MAX 512

typedef struct _self_t self_t;
typedef struct _s_request_t s_request_t;

//  One curl multi handle and its timer.
typedef struct {
    self_t *owner;     //  the actor
    CURLM *multi;      //  transfers of this shard
    uint32_t index;    //  position in owner->shards
    int64_t timer_at;  //  curl's timer, Unix ms, -1 = none
} s_shard_t;

//  The links of one request in one list.
typedef struct {
    s_request_t *prev;  //  previous in the list
    s_request_t *next;  //  next in the list
    bool listed;        //  in the list now
} s_link_t;

//  A doubly linked list of requests, through one of their s_link_t fields.
typedef struct {
    s_request_t *head;  //  first
    s_request_t *tail;  //  last
    size_t offset;      //  where the list's s_link_t sits in s_request_t
} s_list_t;

//  One client request, across all its attempts.
struct _s_request_t {
    self_t *owner;          //  the actor that runs it
    aigw_job_t *job;        //  broker job, answered when done
    aigw_envelope_t *env;   //  the request, reused for every reply
    bool anthropic_client;  //  the client speaks Anthropic (/v1/messages)
    bool count;             //  a count_tokens request: one upstream try, else the estimate
    bool responses_client;  //  the client speaks OpenAI Responses (/v1/responses)
    bool stream;            //  the client asked for SSE
    //  The semantic cache's embeddings call (cache.semantic.model): env is
    //  our own embeddings request; the client's goes on to the cache with
    //  the vector when it is done, answered or not.
    bool embed;             //  this is that call
    aigw_envelope_t *held;  //  embed: the client's request, passed on at the end
    aigw_kind_t kind;       //  CHAT or EMBEDDINGS, as sent upstream
    char *client_body;      //  the body as the client sent it
    size_t client_len;      //  bytes in client_body
    //  A Responses follow-up the responses stage resolved (env->previous,
    //  schemas/envelope.md 2c): its input holds the stored conversation.
    bool followup;      //  previous_response_id was resolved
    size_t history;     //  leading input items that came from the store
    char *pin;          //  the openai deployment that keeps the previous response, or NULL
    char *pass_body;    //  this attempt's pass-through body of a follow-up, or NULL
    char *openai_body;  //  the body in the gateway's format
    size_t openai_len;  //  bytes in openai_body
    char *usage_body;   //  openai_body asking for stream usage, for OpenAI-format
                        //  upstreams; NULL when the client asked itself (or no stream)
    size_t usage_len;   //  bytes in usage_body
    bool strip_usage;   //  the client did not ask for the usage chunk: drop it
    aigw_catalog_model_t *chain[AIGW_PROVIDER_CHAIN_MAX];  //  models to try, held
    size_t chain_len;                                      //  entries in chain
    size_t chain_at;                                       //  model being tried
    const char *tried[AIGW_PROVIDER_TRIED_MAX];            //  deployment ids tried in it
    size_t tried_count;                                    //  entries in tried
    unsigned attempts;                                     //  upstream attempts made
    unsigned rounds;                                       //  full walks of the chain started
    unsigned round_attempts;                               //  attempts when the current round began
    int64_t retry_after_s;                                 //  largest Retry-After seen, -1 = none
    int64_t wake_at;  //  when a delayed retry starts, 0 = not waiting

    //  The attempt in progress.
    aigw_catalog_model_t *model;     //  its model (one of chain)
    aigw_catalog_deployment_t *dep;  //  its deployment
    s_shard_t *shard;                //  the multi handle it runs in
    CURL *easy;                      //  curl handle, NULL between attempts
    struct curl_slist *headers;      //  request headers
    aigw_upstream_request_t up;      //  what was sent
    bool passthrough;                //  Anthropic client to Anthropic upstream
    int64_t started_ms;              //  when the attempt began
    int64_t started_us;              //  the same, Unix us, for env->upstream
    char span[17];                   //  the attempt's span id, 16 hex digits
    int64_t first_byte_ms;           //  when its first byte came, 0 = not yet
    int64_t first_byte_deadline;     //  first byte must come by then
    char *buf;                       //  upstream bytes not yet used
    size_t buf_len;                  //  bytes used in buf
    size_t buf_cap;                  //  bytes allocated in buf
    long http_status;                //  upstream status, 0 until known
    int64_t retry_after;             //  this attempt's Retry-After seconds, -1 = none
    const aigw_adapter_t
        *stream_adapter;  //  reads the stream: the deployment's, or OpenAI's SSE pass-through
    aigw_adapter_stream_t *astream;    //  its state
    aigw_messages_stream_t *mstream;   //  OpenAI to Anthropic stream translator
    aigw_responses_stream_t *rstream;  //  OpenAI chat to Responses stream translator (kept
                                       //  past its attempt, for the events that end it)
    long passthrough_events;           //  Responses events passed through (the next number)
    bool upstream_done;                //  the upstream said the answer is complete
    bool bad_stream;                   //  the upstream stream was malformed or failed
    bool told;                         //  an error event about it reached the client
    char *cache_sse;                   //  the answer's OpenAI chunks, for the cache's owner
    size_t cache_sse_len;              //  bytes in cache_sse
    bool cache_sse_over;               //  past the cap: the answer is not kept

    //  What the client saw, and the last failure.
    bool started;                                  //  stream bytes reached the client
    int fail_status;                               //  status to answer if nothing succeeds
    const char *fail_type;                         //  its error type
    const char *fail_code;                         //  its error code
    char fail_message[AIGW_PROVIDER_MESSAGE_MAX];  //  its message

    s_link_t all;         //  in every request in flight
    s_link_t first_byte;  //  in the attempts awaiting a first byte
    s_link_t waiting;     //  in the requests waiting for a delayed retry
    s_link_t paused;      //  in the streams paused for the backlog
};

//  The actor's private state.
struct _self_t {
    const aigw_config_t *config;  //  settings (shared, read-only)
    aigw_host_t *host;            //  the runtime we run in (NULL in selftests)
    int64_t report_ms;            //  how often we report
    aigw_catalog_t *catalog;      //  models and deployments
    aigw_dbwatch_t *dbwatch;      //  the database's models, kept fresh; NULL without a database
    aigw_secret_t *secrets;       //  opens the database's sealed api_keys
    bool plaintext_warned;        //  an unencrypted stored api_key was logged
    s_shard_t shards[AIGW_PROVIDER_SHARDS];    //  curl multi handles
    uint32_t next_shard;                       //  where the next transfer goes
    int epfd;                                  //  epoll set of every shard's sockets
    s_list_t requests;                         //  every request in flight
    s_list_t first_byte;                       //  attempts awaiting a first byte, oldest first
    s_list_t waiting;                          //  requests waiting for a delayed retry
    s_list_t paused;                           //  streams paused while the backlog is high
    uint64_t rng;                              //  the router's random state
    int64_t first_byte_ms;                     //  first-token timeout
    int64_t report_at;                         //  next health report to the broker
    char instance[128];                        //  this process and actor, for reports
    CURL *easy_pool[AIGW_PROVIDER_EASY_POOL];  //  reset handles, ready for reuse
    size_t easy_pooled;                        //  entries in easy_pool
    s_request_t *request_pool[AIGW_PROVIDER_REQUEST_POOL];  //  freed requests, for reuse
    size_t requests_pooled;                                 //  entries in request_pool
    bool proxy_env;       //  the environment names a proxy curl would use
    zhashx_t *urls;       //  upstream URL -> CURLU parsed once (curl parses a
                          //  URL string again on every transfer)
    bool more;            //  finished transfers or socket events left for
                          //  the next pass
    uint32_t next_timer;  //  the shard whose timer is looked at first
};

static void s_attempt_next (s_request_t *r);
static void s_count_done (s_request_t **r_p, CURLcode rc);
static void s_embed_done (s_request_t **r_p, const float *vector, size_t dim);
static void s_embed_answer (s_request_t **r_p);

//  --------------------------------------------------------------------------
//  Lists

//  R's links in LIST.
static s_link_t *
s_link (const s_list_t *list, s_request_t *r)
{
    return (s_link_t *) ((char *) r + list->offset);
}

//  Append R to LIST (it must not be in it).
static void
s_list_push (s_list_t *list, s_request_t *r)
{
    s_link_t *link = s_link (list, r);
    assert (!link->listed);
    link->prev = list->tail;
    link->next = NULL;
    link->listed = true;
    if (list->tail)
        s_link (list, list->tail)->next = r;
    else
        list->head = r;
    list->tail = r;
}

//  Take R out of LIST; nothing when it is not in it.
static void
s_list_remove (s_list_t *list, s_request_t *r)
{
    s_link_t *link = s_link (list, r);
    if (!link->listed)
        return;
    if (link->prev)
        s_link (list, link->prev)->next = link->next;
    else
        list->head = link->next;
    if (link->next)
        s_link (list, link->next)->prev = link->prev;
    else
        list->tail = link->prev;
    *link = (s_link_t){0};
}

//  --------------------------------------------------------------------------
//  Attempts and requests

//  End the attempt's transfer and free what it held; the request stays.
static void
s_attempt_reset (s_request_t *r)
{
    s_list_remove (&r->owner->first_byte, r);
    s_list_remove (&r->owner->paused, r);
    if (r->easy) {
        self_t *self = r->owner;
        curl_multi_remove_handle (r->shard->multi, r->easy);
        if (self->easy_pooled < AIGW_PROVIDER_EASY_POOL) {
            curl_easy_reset (r->easy);
            self->easy_pool[self->easy_pooled++] = r->easy;
        }
        else
            curl_easy_cleanup (r->easy);
        r->easy = NULL;
    }
    curl_slist_free_all (r->headers);
    r->headers = NULL;
    aigw_upstream_request_reset (&r->up);
    if (r->astream)
        r->stream_adapter->stream_destroy (&r->astream);
    aigw_messages_stream_destroy (&r->mstream);
    free (r->buf);
    r->buf = NULL;
    r->buf_len = r->buf_cap = 0;
    r->http_status = 0;
    r->retry_after = -1;
    r->first_byte_ms = 0;
    r->upstream_done = false;
    r->bad_stream = false;
    r->told = false;
    free (r->cache_sse);
    r->cache_sse = NULL;
    r->cache_sse_len = 0;
    r->cache_sse_over = false;
    r->passthrough = false;
    r->dep = NULL;
    r->model = NULL;
}

static void
s_request_destroy (s_request_t **r_p)
{
    s_request_t *r = *r_p;
    if (!r)
        return;
    s_attempt_reset (r);
    s_list_remove (&r->owner->waiting, r);
    for (size_t i = 0; i < r->chain_len; i++)
        aigw_catalog_unref (&r->chain[i]);
    aigw_job_destroy (&r->job);
    aigw_envelope_destroy (&r->env);
    aigw_envelope_destroy (&r->held);
    aigw_responses_stream_destroy (&r->rstream);
    free (r->client_body);
    free (r->pin);
    free (r->pass_body);
    free (r->openai_body);
    free (r->usage_body);
    self_t *owner = r->owner;
    s_list_remove (&owner->requests, r);
    if (owner->requests_pooled < AIGW_PROVIDER_REQUEST_POOL) {
        S_POISON (r, sizeof *r);
        owner->request_pool[owner->requests_pooled++] = r;
    }
    else
        free (r);
    *r_p = NULL;
}

//  A zeroed request, from the pool when one waits there.
static s_request_t *
s_request_new (self_t *self)
{
    s_request_t *r = self->requests_pooled ? self->request_pool[--self->requests_pooled] : NULL;
    if (r) {
        S_UNPOISON (r, sizeof *r);
        memset (r, 0, sizeof *r);
    }
    else
        r = (s_request_t *) calloc (1, sizeof *r);
    assert (r);
    return r;
}

//  Tokens from every "usage" object in BODY (LEN bytes), in order
//  (aigw_usagescan).
static void
s_usage_scan (aigw_envelope_t *env, const char *body, size_t len)
{
    aigw_usagescan (body, len, &env->tokens_in, &env->tokens_out, &env->tokens_cached);
}

//  The usage fields of the reply: attempts, the answering deployment's
//  provider, and the cost of the tokens at its prices (USD per million
//  tokens; nano-USD in the envelope). Cached prompt tokens cost
//  price_cached_in, the rest of the prompt price_in: Anthropic's cache
//  writes (cache_creation_input_tokens) are among those, at price_in,
//  though Anthropic bills them higher.
static void
s_usage_finish (s_request_t *r)
{
    aigw_envelope_t *env = r->env;
    env->attempts = r->attempts;
    if (!r->dep)
        return;
    aigw_envelope_set (&env->provider_kind, r->dep->provider);
    int64_t in = env->tokens_in > 0 ? env->tokens_in : 0;
    int64_t cached = env->tokens_cached < 0 ? 0 : env->tokens_cached > in ? in : env->tokens_cached;
    double nusd
        = ((double) (in - cached) * r->dep->price_in + (double) cached * r->dep->price_cached_in
           + (double) env->tokens_out * r->dep->price_out)
          * 1e3;
    env->cost_nusd = nusd > 0 && nusd < 9e18 ? (int64_t) llround (nusd) : 0;
}

//  Send ENV as the final reply; the request is done with the job and its
//  envelope.
static void
s_reply (s_request_t *r)
{
    r->env->last = true;
    s_usage_finish (r);
    aigw_stage_pass (&r->job, &r->env);
}

//  Send the cache's owner the answer to R's request: BODY (LEN bytes,
//  taken; NULL: env's body) of CONTENT_TYPE. Chat answers go in the
//  gateway's form (a chat.completion, or its chunks), whatever the client
//  reads, so any client can be answered from them (aigw_cacheform). It
//  goes after the reply, which is what the client waits for, and still
//  lands first: a call runs before this thread takes the client's next
//  request, and a peer's one hop beats the reply's way out and the next
//  request's way back in.
static void
s_cache_send (s_request_t *r, aigw_envelope_t *store, char *body, size_t len,
              const char *content_type)
{
    if (!store) {
        free (body);
        return;
    }
    if (body)
        aigw_envelope_take_body (store, body, len);
    aigw_envelope_set (&store->content_type, content_type);
    store->status = 200;
    aigw_host_oneway (r->owner->host, "cache", store->cache_key, &store);
    aigw_envelope_destroy (&store);
}

//  True when R's answer goes to the cache's owner (the cache stage left its
//  partition in the envelope).
static bool
s_cache_wants (s_request_t *r)
{
    return r->env && r->env->cache_key && r->owner->host;
}

//  Relay BODY (LEN bytes) to the client as one stream chunk.
static void
s_relay (s_request_t *r, const char *body, size_t len, bool last)
{
    aigw_envelope_t *env = r->env;
    env->status = 200;
    aigw_envelope_set (&env->content_type, "text/event-stream");
    aigw_envelope_set_body (env, body, len);
    env->last = last;
    if (last)
        s_usage_finish (r);
    aigw_stage_chunk (&r->job, env);
    env->seq++;
    if (len)
        r->started = true;
}

//  Remember a failure, as the answer if nothing better comes.
static void
s_note_failure (s_request_t *r, int status, const char *type, const char *code, const char *message)
{
    r->fail_status = status;
    r->fail_type = type;
    r->fail_code = code;
    snprintf (r->fail_message, sizeof r->fail_message, "%s", message);
}

//  Answer the client with an error and finish the request: before any
//  stream byte, as an HTTP error; after, as a final error event in the
//  client's format. Destroys *R_P.
static void
s_finish_error (s_request_t **r_p, int status, const char *type, const char *code,
                const char *message)
{
    s_request_t *r = *r_p;
    aigw_envelope_t *env = r->env;
    if (r->embed) {
        //  The request goes on without a vector: never an error of its own.
        aigw_info ("request %s: no vector for the cache from %s: %d %s",
                   r->held->id ? r->held->id : "?", env->model, status, code);
        s_embed_done (r_p, NULL, 0);
        return;
    }
    if (status >= 500)
        aigw_warn ("request %s: %d %s: %s", env->id ? env->id : "?", status, code, message);
    if (r->started) {
        char *frame = NULL;
        size_t len = 0;
        if (r->anthropic_client) {
            size_t body_len = 0;
            char *body = aigw_messages_error_body (status == 429 ? "rate_limit_error" : "api_error",
                                                   message, &body_len);
            if (body) {
                aigw_adapter_append (&frame, &len, "event: error\ndata: ", 19);
                aigw_adapter_append (&frame, &len, body, body_len);
                aigw_adapter_append (&frame, &len, "\n\n", 2);
            }
            free (body);
        }
        else if (r->responses_client && r->rstream)
            aigw_responses_stream_error (r->rstream, code, message, &frame, &len);
        else if (r->responses_client)
            aigw_responses_error_event (r->passthrough_events, code, message, &frame, &len);
        else
            aigw_adapter_append_error_event (&frame, &len, type, code, message);
        s_relay (r, frame ? frame : "", len, true);
        free (frame);
    }
    else {
        aigw_envelope_set_error (env, status, type, code, NULL, message);
        env->retry_after = status == 429 && r->retry_after_s > 0 ? (int) r->retry_after_s : 0;
        s_reply (r);
    }
    s_request_destroy (r_p);
}

//  Finish with the last failure noted (502 if none was).
static void
s_finish_failed (s_request_t **r_p)
{
    s_request_t *r = *r_p;
    if (!r->fail_status)
        s_note_failure (r, 502, "upstream_error", "upstream_error",
                        "No upstream answered the request.");
    s_finish_error (r_p, r->fail_status, r->fail_type, r->fail_code, r->fail_message);
}

//  --------------------------------------------------------------------------
//  curl callbacks

//  Grow the attempt's buffer by LEN bytes of DATA. -1 past the cap.
static int
s_buffer (s_request_t *r, const char *data, size_t len)
{
    if (r->buf_len + len > AIGW_PROVIDER_MAX_RESPONSE)
        return -1;
    if (r->buf_len + len > r->buf_cap) {
        size_t cap = r->buf_cap ? r->buf_cap * 2 : 4096;
        while (cap < r->buf_len + len)
            cap *= 2;
        char *buf = realloc (r->buf, cap);
        if (!buf)
            return -1;
        r->buf = buf;
        r->buf_cap = cap;
    }
    memcpy (r->buf + r->buf_len, data, len);
    r->buf_len += len;
    return 0;
}

//  The first byte of an attempt arrived: stop its first-byte clock.
static void
s_first_byte (s_request_t *r)
{
    if (!r->first_byte_ms) {
        r->first_byte_ms = aigw_now_ms ();
        s_list_remove (&r->owner->first_byte, r);
    }
}

//  True when EVENT (one whole SSE event, LEN bytes) is OpenAI's usage-only
//  chunk: "choices": [] and a usage object.
static bool
s_usage_only (const char *event, size_t len)
{
    if (len < 6 || memcmp (event, "data:", 5) != 0)
        return false;
    json_t *chunk = json_loadb (event + 5, len - 5, JSON_DISABLE_EOF_CHECK, NULL);
    json_t *choices = json_object_get (chunk, "choices");
    bool only = json_is_array (choices) && json_array_size (choices) == 0
                && json_is_object (json_object_get (chunk, "usage"));
    json_decref (chunk);
    return only;
}

//  Drop the usage-only chunks from the whole SSE events in OUT (*LEN
//  bytes), in place: the client did not ask for them, we did. Every other
//  byte stays as the upstream sent it.
static void
s_strip_usage (char *out, size_t *len)
{
    size_t read = 0, write = 0, end;
    while ((end = aigw_openai_sse_event_end (out + read, *len - read))) {
        if (!s_usage_only (out + read, end)) {
            memmove (out + write, out + read, end);
            write += end;
        }
        read += end;
    }
    memmove (out + write, out + read, *len - read);
    write += *len - read;
    out[write] = '\0';
    *len = write;
}

//  A 200 stream's bytes: translate and relay what is complete.
static size_t
s_stream_data (s_request_t *r, const char *data, size_t len)
{
    char *out = NULL, *client = NULL;
    size_t out_len = 0, client_len = 0;
    char err[256] = "";
    const aigw_adapter_t *a = r->stream_adapter;
    bool failed = a->stream_feed (r->astream, data, len, &out, &out_len, err, sizeof err) != 0;
    if (failed)
        r->bad_stream = true;
    if (r->passthrough && failed) {
        //  The splitter's error event is OpenAI-shaped: the client gets an
        //  Anthropic one when the attempt ends.
        free (out);
        out = NULL;
        out_len = 0;
    }
    else if (r->passthrough && r->responses_client)
        aigw_responses_passthrough_scan (out, out_len, &r->upstream_done, &r->bad_stream,
                                         &r->passthrough_events);
    else if (r->passthrough) {
        //  Whole Anthropic events pass as they came; their names say how
        //  the stream ends.
        if (out_len && memmem (out, out_len, "event: message_stop", 19))
            r->upstream_done = true;
        if (out_len && memmem (out, out_len, "event: error", 12))
            r->bad_stream = true;
    }
    else if (a->stream_done (r->astream))
        r->upstream_done = true;
    //  Tokens from the events in the gateway's format (or Anthropic's, on
    //  pass-through), whatever format the client reads.
    if (out_len)
        s_usage_scan (r->env, out, out_len);
    if (out_len && !r->passthrough && !r->cache_sse_over && s_cache_wants (r)) {
        if (r->cache_sse_len + out_len > AIGW_PROVIDER_MAX_RESPONSE
            || aigw_adapter_append (&r->cache_sse, &r->cache_sse_len, out, out_len)) {
            free (r->cache_sse);
            r->cache_sse = NULL;
            r->cache_sse_len = 0;
            r->cache_sse_over = true;
        }
    }
    if (r->strip_usage && out_len && memmem (out, out_len, "\"usage\"", 7))
        s_strip_usage (out, &out_len);
    if (r->anthropic_client && !r->passthrough && out_len) {
        if (aigw_messages_stream_feed (r->mstream, out, out_len, &client, &client_len))
            r->bad_stream = true;
        free (out);
    }
    else if (r->responses_client && !r->passthrough && out_len) {
        if (aigw_responses_stream_feed (r->rstream, out, out_len, &client, &client_len))
            r->bad_stream = true;
        free (out);
    }
    else {
        client = out;
        client_len = out_len;
    }
    //  Before the first byte reached the client, a broken stream fails over:
    //  keep its error event back.
    if (client_len && !(r->bad_stream && !r->started)) {
        s_relay (r, client, client_len, false);
        r->told = r->bad_stream;
    }
    free (client);
    //  A broken stream ends the transfer: it fails over when nothing reached
    //  the client yet, else its error event was the client's last.
    return r->bad_stream ? 0 : len;
}

//  curl write callback.
static size_t
s_on_data (char *data, size_t size, size_t count, void *userdata)
{
    s_request_t *r = (s_request_t *) userdata;
    size_t len = size * count;
    //  The edge stopped the answer (a guardrail blocked it): abort.
    if (r->job && r->job->cancelled)
        return 0;
    s_first_byte (r);
    if (!r->http_status)
        curl_easy_getinfo (r->easy, CURLINFO_RESPONSE_CODE, &r->http_status);
    if (r->stream && r->http_status == 200) {
        self_t *self = r->owner;
        if (self->host && aigw_host_backlog (self->host) > AIGW_PROVIDER_BACKLOG_HIGH) {
            //  curl keeps these bytes and hands them over again on resume.
            if (!r->paused.listed)
                s_list_push (&self->paused, r);
            return CURL_WRITEFUNC_PAUSE;
        }
        return s_stream_data (r, data, len);
    }
    return s_buffer (r, data, len) ? 0 : len;
}

//  curl header callback: keeps Retry-After; the status line is a first byte.
static size_t
s_on_header (char *data, size_t size, size_t count, void *userdata)
{
    s_request_t *r = (s_request_t *) userdata;
    size_t len = size * count;
    //  A stream's headers come at once; its first token is its first data.
    if (!r->stream)
        s_first_byte (r);
    static const char name[] = "retry-after:";
    if (len > sizeof name && strncasecmp (data, name, sizeof name - 1) == 0) {
        long seconds = strtol (data + sizeof name - 1, NULL, 10);
        if (seconds >= 0 && seconds <= AIGW_ROUTER_RETRY_AFTER_MAX_S)
            r->retry_after = seconds;
    }
    return len;
}

//  --------------------------------------------------------------------------
//  Outcomes

//  Append TEXT to LINE (of *LEN bytes, SIZE in all) with tabs and line
//  ends made spaces: a field of env->upstream holds neither.
static void
s_line_field (char *line, size_t *len, size_t size, const char *text)
{
    for (; text && *text && *len + 1 < size; text++)
        line[(*len)++] = *text == '\t' || *text == '\n' || *text == '\r' ? ' ' : *text;
    line[*len] = '\0';
}

//  Append the attempt's line to env->upstream (schemas/envelope.md 2b):
//  start, duration, upstream status, span id, deployment, model.
static void
s_attempt_line (s_request_t *r)
{
    char line[AIGW_PROVIDER_ATTEMPT_LINE_MAX];
    int64_t now = aigw_now_us ();
    long status = r->http_status;
    if (!status && r->easy)
        curl_easy_getinfo (r->easy, CURLINFO_RESPONSE_CODE, &status);
    int n = snprintf (line, sizeof line, "%lld\t%lld\t%ld\t%s\t", (long long) r->started_us,
                      (long long) (now - r->started_us), status, r->span);
    size_t len = n > 0 && (size_t) n < sizeof line ? (size_t) n : 0;
    if (!len)
        return;
    s_line_field (line, &len, sizeof line - 3, r->dep->id);
    line[len++] = '\t';
    s_line_field (line, &len, sizeof line - 2, r->model->name);
    line[len++] = '\n';
    line[len] = '\0';
    aigw_envelope_t *env = r->env;
    size_t old = env->upstream ? strlen (env->upstream) : 0;
    char *joined = malloc (old + len + 1);
    if (!joined)
        return;
    memcpy (joined, env->upstream ? env->upstream : "", old);
    memcpy (joined + old, line, len + 1);
    aigw_envelope_set (&env->upstream, joined);
    free (joined);
}

//  Record the attempt's outcome with the router, and in env->upstream.
static void
s_record (s_request_t *r, bool success, const char *error)
{
    s_attempt_line (r);
    int64_t now = aigw_now_ms ();
    int64_t ttfb = r->first_byte_ms ? r->first_byte_ms - r->started_ms : -1;
    aigw_router_record (r->model->router, r->dep->route, now, success, now - r->started_ms, ttfb,
                        error);
}

//  The attempt failed in a way another deployment may not: note it, tell
//  the router, and try the next pick (or end the stream already started).
static void
s_attempt_failed (s_request_t **r_p, int status, const char *type, const char *code,
                  const char *message)
{
    s_request_t *r = *r_p;
    s_record (r, false, message);
    s_note_failure (r, status, type, code, message);
    if (r->retry_after >= 0 && r->retry_after > r->retry_after_s)
        r->retry_after_s = r->retry_after;
    s_attempt_reset (r);
    if (r->started) {
        s_finish_failed (r_p);
        return;
    }
    s_attempt_next (r);
}

//  A 2xx non-streaming answer: translate it for the client and reply.
static void
s_answer_whole (s_request_t **r_p)
{
    s_request_t *r = *r_p;
    if (r->embed) {
        s_embed_answer (r_p);
        return;
    }
    aigw_envelope_t *env = r->env;
    char err[256] = "";
    size_t len = 0;
    char *body = NULL;
    //  The answer in the gateway's form, for the cache, when the client's
    //  differs from it (an Anthropic client's).
    char *form = NULL;
    size_t form_len = 0;
    if (r->passthrough) {
        if (r->anthropic_client && s_cache_wants (r))
            form = r->dep->adapter->response (r->kind, r->buf, r->buf_len, env->model, &form_len,
                                              err, sizeof err);
        body = r->buf;
        len = r->buf_len;
        r->buf = NULL;
        r->buf_len = r->buf_cap = 0;
    }
    else {
        body = r->dep->adapter->response (r->kind, r->buf, r->buf_len, env->model, &len, err,
                                          sizeof err);
        if (body && r->anthropic_client) {
            size_t out_len = 0;
            char *out = aigw_messages_response_from_openai (body, len, env->model, &out_len, err,
                                                            sizeof err);
            form = body;
            form_len = len;
            body = out;
            len = out_len;
        }
        else if (body && r->responses_client) {
            size_t out_len = 0;
            char *out = aigw_responses_response_from_openai (
                r->client_body, r->client_len, body, len, env->model, &out_len, err, sizeof err);
            free (body);
            body = out;
            len = out_len;
        }
    }
    if (!body) {
        free (form);
        char message[AIGW_PROVIDER_MESSAGE_MAX];
        snprintf (message, sizeof message, "The upstream's answer could not be read: %.300s", err);
        s_attempt_failed (r_p, 502, "upstream_error", "upstream_bad_response", message);
        return;
    }
    s_record (r, true, NULL);
    env->status = 200;
    aigw_envelope_set (&env->content_type, "application/json");
    s_usage_scan (env, body, len);
    aigw_envelope_take_body (env, body, len);
    env->last = true;
    //  An Anthropic client's answer the cache cannot keep in the gateway's
    //  form is not kept.
    aigw_envelope_t *store
        = s_cache_wants (r) && (form || !r->anthropic_client) ? aigw_envelope_dup (env) : NULL;
    s_reply (r);
    s_cache_send (r, store, form, form_len, "application/json");
    s_request_destroy (r_p);
}

//  An upstream error status: pass the client's own mistakes through, fail
//  over on the rest.
static void
s_answer_status (s_request_t **r_p, long status)
{
    s_request_t *r = *r_p;
    //  Anthropic's error body keeps its message at error.message, as OpenAI's.
    char *upstream = r->passthrough
                         ? aigw_openai_error_message (r->buf, r->buf_len)
                         : r->dep->adapter->error_message (r->buf ? r->buf : "", r->buf_len);
    char message[AIGW_PROVIDER_MESSAGE_MAX];
    if (status == 400 || status == 404 || status == 409 || status == 413 || status == 422) {
        //  The client's own mistake, seen by the upstream: never retried,
        //  and no mark against the deployment.
        snprintf (message, sizeof message, "%.480s",
                  upstream ? upstream : "The upstream rejected the request.");
        free (upstream);
        s_record (r, true, NULL);
        s_finish_error (r_p, (int) status, "invalid_request_error", "upstream_rejected", message);
        return;
    }
    if (status == 429) {
        snprintf (message, sizeof message, "The upstream is rate limiting: %.400s",
                  upstream ? upstream : "too many requests");
        if (r->retry_after < 0)
            r->retry_after = 1;
        free (upstream);
        s_attempt_failed (r_p, 429, "rate_limit_error", "upstream_rate_limited", message);
        return;
    }
    //  5xx, and 401/403: the deployment's own credentials or state.
    snprintf (message, sizeof message, "The upstream answered HTTP %ld: %.400s", status,
              upstream ? upstream : "no message");
    free (upstream);
    s_attempt_failed (r_p, 502, "upstream_error", "upstream_error", message);
}

//  A transfer ended (curl is done with it, or it was cut short).
static void
s_attempt_done (s_request_t **r_p, CURLcode rc)
{
    s_request_t *r = *r_p;
    if (r->job && r->job->cancelled) {
        //  Aborted for the edge, as for a client that left: not the
        //  deployment's fault.
        if (r->easy && r->dep)
            aigw_router_abandon (r->model->router, r->dep->route);
        s_request_destroy (r_p);
        return;
    }
    if (r->count) {
        s_count_done (r_p, rc);
        return;
    }
    if (r->easy)
        curl_easy_getinfo (r->easy, CURLINFO_RESPONSE_CODE, &r->http_status);
    long status = r->http_status;
    if (r->stream && status == 200 && (rc == CURLE_OK || r->bad_stream || r->upstream_done)) {
        if (r->upstream_done && !r->bad_stream) {
            s_record (r, true, NULL);
            s_relay (r, "", 0, true);
            if (r->cache_sse && s_cache_wants (r)) {
                s_cache_send (r, aigw_envelope_dup (r->env), r->cache_sse, r->cache_sse_len,
                              "text/event-stream");
                r->cache_sse = NULL;
                r->cache_sse_len = 0;
            }
            s_request_destroy (r_p);
            return;
        }
        if (r->bad_stream && r->told) {
            //  The translator (or the upstream) already sent its error event.
            s_record (r, false, "The upstream stream failed.");
            s_relay (r, "", 0, true);
            s_request_destroy (r_p);
            return;
        }
        s_attempt_failed (r_p, 502, "upstream_error",
                          r->bad_stream ? "upstream_bad_stream" : "upstream_stream_ended",
                          r->bad_stream ? "The upstream stream failed."
                                        : "The upstream ended the stream early.");
        return;
    }
    if (rc == CURLE_OPERATION_TIMEDOUT) {
        s_attempt_failed (r_p, 504, "timeout_error", "upstream_timeout",
                          "The upstream did not answer within the request deadline.");
        return;
    }
    if (rc != CURLE_OK) {
        char message[256];
        snprintf (message, sizeof message, "The upstream could not be reached: %s.",
                  curl_easy_strerror (rc));
        s_attempt_failed (r_p, 502, "upstream_error", "upstream_unreachable", message);
        return;
    }
    if (status >= 200 && status < 300) {
        s_answer_whole (r_p);
        return;
    }
    s_answer_status (r_p, status);
}

//  --------------------------------------------------------------------------
//  Starting attempts

//  Most URLs kept parsed: deployments times the paths they serve.
#define AIGW_PROVIDER_URLS_MAX 1024

static void
s_url_free (void **item)
{
    curl_url_cleanup ((CURLU *) *item);
    *item = NULL;
}

//  URL parsed, kept for the next transfer to it; NULL when curl refuses it
//  (the transfer then reports why) or the table is full.
static CURLU *
s_url (self_t *self, const char *url)
{
    CURLU *parsed = (CURLU *) zhashx_lookup (self->urls, url);
    if (parsed || zhashx_size (self->urls) >= AIGW_PROVIDER_URLS_MAX)
        return parsed;
    parsed = curl_url ();
    if (parsed && curl_url_set (parsed, CURLUPART_URL, url, 0) != CURLUE_OK) {
        curl_url_cleanup (parsed);
        parsed = NULL;
    }
    if (parsed)
        zhashx_insert (self->urls, url, parsed);
    return parsed;
}

//  Point EASY at R's upstream request (URL, headers, body), with the
//  stage's callbacks, the connect timeout and TIMEOUT_MS in all (at least
//  1 ms: 0 would be none).
static void
s_easy_setup (self_t *self, s_request_t *r, CURL *easy, int64_t timeout_ms)
{
    CURLU *parsed = s_url (self, r->up.url);
    //  CURLOPT_CURLU overrides CURLOPT_URL: unset it for a URL string.
    curl_easy_setopt (easy, CURLOPT_CURLU, parsed);
    if (!parsed)
        curl_easy_setopt (easy, CURLOPT_URL, r->up.url);
    curl_easy_setopt (easy, CURLOPT_PRIVATE, r);
    curl_easy_setopt (easy, CURLOPT_HTTPHEADER, r->headers);
    curl_easy_setopt (easy, CURLOPT_POST, 1L);
    curl_easy_setopt (easy, CURLOPT_POSTFIELDS, r->up.body);
    curl_easy_setopt (easy, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t) r->up.body_len);
    curl_easy_setopt (easy, CURLOPT_WRITEFUNCTION, s_on_data);
    curl_easy_setopt (easy, CURLOPT_WRITEDATA, r);
    curl_easy_setopt (easy, CURLOPT_HEADERFUNCTION, s_on_header);
    curl_easy_setopt (easy, CURLOPT_HEADERDATA, r);
    curl_easy_setopt (easy, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt (easy, CURLOPT_TCP_NODELAY, 1L);
    curl_easy_setopt (easy, CURLOPT_CONNECTTIMEOUT_MS, (long) self->config->connect_timeout_ms);
    curl_easy_setopt (easy, CURLOPT_TIMEOUT_MS, timeout_ms > 0 ? (long) timeout_ms : 1L);
    //  No proxy in the environment: say so, or curl looks for one again
    //  on every transfer (getenv after getenv).
    if (!self->proxy_env)
        curl_easy_setopt (easy, CURLOPT_PROXY, "");
}

//  True when the environment names a proxy curl would take for an http or
//  https URL (curl reads http_proxy in lower case only).
static bool
s_proxy_env (void)
{
    const char *names[]
        = {"http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        const char *value = getenv (names[i]);
        if (value && *value)
            return true;
    }
    return false;
}

//  Build the pass-through request of an Anthropic client to an Anthropic
//  deployment: the client's body with the upstream model. 0 or -1.
static int
s_passthrough_request (s_request_t *r, aigw_upstream_request_t *out)
{
    const aigw_upstream_t *up = &r->dep->up;
    snprintf (out->url, sizeof out->url, "%s/v1/messages",
              up->base_url ? up->base_url : aigw_adapter_default_base_url ("anthropic"));
    out->body = aigw_openai_with_model (r->client_body, r->client_len, up->model, &out->body_len);
    if (!out->body)
        return -1;
    if (aigw_upstream_request_header (out, "Content-Type", "application/json")
        || aigw_upstream_request_header (out, "anthropic-version", AIGW_PROVIDER_ANTHROPIC_VERSION))
        return -1;
    if (up->api_key && aigw_upstream_request_header (out, "x-api-key", up->api_key))
        return -1;
    return 0;
}

//  The traceparent header for the attempt, into HEADER (SIZE bytes), or ""
//  for none. Tracing on, the attempt is a span of its own: same trace and
//  flags, its span id as the parent. Tracing off, there is no span of ours
//  to name: the client's own goes on unchanged. An invalid one never.
static void
s_traceparent_header (s_request_t *r, char *header, size_t size)
{
    const char *tp = r->env->traceparent;
    const char *endpoint = r->owner->config->tracing_endpoint;
    header[0] = '\0';
    if (!aigw_text_traceparent (tp, NULL, NULL, NULL))
        return;
    if (endpoint && *endpoint)
        snprintf (header, size, "traceparent: 00-%.32s-%s-%.2s", tp + 3, r->span, tp + 53);
    else
        snprintf (header, size, "traceparent: %s", tp);
}

//  Read env->previous (schemas/envelope.md 2c) of a Responses follow-up.
static void
s_followup_note (s_request_t *r)
{
    const char *previous = r->env->previous;
    if (!previous)
        return;
    const char *tab = strchr (previous, '\t');
    char *end = NULL;
    unsigned long long history = tab ? strtoull (tab + 1, &end, 10) : 0;
    if (!tab || !end || *end != '\t')
        return;  //  not ours to read: previous_response_id stays refused
    r->followup = true;
    r->history = (size_t) history;
    if (end[1])
        r->pin = strdup (end + 1);
}

//  The first pick of a follow-up whose previous turn an openai deployment
//  answered (it keeps that response): that deployment, while it is still
//  one of MODEL's and its circuit lets it; else NULL (the usual pick, with
//  the whole conversation).
static aigw_deployment_t *
s_pick_pinned (s_request_t *r, aigw_catalog_model_t *model, int64_t now)
{
    if (!r->pin || r->attempts || r->tried_count || r->chain_at || r->rounds)
        return NULL;
    size_t others = 0;
    bool present = false;
    const char **exclude = calloc (model->deployment_count + 1, sizeof *exclude);
    if (!exclude)
        return NULL;
    for (size_t i = 0; i < model->deployment_count; i++) {
        if (streq (model->deployments[i].id, r->pin))
            present = true;
        else
            exclude[others++] = model->deployments[i].id;
    }
    aigw_deployment_t *route = present ? aigw_router_pick (model->router, model->strategy, now,
                                                           exclude, others, &r->owner->rng)
                                       : NULL;
    free (exclude);
    return route;
}

//  Start the attempt on r->dep. Returns 0 when the transfer runs; 1 when
//  this deployment cannot serve the request (try another); -1 when the
//  request itself is bad (answered, R destroyed).
static int
s_attempt_start (s_request_t **r_p)
{
    s_request_t *r = *r_p;
    self_t *self = r->owner;
    aigw_catalog_deployment_t *dep = r->dep;
    int64_t now = aigw_now_ms ();
    char err[256] = "";
    r->dep->up.now_s = now / 1000;
    r->passthrough = (r->anthropic_client && strcmp (dep->provider, "anthropic") == 0)
                     || (r->responses_client && strcmp (dep->provider, "openai") == 0);
    //  Only OpenAI's format takes stream_options; the others tell usage
    //  in their own stream events.
    bool usage_body
        = r->usage_body
          && (dep->adapter == &aigw_adapter_openai || dep->adapter == &aigw_adapter_azure);
    const char *body = usage_body ? r->usage_body : r->openai_body;
    size_t body_len = usage_body ? r->usage_len : r->openai_len;
    const char *client = r->client_body;
    size_t client_len = r->client_len;
    if (r->passthrough && r->followup) {
        //  The deployment that keeps the previous response gets its id and
        //  this turn's items; any other, the whole conversation.
        free (r->pass_body);
        r->pass_body
            = aigw_responses_previous_body (r->client_body, r->client_len, r->history,
                                            r->pin && streq (r->pin, dep->id), &client_len);
        client = r->pass_body;
    }
    bool unbuilt = r->passthrough && r->followup && !r->pass_body;
    int rc
        = unbuilt ? -1
          : r->passthrough && r->responses_client
              ? aigw_responses_passthrough (&dep->up, client, client_len, &r->up, err, sizeof err)
          : r->passthrough ? s_passthrough_request (r, &r->up)
                           : dep->adapter->request (&dep->up, r->kind, r->stream, body, body_len,
                                                    &r->up, err, sizeof err);
    if (rc == 1) {
        s_note_failure (r, 400, "invalid_request_error", "unsupported_endpoint",
                        "The model's provider does not serve this endpoint.");
        return 1;
    }
    if (rc != 0) {
        aigw_router_abandon (r->model->router, dep->route);
        char message[AIGW_PROVIDER_MESSAGE_MAX];
        snprintf (message, sizeof message, "The request cannot be sent to %s: %.300s",
                  dep->provider, err[0] ? err : "translation failed");
        r->dep = NULL;
        s_finish_error (r_p, 400, "invalid_request_error", "invalid_request", message);
        return -1;
    }
    if (r->stream) {
        r->stream_adapter = r->passthrough ? &aigw_adapter_openai : dep->adapter;
        r->astream = r->stream_adapter->stream_new (r->env->model, r->env->id);
        if (r->anthropic_client && !r->passthrough)
            r->mstream = aigw_messages_stream_new (r->env->model, r->env->id);
        //  The Responses state outlives its attempt: a failure after the
        //  stream started ends it with events that continue its numbers.
        aigw_responses_stream_destroy (&r->rstream);
        r->passthrough_events = 0;
        if (r->responses_client && !r->passthrough)
            r->rstream = aigw_responses_stream_new (r->client_body, r->client_len, r->env->model);
    }
    //  A new span id per attempt; the tokens are this attempt's alone.
    uint64_t span;
    while (!(span = aigw_router_random (&self->rng)))
        ;
    snprintf (r->span, sizeof r->span, "%016llx", (unsigned long long) span);
    r->started_us = aigw_now_us ();
    r->env->tokens_in = r->env->tokens_out = r->env->tokens_cached = 0;
    for (size_t i = 0; i < r->up.header_count; i++)
        r->headers = curl_slist_append (r->headers, r->up.headers[i]);
    char traceparent[AIGW_TRACEPARENT_LEN + 16];
    s_traceparent_header (r, traceparent, sizeof traceparent);
    if (traceparent[0])
        r->headers = curl_slist_append (r->headers, traceparent);
    r->headers = curl_slist_append (r->headers, "Expect:");
    if (r->stream)
        r->headers = curl_slist_append (r->headers, "Accept: text/event-stream");
    r->shard = &self->shards[self->next_shard++ % AIGW_PROVIDER_SHARDS];
    r->started_ms = now;
    r->retry_after = -1;
    CURL *easy = self->easy_pooled ? self->easy_pool[--self->easy_pooled] : curl_easy_init ();
    r->easy = easy;
    if (!easy || !r->headers || (r->stream && !r->astream)
        || (r->anthropic_client && r->stream && !r->passthrough && !r->mstream)
        || (r->responses_client && r->stream && !r->passthrough && !r->rstream))
        return 1;
    s_easy_setup (self, r, easy, r->env->deadline_ms - now);
    curl_easy_setopt (easy, CURLOPT_TCP_KEEPALIVE, 1L);
    //  Waiting for a connection to multiplex on only pays over HTTP/2,
    //  which needs TLS here; over HTTP/1.1 it holds a cold start's transfers
    //  until the first answer's headers arrive.
    if (strncmp (r->up.url, "https://", 8) == 0)
        curl_easy_setopt (easy, CURLOPT_PIPEWAIT, 1L);
    if (curl_multi_add_handle (r->shard->multi, easy) != CURLM_OK) {
        curl_easy_cleanup (easy);
        r->easy = NULL;
        return 1;
    }
    r->first_byte_deadline = now + self->first_byte_ms;
    s_list_push (&self->first_byte, r);
    return 0;
}

//  Pick and start the next attempt, or wait for a retry, or answer.
static void
s_attempt_next (s_request_t *r)
{
    self_t *self = r->owner;
    const aigw_config_t *config = self->config;
    unsigned max_attempts = config->router_max_attempts > 0 ? (unsigned) config->router_max_attempts
                                                            : AIGW_DEFAULT_ROUTER_MAX_ATTEMPTS;
    while (true) {
        int64_t now = aigw_now_ms ();
        if (now >= r->env->deadline_ms) {
            if (!r->fail_status)
                s_note_failure (r, 504, "timeout_error", "deadline_exceeded",
                                "The request deadline passed before an upstream answered.");
            s_finish_failed (&r);
            return;
        }
        if (r->attempts >= max_attempts) {
            s_finish_failed (&r);
            return;
        }
        if (r->chain_at >= r->chain_len) {
            //  The whole chain was tried. Nothing pickable at all: 503.
            if (r->attempts == 0 && r->fail_status == 0) {
                s_finish_error (&r, 503, "service_unavailable", "no_healthy_deployment",
                                "No healthy deployment serves this model: every circuit "
                                "is open.");
                return;
            }
            //  A round without a single attempt: nothing left to retry.
            if (r->attempts == r->round_attempts) {
                s_finish_failed (&r);
                return;
            }
            int64_t base = config->router_retry_base_ms > 0 ? config->router_retry_base_ms
                                                            : AIGW_DEFAULT_ROUTER_RETRY_BASE_MS;
            int64_t cap = config->router_retry_cap_ms > 0 ? config->router_retry_cap_ms
                                                          : AIGW_DEFAULT_ROUTER_RETRY_CAP_MS;
            int64_t delay
                = aigw_router_backoff_ms (r->rounds, base, cap, r->retry_after_s, &self->rng);
            if (!aigw_router_fits_deadline (now, r->env->deadline_ms, delay)) {
                s_finish_failed (&r);
                return;
            }
            r->rounds++;
            r->round_attempts = r->attempts;
            r->chain_at = 0;
            r->tried_count = 0;
            r->wake_at = now + delay;
            s_list_push (&self->waiting, r);
            return;
        }
        aigw_catalog_model_t *model = r->chain[r->chain_at];
        aigw_deployment_t *route = s_pick_pinned (r, model, now);
        if (!route)
            route = aigw_router_pick (model->router, model->strategy, now, r->tried, r->tried_count,
                                      &self->rng);
        if (!route) {
            r->chain_at++;
            r->tried_count = 0;
            continue;
        }
        r->model = model;
        r->dep = aigw_catalog_deployment (model, route);
        assert (r->dep);
        r->tried[r->tried_count++] = r->dep->id;
        if (r->dep->key_unreadable) {
            //  Its credential did not open (logged at load): the next pick.
            s_note_failure (r, 503, "service_unavailable", "deployment_credentials_unreadable",
                            "A deployment of this model cannot be used: its stored provider "
                            "api_key cannot be decrypted with the gateway's " AIGW_SECRET_ENV
                            " (see the gateway's log).");
            aigw_router_abandon (model->router, route);
            r->dep = NULL;
            r->model = NULL;
            continue;
        }
        if (!aigw_catalog_admit (r->dep, now)) {
            //  At its RPM capacity: the next pick, as if it had failed.
            s_note_failure (r, 429, "rate_limit_error", "deployment_capacity",
                            "Every deployment of the model is at its RPM capacity.");
            if (r->retry_after_s < 1)
                r->retry_after_s = 1;
            aigw_router_abandon (model->router, route);
            r->dep = NULL;
            r->model = NULL;
            continue;
        }
        int rc = s_attempt_start (&r);
        if (rc == 0) {
            r->attempts++;
            //  An answer that fails in the end still names its last try.
            aigw_envelope_set (&r->env->provider, r->dep->id);
            aigw_envelope_set (&r->env->provider_kind, r->dep->provider);
            return;
        }
        if (rc < 0)
            return;  //  answered
        aigw_router_abandon (model->router, route);
        s_attempt_reset (r);
    }
}

//  Start every delayed retry whose time came.
static void
s_self_wake (self_t *self, int64_t now)
{
    s_request_t *r = self->waiting.head;
    while (r) {
        s_request_t *next = r->waiting.next;
        if (r->wake_at <= now) {
            s_list_remove (&self->waiting, r);
            r->wake_at = 0;
            s_attempt_next (r);
        }
        r = next;
    }
}

//  Fail over every attempt whose first byte is overdue.
static void
s_self_first_byte_timeouts (self_t *self, int64_t now)
{
    while (self->first_byte.head && self->first_byte.head->first_byte_deadline <= now) {
        s_request_t *r = self->first_byte.head;
        s_list_remove (&self->first_byte, r);
        s_attempt_failed (&r, 504, "timeout_error", "upstream_first_token_timeout",
                          "The upstream sent nothing within the first-token timeout.");
    }
}

//  --------------------------------------------------------------------------
//  curl plumbing

//  Collect up to AIGW_PROVIDER_DONE_BATCH finished transfers; notes in
//  owner->more when others wait. Runs outside every curl callback.
static void
s_shard_check_done (s_shard_t *shard)
{
    CURLMsg *msg;
    int left = 0;
    for (int taken = 0;
         taken < AIGW_PROVIDER_DONE_BATCH && (msg = curl_multi_info_read (shard->multi, &left));
         taken++) {
        if (msg->msg != CURLMSG_DONE)
            continue;
        s_request_t *r = NULL;
        curl_easy_getinfo (msg->easy_handle, CURLINFO_PRIVATE, (char **) &r);
        s_attempt_done (&r, msg->data.result);
    }
    if (left > 0)
        shard->owner->more = true;
}

//  curl socket callback: mirror curl's interest in the epoll set. The event
//  carries the shard index in its high half and the fd in its low half.
static int
s_on_socket (CURL *easy, curl_socket_t fd, int what, void *userp, void *socketp)
{
    s_shard_t *shard = (s_shard_t *) userp;
    epoll_data_t data = {.u64 = ((uint64_t) shard->index << 32) | (uint32_t) fd};
    aigw_curlepoll_socket (shard->owner->epfd, shard->multi, fd, what, socketp, data, shard);
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

//  Let curl act on the sockets epoll reports ready.
static void
s_self_handle_sockets (self_t *self)
{
    struct epoll_event events[AIGW_PROVIDER_EPOLL_BATCH];
    //  One batch a pass: the epoll set stays readable while more wait.
    int count = epoll_wait (self->epfd, events, AIGW_PROVIDER_EPOLL_BATCH, 0);
    {
        for (int i = 0; i < count; i++) {
            int mask = aigw_curlepoll_mask (events[i].events);
            s_shard_t *shard = &self->shards[events[i].data.u64 >> 32];
            curl_socket_t fd = (curl_socket_t) (events[i].data.u64 & 0xFFFFFFFFu);
            int running;
            curl_multi_socket_action (shard->multi, fd, mask, &running);
        }
    }
}

//  --------------------------------------------------------------------------
//  count_tokens: the upstream's own count where its provider has one
//  (Anthropic's /v1/messages/count_tokens, Gemini's countTokens, Bedrock's
//  CountTokens), the
//  gateway's estimate (aigw_tokens) otherwise and whenever that count
//  fails. One try, no fallback and nothing recorded against the deployment:
//  a count is advice, and an upstream without the endpoint is no fault.

//  The client's count_tokens body (Messages without max_tokens) in the
//  gateway's format, into r->openai_body: it checks the body as
//  /v1/messages would, and is what Gemini's and Bedrock's counts are built
//  from. NULL with
//  ERR when the body is not a valid request.
static char *
s_count_openai_body (s_request_t *r, char *err, size_t err_size)
{
    json_t *root = json_loadb (r->client_body, r->client_len, 0, NULL);
    if (!json_is_object (root)) {
        json_decref (root);
        snprintf (err, err_size, "body: must be a JSON object");
        return NULL;
    }
    json_t *limit = json_object_get (root, "max_tokens");
    if (!limit || json_is_null (limit))
        json_object_set_new (root, "max_tokens", json_integer (1));
    char *text = json_dumps (root, JSON_COMPACT);
    json_decref (root);
    if (!text) {
        snprintf (err, err_size, "out of memory");
        return NULL;
    }
    char *body = aigw_messages_request_to_openai (text, strlen (text), &r->openai_len, NULL, err,
                                                  err_size);
    free (text);
    return body;
}

//  Answer R's count with TOKENS, counted by WHO ("upstream", "estimated").
//  Destroys *R_P.
static void
s_count_answer (s_request_t **r_p, int64_t tokens, const char *who)
{
    s_request_t *r = *r_p;
    aigw_envelope_t *env = r->env;
    char *body = NULL;
    if (asprintf (&body, "{\"input_tokens\":%lld}", (long long) (tokens > 0 ? tokens : 0)) < 0)
        body = NULL;
    env->status = 200;
    aigw_envelope_set (&env->content_type, "application/json");
    aigw_envelope_set (&env->token_count, who);
    if (body)
        aigw_envelope_take_body (env, body, strlen (body));
    env->tokens_in = env->tokens_out = env->tokens_cached = 0;
    s_reply (r);
    s_request_destroy (r_p);
}

//  Answer R with the gateway's estimate of its prompt.
static void
s_count_estimate (s_request_t **r_p)
{
    s_request_t *r = *r_p;
    int64_t prompt = 0, completion = 0;
    aigw_tokens_estimate (AIGW_TOKENS_MESSAGES, r->client_body, r->client_len, 0, &prompt,
                          &completion);
    s_count_answer (r_p, prompt, "estimated");
}

//  Build the upstream count request for DEP into OUT: 0, or -1 when DEP's
//  provider has no count endpoint or the request cannot be built.
static int
s_count_request (s_request_t *r, aigw_catalog_deployment_t *dep, aigw_upstream_request_t *out)
{
    const aigw_upstream_t *up = &dep->up;
    if (streq (dep->provider, "anthropic")) {
        snprintf (out->url, sizeof out->url, "%s/v1/messages/count_tokens",
                  up->base_url ? up->base_url : aigw_adapter_default_base_url ("anthropic"));
        out->body
            = aigw_openai_with_model (r->client_body, r->client_len, up->model, &out->body_len);
        if (!out->body || aigw_upstream_request_header (out, "Content-Type", "application/json")
            || aigw_upstream_request_header (out, "anthropic-version",
                                             AIGW_PROVIDER_ANTHROPIC_VERSION)
            || (up->api_key && aigw_upstream_request_header (out, "x-api-key", up->api_key)))
            return -1;
        return 0;
    }
    char err[256];
    //  The adapter signs CountTokens as it signs Converse, and wraps the
    //  same messages, system and tools.
    if (streq (dep->provider, "bedrock"))
        return dep->adapter->request (up, AIGW_KIND_COUNT_TOKENS, false, r->openai_body,
                                      r->openai_len, out, err, sizeof err)
                       == 0
                   ? 0
                   : -1;
    if (!streq (dep->provider, "gemini"))
        return -1;
    //  models/M:countTokens takes the whole generateContent request, so the
    //  system instruction and tools count too.
    if (dep->adapter->request (up, AIGW_KIND_CHAT, false, r->openai_body, r->openai_len, out, err,
                               sizeof err)
        != 0)
        return -1;
    char *method = strstr (out->url, ":generateContent");
    char *name = method ? memrchr (out->url, '/', (size_t) (method - out->url)) : NULL;
    if (!method || !name)
        return -1;
    char model[256];
    snprintf (model, sizeof model, "models/%.*s", (int) (method - name - 1), name + 1);
    memmove (method, ":countTokens", sizeof ":countTokens");
    json_t *inner = json_loadb (out->body, out->body_len, 0, NULL);
    if (!json_is_object (inner)) {
        json_decref (inner);
        return -1;
    }
    json_object_set_new (inner, "model", json_string (model));
    json_t *root = json_pack ("{s:o}", "generateContentRequest", inner);
    free (out->body);
    out->body = root ? json_dumps (root, JSON_COMPACT) : NULL;
    out->body_len = out->body ? strlen (out->body) : 0;
    json_decref (root);
    return out->body ? 0 : -1;
}

//  Count R's prompt on MODEL: ask a deployment the router would pick now
//  (the pick is handed back at once: a count is not traffic), or estimate.
//  Takes *R_P.
static void
s_count_start (s_request_t **r_p, aigw_catalog_model_t *model)
{
    s_request_t *r = *r_p;
    self_t *self = r->owner;
    int64_t now = aigw_now_ms ();
    aigw_deployment_t *route
        = aigw_router_pick (model->router, model->strategy, now, NULL, 0, &self->rng);
    aigw_catalog_deployment_t *dep = route ? aigw_catalog_deployment (model, route) : NULL;
    if (route)
        aigw_router_abandon (model->router, route);
    if (dep)
        dep->up.now_s = now / 1000;  //  the SigV4 date
    //  OpenAI-format providers have no count endpoint: no upstream call.
    if (!dep || dep->key_unreadable || s_count_request (r, dep, &r->up) != 0) {
        s_count_estimate (r_p);
        return;
    }
    aigw_envelope_set (&r->env->provider, dep->id);
    for (size_t i = 0; i < r->up.header_count; i++)
        r->headers = curl_slist_append (r->headers, r->up.headers[i]);
    r->headers = curl_slist_append (r->headers, "Expect:");
    r->shard = &self->shards[self->next_shard++ % AIGW_PROVIDER_SHARDS];
    r->started_ms = now;
    CURL *easy = self->easy_pooled ? self->easy_pool[--self->easy_pooled] : curl_easy_init ();
    r->easy = easy;
    if (!easy || !r->headers) {
        s_count_estimate (r_p);
        return;
    }
    //  The count waits at most the first-token timeout: the estimate is
    //  better than a client kept waiting.
    int64_t left = r->env->deadline_ms - now;
    long timeout = (long) (left < self->first_byte_ms ? left : self->first_byte_ms);
    s_easy_setup (self, r, easy, timeout);
    if (curl_multi_add_handle (r->shard->multi, easy) != CURLM_OK) {
        curl_easy_cleanup (easy);
        r->easy = NULL;
        s_count_estimate (r_p);
    }
}

//  The upstream's count ended: its input_tokens (Anthropic), totalTokens
//  (Gemini) or inputTokens (Bedrock), else the estimate.
static void
s_count_done (s_request_t **r_p, CURLcode rc)
{
    s_request_t *r = *r_p;
    long status = 0;
    if (r->easy)
        curl_easy_getinfo (r->easy, CURLINFO_RESPONSE_CODE, &status);
    json_t *root = rc == CURLE_OK && status == 200 && r->buf
                       ? json_loadb (r->buf, r->buf_len, 0, NULL)
                       : NULL;
    json_t *count = json_object_get (root, "input_tokens");
    if (!count)
        count = json_object_get (root, "totalTokens");
    if (!count)
        count = json_object_get (root, "inputTokens");
    int64_t tokens = json_is_integer (count) ? json_integer_value (count) : -1;
    json_decref (root);
    if (tokens >= 0) {
        s_count_answer (r_p, tokens, "upstream");
        return;
    }
    aigw_info ("request %s: the upstream's token count failed (HTTP %ld, %s): estimated",
               r->env->id ? r->env->id : "?", status, curl_easy_strerror (rc));
    s_count_estimate (r_p);
}

//  --------------------------------------------------------------------------
//  Requests in

//  Answer GET /v1/models from the catalog: the models this key may use.
static void
s_answer_models (self_t *self, aigw_job_t **job_p, aigw_envelope_t **env_p)
{
    aigw_envelope_t *env = *env_p;
    bool anthropic = env->path && streq (env->path, "anthropic");
    json_t *data = json_array ();
    for (size_t i = 0; i < aigw_catalog_size (self->catalog); i++) {
        aigw_catalog_model_t *m = aigw_catalog_at (self->catalog, i);
        if (!aigw_stage_model_allowed (env, m->name))
            continue;
        if (anthropic)
            //  No creation time is known: the Unix epoch, as OpenAI's 0.
            json_array_append_new (data, json_pack ("{s:s,s:s,s:s,s:s}", "type", "model", "id",
                                                    m->name, "display_name", m->name, "created_at",
                                                    "1970-01-01T00:00:00Z"));
        else
            json_array_append_new (data, json_pack ("{s:s,s:s,s:i,s:s}", "id", m->name, "object",
                                                    "model", "created", 0, "owned_by",
                                                    m->deployments[0].provider));
    }
    //  Anthropic's list pages by first_id and last_id; this is one page.
    size_t count = json_array_size (data);
    json_t *first = count ? json_object_get (json_array_get (data, 0), "id") : NULL;
    json_t *last = count ? json_object_get (json_array_get (data, count - 1), "id") : NULL;
    json_t *root = anthropic ? json_pack ("{s:o,s:b,s:O?,s:O?}", "data", data, "has_more", 0,
                                          "first_id", first, "last_id", last)
                             : json_pack ("{s:s,s:o}", "object", "list", "data", data);
    char *text = json_dumps (root, JSON_COMPACT);
    json_decref (root);
    aigw_envelope_take_body (env, text, strlen (text));
    aigw_envelope_set (&env->content_type, "application/json");
    aigw_envelope_set (&env->cache_status, "BYPASS");
    env->status = 200;
    env->last = true;
    aigw_stage_pass (job_p, env_p);
}

//  A streamed chat from an OpenAI-format client: OpenAI-format upstreams
//  tell usage in a last chunk only when asked (stream_options.
//  include_usage). Keep a body that asks, for them; when the client did
//  not ask itself, its stream loses that chunk again (r->strip_usage).
static void
s_ask_usage (s_request_t *r)
{
    json_t *root = json_loadb (r->openai_body, r->openai_len, 0, NULL);
    json_t *options = json_object_get (root, "stream_options");
    if (!json_is_object (root) || json_is_true (json_object_get (options, "include_usage"))) {
        json_decref (root);
        return;
    }
    r->strip_usage = true;
    if (!json_is_object (options)) {
        options = json_object ();
        json_object_set_new (root, "stream_options", options);
    }
    json_object_set_new (options, "include_usage", json_true ());
    r->usage_body = json_dumps (root, JSON_COMPACT);
    r->usage_len = r->usage_body ? strlen (r->usage_body) : 0;
    json_decref (root);
}

//  Hold MODEL in R's chain unless it is there already.
static void
s_chain_add (s_request_t *r, aigw_catalog_model_t *model)
{
    if (!model || r->chain_len >= AIGW_PROVIDER_CHAIN_MAX)
        return;
    for (size_t i = 0; i < r->chain_len; i++)
        if (r->chain[i] == model)
            return;
    r->chain[r->chain_len++] = aigw_catalog_ref (model);
}

//  --------------------------------------------------------------------------
//  The semantic cache's vector (cache.semantic.model): the edge routes a
//  cacheable chat request through here before the cache (auth, ratelimit,
//  guardrail, provider, cache, provider). This hop asks the model's
//  embeddings deployments, through its router as any embeddings request
//  (retries, breakers, capacity, keys; no fallback models: another
//  model's vectors would not compare), for the vector of the text the
//  cache compares, and passes the request on with it, unanswered. A
//  failure passes it on without one. The call is the gateway's own: it
//  is not billed to the request (its usage record covers the chat).

//  The client's request goes on to the next stage, with DIM floats of
//  VECTOR when there is one. Destroys *R_P.
static void
s_embed_done (s_request_t **r_p, const float *vector, size_t dim)
{
    s_request_t *r = *r_p;
    aigw_envelope_t *env = r->held;
    r->held = NULL;
    aigw_envelope_set (&env->cache_embed, NULL);
    if (vector && aigw_envelope_set_vector (env, vector, dim))
        aigw_warn ("request %s: the cache's vector of %zu floats is not kept",
                   env->id ? env->id : "?", dim);
    aigw_stage_pass (&r->job, &env);
    aigw_envelope_destroy (&env);
    s_request_destroy (r_p);
}

//  A 2xx answer to the embeddings call: its first vector goes on.
static void
s_embed_answer (s_request_t **r_p)
{
    s_request_t *r = *r_p;
    char err[256] = "";
    size_t len = 0;
    char *body = r->dep->adapter->response (AIGW_KIND_EMBEDDINGS, r->buf, r->buf_len, r->env->model,
                                            &len, err, sizeof err);
    json_t *root = body ? json_loadb (body, len, 0, NULL) : NULL;
    free (body);
    json_t *values
        = json_object_get (json_array_get (json_object_get (root, "data"), 0), "embedding");
    size_t dim = json_array_size (values);
    float *vector = dim && dim <= AIGW_ENVELOPE_VECTOR_MAX ? malloc (dim * sizeof (float)) : NULL;
    for (size_t i = 0; vector && i < dim; i++) {
        json_t *value = json_array_get (values, i);
        if (!json_is_number (value)) {
            free (vector);
            vector = NULL;
        }
        else
            vector[i] = (float) json_number_value (value);
    }
    json_decref (root);
    if (!vector) {
        s_attempt_failed (r_p, 502, "upstream_error", "upstream_bad_response",
                          "The upstream's embeddings answer holds no vector.");
        return;
    }
    s_record (r, true, NULL);
    s_embed_done (r_p, vector, dim);
    free (vector);
}

//  Start the embeddings call for ENV, or pass ENV on at once when the
//  cache will not look its text up (not plain text, no-store, turned off,
//  exact matches only).
static void
s_embed_take (self_t *self, aigw_job_t *job, aigw_envelope_t *env)
{
    const char *name = env->cache_embed;
    char *text = NULL;
    size_t text_len = 0;
    if ((env->kind == AIGW_KIND_CHAT || env->kind == AIGW_KIND_MESSAGES)
        && !aigw_list_has (env->cache_control, "no-store")
        && !aigw_list_has (env->cache_control, "off")
        && !aigw_list_has (env->cache_control, "exact")) {
        json_t *root = aigw_messages_chat_form ((aigw_kind_t) env->kind, env->body, env->body_len);
        text = root ? aigw_messages_cache_text (root, false, &text_len) : NULL;
        json_decref (root);
    }
    aigw_catalog_model_t *model = text && text_len ? aigw_catalog_get (self->catalog, name) : NULL;
    char *body = NULL;
    if (model) {
        json_t *request = json_pack ("{s:s,s:s%}", "model", name, "input", text, text_len);
        body = request ? json_dumps (request, JSON_COMPACT) : NULL;
        json_decref (request);
    }
    else if (text && text_len)
        aigw_info ("request %s: cache.semantic.model '%s' is not a model here",
                   env->id ? env->id : "?", name);
    free (text);
    s_request_t *r = s_request_new (self);
    r->owner = self;
    r->job = job;
    job->holder = r;
    r->held = env;
    r->embed = true;
    r->retry_after = -1;
    r->retry_after_s = -1;
    s_list_push (&self->requests, r);
    r->env = aigw_envelope_new ();
    if (!body || !r->env) {
        free (body);
        s_embed_done (&r, NULL, 0);
        return;
    }
    r->kind = AIGW_KIND_EMBEDDINGS;
    r->openai_body = body;
    r->openai_len = strlen (body);
    int64_t timeout = self->config->cache_semantic_timeout_ms > 0
                          ? self->config->cache_semantic_timeout_ms
                          : AIGW_DEFAULT_CACHE_EMBED_TIMEOUT_MS;
    int64_t deadline = aigw_now_ms () + timeout;
    r->env->kind = AIGW_KIND_EMBEDDINGS;
    r->env->deadline_ms = env->deadline_ms < deadline ? env->deadline_ms : deadline;
    aigw_envelope_set (&r->env->id, env->id);
    aigw_envelope_set (&r->env->model, name);
    aigw_envelope_set (&r->env->traceparent, env->traceparent);
    s_chain_add (r, model);
    s_attempt_next (r);
}

//  Take one request: route it, or answer at once.
static void
s_self_take (void *arg, aigw_job_t *job, aigw_envelope_t *env)
{
    self_t *self = (self_t *) arg;
    if (env->kind == AIGW_KIND_MODELS) {
        s_answer_models (self, &job, &env);
        return;
    }
    //  Not the answering hop: the cache's vector (a stage follows).
    if (env->cache_embed && env->hop + 1 < env->route_len) {
        s_embed_take (self, job, env);
        return;
    }
    s_request_t *r = s_request_new (self);
    r->owner = self;
    r->job = job;
    job->holder = r;
    r->env = env;
    r->retry_after = -1;
    r->retry_after_s = -1;
    s_list_push (&self->requests, r);
    r->client_body = env->body;
    r->client_len = env->body_len;
    env->body = NULL;
    env->body_len = 0;
    r->count = env->kind == AIGW_KIND_COUNT_TOKENS;
    r->anthropic_client = env->kind == AIGW_KIND_MESSAGES || r->count;
    r->responses_client = env->kind == AIGW_KIND_RESPONSES;
    r->stream = env->stream && !r->count;
    r->kind = env->kind == AIGW_KIND_EMBEDDINGS ? AIGW_KIND_EMBEDDINGS : AIGW_KIND_CHAT;
    if (env->kind != AIGW_KIND_CHAT && env->kind != AIGW_KIND_EMBEDDINGS
        && env->kind != AIGW_KIND_MESSAGES && env->kind != AIGW_KIND_RESPONSES && !r->count) {
        s_finish_error (&r, 404, "invalid_request_error", "unknown_endpoint",
                        "The provider stage does not serve this endpoint.");
        return;
    }
    if (r->anthropic_client) {
        char err[256] = "";
        bool stream = false;
        r->openai_body
            = r->count ? s_count_openai_body (r, err, sizeof err)
                       : aigw_messages_request_to_openai (r->client_body, r->client_len,
                                                          &r->openai_len, &stream, err, sizeof err);
        if (!r->openai_body) {
            char message[AIGW_PROVIDER_MESSAGE_MAX];
            snprintf (message, sizeof message, "Invalid Messages request: %.400s", err);
            s_finish_error (&r, 400, "invalid_request_error", "invalid_request", message);
            return;
        }
        r->stream = stream;
    }
    else if (r->responses_client) {
        //  The client's body stays for a pass-through and for the echo of
        //  its settings in the answer.
        char err[256] = "", param[AIGW_RESPONSES_PARAM_MAX] = "";
        bool stream = false;
        s_followup_note (r);
        r->openai_body = r->followup
                             ? aigw_responses_followup_to_openai (r->client_body, r->client_len,
                                                                  &r->openai_len, &stream, param,
                                                                  sizeof param, err, sizeof err)
                             : aigw_responses_request_to_openai (r->client_body, r->client_len,
                                                                 &r->openai_len, &stream, param,
                                                                 sizeof param, err, sizeof err);
        if (!r->openai_body) {
            aigw_envelope_set_error (env, 400, "invalid_request_error",
                                     *param ? "invalid_value" : "invalid_request",
                                     *param ? param : NULL, err);
            s_reply (r);
            s_request_destroy (&r);
            return;
        }
        r->stream = stream;
    }
    else {
        r->openai_body = r->client_body;
        r->openai_len = r->client_len;
        r->client_body = NULL;
        r->client_len = 0;
        if (r->stream && r->kind == AIGW_KIND_CHAT)
            s_ask_usage (r);
    }
    aigw_catalog_model_t *model = aigw_catalog_get (self->catalog, env->model);
    if (!model) {
        char message[256];
        snprintf (message, sizeof message, "The model '%.160s' does not exist.",
                  env->model ? env->model : "");
        aigw_envelope_set_error (env, 404, "invalid_request_error", "model_not_found", "model",
                                 message);
        s_reply (r);
        s_request_destroy (&r);
        return;
    }
    if (r->count) {
        s_count_start (&r, model);
        return;
    }
    s_chain_add (r, model);
    for (size_t i = 0; i < model->fallback_count; i++)
        s_chain_add (r, aigw_catalog_get (self->catalog, model->fallbacks[i]));
    if (env->deadline_ms - aigw_now_ms () <= 0) {
        s_finish_error (&r, 504, "timeout_error", "deadline_exceeded",
                        "The request deadline passed before the upstream call.");
        return;
    }
    s_attempt_next (r);
}

//  --------------------------------------------------------------------------
//  Health reports

//  Tell the broker this process's deployment figures.
static void
s_self_report (self_t *self, int64_t now)
{
    json_t *doc = json_pack ("{s:s,s:I,s:o}", "instance", self->instance, "at_ms", (json_int_t) now,
                             "deployments", aigw_catalog_report (self->catalog, now));
    char *text = doc ? json_dumps (doc, JSON_COMPACT) : NULL;
    json_decref (doc);
    aigw_worker_t *worker = self->host ? aigw_host_worker (self->host, "provider") : NULL;
    if (text && worker)
        aigw_worker_report (worker, text, strlen (text));
    free (text);
}

//  --------------------------------------------------------------------------
//  Models from the database

//  Open the sealed api_keys of model document DOC in place (aigw_secret,
//  bound to each deployment's id). A key that does not open is taken out
//  and its deployment's index set in UNREADABLE: that deployment then
//  refuses requests with a 503 while the model's others serve. A legacy
//  plaintext key still works; the first one is named in the log.
static void
s_self_open_keys (self_t *self, json_t *doc, bool unreadable[AIGW_CONFIG_MAX_DEPLOYMENTS])
{
    const char *model = json_string_value (json_object_get (doc, "name"));
    size_t index;
    json_t *dep;
    json_array_foreach (json_object_get (doc, "deployments"), index, dep) {
        const char *id = json_string_value (json_object_get (dep, "id"));
        const char *value = json_string_value (json_object_get (dep, "api_key"));
        if (!value || !id || index >= AIGW_CONFIG_MAX_DEPLOYMENTS)
            continue;
        if (!aigw_secret_is_sealed (value)) {
            if (!self->plaintext_warned)
                aigw_warn ("provider: model %s deployment %s: its api_key is stored unencrypted; "
                           "set " AIGW_SECRET_ENV " and run `aigw secrets rotate`",
                           model ? model : "?", id);
            self->plaintext_warned = true;
            continue;
        }
        char aad[AIGW_MODELS_AAD_MAX], err[256];
        aigw_models_key_aad (id, aad, sizeof aad);
        char *plain = aigw_secret_open (self->secrets, value, aad, err, sizeof err);
        if (plain) {
            json_object_set_new (dep, "api_key", json_string (plain));
            aigw_config_string_free (&plain);
        }
        else {
            aigw_error ("provider: model %s deployment %s: its stored api_key cannot be "
                        "decrypted: %s; the deployment answers 503 until that key is configured",
                        model ? model : "?", id, err);
            json_object_del (dep, "api_key");
            unreadable[index] = true;
        }
    }
}

//  Rebuild the catalog from the config and a snapshot of the database's
//  models (one JSON document per row). A model that fails its checks is
//  skipped and named in the log; the others serve.
static void
s_self_load_models (self_t *self, PGresult *res)
{
    int rows = PQntuples (res);
    aigw_config_model_t *models = calloc ((size_t) rows + 1, sizeof *models);
    if (!models)
        return;
    size_t count = 0;
    for (int i = 0; i < rows; i++) {
        json_t *doc = json_loads (PQgetvalue (res, i, 0), 0, NULL);
        char param[128] = "", err[256] = "";
        bool unreadable[AIGW_CONFIG_MAX_DEPLOYMENTS] = {false};
        s_self_open_keys (self, doc, unreadable);
        if (aigw_models_from_json (doc, &models[count], param, sizeof param, err, sizeof err)
            == 0) {
            for (int j = 0; j < models[count].deployment_count; j++)
                models[count].deployments[j].key_unreadable = unreadable[j];
            count++;
        }
        else
            aigw_warn ("provider: database model skipped: %s: %s", param, err);
        aigw_models_doc_destroy (doc);
    }
    char err[256] = "";
    int skipped = aigw_catalog_load (self->catalog, models, count, "database", err, sizeof err);
    if (skipped > 0)
        aigw_warn ("provider: %d model(s) skipped: %s", skipped, err);
    else if (skipped == 0)
        aigw_debug ("provider: %zu database model(s) loaded", count);
    for (size_t i = 0; i < count; i++)
        aigw_config_model_reset (&models[i]);
    free (models);
}

//  --------------------------------------------------------------------------
//  The actor

static void
s_self_destroy (self_t **self_p)
{
    self_t *self = *self_p;
    if (!self)
        return;
    while (self->requests.head) {
        s_request_t *r = self->requests.head;
        s_request_destroy (&r);
    }
    for (int i = 0; i < AIGW_PROVIDER_SHARDS; i++)
        if (self->shards[i].multi)
            curl_multi_cleanup (self->shards[i].multi);
    while (self->easy_pooled)
        curl_easy_cleanup (self->easy_pool[--self->easy_pooled]);
    while (self->requests_pooled) {
        s_request_t *r = self->request_pool[--self->requests_pooled];
        S_UNPOISON (r, sizeof *r);
        free (r);
    }
    if (self->epfd >= 0)
        close (self->epfd);
    aigw_dbwatch_destroy (&self->dbwatch);
    aigw_catalog_destroy (&self->catalog);
    zhashx_destroy (&self->urls);
    aigw_secret_destroy (&self->secrets);
    free (self);
    *self_p = NULL;
}

static self_t *
s_self_new (aigw_host_t *host, const aigw_config_t *config)
{
    self_t *self = calloc (1, sizeof *self);
    if (!self)
        return NULL;
    self->proxy_env = s_proxy_env ();
    self->urls = zhashx_new ();
    zhashx_set_destructor (self->urls, s_url_free);
    self->requests.offset = offsetof (s_request_t, all);
    self->first_byte.offset = offsetof (s_request_t, first_byte);
    self->waiting.offset = offsetof (s_request_t, waiting);
    self->paused.offset = offsetof (s_request_t, paused);
    self->config = config;
    self->host = host;
    self->report_ms
        = config->router_report_ms > 0 ? config->router_report_ms : AIGW_DEFAULT_REPORT_MS;
    self->report_at = aigw_now_ms ();
    self->epfd = epoll_create1 (EPOLL_CLOEXEC);
    self->rng = (uint64_t) zclock_usecs () ^ ((uint64_t) getpid () << 32) ^ (uintptr_t) self;
    self->first_byte_ms = self->config->first_token_timeout_ms > 0
                              ? self->config->first_token_timeout_ms
                              : AIGW_DEFAULT_FIRST_TOKEN_TIMEOUT_MS;
    char hostname[64] = "";
    gethostname (hostname, sizeof hostname - 1);
    snprintf (self->instance, sizeof self->instance, "%s:%d:%llx", hostname, (int) getpid (),
              (unsigned long long) (self->rng & 0xFFFFFF));
    self->catalog = aigw_catalog_new (self->config);
    if (self->epfd < 0 || !self->catalog) {
        s_self_destroy (&self);
        return NULL;
    }
    char err[256] = "";
    int skipped = aigw_catalog_load (self->catalog, NULL, 0, "database", err, sizeof err);
    if (skipped < 0) {
        s_self_destroy (&self);
        return NULL;
    }
    if (skipped > 0)
        aigw_warn ("provider: %d model(s) skipped: %s", skipped, err);
    //  The host connection limit is shared out among the shards.
    long per_shard
        = (self->config->max_host_connections + AIGW_PROVIDER_SHARDS - 1) / AIGW_PROVIDER_SHARDS;
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
    const char *url = self->config->database_url;
    char secret_err[256] = "";
    if (url && *url && !(self->secrets = aigw_secret_new (config, secret_err, sizeof secret_err))) {
        aigw_error ("provider: %s", secret_err);
        s_self_destroy (&self);
        return NULL;
    }
    if (url && *url
        && !(self->dbwatch = aigw_dbwatch_new (url, AIGW_MODELS_CHANNEL, AIGW_MODELS_SQL,
                                               self->config->db_statement_timeout_ms))) {
        s_self_destroy (&self);
        return NULL;
    }
    return self;
}

//  Milliseconds until the loop must run again, -1 for nothing due.
static int
s_stage_timeout (void *state)
{
    self_t *self = (self_t *) state;
    if (self->more)
        return 0;
    int64_t now = aigw_now_ms ();
    int64_t next = self->report_at;
    for (int i = 0; i < AIGW_PROVIDER_SHARDS; i++)
        if (self->shards[i].timer_at >= 0 && self->shards[i].timer_at < next)
            next = self->shards[i].timer_at;
    if (self->first_byte.head && self->first_byte.head->first_byte_deadline < next)
        next = self->first_byte.head->first_byte_deadline;
    for (s_request_t *r = self->waiting.head; r; r = r->waiting.next)
        if (r->wake_at < next)
            next = r->wake_at;
    int db = self->dbwatch ? aigw_dbwatch_timeout (self->dbwatch, zclock_mono ()) : -1;
    if (db >= 0 && now + db < next)
        next = now + db;
    return next <= now ? 0 : (int) (next - now);
}

//  curl's sockets (one epoll set) and the models watcher's connection.
static int
s_stage_pollitems (void *state, zmq_pollitem_t *items, int max)
{
    self_t *self = (self_t *) state;
    if (max < 2)
        return 0;
    items[0] = (zmq_pollitem_t){NULL, self->epfd, ZMQ_POLLIN, 0};
    int db_fd = self->dbwatch ? aigw_dbwatch_fd (self->dbwatch) : -1;
    if (db_fd < 0)
        return 1;
    items[1] = (zmq_pollitem_t){NULL, db_fd, aigw_dbwatch_events (self->dbwatch), 0};
    return 2;
}

//  Everything but new requests: the database's models, curl's sockets and
//  timers, finished transfers, first-byte timeouts, delayed retries and the
//  health report.
static void
s_stage_process (void *state, zmq_pollitem_t *items, int count)
{
    self_t *self = (self_t *) state;
    int64_t started = zclock_mono ();
    struct timespec cpu_start;
    clock_gettime (CLOCK_THREAD_CPUTIME_ID, &cpu_start);
    self->more = false;
    if (self->dbwatch) {
        //  The watcher keeps time on the monotonic clock.
        int wait = aigw_dbwatch_timeout (self->dbwatch, zclock_mono ());
        if ((count > 1 && items[1].revents) || wait == 0) {
            PGresult *res = aigw_dbwatch_process (self->dbwatch, zclock_mono ());
            if (res) {
                s_self_load_models (self, res);
                PQclear (res);
            }
        }
    }
    if (count > 0 && (items[0].revents & ZMQ_POLLIN))
        s_self_handle_sockets (self);
    int64_t now = aigw_now_ms ();
    int fired = 0;
    for (int n = 0; n < AIGW_PROVIDER_SHARDS; n++) {
        s_shard_t *shard = &self->shards[(self->next_timer + n) % AIGW_PROVIDER_SHARDS];
        if (shard->timer_at < 0 || now < shard->timer_at)
            continue;
        if (fired == AIGW_PROVIDER_TIMERS_PER_PASS) {
            self->more = true;  //  the rest next pass, first in line
            self->next_timer = shard->index;
            break;
        }
        shard->timer_at = -1;
        int running;
        curl_multi_socket_action (shard->multi, CURL_SOCKET_TIMEOUT, 0, &running);
        fired++;
    }
    if (self->paused.head && aigw_host_backlog (self->host) < AIGW_PROVIDER_BACKLOG_LOW) {
        //  Off the list first: a resume may call the write callback, which
        //  may pause the stream again.
        while (self->paused.head) {
            s_request_t *r = self->paused.head;
            s_list_remove (&self->paused, r);
            curl_easy_pause (r->easy, CURLPAUSE_CONT);
        }
    }
    for (int i = 0; i < AIGW_PROVIDER_SHARDS; i++)
        s_shard_check_done (&self->shards[i]);
    now = aigw_now_ms ();
    s_self_first_byte_timeouts (self, now);
    s_self_wake (self, now);
    if (now >= self->report_at) {
        s_self_report (self, now);
        self->report_at = now + self->report_ms;
    }
    int64_t took = zclock_mono () - started;
    if (took > AIGW_PROVIDER_SLOW_PASS_MS) {
        //  Wall time against our own CPU time: a gap is time the kernel
        //  gave other threads, not work done here.
        struct timespec cpu_end;
        clock_gettime (CLOCK_THREAD_CPUTIME_ID, &cpu_end);
        int64_t cpu = (cpu_end.tv_sec - cpu_start.tv_sec) * 1000
                      + (cpu_end.tv_nsec - cpu_start.tv_nsec) / 1000000;
        aigw_warn ("provider: one pass of the loop took %lld ms (%lld ms of it on the CPU)",
                   (long long) took, (long long) cpu);
    }
}

static void *
s_stage_new (aigw_host_t *host, const aigw_config_t *config)
{
    self_t *self = s_self_new (host, config);
    if (!self)
        aigw_error ("provider actor could not start");
    return self;
}

static void
s_stage_destroy (void **state_p)
{
    s_self_destroy ((self_t **) state_p);
}

//  The client left: abort the upstream transfer at once, so the upstream
//  slot and the in-flight figures are freed now, not at a timeout.
static void
s_stage_cancel (void *state, aigw_job_t *job)
{
    s_request_t *r = (s_request_t *) job->holder;
    if (!r)
        return;
    aigw_debug ("request %s: the client left; upstream call aborted",
                r->env && r->env->id ? r->env->id : "?");
    //  Not the deployment's fault: nothing to record but the end of it.
    if (r->easy && r->dep)
        aigw_router_abandon (r->model->router, r->dep->route);
    s_request_destroy (&r);
}

const aigw_stage_def_t aigw_provider_stage = {
    .name = "provider",
    .replay_safe = false,
    .state_new = s_stage_new,
    .state_destroy = s_stage_destroy,
    .take = s_self_take,
    .pollitems = s_stage_pollitems,
    .timeout = s_stage_timeout,
    .process = s_stage_process,
    .cancel = s_stage_cancel,
};

//  --------------------------------------------------------------------------
//  Selftest: the stage in a real host (no broker: it is never needed when
//  every stage of the route is here) against a loopback upstream
//  (tests/aigw_testhttp), since the mock provider is a tool the gateway's
//  folders do not include. The adapters' translations have their own
//  selftests.

//  The front's side of the test: the final reply it was handed, and the
//  bytes of every chunk of a stream.
typedef struct {
    aigw_envelope_t *reply;  //  the final reply's envelope, once it came
    int events;              //  events delivered
    char stream[8192];       //  the chunks' bodies, joined
    size_t stream_len;       //  bytes in stream
} s_test_front_t;

//  The front's deliver: keeps the final reply's envelope and the chunks'
//  bytes; takes the event.
static void
s_test_deliver (void *self, void *origin, aigw_client_event_t **event_p)
{
    s_test_front_t *front = (s_test_front_t *) self;
    aigw_client_event_t *event = *event_p;
    front->events++;
    assert (event->type == AIGW_BP_CLIENT_REPLY && event->env);
    aigw_envelope_t *env = event->env;
    if (env->body_len && front->stream_len + env->body_len < sizeof front->stream) {
        memcpy (front->stream + front->stream_len, env->body, env->body_len);
        front->stream_len += env->body_len;
        front->stream[front->stream_len] = '\0';
    }
    if (event->last) {
        front->reply = event->env;
        event->env = NULL;
    }
    aigw_client_event_destroy (event_p);
}

//  The front's forward: never called, every stage of the route is here.
static void
s_test_forward (void *self, void *origin, const char *service, const char *shard,
                aigw_envelope_t **env_p)
{
    assert (!"the provider stage is here: nothing goes to the broker");
}

//  Submit a chat request for MODEL through HOST's provider stage, a stream
//  when STREAM, with TRACEPARENT (or none), and run the host's loop until
//  the front has the final reply; returns it (the caller destroys it).
static aigw_envelope_t *
s_test_call (aigw_host_t *host, s_test_front_t *front, const char *id, const char *model,
             const char *body, bool stream, const char *traceparent)
{
    aigw_envelope_t *env = aigw_envelope_new ();
    env->kind = AIGW_KIND_CHAT;
    env->stream = stream;
    aigw_envelope_set (&env->id, id);
    aigw_envelope_set (&env->model, model);
    aigw_envelope_set (&env->traceparent, traceparent);
    aigw_envelope_set (&env->route[0], "provider");
    env->route_len = 1;
    env->deadline_ms = aigw_now_ms () + 10000;
    assert (aigw_envelope_set_body (env, body, strlen (body)) == 0);
    front->reply = NULL;
    front->stream_len = 0;
    front->stream[0] = '\0';
    aigw_host_submit (host, &env, front, id);
    int64_t give_up = aigw_now_ms () + 15000;
    while (!front->reply && aigw_now_ms () < give_up) {
        zmq_pollitem_t items[AIGW_HOST_POLLITEMS_MAX];
        int count = aigw_host_pollitems (host, items, AIGW_HOST_POLLITEMS_MAX);
        zmq_poll (items, count, aigw_host_timeout (host, 20));
        aigw_host_process (host, items, count);
    }
    assert (front->reply);
    aigw_host_forget (host, id, false);
    return front->reply;
}

//  A chat call, not streamed, without a traceparent.
static aigw_envelope_t *
s_test_chat (aigw_host_t *host, s_test_front_t *front, const char *id, const char *model,
             const char *body)
{
    return s_test_call (host, front, id, model, body, false, NULL);
}

//  Field FIELD (0 = start) of line LINE (0 = first) of UPSTREAM, into OUT.
//  False when there is no such field.
static bool
s_test_attempt_field (const char *upstream, int line, int field, char *out, size_t size)
{
    const char *at = upstream;
    for (int i = 0; at && i < line; i++)
        at = (at = strchr (at, '\n')) ? at + 1 : NULL;
    for (int i = 0; at && *at && i < field; i++)
        at = (at = strpbrk (at, "\t\n")) && *at == '\t' ? at + 1 : NULL;
    if (!at || !*at)
        return false;
    size_t len = strcspn (at, "\t\n");
    snprintf (out, size, "%.*s", (int) len, at);
    return true;
}

//  Lines in UPSTREAM, each ended by a newline.
static int
s_test_attempt_lines (const char *upstream)
{
    int lines = 0;
    for (const char *at = upstream; at && (at = strchr (at, '\n')); at++)
        lines++;
    return lines;
}

void
aigw_provider_test (bool verbose)
{
    aigw_log_level_t level = aigw_log_level ();
    if (!verbose)
        aigw_log_set_level (AIGW_LOG_ERROR);
    aigw_testhttp_t up;
    aigw_testhttp_start (&up, 200,
                         "{\"id\":\"chatcmpl-1\",\"object\":\"chat.completion\",\"created\":1,"
                         "\"model\":\"gpt-4o-mini\",\"choices\":[{\"index\":0,\"message\":"
                         "{\"role\":\"assistant\",\"content\":\"hello from upstream\"},"
                         "\"finish_reason\":\"stop\"}],\"usage\":{\"prompt_tokens\":3,"
                         "\"completion_tokens\":3,\"total_tokens\":6}}",
                         0);

    //  The default catalog's OpenAI models, at our upstream; no database.
    char *saved_url = getenv ("DATABASE_URL") ? strdup (getenv ("DATABASE_URL")) : NULL;
    unsetenv ("DATABASE_URL");
    char base_url[64];
    snprintf (base_url, sizeof base_url, "http://127.0.0.1:%d/v1", up.port);
    setenv ("OPENAI_BASE_URL", base_url, 1);
    setenv ("OPENAI_API_KEY", "sk-provider-test", 1);
    char err[AIGW_CONFIG_ERR_MAX];
    aigw_config_t *config = aigw_config_new (NULL, err, sizeof err);
    if (!config)
        fprintf (stderr, "provider: %s\n", err);
    assert (config);
    unsetenv ("OPENAI_BASE_URL");
    unsetenv ("OPENAI_API_KEY");
    aigw_host_t *host
        = aigw_host_new (config, "tcp://127.0.0.1:1", "provider", true, err, sizeof err);
    if (!host)
        fprintf (stderr, "provider: %s\n", err);
    assert (host);
    s_test_front_t front = {0};
    aigw_front_t front_def = {&front, s_test_deliver, s_test_forward, NULL};
    aigw_host_set_front (host, &front_def);

    //  A chat call: the upstream gets the model, the key and the messages;
    //  the client gets its answer.
    aigw_envelope_t *reply
        = s_test_chat (host, &front, "req-1", "gpt-4o-mini",
                       "{\"model\":\"gpt-4o-mini\",\"messages\":[{\"role\":\"user\","
                       "\"content\":\"hi\"}]}");
    if (verbose)
        printf ("\n    status %d: %.*s\n", reply->status, (int) reply->body_len, reply->body);
    assert (reply->status == 200);
    assert (reply->body && memmem (reply->body, reply->body_len, "hello from upstream", 19));
    pthread_mutex_lock (&up.lock);
    assert (up.requests == 1);
    assert (strncmp (up.last, "POST /v1/chat/completions ", 26) == 0);
    assert (strcasestr (up.last, "authorization: Bearer sk-provider-test"));
    assert (strstr (up.last, "\"content\":\"hi\""));
    pthread_mutex_unlock (&up.lock);

    //  The attempt's line in env->upstream: start, duration, status, span,
    //  deployment, model (schemas/envelope.md 2b).
    char field[64];
    assert (s_test_attempt_lines (reply->upstream) == 1);
    assert (s_test_attempt_field (reply->upstream, 0, 0, field, sizeof field)
            && atoll (field) > 1600000000000000LL);
    assert (s_test_attempt_field (reply->upstream, 0, 1, field, sizeof field)
            && atoll (field) >= 0);
    assert (s_test_attempt_field (reply->upstream, 0, 2, field, sizeof field)
            && streq (field, "200"));
    assert (s_test_attempt_field (reply->upstream, 0, 3, field, sizeof field)
            && strlen (field) == 16 && strspn (field, "0123456789abcdef") == 16);
    assert (s_test_attempt_field (reply->upstream, 0, 4, field, sizeof field)
            && streq (field, "gpt-4o-mini/0"));
    assert (s_test_attempt_field (reply->upstream, 0, 5, field, sizeof field)
            && streq (field, "gpt-4o-mini"));
    assert (!s_test_attempt_field (reply->upstream, 0, 6, field, sizeof field));
    assert (reply->tokens_in == 3 && reply->tokens_out == 3 && reply->attempts == 1);
    aigw_envelope_destroy (&reply);

    //  Tracing off: the client's traceparent goes upstream unchanged; an
    //  invalid one (all-zero trace id, upper case) not at all.
    static const char tp[] = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
    static const char *invalid[] = {"00-00000000000000000000000000000000-00f067aa0ba902b7-01",
                                    "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
                                    "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
                                    "01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
                                    "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7"};
    const char *chat = "{\"model\":\"gpt-4o-mini\",\"messages\":[{\"role\":\"user\","
                       "\"content\":\"hi\"}]}";
    reply = s_test_call (host, &front, "req-tp1", "gpt-4o-mini", chat, false, tp);
    assert (reply->status == 200);
    aigw_envelope_destroy (&reply);
    pthread_mutex_lock (&up.lock);
    assert (strcasestr (up.last, "traceparent: 00-4bf92f3577b34da6a3ce929d0e0e4736-"
                                 "00f067aa0ba902b7-01\r\n"));
    pthread_mutex_unlock (&up.lock);
    for (size_t i = 0; i < sizeof invalid / sizeof invalid[0]; i++) {
        reply = s_test_call (host, &front, "req-tp2", "gpt-4o-mini", chat, false, invalid[i]);
        assert (reply->status == 200);
        aigw_envelope_destroy (&reply);
        pthread_mutex_lock (&up.lock);
        assert (!strcasestr (up.last, "traceparent:"));
        pthread_mutex_unlock (&up.lock);
    }

    //  Tracing on: the same trace and flags, the attempt's span as parent.
    config->tracing_endpoint = strdup ("http://127.0.0.1:9");
    reply = s_test_call (host, &front, "req-tp3", "gpt-4o-mini", chat, false, tp);
    assert (reply->status == 200);
    char span[32];
    assert (s_test_attempt_field (reply->upstream, 0, 3, span, sizeof span));
    aigw_envelope_destroy (&reply);
    char want[512];
    snprintf (want, sizeof want, "traceparent: 00-4bf92f3577b34da6a3ce929d0e0e4736-%s-01\r\n",
              span);
    pthread_mutex_lock (&up.lock);
    assert (strcasestr (up.last, want));
    pthread_mutex_unlock (&up.lock);
    aigw_config_string_free (&config->tracing_endpoint);

    //  A stream the client asked no usage of: the upstream is asked for it,
    //  the tokens are kept, and the usage-only chunk never reaches the
    //  client; every other byte does.
    static const char kept[]
        = "data: {\"id\":\"c\",\"object\":\"chat.completion.chunk\",\"choices\":[{\"index\":0,"
          "\"delta\":{\"content\":\"hi\"},\"finish_reason\":\"stop\"}],\"usage\":null}\n\n";
    static const char usage_chunk[]
        = "data: {\"id\":\"c\",\"object\":\"chat.completion.chunk\",\"choices\":[],"
          "\"usage\":{\"prompt_tokens\":7,\"completion_tokens\":2,\"total_tokens\":9,"
          "\"prompt_tokens_details\":{\"cached_tokens\":4}}}\n\n";
    char sse[1024];
    snprintf (sse, sizeof sse, "%s%sdata: [DONE]\n\n", kept, usage_chunk);
    up.body = sse;
    const char *streamed = "{\"model\":\"gpt-4o-mini\",\"stream\":true,\"messages\":[{\"role\":"
                           "\"user\",\"content\":\"hi\"}]}";
    reply = s_test_call (host, &front, "req-s1", "gpt-4o-mini", streamed, true, NULL);
    assert (reply->status == 200);
    assert (reply->tokens_in == 7 && reply->tokens_out == 2 && reply->tokens_cached == 4);
    assert (s_test_attempt_lines (reply->upstream) == 1);
    aigw_envelope_destroy (&reply);
    snprintf (want, sizeof want, "%sdata: [DONE]\n\n", kept);
    assert (streq (front.stream, want));
    pthread_mutex_lock (&up.lock);
    assert (strstr (up.last, "\"stream_options\":{\"include_usage\":true}"));
    pthread_mutex_unlock (&up.lock);
    //  The client that asked gets the chunk.
    const char *asked = "{\"model\":\"gpt-4o-mini\",\"stream\":true,\"stream_options\":"
                        "{\"include_usage\":true},\"messages\":[{\"role\":\"user\","
                        "\"content\":\"hi\"}]}";
    reply = s_test_call (host, &front, "req-s2", "gpt-4o-mini", asked, true, NULL);
    assert (reply->status == 200 && reply->tokens_in == 7);
    aigw_envelope_destroy (&reply);
    assert (streq (front.stream, sse));
    up.body = "{\"id\":\"chatcmpl-1\",\"object\":\"chat.completion\",\"choices\":[],"
              "\"usage\":{\"prompt_tokens\":3,\"completion_tokens\":3,\"total_tokens\":6}}";

    //  A model nobody serves: the client's 404, and no upstream call.
    int requests = up.requests;
    reply = s_test_chat (host, &front, "req-2", "no-such-model",
                         "{\"model\":\"no-such-model\",\"messages\":[{\"role\":\"user\","
                         "\"content\":\"hi\"}]}");
    assert (reply->status == 404);
    assert (!reply->upstream);
    aigw_envelope_destroy (&reply);
    assert (up.requests == requests);

    //  The upstream failing: 502, after it was tried.
    up.status = 500;
    up.body = "{\"error\":{\"message\":\"boom\",\"type\":\"server_error\"}}";
    reply = s_test_chat (host, &front, "req-3", "gpt-4o-mini",
                         "{\"model\":\"gpt-4o-mini\",\"messages\":[{\"role\":\"user\","
                         "\"content\":\"fail\"}]}");
    if (verbose)
        printf ("    status %d: %.*s\n", reply->status, (int) reply->body_len, reply->body);
    assert (reply->status == 502);
    //  One line per attempt, each with the upstream's 500.
    assert (reply->attempts >= 1
            && s_test_attempt_lines (reply->upstream) == (int) reply->attempts);
    for (int i = 0; i < (int) reply->attempts; i++)
        assert (s_test_attempt_field (reply->upstream, i, 2, field, sizeof field)
                && streq (field, "500"));
    aigw_envelope_destroy (&reply);
    assert (up.requests >= requests + 1);

    aigw_host_destroy (&host);
    aigw_config_destroy (&config);
    aigw_testhttp_stop (&up);
    if (saved_url) {
        setenv ("DATABASE_URL", saved_url, 1);
        free (saved_url);
    }
    aigw_log_set_level (level);
    if (verbose)
        printf ("provider: ok\n");
}
