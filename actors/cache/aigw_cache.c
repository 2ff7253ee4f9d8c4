/*  aigw_cache: exact and semantic response cache with TTL and a memory
    cap (LRU), one owner per partition. */
#include "aigw_cache.h"
#include "aigw_embed.h"
#include "aigw_held.h"
#include "aigw_log.h"
#include "aigw_pgconn.h"
#include "aigw_semindex.h"
#include "aigw_vectors.h"
#include "aigw_verify.h"

#include <jansson.h>
#include <limits.h>
#include <math.h>
#include <unistd.h>

//  Bookkeeping bytes counted per entry besides its body, text and vector.
#define AIGW_CACHE_ENTRY_OVERHEAD 256
//  Most entries one housekeeping tick looks at.
#define AIGW_CACHE_TICK_SCAN 1024
//  How long past its deadline a request's answer may still be stored.
#define AIGW_CACHE_PENDING_GRACE_MS 5000
//  A request with no deadline waits this long for its answer.
#define AIGW_CACHE_PENDING_DEFAULT_MS 600000
//  Persistence (schemas/sql/015): new entries are written at most this
//  long after they are kept, or at once when this many wait.
#define AIGW_CACHE_FLUSH_MS   200
#define AIGW_CACHE_FLUSH_ROWS 256
//  Most entries waiting to be written; past it the oldest stay in memory
//  only (the database is behind).
#define AIGW_CACHE_WRITES_MAX 65536
//  Most rows one partition's load reads (newest first; the cap may stop
//  it sooner), and how long a request waits on it before it goes on as a
//  miss.
#define AIGW_CACHE_LOAD_ROWS 10000
#define AIGW_CACHE_LOAD_MS   2000
//  Most requests held while their partitions load; past it they go on.
#define AIGW_CACHE_HELD_MAX 4096
//  Most partitions remembered as read; past it the set starts over (a
//  partition read twice adds only what memory lacks).
#define AIGW_CACHE_KNOWN_MAX 262144
//  Expired rows are deleted this often, this many at a time.
#define AIGW_CACHE_PRUNE_MS   60000
#define AIGW_CACHE_PRUNE_ROWS 10000
//  Bound on a write, purge or prune statement.
#define AIGW_CACHE_STATEMENT_MS 10000

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
    int64_t created;                         //  Unix ms
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

//  An entry to write to the database.
typedef struct {
    char key[AIGW_CACHE_KEY_LEN + 1];  //  its exact key (written only if still held)
    float *vector;                     //  its sentence vector, NULL when none
} s_write_t;

//  A partition being read from the database.
typedef struct {
    char *partition;    //  its key
    aigw_held_t *held;  //  requests waiting for its rows
} s_load_t;

//  A purge to carry to the database.
typedef struct {
    char *tenant;  //  NULL = any
    char *model;   //  NULL = any
} s_purge_t;

//  Private state.
typedef struct {
    const aigw_config_t *config;  //  settings (shared, read-only)
    aigw_host_t *host;            //  our host (NULL in selftests): who owns what
    zhashx_t *entries;            //  exact key -> s_entry_t
    zhashx_t *by_id;              //  semantic id -> s_entry_t (not owned)
    zhashx_t *pending;            //  request id -> s_pending_t
    zhashx_t *stats;              //  "tenant\x1fmodel" -> s_stat_t
    s_entry_t *head;              //  most recently used
    s_entry_t *tail;              //  least recently used
    size_t bytes;                 //  memory held, counted
    aigw_vectors_t *vectors;      //  word vectors, mapped once (semantic only)
    aigw_embedder_t *embedder;    //  sentence vectors (semantic, built-in embedder only)
    const char *embedder_id;      //  who makes the vectors (aigw_cacheform_embedder)
    bool router;                  //  vectors come from the router (cache.semantic.model),
                                  //  in the envelope, from the provider's hop before ours
    size_t dim;                   //  floats per vector; 0 until the router's first one
    aigw_verify_t *verify;        //  meaning checks before a semantic hit (semantic only)
    aigw_semindex_t *index;       //  vectors per partition, made once dim is known
    uint64_t next_id;             //  last semantic id given
    char instance[96];            //  this stage, for the admin's figures
    aigw_pgconn_t *db;            //  entries' rows; NULL without a database
    int poll_db;                  //  index of db's pollitem, -1 = none
    bool busy;                    //  a statement runs
    bool stopping;                //  being destroyed: callbacks do nothing
    zhashx_t *known;              //  partitions read this run (or born here)
    zhashx_t *loads;              //  partition -> s_load_t waiting or running
    zlistx_t *load_queue;         //  s_load_t to send (the hash owns them)
    s_load_t *loading;            //  the load in the database now
    size_t held;                  //  requests held in loads
    zlistx_t *writes;             //  s_write_t, oldest first
    int64_t flush_at;             //  the oldest write is due, Unix ms
    zlistx_t *purges;             //  s_purge_t to carry out
    int64_t prune_at;             //  next prune due, Unix ms
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

//  ENTRY goes last: read from the database, it is older than any kept
//  since the start.
static void
s_push_back (s_cache_t *self, s_entry_t *entry)
{
    entry->prev = self->tail;
    entry->next = NULL;
    if (self->tail)
        self->tail->next = entry;
    self->tail = entry;
    if (!self->head)
        self->head = entry;
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
s_write_free (void **item)
{
    s_write_t *w = (s_write_t *) *item;
    if (w) {
        free (w->vector);
        free (w);
        *item = NULL;
    }
}

static void
s_load_free (void **item)
{
    s_load_t *load = (s_load_t *) *item;
    if (load) {
        aigw_held_destroy (&load->held);
        free (load->partition);
        free (load);
        *item = NULL;
    }
}

static void
s_purge_free (void **item)
{
    s_purge_t *purge = (s_purge_t *) *item;
    if (purge) {
        free (purge->tenant);
        free (purge->model);
        free (purge);
        *item = NULL;
    }
}

static void
s_cache_destroy (void **state_p)
{
    s_cache_t *self = (s_cache_t *) *state_p;
    if (!self)
        return;
    self->stopping = true;
    aigw_pgconn_destroy (&self->db);
    self->loading = NULL;  //  the loads hash owns it
    zlistx_destroy (&self->load_queue);
    zhashx_destroy (&self->loads);
    zhashx_destroy (&self->known);
    zlistx_destroy (&self->writes);
    zlistx_destroy (&self->purges);
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
    self->host = host;
    self->poll_db = -1;
    self->known = zhashx_new ();
    self->loads = zhashx_new ();
    zhashx_set_destructor (self->loads, s_load_free);
    self->load_queue = zlistx_new ();
    self->writes = zlistx_new ();
    zlistx_set_destructor (self->writes, s_write_free);
    self->purges = zlistx_new ();
    zlistx_set_destructor (self->purges, s_purge_free);
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
    self->embedder_id = aigw_cacheform_embedder (config);
    if (config->cache_enabled && config->cache_semantic_enabled) {
        //  The vectors are mapped once per cache stage, read-only, and
        //  checked whole: a bad file stops the stage from starting. With
        //  the router's model making the sentence vectors the file is
        //  optional: the verifier then knows synonyms from its table only.
        self->router = config->cache_semantic_model && *config->cache_semantic_model;
        char err[256] = "";
        const char *path = config->cache_semantic_vectors;
        self->vectors = path && *path ? aigw_vectors_open (path, err, sizeof err) : NULL;
        if (!self->vectors && (!self->router || (path && *path))) {
            aigw_error ("cache.semantic.vectors: %s",
                        path && *path ? err : "no file named (aigw embeddings import)");
            void *state = self;
            s_cache_destroy (&state);
            return NULL;
        }
        if (!self->router) {
            self->embedder = aigw_embedder_sif_new (self->vectors, true);
            self->dim = self->embedder ? aigw_embedder_dim (self->embedder) : 0;
            self->index = self->dim ? aigw_semindex_new (self->dim) : NULL;
        }
        self->verify = aigw_verify_new (self->vectors, AIGW_VERIFY_SYNONYM_MIN);
        if (!self->verify || (!self->router && (!self->embedder || !self->index))) {
            void *state = self;
            s_cache_destroy (&state);
            return NULL;
        }
    }
    //  Entries persist when there is a database and cache.persist is on
    //  (schemas/sql/015); the selftest (no host) stays in memory.
    if (host && config->cache_enabled && config->cache_persist && config->database_url
        && *config->database_url) {
        aigw_pgconn_settings_t settings
            = {.name = "cache",
               .application_name = "aigw-cache",
               .connect_timeout_ms
               = config->db_connect_timeout_ms > 0 ? config->db_connect_timeout_ms : 3000,
               .statement_timeout_ms = AIGW_CACHE_STATEMENT_MS,
               .backoff_min_ms = 100,
               .backoff_max_ms = 2000};
        self->db = aigw_pgconn_new (config->database_url, &settings, NULL);
        if (self->db)
            aigw_pgconn_connect (self->db, aigw_now_ms ());
        else
            aigw_error ("cache: the database URL cannot be used; entries in memory only");
    }
    return self;
}

static void s_write_queue (s_cache_t *self, const s_entry_t *entry, const float *vector);
static void s_purge_queue (s_cache_t *self, const char *tenant, const char *model);

//  ---------------------------------------------------------------------
//  Requests

//  The request's directives (env->cache_control).
typedef struct {
    bool no_cache;  //  skip the lookup, still store
    bool no_store;  //  neither
    bool exact;     //  exact matches only: the key or tenant turned semantic off
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
        else if (len == 5 && memcmp (text, "exact", 5) == 0)
            out->exact = true;
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
    if (!self->index)
        return false;
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

//  The index of DIM-float vectors, made with the router's first vector (or
//  first row read back); NULL when DIM is not the one in use.
static aigw_semindex_t *
s_index (s_cache_t *self, size_t dim)
{
    if (!self->index && self->router && dim > 0 && dim <= AIGW_SEMINDEX_DIM_MAX) {
        self->index = aigw_semindex_new (dim);
        if (self->index)
            self->dim = dim;
    }
    return dim == self->dim ? self->index : NULL;
}

//  The sentence vector of REQ's text (unit length, self->dim floats, the
//  caller frees it), or NULL when the cache is not semantic, there is no
//  plain text, or the router's embeddings call failed (then the request
//  gets an exact lookup only, and its answer no semantic entry). The
//  router's vector is taken out of ENV: it goes no further.
static float *
s_vector (s_cache_t *self, aigw_envelope_t *env, const aigw_cacheform_request_t *req)
{
    float *vector = NULL;
    if (self->router) {
        size_t dim = env->cache_dim;
        if (self->verify && req->chat && req->text_len && env->cache_vector
            && s_index (self, dim)) {
            vector = env->cache_vector;
            env->cache_vector = NULL;
            //  Not every embeddings API answers unit vectors (OpenAI's do);
            //  the index compares by dot product.
            double norm = 0;
            for (size_t i = 0; i < dim; i++)
                norm += (double) vector[i] * vector[i];
            norm = sqrt (norm);
            if (!(norm > 1e-12) || !isfinite (norm)) {
                free (vector);
                vector = NULL;
            }
            else
                for (size_t i = 0; i < dim; i++)
                    vector[i] = (float) (vector[i] / norm);
        }
        else if (env->cache_vector && env->cache_dim != self->dim && self->dim)
            aigw_warn ("cache: a vector of %u floats where %zu are in use: exact lookup only",
                       env->cache_dim, self->dim);
    }
    else if (self->embedder && req->chat && req->text_len) {
        vector = (float *) malloc (self->dim * sizeof (float));
        if (vector && aigw_embedder_embed (self->embedder, req->text, req->text_len, vector)) {
            free (vector);
            vector = NULL;
        }
    }
    aigw_envelope_set_vector (env, NULL, 0);
    aigw_envelope_set (&env->cache_embed, NULL);
    return vector;
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
    if (!self->config->cache_enabled || d.no_store
        || aigw_cacheform_request_take (env, self->embedder_id, &req)) {
        aigw_envelope_set_vector (env, NULL, 0);
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
            aigw_envelope_set_vector (env, NULL, 0);
            aigw_cacheform_request_reset (&req);
            return;
        }
    }
    //  Past an exact hit: the vector serves the neighbours' search and the
    //  entry this request's answer becomes. Exact only (auth's "exact"):
    //  no vector, so no neighbours, and an entry for exact hits only (no
    //  embedding made for a key that asked for none).
    float *vector = NULL;
    if (d.exact) {
        aigw_envelope_set_vector (env, NULL, 0);
        aigw_envelope_set (&env->cache_embed, NULL);
    }
    else
        vector = s_vector (self, env, &req);
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
    entry->created = self->clock ();
    entry->expires = entry->created + p->ttl_ms;
    entry->cost = len + AIGW_CACHE_ENTRY_OVERHEAD;
    if (p->vector && p->text) {
        entry->text = p->text;
        entry->text_len = p->text_len;
        p->text = NULL;
        entry->cost += entry->text_len + self->dim * sizeof (float);
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
    s_write_queue (self, entry, entry->sid ? vector : NULL);
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
        s_purge_queue (self, tenant, model);
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
    json_object_set_new (part, "semantic", json_boolean (self->verify != NULL));
    if (self->verify)
        json_object_set_new (part, "embedder", json_string (self->embedder_id));
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
    const char *embedder = NULL;
    json_object_foreach (instances, name, part) {
        semantic = semantic || json_is_true (json_object_get (part, "semantic"));
        if (!embedder)
            embedder = json_string_value (json_object_get (part, "embedder"));
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
    if (semantic && embedder)
        json_object_set_new (doc, "embedder", json_string (embedder));
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

//  ---------------------------------------------------------------------
//  Persistence (schemas/sql/015): one connection, one statement at a
//  time, driven from the stage's loop: a partition's load (requests wait
//  on it) first, then purges, then a batch of writes when due, then the
//  prune. Without a database the cache lives in memory only.

// clang-format off
#define S_LOAD_SQL                                                               \
    "SELECT exact_key, tenant, model, chat, body, prompt, encode (vector, 'hex'),"   \
    " provider, provider_kind, (extract (epoch FROM created_at) * 1000)::bigint,"    \
    " (extract (epoch FROM expires_at) * 1000)::bigint FROM cache_entries"           \
    " WHERE partition_key = $1 AND expires_at > now ()"                              \
    " ORDER BY created_at DESC LIMIT $2::integer"
#define S_WRITE_SQL                                                              \
    "INSERT INTO cache_entries (exact_key, partition_key, tenant, model, chat, body,"  \
    " prompt, vector, provider, provider_kind, created_at, expires_at)"               \
    " SELECT r.k, r.p, r.t, r.m, r.c, r.b, r.x, decode (r.v, 'hex'), r.pr, r.pk,"     \
    " to_timestamp (r.cr / 1000.0), to_timestamp (r.ex / 1000.0)"                     \
    " FROM json_to_recordset ($1::json) AS r (k text, p text, t text, m text,"        \
    " c boolean, b text, x text, v text, pr text, pk text, cr bigint, ex bigint)"     \
    " ON CONFLICT (exact_key) DO UPDATE SET partition_key = EXCLUDED.partition_key,"  \
    " tenant = EXCLUDED.tenant, model = EXCLUDED.model, chat = EXCLUDED.chat,"        \
    " body = EXCLUDED.body, prompt = EXCLUDED.prompt, vector = EXCLUDED.vector,"      \
    " provider = EXCLUDED.provider, provider_kind = EXCLUDED.provider_kind,"          \
    " created_at = EXCLUDED.created_at, expires_at = EXCLUDED.expires_at"
#define S_PURGE_SQL                                                              \
    "DELETE FROM cache_entries WHERE ($1::text IS NULL OR tenant = $1::text)"         \
    " AND ($2::text IS NULL OR model = $2::text)"
#define S_PRUNE_SQL                                                              \
    "DELETE FROM cache_entries WHERE ctid = ANY (ARRAY (SELECT ctid FROM cache_entries" \
    " WHERE expires_at <= now () LIMIT $1::integer))"
// clang-format on

static void s_pump (s_cache_t *self);

//  Queue ENTRY (just kept; VECTOR its sentence vector or NULL) for the
//  next batch.
static void
s_write_queue (s_cache_t *self, const s_entry_t *entry, const float *vector)
{
    if (!self->db)
        return;
    if (zlistx_size (self->writes) >= AIGW_CACHE_WRITES_MAX) {
        void *oldest = zlistx_detach (self->writes, NULL);
        s_write_free (&oldest);
    }
    s_write_t *w = (s_write_t *) calloc (1, sizeof *w);
    assert (w);
    memcpy (w->key, entry->key, sizeof w->key);
    if (vector) {
        size_t size = self->dim * sizeof (float);
        w->vector = (float *) malloc (size);
        assert (w->vector);
        memcpy (w->vector, vector, size);
    }
    if (!zlistx_size (self->writes))
        self->flush_at = self->clock () + AIGW_CACHE_FLUSH_MS;
    zlistx_add_end (self->writes, w);
}

//  Carry a purge (TENANT, MODEL: NULL for any) to the rows.
static void
s_purge_queue (s_cache_t *self, const char *tenant, const char *model)
{
    if (!self->db)
        return;
    s_purge_t *purge = (s_purge_t *) calloc (1, sizeof *purge);
    assert (purge);
    purge->tenant = tenant ? strdup (tenant) : NULL;
    purge->model = model ? strdup (model) : NULL;
    zlistx_add_end (self->purges, purge);
    s_pump (self);
}

//  Keep the row R of RESULT (S_LOAD_SQL's columns) for PARTITION, unless
//  its key is held already. False when memory is full: the rest of the
//  rows (older) are left.
static bool
s_load_row (s_cache_t *self, const char *partition, PGresult *result, int r)
{
    const char *key = PQgetvalue (result, r, 0);
    if (strlen (key) != AIGW_CACHE_KEY_LEN || zhashx_lookup (self->entries, key))
        return true;
    int64_t expires = strtoll (PQgetvalue (result, r, 10), NULL, 10);
    if (expires <= self->clock ())
        return true;
    size_t body_len = (size_t) PQgetlength (result, r, 4);
    const char *text = PQgetisnull (result, r, 5) ? NULL : PQgetvalue (result, r, 5);
    const char *hex = PQgetisnull (result, r, 6) ? NULL : PQgetvalue (result, r, 6);
    //  The router's vectors fix the index's dimension with the first one,
    //  which may be a row's. A vector of another dimension (the vectors
    //  file changed) or none: the entry answers exact matches only.
    if (text && hex && self->router && !self->index && strlen (hex) % (2 * sizeof (float)) == 0)
        s_index (self, strlen (hex) / (2 * sizeof (float)));
    size_t dim = self->index ? self->dim : 0;
    bool semantic = text && hex && dim && strlen (hex) == dim * sizeof (float) * 2;
    size_t cost = body_len + AIGW_CACHE_ENTRY_OVERHEAD;
    if (semantic)
        cost += strlen (text) + dim * sizeof (float);
    if (self->bytes + cost > self->config->cache_max_bytes)
        return false;
    s_entry_t *entry = (s_entry_t *) calloc (1, sizeof *entry);
    assert (entry);
    memcpy (entry->key, key, sizeof entry->key);
    snprintf (entry->partition, sizeof entry->partition, "%s", partition);
    entry->chat = PQgetvalue (result, r, 3)[0] == 't';
    entry->body = (char *) malloc (body_len + 1);
    assert (entry->body);
    memcpy (entry->body, PQgetvalue (result, r, 4), body_len + 1);
    entry->body_len = body_len;
    entry->stat = s_stat_key (self, PQgetvalue (result, r, 1), PQgetvalue (result, r, 2));
    if (!PQgetisnull (result, r, 7))
        entry->provider = strdup (PQgetvalue (result, r, 7));
    if (!PQgetisnull (result, r, 8))
        entry->provider_kind = strdup (PQgetvalue (result, r, 8));
    entry->created = strtoll (PQgetvalue (result, r, 9), NULL, 10);
    entry->expires = expires;
    entry->cost = cost;
    if (semantic) {
        float *vector = (float *) malloc (dim * sizeof (float));
        assert (vector);
        unsigned char *bytes = (unsigned char *) vector;
        for (size_t i = 0; i < dim * sizeof (float); i++) {
            unsigned int byte = 0;
            sscanf (hex + 2 * i, "%2x", &byte);
            bytes[i] = (unsigned char) byte;
        }
        entry->text = strdup (text);
        entry->text_len = strlen (text);
        entry->sid = ++self->next_id;
        snprintf (entry->id, sizeof entry->id, "%llu", (unsigned long long) entry->sid);
        if (aigw_semindex_add (self->index, entry->partition, entry->sid, vector) == 0)
            zhashx_insert (self->by_id, entry->id, entry);
        else
            entry->sid = 0, entry->id[0] = 0;
        free (vector);
    }
    zhashx_insert (self->entries, entry->key, entry);
    s_push_back (self, entry);
    self->bytes += entry->cost;
    s_stat_t *stat = s_stat_of (self, entry->stat);
    if (stat) {
        stat->entries++;
        stat->bytes += (int64_t) entry->cost;
    }
    return true;
}

//  LOAD is over (read, failed, or given up): with READ, its partition
//  counts as known; its requests go on.
static void
s_load_finish (s_cache_t *self, s_load_t *load, bool read)
{
    if (read) {
        if (zhashx_size (self->known) >= AIGW_CACHE_KNOWN_MAX)
            zhashx_purge (self->known);
        zhashx_insert (self->known, load->partition, (void *) "");
    }
    aigw_job_t *job;
    aigw_envelope_t *env;
    while (aigw_held_take (load->held, &job, &env)) {
        self->held--;
        s_cache_handle (self, env);
        aigw_stage_pass (&job, &env);
    }
    zhashx_delete (self->loads, load->partition);
}

static void
s_load_done (void *arg, PGresult *result, aigw_pgconn_status_t status)
{
    s_cache_t *self = (s_cache_t *) arg;
    s_load_t *load = self->loading;
    self->loading = NULL;
    self->busy = false;
    if (!load || self->stopping) {
        PQclear (result);
        return;
    }
    if (result && PQresultStatus (result) == PGRES_TUPLES_OK) {
        int rows = PQntuples (result);
        for (int r = 0; r < rows && s_load_row (self, load->partition, result, r); r++)
            ;
        aigw_debug ("cache: a partition read %d entries from the database", rows);
    }
    else
        //  Its requests go on as misses; the next request reads again.
        aigw_warn ("cache: a partition's entries could not be read (%s)",
                   result ? PQresultErrorMessage (result) : "no database");
    bool read = result && PQresultStatus (result) == PGRES_TUPLES_OK;
    PQclear (result);
    s_load_finish (self, load, read);
    s_pump (self);
}

//  A write, purge or prune ended.
static void
s_statement_done (void *arg, PGresult *result, aigw_pgconn_status_t status)
{
    s_cache_t *self = (s_cache_t *) arg;
    self->busy = false;
    if (self->stopping) {
        PQclear (result);
        return;
    }
    if (!result || PQresultStatus (result) != PGRES_COMMAND_OK)
        //  Entries stay in memory; a purge's rows expire in time.
        aigw_warn ("cache: a database statement failed: %s",
                   result ? PQresultErrorMessage (result) : "no database");
    PQclear (result);
    s_pump (self);
}

//  The next batch of writes as the JSON S_WRITE_SQL reads; NULL when none
//  of the waiting entries is still held.
static char *
s_write_batch (s_cache_t *self)
{
    json_t *rows = json_array ();
    zhashx_t *seen = zhashx_new ();
    s_write_t *w;
    while (json_array_size (rows) < AIGW_CACHE_FLUSH_ROWS
           && (w = (s_write_t *) zlistx_detach (self->writes, NULL))) {
        s_entry_t *entry = (s_entry_t *) zhashx_lookup (self->entries, w->key);
        s_stat_t *stat = entry ? s_stat_of (self, entry->stat) : NULL;
        json_t *body = entry ? json_stringn (entry->body, entry->body_len) : NULL;
        //  One row per key a statement (ON CONFLICT touches a row once).
        if (entry && stat && body && !zhashx_lookup (seen, w->key)) {
            zhashx_insert (seen, w->key, (void *) "");
            json_t *row = json_pack ("{s:s,s:s,s:s,s:s,s:b,s:o,s:I,s:I}", "k", entry->key, "p",
                                     entry->partition, "t", stat->tenant, "m", stat->model, "c",
                                     entry->chat, "b", body, "cr", (json_int_t) entry->created,
                                     "ex", (json_int_t) entry->expires);
            body = NULL;
            if (entry->provider)
                json_object_set_new (row, "pr", json_string (entry->provider));
            if (entry->provider_kind)
                json_object_set_new (row, "pk", json_string (entry->provider_kind));
            if (w->vector && entry->text) {
                size_t size = self->dim * sizeof (float);
                char *hex = (char *) malloc (2 * size + 1);
                assert (hex);
                const unsigned char *bytes = (const unsigned char *) w->vector;
                for (size_t i = 0; i < size; i++)
                    snprintf (hex + 2 * i, 3, "%02x", bytes[i]);
                json_object_set_new (row, "v", json_string (hex));
                json_object_set_new (row, "x", json_stringn (entry->text, entry->text_len));
                free (hex);
            }
            json_array_append_new (rows, row);
        }
        json_decref (body);
        s_write_free ((void **) &w);
    }
    zhashx_destroy (&seen);
    char *text = json_array_size (rows) ? json_dumps (rows, JSON_COMPACT) : NULL;
    json_decref (rows);
    return text;
}

//  Move the database on: the next load, a purge, a due batch, the prune.
static void
s_pump (s_cache_t *self)
{
    if (!self->db || self->busy || self->stopping)
        return;
    int64_t now = self->clock ();
    if (aigw_pgconn_state (self->db) != AIGW_PGCONN_IDLE) {
        if (aigw_pgconn_state (self->db) == AIGW_PGCONN_DOWN) {
            //  No database now: waiting requests go on as they would
            //  without one.
            s_load_t *load;
            while ((load = (s_load_t *) zlistx_detach (self->load_queue, NULL)))
                s_load_finish (self, load, false);
        }
        return;
    }
    s_load_t *load = (s_load_t *) zlistx_detach (self->load_queue, NULL);
    if (load) {
        char limit[16];
        snprintf (limit, sizeof limit, "%d", AIGW_CACHE_LOAD_ROWS);
        const char *params[] = {load->partition, limit};
        self->loading = load;
        self->busy = true;
        if (aigw_pgconn_send (self->db, S_LOAD_SQL, 2, params, now + AIGW_CACHE_LOAD_MS,
                              s_load_done, self, now)) {
            self->loading = NULL;
            self->busy = false;
            s_load_finish (self, load, false);
        }
        return;
    }
    s_purge_t *purge = (s_purge_t *) zlistx_first (self->purges);
    if (purge) {
        const char *params[] = {purge->tenant, purge->model};
        if (aigw_pgconn_send (self->db, S_PURGE_SQL, 2, params, now + AIGW_CACHE_STATEMENT_MS,
                              s_statement_done, self, now)
            == 0) {
            self->busy = true;
            zlistx_delete (self->purges, zlistx_cursor (self->purges));
        }
        return;
    }
    if (zlistx_size (self->writes)
        && (now >= self->flush_at || zlistx_size (self->writes) >= AIGW_CACHE_FLUSH_ROWS)) {
        char *batch = s_write_batch (self);
        self->flush_at = now + AIGW_CACHE_FLUSH_MS;
        if (batch) {
            const char *params[] = {batch};
            if (aigw_pgconn_send (self->db, S_WRITE_SQL, 1, params, now + AIGW_CACHE_STATEMENT_MS,
                                  s_statement_done, self, now)
                == 0)
                self->busy = true;
            free (batch);
            return;
        }
    }
    if (now >= self->prune_at) {
        //  Every owner prunes every row past its time: no one reads them.
        self->prune_at = now + AIGW_CACHE_PRUNE_MS;
        char limit[16];
        snprintf (limit, sizeof limit, "%d", AIGW_CACHE_PRUNE_ROWS);
        const char *params[] = {limit};
        if (aigw_pgconn_send (self->db, S_PRUNE_SQL, 1, params, now + AIGW_CACHE_STATEMENT_MS,
                              s_statement_done, self, now)
            == 0)
            self->busy = true;
    }
}

//  True when ENV must wait for its partition's rows: a lookup of a
//  partition this stage has not read since it started (or since the
//  partition came back to it), while the database is there.
static bool
s_must_load (s_cache_t *self, aigw_envelope_t *env)
{
    if (!self->db || env->kind == AIGW_KIND_ADMIN || env->status || !env->cache_key
        || !*env->cache_key || zhashx_lookup (self->known, env->cache_key)
        || aigw_pgconn_state (self->db) == AIGW_PGCONN_DOWN || self->held >= AIGW_CACHE_HELD_MAX)
        return false;
    s_directives_t d;
    s_directives (env->cache_control, &d);
    return !d.no_cache && !d.no_store;
}

static void
s_cache_take (void *state, aigw_job_t *job, aigw_envelope_t *env)
{
    s_cache_t *self = (s_cache_t *) state;
    if (!s_must_load (self, env)) {
        s_cache_handle (self, env);
        aigw_stage_pass (&job, &env);
        return;
    }
    s_load_t *load = (s_load_t *) zhashx_lookup (self->loads, env->cache_key);
    if (!load) {
        load = (s_load_t *) calloc (1, sizeof *load);
        assert (load);
        load->partition = strdup (env->cache_key);
        load->held = aigw_held_new ();
        zhashx_insert (self->loads, load->partition, load);
        //  The hash owns it; the queue only points at it.
        zlistx_add_end (self->load_queue, load);
    }
    aigw_held_add (load->held, job, env);
    self->held++;
    s_pump (self);
}

//  A held request whose client left: dropped with its job.
static void
s_cache_cancel (void *state, aigw_job_t *job)
{
    s_cache_t *self = (s_cache_t *) state;
    for (s_load_t *load = (s_load_t *) zhashx_first (self->loads); load;
         load = (s_load_t *) zhashx_next (self->loads))
        if (aigw_held_drop (load->held, job)) {
            self->held--;
            return;
        }
}

static int
s_cache_pollitems (void *state, zmq_pollitem_t *items, int max)
{
    s_cache_t *self = (s_cache_t *) state;
    self->poll_db = -1;
    if (max < 1 || !aigw_pgconn_pollitem (self->db, &items[0]))
        return 0;
    self->poll_db = 0;
    return 1;
}

static int
s_cache_timeout (void *state)
{
    s_cache_t *self = (s_cache_t *) state;
    if (!self->db)
        return -1;
    int64_t now = aigw_now_ms ();
    int t = aigw_pgconn_timeout (self->db, now);
    if (aigw_pgconn_state (self->db) == AIGW_PGCONN_IDLE && !self->busy) {
        int64_t due = self->prune_at;
        if (zlistx_size (self->writes) && self->flush_at < due)
            due = self->flush_at;
        if (zlistx_size (self->load_queue) || zlistx_size (self->purges))
            due = now;
        int64_t wait = due > now ? due - now : 0;
        if (t < 0 || wait < t)
            t = (int) (wait > INT_MAX ? INT_MAX : wait);
    }
    return t;
}

static void
s_cache_process (void *state, zmq_pollitem_t *items, int count)
{
    s_cache_t *self = (s_cache_t *) state;
    if (!self->db)
        return;
    short revents = self->poll_db >= 0 && self->poll_db < count ? items[self->poll_db].revents : 0;
    aigw_pgconn_process (self->db, revents, aigw_now_ms ());
    s_pump (self);
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
    //  Partitions whose owner is now another stage are forgotten: if they
    //  come back, their rows are read again (what the other owner kept
    //  meanwhile is there).
    if (self->host && self->db && aigw_host_shard_owner (self->host, "cache", "")) {
        zlist_t *gone = zlist_new ();
        zlist_autofree (gone);
        for (void *v = zhashx_first (self->known); v; v = zhashx_next (self->known)) {
            const char *partition = (const char *) zhashx_cursor (self->known);
            if (!aigw_host_owns (self->host, "cache", partition))
                zlist_append (gone, (void *) partition);
        }
        for (char *p = (char *) zlist_first (gone); p; p = (char *) zlist_next (gone))
            zhashx_delete (self->known, p);
        zlist_destroy (&gone);
    }
    s_pump (self);
}

//  Entries are owned by partition; computed once into ENV, by whoever
//  sends the request here. An admin request names its hop's shard itself.
static const char *
s_cache_shard_key (aigw_envelope_t *env, const aigw_config_t *config)
{
    if (env->kind != AIGW_KIND_ADMIN && !env->cache_key && config->cache_enabled) {
        //  Kept on the envelope: the lookup here reads the body once.
        const aigw_cacheform_request_t *req
            = aigw_cacheform_request_keep (env, aigw_cacheform_embedder (config));
        if (req)
            aigw_envelope_set (&env->cache_key, req->partition);
    }
    return env->cache_key ? env->cache_key : "";
}

const aigw_stage_def_t aigw_cache_stage = {
    .name = "cache",
    .replay_safe = true,
    .state_new = s_cache_new,
    .state_destroy = s_cache_destroy,
    .take = s_cache_take,
    .cancel = s_cache_cancel,
    .pollitems = s_cache_pollitems,
    .timeout = s_cache_timeout,
    .process = s_cache_process,
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
    //  "exact" (auth: the key or tenant turned semantic lookups off) still
    //  keeps a miss's answer, and answers exact matches from it.
    s_directives_t dx;
    s_directives ("no-cache,exact,ttl=5", &dx);
    assert (dx.no_cache && dx.exact && !dx.no_store && dx.ttl_s == 5);
    aigw_envelope_t *ex = s_test_lookup (self, "r8x", "tx", "what is three plus three", "exact");
    assert (ex->status == 0 && streq (ex->cache_status, "MISS") && ex->cache_key);
    s_test_store (self, ex, "six");
    aigw_envelope_t *ey = s_test_lookup (self, "r8y", "tx", "what is three plus three", "exact");
    assert (ey->status == 200 && streq (ey->cache_status, "HIT") && s_test_says (ey, "six"));
    aigw_envelope_t *ez = s_test_lookup (self, "r8z", "tx", "what is three plus three", NULL);
    assert (ez->status == 200 && streq (ez->cache_status, "HIT") && s_test_says (ez, "six"));

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

    aigw_envelope_t *all[]
        = {a, b, c, s, nc, d, ns, off, ex, ey, ez, x1, x2, x3, t, t1, t2, p, bad};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
        aigw_envelope_destroy (&all[i]);
    state = self;
    s_cache_destroy (&state);
    s_cache_destroy (&state);
    aigw_config_destroy (&config);
    if (verbose)
        printf ("cache: ok\n");
}
