/*  aigw_admin: the admin API actor: routes, permission checks, statements
    and answers. Input checks live in aigw_admin_input, the connection pool
    in aigw_admin_db. */
#include "aigw_admin.h"
#include "aigw_admin_cache.h"
#include "aigw_admin_db.h"
#include "aigw_admin_guardrails.h"
#include "aigw_admin_input.h"
#include "aigw_admin_usage.h"
#include "aigw_text.h"
#include "aigw_cp_sql.h"
#include "aigw_keys.h"
#include "aigw_limits.h"
#include "aigw_health.h"
#include "aigw_log.h"
#include "aigw_models.h"
#include "aigw_guardset.h"
#include "aigw_policy.h"
#include "aigw_secret.h"

#include <jansson.h>
#include <inttypes.h>
#include <openssl/crypto.h>
#include <openssl/rand.h>

//  Longest path segment taken as an id; longer ones match nothing. Room
//  for "config:" and a model name of AIGW_MODELS_NAME_MAX 4-byte characters.
#define S_ID_MAX 600
//  Longest admin path; longer ones answer 404.
#define S_PATH_MAX 1024
//  The id of a config file's model: this prefix and its name.
#define S_CONFIG_ID_PREFIX "config:"
//  GET router/health waits this long for the broker at most.
#define S_HEALTH_WAIT_MS 2000

//  ---------------------------------------------------------------------
//  Statements on models. Those on tenants, keys, roles and the audit log
//  live in aigw_cp_sql, which the operator CLI shares. Table and column
//  names are constants; every value is a parameter.
//  (the SQL text reads best as written)
// clang-format off
//  A deployment row (alias d) as the API shows it: never its api_key.
#define S_DEPLOYMENT_JSON                                                        \
    "json_build_object ('id', d.id, 'provider', d.provider, 'model', d.upstream_model," \
    " 'base_url', d.base_url, 'api_key_env', d.api_key_env,"                       \
    " 'api_key_set', d.api_key IS NOT NULL, 'api_version', d.api_version,"         \
    " 'region', d.region, 'weight', d.weight, 'priority', d.priority,"             \
    " 'rpm', COALESCE (d.rpm, 0), 'tpm', COALESCE (d.tpm, 0),"                     \
    " 'price_in', d.price_in, 'price_out', d.price_out,"                           \
    " 'price_cached_in', d.price_cached_in)"

//  A model row (alias m) as the API shows it (aigw_models_to_json's shape),
//  its deployments read from DEPS (a table or a CTE).
#define S_MODEL_JSON(deps)                                                       \
    "json_build_object ('id', m.id, 'name', m.name, 'source', 'database',"        \
    " 'strategy', m.strategy, 'fallbacks', m.fallbacks, 'deployments',"            \
    " COALESCE ((SELECT json_agg (" S_DEPLOYMENT_JSON " ORDER BY d.position)"      \
    " FROM " deps " d WHERE d.model_id = m.id), '[]'::json))"

//  Model row ROW with its deployments from DEPS, for the audit log: every
//  column but api_key, which becomes api_key_set.
#define S_MODEL_AUDIT(row, deps)                                                 \
    "(to_jsonb (" row ") || jsonb_build_object ('deployments', COALESCE ((SELECT"  \
    " jsonb_agg ((to_jsonb (d) - 'api_key')"                                       \
    " || jsonb_build_object ('api_key_set', d.api_key IS NOT NULL)"                \
    " ORDER BY d.position) FROM " deps " d WHERE d.model_id = " row ".id),"        \
    " '[]'::jsonb)))"

//  The deployments of the input (alias i), in order: the element (d), its
//  position and its id (gid, lowercase; NULL for a new one).
#define S_INPUT_DEPLOYMENTS                                                      \
    " given AS (SELECT e.d, (e.n - 1)::integer AS position, lower (e.d->>'id') AS gid" \
    " FROM input i, jsonb_array_elements (CASE WHEN jsonb_typeof (i.v->'deployments')" \
    " = 'array' THEN i.v->'deployments' ELSE '[]'::jsonb END)"                     \
    " WITH ORDINALITY AS e (d, n)),"

//  The fallbacks of the input (alias i), in order; none for null.
#define S_INPUT_FALLBACKS                                                        \
    "CASE WHEN jsonb_typeof (i.v->'fallbacks') = 'array' THEN ARRAY (SELECT f.e"   \
    " FROM jsonb_array_elements_text (i.v->'fallbacks') WITH ORDINALITY AS f (e, n)" \
    " ORDER BY f.n) ELSE '{}'::text[] END"

//  The columns a deployment element (G.d) fills, after model_id and
//  position; absent members take the schema's defaults. A new deployment's
//  id comes from the element's "new_id" (s_models_seal gives one, so its
//  sealed api_key can name the row before the row exists).
#define S_DEPLOYMENT_COLUMNS                                                     \
    " id, provider, upstream_model, base_url, api_key_env, api_key, api_version,"  \
    " region, weight, priority, rpm, tpm, price_in, price_out, price_cached_in"
#define S_DEPLOYMENT_VALUES(g)                                                   \
    " COALESCE ((" g "->>'new_id')::uuid, gen_random_uuid ()),"                    \
    " " g "->>'provider', " g "->>'model', " g "->>'base_url', " g "->>'api_key_env'," \
    " " g "->>'api_key', " g "->>'api_version', " g "->>'region',"                 \
    " COALESCE ((" g "->>'weight')::integer, 1), COALESCE ((" g "->>'priority')::integer, 0)," \
    " (" g "->>'rpm')::bigint, (" g "->>'tpm')::bigint,"                           \
    " COALESCE ((" g "->>'price_in')::numeric, 0), COALESCE ((" g "->>'price_out')::numeric, 0)," \
    " (" g "->>'price_cached_in')::numeric"

//  $1 name, $2 cursor time, $3 cursor id, $4 limit
static const aigw_cp_sql_t s_sql_model_list = {
    .text = "SELECT " S_MODEL_JSON ("model_deployments") ", " AIGW_CP_SQL_TS_US ("m.created_at") ", m.id"
        " FROM models m WHERE ($1::text IS NULL OR m.name = $1::text)"
        " AND ($2::timestamptz IS NULL OR (m.created_at, m.id) > ($2::timestamptz, $3::uuid))"
        " ORDER BY m.created_at, m.id LIMIT $4::integer",
    .count = 4};

//  $1 id
static const aigw_cp_sql_t s_sql_model_get = {
    .text = "SELECT " S_MODEL_JSON ("model_deployments") " FROM models m WHERE m.id = $1::uuid",
    .count = 1};

//  $1 input (checked by aigw_models_from_json, no ids), $2 actor type,
//  $3 actor id
static const aigw_cp_sql_t s_sql_model_create = {
    .text = "WITH input AS (SELECT $1::jsonb AS v)," S_INPUT_DEPLOYMENTS
        " changed AS (INSERT INTO models (name, strategy, fallbacks)"
        " SELECT i.v->>'name', i.v->>'strategy', " S_INPUT_FALLBACKS " FROM input i"
        " RETURNING *),"
        " deps AS (INSERT INTO model_deployments (model_id, position," S_DEPLOYMENT_COLUMNS ")"
        " SELECT c.id, g.position," S_DEPLOYMENT_VALUES ("g.d") " FROM changed c, given g"
        " RETURNING *),"
        " audit AS (" AIGW_CP_SQL_AUDIT_INSERT "SELECT $2, $3, NULL, 'models.create', 'model',"
        " c.id::text, NULL, " S_MODEL_AUDIT ("c", "deps") " FROM changed c)"
        " SELECT " S_MODEL_JSON ("deps") " FROM changed m",
    .count = 3, .actor_type = 2, .actor_id = 3};

//  $1 input (checked by aigw_models_check_patch), $2 id, $3 actor type,
//  $4 actor id. Deployments given replace the list: one with the id of a
//  deployment of this model keeps its row (and its api_key unless the
//  member is given), the others are new, the rest go. Answers: found, the
//  position of a deployment id not in this model (NULL: none), the model.
static const aigw_cp_sql_t s_sql_model_update = {
    .text = "WITH input AS (SELECT $1::jsonb AS v),"
        " old AS (SELECT m.* FROM models m WHERE m.id = $2::uuid FOR UPDATE),"
        " old_deps AS (SELECT d.* FROM model_deployments d JOIN old o ON d.model_id = o.id),"
        S_INPUT_DEPLOYMENTS
        " unknown AS (SELECT min (g.position) AS position FROM given g WHERE g.gid IS NOT NULL"
        " AND NOT EXISTS (SELECT 1 FROM old_deps d WHERE d.id::text = g.gid)),"
        " changed AS (UPDATE models m SET"
        " name = CASE WHEN i.v ? 'name' THEN i.v->>'name' ELSE m.name END,"
        " strategy = CASE WHEN i.v ? 'strategy' THEN i.v->>'strategy' ELSE m.strategy END,"
        " fallbacks = CASE WHEN i.v ? 'fallbacks' THEN " S_INPUT_FALLBACKS
        " ELSE m.fallbacks END,"
        " updated_at = now () FROM old o, input i, unknown u"
        " WHERE m.id = o.id AND u.position IS NULL RETURNING m.*),"
        " removed AS (DELETE FROM model_deployments d USING changed c, input i"
        " WHERE d.model_id = c.id AND i.v ? 'deployments'"
        " AND NOT EXISTS (SELECT 1 FROM given g WHERE g.gid = d.id::text) RETURNING d.id),"
        " kept AS (UPDATE model_deployments d SET position = g.position,"
        " provider = g.d->>'provider', upstream_model = g.d->>'model',"
        " base_url = g.d->>'base_url', api_key_env = g.d->>'api_key_env',"
        " api_key = CASE WHEN g.d ? 'api_key' THEN g.d->>'api_key' ELSE d.api_key END,"
        " api_version = g.d->>'api_version', region = g.d->>'region',"
        " weight = COALESCE ((g.d->>'weight')::integer, 1),"
        " priority = COALESCE ((g.d->>'priority')::integer, 0),"
        " rpm = (g.d->>'rpm')::bigint, tpm = (g.d->>'tpm')::bigint,"
        " price_in = COALESCE ((g.d->>'price_in')::numeric, 0),"
        " price_out = COALESCE ((g.d->>'price_out')::numeric, 0),"
        " price_cached_in = (g.d->>'price_cached_in')::numeric"
        " FROM changed c, given g WHERE d.model_id = c.id AND d.id::text = g.gid"
        " RETURNING d.*),"
        " added AS (INSERT INTO model_deployments (model_id, position," S_DEPLOYMENT_COLUMNS ")"
        " SELECT c.id, g.position," S_DEPLOYMENT_VALUES ("g.d")
        " FROM changed c, given g WHERE g.gid IS NULL RETURNING *),"
        " deps AS (SELECT * FROM kept UNION ALL SELECT * FROM added"
        " UNION ALL SELECT d.* FROM old_deps d, input i WHERE NOT (i.v ? 'deployments')),"
        " audit AS (" AIGW_CP_SQL_AUDIT_INSERT "SELECT $3, $4, NULL, 'models.update', 'model',"
        " c.id::text, " S_MODEL_AUDIT ("o", "old_deps") ", " S_MODEL_AUDIT ("c", "deps")
        " FROM changed c JOIN old o ON o.id = c.id)"
        " SELECT (SELECT count (*) FROM old), (SELECT position FROM unknown),"
        " (SELECT " S_MODEL_JSON ("deps") " FROM changed m)",
    .count = 4, .actor_type = 3, .actor_id = 4};

//  $1 id, $2 actor type, $3 actor id. Its deployments go by cascade.
static const aigw_cp_sql_t s_sql_model_delete = {
    .text = "WITH old AS (SELECT m.* FROM models m WHERE m.id = $1::uuid FOR UPDATE),"
        " old_deps AS (SELECT d.* FROM model_deployments d JOIN old o ON d.model_id = o.id),"
        " changed AS (DELETE FROM models m USING old o WHERE m.id = o.id RETURNING m.*),"
        " audit AS (" AIGW_CP_SQL_AUDIT_INSERT "SELECT $2, $3, NULL, 'models.delete', 'model',"
        " c.id::text, " S_MODEL_AUDIT ("c", "old_deps") ", NULL FROM changed c)"
        " SELECT " S_MODEL_JSON ("old_deps") " FROM changed m",
    .count = 3, .actor_type = 2, .actor_id = 3};
//  A key's limits and its tenant's, for GET rate-limits: $1 key id, $2 all,
//  $3 scope. Row: key id, tenant id, key limits, tenant limits.
static const aigw_cp_sql_t s_sql_key_limits = {
    .text = "SELECT k.id::text, k.tenant_id::text, k.limits::text, t.limits::text"
        " FROM api_keys k JOIN tenants t ON t.id = k.tenant_id"
        " WHERE k.id = $1::uuid AND ($2::boolean OR k.tenant_id = $3::uuid)",
    .count = 3, .all = 2, .scope = 3};

//  A tenant's limits: $1 tenant id, $2 all, $3 scope. Row: tenant id,
//  its limits.
static const aigw_cp_sql_t s_sql_tenant_limits = {
    .text = "SELECT t.id::text, t.limits::text FROM tenants t"
        " WHERE t.id = $1::uuid AND ($2::boolean OR t.id = $3::uuid)",
    .count = 3, .all = 2, .scope = 3};
// clang-format on

//  ---------------------------------------------------------------------
//  The actor and one request

//  The actor's private state.
typedef struct {
    const aigw_config_t *config;  //  settings (shared, read-only)
    aigw_admin_db_t *db;          //  connection pool, NULL with no database
    aigw_secret_t *secrets;       //  seals the api_keys written (aigw_secret), may hold no key
    aigw_guardset_t *policies;    //  guardrail policies, compiled and kept live for guardrails/test
    const char *endpoint;         //  broker endpoint (the host's)
    aigw_host_t *host;            //  the runtime we run in (NULL in selftests)
    int pool_size;                //  connections in db
    int pool_items;               //  poll items the pool took, before the guardset's
} self_t;

//  How a statement's result becomes the answer.
typedef enum {
    S_RENDER_LIST,          //  rows (object, cursor time, id): a page
    S_RENDER_ROLES,         //  rows (object): every role, one page
    S_RENDER_ONE,           //  one row (object), or 404
    S_RENDER_CREATED,       //  one row (object): 201
    S_RENDER_DELETED,       //  one row (object) gone, or 404
    S_RENDER_KEY_CREATE,    //  tenant found, role found, granted, key
    S_RENDER_KEY_UPDATE,    //  found, role found, allowed, key
    S_RENDER_KEY_DELETE,    //  found, allowed, key
    S_RENDER_KEY_ROTATE,    //  found, allowed, revoked, key
    S_RENDER_MODEL_LIST,    //  rows (object, cursor time, id); config models first
    S_RENDER_MODEL_UPDATE,  //  found, unknown deployment position, model
    S_RENDER_THEN,          //  rows for the request's next step (s_request_t.then)
} s_render_t;

typedef struct _aigw_admin_request_t s_request_t;

//  A request's next step once a first statement answered: RES holds its
//  rows (none when not found). Answers the request, or submits the next
//  statement.
typedef void (s_then_fn) (s_request_t **req_p, PGresult *res);

//  One admin request, from the broker job to the answer.
struct _aigw_admin_request_t {
    self_t *owner;                      //  the actor
    aigw_job_t *job;                    //  broker job, answered at the end
    aigw_envelope_t *env;               //  the request, and then the answer
    s_render_t render;                  //  how to answer from the result
    const char *what;                   //  "tenant" or "key", for messages
    int limit;                          //  lists: page size
    char *secret;                       //  create and rotate: the new secret (wiped)
    bool all;                           //  the principal sees every tenant
    const char *scope;                  //  its tenant id (owned by env), NULL if none
    char *perms;                        //  its permissions, comma-separated, clean
    bool first_page;                    //  models list: no cursor, so config models lead
    char *filter;                       //  models list: ?name=, NULL for none
    const char *actor_type;             //  audit: master, key or token
    const char *actor_id;               //  audit: key id
    s_then_fn *then;                    //  S_RENDER_THEN: the next step
    aigw_admin_fail_fn *fail;           //  answers an SQL error itself when it can, or NULL
    json_t *body;                       //  a body kept for the next step, NULL for none
    char target[AIGW_ADMIN_UUID_SIZE];  //  the {id} a kept body is for
};

static void
s_request_destroy (s_request_t **self_p)
{
    s_request_t *req = *self_p;
    if (!req)
        return;
    if (req->secret) {
        OPENSSL_cleanse (req->secret, strlen (req->secret));
        free (req->secret);
    }
    if (req->env && req->env->body && req->env->status < 300) {
        //  A create or rotate answer holds a secret: wipe it too.
        OPENSSL_cleanse (req->env->body, req->env->body_len);
    }
    aigw_envelope_destroy (&req->env);
    aigw_job_destroy (&req->job);
    free (req->perms);
    free (req->filter);
    json_decref (req->body);
    free (req);
    *self_p = NULL;
}

//  Send the envelope as it stands as the answer, and free the request.
static void
s_request_answer (s_request_t **req_p)
{
    s_request_t *req = *req_p;
    aigw_stage_pass (&req->job, &req->env);
    s_request_destroy (req_p);
}

static void
s_request_fail (s_request_t **req_p, int status, const char *type, const char *code,
                const char *param, const char *message)
{
    aigw_envelope_set_error ((*req_p)->env, status, type, code, param, message);
    s_request_answer (req_p);
}

static void
s_request_refuse (s_request_t **req_p, const aigw_admin_error_t *err)
{
    s_request_fail (req_p, err->status, err->type, err->code, err->param[0] ? err->param : NULL,
                    err->message);
}

static void
s_request_not_found (s_request_t **req_p)
{
    char message[96];
    snprintf (message, sizeof message, "No %s with this id.", (*req_p)->what);
    s_request_fail (req_p, 404, "not_found_error", "not_found", NULL, message);
}

static void
s_request_forbidden (s_request_t **req_p, const char *message)
{
    s_request_fail (req_p, 403, "permission_error", "permission_denied", NULL, message);
}

static void
s_request_unavailable (s_request_t **req_p, const char *message)
{
    s_request_fail (req_p, 503, "service_unavailable", "database_unavailable", NULL, message);
}

//  Answer STATUS with ROOT (taken) as the JSON body.
static void
s_request_json (s_request_t **req_p, int status, json_t *root)
{
    //  15 digits: a numeric 0.15 from the database reads back as 0.15.
    char *text = root ? json_dumps (root, JSON_COMPACT | JSON_REAL_PRECISION (15)) : NULL;
    json_decref (root);
    if (!text) {
        s_request_fail (req_p, 500, "server_error", "internal_error", NULL,
                        "The answer could not be built.");
        return;
    }
    aigw_envelope_t *env = (*req_p)->env;
    env->status = status;
    aigw_envelope_set (&env->content_type, "application/json");
    aigw_envelope_take_body (env, text, strlen (text));
    s_request_answer (req_p);
}

static s_request_t *
s_request_new (self_t *self, aigw_job_t *job, aigw_envelope_t *env)
{
    s_request_t *req = calloc (1, sizeof *req);
    if (!req)
        return NULL;
    req->owner = self;
    req->job = job;
    req->env = env;
    req->all = env->tenant_id && streq (env->tenant_id, "*");
    req->scope = !req->all && aigw_text_uuid_valid (env->tenant_id) ? env->tenant_id : NULL;
    req->perms = aigw_admin_permissions_normalize (env->permissions);
    req->actor_type = env->principal_type ? env->principal_type : "unknown";
    req->actor_id = env->key_id ? env->key_id : "unknown";
    if (!req->perms) {
        req->job = NULL;
        req->env = NULL;
        s_request_destroy (&req);
    }
    return req;
}

//  ---------------------------------------------------------------------
//  Results

//  Parse column COL of ROW as a JSON value; NULL when SQL NULL or broken.
static json_t *
s_json_cell (PGresult *res, int row, int col)
{
    if (row >= PQntuples (res) || col >= PQnfields (res) || PQgetisnull (res, row, col))
        return NULL;
    return json_loads (PQgetvalue (res, row, col), JSON_DECODE_ANY, NULL);
}

//  Column COL of row 0 as a count (0 when absent).
static long
s_count_cell (PGresult *res, int col)
{
    if (PQntuples (res) < 1 || col >= PQnfields (res) || PQgetisnull (res, 0, col))
        return 0;
    return strtol (PQgetvalue (res, 0, col), NULL, 10);
}

//  The field a schema CHECK named CONSTRAINT (may be NULL) guards, or NULL.
static const char *
s_constraint_param (const char *constraint)
{
    static const char *const map[][2] = {
        {"models_name_check", "name"},
        {"models_strategy_check", "strategy"},
        {"models_fallbacks_check", "fallbacks"},
        {"models_fallbacks_self_check", "fallbacks"},
    };
    for (size_t i = 0; constraint && i < sizeof map / sizeof map[0]; i++)
        if (streq (constraint, map[i][0]))
            return map[i][1];
    return NULL;
}

//  Answer an SQL error in RES the way a client can act on it. Only the
//  primary message is used: its DETAIL may quote a row, secrets and all.
static void
s_request_sql_error (s_request_t **req_p, PGresult *res)
{
    const char *state = PQresultErrorField (res, PG_DIAG_SQLSTATE);
    const char *primary = PQresultErrorField (res, PG_DIAG_MESSAGE_PRIMARY);
    const char *constraint = PQresultErrorField (res, PG_DIAG_CONSTRAINT_NAME);
    state = state ? state : "";
    char message[256];
    if (streq (state, "23505")) {
        snprintf (message, sizeof message, "A %s with this name already exists.", (*req_p)->what);
        s_request_fail (req_p, 409, "conflict_error", "conflict", "name", message);
    }
    else if (streq (state, "57014"))
        s_request_unavailable (req_p, "The database did not answer within the statement "
                                      "timeout.");
    else if (strncmp (state, "22", 2) == 0 || strncmp (state, "23", 2) == 0) {
        //  A value the checks above let through but the schema refuses.
        snprintf (message, sizeof message, "The database refused a value: %.200s.",
                  primary ? primary : "invalid value");
        s_request_fail (req_p, 400, "invalid_request_error", "invalid_field",
                        s_constraint_param (constraint), message);
    }
    else if (strncmp (state, "08", 2) == 0 || strncmp (state, "53", 2) == 0
             || strncmp (state, "57", 2) == 0 || strncmp (state, "40", 2) == 0) {
        aigw_warn ("admin request %s: database error %s: %s", (*req_p)->env->id, state,
                   primary ? primary : "");
        s_request_unavailable (req_p, "The database is unavailable; try again.");
    }
    else {
        aigw_error ("admin request %s: database error %s: %s", (*req_p)->env->id, state,
                    primary ? primary : "");
        s_request_fail (req_p, 500, "server_error", "database_error", NULL,
                        "The database refused the statement.");
    }
}

//  One page of a list: ROW_COUNT rows fetched for LIMIT + 1.
static void
s_render_list (s_request_t **req_p, PGresult *res, bool cursors)
{
    int rows = PQntuples (res);
    int limit = (*req_p)->limit;
    json_t *data = json_array ();
    for (int row = 0; row < rows && (!cursors || row < limit); row++) {
        json_t *item = s_json_cell (res, row, 0);
        if (item)
            json_array_append_new (data, item);
    }
    json_t *next = json_null ();
    if (cursors && rows > limit && limit > 0) {
        char *cursor = aigw_admin_cursor_encode (PQgetvalue (res, limit - 1, 1),
                                                 PQgetvalue (res, limit - 1, 2));
        if (cursor) {
            json_decref (next);
            next = json_string (cursor);
            free (cursor);
        }
    }
    s_request_json (req_p, 200, json_pack ("{s:o,s:o}", "data", data, "next_cursor", next));
}

//  The models list: on the first page, the config file's models (those
//  named ?name= when given), then the page of database rows in RES.
static void
s_render_models (s_request_t **req_p, PGresult *res)
{
    s_request_t *req = *req_p;
    const aigw_config_t *config = req->owner->config;
    int rows = PQntuples (res);
    json_t *data = json_array ();
    for (int i = 0; req->first_page && data && i < config->model_count; i++) {
        const aigw_config_model_t *model = &config->models[i];
        if (!model->name || (req->filter && !streq (req->filter, model->name)))
            continue;
        char *id = malloc (strlen (S_CONFIG_ID_PREFIX) + strlen (model->name) + 1);
        if (id)
            strcat (strcpy (id, S_CONFIG_ID_PREFIX), model->name);
        json_t *item = id ? aigw_models_to_json (model, id, "config") : NULL;
        free (id);
        if (!item || json_array_append_new (data, item)) {
            json_decref (data);
            data = NULL;
        }
    }
    for (int row = 0; data && row < rows && row < req->limit; row++) {
        json_t *item = s_json_cell (res, row, 0);
        if (item)
            json_array_append_new (data, item);
    }
    json_t *next = json_null ();
    if (data && rows > req->limit && req->limit > 0) {
        char *cursor = aigw_admin_cursor_encode (PQgetvalue (res, req->limit - 1, 1),
                                                 PQgetvalue (res, req->limit - 1, 2));
        if (cursor) {
            json_decref (next);
            next = json_string (cursor);
            free (cursor);
        }
    }
    s_request_json (req_p, 200,
                    data ? json_pack ("{s:o,s:o}", "data", data, "next_cursor", next) : NULL);
}

//  The object in column COL of row 0, plus the new secret when there is one.
static void
s_render_object (s_request_t **req_p, PGresult *res, int col, int status)
{
    json_t *item = s_json_cell (res, 0, col);
    if (!json_is_object (item)) {
        json_decref (item);
        s_request_fail (req_p, 500, "server_error", "internal_error", NULL,
                        "The database gave no row back.");
        return;
    }
    if ((*req_p)->secret)
        json_object_set_new (item, "key", json_string ((*req_p)->secret));
    s_request_json (req_p, status, item);
}

//  {"id", "deleted": true} from the object in column COL of row 0.
static void
s_render_deleted (s_request_t **req_p, PGresult *res, int col)
{
    json_t *item = s_json_cell (res, 0, col);
    json_t *id = json_object_get (item, "id");
    json_t *root = json_pack ("{s:O?,s:b}", "id", id, "deleted", 1);
    json_decref (item);
    s_request_json (req_p, 200, root);
}

static void
s_on_result (void *arg, PGresult *res, aigw_admin_db_status_t status)
{
    s_request_t *req = (s_request_t *) arg;
    if (status != AIGW_ADMIN_DB_OK) {
        s_request_unavailable (
            &req, status == AIGW_ADMIN_DB_TIMEOUT     ? "The database did not answer in time."
                  : status == AIGW_ADMIN_DB_CANCELLED ? "The admin service is shutting down."
                                                      : "The database is unavailable; try again.");
        return;
    }
    ExecStatusType state = res ? PQresultStatus (res) : PGRES_FATAL_ERROR;
    if (state != PGRES_TUPLES_OK) {
        if (res && req->fail && req->fail (&req, res))
            return;
        if (res)
            s_request_sql_error (&req, res);
        else
            s_request_unavailable (&req, "The database gave no answer.");
        return;
    }
    switch (req->render) {
        case S_RENDER_LIST: s_render_list (&req, res, true); break;
        case S_RENDER_ROLES: s_render_list (&req, res, false); break;
        case S_RENDER_ONE:
        case S_RENDER_CREATED:
            if (PQntuples (res) == 0)
                s_request_not_found (&req);
            else
                s_render_object (&req, res, 0, req->render == S_RENDER_CREATED ? 201 : 200);
            break;
        case S_RENDER_DELETED:
            if (PQntuples (res) == 0)
                s_request_not_found (&req);
            else
                s_render_deleted (&req, res, 0);
            break;
        case S_RENDER_KEY_CREATE:
            if (s_count_cell (res, 0) == 0)
                s_request_fail (&req, 400, "invalid_request_error", "invalid_field", "tenant_id",
                                "No tenant with this id.");
            else if (s_count_cell (res, 1) == 0)
                s_request_fail (&req, 400, "invalid_request_error", "invalid_field", "role",
                                "No role with this name.");
            else if (s_count_cell (res, 2) == 0)
                s_request_forbidden (&req, "The role holds permissions the caller lacks.");
            else
                s_render_object (&req, res, 3, 201);
            break;
        case S_RENDER_KEY_UPDATE:
            if (s_count_cell (res, 0) == 0)
                s_request_not_found (&req);
            else if (s_count_cell (res, 1) == 0)
                s_request_fail (&req, 400, "invalid_request_error", "invalid_field", "role",
                                "No role with this name.");
            else if (s_count_cell (res, 2) == 0)
                s_request_forbidden (&req, "The key's role, or the new one, holds permissions "
                                           "the caller lacks.");
            else
                s_render_object (&req, res, 3, 200);
            break;
        case S_RENDER_KEY_DELETE:
            if (s_count_cell (res, 0) == 0)
                s_request_not_found (&req);
            else if (s_count_cell (res, 1) == 0)
                s_request_forbidden (&req, "The key's role holds permissions the caller lacks.");
            else
                s_render_deleted (&req, res, 2);
            break;
        case S_RENDER_KEY_ROTATE:
            if (s_count_cell (res, 0) == 0)
                s_request_not_found (&req);
            else if (s_count_cell (res, 1) == 0)
                s_request_forbidden (&req, "The key's role holds permissions the caller lacks.");
            else if (s_count_cell (res, 2) != 0)
                s_request_fail (&req, 409, "conflict_error", "conflict", NULL,
                                "The key is revoked; create a new one instead.");
            else
                s_render_object (&req, res, 3, 200);
            break;
        case S_RENDER_MODEL_LIST: s_render_models (&req, res); break;
        case S_RENDER_THEN: req->then (&req, res); break;
        case S_RENDER_MODEL_UPDATE:
            if (s_count_cell (res, 0) == 0)
                s_request_not_found (&req);
            else if (PQntuples (res) > 0 && !PQgetisnull (res, 0, 1)) {
                char param[64];
                snprintf (param, sizeof param, "deployments[%ld].id", s_count_cell (res, 1));
                s_request_fail (&req, 400, "invalid_request_error", "invalid_field", param,
                                "No deployment of this model has this id: leave 'id' out for "
                                "a new deployment.");
            }
            else
                s_render_object (&req, res, 2, 200);
            break;
    }
}

//  Run STATEMENT for REQ with PARAMS (its own values; the principal's
//  slots are filled here); the answer comes from s_on_result.
static void
s_request_submit (s_request_t **req_p, const aigw_cp_sql_t *statement, const char **params)
{
    s_request_t *req = *req_p;
    self_t *self = req->owner;
    if (!self->db) {
        s_request_unavailable (req_p, "No database is configured (set DATABASE_URL).");
        return;
    }
    int64_t now = aigw_now_ms ();
    int64_t deadline = req->env->deadline_ms > 0
                           ? req->env->deadline_ms - AIGW_ADMIN_DEADLINE_MARGIN_MS
                           : now + self->config->request_timeout_ms;
    if (deadline <= now) {
        s_request_unavailable (req_p, "The request's deadline passed before the database "
                                      "was asked.");
        return;
    }
    const aigw_cp_principal_t who
        = {req->all, req->scope, req->perms, req->actor_type, req->actor_id};
    if (params)
        aigw_cp_sql_principal (statement, &who, params);
    if (aigw_admin_db_query (self->db, statement->text, statement->count, params, deadline,
                             s_on_result, req)) {
        s_request_unavailable (req_p, "The database is unavailable or too busy; try again.");
        return;
    }
    *req_p = NULL;  //  s_on_result owns it now
}

//  Submit STATEMENT with INPUT (a JSON text, taken and wiped: it may hold
//  a secret; NULL when it could not be built) at parameter SLOT.
static void
s_request_submit_input (s_request_t **req_p, char *input, const aigw_cp_sql_t *statement,
                        const char **params, int slot)
{
    if (!input) {
        s_request_fail (req_p, 500, "server_error", "internal_error", NULL, "Out of memory.");
        return;
    }
    params[slot] = input;
    s_request_submit (req_p, statement, params);
    OPENSSL_cleanse (input, strlen (input));
    free (input);
}

//  What handlers in other files (aigw_admin_guardrails) use of a request.

void
aigw_admin_request_caller (aigw_admin_request_t *req, aigw_admin_caller_t *caller)
{
    *caller = (aigw_admin_caller_t){req->env,
                                    req->all,
                                    req->scope,
                                    req->perms,
                                    req->owner->config,
                                    req->owner->policies,
                                    req->owner->db != NULL};
}

void
aigw_admin_request_json (aigw_admin_request_t **req_p, int status, json_t *root)
{
    s_request_json (req_p, status, root);
}

void
aigw_admin_request_empty (aigw_admin_request_t **req_p, int status)
{
    (*req_p)->env->status = status;
    s_request_answer (req_p);
}

void
aigw_admin_request_fail (aigw_admin_request_t **req_p, int status, const char *type,
                         const char *code, const char *param, const char *message)
{
    s_request_fail (req_p, status, type, code, param, message);
}

void
aigw_admin_request_refuse (aigw_admin_request_t **req_p, const aigw_admin_error_t *err)
{
    s_request_refuse (req_p, err);
}

void
aigw_admin_request_submit (aigw_admin_request_t **req_p, const aigw_cp_sql_t *statement,
                           const char **params, aigw_admin_then_fn *then, aigw_admin_fail_fn *fail)
{
    (*req_p)->render = S_RENDER_THEN;
    (*req_p)->then = then;
    (*req_p)->fail = fail;
    s_request_submit (req_p, statement, params);
}

void
aigw_admin_request_keep (aigw_admin_request_t *req, json_t *body)
{
    json_decref (req->body);
    req->body = body;
}

json_t *
aigw_admin_request_kept (aigw_admin_request_t *req)
{
    return req->body;
}

//  ---------------------------------------------------------------------
//  Handlers: each answers REQ, at once or through the database. ID is the
//  {id} path segment ("" when the route has none).

typedef void (s_handler_fn) (s_request_t **req_p, const char *id);

//  Parse the query string with only ALLOWED names (NULL-terminated, or
//  NULL for none). Returns 0, or -1 after answering 400.
static int
s_query (s_request_t **req_p, aigw_admin_query_t *query, const char *const *allowed)
{
    static const char *const none[] = {NULL};
    aigw_admin_error_t err;
    if (aigw_admin_query_parse (query, (*req_p)->env->query, allowed ? allowed : none, &err)) {
        s_request_refuse (req_p, &err);
        return -1;
    }
    return 0;
}

//  Check that a route that takes no query string got none. Returns 0, or
//  -1 after answering 400.
static int
s_no_query (s_request_t **req_p)
{
    aigw_admin_query_t query;
    if (s_query (req_p, &query, NULL))
        return -1;
    aigw_admin_query_free (&query);
    return 0;
}

//  What a route on one tenant or key checks first: no query string, and
//  an ID that can exist. Returns 0, or -1 after answering.
static int
s_target (s_request_t **req_p, const char *id)
{
    if (s_no_query (req_p))
        return -1;
    if (!aigw_text_uuid_valid (id)) {
        s_request_not_found (req_p);
        return -1;
    }
    return 0;
}

//  Parse and check the body against FIELDS. Returns the object (caller
//  owns it), or NULL after answering 400.
static json_t *
s_body (s_request_t **req_p, const aigw_admin_field_t *fields, size_t count)
{
    aigw_admin_error_t err;
    aigw_envelope_t *env = (*req_p)->env;
    json_t *body = aigw_admin_input_body (env->body, env->body_len, &err);
    if (body && aigw_admin_input_check (body, fields, count, &err)) {
        json_decref (body);
        body = NULL;
    }
    if (!body)
        s_request_refuse (req_p, &err);
    return body;
}

//  A PATCH body checked against FIELDS that changes something, with
//  NOTHING as the message when it is empty. Returns the object (caller
//  owns it), or NULL after answering 400.
static json_t *
s_patch (s_request_t **req_p, const aigw_admin_field_t *fields, size_t count, const char *nothing)
{
    json_t *body = s_body (req_p, fields, count);
    if (body && json_object_size (body) == 0) {
        json_decref (body);
        body = NULL;
        s_request_fail (req_p, 400, "invalid_request_error", "missing_field", NULL, nothing);
    }
    return body;
}

//  One page of a list, from ?limit= and ?cursor=, as statement values.
typedef struct {
    const char *cursor_time;          //  the cursor's time, NULL on the first page
    const char *cursor_id;            //  the cursor's id, NULL on the first page
    char limit[16];                   //  rows to fetch: the page and one more
    char time[AIGW_ADMIN_TIME_SIZE];  //  cursor_time's text
    char id[AIGW_ADMIN_UUID_SIZE];    //  cursor_id's text
} s_page_t;

//  Read ?limit= and ?cursor= (its id a serial when SERIAL, else a UUID)
//  into PAGE and REQ's limit. Returns 0, or -1 after answering 400.
static int
s_page (s_request_t **req_p, aigw_admin_query_t *query, s_page_t *page, bool serial)
{
    aigw_admin_error_t err;
    if (aigw_admin_query_limit (query, &(*req_p)->limit, &err)) {
        s_request_refuse (req_p, &err);
        return -1;
    }
    const char *cursor = aigw_admin_query_get (query, "cursor");
    if (cursor
        && (aigw_admin_cursor_decode (cursor, page->time, page->id)
            || aigw_text_uuid_valid (page->id) == serial)) {
        s_request_fail (req_p, 400, "invalid_request_error", "invalid_field", "cursor",
                        "'cursor' is not one this API issued.");
        return -1;
    }
    page->cursor_time = cursor ? page->time : NULL;
    page->cursor_id = cursor ? page->id : NULL;
    snprintf (page->limit, sizeof page->limit, "%d", (*req_p)->limit + 1);
    return 0;
}

//  Answer 400 unless the ?tenant_id= filter in QUERY, when given, is a
//  UUID. Returns 0, or -1 after answering.
static int
s_tenant_filter (s_request_t **req_p, aigw_admin_query_t *query)
{
    const char *tenant = aigw_admin_query_get (query, "tenant_id");
    if (!tenant || aigw_text_uuid_valid (tenant))
        return 0;
    s_request_fail (req_p, 400, "invalid_request_error", "invalid_field", "tenant_id",
                    "'tenant_id' must be a UUID.");
    return -1;
}

static void
s_auth_me (s_request_t **req_p, const char *id)
{
    if (s_no_query (req_p))
        return;
    s_request_t *req = *req_p;
    aigw_envelope_t *env = req->env;
    json_t *permissions = json_array ();
    const char *p = req->perms;
    while (*p) {
        size_t len = strcspn (p, ",");
        json_array_append_new (permissions, json_stringn (p, len));
        p += len + (p[len] == ',');
    }
    json_t *models = json_null ();
    if (env->models) {
        json_decref (models);
        models = json_array ();
        for (const char *m = env->models; *m;) {
            size_t len = strcspn (m, ",");
            if (len)
                json_array_append_new (models, json_stringn (m, len));
            m += len + (m[len] == ',');
        }
    }
    json_t *expires = json_null ();
    if (env->expires_ms > 0) {
        char text[AIGW_ADMIN_TIME_SIZE];
        aigw_admin_time_format (env->expires_ms, text);
        json_decref (expires);
        expires = json_string (text);
    }
    const aigw_config_t *config = req->owner->config;
    int64_t rpm = env->rpm > 0 ? env->rpm : config->default_rpm;
    json_t *root = json_pack ("{s:{s:s?,s:s?,s:s?},s:{s:s?,s:s?},s:s?,s:o,s:o,s:o,s:{s:I}}",
                              "principal", "type", env->principal_type, "id", env->key_id, "name",
                              env->key_name, "tenant", "id", env->tenant_id, "name", env->tenant,
                              "role", env->role, "permissions", permissions, "expires_at", expires,
                              "models", models, "limits", "rpm", (json_int_t) rpm);
    s_request_json (req_p, 200, root);
}

static void
s_tenants_list (s_request_t **req_p, const char *id)
{
    static const char *const allowed[] = {"limit", "cursor", "name", NULL};
    aigw_admin_query_t query;
    if (s_query (req_p, &query, allowed))
        return;
    s_page_t page;
    if (s_page (req_p, &query, &page, false) == 0) {
        (*req_p)->render = S_RENDER_LIST;
        const char *params[AIGW_CP_TENANT_LIST_COUNT]
            = {[AIGW_CP_TENANT_LIST_NAME] = aigw_admin_query_get (&query, "name"),
               [AIGW_CP_TENANT_LIST_CURSOR_TIME] = page.cursor_time,
               [AIGW_CP_TENANT_LIST_CURSOR_ID] = page.cursor_id,
               [AIGW_CP_TENANT_LIST_LIMIT] = page.limit};
        s_request_submit (req_p, &aigw_cp_sql_tenant_list, params);
    }
    aigw_admin_query_free (&query);
}

static void
s_tenants_get (s_request_t **req_p, const char *id)
{
    if (s_target (req_p, id))
        return;
    (*req_p)->render = S_RENDER_ONE;
    const char *params[AIGW_CP_TENANT_GET_COUNT] = {[AIGW_CP_TENANT_GET_ID] = id};
    s_request_submit (req_p, &aigw_cp_sql_tenant_get, params);
}

//  store_content: the tenant's usage records keep prompts and answers
//  (schemas/sql/008). Only tenants:write sets it, which no tenant-scoped
//  built-in role holds: a tenant-admin cannot turn it on for itself.
//  cache: false keeps every request of the tenant out of the response
//  cache (schemas/sql/014), whatever its keys say. cache_semantic: false
//  answers its keys from exact matches only, null follows the config
//  (schemas/sql/016); a key's own setting wins.
static const aigw_admin_field_t s_tenant_fields[] = {
    {"name", AIGW_ADMIN_FIELD_NAME, true},
    {"metadata", AIGW_ADMIN_FIELD_OBJECT, false},
    {"store_content", AIGW_ADMIN_FIELD_BOOL, false},
    {"cache", AIGW_ADMIN_FIELD_BOOL, false},
    {"cache_semantic", AIGW_ADMIN_FIELD_SETTING, false},
    {"limits", AIGW_ADMIN_FIELD_LIMITS, false},
};

//  Ready BODY's limits (KEY: a key's, with the SPEC's fields). Returns 0,
//  or -1 after answering 400 (BODY freed).
static int
s_limits_ready (s_request_t **req_p, json_t *body, bool key)
{
    aigw_admin_error_t err;
    if (aigw_admin_input_limits (body, key, &err) == 0)
        return 0;
    json_decref (body);
    s_request_refuse (req_p, &err);
    return -1;
}

static void
s_tenants_create (s_request_t **req_p, const char *id)
{
    if (s_no_query (req_p))
        return;
    if (!(*req_p)->all) {
        s_request_forbidden (req_p, "Only a principal of every tenant may create tenants.");
        return;
    }
    json_t *body
        = s_body (req_p, s_tenant_fields, sizeof s_tenant_fields / sizeof s_tenant_fields[0]);
    if (!body || s_limits_ready (req_p, body, false))
        return;
    char *input = json_dumps (body, JSON_COMPACT);
    json_decref (body);
    (*req_p)->render = S_RENDER_CREATED;
    const char *params[AIGW_CP_TENANT_CREATE_COUNT] = {NULL};
    s_request_submit_input (req_p, input, &aigw_cp_sql_tenant_create, params,
                            AIGW_CP_TENANT_CREATE_INPUT);
}

static void
s_tenants_update (s_request_t **req_p, const char *id)
{
    static const aigw_admin_field_t fields[] = {
        {"name", AIGW_ADMIN_FIELD_NAME, false},
        {"metadata", AIGW_ADMIN_FIELD_OBJECT, false},
        {"store_content", AIGW_ADMIN_FIELD_BOOL, false},
        {"cache", AIGW_ADMIN_FIELD_BOOL, false},
        {"cache_semantic", AIGW_ADMIN_FIELD_SETTING, false},
        {"limits", AIGW_ADMIN_FIELD_LIMITS, false},
    };
    if (s_target (req_p, id))
        return;
    json_t *body = s_patch (req_p, fields, sizeof fields / sizeof fields[0],
                            "Nothing to change: send name, metadata, store_content, cache, "
                            "cache_semantic or limits.");
    if (!body || s_limits_ready (req_p, body, false))
        return;
    //  A tenant's limits are the ceiling of its own admins (limits.md 1a):
    //  only a principal of every tenant sets them.
    if (!(*req_p)->all && json_object_get (body, "limits")) {
        json_decref (body);
        s_request_fail (req_p, 403, "permission_error", "permission_denied", "limits",
                        "Only a principal of every tenant may change a tenant's limits.");
        return;
    }
    char *input = json_dumps (body, JSON_COMPACT);
    json_decref (body);
    (*req_p)->render = S_RENDER_ONE;
    const char *params[AIGW_CP_TENANT_UPDATE_COUNT] = {[AIGW_CP_TENANT_UPDATE_ID] = id};
    s_request_submit_input (req_p, input, &aigw_cp_sql_tenant_update, params,
                            AIGW_CP_TENANT_UPDATE_INPUT);
}

static void
s_tenants_delete (s_request_t **req_p, const char *id)
{
    if (s_target (req_p, id))
        return;
    if (!(*req_p)->all) {
        s_request_forbidden (req_p, "Only a principal of every tenant may delete tenants.");
        return;
    }
    (*req_p)->render = S_RENDER_DELETED;
    const char *params[AIGW_CP_TENANT_DELETE_COUNT] = {[AIGW_CP_TENANT_DELETE_ID] = id};
    s_request_submit (req_p, &aigw_cp_sql_tenant_delete, params);
}

static void
s_keys_list (s_request_t **req_p, const char *id)
{
    static const char *const allowed[]
        = {"limit", "cursor", "tenant_id", "role", "revoked", "name", NULL};
    aigw_admin_query_t query;
    if (s_query (req_p, &query, allowed))
        return;
    const char *revoked = aigw_admin_query_get (&query, "revoked");
    int rc = s_tenant_filter (req_p, &query);
    if (rc == 0 && revoked && !streq (revoked, "true") && !streq (revoked, "false")) {
        s_request_fail (req_p, 400, "invalid_request_error", "invalid_field", "revoked",
                        "'revoked' must be true or false.");
        rc = -1;
    }
    s_page_t page;
    if (rc == 0 && s_page (req_p, &query, &page, false) == 0) {
        (*req_p)->render = S_RENDER_LIST;
        const char *params[AIGW_CP_KEY_LIST_COUNT]
            = {[AIGW_CP_KEY_LIST_TENANT] = aigw_admin_query_get (&query, "tenant_id"),
               [AIGW_CP_KEY_LIST_ROLE] = aigw_admin_query_get (&query, "role"),
               [AIGW_CP_KEY_LIST_REVOKED]
               = revoked ? aigw_cp_sql_bool (streq (revoked, "true")) : NULL,
               [AIGW_CP_KEY_LIST_NAME] = aigw_admin_query_get (&query, "name"),
               [AIGW_CP_KEY_LIST_CURSOR_TIME] = page.cursor_time,
               [AIGW_CP_KEY_LIST_CURSOR_ID] = page.cursor_id,
               [AIGW_CP_KEY_LIST_LIMIT] = page.limit};
        s_request_submit (req_p, &aigw_cp_sql_key_list, params);
    }
    aigw_admin_query_free (&query);
}

static void
s_keys_get (s_request_t **req_p, const char *id)
{
    if (s_target (req_p, id))
        return;
    (*req_p)->render = S_RENDER_ONE;
    const char *params[AIGW_CP_KEY_GET_COUNT] = {[AIGW_CP_KEY_GET_ID] = id};
    s_request_submit (req_p, &aigw_cp_sql_key_get, params);
}

//  Generate a secret for REQ: keeps it in req->secret for the answer and
//  writes its hash (hex) and prefix. Returns 0, or -1 after answering 500.
static int
s_new_secret (s_request_t **req_p, char hash[AIGW_KEY_HASH_HEX_LEN + 1],
              char prefix[AIGW_KEY_PREFIX_LEN + 1])
{
    char secret[AIGW_KEY_SECRET_LEN + 1];
    if (aigw_keys_generate (secret, prefix)) {
        s_request_fail (req_p, 500, "server_error", "internal_error", NULL,
                        "No random bytes for a new key.");
        return -1;
    }
    aigw_keys_hash_hex (secret, hash);
    (*req_p)->secret = strdup (secret);
    OPENSSL_cleanse (secret, sizeof secret);
    if (!(*req_p)->secret) {
        s_request_fail (req_p, 500, "server_error", "internal_error", NULL, "Out of memory.");
        return -1;
    }
    return 0;
}

static const aigw_admin_field_t s_key_fields[] = {
    {"tenant_id", AIGW_ADMIN_FIELD_UUID, false},
    {"name", AIGW_ADMIN_FIELD_NAME, true},
    {"role", AIGW_ADMIN_FIELD_ROLE, true},
    {"expires_at", AIGW_ADMIN_FIELD_TIME, false},
    {"models", AIGW_ADMIN_FIELD_MODELS, false},
    {"rpm", AIGW_ADMIN_FIELD_RATE, false},
    {"tpm", AIGW_ADMIN_FIELD_RATE, false},
    {"budget_usd", AIGW_ADMIN_FIELD_MONEY, false},
    {"limits", AIGW_ADMIN_FIELD_LIMITS, false},
    {"metadata", AIGW_ADMIN_FIELD_OBJECT, false},
    {"cache", AIGW_ADMIN_FIELD_BOOL, false},
    {"cache_semantic", AIGW_ADMIN_FIELD_SETTING, false},
};

//  The checks a key body gets beyond its fields' types: an expires_at in
//  the future (a key born expired is a mistake, not a key), and limits
//  whose two spellings agree. Returns 0, or -1 after answering 400 (BODY
//  freed).
static int
s_key_body_ready (s_request_t **req_p, json_t *body)
{
    const char *expires = json_string_value (json_object_get (body, "expires_at"));
    int64_t ms = 0;
    if (expires && aigw_text_time_parse (expires, &ms) == 0 && ms <= aigw_now_ms ()) {
        json_decref (body);
        s_request_fail (req_p, 400, "invalid_request_error", "invalid_field", "expires_at",
                        "'expires_at' is in the past: a key must expire later than now.");
        return -1;
    }
    return s_limits_ready (req_p, body, true);
}

//  True when BODY (a key's) sets something a tenant-admin may only set
//  within its tenant's ceilings (limits.md 1a).
static bool
s_key_body_bounded (json_t *body)
{
    return json_object_get (body, "limits") || json_object_get (body, "rpm")
           || json_object_get (body, "tpm") || json_object_get (body, "budget_usd")
           || json_object_get (body, "models");
}

//  The ceilings on what the caller of REQ writes on a key (BODY, checked
//  and readied) of a tenant whose limits are TENANT_LIMITS (JSON text):
//  every value within the tenant's, and the key's models within the
//  caller's own (a tenant has no list of its own, and nobody hands out a
//  model it may not use). Returns 0, or -1 after answering 403
//  limit_above_tenant naming the field.
static int
s_key_ceilings (s_request_t **req_p, json_t *body, const char *tenant_limits)
{
    json_t *ceiling = tenant_limits ? json_loads (tenant_limits, 0, NULL) : NULL;
    json_t *limits = aigw_admin_input_key_limits (body);
    aigw_limits_error_t err;
    int rc = limits ? aigw_limits_within (limits, ceiling, "limits", &err) : 0;
    json_decref (ceiling);
    json_decref (limits);
    if (rc) {
        //  Name the field the body used: the SPEC's name when it gave that.
        char param[AIGW_LIMITS_PARAM_MAX];
        snprintf (param, sizeof param, "%s", err.param);
        if (!json_object_get (body, "limits")) {
            const char *spec = streq (param, "limits.budget") ? "budget_usd" : param + 7;
            memmove (param, spec, strlen (spec) + 1);
        }
        s_request_fail (req_p, 403, "permission_error", "limit_above_tenant", param, err.message);
        return -1;
    }
    const char *own = (*req_p)->env->models;
    json_t *models = json_object_get (body, "models");
    if (own && models) {
        if (json_is_null (models)) {
            s_request_fail (req_p, 403, "permission_error", "limit_above_tenant", "models",
                            "'models' null allows every model; the caller may use only some.");
            return -1;
        }
        size_t index;
        json_t *model;
        json_array_foreach (models, index, model) {
            if (!aigw_list_has (own, json_string_value (model))) {
                char message[320];
                snprintf (message, sizeof message,
                          "'models' names '%.200s', which the caller may not use itself.",
                          json_string_value (model));
                s_request_fail (req_p, 403, "permission_error", "limit_above_tenant", "models",
                                message);
                return -1;
            }
        }
    }
    return 0;
}

//  Keep BODY for THEN, which runs once the caller's tenant's limits are
//  read (a tenant-admin writing what the ceilings bound). Takes BODY.
static void
s_key_with_ceilings (s_request_t **req_p, json_t *body, const char *id, s_then_fn *then)
{
    s_request_t *req = *req_p;
    req->body = body;
    snprintf (req->target, sizeof req->target, "%s", id ? id : "");
    req->then = then;
    req->render = S_RENDER_THEN;
    const char *params[3] = {req->scope};
    s_request_submit (req_p, &s_sql_tenant_limits, params);
}

//  Create the key in BODY (taken), checked and within its ceilings.
static void
s_keys_create_submit (s_request_t **req_p, json_t *body)
{
    s_request_t *req = *req_p;
    char *input = json_dumps (body, JSON_COMPACT);
    json_decref (body);
    char hash[AIGW_KEY_HASH_HEX_LEN + 1] = "", prefix[AIGW_KEY_PREFIX_LEN + 1] = "";
    if (input && s_new_secret (req_p, hash, prefix)) {
        free (input);
        return;
    }
    req->render = S_RENDER_KEY_CREATE;
    const char *params[AIGW_CP_KEY_CREATE_COUNT]
        = {[AIGW_CP_KEY_CREATE_HASH] = hash, [AIGW_CP_KEY_CREATE_PREFIX] = prefix};
    s_request_submit_input (req_p, input, &aigw_cp_sql_key_create, params,
                            AIGW_CP_KEY_CREATE_INPUT);
    OPENSSL_cleanse (hash, sizeof hash);
}

//  s_then_fn: the tenant's limits are in; check the kept key and create it.
static void
s_keys_create_bounded (s_request_t **req_p, PGresult *res)
{
    s_request_t *req = *req_p;
    json_t *body = req->body;
    req->body = NULL;
    const char *limits = PQntuples (res) ? PQgetvalue (res, 0, 1) : NULL;
    if (s_key_ceilings (req_p, body, limits))
        json_decref (body);
    else
        s_keys_create_submit (req_p, body);
}

static void
s_keys_create (s_request_t **req_p, const char *id)
{
    if (s_no_query (req_p))
        return;
    json_t *body = s_body (req_p, s_key_fields, sizeof s_key_fields / sizeof s_key_fields[0]);
    if (!body || s_key_body_ready (req_p, body))
        return;
    s_request_t *req = *req_p;
    const char *tenant = json_string_value (json_object_get (body, "tenant_id"));
    if (!tenant && req->all) {
        json_decref (body);
        s_request_fail (req_p, 400, "invalid_request_error", "missing_field", "tenant_id",
                        "'tenant_id' is required.");
        return;
    }
    if (!req->all && (!req->scope || (tenant && strcasecmp (tenant, req->scope) != 0))) {
        json_decref (body);
        s_request_forbidden (req_p, "Keys may be created only in the caller's own tenant.");
        return;
    }
    if (!tenant)
        json_object_set_new (body, "tenant_id", json_string (req->scope));
    if (!req->all && s_key_body_bounded (body))
        s_key_with_ceilings (req_p, body, NULL, s_keys_create_bounded);
    else
        s_keys_create_submit (req_p, body);
}

//  Change key ID as BODY (taken) says, checked and within its ceilings.
static void
s_keys_update_submit (s_request_t **req_p, json_t *body, const char *id)
{
    const char *action = json_object_get (body, "revoked") ? "keys.revoke" : "keys.update";
    char *input = json_dumps (body, JSON_COMPACT);
    json_decref (body);
    (*req_p)->render = S_RENDER_KEY_UPDATE;
    const char *params[AIGW_CP_KEY_UPDATE_COUNT]
        = {[AIGW_CP_KEY_UPDATE_ID] = id, [AIGW_CP_KEY_UPDATE_ACTION] = action};
    s_request_submit_input (req_p, input, &aigw_cp_sql_key_update, params,
                            AIGW_CP_KEY_UPDATE_INPUT);
}

//  s_then_fn: the tenant's limits are in; check the kept change, make it.
static void
s_keys_update_bounded (s_request_t **req_p, PGresult *res)
{
    s_request_t *req = *req_p;
    json_t *body = req->body;
    req->body = NULL;
    char id[AIGW_ADMIN_UUID_SIZE];
    memcpy (id, req->target, sizeof id);
    const char *limits = PQntuples (res) ? PQgetvalue (res, 0, 1) : NULL;
    if (s_key_ceilings (req_p, body, limits))
        json_decref (body);
    else
        s_keys_update_submit (req_p, body, id);
}

static void
s_keys_update (s_request_t **req_p, const char *id)
{
    static const aigw_admin_field_t fields[] = {
        {"name", AIGW_ADMIN_FIELD_NAME, false},
        {"role", AIGW_ADMIN_FIELD_ROLE, false},
        {"expires_at", AIGW_ADMIN_FIELD_TIME, false},
        {"models", AIGW_ADMIN_FIELD_MODELS, false},
        {"rpm", AIGW_ADMIN_FIELD_RATE, false},
        {"tpm", AIGW_ADMIN_FIELD_RATE, false},
        {"budget_usd", AIGW_ADMIN_FIELD_MONEY, false},
        {"metadata", AIGW_ADMIN_FIELD_OBJECT, false},
        {"revoked", AIGW_ADMIN_FIELD_TRUE, false},
        {"limits", AIGW_ADMIN_FIELD_LIMITS, false},
        {"cache", AIGW_ADMIN_FIELD_BOOL, false},
        {"cache_semantic", AIGW_ADMIN_FIELD_SETTING, false},
    };
    if (s_target (req_p, id))
        return;
    json_t *body = s_patch (req_p, fields, sizeof fields / sizeof fields[0],
                            "Nothing to change: send at least one field.");
    if (!body || s_key_body_ready (req_p, body))
        return;
    if (!(*req_p)->all && s_key_body_bounded (body))
        s_key_with_ceilings (req_p, body, id, s_keys_update_bounded);
    else
        s_keys_update_submit (req_p, body, id);
}

static void
s_keys_delete (s_request_t **req_p, const char *id)
{
    if (s_target (req_p, id))
        return;
    (*req_p)->render = S_RENDER_KEY_DELETE;
    const char *params[AIGW_CP_KEY_DELETE_COUNT] = {[AIGW_CP_KEY_DELETE_ID] = id};
    s_request_submit (req_p, &aigw_cp_sql_key_delete, params);
}

static void
s_keys_rotate (s_request_t **req_p, const char *id)
{
    if (s_target (req_p, id))
        return;
    json_t *body = s_body (req_p, NULL, 0);
    if (!body)
        return;
    json_decref (body);
    char hash[AIGW_KEY_HASH_HEX_LEN + 1], prefix[AIGW_KEY_PREFIX_LEN + 1];
    if (s_new_secret (req_p, hash, prefix))
        return;
    (*req_p)->render = S_RENDER_KEY_ROTATE;
    const char *params[AIGW_CP_KEY_ROTATE_COUNT] = {[AIGW_CP_KEY_ROTATE_ID] = id,
                                                    [AIGW_CP_KEY_ROTATE_HASH] = hash,
                                                    [AIGW_CP_KEY_ROTATE_PREFIX] = prefix};
    s_request_submit (req_p, &aigw_cp_sql_key_rotate, params);
    OPENSSL_cleanse (hash, sizeof hash);
}

static void
s_audit_list (s_request_t **req_p, const char *id)
{
    static const char *const allowed[]
        = {"limit", "cursor", "tenant_id", "action", "target_id", NULL};
    aigw_admin_query_t query;
    if (s_query (req_p, &query, allowed))
        return;
    s_page_t page;
    if (s_tenant_filter (req_p, &query) == 0 && s_page (req_p, &query, &page, true) == 0) {
        (*req_p)->render = S_RENDER_LIST;
        const char *params[AIGW_CP_AUDIT_LIST_COUNT]
            = {[AIGW_CP_AUDIT_LIST_TENANT] = aigw_admin_query_get (&query, "tenant_id"),
               [AIGW_CP_AUDIT_LIST_ACTION] = aigw_admin_query_get (&query, "action"),
               [AIGW_CP_AUDIT_LIST_TARGET] = aigw_admin_query_get (&query, "target_id"),
               [AIGW_CP_AUDIT_LIST_CURSOR_ID] = page.cursor_id,
               [AIGW_CP_AUDIT_LIST_LIMIT] = page.limit};
        s_request_submit (req_p, &aigw_cp_sql_audit_list, params);
    }
    aigw_admin_query_free (&query);
}

static void
s_roles_list (s_request_t **req_p, const char *id)
{
    if (s_no_query (req_p))
        return;
    (*req_p)->render = S_RENDER_ROLES;
    s_request_submit (req_p, &aigw_cp_sql_roles, NULL);
}

//  ---------------------------------------------------------------------
//  Models: the config file's (read-only, id "config:NAME") and the
//  database's (id a UUID). Checks are aigw_models'; the SQL holds the same.

//  The member at JSON PATH ("deployments[1].base_url", "" = DOC) of DOC,
//  or NULL when absent.
static json_t *
s_json_at (json_t *doc, const char *path)
{
    json_t *node = doc;
    const char *p = path;
    while (node && *p) {
        size_t len = strcspn (p, ".[");
        if (len > 0) {
            char key[64];
            if (len >= sizeof key)
                return NULL;
            memcpy (key, p, len);
            key[len] = 0;
            node = json_object_get (node, key);
            p += len;
        }
        while (node && *p == '[') {
            char *end;
            long index = strtol (p + 1, &end, 10);
            if (*end != ']' || index < 0)
                return NULL;
            node = json_array_get (node, (size_t) index);
            p = end + 1;
        }
        if (*p == '.')
            p++;
    }
    return node;
}

//  Answer 400 for a document aigw_models refused at PARAM with ERR:
//  missing_field when nothing is there, invalid_field otherwise.
static void
s_models_refuse (s_request_t **req_p, json_t *doc, const char *param, const char *err)
{
    bool missing = *param && !s_json_at (doc, param);
    s_request_fail (req_p, 400, "invalid_request_error",
                    missing ? "missing_field" : "invalid_field", *param ? param : NULL, err);
}

//  A new random (version 4) UUID, lower case, into OUT.
static int
s_uuid_new (char out[37])
{
    unsigned char b[16];
    if (RAND_bytes (b, sizeof b) != 1)
        return -1;
    b[6] = (unsigned char) ((b[6] & 0x0F) | 0x40);
    b[8] = (unsigned char) ((b[8] & 0x3F) | 0x80);
    snprintf (out, 37, "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", b[0],
              b[1], b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11], b[12], b[13],
              b[14], b[15]);
    return 0;
}

//  Before BODY (checked) goes to the database: give each new deployment
//  its id ("new_id"), and seal every api_key given, bound to its row, so
//  the plaintext never reaches the database. Without a secret key an
//  api_key is refused rather than stored in clear. Returns 0, or -1 after
//  answering (BODY is still the caller's).
static int
s_models_seal (s_request_t **req_p, json_t *body)
{
    self_t *self = (*req_p)->owner;
    size_t index;
    json_t *dep;
    json_array_foreach (json_object_get (body, "deployments"), index, dep) {
        if (!json_is_object (dep))
            continue;
        const char *given = json_string_value (json_object_get (dep, "id"));
        char id[AIGW_MODELS_ID_MAX + 1];
        if (given)
            snprintf (id, sizeof id, "%s", given);
        else if (s_uuid_new (id) || json_object_set_new (dep, "new_id", json_string (id))) {
            s_request_fail (req_p, 500, "server_error", "internal_error", NULL,
                            "Out of memory or random numbers.");
            return -1;
        }
        json_t *key = json_object_get (dep, "api_key");
        if (!json_is_string (key))
            continue;
        char param[64];
        snprintf (param, sizeof param, "deployments[%zu].api_key", index);
        if (!aigw_secret_ready (self->secrets)) {
            s_request_fail (
                req_p, 400, "invalid_request_error", "secret_key_missing", param,
                "This gateway has no key to encrypt a stored api_key with: set " AIGW_SECRET_ENV
                " (or secrets.key_file) and restart it, or name "
                "an environment variable with api_key_env.");
            return -1;
        }
        char aad[AIGW_MODELS_AAD_MAX], err[256];
        aigw_models_key_aad (id, aad, sizeof aad);
        char *sealed
            = aigw_secret_seal (self->secrets, json_string_value (key), aad, err, sizeof err);
        if (!sealed) {
            aigw_error ("admin: an api_key could not be sealed: %s", err);
            s_request_fail (req_p, 500, "server_error", "internal_error", param,
                            "The api_key could not be encrypted.");
            return -1;
        }
        OPENSSL_cleanse ((char *) json_string_value (key), json_string_length (key));
        int rc = json_object_set_new (dep, "api_key", json_string (sealed));
        free (sealed);
        if (rc) {
            s_request_fail (req_p, 500, "server_error", "internal_error", NULL, "Out of memory.");
            return -1;
        }
    }
    return 0;
}

//  The request body as a JSON object (caller frees it with
//  s_models_body_destroy), the raw bytes wiped: they may hold an upstream
//  secret. NULL after answering 400.
static json_t *
s_models_body (s_request_t **req_p)
{
    aigw_admin_error_t err;
    aigw_envelope_t *env = (*req_p)->env;
    json_t *body = aigw_admin_input_body (env->body, env->body_len, &err);
    if (env->body)
        OPENSSL_cleanse (env->body, env->body_len);
    if (!body)
        s_request_refuse (req_p, &err);
    return body;
}

//  The config file's model that ID ("config:NAME") names, or NULL.
static const aigw_config_model_t *
s_config_model (s_request_t *req, const char *id)
{
    size_t len = strlen (S_CONFIG_ID_PREFIX);
    if (strncmp (id, S_CONFIG_ID_PREFIX, len) != 0)
        return NULL;
    return aigw_config_model (req->owner->config, id + len);
}

//  Answer 409 when NAME (may be NULL) is a config file's model. Returns -1
//  after answering, else 0.
static int
s_models_name_free (s_request_t **req_p, const char *name)
{
    if (!name || !aigw_config_model ((*req_p)->owner->config, name))
        return 0;
    s_request_fail (req_p, 409, "conflict_error", "conflict", "name",
                    "A model with this name is defined in the config file.");
    return -1;
}

//  Answer 403 unless the principal acts for every tenant: models are
//  shared by all. Returns -1 after answering, else 0.
static int
s_models_writer (s_request_t **req_p)
{
    if ((*req_p)->all)
        return 0;
    s_request_forbidden (req_p, "Only a principal of every tenant may change models.");
    return -1;
}

//  Submit a write with BODY (taken and wiped) as the input, parameter 0.
static void
s_models_submit (s_request_t **req_p, json_t *body, const aigw_cp_sql_t *statement,
                 const char **params)
{
    //  15 digits: a price written 0.15 is stored as 0.15.
    char *input = json_dumps (body, JSON_COMPACT | JSON_REAL_PRECISION (15));
    aigw_models_doc_destroy (body);
    s_request_submit_input (req_p, input, statement, params, 0);
}

static void
s_models_list (s_request_t **req_p, const char *id)
{
    static const char *const allowed[] = {"limit", "cursor", "name", NULL};
    aigw_admin_query_t query;
    if (s_query (req_p, &query, allowed))
        return;
    s_page_t page;
    const char *name = aigw_admin_query_get (&query, "name");
    if (s_page (req_p, &query, &page, false) == 0) {
        s_request_t *req = *req_p;
        req->first_page = !page.cursor_id;
        if (name && !(req->filter = strdup (name))) {
            s_request_fail (req_p, 500, "server_error", "internal_error", NULL, "Out of memory.");
            aigw_admin_query_free (&query);
            return;
        }
        req->render = S_RENDER_MODEL_LIST;
        const char *params[] = {name, page.cursor_time, page.cursor_id, page.limit};
        s_request_submit (req_p, &s_sql_model_list, params);
    }
    aigw_admin_query_free (&query);
}

static void
s_models_get (s_request_t **req_p, const char *id)
{
    if (s_no_query (req_p))
        return;
    s_request_t *req = *req_p;
    const aigw_config_model_t *model = s_config_model (req, id);
    if (model) {
        json_t *item = aigw_models_to_json (model, id, "config");
        s_request_json (req_p, 200, item);
        return;
    }
    if (!aigw_text_uuid_valid (id)) {
        s_request_not_found (req_p);
        return;
    }
    req->render = S_RENDER_ONE;
    const char *params[] = {id};
    s_request_submit (req_p, &s_sql_model_get, params);
}

static void
s_models_create (s_request_t **req_p, const char *id)
{
    if (s_no_query (req_p))
        return;
    if (s_models_writer (req_p))
        return;
    json_t *body = s_models_body (req_p);
    if (!body)
        return;
    //  Ids are the server's to give.
    char param[64] = "", err[256];
    size_t index;
    json_t *dep;
    if (json_object_get (body, "id"))
        snprintf (param, sizeof param, "id");
    json_array_foreach (json_object_get (body, "deployments"), index, dep)
        if (!*param && json_is_object (dep) && json_object_get (dep, "id"))
            snprintf (param, sizeof param, "deployments[%zu].id", index);
    if (*param) {
        aigw_models_doc_destroy (body);
        s_request_fail (req_p, 400, "invalid_request_error", "invalid_field", param,
                        "Ids are given by the server: leave them out.");
        return;
    }
    aigw_config_model_t model;
    if (aigw_models_from_json (body, &model, param, sizeof param, err, sizeof err)) {
        s_models_refuse (req_p, body, param, err);
        aigw_models_doc_destroy (body);
        return;
    }
    int taken = s_models_name_free (req_p, model.name);
    aigw_config_model_reset (&model);
    if (taken) {
        aigw_models_doc_destroy (body);
        return;
    }
    if (s_models_seal (req_p, body)) {
        aigw_models_doc_destroy (body);
        return;
    }
    s_request_t *req = *req_p;
    req->render = S_RENDER_CREATED;
    const char *params[3] = {NULL};
    s_models_submit (req_p, body, &s_sql_model_create, params);
}

//  What PATCH and DELETE models/{id} check first: no query string, not a
//  config model (409, CONFIG_MESSAGE saying what to do instead), an id that
//  can exist, and a caller who may write. Returns 0, or -1 when answered.
static int
s_models_target (s_request_t **req_p, const char *id, const char *config_message)
{
    if (s_no_query (req_p))
        return -1;
    if (s_config_model (*req_p, id)) {
        s_request_fail (req_p, 409, "conflict_error", "model_in_config", NULL, config_message);
        return -1;
    }
    if (!aigw_text_uuid_valid (id)) {
        s_request_not_found (req_p);
        return -1;
    }
    return s_models_writer (req_p) ? -1 : 0;
}

static void
s_models_update (s_request_t **req_p, const char *id)
{
    if (s_models_target (req_p, id, "This model is defined in the config file: change it there."))
        return;
    s_request_t *req = *req_p;
    json_t *body = s_models_body (req_p);
    if (!body)
        return;
    char param[64], err[256];
    if (aigw_models_check_patch (body, param, sizeof param, err, sizeof err)) {
        if (json_is_object (body) && json_object_size (body) == 0)
            s_request_fail (req_p, 400, "invalid_request_error", "missing_field", NULL, err);
        else
            s_models_refuse (req_p, body, param, err);
        aigw_models_doc_destroy (body);
        return;
    }
    if (s_models_name_free (req_p, json_string_value (json_object_get (body, "name")))) {
        aigw_models_doc_destroy (body);
        return;
    }
    if (s_models_seal (req_p, body)) {
        aigw_models_doc_destroy (body);
        return;
    }
    req->render = S_RENDER_MODEL_UPDATE;
    const char *params[4] = {NULL, id};
    s_models_submit (req_p, body, &s_sql_model_update, params);
}

static void
s_models_delete (s_request_t **req_p, const char *id)
{
    if (s_models_target (req_p, id, "This model is defined in the config file: remove it there."))
        return;
    s_request_t *req = *req_p;
    req->render = S_RENDER_DELETED;
    const char *params[3] = {id};
    s_request_submit (req_p, &s_sql_model_delete, params);
}

//  GET router/health: the broker's merged reports. aigw_health_document
//  waits for the broker (S_HEALTH_WAIT_MS at most, less when the request's
//  deadline is sooner), and this loop with it: the admin actor serves an
//  operator's few calls, so a short stall is the price of a simple reader.
static void
s_router_health (s_request_t **req_p, const char *id)
{
    if (s_no_query (req_p))
        return;
    s_request_t *req = *req_p;
    int64_t deadline = aigw_now_ms () + S_HEALTH_WAIT_MS;
    if (req->env->deadline_ms > 0
        && req->env->deadline_ms - AIGW_ADMIN_DEADLINE_MARGIN_MS < deadline)
        deadline = req->env->deadline_ms - AIGW_ADMIN_DEADLINE_MARGIN_MS;
    char err[256] = "";
    json_t *doc = aigw_health_document (req->owner->endpoint, deadline, err, sizeof err);
    if (!doc) {
        aigw_warn ("admin request %s: router health: %s", req->env->id, *err ? err : "no answer");
        s_request_fail (req_p, 503, "service_unavailable", "service_unavailable", NULL,
                        "The broker gave no router health in time; try again.");
        return;
    }
    s_request_json (req_p, 200, doc);
}

//  ---------------------------------------------------------------------
//  GET rate-limits: the figures are the rate-limit owner's own
//  (limits.md 7), so the admin actor resolves the target and its compiled
//  limits, and hands the request on to the owner of the target's shard.

//  Ready ENV for the rate-limit owner of KEY_ID (may be NULL) in
//  TENANT_ID, whose limits are LM (may be NULL): the target's ids and
//  limits, and "ratelimit" as the route's next stage. Returns 0, or -1
//  when the route has no room or admin is not its last stage.
static int
s_rate_limits_envelope (aigw_envelope_t *env, const char *key_id, const char *tenant_id,
                        const char *lm)
{
    if (env->route_len >= AIGW_ROUTE_MAX || env->hop + 1 != env->route_len)
        return -1;
    char *stage = strdup ("ratelimit");
    if (!stage || aigw_envelope_set (&env->key_id, key_id)
        || aigw_envelope_set (&env->tenant_id, tenant_id) || aigw_envelope_set (&env->limits, lm)) {
        free (stage);
        return -1;
    }
    env->route[env->route_len++] = stage;
    return 0;
}

//  Hand REQ on to the rate-limit owner (see s_rate_limits_envelope).
static void
s_rate_limits_forward (s_request_t **req_p, const char *key_id, const char *tenant_id,
                       const char *lm)
{
    if (s_rate_limits_envelope ((*req_p)->env, key_id, tenant_id, lm)) {
        s_request_fail (req_p, 500, "server_error", "internal_error", NULL,
                        "The request could not be handed to the rate-limit service.");
        return;
    }
    s_request_answer (req_p);  //  unanswered: it goes on along its route
}

//  s_then_fn for ?key_id=: the key's limits and its tenant's, compiled as
//  auth compiles them.
static void
s_rate_limits_key (s_request_t **req_p, PGresult *res)
{
    if (PQntuples (res) == 0) {
        s_request_not_found (req_p);
        return;
    }
    aigw_limits_defaults_t defaults;
    aigw_limits_defaults ((*req_p)->owner->config, &defaults);
    aigw_limits_error_t err;
    aigw_limits_t *key = aigw_limits_new (PQgetvalue (res, 0, 2), &defaults, &err);
    aigw_limits_t *tenant = aigw_limits_new (PQgetvalue (res, 0, 3), NULL, &err);
    char *lm = aigw_limits_lm_report (key, tenant);
    s_rate_limits_forward (req_p, PQgetvalue (res, 0, 0), PQgetvalue (res, 0, 1), lm);
    free (lm);
    aigw_limits_destroy (&key);
    aigw_limits_destroy (&tenant);
}

//  s_then_fn for ?tenant_id=: the tenant's limits only.
static void
s_rate_limits_tenant (s_request_t **req_p, PGresult *res)
{
    if (PQntuples (res) == 0) {
        s_request_not_found (req_p);
        return;
    }
    aigw_limits_error_t err;
    aigw_limits_t *tenant = aigw_limits_new (PQgetvalue (res, 0, 1), NULL, &err);
    char *lm = aigw_limits_lm_report (NULL, tenant);
    s_rate_limits_forward (req_p, NULL, PQgetvalue (res, 0, 0), lm);
    free (lm);
    aigw_limits_destroy (&tenant);
}

static void
s_rate_limits (s_request_t **req_p, const char *id)
{
    static const char *const allowed[] = {"key_id", "tenant_id", NULL};
    aigw_admin_query_t query;
    if (s_query (req_p, &query, allowed))
        return;
    s_request_t *req = *req_p;
    const char *key = aigw_admin_query_get (&query, "key_id");
    const char *tenant = aigw_admin_query_get (&query, "tenant_id");
    if (key && tenant)
        s_request_fail (req_p, 400, "invalid_request_error", "invalid_field", "tenant_id",
                        "Give key_id or tenant_id, not both.");
    else if (!key && !tenant)
        //  The caller's own: auth compiled its key's and tenant's limits.
        s_rate_limits_forward (req_p, req->env->key_id, req->env->tenant_id, req->env->limits);
    else if (!aigw_admin_permitted (req->perms, "ratelimits:read"))
        s_request_forbidden (req_p, "This principal lacks the permission ratelimits:read.");
    else {
        req->what = key ? "key" : "tenant";
        const char *target = key ? key : tenant;
        if (!aigw_text_uuid_valid (target))
            s_request_not_found (req_p);
        else {
            req->render = S_RENDER_THEN;
            req->then = key ? s_rate_limits_key : s_rate_limits_tenant;
            const char *params[3] = {target};
            s_request_submit (req_p, key ? &s_sql_key_limits : &s_sql_tenant_limits, params);
        }
    }
    aigw_admin_query_free (&query);
}

//  ---------------------------------------------------------------------
//  GET cache/stats and DELETE cache: answered by the cache's owners, each
//  in turn (aigw_admin_cache). ?tenant= and ?model= narrow them; a
//  principal of one tenant sees and purges only its own.

static void
s_cache_run (s_request_t **req_p, const char *op)
{
    static const char *const allowed[] = {"tenant", "model", NULL};
    aigw_admin_query_t query;
    if (s_query (req_p, &query, allowed))
        return;
    s_request_t *req = *req_p;
    const char *tenant = aigw_admin_query_get (&query, "tenant");
    const char *model = aigw_admin_query_get (&query, "model");
    const char *own = req->env->tenant_id;
    if (!req->all && (!own || !*own))
        s_request_forbidden (req_p, "This principal belongs to no tenant.");
    else if (!req->all && tenant && strcmp (tenant, own) != 0)
        s_request_forbidden (req_p, "This principal may only see its own tenant's cache.");
    else if (aigw_admin_cache_envelope (req->owner->host, req->env, op, req->all ? tenant : own,
                                        model))
        s_request_fail (req_p, 500, "server_error", "internal_error", NULL,
                        "The request could not be handed to the cache.");
    else
        s_request_answer (req_p);  //  unanswered: it goes on along its route
    aigw_admin_query_free (&query);
}

static void
s_cache_stats (s_request_t **req_p, const char *id)
{
    s_cache_run (req_p, "stats");
}

static void
s_cache_purge (s_request_t **req_p, const char *id)
{
    s_cache_run (req_p, "purge");
}

//  ---------------------------------------------------------------------
//  Usage: GET usage (per group) and usage/records (raw, newest first).
//  Input and statements live in aigw_admin_usage.

//  The permission that widens usage:read from the caller's own key to its
//  whole tenant (every tenant for a principal of all tenants).
#define S_USAGE_TENANT_PERMISSION "usage:read_tenant"
//  The permission that shows the prompts and answers a record keeps.
#define S_USAGE_CONTENT_PERMISSION "usage:read_content"

static void
s_usage_run (s_request_t **req_p, bool records)
{
    aigw_admin_query_t query;
    if (s_query (req_p, &query, aigw_admin_usage_params (records)))
        return;
    s_request_t *req = *req_p;
    aigw_envelope_t *env = req->env;
    aigw_admin_usage_t usage;
    aigw_admin_error_t err;
    s_page_t page;
    if (aigw_admin_usage_parse (&usage, &query, zclock_time (), &err))
        s_request_refuse (req_p, &err);
    else if (records && s_page (req_p, &query, &page, false))
        ;  //  answered
    else if (!req->all && (!env->tenant_id || !*env->tenant_id))
        s_request_forbidden (req_p, "This principal belongs to no tenant.");
    else {
        //  Records hold the tenant id as auth gave it (a config key's
        //  tenant is a name, not a UUID), so the scope is that text. A
        //  tenant_id filter naming another tenant finds nothing, as on the
        //  other lists.
        bool tenant_wide = aigw_admin_permitted (req->perms, S_USAGE_TENANT_PERMISSION);
        const char *own_key = tenant_wide ? NULL : env->key_id;
        if (!tenant_wide && (!own_key || !*own_key)) {
            s_request_forbidden (req_p, "This principal has no key whose usage it may read.");
            aigw_admin_query_free (&query);
            return;
        }
        const char *params[AIGW_ADMIN_USAGE_PARAMS_MAX]
            = {[AIGW_ADMIN_USAGE_ALL] = aigw_cp_sql_bool (req->all),
               [AIGW_ADMIN_USAGE_SCOPE] = req->all ? NULL : env->tenant_id,
               [AIGW_ADMIN_USAGE_OWN_KEY] = own_key};
        aigw_admin_usage_params_fill (&usage, params, !records);
        if (records) {
            params[AIGW_ADMIN_USAGE_CURSOR_TIME] = page.cursor_time;
            params[AIGW_ADMIN_USAGE_CURSOR_ID] = page.cursor_id;
            params[AIGW_ADMIN_USAGE_LIMIT] = page.limit;
            params[AIGW_ADMIN_USAGE_CONTENT]
                = aigw_cp_sql_bool (aigw_admin_permitted (req->perms, S_USAGE_CONTENT_PERMISSION));
            req->render = S_RENDER_LIST;
            s_request_submit (req_p, &aigw_admin_usage_sql_records, params);
        }
        else {
            req->render = S_RENDER_ONE;
            s_request_submit (req_p, &aigw_admin_usage_sql_summary, params);
        }
    }
    aigw_admin_query_free (&query);
}

static void
s_usage (s_request_t **req_p, const char *id)
{
    s_usage_run (req_p, false);
}

static void
s_usage_records (s_request_t **req_p, const char *id)
{
    s_usage_run (req_p, true);
}

//  ---------------------------------------------------------------------
//  Guardrails

//  The policy NAME if REQ's principal may see it, as GET
//  guardrails/policies/{name} scopes it: another tenant's is not there.
static aigw_policy_t *
s_guardrails_visible (s_request_t *req, const char *name)
{
    const char *owner = aigw_guardset_tenant (req->owner->policies, name);
    if (owner && !req->all && (!req->scope || strcasecmp (owner, req->scope) != 0))
        return NULL;
    return aigw_guardset_find (req->owner->policies, name);
}

//  POST guardrails/test: a text's verdict under a policy, without calling
//  a model. The answer's text is the redacted one whatever the action, so
//  a matched secret never comes back.
static void
s_guardrails_test (s_request_t **req_p, const char *id)
{
    if (s_no_query (req_p))
        return;
    s_request_t *req = *req_p;
    aigw_admin_error_t err;
    json_t *body = aigw_admin_input_body (req->env->body, req->env->body_len, &err);
    if (!body) {
        s_request_refuse (req_p, &err);
        return;
    }
    const char *key;
    json_t *value;
    json_object_foreach (body, key, value) {
        if (strcmp (key, "text") && strcmp (key, "policy")) {
            char message[96];
            snprintf (message, sizeof message, "Unknown field '%.60s'.", key);
            s_request_fail (req_p, 400, "invalid_request_error", "invalid_field",
                            strlen (key) < sizeof err.param ? key : NULL, message);
            json_decref (body);
            return;
        }
    }
    json_t *text = json_object_get (body, "text");
    json_t *name = json_object_get (body, "policy");
    int64_t max_chars = req->owner->config->max_prompt_chars;
    aigw_policy_t *policy = NULL;
    if (!text)
        s_request_fail (req_p, 400, "invalid_request_error", "missing_field", "text",
                        "'text' is required.");
    else if (!json_is_string (text))
        s_request_fail (req_p, 400, "invalid_request_error", "invalid_field", "text",
                        "'text' must be a string.");
    else if (max_chars > 0
             && aigw_text_utf8_length (json_string_value (text), json_string_length (text))
                    > (size_t) max_chars) {
        char message[128];
        snprintf (message, sizeof message, "'text' is longer than %" PRId64 " characters.",
                  max_chars);
        s_request_fail (req_p, 400, "invalid_request_error", "invalid_field", "text", message);
    }
    else if (name && !json_is_string (name))
        s_request_fail (req_p, 400, "invalid_request_error", "invalid_field", "policy",
                        "'policy' must be a string.");
    else if (!(policy = s_guardrails_visible (req, name ? json_string_value (name) : "default")))
        s_request_fail (req_p, 404, "not_found_error", "policy_not_found", "policy",
                        "No guardrail policy with this name.");
    if (!policy) {
        json_decref (body);
        return;
    }
    aigw_policy_verdict_t verdict;
    if (aigw_policy_check (policy, json_string_value (text), json_string_length (text), &verdict)) {
        json_decref (body);
        s_request_fail (req_p, 500, "server_error", "internal_error", NULL,
                        "The guardrails could not check the text.");
        return;
    }
    json_t *triggered = json_array ();
    for (size_t i = 0; triggered && i < verdict.count; i++) {
        const aigw_policy_hit_t *hit = &verdict.hits[i];
        json_array_append_new (
            triggered, json_pack ("{s:s,s:s,s:s,s:I,s:I}", "guardrail", hit->guardrail, "rule",
                                  hit->rule, "action", aigw_policy_action_name (hit->action),
                                  "start", (json_int_t) hit->start, "end", (json_int_t) hit->end));
    }
    json_t *root = json_pack (
        "{s:b,s:s,s:s,s:o,s:s%}", "allowed", verdict.action != AIGW_POLICY_BLOCK, "action",
        aigw_policy_action_name (verdict.action), "policy", aigw_policy_name (policy), "triggered",
        triggered, "text", verdict.text, verdict.text_len);
    aigw_policy_verdict_free (&verdict);
    json_decref (body);
    s_request_json (req_p, 200, root);
}

//  ---------------------------------------------------------------------
//  Routing

//  One route: a path pattern ("{id}" matches one segment, "{path}" the
//  rest of the path, slashes and all: a model name may hold them) and a
//  method.
typedef struct {
    const char *pattern;     //  path below /api/v1/admin/
    const char *method;      //  HTTP method
    const char *permission;  //  needed, NULL = any authenticated principal
    const char *what;        //  the resource, for messages
    s_handler_fn *handler;   //  answers the request
} s_route_t;

static const s_route_t s_routes[] = {
    {"auth/me", "GET", NULL, "principal", s_auth_me},
    {"tenants", "GET", "tenants:read", "tenant", s_tenants_list},
    {"tenants", "POST", "tenants:write", "tenant", s_tenants_create},
    {"tenants/{id}", "GET", "tenants:read", "tenant", s_tenants_get},
    {"tenants/{id}", "PATCH", "tenants:write", "tenant", s_tenants_update},
    {"tenants/{id}", "DELETE", "tenants:write", "tenant", s_tenants_delete},
    {"keys", "GET", "keys:read", "key", s_keys_list},
    {"keys", "POST", "keys:write", "key", s_keys_create},
    {"keys/{id}", "GET", "keys:read", "key", s_keys_get},
    {"keys/{id}", "PATCH", "keys:write", "key", s_keys_update},
    {"keys/{id}", "DELETE", "keys:write", "key", s_keys_delete},
    {"keys/{id}/rotate", "POST", "keys:write", "key", s_keys_rotate},
    {"roles", "GET", "keys:read", "role", s_roles_list},
    {"audit", "GET", "audit:read", "audit entry", s_audit_list},
    {"models", "GET", "models:read", "model", s_models_list},
    {"models", "POST", "models:write", "model", s_models_create},
    {"models/{path}", "GET", "models:read", "model", s_models_get},
    {"models/{path}", "PATCH", "models:write", "model", s_models_update},
    {"models/{path}", "DELETE", "models:write", "model", s_models_delete},
    {"router/health", "GET", "router:read", "router", s_router_health},
    {"usage", "GET", "usage:read", "usage", s_usage},
    {"rate-limits", "GET", NULL, "rate limit", s_rate_limits},
    {"cache/stats", "GET", "cache:read", "cache", s_cache_stats},
    {"cache", "DELETE", "cache:write", "cache", s_cache_purge},
    {"usage/records", "GET", "usage:read", "usage record", s_usage_records},
    {"guardrails/test", "POST", "guardrails:read", "guardrail policy", s_guardrails_test},
    {"guardrails/policies", "GET", "guardrails:read", "guardrail policy",
     aigw_admin_guardrails_list},
    {"guardrails/policies", "POST", "guardrails:write", "guardrail policy",
     aigw_admin_guardrails_create},
    {"guardrails/policies/{id}", "GET", "guardrails:read", "guardrail policy",
     aigw_admin_guardrails_get},
    {"guardrails/policies/{id}", "PATCH", "guardrails:write", "guardrail policy",
     aigw_admin_guardrails_update},
    {"guardrails/policies/{id}", "DELETE", "guardrails:write", "guardrail policy",
     aigw_admin_guardrails_delete},
};

//  True when PATH matches PATTERN; the {id} segment goes to ID.
static bool
s_match (const char *pattern, const char *path, char id[S_ID_MAX + 1])
{
    while (*pattern && *path) {
        size_t plen = strcspn (pattern, "/");
        size_t len = strcspn (path, "/");
        if (len == 0)
            return false;
        if (plen == 6 && memcmp (pattern, "{path}", 6) == 0) {
            len = strlen (path);
            if (len > S_ID_MAX)
                id[0] = 0;  //  matches, and is no id of ours
            else
                memcpy (id, path, len + 1);
            return pattern[plen] == 0;
        }
        if (plen == 4 && memcmp (pattern, "{id}", 4) == 0) {
            if (len > S_ID_MAX)
                id[0] = 0;  //  matches, and is no id of ours
            else {
                memcpy (id, path, len);
                id[len] = 0;
            }
        }
        else if (plen != len || memcmp (pattern, path, len) != 0)
            return false;
        pattern += plen;
        path += len;
        if (*pattern != *path)
            return false;  //  one ends where the other goes on
        if (*pattern == '/')
            pattern++, path++;
    }
    return !*pattern && !*path;
}

//  Route REQ to its handler, or answer 404 / 405 / 403.
static void
s_route (s_request_t **req_p)
{
    aigw_envelope_t *env = (*req_p)->env;
    //  The path without leading slashes and one trailing slash.
    const char *raw = env->path ? env->path : "";
    while (*raw == '/')
        raw++;
    char path[S_PATH_MAX];
    size_t len = strlen (raw);
    if (len >= sizeof path) {
        s_request_fail (req_p, 404, "not_found_error", "not_found", NULL,
                        "Unknown admin API path.");
        return;
    }
    memcpy (path, raw, len + 1);
    if (len > 0 && path[len - 1] == '/')
        path[len - 1] = 0;
    const char *method = env->method ? env->method : "";
    char id[S_ID_MAX + 1] = "";
    bool path_known = false;
    for (size_t i = 0; i < sizeof s_routes / sizeof s_routes[0]; i++) {
        const s_route_t *route = &s_routes[i];
        if (!s_match (route->pattern, path, id))
            continue;
        path_known = true;
        if (!streq (route->method, method))
            continue;
        (*req_p)->what = route->what;
        if (route->permission && !aigw_admin_permitted (env->permissions, route->permission)) {
            char message[160];
            snprintf (message, sizeof message, "This principal lacks the permission %s.",
                      route->permission);
            s_request_forbidden (req_p, message);
            return;
        }
        route->handler (req_p, id);
        return;
    }
    if (path_known) {
        //  RFC 9110 15.5.6: a 405 names the methods the path takes.
        char allow[64] = "";
        for (size_t i = 0; i < sizeof s_routes / sizeof s_routes[0]; i++) {
            if (!s_match (s_routes[i].pattern, path, id))
                continue;
            size_t used = strlen (allow);
            snprintf (allow + used, sizeof allow - used, "%s%s%s", used ? ", " : "",
                      s_routes[i].method, streq (s_routes[i].method, "GET") ? ", HEAD" : "");
        }
        aigw_envelope_set (&env->allow, allow);
        s_request_fail (req_p, 405, "invalid_request_error", "method_not_allowed", NULL,
                        "This method is not allowed on this admin API path.");
    }
    else
        s_request_fail (req_p, 404, "not_found_error", "not_found", NULL,
                        "Unknown admin API path.");
}

//  ---------------------------------------------------------------------
//  The actor

static void
s_self_destroy (self_t **self_p)
{
    self_t *self = *self_p;
    if (!self)
        return;
    aigw_admin_db_destroy (&self->db);
    aigw_secret_destroy (&self->secrets);
    aigw_guardset_destroy (&self->policies);
    free (self);
    *self_p = NULL;
}

static void *
s_stage_new (aigw_host_t *host, const aigw_config_t *config)
{
    self_t *self = calloc (1, sizeof *self);
    if (!self)
        return NULL;
    self->config = config;
    self->endpoint = host ? aigw_host_endpoint (host) : config->broker_endpoint;
    self->host = host;
    char secret_err[256] = "";
    self->secrets = aigw_secret_new (config, secret_err, sizeof secret_err);
    if (!self->secrets) {
        aigw_error ("admin: %s", secret_err);
        s_self_destroy (&self);
        return NULL;
    }
    //  One engine per policy and per actor thread: the engines keep scratch.
    char policy_err[256] = "";
    self->policies = aigw_guardset_new (config, policy_err, sizeof policy_err);
    if (!self->policies) {
        aigw_error ("admin: guardrail.policies: %s", policy_err);
        s_self_destroy (&self);
        return NULL;
    }
    if (config->database_url && *config->database_url) {
        int pool = config->db_pool_size > 0 ? config->db_pool_size : AIGW_ADMIN_DEFAULT_POOL_SIZE;
        self->pool_size = pool > AIGW_ADMIN_POOL_MAX ? AIGW_ADMIN_POOL_MAX : pool;
        int64_t connect = config->db_connect_timeout_ms > 0 ? config->db_connect_timeout_ms
                                                            : AIGW_ADMIN_DEFAULT_CONNECT_TIMEOUT_MS;
        int64_t statement = config->db_statement_timeout_ms > 0
                                ? config->db_statement_timeout_ms
                                : AIGW_ADMIN_DEFAULT_STATEMENT_TIMEOUT_MS;
        self->db = aigw_admin_db_new (config->database_url, self->pool_size, connect, statement,
                                      AIGW_ADMIN_QUEUE_MAX);
        if (!self->db) {
            aigw_error ("admin actor could not start its database pool");
            s_self_destroy (&self);
            return NULL;
        }
    }
    else
        aigw_warn ("admin: no database configured (DATABASE_URL); only auth/me, router/health "
                   "and guardrails/test are served");
    return self;
}

static void
s_stage_destroy (void **state_p)
{
    s_self_destroy ((self_t **) state_p);
}

//  One request: answered, or owned by the pool.
static void
s_self_take (void *arg, aigw_job_t *job, aigw_envelope_t *env)
{
    self_t *self = (self_t *) arg;
    s_request_t *req = s_request_new (self, job, env);
    if (!req) {
        aigw_envelope_set_error (env, 500, "server_error", "internal_error", NULL,
                                 "Out of memory.");
        aigw_stage_pass (&job, &env);
        return;
    }
    if (env->kind != AIGW_KIND_ADMIN)
        s_request_fail (&req, 400, "invalid_request_error", "invalid_request", NULL,
                        "Not an admin API request.");
    else
        s_route (&req);
    assert (!req);
}

//  The pool's connections, then the policies' watcher.
static int
s_stage_pollitems (void *state, zmq_pollitem_t *items, int max)
{
    self_t *self = (self_t *) state;
    int n = self->db ? aigw_admin_db_pollitems (
                self->db, items, max - 1 < AIGW_ADMIN_POOL_MAX ? max - 1 : AIGW_ADMIN_POOL_MAX)
                     : 0;
    self->pool_items = n;
    return n + aigw_guardset_pollitems (self->policies, items + n, max - n);
}

static int
s_stage_timeout (void *state)
{
    self_t *self = (self_t *) state;
    int db = self->db ? aigw_admin_db_timeout (self->db) : -1;
    int watch = aigw_guardset_timeout (self->policies);
    return db < 0 || (watch >= 0 && watch < db) ? watch : db;
}

static void
s_stage_process (void *state, zmq_pollitem_t *items, int count)
{
    self_t *self = (self_t *) state;
    int pool = self->pool_items < count ? self->pool_items : count;
    if (self->db)
        aigw_admin_db_process (self->db, items, pool);
    aigw_guardset_process (self->policies, items + pool, count - pool);
}

const aigw_stage_def_t aigw_admin_stage = {
    .name = "admin",
    .replay_safe = false,
    .state_new = s_stage_new,
    .state_destroy = s_stage_destroy,
    .take = s_self_take,
    .pollitems = s_stage_pollitems,
    .timeout = s_stage_timeout,
    .process = s_stage_process,
};

//  ---------------------------------------------------------------------
//  Selftest: the pure parts (routing patterns here; input, cursors and
//  permissions in aigw_admin_input; the pool's failure paths in
//  aigw_admin_db).

void
aigw_admin_test (bool verbose)
{
    aigw_admin_input_test (verbose);
    aigw_admin_db_test (verbose);

    char id[S_ID_MAX + 1];
    assert (s_match ("auth/me", "auth/me", id));
    assert (!s_match ("auth/me", "auth/me/x", id));
    assert (!s_match ("auth/me", "auth", id));
    assert (s_match ("keys/{id}/rotate", "keys/3f0c/rotate", id) && streq (id, "3f0c"));
    assert (!s_match ("keys/{id}/rotate", "keys//rotate", id));
    assert (!s_match ("keys/{id}", "keys/3f0c/rotate", id));
    assert (s_match ("keys/{id}", "keys/3f0c", id) && streq (id, "3f0c"));
    assert (!s_match ("keys", "keysx", id));
    assert (!s_match ("tenants", "keys", id));
    char long_id[S_ID_MAX + 16];
    memset (long_id, 'a', sizeof long_id - 1);
    long_id[sizeof long_id - 1] = 0;
    char path[S_ID_MAX + 32];
    snprintf (path, sizeof path, "keys/%s", long_id);
    assert (s_match ("keys/{id}", path, id) && id[0] == 0);
    //  {path} takes the rest, slashes and all.
    assert (s_match ("models/{path}", "models/config:meta/llama-3", id)
            && streq (id, "config:meta/llama-3"));
    assert (s_match ("models/{path}", "models/3f0c", id) && streq (id, "3f0c"));
    assert (!s_match ("models/{path}", "models", id));
    assert (!s_match ("models/{path}", "models/", id));
    assert (!s_match ("models", "models/3f0c", id));
    //  A JSON path reaches into arrays and objects.
    json_t *doc = json_pack ("{s:s,s:[{s:s},{s:i}]}", "name", "m", "deployments", "provider",
                             "openai", "weight", 2);
    assert (s_json_at (doc, "") == doc);
    assert (streq (json_string_value (s_json_at (doc, "name")), "m"));
    assert (json_integer_value (s_json_at (doc, "deployments[1].weight")) == 2);
    assert (s_json_at (doc, "deployments[1].base_url") == NULL);
    assert (s_json_at (doc, "deployments[7]") == NULL);
    assert (s_json_at (doc, "fallbacks") == NULL);
    json_decref (doc);
    //  Schema CHECKs name the field they guard.
    assert (streq (s_constraint_param ("models_fallbacks_self_check"), "fallbacks"));
    assert (s_constraint_param ("api_keys_rpm_check") == NULL && !s_constraint_param (NULL));
    //  Model statements take every value as a parameter, and never read
    //  an upstream secret back.
    const aigw_cp_sql_t *model_reads[] = {&s_sql_model_list, &s_sql_model_get, &s_sql_model_create,
                                          &s_sql_model_update, &s_sql_model_delete};
    for (size_t i = 0; i < sizeof model_reads / sizeof model_reads[0]; i++) {
        const char *text = model_reads[i]->text;
        assert (strlen (text) > 20 && !strstr (text, "%s") && !strstr (text, "'api_key', d.api_key")
                && !strstr (text, "d.api_key,"));
        char top[8];
        snprintf (top, sizeof top, "$%d", model_reads[i]->count);
        assert (strstr (text, top));
    }
    //  GET rate-limits hands the request on: the target's ids and limits,
    //  and ratelimit as the next stage, which the runtime's pass reaches.
    aigw_envelope_t *env = aigw_envelope_new ();
    env->kind = AIGW_KIND_ADMIN;
    env->route[0] = strdup ("auth");
    env->route[1] = strdup ("admin");
    env->route_len = 2;
    env->hop = 1;
    aigw_envelope_set (&env->key_id, "caller");
    aigw_envelope_set (&env->tenant_id, "t-caller");
    assert (s_rate_limits_envelope (env, NULL, "0b8f3c3e-2222-4f7e-8c49-2b9e0f7d6a01", "t=rpm:1000")
            == 0);
    assert (env->route_len == 3 && streq (env->route[2], "ratelimit") && env->status == 0);
    assert (env->key_id == NULL && streq (env->tenant_id, "0b8f3c3e-2222-4f7e-8c49-2b9e0f7d6a01"));
    assert (streq (env->limits, "t=rpm:1000"));
    env->hop++;
    assert (streq (aigw_envelope_stage (env), "ratelimit"));
    //  Only from the route's last stage, and never past the route's room.
    env->hop = 0;
    assert (s_rate_limits_envelope (env, "k", "t", NULL) == -1);
    env->hop = env->route_len - 1;
    while (env->route_len < AIGW_ROUTE_MAX) {
        env->route[env->route_len++] = strdup ("x");
        env->hop++;
    }
    assert (s_rate_limits_envelope (env, "k", "t", NULL) == -1);
    aigw_envelope_destroy (&env);
    //  The statements that read limits for it are scoped like every read.
    assert (s_sql_key_limits.all && s_sql_key_limits.scope && s_sql_tenant_limits.all
            && s_sql_tenant_limits.scope);
    if (verbose)
        printf ("admin: ok\n");
}
