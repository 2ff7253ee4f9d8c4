/*  aigw_auth: credentials to principals; PostgreSQL-backed API keys. */
#include "aigw_auth.h"
#include "aigw_cp_sql.h"
#include "aigw_hex.h"
#include "aigw_log.h"

#include "aigw_jwt.h"
#include "aigw_limits.h"

#include "aigw_pgconn.h"

#include <libpq-fe.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

//  Most keys held in the positive cache; the oldest go first past it.
//  (TTL, negative cache and grace period come from the config: auth.*)
#define AIGW_AUTH_CACHE_MAX 100000
//  Keys resolved by one query at most.
#define AIGW_AUTH_BATCH_MAX 128
//  Requests waiting for the database at most; 503 past it.
#define AIGW_AUTH_WAITING_MAX 20000
//  Reconnect backoff bounds.
#define AIGW_AUTH_BACKOFF_MIN_MS 250
#define AIGW_AUTH_BACKOFF_MAX_MS 5000
//  Database timeouts when the config leaves them at 0.
#define AIGW_AUTH_CONNECT_TIMEOUT_MS   3000
#define AIGW_AUTH_STATEMENT_TIMEOUT_MS 5000
//  Housekeeping period.
#define AIGW_AUTH_TICK_MS 1000
//  The NOTIFY channel the schema's triggers use.
#define AIGW_AUTH_CHANNEL "aigw_keys"

//  Built-in roles; mirrors schemas/sql/001_control_plane.sql (and 005's
//  usage:read_tenant, 008's usage:read_content) for keys and tokens that do not come from the
//  database.
static const struct {
    const char *name;         //  role name
    const char *permissions;  //  comma-separated
} s_roles[] = {
    {"admin", "*"},
    {"tenant-admin", "inference,models:read,tenants:read,keys:read,keys:write,usage:read,"
                     "ratelimits:read,guardrails:read,guardrails:write,cache:read,cache:write,"
                     "audit:read,"
                     "usage:read_tenant,"
                     "usage:read_content"},
    {"developer", "inference,models:read,tenants:read,keys:read,usage:read,ratelimits:read"},
    {"viewer", "models:read,tenants:read,keys:read,usage:read,ratelimits:read,usage:read_tenant"},
};

//  Who a credential is.
typedef struct {
    char *type;                    //  master, key or token
    char *key_id;                  //  stable id, never the secret
    char *name;                    //  key name
    char *tenant_id;               //  tenant id, "*" for all
    char *tenant;                  //  tenant name
    char *role;                    //  role name
    char *permissions;             //  comma-separated
    char *models;                  //  comma-separated, NULL = all
    int64_t rpm;                   //  requests per minute, 0 = default
    aigw_limits_t *key_limits;     //  the key's limits, defaults folded in; NULL = none
    aigw_limits_t *tenant_limits;  //  its tenant's limits, NULL = none
    int64_t expires_ms;            //  Unix ms, 0 = never
    bool revoked;                  //  revoked keys answer 401
    bool store_content;            //  its tenant keeps prompts and answers
    bool no_cache;                 //  the key or its tenant turned the cache off
    bool exact_only;               //  the key or its tenant turned semantic lookups off
    int64_t fetched_ms;            //  when read from the database, 0 = stale
} s_principal_t;

//  A request waiting for its key to be looked up.
typedef struct {
    aigw_job_t *job;       //  broker job
    aigw_envelope_t *env;  //  decoded request
} s_wait_t;

typedef struct {
    const aigw_config_t *config;      //  settings (shared, read-only)
    zhashx_t *fixed;                  //  hex hash -> s_principal_t: master, config keys
    zhashx_t *cache;                  //  hex hash -> s_principal_t from the database
    zlistx_t *cache_order;            //  hex hashes, oldest first
    zhashx_t *negative;               //  hex hash -> int64_t expiry (ms)
    zlistx_t *negative_order;         //  hex hashes, oldest first
    zhashx_t *waiting;                //  hex hash -> zlistx_t of s_wait_t
    size_t waiting_count;             //  requests in waiting
    zlistx_t *queue;                  //  hex hashes to look up, not yet sent
    zlistx_t *inflight;               //  hex hashes in the query in flight
    aigw_pgconn_t *db;                //  the database connection, NULL without one
    int64_t down_since;               //  when the database went away, 0 = up
    aigw_jwt_t *jwt;                  //  token verifier, NULL without auth.jwt
    int64_t cache_ttl_ms;             //  auth.cache_ttl_s
    int64_t negative_ttl_ms;          //  auth.negative_ttl_s
    size_t negative_max;              //  auth.negative_cache_max
    int64_t grace_ms;                 //  auth.db_grace_s
    aigw_limits_defaults_t defaults;  //  ratelimit.default, folded into each key's limits
    aigw_limits_t *token_limits;      //  what a token principal gets: the defaults
} self_t;

static void
s_principal_destroy (s_principal_t **self_p)
{
    s_principal_t *p = *self_p;
    if (!p)
        return;
    free (p->type);
    free (p->key_id);
    free (p->name);
    free (p->tenant_id);
    free (p->tenant);
    free (p->role);
    free (p->permissions);
    free (p->models);
    aigw_limits_destroy (&p->key_limits);
    aigw_limits_destroy (&p->tenant_limits);
    free (p);
    *self_p = NULL;
}

static void
s_principal_free (void **item)
{
    s_principal_destroy ((s_principal_t **) item);
}

static s_principal_t *
s_principal_new (const char *type, const char *key_id, const char *name, const char *tenant_id,
                 const char *tenant, const char *role, const char *permissions)
{
    s_principal_t *p = calloc (1, sizeof *p);
    p->type = strdup (type);
    p->key_id = strdup (key_id);
    p->name = strdup (name);
    p->tenant_id = strdup (tenant_id);
    p->tenant = strdup (tenant);
    p->role = strdup (role);
    p->permissions = strdup (permissions ? permissions : "");
    return p;
}

const char *
aigw_auth_role_permissions (const char *role)
{
    for (size_t i = 0; role && i < sizeof s_roles / sizeof s_roles[0]; i++)
        if (streq (role, s_roles[i].name))
            return s_roles[i].permissions;
    return NULL;
}

bool
aigw_auth_permits (const char *permissions, const char *permission)
{
    return permissions
           && (aigw_list_has (permissions, "*") || aigw_list_has (permissions, permission));
}

//  Mark ENV as one whose usage record keeps its prompt and answer when
//  STORE, with a copy of the request body's first AIGW_CONTENT_MAX bytes.
//  The copy is made here, not at the edge: only auth knows, before the
//  request goes on, whether the tenant keeps content, and the body the
//  edge read belongs to the envelope from then on (the provider replaces
//  it with the answer). So a tenant that does not opt in costs no copy;
//  one that does carries the copy along the pipeline, and the edge reads
//  it from the answer (a stream's first chunk: the runtime drops it from
//  the rest). A body is JSON the edge parsed, so it holds no NUL; were
//  one there, the copy stops at it and the edge, which knows the body's
//  length, marks the content truncated.
static void
s_content (aigw_envelope_t *env, bool store)
{
    env->store_content = store;
    if (!store || env->kind == AIGW_KIND_MODELS || env->kind == AIGW_KIND_ADMIN || !env->body_len)
        return;
    size_t len = env->body_len < AIGW_CONTENT_MAX ? env->body_len : AIGW_CONTENT_MAX;
    const char *nul = memchr (env->body, 0, len);
    if (nul)
        len = (size_t) (nul - env->body);
    char *copy = malloc (len + 1);
    if (!copy)
        return;
    memcpy (copy, env->body, len);
    copy[len] = 0;
    free (env->content_request);
    env->content_request = copy;
}

//  Add DIRECTIVE to ENV's cache directives, after the client's own: "off"
//  keeps ENV out of the response cache (the cache stage reads it as
//  no-store: no lookup, nothing kept); "exact" keeps it to exact matches
//  (no semantic lookup, no vector: the entry serves exact hits only).
static void
s_cache_directive (aigw_envelope_t *env, const char *directive)
{
    if (env->cache_control && *env->cache_control) {
        char *both = zsys_sprintf ("%s,%s", env->cache_control, directive);
        aigw_envelope_set (&env->cache_control, both);
        zstr_free (&both);
    }
    else
        aigw_envelope_set (&env->cache_control, directive);
}

//  Fill ENV from P, or answer it: 401 revoked or expired, 403 without the
//  permission or the model, 404 for a model nobody serves.
static void
s_apply (self_t *self, aigw_envelope_t *env, const s_principal_t *p)
{
    int64_t now = aigw_now_ms ();
    if (p->revoked) {
        aigw_envelope_set_error (env, 401, "authentication_error", "invalid_api_key", NULL,
                                 "This API key has been revoked.");
        return;
    }
    if (p->expires_ms && p->expires_ms <= now) {
        aigw_envelope_set_error (env, 401, "authentication_error", "invalid_api_key", NULL,
                                 "This API key has expired.");
        return;
    }
    aigw_envelope_set (&env->principal_type, p->type);
    aigw_envelope_set (&env->key_id, p->key_id);
    aigw_envelope_set (&env->key_name, p->name);
    aigw_envelope_set (&env->tenant_id, p->tenant_id);
    aigw_envelope_set (&env->tenant, p->tenant);
    aigw_envelope_set (&env->role, p->role);
    aigw_envelope_set (&env->permissions, p->permissions);
    aigw_envelope_set (&env->models, p->models);
    env->rpm = p->rpm;
    env->expires_ms = p->expires_ms;
    s_content (env, p->store_content);
    //  With the cache off, whether it looks for neighbours does not matter.
    if (p->no_cache)
        s_cache_directive (env, "off");
    else if (p->exact_only)
        s_cache_directive (env, "exact");
    //  The compiled limits (schemas/limits.md 4a): for the model asked on
    //  the data plane; an admin request carries the key's and tenant's
    //  levels and every model's, which GET rate-limits hands to the owner.
    const aigw_limits_t *key_limits = p->key_limits;
    if (!key_limits && streq (p->type, "token"))
        key_limits = self->token_limits;
    char *lm = env->kind == AIGW_KIND_ADMIN
                   ? aigw_limits_lm_report (key_limits, p->tenant_limits)
                   : aigw_limits_lm (key_limits, p->tenant_limits, env->model);
    aigw_envelope_set (&env->limits, lm);
    free (lm);
    const char *need = NULL;
    if (env->kind == AIGW_KIND_CHAT || env->kind == AIGW_KIND_EMBEDDINGS
        || env->kind == AIGW_KIND_MESSAGES || env->kind == AIGW_KIND_COUNT_TOKENS
        || env->kind == AIGW_KIND_RESPONSES)
        need = "inference";
    else if (env->kind == AIGW_KIND_MODELS && !aigw_auth_permits (p->permissions, "inference"))
        need = "models:read";
    if (need && !aigw_auth_permits (p->permissions, need)) {
        char message[160];
        snprintf (message, sizeof message, "This key's role lacks the '%s' permission.", need);
        aigw_envelope_set_error (env, 403, "permission_error", "permission_denied", NULL, message);
        return;
    }
    if (need && streq (need, "inference")) {
        char message[256];
        //  Whether the model exists is the provider's to say: models also
        //  come from the database, which only provider processes watch.
        //  (GET and DELETE of a stored response name no model.)
        if (env->model && !aigw_stage_model_allowed (env, env->model)) {
            snprintf (message, sizeof message, "This key may not use the model '%.160s'.",
                      env->model);
            aigw_envelope_set_error (env, 403, "permission_error", "model_not_allowed", "model",
                                     message);
        }
    }
}

//  Send ENV on and free it.
static void
s_pass (self_t *self, aigw_job_t **job_p, aigw_envelope_t **env_p)
{
    aigw_stage_pass (job_p, env_p);
}

static void
s_unauthorized (aigw_envelope_t *env)
{
    aigw_envelope_set_error (env, 401, "authentication_error", "invalid_api_key", NULL,
                             "Invalid API key. Pass a valid key as "
                             "'Authorization: Bearer KEY' or 'x-api-key: KEY'.");
}

static void
s_unavailable (aigw_envelope_t *env)
{
    aigw_envelope_set_error (env, 503, "service_unavailable", "database_unavailable", NULL,
                             "Keys cannot be checked right now: the database is unreachable.");
}

//  Remember HEX as unknown, evicting the oldest past the cap.
static void
s_negative_add (self_t *self, const char *hex, int64_t now)
{
    if (self->negative_max == 0 || zhashx_lookup (self->negative, hex))
        return;
    while (zhashx_size (self->negative) >= self->negative_max) {
        char *oldest = (char *) zlistx_detach (self->negative_order, NULL);
        zhashx_delete (self->negative, oldest);
        free (oldest);
    }
    int64_t *expiry = malloc (sizeof *expiry);
    *expiry = now + self->negative_ttl_ms;
    zhashx_insert (self->negative, hex, expiry);
    zlistx_add_end (self->negative_order, strdup (hex));
}

//  Keep P for HEX, evicting the oldest past the cap. Takes P.
static void
s_cache_put (self_t *self, const char *hex, s_principal_t *p)
{
    if (!zhashx_lookup (self->cache, hex)) {
        while (zhashx_size (self->cache) >= AIGW_AUTH_CACHE_MAX) {
            char *oldest = (char *) zlistx_detach (self->cache_order, NULL);
            zhashx_delete (self->cache, oldest);
            free (oldest);
        }
        zlistx_add_end (self->cache_order, strdup (hex));
    }
    zhashx_update (self->cache, hex, p);
}

//  Forget everything learnt from the database about HEX, or all ("*").
static void
s_invalidate (self_t *self, const char *hex)
{
    if (streq (hex, "*")) {
        zhashx_purge (self->cache);
        zhashx_purge (self->negative);
        zlistx_purge (self->cache_order);
        zlistx_purge (self->negative_order);
        return;
    }
    //  The order lists keep the name; eviction of a missing name is a no-op.
    zhashx_delete (self->cache, hex);
    zhashx_delete (self->negative, hex);
}

//  Queue a request until its key has been looked up.
static void
s_wait (self_t *self, const char *hex, aigw_job_t *job, aigw_envelope_t *env)
{
    zlistx_t *list = (zlistx_t *) zhashx_lookup (self->waiting, hex);
    if (!list) {
        list = zlistx_new ();
        zhashx_insert (self->waiting, hex, list);
        zlistx_add_end (self->queue, strdup (hex));
    }
    s_wait_t *wait = malloc (sizeof *wait);
    wait->job = job;
    wait->env = env;
    zlistx_add_end (list, wait);
    self->waiting_count++;
}

//  Answer every request waiting for HEX: with the cached principal, as
//  unknown (401), or as unavailable (503) when FAILED and nothing usable is
//  cached.
static void
s_release (self_t *self, const char *hex, bool failed)
{
    zlistx_t *list = (zlistx_t *) zhashx_lookup (self->waiting, hex);
    if (!list)
        return;
    s_principal_t *p = (s_principal_t *) zhashx_lookup (self->cache, hex);
    bool grace = self->down_since && aigw_now_ms () - self->down_since < self->grace_ms;
    s_wait_t *wait;
    while ((wait = (s_wait_t *) zlistx_detach (list, NULL))) {
        if (p && (!failed || grace))
            s_apply (self, wait->env, p);
        else if (failed)
            s_unavailable (wait->env);
        else
            s_unauthorized (wait->env);
        s_pass (self, &wait->job, &wait->env);
        free (wait);
        self->waiting_count--;
    }
    zlistx_destroy (&list);
    zhashx_delete (self->waiting, hex);
}

//  True while the connection is up (lookups can run).
static bool
s_db_is_up (self_t *self)
{
    aigw_pgconn_state_t state = self->db ? aigw_pgconn_state (self->db) : AIGW_PGCONN_DOWN;
    return state == AIGW_PGCONN_IDLE || state == AIGW_PGCONN_BUSY;
}

//  The connection broke, an attempt failed, or a lookup failed: answer
//  what waits (cached keys within the grace period, else 503); the
//  connection reconnects with backoff.
static void
s_db_down (void *arg, const char *why)
{
    self_t *self = (self_t *) arg;
    if (!self->down_since) {
        self->down_since = aigw_now_ms ();
        aigw_warn ("auth: database unavailable (%s); cached keys work for %lld s", why,
                   (long long) (self->grace_ms / 1000));
    }
    for (char *hex = (char *) zlistx_first (self->inflight); hex;
         hex = (char *) zlistx_next (self->inflight))
        s_release (self, hex, true);
    zlistx_purge (self->inflight);
    for (char *hex = (char *) zlistx_first (self->queue); hex;
         hex = (char *) zlistx_next (self->queue))
        s_release (self, hex, true);
    zlistx_purge (self->queue);
}

//  Up and LISTENing: NOTIFYs may have been missed while away, so every
//  cached key is checked again and unknown keys are forgotten.
static void
s_db_up (void *arg)
{
    self_t *self = (self_t *) arg;
    for (s_principal_t *p = (s_principal_t *) zhashx_first (self->cache); p;
         p = (s_principal_t *) zhashx_next (self->cache))
        p->fetched_ms = 0;
    zhashx_purge (self->negative);
    if (self->down_since)
        aigw_info ("auth: database reachable again");
    self->down_since = 0;
}

//  A key changed: the payload is its hash, or "*" for all.
static void
s_db_notify (void *arg, const char *payload)
{
    s_invalidate ((self_t *) arg, payload);
}

//  Compile P's limits from KEY and TENANT (JSON text, NULL for none), the
//  defaults folded into the key's: once per key version, since a change
//  drops the cached principal. P's rpm follows the key's limits. Limits
//  the database holds were checked on the way in; should one not compile,
//  the key gets the defaults and the tenant none, and the log says so.
static void
s_principal_limits (self_t *self, s_principal_t *p, const char *key, const char *tenant)
{
    aigw_limits_error_t err;
    aigw_limits_destroy (&p->key_limits);
    aigw_limits_destroy (&p->tenant_limits);
    p->key_limits = aigw_limits_new (key, &self->defaults, &err);
    if (!p->key_limits) {
        aigw_warn ("auth: key %s: %s; the defaults apply", p->key_id, err.message);
        p->key_limits = aigw_limits_new (NULL, &self->defaults, &err);
    }
    if (tenant && *tenant) {
        p->tenant_limits = aigw_limits_new (tenant, NULL, &err);
        if (!p->tenant_limits)
            aigw_warn ("auth: tenant %s: %s; no tenant limits apply", p->tenant_id, err.message);
    }
    if (aigw_limits_rpm (p->key_limits) > 0)
        p->rpm = aigw_limits_rpm (p->key_limits);
}

//  A lookup answered: cache what was found, remember what was not.
static void
s_db_rows (self_t *self, PGresult *result)
{
    int64_t now = aigw_now_ms ();
    for (int row = 0; row < PQntuples (result); row++) {
        const char *hex = PQgetvalue (result, row, AIGW_CP_KEY_LOOKUP_COL_HASH);
        s_principal_t *p
            = s_principal_new ("key", PQgetvalue (result, row, AIGW_CP_KEY_LOOKUP_COL_ID),
                               PQgetvalue (result, row, AIGW_CP_KEY_LOOKUP_COL_NAME),
                               PQgetvalue (result, row, AIGW_CP_KEY_LOOKUP_COL_TENANT_ID),
                               PQgetvalue (result, row, AIGW_CP_KEY_LOOKUP_COL_TENANT),
                               PQgetvalue (result, row, AIGW_CP_KEY_LOOKUP_COL_ROLE),
                               PQgetvalue (result, row, AIGW_CP_KEY_LOOKUP_COL_PERMISSIONS));
        if (!PQgetisnull (result, row, AIGW_CP_KEY_LOOKUP_COL_MODELS))
            p->models = strdup (PQgetvalue (result, row, AIGW_CP_KEY_LOOKUP_COL_MODELS));
        p->rpm = strtoll (PQgetvalue (result, row, AIGW_CP_KEY_LOOKUP_COL_RPM), NULL, 10);
        s_principal_limits (self, p, PQgetvalue (result, row, AIGW_CP_KEY_LOOKUP_COL_LIMITS),
                            PQgetvalue (result, row, AIGW_CP_KEY_LOOKUP_COL_TENANT_LIMITS));
        p->expires_ms
            = strtoll (PQgetvalue (result, row, AIGW_CP_KEY_LOOKUP_COL_EXPIRES_MS), NULL, 10);
        p->revoked = PQgetvalue (result, row, AIGW_CP_KEY_LOOKUP_COL_REVOKED)[0] == 't';
        p->store_content = PQgetvalue (result, row, AIGW_CP_KEY_LOOKUP_COL_STORE_CONTENT)[0] == 't';
        p->no_cache = PQgetvalue (result, row, AIGW_CP_KEY_LOOKUP_COL_CACHE)[0] == 'f';
        //  NULL (neither set) follows cache.semantic.enabled.
        p->exact_only = PQgetvalue (result, row, AIGW_CP_KEY_LOOKUP_COL_CACHE_SEMANTIC)[0] == 'f';
        p->fetched_ms = now;
        s_cache_put (self, hex, p);
    }
    for (char *hex = (char *) zlistx_first (self->inflight); hex;
         hex = (char *) zlistx_next (self->inflight)) {
        if (!zhashx_lookup (self->cache, hex))
            s_negative_add (self, hex, now);
        s_release (self, hex, false);
    }
    zlistx_purge (self->inflight);
}

//  A lookup ended: cache what it found; an SQL error drops the connection
//  (s_db_down answers what waits). A broken connection or a deadline has
//  dropped it already.
static void
s_db_answer (void *arg, PGresult *result, aigw_pgconn_status_t status)
{
    self_t *self = (self_t *) arg;
    if (status == AIGW_PGCONN_OK && PQresultStatus (result) == PGRES_TUPLES_OK)
        s_db_rows (self, result);
    else if (status == AIGW_PGCONN_OK) {
        const char *sqlstate = PQresultErrorField (result, PG_DIAG_SQLSTATE);
        aigw_warn ("auth: query failed: %s", sqlstate ? sqlstate : "?");
        aigw_pgconn_drop (self->db, "query failed", aigw_now_ms ());
    }
    PQclear (result);
}

//  Send the next batch of queued keys as one query.
static void
s_db_send (self_t *self)
{
    if (!self->db || aigw_pgconn_state (self->db) != AIGW_PGCONN_IDLE
        || zlistx_size (self->queue) == 0)
        return;
    //  A text[] literal of hex strings: {h1,h2,...}; hex needs no quoting.
    size_t count = 0;
    char *array = malloc (AIGW_AUTH_BATCH_MAX * 65 + 3);
    size_t used = 0;
    array[used++] = '{';
    char *hex;
    while (count < AIGW_AUTH_BATCH_MAX && (hex = (char *) zlistx_detach (self->queue, NULL))) {
        if (count)
            array[used++] = ',';
        memcpy (array + used, hex, 64);
        used += 64;
        zlistx_add_end (self->inflight, hex);
        count++;
    }
    array[used++] = '}';
    array[used] = 0;
    const char *params[AIGW_CP_KEY_LOOKUP_COUNT] = {[AIGW_CP_KEY_LOOKUP_HASHES] = array};
    int64_t now = aigw_now_ms ();
    int64_t statement = self->config->db_statement_timeout_ms > 0
                            ? self->config->db_statement_timeout_ms
                            : AIGW_AUTH_STATEMENT_TIMEOUT_MS;
    //  A connection that breaks here fails the batch through s_db_down.
    aigw_pgconn_send (self->db, aigw_cp_sql_key_lookup, AIGW_CP_KEY_LOOKUP_COUNT, params,
                      now + statement + AIGW_AUTH_TICK_MS, s_db_answer, self, now);
    free (array);
}

//  A bearer JWT: verify it and answer ENV with its principal or a 401.
//  Tokens are not cached: verifying one costs microseconds, and each
//  carries its own expiry.
static void
s_handle_token (self_t *self, aigw_envelope_t *env)
{
    aigw_jwt_claims_t claims = {0};
    char err[AIGW_JWT_ERR_MAX];
    int rc = aigw_jwt_verify (self->jwt, env->credential, aigw_now_ms () / 1000, &claims, err,
                              sizeof err);
    OPENSSL_cleanse (env->credential, strlen (env->credential));
    aigw_envelope_set (&env->credential, NULL);
    const char *permissions = rc == 0 ? aigw_auth_role_permissions (claims.role) : NULL;
    if (rc != 0 || !permissions) {
        char message[AIGW_JWT_ERR_MAX + 32];
        //  The verifier's phrases never hold the token or a claim value.
        snprintf (message, sizeof message, "Invalid token: %s.", rc != 0 ? err : "unknown role");
        aigw_envelope_set_error (env, 401, "authentication_error", "invalid_token", NULL, message);
        aigw_jwt_claims_clear (&claims);
        return;
    }
    char *key_id = zsys_sprintf ("jwt:%s", claims.subject);
    s_principal_t *p = s_principal_new ("token", key_id, claims.subject, claims.tenant_id,
                                        claims.tenant_id, claims.role, permissions);
    p->expires_ms = claims.expires_at * 1000;
    p->store_content = aigw_config_stores_content (self->config, claims.tenant_id);
    zstr_free (&key_id);
    s_apply (self, env, p);
    s_principal_destroy (&p);
    aigw_jwt_claims_clear (&claims);
}

//  Resolve one request: at once when we can, else after a lookup.
static void
s_handle (void *arg, aigw_job_t *job, aigw_envelope_t *env)
{
    self_t *self = (self_t *) arg;
    if (!env->credential || !*env->credential) {
        s_unauthorized (env);
        s_pass (self, &job, &env);
        return;
    }
    if (self->jwt && aigw_jwt_looks_like (env->credential)) {
        s_handle_token (self, env);
        s_pass (self, &job, &env);
        return;
    }
    unsigned char digest[32];
    aigw_config_hash_secret (env->credential, digest);
    //  The secret stops here, whatever the verdict.
    OPENSSL_cleanse (env->credential, strlen (env->credential));
    aigw_envelope_set (&env->credential, NULL);
    char hex[65];
    aigw_hex_encode (digest, 32, hex);

    const s_principal_t *p = (const s_principal_t *) zhashx_lookup (self->fixed, hex);
    int64_t now = aigw_now_ms ();
    if (!p) {
        s_principal_t *cached = (s_principal_t *) zhashx_lookup (self->cache, hex);
        bool fresh = cached && cached->fetched_ms && now - cached->fetched_ms < self->cache_ttl_ms;
        bool grace = cached && !s_db_is_up (self) && self->down_since
                     && now - self->down_since < self->grace_ms;
        if (fresh || grace)
            p = cached;
    }
    if (p) {
        s_apply (self, env, p);
        s_pass (self, &job, &env);
        return;
    }
    int64_t *unknown = (int64_t *) zhashx_lookup (self->negative, hex);
    if ((unknown && *unknown > now) || !self->db) {
        s_unauthorized (env);
        s_pass (self, &job, &env);
        return;
    }
    if (aigw_pgconn_state (self->db) == AIGW_PGCONN_DOWN
        || self->waiting_count >= AIGW_AUTH_WAITING_MAX) {
        s_unavailable (env);
        s_pass (self, &job, &env);
        return;
    }
    s_wait (self, hex, job, env);
}

//  Drop expired negative entries.
static void
s_tick (self_t *self, int64_t now)
{
    char *hex = (char *) zlistx_first (self->negative_order);
    while (hex) {
        int64_t *expiry = (int64_t *) zhashx_lookup (self->negative, hex);
        if (expiry && *expiry > now)
            break;
        zhashx_delete (self->negative, hex);
        free (zlistx_detach_cur (self->negative_order));
        hex = (char *) zlistx_first (self->negative_order);
    }
}

static void
s_self_destroy (self_t **self_p)
{
    self_t *self = *self_p;
    if (!self)
        return;
    if (self->waiting) {
        //  Nobody will answer these now; the broker answers at their deadline.
        for (zlistx_t *list = (zlistx_t *) zhashx_first (self->waiting); list;
             list = (zlistx_t *) zhashx_next (self->waiting)) {
            s_wait_t *wait;
            while ((wait = (s_wait_t *) zlistx_detach (list, NULL))) {
                aigw_job_destroy (&wait->job);
                aigw_envelope_destroy (&wait->env);
                free (wait);
            }
            zlistx_destroy (&list);
        }
        zhashx_destroy (&self->waiting);
    }
    aigw_pgconn_destroy (&self->db);
    aigw_jwt_destroy (&self->jwt);
    aigw_limits_destroy (&self->token_limits);
    zhashx_destroy (&self->fixed);
    zhashx_destroy (&self->cache);
    zhashx_destroy (&self->negative);
    zlistx_destroy (&self->cache_order);
    zlistx_destroy (&self->negative_order);
    zlistx_destroy (&self->queue);
    zlistx_destroy (&self->inflight);
    free (self);
    *self_p = NULL;
}

static void
s_int64_free (void **item)
{
    free (*item);
    *item = NULL;
}

//  Build the state.
static self_t *
s_self_new (const aigw_config_t *config)
{
    self_t *self = calloc (1, sizeof *self);
    self->config = config;
    self->fixed = zhashx_new ();
    zhashx_set_destructor (self->fixed, s_principal_free);
    self->cache = zhashx_new ();
    zhashx_set_destructor (self->cache, s_principal_free);
    self->negative = zhashx_new ();
    zhashx_set_destructor (self->negative, s_int64_free);
    self->waiting = zhashx_new ();
    self->cache_order = zlistx_new ();
    self->negative_order = zlistx_new ();
    self->queue = zlistx_new ();
    self->inflight = zlistx_new ();
    zlistx_set_destructor (self->cache_order, (zlistx_destructor_fn *) zstr_free);
    zlistx_set_destructor (self->negative_order, (zlistx_destructor_fn *) zstr_free);
    zlistx_set_destructor (self->queue, (zlistx_destructor_fn *) zstr_free);
    zlistx_set_destructor (self->inflight, (zlistx_destructor_fn *) zstr_free);
    self->cache_ttl_ms = config->auth_cache_ttl_s * 1000;
    self->negative_ttl_ms = config->auth_negative_ttl_s * 1000;
    self->negative_max = (size_t) config->auth_negative_cache_max;
    self->grace_ms = config->auth_db_grace_s * 1000;
    aigw_limits_defaults (config, &self->defaults);
    aigw_limits_error_t limits_err;
    self->token_limits = aigw_limits_new (NULL, &self->defaults, &limits_err);
    if ((config->jwt_hs256_secret && *config->jwt_hs256_secret)
        || (config->jwt_jwks_file && *config->jwt_jwks_file)
        || (config->jwt_jwks_url && *config->jwt_jwks_url)) {
        aigw_jwt_settings_t settings = {.hs256_secret = config->jwt_hs256_secret,
                                        .jwks_file = config->jwt_jwks_file,
                                        .jwks_url = config->jwt_jwks_url,
                                        .issuer = config->jwt_issuer,
                                        .audience = config->jwt_audience,
                                        .tenant_claim = config->jwt_tenant_claim,
                                        .role_claim = config->jwt_role_claim,
                                        .leeway_s = config->jwt_leeway_s};
        char err[AIGW_JWT_ERR_MAX];
        self->jwt = aigw_jwt_new (&settings, err, sizeof err);
        if (!self->jwt) {
            aigw_error ("auth: auth.jwt: %s", err);
            s_self_destroy (&self);
            return NULL;
        }
    }
    char hex[65];
    for (int i = 0; i < config->key_count; i++) {
        const aigw_config_key_t *ck = &config->keys[i];
        char *key_id = zsys_sprintf ("cfg:%s", ck->name);
        s_principal_t *p = s_principal_new ("key", key_id, ck->name, ck->tenant, ck->tenant,
                                            ck->role, aigw_auth_role_permissions (ck->role));
        zstr_free (&key_id);
        p->rpm = ck->rpm;
        p->store_content = aigw_config_stores_content (config, ck->tenant);
        p->no_cache = !ck->cache;
        p->exact_only = !ck->cache_semantic;
        //  A key's rpm is its limits.rpm unless its limits give one.
        char *key_limits = ck->limits ? strdup (ck->limits) : NULL;
        if (ck->rpm > 0) {
            json_t *limits = ck->limits ? json_loads (ck->limits, 0, NULL) : json_object ();
            if (limits && !json_object_get (limits, "rpm"))
                json_object_set_new (limits, "rpm", json_integer (ck->rpm));
            free (key_limits);
            key_limits = limits ? json_dumps (limits, JSON_COMPACT) : NULL;
            json_decref (limits);
        }
        const char *tenant_limits = NULL;
        for (int t = 0; t < config->tenant_count; t++)
            if (streq (config->tenants[t].name, ck->tenant))
                tenant_limits = config->tenants[t].limits;
        s_principal_limits (self, p, key_limits, tenant_limits);
        free (key_limits);
        aigw_hex_encode (ck->sha256, 32, hex);
        zhashx_update (self->fixed, hex, p);
    }
    if (config->master_key && *config->master_key) {
        s_principal_t *p = s_principal_new ("master", "master", "master", "*", "*", "admin", "*");
        p->rpm = config->master_rpm;
        //  The master key has no limits but master_rpm, and no defaults.
        if (config->master_rpm > 0) {
            char limits[64];
            snprintf (limits, sizeof limits, "{\"rpm\":%lld}", (long long) config->master_rpm);
            aigw_limits_error_t err;
            p->key_limits = aigw_limits_new (limits, NULL, &err);
        }
        aigw_hex_encode (config->master_sha256, 32, hex);
        zhashx_update (self->fixed, hex, p);
    }
    if (config->database_url && *config->database_url) {
        aigw_pgconn_settings_t settings = {
            .name = "auth",
            .application_name = "aigw-auth",
            .listen = AIGW_AUTH_CHANNEL,
            .connect_timeout_ms = config->db_connect_timeout_ms > 0 ? config->db_connect_timeout_ms
                                                                    : AIGW_AUTH_CONNECT_TIMEOUT_MS,
            .statement_timeout_ms = config->db_statement_timeout_ms > 0
                                        ? config->db_statement_timeout_ms
                                        : AIGW_AUTH_STATEMENT_TIMEOUT_MS,
            .backoff_min_ms = AIGW_AUTH_BACKOFF_MIN_MS,
            .backoff_max_ms = AIGW_AUTH_BACKOFF_MAX_MS};
        aigw_pgconn_events_t events = {s_db_up, s_db_down, s_db_notify, self};
        self->db = aigw_pgconn_new (config->database_url, &settings, &events);
        if (!self->db) {
            aigw_error ("auth: database.url: libpq cannot use it");
            s_self_destroy (&self);
            return NULL;
        }
    }
    return self;
}

static void *
s_stage_new (aigw_host_t *host, const aigw_config_t *config)
{
    return s_self_new (config);
}

static void
s_stage_destroy (void **state_p)
{
    s_self_destroy ((self_t **) state_p);
}

//  The database connection's socket, while there is one to watch.
static int
s_stage_pollitems (void *state, zmq_pollitem_t *items, int max)
{
    self_t *self = (self_t *) state;
    return max >= 1 && aigw_pgconn_pollitem (self->db, &items[0]) ? 1 : 0;
}

//  Until the reconnect or the database deadline is due.
static int
s_stage_timeout (void *state)
{
    self_t *self = (self_t *) state;
    if (!self->db)
        return -1;
    if (aigw_pgconn_state (self->db) == AIGW_PGCONN_IDLE && zlistx_size (self->queue))
        return 0;  //  lookups to send
    return aigw_pgconn_timeout (self->db, aigw_now_ms ());
}

static void
s_stage_process (void *state, zmq_pollitem_t *items, int count)
{
    self_t *self = (self_t *) state;
    if (!self->db)
        return;
    aigw_pgconn_process (self->db, count == 1 ? items[0].revents : 0, aigw_now_ms ());
    s_db_send (self);
}

static void
s_stage_tick (void *state)
{
    self_t *self = (self_t *) state;
    int64_t now = aigw_now_ms ();
    s_tick (self, now);
    //  A JWKS file is re-read when due (fast, local); a JWKS URL is fetched
    //  at start only, since a fetch would block this loop.
    if (self->jwt && self->config->jwt_jwks_file && *self->config->jwt_jwks_file
        && aigw_jwt_wants_refresh (self->jwt, now / 1000)) {
        char err[AIGW_JWT_ERR_MAX];
        if (aigw_jwt_refresh (self->jwt, err, sizeof err) != 0)
            aigw_warn ("auth: JWKS reload failed: %s", err);
    }
}

const aigw_stage_def_t aigw_auth_stage = {
    .name = "auth",
    .replay_safe = true,
    .state_new = s_stage_new,
    .state_destroy = s_stage_destroy,
    .take = s_handle,
    .pollitems = s_stage_pollitems,
    .timeout = s_stage_timeout,
    .process = s_stage_process,
    .tick = s_stage_tick,
};

//  Resolve ENV with fixed keys and caches only, as s_handle would before a
//  lookup; for the selftest.
static void
s_test_resolve (self_t *self, aigw_envelope_t *env)
{
    if (!env->credential) {
        s_unauthorized (env);
        return;
    }
    unsigned char digest[32];
    aigw_config_hash_secret (env->credential, digest);
    aigw_envelope_set (&env->credential, NULL);
    char hex[65];
    aigw_hex_encode (digest, 32, hex);
    const s_principal_t *p = (const s_principal_t *) zhashx_lookup (self->fixed, hex);
    if (!p)
        p = (const s_principal_t *) zhashx_lookup (self->cache, hex);
    if (p)
        s_apply (self, env, p);
    else
        s_unauthorized (env);
}

double
aigw_auth_bench_cached (int iterations)
{
    char err[AIGW_CONFIG_ERR_MAX];
    aigw_config_t *config = aigw_config_new (NULL, err, sizeof err);
    assert (config);
    self_t *self = s_self_new (config);
    const char *secret = "sk-aigw-0123456789abcdef0123456789abcdef0123456789abcdef";
    unsigned char digest[32];
    char hex[65];
    aigw_config_hash_secret (secret, digest);
    aigw_hex_encode (digest, 32, hex);
    s_principal_t *p = s_principal_new ("key", "3f0c7a52-1111-4c3b-9b1e-5a3f2f0a9d11", "bench",
                                        "0b8f3c3e-2222-4f7e-8c49-2b9e0f7d6a01", "acme", "developer",
                                        aigw_auth_role_permissions ("developer"));
    p->fetched_ms = aigw_now_ms ();
    s_cache_put (self, hex, p);
    int64_t started = zclock_usecs ();
    for (int i = 0; i < iterations; i++) {
        aigw_envelope_t *env = aigw_envelope_new ();
        env->kind = AIGW_KIND_CHAT;
        aigw_envelope_set (&env->model, "gpt-4o-mini");
        aigw_envelope_set (&env->credential, secret);
        //  The same steps as s_handle for a cache hit.
        aigw_config_hash_secret (env->credential, digest);
        OPENSSL_cleanse (env->credential, strlen (env->credential));
        aigw_envelope_set (&env->credential, NULL);
        aigw_hex_encode (digest, 32, hex);
        s_principal_t *hit = (s_principal_t *) zhashx_lookup (self->cache, hex);
        assert (hit && aigw_now_ms () - hit->fetched_ms < self->cache_ttl_ms);
        s_apply (self, env, hit);
        assert (env->status == 0);
        aigw_envelope_destroy (&env);
    }
    double ns = (zclock_usecs () - started) * 1000.0 / iterations;
    s_self_destroy (&self);
    aigw_config_destroy (&config);
    return ns;
}

//  Base64url (no padding) of LEN bytes into OUT; for the selftest's tokens.
static void
s_test_b64url (const unsigned char *data, size_t len, char *out)
{
    static const char alphabet[]
        = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    size_t o = 0;
    for (size_t i = 0; i < len; i += 3) {
        uint32_t v = (uint32_t) data[i] << 16;
        if (i + 1 < len)
            v |= (uint32_t) data[i + 1] << 8;
        if (i + 2 < len)
            v |= data[i + 2];
        out[o++] = alphabet[(v >> 18) & 63];
        out[o++] = alphabet[(v >> 12) & 63];
        if (i + 1 < len)
            out[o++] = alphabet[(v >> 6) & 63];
        if (i + 2 < len)
            out[o++] = alphabet[v & 63];
    }
    out[o] = 0;
}

//  An HS256 token for PAYLOAD signed with SECRET; caller frees.
static char *
s_test_token (const char *payload, const char *secret)
{
    const char *header = "{\"alg\":\"HS256\",\"typ\":\"JWT\"}";
    char h[128], b[512], sig[64];
    s_test_b64url ((const unsigned char *) header, strlen (header), h);
    s_test_b64url ((const unsigned char *) payload, strlen (payload), b);
    char *signing = zsys_sprintf ("%s.%s", h, b);
    unsigned char mac[32];
    unsigned int mac_len = 0;
    HMAC (EVP_sha256 (), secret, (int) strlen (secret), (const unsigned char *) signing,
          strlen (signing), mac, &mac_len);
    s_test_b64url (mac, mac_len, sig);
    char *token = zsys_sprintf ("%s.%s", signing, sig);
    zstr_free (&signing);
    return token;
}

void
aigw_auth_test (bool verbose)
{
    char err[AIGW_CONFIG_ERR_MAX];
    setenv ("AIGW_MASTER_KEY", "sk-master-test", 1);
    char *saved_url = getenv ("DATABASE_URL") ? strdup (getenv ("DATABASE_URL")) : NULL;
    unsetenv ("DATABASE_URL");
    aigw_config_t *config = aigw_config_new (NULL, err, sizeof err);
    assert (config);
    unsetenv ("AIGW_MASTER_KEY");
    self_t *self = s_self_new (config);
    assert (self && !self->db);

    //  Master key resolves to admin of every tenant; credential cleared.
    aigw_envelope_t *env = aigw_envelope_new ();
    env->kind = AIGW_KIND_CHAT;
    aigw_envelope_set (&env->model, "gpt-4o-mini");
    aigw_envelope_set (&env->credential, "sk-master-test");
    s_test_resolve (self, env);
    assert (env->status == 0);
    assert (streq (env->key_id, "master") && streq (env->principal_type, "master"));
    assert (streq (env->tenant_id, "*") && streq (env->permissions, "*"));
    assert (env->credential == NULL);
    assert (env->limits == NULL);  //  no master_rpm: no limits

    //  An unknown model passes: the provider, which knows the database's
    //  models too, answers 404.
    aigw_envelope_set (&env->credential, "sk-master-test");
    aigw_envelope_set (&env->model, "no-such-model");
    s_test_resolve (self, env);
    assert (env->status == 0);
    aigw_envelope_destroy (&env);

    //  A database key in the cache: viewer may not call models; a model list
    //  limits the developer; revoked and expired keys are 401.
    unsigned char digest[32];
    char hex[65];
    aigw_config_hash_secret ("sk-db-key", digest);
    aigw_hex_encode (digest, 32, hex);
    s_principal_t *p = s_principal_new ("key", "k1", "n", "t1", "tenant", "viewer",
                                        aigw_auth_role_permissions ("viewer"));
    p->fetched_ms = aigw_now_ms ();
    s_cache_put (self, hex, p);
    env = aigw_envelope_new ();
    env->kind = AIGW_KIND_CHAT;
    aigw_envelope_set (&env->model, "gpt-4o-mini");
    aigw_envelope_set (&env->credential, "sk-db-key");
    s_test_resolve (self, env);
    assert (env->status == 403 && streq (env->err_code, "permission_denied"));
    aigw_envelope_destroy (&env);
    env = aigw_envelope_new ();
    env->kind = AIGW_KIND_MODELS;
    aigw_envelope_set (&env->credential, "sk-db-key");
    s_test_resolve (self, env);
    assert (env->status == 0 && streq (env->role, "viewer"));
    aigw_envelope_destroy (&env);

    free (p->role);
    p->role = strdup ("developer");
    free (p->permissions);
    p->permissions = strdup (aigw_auth_role_permissions ("developer"));
    p->models = strdup ("gpt-4o");
    env = aigw_envelope_new ();
    env->kind = AIGW_KIND_CHAT;
    aigw_envelope_set (&env->model, "gpt-4o-mini");
    aigw_envelope_set (&env->credential, "sk-db-key");
    s_test_resolve (self, env);
    assert (env->status == 403 && streq (env->err_code, "model_not_allowed"));
    aigw_envelope_set (&env->model, "gpt-4o");
    aigw_envelope_set (&env->credential, "sk-db-key");
    env->status = 0;
    s_test_resolve (self, env);
    assert (env->status == 0 && streq (env->models, "gpt-4o"));
    aigw_envelope_destroy (&env);

    //  Limits: compiled once per key version, the defaults folded into the
    //  key's, the model's parts appended per request; rpm follows them.
    s_principal_limits (self, p, "{\"rpm\":5,\"models\":{\"gpt-4o\":{\"tpm\":9}}}",
                        "{\"rpm\":50,\"models\":{\"gpt-4o\":{\"rpm\":20}}}");
    env = aigw_envelope_new ();
    env->kind = AIGW_KIND_CHAT;
    aigw_envelope_set (&env->model, "gpt-4o");
    aigw_envelope_set (&env->credential, "sk-db-key");
    s_test_resolve (self, env);
    assert (env->status == 0 && env->rpm == 5);
    assert (streq (env->limits, "k=rpm:5;t=rpm:50;km=tpm:9;tm=rpm:20"));
    aigw_envelope_destroy (&env);
    env = aigw_envelope_new ();
    env->kind = AIGW_KIND_ADMIN;
    aigw_envelope_set (&env->credential, "sk-db-key");
    s_test_resolve (self, env);
    assert (env->status == 0
            && streq (env->limits, "k=rpm:5;t=rpm:50;km:gpt-4o=tpm:9;tm:gpt-4o=rpm:20"));
    aigw_envelope_destroy (&env);
    //  No limits of its own: the default rpm; bad stored limits: defaults.
    s_principal_limits (self, p, "{}", NULL);
    assert (p->rpm == config->default_rpm);
    s_principal_limits (self, p, "{\"rpm\":0}", "{\"rpm\":\"x\"}");
    assert (p->key_limits && !p->tenant_limits && p->rpm == config->default_rpm);

    //  Cache settings become directives after the client's: semantic off
    //  is "exact"; the cache off is "off" alone, whatever semantic says.
    p->exact_only = true;
    env = aigw_envelope_new ();
    env->kind = AIGW_KIND_CHAT;
    aigw_envelope_set (&env->model, "gpt-4o");
    aigw_envelope_set (&env->credential, "sk-db-key");
    aigw_envelope_set (&env->cache_control, "no-cache");
    s_test_resolve (self, env);
    assert (env->status == 0 && streq (env->cache_control, "no-cache,exact"));
    aigw_envelope_set (&env->cache_control, NULL);
    aigw_envelope_set (&env->credential, "sk-db-key");
    p->no_cache = true;
    s_test_resolve (self, env);
    assert (env->status == 0 && streq (env->cache_control, "off"));
    aigw_envelope_destroy (&env);
    p->no_cache = p->exact_only = false;

    p->expires_ms = aigw_now_ms () - 1;
    env = aigw_envelope_new ();
    aigw_envelope_set (&env->credential, "sk-db-key");
    s_test_resolve (self, env);
    assert (env->status == 401 && strstr (env->err_message, "expired"));
    aigw_envelope_destroy (&env);
    p->expires_ms = 0;
    p->revoked = true;
    env = aigw_envelope_new ();
    aigw_envelope_set (&env->credential, "sk-db-key");
    s_test_resolve (self, env);
    assert (env->status == 401 && strstr (env->err_message, "revoked"));
    assert (!strstr (env->err_message, "sk-db-key"));
    aigw_envelope_destroy (&env);

    //  NOTIFY payloads drop one key, or all.
    s_invalidate (self, hex);
    assert (zhashx_lookup (self->cache, hex) == NULL);
    s_negative_add (self, hex, aigw_now_ms ());
    assert (zhashx_lookup (self->negative, hex));
    s_invalidate (self, "*");
    assert (zhashx_size (self->negative) == 0);

    //  The negative cache stays bounded and expires.
    for (size_t i = 0; i < self->negative_max + 50; i++) {
        char name[65];
        snprintf (name, sizeof name, "%064zu", i);
        s_negative_add (self, name, 1000);
    }
    assert (zhashx_size (self->negative) == self->negative_max);
    s_tick (self, 1000 + self->negative_ttl_ms);
    assert (zhashx_size (self->negative) == 0);

    assert (aigw_auth_permits ("a,keys:read,b", "keys:read"));
    assert (!aigw_auth_permits ("a,keys:reader", "keys:read"));
    assert (aigw_auth_permits ("*", "anything"));
    assert (!aigw_auth_permits (NULL, "x"));

    s_self_destroy (&self);
    s_self_destroy (&self);

    //  Admin tokens: an HS256 JWT maps to its tenant and role; a bad
    //  signature, an expired token or an unknown role is 401.
    const char *jwt_secret = "selftest-secret-selftest-secret-0123456789";
    config->jwt_hs256_secret = strdup (jwt_secret);
    self = s_self_new (config);
    assert (self && self->jwt);
    char payload[256];
    snprintf (payload, sizeof payload,
              "{\"sub\":\"ops\",\"tenant_id\":\"t-9\",\"role\":\"tenant-admin\","
              "\"exp\":%lld}",
              (long long) (aigw_now_ms () / 1000 + 600));
    char *token = s_test_token (payload, jwt_secret);
    env = aigw_envelope_new ();
    env->kind = AIGW_KIND_ADMIN;
    aigw_envelope_set (&env->credential, token);
    s_handle_token (self, env);
    assert (env->status == 0 && streq (env->principal_type, "token"));
    assert (streq (env->tenant_id, "t-9") && streq (env->role, "tenant-admin"));
    assert (streq (env->key_id, "jwt:ops") && env->credential == NULL);
    assert (aigw_auth_permits (env->permissions, "keys:write"));
    aigw_envelope_destroy (&env);
    zstr_free (&token);
    token = s_test_token (payload, "another-secret-another-secret-0123456789");
    env = aigw_envelope_new ();
    aigw_envelope_set (&env->credential, token);
    s_handle_token (self, env);
    assert (env->status == 401 && streq (env->err_code, "invalid_token"));
    aigw_envelope_destroy (&env);
    zstr_free (&token);
    snprintf (payload, sizeof payload,
              "{\"sub\":\"ops\",\"tenant_id\":\"t-9\",\"role\":\"captain\",\"exp\":%lld}",
              (long long) (aigw_now_ms () / 1000 + 600));
    token = s_test_token (payload, jwt_secret);
    env = aigw_envelope_new ();
    aigw_envelope_set (&env->credential, token);
    s_handle_token (self, env);
    assert (env->status == 401 && strstr (env->err_message, "unknown role"));
    aigw_envelope_destroy (&env);
    zstr_free (&token);
    snprintf (payload, sizeof payload,
              "{\"sub\":\"ops\",\"tenant_id\":\"t-9\",\"role\":\"viewer\",\"exp\":%lld}",
              (long long) (aigw_now_ms () / 1000 - 3600));
    token = s_test_token (payload, jwt_secret);
    env = aigw_envelope_new ();
    aigw_envelope_set (&env->credential, token);
    s_handle_token (self, env);
    assert (env->status == 401 && strstr (env->err_message, "expired"));
    assert (!strstr (env->err_message, token));
    aigw_envelope_destroy (&env);
    zstr_free (&token);
    s_self_destroy (&self);

    aigw_config_destroy (&config);
    if (saved_url) {
        setenv ("DATABASE_URL", saved_url, 1);
        free (saved_url);
    }
    if (verbose)
        printf ("auth: ok\n");
}
