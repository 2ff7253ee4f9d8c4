/*  aigw_cache: exact and semantic response cache with TTL and a memory
    cap (LRU), one owner per partition. */
#include "aigw_cache.h"
#include "aigw_embed.h"
#include "aigw_log.h"
#include "aigw_semindex.h"
#include "aigw_vectors.h"
#include "aigw_verify.h"

#include <jansson.h>
#include <unistd.h>

//  Bookkeeping bytes counted per entry besides its body, text and vector.
#define AIGW_CACHE_ENTRY_OVERHEAD 256
//  Most entries one housekeeping tick looks at.
#define AIGW_CACHE_TICK_SCAN 1024
//  How long past its deadline a request's answer may still be stored.
#define AIGW_CACHE_PENDING_GRACE_MS 5000
//  A request with no deadline waits this long for its answer.
#define AIGW_CACHE_PENDING_DEFAULT_MS 600000

//  One cached answer; entries form a list, most recently used first.
typedef struct _s_entry_t {
    char key[AIGW_CACHE_KEY_LEN + 1];        //  exact key
    char partition[AIGW_CACHE_KEY_LEN + 1];  //  partition key
    char id[24];                             //  semantic index id (decimal), "" when none
    uint64_t sid;                            //  the same as a number, 0 when none
    char *text;                              //  the prompt's last user text (semantic only)
    size_t text_len;                         //  bytes in text
    char *stat;                              //  its (tenant, model) row's key
    bool chat;                               //  body is an OpenAI chat.completion
    char *body;                              //  the answer kept
    size_t body_len;                         //  bytes in body
    char *provider;                          //  deployment that answered
    char *provider_kind;                     //  its provider (openai, anthropic, ...)
    size_t cost;                             //  bytes counted against the cap
    int64_t expires;                         //  Unix ms
    struct _s_entry_t *prev;                 //  more recently used
    struct _s_entry_t *next;                 //  less recently used
} s_entry_t;

//  A request that missed, waiting for its answer.
typedef struct {
    char key[AIGW_CACHE_KEY_LEN + 1];        //  exact key
    char partition[AIGW_CACHE_KEY_LEN + 1];  //  partition key
    char *text;                              //  last user text
    size_t text_len;                         //  bytes in text
    float *vector;                           //  its sentence vector, NULL without semantic
    bool chat;                               //  answered in the chat form
    char *stat;                              //  its (tenant, model) row's key
    int64_t ttl_ms;                          //  the entry's lifetime
    int64_t until;                           //  dropped after this, Unix ms
} s_pending_t;

//  Figures of one (tenant, model).
typedef struct {
    char *tenant;           //  tenant id (or name) as auth gave it
    char *model;            //  model asked for
    int64_t hits;           //  exact hits
    int64_t semantic_hits;  //  semantic hits
    int64_t misses;         //  lookups that found nothing
    int64_t bypasses;       //  requests that skipped the cache
    int64_t entries;        //  entries held now
    int64_t bytes;          //  bytes they count
} s_stat_t;

//  Private state.
typedef struct {
    const aigw_config_t *config;  //  settings (shared, read-only)
    zhashx_t *entries;            //  exact key -> s_entry_t
    zhashx_t *by_id;              //  semantic id -> s_entry_t (not owned)
    zhashx_t *pending;            //  request id -> s_pending_t
    zhashx_t *stats;              //  "tenant\x1fmodel" -> s_stat_t
    s_entry_t *head;              //  most recently used
    s_entry_t *tail;              //  least recently used
    size_t bytes;                 //  memory held, counted
    aigw_vectors_t *vectors;      //  word vectors, mapped once (semantic only)
    aigw_embedder_t *embedder;    //  sentence vectors (semantic only)
    aigw_verify_t *verify;        //  meaning checks before a semantic hit
    aigw_semindex_t *index;       //  vectors per partition
    uint64_t next_id;             //  last semantic id given
    char instance[96];            //  this stage, for the admin's figures
    int64_t (*clock) (void);      //  time source, replaceable in the selftest
} s_cache_t;

//  ---------------------------------------------------------------------
//  Figures

static void
s_stat_destroy (void **item)
{
    s_stat_t *stat = (s_stat_t *) *item;
    if (stat) {
        free (stat->tenant);
        free (stat->model);
        free (stat);
        *item = NULL;
    }
}

//  The row of TENANT and MODEL, made when new ("other" past the cap).
static s_stat_t *
s_stat (s_cache_t *self, const char *tenant, const char *model)
{
    char key[512];
    snprintf (key, sizeof key, "%.250s\x1f%.250s", tenant ? tenant : "", model ? model : "");
    s_stat_t *stat = (s_stat_t *) zhashx_lookup (self->stats, key);
    if (!stat && zhashx_size (self->stats) >= AIGW_CACHE_STATS_ROWS_MAX) {
        tenant = model = "other";
        snprintf (key, sizeof key, "other\x1fother");
        stat = (s_stat_t *) zhashx_lookup (self->stats, key);
    }
    if (!stat) {
        stat = (s_stat_t *) calloc (1, sizeof *stat);
        assert (stat);
        stat->tenant = strdup (tenant ? tenant : "");
        stat->model = strdup (model ? model : "");
        zhashx_insert (self->stats, key, stat);
    }
    return stat;
}

//  The table's own copy of the row key of ENV's tenant and model (a
//  string that lives while the row does; rows are never removed).
static char *
s_stat_key (s_cache_t *self, const char *tenant, const char *model)
{
    s_stat (self, tenant, model);
    char key[512];
    snprintf (key, sizeof key, "%.250s\x1f%.250s", tenant ? tenant : "", model ? model : "");
    if (!zhashx_lookup (self->stats, key))
        snprintf (key, sizeof key, "other\x1fother");
    return strdup (key);
}

static s_stat_t *
s_stat_of (s_cache_t *self, const char *key)
{
    return (s_stat_t *) zhashx_lookup (self->stats, key);
}

//  ---------------------------------------------------------------------
//  Entries

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

static void
s_entry_free (s_entry_t *entry)
{
    free (entry->text);
    free (entry->stat);
    free (entry->body);
    free (entry->provider);
    free (entry->provider_kind);
    free (entry);
}

//  Remove and free ENTRY.
static void
s_evict (s_cache_t *self, s_entry_t *entry)
{
    s_unlink (self, entry);
    self->bytes -= entry->cost;
    s_stat_t *stat = s_stat_of (self, entry->stat);
    if (stat) {
        stat->entries--;
        stat->bytes -= (int64_t) entry->cost;
    }
    if (entry->sid) {
        aigw_semindex_remove (self->index, entry->partition, entry->sid);
        zhashx_delete (self->by_id, entry->id);
    }
    zhashx_delete (self->entries, entry->key);
    s_entry_free (entry);
}

static void
s_pending_destroy (void **item)
{
    s_pending_t *p = (s_pending_t *) *item;
    if (p) {
        free (p->text);
        free (p->vector);
        free (p->stat);
        free (p);
        *item = NULL;
    }
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
    zhashx_destroy (&self->by_id);
    zhashx_destroy (&self->pending);
    zhashx_destroy (&self->stats);
    aigw_semindex_destroy (&self->index);
    aigw_verify_destroy (&self->verify);
    aigw_embedder_destroy (&self->embedder);
    aigw_vectors_destroy (&self->vectors);
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
    self->by_id = zhashx_new ();
    self->pending = zhashx_new ();
    zhashx_set_destructor (self->pending, s_pending_destroy);
    self->stats = zhashx_new ();
    zhashx_set_destructor (self->stats, s_stat_destroy);
    self->clock = aigw_now_ms;
    char hostname[48] = "";
    gethostname (hostname, sizeof hostname - 1);
    snprintf (self->instance, sizeof self->instance, "%s:%d:%llx", hostname, (int) getpid (),
              (unsigned long long) (uintptr_t) self);
    if (config->cache_enabled && config->cache_semantic_enabled) {
        //  The vectors are mapped once per cache stage, read-only, and
        //  checked whole: a bad file stops the stage from starting.
        char err[256] = "";
        const char *path = config->cache_semantic_vectors;
        self->vectors = path && *path ? aigw_vectors_open (path, err, sizeof err) : NULL;
        if (!self->vectors) {
            aigw_error ("cache.semantic.vectors: %s",
                        path && *path ? err : "no file named (aigw embeddings import)");
            void *state = self;
            s_cache_destroy (&state);
            return NULL;
        }
        self->embedder = aigw_embedder_sif_new (self->vectors, true);
        self->verify = aigw_verify_new (self->vectors, AIGW_VERIFY_SYNONYM_MIN);
        self->index = aigw_semindex_new (aigw_embedder_dim (self->embedder));
        if (!self->embedder || !self->verify || !self->index) {
            void *state = self;
            s_cache_destroy (&state);
            return NULL;
        }
    }
    return self;
}

//  ---------------------------------------------------------------------
//  Requests

//  The request's directives (env->cache_control).
typedef struct {
    bool no_cache;  //  skip the lookup, still store
    bool no_store;  //  neither
    int64_t ttl_s;  //  the entry's lifetime, 0 = the configured one
} s_directives_t;

static void
s_directives (const char *text, s_directives_t *out)
{
    memset (out, 0, sizeof *out);
    while (text && *text) {
        size_t len = strcspn (text, ",");
        if (len == 8 && memcmp (text, "no-cache", 8) == 0)
            out->no_cache = true;
        else if ((len == 8 && memcmp (text, "no-store", 8) == 0)
                 || (len == 3 && memcmp (text, "off", 3) == 0))
            out->no_store = true;
        else if (len > 4 && memcmp (text, "ttl=", 4) == 0)
            out->ttl_s = strtoll (text + 4, NULL, 10);
        text += len;
        if (*text == ',')
            text++;
    }
}

//  Answer ENV from ENTRY; SIMILARITY > 0 for a semantic hit. False when the
//  entry cannot answer this client (it is then left alone).
static bool
s_answer (s_cache_t *self, aigw_envelope_t *env, s_entry_t *entry, double similarity)
{
    char *body = NULL;
    size_t len = 0;
    const char *type = "application/json";
    if (entry->chat)
        body
            = aigw_cacheform_render ((aigw_kind_t) env->kind, env->stream, env->body, env->body_len,
                                     env->model, entry->body, entry->body_len, &len, &type);
    else if (!env->stream && (body = malloc (entry->body_len + 1))) {
        memcpy (body, entry->body, entry->body_len);
        body[entry->body_len] = 0;
        len = entry->body_len;
    }
    if (!body)
        return false;
    s_unlink (self, entry);
    s_push_front (self, entry);
    aigw_envelope_take_body (env, body, len);
    aigw_envelope_set (&env->provider, entry->provider);
    aigw_envelope_set (&env->provider_kind, entry->provider_kind);
    aigw_envelope_set (&env->content_type, type);
    aigw_envelope_set (&env->cache_status, similarity > 0 ? "SEMANTIC-HIT" : "HIT");
    char note[32] = "";
    if (similarity > 0)
        snprintf (note, sizeof note, "similarity=%.4f", similarity);
    aigw_envelope_set (&env->cache_control, similarity > 0 ? note : NULL);
    env->status = 200;
    env->last = true;
    return true;
}

//  The live entry under KEY, or NULL (an expired one is dropped).
static s_entry_t *
s_find (s_cache_t *self, zhashx_t *table, const char *key)
{
    s_entry_t *entry = (s_entry_t *) zhashx_lookup (table, key);
    if (entry && entry->expires <= self->clock ()) {
        s_evict (self, entry);
        entry = NULL;
    }
    return entry;
}

//  Look for a neighbour of REQ's text in its partition that means the
//  same, and answer ENV from it. VECTOR is REQ's. True when answered.
static bool
s_semantic (s_cache_t *self, aigw_envelope_t *env, const aigw_cacheform_request_t *req,
            const float *vector)
{
    aigw_semindex_hit_t hits[AIGW_CACHE_SEMANTIC_K];
    size_t found = aigw_semindex_search (self->index, req->partition, vector, AIGW_CACHE_SEMANTIC_K,
                                         (float) self->config->cache_semantic_threshold, hits);
    for (size_t i = 0; i < found; i++) {
        char id[24];
        snprintf (id, sizeof id, "%llu", (unsigned long long) hits[i].id);
        s_entry_t *entry = s_find (self, self->by_id, id);
        if (!entry || !entry->text || strcmp (entry->partition, req->partition))
            continue;
        aigw_verify_result_t why;
        if (!aigw_verify_same (self->verify, req->text, req->text_len, entry->text, entry->text_len,
                               &why)) {
            aigw_debug ("cache: neighbour %.3f refused: %s %s", hits[i].score,
                        aigw_verify_verdict_name (why.verdict), why.detail);
            continue;
        }
        if (s_answer (self, env, entry, hits[i].score < 1e-4 ? 1e-4 : hits[i].score))
            return true;
    }
    return false;
}

//  Remember REQ under ENV's id until its answer comes. A second request
//  with the same id (a client's own X-Request-ID used twice) makes both
//  unstorable: an answer must never land under another prompt.
static void
s_remember (s_cache_t *self, aigw_envelope_t *env, aigw_cacheform_request_t *req, float *vector,
            const s_directives_t *d)
{
    if (!env->id || zhashx_size (self->pending) >= AIGW_CACHE_PENDING_MAX) {
        free (vector);
        aigw_envelope_set (&env->cache_key, NULL);
        return;
    }
    if (zhashx_lookup (self->pending, env->id)) {
        zhashx_delete (self->pending, env->id);
        free (vector);
        aigw_envelope_set (&env->cache_key, NULL);
        return;
    }
    s_pending_t *p = (s_pending_t *) calloc (1, sizeof *p);
    assert (p);
    memcpy (p->key, req->exact, sizeof p->key);
    memcpy (p->partition, req->partition, sizeof p->partition);
    p->text = req->text;
    p->text_len = req->text_len;
    req->text = NULL;
    p->vector = vector;
    p->chat = req->chat;
    p->stat = s_stat_key (self, env->tenant_id ? env->tenant_id : env->tenant, env->model);
    int64_t ttl_s = self->config->cache_ttl_s;
    if (d->ttl_s > 0)
        ttl_s = d->ttl_s < self->config->cache_max_ttl_s ? d->ttl_s : self->config->cache_max_ttl_s;
    p->ttl_ms = ttl_s * 1000;
    int64_t now = self->clock ();
    p->until = env->deadline_ms > now ? env->deadline_ms + AIGW_CACHE_PENDING_GRACE_MS
                                      : now + AIGW_CACHE_PENDING_DEFAULT_MS;
    zhashx_insert (self->pending, env->id, p);
    //  The envelope's cache key is its partition: the provider sends the
    //  answer there, to this owner.
    aigw_envelope_set (&env->cache_key, req->partition);
}

static void
s_bypass (s_cache_t *self, aigw_envelope_t *env)
{
    aigw_envelope_set (&env->cache_status, "BYPASS");
    aigw_envelope_set (&env->cache_key, NULL);
    if (self->config->cache_enabled)
        s_stat (self, env->tenant_id ? env->tenant_id : env->tenant, env->model)->bypasses++;
}

static void
s_lookup (s_cache_t *self, aigw_envelope_t *env)
{
    s_directives_t d;
    s_directives (env->cache_control, &d);
    aigw_envelope_set (&env->cache_control, NULL);
    aigw_cacheform_request_t req;
    if (!self->config->cache_enabled || d.no_store || aigw_cacheform_request (env, &req)) {
        s_bypass (self, env);
        return;
    }
    if (!req.chat && env->stream) {
        //  Only chat answers are kept in a form a stream can be made from.
        aigw_cacheform_request_reset (&req);
        s_bypass (self, env);
        return;
    }
    s_stat_t *stat = s_stat (self, env->tenant_id ? env->tenant_id : env->tenant, env->model);
    if (!d.no_cache) {
        s_entry_t *entry = s_find (self, self->entries, req.exact);
        if (entry && s_answer (self, env, entry, 0)) {
            stat->hits++;
            aigw_cacheform_request_reset (&req);
            return;
        }
    }
    //  Past an exact hit: the vector serves the neighbours' search and the
    //  entry this request's answer becomes.
    float *vector = NULL;
    if (self->embedder && req.chat && req.text_len) {
        vector = (float *) malloc (aigw_embedder_dim (self->embedder) * sizeof (float));
        if (vector && aigw_embedder_embed (self->embedder, req.text, req.text_len, vector)) {
            free (vector);
            vector = NULL;
        }
    }
    if (!d.no_cache) {
        if (vector && s_semantic (self, env, &req, vector)) {
            stat->semantic_hits++;
            free (vector);
            aigw_cacheform_request_reset (&req);
            return;
        }
        stat->misses++;
    }
    else
        stat->bypasses++;
    aigw_envelope_set (&env->cache_status, d.no_cache ? "BYPASS" : "MISS");
    s_remember (self, env, &req, vector, &d);
    aigw_cacheform_request_reset (&req);
}

//  Keep the answer in ENV (a one-way message from the provider) under the
//  request it answers.
static void
s_store (s_cache_t *self, aigw_envelope_t *env)
{
    s_pending_t *p = env->id ? (s_pending_t *) zhashx_lookup (self->pending, env->id) : NULL;
    if (!p)
        return;
    if (env->status != 200 || !env->body || !env->cache_key
        || strcmp (env->cache_key, p->partition)) {
        zhashx_delete (self->pending, env->id);
        return;
    }
    char *body = NULL;
    size_t len = 0;
    bool stream = env->content_type && streq (env->content_type, "text/event-stream");
    if (stream && p->chat)
        body = aigw_cacheform_assemble (env->body, env->body_len, &len);
    else if (!stream && env->body_len <= AIGW_CACHEFORM_ANSWER_MAX
             && (body = malloc (env->body_len + 1))) {
        memcpy (body, env->body, env->body_len);
        body[env->body_len] = 0;
        len = env->body_len;
    }
    if (!body || len > AIGW_CACHEFORM_ANSWER_MAX) {
        free (body);
        zhashx_delete (self->pending, env->id);
        return;
    }
    s_entry_t *old = (s_entry_t *) zhashx_lookup (self->entries, p->key);
    if (old)
        s_evict (self, old);
    s_entry_t *entry = (s_entry_t *) calloc (1, sizeof *entry);
    assert (entry);
    memcpy (entry->key, p->key, sizeof entry->key);
    memcpy (entry->partition, p->partition, sizeof entry->partition);
    entry->chat = p->chat;
    entry->body = body;
    entry->body_len = len;
    entry->stat = p->stat;
    p->stat = NULL;
    entry->provider = env->provider ? strdup (env->provider) : NULL;
    entry->provider_kind = env->provider_kind ? strdup (env->provider_kind) : NULL;
    entry->expires = self->clock () + p->ttl_ms;
    entry->cost = len + AIGW_CACHE_ENTRY_OVERHEAD;
    if (p->vector && p->text) {
        entry->text = p->text;
        entry->text_len = p->text_len;
        p->text = NULL;
        entry->cost += entry->text_len + aigw_embedder_dim (self->embedder) * sizeof (float);
    }
    bool semantic = entry->text != NULL;
    float *vector = p->vector;
    p->vector = NULL;
    zhashx_delete (self->pending, env->id);
    if (entry->cost > self->config->cache_max_bytes) {
        free (vector);
        s_entry_free (entry);
        return;
    }
    while (self->tail && self->bytes + entry->cost > self->config->cache_max_bytes)
        s_evict (self, self->tail);
    if (semantic) {
        entry->sid = ++self->next_id;
        snprintf (entry->id, sizeof entry->id, "%llu", (unsigned long long) entry->sid);
        if (aigw_semindex_add (self->index, entry->partition, entry->sid, vector) == 0)
            zhashx_insert (self->by_id, entry->id, entry);
        else
            entry->sid = 0, entry->id[0] = 0;
    }
    free (vector);
    zhashx_insert (self->entries, entry->key, entry);
    s_push_front (self, entry);
    self->bytes += entry->cost;
    s_stat_t *stat = s_stat_of (self, entry->stat);
    if (stat) {
        stat->entries++;
        stat->bytes += (int64_t) entry->cost;
    }
}

//  ---------------------------------------------------------------------
//  Admin: cache/stats and DELETE cache visit every owner in turn. The
//  body carries {"op", "tenant", "model", "instances": {name: figures}};
//  env->cache_control the shards of the hops still to come.

//  True when ROW's tenant and model match the admin request's filters.
static bool
s_admin_match (const char *tenant, const char *model, const char *want_tenant,
               const char *want_model)
{
    return (!want_tenant || streq (tenant, want_tenant))
           && (!want_model || streq (model, want_model));
}

//  This stage's part of an admin request.
static json_t *
s_admin_part (s_cache_t *self, const char *op, const char *tenant, const char *model)
{
    json_t *part = json_object ();
    if (streq (op, "purge")) {
        json_int_t purged = 0;
        s_entry_t *entry = self->head;
        while (entry) {
            s_entry_t *next = entry->next;
            s_stat_t *stat = s_stat_of (self, entry->stat);
            if (stat && s_admin_match (stat->tenant, stat->model, tenant, model)) {
                s_evict (self, entry);
                purged++;
            }
            entry = next;
        }
        json_object_set_new (part, "purged", json_integer (purged));
        return part;
    }
    json_t *rows = json_array ();
    for (s_stat_t *stat = (s_stat_t *) zhashx_first (self->stats); stat;
         stat = (s_stat_t *) zhashx_next (self->stats))
        if (s_admin_match (stat->tenant, stat->model, tenant, model))
            json_array_append_new (
                rows,
                json_pack ("{s:s,s:s,s:I,s:I,s:I,s:I,s:I,s:I}", "tenant", stat->tenant, "model",
                           stat->model, "entries", (json_int_t) stat->entries, "bytes",
                           (json_int_t) stat->bytes, "hits", (json_int_t) stat->hits,
                           "semantic_hits", (json_int_t) stat->semantic_hits, "misses",
                           (json_int_t) stat->misses, "bypasses", (json_int_t) stat->bypasses));
    json_object_set_new (part, "rows", rows);
    json_object_set_new (part, "semantic", json_boolean (self->index != NULL));
    return part;
}

//  The answer of the last hop: every instance's part merged.
static json_t *
s_admin_merge (const char *op, json_t *instances)
{
    const char *name;
    json_t *part;
    if (streq (op, "purge")) {
        json_int_t purged = 0;
        json_object_foreach (instances, name, part)
            purged += json_integer_value (json_object_get (part, "purged"));
        return json_pack ("{s:I,s:I}", "purged", purged, "instances",
                          (json_int_t) json_object_size (instances));
    }
    static const char *const fields[]
        = {"entries", "bytes", "hits", "semantic_hits", "misses", "bypasses"};
    enum { S_FIELDS = 6 };
    json_int_t totals[S_FIELDS] = {0};
    json_t *merged = json_object ();  //  "tenant\x1fmodel" -> row
    bool semantic = false;
    json_object_foreach (instances, name, part) {
        semantic = semantic || json_is_true (json_object_get (part, "semantic"));
        size_t i;
        json_t *row;
        json_array_foreach (json_object_get (part, "rows"), i, row) {
            const char *tenant = json_string_value (json_object_get (row, "tenant"));
            const char *model = json_string_value (json_object_get (row, "model"));
            char *key = zsys_sprintf ("%s\x1f%s", tenant ? tenant : "", model ? model : "");
            json_t *into = json_object_get (merged, key);
            if (!into) {
                into = json_pack ("{s:s,s:s}", "tenant", tenant ? tenant : "", "model",
                                  model ? model : "");
                json_object_set_new (merged, key, into);
            }
            zstr_free (&key);
            for (int f = 0; f < S_FIELDS; f++) {
                json_int_t v = json_integer_value (json_object_get (row, fields[f]));
                totals[f] += v;
                json_object_set_new (
                    into, fields[f],
                    json_integer (json_integer_value (json_object_get (into, fields[f])) + v));
            }
        }
    }
    json_t *data = json_array ();
    const char *key;
    json_t *row;
    json_object_foreach (merged, key, row)
        json_array_append (data, row);
    json_decref (merged);
    json_t *doc = json_pack ("{s:b,s:I,s:o}", "semantic", semantic, "instances",
                             (json_int_t) json_object_size (instances), "data", data);
    for (int f = 0; f < S_FIELDS; f++)
        json_object_set_new (doc, fields[f], json_integer (totals[f]));
    return doc;
}

static void
s_admin (s_cache_t *self, aigw_envelope_t *env)
{
    json_t *root = json_loadb (env->body ? env->body : "", env->body_len, 0, NULL);
    const char *op = json_string_value (json_object_get (root, "op"));
    json_t *instances = json_object_get (root, "instances");
    if (!op || !json_is_object (instances)) {
        json_decref (root);
        aigw_envelope_set_error (env, 500, "server_error", "internal_error", NULL,
                                 "The cache could not read the admin request.");
        return;
    }
    const char *tenant = json_string_value (json_object_get (root, "tenant"));
    const char *model = json_string_value (json_object_get (root, "model"));
    json_object_set_new (instances, self->instance, s_admin_part (self, op, tenant, model));
    //  The next hop's shard, if any.
    const char *rest = env->cache_control;
    json_t *answer = NULL;
    if (rest && *rest && env->hop + 1 < env->route_len) {
        size_t len = strcspn (rest, ",");
        char shard[128];
        snprintf (shard, sizeof shard, "%.*s", (int) (len < 127 ? len : 127), rest);
        char *after = strdup (rest[len] ? rest + len + 1 : "");
        aigw_envelope_set (&env->cache_key, shard);
        aigw_envelope_set (&env->cache_control, after);
        free (after);
    }
    else
        answer = s_admin_merge (op, instances);
    char *text = json_dumps (answer ? answer : root, JSON_COMPACT);
    json_decref (answer);
    json_decref (root);
    if (!text) {
        aigw_envelope_set_error (env, 500, "server_error", "internal_error", NULL,
                                 "Out of memory.");
        return;
    }
    aigw_envelope_take_body (env, text, strlen (text));
    if (answer) {
        //  The last hop answers; the rest of the route (if any) is skipped.
        aigw_envelope_set (&env->cache_control, NULL);
        aigw_envelope_set (&env->content_type, "application/json");
        env->status = 200;
        env->last = true;
    }
}

static void
s_cache_handle (void *state, aigw_envelope_t *env)
{
    s_cache_t *self = (s_cache_t *) state;
    if (env->kind == AIGW_KIND_ADMIN && !env->status)
        s_admin (self, env);
    else if (env->status)
        s_store (self, env);
    else
        s_lookup (self, env);
}

//  Drop expired entries from the cold end, at most AIGW_CACHE_TICK_SCAN of
//  them: the tick runs in the pipeline's thread, and walking 100,000
//  entries stalls every request behind it. Entries past the scan are
//  evicted when a lookup finds them expired, or by the memory cap. Requests
//  whose answer never came are forgotten.
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
    zlist_t *stale = zlist_new ();
    zlist_autofree (stale);
    for (s_pending_t *p = (s_pending_t *) zhashx_first (self->pending); p;
         p = (s_pending_t *) zhashx_next (self->pending))
        if (p->until <= now)
            zlist_append (stale, (void *) zhashx_cursor (self->pending));
    for (char *id = (char *) zlist_first (stale); id; id = (char *) zlist_next (stale))
        zhashx_delete (self->pending, id);
    zlist_destroy (&stale);
}

//  Entries are owned by partition; computed once into ENV, by whoever
//  sends the request here. An admin request names its hop's shard itself.
static const char *
s_cache_shard_key (aigw_envelope_t *env, const aigw_config_t *config)
{
    if (env->kind != AIGW_KIND_ADMIN && !env->cache_key && config->cache_enabled) {
        aigw_cacheform_request_t req;
        if (aigw_cacheform_request (env, &req) == 0)
            aigw_envelope_set (&env->cache_key, req.partition);
        aigw_cacheform_request_reset (&req);
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

//  ---------------------------------------------------------------------
//  Selftest

static int64_t s_test_now;
static const aigw_config_t *s_test_config;
static int64_t
s_test_clock (void)
{
    return s_test_now;
}

//  A chat request envelope for the selftest.
static aigw_envelope_t *
s_test_request (const char *id, const char *tenant, const char *text, const char *control)
{
    aigw_envelope_t *env = aigw_envelope_new ();
    env->kind = AIGW_KIND_CHAT;
    aigw_envelope_set (&env->id, id);
    aigw_envelope_set (&env->tenant_id, tenant);
    aigw_envelope_set (&env->model, "m");
    aigw_envelope_set (&env->cache_control, control);
    char *body = zsys_sprintf ("{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":"
                               "\"%s\"}]}",
                               text);
    aigw_envelope_set_body (env, body, strlen (body));
    zstr_free (&body);
    s_cache_shard_key (env, s_test_config);
    return env;
}

//  The provider's answer ANSWER to ENV, as the one-way store.
static void
s_test_store (s_cache_t *self, aigw_envelope_t *env, const char *answer)
{
    if (!env->cache_key)
        return;
    aigw_envelope_t *store = aigw_envelope_dup (env);
    char *body = zsys_sprintf (
        "{\"id\":\"c1\",\"object\":\"chat.completion\",\"created\":1,\"model\":\"m\","
        "\"choices\":[{\"index\":0,\"message\":{\"role\":\"assistant\",\"content\":\"%s\"},"
        "\"finish_reason\":\"stop\"}]}",
        answer);
    aigw_envelope_set_body (store, body, strlen (body));
    zstr_free (&body);
    aigw_envelope_set (&store->provider, "openai");
    aigw_envelope_set (&store->provider_kind, "azure");
    aigw_envelope_set (&store->content_type, "application/json");
    store->status = 200;
    s_cache_handle (self, store);
    aigw_envelope_destroy (&store);
}

//  Look up TEXT for TENANT; returns the envelope (caller destroys).
static aigw_envelope_t *
s_test_lookup (s_cache_t *self, const char *id, const char *tenant, const char *text,
               const char *control)
{
    aigw_envelope_t *env = s_test_request (id, tenant, text, control);
    s_cache_handle (self, env);
    return env;
}

static bool
s_test_says (aigw_envelope_t *env, const char *answer)
{
    return env->body && memmem (env->body, env->body_len, answer, strlen (answer));
}

void
aigw_cache_test (bool verbose)
{
    char err[AIGW_CONFIG_ERR_MAX];
    aigw_config_t *config = aigw_config_new (NULL, err, sizeof err);
    assert (config);
    s_test_config = config;
    s_cache_t *self = (s_cache_t *) s_cache_new (NULL, config);
    self->clock = s_test_clock;
    s_test_now = 1000000;

    //  Miss, store, hit; another tenant misses.
    aigw_envelope_t *a = s_test_lookup (self, "r1", "t1", "what is two plus two", NULL);
    assert (streq (a->cache_status, "MISS") && a->status == 0 && a->cache_key);
    s_test_store (self, a, "four");
    aigw_envelope_t *b = s_test_lookup (self, "r2", "t1", "what is two plus two", NULL);
    assert (b->status == 200 && streq (b->cache_status, "HIT") && s_test_says (b, "four"));
    assert (streq (b->provider, "openai") && streq (b->provider_kind, "azure"));
    aigw_envelope_t *c = s_test_lookup (self, "r3", "t2", "what is two plus two", NULL);
    assert (streq (c->cache_status, "MISS") && c->status == 0);

    //  A stream is answered from the same entry, as chunks.
    aigw_envelope_t *s = s_test_request ("r4", "t1", "what is two plus two", NULL);
    s->stream = true;
    s_cache_handle (self, s);
    assert (s->status == 200 && streq (s->cache_status, "HIT"));
    assert (streq (s->content_type, "text/event-stream") && s_test_says (s, "data: [DONE]"));

    //  no-cache skips the lookup and stores; no-store does neither.
    aigw_envelope_t *nc = s_test_lookup (self, "r5", "t1", "what is two plus two", "no-cache");
    assert (nc->status == 0 && streq (nc->cache_status, "BYPASS") && nc->cache_key);
    s_test_store (self, nc, "FOUR");
    aigw_envelope_t *d = s_test_lookup (self, "r6", "t1", "what is two plus two", NULL);
    assert (d->status == 200 && s_test_says (d, "FOUR"));
    aigw_envelope_t *ns = s_test_lookup (self, "r7", "t1", "what is two plus two", "no-store");
    assert (ns->status == 0 && streq (ns->cache_status, "BYPASS") && !ns->cache_key);
    aigw_envelope_t *off = s_test_lookup (self, "r8", "t1", "what is two plus two", "off");
    assert (off->status == 0 && !off->cache_key);

    //  A request id seen twice stores neither answer.
    aigw_envelope_t *x1 = s_test_lookup (self, "dup", "t1", "first question", NULL);
    aigw_envelope_t *x2 = s_test_lookup (self, "dup", "t1", "second question", NULL);
    assert (x1->cache_key && !x2->cache_key);
    s_test_store (self, x1, "one");
    aigw_envelope_t *x3 = s_test_lookup (self, "r9", "t1", "first question", NULL);
    assert (streq (x3->cache_status, "MISS"));

    //  A per-request TTL, bounded by max_ttl_s.
    aigw_envelope_t *t = s_test_lookup (self, "r10", "t1", "short lived", "ttl=2");
    s_test_store (self, t, "brief");
    s_test_now += 1000;
    aigw_envelope_t *t1 = s_test_lookup (self, "r11", "t1", "short lived", NULL);
    assert (streq (t1->cache_status, "HIT"));
    s_test_now += 1500;
    aigw_envelope_t *t2 = s_test_lookup (self, "r12", "t1", "short lived", NULL);
    assert (streq (t2->cache_status, "MISS"));

    //  Figures and purge by tenant, through the admin hop.
    aigw_envelope_t *adm = aigw_envelope_new ();
    adm->kind = AIGW_KIND_ADMIN;
    const char *q = "{\"op\":\"stats\",\"tenant\":\"t1\",\"instances\":{}}";
    aigw_envelope_set_body (adm, q, strlen (q));
    s_cache_handle (self, adm);
    assert (adm->status == 200);
    json_t *doc = json_loadb (adm->body, adm->body_len, 0, NULL);
    if (verbose)
        printf ("cache: stats %.*s\n", (int) adm->body_len, adm->body);
    assert (json_integer_value (json_object_get (doc, "hits")) == 4);
    assert (json_integer_value (json_object_get (doc, "entries")) == 1);
    assert (json_array_size (json_object_get (doc, "data")) == 1);
    json_decref (doc);
    aigw_envelope_destroy (&adm);
    adm = aigw_envelope_new ();
    adm->kind = AIGW_KIND_ADMIN;
    q = "{\"op\":\"purge\",\"tenant\":\"t1\",\"instances\":{}}";
    aigw_envelope_set_body (adm, q, strlen (q));
    s_cache_handle (self, adm);
    assert (adm->status == 200 && s_test_says (adm, "\"purged\":1"));
    aigw_envelope_destroy (&adm);
    aigw_envelope_t *p = s_test_lookup (self, "r13", "t1", "what is two plus two", NULL);
    assert (streq (p->cache_status, "MISS"));

    //  Memory cap: the least recently used goes first.
    config->cache_max_bytes = 3 * (AIGW_CACHE_ENTRY_OVERHEAD + 200);
    s_cache_t *small = (s_cache_t *) s_cache_new (NULL, config);
    small->clock = s_test_clock;
    for (int i = 0; i < 4; i++) {
        char id[16], text[32];
        snprintf (id, sizeof id, "m%d", i);
        snprintf (text, sizeof text, "question %d", i);
        aigw_envelope_t *m = s_test_lookup (small, id, "t1", text, NULL);
        s_test_store (small, m, "x");
        aigw_envelope_destroy (&m);
    }
    assert (zhashx_size (small->entries) == 3 && small->bytes <= config->cache_max_bytes);
    aigw_envelope_t *first = s_test_lookup (small, "m9", "t1", "question 0", NULL);
    assert (streq (first->cache_status, "MISS"));
    aigw_envelope_destroy (&first);
    s_test_now += config->cache_ttl_s * 1000;
    s_cache_tick (small);
    assert (zhashx_size (small->entries) == 0 && small->bytes == 0);
    //  A request whose answer never came is forgotten.
    assert (zhashx_size (small->pending) == 1);
    s_test_now += AIGW_CACHE_PENDING_DEFAULT_MS;
    s_cache_tick (small);
    assert (zhashx_size (small->pending) == 0);
    void *state = small;
    s_cache_destroy (&state);

    //  Bodies that are not JSON are not cached.
    aigw_envelope_t *bad = aigw_envelope_new ();
    bad->kind = AIGW_KIND_CHAT;
    aigw_envelope_set_body (bad, "nope", 4);
    s_cache_handle (self, bad);
    assert (streq (bad->cache_status, "BYPASS") && !bad->cache_key);

    aigw_envelope_t *all[] = {a, b, c, s, nc, d, ns, off, x1, x2, x3, t, t1, t2, p, bad};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
        aigw_envelope_destroy (&all[i]);
    state = self;
    s_cache_destroy (&state);
    s_cache_destroy (&state);
    aigw_config_destroy (&config);
    if (verbose)
        printf ("cache: ok\n");
}
