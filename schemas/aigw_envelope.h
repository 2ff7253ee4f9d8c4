/*  aigw_envelope: the message every pipeline stage reads and writes, and
    its codec. This class is the only code in aigw that touches msgpack.
    The wire form is specified in schemas/envelope.md.

    Strings are NUL-terminated heap copies owned by the envelope; set them
    with aigw_envelope_set (). body is a byte buffer with an explicit length
    (it can hold any bytes). */
#ifndef AIGW_ENVELOPE_H_INCLUDED
#define AIGW_ENVELOPE_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define AIGW_ENVELOPE_VERSION 1
//  Largest encoded envelope the codec accepts; larger input is refused.
#define AIGW_ENVELOPE_MAX_BYTES (32 * 1024 * 1024)
//  Longest string field other than body.
#define AIGW_ENVELOPE_MAX_STRING (64 * 1024)
//  Most stages one request may visit.
#define AIGW_ROUTE_MAX 8
//  Most bytes of a request body, and of an answer, that a usage record
//  keeps for a tenant that stores content (a string field's cap).
#define AIGW_CONTENT_MAX AIGW_ENVELOPE_MAX_STRING
//  Longest W3C traceparent the edge writes ("00-" trace "-" span "-" flags).
#define AIGW_TRACEPARENT_LEN 55
//  Most floats in the cache's sentence vector (cache_vector): 4096 holds
//  every common embeddings model (text-embedding-3-large has 3072).
#define AIGW_ENVELOPE_VECTOR_MAX 4096

typedef enum {
    AIGW_KIND_NONE = 0,
    AIGW_KIND_CHAT = 1,         //  POST /v1/chat/completions
    AIGW_KIND_EMBEDDINGS = 2,   //  POST /v1/embeddings
    AIGW_KIND_MODELS = 3,       //  GET /v1/models
    AIGW_KIND_MESSAGES = 4,     //  POST /v1/messages (later issue)
    AIGW_KIND_ADMIN = 5,        //  /api/v1/admin/...
    AIGW_KIND_SETTLE = 6,       //  a request's real use, to its rate-limit owner (limits.md)
    AIGW_KIND_USAGE = 7,        //  a batch of usage records, to the usage actor (envelope.md 2a)
    AIGW_KIND_RESPONSES = 8,    //  POST /v1/responses (OpenAI Responses API)
    AIGW_KIND_COUNT_TOKENS = 9  //  POST /v1/messages/count_tokens (not billed, not rate limited)
} aigw_kind_t;

typedef struct {
    //  Identity and control, written by the edge
    char *id;                     //  request id (X-Request-ID)
    uint8_t kind;                 //  aigw_kind_t
    int64_t deadline_ms;          //  absolute deadline, Unix ms
    bool stream;                  //  client asked for SSE
    char *credential;             //  key or token as presented; auth clears it
    char *model;                  //  model the client asked for
    char *method;                 //  admin requests: HTTP method
    char *path;                   //  admin requests: path below /api/v1/admin/; GET
                                  //  /v1/models: "anthropic" for Anthropic's list shape
    char *query;                  //  admin requests: raw query string, or NULL
    char *route[AIGW_ROUTE_MAX];  //  stage names, in order
    uint8_t route_len;            //  entries used in route
    uint8_t hop;                  //  index in route of the stage now handling it

    //  Principal, written by auth
    char *key_id;          //  stable id of the key (never the secret)
    char *key_name;        //  human name of the key
    char *tenant;          //  tenant name or id
    char *role;            //  role name
    int64_t rpm;           //  key's requests per minute, 0 = default
    char *principal_type;  //  master, key or token
    char *tenant_id;       //  tenant id, "*" for every tenant
    char *permissions;     //  comma-separated, "*" = all
    char *models;          //  comma-separated models allowed, NULL = all
    int64_t expires_ms;    //  principal's expiry, Unix ms, 0 = never

    //  Rate limit, written by ratelimit
    int64_t rl_limit;             //  X-RateLimit-Limit, -1 = not set
    int64_t rl_remaining;         //  X-RateLimit-Remaining
    int64_t rl_reset;             //  X-RateLimit-Reset, Unix seconds
    char *limits;                 //  auth: the limits that apply (schemas/limits.md 4a)
    char *reservation;            //  ratelimit: what it reserved, for the settle
    char *rl_kind;                //  ratelimit: the binding limit's kind (rpm, tpm, ...)
    int64_t rl_tokens_limit;      //  the binding tpm limit, -1 = none applies
    int64_t rl_tokens_remaining;  //  its tokens left
    int64_t rl_tokens_reset;      //  when it has all its room back, Unix seconds

    //  Cache, written by the sender to cache (key), the edge and auth
    //  (control) and cache (status, control on a semantic hit)
    char *cache_key;      //  hex hash of the request's cache partition (its owner's shard)
    char *cache_status;   //  HIT, SEMANTIC-HIT, MISS or BYPASS
    char *cache_control;  //  in: the request's directives ("no-cache", "no-store", "ttl=N",
                          //  auth's "off" and "exact"), comma-separated; out of a semantic
                          //  hit: "similarity=0.9312"
    char *cache_embed;    //  edge: the embeddings model the provider asks for the cache's
                          //  vector (cache.semantic.model) before the cache; the provider
                          //  clears it once it tried
    float *cache_vector;  //  provider: the last user message's vector from that model
    uint32_t cache_dim;   //  floats in cache_vector, 0 = none

    //  Provider, written by provider
    char *provider;     //  deployment that answered (X-AIGW-Provider)
    char *token_count;  //  count_tokens: "upstream" or "estimated" (X-AIGW-Token-Count)

    //  Usage, written by provider (tokens, cost, attempts) and the edge
    //  (record id, times): what the usage record of the request says
    char *provider_kind;    //  provider of that deployment: openai, anthropic, ...
    int64_t tokens_in;      //  prompt tokens
    int64_t tokens_out;     //  completion tokens
    int64_t tokens_cached;  //  prompt tokens the upstream served from its cache
    int64_t cost_nusd;      //  cost in nano-USD (1e-9 USD)
    uint32_t attempts;      //  upstream attempts made
    char *record_id;        //  usage record id (uuid), for idempotency
    int64_t started_ms;     //  when the edge took the request, Unix ms
    int64_t latency_ms;     //  edge: taken to answered in full
    int64_t first_ms;       //  edge: taken to the answer's first byte, -1 = none

    //  Trace, written by the runtime (stage times), guardrail (verdict),
    //  provider (attempts) and the edge (trace context); read by the edge
    //  for spans and by usage
    char *traceparent;                     //  W3C traceparent of the request's span (edge)
    int64_t stage_us[2 * AIGW_ROUTE_MAX];  //  per hop: start (Unix us), time spent (us)
    char *upstream;      //  upstream attempts, one line each (schemas/envelope.md 2b)
    char *verdict;       //  guardrail verdict: "pass", or ACTION:GUARDRAIL:RULE entries
    char *guard_policy;  //  guardrail: the policy the edge checks the answer under

    //  Stored responses, written by the responses stage on a follow-up
    //  turn whose previous_response_id it resolved; read by the provider
    char *previous;  //  "ID\tHISTORY\tDEPLOYMENT" (schemas/envelope.md 2c)

    //  Content, written by auth for a tenant that stores prompts and
    //  answers (tenants.store_content, usage.store_content_tenants); read
    //  by the edge, which builds the usage record's content
    bool store_content;     //  the caller's tenant keeps content
    char *content_request;  //  the request body, at most AIGW_CONTENT_MAX bytes

    //  Payload: the request JSON going in, the response bytes coming out
    char *body;       //  bytes, not necessarily NUL-terminated
    size_t body_len;  //  bytes used in body

    //  Response, written by whichever stage answers
    int status;          //  HTTP status, 0 while unanswered
    char *content_type;  //  response Content-Type
    uint32_t seq;        //  chunk number within a streamed reply
    bool last;           //  last message of this reply
    int retry_after;     //  Retry-After seconds, 0 = none

    //  Error, when status >= 400 (SPEC error shape)
    char *err_type;     //  e.g. invalid_request_error
    char *err_code;     //  e.g. model_not_found
    char *err_message;  //  human text, never a secret
    char *err_param;    //  offending field, or NULL
    char *allow;        //  a 405's Allow header ("GET, HEAD"), or NULL

    //  Process-local, never encoded nor copied: what a stage read of the
    //  body, kept for a later step in this process (the cache reads the
    //  body for its shard key and again for its lookup). A new body drops
    //  it; destroy calls memo_free.
    void *memo;
    void (*memo_free) (void *memo);
} aigw_envelope_t;

//  Create an empty envelope (rl_limit = -1). Caller owns it.
aigw_envelope_t *aigw_envelope_new (void);

//  Destroy; safe on NULL and twice. Wipes credential before freeing.
void aigw_envelope_destroy (aigw_envelope_t **self_p);

//  A deep copy of SELF that the caller owns, or NULL on allocation failure.
//  How a stage hands a streamed chunk to an edge in the same process, with
//  no encoding.
aigw_envelope_t *aigw_envelope_dup (const aigw_envelope_t *self);

//  Replace a string field with a copy of VALUE (NULL clears it).
//  Returns 0, or -1 on allocation failure.
int aigw_envelope_set (char **field, const char *value);

//  Replace body with a copy of LEN bytes at DATA. Returns 0 or -1.
int aigw_envelope_set_body (aigw_envelope_t *self, const void *data, size_t len);

//  Replace the envelope's memo with MEMO, freed by MEMO_FREE at the next
//  replacement, a new body or destroy (the old one is freed now).
void aigw_envelope_set_memo (aigw_envelope_t *self, void *memo, void (*memo_free) (void *memo));

//  Replace cache_vector with a copy of DIM floats at VECTOR (DIM 0 or a
//  NULL VECTOR clears it). 0, or -1 when out of memory or DIM is over
//  AIGW_ENVELOPE_VECTOR_MAX (the vector is then cleared).
int aigw_envelope_set_vector (aigw_envelope_t *self, const float *vector, size_t dim);

//  Take ownership of a malloc'd buffer as body (no copy).
void aigw_envelope_take_body (aigw_envelope_t *self, char *data, size_t len);

//  Answer the request with an error in the SPEC's shape: sets status, the
//  err_* fields, content_type and last. MESSAGE must not hold a secret.
void aigw_envelope_set_error (aigw_envelope_t *self, int status, const char *type, const char *code,
                              const char *param, const char *message);

//  Name of the stage now handling it (route[hop]), or NULL past the end.
const char *aigw_envelope_stage (const aigw_envelope_t *self);

//  Encode to msgpack. Returns a malloc'd buffer the caller owns and sets
//  *SIZE, or NULL on allocation failure.
char *aigw_envelope_encode (const aigw_envelope_t *self, size_t *size);

//  Decode SIZE bytes. Returns a new envelope the caller owns, or NULL on
//  malformed, truncated, oversized or wrong-version input, with the reason
//  in ERR. Never crashes on any input.
aigw_envelope_t *aigw_envelope_decode (const void *data, size_t size, char *err, size_t err_size);

//  Batches (a usage batch's body, envelope.md 2a): RECORD encoded and
//  appended to BATCH's body as one frame (a 4-byte big-endian length, then
//  the encoding). 0, or -1 when RECORD cannot be encoded or the body would
//  pass AIGW_ENVELOPE_MAX_BYTES.
int aigw_envelope_batch_add (aigw_envelope_t *batch, const aigw_envelope_t *record);

//  The frames of BATCH's body, one by one: *POS starts at 0; each call
//  decodes the next into a new envelope (caller destroys it) and advances
//  *POS. NULL at the end, or with the reason in ERR at a malformed frame
//  (*POS then points past the body: stop).
aigw_envelope_t *aigw_envelope_batch_next (const aigw_envelope_t *batch, size_t *pos, char *err,
                                           size_t err_size);

//  How many frames BATCH's body holds (whole ones).
size_t aigw_envelope_batch_count (const aigw_envelope_t *batch);

void aigw_envelope_test (bool verbose);

#endif
