/*  aigw_config: the settings of one aigw process.

    Loaded from a YAML file (${VAR} expands the environment), then the SPEC's
    environment variables override it. An invalid file stops start-up with a
    message that names the file, the line and the setting, for example
        aigw.yaml:12: server.port: expected an integer from 1 to 65535
    Every field has a default, so aigw_config_new (NULL, ...) is usable. */
#ifndef AIGW_CONFIG_H_INCLUDED
#define AIGW_CONFIG_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

//  Defaults: every limit is named here and overridable in the file.
#define AIGW_DEFAULT_PORT               8000
#define AIGW_DEFAULT_HOST               "127.0.0.1"
#define AIGW_DEFAULT_MAX_BODY_BYTES     (4 * 1024 * 1024)
#define AIGW_DEFAULT_REQUEST_TIMEOUT_MS 120000
#define AIGW_DEFAULT_READ_TIMEOUT_MS    30000
#define AIGW_DEFAULT_EDGE_THREADS       10240
//  One pipeline thread: breakers, RPM capacity and health figures are per
//  provider instance, so several pipelines in one process split them (see
//  README). Raise it on machines with cores to spare.
#define AIGW_DEFAULT_PIPELINES 1
//  Most pipeline threads in one process.
#define AIGW_CONFIG_PIPELINES_MAX     64
#define AIGW_DEFAULT_BROKER_ENDPOINT  "inproc://aigw-broker"
#define AIGW_DEFAULT_HEARTBEAT_MS     250
#define AIGW_DEFAULT_LIVENESS         8
#define AIGW_DEFAULT_QUEUE_MAX        20000
#define AIGW_DEFAULT_WORKER_CREDIT    20000
#define AIGW_DEFAULT_RPM              600
#define AIGW_DEFAULT_MAX_PROMPT_CHARS 100000
#define AIGW_DEFAULT_CACHE_TTL_S      300
#define AIGW_DEFAULT_CACHE_MAX_BYTES  (64 * 1024 * 1024)
#define AIGW_DEFAULT_CACHE_MAX_TTL_S  86400
#define AIGW_DEFAULT_CACHE_SIMILARITY 0.75
//  Longest the provider waits for cache.semantic.model's vector before the
//  request goes on without one (exact lookup only).
#define AIGW_DEFAULT_CACHE_EMBED_TIMEOUT_MS  2000
#define AIGW_DEFAULT_ROLE                    "developer"
#define AIGW_DEFAULT_LOG_LEVEL               "info"
#define AIGW_DEFAULT_DB_POOL_SIZE            4
#define AIGW_DEFAULT_DB_CONNECT_TIMEOUT_MS   3000
#define AIGW_DEFAULT_DB_STATEMENT_TIMEOUT_MS 5000
#define AIGW_DEFAULT_AUTH_CACHE_TTL_S        300
#define AIGW_DEFAULT_AUTH_NEGATIVE_CACHE_MAX 10000
#define AIGW_DEFAULT_AUTH_NEGATIVE_TTL_S     10
#define AIGW_DEFAULT_AUTH_DB_GRACE_S         300
//  Rate limits (schemas/limits.md): the completion reserved when a
//  request names no max_tokens, the lease past a request's deadline, and
//  how often owners snapshot their counters.
#define AIGW_DEFAULT_RL_MAX_TOKENS      4096
#define AIGW_DEFAULT_RL_SETTLE_GRACE_MS 5000
#define AIGW_DEFAULT_RL_SNAPSHOT_MS     1000

#define AIGW_CONFIG_MAX_KEYS        1024
#define AIGW_CONFIG_MAX_TENANTS     1024  //  ratelimit.tenants entries
#define AIGW_CONFIG_MAX_RULES       256
#define AIGW_CONFIG_MAX_MODELS      256
#define AIGW_CONFIG_MAX_DEPLOYMENTS 16  //  per model in the file (the router holds 64)
#define AIGW_CONFIG_MAX_FALLBACKS   8
#define AIGW_CONFIG_ERR_MAX         512
#define AIGW_CONFIG_FILE_MAX_BYTES  (4 * 1024 * 1024)
//  Most usage.store_content_tenants entries.
#define AIGW_CONFIG_MAX_CONTENT_TENANTS 1024
//  Longest deployment id (the router's buffers hold it and the NUL).
#define AIGW_CONFIG_ID_MAX 127

//  Bounds that modules' keyword tables share.
#define AIGW_CONFIG_TIMEOUT_MS_MIN 1
#define AIGW_CONFIG_TIMEOUT_MS_MAX 3600000
#define AIGW_CONFIG_RPM_MAX        1000000000

//  One API key listed in the config. The plaintext never stays in memory:
//  the loader keeps only its SHA-256.
typedef struct {
    char *name;                //  human label, shown in logs and auth/me
    char *tenant;              //  tenant the key belongs to
    char *role;                //  role name (admin, developer, ...)
    unsigned char sha256[32];  //  SHA-256 of the secret
    int64_t rpm;               //  requests per minute, 0 = ratelimit.default_rpm
    char *limits;              //  limits (schemas/limits.md 1a) as JSON text, NULL = none
    bool cache;                //  the response cache answers its requests (default true)
    bool cache_semantic;       //  semantic lookups where cache.semantic has them (default
                               //  true); false = exact matches only
} aigw_config_key_t;

//  The limits of a tenant that exists only as a name on config-file keys
//  (ratelimit.tenants).
typedef struct {
    char *name;    //  the tenant's name, as its keys give it
    char *limits;  //  limits (schemas/limits.md 1a) as JSON text, NULL = none
} aigw_config_tenant_t;

//  One deny-list rule of the guardrail.
typedef struct {
    char *name;     //  rule name, reported in guardrail_error
    char *pattern;  //  PCRE2 pattern, validated at load
} aigw_config_rule_t;

//  One deployment of a model: an upstream that can serve it.
typedef struct {
    char *id;        //  unique across the file; default "MODEL/INDEX"
    char *provider;  //  adapter name (aigw_adapter_known)
    char *model;     //  upstream model, Azure deployment or Bedrock model id; default = model name
    char *base_url;  //  NULL = the provider's configured default
    char *api_key;   //  secret written in the file, never logged; NULL = from api_key_env
    char *api_key_env;    //  environment variable holding the key; NULL = provider default
    char *api_version;    //  Azure api-version, NULL = adapter default
    char *region;         //  Bedrock region, NULL = AWS_REGION or us-east-1
    int64_t weight;       //  share under the weighted strategy, default 1
    int64_t priority;     //  tier, 0 first; later tiers are fallbacks
    int64_t rpm;          //  capacity in requests per minute, 0 = unlimited
    int64_t tpm;          //  capacity in tokens per minute, 0 = unlimited
    double price_in;      //  USD per million input tokens
    double price_out;     //  USD per million output tokens
    bool key_unreadable;  //  a stored api_key that did not open (aigw_secret): serves nothing
    //  USD per million prompt tokens read from the upstream's cache; < 0 = price_in
    double price_cached_in;
} aigw_config_deployment_t;

//  One model the gateway serves. The short form (provider, upstream_model)
//  is one deployment; the long form lists deployments. provider and
//  upstream_model always mirror deployments[0].
typedef struct {
    char *name;            //  name clients ask for
    char *provider;        //  deployments[0].provider
    char *upstream_model;  //  deployments[0].model
    char *
        strategy;  //  weighted, least_latency, least_in_flight, lowest_cost; NULL = router.strategy
    aigw_config_deployment_t deployments[AIGW_CONFIG_MAX_DEPLOYMENTS];  //  at least one
    int deployment_count;                        //  entries used in deployments
    char *fallbacks[AIGW_CONFIG_MAX_FALLBACKS];  //  models tried next, in order
    int fallback_count;                          //  entries used in fallbacks
} aigw_config_model_t;

typedef struct {
    //  server: the HTTP edge
    char *host;                  //  listen address
    int port;                    //  listen port
    size_t max_body_bytes;       //  request body cap, 413 past it
    int64_t request_timeout_ms;  //  a request's total deadline, 504 past it
    int read_timeout_ms;         //  wait for a client's request head or body, 400/408 past it
    int edge_threads;            //  CivetWeb worker threads = max connections
    int pipelines;               //  `aigw run`: edge I/O threads, each running every
                                 //  stage (server.pipelines)

    //  broker: the pipeline's hub
    char *broker_endpoint;  //  ROUTER endpoint (inproc, ipc or tcp)
    int heartbeat_ms;       //  heartbeat interval, both directions
    int liveness;           //  missed heartbeats before a peer is dead
    int queue_max;          //  requests the broker holds per service
    int worker_credit;      //  requests in flight per worker
    char *peer_bind;        //  where each host's peer inbox binds (AIGW-BP/2);
                            //  NULL: inproc with an inproc broker, else
                            //  tcp://127.0.0.1:* (any free port)
    char *peer_advertise;   //  host others reach a wildcard bind at, or NULL

    //  auth
    char *master_key;                              //  AIGW_MASTER_KEY, plaintext (env or file)
    unsigned char master_sha256[32];               //  its SHA-256, set when master_key is
    aigw_config_key_t keys[AIGW_CONFIG_MAX_KEYS];  //  keys from the file
    int key_count;                                 //  entries used in keys
    int64_t auth_cache_ttl_s;     //  a database key stays cached this long without a NOTIFY
    int auth_negative_cache_max;  //  unknown-key hashes remembered, 0 = none
    int64_t auth_negative_ttl_s;  //  how long an unknown key is remembered
    int64_t auth_db_grace_s;      //  cached keys keep working this long while the database is down
    char *jwt_hs256_secret;       //  auth.jwt.hs256_secret: HS256 shared secret, never logged
    char *jwt_jwks_file;          //  auth.jwt.jwks_file: JWKS for RS256/ES256
    char *jwt_jwks_url;           //  auth.jwt.jwks_url: JWKS fetched over HTTP(S)
    char *jwt_issuer;             //  auth.jwt.issuer: required "iss", NULL = any
    char *jwt_audience;           //  auth.jwt.audience: required "aud", NULL = any
    char *jwt_tenant_claim;       //  auth.jwt.tenant_claim, NULL = "tenant_id"
    char *jwt_role_claim;         //  auth.jwt.role_claim, NULL = "role"
    int jwt_leeway_s;             //  auth.jwt.leeway_s: clock skew, 0 = 60

    //  ratelimit
    int64_t default_rpm;             //  per-key requests per minute
    int64_t master_rpm;              //  master key's requests per minute, 0 = none
    int64_t rl_default_rpm;          //  ratelimit.default.rpm, 0 = default_rpm
    int64_t rl_default_rpd;          //  ratelimit.default.rpd, 0 = none
    int64_t rl_default_tpm;          //  ratelimit.default.tpm, 0 = none
    int64_t rl_default_concurrency;  //  ratelimit.default.concurrency, 0 = none
    int64_t rl_default_max_tokens;   //  completion tokens reserved when a request names none
    int64_t rl_settle_grace_ms;      //  a reservation's lease past the request's deadline
    int64_t rl_snapshot_ms;          //  owners write changed counters at most this often
    aigw_config_tenant_t tenants[AIGW_CONFIG_MAX_TENANTS];  //  ratelimit.tenants
    int tenant_count;                                       //  entries used in tenants

    //  guardrail
    int64_t max_prompt_chars;                         //  input cap, guardrail_error past it
    aigw_config_rule_t rules[AIGW_CONFIG_MAX_RULES];  //  deny-list
    int rule_count;                                   //  entries used in rules
    //  guardrail.policies: policy name to policy, as JSON text (read and
    //  checked by actors/guardrail/aigw_policy), NULL = the built-in default
    char *guardrail_policies;
    //  guardrail.default_policy: the policy for traffic no binding names (a
    //  policy name, or "none"); NULL = the operator's own `default` if any
    //  (actors/guardrail/aigw_guardset)
    char *guardrail_default_policy;

    //  cache
    bool cache_enabled;       //  exact-match cache on or off
    int64_t cache_ttl_s;      //  entry lifetime
    size_t cache_max_bytes;   //  memory cap, oldest entries go first
    int64_t cache_max_ttl_s;  //  most seconds a request's X-AIGW-Cache-TTL may ask
    bool cache_persist;       //  entries kept in PostgreSQL too, when there is one
    //  cache.semantic: answers for prompts that mean the same (actors/cache)
    bool cache_semantic_enabled;        //  look for neighbours after an exact miss
    char *cache_semantic_vectors;       //  word vectors file (aigw embeddings import)
    char *cache_semantic_model;         //  embeddings model of the router for the vectors,
                                        //  NULL = the built-in embedder over the vectors file
    int64_t cache_semantic_timeout_ms;  //  longest wait for that model's vector
    double cache_semantic_threshold;    //  cosine a neighbour needs before the verifier

    //  provider
    char *openai_base_url;     //  OPENAI_BASE_URL
    char *openai_api_key;      //  OPENAI_API_KEY, never logged
    char *anthropic_base_url;  //  ANTHROPIC_BASE_URL
    char *anthropic_api_key;   //  ANTHROPIC_API_KEY, never logged
    char *gemini_base_url;     //  GEMINI_BASE_URL
    char *gemini_api_key;      //  GEMINI_API_KEY, never logged
    char *azure_base_url;      //  AZURE_OPENAI_ENDPOINT: https://NAME.openai.azure.com
    char *azure_api_key;       //  AZURE_OPENAI_API_KEY, never logged
    char *azure_api_version;   //  AZURE_OPENAI_API_VERSION, NULL = adapter default
    char *
        bedrock_base_url;  //  BEDROCK_BASE_URL, NULL = https://bedrock-runtime.REGION.amazonaws.com
    char *aws_region;      //  AWS_REGION, NULL = us-east-1
    char *aws_access_key_id;      //  AWS_ACCESS_KEY_ID
    char *aws_secret_access_key;  //  AWS_SECRET_ACCESS_KEY, never logged
    char *aws_session_token;      //  AWS_SESSION_TOKEN, never logged
    int64_t connect_timeout_ms;   //  upstream TCP/TLS connect deadline
    int max_host_connections;     //  upstream connections per host

    //  router: how the provider actor picks, retries and falls back
    char *router_strategy;         //  default strategy for models without one
    int router_max_attempts;       //  upstream attempts per request, retries and fallbacks included
    int64_t router_retry_base_ms;  //  backoff base (full jitter, doubled per retry)
    int64_t router_retry_cap_ms;   //  longest backoff between attempts
    int64_t
        first_token_timeout_ms;  //  a stream's first byte (or a whole answer's headers) must come within this
    int64_t router_report_ms;  //  how often a provider process reports its health to the broker
    int breaker_consecutive_failures;                    //  router.breaker.consecutive_failures
    double breaker_error_rate;                           //  router.breaker.error_rate
    int breaker_window_size;                             //  router.breaker.window_size
    int64_t breaker_window_ms;                           //  router.breaker.window_ms
    int breaker_min_samples;                             //  router.breaker.min_samples
    int64_t breaker_cooldown_ms;                         //  router.breaker.cooldown_ms
    int64_t breaker_cooldown_max_ms;                     //  router.breaker.cooldown_max_ms
    aigw_config_model_t models[AIGW_CONFIG_MAX_MODELS];  //  models served
    int model_count;                                     //  entries used in models

    //  process
    char *log_level;   //  AIGW_LOG_LEVEL
    char *log_format;  //  text or json, AIGW_LOG_FORMAT

    //  tracing: spans to an OpenTelemetry collector (keywords registered
    //  by http-edge/aigw_trace)
    char *tracing_endpoint;       //  OTLP/HTTP base URL; NULL or "" = no traces
    char *tracing_service_name;   //  service.name of the spans
    double tracing_sample_ratio;  //  share of requests traced that no client decided
    int tracing_queue_max;        //  requests waiting for export; past it, dropped
    int64_t tracing_batch_ms;     //  how often a batch leaves

    //  metrics (keywords registered by http-edge/aigw_edge_metrics)
    int metrics_max_label_values;  //  distinct values per label, then "other"

    //  dashboard (keywords registered by http-edge/aigw_edge_dashboard)
    int64_t dashboard_session_ttl_s;  //  a sign-in session's lifetime
    int dashboard_max_sessions;       //  sessions held per edge; past it the oldest goes

    //  usage: records of every answered request (keywords registered by
    //  actors/usage)
    bool usage_enabled;               //  keep records (only with a database)
    int usage_batch_records;          //  a batch is written at this many records
    int64_t usage_batch_ms;           //  or when its oldest record is this old
    char *usage_spool_path;           //  spool file while the database is away
    size_t usage_spool_max_bytes;     //  its bound; past it new records are dropped
    int usage_partitions_ahead_days;  //  daily partitions made ahead of today
    int usage_retention_days;         //  older partitions dropped, 0 = kept
    int64_t usage_copy_timeout_ms;    //  a batch's deadline in the database
    //  usage.store_content_tenants (a list, read by core's loader): the
    //  tenants of config keys and tokens whose prompts and answers records
    //  keep (database tenants opt in with tenants.store_content)
    char *usage_content_tenants[AIGW_CONFIG_MAX_CONTENT_TENANTS];
    int usage_content_tenant_count;  //  entries used in usage_content_tenants

    //  responses: stored Responses (keywords registered by
    //  actors/responses)
    int64_t responses_ttl_s;          //  a stored response is kept this long
    int64_t responses_prune_s;        //  expired rows are deleted this often
    int64_t responses_store_wait_ms;  //  the edge holds an answer's end this long for its store

    //  database: the control plane (PostgreSQL)
    char *database_url;  //  database.url or DATABASE_URL, libpq syntax; may hold a password
    int db_pool_size;    //  connections per process that uses the database
    int64_t db_connect_timeout_ms;    //  deadline to open a connection
    int64_t db_statement_timeout_ms;  //  server-side statement_timeout

    //  secrets: the keys that seal credentials stored in the database (aigw_secret)
    char *secret_key;            //  secrets.key or AIGW_SECRET_KEY, never logged
    char *secret_key_file;       //  secrets.key_file or AIGW_SECRET_KEY_FILE
    char *secret_previous_keys;  //  secrets.previous_keys, AIGW_SECRET_PREVIOUS_KEYS; never logged
} aigw_config_t;

//  --------------------------------------------------------------------------
//  Keywords: each module declares the settings it reads, as HAProxy modules
//  do with cfg_register_keywords, so the loader includes no module and every
//  default and bound sits beside the code that uses it.
//
//  Registration runs from a constructor (AIGW_CONFIG_KEYWORDS) rather than
//  from a list the actors table calls: the config selftest, the CLI and the
//  actors then all see the same keywords without core naming any module,
//  and the binaries link the library whole (CMakeLists.txt), so no module's
//  constructor is left out.

//  How a setting's value is read.
typedef enum {
    AIGW_CONFIG_STRING,  //  char *; empty means unset
    AIGW_CONFIG_INT,     //  int, within min..max
    AIGW_CONFIG_INT64,   //  int64_t, within min..max
    AIGW_CONFIG_SIZE,    //  size_t, within min..max
    AIGW_CONFIG_DOUBLE,  //  double, finite, within real_min..real_max
    AIGW_CONFIG_BOOL,    //  bool, true or false
    AIGW_CONFIG_LIST,    //  sequence, read by one of the loader's lists
    AIGW_CONFIG_JSON     //  char *: a mapping kept whole as JSON text, checked by .check
} aigw_config_kind_t;

//  Validates a non-empty string value. Returns 0, or -1 with PROBLEM written.
//  PROBLEM must never quote the value (it may be a secret).
typedef int (aigw_config_check_fn) (const char *value, char *problem, size_t problem_size);

//  A list's reader inside the loader (core only: lists are the loader's).
typedef struct _aigw_config_loader_t aigw_config_loader_t;
struct yaml_node_s;
typedef int (aigw_config_list_fn) (aigw_config_loader_t *loader, struct yaml_node_s *node,
                                   const char *setting);

//  One setting: a row of a module's keyword table, which ends with a row
//  whose name is NULL (AIGW_CONFIG_KW_END).
typedef struct {
    const char *name;             //  key in the file
    aigw_config_kind_t kind;      //  how the value is read
    size_t offset;                //  field offset in the section's struct
    int64_t min;                  //  smallest integer allowed
    int64_t max;                  //  largest integer allowed
    double real_min;              //  smallest AIGW_CONFIG_DOUBLE allowed
    double real_max;              //  largest AIGW_CONFIG_DOUBLE allowed
    aigw_config_check_fn *check;  //  extra string validation, or NULL
    aigw_config_list_fn *list;    //  reader of an AIGW_CONFIG_LIST
    const char *env;              //  environment variable that overrides it, or NULL
    const char *not_below;        //  setting of the same section it may not be below, or NULL
    int64_t number;               //  default of an integer or bool
    double real;                  //  default of an AIGW_CONFIG_DOUBLE
    const char *text;             //  default of a string, NULL = unset
} aigw_config_keyword_t;

//  Rows; extra designated initializers (.env, .not_below) may follow.
#define AIGW_CONFIG_KW_STRING(key, type, field, check_, default_, ...)               \
    {                                                                                \
        .name = (key), .kind = AIGW_CONFIG_STRING, .offset = offsetof (type, field), \
        .check = (check_), .text = (default_), __VA_ARGS__                           \
    }
#define AIGW_CONFIG_KW_NUMBER(key, kind_, type, field, lo, hi, default_, ...)          \
    {                                                                                  \
        .name = (key), .kind = (kind_), .offset = offsetof (type, field), .min = (lo), \
        .max = (hi), .number = (default_), __VA_ARGS__                                 \
    }
#define AIGW_CONFIG_KW_REAL(key, type, field, lo, hi, default_)                      \
    {                                                                                \
        .name = (key), .kind = AIGW_CONFIG_DOUBLE, .offset = offsetof (type, field), \
        .real_min = (lo), .real_max = (hi), .real = (default_)                       \
    }
#define AIGW_CONFIG_KW_BOOL(key, type, field, default_)                            \
    {                                                                              \
        .name = (key), .kind = AIGW_CONFIG_BOOL, .offset = offsetof (type, field), \
        .number = (default_)                                                       \
    }
#define AIGW_CONFIG_KW_END \
    {                      \
        .name = NULL       \
    }

//  Adds KEYWORDS to SECTION: a dotted path ("router.breaker"), "" for the
//  top level, "[]" after a list's name for one of its entries
//  ("models[].deployments[]"). Sections other than entries read into
//  aigw_config_t; a section exists once a table is registered for it, and
//  several modules may add to one. Call before aigw_config_new, from one
//  thread (constructors do). KEYWORDS must outlive the process.
void aigw_config_register (const char *section, const aigw_config_keyword_t *keywords);

//  Registers TABLE under SECTION before main runs.
#define AIGW_CONFIG_KEYWORDS(section, table)                                   \
    static void __attribute__ ((constructor)) s_config_keywords_##table (void) \
    {                                                                          \
        aigw_config_register ((section), (table));                             \
    }

//  Checks a deployment against the whole loaded config (a module's rule,
//  such as "needs a base URL"). Returns 0, or -1 with PROBLEM written.
typedef int (aigw_config_deployment_fn) (const aigw_config_t *config,
                                         const aigw_config_deployment_t *deployment, char *problem,
                                         size_t problem_size);

//  Adds a deployment check, run once the file and the environment are read.
void aigw_config_register_deployment_check (aigw_config_deployment_fn *check);

//  Sets the check of every `limits` mapping in the file (auth.keys[].limits,
//  ratelimit.tenants[].limits): actors/auth/aigw_limits registers its
//  validator, so core holds no limits rule of its own. Without one, any
//  mapping is kept.
void aigw_config_register_limits_check (aigw_config_check_fn *check);

//  Shared value checks (aigw_config_check_fn) for modules' tables.
int aigw_config_check_url (const char *value, char *problem, size_t problem_size);
int aigw_config_check_env_name (const char *value, char *problem, size_t problem_size);

//  Load PATH (NULL: defaults only), then apply the environment. Returns NULL
//  and writes "file:line: setting: problem" into ERR on any invalid input.
//  Caller owns the result.
aigw_config_t *aigw_config_new (const char *path, char *err, size_t err_size);

//  Destroy; safe on NULL and twice. Wipes secrets before freeing.
void aigw_config_destroy (aigw_config_t **self_p);

//  Free every string MODEL holds (each wiped first: api_key is a secret)
//  and zero it. Safe on NULL, on a zeroed model and twice.
void aigw_config_model_reset (aigw_config_model_t *model);

//  Wipe and free the string at *P (it may hold a secret); nulls *P.
void aigw_config_string_free (char **p);

//  Find a model by name, or NULL.
const aigw_config_model_t *aigw_config_model (const aigw_config_t *self, const char *name);

//  True when TENANT (a config key's tenant name, a token's tenant claim)
//  is listed in usage.store_content_tenants.
bool aigw_config_stores_content (const aigw_config_t *self, const char *tenant);

//  SHA-256 of a secret, for key comparison.
void aigw_config_hash_secret (const char *secret, unsigned char out[32]);

void aigw_config_test (bool verbose);

#endif
