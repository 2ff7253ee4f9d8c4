/*  aigw_cp_sql: the control plane's statements on tenants, API keys, roles
    and the audit log, written once for every caller: the admin API (its
    asynchronous pool), the operator CLI (synchronous, aigw_db_exec) and
    auth's key lookup.

    Each statement is an aigw_cp_sql_t and comes with an enum of its
    parameters, in order, ending in a _COUNT: fill a `const char
    *params[X_COUNT]` with designated initializers for the statement's own
    values, and aigw_cp_sql_principal fills in who runs it, so a caller
    never counts $n by hand nor repeats the principal. Every value is a
    parameter (text; NULL is SQL NULL); table and column names are
    constants. Rows come back as JSON objects (json_build_object) with times
    as RFC 3339 in UTC with milliseconds; list cursors carry microseconds so
    that (created_at, id) is exact. A change writes its audit_log row in the
    same statement.

    Scope parameters: ALL is "true" for a principal of every tenant (the
    CLI is one), else SCOPE is the caller's tenant id; PERMS is the caller's
    comma-separated permissions ("*" for all), which must cover a key's
    role. ACTOR_TYPE and ACTOR_ID name who acts, for audit_log. */
#ifndef AIGW_CP_SQL_H_INCLUDED
#define AIGW_CP_SQL_H_INCLUDED

#include <stdbool.h>

//  Fragments for statements on other tables (the admin's models):
//  a timestamptz column as RFC 3339 text in UTC, with milliseconds ...
#define AIGW_CP_SQL_TS(col) \
    "to_char (" col " AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"')"
//  ... or with microseconds (list cursors).
#define AIGW_CP_SQL_TS_US(col) \
    "to_char (" col " AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"')"
//  The head of an audit_log insert; a SELECT of the eight columns follows.
#define AIGW_CP_SQL_AUDIT_INSERT                                                   \
    "INSERT INTO audit_log (actor_type, actor_id, tenant_id, action, target_type," \
    " target_id, before, after) "

//  Who runs a statement: the tenants it may see and change, and who signs
//  its audit row.
typedef struct {
    bool all;                //  a principal of every tenant
    const char *scope;       //  else its tenant id, NULL for none
    const char *perms;       //  its permissions, comma-separated, "*" for all
    const char *actor_type;  //  audit_log.actor_type
    const char *actor_id;    //  audit_log.actor_id
} aigw_cp_principal_t;

//  A statement, and which of its parameters take the principal's values:
//  their $n, 0 for a value the statement does not take.
typedef struct {
    const char *text;  //  the SQL
    int count;         //  its parameters: the enum's _COUNT
    int all;           //  $n of aigw_cp_principal_t.all ("t" or "f")
    int scope;         //  $n of .scope
    int perms;         //  $n of .perms
    int actor_type;    //  $n of .actor_type
    int actor_id;      //  $n of .actor_id
} aigw_cp_sql_t;

//  Tenants, oldest first. Rows: tenant JSON, cursor time, id.
extern const aigw_cp_sql_t aigw_cp_sql_tenant_list;
enum {
    AIGW_CP_TENANT_LIST_ALL,
    AIGW_CP_TENANT_LIST_SCOPE,
    AIGW_CP_TENANT_LIST_NAME,         //  NULL = any
    AIGW_CP_TENANT_LIST_CURSOR_TIME,  //  NULL = from the start
    AIGW_CP_TENANT_LIST_CURSOR_ID,
    AIGW_CP_TENANT_LIST_LIMIT,  //  NULL = all
    AIGW_CP_TENANT_LIST_COUNT
};

//  One tenant. Row: tenant JSON; none when not found or out of scope.
extern const aigw_cp_sql_t aigw_cp_sql_tenant_get;
enum {
    AIGW_CP_TENANT_GET_ID,
    AIGW_CP_TENANT_GET_ALL,
    AIGW_CP_TENANT_GET_SCOPE,
    AIGW_CP_TENANT_GET_COUNT
};

//  Create a tenant from INPUT (JSON: name, metadata, store_content, cache,
//  cache_semantic, limits). Row: tenant JSON. A taken name fails with unique_violation.
extern const aigw_cp_sql_t aigw_cp_sql_tenant_create;
enum {
    AIGW_CP_TENANT_CREATE_INPUT,
    AIGW_CP_TENANT_CREATE_ACTOR_TYPE,
    AIGW_CP_TENANT_CREATE_ACTOR_ID,
    AIGW_CP_TENANT_CREATE_COUNT
};

//  Change a tenant's members given in INPUT (name, metadata,
//  store_content, cache, cache_semantic, limits). Row: tenant JSON; none
//  when not found.
extern const aigw_cp_sql_t aigw_cp_sql_tenant_update;
enum {
    AIGW_CP_TENANT_UPDATE_INPUT,
    AIGW_CP_TENANT_UPDATE_ID,
    AIGW_CP_TENANT_UPDATE_ALL,
    AIGW_CP_TENANT_UPDATE_SCOPE,
    AIGW_CP_TENANT_UPDATE_ACTOR_TYPE,
    AIGW_CP_TENANT_UPDATE_ACTOR_ID,
    AIGW_CP_TENANT_UPDATE_COUNT
};

//  Delete a tenant. Row: the tenant as it was; none when not found.
extern const aigw_cp_sql_t aigw_cp_sql_tenant_delete;
enum {
    AIGW_CP_TENANT_DELETE_ID,
    AIGW_CP_TENANT_DELETE_ALL,
    AIGW_CP_TENANT_DELETE_SCOPE,
    AIGW_CP_TENANT_DELETE_ACTOR_TYPE,
    AIGW_CP_TENANT_DELETE_ACTOR_ID,
    AIGW_CP_TENANT_DELETE_COUNT
};

//  API keys, oldest first. Rows: key JSON (never the hash), cursor time, id.
extern const aigw_cp_sql_t aigw_cp_sql_key_list;
enum {
    AIGW_CP_KEY_LIST_ALL,
    AIGW_CP_KEY_LIST_SCOPE,
    AIGW_CP_KEY_LIST_TENANT,       //  NULL = any
    AIGW_CP_KEY_LIST_ROLE,         //  NULL = any
    AIGW_CP_KEY_LIST_REVOKED,      //  "true", "false" or NULL = either
    AIGW_CP_KEY_LIST_NAME,         //  NULL = any
    AIGW_CP_KEY_LIST_CURSOR_TIME,  //  NULL = from the start
    AIGW_CP_KEY_LIST_CURSOR_ID,
    AIGW_CP_KEY_LIST_LIMIT,  //  NULL = all
    AIGW_CP_KEY_LIST_COUNT
};

//  One key. Row: key JSON; none when not found or out of scope.
extern const aigw_cp_sql_t aigw_cp_sql_key_get;
enum { AIGW_CP_KEY_GET_ID, AIGW_CP_KEY_GET_ALL, AIGW_CP_KEY_GET_SCOPE, AIGW_CP_KEY_GET_COUNT };

//  Create a key from INPUT (JSON: tenant_id, name, role, expires_at,
//  models, rpm, tpm, budget_usd, limits, metadata, cache, cache_semantic; rpm, tpm and budget_usd
//  go into limits, and the columns mirror limits) with the secret's HASH (hex)
//  and PREFIX. Row: tenant found (count), role found, role granted, key
//  JSON (NULL unless all three).
extern const aigw_cp_sql_t aigw_cp_sql_key_create;
enum {
    AIGW_CP_KEY_CREATE_INPUT,
    AIGW_CP_KEY_CREATE_ALL,
    AIGW_CP_KEY_CREATE_SCOPE,
    AIGW_CP_KEY_CREATE_PERMS,
    AIGW_CP_KEY_CREATE_ACTOR_TYPE,
    AIGW_CP_KEY_CREATE_ACTOR_ID,
    AIGW_CP_KEY_CREATE_HASH,
    AIGW_CP_KEY_CREATE_PREFIX,
    AIGW_CP_KEY_CREATE_COUNT
};

//  Change a key's members given in INPUT (name, role, expires_at, models,
//  rpm, tpm, budget_usd, limits (replaced whole), metadata, cache,
//  cache_semantic, revoked: true), audited as ACTION (keys.update, keys.revoke). Revoking a revoked key keeps its time. Row:
//  found, new role found, allowed, key JSON.
extern const aigw_cp_sql_t aigw_cp_sql_key_update;
enum {
    AIGW_CP_KEY_UPDATE_ID,
    AIGW_CP_KEY_UPDATE_ALL,
    AIGW_CP_KEY_UPDATE_SCOPE,
    AIGW_CP_KEY_UPDATE_PERMS,
    AIGW_CP_KEY_UPDATE_ACTOR_TYPE,
    AIGW_CP_KEY_UPDATE_ACTOR_ID,
    AIGW_CP_KEY_UPDATE_ACTION,
    AIGW_CP_KEY_UPDATE_INPUT,
    AIGW_CP_KEY_UPDATE_COUNT
};

//  Delete a key. Row: found, allowed, the key as it was.
extern const aigw_cp_sql_t aigw_cp_sql_key_delete;
enum {
    AIGW_CP_KEY_DELETE_ID,
    AIGW_CP_KEY_DELETE_ALL,
    AIGW_CP_KEY_DELETE_SCOPE,
    AIGW_CP_KEY_DELETE_PERMS,
    AIGW_CP_KEY_DELETE_ACTOR_TYPE,
    AIGW_CP_KEY_DELETE_ACTOR_ID,
    AIGW_CP_KEY_DELETE_COUNT
};

//  Give a key that is not revoked a new secret (HASH, PREFIX). Row: found,
//  allowed, revoked, key JSON (NULL unless rotated).
extern const aigw_cp_sql_t aigw_cp_sql_key_rotate;
enum {
    AIGW_CP_KEY_ROTATE_ID,
    AIGW_CP_KEY_ROTATE_ALL,
    AIGW_CP_KEY_ROTATE_SCOPE,
    AIGW_CP_KEY_ROTATE_PERMS,
    AIGW_CP_KEY_ROTATE_ACTOR_TYPE,
    AIGW_CP_KEY_ROTATE_ACTOR_ID,
    AIGW_CP_KEY_ROTATE_HASH,
    AIGW_CP_KEY_ROTATE_PREFIX,
    AIGW_CP_KEY_ROTATE_COUNT
};

//  Auth's lookup of keys by secret hash. HASHES is a text[] literal of hex
//  hashes ({h1,h2}). One row per key found, columns AIGW_CP_KEY_LOOKUP_COL_*.
extern const char aigw_cp_sql_key_lookup[];
enum { AIGW_CP_KEY_LOOKUP_HASHES, AIGW_CP_KEY_LOOKUP_COUNT };
enum {
    AIGW_CP_KEY_LOOKUP_COL_HASH,  //  hex
    AIGW_CP_KEY_LOOKUP_COL_ID,
    AIGW_CP_KEY_LOOKUP_COL_NAME,
    AIGW_CP_KEY_LOOKUP_COL_TENANT_ID,
    AIGW_CP_KEY_LOOKUP_COL_TENANT,  //  tenant name
    AIGW_CP_KEY_LOOKUP_COL_ROLE,
    AIGW_CP_KEY_LOOKUP_COL_PERMISSIONS,  //  comma-separated
    AIGW_CP_KEY_LOOKUP_COL_MODELS,       //  comma-separated, NULL = all
    AIGW_CP_KEY_LOOKUP_COL_RPM,          //  0 = default
    AIGW_CP_KEY_LOOKUP_COL_EXPIRES_MS,   //  Unix ms, 0 = never
    AIGW_CP_KEY_LOOKUP_COL_REVOKED,      //  "t" or "f"
    //  the tenant keeps prompts and answers: "t" or "f"
    AIGW_CP_KEY_LOOKUP_COL_STORE_CONTENT,
    AIGW_CP_KEY_LOOKUP_COL_LIMITS,         //  the key's limits, JSON text
    AIGW_CP_KEY_LOOKUP_COL_TENANT_LIMITS,  //  its tenant's limits, JSON text
    //  the cache answers its requests (key's and tenant's): "t" or "f"
    AIGW_CP_KEY_LOOKUP_COL_CACHE,
    //  semantic lookups: the key's setting, else its tenant's; "t", "f",
    //  or NULL = the config's
    AIGW_CP_KEY_LOOKUP_COL_CACHE_SEMANTIC
};

//  Every role, by name. Rows: role JSON (name, permissions, builtin,
//  description). No parameters.
extern const aigw_cp_sql_t aigw_cp_sql_roles;

//  Audit rows, newest first (the id is a serial). Rows: row JSON, cursor
//  time, id.
extern const aigw_cp_sql_t aigw_cp_sql_audit_list;
enum {
    AIGW_CP_AUDIT_LIST_ALL,
    AIGW_CP_AUDIT_LIST_SCOPE,
    AIGW_CP_AUDIT_LIST_TENANT,     //  NULL = any
    AIGW_CP_AUDIT_LIST_ACTION,     //  NULL = any
    AIGW_CP_AUDIT_LIST_TARGET,     //  NULL = any
    AIGW_CP_AUDIT_LIST_CURSOR_ID,  //  NULL = from the newest
    AIGW_CP_AUDIT_LIST_LIMIT,      //  NULL = all
    AIGW_CP_AUDIT_LIST_COUNT
};

//  The text of a boolean parameter ("t", "f").
const char *aigw_cp_sql_bool (bool value);

//  Fill the principal's slots of PARAMS (STATEMENT->count values) from WHO;
//  the caller fills the statement's own values.
void aigw_cp_sql_principal (const aigw_cp_sql_t *statement, const aigw_cp_principal_t *who,
                            const char **params);

//  Selftest: every statement uses exactly the parameters its enum names,
//  its principal slots among them, and holds no format directive (values
//  are parameters).
void aigw_cp_sql_test (bool verbose);

#endif
