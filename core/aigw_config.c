/*  aigw_config: the settings of one aigw process.

    The file is parsed with libyaml's document API, so every node keeps its
    line for error messages. The loader walks the document against the
    keyword tables that modules register (name, type, range, default, field
    offset; see aigw_config.h): anything in no table is an error that names
    it. Scalars are read as text, ${VAR} is expanded, and only then is the
    text type-checked, so `port: ${PORT}` works.

    Secrets: API key plaintexts are hashed as soon as they are read and every
    copy the loader made (file buffer, libyaml's buffers and nodes, expanded
    strings) is wiped with OPENSSL_cleanse before it is freed. Error messages
    name settings, never values. */
#define PCRE2_CODE_UNIT_WIDTH 8

#include "aigw_config.h"
#include "aigw_hex.h"
#include "aigw_log.h"
#include "aigw_text.h"

#include <assert.h>
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <pcre2.h>
#include <yaml.h>

//  Ranges that a value must fall in: wide enough for any real deployment,
//  narrow enough that arithmetic on them (heartbeat * liveness, ...) cannot
//  overflow. Modules' own ranges live in their tables.
#define AIGW_CONFIG_PORT_MIN           1
#define AIGW_CONFIG_PORT_MAX           65535
#define AIGW_CONFIG_BODY_BYTES_MAX     ((int64_t) 1 << 30)
#define AIGW_CONFIG_EDGE_THREADS_MAX   100000
#define AIGW_CONFIG_LIVENESS_MAX       100
#define AIGW_CONFIG_QUEUE_MAX_MAX      10000000
#define AIGW_CONFIG_CREDIT_MAX         10000000
#define AIGW_CONFIG_PROMPT_CHARS_MAX   ((int64_t) 1 << 30)
#define AIGW_CONFIG_CACHE_TTL_S_MAX    31536000
#define AIGW_CONFIG_CACHE_BYTES_MAX    ((int64_t) 1 << 40)
#define AIGW_CONFIG_DB_POOL_MAX        64
#define AIGW_CONFIG_TTL_S_MAX          31536000
#define AIGW_CONFIG_JWT_LEEWAY_MAX     3600
#define AIGW_CONFIG_NEGATIVE_CACHE_MAX 10000000

//  Caps on what the loader itself handles.
#define AIGW_CONFIG_SETTING_MAX    128            //  longest setting path in a message
#define AIGW_CONFIG_PROBLEM_MAX    256            //  longest problem text in a message
#define AIGW_CONFIG_VALUE_MAX      (1024 * 1024)  //  longest scalar after ${VAR}
#define AIGW_CONFIG_ENV_NAME_MAX   128            //  longest VAR in ${VAR}
#define AIGW_CONFIG_SEEN_MAX       32             //  settings of one section whose lines are kept
#define AIGW_CONFIG_SHA256_HEX     64             //  hex digits of a SHA-256
#define AIGW_CONFIG_SHA256_BYTES   32             //  bytes of a SHA-256
#define AIGW_CONFIG_REAL_CHARS_MAX 32             //  longest decimal number text
#define AIGW_CONFIG_REGISTRY_MAX   64             //  keyword tables registered
#define AIGW_CONFIG_CHECKS_MAX     8              //  deployment checks registered
#define AIGW_CONFIG_JSON_DEPTH_MAX 16             //  deepest mapping read as JSON

//  Where environment errors say they come from.
#define AIGW_CONFIG_ENV_SOURCE "environment"

//  The sections of list entries, as registered (see s_load_keys and friends).
#define S_KEY_ITEM        "auth.keys[]"
#define S_TENANT_ITEM     "ratelimit.tenants[]"
#define S_RULE_ITEM       "guardrail.deny[]"
#define S_MODEL_ITEM      "models[]"
#define S_DEPLOYMENT_ITEM "models[].deployments[]"

//  The models served when the file lists none: all OpenAI.
static const char *s_default_models[] = {"gpt-4o-mini", "gpt-4o", "text-embedding-3-small"};
#define AIGW_CONFIG_DEFAULT_MODEL_PROVIDER "openai"

//  The registered keyword tables: filled by constructors before main, read
//  only after, so threads share them without a lock.
typedef struct {
    const char *section;                    //  where the rows live ("" = top level)
    const aigw_config_keyword_t *keywords;  //  the rows, ended by a NULL name
} s_registration_t;

static s_registration_t s_registry[AIGW_CONFIG_REGISTRY_MAX];
static size_t s_registry_size;  //  entries used in s_registry
static aigw_config_deployment_fn *s_deployment_checks[AIGW_CONFIG_CHECKS_MAX];
static size_t s_deployment_check_count;       //  entries used in s_deployment_checks
static aigw_config_check_fn *s_limits_check;  //  checks a limits mapping, NULL = none

typedef aigw_config_keyword_t s_setting_t;
typedef aigw_config_loader_t s_loader_t;

//  The line of each setting one section gave, by name.
typedef struct {
    struct {
        const char *name;  //  setting name (the row's, outlives the load)
        size_t line;       //  line of its value
    } at[AIGW_CONFIG_SEEN_MAX];
    size_t count;  //  entries used in at
} s_seen_t;

//  Lines of what the model checks after the load refer to.
typedef struct {
    size_t model[AIGW_CONFIG_MAX_MODELS];     //  each models[] entry
    bool short_form[AIGW_CONFIG_MAX_MODELS];  //  entry used provider/upstream_model
    //  each deployments[] entry
    size_t deployment[AIGW_CONFIG_MAX_MODELS][AIGW_CONFIG_MAX_DEPLOYMENTS];
    //  each deployments[] entry's id, 0 if defaulted
    size_t deployment_id[AIGW_CONFIG_MAX_MODELS][AIGW_CONFIG_MAX_DEPLOYMENTS];
    size_t fallback[AIGW_CONFIG_MAX_MODELS][AIGW_CONFIG_MAX_FALLBACKS];  //  each fallbacks[] entry
} s_lines_t;

//  The state of one load; lives on aigw_config_new's stack.
struct _aigw_config_loader_t {
    const char *source;          //  file name (or "environment") for messages
    yaml_document_t *doc;        //  document being walked, NULL outside
    aigw_config_t *config;       //  config being filled
    char *err;                   //  caller's error buffer, may be NULL
    size_t err_size;             //  its size
    aigw_config_model_t *model;  //  models[] entry being read, for its lists
    s_lines_t *lines;            //  lines for the checks after the load
};

//  One auth.keys entry as read, before the secret is hashed.
typedef struct {
    char *name;           //  key name
    char *key;            //  plaintext secret, wiped after hashing
    char *key_sha256;     //  hex SHA-256, instead of key
    char *tenant;         //  tenant name
    char *role;           //  role name, default AIGW_DEFAULT_ROLE
    int64_t rpm;          //  requests per minute, 0 = default_rpm
    char *limits;         //  limits as JSON text, NULL = none
    bool cache;           //  the response cache answers its requests
    bool cache_semantic;  //  semantic lookups as cache.semantic says; false = exact only
} s_key_item_t;

//  Core's own rows, in the public macros' shorter spelling.
#define S_STRING(key, type, field, fn, ...) \
    AIGW_CONFIG_KW_STRING (key, type, field, fn, __VA_ARGS__)
#define S_NUMBER(key, kind, type, field, lo, hi, ...) \
    AIGW_CONFIG_KW_NUMBER (key, kind, type, field, lo, hi, __VA_ARGS__)
#define S_LIST(key, fn)                                       \
    {                                                         \
        .name = (key), .kind = AIGW_CONFIG_LIST, .list = (fn) \
    }
//  A mapping kept as JSON text: limits, checked by the registered check.
#define S_LIMITS(type, field)                                                         \
    {                                                                                 \
        .name = "limits", .kind = AIGW_CONFIG_JSON, .offset = offsetof (type, field), \
        .check = s_check_limits                                                       \
    }
#define S_INT   AIGW_CONFIG_INT
#define S_INT64 AIGW_CONFIG_INT64
#define S_SIZE  AIGW_CONFIG_SIZE

static aigw_config_check_fn s_check_endpoint, s_check_log_level, s_check_log_format, s_check_regex,
    s_check_sha256, s_check_limits;
static aigw_config_list_fn s_load_keys, s_load_rules, s_load_models, s_load_deployments,
    s_load_fallbacks, s_load_content_tenants, s_load_tenants;

static const s_setting_t s_server_settings[] = {
    S_STRING ("host", aigw_config_t, host, NULL, AIGW_DEFAULT_HOST, .env = "AIGW_HOST"),
    S_NUMBER ("port", S_INT, aigw_config_t, port, AIGW_CONFIG_PORT_MIN, AIGW_CONFIG_PORT_MAX,
              AIGW_DEFAULT_PORT, .env = "AIGW_PORT"),
    S_NUMBER ("max_body_bytes", S_SIZE, aigw_config_t, max_body_bytes, 1,
              AIGW_CONFIG_BODY_BYTES_MAX, AIGW_DEFAULT_MAX_BODY_BYTES),
    S_NUMBER ("request_timeout_ms", S_INT64, aigw_config_t, request_timeout_ms,
              AIGW_CONFIG_TIMEOUT_MS_MIN, AIGW_CONFIG_TIMEOUT_MS_MAX,
              AIGW_DEFAULT_REQUEST_TIMEOUT_MS),
    S_NUMBER ("read_timeout_ms", S_INT, aigw_config_t, read_timeout_ms, AIGW_CONFIG_TIMEOUT_MS_MIN,
              AIGW_CONFIG_TIMEOUT_MS_MAX, AIGW_DEFAULT_READ_TIMEOUT_MS),
    S_NUMBER ("threads", S_INT, aigw_config_t, edge_threads, 1, AIGW_CONFIG_EDGE_THREADS_MAX,
              AIGW_DEFAULT_EDGE_THREADS),
    S_NUMBER ("pipelines", S_INT, aigw_config_t, pipelines, 1, AIGW_CONFIG_PIPELINES_MAX,
              AIGW_DEFAULT_PIPELINES),
    AIGW_CONFIG_KW_END};

static const s_setting_t s_broker_settings[]
    = {S_STRING ("endpoint", aigw_config_t, broker_endpoint, s_check_endpoint,
                 AIGW_DEFAULT_BROKER_ENDPOINT, .env = "AIGW_BROKER"),
       S_NUMBER ("heartbeat_ms", S_INT, aigw_config_t, heartbeat_ms, AIGW_CONFIG_TIMEOUT_MS_MIN,
                 AIGW_CONFIG_TIMEOUT_MS_MAX, AIGW_DEFAULT_HEARTBEAT_MS),
       S_NUMBER ("liveness", S_INT, aigw_config_t, liveness, 1, AIGW_CONFIG_LIVENESS_MAX,
                 AIGW_DEFAULT_LIVENESS),
       S_NUMBER ("queue_max", S_INT, aigw_config_t, queue_max, 1, AIGW_CONFIG_QUEUE_MAX_MAX,
                 AIGW_DEFAULT_QUEUE_MAX),
       S_NUMBER ("worker_credit", S_INT, aigw_config_t, worker_credit, 1, AIGW_CONFIG_CREDIT_MAX,
                 AIGW_DEFAULT_WORKER_CREDIT),
       S_STRING ("peer_bind", aigw_config_t, peer_bind, s_check_endpoint, NULL,
                 .env = "AIGW_PEER_BIND"),
       S_STRING ("peer_advertise", aigw_config_t, peer_advertise, NULL, NULL,
                 .env = "AIGW_PEER_ADVERTISE"),
       AIGW_CONFIG_KW_END};

//  Admin tokens: JWTs checked by actors/auth/aigw_jwt.c.
static const s_setting_t s_jwt_settings[]
    = {S_STRING ("hs256_secret", aigw_config_t, jwt_hs256_secret, NULL, NULL),
       S_STRING ("jwks_file", aigw_config_t, jwt_jwks_file, NULL, NULL),
       S_STRING ("jwks_url", aigw_config_t, jwt_jwks_url, aigw_config_check_url, NULL),
       S_STRING ("issuer", aigw_config_t, jwt_issuer, NULL, NULL),
       S_STRING ("audience", aigw_config_t, jwt_audience, NULL, NULL),
       S_STRING ("tenant_claim", aigw_config_t, jwt_tenant_claim, NULL, NULL),
       S_STRING ("role_claim", aigw_config_t, jwt_role_claim, NULL, NULL),
       S_NUMBER ("leeway_s", S_INT, aigw_config_t, jwt_leeway_s, 0, AIGW_CONFIG_JWT_LEEWAY_MAX, 0),
       AIGW_CONFIG_KW_END};

static const s_setting_t s_auth_settings[]
    = {S_STRING ("master_key", aigw_config_t, master_key, NULL, NULL, .env = "AIGW_MASTER_KEY"),
       S_LIST ("keys", s_load_keys),
       S_NUMBER ("cache_ttl_s", S_INT64, aigw_config_t, auth_cache_ttl_s, 1, AIGW_CONFIG_TTL_S_MAX,
                 AIGW_DEFAULT_AUTH_CACHE_TTL_S),
       S_NUMBER ("negative_cache_max", S_INT, aigw_config_t, auth_negative_cache_max, 0,
                 AIGW_CONFIG_NEGATIVE_CACHE_MAX, AIGW_DEFAULT_AUTH_NEGATIVE_CACHE_MAX),
       S_NUMBER ("negative_ttl_s", S_INT64, aigw_config_t, auth_negative_ttl_s, 1,
                 AIGW_CONFIG_TTL_S_MAX, AIGW_DEFAULT_AUTH_NEGATIVE_TTL_S),
       S_NUMBER ("db_grace_s", S_INT64, aigw_config_t, auth_db_grace_s, 0, AIGW_CONFIG_TTL_S_MAX,
                 AIGW_DEFAULT_AUTH_DB_GRACE_S),
       AIGW_CONFIG_KW_END};

static const s_setting_t s_database_settings[]
    = {S_STRING ("url", aigw_config_t, database_url, NULL, NULL, .env = "DATABASE_URL"),
       S_NUMBER ("pool_size", S_INT, aigw_config_t, db_pool_size, 1, AIGW_CONFIG_DB_POOL_MAX,
                 AIGW_DEFAULT_DB_POOL_SIZE),
       S_NUMBER ("connect_timeout_ms", S_INT64, aigw_config_t, db_connect_timeout_ms,
                 AIGW_CONFIG_TIMEOUT_MS_MIN, AIGW_CONFIG_TIMEOUT_MS_MAX,
                 AIGW_DEFAULT_DB_CONNECT_TIMEOUT_MS),
       S_NUMBER ("statement_timeout_ms", S_INT64, aigw_config_t, db_statement_timeout_ms,
                 AIGW_CONFIG_TIMEOUT_MS_MIN, AIGW_CONFIG_TIMEOUT_MS_MAX,
                 AIGW_DEFAULT_DB_STATEMENT_TIMEOUT_MS),
       AIGW_CONFIG_KW_END};

static const s_setting_t s_ratelimit_settings[]
    = {S_NUMBER ("default_rpm", S_INT64, aigw_config_t, default_rpm, 1, AIGW_CONFIG_RPM_MAX,
                 AIGW_DEFAULT_RPM),
       S_NUMBER ("master_rpm", S_INT64, aigw_config_t, master_rpm, 0, AIGW_CONFIG_RPM_MAX, 0),
       S_NUMBER ("default_max_tokens", S_INT64, aigw_config_t, rl_default_max_tokens, 1,
                 AIGW_CONFIG_RPM_MAX, AIGW_DEFAULT_RL_MAX_TOKENS),
       S_NUMBER ("settle_grace_ms", S_INT64, aigw_config_t, rl_settle_grace_ms, 0,
                 AIGW_CONFIG_TIMEOUT_MS_MAX, AIGW_DEFAULT_RL_SETTLE_GRACE_MS),
       S_NUMBER ("snapshot_ms", S_INT64, aigw_config_t, rl_snapshot_ms, AIGW_CONFIG_TIMEOUT_MS_MIN,
                 AIGW_CONFIG_TIMEOUT_MS_MAX, AIGW_DEFAULT_RL_SNAPSHOT_MS),
       S_LIST ("tenants", s_load_tenants),
       AIGW_CONFIG_KW_END};

//  ratelimit.default: what a key that sets no value of a kind gets (0 =
//  none; rpm 0 leaves ratelimit.default_rpm in force).
static const s_setting_t s_ratelimit_default_settings[]
    = {S_NUMBER ("rpm", S_INT64, aigw_config_t, rl_default_rpm, 0, AIGW_CONFIG_RPM_MAX, 0),
       S_NUMBER ("rpd", S_INT64, aigw_config_t, rl_default_rpd, 0, AIGW_CONFIG_RPM_MAX, 0),
       S_NUMBER ("tpm", S_INT64, aigw_config_t, rl_default_tpm, 0, AIGW_CONFIG_RPM_MAX, 0),
       S_NUMBER ("concurrency", S_INT64, aigw_config_t, rl_default_concurrency, 0,
                 AIGW_CONFIG_RPM_MAX, 0),
       AIGW_CONFIG_KW_END};

//  One ratelimit.tenants entry; base struct aigw_config_tenant_t.
static const s_setting_t s_tenant_settings[]
    = {S_STRING ("name", aigw_config_tenant_t, name, NULL, NULL),
       S_LIMITS (aigw_config_tenant_t, limits), AIGW_CONFIG_KW_END};

static const s_setting_t s_guardrail_settings[]
    = {S_NUMBER ("max_prompt_chars", S_INT64, aigw_config_t, max_prompt_chars, 1,
                 AIGW_CONFIG_PROMPT_CHARS_MAX, AIGW_DEFAULT_MAX_PROMPT_CHARS),
       S_LIST ("deny", s_load_rules), AIGW_CONFIG_KW_END};

static const s_setting_t s_cache_settings[]
    = {AIGW_CONFIG_KW_BOOL ("enabled", aigw_config_t, cache_enabled, true),
       S_NUMBER ("ttl_s", S_INT64, aigw_config_t, cache_ttl_s, 1, AIGW_CONFIG_CACHE_TTL_S_MAX,
                 AIGW_DEFAULT_CACHE_TTL_S),
       S_NUMBER ("max_bytes", S_SIZE, aigw_config_t, cache_max_bytes, 1,
                 AIGW_CONFIG_CACHE_BYTES_MAX, AIGW_DEFAULT_CACHE_MAX_BYTES),
       S_NUMBER ("max_ttl_s", S_INT64, aigw_config_t, cache_max_ttl_s, 1,
                 AIGW_CONFIG_CACHE_TTL_S_MAX, AIGW_DEFAULT_CACHE_MAX_TTL_S),
       AIGW_CONFIG_KW_BOOL ("persist", aigw_config_t, cache_persist, true),
       AIGW_CONFIG_KW_END};

//  cache.semantic: the vectors file is mapped by each cache stage.
static const s_setting_t s_cache_semantic_settings[]
    = {AIGW_CONFIG_KW_BOOL ("enabled", aigw_config_t, cache_semantic_enabled, false),
       AIGW_CONFIG_KW_STRING ("vectors", aigw_config_t, cache_semantic_vectors, NULL, NULL),
       AIGW_CONFIG_KW_STRING ("model", aigw_config_t, cache_semantic_model, NULL, NULL),
       S_NUMBER ("timeout_ms", S_INT64, aigw_config_t, cache_semantic_timeout_ms, 1, 600000,
                 AIGW_DEFAULT_CACHE_EMBED_TIMEOUT_MS),
       AIGW_CONFIG_KW_REAL ("threshold", aigw_config_t, cache_semantic_threshold, 0.0, 1.0,
                            AIGW_DEFAULT_CACHE_SIMILARITY),
       AIGW_CONFIG_KW_END};

//  usage: the rest of its keywords come from actors/usage; a list is the
//  loader's to read.
static const s_setting_t s_usage_settings[]
    = {S_LIST ("store_content_tenants", s_load_content_tenants), AIGW_CONFIG_KW_END};

//  The top level: providers, router and router.breaker come from
//  actors/provider (aigw_adapter.c, aigw_router.c, aigw_breaker.c).
static const s_setting_t s_root_settings[]
    = {S_LIST ("models", s_load_models),
       S_STRING ("log_level", aigw_config_t, log_level, s_check_log_level, AIGW_DEFAULT_LOG_LEVEL,
                 .env = "AIGW_LOG_LEVEL"),
       S_STRING ("log_format", aigw_config_t, log_format, s_check_log_format, "text",
                 .env = "AIGW_LOG_FORMAT"),
       //  The older spelling of database.url, still read.
       S_STRING ("database_url", aigw_config_t, database_url, NULL, NULL), AIGW_CONFIG_KW_END};

//  One auth.keys entry; base struct s_key_item_t.
static const s_setting_t s_key_settings[]
    = {S_STRING ("name", s_key_item_t, name, NULL, NULL),
       S_STRING ("key", s_key_item_t, key, NULL, NULL),
       S_STRING ("key_sha256", s_key_item_t, key_sha256, s_check_sha256, NULL),
       S_STRING ("tenant", s_key_item_t, tenant, NULL, NULL),
       S_STRING ("role", s_key_item_t, role, NULL, AIGW_DEFAULT_ROLE),
       S_NUMBER ("rpm", S_INT64, s_key_item_t, rpm, 0, AIGW_CONFIG_RPM_MAX, 0),
       S_LIMITS (s_key_item_t, limits),
       AIGW_CONFIG_KW_BOOL ("cache", s_key_item_t, cache, true),
       AIGW_CONFIG_KW_BOOL ("cache_semantic", s_key_item_t, cache_semantic, true),
       AIGW_CONFIG_KW_END};

//  One guardrail.deny entry; base struct aigw_config_rule_t.
static const s_setting_t s_rule_settings[]
    = {S_STRING ("name", aigw_config_rule_t, name, NULL, NULL),
       S_STRING ("pattern", aigw_config_rule_t, pattern, s_check_regex, NULL), AIGW_CONFIG_KW_END};

//  One models entry; base struct aigw_config_model_t. The short form gives
//  provider (and upstream_model); the long form lists deployments. The
//  provider module adds provider and strategy, and the rows of each
//  deployment (S_DEPLOYMENT_ITEM).
static const s_setting_t s_model_settings[]
    = {S_STRING ("name", aigw_config_model_t, name, NULL, NULL),
       S_STRING ("upstream_model", aigw_config_model_t, upstream_model, NULL, NULL),
       S_LIST ("fallbacks", s_load_fallbacks), S_LIST ("deployments", s_load_deployments),
       AIGW_CONFIG_KW_END};

//  Core's sections, registered as any module's are.
static void __attribute__ ((constructor)) s_config_keywords (void)
{
    aigw_config_register ("", s_root_settings);
    aigw_config_register ("server", s_server_settings);
    aigw_config_register ("broker", s_broker_settings);
    aigw_config_register ("auth", s_auth_settings);
    aigw_config_register ("auth.jwt", s_jwt_settings);
    aigw_config_register ("ratelimit", s_ratelimit_settings);
    aigw_config_register ("ratelimit.default", s_ratelimit_default_settings);
    aigw_config_register (S_TENANT_ITEM, s_tenant_settings);
    aigw_config_register ("guardrail", s_guardrail_settings);
    aigw_config_register ("cache", s_cache_settings);
    aigw_config_register ("cache.semantic", s_cache_semantic_settings);
    aigw_config_register ("database", s_database_settings);
    aigw_config_register ("usage", s_usage_settings);
    aigw_config_register (S_KEY_ITEM, s_key_settings);
    aigw_config_register (S_RULE_ITEM, s_rule_settings);
    aigw_config_register (S_MODEL_ITEM, s_model_settings);
}

//  --------------------------------------------------------------------------
//  Small helpers

void
aigw_config_string_free (char **p)
{
    if (*p) {
        OPENSSL_cleanse (*p, strlen (*p));
        free (*p);
        *p = NULL;
    }
}

//  Writes "SOURCE[:LINE]: [SETTING: ]PROBLEM" into the caller's buffer.
//  LINE 0 means no line, an empty SETTING means none. Always returns -1.
static int s_error (s_loader_t *self, size_t line, const char *setting, const char *format, ...)
    __attribute__ ((format (printf, 4, 5)));

//  (Definition; the contract is on the declaration above.)
static int
s_error (s_loader_t *self, size_t line, const char *setting, const char *format, ...)
{
    if (!self->err || self->err_size == 0)
        return -1;
    char problem[AIGW_CONFIG_PROBLEM_MAX];
    va_list args;
    va_start (args, format);
    vsnprintf (problem, sizeof problem, format, args);
    va_end (args);
    char where[AIGW_CONFIG_SETTING_MAX];
    if (line)
        snprintf (where, sizeof where, ":%zu", line);
    else
        where[0] = 0;
    if (setting && *setting)
        snprintf (self->err, self->err_size, "%s%s: %s: %s", self->source, where, setting, problem);
    else
        snprintf (self->err, self->err_size, "%s%s: %s", self->source, where, problem);
    return -1;
}

//  Writes "PARENT.CHILD" into OUT, truncated to SIZE: setting paths only
//  label messages, so a long one is cut rather than refused.
static void
s_join (char *out, size_t size, const char *parent, const char *child)
{
    int len = snprintf (out, size, "%s%s%s", parent, *parent ? "." : "", child);
    assert (len >= 0);
}

//  The 1-based line where NODE starts.
static size_t
s_line (const yaml_node_t *node)
{
    return node->start_mark.line + 1;
}

//  True if NODE is YAML's null (an empty or ~ plain scalar), which the
//  loader reads as "not set".
static bool
s_is_null (const yaml_node_t *node)
{
    if (node->type != YAML_SCALAR_NODE || node->data.scalar.style != YAML_PLAIN_SCALAR_STYLE)
        return false;
    const char *value = (const char *) node->data.scalar.value;
    return strcmp (value, "") == 0 || strcmp (value, "~") == 0 || strcmp (value, "null") == 0
           || strcmp (value, "Null") == 0 || strcmp (value, "NULL") == 0;
}

//  True if NAME (LEN bytes) is a valid environment variable name.
static bool
s_env_name_valid (const char *name, size_t len)
{
    if (len == 0 || len > AIGW_CONFIG_ENV_NAME_MAX)
        return false;
    for (size_t i = 0; i < len; i++) {
        char c = name[i];
        bool alpha = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || c == '_';
        bool digit = c >= '0' && c <= '9';
        if (!alpha && !(digit && i > 0))
            return false;
    }
    return true;
}

//  Expands ${VAR} (unset: empty) and $${ (a literal ${) in IN, LEN bytes.
//  Writes to OUT unless it is NULL (then only counts) and sets *OUT_LEN.
//  Returns 0, or -1 with *PROBLEM set.
static int
s_expand (const char *in, size_t len, char *out, size_t *out_len, const char **problem)
{
    size_t used = 0;
    size_t i = 0;
    while (i < len) {
        const char *piece = in + i;
        size_t piece_len = 1;
        if (in[i] == '$' && i + 2 < len && in[i + 1] == '$' && in[i + 2] == '{') {
            piece = in + i + 1;  //  "${"
            piece_len = 2;
            i += 3;
        }
        else if (in[i] == '$' && i + 1 < len && in[i + 1] == '{') {
            const char *name = in + i + 2;
            const char *end = memchr (name, '}', len - i - 2);
            if (!end) {
                *problem = "unterminated ${ (write $${ for a literal ${)";
                return -1;
            }
            size_t name_len = (size_t) (end - name);
            if (!s_env_name_valid (name, name_len)) {
                *problem = "invalid variable name in ${...}";
                return -1;
            }
            char var[AIGW_CONFIG_ENV_NAME_MAX + 1];
            memcpy (var, name, name_len);
            var[name_len] = 0;
            piece = getenv (var);
            piece_len = piece ? strlen (piece) : 0;
            i = (size_t) (end - in) + 1;
        }
        else
            i++;
        if (piece_len > AIGW_CONFIG_VALUE_MAX - used) {
            *problem = "value too long after ${...} expansion";
            return -1;
        }
        if (out && piece_len)
            memcpy (out + used, piece, piece_len);
        used += piece_len;
    }
    if (out)
        out[used] = 0;
    *out_len = used;
    return 0;
}

//  Parses TEXT as an integer within MIN..MAX (aigw_text_integer) and
//  refuses a leading zero: YAML 1.1 reads 010 as octal, so the loader
//  refuses it rather than guess. Returns 0, or -1 if it is not one.
static int
s_parse_integer (const char *text, int64_t min, int64_t max, int64_t *value)
{
    if (text[0] == '0' && text[1])
        return -1;
    return aigw_text_integer (text, min, max, value);
}

//  Parses TEXT as a plain decimal number (digits, an optional fraction and
//  an optional exponent; no sign, no hex, no inf or nan) that is finite and
//  within MIN..MAX. Returns 0, or -1 if it is not one.
static int
s_parse_real (const char *text, double min, double max, double *value)
{
    size_t len = strlen (text);
    if (len == 0 || len > AIGW_CONFIG_REAL_CHARS_MAX)
        return -1;
    size_t i = 0;
    size_t digits = 0;
    while (text[i] >= '0' && text[i] <= '9')
        i++, digits++;
    if (digits == 0)
        return -1;
    if (text[i] == '.') {
        i++;
        for (digits = 0; text[i] >= '0' && text[i] <= '9'; i++)
            digits++;
        if (digits == 0)
            return -1;
    }
    if (text[i] == 'e' || text[i] == 'E') {
        i++;
        if (text[i] == '+' || text[i] == '-')
            i++;
        for (digits = 0; text[i] >= '0' && text[i] <= '9'; i++)
            digits++;
        if (digits == 0)
            return -1;
    }
    if (i != len)
        return -1;
    errno = 0;
    double result = strtod (text, NULL);
    if (errno == ERANGE || !isfinite (result) || result < min || result > max)
        return -1;
    *value = result;
    return 0;
}

//  --------------------------------------------------------------------------
//  Value checks (aigw_config_check_fn)

//  An http:// or https:// URL with something after the scheme.
int
aigw_config_check_url (const char *value, char *problem, size_t problem_size)
{
    static const char *schemes[] = {"http://", "https://"};
    for (size_t i = 0; i < sizeof schemes / sizeof schemes[0]; i++) {
        size_t len = strlen (schemes[i]);
        if (strncmp (value, schemes[i], len) == 0 && value[len])
            return 0;
    }
    snprintf (problem, problem_size, "expected an http:// or https:// URL");
    return -1;
}

//  A ZeroMQ endpoint on one of the transports the SPEC names.
static int
s_check_endpoint (const char *value, char *problem, size_t problem_size)
{
    static const char *transports[] = {"inproc://", "ipc://", "tcp://"};
    for (size_t i = 0; i < sizeof transports / sizeof transports[0]; i++) {
        size_t len = strlen (transports[i]);
        if (strncmp (value, transports[i], len) == 0 && value[len])
            return 0;
    }
    snprintf (problem, problem_size, "expected an inproc://, ipc:// or tcp:// endpoint");
    return -1;
}

//  One of the levels aigw_log knows.
static int
s_check_log_level (const char *value, char *problem, size_t problem_size)
{
    aigw_log_level_t level;
    if (aigw_log_level_parse (value, &level) == 0)
        return 0;
    snprintf (problem, problem_size, "expected error, warn, info or debug");
    return -1;
}

static int
s_check_log_format (const char *value, char *problem, size_t problem_size)
{
    bool json;
    if (aigw_log_format_parse (value, &json) == 0)
        return 0;
    snprintf (problem, problem_size, "expected text or json");
    return -1;
}

//  An environment variable name (letters, digits, _; not a digit first).
int
aigw_config_check_env_name (const char *value, char *problem, size_t problem_size)
{
    if (s_env_name_valid (value, strlen (value)))
        return 0;
    snprintf (problem, problem_size, "expected an environment variable name");
    return -1;
}

//  A pattern PCRE2 compiles, with the flags the guardrail uses (UTF-8).
static int
s_check_regex (const char *value, char *problem, size_t problem_size)
{
    int code = 0;
    PCRE2_SIZE offset = 0;
    pcre2_code *regex = pcre2_compile ((PCRE2_SPTR) value, PCRE2_ZERO_TERMINATED, PCRE2_UTF, &code,
                                       &offset, NULL);
    if (regex) {
        pcre2_code_free (regex);
        return 0;
    }
    PCRE2_UCHAR message[AIGW_CONFIG_PROBLEM_MAX];
    if (pcre2_get_error_message (code, message, sizeof message) < 0)
        snprintf ((char *) message, sizeof message, "error %d", code);
    snprintf (problem, problem_size, "invalid regex at offset %zu: %s", (size_t) offset,
              (char *) message);
    return -1;
}

//  Exactly 64 hex digits.
static int
s_check_sha256 (const char *value, char *problem, size_t problem_size)
{
    size_t len = strlen (value);
    bool valid = len == AIGW_CONFIG_SHA256_HEX;
    for (size_t i = 0; valid && i < len; i++)
        valid = aigw_hex_digit (value[i]) >= 0;
    if (valid)
        return 0;
    snprintf (problem, problem_size, "expected %d hex digits", AIGW_CONFIG_SHA256_HEX);
    return -1;
}

//  A limits mapping, by the check a module registered (aigw_limits).
static int
s_check_limits (const char *value, char *problem, size_t problem_size)
{
    return s_limits_check ? s_limits_check (value, problem, problem_size) : 0;
}

//  --------------------------------------------------------------------------
//  The document walker

static int s_load_section (s_loader_t *self, yaml_node_t *node, const char *section, void *base,
                           const char *prefix, s_seen_t *seen);

//  The row NAME of SECTION in any registered table, or NULL.
static const s_setting_t *
s_keyword (const char *section, const char *name)
{
    for (size_t i = 0; i < s_registry_size; i++)
        if (strcmp (s_registry[i].section, section) == 0)
            for (const s_setting_t *row = s_registry[i].keywords; row->name; row++)
                if (strcmp (row->name, name) == 0)
                    return row;
    return NULL;
}

//  True if some table is registered for SECTION.
static bool
s_section_known (const char *section)
{
    for (size_t i = 0; i < s_registry_size; i++)
        if (strcmp (s_registry[i].section, section) == 0)
            return true;
    return false;
}

//  True for the section of a list entry ("models[]"), whose rows read into
//  the entry's struct, not into aigw_config_t.
static bool
s_section_is_item (const char *section)
{
    return strchr (section, '[') != NULL;
}

//  The line SEEN recorded for setting NAME, or FALLBACK if it was absent.
static size_t
s_line_of (const s_seen_t *seen, const char *name, size_t fallback)
{
    for (size_t i = 0; i < seen->count; i++)
        if (strcmp (seen->at[i].name, name) == 0)
            return seen->at[i].line;
    return fallback;
}

//  Writes what a value of SETTING must be into EXPECTED, for messages.
static void
s_expected (const s_setting_t *setting, char *expected, size_t size)
{
    if (setting->kind == AIGW_CONFIG_STRING)
        snprintf (expected, size, "a string");
    else if (setting->kind == AIGW_CONFIG_JSON)
        snprintf (expected, size, "a mapping");
    else if (setting->kind == AIGW_CONFIG_BOOL)
        snprintf (expected, size, "true or false");
    else if (setting->kind == AIGW_CONFIG_DOUBLE)
        snprintf (expected, size, "a number from %.15g to %.15g", setting->real_min,
                  setting->real_max);
    else
        snprintf (expected, size, "an integer from %" PRId64 " to %" PRId64, setting->min,
                  setting->max);
}

//  The integer SETTING holds in BASE (an int or int64_t field).
static int64_t
s_number (const s_setting_t *setting, const void *base)
{
    const char *field = (const char *) base + setting->offset;
    if (setting->kind == AIGW_CONFIG_INT)
        return *(const int *) field;
    assert (setting->kind == AIGW_CONFIG_INT64);
    return *(const int64_t *) field;
}

//  Reads the scalar NODE at SETTING as text with ${VAR} expanded. EXPECTED
//  names the type for the message if NODE is not a scalar. Returns a new
//  string (caller frees with aigw_config_string_free), or NULL with the error written.
static char *
s_scalar (s_loader_t *self, yaml_node_t *node, const char *setting, const char *expected)
{
    if (node->type != YAML_SCALAR_NODE) {
        s_error (self, s_line (node), setting, "expected %s", expected);
        return NULL;
    }
    if (s_is_null (node)) {
        char *out = strdup ("");
        if (!out)
            s_error (self, s_line (node), setting, "out of memory");
        return out;
    }
    const char *text = (const char *) node->data.scalar.value;
    size_t len = node->data.scalar.length;
    if (memchr (text, 0, len)) {
        s_error (self, s_line (node), setting, "contains a NUL character");
        return NULL;
    }
    const char *problem = NULL;
    size_t out_len = 0;
    if (s_expand (text, len, NULL, &out_len, &problem)) {
        s_error (self, s_line (node), setting, "%s", problem);
        return NULL;
    }
    char *out = malloc (out_len + 1);
    if (!out) {
        s_error (self, s_line (node), setting, "out of memory");
        return NULL;
    }
    //  The environment cannot change between the two passes: the loader
    //  runs at start-up, before any thread that could call setenv.
    if (s_expand (text, len, out, &out_len, &problem)) {
        free (out);
        s_error (self, s_line (node), setting, "%s", problem);
        return NULL;
    }
    return out;
}

//  Stores TEXT (taken; wiped and freed here) as the value of SETTING in
//  BASE, the one path for the file and the environment. PATH and LINE (0:
//  none) label the error. Returns 0 or -1 with the error written.
static int
s_store (s_loader_t *self, const s_setting_t *setting, void *base, char *text, size_t line,
         const char *path)
{
    char *field = (char *) base + setting->offset;
    char expected[AIGW_CONFIG_PROBLEM_MAX];
    s_expected (setting, expected, sizeof expected);
    int rc = 0;
    if (setting->kind == AIGW_CONFIG_STRING) {
        char problem[AIGW_CONFIG_PROBLEM_MAX];
        if (*text == 0)
            aigw_config_string_free (&text);  //  empty means unset: keep the default
        else if (setting->check && setting->check (text, problem, sizeof problem))
            rc = s_error (self, line, path, "%s", problem);
        else {
            aigw_config_string_free ((char **) field);
            *(char **) field = text;
            text = NULL;
        }
    }
    else if (setting->kind == AIGW_CONFIG_BOOL) {
        if (strcmp (text, "true") == 0)
            *(bool *) field = true;
        else if (strcmp (text, "false") == 0)
            *(bool *) field = false;
        else
            rc = s_error (self, line, path, "expected %s", expected);
    }
    else if (setting->kind == AIGW_CONFIG_DOUBLE) {
        double number = 0;
        if (s_parse_real (text, setting->real_min, setting->real_max, &number))
            rc = s_error (self, line, path, "expected %s", expected);
        else
            *(double *) field = number;
    }
    else {
        int64_t number = 0;
        if (s_parse_integer (text, setting->min, setting->max, &number))
            rc = s_error (self, line, path, "expected %s", expected);
        else if (setting->kind == AIGW_CONFIG_INT)
            *(int *) field = (int) number;
        else if (setting->kind == AIGW_CONFIG_INT64)
            *(int64_t *) field = number;
        else if ((uint64_t) number > SIZE_MAX)
            rc = s_error (self, line, path, "expected %s", expected);
        else
            *(size_t *) field = (size_t) number;
    }
    aigw_config_string_free (&text);
    return rc;
}

//  NODE at PATH as JSON, DEPTH levels deep: a mapping is an object, a list
//  an array; a plain scalar is null, a boolean, an integer or a number when
//  it reads as one, else (and every quoted scalar) a string, after ${VAR}
//  expansion. Returns a new reference, or NULL with the error written.
static json_t *
s_yaml_json (s_loader_t *self, yaml_node_t *node, const char *path, int depth)
{
    if (depth > AIGW_CONFIG_JSON_DEPTH_MAX) {
        s_error (self, s_line (node), path, "nests deeper than %d levels",
                 AIGW_CONFIG_JSON_DEPTH_MAX);
        return NULL;
    }
    if (node->type == YAML_MAPPING_NODE) {
        json_t *object = json_object ();
        for (yaml_node_pair_t *pair = node->data.mapping.pairs.start;
             object && pair < node->data.mapping.pairs.top; pair++) {
            yaml_node_t *key = yaml_document_get_node (self->doc, pair->key);
            yaml_node_t *value = yaml_document_get_node (self->doc, pair->value);
            if (key->type != YAML_SCALAR_NODE
                || strlen ((const char *) key->data.scalar.value) != key->data.scalar.length) {
                s_error (self, s_line (key), path, "expected a name");
                json_decref (object);
                return NULL;
            }
            const char *name = (const char *) key->data.scalar.value;
            char child[AIGW_CONFIG_SETTING_MAX];
            s_join (child, sizeof child, path, name);
            if (json_object_get (object, name)) {
                s_error (self, s_line (key), child, "duplicate setting");
                json_decref (object);
                return NULL;
            }
            json_t *member = s_yaml_json (self, value, child, depth + 1);
            if (!member || json_object_set_new (object, name, member)) {
                json_decref (object);
                return NULL;
            }
        }
        return object;
    }
    if (node->type == YAML_SEQUENCE_NODE) {
        json_t *array = json_array ();
        size_t index = 0;
        for (yaml_node_item_t *item = node->data.sequence.items.start;
             array && item < node->data.sequence.items.top; item++, index++) {
            char child[AIGW_CONFIG_SETTING_MAX];
            snprintf (child, sizeof child, "%s[%zu]", path, index);
            json_t *member
                = s_yaml_json (self, yaml_document_get_node (self->doc, *item), child, depth + 1);
            if (!member || json_array_append_new (array, member)) {
                json_decref (array);
                return NULL;
            }
        }
        return array;
    }
    if (s_is_null (node))
        return json_null ();
    char *text = s_scalar (self, node, path, "a value");
    if (!text)
        return NULL;
    json_t *value = NULL;
    int64_t integer;
    double real;
    if (node->data.scalar.style != YAML_PLAIN_SCALAR_STYLE)
        value = json_string (text);
    else if (strcmp (text, "true") == 0 || strcmp (text, "false") == 0)
        value = json_boolean (text[0] == 't');
    else if ((text[0] == '-' && s_parse_integer (text + 1, 0, INT64_MAX, &integer) == 0)
             || s_parse_integer (text, 0, INT64_MAX, &integer) == 0)
        value = json_integer (text[0] == '-' ? -integer : integer);
    else if (s_parse_real (text[0] == '-' ? text + 1 : text, 0, HUGE_VAL, &real) == 0)
        value = json_real (text[0] == '-' ? -real : real);
    else
        value = json_string (text);
    if (!value)
        s_error (self, s_line (node), path, "expected UTF-8 text");
    aigw_config_string_free (&text);
    return value;
}

//  Reads the mapping VALUE at PATH into SETTING's field in BASE as JSON
//  text, checked by the row's check. Returns 0 or -1 with the error written.
static int
s_load_json (s_loader_t *self, yaml_node_t *value, const s_setting_t *setting, void *base,
             const char *path)
{
    if (s_is_null (value))
        return 0;
    if (value->type != YAML_MAPPING_NODE)
        return s_error (self, s_line (value), path, "expected a mapping");
    json_t *json = s_yaml_json (self, value, path, 1);
    if (!json)
        return -1;
    char *text = json_dumps (json, JSON_COMPACT);
    json_decref (json);
    if (!text)
        return s_error (self, s_line (value), path, "out of memory");
    char problem[AIGW_CONFIG_PROBLEM_MAX];
    if (setting->check && setting->check (text, problem, sizeof problem)) {
        free (text);
        return s_error (self, s_line (value), path, "%s", problem);
    }
    char **field = (char **) ((char *) base + setting->offset);
    aigw_config_string_free (field);
    *field = text;
    return 0;
}

//  Reads VALUE into the field SETTING describes, in BASE. PATH is the full
//  setting name. Returns 0 or -1 with the error written.
static int
s_load_value (s_loader_t *self, yaml_node_t *value, const s_setting_t *setting, void *base,
              const char *path)
{
    if (setting->kind == AIGW_CONFIG_LIST) {
        if (s_is_null (value))
            return 0;
        if (value->type != YAML_SEQUENCE_NODE)
            return s_error (self, s_line (value), path, "expected a list");
        return setting->list (self, value, path);
    }
    if (setting->kind == AIGW_CONFIG_JSON)
        return s_load_json (self, value, setting, base, path);
    char expected[AIGW_CONFIG_PROBLEM_MAX];
    s_expected (setting, expected, sizeof expected);
    char *text = s_scalar (self, value, path, expected);
    if (!text)
        return -1;
    return s_store (self, setting, base, text, s_line (value), path);
}

//  Checks that LO <= HI for two settings of one section (PATH, with the
//  lines SEEN; LINE the section's). The error goes on the setting the file
//  gave, HI's if both. Returns 0 or -1 with the error.
static int
s_check_order (s_loader_t *self, const char *path, const s_seen_t *seen, size_t line,
               const char *lo_name, int64_t lo, const char *hi_name, int64_t hi)
{
    if (lo <= hi)
        return 0;
    char setting[AIGW_CONFIG_SETTING_MAX];
    size_t hi_line = s_line_of (seen, hi_name, 0);
    if (hi_line) {
        s_join (setting, sizeof setting, path, hi_name);
        return s_error (self, hi_line, setting, "must be at least %s (%" PRId64 ")", lo_name, lo);
    }
    s_join (setting, sizeof setting, path, lo_name);
    return s_error (self, s_line_of (seen, lo_name, line), setting,
                    "must not exceed %s (%" PRId64 ")", hi_name, hi);
}

//  Checks the rows of SECTION that depend on a sibling (not_below), once
//  the section at PATH (on LINE, settings SEEN) is read into BASE. Returns
//  0 or -1 with the error written.
static int
s_check_section (s_loader_t *self, const char *section, void *base, const char *path,
                 const s_seen_t *seen, size_t line)
{
    for (size_t i = 0; i < s_registry_size; i++) {
        if (strcmp (s_registry[i].section, section) != 0)
            continue;
        for (const s_setting_t *row = s_registry[i].keywords; row->name; row++) {
            if (!row->not_below)
                continue;
            const s_setting_t *lo = s_keyword (section, row->not_below);
            assert (lo);
            if (s_check_order (self, path, seen, line, lo->name, s_number (lo, base), row->name,
                               s_number (row, base)))
                return -1;
        }
    }
    return 0;
}

//  Reads the mapping NODE against the rows registered for SECTION into
//  BASE; a key that names a registered child section is read as one, into
//  the same BASE. PREFIX is the setting path of NODE ("" at the top). If
//  SEEN is not NULL, it gets the line of each setting present. A null NODE
//  reads as an empty mapping. Returns 0 or -1 with the error written.
static int
s_load_section (s_loader_t *self, yaml_node_t *node, const char *section, void *base,
                const char *prefix, s_seen_t *seen)
{
    s_seen_t own = {.count = 0};
    if (!seen)
        seen = &own;
    if (s_is_null (node))
        return s_check_section (self, section, base, prefix, seen, s_line (node));
    if (node->type != YAML_MAPPING_NODE) {
        if (*prefix)
            return s_error (self, s_line (node), prefix, "expected a mapping");
        return s_error (self, s_line (node), NULL,
                        "expected a mapping of settings at the top level");
    }
    yaml_node_pair_t *pairs = node->data.mapping.pairs.start;
    size_t pair_count = (size_t) (node->data.mapping.pairs.top - pairs);
    for (size_t i = 0; i < pair_count; i++) {
        yaml_node_t *key = yaml_document_get_node (self->doc, pairs[i].key);
        yaml_node_t *value = yaml_document_get_node (self->doc, pairs[i].value);
        assert (key && value);
        if (key->type != YAML_SCALAR_NODE)
            return s_error (self, s_line (key), prefix, "expected a setting name, found a %s",
                            key->type == YAML_MAPPING_NODE ? "mapping" : "list");
        const char *name = (const char *) key->data.scalar.value;
        char path[AIGW_CONFIG_SETTING_MAX];
        s_join (path, sizeof path, prefix, name);
        char child[AIGW_CONFIG_SETTING_MAX];
        s_join (child, sizeof child, section, name);
        const s_setting_t *row = s_keyword (section, name);
        if ((!row && !s_section_known (child)) || strlen (name) != key->data.scalar.length)
            return s_error (self, s_line (key), path, "unknown setting");
        //  Every earlier key is a known setting, so this loop is short.
        for (size_t j = 0; j < i; j++) {
            yaml_node_t *other = yaml_document_get_node (self->doc, pairs[j].key);
            if (strcmp ((const char *) other->data.scalar.value, name) == 0)
                return s_error (self, s_line (key), path, "duplicate setting (also on line %zu)",
                                s_line (other));
        }
        assert (seen->count < AIGW_CONFIG_SEEN_MAX);
        seen->at[seen->count].name = row ? row->name : name;
        seen->at[seen->count++].line = s_line (value);
        int rc = row ? s_load_value (self, value, row, base, path)
                     : s_load_section (self, value, child, base, path, NULL);
        if (rc)
            return -1;
    }
    return s_check_section (self, section, base, prefix, seen, s_line (node));
}

//  Sets the default of every row of SECTION (NULL: of every section that
//  reads into aigw_config_t) in BASE. Returns 0, or -1 out of memory.
static int
s_apply_defaults (const char *section, void *base)
{
    for (size_t i = 0; i < s_registry_size; i++) {
        const char *own = s_registry[i].section;
        if (section ? strcmp (own, section) != 0 : s_section_is_item (own))
            continue;
        for (const s_setting_t *row = s_registry[i].keywords; row->name; row++) {
            char *field = (char *) base + row->offset;
            if (row->kind == AIGW_CONFIG_STRING && row->text) {
                aigw_config_string_free ((char **) field);
                if (!(*(char **) field = strdup (row->text)))
                    return -1;
            }
            else if (row->kind == AIGW_CONFIG_INT)
                *(int *) field = (int) row->number;
            else if (row->kind == AIGW_CONFIG_INT64)
                *(int64_t *) field = row->number;
            else if (row->kind == AIGW_CONFIG_SIZE)
                *(size_t *) field = (size_t) row->number;
            else if (row->kind == AIGW_CONFIG_DOUBLE)
                *(double *) field = row->real;
            else if (row->kind == AIGW_CONFIG_BOOL)
                *(bool *) field = row->number != 0;
        }
    }
    return 0;
}

//  Reads one entry of a list: ITEM, the INDEXth, at ITEM_PATH. Returns 0 or
//  -1 with the error written.
typedef int (s_item_fn) (s_loader_t *self, yaml_node_t *item, size_t index, const char *setting,
                         const char *item_path);

//  The one walk of the five lists: hands each entry of the sequence NODE at
//  SETTING to FN, with its path, while *COUNT (the entries FN kept so far)
//  stays below MAX. Entries must be mappings (or null) when MAPPING.
//  Returns 0 or -1 with the error written.
static int
s_each_item (s_loader_t *self, yaml_node_t *node, const char *setting, const int *count, int max,
             bool mapping, s_item_fn *fn)
{
    yaml_node_item_t *items = node->data.sequence.items.start;
    size_t total = (size_t) (node->data.sequence.items.top - items);
    for (size_t i = 0; i < total; i++) {
        yaml_node_t *item = yaml_document_get_node (self->doc, items[i]);
        char item_path[AIGW_CONFIG_SETTING_MAX];
        snprintf (item_path, sizeof item_path, "%s[%zu]", setting, i);
        if (*count >= max)
            return s_error (self, s_line (item), item_path, "too many entries (at most %d)", max);
        if (mapping && !s_is_null (item) && item->type != YAML_MAPPING_NODE)
            return s_error (self, s_line (item), item_path, "expected a mapping");
        if (fn (self, item, i, setting, item_path))
            return -1;
    }
    return 0;
}

//  Frees the strings of one key entry, wiping them.
static void
s_key_item_clear (s_key_item_t *item)
{
    aigw_config_string_free (&item->name);
    aigw_config_string_free (&item->key);
    aigw_config_string_free (&item->key_sha256);
    aigw_config_string_free (&item->tenant);
    aigw_config_string_free (&item->role);
    aigw_config_string_free (&item->limits);
}

//  Validates one auth.keys entry read at ITEM_PATH (item on LINE, settings
//  on LINES) and appends it to the config. Takes the entry's strings.
//  Returns 0 or -1 with the error written.
static int
s_add_key (s_loader_t *self, s_key_item_t *item, const char *item_path, size_t line,
           const s_seen_t *seen)
{
    aigw_config_t *config = self->config;
    char path[AIGW_CONFIG_SETTING_MAX];
    if (!item->name)
        return s_error (self, line, item_path, "needs name");
    if (!item->key && !item->key_sha256)
        return s_error (self, line, item_path, "needs key or key_sha256");
    if (item->key && item->key_sha256)
        return s_error (self, line, item_path, "give key or key_sha256, not both");
    if (!item->tenant)
        return s_error (self, line, item_path, "needs tenant");
    for (int i = 0; i < config->key_count; i++)
        if (strcmp (config->keys[i].name, item->name) == 0) {
            s_join (path, sizeof path, item_path, "name");
            return s_error (self, s_line_of (seen, "name", line), path,
                            "duplicate name (also auth.keys[%d])", i);
        }
    aigw_config_key_t *key = &config->keys[config->key_count];
    const char *secret_setting = item->key ? "key" : "key_sha256";
    if (item->key)
        aigw_config_hash_secret (item->key, key->sha256);
    else
        for (int i = 0; i < AIGW_CONFIG_SHA256_BYTES; i++)
            key->sha256[i] = (unsigned char) (aigw_hex_digit (item->key_sha256[2 * i]) * 16
                                              + aigw_hex_digit (item->key_sha256[2 * i + 1]));
    aigw_config_string_free (&item->key);
    for (int i = 0; i < config->key_count; i++)
        if (CRYPTO_memcmp (config->keys[i].sha256, key->sha256, AIGW_CONFIG_SHA256_BYTES) == 0) {
            OPENSSL_cleanse (key->sha256, sizeof key->sha256);
            s_join (path, sizeof path, item_path, secret_setting);
            return s_error (self, s_line_of (seen, secret_setting, line), path,
                            "same secret as auth.keys[%d]", i);
        }
    key->name = item->name;
    key->tenant = item->tenant;
    key->role = item->role;
    key->rpm = item->rpm;
    key->limits = item->limits;
    key->cache = item->cache;
    key->cache_semantic = item->cache_semantic;
    item->name = item->tenant = item->role = item->limits = NULL;
    config->key_count++;
    return 0;
}

//  s_item_fn for auth.keys.
static int
s_key_item (s_loader_t *self, yaml_node_t *item_node, size_t index, const char *setting,
            const char *item_path)
{
    s_key_item_t item = {0};
    s_seen_t seen = {.count = 0};
    int rc = s_apply_defaults (S_KEY_ITEM, &item);
    if (rc)
        s_error (self, s_line (item_node), item_path, "out of memory");
    if (rc == 0)
        rc = s_load_section (self, item_node, S_KEY_ITEM, &item, item_path, &seen);
    if (rc == 0)
        rc = s_add_key (self, &item, item_path, s_line (item_node), &seen);
    s_key_item_clear (&item);
    return rc;
}

//  aigw_config_list_fn for auth.keys.
static int
s_load_keys (s_loader_t *self, yaml_node_t *node, const char *setting)
{
    return s_each_item (self, node, setting, &self->config->key_count, AIGW_CONFIG_MAX_KEYS, true,
                        s_key_item);
}

//  s_item_fn for guardrail.deny: reads straight into the next free slot; it
//  only counts once valid, and destroy frees every slot.
static int
s_rule_item (s_loader_t *self, yaml_node_t *item_node, size_t index, const char *setting,
             const char *item_path)
{
    aigw_config_t *config = self->config;
    aigw_config_rule_t *rule = &config->rules[config->rule_count];
    s_seen_t seen = {.count = 0};
    size_t line = s_line (item_node);
    if (s_load_section (self, item_node, S_RULE_ITEM, rule, item_path, &seen))
        return -1;
    if (!rule->name)
        return s_error (self, line, item_path, "needs name");
    if (!rule->pattern)
        return s_error (self, line, item_path, "needs pattern");
    for (int j = 0; j < config->rule_count; j++)
        if (strcmp (config->rules[j].name, rule->name) == 0) {
            char path[AIGW_CONFIG_SETTING_MAX];
            s_join (path, sizeof path, item_path, "name");
            return s_error (self, s_line_of (&seen, "name", line), path,
                            "duplicate name (also %s[%d])", setting, j);
        }
    config->rule_count++;
    return 0;
}

//  aigw_config_list_fn for guardrail.deny.
static int
s_load_rules (s_loader_t *self, yaml_node_t *node, const char *setting)
{
    return s_each_item (self, node, setting, &self->config->rule_count, AIGW_CONFIG_MAX_RULES, true,
                        s_rule_item);
}

//  s_item_fn for ratelimit.tenants: reads straight into the next free
//  slot, as s_rule_item does.
static int
s_tenant_item (s_loader_t *self, yaml_node_t *item_node, size_t index, const char *setting,
               const char *item_path)
{
    aigw_config_t *config = self->config;
    aigw_config_tenant_t *tenant = &config->tenants[config->tenant_count];
    s_seen_t seen = {.count = 0};
    size_t line = s_line (item_node);
    if (s_load_section (self, item_node, S_TENANT_ITEM, tenant, item_path, &seen))
        return -1;
    if (!tenant->name)
        return s_error (self, line, item_path, "needs name");
    for (int j = 0; j < config->tenant_count; j++)
        if (strcmp (config->tenants[j].name, tenant->name) == 0) {
            char path[AIGW_CONFIG_SETTING_MAX];
            s_join (path, sizeof path, item_path, "name");
            return s_error (self, s_line_of (&seen, "name", line), path,
                            "duplicate name (also %s[%d])", setting, j);
        }
    config->tenant_count++;
    return 0;
}

//  aigw_config_list_fn for ratelimit.tenants.
static int
s_load_tenants (s_loader_t *self, yaml_node_t *node, const char *setting)
{
    return s_each_item (self, node, setting, &self->config->tenant_count, AIGW_CONFIG_MAX_TENANTS,
                        true, s_tenant_item);
}

//  Index of the models[] slot MODEL in the config.
static int
s_model_index (const s_loader_t *self, const aigw_config_model_t *model)
{
    assert (model >= self->config->models && model < self->config->models + AIGW_CONFIG_MAX_MODELS);
    return (int) (model - self->config->models);
}

//  s_item_fn for models[].deployments: reads each entry into the next free
//  slot of the model being read. Defaults that need the model's name (id,
//  model) are applied once the whole entry is read (s_model_complete).
static int
s_deployment_item (s_loader_t *self, yaml_node_t *item_node, size_t index, const char *setting,
                   const char *item_path)
{
    aigw_config_model_t *model = self->model;
    assert (model);
    int model_index = s_model_index (self, model);
    aigw_config_deployment_t *deployment = &model->deployments[model->deployment_count];
    s_seen_t seen = {.count = 0};
    size_t line = s_line (item_node);
    if (s_apply_defaults (S_DEPLOYMENT_ITEM, deployment))
        return s_error (self, line, item_path, "out of memory");
    if (s_load_section (self, item_node, S_DEPLOYMENT_ITEM, deployment, item_path, &seen))
        return -1;
    if (!deployment->provider)
        return s_error (self, line, item_path, "needs provider");
    self->lines->deployment[model_index][model->deployment_count] = line;
    self->lines->deployment_id[model_index][model->deployment_count] = s_line_of (&seen, "id", 0);
    model->deployment_count++;
    return 0;
}

//  aigw_config_list_fn for models[].deployments.
static int
s_load_deployments (s_loader_t *self, yaml_node_t *node, const char *setting)
{
    assert (self->model);
    return s_each_item (self, node, setting, &self->model->deployment_count,
                        AIGW_CONFIG_MAX_DEPLOYMENTS, true, s_deployment_item);
}

//  s_item_fn for models[].fallbacks: model names, checked against the whole
//  file once it is read (s_check_models).
static int
s_fallback_item (s_loader_t *self, yaml_node_t *item_node, size_t index, const char *setting,
                 const char *item_path)
{
    aigw_config_model_t *model = self->model;
    assert (model);
    char *name = s_scalar (self, item_node, item_path, "a model name");
    if (!name)
        return -1;
    if (!*name) {
        aigw_config_string_free (&name);
        return s_error (self, s_line (item_node), item_path, "expected a model name");
    }
    for (int j = 0; j < model->fallback_count; j++)
        if (strcmp (model->fallbacks[j], name) == 0) {
            aigw_config_string_free (&name);
            return s_error (self, s_line (item_node), item_path, "duplicate fallback (also %s[%d])",
                            setting, j);
        }
    model->fallbacks[model->fallback_count] = name;
    self->lines->fallback[s_model_index (self, model)][model->fallback_count] = s_line (item_node);
    model->fallback_count++;
    return 0;
}

//  aigw_config_list_fn for models[].fallbacks.
static int
s_load_fallbacks (s_loader_t *self, yaml_node_t *node, const char *setting)
{
    assert (self->model);
    return s_each_item (self, node, setting, &self->model->fallback_count,
                        AIGW_CONFIG_MAX_FALLBACKS, false, s_fallback_item);
}

//  One usage.store_content_tenants entry: a tenant name, once.
static int
s_content_tenant_item (s_loader_t *self, yaml_node_t *item_node, size_t index, const char *setting,
                       const char *item_path)
{
    aigw_config_t *config = self->config;
    char *name = s_scalar (self, item_node, item_path, "a tenant name");
    if (!name)
        return -1;
    if (!*name) {
        aigw_config_string_free (&name);
        return s_error (self, s_line (item_node), item_path, "expected a tenant name");
    }
    if (aigw_config_stores_content (config, name)) {
        aigw_config_string_free (&name);
        return s_error (self, s_line (item_node), item_path, "duplicate tenant");
    }
    config->usage_content_tenants[config->usage_content_tenant_count++] = name;
    return 0;
}

//  aigw_config_list_fn for usage.store_content_tenants.
static int
s_load_content_tenants (s_loader_t *self, yaml_node_t *node, const char *setting)
{
    return s_each_item (self, node, setting, &self->config->usage_content_tenant_count,
                        AIGW_CONFIG_MAX_CONTENT_TENANTS, false, s_content_tenant_item);
}

bool
aigw_config_stores_content (const aigw_config_t *self, const char *tenant)
{
    for (int i = 0; tenant && i < self->usage_content_tenant_count; i++)
        if (strcmp (self->usage_content_tenants[i], tenant) == 0)
            return true;
    return false;
}

//  Turns a short-form MODEL (provider, upstream_model) into its one
//  deployment. Returns 0, or -1 out of memory (destroy frees the slot).
static int
s_model_short (aigw_config_model_t *model)
{
    assert (model->provider && model->deployment_count == 0);
    aigw_config_deployment_t *deployment = &model->deployments[0];
    if (s_apply_defaults (S_DEPLOYMENT_ITEM, deployment))
        return -1;
    deployment->provider = strdup (model->provider);
    if (model->upstream_model)
        deployment->model = strdup (model->upstream_model);
    model->deployment_count = 1;
    return deployment->provider && (deployment->model || !model->upstream_model) ? 0 : -1;
}

//  Fills what MODEL's deployments leave to defaults (id "NAME/INDEX", model
//  = the model's name) and mirrors deployments[0] into provider and
//  upstream_model. Returns 0, or -1 out of memory.
static int
s_model_complete (aigw_config_model_t *model)
{
    assert (model->name && model->deployment_count > 0);
    for (int i = 0; i < model->deployment_count; i++) {
        aigw_config_deployment_t *deployment = &model->deployments[i];
        if (!deployment->model && !(deployment->model = strdup (model->name)))
            return -1;
        if (!deployment->id && asprintf (&deployment->id, "%s/%d", model->name, i) < 0) {
            deployment->id = NULL;
            return -1;
        }
    }
    aigw_config_string_free (&model->provider);
    aigw_config_string_free (&model->upstream_model);
    model->provider = strdup (model->deployments[0].provider);
    model->upstream_model = strdup (model->deployments[0].model);
    return model->provider && model->upstream_model ? 0 : -1;
}

//  Checks that the deployment ids of models[INDEX] are short enough and
//  unique across the file read so far. Returns 0 or -1 with the error.
static int
s_check_ids (s_loader_t *self, int index, const char *item_path)
{
    aigw_config_t *config = self->config;
    aigw_config_model_t *model = &config->models[index];
    bool short_form = self->lines->short_form[index];
    for (int i = 0; i < model->deployment_count; i++) {
        const char *id = model->deployments[i].id;
        size_t line = self->lines->deployment_id[index][i];
        if (!line)
            line = self->lines->deployment[index][i];
        char path[AIGW_CONFIG_SETTING_MAX];
        if (short_form)
            snprintf (path, sizeof path, "%s", item_path);
        else if (snprintf (path, sizeof path, "%s.deployments[%d].id", item_path, i) < 0)
            path[0] = '\0';
        if (strlen (id) > AIGW_CONFIG_ID_MAX)
            return s_error (self, line, path, "deployment id longer than %d bytes",
                            AIGW_CONFIG_ID_MAX);
        for (int m = 0; m <= index; m++)
            for (int j = 0; j < (m < index ? config->models[m].deployment_count : i); j++)
                if (strcmp (config->models[m].deployments[j].id, id) == 0)
                    return s_error (self, line, path,
                                    "duplicate deployment id (also models[%d]"
                                    ".deployments[%d])",
                                    m, j);
    }
    return 0;
}

//  s_item_fn for models: the short form {name, provider, upstream_model?}
//  or the long form {name, strategy?, fallbacks?, deployments}.
static int
s_model_item (s_loader_t *self, yaml_node_t *item_node, size_t i, const char *setting,
              const char *item_path)
{
    aigw_config_t *config = self->config;
    int index = config->model_count;
    aigw_config_model_t *model = &config->models[index];
    s_seen_t seen = {.count = 0};
    size_t line = s_line (item_node);
    self->model = model;
    int rc = s_load_section (self, item_node, S_MODEL_ITEM, model, item_path, &seen);
    self->model = NULL;
    if (rc)
        return -1;
    if (!model->name)
        return s_error (self, line, item_path, "needs name");
    char path[AIGW_CONFIG_SETTING_MAX];
    s_join (path, sizeof path, item_path, "name");
    size_t name_line = s_line_of (&seen, "name", line);
    //  Room for the default deployment ids, "NAME/15".
    if (strlen (model->name) > AIGW_CONFIG_ID_MAX - 3)
        return s_error (self, name_line, path, "longer than %d bytes", AIGW_CONFIG_ID_MAX - 3);
    for (int j = 0; j < config->model_count; j++)
        if (strcmp (config->models[j].name, model->name) == 0)
            return s_error (self, name_line, path, "duplicate name (also %s[%d])", setting, j);
    if (model->deployment_count > 0 && (model->provider || model->upstream_model))
        return s_error (self, line, item_path,
                        "give provider and upstream_model, or deployments, not both");
    if (model->deployment_count == 0) {
        if (!model->provider)
            return s_error (self, line, item_path, "needs provider (or deployments)");
        if (s_model_short (model))
            return s_error (self, line, item_path, "out of memory");
        self->lines->short_form[index] = true;
        self->lines->deployment[index][0] = s_line_of (&seen, "provider", line);
    }
    if (s_model_complete (model))
        return s_error (self, line, item_path, "out of memory");
    self->lines->model[index] = line;
    if (s_check_ids (self, index, item_path))
        return -1;
    config->model_count++;
    return 0;
}

//  aigw_config_list_fn for models.
static int
s_load_models (s_loader_t *self, yaml_node_t *node, const char *setting)
{
    return s_each_item (self, node, setting, &self->config->model_count, AIGW_CONFIG_MAX_MODELS,
                        true, s_model_item);
}

//  Checks what depends on the whole file and the environment: fallbacks
//  name other models of the file, and every deployment passes the checks
//  modules registered (a base URL, for instance). Returns 0 or -1 with the
//  error written.
static int
s_check_models (s_loader_t *self)
{
    aigw_config_t *config = self->config;
    for (int i = 0; i < config->model_count; i++) {
        aigw_config_model_t *model = &config->models[i];
        char path[AIGW_CONFIG_SETTING_MAX];
        for (int j = 0; j < model->fallback_count; j++) {
            size_t line = self->lines->fallback[i][j];
            snprintf (path, sizeof path, "models[%d].fallbacks[%d]", i, j);
            if (strcmp (model->fallbacks[j], model->name) == 0)
                return s_error (self, line, path, "a model cannot fall back to itself");
            if (!aigw_config_model (config, model->fallbacks[j]))
                return s_error (self, line, path, "names no model of this file");
        }
        for (int j = 0; j < model->deployment_count; j++)
            for (size_t c = 0; c < s_deployment_check_count; c++) {
                char problem[AIGW_CONFIG_PROBLEM_MAX];
                if (s_deployment_checks[c](config, &model->deployments[j], problem, sizeof problem)
                    == 0)
                    continue;
                if (self->lines->short_form[i])
                    snprintf (path, sizeof path, "models[%d]", i);
                else
                    snprintf (path, sizeof path, "models[%d].deployments[%d]", i, j);
                return s_error (self, self->lines->deployment[i][j], path, "%s", problem);
            }
    }
    return 0;
}

//  --------------------------------------------------------------------------
//  File, environment, defaults

//  Wipes every scalar of DOC: they may hold secrets.
static void
s_document_wipe (yaml_document_t *doc)
{
    for (yaml_node_t *node = doc->nodes.start; node && node < doc->nodes.top; node++)
        if (node->type == YAML_SCALAR_NODE && node->data.scalar.value)
            OPENSSL_cleanse (node->data.scalar.value, node->data.scalar.length);
}

//  Writes PARSER's error, with its line, into the loader. Always -1.
static int
s_yaml_error (s_loader_t *self, const yaml_parser_t *parser, const char *data, size_t size)
{
    size_t line = parser->problem_mark.line + 1;
    if (parser->error == YAML_READER_ERROR) {
        //  Reader errors carry a byte offset, not a mark.
        line = 1;
        for (size_t i = 0; i < parser->problem_offset && i < size; i++)
            line += data[i] == '\n';
    }
    const char *problem = parser->error == YAML_MEMORY_ERROR ? "out of memory"
                          : parser->problem                  ? parser->problem
                                                             : "syntax error";
    if (parser->context)
        return s_error (self, line, NULL, "invalid YAML: %s (%s)", problem, parser->context);
    return s_error (self, line, NULL, "invalid YAML: %s", problem);
}

//  Reads PATH whole into *DATA (caller wipes and frees) and *SIZE. Returns 0
//  or -1 with the error written.
static int
s_read_file (s_loader_t *self, const char *path, char **data, size_t *size)
{
    FILE *file = fopen (path, "rb");
    if (!file)
        return s_error (self, 0, NULL, "cannot read: %s", strerror (errno));
    char *buffer = malloc (AIGW_CONFIG_FILE_MAX_BYTES + 1);
    if (!buffer) {
        fclose (file);
        return s_error (self, 0, NULL, "cannot read: out of memory");
    }
    size_t got = fread (buffer, 1, AIGW_CONFIG_FILE_MAX_BYTES + 1, file);
    int failed = ferror (file);
    int error = errno;
    fclose (file);
    if (failed || got > AIGW_CONFIG_FILE_MAX_BYTES) {
        OPENSSL_cleanse (buffer, got);
        free (buffer);
        if (failed)
            return s_error (self, 0, NULL, "cannot read: %s", strerror (error));
        return s_error (self, 0, NULL, "larger than %d bytes", AIGW_CONFIG_FILE_MAX_BYTES);
    }
    *data = buffer;
    *size = got;
    return 0;
}

//  Parses the YAML file PATH into the config. Returns 0 or -1 with the
//  error written.
static int
s_load_file (s_loader_t *self, const char *path)
{
    char *data = NULL;
    size_t size = 0;
    if (s_read_file (self, path, &data, &size))
        return -1;
    yaml_parser_t parser;
    if (!yaml_parser_initialize (&parser)) {
        OPENSSL_cleanse (data, size);
        free (data);
        return s_error (self, 0, NULL, "out of memory");
    }
    yaml_parser_set_input_string (&parser, (const unsigned char *) data, size);
    int rc = 0;
    yaml_document_t doc;
    if (!yaml_parser_load (&parser, &doc))
        rc = s_yaml_error (self, &parser, data, size);
    else {
        self->doc = &doc;
        yaml_node_t *root = yaml_document_get_root_node (&doc);
        if (root)
            rc = s_load_section (self, root, "", self->config, "", NULL);
        self->doc = NULL;
        //  One document per file: a second one is a mistake, not more settings.
        yaml_document_t next;
        if (rc == 0 && !yaml_parser_load (&parser, &next))
            rc = s_yaml_error (self, &parser, data, size);
        else if (rc == 0) {
            yaml_node_t *next_root = yaml_document_get_root_node (&next);
            if (next_root)
                rc = s_error (self, s_line (next_root), NULL, "only one YAML document is allowed");
            s_document_wipe (&next);
            yaml_document_delete (&next);
        }
        s_document_wipe (&doc);
        yaml_document_delete (&doc);
    }
    if (parser.buffer.start)
        OPENSSL_cleanse (parser.buffer.start, (size_t) (parser.buffer.end - parser.buffer.start));
    if (parser.raw_buffer.start)
        OPENSSL_cleanse (parser.raw_buffer.start,
                         (size_t) (parser.raw_buffer.end - parser.raw_buffer.start));
    yaml_parser_delete (&parser);
    OPENSSL_cleanse (data, size);
    free (data);
    return rc;
}

//  Applies the environment overrides, the rows' env names: each variable
//  that is set and not empty replaces the setting. Returns 0 or -1 with the
//  error written.
static int
s_load_env (s_loader_t *self)
{
    const char *source = self->source;
    self->source = AIGW_CONFIG_ENV_SOURCE;
    int rc = 0;
    for (size_t i = 0; rc == 0 && i < s_registry_size; i++) {
        if (s_section_is_item (s_registry[i].section))
            continue;
        for (const s_setting_t *row = s_registry[i].keywords; rc == 0 && row->name; row++) {
            const char *value = row->env ? getenv (row->env) : NULL;
            if (!value || !*value)
                continue;
            char *copy = strdup (value);
            if (!copy)
                rc = s_error (self, 0, row->env, "out of memory");
            else
                rc = s_store (self, row, self->config, copy, 0, row->env);
        }
    }
    self->source = source;
    return rc;
}

//  Fills what depends on the whole load: default models, the master key's
//  hash. Returns 0, or -1 out of memory.
static int
s_finish (aigw_config_t *self)
{
    size_t defaults = sizeof s_default_models / sizeof s_default_models[0];
    for (size_t i = 0; self->model_count == 0 && i < defaults; i++) {
        aigw_config_model_t *model = &self->models[i];
        model->name = strdup (s_default_models[i]);
        model->provider = strdup (AIGW_CONFIG_DEFAULT_MODEL_PROVIDER);
        model->upstream_model = strdup (s_default_models[i]);
        if (!model->name || !model->provider || !model->upstream_model || s_model_short (model)
            || s_model_complete (model))
            return -1;  //  destroy frees every slot
    }
    if (self->model_count == 0)
        self->model_count = (int) defaults;
    OPENSSL_cleanse (self->master_sha256, sizeof self->master_sha256);
    if (self->master_key && *self->master_key)
        aigw_config_hash_secret (self->master_key, self->master_sha256);
    return 0;
}

//  --------------------------------------------------------------------------
//  Public API

//  Adds KEYWORDS to SECTION; see the header.
void
aigw_config_register (const char *section, const aigw_config_keyword_t *keywords)
{
    assert (section && keywords);
    assert (s_registry_size < AIGW_CONFIG_REGISTRY_MAX);
    s_registry[s_registry_size].section = section;
    s_registry[s_registry_size].keywords = keywords;
    s_registry_size++;
}

//  Adds a deployment check; see the header.
void
aigw_config_register_deployment_check (aigw_config_deployment_fn *check)
{
    assert (check && s_deployment_check_count < AIGW_CONFIG_CHECKS_MAX);
    s_deployment_checks[s_deployment_check_count++] = check;
}

//  Sets the check of limits mappings; see the header.
void
aigw_config_register_limits_check (aigw_config_check_fn *check)
{
    s_limits_check = check;
}

//  Load PATH (NULL: defaults only), then apply the environment. Returns NULL
//  and writes "file:line: setting: problem" into ERR on any invalid input.
//  Caller owns the result.
aigw_config_t *
aigw_config_new (const char *path, char *err, size_t err_size)
{
    if (err && err_size)
        err[0] = 0;
    s_loader_t loader = {.source = path ? path : "aigw_config", .err = err, .err_size = err_size};
    aigw_config_t *self = calloc (1, sizeof *self);
    if (!self) {
        s_error (&loader, 0, NULL, "out of memory");
        return NULL;
    }
    loader.config = self;
    int rc = s_apply_defaults (NULL, self);
    if (rc)
        s_error (&loader, 0, NULL, "out of memory");
    loader.lines = calloc (1, sizeof *loader.lines);
    if (rc == 0 && !loader.lines)
        rc = s_error (&loader, 0, NULL, "out of memory");
    if (rc == 0 && path)
        rc = s_load_file (&loader, path);
    if (rc == 0)
        rc = s_load_env (&loader);
    if (rc == 0)
        rc = s_check_models (&loader);
    free (loader.lines);
    if (rc == 0 && s_finish (self))
        rc = s_error (&loader, 0, NULL, "out of memory");
    if (rc)
        aigw_config_destroy (&self);
    return self;
}

//  Destroy; safe on NULL and twice. Wipes secrets before freeing.
void
aigw_config_model_reset (aigw_config_model_t *model)
{
    if (!model)
        return;
    aigw_config_string_free (&model->name);
    aigw_config_string_free (&model->provider);
    aigw_config_string_free (&model->upstream_model);
    aigw_config_string_free (&model->strategy);
    for (int j = 0; j < AIGW_CONFIG_MAX_FALLBACKS; j++)
        aigw_config_string_free (&model->fallbacks[j]);
    for (int j = 0; j < AIGW_CONFIG_MAX_DEPLOYMENTS; j++) {
        aigw_config_deployment_t *deployment = &model->deployments[j];
        aigw_config_string_free (&deployment->id);
        aigw_config_string_free (&deployment->provider);
        aigw_config_string_free (&deployment->model);
        aigw_config_string_free (&deployment->base_url);
        aigw_config_string_free (&deployment->api_key);
        aigw_config_string_free (&deployment->api_key_env);
        aigw_config_string_free (&deployment->api_version);
        aigw_config_string_free (&deployment->region);
    }
    memset (model, 0, sizeof *model);
}

void
aigw_config_destroy (aigw_config_t **self_p)
{
    assert (self_p);
    aigw_config_t *self = *self_p;
    if (!self)
        return;
    aigw_config_string_free (&self->host);
    aigw_config_string_free (&self->broker_endpoint);
    aigw_config_string_free (&self->peer_bind);
    aigw_config_string_free (&self->peer_advertise);
    aigw_config_string_free (&self->master_key);
    aigw_config_string_free (&self->cache_semantic_vectors);
    aigw_config_string_free (&self->cache_semantic_model);
    //  Every slot, not just the counted ones: a load that failed half-way
    //  may have filled the next slot.
    for (int i = 0; i < AIGW_CONFIG_MAX_KEYS; i++) {
        aigw_config_string_free (&self->keys[i].name);
        aigw_config_string_free (&self->keys[i].tenant);
        aigw_config_string_free (&self->keys[i].role);
        aigw_config_string_free (&self->keys[i].limits);
    }
    for (int i = 0; i < AIGW_CONFIG_MAX_TENANTS; i++) {
        aigw_config_string_free (&self->tenants[i].name);
        aigw_config_string_free (&self->tenants[i].limits);
    }
    for (int i = 0; i < AIGW_CONFIG_MAX_RULES; i++) {
        aigw_config_string_free (&self->rules[i].name);
        aigw_config_string_free (&self->rules[i].pattern);
    }
    aigw_config_string_free (&self->guardrail_policies);
    aigw_config_string_free (&self->guardrail_default_policy);
    for (int i = 0; i < AIGW_CONFIG_MAX_MODELS; i++)
        aigw_config_model_reset (&self->models[i]);
    for (int i = 0; i < AIGW_CONFIG_MAX_CONTENT_TENANTS; i++)
        aigw_config_string_free (&self->usage_content_tenants[i]);
    aigw_config_string_free (&self->openai_base_url);
    aigw_config_string_free (&self->openai_api_key);
    aigw_config_string_free (&self->anthropic_base_url);
    aigw_config_string_free (&self->anthropic_api_key);
    aigw_config_string_free (&self->gemini_base_url);
    aigw_config_string_free (&self->gemini_api_key);
    aigw_config_string_free (&self->azure_base_url);
    aigw_config_string_free (&self->azure_api_key);
    aigw_config_string_free (&self->azure_api_version);
    aigw_config_string_free (&self->bedrock_base_url);
    aigw_config_string_free (&self->aws_region);
    aigw_config_string_free (&self->aws_access_key_id);
    aigw_config_string_free (&self->aws_secret_access_key);
    aigw_config_string_free (&self->aws_session_token);
    aigw_config_string_free (&self->router_strategy);
    aigw_config_string_free (&self->log_level);
    aigw_config_string_free (&self->log_format);
    aigw_config_string_free (&self->tracing_endpoint);
    aigw_config_string_free (&self->tracing_service_name);
    aigw_config_string_free (&self->database_url);  //  may carry a password
    aigw_config_string_free (&self->secret_key);
    aigw_config_string_free (&self->secret_key_file);
    aigw_config_string_free (&self->secret_previous_keys);
    aigw_config_string_free (&self->jwt_hs256_secret);
    aigw_config_string_free (&self->jwt_jwks_file);
    aigw_config_string_free (&self->jwt_jwks_url);
    aigw_config_string_free (&self->jwt_issuer);
    aigw_config_string_free (&self->jwt_audience);
    aigw_config_string_free (&self->jwt_tenant_claim);
    aigw_config_string_free (&self->jwt_role_claim);
    aigw_config_string_free (&self->usage_spool_path);
    OPENSSL_cleanse (self, sizeof *self);  //  the key and master hashes
    free (self);
    *self_p = NULL;
}

//  Find a model by name, or NULL. The result belongs to SELF.
const aigw_config_model_t *
aigw_config_model (const aigw_config_t *self, const char *name)
{
    assert (self);
    if (!name)
        return NULL;
    for (int i = 0; i < self->model_count; i++)
        if (strcmp (self->models[i].name, name) == 0)
            return &self->models[i];
    return NULL;
}

//  SHA-256 fetched once: an implicit fetch (EVP_sha256 ()) takes a lock on
//  every call, and auth hashes every request's key. EVP_MD objects are
//  immutable, so threads share this one.
static EVP_MD *s_sha256;
static pthread_once_t s_sha256_once = PTHREAD_ONCE_INIT;

static void
s_sha256_fetch (void)
{
    s_sha256 = EVP_MD_fetch (NULL, "SHA256", NULL);
}

//  SHA-256 of a secret, for key comparison. SECRET must not be NULL.
void
aigw_config_hash_secret (const char *secret, unsigned char out[32])
{
    assert (secret);
    unsigned int size = 0;
    //  Fails only if libcrypto is broken or out of memory; a process that
    //  cannot hash cannot authenticate anyone, so stop rather than go on
    //  with a wrong hash.
    pthread_once (&s_sha256_once, s_sha256_fetch);
    int ok = EVP_Digest (secret, strlen (secret), out, &size, s_sha256 ? s_sha256 : EVP_sha256 (),
                         NULL);
    assert (ok == 1 && size == AIGW_CONFIG_SHA256_BYTES);
    (void) ok;
}

//  --------------------------------------------------------------------------
//  Selftest

//  The environment variables the test touches: saved first, restored last.
static const char *s_test_vars[] = {"AIGW_PORT",
                                    "AIGW_HOST",
                                    "DATABASE_URL",
                                    "AIGW_MASTER_KEY",
                                    "AIGW_BROKER",
                                    "OPENAI_API_KEY",
                                    "OPENAI_BASE_URL",
                                    "ANTHROPIC_API_KEY",
                                    "ANTHROPIC_BASE_URL",
                                    "AIGW_LOG_LEVEL",
                                    "AIGW_TEST_HOST",
                                    "AIGW_TEST_PORT",
                                    "AIGW_TEST_SECRET",
                                    "AIGW_TEST_UNSET",
                                    "GEMINI_API_KEY",
                                    "GEMINI_BASE_URL",
                                    "AZURE_OPENAI_API_KEY",
                                    "AZURE_OPENAI_ENDPOINT",
                                    "AZURE_OPENAI_API_VERSION",
                                    "BEDROCK_BASE_URL",
                                    "AWS_REGION",
                                    "AWS_ACCESS_KEY_ID",
                                    "AWS_SECRET_ACCESS_KEY",
                                    "AWS_SESSION_TOKEN"};
#define S_TEST_VAR_COUNT (sizeof s_test_vars / sizeof s_test_vars[0])
#define S_TEST_PATH_MAX  64            //  a mkstemp path under /tmp
#define S_TEST_TEXT_MAX  (256 * 1024)  //  the largest generated test file

//  Writes TEXT to a new temp file and returns its name in PATH.
static void
s_test_write (const char *text, char *path, size_t path_size)
{
    snprintf (path, path_size, "/tmp/aigw-config-test-XXXXXX");
    int fd = mkstemp (path);
    assert (fd >= 0);
    size_t len = strlen (text);
    assert (write (fd, text, len) == (ssize_t) len);
    close (fd);
}

//  Loads TEXT from a temp file (removed after). Returns the config or NULL
//  with ERR set; PATH gets the file name used.
static aigw_config_t *
s_test_load (const char *text, char *path, char *err)
{
    s_test_write (text, path, S_TEST_PATH_MAX);
    aigw_config_t *config = aigw_config_new (path, err, AIGW_CONFIG_ERR_MAX);
    unlink (path);
    return config;
}

//  Asserts that TEXT fails to load with "PATH:" followed by EXPECT.
static void
s_test_error (bool verbose, const char *text, const char *expect)
{
    char path[S_TEST_PATH_MAX];
    char err[AIGW_CONFIG_ERR_MAX];
    aigw_config_t *config = s_test_load (text, path, err);
    char want[AIGW_CONFIG_ERR_MAX];
    snprintf (want, sizeof want, "%s:%s", path, expect);
    if (verbose || config || strncmp (err, want, strlen (want)) != 0)
        printf ("\n    want: %s\n    got:  %s", want, config ? "(loaded)" : err);
    assert (config == NULL);
    assert (strncmp (err, want, strlen (want)) == 0);
}

//  Selftest of models, deployments, fallbacks, the provider sections and
//  router: settings, defaults, environment and every error with its line.
static void
s_test_deployments (bool verbose)
{
    char path[S_TEST_PATH_MAX];
    char err[AIGW_CONFIG_ERR_MAX];

    //  Defaults: one deployment per model.
    aigw_config_t *config = aigw_config_new (NULL, err, sizeof err);
    assert (config);
    //  (The router, breaker and adapter selftests check their own defaults.)
    assert (!config->gemini_api_key && !config->azure_base_url && !config->azure_api_key);
    assert (!config->azure_api_version && !config->bedrock_base_url && !config->aws_region);
    assert (!config->aws_access_key_id && !config->aws_secret_access_key);
    assert (!config->aws_session_token);
    assert (config->model_count == 3);
    for (int i = 0; i < config->model_count; i++) {
        const aigw_config_model_t *model = &config->models[i];
        assert (model->deployment_count == 1 && model->fallback_count == 0);
        assert (model->strategy == NULL);
        const aigw_config_deployment_t *d = &model->deployments[0];
        char id[AIGW_CONFIG_SETTING_MAX];
        snprintf (id, sizeof id, "%s/0", model->name);
        assert (strcmp (d->id, id) == 0);
        assert (strcmp (d->provider, "openai") == 0);
        assert (strcmp (d->model, model->name) == 0);
        assert (strcmp (model->provider, d->provider) == 0);
        assert (strcmp (model->upstream_model, d->model) == 0);
        assert (d->weight == 1 && d->priority == 0 && d->rpm == 0 && d->tpm == 0);
        assert (d->price_in == 0 && d->price_out == 0);
        assert (!d->base_url && !d->api_key && !d->api_key_env && !d->api_version);
        assert (!d->region);
    }
    aigw_config_destroy (&config);

    //  Every new setting, both model forms.
    const char *full = "providers:\n"
                       "  gemini:\n"
                       "    base_url: http://127.0.0.1:9001\n"
                       "    api_key: sk-gemini-file\n"
                       "  azure:\n"
                       "    base_url: https://acme.openai.azure.com\n"
                       "    api_key: sk-azure-file\n"
                       "    api_version: 2024-06-01\n"
                       "  bedrock:\n"
                       "    base_url: http://127.0.0.1:9002\n"
                       "    region: eu-west-1\n"
                       "    access_key_id: AKIDFILE\n"
                       "    secret_access_key: sk-aws-secret-file\n"
                       "    session_token: sk-aws-token-file\n"
                       "router:\n"
                       "  strategy: least_latency\n"
                       "  max_attempts: 10\n"
                       "  retry_base_ms: 0\n"
                       "  retry_cap_ms: 500\n"
                       "  first_token_timeout_ms: 1500\n"
                       "  report_ms: 250\n"
                       "  breaker:\n"
                       "    consecutive_failures: 0\n"
                       "    error_rate: 0.25\n"
                       "    window_size: 4096\n"
                       "    window_ms: 0\n"
                       "    min_samples: 3\n"
                       "    cooldown_ms: 100\n"
                       "    cooldown_max_ms: 100\n"
                       "models:\n"
                       "  - name: chat\n"  //  line 30
                       "    strategy: lowest_cost\n"
                       "    fallbacks: [mini, local]\n"
                       "    deployments:\n"
                       "      - id: chat-openai\n"
                       "        provider: openai\n"
                       "        model: gpt-4o\n"
                       "        api_key_env: TEAM_OPENAI_KEY\n"
                       "        weight: 3\n"
                       "        priority: 0\n"
                       "        rpm: 600\n"
                       "        tpm: 1000000\n"
                       "        price_in: 2.5\n"
                       "        price_out: 10\n"
                       "      - provider: azure\n"
                       "        model: gpt4o-deploy\n"
                       "        api_key: sk-dep-azure\n"
                       "        api_version: 2024-10-21\n"
                       "        priority: 1\n"
                       "        weight: 0\n"
                       "        price_in: 1.25e0\n"
                       "        price_out: 0.000001\n"
                       "      - provider: openai_compatible\n"
                       "        base_url: http://127.0.0.1:9003/v1\n"
                       "        region: us-east-2\n"
                       "  - name: mini\n"
                       "    provider: openai\n"
                       "    upstream_model: gpt-4o-mini\n"
                       "  - {name: local, provider: vllm, fallbacks: [mini]}\n";
    config = s_test_load (full, path, err);
    if (!config)
        printf ("\n    %s", err);
    assert (config);
    assert (strcmp (config->gemini_base_url, "http://127.0.0.1:9001") == 0);
    assert (strcmp (config->gemini_api_key, "sk-gemini-file") == 0);
    assert (strcmp (config->azure_base_url, "https://acme.openai.azure.com") == 0);
    assert (strcmp (config->azure_api_key, "sk-azure-file") == 0);
    assert (strcmp (config->azure_api_version, "2024-06-01") == 0);
    assert (strcmp (config->bedrock_base_url, "http://127.0.0.1:9002") == 0);
    assert (strcmp (config->aws_region, "eu-west-1") == 0);
    assert (strcmp (config->aws_access_key_id, "AKIDFILE") == 0);
    assert (strcmp (config->aws_secret_access_key, "sk-aws-secret-file") == 0);
    assert (strcmp (config->aws_session_token, "sk-aws-token-file") == 0);
    assert (strcmp (config->router_strategy, "least_latency") == 0);
    assert (config->router_max_attempts == 10);
    assert (config->router_retry_base_ms == 0 && config->router_retry_cap_ms == 500);
    assert (config->first_token_timeout_ms == 1500 && config->router_report_ms == 250);
    assert (config->breaker_consecutive_failures == 0);
    assert (config->breaker_error_rate == 0.25);
    assert (config->breaker_window_size == 4096 && config->breaker_window_ms == 0);
    assert (config->breaker_min_samples == 3);
    assert (config->breaker_cooldown_ms == 100 && config->breaker_cooldown_max_ms == 100);
    assert (config->model_count == 3);
    const aigw_config_model_t *model = aigw_config_model (config, "chat");
    assert (model && strcmp (model->strategy, "lowest_cost") == 0);
    assert (model->fallback_count == 2);
    assert (strcmp (model->fallbacks[0], "mini") == 0);
    assert (strcmp (model->fallbacks[1], "local") == 0);
    assert (model->deployment_count == 3);
    const aigw_config_deployment_t *d = &model->deployments[0];
    assert (strcmp (d->id, "chat-openai") == 0 && strcmp (d->provider, "openai") == 0);
    assert (strcmp (d->model, "gpt-4o") == 0 && !d->base_url && !d->api_key);
    assert (strcmp (d->api_key_env, "TEAM_OPENAI_KEY") == 0);
    assert (d->weight == 3 && d->priority == 0 && d->rpm == 600 && d->tpm == 1000000);
    assert (d->price_in == 2.5 && d->price_out == 10);
    assert (strcmp (model->provider, "openai") == 0);
    assert (strcmp (model->upstream_model, "gpt-4o") == 0);
    d = &model->deployments[1];
    assert (strcmp (d->id, "chat/1") == 0 && strcmp (d->provider, "azure") == 0);
    assert (strcmp (d->model, "gpt4o-deploy") == 0);
    assert (strcmp (d->api_key, "sk-dep-azure") == 0);
    assert (strcmp (d->api_version, "2024-10-21") == 0);
    assert (d->priority == 1 && d->weight == 0);
    assert (d->price_in == 1.25 && d->price_out == 0.000001);
    d = &model->deployments[2];
    assert (strcmp (d->id, "chat/2") == 0 && strcmp (d->model, "chat") == 0);
    assert (strcmp (d->base_url, "http://127.0.0.1:9003/v1") == 0);
    assert (strcmp (d->region, "us-east-2") == 0 && d->weight == 1);
    model = aigw_config_model (config, "mini");
    assert (model && model->deployment_count == 1 && model->strategy == NULL);
    assert (strcmp (model->deployments[0].id, "mini/0") == 0);
    assert (strcmp (model->deployments[0].model, "gpt-4o-mini") == 0);
    assert (strcmp (model->upstream_model, "gpt-4o-mini") == 0);
    model = aigw_config_model (config, "local");
    assert (model && model->fallback_count == 1);
    assert (strcmp (model->deployments[0].provider, "vllm") == 0);
    assert (strcmp (model->deployments[0].model, "local") == 0);
    aigw_config_destroy (&config);

    //  The environment overrides the provider sections.
    const char *env[][2] = {{"GEMINI_API_KEY", "sk-env-gemini"},
                            {"GEMINI_BASE_URL", "http://127.0.0.1:8001"},
                            {"AZURE_OPENAI_API_KEY", "sk-env-azure"},
                            {"AZURE_OPENAI_ENDPOINT", "https://env.openai.azure.com"},
                            {"AZURE_OPENAI_API_VERSION", "2025-01-01"},
                            {"BEDROCK_BASE_URL", "http://127.0.0.1:8002"},
                            {"AWS_REGION", "ap-south-1"},
                            {"AWS_ACCESS_KEY_ID", "AKIDENV"},
                            {"AWS_SECRET_ACCESS_KEY", "sk-env-aws-secret"},
                            {"AWS_SESSION_TOKEN", "sk-env-aws-token"}};
    size_t env_count = sizeof env / sizeof env[0];
    for (size_t i = 0; i < env_count; i++)
        setenv (env[i][0], env[i][1], 1);
    //  AZURE_OPENAI_ENDPOINT is the base URL an azure deployment falls back to.
    config = s_test_load ("providers:\n  azure: {base_url: 'http://file', api_key: f}\n"
                          "models:\n  - {name: a, provider: azure}\n",
                          path, err);
    assert (config);
    assert (strcmp (config->gemini_api_key, "sk-env-gemini") == 0);
    assert (strcmp (config->gemini_base_url, "http://127.0.0.1:8001") == 0);
    assert (strcmp (config->azure_api_key, "sk-env-azure") == 0);
    assert (strcmp (config->azure_base_url, "https://env.openai.azure.com") == 0);
    assert (strcmp (config->azure_api_version, "2025-01-01") == 0);
    assert (strcmp (config->bedrock_base_url, "http://127.0.0.1:8002") == 0);
    assert (strcmp (config->aws_region, "ap-south-1") == 0);
    assert (strcmp (config->aws_access_key_id, "AKIDENV") == 0);
    assert (strcmp (config->aws_secret_access_key, "sk-env-aws-secret") == 0);
    assert (strcmp (config->aws_session_token, "sk-env-aws-token") == 0);
    aigw_config_destroy (&config);
    config = s_test_load ("models:\n  - {name: a, provider: azure}\n", path, err);
    assert (config);
    aigw_config_destroy (&config);
    setenv ("AWS_REGION", "EU_WEST", 1);
    config = aigw_config_new (NULL, err, sizeof err);
    assert (!config);
    assert (strcmp (err, "environment: AWS_REGION: expected an AWS region such as us-east-1") == 0);
    setenv ("AZURE_OPENAI_ENDPOINT", "acme.openai.azure.com", 1);
    setenv ("AWS_REGION", "us-east-1", 1);
    config = aigw_config_new (NULL, err, sizeof err);
    assert (!config);
    assert (strcmp (err, "environment: AZURE_OPENAI_ENDPOINT: expected an http:// or "
                         "https:// URL")
            == 0);
    for (size_t i = 0; i < env_count; i++)
        unsetenv (env[i][0]);

    //  Azure takes providers.azure.base_url; bedrock its region's URL.
    config = s_test_load ("models:\n  - {name: a, provider: azure}\n"
                          "providers:\n  azure: {base_url: 'https://x.openai.azure.com'}\n",
                          path, err);
    assert (config && !config->models[0].deployments[0].base_url);
    aigw_config_destroy (&config);
    config = s_test_load ("models:\n  - name: b\n    deployments:\n"
                          "      - {provider: bedrock, region: us-west-2}\n",
                          path, err);
    assert (config);
    aigw_config_destroy (&config);

    //  Errors, each on its line.
    s_test_error (verbose,
                  "models:\n  - name: m\n    provider: openai\n    deployments:\n"
                  "      - {provider: openai}\n",
                  "2: models[0]: give provider and upstream_model, or deployments, not both");
    s_test_error (verbose,
                  "models:\n  - name: m\n    upstream_model: x\n    deployments:\n"
                  "      - {provider: openai}\n",
                  "2: models[0]: give provider and upstream_model, or deployments, not both");
    s_test_error (verbose, "models:\n  - name: m\n    deployments: []\n",
                  "2: models[0]: needs provider (or deployments)");
    s_test_error (verbose,
                  "models:\n  - name: m\n    deployments:\n      - {provider: openai}\n"
                  "      - model: x\n",
                  "5: models[0].deployments[1]: needs provider");
    s_test_error (verbose, "models:\n  - name: m\n    deployments:\n      - provider: mystery\n",
                  "4: models[0].deployments[0].provider: unknown provider, expected one "
                  "of openai, azure");
    s_test_error (verbose,
                  "models:\n  - name: m\n    deployments:\n      - {provider: openai}\n"
                  "      - {provider: openai, colour: red}\n",
                  "5: models[0].deployments[1].colour: unknown setting");
    s_test_error (verbose,
                  "models:\n  - name: m\n    deployments:\n      - {provider: openai}\n"
                  "      - provider: openai_compatible\n        model: llama\n",
                  "5: models[0].deployments[1]: needs base_url (provider openai_compatible "
                  "has no default)");
    s_test_error (verbose, "models:\n  - name: m\n    provider: openai_compatible\n",
                  "3: models[0]: needs base_url (provider openai_compatible has no default)");
    s_test_error (verbose, "models:\n  - name: m\n    deployments:\n      - provider: azure\n",
                  "4: models[0].deployments[0]: needs base_url (set it here, in "
                  "providers.azure.base_url or AZURE_OPENAI_ENDPOINT)");
    s_test_error (verbose,
                  "models:\n  - name: a\n    deployments:\n      - {id: x, provider: openai}\n"
                  "  - name: b\n    deployments:\n      - provider: openai\n"
                  "      - id: x\n        provider: openai\n",
                  "8: models[1].deployments[1].id: duplicate deployment id (also "
                  "models[0].deployments[0])");
    s_test_error (verbose,
                  "models:\n  - name: a\n    deployments:\n      - {id: y, provider: openai}\n"
                  "      - {id: y, provider: openai}\n",
                  "5: models[0].deployments[1].id: duplicate deployment id (also "
                  "models[0].deployments[0])");
    s_test_error (verbose,
                  "models:\n  - name: a\n    deployments:\n      - {id: b/0, provider: openai}\n"
                  "  - name: b\n    provider: openai\n",
                  "6: models[1]: duplicate deployment id (also models[0].deployments[0])");
    s_test_error (verbose,
                  "models:\n  - name: a\n    provider: openai\n    fallbacks:\n      - b\n"
                  "      - nowhere\n  - {name: b, provider: openai}\n",
                  "6: models[0].fallbacks[1]: names no model of this file");
    s_test_error (verbose, "models:\n  - name: a\n    provider: openai\n    fallbacks: [a]\n",
                  "4: models[0].fallbacks[0]: a model cannot fall back to itself");
    s_test_error (verbose, "models:\n  - name: a\n    provider: openai\n    fallbacks: [b, b]\n",
                  "4: models[0].fallbacks[1]: duplicate fallback (also models[0].fallbacks[0])");
    s_test_error (verbose,
                  "models:\n  - name: a\n    provider: openai\n    fallbacks:\n      - {b: 1}\n",
                  "5: models[0].fallbacks[0]: expected a model name");
    s_test_error (verbose, "models:\n  - name: a\n    provider: openai\n    fallbacks: ['']\n",
                  "4: models[0].fallbacks[0]: expected a model name");
    s_test_error (verbose, "models:\n  - name: a\n    provider: openai\n    fallbacks: b\n",
                  "4: models[0].fallbacks: expected a list");
    s_test_error (verbose, "models:\n  - name: a\n    provider: openai\n    strategy: fastest\n",
                  "4: models[0].strategy: expected weighted, least_latency, least_in_flight "
                  "or lowest_cost");
    s_test_error (verbose, "router:\n  strategy: random\n",
                  "2: router.strategy: expected weighted, least_latency, least_in_flight "
                  "or lowest_cost");
    s_test_error (verbose, "router:\n  max_attempts: 11\n",
                  "2: router.max_attempts: expected an integer from 1 to 10");
    s_test_error (verbose, "router:\n  max_attempts: 0\n",
                  "2: router.max_attempts: expected an integer from 1 to 10");
    s_test_error (verbose, "router:\n  first_token_timeout_ms: 0\n",
                  "2: router.first_token_timeout_ms: expected an integer from 1 to 3600000");
    s_test_error (verbose, "router:\n  report_ms: 3600001\n",
                  "2: router.report_ms: expected an integer from 1 to 3600000");
    s_test_error (verbose, "router:\n  retry_base_ms: 10\n  retry_cap_ms: 5\n",
                  "3: router.retry_cap_ms: must be at least retry_base_ms (10)");
    s_test_error (verbose, "router:\n  retry_base_ms: 5000\n",
                  "2: router.retry_base_ms: must not exceed retry_cap_ms (2000)");
    s_test_error (verbose, "router:\n  breaker:\n    cooldown_max_ms: 10\n",
                  "3: router.breaker.cooldown_max_ms: must be at least cooldown_ms (5000)");
    s_test_error (verbose, "router:\n  breaker:\n    window_size: 4097\n",
                  "3: router.breaker.window_size: expected an integer from 1 to 4096");
    s_test_error (verbose, "router:\n  breaker:\n    window_size: 0\n",
                  "3: router.breaker.window_size: expected an integer from 1 to 4096");
    s_test_error (verbose, "router:\n  breaker:\n    min_samples: 5000\n",
                  "3: router.breaker.min_samples: expected an integer from 0 to 4096");
    s_test_error (verbose, "router:\n  breaker:\n    speed: 1\n",
                  "3: router.breaker.speed: unknown setting");
    const char *bad_rates[] = {"1.5", "-0.1", "nan", "inf",    ".5",    "1.",   "0x1",
                               "1e",  "\"\"", "1,5", "' 0.5'", "1e999", "[0.5]"};
    for (size_t i = 0; i < sizeof bad_rates / sizeof bad_rates[0]; i++) {
        char text[AIGW_CONFIG_ERR_MAX];
        snprintf (text, sizeof text, "router:\n  breaker:\n    error_rate: %s\n", bad_rates[i]);
        s_test_error (verbose, text, "3: router.breaker.error_rate: expected a number from 0 to 1");
    }
    const char *bad_prices[] = {"-1", "1000001", "1e7", "NaN", ".Inf", "2.5USD"};
    for (size_t i = 0; i < sizeof bad_prices / sizeof bad_prices[0]; i++) {
        char text[AIGW_CONFIG_ERR_MAX];
        snprintf (text, sizeof text,
                  "models:\n  - name: m\n    deployments:\n      - provider: openai\n"
                  "        price_out: %s\n",
                  bad_prices[i]);
        s_test_error (verbose, text,
                      "5: models[0].deployments[0].price_out: expected a number from 0 "
                      "to 1000000");
    }
    config = s_test_load ("router:\n  breaker:\n    error_rate: 1\n"
                          "models:\n  - name: m\n    deployments:\n"
                          "      - {provider: openai, price_in: 0, price_out: 1e6}\n",
                          path, err);
    assert (config && config->breaker_error_rate == 1);
    assert (config->models[0].deployments[0].price_out == 1e6);
    aigw_config_destroy (&config);
    s_test_error (verbose,
                  "models:\n  - name: m\n    deployments:\n"
                  "      - {provider: openai, weight: -1}\n",
                  "4: models[0].deployments[0].weight: expected an integer from 0 to 1000000");
    s_test_error (verbose,
                  "models:\n  - name: m\n    deployments:\n      - {provider: openai, "
                  "priority: 1001}\n",
                  "4: models[0].deployments[0].priority: expected an integer from 0 to 1000");
    s_test_error (verbose,
                  "models:\n  - name: m\n    deployments:\n      - {provider: openai, "
                  "region: US East}\n",
                  "4: models[0].deployments[0].region: expected an AWS region such as "
                  "us-east-1");
    s_test_error (verbose, "providers:\n  bedrock:\n    region: us/east\n",
                  "3: providers.bedrock.region: expected an AWS region such as us-east-1");
    s_test_error (verbose,
                  "models:\n  - name: m\n    deployments:\n      - {provider: openai, "
                  "api_key_env: 1KEY}\n",
                  "4: models[0].deployments[0].api_key_env: expected an environment "
                  "variable name");
    s_test_error (verbose,
                  "models:\n  - name: m\n    deployments:\n      - {provider: openai, "
                  "base_url: localhost}\n",
                  "4: models[0].deployments[0].base_url: expected an http:// or https:// URL");
    s_test_error (verbose, "providers:\n  gemini:\n    base_url: x\n",
                  "3: providers.gemini.base_url: expected an http:// or https:// URL");
    s_test_error (verbose, "providers:\n  azure:\n    endpoint: x\n",
                  "3: providers.azure.endpoint: unknown setting");

    //  Ids and names: the router keeps AIGW_CONFIG_ID_MAX bytes.
    char long_id[AIGW_CONFIG_ID_MAX + 2];
    memset (long_id, 'x', sizeof long_id - 1);
    long_id[sizeof long_id - 1] = 0;
    char *text = malloc (S_TEST_TEXT_MAX);
    assert (text);
    snprintf (text, S_TEST_TEXT_MAX,
              "models:\n  - name: m\n    deployments:\n      - provider: openai\n"
              "        id: %s\n",
              long_id);
    s_test_error (verbose, text,
                  "5: models[0].deployments[0].id: deployment id longer than 127 bytes");
    long_id[AIGW_CONFIG_ID_MAX] = 0;
    snprintf (text, S_TEST_TEXT_MAX,
              "models:\n  - name: m\n    deployments:\n      - provider: openai\n"
              "        id: %s\n",
              long_id);
    config = s_test_load (text, path, err);
    assert (config && strlen (config->models[0].deployments[0].id) == AIGW_CONFIG_ID_MAX);
    aigw_config_destroy (&config);
    long_id[AIGW_CONFIG_ID_MAX - 2] = 0;
    snprintf (text, S_TEST_TEXT_MAX, "models:\n  - provider: openai\n    name: %s\n", long_id);
    s_test_error (verbose, text, "3: models[0].name: longer than 124 bytes");

    //  Limits: deployments per model, fallbacks per model.
    size_t used = (size_t) snprintf (text, S_TEST_TEXT_MAX,
                                     "models:\n  - name: m\n"
                                     "    deployments:\n");
    for (int i = 0; i < AIGW_CONFIG_MAX_DEPLOYMENTS; i++)
        used += (size_t) snprintf (text + used, S_TEST_TEXT_MAX - used,
                                   "      - {provider: openai, model: u%d}\n", i);
    config = s_test_load (text, path, err);
    assert (config && config->models[0].deployment_count == AIGW_CONFIG_MAX_DEPLOYMENTS);
    assert (strcmp (config->models[0].deployments[15].id, "m/15") == 0);
    aigw_config_destroy (&config);
    snprintf (text + used, S_TEST_TEXT_MAX - used, "      - {provider: openai}\n");
    char want[AIGW_CONFIG_ERR_MAX];
    snprintf (want, sizeof want, "%d: models[0].deployments[%d]: too many entries (at most %d)",
              AIGW_CONFIG_MAX_DEPLOYMENTS + 4, AIGW_CONFIG_MAX_DEPLOYMENTS,
              AIGW_CONFIG_MAX_DEPLOYMENTS);
    s_test_error (verbose, text, want);
    used = (size_t) snprintf (text, S_TEST_TEXT_MAX,
                              "models:\n  - name: m\n    provider: openai\n    fallbacks:\n");
    for (int i = 0; i < AIGW_CONFIG_MAX_FALLBACKS; i++)
        used += (size_t) snprintf (text + used, S_TEST_TEXT_MAX - used, "      - f%d\n", i);
    size_t models_at = used;
    used += (size_t) snprintf (text + used, S_TEST_TEXT_MAX - used,
                               "  - {name: f0, provider: openai, "
                               "fallbacks: [f1, f2, f3, f4, f5, f6, f7]}\n");
    for (int i = 1; i < AIGW_CONFIG_MAX_FALLBACKS; i++)
        used += (size_t) snprintf (text + used, S_TEST_TEXT_MAX - used,
                                   "  - {name: f%d, provider: openai}\n", i);
    config = s_test_load (text, path, err);
    if (!config)
        printf ("\n    %s", err);
    assert (config && config->models[0].fallback_count == AIGW_CONFIG_MAX_FALLBACKS);
    assert (config->models[1].fallback_count == AIGW_CONFIG_MAX_FALLBACKS - 1);
    aigw_config_destroy (&config);
    snprintf (text + models_at, S_TEST_TEXT_MAX - models_at, "      - f8\n");
    snprintf (want, sizeof want, "%d: models[0].fallbacks[%d]: too many entries (at most %d)",
              AIGW_CONFIG_MAX_FALLBACKS + 5, AIGW_CONFIG_MAX_FALLBACKS, AIGW_CONFIG_MAX_FALLBACKS);
    s_test_error (verbose, text, want);
    free (text);

    //  Secrets of the new settings never reach an error message.
    const char *leaks[]
        = {"models:\n  - name: m\n    deployments:\n"
           "      - {provider: openai, api_key: sk-leak-1, base_url: sk-leak-2}\n",
           "models:\n  - name: m\n    deployments:\n"
           "      - {provider: openai, api_key: [sk-leak-3]}\n",
           "models:\n  - name: m\n    deployments:\n      - {provider: sk-leak-4}\n",
           "providers:\n  bedrock:\n    secret_access_key: sk-leak-5\n    region: sk-leak-6!\n",
           "providers:\n  azure:\n    api_key: sk-leak-7\n    base_url: sk-leak-8\n",
           "router:\n  breaker:\n    error_rate: sk-leak-9\n"};
    for (size_t i = 0; i < sizeof leaks / sizeof leaks[0]; i++) {
        config = s_test_load (leaks[i], path, err);
        if (verbose)
            printf ("\n    leak test: %s", err);
        assert (!config && strstr (err, "sk-leak") == NULL);
    }
    setenv ("AWS_SECRET_ACCESS_KEY", "sk-leak-env", 1);
    setenv ("AWS_REGION", "sk-leak-region!", 1);
    config = aigw_config_new (NULL, err, sizeof err);
    assert (!config && strstr (err, "sk-leak") == NULL);
    unsetenv ("AWS_SECRET_ACCESS_KEY");
    unsetenv ("AWS_REGION");
}

//  Selftest: public API only; writes its files under /tmp and removes them,
//  and leaves the environment as it found it.
void
aigw_config_test (bool verbose)
{
    char path[S_TEST_PATH_MAX];
    char err[AIGW_CONFIG_ERR_MAX];
    char *saved[S_TEST_VAR_COUNT];
    for (size_t i = 0; i < S_TEST_VAR_COUNT; i++) {
        const char *value = getenv (s_test_vars[i]);
        saved[i] = value ? strdup (value) : NULL;
        unsetenv (s_test_vars[i]);
    }

    //  Hash: the FIPS 180-2 vectors.
    unsigned char hash[32];
    static const unsigned char abc[32]
        = {0xba, 0x78, 0x16, 0xbf, 0x8f, 0x01, 0xcf, 0xea, 0x41, 0x41, 0x40,
           0xde, 0x5d, 0xae, 0x22, 0x23, 0xb0, 0x03, 0x61, 0xa3, 0x96, 0x17,
           0x7a, 0x9c, 0xb4, 0x10, 0xff, 0x61, 0xf2, 0x00, 0x15, 0xad};
    aigw_config_hash_secret ("abc", hash);
    assert (memcmp (hash, abc, sizeof abc) == 0);
    static const unsigned char empty[32]
        = {0xe3, 0xb0, 0xc4, 0x42, 0x98, 0xfc, 0x1c, 0x14, 0x9a, 0xfb, 0xf4,
           0xc8, 0x99, 0x6f, 0xb9, 0x24, 0x27, 0xae, 0x41, 0xe4, 0x64, 0x9b,
           0x93, 0x4c, 0xa4, 0x95, 0x99, 0x1b, 0x78, 0x52, 0xb8, 0x55};
    aigw_config_hash_secret ("", hash);
    assert (memcmp (hash, empty, sizeof empty) == 0);

    //  Defaults.
    aigw_config_t *config = aigw_config_new (NULL, err, sizeof err);
    assert (config);
    assert (strcmp (config->host, AIGW_DEFAULT_HOST) == 0);
    assert (config->port == AIGW_DEFAULT_PORT);
    assert (config->max_body_bytes == AIGW_DEFAULT_MAX_BODY_BYTES);
    assert (config->request_timeout_ms == AIGW_DEFAULT_REQUEST_TIMEOUT_MS);
    assert (config->read_timeout_ms == AIGW_DEFAULT_READ_TIMEOUT_MS);
    assert (config->edge_threads == AIGW_DEFAULT_EDGE_THREADS);
    assert (strcmp (config->broker_endpoint, AIGW_DEFAULT_BROKER_ENDPOINT) == 0);
    assert (config->heartbeat_ms == AIGW_DEFAULT_HEARTBEAT_MS);
    assert (config->liveness == AIGW_DEFAULT_LIVENESS);
    assert (config->queue_max == AIGW_DEFAULT_QUEUE_MAX);
    assert (config->worker_credit == AIGW_DEFAULT_WORKER_CREDIT);
    assert (config->master_key == NULL);
    assert (memcmp (config->master_sha256, (unsigned char[32]){0}, 32) == 0);
    assert (config->key_count == 0);
    assert (config->default_rpm == AIGW_DEFAULT_RPM);
    assert (config->master_rpm == 0);
    assert (config->max_prompt_chars == AIGW_DEFAULT_MAX_PROMPT_CHARS);
    assert (config->rule_count == 0);
    assert (config->cache_enabled);
    assert (config->cache_ttl_s == AIGW_DEFAULT_CACHE_TTL_S);
    assert (config->cache_max_bytes == AIGW_DEFAULT_CACHE_MAX_BYTES);
    assert (config->openai_api_key == NULL);
    assert (config->anthropic_api_key == NULL);
    assert (config->model_count == 3);
    assert (strcmp (config->models[0].name, "gpt-4o-mini") == 0);
    assert (strcmp (config->models[2].upstream_model, "text-embedding-3-small") == 0);
    const aigw_config_model_t *model = aigw_config_model (config, "gpt-4o");
    assert (model && strcmp (model->provider, "openai") == 0);
    assert (aigw_config_model (config, "gpt-5") == NULL);
    assert (aigw_config_model (config, NULL) == NULL);
    assert (strcmp (config->log_level, "info") == 0);
    assert (config->database_url == NULL);
    assert (config->db_pool_size == AIGW_DEFAULT_DB_POOL_SIZE);
    assert (config->db_connect_timeout_ms == AIGW_DEFAULT_DB_CONNECT_TIMEOUT_MS);
    assert (config->db_statement_timeout_ms == AIGW_DEFAULT_DB_STATEMENT_TIMEOUT_MS);
    assert (config->auth_cache_ttl_s == AIGW_DEFAULT_AUTH_CACHE_TTL_S);
    assert (config->auth_negative_cache_max == AIGW_DEFAULT_AUTH_NEGATIVE_CACHE_MAX);
    assert (config->auth_negative_ttl_s == AIGW_DEFAULT_AUTH_NEGATIVE_TTL_S);
    assert (config->auth_db_grace_s == AIGW_DEFAULT_AUTH_DB_GRACE_S);
    aigw_config_destroy (&config);
    assert (config == NULL);
    aigw_config_destroy (&config);

    //  An empty file, and one with only comments, are all defaults.
    config = s_test_load ("", path, err);
    assert (config && config->port == AIGW_DEFAULT_PORT && config->model_count == 3);
    aigw_config_destroy (&config);
    config = s_test_load ("# nothing\n---\n", path, err);
    assert (config);
    aigw_config_destroy (&config);

    //  Every setting.
    const char *full
        = "# every setting\n"
          "server:\n"
          "  host: 0.0.0.0\n"
          "  port: 9000\n"
          "  max_body_bytes: 1048576\n"
          "  request_timeout_ms: 60000\n"
          "  read_timeout_ms: 5000\n"
          "  threads: 64\n"
          "broker:\n"
          "  endpoint: tcp://127.0.0.1:5555\n"
          "  heartbeat_ms: 500\n"
          "  liveness: 3\n"
          "  queue_max: 100\n"
          "  worker_credit: 10\n"
          "auth:\n"
          "  master_key: sk-master-file\n"
          "  keys:\n"
          "    - name: team-a\n"
          "      key: sk-team-a\n"
          "      tenant: team-a\n"
          "      role: admin\n"
          "      rpm: 60\n"
          "    - name: team-b\n"
          "      key_sha256: BA7816BF8F01CFEA414140DE5DAE2223B00361A396177A9CB410FF61F20015AD\n"
          "      tenant: team-b\n"
          "  cache_ttl_s: 30\n"
          "  negative_cache_max: 0\n"
          "  negative_ttl_s: 2\n"
          "  db_grace_s: 0\n"
          "ratelimit:\n"
          "  default_rpm: 100\n"
          "  master_rpm: 1000\n"
          "guardrail:\n"
          "  max_prompt_chars: 5000\n"
          "  deny:\n"
          "    - name: no-passwords\n"
          "      pattern: \"(?i)password\\\\s*[:=]\"\n"
          "    - {name: no-ssn, pattern: '\\d{3}-\\d{2}-\\d{4}'}\n"
          "cache:\n"
          "  enabled: false\n"
          "  ttl_s: 60\n"
          "  max_bytes: 1024\n"
          "providers:\n"
          "  connect_timeout_ms: 1000\n"
          "  max_host_connections: 8\n"
          "  openai:\n"
          "    base_url: http://127.0.0.1:9999/v1\n"
          "    api_key: sk-openai-file\n"
          "  anthropic:\n"
          "    base_url: http://127.0.0.1:9998\n"
          "    api_key: sk-ant-file\n"
          "models:\n"
          "  - name: fast\n"
          "    provider: openai\n"
          "    upstream_model: gpt-4o-mini\n"
          "  - name: mistral-small\n"
          "    provider: mistral\n"
          "log_level: debug\n"
          "database:\n"
          "  url: postgresql://aigw@localhost/aigw\n"
          "  pool_size: 64\n"
          "  connect_timeout_ms: 250\n"
          "  statement_timeout_ms: 1500\n";
    config = s_test_load (full, path, err);
    if (!config)
        printf ("\n    %s", err);
    assert (config);
    assert (strcmp (config->host, "0.0.0.0") == 0);
    assert (config->port == 9000);
    assert (config->max_body_bytes == 1048576);
    assert (config->request_timeout_ms == 60000);
    assert (config->read_timeout_ms == 5000);
    assert (config->edge_threads == 64);
    assert (strcmp (config->broker_endpoint, "tcp://127.0.0.1:5555") == 0);
    assert (config->heartbeat_ms == 500);
    assert (config->liveness == 3);
    assert (config->queue_max == 100);
    assert (config->worker_credit == 10);
    assert (strcmp (config->master_key, "sk-master-file") == 0);
    aigw_config_hash_secret ("sk-master-file", hash);
    assert (memcmp (config->master_sha256, hash, 32) == 0);
    assert (config->key_count == 2);
    assert (strcmp (config->keys[0].name, "team-a") == 0);
    assert (strcmp (config->keys[0].tenant, "team-a") == 0);
    assert (strcmp (config->keys[0].role, "admin") == 0);
    assert (config->keys[0].rpm == 60);
    aigw_config_hash_secret ("sk-team-a", hash);
    assert (memcmp (config->keys[0].sha256, hash, 32) == 0);
    assert (strcmp (config->keys[1].role, AIGW_DEFAULT_ROLE) == 0);
    assert (config->keys[1].rpm == 0);
    assert (memcmp (config->keys[1].sha256, abc, 32) == 0);
    assert (config->default_rpm == 100);
    assert (config->master_rpm == 1000);
    assert (config->max_prompt_chars == 5000);
    assert (config->rule_count == 2);
    assert (strcmp (config->rules[0].name, "no-passwords") == 0);
    assert (strcmp (config->rules[0].pattern, "(?i)password\\s*[:=]") == 0);
    assert (strcmp (config->rules[1].pattern, "\\d{3}-\\d{2}-\\d{4}") == 0);
    assert (!config->cache_enabled);
    assert (config->cache_ttl_s == 60);
    assert (config->cache_max_bytes == 1024);
    assert (config->connect_timeout_ms == 1000);
    assert (config->max_host_connections == 8);
    assert (strcmp (config->openai_base_url, "http://127.0.0.1:9999/v1") == 0);
    assert (strcmp (config->openai_api_key, "sk-openai-file") == 0);
    assert (strcmp (config->anthropic_base_url, "http://127.0.0.1:9998") == 0);
    assert (strcmp (config->anthropic_api_key, "sk-ant-file") == 0);
    assert (config->model_count == 2);
    model = aigw_config_model (config, "fast");
    assert (model && strcmp (model->upstream_model, "gpt-4o-mini") == 0);
    model = aigw_config_model (config, "mistral-small");
    assert (model && strcmp (model->provider, "mistral") == 0);
    assert (strcmp (model->upstream_model, "mistral-small") == 0);
    assert (aigw_config_model (config, "gpt-4o") == NULL);
    assert (strcmp (config->log_level, "debug") == 0);
    assert (strcmp (config->database_url, "postgresql://aigw@localhost/aigw") == 0);
    assert (config->db_pool_size == 64);
    assert (config->db_connect_timeout_ms == 250);
    assert (config->db_statement_timeout_ms == 1500);
    assert (config->auth_cache_ttl_s == 30);
    assert (config->auth_negative_cache_max == 0);
    assert (config->auth_negative_ttl_s == 2);
    assert (config->auth_db_grace_s == 0);
    aigw_config_destroy (&config);

    //  database_url, the older spelling of database.url, still works.
    config = s_test_load ("database_url: postgresql:///old\n", path, err);
    assert (config && strcmp (config->database_url, "postgresql:///old") == 0);
    aigw_config_destroy (&config);

    //  ${VAR} expansion, before type checks; unset expands to empty, and an
    //  empty optional string is unset.
    setenv ("AIGW_TEST_HOST", "10.0.0.1", 1);
    setenv ("AIGW_TEST_PORT", "7000", 1);
    setenv ("AIGW_TEST_SECRET", "sk-from-env", 1);
    config = s_test_load ("server:\n"
                          "  host: ${AIGW_TEST_HOST}\n"
                          "  port: ${AIGW_TEST_PORT}\n"
                          "auth:\n"
                          "  master_key: ${AIGW_TEST_UNSET}\n"
                          "  keys:\n"
                          "    - name: k\n"
                          "      key: \"${AIGW_TEST_SECRET}\"\n"
                          "      tenant: t-${AIGW_TEST_PORT}-${AIGW_TEST_UNSET}x\n"
                          "providers:\n"
                          "  openai:\n"
                          "    api_key: ${AIGW_TEST_UNSET}\n"
                          "log_level: ${AIGW_TEST_UNSET}\n"
                          "database_url: 'lit $${HOME} $$ $x ${AIGW_TEST_PORT}'\n",
                          path, err);
    assert (config);
    assert (strcmp (config->host, "10.0.0.1") == 0);
    assert (config->port == 7000);
    assert (config->master_key == NULL);
    aigw_config_hash_secret ("sk-from-env", hash);
    assert (memcmp (config->keys[0].sha256, hash, 32) == 0);
    assert (strcmp (config->keys[0].tenant, "t-7000-x") == 0);
    assert (config->openai_api_key == NULL);
    assert (strcmp (config->log_level, "info") == 0);
    assert (strcmp (config->database_url, "lit ${HOME} $$ $x 7000") == 0);
    aigw_config_destroy (&config);

    //  The environment overrides the file; empty variables do not.
    const char *file = "server: {host: 1.2.3.4, port: 9000}\n"
                       "broker: {endpoint: 'ipc:///tmp/a'}\n"
                       "auth: {master_key: sk-file}\n"
                       "providers:\n"
                       "  openai: {base_url: 'http://a', api_key: a}\n"
                       "  anthropic: {base_url: 'http://b', api_key: b}\n"
                       "log_level: warn\n"
                       "database: {url: 'postgresql:///file', pool_size: 2}\n";
    setenv ("AIGW_PORT", "9100", 1);
    setenv ("AIGW_HOST", "::1", 1);
    setenv ("DATABASE_URL", "postgresql:///env", 1);
    setenv ("AIGW_MASTER_KEY", "sk-env-master", 1);
    setenv ("AIGW_BROKER", "tcp://*:5555", 1);
    setenv ("OPENAI_API_KEY", "sk-env-openai", 1);
    setenv ("OPENAI_BASE_URL", "http://127.0.0.1:1/v1", 1);
    setenv ("ANTHROPIC_API_KEY", "sk-env-ant", 1);
    setenv ("ANTHROPIC_BASE_URL", "http://127.0.0.1:2", 1);
    setenv ("AIGW_LOG_LEVEL", "", 1);
    config = s_test_load (file, path, err);
    assert (config);
    assert (config->port == 9100);
    assert (strcmp (config->host, "::1") == 0);
    assert (strcmp (config->database_url, "postgresql:///env") == 0);
    assert (config->db_pool_size == 2);
    assert (strcmp (config->master_key, "sk-env-master") == 0);
    aigw_config_hash_secret ("sk-env-master", hash);
    assert (memcmp (config->master_sha256, hash, 32) == 0);
    assert (strcmp (config->broker_endpoint, "tcp://*:5555") == 0);
    assert (strcmp (config->openai_api_key, "sk-env-openai") == 0);
    assert (strcmp (config->openai_base_url, "http://127.0.0.1:1/v1") == 0);
    assert (strcmp (config->anthropic_api_key, "sk-env-ant") == 0);
    assert (strcmp (config->anthropic_base_url, "http://127.0.0.1:2") == 0);
    assert (strcmp (config->log_level, "warn") == 0);
    aigw_config_destroy (&config);
    setenv ("AIGW_LOG_LEVEL", "error", 1);
    config = aigw_config_new (NULL, err, sizeof err);
    assert (config && strcmp (config->log_level, "error") == 0);
    assert (config->port == 9100);
    aigw_config_destroy (&config);

    //  Bad environment values name the variable.
    const char *bad_env[][3]
        = {{"AIGW_PORT", "abc", "AIGW_PORT: expected an integer from 1 to 65535"},
           {"AIGW_PORT", "0", "AIGW_PORT: expected an integer from 1 to 65535"},
           {"AIGW_LOG_LEVEL", "loud", "AIGW_LOG_LEVEL: expected error, warn, info or debug"},
           {"AIGW_BROKER", "nowhere",
            "AIGW_BROKER: expected an inproc://, ipc:// "
            "or tcp:// endpoint"},
           {"OPENAI_BASE_URL", "api.openai.com",
            "OPENAI_BASE_URL: expected an http:// or https:// URL"}};
    for (size_t i = 0; i < sizeof bad_env / sizeof bad_env[0]; i++) {
        setenv ("AIGW_PORT", "9100", 1);
        setenv ("AIGW_LOG_LEVEL", "info", 1);
        setenv ("AIGW_BROKER", "inproc://x", 1);
        setenv ("OPENAI_BASE_URL", "http://x", 1);
        setenv (bad_env[i][0], bad_env[i][1], 1);
        config = aigw_config_new (NULL, err, sizeof err);
        char want[AIGW_CONFIG_ERR_MAX];
        snprintf (want, sizeof want, "environment: %s", bad_env[i][2]);
        if (verbose || config || strcmp (err, want))
            printf ("\n    want: %s\n    got:  %s", want, err);
        assert (!config && strcmp (err, want) == 0);
    }
    for (size_t i = 0; i < S_TEST_VAR_COUNT; i++)
        unsetenv (s_test_vars[i]);

    //  Errors: "FILE:LINE: SETTING: problem".
    s_test_error (verbose, "server:\n  port: 70000\n",
                  "2: server.port: expected an integer from 1 to 65535");
    s_test_error (verbose, "servr:\n  port: 1\n", "1: servr: unknown setting");
    s_test_error (verbose, "server:\n  prot: 1\n", "2: server.prot: unknown setting");
    s_test_error (verbose,
                  "guardrail:\n"
                  "  deny:\n"
                  "    - name: a\n"
                  "      pattern: a+\n"
                  "    - name: b\n"
                  "      pattern: \"(abcd\"\n",
                  "6: guardrail.deny[1].pattern: invalid regex at offset 5: "
                  "missing closing parenthesis");
    s_test_error (verbose,
                  "# keys\n"
                  "auth:\n"
                  "  keys:\n"
                  "    - name: team-a\n"
                  "      tenant: team-a\n",
                  "4: auth.keys[0]: needs key or key_sha256");
    s_test_error (verbose, "auth:\n  keys:\n    - {key: x, tenant: t}\n",
                  "3: auth.keys[0]: needs name");
    s_test_error (verbose, "auth:\n  keys:\n    - {name: n, key: x}\n",
                  "3: auth.keys[0]: needs tenant");
    s_test_error (verbose, "auth:\n  keys:\n    - {name: n, key: x, tenant: t, x: 1}\n",
                  "3: auth.keys[0].x: unknown setting");
    s_test_error (verbose, "auth:\n  keys:\n    - {name: n, key_sha256: abc, tenant: t}\n",
                  "3: auth.keys[0].key_sha256: expected 64 hex digits");
    s_test_error (verbose,
                  "auth:\n  keys:\n    - {name: n, key: x, tenant: t,\n"
                  "       key_sha256: e3b0c44298fc1c149afbf4c8996fb924"
                  "27ae41e4649b934ca495991b7852b855}\n",
                  "3: auth.keys[0]: give key or key_sha256, not both");
    s_test_error (verbose,
                  "auth:\n  keys:\n    - {name: a, key: x, tenant: t}\n    - {name: b, tenant: t,\n"
                  "       key_sha256: 2D711642B726B04401627CA9FBAC32F5"
                  "C8530FB1903CC4DB02258717921A4881}\n",
                  "5: auth.keys[1].key_sha256: same secret as auth.keys[0]");
    s_test_error (verbose, "server:\n  port: 8000\n bad: 1\n", "3: invalid YAML: ");
    s_test_error (verbose, "server: [1, 2\n", "2: invalid YAML: ");
    s_test_error (verbose, "a: *nope\n", "1: invalid YAML: ");
    s_test_error (verbose, "server:\n  port: 1\n  port: 2\n",
                  "3: server.port: duplicate setting (also on line 2)");
    s_test_error (verbose,
                  "auth:\n  keys:\n"
                  "    - {name: a, key: x1, tenant: t}\n"
                  "    - name: a\n"
                  "      key: x2\n"
                  "      tenant: t\n",
                  "4: auth.keys[1].name: duplicate name (also auth.keys[0])");
    s_test_error (verbose,
                  "guardrail:\n  deny:\n"
                  "    - {name: a, pattern: x}\n"
                  "    - {name: a, pattern: y}\n",
                  "4: guardrail.deny[1].name: duplicate name (also guardrail.deny[0])");
    s_test_error (verbose,
                  "models:\n  - {name: m, provider: openai}\n"
                  "  - {name: m, provider: openai}\n",
                  "3: models[1].name: duplicate name (also models[0])");
    s_test_error (verbose, "models:\n  - name: m\n    provider: mystery\n",
                  "3: models[0].provider: unknown provider, expected one of openai, azure");
    s_test_error (verbose, "models:\n  - name: m\n", "2: models[0]: needs provider");
    s_test_error (verbose, "models:\n  - provider: openai\n", "2: models[0]: needs name");
    s_test_error (verbose, "log_format: xml\n", "1: log_format: expected text or json");
    s_test_error (verbose, "log_level: verbose\n",
                  "1: log_level: expected error, warn, info or debug");
    s_test_error (verbose, "server: 5\n", "1: server: expected a mapping");
    s_test_error (verbose, "providers:\n  openai: [a]\n",
                  "2: providers.openai: expected a mapping");
    s_test_error (verbose, "auth:\n  keys:\n    - just-a-string\n",
                  "3: auth.keys[0]: expected a mapping");
    s_test_error (verbose, "models: {name: m}\n", "1: models: expected a list");
    s_test_error (verbose, "- server\n", "1: expected a mapping of settings at the top level");
    s_test_error (verbose, "server: {}\n---\nserver: {}\n", "3: only one YAML document is allowed");
    s_test_error (verbose, "? [a]\n: 1\n", "1: expected a setting name, found a list");
    s_test_error (verbose, "cache:\n  enabled: yes\n", "2: cache.enabled: expected true or false");
    s_test_error (verbose, "server:\n  host: [a]\n", "2: server.host: expected a string");
    s_test_error (verbose, "server:\n  host: \"a\\0b\"\n",
                  "2: server.host: contains a NUL character");
    s_test_error (verbose, "server:\n  host: ${AIGW_TEST_HOST\n",
                  "2: server.host: unterminated ${ (write $${ for a literal ${)");
    s_test_error (verbose, "server:\n  host: ${1X}\n",
                  "2: server.host: invalid variable name in ${...}");
    s_test_error (verbose, "server:\n  port: ${AIGW_TEST_UNSET}\n",
                  "2: server.port: expected an integer from 1 to 65535");
    s_test_error (verbose, "broker:\n  endpoint: localhost:5555\n",
                  "2: broker.endpoint: expected an inproc://, ipc:// or tcp:// endpoint");
    s_test_error (verbose, "providers:\n  anthropic:\n    base_url: ftp://x\n",
                  "3: providers.anthropic.base_url: expected an http:// or https:// URL");
    const char *bad_integers[] = {
        "-1",      "+5", "0x10", "1.5", "08000", "1e3", "1_000", "\"\"", "99999999999999999999999",
        "\" 80 \""};
    for (size_t i = 0; i < sizeof bad_integers / sizeof bad_integers[0]; i++) {
        char text[AIGW_CONFIG_ERR_MAX];
        snprintf (text, sizeof text, "broker:\n  liveness: %s\n", bad_integers[i]);
        s_test_error (verbose, text, "2: broker.liveness: expected an integer from 1 to 100");
    }
    s_test_error (verbose, "cache:\n  max_bytes: 1099511627777\n",
                  "2: cache.max_bytes: expected an integer from 1 to 1099511627776");
    s_test_error (verbose, "ratelimit:\n  master_rpm: 1000000001\n",
                  "2: ratelimit.master_rpm: expected an integer from 0 to 1000000000");

    //  Limits: a mapping kept as JSON text (plain scalars typed, quoted
    //  ones strings, ${VAR} expanded), ratelimit.tenants and .default.
    setenv ("AIGW_TEST_RPD", "250", 1);
    config
        = s_test_load ("auth:\n  keys:\n    - name: k\n      key: sk-limits-test-key\n"
                       "      tenant: acme\n      limits:\n        rpd: ${AIGW_TEST_RPD}\n"
                       "        budget: {usd: 2.5, period: \"7d\", reset: 2026-12-01T00:00:00Z}\n"
                       "ratelimit:\n  default: {rpm: 50, concurrency: 2}\n"
                       "  tenants:\n    - name: acme\n      limits: {rpm: 1000}\n"
                       "    - name: other\n  snapshot_ms: 250\n",
                       path, err);
    unsetenv ("AIGW_TEST_RPD");
    if (!config)
        fprintf (stderr, "%s\n", err);
    assert (config && config->key_count == 1 && config->tenant_count == 2);
    assert (strcmp (config->keys[0].limits, "{\"rpd\":250,\"budget\":{\"usd\":2.5,\"period\":"
                                            "\"7d\",\"reset\":\"2026-12-01T00:00:00Z\"}}")
            == 0);
    assert (strcmp (config->tenants[0].name, "acme") == 0
            && strcmp (config->tenants[0].limits, "{\"rpm\":1000}") == 0);
    assert (config->tenants[1].limits == NULL);
    assert (config->rl_default_rpm == 50 && config->rl_default_concurrency == 2
            && config->rl_default_tpm == 0);
    assert (config->rl_snapshot_ms == 250 && config->rl_default_max_tokens == 4096
            && config->rl_settle_grace_ms == 5000);
    aigw_config_destroy (&config);
    s_test_error (verbose, "ratelimit:\n  tenants:\n    - limits: {rpm: 5}\n",
                  "3: ratelimit.tenants[0]: needs name");
    s_test_error (verbose, "ratelimit:\n  tenants:\n    - {name: a}\n    - {name: a}\n",
                  "4: ratelimit.tenants[1].name: duplicate name (also ratelimit.tenants[0])");
    s_test_error (verbose, "ratelimit:\n  tenants:\n    - name: a\n      limits: [1]\n",
                  "4: ratelimit.tenants[0].limits: expected a mapping");
    //  The library links aigw_limits whole, whose check names the member.
    s_test_error (verbose, "ratelimit:\n  tenants:\n    - name: a\n      limits: {rpm: 0}\n",
                  "4: ratelimit.tenants[0].limits: 'limits.rpm' must be an integer");
    s_test_error (verbose, "database:\n  pool_size: 0\n",
                  "2: database.pool_size: expected an integer from 1 to 64");
    s_test_error (verbose, "database:\n  pool_size: 65\n",
                  "2: database.pool_size: expected an integer from 1 to 64");
    s_test_error (verbose, "database:\n  connect_timeout_ms: 0\n",
                  "2: database.connect_timeout_ms: expected an integer from 1 to 3600000");
    s_test_error (verbose, "database:\n  statement_timeout_ms: 3600001\n",
                  "2: database.statement_timeout_ms: expected an integer from 1 to 3600000");
    s_test_error (verbose, "database:\n  url: [a]\n", "2: database.url: expected a string");
    s_test_error (verbose, "database:\n  pool: 4\n", "2: database.pool: unknown setting");
    s_test_error (verbose, "database: postgresql:///x\n", "1: database: expected a mapping");
    s_test_error (verbose, "auth:\n  cache_ttl_s: 0\n",
                  "2: auth.cache_ttl_s: expected an integer from 1 to 31536000");
    s_test_error (verbose, "auth:\n  negative_cache_max: 10000001\n",
                  "2: auth.negative_cache_max: expected an integer from 0 to 10000000");
    s_test_error (verbose, "auth:\n  negative_ttl_s: 0\n",
                  "2: auth.negative_ttl_s: expected an integer from 1 to 31536000");
    s_test_error (verbose, "auth:\n  db_grace_s: -1\n",
                  "2: auth.db_grace_s: expected an integer from 0 to 31536000");
    s_test_error (verbose, "a: \xc3\x28\n", "1: invalid YAML: ");

    //  Count limits: one entry too many is an error on that entry's line.
    char *text = malloc (S_TEST_TEXT_MAX);
    assert (text);
    struct {
        const char *head;     //  section lines
        const char *item;     //  one entry, %d its number
        int max;              //  the limit
        const char *setting;  //  the list's setting name
        int head_lines;       //  lines before the first entry
    } lists[] = {{"auth:\n  keys:\n", "    - {name: k%d, key: s%d, tenant: t}\n",
                  AIGW_CONFIG_MAX_KEYS, "auth.keys", 2},
                 {"guardrail:\n  deny:\n", "    - {name: r%d, pattern: 'x%d'}\n",
                  AIGW_CONFIG_MAX_RULES, "guardrail.deny", 2},
                 {"models:\n", "  - {name: m%d, provider: openai, upstream_model: u%d}\n",
                  AIGW_CONFIG_MAX_MODELS, "models", 1}};
    for (size_t l = 0; l < sizeof lists / sizeof lists[0]; l++) {
        const char *item = lists[l].item ? lists[l].item : "";
        size_t used = (size_t) snprintf (text, S_TEST_TEXT_MAX, "%s", lists[l].head);
        for (int i = 0; i < lists[l].max; i++)
            used += (size_t) snprintf (text + used, S_TEST_TEXT_MAX - used, item, i, i);
        assert (used < S_TEST_TEXT_MAX);
        config = s_test_load (text, path, err);
        assert (config);
        assert (lists[l].max
                == (l == 0   ? config->key_count
                    : l == 1 ? config->rule_count
                             : config->model_count));
        aigw_config_destroy (&config);
        used += (size_t) snprintf (text + used, S_TEST_TEXT_MAX - used, item, lists[l].max,
                                   lists[l].max);
        assert (used < S_TEST_TEXT_MAX);
        char want[AIGW_CONFIG_ERR_MAX];
        snprintf (want, sizeof want, "%d: %s[%d]: too many entries (at most %d)",
                  lists[l].head_lines + lists[l].max + 1, lists[l].setting, lists[l].max,
                  lists[l].max);
        s_test_error (verbose, text, want);
    }
    free (text);

    //  A file that cannot be read: no line.
    char want[AIGW_CONFIG_ERR_MAX];
    config = aigw_config_new ("/nonexistent/aigw.yaml", err, sizeof err);
    assert (!config);
    assert (strcmp (err, "/nonexistent/aigw.yaml: cannot read: No such file or directory") == 0);
    config = aigw_config_new ("/tmp", err, sizeof err);
    assert (!config);
    assert (strcmp (err, "/tmp: cannot read: Is a directory") == 0);

    //  Secrets never reach an error message.
    const char *leaks[]
        = {"auth:\n  master_key: sk-leak-1\n  keys:\n"
           "    - {name: a, key: sk-leak-2, tenant: t}\n"
           "    - {name: b, key: sk-leak-2, tenant: t}\n",
           "auth:\n  keys:\n    - {name: a, key: sk-leak-3, tenant: t,\n"
           "       key_sha256: "
           "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855}\n",
           "auth:\n  keys:\n    - {name: a, key: [sk-leak-5], tenant: t}\n",
           "providers:\n  openai:\n    api_key: {sk-leak-6: 1}\n",
           "providers:\n  openai:\n    api_key: sk-leak-7\n    base_url: sk-leak-8\n",
           "auth:\n  master_key: sk-leak-9 ${\n"};
    for (size_t i = 0; i < sizeof leaks / sizeof leaks[0]; i++) {
        config = s_test_load (leaks[i], path, err);
        if (verbose)
            printf ("\n    leak test: %s", err);
        assert (!config);
        assert (strstr (err, path) == err);
        assert (strstr (err, "sk-leak") == NULL);
    }
    config = s_test_load (leaks[0], path, err);
    snprintf (want, sizeof want, "%s:5: auth.keys[1].key: same secret as auth.keys[0]", path);
    assert (strcmp (err, want) == 0);
    setenv ("AIGW_MASTER_KEY", "sk-leak-env", 1);
    setenv ("AIGW_PORT", "sk-leak-port", 1);
    config = aigw_config_new (NULL, err, sizeof err);
    assert (!config && strstr (err, "sk-leak") == NULL);
    unsetenv ("AIGW_MASTER_KEY");
    unsetenv ("AIGW_PORT");

    //  A NULL or tiny error buffer is fine.
    config = s_test_load ("servr: 1\n", path, NULL);
    assert (!config);
    config = s_test_load ("servr: 1\n", path, err);
    assert (!config);
    char tiny[4];
    s_test_write ("servr: 1\n", path, sizeof path);
    assert (aigw_config_new (path, tiny, sizeof tiny) == NULL);
    assert (strlen (tiny) == 3);
    unlink (path);

    //  Admin tokens: auth.jwt.
    config = s_test_load ("auth:\n  jwt:\n    hs256_secret: s3cret-s3cret-s3cret-s3cret-s3cret\n"
                          "    issuer: https://id.example\n    audience: aigw\n"
                          "    leeway_s: 30\n",
                          path, err);
    assert (config);
    assert (strcmp (config->jwt_issuer, "https://id.example") == 0);
    assert (strcmp (config->jwt_audience, "aigw") == 0);
    assert (config->jwt_leeway_s == 30 && config->jwt_jwks_file == NULL);
    aigw_config_destroy (&config);
    s_test_error (verbose, "auth:\n  jwt:\n    leeway_s: 4000\n",
                  "3: auth.jwt.leeway_s: expected an integer from 0 to 3600");
    s_test_error (verbose, "auth:\n  jwt:\n    jwks_url: ftp://x\n", "3: auth.jwt.jwks_url: ");

    s_test_deployments (verbose);

    for (size_t i = 0; i < S_TEST_VAR_COUNT; i++) {
        if (saved[i])
            setenv (s_test_vars[i], saved[i], 1);
        free (saved[i]);
    }
}
