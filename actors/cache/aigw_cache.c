/*  aigw_cache: exact-match cache with TTL and a memory cap (LRU). */
#include "aigw_cache.h"
#include "aigw_hex.h"
#include "aigw_log.h"

#include <jansson.h>
#include <openssl/evp.h>

//  Bookkeeping bytes counted per entry besides its body.
#define AIGW_CACHE_ENTRY_OVERHEAD 160
//  Most entries one housekeeping tick looks at.
#define AIGW_CACHE_TICK_SCAN 1024

//  One cached answer; entries form a list, most recently used first.
typedef struct _s_entry_t {
    char key[AIGW_CACHE_KEY_LEN + 1];  //  cache key
    char *body;                        //  response body
    size_t body_len;                   //  bytes in body
    char *provider;                    //  deployment that answered
    char *provider_kind;               //  its provider (openai, anthropic, ...)
    int64_t expires;                   //  Unix ms
    struct _s_entry_t *prev;           //  more recently used
    struct _s_entry_t *next;           //  less recently used
} s_entry_t;

//  Private state.
typedef struct {
    const aigw_config_t *config;  //  settings (shared, read-only)
    zhashx_t *entries;            //  key -> s_entry_t
    s_entry_t *head;              //  most recently used
    s_entry_t *tail;              //  least recently used
    size_t bytes;                 //  memory held, counted
    int64_t (*clock) (void);      //  time source, replaceable in the selftest
} s_cache_t;

static size_t
s_entry_cost (const s_entry_t *entry)
{
    return entry->body_len + AIGW_CACHE_ENTRY_OVERHEAD;
}

static void
s_unlink (s_cache_t *self, s_entry_t *entry)
{
    if (entry->prev)
        entry->prev->next = entry->next;
    else
        self->head = entry->next;
    if (entry->next)
        entry->next->prev = entry->prev;
    else
        self->tail = entry->prev;
    entry->prev = entry->next = NULL;
}

static void
s_push_front (s_cache_t *self, s_entry_t *entry)
{
    entry->next = self->head;
    entry->prev = NULL;
    if (self->head)
        self->head->prev = entry;
    self->head = entry;
    if (!self->tail)
        self->tail = entry;
}

//  Remove and free ENTRY.
static void
s_evict (s_cache_t *self, s_entry_t *entry)
{
    s_unlink (self, entry);
    self->bytes -= s_entry_cost (entry);
    zhashx_delete (self->entries, entry->key);
    free (entry->body);
    free (entry->provider);
    free (entry->provider_kind);
    free (entry);
}

static void
s_cache_destroy (void **state_p)
{
    s_cache_t *self = (s_cache_t *) *state_p;
    if (!self)
        return;
    while (self->head)
        s_evict (self, self->head);
    zhashx_destroy (&self->entries);
    free (self);
    *state_p = NULL;
}

static void *
s_cache_new (aigw_host_t *host, const aigw_config_t *config)
{
    s_cache_t *self = calloc (1, sizeof *self);
    if (!self)
        return NULL;
    self->config = config;
    self->entries = zhashx_new ();
    self->clock = aigw_now_ms;
    return self;
}

int
aigw_cache_key (const aigw_envelope_t *env, char out[AIGW_CACHE_KEY_LEN + 1])
{
    json_t *root = json_loadb (env->body ? env->body : "", env->body_len, 0, NULL);
    if (!json_is_object (root)) {
        json_decref (root);
        return -1;
    }
    json_object_del (root, "stream");
    json_object_del (root, "stream_options");
    char *canonical = json_dumps (root, JSON_SORT_KEYS | JSON_COMPACT);
    json_decref (root);
    if (!canonical)
        return -1;
    EVP_MD_CTX *ctx = EVP_MD_CTX_new ();
    unsigned char digest[32];
    unsigned int len = 0;
    const char *tenant = env->tenant ? env->tenant : "";
    const char *model = env->model ? env->model : "";
    EVP_DigestInit_ex (ctx, EVP_sha256 (), NULL);
    EVP_DigestUpdate (ctx, tenant, strlen (tenant) + 1);
    EVP_DigestUpdate (ctx, model, strlen (model) + 1);
    EVP_DigestUpdate (ctx, &env->kind, 1);
    EVP_DigestUpdate (ctx, canonical, strlen (canonical));
    EVP_DigestFinal_ex (ctx, digest, &len);
    EVP_MD_CTX_free (ctx);
    free (canonical);
    aigw_hex_encode (digest, sizeof digest, out);
    return 0;
}

//  Keep the answer in ENV under its cache key.
static void
s_cache_store (s_cache_t *self, aigw_envelope_t *env)
{
    if (env->status != 200 || !env->cache_key || !env->body
        || strlen (env->cache_key) != AIGW_CACHE_KEY_LEN)
        return;
    s_entry_t *entry = (s_entry_t *) zhashx_lookup (self->entries, env->cache_key);
    if (entry)
        s_evict (self, entry);
    entry = calloc (1, sizeof *entry);
    memcpy (entry->key, env->cache_key, AIGW_CACHE_KEY_LEN + 1);
    entry->body = malloc (env->body_len);
    memcpy (entry->body, env->body, env->body_len);
    entry->body_len = env->body_len;
    entry->provider = env->provider ? strdup (env->provider) : NULL;
    entry->provider_kind = env->provider_kind ? strdup (env->provider_kind) : NULL;
    entry->expires = self->clock () + self->config->cache_ttl_s * 1000;
    if (s_entry_cost (entry) > self->config->cache_max_bytes) {
        free (entry->body);
        free (entry->provider);
        free (entry->provider_kind);
        free (entry);
        return;
    }
    while (self->tail && self->bytes + s_entry_cost (entry) > self->config->cache_max_bytes)
        s_evict (self, self->tail);
    zhashx_insert (self->entries, entry->key, entry);
    s_push_front (self, entry);
    self->bytes += s_entry_cost (entry);
}

static void
s_cache_handle (void *state, aigw_envelope_t *env)
{
    s_cache_t *self = (s_cache_t *) state;
    if (env->status) {
        s_cache_store (self, env);
        return;
    }
    if (!self->config->cache_enabled || env->stream || !env->cache_key) {
        aigw_envelope_set (&env->cache_status, "BYPASS");
        return;
    }
    s_entry_t *entry = (s_entry_t *) zhashx_lookup (self->entries, env->cache_key);
    if (entry && entry->expires <= self->clock ()) {
        s_evict (self, entry);
        entry = NULL;
    }
    if (!entry) {
        aigw_envelope_set (&env->cache_status, "MISS");
        return;
    }
    s_unlink (self, entry);
    s_push_front (self, entry);
    aigw_envelope_set_body (env, entry->body, entry->body_len);
    aigw_envelope_set (&env->provider, entry->provider);
    aigw_envelope_set (&env->provider_kind, entry->provider_kind);
    aigw_envelope_set (&env->content_type, "application/json");
    aigw_envelope_set (&env->cache_status, "HIT");
    env->status = 200;
}

//  Drop expired entries from the cold end, at most AIGW_CACHE_TICK_SCAN of
//  them: the tick runs in the pipeline's thread, and walking 100,000
//  entries stalls every request behind it. Entries past the scan are
//  evicted when a lookup finds them expired, or by the memory cap.
static void
s_cache_tick (void *state)
{
    s_cache_t *self = (s_cache_t *) state;
    int64_t now = self->clock ();
    s_entry_t *entry = self->tail;
    for (int scanned = 0; entry && scanned < AIGW_CACHE_TICK_SCAN; scanned++) {
        s_entry_t *prev = entry->prev;
        if (entry->expires <= now)
            s_evict (self, entry);
        entry = prev;
    }
}

//  Entries are owned by cache key; computed once into ENV, by whoever sends
//  the request here.
static const char *
s_cache_shard_key (aigw_envelope_t *env, const aigw_config_t *config)
{
    if (!env->cache_key && config->cache_enabled) {
        char key[AIGW_CACHE_KEY_LEN + 1];
        if (aigw_cache_key (env, key) == 0)
            aigw_envelope_set (&env->cache_key, key);
    }
    return env->cache_key ? env->cache_key : "";
}

const aigw_stage_def_t aigw_cache_stage = {
    .name = "cache",
    .replay_safe = true,
    .state_new = s_cache_new,
    .state_destroy = s_cache_destroy,
    .handle = s_cache_handle,
    .tick = s_cache_tick,
    .shard_key = s_cache_shard_key,
};

static int64_t s_test_now;
static int64_t
s_test_clock (void)
{
    return s_test_now;
}

//  A request envelope for the selftest.
static aigw_envelope_t *
s_test_request (const char *tenant, const char *body)
{
    aigw_envelope_t *env = aigw_envelope_new ();
    env->kind = AIGW_KIND_CHAT;
    aigw_envelope_set (&env->tenant, tenant);
    aigw_envelope_set (&env->model, "m");
    aigw_envelope_set_body (env, body, strlen (body));
    char key[AIGW_CACHE_KEY_LEN + 1];
    if (aigw_cache_key (env, key) == 0)
        aigw_envelope_set (&env->cache_key, key);
    return env;
}

//  Store ANSWER for a request like REQUEST.
static void
s_test_store (s_cache_t *self, aigw_envelope_t *request, const char *answer)
{
    aigw_envelope_set_body (request, answer, strlen (answer));
    aigw_envelope_set (&request->provider, "openai");
    aigw_envelope_set (&request->provider_kind, "azure");
    request->status = 200;
    s_cache_handle (self, request);
}

void
aigw_cache_test (bool verbose)
{
    char err[AIGW_CONFIG_ERR_MAX];
    aigw_config_t *config = aigw_config_new (NULL, err, sizeof err);
    assert (config);
    config->cache_max_bytes = 3 * (AIGW_CACHE_ENTRY_OVERHEAD + 10);
    s_cache_t *self = (s_cache_t *) s_cache_new (NULL, config);
    self->clock = s_test_clock;
    s_test_now = 1000000;

    //  Key order and stream flags do not change the key; tenant does.
    aigw_envelope_t *a = s_test_request ("t1", "{\"b\":1,\"a\":[1,2]}");
    aigw_envelope_t *b = s_test_request ("t1", "{\"a\":[1,2],\"stream\":false,\"b\":1}");
    aigw_envelope_t *c = s_test_request ("t2", "{\"b\":1,\"a\":[1,2]}");
    assert (streq (a->cache_key, b->cache_key));
    assert (!streq (a->cache_key, c->cache_key));

    s_cache_handle (self, a);
    assert (streq (a->cache_status, "MISS") && a->status == 0);
    s_test_store (self, a, "answer-001");
    s_cache_handle (self, b);
    assert (b->status == 200 && streq (b->cache_status, "HIT"));
    assert (b->body_len == 10 && memcmp (b->body, "answer-001", 10) == 0);
    assert (streq (b->provider, "openai"));
    assert (streq (b->provider_kind, "azure"));
    s_cache_handle (self, c);
    assert (streq (c->cache_status, "MISS"));

    //  Streams bypass.
    aigw_envelope_t *s = s_test_request ("t1", "{\"b\":1,\"a\":[1,2]}");
    s->stream = true;
    s_cache_handle (self, s);
    assert (streq (s->cache_status, "BYPASS") && s->status == 0);

    //  Memory cap: the least recently used goes first.
    aigw_envelope_t *d[4];
    for (int i = 0; i < 4; i++) {
        char body[32];
        snprintf (body, sizeof body, "{\"n\":%d}", i);
        d[i] = s_test_request ("t1", body);
        s_test_store (self, d[i], "answer-xyz");
    }
    assert (zhashx_size (self->entries) == 3);
    assert (self->bytes <= config->cache_max_bytes);
    aigw_envelope_t *first = s_test_request ("t1", "{\"n\":0}");
    s_cache_handle (self, first);
    assert (streq (first->cache_status, "MISS"));

    //  TTL.
    aigw_envelope_t *last = s_test_request ("t1", "{\"n\":3}");
    s_cache_handle (self, last);
    assert (streq (last->cache_status, "HIT"));
    s_test_now += config->cache_ttl_s * 1000;
    s_cache_tick (self);
    assert (zhashx_size (self->entries) == 0 && self->bytes == 0);

    //  Bodies that are not JSON have no key.
    aigw_envelope_t *bad = s_test_request ("t1", "nope");
    assert (bad->cache_key == NULL);

    aigw_envelope_destroy (&a);
    aigw_envelope_destroy (&b);
    aigw_envelope_destroy (&c);
    aigw_envelope_destroy (&s);
    for (int i = 0; i < 4; i++)
        aigw_envelope_destroy (&d[i]);
    aigw_envelope_destroy (&first);
    aigw_envelope_destroy (&last);
    aigw_envelope_destroy (&bad);
    void *state = self;
    s_cache_destroy (&state);
    s_cache_destroy (&state);
    aigw_config_destroy (&config);
    if (verbose)
        printf ("cache: ok\n");
}
