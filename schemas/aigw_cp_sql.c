/*  aigw_cp_sql: the control plane's statements (see aigw_cp_sql.h). */
#include "aigw_cp_sql.h"

#include <assert.h>
#include <stdio.h>
#include <string.h>

//  Short names for the header's fragments, inside this file.
//  The statements: SQL text reads best as written.
// clang-format off
#define S_TS(col) AIGW_CP_SQL_TS (col)
#define S_TS_US(col) AIGW_CP_SQL_TS_US (col)
#define S_AUDIT_INSERT AIGW_CP_SQL_AUDIT_INSERT

//  A tenant row (alias t) as JSON.
#define S_TENANT_JSON                                                            \
    "json_build_object ('id', t.id, 'name', t.name, 'metadata', t.metadata,"     \
    " 'store_content', t.store_content, 'cache', t.cache,"                          \
    " 'cache_semantic', t.cache_semantic, 'limits', t.limits,"                      \
    " 'created_at', " S_TS ("t.created_at") ", 'updated_at', " S_TS ("t.updated_at") ")"

//  An API key row (alias k) as JSON: never its hash.
#define S_KEY_JSON                                                               \
    "json_build_object ('id', k.id, 'tenant_id', k.tenant_id, 'name', k.name,"    \
    " 'prefix', k.prefix, 'role', k.role,"                                        \
    " 'status', CASE WHEN k.revoked_at IS NOT NULL THEN 'revoked'"                \
    " WHEN k.expires_at <= now () THEN 'expired' ELSE 'active' END,"              \
    " 'expires_at', " S_TS ("k.expires_at") ", 'revoked', k.revoked_at IS NOT NULL," \
    " 'revoked_at', " S_TS ("k.revoked_at") ", 'models', k.models, 'rpm', k.rpm,"  \
    " 'tpm', k.tpm, 'budget_usd', k.budget_usd, 'limits', k.limits,"              \
    " 'cache', k.cache, 'cache_semantic', k.cache_semantic, 'metadata', k.metadata," \
    " 'created_at', " S_TS ("k.created_at") ", 'updated_at', " S_TS ("k.updated_at") \
    ", 'rotated_at', " S_TS ("k.rotated_at") ")"


//  True when the caller's permissions (parameter P, comma-separated) cover
//  every permission of a role (ROLE_PERMS, a text[]).
#define S_COVERS(p, role_perms)                                                  \
    "('*' = ANY (string_to_array (" p ", ',')) OR " role_perms                   \
    " <@ string_to_array (" p ", ','))"

//  A statement's parameter count and the $n of the principal's values,
//  from the names of its enum (AIGW_CP_X_...): a scoped statement takes
//  ALL and SCOPE, a checked one PERMS, a signed one ACTOR_TYPE and ACTOR_ID.
#define S_COUNT(x) .count = AIGW_CP_##x##_COUNT
#define S_SCOPED(x) .all = 1 + AIGW_CP_##x##_ALL, .scope = 1 + AIGW_CP_##x##_SCOPE
#define S_CHECKED(x) .perms = 1 + AIGW_CP_##x##_PERMS
#define S_SIGNED(x)                                                              \
    .actor_type = 1 + AIGW_CP_##x##_ACTOR_TYPE, .actor_id = 1 + AIGW_CP_##x##_ACTOR_ID

//  The models array of the input (alias i), in order; NULL for null.
#define S_INPUT_MODELS                                                           \
    "CASE WHEN jsonb_typeof (i.v->'models') = 'array' THEN ARRAY (SELECT m.e FROM" \
    " jsonb_array_elements_text (i.v->'models') WITH ORDINALITY AS m (e, n)"       \
    " ORDER BY m.n) END"

//  The input's limits object (alias i), {} when it gives none or null.
#define S_INPUT_LIMITS                                                           \
    "CASE WHEN jsonb_typeof (i.v->'limits') = 'object' THEN i.v->'limits'"         \
    " ELSE '{}'::jsonb END"

//  The input's cache_semantic (alias i): JSON null and absent are SQL NULL
//  (->> reads them so; a jsonb null cannot be cast to boolean).
#define S_INPUT_SEMANTIC "(i.v->>'cache_semantic')::boolean"

//  A key's limits from BASE (its limits object) and the SPEC's fields of
//  the input (alias i): rpm, tpm and budget_usd, when given, replace
//  limits.rpm, limits.tpm and limits.budget (period month); null removes.
//  The admin API refuses a body whose two forms disagree (limits.md 1a).
#define S_KEY_LIMITS(base)                                                       \
    "(((" base " - CASE WHEN i.v ? 'rpm' THEN 'rpm' ELSE '' END)"                  \
    " - CASE WHEN i.v ? 'tpm' THEN 'tpm' ELSE '' END)"                             \
    " - CASE WHEN i.v ? 'budget_usd' THEN 'budget' ELSE '' END)"                   \
    " || jsonb_strip_nulls (jsonb_build_object ('rpm', (i.v->>'rpm')::integer,"     \
    " 'tpm', (i.v->>'tpm')::integer, 'budget', CASE WHEN i.v->>'budget_usd' IS NOT NULL" \
    " THEN jsonb_build_object ('usd', (i.v->>'budget_usd')::numeric, 'period', 'month')" \
    " END))"

//  The SPEC's columns of a key, mirrored from its limits (alias n.l).
#define S_KEY_LIMIT_COLUMNS                                                      \
    " (n.l->>'rpm')::integer, (n.l->>'tpm')::integer,"                             \
    " CASE WHEN COALESCE (n.l->'budget'->>'period', 'month') = 'month'"            \
    " THEN (n.l->'budget'->>'usd')::numeric END"

//  $1 all, $2 scope, $3 name, $4 cursor time, $5 cursor id, $6 limit
const aigw_cp_sql_t aigw_cp_sql_tenant_list = {
    .text = "SELECT " S_TENANT_JSON ", " S_TS_US ("t.created_at") ", t.id FROM tenants t"
        " WHERE ($1::boolean OR t.id = $2::uuid) AND ($3::text IS NULL OR t.name = $3::text)"
        " AND ($4::timestamptz IS NULL OR (t.created_at, t.id) > ($4::timestamptz, $5::uuid))"
        " ORDER BY t.created_at, t.id LIMIT $6::integer",
    S_COUNT (TENANT_LIST), S_SCOPED (TENANT_LIST)};

//  $1 id, $2 all, $3 scope
const aigw_cp_sql_t aigw_cp_sql_tenant_get = {
    .text = "SELECT " S_TENANT_JSON " FROM tenants t"
        " WHERE t.id = $1::uuid AND ($2::boolean OR t.id = $3::uuid)",
    S_COUNT (TENANT_GET), S_SCOPED (TENANT_GET)};

//  $1 input, $2 actor type, $3 actor id
const aigw_cp_sql_t aigw_cp_sql_tenant_create = {
    .text = "WITH input AS (SELECT $1::jsonb AS v),"
        " changed AS (INSERT INTO tenants (name, metadata, store_content, cache,"
        " cache_semantic, limits)"
        " SELECT i.v->>'name', COALESCE (i.v->'metadata', '{}'::jsonb),"
        " COALESCE ((i.v->'store_content')::boolean, false),"
        " COALESCE ((i.v->'cache')::boolean, true), " S_INPUT_SEMANTIC ", " S_INPUT_LIMITS
        " FROM input i"
        " RETURNING *),"
        " audit AS (" S_AUDIT_INSERT "SELECT $2, $3, c.id, 'tenants.create', 'tenant',"
        " c.id::text, NULL, to_jsonb (c) FROM changed c)"
        " SELECT " S_TENANT_JSON " FROM changed t",
    S_COUNT (TENANT_CREATE), S_SIGNED (TENANT_CREATE)};

//  $1 input, $2 id, $3 all, $4 scope, $5 actor type, $6 actor id
const aigw_cp_sql_t aigw_cp_sql_tenant_update = {
    .text = "WITH input AS (SELECT $1::jsonb AS v),"
        " old AS (SELECT t.* FROM tenants t WHERE t.id = $2::uuid"
        " AND ($3::boolean OR t.id = $4::uuid) FOR UPDATE),"
        " changed AS (UPDATE tenants t SET"
        " name = CASE WHEN i.v ? 'name' THEN i.v->>'name' ELSE t.name END,"
        " metadata = CASE WHEN i.v ? 'metadata' THEN i.v->'metadata' ELSE t.metadata END,"
        " store_content = CASE WHEN i.v ? 'store_content'"
        " THEN (i.v->'store_content')::boolean ELSE t.store_content END,"
        " cache = CASE WHEN i.v ? 'cache' THEN (i.v->'cache')::boolean ELSE t.cache END,"
        " cache_semantic = CASE WHEN i.v ? 'cache_semantic' THEN " S_INPUT_SEMANTIC
        " ELSE t.cache_semantic END,"
        " limits = CASE WHEN i.v ? 'limits' THEN " S_INPUT_LIMITS " ELSE t.limits END,"
        " updated_at = now () FROM old o, input i WHERE t.id = o.id RETURNING t.*),"
        " audit AS (" S_AUDIT_INSERT "SELECT $5, $6, c.id, 'tenants.update', 'tenant',"
        " c.id::text, to_jsonb (o), to_jsonb (c) FROM changed c JOIN old o ON o.id = c.id)"
        " SELECT " S_TENANT_JSON " FROM changed t",
    S_COUNT (TENANT_UPDATE), S_SCOPED (TENANT_UPDATE), S_SIGNED (TENANT_UPDATE)};

//  $1 id, $2 all, $3 scope, $4 actor type, $5 actor id
const aigw_cp_sql_t aigw_cp_sql_tenant_delete = {
    .text = "WITH old AS (SELECT t.* FROM tenants t WHERE t.id = $1::uuid"
        " AND ($2::boolean OR t.id = $3::uuid) FOR UPDATE),"
        " changed AS (DELETE FROM tenants t USING old o WHERE t.id = o.id RETURNING t.*),"
        " audit AS (" S_AUDIT_INSERT "SELECT $4, $5, c.id, 'tenants.delete', 'tenant',"
        " c.id::text, to_jsonb (c), NULL FROM changed c)"
        " SELECT " S_TENANT_JSON " FROM changed t",
    S_COUNT (TENANT_DELETE), S_SCOPED (TENANT_DELETE), S_SIGNED (TENANT_DELETE)};

//  $1 all, $2 scope, $3 tenant id, $4 role, $5 revoked, $6 name,
//  $7 cursor time, $8 cursor id, $9 limit
const aigw_cp_sql_t aigw_cp_sql_key_list = {
    .text = "SELECT " S_KEY_JSON ", " S_TS_US ("k.created_at") ", k.id FROM api_keys k"
        " WHERE ($1::boolean OR k.tenant_id = $2::uuid)"
        " AND ($3::uuid IS NULL OR k.tenant_id = $3::uuid)"
        " AND ($4::text IS NULL OR k.role = $4::text)"
        " AND ($5::boolean IS NULL OR (k.revoked_at IS NOT NULL) = $5::boolean)"
        " AND ($6::text IS NULL OR k.name = $6::text)"
        " AND ($7::timestamptz IS NULL OR (k.created_at, k.id) > ($7::timestamptz, $8::uuid))"
        " ORDER BY k.created_at, k.id LIMIT $9::integer",
    S_COUNT (KEY_LIST), S_SCOPED (KEY_LIST)};

//  $1 id, $2 all, $3 scope
const aigw_cp_sql_t aigw_cp_sql_key_get = {
    .text = "SELECT " S_KEY_JSON " FROM api_keys k"
        " WHERE k.id = $1::uuid AND ($2::boolean OR k.tenant_id = $3::uuid)",
    S_COUNT (KEY_GET), S_SCOPED (KEY_GET)};

//  $1 input, $2 all, $3 scope, $4 permissions, $5 actor type, $6 actor id,
//  $7 hash (hex), $8 prefix. Answers one row: tenant found, role found,
//  role granted, the key.
const aigw_cp_sql_t aigw_cp_sql_key_create = {
    .text = "WITH input AS (SELECT $1::jsonb AS v),"
        " tenant AS (SELECT t.id FROM tenants t, input i"
        " WHERE t.id = (i.v->>'tenant_id')::uuid AND ($2::boolean OR t.id = $3::uuid)),"
        " role AS (SELECT r.name, r.permissions FROM roles r, input i"
        " WHERE r.name = i.v->>'role'),"
        " granted AS (SELECT r.name FROM role r WHERE " S_COVERS ("$4", "r.permissions") "),"
        " lim AS (SELECT " S_KEY_LIMITS (S_INPUT_LIMITS) " AS l FROM input i),"
        " changed AS (INSERT INTO api_keys (tenant_id, name, prefix, secret_sha256, role,"
        " expires_at, models, rpm, tpm, budget_usd, limits, metadata, cache, cache_semantic)"
        " SELECT t.id, i.v->>'name', $8, decode ($7, 'hex'), g.name,"
        " (i.v->>'expires_at')::timestamptz, " S_INPUT_MODELS ","
        S_KEY_LIMIT_COLUMNS ", n.l,"
        " COALESCE (i.v->'metadata', '{}'::jsonb), COALESCE ((i.v->'cache')::boolean, true),"
        " " S_INPUT_SEMANTIC
        " FROM input i, tenant t, granted g, lim n"
        " RETURNING *),"
        " audit AS (" S_AUDIT_INSERT "SELECT $5, $6, c.tenant_id, 'keys.create', 'api_key',"
        " c.id::text, NULL, to_jsonb (c) - 'secret_sha256' FROM changed c)"
        " SELECT (SELECT count (*) FROM tenant), (SELECT count (*) FROM role),"
        " (SELECT count (*) FROM granted), (SELECT " S_KEY_JSON " FROM changed k)",
    S_COUNT (KEY_CREATE), S_SCOPED (KEY_CREATE), S_CHECKED (KEY_CREATE), S_SIGNED (KEY_CREATE)};

//  The key to change ($1 id, $2 all, $3 scope), locked, and whether the
//  caller ($4 permissions) covers its current role.
#define S_KEY_OLD                                                                \
    " old AS (SELECT k.* FROM api_keys k WHERE k.id = $1::uuid"                    \
    " AND ($2::boolean OR k.tenant_id = $3::uuid) FOR UPDATE),"                    \
    " allowed AS (SELECT 1 FROM old o JOIN roles r ON r.name = o.role"             \
    " WHERE " S_COVERS ("$4", "r.permissions") "),"

//  $1 id, $2 all, $3 scope, $4 permissions, $5 actor type, $6 actor id,
//  $7 action, $8 input. Answers: found, new role found, allowed, the key.
const aigw_cp_sql_t aigw_cp_sql_key_update = {
    .text = "WITH input AS (SELECT $8::jsonb AS v)," S_KEY_OLD
        " role AS (SELECT r.name, r.permissions FROM roles r, input i, old o"
        " WHERE r.name = COALESCE (i.v->>'role', o.role)),"
        " granted AS (SELECT 1 FROM allowed, role r WHERE " S_COVERS ("$4", "r.permissions") "),"
        " lim AS (SELECT " S_KEY_LIMITS ("CASE WHEN i.v ? 'limits' THEN " S_INPUT_LIMITS
        " ELSE o.limits END") " AS l FROM input i, old o),"
        " changed AS (UPDATE api_keys k SET"
        " name = CASE WHEN i.v ? 'name' THEN i.v->>'name' ELSE k.name END,"
        " role = CASE WHEN i.v ? 'role' THEN i.v->>'role' ELSE k.role END,"
        " expires_at = CASE WHEN i.v ? 'expires_at'"
        " THEN (i.v->>'expires_at')::timestamptz ELSE k.expires_at END,"
        " models = CASE WHEN i.v ? 'models' THEN " S_INPUT_MODELS " ELSE k.models END,"
        " (rpm, tpm, budget_usd) = (SELECT" S_KEY_LIMIT_COLUMNS "), limits = n.l,"
        " metadata = CASE WHEN i.v ? 'metadata' THEN i.v->'metadata' ELSE k.metadata END,"
        " cache = CASE WHEN i.v ? 'cache' THEN (i.v->'cache')::boolean ELSE k.cache END,"
        " cache_semantic = CASE WHEN i.v ? 'cache_semantic' THEN " S_INPUT_SEMANTIC
        " ELSE k.cache_semantic END,"
        " revoked_at = CASE WHEN i.v ? 'revoked' THEN COALESCE (k.revoked_at, now ())"
        " ELSE k.revoked_at END,"
        " updated_at = now ()"
        " FROM old o, input i, granted g, lim n WHERE k.id = o.id RETURNING k.*),"
        " audit AS (" S_AUDIT_INSERT "SELECT $5, $6, c.tenant_id, $7, 'api_key', c.id::text,"
        " to_jsonb (o) - 'secret_sha256', to_jsonb (c) - 'secret_sha256'"
        " FROM changed c JOIN old o ON o.id = c.id)"
        " SELECT (SELECT count (*) FROM old), (SELECT count (*) FROM role),"
        " (SELECT count (*) FROM granted), (SELECT " S_KEY_JSON " FROM changed k)",
    S_COUNT (KEY_UPDATE), S_SCOPED (KEY_UPDATE), S_CHECKED (KEY_UPDATE), S_SIGNED (KEY_UPDATE)};

//  $1 id, $2 all, $3 scope, $4 permissions, $5 actor type, $6 actor id.
//  Answers: found, allowed, the key as it was.
const aigw_cp_sql_t aigw_cp_sql_key_delete = {
    .text = "WITH" S_KEY_OLD
        " changed AS (DELETE FROM api_keys k USING old o, allowed a WHERE k.id = o.id"
        " RETURNING k.*),"
        " audit AS (" S_AUDIT_INSERT "SELECT $5, $6, c.tenant_id, 'keys.delete', 'api_key',"
        " c.id::text, to_jsonb (c) - 'secret_sha256', NULL FROM changed c)"
        " SELECT (SELECT count (*) FROM old), (SELECT count (*) FROM allowed),"
        " (SELECT " S_KEY_JSON " FROM changed k)",
    S_COUNT (KEY_DELETE), S_SCOPED (KEY_DELETE), S_CHECKED (KEY_DELETE), S_SIGNED (KEY_DELETE)};

//  $1 id, $2 all, $3 scope, $4 permissions, $5 actor type, $6 actor id,
//  $7 hash (hex), $8 prefix. Answers: found, allowed, revoked, the key.
const aigw_cp_sql_t aigw_cp_sql_key_rotate = {
    .text = "WITH" S_KEY_OLD
        " changed AS (UPDATE api_keys k SET secret_sha256 = decode ($7, 'hex'), prefix = $8,"
        " rotated_at = now (), updated_at = now () FROM old o, allowed a"
        " WHERE k.id = o.id AND o.revoked_at IS NULL RETURNING k.*),"
        " audit AS (" S_AUDIT_INSERT "SELECT $5, $6, c.tenant_id, 'keys.rotate', 'api_key',"
        " c.id::text, to_jsonb (o) - 'secret_sha256', to_jsonb (c) - 'secret_sha256'"
        " FROM changed c JOIN old o ON o.id = c.id)"
        " SELECT (SELECT count (*) FROM old), (SELECT count (*) FROM allowed),"
        " (SELECT count (*) FROM old WHERE revoked_at IS NOT NULL),"
        " (SELECT " S_KEY_JSON " FROM changed k)",
    S_COUNT (KEY_ROTATE), S_SCOPED (KEY_ROTATE), S_CHECKED (KEY_ROTATE), S_SIGNED (KEY_ROTATE)};

//  $1 all, $2 scope, $3 tenant id, $4 action, $5 target id, $6 cursor id,
//  $7 limit. Newest first: the id is a serial.
const aigw_cp_sql_t aigw_cp_sql_audit_list = {
    .text = "SELECT json_build_object ('id', a.id, 'at', " S_TS ("a.at") ","
        " 'actor_type', a.actor_type, 'actor_id', a.actor_id, 'tenant_id', a.tenant_id,"
        " 'action', a.action, 'target_type', a.target_type, 'target_id', a.target_id,"
        " 'before', a.before, 'after', a.after), " S_TS_US ("a.at") ", a.id::text"
        " FROM audit_log a WHERE ($1::boolean OR a.tenant_id = $2::uuid)"
        " AND ($3::uuid IS NULL OR a.tenant_id = $3::uuid)"
        " AND ($4::text IS NULL OR a.action = $4::text)"
        " AND ($5::text IS NULL OR a.target_id = $5::text)"
        " AND ($6::bigint IS NULL OR a.id < $6::bigint)"
        " ORDER BY a.id DESC LIMIT $7::integer",
    S_COUNT (AUDIT_LIST), S_SCOPED (AUDIT_LIST)};


//  Every role, by name.
const aigw_cp_sql_t aigw_cp_sql_roles = {
    .text = "SELECT json_build_object ('name', r.name, 'permissions', r.permissions,"
        " 'builtin', r.builtin, 'description', r.description) FROM roles r ORDER BY r.name",
    .count = 0};

//  Keys by secret hash, for auth: $1 a text[] of hex hashes.
const char aigw_cp_sql_key_lookup[]
    = "SELECT encode (k.secret_sha256, 'hex'), k.id::text, k.name, k.tenant_id::text,"
      " t.name, k.role, array_to_string (r.permissions, ','),"
      " array_to_string (k.models, ','), coalesce (k.rpm, 0),"
      " coalesce ((extract (epoch FROM k.expires_at) * 1000)::bigint, 0),"
      " k.revoked_at IS NOT NULL, t.store_content, k.limits::text, t.limits::text,"
      " k.cache AND t.cache, COALESCE (k.cache_semantic, t.cache_semantic)"
      " FROM api_keys k JOIN tenants t ON t.id = k.tenant_id"
      " JOIN roles r ON r.name = k.role"
      " WHERE k.secret_sha256 IN"
      " (SELECT decode (h, 'hex') FROM unnest ($1::text[]) AS h)";
// clang-format on

const char *
aigw_cp_sql_bool (bool value)
{
    return value ? "t" : "f";
}

void
aigw_cp_sql_principal (const aigw_cp_sql_t *statement, const aigw_cp_principal_t *who,
                       const char **params)
{
    if (statement->all)
        params[statement->all - 1] = aigw_cp_sql_bool (who->all);
    if (statement->scope)
        params[statement->scope - 1] = who->scope;
    if (statement->perms)
        params[statement->perms - 1] = who->perms;
    if (statement->actor_type)
        params[statement->actor_type - 1] = who->actor_type;
    if (statement->actor_id)
        params[statement->actor_id - 1] = who->actor_id;
}

//  --------------------------------------------------------------------------
//  Selftest

//  The highest $n in SQL.
static int
s_max_param (const char *sql)
{
    int max = 0;
    for (const char *p = strchr (sql, '$'); p; p = strchr (p + 1, '$')) {
        int n = 0;
        for (const char *d = p + 1; *d >= '0' && *d <= '9'; d++)
            n = n * 10 + (*d - '0');
        if (n > max)
            max = n;
    }
    return max;
}

void
aigw_cp_sql_test (bool verbose)
{
    const aigw_cp_sql_t *statements[]
        = {&aigw_cp_sql_tenant_list,   &aigw_cp_sql_tenant_get,    &aigw_cp_sql_tenant_create,
           &aigw_cp_sql_tenant_update, &aigw_cp_sql_tenant_delete, &aigw_cp_sql_key_list,
           &aigw_cp_sql_key_get,       &aigw_cp_sql_key_create,    &aigw_cp_sql_key_update,
           &aigw_cp_sql_key_delete,    &aigw_cp_sql_key_rotate,    &aigw_cp_sql_roles,
           &aigw_cp_sql_audit_list};
    for (size_t i = 0; i < sizeof statements / sizeof statements[0]; i++) {
        const aigw_cp_sql_t *statement = statements[i];
        assert (strlen (statement->text) > 20 && !strstr (statement->text, "%s"));
        assert (s_max_param (statement->text) == statement->count);
        //  Each principal slot is a parameter of its own.
        int slots[] = {statement->all, statement->scope, statement->perms, statement->actor_type,
                       statement->actor_id};
        for (size_t a = 0; a < sizeof slots / sizeof slots[0]; a++) {
            assert (slots[a] >= 0 && slots[a] <= statement->count);
            for (size_t b = 0; b < a; b++)
                assert (slots[a] == 0 || slots[a] != slots[b]);
        }
    }
    assert (s_max_param (aigw_cp_sql_key_lookup) == AIGW_CP_KEY_LOOKUP_COUNT);
    //  A change and its audit row are one statement, signed by the actor.
    const aigw_cp_sql_t *changes[]
        = {&aigw_cp_sql_tenant_create, &aigw_cp_sql_tenant_update, &aigw_cp_sql_tenant_delete,
           &aigw_cp_sql_key_create,    &aigw_cp_sql_key_update,    &aigw_cp_sql_key_delete,
           &aigw_cp_sql_key_rotate};
    for (size_t i = 0; i < sizeof changes / sizeof changes[0]; i++)
        assert (strstr (changes[i]->text, "INSERT INTO audit_log") && changes[i]->actor_type
                && changes[i]->actor_id);
    //  No key read hands out its hash.
    assert (!strstr (aigw_cp_sql_key_list.text, "secret_sha256"));
    assert (!strstr (aigw_cp_sql_key_get.text, "secret_sha256"));
    assert (strcmp (aigw_cp_sql_bool (true), "t") == 0);
    //  The principal fills its slots and nothing else.
    const aigw_cp_principal_t who = {false, "scope", "perms", "type", "id"};
    const char *params[AIGW_CP_KEY_DELETE_COUNT] = {[AIGW_CP_KEY_DELETE_ID] = "key"};
    aigw_cp_sql_principal (&aigw_cp_sql_key_delete, &who, params);
    assert (strcmp (params[AIGW_CP_KEY_DELETE_ID], "key") == 0);
    assert (strcmp (params[AIGW_CP_KEY_DELETE_ALL], "f") == 0);
    assert (strcmp (params[AIGW_CP_KEY_DELETE_SCOPE], "scope") == 0);
    assert (strcmp (params[AIGW_CP_KEY_DELETE_PERMS], "perms") == 0);
    assert (strcmp (params[AIGW_CP_KEY_DELETE_ACTOR_TYPE], "type") == 0);
    assert (strcmp (params[AIGW_CP_KEY_DELETE_ACTOR_ID], "id") == 0);
    const char *none[AIGW_CP_TENANT_CREATE_COUNT] = {NULL};
    aigw_cp_sql_principal (&aigw_cp_sql_tenant_create, &who, none);
    assert (!none[AIGW_CP_TENANT_CREATE_INPUT]);
    if (verbose)
        printf ("cp_sql: ok\n");
}
